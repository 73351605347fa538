/*
 * cli_gen: `mloffload gen SHAPE OUT.gguf`, the developer command that writes models
 * for tests, demos and benchmarks (see shapes.h).
 */
#include "cli.h"
#include "gguf.h"
#include "shapes.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(void)
{
	fprintf(stderr, "usage: mloffload gen SHAPE OUT.gguf [--quant F32|F16|Q8_0|Q4_K_M] "
	    "[--vocab FILE] [--random|--hole] [--seed N] [--split N]\n"
	    "       mloffload gen --list\n");
}

int cli_gen(int argc, char **argv)
{
	struct shapes_opts o = { NULL, NULL, -1, 1, 1 };
	const char *pos[2] = { NULL, NULL };
	int npos = 0;
	char *vocab = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		long long v;
		if (strcmp(a, "--list") == 0) {
			for (const struct shape *s = shapes_all; s->name; s++)
				printf("%-14s %-9s %-7s %s\n", s->name, s->arch, s->quant, s->about);
			for (const struct shape_mmproj *s = shapes_mmproj_all; s->name; s++)
				printf("%-14s %-9s %-7s %s\n", s->name, "clip", s->quant, s->about);
			return 0;
		} else if (strcmp(a, "--quant") == 0 && i + 1 < argc) {
			o.quant = argv[++i];
		} else if (strcmp(a, "--vocab") == 0 && i + 1 < argc) {
			o.vocab_path = argv[++i];
		} else if (strcmp(a, "--random") == 0) {
			o.fill = 1;
		} else if (strcmp(a, "--hole") == 0) {
			o.fill = 0;
		} else if (strcmp(a, "--seed") == 0 && i + 1 < argc &&
		    util_parse_int(argv[i + 1], 0, INT64_MAX, &v) == 0) {
			o.seed = (uint64_t)v;
			i++;
		} else if (strcmp(a, "--split") == 0 && i + 1 < argc &&
		    util_parse_int(argv[i + 1], 1, 99, &v) == 0) {
			o.split = (int)v;
			i++;
		} else if (a[0] != '-' && npos < 2) {
			pos[npos++] = a;
		} else {
			usage();
			return 2;
		}
	}
	if (npos != 2) {
		usage();
		return 2;
	}
	const struct shape *s = shapes_find(pos[0]);
	const struct shape_mmproj *mp = shapes_mmproj_find(pos[0]);
	char err[GGUF_ERR_LEN + 4096];
	if (s == NULL && mp != NULL) {
		/* a projector: no tokenizer, no quantization mix */
		if (shapes_mmproj_write(mp, o.fill, o.seed, pos[1], err, sizeof err) < 0) {
			fprintf(stderr, "mloffload: %s\n", err);
			return 1;
		}
		return 0;
	}
	if (s == NULL) {
		fprintf(stderr, "mloffload: unknown shape '%s' (see mloffload gen --list)\n", pos[0]);
		return 2;
	}
	if (o.vocab_path == NULL)
		o.vocab_path = vocab = shapes_vocab_path(s->vocab);
	int rc = shapes_write(s, &o, pos[1], err, sizeof err);
	free(vocab);
	if (rc < 0) {
		fprintf(stderr, "mloffload: %s\n", err);
		return 1;
	}
	return 0;
}
