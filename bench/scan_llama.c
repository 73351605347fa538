/*
 * scan_llama: llama.cpp's own GGUF reader over a folder's worth of files, once each, for
 * bench/scan.sh to set beside mloffloadd's scan of the same files. For each file named:
 * gguf_init_from_file(path, {.no_alloc = true, .ctx = NULL}) + gguf_free, as
 * parse_bench.c's "llama.cpp" tool (the header only: metadata and tensor infos). Built
 * against the cached llama.cpp's ggml/include and libggml-base.so by scan.sh.
 *
 * Usage: scan_llama FILE...
 * Prints: RESULT <files> <failed> <total_ms>
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <time.h>

#include "gguf.h"

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	int failed = 0;
	double t0 = now_ms();
	for (int i = 1; i < argc; i++) {
		struct gguf_init_params p = { .no_alloc = true, .ctx = NULL };
		struct gguf_context *g = gguf_init_from_file(argv[i], p);
		if (g == NULL) {
			fprintf(stderr, "scan_llama: %s: gguf_init_from_file failed\n", argv[i]);
			failed++;
			continue;
		}
		gguf_free(g);
	}
	printf("RESULT %d %d %.1f\n", argc - 1, failed, now_ms() - t0);
	return failed ? 1 : 0;
}
