/*
 * device: the live device monitor. NVIDIA GPUs through NVML, loaded with dlopen
 * (libnvidia-ml.so.1, then libnvidia-ml.so, or a path given), AMD GPUs through sysfs
 * (/sys/class/drm/cardN/device/mem_info_vram_total and _used), and system RAM from /proc/meminfo as
 * the device "cpu". Each call to devmon_sample() reads every device once and appends
 * the reading to a per-device ring, so recent history is kept as well as the present.
 * No GPU at all is a normal state: the cpu device is always there.
 *
 * Synchronous and quick (a few NVML calls and small file reads); the daemon calls it
 * from a timer on its loop. Not thread-safe.
 */
#ifndef MLO_DEVICE_H
#define MLO_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#define DEVICE_MAX 16
#define DEVICE_MAX_PROCS 64

struct device_sample {
	uint64_t t_ms;          /* wall clock, milliseconds since the epoch */
	uint64_t total, used, free;
	int temp_c;             /* -1 when unknown */
	int util_pct;           /* -1 when unknown */
};

struct device_proc {
	uint32_t pid;
	uint64_t used;          /* bytes of device memory */
};

struct device_info {
	char id[16];            /* "gpu0", "gpu1" (NVIDIA), "amd0" (AMD), "cpu" */
	char kind[8];           /* "nvidia", "amd", "cpu" */
	char name[96];
	char uuid[96];          /* NVIDIA UUID, AMD card path, "" for cpu */
	int index;              /* NVIDIA: NVML's index now (PCI bus order, which is CUDA's
	                         * under CUDA_DEVICE_ORDER=PCI_BUS_ID), -1 when gone;
	                         * -1 for the others */
	int ok;                 /* the last reading succeeded */
	char error[128];        /* why not, when !ok */
	struct device_sample now;
	size_t n_procs;
	struct device_proc procs[DEVICE_MAX_PROCS];
};

struct devmon_opts {
	const char *nvml_lib;   /* NULL: libnvidia-ml.so.1, then libnvidia-ml.so */
	const char *sysfs_root; /* NULL: "/sys" (tests point it at a fake tree) */
	const char *proc_root;  /* NULL: "/proc" */
	size_t history;         /* samples kept per device (0: 120) */
};

struct devmon;

/* Returns a heap monitor (never NULL: a missing NVML is recorded, not an error);
 * free with devmon_free. Takes a first sample. */
struct devmon *devmon_new(const struct devmon_opts *o);
void devmon_free(struct devmon *m);
/* Reads every device now; returns the number read successfully. */
size_t devmon_sample(struct devmon *m);
size_t devmon_count(const struct devmon *m);
/* Device i (0 <= i < count), borrowed until the next sample. */
const struct device_info *devmon_get(const struct devmon *m, size_t i);
/* Copies up to max samples of device i, oldest first; returns how many. */
size_t devmon_history(const struct devmon *m, size_t i, struct device_sample *out, size_t max);
/* "ok", "not found (...)" or "error: ..." for NVML; the cpu device never fails. */
const char *devmon_nvml_status(const struct devmon *m);
/* 1 when the monitor works: the cpu device reads, and NVML, if found, answers. */
int devmon_healthy(const struct devmon *m);

#endif
