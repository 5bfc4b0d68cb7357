/*
 * test_swap.c - the reference-counted current object (serve/swap.h):
 * publish, acquire and release count references and destroy each object
 * exactly once, by the last holder; readers that score while a writer
 * swaps see whole objects only, never a freed or half-built one (each
 * object's payload is checked on every acquire: filled before publish,
 * poisoned in the destructor, so a use after free or an unordered publish
 * shows as a wrong value here and as a race under TSan).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "serve/swap.h"

#define PAYLOAD 256

static atomic_int destroyed;

struct obj {
	struct swap_item ref;
	uint64_t gen;
	uint64_t v[PAYLOAD]; /* every entry gen: a reader checks all of them */
};

static void obj_destroy(struct swap_item *it)
{
	struct obj *o = (struct obj *)((char *)it - offsetof(struct obj, ref));

	for (int i = 0; i < PAYLOAD; i++)
		o->v[i] = UINT64_MAX; /* poison: a late reader would see it (and TSan a race) */
	atomic_fetch_add(&destroyed, 1);
	free(o);
}

static struct obj *obj_new(uint64_t gen)
{
	struct obj *o = malloc(sizeof(*o));

	assert_non_null(o);
	swap_item_init(&o->ref, obj_destroy);
	o->gen = gen;
	for (int i = 0; i < PAYLOAD; i++)
		o->v[i] = gen;
	return o;
}

static struct obj *obj_of(struct swap_item *it)
{
	return (struct obj *)((char *)it - offsetof(struct obj, ref));
}

static void test_counts(void **state)
{
	struct swap s;
	struct swap_item *a, *b;

	(void)state;
	atomic_store(&destroyed, 0);
	swap_init(&s);
	assert_null(swap_acquire(&s));
	swap_publish(&s, &obj_new(1)->ref);
	a = swap_acquire(&s);
	assert_int_equal(obj_of(a)->gen, 1);
	swap_publish(&s, &obj_new(2)->ref); /* a still holds generation 1 */
	assert_int_equal(atomic_load(&destroyed), 0);
	assert_int_equal(obj_of(a)->v[PAYLOAD - 1], 1);
	b = swap_acquire(&s);
	assert_int_equal(obj_of(b)->gen, 2);
	swap_release(a); /* the last holder of 1 frees it */
	assert_int_equal(atomic_load(&destroyed), 1);
	swap_release(b);
	assert_int_equal(atomic_load(&destroyed), 1); /* 2 is still current */
	assert_int_equal(swap_published(&s), 2);
	swap_release_all(&s);
	assert_int_equal(atomic_load(&destroyed), 2);
	swap_release(NULL);
}

#define READERS 4
#define GENERATIONS 300

struct shared {
	struct swap s;
	atomic_int done;
	atomic_int started;     /* readers that have acquired once */
	uint64_t seen[READERS]; /* acquires per reader */
	uint64_t bad[READERS];  /* payloads that were not whole */
	uint64_t backwards[READERS];
};

struct reader_arg {
	struct shared *sh;
	int id;
};

static void *reader(void *p)
{
	struct reader_arg *a = p;
	struct shared *sh = a->sh;
	uint64_t last = 0;

	while (!atomic_load(&sh->done)) {
		struct swap_item *it = swap_acquire(&sh->s);
		struct obj *o;
		if (!it)
			continue;
		o = obj_of(it);
		if (sh->seen[a->id] == 0)
			atomic_fetch_add(&sh->started, 1);
		for (int i = 0; i < PAYLOAD; i++) /* "scoring": reads the whole object */
			if (o->v[i] != o->gen) {
				sh->bad[a->id]++;
				break;
			}
		if (o->gen < last) /* one writer: generations only grow */
			sh->backwards[a->id]++;
		last = o->gen;
		sh->seen[a->id]++;
		swap_release(it);
	}
	return NULL;
}

static void test_readers_while_swapping(void **state)
{
	struct shared *sh = calloc(1, sizeof(*sh));
	struct reader_arg args[READERS];
	pthread_t th[READERS];

	(void)state;
	assert_non_null(sh);
	atomic_store(&destroyed, 0);
	swap_init(&sh->s);
	swap_publish(&sh->s, &obj_new(1)->ref);
	for (int i = 0; i < READERS; i++) {
		args[i] = (struct reader_arg){sh, i};
		assert_int_equal(pthread_create(&th[i], NULL, reader, &args[i]), 0);
	}
	/* every reader in its loop before the swaps start: on a loaded machine a
	 * thread not yet scheduled would otherwise see nothing (a flaky test) */
	while (atomic_load(&sh->started) < READERS)
		sched_yield();
	for (uint64_t g = 2; g <= GENERATIONS; g++) {
		swap_publish(&sh->s, &obj_new(g)->ref);
		if (g % 16 == 0)
			sched_yield();
	}
	atomic_store(&sh->done, 1);
	for (int i = 0; i < READERS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	/* every generation but the current one is freed once no reader holds it */
	assert_int_equal(atomic_load(&destroyed), GENERATIONS - 1);
	swap_release_all(&sh->s);
	assert_int_equal(atomic_load(&destroyed), GENERATIONS);
	for (int i = 0; i < READERS; i++) {
		assert_int_equal(sh->bad[i], 0);
		assert_int_equal(sh->backwards[i], 0);
		assert_true(sh->seen[i] > 0);
	}
	free(sh);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counts),
		cmocka_unit_test(test_readers_while_swapping),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
