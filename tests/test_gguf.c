/*
 * test_gguf: the GGUF reader as a user meets it. Files are built with the writer
 * (ggufw) or byte by byte (struct rb, for what the writer refuses to produce), then
 * read back: values of every metadata type, the tensor table, versions, split models
 * and a sparse 20 GiB model. Each kind of broken file must give NULL and an error that
 * says what is wrong and at which byte. Files live under tu_tmpdir(); parses of broken
 * bytes go through a private copy of exactly their length, so that a read past the end
 * is caught in the sanitizer build.
 */
#include "testutil.h"
#include "gguf.h"
#include "ggufw.h"
#include "util.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define F32 0
#define F16 1
#define Q8_0 8
#define Q4_K 12
#define BF16 30
#define MXFP4 39

/* A growing byte buffer for hand-made GGUF bytes. */
struct rb {
	uint8_t *p;
	size_t len, cap;
};

static void rb_put(struct rb *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2;
		b->p = xrealloc(b->p, b->cap);
	}
	if (n > 0)
		memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void rb_u8(struct rb *b, uint8_t v) { rb_put(b, &v, 1); }
static void rb_u16(struct rb *b, uint16_t v) { rb_put(b, &v, 2); }
static void rb_u32(struct rb *b, uint32_t v) { rb_put(b, &v, 4); }
static void rb_u64(struct rb *b, uint64_t v) { rb_put(b, &v, 8); }
static void rb_f32(struct rb *b, float v) { rb_put(b, &v, 4); }
static void rb_f64(struct rb *b, double v) { rb_put(b, &v, 8); }

static void rb_str(struct rb *b, const char *s)
{
	rb_u64(b, strlen(s));
	rb_put(b, s, strlen(s));
}

static void rb_key(struct rb *b, const char *key, uint32_t type)
{
	rb_str(b, key);
	rb_u32(b, type);
}

/* Key of an array: its element type and count follow; the elements are the caller's. */
static void rb_arr(struct rb *b, const char *key, uint32_t elem, uint64_t n)
{
	rb_key(b, key, GGUF_T_ARRAY);
	rb_u32(b, elem);
	rb_u64(b, n);
}

static void rb_header(struct rb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
	rb_put(b, "GGUF", 4);
	rb_u32(b, version);
	rb_u64(b, n_tensors);
	rb_u64(b, n_kv);
}

static void rb_tensor(struct rb *b, const char *name, uint32_t n_dims, const int64_t *ne,
    uint32_t type, uint64_t offset)
{
	rb_str(b, name);
	rb_u32(b, n_dims);
	for (uint32_t i = 0; i < n_dims; i++)
		rb_u64(b, (uint64_t)ne[i]);
	rb_u32(b, type);
	rb_u64(b, offset);
}

static void rb_zeros(struct rb *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		rb_u8(b, 0);
}

static void rb_align(struct rb *b, size_t a)
{
	rb_zeros(b, (a - b->len % a) % a);
}

static void rb_free(struct rb *b)
{
	free(b->p);
	memset(b, 0, sizeof *b);
}

static void expect_in(const char *s, const char *sub)
{
	if (strstr(s, sub) == NULL)
		fail_msg("'%s' does not contain '%s'", s, sub);
}

/* Parses a private copy of exactly len bytes. Returns the result; *copy must be freed
 * after gguf_close (the result borrows it). */
static struct gguf *parse_exact(const void *p, size_t len, uint8_t **copy, char *err,
    size_t errlen)
{
	*copy = xmalloc(len ? len : 1);
	if (len > 0)
		memcpy(*copy, p, len);
	err[0] = '\0';
	return gguf_parse(*copy, len, err, errlen);
}

/* Asserts that the bytes do not parse and that the error contains what and names the
 * byte offset at (any offset when at is negative). */
static void expect_fail_at(const void *p, size_t len, const char *what, int64_t at)
{
	char err[GGUF_ERR_LEN], where[64];
	uint8_t *copy;
	struct gguf *g = parse_exact(p, len, &copy, err, sizeof err);
	if (g != NULL)
		fail_msg("parsed; expected an error containing '%s'", what);
	free(copy);
	expect_in(err, what);
	expect_in(err, "(at byte ");
	if (at >= 0) {
		snprintf(where, sizeof where, "(at byte %" PRId64 ")", at);
		expect_in(err, where);
	}
}

static void expect_fail(const struct rb *b, const char *what)
{
	expect_fail_at(b->p, b->len, what, -1);
}

/* Parses b (which must stay alive until gguf_close) or fails the test. */
static struct gguf *parse_ok(const struct rb *b)
{
	char err[GGUF_ERR_LEN] = "";
	struct gguf *g = gguf_parse(b->p, b->len, err, sizeof err);
	if (g == NULL)
		fail_msg("valid bytes rejected: %s", err);
	return g;
}

static struct gguf *open_ok(const char *path)
{
	char err[GGUF_ERR_LEN + 4096] = "";
	struct gguf *g = gguf_open(path, err, sizeof err);
	if (g == NULL)
		fail_msg("gguf_open: %s", err);
	return g;
}

/* Asserts that gguf_open fails with an error containing both strings. */
static void expect_open_fail(const char *path, const char *what, const char *what2)
{
	char err[GGUF_ERR_LEN + 4096] = "";
	struct gguf *g = gguf_open(path, err, sizeof err);
	if (g != NULL)
		fail_msg("%s opened; expected an error containing '%s'", path, what);
	expect_in(err, what);
	if (what2 != NULL)
		expect_in(err, what2);
}

static void write_ok(struct ggufw *w, const char *path)
{
	char err[GGUF_ERR_LEN + 4096];
	if (ggufw_write(w, path, GGUFW_HOLE, 1, err, sizeof err) < 0)
		fail_msg("ggufw_write: %s", err);
}

/* ---- a valid v3 file with every value type, alignment 64 ---- */

/* Scalars the writer has no call for, as raw key/value bytes. */
static void add_raw_scalars(struct ggufw *w)
{
	struct rb r = { 0 };
	rb_key(&r, "t.u8", GGUF_T_UINT8);
	rb_u8(&r, 200);
	rb_key(&r, "t.i8", GGUF_T_INT8);
	rb_u8(&r, (uint8_t)-100);
	rb_key(&r, "t.u16", GGUF_T_UINT16);
	rb_u16(&r, 60000);
	rb_key(&r, "t.i16", GGUF_T_INT16);
	rb_u16(&r, (uint16_t)-30000);
	rb_key(&r, "t.i64", GGUF_T_INT64);
	rb_u64(&r, (uint64_t)-5000000000000LL);
	rb_key(&r, "t.f64", GGUF_T_FLOAT64);
	rb_f64(&r, 0.0025);
	ggufw_raw(w, r.p, r.len, 6);
	rb_free(&r);
}

/* Arrays of strings, floats, bools, and an array of arrays [[7, -8, 9], ["x"]]. */
static void add_raw_arrays(struct ggufw *w)
{
	struct rb r = { 0 };
	rb_arr(&r, "t.strs", GGUF_T_STRING, 3);
	rb_str(&r, "a");
	rb_str(&r, "bc");
	rb_str(&r, "");
	rb_arr(&r, "t.nested", GGUF_T_ARRAY, 2);
	rb_u32(&r, GGUF_T_INT32);
	rb_u64(&r, 3);
	rb_u32(&r, 7);
	rb_u32(&r, (uint32_t)-8);
	rb_u32(&r, 9);
	rb_u32(&r, GGUF_T_STRING);
	rb_u64(&r, 1);
	rb_str(&r, "x");
	rb_arr(&r, "t.f32s", GGUF_T_FLOAT32, 3);
	rb_f32(&r, 1.9f);
	rb_f32(&r, -2.5f);
	rb_f32(&r, NAN);
	rb_arr(&r, "t.bools", GGUF_T_BOOL, 2);
	rb_u8(&r, 1);
	rb_u8(&r, 0);
	ggufw_raw(w, r.p, r.len, 4);
	rb_free(&r);
}

static void add_writer_values(struct ggufw *w)
{
	static const int32_t ints[] = { 1, -2, 300000 };
	ggufw_u32(w, "t.u32", 4000000000u);
	ggufw_i32(w, "t.i32", -2000000000);
	ggufw_f32(w, "t.f32", 0.5f);
	ggufw_bool(w, "t.bool", 1);
	ggufw_str(w, "t.str", "hello, world");
	ggufw_u64(w, "t.u64", 1ull << 40);
	ggufw_u64(w, "t.u64max", UINT64_MAX);
	ggufw_arr_i32(w, "t.ints", ints, 3);
	ggufw_u32(w, "general.alignment", 64);
}

#define ALL_N_KV 19
#define ALL_DATA (128 + 192 + 128) /* tensor sizes, each a multiple of 64 */

/* The writer pads its header to 32 bytes; for the reader's alignment of 64 to agree,
 * adds a 32-byte filler key when the header would end between two multiples of 64. */
static int align_header_64(struct ggufw *w)
{
	uint64_t h = ggufw_file_size(w) - ALL_DATA;
	if (h % 64 == 0)
		return 0;
	ggufw_str(w, "test.pad", "abcd"); /* 8 + 8 + 4 + 8 + 4 bytes */
	return 1;
}

/* Writes the every-type file to path. Returns its key count. */
static uint64_t write_all_types(const char *path)
{
	static const int64_t a[2] = { 16, 2 }, b[2] = { 32, 3 }, c[4] = { 4, 2, 2, 2 };
	struct ggufw *w = ggufw_new();
	add_raw_scalars(w);
	add_raw_arrays(w);
	add_writer_values(w);
	assert_int_equal(ggufw_tensor(w, "blk.0.attn_q.weight", F32, 2, a), 0);
	assert_int_equal(ggufw_tensor(w, "blk.0.ffn_up.weight", F16, 2, b), 0);
	assert_int_equal(ggufw_tensor(w, "blk.0.four_d", F32, 4, c), 0);
	uint64_t n_kv = ALL_N_KV + (uint64_t)align_header_64(w);
	assert_int_equal((ggufw_file_size(w) - ALL_DATA) % 64, 0);
	write_ok(w, path);
	ggufw_free(w);
	return n_kv;
}

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
	assert_null(g->map);
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

static void one_string_file(struct rb *b, uint32_t version)
{
	rb_header(b, version, 0, 1);
	rb_key(b, "general.name", GGUF_T_STRING);
	rb_str(b, "tiny");
}

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

static void expect_version_fail(uint32_t version, const char *what)
{
	struct rb b = { 0 };
	one_string_file(&b, version);
	expect_fail_at(b.p, b.len, what, 4);
	rb_free(&b);
}

static void test_bad_versions(void **state)
{
	(void)state;
	expect_version_fail(1, "version 1 is not supported");
	expect_version_fail(99, "unsupported GGUF version 99");
	expect_version_fail(4, "unsupported GGUF version 4");
	expect_version_fail(0x03000000, "big-endian");
	expect_version_fail(0x02000000, "byte-swapped");
}

/* ---- broken headers ---- */

static void test_bad_magic(void **state)
{
	(void)state;
	struct rb b = { 0 };
	one_string_file(&b, 3);
	b.p[0] = 'X';
	expect_fail_at(b.p, b.len, "not a GGUF file", 0);
	memcpy(b.p, "gguf", 4);
	expect_fail_at(b.p, b.len, "not a GGUF file", 0);
	expect_fail_at("", 0, "file ends inside magic", 0);
	expect_fail_at("GGU", 3, "file ends inside magic", 0);
	expect_fail_at("GGUF\3\0\0", 7, "file ends inside version", 4);
	rb_free(&b);
}

/* Every prefix of a valid file must be rejected with an offset, never read past. */
static void test_truncated_everywhere(void **state)
{
	(void)state;
	char *path = tu_path("trunc.gguf");
	write_all_types(path);
	size_t len;
	uint8_t *buf = tu_read_file(path, &len);
	assert_non_null(buf);
	assert_true(len > 500);
	for (size_t n = 0; n < len; n++)
		expect_fail_at(buf, n, "", -1);
	char err[GGUF_ERR_LEN];
	uint8_t *copy;
	struct gguf *g = parse_exact(buf, len, &copy, err, sizeof err);
	assert_non_null(g);
	gguf_close(g);
	free(copy);
	free(buf);
	free(path);
}

/* Overwriting any header byte with 0x00 or 0xff gives a valid file or an error with an
 * offset; nothing crashes. */
static void test_corrupt_every_header_byte(void **state)
{
	(void)state;
	char *path = tu_path("corrupt.gguf");
	write_all_types(path);
	size_t len;
	uint8_t *buf = tu_read_file(path, &len);
	assert_non_null(buf);
	int rejected = 0;
	for (size_t i = 0; i < len - ALL_DATA; i++) {
		uint8_t keep = buf[i];
		for (int v = 0; v < 2; v++) {
			char err[GGUF_ERR_LEN];
			uint8_t *copy;
			buf[i] = v ? 0xff : 0x00;
			struct gguf *g = parse_exact(buf, len, &copy, err, sizeof err);
			if (g == NULL) {
				expect_in(err, "(at byte ");
				rejected++;
			}
			gguf_close(g);
			free(copy);
		}
		buf[i] = keep;
	}
	assert_true(rejected > 0);
	free(buf);
	free(path);
}

static void test_huge_counts(void **state)
{
	(void)state;
	struct rb b = { 0 };
	rb_header(&b, 3, 1ull << 40, 0);
	rb_zeros(&b, 64);
	expect_fail_at(b.p, b.len, "tensor count 1099511627776 is impossible", 8);
	rb_free(&b);
	rb_header(&b, 3, 3, 0); /* three tensors cannot fit in 64 bytes */
	rb_zeros(&b, 64);
	expect_fail_at(b.p, b.len, "tensor count 3 is impossible", 8);
	rb_free(&b);
	rb_header(&b, 3, 0, UINT64_MAX);
	rb_zeros(&b, 64);
	expect_fail_at(b.p, b.len, "key count 18446744073709551615 is impossible", 16);
	rb_free(&b);
	rb_header(&b, 3, 0, 5);
	rb_zeros(&b, 64);
	expect_fail_at(b.p, b.len, "key count 5 is impossible", 16);
	rb_free(&b);
}

static void test_huge_strings(void **state)
{
	(void)state;
	struct rb b = { 0 };
	rb_header(&b, 3, 0, 1);
	rb_key(&b, "a", GGUF_T_STRING);
	rb_u64(&b, UINT64_MAX);
	rb_zeros(&b, 16);
	expect_fail_at(b.p, b.len, "file ends inside string value", 45);
	rb_free(&b);
	rb_header(&b, 3, 0, 1);
	rb_key(&b, "a", GGUF_T_STRING);
	rb_u64(&b, 17);
	rb_zeros(&b, 16);
	expect_fail_at(b.p, b.len, "17 bytes needed, 16 left", 45);
	rb_free(&b);
}

static void expect_key_len_fail(uint64_t len, const char *what)
{
	struct rb b = { 0 };
	rb_header(&b, 3, 0, 1);
	rb_u64(&b, len);
	rb_zeros(&b, 200);
	expect_fail_at(b.p, b.len, what, 24);
	rb_free(&b);
}

static void test_key_lengths(void **state)
{
	(void)state;
	expect_key_len_fail(65536, "key length 65536 exceeds the limit of 65535");
	expect_key_len_fail(UINT64_MAX, "exceeds the limit of 65535");
	expect_key_len_fail(0, "key 0 is empty");
	struct rb b = { 0 };
	rb_header(&b, 3, 0, 1);
	rb_u64(&b, 300);
	rb_zeros(&b, 100);
	expect_fail_at(b.p, b.len, "file ends inside key", 32);
	rb_free(&b);
}

static void expect_array_fail(uint32_t elem, uint64_t n, const char *what)
{
	struct rb b = { 0 };
	rb_header(&b, 3, 0, 1);
	rb_arr(&b, "a", elem, n);
	rb_zeros(&b, 256);
	expect_fail_at(b.p, b.len, what, 37);
	rb_free(&b);
}

static void test_huge_arrays(void **state)
{
	(void)state;
	expect_array_fail(GGUF_T_UINT32, 1ull << 62,
	    "array of 4611686018427387904 u32 elements cannot fit");
	expect_array_fail(GGUF_T_UINT64, UINT64_MAX, "u64 elements cannot fit");
	expect_array_fail(GGUF_T_STRING, UINT64_MAX, "string elements cannot fit");
	expect_array_fail(GGUF_T_ARRAY, 1ull << 60, "array elements cannot fit");
	expect_array_fail(GGUF_T_UINT8, 257, "array of 257 u8 elements cannot fit");
	expect_array_fail(13, 1, "array of invalid element type 13");
	expect_array_fail(UINT32_MAX, 1, "array of invalid element type 4294967295");
}

static void test_duplicate_key(void **state)
{
	(void)state;
	struct rb b = { 0 };
	rb_header(&b, 3, 0, 3);
	rb_key(&b, "a.b", GGUF_T_UINT8);
	rb_u8(&b, 1);
	rb_key(&b, "a.bc", GGUF_T_UINT8);
	rb_u8(&b, 2);
	size_t at = b.len;
	rb_key(&b, "a.b", GGUF_T_UINT8);
	rb_u8(&b, 3);
	expect_fail_at(b.p, b.len, "duplicate key 'a.b'", (int64_t)at);
	rb_free(&b);
}

static void test_bad_values(void **state)
{
	(void)state;
	struct rb b = { 0 };
	rb_header(&b, 3, 0, 1);
	rb_key(&b, "a", 13);
	rb_zeros(&b, 16);
	expect_fail_at(b.p, b.len, "invalid value type 13", 37);
	rb_free(&b);
	rb_header(&b, 3, 0, 2);
	rb_key(&b, "ok", GGUF_T_BOOL);
	rb_u8(&b, 1);
	rb_key(&b, "a", GGUF_T_BOOL);
	rb_u8(&b, 2);
	expect_fail_at(b.p, b.len, "bool value 2 is neither 0 nor 1", 52);
	rb_free(&b);
	rb_header(&b, 3, 0, 1);
	rb_arr(&b, "a", GGUF_T_BOOL, 3);
	rb_u8(&b, 0);
	rb_u8(&b, 1);
	rb_u8(&b, 255);
	expect_fail_at(b.p, b.len, "bool value 255", 51);
	rb_free(&b);
}

/* An array of `levels` nested arrays, the innermost holding one u8. */
static void nested_file(struct rb *b, int levels)
{
	rb_header(b, 3, 0, 1);
	rb_key(b, "deep", GGUF_T_ARRAY);
	for (int i = 0; i < levels; i++) {
		rb_u32(b, i < levels - 1 ? GGUF_T_ARRAY : GGUF_T_UINT8);
		rb_u64(b, 1);
	}
	rb_u8(b, 7);
}

static void test_nesting_depth(void **state)
{
	(void)state;
	struct rb b = { 0 };
	nested_file(&b, 8);
	struct gguf *g = parse_ok(&b);
	assert_int_equal(g->kv[0].arr_type, GGUF_T_ARRAY);
	assert_int_equal(g->kv[0].val_len, 7 * 12 + 1);
	gguf_close(g);
	rb_free(&b);
	nested_file(&b, 9);
	expect_fail_at(b.p, b.len, "arrays nested deeper than 8 levels", 40 + 8 * 12);
	rb_free(&b);
}

/* A file with one tensor described by the caller, its data zeroed after the header. */
static void one_tensor_file(struct rb *b, const char *name, uint32_t n_dims,
    const int64_t *ne, uint32_t type, uint64_t data)
{
	rb_header(b, 3, 1, 0);
	rb_tensor(b, name, n_dims, ne, type, 0);
	rb_align(b, 32);
	rb_zeros(b, data);
}

static void expect_tensor_fail(uint32_t n_dims, const int64_t *ne, uint32_t type,
    const char *what)
{
	struct rb b = { 0 };
	one_tensor_file(&b, "w", n_dims, ne, type, 4096);
	expect_fail_at(b.p, b.len, what, 24);
	rb_free(&b);
}

static void test_bad_tensors(void **state)
{
	(void)state;
	const int64_t ne[5] = { 32, 2, 1, 1, 1 };
	expect_tensor_fail(5, ne, F32, "tensor 'w' has 5 dimensions, at most 4 allowed");
	expect_tensor_fail(2, ne, 4, "tensor 'w' has unknown ggml type 4");
	expect_tensor_fail(2, ne, 31, "unknown ggml type 31");
	expect_tensor_fail(2, ne, 1000, "unknown ggml type 1000");
	expect_tensor_fail(2, (int64_t[]){ 100, 2 }, Q4_K,
	    "rows of 100 elements, not a multiple of its block size 256");
	expect_tensor_fail(1, (int64_t[]){ 16 }, Q8_0, "not a multiple of its block size 32");
	expect_tensor_fail(2, (int64_t[]){ 1ll << 32, 1ll << 32 }, F32,
	    "more elements than fit in 64 bits");
	expect_tensor_fail(4, (int64_t[]){ 1 << 16, 1 << 16, 1 << 16, 1 << 16 }, F16,
	    "more elements than fit in 64 bits");
	expect_tensor_fail(2, (int64_t[]){ 32, -1 }, F32, "dimension 1 is negative");
	expect_tensor_fail(1, (int64_t[]){ 1ll << 62 }, F32, "size in bytes overflows");
}

static void test_tensor_names(void **state)
{
	(void)state;
	char name[65];
	memset(name, 'n', 64);
	name[64] = '\0';
	struct rb b = { 0 };
	one_tensor_file(&b, name, 1, (int64_t[]){ 8 }, F32, 32);
	expect_fail_at(b.p, b.len, "tensor name length 64 exceeds the limit of 63", 24);
	rb_free(&b);
	name[63] = '\0'; /* 63 characters is the longest name */
	one_tensor_file(&b, name, 1, (int64_t[]){ 8 }, F32, 32);
	struct gguf *g = parse_ok(&b);
	assert_string_equal(g->tensors[0].name, name);
	gguf_close(g);
	rb_free(&b);
	rb_header(&b, 3, 1, 0);
	rb_u64(&b, 3);
	rb_put(&b, "a\0b", 3);
	rb_u32(&b, 1);
	rb_u64(&b, 8);
	rb_u32(&b, F32);
	rb_u64(&b, 0);
	rb_align(&b, 32);
	rb_zeros(&b, 32);
	expect_fail_at(b.p, b.len, "tensor name contains a NUL byte", 24);
	rb_free(&b);
}

static void test_duplicate_tensor(void **state)
{
	(void)state;
	struct rb b = { 0 };
	rb_header(&b, 3, 2, 0);
	rb_tensor(&b, "t", 1, (int64_t[]){ 32 }, F32, 0);
	size_t at = b.len;
	rb_tensor(&b, "t", 1, (int64_t[]){ 32 }, F32, 128);
	rb_align(&b, 32);
	rb_zeros(&b, 256);
	expect_fail_at(b.p, b.len, "duplicate tensor name 't'", (int64_t)at);
	rb_free(&b);
}

static void test_data_offsets(void **state)
{
	(void)state;
	struct rb b = { 0 };
	rb_header(&b, 3, 1, 0);
	rb_tensor(&b, "w", 1, (int64_t[]){ 32 }, F32, 32);
	rb_align(&b, 32);
	size_t data = b.len;
	rb_zeros(&b, 256);
	expect_fail_at(b.p, b.len, "tensor 'w' has data offset 32, expected 0", (int64_t)data);
	rb_free(&b);
	/* the second tensor must start where the first one's padded data ends */
	rb_header(&b, 3, 2, 0);
	rb_tensor(&b, "a", 1, (int64_t[]){ 7 }, F32, 0);
	rb_tensor(&b, "b", 1, (int64_t[]){ 8 }, F32, 28);
	rb_align(&b, 32);
	rb_zeros(&b, 256);
	expect_fail(&b, "tensor 'b' has data offset 28, expected 32");
	rb_free(&b);
}

static void test_data_past_end(void **state)
{
	(void)state;
	struct rb b = { 0 };
	one_tensor_file(&b, "w", 2, (int64_t[]){ 1024, 4 }, F32, 16383);
	size_t len = b.len;
	expect_fail_at(b.p, len, "file truncated: tensor 'w' needs bytes up to", (int64_t)len);
	rb_zeros(&b, 1);
	struct gguf *g = parse_ok(&b);
	assert_int_equal(g->tensors[0].size, 16384);
	assert_int_equal(g->header_bytes + 16384, b.len);
	gguf_close(g);
	rb_free(&b);
	/* a header that is complete but has no data section at all */
	rb_header(&b, 3, 1, 0);
	rb_tensor(&b, "w", 1, (int64_t[]){ 8 }, F32, 0);
	expect_fail(&b, "file truncated");
	rb_free(&b);
}

static void alignment_file(struct rb *b, uint32_t type, uint64_t value)
{
	rb_header(b, 3, 0, 1);
	rb_key(b, "general.alignment", type);
	rb_put(b, &value, gguf_type_size(type));
}

static void test_alignment(void **state)
{
	(void)state;
	static const uint32_t bad[] = { 0, 3, 48, 100, 1u << 25, 0x80000000u };
	struct rb b = { 0 };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		alignment_file(&b, GGUF_T_UINT32, bad[i]);
		expect_fail_at(b.p, b.len, "is not a power of two", 24);
		rb_free(&b);
	}
	alignment_file(&b, GGUF_T_UINT64, 64);
	expect_fail_at(b.p, b.len, "general.alignment must be u32, not u64", 24);
	rb_free(&b);
	alignment_file(&b, GGUF_T_INT32, 64);
	expect_fail_at(b.p, b.len, "must be u32, not i32", 24);
	rb_free(&b);
	alignment_file(&b, GGUF_T_UINT32, 1);
	struct gguf *g = parse_ok(&b);
	assert_int_equal(g->alignment, 1);
	gguf_close(g);
	rb_free(&b);
}

/* Alignment 1 packs tensors back to back with no padding at all. */
static void test_alignment_one(void **state)
{
	(void)state;
	struct rb b = { 0 };
	rb_header(&b, 3, 2, 1);
	rb_key(&b, "general.alignment", GGUF_T_UINT32);
	rb_u32(&b, 1);
	rb_tensor(&b, "a", 1, (int64_t[]){ 3 }, F16, 0);
	rb_tensor(&b, "b", 1, (int64_t[]){ 1 }, F32, 6);
	size_t data = b.len;
	rb_zeros(&b, 10);
	struct gguf *g = parse_ok(&b);
	assert_int_equal(g->header_bytes, data);
	assert_int_equal(g->tensors[1].offset, 6);
	gguf_close(g);
	rb_free(&b);
}

static void test_error_buffer(void **state)
{
	(void)state;
	char err[8];
	memset(err, 'x', sizeof err);
	assert_null(gguf_parse("GGUX", 4, err, sizeof err));
	assert_int_equal(strlen(err), sizeof err - 1);
	assert_memory_equal(err, "not a G", 8);
}

/* ---- opening files ---- */

static void test_open_errors(void **state)
{
	(void)state;
	char *missing = tu_path("missing.gguf");
	expect_open_fail(missing, missing, strerror(ENOENT));
	free(missing);
	expect_open_fail(tu_tmpdir(), "not a regular file", NULL);
	char *empty = tu_path("empty.gguf");
	assert_int_equal(tu_write_file(empty, "", 0), 0);
	expect_open_fail(empty, "empty.gguf: file ends inside magic", "(at byte 0)");
	free(empty);
	static const char zip[] = "PK\3\4 not a model at all";
	char *junk = tu_path("junk.gguf");
	assert_int_equal(tu_write_file(junk, zip, sizeof zip - 1), 0);
	expect_open_fail(junk, "not a GGUF file", "(at byte 0)");
	free(junk);
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

/* Pages of the mapping that are in memory. */
static size_t resident_pages(const struct gguf *g)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), n = (g->map_len + page - 1) / page, r = 0;
	unsigned char *vec = xmalloc(n);
	assert_int_equal(mincore(g->map, g->map_len, vec), 0);
	for (size_t i = 0; i < n; i++)
		r += vec[i] & 1;
	free(vec);
	return r;
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
	assert_true(resident_pages(g) < 16 * 1024 * 1024 / (size_t)sysconf(_SC_PAGESIZE));
	gguf_close(g);
	assert_int_equal(unlink(path), 0);
	ggufw_free(w);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_all_types),
		cmocka_unit_test(test_all_types_in_memory),
		cmocka_unit_test(test_tensor_table),
		cmocka_unit_test(test_ggml_types),
		cmocka_unit_test(test_versions),
		cmocka_unit_test(test_bad_versions),
		cmocka_unit_test(test_bad_magic),
		cmocka_unit_test(test_truncated_everywhere),
		cmocka_unit_test(test_corrupt_every_header_byte),
		cmocka_unit_test(test_huge_counts),
		cmocka_unit_test(test_huge_strings),
		cmocka_unit_test(test_key_lengths),
		cmocka_unit_test(test_huge_arrays),
		cmocka_unit_test(test_duplicate_key),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_nesting_depth),
		cmocka_unit_test(test_bad_tensors),
		cmocka_unit_test(test_tensor_names),
		cmocka_unit_test(test_duplicate_tensor),
		cmocka_unit_test(test_data_offsets),
		cmocka_unit_test(test_data_past_end),
		cmocka_unit_test(test_alignment),
		cmocka_unit_test(test_alignment_one),
		cmocka_unit_test(test_error_buffer),
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test(test_split_ok),
		cmocka_unit_test(test_split_missing_part),
		cmocka_unit_test(test_split_bad_count),
		cmocka_unit_test(test_split_inconsistent),
		cmocka_unit_test(test_split_keys_out_of_range),
		cmocka_unit_test(test_sparse_20g),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
