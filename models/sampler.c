#include "sampler.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"

int sampler_kind_parse(const char *name)
{
	if (!strcmp(name, "random"))
		return SAMPLER_RANDOM;
	if (!strcmp(name, "unconsumed"))
		return SAMPLER_UNCONSUMED;
	if (!strcmp(name, "popular"))
		return SAMPLER_POPULAR;
	return -1;
}

const char *sampler_kind_name(enum sampler_kind kind)
{
	return kind == SAMPLER_POPULAR    ? "popular" :
	       kind == SAMPLER_UNCONSUMED ? "unconsumed" :
					    "random";
}

/*
 * The binary searches halve without a branch on the data (the compare
 * becomes a conditional move): a user's consumed list is drawn at random,
 * so a branch would mispredict half its steps.
 */

/* The first index of a[0..n) (ascending) whose value is >= v; n if none. */
static inline uint64_t lower_bound32(const uint32_t *a, uint64_t n, uint32_t v)
{
	const uint32_t *base = a;

	if (!n)
		return 0;
	while (n > 1) {
		uint64_t half = n / 2;
		base = base[half] < v ? base + half : base;
		n -= half;
	}
	return (uint64_t)(base - a) + (*base < v);
}

/* The first index of a[0..n) (ascending) whose value is > v; n if none. */
static inline uint64_t upper_bound64(const uint64_t *a, uint64_t n, uint64_t v)
{
	const uint64_t *base = a;

	if (!n)
		return 0;
	while (n > 1) {
		uint64_t half = n / 2;
		base = base[half] <= v ? base + half : base;
		n -= half;
	}
	return (uint64_t)(base - a) + (*base <= v);
}

/* Uniform over 1 .. n_items-1 without pos (0 excludes nothing): one draw. */
static inline uint32_t draw_random(const struct sampler *s, struct rng *r, uint32_t pos)
{
	uint32_t K = s->n_items - 1;

	if (!pos)
		return 1 + rng_below(r, K);
	uint32_t j = 1 + rng_below(r, K - 1); /* 1 .. K-1, then step over pos */
	return j + (j >= pos);
}

/*
 * The k-th (from 0) item of 1 .. K missing from c[0..d) (distinct,
 * ascending, all >= 1).  Below c[i] lie c[i] - 1 - i missing items, a
 * non-decreasing count: the answer is k + 1 + the number of c[i] whose
 * count is <= k.
 */
static uint32_t kth_missing(const uint32_t *c, uint64_t d, uint32_t k)
{
	uint64_t lo = 0, n = d;

	if (!n)
		return k + 1;
	while (n > 1) {
		uint64_t half = n / 2;
		lo = c[lo + half] - 1 - (lo + half) <= k ? lo + half : lo;
		n -= half;
	}
	return (uint32_t)(k + 1 + lo + (c[lo] - 1 - lo <= k));
}

/*
 * Uniform over the items user u did not consume, without pos: rejection
 * first (cheap for the many users who consumed few items), then the k-th
 * unconsumed item, exact for any user.  Both stages are uniform over the
 * same set, so their mixture is.
 */
static uint32_t draw_unconsumed(const struct sampler *s, struct rng *r, uint32_t user, uint32_t pos)
{
	const uint32_t *c = s->cons + s->cons_off[user];
	uint64_t d = s->cons_off[user + 1] - s->cons_off[user];

	for (int t = 0; t < SAMPLER_TRIES; t++) {
		uint32_t i = draw_random(s, r, pos);
		uint64_t at = lower_bound32(c, d, i);
		if (at == d || c[at] != i)
			return i;
	}
	uint64_t below_pos = pos ? lower_bound32(c, d, pos) : 0;
	int pos_free = pos && (below_pos == d || c[below_pos] != pos);
	uint64_t m = (uint64_t)(s->n_items - 1) - d - (uint64_t)pos_free;
	if (!m) /* every item but the positive consumed: the documented fallback */
		return draw_random(s, r, pos);
	uint32_t k = rng_below(r, (uint32_t)m);
	if (pos_free && k >= pos - 1 - below_pos) /* pos is the (pos-1-below_pos)-th: skip it */
		k++;
	return kth_missing(c, d, k);
}

/*
 * Proportional to the counts of items 1 .. K without pos: a running sum
 * that steps over pos's count, then a binary search.  The total is at
 * most train_pos->n < 2^32, so rng_below() covers it.
 */
static uint32_t draw_popular_without(const struct sampler *s, struct rng *r, uint32_t pos)
{
	const uint64_t *cum = s->cum;
	uint32_t K = s->n_items - 1;
	uint64_t w_pos = pos ? cum[pos] - cum[pos - 1] : 0;
	uint64_t rest = cum[K] - w_pos;

	if (!rest) /* all the count is pos's: the documented fallback */
		return draw_random(s, r, pos);
	uint64_t u = rng_below(r, (uint32_t)rest);
	if (pos && u >= cum[pos - 1])
		u += w_pos;
	return (uint32_t)(1 + upper_bound64(cum + 1, K, u));
}

/*
 * The alias table: column j (item j + 1) is chosen uniformly, then kept
 * with probability keep / 2^32, else its alias.  Landing on pos redraws
 * from the counts without it: P(i) = w_i/W + (w_pos/W) w_i/(W - w_pos) =
 * w_i/(W - w_pos), exact.
 */
static inline uint32_t draw_popular(const struct sampler *s, struct rng *r, uint32_t pos)
{
	uint32_t j = rng_below(r, s->n_items - 1);
	uint32_t coin = (uint32_t)(rng_next(r) >> 32);
	uint32_t item = coin < s->alias[2 * j] ? j + 1 : s->alias[2 * j + 1];

	return item == pos ? draw_popular_without(s, r, pos) : item;
}

uint32_t sampler_draw(const struct sampler *s, struct rng *r, uint32_t user, uint32_t pos_item)
{
	HR_ASSERT(pos_item < s->n_items);
	switch (s->kind) {
	case SAMPLER_UNCONSUMED:
		HR_ASSERT(user < s->n_users);
		return draw_unconsumed(s, r, user, pos_item);
	case SAMPLER_POPULAR: return draw_popular(s, r, pos_item);
	case SAMPLER_RANDOM: break;
	}
	return draw_random(s, r, pos_item);
}

void sampler_fill(const struct sampler *s, struct rng *r, const uint32_t *users,
		  const uint32_t *pos_items, uint32_t B, uint32_t num_neg, uint32_t *out)
{
	HR_ASSERT(users || s->kind != SAMPLER_UNCONSUMED);
	for (uint32_t b = 0; b < B; b++)
		for (uint32_t k = 0; k < num_neg; k++)
			out[(size_t)b * num_neg + k] =
				sampler_draw(s, r, users ? users[b] : 0, pos_items[b]);
}

float sampler_item_prob(const struct sampler *s, uint32_t item)
{
	HR_ASSERT(item < s->n_items);
	return s->item_prob[item];
}

/* Distinct items above 0 over every user row of x (rows ascend). */
static uint64_t count_distinct(const struct interactions *x)
{
	uint64_t d = 0;

	for (uint32_t u = 0; u < x->n_users; u++)
		for (uint64_t p = x->user_off[u]; p < x->user_off[u + 1]; p++)
			d += x->user_item[p] &&
			     (p == x->user_off[u] || x->user_item[p] != x->user_item[p - 1]);
	return d;
}

static void fill_consumed(struct sampler *s, const struct interactions *x)
{
	uint64_t d = 0;

	for (uint32_t u = 0; u < x->n_users; u++) {
		s->cons_off[u] = d;
		for (uint64_t p = x->user_off[u]; p < x->user_off[u + 1]; p++)
			if (x->user_item[p] &&
			    (p == x->user_off[u] || x->user_item[p] != x->user_item[p - 1]))
				s->cons[d++] = x->user_item[p];
	}
	s->cons_off[x->n_users] = d;
}

/*
 * Vose's alias method in integers, so that it is exact: column j's mass
 * is w_j K (below 2^64: w_j, K < 2^32), a full column holds W.  A column
 * short of W keeps its mass and lends the rest to a column above W; when
 * none is short, every column left holds exactly W.  mass: K, stack: 2K
 * of scratch.
 */
static void build_alias(struct sampler *s, uint64_t *mass, uint32_t *stack)
{
	uint32_t K = s->n_items - 1, n_small = 0, n_large = 0;
	uint32_t *small = stack, *large = stack + K;
	uint64_t W = s->cum[K];

	for (uint32_t j = 0; j < K; j++) {
		mass[j] = (s->cum[j + 1] - s->cum[j]) * K;
		if (mass[j] < W)
			small[n_small++] = j;
		else
			large[n_large++] = j;
	}
	while (n_small && n_large) {
		uint32_t l = small[--n_small], g = large[n_large - 1];
		s->alias[2 * l] = (uint32_t)((mass[l] << 32) / W);
		s->alias[2 * l + 1] = g + 1;
		mass[g] -= W - mass[l];
		if (mass[g] < W) {
			n_large--;
			small[n_small++] = g;
		}
	}
	HR_ASSERT(!n_small); /* exact: the mass left is W per column */
	while (n_large) {
		uint32_t g = large[--n_large];
		s->alias[2 * g] = UINT32_MAX;
		s->alias[2 * g + 1] = g + 1;
	}
}

/* The running sums and the alias table of `popular`. */
static int init_popular(struct sampler *s, const struct interactions *x)
{
	uint32_t K = s->n_items - 1;
	uint64_t *mass;

	s->cum[0] = 0;
	for (uint32_t i = 1; i < s->n_items; i++)
		s->cum[i] = s->cum[i - 1] + (x->item_off[i + 1] - x->item_off[i]);
	if (!s->cum[K])
		return hr_error(HR_EINVAL, "popular sampler: no item has a train count");
	mass = malloc((size_t)K * (sizeof(*mass) + 2 * sizeof(uint32_t)));
	if (!mass)
		return hr_error(HR_ENOMEM, "out of memory for the alias table of %u items", K);
	build_alias(s, mass, (uint32_t *)(mass + K));
	free(mass);
	return 0;
}

int sampler_init(struct sampler *s, enum sampler_kind kind, const struct interactions *train_pos)
{
	const struct interactions *x = train_pos;
	size_t U = (size_t)x->n_users + 1, I = x->n_items, K = I ? I - 1 : 0;
	uint64_t d = 0;
	size_t bytes;
	char *p;
	int rc;

	memset(s, 0, sizeof(*s));
	if (kind != SAMPLER_RANDOM && kind != SAMPLER_UNCONSUMED && kind != SAMPLER_POPULAR)
		return hr_error(HR_EINVAL, "sampler kind %d is not random, unconsumed or popular",
				(int)kind);
	if (x->n_items < 3)
		return hr_error(HR_EINVAL,
				"an item vocabulary of %u ids leaves no negative beside a positive",
				x->n_items);
	if (kind == SAMPLER_UNCONSUMED)
		d = count_distinct(x);
	bytes = 4 * I;
	if (kind == SAMPLER_UNCONSUMED)
		bytes += 8 * U + 4 * d;
	if (kind == SAMPLER_POPULAR)
		bytes += 8 * I + 2 * 4 * K;
	s->mem = calloc(1, bytes);
	if (!s->mem)
		return hr_error(HR_ENOMEM, "out of memory for a %s sampler of %u items",
				sampler_kind_name(kind), x->n_items);
	s->kind = kind;
	s->n_users = x->n_users;
	s->n_items = x->n_items;
	s->n_pos = x->n;
	p = s->mem;
	/* Widest first: every array stays aligned to its type. */
#define TAKE(field, count) (s->field = (void *)p, p += (count) * sizeof(*s->field))
	if (kind == SAMPLER_UNCONSUMED)
		TAKE(cons_off, U);
	if (kind == SAMPLER_POPULAR)
		TAKE(cum, I);
	TAKE(item_prob, I);
	if (kind == SAMPLER_UNCONSUMED)
		TAKE(cons, d);
	if (kind == SAMPLER_POPULAR)
		TAKE(alias, 2 * K);
#undef TAKE
	for (uint32_t i = 0; i < s->n_items; i++) {
		double share = x->n ? (double)(x->item_off[i + 1] - x->item_off[i]) / (double)x->n :
				      0;
		float q = (float)share;
		s->item_prob[i] = q < SAMPLER_PROB_MIN ? SAMPLER_PROB_MIN :
				  q > SAMPLER_PROB_MAX ? SAMPLER_PROB_MAX :
							 q;
	}
	if (kind == SAMPLER_UNCONSUMED)
		fill_consumed(s, x);
	if (kind == SAMPLER_POPULAR) {
		rc = init_popular(s, x);
		if (rc) {
			sampler_release(s);
			return rc;
		}
	}
	return 0;
}

void sampler_release(struct sampler *s)
{
	free(s->mem);
	memset(s, 0, sizeof(*s));
}
