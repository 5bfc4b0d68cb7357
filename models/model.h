/*
 * model.h - the one interface every model implements.
 *
 * A model is a struct model_ops (its functions) plus a struct model (its
 * parameters and configuration).  Adding a model is one file defining a
 * `const struct model_ops model_<name>` and one line in model.c's table.
 *
 * Training a batch (per worker, see trainer/):
 *   ops->forward(m, ws, b, logits, 1)          logits (B)
 *   dlogits = d loss / d logits                  (nn BCE backward)
 *   zero grad (m->params.dense_n floats); clear the sparse grads
 *   ops->backward(m, ws, b, dlogits, grad, sg)  accumulates into grad and sg
 *   optim_dense_update / optim_sparse_update    Hogwild updates
 * ws is the worker's scratch of ops->workspace_floats(m, B) floats: forward
 * keeps there what backward needs.  forward and backward read the shared
 * weights without locks and never write them; they are callable from many
 * threads at once with distinct ws, grad and sg.
 */
#ifndef HR_MODEL_H
#define HR_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "batch.h"
#include "optim.h"
#include "params.h"
#include "store/info.h"

#define MODEL_MAX_HIDDEN 8

struct model_config {
	uint32_t emb_dim;                  /* embedding width (default 32) */
	uint32_t hidden[MODEL_MAX_HIDDEN]; /* MLP / tower widths; the last is the output width */
	int n_hidden;
	uint64_t seed; /* weight initialisation */
};

/* What a model reads from a store; checked against the store before training. */
enum model_needs {
	NEEDS_DEMOGRAPHICS = 1 << 0, /* gender, age, occupation, zip */
	NEEDS_HISTORY = 1 << 1,
	NEEDS_DENSE = 1 << 2,
	NEEDS_GENRES = 1 << 3,
};

struct model;

struct model_ops {
	const char *name;               /* lowercase, as on the command line */
	const char *summary;            /* one line for --help */
	unsigned needs;                 /* enum model_needs bits */
	const uint32_t *default_hidden; /* zero-terminated */

	/* Declares the parameters (params_add) and reads the config.  HR_EINVAL. */
	int (*init)(struct model *m, const struct store_info *info);
	void (*release)(struct model *m);
	size_t (*workspace_floats)(const struct model *m, uint32_t batch);
	void (*forward)(const struct model *m, float *ws, const struct batch *b, float *logits,
			int train);
	void (*backward)(const struct model *m, float *ws, const struct batch *b,
			 const float *dlogits, float *grad, struct sparse_grad *sg);
	/* Multiply-adds times two of one sample's forward pass (for GFLOP/s). */
	double (*flops_forward)(const struct model *m);
};

struct model {
	const struct model_ops *ops;
	struct model_config cfg;
	struct store_info info;
	struct params params;
	void *impl; /* the model's own state (layer sizes, tensor indices) */
};

/* The model called name, or NULL. */
const struct model_ops *model_find(const char *name);
/* The i-th registered model (0, 1, ...), NULL past the last: tests loop over all. */
const struct model_ops *model_at(size_t i);
/* Writes "  name  summary" lines for --help. */
void model_list(FILE *out);

/*
 * Builds model `name` for a store: checks the store has what it needs
 * (HR_EINVAL naming the missing fields), declares and initialises the
 * parameters with `state` optimizer arrays each.
 */
int model_create(struct model *m, const char *name, const struct model_config *cfg,
		 const struct store_info *info, int state);
void model_release(struct model *m);

/*
 * The record_unpack_fields() flags (store/codec.h) that skip the record
 * fields m does not read: sequences without NEEDS_HISTORY, and genres and
 * dense features too when it reads none of them (decoding is the loader's
 * cost for small models).
 */
unsigned model_decode_flags(const struct model *m);

#endif
