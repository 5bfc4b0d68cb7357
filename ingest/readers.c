/*
 * readers.c - format detection and whole-directory loads; the per-format
 * parsers are in read_ml1m.c, read_ml100k.c and read_csv.c.
 */
#include "readers.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include "common/err.h"
#include "common/fsutil.h"
#include "common/log.h"

typedef int (*parse_fn)(struct dataset *ds, const char *buf, size_t len, const char *fname,
			struct line_errors *le);

/* The files of one format, in the order they are read. */
struct format_desc {
	enum ds_format fmt;
	const char *ratings;  /* the file that identifies the format */
	const char *files[3]; /* users (NULL if none), items, ratings */
	parse_fn parse[3];
	const char *holds; /* for messages about a missing file */
};

static const struct format_desc formats[] = {
	{DS_FMT_ML1M,
	 "ratings.dat",
	 {"users.dat", "movies.dat", "ratings.dat"},
	 {ml1m_parse_users, ml1m_parse_movies, ml1m_parse_ratings},
	 "ratings.dat, users.dat and movies.dat"},
	{DS_FMT_ML100K,
	 "u.data",
	 {"u.user", "u.item", "u.data"},
	 {ml100k_parse_users, ml100k_parse_items, ml100k_parse_ratings},
	 "u.data, u.user and u.item"},
	{DS_FMT_CSV,
	 "ratings.csv",
	 {NULL, "movies.csv", "ratings.csv"},
	 {NULL, csv_parse_movies, csv_parse_ratings},
	 "ratings.csv and movies.csv"},
};

#define N_FORMATS (sizeof(formats) / sizeof(formats[0]))

int ds_detect_format(const char *dir, enum ds_format *fmt)
{
	struct stat st;

	*fmt = DS_FMT_UNKNOWN;
	if (stat(dir, &st) < 0) {
		int e = errno;
		return hr_error(e == ENOENT || e == ENOTDIR ? HR_ENOENT : HR_EIO,
				"cannot open '%s': %s", dir, strerror(e));
	}
	if (!S_ISDIR(st.st_mode))
		return hr_error(HR_EINVAL, "'%s' is not a directory", dir);
	for (size_t i = 0; i < N_FORMATS; i++) {
		char path[PATH_MAX];
		int rc = path_join(path, sizeof(path), dir, formats[i].ratings);
		if (rc)
			return rc;
		if (path_exists(path)) {
			*fmt = formats[i].fmt;
			return 0;
		}
	}
	return hr_error(HR_EFORMAT,
			"'%s' holds no MovieLens ratings file (looked for ratings.dat, u.data, "
			"ratings.csv)",
			dir);
}

static int read_file(struct dataset *ds, const char *dir, const char *name, parse_fn parse,
		     struct line_errors *le)
{
	char path[PATH_MAX];
	struct mapped_file mf;
	int rc = path_join(path, sizeof(path), dir, name);

	if (rc)
		return rc;
	rc = mapped_file_open(&mf, path);
	if (rc)
		return rc;
	rc = parse(ds, mf.data, mf.len, name, le);
	mapped_file_release(&mf);
	return rc;
}

static const struct format_desc *format_desc_of(enum ds_format fmt)
{
	const struct format_desc *d = NULL;

	for (size_t i = 0; i < N_FORMATS; i++)
		if (formats[i].fmt == fmt)
			d = &formats[i];
	HR_ASSERT(d != NULL);
	return d;
}

int ds_check_dir(const char *dir, enum ds_format *fmt)
{
	const struct format_desc *d;
	int rc = ds_detect_format(dir, fmt);

	if (rc)
		return rc;
	d = format_desc_of(*fmt);
	for (int i = 0; i < 3; i++) {
		char path[PATH_MAX];
		if (!d->files[i])
			continue;
		if ((rc = path_join(path, sizeof(path), dir, d->files[i])))
			break;
		struct stat st;
		if (stat(path, &st) < 0) {
			rc = errno == ENOENT ? hr_error(HR_ENOENT, "missing '%s' (%s needs %s)",
							path, ds_format_name(*fmt), d->holds) :
					       hr_error(HR_EIO, "cannot read '%s': %s", path,
							strerror(errno));
			break;
		}
		/* A FIFO would block the open for ever, a directory fail late. */
		if (!S_ISREG(st.st_mode)) {
			rc = hr_error(HR_EFORMAT, "'%s' is %s, not a regular file", path,
				      S_ISFIFO(st.st_mode) ? "a FIFO" :
				      S_ISDIR(st.st_mode)  ? "a directory" :
							     "a special file");
			break;
		}
	}
	if (rc)
		*fmt = DS_FMT_UNKNOWN;
	return rc;
}

int ds_read_dir(struct dataset *ds, const char *dir, const struct read_opts *opts)
{
	struct line_errors le = {opts ? opts->max_errors : 0, 0};
	const struct format_desc *d;
	enum ds_format fmt;
	int rc = ds_check_dir(dir, &fmt);

	if (rc)
		return rc;
	d = format_desc_of(fmt);
	ds->format = fmt;
	ds->has_demographics = d->files[0] != NULL;
	for (int i = 0; i < 3; i++) {
		if (!d->files[i])
			continue;
		if ((rc = read_file(ds, dir, d->files[i], d->parse[i], &le)))
			return rc;
	}
	if (le.count > RD_LOGGED_ERRORS)
		log_warn("%zu more malformed lines skipped (not shown)",
			 le.count - RD_LOGGED_ERRORS);
	log_info("read %s '%s': %zu users, %zu movies, %zu ratings, %zu lines skipped",
		 ds_format_name(fmt), dir, ds->n_users, ds->n_items, ds->n_ratings, le.count);
	return 0;
}
