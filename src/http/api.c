/*
 * api: the REST routes of mloffloadd. One generic evhttp callback matches the path
 * against a table of route templates, checks the method (405 with Allow), caps the
 * body and the query, times the request for /metrics and calls the handler. Handlers
 * read state and answer; the only one that changes state is POST /models/scan, which
 * answers when the scan is stored (daemon_scan).
 */
#include "api.h"
#include "api_int.h"
#include "api_ui.h"
#include "config.h"
#include "device.h"
#include "discover.h"
#include "guard.h"
#include "httpconn.h"
#include "metrics.h"
#include "notify.h"
#include "proxy.h"
#include "registry.h"
#include "reply.h"
#include "reqcheck.h"
#include "scheduler.h"
#include "util.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <sys/queue.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define MAX_ID REQCHECK_MAX_ID

typedef void (*handler)(struct api *a, struct evhttp_request *req, const char *arg);

static void h_root(struct api *a, struct evhttp_request *req, const char *arg);
static void h_health(struct api *a, struct evhttp_request *req, const char *arg);
static void h_backends(struct api *a, struct evhttp_request *req, const char *arg);
static void h_models(struct api *a, struct evhttp_request *req, const char *arg);
static void h_model(struct api *a, struct evhttp_request *req, const char *arg);
static void h_scan(struct api *a, struct evhttp_request *req, const char *arg);
static void h_status(struct api *a, struct evhttp_request *req, const char *arg);
static void h_vram(struct api *a, struct evhttp_request *req, const char *arg);
static void h_queue(struct api *a, struct evhttp_request *req, const char *arg);
static void h_metrics(struct api *a, struct evhttp_request *req, const char *arg);
static void h_load(struct api *a, struct evhttp_request *req, const char *arg);
static void h_unload(struct api *a, struct evhttp_request *req, const char *arg);
static void h_switch(struct api *a, struct evhttp_request *req, const char *arg);
static void h_events(struct api *a, struct evhttp_request *req, const char *arg);
static void h_v1_models(struct api *a, struct evhttp_request *req, const char *arg);
static void h_v1_forward(struct api *a, struct evhttp_request *req, const char *arg);

/* in the order of reqcheck_routes; the routes forwarded to a model (after /v1/models) go
 * to h_v1_forward: src/http/proxy_route.c has their table */
static const handler handlers[REQCHECK_N_ROUTES] = {
	h_root, h_health, h_backends, h_models, h_scan, h_model, h_status, h_vram, api_budget_route,
	h_queue, h_metrics, h_load, h_unload, h_switch, h_events, h_v1_models, h_v1_forward,
	h_v1_forward, h_v1_forward, h_v1_forward, h_v1_forward, h_v1_forward, h_v1_forward,
	h_v1_forward, h_v1_forward, h_v1_forward, h_v1_forward, h_v1_forward, h_v1_forward,
	api_ui_redirect, api_ui_static, api_ui_logs
};
static const char *route_names[REQCHECK_N_ROUTES];

int api_query_param(struct evhttp_request *req, const char *key, char *out, size_t len)
{
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
	const char *q = evhttp_uri_get_query(u);
	if (q == NULL)
		return 0;
	struct evkeyvalq kv;
	TAILQ_INIT(&kv);
	if (evhttp_parse_query_str(q, &kv) < 0)
		return -1;
	const char *v = evhttp_find_header(&kv, key);
	int rc = 0;
	if (v != NULL) {
		rc = strlen(v) < len ? 1 : -1;
		if (rc == 1)
			snprintf(out, len, "%s", v);
	}
	evhttp_clear_headers(&kv);
	return rc;
}

static json_t *device_json(const struct device_info *di, int detail)
{
	json_t *o = json_pack("{s:s,s:s,s:s,s:b,s:I,s:I,s:I}", "id", di->id, "kind", di->kind,
	    "name", di->name, "ok", di->ok, "total_bytes", (json_int_t)di->now.total,
	    "used_bytes", (json_int_t)di->now.used, "free_bytes", (json_int_t)di->now.free);
	if (!di->ok)
		json_object_set_new(o, "error", json_string(di->error));
	if (!detail)
		return o;
	json_object_set_new(o, "uuid", json_string(di->uuid));
	json_object_set_new(o, "temperature_c", di->now.temp_c >= 0 ?
	    json_integer(di->now.temp_c) : json_null());
	json_object_set_new(o, "utilization_pct", di->now.util_pct >= 0 ?
	    json_integer(di->now.util_pct) : json_null());
	json_t *procs = json_array();
	for (size_t i = 0; i < di->n_procs; i++)
		json_array_append_new(procs, json_pack("{s:I,s:I}", "pid",
		    (json_int_t)di->procs[i].pid, "used_bytes", (json_int_t)di->procs[i].used));
	json_object_set_new(o, "processes", procs);
	return o;
}

static void h_root(struct api *a, struct evhttp_request *req, const char *arg)
{
	json_t *r = json_array();
	for (size_t i = 0; i < REQCHECK_N_ROUTES; i++) {
		char line[96];
		snprintf(line, sizeof line, "%s %s", reqcheck_method(reqcheck_routes[i].methods),
		    reqcheck_routes[i].name);
		json_array_append_new(r, json_string(line));
	}
	reply_json(req, 200, json_pack("{s:s,s:s,s:o}", "name", "mloffloadd", "version",
	    MLO_VERSION, "routes", r));
}

static int models_path_ok(const struct api *a)
{
	for (size_t i = 0; i < a->env.cfg->n_models_dirs; i++) {
		struct stat st;
		if (stat(a->env.cfg->models_dirs[i], &st) < 0 || !S_ISDIR(st.st_mode))
			return 0;
	}
	return 1;
}

/* The monitor works when it reads every device it knows (a GPU whose readings fail
 * is a monitoring failure, not just a device state). */
static int monitor_ok(const struct api *a)
{
	if (!devmon_healthy(a->env.dev))
		return 0;
	for (size_t i = 0; i < devmon_count(a->env.dev); i++)
		if (!devmon_get(a->env.dev, i)->ok)
			return 0;
	return 1;
}

/* Appends "; SERVICE: WHY" (no "; " first) to buf. */
static void add_reason(char *buf, size_t len, const char *service, const char *why)
{
	size_t n = strlen(buf);
	snprintf(buf + n, len - n, "%s%s: %s", n > 0 ? "; " : "", service, why);
}

/* healthy: 200. degraded: 503, with "reason" naming each failing service and why; a
 * registry that answers but cannot write (a full disk) is degraded too: nothing the
 * daemon does is recorded. */
static void h_health(struct api *a, struct evhttp_request *req, const char *arg)
{
	const char *werr = registry_write_error(a->env.reg);
	int answers = registry_healthy(a->env.reg), mp = models_path_ok(a), vm = monitor_ok(a);
	int db = answers && werr == NULL, ok = db && mp && vm;
	json_t *j = json_pack("{s:s,s:{s:b,s:b,s:b}}", "status", ok ? "healthy" : "degraded",
	    "services", "registry_db", db, "models_path", mp, "vram_monitor", vm);
	if (!ok) {
		char why[768] = "";
		if (!db)
			add_reason(why, sizeof why, "registry_db", answers ? werr :
			    "the database does not answer");
		if (!mp)
			add_reason(why, sizeof why, "models_path", "a models folder is missing");
		if (!vm)
			add_reason(why, sizeof why, "vram_monitor", "a device cannot be read");
		json_object_set_new(j, "reason", json_string(why));
	}
	reply_json(req, ok ? 200 : 503, j);
}

static void h_backends(struct api *a, struct evhttp_request *req, const char *arg)
{
	reply_json(req, 200, json_pack("{s:o}", "backends", discover_backends(a->env.disc)));
}

/* The registry's part is serialized once per scan (daemon_refresh); Ollama's, which
 * changes between scans, is added per request. */
static void h_models(struct api *a, struct evhttp_request *req, const char *arg)
{
	struct evbuffer *b = evbuffer_new();
	static const char open[] = "{\"models\":[";
	evbuffer_add(b, open, sizeof open - 1);
	if (a->env.view->models_json != NULL)
		evbuffer_add(b, a->env.view->models_json, strlen(a->env.view->models_json));
	json_t *o = discover_ollama_models(a->env.disc), *v;
	size_t i;
	json_array_foreach(o, i, v) {
		char *s = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
		if (s == NULL)
			continue;
		if (evbuffer_get_length(b) > sizeof open - 1)
			evbuffer_add(b, ",", 1);
		evbuffer_add(b, s, strlen(s));
		free(s);
	}
	json_decref(o);
	evbuffer_add(b, "]}\n", 3);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	    "application/json");
	evhttp_send_reply(req, 200, NULL, b);
	evbuffer_free(b);
}

/* The registry's model id, or an Ollama model "ollama:NAME"; new reference or NULL. */
static json_t *find_model(struct api *a, const char *id)
{
	json_t *m = registry_model(a->env.reg, id);
	if (m != NULL || strncmp(id, "ollama:", 7) != 0)
		return m;
	json_t *all = discover_ollama_models(a->env.disc), *v;
	size_t i;
	json_array_foreach(all, i, v) {
		if (strcmp(json_string_value(json_object_get(v, "id")), id) == 0) {
			m = json_incref(v);
			break;
		}
	}
	json_decref(all);
	return m;
}

static void h_model(struct api *a, struct evhttp_request *req, const char *arg)
{
	if (*arg == '\0' || strlen(arg) > MAX_ID) {
		reply_error(req, 400, "bad_request", "a model id is needed: /models/{id}");
		return;
	}
	json_t *m = find_model(a, arg);
	if (m == NULL) {
		reply_error(req, 404, "model_not_found", "no model with id '%s' (GET /models "
		    "lists them)", arg);
		return;
	}
	json_t *rt = sched_model_json(a->env.sched, arg), *last = registry_last_load(a->env.reg, arg);
	if (rt != NULL)
		json_object_set(m, "state", json_object_get(rt, "state"));
	json_object_set_new(m, "runtime", rt ? rt : json_null());
	json_object_set_new(m, "measured", last ? last : json_null());
	reply_json(req, 200, m);
}

static void h_scan(struct api *a, struct evhttp_request *req, const char *arg)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	if (len > 0) {
		json_error_t je;
		char *body = xmalloc(len + 1);
		evbuffer_copyout(in, body, len);
		body[len] = '\0';
		json_t *j = json_loadb(body, len, 0, &je);
		free(body);
		if (j == NULL || !json_is_object(j) || json_object_size(j) != 0) {
			if (j == NULL)
				reply_error(req, 400, "invalid_json", "body is not JSON: %s (line %d, "
				    "column %d)", je.text, je.line, je.column);
			else
				reply_error(req, 400, "bad_request", "POST /models/scan takes no "
				    "options: send no body or {}");
			json_decref(j);
			return;
		}
		json_decref(j);
	}
	if (a->env.scan(a->env.scan_arg, req) < 0) {
		reply_retry_after(req);
		reply_error(req, 503, "busy", "too many scan requests are waiting");
	}
}

static void h_status(struct api *a, struct evhttp_request *req, const char *arg)
{
	json_t *devs = json_array();
	for (size_t i = 0; i < devmon_count(a->env.dev); i++)
		json_array_append_new(devs, device_json(devmon_get(a->env.dev, i), 0));
	json_t *q = sched_queue_json(a->env.sched);
	json_int_t depth = json_integer_value(json_object_get(q, "depth"));
	json_decref(q);
	reply_json(req, 200, json_pack("{s:s,s:I,s:o,s:o,s:o,s:I,s:O,s:O,s:b,s:s,s:o}",
	    "version", MLO_VERSION, "uptime_s", (json_int_t)((util_mono_ms() -
	    a->env.started_ms) / 1000), "devices", devs, "accelerators",
	    sched_devices_json(a->env.sched), "loaded", sched_loaded_json(a->env.sched),
	    "queue_depth", depth, "models", a->env.view->model_counts, "last_scan",
	    a->env.view->last_scan ? a->env.view->last_scan : json_null(), "scanning",
	    a->env.view->scanning, "nvml", devmon_nvml_status(a->env.dev), "notify",
	    a->env.notify ? notify_stats_json(a->env.notify) : json_null()));
}

static void h_vram(struct api *a, struct evhttp_request *req, const char *arg)
{
	char hv[16];
	long long hmax = 0;
	int q = api_query_param(req, "history", hv, sizeof hv);
	if (q < 0 || (q == 1 && util_parse_int(hv, 0, 100000, &hmax) < 0)) {
		reply_error(req, 400, "bad_request", "history: a number of samples, 0..100000");
		return;
	}
	json_t *devs = json_array();
	struct device_sample *hs = hmax > 0 ? xcalloc((size_t)hmax, sizeof *hs) : NULL;
	for (size_t i = 0; i < devmon_count(a->env.dev); i++) {
		json_t *o = device_json(devmon_get(a->env.dev, i), 1);
		if (hmax > 0) {
			size_t n = devmon_history(a->env.dev, i, hs, (size_t)hmax);
			json_t *h = json_array();
			for (size_t k = 0; k < n; k++)
				json_array_append_new(h, json_pack("{s:I,s:I,s:I}", "t_ms",
				    (json_int_t)hs[k].t_ms, "used_bytes", (json_int_t)hs[k].used,
				    "free_bytes", (json_int_t)hs[k].free));
			json_object_set_new(o, "history", h);
		}
		json_array_append_new(devs, o);
	}
	free(hs);
	reply_json(req, 200, json_pack("{s:o,s:o,s:s,s:I}", "devices", devs, "accelerators",
	    sched_devices_json(a->env.sched), "nvml", devmon_nvml_status(a->env.dev),
	    "sample_interval_ms", (json_int_t)a->env.cfg->sample_interval_ms));
}

static void h_queue(struct api *a, struct evhttp_request *req, const char *arg)
{
	json_t *q = sched_queue_json(a->env.sched);
	json_object_set_new(q, "requests", a->env.proxy ? proxy_queue_json(a->env.proxy) : json_array());
	reply_json(req, 200, q);
}

/* The JSON object body of req (new), or NULL after answering 400. */
static json_t *body_object(struct evhttp_request *req)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	const char *code = NULL;
	char msg[512];
	json_t *j = reqcheck_body_object((const char *)evbuffer_pullup(in, -1),
	    evbuffer_get_length(in), &code, msg, sizeof msg);
	if (j == NULL)
		reply_error(req, 400, code, "%s", msg);
	return j;
}

/* Reads the load options of body into o. Returns 0, or -1 after answering 400. */
static int load_opts(struct evhttp_request *req, json_t *body, struct sched_opts *o)
{
	char msg[512];
	if (reqcheck_load_opts(body, o, msg, sizeof msg) == 0)
		return 0;
	reply_error(req, 400, "bad_request", "%s", msg);
	return -1;
}

static const char *string_field(struct evhttp_request *req, json_t *body, const char *k)
{
	char msg[128];
	const char *s = reqcheck_id_field(body, k, msg, sizeof msg);
	if (s == NULL)
		reply_error(req, 400, "bad_request", "%s", msg);
	return s;
}

/* The scheduler's outcome of a load, unload or switch as the answer to req (arg). */
static void reply_outcome(void *arg, const struct sched_outcome *o)
{
	struct evhttp_request *req = arg;
	if (o->retry_after_s > 0)
		reply_retry_after(req); /* the one rule (reply.h), whatever the scheduler's hint */
	if (o->status >= 400)
		reply_error(req, o->status, o->code, "%s", o->message);
	else
		reply_json(req, o->status, json_incref(o->body));
}

static struct sched_reply reply_to(struct evhttp_request *req)
{
	return (struct sched_reply){ reply_outcome, req };
}

static void h_load(struct api *a, struct evhttp_request *req, const char *arg)
{
	json_t *b = body_object(req);
	struct sched_opts o;
	const char *id;
	if (b != NULL && (id = string_field(req, b, "model")) != NULL && load_opts(req, b, &o) == 0)
		sched_load(a->env.sched, id, &o, reply_to(req));
	json_decref(b);
}

static void h_unload(struct api *a, struct evhttp_request *req, const char *arg)
{
	json_t *b = body_object(req);
	const char *id;
	if (b != NULL && (id = string_field(req, b, "model")) != NULL)
		sched_unload(a->env.sched, id, reply_to(req));
	json_decref(b);
}

static void h_switch(struct api *a, struct evhttp_request *req, const char *arg)
{
	json_t *b = body_object(req);
	struct sched_opts o;
	const char *from, *to;
	if (b != NULL && (from = string_field(req, b, "from")) != NULL &&
	    (to = string_field(req, b, "to")) != NULL && load_opts(req, b, &o) == 0)
		sched_switch(a->env.sched, from, to, &o, reply_to(req));
	json_decref(b);
}

static void h_events(struct api *a, struct evhttp_request *req, const char *arg)
{
	notify_sse_attach(a->env.notify, req);
}

static void h_v1_models(struct api *a, struct evhttp_request *req, const char *arg)
{
	proxy_models(a->env.proxy, req);
}

static void h_v1_forward(struct api *a, struct evhttp_request *req, const char *arg)
{
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
	proxy_forward(a->env.proxy, req, u ? evhttp_uri_get_path(u) : "");
}

static void h_metrics(struct api *a, struct evhttp_request *req, const char *arg)
{
	struct evbuffer *b = evbuffer_new();
	struct metrics_env me = { a->env.dev, a->env.sched, a->env.notify, a->env.proxy,
		a->env.view, a->env.started_ms };
	metrics_render(a->metrics, &me, b);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	    "text/plain; version=0.0.4");
	evhttp_send_reply(req, 200, NULL, b);
	evbuffer_free(b);
}

static void dispatch(struct evhttp_request *req, void *arg)
{
	struct api *a = arg;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
	const char *raw = u ? evhttp_uri_get_path(u) : NULL;
	const char *q = u ? evhttp_uri_get_query(u) : NULL;
	size_t r = REQCHECK_N_ROUTES;
	int status = 0;
	const char *why = NULL, *sub = "";
	char *path = NULL;
	if (reqcheck_path(raw, &path, &why) < 0 || reqcheck_query(q, &why) < 0) {
		reply_error(req, 400, "bad_request", "%s", why);
		status = 400;
		goto out;
	}
	r = reqcheck_route(path, &sub);
	/* Host, Origin and key before anything else (a preflight is answered here) */
	struct guard_verdict gv;
	if ((status = guard_request(a->env.guard, req, r < REQCHECK_N_ROUTES ?
	    reqcheck_routes[r].methods : 0, r < REQCHECK_N_ROUTES &&
	    (handlers[r] == h_health || handlers[r] == api_ui_static ||
	    handlers[r] == api_ui_redirect), &gv)) != 0) {
		if (status == 204)
			reply_empty(req, 204);
		else
			reply_error(req, status, gv.code, "%s", gv.message);
		goto out;
	}
	if (r == REQCHECK_N_ROUTES) {
		reply_error(req, 404, "not_found", "no route %s (GET / lists them)", path);
		status = 404;
		goto out;
	}
	int m = evhttp_request_get_command(req);
	const struct reqcheck_route *rt = &reqcheck_routes[r];
	if (m == EVHTTP_REQ_HEAD && (rt->methods & EVHTTP_REQ_GET))
		m = EVHTTP_REQ_GET; /* evhttp sends the headers of the GET answer, no body */
	if (!(m & rt->methods)) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
		    reqcheck_method(rt->methods));
		reply_error(req, 405, "method_not_allowed", "%s %s: use %s", reqcheck_method(m),
		    rt->name, reqcheck_method(rt->methods));
		status = 405;
		goto out;
	}
	if (evbuffer_get_length(evhttp_request_get_input_buffer(req)) > a->env.cfg->max_body) {
		reply_error(req, 413, "too_large", "request body over %llu bytes",
		    (unsigned long long)a->env.cfg->max_body);
		status = 413;
		goto out;
	}
	handlers[r](a, req, sub);
	status = evhttp_request_get_response_code(req);
out:
	free(path);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	metrics_observe(a->metrics, r, status ? status : 200, (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
}

/* libevent could not parse the request (httpconn.c): JSON instead of its HTML page. */
static void conn_error(struct evhttp_request *req, int status)
{
	evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
	if (status == 413)
		reply_error(req, 413, "too_large", "request head or body too large");
	else if (status == 417)
		reply_error(req, 417, "expectation_failed", "only \"Expect: 100-continue\" is "
		    "understood");
	else if (status == 501)
		reply_error(req, 501, "method_not_implemented", "unknown HTTP method");
	else
		reply_error(req, status, "bad_request", "malformed HTTP request");
}

void api_conn_opts(struct api *a)
{
	const struct config *c = a->env.cfg;
	struct httpconn_opts o = { c->max_connections ? c->max_connections :
	    httpconn_default_max(512), c->header_timeout_s, c->body_timeout_s };
	if (a->conn == NULL)
		a->conn = httpconn_new(a->env.base, a->env.http, &o, conn_error);
	else
		httpconn_set_opts(a->conn, &o);
}

struct api *api_new(const struct api_env *env)
{
	struct api *a = xcalloc(1, sizeof *a);
	a->env = *env;
	for (size_t i = 0; i < REQCHECK_N_ROUTES; i++)
		route_names[i] = reqcheck_routes[i].name;
	a->metrics = metrics_new(route_names, REQCHECK_N_ROUTES);
	if ((a->budget = api_budget_new(a)) == NULL) {
		api_free(a);
		return NULL;
	}
	/* evhttp refuses bodies past this itself (413); between max_body and it, we answer */
	evhttp_set_max_body_size(a->env.http, (ev_ssize_t)(a->env.cfg->max_body * 4));
	evhttp_set_max_headers_size(a->env.http, 16384);
	/* every method evhttp knows reaches dispatch (405 names it); others: conn_error */
	evhttp_set_allowed_methods(a->env.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	    EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_HEAD | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH |
	    EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT);
	evhttp_set_timeout(a->env.http, 60); /* PROXY_IDLE_TIMEOUT_S */
	evhttp_set_gencb(a->env.http, dispatch, a);
	api_conn_opts(a);
	if (a->conn == NULL) {
		api_free(a);
		return NULL;
	}
	return a;
}

void api_free(struct api *a)
{
	if (a == NULL)
		return;
	api_budget_free(a->budget);
	httpconn_free(a->conn);
	metrics_free(a->metrics);
	free(a);
}
