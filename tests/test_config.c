/*
 * test_config: the daemon's INI parser (src/core/config.c) from memory, with
 * config_parse_buf, no daemon. The keys whose values have a structure are parsed once
 * into typed fields (rpc_device, split, exclusive, webhook, alias): each is checked
 * with good values, at its limits and with bad values, whose error must be one line
 * naming the source, the line and the key. A reload as SIGHUP does it (a fresh config,
 * its aliases moved into the running one) and a second source over the first (its
 * lists replace the earlier ones) must free what they replace: the ASan build checks.
 */
#include "testutil.h"

#include "config.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parses text over the defaults into c; returns config_parse_buf's result, err set. */
static int parse(struct config *c, const char *text, char *err, size_t errlen)
{
	config_defaults(c);
	err[0] = '\0';
	return config_parse_buf(c, "t.conf", text, strlen(text), err, errlen);
}

/* text must be refused with "t.conf:LINE: KEY..." on one line, containing want. */
static void refused(const char *text, int line, const char *key, const char *want)
{
	struct config c;
	char err[1024], prefix[128];
	if (parse(&c, text, err, sizeof err) == 0)
		fail_msg("accepted: %s", text);
	snprintf(prefix, sizeof prefix, "t.conf:%d: %s", line, key);
	if (strncmp(err, prefix, strlen(prefix)) != 0 || strchr(err, '\n') != NULL ||
	    strstr(err, want) == NULL)
		fail_msg("for %s: '%s' (want '%s...' with '%s')", key, err, prefix, want);
	config_free(&c);
}

/* "[daemon]" then n lines "HEAD<i>TAIL" (i from 0). */
static char *repeat(const char *head, const char *tail, int n)
{
	size_t cap = 64 + (size_t)n * (strlen(head) + strlen(tail) + 16), len = 0;
	char *s = xmalloc(cap);
	len += (size_t)snprintf(s, cap, "[daemon]\n");
	for (int i = 0; i < n; i++)
		len += (size_t)snprintf(s + len, cap - len, "%s%d%s\n", head, i, tail);
	return s;
}

static void rpc_devices(void **state)
{
	struct config c;
	char err[1024];
	assert_int_equal(parse(&c, "rpc_device = 10.0.0.2:50052 8G\n"
	    "rpc_device = gpu-box:50053 512M\n", err, sizeof err), 0);
	assert_int_equal(c.n_rpc_devices, 2);
	assert_string_equal(c.rpc_devices[0].addr, "10.0.0.2:50052");
	assert_int_equal(c.rpc_devices[0].budget, 8ull << 30);
	assert_string_equal(c.rpc_devices[1].addr, "gpu-box:50053");
	assert_int_equal(c.rpc_devices[1].budget, 512ull << 20);
	config_free(&c);
	char *eight = repeat("rpc_device = h", ":1 1G", CONFIG_MAX_RPC);
	assert_int_equal(parse(&c, eight, err, sizeof err), 0);
	assert_int_equal(c.n_rpc_devices, CONFIG_MAX_RPC);
	config_free(&c);
	free(eight);
	char *nine = repeat("rpc_device = h", ":1 1G", CONFIG_MAX_RPC + 1);
	refused(nine, CONFIG_MAX_RPC + 2, "rpc_device", "at most 8 servers");
	free(nine);
	refused("rpc_device = a:1 1G\n\nrpc_device = a:1 2G\n", 3, "rpc_device",
	    "a:1 is given twice");
	refused("rpc_device = a:1\n", 1, "rpc_device", "is not 'HOST:PORT SIZE'");
	refused("rpc_device = noport 1G\n", 1, "rpc_device", "is not 'HOST:PORT SIZE'");
	refused("rpc_device = :1 1G\n", 1, "rpc_device", "is not 'HOST:PORT SIZE'");
	refused("rpc_device = a:1 0\n", 1, "rpc_device", "is not 'HOST:PORT SIZE'");
	refused("rpc_device = a:1 lots\n", 1, "rpc_device", "is not 'HOST:PORT SIZE'");
}

static void split_key(void **state)
{
	struct config c;
	char err[1024];
	assert_int_equal(parse(&c, "split = never\n", err, sizeof err), 0);
	assert_int_equal(c.split, CONFIG_SPLIT_NEVER);
	config_free(&c);
	assert_int_equal(parse(&c, "split = never\nsplit = auto\n", err, sizeof err), 0);
	assert_int_equal(c.split, CONFIG_SPLIT_AUTO);
	config_free(&c);
	refused("# a comment\nsplit = sometimes\n", 2, "split", "is not auto or never");
}

static void exclusive_groups(void **state)
{
	struct config c;
	char err[1024];
	assert_int_equal(parse(&c, "exclusive = big-a big-b\nexclusive = x,y, z\n", err,
	    sizeof err), 0);
	assert_int_equal(c.n_exclusive, 2);
	assert_int_equal(c.exclusive[0].n_ids, 2);
	assert_string_equal(c.exclusive[0].ids[0], "big-a");
	assert_string_equal(c.exclusive[0].ids[1], "big-b");
	assert_int_equal(c.exclusive[1].n_ids, 3);
	assert_string_equal(c.exclusive[1].ids[0], "x");
	assert_string_equal(c.exclusive[1].ids[1], "y");
	assert_string_equal(c.exclusive[1].ids[2], "z");
	config_free(&c);
	/* 64 ids in one group, then 65 */
	char line[4096] = "exclusive =";
	size_t len = strlen(line);
	for (int i = 0; i < CONFIG_MAX_GROUP; i++)
		len += (size_t)snprintf(line + len, sizeof line - len, " m%d", i);
	assert_int_equal(parse(&c, line, err, sizeof err), 0);
	assert_int_equal(c.exclusive[0].n_ids, CONFIG_MAX_GROUP);
	assert_string_equal(c.exclusive[0].ids[CONFIG_MAX_GROUP - 1], "m63");
	config_free(&c);
	snprintf(line + len, sizeof line - len, ",m64");
	refused(line, 1, "exclusive", "at most 64 model ids in a group");
	char *many = repeat("exclusive = a", " b", CONFIG_MAX_URLS + 1);
	refused(many, CONFIG_MAX_URLS + 2, "exclusive", "at most 16 values");
	free(many);
}

static void webhooks(void **state)
{
	struct config c;
	char err[1024];
	assert_int_equal(parse(&c, "webhook = http://127.0.0.1:9/all\n"
	    "webhook = http://hooks.lan/some model.ready,model.failed scan.finished\n", err,
	    sizeof err), 0);
	assert_int_equal(c.n_webhooks, 2);
	assert_string_equal(c.webhooks[0].url, "http://127.0.0.1:9/all");
	assert_int_equal(c.webhooks[0].n_events, 0);
	assert_string_equal(c.webhooks[1].url, "http://hooks.lan/some");
	assert_int_equal(c.webhooks[1].n_events, 3);
	assert_string_equal(c.webhooks[1].events[0], "model.ready");
	assert_string_equal(c.webhooks[1].events[1], "model.failed");
	assert_string_equal(c.webhooks[1].events[2], "scan.finished");
	config_free(&c);
	char *sixteen = repeat("webhook = http://h/", "", CONFIG_MAX_URLS);
	assert_int_equal(parse(&c, sixteen, err, sizeof err), 0);
	assert_int_equal(c.n_webhooks, CONFIG_MAX_URLS);
	config_free(&c);
	free(sixteen);
	char *seventeen = repeat("webhook = http://h/", "", CONFIG_MAX_URLS + 1);
	refused(seventeen, CONFIG_MAX_URLS + 2, "webhook", "at most 16 values");
	free(seventeen);
	char line[1024] = "webhook = http://h/x";
	size_t len = strlen(line);
	for (int i = 0; i <= CONFIG_MAX_HOOK_EVENTS; i++)
		len += (size_t)snprintf(line + len, sizeof line - len, "%se%d", i ? "," : " ", i);
	refused(line, 1, "webhook", "at most 16 event types");
	refused("webhook = https://h/x\n", 1, "webhook", "is not an http:// URL");
	refused("webhook = h/x\n", 1, "webhook", "is not an http:// URL");
}

static void aliases(void **state)
{
	struct config c;
	char err[1024];
	assert_int_equal(parse(&c, "alias = gpt-4o tiny-model.q8\nalias = fast other\n", err,
	    sizeof err), 0);
	assert_int_equal(c.n_aliases, 2);
	assert_string_equal(c.aliases[0].name, "gpt-4o");
	assert_string_equal(c.aliases[0].id, "tiny-model.q8");
	assert_string_equal(c.aliases[1].name, "fast");
	assert_string_equal(c.aliases[1].id, "other");
	config_free(&c);
	char *max = repeat("alias = n", " m", CONFIG_MAX_ALIASES);
	assert_int_equal(parse(&c, max, err, sizeof err), 0);
	assert_int_equal(c.n_aliases, CONFIG_MAX_ALIASES);
	config_free(&c);
	free(max);
	char *over = repeat("alias = n", " m", CONFIG_MAX_ALIASES + 1);
	refused(over, CONFIG_MAX_ALIASES + 2, "alias", "at most 64 values");
	free(over);
	refused("alias = lonely\n", 1, "alias", "is not 'NAME MODEL_ID'");
	refused("alias = a b c\n", 1, "alias", "is not 'NAME MODEL_ID'");
}

/* A bad value of the other keys: one line, the key and the line named. */
static void bad_values(void **state)
{
	static const struct { const char *text, *key, *want; } bad[] = {
		{ "listen = 8080", "listen", "is not HOST:PORT" },
		{ "log_level = loud", "log_level", "is not error, warn" },
		{ "history = 0", "history", "is not a number in 1..100000" },
		{ "idle_ttl_s = -1", "idle_ttl_s", "is not a number" },
		{ "reserve = much", "reserve", "is not a size" },
		{ "max_body = 10", "max_body", "is not a size" },
		{ "pressure_high = 101", "pressure_high", "is not a number in 1..100" },
		{ "pressure_action = panic", "pressure_action", "is not shrink or unload" },
		{ "regrow = maybe", "regrow", "is not on or off" },
		{ "parallel = 0", "parallel", "is not a number in 1..256" },
		{ "no_such_key = 1", "unknown key 'no_such_key'", "" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char *text = xasprintf("[daemon]\n\n%s\n", bad[i].text);
		refused(text, 3, bad[i].key, bad[i].want);
		free(text);
	}
}

static const char *const first =
	"[daemon]\nrpc_device = a:1 1G\nexclusive = a b\nwebhook = http://h/1 model.ready\n"
	"alias = one a\nallowed_hosts = box.lan\n";
static const char *const second =
	"rpc_device = b:2 2G\nexclusive = c d e\nwebhook = http://h/2\nalias = two b\n";

/* A second source over the first: its lists replace the first's (freed, ASan). */
static void later_source_replaces(void **state)
{
	struct config c;
	char err[1024];
	assert_int_equal(parse(&c, first, err, sizeof err), 0);
	assert_int_equal(config_parse_buf(&c, "u.conf", second, strlen(second), err,
	    sizeof err), 0);
	assert_int_equal(c.n_rpc_devices, 1);
	assert_string_equal(c.rpc_devices[0].addr, "b:2");
	assert_int_equal(c.n_exclusive, 1);
	assert_int_equal(c.exclusive[0].n_ids, 3);
	assert_int_equal(c.n_webhooks, 1);
	assert_string_equal(c.webhooks[0].url, "http://h/2");
	assert_int_equal(c.n_aliases, 1);
	assert_string_equal(c.aliases[0].name, "two");
	assert_int_equal(c.n_allowed_hosts, 1); /* not given again: kept */
	config_free(&c);
	/* a source refused halfway leaves a config config_free still frees whole */
	assert_int_equal(parse(&c, first, err, sizeof err), 0);
	const char *half = "exclusive = x y\nwebhook = http://h/3 a,b\nalias = broken\n";
	assert_int_equal(config_parse_buf(&c, "v.conf", half, strlen(half), err, sizeof err),
	    -1);
	assert_non_null(strstr(err, "v.conf:3: alias"));
	config_free(&c);
}

/* Reloads as SIGHUP does (daemon.c): a fresh config parsed, its aliases moved into the
 * running one, the rest freed; many times, nothing leaks (ASan) or is lost. */
static void sighup_reparse(void **state)
{
	struct config live, c;
	char err[1024];
	assert_int_equal(parse(&live, first, err, sizeof err), 0);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(parse(&c, i % 2 ? first : second, err, sizeof err), 0);
		config_take_aliases(&live, &c);
		assert_int_equal(c.n_aliases, 0);
		memcpy(live.rpc_devices, c.rpc_devices, sizeof c.rpc_devices);
		live.n_rpc_devices = c.n_rpc_devices;
		live.split = c.split;
		config_free(&c);
		assert_int_equal(live.n_aliases, 1);
		assert_string_equal(live.aliases[0].name, i % 2 ? "one" : "two");
		assert_string_equal(live.rpc_devices[0].addr, i % 2 ? "a:1" : "b:2");
	}
	/* a reload refused: the running config keeps what it had */
	assert_int_equal(parse(&c, "alias = x y\nsplit = sideways\n", err, sizeof err), -1);
	config_free(&c);
	assert_string_equal(live.aliases[0].name, "one");
	config_free(&live);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rpc_devices),
		cmocka_unit_test(split_key),
		cmocka_unit_test(exclusive_groups),
		cmocka_unit_test(webhooks),
		cmocka_unit_test(aliases),
		cmocka_unit_test(bad_values),
		cmocka_unit_test(later_source_replaces),
		cmocka_unit_test(sighup_reparse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
