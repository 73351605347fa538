/*
 * metrics: counters the daemon keeps for Prometheus, and the text exposition of
 * GET /metrics (device memory, temperature, models by state, scans, requests by route
 * and status, request latency histograms by route).
 */
#ifndef MLO_METRICS_H
#define MLO_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct devmon;
struct evbuffer;
struct metrics;
struct notify;
struct proxy;
struct registry_view;
struct sched;

/* What the exposition reads (borrowed, for one metrics_render). */
struct metrics_env {
	struct devmon *dev;
	struct sched *sched;
	struct notify *notify;
	struct proxy *proxy;                 /* may be NULL */
	const struct registry_view *view;    /* models by state, scans (registry.h) */
	uint64_t started_ms;                 /* the daemon's start (util_mono_ms) */
};

/* Returns a heap counter set for n_routes routes named by names (borrowed, static). */
struct metrics *metrics_new(const char *const *names, size_t n_routes);
void metrics_free(struct metrics *m);
/* Counts one request of route r (or n_routes for "unmatched") with its status. */
void metrics_observe(struct metrics *m, size_t r, int status, double seconds);
/* Appends the whole exposition to out. */
void metrics_render(const struct metrics *m, const struct metrics_env *env,
    struct evbuffer *out);

#endif
