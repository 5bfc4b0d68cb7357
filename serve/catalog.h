/*
 * catalog.h - the items a recommendation names: each encoded item's raw id
 * and title from the store's items table (docs/FORMAT.md, `items`), and
 * its popularity (records of it in the train split), the fallback list's
 * score.
 *
 * Item codes 1 .. n - 1 are the catalogue (code 0 is padding / unknown:
 * never recommended).  Loaded once; read-only afterwards, so any number of
 * threads may read it.  Nothing points into the store.
 */
#ifndef HR_SERVE_CATALOG_H
#define HR_SERVE_CATALOG_H

#include <stdint.h>

#include "store/store.h"

struct catalog {
	uint32_t n;          /* item vocabulary size (code 0 included) */
	uint32_t *raw;       /* (n) raw item id; 0 for code 0 */
	uint32_t *title_off; /* (n + 1) title of code c: text[title_off[c] .. [c + 1]) */
	char *text;          /* titles, each NUL-terminated, UTF-8 */
	float *popularity;   /* (n) train records of each item (catalog_set_popularity) */
};

/*
 * Reads the raw id and title of every item 1 .. n_items - 1 of s.
 * HR_ESTORE naming the store and the item when a row is missing or is not
 * the documented [item_raw, item, title, ...] array; HR_ENOMEM.  On
 * failure *c owns nothing.
 */
int catalog_load(struct catalog *c, struct store *s, uint32_t n_items);

/* Sets the popularity: counts[code] for each code (n floats, copied).  HR_ENOMEM. */
int catalog_set_popularity(struct catalog *c, const float *counts);

void catalog_release(struct catalog *c);

/* The title of code (< n): "" when the table has none. */
const char *catalog_title(const struct catalog *c, uint32_t code);

#endif
