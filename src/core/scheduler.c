/*
 * scheduler (sched_): model lifecycle, budget, eviction, TTL and the load queue. See scheduler.h.
 *
 * It knows no HTTP: loads, unloads and switches report their outcome to a sched_reply
 * (the routes turn it into an answer), and every change calls env.changed.
 *
 * The budget and the decision to start, evict or refuse are in scheduler_budget.c,
 * its JSON views in scheduler_view.c, Ollama's models in scheduler_ollama.c.
 *
 * Knowingly simple: one GPU (the first one that reads), one llama-server per model,
 * loads planned one at a time. A load that needs others evicted becomes a pending
 * entry that starts once those models' children have exited (memory freed).
 */
#include "scheduler.h"
#include "scheduler_int.h"
#include "child.h"
#include "config.h"
#include "device.h"
#include "estimate.h"
#include "gguf.h"
#include "llama.h"
#include "model.h"
#include "notify.h"
#include "registry.h"
#include "util.h"

#include <event2/event.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define START_TIMEOUT_MS (180 * 1000)
#define PENDING_TIMEOUT_MS (60 * 1000)
#define STOP_GRACE_MS 10000
#define MEMORY_WAIT_MS 10000
/* a refused load is worth asking again after this long: the HTTP layer's one
 * Retry-After (REPLY_RETRY_AFTER_S in reply.h, which api.c sends) */
#define SCHED_RETRY_AFTER_S 5

static const struct sched_reply NOBODY = { NULL, NULL };

const char *const sched_state_names[] = { "unloaded", "loading", "ready", "unloading",
	"failed" };

/* Whoever waits for a model or for room looks again. */
static void changed(struct sched *s)
{
	if (s->env.changed != NULL)
		s->env.changed(s->env.changed_arg);
}

void sched_tell(struct sched_reply r, int status, json_t *body)
{
	if (r.fn != NULL) {
		struct sched_outcome o = { .status = status, .body = body };
		r.fn(r.arg, &o);
	}
	json_decref(body);
}

void sched_tell_error(struct sched_reply r, int status, const char *code, const char *fmt,
    ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (r.fn != NULL) {
		struct sched_outcome o = { .status = status, .code = code, .message = msg,
			.retry_after_s = status == 503 ? SCHED_RETRY_AFTER_S : 0 };
		r.fn(r.arg, &o);
	}
}

void sched_emit(struct sched *s, const char *type, json_t *data)
{
	registry_event(s->env.reg, type, data);
	if (s->env.notify != NULL)
		notify_emit(s->env.notify, type, data);
	json_decref(data);
	changed(s);
}

struct rt *sched_find(struct sched *s, const char *id)
{
	for (struct rt *m = s->models; m != NULL; m = m->next)
		if (strcmp(m->id, id) == 0)
			return m;
	return NULL;
}

/* The runtime of id, made when new; info (the registry's row) updates its file and
 * its projector. */
static struct rt *get(struct sched *s, const char *id, const struct reg_model *info)
{
	struct rt *m = sched_find(s, id);
	if (m == NULL) {
		m = xcalloc(1, sizeof *m);
		m->id = xstrdup(id);
		m->ttl_s = -1;
		m->s = s;
		m->next = s->models;
		s->models = m;
	}
	free(m->path);
	m->path = xstrdup(info->path);
	free(m->mmproj);
	m->mmproj = info->mmproj != NULL ? xstrdup(info->mmproj) : NULL;
	return m;
}

/* ---- answers ---- */

static void answer_model(struct rt *m, struct sched_reply r, int status)
{
	if (r.fn == NULL)
		return;
	json_t *o = sched_model_json(m->s, m->id);
	if (o == NULL)
		o = json_pack("{s:s,s:s}", "model", m->id, "state", sched_state_names[m->state]);
	sched_tell(r, status, o);
}

/* {"model": id, "state": state}, the body of a plain answer. */
static json_t *state_body(const char *id, const char *state)
{
	return json_pack("{s:s,s:s}", "model", id, "state", state);
}

static void answer_waiters(struct rt *m)
{
	for (size_t i = 0; i < m->n_waiters; i++) {
		if (m->state == ST_READY)
			answer_model(m, m->waiters[i], 200);
		else
			sched_tell_error(m->waiters[i], 502, "backend_failed", "%s: %s", m->id,
			    m->error[0] ? m->error : "the model did not load");
	}
	m->n_waiters = 0;
}

/* ---- children ---- */

static void on_ready(void *arg)
{
	struct rt *m = arg;
	if (m->state != ST_LOADING)
		return; /* asked to go while it loaded: its exit settles it */
	m->state = ST_READY;
	m->ready_ms = m->last_used_ms = util_mono_ms();
	json_decref(m->measured);
	m->measured = llama_measured(m->l);
	sched_measure_devices(m);
	registry_load_update(m->s->env.reg, m->row, "ready", m->measured, NULL);
	sched_pressure_ready(m);
	log_info("%s ready on port %d after %llu ms", m->id, llama_port(m->l),
	    (unsigned long long)(m->ready_ms - m->started_ms));
	sched_emit(m->s, "model.loaded", json_pack("{s:s,s:i,s:i,s:O,s:I}", "model", m->id, "port",
	    llama_port(m->l), "gpu_layers", m->ngl, "measured", m->measured, "load_ms",
	    (json_int_t)(m->ready_ms - m->started_ms)));
	answer_waiters(m);
}

static void process_queue(struct sched *s);
static void load_rt(struct sched *s, struct rt *m, const struct sched_opts *o,
    struct sched_reply r);

static void on_exited(void *arg, int status, const char *tail)
{
	struct rt *m = arg;
	struct sched *s = m->s;
	enum state was = m->state;
	llama_free(m->l);
	m->l = NULL;
	if (was == ST_UNLOADING && m->reload != RELOAD_NONE && sched_pressure_exited(m)) {
		process_queue(s); /* a shrink or grow: it loads again with its new plan */
		return;
	}
	if (was == ST_UNLOADING) {
		m->state = ST_UNLOADED;
		registry_load_update(s->env.reg, m->row, "stopped", NULL, NULL);
		sched_emit(s, "model.unloaded", json_pack("{s:s}", "model", m->id));
		for (size_t i = 0; i < m->n_unload_waiters; i++)
			sched_tell(m->unload_waiters[i], 200, state_body(m->id, "unloaded"));
		m->n_unload_waiters = 0;
		if (m->n_waiters > 0) {
			snprintf(m->error, sizeof m->error, "unloaded before it was ready");
			answer_waiters(m);
			m->error[0] = '\0';
		}
	} else {
		m->state = ST_FAILED;
		m->reload = RELOAD_NONE; /* a shrink's or grow's new child that died is a failure */
		m->draining = 0;
		char how[64];
		if (WIFEXITED(status))
			snprintf(how, sizeof how, "exited with status %d", WEXITSTATUS(status));
		else
			snprintf(how, sizeof how, "killed by signal %d", WTERMSIG(status));
		snprintf(m->error, sizeof m->error, "llama-server %s%s%s", how, tail[0] ? ": " : "",
		    tail);
		log_warnx("%s failed: %s", m->id, m->error);
		registry_load_update(s->env.reg, m->row, "failed", NULL, m->error);
		sched_emit(s, "model.failed", json_pack("{s:s,s:s,s:s}", "model", m->id, "was",
		    sched_state_names[was], "error", m->error));
		answer_waiters(m);
	}
	process_queue(s);
}

int sched_start(struct sched *s, struct rt *m, const struct plan_multi *p,
    const struct est *e, char *err, size_t errlen)
{
	if (s->cfg->llama_server == NULL) {
		snprintf(err, errlen, "no llama-server binary configured (--llama-server)");
		return -1;
	}
	if (m->l != NULL) {
		snprintf(err, errlen, "%s already has a running llama-server", m->id);
		return -1;
	}
	char rpc[SCHED_MAX_DEVICES * 130], devs[SCHED_MAX_DEVICES * 66], np[16];
	char **args = sched_child_args(s, p, rpc, sizeof rpc, devs, sizeof devs, np, sizeof np,
	    err, errlen);
	if (args == NULL)
		return -1;
	json_decref(m->args);
	m->args = json_array();
	for (size_t i = 0; args[i] != NULL; i++)
		json_array_append_new(m->args, json_string(args[i]));
	char *log = xasprintf("%s/llama-%s.log", s->cfg->state_dir, m->id);
	struct llama_cb cb = { on_ready, on_exited, m };
	m->l = llama_start(s->env.base, s->cfg->llama_server, m->path, m->id, args, log, &cb,
	    err, errlen);
	free(log);
	free(args);
	if (m->l == NULL)
		return -1;
	m->state = ST_LOADING;
	s->loads_total++;
	m->error[0] = '\0';
	sched_take_devices(s, m, p);
	m->cpu = p->cpu;
	m->ngl = p->ngl;
	m->n_cpu_moe = p->n_cpu_moe;
	m->ctx = (int)e->n_ctx;
	snprintf(m->plan_reason, sizeof m->plan_reason, "%s", p->reason);
	m->started_ms = util_mono_ms();
	json_decref(m->measured);
	m->measured = NULL;
	json_t *plan = json_pack("{s:i,s:i,s:O,s:I,s:I,s:o}", "gpu_layers", p->ngl, "n_cpu_moe",
	    p->n_cpu_moe, "args", m->args, "device_bytes", (json_int_t)m->dev.total,
	    "cpu_bytes", (json_int_t)p->cpu.total, "devices", sched_on_json(m));
	unsigned long long ticks = 0;
	char boot[64];
	child_pid_start_ticks(llama_pid(m->l), &ticks); /* it exec'ed: it is there */
	child_boot_id(boot, sizeof boot);
	m->row = registry_load_begin(s->env.reg, m->id, (int)llama_pid(m->l), llama_port(m->l),
	    ticks, boot, plan);
	json_decref(plan);
	char where[SCHED_MAX_DEVICES * 162] = "the CPU";
	for (int i = 0; i < m->n_on; i++) {
		size_t l = i ? strlen(where) : 0;
		snprintf(where + l, sizeof where - l, "%s%s", i ? ", " : "", m->on[i].id);
	}
	log_info("starting %s: %d of %u layers on %s, port %d", m->id, p->ngl,
	    e->a.n_layer + 1, where, llama_port(m->l));
	sched_emit(s, "model.loading", json_pack("{s:s,s:i,s:i,s:I,s:I,s:o,s:s}", "model", m->id,
	    "gpu_layers", p->ngl, "layers", (int)e->a.n_layer + 1, "device_bytes",
	    (json_int_t)m->dev.total, "cpu_bytes", (json_int_t)p->cpu.total, "devices",
	    sched_on_json(m), "reason", p->reason));
	return 0;
}

/* A queue entry for id with a deep copy of o (its patterns may live in a request body
 * that is freed when the handler returns). */
static struct pending *pending_new(struct sched *s, const char *id,
    const struct sched_opts *o, struct sched_reply r)
{
	struct pending *q = xcalloc(1, sizeof *q);
	q->id = xstrdup(id);
	q->o = *o;
	for (size_t i = 0; i < o->n_cpu_patterns; i++)
		q->o.cpu_patterns[i] = xstrdup(o->cpu_patterns[i]);
	q->reply = r;
	q->since_ms = util_mono_ms();
	struct pending **t = &s->queue;
	while (*t)
		t = &(*t)->next;
	*t = q;
	s->n_queue++;
	return q;
}

static struct pending *queued(struct sched *s, const char *id)
{
	for (struct pending *q = s->queue; q != NULL; q = q->next)
		if (strcmp(q->id, id) == 0)
			return q;
	return NULL;
}

/* Asks m's child to stop, once (a second SIGTERM would push the SIGKILL back). A
 * shrink or grow under way is called off: the model leaves. */
static void stop_rt(struct rt *m)
{
	m->reload = RELOAD_NONE;
	m->draining = 0;
	if (m->state != ST_UNLOADING && m->l != NULL) {
		m->state = ST_UNLOADING;
		llama_stop(m->l, STOP_GRACE_MS);
	}
}

/* An outcome that is not a plain answer: told to r, or kept in u for the caller. */
static void settle(struct sched_reply r, struct sched_use *u, int status,
    const char *code, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void settle(struct sched_reply r, struct sched_use *u, int status,
    const char *code, const char *fmt, ...)
{
	char msg[sizeof u->msg];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	sched_tell_error(r, status, code, "%s", msg);
	if (u != NULL) {
		u->status = status;
		snprintf(u->code, sizeof u->code, "%s", code);
		snprintf(u->msg, sizeof u->msg, "%s", msg);
	}
}

/* Tries to load m now. Tells r unless it waits (in m's waiters or the queue); with u
 * (and nobody to tell) says how it went instead. */
static enum sched_avail try_load(struct sched *s, struct rt *m, const struct sched_opts *o,
    struct sched_reply r, struct sched_use *u)
{
	char err[GGUF_ERR_LEN + 4096], why[512];
	struct gguf *g;
	struct est_opts eo;
	est_defaults(&eo);
	eo.n_ctx = o->ctx; /* 0: the default context (model.h) */
	struct est e;
	if ((m->mmproj != NULL && model_mmproj(m->mmproj, &eo, NULL, err, sizeof err) < 0) ||
	    model_estimate(m->path, &eo, &g, &e, err, sizeof err) < 0) {
		settle(r, u, 409, "model_unreadable", "%s", err);
		return SA_ERROR;
	}
	struct plan_multi p;
	struct rt *ev[MAX_EVICT];
	size_t n_ev = 0;
	enum sched_avail res = SA_WAIT;
	enum sched_decision dcs = sched_decide(s, m, o, &e, &p, ev, &n_ev, why, sizeof why);
	if (dcs != SCHED_BUSY) { /* nothing happens yet on BUSY: the model keeps its settings */
		m->pinned = o->pin;
		m->priority = o->priority;
		m->ttl_s = o->ttl_s; /* -1: the daemon's idle_ttl_s, as it is at each tick */
		m->pressure_action = o->pressure_action;
		m->regrow = o->regrow;
	}
	if (dcs == SCHED_REFUSE) {
		settle(r, u, 507, "does_not_fit", "%s", why);
		res = SA_ERROR;
	} else if (dcs == SCHED_BUSY) {
		res = SA_BUSY;
	} else if (dcs == SCHED_WAIT) {
		if (s->n_queue >= MAX_PENDING) {
			settle(r, u, 503, "queue_full", "%d loads are waiting", MAX_PENDING);
			res = SA_ERROR;
		} else {
			struct pending *q = pending_new(s, m->id, o, o->wait ? r : NOBODY);
			for (size_t i = 0; i < n_ev; i++) {
				log_info("evicting %s to make room for %s", ev[i]->id, m->id);
				stop_rt(ev[i]);
				if (q->n_evict < MAX_EVICT) {
					q->evict[q->n_evict++] = xstrdup(ev[i]->id);
					sched_pending_watch(s, q, ev[i]);
				}
			}
			json_t *evs = json_array();
			for (size_t i = 0; i < q->n_evict; i++)
				json_array_append_new(evs, json_string(q->evict[i]));
			sched_emit(s, "model.queued", json_pack("{s:s,s:I,s:o}", "model", m->id,
			    "position", (json_int_t)s->n_queue, "evicting", evs));
			if (!o->wait)
				sched_tell(r, 202, state_body(m->id, "queued"));
		}
	} else if (sched_start(s, m, &p, &e, err, sizeof err) < 0) {
		settle(r, u, 500, "start_failed", "%s", err);
		plan_multi_free(&p);
		res = SA_ERROR;
	} else {
		sched_pressure_remember(m, o, &p);
		if (o->wait && r.fn != NULL && m->n_waiters < MAX_WAITERS)
			m->waiters[m->n_waiters++] = r;
		else
			answer_model(m, r, 202);
		plan_multi_free(&p);
	}
	est_free(&e);
	gguf_close(g);
	return res;
}

static void pending_free(struct pending *q)
{
	for (size_t i = 0; i < q->n_evict; i++)
		free(q->evict[i]);
	for (size_t i = 0; i < q->o.n_cpu_patterns; i++)
		free((char *)q->o.cpu_patterns[i]);
	free(q->id);
	free(q);
}

/* 1 once the GPU shows the memory of q's evicted models free: a sample taken after
 * they exited reads at least half of what they held as gone. A device whose readings
 * never included them (an RPC server, a GPU the models did not use) needs no wait; a
 * driver slower than MEMORY_WAIT_MS is not waited for longer. */
static int memory_seen_free(struct sched *s, struct pending *q)
{
	uint64_t now = util_mono_ms();
	if (q->exited_ms == 0)
		q->exited_ms = now;
	const struct device_info *g = q->gpu_id[0] ? sched_gpu_by_id(s, q->gpu_id) : NULL;
	if (g == NULL || q->freed_bytes == 0 || q->used_at_evict < q->freed_bytes)
		return 1;
	if (g->now.t_ms > q->exited_ms && g->now.used + q->freed_bytes / 2 <= q->used_at_evict)
		return 1;
	if (now - q->exited_ms > MEMORY_WAIT_MS) {
		log_warnx("%s: the GPU still shows the evicted models' memory after %d s; "
		    "planning with what it reads", q->id, MEMORY_WAIT_MS / 1000);
		return 1;
	}
	return 0;
}

/* Starts the pending loads whose evictions are done (and answers those that waited
 * too long). */
static void process_queue(struct sched *s)
{
	struct pending **pp = &s->queue;
	while (*pp != NULL) {
		struct pending *q = *pp;
		int busy = 0;
		for (size_t i = 0; i < q->n_evict; i++) {
			struct rt *r = sched_find(s, q->evict[i]);
			busy |= r != NULL && r->state == ST_UNLOADING;
		}
		if (!busy && q->n_evict > 0 && !memory_seen_free(s, q))
			busy = 1;
		int late = util_mono_ms() - q->since_ms > PENDING_TIMEOUT_MS;
		if (busy && !late) {
			pp = &q->next;
			continue;
		}
		*pp = q->next;
		s->n_queue--;
		struct rt *m = sched_find(s, q->id);
		if (late && busy) {
			sched_tell_error(q->reply, 504, "timeout", "the models evicted for %s did not "
				    "free their memory in %d s", q->id, PENDING_TIMEOUT_MS / 1000);
		} else if (m != NULL) {
			load_rt(s, m, &q->o, q->reply);
		} else {
			sched_tell_error(q->reply, 404, "model_not_found", "no local model with id '%s'",
			    q->id);
		}
		pending_free(q);
		changed(s);
	}
}

/* Loads m as its state allows: ready answers at once, loading waits, unloading is a
 * conflict, unloaded or failed starts (or queues) a load. */
static void load_rt(struct sched *s, struct rt *m, const struct sched_opts *o,
    struct sched_reply r)
{
	m->last_used_ms = util_mono_ms();
	if (s->shutting_down) {
		sched_tell_error(r, 503, "shutting_down", "mloffloadd is stopping");
	} else if (m->state == ST_READY && m->reload == RELOAD_NONE) {
		m->pinned = o->pin;
		answer_model(m, r, 200);
	} else if (m->state == ST_LOADING || m->reload != RELOAD_NONE) {
		/* loading, or draining or restarting for a shrink or grow: ready soon */
		if (o->wait && r.fn != NULL && m->n_waiters < MAX_WAITERS)
			m->waiters[m->n_waiters++] = r;
		else
			answer_model(m, r, 202);
	} else if (m->state == ST_UNLOADING) {
		sched_tell_error(r, 409, "unloading", "%s is being unloaded; ask again when "
			    "it is done", m->id);
	} else if (queued(s, m->id) != NULL) {
		sched_tell(r, 202, state_body(m->id, "queued"));
	} else {
		try_load(s, m, o, r, NULL);
	}
}

/* The runtime of a local model that can be loaded, its file and projector taken from
 * its registry row (they may have changed since the last load), or NULL after
 * answering (to r) or saying why (u). */
static struct rt *usable(struct sched *s, const char *id, struct sched_reply r,
    struct sched_use *u)
{
	struct reg_model info;
	struct rt *m = NULL;
	if (registry_model_get(s->env.reg, id, &info) < 0)
		settle(r, u, 404, "model_not_found", "no local model with id '%s'", id);
	else if (info.state != REG_AVAILABLE)
		settle(r, u, 409, "model_unusable", "%s: %s", id, info.error ? info.error :
		    registry_state_name(info.state));
	else
		m = get(s, id, &info);
	registry_model_free(&info);
	return m;
}

/* ---- requests ---- */

void sched_load(struct sched *s, const char *id, const struct sched_opts *o,
    struct sched_reply r)
{
	if (strncmp(id, "ollama:", 7) == 0 && id[7] != '\0') {
		sched_ollama_request(s, id, o, 0, r);
		return;
	}
	struct rt *m = usable(s, id, r, NULL);
	if (m != NULL)
		load_rt(s, m, o, r);
}

void sched_unload(struct sched *s, const char *id, struct sched_reply r)
{
	if (strncmp(id, "ollama:", 7) == 0 && id[7] != '\0') {
		struct sched_opts o = { .ttl_s = 0 };
		sched_ollama_request(s, id, &o, 1, r);
		return;
	}
	/* a load of it still waiting in the queue is cancelled */
	for (struct pending **pp = &s->queue; *pp != NULL;) {
		struct pending *q = *pp;
		if (strcmp(q->id, id) != 0) {
			pp = &q->next;
			continue;
		}
		*pp = q->next;
		s->n_queue--;
		sched_tell_error(q->reply, 409, "cancelled", "%s was unloaded while its load "
			    "waited", id);
		pending_free(q);
	}
	struct rt *m = sched_find(s, id);
	if (m == NULL || m->state == ST_UNLOADED || m->state == ST_FAILED) {
		struct reg_model info;
		if (registry_model_get(s->env.reg, id, &info) < 0 && m == NULL)
			sched_tell_error(r, 404, "model_not_found", "no local model with id '%s'", id);
		else
			sched_tell(r, 200, state_body(id, m && m->state == ST_FAILED ? "failed" :
			    "unloaded"));
		registry_model_free(&info);
		return;
	}
	/* an explicit unload ends what POST /load set: a later load starts afresh */
	m->pinned = 0;
	m->priority = 0;
	m->ttl_s = -1;
	m->pressure_action = 0;
	m->regrow = 0;
	if (m->n_unload_waiters < MAX_WAITERS)
		m->unload_waiters[m->n_unload_waiters++] = r;
	else
		sched_tell(r, 202, state_body(id, "unloading"));
	stop_rt(m);
}

void sched_switch(struct sched *s, const char *from, const char *to,
    const struct sched_opts *o, struct sched_reply r)
{
	struct rt *a = sched_find(s, from);
	if (strcmp(from, to) == 0 || a == NULL || (a->state != ST_READY &&
	    a->state != ST_LOADING)) {
		sched_load(s, to, o, r);
		return;
	}
	struct rt *b = usable(s, to, r, NULL);
	if (b == NULL)
		return;
	if (b->state != ST_UNLOADED && b->state != ST_FAILED) {
		/* B is resident or on its way: A leaves, B answers as its state allows */
		stop_rt(a);
		load_rt(s, b, o, r);
		return;
	}
	if (s->n_queue >= MAX_PENDING || queued(s, to) != NULL) {
		sched_tell_error(r, 503, "queue_full", "%s", queued(s, to) ? "a load of it is "
		    "already waiting" : "too many loads are waiting");
		return;
	}
	/* B starts once A's child is gone and its memory free */
	struct sched_opts wo = *o;
	wo.wait = 1;
	struct pending *q = pending_new(s, b->id, &wo, r);
	q->evict[q->n_evict++] = xstrdup(a->id);
	/* a model still loading is not in the GPU's readings yet: nothing to see freed */
	if (a->state == ST_READY)
		sched_pending_watch(s, q, a);
	sched_emit(s, "model.queued", json_pack("{s:s,s:I,s:[s]}", "model", b->id, "position",
	    (json_int_t)s->n_queue, "evicting", a->id));
	stop_rt(a);
}

enum sched_avail sched_acquire(struct sched *s, const char *id, const struct sched_opts *o,
    struct sched_use *u)
{
	struct rt *m = sched_find(s, id);
	if (m != NULL && m->state == ST_FAILED && o->keep_failed) {
		settle(NOBODY, u, 502, "backend_failed", "%s: %s", id, m->error[0] ? m->error :
		    "the model did not load");
		return SA_ERROR;
	}
	if (m == NULL || m->state == ST_UNLOADED || m->state == ST_FAILED) {
		/* the file may have changed or gone since the last load */
		if ((m = usable(s, id, NOBODY, u)) == NULL)
			return SA_ERROR;
	}
	m->last_used_ms = util_mono_ms();
	if (s->shutting_down) {
		settle(NOBODY, u, 503, "shutting_down", "mloffloadd is stopping");
		return SA_ERROR;
	}
	if (m->state == ST_READY && !m->draining) {
		u->port = llama_port(m->l);
		return SA_READY;
	}
	/* a model drained for a shrink or grow answers from its new child */
	if (m->state == ST_LOADING || m->state == ST_UNLOADING || m->draining ||
	    queued(s, id) != NULL)
		return SA_WAIT;
	/* a reload (after a crash, an eviction) keeps what POST /load set for it */
	struct sched_opts ko = *o;
	if (m->row > 0) {
		ko.pin = m->pinned;
		ko.priority = m->priority;
		ko.ttl_s = m->ttl_s;
		ko.pressure_action = (enum sched_pressure)m->pressure_action;
		ko.regrow = m->regrow;
	}
	return try_load(s, m, &ko, NOBODY, u);
}

int sched_ttl(const struct sched *s, const struct rt *m)
{
	return m->ttl_s >= 0 ? m->ttl_s : (int)s->cfg->idle_ttl_s;
}

int sched_ready_port(struct sched *s, const char *id)
{
	struct rt *m = sched_find(s, id);
	return m != NULL && m->state == ST_READY && m->l != NULL ? llama_port(m->l) : 0;
}

const char *sched_ready_key(struct sched *s, const char *id)
{
	struct rt *m = sched_find(s, id);
	return m != NULL && m->state == ST_READY && m->l != NULL ? llama_key(m->l) : NULL;
}

uint64_t sched_loads_total(struct sched *s)
{
	return s->loads_total;
}

void sched_hold(struct sched *s, const char *id, int delta)
{
	struct rt *m = sched_find(s, id);
	if (m == NULL)
		return;
	m->busy += delta;
	if (m->busy < 0)
		m->busy = 0;
	m->last_used_ms = util_mono_ms();
	sched_pressure_hold(m);
}

uint64_t sched_clock(struct sched *s)
{
	return s->env.clock_ms != NULL ? s->env.clock_ms(s->env.clock_arg) : util_mono_ms();
}

void sched_tick(struct sched *s)
{
	uint64_t now = util_mono_ms();
	sched_pressure_tick(s);
	sched_learn_tick(s);
	for (struct rt *m = s->models; m != NULL; m = m->next) {
		int ttl = sched_ttl(s, m);
		if (m->state == ST_READY && !m->pinned && m->busy == 0 && ttl > 0 &&
		    now - m->last_used_ms > (uint64_t)ttl * 1000) {
			log_info("%s idle for %d s: unloading", m->id, ttl);
			stop_rt(m);
		} else if (m->state == ST_LOADING && now - m->started_ms > START_TIMEOUT_MS) {
			snprintf(m->error, sizeof m->error, "did not become ready in %d s",
			    START_TIMEOUT_MS / 1000);
			llama_kill(m->l);
		}
	}
	process_queue(s);
}

/* ---- start and stop ---- */

struct sched *sched_new(const struct sched_env *env)
{
	struct sched *s = xcalloc(1, sizeof *s);
	s->env = *env;
	s->cfg = env->cfg;
	s->learn = sched_learn_new(env->reg);
	return s;
}

void sched_shutdown(struct sched *s)
{
	s->shutting_down = 1;
	while (s->queue != NULL) {
		struct pending *q = s->queue;
		s->queue = q->next;
		s->n_queue--;
		sched_tell_error(q->reply, 503, "shutting_down", "mloffloadd is stopping");
		pending_free(q);
	}
	int running = 0;
	for (struct rt *m = s->models; m != NULL; m = m->next) {
		if (m->l != NULL) {
			stop_rt(m);
			running = 1;
		}
	}
	for (int i = 0; running && i < 250; i++) {
		event_base_loop(s->env.base, EVLOOP_NONBLOCK | EVLOOP_ONCE);
		running = 0;
		for (struct rt *m = s->models; m != NULL; m = m->next)
			running |= m->l != NULL;
		if (running)
			usleep(20 * 1000);
	}
}

void sched_free(struct sched *s)
{
	if (s == NULL)
		return;
	while (s->queue != NULL) {
		struct pending *q = s->queue;
		s->queue = q->next;
		pending_free(q);
	}
	while (s->models != NULL) {
		struct rt *m = s->models;
		s->models = m->next;
		if (m->l != NULL) {
			llama_free(m->l); /* kills the group and reaps it */
			registry_load_update(s->env.reg, m->row, "stopped", NULL, "daemon stopped");
		}
		json_decref(m->args);
		json_decref(m->measured);
		sched_pressure_forget(m);
		free(m->id);
		free(m->path);
		free(m->mmproj);
		free(m);
	}
	sched_learn_free(s->learn);
	free(s->probed_server);
	free(s);
}
