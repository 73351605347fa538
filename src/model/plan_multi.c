/*
 * plan_multi: a plan over several devices (local GPUs and RPC servers) and the CPU.
 *
 * It chooses the devices and splits the layers; what one device holds for a range of
 * layers, the CPU's share and the arguments common to every plan come from plan.c. A
 * split is expressed with --tensor-split as whole layer counts per device, which
 * llama.cpp turns into cumulative fractions (llama-model.cpp load_tensors: the unit
 * il - i_gpu_start goes to the first device whose cumulative share exceeds
 * (il - i_gpu_start) / act_gpu_layers), so integer counts reproduce the plan exactly,
 * the output head being the last unit, on the last device used.
 */
#include "plan.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The device compute buffers a split may need, by (experts, output, lead, all). */
struct mctx {
	const struct est *e;
	const struct plan_opts *o;
	const struct plan_device *devs;
	size_t n_devs;
	size_t ord[PLAN_MAX_DEVICES]; /* the order tried: --device order of the child */
	int n;
	uint64_t comp[2][2][2][2], out_only;
	uint64_t pp_extra;        /* pipeline parallelism: 3 more copies of the inputs */
	int pp;                   /* the split being tried runs with it */
};

/* llama.cpp's pipeline copies (GGML_SCHED_MAX_COPIES) beyond the first */
#define PP_EXTRA_COPIES 3

static void add_arg(struct plan_multi *m, size_t at, const char *s)
{
	m->args = xreallocarray(m->args, m->n_args + 2, sizeof *m->args);
	memmove(&m->args[at + 1], &m->args[at], (m->n_args - at) * sizeof *m->args);
	m->args[at] = xstrdup(s);
	m->n_args++;
	m->args[m->n_args] = NULL;
}

/* Index of "--fit" in the arguments (the new ones go before it), or the end. */
static size_t fit_at(const struct plan_multi *m)
{
	for (size_t i = 0; i < m->n_args; i++)
		if (strcmp(m->args[i], "--fit") == 0)
			return i;
	return m->n_args;
}

/* Takes over the arguments and figures of a one-device plan p of device d. */
static void from_single(struct plan_multi *m, struct plan *p, const struct plan_device *d, int n)
{
	m->ngl = p->ngl;
	m->n_cpu_moe = p->n_cpu_moe;
	m->fits = p->fits;
	m->cpu = p->cpu;
	snprintf(m->reason, sizeof m->reason, "%s", p->reason);
	m->args = p->args;
	m->n_args = p->n_args;
	p->args = NULL;
	p->n_args = 0;
	if (d == NULL || p->ngl == 0)
		return;
	struct plan_dev_use *u = &m->dev[m->n_dev++];
	snprintf(u->name, sizeof u->name, "%s", d->name);
	snprintf(u->run_name, sizeof u->run_name, "%s", d->rpc[0] ? "RPC0" : d->name);
	snprintf(u->rpc, sizeof u->rpc, "%s", d->rpc);
	u->budget = d->budget;
	u->first = n + 1 - p->ngl;
	u->count = p->ngl;
	u->output = 1;
	u->use = p->dev;
}

static uint64_t unit_model(const struct mctx *c, int u, int k)
{
	if (u == c->n)
		return c->e->output_bytes;
	const struct est_layer *L = &c->e->layer[u];
	return L->weights - (u < k ? L->exps : 0);
}

/* What a device running units [a, a + count) holds, experts of layers < k on the CPU. */
static void range_use(const struct mctx *c, int a, int count, int k, struct plan_usage *u)
{
	memset(u, 0, sizeof *u);
	int layers = 0, experts = 0;
	for (int i = a; i < a + count; i++) {
		u->model += unit_model(c, i, k);
		if (i == c->n)
			continue;
		if (!c->o->no_kv_offload)
			u->kv += c->e->layer[i].kv;
		experts |= c->e->layer[i].exps > 0 && i >= k;
		layers++;
	}
	int output = a + count == c->n + 1;
	if (layers == 0)
		u->compute = output ? c->out_only : 0;
	else
		u->compute = c->comp[experts][output][a < (int)c->e->a.n_dense_lead][layers == c->n] +
		    (c->pp ? c->pp_extra : 0);
	u->total = u->model + u->kv + u->compute;
}

/* Fills the devices from the last with the last ngl units, each up to its budget: the
 * output head (the last unit, with the logits) lands on the last device that holds it.
 * Returns 1 when every unit found a device (count[] says how many each took). */
static int greedy(const struct mctx *c, int ngl, int k, int count[])
{
	int u = c->n + 1, lo = c->n + 1 - ngl;
	for (size_t d = c->n_devs; d-- > 0;) {
		count[d] = 0;
		uint64_t model = 0, kv = 0;
		int layers = 0, experts = 0, out = 0;
		while (u - count[d] > lo) {
			int i = u - count[d] - 1;
			uint64_t m2 = model + unit_model(c, i, k), kv2 = kv;
			int l2 = layers, x2 = experts;
			if (i < c->n) {
				kv2 += c->o->no_kv_offload ? 0 : c->e->layer[i].kv;
				x2 |= c->e->layer[i].exps > 0 && i >= k;
				l2++;
			}
			out |= i == c->n;
			uint64_t comp = l2 == 0 ? c->out_only :
			    c->comp[x2][out][i < (int)c->e->a.n_dense_lead][l2 == c->n] +
			    (c->pp ? c->pp_extra : 0);
			if (m2 + kv2 + comp > c->devs[c->ord[d]].budget)
				break;
			model = m2;
			kv = kv2;
			layers = l2;
			experts = x2;
			count[d]++;
		}
		u -= count[d];
	}
	return u == lo;
}

/* greedy in the given order, then with each other device moved last (the one that
 * holds the output head, when the last cannot): leaves in c->ord the order that fits. */
static int orders(struct mctx *c, int ngl, int k, int count[])
{
	for (size_t last = c->n_devs; last-- > 0;) {
		for (size_t d = 0, j = 0; d < c->n_devs; d++)
			if (d != last)
				c->ord[j++] = d;
		c->ord[c->n_devs - 1] = last;
		if (greedy(c, ngl, k, count))
			return 1;
	}
	for (size_t d = 0; d < c->n_devs; d++)
		c->ord[d] = d;
	return 0;
}

/* The split's arguments: plan.c's for ngl and k, with the devices and the split. */
static int split_args(const struct mctx *c, struct plan_multi *m, char *err, size_t errlen)
{
	struct plan_device fake;
	memset(&fake, 0, sizeof fake);
	snprintf(fake.name, sizeof fake.name, "split");
	fake.budget = UINT64_MAX;
	struct plan_opts o2 = *c->o;
	o2.ngl = m->ngl;
	o2.n_cpu_moe = m->n_cpu_moe;
	struct plan p;
	if (plan_make(c->e, &fake, &o2, &p, err, errlen) < 0)
		return -1;
	m->cpu = p.cpu;
	m->args = p.args;
	m->n_args = p.n_args;
	char devs[PLAN_MAX_DEVICES * 64] = "", ts[PLAN_MAX_DEVICES * 12] = "";
	char rpc[PLAN_MAX_DEVICES * 130] = "";
	int n_rpc = 0;
	for (int i = 0; i < m->n_dev; i++) {
		struct plan_dev_use *u = &m->dev[i];
		if (u->rpc[0] != '\0') {
			snprintf(u->run_name, sizeof u->run_name, "RPC%d", n_rpc++);
			size_t l = strlen(rpc);
			snprintf(rpc + l, sizeof rpc - l, "%s%s", l ? "," : "", u->rpc);
		} else {
			memcpy(u->run_name, u->name, sizeof u->run_name); /* same size */
		}
		size_t l = strlen(devs);
		snprintf(devs + l, sizeof devs - l, "%s%s", i ? "," : "", u->run_name);
		l = strlen(ts);
		snprintf(ts + l, sizeof ts - l, "%s%d", i ? "," : "", u->count);
	}
	/* --rpc registers the servers' devices, so it comes before --device names them */
	size_t at = fit_at(m);
	if (n_rpc > 0) {
		add_arg(m, at++, "--rpc");
		add_arg(m, at++, rpc);
	}
	add_arg(m, at++, "--device");
	add_arg(m, at++, devs);
	if (m->n_dev > 1) {
		add_arg(m, at++, "--tensor-split");
		add_arg(m, at++, ts);
	}
	return 0;
}

/* Records the split found by greedy (count[] per device) into m. */
static void take_split(struct mctx *c, struct plan_multi *m, int ngl, int k, const int *count)
{
	int u = c->n + 1 - ngl, used = 0;
	for (size_t d = 0; d < c->n_devs; d++)
		used += count[d] > 0;
	int pp = c->pp;
	c->pp = pp && used > 1;
	m->ngl = ngl;
	m->n_cpu_moe = k;
	m->n_dev = 0;
	for (size_t d = 0; d < c->n_devs; d++) {
		if (count[d] == 0)
			continue;
		struct plan_dev_use *x = &m->dev[m->n_dev++];
		const struct plan_device *dv = &c->devs[c->ord[d]];
		memset(x, 0, sizeof *x);
		snprintf(x->name, sizeof x->name, "%s", dv->name);
		snprintf(x->rpc, sizeof x->rpc, "%s", dv->rpc);
		x->budget = dv->budget;
		x->first = u;
		x->count = count[d];
		x->output = u + count[d] == c->n + 1;
		range_use(c, u, count[d], k, &x->use);
		u += count[d];
	}
	c->pp = pp;
}

/* Searches a split: every layer on the devices, then experts of the first layers on
 * the CPU, then whole layers, first layer first. Returns 1 when one fits. */
static int search_split(struct mctx *c, struct plan_multi *m, int *count)
{
	int n = c->n, moe = c->e->a.n_expert > 0;
	if (c->o->ngl >= 0) { /* forced: the remainder lands on the first device */
		int ngl = c->o->ngl > n + 1 ? n + 1 : c->o->ngl;
		for (size_t d = 0; d < c->n_devs; d++)
			c->ord[d] = d;
		int k = c->o->n_cpu_moe > n ? n : c->o->n_cpu_moe;
		c->pp = ngl == n + 1 && k == 0 && !c->o->no_kv_offload;
		int ok = greedy(c, ngl, k, count);
		int placed = 0;
		for (size_t d = 0; d < c->n_devs; d++)
			placed += count[d];
		count[0] += ngl - placed;
		take_split(c, m, ngl, k, count);
		return ok;
	}
	int k = 0;
	for (; k <= (moe ? n : 0); k++) {
		/* --n-cpu-moe is a tensor override: no pipeline parallelism with it */
		c->pp = k == 0 && !c->o->no_kv_offload;
		if (orders(c, n + 1, k, count)) {
			take_split(c, m, n + 1, k, count);
			return 1;
		}
		if (c->o->offload == PLAN_GPU)
			return 0;
	}
	k = moe ? n : 0;
	c->pp = 0;
	for (int ngl = n; ngl >= 1; ngl--) {
		if (orders(c, ngl, k, count)) {
			take_split(c, m, ngl, k, count);
			return 1;
		}
	}
	return 0;
}

static void mctx_init(struct mctx *c)
{
	for (int x = 0; x < 2; x++)
		for (int out = 0; out < 2; out++)
			for (int lead = 0; lead < 2; lead++)
				for (int all = 0; all < 2; all++)
					c->comp[x][out][lead][all] = plan_dev_compute(c->e, 1, all, x,
					    out, lead);
	c->out_only = plan_dev_compute(c->e, 0, 0, 0, 1, 0);
	c->pp_extra = PP_EXTRA_COPIES * plan_pp_inputs(c->e);
}

/* Index of the device holding the whole model with the smallest budget, -1 if none,
 * -2 on bad options (err). The whole placement needs the same on every device: it is
 * planned once. */
static int best_single(const struct mctx *c, char *err, size_t errlen)
{
	if (c->o->ngl >= 0 || c->o->offload == PLAN_CPU)
		return -1;
	struct plan_opts o2 = *c->o;
	o2.offload = PLAN_GPU;
	struct plan p;
	if (plan_make(c->e, &c->devs[0], &o2, &p, err, errlen) < 0)
		return -2;
	int best = -1;
	for (size_t d = 0; d < c->n_devs; d++)
		if (p.dev.total <= c->devs[d].budget &&
		    (best < 0 || c->devs[d].budget < c->devs[best].budget))
			best = (int)d;
	plan_free(&p);
	return best;
}

int plan_multi_make(const struct est *e, const struct plan_device *devs, size_t n_devs,
    const struct plan_opts *o, enum plan_split split, struct plan_multi *m, char *err,
    size_t errlen)
{
	memset(m, 0, sizeof *m);
	int n = (int)e->a.n_layer;
	if (n_devs > PLAN_MAX_DEVICES)
		n_devs = PLAN_MAX_DEVICES;
	if (n_devs <= 1 || o->offload == PLAN_CPU) {
		struct plan p;
		const struct plan_device *d = n_devs > 0 ? devs : NULL;
		if (plan_make(e, d, o, &p, err, errlen) < 0)
			return -1;
		from_single(m, &p, o->offload == PLAN_CPU ? NULL : d, n);
		return 0;
	}
	struct mctx c = { .e = e, .o = o, .devs = devs, .n_devs = n_devs, .n = n };
	int best = best_single(&c, err, errlen);
	int can_split = split == PLAN_SPLIT_AUTO && o->n_cpu_patterns == 0 && o->mmproj == NULL;
	int rc = 0;
	if (best == -2) {
		rc = -1;
	} else if (best >= 0 || !can_split) {
		if (best < 0) /* no split: the largest budget, its own offload */
			for (size_t d = 0; d < n_devs; d++)
				if (best < 0 || devs[d].budget > devs[best].budget)
					best = (int)d;
		struct plan p;
		if (plan_make(e, &devs[best], o, &p, err, errlen) < 0)
			return -1;
		from_single(m, &p, &devs[best], n);
		if (m->n_dev > 0) {
			size_t at = fit_at(m);
			add_arg(m, at, "--device");
			add_arg(m, at + 1, m->dev[0].run_name);
		}
	} else {
		mctx_init(&c);
		int count[PLAN_MAX_DEVICES] = { 0 };
		m->fits = search_split(&c, m, count);
		if (m->ngl == 0) {
			struct plan p;
			if (plan_make(e, NULL, o, &p, err, errlen) < 0)
				rc = -1;
			else
				from_single(m, &p, NULL, n);
			m->fits = o->offload != PLAN_GPU;
			if (!m->fits)
				snprintf(m->reason, sizeof m->reason, "does not fit on the %zu "
				    "devices together", n_devs);
		} else if (split_args(&c, m, err, errlen) < 0) {
			rc = -1;
		} else {
			m->split = m->n_dev > 1;
			snprintf(m->reason, sizeof m->reason, "%s: %d of %d layers over %d devices%s",
			    m->fits ? "split" : "does not fit", m->ngl, n + 1, m->n_dev,
			    m->n_cpu_moe ? ", experts of the first layers on the CPU" : "");
		}
	}
	return rc;
}

void plan_multi_free(struct plan_multi *m)
{
	for (size_t i = 0; i < m->n_args; i++)
		free(m->args[i]);
	free(m->args);
	m->args = NULL;
	m->n_args = 0;
}
