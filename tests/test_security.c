/*
 * test_security: who may talk to mloffloadd, checked from the outside on the real
 * binary: a web page of another site cannot make it act (a "simple" cross-site POST
 * with text/plain, Origin: null) nor read it through DNS rebinding (a foreign Host);
 * listed origins get working CORS answers; with an API key every route but /health
 * needs it (Bearer or x-api-key), the client sends it, SIGHUP re-reads the key file;
 * unsafe settings (a key file others can read, listening beyond loopback or allowing
 * every origin without a key) stop the start and -n with a reason; and a llama-server
 * child started by the daemon answers 401 to anyone without its own key, which is not
 * on its command line, while chat through the daemon works.
 *
 * Two daemons run for the whole file: "open" (no key, the default setup) and "keyed"
 * (a key file and $MLOFFLOAD_API_KEY); both can start real llama-server children.
 */
#include "daemonutil.h"

#include "util.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY "test-key-0123456789abcdef"
#define KEY2 "test-key-from-the-environment-42"
#define NEWKEY "rotated-key-9876543210fedcba"
#define APP "http://app.example:3000"

static char *bin, *client, *models, *state, *state2, *keyfile, *llama_bin;
static struct tu_proc open_d, keyed_d;
static int open_port, keyed_port;

/* Sends a request as a browser or a script would: HTTP/1.1, one connection, Host
 * 127.0.0.1:port unless host is given ("" for none), extra header lines hdrs (each
 * ending in \r\n, may be NULL). Returns the heap response; *status its code. */
static char *send_req(int port, const char *method, const char *path, const char *host,
    const char *hdrs, const char *body, int *status)
{
	char hbuf[300] = "";
	if (host == NULL)
		snprintf(hbuf, sizeof hbuf, "Host: 127.0.0.1:%d\r\n", port);
	else if (*host != '\0')
		snprintf(hbuf, sizeof hbuf, "Host: %s\r\n", host);
	char *req = xasprintf("%s %s HTTP/1.1\r\n%s%sConnection: close\r\nContent-Length: %zu"
	    "\r\n\r\n%s", method, path, hbuf, hdrs ? hdrs : "", body ? strlen(body) : 0,
	    body ? body : "");
	char *r = tu_http_raw(port, req);
	free(req);
	*status = 0;
	if (r != NULL)
		sscanf(r, "HTTP/1.%*d %d", status);
	return r;
}

/* The error code of a response's JSON body ("" when none); static buffer. */
static const char *err_code(const char *r)
{
	static char code[64];
	const char *b = r ? strstr(r, "\r\n\r\n") : NULL;
	json_error_t je;
	json_t *j = b ? json_loads(b + 4, JSON_DECODE_ANY, &je) : NULL;
	snprintf(code, sizeof code, "%s", j ? json_string_value(du_at(j, "error.code")) ?
	    json_string_value(du_at(j, "error.code")) : "" : "");
	json_decref(j);
	return code;
}

/* Reads a whole file (procfs ones too) into a NUL-terminated heap buffer, or NULL. */
static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	size_t cap = 4096, n = 0, r;
	char *b = xmalloc(cap);
	while ((r = fread(b + n, 1, cap - n - 1, f)) > 0)
		if ((n += r) + 1 >= cap)
			b = xrealloc(b, cap *= 2);
	fclose(f);
	b[n] = '\0';
	*len = n;
	return b;
}

/* 1 when the response's head holds the header line (exact, case included). */
static int has_line(const char *r, const char *line)
{
	const char *end = strstr(r, "\r\n\r\n");
	const char *p = strstr(r, line);
	return p != NULL && end != NULL && p < end;
}

/* Asserts method path answers want with error code code (NULL: any). Returns nothing;
 * the response is freed. */
static void expect(int port, const char *method, const char *path, const char *host,
    const char *hdrs, const char *body, int want, const char *code)
{
	int st;
	char *r = send_req(port, method, path, host, hdrs, body, &st);
	if (st != want || (code != NULL && strcmp(err_code(r), code) != 0))
		fail_msg("%s %s [%s]: %d, wanted %d %s:\n%s", method, path, hdrs ? hdrs : "", st,
		    want, code ? code : "", r ? r : "(nothing)");
	free(r);
}

/* A daemon on the test's models (CPU only) that allows the origin APP; extra flags
 * (NULL-terminated) go last. */
static void start(struct tu_proc *p, const char *st, const char *name, char *const *extra,
    int *port)
{
	char *flags[16] = { "--allowed-origin", APP };
	size_t n = 2;
	for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
		assert_true(n < 15);
		flags[n++] = extra[i];
	}
	flags[n] = NULL;
	struct du_daemon d = { .bin = bin, .models = models, .state = st, .llama_bin = llama_bin,
	    .extra = flags };
	*port = du_start(p, &d, name);
}

static void write_keys(const char *body, mode_t mode)
{
	assert_int_equal(tu_write_file(keyfile, body, strlen(body)), 0);
	assert_int_equal(chmod(keyfile, mode), 0);
}

static int setup(void **st)
{
	const char *bd = getenv("MLO_BUILD_DIR");
	char *root = tu_llama_root();
	if (root == NULL || bd == NULL)
		return -1;
	llama_bin = xasprintf("%s/build/bin/llama-server", root);
	free(root);
	bin = xasprintf("%s/mloffloadd", bd);
	client = xasprintf("%s/mloffload", bd);
	models = tu_path("models");
	state = tu_path("state");
	state2 = tu_path("state2");
	keyfile = tu_path("keys");
	mkdir(models, 0755);
	char *m = xasprintf("%s/a.gguf", models);
	du_gen("tiny", m, NULL, 1, 1);
	free(m);
	write_keys("# the daemon's keys\n\n  " KEY "  \n", 0600);
	start(&open_d, state, "open.log", NULL, &open_port);
	char *kargv[] = { "--api-key-file", keyfile, NULL };
	setenv("MLOFFLOAD_API_KEY", KEY2, 1);
	start(&keyed_d, state2, "keyed.log", kargv, &keyed_port);
	unsetenv("MLOFFLOAD_API_KEY");
	json_decref(du_poll(open_port, "/models", du_has_models, &(size_t){ 1 }));
	return 0;
}

static int teardown(void **st)
{
	du_stop(&open_d);
	du_stop(&keyed_d);
	free(bin);
	free(client);
	free(models);
	free(state);
	free(state2);
	free(keyfile);
	free(llama_bin);
	return 0;
}

/* DNS rebinding: the page's host name comes as Host. */
static void foreign_host(void **st)
{
	expect(open_port, "GET", "/status", "evil.example:9000", NULL, NULL, 403,
	    "forbidden_host");
	expect(open_port, "GET", "/status", "evil.example", NULL, NULL, 403, "forbidden_host");
	expect(open_port, "GET", "http://evil.example/status", "127.0.0.1", NULL, NULL, 403,
	    "forbidden_host");
	/* HTTP/1.1 needs a Host; loopback names and addresses, with or without a port, pass */
	expect(open_port, "GET", "/status", "", NULL, NULL, 400, "bad_request");
	expect(open_port, "GET", "/status", "localhost", NULL, NULL, 200, NULL);
	expect(open_port, "GET", "/status", "[::1]:1234", NULL, NULL, 200, NULL);
	expect(open_port, "GET", "/status", "127.0.0.1", NULL, NULL, 200, NULL);
	char *r = tu_http_raw(open_port, "GET /health HTTP/1.0\r\n\r\n");
	assert_non_null(r);
	assert_non_null(strstr(r, " 200 "));   /* HTTP/1.0 without Host: not a browser */
	free(r);
}

/* A "simple" cross-site request (no preflight) changes nothing. */
static void cross_site_post(void **st)
{
	const char *evil = "Origin: http://evil.example\r\nContent-Type: text/plain\r\n";
	char *m = xasprintf("%s/b.gguf", models);
	du_gen("tiny", m, NULL, 0, 2);
	free(m);
	expect(open_port, "POST", "/models/scan", NULL, evil, "{}", 403, "forbidden_origin");
	expect(open_port, "POST", "/unload", NULL, evil, "{\"model\":\"a\"}", 403,
	    "forbidden_origin");
	expect(open_port, "POST", "/load", NULL, evil, "{\"model\":\"a\"}", 403,
	    "forbidden_origin");
	json_t *j = du_get(open_port, "/models");
	assert_int_equal(json_array_size(json_object_get(j, "models")), 1);  /* no scan ran */
	json_decref(j);
	j = du_get(open_port, "/status");
	assert_int_equal(json_array_size(json_object_get(j, "loaded")), 0);
	json_decref(j);
	/* reading is refused too, and the refusal carries no CORS grant */
	int s;
	char *r = send_req(open_port, "GET", "/status", NULL, "Origin: null\r\n", NULL, &s);
	assert_int_equal(s, 403);
	assert_string_equal(err_code(r), "forbidden_origin");
	assert_null(strstr(r, "Access-Control-Allow-Origin"));
	free(r);
	/* a preflight from a foreign site is refused */
	expect(open_port, "OPTIONS", "/load", NULL, "Origin: http://evil.example\r\n"
	    "Access-Control-Request-Method: POST\r\n", NULL, 403, "forbidden_origin");
	/* another port of this machine (a llama-server, a dev server) is another origin */
	expect(open_port, "GET", "/status", NULL, "Origin: http://127.0.0.1:1\r\n", NULL, 403,
	    "forbidden_origin");
}

/* allowed_origins: the answers a browser needs, preflights included. */
static void allowed_origin(void **st)
{
	int s;
	char *r = send_req(open_port, "GET", "/status", NULL, "Origin: " APP "\r\n", NULL, &s);
	assert_int_equal(s, 200);
	assert_true(has_line(r, "Access-Control-Allow-Origin: " APP "\r\n"));
	assert_true(has_line(r, "Vary: Origin\r\n"));
	free(r);
	r = send_req(open_port, "OPTIONS", "/load", NULL, "Origin: " APP "\r\n"
	    "Access-Control-Request-Method: POST\r\n"
	    "Access-Control-Request-Headers: content-type, authorization\r\n", NULL, &s);
	assert_int_equal(s, 204);
	assert_true(has_line(r, "Access-Control-Allow-Origin: " APP "\r\n"));
	assert_true(has_line(r, "Access-Control-Allow-Methods: POST\r\n"));
	assert_true(has_line(r, "Access-Control-Allow-Headers: Authorization, Content-Type"));
	assert_true(has_line(r, "Access-Control-Max-Age: "));
	free(r);
	r = send_req(open_port, "OPTIONS", "/status", NULL, "Origin: " APP "\r\n"
	    "Access-Control-Request-Method: GET\r\n", NULL, &s);
	assert_int_equal(s, 204);
	assert_true(has_line(r, "Access-Control-Allow-Methods: GET, HEAD\r\n"));
	free(r);
	/* the daemon's own origin, under either loopback name */
	char *own = xasprintf("Origin: http://127.0.0.1:%d\r\n", open_port);
	expect(open_port, "GET", "/status", NULL, own, NULL, 200, NULL);
	free(own);
	own = xasprintf("Origin: http://localhost:%d\r\n", open_port);
	expect(open_port, "GET", "/status", NULL, own, NULL, 200, NULL);
	free(own);
}

/* With a key: every route but /health needs it; both header forms work. */
static void key_required(void **st)
{
	static const char *const routes[][3] = {
		{ "GET", "/status", NULL }, { "POST", "/load", "{\"model\":\"a\"}" },
		{ "GET", "/v1/models", NULL },
		{ "POST", "/v1/chat/completions", "{\"model\":\"a\",\"messages\":[]}" },
		{ "GET", "/events", NULL }, { "GET", "/nosuchroute", NULL },
	};
	for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
		int s;
		char *r = send_req(keyed_port, routes[i][0], routes[i][1], NULL, NULL, routes[i][2],
		    &s);
		if (s != 401 || strcmp(err_code(r), "invalid_api_key") != 0 ||
		    !has_line(r, "WWW-Authenticate: Bearer"))
			fail_msg("%s %s without a key: %s", routes[i][0], routes[i][1], r ? r : "");
		free(r);
		expect(keyed_port, routes[i][0], routes[i][1], NULL, "Authorization: Bearer "
		    "wrong-key-0123456789abcdef\r\n", routes[i][2], 401, "invalid_api_key");
		expect(keyed_port, routes[i][0], routes[i][1], NULL, "x-api-key: " KEY "x\r\n",
		    routes[i][2], 401, "invalid_api_key");
		expect(keyed_port, routes[i][0], routes[i][1], NULL, "x-api-key: test-key\r\n",
		    routes[i][2], 401, "invalid_api_key");
	}
	expect(keyed_port, "GET", "/status", NULL, "Authorization: Bearer " KEY "\r\n", NULL,
	    200, NULL);
	expect(keyed_port, "GET", "/status", NULL, "Authorization: bearer  " KEY "\r\n", NULL,
	    200, NULL);
	expect(keyed_port, "GET", "/v1/models", NULL, "x-api-key: " KEY "\r\n", NULL, 200,
	    NULL);
	expect(keyed_port, "GET", "/status", NULL, "x-api-key: " KEY2 "\r\n", NULL, 200, NULL);
	expect(keyed_port, "GET", "/health", NULL, NULL, NULL, 200, NULL);
	/* a page of a listed origin: its preflight needs no key, and it can read the 401 */
	expect(keyed_port, "OPTIONS", "/status", NULL, "Origin: " APP "\r\n"
	    "Access-Control-Request-Method: GET\r\n", NULL, 204, NULL);
	int s;
	char *r = send_req(keyed_port, "GET", "/status", NULL, "Origin: " APP "\r\n", NULL, &s);
	assert_int_equal(s, 401);
	assert_true(has_line(r, "Access-Control-Allow-Origin: " APP "\r\n"));
	free(r);
	/* the checks go Host, Origin, key */
	expect(keyed_port, "GET", "/status", "evil.example", NULL, NULL, 403, "forbidden_host");
	expect(keyed_port, "GET", "/status", NULL, "Origin: null\r\n", NULL, 403,
	    "forbidden_origin");
}

/* The client sends the key from MLOFFLOAD_API_KEY or --api-key-file. */
static void client_key(void **st)
{
	char *out = tu_path("client.out");
	assert_int_equal(tu_sh("MLOFFLOAD_API_KEY=%s %s --url http://127.0.0.1:%d status "
	    ">%s 2>&1", KEY, client, keyed_port, out), 0);
	assert_int_equal(tu_sh("%s --api-key-file %s --url http://127.0.0.1:%d status --json "
	    ">%s 2>&1", client, keyfile, keyed_port, out), 0);
	assert_int_equal(tu_sh("env -u MLOFFLOAD_API_KEY %s --url http://127.0.0.1:%d status "
	    ">%s 2>&1", client, keyed_port, out), 1);
	assert_int_equal(tu_sh("grep -q 'API key is needed' %s", out), 0);
	free(out);
}

static int key_works(const char *key)
{
	char *h = xasprintf("x-api-key: %s\r\n", key);
	int s;
	free(send_req(keyed_port, "GET", "/status", NULL, h, NULL, &s));
	free(h);
	return s == 200;
}

/* SIGHUP re-reads the key file; one that turned unsafe keeps the running keys. */
static void sighup_keys(void **st)
{
	write_keys(NEWKEY "\n", 0600);
	kill(keyed_d.pid, SIGHUP);
	for (int i = 0; i < 600 && !key_works(NEWKEY); i++)
		usleep(50 * 1000);
	assert_true(key_works(NEWKEY));
	assert_false(key_works(KEY));
	assert_true(key_works(KEY2));  /* the environment's key stays */
	write_keys(KEY "\n", 0644);
	kill(keyed_d.pid, SIGHUP);
	assert_int_equal(tu_wait_log(&keyed_d, "keeping the running API keys", 30), 1);
	assert_true(key_works(NEWKEY));
	assert_false(key_works(KEY));
	write_keys(KEY "\n", 0600);
	kill(keyed_d.pid, SIGHUP);
	for (int i = 0; i < 600 && !key_works(KEY); i++)
		usleep(50 * 1000);
	assert_true(key_works(KEY));
}

/* Runs mloffloadd with args (10 s at most); returns its exit status, output in out. */
static int run_daemon(const char *args, const char *out)
{
	char *st4 = tu_path("state4");
	int rc = tu_sh("env -u MLOFFLOAD_API_KEY timeout 10 %s --models-dir %s --state-dir %s "
	    "--nvml-lib /nonexistent/libnvidia-ml.so --ollama-url '' --llama-url "
	    "http://127.0.0.1:9 %s >%s 2>&1", bin, models, st4, args, out);
	free(st4);
	return rc;
}

static void expect_refusal(const char *args, const char *reason)
{
	char *out = tu_path("refusal.out"), *a;
	for (int check = 0; check < 2; check++) {
		a = xasprintf("%s %s", check ? "-n" : "", args);
		int rc = run_daemon(a, out);
		size_t len;
		char *text = slurp(out, &len);
		if (rc != 1 || text == NULL || strstr(text, reason) == NULL ||
		    strchr(text, '\n') != text + len - 1)
			fail_msg("mloffloadd %s: exit %d, wanted 1 and one line with '%s':\n%s", a, rc,
			    reason, text ? text : "");
		free(text);
		free(a);
	}
	free(out);
}

/* Unsafe settings stop the start and -n, with a one-line reason. */
static void unsafe_config(void **st)
{
	char *st4 = tu_path("state4");
	char *bad = tu_path("keys.bad"), *empty = tu_path("keys.empty"), *a;
	assert_int_equal(tu_write_file(bad, KEY "\n", strlen(KEY) + 1), 0);
	assert_int_equal(chmod(bad, 0644), 0);
	a = xasprintf("--api-key-file %s", bad);
	expect_refusal(a, "other users may read or write it");
	free(a);
	assert_int_equal(tu_write_file(empty, "# none yet\n", 11), 0);
	assert_int_equal(chmod(empty, 0600), 0);
	a = xasprintf("--api-key-file %s", empty);
	expect_refusal(a, "holds no key");
	free(a);
	expect_refusal("--listen 0.0.0.0:0", "needs an API key");
	expect_refusal("--allowed-origin '*'", "needs an API key");
	expect_refusal("--allowed-origin http://app.example/path", "allowed_origins");
	char *out = tu_path("ok.out");
	a = xasprintf("-n --listen 0.0.0.0:0 --api-key-file %s", keyfile);
	assert_int_equal(run_daemon(a, out), 0);
	free(a);
	assert_int_equal(tu_sh("MLOFFLOAD_API_KEY=%s %s -n --listen 0.0.0.0:0 --allowed-origin "
	    "'*' --models-dir %s --state-dir %s >%s 2>&1", KEY, bin, models, st4, out), 0);
	free(out);
	free(bad);
	free(empty);
	free(st4);
}

/* With a key, listening on every address starts, and answers by loopback and address. */
static void wildcard_with_key(void **st)
{
	struct tu_proc p;
	char *log = tu_path("wild.log"), *st3 = tu_path("state3");
	char *argv[] = { bin, "--listen", "0.0.0.0:0", "--models-dir", models, "--state-dir",
	    st3, "--nvml-lib", "/nonexistent/libnvidia-ml.so", "--ollama-url", "",
	    "--llama-url", "http://127.0.0.1:9", "--api-key-file", keyfile, NULL };
	assert_int_equal(tu_spawn(&p, argv, log), 0);
	int port = tu_log_port(&p, "listening on http://0.0.0.0:", 60);
	expect(port, "GET", "/health", NULL, NULL, NULL, 200, NULL);
	expect(port, "GET", "/status", NULL, NULL, NULL, 401, "invalid_api_key");
	expect(port, "GET", "/status", "192.0.2.7:80", "x-api-key: " KEY "\r\n", NULL, 200,
	    NULL);
	expect(port, "GET", "/status", "gpu.example", "x-api-key: " KEY "\r\n", NULL, 403,
	    "forbidden_host");
	du_stop(&p);
	free(log);
	free(st3);
}

/* The llama-server the daemon starts takes requests only with its own key, which is
 * in its environment, not on its command line; chat through the daemon works. */
static void child_key(void **st)
{
	int s;
	char *r = NULL;
	for (int i = 0; i < 1200; i++) {  /* the keyed daemon's first scan, 60 s at most */
		free(r);
		r = send_req(keyed_port, "GET", "/models/a", NULL, "x-api-key: " KEY "\r\n", NULL,
		    &s);
		if (s == 200)
			break;
		usleep(50 * 1000);
	}
	assert_int_equal(s, 200);
	free(r);
	r = send_req(keyed_port, "POST", "/load", NULL, "x-api-key: " KEY "\r\n",
	    "{\"model\":\"a\",\"ctx\":512}", &s);
	assert_int_equal(s, 200);
	json_t *j = json_loads(strstr(r, "\r\n\r\n") + 4, 0, NULL);
	free(r);
	int cport = (int)json_integer_value(json_object_get(j, "port"));
	int pid = (int)json_integer_value(json_object_get(j, "pid"));
	json_decref(j);
	assert_true(cport > 0 && pid > 0);
	/* another local user, without the key */
	expect(cport, "GET", "/v1/models", NULL, NULL, NULL, 401, NULL);
	expect(cport, "POST", "/completion", NULL, NULL, "{\"prompt\":\"hi\",\"n_predict\":1}",
	    401, NULL);
	expect(cport, "GET", "/v1/models", NULL, "Authorization: Bearer " KEY "\r\n", NULL, 401,
	    NULL);
	/* the key is in the environment (readable by this user only) */
	char path[64], key[80] = "";
	size_t len = 0;
	snprintf(path, sizeof path, "/proc/%d/environ", pid);
	char *env = slurp(path, &len);
	assert_non_null(env);
	for (size_t i = 0; i < len; i += strlen(env + i) + 1) {
		if (strncmp(env + i, "LLAMA_API_KEY=", 14) == 0)
			snprintf(key, sizeof key, "%s", env + i + 14);
		assert_null(strstr(env + i, KEY2));   /* the daemon's own key stays out */
	}
	free(env);
	assert_int_equal(strlen(key), 64);
	snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
	char *cmd = slurp(path, &len);
	assert_non_null(cmd);
	for (size_t i = 0; i < len; i += strlen(cmd + i) + 1) {
		assert_null(strstr(cmd + i, key));
		assert_null(strstr(cmd + i, "api-key"));
	}
	free(cmd);
	char *h = xasprintf("Authorization: Bearer %s\r\n", key);
	expect(cport, "GET", "/v1/models", NULL, h, NULL, 200, NULL);
	free(h);
	/* the daemon sends the child's key with what it forwards; a listed origin reads the
	 * answer, streamed or not */
	for (int stream = 0; stream < 2; stream++) {
		char *body = xasprintf("{\"model\":\"a\",\"max_tokens\":2,\"stream\":%s,"
		    "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
		    stream ? "true" : "false");
		r = send_req(keyed_port, "POST", "/v1/chat/completions", NULL, "Authorization: "
		    "Bearer " KEY "\r\nContent-Type: application/json\r\nOrigin: " APP "\r\n",
		    body, &s);
		if (s != 200 || !has_line(r, "Access-Control-Allow-Origin: " APP "\r\n"))
			fail_msg("chat through the daemon: %s", r ? r : "");
		free(r);
		free(body);
	}
	expect(keyed_port, "POST", "/unload", NULL, "x-api-key: " KEY "\r\n",
	    "{\"model\":\"a\"}", 200, NULL);
}

static int one_ready(json_t *j, void *arg)
{
	return json_array_size(json_object_get(j, "loaded")) == 1 &&
	    strcmp(json_string_value(du_at(j, "loaded.0.state")), "ready") == 0;
}

/* A cross-site "simple" POST /unload leaves a loaded model loaded. */
static void cross_site_unload(void **st)
{
	expect(open_port, "POST", "/load", NULL, NULL, "{\"model\":\"a\",\"ctx\":512}", 200,
	    NULL);
	expect(open_port, "POST", "/unload", NULL, "Origin: http://evil.example\r\n"
	    "Content-Type: text/plain\r\n", "{\"model\":\"a\"}", 403, "forbidden_origin");
	expect(open_port, "POST", "/unload", NULL, "Origin: null\r\nContent-Type: text/plain"
	    "\r\n", "{\"model\":\"a\"}", 403, "forbidden_origin");
	json_decref(du_poll(open_port, "/status", one_ready, NULL));
	expect(open_port, "POST", "/unload", NULL, NULL, "{\"model\":\"a\"}", 200, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(foreign_host),
		cmocka_unit_test(cross_site_post),
		cmocka_unit_test(allowed_origin),
		cmocka_unit_test(key_required),
		cmocka_unit_test(client_key),
		cmocka_unit_test(sighup_keys),
		cmocka_unit_test(unsafe_config),
		cmocka_unit_test(wildcard_with_key),
		cmocka_unit_test(child_key),
		cmocka_unit_test(cross_site_unload),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
