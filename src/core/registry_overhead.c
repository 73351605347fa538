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

/* o's samples from the stored JSON text ([[row, bytes], ...]); the rest is left out. */
static void samples_read(struct reg_overhead *o, const char *txt)
{
	json_error_t je;
	json_t *a = txt != NULL ? json_loads(txt, 0, &je) : NULL, *v;
	size_t i;
	json_array_foreach(a, i, v) {
		json_t *row = json_array_get(v, 0), *b = json_array_get(v, 1);
		if (o->n == REG_OVERHEAD_SAMPLES || !json_is_integer(row) || !json_is_integer(b) ||
		    json_integer_value(b) < 0)
			continue;
		o->row[o->n] = json_integer_value(row);
		o->sample[o->n++] = (uint64_t)json_integer_value(b);
	}
	json_decref(a);
}

struct reg_overhead *registry_overheads(struct registry *r, size_t *n)
{
	sqlite3_stmt *st;
	struct reg_overhead *out = NULL;
	size_t cap = 0;
	*n = 0;
	if (sqlite3_prepare_v2(r->db, "SELECT device, COALESCE(name, ''), bytes, loads, samples "
	    "FROM device_overhead ORDER BY device", -1, &st, NULL) != SQLITE_OK)
		return NULL;
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? 2 * cap : 4;
			out = xrealloc(out, cap * sizeof *out);
		}
		struct reg_overhead *o = &out[(*n)++];
		memset(o, 0, sizeof *o);
		snprintf(o->device, sizeof o->device, "%s", (const char *)sqlite3_column_text(st, 0));
		snprintf(o->name, sizeof o->name, "%s", (const char *)sqlite3_column_text(st, 1));
		int64_t b = sqlite3_column_int64(st, 2);
		o->bytes = b > 0 ? (uint64_t)b : 0;
		o->loads = sqlite3_column_int64(st, 3);
		samples_read(o, (const char *)sqlite3_column_text(st, 4));
	}
	sqlite3_finalize(st);
	return out;
}

int registry_overhead_save(struct registry *r, const struct reg_overhead *o)
{
	sqlite3_stmt *st;
	char now[32];
	registry_now_iso(now, sizeof now);
	if (sqlite3_prepare_v2(r->db, "INSERT OR REPLACE INTO device_overhead (device, name, "
	    "bytes, loads, samples, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)", -1, &st,
	    NULL) != SQLITE_OK)
		return -1;
	json_t *a = json_array();
	for (size_t i = 0; i < o->n && i < REG_OVERHEAD_SAMPLES; i++)
		json_array_append_new(a, json_pack("[I,I]", (json_int_t)o->row[i],
		    (json_int_t)o->sample[i]));
	char *smp = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	sqlite3_bind_text(st, 1, o->device, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, o->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)o->bytes);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)o->loads);
	sqlite3_bind_text(st, 5, smp != NULL ? smp : "[]", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, now, -1, SQLITE_STATIC);
	int ok = sqlite3_step(st) == SQLITE_DONE;
	registry_wrote(r, ok, "recording a device's overhead");
	sqlite3_finalize(st);
	free(smp);
	return ok ? 0 : -1;
}
