/*
 * plan: place a model's components on one accelerator (a local GPU or an RPC server)
 * and the CPU within a memory budget, the way llama.cpp executes it, and turn the
 * placement into the llama-server arguments that realise it exactly.
 *
 * Order of sacrifice when the model does not fit: for mixture-of-experts models the
 * experts of the first layers go to the CPU first (--n-cpu-moe), since they are large
 * and touched sparsely; then whole layers, first layer first (-ngl), which is how
 * llama.cpp counts them: the output layer is the last to leave the GPU.
 */
#ifndef MLO_PLAN_H
#define MLO_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "estimate.h"

#define PLAN_MAX_PATTERNS 32

enum plan_offload { PLAN_AUTO, PLAN_GPU, PLAN_CPU };

struct plan_device {
	char name[64];            /* "GPU0", "RPC0[127.0.0.1:50052]" */
	uint64_t budget;          /* bytes the plan may use there */
	char rpc[128];            /* host:port when the device is an RPC server, else "" */
};

struct plan_opts {
	enum plan_offload offload;
	const char *cpu_patterns[PLAN_MAX_PATTERNS]; /* globs on tensor names kept on the CPU */
	size_t n_cpu_patterns;
	int no_kv_offload;        /* keep the whole KV cache on the CPU (-nkvo) */
	int no_repack;            /* pass --no-repack: CPU weights stay in the mapped file */
	const char *mmproj;       /* projector file (its size is est_opts.mmproj_bytes); it
	                           * goes to the device unless a pattern matches "mmproj" or,
	                           * with offload auto, the model fits only without it: it
	                           * then leaves for the CPU before any layer does */
	int ngl;                  /* >= 0: this many layers on the device, no search */
	int n_cpu_moe;            /* with ngl >= 0: experts of this many layers on the CPU */
};

struct plan_usage {
	uint64_t model, kv, compute, total;
	uint64_t repack;          /* CPU only: weights copied into an interleaved layout */
	uint64_t mapped;          /* CPU only: the span of the file llama.cpp maps for the
	                           * CPU's weights that are not repacked (its CPU_Mapped) */
};

struct plan {
	int ngl;                  /* layers on the device, output layer counted */
	int n_cpu_moe;            /* layers whose experts stay on the CPU */
	int fits;
	struct plan_usage dev, cpu;
	char dev_name[64];
	char **args;              /* heap, NULL-terminated; free with plan_free */
	size_t n_args;
	char reason[256];         /* why it does not fit, or what it gave up */
	int mmproj_cpu;           /* the projector runs on the CPU (--no-mmproj-offload) */
};

/* Plans e on dev (NULL: no accelerator). Returns 0, or -1 with err for bad options
 * (an invalid pattern). A plan that does not fit is not an error: p->fits is 0. */
int plan_make(const struct est *e, const struct plan_device *dev, const struct plan_opts *o,
    struct plan *p, char *err, size_t errlen);
void plan_free(struct plan *p);
/* Device memory the projector's encoder takes there (weights and compute buffer): what
 * --no-mmproj-offload saves on the device. */
uint64_t plan_mmproj_saving(const struct est *e);
/* 0 if glob is a usable CPU pattern (it compiles to a regex), else -1. */
int plan_check_pattern(const char *glob);
/* Memory on the device and the CPU for a given placement (ngl, n_cpu_moe). */
void plan_usage_for(const struct est *e, const struct plan_opts *o, int has_dev, int ngl,
    int n_cpu_moe, struct plan_usage *dev, struct plan_usage *cpu);
/* Compute buffer of a device running `layers` layers (all of them when all), with the
 * experts of some (experts), the output head (output), a leading dense layer (lead). */
uint64_t plan_dev_compute(const struct est *e, int layers, int all, int experts, int output,
    int lead);
/* The inputs of a device's layers that llama.cpp's scheduler copies once per pipeline
 * stage when it runs a split with pipeline parallelism: the KQ masks and the hidden
 * state arriving from the previous backend. */
uint64_t plan_pp_inputs(const struct est *e);

/*
 * Plans over several devices (plan_multi.c). Devices come in llama.cpp's order (local
 * GPUs, then RPC servers in --rpc order); each name is llama.cpp's (CUDA0, RPC1). A
 * model that fits one device wholly goes to the smallest budget that holds it; only
 * when none does, with split auto, its layers are split over the devices in order,
 * each filled up to its budget from the last one (which holds the output head, when it
 * can); then experts of
 * the first layers and then whole layers go to the CPU, as with one device.
 *
 * A split of every layer without tensor overrides (no experts on the CPU) runs with
 * pipeline parallelism (llama-context.cpp): the scheduler keeps 4 copies
 * (GGML_SCHED_MAX_COPIES) of each device's graph inputs, counted in its compute.
 */
#define PLAN_MAX_DEVICES 8

enum plan_split { PLAN_SPLIT_AUTO, PLAN_SPLIT_NEVER };

struct plan_dev_use {
	char name[64];            /* the name given (llama.cpp's name over all devices) */
	char run_name[64];        /* its name in the child, which sees only the devices
	                           * used: RPC servers renumbered in --rpc order */
	char rpc[128];            /* host:port of an RPC server, else "" */
	uint64_t budget;
	int first, count;         /* units first..first+count-1; unit n_layer is the output */
	int output;               /* holds the output head (and the logits) */
	struct plan_usage use;
};

struct plan_multi {
	int n_dev;                /* devices used, in llama.cpp's order */
	struct plan_dev_use dev[PLAN_MAX_DEVICES];
	int ngl, n_cpu_moe, fits, split;
	struct plan_usage cpu;
	char **args;              /* heap, NULL-terminated; free with plan_multi_free */
	size_t n_args;
	char reason[256];
};

/* Plans e over devs[0..n_devs) (n_devs 0: the CPU alone). With one device the plan and
 * its arguments are plan_make's. Returns 0, or -1 with err for bad options. */
int plan_multi_make(const struct est *e, const struct plan_device *devs, size_t n_devs,
    const struct plan_opts *o, enum plan_split split, struct plan_multi *p, char *err,
    size_t errlen);
void plan_multi_free(struct plan_multi *p);

#endif
