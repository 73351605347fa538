/*
 * test_proxy: the OpenAI-compatible routes of the real mloffloadd, with real
 * llama-server children on tiny generated models, the fake NVML library as a GPU that
 * holds one of them but not two, and the official `openai` npm package as the client
 * where a client written by others matters. Each test checks what a user would: the
 * answer, the stream, the errors and their statuses, the queue's limits, how few
 * switches alternating requests cause, and what happens when a client or a backend
 * goes away mid-stream.
 */
#include "daemonutil.h"

#include "util.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char *bin, *models, *state, *nvml, *llama_bin, *oll_script;
static struct tu_proc dmn, oll;
static int port, oll_port;
static uint64_t one_model;

static void gen(const char *shape, const char *name, uint64_t seed, const char *quant)
{
	char *p = xasprintf("%s/%s", models, name);
	du_gen(shape, p, quant, strcmp(shape, "qwen3moe-30b") != 0, seed);
	free(p);
}

static void set_gpu(uint64_t total)
{
	du_fake_gpu(nvml, total, 0);
}

static void stop_daemon(void)
{
	du_stop(&dmn);
}

/* A daemon on the test's models, the fake GPU and the Ollama double; extra flags
 * (NULL-terminated, up to 8) go last. */
static void start_daemon(const char *const *extra)
{
	char *ourl = xasprintf("http://127.0.0.1:%d", oll_port);
	char *flags[16] = { "--sample-ms", "100", "--alias", "chat-default a" };
	size_t n = 4;
	for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 15; i++)
		flags[n++] = (char *)extra[i];
	flags[n] = NULL;
	struct du_daemon d = { .bin = bin, .models = models, .state = state,
	    .llama_bin = llama_bin, .nvml = FAKE_NVML_PATH, .ollama_url = ourl, .extra = flags };
	setenv("FAKE_NVML_STATE", nvml, 1);
	port = du_start(&dmn, &d, "daemon.log");
	json_decref(du_poll(port, "/models", du_has_models, &(size_t){ 6 }));
	free(ourl);
}

static int setup(void **st)
{
	const char *bd = getenv("MLO_BUILD_DIR"), *sd = getenv("MLO_SOURCE_DIR");
	char *root = tu_llama_root();
	if (root == NULL)
		return -1;
	llama_bin = xasprintf("%s/build/bin/llama-server", root);
	free(root);
	bin = xasprintf("%s/mloffloadd", bd);
	models = tu_path("models");
	state = tu_path("state");
	nvml = tu_path("nvml.txt");
	mkdir(models, 0755);
	gen("tiny", "a.gguf", 1, NULL);
	gen("tiny", "b.gguf", 2, NULL);
	gen("tiny", "c.gguf", 3, NULL);
	gen("tiny-embed", "e.gguf", 4, NULL);
	/* 122 GB of F32 weights as a sparse file: more than any test machine's RAM */
	gen("qwen3moe-30b", "huge.gguf", 5, "F32");
	/* a model whose header reads but that llama.cpp cannot load: an unknown tokenizer */
	gen("tiny", "broken.gguf", 6, NULL);
	char *bp = xasprintf("%s/broken.gguf", models);
	size_t blen;
	uint8_t *bb = tu_read_file(bp, &blen);
	assert_non_null(bb);
	const char key[] = "tokenizer.ggml.model";
	uint8_t *k = memmem(bb, blen, key, sizeof key - 1);
	assert_non_null(k);
	uint8_t *val = k + sizeof key - 1 + 4 + 8; /* type, length, then the string */
	assert_memory_equal(val, "llama", 5);
	memcpy(val, "nosuc", 5);
	assert_int_equal(tu_write_file(bp, bb, blen), 0);
	free(bb);
	free(bp);
	set_gpu(1ull << 30);
	oll_script = xasprintf("%s/tests/ollama_double.py", sd);
	char *olog = tu_path("ollama.log");
	char *oargv[] = { "/usr/bin/python3", oll_script, "--port", "0", NULL };
	assert_int_equal(tu_spawn(&oll, oargv, olog), 0);
	oll_port = tu_log_port(&oll, "listening ", 60);
	free(olog);
	start_daemon(NULL);
	/* size the GPU so that one tiny model fits whole and two do not */
	json_t *b = du_get(port, "/vram/budget?model=a");
	one_model = (uint64_t)json_integer_value(du_at(b, "plan.devices.0.total_bytes"));
	json_decref(b);
	assert_true(one_model > 1000000);
	set_gpu(one_model * 3 / 2);
	return 0;
}

static int teardown(void **st)
{
	stop_daemon();
	tu_stop(&oll);
	free(bin);
	free(models);
	free(state);
	free(nvml);
	free(llama_bin);
	free(oll_script);
	return 0;
}

/* ---- clients ---- */

/* Runs tests/openai_client.mjs against the daemon; returns its JSON line (new). */
static json_t *sdk(const char *mode, const char *model, const char *extra)
{
	char *dir = tu_openai_dir(), *node = tu_node();
	if (dir == NULL || node == NULL)
		fail_msg("the openai npm package or node is missing (scripts/setup-openai.sh)");
	char *outp = tu_path("sdk.out");
	int rc = tu_sh("MLO_OPENAI_DIR='%s' '%s' '%s/tests/openai_client.mjs' "
	    "http://127.0.0.1:%d/v1 %s '%s' '%s' > '%s' 2>&1", dir, node,
	    getenv("MLO_SOURCE_DIR"), port, mode, model, extra ? extra : "{}", outp);
	size_t len;
	char *text = (char *)tu_read_file(outp, &len);
	json_error_t je;
	json_t *j = text ? json_loadb(text, len, 0, &je) : NULL;
	if (j == NULL || (rc != 0 && rc != 1))
		fail_msg("openai_client %s: exit %d: %s", mode, rc, text ? text : "");
	free(text);
	free(outp);
	free(dir);
	free(node);
	return j;
}

/* POST of body to path; returns the status and the body (heap) in *out. */
static int post_raw(const char *path, const char *body, size_t len, char **out)
{
	CURL *e = curl_easy_init();
	char *url = xasprintf("http://127.0.0.1:%d%s", port, path), *buf = NULL;
	size_t blen = 0;
	FILE *f = open_memstream(&buf, &blen);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)len);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, f);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, 120L);
	CURLcode rc = curl_easy_perform(e);
	long st = 0;
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &st);
	fclose(f);
	curl_easy_cleanup(e);
	free(url);
	if (rc != CURLE_OK)
		fail_msg("POST %s: %s", path, curl_easy_strerror(rc));
	*out = buf;
	return (int)st;
}

static json_t *post_json(const char *path, const char *body, int want)
{
	char *out;
	int st = post_raw(path, body, strlen(body), &out);
	if (st != want)
		fail_msg("POST %s %.200s: status %d, wanted %d: %s", path, body, st, want, out);
	json_t *j = json_loads(out, 0, NULL);
	free(out);
	return j;
}

/* Many requests at once (curl multi): statuses, and how many carried Retry-After. */
struct many {
	int status[256];
	int retry_after[256];
};

static size_t sink(char *p, size_t s, size_t n, void *a)
{
	return s * n;
}

static size_t hdr(char *p, size_t s, size_t n, void *a)
{
	if (s * n > 12 && strncasecmp(p, "Retry-After:", 12) == 0)
		*(int *)a = 1;
	return s * n;
}

static void many(size_t n, const char *const *bodies, struct many *r)
{
	CURLM *m = curl_multi_init();
	CURL *e[256];
	char *url = xasprintf("http://127.0.0.1:%d/v1/chat/completions", port);
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	memset(r, 0, sizeof *r);
	curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, 0L);
	for (size_t i = 0; i < n; i++) {
		e[i] = curl_easy_init();
		curl_easy_setopt(e[i], CURLOPT_URL, url);
		curl_easy_setopt(e[i], CURLOPT_HTTPHEADER, h);
		curl_easy_setopt(e[i], CURLOPT_POSTFIELDS, bodies[i]);
		curl_easy_setopt(e[i], CURLOPT_WRITEFUNCTION, sink);
		curl_easy_setopt(e[i], CURLOPT_HEADERFUNCTION, hdr);
		curl_easy_setopt(e[i], CURLOPT_HEADERDATA, &r->retry_after[i]);
		curl_easy_setopt(e[i], CURLOPT_TIMEOUT, 300L);
		curl_easy_setopt(e[i], CURLOPT_FRESH_CONNECT, 1L);
		curl_multi_add_handle(m, e[i]);
	}
	int running = 1;
	while (running) {
		curl_multi_perform(m, &running);
		if (running)
			curl_multi_poll(m, NULL, 0, 100, NULL);
	}
	for (size_t i = 0; i < n; i++) {
		long st = 0;
		curl_easy_getinfo(e[i], CURLINFO_RESPONSE_CODE, &st);
		r->status[i] = (int)st;
		curl_multi_remove_handle(m, e[i]);
		curl_easy_cleanup(e[i]);
	}
	curl_slist_free_all(h);
	curl_multi_cleanup(m);
	free(url);
}

/* Connects fd to the daemon and sends a streamed chat request with body. */
static void stream_send(int fd, const char *body)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
	char *req = xasprintf("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
	    "application/json\r\nContent-Length: %zu\r\n\r\n%s", strlen(body), body);
	assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	free(req);
}

/* A streamed request on a plain socket, so that the test decides when to read and
 * when to hang up. Returns the connected socket after sending the request. */
static int stream_open(const char *body)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	stream_send(fd, body);
	return fd;
}

/* Reads from fd into buf (appending) until it holds needle, or EOF, or 300 s. Returns
 * 1 when needle was seen. */
static int read_until(int fd, char *buf, size_t cap, size_t *len, const char *needle)
{
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	size_t from = 0; /* where the needle may start in what is new */
	for (;;) {
		buf[*len] = '\0';
		if (needle != NULL && strstr(buf + from, needle) != NULL)
			return 1;
		if (needle != NULL && *len > strlen(needle))
			from = *len - strlen(needle);
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec > 300)
			return 0;
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, 100) <= 0)
			continue;
		ssize_t n = read(fd, buf + *len, cap - 1 - *len);
		if (n <= 0)
			return 0;
		*len += (size_t)n;
	}
}

static const char long_stream[] = "{\"model\":\"a\",\"stream\":true,\"max_tokens\":3000,"
    "\"ignore_eos\":true,\"messages\":[{\"role\":\"user\",\"content\":\"count\"}]}";
/* The same with the 20 likeliest tokens of each step: about 2 KB a chunk, some MB in
 * all, more than the kernel's socket buffers hold; a client that stops reading it soon
 * pauses the backend, which then holds its slot until the client goes. */
static const char big_stream[] = "{\"model\":\"a\",\"stream\":true,\"max_tokens\":3000,"
    "\"ignore_eos\":true,\"logprobs\":true,\"top_logprobs\":20,\"messages\":[{\"role\":"
    "\"user\",\"content\":\"count\"}]}";

/* The port and pid of model id's llama-server, from /status (0 when not loaded). */
static void child_of(const char *id, int *cport, int *pid)
{
	json_t *st = du_get(port, "/status"), *v;
	size_t i;
	*cport = *pid = 0;
	json_array_foreach(json_object_get(st, "loaded"), i, v)
		if (strcmp(json_string_value(json_object_get(v, "model")), id) == 0) {
			*cport = (int)json_integer_value(json_object_get(v, "port"));
			*pid = (int)json_integer_value(json_object_get(v, "pid"));
		}
	json_decref(st);
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

static void unload(const char *id)
{
	char *b = xasprintf("{\"model\":\"%s\"}", id);
	int st;
	json_decref(du_req(port, "POST", "/unload", b, &st));
	free(b);
}

/* ---- tests ---- */

static void openai_sdk_through_the_daemon(void **st)
{
	json_t *j = sdk("chat", "a", NULL);
	assert_true(json_is_true(json_object_get(j, "ok")));
	assert_true(strlen(json_string_value(json_object_get(j, "text"))) > 0);
	assert_string_equal(json_string_value(json_object_get(j, "model")), "a");
	json_decref(j);
	/* streamed: several chunks, the text is theirs joined, a reason to stop */
	j = sdk("stream", "chat-default", NULL);
	assert_true(json_is_true(json_object_get(j, "ok")));
	assert_true(json_integer_value(json_object_get(j, "content_chunks")) > 1);
	assert_string_equal(json_string_value(json_object_get(j, "finish_reason")), "length");
	json_decref(j);
	j = sdk("completion", "a", NULL);
	assert_true(json_is_true(json_object_get(j, "ok")));
	assert_int_equal(json_integer_value(du_at(j, "usage.completion_tokens")), 8);
	json_decref(j);
	j = sdk("embedding", "e", "{\"input\":[\"hello\",\"world\"]}");
	assert_true(json_is_true(json_object_get(j, "ok")));
	assert_int_equal(json_integer_value(json_object_get(j, "count")), 2);
	assert_true(json_integer_value(json_object_get(j, "dims")) > 0);
	json_decref(j);
	/* every usable model, Ollama's too; not the one whose weights cannot load */
	j = sdk("models", "-", NULL);
	char *ids = json_dumps(json_object_get(j, "ids"), 0);
	assert_non_null(strstr(ids, "\"a\""));
	assert_non_null(strstr(ids, "\"e\""));
	assert_non_null(strstr(ids, "\"chat-default\""));
	assert_non_null(strstr(ids, "\"ollama:llama3.2:1b\""));
	free(ids);
	json_decref(j);
	/* each entry is an OpenAI model object with a real creation time */
	j = du_get(port, "/v1/models");
	json_t *v;
	size_t i;
	assert_string_equal(json_string_value(json_object_get(j, "object")), "list");
	json_array_foreach(json_object_get(j, "data"), i, v) {
		assert_string_equal(json_string_value(json_object_get(v, "object")), "model");
		assert_true(json_integer_value(json_object_get(v, "created")) > 1600000000);
	}
	json_decref(j);
	/* the SDK reads our errors: an unknown model is a 404 with its code */
	j = sdk("chat", "no-such-model", NULL);
	assert_false(json_is_true(json_object_get(j, "ok")));
	assert_int_equal(json_integer_value(json_object_get(j, "status")), 404);
	assert_string_equal(json_string_value(json_object_get(j, "code")), "model_not_found");
	json_decref(j);
	unload("a");
	unload("e");
}

static void ollama_models_go_to_ollama(void **st)
{
	json_t *j = sdk("chat", "ollama:llama3.2:1b", NULL);
	assert_true(json_is_true(json_object_get(j, "ok")));
	assert_non_null(strstr(json_string_value(json_object_get(j, "text")), "sky"));
	json_decref(j);
	/* a plain Ollama name works as well */
	j = sdk("stream", "qwen2.5:0.5b", NULL);
	assert_true(json_is_true(json_object_get(j, "ok")));
	assert_true(json_integer_value(json_object_get(j, "content_chunks")) > 1);
	json_decref(j);
}

static void bad_requests_get_clear_errors(void **st)
{
	json_t *j = post_json("/v1/chat/completions", "{\"model\":", 400);
	assert_string_equal(json_string_value(du_at(j, "error.code")), "invalid_json");
	assert_string_equal(json_string_value(du_at(j, "error.type")), "invalid_request_error");
	json_decref(j);
	j = post_json("/v1/chat/completions", "[1,2]", 400);
	json_decref(j);
	j = post_json("/v1/completions", "{\"prompt\":\"x\"}", 400);
	assert_string_equal(json_string_value(du_at(j, "error.code")), "missing_model");
	json_decref(j);
	j = post_json("/v1/chat/completions", "{\"model\":\"a\",\"stream\":\"yes\"}", 400);
	json_decref(j);
	j = post_json("/v1/embeddings", "{\"model\":\"../../etc/passwd\",\"input\":\"x\"}", 404);
	assert_string_equal(json_string_value(du_at(j, "error.code")), "model_not_found");
	json_decref(j);
	/* a body over max_body (1 MiB) */
	size_t big = 2u << 20;
	char *b = xmalloc(big + 1), *out;
	memset(b, ' ', big);
	b[big] = '\0';
	memcpy(b, "{\"model\":\"a\",\"prompt\":\"", 23);
	assert_int_equal(post_raw("/v1/completions", b, big, &out), 413);
	free(out);
	free(b);
	/* a model that cannot fit in RAM even with nothing on the GPU: 507 with the reason */
	j = post_json("/v1/chat/completions", "{\"model\":\"huge\",\"messages\":[]}", 507);
	assert_string_equal(json_string_value(du_at(j, "error.code")), "does_not_fit");
	assert_non_null(strstr(json_string_value(du_at(j, "error.message")), "RAM"));
	json_decref(j);
	/* the daemon is up and the registry intact */
	j = du_get(port, "/models");
	json_t *v;
	size_t i, local = 0;
	json_array_foreach(json_object_get(j, "models"), i, v)
		local += strcmp(json_string_value(json_object_get(v, "backend")), "llama.cpp") == 0;
	assert_int_equal(local, 6);
	json_decref(j);
}

static void failed_load_is_a_502(void **st)
{
	/* llama-server exits while loading: the waiting request hears why */
	json_t *j = post_json("/v1/chat/completions", "{\"model\":\"broken\",\"messages\":[]}",
	    502);
	assert_string_equal(json_string_value(du_at(j, "error.code")), "backend_failed");
	assert_string_equal(json_string_value(du_at(j, "error.type")), "server_error");
	assert_non_null(strstr(json_string_value(du_at(j, "error.message")), "llama-server exited"));
	json_decref(j);
	/* the daemon is fine and the other models answer */
	j = post_json("/v1/completions", "{\"model\":\"a\",\"prompt\":\"x\",\"max_tokens\":2}", 200);
	json_decref(j);
	unload("a");
}

static void alternating_models_batch_instead_of_swapping(void **st)
{
	/* a and b cannot be resident together: 24 requests alternating between them */
	const char *body[2] = {
		"{\"model\":\"a\",\"max_tokens\":4,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
		"{\"model\":\"b\",\"max_tokens\":4,\"messages\":[{\"role\":\"user\",\"content\":\"y\"}]}",
	};
	const char *bodies[24];
	for (int i = 0; i < 24; i++)
		bodies[i] = body[i % 2];
	long long loads0 = metric("mloffload_model_loads_total");
	struct many r;
	many(24, bodies, &r);
	for (int i = 0; i < 24; i++)
		assert_int_equal(r.status[i], 200);
	long long loads = metric("mloffload_model_loads_total") - loads0;
	/* swapping on every request would be 24 loads; batches take a handful */
	assert_true(loads >= 2);
	assert_true(loads <= 6);
	unload("a");
	unload("b");
}

static void client_gone_mid_stream_frees_the_slot(void **st)
{
	int fd = stream_open(big_stream), cport, pid;
	char buf[65536];
	size_t len = 0;
	assert_true(read_until(fd, buf, sizeof buf, &len, "\"content\":\""));
	child_of("a", &cport, &pid);
	assert_true(cport > 0);
	close(fd);
	/* the backend stops generating for it: every slot goes idle */
	json_t *slots = NULL;
	for (int i = 0; i < 600; i++) {
		char *r = tu_http(cport, "GET", "/slots", NULL);
		char *body = r ? strstr(r, "\r\n\r\n") : NULL;
		json_decref(slots);
		slots = body ? json_loads(body + 4, 0, NULL) : NULL;
		free(r);
		if (slots != NULL && !json_is_true(du_at(slots, "0.is_processing")) &&
		    !json_is_true(du_at(slots, "1.is_processing")) &&
		    !json_is_true(du_at(slots, "2.is_processing")) &&
		    !json_is_true(du_at(slots, "3.is_processing")))
			break;
		usleep(50 * 1000);
	}
	assert_non_null(slots);
	json_t *v;
	size_t i;
	json_array_foreach(slots, i, v)
		assert_false(json_is_true(json_object_get(v, "is_processing")));
	json_decref(slots);
	/* and it stopped because the request was cancelled, not because it was done */
	char *logp = xasprintf("%s/llama-a.log", state);
	int cancelled = 0;
	for (int k = 0; k < 200 && !cancelled; k++) { /* the daemon relays the child's log */
		size_t n;
		char *log = (char *)tu_read_file(logp, &n);
		cancelled = log != NULL && strstr(log, "cancel task") != NULL;
		free(log);
		if (!cancelled)
			usleep(50 * 1000);
	}
	assert_true(cancelled);
	free(logp);
	assert_true(metric("mloffload_v1_cancelled_total") >= 1);
	assert_int_equal(metric("mloffload_v1_in_flight"), 0);
}

static void backend_killed_mid_stream(void **st)
{
	int fd = stream_open(long_stream), cport, pid;
	char buf[1 << 20];
	size_t len = 0;
	assert_true(read_until(fd, buf, sizeof buf, &len, "\"content\":\""));
	child_of("a", &cport, &pid);
	assert_true(pid > 0);
	kill(pid, SIGKILL);
	/* the stream ends with an error event the client can read, then closes */
	assert_false(read_until(fd, buf, sizeof buf, &len, NULL));
	close(fd);
	char *ev = strstr(buf, "data: {\"error\"");
	assert_non_null(ev);
	assert_non_null(strstr(ev, "backend_failed"));
	/* the next request loads the model again and is answered */
	json_t *j = post_json("/v1/chat/completions", "{\"model\":\"a\",\"max_tokens\":2,"
	    "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 200);
	assert_non_null(du_at(j, "choices.0.message"));
	json_decref(j);
	int pid2;
	child_of("a", &cport, &pid2);
	assert_true(pid2 > 0 && pid2 != pid);
	unload("a");
}

static void slow_client_pauses_the_backend(void **st)
{
	/* a client that reads nothing for a while: once 256 KiB wait for it in the
	 * daemon, the backend is paused rather than buffered; then it reads it all. Its
	 * receive buffer is kept at 64 KiB so that the kernel holds little of the 3 MB
	 * answer, and the pause comes early however slowly the machine generates */
	long long paused0 = metric("mloffload_v1_paused_total");
	int fd = socket(AF_INET, SOCK_STREAM, 0), rcv = 64 * 1024;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
	const char *body = "{\"model\":\"a\",\"stream\":true,\"max_tokens\":1500,\"ignore_eos\":"
	    "true,\"logprobs\":true,\"top_logprobs\":20,\"messages\":[{\"role\":\"user\","
	    "\"content\":\"count\"}]}";
	stream_send(fd, body);
	long long paused = paused0;
	for (int i = 0; i < 6000 && paused == paused0; i++) {
		usleep(50 * 1000);
		paused = metric("mloffload_v1_paused_total");
	}
	assert_true(paused > paused0);
	size_t cap = 64u << 20, len = 0;
	char *buf = xmalloc(cap);
	if (!read_until(fd, buf, cap, &len, "data: [DONE]"))
		fail_msg("no [DONE] in %zu bytes: ...%s", len, len > 300 ? buf + len - 300 : buf);
	assert_null(strstr(buf, "data: {\"error\""));
	/* the whole answer arrived: the last chunk says all 1500 tokens were made (chunks
	 * may be fewer: llama-server holds back a token that ends inside a UTF-8 character
	 * and sends it with the next) */
	assert_non_null(strstr(buf, "\"predicted_n\":1500"));
	assert_non_null(strstr(buf, "\"finish_reason\":\"length\""));
	free(buf);
	close(fd);
	unload("a");
}

static void queue_overflow_is_refused(void **st)
{
	/* one slot per model, 50 places: while a stream that its client stopped reading
	 * holds the slot (paused, it cannot end by itself), 200 more requests come; 50
	 * wait, 150 are refused with Retry-After, and every one that waited is answered
	 * once the slot is free */
	stop_daemon();
	const char *extra[] = { "--parallel", "1", "--queue-max", "50", NULL };
	start_daemon(extra);
	int fd = stream_open(big_stream);
	char buf[65536];
	size_t len = 0;
	assert_true(read_until(fd, buf, sizeof buf, &len, "\"content\":\""));
	const char *b = "{\"model\":\"a\",\"max_tokens\":2,\"messages\":[{\"role\":\"user\","
	    "\"content\":\"x\"}]}";
	/* a client that hangs up while its request waits leaves the queue */
	int wfd = stream_open(b);
	long long cancelled0 = metric("mloffload_v1_cancelled_total");
	for (int i = 0; i < 600 && metric("mloffload_v1_waiting") != 1; i++)
		usleep(50 * 1000);
	assert_int_equal(metric("mloffload_v1_waiting"), 1);
	close(wfd);
	for (int i = 0; i < 600 && metric("mloffload_v1_waiting") != 0; i++)
		usleep(50 * 1000);
	assert_int_equal(metric("mloffload_v1_waiting"), 0);
	assert_int_equal(metric("mloffload_v1_cancelled_total"), cancelled0 + 1);
	const char *bodies[200];
	for (int i = 0; i < 200; i++)
		bodies[i] = b;
	/* the stream's client hangs up once the others are all queued or refused: a
	 * child process, as the requests below block this one */
	pid_t closer = fork();
	if (closer == 0) {
		long long refused = 0, waiting = -1;
		for (int i = 0; i < 1200 && refused < 150; i++) {
			usleep(50 * 1000);
			char *r = tu_http(port, "GET", "/metrics", NULL);
			const char *k = "\nmloffload_v1_refused_total ";
			char *w = r ? strstr(r, k) : NULL;
			refused = w ? strtoll(w + strlen(k), NULL, 10) : 0;
			free(r);
		}
		/* the waiting requests show in /queue, by model */
		int qs;
		json_t *q = du_req(port, "GET", "/queue", NULL, &qs);
		waiting = json_integer_value(du_at(q, "requests.0.waiting"));
		json_decref(q);
		/* a full queue still takes a request that its model can answer now */
		char *o = tu_http(port, "POST", "/v1/chat/completions",
		    "{\"model\":\"ollama:llama3.2:1b\",\"messages\":[]}");
		int other_ok = o != NULL && strstr(o, " 200 ") != NULL;
		free(o);
		close(fd);
		if (refused != 150 || waiting != 50 || !other_ok)
			fprintf(stderr, "closer: refused %lld, waiting %lld, other model %d\n", refused,
			    waiting, other_ok);
		_exit(refused == 150 && waiting == 50 && other_ok ? 0 : 1);
	}
	close(fd);
	struct many r;
	many(200, bodies, &r);
	int cst = 0;
	waitpid(closer, &cst, 0);
	assert_true(WIFEXITED(cst) && WEXITSTATUS(cst) == 0);
	int ok = 0, refused = 0, other = 0, with_retry = 0;
	for (int i = 0; i < 200; i++) {
		if (r.status[i] == 200)
			ok++;
		else if (r.status[i] == 503)
			refused++, with_retry += r.retry_after[i];
		else
			other++;
	}
	assert_int_equal(other, 0);
	assert_int_equal(ok, 50);
	assert_int_equal(refused, 150);
	assert_int_equal(with_retry, 150);
	assert_int_equal(metric("mloffload_v1_waiting"), 0);
	stop_daemon();
	start_daemon(NULL);
}

int main(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	const char *only = getenv("TEST_PROXY_ONLY"); /* a developer's shortcut: one test */
	if (only != NULL)
		cmocka_set_test_filter(only);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(openai_sdk_through_the_daemon),
		cmocka_unit_test(ollama_models_go_to_ollama),
		cmocka_unit_test(bad_requests_get_clear_errors),
		cmocka_unit_test(failed_load_is_a_502),
		cmocka_unit_test(alternating_models_batch_instead_of_swapping),
		cmocka_unit_test(client_gone_mid_stream_frees_the_slot),
		cmocka_unit_test(backend_killed_mid_stream),
		cmocka_unit_test(slow_client_pauses_the_backend),
		cmocka_unit_test(queue_overflow_is_refused),
	};
	int rc = cmocka_run_group_tests(tests, setup, teardown);
	curl_global_cleanup();
	return rc != 0 ? rc : du_stops_failed(); /* every daemon stopped cleanly */
}
