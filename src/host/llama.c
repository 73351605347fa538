/*
 * llama: a supervised llama-server child. See llama.h.
 */
#include "llama.h"
#include "apikey.h"
#include "child.h"
#include "util.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define HEALTH_RETRY_MS 200

struct llama {
	struct event_base *base;
	struct child *child;
	struct llama_cb cb;
	int port;
	/* its own API key, random per child: only the daemon talks to it (LLAMA_API_KEY) */
	char key[APIKEY_RANDOM_HEX + 1];
	char auth[APIKEY_RANDOM_HEX + 16];   /* "Bearer KEY" */
	int listening, ready;
	struct evhttp_connection *conn;
	struct event *retry;
	json_t *measured;
};

/* A port on 127.0.0.1 that was free a moment ago (knowingly simple: another process
 * may take it before llama-server binds, which then fails to start and says so). */
static int free_port(void)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	int port = -1;
	if (s >= 0 && bind(s, (struct sockaddr *)&a, sizeof a) == 0 &&
	    getsockname(s, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (s >= 0)
		close(s);
	return port;
}

/* "load_tensors: RPC0[127.0.0.1:50052] model buffer size =    44.76 MiB" */
static void parse_buffer_line(struct llama *l, const char *line)
{
	static const struct { const char *tag, *key; } kinds[] = {
		{ " model buffer size = ", "model_bytes" }, { " KV buffer size = ", "kv_bytes" },
		{ " compute buffer size = ", "compute_bytes" },
		{ " output buffer size = ", "compute_bytes" },
	};
	for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
		const char *p = strstr(line, kinds[k].tag);
		if (p == NULL)
			continue;
		const char *e = p;
		while (e > line && e[-1] == ' ')
			e--;
		const char *d = e;
		while (d > line && d[-1] != ' ')
			d--;
		if (e <= d || e - d > 96)
			return;
		char dev[97];
		snprintf(dev, sizeof dev, "%.*s", (int)(e - d), d);
		double mib = strtod(p + strlen(kinds[k].tag), NULL);
		if (!(mib >= 0 && mib < 1e9))
			return;
		json_t *o = json_object_get(l->measured, dev);
		if (o == NULL) {
			o = json_object();
			json_object_set_new(l->measured, dev, o);
		}
		json_int_t prev = json_integer_value(json_object_get(o, kinds[k].key));
		json_object_set_new(o, kinds[k].key, json_integer(prev + (json_int_t)(mib *
		    1048576.0 + 0.5)));
		return;
	}
}

static void check_health(struct llama *l);

static void on_retry(evutil_socket_t fd, short ev, void *arg)
{
	check_health(arg);
}

static void on_health(struct evhttp_request *req, void *arg)
{
	struct llama *l = arg;
	if (req != NULL && evhttp_request_get_response_code(req) == 200) {
		l->ready = 1;
		if (l->cb.ready)
			l->cb.ready(l->cb.arg);
		return;
	}
	struct timeval tv = { 0, HEALTH_RETRY_MS * 1000 };
	if (l->child != NULL && child_running(l->child))
		evtimer_add(l->retry, &tv);
}

static void check_health(struct llama *l)
{
	if (l->conn == NULL) {
		l->conn = evhttp_connection_base_new(l->base, NULL, "127.0.0.1",
		    (unsigned short)l->port);
		evhttp_connection_set_timeout(l->conn, 5);
	}
	struct evhttp_request *req = evhttp_request_new(on_health, l);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Host", "127.0.0.1");
	evhttp_add_header(evhttp_request_get_output_headers(req), "Authorization", l->auth);
	if (evhttp_make_request(l->conn, req, EVHTTP_REQ_GET, "/health") < 0)
		on_health(NULL, l);
}

static void on_line(void *arg, const char *line)
{
	struct llama *l = arg;
	parse_buffer_line(l, line);
	if (!l->listening && strstr(line, "listening on") != NULL) {
		l->listening = 1;
		check_health(l);
	}
}

static void on_exit_cb(void *arg, int status)
{
	struct llama *l = arg;
	char tail[2048];
	child_log_tail(l->child, tail, sizeof tail, 8);
	l->ready = 0;
	evtimer_del(l->retry);
	/* l may be freed by cb.exited: nothing touches it after this call */
	if (l->cb.exited)
		l->cb.exited(l->cb.arg, status, tail);
}

struct llama *llama_start(struct event_base *base, const char *server, const char *model,
    const char *alias, char *const *args, const char *log_path, const struct llama_cb *cb,
    char *err, size_t errlen)
{
	struct llama *l = xcalloc(1, sizeof *l);
	l->base = base;
	l->cb = *cb;
	l->port = free_port();
	l->measured = json_object();
	l->retry = evtimer_new(base, on_retry, l);
	if (l->port < 0) {
		snprintf(err, errlen, "no free port on 127.0.0.1");
		llama_free(l);
		return NULL;
	}
	if (apikey_random(l->key, sizeof l->key) < 0) {
		snprintf(err, errlen, "getrandom: %s", strerror(errno));
		llama_free(l);
		return NULL;
	}
	snprintf(l->auth, sizeof l->auth, "Bearer %s", l->key);
	char port[16];
	snprintf(port, sizeof port, "%d", l->port);
	size_t n = 0;
	while (args != NULL && args[n] != NULL)
		n++;
	char **argv = xcalloc(n + 16, sizeof *argv);
	size_t k = 0;
	const char *fixed[] = { server, "-m", model, "--alias", alias, "--host", "127.0.0.1",
	    "--port", port, "-lv", "4" };
	for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
		argv[k++] = (char *)fixed[i];
	for (size_t i = 0; i < n; i++)
		argv[k++] = args[i];
	argv[k] = NULL;
	struct child_opts o = { .log_path = log_path, .on_line = on_line, .on_exit = on_exit_cb,
	    .arg = l };
	/* the key goes in the environment, which other users cannot read (the command line
	 * they can); the daemon's own key stays out of it */
	char *env_key = xasprintf("LLAMA_API_KEY=%s", l->key);
	/* CUDA numbers devices by PCI bus as NVML does, so that the --device names the
	 * scheduler gives (CUDA1 = the monitor's gpu1) are the same GPUs */
	char *env[] = { env_key, "MLOFFLOAD_API_KEY=", "CUDA_DEVICE_ORDER=PCI_BUS_ID", NULL };
	l->child = child_spawn(base, argv, env, &o, err, errlen);
	explicit_bzero(env_key, strlen(env_key));
	free(env_key);
	free(argv);
	if (l->child == NULL) {
		llama_free(l);
		return NULL;
	}
	return l;
}

void llama_stop(struct llama *l, int grace_ms)
{
	child_stop(l->child, grace_ms);
}

void llama_kill(struct llama *l)
{
	child_kill(l->child);
}

int llama_port(const struct llama *l)
{
	return l->port;
}

const char *llama_key(const struct llama *l)
{
	return l->key;
}

pid_t llama_pid(const struct llama *l)
{
	return child_pid(l->child);
}

json_t *llama_measured(const struct llama *l)
{
	return json_deep_copy(l->measured);
}

void llama_free(struct llama *l)
{
	if (l == NULL)
		return;
	child_free(l->child);
	if (l->conn != NULL)
		evhttp_connection_free(l->conn);
	if (l->retry != NULL)
		event_free(l->retry);
	json_decref(l->measured);
	explicit_bzero(l->key, sizeof l->key);
	explicit_bzero(l->auth, sizeof l->auth);
	free(l);
}

/* "  CUDA0: NVIDIA ... (24135 MiB, 23000 MiB free)" lines after "Available devices:". */
static int parse_devices(char *text, char *out, size_t len)
{
	char *list = strstr(text, "Available devices:"), *save = NULL;
	if (list == NULL)
		return -1;
	out[0] = '\0';
	for (char *ln = strtok_r(list, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save)) {
		while (*ln == ' ')
			ln++;
		size_t n = strcspn(ln, ": ");
		if (ln[n] != ':' || n == 0)
			continue; /* the header, "(none)" */
		size_t l = strlen(out);
		snprintf(out + l, len - l, "%s%.*s", l ? "," : "", (int)n, ln);
	}
	return 0;
}

/* Knowingly simple: it blocks the loop, once per llama-server binary (a few hundred ms;
 * a CUDA build initialises its devices), rather than deferring the first load. */
int llama_devices(const char *server, char *out, size_t len)
{
	int fd[2];
	if (pipe2(fd, O_CLOEXEC) < 0)
		return -1;
	/* as child.c spawns: signals blocked around fork, every other descriptor closed */
	sigset_t all, old, none;
	sigfillset(&all);
	sigemptyset(&none);
	sigprocmask(SIG_BLOCK, &all, &old);
	pid_t pid = fork();
	if (pid == 0) {
		int dn = open("/dev/null", O_RDWR);
		dup2(dn, 0);
		dup2(fd[1], 1);
		dup2(dn, 2);
		close_range(3, ~0U, 0);
		for (int sig = 1; sig < NSIG; sig++)
			signal(sig, SIG_DFL);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execl(server, server, "--list-devices", (char *)NULL);
		_exit(127);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	close(fd[1]);
	if (pid < 0) {
		close(fd[0]);
		return -1;
	}
	char buf[8192];
	size_t got = 0;
	uint64_t end = util_mono_ms() + 10000;
	for (;;) {
		uint64_t now = util_mono_ms();
		struct pollfd p = { fd[0], POLLIN, 0 };
		if (now >= end || poll(&p, 1, (int)(end - now)) <= 0)
			break;
		ssize_t r = read(fd[0], buf + got, sizeof buf - 1 - got);
		if (r <= 0 && errno != EINTR)
			break;
		got += r > 0 ? (size_t)r : 0;
		if (got == sizeof buf - 1)
			break;
	}
	close(fd[0]);
	kill(pid, SIGKILL); /* it has printed, or it is stuck */
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	buf[got] = '\0';
	return parse_devices(buf, out, len);
}
