#include "dataset.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

int dataset_init(struct dataset *ds)
{
	int rc;

	memset(ds, 0, sizeof(*ds));
	rc = idmap_init(&ds->user_ids, 1024);
	if (!rc)
		rc = idmap_init(&ds->item_ids, 1024);
	if (rc)
		dataset_release(ds);
	return rc;
}

void dataset_release(struct dataset *ds)
{
	free(ds->users);
	free(ds->items);
	free(ds->ratings);
	free(ds->strpool);
	idmap_release(&ds->user_ids);
	idmap_release(&ds->item_ids);
	memset(ds, 0, sizeof(*ds));
}

const char *ds_format_name(enum ds_format f)
{
	switch (f) {
	case DS_FMT_ML1M: return "ml-1m";
	case DS_FMT_ML100K: return "ml-100k";
	case DS_FMT_CSV: return "csv";
	case DS_FMT_UNKNOWN: break;
	}
	return "unknown";
}

/* Makes room for one more element of size sz in *arr (capacity *cap). */
static int reserve(void **arr, size_t *cap, size_t len, size_t sz, size_t more)
{
	size_t ncap;
	void *p;

	if (len + more <= *cap)
		return 0;
	ncap = *cap ? *cap : 256;
	while (ncap < len + more)
		ncap *= 2;
	p = realloc(*arr, ncap * sz);
	if (!p)
		return hr_error(HR_ENOMEM, "out of memory growing an array to %zu elements", ncap);
	*arr = p;
	*cap = ncap;
	return 0;
}

int dataset_add_user(struct dataset *ds, const struct ds_user *u, uint32_t *index)
{
	int rc = reserve((void **)&ds->users, &ds->cap_users, ds->n_users, sizeof(*u), 1);

	if (rc)
		return rc;
	rc = idmap_put(&ds->user_ids, u->raw_id, (uint32_t)ds->n_users, index);
	if (rc == 1)
		ds->users[ds->n_users++] = *u;
	return rc;
}

int dataset_add_item(struct dataset *ds, uint32_t raw_id, const char *title, size_t title_len,
		     uint16_t year, uint32_t genres, uint32_t *index)
{
	int rc = reserve((void **)&ds->items, &ds->cap_items, ds->n_items, sizeof(struct ds_item),
			 1);

	if (rc)
		return rc;
	rc = reserve((void **)&ds->strpool, &ds->strpool_cap, ds->strpool_len, 1, title_len + 1);
	if (rc)
		return rc;
	rc = idmap_put(&ds->item_ids, raw_id, (uint32_t)ds->n_items, index);
	if (rc != 1)
		return rc;
	struct ds_item *it = &ds->items[ds->n_items++];
	it->raw_id = raw_id;
	it->title = (uint32_t)ds->strpool_len;
	it->year = year;
	it->genres = genres;
	if (title_len)
		memcpy(ds->strpool + ds->strpool_len, title, title_len);
	ds->strpool[ds->strpool_len + title_len] = '\0';
	ds->strpool_len += title_len + 1;
	return 1;
}

int dataset_reserve_ratings(struct dataset *ds, size_t more)
{
	size_t cap;
	void *p;

	if (ds->cap_ratings - ds->n_ratings >= more)
		return 0;
	if (more > SIZE_MAX / sizeof(struct ds_rating) - ds->n_ratings)
		return hr_error(HR_ENOMEM, "too many ratings to reserve (%zu)", more);
	cap = ds->n_ratings + more;
	p = realloc(ds->ratings, cap * sizeof(struct ds_rating));
	if (!p)
		return hr_error(HR_ENOMEM, "out of memory reserving %zu ratings", cap);
	ds->ratings = p;
	ds->cap_ratings = cap;
	return 0;
}

int dataset_add_rating(struct dataset *ds, const struct ds_rating *r)
{
	int rc = reserve((void **)&ds->ratings, &ds->cap_ratings, ds->n_ratings, sizeof(*r), 1);

	if (rc)
		return rc;
	ds->ratings[ds->n_ratings++] = *r;
	return 0;
}

int dataset_genre(struct dataset *ds, const char *name, size_t len)
{
	for (int g = 0; g < ds->n_genres; g++)
		if (strlen(ds->genre_names[g]) == len && !memcmp(ds->genre_names[g], name, len))
			return g;
	if (len >= DS_GENRE_NAME_MAX)
		return hr_error(HR_EFORMAT, "genre name too long: '%.*s'", (int)len, name);
	if (ds->n_genres == DS_MAX_GENRES)
		return hr_error(HR_EFORMAT, "more than %d distinct genres", DS_MAX_GENRES);
	memcpy(ds->genre_names[ds->n_genres], name, len);
	ds->genre_names[ds->n_genres][len] = '\0';
	return ds->n_genres++;
}
