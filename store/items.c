#include "items.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "common/err.h"

/* Item c's row [item_raw, item, title, year, genres, dense] into genre[] (at most
 * cap) and dense[2]; *ng the genres.  0, or -1 when the row is malformed. */
static int decode_item(const void *v, size_t len, uint32_t n_genres, uint32_t *genre, uint32_t cap,
		       uint32_t *ng, float *dense)
{
	msgpack_unpacked u;
	size_t off = 0;
	int bad = 1;

	*ng = 0;
	msgpack_unpacked_init(&u);
	if (!msgpack_well_sized(v, len) &&
	    msgpack_unpack_next(&u, v, len, &off) == MSGPACK_UNPACK_SUCCESS &&
	    u.data.type == MSGPACK_OBJECT_ARRAY && u.data.via.array.size == 6) {
		const msgpack_object *g = &u.data.via.array.ptr[4], *d = &u.data.via.array.ptr[5];
		bad = g->type != MSGPACK_OBJECT_ARRAY || g->via.array.size > cap ||
		      d->type != MSGPACK_OBJECT_ARRAY || d->via.array.size != 2;
		for (uint32_t k = 0; !bad && k < g->via.array.size; k++) {
			const msgpack_object *x = &g->via.array.ptr[k];
			bad = x->type != MSGPACK_OBJECT_POSITIVE_INTEGER || x->via.u64 == 0 ||
			      x->via.u64 >= n_genres;
			if (!bad)
				genre[(*ng)++] = (uint32_t)x->via.u64;
		}
		for (uint32_t k = 0; !bad && k < 2; k++) {
			const msgpack_object *x = &d->via.array.ptr[k];
			bad = x->type != MSGPACK_OBJECT_FLOAT32 &&
			      x->type != MSGPACK_OBJECT_FLOAT64;
			if (!bad)
				dense[k] = (float)x->via.f64;
		}
	}
	msgpack_unpacked_destroy(&u);
	return bad ? -1 : 0;
}

int store_items_load(struct store *s, uint32_t n_items, uint32_t n_genres, struct store_items *out)
{
	struct store_reader *r = NULL;
	size_t cap = (size_t)n_items * REC_MAX_GENRES;
	uint32_t used = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	if (n_items == 0)
		return hr_error(HR_ESTORE, "store '%s': no items", store_path(s));
	out->mem = calloc(1, (n_items + 1) * sizeof(uint32_t) + cap * sizeof(uint32_t) +
				     (size_t)n_items * 2 * sizeof(float));
	if (!out->mem)
		return hr_error(HR_ENOMEM, "out of memory for the items table of '%s'",
				store_path(s));
	out->n = n_items;
	out->dense = out->mem;
	out->genre_off = (uint32_t *)(out->dense + (size_t)n_items * 2);
	out->genre = out->genre_off + n_items + 1;
	rc = store_reader_begin(s, &r);
	for (uint32_t c = 1; !rc && c < n_items; c++) {
		const void *v;
		size_t len;
		uint32_t ng;
		out->genre_off[c] = used;
		rc = store_get_u64(r, STORE_ITEMS, c, &v, &len);
		if (rc)
			rc = hr_error(HR_ESTORE, "store '%s': item %u missing from the items table",
				      store_path(s), c);
		else if (decode_item(v, len, n_genres, out->genre + used, REC_MAX_GENRES, &ng,
				     out->dense + (size_t)c * 2))
			rc = hr_error(HR_ESTORE,
				      "store '%s': item %u is malformed in the items table",
				      store_path(s), c);
		else
			used += ng;
	}
	out->genre_off[n_items] = used;
	store_reader_end(r);
	if (rc)
		store_items_release(out);
	return rc;
}

void store_items_release(struct store_items *it)
{
	free(it->mem);
	memset(it, 0, sizeof(*it));
}
