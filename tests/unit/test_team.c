/*
 * test_team.c - the fork-join group (common/team.h): every part of every
 * job runs exactly once, on its own thread, and what the parts write is
 * visible to the caller when team_run returns (the next job reads it, so
 * a lost ordering shows as a wrong sum here and as a race under TSan);
 * no helpers runs the job inline; the thread hook runs on each helper;
 * optim_step split in parts gives the bits of the whole.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>

#include "common/team.h"
#include "models/optim.h"
#include "models/params.h"

#define SLOTS 4096

struct job {
	int parts_seen;
	uint64_t runs[8];    /* per part: how often it ran */
	pthread_t thread[8]; /* per part: the thread it last ran on */
	uint64_t v[SLOTS];   /* each job adds 1 to its part's share of v */
};

static void add_one(void *arg, int part, int parts)
{
	struct job *j = arg;

	if (part == 0) /* what every part writes is its own */
		j->parts_seen = parts;
	j->runs[part]++;
	j->thread[part] = pthread_self();
	for (size_t i = SLOTS * (size_t)part / parts; i < SLOTS * (size_t)(part + 1) / parts; i++)
		j->v[i]++;
}

static void check_jobs(int helpers, int jobs)
{
	struct team *t;
	struct job *j = calloc(1, sizeof(*j));

	assert_non_null(j);
	assert_int_equal(team_start(&t, helpers, NULL), 0);
	assert_int_equal(team_parts(t), helpers + 1);
	for (int n = 1; n <= jobs; n++) {
		team_run(t, add_one, j);
		/* the caller sees every part's writes of this job */
		for (size_t i = 0; i < SLOTS; i++)
			assert_int_equal(j->v[i], (uint64_t)n);
	}
	assert_int_equal(j->parts_seen, helpers + 1);
	for (int k = 0; k <= helpers; k++)
		assert_int_equal(j->runs[k], (uint64_t)jobs);
	assert_true(pthread_equal(j->thread[0], pthread_self()));
	for (int k = 1; k <= helpers; k++) {
		assert_false(pthread_equal(j->thread[k], pthread_self()));
		for (int q = 1; q < k; q++)
			assert_false(pthread_equal(j->thread[k], j->thread[q]));
	}
	team_stop(t);
	free(j);
}

static void test_one_helper(void **state)
{
	(void)state;
	check_jobs(1, 2000);
}

static void test_three_helpers(void **state)
{
	(void)state;
	check_jobs(3, 500);
}

static void test_no_helpers_runs_inline(void **state)
{
	(void)state;
	check_jobs(0, 10);
	struct job *j = calloc(1, sizeof(*j));
	assert_non_null(j);
	team_run(NULL, add_one, j); /* no team: the call itself */
	assert_int_equal(j->parts_seen, 1);
	assert_int_equal(j->v[SLOTS - 1], 1);
	free(j);
}

static atomic_int inits;
static void count_init(void)
{
	atomic_fetch_add(&inits, 1);
}

static void test_thread_init_runs_on_each_helper(void **state)
{
	struct team *t;
	struct job j = {0};

	(void)state;
	assert_int_equal(team_start(&t, 2, count_init), 0);
	team_run(t, add_one, &j); /* each helper has started (and run its hook) */
	team_stop(t);
	assert_int_equal(atomic_load(&inits), 2);
}

static void test_stop_without_jobs(void **state)
{
	struct team *t;

	(void)state;
	assert_int_equal(team_start(&t, 2, NULL), 0);
	team_stop(t);
	team_stop(NULL);
}

/* Adam over a dense block of 1000 and a table of 50 rows (37 touched), one
 * step whole and one split in 1..4 parts from the same state: the same bits. */
static void test_optim_step_parts_equal_whole(void **state)
{
	struct optim o;
	struct params ref, p;

	(void)state;
	optim_defaults(&o, OPTIM_ADAM);
	o.l2 = 0.01f;
	for (int parts = 1; parts <= 4; parts++) {
		struct params *ps[2] = {&ref, &p};
		struct sparse_grad sg[2][2];
		float *grad;
		for (int q = 0; q < 2; q++) {
			params_init(ps[q]);
			assert_true(params_add(ps[q], "d", 1, 1000, 0, INIT_XAVIER, 0) >= 0);
			assert_true(params_add(ps[q], "e", 50, 24, 1, INIT_XAVIER, 0) >= 0);
			assert_int_equal(params_finalize(ps[q], 2, 3), 0);
			assert_int_equal(sparse_grad_init(&sg[q][1], 50, 24), 0);
			memset(&sg[q][0], 0, sizeof(sg[q][0]));
			for (uint32_t r = 1; r < 38; r++) {
				float *g = sparse_grad_row(&sg[q][1], (r * 7) % 49 + 1);
				for (int c = 0; c < 24; c++)
					g[c] = (float)((r * 31 + (uint32_t)c) % 17) * 0.01f - 0.08f;
			}
		}
		/* the dense block's length (its tensors padded for alignment) */
		grad = calloc(ref.dense_n, sizeof(float));
		assert_non_null(grad);
		for (int i = 0; i < 1000; i++)
			grad[i] = (float)(i % 13) * 0.003f - 0.02f;
		optim_step(&o, &ref, grad, sg[0], 3, 0, 1);
		for (int k = 0; k < parts; k++)
			optim_step(&o, &p, grad, sg[1], 3, k, parts);
		/* the step moved both blocks (the comparison is not of untouched state) */
		assert_true(ref.dense_s2[999] > 0 && ref.t[1].s1[8 * 24] != 0);
		assert_memory_equal(ref.dense, p.dense, ref.dense_n * sizeof(float));
		assert_memory_equal(ref.dense_s2, p.dense_s2, ref.dense_n * sizeof(float));
		assert_memory_equal(ref.t[1].w, p.t[1].w, 50 * 24 * sizeof(float));
		assert_memory_equal(ref.t[1].s1, p.t[1].s1, 50 * 24 * sizeof(float));
		for (int q = 0; q < 2; q++) {
			sparse_grad_release(&sg[q][1]);
			params_release(ps[q]);
		}
		free(grad);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_helper),
		cmocka_unit_test(test_three_helpers),
		cmocka_unit_test(test_no_helpers_runs_inline),
		cmocka_unit_test(test_thread_init_runs_on_each_helper),
		cmocka_unit_test(test_stop_without_jobs),
		cmocka_unit_test(test_optim_step_parts_equal_whole),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
