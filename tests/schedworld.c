/*
 * schedworld: see schedworld.h.
 */
#include "schedworld.h"
#include "device.h"
#include "fake_llama.h"
#include "registry.h"
#include "scan.h"
#include "shapes.h"
#include "testutil.h"
#include "util.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <cmocka.h>

static uint64_t sw_test_clock(void *arg)
{
	return util_mono_ms() + ((struct sw_world *)arg)->clock_add;
}

static void sw_on_changed(void *arg)
{
	((struct sw_world *)arg)->changes++;
}

static void sw_tell(void *arg, const struct sched_outcome *o)
{
	struct sw_told *t = arg;
	t->n++;
	t->status = o->status;
	t->retry_after_s = o->retry_after_s;
	snprintf(t->code, sizeof t->code, "%s", o->code ? o->code : "");
	snprintf(t->message, sizeof t->message, "%s", o->message ? o->message : "");
	const char *st = o->body ? json_string_value(json_object_get(o->body, "state")) : NULL;
	snprintf(t->state, sizeof t->state, "%s", st ? st : "");
}

struct sched_reply sw_to(struct sw_told *t)
{
	memset(t, 0, sizeof *t);
	return (struct sched_reply){ sw_tell, t };
}

void sw_set_gpu(struct sw_world *w, uint64_t total, uint64_t used)
{
	char *s = xasprintf("count 1\ngpu 0 name=\"Fake GPU\" uuid=GPU-fake total=%llu used=%llu "
	    "temp=40 util=0\n", (unsigned long long)total, (unsigned long long)used);
	assert_int_equal(tu_write_file(w->nvml_state, s, strlen(s)), 0);
	free(s);
	devmon_sample(w->dev);
}

static void sw_gen(const char *shape, const char *dir, const char *name)
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
static void sw_id_of(struct sw_world *w, const char *file, char *out, size_t len)
{
	size_t n;
	struct reg_model *all = registry_model_list(w->reg, &n);
	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		const char *slash = strrchr(all[i].path, '/');
		if (slash != NULL && strcmp(slash + 1, file) == 0)
			snprintf(out, len, "%s", all[i].id);
	}
	registry_model_list_free(all, n);
	assert_true(out[0] != '\0');
}

int sw_setup(void **state)
{
	struct sw_world *w = xcalloc(1, sizeof *w);
	char err[1024];
	char *models = tu_path("models"), *proc = tu_path("proc"), *sys = tu_path("sys");
	assert_int_equal(tu_sh("mkdir -p '%s' '%s' '%s'", models, proc, sys), 0);
	char name[64];
	for (int i = 0; i < N_SMALL; i++) {
		snprintf(name, sizeof name, "small-%d.gguf", i);
		sw_gen("llama3.2-1b", models, name);
	}
	sw_gen("llama3-8b", models, "big.gguf");
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
		sw_id_of(w, name, w->ids[i], sizeof w->ids[i]);
	}
	sw_id_of(w, "big.gguf", w->big, sizeof w->big);
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
	struct sched_env env = { w->base, w->reg, w->dev, NULL, NULL, &w->cfg, sw_on_changed, w,
	    sw_test_clock, w };
	w->s = sched_new(&env);
	free(models);
	free(proc);
	free(sys);
	*state = w;
	return 0;
}

int sw_teardown(void **state)
{
	struct sw_world *w = *state;
	sched_free(w->s);
	event_base_free(w->base);
	registry_close(w->reg);
	devmon_free(w->dev);
	free(w->nvml_state);
	free(w);
	return 0;
}

struct sched_opts sw_opts(void)
{
	return (struct sched_opts){ .ttl_s = -1, .offload = PLAN_AUTO, .wait = 1 };
}

/* Loads id and makes its child ready; asserts the load was answered 200. */
void sw_load_ready(struct sw_world *w, const char *id, const struct sched_opts *o)
{
	struct sw_told t;
	sched_load(w->s, id, o, sw_to(&t));
	struct llama *l = fake_llama_find(id);
	assert_non_null(l);
	assert_int_equal(t.n, 0); /* it waits for ready */
	fake_llama_ready(l);
	assert_int_equal(t.n, 1);
	assert_int_equal(t.status, 200);
	assert_string_equal(t.state, "ready");
}

/* Waits for the monotonic clock to move on, so that two uses are ordered. */
void sw_tick_clock(void)
{
	uint64_t t0 = util_mono_ms();
	while (util_mono_ms() < t0 + 2)
		;
}

/* o[k1][k2] (borrowed), or NULL. */
json_t *sw_du_at_path(json_t *o, const char *k1, const char *k2)
{
	return json_object_get(json_object_get(o, k1), k2);
}

uint64_t sw_planned_device_bytes(struct sw_world *w, const char *id)
{
	json_t *m = sched_model_json(w->s, id);
	assert_non_null(m);
	json_int_t b = json_integer_value(json_object_get(json_object_get(json_object_get(m,
	    "plan"), "device"), "total_bytes"));
	json_decref(m);
	return (uint64_t)b;
}

/* A GPU that holds exactly `fit` of the small models (and the reserve). */
void sw_gpu_for(struct sw_world *w, uint64_t one, double fit)
{
	sw_set_gpu(w, w->cfg.reserve + (uint64_t)((double)one * fit), 0);
}

void sw_unload_all(struct sw_world *w)
{
	struct sw_told t;
	for (int i = 0; i < N_SMALL; i++)
		sched_unload(w->s, w->ids[i], sw_to(&t));
	sched_unload(w->s, w->big, sw_to(&t));
	fake_llama_reap();
	assert_int_equal(fake_llama_live(), 0);
	sw_set_gpu(w, 64 * GIB, 0);
}

/* The size of one small model's plan, from a load on a roomy GPU. */
uint64_t sw_one_small(struct sw_world *w)
{
	struct sched_opts o = sw_opts();
	sw_load_ready(w, w->ids[0], &o);
	uint64_t one = sw_planned_device_bytes(w, w->ids[0]);
	assert_true(one > 1 * GIB / 2);
	sw_unload_all(w);
	w->clock_add += 60 * 1000; /* earlier cases' reloads are long settled */
	return one;
}

void sw_set_gpus(struct sw_world *w, int n, uint64_t total, const uint64_t *used)
{
	char buf[2048];
	int l = snprintf(buf, sizeof buf, "count %d\n", n);
	for (int i = 0; i < n; i++)
		l += snprintf(buf + l, sizeof buf - (size_t)l, "gpu %d name=\"Fake GPU %d\" "
		    "uuid=GPU-fake%s%.0d total=%llu used=%llu temp=40 util=0\n", i, i, i ? "-" : "", i,
		    (unsigned long long)total, (unsigned long long)(used ? used[i] : 0));
	assert_int_equal(tu_write_file(w->nvml_state, buf, (size_t)l), 0);
	devmon_sample(w->dev);
}
