/*
 * read_util.h - the small pieces every MovieLens reader is built from.
 *
 * All functions work on a byte range (pointer + length) that is neither
 * NUL-terminated nor trusted: nothing here reads outside [p, p + n).  The
 * hot-path helpers (line iteration, integer parsing) are static inline so a
 * ratings loop compiles to straight pointer code.
 *
 * Line errors: a reader that finds a malformed line calls rd_line_error(),
 * which either counts the line as skipped (while the caller's budget lasts)
 * or turns it into an HR_EPARSE failure with the message "FILE:LINE: what".
 *
 * Internal to ingest/; the public reader API is readers.h.
 */
#ifndef HR_READ_UTIL_H
#define HR_READ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct dataset;

/*
 * Budget of malformed lines a caller tolerates.  While count < max a bad
 * line is skipped (count is incremented); after that the next bad line is
 * an error.  max = 0 makes every bad line fatal.  One budget may be shared
 * by the files of one load, so max bounds the whole load.
 */
struct line_errors {
	size_t max;
	size_t count;
};

/* Number of skipped lines whose message is logged (as a warning). */
#define RD_LOGGED_ERRORS 10

/* Returned by line-level functions for a line that was skipped. */
#define RD_SKIP 1

/*
 * Reports that line `line` of fname is malformed.  The message is
 * "fname:line: " followed by the printf-style text.  Returns RD_SKIP when
 * the line is to be skipped (le->count was below le->max; it is counted and
 * the first RD_LOGGED_ERRORS skipped lines are logged with log_warn),
 * otherwise HR_EPARSE with the message recorded by hr_error().  Line-level
 * functions return 0 (line used), RD_SKIP, or a negative HR_E* code, so
 * `return rd_line_error(...)` is their usual error exit.
 */
int rd_line_error(struct line_errors *le, const char *fname, size_t line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* ---- lines ------------------------------------------------------------ */

struct line_iter {
	const char *p, *end;
	size_t lineno; /* 1-based number of the line last returned */
};

static inline void line_iter_init(struct line_iter *it, const char *buf, size_t len)
{
	it->p = buf;
	it->end = buf ? buf + len : buf;
	it->lineno = 0;
}

/*
 * Returns the next line in *s, *n (without its '\n' and one trailing '\r')
 * and 1, or 0 at the end of the buffer.  A final line without '\n' is
 * returned; a buffer ending in '\n' has no extra empty line after it.
 */
static inline int line_next(struct line_iter *it, const char **s, size_t *n)
{
	const char *p = it->p, *e;

	if (p == it->end)
		return 0;
	e = memchr(p, '\n', (size_t)(it->end - p));
	if (e)
		it->p = e + 1;
	else
		it->p = e = it->end;
	if (e > p && e[-1] == '\r')
		e--;
	*s = p;
	*n = (size_t)(e - p);
	it->lineno++;
	return 1;
}

/* ---- fields ----------------------------------------------------------- */

struct rd_field {
	const char *p;
	size_t n;
};

/*
 * Splits [s, s + n) at every occurrence of sep (1 or 2 bytes, scanned left
 * to right without overlap).  Stores at most maxf fields in f and returns
 * the number of fields present, which may exceed maxf.
 */
size_t rd_split(const char *s, size_t n, const char *sep, size_t seplen, struct rd_field *f,
		size_t maxf);

/*
 * Splits one RFC-4180 CSV line into fields.  A field starting with '"' is
 * quoted: it ends at the next lone '"', "" inside stands for one '"', and
 * the closing quote must be followed by ',' or the end of the line.  Quoted
 * fields are unescaped into scratch (which needs n bytes); unquoted ones
 * point into s.  A '"' inside an unquoted field is kept literally.  Quoted
 * fields cannot span lines.  Returns the number of fields (may exceed
 * maxf; at most maxf are stored), or -1 for an unterminated quote and -2
 * for a character after a closing quote; then *bad_at is its offset in s.
 */
long rd_csv_split(const char *s, size_t n, char *scratch, struct rd_field *f, size_t maxf,
		  size_t *bad_at);

/* ---- numbers ---------------------------------------------------------- */

enum { RD_NUM_BAD = -1, RD_NUM_RANGE = -2, RD_NUM_HALF = -3 };

/*
 * Strict unsigned decimal: one or more ASCII digits and nothing else (no
 * sign, space, or '+').  Returns 0, RD_NUM_BAD for anything that is not a
 * number (including "" and "-3"), or RD_NUM_RANGE when the value exceeds
 * UINT32_MAX.
 */
static inline int rd_u32(const char *s, size_t n, uint32_t *out)
{
	uint64_t v = 0;
	int over = 0;

	if (n == 0)
		return RD_NUM_BAD;
	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned char)s[i] - (unsigned)'0';
		if (d > 9)
			return RD_NUM_BAD;
		v = v * 10 + d;
		if (v > UINT32_MAX) {
			over = 1;
			v = UINT32_MAX; /* keeps scanning for garbage without overflow */
		}
	}
	if (over)
		return RD_NUM_RANGE;
	*out = (uint32_t)v;
	return 0;
}

/*
 * A rating written as a decimal ("4", "4.0", "3.5", "4.50") converted to
 * stars times two.  Digits are required on both sides of a '.'.  Returns 0,
 * RD_NUM_BAD when it is not a decimal number, RD_NUM_RANGE when it is
 * outside 0.5..5.0, or RD_NUM_HALF when it is not a multiple of 0.5.
 */
int rd_half_stars(const char *s, size_t n, uint16_t *stars2);

/* ---- text ------------------------------------------------------------- */

/*
 * Printable rendering of untrusted bytes for messages: at most 48 bytes,
 * bytes outside printable ASCII written as \xNN, "..." when cut.  The
 * result is a value, so rd_show(p, n).s may be passed straight to printf.
 */
struct rd_shown {
	char s[48 * 4 + 4];
};
struct rd_shown rd_show(const char *p, size_t n);

/*
 * Latin-1 to UTF-8: writes at most 2 * n bytes to out and returns how many.
 * Bytes below 0x80 are copied; others become two-byte sequences.
 */
size_t rd_latin1_to_utf8(char *out, const char *in, size_t n);

/* 1 if [s, s + n) is well-formed UTF-8 (no overlongs, no surrogates). */
int rd_utf8_valid(const char *s, size_t n);

/*
 * The year of a title ending in "(YYYY)" (trailing blanks ignored), or 0.
 * Exactly four digits are required.
 */
uint16_t rd_title_year(const char *s, size_t n);

/* 1 if every byte is printable ASCII (0x20..0x7e). */
int rd_printable(const char *s, size_t n);

/* 1 if memchr(s, 0, n) finds a NUL byte. */
static inline int rd_has_nul(const char *s, size_t n)
{
	return n && memchr(s, '\0', n) != NULL;
}

/* A growable byte buffer for per-line scratch (titles, unquoted fields). */
struct rd_buf {
	char *p;
	size_t cap;
};

/* Ensures room for n bytes.  HR_ENOMEM on failure.  Free with free(b->p). */
int rd_buf_reserve(struct rd_buf *b, size_t n);

/* ---- the per-file driver ---------------------------------------------- */

/* State handed to a reader's per-line function. */
struct rd_ctx {
	struct dataset *ds;
	const char *fname;      /* base name used in messages */
	struct line_errors *le; /* never NULL inside a line function */
	size_t line;            /* 1-based number of the current line */
	struct rd_buf scratch;  /* per-line scratch, freed by rd_parse() */
};

/*
 * Parses one line [s, s + n) (no line end, never blank).  Returns 0,
 * RD_SKIP, or a negative HR_E* code (then parsing stops).
 */
typedef int (*rd_line_fn)(struct rd_ctx *c, const char *s, size_t n);

/*
 * Calls fn for every non-blank line of [buf, buf + len); blank lines
 * (empty, or a lone '\r') are skipped silently.  line_base is added to line
 * numbers (1 when the caller consumed a header line).  le may be NULL
 * (every bad line is fatal).  Skipped lines are added to ds->n_skipped.
 * Returns 0 or the first negative code from fn; HR_EFORMAT ("'FILE' holds
 * no WHAT") when *count, the dataset counter the file adds to, did not grow.
 */
int rd_parse(struct dataset *ds, const char *buf, size_t len, const char *fname,
	     struct line_errors *le, size_t line_base, rd_line_fn fn, const size_t *count,
	     const char *what);

/*
 * The four fields user, movie, rating (integer stars 1..5) and timestamp of
 * an ml-1m or ml-100k rating line: parsed, checked against the users and
 * movies already read (named users_file and items_file in messages) and
 * added to the dataset.  Returns like a line function.
 */
int rd_star_rating(struct rd_ctx *c, const struct rd_field f[4], const char *users_file,
		   const char *items_file);

/* ---- dataset helpers -------------------------------------------------- */

/*
 * Interns the '|'-separated genre names in [s, s + n) and sets their bits
 * in *bits.  "(no genres listed)" means none.  An empty field, an empty
 * name, a name of DS_GENRE_NAME_MAX bytes or more, or a genre beyond the
 * DS_MAX_GENRES distinct ones is a line error.  Returns 0, RD_SKIP, or a
 * negative code, like rd_line_error().  Names are checked before any is
 * interned, so a skipped line interns nothing unless the table overflows.
 */
int rd_genres(struct dataset *ds, const char *s, size_t n, uint32_t *bits, struct line_errors *le,
	      const char *fname, size_t line);

/*
 * The standard line error for a number that rd_u32() rejected with why:
 * "WHAT 'TEXT' is not a valid number" or
 * "WHAT 'TEXT' out of range (0..4294967295)".  Returns as rd_line_error().
 */
int rd_u32_error(struct line_errors *le, const char *fname, size_t line, const char *what,
		 const char *s, size_t n, int why);

/*
 * 1 if ds satisfies what the readers promise: ids map to their indices,
 * ages are ml-1m groups (or 0), strings are NUL-terminated in their arrays,
 * titles are valid UTF-8 inside strpool, genre bits name interned genres,
 * ratings point at existing users and items with stars2 in 1..10.  For
 * tests and fuzzers; linear in the size of the dataset.
 */
int rd_dataset_valid(const struct dataset *ds);

#endif
