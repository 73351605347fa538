/*
 * fake_nvml: a TEST DOUBLE of NVIDIA's libnvidia-ml.so. The tests build it as a shared
 * library named libnvidia-ml.so and the device monitor reaches it through its
 * production path (dlopen, dlsym), so that path is exercised without a GPU. It
 * implements only the NVML calls that src/host/device.c makes, with NVML's signatures,
 * codes and struct layouts (see the note in device.c).
 *
 * Its readings come from the file named by the environment variable FAKE_NVML_STATE,
 * read again on every call, so a test (or the daemon's test) can change them while the
 * monitor runs. One directive a line, '#' starts a comment:
 *
 *   count N                  how many GPUs nvmlDeviceGetCount reports
 *   gpu I key=value ...      GPU I: name="NVIDIA H100" uuid=GPU-... total=BYTES
 *                            used=BYTES temp=C util=P procs=PID:BYTES,PID:BYTES
 *                            error=CODE (every call on this GPU fails with CODE)
 *   init_error CODE          nvmlInit fails with CODE
 *   error CODE               every call on any GPU handle fails with CODE
 *
 * Values are a bare word or "a quoted string" (no escapes). No state file, or an
 * unset variable, reads as a machine without a driver: nvmlInit says Driver Not Loaded.
 * A line the fake does not understand makes every call fail with Unknown Error and is
 * reported on stderr, so a typo in a test shows. Built with -DFAKE_NVML_V1_ONLY it
 * exports only the legacy nvmlDeviceGetComputeRunningProcesses (no _v3), to exercise
 * the monitor's fallback.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int nvmlReturn_t;
typedef struct nvmlDevice_st *nvmlDevice_t;

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

enum {
	NVML_SUCCESS = 0,
	NVML_ERROR_UNINITIALIZED = 1,
	NVML_ERROR_INVALID_ARGUMENT = 2,
	NVML_ERROR_NOT_SUPPORTED = 3,
	NVML_ERROR_INSUFFICIENT_SIZE = 7,
	NVML_ERROR_DRIVER_NOT_LOADED = 9,
	NVML_ERROR_UNKNOWN = 999,
};

#define FAKE_GPUS 16
#define FAKE_PROCS 256
#define FAKE_LINE 16384

struct fake_gpu {
	char name[96];
	char uuid[96];
	unsigned long long total, used;
	unsigned int temp, util;
	int error;
	unsigned int nprocs;
	unsigned int pid[FAKE_PROCS];
	unsigned long long mem[FAKE_PROCS];
};

struct fake_state {
	unsigned int count;
	int init_error;
	int error;
	struct fake_gpu gpu[FAKE_GPUS];
};

static struct fake_state st;
static int initialised;                 /* nvmlInit's reference count */
static char handles[FAKE_GPUS];         /* a handle is the address of one of these */

/* Takes the next word or quoted string from *p into out. Returns 0, or -1 at the end. */
static int next_value(char **p, char *out, size_t len)
{
	char *s = *p, *e;
	size_t n;

	if (*s == '"') {
		if ((e = strchr(++s, '"')) == NULL)
			return -1;
		*p = e + 1;
	} else {
		e = s + strcspn(s, " \t\n");
		*p = e;
	}
	n = (size_t)(e - s);
	if (n >= len)
		n = len - 1;
	memcpy(out, s, n);
	out[n] = '\0';
	return 0;
}

static int number(const char *s, unsigned long long *v)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	*v = strtoull(s, &end, 10);
	return *end == '\0' ? 0 : -1;
}

static int parse_procs(struct fake_gpu *g, char *s)
{
	unsigned long long pid, mem;
	char *tok, *save = NULL, *colon;

	g->nprocs = 0;
	for (tok = strtok_r(s, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		if ((colon = strchr(tok, ':')) == NULL || g->nprocs == FAKE_PROCS)
			return -1;
		*colon = '\0';
		if (number(tok, &pid) != 0 || number(colon + 1, &mem) != 0)
			return -1;
		g->pid[g->nprocs] = (unsigned int)pid;
		g->mem[g->nprocs++] = mem;
	}
	return 0;
}

/* Copies s into dst, cut short to fit. */
static void set(char *dst, size_t len, const char *s)
{
	size_t n = strnlen(s, len - 1);

	memcpy(dst, s, n);
	dst[n] = '\0';
}

static int parse_gpu(char *p)
{
	unsigned long long i, v;
	char key[32], val[FAKE_LINE], *eq;
	struct fake_gpu *g;

	p += strspn(p, " \t");
	if (next_value(&p, val, sizeof val) != 0 || number(val, &i) != 0 || i >= FAKE_GPUS)
		return -1;
	g = &st.gpu[i];
	for (;;) {
		p += strspn(p, " \t\n");
		if (*p == '\0')
			return 0;
		if ((eq = strchr(p, '=')) == NULL || (size_t)(eq - p) >= sizeof key)
			return -1;
		memcpy(key, p, (size_t)(eq - p));
		key[eq - p] = '\0';
		p = eq + 1;
		if (next_value(&p, val, sizeof val) != 0)
			return -1;
		if (strcmp(key, "name") == 0)
			set(g->name, sizeof g->name, val);
		else if (strcmp(key, "uuid") == 0)
			set(g->uuid, sizeof g->uuid, val);
		else if (strcmp(key, "procs") == 0) {
			if (parse_procs(g, val) != 0)
				return -1;
		} else if (number(val, &v) != 0)
			return -1;
		else if (strcmp(key, "total") == 0)
			g->total = v;
		else if (strcmp(key, "used") == 0)
			g->used = v;
		else if (strcmp(key, "temp") == 0)
			g->temp = (unsigned int)v;
		else if (strcmp(key, "util") == 0)
			g->util = (unsigned int)v;
		else if (strcmp(key, "error") == 0)
			g->error = (int)v;
		else
			return -1;
	}
}

/* Reads the state file into st. Returns NVML_SUCCESS, or the code every call returns. */
static nvmlReturn_t load(void)
{
	const char *path = getenv("FAKE_NVML_STATE");
	static char line[FAKE_LINE];
	unsigned long long v;
	int lineno = 0, rc = NVML_SUCCESS;
	FILE *f;

	memset(&st, 0, sizeof st);
	if (path == NULL || (f = fopen(path, "r")) == NULL) {
		st.init_error = NVML_ERROR_DRIVER_NOT_LOADED;
		return NVML_SUCCESS;
	}
	while (fgets(line, sizeof line, f) != NULL) {
		char *p = line + strspn(line, " \t"), word[32];
		int bad = 0;

		lineno++;
		if (*p == '#' || *p == '\n' || *p == '\0')
			continue;
		if (next_value(&p, word, sizeof word) != 0)
			bad = 1;
		else if (strcmp(word, "gpu") == 0)
			bad = parse_gpu(p) != 0;
		else {
			char val[32];
			p += strspn(p, " \t");
			if (next_value(&p, val, sizeof val) != 0 || number(val, &v) != 0)
				bad = 1;
			else if (strcmp(word, "count") == 0 && v <= FAKE_GPUS)
				st.count = (unsigned int)v;
			else if (strcmp(word, "init_error") == 0)
				st.init_error = (int)v;
			else if (strcmp(word, "error") == 0)
				st.error = (int)v;
			else
				bad = 1;
		}
		if (bad) {
			fprintf(stderr, "fake_nvml: %s:%d: cannot parse this line\n", path, lineno);
			rc = NVML_ERROR_UNKNOWN;
		}
	}
	fclose(f);
	return rc;
}

/* Loads the state and checks a GPU handle: the common start of every device call. */
static nvmlReturn_t device(nvmlDevice_t h, struct fake_gpu **g)
{
	char *c = (char *)h;
	nvmlReturn_t rc;

	if ((rc = load()) != NVML_SUCCESS)
		return rc;
	if (!initialised)
		return NVML_ERROR_UNINITIALIZED;
	if (c < handles || c >= handles + FAKE_GPUS || (unsigned int)(c - handles) >= st.count)
		return NVML_ERROR_INVALID_ARGUMENT;
	*g = &st.gpu[c - handles];
	if (st.error != 0)
		return st.error;
	return (*g)->error;
}

nvmlReturn_t nvmlInit_v2(void)
{
	nvmlReturn_t rc;

	if ((rc = load()) != NVML_SUCCESS)
		return rc;
	if (st.init_error != 0)
		return st.init_error;
	initialised++;
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlShutdown(void)
{
	if (!initialised)
		return NVML_ERROR_UNINITIALIZED;
	initialised--;
	return NVML_SUCCESS;
}

const char *nvmlErrorString(nvmlReturn_t rc)
{
	switch (rc) {
	case 0: return "Success";
	case 1: return "Uninitialized";
	case 2: return "Invalid Argument";
	case 3: return "Not Supported";
	case 4: return "Insufficient Permissions";
	case 7: return "Insufficient Size";
	case 9: return "Driver Not Loaded";
	case 12: return "Library Not Found";
	case 15: return "GPU is lost";
	case 999: return "Unknown Error";
	default: return "Unknown Error (fake_nvml)";
	}
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count)
{
	nvmlReturn_t rc;

	if ((rc = load()) != NVML_SUCCESS)
		return rc;
	if (!initialised)
		return NVML_ERROR_UNINITIALIZED;
	if (count == NULL)
		return NVML_ERROR_INVALID_ARGUMENT;
	*count = st.count;
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int i, nvmlDevice_t *h)
{
	nvmlReturn_t rc;

	if ((rc = load()) != NVML_SUCCESS)
		return rc;
	if (!initialised)
		return NVML_ERROR_UNINITIALIZED;
	if (h == NULL || i >= st.count)
		return NVML_ERROR_INVALID_ARGUMENT;
	*h = (nvmlDevice_t)(void *)&handles[i];
	return NVML_SUCCESS;
}

/* Copies s into a caller's buffer of len bytes, as NVML does: too small is an error. */
static nvmlReturn_t put_string(char *buf, unsigned int len, const char *s)
{
	if (buf == NULL)
		return NVML_ERROR_INVALID_ARGUMENT;
	if (strlen(s) + 1 > len)
		return NVML_ERROR_INSUFFICIENT_SIZE;
	memcpy(buf, s, strlen(s) + 1);
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t h, char *name, unsigned int len)
{
	struct fake_gpu *g;
	nvmlReturn_t rc;

	if ((rc = device(h, &g)) != NVML_SUCCESS)
		return rc;
	return put_string(name, len, g->name);
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t h, char *uuid, unsigned int len)
{
	struct fake_gpu *g;
	nvmlReturn_t rc;

	if ((rc = device(h, &g)) != NVML_SUCCESS)
		return rc;
	return put_string(uuid, len, g->uuid);
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t h, nvmlMemory_t *mem)
{
	struct fake_gpu *g;
	nvmlReturn_t rc;

	if ((rc = device(h, &g)) != NVML_SUCCESS)
		return rc;
	if (mem == NULL)
		return NVML_ERROR_INVALID_ARGUMENT;
	mem->total = g->total;
	mem->used = g->used;
	mem->free = g->total > g->used ? g->total - g->used : 0;
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t h, int sensor, unsigned int *temp)
{
	struct fake_gpu *g;
	nvmlReturn_t rc;

	if ((rc = device(h, &g)) != NVML_SUCCESS)
		return rc;
	if (sensor != 0 || temp == NULL)
		return NVML_ERROR_INVALID_ARGUMENT;
	*temp = g->temp;
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t h, nvmlUtilization_t *u)
{
	struct fake_gpu *g;
	nvmlReturn_t rc;

	if ((rc = device(h, &g)) != NVML_SUCCESS)
		return rc;
	if (u == NULL)
		return NVML_ERROR_INVALID_ARGUMENT;
	u->gpu = g->util;
	u->memory = 0;
	return NVML_SUCCESS;
}

/* The process list as NVML gives it: when *count is too small, nothing is written,
 * *count says how many there are and the answer is Insufficient Size. */
static nvmlReturn_t procs(nvmlDevice_t h, unsigned int *count, nvmlProcessInfo_v2_t *v2,
    nvmlProcessInfo_v1_t *v1)
{
	struct fake_gpu *g;
	nvmlReturn_t rc;

	if ((rc = device(h, &g)) != NVML_SUCCESS)
		return rc;
	if (count == NULL)
		return NVML_ERROR_INVALID_ARGUMENT;
	if (*count < g->nprocs) {
		*count = g->nprocs;
		return NVML_ERROR_INSUFFICIENT_SIZE;
	}
	if (g->nprocs > 0 && v2 == NULL && v1 == NULL)
		return NVML_ERROR_INVALID_ARGUMENT;
	for (unsigned int i = 0; i < g->nprocs; i++) {
		if (v2 != NULL) {
			v2[i].pid = g->pid[i];
			v2[i].usedGpuMemory = g->mem[i];
			v2[i].gpuInstanceId = 0xffffffffu;
			v2[i].computeInstanceId = 0xffffffffu;
		} else {
			v1[i].pid = g->pid[i];
			v1[i].usedGpuMemory = g->mem[i];
		}
	}
	*count = g->nprocs;
	return NVML_SUCCESS;
}

#ifndef FAKE_NVML_V1_ONLY
nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t h, unsigned int *count,
    nvmlProcessInfo_v2_t *infos)
{
	return procs(h, count, infos, NULL);
}
#endif

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses(nvmlDevice_t h, unsigned int *count,
    nvmlProcessInfo_v1_t *infos)
{
	return procs(h, count, NULL, infos);
}
