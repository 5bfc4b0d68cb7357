#include "optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/simd.h"

void optim_defaults(struct optim *o, enum optim_kind kind)
{
	o->kind = kind;
	o->lr = kind == OPTIM_ADAM ? 1e-3f : kind == OPTIM_ADAGRAD ? 1e-2f : 1e-1f;
	o->lr_sparse = o->lr;
	o->l2 = 0.0f;
	o->beta1 = 0.9f;
	o->beta2 = 0.999f;
	o->eps = kind == OPTIM_ADAGRAD ? 1e-10f : 1e-8f;
}

int optim_parse(const char *name)
{
	if (!strcmp(name, "sgd"))
		return OPTIM_SGD;
	if (!strcmp(name, "adagrad"))
		return OPTIM_ADAGRAD;
	if (!strcmp(name, "adam"))
		return OPTIM_ADAM;
	return -1;
}

const char *optim_name(enum optim_kind kind)
{
	return kind == OPTIM_ADAM ? "adam" : kind == OPTIM_ADAGRAD ? "adagrad" : "sgd";
}

int optim_state_count(enum optim_kind kind)
{
	return kind == OPTIM_ADAM ? 2 : kind == OPTIM_ADAGRAD ? 1 : 0;
}

/*
 * The step size of one update: lr, times Adam's bias correction at `step`
 * (computed once per call, not per row).
 */
static float step_size(const struct optim *o, float lr, uint64_t step)
{
	double t = (double)step;

	if (o->kind != OPTIM_ADAM)
		return lr;
	return lr * (float)(sqrt(1.0 - pow(o->beta2, t)) / (1.0 - pow(o->beta1, t)));
}

/*
 * The one update rule, over n contiguous values, with step size a (see
 * step_size).  Racy by design when called from several workers on shared
 * w/s1/s2 (Hogwild!).
 */
HR_MULTIVERSION
static void update(const struct optim *o, float a, float *restrict w, float *restrict s1,
		   float *restrict s2, const float *restrict g, size_t n)
{
	const float l2 = o->l2, eps = o->eps, b1 = o->beta1, b2 = o->beta2;

	switch (o->kind) {
	case OPTIM_SGD:
		for (size_t i = 0; i < n; i++)
			w[i] -= a * (g[i] + l2 * w[i]);
		break;
	case OPTIM_ADAGRAD:
		for (size_t i = 0; i < n; i++) {
			float gi = g[i] + l2 * w[i];
			s1[i] += gi * gi;
			w[i] -= a * gi / (sqrtf(s1[i]) + eps);
		}
		break;
	case OPTIM_ADAM:
		for (size_t i = 0; i < n; i++) {
			float gi = g[i] + l2 * w[i];
			s1[i] = b1 * s1[i] + (1.0f - b1) * gi;
			s2[i] = b2 * s2[i] + (1.0f - b2) * gi * gi;
			w[i] -= a * s1[i] / (sqrtf(s2[i]) + eps);
		}
		break;
	}
}

void optim_dense_update(const struct optim *o, struct params *p, const float *grad, uint64_t step)
{
	update(o, step_size(o, o->lr, step), p->dense, p->dense_s1, p->dense_s2, grad, p->dense_n);
}

void optim_sparse_update(const struct optim *o, struct tensor *t, const uint32_t *rows,
			 const float *grad, uint32_t n, uint64_t step)
{
	size_t c = t->cols;
	float a = step_size(o, o->lr_sparse, step);

	for (uint32_t k = 0; k < n; k++) {
		size_t off = (size_t)rows[k] * c;
		update(o, a, t->w + off, t->s1 ? t->s1 + off : NULL, t->s2 ? t->s2 + off : NULL,
		       grad + (size_t)k * c, c);
	}
}

/* [lo, hi) of n split in `parts`: part k's share, boundaries at multiples of `align`. */
static void share(size_t n, size_t align, int k, int parts, size_t *lo, size_t *hi)
{
	size_t units = (n + align - 1) / align;

	*lo = units * (size_t)k / (size_t)parts * align;
	*hi = units * (size_t)(k + 1) / (size_t)parts * align;
	if (*lo > n)
		*lo = n;
	if (*hi > n)
		*hi = n;
}

void optim_step(const struct optim *o, struct params *p, const float *grad,
		const struct sparse_grad *sg, uint64_t step, int part, int parts)
{
	size_t lo, hi;

	share(p->dense_n, 16, part, parts, &lo, &hi); /* 16 floats: one cache line */
	if (hi > lo)
		update(o, step_size(o, o->lr, step), p->dense + lo,
		       p->dense_s1 ? p->dense_s1 + lo : NULL, p->dense_s2 ? p->dense_s2 + lo : NULL,
		       grad + lo, hi - lo);
	for (int i = 0; i < p->n; i++) {
		if (!p->t[i].sparse)
			continue;
		share(sg[i].n, 1, part, parts, &lo, &hi);
		optim_sparse_update(o, &p->t[i], sg[i].rows + lo, sg[i].g + lo * sg[i].cols,
				    (uint32_t)(hi - lo), step);
	}
}

int sparse_grad_init(struct sparse_grad *s, uint32_t cap, uint32_t cols)
{
	uint32_t slots = 16;

	memset(s, 0, sizeof(*s));
	while (slots < 2 * cap)
		slots *= 2;
	s->cols = cols;
	s->cap = cap;
	s->mask = slots - 1;
	s->rows = malloc((size_t)cap * sizeof(*s->rows));
	s->g = malloc((size_t)cap * cols * sizeof(*s->g));
	s->slots = calloc(slots, sizeof(*s->slots));
	if (!s->rows || !s->g || !s->slots) {
		sparse_grad_release(s);
		return hr_error(HR_ENOMEM, "out of memory for sparse gradients");
	}
	return 0;
}

void sparse_grad_release(struct sparse_grad *s)
{
	free(s->rows);
	free(s->g);
	free(s->slots);
	memset(s, 0, sizeof(*s));
}

static uint32_t slot_hash(uint32_t row)
{
	return (uint32_t)(((uint64_t)row * 0x9e3779b97f4a7c15ULL) >> 32);
}

void sparse_grad_clear(struct sparse_grad *s)
{
	if (s->n)
		memset(s->slots, 0, ((size_t)s->mask + 1) * sizeof(*s->slots));
	s->n = 0;
}

float *sparse_grad_row(struct sparse_grad *s, uint32_t row)
{
	uint32_t i;

	if (row == 0)
		return NULL;
	for (i = slot_hash(row) & s->mask; s->slots[i]; i = (i + 1) & s->mask)
		if (s->rows[s->slots[i] - 1] == row)
			return s->g + (size_t)(s->slots[i] - 1) * s->cols;
	if (s->n == s->cap)
		return NULL;
	s->slots[i] = s->n + 1;
	s->rows[s->n] = row;
	float *g = s->g + (size_t)s->n * s->cols;
	memset(g, 0, s->cols * sizeof(*g));
	s->n++;
	return g;
}

void sparse_grad_add(struct sparse_grad *s, uint32_t row, const float *v)
{
	float *g = sparse_grad_row(s, row);

	if (g)
		for (uint32_t k = 0; k < s->cols; k++)
			g[k] += v[k];
}
