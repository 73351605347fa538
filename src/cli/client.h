/*
 * client: the mloffload commands that talk to a running daemon over HTTP (--url, else
 * $MLOFFLOAD_URL, else http://127.0.0.1:9000; the key from --api-key-file, else
 * $MLOFFLOAD_API_KEY): status, models, vram, scan, budget here; ps, load, unload,
 * switch, events, logs in cli_daemon.c; run in cli_run.c. Tables for people, --json
 * prints what the daemon answered.
 */
#ifndef MLO_CLIENT_H
#define MLO_CLIENT_H

#include <jansson.h>
#include <stddef.h>

/* Where the daemon is and how to reach it. */
struct client {
	char *base;   /* URL without a trailing '/' (heap) */
	char *auth;   /* "Authorization: Bearer KEY" (heap) or NULL */
};

/* Runs the client command argv[0] (argc >= 1). Returns the exit status: 0 ok, 1 the
 * daemon answered an error or could not be reached, 2 usage. */
int client_main(int argc, char **argv);
/* 1 if cmd is a client command. */
int client_is_command(const char *cmd);

/* Sends a request with body (JSON text, or NULL for none); returns the parsed answer
 * (new) with the status in *status, or NULL after a message on stderr. */
json_t *client_call(const struct client *c, const char *method, const char *path,
    const char *body, long *status);
/* The daemon's error message in j (borrowed), or a fallback. */
const char *client_error(json_t *j);
/* Prints j as indented JSON on stdout; steals j. Returns 0, or 1 when it cannot. */
int client_print_json(json_t *j);
/* Formats bytes as "1.5 GiB" into buf (32 bytes). */
const char *client_size(json_t *o, const char *k, char *buf);

/* Streams: called with each piece of the body as it arrives; return 0 to go on, 1 to
 * stop the transfer (not an error). */
typedef int (*client_data_fn)(const char *p, size_t n, void *arg);
struct client_stream;
/* Starts a streamed request (body may be NULL; extra a header line or NULL); the
 * status is known once client_stream_status says it. NULL when curl cannot start. */
struct client_stream *client_stream_new(const struct client *c, const char *method,
    const char *path, const char *body, const char *extra, client_data_fn fn, void *arg);
/* Runs every stream of c's list (NULL-terminated array) for up to ms milliseconds or
 * until one finishes. Returns the number still running. */
int client_stream_poll(struct client_stream **s, int ms);
/* The status (0 before the headers), done flag and curl's result text (NULL when
 * the transfer ended well or was stopped by the callback). */
long client_stream_status(const struct client_stream *s);
int client_stream_done(const struct client_stream *s);
const char *client_stream_error(const struct client_stream *s);
void client_stream_free(struct client_stream *s);
/* Runs one stream to its end; returns the status, or 0 when nothing answered (with a
 * message on stderr). */
long client_stream_run(const struct client *c, const char *method, const char *path,
    const char *body, const char *extra, client_data_fn fn, void *arg);

/* cli_daemon.c: ps, load, unload, switch, events, logs; cli_run.c: run. Each takes
 * argv[0] as the command name and returns the exit status. */
int cli_daemon_ps(const struct client *c, int argc, char **argv);
int cli_daemon_load(const struct client *c, int argc, char **argv);
int cli_daemon_unload(const struct client *c, int argc, char **argv);
int cli_daemon_switch(const struct client *c, int argc, char **argv);
int cli_daemon_events(const struct client *c, int argc, char **argv);
int cli_daemon_logs(const struct client *c, int argc, char **argv);
int cli_run(const struct client *c, int argc, char **argv);

#endif
