/*
 * fuzz_ml100k.c - libFuzzer target for the ml-100k parsers.
 *
 * Input: one selector byte, then the file contents (exactly the remaining
 * bytes).  Selector bits 0-1 pick the parser (0 u.user, 1 u.item, 2-3 u.data
 * against a fixed set of users and items); bits 2-3 pick the malformed-line
 * budget (0, 1, 3 or unlimited).  Whatever was read must satisfy
 * rd_dataset_valid().
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/err.h"
#include "common/log.h"
#include "ingest/readers.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char users[] = "1|24|M|technician|85711\n2|53|F|other|94043\n3|17|M|writer|T8H1N\n";
static const char items[] =
	"1|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
	"2|Mis\xE9rables|1-Mar-1998|||0|0|0|0|0|0|0|0|1|0|0|0|0|0|0|0|0|0|0\n"
	"267|unknown||||1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n";

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
		rc = ml100k_parse_users(&ds, buf, size - 1, "u.user", &le);
		break;
	case 1:
		rc = ml100k_parse_items(&ds, buf, size - 1, "u.item", &le);
		break;
	default:
		if (ml100k_parse_users(&ds, users, sizeof(users) - 1, "u.user", NULL) ||
		    ml100k_parse_items(&ds, items, sizeof(items) - 1, "u.item", NULL))
			abort();
		rc = ml100k_parse_ratings(&ds, buf, size - 1, "u.data", &le);
		break;
	}
	if (rc > 0 || rc == HR_ENOMEM || ds.n_skipped != le.count || !rd_dataset_valid(&ds))
		abort();
	dataset_release(&ds);
	return 0;
}
