/*
 * registry: the daemon's SQLite store (see registry.h).
 *
 * The schema is an array of migrations, one per version: migrations[v] takes a database
 * at user_version v to v + 1, in its own transaction, so version 2 only appends. A file
 * that SQLite cannot read, that fails its quick check, or that a newer mloffloadd wrote
 * is refused at open and left exactly as it is: the user decides what to do with it.
 * Every statement is prepared with bound parameters; a scan is applied in one
 * transaction, so a failure leaves the store as it was.
 */
#include "registry.h"
#include "registry_int.h"
#include "util.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define REG_BUSY_MS 5000
#define REG_MAX_EVENTS 10000      /* events kept; older ones are dropped */
#define REG_MAX_SCANS 1000
#define REG_ID_MAX 96

static const char *const migrations[REGISTRY_SCHEMA] = {
	/* 0 -> 1 */
	"CREATE TABLE models ("
	"  id TEXT PRIMARY KEY,"
	"  path TEXT UNIQUE NOT NULL,"
	"  size INTEGER,"
	"  mtime_ns INTEGER,"
	"  state TEXT NOT NULL,"
	"  error TEXT,"
	"  info TEXT,"
	"  scanned_at TEXT,"
	"  first_seen TEXT);"
	"CREATE TABLE scans ("
	"  id INTEGER PRIMARY KEY,"
	"  at TEXT NOT NULL,"
	"  ms REAL,"
	"  added INTEGER, updated INTEGER, removed INTEGER, unchanged INTEGER,"
	"  errors INTEGER,"
	"  dirs_missing INTEGER,"
	"  dir_error TEXT);"
	"CREATE TABLE events ("
	"  id INTEGER PRIMARY KEY,"
	"  at TEXT NOT NULL,"
	"  type TEXT NOT NULL,"
	"  data TEXT);",
	/* 1 -> 2: every load of a model, with its plan, its child and what it measured */
	"CREATE TABLE loads ("
	"  id INTEGER PRIMARY KEY,"
	"  model_id TEXT NOT NULL,"
	"  started_at TEXT NOT NULL,"
	"  ended_at TEXT,"
	"  pid INTEGER,"
	"  port INTEGER,"
	"  state TEXT NOT NULL,"
	"  plan TEXT,"
	"  measured TEXT,"
	"  error TEXT);"
	"CREATE INDEX loads_model ON loads(model_id);",
	/* 2 -> 3: which process a load's pid was (its start time and the boot), so that a
	 * later start stops only its own children, never a process that got the pid since */
	"ALTER TABLE loads ADD COLUMN start_ticks INTEGER;"
	"ALTER TABLE loads ADD COLUMN boot_id TEXT;",
	/* 3 -> 4: what each device's children held beyond their buffers (registry_overhead.c) */
	"CREATE TABLE device_overhead ("
	"  device TEXT PRIMARY KEY,"
	"  name TEXT,"
	"  bytes INTEGER NOT NULL,"
	"  loads INTEGER NOT NULL,"
	"  samples TEXT NOT NULL,"
	"  updated_at TEXT NOT NULL);",
};

void registry_wrote(struct registry *r, int ok, const char *what)
{
	if (ok) {
		if (r->write_failing)
			log_info("registry: %s: writes work again", r->path);
		r->write_failing = 0;
		return;
	}
	if (!r->write_failing)
		log_error("registry: %s: %s failed: %s", r->path, what, sqlite3_errmsg(r->db));
	r->write_failing = 1;
	snprintf(r->write_error, sizeof r->write_error, "%s failed: %s", what,
	    sqlite3_errmsg(r->db));
}

const char *registry_write_error(struct registry *r)
{
	return r != NULL && r->write_failing ? r->write_error : NULL;
}

void registry_now_iso(char *buf, size_t len)
{
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}


static const char *col_text(sqlite3_stmt *st, int i)
{
	return (const char *)sqlite3_column_text(st, i);
}

/* Runs SQL without results (no parameters). Returns 0, or -1 with err. */
static int exec(struct registry *r, const char *sql, char *err, size_t errlen)
{
	char *msg = NULL;
	if (sqlite3_exec(r->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", r->path, msg ? msg : sqlite3_errmsg(r->db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static sqlite3_stmt *prepare(struct registry *r, const char *sql, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(r->db, sql, -1, &st, NULL) != SQLITE_OK) {
		if (err != NULL)
			snprintf(err, errlen, "%s: %s", r->path, sqlite3_errmsg(r->db));
		else
			log_warnx("registry: %s: %s", r->path, sqlite3_errmsg(r->db));
		sqlite3_finalize(st);
		return NULL;
	}
	return st;
}

/* The first column of the first row of sql as an integer. Returns 0 or -1. */
static int query_int(struct registry *r, const char *sql, int64_t *out, char *err,
    size_t errlen)
{
	sqlite3_stmt *st = prepare(r, sql, err, errlen);
	if (st == NULL)
		return -1;
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		snprintf(err, errlen, "%s: %s", r->path, rc == SQLITE_DONE ? "no answer" :
		    sqlite3_errmsg(r->db));
		sqlite3_finalize(st);
		return -1;
	}
	*out = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return 0;
}

/* PRAGMA quick_check: 0 when it says "ok", else -1 with its first complaint. */
static int quick_check(struct registry *r, char *err, size_t errlen)
{
	sqlite3_stmt *st = prepare(r, "PRAGMA quick_check(1)", err, errlen);
	if (st == NULL)
		return -1;
	int rc = sqlite3_step(st);
	const char *t = rc == SQLITE_ROW ? col_text(st, 0) : NULL;
	int ok = t != NULL && strcmp(t, "ok") == 0;
	if (!ok) {
		snprintf(err, errlen, "%s: the database fails its check: %s", r->path,
		    t != NULL ? t : sqlite3_errmsg(r->db));
		for (char *p = err; *p != '\0'; p++)
			if (*p == '\n')
				*p = ' ';
	}
	sqlite3_finalize(st);
	return ok ? 0 : -1;
}

static int migrate(struct registry *r, int64_t from, char *err, size_t errlen)
{
	for (int64_t v = from; v < REGISTRY_SCHEMA; v++) {
		char sql[64];
		if (exec(r, "BEGIN IMMEDIATE", err, errlen) < 0)
			return -1;
		snprintf(sql, sizeof sql, "PRAGMA user_version = %d", (int)v + 1);
		if (exec(r, migrations[v], err, errlen) < 0 || exec(r, sql, err, errlen) < 0 ||
		    exec(r, "COMMIT", err, errlen) < 0) {
			char e2[64];
			exec(r, "ROLLBACK", e2, sizeof e2);
			return -1;
		}
		log_info("registry: %s: schema %d", r->path, (int)v + 1);
	}
	return 0;
}

/* What is wrong with the database file or its folder before SQLite sees them: a
 * folder in place of the file, a file that cannot be read and written, a folder where
 * the journal cannot be created. Returns 0 or -1 with err. */
static int check_path(const char *path, char *err, size_t errlen)
{
	struct stat st;
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: is %s, not a database file; left as it is", path,
		    S_ISDIR(st.st_mode) ? "a folder" : "not a regular file");
		return -1;
	}
	if (stat(path, &st) == 0 && access(path, R_OK | W_OK) < 0) {
		snprintf(err, errlen, "%s: cannot be read and written: %s", path, strerror(errno));
		return -1;
	}
	char *dir = xstrdup(path), *slash = strrchr(dir, '/');
	if (slash != NULL)
		*(slash == dir ? slash + 1 : slash) = '\0';
	int rc = access(slash != NULL ? dir : ".", W_OK | X_OK);
	if (rc < 0)
		snprintf(err, errlen, "%s: its folder is not writable (%s), and SQLite keeps its "
		    "journal there", path, strerror(errno));
	free(dir);
	return rc < 0 ? -1 : 0;
}

struct registry *registry_open(const char *path, char *err, size_t errlen)
{
	if (check_path(path, err, errlen) < 0)
		return NULL;
	struct registry *r = xcalloc(1, sizeof *r);
	char msg[512];
	int64_t ver = 0;
	r->path = xstrdup(path);
	int rc = sqlite3_open_v2(path, &r->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
	    SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "%s: cannot open the database: %s", path,
		    r->db ? sqlite3_errmsg(r->db) : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_extended_result_codes(r->db, 1);
	sqlite3_busy_timeout(r->db, REG_BUSY_MS);
	/* reads only until the file is known to be ours */
	if (query_int(r, "PRAGMA user_version", &ver, msg, sizeof msg) < 0) {
		snprintf(err, errlen, "%s: not a usable SQLite database (%s); left as it is",
		    path, sqlite3_errmsg(r->db));
		goto fail;
	}
	if (quick_check(r, msg, sizeof msg) < 0) {
		snprintf(err, errlen, "%s; left as it is", msg);
		goto fail;
	}
	if (ver > REGISTRY_SCHEMA || ver < 0) {
		snprintf(err, errlen, "%s: schema version %lld is newer than this mloffloadd "
		    "knows (%d); left as it is", path, (long long)ver, REGISTRY_SCHEMA);
		goto fail;
	}
	if (ver == 0) {
		int64_t n = 0;
		if (query_int(r, "SELECT count(*) FROM sqlite_master", &n, err, errlen) < 0)
			goto fail;
		if (n > 0) {
			snprintf(err, errlen, "%s: a database of something else (tables, no "
			    "mloffload schema version); left as it is", path);
			goto fail;
		}
	}
	if (sqlite3_db_readonly(r->db, "main") == 1) {
		snprintf(err, errlen, "%s: the database is read-only", path);
		goto fail;
	}
	/* WAL only once the file is ours: switching it rewrites the header */
	if (migrate(r, ver, err, errlen) < 0 ||
	    exec(r, "PRAGMA journal_mode = WAL", err, errlen) < 0 ||
	    exec(r, "PRAGMA synchronous = NORMAL", err, errlen) < 0 ||
	    exec(r, "PRAGMA foreign_keys = ON", err, errlen) < 0)
		goto fail;
	return r;
fail:
	registry_close(r);
	return NULL;
}

void registry_close(struct registry *r)
{
	if (r == NULL)
		return;
	sqlite3_close_v2(r->db);
	free(r->path);
	free(r);
}

int registry_healthy(struct registry *r)
{
	int64_t v;
	char err[256];
	return r != NULL && r->db != NULL && query_int(r, "SELECT 1", &v, err, sizeof err) == 0
	    && v == 1;
}

static int known_cmp(const void *a, const void *b)
{
	return strcmp(((const struct scan_known *)a)->path,
	    ((const struct scan_known *)b)->path);
}

struct scan_known *registry_known(struct registry *r, size_t *n)
{
	struct scan_known *k = NULL;
	size_t cap = 0;
	*n = 0;
	sqlite3_stmt *st = prepare(r, "SELECT path, size, mtime_ns, info FROM models "
	    "ORDER BY path", NULL, 0);
	if (st == NULL)
		return NULL;
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *path = col_text(st, 0), *info = col_text(st, 3);
		if (path == NULL)
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 64;
			k = xreallocarray(k, cap, sizeof *k);
		}
		struct scan_known *e = &k[(*n)++];
		e->path = xstrdup(path);
		e->size = (uint64_t)sqlite3_column_int64(st, 1);
		e->mtime_ns = sqlite3_column_int64(st, 2);
		e->mmproj = NULL;
		if (info != NULL) {
			json_t *j = json_loads(info, 0, NULL);
			const char *mm = json_string_value(json_object_get(j, "mmproj"));
			if (mm != NULL)
				e->mmproj = xstrdup(mm);
			json_decref(j);
		}
	}
	sqlite3_finalize(st);
	if (*n > 1)
		qsort(k, *n, sizeof *k, known_cmp); /* strcmp order, whatever the collation */
	return k;
}

void registry_known_free(struct scan_known *k, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free((char *)k[i].path);
		free((char *)k[i].mmproj);
	}
	free(k);
}


static int item_cmp(const void *a, const void *b)
{
	return strcmp(((const struct scan_item *)a)->path,
	    ((const struct scan_item *)b)->path);
}

/* Writes the stable id base of a model file: its name in lower case, [a-z0-9._-] kept
 * and others made '-', without ".gguf" and a split suffix "-00001-of-0000N". */
static void id_base(const char *path, char *out, size_t len)
{
	const char *name = strrchr(path, '/');
	name = name ? name + 1 : path;
	size_t n = strlen(name), j = 0;
	if (n > 5 && strncasecmp(name + n - 5, ".gguf", 5) == 0)
		n -= 5;
	if (n > 15 && name[n - 15] == '-' && strncmp(name + n - 9, "-of-", 4) == 0 &&
	    strspn(name + n - 14, "0123456789") == 5 && strspn(name + n - 5, "0123456789") == 5)
		n -= 15;
	for (size_t i = 0; i < n && j + 1 < len; i++) {
		char c = name[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		    c == '-'))
			c = '-';
		out[j++] = c;
	}
	out[j] = '\0';
	/* no leading dots or dashes ("." and ".." are not ids), no trailing dashes */
	size_t skip = strspn(out, ".-");
	memmove(out, out + skip, j - skip + 1);
	j -= skip;
	while (j > 0 && out[j - 1] == '-')
		out[--j] = '\0';
	if (j == 0)
		snprintf(out, len, "model");
}

/* A new id for path, not yet in the table: base, base-2, base-3... */
static int new_id(struct registry *r, sqlite3_stmt *q, const char *path, char *id,
    size_t len)
{
	char base[REG_ID_MAX];
	id_base(path, base, sizeof base);
	for (int i = 1; i < 1000000; i++) {
		if (i == 1)
			snprintf(id, len, "%s", base);
		else
			snprintf(id, len, "%s-%d", base, i);
		sqlite3_reset(q);
		sqlite3_bind_text(q, 1, id, -1, SQLITE_TRANSIENT);
		int rc = sqlite3_step(q);
		if (rc == SQLITE_DONE)
			return 0;
		if (rc != SQLITE_ROW)
			return -1;
	}
	return -1;
}

static int same_text(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

enum { ST_SEL, ST_INS, ST_UPD, ST_ID, ST_ALL, ST_DEL, ST_SCAN, ST_PRUNE, ST_N };

static const char *const apply_sql[ST_N] = {
	"SELECT size, mtime_ns, state, error, info FROM models WHERE path = ?1",
	"INSERT INTO models (id, path, size, mtime_ns, state, error, info, scanned_at, "
	"first_seen) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
	"UPDATE models SET size = ?2, mtime_ns = ?3, state = ?4, error = ?5, info = ?6, "
	"scanned_at = ?7 WHERE path = ?1",
	"SELECT 1 FROM models WHERE id = ?1",
	"SELECT path FROM models",
	"DELETE FROM models WHERE path = ?1",
	"INSERT INTO scans (at, ms, added, updated, removed, unchanged, errors, "
	"dirs_missing, dir_error) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
	"DELETE FROM scans WHERE id <= ?1",
};

static int step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* One item: inserted, updated, or counted. Returns 0 or -1. */
static int apply_item(struct registry *r, sqlite3_stmt **st, const struct scan_item *it,
    const char *now, struct reg_counts *k)
{
	const char *state = it->error ? "error" : "available";
	char *info = it->info ? json_dumps(it->info, JSON_COMPACT) : NULL;
	int rc = -1;
	sqlite3_stmt *sel = st[ST_SEL];
	sqlite3_bind_text(sel, 1, it->path, -1, SQLITE_STATIC);
	int s = sqlite3_step(sel);
	if (s == SQLITE_ROW) {
		const char *ostate = col_text(sel, 2);
		int was_error = ostate != NULL && strcmp(ostate, "error") == 0;
		if (it->unchanged || ((uint64_t)sqlite3_column_int64(sel, 0) == it->size &&
		    sqlite3_column_int64(sel, 1) == it->mtime_ns && same_text(ostate, state) &&
		    same_text(col_text(sel, 3), it->error) &&
		    same_text(col_text(sel, 4), info))) {
			k->unchanged++;
			k->errors += was_error;
			sqlite3_reset(sel);
			rc = 0;
			goto out;
		}
		sqlite3_reset(sel);
		sqlite3_stmt *u = st[ST_UPD];
		sqlite3_bind_text(u, 1, it->path, -1, SQLITE_STATIC);
		sqlite3_bind_int64(u, 2, (sqlite3_int64)it->size);
		sqlite3_bind_int64(u, 3, it->mtime_ns);
		sqlite3_bind_text(u, 4, state, -1, SQLITE_STATIC);
		sqlite3_bind_text(u, 5, it->error, -1, SQLITE_STATIC);
		sqlite3_bind_text(u, 6, info, -1, SQLITE_STATIC);
		sqlite3_bind_text(u, 7, now, -1, SQLITE_STATIC);
		if (step_done(u) < 0)
			goto out;
		k->updated++;
	} else if (s == SQLITE_DONE) {
		sqlite3_reset(sel);
		if (it->unchanged) {
			/* known to the scan but not here: nothing to describe it with */
			log_warnx("registry: %s: unchanged but not known; rescan without known",
			    it->path);
			rc = 0;
			goto out;
		}
		char id[REG_ID_MAX + 16];
		if (new_id(r, st[ST_ID], it->path, id, sizeof id) < 0)
			goto out;
		sqlite3_stmt *in = st[ST_INS];
		sqlite3_bind_text(in, 1, id, -1, SQLITE_STATIC);
		sqlite3_bind_text(in, 2, it->path, -1, SQLITE_STATIC);
		sqlite3_bind_int64(in, 3, (sqlite3_int64)it->size);
		sqlite3_bind_int64(in, 4, it->mtime_ns);
		sqlite3_bind_text(in, 5, state, -1, SQLITE_STATIC);
		sqlite3_bind_text(in, 6, it->error, -1, SQLITE_STATIC);
		sqlite3_bind_text(in, 7, info, -1, SQLITE_STATIC);
		sqlite3_bind_text(in, 8, now, -1, SQLITE_STATIC);
		if (step_done(in) < 0)
			goto out;
		k->added++;
	} else {
		sqlite3_reset(sel);
		goto out;
	}
	k->errors += it->error != NULL;
	rc = 0;
out:
	free(info);
	return rc;
}

/* 1 if the model at p is in a folder that is no longer configured at all. */
static int dropped(const char *p, const struct scan_result *s)
{
	return s->n_configured > 0 && !scan_under_any(p, s->dirs, s->n_dirs) &&
	    !scan_under_any(p, s->configured, s->n_configured);
}

/* Deletes the models under the walked folders that the scan did not find, unless the
 * scan stopped early or the model lies in a folder it could not read; and the models
 * of folders dropped from the configuration. A configured folder that is missing
 * keeps its models (it may be an unmounted disk). */
static int apply_removals(struct registry *r, sqlite3_stmt **st, const struct scan_result *s,
    struct reg_counts *k)
{
	char **gone = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	if (s->truncated)
		return 0;
	sqlite3_stmt *all = st[ST_ALL];
	int x;
	while ((x = sqlite3_step(all)) == SQLITE_ROW) {
		const char *p = col_text(all, 0);
		struct scan_item key;
		if (p == NULL || (!dropped(p, s) && (!scan_under_any(p, s->dirs, s->n_dirs) ||
		    scan_under_any(p, s->skipped, s->n_skipped))))
			continue;
		key.path = (char *)p;
		if (s->n_items > 0 && bsearch(&key, s->items, s->n_items, sizeof *s->items,
		    item_cmp) != NULL)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			gone = xreallocarray(gone, cap, sizeof *gone);
		}
		gone[n++] = xstrdup(p);
	}
	sqlite3_reset(all);
	if (x != SQLITE_DONE)
		rc = -1;
	for (size_t i = 0; i < n; i++) {
		if (rc == 0) {
			sqlite3_bind_text(st[ST_DEL], 1, gone[i], -1, SQLITE_STATIC);
			rc = step_done(st[ST_DEL]);
			k->removed += rc == 0;
		}
		free(gone[i]);
	}
	free(gone);
	return rc;
}

int registry_apply(struct registry *r, const struct scan_result *s, struct reg_counts *c,
    char *err, size_t errlen)
{
	struct reg_counts k = { 0, 0, 0, 0, 0 };
	sqlite3_stmt *st[ST_N] = { NULL };
	char now[32];
	int rc = -1;
	registry_now_iso(now, sizeof now);
	memset(c, 0, sizeof *c);
	for (int i = 0; i < ST_N; i++)
		if ((st[i] = prepare(r, apply_sql[i], err, errlen)) == NULL)
			goto done;
	if (exec(r, "BEGIN IMMEDIATE", err, errlen) < 0) {
		registry_wrote(r, 0, "storing a scan");
		goto done;
	}
	for (size_t i = 0; i < s->n_items; i++) {
		if (s->items[i].path == NULL)
			continue;
		if (apply_item(r, st, &s->items[i], now, &k) < 0)
			goto fail;
	}
	if (apply_removals(r, st, s, &k) < 0)
		goto fail;
	sqlite3_stmt *sc = st[ST_SCAN];
	sqlite3_bind_text(sc, 1, now, -1, SQLITE_STATIC);
	sqlite3_bind_double(sc, 2, s->ms);
	sqlite3_bind_int(sc, 3, k.added);
	sqlite3_bind_int(sc, 4, k.updated);
	sqlite3_bind_int(sc, 5, k.removed);
	sqlite3_bind_int(sc, 6, k.unchanged);
	sqlite3_bind_int(sc, 7, k.errors);
	sqlite3_bind_int64(sc, 8, (sqlite3_int64)s->n_dirs_missing);
	sqlite3_bind_text(sc, 9, s->dir_error, -1, SQLITE_STATIC);
	if (step_done(sc) < 0)
		goto fail;
	sqlite3_bind_int64(st[ST_PRUNE], 1, sqlite3_last_insert_rowid(r->db) - REG_MAX_SCANS);
	if (step_done(st[ST_PRUNE]) < 0)
		goto fail;
	if (exec(r, "COMMIT", err, errlen) < 0)
		goto fail_msg;
	*c = k;
	rc = 0;
	registry_wrote(r, 1, NULL);
	goto done;
fail:
	snprintf(err, errlen, "%s: %s", r->path, sqlite3_errmsg(r->db));
fail_msg:
	registry_wrote(r, 0, "storing a scan");
	{
		char e2[128];
		exec(r, "ROLLBACK", e2, sizeof e2);
	}
done:
	for (int i = 0; i < ST_N; i++)
		sqlite3_finalize(st[i]);
	return rc;
}

/* The model object of docs/daemon.md from a row (id, path, state, error, info,
 * scanned_at, size). */
static json_t *model_json(sqlite3_stmt *st)
{
	const char *id = col_text(st, 0), *path = col_text(st, 1), *state = col_text(st, 2);
	const char *error = col_text(st, 3), *at = col_text(st, 5);
	json_t *m = json_object();
	json_t *in = registry_info(col_text(st, 4));
	json_object_set_new(m, "id", util_json_str(id ? id : ""));
	json_t *name = in ? json_object_get(in, "name") : NULL;
	if (name != NULL) {
		json_object_set(m, "name", name);
	} else {
		char stem[REG_STEM_MAX];
		registry_stem(path, stem, sizeof stem);
		json_object_set_new(m, "name", util_json_str(stem));
	}
	json_object_set_new(m, "backend", json_string("llama.cpp"));
	json_object_set_new(m, "path", util_json_str(path ? path : ""));
	json_object_set_new(m, "state", util_json_str(state ? state : "error"));
	json_object_set_new(m, "error", error ? util_json_str(error) : json_null());
	if (in != NULL) {
		const char *k;
		json_t *v;
		json_object_foreach(in, k, v) {
			if (json_object_get(m, k) == NULL)
				json_object_set(m, k, v);
		}
	} else {
		json_object_set_new(m, "file_bytes", json_integer(sqlite3_column_int64(st, 6)));
	}
	json_object_set_new(m, "scanned_at", at ? util_json_str(at) : json_null());
	json_object_set_new(m, "measured", json_null());
	json_decref(in);
	return m;
}

#define MODEL_COLS "SELECT id, path, state, error, info, scanned_at, size FROM models"

json_t *registry_models(struct registry *r)
{
	json_t *a = json_array();
	sqlite3_stmt *st = prepare(r, MODEL_COLS " ORDER BY id", NULL, 0);
	if (st == NULL)
		return a;
	while (sqlite3_step(st) == SQLITE_ROW)
		json_array_append_new(a, model_json(st));
	sqlite3_finalize(st);
	return a;
}

json_t *registry_model(struct registry *r, const char *id)
{
	json_t *m = NULL;
	sqlite3_stmt *st = prepare(r, MODEL_COLS " WHERE id = ?1", NULL, 0);
	if (st == NULL)
		return NULL;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		m = model_json(st);
	sqlite3_finalize(st);
	return m;
}

json_t *registry_state_counts(struct registry *r)
{
	json_t *o = json_object();
	json_object_set_new(o, "available", json_integer(0));
	json_object_set_new(o, "error", json_integer(0));
	sqlite3_stmt *st = prepare(r, "SELECT state, count(*) FROM models GROUP BY state",
	    NULL, 0);
	if (st == NULL)
		return o;
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *s = col_text(st, 0);
		if (s != NULL)
			json_object_set_new(o, s, json_integer(sqlite3_column_int64(st, 1)));
	}
	sqlite3_finalize(st);
	return o;
}

json_t *registry_last_scan(struct registry *r)
{
	json_t *o = NULL;
	sqlite3_stmt *st = prepare(r, "SELECT at, ms, added, updated, removed, unchanged, "
	    "errors, dirs_missing, dir_error FROM scans ORDER BY id DESC LIMIT 1", NULL, 0);
	if (st == NULL)
		return NULL;
	if (sqlite3_step(st) == SQLITE_ROW) {
		static const char *const names[] = { "added", "updated", "removed", "unchanged",
			"errors", "dirs_missing" };
		const char *at = col_text(st, 0), *de = col_text(st, 8);
		o = json_object();
		json_object_set_new(o, "at", util_json_str(at ? at : ""));
		json_object_set_new(o, "ms", json_real(sqlite3_column_double(st, 1)));
		for (int i = 0; i < 6; i++)
			json_object_set_new(o, names[i], json_integer(sqlite3_column_int64(st, 2 + i)));
		json_object_set_new(o, "dir_error", de ? util_json_str(de) : json_null());
	}
	sqlite3_finalize(st);
	return o;
}

int registry_event(struct registry *r, const char *type, json_t *data)
{
	char now[32];
	int rc = -1;
	registry_now_iso(now, sizeof now);
	char *d = data ? json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	sqlite3_stmt *in = prepare(r, "INSERT INTO events (at, type, data) VALUES (?1, ?2, ?3)",
	    NULL, 0);
	sqlite3_stmt *pr = prepare(r, "DELETE FROM events WHERE id <= ?1", NULL, 0);
	if (in == NULL || pr == NULL || type == NULL)
		goto out;
	sqlite3_bind_text(in, 1, now, -1, SQLITE_STATIC);
	sqlite3_bind_text(in, 2, type, -1, SQLITE_STATIC);
	sqlite3_bind_text(in, 3, d, -1, SQLITE_STATIC);
	if (sqlite3_step(in) != SQLITE_DONE) {
		log_warnx("registry: %s: event %s: %s", r->path, type, sqlite3_errmsg(r->db));
		registry_wrote(r, 0, "recording an event");
		goto out;
	}
	registry_wrote(r, 1, NULL);
	sqlite3_bind_int64(pr, 1, sqlite3_last_insert_rowid(r->db) - REG_MAX_EVENTS);
	if (sqlite3_step(pr) != SQLITE_DONE)
		log_warnx("registry: %s: pruning events: %s", r->path, sqlite3_errmsg(r->db));
	rc = 0;
out:
	sqlite3_finalize(in);
	sqlite3_finalize(pr);
	free(d);
	return rc;
}
