/*
 * registry_rows: the registry's models as typed rows (struct reg_model, registry.h),
 * for the code that reads a model's fields: the scheduler (its file, projector and
 * state), the routes (/vram/budget, the logs) and the proxy (names, kinds, created).
 * The JSON objects of registry.c stay for the answers that are JSON themselves (the
 * /models view, /models/{id}). Both read the same columns and the same info JSON, and
 * both name a model the same way (registry_stem).
 */
#include "registry.h"
#include "registry_int.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define ROW_COLS "SELECT id, path, state, error, info, scanned_at, size, mtime_ns FROM models"

void registry_stem(const char *path, char *out, size_t len)
{
	const char *b = path ? strrchr(path, '/') : NULL;
	b = b ? b + 1 : path ? path : "";
	size_t n = strlen(b);
	if (n > 5 && strncasecmp(b + n - 5, ".gguf", 5) == 0)
		n -= 5;
	snprintf(out, len, "%.*s", (int)n, b);
}

json_t *registry_info(const char *text)
{
	json_t *in = text ? json_loads(text, 0, NULL) : NULL;
	if (in != NULL && !json_is_object(in)) {
		json_decref(in);
		in = NULL;
	}
	return in;
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

/* The kind from the info's "pooling" (null: chat, "rank": reranker, another name: an
 * embedding model); without it, a row that says "embedding" is either. */
static enum reg_kind kind_of(json_t *in)
{
	json_t *pool = json_object_get(in, "pooling");
	if (json_is_string(pool))
		return strcmp(json_string_value(pool), "rank") == 0 ? REG_KIND_RERANK :
		    REG_KIND_EMBEDDING;
	if (json_is_null(pool))
		return REG_KIND_CHAT;
	return json_is_true(json_object_get(in, "embedding")) ? REG_KIND_ANY : REG_KIND_CHAT;
}

/* "2026-11-27T14:00:00Z" as Unix time; 0 when absent or unreadable. */
static long long unix_of(const char *at)
{
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	if (at == NULL || strptime(at, "%Y-%m-%dT%H:%M:%SZ", &tm) == NULL)
		return 0;
	return (long long)timegm(&tm);
}

static const char *col(sqlite3_stmt *st, int i)
{
	return (const char *)sqlite3_column_text(st, i);
}

/* The row of ROW_COLS at st into out. */
static void row_of(sqlite3_stmt *st, struct reg_model *out)
{
	json_t *in = registry_info(col(st, 4));
	const char *name = json_string_value(json_object_get(in, "name"));
	const char *state = col(st, 2);
	json_t *ctx = json_object_get(in, "context_length");
	memset(out, 0, sizeof *out);
	out->id = xstrdup(col(st, 0) ? col(st, 0) : "");
	out->path = xstrdup(col(st, 1) ? col(st, 1) : "");
	if (name != NULL) {
		out->name = xstrdup(name);
	} else {
		char stem[REG_STEM_MAX];
		registry_stem(out->path, stem, sizeof stem);
		out->name = xstrdup(stem);
	}
	out->mmproj = dup_or_null(json_string_value(json_object_get(in, "mmproj")));
	out->state = state != NULL && strcmp(state, "available") == 0 ? REG_AVAILABLE :
	    REG_ERROR;
	out->error = dup_or_null(col(st, 3));
	out->kind = kind_of(in);
	out->context_length = json_is_integer(ctx) ? (long long)json_integer_value(ctx) : -1;
	out->size = (uint64_t)sqlite3_column_int64(st, 6);
	out->mtime_ns = (int64_t)sqlite3_column_int64(st, 7);
	out->scanned_at = unix_of(col(st, 5));
	json_decref(in);
}

int registry_model_get(struct registry *r, const char *id, struct reg_model *out)
{
	sqlite3_stmt *st;
	int rc = -1;
	memset(out, 0, sizeof *out);
	if (sqlite3_prepare_v2(r->db, ROW_COLS " WHERE id = ?1", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		row_of(st, out);
		rc = 0;
	}
	sqlite3_finalize(st);
	return rc;
}

struct reg_model *registry_model_list(struct registry *r, size_t *n)
{
	sqlite3_stmt *st;
	struct reg_model *l = NULL;
	size_t cap = 0;
	*n = 0;
	if (sqlite3_prepare_v2(r->db, ROW_COLS " ORDER BY id", -1, &st, NULL) != SQLITE_OK)
		return NULL;
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (*n == cap)
			l = xreallocarray(l, cap = cap ? cap * 2 : 16, sizeof *l);
		row_of(st, &l[(*n)++]);
	}
	sqlite3_finalize(st);
	return l;
}

void registry_model_free(struct reg_model *m)
{
	free(m->id);
	free(m->name);
	free(m->path);
	free(m->mmproj);
	free(m->error);
	memset(m, 0, sizeof *m);
}

void registry_model_list_free(struct reg_model *l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		registry_model_free(&l[i]);
	free(l);
}

const char *registry_state_name(enum reg_state s)
{
	return s == REG_AVAILABLE ? "available" : "error";
}
