/*
 * api: the daemon's REST routes (docs/daemon.md), JSON in and out on evhttp; every
 * answer goes through reply.h (one error envelope). Bad input never changes state.
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

#endif
