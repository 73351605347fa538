/*
 * test_discover: discovery of running model servers, on a real libevent loop. Real
 * llama-server with a tiny generated model; Ollama through its protocol double
 * (tests/ollama_double.py, found through MLO_SOURCE_DIR). Covers: a URL where nothing
 * listens and one that never answers (down with curl's reason, while the loop keeps
 * running), llama-server up (version, model), Ollama up (version, models with family
 * and quantization, then a model loaded through the double shows with its VRAM), a
 * double that answers garbage, one whose /api/ps fails, a body over max_body, the
 * up/down callback, and freeing the discoverer mid-round and from its callback.
 * Every wait is bounded; every child is stopped.
 */
#include "testutil.h"

#include "discover.h"
#include "shapes.h"
#include "util.h"

#include <event2/event.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define ROUND_LIMIT_S 30   /* a round that takes longer fails the test */

/* What the up/down callback saw. */
struct seen {
	int n_up, n_down;
	char url[256];
	struct discover **free_me;   /* set: the callback frees *free_me */
};

static void on_change(void *arg, const char *url, int up)
{
	struct seen *s = arg;

	if (up)
		s->n_up++;
	else
		s->n_down++;
	snprintf(s->url, sizeof s->url, "%s", url);
	if (s->free_me != NULL && *s->free_me != NULL) {
		discover_free(*s->free_me);
		*s->free_me = NULL;
	}
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	*(int *)arg = 1;
}

/* Runs base until done() or ROUND_LIMIT_S; returns 1 if done() came. */
static int run_until(struct event_base *base, int (*done)(void *), void *arg)
{
	struct timeval tv = { ROUND_LIMIT_S, 0 };
	int expired = 0;
	struct event *deadline = evtimer_new(base, on_deadline, &expired);

	evtimer_add(deadline, &tv);
	while (!done(arg) && !expired)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(deadline);
	return done(arg);
}

static int round_over(void *arg)
{
	return !discover_busy(arg);
}

/* One discovery round: discover_poll returns at once with the round in flight, and
 * the loop ends it within the bound. */
static void run_round(struct event_base *base, struct discover *d)
{
	discover_poll(d);
	assert_true(discover_busy(d));
	assert_true(run_until(base, round_over, d));
}

static char *python3(void)
{
	const char *path = getenv("PATH");
	char *dirs = xstrdup(path != NULL ? path : "/usr/bin:/bin"), *save = NULL, *dir, *p;

	for (dir = strtok_r(dirs, ":", &save); dir != NULL; dir = strtok_r(NULL, ":", &save)) {
		p = xasprintf("%s/python3", dir);
		if (access(p, X_OK) == 0) {
			free(dirs);
			return p;
		}
		free(p);
	}
	free(dirs);
	fail_msg("python3 not found in PATH");
	return NULL;
}

/* Starts the Ollama double with extra options (NULL-terminated); returns its port. */
static int start_double(struct tu_proc *p, const char *logname, const char *const *extra)
{
	const char *src = getenv("MLO_SOURCE_DIR"), *slash = strrchr(__FILE__, '/');
	char *py = python3(), *script, *log, *argv[16];
	size_t n = 0;
	int port = -1;

	if (src != NULL && *src != '\0')
		script = xasprintf("%s/tests/ollama_double.py", src);
	else if (slash != NULL)   /* run by hand: the script beside this file */
		script = xasprintf("%.*s/ollama_double.py", (int)(slash - __FILE__), __FILE__);
	else
		script = xstrdup("ollama_double.py");
	argv[n++] = py;
	argv[n++] = script;
	argv[n++] = "--port";
	argv[n++] = "0";
	for (; extra != NULL && *extra != NULL && n < 15; extra++)
		argv[n++] = (char *)*extra;
	argv[n] = NULL;
	log = tu_path(logname);
	assert_int_equal(tu_spawn(p, argv, log), 0);
	port = tu_log_port(p, "listening ", 20);
	free(log);
	free(script);
	free(py);
	return port;
}

/* Times "needle" occurs in the child's log. */
static int log_count(const struct tu_proc *p, const char *needle)
{
	size_t len;
	char *text = (char *)tu_read_file(p->log, &len), *at;
	int n = 0;

	assert_non_null(text);
	text = xrealloc(text, len + 1);
	text[len] = '\0';
	for (at = strstr(text, needle); at != NULL; at = strstr(at + 1, needle))
		n++;
	free(text);
	return n;
}

/* The one backend object of discover_backends (new reference). */
static json_t *only_backend(const struct discover *d)
{
	json_t *a = discover_backends(d), *b;

	assert_int_equal(json_array_size(a), 1);
	b = json_incref(json_array_get(a, 0));
	json_decref(a);
	return b;
}

static json_t *find_model(json_t *models, const char *id)
{
	json_t *m;
	size_t i;

	json_array_foreach(models, i, m) {
		if (strcmp(json_string_value(json_object_get(m, "id")), id) == 0)
			return m;
	}
	fail_msg("no model %s", id);
	return NULL;
}

static const char *str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* A local models file for the double: two models, one partly in VRAM when loaded. */
static char *models_file(void)
{
	static const char text[] =
	    "[{\"name\": \"llama3.2:1b\", \"size\": 1321098329, \"size_vram\": 1000000000,"
	    "  \"family\": \"llama\", \"parameter_size\": \"1.2B\","
	    "  \"quantization_level\": \"Q8_0\"},"
	    " {\"name\": \"qwen2.5:0.5b\", \"size\": 397821319, \"family\": \"qwen2\","
	    "  \"parameter_size\": \"494.03M\", \"quantization_level\": \"Q4_K_M\"}]";
	char *path = tu_path("models.json");

	assert_int_equal(tu_write_file(path, text, sizeof text - 1), 0);
	return path;
}

/* A socket that accepts connections (the kernel does) but never answers. */
static int blackhole(int *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(s >= 0);
	assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(listen(s, 16), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
	*port = ntohs(a.sin_port);
	return s;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	(*(int *)arg)++;
}

/* Nothing listens / something listens and never answers: both down with curl's reason,
 * no callback (down before, down now), and the loop ran all along. */
static void nothing_there_is_down(void **state)
{
	struct event_base *base = event_base_new();
	struct seen seen = { 0 };
	int hole_port, hole = blackhole(&hole_port), ticks = 0;
	char refused[64], silent[64];
	char *urls[] = { refused, silent };
	struct discover_opts o = { .llama_urls = urls, .n_llama = 2, .timeout_ms = 500 };
	struct timeval tick = { 0, 10 * 1000 };
	struct event *ticker = event_new(base, -1, EV_PERSIST, on_tick, &ticks);
	struct discover *d;
	json_t *a, *b;

	snprintf(refused, sizeof refused, "http://127.0.0.1:%d", tu_free_port());
	snprintf(silent, sizeof silent, "http://127.0.0.1:%d/", hole_port);
	d = discover_new(base, &o, on_change, &seen);
	event_add(ticker, &tick);
	assert_false(discover_busy(d));
	discover_poll(d);
	/* returned at once: the round is in flight, the loop has not run a turn yet */
	assert_true(discover_busy(d));
	assert_int_equal(ticks, 0);
	discover_poll(d);   /* not doubled */
	assert_true(run_until(base, round_over, d));
	/* the silent backend held the round for its 500 ms timeout; the loop ran on */
	assert_true(ticks >= 3);

	a = discover_backends(d);
	assert_int_equal(json_array_size(a), 2);
	b = json_array_get(a, 0);
	assert_string_equal(str(b, "type"), "llama.cpp");
	assert_string_equal(str(b, "url"), refused);
	assert_false(json_is_true(json_object_get(b, "detected")));
	assert_false(json_is_true(json_object_get(b, "managed")));
	assert_non_null(str(b, "error"));
	assert_non_null(strstr(str(b, "error"), "GET /health: "));
	assert_non_null(str(b, "checked_at"));
	assert_int_equal(json_array_size(json_object_get(b, "models")), 0);
	b = json_array_get(a, 1);
	/* the trailing slash is not part of the URL */
	assert_int_equal(strncmp(str(b, "url"), silent, strlen(silent) - 1), 0);
	assert_int_equal(strlen(str(b, "url")), strlen(silent) - 1);
	assert_false(json_is_true(json_object_get(b, "detected")));
	assert_non_null(str(b, "error"));
	assert_non_null(strstr(str(b, "error"), "timed out"));
	json_decref(a);
	assert_int_equal(seen.n_up + seen.n_down, 0);

	discover_free(d);
	event_free(ticker);
	close(hole);
	event_base_free(base);
}

static char *gen_tiny(void)
{
	char err[4096], *path = tu_path("tiny.gguf"), *vocab;
	const struct shape *s = shapes_find("tiny");

	assert_non_null(s);
	vocab = shapes_vocab_path(s->vocab);
	struct shapes_opts o = { NULL, vocab, -1, 7, 1 };
	if (shapes_write(s, &o, path, err, sizeof err) < 0)
		fail_msg("gen tiny: %s", err);
	free(vocab);
	return path;
}

/* Real llama-server: detected, its build as version, its model listed; gone: down. */
static void llama_server_is_detected(void **state)
{
	char *root = tu_llama_root();
	if (root == NULL)
		fail_msg("llama.cpp is not built: run scripts/setup-llama.sh (scripts/test.sh does)");
	struct event_base *base = event_base_new();
	struct seen seen = { 0 };
	char *model = gen_tiny(), *exe = xasprintf("%s/build/bin/llama-server", root);
	char *log = tu_path("llama.log"), port[16], url[64];
	char *urls[] = { url };
	struct discover_opts o = { .llama_urls = urls, .n_llama = 1 };
	struct tu_proc srv;
	struct discover *d;
	json_t *b, *models;
	int portn = tu_free_port(), i;

	snprintf(port, sizeof port, "%d", portn);
	snprintf(url, sizeof url, "http://127.0.0.1:%d", portn);
	char *argv[] = { exe, "-m", model, "--port", port, "--host", "127.0.0.1", "-c", "512",
	    "-t", "2", "--no-warmup", NULL };
	assert_int_equal(tu_spawn(&srv, argv, log), 0);
	assert_int_equal(tu_wait_log(&srv, "listening on", 60), 1);

	d = discover_new(base, &o, on_change, &seen);
	/* a server still loading its model is up and "loading": wait that out */
	for (i = 0; i < 600; i++) {
		run_round(base, d);
		b = only_backend(d);
		if (!json_is_true(json_object_get(b, "loading")))
			break;
		json_decref(b);
		usleep(100 * 1000);
	}
	assert_true(i < 600);
	assert_true(json_is_true(json_object_get(b, "detected")));
	assert_string_equal(str(b, "type"), "llama.cpp");
	assert_non_null(str(b, "version"));
	assert_true(strlen(str(b, "version")) > 0);
	assert_string_equal(str(b, "model_path"), model);
	models = json_object_get(b, "models");
	assert_int_equal(json_array_size(models), 1);
	assert_non_null(strstr(json_string_value(json_array_get(models, 0)), "tiny"));
	assert_int_equal(json_array_size(json_object_get(b, "loaded")), 1);
	assert_true(json_is_null(json_object_get(b, "error")));
	json_decref(b);
	assert_int_equal(seen.n_up, 1);
	assert_int_equal(seen.n_down, 0);
	assert_string_equal(seen.url, url);

	tu_stop(&srv);
	run_round(base, d);
	b = only_backend(d);
	assert_false(json_is_true(json_object_get(b, "detected")));
	assert_non_null(str(b, "error"));
	assert_int_equal(json_array_size(json_object_get(b, "models")), 0);
	json_decref(b);
	assert_int_equal(seen.n_down, 1);

	discover_free(d);
	event_base_free(base);
	unlink(model);
	free(model);
	free(exe);
	free(log);
	free(root);
}

/* The double: version, models with family and quantization, nothing loaded; a model
 * loaded through its API then shows as loaded with its VRAM, and unloaded does not. */
static void ollama_models_and_loads(void **state)
{
	struct event_base *base = event_base_new();
	struct seen seen = { 0 };
	struct tu_proc dbl;
	char *mf = models_file(), url[64], *r;
	const char *extra[] = { "--models", mf, NULL };
	int port = start_double(&dbl, "ollama.log", extra);
	struct discover_opts o = { .ollama_url = url };
	struct discover *d;
	json_t *b, *models, *m, *loaded;

	snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
	d = discover_new(base, &o, on_change, &seen);
	run_round(base, d);
	b = only_backend(d);
	assert_string_equal(str(b, "type"), "ollama");
	assert_true(json_is_true(json_object_get(b, "detected")));
	assert_string_equal(str(b, "version"), "0.6.2");
	assert_true(json_is_null(json_object_get(b, "error")));
	assert_int_equal(json_array_size(json_object_get(b, "models")), 2);
	assert_int_equal(json_array_size(json_object_get(b, "loaded")), 0);
	json_decref(b);
	assert_int_equal(seen.n_up, 1);

	models = discover_ollama_models(d);
	assert_int_equal(json_array_size(models), 2);
	m = find_model(models, "ollama:llama3.2:1b");
	assert_string_equal(str(m, "name"), "llama3.2:1b");
	assert_string_equal(str(m, "backend"), "ollama");
	assert_string_equal(str(m, "quantization"), "Q8_0");
	assert_string_equal(str(m, "family"), "llama");
	assert_int_equal(json_integer_value(json_object_get(m, "size")), 1321098329);
	assert_int_equal(json_integer_value(json_object_get(m, "parameters")), 1200000000);
	assert_false(json_is_true(json_object_get(m, "loaded")));
	assert_int_equal(json_integer_value(json_object_get(m, "vram_bytes")), 0);
	m = find_model(models, "ollama:qwen2.5:0.5b");
	assert_string_equal(str(m, "quantization"), "Q4_K_M");
	assert_string_equal(str(m, "family"), "qwen2");
	assert_int_equal(json_integer_value(json_object_get(m, "parameters")), 494030000);
	json_decref(models);

	/* load: an empty generate request; "llama3.2" alone would mean ":latest" */
	r = tu_http(port, "POST", "/api/generate", "{\"model\": \"llama3.2:1b\"}");
	assert_non_null(r);
	assert_non_null(strstr(r, " 200 "));
	assert_non_null(strstr(r, "\"done_reason\": \"load\""));
	free(r);
	run_round(base, d);
	models = discover_ollama_models(d);
	m = find_model(models, "ollama:llama3.2:1b");
	assert_true(json_is_true(json_object_get(m, "loaded")));
	assert_int_equal(json_integer_value(json_object_get(m, "vram_bytes")), 1000000000);
	assert_non_null(str(m, "expires_at"));
	m = find_model(models, "ollama:qwen2.5:0.5b");
	assert_false(json_is_true(json_object_get(m, "loaded")));
	json_decref(models);
	b = only_backend(d);
	loaded = json_object_get(b, "loaded");
	assert_int_equal(json_array_size(loaded), 1);
	assert_string_equal(str(json_array_get(loaded, 0), "name"), "llama3.2:1b");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(loaded, 0),
	    "size_vram")), 1000000000);
	json_decref(b);

	/* unload: an empty chat request with keep_alive 0 */
	r = tu_http(port, "POST", "/api/chat",
	    "{\"model\": \"llama3.2:1b\", \"messages\": [], \"keep_alive\": 0}");
	assert_non_null(r);
	assert_non_null(strstr(r, "\"done_reason\": \"unload\""));
	free(r);
	/* a round in flight is not doubled: one /api/version request for two polls */
	int before = log_count(&dbl, "GET /api/version");
	discover_poll(d);
	discover_poll(d);
	assert_true(run_until(base, round_over, d));
	assert_int_equal(log_count(&dbl, "GET /api/version"), before + 1);
	models = discover_ollama_models(d);
	m = find_model(models, "ollama:llama3.2:1b");
	assert_false(json_is_true(json_object_get(m, "loaded")));
	assert_int_equal(json_integer_value(json_object_get(m, "vram_bytes")), 0);
	json_decref(models);
	assert_int_equal(seen.n_up, 1);   /* up all along: no more callbacks */
	assert_int_equal(seen.n_down, 0);

	discover_free(d);
	tu_stop(&dbl);
	event_base_free(base);
	free(mf);
}

/* The double itself, as Ollama documents it: root, answers, unknown models. */
static void ollama_double_speaks_ollama(void **state)
{
	struct tu_proc dbl;
	int port = start_double(&dbl, "double.log", NULL);
	char *r;

	r = tu_http(port, "GET", "/", NULL);
	assert_non_null(r);
	assert_non_null(strstr(r, "Ollama is running"));
	free(r);
	r = tu_http(port, "POST", "/api/chat", "{\"model\": \"qwen2.5:0.5b\", \"stream\": false,"
	    " \"messages\": [{\"role\": \"user\", \"content\": \"why is the sky blue?\"}]}");
	assert_non_null(r);
	assert_non_null(strstr(r, " 200 "));
	assert_non_null(strstr(r, "\"role\": \"assistant\""));
	assert_non_null(strstr(r, "\"done\": true"));
	free(r);
	r = tu_http(port, "POST", "/api/generate", "{\"model\": \"qwen2.5:0.5b\","
	    " \"prompt\": \"why?\"}");
	assert_non_null(r);
	assert_non_null(strstr(r, "application/x-ndjson"));
	assert_non_null(strstr(r, "\"done\": false"));
	assert_non_null(strstr(r, "\"done_reason\": \"stop\""));
	free(r);
	/* an answer loads the model too */
	r = tu_http(port, "GET", "/api/ps", NULL);
	assert_non_null(r);
	assert_non_null(strstr(r, "\"name\": \"qwen2.5:0.5b\""));
	assert_non_null(strstr(r, "\"size_vram\": "));
	free(r);
	r = tu_http(port, "POST", "/api/generate", "{\"model\": \"nope\"}");
	assert_non_null(r);
	assert_non_null(strstr(r, " 404 "));
	assert_non_null(strstr(r, "not found"));
	free(r);
	r = tu_http(port, "POST", "/api/generate", "{\"model\": ");
	assert_non_null(r);
	assert_non_null(strstr(r, " 400 "));
	free(r);
	tu_stop(&dbl);
}

/* Runs one round against a double started with extra options; returns the backend. */
static json_t *round_against(const char *logname, const char *const *extra,
    size_t max_body, json_t **models)
{
	struct event_base *base = event_base_new();
	struct tu_proc dbl;
	int port = start_double(&dbl, logname, extra);
	char url[64];
	struct discover_opts o = { .ollama_url = url, .max_body = max_body };
	struct discover *d;
	json_t *b;

	snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
	d = discover_new(base, &o, NULL, NULL);
	run_round(base, d);
	b = only_backend(d);
	*models = discover_ollama_models(d);
	discover_free(d);
	tu_stop(&dbl);
	event_base_free(base);
	return b;
}

/* Invalid JSON everywhere: an error, no crash, nothing listed. */
static void ollama_garbage_is_an_error(void **state)
{
	const char *extra[] = { "--garbage", NULL };
	json_t *models, *b = round_against("garbage.log", extra, 0, &models);

	assert_false(json_is_true(json_object_get(b, "detected")));
	assert_non_null(str(b, "error"));
	assert_non_null(strstr(str(b, "error"), "invalid JSON"));
	assert_int_equal(json_array_size(json_object_get(b, "models")), 0);
	assert_int_equal(json_array_size(models), 0);
	json_decref(models);
	json_decref(b);
}

/* /api/ps fails: the error says so, the models from /api/tags are still there. */
static void ollama_failing_ps_keeps_tags(void **state)
{
	const char *extra[] = { "--fail-ps", NULL };
	json_t *models, *b = round_against("failps.log", extra, 0, &models);

	assert_true(json_is_true(json_object_get(b, "detected")));
	assert_non_null(str(b, "error"));
	assert_non_null(strstr(str(b, "error"), "GET /api/ps: HTTP 500"));
	assert_int_equal(json_array_size(json_object_get(b, "models")), 2);
	assert_int_equal(json_array_size(json_object_get(b, "loaded")), 0);
	assert_int_equal(json_array_size(models), 2);
	assert_false(json_is_true(json_object_get(json_array_get(models, 0), "loaded")));
	json_decref(models);
	json_decref(b);
}

/* A body over max_body: the transfer is cut and the error says why. */
static void body_over_max_is_an_error(void **state)
{
	json_t *models, *b = round_against("big.log", NULL, 256, &models);

	/* /api/version fits in 256 bytes; /api/tags does not */
	assert_true(json_is_true(json_object_get(b, "detected")));
	assert_non_null(str(b, "error"));
	assert_non_null(strstr(str(b, "error"), "GET /api/tags: response body larger than "
	    "256 bytes"));
	assert_int_equal(json_array_size(json_object_get(b, "models")), 0);
	json_decref(models);
	json_decref(b);
}

/* The callback: up on the first round, nothing while it stays up, down once stopped. */
static void callback_on_up_and_down(void **state)
{
	struct event_base *base = event_base_new();
	struct seen seen = { 0 };
	struct tu_proc dbl;
	int port = start_double(&dbl, "updown.log", NULL);
	char url[64];
	struct discover_opts o = { .ollama_url = url, .timeout_ms = 5000 };
	struct discover *d;
	json_t *b;

	snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
	d = discover_new(base, &o, on_change, &seen);
	run_round(base, d);
	assert_int_equal(seen.n_up, 1);
	assert_int_equal(seen.n_down, 0);
	assert_string_equal(seen.url, url);
	run_round(base, d);
	assert_int_equal(seen.n_up, 1);
	assert_int_equal(seen.n_down, 0);

	tu_stop(&dbl);
	run_round(base, d);
	assert_int_equal(seen.n_up, 1);
	assert_int_equal(seen.n_down, 1);
	b = only_backend(d);
	assert_false(json_is_true(json_object_get(b, "detected")));
	assert_non_null(strstr(str(b, "error"), "GET /api/version: "));
	json_decref(b);
	json_t *models = discover_ollama_models(d);
	assert_int_equal(json_array_size(models), 0);
	json_decref(models);

	discover_free(d);
	event_base_free(base);
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
	*(int *)arg = 1;
}

static int flag_set(void *arg)
{
	return *(int *)arg;
}

static int freed(void *arg)
{
	return *(struct discover **)arg == NULL;
}

/* Freed with a request in flight, and freed from its own callback: no leak, no crash. */
static void free_mid_round_and_in_callback(void **state)
{
	struct event_base *base = event_base_new();
	struct seen seen = { 0 };
	int hole_port, hole = blackhole(&hole_port), stop = 0;
	char silent[64], url[64];
	char *urls[] = { silent };
	struct discover_opts o = { .llama_urls = urls, .n_llama = 1, .timeout_ms = 10000 };
	struct timeval tv = { 0, 100 * 1000 };
	struct tu_proc dbl;
	struct discover *d;
	struct event *ev;
	int events = event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED);

	snprintf(silent, sizeof silent, "http://127.0.0.1:%d", hole_port);
	d = discover_new(base, &o, on_change, &seen);
	discover_poll(d);
	ev = evtimer_new(base, on_stop, &stop);
	evtimer_add(ev, &tv);
	assert_true(run_until(base, flag_set, &stop));
	event_free(ev);
	assert_true(discover_busy(d));
	discover_free(d);
	close(hole);
	/* nothing of it is left on the loop */
	assert_int_equal(event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED), events);

	int port = start_double(&dbl, "freecb.log", NULL);
	struct discover_opts o2 = { .ollama_url = url };
	snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
	d = discover_new(base, &o2, on_change, &seen);
	seen.free_me = &d;
	discover_poll(d);
	assert_true(run_until(base, freed, &d));
	assert_int_equal(seen.n_up, 1);
	assert_int_equal(event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED), events);
	tu_stop(&dbl);
	event_base_free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(nothing_there_is_down),
		cmocka_unit_test(ollama_double_speaks_ollama),
		cmocka_unit_test(ollama_models_and_loads),
		cmocka_unit_test(ollama_garbage_is_an_error),
		cmocka_unit_test(ollama_failing_ps_keeps_tags),
		cmocka_unit_test(body_over_max_is_an_error),
		cmocka_unit_test(callback_on_up_and_down),
		cmocka_unit_test(free_mid_round_and_in_callback),
		cmocka_unit_test(llama_server_is_detected),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
