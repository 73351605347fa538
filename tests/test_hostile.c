/*
 * test_hostile: mloffloadd against clients that misbehave, on loopback with raw sockets:
 * more idle connections than descriptors (the daemon neither spins nor floods its log,
 * and answers again once they go), more connections than max_connections (the extra
 * one waits, then is served), a client trickling its request head or body (cut off
 * after header_timeout_s / body_timeout_s while others are served), a 20 MB body (the
 * client reads a JSON 413, not a reset), requests libevent cannot parse or refuses
 * (JSON errors, not HTML), methods named in the 405, control bytes in the path or query (400).
 */
#include "daemonutil.h"

#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char *bin, *models, *conf;
static int port; /* the shared daemon's (hostile_setup) */
static struct tu_proc shared;

/* Starts mloffloadd with the descriptor limit nofile (0: inherited) and extra flags
 * (up to 4); returns its port. */
static int start(struct tu_proc *p, const char *name, int nofile, const char *const *extra)
{
	char lim[64], *state = tu_path(name), *log = xasprintf("%s.log", state);
	snprintf(lim, sizeof lim, "ulimit -n %d; exec \"$0\" \"$@\"", nofile > 0 ? nofile : 20000);
	char *argv[24] = { "/bin/sh", "-c", lim, bin, "--listen", "127.0.0.1:0", "--models-dir",
	    models, "--state-dir", state, "--nvml-lib", "/nonexistent/libnvidia-ml.so",
	    "--ollama-url", "", "--llama-url", "http://127.0.0.1:9", "--rescan", "0", NULL };
	size_t n = 18;
	for (size_t i = 0; extra != NULL && extra[i] != NULL && i < 4; i++)
		argv[n++] = (char *)extra[i];
	argv[n] = NULL;
	assert_int_equal(tu_spawn(p, argv, log), 0);
	free(state);
	free(log);
	return du_port(p);
}

static int conn_to(int prt)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)prt) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	struct timeval tv = { 30, 0 }; /* nothing here waits longer */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	return fd;
}

static void send_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n > 0) {
		ssize_t k = send(fd, c, n, MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		assert_true(k > 0);
		c += k;
		n -= (size_t)k;
	}
}

/* Reads fd to its end (or 30 s). Returns the heap response and the status (0: none). */
static char *read_answer(int fd, int *status)
{
	size_t cap = 65536, len = 0;
	char *b = xmalloc(cap + 1);
	for (;;) {
		ssize_t k = recv(fd, b + len, cap - len, 0);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0 || (len += (size_t)k) == cap)
			break;
	}
	b[len] = '\0';
	*status = 0;
	if (strncmp(b, "HTTP/1.", 7) == 0 && len > 12)
		*status = (int)strtol(b + 9, NULL, 10);
	return b;
}

/* Sends n bytes of data on a new connection and reads the answer: status, and the body
 * as JSON (new, NULL when it is not JSON). */
static json_t *raw(const void *data, size_t n, int *status)
{
	int fd = conn_to(port);
	send_all(fd, data, n);
	char *a = read_answer(fd, status);
	close(fd);
	char *body = strstr(a, "\r\n\r\n");
	json_t *j = body ? json_loads(body + 4, 0, NULL) : NULL;
	free(a);
	return j;
}

/* An error answer in OpenAI's shape: {"error":{"code","message",...}}. */
static void assert_json_error(json_t *j)
{
	assert_non_null(j);
	assert_true(json_is_string(du_at(j, "error.message")));
	assert_true(json_is_string(du_at(j, "error.code")));
}

static long cpu_ticks(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	long ut = 0, st = 0;
	assert_non_null(p);
	/* after ")": state, then fields 4..13; utime and stime are fields 14 and 15 */
	assert_int_equal(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld",
	    &ut, &st), 2);
	return ut + st;
}

static int count_lines(const char *path, const char *needle)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	int n = 0;
	assert_non_null(f);
	while (fgets(line, sizeof line, f) != NULL)
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

static int healthy(json_t *j, void *arg)
{
	(void)arg;
	return json_is_string(json_object_get(j, "status"));
}

static void nap_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* More idle connections than descriptors: accept() fails with EMFILE. The daemon
 * must pause accepting (not retry in a busy loop logging each failure), and serve a
 * new client once the idle ones are gone. */
static void test_descriptor_exhaustion(void **st)
{
	struct tu_proc p;
	const char *extra[] = { "--max-connections", "100000", NULL };
	int prt = start(&p, "nofile", 128, extra), fds[300];
	for (int i = 0; i < 300; i++)
		fds[i] = conn_to(prt);
	assert_int_equal(tu_wait_log(&p, "Too many open files", 30), 1);
	/* a window to see whether it spins: the CPU it used and its log lines */
	long t0 = cpu_ticks(p.pid);
	nap_ms(2000);
	double used = (double)(cpu_ticks(p.pid) - t0) / (double)sysconf(_SC_CLK_TCK);
	int lines = count_lines(p.log, "Too many open files");
	print_message("daemon CPU over 2 s: %.2f s; 'Too many open files' lines: %d\n", used,
	    lines);
	assert_true(lines <= 3);
	assert_true(used < 1.0);
	for (int i = 0; i < 300; i++)
		close(fds[i]);
	json_decref(du_poll(prt, "/health", healthy, NULL));
	du_stop(&p);
}

/* Under a low descriptor limit the default max_connections leaves room below it. */
static void test_default_cap_follows_nofile(void **st)
{
	struct tu_proc p;
	int prt = start(&p, "nofile-default", 128, NULL);
	assert_int_equal(tu_wait_log(&p, "max_connections 64", 5), 1);
	json_decref(du_get(prt, "/health"));
	du_stop(&p);
}

/* max_connections=4: four idle connections; a fifth request waits in the backlog
 * until one of them closes, then is answered. */
static void test_connection_cap(void **st)
{
	struct tu_proc p;
	const char *extra[] = { "--max-connections", "4", NULL };
	int prt = start(&p, "cap", 0, extra), fds[4];
	for (int i = 0; i < 4; i++)
		fds[i] = conn_to(prt);
	int fd = conn_to(prt);
	static const char get[] = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
	send_all(fd, get, sizeof get - 1);
	struct pollfd pf = { fd, POLLIN, 0 };
	assert_int_equal(poll(&pf, 1, 1500), 0); /* not answered while four are open */
	close(fds[0]);
	int status;
	char *a = read_answer(fd, &status);
	assert_int_equal(status, 200);
	free(a);
	close(fd);
	for (int i = 1; i < 4; i++)
		close(fds[i]);
	du_stop(&p);
}

/* Sends head, then one byte of drip every 300 ms, checking meanwhile that others are
 * served. Returns the seconds until the daemon closed the connection (-1: not in 30 s). */
static int trickle(const char *head, char drip)
{
	int fd = conn_to(port);
	send_all(fd, head, strlen(head));
	time_t t0 = time(NULL);
	while (time(NULL) - t0 < 30) {
		struct pollfd pf = { fd, POLLIN, 0 };
		if (poll(&pf, 1, 300) > 0) {
			int status;
			char *a = read_answer(fd, &status); /* the 408, then the end */
			free(a);
			close(fd);
			return (int)(time(NULL) - t0);
		}
		if (send(fd, &drip, 1, MSG_NOSIGNAL) < 0) {
			close(fd);
			return (int)(time(NULL) - t0);
		}
		json_decref(du_get(port, "/health"));
	}
	close(fd);
	return -1;
}

/* header_timeout_s = 2, body_timeout_s = 2 (hostile.conf): a client that sends a
 * header byte at a time, or a body byte at a time, is cut off. */
static void test_slow_client(void **st)
{
	int s = trickle("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ", 'a');
	print_message("slow head closed after %d s\n", s);
	assert_true(s >= 0);
	s = trickle("POST /load HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n", ' ');
	print_message("slow body closed after %d s\n", s);
	assert_true(s >= 0);
}

/* A 20 MB body (max_body is 1 MiB): the client, writing it all before it reads,
 * reads a JSON 413 instead of a connection reset. */
static void test_oversized_body(void **st)
{
	size_t n = 20u << 20;
	char head[256];
	int hl = snprintf(head, sizeof head, "POST /load HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
	    "application/json\r\nContent-Length: %zu\r\n\r\n", n);
	char *b = xmalloc(n);
	memset(b, ' ', n);
	int fd = conn_to(port), status;
	send_all(fd, head, (size_t)hl);
	send_all(fd, b, n);
	free(b);
	char *a = read_answer(fd, &status);
	close(fd);
	assert_int_equal(status, 413);
	char *body = strstr(a, "\r\n\r\n");
	json_t *j = body ? json_loads(body + 4, 0, NULL) : NULL;
	assert_json_error(j);
	json_decref(j);
	free(a);
}

/* What libevent cannot parse is answered in the daemon's JSON, not an HTML page. */
static void test_parse_errors_are_json(void **st)
{
	size_t n = 20000;
	char *line = xmalloc(n + 32);
	memcpy(line, "GET /", 5);
	memset(line + 5, 'a', n);
	memcpy(line + 5 + n, " HTTP/1.1\r\n\r\n", 13);
	int status;
	json_t *j = raw(line, n + 18, &status);
	free(line);
	assert_true(status == 400 || status == 413 || status == 414);
	assert_json_error(j);
	json_decref(j);
	static const char garbage[] = "GARBAGE\r\n\r\n";
	j = raw(garbage, sizeof garbage - 1, &status);
	assert_int_equal(status, 400);
	assert_json_error(j);
	json_decref(j);
	static const char expect[] = "POST /load HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: tea\r\n"
	    "Content-Length: 2\r\n\r\n{}";
	j = raw(expect, sizeof expect - 1, &status);
	assert_int_equal(status, 417);
	assert_json_error(j);
	json_decref(j);
	static const char unknown[] = "BREW /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
	j = raw(unknown, sizeof unknown - 1, &status);
	assert_true(status == 405 || status == 501);
	assert_json_error(j);
	json_decref(j);
}

/* The 405 names the method the client sent. */
static void test_method_named(void **st)
{
	static const char *const ms[] = { "OPTIONS", "PUT", "DELETE", "PATCH", "TRACE" };
	for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
		char r[128], want[64];
		int status;
		int n = snprintf(r, sizeof r, "%s /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: "
		    "close\r\nContent-Length: 0\r\n\r\n", ms[i]);
		json_t *j = raw(r, (size_t)n, &status);
		assert_int_equal(status, 405);
		assert_json_error(j);
		snprintf(want, sizeof want, "%s /health", ms[i]);
		assert_non_null(strstr(json_string_value(du_at(j, "error.message")), want));
		json_decref(j);
	}
}

/* A control byte in the decoded path or a query parameter is a 400 (a %00 would cut
 * the id short: /models/tiny%00xyz naming model "tiny"). */
static void test_control_bytes(void **st)
{
	static const char *const paths[] = { "/models/tiny%00xyz", "/models/a%0ab",
	    "/models/a%7fb", "/vram?history=1%00", "/vram/budget?model=a%01b" };
	for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
		int status;
		json_t *j = du_req(port, "GET", paths[i], NULL, &status);
		assert_int_equal(status, 400);
		assert_json_error(j);
		json_decref(j);
	}
}

static int hostile_setup(void **st)
{
	bin = xasprintf("%s/mloffloadd", getenv("MLO_BUILD_DIR"));
	models = tu_path("models");
	conf = tu_path("hostile.conf");
	mkdir(models, 0755);
	static const char c[] = "header_timeout_s = 2\nbody_timeout_s = 2\n";
	assert_int_equal(tu_write_file(conf, c, sizeof c - 1), 0);
	const char *extra[] = { "--config", conf, NULL };
	port = start(&shared, "shared", 0, extra);
	return 0;
}

static int hostile_teardown(void **st)
{
	du_stop(&shared);
	free(bin);
	free(models);
	free(conf);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_errors_are_json),
		cmocka_unit_test(test_method_named),
		cmocka_unit_test(test_control_bytes),
		cmocka_unit_test(test_oversized_body),
		cmocka_unit_test(test_slow_client),
		cmocka_unit_test(test_connection_cap),
		cmocka_unit_test(test_default_cap_follows_nofile),
		cmocka_unit_test(test_descriptor_exhaustion),
	};
	return cmocka_run_group_tests(tests, hostile_setup, hostile_teardown);
}
