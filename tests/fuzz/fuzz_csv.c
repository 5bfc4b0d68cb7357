/* fuzz_csv.c - libFuzzer target for the CSV-family parsers (input layout: fuzz_reader.h). */
#include "fuzz_reader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char movies[] = "movieId,title,genres\n"
			     "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n"
			     "11,\"American President, The (1995)\",Comedy|Drama|Romance\n"
			     "14,No Year,(no genres listed)\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct fuzz_reader fr = {
		NULL, csv_parse_movies, csv_parse_ratings, NULL, "movies.csv", "ratings.csv",
		NULL, movies,
	};

	return fuzz_reader_run(&fr, data, size);
}
