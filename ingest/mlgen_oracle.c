/*
 * mlgen_oracle.c - the oracle AUC of a data set mlgen wrote: its ratings
 * file and truth.dat read back in step, each kept line scored with the
 * planted probabilities.
 */
#include "mlgen_internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/fsutil.h"
#include "common/metrics.h"

struct line_reader {
	const char *p, *end;
	const char *path;
	size_t no; /* 1-based number of the line last returned */
};

/* Next non-empty line without its '\n' (and '\r'); 0 at end of file. */
static int next_line(struct line_reader *lr, const char **b, const char **e)
{
	while (lr->p < lr->end) {
		const char *nl = memchr(lr->p, '\n', (size_t)(lr->end - lr->p));
		const char *stop = nl ? nl : lr->end;
		*b = lr->p;
		*e = stop;
		lr->p = nl ? nl + 1 : lr->end;
		lr->no++;
		if (*e > *b && (*e)[-1] == '\r')
			(*e)--;
		if (*e > *b)
			return 1;
	}
	return 0;
}

/* Splits off the next field of [*s, e) ending at sep or at e. */
static void next_field(const char **s, const char *e, const char *sep, const char **fb,
		       const char **fe)
{
	size_t k = strlen(sep);
	const char *hit = memmem(*s, (size_t)(e - *s), sep, k);

	*fb = *s;
	*fe = hit ? hit : e;
	*s = hit ? hit + k : e;
}

static int parse_uint_field(const char *b, const char *e, uint64_t *v)
{
	uint64_t x = 0;

	if (b == e || e - b > 19)
		return -1;
	for (; b < e; b++) {
		if (*b < '0' || *b > '9')
			return -1;
		x = x * 10 + (uint64_t)(*b - '0');
	}
	*v = x;
	return 0;
}

static int parse_num_field(const char *b, const char *e, double *v)
{
	char buf[48], *end;

	if (b == e || e - b >= (long)sizeof(buf))
		return -1;
	memcpy(buf, b, (size_t)(e - b));
	buf[e - b] = '\0';
	errno = 0;
	*v = strtod(buf, &end);
	if (*end != '\0' || errno || !isfinite(*v))
		return -1;
	return 0;
}

/* user, movie, rating, timestamp from a ratings line. */
static int parse_rating_line(const struct line_reader *lr, const char *b, const char *e,
			     const char *sep, uint64_t v[3], double *rating)
{
	const char *fb, *fe, *s = b;
	int bad = 0;

	next_field(&s, e, sep, &fb, &fe);
	bad |= parse_uint_field(fb, fe, &v[0]);
	next_field(&s, e, sep, &fb, &fe);
	bad |= parse_uint_field(fb, fe, &v[1]);
	next_field(&s, e, sep, &fb, &fe);
	bad |= parse_num_field(fb, fe, rating);
	next_field(&s, e, sep, &fb, &fe);
	bad |= parse_uint_field(fb, fe, &v[2]);
	if (bad || s != e || fe != e)
		return hr_error(HR_EPARSE, "%s:%zu: malformed rating line '%.*s'", lr->path, lr->no,
				(int)(e - b > 80 ? 80 : e - b), b);
	return 0;
}

/* user, movie, timestamp and p1..p5 from a truth.dat line. */
static int parse_truth_line(const struct line_reader *lr, const char *b, const char *e,
			    uint64_t v[3], double p[5])
{
	const char *fb, *fe, *s = b;
	int bad = 0;

	for (int k = 0; k < 3; k++) {
		next_field(&s, e, "::", &fb, &fe);
		bad |= parse_uint_field(fb, fe, &v[k]);
	}
	for (int k = 0; k < 5; k++) {
		next_field(&s, e, "::", &fb, &fe);
		bad |= parse_num_field(fb, fe, &p[k]);
		bad |= p[k] < 0 || p[k] > 1;
	}
	if (bad || s != e || fe != e)
		return hr_error(HR_EPARSE, "%s:%zu: malformed truth line '%.*s'", lr->path, lr->no,
				(int)(e - b > 80 ? 80 : e - b), b);
	return 0;
}

static size_t count_lines(const struct mapped_file *m)
{
	size_t n = 0;

	if (!m->data)
		return 1;
	for (const char *p = m->data, *end = m->data + m->len; p < end; n++) {
		p = memchr(p, '\n', (size_t)(end - p));
		if (!p)
			break;
		p++;
	}
	return n + 1;
}

/*
 * Walks the ratings and truth files in step, filling score/label for the
 * lines the label rule keeps.  *n receives how many were kept.
 */
static int oracle_collect(struct line_reader *rr, struct line_reader *tr, int fmt, int pos_min,
			  int neg_max, float *score, float *label, size_t cap, size_t *n)
{
	static const char *const seps[] = {"::", "\t", ","};
	const char *rb, *re, *tb, *te;
	size_t k = 0;
	int rc;

	/* ml-latest files open with a header line */
	if (fmt == MLGEN_CSV && rr->p < rr->end && (*rr->p < '0' || *rr->p > '9'))
		next_line(rr, &rb, &re);
	while (next_line(tr, &tb, &te)) {
		uint64_t rv[3] = {0}, tv[3] = {0};
		double rating = 0.0, p[5] = {0}, ppos = 0.0, pneg = 0.0;

		if (!next_line(rr, &rb, &re))
			return hr_error(HR_EFORMAT, "'%s' ends at line %zu but '%s' goes on",
					rr->path, rr->no, tr->path);
		rc = parse_rating_line(rr, rb, re, seps[fmt], rv, &rating);
		if (!rc)
			rc = parse_truth_line(tr, tb, te, tv, p);
		if (rc)
			return rc;
		if (rv[0] != tv[0] || rv[1] != tv[1] || rv[2] != tv[2])
			return hr_error(HR_EFORMAT,
					"%s:%zu and %s:%zu disagree (user, movie or time)",
					rr->path, rr->no, tr->path, tr->no);
		if (rating > neg_max && rating < pos_min)
			continue;
		for (int j = 0; j < 5; j++) {
			if (j + 1 >= pos_min)
				ppos += p[j];
			if (j + 1 <= neg_max)
				pneg += p[j];
		}
		HR_ASSERT(k < cap);
		score[k] = ppos + pneg > 0 ? (float)(ppos / (ppos + pneg)) : 0.5f;
		label[k] = rating >= pos_min ? 1.0f : 0.0f;
		k++;
	}
	if (next_line(rr, &rb, &re))
		return hr_error(HR_EFORMAT, "'%s' has more lines than '%s' (line %zu)", rr->path,
				tr->path, rr->no);
	*n = k;
	return 0;
}

int mlgen_oracle(const char *dir, int pos_min, int neg_max, double *auc, size_t *rows,
		 double *pos_rate)
{
	char rpath[4096], tpath[4096];
	struct mapped_file rm = {0}, tm = {0};
	struct line_reader rr, tr;
	float *score = NULL, *label = NULL;
	size_t cap, n = 0;
	double a, npos = 0.0;
	int fmt = -1, rc;

	if (neg_max < 1 || pos_min > 5 || neg_max >= pos_min)
		return hr_error(HR_EINVAL, "need 1 <= --neg-max < --pos-min <= 5, got %d and %d",
				neg_max, pos_min);
	for (int i = 0; i < 3 && fmt < 0; i++) {
		rc = path_join(rpath, sizeof(rpath), dir, mlgen_ratings_names[i]);
		if (rc)
			return rc;
		if (path_exists(rpath))
			fmt = i;
	}
	if (fmt < 0)
		return hr_error(HR_ENOENT,
				"no ratings file (ratings.dat, u.data or ratings.csv) in '%s'",
				dir);
	rc = path_join(tpath, sizeof(tpath), dir, "truth.dat");
	if (!rc)
		rc = mapped_file_open(&rm, rpath);
	if (!rc)
		rc = mapped_file_open(&tm, tpath);
	if (rc)
		goto out;
	cap = count_lines(&tm);
	score = malloc(cap * sizeof(*score));
	label = malloc(cap * sizeof(*label));
	if (!score || !label) {
		rc = hr_error(HR_ENOMEM, "oracle: out of memory for %zu lines", cap);
		goto out;
	}
	/* an empty file maps to NULL; NULL + 0 is not valid C */
	rr = (struct line_reader){rm.data ? rm.data : "", NULL, rpath, 0};
	rr.end = rr.p + rm.len;
	tr = (struct line_reader){tm.data ? tm.data : "", NULL, tpath, 0};
	tr.end = tr.p + tm.len;
	rc = oracle_collect(&rr, &tr, fmt, pos_min, neg_max, score, label, cap, &n);
	if (rc)
		goto out;
	rc = metric_auc(score, label, n, &a);
	if (rc) {
		hr_error_prefix(rc, "oracle on '%s'", dir);
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		npos += label[i];
	*auc = a;
	*rows = n;
	*pos_rate = npos / (double)n;
out:
	free(score);
	free(label);
	mapped_file_release(&rm);
	mapped_file_release(&tm);
	return rc;
}
