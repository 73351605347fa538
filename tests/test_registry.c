/*
 * test_registry: the SQLite store through its life: created and migrated, a scan
 * applied (added, then unchanged, updated, removed), ids that survive a restart and
 * collide into -2, a vanished folder that removes nothing, error files kept as errors,
 * a scan that fails half-way leaving nothing behind, and databases that must be refused
 * and left byte for byte as they were (garbage, a newer schema, someone else's tables).
 */
#include "testutil.h"

#include "ggufw.h"
#include "registry.h"
#include "scan.h"
#include "shapes.h"
#include "util.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MiB (1024ull * 1024)

static char *root;  /* resolved tmpdir/models */

static char *at(const char *rel)
{
	return xasprintf("%s/%s", root, rel);
}

static void gen(const char *rel)
{
	char err[4096];
	const struct shape *s = shapes_find("tiny");
	char *vocab = shapes_vocab_path(s->vocab);
	char *p = at(rel);
	struct shapes_opts o = { NULL, vocab, 0, 1, 1 };
	if (shapes_write(s, &o, p, err, sizeof err) < 0)
		fail_msg("%s", err);
	free(vocab);
	free(p);
}

static int setup(void **state)
{
	char rp[4096];
	char *m = tu_path("models");
	assert_int_equal(tu_sh("mkdir -p '%s/a' '%s/b'", m, m), 0);
	assert_non_null(realpath(m, rp));
	root = xstrdup(rp);
	free(m);
	gen("a/Tiny Model.Q8.gguf");
	gen("a/other.gguf");
	gen("b/TINY-MODEL.Q8.gguf"); /* same id base as a/Tiny Model.Q8.gguf */
	char *bad = at("a/broken.gguf");
	assert_int_equal(tu_write_file(bad, "GGUF\3\0\0\0", 8), 0);
	free(bad);
	return 0;
}

static int teardown(void **state)
{
	free(root);
	return 0;
}

static const struct scan_device devs[] = { { "gpu0", "GPU", 512 * MiB, 0 } };

static struct scan_result *scan(struct registry *r, char **dirs, size_t n)
{
	size_t nk;
	struct scan_known *k = registry_known(r, &nk);
	struct scan_opts o;
	memset(&o, 0, sizeof o);
	o.dirs = dirs;
	o.n_dirs = n;
	o.known = k;
	o.n_known = nk;
	o.devs = devs;
	o.n_devs = 1;
	struct scan_result *s = scan_run(&o);
	registry_known_free(k, nk);
	return s;
}

static struct reg_counts apply(struct registry *r, char **dirs, size_t n)
{
	struct reg_counts c;
	char err[512];
	struct scan_result *s = scan(r, dirs, n);
	if (registry_apply(r, s, &c, err, sizeof err) < 0)
		fail_msg("%s", err);
	scan_free(s);
	return c;
}

static int64_t sql_int(const char *db, const char *sql)
{
	sqlite3 *h;
	sqlite3_stmt *st;
	int64_t v = -1;
	assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(h);
	return v;
}

static void sql_exec(const char *db, const char *sql)
{
	sqlite3 *h;
	assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);
}

/* The id of the model at rel, from registry_models. */
static const char *id_of(json_t *models, const char *rel)
{
	char *p = at(rel);
	const char *id = NULL;
	size_t i;
	json_t *m;
	json_array_foreach(models, i, m)
		if (strcmp(json_string_value(json_object_get(m, "path")), p) == 0)
			id = json_string_value(json_object_get(m, "id"));
	free(p);
	return id;
}

static void lifecycle(void **state)
{
	char err[512];
	char *db = tu_path("state.db");
	char *dirs[] = { root };
	struct registry *r = registry_open(db, err, sizeof err);
	if (r == NULL)
		fail_msg("%s", err);
	assert_true(registry_healthy(r));
	assert_null(registry_last_scan(r));

	struct reg_counts c = apply(r, dirs, 1);
	assert_int_equal(c.added, 4);
	assert_int_equal(c.errors, 1);
	assert_int_equal(c.updated, 0);
	assert_int_equal(c.removed, 0);
	json_t *ms = registry_models(r);
	assert_int_equal(json_array_size(ms), 4);
	assert_string_equal(id_of(ms, "a/Tiny Model.Q8.gguf"), "tiny-model.q8");
	assert_string_equal(id_of(ms, "b/TINY-MODEL.Q8.gguf"), "tiny-model.q8-2");
	assert_string_equal(id_of(ms, "a/other.gguf"), "other");
	assert_string_equal(id_of(ms, "a/broken.gguf"), "broken");

	json_t *m = registry_model(r, "other");
	assert_non_null(m);
	assert_string_equal(json_string_value(json_object_get(m, "backend")), "llama.cpp");
	assert_string_equal(json_string_value(json_object_get(m, "state")), "available");
	assert_true(json_is_null(json_object_get(m, "error")));
	assert_true(json_is_null(json_object_get(m, "measured")));
	assert_string_equal(json_string_value(json_object_get(m, "arch")), "llama");
	assert_non_null(json_object_get(m, "estimate"));
	assert_int_equal(json_array_size(json_object_get(m, "fit")), 1);
	assert_non_null(json_string_value(json_object_get(m, "scanned_at")));
	/* the documented key order starts id, name, backend, path, state, error */
	const char *first[] = { "id", "name", "backend", "path", "state", "error" };
	void *it = json_object_iter(m);
	for (int i = 0; i < 6; i++, it = json_object_iter_next(m, it))
		assert_string_equal(json_object_iter_key(it), first[i]);
	json_decref(m);
	m = registry_model(r, "broken");
	assert_string_equal(json_string_value(json_object_get(m, "state")), "error");
	assert_non_null(json_string_value(json_object_get(m, "error")));
	assert_string_equal(json_string_value(json_object_get(m, "name")), "broken");
	json_decref(m);
	assert_null(registry_model(r, "no-such-model"));

	json_t *sc = registry_state_counts(r);
	assert_int_equal(json_integer_value(json_object_get(sc, "available")), 3);
	assert_int_equal(json_integer_value(json_object_get(sc, "error")), 1);
	json_decref(sc);
	json_t *ls = registry_last_scan(r);
	assert_non_null(ls);
	assert_int_equal(json_integer_value(json_object_get(ls, "added")), 4);
	assert_int_equal(json_integer_value(json_object_get(ls, "errors")), 1);
	json_decref(ls);

	/* restart: same ids; a rescan changes nothing */
	registry_close(r);
	assert_int_equal(sql_int(db, "PRAGMA user_version"), REGISTRY_SCHEMA);
	r = registry_open(db, err, sizeof err);
	if (r == NULL)
		fail_msg("%s", err);
	json_t *ms2 = registry_models(r);
	assert_true(json_equal(ms, ms2));
	json_decref(ms2);
	c = apply(r, dirs, 1);
	assert_int_equal(c.added, 0);
	assert_int_equal(c.updated, 0);
	assert_int_equal(c.removed, 0);
	assert_int_equal(c.unchanged, 4);
	assert_int_equal(c.errors, 1);

	/* touched: updated, id kept */
	char *p = at("a/other.gguf");
	struct timespec ts[2] = { { 2000000000, 0 }, { 2000000000, 0 } };
	assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
	c = apply(r, dirs, 1);
	assert_int_equal(c.updated, 1);
	assert_int_equal(c.unchanged, 3);
	m = registry_model(r, "other");
	assert_non_null(m);
	json_decref(m);

	/* deleted: removed */
	assert_int_equal(unlink(p), 0);
	c = apply(r, dirs, 1);
	assert_int_equal(c.removed, 1);
	assert_null(registry_model(r, "other"));
	free(p);

	/* the folder vanishes: nothing removed, the scan says why */
	char *moved = tu_path("models-away");
	assert_int_equal(rename(root, moved), 0);
	c = apply(r, dirs, 1);
	assert_int_equal(c.removed, 0);
	ms2 = registry_models(r);
	assert_int_equal(json_array_size(ms2), 3);
	json_decref(ms2);
	ls = registry_last_scan(r);
	assert_int_equal(json_integer_value(json_object_get(ls, "dirs_missing")), 1);
	assert_non_null(json_string_value(json_object_get(ls, "dir_error")));
	json_decref(ls);
	assert_int_equal(rename(moved, root), 0);
	free(moved);

	/* a second folder vanishes while the first is there: only its models stay */
	char *a = at("a"), *b = at("b"), *gone = at("b-gone");
	char *two[] = { a, b };
	assert_int_equal(rename(b, gone), 0);
	c = apply(r, two, 2);
	assert_int_equal(c.removed, 0);
	assert_non_null(m = registry_model(r, "tiny-model.q8-2"));
	json_decref(m);
	assert_int_equal(rename(gone, b), 0);
	free(a);
	free(b);
	free(gone);

	/* events */
	json_t *d = json_pack("{s:s}", "model", "other");
	assert_int_equal(registry_event(r, "model.removed", d), 0);
	assert_int_equal(registry_event(r, "scan", NULL), 0);
	json_decref(d);
	registry_close(r);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM events"), 2);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM events WHERE type = "
	    "'model.removed' AND data LIKE '%other%'"), 1);
	assert_true(sql_int(db, "SELECT count(*) FROM scans") >= 6);
	json_decref(ms);
	free(db);
}

/* A scan whose second insert fails: nothing of it stays. */
static void one_transaction(void **state)
{
	char err[512];
	char *db = tu_path("tx.db");
	struct registry *r = registry_open(db, err, sizeof err);
	if (r == NULL)
		fail_msg("%s", err);
	registry_close(r);
	sql_exec(db, "CREATE TRIGGER boom BEFORE INSERT ON models WHEN NEW.path LIKE "
	    "'%boom%' BEGIN SELECT RAISE(ABORT, 'boom'); END");
	r = registry_open(db, err, sizeof err);
	assert_non_null(r);
	struct scan_item items[2] = {
		{ "/m/a.gguf", 10, 1, 0, NULL, json_object() },
		{ "/m/boom.gguf", 10, 1, 0, NULL, json_object() },
	};
	char *dirs[] = { "/m" };
	struct scan_result s;
	memset(&s, 0, sizeof s);
	s.items = items;
	s.n_items = 2;
	s.dirs = dirs;
	s.n_dirs = 1;
	struct reg_counts c;
	assert_int_equal(registry_apply(r, &s, &c, err, sizeof err), -1);
	assert_non_null(strstr(err, "boom"));
	assert_int_equal(c.added, 0);
	json_t *ms = registry_models(r);
	assert_int_equal(json_array_size(ms), 0);
	json_decref(ms);
	assert_null(registry_last_scan(r));
	/* without the bad one it goes through */
	s.n_items = 1;
	assert_int_equal(registry_apply(r, &s, &c, err, sizeof err), 0);
	assert_int_equal(c.added, 1);
	assert_non_null(ms = registry_model(r, "a"));
	json_decref(ms);
	registry_close(r);
	json_decref(items[0].info);
	json_decref(items[1].info);
	free(db);
}

static void assert_refused(const char *db, const char *needle, int no_wal)
{
	char err[512];
	size_t n1, n2;
	uint8_t *before = tu_read_file(db, &n1);
	assert_non_null(before);
	struct registry *r = registry_open(db, err, sizeof err);
	assert_null(r);
	print_message("refused: %s\n", err);
	assert_non_null(strstr(err, db));
	assert_non_null(strstr(err, needle));
	uint8_t *after = tu_read_file(db, &n2);
	assert_non_null(after);
	assert_int_equal(n1, n2);
	assert_memory_equal(before, after, n1);
	free(before);
	free(after);
	char *wal = xasprintf("%s-wal", db);
	if (no_wal)
		assert_int_not_equal(access(wal, F_OK), 0);
	free(wal);
}

static void refuses_bad_databases(void **state)
{
	char err[512];
	char *db = tu_path("garbage.db");
	uint8_t junk[4096];
	for (size_t i = 0; i < sizeof junk; i++)
		junk[i] = (uint8_t)(i * 7 + 3);
	assert_int_equal(tu_write_file(db, junk, sizeof junk), 0);
	assert_refused(db, "not a database", 1);
	free(db);

	db = tu_path("short.db");
	assert_int_equal(tu_write_file(db, "hello", 5), 0);
	assert_refused(db, "not a database", 1);
	free(db);

	db = tu_path("newer.db");
	sql_exec(db, "CREATE TABLE t (x); PRAGMA user_version = 99");
	assert_refused(db, "newer", 1);
	free(db);

	db = tu_path("foreign.db");
	sql_exec(db, "CREATE TABLE notes (x)");
	assert_refused(db, "something else", 1);
	free(db);

	/* ours, but a page in the middle is broken: its quick check fails */
	db = tu_path("damaged.db");
	struct registry *r = registry_open(db, err, sizeof err);
	assert_non_null(r);
	for (int i = 0; i < 200; i++) {
		json_t *d = json_pack("{s:i, s:s}", "i", i, "pad",
		    "0123456789012345678901234567890123456789012345678901234567890123456789");
		assert_int_equal(registry_event(r, "filler", d), 0);
		json_decref(d);
	}
	registry_close(r);
	size_t n;
	uint8_t *b = tu_read_file(db, &n);
	assert_non_null(b);
	assert_true(n >= 6 * 4096);
	memset(b + 5 * 4096 + 8, 0xA5, 4096 - 16);  /* page 6: inside the events table */
	assert_int_equal(tu_write_file(db, b, n), 0);
	free(b);
	assert_refused(db, "left as it is", 0);
	free(db);

	/* a folder is not a database either */
	char *dir = tu_path("a-folder.db");
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_null(registry_open(dir, err, sizeof err));
	assert_non_null(strstr(err, dir));
	free(dir);
}

static void healthy_and_ids(void **state)
{
	char err[512];
	char *db = tu_path("ids.db");
	struct registry *r = registry_open(db, err, sizeof err);
	assert_non_null(r);
	assert_true(registry_healthy(r));
	assert_false(registry_healthy(NULL));
	struct scan_item items[] = {
		{ "/m/Llama3-8B-Q4_K_M.gguf", 1, 1, 0, NULL, NULL },
		{ "/m/big-00001-of-00003.gguf", 1, 1, 0, NULL, NULL },
		{ "/m/x/..gguf", 1, 1, 0, NULL, NULL },
		{ "/m/x/Ünïcode name!.gguf", 1, 1, 0, NULL, NULL },
		{ "/m/y/llama3-8b-q4_k_m.gguf", 1, 1, 0, NULL, NULL },
		{ "/m/z/llama3-8b-q4_k_m.gguf", 1, 1, 0, NULL, NULL },
	};
	const char *want[] = { "llama3-8b-q4_k_m", "big", "model", "n--code-name",
		"llama3-8b-q4_k_m-2", "llama3-8b-q4_k_m-3" };
	size_t n = sizeof items / sizeof items[0];
	for (size_t i = 0; i < n; i++)
		items[i].error = xstrdup("not read");
	char *dirs[] = { "/m" };
	struct scan_result s;
	memset(&s, 0, sizeof s);
	s.items = items;
	s.n_items = n;
	s.dirs = dirs;
	s.n_dirs = 1;
	struct reg_counts c;
	assert_int_equal(registry_apply(r, &s, &c, err, sizeof err), 0);
	assert_int_equal(c.added, (int)n);
	assert_int_equal(c.errors, (int)n);
	for (size_t i = 0; i < n; i++) {
		json_t *m = registry_model(r, want[i]);
		if (m == NULL)
			fail_msg("no model %s", want[i]);
		assert_string_equal(json_string_value(json_object_get(m, "path")), items[i].path);
		assert_string_equal(json_string_value(json_object_get(m, "state")), "error");
		json_decref(m);
		free(items[i].error);
	}
	registry_close(r);
	free(db);
}

/* A clip projector (the scan links it to the models of its folder). */
static void gen_clip(const char *path)
{
	char err[256];
	struct ggufw *w = ggufw_new();
	int64_t ne[2] = { 256, 64 };
	ggufw_str(w, "general.architecture", "clip");
	assert_int_equal(ggufw_tensor(w, "v.patch_embd.weight", 1, 2, ne), 0);
	assert_int_equal(ggufw_tensor(w, "mm.0.weight", 0, 2, ne), 0);
	if (ggufw_write(w, path, GGUFW_HOLE, 1, err, sizeof err) < 0)
		fail_msg("%s", err);
	ggufw_free(w);
}

/* A row's typed fields against the file at path. */
static void assert_row_file(const struct reg_model *m, const char *path, long long t0)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_string_equal(m->path, path);
	assert_int_equal(m->size, (uint64_t)st.st_size);
	assert_int_equal(m->mtime_ns, (int64_t)st.st_mtim.tv_sec * 1000000000 +
	    st.st_mtim.tv_nsec);
	assert_true(m->scanned_at >= t0 && m->scanned_at <= (long long)time(NULL));
}

/* registry_model_get and registry_model_list: a model with a projector, one without,
 * an id that is not there, and a row whose file broke between two scans. */
static void typed_rows(void **state)
{
	char err[512], rp[4096];
	char *db = tu_path("typed.db"), *d = tu_path("typed");
	assert_int_equal(tu_sh("mkdir -p '%s/vis' '%s/plain'", d, d), 0);
	assert_non_null(realpath(d, rp));
	char *vis = xasprintf("%s/vis/vis.gguf", rp), *mm = xasprintf("%s/vis/mmproj-vis.gguf", rp);
	char *plain = xasprintf("%s/plain/plain.gguf", rp), *dirs[] = { rp };
	char *keep = root;
	root = rp;
	gen("vis/vis.gguf");
	gen("plain/plain.gguf");
	root = keep;
	gen_clip(mm);
	struct registry *r = registry_open(db, err, sizeof err);
	if (r == NULL)
		fail_msg("%s", err);
	long long t0 = (long long)time(NULL);
	assert_int_equal(apply(r, dirs, 1).added, 2);

	struct reg_model m;
	assert_int_equal(registry_model_get(r, "vis", &m), 0);
	assert_string_equal(m.id, "vis");
	assert_int_equal(m.state, REG_AVAILABLE);
	assert_null(m.error);
	assert_non_null(m.mmproj);
	assert_string_equal(m.mmproj, mm);
	assert_int_equal(m.kind, REG_KIND_CHAT);
	assert_true(m.context_length > 0);
	assert_row_file(&m, vis, t0);
	/* the same name and context as the JSON row of /models */
	json_t *j = registry_model(r, "vis");
	assert_string_equal(m.name, json_string_value(json_object_get(j, "name")));
	assert_int_equal(m.context_length, json_integer_value(json_object_get(j,
	    "context_length")));
	json_decref(j);
	registry_model_free(&m);
	assert_null(m.id);
	registry_model_free(&m); /* a freed row is zeroed: freeing it again is harmless */

	assert_int_equal(registry_model_get(r, "plain", &m), 0);
	assert_null(m.mmproj);
	assert_int_equal(m.state, REG_AVAILABLE);
	assert_row_file(&m, plain, t0);
	registry_model_free(&m);

	/* a missing id: -1 and a zeroed row */
	memset(&m, 0x5a, sizeof m);
	assert_int_equal(registry_model_get(r, "no-such-model", &m), -1);
	assert_null(m.id);
	assert_null(m.path);
	registry_model_free(&m);

	/* the file breaks: the rescan turns the row to an error, with its reason */
	assert_int_equal(tu_write_file(plain, "GGUF\3\0\0\0", 8), 0);
	struct reg_counts c = apply(r, dirs, 1);
	assert_int_equal(c.updated, 1);
	assert_int_equal(registry_model_get(r, "plain", &m), 0);
	assert_int_equal(m.state, REG_ERROR);
	assert_string_equal(registry_state_name(m.state), "error");
	assert_non_null(m.error);
	assert_string_equal(m.name, "plain");
	assert_int_equal(m.context_length, -1);
	assert_int_equal(m.size, 8);
	registry_model_free(&m);

	size_t n;
	struct reg_model *all = registry_model_list(r, &n);
	assert_int_equal(n, 2);
	assert_string_equal(all[0].id, "plain");
	assert_int_equal(all[0].state, REG_ERROR);
	assert_string_equal(all[1].id, "vis");
	assert_string_equal(all[1].mmproj, mm);
	registry_model_list_free(all, n);
	registry_close(r);
	free(vis);
	free(mm);
	free(plain);
	free(db);
	free(d);
}

/* registry_loads_open: the rows still starting or ready, typed. */
static void typed_loads(void **state)
{
	char err[512];
	char *db = tu_path("loads.db");
	struct registry *r = registry_open(db, err, sizeof err);
	if (r == NULL)
		fail_msg("%s", err);
	size_t n;
	struct reg_load *l = registry_loads_open(r, &n);
	assert_int_equal(n, 0);
	assert_null(l);
	json_t *plan = json_pack("{s:i}", "ngl", 99);
	long long a = registry_load_begin(r, "a", 4242, 8123, 777, "boot-1", plan);
	long long b = registry_load_begin(r, "b", 4343, 8124, 0, "", plan);
	json_decref(plan);
	assert_true(a > 0 && b > a);
	assert_int_equal(registry_load_update(r, a, "ready", NULL, NULL), 0);
	assert_int_equal(registry_load_update(r, b, "failed", NULL, "exit 1"), 0);
	l = registry_loads_open(r, &n);
	assert_int_equal(n, 1);
	assert_int_equal(l[0].row, a);
	assert_string_equal(l[0].model_id, "a");
	assert_int_equal(l[0].pid, 4242);
	assert_int_equal(l[0].port, 8123);
	assert_int_equal(l[0].start_ticks, 777);
	assert_string_equal(l[0].boot_id, "boot-1");
	registry_loads_free(l, n);
	assert_int_equal(registry_load_update(r, a, "stopped", NULL, NULL), 0);
	l = registry_loads_open(r, &n);
	assert_int_equal(n, 0);
	registry_loads_free(l, n);
	registry_close(r);
	free(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(lifecycle),
		cmocka_unit_test(one_transaction),
		cmocka_unit_test(refuses_bad_databases),
		cmocka_unit_test(healthy_and_ids),
		cmocka_unit_test(typed_rows),
		cmocka_unit_test(typed_loads),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
