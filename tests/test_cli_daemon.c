/*
 * test_cli_daemon: the mloffload commands that drive a running daemon (ps, load,
 * switch, unload, run, events, logs, models) as a person and a script use them: plain
 * lines without a terminal, a progress bar and the interactive chat in a pseudo-
 * terminal (tmux, and script(1) for the raw bytes of the bar), each --json compared
 * with what the API says, exit statuses and the daemon's reasons on refusal. The real
 * mloffloadd with real llama-server children on tiny generated models and the fake
 * NVML as a GPU.
 */
#include "daemonutil.h"

#include "util.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *bin, *cli, *models, *state, *nvml, *llama_bin, *sock;
static struct tu_proc dmn;
static int port;

static int has_models(json_t *j, void *arg)
{
	return json_array_size(json_object_get(j, "models")) >= 3;
}

static int setup(void **st)
{
	const char *bd = getenv("MLO_BUILD_DIR");
	char *root = tu_llama_root();
	if (root == NULL || access("/usr/bin/tmux", X_OK) != 0) {
		fprintf(stderr, "test_cli_daemon: needs llama.cpp (scripts/setup-llama.sh) and "
		    "tmux\n");
		free(root);
		return -1;
	}
	llama_bin = xasprintf("%s/build/bin/llama-server", root);
	free(root);
	bin = xasprintf("%s/mloffloadd", bd);
	cli = xasprintf("%s/mloffload", bd);
	models = tu_path("models");
	state = tu_path("state");
	nvml = tu_path("nvml.txt");
	sock = xasprintf("mlo-cli-test-%d", (int)getpid());
	mkdir(models, 0755);
	const char *names[] = { "a", "b" };
	for (int i = 0; i < 2; i++) {
		char *p = xasprintf("%s/%s.gguf", models, names[i]);
		du_gen("tiny", p, NULL, 1, (uint64_t)i + 1);
		free(p);
	}
	char *p = xasprintf("%s/a-model-with-a-rather-long-identifier.gguf", models);
	du_gen("qwen3moe-30b", p, "F32", 0, 5);   /* 122 GB, sparse: fits nowhere */
	free(p);
	du_fake_gpu(nvml, 1ull << 30, 0);
	char *log = tu_path("daemon.log");
	char *argv[] = { bin, "--listen", "127.0.0.1:0", "--models-dir", models, "--state-dir",
	    state, "--nvml-lib", (char *)FAKE_NVML_PATH, "--reserve", "0", "--llama-server",
	    llama_bin, "--ollama-url", "http://127.0.0.1:9", "--llama-url", "http://127.0.0.1:9",
	    "--rescan", "0", "--idle-ttl", "600", "--sample-ms", "200", NULL };
	setenv("FAKE_NVML_STATE", nvml, 1);
	assert_int_equal(tu_spawn(&dmn, argv, log), 0);
	port = du_port(&dmn);
	free(log);
	json_decref(du_poll(port, "/models", has_models, NULL));
	char *url = xasprintf("http://127.0.0.1:%d", port);
	setenv("MLOFFLOAD_URL", url, 1);
	free(url);
	return 0;
}

static int teardown(void **st)
{
	tu_sh("tmux -L %s kill-server 2>/dev/null", sock);
	du_stop(&dmn);
	free(bin);
	free(cli);
	free(models);
	free(state);
	free(nvml);
	free(llama_bin);
	free(sock);
	return 0;
}

/* The file's text, NUL-terminated (heap), or NULL. */
static char *slurp(const char *path)
{
	size_t n;
	uint8_t *b = tu_read_file(path, &n);
	if (b == NULL)
		return NULL;
	char *t = xmalloc(n + 1);
	memcpy(t, b, n);
	t[n] = '\0';
	free(b);
	return t;
}

/* Runs `mloffload ARGS` with stdin from /dev/null (no terminal anywhere); returns its
 * exit status, stdout in *out and stderr in *err (heap). */
static int run(char **out, char **err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int run(char **out, char **err, const char *fmt, ...)
{
	char args[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(args, sizeof args, fmt, ap);
	va_end(ap);
	char *o = tu_path("out.txt"), *e = tu_path("err.txt");
	int rc = tu_sh("%s %s < /dev/null > '%s' 2> '%s'", cli, args, o, e);
	*out = slurp(o);
	*err = slurp(e);
	assert_non_null(*out);
	assert_non_null(*err);
	free(o);
	free(e);
	return rc;
}

static json_t *parse(const char *s)
{
	json_error_t je;
	json_t *j = json_loads(s, 0, &je);
	if (j == NULL)
		fail_msg("not JSON (%s): %s", je.text, s);
	return j;
}

/* ---- tmux, a pseudo-terminal a test can read ---- */

static void tmux_start(const char *name, const char *cmd)
{
	char *done = tu_path(name);
	/* a history long enough to count every prompt of the session */
	assert_int_equal(tu_sh("tmux -L %s start-server \\; set-option -g history-limit 100000 "
	    "\\; new-session -d -s %s -x 160 -y 50 \"%s; echo \\$? > '%s.rc'; sleep 600\"",
	    sock, name, cmd, done), 0);
	free(done);
}

/* The pane's text (heap). */
static char *tmux_text(const char *name)
{
	char *o = tu_path("pane.txt");
	tu_sh("tmux -L %s capture-pane -p -J -S - -t %s > '%s'", sock, name, o);
	char *t = slurp(o);
	free(o);
	return t ? t : xstrdup("");
}

static int count(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

/* Waits until the pane shows needle at least times times; fails after 120 s. */
static void tmux_wait(const char *name, const char *needle, int times)
{
	for (int i = 0; i < 1200; i++) {
		char *t = tmux_text(name);
		int n = count(t, needle);
		free(t);
		if (n >= times)
			return;
		usleep(100000);
	}
	char *t = tmux_text(name);
	fail_msg("the terminal never showed '%s' %d times:\n%s", needle, times, t);
}

/* The exit status the command in the session wrote, waiting for it (120 s). */
static int tmux_rc(const char *name)
{
	char *f = xasprintf("%s/%s.rc", tu_tmpdir(), name);
	for (int i = 0; i < 1200; i++) {
		char *t = slurp(f);
		if (t != NULL && *t != '\0') {
			int rc = (int)strtol(t, NULL, 10);
			free(t);
			free(f);
			return rc;
		}
		free(t);
		usleep(100000);
	}
	fail_msg("the command in tmux session %s did not end", name);
	return -1;
}

/* ---- the tests ---- */

/* models: where each would run in plain words, in aligned columns. */
static void test_models_fit(void **st)
{
	char *out, *err;
	assert_int_equal(run(&out, &err, "models"), 0);
	assert_non_null(strstr(out, "GPU0 3/3 layers"));
	assert_non_null(strstr(out, "does not fit"));
	/* the fit column starts at the same place on every line */
	const char *hdr = strstr(out, "fit");
	long col = hdr - out;
	int rows = 0;
	for (const char *l = strchr(out, '\n'); l && l[1]; l = strchr(l + 1, '\n'), rows++) {
		char line[512];
		snprintf(line, sizeof line, "%.*s", (int)strcspn(l + 1, "\n"), l + 1);
		const char *f = strstr(line, "GPU0");
		if (f == NULL)
			f = strstr(line, "does not fit");
		assert_non_null(f);
		assert_int_equal(f - line, col);
	}
	assert_int_equal(rows, 3);
	free(out);
	free(err);
	assert_int_equal(run(&out, &err, "models --json"), 0);
	json_t *j = parse(out), *api = du_get(port, "/models");
	assert_int_equal(json_array_size(json_object_get(j, "models")),
	    json_array_size(json_object_get(api, "models")));
	json_decref(j);
	json_decref(api);
	free(out);
	free(err);
}

/* load without a terminal: one plain line per step, the memory per device at the end;
 * ps shows it; both --json agree with the API. */
static void test_load_plain_and_ps(void **st)
{
	char *out, *err;
	assert_int_equal(run(&out, &err, "load a --ctx 2048"), 0);
	assert_non_null(strstr(out, "starting llama-server: 3 of 3 layers on the GPU"));
	assert_non_null(strstr(out, "a ready in "));
	assert_non_null(strstr(out, "gpu0 "));
	assert_null(strchr(out, '\r'));   /* no bar redraws in a file */
	free(out);
	free(err);
	assert_int_equal(run(&out, &err, "ps"), 0);
	assert_non_null(strstr(out, "NAME"));
	assert_non_null(strstr(out, "% GPU"));
	assert_non_null(strstr(out, "ready"));
	free(out);
	free(err);
	assert_int_equal(run(&out, &err, "ps --json"), 0);
	json_t *j = parse(out), *api = du_get(port, "/status");
	assert_int_equal(json_array_size(j), 1);
	assert_string_equal(json_string_value(du_at(j, "0.model")), "a");
	assert_int_equal(json_integer_value(du_at(j, "0.plan.ctx")), 2048);
	assert_true(json_equal(du_at(j, "0.plan"), du_at(api, "loaded.0.plan")));
	json_decref(j);
	json_decref(api);
	free(out);
	free(err);
	/* load --json of a loaded model: the daemon's answer, as GET /models/a's runtime */
	assert_int_equal(run(&out, &err, "load a --json"), 0);
	j = parse(out);
	api = du_get(port, "/models/a");
	assert_string_equal(json_string_value(json_object_get(j, "state")), "ready");
	assert_int_equal(json_integer_value(json_object_get(j, "pid")),
	    json_integer_value(du_at(api, "runtime.pid")));
	json_decref(j);
	json_decref(api);
	free(out);
	free(err);
}

/* A refusal: non-zero (3: does not fit) and the daemon's reason, word for word. */
static void test_refused(void **st)
{
	int status;
	json_t *r = du_req(port, "POST", "/load", "{\"model\":\"a-model-with-a-rather-long-"
	    "identifier\",\"offload\":\"gpu\"}", &status);
	assert_int_equal(status, 507);
	char *out, *err;
	assert_int_equal(run(&out, &err, "load a-model-with-a-rather-long-identifier --offload "
	    "gpu"), 3);
	assert_non_null(strstr(err, json_string_value(du_at(r, "error.message"))));
	free(out);
	free(err);
	assert_int_equal(run(&out, &err, "load --offload sideways a"), 2);
	assert_non_null(strstr(err, "usage: mloffload load"));
	free(out);
	free(err);
	assert_int_equal(run(&out, &err, "load --help"), 0);
	assert_non_null(strstr(out, "--no-wait"));
	free(out);
	free(err);
	json_decref(r);
}

/* switch: the queue, the eviction and the new model ready, in plain lines. */
static void test_switch(void **st)
{
	char *out, *err;
	assert_int_equal(run(&out, &err, "switch a b"), 0);
	assert_non_null(strstr(out, "evicting a"));
	assert_non_null(strstr(out, "a unloaded"));
	assert_non_null(strstr(out, "b ready in "));
	free(out);
	free(err);
	json_t *s = du_get(port, "/status");
	assert_int_equal(json_array_size(json_object_get(s, "loaded")), 1);
	assert_string_equal(json_string_value(du_at(s, "loaded.0.model")), "b");
	json_decref(s);
}

/* events: what the daemon emitted (--json: each event as /events sends it), by type. */
static void test_events(void **st)
{
	char *out, *err;
	assert_int_equal(run(&out, &err, "events --json"), 0);
	json_t *s = du_get(port, "/status");
	json_int_t last = json_integer_value(du_at(s, "notify.events"));
	json_decref(s);
	char *save, *line = strtok_r(out, "\n", &save);
	json_int_t id = 0, n = 0;
	for (; line != NULL; line = strtok_r(NULL, "\n", &save), n++) {
		json_t *e = parse(line);
		assert_true(json_integer_value(json_object_get(e, "id")) > id);
		id = json_integer_value(json_object_get(e, "id"));
		assert_non_null(json_string_value(json_object_get(e, "type")));
		json_decref(e);
	}
	assert_int_equal(id, last);
	assert_int_equal(n, last);
	free(out);
	free(err);
	assert_int_equal(run(&out, &err, "events --type model.loaded"), 0);
	assert_int_equal(count(out, "model.loaded"), 2);   /* a, then b */
	assert_int_equal(count(out, "\n"), 2);
	assert_null(strstr(out, "model.unloaded"));
	free(out);
	free(err);
}

static void test_logs(void **st)
{
	char *out, *err;
	assert_int_equal(run(&out, &err, "logs b"), 0);
	assert_non_null(strstr(out, "listening on"));
	free(out);
	free(err);
	assert_int_equal(run(&out, &err, "logs nosuch"), 1);
	assert_non_null(strstr(err, "no model with id"));
	free(out);
	free(err);
}

/* run without a terminal: stdin is the prompt; --json is the whole answer. */
static void test_run_stdin(void **st)
{
	char *o = tu_path("run.json");
	assert_int_equal(tu_sh("echo 'Hello there' | %s run b --max-tokens 4 --json > '%s'", cli,
	    o), 0);
	char *t = slurp(o);
	json_t *j = parse(t);
	assert_string_equal(json_string_value(json_object_get(j, "model")), "b");
	/* random weights may draw the end-of-text token early: "stop" is an honest end too,
	 * but a "length" end means 4 tokens of text came */
	const char *fin = json_string_value(json_object_get(j, "finish_reason"));
	assert_non_null(fin);
	assert_true(strcmp(fin, "length") == 0 || strcmp(fin, "stop") == 0);
	if (strcmp(fin, "length") == 0)
		assert_true(json_string_length(json_object_get(j, "content")) > 0);
	json_decref(j);
	free(t);
	free(o);
}

/* load on a terminal: a bar redrawn in place while it loads (the raw bytes, from
 * script(1)), then the same final line. */
static void test_load_tty_bar(void **st)
{
	char *o = tu_path("tty.raw");
	int status;
	json_decref(du_req(port, "POST", "/unload", "{\"model\":\"b\"}", &status));
	assert_int_equal(tu_sh("script -q -e -c '%s load a' /dev/null < /dev/null > '%s'", cli,
	    o), 0);
	char *t = slurp(o);
	assert_non_null(t);
	assert_non_null(strstr(t, "\r\033[K"));
	assert_non_null(strstr(t, "loading   [#"));
	assert_non_null(strstr(t, "a ready in "));
	free(t);
	free(o);
}

/* Waits for answer text after the line question, then sends Ctrl-C. */
static void answer_then_stop(const char *question)
{
	for (int i = 0; i < 1200; i++) {
		char *t = tmux_text("chat");
		const char *q = strstr(t, question);
		int going = q != NULL && strlen(q) > strlen(question) + 20;
		free(t);
		if (going)
			break;
		usleep(100000);
	}
	assert_int_equal(tu_sh("tmux -L %s send-keys -t chat C-c", sock), 0);
}

/* The interactive chat: answers streamed, history kept, Ctrl-C stops an answer and
 * not the program, /bye ends it. */
static void test_run_interactive(void **st)
{
	char *cmd = xasprintf("%s run a --max-tokens 3000", cli);
	tmux_start("chat", cmd);
	free(cmd);
	tmux_wait("chat", ">>> ", 1);
	assert_int_equal(tu_sh("tmux -L %s send-keys -t chat 'Tell me a long story' Enter",
	    sock), 0);
	answer_then_stop("Tell me a long story\n");
	tmux_wait("chat", "[stopped]", 1);
	tmux_wait("chat", ">>> ", 2);
	/* the session goes on after a stopped answer */
	assert_int_equal(tu_sh("tmux -L %s send-keys -t chat 'And then?' Enter", sock), 0);
	answer_then_stop("And then?\n");
	tmux_wait("chat", "[stopped]", 2);
	tmux_wait("chat", ">>> ", 3);
	assert_int_equal(tu_sh("tmux -L %s send-keys -t chat C-c", sock), 0);  /* at the prompt */
	tmux_wait("chat", ">>> ", 4);
	assert_int_equal(tu_sh("tmux -L %s send-keys -t chat /bye Enter", sock), 0);
	assert_int_equal(tmux_rc("chat"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_models_fit),
		cmocka_unit_test(test_load_plain_and_ps),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_switch),
		cmocka_unit_test(test_events),
		cmocka_unit_test(test_logs),
		cmocka_unit_test(test_run_stdin),
		cmocka_unit_test(test_load_tty_bar),
		cmocka_unit_test(test_run_interactive),
	};
	int rc = cmocka_run_group_tests(tests, setup, teardown);
	return rc != 0 ? rc : du_stops_failed(); /* every daemon stopped cleanly */
}
