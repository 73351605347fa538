/*
 * test_gguf: the GGUF reader as a user meets it, on valid files. Files are built with
 * the writer (ggufw) or byte by byte (gguf_raw.h, for what the writer refuses to
 * produce), then read back: values of every metadata type, the tensor table, versions,
 * split models (and the ways a split can be incomplete or inconsistent) and a sparse
 * 20 GiB model, a header read in many pieces, and a model truncated after it was
 * opened (the reader keeps what it read: no SIGBUS). Files live under tu_tmpdir(). Hostile and corrupt bytes are in
 * test_gguf_bad.c.
 */
#include "testutil.h"
#include "gguf_raw.h"
#include "util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the valid v3 file with every value type (write_all_types), read back ---- */

static int64_t get_int(const struct gguf *g, const char *key)
{
	int64_t v = -424242;
	if (gguf_get_int(g, key, &v) < 0)
		fail_msg("gguf_get_int(%s) failed", key);
	return v;
}

static void check_scalars(const struct gguf *g)
{
	assert_int_equal(get_int(g, "t.u8"), 200);
	assert_int_equal(get_int(g, "t.i8"), -100);
	assert_int_equal(get_int(g, "t.u16"), 60000);
	assert_int_equal(get_int(g, "t.i16"), -30000);
	assert_int_equal(get_int(g, "t.u32"), 4000000000ll);
	assert_int_equal(get_int(g, "t.i32"), -2000000000ll);
	assert_int_equal(get_int(g, "t.i64"), -5000000000000ll);
	assert_int_equal(get_int(g, "t.u64"), 1ll << 40);
	assert_int_equal(get_int(g, "t.u64max"), INT64_MAX); /* clamped, not wrapped */
	assert_int_equal(get_int(g, "t.bool"), 1);
	assert_int_equal(get_int(g, "general.alignment"), 64);
	int64_t v;
	assert_int_equal(gguf_get_int(g, "t.f32", &v), -1);
	assert_int_equal(gguf_get_int(g, "t.f64", &v), -1);
	assert_int_equal(gguf_get_int(g, "t.str", &v), -1);
	assert_int_equal(gguf_get_int(g, "t.ints", &v), -1);
	assert_int_equal(gguf_get_int(g, "no.such.key", &v), -1);
}

static void check_floats_strings(const struct gguf *g)
{
	double d;
	assert_int_equal(gguf_get_float(g, "t.f32", &d), 0);
	assert_true(d == 0.5);
	assert_int_equal(gguf_get_float(g, "t.f64", &d), 0);
	assert_true(d == 0.0025);
	assert_int_equal(gguf_get_float(g, "t.i16", &d), 0);
	assert_true(d == -30000.0);
	assert_int_equal(gguf_get_float(g, "t.str", &d), -1);
	assert_int_equal(gguf_get_float(g, "t.f32s", &d), -1);
	char buf[64];
	assert_int_equal(gguf_get_str(g, "t.str", buf, sizeof buf), 0);
	assert_string_equal(buf, "hello, world");
	assert_int_equal(gguf_get_str(g, "t.str", buf, 6), 0);
	assert_string_equal(buf, "hello");
	assert_int_equal(gguf_get_str(g, "t.str", buf, 0), -1);
	assert_int_equal(gguf_get_str(g, "t.u8", buf, sizeof buf), -1);
	assert_int_equal(gguf_get_str(g, "t.strs", buf, sizeof buf), -1);
	assert_int_equal(gguf_get_str(g, "no.such.key", buf, sizeof buf), -1);
}

static const struct gguf_kv *kv_of(const struct gguf *g, const char *key)
{
	int64_t i = gguf_find(g, key);
	if (i < 0)
		fail_msg("key %s not found", key);
	return &g->kv[i];
}

static int64_t arr_int(const struct gguf_kv *kv, uint64_t j)
{
	int64_t v = -424242;
	if (gguf_arr_int(kv, j, &v) < 0)
		fail_msg("gguf_arr_int(%.*s, %" PRIu64 ") failed", (int)kv->key.len, kv->key.p, j);
	return v;
}

static void check_arrays(const struct gguf *g)
{
	int64_t v;
	const struct gguf_kv *kv = kv_of(g, "t.ints");
	assert_int_equal(kv->type, GGUF_T_ARRAY);
	assert_int_equal(kv->arr_type, GGUF_T_INT32);
	assert_int_equal(kv->arr_n, 3);
	assert_int_equal(arr_int(kv, 0), 1);
	assert_int_equal(arr_int(kv, 1), -2);
	assert_int_equal(arr_int(kv, 2), 300000);
	assert_int_equal(gguf_arr_int(kv, 3, &v), -1);
	kv = kv_of(g, "t.f32s");
	assert_int_equal(arr_int(kv, 0), 1);  /* truncated toward zero */
	assert_int_equal(arr_int(kv, 1), -2);
	assert_int_equal(gguf_arr_int(kv, 2, &v), -1); /* NaN is no integer */
	kv = kv_of(g, "t.bools");
	assert_int_equal(kv->arr_type, GGUF_T_BOOL);
	assert_int_equal(arr_int(kv, 0), 1);
	assert_int_equal(arr_int(kv, 1), 0);
	kv = kv_of(g, "t.strs");
	assert_int_equal(kv->arr_type, GGUF_T_STRING);
	assert_int_equal(kv->arr_n, 3);
	assert_int_equal(kv->val_len, 8 + 1 + 8 + 2 + 8);
	assert_memory_equal(kv->val, "\x01\0\0\0\0\0\0\0a", 9);
	assert_int_equal(gguf_arr_int(kv, 0, &v), -1);
	assert_int_equal(gguf_arr_int(kv_of(g, "t.u8"), 0, &v), -1);
}

static void check_nested(const struct gguf *g)
{
	int64_t v;
	const struct gguf_kv *kv = kv_of(g, "t.nested");
	assert_int_equal(kv->type, GGUF_T_ARRAY);
	assert_int_equal(kv->arr_type, GGUF_T_ARRAY);
	assert_int_equal(kv->arr_n, 2);
	assert_int_equal(kv->val_len, (4 + 8 + 3 * 4) + (4 + 8 + 8 + 1));
	assert_int_equal(gguf_arr_int(kv, 0, &v), -1);
	/* the value bytes are the inner arrays, verbatim */
	uint32_t t;
	memcpy(&t, kv->val, 4);
	assert_int_equal(t, GGUF_T_INT32);
	assert_string_equal(gguf_type_name(kv->arr_type), "array");
}

static void check_tensor(const struct gguf_tensor *t, const char *name, uint32_t type,
    uint32_t n_dims, const int64_t ne[4], uint64_t size, uint64_t offset)
{
	assert_string_equal(t->name, name);
	assert_int_equal(t->type, type);
	assert_int_equal(t->n_dims, n_dims);
	for (int i = 0; i < 4; i++)
		assert_int_equal(t->ne[i], ne[i]);
	assert_int_equal(t->size, size);
	assert_int_equal(t->offset, offset);
	assert_int_equal(t->part, 0);
}

static void check_all_types_layout(const struct gguf *g, uint64_t n_kv, uint64_t file_size)
{
	assert_int_equal(g->version, 3);
	assert_int_equal(g->n_kv, n_kv);
	assert_int_equal(g->alignment, 64);
	assert_int_equal(g->header_bytes % 64, 0);
	assert_int_equal(g->header_bytes, file_size - ALL_DATA);
	assert_int_equal(g->total_file_size, file_size);
	assert_int_equal(gguf_find(g, "t.u8"), 0);
	assert_int_equal(g->kv[0].offset, 24);
	assert_int_equal(gguf_find(g, "t.i8"), 1);
	assert_int_equal(g->n_tensors, 3);
	check_tensor(&g->tensors[0], "blk.0.attn_q.weight", F32, 2,
	    (const int64_t[4]){ 16, 2, 1, 1 }, 128, 0);
	check_tensor(&g->tensors[1], "blk.0.ffn_up.weight", F16, 2,
	    (const int64_t[4]){ 32, 3, 1, 1 }, 192, 128);
	check_tensor(&g->tensors[2], "blk.0.four_d", F32, 4,
	    (const int64_t[4]){ 4, 2, 2, 2 }, 128, 320);
	assert_int_equal(gguf_find_tensor(g, "blk.0.four_d"), 2);
	assert_int_equal(gguf_find_tensor(g, "blk.0"), -1);
}

static void test_all_types(void **state)
{
	(void)state;
	char *path = tu_path("all-types.gguf");
	uint64_t n_kv = write_all_types(path);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	struct gguf *g = open_ok(path);
	assert_int_equal(g->n_parts, 1);
	assert_string_equal(g->parts[0].path, path);
	check_all_types_layout(g, n_kv, (uint64_t)st.st_size);
	check_scalars(g);
	check_floats_strings(g);
	check_arrays(g);
	check_nested(g);
	gguf_close(g);
	free(path);
}

/* The same file parsed from memory gives the same answers. */
static void test_all_types_in_memory(void **state)
{
	(void)state;
	char *path = tu_path("all-types-mem.gguf");
	uint64_t n_kv = write_all_types(path);
	size_t len;
	uint8_t *buf = tu_read_file(path, &len);
	assert_non_null(buf);
	struct rb b = { buf, len, len };
	struct gguf *g = parse_ok(&b);
	check_all_types_layout(g, n_kv, len);
	check_scalars(g);
	check_arrays(g);
	assert_null(g->buf); /* borrowed: nothing was read or copied */
	gguf_close(g);
	free(buf);
	free(path);
}

/* ---- the tensor table with quantized types, default alignment ---- */

static void test_tensor_table(void **state)
{
	(void)state;
	struct ggufw *w = ggufw_new();
	ggufw_str(w, "general.architecture", "llama");
	assert_int_equal(ggufw_tensor(w, "token_embd.weight", Q4_K, 2, (int64_t[]){ 256, 10 }), 0);
	assert_int_equal(ggufw_tensor(w, "blk.0.attn_q.weight", Q8_0, 2, (int64_t[]){ 64, 3 }), 0);
	assert_int_equal(ggufw_tensor(w, "output_norm.weight", F32, 1, (int64_t[]){ 7 }), 0);
	assert_int_equal(ggufw_tensor(w, "x.4d", F16, 4, (int64_t[]){ 2, 3, 4, 5 }), 0);
	assert_int_equal(ggufw_tensor(w, "bf", BF16, 1, (int64_t[]){ 16 }), 0);
	assert_int_equal(ggufw_tensor(w, "mx", MXFP4, 2, (int64_t[]){ 64, 2 }), 0);
	char *path = tu_path("table.gguf");
	write_ok(w, path);
	struct gguf *g = open_ok(path);
	assert_int_equal(g->alignment, 32);
	assert_int_equal(g->header_bytes % 32, 0);
	assert_int_equal(g->total_file_size, ggufw_file_size(w));
	assert_int_equal(g->n_tensors, 6);
	check_tensor(&g->tensors[0], "token_embd.weight", Q4_K, 2,
	    (const int64_t[4]){ 256, 10, 1, 1 }, 10 * 144, 0);
	check_tensor(&g->tensors[1], "blk.0.attn_q.weight", Q8_0, 2,
	    (const int64_t[4]){ 64, 3, 1, 1 }, 6 * 34, 1440);
	check_tensor(&g->tensors[2], "output_norm.weight", F32, 1,
	    (const int64_t[4]){ 7, 1, 1, 1 }, 28, 1440 + 224);
	check_tensor(&g->tensors[3], "x.4d", F16, 4, (const int64_t[4]){ 2, 3, 4, 5 }, 240,
	    1664 + 32);
	check_tensor(&g->tensors[4], "bf", BF16, 1, (const int64_t[4]){ 16, 1, 1, 1 }, 32,
	    1696 + 256);
	check_tensor(&g->tensors[5], "mx", MXFP4, 2, (const int64_t[4]){ 64, 2, 1, 1 }, 68,
	    1952 + 32);
	gguf_close(g);
	ggufw_free(w);
	free(path);
}

static void test_ggml_types(void **state)
{
	(void)state;
	uint32_t blck, bytes;
	assert_string_equal(gguf_ggml_type_name(Q4_K), "Q4_K");
	assert_string_equal(gguf_ggml_type_name(BF16), "BF16");
	assert_null(gguf_ggml_type_name(4)); /* removed Q4_2 */
	assert_null(gguf_ggml_type_name(1000));
	assert_int_equal(gguf_ggml_block(Q8_0, &blck, &bytes), 0);
	assert_int_equal(blck, 32);
	assert_int_equal(bytes, 34);
	assert_int_equal(gguf_ggml_block(5, &blck, &bytes), -1);
	assert_int_equal(gguf_row_size(Q4_K, 512), 288);
	assert_int_equal(gguf_row_size(F16, 4096), 8192);
	assert_int_equal(gguf_row_size(4, 512), 0);
	assert_int_equal(gguf_type_size(GGUF_T_FLOAT64), 8);
	assert_int_equal(gguf_type_size(GGUF_T_STRING), 0);
	assert_int_equal(gguf_type_size(GGUF_T_COUNT), 0);
	assert_string_equal(gguf_type_name(GGUF_T_COUNT), "invalid");
}

/* ---- versions ---- */

static void test_versions(void **state)
{
	(void)state;
	for (uint32_t v = 2; v <= 3; v++) {
		struct rb b = { 0 };
		one_string_file(&b, v);
		struct gguf *g = parse_ok(&b);
		assert_int_equal(g->version, v);
		assert_int_equal(g->n_kv, 1);
		assert_int_equal(g->n_tensors, 0);
		assert_int_equal(g->header_bytes, b.len); /* no tensors, no padding */
		gguf_close(g);
		rb_free(&b);
	}
}

/* ---- split models ---- */

struct part {
	int no, count, total;
	const char *names[3];
};

/* Writes a part with the split keys of p and its tensors, each F32[32]. */
static void write_part(const char *path, const struct part *p)
{
	struct ggufw *w = ggufw_new();
	struct rb r = { 0 };
	if (p->no == 0)
		ggufw_str(w, "general.architecture", "llama");
	rb_key(&r, "split.no", GGUF_T_UINT16);
	rb_u16(&r, (uint16_t)p->no);
	rb_key(&r, "split.count", GGUF_T_UINT16);
	rb_u16(&r, (uint16_t)p->count);
	ggufw_raw(w, r.p, r.len, 2);
	rb_free(&r);
	ggufw_i32(w, "split.tensors.count", p->total);
	for (int i = 0; i < 3 && p->names[i] != NULL; i++)
		assert_int_equal(ggufw_tensor(w, p->names[i], F32, 1, (int64_t[]){ 32 }), 0);
	write_ok(w, path);
	ggufw_free(w);
}

/* Returns the heap path of part no (1-based) of the 3-part model in dir. */
static char *part_path(const char *dir, int no)
{
	return xasprintf("%s/model-%05d-of-00003.gguf", dir, no);
}

/* A fresh folder holding the three parts of a 5-tensor model. Heap string. */
static char *split_dir(const char *name, int total)
{
	static const struct part parts[3] = {
		{ 0, 3, 0, { "token_embd.weight", "blk.0.attn_q.weight", NULL } },
		{ 1, 3, 0, { "blk.0.ffn_up.weight", NULL, NULL } },
		{ 2, 3, 0, { "blk.1.attn_q.weight", "output.weight", NULL } },
	};
	char *dir = tu_path(name);
	assert_int_equal(mkdir(dir, 0755), 0);
	for (int i = 0; i < 3; i++) {
		struct part p = parts[i];
		char *path = part_path(dir, i + 1);
		p.total = total;
		write_part(path, &p);
		free(path);
	}
	return dir;
}

static uint64_t file_size(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return (uint64_t)st.st_size;
}

static void check_split(const struct gguf *g, const char *dir)
{
	static const uint16_t part[5] = { 0, 0, 1, 2, 2 };
	static const uint64_t offset[5] = { 0, 128, 0, 0, 128 };
	uint64_t total = 0, headers = 0;
	assert_int_equal(g->n_parts, 3);
	assert_int_equal(g->n_tensors, 5);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(g->tensors[i].part, part[i]);
		assert_int_equal(g->tensors[i].offset, offset[i]);
	}
	for (int i = 0; i < 3; i++) {
		char *p = part_path(dir, i + 1);
		assert_string_equal(g->parts[i].path, p);
		assert_int_equal(g->parts[i].file_size, file_size(p));
		total += g->parts[i].file_size;
		headers += g->parts[i].data_offset;
		free(p);
	}
	assert_int_equal(g->total_file_size, total);
	assert_int_equal(g->header_bytes, headers);
	assert_int_equal(gguf_find_tensor(g, "output.weight"), 4);
	assert_int_equal(get_int(g, "split.no"), 0);
	char arch[16];
	assert_int_equal(gguf_get_str(g, "general.architecture", arch, sizeof arch), 0);
}

static void test_split_ok(void **state)
{
	(void)state;
	char *dir = split_dir("split-ok", 5);
	char *first = part_path(dir, 1);
	struct gguf *g = open_ok(first);
	check_split(g, dir);
	gguf_close(g);
	char *second = part_path(dir, 2);
	expect_open_fail(second, "this is part 2 of a 3-part split model", "open part 1");
	free(second);
	free(first);
	free(dir);
}

/* Writes part no (0-based) of a 2-part model holding n tensors named PREFIX.I. */
static void write_big_part(const char *path, int no, int n, const char *prefix, int total)
{
	struct ggufw *w = ggufw_new();
	struct rb r = { 0 };
	rb_key(&r, "split.no", GGUF_T_UINT16);
	rb_u16(&r, (uint16_t)no);
	rb_key(&r, "split.count", GGUF_T_UINT16);
	rb_u16(&r, 2);
	ggufw_raw(w, r.p, r.len, 2);
	rb_free(&r);
	ggufw_i32(w, "split.tensors.count", total);
	for (int i = 0; i < n; i++) {
		char name[32];
		snprintf(name, sizeof name, "%s.%d", prefix, i);
		assert_int_equal(ggufw_tensor(w, name, F32, 1, (int64_t[]){ 32 }), 0);
	}
	write_ok(w, path);
	ggufw_free(w);
}

/* A first part with more tensors than the name set's first size (a big MoE model in
 * few parts) opens: the set is sized for them (it used to fill up and spin). */
static void test_split_big_first_part(void **state)
{
	(void)state;
	char *dir = tu_path("split-big");
	assert_int_equal(mkdir(dir, 0755), 0);
	char *one = xasprintf("%s/moe-00001-of-00002.gguf", dir);
	char *two = xasprintf("%s/moe-00002-of-00002.gguf", dir);
	write_big_part(one, 0, 3000, "blk", 3001);
	write_big_part(two, 1, 1, "output", 3001);
	struct gguf *g = open_ok(one);
	assert_int_equal(g->n_tensors, 3001);
	assert_int_equal(g->n_parts, 2);
	assert_int_equal(gguf_find_tensor(g, "blk.2999"), 2999);
	assert_int_equal(g->tensors[3000].part, 1);
	gguf_close(g);
	free(one);
	free(two);
	free(dir);
}

static void test_split_missing_part(void **state)
{
	(void)state;
	char *dir = split_dir("split-missing", 5);
	char *third = part_path(dir, 3);
	assert_int_equal(unlink(third), 0);
	char *first = part_path(dir, 1);
	expect_open_fail(first, third, strerror(ENOENT));
	free(first);
	free(third);
	free(dir);
}

static void test_split_bad_count(void **state)
{
	(void)state;
	char *dir = split_dir("split-count", 6);
	char *first = part_path(dir, 1);
	expect_open_fail(first, "split.tensors.count says 6 tensors, the parts hold 5", NULL);
	free(first);
	free(dir);
}

static void test_split_inconsistent(void **state)
{
	(void)state;
	char *dir = split_dir("split-bad", 5);
	char *first = part_path(dir, 1), *third = part_path(dir, 3);
	write_part(third, &(struct part){ 1, 3, 5, { "blk.1.attn_q.weight", "output.weight" } });
	expect_open_fail(first, "split.no 1 of 3, expected part 2 of 3", NULL);
	write_part(third, &(struct part){ 2, 3, 5, { "token_embd.weight", "output.weight" } });
	expect_open_fail(first, "tensor 'token_embd.weight' appears in two parts", NULL);
	write_part(third, &(struct part){ 2, 2, 5, { "blk.1.attn_q.weight", "output.weight" } });
	expect_open_fail(first, "split.no 2 of 2, expected part 2 of 3", NULL);
	free(first);
	free(third);
	free(dir);
}

/* Part one of a split whose keys are out of range or whose name has no part number. */
static void write_split_keys(const char *path, uint32_t type, uint64_t no, uint64_t count)
{
	struct ggufw *w = ggufw_new();
	struct rb r = { 0 };
	rb_key(&r, "split.no", type);
	rb_put(&r, &no, gguf_type_size(type));
	rb_key(&r, "split.count", type);
	rb_put(&r, &count, gguf_type_size(type));
	ggufw_raw(w, r.p, r.len, 2);
	rb_free(&r);
	write_ok(w, path);
	ggufw_free(w);
}

static void test_split_keys_out_of_range(void **state)
{
	(void)state;
	char *path = tu_path("big-00001-of-01000.gguf");
	write_split_keys(path, GGUF_T_UINT16, 0, 1000);
	expect_open_fail(path, "split.count 1000 exceeds 256", NULL);
	write_split_keys(path, GGUF_T_UINT64, UINT64_MAX, 3);
	expect_open_fail(path, "split.no", NULL);
	write_split_keys(path, GGUF_T_INT64, (uint64_t)-1, 3);
	expect_open_fail(path, "split.no -1 is outside 0..2", NULL);
	free(path);
	path = tu_path("short.gguf");
	write_split_keys(path, GGUF_T_UINT16, 0, 2);
	expect_open_fail(path, "cannot derive split part names", NULL);
	free(path);
}

/* ---- a sparse 20 GiB model: only the header is read ---- */

static long maxrss_kib(void)
{
	struct rusage ru;
	assert_int_equal(getrusage(RUSAGE_SELF, &ru), 0);
	return ru.ru_maxrss;
}

static void test_sparse_20g(void **state)
{
	(void)state;
	const uint64_t size = 8192ull * 1310720 * 2;
	char *path = tu_path("sparse-20g.gguf");
	struct ggufw *w = ggufw_new();
	ggufw_str(w, "general.architecture", "llama");
	assert_int_equal(ggufw_tensor(w, "token_embd.weight", F16, 2,
	    (int64_t[]){ 8192, 1310720 }), 0);
	write_ok(w, path);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal((uint64_t)st.st_size, ggufw_file_size(w));
	long before = maxrss_kib();
	struct gguf *g = open_ok(path);
	long grown = maxrss_kib() - before;
	assert_int_equal(g->tensors[0].size, size);
	assert_int_equal(g->total_file_size, (uint64_t)st.st_size);
	assert_int_equal(g->header_bytes + size, (uint64_t)st.st_size);
	assert_true(grown < 64 * 1024);                 /* KiB: far below 20 GiB */
	assert_true(g->buf_len < 8u << 20);             /* bytes read: the header and a little */
	gguf_close(g);
	assert_int_equal(unlink(path), 0);
	ggufw_free(w);
	free(path);
}

/* ---- the file changes after gguf_open: what was read stays valid ---- */

/* A model truncated to nothing after it was opened (a copy over it, a re-download)
 * still answers every question about its header: the reader holds the bytes it read
 * instead of a mapping that would raise SIGBUS on a page past the new end. */
static void test_truncated_after_open(void **state)
{
	(void)state;
	char *path = tu_path("truncated-later.gguf");
	uint64_t n_kv = write_all_types(path);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	struct gguf *g = open_ok(path);
	assert_int_equal(truncate(path, 0), 0);
	check_all_types_layout(g, n_kv, (uint64_t)st.st_size);
	check_scalars(g);
	check_floats_strings(g);
	check_arrays(g);
	check_nested(g);
	gguf_close(g);
	expect_open_fail(path, "file ends inside magic", "at byte 0");
	free(path);
}

/* A header of several MiB (a big vocabulary) is read in pieces as the parser needs
 * them; values on either side of every piece's edge come back intact. */
static void test_big_header(void **state)
{
	(void)state;
	enum { N = 200000 };
	char *path = tu_path("big-header.gguf");
	struct ggufw *w = ggufw_new();
	int32_t *v = xcalloc(N, sizeof *v);
	for (int i = 0; i < N; i++)
		v[i] = i * 7 - 3;
	ggufw_str(w, "general.architecture", "llama");
	for (int k = 0; k < 8; k++) {
		char key[32];
		snprintf(key, sizeof key, "t.ints%d", k);
		ggufw_arr_i32(w, key, v, N);
	}
	ggufw_str(w, "t.last", "the end");
	assert_int_equal(ggufw_tensor(w, "token_embd.weight", F32, 2, (int64_t[]){ 64, 4 }), 0);
	write_ok(w, path);
	struct gguf *g = open_ok(path);
	assert_true(g->header_bytes > 6u << 20);
	for (int k = 0; k < 8; k++) {
		char key[32];
		snprintf(key, sizeof key, "t.ints%d", k);
		int64_t i = gguf_find(g, key);
		assert_true(i >= 0);
		for (int j = 0; j < N; j += 997) {
			int64_t x;
			assert_int_equal(gguf_arr_int(&g->kv[i], (uint64_t)j, &x), 0);
			assert_int_equal(x, v[j]);
		}
	}
	char buf[32];
	assert_int_equal(gguf_get_str(g, "t.last", buf, sizeof buf), 0);
	assert_string_equal(buf, "the end");
	assert_string_equal(g->tensors[0].name, "token_embd.weight");
	gguf_close(g);
	ggufw_free(w);
	free(v);
	free(path);
}

/* Writes a model whose header is a vocabulary of n strings of 1 to 40 bytes ("tok<i>",
 * padded with 'x'), so that strings straddle every piece the reader reads. */
static void write_vocab(const char *path, int n)
{
	struct ggufw *w = ggufw_new();
	struct rb r = { 0 };
	char tok[48];
	ggufw_str(w, "general.architecture", "llama");
	rb_arr(&r, "tokenizer.ggml.tokens", GGUF_T_STRING, (uint64_t)n);
	for (int i = 0; i < n; i++) {
		int len = snprintf(tok, sizeof tok, "tok%d", i);
		while (len < 1 + i % 40)
			tok[len++] = 'x';
		tok[len] = '\0';
		rb_str(&r, tok);
	}
	ggufw_raw(w, r.p, r.len, 1);
	rb_free(&r);
	ggufw_str(w, "t.last", "after the vocabulary");
	assert_int_equal(ggufw_tensor(w, "token_embd.weight", F32, 2, (int64_t[]){ 64, 4 }), 0);
	write_ok(w, path);
	ggufw_free(w);
}

/* The folder scan lends one buffer to every open (gguf_open_buf): a big header, then a
 * small one read into the same (larger, used) memory, then both open at once, read
 * exactly as gguf_open reads them; the buffer is kept between opens. */
static void test_lent_buffer(void **state)
{
	(void)state;
	enum { N = 300000 };
	char *big = tu_path("lent-vocab.gguf"), *small = tu_path("lent-all-types.gguf");
	write_vocab(big, N);
	uint64_t n_kv = write_all_types(small);
	struct stat st;
	assert_int_equal(stat(small, &st), 0);
	struct gguf_buf b = { 0 };
	char err[GGUF_ERR_LEN + 256], s[64];
	struct gguf *g = gguf_open_buf(big, &b, err, sizeof err);
	assert_non_null(g);
	assert_null(b.p); /* held by g */
	const struct gguf_kv *kv = kv_of(g, "tokenizer.ggml.tokens");
	assert_int_equal(kv->arr_n, N);
	assert_int_equal(gguf_get_str(g, "t.last", s, sizeof s), 0);
	assert_string_equal(s, "after the vocabulary");
	assert_true(g->header_bytes > 4u << 20);
	gguf_close(g);
	assert_non_null(b.p); /* given back */
	size_t cap = b.cap;
	g = gguf_open_buf(small, &b, err, sizeof err);
	assert_non_null(g);
	check_all_types_layout(g, n_kv, (uint64_t)st.st_size);
	check_scalars(g);
	check_floats_strings(g);
	check_arrays(g);
	check_nested(g);
	struct gguf *g2 = gguf_open_buf(big, &b, err, sizeof err); /* b is empty: fresh */
	assert_non_null(g2);
	assert_int_equal(gguf_get_str(g2, "t.last", s, sizeof s), 0);
	assert_string_equal(s, "after the vocabulary");
	gguf_close(g);
	gguf_close(g2);
	assert_true(b.cap >= cap); /* the larger of the two kept, the other unmapped */
	gguf_buf_free(&b);
	assert_null(b.p);
	assert_int_equal(unlink(big), 0);
	free(big);
	free(small);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_all_types),
		cmocka_unit_test(test_all_types_in_memory),
		cmocka_unit_test(test_tensor_table),
		cmocka_unit_test(test_ggml_types),
		cmocka_unit_test(test_versions),
		cmocka_unit_test(test_split_ok),
		cmocka_unit_test(test_split_big_first_part),
		cmocka_unit_test(test_split_missing_part),
		cmocka_unit_test(test_split_bad_count),
		cmocka_unit_test(test_split_inconsistent),
		cmocka_unit_test(test_split_keys_out_of_range),
		cmocka_unit_test(test_sparse_20g),
		cmocka_unit_test(test_truncated_after_open),
		cmocka_unit_test(test_big_header),
		cmocka_unit_test(test_lent_buffer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
