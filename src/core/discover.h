/*
 * discover: finds the model servers already running on this machine, without ever
 * blocking the loop: llama-server instances on configured URLs (alive, version, the
 * model they serve) and Ollama (version, its models from /api/tags, what it has loaded
 * and their VRAM from /api/ps). All HTTP goes through one libcurl multi handle driven
 * by the daemon's libevent loop (curl_multi_socket_action). A backend that does not
 * answer is a normal state ("down"), with the reason.
 */
#ifndef MLO_DISCOVER_H
#define MLO_DISCOVER_H

#include <stddef.h>
#include <jansson.h>

struct event_base;
struct discover;

struct discover_opts {
	char *const *llama_urls;     /* e.g. "http://127.0.0.1:8080" */
	size_t n_llama;
	const char *ollama_url;      /* NULL or "" to skip Ollama */
	long timeout_ms;             /* per request (0: 2000) */
	size_t max_body;             /* cap on a response body (0: 4 MiB) */
};

/* Called on the loop after a round in which some backend changed state (up/down). */
typedef void (*discover_cb)(void *arg, const char *backend_url, int up);

/* Returns a heap discoverer bound to base; free with discover_free. */
struct discover *discover_new(struct event_base *base, const struct discover_opts *o,
    discover_cb cb, void *arg);
void discover_free(struct discover *d);
/* Starts a round of requests to every backend; returns at once. A round already in
 * flight is not doubled. */
void discover_poll(struct discover *d);
/* 1 while a round is in flight. */
int discover_busy(const struct discover *d);
/* What is known now: a new JSON array for GET /backends, one object per backend:
 * {type: "llama.cpp"|"ollama", url, detected, managed: false, version, models: [...],
 *  loaded: [...] (ollama: name, size_vram), error, checked_at} */
json_t *discover_backends(const struct discover *d);
/* Ollama's models as model objects for GET /models ({id: "ollama:NAME", name,
 * backend: "ollama", size, quantization, parameters, family, loaded, vram_bytes}). */
json_t *discover_ollama_models(const struct discover *d);

#endif
