/* catalog.c - item raw ids, titles and popularity (catalog.h). */
#include "catalog.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

/* The raw id and title of an items row [item_raw, item, title, ...]; -1 when malformed. */
static int decode_title(const void *v, size_t len, uint32_t code, uint32_t *raw, const char **title,
			uint32_t *tlen, msgpack_unpacked *u)
{
	size_t off = 0;
	const msgpack_object *a;

	if (msgpack_unpack_next(u, v, len, &off) != MSGPACK_UNPACK_SUCCESS ||
	    u->data.type != MSGPACK_OBJECT_ARRAY || u->data.via.array.size < 3)
		return -1;
	a = u->data.via.array.ptr;
	if (a[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER || a[0].via.u64 > UINT32_MAX ||
	    a[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER || a[1].via.u64 != code ||
	    a[2].type != MSGPACK_OBJECT_STR || memchr(a[2].via.str.ptr, 0, a[2].via.str.size))
		return -1;
	*raw = (uint32_t)a[0].via.u64;
	*title = a[2].via.str.ptr;
	*tlen = a[2].via.str.size;
	return 0;
}

int catalog_load(struct catalog *c, struct store *s, uint32_t n_items)
{
	struct store_reader *r = NULL;
	size_t cap = 4096, used = 0;
	int rc;

	memset(c, 0, sizeof(*c));
	if (n_items < 2)
		return hr_error(HR_ESTORE, "store '%s': no items", store_path(s));
	c->n = n_items;
	c->raw = calloc(n_items, sizeof(uint32_t));
	c->title_off = calloc((size_t)n_items + 1, sizeof(uint32_t));
	c->text = malloc(cap);
	if (!c->raw || !c->title_off || !c->text) {
		catalog_release(c);
		return hr_error(HR_ENOMEM, "out of memory for the items of '%s'", store_path(s));
	}
	c->text[used++] = 0; /* code 0: "" */
	rc = store_reader_begin(s, &r);
	for (uint32_t code = 1; !rc && code < n_items; code++) {
		msgpack_unpacked u;
		const void *v;
		const char *title;
		size_t len;
		uint32_t tlen;
		c->title_off[code] = (uint32_t)used;
		if (store_get_u64(r, STORE_ITEMS, code, &v, &len)) {
			rc = hr_error(HR_ESTORE, "store '%s': item %u missing from the items table",
				      store_path(s), code);
			break;
		}
		msgpack_unpacked_init(&u);
		if (decode_title(v, len, code, &c->raw[code], &title, &tlen, &u)) {
			rc = hr_error(HR_ESTORE,
				      "store '%s': item %u is malformed in the items table",
				      store_path(s), code);
		} else {
			if (used + tlen + 1 > cap) {
				char *t;
				while (used + tlen + 1 > cap)
					cap *= 2;
				t = cap < UINT32_MAX ? realloc(c->text, cap) : NULL;
				if (!t)
					rc = hr_error(HR_ENOMEM,
						      "out of memory for the titles of '%s'",
						      store_path(s));
				else
					c->text = t;
			}
			if (!rc) {
				memcpy(c->text + used, title, tlen);
				used += tlen;
				c->text[used++] = 0;
			}
		}
		msgpack_unpacked_destroy(&u);
	}
	c->title_off[n_items] = (uint32_t)used;
	store_reader_end(r);
	if (rc)
		catalog_release(c);
	return rc;
}

int catalog_set_popularity(struct catalog *c, const float *counts)
{
	free(c->popularity);
	c->popularity = malloc(c->n * sizeof(float));
	if (!c->popularity)
		return hr_error(HR_ENOMEM, "out of memory for the popular list");
	memcpy(c->popularity, counts, c->n * sizeof(float));
	return 0;
}

void catalog_release(struct catalog *c)
{
	free(c->raw);
	free(c->title_off);
	free(c->text);
	free(c->popularity);
	memset(c, 0, sizeof(*c));
}

const char *catalog_title(const struct catalog *c, uint32_t code)
{
	return c->text + c->title_off[code];
}
