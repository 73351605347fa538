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
#include "device.h"
#include "fake_llama.h"
#include "registry.h"
#include "scan.h"
#include "scheduler.h"
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

#define GIB (1024ull * 1024 * 1024)
#define N_SMALL 4

struct told {
	int n;
	int status;
	char code[64];
	char state[32];
	int retry_after_s;
};

struct world {
	struct config cfg;
	struct event_base *base;
	struct registry *reg;
	struct devmon *dev;
	struct sched *s;
	char *nvml_state;
	char ids[N_SMALL][128];      /* four copies of a 1B model */
	char big[128];               /* an 8B model */
	unsigned changes;
	uint64_t clock_add;          /* the scheduler's clock runs this much ahead */
};

static uint64_t test_clock(void *arg)
{
	return util_mono_ms() + ((struct world *)arg)->clock_add;
}

static void on_changed(void *arg)
{
	((struct world *)arg)->changes++;
}

static void tell(void *arg, const struct sched_outcome *o)
{
	struct told *t = arg;
	t->n++;
	t->status = o->status;
	t->retry_after_s = o->retry_after_s;
	snprintf(t->code, sizeof t->code, "%s", o->code ? o->code : "");
	const char *st = o->body ? json_string_value(json_object_get(o->body, "state")) : NULL;
	snprintf(t->state, sizeof t->state, "%s", st ? st : "");
}

static struct sched_reply to(struct told *t)
{
	memset(t, 0, sizeof *t);
	return (struct sched_reply){ tell, t };
}

static void set_gpu(struct world *w, uint64_t total, uint64_t used)
{
	char *s = xasprintf("count 1\ngpu 0 name=\"Fake GPU\" uuid=GPU-fake total=%llu used=%llu "
	    "temp=40 util=0\n", (unsigned long long)total, (unsigned long long)used);
	assert_int_equal(tu_write_file(w->nvml_state, s, strlen(s)), 0);
	free(s);
	devmon_sample(w->dev);
}

static void gen(const char *shape, const char *dir, const char *name)
{
	char err[4096];
	const struct shape *sh = shapes_find(shape);
	assert_non_null(sh);
	char *vocab = shapes_vocab_path(sh->vocab);
	char *p = xasprintf("%s/%s", dir, name);
	struct shapes_opts o = { NULL, vocab, 0, 1, 1 };
	if (shapes_write(sh, &o, p, err, sizeof err) < 0)
		fail_msg("%s", err);
	free(vocab);
	free(p);
}

/* The registry id of the model whose file is named file. */
static void id_of(struct world *w, const char *file, char *out, size_t len)
{
	json_t *all = registry_models(w->reg), *v;
	size_t i;
	out[0] = '\0';
	json_array_foreach(all, i, v) {
		const char *p = json_string_value(json_object_get(v, "path"));
		const char *slash = p ? strrchr(p, '/') : NULL;
		if (slash != NULL && strcmp(slash + 1, file) == 0)
			snprintf(out, len, "%s", json_string_value(json_object_get(v, "id")));
	}
	json_decref(all);
	assert_true(out[0] != '\0');
}

static int setup(void **state)
{
	struct world *w = xcalloc(1, sizeof *w);
	char err[1024];
	char *models = tu_path("models"), *proc = tu_path("proc"), *sys = tu_path("sys");
	assert_int_equal(tu_sh("mkdir -p '%s' '%s' '%s'", models, proc, sys), 0);
	char name[64];
	for (int i = 0; i < N_SMALL; i++) {
		snprintf(name, sizeof name, "small-%d.gguf", i);
		gen("llama3.2-1b", models, name);
	}
	gen("llama3-8b", models, "big.gguf");
	char *mi = xasprintf("%s/meminfo", proc);
	const char *ram = "MemTotal: 67108864 kB\nMemFree: 62914560 kB\n"
	    "MemAvailable: 62914560 kB\n";
	assert_int_equal(tu_write_file(mi, ram, strlen(ram)), 0);
	free(mi);
	w->nvml_state = tu_path("nvml-state");
	setenv("FAKE_NVML_STATE", w->nvml_state, 1);
	char *s = xasprintf("count 1\ngpu 0 name=\"Fake GPU\" uuid=GPU-fake total=%llu used=0 "
	    "temp=40 util=0\n", (unsigned long long)(64 * GIB));
	assert_int_equal(tu_write_file(w->nvml_state, s, strlen(s)), 0);
	free(s);
	struct devmon_opts mo = { FAKE_NVML_PATH, sys, proc, 0 };
	w->dev = devmon_new(&mo);
	char *db = tu_path("registry.db");
	w->reg = registry_open(db, err, sizeof err);
	assert_non_null(w->reg);
	free(db);
	const char *dirs[] = { models };
	struct scan_opts so = { .dirs = (char **)dirs, .n_dirs = 1, .ctx = 4096 };
	struct scan_result *r = scan_run(&so);
	struct reg_counts c;
	assert_int_equal(registry_apply(w->reg, r, &c, err, sizeof err), 0);
	scan_free(r);
	for (int i = 0; i < N_SMALL; i++) {
		snprintf(name, sizeof name, "small-%d.gguf", i);
		id_of(w, name, w->ids[i], sizeof w->ids[i]);
	}
	id_of(w, "big.gguf", w->big, sizeof w->big);
	/* what the scheduler reads of the configuration, at the daemon's defaults */
	w->cfg.reserve = 512ull << 20;
	w->cfg.idle_ttl_s = 300;
	w->cfg.pressure_high = 95;
	w->cfg.pressure_low = 85;
	w->cfg.pressure_action = CONFIG_PRESSURE_SHRINK;
	w->cfg.regrow = 1;
	w->cfg.regrow_hold_s = 30;
	w->cfg.drain_timeout_s = 30;
	w->cfg.parallel = 4;
	w->cfg.llama_server = (char *)"llama-server";
	w->cfg.state_dir = (char *)tu_tmpdir();
	w->base = event_base_new();
	struct sched_env env = { w->base, w->reg, w->dev, NULL, NULL, &w->cfg, on_changed, w,
	    test_clock, w };
	w->s = sched_new(&env);
	free(models);
	free(proc);
	free(sys);
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;
	sched_free(w->s);
	event_base_free(w->base);
	registry_close(w->reg);
	devmon_free(w->dev);
	free(w->nvml_state);
	free(w);
	return 0;
}

static struct sched_opts opts(void)
{
	return (struct sched_opts){ .ttl_s = -1, .offload = PLAN_AUTO, .wait = 1 };
}

/* Loads id and makes its child ready; asserts the load was answered 200. */
static void load_ready(struct world *w, const char *id, const struct sched_opts *o)
{
	struct told t;
	sched_load(w->s, id, o, to(&t));
	struct llama *l = fake_llama_find(id);
	assert_non_null(l);
	assert_int_equal(t.n, 0); /* it waits for ready */
	fake_llama_ready(l);
	assert_int_equal(t.n, 1);
	assert_int_equal(t.status, 200);
	assert_string_equal(t.state, "ready");
}

/* Waits for the monotonic clock to move on, so that two uses are ordered. */
static void tick_clock(void)
{
	uint64_t t0 = util_mono_ms();
	while (util_mono_ms() < t0 + 2)
		;
}

/* o[k1][k2] (borrowed), or NULL. */
static json_t *du_at_path(json_t *o, const char *k1, const char *k2)
{
	return json_object_get(json_object_get(o, k1), k2);
}

static uint64_t planned_device_bytes(struct world *w, const char *id)
{
	json_t *m = sched_model_json(w->s, id);
	assert_non_null(m);
	json_int_t b = json_integer_value(json_object_get(json_object_get(json_object_get(m,
	    "plan"), "device"), "total_bytes"));
	json_decref(m);
	return (uint64_t)b;
}

/* A GPU that holds exactly `fit` of the small models (and the reserve). */
static void gpu_for(struct world *w, uint64_t one, double fit)
{
	set_gpu(w, w->cfg.reserve + (uint64_t)((double)one * fit), 0);
}

static void unload_all(struct world *w)
{
	struct told t;
	for (int i = 0; i < N_SMALL; i++)
		sched_unload(w->s, w->ids[i], to(&t));
	sched_unload(w->s, w->big, to(&t));
	fake_llama_reap();
	assert_int_equal(fake_llama_live(), 0);
	set_gpu(w, 64 * GIB, 0);
}

/* The size of one small model's plan, from a load on a roomy GPU. */
static uint64_t one_small(struct world *w)
{
	struct sched_opts o = opts();
	load_ready(w, w->ids[0], &o);
	uint64_t one = planned_device_bytes(w, w->ids[0]);
	assert_true(one > 1 * GIB / 2);
	unload_all(w);
	w->clock_add += 60 * 1000; /* earlier cases' reloads are long settled */
	return one;
}

static void evicts_least_recently_used(void **state)
{
	struct world *w = *state;
	uint64_t one = one_small(w);
	gpu_for(w, one, 2.5);
	struct sched_opts o = opts();
	load_ready(w, w->ids[0], &o);
	load_ready(w, w->ids[1], &o);
	tick_clock();
	sched_hold(w->s, w->ids[0], 1); /* a request to 0: it is the more recent now */
	sched_hold(w->s, w->ids[0], -1);
	struct told t;
	sched_load(w->s, w->ids[2], &o, to(&t));
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
	unload_all(w);
}

static void priority_before_recency(void **state)
{
	struct world *w = *state;
	uint64_t one = one_small(w);
	gpu_for(w, one, 2.5);
	struct sched_opts lo = opts(), hi = opts();
	hi.priority = 5;
	load_ready(w, w->ids[0], &hi);  /* the least recently used, but it matters more */
	tick_clock();
	load_ready(w, w->ids[1], &lo);
	struct told t;
	sched_load(w->s, w->ids[2], &lo, to(&t));
	assert_true(fake_llama_stopping(fake_llama_find(w->ids[1])));
	assert_false(fake_llama_stopping(fake_llama_find(w->ids[0])));
	fake_llama_reap();
	fake_llama_ready(fake_llama_find(w->ids[2]));
	assert_int_equal(t.status, 200);
	unload_all(w);
}

static void pinned_and_busy_stay_then_offload(void **state)
{
	struct world *w = *state;
	uint64_t one = one_small(w);
	gpu_for(w, one, 2.5);
	struct sched_opts o = opts(), pin = opts();
	pin.pin = 1;
	load_ready(w, w->ids[0], &pin);
	load_ready(w, w->ids[1], &o);
	sched_hold(w->s, w->ids[1], 1); /* a request in flight */
	/* nothing can leave: the third is planned with part of it on the CPU */
	struct told t;
	sched_load(w->s, w->ids[2], &o, to(&t));
	struct llama *l = fake_llama_find(w->ids[2]);
	assert_non_null(l);
	assert_false(fake_llama_stopping(fake_llama_find(w->ids[0])));
	assert_false(fake_llama_stopping(fake_llama_find(w->ids[1])));
	const char *ngl = fake_llama_arg(l, "-ngl");
	assert_non_null(ngl);
	assert_true(strtol(ngl, NULL, 10) < 16); /* Llama-3.2-1B has 16 layers */
	assert_true(planned_device_bytes(w, w->ids[2]) < one);
	fake_llama_ready(l);
	assert_int_equal(t.status, 200);
	/* offload "gpu" refuses instead, saying why */
	struct sched_opts g = opts();
	g.offload = PLAN_GPU;
	sched_load(w->s, w->ids[3], &g, to(&t));
	assert_int_equal(t.n, 1);
	assert_int_equal(t.status, 507);
	assert_string_equal(t.code, "does_not_fit");
	assert_null(fake_llama_find(w->ids[3]));
	/* the OpenAI routes' way (queue_busy): wait for the busy model, not offload */
	struct sched_use u;
	memset(&u, 0, sizeof u);
	struct sched_opts qb = opts();
	qb.queue_busy = 1;
	sched_unload(w->s, w->ids[2], to(&t));
	fake_llama_reap();
	assert_int_equal(sched_acquire(w->s, w->ids[3], &qb, &u), SA_BUSY);
	assert_null(fake_llama_find(w->ids[3]));
	sched_hold(w->s, w->ids[1], -1);
	unload_all(w);
}

static void exclusive_group_leaves_first(void **state)
{
	struct world *w = *state;
	/* exclusive = "ID0 ID1", as config.c parses it */
	w->cfg.exclusive[0] = (struct config_group){ .ids = { w->ids[0], w->ids[1] },
		.n_ids = 2 };
	w->cfg.n_exclusive = 1;
	struct sched_opts o = opts();
	o.pin = 1; /* a pin does not keep a model beside its group's mate */
	load_ready(w, w->ids[0], &o);
	load_ready(w, w->ids[2], &o);
	struct told t;
	sched_load(w->s, w->ids[1], &o, to(&t));
	assert_true(fake_llama_stopping(fake_llama_find(w->ids[0])));
	assert_false(fake_llama_stopping(fake_llama_find(w->ids[2])));
	assert_null(fake_llama_find(w->ids[1]));
	fake_llama_reap();
	fake_llama_ready(fake_llama_find(w->ids[1]));
	assert_int_equal(t.status, 200);
	w->cfg.n_exclusive = 0;
	unload_all(w);
}

static void outside_pressure_unloads_idle(void **state)
{
	struct world *w = *state;
	uint64_t one = one_small(w);
	uint64_t total = w->cfg.reserve + 4 * one;
	w->cfg.pressure_action = CONFIG_PRESSURE_UNLOAD; /* the ladder's axe: as before it */
	set_gpu(w, total, 0);
	struct sched_opts o = opts(), pin = opts();
	pin.pin = 1;
	load_ready(w, w->ids[0], &pin);
	load_ready(w, w->ids[1], &o);
	/* another program takes the rest of the GPU */
	set_gpu(w, total, total - total / 50);
	sched_tick(w->s);
	assert_true(fake_llama_stopping(fake_llama_find(w->ids[1])));
	assert_false(fake_llama_stopping(fake_llama_find(w->ids[0]))); /* pinned */
	fake_llama_reap();
	set_gpu(w, total, 2 * one);
	sched_tick(w->s);
	assert_non_null(fake_llama_find(w->ids[0]));
	assert_string_equal(fake_llama_arg(fake_llama_find(w->ids[0]), "-ngl"), "17");
	uint64_t shrinks, grows, unloads;
	sched_pressure_totals(w->s, &shrinks, &grows, &unloads);
	assert_int_equal(shrinks, 0);
	assert_int_equal(unloads, 1);
	w->cfg.pressure_action = CONFIG_PRESSURE_SHRINK;
	unload_all(w);
}

/* ---- the pressure ladder ---- */

/* The model's /status view: its pressure object's "plan" (full, shrunk, ...). */
static void assert_plan_state(struct world *w, const char *id, const char *want)
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
static void settle_children(struct world *w)
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
static void outside(struct world *w, uint64_t total, uint64_t others, const char *id)
{
	set_gpu(w, total, others + planned_device_bytes(w, id));
	sched_tick(w->s);
}

static void outside_pressure_shrinks_then_grows_back(void **state)
{
	struct world *w = *state;
	uint64_t one = one_small(w);
	uint64_t total = w->cfg.reserve + 2 * one;
	set_gpu(w, total, 0);
	struct sched_opts o = opts();
	load_ready(w, w->ids[0], &o);
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
	struct sched_opts qb = opts();
	qb.queue_busy = 1;
	assert_int_equal(sched_acquire(w->s, w->ids[0], &qb, &u), SA_WAIT);
	struct told t;
	sched_load(w->s, w->ids[0], &o, to(&t));
	assert_int_equal(t.n, 0);
	fake_llama_ready(l);
	assert_int_equal(t.status, 200);
	assert_int_equal(sched_acquire(w->s, w->ids[0], &qb, &u), SA_READY);
	assert_plan_state(w, w->ids[0], "shrunk");
	json_t *m = sched_model_json(w->s, w->ids[0]);
	assert_non_null(strstr(json_string_value(du_at_path(m, "pressure", "reason")),
	    "pressure"));
	json_decref(m);
	uint64_t shrunk = planned_device_bytes(w, w->ids[0]);
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
	unload_all(w);
}

static void flapping_pressure_reloads_once(void **state)
{
	struct world *w = *state;
	uint64_t one = one_small(w);
	uint64_t total = w->cfg.reserve + 2 * one;
	set_gpu(w, total, 0);
	struct sched_opts o = opts();
	load_ready(w, w->ids[0], &o);
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
	unload_all(w);
}

static void busy_pinned_model_is_drained_then_shrunk(void **state)
{
	struct world *w = *state;
	uint64_t one = one_small(w);
	uint64_t total = w->cfg.reserve + 2 * one;
	set_gpu(w, total, 0);
	struct sched_opts pin = opts();
	pin.pin = 1;
	load_ready(w, w->ids[0], &pin);
	sched_hold(w->s, w->ids[0], 1); /* a request in flight */
	outside(w, total, total - total / 50 - one, w->ids[0]);
	/* drained first: the child stays while its request runs, new ones wait */
	assert_false(fake_llama_stopping(fake_llama_find(w->ids[0])));
	struct sched_use u;
	memset(&u, 0, sizeof u);
	struct sched_opts qb = opts();
	qb.queue_busy = 1;
	assert_int_equal(sched_acquire(w->s, w->ids[0], &qb, &u), SA_WAIT);
	json_t *m = sched_model_json(w->s, w->ids[0]);
	assert_true(json_is_true(du_at_path(m, "pressure", "draining")));
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
	unload_all(w);
}

static void shrink_whose_child_dies_fails(void **state)
{
	struct world *w = *state;
	uint64_t one = one_small(w);
	uint64_t total = w->cfg.reserve + 2 * one;
	set_gpu(w, total, 0);
	struct sched_opts o = opts();
	load_ready(w, w->ids[0], &o);
	outside(w, total, total - total / 50 - one, w->ids[0]);
	fake_llama_reap();
	struct told t;
	sched_load(w->s, w->ids[0], &o, to(&t)); /* waits for the new child */
	assert_int_equal(t.n, 0);
	fake_llama_exit(fake_llama_find(w->ids[0]), 1 << 8);
	assert_int_equal(t.status, 502);
	json_t *m = sched_model_json(w->s, w->ids[0]);
	assert_string_equal(json_string_value(json_object_get(m, "state")), "failed");
	json_decref(m);
	/* nothing is left half-way: the next load starts a child */
	load_ready(w, w->ids[0], &o);
	unload_all(w);
}

static void per_model_settings(void **state)
{
	struct world *w = *state;
	uint64_t one = one_small(w);
	uint64_t total = w->cfg.reserve + 2 * one;
	uint64_t game = total - total / 50 - one;
	set_gpu(w, total, 0);
	/* POST /load's "pressure_action": "unload": this model leaves, as before the ladder */
	struct sched_opts o = opts();
	o.pressure_action = SCHED_PRESSURE_UNLOAD;
	load_ready(w, w->ids[0], &o);
	outside(w, total, game, w->ids[0]);
	assert_true(fake_llama_stopping(fake_llama_find(w->ids[0])));
	fake_llama_reap();
	assert_null(fake_llama_find(w->ids[0]));
	assert_null(sched_model_json(w->s, w->ids[0]));
	/* "regrow": false: it shrinks, and stays shrunk when the memory returns */
	set_gpu(w, total, 0);
	sched_tick(w->s);
	w->clock_add += 60 * 1000;
	o = opts();
	o.regrow = -1;
	load_ready(w, w->ids[0], &o);
	outside(w, total, game, w->ids[0]);
	settle_children(w);
	assert_plan_state(w, w->ids[0], "shrunk");
	outside(w, total, 0, w->ids[0]);
	w->clock_add += 120 * 1000;
	outside(w, total, 0, w->ids[0]);
	assert_false(fake_llama_stopping(fake_llama_find(w->ids[0])));
	assert_true(ngl_of(w->ids[0]) < 17);
	unload_all(w);
}

static void drain_has_a_deadline(void **state)
{
	struct world *w = *state;
	uint64_t one = one_small(w);
	uint64_t total = w->cfg.reserve + 2 * one;
	set_gpu(w, total, 0);
	struct sched_opts o = opts();
	load_ready(w, w->ids[0], &o);
	sched_hold(w->s, w->ids[0], 1); /* a request that never ends */
	outside(w, total, total - total / 50 - one, w->ids[0]);
	assert_false(fake_llama_stopping(fake_llama_find(w->ids[0])));
	w->clock_add += (uint64_t)w->cfg.drain_timeout_s * 1000;
	sched_tick(w->s);
	assert_true(fake_llama_stopping(fake_llama_find(w->ids[0]))); /* reloaded anyway */
	fake_llama_reap();
	assert_true(ngl_of(w->ids[0]) < 17);
	sched_hold(w->s, w->ids[0], -1); /* the cut request ends */
	unload_all(w);
}

static void second_switch_is_refused_with_retry(void **state)
{
	struct world *w = *state;
	struct sched_opts o = opts();
	load_ready(w, w->ids[0], &o);
	load_ready(w, w->ids[2], &o);
	struct told t1, t2, t3;
	sched_switch(w->s, w->ids[0], w->ids[1], &o, to(&t1));
	assert_int_equal(t1.n, 0); /* waits for 0 to leave */
	assert_true(fake_llama_stopping(fake_llama_find(w->ids[0])));
	/* the same switch again joins the waiting load */
	sched_switch(w->s, w->ids[0], w->ids[1], &o, to(&t2));
	assert_int_equal(t2.status, 202);
	assert_string_equal(t2.state, "queued");
	/* another model cannot be switched out for a load that already waits */
	sched_switch(w->s, w->ids[2], w->ids[1], &o, to(&t3));
	assert_int_equal(t3.status, 503);
	assert_string_equal(t3.code, "queue_full");
	assert_int_equal(t3.retry_after_s, 5);
	assert_false(fake_llama_stopping(fake_llama_find(w->ids[2])));
	fake_llama_reap();
	fake_llama_ready(fake_llama_find(w->ids[1]));
	assert_int_equal(t1.status, 200);
	unload_all(w);
}

static void child_dies_while_loading(void **state)
{
	struct world *w = *state;
	struct sched_opts o = opts();
	struct told a, b;
	unsigned changes = w->changes, started = fake_llama_started();
	sched_load(w->s, w->big, &o, to(&a));
	sched_load(w->s, w->big, &o, to(&b)); /* a second caller waits for the same child */
	assert_int_equal(fake_llama_started(), started + 1); /* one child for both */
	struct llama *l = fake_llama_find(w->big);
	assert_non_null(l);
	fake_llama_exit(l, 1 << 8); /* exit status 1 */
	assert_int_equal(a.status, 502);
	assert_int_equal(b.status, 502);
	assert_string_equal(a.code, "backend_failed");
	assert_true(w->changes > changes); /* the /v1 side was told */
	/* the next load tries again */
	load_ready(w, w->big, &o);
	unload_all(w);
}

static void unknown_and_no_wait(void **state)
{
	struct world *w = *state;
	struct told t;
	struct sched_opts o = opts();
	sched_load(w->s, "no-such-model", &o, to(&t));
	assert_int_equal(t.status, 404);
	assert_string_equal(t.code, "model_not_found");
	o.wait = 0;
	sched_load(w->s, w->ids[0], &o, to(&t));
	assert_int_equal(t.n, 1);
	assert_int_equal(t.status, 202);
	assert_string_equal(t.state, "loading");
	fake_llama_ready(fake_llama_find(w->ids[0]));
	sched_unload(w->s, w->ids[0], to(&t));
	assert_int_equal(t.n, 0); /* answered when the child is gone */
	fake_llama_reap();
	assert_int_equal(t.status, 200);
	assert_string_equal(t.state, "unloaded");
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
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
