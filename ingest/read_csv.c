/*
 * read_csv.c - the CSV family (ml-latest, ml-latest-small, ml-20m, ml-25m):
 * movies.csv and ratings.csv, each with a header line.
 */
#include "readers.h"

#include <inttypes.h>

#include "common/err.h"

static const char movies_header[] = "movieId,title,genres";
static const char ratings_header[] = "userId,movieId,rating,timestamp";

/*
 * Checks the header line of [*buf, *buf + *len) against want and advances
 * past it; *line receives its line number (blank lines before it are
 * skipped like blank lines anywhere).  A UTF-8 byte-order mark at the start
 * is ignored.  Returns 1 when the buffer holds no non-blank line, 0 when the
 * header is right, HR_EFORMAT otherwise.
 */
static int check_header(const char **buf, size_t *len, size_t *line, const char *fname,
			const char *want)
{
	struct line_iter it;
	const char *s;
	size_t n = 0;

	if (*len >= 3 && !memcmp(*buf, "\xEF\xBB\xBF", 3)) {
		*buf += 3;
		*len -= 3;
	}
	line_iter_init(&it, *buf, *len);
	do {
		if (!line_next(&it, &s, &n))
			return 1;
	} while (n == 0);
	*line = it.lineno;
	if (n != strlen(want) || memcmp(s, want, n))
		return hr_error(HR_EFORMAT, "%s:%zu: expected header '%s', found '%s'", fname,
				it.lineno, want, rd_show(s, n).s);
	*len = (size_t)(it.end - it.p);
	*buf = *len ? it.p : NULL;
	return 0;
}

static int movie_line(struct rd_ctx *c, const char *s, size_t n)
{
	struct rd_field f[3];
	uint32_t id, genres;
	size_t bad;
	long k;
	int rc;

	if (rd_has_nul(s, n))
		return rd_line_error(c->le, c->fname, c->line, "line contains a NUL byte");
	if ((rc = rd_buf_reserve(&c->scratch, n)))
		return rc;
	k = rd_csv_split(s, n, c->scratch.p, f, 3, &bad);
	if (k == -1)
		return rd_line_error(c->le, c->fname, c->line,
				     "quoted field at column %zu has no closing quote", bad + 1);
	if (k == -2)
		return rd_line_error(c->le, c->fname, c->line,
				     "unexpected '%s' after a closing quote at column %zu",
				     rd_show(s + bad, 1).s, bad + 1);
	if (k != 3)
		return rd_line_error(c->le, c->fname, c->line,
				     "expected 3 fields separated by ',', found %ld%s", k,
				     k > 3 ? " (a title with a comma must be quoted)" : "");
	if ((rc = rd_u32(f[0].p, f[0].n, &id)))
		return rd_u32_error(c->le, c->fname, c->line, "movie id", f[0].p, f[0].n, rc);
	if (idmap_get(&c->ds->item_ids, id) != IDMAP_NONE)
		return rd_line_error(c->le, c->fname, c->line, "duplicate movie id %" PRIu32, id);
	if (!rd_utf8_valid(f[1].p, f[1].n))
		return rd_line_error(c->le, c->fname, c->line, "title '%s' is not valid UTF-8",
				     rd_show(f[1].p, f[1].n).s);
	rc = rd_genres(c->ds, f[2].p, f[2].n, &genres, c->le, c->fname, c->line);
	if (rc)
		return rc;
	rc = dataset_add_item(c->ds, id, f[1].p, f[1].n, rd_title_year(f[1].p, f[1].n), genres,
			      NULL);
	return rc < 0 ? rc : 0;
}

static int rating_line(struct rd_ctx *c, const char *s, size_t n)
{
	struct rd_field f[4];
	struct ds_rating r = {0};
	uint32_t uid, mid;
	size_t k = rd_split(s, n, ",", 1, f, 4);
	int rc;

	if (k != 4)
		return rd_line_error(c->le, c->fname, c->line,
				     "expected 4 fields separated by ',', found %zu", k);
	if ((rc = rd_u32(f[0].p, f[0].n, &uid)))
		return rd_u32_error(c->le, c->fname, c->line, "user id", f[0].p, f[0].n, rc);
	if ((rc = rd_u32(f[1].p, f[1].n, &mid)))
		return rd_u32_error(c->le, c->fname, c->line, "movie id", f[1].p, f[1].n, rc);
	switch (rd_half_stars(f[2].p, f[2].n, &r.stars2)) {
	case 0: break;
	case RD_NUM_RANGE:
		return rd_line_error(c->le, c->fname, c->line,
				     "rating '%s' out of range (0.5..5.0)",
				     rd_show(f[2].p, f[2].n).s);
	case RD_NUM_HALF:
		return rd_line_error(c->le, c->fname, c->line,
				     "rating '%s' is not a multiple of 0.5",
				     rd_show(f[2].p, f[2].n).s);
	default:
		return rd_line_error(c->le, c->fname, c->line, "rating '%s' is not a valid number",
				     rd_show(f[2].p, f[2].n).s);
	}
	if ((rc = rd_u32(f[3].p, f[3].n, &r.ts)))
		return rd_u32_error(c->le, c->fname, c->line, "timestamp", f[3].p, f[3].n, rc);
	if ((r.item = idmap_get(&c->ds->item_ids, mid)) == IDMAP_NONE)
		return rd_line_error(c->le, c->fname, c->line,
				     "unknown movie %" PRIu32 " (not in movies.csv)", mid);
	if ((r.user = idmap_get(&c->ds->user_ids, uid)) == IDMAP_NONE) {
		/* The CSV family has no users file: users appear with their ratings. */
		struct ds_user u = {0};
		u.raw_id = uid;
		rc = dataset_add_user(c->ds, &u, &r.user);
		if (rc < 0)
			return rc;
	}
	return dataset_add_rating(c->ds, &r);
}

int csv_parse_movies(struct dataset *ds, const char *buf, size_t len, const char *fname,
		     struct line_errors *le)
{
	size_t line = 0;
	int rc = check_header(&buf, &len, &line, fname, movies_header);

	/* rc 1 (nothing but blank lines) falls through to "holds no movies". */
	if (rc < 0)
		return rc;
	return rd_parse(ds, buf, len, fname, le, line, movie_line, &ds->n_items, "movies");
}

int csv_parse_ratings(struct dataset *ds, const char *buf, size_t len, const char *fname,
		      struct line_errors *le)
{
	size_t line = 0;
	int rc = check_header(&buf, &len, &line, fname, ratings_header);

	if (rc < 0)
		return rc;
	/* ratings.csv lines average ~25 bytes (ml-25m); len / 20 over-reserves. */
	rc = dataset_reserve_ratings(ds, len / 20 + 1);
	return rc ? rc :
		    rd_parse(ds, buf, len, fname, le, line, rating_line, &ds->n_ratings, "ratings");
}
