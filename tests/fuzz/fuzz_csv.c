/*
 * fuzz_csv.c - libFuzzer target for the CSV-family parsers.
 *
 * Input: one selector byte, then the file contents (exactly the remaining
 * bytes).  Selector bit 0 picks the parser (0 movies.csv, 1 ratings.csv
 * against a fixed movies.csv); bits 2-3 pick the malformed-line budget (0,
 * 1, 3 or unlimited).  Whatever was read must satisfy rd_dataset_valid().
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/err.h"
#include "common/log.h"
#include "ingest/readers.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char movies[] = "movieId,title,genres\n"
			     "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n"
			     "11,\"American President, The (1995)\",Comedy|Drama|Romance\n"
			     "14,No Year,(no genres listed)\n";

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
	if (data[0] & 1) {
		if (csv_parse_movies(&ds, movies, sizeof(movies) - 1, "movies.csv", NULL))
			abort();
		rc = csv_parse_ratings(&ds, buf, size - 1, "ratings.csv", &le);
	} else {
		rc = csv_parse_movies(&ds, buf, size - 1, "movies.csv", &le);
	}
	if (rc > 0 || rc == HR_ENOMEM || ds.n_skipped != le.count || !rd_dataset_valid(&ds))
		abort();
	dataset_release(&ds);
	return 0;
}
