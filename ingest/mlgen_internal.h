/*
 * mlgen_internal.h - what the parts of the mlgen generator share.
 *
 * Internal to ingest/mlgen_*.c; the public API and the planted model are
 * described in mlgen.h.  The generator is split in three:
 *
 *   mlgen_model.c   fills a struct gen: movies, users, the planted model,
 *                   ratings per user, timelines, scores, cutpoints, ratings
 *   mlgen_write.c   the three on-disk formats and truth.dat, option checks,
 *                   mlgen_write()
 *   mlgen_oracle.c  mlgen_oracle(): reads a written data set back and
 *                   scores it with truth.dat
 *
 * Tables used by one part only stay static in that part.
 */
#ifndef HR_MLGEN_INTERNAL_H
#define HR_MLGEN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "mlgen.h"

#define NG 18   /* genres */
#define DIM 8   /* latent factor size */
#define NAGE 7  /* ml-1m age buckets */
#define NOCC 21 /* ml-1m occupations 0..20 */
#define MIN_PER_USER 20

/*
 * rng streams, one per pass; per-user streams add the user index.  Kept in
 * one list so no two passes (model or write) ever share a stream.
 */
enum {
	ST_MOVIES = 1,
	ST_USERS,
	ST_MODEL,
	ST_COUNTS,
	ST_COVER,
	ST_RATINGS,
	ST_TIMELINE = 1 << 20,
	ST_SHUFFLE = 2 << 20,
};
#define USER_STREAM(base, u) (((uint64_t)(base) << 32) | (uint64_t)(u))

/* The generated data set, filled by mlgen_generate(). */
struct gen {
	uint32_t n_users, n_listed, n_rated;
	uint64_t n_ratings;

	/* listed movies (n_listed), in id order */
	uint32_t *movie_id;
	uint16_t *year;
	uint32_t *genres; /* bit g: genre_names[g] (mlgen_write.c) */
	uint32_t *title;  /* offset into titles (latin-1, NUL-terminated) */
	uint8_t *rel_day; /* ml-100k release date: day 1..28 */
	uint8_t *rel_mon; /* month 0..11 */
	char *titles;
	size_t titles_len, titles_cap;

	/* rated movies (n_rated), in id order */
	uint32_t *rated; /* index into the listed movies */
	float *q;        /* (n_rated, DIM) */
	double *bi, *tau, *pop;
	uint32_t (*gpos)[3]; /* leaf of the movie in each of its genre trees */
	uint32_t *count;     /* ratings per movie */

	/* users (n_users); user u has id u + 1 */
	uint8_t *sex;       /* 0 'M', 1 'F' */
	uint8_t *age;       /* bucket index 0..6 */
	uint8_t *age_years; /* exact age for ml-100k */
	uint8_t *occ;       /* 0..20 */
	uint32_t *zip;      /* 5 digits */
	int16_t *zip4;      /* "-NNNN" suffix, or -1 */
	float *p;           /* (n_users, DIM) */
	double *bu;
	uint32_t *n_of;  /* ratings of user u */
	uint64_t *first; /* (n_users + 1): user u owns events first[u]..first[u+1]-1 */

	/* planted model */
	double G[NG], A_sex[2][NG], A_age[NAGE][NG], A_occ[NOCC][NG];
	double cut[4];

	/* events (n_ratings): contiguous per user, in time order */
	uint32_t *ev_item; /* rated-movie index */
	uint32_t *ev_ts;
	uint8_t *ev_interest;
	uint8_t *ev_rating;
	double *ev_s;
};

/* The ratings file of each format, indexed by enum mlgen_format. */
extern const char *const mlgen_ratings_names[3];

/*
 * Generates the data set of o (already checked by mlgen_check()) into g,
 * which needs no initialisation.  Returns 0 or HR_ENOMEM.  On success and
 * on failure alike, release g with mlgen_gen_release().
 */
int mlgen_generate(const struct mlgen_opts *o, struct gen *g);

/* Frees everything g owns and zeroes it. */
void mlgen_gen_release(struct gen *g);

/* p[0..4] = P(r = 1..5 | s) under the cutpoints cut. */
void mlgen_rating_probs(const double cut[4], double s, double p[5]);

#endif
