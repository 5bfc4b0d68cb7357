/*
 * test_readers.c - the MovieLens readers (ingest/readers.h, read_util.h).
 *
 * Parsers are fed exact-length heap copies of the fixtures (no trailing
 * NUL), so the ASan build catches any read past the buffer.  Directory
 * tests write fixtures into a mkdtemp() directory removed afterwards.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "ingest/readers.h"

typedef int (*parse_fn)(struct dataset *ds, const char *buf, size_t len, const char *fname,
			struct line_errors *le);

/* Runs fn on an exact-length heap copy of [text, text + len). */
static int run_n(parse_fn fn, struct dataset *ds, const char *fname, const char *text, size_t len,
		 struct line_errors *le)
{
	char *b = NULL;
	int rc;

	if (len) {
		b = malloc(len);
		assert_non_null(b);
		memcpy(b, text, len);
	}
	rc = fn(ds, b, len, fname, le);
	free(b);
	return rc;
}

static int run(parse_fn fn, struct dataset *ds, const char *fname, const char *text,
	       struct line_errors *le)
{
	return run_n(fn, ds, fname, text, strlen(text), le);
}

static int genre_bit(const struct dataset *ds, const char *name)
{
	for (int g = 0; g < ds->n_genres; g++)
		if (!strcmp(ds->genre_names[g], name))
			return 1 << g;
	fail_msg("genre '%s' not interned", name);
	return 0;
}

/* ---- fixtures ---------------------------------------------------------- */

static const char ml1m_users[] = "1::F::1::10::48067\n"
				 "2::M::56::16::70072\n"
				 "3::M::25::07::55117-1234\n";

static const char ml1m_movies[] = "1::Toy Story (1995)::Animation|Children's|Comedy\n"
				  "2::Mis\xE9rables, Les (1995)::Drama|Musical\n"
				  "3::Star Wars: Episode IV - A New Hope (1977)::Action|Sci-Fi\n"
				  "4::Untitled::(no genres listed)\n"
				  "10::Title (with) parens (19x5)::Drama\n";

static const char ml1m_ratings[] = "1::1::5::978300760\n"
				   "1::2::3::978302109\n"
				   "2::10::1::978301968\n"
				   "3::4::4::4294967295\n";

static const char k_users[] = "1|24|M|technician|85711\n"
			      "2|53|F|other|94043\n"
			      "3|17|M|writer|T8H1N\n"
			      "4|56|M|retired|00000\n"
			      "5|50|F|educator|1\n"
			      "6|49|F|educator|1\n"
			      "7|25|F|educator|1\n";

static const char k_items[] =
	"1|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
	"2|Mis\xE9rables|1-Mar-1998|||0|0|0|0|0|0|0|0|1|0|0|0|0|0|0|0|0|0|0\n"
	"267|unknown||||1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n";

static const char k_data[] = "1\t1\t5\t874965758\n"
			     "3\t267\t2\t876893171\n"
			     "2\t2\t4\t878542960\n";

static const char csv_movies[] =
	"movieId,title,genres\n"
	"1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n"
	"11,\"American President, The (1995)\",Comedy|Drama|Romance\n"
	"12,\"Dracula: Dead and Loving It \"\"Mel Brooks\"\" (1995)\",Comedy|Horror\n"
	"13,Am\xC3\xA9lie (2001) ,Comedy|Romance\n"
	"14,No Year,(no genres listed)\n";

static const char csv_ratings[] = "userId,movieId,rating,timestamp\n"
				  "1,1,4.0,964982703\n"
				  "1,11,3.5,964981247\n"
				  "7,12,5,964982224\n"
				  "5,13,0.5,964983815\n"
				  "7,14,4.50,964982931\n";

static void ml1m_base(struct dataset *ds)
{
	assert_int_equal(run(ml1m_parse_users, ds, "users.dat", ml1m_users, NULL), 0);
	assert_int_equal(run(ml1m_parse_movies, ds, "movies.dat", ml1m_movies, NULL), 0);
}

static void k_base(struct dataset *ds)
{
	assert_int_equal(run(ml100k_parse_users, ds, "u.user", k_users, NULL), 0);
	assert_int_equal(run(ml100k_parse_items, ds, "u.item", k_items, NULL), 0);
}

static void csv_base(struct dataset *ds)
{
	assert_int_equal(run(csv_parse_movies, ds, "movies.csv", csv_movies, NULL), 0);
}

/* ---- ml-1m ------------------------------------------------------------- */

static void t_ml1m_valid(void **state)
{
	struct dataset ds;
	(void)state;

	assert_int_equal(dataset_init(&ds), 0);
	ml1m_base(&ds);
	assert_int_equal(run(ml1m_parse_ratings, &ds, "ratings.dat", ml1m_ratings, NULL), 0);

	assert_int_equal(ds.n_users, 3);
	assert_int_equal(ds.users[0].raw_id, 1);
	assert_int_equal(ds.users[0].gender, 'F');
	assert_int_equal(ds.users[0].age, 1);
	assert_string_equal(ds.users[0].occupation, "10");
	assert_string_equal(ds.users[0].zip, "48067");
	assert_int_equal(ds.users[1].age, 56);
	assert_string_equal(ds.users[2].occupation, "7");
	assert_string_equal(ds.users[2].zip, "55117-1234");

	assert_int_equal(ds.n_items, 5);
	assert_string_equal(dataset_title(&ds, 0), "Toy Story (1995)");
	assert_int_equal(ds.items[0].year, 1995);
	assert_int_equal(ds.items[0].genres, genre_bit(&ds, "Animation") |
						     genre_bit(&ds, "Children's") |
						     genre_bit(&ds, "Comedy"));
	assert_string_equal(dataset_title(&ds, 1), "Mis\xC3\xA9rables, Les (1995)");
	assert_int_equal(ds.items[1].genres, genre_bit(&ds, "Drama") | genre_bit(&ds, "Musical"));
	assert_string_equal(dataset_title(&ds, 2), "Star Wars: Episode IV - A New Hope (1977)");
	assert_int_equal(ds.items[2].year, 1977);
	assert_int_equal(ds.items[3].year, 0);
	assert_int_equal(ds.items[3].genres, 0);
	assert_int_equal(ds.items[4].raw_id, 10);
	assert_int_equal(ds.items[4].year, 0);
	assert_int_equal(ds.n_genres, 7);

	assert_int_equal(ds.n_ratings, 4);
	assert_int_equal(ds.ratings[0].user, 0);
	assert_int_equal(ds.ratings[0].item, 0);
	assert_int_equal(ds.ratings[0].stars2, 10);
	assert_int_equal(ds.ratings[0].ts, 978300760);
	assert_int_equal(ds.ratings[2].user, 1);
	assert_int_equal(ds.ratings[2].item, 4);
	assert_int_equal(ds.ratings[2].stars2, 2);
	assert_int_equal(ds.ratings[3].ts, UINT32_MAX);
	assert_int_equal(ds.n_skipped, 0);
	assert_true(rd_dataset_valid(&ds));
	dataset_release(&ds);
}

static void t_ml1m_line_ends(void **state)
{
	struct dataset ds;
	(void)state;

	assert_int_equal(dataset_init(&ds), 0);
	/* CRLF, blank lines (also "\r\n" alone) anywhere, no final newline. */
	assert_int_equal(run(ml1m_parse_users, &ds, "users.dat",
			     "\r\n1::F::1::10::48067\r\n\n2::M::56::16::70072", NULL),
			 0);
	assert_int_equal(run(ml1m_parse_movies, &ds, "movies.dat",
			     "1::Toy Story (1995)::Comedy\r\n2::Heat (1995)::Action|Crime", NULL),
			 0);
	assert_int_equal(run(ml1m_parse_ratings, &ds, "ratings.dat",
			     "1::1::5::978300760\r\n\r\n2::2::3::978302109\r\n\n", NULL),
			 0);
	assert_int_equal(ds.n_users, 2);
	assert_string_equal(ds.users[0].zip, "48067");
	assert_string_equal(ds.users[1].zip, "70072");
	assert_string_equal(dataset_title(&ds, 0), "Toy Story (1995)");
	assert_int_equal(ds.items[1].genres, genre_bit(&ds, "Action") | genre_bit(&ds, "Crime"));
	assert_int_equal(ds.n_ratings, 2);
	assert_int_equal(ds.ratings[1].ts, 978302109);
	dataset_release(&ds);
}

/* One malformed input and the exact failure it must give. */
struct bad_case {
	parse_fn fn;
	const char *fname;
	void (*base)(struct dataset *ds); /* what must be loaded first */
	const char *text;
	size_t len; /* 0: strlen(text) */
	int code;
	const char *msg;
};

static void check_bad(const struct bad_case *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct dataset ds;
		int rc;

		assert_int_equal(dataset_init(&ds), 0);
		if (c[i].base)
			c[i].base(&ds);
		hr_error_clear();
		rc = run_n(c[i].fn, &ds, c[i].fname, c[i].text,
			   c[i].len ? c[i].len : strlen(c[i].text), NULL);
		if (rc != c[i].code || strcmp(hr_errmsg(), c[i].msg))
			fail_msg("case %zu: got %d '%s', want %d '%s'", i, rc, hr_errmsg(),
				 c[i].code, c[i].msg);
		dataset_release(&ds);
	}
}

#define NCASES(a) (sizeof(a) / sizeof(a[0]))

static void t_ml1m_bad(void **state)
{
	static const struct bad_case cases[] = {
		/* users.dat */
		{ml1m_parse_users, "users.dat", NULL, "", 0, HR_EFORMAT,
		 "'users.dat' holds no users"},
		{ml1m_parse_users, "users.dat", NULL, "\n\r\n", 0, HR_EFORMAT,
		 "'users.dat' holds no users"},
		{ml1m_parse_users, "users.dat", NULL, "1::F::1::10::48067\n2::F::1::10\n\n3::", 0,
		 HR_EPARSE, "users.dat:2: expected 5 fields separated by '::', found 4"},
		{ml1m_parse_users, "users.dat", NULL, "1::F::1::10::48067::x", 0, HR_EPARSE,
		 "users.dat:1: expected 5 fields separated by '::', found 6"},
		{ml1m_parse_users, "users.dat", NULL, "1::X::1::10::48067", 0, HR_EPARSE,
		 "users.dat:1: gender 'X' is not M or F"},
		{ml1m_parse_users, "users.dat", NULL, "1::F::19::10::48067", 0, HR_EPARSE,
		 "users.dat:1: age '19' is not an ml-1m age group (1, 18, 25, 35, 45, 50, 56)"},
		{ml1m_parse_users, "users.dat", NULL, "\n\n1::F::-3::10::48067", 0, HR_EPARSE,
		 "users.dat:3: age '-3' is not a valid number"},
		{ml1m_parse_users, "users.dat", NULL, "1::F::1::21::48067", 0, HR_EPARSE,
		 "users.dat:1: occupation '21' out of range (0..20)"},
		{ml1m_parse_users, "users.dat", NULL, "1::F::1::10::", 0, HR_EPARSE,
		 "users.dat:1: zip code is empty"},
		{ml1m_parse_users, "users.dat", NULL, "1::F::1::10::1234567890123456", 0, HR_EPARSE,
		 "users.dat:1: zip code '1234567890123456' longer than 15 bytes"},
		{ml1m_parse_users, "users.dat", NULL, "1::F::1::10::48 67", 0, HR_EPARSE,
		 "users.dat:1: zip code '48 67' is not printable ASCII without blanks"},
		{ml1m_parse_users, "users.dat", NULL, "1::F::1::10::48067\r\n1::M::1::10::48067", 0,
		 HR_EPARSE, "users.dat:2: duplicate user id 1"},
		{ml1m_parse_users, "users.dat", NULL,
		 "1::F::1::10::480\0"
		 "7",
		 18, HR_EPARSE, "users.dat:1: line contains a NUL byte"},
		{ml1m_parse_users, "users.dat", NULL, "4294967296::F::1::10::48067", 0, HR_EPARSE,
		 "users.dat:1: user id '4294967296' out of range (0..4294967295)"},
		/* movies.dat */
		{ml1m_parse_movies, "movies.dat", NULL, "", 0, HR_EFORMAT,
		 "'movies.dat' holds no movies"},
		{ml1m_parse_movies, "movies.dat", NULL, "1::Toy Story (1995)\n", 0, HR_EPARSE,
		 "movies.dat:1: expected 3 fields separated by '::', found 2"},
		{ml1m_parse_movies, "movies.dat", NULL, "1:::Drama", 0, HR_EPARSE,
		 "movies.dat:1: expected 3 fields separated by '::', found 2"},
		{ml1m_parse_movies, "movies.dat", NULL, "Toy Story", 0, HR_EPARSE,
		 "movies.dat:1: expected 3 fields separated by '::', found 1"},
		{ml1m_parse_movies, "movies.dat", NULL, "x1::T::Drama", 0, HR_EPARSE,
		 "movies.dat:1: movie id 'x1' is not a valid number"},
		{ml1m_parse_movies, "movies.dat", NULL, "1::A::Drama\n1::B::Drama", 0, HR_EPARSE,
		 "movies.dat:2: duplicate movie id 1"},
		{ml1m_parse_movies, "movies.dat", NULL, "1::T::", 0, HR_EPARSE,
		 "movies.dat:1: genres field is empty"},
		{ml1m_parse_movies, "movies.dat", NULL, "1::T::Action||Drama", 0, HR_EPARSE,
		 "movies.dat:1: empty genre name in 'Action||Drama'"},
		{ml1m_parse_movies, "movies.dat", NULL,
		 "1::T::Action|0123456789012345678901234567890X", 0, HR_EPARSE,
		 "movies.dat:1: genre name '0123456789012345678901234567890X' longer than 31 bytes"},
		{ml1m_parse_movies, "movies.dat", NULL, "1::T\0::Drama", 12, HR_EPARSE,
		 "movies.dat:1: line contains a NUL byte"},
		/* ratings.dat */
		{ml1m_parse_ratings, "ratings.dat", ml1m_base, "", 0, HR_EFORMAT,
		 "'ratings.dat' holds no ratings"},
		{ml1m_parse_ratings, "ratings.dat", ml1m_base, "\r\n\r\n", 0, HR_EFORMAT,
		 "'ratings.dat' holds no ratings"},
		{ml1m_parse_ratings, "ratings.dat", ml1m_base, "1::1::5::978300760\n1::2::3\n", 0,
		 HR_EPARSE, "ratings.dat:2: expected 4 fields separated by '::', found 3"},
		{ml1m_parse_ratings, "ratings.dat", ml1m_base, "1::2::3::4::5", 0, HR_EPARSE,
		 "ratings.dat:1: expected 4 fields separated by '::', found 5"},
		{ml1m_parse_ratings, "ratings.dat", ml1m_base, "\n\n1::1:4::5\r\n", 0, HR_EPARSE,
		 "ratings.dat:3: expected 4 fields separated by '::', found 3"},
		{ml1m_parse_ratings, "ratings.dat", ml1m_base, "1::1::7::978300760", 0, HR_EPARSE,
		 "ratings.dat:1: rating '7' out of range (1..5)"},
		{ml1m_parse_ratings, "ratings.dat", ml1m_base, "1::1::0::978300760", 0, HR_EPARSE,
		 "ratings.dat:1: rating '0' out of range (1..5)"},
		{ml1m_parse_ratings, "ratings.dat", ml1m_base, "1::1::99999999999::978300760", 0,
		 HR_EPARSE, "ratings.dat:1: rating '99999999999' out of range (1..5)"},
		{ml1m_parse_ratings, "ratings.dat", ml1m_base, "1::1::-1::978300760", 0, HR_EPARSE,
		 "ratings.dat:1: rating '-1' is not a valid number"},
		{ml1m_parse_ratings, "ratings.dat", ml1m_base, "1::1::4.5::978300760", 0, HR_EPARSE,
		 "ratings.dat:1: rating '4.5' is not a valid number"},
		{ml1m_parse_ratings, "ratings.dat", ml1m_base, "1x::1::4::978300760", 0, HR_EPARSE,
		 "ratings.dat:1: user id '1x' is not a valid number"},
		{ml1m_parse_ratings, "ratings.dat", ml1m_base, "::1::4::978300760", 0, HR_EPARSE,
		 "ratings.dat:1: user id '' is not a valid number"},
		{ml1m_parse_ratings, "ratings.dat", ml1m_base, "99999999999::1::4::1", 0, HR_EPARSE,
		 "ratings.dat:1: user id '99999999999' out of range (0..4294967295)"},
		{ml1m_parse_ratings, "ratings.dat", ml1m_base, "1::+1::4::1", 0, HR_EPARSE,
		 "ratings.dat:1: movie id '+1' is not a valid number"},
		{ml1m_parse_ratings, "ratings.dat", ml1m_base, "1::1::4::4294967296", 0, HR_EPARSE,
		 "ratings.dat:1: timestamp '4294967296' out of range (0..4294967295)"},
		{ml1m_parse_ratings, "ratings.dat", ml1m_base, "1::1::4::-5", 0, HR_EPARSE,
		 "ratings.dat:1: timestamp '-5' is not a valid number"},
		{ml1m_parse_ratings, "ratings.dat", ml1m_base, "1::1::4:: 5", 0, HR_EPARSE,
		 "ratings.dat:1: timestamp ' 5' is not a valid number"},
		{ml1m_parse_ratings, "ratings.dat", ml1m_base, "1::1::4\0::5", 11, HR_EPARSE,
		 "ratings.dat:1: rating '4\\x00' is not a valid number"},
		{ml1m_parse_ratings, "ratings.dat", ml1m_base, "1::1::4::5\n9999::1::4::5", 0,
		 HR_EPARSE, "ratings.dat:2: unknown user 9999 (not in users.dat)"},
		{ml1m_parse_ratings, "ratings.dat", ml1m_base, "1::42::4::5", 0, HR_EPARSE,
		 "ratings.dat:1: unknown movie 42 (not in movies.dat)"},
	};
	(void)state;
	check_bad(cases, NCASES(cases));
}

static void t_ml1m_max_errors(void **state)
{
	static const char text[] = "1::1::5::1\n"
				   "1::1::9::2\n" /* bad */
				   "2::2::4::3\n"
				   "7::1::4::4\n" /* bad: unknown user */
				   "3::1::1::5\n";
	struct line_errors le = {2, 0};
	struct dataset ds;
	(void)state;

	assert_int_equal(dataset_init(&ds), 0);
	ml1m_base(&ds);
	assert_int_equal(run(ml1m_parse_ratings, &ds, "ratings.dat", text, &le), 0);
	assert_int_equal(le.count, 2);
	assert_int_equal(ds.n_skipped, 2);
	assert_int_equal(ds.n_ratings, 3);
	assert_int_equal(ds.ratings[2].ts, 5);
	dataset_release(&ds);

	/* One allowed: the second bad line fails, with its own line number. */
	le.max = 1;
	le.count = 0;
	assert_int_equal(dataset_init(&ds), 0);
	ml1m_base(&ds);
	assert_int_equal(run(ml1m_parse_ratings, &ds, "ratings.dat", text, &le), HR_EPARSE);
	assert_string_equal(hr_errmsg(), "ratings.dat:4: unknown user 7 (not in users.dat)");
	assert_int_equal(le.count, 1);
	dataset_release(&ds);

	/* A file whose every line is skipped holds no ratings. */
	le.max = 10;
	le.count = 0;
	assert_int_equal(dataset_init(&ds), 0);
	ml1m_base(&ds);
	assert_int_equal(run(ml1m_parse_ratings, &ds, "ratings.dat", "1::1::9::2\n", &le),
			 HR_EFORMAT);
	assert_string_equal(hr_errmsg(), "'ratings.dat' holds no ratings");
	assert_int_equal(ds.n_skipped, 1);
	dataset_release(&ds);
}

/* ---- ml-100k ----------------------------------------------------------- */

static void t_ml100k_valid(void **state)
{
	static const uint8_t ages[] = {18, 50, 1, 56, 50, 45, 25};
	struct dataset ds;
	(void)state;

	assert_int_equal(dataset_init(&ds), 0);
	k_base(&ds);
	assert_int_equal(run(ml100k_parse_ratings, &ds, "u.data", k_data, NULL), 0);

	assert_int_equal(ds.n_users, 7);
	for (size_t i = 0; i < 7; i++)
		assert_int_equal(ds.users[i].age, ages[i]);
	assert_int_equal(ds.users[0].gender, 'M');
	assert_string_equal(ds.users[0].occupation, "technician");
	assert_string_equal(ds.users[2].zip, "T8H1N");
	assert_string_equal(ds.users[3].zip, "00000");

	assert_int_equal(ds.n_items, 3);
	assert_string_equal(dataset_title(&ds, 0), "Toy Story (1995)");
	assert_int_equal(ds.items[0].year, 1995);
	assert_int_equal(ds.items[0].genres, genre_bit(&ds, "Animation") |
						     genre_bit(&ds, "Children's") |
						     genre_bit(&ds, "Comedy"));
	assert_string_equal(dataset_title(&ds, 1), "Mis\xC3\xA9rables");
	assert_int_equal(ds.items[1].year, 1998); /* from the release date */
	assert_int_equal(ds.items[1].genres, genre_bit(&ds, "Drama"));
	assert_int_equal(ds.items[2].raw_id, 267);
	assert_int_equal(ds.items[2].year, 0);
	assert_int_equal(ds.items[2].genres, 0); /* "unknown" is not a genre */
	assert_int_equal(ds.n_genres, 4);

	assert_int_equal(ds.n_ratings, 3);
	assert_int_equal(ds.ratings[1].user, 2);
	assert_int_equal(ds.ratings[1].item, 2);
	assert_int_equal(ds.ratings[1].stars2, 4);
	assert_int_equal(ds.ratings[2].ts, 878542960);
	assert_true(rd_dataset_valid(&ds));
	dataset_release(&ds);
}

static void t_ml100k_line_ends(void **state)
{
	struct dataset ds;
	(void)state;

	assert_int_equal(dataset_init(&ds), 0);
	assert_int_equal(
		run(ml100k_parse_users, &ds, "u.user", "1|24|M|technician|85711\r\n", NULL), 0);
	assert_int_equal(run(ml100k_parse_items, &ds, "u.item",
			     "1|T (1995)|||u|0|1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|1\r\n", NULL),
			 0);
	assert_int_equal(run(ml100k_parse_ratings, &ds, "u.data", "\r\n1\t1\t3\t5", NULL), 0);
	assert_string_equal(ds.users[0].zip, "85711");
	assert_int_equal(ds.items[0].genres, genre_bit(&ds, "Action") | genre_bit(&ds, "Western"));
	assert_int_equal(ds.ratings[0].ts, 5);
	dataset_release(&ds);
}

static void t_ml100k_bad(void **state)
{
	static const struct bad_case cases[] = {
		{ml100k_parse_users, "u.user", NULL, "", 0, HR_EFORMAT, "'u.user' holds no users"},
		{ml100k_parse_users, "u.user", NULL, "1|24|M|technician\n", 0, HR_EPARSE,
		 "u.user:1: expected 5 fields separated by '|', found 4"},
		{ml100k_parse_users, "u.user", NULL, "1|24|M|technician|85711\n\n2|-3|F|other|1", 0,
		 HR_EPARSE, "u.user:3: age '-3' is not a valid number"},
		{ml100k_parse_users, "u.user", NULL, "1|0|M|technician|85711", 0, HR_EPARSE,
		 "u.user:1: age '0' out of range (1..120)"},
		{ml100k_parse_users, "u.user", NULL, "1|24|m|technician|85711", 0, HR_EPARSE,
		 "u.user:1: gender 'm' is not M or F"},
		{ml100k_parse_users, "u.user", NULL, "1|24|M||85711", 0, HR_EPARSE,
		 "u.user:1: occupation is empty"},
		{ml100k_parse_users, "u.user", NULL, "1|24|M|\xE9tudiant|85711", 0, HR_EPARSE,
		 "u.user:1: occupation '\\xE9tudiant' is not printable ASCII"},
		{ml100k_parse_users, "u.user", NULL, "1|24|M|x|", 0, HR_EPARSE,
		 "u.user:1: zip code is empty"},
		{ml100k_parse_users, "u.user", NULL, "1|24|M|x|1\n1|24|M|x|1", 0, HR_EPARSE,
		 "u.user:2: duplicate user id 1"},
		{ml100k_parse_items, "u.item", NULL, "", 0, HR_EFORMAT, "'u.item' holds no movies"},
		{ml100k_parse_items, "u.item", NULL,
		 "1|T (1995)|||u|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0", 0, HR_EPARSE,
		 "u.item:1: expected 24 fields separated by '|', found 23"},
		{ml100k_parse_items, "u.item", NULL,
		 "1|T (1995)|||u|0|0|0|2|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0", 0, HR_EPARSE,
		 "u.item:1: genre flag 3 (Animation) is '2', expected 0 or 1"},
		{ml100k_parse_items, "u.item", NULL,
		 "1|T (1995)|||u||0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0", 0, HR_EPARSE,
		 "u.item:1: genre flag 0 (unknown) is '', expected 0 or 1"},
		{ml100k_parse_items, "u.item", NULL,
		 "1|T|1995||u|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0", 0, HR_EPARSE,
		 "u.item:1: release date '1995' is not dd-Mon-yyyy"},
		{ml100k_parse_items, "u.item", NULL,
		 "x|T|||u|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0", 0, HR_EPARSE,
		 "u.item:1: movie id 'x' is not a valid number"},
		{ml100k_parse_ratings, "u.data", k_base, "", 0, HR_EFORMAT,
		 "'u.data' holds no ratings"},
		{ml100k_parse_ratings, "u.data", k_base, "1\t1\t5", 0, HR_EPARSE,
		 "u.data:1: expected 4 fields separated by tabs, found 3"},
		{ml100k_parse_ratings, "u.data", k_base, "1 1 5 874965758", 0, HR_EPARSE,
		 "u.data:1: expected 4 fields separated by tabs, found 1"},
		{ml100k_parse_ratings, "u.data", k_base, "1\t1\t0\t874965758", 0, HR_EPARSE,
		 "u.data:1: rating '0' out of range (1..5)"},
		{ml100k_parse_ratings, "u.data", k_base, "1\t1\t5\t874965758\n70\t1\t5\t1", 0,
		 HR_EPARSE, "u.data:2: unknown user 70 (not in u.user)"},
		{ml100k_parse_ratings, "u.data", k_base, "1\t3\t5\t1", 0, HR_EPARSE,
		 "u.data:1: unknown movie 3 (not in u.item)"},
	};
	(void)state;
	check_bad(cases, NCASES(cases));
}

/* ---- csv --------------------------------------------------------------- */

static void t_csv_valid(void **state)
{
	struct dataset ds;
	(void)state;

	assert_int_equal(dataset_init(&ds), 0);
	csv_base(&ds);
	assert_int_equal(run(csv_parse_ratings, &ds, "ratings.csv", csv_ratings, NULL), 0);

	assert_int_equal(ds.n_items, 5);
	assert_string_equal(dataset_title(&ds, 1), "American President, The (1995)");
	assert_int_equal(ds.items[1].year, 1995);
	assert_int_equal(ds.items[1].genres, genre_bit(&ds, "Comedy") | genre_bit(&ds, "Drama") |
						     genre_bit(&ds, "Romance"));
	assert_string_equal(dataset_title(&ds, 2),
			    "Dracula: Dead and Loving It \"Mel Brooks\" (1995)");
	assert_string_equal(dataset_title(&ds, 3), "Am\xC3\xA9lie (2001) ");
	assert_int_equal(ds.items[3].year, 2001);
	assert_int_equal(ds.items[4].year, 0);
	assert_int_equal(ds.items[4].genres, 0);

	/* Users appear in the order of their first rating, without demographics. */
	assert_int_equal(ds.n_users, 3);
	assert_int_equal(ds.users[0].raw_id, 1);
	assert_int_equal(ds.users[1].raw_id, 7);
	assert_int_equal(ds.users[2].raw_id, 5);
	assert_int_equal(ds.users[1].gender, 0);
	assert_int_equal(ds.users[1].age, 0);
	assert_string_equal(ds.users[1].zip, "");

	assert_int_equal(ds.n_ratings, 5);
	assert_int_equal(ds.ratings[0].stars2, 8);
	assert_int_equal(ds.ratings[1].stars2, 7);
	assert_int_equal(ds.ratings[2].stars2, 10);
	assert_int_equal(ds.ratings[3].stars2, 1);
	assert_int_equal(ds.ratings[4].stars2, 9);
	assert_int_equal(ds.ratings[4].user, 1);
	assert_int_equal(ds.ratings[4].item, 4);
	assert_int_equal(ds.ratings[0].ts, 964982703);
	assert_true(rd_dataset_valid(&ds));
	dataset_release(&ds);
}

static void t_csv_line_ends(void **state)
{
	struct dataset ds;
	(void)state;

	assert_int_equal(dataset_init(&ds), 0);
	/* BOM, CRLF, blank lines, no final newline. */
	assert_int_equal(run(csv_parse_movies, &ds, "movies.csv",
			     "\xEF\xBB\xBFmovieId,title,genres\r\n\r\n"
			     "1,\"Heat, The (1995)\",Action\r\n2,B,Drama",
			     NULL),
			 0);
	assert_int_equal(run(csv_parse_ratings, &ds, "ratings.csv",
			     "userId,movieId,rating,timestamp\r\n1,2,2.5,7\r\n\n1,1,3.0,8", NULL),
			 0);
	assert_string_equal(dataset_title(&ds, 0), "Heat, The (1995)");
	assert_string_equal(dataset_title(&ds, 1), "B");
	assert_int_equal(ds.n_ratings, 2);
	assert_int_equal(ds.ratings[0].stars2, 5);
	assert_int_equal(ds.ratings[1].ts, 8);
	dataset_release(&ds);
}

static void t_csv_bad(void **state)
{
	static const struct bad_case cases[] = {
		{csv_parse_movies, "movies.csv", NULL, "", 0, HR_EFORMAT,
		 "'movies.csv' holds no movies"},
		{csv_parse_movies, "movies.csv", NULL, "movieId,title,genres\n", 0, HR_EFORMAT,
		 "'movies.csv' holds no movies"},
		{csv_parse_movies, "movies.csv", NULL, "movieId,title\n1,T\n", 0, HR_EFORMAT,
		 "movies.csv:1: expected header 'movieId,title,genres', found 'movieId,title'"},
		{csv_parse_movies, "movies.csv", NULL,
		 "movieId,title,genres\n1,\"Unterminated, The (1995),Drama", 0, HR_EPARSE,
		 "movies.csv:2: quoted field at column 3 has no closing quote"},
		{csv_parse_movies, "movies.csv", NULL, "movieId,title,genres\n1,\"A\"x,Drama", 0,
		 HR_EPARSE, "movies.csv:2: unexpected 'x' after a closing quote at column 6"},
		{csv_parse_movies, "movies.csv", NULL,
		 "movieId,title,genres\n1,American President, The (1995),Comedy", 0, HR_EPARSE,
		 "movies.csv:2: expected 3 fields separated by ',', found 4 (a title with a comma "
		 "must be quoted)"},
		{csv_parse_movies, "movies.csv", NULL, "movieId,title,genres\n1,T", 0, HR_EPARSE,
		 "movies.csv:2: expected 3 fields separated by ',', found 2"},
		{csv_parse_movies, "movies.csv", NULL,
		 "movieId,title,genres\n1,Caf\xE9 (1995),Drama", 0, HR_EPARSE,
		 "movies.csv:2: title 'Caf\\xE9 (1995)' is not valid UTF-8"},
		{csv_parse_movies, "movies.csv", NULL,
		 "movieId,title,genres\n1,A,Drama\n\n1,B,Drama", 0, HR_EPARSE,
		 "movies.csv:4: duplicate movie id 1"},
		{csv_parse_movies, "movies.csv", NULL, "movieId,title,genres\n-1,A,Drama", 0,
		 HR_EPARSE, "movies.csv:2: movie id '-1' is not a valid number"},
		{csv_parse_ratings, "ratings.csv", csv_base, "", 0, HR_EFORMAT,
		 "'ratings.csv' holds no ratings"},
		{csv_parse_ratings, "ratings.csv", csv_base, "userId,movieId,rating,timestamp\r\n",
		 0, HR_EFORMAT, "'ratings.csv' holds no ratings"},
		{csv_parse_ratings, "ratings.csv", csv_base,
		 "\r\nuserId,movieId,rating,timestamp\n1,1,4.0,9\n\n1,1,4.5.,9", 0, HR_EPARSE,
		 "ratings.csv:5: rating '4.5.' is not a valid number"},
		{csv_parse_ratings, "ratings.csv", csv_base, "\n\n", 0, HR_EFORMAT,
		 "'ratings.csv' holds no ratings"},
		{csv_parse_ratings, "ratings.csv", csv_base, "\n1,1,4.0,964982703\n", 0, HR_EFORMAT,
		 "ratings.csv:2: expected header 'userId,movieId,rating,timestamp', found "
		 "'1,1,4.0,964982703'"},
		{csv_parse_ratings, "ratings.csv", csv_base,
		 "userId,movieId,rating,timestamp\n1,1,3.7,964982703", 0, HR_EPARSE,
		 "ratings.csv:2: rating '3.7' is not a multiple of 0.5"},
		{csv_parse_ratings, "ratings.csv", csv_base,
		 "userId,movieId,rating,timestamp\n1,1,5.5,9", 0, HR_EPARSE,
		 "ratings.csv:2: rating '5.5' out of range (0.5..5.0)"},
		{csv_parse_ratings, "ratings.csv", csv_base,
		 "userId,movieId,rating,timestamp\n1,1,0,9", 0, HR_EPARSE,
		 "ratings.csv:2: rating '0' out of range (0.5..5.0)"},
		{csv_parse_ratings, "ratings.csv", csv_base,
		 "userId,movieId,rating,timestamp\n1,1,4.,9", 0, HR_EPARSE,
		 "ratings.csv:2: rating '4.' is not a valid number"},
		{csv_parse_ratings, "ratings.csv", csv_base,
		 "userId,movieId,rating,timestamp\n1,1,,9", 0, HR_EPARSE,
		 "ratings.csv:2: rating '' is not a valid number"},
		{csv_parse_ratings, "ratings.csv", csv_base,
		 "userId,movieId,rating,timestamp\n1,1,-4,9", 0, HR_EPARSE,
		 "ratings.csv:2: rating '-4' is not a valid number"},
		{csv_parse_ratings, "ratings.csv", csv_base,
		 "userId,movieId,rating,timestamp\n1,1,4.0", 0, HR_EPARSE,
		 "ratings.csv:2: expected 4 fields separated by ',', found 3"},
		{csv_parse_ratings, "ratings.csv", csv_base,
		 "userId,movieId,rating,timestamp\n1,77,4.0,9", 0, HR_EPARSE,
		 "ratings.csv:2: unknown movie 77 (not in movies.csv)"},
		{csv_parse_ratings, "ratings.csv", csv_base,
		 "userId,movieId,rating,timestamp\n1,1,4.0,99999999999", 0, HR_EPARSE,
		 "ratings.csv:2: timestamp '99999999999' out of range (0..4294967295)"},
	};
	(void)state;
	check_bad(cases, NCASES(cases));
}

/* ---- read_util --------------------------------------------------------- */

static void t_util_numbers(void **state)
{
	uint32_t v = 7;
	uint16_t s2 = 0;
	(void)state;

	assert_int_equal(rd_u32("0", 1, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(rd_u32("4294967295", 10, &v), 0);
	assert_int_equal(v, UINT32_MAX);
	assert_int_equal(rd_u32("00000000000000000042", 20, &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(rd_u32("4294967296", 10, &v), RD_NUM_RANGE);
	assert_int_equal(rd_u32("99999999999999999999999", 23, &v), RD_NUM_RANGE);
	assert_int_equal(rd_u32("9999999999999999999999x", 23, &v), RD_NUM_BAD);
	assert_int_equal(rd_u32("", 0, &v), RD_NUM_BAD);
	assert_int_equal(rd_u32("-1", 2, &v), RD_NUM_BAD);
	assert_int_equal(rd_u32("12", 1, &v), 0); /* only len bytes are read */
	assert_int_equal(v, 1);

	assert_int_equal(rd_half_stars("0.5", 3, &s2), 0);
	assert_int_equal(s2, 1);
	assert_int_equal(rd_half_stars("5.000", 5, &s2), 0);
	assert_int_equal(s2, 10);
	assert_int_equal(rd_half_stars("3.50", 4, &s2), 0);
	assert_int_equal(s2, 7);
	assert_int_equal(rd_half_stars("3.05", 4, &s2), RD_NUM_HALF);
	assert_int_equal(rd_half_stars("5.01", 4, &s2), RD_NUM_RANGE);
	assert_int_equal(rd_half_stars("0.0", 3, &s2), RD_NUM_RANGE);
	assert_int_equal(rd_half_stars("100000000000000", 15, &s2), RD_NUM_RANGE);
	assert_int_equal(rd_half_stars(".5", 2, &s2), RD_NUM_BAD);
	assert_int_equal(rd_half_stars("4.5.", 4, &s2), RD_NUM_BAD);
	assert_int_equal(rd_half_stars("4e0", 3, &s2), RD_NUM_BAD);
}

static void t_util_text(void **state)
{
	struct rd_field f[4];
	char out[64], scratch[64];
	size_t bad = 0;
	(void)state;

	assert_int_equal(rd_latin1_to_utf8(out, "caf\xE9\xFF!", 6), 8);
	assert_memory_equal(out, "caf\xC3\xA9\xC3\xBF!", 8);
	assert_true(rd_utf8_valid(out, 8));
	assert_false(rd_utf8_valid("\xC3", 1));
	assert_false(rd_utf8_valid("\xC0\x80", 2));        /* overlong */
	assert_false(rd_utf8_valid("\xED\xA0\x80", 3));    /* surrogate */
	assert_true(rd_utf8_valid("\xF0\x9F\x8E\xAC", 4)); /* U+1F3AC */

	assert_int_equal(rd_title_year("Heat (1995)", 11), 1995);
	assert_int_equal(rd_title_year("Heat (1995)  ", 13), 1995);
	assert_int_equal(rd_title_year("Heat (95)", 9), 0);
	assert_int_equal(rd_title_year("(1995)", 6), 1995);
	assert_int_equal(rd_title_year("1995)", 5), 0);
	assert_int_equal(rd_title_year("Heat (199x)", 11), 0);

	assert_int_equal(rd_split("a::b:c::", 8, "::", 2, f, 4), 3);
	assert_int_equal(f[1].n, 3);
	assert_memory_equal(f[1].p, "b:c", 3);
	assert_int_equal(f[2].n, 0);
	assert_int_equal(rd_split("a|b|c|d|e", 9, "|", 1, f, 2), 5);
	assert_int_equal(rd_split("", 0, ",", 1, f, 4), 1);

	assert_int_equal(rd_csv_split("1,\"a,\"\"b\"\"\",", 12, scratch, f, 4, &bad), 3);
	assert_int_equal(f[1].n, 5);
	assert_memory_equal(f[1].p, "a,\"b\"", 5);
	assert_int_equal(f[2].n, 0);
	assert_int_equal(rd_csv_split("\"\"", 2, scratch, f, 4, &bad), 1);
	assert_int_equal(f[0].n, 0);
	assert_int_equal(rd_csv_split("a,\"b", 4, scratch, f, 4, &bad), -1);
	assert_int_equal(bad, 2);
	assert_int_equal(rd_csv_split("\"b\" ,c", 6, scratch, f, 4, &bad), -2);
	assert_int_equal(bad, 3);

	assert_string_equal(rd_show("a\tb\xE9", 4).s, "a\\x09b\\xE9");
	assert_string_equal(rd_show("0123456789012345678901234567890123456789012345678901", 52).s,
			    "012345678901234567890123456789012345678901234567...");
}

/* ---- directories ------------------------------------------------------- */

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[4096];
	FILE *f;

	assert_int_equal(path_join(path, sizeof(path), dir, name), 0);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
	assert_int_equal(fclose(f), 0);
}

static char *make_dir(void)
{
	char *d = strdup("/tmp/hogrec-readers-XXXXXX");

	assert_non_null(d);
	assert_non_null(mkdtemp(d));
	return d;
}

static void drop_dir(char *d)
{
	assert_int_equal(remove_tree(d), 0);
	free(d);
}

static void t_detect(void **state)
{
	char msg[8192], path[4096];
	enum ds_format fmt;
	char *d = make_dir();
	(void)state;

	assert_int_equal(ds_detect_format(d, &fmt), HR_EFORMAT);
	snprintf(
		msg, sizeof(msg),
		"'%s' holds no MovieLens ratings file (looked for ratings.dat, u.data, ratings.csv)",
		d);
	assert_string_equal(hr_errmsg(), msg);
	assert_int_equal(fmt, DS_FMT_UNKNOWN);

	write_file(d, "tags.csv", "userId,movieId,tag,timestamp\n");
	write_file(d, "ratings.csv", "");
	assert_int_equal(ds_detect_format(d, &fmt), 0);
	assert_int_equal(fmt, DS_FMT_CSV);
	write_file(d, "u.data", "");
	assert_int_equal(ds_detect_format(d, &fmt), 0);
	assert_int_equal(fmt, DS_FMT_ML100K);
	write_file(d, "ratings.dat", "");
	assert_int_equal(ds_detect_format(d, &fmt), 0);
	assert_int_equal(fmt, DS_FMT_ML1M);

	snprintf(path, sizeof(path), "%s/nope", d);
	assert_int_equal(ds_detect_format(path, &fmt), HR_ENOENT);
	snprintf(msg, sizeof(msg), "cannot open '%s': No such file or directory", path);
	assert_string_equal(hr_errmsg(), msg);

	snprintf(path, sizeof(path), "%s/ratings.dat", d);
	assert_int_equal(ds_detect_format(path, &fmt), HR_EINVAL);
	snprintf(msg, sizeof(msg), "'%s' is not a directory", path);
	assert_string_equal(hr_errmsg(), msg);
	drop_dir(d);
}

static void t_read_dir_ml1m(void **state)
{
	struct read_opts opts = {3};
	struct dataset ds;
	char *d = make_dir();
	char msg[8192];
	(void)state;

	write_file(d, "ratings.dat", ml1m_ratings);
	write_file(d, "users.dat", ml1m_users);
	assert_int_equal(dataset_init(&ds), 0);
	assert_int_equal(ds_read_dir(&ds, d, NULL), HR_ENOENT);
	snprintf(msg, sizeof(msg),
		 "missing '%s/movies.dat' (ml-1m needs ratings.dat, users.dat and movies.dat)", d);
	assert_string_equal(hr_errmsg(), msg);
	dataset_release(&ds);

	/* One bad line in each file: skipped within a budget of 3 for the load. */
	write_file(d, "users.dat",
		   "9::F::2::1::1\n1::F::1::10::48067\n2::M::56::16::70072\n"
		   "3::M::25::7::55117\n");
	write_file(d, "movies.dat",
		   "x::T::Drama\n1::A (2000)::Drama\n2::B::Drama\n"
		   "4::C::Drama\n10::D::Drama\n");
	write_file(d, "ratings.dat",
		   "1::1::5::978300760\n1::2::3::978302109\n"
		   "2::10::1::978301968\n3::4::4::4294967295\n5::1::1::1\n");
	assert_int_equal(dataset_init(&ds), 0);
	assert_int_equal(ds_read_dir(&ds, d, &opts), 0);
	assert_int_equal(ds.format, DS_FMT_ML1M);
	assert_int_equal(ds.has_demographics, 1);
	assert_int_equal(ds.n_users, 3);
	assert_int_equal(ds.n_items, 4);
	assert_int_equal(ds.n_ratings, 4);
	assert_int_equal(ds.n_skipped, 3);
	assert_true(rd_dataset_valid(&ds));
	dataset_release(&ds);

	/* A budget of 2 fails at the third bad line. */
	opts.max_errors = 2;
	assert_int_equal(dataset_init(&ds), 0);
	assert_int_equal(ds_read_dir(&ds, d, &opts), HR_EPARSE);
	assert_string_equal(hr_errmsg(), "ratings.dat:5: unknown user 5 (not in users.dat)");
	dataset_release(&ds);
	drop_dir(d);
}

static void t_read_dir_ml100k(void **state)
{
	struct dataset ds;
	char *d = make_dir();
	char msg[8192];
	(void)state;

	write_file(d, "u.data", k_data);
	write_file(d, "u.item", k_items);
	assert_int_equal(dataset_init(&ds), 0);
	assert_int_equal(ds_read_dir(&ds, d, NULL), HR_ENOENT);
	snprintf(msg, sizeof(msg), "missing '%s/u.user' (ml-100k needs u.data, u.user and u.item)",
		 d);
	assert_string_equal(hr_errmsg(), msg);
	dataset_release(&ds);

	write_file(d, "u.user", k_users);
	write_file(d, "u.genre", "unknown|0\n"); /* other files are ignored */
	assert_int_equal(dataset_init(&ds), 0);
	assert_int_equal(ds_read_dir(&ds, d, NULL), 0);
	assert_int_equal(ds.format, DS_FMT_ML100K);
	assert_int_equal(ds.has_demographics, 1);
	assert_int_equal(ds.n_users, 7);
	assert_int_equal(ds.n_items, 3);
	assert_int_equal(ds.n_ratings, 3);
	assert_int_equal(ds.n_skipped, 0);
	dataset_release(&ds);
	drop_dir(d);
}

static void t_read_dir_csv(void **state)
{
	struct dataset ds;
	char *d = make_dir();
	char msg[8192];
	(void)state;

	write_file(d, "ratings.csv", csv_ratings);
	assert_int_equal(dataset_init(&ds), 0);
	assert_int_equal(ds_read_dir(&ds, d, NULL), HR_ENOENT);
	snprintf(msg, sizeof(msg), "missing '%s/movies.csv' (csv needs ratings.csv and movies.csv)",
		 d);
	assert_string_equal(hr_errmsg(), msg);
	dataset_release(&ds);

	write_file(d, "movies.csv", csv_movies);
	write_file(d, "links.csv", "movieId,imdbId,tmdbId\n");
	write_file(d, "tags.csv", "garbage\n");
	assert_int_equal(dataset_init(&ds), 0);
	assert_int_equal(ds_read_dir(&ds, d, NULL), 0);
	assert_int_equal(ds.format, DS_FMT_CSV);
	assert_int_equal(ds.has_demographics, 0);
	assert_int_equal(ds.n_users, 3);
	assert_int_equal(ds.n_items, 5);
	assert_int_equal(ds.n_ratings, 5);
	dataset_release(&ds);

	/* An empty ratings file is an error naming it. */
	write_file(d, "ratings.csv", "");
	assert_int_equal(dataset_init(&ds), 0);
	assert_int_equal(ds_read_dir(&ds, d, NULL), HR_EFORMAT);
	assert_string_equal(hr_errmsg(), "'ratings.csv' holds no ratings");
	dataset_release(&ds);
	drop_dir(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_ml1m_valid),      cmocka_unit_test(t_ml1m_line_ends),
		cmocka_unit_test(t_ml1m_bad),        cmocka_unit_test(t_ml1m_max_errors),
		cmocka_unit_test(t_ml100k_valid),    cmocka_unit_test(t_ml100k_line_ends),
		cmocka_unit_test(t_ml100k_bad),      cmocka_unit_test(t_csv_valid),
		cmocka_unit_test(t_csv_line_ends),   cmocka_unit_test(t_csv_bad),
		cmocka_unit_test(t_util_numbers),    cmocka_unit_test(t_util_text),
		cmocka_unit_test(t_detect),          cmocka_unit_test(t_read_dir_ml1m),
		cmocka_unit_test(t_read_dir_ml100k), cmocka_unit_test(t_read_dir_csv),
	};

	log_init("test_readers", LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
