/*
 * fake_llama: a TEST DOUBLE of llama.h for the scheduler's decision tests
 * (test_sched.c). Linked in place of src/host/llama.c, so the scheduler runs unchanged and
 * nothing is spawned: llama_start records the arguments and returns an instance that
 * the test makes ready (fake_llama_ready) or ends (fake_llama_exit); llama_stop only
 * marks it, and fake_llama_reap ends every marked one, as the children's exits would.
 */
#include "fake_llama.h"
#include "llama.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

struct llama {
	char *alias;
	char **args;
	size_t n_args;
	struct llama_cb cb;
	int port;
	int stopping;
	struct llama *next;
};

static struct llama *live;
static int next_port = 40000;
static unsigned started;

struct llama *llama_start(struct event_base *base, const char *server, const char *model,
    const char *alias, char *const *args, const char *log_path, const struct llama_cb *cb,
    char *err, size_t errlen)
{
	struct llama *l = xcalloc(1, sizeof *l);
	l->alias = xstrdup(alias);
	while (args[l->n_args] != NULL)
		l->n_args++;
	l->args = xcalloc(l->n_args + 1, sizeof *l->args);
	for (size_t i = 0; i < l->n_args; i++)
		l->args[i] = xstrdup(args[i]);
	l->cb = *cb;
	l->port = next_port++;
	l->next = live;
	live = l;
	started++;
	return l;
}

void llama_stop(struct llama *l, int grace_ms)
{
	l->stopping = 1;
}

void llama_kill(struct llama *l)
{
	l->stopping = 1;
}

int llama_port(const struct llama *l)
{
	return l->port;
}

const char *llama_key(const struct llama *l)
{
	return "fake-key";
}

pid_t llama_pid(const struct llama *l)
{
	return 0;
}

json_t *llama_measured(const struct llama *l)
{
	return json_object();
}

void llama_free(struct llama *l)
{
	if (l == NULL)
		return;
	for (struct llama **pp = &live; *pp != NULL; pp = &(*pp)->next)
		if (*pp == l) {
			*pp = l->next;
			break;
		}
	for (size_t i = 0; i < l->n_args; i++)
		free(l->args[i]);
	free(l->args);
	free(l->alias);
	free(l);
}

struct llama *fake_llama_find(const char *alias)
{
	for (struct llama *l = live; l != NULL; l = l->next)
		if (strcmp(l->alias, alias) == 0)
			return l;
	return NULL;
}

const char *fake_llama_arg(const struct llama *l, const char *flag)
{
	for (size_t i = 0; i + 1 < l->n_args; i++)
		if (strcmp(l->args[i], flag) == 0)
			return l->args[i + 1];
	return NULL;
}

int fake_llama_stopping(const struct llama *l)
{
	return l->stopping;
}

void fake_llama_ready(struct llama *l)
{
	l->cb.ready(l->cb.arg);
}

void fake_llama_exit(struct llama *l, int status)
{
	l->cb.exited(l->cb.arg, status, ""); /* the scheduler frees l from here */
}

size_t fake_llama_reap(void)
{
	size_t n = 0;
	for (struct llama *l = live, *next; l != NULL; l = next) {
		next = l->next;
		if (l->stopping) {
			fake_llama_exit(l, 0);
			n++;
			next = live; /* the list changed under us: start over */
		}
	}
	return n;
}

unsigned fake_llama_started(void)
{
	return started;
}

size_t fake_llama_live(void)
{
	size_t n = 0;
	for (struct llama *l = live; l != NULL; l = l->next)
		n++;
	return n;
}

static char *offered;   /* heap, or NULL: the binary says nothing */

void fake_llama_set_devices(const char *list)
{
	free(offered);
	offered = list != NULL ? xstrdup(list) : NULL;
}

int llama_devices(const char *server, char *out, size_t len)
{
	if (offered == NULL)
		return -1; /* no binary to ask: the children are named the devices as planned */
	snprintf(out, len, "%s", offered);
	return 0;
}
