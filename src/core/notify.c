/*
 * notify: events, the replay ring, and webhooks (see notify.h); the SSE streams are in
 * notify_sse.c.
 *
 * Webhooks go through one curlev (libcurl's multi handle on the loop, see curlev.h),
 * as discover_http.c's GETs do; it hands each finished POST to hook_done. Each hook
 * has one POST in flight at most, a ring of waiting events (oldest dropped when full,
 * and counted), and a retry timer for the backoff between tries.
 */
#include "notify_int.h"
#include "util.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define NOTIFY_MAX_URL 2048
#define NOTIFY_MAX_TYPE 64
#define NOTIFY_MAX_EVENT (256 * 1024)   /* a bigger event keeps its id, not its data */
#define NOTIFY_MAX_BACKOFF_MS 60000L
#define NOTIFY_MAX_ERROR 256

const char *const notify_types[] = {
	"model.loaded", "model.unloaded", "model.failed", "vram.pressure",
	"vram.recovered", "backend.down", "backend.up", "scan.finished", "model.loading",
	"model.queued", "webhook.failed", "model.shrunk", "model.grown", NULL
};

struct hook {
	struct notify *n;
	char *url;
	uint32_t filter;        /* bit i: notify_types[i]; 0: every type */
	int max_retries;
	long timeout_ms, retry_base_ms;
	size_t max_queue;
	struct nev **q;         /* ring of max_queue waiting events */
	size_t q_first, q_len;
	struct nev *cur;        /* being delivered (in flight or waiting to retry) */
	CURL *easy;             /* the try in flight, or NULL */
	int tries;              /* of cur, so far */
	long retry_after_ms;    /* the server's Retry-After on the last try, or 0 */
	struct event *retry;
	char errbuf[CURL_ERROR_SIZE];
	char last_error[NOTIFY_MAX_ERROR];
	uint64_t sent, failed, dropped, retries;
};

static void hook_send(struct hook *h);
static void hook_next(struct hook *h);

void notify_nev_unref(struct nev *e)
{
	if (e == NULL || --e->refs > 0)
		return;
	free(e->json);
	free(e->sse);
	free(e);
}

static int type_index(const char *t)
{
	for (int i = 0; notify_types[i] != NULL; i++)
		if (strcmp(notify_types[i], t) == 0)
			return i;
	return -1;
}

static int type_valid(const char *t)
{
	size_t len = t != NULL ? strlen(t) : 0;

	if (len == 0 || len > NOTIFY_MAX_TYPE)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= '0' && t[i] <= '9') ||
		    t[i] == '.' || t[i] == '_' || t[i] == '-'))
			return 0;
	return 1;
}

static void hook_done(struct hook *h, CURLcode rc);

/* curlev's done callback: the POST of a hook is over. */
static void curl_done(void *arg, CURL *easy, CURLcode rc)
{
	void *p = NULL;

	curl_easy_getinfo(easy, CURLINFO_PRIVATE, &p);
	if (p != NULL)
		hook_done(p, rc);
}

/* The webhook's answer body is not used: read and forgotten (the timeout bounds it). */
static size_t body_discard(char *p, size_t size, size_t nmemb, void *arg)
{
	return size * nmemb;
}

/* ---- hooks ---- */

static void hook_drop_easy(struct hook *h)
{
	if (h->easy == NULL)
		return;
	curlev_remove(h->n->ev, h->easy);   /* harmless once curlev took it out */
	curl_easy_cleanup(h->easy);
	h->easy = NULL;
}

static void retry_event(evutil_socket_t fd, short what, void *arg)
{
	hook_send(arg);
}

/* Ends the delivery of h->cur (counted by the caller) and starts the next one. */
static void hook_finish(struct hook *h)
{
	notify_nev_unref(h->cur);
	h->cur = NULL;
	h->tries = 0;
	hook_next(h);
}

/* The try of h->cur failed with why: retry later, or count it failed. */
static void hook_failed_try(struct hook *h, int retryable, const char *why)
{
	struct timeval tv;
	long ms;

	snprintf(h->last_error, sizeof h->last_error, "%s", why);
	if (retryable && h->tries <= h->max_retries) {
		ms = h->retry_base_ms;
		for (int i = 1; i < h->tries && ms < NOTIFY_MAX_BACKOFF_MS; i++)
			ms *= 2;
		if (h->retry_after_ms > ms)
			ms = h->retry_after_ms;
		if (ms > NOTIFY_MAX_BACKOFF_MS)
			ms = NOTIFY_MAX_BACKOFF_MS;
		tv.tv_sec = ms / 1000;
		tv.tv_usec = (ms % 1000) * 1000;
		h->retries++;
		log_debug("notify: %s: event %llu: %s; retry in %ld ms", h->url,
		    (unsigned long long)h->cur->id, why, ms);
		evtimer_add(h->retry, &tv);
		return;
	}
	h->failed++;
	log_warnx("notify: %s: event %llu not delivered after %d tries: %s", h->url,
	    (unsigned long long)h->cur->id, h->tries, why);
	/* for /events and the dashboard; never sent to a hook (it could fail in turn) */
	json_t *d = json_pack("{s:s,s:I,s:s,s:i,s:s}", "url", h->url, "event",
	    (json_int_t)h->cur->id, "type", h->cur->type_idx >= 0 ?
	    notify_types[h->cur->type_idx] : "other", "tries", h->tries, "error", why);
	hook_finish(h);
	notify_emit(h->n, "webhook.failed", d);
	json_decref(d);
}

static void hook_done(struct hook *h, CURLcode rc)
{
	char why[NOTIFY_MAX_ERROR];
	long status = 0;
	curl_off_t ra = -1;

	curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &status);
#if LIBCURL_VERSION_NUM >= 0x074200
	curl_easy_getinfo(h->easy, CURLINFO_RETRY_AFTER, &ra);
#endif
	h->retry_after_ms = ra > 0 ? (ra > 60 ? 60000 : (long)ra * 1000) : 0;
	if (rc != CURLE_OK)
		snprintf(why, sizeof why, "%s", h->errbuf[0] != '\0' ? h->errbuf :
		    curl_easy_strerror(rc));
	else
		snprintf(why, sizeof why, "HTTP %ld", status);
	hook_drop_easy(h);
	if (rc == CURLE_OK && status >= 200 && status < 300) {
		h->sent++;
		hook_finish(h);
	} else
		hook_failed_try(h, rc != CURLE_OK || status >= 500 || status == 429, why);
}

/* One try of POSTing h->cur. */
static void hook_send(struct hook *h)
{
	CURLMcode mc;

	h->tries++;
	h->errbuf[0] = '\0';
	h->retry_after_ms = 0;
	/* as with the x* family: libcurl fails here only without memory */
	if ((h->easy = curl_easy_init()) == NULL) {
		log_error("notify: curl_easy_init failed");
		abort();
	}
	curl_easy_setopt(h->easy, CURLOPT_URL, h->url);
	curl_easy_setopt(h->easy, CURLOPT_PRIVATE, h);
	curl_easy_setopt(h->easy, CURLOPT_POST, 1L);
	curl_easy_setopt(h->easy, CURLOPT_POSTFIELDS, h->cur->json);   /* cur outlives it */
	curl_easy_setopt(h->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)h->cur->json_len);
	curl_easy_setopt(h->easy, CURLOPT_HTTPHEADER, h->n->headers);
	curl_easy_setopt(h->easy, CURLOPT_WRITEFUNCTION, body_discard);
	curl_easy_setopt(h->easy, CURLOPT_ERRORBUFFER, h->errbuf);
	curl_easy_setopt(h->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h->easy, CURLOPT_TIMEOUT_MS, h->timeout_ms);
	curl_easy_setopt(h->easy, CURLOPT_CONNECTTIMEOUT_MS, h->timeout_ms);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(h->easy, CURLOPT_PROTOCOLS_STR, "http");
#else
	curl_easy_setopt(h->easy, CURLOPT_PROTOCOLS, (long)CURLPROTO_HTTP);
#endif
	/* as everywhere in the daemon: no proxy from the environment */
	curl_easy_setopt(h->easy, CURLOPT_PROXY, "");
	curl_easy_setopt(h->easy, CURLOPT_USERAGENT, "mloffload/" MLO_VERSION);
	if ((mc = curlev_add(h->n->ev, h->easy)) != CURLM_OK) {
		curl_easy_cleanup(h->easy);
		h->easy = NULL;
		hook_failed_try(h, 1, curl_multi_strerror(mc));
	}
}

/* Starts delivering the oldest waiting event, when nothing is being delivered. */
static void hook_next(struct hook *h)
{
	if (h->cur != NULL || h->q_len == 0)
		return;
	h->cur = h->q[h->q_first];
	h->q_first = (h->q_first + 1) % h->max_queue;
	h->q_len--;
	h->tries = 0;
	hook_send(h);
}

static void hook_push(struct hook *h, struct nev *e)
{
	if (h->q_len == h->max_queue) {   /* full: the oldest goes */
		notify_nev_unref(h->q[h->q_first]);
		h->q_first = (h->q_first + 1) % h->max_queue;
		h->q_len--;
		h->dropped++;
	}
	e->refs++;
	h->q[(h->q_first + h->q_len) % h->max_queue] = e;
	h->q_len++;
	hook_next(h);
}

static void hook_fini(struct hook *h)
{
	hook_drop_easy(h);
	if (h->retry != NULL)
		event_free(h->retry);
	notify_nev_unref(h->cur);
	for (size_t i = 0; i < h->q_len; i++)
		notify_nev_unref(h->q[(h->q_first + i) % h->max_queue]);
	free(h->q);
	free(h->url);
}

/* Checks hook c and fills h from it. Returns 0 or -1 (logged). */
static int hook_init(struct notify *n, struct hook *h, const struct notify_hook *c)
{
	int t;

	if (c->url == NULL || strncasecmp(c->url, "http://", 7) != 0 ||
	    strlen(c->url) <= 7 || strlen(c->url) > NOTIFY_MAX_URL ||
	    strpbrk(c->url, " \t\r\n") != NULL) {
		log_error("notify: webhook URL %s: want http://host[:port][/path]",
		    c->url != NULL ? c->url : "(none)");
		return -1;
	}
	for (size_t i = 0; i < c->n_events; i++) {
		if (c->events[i] == NULL || (t = type_index(c->events[i])) < 0) {
			log_error("notify: webhook %s: unknown event type %s", c->url,
			    c->events[i] != NULL ? c->events[i] : "(none)");
			return -1;
		}
		h->filter |= 1u << t;
	}
	if (c->max_retries < NOTIFY_NO_RETRY || c->max_retries > 10 ||
	    c->timeout_ms < 0 || c->timeout_ms > 600000 ||
	    c->retry_base_ms < 0 || c->retry_base_ms > NOTIFY_MAX_BACKOFF_MS ||
	    c->max_queue > 65536) {
		log_error("notify: webhook %s: max_retries 0..10, timeout_ms up to 600000, "
		    "retry_base_ms up to 60000, max_queue up to 65536", c->url);
		return -1;
	}
	h->n = n;
	h->url = xstrdup(c->url);
	h->max_retries = c->max_retries == 0 ? 3 :
	    c->max_retries == NOTIFY_NO_RETRY ? 0 : c->max_retries;
	h->timeout_ms = c->timeout_ms != 0 ? c->timeout_ms : 5000;
	h->retry_base_ms = c->retry_base_ms != 0 ? c->retry_base_ms : 500;
	h->max_queue = c->max_queue != 0 ? c->max_queue : 256;
	h->q = xcalloc(h->max_queue, sizeof *h->q);
	if ((h->retry = evtimer_new(n->base, retry_event, h)) == NULL) {
		log_error("notify: cannot create a timer");
		return -1;
	}
	return 0;
}

/* ---- the notifier ---- */

struct notify *notify_new(struct event_base *base, const struct notify_hook *hooks,
    size_t n_hooks)
{
	struct notify *n;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("notify: curl_global_init failed");
		return NULL;
	}
	n = xcalloc(1, sizeof *n);
	n->base = base;
	n->hooks = xcalloc(n_hooks != 0 ? n_hooks : 1, sizeof *n->hooks);
	for (size_t i = 0; i < n_hooks; i++) {
		n->n_hooks = i + 1;   /* so notify_free cleans this one up too */
		if (hook_init(n, &n->hooks[i], &hooks[i]) != 0)
			goto fail;
	}
	n->headers = curl_slist_append(NULL, "Content-Type: application/json");
	/* no "Expect: 100-continue" round trip before bigger bodies */
	n->headers = curl_slist_append(n->headers, "Expect:");
	if (n->headers == NULL || (n->ev = curlev_new(base, curl_done, n)) == NULL ||
	    notify_sse_init(n) != 0) {
		log_error("notify: cannot create the multi handle or the timers");
		goto fail;
	}
	return n;
fail:
	notify_free(n);
	return NULL;
}

void notify_free(struct notify *n)
{
	if (n == NULL)
		return;
	notify_sse_fini(n);
	for (size_t i = 0; i < n->n_hooks; i++)
		hook_fini(&n->hooks[i]);
	free(n->hooks);
	curlev_free(n->ev);   /* after the hooks: they took their transfers out */
	curl_slist_free_all(n->headers);
	for (size_t i = 0; i < n->ring_len; i++)
		notify_nev_unref(n->ring[(n->ring_first + i) % NOTIFY_RING]);
	free(n);
	curl_global_cleanup();
}

/* "2025-01-02T03:04:05.678Z" into buf. */
static void fmt_now(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	char s[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%03ldZ", s, ts.tv_nsec / 1000000);
}

/* A new event (one reference) of type with data (borrowed; NULL: {}). */
static struct nev *nev_new(struct notify *n, const char *type, json_t *data)
{
	struct nev *e = xcalloc(1, sizeof *e);
	char at[48];
	json_t *o;

	e->refs = 1;
	e->id = ++n->last_id;
	e->type_idx = type_index(type);
	fmt_now(at, sizeof at);
	/* "o" steals: our own reference to data, or a new {} */
	o = json_pack("{sIssssso}", "id", (json_int_t)e->id, "type", type, "at", at,
	    "data", data != NULL ? json_incref(data) : json_object());
	if (o == NULL)
		abort();   /* only without memory: the arguments are checked */
	e->json = json_dumps(o, JSON_COMPACT);
	if (e->json != NULL && strlen(e->json) > NOTIFY_MAX_EVENT) {
		log_warnx("notify: event %llu (%s): data over %d bytes left out",
		    (unsigned long long)e->id, type, NOTIFY_MAX_EVENT);
		json_object_set_new(o, "data", json_pack("{sb}", "truncated", 1));
		free(e->json);
		e->json = json_dumps(o, JSON_COMPACT);
	}
	json_decref(o);
	if (e->json == NULL)
		abort();   /* only without memory */
	e->json_len = strlen(e->json);
	e->sse = xasprintf("id: %llu\nevent: %s\ndata: %s\n\n", (unsigned long long)e->id,
	    type, e->json);
	e->sse_len = strlen(e->sse);
	return e;
}

void notify_emit(struct notify *n, const char *type, json_t *data)
{
	struct nev *e;
	struct hook *h;

	if (!type_valid(type)) {
		log_error("notify: invalid event type %s", type != NULL ? type : "(none)");
		return;
	}
	e = nev_new(n, type, data);
	if (n->ring_len == NOTIFY_RING) {
		notify_nev_unref(n->ring[n->ring_first]);
		n->ring_first = (n->ring_first + 1) % NOTIFY_RING;
		n->ring_len--;
	}
	n->ring[(n->ring_first + n->ring_len) % NOTIFY_RING] = e;   /* takes the reference */
	n->ring_len++;
	for (size_t i = 0; i < n->n_hooks; i++) {
		h = &n->hooks[i];
		if (strcmp(type, "webhook.failed") != 0 && (h->filter == 0 ||
		    (e->type_idx >= 0 && (h->filter & (1u << e->type_idx)))))
			hook_push(h, e);
	}
	notify_sse_broadcast(n, e);
}

json_t *notify_stats_json(const struct notify *n)
{
	json_t *hooks = json_array();
	const struct hook *h;

	for (size_t i = 0; i < n->n_hooks; i++) {
		h = &n->hooks[i];
		json_array_append_new(hooks, json_pack("{sssIsIsIsIsIsbso}",
		    "url", h->url, "sent", (json_int_t)h->sent, "failed", (json_int_t)h->failed,
		    "dropped", (json_int_t)h->dropped, "retries", (json_int_t)h->retries,
		    "queued", (json_int_t)h->q_len, "in_flight", h->cur != NULL,
		    "last_error", h->last_error[0] != '\0' ? json_string(h->last_error) :
		    json_null()));
	}
	return json_pack("{sIsos{sIsIsI}}", "events", (json_int_t)n->last_id, "hooks", hooks,
	    "sse",
	    "subscribers", (json_int_t)n->n_subs, "max_subscribers", (json_int_t)n->max_subs,
	    "dropped_slow", (json_int_t)n->sse_dropped);
}
