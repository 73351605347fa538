/*
 * test_sched: the scheduler's decisions in milliseconds, with no HTTP and no
 * llama-server: the real scheduler over a real registry (SQLite in the test's folder,
 * filled by a real scan of generated shape-only models), the device monitor reading
 * the fake NVML and a fake /proc/meminfo, and fake_llama.c in place of the children.
 * Outcomes arrive through the scheduler's reply callback, as the HTTP layer gets them.
 * Cases: eviction order (least recently used, priority before recency), pinned and
 * busy models never evicted, offload when eviction cannot make room and 507 with
 * offload "gpu", exclusive groups, outside pressure, switches to a model whose load
 * waits, a child that dies while two loads wait for it, unknown models and loads that
 * do not wait.
 */
#include "config.h"
#include "schedworld.h"
#include "device.h"
#include "fake_llama.h"
#include "registry.h"
#include "scan.h"
#include "scheduler.h"
#include "scheduler_int.h"   /* sched_learn_observe: a learned overhead */
#include "shapes.h"
#include "testutil.h"
#include "util.h"

#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <setjmp.h>
#include <cmocka.h>

static void evicts_least_recently_used(void **state)
{
	struct sw_world *w = *state;
	uint64_t one = sw_one_small(w);
	sw_gpu_for(w, one, 2.5);
	struct sched_opts o = sw_opts();
	sw_load_ready(w, w->ids[0], &o);
	sw_load_ready(w, w->ids[1], &o);
	sw_tick_clock();
	sched_hold(w->s, w->ids[0], 1); /* a request to 0: it is the more recent now */
	sched_hold(w->s, w->ids[0], -1);
	struct sw_told t;
	sched_load(w->s, w->ids[2], &o, sw_to(&t));
	assert_int_equal(t.n, 0);
	assert_true(fake_llama_stopping(fake_llama_find(w->ids[1])));
	assert_false(fake_llama_stopping(fake_llama_find(w->ids[0])));
	assert_null(fake_llama_find(w->ids[2])); /* not before 1 has exited */
	assert_int_equal(fake_llama_reap(), 1);
	struct llama *l = fake_llama_find(w->ids[2]);
	assert_non_null(l);
	fake_llama_ready(l);
	assert_int_equal(t.status, 200);
	assert_non_null(fake_llama_find(w->ids[0]));
	sw_unload_all(w);
}

static void priority_before_recency(void **state)
{
	struct sw_world *w = *state;
	uint64_t one = sw_one_small(w);
	sw_gpu_for(w, one, 2.5);
	struct sched_opts lo = sw_opts(), hi = sw_opts();
	hi.priority = 5;
	sw_load_ready(w, w->ids[0], &hi);  /* the least recently used, but it matters more */
	sw_tick_clock();
	sw_load_ready(w, w->ids[1], &lo);
	struct sw_told t;
	sched_load(w->s, w->ids[2], &lo, sw_to(&t));
	assert_true(fake_llama_stopping(fake_llama_find(w->ids[1])));
	assert_false(fake_llama_stopping(fake_llama_find(w->ids[0])));
	fake_llama_reap();
	fake_llama_ready(fake_llama_find(w->ids[2]));
	assert_int_equal(t.status, 200);
	sw_unload_all(w);
}

static void pinned_and_busy_stay_then_offload(void **state)
{
	struct sw_world *w = *state;
	uint64_t one = sw_one_small(w);
	sw_gpu_for(w, one, 2.5);
	struct sched_opts o = sw_opts(), pin = sw_opts();
	pin.pin = 1;
	sw_load_ready(w, w->ids[0], &pin);
	sw_load_ready(w, w->ids[1], &o);
	sched_hold(w->s, w->ids[1], 1); /* a request in flight */
	/* nothing can leave: the third is planned with part of it on the CPU */
	struct sw_told t;
	sched_load(w->s, w->ids[2], &o, sw_to(&t));
	struct llama *l = fake_llama_find(w->ids[2]);
	assert_non_null(l);
	assert_false(fake_llama_stopping(fake_llama_find(w->ids[0])));
	assert_false(fake_llama_stopping(fake_llama_find(w->ids[1])));
	const char *ngl = fake_llama_arg(l, "-ngl");
	assert_non_null(ngl);
	assert_true(strtol(ngl, NULL, 10) < 16); /* Llama-3.2-1B has 16 layers */
	assert_true(sw_planned_device_bytes(w, w->ids[2]) < one);
	fake_llama_ready(l);
	assert_int_equal(t.status, 200);
	/* offload "gpu" refuses instead, saying why */
	struct sched_opts g = sw_opts();
	g.offload = PLAN_GPU;
	sched_load(w->s, w->ids[3], &g, sw_to(&t));
	assert_int_equal(t.n, 1);
	assert_int_equal(t.status, 507);
	assert_string_equal(t.code, "does_not_fit");
	assert_null(fake_llama_find(w->ids[3]));
	/* the OpenAI routes' way (queue_busy): wait for the busy model, not offload */
	struct sched_use u;
	memset(&u, 0, sizeof u);
	struct sched_opts qb = sw_opts();
	qb.queue_busy = 1;
	sched_unload(w->s, w->ids[2], sw_to(&t));
	fake_llama_reap();
	assert_int_equal(sched_acquire(w->s, w->ids[3], &qb, &u), SA_BUSY);
	assert_null(fake_llama_find(w->ids[3]));
	sched_hold(w->s, w->ids[1], -1);
	sw_unload_all(w);
}

static void exclusive_group_leaves_first(void **state)
{
	struct sw_world *w = *state;
	/* exclusive = "ID0 ID1", as config.c parses it */
	w->cfg.exclusive[0] = (struct config_group){ .ids = { w->ids[0], w->ids[1] },
		.n_ids = 2 };
	w->cfg.n_exclusive = 1;
	struct sched_opts o = sw_opts();
	o.pin = 1; /* a pin does not keep a model beside its group's mate */
	sw_load_ready(w, w->ids[0], &o);
	sw_load_ready(w, w->ids[2], &o);
	struct sw_told t;
	sched_load(w->s, w->ids[1], &o, sw_to(&t));
	assert_true(fake_llama_stopping(fake_llama_find(w->ids[0])));
	assert_false(fake_llama_stopping(fake_llama_find(w->ids[2])));
	assert_null(fake_llama_find(w->ids[1]));
	fake_llama_reap();
	fake_llama_ready(fake_llama_find(w->ids[1]));
	assert_int_equal(t.status, 200);
	w->cfg.n_exclusive = 0;
	sw_unload_all(w);
}

static void outside_pressure_unloads_idle(void **state)
{
	struct sw_world *w = *state;
	uint64_t one = sw_one_small(w);
	uint64_t total = w->cfg.reserve + 4 * one;
	w->cfg.pressure_action = CONFIG_PRESSURE_UNLOAD; /* the ladder's axe: as before it */
	sw_set_gpu(w, total, 0);
	struct sched_opts o = sw_opts(), pin = sw_opts();
	pin.pin = 1;
	sw_load_ready(w, w->ids[0], &pin);
	sw_load_ready(w, w->ids[1], &o);
	/* another program takes the rest of the GPU */
	sw_set_gpu(w, total, total - total / 50);
	sched_tick(w->s);
	assert_true(fake_llama_stopping(fake_llama_find(w->ids[1])));
	assert_false(fake_llama_stopping(fake_llama_find(w->ids[0]))); /* pinned */
	fake_llama_reap();
	sw_set_gpu(w, total, 2 * one);
	sched_tick(w->s);
	assert_non_null(fake_llama_find(w->ids[0]));
	assert_string_equal(fake_llama_arg(fake_llama_find(w->ids[0]), "-ngl"), "17");
	uint64_t shrinks, grows, unloads;
	sched_pressure_totals(w->s, &shrinks, &grows, &unloads);
	assert_int_equal(shrinks, 0);
	assert_int_equal(unloads, 1);
	w->cfg.pressure_action = CONFIG_PRESSURE_SHRINK;
	sw_unload_all(w);
}

/* ---- the pressure ladder ---- */

/* The model's /status view: its pressure object's "plan" (full, shrunk, ...). */
static void assert_plan_state(struct sw_world *w, const char *id, const char *want)
{
	json_t *m = sched_model_json(w->s, id);
	assert_non_null(m);
	const char *st = json_string_value(json_object_get(json_object_get(m, "pressure"),
	    "plan"));
	assert_non_null(st);
	assert_string_equal(st, want);
	json_decref(m);
}

static long ngl_of(const char *id)
{
	struct llama *l = fake_llama_find(id);
	assert_non_null(l);
	const char *v = fake_llama_arg(l, "-ngl");
	assert_non_null(v);
	return strtol(v, NULL, 10);
}

/* Children asked to stop exit; the ones started after them become ready. */
static void settle_children(struct sw_world *w)
{
	fake_llama_reap();
	for (int i = 0; i < N_SMALL; i++) {
		struct llama *l = fake_llama_find(w->ids[i]);
		if (l != NULL && !fake_llama_stopping(l))
			fake_llama_ready(l);
	}
}

/* The GPU reads outside + what this daemon's models are planned to hold (the driver's
 * view of them), and the scheduler looks. */
static void outside(struct sw_world *w, uint64_t total, uint64_t others, const char *id)
{
	sw_set_gpu(w, total, others + sw_planned_device_bytes(w, id));
	sched_tick(w->s);
}

static void outside_pressure_shrinks_then_grows_back(void **state)
{
	struct sw_world *w = *state;
	uint64_t one = sw_one_small(w);
	uint64_t total = w->cfg.reserve + 2 * one;
	sw_set_gpu(w, total, 0);
	struct sched_opts o = sw_opts();
	sw_load_ready(w, w->ids[0], &o);
	assert_int_equal(ngl_of(w->ids[0]), 17);
	assert_plan_state(w, w->ids[0], "full");
	uint64_t s0, g0, u0;
	sched_pressure_totals(w->s, &s0, &g0, &u0);
	/* a game takes the GPU past pressure_high: the model shrinks instead of leaving */
	uint64_t game = total - total / 50 - one;
	outside(w, total, game, w->ids[0]);
	assert_true(fake_llama_stopping(fake_llama_find(w->ids[0])));
	assert_int_equal(fake_llama_reap(), 1);
	struct llama *l = fake_llama_find(w->ids[0]);
	assert_non_null(l); /* started again at once, with less on the GPU */
	assert_true(ngl_of(w->ids[0]) < 17);
	assert_plan_state(w, w->ids[0], "shrinking");
	/* a request during the shrink waits for the new child */
	struct sched_use u;
	memset(&u, 0, sizeof u);
	struct sched_opts qb = sw_opts();
	qb.queue_busy = 1;
	assert_int_equal(sched_acquire(w->s, w->ids[0], &qb, &u), SA_WAIT);
	struct sw_told t;
	sched_load(w->s, w->ids[0], &o, sw_to(&t));
	assert_int_equal(t.n, 0);
	fake_llama_ready(l);
	assert_int_equal(t.status, 200);
	assert_int_equal(sched_acquire(w->s, w->ids[0], &qb, &u), SA_READY);
	assert_plan_state(w, w->ids[0], "shrunk");
	json_t *m = sched_model_json(w->s, w->ids[0]);
	assert_non_null(strstr(json_string_value(sw_du_at_path(m, "pressure", "reason")),
	    "pressure"));
	json_decref(m);
	uint64_t shrunk = sw_planned_device_bytes(w, w->ids[0]);
	assert_true(shrunk < one);
	/* the game still runs: the GPU is under pressure_low, nothing moves */
	outside(w, total, game, w->ids[0]);
	assert_false(fake_llama_stopping(fake_llama_find(w->ids[0])));
	/* the game ends: after regrow_hold_s the model is back at its full plan */
	outside(w, total, 0, w->ids[0]);
	w->clock_add += 29 * 1000;
	outside(w, total, 0, w->ids[0]);
	assert_false(fake_llama_stopping(fake_llama_find(w->ids[0])));
	w->clock_add += 2 * 1000;
	outside(w, total, 0, w->ids[0]);
	assert_true(fake_llama_stopping(fake_llama_find(w->ids[0])));
	settle_children(w);
	assert_int_equal(ngl_of(w->ids[0]), 17);
	assert_plan_state(w, w->ids[0], "full");
	uint64_t shrinks, grows, unloads;
	sched_pressure_totals(w->s, &shrinks, &grows, &unloads);
	assert_int_equal(shrinks - s0, 1);
	assert_int_equal(grows - g0, 1);
	assert_int_equal(unloads - u0, 0);
	sw_unload_all(w);
}

static void flapping_pressure_reloads_once(void **state)
{
	struct sw_world *w = *state;
	uint64_t one = sw_one_small(w);
	uint64_t total = w->cfg.reserve + 2 * one;
	sw_set_gpu(w, total, 0);
	struct sched_opts o = sw_opts();
	sw_load_ready(w, w->ids[0], &o);
	uint64_t s0, g0, u0, s1, g1, u1;
	sched_pressure_totals(w->s, &s0, &g0, &u0);
	unsigned started = fake_llama_started();
	uint64_t game = total - total / 50 - one;
	/* a program takes and frees its memory at every tick, for three hold periods */
	for (int i = 0; i < 24; i++) {
		outside(w, total, i % 2 == 0 ? game : 0, w->ids[0]);
		settle_children(w);
		w->clock_add += (uint64_t)w->cfg.regrow_hold_s * 1000 / 8;
	}
	sched_pressure_totals(w->s, &s1, &g1, &u1);
	assert_int_equal(s1 - s0, 1);    /* one shrink, at the first peak */
	assert_true(g1 - g0 <= 3);       /* at most one grow per hold period */
	assert_true(fake_llama_started() - started <= 1 + 2 * 3);
	assert_int_equal(u1 - u0, 0);
	assert_non_null(fake_llama_find(w->ids[0]));
	sw_unload_all(w);
}

static void busy_pinned_model_is_drained_then_shrunk(void **state)
{
	struct sw_world *w = *state;
	uint64_t one = sw_one_small(w);
	uint64_t total = w->cfg.reserve + 2 * one;
	sw_set_gpu(w, total, 0);
	struct sched_opts pin = sw_opts();
	pin.pin = 1;
	sw_load_ready(w, w->ids[0], &pin);
	sched_hold(w->s, w->ids[0], 1); /* a request in flight */
	outside(w, total, total - total / 50 - one, w->ids[0]);
	/* drained first: the child stays while its request runs, new ones wait */
	assert_false(fake_llama_stopping(fake_llama_find(w->ids[0])));
	struct sched_use u;
	memset(&u, 0, sizeof u);
	struct sched_opts qb = sw_opts();
	qb.queue_busy = 1;
	assert_int_equal(sched_acquire(w->s, w->ids[0], &qb, &u), SA_WAIT);
	json_t *m = sched_model_json(w->s, w->ids[0]);
	assert_true(json_is_true(sw_du_at_path(m, "pressure", "draining")));
	json_decref(m);
	/* the request ends: the reload starts, and the waiting request is served by it */
	sched_hold(w->s, w->ids[0], -1);
	assert_true(fake_llama_stopping(fake_llama_find(w->ids[0])));
	fake_llama_reap();
	assert_true(ngl_of(w->ids[0]) < 17);
	assert_int_equal(sched_acquire(w->s, w->ids[0], &qb, &u), SA_WAIT);
	fake_llama_ready(fake_llama_find(w->ids[0]));
	assert_int_equal(sched_acquire(w->s, w->ids[0], &qb, &u), SA_READY);
	assert_plan_state(w, w->ids[0], "shrunk");
	sw_unload_all(w);
}

static void shrink_whose_child_dies_fails(void **state)
{
	struct sw_world *w = *state;
	uint64_t one = sw_one_small(w);
	uint64_t total = w->cfg.reserve + 2 * one;
	sw_set_gpu(w, total, 0);
	struct sched_opts o = sw_opts();
	sw_load_ready(w, w->ids[0], &o);
	outside(w, total, total - total / 50 - one, w->ids[0]);
	fake_llama_reap();
	struct sw_told t;
	sched_load(w->s, w->ids[0], &o, sw_to(&t)); /* waits for the new child */
	assert_int_equal(t.n, 0);
	fake_llama_exit(fake_llama_find(w->ids[0]), 1 << 8);
	assert_int_equal(t.status, 502);
	json_t *m = sched_model_json(w->s, w->ids[0]);
	assert_string_equal(json_string_value(json_object_get(m, "state")), "failed");
	json_decref(m);
	/* nothing is left half-way: the next load starts a child */
	sw_load_ready(w, w->ids[0], &o);
	sw_unload_all(w);
}

static void per_model_settings(void **state)
{
	struct sw_world *w = *state;
	uint64_t one = sw_one_small(w);
	uint64_t total = w->cfg.reserve + 2 * one;
	uint64_t game = total - total / 50 - one;
	sw_set_gpu(w, total, 0);
	/* POST /load's "pressure_action": "unload": this model leaves, as before the ladder */
	struct sched_opts o = sw_opts();
	o.pressure_action = SCHED_PRESSURE_UNLOAD;
	sw_load_ready(w, w->ids[0], &o);
	outside(w, total, game, w->ids[0]);
	assert_true(fake_llama_stopping(fake_llama_find(w->ids[0])));
	fake_llama_reap();
	assert_null(fake_llama_find(w->ids[0]));
	assert_null(sched_model_json(w->s, w->ids[0]));
	/* "regrow": false: it shrinks, and stays shrunk when the memory returns */
	sw_set_gpu(w, total, 0);
	sched_tick(w->s);
	w->clock_add += 60 * 1000;
	o = sw_opts();
	o.regrow = -1;
	sw_load_ready(w, w->ids[0], &o);
	outside(w, total, game, w->ids[0]);
	settle_children(w);
	assert_plan_state(w, w->ids[0], "shrunk");
	outside(w, total, 0, w->ids[0]);
	w->clock_add += 120 * 1000;
	outside(w, total, 0, w->ids[0]);
	assert_false(fake_llama_stopping(fake_llama_find(w->ids[0])));
	assert_true(ngl_of(w->ids[0]) < 17);
	sw_unload_all(w);
}

static void drain_has_a_deadline(void **state)
{
	struct sw_world *w = *state;
	uint64_t one = sw_one_small(w);
	uint64_t total = w->cfg.reserve + 2 * one;
	sw_set_gpu(w, total, 0);
	struct sched_opts o = sw_opts();
	sw_load_ready(w, w->ids[0], &o);
	sched_hold(w->s, w->ids[0], 1); /* a request that never ends */
	outside(w, total, total - total / 50 - one, w->ids[0]);
	assert_false(fake_llama_stopping(fake_llama_find(w->ids[0])));
	w->clock_add += (uint64_t)w->cfg.drain_timeout_s * 1000;
	sched_tick(w->s);
	assert_true(fake_llama_stopping(fake_llama_find(w->ids[0]))); /* reloaded anyway */
	fake_llama_reap();
	assert_true(ngl_of(w->ids[0]) < 17);
	sched_hold(w->s, w->ids[0], -1); /* the cut request ends */
	sw_unload_all(w);
}

static void second_switch_is_refused_with_retry(void **state)
{
	struct sw_world *w = *state;
	struct sched_opts o = sw_opts();
	sw_load_ready(w, w->ids[0], &o);
	sw_load_ready(w, w->ids[2], &o);
	struct sw_told t1, t2, t3;
	sched_switch(w->s, w->ids[0], w->ids[1], &o, sw_to(&t1));
	assert_int_equal(t1.n, 0); /* waits for 0 to leave */
	assert_true(fake_llama_stopping(fake_llama_find(w->ids[0])));
	/* the same switch again joins the waiting load */
	sched_switch(w->s, w->ids[0], w->ids[1], &o, sw_to(&t2));
	assert_int_equal(t2.status, 202);
	assert_string_equal(t2.state, "queued");
	/* another model cannot be switched out for a load that already waits */
	sched_switch(w->s, w->ids[2], w->ids[1], &o, sw_to(&t3));
	assert_int_equal(t3.status, 503);
	assert_string_equal(t3.code, "queue_full");
	assert_int_equal(t3.retry_after_s, 5);
	assert_false(fake_llama_stopping(fake_llama_find(w->ids[2])));
	fake_llama_reap();
	fake_llama_ready(fake_llama_find(w->ids[1]));
	assert_int_equal(t1.status, 200);
	sw_unload_all(w);
}

static void child_dies_while_loading(void **state)
{
	struct sw_world *w = *state;
	struct sched_opts o = sw_opts();
	struct sw_told a, b;
	unsigned changes = w->changes, started = fake_llama_started();
	sched_load(w->s, w->big, &o, sw_to(&a));
	sched_load(w->s, w->big, &o, sw_to(&b)); /* a second caller waits for the same child */
	assert_int_equal(fake_llama_started(), started + 1); /* one child for both */
	struct llama *l = fake_llama_find(w->big);
	assert_non_null(l);
	fake_llama_exit(l, 1 << 8); /* exit status 1 */
	assert_int_equal(a.status, 502);
	assert_int_equal(b.status, 502);
	assert_string_equal(a.code, "backend_failed");
	assert_true(w->changes > changes); /* the /v1 side was told */
	/* the next load tries again */
	sw_load_ready(w, w->big, &o);
	sw_unload_all(w);
}

static void unknown_and_no_wait(void **state)
{
	struct sw_world *w = *state;
	struct sw_told t;
	struct sched_opts o = sw_opts();
	sched_load(w->s, "no-such-model", &o, sw_to(&t));
	assert_int_equal(t.status, 404);
	assert_string_equal(t.code, "model_not_found");
	o.wait = 0;
	sched_load(w->s, w->ids[0], &o, sw_to(&t));
	assert_int_equal(t.n, 1);
	assert_int_equal(t.status, 202);
	assert_string_equal(t.state, "loading");
	fake_llama_ready(fake_llama_find(w->ids[0]));
	sched_unload(w->s, w->ids[0], sw_to(&t));
	assert_int_equal(t.n, 0); /* answered when the child is gone */
	fake_llama_reap();
	assert_int_equal(t.status, 200);
	assert_string_equal(t.state, "unloaded");
}

/* The GPU reads outside, what id is planned to hold there and, while it holds
 * something, its child's overhead ovh (the driver's view); the scheduler looks. */
static void outside_ovh(struct sw_world *w, uint64_t total, uint64_t others, const char *id,
    uint64_t ovh)
{
	uint64_t mine = sw_planned_device_bytes(w, id);
	sw_set_gpu(w, total, others + mine + (mine > 0 ? ovh : 0));
	sched_tick(w->s);
}

/* The ladder counts the learned overhead: moving a model wholly to the CPU frees its
 * overhead too (a shrink, not an unload), and growing it back from the CPU leaves room
 * for the new child's overhead (the GPU stays under pressure_low). */
static void ladder_counts_learned_overhead(void **state)
{
	struct sw_world *w = *state;
	uint64_t one = sw_one_small(w), reserve = w->cfg.reserve, ovh = one / 2;
	w->cfg.reserve = one / 2; /* pressure: others eat into it */
	for (long long row = 1; row <= 3; row++)
		sched_learn_observe(w->s->learn, w->reg, "GPU-fake", "Fake GPU", -row, ovh);
	uint64_t total = 10 * one, low = total / 100 * w->cfg.pressure_low;
	sw_set_gpu(w, total, 0);
	struct sched_opts o = sw_opts();
	sw_load_ready(w, w->ids[0], &o);
	assert_int_equal(ngl_of(w->ids[0]), 17);
	uint64_t s0, g0, u0;
	sched_pressure_totals(w->s, &s0, &g0, &u0);
	/* a game: pressure needs more than the model's buffers but less than with its
	 * overhead -- the model goes to the CPU, it is not unloaded */
	outside_ovh(w, total, total / 100 * 82, w->ids[0], ovh);
	assert_true(fake_llama_stopping(fake_llama_find(w->ids[0])));
	assert_int_equal(fake_llama_reap(), 1);
	assert_non_null(fake_llama_find(w->ids[0]));
	assert_int_equal(ngl_of(w->ids[0]), 0);
	fake_llama_ready(fake_llama_find(w->ids[0]));
	uint64_t s1, g1, u1;
	sched_pressure_totals(w->s, &s1, &g1, &u1);
	assert_int_equal(s1 - s0, 1);
	assert_int_equal(u1 - u0, 0);
	/* the game shrinks: the model grows back within what leaves its overhead room */
	uint64_t game = total / 100 * 72;
	outside_ovh(w, total, game, w->ids[0], ovh);
	w->clock_add += 31 * 1000;
	outside_ovh(w, total, game, w->ids[0], ovh);
	assert_true(fake_llama_stopping(fake_llama_find(w->ids[0])));
	settle_children(w);
	uint64_t grown = sw_planned_device_bytes(w, w->ids[0]);
	assert_true(grown > 0);
	if (game + grown + ovh > low)
		fail_msg("grown to %llu bytes: with its overhead %llu and others %llu over "
		    "pressure_low (%llu)", (unsigned long long)grown, (unsigned long long)ovh,
		    (unsigned long long)game, (unsigned long long)low);
	sw_unload_all(w);
	w->cfg.reserve = reserve;
	sched_learn_free(w->s->learn); /* later cases learned nothing */
	w->s->learn = sched_learn_new(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(evicts_least_recently_used),
		cmocka_unit_test(priority_before_recency),
		cmocka_unit_test(pinned_and_busy_stay_then_offload),
		cmocka_unit_test(exclusive_group_leaves_first),
		cmocka_unit_test(outside_pressure_unloads_idle),
		cmocka_unit_test(outside_pressure_shrinks_then_grows_back),
		cmocka_unit_test(flapping_pressure_reloads_once),
		cmocka_unit_test(busy_pinned_model_is_drained_then_shrunk),
		cmocka_unit_test(drain_has_a_deadline),
		cmocka_unit_test(shrink_whose_child_dies_fails),
		cmocka_unit_test(per_model_settings),
		cmocka_unit_test(second_switch_is_refused_with_retry),
		cmocka_unit_test(child_dies_while_loading),
		cmocka_unit_test(unknown_and_no_wait),
		cmocka_unit_test(ladder_counts_learned_overhead),
	};
	return cmocka_run_group_tests(tests, sw_setup, sw_teardown);
}
