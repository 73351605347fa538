/*
 * test_ui: the dashboard at /ui/ in a real browser (Debian's chromium driven by the
 * pinned puppeteer-core through tests/ui_browser.mjs) against the real mloffloadd with
 * real llama-server children on tiny generated models and the fake NVML as a GPU; and
 * the /logs/ID route the dashboard tails. Each browser case is checked against what
 * the API says; a screenshot of each state goes to BUILD/ui-screenshots/ (not compared).
 */
#include "daemonutil.h"

#include "util.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY "ui-test-key-0123456789abcdef"

static char *bin, *models, *state, *state2, *nvml, *llama_bin, *shots;
static struct tu_proc dmn, dmn_key;
static int port, port_key;

/* A daemon on the test's models and fake GPU (nvml's state). */
static void start(struct tu_proc *p, int *pport, const char *st, const char *logname)
{
	char *extra[] = { "--sample-ms", "200", NULL };
	struct du_daemon d = { .bin = bin, .models = models, .state = st, .llama_bin = llama_bin,
	    .nvml = FAKE_NVML_PATH, .ollama_url = "http://127.0.0.1:9", .extra = extra };
	setenv("FAKE_NVML_STATE", nvml, 1);
	*pport = du_start(p, &d, logname);
}

/* The pinned puppeteer-core's folder (scripts/setup-puppeteer.sh), or NULL. */
static char *puppeteer_dir(void)
{
	const char *dir = getenv("MLO_PUPPETEER_DIR"), *home = getenv("HOME");
	const char *cache = getenv("MLOFFLOAD_CACHE");
	char *p = dir && *dir ? xstrdup(dir) : cache && *cache ?
	    xasprintf("%s/puppeteer-core-" MLO_PUPPETEER_PIN, cache) :
	    xasprintf("%s/.cache/mloffload/puppeteer-core-" MLO_PUPPETEER_PIN, home ? home : "");
	char *pkg = xasprintf("%s/node_modules/puppeteer-core/package.json", p);
	int ok = access(pkg, R_OK) == 0;
	free(pkg);
	if (!ok) {
		free(p);
		return NULL;
	}
	return p;
}

static int setup(void **st)
{
	const char *bd = getenv("MLO_BUILD_DIR");
	char *root = tu_llama_root(), *pd = puppeteer_dir();
	if (root == NULL || pd == NULL || access("/usr/bin/chromium", X_OK) != 0) {
		fprintf(stderr, "test_ui: needs llama.cpp (scripts/setup-llama.sh), puppeteer-core "
		    "(scripts/setup-puppeteer.sh) and /usr/bin/chromium (scripts/deps.sh)\n");
		free(root);
		free(pd);
		return -1;
	}
	setenv("MLO_PUPPETEER_DIR", pd, 1);
	free(pd);
	llama_bin = xasprintf("%s/build/bin/llama-server", root);
	free(root);
	bin = xasprintf("%s/mloffloadd", bd);
	shots = xasprintf("%s/ui-screenshots", bd);
	mkdir(shots, 0755);
	models = tu_path("models");
	state = tu_path("state");
	state2 = tu_path("state2");
	nvml = tu_path("nvml.txt");
	mkdir(models, 0755);
	char *p = xasprintf("%s/a.gguf", models);
	du_gen("tiny", p, NULL, 1, 1);
	free(p);
	p = xasprintf("%s/b.gguf", models);
	du_gen("tiny", p, NULL, 1, 2);
	free(p);
	/* 122 GB of F32 weights as a sparse file: no GPU holds it */
	p = xasprintf("%s/huge.gguf", models);
	du_gen("qwen3moe-30b", p, "F32", 0, 5);
	free(p);
	du_fake_gpu(nvml, 1ull << 30, 0);
	start(&dmn, &port, state, "daemon.log");
	json_decref(du_poll(port, "/models", du_has_models, &(size_t){ 3 }));
	return 0;
}

static int teardown(void **st)
{
	du_stop(&dmn);
	du_stop(&dmn_key);
	free(bin);
	free(models);
	free(state);
	free(state2);
	free(nvml);
	free(llama_bin);
	free(shots);
	return 0;
}

/* Runs ui_browser.mjs CASE against port (with key when not NULL); returns what the
 * page showed (new), after checking that the case ran, without a reload or a script
 * error. */
static json_t *browser(int p, const char *which, const char *key)
{
	char *node = tu_node(), *outp = tu_path("browser.out");
	assert_non_null(node);
	int rc = tu_sh("'%s' '%s/tests/ui_browser.mjs' http://127.0.0.1:%d %s '%s' %s > '%s' "
	    "2>&1", node, getenv("MLO_SOURCE_DIR"), p, which, shots, key ? key : "", outp);
	size_t len = 0;
	uint8_t *raw = tu_read_file(outp, &len);
	char *text = xmalloc(len + 1);
	if (raw != NULL)
		memcpy(text, raw, len);
	text[len] = '\0';
	free(raw);
	json_error_t je;
	json_t *j = json_loadb(text, len, 0, &je);
	if (rc != 0 || j == NULL || !json_is_true(json_object_get(j, "ok")))
		fail_msg("ui_browser %s: exit %d: %s", which, rc, text ? text : "");
	assert_false(json_is_true(json_object_get(j, "reloaded")));
	if (json_array_size(json_object_get(j, "errors")) != 0)
		fail_msg("ui_browser %s: errors in the page: %s", which, text);
	free(text);
	free(outp);
	free(node);
	return j;
}

/* 1 if the JSON array of strings a holds s. */
static int has_str(json_t *a, const char *s)
{
	size_t i;
	json_t *v;
	json_array_foreach(a, i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
			return 1;
	return 0;
}

static int loaded_state(const char *id, char *out, size_t len)
{
	json_t *s = du_get(port, "/status"), *v;
	size_t i;
	int n = 0;
	snprintf(out, len, "none");
	json_array_foreach(json_object_get(s, "loaded"), i, v) {
		n++;
		if (strcmp(json_string_value(json_object_get(v, "model")), id) == 0)
			snprintf(out, len, "%s", json_string_value(json_object_get(v, "state")));
	}
	json_decref(s);
	return n;
}

/* Every device of /vram has its row and every model of /models its row. */
static void test_render(void **st)
{
	json_t *j = browser(port, "render", NULL);
	json_t *v = du_get(port, "/vram"), *m = du_get(port, "/models"), *e;
	size_t i;
	assert_int_equal(json_array_size(json_object_get(j, "devices")),
	    json_array_size(json_object_get(v, "devices")));
	json_array_foreach(json_object_get(v, "devices"), i, e)
		assert_true(has_str(json_object_get(j, "devices"),
		    json_string_value(json_object_get(e, "id"))));
	assert_int_equal(json_array_size(json_object_get(j, "models")),
	    json_array_size(json_object_get(m, "models")));
	json_array_foreach(json_object_get(m, "models"), i, e)
		assert_true(has_str(json_object_get(j, "models"),
		    json_string_value(json_object_get(e, "id"))));
	/* the fit column in words: the tiny model whole on the GPU, the huge one nowhere */
	assert_true(has_str(json_object_get(j, "fit"), "GPU0 3/3 layers"));
	assert_true(has_str(json_object_get(j, "fit"), "does not fit"));
	json_decref(v);
	json_decref(m);
	json_decref(j);
}

/* A click on "load": the model becomes ready, and the page says so with its memory on
 * the GPU and the CPU, planned and measured, without a reload. */
static void test_load(void **st)
{
	json_t *j = browser(port, "load", NULL);
	char s[32];
	loaded_state("a", s, sizeof s);
	assert_string_equal(s, "ready");
	assert_string_equal(json_string_value(json_object_get(j, "state")), "ready");
	const char *where = json_string_value(json_object_get(j, "where"));
	assert_non_null(strstr(where, "gpu0 "));
	assert_non_null(strstr(where, "CPU "));
	assert_non_null(strstr(json_string_value(json_object_get(j, "parts")), "a "));
	json_decref(j);
}

static void test_unload(void **st)
{
	int status;
	json_decref(du_req(port, "POST", "/load", "{\"model\":\"a\"}", &status));
	assert_int_equal(status, 200);
	json_t *j = browser(port, "unload", NULL);
	char s[32];
	assert_int_equal(loaded_state("a", s, sizeof s), 0);
	assert_true(json_is_true(json_object_get(j, "empty")));
	json_decref(j);
}

/* The daemon's reason for a refusal is on the page, word for word. */
static void test_refused(void **st)
{
	int status;
	json_t *r = du_req(port, "POST", "/load", "{\"model\":\"huge\",\"offload\":\"gpu\"}",
	    &status);
	assert_int_equal(status, 507);
	const char *why = json_string_value(du_at(r, "error.message"));
	json_t *j = browser(port, "refused", NULL);
	const char *shown = json_string_value(json_object_get(j, "notice"));
	assert_non_null(strstr(shown, "507"));
	assert_non_null(strstr(shown, why));
	json_decref(j);
	json_decref(r);
}

static void test_event(void **st)
{
	json_t *j = browser(port, "event", NULL);
	assert_non_null(strstr(json_string_value(json_object_get(j, "first")), "scan.finished"));
	json_decref(j);
}

/* With a key set, the page asks for it, keeps it for the tab and then works. */
static void test_key(void **st)
{
	setenv("MLOFFLOAD_API_KEY", KEY, 1);
	mkdir(state2, 0755);
	start(&dmn_key, &port_key, state2, "daemon-key.log");
	unsetenv("MLOFFLOAD_API_KEY");
	int status;
	json_decref(du_req(port_key, "GET", "/models", NULL, &status));
	assert_int_equal(status, 401);
	json_t *j = browser(port_key, "key", KEY);
	assert_non_null(strstr(json_string_value(json_object_get(j, "asked")), "API key"));
	assert_true(json_is_true(json_object_get(j, "form_hidden")));
	assert_string_equal(json_string_value(json_object_get(j, "stored")), KEY);
	assert_true(has_str(json_object_get(j, "models"), "a"));
	json_decref(j);
	du_stop(&dmn_key);
}

/* The files come from the binary, with a policy that lets nothing else in. */
static void test_static(void **st)
{
	char *r = tu_http(port, "GET", "/ui", NULL);
	assert_non_null(r);
	assert_non_null(strstr(r, " 301 "));
	assert_non_null(strstr(r, "Location: /ui/"));
	free(r);
	r = tu_http(port, "GET", "/ui/", NULL);
	assert_non_null(strstr(r, " 200 "));
	assert_non_null(strstr(r, "Content-Type: text/html"));
	assert_non_null(strstr(r, "Content-Security-Policy: default-src 'self'"));
	assert_non_null(strstr(r, "<script src=\"app.js\""));
	free(r);
	r = tu_http(port, "GET", "/ui/app.js", NULL);
	assert_non_null(strstr(r, "Content-Type: text/javascript"));
	free(r);
	r = tu_http(port, "GET", "/ui/nosuch.js", NULL);
	assert_non_null(strstr(r, " 404 "));
	free(r);
}

/* ---- /logs/ID ---- */

struct sink {
	char buf[65536];
	size_t len;
	const char *until;
};

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
	struct sink *s = arg;
	size_t add = size * n, room = sizeof s->buf - 1 - s->len;
	memcpy(s->buf + s->len, p, add < room ? add : room);
	s->len += add < room ? add : room;
	s->buf[s->len] = '\0';
	return s->until != NULL && strstr(s->buf, s->until) != NULL ? 0 : add;
}

/* GET path into s (stopping once s->until shows, when set); returns the status. */
static long get_text(const char *path, struct sink *s)
{
	CURL *c = curl_easy_init();
	char *url = xasprintf("http://127.0.0.1:%d%s", port, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
	CURLcode rc = curl_easy_perform(c);
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	assert_true(rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && s->until != NULL));
	curl_easy_cleanup(c);
	free(url);
	return status;
}

static void *follow_thread(void *arg)
{
	struct sink *s = arg;
	get_text("/logs/b?tail=0&follow=1", s);
	return NULL;
}

static int loaded_b(json_t *j, void *arg)
{
	return json_array_size(json_object_get(j, "loaded")) == 0;
}

/* The log of a child the daemon ran: its end, and new lines as they are written. */
static void test_logs(void **st)
{
	static struct sink s1, s2, s3;
	assert_int_equal(get_text("/logs/b", &s1), 404);   /* never loaded */
	assert_non_null(strstr(s1.buf, "no_log"));
	assert_int_equal(get_text("/logs/..%2Fetc", &s2), 404);
	int status;
	json_decref(du_req(port, "POST", "/load", "{\"model\":\"b\"}", &status));
	assert_int_equal(status, 200);
	memset(&s1, 0, sizeof s1);
	assert_int_equal(get_text("/logs/b?tail=100000", &s1), 200);
	assert_non_null(strstr(s1.buf, "listening on"));
	memset(&s2, 0, sizeof s2);
	assert_int_equal(get_text("/logs/b?tail=20", &s2), 200);
	assert_true(s2.len <= 20);
	/* follow from the end; unload and load again: the new child's lines arrive */
	s3.until = "listening on";
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, follow_thread, &s3), 0);
	json_decref(du_req(port, "POST", "/unload", "{\"model\":\"b\"}", &status));
	json_decref(du_poll(port, "/status", loaded_b, NULL));
	json_decref(du_req(port, "POST", "/load", "{\"model\":\"b\"}", &status));
	assert_int_equal(status, 200);
	pthread_join(t, NULL);
	assert_non_null(strstr(s3.buf, "listening on"));
	json_decref(du_req(port, "POST", "/unload", "{\"model\":\"b\"}", &status));
}

/* After the log followers of test_logs came and went, SIGTERM stops the daemon cleanly
 * (it once crashed at shutdown on a follower's connection that it still counted). */
static void test_stop_clean(void **st)
{
	static struct sink s;
	int status;
	json_decref(du_req(port, "POST", "/load", "{\"model\":\"b\"}", &status));
	assert_int_equal(status, 200);
	s.until = "listening on";
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, follow_thread, &s), 0);
	json_decref(du_req(port, "POST", "/unload", "{\"model\":\"b\"}", &status));
	json_decref(du_poll(port, "/status", loaded_b, NULL));
	json_decref(du_req(port, "POST", "/load", "{\"model\":\"b\"}", &status));
	pthread_join(t, NULL);    /* the follower has hung up */
	assert_int_equal(du_stop(&dmn), 0);
}

int main(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_static),
		cmocka_unit_test(test_render),
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_unload),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_event),
		cmocka_unit_test(test_key),
		cmocka_unit_test(test_logs),
		cmocka_unit_test(test_stop_clean),
	};
	int rc = cmocka_run_group_tests(tests, setup, teardown);
	curl_global_cleanup();
	return rc != 0 ? rc : du_stops_failed(); /* every daemon stopped cleanly */
}
