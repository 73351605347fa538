/*
 * device_nvml: the device monitor's NVIDIA source (see device.c). NVML is opened with
 * dlopen and resolved with dlsym, so the daemon builds and runs without CUDA and the
 * tests reach a fake libnvidia-ml.so through this same path. A library that cannot be
 * opened is "not found" for the life of the monitor; a library whose nvmlInit fails is
 * retried on every later sample. GPUs keep their ids across enumerations, matched by
 * UUID. Nothing NVML returns is trusted to be terminated or in range.
 */
#include "device_int.h"
#include "util.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEV_PROC_QUERY_MAX 4096         /* cap on the process list asked of NVML */
#define DEV_PROC_FIRST 16               /* first try at the process list, on the stack */

static const char *nv_err(const struct devmon *m, nvmlReturn_t rc)
{
	const char *s = m->nv.error_string != NULL ? m->nv.error_string(rc) : NULL;

	return s != NULL ? s : "unknown NVML error";
}

/* Opens the library and resolves its symbols. On failure the state says why. */
void device_nvml_open(struct devmon *m)
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
			device_bad(m->devs[i], why);
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
		device_copy_text(uuid, uuidlen, buf, sizeof buf);
	memset(buf, 0, sizeof buf);
	if (m->nv.name != NULL && m->nv.name(h, buf, NVML_NAME_BUFFER) == NVML_SUCCESS &&
	    buf[0] != '\0')
		device_copy_text(name, namelen, buf, sizeof buf);
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
			m->devs[i]->info.index = -1;
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
			while (device_by_id(m, id) != NULL)
				snprintf(id, sizeof id, "gpu%u", ++k);
			if ((d = device_add(m, SRC_NVIDIA, id, "nvidia")) == NULL)
				break;
		}
		d->nv_index = i;
		d->info.index = (int)i;
		if (uuid[0] != '\0')
			snprintf(d->info.uuid, sizeof d->info.uuid, "%s", uuid);
		if (uuid[0] != '\0' || d->info.name[0] == '\0')
			snprintf(d->info.name, sizeof d->info.name, "%s", name);
	}
	return 0;
}

/* Brings NVML up: init, then enumerate. */
void device_nvml_up(struct devmon *m)
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
	struct device_sample s = { .t_ms = device_now_ms(), .temp_c = -1, .util_pct = -1 };
	nvmlUtilization_t u;
	nvmlMemory_t mem;
	nvmlDevice_t h;
	nvmlReturn_t rc;
	unsigned int t;
	char why[128];
	const char *what;

	if (d->nv_index == DEV_NO_INDEX) {
		device_bad(d, "gone: NVML no longer lists this GPU");
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
	device_good(m, d, &s);
	return 0;
fail:
	snprintf(why, sizeof why, "%s: %s", what, nv_err(m, rc));
	device_bad(d, why);
	return -1;
}

/* One NVML pass: retry init when it failed, re-enumerate when the count changed,
 * then read every NVIDIA device. Returns the number read. */
size_t device_nvml_sample(struct devmon *m)
{
	unsigned int count, known = 0;
	size_t good = 0;
	nvmlReturn_t rc;

	if (m->nvml == NVML_NOT_FOUND || m->dl == NULL)
		return 0;
	if (m->nvml == NVML_FAILED) {
		device_nvml_up(m);
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
