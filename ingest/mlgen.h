/*
 * mlgen.h - a synthetic MovieLens generator with a known ("planted") model.
 *
 * mlgen_write() writes a data set shaped like MovieLens-1M (by default the
 * same counts: 6040 users, 3706 rated of 3883 listed movies, 1,000,209
 * ratings over Apr 2000 - Feb 2003) in one of three on-disk formats, plus
 * truth.dat, the exact rating distribution every rating was drawn from.
 * mlgen_oracle() scores the written ratings with those probabilities, which
 * gives the best AUC any model can reach on the data (about 0.87 for the
 * default label rule "rating >= 4 vs <= 2").
 *
 * The planted model is an ordinal logit.  For user u, movie i, time t:
 *
 *   s = b_u + b_i + <p_u, q_i>                  biases, 8-dim latent factors
 *     + mean over i's genres g of G[g]          genre effect
 *       + A_sex[sex_u][g] + A_age[age_u][g] + A_occ[occ_u][g]
 *     + beta * [interest_u(t) is a genre of i]  recent taste (history),
 *                                               beta = --interest (0.4)
 *     + tau_i * (x(t) - 0.3) + gamma * x(t)     item and global time drift
 *   P(r <= k) = sigmoid(c_k - s), k = 1..4
 *
 * where x(t) = sqrt of the fraction of the 3-year window elapsed, and
 * interest_u is a sticky Markov chain over genres along u's timeline; it
 * also biases which movie u picks next, so the genres of u's recent, well
 * rated movies predict the next rating.  The cutpoints c_k are solved so
 * the expected rating shares match ml-1m (5.6/10.8/26.1/34.9/22.6 %).
 *
 * Files (every format; same users, movies, ratings and order for one seed):
 *   ml-1m    ratings.dat users.dat movies.dat         "::"-separated, latin-1
 *   ml-100k  u.data u.user u.item u.genre u.occupation  tab / '|', latin-1
 *   csv      ratings.csv movies.csv                  ml-latest style, UTF-8
 *   all      truth.dat  "UserID::MovieID::Timestamp::p1::p2::p3::p4::p5",
 *            one line per ratings line, in the same order
 * Ratings are grouped by user in id order and shuffled within a user, as in
 * the real ml-1m file.  Output is byte-identical for identical options.
 *
 * Thread-safety: the functions keep no global state; concurrent calls on
 * different directories are safe.
 */
#ifndef HR_MLGEN_H
#define HR_MLGEN_H

#include <stddef.h>
#include <stdint.h>

enum mlgen_format {
	MLGEN_ML1M = 0, /* ratings.dat users.dat movies.dat */
	MLGEN_ML100K,   /* u.data u.user u.item (+ u.genre u.occupation) */
	MLGEN_CSV,      /* ratings.csv movies.csv */
};

struct mlgen_opts {
	uint32_t users;   /* N >= 1; user ids 1..N */
	uint32_t items;   /* M: movies that get rated; about M*3883/3706 listed */
	uint64_t ratings; /* K: 20*N <= K <= N*M, K >= M */
	uint64_t seed;
	double interest; /* beta: the logit boost of the current interest's genre,
			    0 <= beta <= MLGEN_MAX_INTEREST (default 0.4) */
	enum mlgen_format format;
	int force; /* overwrite a directory that already holds ratings */
};

/* The interest boost: the default is weak (on the default data, knowing the
 * interest is worth ~0.003 of the oracle's AUC); a larger one makes the
 * recent history matter (the sequence models' tests). */
#define MLGEN_INTEREST_DEFAULT 0.4
#define MLGEN_MAX_INTEREST 5.0

/* Fills o with the ml-1m shape, seed 1, interest 0.4, format ml-1m, force off. */
void mlgen_defaults(struct mlgen_opts *o);

/* "ml-1m", "ml-100k" or "csv". */
const char *mlgen_format_name(enum mlgen_format f);

/*
 * Parses a format name as accepted by mlgen_format_name() into *f.
 * Returns 0, or HR_EINVAL with a message listing the valid names.
 */
int mlgen_parse_format(const char *name, enum mlgen_format *f);

/*
 * Checks o without generating anything.  Returns 0, or HR_EINVAL with a
 * message naming the offending option (--users, --items, --ratings,
 * --interest).
 * Limits: N <= 10,000,000; M <= 1,000,000; K <= 200,000,000.
 */
int mlgen_check(const struct mlgen_opts *o);

/*
 * Generates the data set described by o and writes it into dir, creating
 * dir (one level) if missing.  Each file is written as "name.tmp" and
 * renamed into place; the ratings file is renamed last, so an interrupted
 * run never leaves a ratings file without its truth.dat.  With o->force,
 * files an earlier run wrote in any format are replaced or removed.
 *
 * Memory: about 20 bytes per rating plus ~100 bytes per user and movie,
 * all freed before returning.
 *
 * Returns 0, or
 *   HR_EINVAL  o fails mlgen_check()
 *   HR_EEXIST  dir already holds ratings.dat, u.data or ratings.csv and
 *              o->force is 0
 *   HR_EIO     dir cannot be created, or a write, close or rename failed
 *              (temporary files are removed)
 *   HR_ENOMEM  allocation failed
 */
int mlgen_write(const struct mlgen_opts *o, const char *dir);

/*
 * Oracle AUC of dir: reads the ratings file of whichever format dir holds
 * (ratings.dat, then u.data, then ratings.csv; csv ratings like "4.0") and
 * truth.dat, labels rating >= pos_min as 1 and rating <= neg_max as 0
 * (ratings in between are dropped), scores each kept line with
 * P(r >= pos_min) / (P(r >= pos_min) + P(r <= neg_max)) from truth.dat, and
 * computes metric_auc() over the kept lines.
 *
 *   pos_min, neg_max  1 <= neg_max < pos_min <= 5
 *   auc               receives the AUC
 *   rows              receives the number of kept lines
 *   pos_rate          receives the share of kept lines labelled 1
 *
 * Returns 0, or
 *   HR_EINVAL  bad pos_min/neg_max, or the kept lines hold one class only
 *   HR_ENOENT  no ratings file or no truth.dat in dir
 *   HR_EPARSE  a malformed line (message gives file:line)
 *   HR_EFORMAT the two files disagree (line counts, user, movie or time)
 *   HR_EIO, HR_ENOMEM
 * Outputs are untouched on failure.
 */
int mlgen_oracle(const char *dir, int pos_min, int neg_max, double *auc, size_t *rows,
		 double *pos_rate);

#endif
