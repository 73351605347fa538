/*
 * device_int: what the files of the device monitor share, and nothing else includes:
 * the monitor's structs, the NVML declarations they embed, and the calls that cross
 * between device.c (the device list, the sysfs and /proc readers, the public API) and
 * device_nvml.c (NVIDIA through NVML). Not a module of its own: private to device.
 */
#ifndef MLO_DEVICE_INT_H
#define MLO_DEVICE_INT_H

#include "device.h"

#include <stddef.h>
#include <stdint.h>

#define DEV_NO_INDEX (~0u)              /* an NVIDIA device NVML no longer lists */

/*
 * The few NVML declarations used, written here so no nvml.h is needed. Layouts and
 * values are those of NVIDIA's nvml.h (version 12.2.140, as vendored in NVIDIA's
 * go-nvml, gen/nvml/nvml.h): nvmlMemory_t (v1), nvmlUtilization_t, and
 * nvmlProcessInfo_v2_t, which nvmlDeviceGetComputeRunningProcesses_v3 fills (nvml.h
 * names it nvmlProcessInfo_t too). The unversioned nvmlDeviceGetComputeRunningProcesses
 * is the legacy entry point and fills nvmlProcessInfo_v1_t, which has no instance ids;
 * so the fallback reads a different struct.
 */
typedef int nvmlReturn_t;
typedef struct nvmlDevice_st *nvmlDevice_t;

#define NVML_SUCCESS 0
#define NVML_ERROR_NOT_SUPPORTED 3
#define NVML_ERROR_INSUFFICIENT_SIZE 7
#define NVML_TEMPERATURE_GPU 0
#define NVML_VALUE_NOT_AVAILABLE_ULL 0xffffffffffffffffull
#define NVML_NAME_BUFFER 96             /* NVML_DEVICE_NAME_V2_BUFFER_SIZE */
#define NVML_UUID_BUFFER 96             /* NVML_DEVICE_UUID_V2_BUFFER_SIZE */

typedef struct {
	unsigned long long total;
	unsigned long long free;
	unsigned long long used;
} nvmlMemory_t;

typedef struct {
	unsigned int gpu;
	unsigned int memory;
} nvmlUtilization_t;

typedef struct {
	unsigned int pid;
	unsigned long long usedGpuMemory;
	unsigned int gpuInstanceId;
	unsigned int computeInstanceId;
} nvmlProcessInfo_v2_t;

typedef struct {
	unsigned int pid;
	unsigned long long usedGpuMemory;
} nvmlProcessInfo_v1_t;

struct nvml_fns {
	nvmlReturn_t (*init)(void);
	nvmlReturn_t (*shutdown)(void);
	const char *(*error_string)(nvmlReturn_t);
	nvmlReturn_t (*count)(unsigned int *);
	nvmlReturn_t (*handle)(unsigned int, nvmlDevice_t *);
	nvmlReturn_t (*memory)(nvmlDevice_t, nvmlMemory_t *);
	/* optional: a library without them gives unknown readings */
	nvmlReturn_t (*name)(nvmlDevice_t, char *, unsigned int);
	nvmlReturn_t (*uuid)(nvmlDevice_t, char *, unsigned int);
	nvmlReturn_t (*temp)(nvmlDevice_t, int, unsigned int *);
	nvmlReturn_t (*util)(nvmlDevice_t, nvmlUtilization_t *);
	nvmlReturn_t (*procs_v3)(nvmlDevice_t, unsigned int *, nvmlProcessInfo_v2_t *);
	nvmlReturn_t (*procs_v1)(nvmlDevice_t, unsigned int *, nvmlProcessInfo_v1_t *);
};

enum nvml_state { NVML_NOT_FOUND, NVML_FAILED, NVML_UP };
enum dev_src { SRC_NVIDIA, SRC_AMD, SRC_CPU };

struct dev {
	struct device_info info;
	enum dev_src src;
	unsigned int nv_index;          /* NVML index, DEV_NO_INDEX when gone */
	unsigned int prev_index;        /* nv_index before the enumeration under way */
	char *path;                     /* AMD: <sysfs>/class/drm/cardN/device, heap */
	unsigned int card;              /* AMD: N of cardN */
	struct device_sample *ring;     /* `history` slots */
	size_t head;                    /* next slot to write */
	size_t len;                     /* slots filled */
};

struct devmon {
	char *nvml_lib;
	char *sysfs_root;
	char *proc_root;
	size_t history;

	void *dl;
	struct nvml_fns nv;
	enum nvml_state nvml;
	char nvml_status[192];

	struct dev *devs[DEVICE_MAX];
	size_t n;
};

/* Wall clock now, in milliseconds since the epoch. */
uint64_t device_now_ms(void);
/* Copies at most len bytes of s (not trusted to be terminated) into dst, stopping at the
 * first NUL or control character; dst is always terminated. */
void device_copy_text(char *dst, size_t dstlen, const char *s, size_t len);
/* Adds a device in its place; returns it (owned by m), or NULL when the list is full. */
struct dev *device_add(struct devmon *m, enum dev_src src, const char *id, const char *kind);
/* The device with this id (borrowed), or NULL. */
struct dev *device_by_id(const struct devmon *m, const char *id);
/* Records a good reading: now, ok, and a slot in the ring. */
void device_good(struct devmon *m, struct dev *d, const struct device_sample *s);
/* Records a failed reading: not ok, and why (cut short to fit). */
void device_bad(struct dev *d, const char *why);

/* Opens the NVML library and resolves its symbols; on failure m->nvml says why. */
void device_nvml_open(struct devmon *m);
/* Brings NVML up (init, then enumerate the GPUs); on failure m->nvml is NVML_FAILED. */
void device_nvml_up(struct devmon *m);
/* One NVML pass over the NVIDIA devices; returns the number read. */
size_t device_nvml_sample(struct devmon *m);

#endif
