/*
 * scheduler_int: what the scheduler's files share (scheduler.c: the lifecycle;
 * scheduler_budget.c: budget and decisions; scheduler_view.c: JSON views;
 * scheduler_ollama.c: Ollama's models).
 */
#ifndef MLO_SCHEDULER_INT_H
#define MLO_SCHEDULER_INT_H

#include <jansson.h>
#include <stdint.h>

#include "device.h"
#include "estimate.h"
#include "plan.h"
#include "scheduler.h"

#define MAX_WAITERS 16
#define MAX_PENDING 16
#define MAX_EVICT 32

enum state { ST_UNLOADED, ST_LOADING, ST_READY, ST_UNLOADING, ST_FAILED };
extern const char *const sched_state_names[];

struct rt {
	char *id, *path;
	char *mmproj;                /* the projector the registry links, or NULL */
	enum state state;
	struct llama *l;
	struct sched *s;
	long long row;
	struct plan_usage dev, cpu;
	int ngl, n_cpu_moe, ctx;
	json_t *args, *measured;
	uint64_t started_ms, ready_ms, last_used_ms;
	int ttl_s, pinned, priority;  /* ttl_s -1: the daemon's idle_ttl_s */
	int busy;                    /* requests of the OpenAI routes in flight */
	char error[1024];
	struct sched_reply waiters[MAX_WAITERS];  /* loads waiting for ready */
	size_t n_waiters;
	struct sched_reply unload_waiters[MAX_WAITERS];
	size_t n_unload_waiters;
	/* the pressure ladder (scheduler_pressure.c) */
	struct sched_opts lo;        /* its last load's options (patterns owned) */
	int pressure_action, regrow; /* as in sched_opts (0: the daemon's) */
	int full_ngl, full_n_cpu_moe;/* the plan of its last load on demand */
	uint64_t full_dev;
	int shrunk;                  /* runs a smaller plan than that, for pressure */
	char shrunk_why[160];
	enum sched_reload { RELOAD_NONE, RELOAD_SHRINK, RELOAD_GROW } reload;
	uint64_t reload_budget;      /* device bytes the new plan may use */
	int draining;                /* new requests wait; the reload starts once idle */
	uint64_t drain_since, decided_ms, used_before;
	int before_ngl, before_n_cpu_moe;
	uint64_t before_dev;
	uint64_t load_ms;            /* its last load's time from start to ready */
	struct rt *next;
};

/* The pressure state of one device: one today (sched_target), kept per device so that
 * more devices change nothing in the ladder. */
struct sched_devp {
	int pressured;
	uint64_t calm_since;         /* env clock: under pressure_low since (0: not calm) */
	uint64_t others_peak;        /* the most others used while calm */
	uint64_t settle_t;           /* device_now_ms of the last reload's ready */
	uint64_t settle_clock;       /* env clock then */
};

struct pending {
	char *id;
	struct sched_opts o;
	struct sched_reply reply;    /* told when the load is done (fn NULL: nobody) */
	char *evict[MAX_EVICT];      /* models that must be unloaded first */
	size_t n_evict;
	uint64_t freed_bytes;        /* what they were planned to hold on the GPU */
	uint64_t used_at_evict;      /* the GPU's used memory when they were asked to go */
	uint64_t exited_ms;          /* when the last of them exited (0: not yet) */
	uint64_t since_ms;
	struct pending *next;
};

struct sched {
	struct sched_env env;
	const struct config *cfg;    /* env.cfg */
	int shutting_down;
	struct sched_devp press;     /* the target device's pressure */
	uint64_t n_shrinks, n_grows, n_pressure_unloads;
	struct rt *models;
	struct pending *queue;
	size_t n_queue;
	uint64_t loads_total;        /* llama-server children started */
};

/* The device models are planned for: a configured RPC server, else the first GPU
 * that reads. */
struct target {
	char id[160];
	uint64_t total, used;
	char rpc[128];
	int is_gpu;
	uint64_t t_ms;               /* when used was read (device_now_ms), 0: never */
};

/* Records the event (borrowed data is stolen: decref'd) and sends it out. */
void sched_emit(struct sched *s, const char *type, json_t *data);
/* The model's runtime entry, or NULL. */
struct rt *sched_find(struct sched *s, const char *id);
/* m's idle TTL in seconds (its own, else the daemon's idle_ttl_s; 0: never). */
int sched_ttl(const struct sched *s, const struct rt *m);
/* The first GPU that reads, or NULL. */
const struct device_info *sched_gpu(struct sched *s);
/* The device loads are planned on (RPC device, else first GPU). 0, or -1 for none. */
int sched_target(struct sched *s, struct target *t);
/* Device bytes this daemon's resident models (loading, ready, unloading) are planned to
 * hold, except `but`'s. */
uint64_t sched_ours(struct sched *s, const struct rt *but);
/* What a new model may use on g, except what `but` holds. */
uint64_t sched_available(struct sched *s, const struct target *g, const struct rt *but);
/* Ready, unpinned models other than m in eviction order; returns their count. */
size_t sched_evictable(struct sched *s, const struct rt *m, struct rt **out, size_t max);
enum sched_decision { SCHED_GO, SCHED_WAIT, SCHED_BUSY, SCHED_REFUSE };
/* Plans m (estimate e, options o) on the current budget and decides: start now
 * (SCHED_GO, with *p), evict first (SCHED_WAIT, with the models in evict[]), wait for
 * busy models to finish (SCHED_BUSY, only with o->queue_busy), or refuse
 * (SCHED_REFUSE, with why). */
enum sched_decision sched_decide(struct sched *s, struct rt *m, const struct sched_opts *o,
    const struct est *e, struct plan *p, struct rt **evict, size_t *n_evict, char *why,
    size_t whylen);
/* Starts m's child with plan p (estimate e): m is loading. 0, or -1 with err. */
int sched_start(struct sched *s, struct rt *m, const struct plan *p, const struct est *e,
    char *err, size_t errlen);
/* RAM a plan may use on the CPU (free less the reserve). */
uint64_t sched_ram_available(struct sched *s);
/* The env clock (ms). */
uint64_t sched_clock(struct sched *s);

/* scheduler_pressure.c: the ladder. tick: once a second, per device. remember: a load
 * on demand started (o deep-copied, p its full plan). ready: m's child is ready (a
 * reload's event). exited: m's child is gone while unloading; 1 when it was a reload
 * that the ladder took over (m is loading again or failed). hold: m's requests changed.
 * forget: frees what remember kept. json: m's pressure view (new). */
void sched_pressure_tick(struct sched *s);
void sched_pressure_remember(struct rt *m, const struct sched_opts *o, const struct plan *p);
void sched_pressure_ready(struct rt *m);
int sched_pressure_exited(struct rt *m);
void sched_pressure_hold(struct rt *m);
void sched_pressure_forget(struct rt *m);
json_t *sched_pressure_json(struct rt *m);

/* Tells r the outcome: a success (status < 400) with body (stolen), or an error. */
void sched_tell(struct sched_reply r, int status, json_t *body);
void sched_tell_error(struct sched_reply r, int status, const char *code, const char *fmt,
    ...) __attribute__((format(printf, 4, 5)));
/* Loads (unload 0) or unloads an "ollama:NAME" model through Ollama; tells r. */
void sched_ollama_request(struct sched *s, const char *id, const struct sched_opts *opt,
    int unload, struct sched_reply r);

#endif
