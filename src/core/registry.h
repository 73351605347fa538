/*
 * registry: the SQLite store of the daemon in its state folder: models (with stable
 * ids that survive restarts), scans, and events. The schema is versioned with
 * PRAGMA user_version and migrated forward on open. A database that SQLite cannot read
 * is an error at open (with its path and SQLite's words), never silently replaced.
 * Used from the loop thread only.
 */
#ifndef MLO_REGISTRY_H
#define MLO_REGISTRY_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "scan.h"

#define REGISTRY_SCHEMA 4

struct registry;

struct reg_counts {
	int added, updated, removed, unchanged, errors;
};

/* Opens (creating if absent) the database at path and migrates it. Returns a heap
 * handle or NULL with a message in err. */
struct registry *registry_open(const char *path, char *err, size_t errlen);
void registry_close(struct registry *r);
/* 1 if the database answers a query. */
int registry_healthy(struct registry *r);
/* Why the last write to the database failed (borrowed, valid until the next write), or
 * NULL when it worked: a write that fails (disk full, I/O error, read-only) sets it,
 * the next one that works clears it. Writes are scans, events and loads. */
const char *registry_write_error(struct registry *r);

/* Files the registry knows, for scan_opts.known: a heap array sorted by path (paths
 * heap too); free with registry_known_free. */
struct scan_known *registry_known(struct registry *r, size_t *n);
void registry_known_free(struct scan_known *k, size_t n);
/* Applies a scan (borrowed) done over dirs: adds new models, updates changed ones,
 * removes those under dirs no longer found, records errors; records the scan row.
 * Returns 0 and the counts, or -1 with err (nothing changed: one transaction). */
int registry_apply(struct registry *r, const struct scan_result *s, struct reg_counts *c,
    char *err, size_t errlen);

/* Every model: a new JSON array of model objects (id, path, state, ... see
 * docs/daemon.md), for the answers that are JSON (the /models view, /models/{id}). */
json_t *registry_models(struct registry *r);
/* One model by id as that JSON object, or NULL. New reference. */
json_t *registry_model(struct registry *r, const char *id);

/* Typed rows (registry_rows.c): what the scheduler, the routes and the proxy read of a
 * model, so that none of them reads the JSON by string keys. */
enum reg_state { REG_AVAILABLE, REG_ERROR };
/* What the model serves, from the GGUF's pooling type: a chat (generative) model, an
 * embedding model, a reranker, or REG_KIND_ANY for a row scanned before the pooling
 * was recorded that says only "embedding" (an embedding model or a reranker). */
enum reg_kind { REG_KIND_CHAT, REG_KIND_EMBEDDING, REG_KIND_RERANK, REG_KIND_ANY };
struct reg_model {
	char *id;
	char *name;            /* the GGUF's general.name, else the file's stem */
	char *path;
	char *mmproj;          /* the linked projector's path, or NULL */
	enum reg_state state;
	char *error;           /* why the row is in error, or NULL */
	enum reg_kind kind;
	long long context_length; /* trained context; -1 when unknown */
	uint64_t size;         /* file bytes */
	int64_t mtime_ns;      /* the file's mtime as scanned */
	long long scanned_at;  /* Unix time of the scan that read it; 0 when unknown */
};
/* Fills *out (its strings heap, owned by it: registry_model_free) with the row of id.
 * Returns 0, or -1 (out zeroed) when no model has that id. */
int registry_model_get(struct registry *r, const char *id, struct reg_model *out);
/* Every model's row, ordered by id: a heap array of *n (NULL when none); free with
 * registry_model_list_free. */
struct reg_model *registry_model_list(struct registry *r, size_t *n);
/* Frees m's strings (not m) and zeroes it; a zeroed row is fine. */
void registry_model_free(struct reg_model *m);
void registry_model_list_free(struct reg_model *l, size_t n);
/* "available" or "error". Static. */
const char *registry_state_name(enum reg_state s);
/* Counts of models by state ("available", "error"), for /metrics: new JSON object. */
json_t *registry_state_counts(struct registry *r);
/* Last scan: new JSON object {at, ms, added, updated, removed, unchanged, errors} or NULL. */
json_t *registry_last_scan(struct registry *r);
/* Appends an event row (type, JSON data borrowed). Returns 0 or -1. */
int registry_event(struct registry *r, const char *type, json_t *data);

/* Loads (registry_loads.c): one row per llama-server child the daemon starts. */
/* Records a child started for model_id with its plan (borrowed) and who it is: pid,
 * port, its start time (child_pid_start_ticks) and the boot id (child_boot_id; may be
 * ""). Returns the row id or -1. */
long long registry_load_begin(struct registry *r, const char *model_id, int pid, int port,
    unsigned long long start_ticks, const char *boot_id, json_t *plan);
/* Sets the row's state ("ready", "stopped", "failed"), measured buffers (borrowed,
 * may be NULL) and error (may be NULL); ended when state is not "ready". */
int registry_load_update(struct registry *r, long long row, const char *state,
    json_t *measured, const char *error);
/* A loads row still marked running: a child of a previous run (scheduler_reap.c). */
struct reg_load {
	long long row;
	char *model_id;                 /* heap, owned by the row */
	int pid, port;
	unsigned long long start_ticks; /* 0 where not recorded (rows of schema 2) */
	char boot_id[64];               /* "" where not recorded */
};
/* Children a previous run left marked running: a heap array of *n (NULL when none);
 * free with registry_loads_free. */
struct reg_load *registry_loads_open(struct registry *r, size_t *n);
void registry_loads_free(struct reg_load *l, size_t n);
/* The last load of model_id that reached ready: {started_at, plan, measured} or NULL. */
json_t *registry_last_load(struct registry *r, const char *model_id);

/* Device overheads (registry_overhead.c): per device, what its children held beyond
 * their buffers, as the scheduler learned it (scheduler_learn.c). One row: */
#define REG_OVERHEAD_SAMPLES 32
struct reg_overhead {
	char device[96];             /* NVML UUID, else the device's name: the key */
	char name[96];
	uint64_t bytes;              /* the learned figure */
	long long loads;             /* loads sampled on the device, ever */
	size_t n;                    /* samples, oldest first: */
	long long row[REG_OVERHEAD_SAMPLES];     /* the load (registry row) of each */
	uint64_t sample[REG_OVERHEAD_SAMPLES];   /* its bytes */
};
/* Every device's row, by device: a heap array of *n (free), NULL with *n 0 for none.
 * Samples that do not read (not [row, bytes] pairs) are left out. */
struct reg_overhead *registry_overheads(struct registry *r, size_t *n);
/* Inserts or replaces o's row. Returns 0 or -1. */
int registry_overhead_save(struct registry *r, const struct reg_overhead *o);
/* The view (registry_view.c): what the routes show of the catalog, rebuilt when a scan
 * is stored, so that a request reads it without asking the database. Owned by the
 * daemon (daemon.c), read by api and metrics; its pointers change at each rebuild. */
struct registry_view {
	char *models_json;           /* the model objects serialized and comma-joined */
	json_t *model_counts;        /* registry_state_counts */
	json_t *last_scan;           /* registry_last_scan, or NULL */
	int scanning;                /* a scan runs (set by the daemon) */
	uint64_t scans_total, scan_errors_total;  /* scans stored, scans that failed */
};
/* Rebuilds v's answers from r (frees the old ones; leaves the scan fields). */
void registry_view_refresh(struct registry_view *v, struct registry *r);
/* Frees v's answers. */
void registry_view_free(struct registry_view *v);

#endif
