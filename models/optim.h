/*
 * optim.h - optimizers and sparse gradients.
 *
 * SGD, Adagrad and Adam, each with a dense form (the whole dense block at
 * once) and a sparse, row-wise lazy form for embedding tables (only rows
 * the batch touched are updated, their state included; Adam's bias
 * correction uses the global step, like TensorFlow's LazyAdam).  L2
 * regularisation adds l2 * w to the gradient of what is updated.
 *
 * Hogwild!: optim_dense_update and optim_sparse_update write the shared
 * weights and optimizer state without locks, concurrently from every
 * worker.  These two functions (and the model forward passes that read the
 * weights) are the only places where parameter memory is shared racily;
 * docs/ARCHITECTURE.md explains why that is acceptable and how the TSan
 * suppressions are scoped to them.
 *
 * struct sparse_grad is per worker: it sums the gradient rows of one
 * embedding table over a batch (a row looked up twice gets one summed
 * update), then hands distinct rows to optim_sparse_update.
 */
#ifndef HR_OPTIM_H
#define HR_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "params.h"

enum optim_kind { OPTIM_SGD = 0, OPTIM_ADAGRAD = 1, OPTIM_ADAM = 2 };

struct optim {
	enum optim_kind kind;
	float lr;        /* dense learning rate */
	float lr_sparse; /* embedding learning rate */
	float l2;
	float beta1, beta2, eps;
};

/* Defaults for kind: Adam lr 1e-3, betas 0.9/0.999, eps 1e-8; l2 0. */
void optim_defaults(struct optim *o, enum optim_kind kind);
/* "sgd", "adagrad", "adam"; -1 otherwise. */
int optim_parse(const char *name);
const char *optim_name(enum optim_kind kind);
/* Optimizer-state arrays per parameter: 0 (SGD), 1 (Adagrad), 2 (Adam). */
int optim_state_count(enum optim_kind kind);

/* Applies the dense gradient (p->dense_n floats) at global step >= 1.  Hogwild. */
void optim_dense_update(const struct optim *o, struct params *p, const float *grad, uint64_t step);

/* Applies grad (n, t->cols) to the distinct rows of t.  Hogwild. */
void optim_sparse_update(const struct optim *o, struct tensor *t, const uint32_t *rows,
			 const float *grad, uint32_t n, uint64_t step);

struct sparse_grad;

/*
 * One training step's update: the dense gradient and every sparse table's
 * summed rows (sg[i] for each sparse tensor i of p), or part `part` of
 * `parts` of it: a contiguous share of the dense values and of each
 * table's rows.  The parts together apply exactly the whole update, each
 * value by the same arithmetic, so a step split over threads (common/team.h)
 * gives the same bits as one thread.  Hogwild.
 */
void optim_step(const struct optim *o, struct params *p, const float *grad,
		const struct sparse_grad *sg, uint64_t step, int part, int parts);

struct sparse_grad {
	uint32_t cols;
	uint32_t n, cap; /* distinct rows so far, capacity */
	uint32_t *rows;  /* (cap) */
	float *g;        /* (cap, cols) */
	uint32_t *slots; /* hash: row + 1 -> index + 1; 2 * cap power of two */
	uint32_t mask;
};

/* Room for cap distinct rows of width cols.  HR_ENOMEM. */
int sparse_grad_init(struct sparse_grad *s, uint32_t cap, uint32_t cols);
void sparse_grad_release(struct sparse_grad *s);
/* Forgets every row. */
void sparse_grad_clear(struct sparse_grad *s);
/*
 * The gradient row of table row `row`, zeroed on first use; NULL for row 0
 * (padding/unknown, never trained) or when cap rows are held already.
 */
float *sparse_grad_row(struct sparse_grad *s, uint32_t row);
/* Adds v (cols) to the gradient of row. */
void sparse_grad_add(struct sparse_grad *s, uint32_t row, const float *v);

#endif
