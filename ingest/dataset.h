/*
 * dataset.h - a MovieLens download held in memory, as the readers produce it.
 *
 * Readers (readers.h) fill a struct dataset from any supported format; the
 * ingest stages (label, sort, split, encode, dense, sequences) read it.
 * Users and items are kept in the order the input lists them; ratings refer
 * to them by index, never by raw id.  Titles are UTF-8 (ml-1m and ml-100k
 * titles are latin-1 on disk and converted on read).
 *
 * Ownership: the dataset owns all its arrays; dataset_release() frees them.
 * Not thread-safe while being filled; read-only use from many threads is.
 */
#ifndef HR_DATASET_H
#define HR_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "common/idmap.h"

enum ds_format {
	DS_FMT_UNKNOWN = 0,
	DS_FMT_ML1M,   /* ratings.dat users.dat movies.dat, "::"-separated */
	DS_FMT_ML100K, /* u.data (tabs), u.user and u.item ('|') */
	DS_FMT_CSV,    /* ratings.csv movies.csv (ml-latest, ml-20m, ml-25m) */
};

#define DS_MAX_GENRES 32
#define DS_GENRE_NAME_MAX 32
#define DS_OCC_MAX 24
#define DS_ZIP_MAX 16

/* 1 when age is an ml-1m age group (1, 18, 25, 35, 45, 50, 56). */
static inline int ds_age_group(uint32_t age)
{
	return age == 1 || age == 18 || age == 25 || age == 35 || age == 45 || age == 50 ||
	       age == 56;
}

struct ds_user {
	uint32_t raw_id;
	char gender;                 /* 'M', 'F', or 0 when unknown */
	uint8_t age;                 /* ml-1m age bucket 1,18,25,35,45,50,56; 0 unknown */
	char occupation[DS_OCC_MAX]; /* ml-1m "0".."20", ml-100k a name; "" unknown */
	char zip[DS_ZIP_MAX];        /* as written; "" unknown */
};

struct ds_item {
	uint32_t raw_id;
	uint32_t title;  /* offset of a NUL-terminated UTF-8 string in strpool */
	uint16_t year;   /* from a trailing "(1995)" in the title; 0 unknown */
	uint32_t genres; /* bit g set when the item has genre_names[g] */
};

struct ds_rating {
	uint32_t user;   /* index into users */
	uint32_t item;   /* index into items */
	uint32_t ts;     /* unix seconds */
	uint16_t stars2; /* the rating times two: 1 star = 2, 4.5 stars = 9 */
	uint16_t pad;
};

struct dataset {
	enum ds_format format;
	int has_demographics; /* users carry gender/age/occupation/zip */

	struct ds_user *users;
	size_t n_users, cap_users;
	struct ds_item *items;
	size_t n_items, cap_items;
	struct ds_rating *ratings;
	size_t n_ratings, cap_ratings;

	char *strpool;
	size_t strpool_len, strpool_cap;

	char genre_names[DS_MAX_GENRES][DS_GENRE_NAME_MAX];
	int n_genres;

	struct idmap user_ids; /* raw user id -> index into users */
	struct idmap item_ids; /* raw item id -> index into items */

	size_t n_skipped; /* malformed lines skipped under --max-errors */
};

int dataset_init(struct dataset *ds);
void dataset_release(struct dataset *ds);

/* Short name of a format: "ml-1m", "ml-100k", "csv", "unknown". */
const char *ds_format_name(enum ds_format f);

/*
 * Appends a user.  *index receives its index.  Returns 1 if added, 0 if the
 * raw id existed already (nothing changed, *index is the existing one),
 * HR_ENOMEM on failure.
 */
int dataset_add_user(struct dataset *ds, const struct ds_user *u, uint32_t *index);

/* Like dataset_add_user, for items.  title is copied into strpool. */
int dataset_add_item(struct dataset *ds, uint32_t raw_id, const char *title, size_t title_len,
		     uint16_t year, uint32_t genres, uint32_t *index);

/*
 * Grows the ratings array so that `more` further ratings fit without another
 * reallocation (readers call it once with an estimate from the file size).
 * HR_ENOMEM on failure (the dataset is unchanged).
 */
int dataset_reserve_ratings(struct dataset *ds, size_t more);

/* Appends a rating (indices already resolved).  HR_ENOMEM on failure. */
int dataset_add_rating(struct dataset *ds, const struct ds_rating *r);

/*
 * Index of a genre name, interning it when new.  Returns the index (>= 0),
 * or HR_EFORMAT when more than DS_MAX_GENRES distinct genres were seen or the
 * name is longer than DS_GENRE_NAME_MAX - 1 bytes.
 */
int dataset_genre(struct dataset *ds, const char *name, size_t len);

/* The NUL-terminated title of item i. */
static inline const char *dataset_title(const struct dataset *ds, uint32_t i)
{
	return ds->strpool + ds->items[i].title;
}

#endif
