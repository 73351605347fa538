/*
 * scheduler_budget: what a load may use and what it would take: the device loads are
 * planned on, the memory available there, the models a load may evict (in order, and
 * exclusive groups), and the decision to start, evict first, or refuse.
 */
#include "config.h"
#include "scheduler_int.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct device_info *sched_gpu(struct sched *s)
{
	for (size_t i = 0; i < devmon_count(s->env.dev); i++) {
		const struct device_info *di = devmon_get(s->env.dev, i);
		if (strcmp(di->kind, "cpu") != 0 && di->ok)
			return di;
	}
	return NULL;
}

size_t sched_targets(struct sched *s, struct target *out, size_t max)
{
	size_t n = 0;
	int n_rocm = 0;
	for (size_t i = 0; i < devmon_count(s->env.dev) && n < max; i++) {
		const struct device_info *di = devmon_get(s->env.dev, i);
		if (strcmp(di->kind, "cpu") == 0)
			continue;
		/* llama.cpp numbers a backend's devices in the order CUDA enumerates them,
		 * which CUDA_DEVICE_ORDER=PCI_BUS_ID (llama.c) makes NVML's index order; AMD
		 * GPUs in the monitor's order */
		int nv = strcmp(di->kind, "nvidia") == 0;
		if (!di->ok || (nv && di->index < 0))
			continue;
		int k = nv ? di->index : n_rocm++;
		struct target *t = &out[n++];
		memset(t, 0, sizeof *t);
		snprintf(t->id, sizeof t->id, "%s", di->id);
		snprintf(t->name, sizeof t->name, "%s%d", nv ? "CUDA" : "ROCm", k);
		t->total = di->now.total;
		t->used = di->now.used;
		t->t_ms = di->now.t_ms;
		t->is_gpu = 1;
		t->di = di;
	}
	for (size_t i = 0; i < s->cfg->n_rpc_devices && n < max; i++) {
		const struct config_rpc *r = &s->cfg->rpc_devices[i];
		struct target *t = &out[n++];
		memset(t, 0, sizeof *t);
		snprintf(t->rpc, sizeof t->rpc, "%s", r->addr);
		snprintf(t->name, sizeof t->name, "RPC%zu", i);
		snprintf(t->id, sizeof t->id, "RPC%zu[%s]", i, r->addr);
		t->total = r->budget;
		t->used = 0; /* an RPC server reports nothing: what we plan is what it holds */
	}
	return n;
}

int sched_target(struct sched *s, struct target *t)
{
	return sched_targets(s, t, 1) == 1 ? 0 : -1;
}

int sched_target_by_id(struct sched *s, const char *id, struct target *t)
{
	struct target all[SCHED_MAX_DEVICES];
	size_t n = sched_targets(s, all, SCHED_MAX_DEVICES);
	for (size_t i = 0; i < n; i++)
		if (strcmp(all[i].id, id) == 0) {
			*t = all[i];
			return 0;
		}
	return -1;
}

int sched_resident(const struct rt *m)
{
	return m->state == ST_LOADING || m->state == ST_READY || m->state == ST_UNLOADING;
}

uint64_t sched_on_bytes(const struct rt *m, const char *id)
{
	uint64_t n = 0;
	for (int i = 0; i < m->n_on; i++)
		if (strcmp(m->on[i].id, id) == 0)
			n += m->on[i].use.total;
	return n;
}

uint64_t sched_ours_on(struct sched *s, const char *id, const struct rt *but)
{
	uint64_t n = 0;
	for (struct rt *m = s->models; m != NULL; m = m->next)
		if (m != but && sched_resident(m))
			n += id != NULL ? sched_on_bytes(m, id) : m->dev.total;
	return n;
}

struct rt *sched_rpc_holder(struct sched *s, const struct target *g, const struct rt *but)
{
	for (struct rt *m = s->models; g->rpc[0] != '\0' && m != NULL; m = m->next)
		if (m != but && sched_resident(m))
			for (int i = 0; i < m->n_on; i++)
				if (strcmp(m->on[i].id, g->id) == 0)
					return m;
	return NULL;
}

uint64_t sched_available(struct sched *s, const struct target *g, const struct rt *but)
{
	if (sched_rpc_holder(s, g, but) != NULL)
		return 0;
	uint64_t mine = sched_ours_on(s, g->id, but), all = sched_ours_on(s, g->id, NULL);
	uint64_t others = g->used > all ? g->used - all : 0;
	uint64_t taken = (g->is_gpu ? s->cfg->reserve : 0) + others + mine;
	return g->total > taken ? g->total - taken : 0;
}

struct sched_devp *sched_devp_of(struct sched *s, const char *id)
{
	for (size_t i = 0; i < s->n_press; i++)
		if (strcmp(s->press[i].id, id) == 0)
			return &s->press[i];
	if (s->n_press == SCHED_MAX_DEVICES)
		return NULL;
	struct sched_devp *d = &s->press[s->n_press++];
	memset(d, 0, sizeof *d);
	snprintf(d->id, sizeof d->id, "%s", id);
	return d;
}

int sched_plan_on(const struct est *e, const struct target *t, uint64_t budget,
    const struct plan_opts *po, struct plan_multi *p, char *err, size_t errlen)
{
	struct plan_device pd;
	memset(&pd, 0, sizeof pd);
	snprintf(pd.name, sizeof pd.name, "%s", t->name);
	snprintf(pd.rpc, sizeof pd.rpc, "%s", t->rpc);
	pd.budget = budget;
	return plan_multi_make(e, &pd, 1, po, PLAN_SPLIT_NEVER, p, err, errlen);
}

uint64_t sched_plan_dev_total(const struct plan_multi *p)
{
	uint64_t n = 0;
	for (int i = 0; i < p->n_dev; i++)
		n += p->dev[i].use.total;
	return n;
}

uint64_t sched_ram_available(struct sched *s)
{
	for (size_t i = 0; i < devmon_count(s->env.dev); i++) {
		const struct device_info *di = devmon_get(s->env.dev, i);
		if (strcmp(di->kind, "cpu") == 0)
			return di->now.free > s->cfg->reserve ? di->now.free - s->cfg->reserve : 0;
	}
	return 0;
}

static int by_eviction_order(const void *a, const void *b)
{
	const struct rt *x = *(struct rt *const *)a, *y = *(struct rt *const *)b;
	if (x->priority != y->priority)
		return x->priority < y->priority ? -1 : 1;
	return x->last_used_ms < y->last_used_ms ? -1 : x->last_used_ms > y->last_used_ms;
}

/* Ready, unpinned models in eviction order, except m. Returns their count. */
size_t sched_evictable(struct sched *s, const struct rt *m, struct rt **out, size_t max)
{
	size_t n = 0;
	for (struct rt *r = s->models; r != NULL && n < max; r = r->next)
		if (r != m && r->state == ST_READY && !r->pinned && r->busy == 0)
			out[n++] = r;
	qsort(out, n, sizeof *out, by_eviction_order);
	return n;
}

/* 1 if ids a and b share an exclusive group of the configuration. */
static int exclusive(struct sched *s, const char *a, const char *b)
{
	for (size_t g = 0; g < s->cfg->n_exclusive; g++) {
		const struct config_group *grp = &s->cfg->exclusive[g];
		int has_a = 0, has_b = 0;
		for (size_t i = 0; i < grp->n_ids; i++) {
			has_a |= strcmp(grp->ids[i], a) == 0;
			has_b |= strcmp(grp->ids[i], b) == 0;
		}
		if (has_a && has_b)
			return 1;
	}
	return 0;
}

/* Resident models that share an exclusive group with m: they leave before m loads,
 * pinned or not. Returns their count. */
static size_t group_mates(struct sched *s, const struct rt *m, struct rt **out, size_t max)
{
	size_t n = 0;
	for (struct rt *r = s->models; r != NULL && n < max; r = r->next)
		if (r != m && (r->state == ST_READY || r->state == ST_LOADING ||
		    r->state == ST_UNLOADING) && exclusive(s, r->id, m->id))
			out[n++] = r;
	return n;
}


/* The devices of one decision: what each leaves to the model being planned, and the
 * model that an RPC server serves now (it takes one client at a time). */
struct budgets {
	struct target t[SCHED_MAX_DEVICES];
	size_t n;
	uint64_t avail[SCHED_MAX_DEVICES];
	uint64_t ovh[SCHED_MAX_DEVICES];   /* a child's learned overhead there (scheduler_learn.c) */
	struct rt *holder[SCHED_MAX_DEVICES];
};

static void budgets_init(struct sched *s, const struct rt *m, struct budgets *b)
{
	b->n = sched_targets(s, b->t, SCHED_MAX_DEVICES);
	for (size_t i = 0; i < b->n; i++) {
		b->holder[i] = sched_rpc_holder(s, &b->t[i], m);
		uint64_t mine = sched_ours_on(s, b->t[i].id, m);
		uint64_t all = sched_ours_on(s, b->t[i].id, NULL);
		uint64_t others = b->t[i].used > all ? b->t[i].used - all : 0;
		uint64_t taken = (b->t[i].is_gpu ? s->cfg->reserve : 0) + others + mine;
		uint64_t avail = b->t[i].total > taken ? b->t[i].total - taken : 0;
		/* the new child's own overhead beyond its buffers, learned on this GPU */
		b->ovh[i] = b->t[i].is_gpu ? sched_learned_overhead(s, b->t[i].id) : 0;
		b->avail[i] = avail > b->ovh[i] ? avail - b->ovh[i] : 0;
	}
}

/* r leaves: what it holds is free on each of its devices, its child's learned overhead
 * there too (NVML's used memory held it, among "others"). */
static void budgets_free(struct budgets *b, const struct rt *r)
{
	for (size_t i = 0; i < b->n; i++) {
		uint64_t on = sched_on_bytes(r, b->t[i].id);
		b->avail[i] += on > 0 ? on + b->ovh[i] : 0;
		if (b->holder[i] == r)
			b->holder[i] = NULL;
	}
}

/* Plans e over the devices of b that are not serving another model. */
static int plan_over(const struct budgets *b, const struct est *e, const struct plan_opts *po,
    enum plan_split sp, struct plan_multi *p, char *err, size_t errlen)
{
	struct plan_device pd[SCHED_MAX_DEVICES];
	size_t k = 0;
	memset(pd, 0, sizeof pd);
	for (size_t i = 0; i < b->n; i++) {
		if (b->holder[i] != NULL)
			continue;
		snprintf(pd[k].name, sizeof pd[k].name, "%s", b->t[i].name);
		snprintf(pd[k].rpc, sizeof pd[k].rpc, "%s", b->t[i].rpc);
		pd[k++].budget = b->avail[i];
	}
	if (plan_multi_make(e, pd, k, po, sp, p, err, errlen) < 0)
		return -1;
	if (k == 0 && po->offload == PLAN_GPU)
		p->fits = 0; /* every device serves another model */
	return 0;
}

/* Appends to buf what each device of b leaves free, and whom busy RPC servers serve. */
static void budgets_say(const struct budgets *b, char *buf, size_t len)
{
	for (size_t i = 0; i < b->n; i++) {
		char have[32];
		size_t l = strlen(buf);
		if (b->holder[i] != NULL)
			snprintf(buf + l, len - l, "%s%s serves %s (one client at a time)",
			    l ? "; " : "", b->t[i].id, b->holder[i]->id);
		else
			snprintf(buf + l, len - l, "%s%s %s free", l ? "; " : "", b->t[i].id,
			    util_fmt_size(b->avail[i], have, sizeof have));
	}
}

/* Appends to p's reason why a busy RPC server was passed over. */
static void say_holders(const struct budgets *b, struct plan_multi *p)
{
	for (size_t i = 0; i < b->n; i++)
		if (b->holder[i] != NULL) {
			size_t l = strlen(p->reason);
			snprintf(p->reason + l, sizeof p->reason - l, "%s%s serves %s (one client "
			    "at a time)", l ? "; " : "", b->t[i].id, b->holder[i]->id);
		}
}

/* 1 when r holds something on a device that p uses. */
static int holds_on_plan(const struct budgets *b, const struct rt *r,
    const struct plan_multi *p)
{
	for (int k = 0; k < p->n_dev; k++)
		for (size_t i = 0; i < b->n; i++)
			if (strcmp(b->t[i].name, p->dev[k].name) == 0 &&
			    sched_on_bytes(r, b->t[i].id) > 0)
				return 1;
	return 0;
}

/* Evicts idle models in eviction order, as few as make m fit whole, and of those only
 * the ones on the devices its plan then uses. 1 with evict[] when that works. */
static int evict_for(struct sched *s, const struct rt *m, const struct budgets *b,
    const struct est *e, const struct plan_opts *po, enum plan_split sp,
    struct budgets *x, struct rt **evict, size_t *n_evict)
{
	struct rt *cand[MAX_EVICT];
	size_t n = sched_evictable(s, m, cand, MAX_EVICT);
	char err[256];
	*x = *b;
	for (size_t i = 0; i < n; i++) {
		struct plan_multi p;
		budgets_free(x, cand[i]);
		if (plan_over(x, e, po, sp, &p, err, sizeof err) < 0)
			return 0;
		int fits = p.fits;
		for (size_t j = 0; fits && j <= i; j++)
			if (holds_on_plan(x, cand[j], &p))
				evict[(*n_evict)++] = cand[j];
		plan_multi_free(&p);
		if (fits)
			return 1;
	}
	return 0;
}

/* 1 when m would fit whole on x once the models that are busy now are done. */
static int fits_once_idle(struct sched *s, const struct rt *m, struct budgets *x,
    const struct est *e, const struct plan_opts *po, enum plan_split sp)
{
	for (struct rt *r = s->models; r != NULL; r = r->next)
		if (r != m && !r->pinned && ((r->state == ST_READY && r->busy > 0) ||
		    r->state == ST_LOADING))
			budgets_free(x, r);
	struct plan_multi p;
	char err[256];
	if (plan_over(x, e, po, sp, &p, err, sizeof err) < 0)
		return 0;
	int fits = p.fits;
	plan_multi_free(&p);
	return fits;
}

static enum sched_decision refuse(struct plan_multi *p, const char *err, char *why,
    size_t whylen)
{
	snprintf(why, whylen, "%s", err);
	plan_multi_free(p);
	memset(p, 0, sizeof *p);
	return SCHED_REFUSE;
}

static enum plan_split split_of(struct sched *s, const struct sched_opts *o)
{
	return o->split > 0 ? PLAN_SPLIT_AUTO : o->split < 0 ? PLAN_SPLIT_NEVER :
	    s->cfg->split == CONFIG_SPLIT_NEVER ? PLAN_SPLIT_NEVER : PLAN_SPLIT_AUTO;
}

enum sched_decision sched_decide(struct sched *s, struct rt *m, const struct sched_opts *o,
    const struct est *e, struct plan_multi *p, struct rt **evict, size_t *n_evict, char *why,
    size_t whylen)
{
	memset(p, 0, sizeof *p);
	struct plan_opts po = { .offload = PLAN_GPU, .ngl = -1, .mmproj = m->mmproj };
	for (size_t i = 0; i < o->n_cpu_patterns; i++)
		po.cpu_patterns[po.n_cpu_patterns++] = o->cpu_patterns[i];
	enum plan_split sp = split_of(s, o);
	char err[256];
	*n_evict = group_mates(s, m, evict, MAX_EVICT);
	for (size_t i = 0; o->queue_busy && i < *n_evict; i++)
		if (evict[i]->busy > 0 || evict[i]->state == ST_LOADING) {
			*n_evict = 0;
			return SCHED_BUSY; /* a mate still answers requests: they finish first */
		}
	if (*n_evict > 0)
		return SCHED_WAIT; /* the group leaves first; planning follows once it is gone */
	struct budgets b, x;
	budgets_init(s, m, &b);
	if (o->offload == PLAN_CPU)
		b.n = 0;
	if (b.n > 0) {
		if (plan_over(&b, e, &po, sp, p, err, sizeof err) < 0)
			return refuse(p, err, why, whylen);
		if (p->fits)
			return SCHED_GO;
		plan_multi_free(p);
		memset(p, 0, sizeof *p);
		if (evict_for(s, m, &b, e, &po, sp, &x, evict, n_evict))
			return SCHED_WAIT;
		*n_evict = 0;
		if (o->queue_busy && fits_once_idle(s, m, &x, e, &po, sp))
			return SCHED_BUSY; /* whole once busy models are done: better than offload */
		if (o->offload == PLAN_GPU) {
			snprintf(why, whylen, "%s does not fit whole on the devices after evicting "
			    "every idle model: ", m->id);
			budgets_say(&x, why, whylen);
			return SCHED_REFUSE;
		}
		po.offload = PLAN_AUTO;
	} else {
		po.offload = PLAN_CPU;
	}
	if (plan_over(&b, e, &po, sp, p, err, sizeof err) < 0)
		return refuse(p, err, why, whylen);
	say_holders(&b, p);
	uint64_t ram = sched_ram_available(s);
	if (p->cpu.total > ram) {
		char need[32], have[32];
		snprintf(why, whylen, "%s needs %s of RAM with %d layers on the devices; %s is "
		    "available", m->id, util_fmt_size(p->cpu.total, need, sizeof need), p->ngl,
		    util_fmt_size(ram, have, sizeof have));
		plan_multi_free(p);
		return SCHED_REFUSE;
	}
	return SCHED_GO;
}

/* ---- a dry run, for /vram/budget ---- */

int sched_preview(struct sched *s, const struct est *e, const struct sched_opts *o,
    const char *mmproj, struct sched_preview *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	struct plan_opts po = { .offload = o->offload, .ngl = -1, .mmproj = mmproj };
	for (size_t i = 0; i < o->n_cpu_patterns; i++)
		po.cpu_patterns[po.n_cpu_patterns++] = o->cpu_patterns[i];
	enum plan_split sp = split_of(s, o);
	struct budgets b, x;
	budgets_init(s, NULL, &b);
	if (o->offload == PLAN_CPU)
		b.n = 0;
	if (plan_over(&b, e, &po, sp, &out->plan, err, errlen) < 0)
		return -1;
	say_holders(&b, &out->plan);
	/* every device empty of this daemon's models: its total less the reserve and a
	 * child's learned overhead, every RPC server free */
	x = b;
	for (size_t i = 0; i < x.n; i++) {
		uint64_t res = (x.t[i].is_gpu ? s->cfg->reserve : 0) + x.ovh[i];
		x.avail[i] = x.t[i].total > res ? x.t[i].total - res : 0;
		x.holder[i] = NULL;
	}
	struct plan_multi full;
	struct plan_opts fo = po;
	fo.offload = PLAN_GPU;
	if (x.n > 0 && plan_over(&x, e, &fo, sp, &full, err, errlen) == 0) {
		out->fits_if_free = full.fits;
		plan_multi_free(&full);
	}
	return 0;
}

char *sched_preview_key(struct sched *s, const struct sched_opts *o)
{
	struct budgets b;
	budgets_init(s, NULL, &b);
	char *k = xasprintf("%d|%d|%d", split_of(s, o), o->offload, (int)s->cfg->split);
	for (size_t i = 0; i < b.n; i++) {
		char *n = xasprintf("%s|%s:%s:%llu:%llu:%llu:%s", k, b.t[i].id, b.t[i].name,
		    (unsigned long long)b.t[i].total, (unsigned long long)b.avail[i],
		    (unsigned long long)b.ovh[i], b.holder[i] ? b.holder[i]->id : "");
		free(k);
		k = n;
	}
	return k;
}
