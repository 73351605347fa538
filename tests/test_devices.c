/*
 * test_devices: the real mloffloadd over several devices: two real ggml-rpc-servers on
 * loopback (two rpc_device lines of its configuration file, changed by SIGHUP) and two
 * GPUs of the fake NVML too small to hold a layer, with real llama-server children on
 * tiny generated models. It checks what a user would: the accelerators every view
 * shows (two GPUs under their llama.cpp names, two RPC servers), two models each
 * resident on its own RPC server with no eviction although each budget holds one
 * model only, their command lines pinned to exactly that server (--rpc, --device, RPC
 * names counted per child) with CUDA_DEVICE_ORDER=PCI_BUS_ID in their environment, the
 * layers really on that server (its buffers), a third model on the CPU (--device none)
 * with the reason while both servers serve pinned models, and kill -9 of one child
 * freeing its server only (another model loads there again); /vram/budget planning
 * around a server that serves another model, with the reason, and a model that fits
 * neither server alone split over both (in /vram/budget, `mloffload budget`, the load
 * and `mloffload ps`), and kept on one server once the configuration says split = never.
 */
#include "daemonutil.h"

#include "util.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *bin, *models, *state, *nvml, *conf, *llama_bin;
static struct tu_proc dmn, rpcs[2];
static int port, rpc_port[2];

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

/* The configuration: the two servers with budget bytes each, and split (NULL: auto). */
static void write_conf_split(uint64_t budget, const char *split)
{
	char *c = xasprintf("rpc_device = 127.0.0.1:%d %llu\nrpc_device = 127.0.0.1:%d %llu\n"
	    "split = %s\n", rpc_port[0], (unsigned long long)budget, rpc_port[1],
	    (unsigned long long)budget, split ? split : "auto");
	assert_int_equal(tu_write_file(conf, c, strlen(c)), 0);
	free(c);
}

static void write_conf(uint64_t budget)
{
	write_conf_split(budget, NULL);
}

/* The fake NVML: n GPUs of 16 MiB (less than the reserve: no layer goes there). */
static void write_gpus(int n)
{
	char buf[512];
	int l = snprintf(buf, sizeof buf, "count %d\n", n);
	for (int i = 0; i < n; i++)
		l += snprintf(buf + l, sizeof buf - (size_t)l, "gpu %d name=\"Fake GPU\" "
		    "uuid=GPU-dev-%d total=16777216 used=0 temp=40 util=0\n", i, i);
	assert_int_equal(tu_write_file(nvml, buf, (size_t)l), 0);
}

static int has_abc(json_t *j, void *arg)
{
	return json_array_size(json_object_get(j, "models")) >= 3;
}

/* /status once it shows n accelerators, the RPC servers with budget bytes. */
static int accelerators_are(json_t *j, void *arg)
{
	const uint64_t *want = arg;
	json_t *a = json_object_get(j, "accelerators"), *v;
	size_t i, n = 0;
	json_array_foreach(a, i, v)
		if (json_object_get(v, "rpc") != NULL)
			n += (uint64_t)json_integer_value(json_object_get(v, "total_bytes")) ==
			    want[1];
	return json_array_size(a) == want[0] && n == 2;
}

/* The accelerator of /status with that name (borrowed from st), failing when absent. */
static json_t *accel(json_t *st, const char *name)
{
	json_t *v;
	size_t i;
	json_array_foreach(json_object_get(st, "accelerators"), i, v)
		if (strcmp(json_string_value(json_object_get(v, "name")), name) == 0)
			return v;
	fail_msg("no accelerator %s", name);
	return NULL;
}

static int setup(void **st)
{
	const char *bd = getenv("MLO_BUILD_DIR");
	char *root = tu_llama_root();
	if (root == NULL)
		return -1;
	llama_bin = xasprintf("%s/build/bin/llama-server", root);
	char *exe = xasprintf("%s/build/bin/ggml-rpc-server", root);
	free(root);
	bin = xasprintf("%s/mloffloadd", bd);
	models = tu_path("models");
	state = tu_path("state");
	nvml = tu_path("nvml.txt");
	conf = tu_path("mloffloadd.conf");
	mkdir(models, 0755);
	for (int i = 0; i < 3; i++) {
		char *p = xasprintf("%s/%c.gguf", models, 'a' + i);
		du_gen("tiny", p, NULL, 1, (uint64_t)i + 1);
		free(p);
	}
	for (int i = 0; i < 2; i++) {
		rpc_port[i] = tu_free_port();
		char ps[16], *log = xasprintf("%s/rpc%d.log", tu_tmpdir(), i);
		snprintf(ps, sizeof ps, "%d", rpc_port[i]);
		char *argv[] = { exe, "-H", "127.0.0.1", "-p", ps, NULL };
		assert_int_equal(tu_spawn(&rpcs[i], argv, log), 0);
		free(log);
		for (int k = 0; k < 300 && !tu_port_open(rpc_port[i]); k++)
			usleep(50 * 1000);
	}
	free(exe);
	/* first no GPU and roomy servers, to size a model on RPC0 */
	write_gpus(0);
	write_conf(64ull << 30);
	setenv("FAKE_NVML_STATE", nvml, 1);
	char *log = tu_path("daemon.log");
	char *argv[] = { bin, "--listen", "127.0.0.1:0", "--models-dir", models, "--state-dir",
	    state, "--nvml-lib", (char *)FAKE_NVML_PATH, "--llama-server", llama_bin,
	    "--ollama-url", "", "--llama-url", "http://127.0.0.1:9", "--rescan", "0",
	    "--idle-ttl", "0", "--sample-ms", "100", "--config", conf, NULL };
	assert_int_equal(tu_spawn(&dmn, argv, log), 0);
	free(log);
	port = du_port(&dmn);
	json_decref(du_poll(port, "/models", has_abc, NULL));
	json_t *b = du_get(port, "/vram/budget?model=a&ctx=512");
	assert_int_equal(strncmp(json_string_value(du_at(b, "device.id")), "RPC0[", 5), 0);
	uint64_t one = (uint64_t)json_integer_value(du_at(b, "plan.devices.0.total_bytes"));
	json_decref(b);
	assert_true(one > 1000000);
	/* then two GPUs, and servers that each hold one model but not two (SIGHUP) */
	write_gpus(2);
	write_conf(one * 3 / 2);
	kill(dmn.pid, SIGHUP);
	uint64_t want[2] = { 4, one * 3 / 2 };
	json_decref(du_poll(port, "/status", accelerators_are, want));
	return 0;
}

static int teardown(void **st)
{
	du_stop(&dmn);
	tu_stop(&rpcs[0]);
	tu_stop(&rpcs[1]);
	free(bin);
	free(models);
	free(state);
	free(nvml);
	free(conf);
	free(llama_bin);
	return 0;
}

/* The value after flag in j's plan.args, or NULL (borrowed). */
static const char *arg_after(json_t *j, const char *flag)
{
	json_t *args = du_at(j, "plan.args");
	for (size_t i = 0; i + 1 < json_array_size(args); i++)
		if (strcmp(json_string_value(json_array_get(args, i)), flag) == 0)
			return json_string_value(json_array_get(args, i + 1));
	return NULL;
}

/* 1 when the file /proc/PID/name holds the NUL-separated entry want. */
static int proc_has(int pid, const char *name, const char *want)
{
	char path[64], buf[65536];
	snprintf(path, sizeof path, "/proc/%d/%s", pid, name);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return 0;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	for (size_t i = 0; i < n; i += strlen(buf + i) + 1)
		if (strcmp(buf + i, want) == 0)
			return 1;
	return 0;
}

/* Loads model (pinned) and checks it runs on RPC server k alone, as RPC0 in its child. */
static int load_on_server(const char *model, int k)
{
	char *body = xasprintf("{\"model\":\"%s\",\"ctx\":512,\"pin\":true}", model);
	json_t *j = post("/load", body, 200);
	free(body);
	char hp[64], meas[96];
	snprintf(hp, sizeof hp, "127.0.0.1:%d", rpc_port[k]);
	assert_string_equal(arg_after(j, "--rpc"), hp);
	assert_string_equal(arg_after(j, "--device"), "RPC0");
	assert_int_equal(json_array_size(json_object_get(j, "devices")), 1);
	assert_string_equal(json_string_value(du_at(j, "devices.0.name")), k ? "RPC1" : "RPC0");
	/* its layers are really there: the child's buffers on that server */
	snprintf(meas, sizeof meas, "RPC0[%s]", hp);
	assert_non_null(json_object_get(json_object_get(j, "measured"), meas));
	/* and shown per device: planned beside measured, within 1% */
	double planned = (double)json_integer_value(du_at(j, "devices.0.planned.model_bytes"));
	double got = (double)json_integer_value(du_at(j, "devices.0.measured.model_bytes"));
	assert_true(got > 0 && planned > got * 0.99 && planned < got * 1.01);
	int pid = (int)json_integer_value(json_object_get(j, "pid"));
	assert_true(proc_has(pid, "cmdline", "--device"));
	assert_true(proc_has(pid, "cmdline", hp));
	assert_true(proc_has(pid, "environ", "CUDA_DEVICE_ORDER=PCI_BUS_ID"));
	json_decref(j);
	return pid;
}

static int b_failed(json_t *j, void *arg)
{
	json_t *v;
	size_t i;
	json_array_foreach(json_object_get(j, "loaded"), i, v)
		if (strcmp(json_string_value(json_object_get(v, "model")), "b") == 0)
			return 0;
	return 1;
}

static void one_model_per_rpc_server(void **st)
{
	json_t *s = du_get(port, "/status");
	assert_string_equal(json_string_value(json_object_get(accel(s, "CUDA1"), "id")), "gpu1");
	json_decref(s);
	int pid_a = load_on_server("a", 0);
	/* /vram/budget plans b as a load would: around the server that serves a */
	json_t *bb = du_get(port, "/vram/budget?model=b&ctx=512");
	char hp1[64];
	snprintf(hp1, sizeof hp1, "127.0.0.1:%d", rpc_port[1]);
	assert_true(json_is_true(json_object_get(bb, "fits")));
	assert_string_equal(json_string_value(du_at(bb, "plan.devices.0.name")), "RPC1");
	assert_string_equal(arg_after(bb, "--rpc"), hp1);
	assert_string_equal(arg_after(bb, "--device"), "RPC0");
	assert_non_null(strstr(json_string_value(json_object_get(bb, "reason")), "serves a (one "
	    "client at a time)"));
	json_decref(bb);
	int pid_b = load_on_server("b", 1);
	assert_int_equal(kill(pid_a, 0), 0); /* nobody evicted */
	s = du_get(port, "/status");
	assert_string_equal(json_string_value(json_object_get(accel(s, "RPC0"), "serving")), "a");
	assert_string_equal(json_string_value(json_object_get(accel(s, "RPC1"), "serving")), "b");
	json_decref(s);
	/* a third while both servers serve pinned models: the CPU, with the reason */
	json_t *j = post("/load", "{\"model\":\"c\",\"ctx\":512}", 200);
	assert_string_equal(arg_after(j, "--device"), "none");
	assert_string_equal(arg_after(j, "-ngl"), "0");
	assert_null(arg_after(j, "--rpc"));
	const char *why = json_string_value(json_object_get(j, "plan_reason"));
	assert_non_null(why);
	assert_non_null(strstr(why, "one client at a time"));
	json_decref(j);
	json_decref(post("/unload", "{\"model\":\"c\"}", 200));
	/* kill -9 of b's child: its server only is free, a stays */
	assert_int_equal(kill(pid_b, SIGKILL), 0);
	json_decref(du_poll(port, "/status", b_failed, NULL));
	s = du_get(port, "/status");
	assert_true(json_is_null(json_object_get(accel(s, "RPC1"), "serving")));
	assert_string_equal(json_string_value(json_object_get(accel(s, "RPC0"), "serving")), "a");
	json_decref(s);
	assert_int_equal(kill(pid_a, 0), 0);
	/* and the server takes a new client */
	load_on_server("c", 1);
	char *m = tu_http(port, "GET", "/metrics", NULL);
	assert_non_null(m);
	assert_non_null(strstr(m, "mloffload_model_device_planned_bytes{model=\"c\",device=\"RPC1["));
	free(m);
	json_decref(post("/unload", "{\"model\":\"a\"}", 200));
	json_decref(post("/unload", "{\"model\":\"c\"}", 200));
}

/* rpc_device repeats (each line checked, a server given twice refused) and split. */
static void config_checked(void **st)
{
	char *c = tu_path("check.conf");
	const char *good = "models_dir = /tmp\nrpc_device = 10.0.0.1:50052 8G\n"
	    "rpc_device = 10.0.0.2:50052 4G\nsplit = never\n";
	assert_int_equal(tu_write_file(c, good, strlen(good)), 0);
	assert_int_equal(tu_sh("%s -n --config %s >/dev/null", bin, c), 0);
	const char *twice = "rpc_device = 10.0.0.1:50052 8G\nrpc_device = 10.0.0.1:50052 4G\n";
	assert_int_equal(tu_write_file(c, twice, strlen(twice)), 0);
	assert_int_equal(tu_sh("%s -n --config %s 2>&1 | grep -q 'check.conf:2: rpc_device: "
	    "10.0.0.1:50052 is given twice'", bin, c), 0);
	assert_int_equal(tu_sh("%s -n --models-dir /tmp --rpc-device '10.0.0.1:50052 lots' "
	    "2>&1 | grep -q \"is not 'HOST:PORT SIZE'\"", bin), 0);
	assert_int_equal(tu_sh("%s -n --models-dir /tmp --split sometimes 2>&1 | grep -q "
	    "'is not auto or never'", bin), 0);
	/* the flags replace the file's lines, as for every list */
	assert_int_equal(tu_write_file(c, good, strlen(good)), 0);
	assert_int_equal(tu_sh("%s -n --config %s --rpc-device '10.0.0.1:50052 4G' "
	    "--split auto >/dev/null", bin, c), 0);
	free(c);
}

/* The output of `mloffload ARGS` against the daemon (heap). */
static char *cli(const char *args)
{
	char *out = tu_path("cli.txt");
	assert_int_equal(tu_sh("%s/mloffload --url http://127.0.0.1:%d %s >%s",
	    getenv("MLO_BUILD_DIR"), port, args, out), 0);
	size_t len;
	char *text = (char *)tu_read_file(out, &len);
	assert_non_null(text);
	free(out);
	return text;
}

/* Two servers that each hold 9/10 of a model: /vram/budget, the load, ps and budget
 * show it split over both. */
static void split_over_both_servers(void **st)
{
	json_t *b = du_get(port, "/vram/budget?model=a&ctx=512");
	uint64_t one = (uint64_t)json_integer_value(du_at(b, "plan.devices.0.total_bytes"));
	json_decref(b);
	write_conf(one * 9 / 10);
	kill(dmn.pid, SIGHUP);
	uint64_t want[2] = { 4, one * 9 / 10 };
	json_decref(du_poll(port, "/status", accelerators_are, want));
	b = du_get(port, "/vram/budget?model=a&ctx=512");
	char hp[128];
	snprintf(hp, sizeof hp, "127.0.0.1:%d,127.0.0.1:%d", rpc_port[0], rpc_port[1]);
	if (!json_is_true(json_object_get(b, "fits")) ||
	    json_array_size(du_at(b, "plan.devices")) != 3) {
		char *s = json_dumps(json_object_get(b, "plan"), 0);
		fail_msg("no split over both servers of %llu bytes: %s",
		    (unsigned long long)(one * 9 / 10), s);
	}
	assert_string_equal(json_string_value(du_at(b, "plan.devices.0.name")), "RPC0");
	assert_string_equal(json_string_value(du_at(b, "plan.devices.1.name")), "RPC1");
	assert_string_equal(json_string_value(du_at(b, "plan.devices.2.name")), "cpu");
	assert_true(json_integer_value(du_at(b, "plan.devices.0.model_bytes")) > 0);
	assert_true(json_integer_value(du_at(b, "plan.devices.1.model_bytes")) > 0);
	assert_string_equal(arg_after(b, "--rpc"), hp);
	assert_string_equal(arg_after(b, "--device"), "RPC0,RPC1");
	assert_non_null(arg_after(b, "--tensor-split"));
	assert_true(json_is_array(json_object_get(b, "would_evict")));
	json_decref(b);
	char *out = cli("budget a --ctx 512");
	assert_non_null(strstr(out, "  RPC0 "));
	assert_non_null(strstr(out, "  RPC1 "));
	free(out);
	/* loaded so: ps shows both servers */
	json_t *j = post("/load", "{\"model\":\"a\",\"ctx\":512}", 200);
	assert_string_equal(arg_after(j, "--device"), "RPC0,RPC1");
	assert_int_equal(json_array_size(json_object_get(j, "devices")), 2);
	json_decref(j);
	out = cli("ps");
	if (strstr(out, "RPC0 ") == NULL || strstr(out, " + RPC1 ") == NULL)
		fail_msg("ps does not show both devices: %s", out);
	free(out);
	json_decref(post("/unload", "{\"model\":\"a\"}", 200));
	/* split = never (SIGHUP): the same request now plans one server and the CPU */
	write_conf_split(one * 9 / 10, "never");
	kill(dmn.pid, SIGHUP);
	for (int i = 0; i < 200; i++) {
		b = du_get(port, "/vram/budget?model=a&ctx=512");
		if (arg_after(b, "--tensor-split") == NULL)
			break;
		json_decref(b);
		b = NULL;
		usleep(50 * 1000);
	}
	assert_non_null(b);
	assert_string_equal(arg_after(b, "--device"), "RPC0");
	json_decref(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(config_checked),
		cmocka_unit_test(one_model_per_rpc_server),
		cmocka_unit_test(split_over_both_servers),
	};
	int rc = cmocka_run_group_tests(tests, setup, teardown);
	return rc != 0 ? rc : du_stops_failed(); /* every daemon stopped cleanly */
}
