/*
 * child: process supervision on the libevent loop. See child.h for the contract.
 *
 * Spawning follows tmux's job_run: every signal is blocked around fork; the child
 * resets every disposition to the default, moves to its own process group, asks the
 * kernel to SIGKILL it when the daemon dies (PR_SET_PDEATHSIG), puts
 * /dev/null on stdin and the pipe on stdout and stderr, closes every other descriptor,
 * unblocks signals and execs; on failure it writes errno to a close-on-exec pipe that
 * the parent reads (EOF there means the exec worked) and _exits with 127. Everything
 * that allocates (the environment) is built before the fork, since the daemon has
 * threads and malloc is not safe in the child of a threaded process.
 *
 * A child has two resources, the process and the pipe, and is done only when both
 * are (style habit 6): reaped and at EOF. on_exit then runs from a separate event
 * made active for it, so that no user callback ever runs while the SIGCHLD handler
 * walks the list of children or while the reader is in the middle of a buffer.
 */
#include "child.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

extern char **environ;

#define AFTER_REAP_MS 2000   /* a pipe still open this long after the reap is closed */
#define FREE_WAIT_MS 5000    /* child_free of a running child waits this long */

/* The children of one event_base and its SIGCHLD event. */
struct reg {
	struct event_base *base;
	struct event *sig;
	struct child *head;
	struct reg *next;
};
static struct reg *regs;

struct child {
	struct reg *reg;
	struct child *next;       /* in reg's list */
	pid_t pid;                /* also the process group id */
	int fd;                   /* read end of the output pipe; -1 at EOF */
	struct event *rd, *timer, *done;
	int reaped, status, exit_sent, in_line_cb, free_pending;

	char *ring;               /* the last ring_cap bytes of output */
	size_t ring_cap, ring_len, ring_head;   /* head: where the next byte goes */
	char line[CHILD_LINE_MAX + 1];
	size_t line_len;

	char *log_path;
	int log_fd;
	size_t log_size, log_cap;

	void (*on_line)(void *, const char *);
	void (*on_exit)(void *, int);
	void *arg;
};

static void child_destroy(struct child *c);

static void __attribute__((format(printf, 3, 4)))
errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Moves fd to a descriptor >= 3 (close-on-exec), so dup2 onto 0..2 in the child never
 * meets itself. Returns the new fd or -1. */
static int fd_high(int fd)
{
	int nfd;

	if (fd >= 3)
		return fd;
	nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	close(fd);
	return nfd;
}

static void sigchld_cb(evutil_socket_t sig, short what, void *arg);

/* The registry entry of base, created with its SIGCHLD event when missing. */
static struct reg *reg_get(struct event_base *base)
{
	struct reg *r;

	for (r = regs; r != NULL; r = r->next)
		if (r->base == base)
			return r;
	r = xcalloc(1, sizeof *r);
	r->base = base;
	r->sig = evsignal_new(base, SIGCHLD, sigchld_cb, r);
	if (r->sig == NULL || evsignal_add(r->sig, NULL) != 0) {
		if (r->sig != NULL)
			event_free(r->sig);
		free(r);
		return NULL;
	}
	r->next = regs;
	regs = r;
	return r;
}

/* Drops r when it has no children left (its SIGCHLD event goes with it). */
static void reg_put(struct reg *r)
{
	struct reg **pp;

	if (r->head != NULL)
		return;
	for (pp = &regs; *pp != NULL; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	event_free(r->sig);
	free(r);
}

static void maybe_done(struct child *c)
{
	if (c->reaped && c->fd < 0 && !c->exit_sent) {
		c->exit_sent = 1;
		event_active(c->done, 0, 0);
	}
}

static void mark_reaped(struct child *c, int status)
{
	c->reaped = 1;
	c->status = status;
	/* The leader is gone: nothing of its group may outlive it. Its pid cannot have been
	 * recycled as a group id while the group still has members. */
	kill(-c->pid, SIGKILL);
	if (c->fd >= 0) {
		struct timeval tv = { AFTER_REAP_MS / 1000, (AFTER_REAP_MS % 1000) * 1000 };
		evtimer_add(c->timer, &tv);
	} else {
		evtimer_del(c->timer);
	}
	maybe_done(c);
}

/*
 * SIGCHLD, from the loop. We do not waitpid(-1): that would reap, and lose the status
 * of, processes that other code of this program started and waits for itself (tests,
 * a popen, a library). Instead each of our children is asked by pid with WNOHANG: a
 * few syscalls per signal for the handful of children a daemon has. Signals coalesce,
 * so every child is asked every time, not only one.
 */
static void sigchld_cb(evutil_socket_t sig, short what, void *arg)
{
	struct reg *r = arg;
	struct child *c;
	int status;

	for (c = r->head; c != NULL; c = c->next) {
		if (c->reaped)
			continue;
		if (waitpid(c->pid, &status, WNOHANG) == c->pid)
			mark_reaped(c, status);
	}
}

static void ring_put(struct child *c, const char *p, size_t n)
{
	size_t first;

	if (n > c->ring_cap) {
		p += n - c->ring_cap;
		n = c->ring_cap;
	}
	first = c->ring_cap - c->ring_head;
	if (first > n)
		first = n;
	memcpy(c->ring + c->ring_head, p, first);
	memcpy(c->ring, p + first, n - first);
	c->ring_head = (c->ring_head + n) % c->ring_cap;
	c->ring_len = c->ring_len + n > c->ring_cap ? c->ring_cap : c->ring_len + n;
}

/* Opens the log file for appending (trunc: emptied first). A failing file is dropped. */
static void log_open(struct child *c, int trunc)
{
	struct stat st;

	c->log_fd = open(c->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC |
	                 (trunc ? O_TRUNC : 0), 0644);
	if (c->log_fd < 0)
		log_warnx("child %ld: log %s: %s", (long)c->pid, c->log_path, strerror(errno));
	c->log_size = c->log_fd >= 0 && fstat(c->log_fd, &st) == 0 ? (size_t)st.st_size : 0;
}

/* Appends to the log file, rotating it once at the cap. Knowingly simple: a write to a
 * local file is taken as quick enough for the loop. A failing file is dropped. */
static void log_put(struct child *c, const char *p, size_t n)
{
	if (c->log_fd < 0)
		return;
	if (c->log_size + n > c->log_cap && c->log_size > 0) {
		char *old = xasprintf("%s.1", c->log_path);

		close(c->log_fd);
		if (rename(c->log_path, old) != 0)
			log_warnx("child %ld: rotate %s: %s", (long)c->pid, c->log_path,
			          strerror(errno));
		free(old);
		log_open(c, 1);   /* emptied too when the rename failed */
		if (c->log_fd < 0)
			return;
	}
	if (n > c->log_cap) {
		p += n - c->log_cap;
		n = c->log_cap;
	}
	while (n > 0) {
		ssize_t w = write(c->log_fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			log_warnx("child %ld: write %s: %s", (long)c->pid, c->log_path,
			          strerror(errno));
			close(c->log_fd);
			c->log_fd = -1;
			return;
		}
		p += w;
		n -= (size_t)w;
		c->log_size += (size_t)w;
	}
}

/* Hands the line buffer to on_line. Returns -1 when the callback asked for a free. */
static int line_emit(struct child *c)
{
	if (c->line_len > 0 && c->line[c->line_len - 1] == '\r')
		c->line_len--;
	c->line[c->line_len] = '\0';
	c->line_len = 0;
	if (c->on_line == NULL)
		return 0;
	c->in_line_cb = 1;
	c->on_line(c->arg, c->line);
	c->in_line_cb = 0;
	return c->free_pending ? -1 : 0;
}

static int lines_feed(struct child *c, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\n') {
			if (line_emit(c) != 0)
				return -1;
			continue;
		}
		c->line[c->line_len++] = p[i] == '\0' ? '?' : p[i];
		if (c->line_len == CHILD_LINE_MAX && line_emit(c) != 0)
			return -1;
	}
	return 0;
}

/* The pipe is finished (EOF, error, or closed by us): the last partial line goes out. */
static int pipe_close(struct child *c)
{
	int status;

	event_del(c->rd);
	close(c->fd);
	c->fd = -1;
	if (c->line_len > 0 && line_emit(c) != 0)
		return -1;
	/* A SIGCHLD may still be on its way; asking now closes that window early. */
	if (!c->reaped && waitpid(c->pid, &status, WNOHANG) == c->pid)
		mark_reaped(c, status);
	if (c->reaped)
		evtimer_del(c->timer);
	maybe_done(c);
	return 0;
}

/* Reads what is there, at most four chunks per wakeup so one child cannot hog the loop. */
static void read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct child *c = arg;
	char buf[16384];

	for (int i = 0; i < 4; i++) {
		ssize_t n = read(fd, buf, sizeof buf);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			if (pipe_close(c) != 0)
				child_destroy(c);
			return;
		}
		ring_put(c, buf, (size_t)n);
		log_put(c, buf, (size_t)n);
		if (lines_feed(c, buf, (size_t)n) != 0) {
			child_destroy(c);
			return;
		}
	}
}

/* The grace timer of child_stop before the reap; after it, the pipe's last chance. */
static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct child *c = arg;

	if (!c->reaped) {
		kill(-c->pid, SIGKILL);
	} else if (c->fd >= 0) {
		log_warnx("child %ld: output pipe still open %d ms after exit; closing it",
		          (long)c->pid, AFTER_REAP_MS);
		if (pipe_close(c) != 0)
			child_destroy(c);
	}
}

/* The last thing done with c here is the call: on_exit may free it. */
static void done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct child *c = arg;

	if (c->on_exit != NULL)
		c->on_exit(c->arg, c->status);
}

/* Builds environ plus extra (same-named variables replaced). Returns a heap array of
 * borrowed strings (free the array only), or NULL when an entry has no '='. */
static char **env_build(char *const extra[])
{
	size_t ne = 0, nx = 0, k = 0;
	char **env;

	while (environ[ne] != NULL)
		ne++;
	while (extra != NULL && extra[nx] != NULL) {
		if (strchr(extra[nx], '=') == NULL || extra[nx][0] == '=')
			return NULL;
		nx++;
	}
	env = xcalloc(ne + nx + 1, sizeof *env);
	for (size_t i = 0; i < ne; i++) {
		const char *eq = strchr(environ[i], '=');
		size_t klen = eq != NULL ? (size_t)(eq - environ[i]) : strlen(environ[i]);
		size_t j;

		for (j = 0; j < nx; j++)
			if (strncmp(extra[j], environ[i], klen) == 0 && extra[j][klen] == '=')
				break;
		if (j == nx)
			env[k++] = environ[i];
	}
	for (size_t j = 0; j < nx; j++)
		env[k++] = extra[j];
	return env;
}

/* In the forked child: only async-signal-safe calls. Never returns. */
static void child_exec(char *const argv[], char **env, int devnull, int out, int errw,
    pid_t parent)
{
	struct sigaction sa;
	sigset_t none;
	int e;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_DFL;
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			sigaction(s, &sa, NULL);   /* fails harmlessly on libc-reserved ones */
	setpgid(0, 0);
	/* the child never outlives the daemon, however the daemon ends (a crash, SIGKILL):
	 * the kernel kills it (kept across exec); a daemon already gone is checked too */
	if (getppid() != parent)
		_exit(127);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
		goto fail;
	if (dup2(devnull, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0 ||
	    dup2(errw, 3) < 0 || fcntl(3, F_SETFD, FD_CLOEXEC) < 0)
		goto fail;
	if (close_range(4, ~0U, 0) != 0) {
		struct rlimit rl;
		int max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536
		          ? (int)rl.rlim_cur : 65536;

		for (int fd = 4; fd < max; fd++)
			close(fd);
	}
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execvpe(argv[0], argv, env);
fail:
	e = errno;
	if (write(3, &e, sizeof e) < 0) {
		/* nothing more to say */
	}
	_exit(127);
}

struct child *child_spawn(struct event_base *base, char *const argv[],
                          char *const env_extra[], const struct child_opts *o,
                          char *err, size_t errlen)
{
	static const struct child_opts none;
	struct child *c = NULL;
	struct reg *r;
	char **env = NULL;
	int out[2] = { -1, -1 }, ep[2] = { -1, -1 }, devnull = -1, e = 0;
	sigset_t all, old;
	ssize_t n;
	pid_t pid;

	if (o == NULL)
		o = &none;
	errf(err, errlen, "%s", "");
	if (base == NULL || argv == NULL || argv[0] == NULL) {
		errf(err, errlen, "child_spawn: no event base or no program");
		return NULL;
	}
	if ((env = env_build(env_extra)) == NULL) {
		errf(err, errlen, "child_spawn: environment entry without K=V");
		return NULL;
	}
	if ((r = reg_get(base)) == NULL) {
		errf(err, errlen, "child_spawn: cannot watch SIGCHLD");
		free(env);
		return NULL;
	}
	if (pipe2(out, O_CLOEXEC) != 0 || pipe2(ep, O_CLOEXEC) != 0 ||
	    (devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0) {
		errf(err, errlen, "child_spawn: pipe or /dev/null: %s", strerror(errno));
		goto fail;
	}
	out[0] = fd_high(out[0]);
	out[1] = fd_high(out[1]);
	ep[1] = fd_high(ep[1]);
	devnull = fd_high(devnull);
	if (out[0] < 0 || out[1] < 0 || ep[1] < 0 || devnull < 0) {
		errf(err, errlen, "child_spawn: fcntl: %s", strerror(errno));
		goto fail;
	}

	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	pid_t self = getpid();
	pid = fork();
	if (pid == 0)
		child_exec(argv, env, devnull, out[1], ep[1], self);
	e = errno;
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid < 0) {
		errf(err, errlen, "fork %s: %s", argv[0], strerror(e));
		goto fail;
	}
	setpgid(pid, pid);   /* both sides, whichever runs first; EACCES after exec is fine */
	close(ep[1]);
	ep[1] = -1;
	do
		n = read(ep[0], &e, sizeof e);
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t)sizeof e) {
		int status;

		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		errf(err, errlen, "exec %s: %s", argv[0], strerror(e));
		goto fail;
	}

	c = xcalloc(1, sizeof *c);
	c->reg = r;
	c->pid = pid;
	c->fd = out[0];
	out[0] = -1;
	c->log_fd = -1;
	c->ring_cap = o->log_cap > 0 ? o->log_cap : CHILD_LOG_CAP_DEFAULT;
	c->ring = xmalloc(c->ring_cap);
	c->on_line = o->on_line;
	c->on_exit = o->on_exit;
	c->arg = o->arg;
	c->rd = event_new(base, c->fd, EV_READ | EV_PERSIST, read_cb, c);
	c->timer = evtimer_new(base, timer_cb, c);
	c->done = event_new(base, -1, 0, done_cb, c);
	if (c->rd == NULL || c->timer == NULL || c->done == NULL)
		abort();   /* libevent allocation failure: out of memory, as in xmalloc */
	evutil_make_socket_nonblocking(c->fd);
	event_add(c->rd, NULL);
	if (o->log_path != NULL) {
		c->log_path = xstrdup(o->log_path);
		c->log_cap = o->log_file_cap > 0 ? o->log_file_cap : CHILD_LOG_FILE_CAP_DEFAULT;
		log_open(c, 0);
	}
	c->next = r->head;
	r->head = c;
fail:
	free(env);
	for (int i = 0; i < 2; i++) {
		if (out[i] >= 0)
			close(out[i]);
		if (ep[i] >= 0)
			close(ep[i]);
	}
	if (devnull >= 0)
		close(devnull);
	if (c == NULL)
		reg_put(r);
	return c;
}

void child_stop(struct child *c, int grace_ms)
{
	struct timeval tv;

	if (c->reaped)
		return;
	if (grace_ms <= 0) {
		child_kill(c);
		return;
	}
	kill(-c->pid, SIGTERM);
	tv.tv_sec = grace_ms / 1000;
	tv.tv_usec = (grace_ms % 1000) * 1000;
	evtimer_add(c->timer, &tv);
}

void child_kill(struct child *c)
{
	if (!c->reaped)
		kill(-c->pid, SIGKILL);
}

pid_t child_pid(const struct child *c)
{
	return c->pid;
}

int child_running(const struct child *c)
{
	return !c->reaped;
}

size_t child_log_tail(const struct child *c, char *buf, size_t len, int max_lines)
{
	size_t n = c->ring_len, start = 0, first, i;
	char *lin;
	int lines = 0;

	if (len == 0)
		return 0;
	/* Linearise the ring: oldest byte first. */
	lin = xmalloc(n + 1);
	first = (c->ring_head + c->ring_cap - n) % c->ring_cap;
	for (i = 0; i < n; i++)
		lin[i] = c->ring[(first + i) % c->ring_cap];
	while (n > 0 && (lin[n - 1] == '\n' || lin[n - 1] == '\r'))
		n--;
	for (i = n; i > 0 && max_lines > 0; i--)
		if (lin[i - 1] == '\n' && ++lines == max_lines) {
			start = i;
			break;
		}
	if (n - start > len - 1)
		start = n - (len - 1);
	memcpy(buf, lin + start, n - start);
	buf[n - start] = '\0';
	free(lin);
	return n - start;
}

/* Frees everything; c must be out of any callback of its own. */
static void child_destroy(struct child *c)
{
	struct child **pp;

	if (!c->reaped) {
		int status, waited = 0;
		struct timespec ts = { 0, 10 * 1000 * 1000 };

		kill(-c->pid, SIGKILL);
		while (waitpid(c->pid, &status, WNOHANG) == 0 && waited < FREE_WAIT_MS) {
			nanosleep(&ts, NULL);
			waited += 10;
		}
		if (waited >= FREE_WAIT_MS)
			log_error("child %ld: not gone %d ms after SIGKILL; left to init",
			          (long)c->pid, FREE_WAIT_MS);
	}
	for (pp = &c->reg->head; *pp != NULL; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	reg_put(c->reg);
	event_free(c->rd);
	event_free(c->timer);
	event_free(c->done);
	if (c->fd >= 0)
		close(c->fd);
	if (c->log_fd >= 0)
		close(c->log_fd);
	free(c->log_path);
	free(c->ring);
	free(c);
}

void child_free(struct child *c)
{
	if (c == NULL)
		return;
	if (c->in_line_cb) {
		/* Inside our own on_line: kill now, free once the reader has unwound. */
		c->free_pending = 1;
		child_kill(c);
		return;
	}
	child_destroy(c);
}

int child_pid_alive(pid_t pid, const char *expect_exe_substr)
{
	char path[64], buf[PATH_MAX];
	ssize_t n;
	int fd;

	if (pid <= 0 || (kill(pid, 0) != 0 && errno != EPERM))
		return 0;
	/* A zombie (or a kernel thread) has an empty command line. */
	snprintf(path, sizeof path, "/proc/%ld/cmdline", (long)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';   /* argv[0] is the first NUL-terminated string */
	if (expect_exe_substr == NULL || strstr(buf, expect_exe_substr) != NULL)
		return 1;
	snprintf(path, sizeof path, "/proc/%ld/exe", (long)pid);
	n = readlink(path, buf, sizeof buf - 1);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return strstr(buf, expect_exe_substr) != NULL;
}

/* Reads /proc/PID/NAME into buf (NUL-terminated). Returns the bytes read or -1. */
static ssize_t read_proc(pid_t pid, const char *name, char *buf, size_t len)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%ld/%s", (long)pid, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return n;
}

int child_pid_start_ticks(pid_t pid, unsigned long long *ticks)
{
	char buf[1024];
	if (pid <= 0 || read_proc(pid, "stat", buf, sizeof buf) <= 0)
		return -1;
	/* "PID (COMM) STATE ...": COMM may hold spaces and parentheses, so fields are
	 * counted after the last ')'; field 3 is the state, field 22 the start time */
	char *p = strrchr(buf, ')');
	if (p == NULL)
		return -1;
	p++;
	for (int field = 2; field < 21; field++) {
		p = strchr(p + 1, ' ');
		if (p == NULL)
			return -1;
	}
	char *end;
	errno = 0;
	unsigned long long v = strtoull(p + 1, &end, 10);
	if (errno != 0 || end == p + 1)
		return -1;
	*ticks = v;
	return 0;
}

int child_pid_has_args(pid_t pid, const char *a, const char *b)
{
	char buf[8192];
	ssize_t n = pid > 0 ? read_proc(pid, "cmdline", buf, sizeof buf) : -1;
	if (n <= 0)
		return 0;
	/* arguments are NUL-separated; a cut last one simply does not match */
	const char *prev = NULL;
	for (const char *q = buf; q < buf + n; q += strlen(q) + 1) {
		if (prev != NULL && strcmp(prev, a) == 0 && strcmp(q, b) == 0)
			return 1;
		prev = q;
	}
	return 0;
}

void child_boot_id(char *buf, size_t len)
{
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, len - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n < 0)
		n = 0;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
}
