/*
 * fuzz_reader.h - the one libFuzzer driver behind every reader target.
 *
 * Input: one selector byte, then the file contents (exactly the remaining
 * bytes, not NUL-terminated).  Selector bits 0-1 pick the file: 0 users, 1
 * movies, 2-3 ratings (read after fixed, valid users and movies); bits 2-3
 * pick the malformed-line budget (0, 1, 3 or unlimited).  Every call must
 * return without a sanitizer report, and whatever was read must satisfy
 * rd_dataset_valid().  A format without a users file fuzzes movies instead.
 */
#ifndef HR_FUZZ_READER_H
#define HR_FUZZ_READER_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "ingest/readers.h"

typedef int (*fuzz_parse_fn)(struct dataset *ds, const char *buf, size_t len, const char *fname,
			     struct line_errors *le);

struct fuzz_reader {
	fuzz_parse_fn users, movies, ratings; /* users may be NULL */
	const char *users_file, *movies_file, *ratings_file;
	const char *users_fixture, *movies_fixture;
};

static inline int fuzz_reader_run(const struct fuzz_reader *fr, const uint8_t *data, size_t size)
{
	static const size_t budgets[4] = {0, 1, 3, SIZE_MAX};
	struct line_errors le = {0, 0};
	struct dataset ds;
	const char *buf;
	int rc, which;

	if (size < 1)
		return 0;
	log_set_level(LOG_ERROR);
	le.max = budgets[(data[0] >> 2) & 3];
	which = data[0] & 3;
	if (which == 0 && !fr->users)
		which = 1;
	buf = (const char *)data + 1;
	if (dataset_init(&ds))
		abort();
	if (which == 0) {
		rc = fr->users(&ds, buf, size - 1, fr->users_file, &le);
	} else if (which == 1) {
		rc = fr->movies(&ds, buf, size - 1, fr->movies_file, &le);
	} else {
		if ((fr->users && fr->users(&ds, fr->users_fixture, strlen(fr->users_fixture),
					    fr->users_file, NULL)) ||
		    fr->movies(&ds, fr->movies_fixture, strlen(fr->movies_fixture), fr->movies_file,
			       NULL))
			abort();
		rc = fr->ratings(&ds, buf, size - 1, fr->ratings_file, &le);
	}
	if (rc > 0 || rc == HR_ENOMEM || ds.n_skipped != le.count || !rd_dataset_valid(&ds))
		abort();
	dataset_release(&ds);
	return 0;
}

#endif
