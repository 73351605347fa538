/*
 * discover_http: the discoverer's HTTP (see discover.c), GETs on one curlev (libcurl's
 * multi handle on the daemon's libevent loop, see curlev.h), which hands each finished
 * transfer to discover_http_done. Every body is capped at max_body. Each answer is
 * then checked for its shape and kept in the backend's next snapshot, starting the
 * requests that follow from it; anything unexpected is an error on that backend.
 */
#include "discover_int.h"
#include "util.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DISCOVER_MAX_ERROR 1024   /* error text kept per backend and round */

static const char *const req_paths[] = {
	"/health", "/props", "/v1/models", "/api/version", "/api/tags", "/api/ps"
};

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

void discover_req_free(struct discover *d, struct req *r)
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
void discover_req_start(struct discover *d, struct backend *b, enum req_kind kind)
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
	if ((mc = curlev_add(d->ev, r->easy)) != CURLM_OK) {
		snap_error(&b->next, kind, "%s", curl_multi_strerror(mc));
		discover_req_free(d, r);
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
			discover_req_start(d, r->b, RQ_PROPS);
			discover_req_start(d, r->b, RQ_MODELS);
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
	discover_req_start(d, r->b, RQ_TAGS);
	discover_req_start(d, r->b, RQ_PS);
}

/* One /api/tags model, kept: name, model, size, digest and the details we use. */
static json_t *tag_entry(const json_t *m)
{
	const json_t *det = json_object_get(m, "details");
	json_t *o = json_object();

	json_object_set_new(o, "name", discover_jstr(m, "name"));
	json_object_set_new(o, "model", discover_jstr(m, "model"));
	json_object_set_new(o, "size", jint(m, "size"));
	json_object_set_new(o, "digest", discover_jstr(m, "digest"));
	json_object_set_new(o, "family", discover_jstr(det, "family"));
	json_object_set_new(o, "parameter_size", discover_jstr(det, "parameter_size"));
	json_object_set_new(o, "quantization_level", discover_jstr(det, "quantization_level"));
	json_object_set_new(o, "format", discover_jstr(det, "format"));
	return o;
}

/* One /api/ps model, kept: name, model, size, size_vram, expires_at. */
static json_t *ps_entry(const json_t *m)
{
	json_t *o = json_object();

	json_object_set_new(o, "name", discover_jstr(m, "name"));
	json_object_set_new(o, "model", discover_jstr(m, "model"));
	json_object_set_new(o, "size", jint(m, "size"));
	json_object_set_new(o, "size_vram", jint(m, "size_vram"));
	json_object_set_new(o, "expires_at", discover_jstr(m, "expires_at"));
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

/* A request is over: note what it said, start what follows from it. */
static void req_done(struct discover *d, struct req *r, CURLcode rc)
{
	struct backend *b = r->b;
	long status = 0;
	json_t *j;

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
	discover_req_free(d, r);
	if (--b->pending == 0)
		discover_backend_done(d, b);
}

/* A request is over (curlev took it out of the multi): read it, and end the round
 * when nothing is left. */
void discover_http_done(void *arg, CURL *easy, CURLcode rc)
{
	struct discover *d = arg;
	void *p = NULL;

	curl_easy_getinfo(easy, CURLINFO_PRIVATE, &p);
	if (p != NULL)
		req_done(d, p, rc);
	if (d->busy && d->backends_pending == 0)
		discover_round_end(d);   /* may free d */
}
