/* fuzz_ml1m.c - libFuzzer target for the ml-1m parsers (input layout: fuzz_reader.h). */
#include "fuzz_reader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char users[] = "1::F::1::10::48067\n2::M::56::16::70072\n3::M::25::7::55117\n";
static const char movies[] = "1::Toy Story (1995)::Animation|Children's|Comedy\n"
			     "2::Mis\xE9rables (1995)::Drama\n"
			     "10::GoldenEye (1995)::Action|Adventure|Thriller\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct fuzz_reader fr = {
		ml1m_parse_users,
		ml1m_parse_movies,
		ml1m_parse_ratings,
		"users.dat",
		"movies.dat",
		"ratings.dat",
		users,
		movies,
	};

	return fuzz_reader_run(&fr, data, size);
}
