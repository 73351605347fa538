/*
 * test_routes: the routes beyond chat that today's clients speak, through the real
 * mloffloadd with real llama-server children on tiny generated models: OpenAI's
 * Responses API driven by the official `openai` npm package, Anthropic's Messages API
 * driven by the official `@anthropic-ai/sdk` (its errors, its key header), rerank on a
 * tiny reranker, infill on a tiny model with a code tokenizer, tokenize/detokenize, the
 * model kinds that /v1/models shows and that refuse the wrong API before any load, a
 * client that hangs up mid-stream on /v1/responses and /v1/messages, and a backend that
 * dies mid-stream on /v1/messages.
 */
#include "daemonutil.h"

#include "util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define KEY "routes-key-0123456789abcdef"

static char *bin, *models, *state, *llama_bin;
static struct tu_proc dmn;
static int port;

/* A daemon on the test's models (CPU only); extra flags (NULL-terminated) go last. */
static void start(struct tu_proc *p, const char *st, const char *logname, char *const *extra,
    int *out_port)
{
	struct du_daemon d = { .bin = bin, .models = models, .state = st, .llama_bin = llama_bin,
	    .extra = extra };
	*out_port = du_start(p, &d, logname);
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
	models = tu_path("models");
	state = tu_path("state");
	mkdir(models, 0755);
	static const char *const gens[][2] = { { "tiny", "a" }, { "tiny-rerank", "r" },
		{ "tiny-code", "code" }, { "tiny-embed", "e" } };
	for (size_t i = 0; i < 4; i++) {
		char *m = xasprintf("%s/%s.gguf", models, gens[i][1]);
		du_gen(gens[i][0], m, NULL, 1, i + 1);
		free(m);
	}
	start(&dmn, state, "daemon.log", NULL, &port);
	json_decref(du_poll(port, "/models", du_has_models, &(size_t){ 4 }));
	return 0;
}

static int teardown(void **st)
{
	du_stop(&dmn);
	free(bin);
	free(models);
	free(state);
	free(llama_bin);
	return 0;
}

/* ---- clients ---- */

/* Runs tests/<script> (openai_client.mjs or anthropic_client.mjs) with its package's
 * folder in env; returns its JSON line (new). */
static json_t *node_client(const char *script, const char *env, char *dir, const char *args)
{
	char *node = tu_node();
	if (dir == NULL || node == NULL)
		fail_msg("%s: the npm package or node is missing (scripts/setup-*.sh)", script);
	char *outp = tu_path("client.out");
	int rc = tu_sh("%s='%s' '%s' '%s/tests/%s' %s > '%s' 2>&1", env, dir, node,
	    getenv("MLO_SOURCE_DIR"), script, args, outp);
	size_t len;
	char *text = (char *)tu_read_file(outp, &len);
	json_error_t je;
	json_t *j = text ? json_loadb(text, len, 0, &je) : NULL;
	if (j == NULL || (rc != 0 && rc != 1))
		fail_msg("%s %s: exit %d: %s", script, args, rc, text ? text : "");
	free(text);
	free(outp);
	free(dir);
	free(node);
	return j;
}

static json_t *openai(const char *mode, const char *model)
{
	char *args = xasprintf("http://127.0.0.1:%d/v1 %s '%s'", port, mode, model);
	json_t *j = node_client("openai_client.mjs", "MLO_OPENAI_DIR", tu_openai_dir(), args);
	free(args);
	return j;
}

static json_t *anthropic(int at, const char *mode, const char *model, const char *key)
{
	char *args = xasprintf("http://127.0.0.1:%d %s '%s' '%s'", at, mode, model,
	    key ? key : "");
	json_t *j = node_client("anthropic_client.mjs", "MLO_ANTHROPIC_DIR", tu_anthropic_dir(),
	    args);
	free(args);
	return j;
}

static json_t *post(const char *path, const char *body, int want)
{
	int st;
	json_t *j = du_req(port, "POST", path, body, &st);
	if (st != want) {
		char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
		fail_msg("POST %s %.200s: status %d, wanted %d: %s", path, body, st, want,
		    s ? s : "");
	}
	return j;
}

static const char *str(json_t *j, const char *path)
{
	const char *s = json_string_value(du_at(j, path));
	return s ? s : "";
}

/* The /v1/models entry of id (new), or fails. */
static json_t *v1_model(const char *id)
{
	json_t *l = du_get(port, "/v1/models"), *v, *found = NULL;
	size_t i;
	json_array_foreach(json_object_get(l, "data"), i, v)
		if (strcmp(str(v, "id"), id) == 0)
			found = json_incref(v);
	json_decref(l);
	if (found == NULL)
		fail_msg("/v1/models has no %s", id);
	return found;
}

static int loaded(const char *id)
{
	json_t *m = v1_model(id);
	int l = json_is_true(json_object_get(m, "loaded"));
	json_decref(m);
	return l;
}

/* ---- tests ---- */

/* /v1/models says what each model is; a request for an API its model cannot serve is
 * a 400 naming the kind, and nothing is loaded for it. */
static void model_kinds_refuse_the_wrong_api(void **st)
{
	static const char *const kinds[][2] = { { "a", "chat" }, { "r", "rerank" },
		{ "code", "chat" }, { "e", "embedding" } };
	for (size_t i = 0; i < 4; i++) {
		json_t *m = v1_model(kinds[i][0]);
		assert_string_equal(str(m, "object"), "model");
		assert_string_equal(str(m, "kind"), kinds[i][1]);
		assert_int_equal(json_integer_value(json_object_get(m, "context_length")), 4096);
		assert_true(json_is_false(json_object_get(m, "loaded")));
		json_decref(m);
	}
	static const char *const wrong[][3] = {
		{ "/v1/rerank", "{\"model\":\"a\",\"query\":\"q\",\"documents\":[\"d\"]}",
		  "'a' is a chat model" },
		{ "/v1/chat/completions", "{\"model\":\"r\",\"messages\":[]}", "'r' is a rerank model" },
		{ "/v1/responses", "{\"model\":\"e\",\"input\":\"hi\"}", "'e' is an embedding model" },
		{ "/v1/embeddings", "{\"model\":\"a\",\"input\":\"hi\"}", "'a' is a chat model" },
		{ "/infill", "{\"model\":\"r\",\"input_prefix\":\"a\",\"input_suffix\":\"b\"}",
		  "'r' is a rerank model" },
	};
	for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
		json_t *j = post(wrong[i][0], wrong[i][1], 400);
		assert_string_equal(str(j, "error.code"), "wrong_model_kind");
		assert_non_null(strstr(str(j, "error.message"), wrong[i][2]));
		json_decref(j);
	}
	/* Anthropic's route answers in Anthropic's shape */
	json_t *j = post("/v1/messages", "{\"model\":\"r\",\"max_tokens\":4,\"messages\":[]}", 400);
	assert_string_equal(str(j, "type"), "error");
	assert_string_equal(str(j, "error.type"), "invalid_request_error");
	assert_non_null(strstr(str(j, "error.message"), "'r' is a rerank model"));
	json_decref(j);
	/* nothing was started for any of them */
	json_t *s = du_get(port, "/status");
	assert_int_equal(json_array_size(json_object_get(s, "loaded")), 0);
	json_decref(s);
	/* a route no model here can serve says why */
	j = post("/v1/audio/transcriptions", "{}", 501);
	assert_string_equal(str(j, "error.code"), "not_implemented");
	json_decref(j);
	/* llama-server's own routes take the model from ?model= when the body has none */
	j = post("/tokenize", "{\"content\":\"hi\"}", 400);
	assert_string_equal(str(j, "error.code"), "missing_model");
	json_decref(j);
}

/* The official openai package's responses.create, plain and streamed, loads the model
 * on demand and reads the answer. */
static void responses_through_the_openai_sdk(void **st)
{
	assert_false(loaded("a"));
	json_t *j = openai("responses", "a");
	assert_true(json_is_true(json_object_get(j, "ok")));
	assert_string_equal(str(j, "status"), "completed");
	assert_true(strlen(str(j, "text")) > 0);
	assert_int_equal(json_integer_value(du_at(j, "usage.output_tokens")), 8);
	json_decref(j);
	json_t *m = v1_model("a");
	assert_true(json_is_true(json_object_get(m, "loaded")));
	assert_true(json_integer_value(json_object_get(m, "ctx")) > 0);
	json_decref(m);
	j = openai("responses_stream", "a");
	assert_true(json_is_true(json_object_get(j, "ok")));
	json_t *ev = json_object_get(j, "events");
	size_t n = json_array_size(ev);
	assert_true(n > 3);
	assert_string_equal(json_string_value(json_array_get(ev, 0)), "response.created");
	assert_string_equal(json_string_value(json_array_get(ev, n - 1)), "response.completed");
	assert_string_equal(str(j, "status"), "completed");
	assert_true(strlen(str(j, "text")) > 0);
	json_decref(j);
	/* an unknown model is the SDK's NotFoundError */
	j = openai("responses", "no-such-model");
	assert_int_equal(json_integer_value(json_object_get(j, "status")), 404);
	assert_string_equal(str(j, "name"), "NotFoundError");
	json_decref(j);
}

/* The official @anthropic-ai/sdk: messages.create plain and streamed (the event sequence
 * intact), count_tokens, and an unknown model as its NotFoundError. */
static void messages_through_the_anthropic_sdk(void **st)
{
	json_t *j = anthropic(port, "message", "a", NULL);
	assert_true(json_is_true(json_object_get(j, "ok")));
	assert_string_equal(str(j, "type"), "message");
	assert_string_equal(str(j, "stop_reason"), "max_tokens");
	assert_true(strlen(str(j, "text")) > 0);
	json_decref(j);
	j = anthropic(port, "stream", "a", NULL);
	assert_true(json_is_true(json_object_get(j, "ok")));
	json_t *ev = json_object_get(j, "events");
	size_t n = json_array_size(ev);
	assert_true(n > 4);
	assert_string_equal(json_string_value(json_array_get(ev, 0)), "message_start");
	assert_string_equal(json_string_value(json_array_get(ev, 1)), "content_block_start");
	assert_string_equal(json_string_value(json_array_get(ev, n - 2)), "message_delta");
	assert_string_equal(json_string_value(json_array_get(ev, n - 1)), "message_stop");
	assert_true(strlen(str(j, "text")) > 0);
	json_decref(j);
	j = anthropic(port, "count", "a", NULL);
	assert_true(json_is_true(json_object_get(j, "ok")));
	assert_true(json_integer_value(json_object_get(j, "input_tokens")) > 0);
	json_decref(j);
	j = anthropic(port, "message", "no-such-model", NULL);
	assert_false(json_is_true(json_object_get(j, "ok")));
	assert_string_equal(str(j, "name"), "NotFoundError");
	assert_int_equal(json_integer_value(json_object_get(j, "status")), 404);
	assert_string_equal(str(j, "type"), "not_found_error");
	json_decref(j);
}

/* With a key set, the SDK's x-api-key header is what lets it in. */
static void anthropic_key_header_is_honoured(void **st)
{
	char *keyfile = tu_path("keys"), *st2 = tu_path("state-keyed");
	assert_int_equal(tu_write_file(keyfile, KEY "\n", strlen(KEY) + 1), 0);
	assert_int_equal(chmod(keyfile, 0600), 0);
	char *extra[] = { "--api-key-file", keyfile, NULL };
	struct tu_proc keyed;
	int kport;
	start(&keyed, st2, "keyed.log", extra, &kport);
	json_t *j = anthropic(kport, "message", "a", "wrong-key-0123456789abcdef");
	assert_int_equal(json_integer_value(json_object_get(j, "status")), 401);
	assert_string_equal(str(j, "name"), "AuthenticationError");
	assert_string_equal(str(j, "type"), "authentication_error");
	json_decref(j);
	j = anthropic(kport, "message", "a", KEY);
	assert_true(json_is_true(json_object_get(j, "ok")));
	assert_string_equal(str(j, "type"), "message");
	json_decref(j);
	du_stop(&keyed);
	free(keyfile);
	free(st2);
}

/* rerank on the tiny reranker: a score for every document, highest first, on both
 * paths llama-server answers. */
static void rerank_scores_every_document(void **st)
{
	static const char *const paths[] = { "/v1/rerank", "/rerank" };
	for (size_t p = 0; p < 2; p++) {
		json_t *j = post(paths[p], "{\"model\":\"r\",\"query\":\"what is a cat\","
		    "\"documents\":[\"a cat is an animal\",\"the market fell\",\"cats purr\","
		    "\"rain\"]}", 200);
		json_t *res = json_object_get(j, "results"), *v;
		size_t i;
		int seen[4] = { 0 };
		double last = 1e30;
		assert_int_equal(json_array_size(res), 4);
		json_array_foreach(res, i, v) {
			json_int_t k = json_integer_value(json_object_get(v, "index"));
			assert_true(k >= 0 && k < 4);
			seen[k]++;
			double s = json_number_value(json_object_get(v, "relevance_score"));
			assert_true(s <= last);
			last = s;
		}
		for (i = 0; i < 4; i++)
			assert_int_equal(seen[i], 1);
		json_decref(j);
	}
	assert_true(loaded("r"));
}

/* tokenize, then detokenize (the model named by ?model=), gives the text back; infill
 * on a model with fill-in-the-middle tokens answers. */
static void infill_and_tokenize_round_trip(void **st)
{
	json_t *j = post("/tokenize", "{\"model\":\"a\",\"content\":\"hello world\"}", 200);
	json_t *tok = json_object_get(j, "tokens");
	assert_true(json_array_size(tok) >= 2);
	char *toks = json_dumps(tok, JSON_COMPACT), *body = xasprintf("{\"tokens\":%s}", toks);
	json_t *d = post("/detokenize?model=a", body, 200);
	assert_string_equal(str(d, "content") + (str(d, "content")[0] == ' '), "hello world");
	json_decref(d);
	free(body);
	free(toks);
	json_decref(j);
	j = post("/infill", "{\"model\":\"code\",\"input_prefix\":\"def add(a, b):\\n    return \","
	    "\"input_suffix\":\"\\n\",\"n_predict\":4}", 200);
	assert_true(json_is_string(json_object_get(j, "content")));
	assert_int_equal(json_integer_value(json_object_get(j, "tokens_predicted")), 4);
	json_decref(j);
	/* a chat model without those tokens: llama-server's own refusal comes through */
	int s;
	j = du_req(port, "POST", "/infill", "{\"model\":\"a\",\"input_prefix\":\"x\","
	    "\"input_suffix\":\"y\"}", &s);
	assert_int_equal(s, 501);
	assert_non_null(strstr(str(j, "error.message"), "Infill is not supported"));
	json_decref(j);
}

/* Sends a streamed POST to path on a plain socket, so that the test decides when to
 * hang up; returns the socket. */
static int stream_open(const char *path, const char *body)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
	char *req = xasprintf("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
	    "application/json\r\nContent-Length: %zu\r\n\r\n%s", path, strlen(body), body);
	assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	free(req);
	return fd;
}

/* Reads from fd until what came holds needle (1), or EOF or 300 s (0). */
static int read_until(int fd, const char *needle)
{
	static char buf[1 << 16];
	size_t len = 0;
	time_t t0 = time(NULL);
	while (time(NULL) - t0 < 300) {
		buf[len] = '\0';
		if (strstr(buf, needle) != NULL)
			return 1;
		if (len > sizeof buf / 2) { /* keep the tail, where the needle may start */
			memmove(buf, buf + len - 256, 256);
			len = 256;
		}
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, 100) <= 0)
			continue;
		ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
		if (n <= 0)
			return 0;
		len += (size_t)n;
	}
	return 0;
}

/* How often model a's llama-server log says a task was cancelled. */
static int cancels(void)
{
	char *logp = xasprintf("%s/llama-a.log", state);
	size_t n;
	char *log = (char *)tu_read_file(logp, &n);
	int c = 0;
	static const char what[] = "cancel task";
	/* the file is not NUL-terminated */
	for (char *p = log, *end = log + (log ? n : 0); p != NULL &&
	    (p = memmem(p, (size_t)(end - p), what, sizeof what - 1)) != NULL; p++)
		c++;
	free(log);
	free(logp);
	return c;
}

static long long metric(const char *name)
{
	char *r = tu_http(port, "GET", "/metrics", NULL);
	assert_non_null(r);
	char *k = xasprintf("\n%s ", name), *p = strstr(r, k);
	assert_non_null(p);
	long long v = strtoll(p + strlen(k), NULL, 10);
	free(k);
	free(r);
	return v;
}

/* A client that hangs up mid-stream on /v1/responses or /v1/messages cancels its task
 * in llama-server and frees the slot. */
static void client_gone_mid_stream_cancels(void **st)
{
	static const char *const cases[][3] = {
		{ "/v1/responses", "{\"model\":\"a\",\"stream\":true,\"max_output_tokens\":3000,"
		  "\"ignore_eos\":true,\"input\":\"count\"}", "response.output_text.delta" },
		{ "/v1/messages", "{\"model\":\"a\",\"stream\":true,\"max_tokens\":3000,"
		  "\"ignore_eos\":true,\"messages\":[{\"role\":\"user\",\"content\":\"count\"}]}",
		  "content_block_delta" },
	};
	for (size_t i = 0; i < 2; i++) {
		int before = cancels();
		int fd = stream_open(cases[i][0], cases[i][1]);
		assert_true(read_until(fd, cases[i][2]));
		close(fd);
		int after = before;
		for (int k = 0; k < 1200 && after == before; k++) { /* the child's log, relayed */
			after = cancels();
			if (after == before)
				usleep(50 * 1000);
		}
		assert_true(after > before);
		for (int k = 0; k < 1200 && metric("mloffload_v1_in_flight") != 0; k++)
			usleep(50 * 1000);
		assert_int_equal(metric("mloffload_v1_in_flight"), 0);
	}
	/* the slot serves the next request */
	json_t *j = anthropic(port, "message", "a", NULL);
	assert_true(json_is_true(json_object_get(j, "ok")));
	json_decref(j);
}

/* A backend killed mid-stream on /v1/messages ends the stream with Anthropic's error
 * event; the next request loads the model again. */
static void backend_death_is_an_anthropic_error_event(void **st)
{
	int fd = stream_open("/v1/messages", "{\"model\":\"a\",\"stream\":true,\"max_tokens\":"
	    "3000,\"ignore_eos\":true,\"messages\":[{\"role\":\"user\",\"content\":\"count\"}]}");
	assert_true(read_until(fd, "content_block_delta"));
	json_t *s = du_get(port, "/status"), *v;
	size_t i;
	int pid = 0;
	json_array_foreach(json_object_get(s, "loaded"), i, v)
		if (strcmp(str(v, "model"), "a") == 0)
			pid = (int)json_integer_value(json_object_get(v, "pid"));
	json_decref(s);
	assert_true(pid > 0);
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_true(read_until(fd, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":"
	    "\"api_error\",\"message\":\"the backend failed"));
	close(fd);
	json_t *j = anthropic(port, "message", "a", NULL);
	assert_true(json_is_true(json_object_get(j, "ok")));
	json_decref(j);
}

int main(void)
{
	const char *only = getenv("TEST_ROUTES_ONLY"); /* a developer's shortcut: one test */
	if (only != NULL)
		cmocka_set_test_filter(only);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(model_kinds_refuse_the_wrong_api),
		cmocka_unit_test(responses_through_the_openai_sdk),
		cmocka_unit_test(messages_through_the_anthropic_sdk),
		cmocka_unit_test(anthropic_key_header_is_honoured),
		cmocka_unit_test(rerank_scores_every_document),
		cmocka_unit_test(infill_and_tokenize_round_trip),
		cmocka_unit_test(client_gone_mid_stream_cancels),
		cmocka_unit_test(backend_death_is_an_anthropic_error_event),
	};
	int rc = cmocka_run_group_tests(tests, setup, teardown);
	return rc != 0 ? rc : du_stops_failed(); /* every daemon stopped cleanly */
}
