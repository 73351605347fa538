/*
 * test_gguf_bad: the GGUF reader against hostile and broken input. Each kind of broken
 * file must give NULL and an error that says what is wrong and at which byte: bad
 * versions and magic, every truncation of a valid file, every header byte overwritten,
 * impossible counts and lengths, huge arrays, duplicate keys and tensors, bad values,
 * deep nesting, bad tensors, data offsets and alignments, files that cannot be opened
 * and a header claiming more than the 256 MiB cap. Bytes are built by hand (gguf_raw.h) and parsed through a private copy of
 * exactly their length, so that a read past the end is caught in the sanitizer build.
 */
#include "testutil.h"
#include "gguf_raw.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- versions ---- */

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

/* A file whose header claims more than GGUF_MAX_HEADER bytes (a 300 MiB string in a
 * sparse file) is refused before any of it is read, with the offset of the string. */
static void test_header_cap(void **state)
{
	(void)state;
	struct rb b = { 0 };
	rb_header(&b, 3, 0, 1);
	rb_key(&b, "general.name", 8);
	rb_u64(&b, 300ull << 20);
	size_t at = b.len;
	char *path = tu_path("huge-header.gguf");
	assert_int_equal(tu_write_file(path, b.p, b.len), 0);
	assert_int_equal(truncate(path, (off_t)(at + (300ull << 20))), 0);
	char want[32];
	snprintf(want, sizeof want, "(at byte %zu)", at);
	expect_open_fail(path, "goes past the 256 MiB limit for a GGUF header", want);
	unlink(path);
	free(path);
	rb_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
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
		cmocka_unit_test(test_header_cap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
