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

int sched_target(struct sched *s, struct target *t)
{
	memset(t, 0, sizeof *t);
	const char *rpc = s->cfg->rpc_device;
	if (rpc != NULL) {
		const char *sp = strchr(rpc, ' ');
		snprintf(t->rpc, sizeof t->rpc, "%.*s", (int)(sp - rpc), rpc);
		snprintf(t->id, sizeof t->id, "RPC0[%s]", t->rpc);
		util_parse_size(sp + 1, &t->total);
		t->used = 0; /* an RPC server reports nothing: what we plan is what it holds */
		return 0;
	}
	const struct device_info *g = sched_gpu(s);
	if (g == NULL)
		return -1;
	snprintf(t->id, sizeof t->id, "%s", g->id);
	t->total = g->now.total;
	t->used = g->now.used;
	t->t_ms = g->now.t_ms;
	t->is_gpu = 1;
	return 0;
}

uint64_t sched_ours(struct sched *s, const struct rt *but)
{
	uint64_t n = 0;
	for (struct rt *m = s->models; m != NULL; m = m->next)
		if (m != but && (m->state == ST_LOADING || m->state == ST_READY ||
		    m->state == ST_UNLOADING))
			n += m->dev.total;
	return n;
}

uint64_t sched_available(struct sched *s, const struct target *g, const struct rt *but)
{
	uint64_t mine = sched_ours(s, but), all = sched_ours(s, NULL);
	uint64_t others = g->used > all ? g->used - all : 0;
	uint64_t taken = (g->is_gpu ? s->cfg->reserve : 0) + others + mine;
	return g->total > taken ? g->total - taken : 0;
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

/* What unpinned models other than m hold on the device while they are busy (requests
 * in flight) or loading: free for m once they are done and idle. */
static uint64_t busy_bytes(struct sched *s, const struct rt *m)
{
	uint64_t b = 0;
	for (struct rt *r = s->models; r != NULL; r = r->next)
		if (r != m && !r->pinned && ((r->state == ST_READY && r->busy > 0) ||
		    r->state == ST_LOADING))
			b += r->dev.total;
	return b;
}

/* 1 if ids a and b share an exclusive group of the configuration. */
static int exclusive(struct sched *s, const char *a, const char *b)
{
	for (size_t g = 0; g < s->cfg->n_exclusive; g++) {
		char buf[1024], *save = NULL;
		int has_a = 0, has_b = 0;
		snprintf(buf, sizeof buf, "%s", s->cfg->exclusive[g]);
		for (char *t = strtok_r(buf, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
			has_a |= strcmp(t, a) == 0;
			has_b |= strcmp(t, b) == 0;
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


enum sched_decision sched_decide(struct sched *s, struct rt *m, const struct sched_opts *o,
    const struct est *e, struct plan *p, struct rt **evict, size_t *n_evict, char *why,
    size_t whylen)
{
	struct target tg;
	const struct target *g = o->offload != PLAN_CPU && sched_target(s, &tg) == 0 ? &tg : NULL;
	struct plan_opts po = { .offload = PLAN_GPU, .ngl = -1, .mmproj = m->mmproj };
	for (size_t i = 0; i < o->n_cpu_patterns; i++)
		po.cpu_patterns[po.n_cpu_patterns++] = o->cpu_patterns[i];
	struct plan_device pd;
	memset(&pd, 0, sizeof pd);
	char err[256];
	*n_evict = group_mates(s, m, evict, MAX_EVICT);
	for (size_t i = 0; o->queue_busy && i < *n_evict; i++)
		if (evict[i]->busy > 0 || evict[i]->state == ST_LOADING) {
			*n_evict = 0;
			return SCHED_BUSY; /* a mate still answers requests: they finish first */
		}
	if (*n_evict > 0)
		return SCHED_WAIT; /* the group leaves first; planning follows once it is gone */
	if (g != NULL) {
		snprintf(pd.name, sizeof pd.name, "%.63s", g->id);
		snprintf(pd.rpc, sizeof pd.rpc, "%s", g->rpc);
		uint64_t avail = sched_available(s, g, m);
		pd.budget = avail;
		if (plan_make(e, &pd, &po, p, err, sizeof err) < 0) {
			snprintf(why, whylen, "%s", err);
			return SCHED_REFUSE;
		}
		if (p->fits)
			return SCHED_GO;
		/* evict idle models, as few as make the whole model fit */
		struct rt *cand[MAX_EVICT];
		size_t n = sched_evictable(s, m, cand, MAX_EVICT);
		uint64_t freed = 0;
		for (size_t i = 0; i < n && o->offload != PLAN_CPU; i++) {
			freed += cand[i]->dev.total;
			evict[(*n_evict)++] = cand[i];
			if (avail + freed >= p->dev.total) {
				plan_free(p);
				memset(p, 0, sizeof *p);
				return SCHED_WAIT;
			}
		}
		*n_evict = 0;
		if (o->queue_busy && o->offload != PLAN_CPU &&
		    avail + freed + busy_bytes(s, m) >= p->dev.total) {
			plan_free(p);
			memset(p, 0, sizeof *p);
			return SCHED_BUSY; /* whole once busy models are done: better than offload */
		}
		if (o->offload == PLAN_GPU) {
			char need[32], have[32];
			snprintf(why, whylen, "%s needs %s on %s; %s is free for it after evicting "
			    "every idle model", m->id, util_fmt_size(p->dev.total, need, sizeof need),
			    g->id, util_fmt_size(avail + freed, have, sizeof have));
			plan_free(p);
			return SCHED_REFUSE;
		}
		plan_free(p);
		po.offload = PLAN_AUTO;
		if (plan_make(e, &pd, &po, p, err, sizeof err) < 0) {
			snprintf(why, whylen, "%s", err);
			return SCHED_REFUSE;
		}
	} else {
		po.offload = PLAN_CPU;
		if (plan_make(e, NULL, &po, p, err, sizeof err) < 0) {
			snprintf(why, whylen, "%s", err);
			return SCHED_REFUSE;
		}
	}
	uint64_t ram = sched_ram_available(s);
	if (p->cpu.total > ram) {
		char need[32], have[32];
		snprintf(why, whylen, "%s needs %s of RAM with %d layers on the GPU; %s is "
		    "available", m->id, util_fmt_size(p->cpu.total, need, sizeof need), p->ngl,
		    util_fmt_size(ram, have, sizeof have));
		plan_free(p);
		return SCHED_REFUSE;
	}
	return SCHED_GO;
}
