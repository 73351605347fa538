/*
 * test_lifecycle: models loaded, switched and unloaded by the real mloffloadd running
 * real llama-server children on tiny generated models. The GPU is the fake NVML
 * library (reached through the daemon's dlopen path), sized so that it holds one model
 * but not two; webhooks go to a small sink the test starts. Each test checks what a
 * user would: the child answers, is gone after unload, evictions and offload follow
 * the budget, a killed child is reported, idle models leave, and a daemon that dies
 * leaves no llama-server behind once it is started again.
 */
#include "daemonutil.h"

#include "util.h"

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

static char *bin, *models, *state, *nvml, *hooks, *llama_bin, *conf;
static struct tu_proc dmn, sink;
static int port, sink_port;

static void gen(const char *name, uint64_t seed)
{
	char *p = xasprintf("%s/%s", models, name);
	du_gen("tiny", p, NULL, 1, seed);
	free(p);
}

static uint64_t gpu_total;

static void set_gpu_used(uint64_t total, uint64_t used)
{
	du_fake_gpu(nvml, total, used);
	gpu_total = total;
}

static void set_gpu(uint64_t total)
{
	set_gpu_used(total, 0);
}

static void start(void)
{
	char *log = tu_path("daemon.log"), *hook = xasprintf("http://127.0.0.1:%d/hook", sink_port);
	char *argv[] = { bin, "--listen", "127.0.0.1:0", "--models-dir", models, "--state-dir",
	    state, "--nvml-lib", (char *)FAKE_NVML_PATH, "--reserve", "0", "--llama-server",
	    llama_bin, "--ollama-url", "", "--llama-url", "http://127.0.0.1:9", "--rescan",
	    "0", "--idle-ttl", "0", "--webhook", hook, "--sample-ms", "100", "--exclusive",
	    "a c", "--config", conf, NULL };
	setenv("FAKE_NVML_STATE", nvml, 1);
	assert_int_equal(tu_spawn(&dmn, argv, log), 0);
	port = du_port(&dmn);
	free(log);
	free(hook);
}

static int has_abc(json_t *j, void *arg)
{
	return json_array_size(json_object_get(j, "models")) >= 3;
}

/* The first scan runs in the background: wait until it has stored the models. */
static void wait_models(void)
{
	json_decref(du_poll(port, "/models", has_abc, NULL));
}

static json_t *post(const char *path, const char *body, int want)
{
	int st;
	json_t *j = du_req(port, "POST", path, body, &st);
	if (st != want) {
		char *s = j ? json_dumps(j, 0) : NULL;
		fail_msg("POST %s %s: status %d, wanted %d: %s", path, body, st, want, s ? s : "");
	}
	return j;
}

/* 1 while pid runs; a zombie (exited, not yet reaped by whoever adopted it) is gone. */
static int pid_alive(int pid)
{
	if (pid <= 0 || kill(pid, 0) != 0)
		return 0;
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return 0;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *close_paren = strrchr(buf, ')');
	return close_paren == NULL || close_paren[1] == '\0' || close_paren[2] != 'Z';
}

/* Waits (10 s at most) for pid to be gone; returns 1 when it is. */
static int gone(int pid)
{
	for (int i = 0; i < 200 && pid_alive(pid); i++)
		usleep(50 * 1000);
	return !pid_alive(pid);
}

static int loaded_count(json_t *j, void *arg)
{
	return (int)json_array_size(json_object_get(j, "loaded")) == *(int *)arg;
}

static void unload_all(void)
{
	json_t *st = du_get(port, "/status"), *v;
	size_t i;
	json_array_foreach(json_object_get(st, "loaded"), i, v) {
		char *b = xasprintf("{\"model\":\"%s\"}", json_string_value(json_object_get(v,
		    "model")));
		json_decref(post("/unload", b, 200));
		free(b);
	}
	json_decref(st);
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
	hooks = tu_path("hooks.txt");
	conf = tu_path("mloffloadd.conf");
	const char hold[] = "regrow_hold_s = 1\n"; /* the pressure ladder grows back soon */
	assert_int_equal(tu_write_file(conf, hold, strlen(hold)), 0);
	mkdir(models, 0755);
	gen("a.gguf", 1);
	gen("b.gguf", 2);
	gen("c.gguf", 3);
	set_gpu(1ull << 30);
	char *script = xasprintf("%s/tests/webhook_sink.py", sd), *slog = tu_path("sink.log");
	char *sargv[] = { "/usr/bin/python3", script, "--out", hooks, NULL };
	assert_int_equal(tu_spawn(&sink, sargv, slog), 0);
	sink_port = tu_log_port(&sink, "listening ", 60);
	free(script);
	free(slog);
	start();
	wait_models();
	/* size the GPU so that one model fits whole and two do not */
	json_t *b = du_get(port, "/vram/budget?model=a&ctx=512");
	uint64_t one = (uint64_t)json_integer_value(du_at(b, "plan.devices.0.total_bytes"));
	json_decref(b);
	assert_true(one > 1000000);
	set_gpu(one * 3 / 2);
	return 0;
}

static int teardown(void **st)
{
	du_stop(&dmn);
	tu_stop(&sink);
	free(bin);
	free(models);
	free(state);
	free(nvml);
	free(hooks);
	free(conf);
	free(llama_bin);
	return 0;
}

static void load_answer_unload(void **st)
{
	json_t *j = post("/load", "{\"model\":\"a\",\"ctx\":512}", 200);
	assert_string_equal(json_string_value(json_object_get(j, "state")), "ready");
	int p = (int)json_integer_value(json_object_get(j, "port"));
	int pid = (int)json_integer_value(json_object_get(j, "pid"));
	assert_true(json_integer_value(du_at(j, "plan.gpu_layers")) == 3);
	assert_non_null(du_at(j, "measured.CPU_Mapped.model_bytes"));
	json_decref(j);
	char *r = tu_http(p, "GET", "/health", NULL);
	assert_non_null(r);
	assert_non_null(strstr(r, " 200 "));
	free(r);
	j = du_get(port, "/status");
	assert_string_equal(json_string_value(du_at(j, "loaded.0.model")), "a");
	json_decref(j);
	j = post("/unload", "{\"model\":\"a\"}", 200);
	assert_string_equal(json_string_value(json_object_get(j, "state")), "unloaded");
	json_decref(j);
	assert_true(gone(pid));
	j = du_get(port, "/models/a");
	assert_non_null(du_at(j, "measured.measured"));
	json_decref(j);
}

static void second_model_evicts_first(void **st)
{
	json_t *j = post("/load", "{\"model\":\"a\",\"ctx\":512}", 200);
	int pid_a = (int)json_integer_value(json_object_get(j, "pid"));
	json_decref(j);
	/* the budget says what loading b would evict: a */
	j = du_get(port, "/vram/budget?model=b&ctx=512");
	assert_string_equal(json_string_value(du_at(j, "would_evict.0.model")), "a");
	json_decref(j);
	char *r = tu_http(port, "GET", "/metrics", NULL);
	assert_non_null(strstr(r, "mloffload_models_loaded{state=\"ready\"} 1"));
	free(r);
	j = post("/load", "{\"model\":\"b\",\"ctx\":512}", 200);
	assert_string_equal(json_string_value(json_object_get(j, "state")), "ready");
	assert_int_equal(json_integer_value(du_at(j, "plan.gpu_layers")), 3);
	json_decref(j);
	assert_true(gone(pid_a));
	int one = 1;
	j = du_poll(port, "/status", loaded_count, &one);
	assert_string_equal(json_string_value(du_at(j, "loaded.0.model")), "b");
	json_decref(j);
	unload_all();
}

static void pinned_model_means_offload(void **st)
{
	json_decref(post("/load", "{\"model\":\"a\",\"ctx\":512,\"pin\":true}", 200));
	/* pinned: not among what a load could evict */
	json_t *bj = du_get(port, "/vram/budget?model=b&ctx=512");
	assert_int_equal(json_array_size(json_object_get(bj, "would_evict")), 0);
	json_decref(bj);
	json_t *j = post("/load", "{\"model\":\"b\",\"ctx\":512,\"offload\":\"gpu\"}", 507);
	assert_string_equal(json_string_value(du_at(j, "error.code")), "does_not_fit");
	json_decref(j);
	j = post("/load", "{\"model\":\"b\",\"ctx\":512}", 200);
	int ngl = (int)json_integer_value(du_at(j, "plan.gpu_layers"));
	assert_true(ngl < 3);
	json_decref(j);
	int two = 2;
	json_decref(du_poll(port, "/status", loaded_count, &two));
	unload_all();
}

static void switch_models(void **st)
{
	json_t *j = post("/load", "{\"model\":\"a\",\"ctx\":512}", 200);
	int pid_a = (int)json_integer_value(json_object_get(j, "pid"));
	json_decref(j);
	/* a switch to the same model keeps it */
	j = post("/switch", "{\"from\":\"a\",\"to\":\"a\",\"ctx\":512}", 200);
	assert_int_equal(json_integer_value(json_object_get(j, "pid")), pid_a);
	json_decref(j);
	j = post("/switch", "{\"from\":\"a\",\"to\":\"b\",\"ctx\":512}", 200);
	assert_string_equal(json_string_value(json_object_get(j, "model")), "b");
	assert_string_equal(json_string_value(json_object_get(j, "state")), "ready");
	json_decref(j);
	assert_true(gone(pid_a));
	unload_all();
}

/* Reads from s into buf (NUL-terminated) until the peer closes, needle appears (when
 * not NULL) or tries polls of 100 ms pass. Returns 1 when needle was found. */
static int read_sock(int s, char *buf, size_t cap, const char *needle, int tries)
{
	size_t len = 0;
	buf[0] = '\0';
	for (int i = 0; i < tries; i++) {
		struct pollfd pf = { s, POLLIN, 0 };
		if (poll(&pf, 1, 100) <= 0)
			continue;
		ssize_t n = read(s, buf + len, cap - len - 1);
		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
		if (needle != NULL && strstr(buf, needle) != NULL)
			return 1;
	}
	return 0;
}

static int b_waits_for_memory(json_t *j, void *arg)
{
	json_t *w = json_array_get(json_object_get(j, "waiting"), 0);
	return w != NULL && strcmp(json_string_value(json_object_get(w, "model")), "b") == 0 &&
	    !pid_alive(*(int *)arg);
}

static int gpu_used_is(json_t *j, void *arg)
{
	return (uint64_t)json_integer_value(du_at(j, "devices.0.used_bytes")) ==
	    *(uint64_t *)arg;
}

static void switch_waits_until_memory_is_free(void **st)
{
	json_t *j = post("/load", "{\"model\":\"a\",\"ctx\":512}", 200);
	int pid_a = (int)json_integer_value(json_object_get(j, "pid"));
	uint64_t held = (uint64_t)json_integer_value(du_at(j, "plan.device.total_bytes"));
	json_decref(j);
	/* the driver shows a's memory in use, and keeps showing it after a exits */
	set_gpu_used(gpu_total, held);
	json_decref(du_poll(port, "/vram", gpu_used_is, &held)); /* a sample shows it */
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	assert_int_equal(connect(s, (struct sockaddr *)&a, sizeof a), 0);
	const char body[] = "{\"from\":\"a\",\"to\":\"b\",\"ctx\":512}";
	char *rq = xasprintf("POST /switch HTTP/1.0\r\nContent-Length: %zu\r\n\r\n%s",
	    strlen(body), body);
	assert_true(write(s, rq, strlen(rq)) == (ssize_t)strlen(rq));
	free(rq);
	/* a is gone, b waits in the queue for the memory to show free */
	json_decref(du_poll(port, "/queue", b_waits_for_memory, &pid_a));
	set_gpu_used(gpu_total, 0);
	char buf[8192];
	read_sock(s, buf, sizeof buf, NULL, 600);
	close(s);
	assert_non_null(strstr(buf, " 200 "));
	assert_non_null(strstr(buf, "\"ready\""));
	unload_all();
}

/* Reads the SSE stream (replayed from the start, then live) until it holds needle,
 * 30 s at most; 1 if found. */
static int sse_has(const char *needle)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) {
		close(s);
		return 0;
	}
	const char req[] = "GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nLast-Event-ID: 0\r\n\r\n";
	if (write(s, req, sizeof req - 1) < 0) {
		close(s);
		return 0;
	}
	char buf[65536];
	int found = read_sock(s, buf, sizeof buf, needle, 300);
	close(s);
	return found;
}

static int model_failed(json_t *j, void *arg)
{
	const char *s = json_string_value(json_object_get(j, "state"));
	return s != NULL && strcmp(s, "failed") == 0;
}

static void killed_child_is_reported(void **st)
{
	json_t *j = post("/load", "{\"model\":\"a\",\"ctx\":512}", 200);
	int pid = (int)json_integer_value(json_object_get(j, "pid"));
	json_decref(j);
	kill(pid, SIGKILL);
	j = du_poll(port, "/models/a", model_failed, NULL);
	assert_non_null(strstr(json_string_value(du_at(j, "runtime.error")), "signal 9"));
	json_decref(j);
	assert_true(sse_has("event: model.failed"));
	int seen = 0;
	for (int i = 0; i < 200 && !seen; i++) {
		size_t len;
		char *h = (char *)tu_read_file(hooks, &len);
		if (h != NULL) {
			h = xrealloc(h, len + 1);
			h[len] = '\0';
			seen = strstr(h, "\"model.failed\"") != NULL && strstr(h, "\"a\"") != NULL;
			free(h);
		}
		usleep(50 * 1000);
	}
	assert_true(seen);
	/* the next load starts it again */
	json_decref(post("/load", "{\"model\":\"a\",\"ctx\":512}", 200));
	unload_all();
}

static void idle_model_leaves(void **st)
{
	json_decref(post("/load", "{\"model\":\"a\",\"ctx\":512,\"ttl\":1}", 200));
	int zero = 0;
	json_decref(du_poll(port, "/status", loaded_count, &zero));
	assert_true(sse_has("event: model.unloaded"));
}

static void no_orphan_after_restart(void **st)
{
	json_t *j = post("/load", "{\"model\":\"a\",\"ctx\":512}", 200);
	int pid = (int)json_integer_value(json_object_get(j, "pid"));
	json_decref(j);
	kill(dmn.pid, SIGKILL); /* the daemon dies without cleaning up */
	waitpid(dmn.pid, NULL, 0);
	dmn.pid = 0;
	tu_stop(&dmn);
	/* its child, in its own process group, goes with it (the kernel's parent-death
	 * signal); a daemon started again finds nothing running and nothing loaded */
	assert_true(gone(pid));
	start();
	j = du_get(port, "/status");
	assert_int_equal(json_array_size(json_object_get(j, "loaded")), 0);
	json_decref(j);
}

static void exclusive_group(void **st)
{
	/* a and c are one exclusive group: never resident together, even with room */
	set_gpu(gpu_total * 4);
	json_t *j = post("/load", "{\"model\":\"a\",\"ctx\":512,\"pin\":true}", 200);
	int pid_a = (int)json_integer_value(json_object_get(j, "pid"));
	json_decref(j);
	json_decref(post("/load", "{\"model\":\"b\",\"ctx\":512}", 200));
	json_decref(post("/load", "{\"model\":\"c\",\"ctx\":512}", 200));
	assert_true(gone(pid_a));
	int two = 2;
	j = du_poll(port, "/status", loaded_count, &two);
	json_decref(j);
	unload_all();
	set_gpu(gpu_total / 4);
}

static int nothing_loaded(json_t *j, void *arg)
{
	return json_array_size(json_object_get(j, "loaded")) == 0;
}

static void outside_pressure_unloads_idle(void **st)
{
	json_decref(post("/load", "{\"model\":\"a\",\"ctx\":512}", 200));
	/* a game takes the whole GPU */
	set_gpu_used(gpu_total, gpu_total);
	json_decref(du_poll(port, "/status", nothing_loaded, NULL));
	assert_true(sse_has("event: vram.pressure"));
	set_gpu_used(gpu_total, 0);
	assert_true(sse_has("event: vram.recovered"));
}

/* The first key of the measured buffers that names the RPC device, or NULL. */
/* a's pressure view: "full", "shrinking", "shrunk", "growing" (borrowed from j). */
static const char *a_plan(json_t *j)
{
	const char *p = json_string_value(du_at(j, "runtime.pressure.plan"));
	return p != NULL ? p : "";
}

/* Polls /models/a (every 10 ms, 60 s at most) until its pressure view is want, or
 * (want NULL) until it is no longer "full". Returns /models/a then. */
static json_t *a_until(const char *want)
{
	for (int i = 0; i < 6000; i++) {
		json_t *j = du_get(port, "/models/a");
		const char *p = a_plan(j);
		const char *st = json_string_value(du_at(j, "runtime.state"));
		if ((want == NULL && p[0] != '\0' && strcmp(p, "full") != 0) || (want != NULL &&
		    strcmp(p, want) == 0 && st != NULL && strcmp(st, "ready") == 0))
			return j;
		json_decref(j);
		usleep(10 * 1000);
	}
	fail_msg("a never reached %s", want ? want : "a plan other than full");
	return NULL;
}

static void outside_pressure_shrinks_and_grows_back(void **st)
{
	json_t *j = post("/load", "{\"model\":\"a\",\"ctx\":512}", 200);
	int full = (int)json_integer_value(du_at(j, "plan.gpu_layers"));
	uint64_t held = (uint64_t)json_integer_value(du_at(j, "plan.device.total_bytes"));
	json_decref(j);
	assert_true(full > 1);
	/* a game takes the rest of the GPU */
	uint64_t game = gpu_total - held;
	set_gpu_used(gpu_total, game + held);
	j = a_until(NULL);
	printf("# a's plan under pressure: %s\n", a_plan(j));
	json_decref(j);
	/* a chat request while it shrinks: it waits for the new child, which answers it */
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	assert_int_equal(connect(s, (struct sockaddr *)&sa, sizeof sa), 0);
	const char body[] = "{\"model\":\"a\",\"max_tokens\":4,\"messages\":[{\"role\":"
	    "\"user\",\"content\":\"hello\"}]}";
	char *rq = xasprintf("POST /v1/chat/completions HTTP/1.0\r\nContent-Type: "
	    "application/json\r\nContent-Length: %zu\r\n\r\n%s", strlen(body), body);
	assert_true(write(s, rq, strlen(rq)) == (ssize_t)strlen(rq));
	free(rq);
	/* it stays resident with fewer layers on the GPU; the driver shows it smaller */
	j = a_until("shrunk");
	int pid = (int)json_integer_value(du_at(j, "runtime.pid"));
	int ngl = (int)json_integer_value(du_at(j, "runtime.plan.gpu_layers"));
	uint64_t small = (uint64_t)json_integer_value(du_at(j, "runtime.plan.device.total_bytes"));
	assert_non_null(strstr(json_string_value(du_at(j, "runtime.pressure.reason")),
	    "pressure"));
	json_decref(j);
	set_gpu_used(gpu_total, game + small);
	assert_true(ngl < full);
	assert_true(small < held);
	char buf[16384];
	read_sock(s, buf, sizeof buf, NULL, 600);
	close(s);
	assert_non_null(strstr(buf, " 200 "));
	assert_non_null(strstr(buf, "\"choices\""));
	assert_true(sse_has("event: model.shrunk"));
	/* the game ends: after regrow_hold_s, a is back at its full plan */
	set_gpu_used(gpu_total, small);
	j = a_until("full");
	assert_int_equal(json_integer_value(du_at(j, "runtime.plan.gpu_layers")), full);
	assert_true((int)json_integer_value(du_at(j, "runtime.pid")) != pid);
	json_decref(j);
	assert_true(sse_has("event: model.grown"));
	char *m = tu_http(port, "GET", "/metrics", NULL);
	assert_non_null(m);
	const char *grows = strstr(m, "\nmloffload_pressure_grows_total ");
	assert_non_null(grows);
	assert_true(strtol(grows + strlen("\nmloffload_pressure_grows_total "), NULL, 10) >= 1);
	free(m);
	set_gpu_used(gpu_total, 0);
	unload_all();
}

static json_t *rpc_measured(json_t *j)
{
	const char *k;
	json_t *v;
	json_object_foreach(json_object_get(j, "measured"), k, v)
		if (strncmp(k, "RPC0[", 5) == 0)
			return v;
	return NULL;
}

static void rpc_server_as_the_gpu(void **st)
{
	/* a ggml-rpc-server declared as the device: layers really go there */
	char *root = tu_llama_root(), *exe = xasprintf("%s/build/bin/ggml-rpc-server", root);
	int rp = tu_free_port();
	char rps[16];
	snprintf(rps, sizeof rps, "%d", rp);
	char *rlog = tu_path("rpc.log");
	char *rargv[] = { exe, "-H", "127.0.0.1", "-p", rps, NULL };
	struct tu_proc rpc, d2;
	assert_int_equal(tu_spawn(&rpc, rargv, rlog), 0);
	for (int i = 0; i < 300 && !tu_port_open(rp); i++)
		usleep(50 * 1000);
	json_t *b = du_get(port, "/vram/budget?model=a&ctx=512");
	uint64_t one = (uint64_t)json_integer_value(du_at(b, "plan.devices.0.total_bytes"));
	json_decref(b);
	char *dev = xasprintf("127.0.0.1:%d %llu", rp, (unsigned long long)(one * 3 / 2));
	char *st2 = tu_path("state-rpc"), *log = tu_path("daemon-rpc.log");
	char *argv[] = { bin, "--listen", "127.0.0.1:0", "--models-dir", models, "--state-dir",
	    st2, "--nvml-lib", "/nonexistent.so", "--llama-server", llama_bin, "--ollama-url", "",
	    "--llama-url", "http://127.0.0.1:9", "--rescan", "0", "--rpc-device", dev, NULL };
	assert_int_equal(tu_spawn(&d2, argv, log), 0);
	int saved = port;
	port = du_port(&d2);
	wait_models();
	json_t *j = post("/load", "{\"model\":\"a\",\"ctx\":512}", 200);
	assert_int_equal(json_integer_value(du_at(j, "plan.gpu_layers")), 3);
	json_t *args = du_at(j, "plan.args");
	int has_rpc = 0;
	for (size_t i = 0; i < json_array_size(args); i++)
		has_rpc |= strcmp(json_string_value(json_array_get(args, i)), "--rpc") == 0;
	assert_true(has_rpc);
	json_t *m = rpc_measured(j);
	assert_non_null(m);
	double planned = (double)json_integer_value(du_at(j, "plan.device.model_bytes"));
	double got = (double)json_integer_value(json_object_get(m, "model_bytes"));
	assert_true(got > 0 && (planned - got) / got < 0.01 && (got - planned) / got < 0.01);
	int pid_a = (int)json_integer_value(json_object_get(j, "pid"));
	json_decref(j);
	/* the RPC budget holds one model: the second evicts the first */
	json_decref(post("/load", "{\"model\":\"b\",\"ctx\":512}", 200));
	assert_true(gone(pid_a));
	unload_all();
	port = saved;
	kill(d2.pid, SIGTERM);
	for (int i = 0; i < 600 && waitpid(d2.pid, NULL, WNOHANG) != d2.pid; i++)
		usleep(50 * 1000);
	d2.pid = 0;
	tu_stop(&d2);
	tu_stop(&rpc);
	free(root);
	free(exe);
	free(rlog);
	free(dev);
	free(st2);
	free(log);
}

static void bad_requests(void **st)
{
	json_decref(post("/load", "{}", 400));
	json_decref(post("/load", "{\"model\":\"nope\"}", 404));
	json_decref(post("/load", "[1]", 400));
	json_decref(post("/load", "{\"model\":", 400));
	json_decref(post("/load", "{\"model\":\"a\",\"offload\":\"moon\"}", 400));
	json_decref(post("/load", "{\"model\":\"a\",\"ctx\":-5}", 400));
	json_decref(post("/load", "{\"model\":\"a\",\"cpu\":[\"[\"]}", 400));
	json_decref(post("/unload", "{\"model\":\"nope\"}", 404));
	json_decref(post("/switch", "{\"from\":\"a\"}", 400));
	json_t *j = du_get(port, "/status");
	assert_int_equal(json_array_size(json_object_get(j, "loaded")), 0);
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(load_answer_unload),
		cmocka_unit_test(second_model_evicts_first),
		cmocka_unit_test(pinned_model_means_offload),
		cmocka_unit_test(switch_models),
		cmocka_unit_test(switch_waits_until_memory_is_free),
		cmocka_unit_test(killed_child_is_reported),
		cmocka_unit_test(idle_model_leaves),
		cmocka_unit_test(no_orphan_after_restart),
		cmocka_unit_test(exclusive_group),
		cmocka_unit_test(outside_pressure_unloads_idle),
		cmocka_unit_test(outside_pressure_shrinks_and_grows_back),
		cmocka_unit_test(rpc_server_as_the_gpu),
		cmocka_unit_test(bad_requests),
	};
	int rc = cmocka_run_group_tests(tests, setup, teardown);
	return rc != 0 ? rc : du_stops_failed(); /* every daemon stopped cleanly */
}
