/* fuzz_ml100k.c - libFuzzer target for the ml-100k parsers (input layout: fuzz_reader.h). */
#include "fuzz_reader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char users[] = "1|24|M|technician|85711\n2|53|F|other|94043\n3|17|M|writer|T8H1N\n";
static const char items[] =
	"1|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
	"2|Mis\xE9rables|1-Mar-1998|||0|0|0|0|0|0|0|0|1|0|0|0|0|0|0|0|0|0|0\n"
	"267|unknown||||1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct fuzz_reader fr = {
		ml100k_parse_users,
		ml100k_parse_items,
		ml100k_parse_ratings,
		"u.user",
		"u.item",
		"u.data",
		users,
		items,
	};

	return fuzz_reader_run(&fr, data, size);
}
