/*
 * test_device: the live device monitor. NVIDIA GPUs are read from the fake
 * libnvidia-ml.so that the tests build (tests/fake_nvml.c), opened through the same
 * dlopen path as in production and steered by a state file the tests rewrite between
 * samples; AMD GPUs and system RAM from a fake sysfs tree and /proc/meminfo in the test's
 * temporary folder. Also the machine's own default search for NVML, which must not
 * crash whether or not a driver is there.
 */
#include "testutil.h"
#include "device.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define GiB (1024ull * 1024 * 1024)
#define MiB (1024ull * 1024)

#ifndef FAKE_NVML_PATH
#error "FAKE_NVML_PATH: the path of the fake libnvidia-ml.so, set by tests/CMakeLists.txt"
#endif

/* mkdir -p of the folder that holds path. */
static void mkparents(const char *path)
{
	char *p = xstrdup(path);

	for (char *s = strchr(p + 1, '/'); s != NULL; s = strchr(s + 1, '/')) {
		*s = '\0';
		if (mkdir(p, 0755) != 0 && errno != EEXIST)
			fail_msg("mkdir %s: %s", p, strerror(errno));
		*s = '/';
	}
	free(p);
}

/* Writes text to root/rel, making the folders on the way. */
static void put(const char *root, const char *rel, const char *text)
{
	char *path = xasprintf("%s/%s", root, rel);

	mkparents(path);
	if (tu_write_file(path, text, strlen(text)) != 0)
		fail_msg("cannot write %s", path);
	free(path);
}

/* A fresh folder under the test's temporary folder, with a proc/meminfo of 16 GiB,
 * 10 GiB available, and an empty sys/. Heap path; free(). */
static char *fresh_root(const char *name)
{
	char *root = tu_path(name);

	put(root, "proc/meminfo",
	    "MemTotal:       16777216 kB\n"
	    "MemFree:         1048576 kB\n"
	    "MemAvailable:   10485760 kB\n"
	    "Buffers:          123456 kB\n");
	put(root, "sys/class/drm/.keep", "");
	return root;
}

/* Points the fake NVML at root/nvml-state with the given content. */
static void nvml_state(const char *root, const char *text)
{
	char *path = xasprintf("%s/nvml-state", root);

	put(root, "nvml-state", text);
	setenv("FAKE_NVML_STATE", path, 1);
	free(path);
}

static struct devmon *monitor(const char *root, const char *lib, size_t history)
{
	char *sys = xasprintf("%s/sys", root), *proc = xasprintf("%s/proc", root);
	struct devmon_opts o = { .nvml_lib = lib, .sysfs_root = sys, .proc_root = proc,
	    .history = history };
	struct devmon *m = devmon_new(&o);

	/* The monitor keeps its own copies. */
	free(sys);
	free(proc);
	assert_non_null(m);
	return m;
}

static const struct device_info *find(const struct devmon *m, const char *id)
{
	for (size_t i = 0; i < devmon_count(m); i++)
		if (strcmp(devmon_get(m, i)->id, id) == 0)
			return devmon_get(m, i);
	return NULL;
}

static size_t index_of(const struct devmon *m, const char *id)
{
	for (size_t i = 0; i < devmon_count(m); i++)
		if (strcmp(devmon_get(m, i)->id, id) == 0)
			return i;
	fail_msg("no device %s", id);
	return 0;
}

static const struct device_info *must(const struct devmon *m, const char *id)
{
	const struct device_info *d = find(m, id);

	if (d == NULL)
		fail_msg("no device %s", id);
	return d;
}

static const char two_gpus[] =
    "# two GPUs, the first with two processes\n"
    "count 2\n"
    "gpu 0 name=\"NVIDIA H100 80GB HBM3\" uuid=GPU-aaaa-0000 total=85899345920 "
    "used=4294967296 temp=41 util=12 procs=1234:1073741824,5678:2147483648\n"
    "gpu 1 name=\"NVIDIA GeForce RTX 4090\" uuid=GPU-bbbb-1111 total=25757220864 "
    "used=536870912 temp=55 util=99 procs=\n";

static void test_two_gpus(void **state)
{
	char *root = fresh_root("two");
	struct devmon *m;
	const struct device_info *g0, *g1, *cpu;

	(void)state;
	nvml_state(root, two_gpus);
	m = monitor(root, FAKE_NVML_PATH, 0);
	assert_string_equal(devmon_nvml_status(m), "ok");
	assert_true(devmon_healthy(m));
	assert_int_equal(devmon_count(m), 3);
	/* NVIDIA first, the cpu last */
	assert_string_equal(devmon_get(m, 0)->id, "gpu0");
	assert_string_equal(devmon_get(m, 1)->id, "gpu1");
	assert_string_equal(devmon_get(m, 2)->id, "cpu");

	g0 = must(m, "gpu0");
	assert_true(g0->ok);
	assert_string_equal(g0->kind, "nvidia");
	assert_string_equal(g0->name, "NVIDIA H100 80GB HBM3");
	assert_string_equal(g0->uuid, "GPU-aaaa-0000");
	assert_int_equal(g0->now.total, 80 * GiB);
	assert_int_equal(g0->now.used, 4 * GiB);
	assert_int_equal(g0->now.free, 76 * GiB);
	assert_int_equal(g0->now.temp_c, 41);
	assert_int_equal(g0->now.util_pct, 12);
	assert_true(g0->now.t_ms > 1600000000000ull);
	/* largest first */
	assert_int_equal(g0->n_procs, 2);
	assert_int_equal(g0->procs[0].pid, 5678);
	assert_int_equal(g0->procs[0].used, 2 * GiB);
	assert_int_equal(g0->procs[1].pid, 1234);
	assert_int_equal(g0->procs[1].used, 1 * GiB);

	g1 = must(m, "gpu1");
	assert_true(g1->ok);
	assert_string_equal(g1->name, "NVIDIA GeForce RTX 4090");
	assert_string_equal(g1->uuid, "GPU-bbbb-1111");
	assert_int_equal(g1->now.total, 25757220864ull);
	assert_int_equal(g1->now.used, 512 * MiB);
	assert_int_equal(g1->now.free, 25757220864ull - 512 * MiB);
	assert_int_equal(g1->now.temp_c, 55);
	assert_int_equal(g1->now.util_pct, 99);
	assert_int_equal(g1->n_procs, 0);

	cpu = must(m, "cpu");
	assert_true(cpu->ok);
	assert_string_equal(cpu->kind, "cpu");
	assert_string_equal(cpu->name, "System RAM");
	assert_string_equal(cpu->uuid, "");
	assert_int_equal(cpu->now.total, 16 * GiB);
	assert_int_equal(cpu->now.free, 10 * GiB);
	assert_int_equal(cpu->now.used, 6 * GiB);
	assert_int_equal(cpu->now.temp_c, -1);
	assert_int_equal(cpu->now.util_pct, -1);

	assert_int_equal(devmon_sample(m), 3);
	devmon_free(m);
	free(root);
}

static void write_reading(const char *root, int used_gib, int temp, int util)
{
	char *text = xasprintf("count 1\ngpu 0 name=G uuid=GPU-h total=%llu used=%llu temp=%d "
	    "util=%d procs=42:%llu\n", 24 * GiB, (unsigned long long)used_gib * GiB, temp, util,
	    (unsigned long long)used_gib * GiB);

	nvml_state(root, text);
	free(text);
}

static void test_history(void **state)
{
	char *root = fresh_root("history");
	struct device_sample h[8];
	struct devmon *m;
	size_t gi, n;

	(void)state;
	write_reading(root, 1, 31, 10);
	m = monitor(root, FAKE_NVML_PATH, 4);      /* first sample: 1 GiB */
	gi = index_of(m, "gpu0");
	for (int i = 2; i <= 3; i++) {
		write_reading(root, i, 30 + i, 10 * i);
		assert_int_equal(devmon_sample(m), 2);
	}
	assert_int_equal(devmon_get(m, gi)->now.used, 3 * GiB);
	assert_int_equal(devmon_get(m, gi)->procs[0].used, 3 * GiB);
	n = devmon_history(m, gi, h, 8);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(h[i].used, (i + 1) * GiB);
		assert_int_equal(h[i].free, (24 - (i + 1)) * GiB);
		assert_int_equal(h[i].temp_c, 31 + (int)i);
		assert_int_equal(h[i].util_pct, 10 * ((int)i + 1));
		if (i > 0)
			assert_true(h[i].t_ms >= h[i - 1].t_ms);
	}

	/* The ring keeps the newest four, oldest first. */
	for (int i = 4; i <= 6; i++) {
		write_reading(root, i, 30 + i, 10 * i);
		devmon_sample(m);
	}
	n = devmon_history(m, gi, h, 8);
	assert_int_equal(n, 4);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(h[i].used, (i + 3) * GiB);
	/* Fewer asked: the newest ones. */
	n = devmon_history(m, gi, h, 2);
	assert_int_equal(n, 2);
	assert_int_equal(h[0].used, 5 * GiB);
	assert_int_equal(h[1].used, 6 * GiB);
	/* The cpu has history too; out of range has none. */
	assert_int_equal(devmon_history(m, index_of(m, "cpu"), h, 8), 4);
	assert_int_equal(devmon_history(m, devmon_count(m), h, 8), 0);
	devmon_free(m);
	free(root);
}

static void test_nvml_device_errors(void **state)
{
	char *root = fresh_root("deverr");
	struct device_sample h[8];
	const struct device_info *g0, *g1;
	struct devmon *m;
	char *text;

	(void)state;
	nvml_state(root, two_gpus);
	m = monitor(root, FAKE_NVML_PATH, 0);

	/* Every GPU call fails: both GPUs not ok with NVML's text, the cpu still reads. */
	text = xasprintf("%serror 15\n", two_gpus);
	nvml_state(root, text);
	free(text);
	assert_int_equal(devmon_sample(m), 1);
	g0 = must(m, "gpu0");
	g1 = must(m, "gpu1");
	assert_false(g0->ok);
	assert_false(g1->ok);
	assert_non_null(strstr(g0->error, "GPU is lost"));
	assert_non_null(strstr(g1->error, "nvmlDeviceGetMemoryInfo"));
	/* the last good reading stays, marked not ok */
	assert_int_equal(g0->now.used, 4 * GiB);
	assert_true(must(m, "cpu")->ok);
	assert_string_equal(devmon_nvml_status(m), "ok");

	/* One GPU fails on its own. */
	text = xasprintf("%sgpu 1 error=3\n", two_gpus);
	nvml_state(root, text);
	free(text);
	assert_int_equal(devmon_sample(m), 2);
	assert_true(must(m, "gpu0")->ok);
	assert_false(must(m, "gpu1")->ok);
	assert_non_null(strstr(must(m, "gpu1")->error, "Not Supported"));

	/* Recovery: all read again; failed readings never entered the history. */
	nvml_state(root, two_gpus);
	assert_int_equal(devmon_sample(m), 3);
	assert_true(must(m, "gpu0")->ok);
	assert_true(must(m, "gpu1")->ok);
	assert_string_equal(must(m, "gpu1")->error, "");
	assert_int_equal(devmon_history(m, index_of(m, "gpu1"), h, 8), 2);
	assert_int_equal(devmon_history(m, index_of(m, "gpu0"), h, 8), 3);

	/* A state file the fake cannot read: every call fails, nothing crashes. */
	nvml_state(root, "count 2\nthis is not a directive\n");
	devmon_sample(m);
	assert_false(must(m, "gpu0")->ok);
	assert_true(must(m, "cpu")->ok);
	nvml_state(root, two_gpus);
	devmon_sample(m);
	assert_true(must(m, "gpu0")->ok);
	assert_true(must(m, "gpu1")->ok);
	assert_string_equal(devmon_nvml_status(m), "ok");
	assert_true(devmon_healthy(m));
	devmon_free(m);
	free(root);
}

static void test_nvml_init_error_and_recovery(void **state)
{
	char *root = fresh_root("initerr");
	struct devmon *m;
	char *text;

	(void)state;
	text = xasprintf("%sinit_error 9\n", two_gpus);
	nvml_state(root, text);
	free(text);
	m = monitor(root, FAKE_NVML_PATH, 0);
	assert_string_equal(devmon_nvml_status(m), "error: nvmlInit_v2: Driver Not Loaded");
	assert_false(devmon_healthy(m));
	assert_int_equal(devmon_count(m), 1);
	assert_true(must(m, "cpu")->ok);
	/* still down on the next sample */
	assert_int_equal(devmon_sample(m), 1);
	assert_false(devmon_healthy(m));

	/* The driver comes back: the GPUs are found on the next sample. */
	nvml_state(root, two_gpus);
	assert_int_equal(devmon_sample(m), 3);
	assert_string_equal(devmon_nvml_status(m), "ok");
	assert_true(devmon_healthy(m));
	assert_string_equal(must(m, "gpu0")->uuid, "GPU-aaaa-0000");
	assert_string_equal(must(m, "gpu1")->name, "NVIDIA GeForce RTX 4090");

	/* No state file at all reads as no driver. */
	unsetenv("FAKE_NVML_STATE");
	devmon_free(m);
	m = monitor(root, FAKE_NVML_PATH, 0);
	assert_string_equal(devmon_nvml_status(m), "error: nvmlInit_v2: Driver Not Loaded");
	devmon_free(m);
	free(root);
}

static void test_stable_ids(void **state)
{
	char *root = fresh_root("ids");
	const struct device_info *a, *b;
	struct devmon *m;

	(void)state;
	nvml_state(root, "count 1\ngpu 0 name=A uuid=GPU-A total=1000 used=100 temp=1 util=1\n");
	m = monitor(root, FAKE_NVML_PATH, 0);
	assert_string_equal(must(m, "gpu0")->uuid, "GPU-A");

	/* A second GPU appears before it in NVML's order: A keeps gpu0 and its readings. */
	nvml_state(root, "count 2\n"
	    "gpu 0 name=B uuid=GPU-B total=2000 used=200 temp=2 util=2\n"
	    "gpu 1 name=A uuid=GPU-A total=1000 used=300 temp=3 util=3\n");
	assert_int_equal(devmon_sample(m), 3);
	a = must(m, "gpu0");
	b = must(m, "gpu1");
	assert_string_equal(a->uuid, "GPU-A");
	assert_int_equal(a->now.used, 300);
	assert_string_equal(b->uuid, "GPU-B");
	assert_string_equal(b->name, "B");
	assert_int_equal(b->now.used, 200);

	/* A goes away: still listed under its id, not ok; B reads on. */
	nvml_state(root, "count 1\ngpu 0 name=B uuid=GPU-B total=2000 used=250 temp=2 util=2\n");
	assert_int_equal(devmon_sample(m), 2);
	a = must(m, "gpu0");
	b = must(m, "gpu1");
	assert_false(a->ok);
	assert_non_null(strstr(a->error, "gone"));
	assert_true(b->ok);
	assert_int_equal(b->now.used, 250);

	/* and comes back under the same id */
	nvml_state(root, "count 2\n"
	    "gpu 0 name=A uuid=GPU-A total=1000 used=400 temp=3 util=3\n"
	    "gpu 1 name=B uuid=GPU-B total=2000 used=260 temp=2 util=2\n");
	assert_int_equal(devmon_sample(m), 3);
	assert_true(must(m, "gpu0")->ok);
	assert_int_equal(must(m, "gpu0")->now.used, 400);
	assert_int_equal(must(m, "gpu1")->now.used, 260);
	assert_int_equal(devmon_count(m), 3);
	devmon_free(m);
	free(root);
}

static void test_many_procs(void **state)
{
	char *root = fresh_root("procs"), *list = xstrdup(""), *text;
	const struct device_info *g;
	struct devmon *m;

	(void)state;
	/* 100 processes (more than the first query and than DEVICE_MAX_PROCS); pid p
	 * uses p MiB, so the 64 kept are pids 100 down to 37. */
	for (int p = 1; p <= 100; p++) {
		char *next = xasprintf("%s%s%d:%llu", list, p > 1 ? "," : "", p,
		    (unsigned long long)p * MiB);
		free(list);
		list = next;
	}
	text = xasprintf("count 1\ngpu 0 name=P uuid=GPU-P total=%llu used=%llu temp=50 "
	    "util=50 procs=%s\n", 80 * GiB, 5050 * MiB, list);
	nvml_state(root, text);
	m = monitor(root, FAKE_NVML_PATH, 0);
	g = must(m, "gpu0");
	assert_true(g->ok);
	assert_int_equal(g->n_procs, DEVICE_MAX_PROCS);
	assert_int_equal(g->procs[0].pid, 100);
	assert_int_equal(g->procs[0].used, 100 * MiB);
	assert_int_equal(g->procs[DEVICE_MAX_PROCS - 1].pid, 100 - DEVICE_MAX_PROCS + 1);
	devmon_free(m);
	free(text);
	free(list);
	free(root);
}

#ifdef FAKE_NVML_V1_PATH
/* A library without _v3 of the process call: the legacy one, with its own layout. */
static void test_procs_v1_fallback(void **state)
{
	char *root = fresh_root("v1");
	const struct device_info *g;
	struct devmon *m;

	(void)state;
	nvml_state(root, two_gpus);
	m = monitor(root, FAKE_NVML_V1_PATH, 0);
	g = must(m, "gpu0");
	assert_true(g->ok);
	assert_int_equal(g->n_procs, 2);
	assert_int_equal(g->procs[0].pid, 5678);
	assert_int_equal(g->procs[0].used, 2 * GiB);
	assert_int_equal(g->procs[1].pid, 1234);
	assert_int_equal(g->procs[1].used, 1 * GiB);
	devmon_free(m);
	free(root);
}
#endif

static void test_missing_library(void **state)
{
	char *root = fresh_root("missing");
	struct devmon *m;

	(void)state;
	m = monitor(root, "/nonexistent/libnvidia-ml.so", 0);
	assert_true(strncmp(devmon_nvml_status(m), "not found (", 11) == 0);
	assert_non_null(strstr(devmon_nvml_status(m), "/nonexistent/libnvidia-ml.so"));
	assert_int_equal(devmon_count(m), 1);
	assert_true(must(m, "cpu")->ok);
	assert_true(devmon_healthy(m));
	assert_int_equal(devmon_sample(m), 1);
	devmon_free(m);

	/* A file that is not a library is not found either. */
	put(root, "junk.so", "not an ELF file\n");
	{
		char *junk = xasprintf("%s/junk.so", root);
		m = monitor(root, junk, 0);
		free(junk);
	}
	assert_true(strncmp(devmon_nvml_status(m), "not found (", 11) == 0);
	assert_true(devmon_healthy(m));
	devmon_free(m);
	free(root);
}

/* The machine's own NVML search: libnvidia-ml.so.1, then libnvidia-ml.so, real /sys
 * and /proc. Here (no driver, and ctest sets no LD_LIBRARY_PATH) it is "not found"; on
 * a machine with NVIDIA's driver it must read the real GPUs. Either way, no crash. */
static void test_default_search(void **state)
{
	struct devmon *m = devmon_new(NULL);
	const char *st = devmon_nvml_status(m);

	(void)state;
	assert_non_null(m);
	assert_true(must(m, "cpu")->ok);
	assert_true(must(m, "cpu")->now.total > 0);
	if (strncmp(st, "not found (", 11) == 0) {
		assert_null(find(m, "gpu0"));
		assert_true(devmon_healthy(m));
	} else {
		print_message("NVML on this machine: %s\n", st);
		for (size_t i = 0; i < devmon_count(m); i++) {
			const struct device_info *d = devmon_get(m, i);
			print_message("  %s %s %s ok=%d total=%llu used=%llu free=%llu temp=%d "
			    "util=%d procs=%zu %s\n", d->id, d->name, d->uuid, d->ok,
			    (unsigned long long)d->now.total, (unsigned long long)d->now.used,
			    (unsigned long long)d->now.free, d->now.temp_c, d->now.util_pct,
			    d->n_procs, d->error);
			if (strcmp(d->kind, "nvidia") == 0 && d->ok) {
				assert_true(d->now.total > 0);
				assert_true(d->now.used <= d->now.total);
				assert_true(strncmp(d->uuid, "GPU-", 4) == 0 ||
				    strncmp(d->uuid, "MIG-", 4) == 0);
			}
		}
	}
	devmon_sample(m);
	devmon_free(m);
}

static void amd_card(const char *root, int n, const char *product, const char *total,
    const char *used, const char *mdeg, const char *busy)
{
	char rel[128];

#define AMD_PUT(file, text) do { \
		snprintf(rel, sizeof rel, "sys/class/drm/card%d/device/%s", n, file); \
		put(root, rel, text); \
	} while (0)
	AMD_PUT("mem_info_vram_total", total);
	AMD_PUT("mem_info_vram_used", used);
	if (product != NULL)
		AMD_PUT("product_name", product);
	if (mdeg != NULL)
		AMD_PUT("hwmon/hwmon3/temp1_input", mdeg);
	if (busy != NULL)
		AMD_PUT("gpu_busy_percent", busy);
#undef AMD_PUT
}

static void test_amd_and_meminfo(void **state)
{
	char *root = fresh_root("amd"), *uuid;
	const struct device_info *a0, *a1, *cpu;
	struct devmon *m;

	(void)state;
	/* card0: an integrated GPU without VRAM files (not AMD's), skipped */
	put(root, "sys/class/drm/card0/device/vendor", "0x8086\n");
	amd_card(root, 10, NULL, "8589934592\n", "0\n", NULL, NULL);
	amd_card(root, 1, "AMD Radeon RX 7900 XTX\n", "25753026560\n", "1073741824\n",
	    "45000\n", "37\n");
	/* entries that are not cards */
	put(root, "sys/class/drm/card1-DP-1/device/mem_info_vram_total", "1\n");
	put(root, "sys/class/drm/card1-DP-1/device/mem_info_vram_used", "1\n");
	put(root, "sys/class/drm/renderD128/device/mem_info_vram_total", "1\n");
	put(root, "sys/class/drm/renderD128/device/mem_info_vram_used", "1\n");
	put(root, "sys/class/drm/version", "drm 1.1.0 20060810\n");
	put(root, "proc/meminfo",
	    "MemTotal:       65536000 kB\n"
	    "MemFree:         2000000 kB\n"
	    "MemAvailable:   40000000 kB\n"
	    "Buffers:          100000 kB\n"
	    "Cached:         30000000 kB\n");

	m = monitor(root, "/nonexistent/libnvidia-ml.so", 0);
	assert_int_equal(devmon_count(m), 3);
	assert_string_equal(devmon_get(m, 0)->id, "amd0");
	assert_string_equal(devmon_get(m, 1)->id, "amd1");
	assert_string_equal(devmon_get(m, 2)->id, "cpu");

	/* cards in number order: card1 is amd0, card10 is amd1 */
	a0 = must(m, "amd0");
	assert_true(a0->ok);
	assert_string_equal(a0->kind, "amd");
	assert_string_equal(a0->name, "AMD Radeon RX 7900 XTX");
	uuid = xasprintf("%s/sys/class/drm/card1", root);
	assert_string_equal(a0->uuid, uuid);
	free(uuid);
	assert_int_equal(a0->now.total, 25753026560ull);
	assert_int_equal(a0->now.used, 1 * GiB);
	assert_int_equal(a0->now.free, 25753026560ull - 1 * GiB);
	assert_int_equal(a0->now.temp_c, 45);
	assert_int_equal(a0->now.util_pct, 37);
	assert_int_equal(a0->n_procs, 0);

	a1 = must(m, "amd1");
	assert_true(a1->ok);
	assert_string_equal(a1->name, "AMD GPU (card10)");
	assert_int_equal(a1->now.total, 8 * GiB);
	assert_int_equal(a1->now.used, 0);
	assert_int_equal(a1->now.temp_c, -1);
	assert_int_equal(a1->now.util_pct, -1);

	cpu = must(m, "cpu");
	assert_true(cpu->ok);
	assert_int_equal(cpu->now.total, 65536000ull * 1024);
	assert_int_equal(cpu->now.free, 40000000ull * 1024);
	assert_int_equal(cpu->now.used, 25536000ull * 1024);

	/* New readings on the next sample. */
	amd_card(root, 1, NULL, "25753026560\n", "2147483648\n", "61500\n", "100\n");
	assert_int_equal(devmon_sample(m), 3);
	a0 = must(m, "amd0");
	assert_int_equal(a0->now.used, 2 * GiB);
	assert_int_equal(a0->now.temp_c, 62);
	assert_int_equal(a0->now.util_pct, 100);
	assert_true(devmon_healthy(m));
	devmon_free(m);
	free(root);
}

static void test_malformed(void **state)
{
	char *root = fresh_root("bad");
	struct devmon *m;

	(void)state;
	amd_card(root, 0, "Card\n", "1000\n", "12x\n", "garbage\n", "101\n");
	put(root, "proc/meminfo", "MemTotal:       abc kB\nMemAvailable: 10 kB\n");
	m = monitor(root, "/nonexistent/libnvidia-ml.so", 0);
	assert_int_equal(devmon_count(m), 2);
	assert_false(must(m, "amd0")->ok);
	assert_string_equal(must(m, "amd0")->error, "mem_info_vram_used: not a number");
	assert_false(must(m, "cpu")->ok);
	assert_string_equal(must(m, "cpu")->error, "meminfo: MemTotal not a number of kB");
	assert_false(devmon_healthy(m));
	assert_int_equal(devmon_sample(m), 0);

	/* Out of range, wrong unit, missing fields, an empty or missing file. */
	put(root, "sys/class/drm/card0/device/mem_info_vram_used",
	    "99999999999999999999999\n");
	put(root, "proc/meminfo", "MemTotal: 1000 MB\n");
	devmon_sample(m);
	assert_string_equal(must(m, "amd0")->error, "mem_info_vram_used: not a number");
	assert_string_equal(must(m, "cpu")->error, "meminfo: MemTotal not a number of kB");
	put(root, "sys/class/drm/card0/device/mem_info_vram_used", "");
	put(root, "proc/meminfo", "MemTotal: 1000 kB\n");
	devmon_sample(m);
	assert_string_equal(must(m, "amd0")->error, "mem_info_vram_used: not a number");
	assert_string_equal(must(m, "cpu")->error, "meminfo: MemAvailable missing");
	put(root, "sys/class/drm/card0/device/mem_info_vram_used", "-5\n");
	put(root, "proc/meminfo", "MemTotal: 18446744073709551615 kB\nMemAvailable: 1 kB\n");
	devmon_sample(m);
	assert_string_equal(must(m, "amd0")->error, "mem_info_vram_used: not a number");
	assert_string_equal(must(m, "cpu")->error, "meminfo: MemTotal not a number of kB");
	{
		char *p = xasprintf("%s/proc/meminfo", root);
		assert_int_equal(remove(p), 0);
		free(p);
	}
	devmon_sample(m);
	assert_string_equal(must(m, "cpu")->error, "meminfo: No such file or directory");

	/* A huge file is read only up to the cap: no crash, still not a number. */
	{
		size_t n = 1 << 20;
		char *big = xmalloc(n + 1);
		memset(big, '7', n);
		big[n] = '\0';
		put(root, "sys/class/drm/card0/device/mem_info_vram_used", big);
		free(big);
	}
	devmon_sample(m);
	assert_false(must(m, "amd0")->ok);

	/* Fixed: both read; the bad temperature and busy percent read as unknown. MemFree
	 * stands in for MemAvailable on old kernels. */
	put(root, "sys/class/drm/card0/device/mem_info_vram_used", "400\n");
	put(root, "proc/meminfo", "MemTotal: 1000 kB\nMemFree: 250 kB\n");
	assert_int_equal(devmon_sample(m), 2);
	assert_true(must(m, "amd0")->ok);
	assert_int_equal(must(m, "amd0")->now.free, 600);
	assert_int_equal(must(m, "amd0")->now.temp_c, -1);
	assert_int_equal(must(m, "amd0")->now.util_pct, -1);
	assert_int_equal(must(m, "cpu")->now.free, 250 * 1024);
	assert_true(devmon_healthy(m));
	devmon_free(m);
	free(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		/* first, before any test has the fake library loaded in this process */
		cmocka_unit_test(test_default_search),
		cmocka_unit_test(test_two_gpus),
		cmocka_unit_test(test_history),
		cmocka_unit_test(test_nvml_device_errors),
		cmocka_unit_test(test_nvml_init_error_and_recovery),
		cmocka_unit_test(test_stable_ids),
		cmocka_unit_test(test_many_procs),
#ifdef FAKE_NVML_V1_PATH
		cmocka_unit_test(test_procs_v1_fallback),
#endif
		cmocka_unit_test(test_missing_library),
		cmocka_unit_test(test_amd_and_meminfo),
		cmocka_unit_test(test_malformed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
