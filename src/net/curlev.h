/*
 * curlev: one libcurl multi handle driven by a libevent loop, the multi_socket way.
 * curl's socket callback says which sockets to watch (one persistent event each), its
 * timer callback when to wake it (one evtimer); readiness and the timer go to
 * curl_multi_socket_action, and every finished transfer is handed to the owner's done
 * callback. Shared by discover_http.c and notify.c.
 */
#ifndef MLO_CURLEV_H
#define MLO_CURLEV_H

#include <curl/curl.h>
#include <event2/event.h>

struct curlev;

/* A transfer is over: easy is already out of the multi and still the owner's, to free
 * (here or later). May call curlev_add, curlev_remove, even curlev_free on its curlev. */
typedef void (*curlev_done_cb)(void *arg, CURL *easy, CURLcode result);

/* A new multi handle on base, reporting finished transfers to done(arg, ...). Returns
 * NULL (logged) when curl or libevent cannot make one. */
struct curlev *curlev_new(struct event_base *base, curlev_done_cb done, void *arg);
/* Frees c, its sockets and timer; transfers in flight are removed first, never freed
 * (their owners free them). Called from done, the free waits until done returns. NULL:
 * nothing. */
void curlev_free(struct curlev *c);
/* The multi handle, borrowed: for curl_multi_setopt, never for the callbacks above. */
CURLM *curlev_multi(struct curlev *c);
/* Starts easy (borrowed: the caller still owns it). Returns CURLM_OK, or curl's error
 * with nothing changed. */
CURLMcode curlev_add(struct curlev *c, CURL *easy);
/* Stops easy, which is then the caller's to free; done is not called for it. Harmless
 * when easy is not in c. */
void curlev_remove(struct curlev *c, CURL *easy);

#endif
