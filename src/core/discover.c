/*
 * discover: finds the model servers already running on this machine. See discover.h
 * for the contract.
 *
 * One libcurl multi handle is driven by the daemon's libevent loop, the multi_socket
 * way (curlev.c): through its socket callback curl says which sockets to watch and for
 * what (one persistent event per socket), through its timer callback when to wake it
 * (one evtimer); when libevent reports readiness or the timer, that goes to
 * curl_multi_socket_action and then the finished transfers are collected with
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
 *
 * The curl-multi machinery is curlev.c; the requests and the reading of each answer
 * are in discover_http.c; what the two files share is in discover_int.h.
 */
#include "discover_int.h"
#include "util.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DISCOVER_TIMEOUT_MS 2000
#define DISCOVER_MAX_BODY (4 * 1024 * 1024)

static void snap_clear(struct snap *s)
{
	free(s->version);
	free(s->model_path);
	free(s->error);
	json_decref(s->models);
	json_decref(s->loaded);
	memset(s, 0, sizeof *s);
}

/* A new reference: key's string value in o, or JSON null. */
json_t *discover_jstr(const json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));

	return v != NULL ? json_string(v) : json_null();
}

/* The backend's round is over: publish what it learned. */
void discover_backend_done(struct discover *d, struct backend *b)
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

static void discover_destroy(struct discover *d)
{
	size_t i;

	while (d->reqs != NULL) {
		curlev_remove(d->ev, d->reqs->easy);
		discover_req_free(d, d->reqs);
	}
	curlev_free(d->ev);   /* from its done callback: it goes once that returns */
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
void discover_round_end(struct discover *d)
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

/* The timer: a round that started no request ends here, from the loop. May free d. */
static void timer_event(evutil_socket_t fd, short what, void *arg)
{
	struct discover *d = arg;

	if (d->busy && d->backends_pending == 0)
		discover_round_end(d);
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

	if ((d->ev = curlev_new(base, discover_http_done, d)) == NULL ||
	    (d->timer = evtimer_new(base, timer_event, d)) == NULL) {
		log_error("discover: cannot create the multi handle or its timer");
		abort();
	}
	return d;
}

void discover_free(struct discover *d)
{
	if (d == NULL)
		return;
	if (d->in_cb) {   /* called from our callback: discover_round_end frees it after */
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
		discover_req_start(d, b, b->type == BE_LLAMA ? RQ_HEALTH : RQ_VERSION);
		if (--b->pending == 0)
			discover_backend_done(d, b);   /* could not even start */
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
	json_object_set_new(o, "quantization", discover_jstr(tag, "quantization_level"));
	json_object_set_new(o, "parameters", params >= 0 ? json_integer(params) : json_null());
	json_object_set_new(o, "parameters_label", jstr_or_null(psz));
	json_object_set_new(o, "family", discover_jstr(tag, "family"));
	json_object_set_new(o, "format", discover_jstr(tag, "format"));
	json_object_set_new(o, "digest", discover_jstr(tag, "digest"));
	json_object_set_new(o, "state", json_string(ps != NULL ? "loaded" : "available"));
	json_object_set_new(o, "loaded", json_boolean(ps != NULL));
	vram = json_object_get(ps, "size_vram");
	json_object_set_new(o, "vram_bytes", json_is_integer(vram) ? json_deep_copy(vram) :
	    json_integer(0));
	json_object_set_new(o, "expires_at", ps != NULL ? discover_jstr(ps, "expires_at") :
	    json_null());
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
