/*
 * ggufw: GGUF writer. Metadata goes into a growing byte buffer as keys are added; the
 * tensor table and data are laid out at write time. Random fill writes values a model
 * can compute with: floats in [-0.05, 0.05] (norm weights near 1), Q8_0 blocks with a
 * small scale; other quantized types are written as zeros, which are valid blocks.
 */
#include "ggufw.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct wtensor {
	char name[GGUF_MAX_NAME];
	uint32_t type, n_dims;
	int64_t ne[GGUF_MAX_DIMS];
	uint64_t size, offset;
};

struct ggufw {
	uint8_t *kv;
	size_t kv_len, kv_cap;
	uint64_t n_kv;
	struct wtensor *t;
	size_t n_t, cap_t;
	uint64_t data_size;
};

#define ALIGN 32

struct ggufw *ggufw_new(void)
{
	return xcalloc(1, sizeof(struct ggufw));
}

void ggufw_free(struct ggufw *w)
{
	if (w == NULL)
		return;
	free(w->kv);
	free(w->t);
	free(w);
}

static void put(struct ggufw *w, const void *p, size_t n)
{
	if (w->kv_len + n > w->kv_cap) {
		w->kv_cap = (w->kv_len + n) * 2;
		w->kv = xrealloc(w->kv, w->kv_cap);
	}
	memcpy(w->kv + w->kv_len, p, n);
	w->kv_len += n;
}

static void put_u32(struct ggufw *w, uint32_t v) { put(w, &v, 4); }
static void put_u64(struct ggufw *w, uint64_t v) { put(w, &v, 8); }

static void put_key(struct ggufw *w, const char *key, uint32_t type)
{
	put_u64(w, strlen(key));
	put(w, key, strlen(key));
	put_u32(w, type);
	w->n_kv++;
}

void ggufw_str(struct ggufw *w, const char *key, const char *val)
{
	put_key(w, key, GGUF_T_STRING);
	put_u64(w, strlen(val));
	put(w, val, strlen(val));
}

void ggufw_u32(struct ggufw *w, const char *key, uint32_t val)
{
	put_key(w, key, GGUF_T_UINT32);
	put(w, &val, 4);
}

void ggufw_i32(struct ggufw *w, const char *key, int32_t val)
{
	put_key(w, key, GGUF_T_INT32);
	put(w, &val, 4);
}

void ggufw_u64(struct ggufw *w, const char *key, uint64_t val)
{
	put_key(w, key, GGUF_T_UINT64);
	put(w, &val, 8);
}

void ggufw_f32(struct ggufw *w, const char *key, float val)
{
	put_key(w, key, GGUF_T_FLOAT32);
	put(w, &val, 4);
}

void ggufw_bool(struct ggufw *w, const char *key, int val)
{
	uint8_t b = val != 0;
	put_key(w, key, GGUF_T_BOOL);
	put(w, &b, 1);
}

void ggufw_arr_i32(struct ggufw *w, const char *key, const int32_t *v, size_t n)
{
	put_key(w, key, GGUF_T_ARRAY);
	put_u32(w, GGUF_T_INT32);
	put_u64(w, n);
	put(w, v, n * 4);
}

void ggufw_arr_f32(struct ggufw *w, const char *key, const float *v, size_t n)
{
	put_key(w, key, GGUF_T_ARRAY);
	put_u32(w, GGUF_T_FLOAT32);
	put_u64(w, n);
	put(w, v, n * 4);
}

void ggufw_copy(struct ggufw *w, const struct gguf_kv *kv)
{
	put_u64(w, kv->key.len);
	put(w, kv->key.p, kv->key.len);
	put_u32(w, kv->type);
	if (kv->type == GGUF_T_ARRAY) {
		put_u32(w, kv->arr_type);
		put_u64(w, kv->arr_n);
	}
	put(w, kv->val, kv->val_len);
	w->n_kv++;
}

void ggufw_raw(struct ggufw *w, const void *p, size_t n, uint64_t n_kv)
{
	put(w, p, n);
	w->n_kv += n_kv;
}

int ggufw_tensor(struct ggufw *w, const char *name, uint32_t type, uint32_t n_dims,
    const int64_t *ne)
{
	uint32_t blck, bytes;
	if (gguf_ggml_block(type, &blck, &bytes) < 0 || n_dims > GGUF_MAX_DIMS ||
	    strlen(name) >= GGUF_MAX_NAME || ne[0] % blck != 0)
		return -1;
	if (w->n_t == w->cap_t) {
		w->cap_t = w->cap_t ? w->cap_t * 2 : 64;
		w->t = xreallocarray(w->t, w->cap_t, sizeof *w->t);
	}
	struct wtensor *t = &w->t[w->n_t++];
	memset(t, 0, sizeof *t);
	snprintf(t->name, sizeof t->name, "%s", name);
	t->type = type;
	t->n_dims = n_dims;
	uint64_t nel = 1;
	for (uint32_t i = 0; i < GGUF_MAX_DIMS; i++) {
		t->ne[i] = i < n_dims ? ne[i] : 1;
		nel *= (uint64_t)t->ne[i];
	}
	t->size = nel / blck * bytes;
	t->offset = w->data_size;
	w->data_size += (t->size + ALIGN - 1) / ALIGN * ALIGN;
	return 0;
}

static uint64_t header_size(const struct ggufw *w)
{
	uint64_t n = 4 + 4 + 8 + 8 + w->kv_len;
	for (size_t i = 0; i < w->n_t; i++)
		n += 8 + strlen(w->t[i].name) + 4 + 8 * w->t[i].n_dims + 4 + 8;
	return (n + ALIGN - 1) / ALIGN * ALIGN;
}

uint64_t ggufw_file_size(const struct ggufw *w)
{
	return header_size(w) + w->data_size;
}

static uint64_t rng_next(uint64_t *s)
{
	/* splitmix64: small, good enough for test weights */
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static float rng_float(uint64_t *s)
{
	return ((float)(rng_next(s) >> 40) / (float)(1 << 24) - 0.5f) * 0.1f;
}

static uint16_t f32_to_f16(float f)
{
	/* exact for the small normal values written here; flushes tiny ones to zero */
	uint32_t x;
	memcpy(&x, &f, 4);
	uint32_t sign = (x >> 16) & 0x8000;
	int32_t e = (int32_t)((x >> 23) & 0xff) - 127 + 15;
	if (e <= 0)
		return (uint16_t)sign;
	if (e >= 31)
		return (uint16_t)(sign | 0x7c00);
	return (uint16_t)(sign | (uint32_t)e << 10 | ((x >> 13) & 0x3ff));
}

static void fill_tensor(const struct wtensor *t, uint8_t *buf, uint64_t *seed)
{
	int is_norm = strstr(t->name, "norm") != NULL;
	uint64_t nel = t->size; /* recomputed per type below */
	switch (t->type) {
	case 0: /* F32 */
		nel = t->size / 4;
		for (uint64_t i = 0; i < nel; i++) {
			float v = is_norm ? 1.0f : rng_float(seed);
			memcpy(buf + 4 * i, &v, 4);
		}
		break;
	case 1: /* F16 */
		nel = t->size / 2;
		for (uint64_t i = 0; i < nel; i++) {
			uint16_t h = f32_to_f16(is_norm ? 1.0f : rng_float(seed));
			memcpy(buf + 2 * i, &h, 2);
		}
		break;
	case 8: /* Q8_0: f16 scale, 32 int8 */
		for (uint64_t b = 0; b < t->size / 34; b++) {
			uint16_t d = f32_to_f16(0.05f / 127);
			memcpy(buf + b * 34, &d, 2);
			for (int i = 0; i < 32; i++)
				buf[b * 34 + 2 + i] = (uint8_t)(rng_next(seed) & 0xff);
		}
		break;
	default:
		memset(buf, 0, t->size);
		break;
	}
}

static int write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n > 0) {
		ssize_t w = write(fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

int ggufw_write(struct ggufw *w, const char *path, enum ggufw_fill fill, uint64_t seed,
    char *err, size_t errlen)
{
	uint64_t hsize = header_size(w);
	uint8_t *h = xcalloc(1, hsize);
	size_t p = 0;
	uint32_t version = 3;
	uint64_t nt = w->n_t;
#define PUT(src, n) (memcpy(h + p, (src), (n)), p += (n))
	PUT("GGUF", 4);
	PUT(&version, 4);
	PUT(&nt, 8);
	PUT(&w->n_kv, 8);
	PUT(w->kv, w->kv_len);
	for (size_t i = 0; i < w->n_t; i++) {
		const struct wtensor *t = &w->t[i];
		uint64_t len = strlen(t->name);
		PUT(&len, 8);
		PUT(t->name, len);
		PUT(&t->n_dims, 4);
		PUT(t->ne, 8 * t->n_dims);
		PUT(&t->type, 4);
		PUT(&t->offset, 8);
	}
#undef PUT
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		free(h);
		return -1;
	}
	int rc = write_all(fd, h, hsize);
	free(h);
	if (rc == 0 && fill == GGUFW_RANDOM) {
		for (size_t i = 0; i < w->n_t && rc == 0; i++) {
			const struct wtensor *t = &w->t[i];
			uint64_t padded = (t->size + ALIGN - 1) / ALIGN * ALIGN;
			uint8_t *buf = xcalloc(1, padded);
			fill_tensor(t, buf, &seed);
			rc = write_all(fd, buf, padded);
			free(buf);
		}
	}
	if (rc == 0 && ftruncate(fd, (off_t)(hsize + w->data_size)) < 0)
		rc = -1;
	if (close(fd) < 0)
		rc = -1;
	if (rc < 0) {
		snprintf(err, errlen, "%s: write: %s", path, strerror(errno));
		unlink(path);
	}
	return rc;
}
