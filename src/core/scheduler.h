/*
 * scheduler (sched_): the lifecycle of every local model the daemon runs (unloaded -> loading ->
 * ready -> unloading -> unloaded, and failed), the memory budget of the GPU, eviction,
 * idle TTL, pins, and the queue of loads waiting for memory. One llama-server child
 * per loaded model (llama.c). Every state change is recorded (registry loads and
 * events) and announced (notify: webhooks and /events).
 *
 * Budget on the first GPU: total less the reserve, less what other processes use
 * (used now less what this daemon's models are planned to use), less what this
 * daemon's models are planned to use. A load that does not fit evicts idle models
 * (lower priority first, then least recently used; pinned never) as long as that makes
 * the whole model fit; else, unless offload is "gpu", it is planned with part of it on
 * the CPU within what is free; else it is refused (507) with the reason.
 */
#ifndef MLO_SCHEDULER_H
#define MLO_SCHEDULER_H

#include <jansson.h>

#include "plan.h"

struct config;
struct devmon;
struct discover;
struct event_base;
struct notify;
struct registry;
struct sched;

/* What the scheduler works with, all borrowed and outliving it. cfg is read at each use,
 * so changes made in place (SIGHUP) apply. changed(changed_arg) is called after every
 * change of a model's state and every load leaving the queue: whoever waits for room or
 * for a model (the OpenAI routes) looks again. notify, disc and changed may be NULL. */
struct sched_env {
	struct event_base *base;
	struct registry *reg;
	struct devmon *dev;
	struct notify *notify;
	struct discover *disc;
	const struct config *cfg;
	void (*changed)(void *arg);
	void *changed_arg;
	/* The clock of the pressure ladder's holds and drains, in ms (tests advance it);
	 * NULL: util_mono_ms. */
	uint64_t (*clock_ms)(void *arg);
	void *clock_arg;
};

/* The outcome of a load, unload or switch. The status speaks HTTP's vocabulary, which is
 * what every caller speaks: 200 done and 202 accepted (body: the model's state), else
 * refused with an error code and message (404 unknown, 409 conflict, 500, 502 backend
 * failed, 503 busy or stopping, 504 timed out, 507 does not fit). */
struct sched_outcome {
	int status;
	const char *code;          /* status >= 400 */
	const char *message;       /* status >= 400 */
	json_t *body;              /* status < 400; borrowed for the call */
	int retry_after_s;         /* > 0: worth asking again after this long */
};

/* Whom to tell: fn(arg, outcome) is called exactly once, from the loop, possibly before
 * the call that was given it returns. fn NULL: nobody is told. */
struct sched_reply {
	void (*fn)(void *arg, const struct sched_outcome *o);
	void *arg;
};

struct sched_opts {
	uint32_t ctx;              /* 0: the default context (model.h) */
	enum plan_offload offload;
	const char *cpu_patterns[PLAN_MAX_PATTERNS];
	size_t n_cpu_patterns;
	int pin;
	int ttl_s;                 /* -1: the daemon's idle_ttl_s; 0: never */
	int priority;
	int wait;                  /* answer when ready (1) or at once with the state (0) */
	int queue_busy;            /* wait for busy models to finish rather than offload */
	int keep_failed;           /* sched_acquire: a failed model answers 502, no reload */
	/* under outside memory pressure (scheduler_pressure.c): 0 the daemon's setting */
	enum sched_pressure { SCHED_PRESSURE_DEFAULT, SCHED_PRESSURE_SHRINK,
		SCHED_PRESSURE_UNLOAD } pressure_action;
	int regrow;                /* 0: the daemon's regrow, 1 on, -1 off */
	int split;                 /* 0: the daemon's split, 1 auto, -1 never */
};

struct sched *sched_new(const struct sched_env *env);
/* Daemon shutdown, step one: refuses new loads, answers queued ones with 503, sends
 * every child SIGTERM and runs the loop until they have exited (5 s at most). */
void sched_shutdown(struct sched *s);
/* Kills what is left (SIGKILL to each child's group, reaped) and frees. */
void sched_free(struct sched *s);
/* Stops the children an earlier run left behind (from the registry's loads), each only
 * when its pid is still that child (same boot, start time and --port); every such row
 * is marked stopped either way. scheduler_reap.c. */
void sched_reap_orphans(struct sched *s);
/* Load, unload, switch (POST /load, /unload, /switch): each reports its outcome to r,
 * at once or when done (o->wait). */
void sched_load(struct sched *s, const char *id, const struct sched_opts *o,
    struct sched_reply r);
void sched_unload(struct sched *s, const char *id, struct sched_reply r);
void sched_switch(struct sched *s, const char *from, const char *to,
    const struct sched_opts *o, struct sched_reply r);
/* Once a second: TTL expiry, start timeouts, loads waiting for memory. */
void sched_tick(struct sched *s);
/* New JSON: the loaded (and loading) models for /status; the queue for /queue; the
 * runtime of one model (state, port, pid, plan, measured) or NULL when unloaded. */
json_t *sched_loaded_json(struct sched *s);
json_t *sched_queue_json(struct sched *s);
json_t *sched_model_json(struct sched *s, const char *id);
/* The device a new load would be planned on, as the scheduler sees it: its id, total
 * and what is available to a new model (total less the reserve, others' use and this
 * daemon's models). Returns 0, or -1 when there is no device (CPU only). */
int sched_budget(struct sched *s, char *id, size_t idlen, uint64_t *total,
    uint64_t *avail, char *rpc, size_t rpclen);
/* A dry run of a load of a model estimated as e (its projector mmproj, or NULL) with
 * o (offload, split, CPU patterns), as the scheduler would plan it now and with no side
 * effect: over every device a load may use (GPUs and RPC servers; a server serving
 * another model left out, named in the plan's reason), each within what it leaves a
 * new model now (the reserve, others' use, this daemon's models and a child's learned
 * overhead counted), split per o and the configuration, part on the CPU where it must
 * (offload auto) -- no model evicted. fits_if_free: it would fit whole on the devices
 * if none of this daemon's models were there. Returns 0 with out (free out->plan with
 * plan_multi_free), or -1 with err. scheduler_budget.c. */
struct sched_preview {
	struct plan_multi plan;
	int fits_if_free;
};
int sched_preview(struct sched *s, const struct est *e, const struct sched_opts *o,
    const char *mmproj, struct sched_preview *out, char *err, size_t errlen);
/* What sched_preview's answer depends on besides e and o's patterns: every device's
 * budget, learned overhead and the model an RPC server serves, and the split. New. */
char *sched_preview_key(struct sched *s, const struct sched_opts *o);
/* The overhead learned for device dev_id ("gpu0"): what a child holds there beyond its
 * buffers (scheduler_learn.c); a new plan's budget on it is smaller by this. 0 when
 * nothing was learned (or the device has no NVML process readings). */
uint64_t sched_learned_overhead(struct sched *s, const char *dev_id);
/* The same with how it was learned: new {device, bytes, loads, samples, method}, or
 * NULL when nothing was learned for dev_id. */
json_t *sched_learned_json(struct sched *s, const char *dev_id);
/* The robust figure of n samples (the newest 9 of them): their median, the mean of the
 * middle two when the count is even; 0 for none. */
uint64_t sched_learn_median(const uint64_t *v, size_t n);
/* Every device loads may use (GPUs, then RPC servers, in llama.cpp's order), each with
 * its llama.cpp name, total, reserve, what this daemon's models are planned to hold
 * there (per model), what a new model may use, and for an RPC server the model it
 * serves (one client at a time): new array, for /status, /vram, /vram/budget, /metrics. */
json_t *sched_devices_json(struct sched *s);
/* The first GPU of the device monitor that reads, or NULL (what /vram/budget describes
 * as "device" and whose other processes it lists). */
const struct device_info *sched_gpu(struct sched *s);
/* The models a load may evict, in eviction order: new array of {model, bytes}. */
json_t *sched_evictable_json(struct sched *s);
/* For the OpenAI routes (proxy.c). sched_acquire makes id resident if it is not (a
 * load with o, as POST /load would, never answering a request itself): SA_READY with
 * the port of its llama-server; SA_WAIT while it loads, waits for memory or leaves;
 * SA_BUSY when it would fit once busy models (requests in flight, or loading) are done,
 * and nothing was started; SA_ERROR with an HTTP status, error code and message. Each
 * change of a model's state afterwards calls env->changed. */
enum sched_avail { SA_READY, SA_WAIT, SA_BUSY, SA_ERROR };
struct sched_use {
	int port;
	int status;
	char code[32];
	char msg[1024];
};
enum sched_avail sched_acquire(struct sched *s, const char *id, const struct sched_opts *o,
    struct sched_use *u);
/* A request to id starts (delta 1) or ends (-1): a model with requests in flight is
 * busy (never evicted or expired) and its idle clock restarts. */
void sched_hold(struct sched *s, const char *id, int delta);
/* The port of id's llama-server when it is ready, else 0 (never loads anything). */
int sched_ready_port(struct sched *s, const char *id);
/* The API key of id's llama-server when it is ready (borrowed until it unloads), else
 * NULL. */
const char *sched_ready_key(struct sched *s, const char *id);
/* llama-server children started since the daemon started (loads and reloads). */
uint64_t sched_loads_total(struct sched *s);
/* Pressure ladder totals since start, for /metrics: models shrunk, grown back, and
 * unloaded because of outside memory pressure. */
void sched_pressure_totals(struct sched *s, uint64_t *shrinks, uint64_t *grows,
    uint64_t *unloads);
/* Counts by state for /metrics: new object {"loading": n, "ready": n, ...}. */
json_t *sched_state_counts(struct sched *s);

#endif
