/*
 * readers.h - MovieLens readers: format detection and parsing into a
 * struct dataset (dataset.h).
 *
 * Three format families are read:
 *
 *   ml-1m   (DS_FMT_ML1M)   users.dat, movies.dat, ratings.dat; fields
 *                           separated by "::"; titles latin-1.
 *   ml-100k (DS_FMT_ML100K) u.user, u.item ('|'), u.data (tabs); titles
 *                           latin-1; ages are exact and mapped to the ml-1m
 *                           age groups.
 *   csv     (DS_FMT_CSV)    movies.csv, ratings.csv with a header line and
 *                           RFC-4180 quoting (ml-latest, ml-latest-small,
 *                           ml-20m, ml-25m); UTF-8; no users file, so users
 *                           are created from ratings as they first appear.
 *
 * ds_read_dir() loads a whole directory; the *_parse_* functions parse one
 * file already in memory and are what the tests and fuzzers call.  Users are
 * read first, then items, then ratings, so every rating is checked against
 * them.
 *
 * Rules shared by every file:
 *   - lines end in "\n" or "\r\n"; the last line may lack its newline;
 *   - blank lines (empty, or a lone "\r") are skipped silently anywhere and
 *     still count for line numbers;
 *   - buffers are exactly len bytes, need not be NUL-terminated, may contain
 *     NUL bytes, and are never read outside [buf, buf + len); buf may be
 *     NULL when len is 0 (an empty mapped file);
 *   - numbers are unsigned decimal ASCII digits only: no sign, no blanks,
 *     no '+', at most UINT32_MAX (ids and timestamps are uint32);
 *   - a malformed line is a "line error" with the message
 *     "FILE:LINE: what is wrong" (FILE is the fname argument, the file's
 *     base name; LINE counts from 1).  Out-of-range values, duplicate user or
 *     item ids, and ratings naming an unknown user or item are line errors
 *     too.  See struct line_errors (read_util.h) for skipping them.
 *
 * Errors (every function): 0 on success or a negative HR_E* code with a
 * message in hr_errmsg():
 *   HR_EPARSE   a line error beyond the budget in le;
 *   HR_EFORMAT  a file with no records (empty, blank, or every line skipped),
 *               or a CSV file whose header is not the expected one;
 *   HR_ENOMEM   allocation failed.
 * On failure the dataset holds whatever was added before the failure; the
 * caller still owns it and releases it with dataset_release().
 *
 * Ownership: the parsers copy what they keep (titles into ds->strpool); buf
 * is only read during the call.  Thread-safety: one dataset per thread; the
 * functions keep no global state except log output and the calling
 * thread's error message.
 */
#ifndef HR_READERS_H
#define HR_READERS_H

#include <stddef.h>

#include "ingest/dataset.h"
#include "ingest/read_util.h" /* struct line_errors */

struct read_opts {
	/* Malformed lines skipped (with a warning for the first ten) before the
	 * next one is an error; counted over the whole load.  0: strict. */
	size_t max_errors;
};

/*
 * Finds which format the MovieLens download in dir is, by the ratings file
 * it holds: ratings.dat -> DS_FMT_ML1M, u.data -> DS_FMT_ML100K,
 * ratings.csv -> DS_FMT_CSV (checked in that order; the first found wins).
 * Companion files are not checked here.
 *
 * Errors: HR_ENOENT "cannot open 'DIR': No such file or directory";
 * HR_EINVAL "'DIR' is not a directory"; HR_EIO when dir cannot be examined;
 * HR_EFORMAT "'DIR' holds no MovieLens ratings file (looked for
 * ratings.dat, u.data, ratings.csv)".  *fmt is DS_FMT_UNKNOWN on failure.
 */
int ds_detect_format(const char *dir, enum ds_format *fmt);

/*
 * ds_detect_format(), then checks that every file of that format exists
 * (HR_ENOENT "missing 'DIR/users.dat' (ml-1m needs ratings.dat, ...)").
 * Reads no file: cheap enough to call before claiming an output, so that a
 * missing or unrecognised input is reported before anything is written.
 *
 * Errors: those of ds_detect_format(), HR_ENOENT for a missing companion
 * file.  *fmt is DS_FMT_UNKNOWN on failure.
 */
int ds_check_dir(const char *dir, enum ds_format *fmt);

/*
 * Reads the MovieLens download in dir into ds, which must come fresh from
 * dataset_init().  Checks it with ds_check_dir(), then reads users, items
 * and ratings (each file memory-mapped), and sets
 * ds->format, ds->has_demographics (1 for ml-1m and ml-100k) and
 * ds->n_skipped (lines skipped over the whole load).  opts may be NULL
 * (strict).  Files other than those of the format (tags, links, genome-*,
 * README) are ignored.
 *
 * Errors: those of ds_detect_format(), HR_ENOENT for a missing file, HR_EIO
 * when a file cannot be opened or mapped, and those of the parsers below.
 */
int ds_read_dir(struct dataset *ds, const char *dir, const struct read_opts *opts);

/*
 * The parsers.  Each parses the whole of one file held in [buf, buf + len)
 * and appends what it reads to ds; fname is the base name used in
 * messages.  le is the malformed-line budget, shared between calls of one
 * load (NULL: every malformed line is fatal); lines skipped by this call are
 * added to ds->n_skipped.  They do not set ds->format or
 * ds->has_demographics.  Ratings parsers reserve the ratings array from
 * len up front and resolve ids through ds->user_ids / ds->item_ids, so call
 * them after the users and items parsers.
 */

/*
 * ml-1m users.dat: "UserID::Gender::Age::Occupation::Zip-code".  Gender M
 * or F; age one of 1, 18, 25, 35, 45, 50, 56; occupation 0..20, stored as
 * its decimal string ("07" is stored as "7"); zip printable ASCII without
 * blanks, 1..DS_ZIP_MAX-1 bytes.  HR_EFORMAT "'users.dat' holds no users".
 */
int ml1m_parse_users(struct dataset *ds, const char *buf, size_t len, const char *fname,
		     struct line_errors *le);

/*
 * ml-1m movies.dat: "MovieID::Title::Genres", split at the first and the
 * last "::" (so a title may contain ':' or even "::").  The title is
 * converted from latin-1 to UTF-8; year comes from a trailing "(YYYY)" (0
 * if none).  Genres are '|'-joined names, interned with dataset_genre();
 * "(no genres listed)" means none; an empty field or name is a line error.
 * HR_EFORMAT "'movies.dat' holds no movies".
 */
int ml1m_parse_movies(struct dataset *ds, const char *buf, size_t len, const char *fname,
		      struct line_errors *le);

/*
 * ml-1m ratings.dat: "UserID::MovieID::Rating::Timestamp", rating an
 * integer 1..5 (stored as stars2 = 2..10), timestamp uint32 seconds.
 * Users and movies must be known ("unknown user 9999 (not in users.dat)").
 * HR_EFORMAT "'ratings.dat' holds no ratings".
 */
int ml1m_parse_ratings(struct dataset *ds, const char *buf, size_t len, const char *fname,
		       struct line_errors *le);

/*
 * ml-100k u.user: "user|age|gender|occupation|zip".  Age an exact number
 * 1..120, stored as its ml-1m group (<18 -> 1, 18-24 -> 18, 25-34 -> 25,
 * 35-44 -> 35, 45-49 -> 45, 50-55 -> 50, >= 56 -> 56); gender M or F;
 * occupation a name (printable ASCII, 1..DS_OCC_MAX-1 bytes) stored as
 * written; zip as in ml-1m (may be alphanumeric, "T8H1N").
 * HR_EFORMAT "'u.user' holds no users".
 */
int ml100k_parse_users(struct dataset *ds, const char *buf, size_t len, const char *fname,
		       struct line_errors *le);

/*
 * ml-100k u.item: "id|title|release date|video release date|IMDb URL|"
 * followed by 19 genre flags, each 0 or 1 (24 fields).  Flag 0 is
 * "unknown" and sets no genre; flags 1..18 are Action, Adventure,
 * Animation, Children's, Comedy, Crime, Documentary, Drama, Fantasy,
 * Film-Noir, Horror, Musical, Mystery, Romance, Sci-Fi, Thriller, War,
 * Western (interned as first set).  Title latin-1 -> UTF-8; year from the
 * title's trailing "(YYYY)", else from the release date, which is empty or
 * "dd-Mon-yyyy".  The video release date and URL are not checked.
 * HR_EFORMAT "'u.item' holds no movies".
 */
int ml100k_parse_items(struct dataset *ds, const char *buf, size_t len, const char *fname,
		       struct line_errors *le);

/*
 * ml-100k u.data: "user\titem\trating\ttimestamp", rating 1..5; users and
 * items must be known.  HR_EFORMAT "'u.data' holds no ratings".
 */
int ml100k_parse_ratings(struct dataset *ds, const char *buf, size_t len, const char *fname,
			 struct line_errors *le);

/*
 * movies.csv: header "movieId,title,genres", then RFC-4180 lines (a title
 * with a comma is quoted, "" inside quotes is one '"'; quoted fields may not
 * span lines).  A UTF-8 byte-order mark before the header is ignored.
 * Titles must be valid UTF-8 and are copied as they are; year and genres
 * as in ml-1m.  Blank lines before the header are skipped like any
 * other.  HR_EFORMAT "movies.csv:1: expected header
 * 'movieId,title,genres', found '...'" or "'movies.csv' holds no movies".
 */
int csv_parse_movies(struct dataset *ds, const char *buf, size_t len, const char *fname,
		     struct line_errors *le);

/*
 * ratings.csv: header "userId,movieId,rating,timestamp", then lines whose
 * rating is a decimal multiple of 0.5 in 0.5..5.0 ("4", "4.0", "3.5";
 * stored as stars2 = 1..10).  A user is created (no demographics) the first
 * time its id appears; movies must be known ("(not in movies.csv)").
 * HR_EFORMAT for a wrong header or "'ratings.csv' holds no ratings".
 */
int csv_parse_ratings(struct dataset *ds, const char *buf, size_t len, const char *fname,
		      struct line_errors *le);

#endif
