/*
 * parse_bench: times GGUF header parsing in-process, warm page cache.
 *
 * Built twice by bench/parse.sh from this one file, because mloffload's src/model/gguf.h and
 * llama.cpp's ggml/include/gguf.h both declare `enum gguf_type` and both libraries export
 * gguf_type_name and gguf_find_tensor (one binary linking both would let one library's
 * symbols interpose on the other's):
 *
 *   -DBENCH_MLO    links build-bench/libmlo_model.a and libmlo_base.a; tools "mloffload" (gguf_open + gguf_close),
 *                  "mloffload full" (gguf_open + est_build, which runs arch_read, + frees),
 *                  and "floor" (open + read() of the first header_bytes + close, into a
 *                  page-aligned buffer allocated and touched once; header_bytes as
 *                  gguf_open reports it).
 *   -DBENCH_LLAMA  links llama.cpp's libggml-base.so; tool "llama.cpp"
 *                  (gguf_init_from_file(path, {.no_alloc = true, .ctx = NULL}) + gguf_free).
 *
 * Usage: parse_bench ITERS BUDGET_S FILE...
 * Each tool and file: one untimed warm-up parse, then up to ITERS timed parses, stopping
 * early once BUDGET_S seconds have been spent on that tool and file (at least 3 parses).
 * Prints one tab-separated line per tool and file:
 *   RESULT <file> <tool> <iters> <median_ms> <min_ms> <n_kv> <n_tensors> <header_bytes>
 * or, when the tool fails on the file:
 *   RESULT <file> <tool> 0 - - - - <message>
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(BENCH_MLO)
#include "estimate.h"
#include "gguf.h"
#elif defined(BENCH_LLAMA)
#include "gguf.h"
#else
#error "build with -DBENCH_MLO or -DBENCH_LLAMA"
#endif

#define MIN_ITERS 3

static volatile uint64_t sink;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

struct counts {
	long long n_kv, n_tensors, header_bytes;
};

/* One parse; returns 0, or -1 with a message in err. */
typedef int (*parse_fn)(const char *path, void *arg, struct counts *c, char *err,
    size_t errlen);

static void run(const char *tool, const char *path, parse_fn fn, void *arg, int iters,
    double budget)
{
	char err[512] = "";
	struct counts c = { -1, -1, -1 };
	if (fn(path, arg, &c, err, sizeof err) < 0) { /* warm-up, and the check it works */
		for (char *p = err; *p; p++)
			if (*p == '\t' || *p == '\n')
				*p = ' ';
		printf("RESULT\t%s\t%s\t0\t-\t-\t-\t-\t%s\n", path, tool, err);
		fflush(stdout);
		return;
	}
	double *t = malloc(sizeof *t * (size_t)iters);
	if (t == NULL) {
		perror("malloc");
		exit(1);
	}
	int n = 0;
	double start = now_s();
	while (n < iters) {
		double t0 = now_s();
		if (fn(path, arg, &c, err, sizeof err) < 0) {
			fprintf(stderr, "%s: %s: failed on iteration %d: %s\n", tool, path, n, err);
			exit(1);
		}
		double t1 = now_s();
		t[n++] = (t1 - t0) * 1e3;
		if (t1 - start > budget && n >= MIN_ITERS)
			break;
	}
	qsort(t, (size_t)n, sizeof *t, cmp_double);
	double median = n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
	printf("RESULT\t%s\t%s\t%d\t%.4f\t%.4f\t%lld\t%lld\t%lld\n", path, tool, n, median, t[0],
	    c.n_kv, c.n_tensors, c.header_bytes);
	fflush(stdout);
	free(t);
}

#if defined(BENCH_MLO)

static int parse_mlo(const char *path, void *arg, struct counts *c, char *err, size_t errlen)
{
	struct gguf *g = gguf_open(path, err, errlen);
	if (g == NULL)
		return -1;
	(void)arg;
	c->n_kv = (long long)g->n_kv;
	c->n_tensors = (long long)g->n_tensors;
	c->header_bytes = (long long)g->header_bytes;
	sink += g->n_kv + g->n_tensors;
	gguf_close(g);
	return 0;
}

static int parse_mlo_full(const char *path, void *arg, struct counts *c, char *err,
    size_t errlen)
{
	(void)arg;
	struct gguf *g = gguf_open(path, err, errlen);
	if (g == NULL)
		return -1;
	struct est_opts o;
	est_defaults(&o);
	struct est e;
	char msg[GGUF_ERR_LEN + 4096];
	if (est_build(g, &o, &e, msg, sizeof msg) < 0) { /* est_build runs arch_read */
		snprintf(err, errlen, "est_build: %s", msg);
		gguf_close(g);
		return -1;
	}
	c->n_kv = (long long)g->n_kv;
	c->n_tensors = (long long)g->n_tensors;
	c->header_bytes = (long long)g->header_bytes;
	sink += e.weights_total + e.kv_total;
	est_free(&e);
	gguf_close(g);
	return 0;
}

struct floor_arg {
	size_t len;
	char *buf;
};

static int parse_floor(const char *path, void *arg, struct counts *c, char *err, size_t errlen)
{
	struct floor_arg *f = arg;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "open failed");
		return -1;
	}
	size_t got = 0;
	while (got < f->len) {
		ssize_t r = read(fd, f->buf + got, f->len - got);
		if (r <= 0) {
			close(fd);
			snprintf(err, errlen, "short read");
			return -1;
		}
		got += (size_t)r;
	}
	close(fd);
	sink += (unsigned char)f->buf[f->len - 1];
	c->header_bytes = (long long)f->len;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: %s ITERS BUDGET_S FILE...\n", argv[0]);
		return 2;
	}
	int iters = (int)strtol(argv[1], NULL, 10);
	double budget = atof(argv[2]);
	for (int i = 3; i < argc; i++) {
		const char *path = argv[i];
		run("mloffload", path, parse_mlo, NULL, iters, budget);
		run("mloffload full", path, parse_mlo_full, NULL, iters, budget);
		char err[GGUF_ERR_LEN];
		struct gguf *g = gguf_open(path, err, sizeof err);
		if (g == NULL) {
			printf("RESULT\t%s\tfloor\t0\t-\t-\t-\t-\t%s\n", path, err);
			continue;
		}
		/* Page-aligned and touched beforehand: on AMD Zen the kernel's copy into a
		 * destination 16 bytes off a 64-byte boundary (where malloc puts a large block)
		 * runs about 7x slower, which would make the floor a measure of malloc. */
		size_t len = (size_t)g->header_bytes, cap = (len + 4095) & ~(size_t)4095;
		struct floor_arg f = { len, aligned_alloc(4096, cap) };
		gguf_close(g);
		if (f.buf == NULL) {
			perror("aligned_alloc");
			return 1;
		}
		memset(f.buf, 0, cap);
		run("floor", path, parse_floor, &f, iters, budget);
		free(f.buf);
	}
	return 0;
}

#else /* BENCH_LLAMA */

static int parse_llama(const char *path, void *arg, struct counts *c, char *err,
    size_t errlen)
{
	(void)arg;
	struct gguf_init_params p = { .no_alloc = true, .ctx = NULL };
	struct gguf_context *ctx = gguf_init_from_file(path, p);
	if (ctx == NULL) {
		snprintf(err, errlen, "gguf_init_from_file failed");
		return -1;
	}
	c->n_kv = (long long)gguf_get_n_kv(ctx);
	c->n_tensors = (long long)gguf_get_n_tensors(ctx);
	c->header_bytes = (long long)gguf_get_data_offset(ctx);
	sink += (uint64_t)c->n_kv + (uint64_t)c->n_tensors;
	gguf_free(ctx);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: %s ITERS BUDGET_S FILE...\n", argv[0]);
		return 2;
	}
	int iters = (int)strtol(argv[1], NULL, 10);
	double budget = atof(argv[2]);
	for (int i = 3; i < argc; i++)
		run("llama.cpp", argv[i], parse_llama, NULL, iters, budget);
	return 0;
}

#endif
