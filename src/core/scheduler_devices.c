/*
 * scheduler_devices: which devices a child runs on. A plan's devices become the child's
 * --device and --rpc (RPC servers renumbered per child) and the model's per-device
 * holdings (struct sched_on); the local devices the llama-server binary really offers
 * are asked once (its --list-devices), so that a child is never pinned to a device its
 * binary does not have.
 */
#include "config.h"
#include "llama.h"
#include "scheduler_int.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The monitor's GPU with that id, or NULL (an RPC server, a GPU gone). */
const struct device_info *sched_gpu_by_id(struct sched *s, const char *id)
{
	for (size_t i = 0; i < devmon_count(s->env.dev); i++) {
		const struct device_info *di = devmon_get(s->env.dev, i);
		if (strcmp(di->id, id) == 0 && strcmp(di->kind, "cpu") != 0)
			return di;
	}
	return NULL;
}

/* 1 when name is an item of the comma-separated list. */
static int in_list(const char *list, const char *name)
{
	size_t n = strlen(name);
	for (const char *c = list; *c != '\0'; c += strcspn(c, ",") + (c[strcspn(c, ",")] != 0))
		if (strncmp(c, name, n) == 0 && (c[n] == ',' || c[n] == '\0'))
			return 1;
	return 0;
}

/* The local devices the configured llama-server offers ("" none), asked once per binary
 * path; NULL when it could not say (every planned device is then named as planned). */
static const char *offered_devices(struct sched *s)
{
	const char *srv = s->cfg->llama_server;
	if (s->probed_server == NULL || strcmp(s->probed_server, srv) != 0) {
		free(s->probed_server);
		s->probed_server = xstrdup(srv);
		s->offered_known = llama_devices(srv, s->offered, sizeof s->offered) == 0;
		if (s->offered_known)
			log_info("%s offers devices: %s", srv, s->offered[0] ? s->offered : "none "
			    "(the CPU only)");
		else
			log_warnx("%s --list-devices said nothing usable: children are pinned to "
			    "the devices as planned", srv);
	}
	return s->offered_known ? s->offered : NULL;
}

/* The n-th (from 0) GPU of the offered list into out, skipping RPC servers and BLAS (an
 * accelerator of the CPU, not a device to pin). Returns how many GPUs it offers. */
static int offered_gpu(const char *list, int n, char *out, size_t len)
{
	int k = 0;
	for (const char *c = list; *c != '\0'; c += strcspn(c, ",") + (c[strcspn(c, ",")] != 0)) {
		size_t l = strcspn(c, ",");
		if (l == 0 || strncmp(c, "RPC", 3) == 0 || strncmp(c, "BLAS", 4) == 0)
			continue;
		if (k++ == n)
			snprintf(out, len, "%.*s", (int)l, c);
	}
	return k;
}

/* The name under which the child's binary (offering offered, NULL: unknown) knows the
 * planned local device d, into out. 0 named, 1 nothing to pin (the binary offers no
 * GPU), -1 with err (it offers GPUs, not that one, and no safe mapping). */
static int local_name(struct sched *s, const struct plan_dev_use *d, const char *offered,
    char *out, size_t len, char *err, size_t errlen)
{
	snprintf(out, len, "%s", d->run_name);
	if (offered == NULL || in_list(offered, d->run_name))
		return 0;
	const char *srv = s->cfg->llama_server;
	int n_offered = offered_gpu(offered, -1, NULL, 0);
	if (n_offered == 0) {
		log_warnx("%s offers no GPU (%s): the child is not pinned and uses the CPU and "
		    "the RPC servers it is given", srv, offered[0] ? offered : "the CPU only");
		return 1;
	}
	/* NVML's index k (CUDA_DEVICE_ORDER=PCI_BUS_ID) is the k-th GPU of another backend
	 * (Vulkan, SYCL) of the same machine when both count the same GPUs */
	struct target t[SCHED_MAX_DEVICES];
	size_t nt = sched_targets(s, t, SCHED_MAX_DEVICES);
	int n_gpus = 0, k = -1;
	for (size_t i = 0; i < nt; i++)
		if (t[i].is_gpu) {
			if (strcmp(t[i].name, d->name) == 0)
				k = n_gpus;
			n_gpus++;
		}
	if (k >= 0 && n_offered == n_gpus) {
		offered_gpu(offered, k, out, len);
		log_info("%s offers %s, not %s: GPU %d of the machine is its %s", srv, offered,
		    d->run_name, k, out);
		return 0;
	}
	snprintf(err, errlen, "the plan uses %s, which %s does not offer (it offers %s; %d "
	    "GPU%s here): refusing to start a child that would spread over other devices",
	    d->run_name, srv, offered, n_gpus, n_gpus == 1 ? "" : "s");
	return -1;
}

/* The child's arguments: p's, its own --rpc and --device replaced by the servers and
 * devices it uses (none: --device none, so that a CPU child touches no GPU and no RPC
 * server), then the slots. A local device the binary does not offer: a binary with no
 * GPU at all (a CPU-only build, a fake GPU in the tests) leaves the child unpinned (no
 * --device: it has nothing to touch but the RPC servers given); a binary with other
 * GPUs (a Vulkan build on an NVIDIA machine) gets its k-th GPU for the machine's k-th
 * when it counts as many, else the load is refused (local_name). New array (borrowing
 * p's strings and bufs), or NULL with err. */
char **sched_child_args(struct sched *s, const struct plan_multi *p, char *rpc,
    size_t rpclen, char *devs, size_t devlen, char *np, size_t nplen, char *err,
    size_t errlen)
{
	rpc[0] = devs[0] = '\0';
	const char *offered = p->n_dev > 0 ? offered_devices(s) : NULL;
	int unpinned = 0;
	for (int i = 0; i < p->n_dev; i++) {
		char name[64];
		snprintf(name, sizeof name, "%s", p->dev[i].run_name);
		if (p->dev[i].rpc[0] == '\0') {
			int rc = local_name(s, &p->dev[i], offered, name, sizeof name, err, errlen);
			if (rc < 0)
				return NULL;
			unpinned |= rc;
		}
		size_t l = strlen(devs);
		snprintf(devs + l, devlen - l, "%s%s", i ? "," : "", name);
		if (p->dev[i].rpc[0] == '\0')
			continue;
		l = strlen(rpc);
		snprintf(rpc + l, rpclen - l, "%s%s", l ? "," : "", p->dev[i].rpc);
	}
	char **args = xcalloc(p->n_args + 8, sizeof *args);
	size_t k = 0;
	for (size_t i = 0; i < p->n_args; i++) {
		if ((strcmp(p->args[i], "--rpc") == 0 || strcmp(p->args[i], "--device") == 0) &&
		    i + 1 < p->n_args) {
			i++;
			continue;
		}
		args[k++] = p->args[i];
	}
	if (rpc[0] != '\0') { /* --rpc registers the servers before --device names them */
		args[k++] = (char *)"--rpc";
		args[k++] = rpc;
	}
	if (!unpinned) {
		args[k++] = (char *)"--device";
		args[k++] = p->n_dev > 0 ? devs : (char *)"none";
	}
	/* slots: llama-server's default is 4 sharing one KV cache of -c tokens; another
	 * count keeps that sharing, so the plan's KV size holds */
	if (s->cfg->parallel != 4) {
		snprintf(np, nplen, "%u", s->cfg->parallel);
		args[k++] = (char *)"-np";
		args[k++] = np;
		args[k++] = (char *)"--kv-unified";
	}
	args[k] = NULL;
	return args;
}

/* Records p's devices in m (by the ids of today's devices). */
void sched_take_devices(struct sched *s, struct rt *m, const struct plan_multi *p)
{
	struct target t[SCHED_MAX_DEVICES];
	size_t n = sched_targets(s, t, SCHED_MAX_DEVICES);
	memset(&m->dev, 0, sizeof m->dev);
	m->n_on = 0;
	for (int i = 0; i < p->n_dev && m->n_on < SCHED_MAX_DEVICES; i++) {
		struct sched_on *o = &m->on[m->n_on++];
		memset(o, 0, sizeof *o);
		snprintf(o->id, sizeof o->id, "%s", p->dev[i].name);
		for (size_t j = 0; j < n; j++)
			if (strcmp(t[j].name, p->dev[i].name) == 0)
				snprintf(o->id, sizeof o->id, "%s", t[j].id);
		snprintf(o->name, sizeof o->name, "%s", p->dev[i].name);
		snprintf(o->run_name, sizeof o->run_name, "%s", p->dev[i].run_name);
		snprintf(o->rpc, sizeof o->rpc, "%s", p->dev[i].rpc);
		o->use = p->dev[i].use;
		m->dev.model += o->use.model;
		m->dev.kv += o->use.kv;
		m->dev.compute += o->use.compute;
		m->dev.total += o->use.total;
	}
}


/* q waits for r's memory to show free: on one GPU (the first GPU r holds, or the one
 * q watches already), whose reading now is the baseline. */
void sched_pending_watch(struct sched *s, struct pending *q, const struct rt *r)
{
	for (int k = 0; k < r->n_on; k++) {
		const struct device_info *g = sched_gpu_by_id(s, r->on[k].id);
		if (g == NULL)
			continue;
		if (q->gpu_id[0] == '\0') {
			snprintf(q->gpu_id, sizeof q->gpu_id, "%s", g->id);
			q->used_at_evict = g->now.used;
		}
		if (strcmp(q->gpu_id, g->id) == 0)
			q->freed_bytes += r->on[k].use.total;
	}
}

void sched_measure_devices(struct rt *m)
{
	/* on NVIDIA GPUs, what the driver says the child holds on each of its devices */
	json_t *by = json_object();
	uint64_t nv = 0;
	for (int k = 0; k < m->n_on; k++) {
		const struct device_info *g = sched_gpu_by_id(m->s, m->on[k].id);
		for (size_t i = 0; g != NULL && i < g->n_procs; i++)
			if (g->procs[i].pid == (uint32_t)llama_pid(m->l)) {
				nv += g->procs[i].used;
				json_object_set_new(by, g->id, json_integer((json_int_t)g->procs[i].used));
			}
	}
	if (json_object_size(by) > 0) {
		json_object_set_new(m->measured, "nvml_process_bytes", json_integer((json_int_t)nv));
		json_object_set_new(m->measured, "nvml_process_bytes_by_device", by);
	} else {
		json_decref(by);
	}
}
