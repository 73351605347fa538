/*
 * metrics: counters the daemon keeps for Prometheus, and the text exposition of
 * GET /metrics (device memory, temperature, models by state, scans, requests by route
 * and status, request latency histograms by route).
 */
#ifndef MLO_METRICS_H
#define MLO_METRICS_H

#include <stddef.h>

struct daemon;
struct evbuffer;
struct metrics;

/* Returns a heap counter set for n_routes routes named by names (borrowed, static). */
struct metrics *metrics_new(const char *const *names, size_t n_routes);
void metrics_free(struct metrics *m);
/* Counts one request of route r (or n_routes for "unmatched") with its status. */
void metrics_observe(struct metrics *m, size_t r, int status, double seconds);
/* Appends the whole exposition to out. */
void metrics_render(const struct metrics *m, struct daemon *d, struct evbuffer *out);

#endif
