/*
 * fuzz_gguf: libFuzzer harness for the GGUF reader and everything that reads its
 * result. Each input is parsed from memory; a rejected input must come with an error
 * that names a byte offset, an accepted one must describe only bytes inside the input.
 * Accepted inputs then go through every accessor on every key, the hyperparameter
 * reader, the memory estimate and a plan for a 1 GiB device, and are freed. A broken
 * invariant aborts, which libFuzzer reports as a crash. Run it with fuzz/run.sh.
 */
#include "arch.h"
#include "estimate.h"
#include "gguf.h"
#include "plan.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_FIND 1024   /* keys looked up by name; gguf_find is linear */
#define MAX_ELEMS 4096  /* array elements read per key */

static void check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_gguf: invariant broken: %s\n", what);
		abort();
	}
}

static int inside(const uint8_t *data, size_t size, const void *p, uint64_t n)
{
	const uint8_t *b = p;
	return b >= data && b <= data + size && n <= (uint64_t)(data + size - b);
}

/* What the parser promises about an accepted input. */
static void check_result(const struct gguf *g, const uint8_t *data, size_t size)
{
	check(g->alignment != 0 && (g->alignment & (g->alignment - 1)) == 0, "alignment");
	check(g->header_bytes <= size && g->total_file_size == size, "sizes");
	for (uint64_t i = 0; i < g->n_kv; i++) {
		const struct gguf_kv *kv = &g->kv[i];
		check(inside(data, size, kv->key.p, kv->key.len), "key inside input");
		check(inside(data, size, kv->val, kv->val_len), "value inside input");
		check(kv->type < GGUF_T_COUNT, "value type");
	}
	for (uint64_t i = 0; i < g->n_tensors; i++) {
		const struct gguf_tensor *t = &g->tensors[i];
		check(memchr(t->name, '\0', GGUF_MAX_NAME) != NULL, "tensor name terminated");
		check(t->n_dims <= GGUF_MAX_DIMS && gguf_ggml_type_name(t->type), "tensor shape");
		check(t->offset % g->alignment == 0, "tensor offset aligned");
		check(t->size <= size - g->header_bytes &&
		    t->offset <= size - g->header_bytes - t->size, "tensor data inside input");
	}
}

/* A NUL-terminated copy of a key, for the lookups by name. */
static void key_copy(const struct gguf_kv *kv, char *buf, size_t len)
{
	size_t n = kv->key.len < len - 1 ? (size_t)kv->key.len : len - 1;
	memcpy(buf, kv->key.p, n);
	buf[n] = '\0';
}

static void exercise_kv(const struct gguf *g, const struct gguf_kv *kv, uint64_t i)
{
	char key[256], s[64], one[1];
	int64_t v;
	double d;
	if (i < MAX_FIND) {
		key_copy(kv, key, sizeof key);
		int64_t j = gguf_find(g, key);
		if (strlen(key) == kv->key.len)
			check(j == (int64_t)i, "gguf_find finds each key (keys are unique)");
		gguf_get_int(g, key, &v);
		gguf_get_float(g, key, &d);
		if (gguf_get_str(g, key, s, sizeof s) == 0)
			check(memchr(s, '\0', sizeof s) != NULL, "string terminated");
		if (gguf_get_str(g, key, one, sizeof one) == 0)
			check(one[0] == '\0', "one-byte string buffer");
	}
	uint64_t n = kv->arr_n < MAX_ELEMS ? kv->arr_n : MAX_ELEMS;
	for (uint64_t e = 0; kv->type == GGUF_T_ARRAY && e < n; e++)
		gguf_arr_int(kv, e, &v);
	check(kv->type != GGUF_T_ARRAY || gguf_arr_int(kv, kv->arr_n, &v) < 0, "array end");
	(void)gguf_type_name(kv->type);
	(void)gguf_type_name(kv->arr_type);
}

static void exercise_tensors(const struct gguf *g)
{
	for (uint64_t i = 0; i < g->n_tensors && i < MAX_FIND; i++) {
		int64_t j = gguf_find_tensor(g, g->tensors[i].name);
		check(j == (int64_t)i, "tensor names unique");
		(void)gguf_row_size(g->tensors[i].type, g->tensors[i].ne[0]);
	}
}

static void exercise_plan(const struct est *e, uint64_t budget, int with_pattern)
{
	static const char *patterns[] = { "blk.*.ffn_*_exps.*", "output.weight" };
	struct plan_device dev = { .budget = budget };
	struct plan_opts o = { .offload = PLAN_AUTO };
	struct plan p;
	char err[256];
	snprintf(dev.name, sizeof dev.name, "GPU0");
	if (with_pattern) {
		o.cpu_patterns[0] = patterns[0];
		o.cpu_patterns[1] = patterns[1];
		o.n_cpu_patterns = 2;
	}
	check(plan_make(e, &dev, &o, &p, err, sizeof err) == 0, "plan_make with valid options");
	check(p.ngl >= 0 && p.ngl <= (int)e->a.n_layer + 1, "ngl in range");
	check(p.args != NULL && p.args[p.n_args] == NULL, "args terminated");
	plan_free(&p);
}

static void exercise_model(const struct gguf *g)
{
	struct arch_info a;
	struct est_opts o;
	struct est e;
	char err[512];
	if (arch_read(g, &a, err, sizeof err) == 0) {
		check(a.n_layer >= 1 && a.n_layer <= ARCH_MAX_LAYERS, "layer count");
		arch_free(&a);
	}
	/* any file read as a projector: refused unless it is one, sizes never UB */
	struct est_clip clip;
	char arch[16] = "";
	gguf_get_str(g, "general.architecture", arch, sizeof arch);
	for (int fa = -1; fa <= 0; fa++)
		check((est_clip_read(g, fa, &clip, err, sizeof err) == 0) ==
		    (strcmp(arch, "clip") == 0), "est_clip_read takes clip files alone");
	est_defaults(&o);
	if (est_build(g, &o, &e, err, sizeof err) < 0)
		return;
	exercise_plan(&e, 1ull << 30, 0);
	exercise_plan(&e, 0, 0);
	/* with patterns every placement tried scans all tensors: bound the work */
	if ((uint64_t)e.a.n_layer * (g->n_tensors + 1) < (1u << 16))
		exercise_plan(&e, 1ull << 30, 1);
	est_free(&e);
	o.flash_attn = 1;
	o.n_ctx = 1000;
	o.type_k = o.type_v = 8; /* q8_0 */
	if (est_build(g, &o, &e, err, sizeof err) == 0) {
		exercise_plan(&e, 1ull << 30, 0);
		est_free(&e);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[GGUF_ERR_LEN];
	memset(err, 'x', sizeof err);
	struct gguf *g = gguf_parse(data, size, err, sizeof err);
	if (g == NULL) {
		check(memchr(err, '\0', sizeof err) != NULL, "error terminated");
		check(strstr(err, "(at byte ") != NULL, "error names a byte offset");
		return 0;
	}
	check_result(g, data, size);
	for (uint64_t i = 0; i < g->n_kv; i++)
		exercise_kv(g, &g->kv[i], i);
	exercise_tensors(g);
	exercise_model(g);
	gguf_close(g);
	return 0;
}
