/* ials.c - implicit matrix factorisation by alternating least squares (baselines.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "baselines.h"
#include "common/err.h"
#include "common/rng.h"
#include "nn/nn.h"

const struct ials_opts ials_defaults = {
	.factors = 64, .iters = 10, .alpha = 3.0f, .reg = 100.0f, .seed = 1};

#define IALS_MAX_FACTORS 1024

/* G = F'F (rows n, f columns), the reg-free Gram matrix. */
static void gram(const float *F, uint32_t n, uint32_t f, float *G)
{
	nn_sgemm(true, false, (int)f, (int)f, (int)n, 1.0f, F, (int)f, F, (int)f, 0.0f, G, (int)f);
}

/*
 * One row's exact solve against the other side's factors F (rows, f):
 * x = (FF + reg I + alpha F_P'F_P)^-1 (1 + alpha) sum_{p in P} F_p, P the
 * row's positives ids[0 .. n).  scratch: f n + f f + f floats.
 */
static int solve_row(const float *F, const float *FF, uint32_t f, float alpha, float reg,
		     const uint32_t *ids, uint32_t n, float *scratch, float *x)
{
	float *Fp = scratch, *A = Fp + (size_t)f * n, *b = A + (size_t)f * f;

	if (n == 0) {
		memset(x, 0, f * sizeof(float));
		return 0;
	}
	memset(b, 0, f * sizeof(float));
	for (uint32_t p = 0; p < n; p++) {
		const float *row = F + (size_t)ids[p] * f;
		memcpy(Fp + (size_t)p * f, row, f * sizeof(float));
		for (uint32_t c = 0; c < f; c++)
			b[c] += row[c];
	}
	memcpy(A, FF, (size_t)f * f * sizeof(float));
	nn_sgemm(true, false, (int)f, (int)f, (int)n, alpha, Fp, (int)f, Fp, (int)f, 1.0f, A,
		 (int)f);
	for (uint32_t c = 0; c < f; c++) {
		A[(size_t)c * f + c] += reg;
		b[c] *= 1.0f + alpha;
	}
	int rc = nn_spd_solve((int)f, 1, A, b);
	if (!rc)
		memcpy(x, b, f * sizeof(float));
	return rc;
}

/* One half-iteration: every row of X (rows n_rows) from F, by x's positives in CSR (off, ids, lab). */
static int half_step(float *X, uint32_t n_rows, const float *F, uint32_t n_f, uint32_t f,
		     float alpha, float reg, const uint64_t *off, const uint32_t *ids,
		     const uint8_t *lab, uint32_t *pos, float *FF, float *scratch)
{
	int rc = 0;

	gram(F, n_f, f, FF);
	for (uint32_t r = 0; !rc && r < n_rows; r++) {
		uint32_t n = 0;
		for (uint64_t e = off[r]; e < off[r + 1]; e++)
			if (lab[e] == 1)
				pos[n++] = ids[e];
		rc = solve_row(F, FF, f, alpha, reg, pos, n, scratch, X + (size_t)r * f);
	}
	return rc;
}

int ials_fit(struct ials *m, const struct interactions *x, const struct ials_opts *o)
{
	uint32_t f = o->factors, most = 1;
	float *X = NULL, *scratch = NULL;
	uint32_t *pos = NULL;
	struct rng r;
	int rc = 0;

	memset(m, 0, sizeof(*m));
	if (f == 0 || f > IALS_MAX_FACTORS || !(o->alpha >= 0) || !(o->reg >= 0))
		return hr_error(HR_EINVAL,
				"iALS: factors %u (1..%d), alpha %g and reg %g (>= 0) out of range",
				f, IALS_MAX_FACTORS, o->alpha, o->reg);
	for (uint32_t u = 0; u < x->n_users; u++)
		if (x->user_off[u + 1] - x->user_off[u] > most)
			most = (uint32_t)(x->user_off[u + 1] - x->user_off[u]);
	for (uint32_t i = 0; i < x->n_items; i++)
		if (x->item_off[i + 1] - x->item_off[i] > most)
			most = (uint32_t)(x->item_off[i + 1] - x->item_off[i]);
	m->n_items = x->n_items;
	m->f = f;
	m->alpha = o->alpha;
	m->reg = o->reg;
	m->Y = malloc(((size_t)x->n_items * f + 1) * sizeof(float));
	m->YY = malloc((size_t)f * f * sizeof(float));
	X = calloc((size_t)x->n_users * f + 1, sizeof(float));
	scratch = malloc(((size_t)f * most + (size_t)f * f + f) * sizeof(float));
	pos = malloc((size_t)most * sizeof(uint32_t));
	if (!m->Y || !m->YY || !X || !scratch || !pos) {
		rc = hr_error(HR_ENOMEM, "out of memory for iALS (%u users, %u items, %u factors)",
			      x->n_users, x->n_items, f);
		goto out;
	}
	rng_seed(&r, o->seed, 0x1a15);
	for (size_t k = 0; k < (size_t)x->n_items * f; k++)
		m->Y[k] = (float)(rng_normal(&r) * 0.01);
	for (uint32_t it = 0; !rc && it < o->iters; it++) {
		rc = half_step(X, x->n_users, m->Y, x->n_items, f, o->alpha, o->reg, x->user_off,
			       x->user_item, x->user_label, pos, m->YY, scratch);
		if (!rc)
			rc = half_step(m->Y, x->n_items, X, x->n_users, f, o->alpha, o->reg,
				       x->item_off, x->item_user, x->item_label, pos, m->YY,
				       scratch);
	}
	if (!rc)
		gram(m->Y, x->n_items, f, m->YY);
out:
	free(X);
	free(scratch);
	free(pos);
	if (rc)
		ials_release(m);
	return rc;
}

uint64_t ials_scratch_floats(const struct ials *m, uint32_t max_items)
{
	return (uint64_t)m->f * max_items + (uint64_t)m->f * m->f + m->f;
}

int ials_fold_in(const struct ials *m, const uint32_t *items, uint32_t n, float *scratch, float *x)
{
	return solve_row(m->Y, m->YY, m->f, m->alpha, m->reg, items, n, scratch, x);
}

void ials_score(const struct ials *m, const float *X, uint32_t n_users, float *S)
{
	nn_sgemm(false, true, (int)n_users, (int)m->n_items, (int)m->f, 1.0f, X, (int)m->f, m->Y,
		 (int)m->f, 0.0f, S, (int)m->n_items);
}

void ials_release(struct ials *m)
{
	free(m->Y);
	free(m->YY);
	memset(m, 0, sizeof(*m));
}
