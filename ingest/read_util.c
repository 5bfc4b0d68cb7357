#include "read_util.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/err.h"
#include "common/log.h"
#include "ingest/dataset.h"

int rd_line_error(struct line_errors *le, const char *fname, size_t line, const char *fmt, ...)
{
	char what[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (le && le->count < le->max) {
		le->count++;
		if (le->count <= RD_LOGGED_ERRORS)
			log_warn("%s:%zu: %s (line skipped)", fname, line, what);
		return RD_SKIP;
	}
	return hr_error(HR_EPARSE, "%s:%zu: %s", fname, line, what);
}

int rd_u32_error(struct line_errors *le, const char *fname, size_t line, const char *what,
		 const char *s, size_t n, int why)
{
	if (why == RD_NUM_RANGE)
		return rd_line_error(le, fname, line, "%s '%s' out of range (0..%" PRIu32 ")", what,
				     rd_show(s, n).s, UINT32_MAX);
	return rd_line_error(le, fname, line, "%s '%s' is not a valid number", what,
			     rd_show(s, n).s);
}

size_t rd_split(const char *s, size_t n, const char *sep, size_t seplen, struct rd_field *f,
		size_t maxf)
{
	const char *p = s, *q = s, *end = s + n;
	const char c0 = sep[0], c1 = seplen > 1 ? sep[1] : 0;
	size_t k = 0;

	/* A byte loop: fields are a few bytes, too short for memchr to pay. */
	for (;; q++) {
		int at_sep = q < end && *q == c0 && (seplen == 1 || (q + 1 < end && q[1] == c1));

		if (q < end && !at_sep)
			continue;
		if (k < maxf) {
			f[k].p = p;
			f[k].n = (size_t)(q - p);
		}
		k++;
		if (q == end)
			return k;
		q += seplen - 1;
		p = q + 1;
	}
}

long rd_csv_split(const char *s, size_t n, char *scratch, struct rd_field *f, size_t maxf,
		  size_t *bad_at)
{
	size_t i = 0, w = 0, k = 0;

	for (;;) {
		struct rd_field fld;

		if (i < n && s[i] == '"') {
			size_t open = i, start = w;

			for (i++;; i++) {
				if (i >= n) {
					*bad_at = open;
					return -1;
				}
				if (s[i] != '"') {
					scratch[w++] = s[i];
					continue;
				}
				if (i + 1 < n && s[i + 1] == '"') {
					scratch[w++] = '"';
					i++;
					continue;
				}
				i++; /* past the closing quote */
				break;
			}
			if (i < n && s[i] != ',') {
				*bad_at = i;
				return -2;
			}
			fld.p = scratch + start;
			fld.n = w - start;
		} else {
			const char *c = memchr(s + i, ',', n - i);
			size_t e = c ? (size_t)(c - s) : n;

			fld.p = s + i;
			fld.n = e - i;
			i = e;
		}
		if (k < maxf)
			f[k] = fld;
		k++;
		if (i >= n)
			return (long)k;
		i++; /* past the ',' */
	}
}

int rd_half_stars(const char *s, size_t n, uint16_t *stars2)
{
	size_t i = 0;
	unsigned whole = 0, half = 0;
	int off_grid = 0;

	while (i < n && (unsigned char)s[i] - (unsigned)'0' <= 9) {
		if (whole < 1000) /* saturate: only "is it above 5" matters */
			whole = whole * 10 + (unsigned)(s[i] - '0');
		i++;
	}
	if (i == 0)
		return RD_NUM_BAD;
	if (i < n) {
		size_t frac;

		if (s[i] != '.' || i + 1 == n)
			return RD_NUM_BAD;
		frac = ++i;
		for (; i < n; i++) {
			if ((unsigned char)s[i] - (unsigned)'0' > 9)
				return RD_NUM_BAD;
			if (i > frac && s[i] != '0')
				off_grid = 1;
		}
		if (s[frac] == '5')
			half = 1;
		else if (s[frac] != '0')
			off_grid = 1;
	}
	if (off_grid)
		return whole >= 5 ? RD_NUM_RANGE : RD_NUM_HALF;
	if (whole > 5 || 2 * whole + half < 1 || 2 * whole + half > 10)
		return RD_NUM_RANGE;
	*stars2 = (uint16_t)(2 * whole + half);
	return 0;
}

struct rd_shown rd_show(const char *p, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	struct rd_shown r;
	size_t w = 0, lim = n > 48 ? 48 : n;

	for (size_t i = 0; i < lim; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c >= 0x20 && c < 0x7f) {
			r.s[w++] = (char)c;
		} else {
			r.s[w++] = '\\';
			r.s[w++] = 'x';
			r.s[w++] = hex[c >> 4];
			r.s[w++] = hex[c & 15];
		}
	}
	if (n > lim) {
		memcpy(r.s + w, "...", 3);
		w += 3;
	}
	r.s[w] = '\0';
	return r;
}

size_t rd_latin1_to_utf8(char *out, const char *in, size_t n)
{
	size_t w = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c < 0x80) {
			out[w++] = (char)c;
		} else {
			out[w++] = (char)(0xC0 | (c >> 6));
			out[w++] = (char)(0x80 | (c & 0x3F));
		}
	}
	return w;
}

int rd_utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < n) {
		unsigned c = p[i];
		size_t k;
		uint32_t cp, min;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF) {
			k = 1, cp = c & 0x1F, min = 0x80;
		} else if (c >= 0xE0 && c <= 0xEF) {
			k = 2, cp = c & 0x0F, min = 0x800;
		} else if (c >= 0xF0 && c <= 0xF4) {
			k = 3, cp = c & 0x07, min = 0x10000;
		} else {
			return 0;
		}
		if (n - i <= k)
			return 0;
		for (size_t j = 1; j <= k; j++) {
			if ((p[i + j] & 0xC0) != 0x80)
				return 0;
			cp = (cp << 6) | (p[i + j] & 0x3F);
		}
		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return 0;
		i += k + 1;
	}
	return 1;
}

uint16_t rd_title_year(const char *s, size_t n)
{
	unsigned y = 0;

	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	if (n < 6 || s[n - 1] != ')' || s[n - 6] != '(')
		return 0;
	for (size_t i = n - 5; i < n - 1; i++) {
		unsigned d = (unsigned char)s[i] - (unsigned)'0';
		if (d > 9)
			return 0;
		y = y * 10 + d;
	}
	return (uint16_t)y;
}

int rd_buf_reserve(struct rd_buf *b, size_t n)
{
	size_t cap = b->cap ? b->cap : 256;
	char *p;

	if (n <= b->cap)
		return 0;
	while (cap < n)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p)
		return hr_error(HR_ENOMEM, "out of memory for a %zu-byte line buffer", cap);
	b->p = p;
	b->cap = cap;
	return 0;
}

int rd_printable(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return 0;
	return 1;
}

int rd_genres(struct dataset *ds, const char *s, size_t n, uint32_t *bits, struct line_errors *le,
	      const char *fname, size_t line)
{
	static const char none[] = "(no genres listed)";
	struct rd_field g[DS_MAX_GENRES];
	size_t k;

	*bits = 0;
	if (n == sizeof(none) - 1 && !memcmp(s, none, n))
		return 0;
	if (n == 0)
		return rd_line_error(le, fname, line, "genres field is empty");
	k = rd_split(s, n, "|", 1, g, DS_MAX_GENRES);
	if (k > DS_MAX_GENRES)
		return rd_line_error(le, fname, line, "more than %d genres in '%s'", DS_MAX_GENRES,
				     rd_show(s, n).s);
	for (size_t i = 0; i < k; i++) {
		if (g[i].n == 0)
			return rd_line_error(le, fname, line, "empty genre name in '%s'",
					     rd_show(s, n).s);
		if (g[i].n >= DS_GENRE_NAME_MAX)
			return rd_line_error(le, fname, line,
					     "genre name '%s' longer than %d bytes",
					     rd_show(g[i].p, g[i].n).s, DS_GENRE_NAME_MAX - 1);
		if (!rd_printable(g[i].p, g[i].n))
			return rd_line_error(le, fname, line,
					     "genre name '%s' is not printable ASCII",
					     rd_show(g[i].p, g[i].n).s);
	}
	for (size_t i = 0; i < k; i++) {
		int gi = dataset_genre(ds, g[i].p, g[i].n);
		if (gi < 0)
			return rd_line_error(
				le, fname, line,
				"genre '%s' is one more than the %d distinct genres allowed",
				rd_show(g[i].p, g[i].n).s, DS_MAX_GENRES);
		*bits |= UINT32_C(1) << gi;
	}
	return 0;
}

int rd_parse(struct dataset *ds, const char *buf, size_t len, const char *fname,
	     struct line_errors *le, size_t line_base, rd_line_fn fn, const size_t *count,
	     const char *what)
{
	struct line_errors strict = {0, 0};
	struct rd_ctx c = {ds, fname, le ? le : &strict, 0, {NULL, 0}};
	size_t skipped0 = c.le->count, count0 = *count;
	struct line_iter it;
	const char *s;
	size_t n;
	int rc = 0;

	line_iter_init(&it, buf, len);
	while (line_next(&it, &s, &n)) {
		if (n == 0)
			continue;
		c.line = line_base + it.lineno;
		rc = fn(&c, s, n);
		if (rc < 0)
			break;
		rc = 0;
	}
	free(c.scratch.p);
	ds->n_skipped += c.le->count - skipped0;
	if (!rc && *count == count0)
		rc = hr_error(HR_EFORMAT, "'%s' holds no %s", fname, what);
	return rc;
}

int rd_star_rating(struct rd_ctx *c, const struct rd_field f[4], const char *users_file,
		   const char *items_file)
{
	struct ds_rating r = {0};
	uint32_t uid, mid, stars;
	int rc;

	if ((rc = rd_u32(f[0].p, f[0].n, &uid)))
		return rd_u32_error(c->le, c->fname, c->line, "user id", f[0].p, f[0].n, rc);
	if ((rc = rd_u32(f[1].p, f[1].n, &mid)))
		return rd_u32_error(c->le, c->fname, c->line, "movie id", f[1].p, f[1].n, rc);
	if ((rc = rd_u32(f[2].p, f[2].n, &stars)) == RD_NUM_BAD)
		return rd_u32_error(c->le, c->fname, c->line, "rating", f[2].p, f[2].n, rc);
	if (rc || stars < 1 || stars > 5)
		return rd_line_error(c->le, c->fname, c->line, "rating '%s' out of range (1..5)",
				     rd_show(f[2].p, f[2].n).s);
	if ((rc = rd_u32(f[3].p, f[3].n, &r.ts)))
		return rd_u32_error(c->le, c->fname, c->line, "timestamp", f[3].p, f[3].n, rc);
	if ((r.user = idmap_get(&c->ds->user_ids, uid)) == IDMAP_NONE)
		return rd_line_error(c->le, c->fname, c->line,
				     "unknown user %" PRIu32 " (not in %s)", uid, users_file);
	if ((r.item = idmap_get(&c->ds->item_ids, mid)) == IDMAP_NONE)
		return rd_line_error(c->le, c->fname, c->line,
				     "unknown movie %" PRIu32 " (not in %s)", mid, items_file);
	r.stars2 = (uint16_t)(2 * stars);
	return dataset_add_rating(c->ds, &r);
}

int rd_dataset_valid(const struct dataset *ds)
{
	uint32_t all = ds->n_genres >= 32 ? UINT32_MAX : (UINT32_C(1) << ds->n_genres) - 1;

	if (ds->n_users > ds->cap_users || ds->n_items > ds->cap_items ||
	    ds->n_ratings > ds->cap_ratings || ds->strpool_len > ds->strpool_cap ||
	    ds->user_ids.len != ds->n_users || ds->item_ids.len != ds->n_items)
		return 0;
	for (size_t i = 0; i < ds->n_users; i++) {
		const struct ds_user *u = &ds->users[i];
		if (idmap_get(&ds->user_ids, u->raw_id) != i)
			return 0;
		if (u->gender && u->gender != 'M' && u->gender != 'F')
			return 0;
		if (u->age && !ds_age_group(u->age))
			return 0;
		if (!memchr(u->occupation, 0, sizeof(u->occupation)) ||
		    !memchr(u->zip, 0, sizeof(u->zip)))
			return 0;
	}
	for (size_t i = 0; i < ds->n_items; i++) {
		const struct ds_item *it = &ds->items[i];
		const char *t;
		if (idmap_get(&ds->item_ids, it->raw_id) != i || it->title >= ds->strpool_len ||
		    (it->genres & ~all))
			return 0;
		t = ds->strpool + it->title;
		if (!memchr(t, 0, ds->strpool_len - it->title) || !rd_utf8_valid(t, strlen(t)))
			return 0;
	}
	for (size_t i = 0; i < ds->n_ratings; i++) {
		const struct ds_rating *r = &ds->ratings[i];
		if (r->user >= ds->n_users || r->item >= ds->n_items || r->stars2 < 1 ||
		    r->stars2 > 10)
			return 0;
	}
	return 1;
}
