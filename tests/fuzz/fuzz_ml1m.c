/*
 * fuzz_ml1m.c - libFuzzer target for the ml-1m parsers.
 *
 * Input: one selector byte, then the file contents (exactly the remaining
 * bytes, not NUL-terminated).  Selector bits 0-1 pick the parser (0 users,
 * 1 movies, 2-3 ratings against a fixed set of users and movies); bits 2-3
 * pick the malformed-line budget (0, 1, 3 or unlimited).  Every call must
 * return without a sanitizer report, and whatever was read must satisfy
 * rd_dataset_valid().
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/err.h"
#include "common/log.h"
#include "ingest/readers.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char users[] = "1::F::1::10::48067\n2::M::56::16::70072\n3::M::25::7::55117\n";
static const char movies[] = "1::Toy Story (1995)::Animation|Children's|Comedy\n"
			     "2::Mis\xE9rables (1995)::Drama\n"
			     "10::GoldenEye (1995)::Action|Adventure|Thriller\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t budgets[4] = {0, 1, 3, SIZE_MAX};
	struct line_errors le = {0, 0};
	struct dataset ds;
	const char *buf;
	int rc;

	if (size < 1)
		return 0;
	log_set_level(LOG_ERROR);
	le.max = budgets[(data[0] >> 2) & 3];
	buf = (const char *)data + 1;
	if (dataset_init(&ds))
		abort();
	switch (data[0] & 3) {
	case 0:
		rc = ml1m_parse_users(&ds, buf, size - 1, "users.dat", &le);
		break;
	case 1:
		rc = ml1m_parse_movies(&ds, buf, size - 1, "movies.dat", &le);
		break;
	default:
		if (ml1m_parse_users(&ds, users, sizeof(users) - 1, "users.dat", NULL) ||
		    ml1m_parse_movies(&ds, movies, sizeof(movies) - 1, "movies.dat", NULL))
			abort();
		rc = ml1m_parse_ratings(&ds, buf, size - 1, "ratings.dat", &le);
		break;
	}
	if (rc > 0 || rc == HR_ENOMEM || ds.n_skipped != le.count || !rd_dataset_valid(&ds))
		abort();
	dataset_release(&ds);
	return 0;
}
