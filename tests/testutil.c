/*
 * testutil: see testutil.h.
 */
#include "testutil.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[256];

static void cleanup(void)
{
	if (tmpdir[0] != '\0' && getenv("MLO_KEEP_TMP") == NULL) {
		char cmd[300];
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", tmpdir);
	}
}

const char *tu_tmpdir(void)
{
	if (tmpdir[0] == '\0') {
		const char *base = getenv("TMPDIR");
		snprintf(tmpdir, sizeof tmpdir, "%s/mlotest.XXXXXX", base ? base : "/tmp");
		if (mkdtemp(tmpdir) == NULL) {
			perror("mkdtemp");
			abort();
		}
		atexit(cleanup);
	}
	return tmpdir;
}

char *tu_path(const char *name)
{
	return xasprintf("%s/%s", tu_tmpdir(), name);
}

char *tu_llama_root(void)
{
	const char *dir = getenv("MLOFFLOAD_LLAMA_DIR");
	char *p;
	if (dir != NULL && *dir != '\0') {
		p = xasprintf("%s/..", dir);
	} else {
		const char *home = getenv("HOME"), *xdg = getenv("XDG_CACHE_HOME");
		const char *cache = getenv("MLOFFLOAD_CACHE");
		if (cache != NULL && *cache != '\0')
			p = xasprintf("%s/llama-" MLO_LLAMA_PIN, cache);
		else if (xdg != NULL && *xdg != '\0')
			p = xasprintf("%s/mloffload/llama-" MLO_LLAMA_PIN, xdg);
		else
			p = xasprintf("%s/.cache/mloffload/llama-" MLO_LLAMA_PIN, home ? home : "");
	}
	char *bin = xasprintf("%s/build/bin/llama-server", p);
	int ok = access(bin, X_OK) == 0;
	free(bin);
	if (!ok) {
		free(p);
		return NULL;
	}
	return p;
}

char *tu_npm_dir(const char *env, const char *folder, const char *pkg)
{
	const char *dir = getenv(env);
	char *p;
	if (dir != NULL && *dir != '\0') {
		p = xstrdup(dir);
	} else {
		/* the folder scripts/setup-npm.sh installs to */
		const char *home = getenv("HOME"), *xdg = getenv("XDG_CACHE_HOME");
		const char *cache = getenv("MLOFFLOAD_CACHE");
		if (cache != NULL && *cache != '\0')
			p = xasprintf("%s/%s", cache, folder);
		else if (xdg != NULL && *xdg != '\0')
			p = xasprintf("%s/mloffload/%s", xdg, folder);
		else
			p = xasprintf("%s/.cache/mloffload/%s", home ? home : "", folder);
	}
	char *json = xasprintf("%s/node_modules/%s/package.json", p, pkg);
	int ok = access(json, R_OK) == 0;
	free(json);
	if (!ok) {
		free(p);
		return NULL;
	}
	return p;
}

char *tu_openai_dir(void)
{
	return tu_npm_dir("MLO_OPENAI_DIR", "openai-" MLO_OPENAI_PIN, "openai");
}

char *tu_anthropic_dir(void)
{
	return tu_npm_dir("MLO_ANTHROPIC_DIR", "anthropic-ai-sdk-" MLO_ANTHROPIC_PIN,
	    "@anthropic-ai/sdk");
}

char *tu_node(void)
{
	const char *env = getenv("MLO_NODE");
	if (env != NULL && *env != '\0')
		return access(env, X_OK) == 0 ? xstrdup(env) : NULL;
	if (MLO_NODE[0] != '\0' && access(MLO_NODE, X_OK) == 0)
		return xstrdup(MLO_NODE);
	const char *path = getenv("PATH");
	char *dirs = xstrdup(path != NULL ? path : "/usr/bin:/bin"), *save = NULL, *d;
	for (d = strtok_r(dirs, ":", &save); d != NULL; d = strtok_r(NULL, ":", &save)) {
		char *p = xasprintf("%s/node", d);
		if (access(p, X_OK) == 0) {
			free(dirs);
			return p;
		}
		free(p);
	}
	free(dirs);
	return NULL;
}

int tu_write_file(const char *path, const void *p, size_t n)
{
	/* written beside and renamed, so a reader never sees half a file */
	char *tmp = xasprintf("%s.tmp%ld", path, (long)getpid());
	FILE *f = fopen(tmp, "wb");
	if (f == NULL) {
		free(tmp);
		return -1;
	}
	int rc = fwrite(p, 1, n, f) == n ? 0 : -1;
	if (fclose(f) != 0)
		rc = -1;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -1;
	if (rc != 0)
		unlink(tmp);
	free(tmp);
	return rc;
}

uint8_t *tu_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	/* one byte more, a NUL, so that text files can be searched as strings */
	uint8_t *b = xmalloc(n > 0 ? (size_t)n + 1 : 1);
	if (n > 0 && fread(b, 1, (size_t)n, f) != (size_t)n) {
		free(b);
		fclose(f);
		return NULL;
	}
	fclose(f);
	b[n > 0 ? n : 0] = '\0';
	*len = (size_t)n;
	return b;
}

int tu_sh(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char cmd[8192];
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	int st = system(cmd);
	if (st == -1 || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

#define MAX_CHILDREN 64
static pid_t children[MAX_CHILDREN];

static void kill_children(void)
{
	for (int i = 0; i < MAX_CHILDREN; i++) {
		if (children[i] > 0) {
			kill(-children[i], SIGKILL);
			waitpid(children[i], NULL, 0);
			children[i] = 0;
		}
	}
}

int tu_spawn(struct tu_proc *p, char *const argv[], const char *log)
{
	static int registered;
	if (!registered) {
		atexit(kill_children);
		registered = 1;
	}
	int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0) {
		close(fd);
		return -1;
	}
	if (pid == 0) {
		setpgid(0, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		int nul = open("/dev/null", O_RDONLY);
		if (nul >= 0)
			dup2(nul, 0);
		execv(argv[0], argv);
		_exit(127);
	}
	setpgid(pid, pid);
	close(fd);
	p->pid = pid;
	p->log = xstrdup(log);
	for (int i = 0; i < MAX_CHILDREN; i++) {
		if (children[i] == 0) {
			children[i] = pid;
			break;
		}
	}
	return 0;
}

int tu_wait_log(const struct tu_proc *p, const char *needle, int timeout_s)
{
	time_t end = time(NULL) + timeout_s;
	for (;;) {
		size_t len;
		uint8_t *b = tu_read_file(p->log, &len);
		if (b != NULL) {
			b = xrealloc(b, len + 1);
			b[len] = 0;
			int found = strstr((char *)b, needle) != NULL;
			free(b);
			if (found)
				return 1;
		}
		if (waitpid(p->pid, NULL, WNOHANG) == p->pid) {
			for (int i = 0; i < MAX_CHILDREN; i++)
				if (children[i] == p->pid)
					children[i] = 0;
			return 0;
		}
		if (time(NULL) > end)
			return -1;
		usleep(50 * 1000);
	}
}

int tu_log_port(const struct tu_proc *p, const char *prefix, int timeout_s)
{
	if (tu_wait_log(p, prefix, timeout_s) != 1)
		fail_msg("no '%s' in %s within %d s", prefix, p->log, timeout_s);
	size_t len;
	char *log = (char *)tu_read_file(p->log, &len);
	assert_non_null(log);
	log = xrealloc(log, len + 1);
	log[len] = '\0';
	const char *at = strstr(log, prefix);
	int port = at ? (int)strtol(at + strlen(prefix), NULL, 10) : 0;
	free(log);
	assert_true(port > 0 && port < 65536);
	return port;
}

void tu_stop(struct tu_proc *p)
{
	for (int i = 0; i < MAX_CHILDREN; i++) {
		if (children[i] == p->pid && p->pid > 0) {
			kill(-p->pid, SIGKILL);
			waitpid(p->pid, NULL, 0);
			children[i] = 0;
		}
	}
	free(p->log);
	p->log = NULL;
	p->pid = 0;
}

int tu_free_port(void)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0 ||
	    getsockname(s, (struct sockaddr *)&a, &len) < 0) {
		if (s >= 0)
			close(s);
		return -1;
	}
	close(s);
	return ntohs(a.sin_port);
}

int tu_port_open(int port)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int ok = s >= 0 && connect(s, (struct sockaddr *)&a, sizeof a) == 0;
	if (s >= 0)
		close(s);
	return ok;
}

char *tu_http(int port, const char *method, const char *path, const char *body)
{
	char *req = xasprintf("%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: "
	    "application/json\r\nContent-Length: %zu\r\n\r\n%s", method, path,
	    body ? strlen(body) : 0, body ? body : "");
	char *r = tu_http_raw(port, req);
	free(req);
	return r;
}

char *tu_http_raw(int port, const char *req)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) < 0) {
		if (s >= 0)
			close(s);
		return NULL;
	}
	struct timeval tv = { 30, 0 }; /* a hung server fails the test, never hangs it */
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	size_t n = strlen(req), off = 0;
	while (off < n) {
		ssize_t w = write(s, req + off, n - off);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	size_t cap = 4096, len = 0;
	char *out = xmalloc(cap);
	for (;;) {
		if (len + 1024 > cap)
			out = xrealloc(out, cap *= 2);
		ssize_t r = read(s, out + len, cap - len - 1);
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	close(s);
	out[len] = 0;
	if (len == 0) {
		free(out);
		return NULL;
	}
	return out;
}
