/*
 * api_int: what the files of the api module (api.c, api_budget.c) share.
 */
#ifndef MLO_API_INT_H
#define MLO_API_INT_H

#include <stddef.h>

struct api;
struct api_budget;
struct evhttp_request;

/* Reads the query parameter key of req into out (decoded). 1 found, 0 absent, -1 too
 * long or a query that does not parse. */
int api_query_param(struct evhttp_request *req, const char *key, char *out, size_t len);

/* GET /vram/budget (api_budget.c). */
void api_budget_route(struct api *a, struct evhttp_request *req, const char *arg);
/* The kept headers of /vram/budget and the parses under way; NULL when the pipe or the
 * event cannot be made. */
struct api_budget *api_budget_new(struct api *a);
/* Waits for the parses under way; frees everything (after evhttp_free). */
void api_budget_free(struct api_budget *b);

#endif
