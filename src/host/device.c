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
 *
 * NVML lives in device_nvml.c; what the two files share is in device_int.h.
 */
#include "device_int.h"
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

uint64_t device_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Copies at most len bytes of s (not trusted to be terminated) into dst, stopping at
 * the first NUL or control character, so a name from a driver prints on one line. */
void device_copy_text(char *dst, size_t dstlen, const char *s, size_t len)
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
	device_copy_text(dst, dstlen, s, SIZE_MAX);
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
struct dev *device_add(struct devmon *m, enum dev_src src, const char *id, const char *kind)
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
	d->info.index = -1;
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

struct dev *device_by_id(const struct devmon *m, const char *id)
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
void device_good(struct devmon *m, struct dev *d, const struct device_sample *s)
{
	d->info.now = *s;
	d->info.ok = 1;
	d->info.error[0] = '\0';
	d->ring[d->head] = *s;
	d->head = (d->head + 1) % m->history;
	if (d->len < m->history)
		d->len++;
}

void device_bad(struct dev *d, const char *why)
{
	d->info.ok = 0;
	set_text(d->info.error, sizeof d->info.error, why);
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
		if ((d = device_add(m, SRC_AMD, id, "amd")) == NULL)
			goto next;
		amd++;
		d->path = dev;
		dev = NULL;
		d->card = cards[i];
		snprintf(d->info.uuid, sizeof d->info.uuid, "%s/card%u", drm, cards[i]);
		if (read_small(prod, buf, sizeof buf) > 0)
			device_copy_text(d->info.name, sizeof d->info.name, buf, sizeof buf);
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
	struct device_sample s = { .t_ms = device_now_ms(), .temp_c = -1, .util_pct = -1 };
	char err[sizeof d->info.error];
	uint64_t busy;
	int missing;

	if (read_u64_file(d->path, "mem_info_vram_total", &s.total, err, sizeof err,
	    &missing) != 0 ||
	    read_u64_file(d->path, "mem_info_vram_used", &s.used, err, sizeof err,
	    &missing) != 0) {
		device_bad(d, err);
		return -1;
	}
	s.free = s.total > s.used ? s.total - s.used : 0;
	s.temp_c = amd_temp(d);
	if (read_u64_file(d->path, "gpu_busy_percent", &busy, err, sizeof err, &missing) == 0 &&
	    busy <= 100)
		s.util_pct = (int)busy;
	device_good(m, d, &s);
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
	struct device_sample s = { .t_ms = device_now_ms(), .temp_c = -1, .util_pct = -1 };
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
	device_good(m, d, &s);
	return 0;
fail:
	free(path);
	device_bad(d, why);
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

	cpu = device_add(m, SRC_CPU, "cpu", "cpu");
	snprintf(cpu->info.name, sizeof cpu->info.name, "System RAM");
	amd_discover(m);
	device_nvml_open(m);
	if (m->dl != NULL)
		device_nvml_up(m);
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
	size_t good = device_nvml_sample(m);

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
	const struct dev *cpu = device_by_id(m, "cpu");

	return cpu != NULL && cpu->info.ok && m->nvml != NVML_FAILED;
}
