/*
 * test_notify: webhooks on a real libevent loop, to the sink HTTP server that this test
 * runs on 127.0.0.1 (evhttp on the same loop, tests/notify_sink.c): it records what
 * arrives and can answer an error status to the first K requests or hold requests
 * unanswered. Covers: the event JSON and its Content-Type, filters, retries after 500
 * and 429 (the attempts counted at the sink), no retry after 400, a dead port and a
 * hung server (failed after the tries while a 10 ms ticker keeps firing; a given-up
 * event becomes a webhook.failed event that no hook is sent), the queue
 * dropping its oldest events, freeing with transfers in flight and retries pending, bad
 * hooks and bad types. The SSE streams are in test_notify_sse.c. Every wait is bounded.
 */
#include "testutil.h"

#include "notify.h"
#include "notify_sink.h"
#include "util.h"

#include <event2/event.h>
#include <event2/http.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	(*(int *)arg)++;
}

/* ---- stats ---- */

static long long hook_stat(struct notify *n, size_t i, const char *key)
{
	json_t *j = notify_stats_json(n);
	json_t *v = json_object_get(json_array_get(json_object_get(j, "hooks"), i), key);
	long long r = json_is_boolean(v) ? json_is_true(v) : json_integer_value(v);

	json_decref(j);
	return r;
}

struct hook_want {
	struct notify *n;
	size_t hook;
	const char *key;
	long long v;
};

static int hook_stat_is(void *arg)
{
	struct hook_want *w = arg;

	return hook_stat(w->n, w->hook, w->key) >= w->v;
}

/* Waits until hook i of n counts key >= v (the sink answers before curl reads it). */
static void wait_stat(struct notify *n, size_t i, const char *key, long long v)
{
	struct hook_want hw = { n, i, key, v };

	assert_true(run_until(hook_stat_is, &hw));
}

static char *url(int port, const char *path)
{
	return xasprintf("http://127.0.0.1:%d%s", port, path);
}

/* ---- webhooks ---- */

static void test_webhook_delivered(void **state)
{
	struct sink s;
	struct notify *n;
	struct notify_hook h = { 0 };
	struct want w = { &s, 1 };
	json_t *data = json_pack("{ss}", "model", "m1"), *j;
	const char *at;

	sink_start(&s);
	h.url = url(s.port, "/hook");
	n = notify_new(base, &h, 1);
	assert_non_null(n);
	notify_emit(n, "model.loaded", data);
	assert_int_equal(data->refcount, 1);   /* borrowed: left as it was */
	json_decref(data);
	assert_true(run_until(sink_got, &w));
	assert_string_equal(s.path[0], "/hook");
	assert_string_equal(s.ctype, "application/json");
	j = json_loads(s.body[0], 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_integer_value(json_object_get(j, "id")), 1);
	assert_string_equal(json_string_value(json_object_get(j, "type")), "model.loaded");
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "data"),
	    "model")), "m1");
	at = json_string_value(json_object_get(j, "at"));
	assert_non_null(at);
	/* 2025-01-02T03:04:05.678Z */
	assert_int_equal(strlen(at), 24);
	assert_true(at[4] == '-' && at[10] == 'T' && at[19] == '.' && at[23] == 'Z');
	json_decref(j);

	/* no data: {} */
	notify_emit(n, "scan.finished", NULL);
	w.n = 2;
	assert_true(run_until(sink_got, &w));
	j = json_loads(s.body[1], 0, NULL);
	assert_int_equal(json_integer_value(json_object_get(j, "id")), 2);
	assert_true(json_is_object(json_object_get(j, "data")));
	assert_int_equal(json_object_size(json_object_get(j, "data")), 0);
	json_decref(j);
	wait_stat(n, 0, "sent", 2);
	assert_int_equal(hook_stat(n, 0, "sent"), 2);
	assert_int_equal(hook_stat(n, 0, "failed"), 0);
	assert_int_equal(s.n_reqs, 2);
	notify_free(n);
	free((char *)h.url);
	sink_stop(&s);
}

static void test_filters(void **state)
{
	static const char *const models[] = { "model.loaded", "model.unloaded" };
	static const char *const vram[] = { "vram.pressure" };
	static const char *const bad[] = { "model.exploded" };
	struct sink s;
	struct notify *n;
	struct notify_hook h[3] = { { 0 }, { 0 }, { 0 } };
	struct want w = { &s, 7 };
	int n_all = 0, n_models = 0, n_vram = 0;
	json_t *j;
	const char *t;

	sink_start(&s);
	h[0].url = url(s.port, "/all");
	h[1].url = url(s.port, "/models");
	h[1].events = models;
	h[1].n_events = 2;
	h[2].url = url(s.port, "/vram");
	h[2].events = vram;
	h[2].n_events = 1;
	n = notify_new(base, h, 3);
	assert_non_null(n);
	notify_emit(n, "model.loaded", NULL);
	notify_emit(n, "vram.pressure", NULL);
	notify_emit(n, "backend.down", NULL);
	notify_emit(n, "model.unloaded", NULL);
	assert_true(run_until(sink_got, &w));
	run_for(100);   /* nothing more arrives */
	assert_int_equal(s.n_got, 7);
	for (int i = 0; i < s.n_got; i++) {
		j = json_loads(s.body[i], 0, NULL);
		t = json_string_value(json_object_get(j, "type"));
		if (strcmp(s.path[i], "/all") == 0)
			n_all++;
		else if (strcmp(s.path[i], "/models") == 0) {
			assert_true(strncmp(t, "model.", 6) == 0);
			/* in order, one at a time */
			assert_string_equal(t, n_models == 0 ? "model.loaded" : "model.unloaded");
			n_models++;
		} else {
			assert_string_equal(s.path[i], "/vram");
			assert_string_equal(t, "vram.pressure");
			n_vram++;
		}
		json_decref(j);
	}
	assert_int_equal(n_all, 4);
	assert_int_equal(n_models, 2);
	assert_int_equal(n_vram, 1);
	notify_free(n);

	/* bad hooks: unknown type, not http, out of range */
	h[2].events = bad;
	assert_null(notify_new(base, h, 3));
	h[2].events = vram;
	free((char *)h[2].url);
	h[2].url = "https://127.0.0.1/x";
	assert_null(notify_new(base, &h[2], 1));
	h[2].url = "ftp://127.0.0.1/x";
	assert_null(notify_new(base, &h[2], 1));
	h[2].url = "http://";
	assert_null(notify_new(base, &h[2], 1));
	h[2].url = "http://127.0.0.1/a b";
	assert_null(notify_new(base, &h[2], 1));
	h[0].max_retries = 11;
	assert_null(notify_new(base, h, 1));
	free((char *)h[0].url);
	free((char *)h[1].url);
	sink_stop(&s);
}

/* fail_k answers of status, then 200: delivered once after fail_k retries. */
static void retry_case(int status)
{
	struct sink s;
	struct notify *n;
	struct notify_hook h = { 0 };
	struct want w = { &s, 1 };

	sink_start(&s);
	s.fail_k = 2;
	s.fail_status = status;
	h.url = url(s.port, "/r");
	h.retry_base_ms = 10;
	n = notify_new(base, &h, 1);
	assert_non_null(n);
	notify_emit(n, "model.failed", NULL);
	assert_true(run_until(sink_got, &w));
	assert_int_equal(s.n_reqs, 3);
	assert_int_equal(s.n_got, 1);
	wait_stat(n, 0, "sent", 1);
	assert_int_equal(hook_stat(n, 0, "sent"), 1);
	assert_int_equal(hook_stat(n, 0, "retries"), 2);
	assert_int_equal(hook_stat(n, 0, "failed"), 0);
	assert_int_equal(hook_stat(n, 0, "in_flight"), 0);
	notify_free(n);
	free((char *)h.url);
	sink_stop(&s);
}

static void test_retry_500(void **state)
{
	retry_case(500);
}

static void test_retry_429(void **state)
{
	retry_case(429);
}

static void test_400_no_retry(void **state)
{
	struct sink s;
	struct notify *n;
	struct notify_hook h = { 0 };
	struct hook_want hw;
	json_t *j;

	sink_start(&s);
	s.fail_k = 100;
	s.fail_status = 400;
	h.url = url(s.port, "/bad");
	h.retry_base_ms = 10;
	n = notify_new(base, &h, 1);
	hw = (struct hook_want){ n, 0, "failed", 1 };
	notify_emit(n, "backend.down", NULL);
	assert_true(run_until(hook_stat_is, &hw));
	run_for(100);   /* no retry comes */
	assert_int_equal(s.n_reqs, 1);
	assert_int_equal(hook_stat(n, 0, "sent"), 0);
	assert_int_equal(hook_stat(n, 0, "retries"), 0);
	j = notify_stats_json(n);
	assert_string_equal(json_string_value(json_object_get(json_array_get(
	    json_object_get(j, "hooks"), 0), "last_error")), "HTTP 400");
	/* the failure is an event of its own (webhook.failed, for /events), which no hook
	 * is sent: the sink saw the one request above */
	assert_int_equal(json_integer_value(json_object_get(j, "events")), 2);
	json_decref(j);
	notify_free(n);
	free((char *)h.url);
	sink_stop(&s);
}

static void test_dead_port(void **state)
{
	struct notify *n;
	struct notify_hook h = { 0 };
	struct hook_want hw;
	struct timeval tv = { 0, 10000 };
	int ticks = 0, at_emit;
	struct event *ticker = event_new(base, -1, EV_PERSIST, on_tick, &ticks);

	event_add(ticker, &tv);
	h.url = url(tu_free_port(), "/nobody");
	h.max_retries = 2;
	h.retry_base_ms = 30;
	n = notify_new(base, &h, 1);
	hw = (struct hook_want){ n, 0, "failed", 2 };
	at_emit = ticks;
	notify_emit(n, "backend.down", NULL);
	notify_emit(n, "backend.up", NULL);
	assert_true(run_until(hook_stat_is, &hw));
	assert_int_equal(hook_stat(n, 0, "retries"), 4);   /* 2 events, 2 retries each */
	assert_int_equal(hook_stat(n, 0, "sent"), 0);
	/* two rounds of 30 + 60 ms backoff at least: the ticker kept firing */
	assert_true(ticks - at_emit >= 10);
	notify_free(n);
	event_free(ticker);
	free((char *)h.url);
}

static void test_hung_server(void **state)
{
	struct sink s;
	struct notify *n;
	struct notify_hook h = { 0 };
	struct hook_want hw;
	struct timeval tv = { 0, 10000 };
	int ticks = 0;
	struct event *ticker = event_new(base, -1, EV_PERSIST, on_tick, &ticks);
	json_t *j;

	sink_start(&s);
	s.hang = 1;
	h.url = url(s.port, "/hang");
	h.timeout_ms = 200;
	h.max_retries = NOTIFY_NO_RETRY;
	n = notify_new(base, &h, 1);
	event_add(ticker, &tv);
	hw = (struct hook_want){ n, 0, "failed", 1 };
	notify_emit(n, "vram.pressure", NULL);
	assert_true(run_until(hook_stat_is, &hw));
	assert_int_equal(s.n_reqs, 1);
	assert_true(ticks >= 10);
	j = notify_stats_json(n);
	assert_non_null(strstr(json_string_value(json_object_get(json_array_get(
	    json_object_get(j, "hooks"), 0), "last_error")), "timed out"));
	json_decref(j);
	notify_free(n);
	event_free(ticker);
	free((char *)h.url);
	sink_stop(&s);
}

static void test_queue_overflow(void **state)
{
	struct sink s;
	struct notify *n;
	struct notify_hook h = { 0 };
	struct want w = { &s, 1 };
	static const long long want_ids[] = { 1, 7, 8, 9, 10 };
	json_t *j;

	sink_start(&s);
	s.hang = 1;
	h.url = url(s.port, "/slow");
	h.max_queue = 4;
	h.timeout_ms = 10000;
	n = notify_new(base, &h, 1);
	for (int i = 0; i < 10; i++)
		notify_emit(n, "vram.pressure", NULL);
	/* 1 in flight, 2..6 dropped, 7..10 waiting */
	assert_int_equal(hook_stat(n, 0, "dropped"), 5);
	assert_int_equal(hook_stat(n, 0, "queued"), 4);
	assert_int_equal(hook_stat(n, 0, "in_flight"), 1);
	assert_true(run_until(sink_reqs, &w));
	sink_release(&s);
	w.n = 5;
	assert_true(run_until(sink_got, &w));
	for (int i = 0; i < 5; i++) {
		j = json_loads(s.body[i], 0, NULL);
		assert_int_equal(json_integer_value(json_object_get(j, "id")), want_ids[i]);
		json_decref(j);
	}
	wait_stat(n, 0, "sent", 5);
	assert_int_equal(hook_stat(n, 0, "sent"), 5);
	assert_int_equal(hook_stat(n, 0, "queued"), 0);
	notify_free(n);
	free((char *)h.url);
	sink_stop(&s);
}

/* notify_free with one transfer in flight, one retry pending, events queued. */
static void test_free_busy(void **state)
{
	struct sink s;
	struct notify *n;
	struct notify_hook h[2] = { { 0 }, { 0 } };
	struct want w = { &s, 1 };
	struct hook_want hw;
	json_t *j;

	sink_start(&s);
	s.hang = 1;
	h[0].url = url(s.port, "/hang");
	h[1].url = url(tu_free_port(), "/dead");
	h[1].retry_base_ms = 60000;
	n = notify_new(base, h, 2);
	notify_emit(n, "model.loaded", NULL);
	notify_emit(n, "model.loaded", NULL);
	notify_emit(n, "bad type", NULL);     /* ignored */
	notify_emit(n, "Model.Loaded", NULL); /* ignored */
	notify_emit(n, NULL, NULL);           /* ignored */
	hw = (struct hook_want){ n, 1, "retries", 1 };
	assert_true(run_until(sink_reqs, &w));
	assert_true(run_until(hook_stat_is, &hw));
	j = notify_stats_json(n);
	assert_int_equal(json_integer_value(json_object_get(j, "events")), 2);
	json_decref(j);
	notify_free(n);
	run_for(50);
	free((char *)h[0].url);
	free((char *)h[1].url);
	sink_stop(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_webhook_delivered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_filters, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retry_500, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retry_429, setup, teardown),
		cmocka_unit_test_setup_teardown(test_400_no_retry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dead_port, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hung_server, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_overflow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_busy, setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
