/*
 * params.h - a model's parameters: named tensors, their optimizer state,
 * and the per-worker gradient buffers that mirror them.
 *
 * Dense tensors (weights, biases) live in ONE contiguous block so that a
 * worker's gradient, the optimizer state and a checkpoint are each a single
 * array with a table of named offsets.  Embedding tables are separate
 * allocations, updated row by row (sparse).
 *
 * Life cycle: params_init, params_add_* for every tensor (shapes only),
 * params_finalize (allocates and initialises weights and optimizer state),
 * params_release.  After finalize the layout is fixed.
 *
 * Threading: workers read and write weights and optimizer state without
 * locks (Hogwild!, see optim.h and docs/ARCHITECTURE.md); nothing else in
 * this module is thread-safe.
 */
#ifndef HR_PARAMS_H
#define HR_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#include "common/rng.h"

#define PARAMS_MAX 64
#define PARAM_NAME_MAX 48

enum param_init {
	INIT_ZERO,    /* biases */
	INIT_ONE,     /* norm gains */
	INIT_XAVIER,  /* uniform +-sqrt(6 / (fan_in + fan_out)) */
	INIT_KAIMING, /* uniform +-sqrt(6 / fan_in), for ReLU layers */
	INIT_NORMAL,  /* N(0, scale^2): embeddings */
	INIT_CONST,   /* every value = scale (e.g. PReLU slopes) */
};

struct tensor {
	char name[PARAM_NAME_MAX];
	uint32_t rows, cols; /* a vector is rows = 1; an embedding is (vocab, dim) */
	int sparse;          /* embedding table, updated row-wise */
	int frozen;          /* non-trainable state (BatchNorm running statistics): its
			      * own allocation, no optimizer state, never moved by the
			      * optimizer or L2; the model writes it; checkpointed */
	uint32_t lookups;    /* sparse: most rows one sample reads (sizes sparse grads) */
	int vocab;           /* sparse: the store vocabulary (enum store_field) indexing
			       * the rows, -1 for none; lets a new store's ids be remapped */
	enum param_init init;
	float scale;
	size_t offset;  /* dense: position in the dense block */
	float *w;       /* rows * cols weights */
	float *s1, *s2; /* optimizer state (NULL when the optimizer has none) */
};

struct params {
	struct tensor t[PARAMS_MAX];
	int n;
	size_t dense_n; /* floats in the dense block */
	float *dense, *dense_s1, *dense_s2;
};

void params_init(struct params *p);

/* Declares a tensor; returns its index or HR_EINVAL (too many, bad shape). */
int params_add(struct params *p, const char *name, uint32_t rows, uint32_t cols, int sparse,
	       enum param_init init, float scale);

/*
 * Declares non-trainable state (params.h, struct tensor.frozen) initialised
 * by init; returns its index or HR_EINVAL.
 */
int params_add_state(struct params *p, const char *name, uint32_t rows, uint32_t cols,
		     enum param_init init);

/*
 * Allocates every tensor and `state` optimizer-state arrays (0, 1 or 2)
 * per tensor, and initialises weights from seed (each tensor draws from its
 * own stream, so adding a tensor does not change the others).  Embedding
 * row 0 (padding) is zero.  HR_ENOMEM.
 */
int params_finalize(struct params *p, int state, uint64_t seed);
void params_release(struct params *p);

/* The tensor called name, or NULL. */
struct tensor *params_find(struct params *p, const char *name);

/* Total number of floats (dense and embeddings). */
size_t params_count(const struct params *p);

#endif
