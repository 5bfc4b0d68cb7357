/*
 * test_mlgen.c - the synthetic MovieLens generator: file shapes, data
 * invariants, planted-model truth, oracle AUC band, determinism, formats,
 * option errors.  One small data set (200 users, 300 movies, 20000 ratings)
 * is generated once per group into a mkdtemp directory, removed at the end.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/fsutil.h"
#include "ingest/mlgen.h"

#define N_USERS 200
#define N_ITEMS 300
#define N_RATINGS 20000
#define N_LISTED 314 /* round(300 * 3883 / 3706) */
#define SEED 5

struct fixture {
	char root[256];
	char ml1m[300]; /* the shared ml-1m data set */
};

static struct mlgen_opts small_opts(uint64_t seed, enum mlgen_format f)
{
	struct mlgen_opts o;

	mlgen_defaults(&o);
	o.users = N_USERS;
	o.items = N_ITEMS;
	o.ratings = N_RATINGS;
	o.seed = seed;
	o.format = f;
	return o;
}

static void sub(char *out, size_t n, const char *dir, const char *name)
{
	assert_int_equal(path_join(out, n, dir, name), 0);
}

/* Whole file, NUL-terminated; *len without the NUL.  Caller frees. */
static char *slurp(const char *dir, const char *name, size_t *len)
{
	char path[512];
	FILE *f;
	long n;
	char *buf;

	sub(path, sizeof(path), dir, name);
	f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	if (len)
		*len = (size_t)n;
	return buf;
}

static size_t count_lines(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	const char *tmp = getenv("TMPDIR");
	struct mlgen_opts o = small_opts(SEED, MLGEN_ML1M);

	if (!fx)
		return -1;
	snprintf(fx->root, sizeof(fx->root), "%s/test_mlgen.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(fx->root))
		return -1;
	snprintf(fx->ml1m, sizeof(fx->ml1m), "%s/ml1m", fx->root);
	if (mlgen_write(&o, fx->ml1m) != 0) {
		fprintf(stderr, "mlgen_write: %s\n", hr_errmsg());
		return -1;
	}
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	int rc = remove_tree(fx->root);

	free(fx);
	return rc;
}

static void test_line_counts(void **state)
{
	struct fixture *fx = *state;
	static const struct {
		const char *name;
		size_t lines;
	} want[] = {
		{"ratings.dat", N_RATINGS},
		{"truth.dat", N_RATINGS},
		{"users.dat", N_USERS},
		{"movies.dat", N_LISTED},
	};

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		char *s = slurp(fx->ml1m, want[i].name, NULL);
		assert_int_equal(count_lines(s), want[i].lines);
		free(s);
	}
}

/* Users grouped in id order, >= 20 each, no repeats, ratings 1..5, shares. */
static void test_ratings_invariants(void **state)
{
	struct fixture *fx = *state;
	static const double target[5] = {0.056, 0.108, 0.261, 0.349, 0.226};
	char *s = slurp(fx->ml1m, "ratings.dat", NULL), *p = s;
	unsigned per_user[N_USERS + 1] = {0}, last_user = 0;
	size_t stars[6] = {0}, n = 0, distinct = 0;
	/* movie ids stay below 2 * N_LISTED (gaps are rare) */
	uint8_t *seen = calloc((size_t)(N_USERS + 1) * 2 * N_LISTED, 1);
	uint8_t movie_rated[2 * N_LISTED] = {0};

	assert_non_null(seen);
	while (*p) {
		unsigned u, m, r, t;
		int used = 0;
		assert_int_equal(sscanf(p, "%u::%u::%u::%u\n%n", &u, &m, &r, &t, &used), 4);
		assert_true(used > 0);
		p += used;
		assert_true(u >= 1 && u <= N_USERS);
		assert_true(u >= last_user);
		last_user = u;
		assert_true(m >= 1 && m < 2 * N_LISTED);
		assert_true(r >= 1 && r <= 5);
		assert_true(t >= 956703932u && t <= 1046454590u);
		assert_int_equal(seen[(size_t)u * 2 * N_LISTED + m], 0);
		seen[(size_t)u * 2 * N_LISTED + m] = 1;
		distinct += !movie_rated[m];
		movie_rated[m] = 1;
		per_user[u]++;
		stars[r]++;
		n++;
	}
	assert_int_equal(n, N_RATINGS);
	assert_int_equal(distinct, N_ITEMS);
	for (unsigned u = 1; u <= N_USERS; u++)
		assert_true(per_user[u] >= 20 && per_user[u] <= N_ITEMS);
	for (int k = 1; k <= 5; k++) {
		double share = (double)stars[k] / (double)n;
		if (fabs(share - target[k - 1]) > 0.025)
			fail_msg("rating %d share %.4f, want %.3f +- 0.025", k, share,
				 target[k - 1]);
	}
	free(seen);
	free(s);
}

/* truth.dat follows ratings.dat line for line; probabilities sum to 1. */
static void test_truth_matches(void **state)
{
	struct fixture *fx = *state;
	char *rs = slurp(fx->ml1m, "ratings.dat", NULL), *rp = rs;
	char *ts = slurp(fx->ml1m, "truth.dat", NULL), *tp = ts;
	size_t n = 0;

	while (*rp) {
		unsigned u, m, r, t, tu, tm, tt;
		double pr[5], sum = 0.0;
		int ru = 0, tused = 0;
		assert_int_equal(sscanf(rp, "%u::%u::%u::%u\n%n", &u, &m, &r, &t, &ru), 4);
		assert_int_equal(sscanf(tp, "%u::%u::%u::%lf::%lf::%lf::%lf::%lf\n%n", &tu, &tm,
					&tt, &pr[0], &pr[1], &pr[2], &pr[3], &pr[4], &tused),
				 8);
		rp += ru;
		tp += tused;
		assert_int_equal(u, tu);
		assert_int_equal(m, tm);
		assert_int_equal(t, tt);
		for (int k = 0; k < 5; k++) {
			assert_true(pr[k] >= 0.0 && pr[k] <= 1.0);
			sum += pr[k];
		}
		if (fabs(sum - 1.0) > 2e-5)
			fail_msg("truth line %zu sums to %.8f", n + 1, sum);
		n++;
	}
	assert_int_equal(*tp, '\0');
	assert_int_equal(n, N_RATINGS);
	free(rs);
	free(ts);
}

static void test_oracle_band(void **state)
{
	struct fixture *fx = *state;
	double auc = 0.0, pos_rate = 0.0;
	size_t rows = 0;

	assert_int_equal(mlgen_oracle(fx->ml1m, 4, 2, &auc, &rows, &pos_rate), 0);
	if (auc < 0.80 || auc > 0.90)
		fail_msg("oracle auc %.4f outside [0.80, 0.90]", auc);
	/* ratings of 3 are dropped: about 74% of lines stay, ~78% positive */
	assert_true(rows > N_RATINGS * 6 / 10 && rows < N_RATINGS * 9 / 10);
	assert_true(pos_rate > 0.70 && pos_rate < 0.85);

	/* another label rule still scores well above chance */
	assert_int_equal(mlgen_oracle(fx->ml1m, 5, 3, &auc, &rows, &pos_rate), 0);
	assert_true(auc > 0.70 && auc < 1.0);
}

static int same_file(const char *d1, const char *d2, const char *name)
{
	size_t n1, n2;
	char *a = slurp(d1, name, &n1), *b = slurp(d2, name, &n2);
	int same = n1 == n2 && memcmp(a, b, n1) == 0;

	free(a);
	free(b);
	return same;
}

static void test_deterministic(void **state)
{
	struct fixture *fx = *state;
	static const char *const files[] = {"ratings.dat", "truth.dat", "users.dat", "movies.dat"};
	char again[300], other[300];
	struct mlgen_opts o = small_opts(SEED, MLGEN_ML1M);

	snprintf(again, sizeof(again), "%s/again", fx->root);
	snprintf(other, sizeof(other), "%s/other", fx->root);
	assert_int_equal(mlgen_write(&o, again), 0);
	o.seed = SEED + 1;
	assert_int_equal(mlgen_write(&o, other), 0);
	for (size_t i = 0; i < 4; i++)
		assert_true(same_file(fx->ml1m, again, files[i]));
	assert_false(same_file(fx->ml1m, other, "ratings.dat"));
	assert_false(same_file(fx->ml1m, other, "movies.dat"));
	assert_int_equal(remove_tree(again), 0);
	assert_int_equal(remove_tree(other), 0);
}

/*
 * The interest boost moves ratings, not picks: the same users, movies and
 * times in the same order at any strength; without it the oracle loses
 * what the recent history tells, with a strong one it gains.
 */
static void test_interest(void **state)
{
	struct fixture *fx = *state;
	char none[300], strong[300];
	struct mlgen_opts o = small_opts(SEED, MLGEN_ML1M);
	double a_none, a_default, a_strong, pr;
	size_t rows;
	char *s0, *s1, *p0, *p1;
	size_t n = 0;

	snprintf(none, sizeof(none), "%s/interest0", fx->root);
	snprintf(strong, sizeof(strong), "%s/interest3", fx->root);
	o.interest = 0;
	assert_int_equal(mlgen_write(&o, none), 0);
	o.interest = 3;
	assert_int_equal(mlgen_write(&o, strong), 0);
	s0 = p0 = slurp(none, "ratings.dat", NULL);
	s1 = p1 = slurp(strong, "ratings.dat", NULL);
	while (*p0 && *p1) {
		unsigned u0, m0, r0, t0, u1, m1, r1, t1;
		int k0 = 0, k1 = 0;
		assert_int_equal(sscanf(p0, "%u::%u::%u::%u\n%n", &u0, &m0, &r0, &t0, &k0), 4);
		assert_int_equal(sscanf(p1, "%u::%u::%u::%u\n%n", &u1, &m1, &r1, &t1, &k1), 4);
		assert_true(u0 == u1 && m0 == m1 && t0 == t1);
		p0 += k0;
		p1 += k1;
		n++;
	}
	assert_true(*p0 == '\0' && *p1 == '\0');
	assert_int_equal(n, N_RATINGS);
	free(s0);
	free(s1);

	assert_int_equal(mlgen_oracle(none, 4, 2, &a_none, &rows, &pr), 0);
	assert_int_equal(mlgen_oracle(fx->ml1m, 4, 2, &a_default, &rows, &pr), 0);
	assert_int_equal(mlgen_oracle(strong, 4, 2, &a_strong, &rows, &pr), 0);
	if (!(a_none < a_default && a_default + 0.01 < a_strong))
		fail_msg("oracle auc: interest 0 %.4f, 0.4 %.4f, 3 %.4f", a_none, a_default,
			 a_strong);
	assert_int_equal(remove_tree(none), 0);
	assert_int_equal(remove_tree(strong), 0);
}

/* ml-100k and csv write their files, hold the same data, and --force. */
static void test_formats(void **state)
{
	struct fixture *fx = *state;
	static const char *const k100[] = {"u.data",  "u.user",       "u.item",
					   "u.genre", "u.occupation", "truth.dat"};
	static const char *const csv[] = {"ratings.csv", "movies.csv", "truth.dat"};
	char d100[300], dcsv[300], path[512];
	struct mlgen_opts o = small_opts(SEED, MLGEN_ML100K);
	double a1, a2, a3, pr;
	size_t r1, r2, r3;
	char *s;

	snprintf(d100, sizeof(d100), "%s/ml100k", fx->root);
	snprintf(dcsv, sizeof(dcsv), "%s/csv", fx->root);
	assert_int_equal(mlgen_write(&o, d100), 0);
	o.format = MLGEN_CSV;
	assert_int_equal(mlgen_write(&o, dcsv), 0);
	for (size_t i = 0; i < sizeof(k100) / sizeof(k100[0]); i++) {
		sub(path, sizeof(path), d100, k100[i]);
		assert_true(path_exists(path));
	}
	for (size_t i = 0; i < sizeof(csv) / sizeof(csv[0]); i++) {
		sub(path, sizeof(path), dcsv, csv[i]);
		assert_true(path_exists(path));
	}
	assert_true(same_file(fx->ml1m, d100, "truth.dat"));
	assert_true(same_file(fx->ml1m, dcsv, "truth.dat"));

	s = slurp(dcsv, "ratings.csv", NULL);
	assert_int_equal(strncmp(s, "userId,movieId,rating,timestamp\n", 32), 0);
	assert_int_equal(count_lines(s), N_RATINGS + 1);
	assert_non_null(strstr(s, ".0,"));
	free(s);
	s = slurp(dcsv, "movies.csv", NULL);
	assert_int_equal(strncmp(s, "movieId,title,genres\n", 21), 0);
	assert_int_equal(count_lines(s), N_LISTED + 1);
	free(s);
	s = slurp(d100, "u.item", NULL);
	assert_int_equal(count_lines(s), N_LISTED);
	free(s);

	assert_int_equal(mlgen_oracle(fx->ml1m, 4, 2, &a1, &r1, &pr), 0);
	assert_int_equal(mlgen_oracle(d100, 4, 2, &a2, &r2, &pr), 0);
	assert_int_equal(mlgen_oracle(dcsv, 4, 2, &a3, &r3, &pr), 0);
	assert_true(a1 == a2 && a1 == a3);
	assert_true(r1 == r2 && r1 == r3);

	/* A second run needs --force, which also clears the other format. */
	o.format = MLGEN_ML1M;
	assert_int_equal(mlgen_write(&o, dcsv), HR_EEXIST);
	o.force = 1;
	assert_int_equal(mlgen_write(&o, dcsv), 0);
	sub(path, sizeof(path), dcsv, "ratings.csv");
	assert_false(path_exists(path));
	sub(path, sizeof(path), dcsv, "movies.csv");
	assert_false(path_exists(path));
	assert_true(same_file(fx->ml1m, dcsv, "ratings.dat"));
	assert_int_equal(remove_tree(d100), 0);
	assert_int_equal(remove_tree(dcsv), 0);
}

static void test_bad_options(void **state)
{
	struct fixture *fx = *state;
	struct mlgen_opts o = small_opts(1, MLGEN_ML1M);
	enum mlgen_format f;

	(void)fx;
	assert_int_equal(mlgen_check(&o), 0);
	o.users = 0;
	assert_int_equal(mlgen_check(&o), HR_EINVAL);
	o = small_opts(1, MLGEN_ML1M);
	o.items = 0;
	assert_int_equal(mlgen_check(&o), HR_EINVAL);
	o.items = 19; /* nobody could rate 20 movies */
	o.ratings = (uint64_t)o.users * 19;
	assert_int_equal(mlgen_check(&o), HR_EINVAL);
	o = small_opts(1, MLGEN_ML1M);
	o.ratings = 20 * N_USERS - 1;
	assert_int_equal(mlgen_check(&o), HR_EINVAL);
	assert_non_null(strstr(hr_errmsg(), "--ratings"));
	o.ratings = (uint64_t)N_USERS * N_ITEMS + 1;
	assert_int_equal(mlgen_check(&o), HR_EINVAL);
	o.ratings = (uint64_t)N_USERS * N_ITEMS; /* everyone rates everything */
	assert_int_equal(mlgen_check(&o), 0);
	o = small_opts(1, MLGEN_ML1M);
	o.users = 1;
	o.ratings = 20; /* fewer ratings than movies: some would go unrated */
	assert_int_equal(mlgen_check(&o), HR_EINVAL);
	o.format = (enum mlgen_format)7;
	o.ratings = N_ITEMS;
	assert_int_equal(mlgen_check(&o), HR_EINVAL);
	o = small_opts(1, MLGEN_ML1M);
	o.interest = -0.1;
	assert_int_equal(mlgen_check(&o), HR_EINVAL);
	assert_non_null(strstr(hr_errmsg(), "--interest"));
	o.interest = MLGEN_MAX_INTEREST + 0.1;
	assert_int_equal(mlgen_check(&o), HR_EINVAL);
	o.interest = NAN;
	assert_int_equal(mlgen_check(&o), HR_EINVAL);
	o.interest = MLGEN_MAX_INTEREST;
	assert_int_equal(mlgen_check(&o), 0);

	o = small_opts(1, MLGEN_ML1M);
	o.ratings = 1;
	assert_int_equal(mlgen_write(&o, fx->root), HR_EINVAL);
	assert_int_equal(mlgen_parse_format("ml-20m", &f), HR_EINVAL);
	assert_int_equal(mlgen_parse_format("ml-100k", &f), 0);
	assert_int_equal(f, MLGEN_ML100K);
}

/* Everyone rates everything: the sampler must drain every tree cleanly. */
static void test_dense_extreme(void **state)
{
	struct fixture *fx = *state;
	struct mlgen_opts o = small_opts(3, MLGEN_ML1M);
	char dir[300];
	char *s;

	o.users = 30;
	o.items = 25;
	o.ratings = 30 * 25;
	snprintf(dir, sizeof(dir), "%s/dense", fx->root);
	assert_int_equal(mlgen_write(&o, dir), 0);
	s = slurp(dir, "ratings.dat", NULL);
	assert_int_equal(count_lines(s), 750);
	free(s);
	assert_int_equal(remove_tree(dir), 0);
}

static void test_oracle_errors(void **state)
{
	struct fixture *fx = *state;
	char dir[300], path[512];
	double auc = -1.0, pr;
	size_t rows;
	FILE *f;

	snprintf(dir, sizeof(dir), "%s/broken", fx->root);
	assert_int_equal(mlgen_oracle(fx->ml1m, 2, 2, &auc, &rows, &pr), HR_EINVAL);
	assert_int_equal(mlgen_oracle(fx->ml1m, 6, 2, &auc, &rows, &pr), HR_EINVAL);
	assert_int_equal(mlgen_oracle(fx->ml1m, 4, 0, &auc, &rows, &pr), HR_EINVAL);
	assert_int_equal(mlgen_oracle(fx->root, 4, 2, &auc, &rows, &pr), HR_ENOENT);

	assert_int_equal(mkdir(dir, 0777), 0);
	sub(path, sizeof(path), dir, "ratings.dat");
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("1::10::5::978300760\n1::11::1::978300761\n", f);
	fclose(f);
	assert_int_equal(mlgen_oracle(dir, 4, 2, &auc, &rows, &pr), HR_ENOENT);

	sub(path, sizeof(path), dir, "truth.dat");
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("1::10::978300760::0.1::0.1::0.2::0.3::0.3\n", f);
	fclose(f);
	assert_int_equal(mlgen_oracle(dir, 4, 2, &auc, &rows, &pr), HR_EFORMAT);

	f = fopen(path, "w");
	assert_non_null(f);
	fputs("1::10::978300760::0.1::0.1::0.2::0.3::0.3\n"
	      "1::11::978300761::0.1::x::0.2::0.3::0.3\n",
	      f);
	fclose(f);
	assert_int_equal(mlgen_oracle(dir, 4, 2, &auc, &rows, &pr), HR_EPARSE);
	assert_non_null(strstr(hr_errmsg(), "truth.dat:2"));

	f = fopen(path, "w");
	assert_non_null(f);
	fputs("1::10::978300760::0.1::0.1::0.2::0.3::0.3\n"
	      "1::12::978300761::0.5::0.2::0.1::0.1::0.1\n",
	      f);
	fclose(f);
	assert_int_equal(mlgen_oracle(dir, 4, 2, &auc, &rows, &pr), HR_EFORMAT);

	f = fopen(path, "w");
	assert_non_null(f);
	fputs("1::10::978300760::0.1::0.1::0.2::0.3::0.3\n"
	      "1::11::978300761::0.5::0.2::0.1::0.1::0.1\n",
	      f);
	fclose(f);
	assert_int_equal(mlgen_oracle(dir, 4, 2, &auc, &rows, &pr), 0);
	assert_true(auc == 1.0);
	assert_int_equal(rows, 2);
	assert_int_equal(remove_tree(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_counts),   cmocka_unit_test(test_ratings_invariants),
		cmocka_unit_test(test_truth_matches), cmocka_unit_test(test_oracle_band),
		cmocka_unit_test(test_deterministic), cmocka_unit_test(test_formats),
		cmocka_unit_test(test_bad_options),   cmocka_unit_test(test_dense_extreme),
		cmocka_unit_test(test_oracle_errors), cmocka_unit_test(test_interest),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
