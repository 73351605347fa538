/*
 * test_daemon: mloffloadd as a user meets it: the real binary on loopback with a folder
 * of generated models, NVML through its production dlopen path pointed at the test
 * suite's fake libnvidia-ml.so, and the Ollama protocol double. Every route answers,
 * readings change live, bad input gets a clear JSON error and changes nothing, a
 * restart keeps the model ids, a corrupt database stops the start without being
 * touched, and the daemon stops cleanly on SIGTERM.
 */
#include "daemonutil.h"

#include "ggufw.h"
#include "util.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static char *bin, *client, *models, *state, *nvml_state;
static int port, ollama_port;
static struct tu_proc daemon_p, ollama;

static void write_nvml(const char *body)
{
	assert_int_equal(tu_write_file(nvml_state, body, strlen(body)), 0);
}

static void gen(const char *shape, const char *path)
{
	du_gen(shape, path, NULL, 0, 1);
}

/* The test's daemon, through daemonutil. */
static json_t *req(const char *method, const char *path, const char *body, int *status)
{
	return du_req(port, method, path, body, status);
}

static json_t *get_ok(const char *path)
{
	return du_get(port, path);
}

static json_t *poll_until(const char *path, int (*pred)(json_t *, void *))
{
	return du_poll(port, path, pred, NULL);
}

static int listened_port(const struct tu_proc *p)
{
	return du_port(p);
}

static void start_daemon(const char *extra_nvml)
{
	char p[] = "127.0.0.1:0", sample[] = "100"; /* the daemon picks a free port */
	char *ourl = xasprintf("http://127.0.0.1:%d", ollama_port);
	char *log = tu_path("daemon.log");
	char *argv[] = { bin, "--listen", p, "--models-dir", models, "--state-dir", state,
	    "--nvml-lib", (char *)(extra_nvml ? extra_nvml : FAKE_NVML_PATH), "--ollama-url",
	    ourl, "--llama-url", "http://127.0.0.1:9", "--sample-ms", sample, "--rescan", "0",
	    "-v", NULL };
	setenv("FAKE_NVML_STATE", nvml_state, 1);
	assert_int_equal(tu_spawn(&daemon_p, argv, log), 0);
	port = listened_port(&daemon_p);
	free(ourl);
	free(log);
}

/* Stops the daemon with SIGTERM and returns its exit status. */
static int stop_daemon(void)
{
	kill(daemon_p.pid, SIGTERM);
	int st = -1;
	for (int i = 0; i < 600; i++) {
		if (waitpid(daemon_p.pid, &st, WNOHANG) == daemon_p.pid)
			break;
		usleep(50 * 1000);
	}
	int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	tu_stop(&daemon_p);
	return code;
}

static json_t *model_by_name(json_t *models_body, const char *needle)
{
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(models_body, "models"), i, v) {
		const char *path = json_string_value(json_object_get(v, "path"));
		const char *id = json_string_value(json_object_get(v, "id"));
		if ((path && strstr(path, needle)) || (id && strstr(id, needle)))
			return v;
	}
	return NULL;
}

static int has_three(json_t *j, void *arg)
{
	return json_array_size(json_object_get(j, "models")) >= 3 &&
	    model_by_name(j, "ollama:") != NULL;
}

static int setup(void **st)
{
	const char *bd = getenv("MLO_BUILD_DIR"), *sd = getenv("MLO_SOURCE_DIR");
	bin = xasprintf("%s/mloffloadd", bd);
	client = xasprintf("%s/mloffload", bd);
	models = tu_path("models");
	state = tu_path("state");
	nvml_state = tu_path("nvml.txt");
	mkdir(models, 0755);
	char *p = xasprintf("%s/small-llama-Q4_K_M.gguf", models);
	gen("small-llama", p);
	free(p);
	p = xasprintf("%s/broken.gguf", models);
	tu_write_file(p, "GGUF\x03\0\0\0garbage", 16);
	free(p);
	write_nvml("count 1\ngpu 0 name=\"Fake RTX 4060\" uuid=GPU-fake-0 total=8589934592 "
	    "used=1073741824 temp=45 util=10 procs=4242:1073741824\n");
	/* Ollama's HTTP API, played by the protocol double */
	char *script = xasprintf("%s/tests/ollama_double.py", sd);
	char *olog = tu_path("ollama.log");
	char *oargv[] = { "/usr/bin/python3", script, "--port", "0", NULL };
	assert_int_equal(tu_spawn(&ollama, oargv, olog), 0);
	ollama_port = tu_log_port(&ollama, "listening ", 60);
	free(script);
	free(olog);
	start_daemon(NULL);
	return 0;
}

static int teardown(void **st)
{
	if (daemon_p.pid > 0)
		stop_daemon();
	tu_stop(&ollama);
	free(bin);
	free(client);
	free(models);
	free(state);
	free(nvml_state);
	return 0;
}

static void routes_answer(void **st)
{
	json_t *j = get_ok("/");
	assert_string_equal(json_string_value(json_object_get(j, "name")), "mloffloadd");
	assert_true(json_array_size(json_object_get(j, "routes")) >= 10);
	json_decref(j);
	j = get_ok("/health");
	assert_string_equal(json_string_value(json_object_get(j, "status")), "healthy");
	json_t *s = json_object_get(j, "services");
	assert_true(json_is_true(json_object_get(s, "registry_db")));
	assert_true(json_is_true(json_object_get(s, "models_path")));
	assert_true(json_is_true(json_object_get(s, "vram_monitor")));
	json_decref(j);
	j = get_ok("/queue");
	assert_int_equal(json_array_size(json_object_get(j, "waiting")), 0);
	json_decref(j);
	j = get_ok("/status");
	assert_true(json_array_size(json_object_get(j, "devices")) >= 2);
	json_decref(j);
}

static void models_listed(void **st)
{
	json_t *j = poll_until("/models", has_three);
	json_t *m = model_by_name(j, "small-llama");
	assert_non_null(m);
	assert_string_equal(json_string_value(json_object_get(m, "state")), "available");
	assert_string_equal(json_string_value(json_object_get(m, "arch")), "llama");
	assert_int_equal(json_integer_value(json_object_get(m, "layers")), 8);
	json_t *fit = json_array_get(json_object_get(m, "fit"), 0);
	assert_non_null(fit);
	json_t *b = model_by_name(j, "broken");
	assert_non_null(b);
	assert_string_equal(json_string_value(json_object_get(b, "state")), "error");
	assert_non_null(strstr(json_string_value(json_object_get(b, "error")), "at byte"));
	json_t *o = model_by_name(j, "ollama:");
	assert_string_equal(json_string_value(json_object_get(o, "backend")), "ollama");
	char path[300];
	snprintf(path, sizeof path, "/models/%s", json_string_value(json_object_get(m, "id")));
	json_t *one = get_ok(path);
	assert_string_equal(json_string_value(json_object_get(one, "path")),
	    json_string_value(json_object_get(m, "path")));
	json_decref(one);
	json_decref(j);
	int status;
	j = req("GET", "/models/no-such-model", NULL, &status);
	assert_int_equal(status, 404);
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"),
	    "code")), "model_not_found");
	json_decref(j);
}

static int gpu_used_is_3g(json_t *j, void *arg)
{
	json_t *d = json_array_get(json_object_get(j, "devices"), 0);
	return json_integer_value(json_object_get(d, "used_bytes")) == 3221225472LL;
}

static int gpu_not_ok(json_t *j, void *arg)
{
	return json_is_false(json_object_get(json_array_get(json_object_get(j, "devices"), 0),
	    "ok"));
}

static int gpu_ok(json_t *j, void *arg)
{
	return json_is_true(json_object_get(json_array_get(json_object_get(j, "devices"), 0),
	    "ok"));
}

static void vram_live(void **st)
{
	json_t *j = get_ok("/vram?history=5");
	json_t *d = json_array_get(json_object_get(j, "devices"), 0);
	assert_string_equal(json_string_value(json_object_get(d, "id")), "gpu0");
	assert_string_equal(json_string_value(json_object_get(d, "name")), "Fake RTX 4060");
	assert_int_equal(json_integer_value(json_object_get(d, "total_bytes")), 8589934592LL);
	assert_int_equal(json_integer_value(json_object_get(d, "temperature_c")), 45);
	json_t *pr = json_array_get(json_object_get(d, "processes"), 0);
	assert_int_equal(json_integer_value(json_object_get(pr, "pid")), 4242);
	assert_true(json_array_size(json_object_get(d, "history")) >= 1);
	json_decref(j);
	/* another process takes 2 GiB: the daemon sees it on its next sample */
	write_nvml("count 1\ngpu 0 name=\"Fake RTX 4060\" uuid=GPU-fake-0 total=8589934592 "
	    "used=3221225472 temp=60 util=90 procs=4242:1073741824,777:2147483648\n");
	j = poll_until("/vram", gpu_used_is_3g);
	assert_true(gpu_used_is_3g(j, NULL));
	json_decref(j);
	/* NVML starts failing: the device says so, health degrades, the daemon stays up */
	write_nvml("count 1\nerror 999\n");
	j = poll_until("/vram", gpu_not_ok);
	assert_true(gpu_not_ok(j, NULL));
	json_decref(j);
	int status;
	j = req("GET", "/health", NULL, &status);
	assert_int_equal(status, 503);
	assert_string_equal(json_string_value(json_object_get(j, "status")), "degraded");
	assert_true(json_is_false(json_object_get(json_object_get(j, "services"),
	    "vram_monitor")));
	json_decref(j);
	write_nvml("count 1\ngpu 0 name=\"Fake RTX 4060\" uuid=GPU-fake-0 total=8589934592 "
	    "used=1073741824 temp=45 util=10\n");
	j = poll_until("/vram", gpu_ok);
	assert_true(gpu_ok(j, NULL));
	json_decref(j);
}

static void metrics_text(void **st)
{
	char *r = tu_http(port, "GET", "/metrics", NULL);
	assert_non_null(r);
	assert_non_null(strstr(r, " 200 "));
	assert_non_null(strstr(r, "mloffload_device_memory_total_bytes{device=\"gpu0\""));
	assert_non_null(strstr(r, "mloffload_models{state=\"available\"}"));
	assert_non_null(strstr(r, "mloffload_http_requests_total{route=\"/models\",code=\"2xx\"}"));
	assert_non_null(strstr(r, "mloffload_http_request_duration_seconds_bucket{route="));
	free(r);
}

static void budget_plans(void **st)
{
	json_t *all = get_ok("/models");
	const char *id = json_string_value(json_object_get(model_by_name(all, "small-llama"),
	    "id"));
	char path[400];
	snprintf(path, sizeof path, "/vram/budget?model=%s&ctx=4096", id);
	json_t *j = get_ok(path);
	assert_true(json_is_true(json_object_get(j, "fits")));
	assert_int_equal(json_integer_value(json_object_get(j, "ctx")), 4096);
	json_t *p = json_object_get(j, "plan");
	assert_int_equal(json_integer_value(json_object_get(p, "gpu_layers")), 9);
	assert_true(json_array_size(json_object_get(p, "args")) > 4);
	assert_int_equal(json_array_size(json_object_get(json_object_get(j, "components"),
	    "layers")), 8);
	json_decref(j);
	int status;
	j = req("GET", "/vram/budget", NULL, &status);
	assert_int_equal(status, 400);
	json_decref(j);
	snprintf(path, sizeof path, "/vram/budget?model=%s&ctx=lots", id);
	j = req("GET", path, NULL, &status);
	assert_int_equal(status, 400);
	json_decref(j);
	j = req("GET", "/vram/budget?model=nope", NULL, &status);
	assert_int_equal(status, 404);
	json_decref(j);
	json_decref(all);
}

static void bad_input_changes_nothing(void **st)
{
	json_t *before = get_ok("/models");
	int status;
	json_t *j = req("GET", "/nowhere", NULL, &status);
	assert_int_equal(status, 404);
	assert_non_null(json_object_get(j, "error"));
	json_decref(j);
	j = req("POST", "/models", "{}", &status);
	assert_int_equal(status, 405);
	json_decref(j);
	j = req("POST", "/models/scan", "{\"oops\":", &status);
	assert_int_equal(status, 400);
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"),
	    "code")), "invalid_json");
	json_decref(j);
	j = req("POST", "/models/scan", "[1,2]", &status);
	assert_int_equal(status, 400);
	json_decref(j);
	size_t big = (1u << 20) + 10;
	char *body = xmalloc(big + 1);
	memset(body, ' ', big);
	body[big] = '\0';
	j = req("POST", "/models/scan", body, &status);
	assert_int_equal(status, 413);
	json_decref(j);
	free(body);
	char longq[4096];
	memset(longq, 'a', sizeof longq);
	memcpy(longq, "/vram?x=", 8);
	longq[sizeof longq - 1] = '\0';
	j = req("GET", longq, NULL, &status);
	assert_int_equal(status, 400);
	json_decref(j);
	j = req("GET", "/models/..%2f..%2fetc%2fpasswd", NULL, &status);
	assert_int_equal(status, 404);
	json_decref(j);
	json_t *after = get_ok("/models");
	assert_true(json_equal(json_object_get(before, "models"), json_object_get(after,
	    "models")));
	json_decref(before);
	json_decref(after);
}

/* /vram/budget keeps a model's parsed header between requests (api_budget.c): the
 * same answer from the kept header, and a file rewritten in place (another shape, no
 * rescan yet) is read again rather than answered from the old header. */
static void budget_follows_the_file(void **st)
{
	char *p = xasprintf("%s/budget-x.gguf", models);
	gen("tiny", p);
	int status;
	json_t *j = req("POST", "/models/scan", NULL, &status);
	assert_int_equal(status, 200);
	json_decref(j);
	json_t *all = get_ok("/models");
	json_t *m = model_by_name(all, "budget-x");
	assert_non_null(m);
	char path[400];
	snprintf(path, sizeof path, "/vram/budget?model=%s&ctx=2048",
	    json_string_value(json_object_get(m, "id")));
	json_decref(all);
	for (int i = 0; i < 3; i++) { /* parsed once, then from the kept header */
		j = get_ok(path);
		assert_int_equal(json_integer_value(json_object_get(j, "ctx")), 2048);
		assert_int_equal(json_array_size(json_object_get(json_object_get(j, "components"),
		    "layers")), 2);
		json_decref(j);
	}
	gen("small-llama", p); /* 8 layers, same path */
	j = get_ok(path);
	assert_int_equal(json_array_size(json_object_get(json_object_get(j, "components"),
	    "layers")), 8);
	json_decref(j);
	unlink(p);
	j = req("POST", "/models/scan", NULL, &status);
	assert_int_equal(status, 200);
	json_decref(j);
	free(p);
}

static void scan_notices_changes(void **st)
{
	char *p = xasprintf("%s/tiny.gguf", models);
	gen("tiny", p);
	int status;
	json_t *j = req("POST", "/models/scan", NULL, &status);
	assert_int_equal(status, 200);
	assert_int_equal(json_integer_value(json_object_get(j, "added")), 1);
	json_decref(j);
	unlink(p);
	j = req("POST", "/models/scan", "{}", &status);
	assert_int_equal(status, 200);
	assert_int_equal(json_integer_value(json_object_get(j, "removed")), 1);
	json_decref(j);
	free(p);
	/* a symlink to a model outside the folders is refused, not followed */
	char *outside = tu_path("outside.gguf"), *link = xasprintf("%s/escape.gguf", models);
	gen("tiny", outside);
	assert_int_equal(symlink(outside, link), 0);
	j = req("POST", "/models/scan", NULL, &status);
	assert_int_equal(status, 200);
	json_decref(j);
	j = get_ok("/models");
	json_t *m = model_by_name(j, "escape");
	if (m != NULL) {
		assert_string_equal(json_string_value(json_object_get(m, "state")), "error");
		assert_non_null(strstr(json_string_value(json_object_get(m, "error")), "outside"));
	}
	json_decref(j);
	unlink(link);
	free(link);
	free(outside);
}

static void vanished_folder_keeps_registry(void **st)
{
	json_t *before = get_ok("/models");
	char *moved = tu_path("models-away");
	assert_int_equal(rename(models, moved), 0);
	int status;
	json_t *j = req("POST", "/models/scan", NULL, &status);
	assert_int_equal(status, 200);
	assert_int_equal(json_integer_value(json_object_get(j, "removed")), 0);
	json_decref(j);
	j = req("GET", "/health", NULL, &status);
	assert_int_equal(status, 503);
	assert_string_equal(json_string_value(json_object_get(j, "status")), "degraded");
	assert_true(json_is_false(json_object_get(json_object_get(j, "services"),
	    "models_path")));
	assert_non_null(strstr(json_string_value(json_object_get(j, "reason")), "models_path"));
	json_decref(j);
	assert_int_equal(rename(moved, models), 0);
	json_t *after = get_ok("/models");
	assert_int_equal(json_array_size(json_object_get(before, "models")),
	    json_array_size(json_object_get(after, "models")));
	json_decref(before);
	json_decref(after);
	free(moved);
}

static void backends_seen(void **st)
{
	json_t *j = get_ok("/backends");
	size_t i;
	json_t *v;
	int ollama_up = 0, llama_down = 0;
	json_array_foreach(json_object_get(j, "backends"), i, v) {
		const char *t = json_string_value(json_object_get(v, "type"));
		if (t && strcmp(t, "ollama") == 0 && json_is_true(json_object_get(v, "detected")))
			ollama_up = 1;
		if (t && strcmp(t, "llama.cpp") == 0 && json_is_false(json_object_get(v, "detected")))
			llama_down = 1;
	}
	assert_true(ollama_up);
	assert_true(llama_down);
	json_decref(j);
}

static int ollama_loaded(json_t *j, void *arg)
{
	json_t *m = model_by_name(j, "ollama:llama3.2");
	return m != NULL && json_is_true(json_object_get(m, "loaded")) &&
	    json_integer_value(json_object_get(m, "vram_bytes")) > 0;
}

static int ollama_unloaded(json_t *j, void *arg)
{
	json_t *m = model_by_name(j, "ollama:llama3.2");
	return m != NULL && !json_is_true(json_object_get(m, "loaded"));
}

static void ollama_models_load_and_unload(void **st)
{
	int status;
	json_t *j = req("POST", "/load", "{\"model\":\"ollama:llama3.2:1b\"}", &status);
	assert_int_equal(status, 200);
	assert_string_equal(json_string_value(json_object_get(j, "state")), "ready");
	json_decref(j);
	j = poll_until("/models", ollama_loaded);
	json_decref(j);
	j = req("POST", "/unload", "{\"model\":\"ollama:llama3.2:1b\"}", &status);
	assert_int_equal(status, 200);
	json_decref(j);
	j = poll_until("/models", ollama_unloaded);
	json_decref(j);
	j = req("POST", "/load", "{\"model\":\"ollama:no-such:7b\"}", &status);
	assert_int_equal(status, 404);
	assert_non_null(strstr(json_string_value(json_object_get(json_object_get(j, "error"),
	    "message")), "not found"));
	json_decref(j);
}

static void client_commands(void **st)
{
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "%s status --url http://127.0.0.1:%d | grep -q 'gpu0'",
	    client, port);
	assert_int_equal(tu_sh("%s", cmd), 0);
	snprintf(cmd, sizeof cmd, "%s models --url http://127.0.0.1:%d | grep -q small-llama",
	    client, port);
	assert_int_equal(tu_sh("%s", cmd), 0);
	snprintf(cmd, sizeof cmd, "%s scan --url http://127.0.0.1:%d | grep -q 'unchanged'",
	    client, port);
	assert_int_equal(tu_sh("%s", cmd), 0);
	snprintf(cmd, sizeof cmd, "%s vram --json --url http://127.0.0.1:%d | grep -q "
	    "total_bytes", client, port);
	assert_int_equal(tu_sh("%s", cmd), 0);
	snprintf(cmd, sizeof cmd, "%s budget nope --url http://127.0.0.1:%d 2>/dev/null",
	    client, port);
	assert_int_equal(tu_sh("%s", cmd), 1);
	snprintf(cmd, sizeof cmd, "%s status --url http://127.0.0.1:1 2>/dev/null", client);
	assert_int_equal(tu_sh("%s", cmd), 1);
}

static void restart_keeps_ids(void **st)
{
	json_t *before = get_ok("/models");
	assert_int_equal(stop_daemon(), 0);
	start_daemon(NULL);
	json_t *after = poll_until("/models", has_three);
	json_t *a = model_by_name(before, "small-llama"), *b = model_by_name(after, "small-llama");
	assert_string_equal(json_string_value(json_object_get(a, "id")),
	    json_string_value(json_object_get(b, "id")));
	json_decref(before);
	json_decref(after);
}

static void no_gpu_is_normal(void **st)
{
	assert_int_equal(stop_daemon(), 0);
	start_daemon("/nonexistent/libnvidia-ml.so");
	json_t *j = get_ok("/vram");
	assert_non_null(strstr(json_string_value(json_object_get(j, "nvml")), "not found"));
	json_t *d = json_array_get(json_object_get(j, "devices"), 0);
	assert_string_equal(json_string_value(json_object_get(d, "id")), "cpu");
	json_decref(j);
	j = get_ok("/health");
	assert_string_equal(json_string_value(json_object_get(j, "status")), "healthy");
	json_decref(j);
}

static void corrupt_database_refused(void **st)
{
	char *dir = tu_path("state-bad"), *db = xasprintf("%s/registry.db", dir);
	mkdir(dir, 0700);
	const char junk[] = "this is not an SQLite database, and it must survive";
	assert_int_equal(tu_write_file(db, junk, sizeof junk), 0);
	char *cmd = xasprintf("%s --state-dir %s --models-dir %s --listen 127.0.0.1:%d "
	    "--ollama-url '' 2>%s/err.txt", bin, dir, models, tu_free_port(), dir);
	assert_int_equal(tu_sh("%s", cmd), 1);
	size_t len;
	uint8_t *b = tu_read_file(db, &len);
	assert_int_equal(len, sizeof junk);
	assert_memory_equal(b, junk, len);
	free(b);
	char *errp = xasprintf("%s/err.txt", dir);
	b = tu_read_file(errp, &len);
	b = xrealloc(b, len + 1);
	b[len] = 0;
	assert_non_null(strstr((char *)b, "registry.db"));
	free(b);
	free(errp);
	free(cmd);
	free(db);
	free(dir);
}

static void config_checked(void **st)
{
	char *conf = tu_path("bad.conf");
	const char *bad = "[daemon]\nlisten = 127.0.0.1:9000\nmodles_dir = /tmp\n";
	tu_write_file(conf, bad, strlen(bad));
	assert_int_equal(tu_sh("%s -n --config %s 2>/dev/null", bin, conf), 1);
	assert_int_equal(tu_sh("%s -n --config %s 2>&1 | grep -q 'bad.conf:3: unknown key'",
	    bin, conf), 0);
	const char *good = "[daemon]\nlisten = 127.0.0.1:9000\nmodels_dir = /tmp\n"
	    "[backends]\nollama_url =\n";
	tu_write_file(conf, good, strlen(good));
	assert_int_equal(tu_sh("%s -n --config %s >/dev/null", bin, conf), 0);
	assert_int_equal(tu_sh("%s --listen nowhere -n 2>/dev/null", bin), 1);
	/* the /v1 settings: an alias needs a name and a model id, limits are numbers */
	assert_int_equal(tu_sh("%s -n --alias lonely 2>&1 | grep -q \"not 'NAME MODEL_ID'\"",
	    bin), 0);
	assert_int_equal(tu_sh("%s -n --parallel 0 2>/dev/null", bin), 1);
	assert_int_equal(tu_sh("%s -n --queue-max many 2>/dev/null", bin), 1);
	assert_int_equal(tu_sh("%s -n --alias 'gpt x' --parallel 2 --queue-max 9 "
	    "--max-overtake 0 >/dev/null", bin), 0);
	/* the pressure ladder's settings: words and bounded numbers */
	const char *ladder = "pressure_action = unload\nregrow = off\nregrow_hold_s = 5\n"
	    "drain_timeout_s = 0\n";
	tu_write_file(conf, ladder, strlen(ladder));
	assert_int_equal(tu_sh("%s -n --config %s >/dev/null", bin, conf), 0);
	const char *bad_ladder = "regrow_hold_s = 5\npressure_action = evict\n";
	tu_write_file(conf, bad_ladder, strlen(bad_ladder));
	assert_int_equal(tu_sh("%s -n --config %s 2>&1 | grep -q 'bad.conf:2: pressure_action: "
	    ".evict. is not shrink or unload'", bin, conf), 0);
	const char *bad_regrow = "regrow = maybe\n";
	tu_write_file(conf, bad_regrow, strlen(bad_regrow));
	assert_int_equal(tu_sh("%s -n --config %s 2>/dev/null", bin, conf), 1);
	/* the configuration shipped for systemd is valid */
	assert_int_equal(tu_sh("%s -n --config %s/contrib/mloffloadd.conf | grep -q "
	    "'configuration OK'", bin, getenv("MLO_SOURCE_DIR")), 0);
	free(conf);
}

/* Reads datagrams from fd, appending them to buf, until buf holds `until` (or, with
 * until NULL, for ms); 30 s at most. */
static void read_notify(int fd, char *buf, size_t len, const char *until, int ms)
{
	for (int waited = 0; waited < (until ? 30000 : ms); waited += 20) {
		char m[512];
		ssize_t n;
		while ((n = recv(fd, m, sizeof m - 1, MSG_DONTWAIT)) > 0) {
			m[n] = '\0';
			size_t l = strlen(buf);
			snprintf(buf + l, len - l, "%s\n", m);
		}
		if (until != NULL && strstr(buf, until) != NULL)
			return;
		usleep(20 * 1000);
	}
}

static int has_small_llama(json_t *j, void *arg)
{
	return model_by_name(j, "small-llama") != NULL;
}

static void systemd_notify_and_reload(void **st)
{
	/* a notify socket as systemd gives one, and a config file to reload */
	char *sock = tu_path("notify.sock"), *conf = tu_path("reload.conf");
	char *dir2 = tu_path("models2"), *st2 = tu_path("state2");
	mkdir(dir2, 0755);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	char *body = xasprintf("[daemon]\nlisten = 127.0.0.1:0\nmodels_dir = %s\nstate_dir = %s\n"
	    "rescan_interval_s = 0\n[backends]\nollama_url =\nllama_server_url = "
	    "http://127.0.0.1:9\n", models, st2);
	tu_write_file(conf, body, strlen(body));
	free(body);
	setenv("NOTIFY_SOCKET", sock, 1);
	setenv("WATCHDOG_USEC", "200000", 1);
	char *log = tu_path("daemon2.log");
	char *argv[] = { bin, "--config", conf, "--nvml-lib", (char *)FAKE_NVML_PATH,
	    "--reserve", "1G", NULL };
	struct tu_proc p;
	assert_int_equal(tu_spawn(&p, argv, log), 0);
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	char got[8192] = "";
	read_notify(fd, got, sizeof got, "READY=1", 0);
	read_notify(fd, got, sizeof got, "WATCHDOG=1", 0);
	assert_non_null(strstr(got, "READY=1"));
	assert_non_null(strstr(got, "STATUS="));
	assert_non_null(strstr(got, "WATCHDOG=1"));
	/* the folder changes in the file; SIGHUP applies it without a restart */
	int old_port = port;
	port = listened_port(&p);
	json_t *j = poll_until("/models", has_small_llama);
	json_decref(j);
	char *gp = xasprintf("%s/tiny-only.gguf", dir2);
	gen("tiny", gp);
	free(gp);
	body = xasprintf("[daemon]\nlisten = 127.0.0.1:0\nmodels_dir = %s\nstate_dir = %s\n"
	    "rescan_interval_s = 0\nalias = my-tiny tiny-only\n[backends]\nollama_url =\n",
	    dir2, st2);
	tu_write_file(conf, body, strlen(body));
	free(body);
	kill(p.pid, SIGHUP);
	for (int i = 0; i < 1200; i++) {
		j = get_ok("/models");
		int done = model_by_name(j, "tiny-only") != NULL && model_by_name(j,
		    "small-llama") == NULL;
		json_decref(j);
		if (done)
			break;
		usleep(50 * 1000);
	}
	j = get_ok("/models");
	json_t *tiny = model_by_name(j, "tiny-only");
	assert_non_null(tiny);
	assert_null(model_by_name(j, "small-llama"));
	/* listen = 127.0.0.1:0 in both: the bound port is no change worth a warning */
	size_t ln;
	char *lt = (char *)tu_read_file(log, &ln);
	assert_non_null(lt);
	assert_null(strstr(lt, "change only on restart"));
	free(lt);
	/* a flag given on the command line still overrides the reloaded file */
	char bp[400];
	snprintf(bp, sizeof bp, "/vram/budget?model=%s",
	    json_string_value(json_object_get(tiny, "id")));
	json_t *bj = get_ok(bp);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(bj, "device"),
	    "reserve_bytes")), 1LL << 30);
	json_decref(bj);
	json_decref(j);
	/* the new alias is a name on the /v1 routes */
	j = get_ok("/v1/models");
	char *ids = json_dumps(j, 0);
	assert_non_null(strstr(ids, "\"my-tiny\""));
	free(ids);
	json_decref(j);
	port = old_port;
	read_notify(fd, got, sizeof got, NULL, 40); /* drain the watchdog pings */
	got[0] = '\0';
	kill(p.pid, SIGTERM);
	read_notify(fd, got, sizeof got, "STOPPING=1", 0);
	assert_non_null(strstr(got, "STOPPING=1"));
	int status = -1;
	for (int i = 0; i < 600 && waitpid(p.pid, &status, WNOHANG) != p.pid; i++)
		usleep(50 * 1000);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	p.pid = 0;
	tu_stop(&p);
	close(fd);
	free(log);
	free(sock);
	free(conf);
	free(dir2);
	free(st2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(routes_answer),
		cmocka_unit_test(models_listed),
		cmocka_unit_test(vram_live),
		cmocka_unit_test(metrics_text),
		cmocka_unit_test(budget_plans),
		cmocka_unit_test(budget_follows_the_file),
		cmocka_unit_test(bad_input_changes_nothing),
		cmocka_unit_test(scan_notices_changes),
		cmocka_unit_test(vanished_folder_keeps_registry),
		cmocka_unit_test(backends_seen),
		cmocka_unit_test(ollama_models_load_and_unload),
		cmocka_unit_test(client_commands),
		cmocka_unit_test(restart_keeps_ids),
		cmocka_unit_test(no_gpu_is_normal),
		cmocka_unit_test(corrupt_database_refused),
		cmocka_unit_test(config_checked),
		cmocka_unit_test(systemd_notify_and_reload),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
