/*
 * test_sched_devices: the scheduler's decisions over several devices, in milliseconds,
 * with the world of test_sched (schedworld.c: a real scheduler and registry, the fake
 * NVML, fake_llama.c in place of the children). Cases: two GPUs whose budgets each hold
 * one of two models (both resident, one per GPU, no eviction, each child pinned with
 * --device); two RPC servers that each serve one client at a time (the second model
 * goes to the other server even where memory would allow both, RPC numbering is per
 * child, a third model runs on the CPU with the reason, or waits while they are busy;
 * an idle one is evicted only from the device the new load needs; a child killed frees
 * only its server); a model no GPU holds alone, split over two with split auto and kept
 * on one with split never (per load and in the configuration); a llama-server binary
 * that does not offer the planned device (--list-devices): its k-th GPU for NVML's k-th
 * when it counts as many, unpinned when it offers no GPU, else the load refused.
 */
#include "config.h"
#include "fake_llama.h"
#include "schedworld.h"
#include "scheduler.h"
#include "testutil.h"
#include "util.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <cmocka.h>

/* The value of flag in id's child command line (asserted present), borrowed. */
static const char *arg_of(const char *id, const char *flag)
{
	struct llama *l = fake_llama_find(id);
	assert_non_null(l);
	return fake_llama_arg(l, flag);
}

/* The ids of the devices id's plan uses, comma-separated, into out. */
static void devices_of(struct sw_world *w, const char *id, char *out, size_t len)
{
	json_t *m = sched_model_json(w->s, id), *d;
	assert_non_null(m);
	size_t i;
	out[0] = '\0';
	json_array_foreach(json_object_get(m, "devices"), i, d) {
		size_t l = strlen(out);
		snprintf(out + l, len - l, "%s%s", i ? "," : "",
		    json_string_value(json_object_get(d, "id")));
	}
	json_decref(m);
}

/* The device of /vram's view with that id (borrowed from all), or NULL. */
static json_t *view_of(json_t *all, const char *id)
{
	size_t i;
	json_t *d;
	json_array_foreach(all, i, d)
		if (strcmp(json_string_value(json_object_get(d, "id")), id) == 0)
			return d;
	return NULL;
}

static void two_rpc(struct sw_world *w, uint64_t budget)
{
	sw_set_gpus(w, 0, 0, NULL); /* no GPU: the RPC servers are the devices */
	w->cfg.n_rpc_devices = 2;
	snprintf(w->cfg.rpc_devices[0].addr, sizeof w->cfg.rpc_devices[0].addr,
	    "127.0.0.1:50052");
	snprintf(w->cfg.rpc_devices[1].addr, sizeof w->cfg.rpc_devices[1].addr,
	    "127.0.0.1:50053");
	w->cfg.rpc_devices[0].budget = w->cfg.rpc_devices[1].budget = budget;
}

static void two_gpus_one_model_each(void **state)
{
	struct sw_world *w = *state;
	uint64_t one = sw_one_small(w);
	sw_set_gpus(w, 2, w->cfg.reserve + one * 3 / 2, NULL);
	struct sched_opts o = sw_opts();
	sw_load_ready(w, w->ids[0], &o);
	sw_load_ready(w, w->ids[1], &o);
	/* both resident, nobody evicted, one on each GPU, each child pinned to it */
	assert_false(fake_llama_stopping(fake_llama_find(w->ids[0])));
	assert_string_equal(arg_of(w->ids[0], "--device"), "CUDA0");
	assert_string_equal(arg_of(w->ids[1], "--device"), "CUDA1");
	assert_null(arg_of(w->ids[1], "--rpc"));
	char devs[256];
	devices_of(w, w->ids[1], devs, sizeof devs);
	assert_string_equal(devs, "gpu1");
	json_t *all = sched_devices_json(w->s);
	assert_int_equal(json_array_size(all), 2);
	json_t *g1 = view_of(all, "gpu1");
	assert_non_null(g1);
	assert_string_equal(json_string_value(json_object_get(g1, "name")), "CUDA1");
	assert_int_equal(json_array_size(json_object_get(g1, "models")), 1);
	json_decref(all);
	sw_unload_all(w);
}

static void rpc_servers_serve_one_client_each(void **state)
{
	struct sw_world *w = *state;
	two_rpc(w, 40ull << 30); /* room for every model: only the one-client rule limits */
	struct sched_opts o = sw_opts();
	o.pin = 1;
	sw_load_ready(w, w->ids[0], &o);
	sw_load_ready(w, w->ids[1], &o);
	assert_string_equal(arg_of(w->ids[0], "--rpc"), "127.0.0.1:50052");
	assert_string_equal(arg_of(w->ids[0], "--device"), "RPC0");
	/* the second server, numbered from 0 in its own child */
	assert_string_equal(arg_of(w->ids[1], "--rpc"), "127.0.0.1:50053");
	assert_string_equal(arg_of(w->ids[1], "--device"), "RPC0");
	char devs[256];
	devices_of(w, w->ids[1], devs, sizeof devs);
	assert_string_equal(devs, "RPC1[127.0.0.1:50053]");
	/* a third with both servers serving pinned models: the CPU, and why */
	sw_load_ready(w, w->ids[2], &o);
	assert_string_equal(arg_of(w->ids[2], "--device"), "none");
	assert_string_equal(arg_of(w->ids[2], "-ngl"), "0");
	assert_null(arg_of(w->ids[2], "--rpc"));
	json_t *m = sched_model_json(w->s, w->ids[2]);
	const char *why = json_string_value(json_object_get(m, "plan_reason"));
	assert_non_null(why);
	assert_non_null(strstr(why, "one client at a time"));
	json_decref(m);
	struct sw_told t;
	sched_unload(w->s, w->ids[2], sw_to(&t));
	fake_llama_reap();
	/* busy and unpinned: a load that would rather wait waits, starting nothing */
	struct sched_opts up = sw_opts(); /* a load of a ready model sets its pin again */
	for (int i = 0; i < 2; i++) {
		sched_load(w->s, w->ids[i], &up, sw_to(&t));
		assert_int_equal(t.status, 200);
	}
	sched_hold(w->s, w->ids[0], 1);
	sched_hold(w->s, w->ids[1], 1);
	struct sched_opts qb = sw_opts();
	qb.queue_busy = 1;
	struct sched_use u;
	memset(&u, 0, sizeof u);
	assert_int_equal(sched_acquire(w->s, w->ids[2], &qb, &u), SA_BUSY);
	assert_null(fake_llama_find(w->ids[2]));
	/* 1 done and idle: only it leaves, and 2 takes its server */
	sched_hold(w->s, w->ids[1], -1);
	assert_int_equal(sched_acquire(w->s, w->ids[2], &qb, &u), SA_WAIT);
	assert_true(fake_llama_stopping(fake_llama_find(w->ids[1])));
	assert_false(fake_llama_stopping(fake_llama_find(w->ids[0])));
	assert_int_equal(fake_llama_reap(), 1);
	fake_llama_ready(fake_llama_find(w->ids[2]));
	devices_of(w, w->ids[2], devs, sizeof devs);
	assert_string_equal(devs, "RPC1[127.0.0.1:50053]");
	sched_hold(w->s, w->ids[0], -1);
	/* a child killed frees its server only */
	fake_llama_exit(fake_llama_find(w->ids[0]), SIGKILL);
	json_t *all = sched_devices_json(w->s);
	assert_true(json_is_null(json_object_get(view_of(all, "RPC0[127.0.0.1:50052]"),
	    "serving")));
	assert_string_equal(json_string_value(json_object_get(view_of(all,
	    "RPC1[127.0.0.1:50053]"), "serving")), w->ids[2]);
	json_decref(all);
	sw_unload_all(w);
	w->cfg.n_rpc_devices = 0;
}

/* Loads the big model with split (o.split) on two GPUs that each hold 60% of it. */
static void load_big_on_two(struct sw_world *w, uint64_t big, int split)
{
	sw_set_gpus(w, 2, w->cfg.reserve + big * 6 / 10, NULL);
	struct sched_opts o = sw_opts();
	o.split = split;
	sw_load_ready(w, w->big, &o);
}

static void split_auto_and_never(void **state)
{
	struct sw_world *w = *state;
	struct sched_opts o = sw_opts();
	sw_load_ready(w, w->big, &o);
	uint64_t big = sw_planned_device_bytes(w, w->big);
	sw_unload_all(w);
	/* auto: over both GPUs, whole */
	load_big_on_two(w, big, 0);
	char devs[256];
	devices_of(w, w->big, devs, sizeof devs);
	assert_string_equal(devs, "gpu0,gpu1");
	assert_string_equal(arg_of(w->big, "--device"), "CUDA0,CUDA1");
	assert_non_null(arg_of(w->big, "--tensor-split"));
	sw_unload_all(w);
	/* never, asked by the load: one GPU, the rest on the CPU */
	load_big_on_two(w, big, -1);
	devices_of(w, w->big, devs, sizeof devs);
	assert_string_equal(devs, "gpu0");
	assert_string_equal(arg_of(w->big, "--device"), "CUDA0");
	assert_null(arg_of(w->big, "--tensor-split"));
	sw_unload_all(w);
	/* never, from the configuration */
	w->cfg.split = CONFIG_SPLIT_NEVER;
	load_big_on_two(w, big, 0);
	devices_of(w, w->big, devs, sizeof devs);
	assert_string_equal(devs, "gpu0");
	sw_unload_all(w);
	/* a load's auto beats the configuration's never */
	load_big_on_two(w, big, 1);
	devices_of(w, w->big, devs, sizeof devs);
	assert_string_equal(devs, "gpu0,gpu1");
	sw_unload_all(w);
	w->cfg.split = CONFIG_SPLIT_AUTO;
}

/* Loads id on a fresh binary path whose --list-devices says offered; returns the
 * outcome (t) and leaves a started child ready. */
static void load_with_binary(struct sw_world *w, const char *id, const char *bin,
    const char *offered, struct sw_told *t)
{
	w->cfg.llama_server = (char *)bin;
	fake_llama_set_devices(offered);
	struct sched_opts o = sw_opts();
	sched_load(w->s, id, &o, sw_to(t));
	if (fake_llama_find(id) != NULL)
		fake_llama_ready(fake_llama_find(id));
}

/* A binary that does not offer the planned device: mapped by order when it counts the
 * machine's GPUs, unpinned when it has no GPU, refused otherwise (never spread). */
static void binary_without_the_planned_device(void **state)
{
	struct sw_world *w = *state;
	uint64_t one = sw_one_small(w);
	sw_set_gpus(w, 2, w->cfg.reserve + one * 3 / 2, NULL);
	struct sw_told t;
	/* a Vulkan build on two NVIDIA GPUs: NVML's k-th is its k-th */
	load_with_binary(w, w->ids[0], "llama-server-vulkan", "Vulkan0,Vulkan1", &t);
	assert_int_equal(t.status, 200);
	load_with_binary(w, w->ids[1], "llama-server-vulkan", "Vulkan0,Vulkan1", &t);
	assert_int_equal(t.status, 200);
	assert_string_equal(arg_of(w->ids[0], "--device"), "Vulkan0");
	assert_string_equal(arg_of(w->ids[1], "--device"), "Vulkan1");
	sw_unload_all(w);
	sw_set_gpus(w, 2, w->cfg.reserve + one * 3 / 2, NULL);
	/* a binary with one GPU of another name while NVML has two: refused, with both */
	load_with_binary(w, w->ids[0], "llama-server-one", "Vulkan0,BLAS", &t);
	assert_int_equal(t.status, 500);
	assert_null(fake_llama_find(w->ids[0]));
	assert_non_null(strstr(t.message, "CUDA0"));
	assert_non_null(strstr(t.message, "Vulkan0"));
	assert_non_null(strstr(t.message, "would spread"));
	/* a CPU-only build: nothing to pin, no --device */
	load_with_binary(w, w->ids[0], "llama-server-cpu", "", &t);
	assert_int_equal(t.status, 200);
	assert_null(arg_of(w->ids[0], "--device"));
	sw_unload_all(w);
	sw_set_gpus(w, 2, w->cfg.reserve + one * 3 / 2, NULL);
	/* the planned name offered: as planned */
	load_with_binary(w, w->ids[0], "llama-server-cuda", "CUDA0,CUDA1", &t);
	assert_int_equal(t.status, 200);
	assert_string_equal(arg_of(w->ids[0], "--device"), "CUDA0");
	sw_unload_all(w);
	fake_llama_set_devices(NULL);
	w->cfg.llama_server = (char *)"llama-server";
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(two_gpus_one_model_each),
		cmocka_unit_test(rpc_servers_serve_one_client_each),
		cmocka_unit_test(split_auto_and_never),
		cmocka_unit_test(binary_without_the_planned_device),
	};
	return cmocka_run_group_tests(tests, sw_setup, sw_teardown);
}
