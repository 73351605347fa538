/*
 * scheduler_view: the scheduler's state as JSON, for /status, /queue, /models/{id},
 * /vram/budget and /metrics.
 */
#include "config.h"
#include "llama.h"
#include "scheduler_int.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

json_t *sched_model_json(struct sched *s, const char *id)
{
	struct rt *m = sched_find(s, id);
	if (m == NULL || m->state == ST_UNLOADED)
		return NULL;
	json_t *o = json_pack("{s:s,s:s}", "model", m->id, "state", sched_state_names[m->state]);
	if (m->l != NULL) {
		char url[64];
		snprintf(url, sizeof url, "http://127.0.0.1:%d", llama_port(m->l));
		json_object_set_new(o, "url", json_string(url));
		json_object_set_new(o, "port", json_integer(llama_port(m->l)));
		json_object_set_new(o, "pid", json_integer(llama_pid(m->l)));
	}
	json_object_set_new(o, "plan", json_pack("{s:i,s:i,s:i,s:O,s:{s:I,s:I,s:I,s:I},"
	    "s:{s:I,s:I,s:I,s:I,s:I}}", "ctx", m->ctx, "gpu_layers", m->ngl, "n_cpu_moe",
	    m->n_cpu_moe, "args", m->args ? m->args : json_null(), "device", "model_bytes",
	    (json_int_t)m->dev.model, "kv_bytes", (json_int_t)m->dev.kv, "compute_bytes",
	    (json_int_t)m->dev.compute, "total_bytes", (json_int_t)m->dev.total, "cpu",
	    "model_bytes", (json_int_t)m->cpu.model, "kv_bytes", (json_int_t)m->cpu.kv,
	    "compute_bytes", (json_int_t)m->cpu.compute, "repack_bytes",
	    (json_int_t)m->cpu.repack, "total_bytes", (json_int_t)m->cpu.total));
	json_object_set_new(o, "measured", m->measured ? json_incref(m->measured) : json_null());
	json_object_set_new(o, "pinned", json_boolean(m->pinned));
	json_object_set_new(o, "ttl_s", json_integer(sched_ttl(s, m)));
	json_object_set_new(o, "priority", json_integer(m->priority));
	/* for ps and the dashboard: where it runs, requests in flight, idle time and when
	 * the TTL would unload it (null: never, or not while busy or pinned) */
	json_object_set_new(o, "device", m->n_on > 0 ? json_string(m->on[0].id) : json_null());
	json_object_set_new(o, "devices", sched_on_json(m));
	if (m->plan_reason[0] != '\0')
		json_object_set_new(o, "plan_reason", json_string(m->plan_reason));
	json_object_set_new(o, "in_flight", json_integer(m->busy));
	int64_t idle = m->state == ST_READY && m->busy == 0 ?
	    (int64_t)(util_mono_ms() - m->last_used_ms) / 1000 : -1;
	int ttl = sched_ttl(s, m);
	json_object_set_new(o, "idle_s", idle >= 0 ? json_integer(idle) : json_null());
	json_object_set_new(o, "expires_in_s", idle >= 0 && ttl > 0 && !m->pinned ?
	    json_integer(idle < ttl ? ttl - idle : 0) : json_null());
	json_object_set_new(o, "pressure", sched_pressure_json(m));
	if (m->error[0] != '\0')
		json_object_set_new(o, "error", json_string(m->error));
	return o;
}

static json_t *usage_json(const struct plan_usage *u)
{
	return json_pack("{s:I,s:I,s:I,s:I}", "model_bytes", (json_int_t)u->model, "kv_bytes",
	    (json_int_t)u->kv, "compute_bytes", (json_int_t)u->compute, "total_bytes",
	    (json_int_t)u->total);
}

json_t *sched_on_json(const struct rt *m)
{
	json_t *a = json_array();
	json_t *nv = m->measured ? json_object_get(m->measured, "nvml_process_bytes_by_device") :
	    NULL;
	for (int i = 0; i < m->n_on; i++) {
		const struct sched_on *d = &m->on[i];
		json_t *o = json_pack("{s:s,s:s,s:s,s:o}", "id", d->id, "name", d->name, "run_name",
		    d->run_name, "planned", usage_json(&d->use));
		if (d->rpc[0] != '\0')
			json_object_set_new(o, "rpc", json_string(d->rpc));
		json_t *b = json_object_get(nv, d->id);
		json_object_set_new(o, "measured_bytes", b ? json_incref(b) : json_null());
		/* the buffers the child reported there, under its own name of the device
		 * ("RPC0[host:port]" in a child that uses that server alone) */
		const char *k;
		json_t *v, *buf = NULL;
		size_t n = strlen(d->run_name);
		json_object_foreach(m->measured, k, v)
			if (strncmp(k, d->run_name, n) == 0 && (k[n] == '\0' || (k[n] == '[' &&
			    strncmp(k + n + 1, d->rpc, strlen(d->rpc)) == 0)))
				buf = v;
		json_object_set_new(o, "measured", buf ? json_incref(buf) : json_null());
		json_array_append_new(a, o);
	}
	return a;
}

json_t *sched_devices_json(struct sched *s)
{
	struct target t[SCHED_MAX_DEVICES];
	size_t n = sched_targets(s, t, SCHED_MAX_DEVICES);
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *models = json_array();
		for (struct rt *m = s->models; m != NULL; m = m->next)
			if (sched_resident(m) && sched_on_bytes(m, t[i].id) > 0)
				json_array_append_new(models, json_pack("{s:s,s:I}", "model", m->id,
				    "planned_bytes", (json_int_t)sched_on_bytes(m, t[i].id)));
		struct rt *h = sched_rpc_holder(s, &t[i], NULL);
		json_t *o = json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:o}", "id", t[i].id, "name",
		    t[i].name, "kind", t[i].rpc[0] ? "rpc" : "gpu", "total_bytes",
		    (json_int_t)t[i].total, "reserve_bytes", (json_int_t)(t[i].is_gpu ?
		    s->cfg->reserve : 0), "planned_bytes", (json_int_t)sched_ours_on(s, t[i].id,
		    NULL), "available_bytes", (json_int_t)sched_available(s, &t[i], NULL),
		    "models", models);
		if (t[i].is_gpu)
			json_object_set_new(o, "used_bytes", json_integer((json_int_t)t[i].used));
		if (t[i].rpc[0] != '\0') {
			json_object_set_new(o, "rpc", json_string(t[i].rpc));
			/* a ggml-rpc-server serves one client at a time */
			json_object_set_new(o, "serving", h ? json_string(h->id) : json_null());
		}
		json_array_append_new(a, o);
	}
	return a;
}

json_t *sched_loaded_json(struct sched *s)
{
	json_t *a = json_array();
	for (struct rt *m = s->models; m != NULL; m = m->next)
		if (m->state == ST_LOADING || m->state == ST_READY || m->state == ST_UNLOADING)
			json_array_append_new(a, sched_model_json(s, m->id));
	return a;
}

json_t *sched_queue_json(struct sched *s)
{
	json_t *w = json_array(), *r = json_array();
	int pos = 1;
	for (struct pending *p = s->queue; p != NULL; p = p->next, pos++) {
		json_t *ev = json_array();
		for (size_t i = 0; i < p->n_evict; i++)
			json_array_append_new(ev, json_string(p->evict[i]));
		json_array_append_new(w, json_pack("{s:s,s:i,s:o,s:I}", "model", p->id,
		    "position", pos, "waiting_for", ev, "waited_ms",
		    (json_int_t)(util_mono_ms() - p->since_ms)));
	}
	for (struct rt *m = s->models; m != NULL; m = m->next)
		if (m->state == ST_LOADING)
			json_array_append_new(r, json_pack("{s:s,s:I}", "model", m->id,
			    "loading_ms", (json_int_t)(util_mono_ms() - m->started_ms)));
	return json_pack("{s:o,s:o,s:i}", "waiting", w, "running", r, "depth",
	    (int)s->n_queue + (int)json_array_size(r));
}

int sched_budget(struct sched *s, char *id, size_t idlen, uint64_t *total,
    uint64_t *avail, char *rpc, size_t rpclen)
{
	struct target t;
	if (sched_target(s, &t) < 0)
		return -1;
	snprintf(id, idlen, "%s", t.id);
	snprintf(rpc, rpclen, "%s", t.rpc);
	*total = t.total;
	*avail = sched_available(s, &t, NULL);
	return 0;
}

json_t *sched_evictable_json(struct sched *s)
{
	struct rt *cand[MAX_EVICT];
	size_t n = sched_evictable(s, NULL, cand, MAX_EVICT);
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_pack("{s:s,s:s,s:I}", "kind", "model", "model",
		    cand[i]->id, "bytes", (json_int_t)cand[i]->dev.total));
	return a;
}

json_t *sched_state_counts(struct sched *s)
{
	json_int_t n[5] = { 0 };
	for (struct rt *m = s->models; m != NULL; m = m->next)
		n[m->state]++;
	json_t *o = json_object();
	for (int i = 1; i < 5; i++)
		json_object_set_new(o, sched_state_names[i], json_integer(n[i]));
	return o;
}
