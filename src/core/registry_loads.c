/*
 * registry_loads: the loads table. Each llama-server child the daemon starts gets a
 * row with its pid, port, start time, boot id and plan; readiness adds what llama.cpp
 * reported it allocated; its end says how it ended. Rows still "starting" or "ready"
 * when the daemon starts are children of an earlier run, which the daemon stops (never
 * an orphan holding VRAM) once it is sure the pid is still that child
 * (scheduler_reap.c). Every write records its outcome for /health (registry_wrote).
 * Prepared statements with bound values only.
 */
#include "registry.h"
#include "registry_int.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dump(json_t *j)
{
	return j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
}

long long registry_load_begin(struct registry *r, const char *model_id, int pid, int port,
    unsigned long long start_ticks, const char *boot_id, json_t *plan)
{
	sqlite3_stmt *st;
	char now[32];
	registry_now_iso(now, sizeof now);
	if (sqlite3_prepare_v2(r->db, "INSERT INTO loads (model_id, started_at, pid, port, "
	    "state, plan, start_ticks, boot_id) VALUES (?1, ?2, ?3, ?4, 'starting', ?5, ?6, "
	    "?7)", -1, &st, NULL) != SQLITE_OK)
		return -1;
	char *p = dump(plan);
	sqlite3_bind_text(st, 1, model_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, now, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, pid);
	sqlite3_bind_int(st, 4, port);
	sqlite3_bind_text(st, 5, p, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)start_ticks);
	sqlite3_bind_text(st, 7, boot_id, -1, SQLITE_STATIC);
	int ok = sqlite3_step(st) == SQLITE_DONE;
	registry_wrote(r, ok, "recording a load");
	long long id = ok ? sqlite3_last_insert_rowid(r->db) : -1;
	sqlite3_finalize(st);
	free(p);
	return id;
}

int registry_load_update(struct registry *r, long long row, const char *state,
    json_t *measured, const char *error)
{
	sqlite3_stmt *st;
	char now[32];
	registry_now_iso(now, sizeof now);
	if (sqlite3_prepare_v2(r->db, "UPDATE loads SET state = ?2, measured = COALESCE(?3, "
	    "measured), error = ?4, ended_at = CASE WHEN ?2 IN ('starting', 'ready') THEN NULL "
	    "ELSE ?5 END WHERE id = ?1", -1, &st, NULL) != SQLITE_OK)
		return -1;
	char *m = dump(measured);
	sqlite3_bind_int64(st, 1, row);
	sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, m, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, error, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, now, -1, SQLITE_STATIC);
	int ok = sqlite3_step(st) == SQLITE_DONE;
	registry_wrote(r, ok, "updating a load");
	sqlite3_finalize(st);
	free(m);
	return ok ? 0 : -1;
}

struct reg_load *registry_loads_open(struct registry *r, size_t *n)
{
	sqlite3_stmt *st;
	struct reg_load *l = NULL;
	size_t cap = 0;
	*n = 0;
	if (sqlite3_prepare_v2(r->db, "SELECT id, model_id, pid, port, start_ticks, "
	    "COALESCE(boot_id, '') FROM loads WHERE state IN ('starting', 'ready')", -1, &st,
	    NULL) != SQLITE_OK)
		return NULL;
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (*n == cap)
			l = xreallocarray(l, cap = cap ? cap * 2 : 4, sizeof *l);
		struct reg_load *o = &l[(*n)++];
		const char *id = (const char *)sqlite3_column_text(st, 1);
		o->row = sqlite3_column_int64(st, 0);
		o->model_id = xstrdup(id ? id : "");
		o->pid = sqlite3_column_int(st, 2);
		o->port = sqlite3_column_int(st, 3);
		o->start_ticks = (unsigned long long)sqlite3_column_int64(st, 4);
		snprintf(o->boot_id, sizeof o->boot_id, "%s",
		    (const char *)sqlite3_column_text(st, 5));
	}
	sqlite3_finalize(st);
	return l;
}

void registry_loads_free(struct reg_load *l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(l[i].model_id);
	free(l);
}

json_t *registry_last_load(struct registry *r, const char *model_id)
{
	sqlite3_stmt *st;
	json_t *o = NULL;
	if (sqlite3_prepare_v2(r->db, "SELECT started_at, plan, measured FROM loads WHERE "
	    "model_id = ?1 AND measured IS NOT NULL ORDER BY id DESC LIMIT 1", -1, &st,
	    NULL) != SQLITE_OK)
		return NULL;
	sqlite3_bind_text(st, 1, model_id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		json_error_t je;
		const char *p = (const char *)sqlite3_column_text(st, 1);
		const char *m = (const char *)sqlite3_column_text(st, 2);
		json_t *pj = p ? json_loads(p, 0, &je) : NULL, *mj = m ? json_loads(m, 0, &je) : NULL;
		o = json_pack("{s:s,s:o,s:o}", "started_at", (const char *)sqlite3_column_text(st, 0),
		    "plan", pj ? pj : json_null(), "measured", mj ? mj : json_null());
	}
	sqlite3_finalize(st);
	return o;
}
