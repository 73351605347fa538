/*
 * api_ui_assets: the dashboard's files, compiled into mloffloadd from ui/ by
 * cmake/embed.cmake (the generated ui_assets.c in the build folder).
 */
#ifndef MLO_API_UI_ASSETS_H
#define MLO_API_UI_ASSETS_H

#include <stddef.h>

struct ui_asset {
	const char *name;            /* "index.html", "app.js", ... */
	const char *type;            /* Content-Type */
	const unsigned char *data;   /* static, NUL-terminated (not counted in len) */
	size_t len;
};

/* Ends with an entry whose name is NULL. */
extern const struct ui_asset ui_assets[];

#endif
