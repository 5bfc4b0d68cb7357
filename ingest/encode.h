/*
 * encode.h - stage 4: label encoding of every categorical field, fitted on
 * the train split only.
 *
 * Id 0 is padding/unknown; ids 1..n-1 follow the sorted raw values (numeric
 * for user, item and age, byte order for strings).  Values that occur only
 * in valid/test rows encode to 0.  Lookup tables map the dataset's user,
 * item and genre indices straight to codes, so encoding a record is a few
 * array reads.
 */
#ifndef HR_ENCODE_H
#define HR_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "events.h"

enum enc_field {
	ENC_USER,
	ENC_ITEM,
	ENC_GENDER,
	ENC_AGE,
	ENC_OCC,
	ENC_ZIP,
	ENC_GENRE,
	ENC_NFIELDS
};

/* A vocabulary: raw values in id order; values[0] is unused (id 0). */
struct vocab {
	uint32_t n; /* size including id 0 */
	int is_str;
	uint32_t *nums; /* numeric raw values, n entries */
	char **strs;    /* string raw values, n entries (strs[0] NULL) */
};

struct encoding {
	struct vocab vocab[ENC_NFIELDS];
	/* Per dataset user index: codes of user, gender, age, occupation, zip. */
	uint32_t *user_code, *gender_code, *age_code, *occ_code, *zip_code;
	/* Per dataset item index; per dataset genre index. */
	uint32_t *item_code;
	uint32_t genre_code[DS_MAX_GENRES];
	/* Per dataset item index: its encoded genres, ascending. */
	uint8_t *n_item_genres;
	uint32_t (*item_genres)[DS_MAX_GENRES];
};

/* Name of a field as stored in the vocab database: "user", "item", ... */
const char *enc_field_name(enum enc_field f);

/*
 * Fits every vocabulary on the train events of ev (split already assigned)
 * and builds the lookup tables.  zip_prefix is how many leading characters
 * of a zip code form its category.  HR_ENOMEM on failure (enc is then
 * released).  Release with encoding_release().
 */
int encoding_fit(struct encoding *enc, const struct dataset *ds, const struct event *ev, size_t n,
		 int zip_prefix);
void encoding_release(struct encoding *enc);

#endif
