/*
 * mlgen_write.c - mlgen's output: the ml-1m, ml-100k and csv formats and
 * truth.dat, each file written as "name.tmp" and renamed into place; plus
 * the option helpers of the public API and mlgen_write() itself.
 */
#include "mlgen_internal.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/fspub.h"
#include "common/fsutil.h"
#include "common/rng.h"

#define MAX_USERS 10000000u
#define MAX_ITEMS 1000000u
#define MAX_RATINGS 200000000ull

/* ml-1m genre names; bit g of a genre mask is genre_names[g]. */
static const char *const genre_names[NG] = {
	"Action",      "Adventure", "Animation", "Children's", "Comedy", "Crime",
	"Documentary", "Drama",     "Fantasy",   "Film-Noir",  "Horror", "Musical",
	"Mystery",     "Romance",   "Sci-Fi",    "Thriller",   "War",    "Western",
};

/* ml-1m age code of each age bucket (struct gen.age). */
static const int age_bucket[NAGE] = {1, 18, 25, 35, 45, 50, 56};

/*
 * ml-100k occupation names, indexed by the ml-1m code they stand for
 * (0 "other", 1 "academic/educator", ... 20 "writer").  The two lists do
 * not match one to one; the odd codes got the unused names so the mapping
 * stays a bijection.
 */
static const char *const occ_names[NOCC] = {
	"other",      "educator",  "artist",    "administrator", "student",       "marketing",
	"healthcare", "executive", "librarian", "homemaker",     "entertainment", "lawyer",
	"programmer", "retired",   "salesman",  "scientist",     "doctor",        "engineer",
	"technician", "none",      "writer",
};

/* ------------------------------------------------------------------ */
/* output                                                              */

const char *const mlgen_ratings_names[3] = {"ratings.dat", "u.data", "ratings.csv"};

/*
 * A file written as "name.tmp" through stdio and published on commit
 * (common/fspub.h: synced, renamed into place, the directory synced).
 */
struct wfile {
	FILE *f; /* over pub.fd */
	char *buf;
	struct fspub pub;
};

static int wfile_open(struct wfile *w, const char *dir, const char *name)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	int rc = path_join(path, sizeof(path), dir, name);

	w->f = NULL;
	w->buf = NULL;
	if (!rc && (size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		rc = hr_error(HR_EINVAL, "path too long: '%s'", path);
	if (!rc)
		rc = fspub_begin_file(&w->pub, path, tmp);
	if (rc)
		return rc;
	w->f = fdopen(w->pub.fd, "wb");
	if (!w->f) {
		rc = hr_error(HR_EIO, "cannot open '%s': %s", w->pub.tmp, strerror(errno));
		fspub_abort(&w->pub);
		return rc;
	}
	w->buf = malloc(1 << 20);
	if (w->buf)
		setvbuf(w->f, w->buf, _IOFBF, 1 << 20);
	return 0;
}

/* Closes the stream (and with it pub.fd, which the stream owns). */
static int wfile_close(struct wfile *w)
{
	int bad = ferror(w->f) || fflush(w->f) != 0;
	int e = errno;

	if (fclose(w->f) != 0 && !bad) {
		bad = 1;
		e = errno;
	}
	w->f = NULL;
	w->pub.fd = -1;
	free(w->buf);
	w->buf = NULL;
	return bad ? hr_error(HR_EIO, "cannot write '%s': %s", w->pub.tmp, strerror(e)) : 0;
}

static void wfile_abort(struct wfile *w)
{
	if (w->f)
		wfile_close(w);
	fspub_abort(&w->pub);
}

static int wfile_commit(struct wfile *w)
{
	int rc = wfile_close(w);

	if (rc) {
		fspub_abort(&w->pub);
		return rc;
	}
	return fspub_commit(&w->pub, FSPUB_REPLACE);
}

static char *put_u64(char *p, uint64_t v)
{
	char tmp[24];
	int n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*p++ = tmp[--n];
	return p;
}

static char *put_str(char *p, const char *s)
{
	size_t n = strlen(s);

	memcpy(p, s, n);
	return p + n;
}

/*
 * A probability in %.6g style: six significant digits, trailing zeros
 * dropped, "0" and "1" bare.  Values below 1e-4 go through snprintf.
 */
static char *put_prob(char *p, double v)
{
	char digits[8];
	long long m;
	int e, nd;

	if (v <= 0)
		return put_str(p, "0");
	if (v < 1e-4)
		return p + snprintf(p, 16, "%.6g", v);
	e = (int)floor(log10(v));
	m = llround(v * pow(10.0, 5 - e));
	if (m >= 1000000) {
		m /= 10;
		e++;
	}
	if (e >= 0)
		return put_str(p, "1");
	nd = 6;
	while (nd > 0 && m % 10 == 0) {
		m /= 10;
		nd--;
	}
	for (int i = nd - 1; i >= 0; i--) {
		digits[i] = (char)('0' + m % 10);
		m /= 10;
	}
	*p++ = '0';
	*p++ = '.';
	for (int i = 0; i < -e - 1; i++)
		*p++ = '0';
	memcpy(p, digits, (size_t)nd);
	return p + nd;
}

/* Latin-1 to UTF-8; out needs 2 * strlen(in) + 1 bytes. */
static void latin1_to_utf8(const char *in, char *out)
{
	for (const unsigned char *s = (const unsigned char *)in; *s; s++) {
		if (*s < 0x80) {
			*out++ = (char)*s;
		} else {
			*out++ = (char)(0xC0 | (*s >> 6));
			*out++ = (char)(0x80 | (*s & 0x3F));
		}
	}
	*out = '\0';
}

static char *put_genres(char *p, uint32_t mask)
{
	int first = 1;

	for (int k = 0; k < NG; k++) {
		if (!(mask & (1u << k)))
			continue;
		if (!first)
			*p++ = '|';
		p = put_str(p, genre_names[k]);
		first = 0;
	}
	return p;
}

static int write_movies_1m(const struct gen *g, const char *dir)
{
	struct wfile w;
	char line[1024];
	int rc = wfile_open(&w, dir, "movies.dat");

	if (rc)
		return rc;
	for (uint32_t i = 0; i < g->n_listed; i++) {
		char *p = put_u64(line, g->movie_id[i]);
		p = put_str(p, "::");
		p = put_str(p, g->titles + g->title[i]);
		p = put_str(p, "::");
		p = put_genres(p, g->genres[i]);
		*p++ = '\n';
		fwrite(line, 1, (size_t)(p - line), w.f);
	}
	return wfile_commit(&w);
}

static char *put_zip(char *p, const struct gen *g, uint32_t u)
{
	p += snprintf(p, 8, "%05u", (unsigned)g->zip[u]);
	if (g->zip4[u] >= 0)
		p += snprintf(p, 8, "-%04d", g->zip4[u]);
	return p;
}

static int write_users_1m(const struct gen *g, const char *dir)
{
	struct wfile w;
	char line[128];
	int rc = wfile_open(&w, dir, "users.dat");

	if (rc)
		return rc;
	for (uint32_t u = 0; u < g->n_users; u++) {
		char *p = put_u64(line, (uint64_t)u + 1);
		p = put_str(p, g->sex[u] ? "::F::" : "::M::");
		p = put_u64(p, (uint64_t)age_bucket[g->age[u]]);
		p = put_str(p, "::");
		p = put_u64(p, g->occ[u]);
		p = put_str(p, "::");
		p = put_zip(p, g, u);
		*p++ = '\n';
		fwrite(line, 1, (size_t)(p - line), w.f);
	}
	return wfile_commit(&w);
}

static const char *const month_names[12] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};

static char *put_imdb_url(char *p, const char *title)
{
	static const char hex[] = "0123456789ABCDEF";

	p = put_str(p, "http://us.imdb.com/M/title-exact?");
	for (const unsigned char *s = (const unsigned char *)title; *s; s++) {
		if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') || strchr("()-.'", *s)) {
			*p++ = (char)*s;
		} else {
			*p++ = '%';
			*p++ = hex[*s >> 4];
			*p++ = hex[*s & 15];
		}
	}
	return p;
}

static int write_items_100k(const struct gen *g, const char *dir)
{
	struct wfile w;
	char line[2048];
	int rc = wfile_open(&w, dir, "u.item");

	if (rc)
		return rc;
	for (uint32_t i = 0; i < g->n_listed; i++) {
		const char *title = g->titles + g->title[i];
		char *p = put_u64(line, g->movie_id[i]);
		*p++ = '|';
		p = put_str(p, title);
		p += snprintf(p, 16, "|%02u-%s-%u||", (unsigned)g->rel_day[i],
			      month_names[g->rel_mon[i]], (unsigned)g->year[i]);
		p = put_imdb_url(p, title);
		p = put_str(p, "|0"); /* "unknown" */
		for (int k = 0; k < NG; k++)
			p = put_str(p, g->genres[i] & (1u << k) ? "|1" : "|0");
		*p++ = '\n';
		fwrite(line, 1, (size_t)(p - line), w.f);
	}
	return wfile_commit(&w);
}

static int write_users_100k(const struct gen *g, const char *dir)
{
	struct wfile w;
	char line[128];
	int rc = wfile_open(&w, dir, "u.user");

	if (rc)
		return rc;
	for (uint32_t u = 0; u < g->n_users; u++) {
		char *p = put_u64(line, (uint64_t)u + 1);
		*p++ = '|';
		p = put_u64(p, g->age_years[u]);
		p = put_str(p, g->sex[u] ? "|F|" : "|M|");
		p = put_str(p, occ_names[g->occ[u]]);
		*p++ = '|';
		p = put_zip(p, g, u);
		*p++ = '\n';
		fwrite(line, 1, (size_t)(p - line), w.f);
	}
	return wfile_commit(&w);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* u.genre ("name|index", "unknown" first) and u.occupation (sorted names). */
static int write_lists_100k(const char *dir)
{
	const char *sorted[NOCC];
	struct wfile w;
	int rc = wfile_open(&w, dir, "u.genre");

	if (rc)
		return rc;
	fprintf(w.f, "unknown|0\n");
	for (int k = 0; k < NG; k++)
		fprintf(w.f, "%s|%d\n", genre_names[k], k + 1);
	rc = wfile_commit(&w);
	if (rc)
		return rc;
	memcpy(sorted, occ_names, sizeof(sorted));
	qsort(sorted, NOCC, sizeof(sorted[0]), cmp_str);
	rc = wfile_open(&w, dir, "u.occupation");
	if (rc)
		return rc;
	for (int k = 0; k < NOCC; k++)
		fprintf(w.f, "%s\n", sorted[k]);
	return wfile_commit(&w);
}

static int write_movies_csv(const struct gen *g, const char *dir)
{
	struct wfile w;
	char line[2048], utf8[1024];
	int rc = wfile_open(&w, dir, "movies.csv");

	if (rc)
		return rc;
	fputs("movieId,title,genres\n", w.f);
	for (uint32_t i = 0; i < g->n_listed; i++) {
		char *p = put_u64(line, g->movie_id[i]);
		*p++ = ',';
		latin1_to_utf8(g->titles + g->title[i], utf8);
		if (strpbrk(utf8, ",\"")) {
			*p++ = '"';
			for (const char *s = utf8; *s; s++) {
				if (*s == '"')
					*p++ = '"';
				*p++ = *s;
			}
			*p++ = '"';
		} else {
			p = put_str(p, utf8);
		}
		*p++ = ',';
		p = put_genres(p, g->genres[i]);
		*p++ = '\n';
		fwrite(line, 1, (size_t)(p - line), w.f);
	}
	return wfile_commit(&w);
}

/*
 * The ratings file of format f and truth.dat, in the same order: users in
 * id order, each user's ratings shuffled.  truth.dat is committed first so
 * a ratings file never exists without its truth.
 */
static int write_ratings(const struct gen *g, const char *dir, enum mlgen_format f, uint64_t seed)
{
	static const char *const seps[] = {"::", "\t", ","};
	struct wfile wr, wt;
	uint32_t max_n = 0, *perm;
	const char *sep = seps[f];
	int rc;

	for (uint32_t u = 0; u < g->n_users; u++)
		if (g->n_of[u] > max_n)
			max_n = g->n_of[u];
	perm = malloc((size_t)max_n * sizeof(*perm));
	if (!perm)
		return hr_error(HR_ENOMEM, "mlgen: out of memory for the shuffle");
	rc = wfile_open(&wr, dir, mlgen_ratings_names[f]);
	if (rc) {
		free(perm);
		return rc;
	}
	rc = wfile_open(&wt, dir, "truth.dat");
	if (rc) {
		wfile_abort(&wr);
		free(perm);
		return rc;
	}
	if (f == MLGEN_CSV)
		fputs("userId,movieId,rating,timestamp\n", wr.f);
	for (uint32_t u = 0; u < g->n_users; u++) {
		struct rng r;
		uint32_t n = g->n_of[u];

		rng_seed(&r, seed, USER_STREAM(ST_SHUFFLE, u));
		for (uint32_t j = 0; j < n; j++)
			perm[j] = j;
		for (uint32_t j = n; j > 1; j--) {
			uint32_t k = rng_below(&r, j), t = perm[j - 1];
			perm[j - 1] = perm[k];
			perm[k] = t;
		}
		for (uint32_t j = 0; j < n; j++) {
			uint64_t e = g->first[u] + perm[j];
			uint32_t mid = g->movie_id[g->rated[g->ev_item[e]]];
			char line[256], *p;
			double pr[5];

			p = put_u64(line, (uint64_t)u + 1);
			p = put_str(p, sep);
			p = put_u64(p, mid);
			p = put_str(p, sep);
			*p++ = (char)('0' + g->ev_rating[e]);
			if (f == MLGEN_CSV)
				p = put_str(p, ".0");
			p = put_str(p, sep);
			p = put_u64(p, g->ev_ts[e]);
			*p++ = '\n';
			fwrite(line, 1, (size_t)(p - line), wr.f);

			p = put_u64(line, (uint64_t)u + 1);
			p = put_str(p, "::");
			p = put_u64(p, mid);
			p = put_str(p, "::");
			p = put_u64(p, g->ev_ts[e]);
			mlgen_rating_probs(g->cut, g->ev_s[e], pr);
			for (int k = 0; k < 5; k++) {
				p = put_str(p, "::");
				p = put_prob(p, pr[k]);
			}
			*p++ = '\n';
			fwrite(line, 1, (size_t)(p - line), wt.f);
		}
	}
	free(perm);
	rc = wfile_commit(&wt);
	if (rc) {
		wfile_abort(&wr);
		return rc;
	}
	return wfile_commit(&wr);
}

/* ------------------------------------------------------------------ */
/* public API                                                          */

/* Files each format writes besides truth.dat, for --force. */
static const struct {
	enum mlgen_format format;
	const char *name;
} format_files[] = {
	{MLGEN_ML1M, "ratings.dat"}, {MLGEN_ML1M, "users.dat"},      {MLGEN_ML1M, "movies.dat"},
	{MLGEN_ML100K, "u.data"},    {MLGEN_ML100K, "u.user"},       {MLGEN_ML100K, "u.item"},
	{MLGEN_ML100K, "u.genre"},   {MLGEN_ML100K, "u.occupation"}, {MLGEN_CSV, "ratings.csv"},
	{MLGEN_CSV, "movies.csv"},
};

void mlgen_defaults(struct mlgen_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->users = 6040;
	o->items = 3706;
	o->ratings = 1000209;
	o->seed = 1;
	o->interest = MLGEN_INTEREST_DEFAULT;
	o->format = MLGEN_ML1M;
	o->force = 0;
}

const char *mlgen_format_name(enum mlgen_format f)
{
	switch (f) {
	case MLGEN_ML1M: return "ml-1m";
	case MLGEN_ML100K: return "ml-100k";
	case MLGEN_CSV: return "csv";
	}
	return "unknown";
}

int mlgen_parse_format(const char *name, enum mlgen_format *f)
{
	if (!strcmp(name, "ml-1m"))
		*f = MLGEN_ML1M;
	else if (!strcmp(name, "ml-100k"))
		*f = MLGEN_ML100K;
	else if (!strcmp(name, "csv"))
		*f = MLGEN_CSV;
	else
		return hr_error(HR_EINVAL, "unknown format '%s' (use ml-1m, ml-100k or csv)", name);
	return 0;
}

int mlgen_check(const struct mlgen_opts *o)
{
	uint64_t N = o->users, M = o->items, K = o->ratings;

	if (N < 1 || N > MAX_USERS)
		return hr_error(HR_EINVAL, "--users must be between 1 and %u, not %llu", MAX_USERS,
				(unsigned long long)N);
	if (!(o->interest >= 0 && o->interest <= MLGEN_MAX_INTEREST))
		return hr_error(HR_EINVAL, "--interest must be between 0 and %g, not %g",
				MLGEN_MAX_INTEREST, o->interest);
	if (M < 1 || M > MAX_ITEMS)
		return hr_error(HR_EINVAL, "--items must be between 1 and %u, not %llu", MAX_ITEMS,
				(unsigned long long)M);
	if (K > MAX_RATINGS)
		return hr_error(HR_EINVAL, "--ratings must be at most %llu, not %llu", MAX_RATINGS,
				(unsigned long long)K);
	if (M < MIN_PER_USER)
		return hr_error(
			HR_EINVAL,
			"--items must be at least %d (every user rates %d movies), not %llu",
			MIN_PER_USER, MIN_PER_USER, (unsigned long long)M);
	if (K < MIN_PER_USER * N)
		return hr_error(HR_EINVAL,
				"--ratings must be at least 20 x --users = %llu, not %llu",
				(unsigned long long)(MIN_PER_USER * N), (unsigned long long)K);
	if (K > N * M)
		return hr_error(HR_EINVAL,
				"--ratings must be at most --users x --items = %llu, not %llu",
				(unsigned long long)(N * M), (unsigned long long)K);
	if (K < M)
		return hr_error(
			HR_EINVAL,
			"--ratings must be at least --items = %llu (every movie is rated), not %llu",
			(unsigned long long)M, (unsigned long long)K);
	if ((unsigned)o->format > MLGEN_CSV)
		return hr_error(HR_EINVAL, "unknown format %d", (int)o->format);
	return 0;
}

static int prepare_dir(const char *dir, int force, enum mlgen_format f)
{
	char path[4096];
	int rc;

	if (!path_exists(dir)) {
		if (mkdir(dir, 0777) != 0 && errno != EEXIST)
			return hr_error(HR_EIO, "cannot create directory '%s': %s", dir,
					strerror(errno));
	} else if (!path_is_dir(dir)) {
		return hr_error(HR_EIO, "'%s' exists and is not a directory", dir);
	}
	if (!force) {
		for (size_t i = 0; i < 3; i++) {
			rc = path_join(path, sizeof(path), dir, mlgen_ratings_names[i]);
			if (rc)
				return rc;
			if (path_exists(path))
				return hr_error(HR_EEXIST,
						"'%s' already exists (use --force to overwrite)",
						path);
		}
		return 0;
	}
	/*
	 * Files of another format would make readers detect the wrong one.
	 * Only names mlgen itself writes are touched.
	 */
	for (size_t i = 0; i < sizeof(format_files) / sizeof(format_files[0]); i++) {
		if (format_files[i].format == f)
			continue;
		rc = path_join(path, sizeof(path), dir, format_files[i].name);
		if (rc)
			return rc;
		if (path_exists(path) && unlink(path) != 0)
			return hr_error(HR_EIO, "cannot remove '%s': %s", path, strerror(errno));
	}
	return 0;
}

int mlgen_write(const struct mlgen_opts *o, const char *dir)
{
	struct gen g;
	int rc = mlgen_check(o);

	if (rc)
		return rc;
	rc = prepare_dir(dir, o->force, o->format);
	if (rc)
		return rc;
	rc = mlgen_generate(o, &g);
	if (rc)
		goto out;
	switch (o->format) {
	case MLGEN_ML1M:
		rc = write_movies_1m(&g, dir);
		if (!rc)
			rc = write_users_1m(&g, dir);
		break;
	case MLGEN_ML100K:
		rc = write_items_100k(&g, dir);
		if (!rc)
			rc = write_users_100k(&g, dir);
		if (!rc)
			rc = write_lists_100k(dir);
		break;
	case MLGEN_CSV: rc = write_movies_csv(&g, dir); break;
	}
	if (!rc)
		rc = write_ratings(&g, dir, o->format, o->seed);
out:
	mlgen_gen_release(&g);
	return rc;
}
