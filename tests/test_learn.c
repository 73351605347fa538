/*
 * test_learn: the overhead each GPU costs beyond the buffers, learned from the loads
 * (scheduler_learn.c). First its figure alone: the median of the last loads, which one
 * wrong reading does not move, a load's growing reading replacing its own sample, and
 * the rows it keeps in a real registry. Then as a user meets it: the real mloffloadd
 * with a real llama-server child on a tiny model and the fake NVML as the GPU, whose
 * process list says the child holds more than its buffers; /vram/budget and
 * `mloffload budget` show the difference as the device's learned overhead, it is still
 * there after a restart, and the next plan on that GPU is smaller by it.
 */
#include "daemonutil.h"

#include "registry.h"
#include "scheduler.h"
#include "scheduler_int.h"
#include "util.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MIB (1024ull * 1024)
#define OVH (4 * MIB) /* what the fake child holds beyond its buffers */

static char *bin, *client, *models, *state, *nvml, *llama_bin;
static struct tu_proc dmn;
static int port;
static uint64_t one;   /* the model's plan on the device, whole */
static uint64_t total; /* the fake GPU's size */

/* ---- the figure ---- */

static void median_ignores_an_outlier(void **st)
{
	uint64_t v[9] = { 300 * MIB, 310 * MIB, 290 * MIB, 300 * MIB };
	assert_int_equal(sched_learn_median(v, 4), 300 * MIB);
	v[4] = 8192 * MIB; /* a reading far off */
	assert_int_equal(sched_learn_median(v, 5), 300 * MIB);
	v[5] = 0; /* and one far off the other way */
	assert_int_equal(sched_learn_median(v, 6), 300 * MIB);
	assert_int_equal(sched_learn_median(v, 1), 300 * MIB);
	assert_int_equal(sched_learn_median(v, 0), 0);
	/* only the newest nine count: ten samples, the oldest of them the outlier */
	uint64_t w[10] = { 9000 * MIB, 1, 1, 1, 1, 1, 1, 1, 1, 1 };
	assert_int_equal(sched_learn_median(w, 10), 1);
}

static void observe_and_keep(void **st)
{
	char err[256], *db = tu_path("learn.sqlite");
	struct registry *reg = registry_open(db, err, sizeof err);
	assert_non_null(reg);
	struct sched_learn *l = sched_learn_new(reg);
	for (long long row = 1; row <= 4; row++)
		sched_learn_observe(l, reg, "GPU-x", "Fake GPU", row, 300 * MIB);
	/* a fifth load reads 8 GiB: the figure stays */
	sched_learn_observe(l, reg, "GPU-x", "Fake GPU", 5, 8192 * MIB);
	/* the same load read again, a little higher: its own sample grows, no new load */
	sched_learn_observe(l, reg, "GPU-x", "Fake GPU", 4, 302 * MIB);
	sched_learn_observe(l, reg, "GPU-y", "Other GPU", 1, 100 * MIB);
	sched_learn_free(l);
	size_t n = 0;
	struct reg_overhead *rows = registry_overheads(reg, &n);
	assert_int_equal(n, 2);
	const struct reg_overhead *x = &rows[0];
	assert_string_equal(x->device, "GPU-x");
	assert_string_equal(x->name, "Fake GPU");
	assert_int_equal(x->loads, 5);
	assert_int_equal(x->bytes, 300 * MIB);
	assert_int_equal(x->n, 5);
	assert_int_equal(x->row[3], 4);
	assert_int_equal(x->sample[3], 302 * MIB);
	assert_string_equal(rows[1].device, "GPU-y");
	assert_int_equal(rows[1].bytes, 100 * MIB);
	free(rows);
	/* a new learner starts from what was kept */
	l = sched_learn_new(reg);
	assert_int_equal(sched_learn_observe(l, reg, "GPU-x", "Fake GPU", 6, 300 * MIB), 0);
	sched_learn_free(l);
	registry_close(reg);
	free(db);
}

/* ---- the daemon ---- */

/* One GPU of `total` bytes; pid (0: none) holds proc bytes on it. */
static void set_gpu(uint64_t tot, int pid, uint64_t proc)
{
	char buf[512];
	int n = snprintf(buf, sizeof buf, "count 1\ngpu 0 name=\"Fake RTX 4060\" "
	    "uuid=GPU-learn-0 total=%llu used=0 temp=40 util=0", (unsigned long long)tot);
	if (pid > 0)
		n += snprintf(buf + n, sizeof buf - (size_t)n, " procs=%d:%llu", pid,
		    (unsigned long long)proc);
	snprintf(buf + n, sizeof buf - (size_t)n, "\n");
	assert_int_equal(tu_write_file(nvml, buf, strlen(buf)), 0);
	total = tot;
}

static void start(void)
{
	char *log = tu_path("daemon.log");
	char *argv[] = { bin, "--listen", "127.0.0.1:0", "--models-dir", models, "--state-dir",
	    state, "--nvml-lib", (char *)FAKE_NVML_PATH, "--reserve", "0", "--llama-server",
	    llama_bin, "--ollama-url", "", "--llama-url", "http://127.0.0.1:9", "--rescan",
	    "0", "--idle-ttl", "0", "--sample-ms", "100", NULL };
	setenv("FAKE_NVML_STATE", nvml, 1);
	assert_int_equal(tu_spawn(&dmn, argv, log), 0);
	port = du_port(&dmn);
	free(log);
}

static int has_model(json_t *j, void *arg)
{
	return json_array_size(json_object_get(j, "models")) >= 1;
}

static int learned(json_t *j, void *arg)
{
	return json_integer_value(du_at(j, "learned_overhead.bytes")) == (json_int_t)OVH;
}

static json_t *post(const char *path, const char *body)
{
	int st;
	json_t *j = du_req(port, "POST", path, body, &st);
	if (st != 200) {
		char *s = j ? json_dumps(j, 0) : NULL;
		fail_msg("POST %s %s: status %d: %s", path, body, st, s ? s : "");
	}
	return j;
}

static int budget_pred(json_t *j, void *arg)
{
	return json_integer_value(du_at(j, "device.budget_bytes")) == *(json_int_t *)arg;
}

/* Waits until the device's budget in /vram/budget is want (the daemon reads the fake
 * GPU every 100 ms); returns that body. */
static json_t *budget_is(uint64_t want)
{
	json_int_t w = (json_int_t)want;
	json_t *b = du_poll(port, "/vram/budget?model=a&ctx=512", budget_pred, &w);
	assert_int_equal(json_integer_value(du_at(b, "device.budget_bytes")), w);
	return b;
}

static void learns_keeps_and_plans_smaller(void **st)
{
	/* nothing learned yet: the whole GPU is the budget, the model fits whole */
	json_t *b = budget_is(total);
	assert_true(json_is_null(json_object_get(b, "learned_overhead")));
	assert_int_equal(json_integer_value(du_at(b, "device.learned_overhead_bytes")), 0);
	json_decref(b);
	json_t *j = post("/load", "{\"model\":\"a\",\"ctx\":512}");
	int pid = (int)json_integer_value(json_object_get(j, "pid"));
	int ngl = (int)json_integer_value(du_at(j, "plan.gpu_layers"));
	assert_int_equal(ngl, 3);
	json_decref(j);
	/* the driver says the child holds its buffers and OVH more */
	set_gpu(total, pid, one + OVH);
	json_t *lb = du_poll(port, "/vram/budget?model=a&ctx=512", learned, NULL);
	assert_string_equal(json_string_value(du_at(lb, "learned_overhead.device")),
	    "GPU-learn-0");
	assert_int_equal(json_integer_value(du_at(lb, "learned_overhead.loads")), 1);
	json_decref(lb);
	json_decref(post("/unload", "{\"model\":\"a\"}"));
	set_gpu(total, 0, 0);
	/* the budget of the next plan is smaller by it: the model no longer fits whole */
	b = budget_is(total - OVH);
	assert_int_equal(json_integer_value(du_at(b, "device.learned_overhead_bytes")), OVH);
	assert_true(json_is_false(json_object_get(b, "fully_on_device_if_free")));
	assert_true(json_integer_value(du_at(b, "plan.gpu_layers")) < 3);
	assert_true(json_integer_value(du_at(b, "plan.devices.0.total_bytes")) <=
	    (json_int_t)(total - OVH));
	json_decref(b);
	/* mloffload budget says it on its own line */
	char *out = tu_path("budget.txt");
	assert_int_equal(tu_sh("'%s' --url http://127.0.0.1:%d budget a --ctx 512 > '%s'", client,
	    port, out), 0);
	size_t len;
	char *txt = (char *)tu_read_file(out, &len);
	assert_non_null(txt);
	assert_non_null(strstr(txt, "learned overhead 4.00 MiB"));
	free(txt);
	free(out);
	/* a restart keeps it (the registry), and the next load plans with it */
	du_stop(&dmn);
	start();
	json_decref(du_poll(port, "/models", has_model, NULL));
	b = budget_is(total - OVH);
	assert_int_equal(json_integer_value(du_at(b, "learned_overhead.bytes")), OVH);
	json_decref(b);
	j = post("/load", "{\"model\":\"a\",\"ctx\":512}");
	assert_true(json_integer_value(du_at(j, "plan.gpu_layers")) < 3);
	json_decref(j);
	json_decref(post("/unload", "{\"model\":\"a\"}"));
}

static int setup(void **st)
{
	const char *bd = getenv("MLO_BUILD_DIR");
	char *root = tu_llama_root();
	if (root == NULL)
		return -1;
	llama_bin = xasprintf("%s/build/bin/llama-server", root);
	free(root);
	bin = xasprintf("%s/mloffloadd", bd);
	client = xasprintf("%s/mloffload", bd);
	models = tu_path("models");
	state = tu_path("state");
	nvml = tu_path("nvml.txt");
	mkdir(models, 0755);
	char *p = xasprintf("%s/a.gguf", models);
	du_gen("tiny", p, NULL, 1, 1);
	free(p);
	set_gpu(1ull << 30, 0, 0);
	start();
	json_decref(du_poll(port, "/models", has_model, NULL));
	/* the GPU holds the model whole with half the overhead to spare, not with all of it */
	json_t *b = du_get(port, "/vram/budget?model=a&ctx=512");
	one = (uint64_t)json_integer_value(du_at(b, "plan.devices.0.total_bytes"));
	json_decref(b);
	assert_true(one > 1000000);
	set_gpu(one + OVH / 2, 0, 0);
	return 0;
}

static int teardown(void **st)
{
	du_stop(&dmn);
	free(bin);
	free(client);
	free(models);
	free(state);
	free(nvml);
	free(llama_bin);
	return 0;
}

int main(void)
{
	const struct CMUnitTest units[] = {
		cmocka_unit_test(median_ignores_an_outlier),
		cmocka_unit_test(observe_and_keep),
	};
	const struct CMUnitTest daemon[] = {
		cmocka_unit_test(learns_keeps_and_plans_smaller),
	};
	int rc = cmocka_run_group_tests(units, NULL, NULL);
	rc |= cmocka_run_group_tests(daemon, setup, teardown);
	return rc != 0 ? rc : du_stops_failed(); /* every daemon stopped cleanly */
}
