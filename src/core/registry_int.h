/*
 * registry_int: what registry.c, registry_loads.c and registry_rows.c share.
 */
#ifndef MLO_REGISTRY_INT_H
#define MLO_REGISTRY_INT_H

#include <jansson.h>
#include <sqlite3.h>
#include <stddef.h>

#define REG_STEM_MAX 96  /* a model's name from its file: at most this - 1 bytes */

struct registry {
	sqlite3 *db;
	char *path;
	int write_failing;         /* the last write failed (disk full, I/O error, ...) */
	char write_error[256];     /* what failed and SQLite's words, while write_failing */
};

/* Records the outcome of a write (ok 1 or 0; what names it, e.g. "recording an
 * event"): a failure sets write_failing and logs once, a success clears it. Call it
 * right after the failing step, while sqlite3_errmsg still says why. */
void registry_wrote(struct registry *r, int ok, const char *what);

/* Writes the current UTC time as ISO-8601 ("2026-11-27T14:00:00Z") into buf. */
void registry_now_iso(char *buf, size_t len);

/* The stem of path's file name (".gguf" dropped) into out: a model's name when its
 * header has none (registry_rows.c). */
void registry_stem(const char *path, char *out, size_t len);
/* The info column's text parsed: a new JSON object, or NULL when absent or not an
 * object (registry_rows.c). */
json_t *registry_info(const char *text);

#endif
