/*
 * child: supervises child processes on the daemon's libevent loop, the tmux way. A
 * child runs in its own process group with stdin on /dev/null and stdout and stderr
 * in one pipe that the loop reads without blocking: the output is cut into lines for
 * a callback, kept in a ring of its last bytes (for error messages) and optionally
 * appended to a capped log file. SIGCHLD is one libevent signal event per event_base;
 * exits are reported from the loop, never from a signal handler.
 *
 * Lifetime: a child is done when its process was reaped AND its pipe reached EOF; only
 * then on_exit runs, exactly once. When the process (the group leader) is reaped,
 * whatever is left in its process group is SIGKILLed, so nothing outlives it; the
 * child itself is SIGKILLed by the kernel when the thread that spawned it ends (the
 * daemon's loop: the daemon dying, however), so it never outlives the daemon; should a
 * process that left the group still hold the pipe, the pipe is closed 2 s after the
 * reap and counts as EOF.
 *
 * Only one event_base per process can own signals in libevent; children on a second
 * base at the same time do not get their SIGCHLD (libevent warns).
 */
#ifndef MLO_CHILD_H
#define MLO_CHILD_H

#include <stddef.h>
#include <sys/types.h>

struct event_base;
struct child;

#define CHILD_LINE_MAX 4096                  /* longer lines are split at this length */
#define CHILD_LOG_CAP_DEFAULT (64u * 1024)    /* bytes of output kept in memory */
#define CHILD_LOG_FILE_CAP_DEFAULT (8u * 1024 * 1024)

struct child_opts {
	size_t log_cap;        /* ring bytes; 0: CHILD_LOG_CAP_DEFAULT */
	/* NULL: no file. Else output is appended to it (created 0644); when it would grow
	 * past log_file_cap it is rotated once: renamed to "<log_path>.1" (replacing an older
	 * one) and started afresh, so the two hold at most 2 * log_file_cap bytes. */
	const char *log_path;  /* borrowed; copied by child_spawn */
	size_t log_file_cap;   /* 0: CHILD_LOG_FILE_CAP_DEFAULT */
	/* Each complete line, without its "\n" (nor a "\r" before it), NUL bytes shown
	 * as '?'; a line over CHILD_LINE_MAX bytes arrives in pieces; an unterminated last
	 * line arrives at EOF. line is borrowed for the call. May call child_stop,
	 * child_kill, child_free (then no more lines come and the free completes after the
	 * callback returns). */
	void (*on_line)(void *arg, const char *line);
	/* Once, from the loop, after the process was reaped and the pipe reached EOF.
	 * status is waitpid's (WIFEXITED/WIFSIGNALED). May call child_free(c). */
	void (*on_exit)(void *arg, int status);
	void *arg;
};

/* Starts argv[0] (searched in PATH when it has no '/') with argv, the environment
 * plus env_extra ("K=V" strings, NULL-terminated, replacing same-named variables; the
 * list may be NULL), in a new process group. o may be NULL (defaults, no callbacks).
 * A program that cannot be executed (missing, not executable) is an error here: the
 * exec's errno comes back through a close-on-exec pipe, the short-lived child is
 * reaped, NULL is returned with "exec NAME: reason" in err, and no callback ever runs.
 * Blocks only until the child has exec'ed (or failed to). Returns the child (free
 * with child_free) or NULL with a message in err. */
struct child *child_spawn(struct event_base *base, char *const argv[],
                          char *const env_extra[], const struct child_opts *o,
                          char *err, size_t errlen);

/* SIGTERM to the process group now, SIGKILL to it grace_ms later unless the child is
 * done by then (grace_ms <= 0: SIGKILL now). No-op once the process was reaped. */
void child_stop(struct child *c, int grace_ms);
/* SIGKILL to the process group now. No-op once the process was reaped. */
void child_kill(struct child *c);
/* The process id (also the process group id). */
pid_t child_pid(const struct child *c);
/* 1 until the process was reaped, then 0. */
int child_running(const struct child *c);
/* Writes the last max_lines lines of the output ring (max_lines <= 0: all it holds)
 * into buf, NUL-terminated, without the final newline; when they do not fit, the last
 * len - 1 bytes of them. Returns the length written. */
size_t child_log_tail(const struct child *c, char *buf, size_t len, int max_lines);
/* Frees c; no callback runs after it. On a child still running (daemon shutdown) it
 * SIGKILLs the process group and reaps it synchronously, waiting at most 5 s (a
 * process stuck in the kernel is logged and left to init). NULL is a no-op. */
void child_free(struct child *c);

/* 1 if process pid exists (not a zombie) and, when expect_exe_substr is not NULL,
 * its executable path (/proc/PID/exe) or its argv[0] (/proc/PID/cmdline) contains
 * expect_exe_substr; else 0. For adopting the children of an earlier daemon run
 * without mistaking a recycled pid. */
int child_pid_alive(pid_t pid, const char *expect_exe_substr);
/* The start time of process pid: field 22 of /proc/PID/stat, in clock ticks after
 * boot. With the boot id it names one process: a pid is recycled, a (boot, pid, start)
 * triple is not. Returns 0, or -1 when there is no such process. */
int child_pid_start_ticks(pid_t pid, unsigned long long *ticks);
/* 1 if process pid's command line holds the argument a directly followed by b (e.g.
 * "--port" "8081"), else 0. */
int child_pid_has_args(pid_t pid, const char *a, const char *b);
/* This boot's id (/proc/sys/kernel/random/boot_id, 36 characters) into buf
 * (NUL-terminated); "" when it cannot be read. */
void child_boot_id(char *buf, size_t len);

#endif
