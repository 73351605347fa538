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
#define SCHED_MAX_DEVICES PLAN_MAX_DEVICES

/* What a resident model holds on one device, as planned. */
struct sched_on {
	char id[160];                /* the device's id (struct target): "gpu1", "RPC0[h:p]" */
	char name[64];               /* llama.cpp's name over all devices: CUDA1, RPC0 */
	char run_name[64];           /* its name in the child (RPC servers renumbered) */
	char rpc[128];               /* host:port of an RPC server, else "" */
	struct plan_usage use;
};

enum state { ST_UNLOADED, ST_LOADING, ST_READY, ST_UNLOADING, ST_FAILED };
extern const char *const sched_state_names[];

struct rt {
	char *id, *path;
	char *mmproj;                /* the projector the registry links, or NULL */
	enum state state;
	struct llama *l;
	struct sched *s;
	long long row;
	struct plan_usage dev, cpu;  /* dev: the sum over the devices of on[] */
	struct sched_on on[SCHED_MAX_DEVICES]; /* its devices, in its --device order */
	int n_on;
	char home[160];              /* the device of its last load on demand when that plan
	                              * used one device: the ladder shrinks it there */
	int ngl, n_cpu_moe, ctx;
	char plan_reason[256];       /* its plan's reason (what it gave up, servers passed over) */
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

/* The pressure state of one device (its id), kept per device (sched_devp_of). */
struct sched_devp {
	char id[160];
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
	uint64_t freed_bytes;        /* what they were planned to hold on gpu_id */
	uint64_t used_at_evict;      /* that GPU's used memory when they were asked to go */
	char gpu_id[16];             /* the GPU whose readings show them freed ("": none) */
	uint64_t exited_ms;          /* when the last of them exited (0: not yet) */
	uint64_t since_ms;
	struct pending *next;
};

struct sched {
	struct sched_env env;
	const struct config *cfg;    /* env.cfg */
	int shutting_down;
	struct sched_devp press[SCHED_MAX_DEVICES]; /* per device, by id */
	size_t n_press;
	uint64_t n_shrinks, n_grows, n_pressure_unloads;
	struct rt *models;
	struct pending *queue;
	size_t n_queue;
	uint64_t loads_total;        /* llama-server children started */
	struct sched_learn *learn;   /* overheads learned per device (scheduler_learn.c) */
	/* the local devices of the llama-server binary (scheduler_devices.c) */
	char *probed_server;         /* the binary asked (heap), NULL: not yet */
	char offered[1024];          /* what it offers, "CUDA0,CUDA1" */
	int offered_known;
};

/* A device loads may be planned on: every GPU that reads (NVML, AMD sysfs), then every
 * rpc_device line, in llama.cpp's order (sched_targets). */
struct target {
	char id[160];                /* "gpu0" (the monitor's id), "RPC0[host:port]" */
	char name[64];               /* llama.cpp's name: CUDA0, ROCm0, RPC0 */
	uint64_t total, used;
	char rpc[128];
	int is_gpu;
	uint64_t t_ms;               /* when used was read (device_now_ms), 0: never */
	const struct device_info *di; /* the monitor's device (NULL for RPC), borrowed */
};

/* Records the event (borrowed data is stolen: decref'd) and sends it out. */
void sched_emit(struct sched *s, const char *type, json_t *data);
/* The model's runtime entry, or NULL. */
struct rt *sched_find(struct sched *s, const char *id);
/* m's idle TTL in seconds (its own, else the daemon's idle_ttl_s; 0: never). */
int sched_ttl(const struct sched *s, const struct rt *m);
/* Every device a load may use, in llama.cpp's order (GPUs, then RPC servers in the
 * order of the rpc_device lines); returns their count (at most max). */
size_t sched_targets(struct sched *s, struct target *out, size_t max);
/* The first of them. 0, or -1 for none. */
int sched_target(struct sched *s, struct target *t);
/* The device with that id into *t: 0, or -1 when it is gone. */
int sched_target_by_id(struct sched *s, const char *id, struct target *t);
/* 1 while m is resident (loading, ready or unloading): it holds its devices. */
int sched_resident(const struct rt *m);
/* Bytes m is planned to hold on the device with that id. */
uint64_t sched_on_bytes(const struct rt *m, const char *id);
/* Device bytes this daemon's resident models are planned to hold on device id (NULL:
 * on every device), except `but`'s. */
uint64_t sched_ours_on(struct sched *s, const char *id, const struct rt *but);
/* What a new model may use on g, except what `but` holds (0 on an RPC server that
 * serves another model: it takes one client at a time). */
uint64_t sched_available(struct sched *s, const struct target *g, const struct rt *but);
/* The resident model other than but that uses RPC server g, or NULL. */
struct rt *sched_rpc_holder(struct sched *s, const struct target *g, const struct rt *but);
/* The pressure state of device id (created; NULL when the table is full). */
struct sched_devp *sched_devp_of(struct sched *s, const char *id);
/* Plans e for m over one device t with budget bytes (options po): a plan_multi. */
int sched_plan_on(const struct est *e, const struct target *t, uint64_t budget,
    const struct plan_opts *po, struct plan_multi *p, char *err, size_t errlen);
/* The bytes p puts on its devices, all together. */
uint64_t sched_plan_dev_total(const struct plan_multi *p);
/* Ready, unpinned models other than m in eviction order; returns their count. */
size_t sched_evictable(struct sched *s, const struct rt *m, struct rt **out, size_t max);
enum sched_decision { SCHED_GO, SCHED_WAIT, SCHED_BUSY, SCHED_REFUSE };
/* Plans m (estimate e, options o) on the current budget and decides: start now
 * (SCHED_GO, with *p), evict first (SCHED_WAIT, with the models in evict[]), wait for
 * busy models to finish (SCHED_BUSY, only with o->queue_busy), or refuse
 * (SCHED_REFUSE, with why). */
enum sched_decision sched_decide(struct sched *s, struct rt *m, const struct sched_opts *o,
    const struct est *e, struct plan_multi *p, struct rt **evict, size_t *n_evict, char *why,
    size_t whylen);
/* Starts m's child with plan p (estimate e): m is loading, pinned to p's devices
 * (--device, --rpc; CUDA_DEVICE_ORDER=PCI_BUS_ID). 0, or -1 with err. */
int sched_start(struct sched *s, struct rt *m, const struct plan_multi *p,
    const struct est *e, char *err, size_t errlen);
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
void sched_pressure_remember(struct rt *m, const struct sched_opts *o,
    const struct plan_multi *p);
void sched_pressure_ready(struct rt *m);
int sched_pressure_exited(struct rt *m);
void sched_pressure_hold(struct rt *m);
void sched_pressure_forget(struct rt *m);
json_t *sched_pressure_json(struct rt *m);

/* scheduler_view.c: m's devices, [{"id", "name", "run_name", "rpc"?, "planned":
 * {model_bytes...}, "measured": the child's buffers there or null, "measured_bytes":
 * NVML's figure for the child there or null}] (new). */
json_t *sched_on_json(const struct rt *m);

/* scheduler_devices.c. gpu_by_id: the monitor's GPU with that id, or NULL (an RPC
 * server, a GPU gone). child_args: the child's arguments for plan p (its devices,
 * servers and slots; rpc, devs and np are buffers the array points into), a new
 * NULL-terminated array of borrowed strings, or NULL with err when the binary cannot
 * be pinned to p's devices. take_devices: records p's devices in m. */
const struct device_info *sched_gpu_by_id(struct sched *s, const char *id);
char **sched_child_args(struct sched *s, const struct plan_multi *p, char *rpc,
    size_t rpclen, char *devs, size_t devlen, char *np, size_t nplen, char *err,
    size_t errlen);
void sched_take_devices(struct sched *s, struct rt *m, const struct plan_multi *p);
/* q waits for r's memory to show free on one GPU (the first r holds, or the one q
 * watches already), whose reading now is the baseline. */
void sched_pending_watch(struct sched *s, struct pending *q, const struct rt *r);
/* Adds to m->measured what NVML says its child holds on each of its GPUs. */
void sched_measure_devices(struct rt *m);

/* Tells r the outcome: a success (status < 400) with body (stolen), or an error. */
void sched_tell(struct sched_reply r, int status, json_t *body);
void sched_tell_error(struct sched_reply r, int status, const char *code, const char *fmt,
    ...) __attribute__((format(printf, 4, 5)));
/* Loads (unload 0) or unloads an "ollama:NAME" model through Ollama; tells r. */
void sched_ollama_request(struct sched *s, const char *id, const struct sched_opts *opt,
    int unload, struct sched_reply r);

/* scheduler_learn.c: each device's overhead beyond the buffers. new: a learner with
 * what the registry (may be NULL) kept; free it with sched_learn_free. tick: once a
 * second, samples every ready child its GPU lists. observe: one sample of load row on
 * device key (named name): a new load's, or a larger one of a load already sampled;
 * stored in reg (may be NULL); returns 1 when the device's figure changed. */
struct sched_learn *sched_learn_new(struct registry *reg);
void sched_learn_free(struct sched_learn *l);
void sched_learn_tick(struct sched *s);
int sched_learn_observe(struct sched_learn *l, struct registry *reg, const char *key,
    const char *name, long long row, uint64_t bytes);

#endif
