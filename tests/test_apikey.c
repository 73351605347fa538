/*
 * test_apikey: the API key module on its own: a key file with comments, blank lines,
 * spaces and CRLF reads; unsafe, empty or malformed files are refused with the file
 * and line; a key matches only itself (not a prefix, an extension, a near miss or an
 * empty string), over every key of a set; random keys are 64 hex digits and differ.
 */
#include "testutil.h"

#include "apikey.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define K1 "first-key-0123456789"
#define K2 "second-key-abcdefghij"

static char *write_file(const char *name, const char *body, mode_t mode)
{
	char *p = tu_path(name);
	assert_int_equal(tu_write_file(p, body, strlen(body)), 0);
	assert_int_equal(chmod(p, mode), 0);
	return p;
}

static int match(const struct apikey_set *s, const char *k)
{
	return apikey_match(s, k, strlen(k));
}

static void reads_a_key_file(void **st)
{
	char err[512];
	char *p = write_file("keys", "# comment\r\n\r\n  " K1 "  \r\n\n#" K2 "\n" K2, 0600);
	struct apikey_set *s = apikey_new();
	assert_int_equal(apikey_read_file(s, p, err, sizeof err), 0);
	assert_int_equal(apikey_count(s), 2);
	assert_string_equal(apikey_get(s, 0), K1);
	assert_true(match(s, K1));
	assert_true(match(s, K2));
	apikey_free(s);
	free(p);
}

static void refuses_bad_files(void **st)
{
	static const struct { const char *body; mode_t mode; const char *why; } cases[] = {
		{ K1 "\n", 0644, "other users may read or write it (mode 0644)" },
		{ K1 "\n", 0602, "other users may read or write it" },
		{ "# nothing\n\n", 0600, "holds no key" },
		{ "", 0600, "holds no key" },
		{ "# a\n" K1 "\nshort\n", 0600, "keys:3: a key must have 16 to 255" },
		{ "with a space in it here\n", 0600, "keys:1: a key is printable ASCII" },
	};
	char err[512];
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *p = write_file("keys", cases[i].body, cases[i].mode);
		struct apikey_set *s = apikey_new();
		assert_int_equal(apikey_read_file(s, p, err, sizeof err), -1);
		if (strstr(err, cases[i].why) == NULL || strstr(err, p) == NULL)
			fail_msg("case %zu: '%s' lacks '%s'", i, err, cases[i].why);
		apikey_free(s);
		free(p);
	}
	struct apikey_set *s = apikey_new();
	char *missing = tu_path("no-such-file");
	assert_int_equal(apikey_read_file(s, missing, err, sizeof err), -1);
	assert_non_null(strstr(err, "No such file"));
	assert_int_equal(apikey_read_file(s, tu_tmpdir(), err, sizeof err), -1);
	assert_non_null(strstr(err, "not a regular file"));
	apikey_free(s);
	free(missing);
}

static void matches_only_itself(void **st)
{
	char err[512], big[300];
	struct apikey_set *s = apikey_new();
	assert_int_equal(match(s, K1), 0);   /* an empty set matches nothing */
	assert_int_equal(apikey_add(s, K1, "k", err, sizeof err), 0);
	assert_int_equal(apikey_add(s, K2, "k", err, sizeof err), 0);
	assert_true(match(s, K1));
	assert_true(match(s, K2));
	assert_false(match(s, ""));
	assert_false(match(s, "first-key-012345678"));      /* a prefix */
	assert_false(match(s, K1 "0"));                       /* longer */
	assert_false(match(s, "first-key-0123456788"));     /* the last byte */
	assert_false(match(s, "First-key-0123456789"));     /* the first byte */
	assert_true(apikey_match(s, K1 "trailing", strlen(K1)));  /* len counts, not NUL */
	memset(big, 'a', sizeof big);
	assert_false(apikey_match(s, big, sizeof big));      /* over APIKEY_MAX */
	big[APIKEY_MAX] = '\0';
	assert_int_equal(apikey_add(s, big, "k", err, sizeof err), 0);
	assert_true(apikey_match(s, big, APIKEY_MAX));
	assert_false(apikey_match(s, big, APIKEY_MAX - 1));
	big[APIKEY_MAX] = 'a';
	big[APIKEY_MAX + 1] = '\0';
	assert_int_equal(apikey_add(s, big, "k", err, sizeof err), -1);
	assert_int_equal(apikey_count(s), 3);
	apikey_free(s);
}

static void random_keys(void **st)
{
	char a[APIKEY_RANDOM_HEX + 1], b[APIKEY_RANDOM_HEX + 1], small[8];
	assert_int_equal(apikey_random(a, sizeof a), 0);
	assert_int_equal(apikey_random(b, sizeof b), 0);
	assert_int_equal(strlen(a), 64);
	assert_int_equal(strspn(a, "0123456789abcdef"), 64);
	assert_string_not_equal(a, b);
	assert_int_equal(apikey_random(small, sizeof small), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(reads_a_key_file),
		cmocka_unit_test(refuses_bad_files),
		cmocka_unit_test(matches_only_itself),
		cmocka_unit_test(random_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
