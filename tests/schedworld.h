/*
 * schedworld: the world of the scheduler's decision tests (test_sched.c,
 * test_sched_devices.c), shared so that neither file grows past the size limit: a real
 * scheduler over a real registry of generated models (four copies of a 1B model and an
 * 8B one), the device monitor on the fake NVML and a fake /proc/meminfo, fake_llama.c
 * in place of the children, and the helpers that load, unload and size them.
 */
#ifndef MLO_SCHEDWORLD_H
#define MLO_SCHEDWORLD_H

#include "config.h"
#include "scheduler.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define GIB (1024ull * 1024 * 1024)
#define N_SMALL 4

struct sw_told {
	int n;
	int status;
	char code[64];
	char state[32];
	char message[512];           /* a refusal's message */
	int retry_after_s;
};

struct sw_world {
	struct config cfg;
	struct event_base *base;
	struct registry *reg;
	struct devmon *dev;
	struct sched *s;
	char *nvml_state;
	char ids[N_SMALL][128];      /* four copies of a 1B model */
	char big[128];               /* an 8B model */
	unsigned changes;
	uint64_t clock_add;          /* the scheduler's clock runs this much ahead */
};

/* A reply that records the outcome in *t (cleared). */
struct sched_reply sw_to(struct sw_told *t);
/* One GPU of total bytes, used of them in use; the monitor samples it. */
void sw_set_gpu(struct sw_world *w, uint64_t total, uint64_t used);
/* cmocka group setup and teardown: the world in *state. */
int sw_setup(void **state);
int sw_teardown(void **state);
/* The options of a plain POST /load (offload auto, wait). */
struct sched_opts sw_opts(void);
/* Loads id and makes its child ready; asserts the load was answered 200. */
void sw_load_ready(struct sw_world *w, const char *id, const struct sched_opts *o);
/* Waits for the monotonic clock to move on, so that two uses are ordered. */
void sw_tick_clock(void);
/* o[k1][k2] (borrowed), or NULL. */
json_t *sw_du_at_path(json_t *o, const char *k1, const char *k2);
/* The device bytes of id's plan, as /models/{id} shows them. */
uint64_t sw_planned_device_bytes(struct sw_world *w, const char *id);
/* A GPU that holds exactly `fit` small models of one bytes (and the reserve). */
void sw_gpu_for(struct sw_world *w, uint64_t one, double fit);
/* Unloads every model, reaps the children, and gives back a roomy GPU. */
void sw_unload_all(struct sw_world *w);
/* The size of one small model's plan, from a load on a roomy GPU. */
uint64_t sw_one_small(struct sw_world *w);
/* Writes the fake NVML's state: n GPUs of total bytes each, used[i] in use (NULL: 0),
 * and samples the monitor. */
void sw_set_gpus(struct sw_world *w, int n, uint64_t total, const uint64_t *used);

#endif
