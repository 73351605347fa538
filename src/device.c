/*
 * device: the live device monitor (contract in device.h). Three sources feed one list
 * of devices, kept in the order NVIDIA GPUs, AMD GPUs, then the cpu device:
 *
 *  - NVML, opened with dlopen and resolved with dlsym, so the daemon builds and runs
 *    without CUDA and the tests reach a fake libnvidia-ml.so through this same path.
 *    A library that cannot be opened is "not found" for the life of the monitor; a
 *    library whose nvmlInit fails is retried on every later sample, so a driver that
 *    comes back (or is loaded late) is picked up without a restart.
 *  - sysfs for AMD (amdgpu's mem_info_vram_* files), discovered once at devmon_new.
 *  - /proc/meminfo for system RAM, the device "cpu", which is always there.
 *
 * Ids are stable: an NVIDIA GPU keeps its id, matched by UUID, when NVML is enumerated
 * again (after NVML comes back, or when the device count changes), and a GPU that
 * disappears stays in the list, not ok, with its history. Indices into the list may
 * move when a GPU appears; ids never do.
 *
 * A device's `now` is its last good reading (its t_ms says when); after a failed
 * reading ok is 0 and error says why. Only good readings enter the history ring.
 * Every file read is capped at DEV_FILE_MAX bytes and every number is parsed whole
 * with strtoull and checked; nothing read from NVML, sysfs or proc is trusted to be
 * terminated or in range.
 */
#include "device.h"
#include "util.h"

#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEV_HISTORY_DEFAULT 120
#define DEV_HISTORY_MAX 86400           /* a day of one-second samples */
#define DEV_FILE_MAX 4096               /* cap on every sysfs and proc read */
#define DEV_PROC_QUERY_MAX 4096         /* cap on the process list asked of NVML */
#define DEV_PROC_FIRST 16               /* first try at the process list, on the stack */
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

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Copies at most len bytes of s (not trusted to be terminated) into dst, stopping at
 * the first NUL or control character, so a name from a driver prints on one line. */
static void copy_text(char *dst, size_t dstlen, const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len && i + 1 < dstlen; i++) {
		if (s[i] == '\0' || iscntrl((unsigned char)s[i]))
			break;
		dst[i] = s[i];
	}
	dst[i] = '\0';
}

/* Copies the string s into dst, cut short to fit. */
static void set_text(char *dst, size_t dstlen, const char *s)
{
	copy_text(dst, dstlen, s, SIZE_MAX);
}

/* Reads at most cap - 1 bytes of path into buf and terminates it. Returns the length,
 * or -1 with errno set. A longer file is cut short; the parsers then reject it. */
static ssize_t read_small(const char *path, char *buf, size_t cap)
{
	size_t len = 0;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	while (len + 1 < cap) {
		ssize_t r = read(fd, buf + len, cap - 1 - len);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			int e = errno;
			close(fd);
			errno = e;
			return -1;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	buf[len] = '\0';
	return (ssize_t)len;
}

/* Parses an unsigned decimal at *s (no sign, no leading space), advancing *s past it.
 * Returns 0, or -1 when there are no digits or the value overflows. */
static int parse_u64_at(const char **s, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!isdigit((unsigned char)**s))
		return -1;
	errno = 0;
	v = strtoull(*s, &end, 10);
	if (errno != 0)
		return -1;
	*s = end;
	*out = v;
	return 0;
}

/* Parses a file's whole content as one unsigned decimal, surrounding white space
 * allowed. Returns 0 or -1. */
static int parse_u64_whole(const char *s, uint64_t *out)
{
	while (isspace((unsigned char)*s))
		s++;
	if (parse_u64_at(&s, out) != 0)
		return -1;
	while (isspace((unsigned char)*s))
		s++;
	return *s == '\0' ? 0 : -1;
}

/* Reads one number from dir/name. Returns 0, or -1 with the reason in err (ENOENT
 * says "missing", so callers can tell an absent optional file from a bad one). */
static int read_u64_file(const char *dir, const char *name, uint64_t *out, char *err,
    size_t errlen, int *missing)
{
	char buf[DEV_FILE_MAX], *path = xasprintf("%s/%s", dir, name);
	int rc = -1;

	*missing = 0;
	if (read_small(path, buf, sizeof buf) == -1) {
		*missing = errno == ENOENT;
		snprintf(err, errlen, "%s: %s", name, strerror(errno));
		goto out;
	}
	if (parse_u64_whole(buf, out) != 0) {
		snprintf(err, errlen, "%s: not a number", name);
		goto out;
	}
	rc = 0;
out:
	free(path);
	return rc;
}

/*
 * The device list and its rings.
 */

static int src_rank(enum dev_src s)
{
	return (int)s;
}

/* Adds a device in its place (NVIDIA, AMD, cpu; in order of arrival within a kind).
 * Returns it, or NULL when the list is full (the cpu device is added first, so it
 * always has a slot). */
static struct dev *dev_add(struct devmon *m, enum dev_src src, const char *id, const char *kind)
{
	struct dev *d;
	size_t at;

	if (m->n == DEVICE_MAX) {
		log_warnx("device: more than %d devices, %s ignored", DEVICE_MAX, id);
		return NULL;
	}
	d = xcalloc(1, sizeof *d);
	d->src = src;
	d->nv_index = DEV_NO_INDEX;
	d->prev_index = DEV_NO_INDEX;
	snprintf(d->info.id, sizeof d->info.id, "%s", id);
	snprintf(d->info.kind, sizeof d->info.kind, "%s", kind);
	snprintf(d->info.error, sizeof d->info.error, "not read yet");
	d->info.now.temp_c = -1;
	d->info.now.util_pct = -1;
	d->ring = xcalloc(m->history, sizeof *d->ring);

	for (at = m->n; at > 0 && src_rank(m->devs[at - 1]->src) > src_rank(src); at--)
		m->devs[at] = m->devs[at - 1];
	m->devs[at] = d;
	m->n++;
	return d;
}

static struct dev *dev_by_id(const struct devmon *m, const char *id)
{
	for (size_t i = 0; i < m->n; i++)
		if (strcmp(m->devs[i]->info.id, id) == 0)
			return m->devs[i];
	return NULL;
}

static void dev_free(struct dev *d)
{
	free(d->path);
	free(d->ring);
	free(d);
}

/* Records a good reading: now, ok, and a slot in the ring. */
static void dev_good(struct devmon *m, struct dev *d, const struct device_sample *s)
{
	d->info.now = *s;
	d->info.ok = 1;
	d->info.error[0] = '\0';
	d->ring[d->head] = *s;
	d->head = (d->head + 1) % m->history;
	if (d->len < m->history)
		d->len++;
}

static void dev_bad(struct dev *d, const char *why)
{
	d->info.ok = 0;
	set_text(d->info.error, sizeof d->info.error, why);
}

/*
 * NVML.
 */

static const char *nv_err(const struct devmon *m, nvmlReturn_t rc)
{
	const char *s = m->nv.error_string != NULL ? m->nv.error_string(rc) : NULL;

	return s != NULL ? s : "unknown NVML error";
}

/* Opens the library and resolves its symbols. On failure the state says why. */
static void nvml_open(struct devmon *m)
{
	static const char *defaults[] = { "libnvidia-ml.so.1", "libnvidia-ml.so" };
	char first[160] = "";
	const char *missing = NULL;

	if (m->nvml_lib != NULL) {
		m->dl = dlopen(m->nvml_lib, RTLD_NOW | RTLD_LOCAL);
		if (m->dl == NULL) {
			const char *e = dlerror();
			snprintf(first, sizeof first, "%s", e != NULL ? e : m->nvml_lib);
		}
	} else {
		for (size_t i = 0; i < 2 && m->dl == NULL; i++) {
			m->dl = dlopen(defaults[i], RTLD_NOW | RTLD_LOCAL);
			if (m->dl == NULL && i == 0) {
				const char *e = dlerror();
				snprintf(first, sizeof first, "%s", e != NULL ? e : defaults[i]);
			}
		}
	}
	if (m->dl == NULL) {
		m->nvml = NVML_NOT_FOUND;
		snprintf(m->nvml_status, sizeof m->nvml_status, "not found (%s)", first);
		log_info("device: NVML %s", m->nvml_status);
		return;
	}

	/* dlsym returns void *; POSIX guarantees the conversion to a function pointer. */
#define NV_SYM(field, name) (m->nv.field = (__typeof__(m->nv.field))dlsym(m->dl, name))
	NV_SYM(init, "nvmlInit_v2");
	NV_SYM(shutdown, "nvmlShutdown");
	NV_SYM(error_string, "nvmlErrorString");
	NV_SYM(count, "nvmlDeviceGetCount_v2");
	NV_SYM(handle, "nvmlDeviceGetHandleByIndex_v2");
	NV_SYM(memory, "nvmlDeviceGetMemoryInfo");
	NV_SYM(name, "nvmlDeviceGetName");
	NV_SYM(uuid, "nvmlDeviceGetUUID");
	NV_SYM(temp, "nvmlDeviceGetTemperature");
	NV_SYM(util, "nvmlDeviceGetUtilizationRates");
	NV_SYM(procs_v3, "nvmlDeviceGetComputeRunningProcesses_v3");
	if (m->nv.procs_v3 == NULL)
		NV_SYM(procs_v1, "nvmlDeviceGetComputeRunningProcesses");
#undef NV_SYM

	if (m->nv.init == NULL)
		missing = "nvmlInit_v2";
	else if (m->nv.shutdown == NULL)
		missing = "nvmlShutdown";
	else if (m->nv.count == NULL)
		missing = "nvmlDeviceGetCount_v2";
	else if (m->nv.handle == NULL)
		missing = "nvmlDeviceGetHandleByIndex_v2";
	else if (m->nv.memory == NULL)
		missing = "nvmlDeviceGetMemoryInfo";
	if (missing != NULL) {
		/* Found but unusable: an error, not "not found", so health says so. */
		m->nvml = NVML_FAILED;
		snprintf(m->nvml_status, sizeof m->nvml_status, "error: %s missing in the library",
		    missing);
		log_warnx("device: NVML %s", m->nvml_status);
		dlclose(m->dl);
		m->dl = NULL;
		memset(&m->nv, 0, sizeof m->nv);
	}
}

/* NVML is down (init failed, or enumeration failed): every NVIDIA device is not ok. */
static void nvml_down(struct devmon *m, const char *what, nvmlReturn_t rc)
{
	char why[160];

	snprintf(why, sizeof why, "%s: %s", what, nv_err(m, rc));
	if (m->nvml != NVML_FAILED)
		log_warnx("device: NVML %s", why);
	m->nvml = NVML_FAILED;
	snprintf(m->nvml_status, sizeof m->nvml_status, "error: %s", why);
	for (size_t i = 0; i < m->n; i++)
		if (m->devs[i]->src == SRC_NVIDIA)
			dev_bad(m->devs[i], why);
}

/* Fills name and UUID of device index i from NVML, as far as it answers. */
static void nvml_ident(struct devmon *m, nvmlDevice_t h, unsigned int i, char *name,
    size_t namelen, char *uuid, size_t uuidlen)
{
	char buf[NVML_NAME_BUFFER > NVML_UUID_BUFFER ? NVML_NAME_BUFFER : NVML_UUID_BUFFER];

	uuid[0] = '\0';
	snprintf(name, namelen, "NVIDIA GPU %u", i);
	memset(buf, 0, sizeof buf);
	if (m->nv.uuid != NULL && m->nv.uuid(h, buf, NVML_UUID_BUFFER) == NVML_SUCCESS)
		copy_text(uuid, uuidlen, buf, sizeof buf);
	memset(buf, 0, sizeof buf);
	if (m->nv.name != NULL && m->nv.name(h, buf, NVML_NAME_BUFFER) == NVML_SUCCESS &&
	    buf[0] != '\0')
		copy_text(name, namelen, buf, sizeof buf);
}

/* Enumerates NVML's devices and merges them into the list: a known UUID keeps its
 * device (and id), a device whose UUID could not be read matches by index, a new one
 * gets "gpuN" for its index N if that is free, else the next free number. Devices
 * NVML no longer lists stay, marked gone. Returns 0, or -1 when NVML failed. */
static int nvml_discover(struct devmon *m)
{
	unsigned int count = 0;
	nvmlReturn_t rc;

	if ((rc = m->nv.count(&count)) != NVML_SUCCESS) {
		nvml_down(m, "nvmlDeviceGetCount_v2", rc);
		return -1;
	}
	if (count > DEVICE_MAX)
		count = DEVICE_MAX;
	for (size_t i = 0; i < m->n; i++) {
		if (m->devs[i]->src == SRC_NVIDIA) {
			m->devs[i]->prev_index = m->devs[i]->nv_index;
			m->devs[i]->nv_index = DEV_NO_INDEX;
		}
	}

	for (unsigned int i = 0; i < count; i++) {
		char name[sizeof ((struct device_info *)0)->name];
		char uuid[sizeof ((struct device_info *)0)->uuid];
		char id[sizeof ((struct device_info *)0)->id];
		struct dev *d = NULL;
		nvmlDevice_t h;

		if (m->nv.handle(i, &h) != NVML_SUCCESS) {
			/* Unreadable now; a later enumeration may find it. */
			continue;
		}
		nvml_ident(m, h, i, name, sizeof name, uuid, sizeof uuid);
		for (size_t j = 0; j < m->n && d == NULL; j++) {
			struct dev *e = m->devs[j];
			if (e->src != SRC_NVIDIA || e->nv_index != DEV_NO_INDEX)
				continue;
			if (uuid[0] != '\0' && strcmp(e->info.uuid, uuid) == 0)
				d = e;
		}
		for (size_t j = 0; j < m->n && d == NULL; j++) {
			struct dev *e = m->devs[j];
			if (e->src != SRC_NVIDIA || e->nv_index != DEV_NO_INDEX)
				continue;
			if ((uuid[0] == '\0' || e->info.uuid[0] == '\0') && e->prev_index == i)
				d = e;
		}
		if (d == NULL) {
			unsigned int k = i;
			snprintf(id, sizeof id, "gpu%u", k);
			while (dev_by_id(m, id) != NULL)
				snprintf(id, sizeof id, "gpu%u", ++k);
			if ((d = dev_add(m, SRC_NVIDIA, id, "nvidia")) == NULL)
				break;
		}
		d->nv_index = i;
		if (uuid[0] != '\0')
			snprintf(d->info.uuid, sizeof d->info.uuid, "%s", uuid);
		if (uuid[0] != '\0' || d->info.name[0] == '\0')
			snprintf(d->info.name, sizeof d->info.name, "%s", name);
	}
	return 0;
}

/* Brings NVML up: init, then enumerate. */
static void nvml_up(struct devmon *m)
{
	nvmlReturn_t rc;

	if ((rc = m->nv.init()) != NVML_SUCCESS) {
		nvml_down(m, "nvmlInit_v2", rc);
		return;
	}
	if (nvml_discover(m) != 0) {
		m->nv.shutdown();
		return;
	}
	if (m->nvml == NVML_FAILED)
		log_info("device: NVML is back");
	m->nvml = NVML_UP;
	snprintf(m->nvml_status, sizeof m->nvml_status, "ok");
}

static int proc_cmp(const void *a, const void *b)
{
	const struct device_proc *x = a, *y = b;

	if (x->used != y->used)
		return x->used < y->used ? 1 : -1;
	return x->pid < y->pid ? -1 : x->pid > y->pid;
}

/* Reads the compute processes of h into d, the largest DEVICE_MAX_PROCS of them. A
 * first small query on the stack; NVML_ERROR_INSUFFICIENT_SIZE says how many there
 * are, and the query is repeated with room for them (processes come and go between
 * the two calls, so a few tries). Returns NVML's code. */
static nvmlReturn_t nvml_procs(struct devmon *m, nvmlDevice_t h, struct dev *d)
{
	nvmlProcessInfo_v2_t first3[DEV_PROC_FIRST], *p3 = first3;
	nvmlProcessInfo_v1_t first1[DEV_PROC_FIRST], *p1 = first1;
	unsigned int cap = DEV_PROC_FIRST, n = 0;
	nvmlReturn_t rc = NVML_ERROR_NOT_SUPPORTED;
	size_t kept = 0;

	d->info.n_procs = 0;
	for (int tries = 0; tries < 4; tries++) {
		n = cap;
		if (m->nv.procs_v3 != NULL)
			rc = m->nv.procs_v3(h, &n, p3);
		else if (m->nv.procs_v1 != NULL)
			rc = m->nv.procs_v1(h, &n, p1);
		if (rc != NVML_ERROR_INSUFFICIENT_SIZE || cap == DEV_PROC_QUERY_MAX)
			break;
		cap = n > cap ? n : cap * 2;
		if (cap > DEV_PROC_QUERY_MAX)
			cap = DEV_PROC_QUERY_MAX;
		if (m->nv.procs_v3 != NULL)
			p3 = xreallocarray(p3 == first3 ? NULL : p3, cap, sizeof *p3);
		else
			p1 = xreallocarray(p1 == first1 ? NULL : p1, cap, sizeof *p1);
	}
	if (rc == NVML_SUCCESS) {
		struct device_proc *all = xcalloc(n > 0 ? n : 1, sizeof *all);
		if (n > cap)
			n = cap;
		for (unsigned int i = 0; i < n; i++) {
			uint64_t used = m->nv.procs_v3 != NULL ? p3[i].usedGpuMemory :
			    p1[i].usedGpuMemory;
			all[i].pid = m->nv.procs_v3 != NULL ? p3[i].pid : p1[i].pid;
			/* NVML_VALUE_NOT_AVAILABLE (WDDM, MIG without rights): unknown, 0 */
			all[i].used = used == NVML_VALUE_NOT_AVAILABLE_ULL ? 0 : used;
		}
		qsort(all, n, sizeof *all, proc_cmp);
		kept = n < DEVICE_MAX_PROCS ? n : DEVICE_MAX_PROCS;
		memcpy(d->info.procs, all, kept * sizeof *all);
		d->info.n_procs = kept;
		free(all);
	}
	if (p3 != first3)
		free(p3);
	if (p1 != first1)
		free(p1);
	return rc;
}

/* Reads one NVIDIA device. Memory must answer; temperature, utilisation and processes
 * that the GPU does not support read as unknown; any other error fails the reading. */
static int nvml_read(struct devmon *m, struct dev *d)
{
	struct device_sample s = { .t_ms = now_ms(), .temp_c = -1, .util_pct = -1 };
	nvmlUtilization_t u;
	nvmlMemory_t mem;
	nvmlDevice_t h;
	nvmlReturn_t rc;
	unsigned int t;
	char why[128];
	const char *what;

	if (d->nv_index == DEV_NO_INDEX) {
		dev_bad(d, "gone: NVML no longer lists this GPU");
		return -1;
	}
	what = "nvmlDeviceGetHandleByIndex_v2";
	if ((rc = m->nv.handle(d->nv_index, &h)) != NVML_SUCCESS)
		goto fail;
	what = "nvmlDeviceGetMemoryInfo";
	memset(&mem, 0, sizeof mem);
	if ((rc = m->nv.memory(h, &mem)) != NVML_SUCCESS)
		goto fail;
	s.total = mem.total;
	s.used = mem.used;
	s.free = mem.free;
	if (m->nv.temp != NULL) {
		what = "nvmlDeviceGetTemperature";
		rc = m->nv.temp(h, NVML_TEMPERATURE_GPU, &t);
		if (rc == NVML_SUCCESS && t <= 1000)
			s.temp_c = (int)t;
		else if (rc != NVML_SUCCESS && rc != NVML_ERROR_NOT_SUPPORTED)
			goto fail;
	}
	if (m->nv.util != NULL) {
		what = "nvmlDeviceGetUtilizationRates";
		rc = m->nv.util(h, &u);
		if (rc == NVML_SUCCESS && u.gpu <= 100)
			s.util_pct = (int)u.gpu;
		else if (rc != NVML_SUCCESS && rc != NVML_ERROR_NOT_SUPPORTED)
			goto fail;
	}
	/* Not supported, or more processes than DEV_PROC_QUERY_MAX: none listed. */
	what = "nvmlDeviceGetComputeRunningProcesses";
	rc = nvml_procs(m, h, d);
	if (rc != NVML_SUCCESS && rc != NVML_ERROR_NOT_SUPPORTED &&
	    rc != NVML_ERROR_INSUFFICIENT_SIZE)
		goto fail;
	if (d->info.uuid[0] == '\0') {
		/* Identified while the GPU did not answer: fill in now. */
		nvml_ident(m, h, d->nv_index, d->info.name, sizeof d->info.name, d->info.uuid,
		    sizeof d->info.uuid);
	}
	dev_good(m, d, &s);
	return 0;
fail:
	snprintf(why, sizeof why, "%s: %s", what, nv_err(m, rc));
	dev_bad(d, why);
	return -1;
}

/* One NVML pass: retry init when it failed, re-enumerate when the count changed,
 * then read every NVIDIA device. Returns the number read. */
static size_t nvml_sample(struct devmon *m)
{
	unsigned int count, known = 0;
	size_t good = 0;
	nvmlReturn_t rc;

	if (m->nvml == NVML_NOT_FOUND || m->dl == NULL)
		return 0;
	if (m->nvml == NVML_FAILED) {
		nvml_up(m);
		if (m->nvml != NVML_UP)
			return 0;
	} else {
		if ((rc = m->nv.count(&count)) != NVML_SUCCESS) {
			nvml_down(m, "nvmlDeviceGetCount_v2", rc);
			m->nv.shutdown();
			return 0;
		}
		for (size_t i = 0; i < m->n; i++)
			if (m->devs[i]->src == SRC_NVIDIA && m->devs[i]->nv_index != DEV_NO_INDEX)
				known++;
		if (count != known && nvml_discover(m) != 0) {
			m->nv.shutdown();
			return 0;
		}
	}
	for (size_t i = 0; i < m->n; i++)
		if (m->devs[i]->src == SRC_NVIDIA && nvml_read(m, m->devs[i]) == 0)
			good++;
	return good;
}

/*
 * AMD through sysfs.
 */

static int card_cmp(const void *a, const void *b)
{
	unsigned int x = *(const unsigned int *)a, y = *(const unsigned int *)b;

	return x < y ? -1 : x > y;
}

/* Finds <sysfs>/class/drm/cardN (N digits only: renderD* and the connectors like
 * card0-DP-1 are skipped) whose device has both mem_info_vram files. */
static void amd_discover(struct devmon *m)
{
	unsigned int cards[DEVICE_MAX * 4];
	size_t ncards = 0, amd = 0;
	char *drm = xasprintf("%s/class/drm", m->sysfs_root);
	struct dirent *de;
	DIR *dir;

	if ((dir = opendir(drm)) == NULL) {
		log_debug("device: %s: %s", drm, strerror(errno));
		free(drm);
		return;
	}
	while ((de = readdir(dir)) != NULL && ncards < sizeof cards / sizeof cards[0]) {
		const char *p = de->d_name + 4;
		uint64_t v;

		if (strncmp(de->d_name, "card", 4) != 0 || parse_u64_at(&p, &v) != 0 ||
		    *p != '\0' || v > 100000)
			continue;
		cards[ncards++] = (unsigned int)v;
	}
	closedir(dir);
	qsort(cards, ncards, sizeof cards[0], card_cmp);

	for (size_t i = 0; i < ncards; i++) {
		char *dev = xasprintf("%s/card%u/device", drm, cards[i]);
		char *total = xasprintf("%s/mem_info_vram_total", dev);
		char *used = xasprintf("%s/mem_info_vram_used", dev);
		char *prod = xasprintf("%s/product_name", dev);
		char id[16], buf[DEV_FILE_MAX];
		struct dev *d;

		if (access(total, R_OK) != 0 || access(used, R_OK) != 0)
			goto next;
		snprintf(id, sizeof id, "amd%zu", amd);
		if ((d = dev_add(m, SRC_AMD, id, "amd")) == NULL)
			goto next;
		amd++;
		d->path = dev;
		dev = NULL;
		d->card = cards[i];
		snprintf(d->info.uuid, sizeof d->info.uuid, "%s/card%u", drm, cards[i]);
		if (read_small(prod, buf, sizeof buf) > 0)
			copy_text(d->info.name, sizeof d->info.name, buf, sizeof buf);
		if (d->info.name[0] == '\0')
			snprintf(d->info.name, sizeof d->info.name, "AMD GPU (card%u)", cards[i]);
next:
		free(dev);
		free(total);
		free(used);
		free(prod);
	}
	free(drm);
}

/* Temperature of an AMD card from the first device/hwmon/hwmon* with a temp1_input,
 * in degrees; -1 when there is none or it does not parse. */
static int amd_temp(const struct dev *d)
{
	char *hw = xasprintf("%s/hwmon", d->path), err[64];
	struct dirent *de;
	uint64_t mdeg;
	int t = -1, missing;
	DIR *dir;

	if ((dir = opendir(hw)) == NULL) {
		free(hw);
		return -1;
	}
	while ((de = readdir(dir)) != NULL) {
		char *sub;
		int rc;

		if (strncmp(de->d_name, "hwmon", 5) != 0)
			continue;
		sub = xasprintf("%s/%s", hw, de->d_name);
		rc = read_u64_file(sub, "temp1_input", &mdeg, err, sizeof err, &missing);
		free(sub);
		if (rc == 0 && mdeg <= 1000000)
			t = (int)((mdeg + 500) / 1000);
		if (rc == 0 || !missing)
			break;
	}
	closedir(dir);
	free(hw);
	return t;
}

static int amd_read(struct devmon *m, struct dev *d)
{
	struct device_sample s = { .t_ms = now_ms(), .temp_c = -1, .util_pct = -1 };
	char err[sizeof d->info.error];
	uint64_t busy;
	int missing;

	if (read_u64_file(d->path, "mem_info_vram_total", &s.total, err, sizeof err,
	    &missing) != 0 ||
	    read_u64_file(d->path, "mem_info_vram_used", &s.used, err, sizeof err,
	    &missing) != 0) {
		dev_bad(d, err);
		return -1;
	}
	s.free = s.total > s.used ? s.total - s.used : 0;
	s.temp_c = amd_temp(d);
	if (read_u64_file(d->path, "gpu_busy_percent", &busy, err, sizeof err, &missing) == 0 &&
	    busy <= 100)
		s.util_pct = (int)busy;
	dev_good(m, d, &s);
	return 0;
}

/*
 * System RAM from /proc/meminfo.
 */

/* Finds "key:   <digits> kB" at the start of a line of buf. Returns 0 and the bytes,
 * 1 when the key is absent, or -1 when it is there but malformed. */
static int meminfo_field(const char *buf, const char *key, uint64_t *bytes)
{
	size_t klen = strlen(key);
	const char *p = buf;
	uint64_t kb;

	for (;;) {
		if (strncmp(p, key, klen) == 0 && p[klen] == ':')
			break;
		if ((p = strchr(p, '\n')) == NULL)
			return 1;
		p++;
	}
	p += klen + 1;
	while (*p == ' ' || *p == '\t')
		p++;
	if (parse_u64_at(&p, &kb) != 0)
		return -1;
	while (*p == ' ' || *p == '\t')
		p++;
	if (strncmp(p, "kB", 2) != 0 || (p[2] != '\n' && p[2] != '\0'))
		return -1;
	if (kb > UINT64_MAX / 1024)
		return -1;
	*bytes = kb * 1024;
	return 0;
}

static int cpu_read(struct devmon *m, struct dev *d)
{
	struct device_sample s = { .t_ms = now_ms(), .temp_c = -1, .util_pct = -1 };
	char *path = xasprintf("%s/meminfo", m->proc_root), buf[DEV_FILE_MAX], why[128];
	uint64_t avail;
	int rc;

	if (read_small(path, buf, sizeof buf) == -1) {
		snprintf(why, sizeof why, "meminfo: %s", strerror(errno));
		goto fail;
	}
	if ((rc = meminfo_field(buf, "MemTotal", &s.total)) != 0) {
		snprintf(why, sizeof why, "meminfo: MemTotal %s",
		    rc > 0 ? "missing" : "not a number of kB");
		goto fail;
	}
	/* MemAvailable is there since Linux 3.14; before, MemFree is the best guess. */
	rc = meminfo_field(buf, "MemAvailable", &avail);
	if (rc > 0)
		rc = meminfo_field(buf, "MemFree", &avail);
	if (rc != 0) {
		snprintf(why, sizeof why, "meminfo: MemAvailable %s",
		    rc > 0 ? "missing" : "not a number of kB");
		goto fail;
	}
	if (avail > s.total)
		avail = s.total;
	s.free = avail;
	s.used = s.total - avail;
	free(path);
	dev_good(m, d, &s);
	return 0;
fail:
	free(path);
	dev_bad(d, why);
	return -1;
}

/*
 * The monitor.
 */

struct devmon *devmon_new(const struct devmon_opts *o)
{
	struct devmon *m = xcalloc(1, sizeof *m);
	struct devmon_opts none = { 0 };
	struct dev *cpu;

	if (o == NULL)
		o = &none;
	m->nvml_lib = o->nvml_lib != NULL ? xstrdup(o->nvml_lib) : NULL;
	m->sysfs_root = xstrdup(o->sysfs_root != NULL ? o->sysfs_root : "/sys");
	m->proc_root = xstrdup(o->proc_root != NULL ? o->proc_root : "/proc");
	m->history = o->history == 0 ? DEV_HISTORY_DEFAULT : o->history;
	if (m->history > DEV_HISTORY_MAX)
		m->history = DEV_HISTORY_MAX;

	cpu = dev_add(m, SRC_CPU, "cpu", "cpu");
	snprintf(cpu->info.name, sizeof cpu->info.name, "System RAM");
	amd_discover(m);
	nvml_open(m);
	if (m->dl != NULL)
		nvml_up(m);
	devmon_sample(m);
	return m;
}

void devmon_free(struct devmon *m)
{
	if (m == NULL)
		return;
	if (m->dl != NULL) {
		if (m->nvml == NVML_UP)
			m->nv.shutdown();
		dlclose(m->dl);
	}
	for (size_t i = 0; i < m->n; i++)
		dev_free(m->devs[i]);
	free(m->nvml_lib);
	free(m->sysfs_root);
	free(m->proc_root);
	free(m);
}

size_t devmon_sample(struct devmon *m)
{
	size_t good = nvml_sample(m);

	for (size_t i = 0; i < m->n; i++) {
		struct dev *d = m->devs[i];
		if (d->src == SRC_AMD && amd_read(m, d) == 0)
			good++;
		else if (d->src == SRC_CPU && cpu_read(m, d) == 0)
			good++;
	}
	return good;
}

size_t devmon_count(const struct devmon *m)
{
	return m->n;
}

const struct device_info *devmon_get(const struct devmon *m, size_t i)
{
	return i < m->n ? &m->devs[i]->info : NULL;
}

size_t devmon_history(const struct devmon *m, size_t i, struct device_sample *out, size_t max)
{
	const struct dev *d;
	size_t n, start;

	if (i >= m->n)
		return 0;
	d = m->devs[i];
	n = d->len < max ? d->len : max;
	/* The newest n, oldest first. */
	start = (d->head + m->history - n) % m->history;
	for (size_t k = 0; k < n; k++)
		out[k] = d->ring[(start + k) % m->history];
	return n;
}

const char *devmon_nvml_status(const struct devmon *m)
{
	return m->nvml_status;
}

int devmon_healthy(const struct devmon *m)
{
	const struct dev *cpu = dev_by_id(m, "cpu");

	return cpu != NULL && cpu->info.ok && m->nvml != NVML_FAILED;
}
