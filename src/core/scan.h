/*
 * scan: walks model folders and describes every GGUF file found: split parts grouped
 * into one model, a multimodal projector (mmproj*.gguf, or a GGUF whose architecture is
 * "clip") linked to the model in its folder, metadata, the estimate by component and
 * the fit on each device. Files that are not GGUF or are corrupt become error entries
 * with the reason. Files that resolve (through symlinks) outside the model folders are
 * refused. Reads headers only.
 *
 * Pure and thread-safe: touches no database and no global state, so the daemon runs it
 * in a worker thread and hands the result to the loop, which stores it (registry.h).
 */
#ifndef MLO_SCAN_H
#define MLO_SCAN_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

/* A file the caller already knows: unchanged files (same size and mtime) are skipped. */
struct scan_known {
	const char *path;
	uint64_t size;
	int64_t mtime_ns;
	const char *mmproj;  /* the projector linked last time, or NULL: a model whose
	                      * projector changed is described again */
};

/* A device to compute fit against: its total memory, less the reserve. */
struct scan_device {
	char id[16];
	char name[96];
	uint64_t budget;
	int is_cpu;
};

struct scan_opts {
	char *const *dirs;
	size_t n_dirs;
	const struct scan_known *known;  /* sorted by path (strcmp) */
	size_t n_known;
	const struct scan_device *devs;
	size_t n_devs;
	uint32_t ctx;                    /* context for the estimate (0: min(train, 8192)) */
	size_t max_files;                /* stop after this many GGUF files (0: 100000) */
};

struct scan_item {
	char *path;          /* absolute, resolved; the first part of a split model */
	uint64_t size;       /* bytes of all parts */
	int64_t mtime_ns;    /* newest of the parts */
	int unchanged;       /* known and not changed: info is NULL */
	char *error;         /* NULL, or why the file is not a usable model */
	json_t *info;        /* owned: see docs/daemon.md "model object" (name, arch, quant,
	                      * parameters, layers, context, file_bytes, parts, mmproj,
	                      * estimate {input, output, layers, experts, kv, compute},
	                      * fit [{device, fits, mode: "gpu"|"offload"|"cpu"|"none",
	                      *       gpu_layers, n_cpu_moe, total_bytes}]) */
};

struct scan_result {
	struct scan_item *items;
	size_t n_items;
	size_t n_dirs_missing;   /* folders that did not exist or could not be read */
	char *dir_error;         /* the first such folder and why, or NULL */
	double ms;               /* wall time of the scan */
	char **dirs;             /* the folders walked (resolved): a model known under one
	                          * of them and not among items is gone; folders that were
	                          * missing or unreadable are not here */
	size_t n_dirs;
	char **skipped;          /* resolved subfolders not walked (unreadable, too deep):
	                          * what is known under them is kept */
	size_t n_skipped;
	int truncated;           /* max_files was reached: items are not every file */
	char **configured;       /* the folders as configured (scan_opts.dirs), found or
	                          * not: a model under none of them and none of dirs is in
	                          * a folder dropped from the configuration */
	size_t n_configured;
};

/* Scans. Never fails as a whole: problems are per item or per folder. Returns a heap
 * result; free with scan_free. */
struct scan_result *scan_run(const struct scan_opts *o);
void scan_free(struct scan_result *r);
/* 1 if the (resolved) path lies in the (resolved) folder dir, on a path boundary. */
int scan_under(const char *path, const char *dir);
/* 1 if path lies in one of dirs (NULL entries skipped). */
int scan_under_any(const char *path, char *const *dirs, size_t n);

#endif
