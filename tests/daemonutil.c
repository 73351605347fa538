/*
 * daemonutil: see daemonutil.h.
 */
#include "daemonutil.h"
#include "shapes.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <signal.h>

json_t *du_req(int port, const char *method, const char *path, const char *body,
    int *status)
{
	char *r = tu_http(port, method, path, body);
	*status = 0;
	if (r == NULL)
		return NULL;
	sscanf(r, "HTTP/1.%*d %d", status);
	char *b = strstr(r, "\r\n\r\n");
	json_error_t je;
	json_t *j = b ? json_loads(b + 4, JSON_DECODE_ANY, &je) : NULL;
	free(r);
	return j;
}

json_t *du_get(int port, const char *path)
{
	int st;
	json_t *j = du_req(port, "GET", path, NULL, &st);
	if (st != 200 || j == NULL)
		fail_msg("GET %s: status %d", path, st);
	return j;
}

json_t *du_poll(int port, const char *path, int (*pred)(json_t *, void *), void *arg)
{
	for (int i = 0; i < 1200; i++) {
		json_t *j = du_get(port, path);
		if (pred(j, arg))
			return j;
		json_decref(j);
		usleep(50 * 1000);
	}
	fail_msg("GET %s: the expected state did not come within 60 s", path);
	return NULL;
}

int du_port(const struct tu_proc *p)
{
	return tu_log_port(p, "listening on http://127.0.0.1:", 60);
}

int du_start(struct tu_proc *p, const struct du_daemon *d, const char *logname)
{
	char *log = tu_path(logname);
	char *argv[48] = { (char *)d->bin, "--listen", "127.0.0.1:0", "--models-dir",
	    (char *)d->models, "--state-dir", (char *)d->state, "--nvml-lib",
	    (char *)(d->nvml ? d->nvml : "/nonexistent/libnvidia-ml.so"), "--reserve", "0",
	    "--llama-server", (char *)d->llama_bin, "--ollama-url",
	    (char *)(d->ollama_url ? d->ollama_url : ""), "--llama-url", "http://127.0.0.1:9",
	    "--rescan", "0", "--idle-ttl", "0" };
	size_t n = 21;
	for (size_t i = 0; d->extra != NULL && d->extra[i] != NULL; i++) {
		assert_true(n < sizeof argv / sizeof argv[0] - 1);
		argv[n++] = d->extra[i];
	}
	argv[n] = NULL;
	assert_int_equal(tu_spawn(p, argv, log), 0);
	free(log);
	return du_port(p);
}

int du_has_models(json_t *j, void *min)
{
	return json_array_size(json_object_get(j, "models")) >= *(const size_t *)min;
}

json_t *du_at(json_t *j, const char *path)
{
	char buf[256];
	snprintf(buf, sizeof buf, "%s", path);
	char *save = NULL;
	for (char *t = strtok_r(buf, ".", &save); t && j; t = strtok_r(NULL, ".", &save)) {
		char *end;
		long i = strtol(t, &end, 10);
		j = *end == '\0' && json_is_array(j) ? json_array_get(j, (size_t)i) :
		    json_object_get(j, t);
	}
	return j;
}

void du_gen(const char *shape, const char *path, const char *quant, int fill, uint64_t seed)
{
	char err[4096];
	const struct shape *sh = shapes_find(shape);
	assert_non_null(sh);
	char *vocab = shapes_vocab_path(sh->vocab);
	struct shapes_opts o = { quant, vocab, fill, seed, 1 };
	if (shapes_write(sh, &o, path, err, sizeof err) < 0)
		fail_msg("gen %s: %s", shape, err);
	free(vocab);
}

void du_fake_gpu(const char *path, uint64_t total, uint64_t used)
{
	char *s = xasprintf("count 1\ngpu 0 name=\"Fake GPU\" uuid=GPU-fake total=%llu used=%llu "
	    "temp=40 util=0\n", (unsigned long long)total, (unsigned long long)used);
	assert_int_equal(tu_write_file(path, s, strlen(s)), 0);
	free(s);
}

static int stops_failed;

int du_stops_failed(void)
{
	return stops_failed;
}

int du_stop(struct tu_proc *p)
{
	int rc = 0, ws = 0;
	if (p->pid > 0) {
		kill(p->pid, SIGTERM);
		int i = 0;
		while (i < 600 && waitpid(p->pid, &ws, WNOHANG) != p->pid) {
			usleep(50 * 1000);
			i++;
		}
		if (i == 600 || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
			fprintf(stderr, "du_stop: mloffloadd %d %s %d\n", (int)p->pid, i == 600 ?
			    "did not exit after SIGTERM, pid" : WIFSIGNALED(ws) ? "died of signal" :
			    "exited with status", i == 600 ? (int)p->pid : WIFSIGNALED(ws) ?
			    WTERMSIG(ws) : WEXITSTATUS(ws));
			rc = -1;
			stops_failed++;
		}
		if (i < 600)
			p->pid = 0; /* reaped: tu_stop must not signal its pid again */
	}
	tu_stop(p);
	return rc;
}
