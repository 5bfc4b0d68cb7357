#include "metrics.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

/*
 * Maps a float to a uint32 whose unsigned order is the float order:
 * negative floats have all bits flipped, non-negative ones the sign bit set.
 * -0.0 is folded onto +0.0 so the two tie.
 */
static uint32_t float_key(float f)
{
	uint32_t b;

	if (f == 0.0f)
		f = 0.0f;
	memcpy(&b, &f, sizeof(b));
	return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

/*
 * Stable LSD radix sort of v (n) on bits 32..63, three passes of 11/11/10
 * bits; tmp (n) is scratch.  Returns the buffer holding the sorted data.
 */
static uint64_t *radix_sort_hi32(uint64_t *v, uint64_t *tmp, size_t n)
{
	static const int shift[3] = {32, 43, 54};
	size_t count[2048];

	for (int p = 0; p < 3; p++) {
		size_t sum = 0;
		int s = shift[p];

		memset(count, 0, sizeof(count));
		for (size_t i = 0; i < n; i++)
			count[(v[i] >> s) & 2047u]++;
		for (size_t b = 0; b < 2048; b++) {
			size_t c = count[b];
			count[b] = sum;
			sum += c;
		}
		for (size_t i = 0; i < n; i++)
			tmp[count[(v[i] >> s) & 2047u]++] = v[i];
		uint64_t *t = v;
		v = tmp;
		tmp = t;
	}
	return v;
}

int metric_auc(const float *score, const float *label, size_t n, double *auc)
{
	uint64_t *buf, *sorted;
	double npos = 0.0, nneg = 0.0, num = 0.0;
	size_t i;

	if (n == 0)
		return hr_error(HR_EINVAL, "auc: no examples");
	for (i = 0; i < n; i++) {
		if (label[i] != 0.0f && label[i] != 1.0f)
			return hr_error(HR_EINVAL, "auc: label %zu is %g, not 0 or 1", i,
					(double)label[i]);
		if (isnan(score[i]))
			return hr_error(HR_EINVAL, "auc: score %zu is NaN", i);
		if (label[i] == 1.0f)
			npos += 1.0;
	}
	nneg = (double)n - npos;
	if (npos == 0.0 || nneg == 0.0)
		return hr_error(HR_EINVAL, "auc: only %s examples (%zu)",
				npos == 0.0 ? "negative" : "positive", n);

	buf = malloc(2 * n * sizeof(*buf));
	if (!buf)
		return hr_error(HR_ENOMEM, "auc: cannot allocate %zu bytes", 2 * n * sizeof(*buf));
	for (i = 0; i < n; i++)
		buf[i] = ((uint64_t)float_key(score[i]) << 32) | (label[i] == 1.0f);
	sorted = radix_sort_hi32(buf, buf + n, n);

	/*
	 * Walk tie groups in ascending score order: each positive in a group
	 * beats every negative below the group and half of those inside it.
	 * Counts stay below 2^53, so the sums are exact for any realistic n.
	 */
	double neg_below = 0.0;
	for (i = 0; i < n;) {
		uint32_t key = (uint32_t)(sorted[i] >> 32);
		double gpos = 0.0, gneg = 0.0;
		for (; i < n && (uint32_t)(sorted[i] >> 32) == key; i++) {
			if (sorted[i] & 1u)
				gpos += 1.0;
			else
				gneg += 1.0;
		}
		num += gpos * (neg_below + 0.5 * gneg);
		neg_below += gneg;
	}
	free(buf);
	*auc = num / (npos * nneg);
	return 0;
}

double metric_logloss(const float *prob, const float *label, size_t n)
{
	const double lo = 1e-7, hi = 1.0 - 1e-7;
	double sum = 0.0;

	if (n == 0)
		return NAN;
	for (size_t i = 0; i < n; i++) {
		double p = prob[i], y = label[i];
		if (p < lo)
			p = lo;
		else if (p > hi)
			p = hi;
		sum -= y * log(p) + (1.0 - y) * log(1.0 - p);
	}
	return sum / (double)n;
}

struct gauc_row {
	uint32_t group;
	uint32_t index;
};

static int cmp_gauc_row(const void *a, const void *b)
{
	const struct gauc_row *x = a, *y = b;

	if (x->group != y->group)
		return x->group < y->group ? -1 : 1;
	return (x->index > y->index) - (x->index < y->index);
}

int metric_gauc(const float *score, const float *label, const uint32_t *group, size_t n,
		double *gauc, size_t *groups_used)
{
	struct gauc_row *rows = malloc((n ? n : 1) * sizeof(*rows));
	float *s = malloc((n ? n : 1) * sizeof(*s)), *l = malloc((n ? n : 1) * sizeof(*l));
	double sum = 0, weight = 0;
	size_t used = 0;
	int rc = 0;

	if (!rows || !s || !l) {
		rc = hr_error(HR_ENOMEM, "out of memory for group AUC of %zu examples", n);
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		rows[i] = (struct gauc_row){group[i], (uint32_t)i};
	qsort(rows, n, sizeof(*rows), cmp_gauc_row);
	for (size_t a = 0, b; a < n; a = b) {
		size_t pos = 0;
		for (b = a; b < n && rows[b].group == rows[a].group; b++) {
			s[b - a] = score[rows[b].index];
			l[b - a] = label[rows[b].index];
			pos += l[b - a] != 0.0f;
		}
		if (pos == 0 || pos == b - a)
			continue;
		double auc;
		rc = metric_auc(s, l, b - a, &auc);
		if (rc)
			goto out;
		sum += auc * (double)(b - a);
		weight += (double)(b - a);
		used++;
	}
	if (used == 0)
		rc = hr_error(HR_EINVAL, "no group has both classes");
	else
		*gauc = sum / weight;
	if (groups_used)
		*groups_used = used;
out:
	free(rows);
	free(s);
	free(l);
	return rc;
}
