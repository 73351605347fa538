/*
 * scheduler_learn: what a device costs beyond the buffers. On an NVIDIA GPU the driver
 * (NVML) says how much memory each llama-server child really holds; llama.cpp's log
 * says how much its buffers (model, KV, compute) take. The difference is the CUDA
 * context, cuBLAS workspace and memory pools: real VRAM that no plan counts. Once a
 * second (sched_learn_tick) every ready child listed by its GPU gives a sample, the
 * largest difference seen over its life (pools and the cuBLAS workspace grow on the
 * first requests, after ready). Per device the figure is the median of the last
 * LEARN_WINDOW loads' samples: the overhead is nearly a constant of the device, its
 * driver and the build, so the median is that constant, and a load that read wrong (a
 * child that forked a helper, a pool that a huge batch grew, a reading between two
 * allocations) moves it not at all while it is less than half of the window, where an
 * average (EWMA) would move by a share of the error on every outlier. The window also
 * forgets: after a driver update, five loads make the new figure.
 *
 * The figure is kept per device identity (NVML UUID, else its name), stored in the
 * registry (registry_overhead.c) at every change and loaded at start, and the budget a
 * new plan gets on that device is smaller by it (sched_learned_overhead, used by
 * scheduler_budget.c and GET /vram/budget). Devices without NVML process readings (AMD,
 * RPC servers, the CPU) learn nothing and plan as before.
 */
#include "config.h"
#include "llama.h"
#include "registry.h"
#include "scheduler_int.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

#define LEARN_WINDOW 9           /* loads whose samples make the median */
#define LEARN_DEVICES 32         /* devices remembered (NVML lists at most DEVICE_MAX) */
#define LEARN_GROWTH (1u << 20)  /* a load's sample is rewritten when it grew by a MiB */

/* One device's figure is the registry's row (registry.h), kept here as it is stored:
 * device (NVML UUID, else its name), name, bytes (sched_learn_median of the samples),
 * loads, and the newest LEARN_WINDOW samples, oldest first. */
_Static_assert(LEARN_WINDOW <= REG_OVERHEAD_SAMPLES, "the window fits a registry row");

struct sched_learn {
	struct reg_overhead dev[LEARN_DEVICES];
	size_t n;
};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

uint64_t sched_learn_median(const uint64_t *v, size_t n)
{
	uint64_t s[LEARN_WINDOW];
	if (n == 0)
		return 0;
	if (n > LEARN_WINDOW) {
		v += n - LEARN_WINDOW; /* the newest */
		n = LEARN_WINDOW;
	}
	memcpy(s, v, n * sizeof *s);
	qsort(s, n, sizeof *s, cmp_u64);
	if (n % 2 == 1)
		return s[n / 2];
	return s[n / 2 - 1] + (s[n / 2] - s[n / 2 - 1]) / 2;
}

static struct reg_overhead *find(struct sched_learn *l, const char *key)
{
	for (size_t i = 0; l != NULL && i < l->n; i++)
		if (strcmp(l->dev[i].device, key) == 0)
			return &l->dev[i];
	return NULL;
}

struct sched_learn *sched_learn_new(struct registry *reg)
{
	struct sched_learn *l = xcalloc(1, sizeof *l);
	size_t n = 0;
	struct reg_overhead *rows = reg != NULL ? registry_overheads(reg, &n) : NULL;
	for (size_t i = 0; i < n && l->n < LEARN_DEVICES; i++) {
		struct reg_overhead *d = &l->dev[l->n++];
		*d = rows[i];
		if (d->n > LEARN_WINDOW)
			d->n = LEARN_WINDOW;
		d->bytes = sched_learn_median(d->sample, d->n);
	}
	free(rows);
	return l;
}

void sched_learn_free(struct sched_learn *l)
{
	free(l);
}

static void save(struct registry *reg, const struct reg_overhead *d)
{
	if (reg != NULL)
		registry_overhead_save(reg, d);
}

int sched_learn_observe(struct sched_learn *l, struct registry *reg, const char *key,
    const char *name, long long row, uint64_t bytes)
{
	struct reg_overhead *d = find(l, key);
	if (d == NULL) {
		if (l->n == LEARN_DEVICES)
			return 0;
		d = &l->dev[l->n++];
		memset(d, 0, sizeof *d);
		snprintf(d->device, sizeof d->device, "%s", key);
	}
	snprintf(d->name, sizeof d->name, "%s", name);
	size_t i = d->n;
	while (i > 0 && d->row[i - 1] != row)
		i--;
	if (i > 0) {
		/* this load's sample: its largest reading, rewritten when it grew */
		if (bytes < d->sample[i - 1] + LEARN_GROWTH)
			return 0;
		d->sample[i - 1] = bytes;
	} else {
		if (d->n == LEARN_WINDOW) {
			memmove(d->row, d->row + 1, (LEARN_WINDOW - 1) * sizeof *d->row);
			memmove(d->sample, d->sample + 1, (LEARN_WINDOW - 1) * sizeof *d->sample);
			d->n--;
		}
		d->row[d->n] = row;
		d->sample[d->n++] = bytes;
		d->loads++;
	}
	uint64_t was = d->bytes;
	d->bytes = sched_learn_median(d->sample, d->n);
	save(reg, d);
	if (d->bytes != was) {
		char a[32], b[32];
		log_info("device %s: learned overhead %s (was %s, median of %zu loads)", d->name,
		    util_fmt_size(d->bytes, a, sizeof a), util_fmt_size(was, b, sizeof b), d->n);
	}
	return d->bytes != was;
}

/* The device with this id (borrowed), or NULL. */
static const struct device_info *device(struct sched *s, const char *dev_id)
{
	for (size_t i = 0; dev_id != NULL && i < devmon_count(s->env.dev); i++) {
		const struct device_info *di = devmon_get(s->env.dev, i);
		if (strcmp(di->id, dev_id) == 0)
			return di;
	}
	return NULL;
}

static const char *key_of(const struct device_info *di)
{
	return di->uuid[0] != '\0' ? di->uuid : di->name;
}

/* The bytes of m's buffers on an accelerator, as its child reported them (every
 * measured device but the host's: CPU, CPU_Mapped, CUDA_Host, ...); its plan's device
 * total when it reported none (a child that put nothing there, or a log not read). */
static uint64_t buffers(const struct rt *m)
{
	const char *dev;
	json_t *o;
	uint64_t n = 0;
	int any = 0;
	json_object_foreach(m->measured, dev, o) {
		size_t len = strlen(dev);
		if (!json_is_object(o) || strncmp(dev, "CPU", 3) == 0 ||
		    (len >= 5 && strcmp(dev + len - 5, "_Host") == 0))
			continue;
		any = 1;
		n += (uint64_t)json_integer_value(json_object_get(o, "model_bytes")) +
		    (uint64_t)json_integer_value(json_object_get(o, "kv_bytes")) +
		    (uint64_t)json_integer_value(json_object_get(o, "compute_bytes"));
	}
	return any ? n : m->dev.total;
}

/* Reads one NVIDIA GPU: each ready child on it alone (a child split over several
 * devices says nothing about one of them) is a sample. */
static void learn_gpu(struct sched *s, const struct device_info *g)
{
	for (struct rt *m = s->models; m != NULL; m = m->next) {
		if (m->state != ST_READY || m->l == NULL || m->n_on != 1 ||
		    strcmp(m->on[0].id, g->id) != 0)
			continue;
		for (size_t i = 0; i < g->n_procs; i++) {
			if (g->procs[i].pid != (uint32_t)llama_pid(m->l))
				continue;
			uint64_t buf = buffers(m), used = g->procs[i].used;
			if (used == 0)
				continue; /* NVML could not say (WDDM, MIG without rights) */
			sched_learn_observe(s->learn, s->env.reg, key_of(g), g->name, m->row,
			    used > buf ? used - buf : 0);
		}
	}
}

void sched_learn_tick(struct sched *s)
{
	for (size_t i = 0; s->learn != NULL && i < devmon_count(s->env.dev); i++) {
		const struct device_info *g = devmon_get(s->env.dev, i);
		if (g->ok && strcmp(g->kind, "nvidia") == 0)
			learn_gpu(s, g);
	}
}

uint64_t sched_learned_overhead(struct sched *s, const char *dev_id)
{
	const struct device_info *di = device(s, dev_id);
	const struct reg_overhead *d = di != NULL ? find(s->learn, key_of(di)) : NULL;
	return d != NULL ? d->bytes : 0;
}

json_t *sched_learned_json(struct sched *s, const char *dev_id)
{
	const struct device_info *di = device(s, dev_id);
	const struct reg_overhead *d = di != NULL ? find(s->learn, key_of(di)) : NULL;
	if (d == NULL)
		return NULL;
	json_t *smp = json_array();
	for (size_t i = 0; i < d->n; i++)
		json_array_append_new(smp, json_integer((json_int_t)d->sample[i]));
	return json_pack("{s:s,s:I,s:I,s:o,s:s}", "device", d->device, "bytes",
	    (json_int_t)d->bytes, "loads", (json_int_t)d->loads, "samples", smp, "method",
	    "median of the last loads' samples");
}
