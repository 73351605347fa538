/*
 * proxy: the /v1 routes (see proxy.h): which model a request names, the queue, and
 * when a waiting request goes upstream (the transfer itself is in proxy_up.c).
 *
 * Every request waits in its model's list, oldest first; the lists together hold at
 * most queue_max requests (beyond: 503 with Retry-After). A look at the queue (a
 * "pass", on the loop turn after anything changed) asks the scheduler about each
 * model with waiting requests: a ready model takes as many as it has free slots
 * (parallel); a model that cannot load until busy models finish is "blocked". So
 * that two models that cannot be resident together do not swap on every request,
 * requests of a resident model go on while another model waits, but each request
 * sent ahead of a blocked one counts against it: once the oldest blocked request has
 * been overtaken max_overtake times, only its model is served; the busy models drain,
 * become idle, are evicted, and it loads. No request waits for more than max_overtake
 * others (plus the requests already in flight).
 */
#include "proxy_int.h"
#include "reply.h"
#include "config.h"
#include "curlev.h"
#include "discover.h"
#include "httpconn.h"
#include "registry.h"
#include "reqcheck.h"
#include "scan.h"
#include "scheduler.h"
#include "util.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define WRITE_TIMEOUT_S 300  /* a client that takes nothing for this long is dropped */
#define INPUT_MAX (64 * 1024)
#define QUEUE_TIMEOUT_MS (600 * 1000) /* a request waits this long at most: 504 */

/* ---- models ---- */

static struct pmodel *pmodel_get(struct proxy *p, const char *id)
{
	for (struct pmodel *m = p->models; m != NULL; m = m->next)
		if (strcmp(m->id, id) == 0)
			return m;
	struct pmodel *m = xcalloc(1, sizeof *m);
	m->id = xstrdup(id);
	m->ollama = strncmp(id, "ollama:", 7) == 0;
	m->next = p->models;
	p->models = m;
	return m;
}

/* 1 if Ollama lists a model named name. */
static int ollama_has(struct proxy *p, const char *name)
{
	json_t *l = p->env.disc ? discover_ollama_models(p->env.disc) : NULL, *v;
	size_t i;
	int found = 0;
	json_array_foreach(l, i, v) {
		const char *n = json_string_value(json_object_get(v, "name"));
		found |= n != NULL && strcmp(n, name) == 0;
	}
	json_decref(l);
	return found;
}

#define NAMES_MAX 256 /* names remembered; past it the list starts again */

void proxy_forget(struct proxy *p)
{
	if (p == NULL)
		return;
	while (p->names != NULL) {
		struct pname *n = p->names;
		p->names = n->next;
		free(n->name);
		free(n->id);
		free(n);
	}
	p->n_names = 0;
}

static int resolve_uncached(struct proxy *p, const char *name, char *out, size_t outlen);

/* resolve(), remembered: a name asks the registry once per scan. Local models only
 * (Ollama's list changes by itself). *kind: what the model serves (PK_ANY: Ollama's,
 * whose kind is not known here). */
static int resolve(struct proxy *p, const char *name, char *out, size_t outlen,
    enum proxy_kind *kind)
{
	for (struct pname *n = p->names; n != NULL; n = n->next)
		if (strcmp(n->name, name) == 0) {
			snprintf(out, outlen, "%s", n->id);
			*kind = n->kind;
			return 0;
		}
	if (resolve_uncached(p, name, out, outlen) < 0)
		return -1;
	*kind = PK_ANY;
	if (strncmp(out, "ollama:", 7) != 0) {
		struct reg_model m;
		registry_model_get(p->env.reg, out, &m);
		*kind = proxy_route_kind(m.kind);
		registry_model_free(&m);
		if (p->n_names >= NAMES_MAX)
			proxy_forget(p);
		struct pname *n = xcalloc(1, sizeof *n);
		n->name = xstrdup(name);
		n->id = xstrdup(out);
		n->kind = *kind;
		n->next = p->names;
		p->names = n;
		p->n_names++;
	}
	return 0;
}

/* The model a request names: an alias of the configuration, a registry id, "ollama:"
 * and a name, a local model's name (when only one has it), or a name Ollama lists.
 * Writes the id to out; returns 0, or -1 when nothing has that name. */
static int resolve_uncached(struct proxy *p, const char *name, char *out, size_t outlen)
{
	const struct config *c = p->env.cfg;
	for (size_t i = 0; i < c->n_aliases; i++) {
		if (strcmp(c->aliases[i].name, name) == 0) {
			name = c->aliases[i].id;
			break;
		}
	}
	if (strncmp(name, "ollama:", 7) == 0) {
		snprintf(out, outlen, "%s", name);
		return ollama_has(p, name + 7) ? 0 : -1;
	}
	struct reg_model m;
	if (registry_model_get(p->env.reg, name, &m) == 0) {
		registry_model_free(&m);
		snprintf(out, outlen, "%s", name);
		return 0;
	}
	size_t n, hits = 0;
	struct reg_model *all = registry_model_list(p->env.reg, &n);
	for (size_t i = 0; i < n; i++)
		if (strcmp(all[i].name, name) == 0 && all[i].state == REG_AVAILABLE && hits++ == 0)
			snprintf(out, outlen, "%s", all[i].id);
	registry_model_list_free(all, n);
	if (hits == 1)
		return 0;
	if (hits == 0 && ollama_has(p, name)) {
		snprintf(out, outlen, "ollama:%s", name);
		return 0;
	}
	return -1;
}

/* ---- the queue ---- */

static void unlink_waiting(struct preq *r)
{
	struct pmodel *m = r->pm;
	struct preq **pp = &m->head;
	while (*pp != NULL && *pp != r)
		pp = &(*pp)->next;
	if (*pp == NULL)
		return;
	*pp = r->next;
	if (m->tail == r) {
		m->tail = NULL;
		for (struct preq *q = m->head; q != NULL; q = q->next)
			m->tail = q;
	}
	r->next = NULL;
	m->n_wait--;
	r->p->n_wait--;
}

static void live_unlink(struct preq *r)
{
	if (r->lprev != NULL)
		r->lprev->lnext = r->lnext;
	else if (r->p->live == r)
		r->p->live = r->lnext;
	if (r->lnext != NULL)
		r->lnext->lprev = r->lprev;
	r->lprev = r->lnext = NULL;
}

static void preq_free(struct preq *r)
{
	if (r->watch != NULL)
		event_free(r->watch);
	if (r->easy != NULL)
		curl_easy_cleanup(r->easy);
	curl_slist_free_all(r->hdrs);
	if (r->out != NULL)
		evbuffer_free(r->out);
	if (r->req != NULL && r->gone)
		evhttp_send_reply_end(r->req); /* detached from its connection: only freed */
	free(r->body);
	free(r);
}

static void kick(struct proxy *p)
{
	if (p->kick_ev != NULL)
		event_active(p->kick_ev, EV_TIMEOUT, 0);
}

/* r leaves its slot or its place in the queue. A local model left without requests
 * in flight may now be evicted: blocked models look again. */
static void release(struct preq *r)
{
	struct proxy *p = r->p;
	if (r->state == PQ_UPSTREAM) {
		r->pm->inflight--;
		p->n_inflight--;
		if (!r->pm->ollama)
			sched_hold(p->env.sched, r->pm->id, -1);
		if (!r->pm->ollama && r->pm->inflight == 0)
			p->gen++;
	} else {
		unlink_waiting(r);
	}
	live_unlink(r);
	kick(p);
}

void proxy_finish(struct preq *r)
{
	release(r);
	preq_free(r);
}

/* Answers every waiting request of m with the same error. */
static void fail_waiting(struct pmodel *m, int status, const char *code, const char *msg)
{
	while (m->head != NULL) {
		struct preq *r = m->head;
		if (r->req != NULL) {
			proxy_detach(r);
			if (status == 503)
				reply_retry_after(r->req);
			reply_error(r->req, status, code, "%s", msg);
			r->req = NULL;
		}
		proxy_finish(r);
	}
}

static void send_upstream(struct proxy *p, struct pmodel *m, int port)
{
	struct preq *r = m->head;
	unlink_waiting(r);
	r->state = PQ_UPSTREAM;
	m->inflight++;
	p->n_inflight++;
	char base[256];
	if (m->ollama)
		snprintf(base, sizeof base, "%s", p->env.cfg->ollama_url);
	else
		snprintf(base, sizeof base, "http://127.0.0.1:%d", port);
	if (!m->ollama)
		sched_hold(p->env.sched, m->id, 1);
	/* each local request sent counts against the older ones that wait blocked (an
	 * Ollama request takes nothing from our budget) */
	for (struct pmodel *o = p->models; o != NULL && !m->ollama; o = o->next)
		if (o != m && o->blocked && o->head != NULL && o->head->seq < r->seq)
			o->head->overtaken++;
	/* our own children want their key; Ollama gets none */
	if (proxy_up_start(r, base, m->ollama ? NULL : sched_ready_key(p->env.sched, m->id)) < 0) {
		proxy_detach(r);
		r->req = NULL; /* answered */
		proxy_finish(r);
	}
}

/* One model's turn in a pass. */
static void serve(struct proxy *p, struct pmodel *m)
{
	unsigned par = p->env.cfg->parallel;
	if (m->ollama) {
		while (m->head != NULL && m->inflight < par)
			send_upstream(p, m, 0);
		return;
	}
	/* planning a blocked model again costs a header read: only after news */
	if (m->blocked && m->seen_gen == p->gen)
		return;
	m->seen_gen = p->gen;
	struct sched_opts o = { .ttl_s = -1, .offload = PLAN_AUTO, .queue_busy = 1 };
	o.keep_failed = m->head->tried; /* a load this request asked for failed: say so */
	struct sched_use u;
	memset(&u, 0, sizeof u);
	enum sched_avail a = sched_acquire(p->env.sched, m->id, &o, &u);
	m->blocked = a == SA_BUSY;
	if (a == SA_ERROR) {
		fail_waiting(m, u.status, u.code, u.msg);
		return;
	}
	/* a load is under way for them: if it fails, they hear why (no retry loop); once
	 * the model is ready, a later crash is news to them and reloads it */
	for (struct preq *r = m->head; r != NULL && (a == SA_WAIT || a == SA_READY); r = r->next)
		r->tried = a == SA_WAIT;
	while (a == SA_READY && m->head != NULL && m->inflight < par)
		send_upstream(p, m, u.port);
}

static int by_oldest(const void *a, const void *b)
{
	const struct pmodel *x = *(struct pmodel *const *)a, *y = *(struct pmodel *const *)b;
	return x->head->seq < y->head->seq ? -1 : x->head->seq > y->head->seq;
}

/* The blocked model whose oldest request has been overtaken enough (the oldest such),
 * or NULL. */
static struct pmodel *starving_model(struct proxy *p)
{
	struct pmodel *starving = NULL;
	for (struct pmodel *m = p->models; m != NULL; m = m->next)
		if (m->head != NULL && m->blocked && m->head->overtaken >= p->env.cfg->max_overtake &&
		    (starving == NULL || m->head->seq < starving->head->seq))
			starving = m;
	return starving;
}

static void pass(struct proxy *p)
{
	size_t n = 0, cap = 0;
	struct pmodel **list = NULL, *starving = starving_model(p);
	for (struct pmodel *m = p->models; m != NULL; m = m->next) {
		if (m->head == NULL)
			continue;
		if (n == cap)
			list = xreallocarray(list, cap = cap ? cap * 2 : 8, sizeof *list);
		list[n++] = m;
	}
	if (n == 0)
		return; /* nothing waits */
	qsort(list, n, sizeof *list, by_oldest);
	for (size_t i = 0; i < n && !p->stopping; i++) {
		/* a model whose oldest request was overtaken enough goes alone; the
		 * others' requests wait until it is served */
		if (starving != NULL && list[i] != starving && !list[i]->ollama)
			continue; /* Ollama's models do not share our budget: they go on */
		if (list[i]->head != NULL)
			serve(p, list[i]);
	}
	free(list);
}

static void kick_event(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pass(arg);
}

/* Once a second: requests that waited past QUEUE_TIMEOUT_MS are answered 504, so that
 * nothing waits forever behind a backend that never frees its slots. */
static void tick_event(evutil_socket_t fd, short what, void *arg)
{
	struct proxy *p = arg;
	uint64_t now = util_mono_ms();
	(void)fd;
	(void)what;
	for (struct pmodel *m = p->models; m != NULL; m = m->next)
		while (m->head != NULL && now - m->head->arrived_ms > QUEUE_TIMEOUT_MS) {
			struct preq *r = m->head;
			proxy_detach(r);
			reply_error(r->req, 504, "queue_timeout", "waited %d s for %s",
			    QUEUE_TIMEOUT_MS / 1000, m->id);
			r->req = NULL;
			proxy_finish(r);
		}
	proxy_kick(p); /* memory may have been freed by others: blocked models look again */
}

void proxy_kick(struct proxy *p)
{
	if (p == NULL)
		return;
	p->gen++; /* the scheduler's news: blocked models look again */
	kick(p);
}

/* With the queue full, r still goes at once to a free slot of its model when one is
 * there now: a resident local model (never a load: the request would be refused after
 * starting it) that no starving model holds back, or an Ollama model. */
static void take_free_slot(struct proxy *p, struct pmodel *pm, struct preq *r)
{
	if (pm->head != r || pm->inflight >= p->env.cfg->parallel)
		return;
	struct pmodel *starving = starving_model(p);
	int port = pm->ollama ? 0 : sched_ready_port(p->env.sched, pm->id);
	if (pm->ollama || (port > 0 && (starving == NULL || starving == pm)))
		send_upstream(p, pm, port);
}

/* ---- clients ---- */

static void reap_event(evutil_socket_t fd, short what, void *arg)
{
	struct proxy *p = arg;
	(void)fd;
	(void)what;
	while (p->dead != NULL) {
		struct preq *r = p->dead;
		p->dead = r->next;
		preq_free(r);
	}
}

/* evhttp reads nothing from a client while its request is open, so a client that
 * hangs up while its request waits, or runs without a stream, would go unnoticed until
 * the answer is written. One read event on the socket sees the end of file (recv with
 * MSG_PEEK takes nothing) and tears the connection down, which runs on_client_close.
 * A client that sends more (a pipelined request) is left alone. */
static void on_peek(evutil_socket_t fd, short what, void *arg)
{
	struct preq *r = arg;
	char c;
	(void)what;
	ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		event_add(r->watch, NULL);
	else if (n <= 0)
		evhttp_connection_free(r->evcon);
}

void proxy_detach(struct preq *r)
{
	if (r->watch != NULL)
		event_del(r->watch);
	httpconn_on_close(r->evcon, NULL, NULL);
	/* the connection may carry more requests: evhttp's idle timeouts again */
	struct bufferevent *bev = evhttp_connection_get_bufferevent(r->evcon);
	struct timeval tv = { PROXY_IDLE_TIMEOUT_S, 0 };
	bufferevent_set_timeouts(bev, &tv, &tv);
	bufferevent_setwatermark(bev, EV_READ, 0, 0);
}

/* evhttp's close callback, inside the connection's teardown: the client hung up. The
 * upstream request stops at once (llama-server sees its connection close and frees
 * the slot); r itself is freed on a later turn. */
static void on_client_close(struct evhttp_connection *evcon, void *arg)
{
	struct preq *r = arg;
	struct proxy *p = r->p;
	(void)evcon;
	if (r->req != NULL && evhttp_request_get_connection(r->req) != NULL)
		r->req = NULL; /* still on the connection: libevent frees it */
	r->gone = 1;
	p->n_cancelled++;
	if (r->watch != NULL)
		event_del(r->watch);
	if (r->state == PQ_UPSTREAM)
		proxy_up_abort(r);
	release(r);
	r->next = p->dead;
	p->dead = r;
	event_active(p->reap_ev, EV_TIMEOUT, 0);
}

/* The parsed request: its body (NULL when it did not pass reqcheck), the model it
 * names, or the code and message of its 400. */
struct v1_body {
	json_t *b;
	const char *name, *code;
	char msg[512];
};

/* Checks a request before it waits: 0 with the model's id in id, or -1 answered (in
 * the route's error shape: reply_error reads it from the path). */
static int admit(struct proxy *p, struct evhttp_request *req, const struct proxy_route *rt,
    const struct v1_body *v, char *id, size_t idlen)
{
	enum proxy_kind kind = PK_ANY;
	if (rt == NULL) {
		reply_error(req, 404, "not_found", "no such route (GET / lists them)");
	} else if (rt->need == PK_NONE) {
		reply_error(req, 501, "not_implemented", "%s is not forwarded: llama-server "
		    "transcribes only with an audio encoder, which mloffload cannot test yet",
		    rt->path);
	} else if (v->b == NULL) {
		reply_error(req, 400, v->code, "%s", v->msg);
	} else if (p->stopping) {
		reply_error(req, 503, "shutting_down", "mloffloadd is stopping");
	} else if (resolve(p, v->name, id, idlen, &kind) < 0) {
		reply_error(req, 404, "model_not_found", "no model named '%s' (GET /v1/models "
		    "lists them)", v->name);
	} else if (strncmp(id, "ollama:", 7) == 0 && rt->ollama == NULL) {
		reply_error(req, 400, "unsupported_route", "'%s' is an Ollama model: Ollama "
		    "does not serve %s", v->name, rt->path);
	} else if (!proxy_route_serves(rt, kind)) {
		reply_error(req, 400, "wrong_model_kind", "'%s' is a%s %s model: %s needs %s",
		    v->name, kind == PK_EMBEDDING ? "n" : "", proxy_route_kind_name(kind), rt->path,
		    proxy_route_kind_needed(rt->need));
	} else {
		return 0;
	}
	return -1;
}

void proxy_forward(struct proxy *p, struct evhttp_request *req, const char *path)
{
	p->n_requests++;
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	const struct proxy_route *rt = proxy_route_find(path);
	struct v1_body v = { NULL, NULL, NULL, "" };
	char qmodel[REQCHECK_MAX_ID + 1] = "", id[512];
	if (rt != NULL && rt->need != PK_NONE) {
		/* llama-server's own routes have no model field: ?model= may name it */
		proxy_route_query_model(req, qmodel, sizeof qmodel);
		v.b = reqcheck_v1_body_or((const char *)evbuffer_pullup(in, -1), len, qmodel,
		    &v.name, &v.code, v.msg, sizeof v.msg);
	}
	json_t *b = v.b;
	if (admit(p, req, rt, &v, id, sizeof id) == 0) {
		struct preq *r = xcalloc(1, sizeof *r);
		r->p = p;
		r->req = req;
		r->evcon = evhttp_request_get_connection(req);
		r->route = rt;
		r->seq = ++p->seq;
		r->arrived_ms = util_mono_ms();
		r->pm = pmodel_get(p, id);
		r->lnext = p->live;
		if (p->live != NULL)
			p->live->lprev = r;
		p->live = r;
		if (r->pm->ollama) { /* Ollama knows the model by its own name */
			json_object_set_new(b, "model", json_string(id + 7));
			r->body = json_dumps(b, JSON_COMPACT);
			r->body_len = r->body ? strlen(r->body) : 0;
		} else {
			r->body = xmalloc(len + 1);
			evbuffer_copyout(in, r->body, len);
			r->body_len = len;
		}
		/* no read timeout while it waits or streams; a stuck writer is dropped. evhttp
		 * reads on while it writes (to see a close): what a client sends meanwhile is
		 * held to INPUT_MAX, then left in the socket */
		struct bufferevent *bev = evhttp_connection_get_bufferevent(r->evcon);
		struct timeval wtv = { WRITE_TIMEOUT_S, 0 };
		bufferevent_set_timeouts(bev, NULL, &wtv);
		bufferevent_setwatermark(bev, EV_READ, 0, INPUT_MAX);
		httpconn_on_close(r->evcon, on_client_close, r);
		r->watch = event_new(p->env.base, bufferevent_getfd(evhttp_connection_get_bufferevent(
		    r->evcon)), EV_READ, on_peek, r);
		if (r->watch != NULL)
			event_add(r->watch, NULL);
		if (r->pm->tail != NULL)
			r->pm->tail->next = r;
		else
			r->pm->head = r;
		r->pm->tail = r;
		r->pm->n_wait++;
		p->n_wait++;
		struct pmodel *pm = r->pm;
		uint64_t seq = r->seq;
		if (p->n_wait <= p->env.cfg->queue_max)
			pass(p); /* a ready model with a free slot takes it now */
		else
			take_free_slot(p, pm, r); /* the queue is full: only a free slot helps */
		/* r may be answered and freed by now: look for it among the waiting */
		for (r = pm->head; r != NULL && r->seq != seq; r = r->next)
			;
		if (r != NULL && p->n_wait > p->env.cfg->queue_max) {
			p->n_refused++;
			proxy_detach(r);
			reply_retry_after(req);
			reply_error(req, 503, "queue_full", "%u requests are waiting already",
			    p->n_wait - 1);
			r->req = NULL;
			proxy_finish(r);
		}
	}
	json_decref(b);
}

/* ---- views ---- */

/* "created" is a Unix time: when the scan found the model (its "scanned_at", UTC), else
 * when the daemon started. */
static json_int_t created(struct proxy *p, const struct reg_model *model)
{
	if (model != NULL && model->scanned_at != 0)
		return (json_int_t)model->scanned_at;
	return (json_int_t)p->env.started;
}

static json_t *model_entry(const char *id, const char *owner, json_int_t when, json_t *extra)
{
	json_t *o = json_pack("{s:s,s:s,s:I,s:s}", "id", id, "object", "model", "created",
	    when, "owned_by", owner);
	json_object_update(o, extra);
	json_decref(extra);
	return o;
}

void proxy_models(struct proxy *p, struct evhttp_request *req)
{
	json_t *data = json_array();
	size_t n;
	struct reg_model *all = registry_model_list(p->env.reg, &n);
	for (size_t i = 0; i < n; i++) {
		const struct reg_model *v = &all[i];
		if (v->state != REG_AVAILABLE)
			continue;
		json_t *rt = sched_model_json(p->env.sched, v->id);
		const char *state = json_string_value(json_object_get(rt, "state"));
		json_t *ctx = json_object_get(json_object_get(rt, "plan"), "ctx");
		/* the kind in a field of its own; "ctx": the context it runs with, once loaded */
		json_array_append_new(data, model_entry(v->id, "mloffload", created(p, v),
		    json_pack("{s:o,s:s,s:s,s:s,s:o,s:b,s:O}", "name", util_json_str(v->name),
		    "backend", "llama.cpp", "kind", proxy_route_kind_name(proxy_route_kind(v->kind)),
		    "state", state ? state : "unloaded", "context_length", v->context_length >= 0 ?
		    json_integer(v->context_length) : json_null(), "loaded", state != NULL &&
		    strcmp(state, "ready") == 0, "ctx", ctx ? ctx : json_null())));
		json_decref(rt);
	}
	registry_model_list_free(all, n);
	for (size_t k = 0; k < p->env.cfg->n_aliases; k++) {
		const struct config_alias *al = &p->env.cfg->aliases[k];
		json_array_append_new(data, model_entry(al->name, "mloffload", created(p, NULL),
		    json_pack("{s:s}", "alias_of", al->id)));
	}
	json_t *ol = p->env.disc ? discover_ollama_models(p->env.disc) : NULL, *v;
	size_t i;
	json_array_foreach(ol, i, v) {
		const char *id = json_string_value(json_object_get(v, "id"));
		if (id != NULL)
			json_array_append_new(data, model_entry(id, "ollama", created(p, NULL), json_pack("{s:O,s:s}",
			    "name", json_object_get(v, "name"), "backend", "ollama")));
	}
	json_decref(ol);
	reply_json(req, 200, json_pack("{s:s,s:o}", "object", "list", "data", data));
}

json_t *proxy_queue_json(struct proxy *p)
{
	json_t *a = json_array();
	uint64_t now = util_mono_ms();
	for (struct pmodel *m = p->models; m != NULL; m = m->next)
		if (m->head != NULL || m->inflight > 0)
			json_array_append_new(a, json_pack("{s:s,s:i,s:i,s:b,s:I}", "model", m->id,
			    "waiting", (int)m->n_wait, "in_flight", (int)m->inflight, "blocked",
			    m->blocked, "oldest_wait_ms", (json_int_t)(m->head ? now -
			    m->head->arrived_ms : 0)));
	return a;
}

json_t *proxy_stats_json(struct proxy *p)
{
	return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:i,s:i}", "requests",
	    (json_int_t)p->n_requests, "paused", (json_int_t)p->n_paused,
	    "answered", (json_int_t)p->n_answered, "refused", (json_int_t)p->n_refused,
	    "upstream_errors", (json_int_t)p->n_upstream_errors, "cancelled",
	    (json_int_t)p->n_cancelled, "waiting", (int)p->n_wait, "in_flight",
	    (int)p->n_inflight);
}

/* ---- life ---- */

struct proxy *proxy_new(const struct proxy_env *env)
{
	struct proxy *p = xcalloc(1, sizeof *p);
	p->env = *env;
	p->cev = curlev_new(env->base, proxy_up_done, p);
	p->kick_ev = event_new(env->base, -1, 0, kick_event, p);
	p->reap_ev = event_new(env->base, -1, 0, reap_event, p);
	p->tick_ev = event_new(env->base, -1, EV_PERSIST, tick_event, p);
	struct timeval sec = { 1, 0 };
	if (p->tick_ev != NULL)
		event_add(p->tick_ev, &sec);
	p->scratch = evbuffer_new();
	if (p->cev == NULL || p->kick_ev == NULL || p->reap_ev == NULL || p->scratch == NULL) {
		proxy_free(p);
		return NULL;
	}
	/* upstream connections are reused; a few per model is plenty */
	curl_multi_setopt(curlev_multi(p->cev), CURLMOPT_MAXCONNECTS, 256L);
	return p;
}

int proxy_shutdown(struct proxy *p)
{
	int n = 0;
	if (p == NULL)
		return 0;
	p->stopping = 1;
	while (p->live != NULL) {
		n++;
		struct preq *r = p->live;
		proxy_up_abort(r);
		if (r->req != NULL) {
			proxy_detach(r);
			if (r->streaming) {
				reply_error_event(r->route ? r->route->path : NULL, p->scratch,
				    "shutting_down", "mloffloadd is stopping");
				evhttp_send_reply_chunk(r->req, p->scratch);
				evbuffer_drain(p->scratch, evbuffer_get_length(p->scratch));
				evhttp_send_reply_end(r->req);
			} else {
				reply_retry_after(r->req);
				reply_error(r->req, 503, "shutting_down", "mloffloadd is stopping");
			}
			r->req = NULL;
		}
		proxy_finish(r);
	}
	return n;
}

void proxy_free(struct proxy *p)
{
	if (p == NULL)
		return;
	proxy_shutdown(p);
	reap_event(-1, 0, p);
	curlev_free(p->cev);
	proxy_forget(p);
	while (p->models != NULL) {
		struct pmodel *m = p->models;
		p->models = m->next;
		free(m->id);
		free(m);
	}
	if (p->kick_ev)
		event_free(p->kick_ev);
	if (p->reap_ev)
		event_free(p->reap_ev);
	if (p->tick_ev)
		event_free(p->tick_ev);
	if (p->scratch)
		evbuffer_free(p->scratch);
	free(p);
}
