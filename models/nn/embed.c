/* embed.c - embedding lookup and bag pooling (sum, mean, max) with padding. */
#include "models/nn/nn.h"

#include <stddef.h>
#include <string.h>

#include "common/err.h"

void nn_embedding_forward(float *out, const uint32_t *ids, const float *table, int B, int V, int D)
{
	HR_ASSERT(B >= 0 && V >= 0 && D >= 0);
	for (int b = 0; b < B; b++) {
		HR_ASSERT(ids[b] < (uint32_t)V);
		memcpy(out + (size_t)b * D, table + (size_t)ids[b] * D, (size_t)D * sizeof(float));
	}
}

void nn_embedding_backward(float *dtable, const float *dout, const uint32_t *ids, int B, int V,
			   int D)
{
	HR_ASSERT(B >= 0 && V >= 0 && D >= 0);
	if (!dtable)
		return;
	for (int b = 0; b < B; b++) {
		HR_ASSERT(ids[b] < (uint32_t)V);
		float *dt = dtable + (size_t)ids[b] * D;
		const float *g = dout + (size_t)b * D;
		for (int d = 0; d < D; d++)
			dt[d] += g[d];
	}
}

/* One bag: out (D), argmax (D) or NULL, ids (n), table (V, D). */
static void bag_one(float *out, int32_t *argmax, const uint32_t *ids, int n, const float *table,
		    enum nn_pool mode, int V, int D)
{
	memset(out, 0, (size_t)D * sizeof(float));
	if (mode == NN_POOL_MAX && argmax)
		for (int d = 0; d < D; d++)
			argmax[d] = -1;
	for (int l = 0; l < n; l++) {
		HR_ASSERT(ids[l] < (uint32_t)V);
		const float *row = table + (size_t)ids[l] * D;
		if (mode != NN_POOL_MAX) {
			for (int d = 0; d < D; d++)
				out[d] += row[d];
		} else if (l == 0) {
			memcpy(out, row, (size_t)D * sizeof(float));
			for (int d = 0; d < D; d++)
				argmax[d] = 0;
		} else {
			for (int d = 0; d < D; d++)
				if (row[d] > out[d]) { /* strict: ties keep the lowest l */
					out[d] = row[d];
					argmax[d] = l;
				}
		}
	}
	if (mode == NN_POOL_MEAN && n > 0) {
		float inv = 1.0f / (float)n;
		for (int d = 0; d < D; d++)
			out[d] *= inv;
	}
}

void nn_bag_forward(float *out, int32_t *argmax, const uint32_t *ids, const uint32_t *lens,
		    const float *table, enum nn_pool mode, int B, int L, int V, int D)
{
	HR_ASSERT(B >= 0 && L >= 0 && V >= 0 && D >= 0);
	HR_ASSERT(mode == NN_POOL_SUM || mode == NN_POOL_MEAN || mode == NN_POOL_MAX);
	HR_ASSERT(mode != NN_POOL_MAX || argmax != NULL);
	for (int b = 0; b < B; b++) {
		HR_ASSERT(lens[b] <= (uint32_t)L);
		bag_one(out + (size_t)b * D, argmax ? argmax + (size_t)b * D : NULL,
			ids + (size_t)b * L, (int)lens[b], table, mode, V, D);
	}
}

void nn_bag_backward(float *dslots, const float *dout, const int32_t *argmax, const uint32_t *lens,
		     enum nn_pool mode, int B, int L, int D)
{
	HR_ASSERT(B >= 0 && L >= 0 && D >= 0);
	HR_ASSERT(mode == NN_POOL_SUM || mode == NN_POOL_MEAN || mode == NN_POOL_MAX);
	HR_ASSERT(mode != NN_POOL_MAX || argmax != NULL);
	if (!dslots)
		return;
	for (int b = 0; b < B; b++) {
		int n = (int)lens[b];
		const float *g = dout + (size_t)b * D;
		float *ds = dslots + (size_t)b * L * D; // (L, D)

		HR_ASSERT(lens[b] <= (uint32_t)L);
		if (mode == NN_POOL_MAX) {
			const int32_t *am = argmax + (size_t)b * D;
			for (int d = 0; d < D; d++) {
				HR_ASSERT(am[d] < n); /* -1 only for empty bags */
				if (am[d] >= 0)
					ds[(size_t)am[d] * D + d] += g[d];
			}
			continue;
		}
		float scale = mode == NN_POOL_MEAN && n > 0 ? 1.0f / (float)n : 1.0f;
		for (int l = 0; l < n; l++)
			for (int d = 0; d < D; d++)
				ds[(size_t)l * D + d] += g[d] * scale;
	}
}

void nn_bag_scatter(float *dtable, const float *dslots, const uint32_t *ids, const uint32_t *lens,
		    int B, int L, int V, int D)
{
	HR_ASSERT(B >= 0 && L >= 0 && V >= 0 && D >= 0);
	if (!dtable)
		return;
	for (int b = 0; b < B; b++) {
		HR_ASSERT(lens[b] <= (uint32_t)L);
		for (int l = 0; l < (int)lens[b]; l++) {
			uint32_t id = ids[(size_t)b * L + l];
			const float *g = dslots + ((size_t)b * L + l) * D;
			float *dt = dtable + (size_t)id * D;

			HR_ASSERT(id < (uint32_t)V);
			for (int d = 0; d < D; d++)
				dt[d] += g[d];
		}
	}
}
