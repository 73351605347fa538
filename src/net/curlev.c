/*
 * curlev: libcurl's multi_socket API on a libevent loop (see curlev.h).
 *
 * curl owns the sockets; for each one it asks us to watch we keep a persistent event,
 * replaced when curl changes what to watch for and freed when it says
 * CURL_POLL_REMOVE. The easy handles in flight are kept in a plain array (a handful at
 * a time: knowingly simple), so that curlev_free can take them out of the multi before
 * curl_multi_cleanup, as curl asks, without freeing what is not ours.
 *
 * Never freed inside its own callback: curlev_free from the done callback only marks c
 * dead, and the handler that ran the callback frees it once the callback returns.
 */
#include "curlev.h"
#include "util.h"

#include <stdlib.h>

/* A socket curl asked us to watch. */
struct curlev_sock {
	struct event *ev;
	struct curlev_sock *prev, *next;
};

struct curlev {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;          /* curl's timeout */
	struct curlev_sock *socks;    /* watched for curl */
	CURL **easies;                /* in flight */
	size_t n_easies, cap_easies;
	curlev_done_cb done;
	void *arg;
	int in_cb;                    /* running done */
	int dead;                     /* curlev_free was called from done */
};

static void sock_free(struct curlev *c, struct curlev_sock *s)
{
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		c->socks = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	if (s->ev != NULL)
		event_free(s->ev);
	free(s);
}

static void destroy(struct curlev *c)
{
	while (c->n_easies > 0)
		curlev_remove(c, c->easies[c->n_easies - 1]);
	if (c->multi != NULL)
		curl_multi_cleanup(c->multi);
	while (c->socks != NULL)   /* the ones curl did not say to remove */
		sock_free(c, c->socks);
	if (c->timer != NULL)
		event_free(c->timer);
	free(c->easies);
	free(c);
}

/* Hands the finished transfers to done; frees c after, when done asked for it. */
static void check_done(struct curlev *c)
{
	CURLMsg *m;
	CURL *easy;
	CURLcode rc;
	int left;

	c->in_cb = 1;
	while (!c->dead && (m = curl_multi_info_read(c->multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		/* m is gone once the handle is removed: copy what we need */
		easy = m->easy_handle;
		rc = m->data.result;
		curlev_remove(c, easy);
		c->done(c->arg, easy, rc);
	}
	c->in_cb = 0;
	if (c->dead)
		destroy(c);
}

/* libevent says a socket is ready: tell curl, then collect what finished. */
static void sock_event(evutil_socket_t fd, short what, void *arg)
{
	struct curlev *c = arg;
	int action = 0, running;

	if (what & EV_READ)
		action |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		action |= CURL_CSELECT_OUT;
	curl_multi_socket_action(c->multi, fd, action, &running);
	check_done(c);   /* may free c: nothing after this */
}

/*
 * curl's socket callback: watch fd for what curl asks, or stop watching it. It runs
 * inside curl_multi_socket_action, possibly from sock_event of this very socket;
 * libevent allows freeing an event from its own callback as long as the callback does
 * not touch it afterwards, and sock_event does not.
 */
static int sock_set(CURL *easy, curl_socket_t fd, int what, void *arg, void *sockp)
{
	struct curlev *c = arg;
	struct curlev_sock *s = sockp;
	short ev = EV_PERSIST;

	if (what == CURL_POLL_REMOVE) {
		if (s != NULL) {
			curl_multi_assign(c->multi, fd, NULL);
			sock_free(c, s);
		}
		return 0;
	}
	if (what & CURL_POLL_IN)
		ev |= EV_READ;
	if (what & CURL_POLL_OUT)
		ev |= EV_WRITE;
	if (s == NULL) {
		s = xcalloc(1, sizeof *s);
		s->next = c->socks;
		if (c->socks != NULL)
			c->socks->prev = s;
		c->socks = s;
		curl_multi_assign(c->multi, fd, s);
	} else if (s->ev != NULL)
		event_free(s->ev);
	s->ev = event_new(c->base, fd, ev, sock_event, c);
	if (s->ev == NULL || event_add(s->ev, NULL) != 0) {
		log_error("curlev: cannot watch socket %d", (int)fd);
		return -1;   /* curl fails the transfers on it */
	}
	return 0;
}

/* The timer is due: let curl handle its timeouts, then collect what finished. */
static void timer_event(evutil_socket_t fd, short what, void *arg)
{
	struct curlev *c = arg;
	int running;

	curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(c);   /* may free c: nothing after this */
}

/* curl's timer callback: wake it in ms milliseconds (0: on the next loop turn), or
 * never (-1). Only arms the timer: curl must not be called back from here. */
static int timer_set(CURLM *multi, long ms, void *arg)
{
	struct curlev *c = arg;
	struct timeval tv;

	if (ms < 0) {
		evtimer_del(c->timer);
		return 0;
	}
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	return evtimer_add(c->timer, &tv) == 0 ? 0 : -1;
}

struct curlev *curlev_new(struct event_base *base, curlev_done_cb done, void *arg)
{
	struct curlev *c = xcalloc(1, sizeof *c);

	c->base = base;
	c->done = done;
	c->arg = arg;
	if ((c->multi = curl_multi_init()) == NULL ||
	    (c->timer = evtimer_new(base, timer_event, c)) == NULL) {
		log_error("curlev: cannot create the multi handle or its timer");
		destroy(c);
		return NULL;
	}
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, sock_set);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_set);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
	return c;
}

void curlev_free(struct curlev *c)
{
	if (c == NULL)
		return;
	if (c->in_cb) {   /* called from done: check_done frees it after */
		c->dead = 1;
		return;
	}
	destroy(c);
}

CURLM *curlev_multi(struct curlev *c)
{
	return c->multi;
}

CURLMcode curlev_add(struct curlev *c, CURL *easy)
{
	CURLMcode mc;

	if (c->n_easies == c->cap_easies) {   /* grown first: nothing to undo after */
		c->cap_easies = c->cap_easies != 0 ? c->cap_easies * 2 : 8;
		c->easies = xreallocarray(c->easies, c->cap_easies, sizeof *c->easies);
	}
	if ((mc = curl_multi_add_handle(c->multi, easy)) != CURLM_OK)
		return mc;
	c->easies[c->n_easies++] = easy;
	return CURLM_OK;
}

void curlev_remove(struct curlev *c, CURL *easy)
{
	for (size_t i = 0; i < c->n_easies; i++) {
		if (c->easies[i] == easy) {
			curl_multi_remove_handle(c->multi, easy);
			c->easies[i] = c->easies[--c->n_easies];
			return;
		}
	}
}
