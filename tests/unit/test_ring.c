/*
 * test_ring.c - the lock-free ring: single-thread semantics, P x C stress
 * (exactly-once delivery, per-producer order per consumer), the blocking
 * paths (full and empty, futex wake-ups), close() during waits, and a
 * blocked consumer that does not burn a core.
 *
 * Worker threads never call cmocka asserts (they longjmp); they count
 * failures in atomics that the main thread asserts after joining.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <pthread.h>
#include <time.h>

#include "common/err.h"
#include "common/ring.h"

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#ifndef UNDER_TSAN
#define UNDER_TSAN 0
#endif

/* Items per producer in the stress tests, halved under TSan. */
#define STRESS_ITEMS (UNDER_TSAN ? 15000u : 30000u)
/* Naps per producer in the "sleepy" stress. */
#define STRESS_NAPS 16u

/* An item names its producer and its per-producer sequence number. */
#define SEQ_SPAN (1u << 20)

static void *enc(uint32_t producer, uint32_t seq)
{
	return (void *)(uintptr_t)(producer * SEQ_SPAN + seq);
}

static uint32_t enc_producer(void *item)
{
	return (uint32_t)((uintptr_t)item / SEQ_SPAN);
}

static uint32_t enc_seq(void *item)
{
	return (uint32_t)((uintptr_t)item % SEQ_SPAN);
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/*
 * Back-off of the non-blocking stress threads: retry hot a while, then nap.
 * Not sched_yield(): on a loaded machine a yield can give the core away
 * for a whole time slice, and these threads outnumber the cores.
 */
static void backoff(unsigned *n)
{
	if (++*n < 64)
		return;
	*n = 0;
	struct timespec ts = {0, 20000};
	nanosleep(&ts, NULL);
}

static double clock_s(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Polls until n threads are registered as sleepers on w (10 s at most). */
static int wait_sleepers(struct ring_wait *w, uint32_t n)
{
	for (int i = 0; i < 10000; i++) {
		if (atomic_load_explicit(&w->sleepers, memory_order_relaxed) == n)
			return 0;
		sleep_ms(1);
	}
	return -1;
}

/* ---- single thread ---------------------------------------------------- */

static void test_init_rejects_bad_capacity(void **state)
{
	const uint32_t bad[] = {0, 1, 3, 6, 12, 1000, (1u << 31) + 1, UINT32_MAX};
	struct ring r;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		hr_error_clear();
		assert_int_equal(ring_init(&r, bad[i]), HR_EINVAL);
		assert_non_null(strstr(hr_errmsg(), "power of two"));
		ring_release(&r); /* allowed after a failed init */
	}
	assert_int_equal(ring_init(&r, 2), 0);
	ring_release(&r);
	ring_release(&r); /* and twice */
}

/* Capacity 2, the smallest: full after two, empty after two, FIFO. */
static void test_capacity_two(void **state)
{
	struct ring r;
	void *out = NULL;
	int a, b, c;

	(void)state;
	assert_int_equal(ring_init(&r, 2), 0);
	assert_int_equal(ring_try_pop(&r, &out), RING_EMPTY);
	assert_null(out);
	assert_int_equal(ring_try_push(&r, &a), 0);
	assert_int_equal(ring_try_push(&r, &b), 0);
	assert_int_equal(ring_try_push(&r, &c), RING_FULL);
	assert_int_equal(ring_count_approx(&r), 2);
	assert_int_equal(ring_check(&r), 0);
	assert_int_equal(ring_try_pop(&r, &out), 0);
	assert_ptr_equal(out, &a);
	assert_int_equal(ring_try_push(&r, &c), 0);
	assert_int_equal(ring_try_pop(&r, &out), 0);
	assert_ptr_equal(out, &b);
	assert_int_equal(ring_try_pop(&r, &out), 0);
	assert_ptr_equal(out, &c);
	assert_int_equal(ring_try_pop(&r, &out), RING_EMPTY);
	assert_int_equal(ring_count_approx(&r), 0);
	assert_int_equal(ring_check(&r), 0);
	ring_release(&r);
}

/* Fill to capacity and drain, NULL items included, through both APIs. */
static void test_fill_drain_fifo(void **state)
{
	enum { CAP = 16 };
	struct ring r;
	void *out;

	(void)state;
	assert_int_equal(ring_init(&r, CAP), 0);
	for (uint32_t round = 0; round < 3; round++) {
		for (uint32_t i = 0; i < CAP; i++) {
			assert_int_equal(ring_count_approx(&r), i);
			/* Blocking push on a non-full ring returns at once. */
			int rc = (i & 1) ? ring_push(&r, enc(round, i)) :
					   ring_try_push(&r, enc(round, i));
			assert_int_equal(rc, 0);
		}
		assert_int_equal(ring_try_push(&r, NULL), RING_FULL);
		assert_int_equal(ring_count_approx(&r), CAP);
		assert_int_equal(ring_check(&r), 0);
		for (uint32_t i = 0; i < CAP; i++) {
			int rc = (i & 1) ? ring_pop(&r, &out) : ring_try_pop(&r, &out);
			assert_int_equal(rc, 0);
			assert_ptr_equal(out, enc(round, i));
		}
		assert_int_equal(ring_try_pop(&r, &out), RING_EMPTY);
		assert_int_equal(ring_check(&r), 0);
	}
	/* round 0, seq 0 encodes NULL: it went through like any pointer. */
	assert_null(enc(0, 0));
	ring_release(&r);
}

/* Many laps at varying fill levels: order and invariants hold. */
static void test_wraparound(void **state)
{
	enum { CAP = 8, ROUNDS = 20000 };
	struct ring r;
	uint32_t next_in = 0, next_out = 0;
	void *out;

	(void)state;
	assert_int_equal(ring_init(&r, CAP), 0);
	for (uint32_t i = 0; i < ROUNDS; i++) {
		uint32_t in = 1 + i % CAP;           /* 1..8 pushes */
		uint32_t level = next_in - next_out; /* 0..CAP */
		if (in > CAP - level)
			in = CAP - level;
		for (uint32_t k = 0; k < in; k++)
			assert_int_equal(ring_try_push(&r, enc(1, next_in++ % SEQ_SPAN)), 0);
		if (next_in - next_out == CAP)
			assert_int_equal(ring_try_push(&r, NULL), RING_FULL);
		uint32_t outn = 1 + (i * 7) % CAP; /* 1..8 pops */
		for (uint32_t k = 0; k < outn; k++) {
			int rc = ring_try_pop(&r, &out);
			if (next_out == next_in) {
				assert_int_equal(rc, RING_EMPTY);
				break;
			}
			assert_int_equal(rc, 0);
			assert_ptr_equal(out, enc(1, next_out++ % SEQ_SPAN));
		}
		assert_int_equal(ring_count_approx(&r), next_in - next_out);
		if (i % 1000 == 0)
			assert_int_equal(ring_check(&r), 0);
	}
	assert_true(next_out > 1000 * CAP); /* thousands of laps */
	assert_int_equal(ring_check(&r), 0);
	ring_release(&r);
}

static void test_close_single_thread(void **state)
{
	struct ring r;
	void *out = NULL;

	(void)state;
	assert_int_equal(ring_init(&r, 4), 0);
	for (uint32_t i = 0; i < 3; i++)
		assert_int_equal(ring_try_push(&r, enc(2, i)), 0);
	ring_close(&r);
	assert_int_equal(ring_try_push(&r, enc(2, 9)), RING_CLOSED);
	assert_int_equal(ring_push(&r, enc(2, 9)), RING_CLOSED);
	assert_int_equal(ring_check(&r), 0);
	/* Queued items are still delivered, in order, by both pops. */
	assert_int_equal(ring_try_pop(&r, &out), 0);
	assert_ptr_equal(out, enc(2, 0));
	assert_int_equal(ring_pop(&r, &out), 0);
	assert_ptr_equal(out, enc(2, 1));
	assert_int_equal(ring_try_pop(&r, &out), 0);
	assert_ptr_equal(out, enc(2, 2));
	out = NULL;
	assert_int_equal(ring_try_pop(&r, &out), RING_CLOSED);
	assert_int_equal(ring_pop(&r, &out), RING_CLOSED);
	assert_null(out);
	ring_close(&r); /* idempotent */
	assert_int_equal(ring_try_pop(&r, &out), RING_CLOSED);
	assert_int_equal(ring_count_approx(&r), 0);
	assert_int_equal(ring_check(&r), 0);
	ring_release(&r);
}

/* ring_check is not vacuous: a head beyond the filled slots is caught. */
static void test_check_detects_breakage(void **state)
{
	struct ring r;

	(void)state;
	assert_int_equal(ring_init(&r, 4), 0);
	atomic_store(&r.head, 2); /* claims two slots nobody filled */
	assert_int_equal(ring_check(&r), HR_EINVAL);
	assert_non_null(strstr(hr_errmsg(), "seq"));
	atomic_store(&r.head, 0);
	atomic_store(&r.tail, 1); /* tail beyond head */
	assert_int_equal(ring_check(&r), HR_EINVAL);
	atomic_store(&r.tail, 0);
	assert_int_equal(ring_check(&r), 0);
	ring_release(&r);
}

/* ---- P x C stress ------------------------------------------------------ */

enum stress_mode { BLOCKING, TRY_BACKOFF, MIXED };

enum stress_flags {
	NAPS = 1,        /* producers nap now and then */
	CLOSE_EARLY = 2, /* close while producers still push */
};

struct stress {
	struct ring ring;
	uint32_t producers, consumers, items;
	enum stress_mode mode;
	int flags;
	_Atomic unsigned char *seen; /* [producer * items + seq] deliveries */
	_Atomic uint32_t pushed[8];  /* per producer: pushes that returned 0 */
	_Atomic uint64_t progress;   /* deliveries so far */
	_Atomic uint64_t delivered;
	_Atomic uint64_t bad_rc;    /* unexpected return codes */
	_Atomic uint64_t bad_item;  /* out-of-range producer or seq */
	_Atomic uint64_t bad_order; /* a producer's seq went backwards */
};

struct stress_thread {
	struct stress *st;
	uint32_t id;
	pthread_t tid;
};

static int stress_blocking(const struct stress *st, uint32_t id)
{
	return st->mode == BLOCKING || (st->mode == MIXED && id % 2 == 0);
}

static void *stress_producer(void *arg)
{
	struct stress_thread *t = arg;
	struct stress *st = t->st;
	int blocking = stress_blocking(st, t->id);

	for (uint32_t s = 0; s < st->items; s++) {
		int rc;
		if (blocking) {
			rc = ring_push(&st->ring, enc(t->id, s));
		} else {
			unsigned n = 0;
			while ((rc = ring_try_push(&st->ring, enc(t->id, s))) == RING_FULL)
				backoff(&n);
		}
		if (rc == RING_CLOSED && (st->flags & CLOSE_EARLY))
			break;
		if (rc != 0) {
			atomic_fetch_add(&st->bad_rc, 1);
			break;
		}
		atomic_store(&st->pushed[t->id], s + 1);
		/* Naps let the consumers go all the way to the futex. */
		if ((st->flags & NAPS) && s % (st->items / STRESS_NAPS) == 0)
			sleep_ms(1);
	}
	return NULL;
}

static void *stress_consumer(void *arg)
{
	struct stress_thread *t = arg;
	struct stress *st = t->st;
	int blocking = stress_blocking(st, t->id);
	uint32_t *last = calloc(st->producers, sizeof(*last)); /* seq + 1 */
	uint64_t n = 0;
	void *item;
	int rc;

	if (!last) {
		atomic_fetch_add(&st->bad_rc, 1);
		return NULL;
	}
	for (;;) {
		if (blocking) {
			rc = ring_pop(&st->ring, &item);
		} else {
			unsigned k = 0;
			while ((rc = ring_try_pop(&st->ring, &item)) == RING_EMPTY)
				backoff(&k);
		}
		if (rc != 0)
			break;
		uint32_t p = enc_producer(item), s = enc_seq(item);
		if (p >= st->producers || s >= st->items) {
			atomic_fetch_add(&st->bad_item, 1);
			continue;
		}
		if (s + 1 <= last[p])
			atomic_fetch_add(&st->bad_order, 1);
		last[p] = s + 1;
		atomic_fetch_add_explicit(&st->seen[(size_t)p * st->items + s], 1,
					  memory_order_relaxed);
		atomic_fetch_add_explicit(&st->progress, 1, memory_order_relaxed);
		n++;
	}
	if (rc != RING_CLOSED)
		atomic_fetch_add(&st->bad_rc, 1);
	atomic_fetch_add(&st->delivered, n);
	free(last);
	return NULL;
}

/*
 * P producers push STRESS_ITEMS numbered items each, C consumers pop until
 * RING_CLOSED.  Then every item whose push returned 0 was delivered exactly
 * once, no other item was, and each consumer saw each producer's items in
 * increasing order.  With CLOSE_EARLY the close races with the pushes.
 */
static void run_stress(uint32_t producers, uint32_t consumers, uint32_t cap, enum stress_mode mode,
		       int flags)
{
	struct stress st;
	struct stress_thread pt[8], ct[8];
	size_t total = (size_t)producers * STRESS_ITEMS;
	uint64_t pushed = 0;
	void *out;

	assert_true(producers <= 8 && consumers <= 8);
	memset(&st, 0, sizeof(st));
	assert_int_equal(ring_init(&st.ring, cap), 0);
	st.producers = producers;
	st.consumers = consumers;
	st.items = STRESS_ITEMS;
	st.mode = mode;
	st.flags = flags;
	st.seen = calloc(total, sizeof(*st.seen));
	assert_non_null(st.seen);

	for (uint32_t i = 0; i < consumers; i++) {
		ct[i] = (struct stress_thread){.st = &st, .id = i};
		assert_int_equal(pthread_create(&ct[i].tid, NULL, stress_consumer, &ct[i]), 0);
	}
	for (uint32_t i = 0; i < producers; i++) {
		pt[i] = (struct stress_thread){.st = &st, .id = i};
		assert_int_equal(pthread_create(&pt[i].tid, NULL, stress_producer, &pt[i]), 0);
	}
	if (flags & CLOSE_EARLY) {
		/* Close a quarter of the way in (or when all is pushed). */
		while (atomic_load(&st.progress) < total / 4)
			sleep_ms(1);
		ring_close(&st.ring);
	}
	for (uint32_t i = 0; i < producers; i++)
		assert_int_equal(pthread_join(pt[i].tid, NULL), 0);
	/* Closing after the last push must lose nothing either. */
	ring_close(&st.ring);
	for (uint32_t i = 0; i < consumers; i++)
		assert_int_equal(pthread_join(ct[i].tid, NULL), 0);

	assert_int_equal(atomic_load(&st.bad_rc), 0);
	assert_int_equal(atomic_load(&st.bad_item), 0);
	assert_int_equal(atomic_load(&st.bad_order), 0);
	for (uint32_t p = 0; p < producers; p++) {
		uint32_t k = atomic_load(&st.pushed[p]);
		if (!(flags & CLOSE_EARLY))
			assert_int_equal(k, STRESS_ITEMS);
		pushed += k;
		for (uint32_t s = 0; s < STRESS_ITEMS; s++) {
			unsigned got = atomic_load_explicit(&st.seen[(size_t)p * STRESS_ITEMS + s],
							    memory_order_relaxed);
			if (got != (s < k))
				fail_msg("producer %u item %u (of %u pushed) "
					 "delivered %u times",
					 p, s, k, got);
		}
	}
	assert_int_equal(atomic_load(&st.delivered), pushed);
	assert_int_equal(ring_try_pop(&st.ring, &out), RING_CLOSED);
	assert_int_equal(ring_count_approx(&st.ring), 0);
	assert_int_equal(ring_check(&st.ring), 0);
	free(st.seen);
	ring_release(&st.ring);
}

/* Capacity 4 keeps the ring full or empty most of the time: both sleeps. */
static void test_stress_2x2_blocking(void **state)
{
	(void)state;
	run_stress(2, 2, 4, BLOCKING, 0);
}

static void test_stress_4x4_blocking(void **state)
{
	(void)state;
	run_stress(4, 4, 4, BLOCKING, 0);
}

static void test_stress_1x3_blocking(void **state)
{
	(void)state;
	run_stress(1, 3, 4, BLOCKING, 0);
}

static void test_stress_3x1_blocking(void **state)
{
	(void)state;
	run_stress(3, 1, 4, BLOCKING, 0);
}

static void test_stress_2x2_try(void **state)
{
	(void)state;
	run_stress(2, 2, 64, TRY_BACKOFF, 0);
}

static void test_stress_4x4_mixed(void **state)
{
	(void)state;
	run_stress(4, 4, 8, MIXED, 0);
}

/* Producers nap, so consumers go all the way to the futex and back. */
static void test_stress_2x2_sleepy(void **state)
{
	(void)state;
	run_stress(2, 2, 4, BLOCKING, NAPS);
}

/* A push racing with close either is delivered or returns RING_CLOSED. */
static void test_stress_close_races_pushes(void **state)
{
	(void)state;
	for (int round = 0; round < 3; round++) {
		run_stress(2, 2, 8, BLOCKING, CLOSE_EARLY);
		run_stress(3, 2, 8, MIXED, CLOSE_EARLY);
	}
}

/* ---- blocking and close ------------------------------------------------ */

struct blocked {
	struct ring *ring;
	pthread_t tid;
	void *item;     /* pushed, or last popped */
	uint32_t count; /* items popped */
	int rc;         /* final return code */
	double wall, cpu;
};

static void *pop_until_closed(void *arg)
{
	struct blocked *b = arg;

	while ((b->rc = ring_pop(b->ring, &b->item)) == 0)
		b->count++;
	return NULL;
}

static void *pop_one(void *arg)
{
	struct blocked *b = arg;
	double w0 = clock_s(CLOCK_MONOTONIC);
	double c0 = clock_s(CLOCK_THREAD_CPUTIME_ID);

	b->rc = ring_pop(b->ring, &b->item);
	b->cpu = clock_s(CLOCK_THREAD_CPUTIME_ID) - c0;
	b->wall = clock_s(CLOCK_MONOTONIC) - w0;
	return NULL;
}

static void *push_one(void *arg)
{
	struct blocked *b = arg;

	b->rc = ring_push(b->ring, b->item);
	return NULL;
}

/* A sleeping consumer is woken by a push; a sleeping producer by a pop. */
static void test_push_pop_wake_sleepers(void **state)
{
	struct ring r;
	struct blocked c = {.ring = &r, .rc = -1};
	struct blocked p = {.ring = &r, .rc = -1, .item = enc(3, 2)};
	void *out;

	(void)state;
	assert_int_equal(ring_init(&r, 2), 0);
	assert_int_equal(pthread_create(&c.tid, NULL, pop_one, &c), 0);
	assert_int_equal(wait_sleepers(&r.not_empty, 1), 0);
	assert_int_equal(ring_push(&r, enc(3, 1)), 0);
	assert_int_equal(pthread_join(c.tid, NULL), 0);
	assert_int_equal(c.rc, 0);
	assert_ptr_equal(c.item, enc(3, 1));

	assert_int_equal(ring_push(&r, enc(4, 0)), 0);
	assert_int_equal(ring_push(&r, enc(4, 1)), 0);
	assert_int_equal(pthread_create(&p.tid, NULL, push_one, &p), 0);
	assert_int_equal(wait_sleepers(&r.not_full, 1), 0);
	assert_int_equal(ring_pop(&r, &out), 0);
	assert_ptr_equal(out, enc(4, 0));
	assert_int_equal(pthread_join(p.tid, NULL), 0);
	assert_int_equal(p.rc, 0);
	assert_int_equal(ring_pop(&r, &out), 0);
	assert_ptr_equal(out, enc(4, 1));
	assert_int_equal(ring_pop(&r, &out), 0);
	assert_ptr_equal(out, enc(3, 2));
	assert_int_equal(ring_check(&r), 0);
	ring_release(&r);
}

/* Consumers asleep on an empty ring: close wakes them with RING_CLOSED. */
static void test_close_wakes_consumers(void **state)
{
	enum { C = 3 };
	struct ring r;
	struct blocked c[C];

	(void)state;
	assert_int_equal(ring_init(&r, 8), 0);
	for (int i = 0; i < C; i++) {
		c[i] = (struct blocked){.ring = &r, .rc = -1};
		assert_int_equal(pthread_create(&c[i].tid, NULL, pop_until_closed, &c[i]), 0);
	}
	assert_int_equal(wait_sleepers(&r.not_empty, C), 0);
	ring_close(&r);
	for (int i = 0; i < C; i++) {
		assert_int_equal(pthread_join(c[i].tid, NULL), 0);
		assert_int_equal(c[i].rc, RING_CLOSED);
		assert_int_equal(c[i].count, 0);
	}
	assert_int_equal(ring_check(&r), 0);
	ring_release(&r);
}

/* Sleeping consumers, then items and an immediate close: all drained. */
static void test_close_drains_to_sleepers(void **state)
{
	enum { C = 3, N = 7 };
	struct ring r;
	struct blocked c[C];
	uint32_t total = 0;

	(void)state;
	assert_int_equal(ring_init(&r, 8), 0);
	for (int i = 0; i < C; i++) {
		c[i] = (struct blocked){.ring = &r, .rc = -1};
		assert_int_equal(pthread_create(&c[i].tid, NULL, pop_until_closed, &c[i]), 0);
	}
	assert_int_equal(wait_sleepers(&r.not_empty, C), 0);
	for (uint32_t i = 0; i < N; i++)
		assert_int_equal(ring_try_push(&r, enc(5, i)), 0);
	ring_close(&r);
	for (int i = 0; i < C; i++) {
		assert_int_equal(pthread_join(c[i].tid, NULL), 0);
		assert_int_equal(c[i].rc, RING_CLOSED);
		total += c[i].count;
	}
	assert_int_equal(total, N);
	assert_int_equal(ring_check(&r), 0);
	ring_release(&r);
}

/* Producers asleep on a full ring: close wakes them; the queue drains. */
static void test_close_wakes_producers(void **state)
{
	enum { P = 2, CAP = 4 };
	struct ring r;
	struct blocked p[P];
	void *out;

	(void)state;
	assert_int_equal(ring_init(&r, CAP), 0);
	for (uint32_t i = 0; i < CAP; i++)
		assert_int_equal(ring_push(&r, enc(6, i)), 0);
	for (int i = 0; i < P; i++) {
		p[i] = (struct blocked){.ring = &r, .rc = -1, .item = enc(7, (uint32_t)i)};
		assert_int_equal(pthread_create(&p[i].tid, NULL, push_one, &p[i]), 0);
	}
	assert_int_equal(wait_sleepers(&r.not_full, P), 0);
	ring_close(&r);
	for (int i = 0; i < P; i++) {
		assert_int_equal(pthread_join(p[i].tid, NULL), 0);
		assert_int_equal(p[i].rc, RING_CLOSED);
	}
	for (uint32_t i = 0; i < CAP; i++) {
		assert_int_equal(ring_pop(&r, &out), 0);
		assert_ptr_equal(out, enc(6, i));
	}
	assert_int_equal(ring_pop(&r, &out), RING_CLOSED);
	assert_int_equal(ring_check(&r), 0);
	ring_release(&r);
}

/*
 * A consumer blocked for 0.5 s sleeps instead of spinning: after the short
 * spin/yield phase it uses (almost) no CPU.  The bound, 20% of one core, is
 * generous on purpose; this is a behaviour check, not a speed target.
 */
static void test_blocked_consumer_idles(void **state)
{
	struct ring r;
	struct blocked c = {.ring = &r, .rc = -1};

	(void)state;
	assert_int_equal(ring_init(&r, 4), 0);
	assert_int_equal(pthread_create(&c.tid, NULL, pop_one, &c), 0);
	sleep_ms(500);
	assert_int_equal(ring_push(&r, enc(8, 0)), 0);
	assert_int_equal(pthread_join(c.tid, NULL), 0);
	assert_int_equal(c.rc, 0);
	assert_ptr_equal(c.item, enc(8, 0));
	assert_true(c.wall >= 0.4);
	if (c.cpu >= 0.2 * c.wall)
		fail_msg("blocked consumer used %.3f s CPU in %.3f s", c.cpu, c.wall);
	ring_release(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_rejects_bad_capacity),
		cmocka_unit_test(test_capacity_two),
		cmocka_unit_test(test_fill_drain_fifo),
		cmocka_unit_test(test_wraparound),
		cmocka_unit_test(test_close_single_thread),
		cmocka_unit_test(test_check_detects_breakage),
		cmocka_unit_test(test_stress_2x2_blocking),
		cmocka_unit_test(test_stress_4x4_blocking),
		cmocka_unit_test(test_stress_1x3_blocking),
		cmocka_unit_test(test_stress_3x1_blocking),
		cmocka_unit_test(test_stress_2x2_try),
		cmocka_unit_test(test_stress_4x4_mixed),
		cmocka_unit_test(test_stress_2x2_sleepy),
		cmocka_unit_test(test_stress_close_races_pushes),
		cmocka_unit_test(test_push_pop_wake_sleepers),
		cmocka_unit_test(test_close_wakes_consumers),
		cmocka_unit_test(test_close_drains_to_sleepers),
		cmocka_unit_test(test_close_wakes_producers),
		cmocka_unit_test(test_blocked_consumer_idles),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
