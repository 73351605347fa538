/*
 * cli: the mloffload client's commands. cli.c dispatches and holds inspect and plan;
 * cli_gen.c holds the developer command that writes GGUF models; client.c,
 * cli_daemon.c and cli_run.c the commands that talk to a running daemon.
 */
#ifndef MLO_CLI_H
#define MLO_CLI_H

int cli_gen(int argc, char **argv);

/* ---- shared by the commands that follow the daemon (cli_daemon.c) ---- */
#include <stddef.h>
#include <stdint.h>

/* A Server-Sent Events reader: feed it bytes as they come; each complete event calls
 * fn(event type, data). Lines past CLI_SSE_LINE bytes are cut. */
#define CLI_SSE_LINE 65536
typedef void (*cli_sse_fn)(const char *type, const char *data, void *arg);
struct cli_sse {
	char line[CLI_SSE_LINE];
	size_t len;
	char event[64];
	char *data;   /* heap, the event's data lines joined */
};
void cli_sse_feed(struct cli_sse *s, const char *p, size_t n, cli_sse_fn fn, void *arg);
/* Frees what s holds (not s). */
void cli_sse_free(struct cli_sse *s);
/* Milliseconds of the monotonic clock. */
uint64_t cli_now_ms(void);

#endif
