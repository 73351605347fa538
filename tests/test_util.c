/*
 * test_util: the parsers and formatter that read what people type on the command line
 * (sizes like "24GiB", bounded integers) and print sizes back to them. The allocation
 * and logging helpers are exercised by every other test.
 */
#include "testutil.h"
#include "util.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define KiB 1024ull
#define MiB (1024ull * KiB)
#define GiB (1024ull * MiB)
#define TiB (1024ull * GiB)

static void expect_size(const char *s, uint64_t want)
{
	uint64_t v = 12345;
	if (util_parse_size(s, &v) != 0)
		fail_msg("util_parse_size(\"%s\") was rejected", s);
	if (v != want)
		fail_msg("util_parse_size(\"%s\") = %llu, want %llu", s, (unsigned long long)v,
		    (unsigned long long)want);
}

static void expect_bad_size(const char *s)
{
	uint64_t v = 12345;
	if (util_parse_size(s, &v) == 0)
		fail_msg("util_parse_size(\"%s\") was accepted as %llu", s,
		    (unsigned long long)v);
	assert_int_equal(v, 12345); /* untouched on error */
}

static void test_size_units(void **state)
{
	(void)state;
	expect_size("6G", 6 * GiB);
	expect_size("512M", 512 * MiB);
	expect_size("24GiB", 24 * GiB);
	expect_size("1.5g", 3 * GiB / 2);
	expect_size("1000", 1000);
	expect_size("0", 0);
	expect_size("4k", 4 * KiB);
	expect_size("2T", 2 * TiB);
	expect_size("8MB", 8 * MiB);
	expect_size("100B", 100);
	expect_size("3gib", 3 * GiB);
}

static void test_size_rejects(void **state)
{
	(void)state;
	expect_bad_size("");
	expect_bad_size("-1");
	expect_bad_size("-0.5G");
	expect_bad_size("6X");
	expect_bad_size("1e30T");
	expect_bad_size("G");
	expect_bad_size("6GG");
	expect_bad_size("6 G");
	expect_bad_size("6Gx");
	expect_bad_size("18446744073709551616");
	expect_bad_size("16777216T"); /* exactly 2^64 */
	expect_bad_size("inf");
	assert_int_equal(util_parse_size(NULL, &(uint64_t){ 0 }), -1);
}

static void expect_int(const char *s, long long min, long long max, long long want)
{
	long long v = -7;
	if (util_parse_int(s, min, max, &v) != 0)
		fail_msg("util_parse_int(\"%s\", %lld, %lld) was rejected", s, min, max);
	assert_int_equal(v, want);
}

static void expect_bad_int(const char *s, long long min, long long max)
{
	long long v = -7;
	if (util_parse_int(s, min, max, &v) == 0)
		fail_msg("util_parse_int(\"%s\", %lld, %lld) accepted %lld", s, min, max, v);
	assert_int_equal(v, -7);
}

static void test_int_bounds(void **state)
{
	(void)state;
	expect_int("5", 1, 10, 5);
	expect_int("1", 1, 10, 1);
	expect_int("10", 1, 10, 10);
	expect_int("-3", -5, 5, -3);
	expect_int("9223372036854775807", 0, LLONG_MAX, LLONG_MAX);
	expect_int("-9223372036854775808", LLONG_MIN, 0, LLONG_MIN);
	expect_bad_int("0", 1, 10);
	expect_bad_int("11", 1, 10);
	expect_bad_int("-6", -5, 5);
	expect_bad_int("9223372036854775808", 0, LLONG_MAX);
	expect_bad_int("99999999999999999999", LLONG_MIN, LLONG_MAX);
}

static void test_int_rejects_junk(void **state)
{
	(void)state;
	expect_bad_int("", 0, 100);
	expect_bad_int("5x", 0, 100);
	expect_bad_int("x5", 0, 100);
	expect_bad_int("1.5", 0, 100);
	expect_bad_int("5 ", 0, 100);
	expect_bad_int("-", -100, 100);
	assert_int_equal(util_parse_int(NULL, 0, 1, &(long long){ 0 }), -1);
}

static void expect_fmt(uint64_t bytes, const char *want)
{
	char buf[32];
	memset(buf, 'x', sizeof buf);
	const char *r = util_fmt_size(bytes, buf, sizeof buf);
	assert_ptr_equal(r, buf);
	assert_string_equal(buf, want);
}

static void test_fmt_size(void **state)
{
	(void)state;
	expect_fmt(0, "0 B");
	expect_fmt(1023, "1023 B");
	expect_fmt(1024, "1.00 KiB");
	expect_fmt(1536, "1.50 KiB");
	expect_fmt(512 * MiB, "512.00 MiB");
	expect_fmt(4917780480ull, "4.58 GiB");
	expect_fmt(5 * TiB, "5.00 TiB");
	expect_fmt(2048 * TiB, "2048.00 TiB"); /* TiB is the largest unit */
}

static void test_fmt_size_truncates(void **state)
{
	(void)state;
	char buf[5];
	memset(buf, 'x', sizeof buf);
	util_fmt_size(4917780480ull, buf, sizeof buf);
	assert_string_equal(buf, "4.58");
	char one[1] = { 'x' };
	util_fmt_size(1, one, sizeof one);
	assert_int_equal(one[0], '\0');
}

static void test_alloc(void **state)
{
	(void)state;
	char *s = xasprintf("%s-%05d", "model", 3);
	assert_string_equal(s, "model-00003");
	char *t = xstrndup(s, 5);
	assert_string_equal(t, "model");
	free(s);
	free(t);
	uint64_t *z = xcalloc(8, sizeof *z);
	for (int i = 0; i < 8; i++)
		assert_int_equal(z[i], 0);
	z = xreallocarray(z, 16, sizeof *z);
	z[15] = 1;
	free(z);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_size_units),
		cmocka_unit_test(test_size_rejects),
		cmocka_unit_test(test_int_bounds),
		cmocka_unit_test(test_int_rejects_junk),
		cmocka_unit_test(test_fmt_size),
		cmocka_unit_test(test_fmt_size_truncates),
		cmocka_unit_test(test_alloc),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
