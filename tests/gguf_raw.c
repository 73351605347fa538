/*
 * gguf_raw: what test_gguf and test_gguf_bad share. A growing byte buffer (struct rb)
 * that builds GGUF bytes by hand, for what the writer (ggufw) refuses to produce; the
 * checks that bytes or a file parse, or fail with a given error at a given byte (parses
 * of broken bytes go through a private copy of exactly their length, so that a read
 * past the end is caught in the sanitizer build); and the valid v3 file with every
 * value type, which the first checks read back and the second breaks byte by byte.
 */
#include "testutil.h"
#include "gguf_raw.h"
#include "util.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rb_put(struct rb *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2;
		b->p = xrealloc(b->p, b->cap);
	}
	if (n > 0)
		memcpy(b->p + b->len, p, n);
	b->len += n;
}

void rb_u8(struct rb *b, uint8_t v) { rb_put(b, &v, 1); }
void rb_u16(struct rb *b, uint16_t v) { rb_put(b, &v, 2); }
void rb_u32(struct rb *b, uint32_t v) { rb_put(b, &v, 4); }
void rb_u64(struct rb *b, uint64_t v) { rb_put(b, &v, 8); }
void rb_f32(struct rb *b, float v) { rb_put(b, &v, 4); }
void rb_f64(struct rb *b, double v) { rb_put(b, &v, 8); }

void rb_str(struct rb *b, const char *s)
{
	rb_u64(b, strlen(s));
	rb_put(b, s, strlen(s));
}

void rb_key(struct rb *b, const char *key, uint32_t type)
{
	rb_str(b, key);
	rb_u32(b, type);
}

/* Key of an array: its element type and count follow; the elements are the caller's. */
void rb_arr(struct rb *b, const char *key, uint32_t elem, uint64_t n)
{
	rb_key(b, key, GGUF_T_ARRAY);
	rb_u32(b, elem);
	rb_u64(b, n);
}

void rb_header(struct rb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
	rb_put(b, "GGUF", 4);
	rb_u32(b, version);
	rb_u64(b, n_tensors);
	rb_u64(b, n_kv);
}

void rb_tensor(struct rb *b, const char *name, uint32_t n_dims, const int64_t *ne,
    uint32_t type, uint64_t offset)
{
	rb_str(b, name);
	rb_u32(b, n_dims);
	for (uint32_t i = 0; i < n_dims; i++)
		rb_u64(b, (uint64_t)ne[i]);
	rb_u32(b, type);
	rb_u64(b, offset);
}

void rb_zeros(struct rb *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		rb_u8(b, 0);
}

void rb_align(struct rb *b, size_t a)
{
	rb_zeros(b, (a - b->len % a) % a);
}

void rb_free(struct rb *b)
{
	free(b->p);
	memset(b, 0, sizeof *b);
}

void expect_in(const char *s, const char *sub)
{
	if (strstr(s, sub) == NULL)
		fail_msg("'%s' does not contain '%s'", s, sub);
}

/* Parses a private copy of exactly len bytes. Returns the result; *copy must be freed
 * after gguf_close (the result borrows it). */
struct gguf *parse_exact(const void *p, size_t len, uint8_t **copy, char *err,
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
void expect_fail_at(const void *p, size_t len, const char *what, int64_t at)
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

void expect_fail(const struct rb *b, const char *what)
{
	expect_fail_at(b->p, b->len, what, -1);
}

/* Parses b (which must stay alive until gguf_close) or fails the test. */
struct gguf *parse_ok(const struct rb *b)
{
	char err[GGUF_ERR_LEN] = "";
	struct gguf *g = gguf_parse(b->p, b->len, err, sizeof err);
	if (g == NULL)
		fail_msg("valid bytes rejected: %s", err);
	return g;
}

struct gguf *open_ok(const char *path)
{
	char err[GGUF_ERR_LEN + 4096] = "";
	struct gguf *g = gguf_open(path, err, sizeof err);
	if (g == NULL)
		fail_msg("gguf_open: %s", err);
	return g;
}

/* Asserts that gguf_open fails with an error containing both strings. */
void expect_open_fail(const char *path, const char *what, const char *what2)
{
	char err[GGUF_ERR_LEN + 4096] = "";
	struct gguf *g = gguf_open(path, err, sizeof err);
	if (g != NULL)
		fail_msg("%s opened; expected an error containing '%s'", path, what);
	expect_in(err, what);
	if (what2 != NULL)
		expect_in(err, what2);
}

void write_ok(struct ggufw *w, const char *path)
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
uint64_t write_all_types(const char *path)
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

void one_string_file(struct rb *b, uint32_t version)
{
	rb_header(b, version, 0, 1);
	rb_key(b, "general.name", GGUF_T_STRING);
	rb_str(b, "tiny");
}
