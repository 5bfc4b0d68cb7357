#include "encode.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"

const char *enc_field_name(enum enc_field f)
{
	static const char *const names[ENC_NFIELDS] = {
		"user", "item", "gender", "age", "occupation", "zip", "genre",
	};
	return names[f];
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts and deduplicates vals[0..n) into a vocabulary (taking ownership). */
static void vocab_from_nums(struct vocab *v, uint32_t *vals, size_t n)
{
	size_t k = 0;

	qsort(vals, n, sizeof(*vals), cmp_u32);
	for (size_t i = 0; i < n; i++)
		if (k == 0 || vals[i] != vals[k - 1])
			vals[k++] = vals[i];
	/* Shift right by one so that vals[id] is the raw value of id. */
	memmove(vals + 1, vals, k * sizeof(*vals));
	vals[0] = 0;
	v->nums = vals;
	v->n = (uint32_t)k + 1;
	v->is_str = 0;
}

static int vocab_from_strs(struct vocab *v, const char **vals, size_t n)
{
	size_t k = 0;

	qsort(vals, n, sizeof(*vals), cmp_str);
	v->is_str = 1;
	v->strs = calloc(n + 1, sizeof(*v->strs));
	if (!v->strs)
		return hr_error(HR_ENOMEM, "out of memory for a vocabulary");
	for (size_t i = 0; i < n; i++) {
		if (k > 0 && !strcmp(vals[i], v->strs[k]))
			continue;
		v->strs[++k] = strdup(vals[i]);
		if (!v->strs[k])
			return hr_error(HR_ENOMEM, "out of memory for a vocabulary");
		v->n = (uint32_t)k + 1; /* so that encoding_release frees what exists */
	}
	v->n = (uint32_t)k + 1;
	return 0;
}

/* Code of a numeric raw value (binary search), 0 if absent. */
static uint32_t code_num(const struct vocab *v, uint32_t raw)
{
	uint32_t lo = 1, hi = v->n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (v->nums[mid] < raw)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < v->n && v->nums[lo] == raw ? lo : 0;
}

static uint32_t code_str(const struct vocab *v, const char *raw)
{
	uint32_t lo = 1, hi = v->n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (strcmp(v->strs[mid], raw) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < v->n && !strcmp(v->strs[lo], raw) ? lo : 0;
}

/* The categorical strings of user u; zip is cut to its prefix. */
struct user_strs {
	char gender[2];
	char zip[DS_ZIP_MAX];
	const char *occ;
};

static void user_strs(const struct ds_user *u, int zip_prefix, struct user_strs *s)
{
	size_t zl = strlen(u->zip);

	s->gender[0] = u->gender;
	s->gender[1] = '\0';
	if (zl > (size_t)zip_prefix)
		zl = (size_t)zip_prefix;
	memcpy(s->zip, u->zip, zl);
	s->zip[zl] = '\0';
	s->occ = u->occupation;
}

static int fit_vocabs(struct encoding *enc, const struct dataset *ds, const uint8_t *tu,
		      const uint8_t *ti, int zip_prefix)
{
	size_t nu = 0, ni = 0, ng = 0;
	uint32_t *users = malloc((ds->n_users + 1) * sizeof(*users));
	uint32_t *items = malloc((ds->n_items + 1) * sizeof(*items));
	uint32_t *ages = malloc((ds->n_users + 1) * sizeof(*ages));
	const char **genders = malloc((ds->n_users + 1) * sizeof(*genders));
	const char **occs = malloc((ds->n_users + 1) * sizeof(*occs));
	const char **zips = malloc((ds->n_users + 1) * sizeof(*zips));
	struct user_strs *us = malloc((ds->n_users + 1) * sizeof(*us));
	const char *genres[DS_MAX_GENRES];
	uint32_t genre_used = 0;
	size_t na = 0, ngen = 0, nocc = 0, nzip = 0;
	int rc = 0;

	if (!users || !items || !ages || !genders || !occs || !zips || !us) {
		rc = hr_error(HR_ENOMEM, "out of memory fitting vocabularies");
		goto out;
	}
	for (size_t u = 0; u < ds->n_users; u++) {
		if (!tu[u])
			continue;
		const struct ds_user *du = &ds->users[u];
		users[nu++] = du->raw_id;
		if (!ds->has_demographics)
			continue;
		user_strs(du, zip_prefix, &us[u]);
		if (du->age)
			ages[na++] = du->age;
		if (du->gender)
			genders[ngen++] = us[u].gender;
		if (du->occupation[0])
			occs[nocc++] = us[u].occ;
		if (us[u].zip[0])
			zips[nzip++] = us[u].zip;
	}
	for (size_t i = 0; i < ds->n_items; i++)
		if (ti[i]) {
			items[ni++] = ds->items[i].raw_id;
			genre_used |= ds->items[i].genres;
		}
	for (int g = 0; g < ds->n_genres; g++)
		if (genre_used & (1u << g))
			genres[ng++] = ds->genre_names[g];

	vocab_from_nums(&enc->vocab[ENC_USER], users, nu);
	users = NULL;
	vocab_from_nums(&enc->vocab[ENC_ITEM], items, ni);
	items = NULL;
	vocab_from_nums(&enc->vocab[ENC_AGE], ages, na);
	ages = NULL;
	rc = vocab_from_strs(&enc->vocab[ENC_GENDER], genders, ngen);
	if (!rc)
		rc = vocab_from_strs(&enc->vocab[ENC_OCC], occs, nocc);
	if (!rc)
		rc = vocab_from_strs(&enc->vocab[ENC_ZIP], zips, nzip);
	if (!rc)
		rc = vocab_from_strs(&enc->vocab[ENC_GENRE], genres, ng);
	if (rc)
		goto out;

	for (size_t u = 0; u < ds->n_users; u++) {
		const struct ds_user *du = &ds->users[u];
		struct user_strs s;
		enc->user_code[u] = code_num(&enc->vocab[ENC_USER], du->raw_id);
		user_strs(du, zip_prefix, &s);
		enc->age_code[u] = du->age ? code_num(&enc->vocab[ENC_AGE], du->age) : 0;
		enc->gender_code[u] = du->gender ? code_str(&enc->vocab[ENC_GENDER], s.gender) : 0;
		enc->occ_code[u] = s.occ[0] ? code_str(&enc->vocab[ENC_OCC], s.occ) : 0;
		enc->zip_code[u] = s.zip[0] ? code_str(&enc->vocab[ENC_ZIP], s.zip) : 0;
	}
	for (int g = 0; g < ds->n_genres; g++)
		enc->genre_code[g] = code_str(&enc->vocab[ENC_GENRE], ds->genre_names[g]);
	for (size_t i = 0; i < ds->n_items; i++) {
		uint32_t gs = ds->items[i].genres;
		uint8_t k = 0;
		enc->item_code[i] = code_num(&enc->vocab[ENC_ITEM], ds->items[i].raw_id);
		for (int g = 0; g < ds->n_genres; g++)
			if ((gs & (1u << g)) && enc->genre_code[g])
				enc->item_genres[i][k++] = enc->genre_code[g];
		qsort(enc->item_genres[i], k, sizeof(uint32_t), cmp_u32);
		enc->n_item_genres[i] = k;
	}
out:
	free(users);
	free(items);
	free(ages);
	free(genders);
	free(occs);
	free(zips);
	free(us);
	return rc;
}

int encoding_fit(struct encoding *enc, const struct dataset *ds, const struct event *ev, size_t n,
		 int zip_prefix)
{
	size_t nu = ds->n_users + 1, ni = ds->n_items + 1;
	uint8_t *tu = calloc(nu, 1), *ti = calloc(ni, 1);
	int rc;

	memset(enc, 0, sizeof(*enc));
	enc->user_code = malloc(nu * sizeof(uint32_t));
	enc->gender_code = malloc(nu * sizeof(uint32_t));
	enc->age_code = malloc(nu * sizeof(uint32_t));
	enc->occ_code = malloc(nu * sizeof(uint32_t));
	enc->zip_code = malloc(nu * sizeof(uint32_t));
	enc->item_code = malloc(ni * sizeof(uint32_t));
	enc->n_item_genres = malloc(ni);
	enc->item_genres = malloc(ni * sizeof(*enc->item_genres));
	if (!tu || !ti || !enc->user_code || !enc->gender_code || !enc->age_code ||
	    !enc->occ_code || !enc->zip_code || !enc->item_code || !enc->n_item_genres ||
	    !enc->item_genres) {
		rc = hr_error(HR_ENOMEM, "out of memory fitting vocabularies");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (ev[i].split == SPLIT_TRAIN) {
			tu[ev[i].user] = 1;
			ti[ev[i].item] = 1;
		}
	rc = fit_vocabs(enc, ds, tu, ti, zip_prefix);
out:
	free(tu);
	free(ti);
	if (rc)
		encoding_release(enc);
	return rc;
}

void encoding_release(struct encoding *enc)
{
	for (int f = 0; f < ENC_NFIELDS; f++) {
		struct vocab *v = &enc->vocab[f];
		if (v->strs)
			for (uint32_t i = 0; i < v->n; i++)
				free(v->strs[i]);
		free(v->strs);
		free(v->nums);
	}
	free(enc->user_code);
	free(enc->gender_code);
	free(enc->age_code);
	free(enc->occ_code);
	free(enc->zip_code);
	free(enc->item_code);
	free(enc->n_item_genres);
	free(enc->item_genres);
	memset(enc, 0, sizeof(*enc));
}
