/*
 * registry_overhead: the device_overhead table, one row per device (keyed by its NVML
 * UUID, else its name): the memory the scheduler learned that a llama-server child
 * holds on that device beyond the buffers llama.cpp reports (CUDA context, cuBLAS
 * workspace, pools), with the samples the figure came from, so a restarted daemon
 * plans with what the last one learned (scheduler_learn.c). Prepared statements with
 * bound values only; every write records its outcome for /health (registry_wrote).
 */
#include "registry.h"
#include "registry_int.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

json_t *registry_overheads(struct registry *r)
{
	sqlite3_stmt *st;
	json_t *a = json_array();
	if (sqlite3_prepare_v2(r->db, "SELECT device, COALESCE(name, ''), bytes, loads, samples "
	    "FROM device_overhead ORDER BY device", -1, &st, NULL) != SQLITE_OK)
		return a;
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *txt = (const char *)sqlite3_column_text(st, 4);
		json_error_t je;
		json_t *smp = txt != NULL ? json_loads(txt, 0, &je) : NULL;
		if (!json_is_array(smp)) {
			json_decref(smp);
			smp = json_array();
		}
		json_array_append_new(a, json_pack("{s:s,s:s,s:I,s:I,s:o}", "device",
		    (const char *)sqlite3_column_text(st, 0), "name",
		    (const char *)sqlite3_column_text(st, 1), "bytes",
		    (json_int_t)sqlite3_column_int64(st, 2), "loads",
		    (json_int_t)sqlite3_column_int64(st, 3), "samples", smp));
	}
	sqlite3_finalize(st);
	return a;
}

int registry_overhead_save(struct registry *r, const char *device, const char *name,
    uint64_t bytes, long long loads, json_t *samples)
{
	sqlite3_stmt *st;
	char now[32];
	registry_now_iso(now, sizeof now);
	if (sqlite3_prepare_v2(r->db, "INSERT OR REPLACE INTO device_overhead (device, name, "
	    "bytes, loads, samples, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)", -1, &st,
	    NULL) != SQLITE_OK)
		return -1;
	char *smp = json_dumps(samples, JSON_COMPACT);
	sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)bytes);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)loads);
	sqlite3_bind_text(st, 5, smp != NULL ? smp : "[]", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, now, -1, SQLITE_STATIC);
	int ok = sqlite3_step(st) == SQLITE_DONE;
	registry_wrote(r, ok, "recording a device's overhead");
	sqlite3_finalize(st);
	free(smp);
	return ok ? 0 : -1;
}
