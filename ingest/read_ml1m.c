/*
 * read_ml1m.c - ml-1m: users.dat, movies.dat, ratings.dat ("::"-separated).
 */
#include "readers.h"

#include <inttypes.h>
#include <stdio.h>

#include "common/err.h"

static int user_line(struct rd_ctx *c, const char *s, size_t n)
{
	struct rd_field f[5];
	struct ds_user u = {0};
	uint32_t age, occ;
	size_t k;
	int rc;

	if (rd_has_nul(s, n))
		return rd_line_error(c->le, c->fname, c->line, "line contains a NUL byte");
	k = rd_split(s, n, "::", 2, f, 5);
	if (k != 5)
		return rd_line_error(c->le, c->fname, c->line,
				     "expected 5 fields separated by '::', found %zu", k);
	if ((rc = rd_u32(f[0].p, f[0].n, &u.raw_id)))
		return rd_u32_error(c->le, c->fname, c->line, "user id", f[0].p, f[0].n, rc);
	if (idmap_get(&c->ds->user_ids, u.raw_id) != IDMAP_NONE)
		return rd_line_error(c->le, c->fname, c->line, "duplicate user id %" PRIu32,
				     u.raw_id);
	if (f[1].n != 1 || (f[1].p[0] != 'M' && f[1].p[0] != 'F'))
		return rd_line_error(c->le, c->fname, c->line, "gender '%s' is not M or F",
				     rd_show(f[1].p, f[1].n).s);
	u.gender = f[1].p[0];
	if ((rc = rd_u32(f[2].p, f[2].n, &age)))
		return rd_u32_error(c->le, c->fname, c->line, "age", f[2].p, f[2].n, rc);
	if (!ds_age_group(age))
		return rd_line_error(
			c->le, c->fname, c->line,
			"age '%s' is not an ml-1m age group (1, 18, 25, 35, 45, 50, 56)",
			rd_show(f[2].p, f[2].n).s);
	u.age = (uint8_t)age;
	if ((rc = rd_u32(f[3].p, f[3].n, &occ)))
		return rd_u32_error(c->le, c->fname, c->line, "occupation", f[3].p, f[3].n, rc);
	if (occ > 20)
		return rd_line_error(c->le, c->fname, c->line,
				     "occupation '%s' out of range (0..20)",
				     rd_show(f[3].p, f[3].n).s);
	snprintf(u.occupation, sizeof(u.occupation), "%" PRIu32, occ);
	if (f[4].n == 0)
		return rd_line_error(c->le, c->fname, c->line, "zip code is empty");
	if (f[4].n >= DS_ZIP_MAX)
		return rd_line_error(c->le, c->fname, c->line, "zip code '%s' longer than %d bytes",
				     rd_show(f[4].p, f[4].n).s, DS_ZIP_MAX - 1);
	if (!rd_printable(f[4].p, f[4].n) || memchr(f[4].p, ' ', f[4].n))
		return rd_line_error(c->le, c->fname, c->line,
				     "zip code '%s' is not printable ASCII without blanks",
				     rd_show(f[4].p, f[4].n).s);
	memcpy(u.zip, f[4].p, f[4].n);
	rc = dataset_add_user(c->ds, &u, NULL);
	return rc < 0 ? rc : 0;
}

/* Offsets of the first and the last "::" in s, or 0 when there are not two. */
static int outer_separators(const char *s, size_t n, size_t *first, size_t *last)
{
	size_t i, j;

	for (i = 0; i + 1 < n; i++)
		if (s[i] == ':' && s[i + 1] == ':')
			break;
	if (i + 1 >= n)
		return 0;
	for (j = n - 1; j > i + 2; j--)
		if (s[j - 1] == ':' && s[j] == ':')
			break;
	if (j <= i + 2)
		return 0;
	*first = i;
	*last = j - 1;
	return 1;
}

static int movie_line(struct rd_ctx *c, const char *s, size_t n)
{
	size_t a, b, tlen;
	uint32_t id, genres;
	int rc;

	if (rd_has_nul(s, n))
		return rd_line_error(c->le, c->fname, c->line, "line contains a NUL byte");
	if (!outer_separators(s, n, &a, &b)) {
		struct rd_field f[1];
		return rd_line_error(c->le, c->fname, c->line,
				     "expected 3 fields separated by '::', found %zu",
				     rd_split(s, n, "::", 2, f, 0));
	}
	if ((rc = rd_u32(s, a, &id)))
		return rd_u32_error(c->le, c->fname, c->line, "movie id", s, a, rc);
	if (idmap_get(&c->ds->item_ids, id) != IDMAP_NONE)
		return rd_line_error(c->le, c->fname, c->line, "duplicate movie id %" PRIu32, id);
	if ((rc = rd_buf_reserve(&c->scratch, 2 * (b - a - 2))))
		return rc;
	tlen = rd_latin1_to_utf8(c->scratch.p, s + a + 2, b - a - 2);
	rc = rd_genres(c->ds, s + b + 2, n - b - 2, &genres, c->le, c->fname, c->line);
	if (rc)
		return rc;
	rc = dataset_add_item(c->ds, id, c->scratch.p, tlen, rd_title_year(c->scratch.p, tlen),
			      genres, NULL);
	return rc < 0 ? rc : 0;
}

static int rating_line(struct rd_ctx *c, const char *s, size_t n)
{
	struct rd_field f[4];
	size_t k = rd_split(s, n, "::", 2, f, 4);

	if (k != 4)
		return rd_line_error(c->le, c->fname, c->line,
				     "expected 4 fields separated by '::', found %zu", k);
	return rd_star_rating(c, f, "users.dat", "movies.dat");
}

int ml1m_parse_users(struct dataset *ds, const char *buf, size_t len, const char *fname,
		     struct line_errors *le)
{
	return rd_parse(ds, buf, len, fname, le, 0, user_line, &ds->n_users, "users");
}

int ml1m_parse_movies(struct dataset *ds, const char *buf, size_t len, const char *fname,
		      struct line_errors *le)
{
	return rd_parse(ds, buf, len, fname, le, 0, movie_line, &ds->n_items, "movies");
}

int ml1m_parse_ratings(struct dataset *ds, const char *buf, size_t len, const char *fname,
		       struct line_errors *le)
{
	/* ratings.dat lines average ~24 bytes: len / 20 over-reserves a little. */
	int rc = dataset_reserve_ratings(ds, len / 20 + 1);

	return rc ? rc :
		    rd_parse(ds, buf, len, fname, le, 0, rating_line, &ds->n_ratings, "ratings");
}
