/*
 * discover: finds the model servers already running on this machine. See discover.h
 * for the contract.
 *
 * One libcurl multi handle is driven by the daemon's libevent loop, the multi_socket
 * way: through its socket callback curl says which sockets to watch and for what (we
 * keep one persistent event per socket), through its timer callback when to wake it
 * (one evtimer); when libevent reports readiness or the timer, we hand that to
 * curl_multi_socket_action and then collect the finished transfers with
 * curl_multi_info_read. Nothing here waits on the network; a dead backend costs one
 * refused connection or one timeout, while the loop goes on.
 *
 * A round asks every backend at once, each in two steps: first the request that says
 * whether it is there at all (llama-server's GET /health, Ollama's GET /api/version),
 * then, only when it is, the requests that say what it serves (/props and /v1/models;
 * /api/tags and /api/ps). Answers go into the backend's "next" snapshot, which
 * replaces the published one when the backend's last request is done, so a reader
 * never sees half a round. When the last backend is done the round ends, and the
 * callback runs for every backend whose up/down state changed. Before the first round
 * every backend counts as down: the first round reports each backend it finds up, and
 * nothing for those it finds down.
 *
 * Every body is capped (max_body): a longer one aborts its transfer with an error.
 * Every answer is checked for its shape; anything unexpected is an error on that
 * backend, never a crash.
 */
#include "discover.h"
#include "util.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DISCOVER_TIMEOUT_MS 2000
#define DISCOVER_MAX_BODY (4 * 1024 * 1024)
#define DISCOVER_MAX_ERROR 1024   /* error text kept per backend and round */

enum be_type { BE_LLAMA, BE_OLLAMA };

enum req_kind {
	RQ_HEALTH, RQ_PROPS, RQ_MODELS,   /* llama-server */
	RQ_VERSION, RQ_TAGS, RQ_PS        /* Ollama */
};

static const char *const req_paths[] = {
	"/health", "/props", "/v1/models", "/api/version", "/api/tags", "/api/ps"
};

/* What one round learned about a backend. */
struct snap {
	int detected;
	int loading;        /* llama-server answered 503 "Loading model" */
	char *version;
	char *model_path;   /* llama-server's /props */
	json_t *models;     /* llama: ids (strings); Ollama: tags (objects, see tag_entry) */
	json_t *loaded;     /* Ollama: /api/ps entries (objects, see ps_entry) */
	char *error;        /* "GET /x: why; GET /y: why", or NULL */
	time_t checked_at;  /* 0: never */
};

struct backend {
	enum be_type type;
	char *url;          /* without a trailing slash */
	struct snap cur;    /* published: the last finished round */
	struct snap next;   /* being filled by the round in flight */
	int pending;        /* requests of this round in flight */
	int changed;        /* up/down differs from the round before */
};

/* One HTTP request in flight. */
struct req {
	struct discover *d;
	struct backend *b;
	enum req_kind kind;
	CURL *easy;
	char *buf;          /* the body so far, never over max_body */
	size_t len, cap;
	int too_big;
	char errbuf[CURL_ERROR_SIZE];
	struct req *prev, *next;
};

/* A socket curl asked us to watch. */
struct sock {
	struct event *ev;
	struct sock *prev, *next;
};

struct discover {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
	struct backend *backends;
	size_t n_backends;
	size_t backends_pending;  /* backends of this round not done yet */
	long timeout_ms;
	size_t max_body;
	discover_cb cb;
	void *arg;
	int busy;
	struct req *reqs;         /* in flight */
	struct sock *socks;       /* watched for curl */
	int in_cb;                /* running the user's callback */
	int dead;                 /* discover_free was called from the callback */
};

static void check_done(struct discover *);

static void snap_clear(struct snap *s)
{
	free(s->version);
	free(s->model_path);
	free(s->error);
	json_decref(s->models);
	json_decref(s->loaded);
	memset(s, 0, sizeof *s);
}

static void snap_error(struct snap *s, enum req_kind k, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Appends "GET path: message" to the snapshot's error text, up to a cap. */
static void snap_error(struct snap *s, enum req_kind k, const char *fmt, ...)
{
	char msg[512], *e;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (s->error == NULL)
		s->error = xasprintf("GET %s: %s", req_paths[k], msg);
	else if (strlen(s->error) < DISCOVER_MAX_ERROR) {
		e = xasprintf("%s; GET %s: %s", s->error, req_paths[k], msg);
		free(s->error);
		s->error = e;
	}
}

/* A new reference: key's string value in o, or JSON null. */
static json_t *jstr(const json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));

	return v != NULL ? json_string(v) : json_null();
}

/* A new reference: key's integer value in o (a whole non-negative real counts), or null. */
static json_t *jint(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	double r;

	if (json_is_integer(v))
		return json_integer(json_integer_value(v));
	if (json_is_real(v)) {
		r = json_real_value(v);
		if (r >= 0 && r < 9e18 && r == (double)(json_int_t)r)
			return json_integer((json_int_t)r);
	}
	return json_null();
}

static void sock_free(struct discover *d, struct sock *s)
{
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		d->socks = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	if (s->ev != NULL)
		event_free(s->ev);
	free(s);
}

/* libevent says a socket is ready: tell curl, then collect what finished. */
static void sock_event(evutil_socket_t fd, short what, void *arg)
{
	struct discover *d = arg;
	int action = 0, running;

	if (what & EV_READ)
		action |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		action |= CURL_CSELECT_OUT;
	curl_multi_socket_action(d->multi, fd, action, &running);
	check_done(d);   /* may free d: nothing after this */
}

/*
 * curl's socket callback: watch fd for what curl asks, or stop watching it. It runs
 * inside curl_multi_socket_action, possibly from sock_event of this very socket;
 * libevent allows freeing an event from its own callback as long as the callback does
 * not touch it afterwards, and sock_event does not.
 */
static int sock_set(CURL *easy, curl_socket_t fd, int what, void *arg, void *sockp)
{
	struct discover *d = arg;
	struct sock *s = sockp;
	short ev = EV_PERSIST;

	if (what == CURL_POLL_REMOVE) {
		if (s != NULL) {
			curl_multi_assign(d->multi, fd, NULL);
			sock_free(d, s);
		}
		return 0;
	}
	if (what & CURL_POLL_IN)
		ev |= EV_READ;
	if (what & CURL_POLL_OUT)
		ev |= EV_WRITE;
	if (s == NULL) {
		s = xcalloc(1, sizeof *s);
		s->next = d->socks;
		if (d->socks != NULL)
			d->socks->prev = s;
		d->socks = s;
		curl_multi_assign(d->multi, fd, s);
	} else if (s->ev != NULL)
		event_free(s->ev);
	s->ev = event_new(d->base, fd, ev, sock_event, d);
	if (s->ev == NULL || event_add(s->ev, NULL) != 0) {
		log_error("discover: cannot watch socket %d", (int)fd);
		return -1;   /* curl fails the transfers on it */
	}
	return 0;
}

/* The timer is due: let curl handle its timeouts, then collect what finished. */
static void timer_event(evutil_socket_t fd, short what, void *arg)
{
	struct discover *d = arg;
	int running;

	curl_multi_socket_action(d->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(d);   /* may free d: nothing after this */
}

/* curl's timer callback: wake it in ms milliseconds (0: on the next loop turn), or
 * never (-1). Only arms the timer: curl must not be called back from here. */
static int timer_set(CURLM *multi, long ms, void *arg)
{
	struct discover *d = arg;
	struct timeval tv;

	if (ms < 0) {
		evtimer_del(d->timer);
		return 0;
	}
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	return evtimer_add(d->timer, &tv) == 0 ? 0 : -1;
}

/* curl's write callback: keeps the body, and aborts the transfer past max_body. */
static size_t body_write(char *p, size_t size, size_t n, void *arg)
{
	struct req *r = arg;
	size_t len = size * n, cap;

	if (len > r->d->max_body - r->len) {
		r->too_big = 1;
		return 0;   /* less than given: curl stops with CURLE_WRITE_ERROR */
	}
	if (r->len + len + 1 > r->cap) {
		cap = r->cap != 0 ? r->cap : 4096;
		while (cap < r->len + len + 1)
			cap *= 2;
		if (cap > r->d->max_body + 1)
			cap = r->d->max_body + 1;
		r->buf = xrealloc(r->buf, cap);
		r->cap = cap;
	}
	memcpy(r->buf + r->len, p, len);
	r->len += len;
	r->buf[r->len] = '\0';
	return len;
}

static void req_free(struct discover *d, struct req *r)
{
	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		d->reqs = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	curl_easy_cleanup(r->easy);
	free(r->buf);
	free(r);
}

/* Starts GET kind on backend b. On failure the error is on b->next, nothing is in
 * flight and b->pending is unchanged. */
static void req_start(struct discover *d, struct backend *b, enum req_kind kind)
{
	struct req *r;
	char *url;
	CURLMcode mc;

	r = xcalloc(1, sizeof *r);
	r->d = d;
	r->b = b;
	r->kind = kind;
	/* as with the x* family: libcurl fails here only without memory */
	if ((r->easy = curl_easy_init()) == NULL) {
		log_error("discover: curl_easy_init failed");
		abort();
	}
	url = xasprintf("%s%s", b->url, req_paths[kind]);
	curl_easy_setopt(r->easy, CURLOPT_URL, url);
	free(url);
	curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
	curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, body_write);
	curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, d->timeout_ms);
	curl_easy_setopt(r->easy, CURLOPT_CONNECTTIMEOUT_MS, d->timeout_ms);
	curl_easy_setopt(r->easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)d->max_body);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	/* servers on this machine: never through a proxy from the environment */
	curl_easy_setopt(r->easy, CURLOPT_PROXY, "");
	curl_easy_setopt(r->easy, CURLOPT_USERAGENT, "mloffload/" MLO_VERSION);
	r->next = d->reqs;
	if (d->reqs != NULL)
		d->reqs->prev = r;
	d->reqs = r;
	if ((mc = curl_multi_add_handle(d->multi, r->easy)) != CURLM_OK) {
		snap_error(&b->next, kind, "%s", curl_multi_strerror(mc));
		req_free(d, r);
		return;
	}
	b->pending++;
}

/* The body as a JSON object (new reference), or NULL with the reason on the backend. */
static json_t *req_json(struct req *r)
{
	json_error_t je;
	json_t *j;

	j = json_loadb(r->buf != NULL ? r->buf : "", r->len, 0, &je);
	if (j == NULL) {
		snap_error(&r->b->next, r->kind, "invalid JSON: %s", je.text);
		return NULL;
	}
	if (!json_is_object(j)) {
		snap_error(&r->b->next, r->kind, "unexpected JSON: not an object");
		json_decref(j);
		return NULL;
	}
	return j;
}

/* GET /health: 200 {"status":"ok"} is up; 503 "Loading model" is up and loading. */
static void got_health(struct discover *d, struct req *r, long status)
{
	struct snap *s = &r->b->next;
	const char *v;
	json_t *j;

	if (status != 200 && status != 503) {
		snap_error(s, r->kind, "HTTP %ld", status);
		return;
	}
	if ((j = req_json(r)) == NULL)
		return;
	if (status == 503) {
		v = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
		if (v != NULL && strcasestr(v, "loading") != NULL) {
			s->detected = 1;
			s->loading = 1;
		} else
			snap_error(s, r->kind, "HTTP 503: %s", v != NULL ? v : "no message");
	} else {
		v = json_string_value(json_object_get(j, "status"));
		if (v != NULL && strcmp(v, "ok") == 0) {
			s->detected = 1;
			req_start(d, r->b, RQ_PROPS);
			req_start(d, r->b, RQ_MODELS);
		} else
			snap_error(s, r->kind, "unexpected JSON: no \"status\": \"ok\"");
	}
	json_decref(j);
}

/* GET /props: the build ("build_info", when there) and the model's path. */
static void got_props(struct req *r, json_t *j)
{
	struct snap *s = &r->b->next;
	const char *v;

	if ((v = json_string_value(json_object_get(j, "build_info"))) != NULL && *v != '\0') {
		free(s->version);
		s->version = xstrdup(v);
	}
	if ((v = json_string_value(json_object_get(j, "model_path"))) != NULL) {
		free(s->model_path);
		s->model_path = xstrdup(v);
	}
}

/* GET /v1/models: {"data": [{"id": ...}, ...]}. */
static void got_models(struct req *r, json_t *j)
{
	struct snap *s = &r->b->next;
	json_t *data = json_object_get(j, "data"), *m;
	const char *id;
	size_t i;

	if (!json_is_array(data)) {
		snap_error(s, r->kind, "unexpected JSON: no \"data\" array");
		return;
	}
	json_decref(s->models);
	s->models = json_array();
	json_array_foreach(data, i, m) {
		if ((id = json_string_value(json_object_get(m, "id"))) == NULL) {
			snap_error(s, r->kind, "unexpected JSON: a model without an id");
			continue;
		}
		json_array_append_new(s->models, json_string(id));
	}
}

/* GET /api/version: {"version": "0.5.7"} is up. */
static void got_version(struct discover *d, struct req *r, json_t *j)
{
	struct snap *s = &r->b->next;
	const char *v = json_string_value(json_object_get(j, "version"));

	if (v == NULL) {
		snap_error(s, r->kind, "unexpected JSON: no \"version\" string");
		return;
	}
	s->detected = 1;
	free(s->version);
	s->version = xstrdup(v);
	req_start(d, r->b, RQ_TAGS);
	req_start(d, r->b, RQ_PS);
}

/* One /api/tags model, kept: name, model, size, digest and the details we use. */
static json_t *tag_entry(const json_t *m)
{
	const json_t *det = json_object_get(m, "details");
	json_t *o = json_object();

	json_object_set_new(o, "name", jstr(m, "name"));
	json_object_set_new(o, "model", jstr(m, "model"));
	json_object_set_new(o, "size", jint(m, "size"));
	json_object_set_new(o, "digest", jstr(m, "digest"));
	json_object_set_new(o, "family", jstr(det, "family"));
	json_object_set_new(o, "parameter_size", jstr(det, "parameter_size"));
	json_object_set_new(o, "quantization_level", jstr(det, "quantization_level"));
	json_object_set_new(o, "format", jstr(det, "format"));
	return o;
}

/* One /api/ps model, kept: name, model, size, size_vram, expires_at. */
static json_t *ps_entry(const json_t *m)
{
	json_t *o = json_object();

	json_object_set_new(o, "name", jstr(m, "name"));
	json_object_set_new(o, "model", jstr(m, "model"));
	json_object_set_new(o, "size", jint(m, "size"));
	json_object_set_new(o, "size_vram", jint(m, "size_vram"));
	json_object_set_new(o, "expires_at", jstr(m, "expires_at"));
	return o;
}

/* GET /api/tags or /api/ps: {"models": [{"name": ..., ...}, ...]}. */
static void got_ollama_list(struct req *r, json_t *j)
{
	struct snap *s = &r->b->next;
	json_t *list = json_object_get(j, "models"), *m, **dst;
	size_t i;

	if (!json_is_array(list)) {
		snap_error(s, r->kind, "unexpected JSON: no \"models\" array");
		return;
	}
	dst = r->kind == RQ_TAGS ? &s->models : &s->loaded;
	json_decref(*dst);
	*dst = json_array();
	json_array_foreach(list, i, m) {
		if (json_string_value(json_object_get(m, "name")) == NULL) {
			snap_error(s, r->kind, "unexpected JSON: a model without a name");
			continue;
		}
		json_array_append_new(*dst, r->kind == RQ_TAGS ? tag_entry(m) : ps_entry(m));
	}
}

/* The backend's round is over: publish what it learned. */
static void backend_done(struct discover *d, struct backend *b)
{
	b->next.checked_at = time(NULL);
	if (b->next.models == NULL)
		b->next.models = json_array();
	if (b->next.loaded == NULL)
		b->next.loaded = json_array();
	b->changed = b->next.detected != b->cur.detected;
	snap_clear(&b->cur);
	b->cur = b->next;
	memset(&b->next, 0, sizeof b->next);
	d->backends_pending--;
}

/* A request is over: note what it said, start what follows from it. */
static void req_done(struct discover *d, struct req *r, CURLcode rc)
{
	struct backend *b = r->b;
	long status = 0;
	json_t *j;

	curl_multi_remove_handle(d->multi, r->easy);
	if (r->too_big || rc == CURLE_FILESIZE_EXCEEDED)
		snap_error(&b->next, r->kind, "response body larger than %zu bytes (max_body)",
		    d->max_body);
	else if (rc != CURLE_OK)
		snap_error(&b->next, r->kind, "%s", r->errbuf[0] != '\0' ? r->errbuf :
		    curl_easy_strerror(rc));
	else {
		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
		if (r->kind == RQ_HEALTH)
			got_health(d, r, status);
		else if (status != 200)
			snap_error(&b->next, r->kind, "HTTP %ld", status);
		else if ((j = req_json(r)) != NULL) {
			switch (r->kind) {
			case RQ_PROPS:
				got_props(r, j);
				break;
			case RQ_MODELS:
				got_models(r, j);
				break;
			case RQ_VERSION:
				got_version(d, r, j);
				break;
			case RQ_TAGS:
			case RQ_PS:
				got_ollama_list(r, j);
				break;
			case RQ_HEALTH:
				break;
			}
			json_decref(j);
		}
	}
	req_free(d, r);
	if (--b->pending == 0)
		backend_done(d, b);
}

static void discover_destroy(struct discover *d)
{
	size_t i;

	while (d->reqs != NULL) {
		curl_multi_remove_handle(d->multi, d->reqs->easy);
		req_free(d, d->reqs);
	}
	curl_multi_cleanup(d->multi);
	while (d->socks != NULL)   /* the ones curl did not say to remove */
		sock_free(d, d->socks);
	event_free(d->timer);
	for (i = 0; i < d->n_backends; i++) {
		free(d->backends[i].url);
		snap_clear(&d->backends[i].cur);
		snap_clear(&d->backends[i].next);
	}
	free(d->backends);
	free(d);
	curl_global_cleanup();
}

/* The round is over: run the callback for every backend that went up or down. */
static void round_end(struct discover *d)
{
	struct backend *b;
	size_t i;

	d->busy = 0;
	d->in_cb = 1;
	for (i = 0; i < d->n_backends && !d->dead; i++) {
		b = &d->backends[i];
		if (!b->changed)
			continue;
		b->changed = 0;
		log_info("discover: %s %s is %s", b->type == BE_LLAMA ? "llama.cpp" : "ollama",
		    b->url, b->cur.detected ? "up" : "down");
		if (d->cb != NULL)
			d->cb(d->arg, b->url, b->cur.detected);
	}
	d->in_cb = 0;
	if (d->dead)
		discover_destroy(d);
}

/* Collects the finished transfers, and ends the round when nothing is left. */
static void check_done(struct discover *d)
{
	CURLMsg *m;
	CURL *easy;
	CURLcode rc;
	void *p;
	int left;

	while ((m = curl_multi_info_read(d->multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		/* m is gone once the handle is removed: copy what we need */
		easy = m->easy_handle;
		rc = m->data.result;
		p = NULL;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, &p);
		if (p != NULL)
			req_done(d, p, rc);
	}
	if (d->busy && d->backends_pending == 0)
		round_end(d);   /* may free d */
}

static void backend_add(struct discover *d, enum be_type type, const char *url)
{
	struct backend *b = &d->backends[d->n_backends++];
	size_t len = strlen(url);

	while (len > 0 && url[len - 1] == '/')
		len--;
	memset(b, 0, sizeof *b);
	b->type = type;
	b->url = xstrndup(url, len);
}

struct discover *discover_new(struct event_base *base, const struct discover_opts *o,
    discover_cb cb, void *arg)
{
	struct discover *d;
	size_t i;

	/* as with the x* family: libcurl fails here only without memory */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("discover: curl_global_init failed");
		abort();
	}
	d = xcalloc(1, sizeof *d);
	d->base = base;
	d->cb = cb;
	d->arg = arg;
	d->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : DISCOVER_TIMEOUT_MS;
	d->max_body = o->max_body > 0 ? o->max_body : DISCOVER_MAX_BODY;
	d->backends = xcalloc(o->n_llama + 1, sizeof *d->backends);
	for (i = 0; i < o->n_llama; i++) {
		if (o->llama_urls[i] != NULL && o->llama_urls[i][0] != '\0')
			backend_add(d, BE_LLAMA, o->llama_urls[i]);
	}
	if (o->ollama_url != NULL && o->ollama_url[0] != '\0')
		backend_add(d, BE_OLLAMA, o->ollama_url);

	if ((d->multi = curl_multi_init()) == NULL ||
	    (d->timer = evtimer_new(base, timer_event, d)) == NULL) {
		log_error("discover: cannot create the multi handle or its timer");
		abort();
	}
	curl_multi_setopt(d->multi, CURLMOPT_SOCKETFUNCTION, sock_set);
	curl_multi_setopt(d->multi, CURLMOPT_SOCKETDATA, d);
	curl_multi_setopt(d->multi, CURLMOPT_TIMERFUNCTION, timer_set);
	curl_multi_setopt(d->multi, CURLMOPT_TIMERDATA, d);
	return d;
}

void discover_free(struct discover *d)
{
	if (d == NULL)
		return;
	if (d->in_cb) {   /* called from our callback: round_end frees it after */
		d->dead = 1;
		return;
	}
	discover_destroy(d);
}

void discover_poll(struct discover *d)
{
	static const struct timeval now = { 0, 0 };
	struct backend *b;
	size_t i;

	if (d->busy || d->dead || d->n_backends == 0)
		return;
	d->busy = 1;
	d->backends_pending = d->n_backends;
	for (i = 0; i < d->n_backends; i++) {
		b = &d->backends[i];
		snap_clear(&b->next);
		b->pending = 1;   /* held while starting, so that a failure ends it below */
		req_start(d, b, b->type == BE_LLAMA ? RQ_HEALTH : RQ_VERSION);
		if (--b->pending == 0)
			backend_done(d, b);   /* could not even start */
	}
	/* the round ends (and callbacks run) from the loop, never from in here */
	if (d->backends_pending == 0)
		evtimer_add(d->timer, &now);
}

int discover_busy(const struct discover *d)
{
	return d->busy;
}

/* An ISO 8601 UTC time into buf (borrowed, returned). */
static const char *fmt_time(time_t t, char *buf, size_t len)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

static json_t *jstr_or_null(const char *s)
{
	return s != NULL ? json_string(s) : json_null();
}

json_t *discover_backends(const struct discover *d)
{
	const struct backend *b;
	const struct snap *s;
	json_t *a = json_array(), *o, *models, *loaded, *m;
	char when[32];
	size_t i, k;

	for (i = 0; i < d->n_backends; i++) {
		b = &d->backends[i];
		s = &b->cur;
		o = json_object();
		models = json_array();
		loaded = json_array();
		json_object_set_new(o, "type", json_string(b->type == BE_LLAMA ? "llama.cpp" :
		    "ollama"));
		json_object_set_new(o, "url", json_string(b->url));
		json_object_set_new(o, "detected", json_boolean(s->detected));
		json_object_set_new(o, "managed", json_false());
		json_object_set_new(o, "version", jstr_or_null(s->version));
		if (b->type == BE_LLAMA) {
			json_array_foreach(s->models, k, m) {
				json_array_append(models, m);
				/* a healthy llama-server has its one model loaded; what it takes
				 * in memory is not in its HTTP API */
				if (s->detected && !s->loading)
					json_array_append_new(loaded, json_pack("{s:O, s:n}",
					    "name", m, "size_vram"));
			}
		} else {
			json_array_foreach(s->models, k, m)
				json_array_append(models, json_object_get(m, "name"));
			json_array_foreach(s->loaded, k, m)
				json_array_append_new(loaded, json_deep_copy(m));
		}
		json_object_set_new(o, "models", models);
		json_object_set_new(o, "loaded", loaded);
		json_object_set_new(o, "error", jstr_or_null(s->error));
		json_object_set_new(o, "checked_at", s->checked_at != 0 ?
		    json_string(fmt_time(s->checked_at, when, sizeof when)) : json_null());
		if (b->type == BE_LLAMA) {
			json_object_set_new(o, "loading", json_boolean(s->loading));
			json_object_set_new(o, "model_path", jstr_or_null(s->model_path));
		}
		json_array_append_new(a, o);
	}
	return a;
}

/* Ollama's "8.0B", "137M", "1.5K", "70b" as a count, or -1. */
static long long parse_params(const char *s)
{
	double v, mul = 1;
	char *end;

	if (s == NULL || *s == '\0')
		return -1;
	v = strtod(s, &end);
	if (end == s || v < 0)
		return -1;
	switch (*end) {
	case 'K':
	case 'k':
		mul = 1e3;
		break;
	case 'M':
	case 'm':
		mul = 1e6;
		break;
	case 'B':
	case 'b':
		mul = 1e9;
		break;
	case 'T':
	case 't':
		mul = 1e12;
		break;
	}
	if (mul != 1)
		end++;
	if (*end != '\0' || v * mul > 1e15)
		return -1;
	return (long long)(v * mul + 0.5);
}

/* One model object for GET /models from an /api/tags entry (or only an /api/ps one)
 * and its /api/ps entry (NULL when not loaded). */
static json_t *ollama_model(const json_t *tag, const json_t *ps)
{
	const json_t *src = tag != NULL ? tag : ps;
	const char *name = json_string_value(json_object_get(src, "name"));
	const char *psz = json_string_value(json_object_get(tag, "parameter_size"));
	long long params = parse_params(psz);
	json_t *o = json_object(), *vram;
	char *id = xasprintf("ollama:%s", name);

	json_object_set_new(o, "id", json_string(id));
	free(id);
	json_object_set_new(o, "name", json_string(name));
	json_object_set_new(o, "backend", json_string("ollama"));
	json_object_set_new(o, "size", json_deep_copy(json_object_get(src, "size")));
	json_object_set_new(o, "quantization", jstr(tag, "quantization_level"));
	json_object_set_new(o, "parameters", params >= 0 ? json_integer(params) : json_null());
	json_object_set_new(o, "parameters_label", jstr_or_null(psz));
	json_object_set_new(o, "family", jstr(tag, "family"));
	json_object_set_new(o, "format", jstr(tag, "format"));
	json_object_set_new(o, "digest", jstr(tag, "digest"));
	json_object_set_new(o, "state", json_string(ps != NULL ? "loaded" : "available"));
	json_object_set_new(o, "loaded", json_boolean(ps != NULL));
	vram = json_object_get(ps, "size_vram");
	json_object_set_new(o, "vram_bytes", json_is_integer(vram) ? json_deep_copy(vram) :
	    json_integer(0));
	json_object_set_new(o, "expires_at", ps != NULL ? jstr(ps, "expires_at") : json_null());
	return o;
}

/* Whether /api/ps entry p is /api/tags entry t (by name, or by model). */
static int same_model(const json_t *p, const json_t *t)
{
	const char *pn = json_string_value(json_object_get(p, "name"));
	const char *pm = json_string_value(json_object_get(p, "model"));
	const char *tn = json_string_value(json_object_get(t, "name"));
	const char *tm = json_string_value(json_object_get(t, "model"));

	return (pn != NULL && tn != NULL && strcmp(pn, tn) == 0) ||
	    (pm != NULL && tm != NULL && strcmp(pm, tm) == 0);
}

json_t *discover_ollama_models(const struct discover *d)
{
	const struct backend *b;
	json_t *a = json_array(), *t, *p, *hit;
	size_t i, k, n;

	for (i = 0; i < d->n_backends; i++) {
		b = &d->backends[i];
		if (b->type != BE_OLLAMA || !b->cur.detected)
			continue;
		json_array_foreach(b->cur.models, k, t) {
			hit = NULL;
			json_array_foreach(b->cur.loaded, n, p) {
				if (same_model(p, t)) {
					hit = p;
					break;
				}
			}
			json_array_append_new(a, ollama_model(t, hit));
		}
		/* loaded, yet not in the list (removed meanwhile): shown all the same */
		json_array_foreach(b->cur.loaded, n, p) {
			hit = NULL;
			json_array_foreach(b->cur.models, k, t) {
				if (same_model(p, t)) {
					hit = t;
					break;
				}
			}
			if (hit == NULL)
				json_array_append_new(a, ollama_model(NULL, p));
		}
	}
	return a;
}
