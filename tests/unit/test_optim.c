/* Unit tests of parameter tables, sparse gradients and the optimizers. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "models/optim.h"
#include "models/params.h"

static void test_params_layout(void **state)
{
	struct params p, q;
	(void)state;
	params_init(&p);
	assert_int_equal(params_add(&p, "emb", 10, 4, 1, INIT_NORMAL, 0.1f), 0);
	assert_int_equal(params_add(&p, "w", 3, 5, 0, INIT_XAVIER, 0), 1);
	assert_int_equal(params_add(&p, "b", 1, 3, 0, INIT_ZERO, 0), 2);
	assert_int_equal(params_add(&p, "bad", 0, 3, 0, INIT_ZERO, 0), HR_EINVAL);
	assert_int_equal(params_finalize(&p, 2, 7), 0);
	/* Dense tensors are 16-float aligned inside one block. */
	assert_int_equal(p.t[1].offset, 0);
	assert_int_equal(p.t[2].offset, 16);
	assert_int_equal(p.dense_n, 32);
	assert_ptr_equal(p.t[2].w, p.dense + 16);
	assert_ptr_equal(p.t[2].s2, p.dense_s2 + 16);
	assert_ptr_equal(params_find(&p, "w"), &p.t[1]);
	assert_null(params_find(&p, "nope"));
	assert_int_equal(params_count(&p), 40 + 15 + 3);
	/* Padding row of an embedding is zero; others are not; biases zero. */
	for (int k = 0; k < 4; k++)
		assert_true(p.t[0].w[k] == 0.0f);
	assert_true(p.t[0].w[4] != 0.0f);
	assert_true(p.t[2].w[0] == 0.0f);
	float a = sqrtf(6.0f / 8.0f);
	for (int k = 0; k < 15; k++)
		assert_true(fabsf(p.t[1].w[k]) <= a);
	/* Same seed, same weights. */
	params_init(&q);
	params_add(&q, "emb", 10, 4, 1, INIT_NORMAL, 0.1f);
	params_add(&q, "w", 3, 5, 0, INIT_XAVIER, 0);
	params_add(&q, "b", 1, 3, 0, INIT_ZERO, 0);
	assert_int_equal(params_finalize(&q, 0, 7), 0);
	assert_memory_equal(p.t[0].w, q.t[0].w, 40 * sizeof(float));
	assert_memory_equal(p.dense, q.dense, 32 * sizeof(float));
	assert_null(q.dense_s1);
	params_release(&p);
	params_release(&q);
}

static void test_sparse_grad(void **state)
{
	struct sparse_grad s;
	float one[3] = {1, 2, 3};
	(void)state;
	assert_int_equal(sparse_grad_init(&s, 3, 3), 0);
	sparse_grad_add(&s, 5, one);
	sparse_grad_add(&s, 9, one);
	sparse_grad_add(&s, 5, one);
	sparse_grad_add(&s, 0, one); /* padding row: ignored */
	assert_int_equal(s.n, 2);
	assert_int_equal(s.rows[0], 5);
	assert_true(s.g[0] == 2.0f && s.g[2] == 6.0f);
	assert_true(s.g[3] == 1.0f);
	assert_non_null(sparse_grad_row(&s, 11));
	assert_null(sparse_grad_row(&s, 12)); /* full */
	sparse_grad_clear(&s);
	assert_int_equal(s.n, 0);
	sparse_grad_add(&s, 9, one);
	assert_int_equal(s.n, 1);
	assert_true(s.g[0] == 1.0f); /* fresh, not the old sum */
	sparse_grad_release(&s);
}

static void one_step(enum optim_kind kind, float l2, float w0, float g, uint64_t steps, float *w)
{
	struct params p;
	struct optim o;
	params_init(&p);
	params_add(&p, "w", 1, 1, 0, INIT_CONST, w0);
	assert_int_equal(params_finalize(&p, optim_state_count(kind), 1), 0);
	optim_defaults(&o, kind);
	o.lr = 0.1f;
	o.l2 = l2;
	float grad[16] = {g};
	for (uint64_t t = 1; t <= steps; t++)
		optim_dense_update(&o, &p, grad, t);
	*w = p.t[0].w[0];
	params_release(&p);
}

static void test_optimizers(void **state)
{
	float w;
	(void)state;
	one_step(OPTIM_SGD, 0, 1.0f, 0.5f, 1, &w);
	assert_float_equal(w, 1.0f - 0.1f * 0.5f, 1e-7);
	one_step(OPTIM_SGD, 0.2f, 1.0f, 0.5f, 1, &w);
	assert_float_equal(w, 1.0f - 0.1f * (0.5f + 0.2f), 1e-7);
	/* Adagrad: s = g^2, w -= lr g / sqrt(s) = lr * sign(g) on the first step. */
	one_step(OPTIM_ADAGRAD, 0, 1.0f, 0.5f, 1, &w);
	assert_float_equal(w, 0.9f, 1e-6);
	/* Second step: s = 2 g^2, step lr / sqrt(2). */
	one_step(OPTIM_ADAGRAD, 0, 1.0f, 0.5f, 2, &w);
	assert_float_equal(w, 1.0f - 0.1f - 0.1f / sqrtf(2.0f), 1e-6);
	/* Adam with bias correction: each step moves by ~lr for a constant gradient. */
	one_step(OPTIM_ADAM, 0, 1.0f, 0.5f, 1, &w);
	assert_float_equal(w, 0.9f, 1e-5);
	one_step(OPTIM_ADAM, 0, 1.0f, -3.0f, 3, &w);
	assert_float_equal(w, 1.3f, 1e-5);
}

static void test_sparse_update_rows_only(void **state)
{
	struct params p;
	struct optim o;
	uint32_t rows[2] = {2, 4};
	float g[4] = {1, 1, -1, -1};
	(void)state;
	params_init(&p);
	params_add(&p, "emb", 6, 2, 1, INIT_CONST, 1.0f);
	assert_int_equal(params_finalize(&p, 2, 3), 0);
	optim_defaults(&o, OPTIM_ADAM);
	o.lr_sparse = 0.5f;
	optim_sparse_update(&o, &p.t[0], rows, g, 2, 1);
	float *w = p.t[0].w;
	assert_float_equal(w[2 * 2], 0.5f, 1e-5);
	assert_float_equal(w[4 * 2 + 1], 1.5f, 1e-5);
	assert_true(w[1 * 2] == 1.0f && w[3 * 2] == 1.0f && w[5 * 2] == 1.0f); /* untouched */
	assert_true(p.t[0].s1[3 * 2] == 0.0f);                                 /* lazy state */
	params_release(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_params_layout),
		cmocka_unit_test(test_sparse_grad),
		cmocka_unit_test(test_optimizers),
		cmocka_unit_test(test_sparse_update_rows_only),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
