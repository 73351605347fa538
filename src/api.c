/*
 * api: the REST routes of mloffloadd. One generic evhttp callback matches the path
 * against a table of route templates, checks the method (405 with Allow), caps the
 * body and the query, times the request for /metrics and calls the handler. Handlers
 * read state and answer; the only one that changes state is POST /models/scan, which
 * answers when the scan is stored (daemon_scan).
 */
#include "api.h"
#include "api_ui.h"
#include "daemon.h"
#include "device.h"
#include "discover.h"
#include "estimate.h"
#include "gguf.h"
#include "guard.h"
#include "httpconn.h"
#include "metrics.h"
#include "model.h"
#include "plan.h"
#include "notify.h"
#include "proxy.h"
#include "proxy_route.h"
#include "registry.h"
#include "reqcheck.h"
#include "scheduler.h"
#include "scan.h"
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

typedef void (*handler)(struct daemon *d, struct evhttp_request *req, const char *arg);

static void h_root(struct daemon *d, struct evhttp_request *req, const char *arg);
static void h_health(struct daemon *d, struct evhttp_request *req, const char *arg);
static void h_backends(struct daemon *d, struct evhttp_request *req, const char *arg);
static void h_models(struct daemon *d, struct evhttp_request *req, const char *arg);
static void h_model(struct daemon *d, struct evhttp_request *req, const char *arg);
static void h_scan(struct daemon *d, struct evhttp_request *req, const char *arg);
static void h_status(struct daemon *d, struct evhttp_request *req, const char *arg);
static void h_vram(struct daemon *d, struct evhttp_request *req, const char *arg);
static void h_budget(struct daemon *d, struct evhttp_request *req, const char *arg);
static void h_queue(struct daemon *d, struct evhttp_request *req, const char *arg);
static void h_metrics(struct daemon *d, struct evhttp_request *req, const char *arg);
static void h_load(struct daemon *d, struct evhttp_request *req, const char *arg);
static void h_unload(struct daemon *d, struct evhttp_request *req, const char *arg);
static void h_switch(struct daemon *d, struct evhttp_request *req, const char *arg);
static void h_events(struct daemon *d, struct evhttp_request *req, const char *arg);
static void h_v1_models(struct daemon *d, struct evhttp_request *req, const char *arg);
static void h_v1_forward(struct daemon *d, struct evhttp_request *req, const char *arg);

/* in the order of reqcheck_routes; the routes forwarded to a model (after /v1/models) go
 * to h_v1_forward: src/proxy_route.c has their table */
static const handler handlers[REQCHECK_N_ROUTES] = {
	h_root, h_health, h_backends, h_models, h_scan, h_model, h_status, h_vram, h_budget,
	h_queue, h_metrics, h_load, h_unload, h_switch, h_events, h_v1_models, h_v1_forward,
	h_v1_forward, h_v1_forward, h_v1_forward, h_v1_forward, h_v1_forward, h_v1_forward,
	h_v1_forward, h_v1_forward, h_v1_forward, h_v1_forward, h_v1_forward, h_v1_forward,
	api_ui_redirect, api_ui_static, api_ui_logs
};
static const char *route_names[REQCHECK_N_ROUTES];

void api_reply_json(struct evhttp_request *req, int status, json_t *j)
{
	static const char fallback[] = "{\"error\":{\"code\":\"internal\",\"message\":"
	    "\"the answer could not be encoded\"}}";
	char *s = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(j);
	if (s == NULL) {
		s = xstrdup(fallback);
		status = 500;
	}
	struct evbuffer *b = evbuffer_new();
	if (s != NULL) {
		evbuffer_add(b, s, strlen(s));
		evbuffer_add(b, "\n", 1);
		free(s);
	}
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	    "application/json");
	evhttp_send_reply(req, status, NULL, b);
	evbuffer_free(b);
}

void api_reply_error(struct evhttp_request *req, int status, const char *code,
    const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	/* OpenAI's shape, or Anthropic's on its routes: their clients read our errors */
	api_reply_json(req, status, proxy_route_error_json(req, status, code, msg));
}

/* Reads the query parameter key into out (decoded). 1 found, 0 absent, -1 too long. */
static int query_param(struct evhttp_request *req, const char *key, char *out, size_t len)
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

static void h_root(struct daemon *d, struct evhttp_request *req, const char *arg)
{
	json_t *r = json_array();
	for (size_t i = 0; i < REQCHECK_N_ROUTES; i++) {
		char line[96];
		snprintf(line, sizeof line, "%s %s", reqcheck_method(reqcheck_routes[i].methods),
		    reqcheck_routes[i].name);
		json_array_append_new(r, json_string(line));
	}
	api_reply_json(req, 200, json_pack("{s:s,s:s,s:o}", "name", "mloffloadd", "version",
	    MLO_VERSION, "routes", r));
}

static int models_path_ok(const struct daemon *d)
{
	for (size_t i = 0; i < d->cfg.n_models_dirs; i++) {
		struct stat st;
		if (stat(d->cfg.models_dirs[i], &st) < 0 || !S_ISDIR(st.st_mode))
			return 0;
	}
	return 1;
}

/* The monitor works when it reads every device it knows (a GPU whose readings fail
 * is a monitoring failure, not just a device state). */
static int monitor_ok(const struct daemon *d)
{
	if (!devmon_healthy(d->dev))
		return 0;
	for (size_t i = 0; i < devmon_count(d->dev); i++)
		if (!devmon_get(d->dev, i)->ok)
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
static void h_health(struct daemon *d, struct evhttp_request *req, const char *arg)
{
	const char *werr = registry_write_error(d->reg);
	int answers = registry_healthy(d->reg), mp = models_path_ok(d), vm = monitor_ok(d);
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
	api_reply_json(req, ok ? 200 : 503, j);
}

static void h_backends(struct daemon *d, struct evhttp_request *req, const char *arg)
{
	api_reply_json(req, 200, json_pack("{s:o}", "backends", discover_backends(d->disc)));
}

/* The registry's part is serialized once per scan (daemon_refresh); Ollama's, which
 * changes between scans, is added per request. */
static void h_models(struct daemon *d, struct evhttp_request *req, const char *arg)
{
	struct evbuffer *b = evbuffer_new();
	static const char open[] = "{\"models\":[";
	evbuffer_add(b, open, sizeof open - 1);
	if (d->models_json != NULL)
		evbuffer_add(b, d->models_json, strlen(d->models_json));
	json_t *o = discover_ollama_models(d->disc), *v;
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
static json_t *find_model(struct daemon *d, const char *id)
{
	json_t *m = registry_model(d->reg, id);
	if (m != NULL || strncmp(id, "ollama:", 7) != 0)
		return m;
	json_t *all = discover_ollama_models(d->disc), *v;
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

static void h_model(struct daemon *d, struct evhttp_request *req, const char *arg)
{
	if (*arg == '\0' || strlen(arg) > MAX_ID) {
		api_reply_error(req, 400, "bad_request", "a model id is needed: /models/{id}");
		return;
	}
	json_t *m = find_model(d, arg);
	if (m == NULL) {
		api_reply_error(req, 404, "model_not_found", "no model with id '%s' (GET /models "
		    "lists them)", arg);
		return;
	}
	json_t *rt = sched_model_json(d->sched, arg), *last = registry_last_load(d->reg, arg);
	if (rt != NULL)
		json_object_set(m, "state", json_object_get(rt, "state"));
	json_object_set_new(m, "runtime", rt ? rt : json_null());
	json_object_set_new(m, "measured", last ? last : json_null());
	api_reply_json(req, 200, m);
}

static void h_scan(struct daemon *d, struct evhttp_request *req, const char *arg)
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
				api_reply_error(req, 400, "invalid_json", "body is not JSON: %s (line %d, "
				    "column %d)", je.text, je.line, je.column);
			else
				api_reply_error(req, 400, "bad_request", "POST /models/scan takes no "
				    "options: send no body or {}");
			json_decref(j);
			return;
		}
		json_decref(j);
	}
	if (d->n_scan_waiters >= DAEMON_MAX_SCAN_WAITERS ||
	    d->n_next_waiters >= DAEMON_MAX_SCAN_WAITERS) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
		api_reply_error(req, 503, "busy", "too many scan requests are waiting");
		return;
	}
	daemon_scan(d, req);
}

static void h_status(struct daemon *d, struct evhttp_request *req, const char *arg)
{
	json_t *devs = json_array();
	for (size_t i = 0; i < devmon_count(d->dev); i++)
		json_array_append_new(devs, device_json(devmon_get(d->dev, i), 0));
	json_t *q = sched_queue_json(d->sched);
	json_int_t depth = json_integer_value(json_object_get(q, "depth"));
	json_decref(q);
	api_reply_json(req, 200, json_pack("{s:s,s:I,s:o,s:o,s:I,s:O,s:O,s:b,s:s,s:o}", "version",
	    MLO_VERSION, "uptime_s", (json_int_t)((util_mono_ms() - d->started_ms) / 1000),
	    "devices", devs, "loaded", sched_loaded_json(d->sched), "queue_depth", depth,
	    "models", d->model_counts,
	    "last_scan", d->last_scan ? d->last_scan : json_null(), "scanning", d->scanning,
	    "nvml", devmon_nvml_status(d->dev), "notify", d->notify ?
	    notify_stats_json(d->notify) : json_null()));
}

static void h_vram(struct daemon *d, struct evhttp_request *req, const char *arg)
{
	char hv[16];
	long long hmax = 0;
	int q = query_param(req, "history", hv, sizeof hv);
	if (q < 0 || (q == 1 && util_parse_int(hv, 0, 100000, &hmax) < 0)) {
		api_reply_error(req, 400, "bad_request", "history: a number of samples, 0..100000");
		return;
	}
	json_t *devs = json_array();
	struct device_sample *hs = hmax > 0 ? xcalloc((size_t)hmax, sizeof *hs) : NULL;
	for (size_t i = 0; i < devmon_count(d->dev); i++) {
		json_t *o = device_json(devmon_get(d->dev, i), 1);
		if (hmax > 0) {
			size_t n = devmon_history(d->dev, i, hs, (size_t)hmax);
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
	api_reply_json(req, 200, json_pack("{s:o,s:s,s:I}", "devices", devs, "nvml",
	    devmon_nvml_status(d->dev), "sample_interval_ms",
	    (json_int_t)d->cfg.sample_interval_ms));
}

/* The first accelerator with its live budget (free less the reserve), or NULL. */
static const struct device_info *first_gpu(struct daemon *d, uint64_t *budget)
{
	for (size_t i = 0; i < devmon_count(d->dev); i++) {
		const struct device_info *di = devmon_get(d->dev, i);
		if (strcmp(di->kind, "cpu") != 0 && di->ok) {
			*budget = di->now.free > d->cfg.reserve ? di->now.free - d->cfg.reserve : 0;
			return di;
		}
	}
	return NULL;
}

static json_t *usage_json(const char *name, const struct plan_usage *u)
{
	return json_pack("{s:s,s:I,s:I,s:I,s:I,s:I}", "name", name, "model_bytes",
	    (json_int_t)u->model, "kv_bytes", (json_int_t)u->kv, "compute_bytes",
	    (json_int_t)u->compute, "repack_bytes", (json_int_t)u->repack, "total_bytes",
	    (json_int_t)u->total);
}

/* What holds memory on the device and could make room: this daemon's idle models (in
 * the order a load would evict them), other processes (NVML), Ollama's models. */
static json_t *evictable(struct daemon *d, const struct device_info *gpu)
{
	json_t *a = sched_evictable_json(d->sched);
	for (size_t i = 0; gpu != NULL && i < gpu->n_procs; i++)
		json_array_append_new(a, json_pack("{s:s,s:I,s:I}", "kind", "process", "pid",
		    (json_int_t)gpu->procs[i].pid, "bytes", (json_int_t)gpu->procs[i].used));
	json_t *om = discover_ollama_models(d->disc), *v;
	size_t i;
	json_array_foreach(om, i, v) {
		if (json_is_true(json_object_get(v, "loaded")))
			json_array_append_new(a, json_pack("{s:s,s:O,s:O}", "kind", "ollama", "model",
			    json_object_get(v, "id"), "bytes", json_object_get(v, "vram_bytes")));
	}
	json_decref(om);
	return a;
}

static void h_budget(struct daemon *d, struct evhttp_request *req, const char *arg)
{
	char id[MAX_ID + 1], cs[16];
	long long ctx = 0;
	int qm = query_param(req, "model", id, sizeof id), qc = query_param(req, "ctx", cs,
	    sizeof cs);
	if (qm <= 0) {
		api_reply_error(req, 400, "bad_request", qm < 0 ? "model: id too long" :
		    "model=ID is required (e.g. /vram/budget?model=ID&ctx=8192)");
		return;
	}
	if (qc < 0 || (qc == 1 && util_parse_int(cs, 1, MODEL_MAX_CTX, &ctx) < 0)) {
		api_reply_error(req, 400, "bad_request", "ctx: a context size in 1..16777216");
		return;
	}
	json_t *m = registry_model(d->reg, id);
	if (m == NULL) {
		api_reply_error(req, 404, "model_not_found", "no local model with id '%s'", id);
		return;
	}
	const char *path = json_string_value(json_object_get(m, "path"));
	const char *mm = json_string_value(json_object_get(m, "mmproj"));
	char err[GGUF_ERR_LEN + 4096];
	struct gguf *g;
	struct est_opts eo;
	est_defaults(&eo);
	eo.n_ctx = (uint32_t)ctx; /* 0: the default context, as a load gets (model.h) */
	struct est e;
	/* a load takes the linked projector along (the scheduler's plan) */
	if (path == NULL || (mm != NULL && model_mmproj(mm, &eo, NULL, err, sizeof err) < 0) ||
	    model_estimate(path, &eo, &g, &e, err, sizeof err) < 0) {
		api_reply_error(req, 409, "model_unreadable", "%s", path ? err : "model has no path");
		json_decref(m);
		return;
	}
	/* the scheduler's view: what a load now would get, its models and reserve counted */
	char dev_id[160], rpc[128];
	uint64_t total = 0, budget = 0;
	int has_dev = sched_budget(d->sched, dev_id, sizeof dev_id, &total, &budget, rpc,
	    sizeof rpc) == 0;
	const struct device_info *gpu = first_gpu(d, &(uint64_t){ 0 });
	struct plan_device pd;
	memset(&pd, 0, sizeof pd);
	if (has_dev) {
		snprintf(pd.name, sizeof pd.name, "%.63s", dev_id);
		snprintf(pd.rpc, sizeof pd.rpc, "%s", rpc);
		pd.budget = budget;
	}
	struct plan_opts po = { .ngl = -1, .mmproj = mm };
	struct plan p;
	if (plan_make(&e, has_dev ? &pd : NULL, &po, &p, err, sizeof err) < 0) {
		api_reply_error(req, 409, "model_unplannable", "%s: %s", id, err);
		est_free(&e);
		gguf_close(g);
		json_decref(m);
		return;
	}
	/* with the whole device (nothing else on it), would it fit? */
	struct plan full;
	int fits_empty = 0;
	if (has_dev) {
		struct plan_opts fo = { .offload = PLAN_GPU, .ngl = -1, .mmproj = mm };
		uint64_t res = rpc[0] ? 0 : d->cfg.reserve; /* an RPC device keeps no reserve */
		pd.budget = total > res ? total - res : 0;
		if (plan_make(&e, &pd, &fo, &full, err, sizeof err) == 0) {
			fits_empty = full.fits;
			plan_free(&full);
		}
	}
	json_t *args = json_array(), *layers = json_array();
	for (size_t i = 0; i < p.n_args; i++)
		json_array_append_new(args, json_string(p.args[i]));
	for (uint32_t l = 0; l < e.a.n_layer; l++)
		json_array_append_new(layers, json_pack("{s:i,s:I,s:I,s:I}", "layer", (int)l,
		    "weight_bytes", (json_int_t)e.layer[l].weights, "expert_bytes",
		    (json_int_t)e.layer[l].exps, "kv_bytes", (json_int_t)e.layer[l].kv));
	json_t *r = json_pack("{s:s,s:i,s:b}", "model", id, "ctx", (int)e.n_ctx, "fits", p.fits);
	json_object_set_new(r, "device", has_dev ? json_pack("{s:s,s:s,s:I,s:I,s:I,s:I}", "id",
	    dev_id, "name", gpu && !rpc[0] ? gpu->name : "ggml-rpc-server", "total_bytes",
	    (json_int_t)total, "free_bytes", (json_int_t)(gpu && !rpc[0] ? gpu->now.free : total),
	    "reserve_bytes", (json_int_t)d->cfg.reserve, "budget_bytes", (json_int_t)budget) :
	    json_null());
	json_object_set_new(r, "components", json_pack("{s:I,s:I,s:I,s:I,s:o}", "input_bytes",
	    (json_int_t)e.input_bytes, "output_bytes", (json_int_t)e.output_bytes,
	    "weight_bytes", (json_int_t)e.weights_total, "kv_bytes", (json_int_t)e.kv_total,
	    "layers", layers));
	json_object_set_new(r, "plan", json_pack("{s:i,s:i,s:i,s:o,s:[o,o]}", "gpu_layers",
	    p.ngl, "layers", (int)e.a.n_layer + 1, "n_cpu_moe", p.n_cpu_moe, "args", args,
	    "devices", usage_json(has_dev ? pd.name : "none", &p.dev), usage_json("cpu", &p.cpu)));
	json_object_set_new(r, "fully_on_device_if_free", json_boolean(fits_empty));
	json_object_set_new(r, "would_evict", p.fits && p.ngl == (int)e.a.n_layer + 1 ?
	    json_array() : evictable(d, gpu));
	if (p.reason[0] != '\0')
		json_object_set_new(r, "reason", json_string(p.reason));
	plan_free(&p);
	est_free(&e);
	gguf_close(g);
	json_decref(m);
	api_reply_json(req, 200, r);
}

static void h_queue(struct daemon *d, struct evhttp_request *req, const char *arg)
{
	json_t *q = sched_queue_json(d->sched);
	json_object_set_new(q, "requests", d->proxy ? proxy_queue_json(d->proxy) : json_array());
	api_reply_json(req, 200, q);
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
		api_reply_error(req, 400, code, "%s", msg);
	return j;
}

/* Reads the load options of body into o. Returns 0, or -1 after answering 400. */
static int load_opts(struct evhttp_request *req, json_t *body, struct sched_opts *o)
{
	char msg[512];
	if (reqcheck_load_opts(body, o, msg, sizeof msg) == 0)
		return 0;
	api_reply_error(req, 400, "bad_request", "%s", msg);
	return -1;
}

static const char *string_field(struct evhttp_request *req, json_t *body, const char *k)
{
	char msg[128];
	const char *s = reqcheck_id_field(body, k, msg, sizeof msg);
	if (s == NULL)
		api_reply_error(req, 400, "bad_request", "%s", msg);
	return s;
}

/* The scheduler's outcome of a load, unload or switch as the answer to req (arg). */
static void reply_outcome(void *arg, const struct sched_outcome *o)
{
	struct evhttp_request *req = arg;
	if (o->retry_after_s > 0) {
		char ra[16];
		snprintf(ra, sizeof ra, "%d", o->retry_after_s);
		evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", ra);
	}
	if (o->status >= 400)
		api_reply_error(req, o->status, o->code, "%s", o->message);
	else
		api_reply_json(req, o->status, json_incref(o->body));
}

static struct sched_reply reply_to(struct evhttp_request *req)
{
	return (struct sched_reply){ reply_outcome, req };
}

static void h_load(struct daemon *d, struct evhttp_request *req, const char *arg)
{
	json_t *b = body_object(req);
	struct sched_opts o;
	const char *id;
	if (b != NULL && (id = string_field(req, b, "model")) != NULL && load_opts(req, b, &o) == 0)
		sched_load(d->sched, id, &o, reply_to(req));
	json_decref(b);
}

static void h_unload(struct daemon *d, struct evhttp_request *req, const char *arg)
{
	json_t *b = body_object(req);
	const char *id;
	if (b != NULL && (id = string_field(req, b, "model")) != NULL)
		sched_unload(d->sched, id, reply_to(req));
	json_decref(b);
}

static void h_switch(struct daemon *d, struct evhttp_request *req, const char *arg)
{
	json_t *b = body_object(req);
	struct sched_opts o;
	const char *from, *to;
	if (b != NULL && (from = string_field(req, b, "from")) != NULL &&
	    (to = string_field(req, b, "to")) != NULL && load_opts(req, b, &o) == 0)
		sched_switch(d->sched, from, to, &o, reply_to(req));
	json_decref(b);
}

static void h_events(struct daemon *d, struct evhttp_request *req, const char *arg)
{
	notify_sse_attach(d->notify, req);
}

static void h_v1_models(struct daemon *d, struct evhttp_request *req, const char *arg)
{
	proxy_models(d->proxy, req);
}

static void h_v1_forward(struct daemon *d, struct evhttp_request *req, const char *arg)
{
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
	proxy_forward(d->proxy, req, u ? evhttp_uri_get_path(u) : "");
}

static void h_metrics(struct daemon *d, struct evhttp_request *req, const char *arg)
{
	struct evbuffer *b = evbuffer_new();
	metrics_render(d->metrics, d, b);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	    "text/plain; version=0.0.4");
	evhttp_send_reply(req, 200, NULL, b);
	evbuffer_free(b);
}

static void dispatch(struct evhttp_request *req, void *arg)
{
	struct daemon *d = arg;
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
		api_reply_error(req, 400, "bad_request", "%s", why);
		status = 400;
		goto out;
	}
	r = reqcheck_route(path, &sub);
	/* Host, Origin and key before anything else (a preflight is answered there) */
	if ((status = guard_request(d->guard, req, r < REQCHECK_N_ROUTES ?
	    reqcheck_routes[r].methods : 0, r < REQCHECK_N_ROUTES &&
	    (handlers[r] == h_health || handlers[r] == api_ui_static ||
	    handlers[r] == api_ui_redirect))) != 0)
		goto out;
	if (r == REQCHECK_N_ROUTES) {
		api_reply_error(req, 404, "not_found", "no route %s (GET / lists them)", path);
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
		api_reply_error(req, 405, "method_not_allowed", "%s %s: use %s", reqcheck_method(m),
		    rt->name, reqcheck_method(rt->methods));
		status = 405;
		goto out;
	}
	if (evbuffer_get_length(evhttp_request_get_input_buffer(req)) > d->cfg.max_body) {
		api_reply_error(req, 413, "too_large", "request body over %llu bytes",
		    (unsigned long long)d->cfg.max_body);
		status = 413;
		goto out;
	}
	handlers[r](d, req, sub);
	status = evhttp_request_get_response_code(req);
out:
	free(path);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	metrics_observe(d->metrics, r, status ? status : 200, (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
}

/* libevent could not parse the request (httpconn.c): JSON instead of its HTML page. */
static void conn_error(struct evhttp_request *req, int status)
{
	evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
	if (status == 413)
		api_reply_error(req, 413, "too_large", "request head or body too large");
	else if (status == 417)
		api_reply_error(req, 417, "expectation_failed", "only \"Expect: 100-continue\" is "
		    "understood");
	else if (status == 501)
		api_reply_error(req, 501, "method_not_implemented", "unknown HTTP method");
	else
		api_reply_error(req, status, "bad_request", "malformed HTTP request");
}

void api_conn_opts(struct daemon *d)
{
	struct httpconn_opts o = { d->cfg.max_connections ? d->cfg.max_connections :
	    httpconn_default_max(512), d->cfg.header_timeout_s, d->cfg.body_timeout_s };
	if (d->conn == NULL)
		d->conn = httpconn_new(d->base, d->http, &o, conn_error);
	else
		httpconn_set_opts(d->conn, &o);
}

int api_init(struct daemon *d)
{
	for (size_t i = 0; i < REQCHECK_N_ROUTES; i++)
		route_names[i] = reqcheck_routes[i].name;
	d->metrics = metrics_new(route_names, REQCHECK_N_ROUTES);
	/* evhttp refuses bodies past this itself (413); between max_body and it, we answer */
	evhttp_set_max_body_size(d->http, (ev_ssize_t)(d->cfg.max_body * 4));
	evhttp_set_max_headers_size(d->http, 16384);
	/* every method evhttp knows reaches dispatch (405 names it); others: conn_error */
	evhttp_set_allowed_methods(d->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
	    EVHTTP_REQ_DELETE | EVHTTP_REQ_HEAD | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH |
	    EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT);
	evhttp_set_timeout(d->http, 60); /* PROXY_IDLE_TIMEOUT_S */
	evhttp_set_gencb(d->http, dispatch, d);
	api_conn_opts(d);
	return 0;
}
