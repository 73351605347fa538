/*
 * api: the daemon's REST routes (docs/daemon.md), JSON in and out with one error
 * envelope {"error":{"code","message"}}, on evhttp. Bad input never changes state.
 */
#ifndef MLO_API_H
#define MLO_API_H

#include <jansson.h>

struct daemon;
struct evhttp_request;

/* Registers the routes on d->http. Returns 0 or -1. */
int api_init(struct daemon *d);
/* Sets up the connection layer (d->conn) from d->cfg, or applies d->cfg to it. */
void api_conn_opts(struct daemon *d);
/* Sends j (stolen) with status. */
void api_reply_json(struct evhttp_request *req, int status, json_t *j);
/* Sends the error envelope. */
void api_reply_error(struct evhttp_request *req, int status, const char *code,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
