/*
 * gguf: bounds-checked GGUF reader. See gguf.h for the contract.
 *
 * This file parses the header's sections: the key-value pairs, the tensor table and the
 * data section's layout, and the parts of a split model. How the bytes are read and how
 * a value is checked without being decoded is in gguf_read.c (shared in gguf_int.h).
 * Counts from the file are checked against the bytes that remain before anything is
 * allocated (each key needs at least 13 bytes, each tensor 24), so a hostile count
 * cannot cause a huge allocation. Pointers into the buffer (keys, values) are set once
 * the parse is over, since the buffer moves while it grows; during the parse positions
 * are kept as offsets.
 */
#include "gguf_int.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define GGUF_MAX_KEY_LEN 65535
#define GGUF_MAX_COUNT (1u << 24)  /* keys or tensors in one file */
#define GGUF_MAX_ALIGN (1u << 24)

/* A small open-addressing set of byte strings, to find duplicates in O(n). Entries are
 * offsets into a buffer that each call names, since the header buffer moves as it
 * grows; every call on one set passes the same logical buffer. */
struct nset {
	uint64_t *off;
	uint64_t *len;             /* UINT64_MAX: the slot is free */
	size_t cap;
};

static uint64_t hash_bytes(const char *p, uint64_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (uint64_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)p[i]) * 1099511628211ull;
	return h;
}

static void nset_init(struct nset *s, size_t n)
{
	s->cap = 16;
	while (s->cap < n * 2)
		s->cap *= 2;
	s->off = xcalloc(s->cap, sizeof *s->off);
	s->len = xmalloc(s->cap * sizeof *s->len);
	memset(s->len, 0xff, s->cap * sizeof *s->len);
}

/* Returns 1 if the n bytes at base + off were already present, else adds them and
 * returns 0. */
static int nset_add(struct nset *s, const char *base, uint64_t off, uint64_t n)
{
	size_t i = hash_bytes(base + off, n) & (s->cap - 1);
	while (s->len[i] != UINT64_MAX) {
		if (s->len[i] == n && memcmp(base + s->off[i], base + off, n) == 0)
			return 1;
		i = (i + 1) & (s->cap - 1);
	}
	s->off[i] = off;
	s->len[i] = n;
	return 0;
}

/* nset_add of the name of tensor i of the array ts. */
static int nset_add_tensor(struct nset *s, const struct gguf_tensor *ts, uint64_t i)
{
	return nset_add(s, (const char *)ts, i * sizeof *ts + offsetof(struct gguf_tensor, name),
	    strlen(ts[i].name));
}

static void nset_free(struct nset *s)
{
	free(s->off);
	free(s->len);
}

struct ggml_type_info {
	const char *name;
	uint32_t blck;
	uint32_t bytes;
};

/* From ggml.h/ggml.c of the pinned llama.cpp release; holes are removed types. */
static const struct ggml_type_info ggml_types[] = {
	[GGUF_GGML_F32] = { "F32", 1, 4 },
	[GGUF_GGML_F16] = { "F16", 1, 2 },
	[GGUF_GGML_Q4_0] = { "Q4_0", 32, 18 },
	[GGUF_GGML_Q4_1] = { "Q4_1", 32, 20 },
	[GGUF_GGML_Q5_0] = { "Q5_0", 32, 22 },
	[GGUF_GGML_Q5_1] = { "Q5_1", 32, 24 },
	[GGUF_GGML_Q8_0] = { "Q8_0", 32, 34 },
	[GGUF_GGML_Q8_1] = { "Q8_1", 32, 36 },
	[GGUF_GGML_Q2_K] = { "Q2_K", 256, 84 },
	[GGUF_GGML_Q3_K] = { "Q3_K", 256, 110 },
	[GGUF_GGML_Q4_K] = { "Q4_K", 256, 144 },
	[GGUF_GGML_Q5_K] = { "Q5_K", 256, 176 },
	[GGUF_GGML_Q6_K] = { "Q6_K", 256, 210 },
	[GGUF_GGML_Q8_K] = { "Q8_K", 256, 292 },
	[GGUF_GGML_IQ2_XXS] = { "IQ2_XXS", 256, 66 },
	[GGUF_GGML_IQ2_XS] = { "IQ2_XS", 256, 74 },
	[GGUF_GGML_IQ3_XXS] = { "IQ3_XXS", 256, 98 },
	[GGUF_GGML_IQ1_S] = { "IQ1_S", 256, 50 },
	[GGUF_GGML_IQ4_NL] = { "IQ4_NL", 32, 18 },
	[GGUF_GGML_IQ3_S] = { "IQ3_S", 256, 110 },
	[GGUF_GGML_IQ2_S] = { "IQ2_S", 256, 82 },
	[GGUF_GGML_IQ4_XS] = { "IQ4_XS", 256, 136 },
	[GGUF_GGML_I8] = { "I8", 1, 1 },
	[GGUF_GGML_I16] = { "I16", 1, 2 },
	[GGUF_GGML_I32] = { "I32", 1, 4 },
	[GGUF_GGML_I64] = { "I64", 1, 8 },
	[GGUF_GGML_F64] = { "F64", 1, 8 },
	[GGUF_GGML_IQ1_M] = { "IQ1_M", 256, 56 },
	[GGUF_GGML_BF16] = { "BF16", 1, 2 },
	[GGUF_GGML_TQ1_0] = { "TQ1_0", 256, 54 },
	[GGUF_GGML_TQ2_0] = { "TQ2_0", 256, 66 },
	[GGUF_GGML_MXFP4] = { "MXFP4", 32, 17 },
	[GGUF_GGML_NVFP4] = { "NVFP4", 64, 36 },
	[GGUF_GGML_Q1_0] = { "Q1_0", 128, 18 },
	[GGUF_GGML_Q2_0] = { "Q2_0", 64, 18 },
};
#define N_GGML_TYPES (sizeof ggml_types / sizeof ggml_types[0])

const char *gguf_ggml_type_name(uint32_t type)
{
	return type < N_GGML_TYPES ? ggml_types[type].name : NULL;
}

int gguf_ggml_block(uint32_t type, uint32_t *blck, uint32_t *bytes)
{
	if (type >= N_GGML_TYPES || ggml_types[type].name == NULL)
		return -1;
	*blck = ggml_types[type].blck;
	*bytes = ggml_types[type].bytes;
	return 0;
}

uint64_t gguf_row_size(uint32_t type, int64_t n)
{
	uint32_t b, s;
	if (gguf_ggml_block(type, &b, &s) < 0 || n < 0)
		return 0;
	return (uint64_t)n / b * s;
}

static int parse_tensor(struct gguf_cur *c, struct gguf_tensor *t)
{
	uint64_t at = c->pos;
	struct gguf_str name;
	if (gguf_rd_str(c, &name, GGUF_MAX_NAME - 1, "tensor name") < 0)
		return -1;
	memcpy(t->name, name.p, name.len);
	t->name[name.len] = '\0';
	if (memchr(name.p, '\0', name.len) != NULL)
		return gguf_fail(c, at, "tensor name contains a NUL byte");
	if (gguf_rd_u32(c, &t->n_dims, "tensor dimensions") < 0)
		return -1;
	if (t->n_dims > GGUF_MAX_DIMS)
		return gguf_fail(c, at, "tensor '%s' has %" PRIu32 " dimensions, at most %d "
		    "allowed",
		    t->name, t->n_dims, GGUF_MAX_DIMS);
	uint64_t nel = 1;
	for (uint32_t j = 0; j < GGUF_MAX_DIMS; j++) {
		uint64_t d = 1;
		if (j < t->n_dims && gguf_rd_u64(c, &d, "tensor shape") < 0)
			return -1;
		if (d > INT64_MAX)
			return gguf_fail(c, at, "tensor '%s' dimension %" PRIu32 " is negative",
			    t->name, j);
		if (d != 0 && nel > (uint64_t)INT64_MAX / d)
			return gguf_fail(c, at, "tensor '%s' has more elements than fit in 64 bits",
			    t->name);
		nel *= d;
		t->ne[j] = (int64_t)d;
	}
	uint32_t blck, bytes;
	if (gguf_rd_u32(c, &t->type, "tensor type") < 0)
		return -1;
	if (gguf_ggml_block(t->type, &blck, &bytes) < 0)
		return gguf_fail(c, at, "tensor '%s' has unknown ggml type %" PRIu32, t->name,
		    t->type);
	if (t->ne[0] % blck != 0)
		return gguf_fail(c, at, "tensor '%s' of type %s has rows of %" PRId64
		    " elements, not a multiple of its block size %" PRIu32, t->name,
		    ggml_types[t->type].name, t->ne[0], blck);
	if (nel / blck > UINT64_MAX / bytes)
		return gguf_fail(c, at, "tensor '%s' size in bytes overflows", t->name);
	t->size = nel / blck * bytes;
	return gguf_rd_u64(c, &t->offset, "tensor offset");
}

static int get_kv_int(const struct gguf_kv *kv, int64_t *out)
{
	const uint8_t *v = kv->val;
	switch (kv->type) {
	case GGUF_T_UINT8: case GGUF_T_BOOL: *out = v[0]; return 0;
	case GGUF_T_INT8: *out = (int8_t)v[0]; return 0;
	case GGUF_T_UINT16: { uint16_t x; memcpy(&x, v, 2); *out = x; return 0; }
	case GGUF_T_INT16: { int16_t x; memcpy(&x, v, 2); *out = x; return 0; }
	case GGUF_T_UINT32: { uint32_t x; memcpy(&x, v, 4); *out = x; return 0; }
	case GGUF_T_INT32: { int32_t x; memcpy(&x, v, 4); *out = x; return 0; }
	case GGUF_T_UINT64: { uint64_t x; memcpy(&x, v, 8); *out = x > INT64_MAX ? INT64_MAX : (int64_t)x; return 0; }
	case GGUF_T_INT64: { int64_t x; memcpy(&x, v, 8); *out = x; return 0; }
	default: return -1;
	}
}

/* The key-value section, at c->pos. kv pointers are left unset (see fix_kv_pointers). */
static int parse_kvs(struct gguf *g, struct gguf_cur *c)
{
	g->kv = xcalloc(g->n_kv, sizeof *g->kv);
	struct nset seen;
	nset_init(&seen, g->n_kv);
	int rc = -1;
	g->alignment = GGUF_DEFAULT_ALIGN;
	for (uint64_t i = 0; i < g->n_kv; i++) {
		struct gguf_kv *kv = &g->kv[i];
		uint32_t t;
		kv->offset = c->pos;
		if (gguf_rd_str(c, &kv->key, GGUF_MAX_KEY_LEN, "key") < 0)
			goto out;
		kv->key.p = NULL;
		if (kv->key.len == 0) {
			gguf_fail(c, kv->offset, "key %" PRIu64 " is empty", i);
			goto out;
		}
		const char *key = (const char *)c->base + kv->offset + 8;
		if (nset_add(&seen, (const char *)c->base, kv->offset + 8, kv->key.len)) {
			gguf_fail(c, kv->offset, "duplicate key '%.*s'",
			    (int)(kv->key.len > 80 ? 80 : kv->key.len), key);
			goto out;
		}
		if (gguf_rd_u32(c, &t, "value type") < 0)
			goto out;
		uint64_t vstart = c->pos;
		kv->type = t < GGUF_T_COUNT ? (enum gguf_type)t : GGUF_T_COUNT;
		if (gguf_skip_value(c, t, 0, &kv->arr_type, &kv->arr_n) < 0)
			goto out;
		if (kv->type == GGUF_T_ARRAY)
			vstart += 12;
		kv->val_len = c->pos - vstart;
		key = (const char *)c->base + kv->offset + 8; /* the buffer may have moved */
		if (kv->key.len == 17 && memcmp(key, "general.alignment", 17) == 0) {
			uint32_t a;
			if (kv->type != GGUF_T_UINT32) {
				gguf_fail(c, kv->offset, "general.alignment must be u32, not %s",
				    gguf_type_name(kv->type));
				goto out;
			}
			memcpy(&a, c->base + vstart, 4);
			if (a == 0 || (a & (a - 1)) != 0 || a > GGUF_MAX_ALIGN) {
				gguf_fail(c, kv->offset, "general.alignment %" PRIu32 " is not a power of two "
				    "up to %u", a, GGUF_MAX_ALIGN);
				goto out;
			}
			g->alignment = a;
		}
	}
	rc = 0;
out:
	nset_free(&seen);
	return rc;
}

/* Points each kv's key and value into the header, now that it no longer moves: the key
 * follows its 8-byte length at kv->offset, the value its 4-byte type (and an array's
 * 12-byte element type and count). */
static void fix_kv_pointers(struct gguf *g, const uint8_t *base)
{
	for (uint64_t i = 0; i < g->n_kv; i++) {
		struct gguf_kv *kv = &g->kv[i];
		kv->key.p = (const char *)base + kv->offset + 8;
		kv->val = base + kv->offset + 8 + kv->key.len + 4 +
		    (kv->type == GGUF_T_ARRAY ? 12 : 0);
	}
}

/* The tensor table at c->pos, then the data section's layout against the file size. */
static int parse_tensors(struct gguf *g, struct gguf_cur *c)
{
	uint64_t len = c->len;
	struct nset seen;
	nset_init(&seen, g->n_tensors);
	int rc = -1;
	g->tensors = xcalloc(g->n_tensors, sizeof *g->tensors);
	for (uint64_t i = 0; i < g->n_tensors; i++) {
		uint64_t at = c->pos;
		if (parse_tensor(c, &g->tensors[i]) < 0)
			goto out;
		if (nset_add_tensor(&seen, g->tensors, i)) {
			gguf_fail(c, at, "duplicate tensor name '%s'", g->tensors[i].name);
			goto out;
		}
	}
	uint64_t data = c->pos;
	if (g->n_tensors > 0)
		data = (c->pos + g->alignment - 1) / g->alignment * g->alignment;
	/* data section: tensors packed in order, each padded to the alignment */
	uint64_t expect = 0;
	for (uint64_t i = 0; i < g->n_tensors; i++) {
		struct gguf_tensor *t = &g->tensors[i];
		if (t->offset != expect) {
			gguf_fail(c, data, "tensor '%s' has data offset %" PRIu64 ", expected %" PRIu64,
			    t->name, t->offset, expect);
			goto out;
		}
		uint64_t padded = t->size + (g->alignment - t->size % g->alignment) % g->alignment;
		if (padded < t->size || padded > len || expect > len - padded ||
		    data + expect + t->size > len) {
			gguf_fail(c, len, "file truncated: tensor '%s' needs bytes up to %" PRIu64
			    " but the file has %" PRIu64, t->name, data + expect + t->size, len);
			goto out;
		}
		expect += padded;
	}
	g->header_bytes = data;
	g->total_file_size = len;
	rc = 0;
out:
	nset_free(&seen);
	return rc;
}

static int parse(struct gguf *g, struct gguf_cur *c)
{
	uint32_t magic;
	uint64_t len = c->len;
	if (gguf_rd_u32(c, &magic, "magic") < 0)
		return -1;
	if (memcmp(&magic, "GGUF", 4) != 0)
		return gguf_fail(c, 0, "not a GGUF file: the magic is not 'GGUF'");
	if (gguf_rd_u32(c, &g->version, "version") < 0)
		return -1;
	if (g->version != 2 && g->version != 3) {
		if (g->version == 1)
			return gguf_fail(c, 4, "GGUF version 1 is not supported (versions 2 and 3 "
			    "are)");
		if (g->version != 0 && (g->version & 0xFFFF) == 0)
			return gguf_fail(c, 4, "GGUF version %" PRIu32 " looks byte-swapped: a big-endian "
			    "file is not supported", g->version);
		return gguf_fail(c, 4, "unsupported GGUF version %" PRIu32, g->version);
	}
	if (gguf_rd_u64(c, &g->n_tensors, "tensor count") < 0 ||
	    gguf_rd_u64(c, &g->n_kv, "key count") < 0)
		return -1;
	if (g->n_tensors > GGUF_MAX_COUNT || g->n_tensors > (len - c->pos) / 24)
		return gguf_fail(c, 8, "tensor count %" PRIu64 " is impossible for a file of %" PRIu64
		    " bytes", g->n_tensors, len);
	if (g->n_kv > GGUF_MAX_COUNT || g->n_kv > (len - c->pos) / 13)
		return gguf_fail(c, 16, "key count %" PRIu64 " is impossible for a file of %" PRIu64
		    " bytes", g->n_kv, len);
	if (parse_kvs(g, c) < 0 || parse_tensors(g, c) < 0)
		return -1;
	fix_kv_pointers(g, c->base);
	return 0;
}

struct gguf *gguf_parse(const void *buf, size_t len, char *err, size_t errlen)
{
	struct gguf_cur c = { .base = buf, .have = len, .len = len, .fd = -1, .err = err,
	    .errlen = errlen };
	struct gguf *g = xcalloc(1, sizeof *g);
	if (parse(g, &c) < 0) {
		gguf_close(g);
		return NULL;
	}
	return g;
}

/* Opens one file; lender (or NULL) lends its buffer, which the result gives back at
 * gguf_close. */
static struct gguf *open_one(const char *path, struct gguf_buf *lender, char *err,
    size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		close(fd);
		return NULL;
	}
	/* the reader asks for what it needs in large reads: the kernel's own read-ahead
	 * would only pull in weights past the header, from disk when the file is cold */
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
	char msg[GGUF_ERR_LEN];
	struct gguf_cur c = { .base = (const uint8_t *)"", .len = (uint64_t)st.st_size, .fd = fd,
	    .err = msg, .errlen = sizeof msg };
	struct gguf *g = xcalloc(1, sizeof *g);
	if (lender != NULL && lender->hint > 0)
		(void)posix_fadvise(fd, 0, (off_t)(lender->hint < (uint64_t)st.st_size ?
		    lender->hint : (uint64_t)st.st_size), POSIX_FADV_WILLNEED);
	if (lender != NULL) { /* the result holds it while open */
		c.buf = lender->p;
		c.cap = lender->cap;
		lender->p = NULL;
		lender->cap = 0;
		g->lender = lender;
	}
	int rc = parse(g, &c);
	close(fd);
	g->buf = c.buf;
	g->buf_len = (size_t)c.have;
	g->buf_cap = c.cap;
	if (rc < 0) {
		snprintf(err, errlen, "%s: %s", path, msg);
		gguf_close(g);
		return NULL;
	}
	if (lender != NULL)
		lender->hint = g->header_bytes;
	g->n_parts = 1;
	g->parts = xcalloc(1, sizeof *g->parts);
	g->parts[0].path = xstrdup(path);
	g->parts[0].file_size = (uint64_t)st.st_size;
	g->parts[0].data_offset = g->header_bytes;
	return g;
}

/* For "dir/name-00001-of-00003.gguf", writes the path of part i (1-based). Returns -1
 * when first is not named as part 1 of n. */
static int split_path(const char *first, uint32_t i, uint32_t n, char *out, size_t len)
{
	char want[32];
	size_t l = strlen(first);
	snprintf(want, sizeof want, "-00001-of-%05" PRIu32 ".gguf", n);
	size_t tail = strlen(want);
	if (l < tail || strcmp(first + l - tail, want) != 0)
		return -1;
	int w = snprintf(out, len, "%.*s-%05" PRIu32 "-of-%05" PRIu32 ".gguf", (int)(l - tail),
	    first, i, n);
	return w < 0 || (size_t)w >= len ? -1 : 0;
}

static int open_parts(struct gguf *g, char *err, size_t errlen)
{
	int64_t count = 1, no = 0, total = -1;
	gguf_get_int(g, "split.count", &count);
	gguf_get_int(g, "split.no", &no);
	gguf_get_int(g, "split.tensors.count", &total);
	if (count <= 1)
		return 0;
	const char *path = g->parts[0].path;
	if (no < 0 || no >= count) {
		snprintf(err, errlen, "%s: split.no %" PRId64 " is outside 0..%" PRId64
		    " (split.count %" PRId64 ")", path, no, count - 1, count);
		return -1;
	}
	if (no != 0) {
		snprintf(err, errlen, "%s: this is part %" PRId64 " of a %" PRId64 "-part split "
		    "model; open part 1", path, no + 1, count);
		return -1;
	}
	if (count > GGUF_MAX_PARTS) {
		snprintf(err, errlen, "%s: split.count %" PRId64 " exceeds %d", path, count,
		    GGUF_MAX_PARTS);
		return -1;
	}
	struct gguf **others = xcalloc((size_t)count, sizeof *others);
	g->extra = others;
	g->parts = xreallocarray(g->parts, (size_t)count, sizeof *g->parts);
	struct nset names;
	nset_init(&names, g->n_tensors);
	int rc = -1;
	for (uint64_t j = 0; j < g->n_tensors; j++)
		nset_add_tensor(&names, g->tensors, j);
	for (int64_t i = 1; i < count; i++) {
		char p[4096];
		if (split_path(path, (uint32_t)i + 1, (uint32_t)count, p, sizeof p) < 0) {
			snprintf(err, errlen, "%s: cannot derive split part names from this file "
			    "name (expected NAME-00001-of-%05" PRId64 ".gguf)", path, count);
			goto out;
		}
		struct gguf *o = open_one(p, NULL, err, errlen);
		if (o == NULL)
			goto out;
		others[i] = o;
		g->n_parts = (uint32_t)i + 1;
		g->parts[i] = o->parts[0];
		o->parts[0].path = NULL;
		int64_t ono = -1, ocount = -1;
		gguf_get_int(o, "split.no", &ono);
		gguf_get_int(o, "split.count", &ocount);
		if (ono != i || ocount != count) {
			snprintf(err, errlen, "%s: split.no %" PRId64 " of %" PRId64 ", expected part %"
			    PRId64 " of %" PRId64, p, ono, ocount, i, count);
			goto out;
		}
		size_t n = (size_t)(g->n_tensors + o->n_tensors);
		g->tensors = xreallocarray(g->tensors, n, sizeof *g->tensors);
		nset_free(&names);
		nset_init(&names, n);
		for (size_t j = 0; j < n; j++) {
			struct gguf_tensor *t = &g->tensors[j];
			if (j >= g->n_tensors) {
				*t = o->tensors[j - g->n_tensors];
				t->part = (uint16_t)i;
			}
			if (nset_add_tensor(&names, g->tensors, j)) {
				snprintf(err, errlen, "%s: tensor '%s' appears in two parts", p, t->name);
				goto out;
			}
		}
		g->n_tensors = n;
		g->total_file_size += o->total_file_size;
		g->header_bytes += o->header_bytes;
	}
	if (total >= 0 && (uint64_t)total != g->n_tensors) {
		snprintf(err, errlen, "%s: split.tensors.count says %" PRId64 " tensors, the parts "
		    "hold %" PRIu64, path, total, g->n_tensors);
		goto out;
	}
	rc = 0;
out:
	nset_free(&names);
	return rc;
}

void gguf_prefetch(const char *path, const struct gguf_buf *b)
{
	if (b->hint == 0)
		return;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO does not block */
	struct stat st;
	if (fd < 0)
		return;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
		(void)posix_fadvise(fd, 0, (off_t)(b->hint < (uint64_t)st.st_size ? b->hint :
		    (uint64_t)st.st_size), POSIX_FADV_WILLNEED);
	close(fd);
}

struct gguf *gguf_open(const char *path, char *err, size_t errlen)
{
	return gguf_open_buf(path, NULL, err, errlen);
}

struct gguf *gguf_open_buf(const char *path, struct gguf_buf *b, char *err, size_t errlen)
{
	struct gguf *g = open_one(path, b, err, errlen);
	if (g != NULL && open_parts(g, err, errlen) < 0) {
		gguf_close(g);
		return NULL;
	}
	return g;
}

void gguf_close(struct gguf *g)
{
	if (g == NULL)
		return;
	struct gguf **others = g->extra;
	for (uint32_t i = 0; i < g->n_parts; i++)
		free(g->parts[i].path);
	if (others != NULL) {
		for (uint32_t i = 1; i < g->n_parts; i++)
			gguf_close(others[i]);
		free(others);
	}
	gguf_buf_release(g->buf, g->buf_cap, g->lender);
	free(g->parts);
	free(g->kv);
	free(g->tensors);
	free(g);
}

int64_t gguf_find(const struct gguf *g, const char *key)
{
	size_t n = strlen(key);
	for (uint64_t i = 0; i < g->n_kv; i++)
		if (g->kv[i].key.len == n && memcmp(g->kv[i].key.p, key, n) == 0)
			return (int64_t)i;
	return -1;
}

int gguf_get_int(const struct gguf *g, const char *key, int64_t *out)
{
	int64_t i = gguf_find(g, key);
	return i < 0 ? -1 : get_kv_int(&g->kv[i], out);
}

int gguf_get_float(const struct gguf *g, const char *key, double *out)
{
	int64_t i = gguf_find(g, key);
	if (i < 0)
		return -1;
	const struct gguf_kv *kv = &g->kv[i];
	if (kv->type == GGUF_T_FLOAT32) {
		float f;
		memcpy(&f, kv->val, 4);
		*out = f;
		return 0;
	}
	if (kv->type == GGUF_T_FLOAT64) {
		memcpy(out, kv->val, 8);
		return 0;
	}
	int64_t v;
	if (get_kv_int(kv, &v) < 0)
		return -1;
	*out = (double)v;
	return 0;
}

int gguf_get_str(const struct gguf *g, const char *key, char *buf, size_t len)
{
	int64_t i = gguf_find(g, key);
	if (i < 0 || g->kv[i].type != GGUF_T_STRING || len == 0)
		return -1;
	uint64_t n = g->kv[i].val_len - 8;
	if (n >= len)
		n = len - 1;
	memcpy(buf, g->kv[i].val + 8, n);
	buf[n] = '\0';
	return 0;
}

int gguf_arr_int(const struct gguf_kv *kv, uint64_t j, int64_t *out)
{
	if (kv->type != GGUF_T_ARRAY || j >= kv->arr_n)
		return -1;
	size_t es = gguf_type_size(kv->arr_type);
	if (es == 0)
		return -1;
	struct gguf_kv one = { .type = kv->arr_type, .val = kv->val + j * es };
	if (kv->arr_type == GGUF_T_FLOAT32 || kv->arr_type == GGUF_T_FLOAT64) {
		double d;
		if (kv->arr_type == GGUF_T_FLOAT32) {
			float f;
			memcpy(&f, one.val, 4);
			d = f;
		} else {
			memcpy(&d, one.val, 8);
		}
		if (!(d > -9.2e18 && d < 9.2e18))
			return -1;
		*out = (int64_t)d;
		return 0;
	}
	return get_kv_int(&one, out);
}

int64_t gguf_find_tensor(const struct gguf *g, const char *name)
{
	for (uint64_t i = 0; i < g->n_tensors; i++)
		if (strcmp(g->tensors[i].name, name) == 0)
			return (int64_t)i;
	return -1;
}
