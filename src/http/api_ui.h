/*
 * api_ui: the routes a person's browser and terminal use beside the JSON API:
 *  - GET /ui/ and /ui/FILE: the dashboard, served from the binary (api_ui_assets.h);
 *    no key needed to fetch the page itself (it asks for the key and sends it with
 *    every API call), a strict Content-Security-Policy (nothing from elsewhere);
 *  - GET /logs/ID[?tail=BYTES&follow=1]: the end of STATE_DIR/llama-ID.log, the log
 *    of the llama-server child this daemon runs (or ran) for model ID, as text/plain;
 *    with follow=1 the answer stays open (chunked) and every new line is sent as it
 *    is written. Bounded: tail at most 1 MiB, at most API_UI_MAX_FOLLOW followers, a
 *    follower that lets more than 1 MiB pile up unsent is dropped.
 */
#ifndef MLO_API_UI_H
#define MLO_API_UI_H

struct api;
struct evhttp_request;

#define API_UI_MAX_FOLLOW 16

/* GET /ui/ (sub "") and /ui/FILE. */
void api_ui_static(struct api *a, struct evhttp_request *req, const char *sub);
/* GET /ui: redirects to /ui/. */
void api_ui_redirect(struct api *a, struct evhttp_request *req, const char *sub);
/* GET /logs/ID. */
void api_ui_logs(struct api *a, struct evhttp_request *req, const char *id);
/* Ends every log follower (daemon shutdown, before evhttp_free). */
void api_ui_free(void);

#endif
