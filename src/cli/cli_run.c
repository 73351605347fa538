/*
 * cli_run: `mloffload run MODEL [PROMPT]`, a chat through the daemon's
 * /v1/chat/completions, streamed to the terminal as it arrives (the daemon loads the
 * model when it is not). With a PROMPT: one answer. Without, stdin a terminal: an
 * interactive session keeping its history, ended by /bye or Ctrl-D; Ctrl-C stops the
 * answer being written, not the program. Without, stdin not a terminal: stdin is the
 * prompt. Knowingly simple: lines are read with getline, no line editing.
 */
#include "cli.h"
#include "client.h"
#include "util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_PROMPT (1u << 20)

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	interrupted = 1;
}

struct answer {
	struct cli_sse sse;
	char *text;            /* heap, what came so far */
	size_t len;
	char finish[32];
	int json;              /* print nothing while it comes */
	char err[4096];        /* an error answer's body */
	size_t elen;
	struct client_stream *s;
	int waiting_shown;     /* "(MODEL is loading…)" is on the terminal */
};

static void on_chunk(const char *type, const char *data, void *arg)
{
	struct answer *a = arg;
	if (strcmp(data, "[DONE]") == 0)
		return;
	json_error_t je;
	json_t *j = json_loads(data, 0, &je);
	json_t *ch = json_array_get(json_object_get(j, "choices"), 0);
	const char *t = json_string_value(json_object_get(json_object_get(ch, "delta"),
	    "content"));
	const char *fr = json_string_value(json_object_get(ch, "finish_reason"));
	if (json_object_get(j, "error") != NULL)
		snprintf(a->err, sizeof a->err, "%s", client_error(j));
	if (t != NULL && *t != '\0') {
		size_t n = strlen(t);
		a->text = xrealloc(a->text, a->len + n + 1);
		memcpy(a->text + a->len, t, n + 1);
		a->len += n;
		if (a->waiting_shown) {
			fputs("\r\033[K", stderr);
			a->waiting_shown = 0;
		}
		if (!a->json) {
			fputs(t, stdout);
			fflush(stdout);
		}
	}
	if (fr != NULL)
		snprintf(a->finish, sizeof a->finish, "%s", fr);
	json_decref(j);
}

static int on_bytes(const char *p, size_t n, void *arg)
{
	struct answer *a = arg;
	if (interrupted)
		return 1;
	if (client_stream_status(a->s) != 200) {
		size_t k = n < sizeof a->err - 1 - a->elen ? n : sizeof a->err - 1 - a->elen;
		memcpy(a->err + a->elen, p, k);
		a->elen += k;
		a->err[a->elen] = '\0';
		return 0;
	}
	cli_sse_feed(&a->sse, p, n, on_chunk, a);
	return 0;
}

/* Sends the conversation; the answer's text is appended to msgs. Returns 0, 1 on an
 * error (said on stderr), 130 when Ctrl-C stopped it. */
static int ask(const struct client *c, const char *model, json_t *msgs, int json,
    long long max_tokens)
{
	json_t *body = json_pack("{s:s,s:b,s:O}", "model", model, "stream", 1, "messages", msgs);
	if (max_tokens > 0)
		json_object_set_new(body, "max_tokens", json_integer(max_tokens));
	char *b = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	struct answer a;
	memset(&a, 0, sizeof a);
	a.json = json;
	interrupted = 0;
	a.s = client_stream_new(c, "POST", "/v1/chat/completions", b, NULL, on_bytes, &a);
	free(b);
	struct client_stream *all[] = { a.s, NULL };
	uint64_t t0 = cli_now_ms();
	int can_show = !json && isatty(STDERR_FILENO) && isatty(STDOUT_FILENO);
	while (a.s != NULL && !interrupted && client_stream_poll(all, 100) > 0) {
		/* nothing yet after a while: the daemon is loading the model, most likely */
		if (can_show && a.len == 0 && cli_now_ms() - t0 > 700) {
			fprintf(stderr, "(waiting for %s: loading…)", model);
			can_show = 0;
			a.waiting_shown = 1;
		}
	}
	if (a.waiting_shown)
		fputs("\r\033[K", stderr);
	long st = a.s ? client_stream_status(a.s) : 0;
	const char *cerr = a.s ? client_stream_error(a.s) : "cannot start curl";
	int rc = 0;
	if (interrupted) {
		rc = 130;
		if (!json)
			printf("\n[stopped]");
	} else if (st == 0) {
		fprintf(stderr, "mloffload: %s/v1/chat/completions: %s (is mloffloadd running?)\n",
		    c->base, cerr ? cerr : "no answer");
		rc = 1;
	} else if (st != 200 || (a.len == 0 && a.err[0] != '\0')) {
		json_error_t je;
		json_t *e = json_loads(a.err, 0, &je);
		fprintf(stderr, "mloffload: run %s: %s\n", model, e ? client_error(e) :
		    a.err[0] ? a.err : "the daemon answered an error");
		json_decref(e);
		rc = 1;
	}
	client_stream_free(a.s);
	cli_sse_free(&a.sse);
	if (rc != 1) {
		json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "assistant", "content",
		    a.text ? a.text : ""));
		if (json)
			client_print_json(json_pack("{s:s,s:s,s:s?}", "model", model, "content",
			    a.text ? a.text : "", "finish_reason", a.finish[0] ? a.finish : NULL));
		else
			printf("\n");
	}
	free(a.text);
	return rc;
}

/* Reads all of stdin (at most MAX_PROMPT bytes); heap string or NULL. */
static char *read_stdin(void)
{
	size_t cap = 4096, len = 0;
	char *p = xmalloc(cap);
	size_t n;
	while ((n = fread(p + len, 1, cap - len - 1, stdin)) > 0) {
		len += n;
		if (len > MAX_PROMPT) {
			free(p);
			return NULL;
		}
		if (len + 1 >= cap)
			p = xrealloc(p, cap *= 2);
	}
	p[len] = '\0';
	while (len > 0 && (p[len - 1] == '\n' || p[len - 1] == '\r'))
		p[--len] = '\0';
	return p;
}

static int interactive(const struct client *c, const char *model, long long max_tokens)
{
	json_t *msgs = json_array();
	char *line = NULL;
	size_t cap = 0;
	printf("chatting with %s: /bye or Ctrl-D ends, Ctrl-C stops an answer\n", model);
	for (;;) {
		printf(">>> ");
		fflush(stdout);
		interrupted = 0;
		errno = 0;
		ssize_t n = getline(&line, &cap, stdin);
		if (n < 0) {
			if (errno == EINTR || interrupted) {   /* Ctrl-C at the prompt: a new one */
				clearerr(stdin);
				printf("\n");
				continue;
			}
			printf("\n");
			break;
		}
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (strcmp(line, "/bye") == 0)
			break;
		if (n == 0)
			continue;
		json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "user", "content", line));
		if (ask(c, model, msgs, 0, max_tokens) == 1)
			json_array_remove(msgs, json_array_size(msgs) - 1);   /* not answered */
	}
	free(line);
	json_decref(msgs);
	return 0;
}

static const char run_help[] = "usage: mloffload run MODEL [PROMPT] [--max-tokens N] [--json]\n"
    "  chat with MODEL through the daemon (loaded if it is not), the answer written as\n"
    "  it comes. No PROMPT: an interactive chat on a terminal (/bye or Ctrl-D ends it,\n"
    "  Ctrl-C stops an answer), else stdin is the prompt. --json: the answer as JSON.\n";

int cli_run(const struct client *c, int argc, char **argv)
{
	const char *model = NULL, *prompt = NULL;
	int json = 0;
	long long max_tokens = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = 1;
		else if (strcmp(argv[i], "--max-tokens") == 0 && i + 1 < argc &&
		    util_parse_int(argv[i + 1], 1, 1 << 24, &max_tokens) == 0)
			i++;
		else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return fputs(run_help, stdout), 0;
		else if (model == NULL && argv[i][0] != '-')
			model = argv[i];
		else if (prompt == NULL && model != NULL)
			prompt = argv[i];
		else
			return fputs(run_help, stderr), 2;
	}
	if (model == NULL)
		return fputs(run_help, stderr), 2;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigint;   /* no SA_RESTART: Ctrl-C ends a read at the prompt */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	if (prompt == NULL && isatty(STDIN_FILENO) && !json)
		return interactive(c, model, max_tokens);
	char *in = prompt ? xstrdup(prompt) : read_stdin();
	if (in == NULL || *in == '\0') {
		fprintf(stderr, "mloffload: run: no prompt (stdin was empty or over %u bytes)\n",
		    MAX_PROMPT);
		free(in);
		return 2;
	}
	json_t *msgs = json_pack("[{s:s,s:s}]", "role", "user", "content", in);
	free(in);
	int rc = ask(c, model, msgs, json, max_tokens);
	json_decref(msgs);
	return rc;
}
