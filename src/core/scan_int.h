/*
 * scan_int: what the files of the folder scan share, and nothing else includes: the
 * candidates found by the walk, the walk's state, and the calls that cross between
 * scan.c (walk, grouping, projector linking, the public API) and scan_info.c (reading
 * each file: model or projector, and the model's info object). Not a module of its
 * own: private to scan.
 */
#ifndef MLO_SCAN_INT_H
#define MLO_SCAN_INT_H

#include "gguf.h"
#include "scan.h"

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

enum cand_kind { C_MODEL, C_PROJ, C_PART, C_DUP, C_ERROR };

/* A *.gguf file found inside the folders. */
struct cand {
	char *path;               /* resolved folder + "/" + the name found */
	size_t dirlen;            /* path[dirlen] is the '/' before the name */
	uint64_t size;
	int64_t mtime_ns;
	dev_t dev;
	ino_t ino;
	int is_link;
	int part, nparts;         /* split name NAME-0000K-of-0000N.gguf; 0 when not one */
	size_t stemlen;           /* length of NAME (or of the name less .gguf) */
	enum cand_kind kind;
	char *error;
	int unchanged;            /* known with the same size and mtime: not read */
	uint64_t proj_bytes;      /* projectors: weights on the device */
	uint64_t proj_compute;    /* projectors: the encoder's compute buffer and its */
	uint64_t proj_input;      /* input image on the CPU (estimate_clip.c) */
	const struct cand *proj;  /* models: the projector linked */
	/* models: described while classified, as if without a projector (the header is
	 * parsed once); used unless a projector is linked afterwards. info or error, owned */
	int described;
	json_t *info;
	char *info_error;
};

struct walk {
	const struct scan_opts *o;
	char **roots;             /* resolved folders, the allowed set */
	size_t n_roots;
	struct cand *c;
	size_t n_c, cap_c;
	struct scan_result *r;
	size_t cap_items, cap_skipped;
	struct { dev_t dev; ino_t ino; } *seen;
	size_t n_seen, cap_seen;
	size_t n_files, max_files;
	struct gguf_buf buf;      /* lent to every header read (gguf_open_buf) */
};

/* Adds an item to the result; path, error and info are stolen (error and info may be
 * NULL). */
void scan_add_item(struct walk *w, char *path, uint64_t size, int64_t mtime_ns,
    char *error, json_t *info, int unchanged);
/* Model or projector: reads c's header unless it is known and unchanged (then marks it
 * unchanged); a file that does not read becomes an error candidate. */
void scan_classify(struct walk *w, struct cand *c);
/* Starts reading c's header from disk (gguf_prefetch) when scan_classify will read it. */
void scan_prefetch(struct walk *w, const struct cand *c);
/* Turns the candidates into items, describing each model that changed; frees their
 * paths or hands them over to the result. */
void scan_describe_all(struct walk *w);

#endif
