#include "fields.h"

#include <string.h>

#include "batch.h"
#include "nn/nn.h"

int fields_declare(struct params *p, const struct store_info *info, uint32_t E,
		   enum param_init init, float scale, int t[F_N])
{
	static const char *const names[F_N] = {
		"user_emb",       "item_emb", "gender_emb", "age_emb",
		"occupation_emb", "zip_emb",  "genre_emb",
	};
	static const enum store_field fields[F_N] = {
		SF_USER, SF_ITEM, SF_GENDER, SF_AGE, SF_OCCUPATION, SF_ZIP, SF_GENRE,
	};

	for (int k = 0; k < F_N; k++) {
		t[k] = params_add(p, names[k], info->vocab[fields[k]], E, 1, init, scale);
		if (t[k] < 0)
			return t[k];
		p->t[t[k]].lookups = 1;
		p->t[t[k]].vocab = (int)fields[k];
	}
	p->t[t[F_ITEM]].lookups = 1 + info->hist_len;
	p->t[t[F_GENRE]].lookups = BATCH_GENRES;
	return 0;
}

void fields_gather(float *x, size_t s, size_t col, const float *table, const uint32_t *ids,
		   uint32_t B, uint32_t E)
{
	for (uint32_t r = 0; r < B; r++)
		memcpy(x + r * s + col, table + (size_t)ids[r] * E, E * sizeof(float));
}

void fields_bag_grads(struct sparse_grad *sg, float *dslots, const float *dpool,
		      const uint32_t *ids, const uint32_t *lens, uint32_t B, uint32_t L, uint32_t E)
{
	memset(dslots, 0, (size_t)B * L * E * sizeof(float));
	nn_bag_backward(dslots, dpool, NULL, lens, NN_POOL_MEAN, (int)B, (int)L, (int)E);
	for (uint32_t r = 0; r < B; r++)
		for (uint32_t l = 0; l < lens[r]; l++)
			sparse_grad_add(sg, ids[(size_t)r * L + l],
					dslots + ((size_t)r * L + l) * E);
}
