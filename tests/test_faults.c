/*
 * test_faults: the real mloffloadd when the world around it breaks. A config file that
 * is a folder or gone is an error for -n and changes nothing on SIGHUP; a state folder
 * that is a file, read-only, or holds a folder where the database goes stops the start
 * with words about the folder; a full disk under the registry makes /health degraded
 * (503, naming registry_db and why) until writes work again; the start-up reaper stops
 * its own earlier child but leaves alone a llama-server-named process that merely holds
 * a recorded pid; and a model rewritten and truncated over and over while scans read it
 * never brings the daemon down.
 *
 * The full disk and the read-only folder are real: a small tmpfs and a read-only tmpfs,
 * mounted in a private mount namespace of this test process (as root, or as an
 * unprivileged user in a user namespace of its own), so nothing outside sees them and
 * they go away with the process.
 */
#include "daemonutil.h"

#include "child.h"
#include "ggufw.h"
#include "registry.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char *bin, *models;

/* Writes "text" to /proc/self/NAME. */
static int write_proc_self(const char *name, const char *text)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/self/%s", name);
	return tu_write_file(path, text, strlen(text));
}

/* A mount namespace of this process's own, so the test can mount tmpfs; as a user
 * without the right, inside a user namespace where it is root. */
static void private_mounts(void)
{
	uid_t uid = getuid();
	gid_t gid = getgid();
	if (unshare(CLONE_NEWNS) < 0) {
		if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0) {
			fprintf(stderr, "test_faults: cannot make a mount namespace: %s\n",
			    strerror(errno));
			exit(1);
		}
		char map[64];
		write_proc_self("setgroups", "deny");
		snprintf(map, sizeof map, "0 %u 1", (unsigned)uid);
		write_proc_self("uid_map", map);
		snprintf(map, sizeof map, "0 %u 1", (unsigned)gid);
		write_proc_self("gid_map", map);
	}
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		fprintf(stderr, "test_faults: mount --make-rprivate /: %s\n", strerror(errno));
		exit(1);
	}
}

static void mount_tmpfs(const char *dir, const char *opts, unsigned long flags)
{
	mkdir(dir, 0755);
	if (mount("tmpfs", dir, "tmpfs", flags, opts) < 0)
		fail_msg("mount tmpfs on %s: %s", dir, strerror(errno));
}

/* Starts the daemon on a free port: models folder `models`, state folder state, an
 * optional config file, no GPU library, no backends. */
static int start(struct tu_proc *p, const char *state, const char *conf, const char *log)
{
	char *argv[20];
	int n = 0;
	argv[n++] = bin;
	if (conf != NULL) {
		argv[n++] = "--config";
		argv[n++] = (char *)conf;
	} else {
		argv[n++] = "--models-dir";
		argv[n++] = models;
		argv[n++] = "--rescan";
		argv[n++] = "0";
	}
	argv[n++] = "--listen";
	argv[n++] = "127.0.0.1:0";
	argv[n++] = "--state-dir";
	argv[n++] = (char *)state;
	argv[n++] = "--nvml-lib";
	argv[n++] = "/nonexistent/libnvidia-ml.so";
	argv[n++] = "--ollama-url";
	argv[n++] = "";
	argv[n++] = "--llama-url";
	argv[n++] = "http://127.0.0.1:9";
	argv[n++] = "-v";
	argv[n] = NULL;
	assert_int_equal(tu_spawn(p, argv, log), 0);
	return du_port(p);
}

/* 1 if log file path holds needle. */
static int log_has(const char *path, const char *needle)
{
	size_t len;
	uint8_t *b = tu_read_file(path, &len);
	if (b == NULL)
		return 0;
	b = xrealloc(b, len + 1);
	b[len] = '\0';
	int found = strstr((char *)b, needle) != NULL;
	if (!found)
		fprintf(stderr, "--- %s has no '%s':\n%s\n---\n", path, needle, (char *)b);
	free(b);
	return found;
}

static int n_models(int port)
{
	json_t *j = du_get(port, "/models");
	int n = (int)json_array_size(json_object_get(j, "models"));
	json_decref(j);
	return n;
}

static int has_models(json_t *j, void *arg)
{
	return (int)json_array_size(json_object_get(j, "models")) >= *(int *)arg;
}

/* POST /models/scan; returns the status. */
static int scan(int port)
{
	int status;
	json_decref(du_req(port, "POST", "/models/scan", NULL, &status));
	return status;
}

/* ---- the config file ---- */

/* -n with a folder, or a missing file, as the config: exit 1 and the reason. */
static void unreadable_config_refused(void **st)
{
	(void)st;
	char *dir = tu_path("conf-dir"), *log = tu_path("n.log");
	mkdir(dir, 0755);
	assert_int_equal(tu_sh("%s -n --config %s >%s 2>&1", bin, dir, log), 1);
	assert_true(log_has(log, "is a directory, not a config file"));
	assert_int_equal(tu_sh("%s -n --config %s/none.conf >%s 2>&1", bin, dir, log), 1);
	assert_true(log_has(log, "cannot read the config file: No such file or directory"));
	free(dir);
	free(log);
}

/* The config file replaced by a folder, then deleted: SIGHUP keeps every setting (the
 * models folder, the alias) and the log says why. */
static void reload_keeps_running_config(void **st)
{
	(void)st;
	char *conf = tu_path("live.conf"), *state = tu_path("state-reload");
	char *log = tu_path("reload.log");
	char *body = xasprintf("[daemon]\nmodels_dir = %s\nrescan_interval_s = 0\n"
	    "alias = my-tiny tiny\n", models);
	assert_int_equal(tu_write_file(conf, body, strlen(body)), 0);
	free(body);
	struct tu_proc p;
	int port = start(&p, state, conf, log), one = 1;
	json_decref(du_poll(port, "/models", has_models, &one));
	assert_int_equal(unlink(conf), 0);
	assert_int_equal(mkdir(conf, 0755), 0);
	kill(p.pid, SIGHUP);
	assert_int_equal(tu_wait_log(&p, "is a directory, not a config file", 30), 1);
	assert_true(log_has(log, "SIGHUP: keeping the running configuration"));
	assert_int_equal(scan(port), 200);
	assert_int_equal(n_models(port), 1);
	assert_int_equal(rmdir(conf), 0);
	kill(p.pid, SIGHUP);
	assert_int_equal(tu_wait_log(&p, "cannot read the config file: No such file", 30), 1);
	assert_int_equal(scan(port), 200);
	assert_int_equal(n_models(port), 1);
	json_t *j = du_get(port, "/v1/models");
	char *ids = json_dumps(j, 0);
	assert_non_null(strstr(ids, "\"my-tiny\""));
	free(ids);
	json_decref(j);
	du_stop(&p);
	free(conf);
	free(state);
	free(log);
}

/* ---- the state folder ---- */

/* Runs the daemon with state folder state (it must refuse to start) and checks that
 * its log names the folder's problem. */
static void expect_start_refused(const char *state, const char *why)
{
	char *log = tu_path("refused.log");
	int rc = tu_sh("timeout 30 %s --listen 127.0.0.1:0 --models-dir %s --state-dir %s "
	    "--nvml-lib /nonexistent/libnvidia-ml.so --ollama-url '' --llama-url "
	    "http://127.0.0.1:9 >%s 2>&1", bin, models, state, log);
	assert_int_equal(rc, 1);
	assert_true(log_has(log, why));
	free(log);
}

static void bad_state_folder_named(void **st)
{
	(void)st;
	char *file = tu_path("state-is-a-file"), *sub = tu_path("state-is-a-file/sub");
	assert_int_equal(tu_write_file(file, "x", 1), 0);
	expect_start_refused(file, "is not a folder (a file is in its place)");
	expect_start_refused(sub, "a part of that path is a file, not a folder");
	char *state = tu_path("state-dbdir"), *db = tu_path("state-dbdir/registry.db");
	mkdir(state, 0755);
	mkdir(db, 0755);
	expect_start_refused(state, "registry.db: is a folder, not a database file");
	char *ro = tu_path("state-ro");
	mount_tmpfs(ro, "size=1m", MS_RDONLY);
	expect_start_refused(ro, "the folder is not writable: Read-only file system");
	umount2(ro, MNT_DETACH);
	free(file);
	free(sub);
	free(state);
	free(db);
	free(ro);
}

/* ---- a full disk under the registry ---- */

/* Fills the filesystem of dir with a junk file until it has no room left. */
static void fill(const char *dir)
{
	char *junk = xasprintf("%s/junk", dir);
	int fd = open(junk, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	static char block[4096];
	while (write(fd, block, sizeof block) > 0)
		;
	assert_int_equal(errno, ENOSPC);
	close(fd);
	free(junk);
}

static void full_disk_degrades_health(void **st)
{
	(void)st;
	char *state = tu_path("state-full"), *log = tu_path("full.log");
	mount_tmpfs(state, "size=8m", 0);
	struct tu_proc p;
	int port = start(&p, state, NULL, log), one = 1, status;
	json_decref(du_poll(port, "/models", has_models, &one));
	json_t *j = du_req(port, "GET", "/health", NULL, &status);
	assert_int_equal(status, 200);
	json_decref(j);
	fill(state);
	char *second = xasprintf("%s/second.gguf", models);
	du_gen("tiny", second, NULL, 0, 2);
	assert_int_equal(scan(port), 500); /* the scan cannot be stored */
	j = du_req(port, "GET", "/health", NULL, &status);
	assert_int_equal(status, 503);
	assert_string_equal(json_string_value(json_object_get(j, "status")), "degraded");
	assert_true(json_is_false(du_at(j, "services.registry_db")));
	assert_true(json_is_true(du_at(j, "services.models_path")));
	const char *why = json_string_value(json_object_get(j, "reason"));
	assert_non_null(why);
	assert_non_null(strstr(why, "registry_db: storing a scan failed"));
	assert_non_null(strstr(why, "full"));
	json_decref(j);
	/* room again: the next write works and the daemon is healthy */
	char *junk = xasprintf("%s/junk", state);
	assert_int_equal(unlink(junk), 0);
	assert_int_equal(scan(port), 200);
	j = du_req(port, "GET", "/health", NULL, &status);
	assert_int_equal(status, 200);
	assert_string_equal(json_string_value(json_object_get(j, "status")), "healthy");
	json_decref(j);
	assert_int_equal(n_models(port), 2);
	du_stop(&p);
	umount2(state, MNT_DETACH);
	assert_int_equal(unlink(second), 0);
	free(second);
	free(junk);
	free(state);
	free(log);
}

/* ---- the start-up reaper ---- */

/* Starts a process named llama-server (a copy of /bin/sh under that name) whose command
 * line ends in --port PORT; returns its pid. */
static pid_t impostor(struct tu_proc *p, const char *port)
{
	char *sh = tu_path("llama-server"), *log = tu_path("impostor.log");
	if (access(sh, X_OK) < 0)
		assert_int_equal(tu_sh("cp /bin/sh %s", sh), 0);
	char *argv[] = { sh, "-c", "while :; do sleep 1; done", "sh", "--port", (char *)port,
	    NULL };
	assert_int_equal(tu_spawn(p, argv, log), 0);
	/* its command line is that once it has exec'ed */
	for (int i = 0; i < 200 && !child_pid_has_args(p->pid, "--port", port); i++)
		usleep(10 * 1000);
	free(sh);
	free(log);
	return p->pid;
}

/* 1 once p has exited, 0 if it still runs after 10 s. It is left a zombie (its pid
 * cannot be reused) for tu_stop to reap. */
static int exited(struct tu_proc *p)
{
	for (int i = 0; i < 200; i++) {
		siginfo_t si = { 0 };
		if (waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
		    si.si_pid == p->pid)
			return 1;
		usleep(50 * 1000);
	}
	return 0;
}

static void reaper_checks_identity(void **st)
{
	(void)st;
	char *state = tu_path("state-reap"), *db = tu_path("state-reap/registry.db");
	char *log = tu_path("reap.log"), err[512], boot[64];
	mkdir(state, 0755);
	struct tu_proc stranger, wrong_port, ours, d;
	unsigned long long t1, t2, t3;
	impostor(&stranger, "8123");
	impostor(&wrong_port, "8124");
	impostor(&ours, "8125");
	assert_int_equal(child_pid_start_ticks(stranger.pid, &t1), 0);
	assert_int_equal(child_pid_start_ticks(wrong_port.pid, &t2), 0);
	assert_int_equal(child_pid_start_ticks(ours.pid, &t3), 0);
	child_boot_id(boot, sizeof boot);
	assert_int_equal(strlen(boot), 36);
	struct registry *r = registry_open(db, err, sizeof err);
	if (r == NULL)
		fail_msg("%s", err);
	/* the rows a killed daemon left: a pid since taken by a process that started at
	 * another time, one with the right start but another port, and its own child */
	assert_true(registry_load_begin(r, "gone", stranger.pid, 8123, t1 + 1, boot, NULL) > 0);
	assert_true(registry_load_begin(r, "moved", wrong_port.pid, 8125, t2, boot, NULL) > 0);
	assert_true(registry_load_begin(r, "left", ours.pid, 8125, t3, boot, NULL) > 0);
	registry_close(r);
	start(&d, state, NULL, log);
	assert_true(exited(&ours));
	assert_int_equal(kill(stranger.pid, 0), 0);
	assert_int_equal(waitpid(stranger.pid, NULL, WNOHANG), 0);
	assert_int_equal(waitpid(wrong_port.pid, NULL, WNOHANG), 0);
	assert_true(log_has(log, "stopping left (pid"));
	assert_true(log_has(log, "not stopping pid"));
	assert_true(log_has(log, "its command line has no --port 8125"));
	du_stop(&d);
	/* every row is closed: nothing is left for the next start */
	r = registry_open(db, err, sizeof err);
	assert_non_null(r);
	size_t n_open;
	struct reg_load *open = registry_loads_open(r, &n_open);
	assert_int_equal(n_open, 0);
	registry_loads_free(open, n_open);
	registry_close(r);
	tu_stop(&stranger);
	tu_stop(&wrong_port);
	tu_stop(&ours);
	free(state);
	free(db);
	free(log);
}

/* ---- models changing under a scan ---- */

/* A model with a header of several MiB, so that reading it takes a while. */
static uint8_t *big_header_model(size_t *len)
{
	enum { N = 200000 };
	char *path = tu_path("big.tmp");
	struct ggufw *w = ggufw_new();
	int32_t *v = xcalloc(N, sizeof *v);
	ggufw_str(w, "general.architecture", "llama");
	for (int k = 0; k < 8; k++) {
		char key[32];
		snprintf(key, sizeof key, "t.ints%d", k);
		ggufw_arr_i32(w, key, v, N);
	}
	assert_int_equal(ggufw_tensor(w, "token_embd.weight", 0, 2, (int64_t[]){ 64, 4 }), 0);
	char err[256];
	assert_int_equal(ggufw_write(w, path, GGUFW_HOLE, 0, err, sizeof err), 0);
	uint8_t *b = tu_read_file(path, len);
	assert_non_null(b);
	unlink(path);
	ggufw_free(w);
	free(v);
	free(path);
	return b;
}

/* While scans run, another process truncates the model and writes it back, again and
 * again (what `cp` over a model does). The daemon stays up and, once the file is
 * whole again, lists it. */
static void scan_survives_rewrites(void **st)
{
	(void)st;
	size_t len;
	uint8_t *img = big_header_model(&len);
	char *dir = tu_path("models-rewrite"), *path = tu_path("models-rewrite/churn.gguf");
	char *state = tu_path("state-rewrite"), *log = tu_path("rewrite.log");
	mkdir(dir, 0755);
	assert_int_equal(tu_write_file(path, img, len), 0);
	char *keep = models;
	models = dir;
	struct tu_proc d;
	int port = start(&d, state, NULL, log), one = 1;
	models = keep;
	json_decref(du_poll(port, "/models", has_models, &one));
	pid_t w = fork();
	assert_true(w >= 0);
	if (w == 0) {
		for (int i = 0; i < 300; i++) {
			int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
			for (size_t off = 0; fd >= 0 && off < len; off += 65536)
				if (write(fd, img + off, len - off < 65536 ? len - off : 65536) < 0)
					break;
			if (fd >= 0)
				close(fd);
		}
		_exit(0);
	}
	int scans = 0;
	while (waitpid(w, NULL, WNOHANG) != w) {
		int s = scan(port);
		assert_true(s == 200 || s == 500);
		scans++;
	}
	assert_true(scans > 0);
	assert_int_equal(scan(port), 200);
	int status;
	json_t *j = du_req(port, "GET", "/health", NULL, &status);
	assert_int_equal(status, 200);
	json_decref(j);
	j = du_get(port, "/models");
	assert_string_equal(json_string_value(du_at(j, "models.0.path")), path);
	json_decref(j);
	assert_int_equal(kill(d.pid, 0), 0);
	du_stop(&d);
	free(img);
	free(dir);
	free(path);
	free(state);
	free(log);
}

static int setup(void **st)
{
	(void)st;
	const char *bd = getenv("MLO_BUILD_DIR");
	bin = xasprintf("%s/mloffloadd", bd);
	models = tu_path("models");
	mkdir(models, 0755);
	char *p = xasprintf("%s/tiny.gguf", models);
	du_gen("tiny", p, NULL, 0, 1);
	free(p);
	return 0;
}

int main(void)
{
	private_mounts();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(unreadable_config_refused),
		cmocka_unit_test(reload_keeps_running_config),
		cmocka_unit_test(bad_state_folder_named),
		cmocka_unit_test(full_disk_degrades_health),
		cmocka_unit_test(reaper_checks_identity),
		cmocka_unit_test(scan_survives_rewrites),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
