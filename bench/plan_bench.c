/*
 * plan_bench: times planning over 1, 2 and 4 devices in-process (plan_multi_make on an
 * estimate built once), so that bench/plan.sh can set it beside llama-fit-params on
 * the same model, context and budgets. The budgets are chosen so that the plan has to
 * search: N devices share 120% of what the whole model needs (none holds it alone, the
 * layers are split) or 60% (split, then experts or layers to the CPU).
 *
 * Usage: plan_bench ITERS CTX FILE...
 * Prints one tab-separated line per file and device count:
 *   RESULT <file> <n_devices> <share> <iters> <median_us> <min_us> <gpu_layers> <n_cpu_moe> <budgets_mib>
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "estimate.h"
#include "gguf.h"
#include "plan.h"

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void bench(const char *path, const struct est *e, uint64_t whole, int n_dev, int pct,
    int iters)
{
	struct plan_device d[4];
	memset(d, 0, sizeof d);
	char budgets[128] = "";
	for (int i = 0; i < n_dev; i++) {
		snprintf(d[i].name, sizeof d[i].name, "CUDA%d", i);
		d[i].budget = whole * (uint64_t)pct / 100 / (uint64_t)n_dev;
		size_t l = strlen(budgets);
		snprintf(budgets + l, sizeof budgets - l, "%s%llu", i ? "," : "",
		    (unsigned long long)(d[i].budget >> 20));
	}
	struct plan_opts po = { .ngl = -1 };
	double *t = malloc(sizeof *t * (size_t)iters);
	struct plan_multi p;
	char err[256];
	for (int i = 0; i < iters; i++) {
		double t0 = now_us();
		if (plan_multi_make(e, d, (size_t)n_dev, &po, PLAN_SPLIT_AUTO, &p, err, sizeof err) < 0) {
			fprintf(stderr, "%s: %s\n", path, err);
			exit(1);
		}
		t[i] = now_us() - t0;
		if (i + 1 < iters)
			plan_multi_free(&p);
	}
	qsort(t, (size_t)iters, sizeof *t, cmp);
	printf("RESULT\t%s\t%d\t%d%%\t%d\t%.1f\t%.1f\t%d\t%d\t%s\n", path, n_dev, pct, iters,
	    t[iters / 2], t[0], p.ngl, p.n_cpu_moe, budgets);
	plan_multi_free(&p);
	free(t);
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: plan_bench ITERS CTX FILE...\n");
		return 2;
	}
	int iters = (int)strtol(argv[1], NULL, 10);
	if (iters < 1)
		iters = 1;
	for (int f = 3; f < argc; f++) {
		char err[GGUF_ERR_LEN + 256];
		struct gguf *g = gguf_open(argv[f], err, sizeof err);
		if (g == NULL) {
			fprintf(stderr, "%s\n", err);
			return 1;
		}
		struct est_opts o;
		est_defaults(&o);
		o.n_ctx = (uint32_t)strtoul(argv[2], NULL, 10);
		struct est e;
		if (est_build(g, &o, &e, err, sizeof err) < 0) {
			fprintf(stderr, "%s\n", err);
			return 1;
		}
		struct plan_device big = { "CUDA0", UINT64_MAX / 2, "" };
		struct plan_opts po = { .ngl = -1 };
		struct plan whole;
		if (plan_make(&e, &big, &po, &whole, err, sizeof err) < 0)
			return 1;
		for (int n = 1; n <= 4; n *= 2) {
			if (n > 1)
				bench(argv[f], &e, whole.dev.total, n, 120, iters);
			bench(argv[f], &e, whole.dev.total, n, 60, iters);
		}
		plan_free(&whole);
		est_free(&e);
		gguf_close(g);
	}
	return 0;
}
