/*
 * output.h - a user's list as the CLI prints it and the server sends it.
 *
 * JSON (one object; a line of --format json, the body of GET /recommend):
 *   {"user": 12, "source": "model", "model": "ncf", "step": 1200,
 *    "checkpoint": "DIR/ckpt-000000001200.safetensors", "exclude_rated": true,
 *    "items": [{"item": 2858, "title": "American Beauty (1999)", "score": 3.21}, ...]}
 * item is the raw item id, score the model's (a logit, or a predicted
 * rating for a rating model) or, with "source": "popular", the item's train
 * record count.
 *
 * TSV: one line per item, "user  rank  item  score  source  title" (rank
 * from 1; a tab or newline in a title becomes a space), after the header
 * line output_tsv_header prints.
 */
#ifndef HR_SERVE_OUTPUT_H
#define HR_SERVE_OUTPUT_H

#include <stdio.h>

#include "recommender.h"

/* "model" or "popular". */
const char *output_source_name(enum rec_source s);

/*
 * The JSON text of l (r: the recommender it came from), NUL-terminated,
 * malloc()ed (the caller frees), or NULL when out of memory.
 */
char *output_json(const struct recommender *r, const struct catalog *cat, const struct rec_list *l,
		  int exclude_rated);

void output_tsv_header(FILE *out);
void output_tsv(FILE *out, const struct catalog *cat, const struct rec_list *l);

#endif
