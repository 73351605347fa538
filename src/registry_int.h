/*
 * registry_int: what registry.c and registry_loads.c share.
 */
#ifndef MLO_REGISTRY_INT_H
#define MLO_REGISTRY_INT_H

#include <sqlite3.h>
#include <stddef.h>

struct registry {
	sqlite3 *db;
	char *path;
};

/* Writes the current UTC time as ISO-8601 ("2026-11-27T14:00:00Z") into buf. */
void registry_now_iso(char *buf, size_t len);

#endif
