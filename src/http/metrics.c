/*
 * metrics: Prometheus text exposition (version 0.0.4). Requests are counted per route
 * template, not per raw path, so a client cannot grow the label set.
 */
#include "metrics.h"
#include "proxy.h"
#include "device.h"
#include "notify.h"
#include "registry.h"
#include "scheduler.h"
#include "util.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double buckets[] = { 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
	0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5 };
#define N_BUCKETS (sizeof buckets / sizeof buckets[0])
#define N_CLASSES 5 /* 1xx..5xx */

struct route_stats {
	unsigned long long by_class[N_CLASSES + 1];
	unsigned long long hist[N_BUCKETS];
	unsigned long long count;
	double sum;
};

struct metrics {
	const char *const *names;
	size_t n;
	struct route_stats *r; /* n + 1: the last is "unmatched" */
};

struct metrics *metrics_new(const char *const *names, size_t n_routes)
{
	struct metrics *m = xcalloc(1, sizeof *m);
	m->names = names;
	m->n = n_routes;
	m->r = xcalloc(n_routes + 1, sizeof *m->r);
	return m;
}

void metrics_free(struct metrics *m)
{
	if (m == NULL)
		return;
	free(m->r);
	free(m);
}

void metrics_observe(struct metrics *m, size_t r, int status, double seconds)
{
	if (r > m->n)
		r = m->n;
	struct route_stats *s = &m->r[r];
	int cls = status / 100;
	s->by_class[cls >= 1 && cls <= N_CLASSES ? cls - 1 : N_CLASSES]++;
	for (size_t i = 0; i < N_BUCKETS; i++)
		if (seconds <= buckets[i])
			s->hist[i]++;
	s->count++;
	s->sum += seconds;
}

/* Writes a label value with \, " and newline escaped. */
static void label(struct evbuffer *out, const char *v)
{
	for (const char *p = v; *p; p++) {
		if (*p == '\\' || *p == '"')
			evbuffer_add_printf(out, "\\%c", *p);
		else if (*p == '\n')
			evbuffer_add(out, "\\n", 2);
		else
			evbuffer_add(out, p, 1);
	}
}

static void head(struct evbuffer *out, const char *name, const char *type, const char *help)
{
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void devices(const struct metrics_env *e, struct evbuffer *out)
{
	static const struct { const char *name, *help; } g[] = {
		{ "mloffload_device_memory_total_bytes", "Memory of the device." },
		{ "mloffload_device_memory_used_bytes", "Memory in use on the device." },
		{ "mloffload_device_memory_free_bytes", "Memory free on the device." },
		{ "mloffload_device_temperature_celsius", "Temperature, where known." },
		{ "mloffload_device_utilization_ratio", "Compute utilisation 0..1, where known." },
		{ "mloffload_device_up", "1 when the last reading of the device succeeded." },
	};
	size_t n = devmon_count(e->dev);
	for (size_t k = 0; k < sizeof g / sizeof g[0]; k++) {
		head(out, g[k].name, "gauge", g[k].help);
		for (size_t i = 0; i < n; i++) {
			const struct device_info *di = devmon_get(e->dev, i);
			double v;
			switch (k) {
			case 0: v = (double)di->now.total; break;
			case 1: v = (double)di->now.used; break;
			case 2: v = (double)di->now.free; break;
			case 3: if (di->now.temp_c < 0) continue; v = di->now.temp_c; break;
			case 4: if (di->now.util_pct < 0) continue; v = di->now.util_pct / 100.0; break;
			default: v = di->ok; break;
			}
			evbuffer_add_printf(out, "%s{device=\"", g[k].name);
			label(out, di->id);
			evbuffer_add_printf(out, "\",kind=\"%s\",name=\"", di->kind);
			label(out, di->name);
			evbuffer_add_printf(out, "\"} %.17g\n", v);
		}
	}
}

static void models(const struct metrics_env *e, struct evbuffer *out)
{
	head(out, "mloffload_models", "gauge", "Models in the registry by state.");
	const char *k;
	json_t *v;
	json_object_foreach(e->view->model_counts, k, v)
		evbuffer_add_printf(out, "mloffload_models{state=\"%s\"} %lld\n", k,
		    (long long)json_integer_value(v));
	head(out, "mloffload_models_loaded", "gauge", "This daemon's models by lifecycle state.");
	json_t *lc = sched_state_counts(e->sched);
	json_object_foreach(lc, k, v)
		evbuffer_add_printf(out, "mloffload_models_loaded{state=\"%s\"} %lld\n", k,
		    (long long)json_integer_value(v));
	json_decref(lc);
	json_t *ns = notify_stats_json(e->notify);
	head(out, "mloffload_events_total", "counter", "Events emitted.");
	evbuffer_add_printf(out, "mloffload_events_total %lld\n",
	    (long long)json_integer_value(json_object_get(ns, "events")));
	head(out, "mloffload_webhook_deliveries_total", "counter", "Webhook posts by result.");
	size_t hi;
	json_t *h;
	json_array_foreach(json_object_get(ns, "hooks"), hi, h) {
		static const char *res[] = { "sent", "failed", "dropped" };
		for (int r = 0; r < 3; r++) {
			evbuffer_add_printf(out, "mloffload_webhook_deliveries_total{hook=\"");
			label(out, json_string_value(json_object_get(h, "url")));
			evbuffer_add_printf(out, "\",result=\"%s\"} %lld\n", res[r],
			    (long long)json_integer_value(json_object_get(h, res[r])));
		}
	}
	json_decref(ns);
	head(out, "mloffload_scans_total", "counter", "Scans of the model folders done.");
	evbuffer_add_printf(out, "mloffload_scans_total %llu\n",
	    (unsigned long long)e->view->scans_total);
	head(out, "mloffload_scan_errors_total", "counter", "Scans that could not be stored.");
	evbuffer_add_printf(out, "mloffload_scan_errors_total %llu\n",
	    (unsigned long long)e->view->scan_errors_total);
	json_t *ls = e->view->last_scan;
	if (ls != NULL) {
		head(out, "mloffload_last_scan_seconds", "gauge", "Duration of the last scan.");
		evbuffer_add_printf(out, "mloffload_last_scan_seconds %.6f\n",
		    json_number_value(json_object_get(ls, "ms")) / 1000.0);
	}
}

/* The scheduler's devices (GPUs and RPC servers): what its models are planned to hold
 * there, what a new model may use, and each model's share. */
static void accelerators(const struct metrics_env *e, struct evbuffer *out)
{
	json_t *all = sched_devices_json(e->sched), *v, *mv;
	size_t i, j;
	static const char *const g[2][2] = {
		{ "mloffload_device_planned_bytes", "Bytes this daemon's models are planned to "
		  "hold on a device." },
		{ "mloffload_device_available_bytes", "Bytes a new model may use on a device." },
	};
	for (int k = 0; k < 2; k++) {
		head(out, g[k][0], "gauge", g[k][1]);
		json_array_foreach(all, i, v) {
			evbuffer_add_printf(out, "%s{device=\"", g[k][0]);
			label(out, json_string_value(json_object_get(v, "id")));
			evbuffer_add_printf(out, "\",name=\"%s\"} %lld\n",
			    json_string_value(json_object_get(v, "name")), (long long)
			    json_integer_value(json_object_get(v, k ? "available_bytes" :
			    "planned_bytes")));
		}
	}
	head(out, "mloffload_model_device_planned_bytes", "gauge", "Bytes a resident model is "
	    "planned to hold on a device.");
	json_array_foreach(all, i, v) {
		json_array_foreach(json_object_get(v, "models"), j, mv) {
			evbuffer_add_printf(out, "mloffload_model_device_planned_bytes{model=\"");
			label(out, json_string_value(json_object_get(mv, "model")));
			evbuffer_add_printf(out, "\",device=\"");
			label(out, json_string_value(json_object_get(v, "id")));
			evbuffer_add_printf(out, "\"} %lld\n", (long long)json_integer_value(
			    json_object_get(mv, "planned_bytes")));
		}
	}
	json_decref(all);
}

static void requests(const struct metrics *m, struct evbuffer *out)
{
	static const char *cls[N_CLASSES + 1] = { "1xx", "2xx", "3xx", "4xx", "5xx", "other" };
	head(out, "mloffload_http_requests_total", "counter", "HTTP requests by route and status class.");
	for (size_t r = 0; r <= m->n; r++)
		for (int c = 0; c <= N_CLASSES; c++)
			if (m->r[r].by_class[c])
				evbuffer_add_printf(out, "mloffload_http_requests_total{route=\"%s\","
				    "code=\"%s\"} %llu\n", r < m->n ? m->names[r] : "unmatched", cls[c],
				    m->r[r].by_class[c]);
	head(out, "mloffload_http_request_duration_seconds", "histogram",
	    "Time from request to reply, by route.");
	for (size_t r = 0; r <= m->n; r++) {
		const struct route_stats *s = &m->r[r];
		const char *name = r < m->n ? m->names[r] : "unmatched";
		if (s->count == 0)
			continue;
		for (size_t i = 0; i < N_BUCKETS; i++)
			evbuffer_add_printf(out, "mloffload_http_request_duration_seconds_bucket{"
			    "route=\"%s\",le=\"%g\"} %llu\n", name, buckets[i], s->hist[i]);
		evbuffer_add_printf(out, "mloffload_http_request_duration_seconds_bucket{route="
		    "\"%s\",le=\"+Inf\"} %llu\n", name, s->count);
		evbuffer_add_printf(out, "mloffload_http_request_duration_seconds_sum{route=\"%s\"}"
		    " %.6f\n", name, s->sum);
		evbuffer_add_printf(out, "mloffload_http_request_duration_seconds_count{route="
		    "\"%s\"} %llu\n", name, s->count);
	}
}

/* The /v1 routes: their duration above counts the handler only, these the outcome. */
static void proxied(const struct metrics_env *e, struct evbuffer *out)
{
	if (e->proxy == NULL)
		return;
	head(out, "mloffload_model_loads_total", "counter", "llama-server children started "
	    "(loads, reloads and switches).");
	evbuffer_add_printf(out, "mloffload_model_loads_total %llu\n",
	    (unsigned long long)sched_loads_total(e->sched));
	uint64_t ladder[3];
	sched_pressure_totals(e->sched, &ladder[0], &ladder[1], &ladder[2]);
	static const char *const lname[3][2] = {
		{ "mloffload_pressure_shrinks_total", "Models restarted with less on the GPU "
		  "because of outside memory pressure." },
		{ "mloffload_pressure_grows_total", "Shrunk models restarted with more on the "
		  "GPU once the memory returned." },
		{ "mloffload_pressure_unloads_total", "Models unloaded because of outside memory "
		  "pressure." },
	};
	for (int i = 0; i < 3; i++) {
		head(out, lname[i][0], "counter", lname[i][1]);
		evbuffer_add_printf(out, "%s %llu\n", lname[i][0], (unsigned long long)ladder[i]);
	}
	json_t *st = proxy_stats_json(e->proxy);
	static const struct { const char *key, *name, *type, *help; } k[] = {
		{ "requests", "mloffload_v1_requests_total", "counter", "Requests to the /v1 "
		  "routes that named a model." },
		{ "answered", "mloffload_v1_answered_total", "counter", "Answers relayed from a "
		  "backend." },
		{ "refused", "mloffload_v1_refused_total", "counter", "Requests refused with 503: "
		  "the queue was full." },
		{ "upstream_errors", "mloffload_v1_upstream_errors_total", "counter", "Backend "
		  "transfers that failed." },
		{ "cancelled", "mloffload_v1_cancelled_total", "counter", "Requests whose client "
		  "went away first." },
		{ "paused", "mloffload_v1_paused_total", "counter", "Times a backend was paused "
		  "because its client read too slowly (backpressure)." },
		{ "waiting", "mloffload_v1_waiting", "gauge", "Requests waiting in the queue." },
		{ "in_flight", "mloffload_v1_in_flight", "gauge", "Requests at a backend now." },
	};
	for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
		head(out, k[i].name, k[i].type, k[i].help);
		evbuffer_add_printf(out, "%s %lld\n", k[i].name,
		    (long long)json_integer_value(json_object_get(st, k[i].key)));
	}
	json_decref(st);
}

void metrics_render(const struct metrics *m, const struct metrics_env *e,
    struct evbuffer *out)
{
	head(out, "mloffload_uptime_seconds", "gauge", "Seconds since the daemon started.");
	evbuffer_add_printf(out, "mloffload_uptime_seconds %.3f\n",
	    (double)(util_mono_ms() - e->started_ms) / 1000.0);
	devices(e, out);
	models(e, out);
	accelerators(e, out);
	requests(m, out);
	proxied(e, out);
}
