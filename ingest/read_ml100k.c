/*
 * read_ml100k.c - ml-100k: u.user, u.item ('|'-separated), u.data (tabs).
 */
#include "readers.h"

#include <inttypes.h>

#include "common/err.h"

#define ITEM_FIELDS 24 /* id, title, release, video release, URL, 19 flags */
#define FIRST_FLAG 5

/* Genre of each flag; flag 0 ("unknown") sets no genre. */
static const char *const flag_genre[19] = {
	NULL,          "Action", "Adventure", "Animation", "Children's", "Comedy",  "Crime",
	"Documentary", "Drama",  "Fantasy",   "Film-Noir", "Horror",     "Musical", "Mystery",
	"Romance",     "Sci-Fi", "Thriller",  "War",       "Western",
};

/* The ml-1m age group of an exact age. */
static uint8_t age_group(uint32_t age)
{
	if (age < 18)
		return 1;
	if (age < 25)
		return 18;
	if (age < 35)
		return 25;
	if (age < 45)
		return 35;
	if (age < 50)
		return 45;
	if (age < 56)
		return 50;
	return 56;
}

static int user_line(struct rd_ctx *c, const char *s, size_t n)
{
	struct rd_field f[5];
	struct ds_user u = {0};
	uint32_t age;
	size_t k;
	int rc;

	if (rd_has_nul(s, n))
		return rd_line_error(c->le, c->fname, c->line, "line contains a NUL byte");
	k = rd_split(s, n, "|", 1, f, 5);
	if (k != 5)
		return rd_line_error(c->le, c->fname, c->line,
				     "expected 5 fields separated by '|', found %zu", k);
	if ((rc = rd_u32(f[0].p, f[0].n, &u.raw_id)))
		return rd_u32_error(c->le, c->fname, c->line, "user id", f[0].p, f[0].n, rc);
	if (idmap_get(&c->ds->user_ids, u.raw_id) != IDMAP_NONE)
		return rd_line_error(c->le, c->fname, c->line, "duplicate user id %" PRIu32,
				     u.raw_id);
	if ((rc = rd_u32(f[1].p, f[1].n, &age)))
		return rd_u32_error(c->le, c->fname, c->line, "age", f[1].p, f[1].n, rc);
	if (age < 1 || age > 120)
		return rd_line_error(c->le, c->fname, c->line, "age '%s' out of range (1..120)",
				     rd_show(f[1].p, f[1].n).s);
	u.age = age_group(age);
	if (f[2].n != 1 || (f[2].p[0] != 'M' && f[2].p[0] != 'F'))
		return rd_line_error(c->le, c->fname, c->line, "gender '%s' is not M or F",
				     rd_show(f[2].p, f[2].n).s);
	u.gender = f[2].p[0];
	if (f[3].n == 0)
		return rd_line_error(c->le, c->fname, c->line, "occupation is empty");
	if (f[3].n >= DS_OCC_MAX)
		return rd_line_error(c->le, c->fname, c->line,
				     "occupation '%s' longer than %d bytes",
				     rd_show(f[3].p, f[3].n).s, DS_OCC_MAX - 1);
	if (!rd_printable(f[3].p, f[3].n))
		return rd_line_error(c->le, c->fname, c->line,
				     "occupation '%s' is not printable ASCII",
				     rd_show(f[3].p, f[3].n).s);
	memcpy(u.occupation, f[3].p, f[3].n);
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

static int is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

static int is_alpha(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

/*
 * The year of a release date "d-Mon-yyyy" or "dd-Mon-yyyy" in *year (0 for
 * an empty date).  Returns -1 when the date has another shape.
 */
static int release_year(const char *s, size_t n, uint16_t *year)
{
	size_t d;

	*year = 0;
	if (n == 0)
		return 0;
	d = n >= 2 && is_digit(s[1]) ? 2 : 1; /* digits in the day */
	if (n != d + 9 || !is_digit(s[0]) || s[d] != '-' || !is_alpha(s[d + 1]) ||
	    !is_alpha(s[d + 2]) || !is_alpha(s[d + 3]) || s[d + 4] != '-')
		return -1;
	for (size_t i = d + 5; i < n; i++) {
		if (!is_digit(s[i]))
			return -1;
		*year = (uint16_t)(*year * 10 + (s[i] - '0'));
	}
	return 0;
}

static int item_line(struct rd_ctx *c, const char *s, size_t n)
{
	struct rd_field f[ITEM_FIELDS];
	uint32_t id, genres = 0;
	uint16_t year, ryear;
	size_t k, tlen;
	int rc;

	if (rd_has_nul(s, n))
		return rd_line_error(c->le, c->fname, c->line, "line contains a NUL byte");
	k = rd_split(s, n, "|", 1, f, ITEM_FIELDS);
	if (k != ITEM_FIELDS)
		return rd_line_error(c->le, c->fname, c->line,
				     "expected %d fields separated by '|', found %zu", ITEM_FIELDS,
				     k);
	if ((rc = rd_u32(f[0].p, f[0].n, &id)))
		return rd_u32_error(c->le, c->fname, c->line, "movie id", f[0].p, f[0].n, rc);
	if (idmap_get(&c->ds->item_ids, id) != IDMAP_NONE)
		return rd_line_error(c->le, c->fname, c->line, "duplicate movie id %" PRIu32, id);
	if (release_year(f[2].p, f[2].n, &ryear))
		return rd_line_error(c->le, c->fname, c->line,
				     "release date '%s' is not dd-Mon-yyyy",
				     rd_show(f[2].p, f[2].n).s);
	for (int g = 0; g < 19; g++) {
		const struct rd_field *fl = &f[FIRST_FLAG + g];
		if (fl->n != 1 || (fl->p[0] != '0' && fl->p[0] != '1'))
			return rd_line_error(c->le, c->fname, c->line,
					     "genre flag %d (%s) is '%s', expected 0 or 1", g,
					     g ? flag_genre[g] : "unknown",
					     rd_show(fl->p, fl->n).s);
	}
	for (int g = 1; g < 19; g++) {
		if (f[FIRST_FLAG + g].p[0] != '1')
			continue;
		rc = dataset_genre(c->ds, flag_genre[g], strlen(flag_genre[g]));
		if (rc < 0)
			return rd_line_error(
				c->le, c->fname, c->line,
				"genre '%s' is one more than the %d distinct genres allowed",
				flag_genre[g], DS_MAX_GENRES);
		genres |= UINT32_C(1) << rc;
	}
	if ((rc = rd_buf_reserve(&c->scratch, 2 * f[1].n)))
		return rc;
	tlen = rd_latin1_to_utf8(c->scratch.p, f[1].p, f[1].n);
	year = rd_title_year(c->scratch.p, tlen);
	rc = dataset_add_item(c->ds, id, c->scratch.p, tlen, year ? year : ryear, genres, NULL);
	return rc < 0 ? rc : 0;
}

static int rating_line(struct rd_ctx *c, const char *s, size_t n)
{
	struct rd_field f[4];
	size_t k = rd_split(s, n, "\t", 1, f, 4);

	if (k != 4)
		return rd_line_error(c->le, c->fname, c->line,
				     "expected 4 fields separated by tabs, found %zu", k);
	return rd_star_rating(c, f, "u.user", "u.item");
}

int ml100k_parse_users(struct dataset *ds, const char *buf, size_t len, const char *fname,
		       struct line_errors *le)
{
	return rd_parse(ds, buf, len, fname, le, 0, user_line, &ds->n_users, "users");
}

int ml100k_parse_items(struct dataset *ds, const char *buf, size_t len, const char *fname,
		       struct line_errors *le)
{
	return rd_parse(ds, buf, len, fname, le, 0, item_line, &ds->n_items, "movies");
}

int ml100k_parse_ratings(struct dataset *ds, const char *buf, size_t len, const char *fname,
			 struct line_errors *le)
{
	/* u.data lines average ~21 bytes. */
	int rc = dataset_reserve_ratings(ds, len / 18 + 1);

	return rc ? rc :
		    rd_parse(ds, buf, len, fname, le, 0, rating_line, &ds->n_ratings, "ratings");
}
