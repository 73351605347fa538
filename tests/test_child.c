/*
 * test_child: the process supervisor on a real libevent loop with real children
 * (/bin/sh scripts). Covers: lines in order through on_line (stdout and stderr in one
 * pipe), a line over 4 KiB split, an unterminated last line at exit, the exit status
 * delivered once; the environment additions; stdin on /dev/null and no inherited
 * descriptors; a child ignoring SIGTERM killed after the grace; the process group
 * killed (a background grandchild dies too), also when the leader exits on its own;
 * exec failures reported by child_spawn; the ring keeping only the tail; the log file
 * written, capped and rotated; 20 children at once; child_free of a running child,
 * from on_line and from on_exit; child_pid_alive.
 *
 * The test process is a child subreaper (PR_SET_CHILD_SUBREAPER), so a grandchild
 * orphaned by a killed shell is reparented here and can be reaped and checked, whatever
 * runs as pid 1. Every wait is bounded; every test ends by checking that no process of
 * the groups it started is left.
 */
#include "testutil.h"

#include "child.h"
#include "util.h"

#include <event2/event.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WAIT_MS 10000   /* any wait longer than this fails the test */

/* What the callbacks of one child saw. */
struct rec {
	char *lines[512];
	int nlines;
	int exits, status;
	long gc;                    /* pid from a "gc=PID" line */
	struct child *c;
	int free_on_line;           /* on_line frees c */
	int free_on_exit;           /* on_exit frees c */
};

static struct event_base *base;
static struct event *tick;
static pid_t groups[64];
static int ngroups;

static void on_line(void *arg, const char *line)
{
	struct rec *r = arg;
	long long v;

	if (r->nlines < (int)(sizeof r->lines / sizeof r->lines[0]))
		r->lines[r->nlines++] = xstrdup(line);
	if (strncmp(line, "gc=", 3) == 0 && util_parse_int(line + 3, 1, 1 << 30, &v) == 0)
		r->gc = (long)v;
	if (r->free_on_line) {
		child_free(r->c);
		r->c = NULL;
		r->free_on_line = 0;
	}
}

static void on_exit_cb(void *arg, int status)
{
	struct rec *r = arg;

	r->exits++;
	r->status = status;
	if (r->free_on_exit) {
		child_free(r->c);
		r->c = NULL;
	}
}

static void rec_clear(struct rec *r)
{
	for (int i = 0; i < r->nlines; i++)
		free(r->lines[i]);
	memset(r, 0, sizeof *r);
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
}

/* Runs the loop until *flag >= want or ms pass; returns 1 if it got there. */
static int run_until(const int *flag, int want, int ms)
{
	long end = now_ms() + ms;

	while (*flag < want && now_ms() < end)
		event_base_loop(base, EVLOOP_ONCE);
	return *flag >= want;
}

static void run_for(int ms)
{
	int never = 0;

	run_until(&never, 1, ms);
}

/* Spawns sh -c script with the given opts (callbacks to r) and notes its group. */
static struct child *sh(const char *script, struct rec *r, struct child_opts *o)
{
	struct child_opts def;
	char *argv[] = { "/bin/sh", "-c", (char *)script, NULL };
	char err[256];
	struct child *c;

	if (o == NULL) {
		memset(&def, 0, sizeof def);
		o = &def;
	}
	o->on_line = on_line;
	o->on_exit = on_exit_cb;
	o->arg = r;
	c = child_spawn(base, argv, NULL, o, err, sizeof err);
	if (c == NULL)
		fail_msg("spawn: %s", err);
	r->c = c;
	assert_true(ngroups < (int)(sizeof groups / sizeof groups[0]));
	groups[ngroups++] = child_pid(c);
	return c;
}

/* Reaps orphans reparented to us (we are a subreaper). Only called when no supervised
 * child of the current test is still unreaped, so nothing of child.c's is stolen. */
static void reap_orphans(void)
{
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

/* 1 when process (pid > 0) or group (pid < 0) is gone within 3 s. */
static int gone(pid_t pid)
{
	long end = now_ms() + 3000;
	struct timespec ts = { 0, 10 * 1000 * 1000 };

	for (;;) {
		reap_orphans();
		if (kill(pid, 0) == -1 && errno == ESRCH)
			return 1;
		if (now_ms() > end)
			return 0;
		nanosleep(&ts, NULL);
	}
}

static int setup(void **state)
{
	struct timeval tv = { 0, 20000 };

	base = event_base_new();
	tick = event_new(base, -1, EV_PERSIST, tick_cb, NULL);
	event_add(tick, &tv);
	ngroups = 0;
	return base == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	for (int i = 0; i < ngroups; i++)
		if (!gone(-groups[i])) {
			fprintf(stderr, "process group %ld left behind\n", (long)groups[i]);
			kill(-groups[i], SIGKILL);
			return -1;
		}
	event_free(tick);
	event_base_free(base);
	return 0;
}

static void test_lines_order(void **state)
{
	struct rec r = { 0 };
	struct child *c = sh("i=1; while [ $i -le 200 ]; do echo \"line $i\"; i=$((i+1)); done;"
	                     "head -c 5000 /dev/zero | tr '\\0' x; echo;"
	                     "echo to-stderr >&2; printf 'dos\\r\\n'; printf partial; exit 3",
	                     &r, NULL);
	char want[32];

	assert_true(child_running(c));
	assert_true(run_until(&r.exits, 1, WAIT_MS));
	assert_int_equal(r.nlines, 200 + 2 + 3);
	for (int i = 0; i < 200; i++) {
		snprintf(want, sizeof want, "line %d", i + 1);
		assert_string_equal(r.lines[i], want);
	}
	assert_int_equal(strlen(r.lines[200]), CHILD_LINE_MAX);
	assert_int_equal(strlen(r.lines[201]), 5000 - CHILD_LINE_MAX);
	assert_int_equal(strspn(r.lines[200], "x"), CHILD_LINE_MAX);
	assert_string_equal(r.lines[202], "to-stderr");
	assert_string_equal(r.lines[203], "dos");
	assert_string_equal(r.lines[204], "partial");
	assert_true(WIFEXITED(r.status));
	assert_int_equal(WEXITSTATUS(r.status), 3);
	assert_false(child_running(c));
	run_for(200);
	assert_int_equal(r.exits, 1);
	child_free(c);
	rec_clear(&r);
}

static void test_env_stdin_fds(void **state)
{
	struct rec r = { 0 };
	char *argv[] = { "/bin/sh", "-c",
	                 "echo \"$MLO_CHILD_X|$HOME\"; cat; echo stdin-done; ls /proc/$$/fd", NULL };
	char *env[] = { "MLO_CHILD_X=hello world", "HOME=/mlo-home", NULL };
	char *bad[] = { "NOEQUALS", NULL };
	struct child_opts o = { .on_line = on_line, .on_exit = on_exit_cb, .arg = &r };
	char err[256];
	struct child *c;

	assert_null(child_spawn(base, argv, bad, &o, err, sizeof err));
	assert_non_null(strstr(err, "K=V"));
	c = child_spawn(base, argv, env, &o, err, sizeof err);
	assert_non_null(c);
	groups[ngroups++] = child_pid(c);
	assert_true(run_until(&r.exits, 1, WAIT_MS));
	assert_int_equal(r.nlines, 5);
	assert_string_equal(r.lines[0], "hello world|/mlo-home");
	assert_string_equal(r.lines[1], "stdin-done");
	/* Only stdin, stdout and stderr reach the child. */
	assert_string_equal(r.lines[2], "0");
	assert_string_equal(r.lines[3], "1");
	assert_string_equal(r.lines[4], "2");
	assert_int_equal(WEXITSTATUS(r.status), 0);
	child_free(c);
	rec_clear(&r);
}

static void test_term_ignored(void **state)
{
	struct rec r = { 0 };
	struct child *c = sh("trap '' TERM; echo ready; sleep 60", &r, NULL);
	long t0;

	assert_true(run_until(&r.nlines, 1, WAIT_MS));
	assert_string_equal(r.lines[0], "ready");
	t0 = now_ms();
	child_stop(c, 300);
	run_for(100);
	assert_true(child_running(c));   /* TERM is ignored */
	assert_true(run_until(&r.exits, 1, WAIT_MS));
	assert_true(now_ms() - t0 >= 250);
	assert_true(WIFSIGNALED(r.status));
	assert_int_equal(WTERMSIG(r.status), SIGKILL);
	child_free(c);
	rec_clear(&r);
}

static void test_group_killed(void **state)
{
	struct rec r = { 0 };
	struct child *c = sh("sleep 60 & echo gc=$!; wait", &r, NULL);

	assert_true(run_until(&r.nlines, 1, WAIT_MS));
	assert_true(r.gc > 0);
	assert_int_equal(kill((pid_t)r.gc, 0), 0);
	child_stop(c, 5000);
	assert_true(run_until(&r.exits, 1, WAIT_MS));
	assert_true(WIFSIGNALED(r.status));
	assert_int_equal(WTERMSIG(r.status), SIGTERM);
	assert_true(gone((pid_t)r.gc));
	child_free(c);
	rec_clear(&r);
}

/* The leader exits by itself while a grandchild still holds the pipe: the rest of
 * the group is killed, the pipe ends, on_exit comes with the leader's status. */
static void test_leader_exits_first(void **state)
{
	struct rec r = { 0 };
	struct child *c = sh("sleep 60 & echo gc=$!; exit 5", &r, NULL);

	assert_true(run_until(&r.exits, 1, WAIT_MS));
	assert_true(WIFEXITED(r.status));
	assert_int_equal(WEXITSTATUS(r.status), 5);
	/* Killed at the reap, not merely cut off by the 2 s pipe fallback (that would
	 * leave it sleeping). */
	assert_true(r.gc > 0);
	assert_true(gone((pid_t)r.gc));
	child_free(c);
	rec_clear(&r);
}

static void test_exec_fail(void **state)
{
	char *missing[] = { "/nonexistent/mlo-no-such-binary", NULL };
	char *nopath[] = { "mlo-no-such-binary-in-path", NULL };
	char *noexec[] = { NULL, NULL };
	struct rec r = { 0 };
	struct child_opts o = { .on_line = on_line, .on_exit = on_exit_cb, .arg = &r };
	char err[256];
	struct child *c;

	assert_null(child_spawn(base, missing, NULL, &o, err, sizeof err));
	assert_non_null(strstr(err, "exec /nonexistent/mlo-no-such-binary"));
	assert_non_null(strstr(err, "No such file"));
	assert_null(child_spawn(base, nopath, NULL, &o, err, sizeof err));
	assert_non_null(strstr(err, "No such file"));
	noexec[0] = tu_path("not-executable");
	assert_int_equal(tu_write_file(noexec[0], "#!/bin/sh\n", 10), 0);
	chmod(noexec[0], 0644);
	assert_null(child_spawn(base, noexec, NULL, &o, err, sizeof err));
	assert_non_null(strstr(err, "Permission denied"));
	free(noexec[0]);
	run_for(100);
	assert_int_equal(r.exits, 0);   /* no callback after an error */
	assert_int_equal(r.nlines, 0);
	/* The base still works for the next child. */
	c = sh("exit 0", &r, NULL);
	assert_true(run_until(&r.exits, 1, WAIT_MS));
	child_free(c);
	rec_clear(&r);
}

static void test_ring_tail(void **state)
{
	struct rec r = { 0 };
	struct child_opts o = { .log_cap = 1024 };
	struct child *c = sh("i=1; while [ $i -le 300 ]; do echo \"line $i\"; i=$((i+1)); done",
	                     &r, &o);
	char buf[4096];
	size_t n;

	assert_true(run_until(&r.exits, 1, WAIT_MS));
	n = child_log_tail(c, buf, sizeof buf, 3);
	assert_string_equal(buf, "line 298\nline 299\nline 300");
	assert_int_equal(n, strlen(buf));
	n = child_log_tail(c, buf, sizeof buf, 0);
	assert_true(n < 1024);
	assert_int_equal(n, strlen(buf));
	assert_null(strstr(buf, "line 1\n"));
	assert_null(strstr(buf, "line 150\n"));   /* ~9 bytes a line: ~113 fit */
	assert_non_null(strstr(buf, "line 299\nline 300"));
	assert_int_equal(strcmp(buf + n - 8, "line 300"), 0);
	n = child_log_tail(c, buf, 8, 3);   /* the last 7 bytes */
	assert_string_equal(buf, "ine 300");
	child_free(c);
	rec_clear(&r);
}

static void test_log_file(void **state)
{
	struct rec r = { 0 };
	char *path = tu_path("child.log"), *old = tu_path("child.log.1");
	struct child_opts o = { .log_path = path, .log_file_cap = 10000 };
	struct child *c = sh("i=1; while [ $i -le 3000 ]; do echo \"line $i\"; i=$((i+1)); done",
	                     &r, &o);
	uint8_t *data;
	size_t len, oldlen;

	assert_true(run_until(&r.exits, 1, WAIT_MS));
	child_free(c);
	data = tu_read_file(path, &len);
	assert_non_null(data);
	assert_true(len > 0 && len <= 10000);
	assert_true(len >= 10 && memcmp(data + len - 10, "line 3000\n", 10) == 0);
	free(data);
	data = tu_read_file(old, &oldlen);   /* the one rotated copy */
	assert_non_null(data);
	assert_true(oldlen > 0 && oldlen <= 10000);
	free(data);
	free(path);
	free(old);
	rec_clear(&r);
}

static void test_many(void **state)
{
	enum { N = 20 };
	static struct rec r[N];
	struct child *c[N];
	char script[128];
	int total;

	for (int i = 0; i < N; i++) {
		/* The later started, the sooner done: exits come in reverse, some together. */
		snprintf(script, sizeof script, "echo child %d; sleep 0.%02d; exit %d", i,
		         (N - 1 - i) * 3, i + 10);
		c[i] = sh(script, &r[i], NULL);
	}
	for (long end = now_ms() + WAIT_MS;;) {
		total = 0;
		for (int i = 0; i < N; i++)
			total += r[i].exits;
		if (total == N || now_ms() > end)
			break;
		event_base_loop(base, EVLOOP_ONCE);
	}
	assert_int_equal(total, N);
	for (int i = 0; i < N; i++) {
		char want[32];

		assert_int_equal(r[i].exits, 1);
		assert_true(WIFEXITED(r[i].status));
		assert_int_equal(WEXITSTATUS(r[i].status), i + 10);
		snprintf(want, sizeof want, "child %d", i);
		assert_int_equal(r[i].nlines, 1);
		assert_string_equal(r[i].lines[0], want);
		child_free(c[i]);
		rec_clear(&r[i]);
	}
}

static void test_free_running(void **state)
{
	struct rec r = { 0 };
	struct child *c = sh("sleep 60 & echo gc=$!; sleep 60", &r, NULL);
	pid_t pid;

	assert_true(run_until(&r.nlines, 1, WAIT_MS));
	pid = child_pid(c);
	child_free(c);
	run_for(100);
	assert_int_equal(r.exits, 0);
	assert_true(gone(pid));
	assert_true(gone((pid_t)r.gc));
	assert_true(gone(-pid));
	rec_clear(&r);
}

static void test_free_from_callbacks(void **state)
{
	struct rec a = { 0 }, b = { 0 };

	a.free_on_line = 1;
	sh("echo one; echo two; sleep 60", &a, NULL);
	assert_true(run_until(&a.nlines, 1, WAIT_MS));
	assert_null(a.c);
	run_for(200);
	assert_int_equal(a.nlines, 1);   /* nothing after the free */
	assert_int_equal(a.exits, 0);

	b.free_on_exit = 1;
	sh("echo bye; exit 2", &b, NULL);
	assert_true(run_until(&b.exits, 1, WAIT_MS));
	assert_null(b.c);
	assert_int_equal(WEXITSTATUS(b.status), 2);
	run_for(100);
	assert_int_equal(b.exits, 1);
	rec_clear(&a);
	rec_clear(&b);
}

static void test_pid_alive(void **state)
{
	struct rec r = { 0 };
	char *argv[] = { "sleep", "30", NULL };
	struct child_opts o = { .on_line = on_line, .on_exit = on_exit_cb, .arg = &r };
	char err[256];
	struct child *c = child_spawn(base, argv, NULL, &o, err, sizeof err);
	pid_t pid;

	assert_non_null(c);
	pid = child_pid(c);
	groups[ngroups++] = pid;
	assert_int_equal(child_pid_alive(pid, "sleep"), 1);
	assert_int_equal(child_pid_alive(pid, NULL), 1);
	assert_int_equal(child_pid_alive(pid, "llama-server"), 0);
	assert_int_equal(child_pid_alive(getpid(), "llama-server"), 0);
	assert_int_equal(child_pid_alive(getpid(), "test_child"), 1);
	assert_int_equal(child_pid_alive(0, NULL), 0);
	assert_int_equal(child_pid_alive(-1, NULL), 0);
	child_kill(c);
	assert_true(run_until(&r.exits, 1, WAIT_MS));
	assert_int_equal(WTERMSIG(r.status), SIGKILL);
	assert_int_equal(child_pid_alive(pid, NULL), 0);
	assert_int_equal(child_pid_alive(pid, "sleep"), 0);
	child_free(c);
	rec_clear(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lines_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_env_stdin_fds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_term_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_killed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_leader_exits_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_fail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ring_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_running, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_from_callbacks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pid_alive, setup, teardown),
	};

	if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
