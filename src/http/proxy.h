/*
 * proxy: the model-serving routes (/v1/models, and those of proxy_route.c: OpenAI's
 * chat, completions, embeddings and responses, Anthropic's messages, llama-server's
 * rerank, infill, tokenize...). A request names a model (id, name or alias); a
 * local model is made resident through the scheduler (loaded, evicting idle models or
 * offloading, as POST /load would) while the request waits in a bounded queue, then
 * the request goes to its llama-server; an Ollama model goes to Ollama's own /v1
 * routes. Answers pass through as they come (server-sent events chunk by chunk, with
 * backpressure), and a client that hangs up cancels its upstream request. See
 * docs/proxy.md.
 */
#ifndef MLO_PROXY_H
#define MLO_PROXY_H

#include <jansson.h>
#include <time.h>

struct config;
struct discover;
struct event_base;
struct evhttp_request;
struct proxy;
struct registry;
struct sched;

/* What the proxy reaches (borrowed: each outlives the proxy). */
struct proxy_env {
	struct event_base *base;
	struct registry *reg;          /* names to model ids, /v1/models */
	struct discover *disc;         /* Ollama's models; may be NULL */
	struct sched *sched;           /* residency: acquire, hold, the ready port */
	/* parallel, queue_max, max_overtake, ollama_url, aliases: read at each use (SIGHUP
	 * replaces them in place) */
	const struct config *cfg;
	time_t started;                /* the daemon's start: /v1/models "created" */
};

/* NULL (logged) when curl cannot be set up. */
struct proxy *proxy_new(const struct proxy_env *env);
/* Answers waiting requests with 503 and ends those in flight (daemon shutdown);
 * returns how many were answered (their bytes still to be written by the loop). */
int proxy_shutdown(struct proxy *p);
void proxy_free(struct proxy *p);
/* Something changed (a model's state, a slot freed): waiting requests are looked at
 * again on the next loop turn. */
void proxy_kick(struct proxy *p);
/* The names requests used are looked up again (after a scan or a reload). */
void proxy_forget(struct proxy *p);
/* POST to path, a route of proxy_route.c (another path: 404). */
void proxy_forward(struct proxy *p, struct evhttp_request *req, const char *path);
/* GET /v1/models. */
void proxy_models(struct proxy *p, struct evhttp_request *req);
/* New JSON for /queue: per model, requests waiting and in flight. */
json_t *proxy_queue_json(struct proxy *p);
/* New JSON for /metrics: counters of the /v1 routes. */
json_t *proxy_stats_json(struct proxy *p);

#endif
