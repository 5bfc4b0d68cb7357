/* output.c - a user's list as JSON or TSV (output.h). */
#include "output.h"

#include <jansson.h>

const char *output_source_name(enum rec_source s)
{
	return s == REC_MODEL ? "model" : "popular";
}

char *output_json(const struct recommender *r, const struct catalog *cat, const struct rec_list *l,
		  int exclude_rated)
{
	json_t *items = json_array(), *o;
	char *text = NULL;

	for (uint32_t j = 0; items && j < l->n; j++) {
		/* json_string refuses invalid UTF-8: the store's titles are UTF-8 */
		json_t *title = json_string(catalog_title(cat, l->item[j]));
		json_t *e = json_pack("{s:I, s:o, s:f}", "item", (json_int_t)cat->raw[l->item[j]],
				      "title", title ? title : json_null(), "score",
				      (double)l->score[j]);
		if (!e || json_array_append_new(items, e)) {
			json_decref(items);
			return NULL;
		}
	}
	if (!items)
		return NULL;
	o = json_pack("{s:I, s:s, s:s, s:I, s:s, s:b, s:o}", "user", (json_int_t)l->user_raw,
		      "source", output_source_name(l->source), "model", recommender_model(r),
		      "step", (json_int_t)recommender_step(r), "checkpoint", recommender_path(r),
		      "exclude_rated", exclude_rated, "items", items);
	if (o)
		text = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(9));
	json_decref(o);
	return text;
}

void output_tsv_header(FILE *out)
{
	fputs("user\trank\titem\tscore\tsource\ttitle\n", out);
}

void output_tsv(FILE *out, const struct catalog *cat, const struct rec_list *l)
{
	for (uint32_t j = 0; j < l->n; j++) {
		fprintf(out, "%u\t%u\t%u\t%.9g\t%s\t", l->user_raw, j + 1, cat->raw[l->item[j]],
			(double)l->score[j], output_source_name(l->source));
		for (const char *t = catalog_title(cat, l->item[j]); *t; t++)
			fputc(*t == '\t' || *t == '\n' || *t == '\r' ? ' ' : *t, out);
		fputc('\n', out);
	}
}
