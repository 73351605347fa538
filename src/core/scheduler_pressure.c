/*
 * scheduler_pressure: the pressure ladder. When a program outside the daemon takes a
 * device past pressure_high percent, the daemon first SHRINKS a resident model: it is
 * planned again (offload auto: experts, then layers, to the CPU) for the room that
 * keeps the device under pressure_low, and restarted with that plan, pinned or not (a
 * pin means "stay resident", not "stay on the GPU"). Only when even every shrinkable
 * model on the CPU would not bring the device under pressure_low (or RAM is short, or
 * the model asked for pressure_action "unload") does an idle unpinned model leave, as
 * before. A busy model is drained first: new requests wait for the new child, those in
 * flight finish, for drain_timeout_s at most. Once the device has stayed under
 * pressure_low for regrow_hold_s, shrunk models are planned again for what is free,
 * taking the most the others used during that hold as still taken (a flapping program
 * does not cause a reload storm), and reloaded one at a time when that puts at least
 * one more layer or expert group on the device. Everything is one reload at a time per
 * device, and the next decision waits for a device reading taken after it was ready.
 *
 * Per device: each GPU the monitor reads has its own ladder (struct sched_devp, by its
 * id); a model is shrunk and grown on the one device of its plan (its home). A model
 * split over several devices is not shrunk: under pressure it may only be unloaded.
 */
#include "config.h"
#include "device.h"
#include "estimate.h"
#include "gguf.h"
#include "llama.h"
#include "model.h"
#include "registry.h"
#include "scheduler_int.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LADDER_STOP_GRACE_MS 10000
#define LADDER_SETTLE_MS 1000   /* after a reload, before the next decision */

/* The clock of device readings (their t_ms, device.c's wall clock in ms). */
static uint64_t reading_clock(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int action_unload(const struct sched *s, const struct rt *m)
{
	if (m->pressure_action != SCHED_PRESSURE_DEFAULT)
		return m->pressure_action == SCHED_PRESSURE_UNLOAD;
	return s->cfg->pressure_action == CONFIG_PRESSURE_UNLOAD;
}

static int regrow_on(const struct sched *s, const struct rt *m)
{
	return m->regrow != 0 ? m->regrow > 0 : s->cfg->regrow;
}

/* 1 when m may be shrunk on t: resident there alone (not split), shrink asked, offload
 * not "gpu". */
static int shrinkable(const struct sched *s, const struct rt *m, const struct target *t)
{
	return m->state == ST_READY && m->reload == RELOAD_NONE && !action_unload(s, m) &&
	    m->lo.offload == PLAN_AUTO && m->dev.total > 0 && m->n_on == 1 &&
	    strcmp(m->on[0].id, t->id) == 0;
}

void sched_pressure_remember(struct rt *m, const struct sched_opts *o,
    const struct plan_multi *p)
{
	sched_pressure_forget(m);
	m->lo = *o;
	for (size_t i = 0; i < o->n_cpu_patterns; i++)
		m->lo.cpu_patterns[i] = xstrdup(o->cpu_patterns[i]);
	m->full_ngl = p->ngl;
	m->full_n_cpu_moe = p->n_cpu_moe;
	m->full_dev = sched_plan_dev_total(p);
	/* the device it is shrunk and grown on: its plan's one device (m->on is p's) */
	snprintf(m->home, sizeof m->home, "%s", m->n_on == 1 ? m->on[0].id : "");
	m->shrunk = 0;
	m->shrunk_why[0] = '\0';
}

void sched_pressure_forget(struct rt *m)
{
	for (size_t i = 0; i < m->lo.n_cpu_patterns; i++)
		free((char *)m->lo.cpu_patterns[i]);
	memset(&m->lo, 0, sizeof m->lo);
}

/* A plan of m again and what it was made from (the estimate borrows the file). */
struct replanned {
	struct gguf *g;
	struct est e;
	struct plan_multi p;
};

static void replanned_free(struct replanned *r)
{
	plan_multi_free(&r->p);
	est_free(&r->e);
	gguf_close(r->g);
}

/* Plans m again for budget bytes on device t, with its load's options (offload auto).
 * Returns 0 with *r (free with replanned_free), or -1 with err (nothing to free). */
static int replan(struct sched *s, struct rt *m, const struct target *t, uint64_t budget,
    struct replanned *r, char *err, size_t errlen)
{
	memset(r, 0, sizeof *r);
	struct est_opts eo;
	est_defaults(&eo);
	eo.n_ctx = (uint32_t)m->ctx; /* the context it runs with */
	if ((m->mmproj != NULL && model_mmproj(m->mmproj, &eo, NULL, err, errlen) < 0) ||
	    model_estimate(m->path, &eo, &r->g, &r->e, err, errlen) < 0)
		return -1;
	struct plan_opts po = { .offload = PLAN_AUTO, .ngl = -1, .mmproj = m->mmproj };
	for (size_t i = 0; i < m->lo.n_cpu_patterns; i++)
		po.cpu_patterns[po.n_cpu_patterns++] = m->lo.cpu_patterns[i];
	if (sched_plan_on(&r->e, t, budget, &po, &r->p, err, errlen) < 0) {
		est_free(&r->e);
		gguf_close(r->g);
		return -1;
	}
	return 0;
}

/* m's child stops; its exit starts the new plan (sched_pressure_exited). */
static void stop_for_reload(struct rt *m)
{
	log_info("%s %s: restarting it with %llu bytes on the device", m->id,
	    m->reload == RELOAD_SHRINK ? "shrinks" : "grows",
	    (unsigned long long)m->reload_budget);
	m->draining = 0;
	m->state = ST_UNLOADING;
	llama_stop(m->l, LADDER_STOP_GRACE_MS);
}

/* Starts m's shrink or grow to budget: drains it first while it is busy. */
static void restart(struct sched *s, struct rt *m, enum sched_reload how, uint64_t budget,
    const char *why)
{
	m->reload = how;
	m->reload_budget = budget;
	m->before_ngl = m->ngl;
	m->before_n_cpu_moe = m->n_cpu_moe;
	m->before_dev = m->dev.total;
	m->used_before = m->last_used_ms;
	m->decided_ms = util_mono_ms();
	if (how == RELOAD_SHRINK)
		snprintf(m->shrunk_why, sizeof m->shrunk_why, "%s", why);
	if (m->busy > 0) {
		log_info("%s: draining %d requests before it %s", m->id, m->busy,
		    how == RELOAD_SHRINK ? "shrinks" : "grows");
		m->draining = 1;
		m->drain_since = sched_clock(s);
		return;
	}
	stop_for_reload(m);
}

void sched_pressure_hold(struct rt *m)
{
	if (m->draining && m->busy == 0 && m->state == ST_READY)
		restart(m->s, m, m->reload, m->reload_budget, m->shrunk_why);
}

/* Marks m failed after a reload that could not start (err), and tells its waiters. */
static void reload_failed(struct sched *s, struct rt *m, const char *err)
{
	m->state = ST_FAILED;
	m->reload = RELOAD_NONE;
	snprintf(m->error, sizeof m->error, "reload with a new plan failed: %s", err);
	log_warnx("%s: %s", m->id, m->error);
	sched_emit(s, "model.failed", json_pack("{s:s,s:s,s:s}", "model", m->id, "was",
	    "unloading", "error", m->error));
	for (size_t i = 0; i < m->n_waiters; i++)
		sched_tell_error(m->waiters[i], 502, "backend_failed", "%s: %s", m->id, m->error);
	m->n_waiters = 0;
}

int sched_pressure_exited(struct rt *m)
{
	struct sched *s = m->s;
	struct target t;
	char err[GGUF_ERR_LEN + 256];
	registry_load_update(s->env.reg, m->row, "stopped", NULL, NULL);
	if (s->shutting_down) {
		m->reload = RELOAD_NONE;
		return 0;
	}
	if (sched_target_by_id(s, m->home, &t) < 0) {
		reload_failed(s, m, "its device is gone");
		return 1;
	}
	struct replanned r;
	if (replan(s, m, &t, m->reload_budget, &r, err, sizeof err) < 0) {
		reload_failed(s, m, err);
		return 1;
	}
	if (sched_start(s, m, &r.p, &r.e, err, sizeof err) < 0)
		reload_failed(s, m, err);
	replanned_free(&r);
	return 1;
}

static json_t *plan_brief(int ngl, int n_cpu_moe, uint64_t dev)
{
	return json_pack("{s:i,s:i,s:I}", "gpu_layers", ngl, "n_cpu_moe", n_cpu_moe,
	    "device_bytes", (json_int_t)dev);
}

void sched_pressure_ready(struct rt *m)
{
	struct sched *s = m->s;
	m->load_ms = m->ready_ms - m->started_ms;
	if (m->reload == RELOAD_NONE)
		return;
	int grew = m->reload == RELOAD_GROW;
	m->reload = RELOAD_NONE;
	m->last_used_ms = m->used_before; /* a reload is no use: its idle clock goes on */
	m->shrunk = m->ngl < m->full_ngl || m->n_cpu_moe > m->full_n_cpu_moe;
	if (!m->shrunk)
		m->shrunk_why[0] = '\0';
	if (grew)
		s->n_grows++;
	else
		s->n_shrinks++;
	struct sched_devp *d = sched_devp_of(s, m->home);
	if (d != NULL) {
		d->settle_t = reading_clock();
		d->settle_clock = sched_clock(s);
	}
	struct target t;
	if (sched_target_by_id(s, m->home, &t) < 0)
		snprintf(t.id, sizeof t.id, "none");
	log_info("%s %s: %d -> %d layers on %s after %llu ms", m->id, grew ? "grown" : "shrunk",
	    m->before_ngl, m->ngl, t.id, (unsigned long long)(m->ready_ms - m->decided_ms));
	sched_emit(s, grew ? "model.grown" : "model.shrunk", json_pack("{s:s,s:s,s:s,s:o,s:o,"
	    "s:I,s:I}", "model", m->id, "device", t.id, "reason", grew ? "memory returned" :
	    m->shrunk_why, "before", plan_brief(m->before_ngl, m->before_n_cpu_moe,
	    m->before_dev), "after", plan_brief(m->ngl, m->n_cpu_moe, m->dev.total),
	    "decision_to_ready_ms", (json_int_t)(m->ready_ms - m->decided_ms), "load_ms",
	    (json_int_t)m->load_ms));
}

json_t *sched_pressure_json(struct rt *m)
{
	struct sched *s = m->s;
	const char *st = m->reload == RELOAD_SHRINK ? "shrinking" : m->reload == RELOAD_GROW ?
	    "growing" : m->shrunk ? "shrunk" : "full";
	json_t *o = json_pack("{s:s,s:b,s:s,s:b,s:o}", "plan", st, "draining", m->draining,
	    "action", action_unload(s, m) ? "unload" : "shrink", "regrow", regrow_on(s, m),
	    "full_plan", plan_brief(m->full_ngl, m->full_n_cpu_moe, m->full_dev));
	if (m->shrunk || m->reload == RELOAD_SHRINK)
		json_object_set_new(o, "reason", json_string(m->shrunk_why));
	return o;
}

void sched_pressure_totals(struct sched *s, uint64_t *shrinks, uint64_t *grows,
    uint64_t *unloads)
{
	*shrinks = s->n_shrinks;
	*grows = s->n_grows;
	*unloads = s->n_pressure_unloads;
}

/* ---- decisions, per device ---- */

/* Announces the edges of pressure on t (vram.pressure, vram.recovered). */
static void edges(struct sched *s, const struct target *t, struct sched_devp *d)
{
	uint64_t pct = t->used * 100 / t->total;
	uint64_t limit = t->total > s->cfg->reserve ? t->total - s->cfg->reserve : 0;
	if (!d->pressured && pct >= s->cfg->pressure_high && t->used >= limit) {
		d->pressured = 1;
		log_warnx("%s is %llu%% full: shrinking or unloading models", t->id,
		    (unsigned long long)pct);
		sched_emit(s, "vram.pressure", json_pack("{s:s,s:I,s:I,s:I}", "device", t->id,
		    "used_bytes", (json_int_t)t->used, "total_bytes", (json_int_t)t->total,
		    "percent", (json_int_t)pct));
	} else if (d->pressured && pct < s->cfg->pressure_low) {
		d->pressured = 0;
		sched_emit(s, "vram.recovered", json_pack("{s:s,s:I,s:I}", "device", t->id,
		    "used_bytes", (json_int_t)t->used, "percent", (json_int_t)pct));
	}
}

/* The hold before growing back: it runs while t is under pressure_low and what other
 * programs use stays within a margin of where it was when the hold began (a program
 * that comes and goes restarts it at each change). */
static void hold(struct sched *s, const struct target *t, struct sched_devp *d)
{
	uint64_t mine = sched_ours_on(s, t->id, NULL), now = sched_clock(s);
	uint64_t others = t->used > mine ? t->used - mine : 0, margin = t->total / 50;
	if (d->pressured || t->used * 100 >= t->total * s->cfg->pressure_low) {
		d->calm_since = 0;
	} else if (d->calm_since == 0 || others > d->others_peak + margin ||
	    others + margin < d->others_peak) {
		d->calm_since = now;
		d->others_peak = others;
	} else if (others > d->others_peak) {
		d->others_peak = others;
	}
}

static void unload_one(struct sched *s, const struct target *t, struct rt *m)
{
	log_info("pressure on %s: unloading %s", t->id, m->id);
	s->n_pressure_unloads++;
	m->reload = RELOAD_NONE;
	m->draining = 0;
	m->state = ST_UNLOADING;
	llama_stop(m->l, LADDER_STOP_GRACE_MS);
}

struct cand {
	struct rt *m;
	double per_s;                /* device bytes freed per second of reload */
};

/* Shrink order: idle before busy, lower priority, least recently used (to the minute),
 * then the most bytes freed per second of reload. */
static int by_shrink_order(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;
	if ((x->m->busy > 0) != (y->m->busy > 0))
		return x->m->busy > 0 ? 1 : -1;
	if (x->m->priority != y->m->priority)
		return x->m->priority < y->m->priority ? -1 : 1;
	uint64_t ux = x->m->last_used_ms / 60000, uy = y->m->last_used_ms / 60000;
	if (ux != uy)
		return ux < uy ? -1 : 1;
	return x->per_s > y->per_s ? -1 : x->per_s < y->per_s;
}

/* Tries to shrink c (in order) so that need bytes leave t; 1 when one started. */
static int shrink_one(struct sched *s, const struct target *t, struct cand *c, size_t n,
    uint64_t need)
{
	char err[GGUF_ERR_LEN + 256], why[160];
	uint64_t ram = sched_ram_available(s);
	snprintf(why, sizeof why, "outside memory pressure on %.100s (%llu%% in use)", t->id,
	    (unsigned long long)(t->used * 100 / t->total));
	for (size_t i = 0; i < n; i++) {
		struct rt *m = c[i].m;
		uint64_t budget = m->dev.total > need ? m->dev.total - need : 0;
		struct replanned r;
		if (replan(s, m, t, budget, &r, err, sizeof err) < 0) {
			log_warnx("%s: cannot plan a shrink: %s", m->id, err);
			continue;
		}
		int ok = sched_plan_dev_total(&r.p) < m->dev.total && (r.p.cpu.total <= m->cpu.total ||
		    r.p.cpu.total - m->cpu.total <= ram);
		replanned_free(&r);
		if (ok) {
			restart(s, m, RELOAD_SHRINK, budget, why);
			return 1;
		}
	}
	return 0;
}

/* Under pressure: shrink, or unload when shrinking cannot end it. */
static void relieve(struct sched *s, const struct target *t)
{
	uint64_t margin = t->total / 100, low = t->total / 100 * s->cfg->pressure_low;
	uint64_t goal = low > margin ? low - margin : 0;
	uint64_t need = t->used > goal ? t->used - goal : 0, can = 0;
	/* a child moved wholly to the CPU frees its buffers and its learned overhead there
	 * (CUDA context, workspaces); one that keeps a layer keeps the overhead */
	uint64_t ovh = sched_learned_overhead(s, t->id);
	struct cand c[MAX_EVICT];
	size_t n = 0;
	for (struct rt *m = s->models; m != NULL && n < MAX_EVICT; m = m->next) {
		if (!shrinkable(s, m, t))
			continue;
		can += m->dev.total + ovh;
		uint64_t freed = m->dev.total + ovh < need ? m->dev.total + ovh : need;
		c[n].m = m;
		c[n++].per_s = (double)freed * 1000.0 / (double)(m->load_ms + 1);
	}
	struct rt *ev[MAX_EVICT];
	size_t ne = sched_evictable(s, NULL, ev, MAX_EVICT), keep = 0;
	for (size_t i = 0; i < ne; i++) /* those on t, or shrunk from it (as before) */
		if (sched_on_bytes(ev[i], t->id) > 0 || strcmp(ev[i]->home, t->id) == 0)
			ev[keep++] = ev[i];
	ne = keep;
	/* models that asked to be unloaded go first, as before the ladder */
	for (size_t i = 0; i < ne; i++)
		if (action_unload(s, ev[i])) {
			unload_one(s, t, ev[i]);
			return;
		}
	if (need == 0)
		return;
	if (can < need && ne > 0) { /* even all of them on the CPU would not do */
		unload_one(s, t, ev[0]);
		return;
	}
	qsort(c, n, sizeof *c, by_shrink_order);
	if (!shrink_one(s, t, c, n, need) && ne > 0)
		unload_one(s, t, ev[0]); /* nothing shrinks further, or RAM is short */
}

/* Idle before busy, then the more important first. */
static int by_grow_order(const void *a, const void *b)
{
	const struct rt *x = *(struct rt *const *)a, *y = *(struct rt *const *)b;
	if ((x->busy > 0) != (y->busy > 0))
		return x->busy > 0 ? 1 : -1;
	return x->priority > y->priority ? -1 : x->priority < y->priority;
}

/* After the hold: grows back the first shrunk model that gains a layer or an expert
 * group on t within what keeps t under pressure_low. */
static void regrow(struct sched *s, const struct target *t, struct sched_devp *d)
{
	char err[GGUF_ERR_LEN + 256];
	uint64_t margin = t->total / 100, low = t->total / 100 * s->cfg->pressure_low;
	struct rt *c[MAX_EVICT];
	size_t n = 0;
	for (struct rt *m = s->models; m != NULL && n < MAX_EVICT; m = m->next)
		if (m->state == ST_READY && m->shrunk && m->reload == RELOAD_NONE &&
		    regrow_on(s, m) && strcmp(m->home, t->id) == 0)
			c[n++] = m;
	qsort(c, n, sizeof *c, by_grow_order);
	for (size_t i = 0; i < n; i++) {
		struct rt *m = c[i];
		uint64_t rest = sched_ours_on(s, t->id, m) + d->others_peak + margin;
		uint64_t budget = low > rest ? low - rest : 0, avail = sched_available(s, t, m);
		if (avail < budget)
			budget = avail;
		/* a child with nothing on t (shrunk to the CPU) has no overhead there yet: what
		 * t reads holds none of it, and the grown child adds its learned overhead, as
		 * a new load's does (scheduler_budget.c); one that runs there already holds it */
		uint64_t ovh = sched_on_bytes(m, t->id) == 0 ? sched_learned_overhead(s, t->id) : 0;
		budget = budget > ovh ? budget - ovh : 0;
		if (budget <= m->dev.total)
			continue;
		struct replanned r;
		if (replan(s, m, t, budget, &r, err, sizeof err) < 0)
			continue;
		int gain = r.p.ngl > m->ngl || (r.p.ngl == m->ngl && r.p.n_cpu_moe < m->n_cpu_moe);
		replanned_free(&r);
		if (gain) {
			restart(s, m, RELOAD_GROW, budget, "");
			return;
		}
	}
}

/* One device's step: edges, drains past their time, then one decision when nothing
 * of ours is moving, the reading is newer than the last reload, and a second has
 * passed since it. */
static void ladder(struct sched *s, const struct target *t, struct sched_devp *d)
{
	edges(s, t, d);
	uint64_t now = sched_clock(s);
	int moving = 0;
	for (struct rt *m = s->models; m != NULL; m = m->next) {
		if (m->draining && now - m->drain_since >= (uint64_t)s->cfg->drain_timeout_s * 1000) {
			log_warnx("%s: %d requests still running after %u s of draining; reloading "
			    "anyway", m->id, m->busy, s->cfg->drain_timeout_s);
			stop_for_reload(m);
		}
		moving |= m->state == ST_LOADING || m->state == ST_UNLOADING ||
		    m->reload != RELOAD_NONE;
	}
	/* our own reload skews what the device reads of others until it is ready and read */
	if (moving || t->t_ms < d->settle_t)
		return;
	hold(s, t, d);
	if (now < d->settle_clock + LADDER_SETTLE_MS)
		return; /* the driver's reading of the new child settles; no reload storm */
	if (d->pressured)
		relieve(s, t);
	else if (d->calm_since != 0 && now - d->calm_since >= (uint64_t)s->cfg->regrow_hold_s *
	    1000)
		regrow(s, t, d);
}

void sched_pressure_tick(struct sched *s)
{
	/* every GPU that reports its use (an RPC server reports nothing) */
	struct target t[SCHED_MAX_DEVICES];
	size_t n = sched_targets(s, t, SCHED_MAX_DEVICES);
	for (size_t i = 0; i < n; i++) {
		struct sched_devp *d = t[i].is_gpu && t[i].total > 0 ? sched_devp_of(s, t[i].id) :
		    NULL;
		if (d != NULL)
			ladder(s, &t[i], d);
	}
}
