/*
 * ring.h - bounded lock-free multi-producer multi-consumer queue of pointers.
 *
 * Carries batch pointers from the loader threads to the worker threads (and,
 * in a second instance, empty batches back).  Dmitry Vyukov's bounded MPMC
 * queue: a power-of-two array of slots, each with a sequence number that
 * tells producers and consumers whose turn it is, plus one position counter
 * per side claimed with a compare-and-swap.  Storage is allocated once by
 * ring_init(); nothing allocates afterwards.
 *
 * Non-blocking calls (ring_try_push, ring_try_pop) never wait.  Blocking
 * calls (ring_push, ring_pop) spin a few microseconds with a CPU pause,
 * then sleep on a futex (no sched_yield() phase: see ring.c); the futex is
 * touched only by threads that actually sleep and by the threads that must
 * wake them, so the fast path stays lock-free and costs no system call.
 *
 * Shutdown: ring_close() makes every later push fail with RING_CLOSED and
 * wakes every sleeper.  Items pushed before the close are still delivered;
 * pops return RING_CLOSED only once the ring is closed *and* drained, so
 * consumers that pop until RING_CLOSED see every item whose push returned 0.
 *
 * Ownership: the ring stores the pointers and never dereferences or frees
 * them; an item may be NULL.  A push that returns 0 hands the item to the
 * consumer that pops it, and everything the producer wrote before the push
 * happens-before everything that consumer does after its pop returns (the
 * queue synchronises like a mutex would).  A push that returns RING_FULL or
 * RING_CLOSED leaves the item with the caller.  Items still in the ring at
 * ring_release() are forgotten, not freed: drain first if they own memory.
 *
 * Concurrency contract, in one place (details per function):
 *   ring_init, ring_release   one thread, no other call in flight
 *   ring_try_push, ring_push  any number of threads at once
 *   ring_try_pop, ring_pop    any number of threads at once, concurrently
 *                             with the pushes
 *   ring_close                any thread, any time, more than once
 *   ring_count_approx         any thread, any time
 *   ring_check                quiescent ring only (tests)
 *
 * Linux only (futex).  Positions are 63-bit counters and never wrap in
 * practice (2^63 items at 10^9 per second is ~290 years).
 */
#ifndef HR_RING_H
#define HR_RING_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>

/* Destructive-interference size assumed for padding. */
#define RING_CACHE_LINE 64

/* Non-error outcomes of push and pop; positive so "rc < 0" stays "failed". */
enum ring_status {
	RING_FULL = 1,   /* ring_try_push: every slot holds an item */
	RING_EMPTY = 2,  /* ring_try_pop: no item ready (ring may be closed) */
	RING_CLOSED = 3, /* push: ring closed; pop: closed and drained */
};

struct ring_slot; /* sequence number + item, private to ring.c */

/*
 * A sleeping-side "eventcount": a thread that gave up spinning sets bit 0
 * of futex ("someone may sleep") and sleeps until the word changes; the
 * other side looks at the word after every operation and, only when the
 * bit is set, clears it (bumping the word) and wakes every sleeper.
 */
struct ring_wait {
	_Atomic uint32_t futex;    /* bit 0: sleepers flagged; counts up */
	_Atomic uint32_t sleepers; /* threads in the sleep path (statistics) */
};

/*
 * Caller-owned storage: static, automatic or embedded in another struct.
 * The type is over-aligned, so a heap copy must come from
 * aligned_alloc(RING_CACHE_LINE, ...), not malloc.  Every group below sits
 * on its own cache line so producers, consumers and sleepers do not
 * invalidate each other's lines.  Fields are private to ring.c; tests may
 * read the sleepers counts to tell that a thread is (about to be) asleep.
 */
struct ring {
	/* Read-only after ring_init. */
	alignas(RING_CACHE_LINE) struct ring_slot *slots;
	uint64_t mask; /* capacity - 1 */
	uint32_t capacity;
	/* Next position to fill; bit 63 set once closed.  Written by pushes. */
	alignas(RING_CACHE_LINE) _Atomic uint64_t head;
	/* Next position to empty.  Written by pops. */
	alignas(RING_CACHE_LINE) _Atomic uint64_t tail;
	/* Consumers sleep here until an item arrives. */
	alignas(RING_CACHE_LINE) struct ring_wait not_empty;
	/* Producers sleep here until a slot frees up. */
	alignas(RING_CACHE_LINE) struct ring_wait not_full;
};

/*
 * Initialises an empty, open ring holding up to capacity items.
 *
 *   capacity  a power of two, 2 <= capacity <= 2^31
 *
 * Returns 0, or
 *   HR_EINVAL  capacity is not a power of two >= 2
 *   HR_ENOMEM  the slot array (capacity * 64 bytes) cannot be allocated
 * On failure r holds no memory and ring_release(r) is still allowed.
 *
 * Thread-safety: none; no other thread may touch r until it is handed over
 * by something that synchronises (pthread_create, a mutex, ...).
 */
int ring_init(struct ring *r, uint32_t capacity);

/*
 * Frees the slot array.  Items still queued are forgotten, not freed.
 * Safe on a ring whose ring_init failed, and twice in a row.
 *
 * Thread-safety: no other thread may be inside any ring_ call on r, or
 * call one afterwards (join them first; closing does not suffice).
 */
void ring_release(struct ring *r);

/*
 * Appends item without waiting.
 *
 * Returns 0 (the item now belongs to the ring, then to its consumer),
 *   RING_FULL    no free slot; the item stays with the caller
 *   RING_CLOSED  ring_close() was called; the item stays with the caller
 * Wakes one sleeping consumer if any.
 *
 * Thread-safety: any number of threads, concurrently with every call but
 * ring_init and ring_release.  Lock-free.
 */
int ring_try_push(struct ring *r, void *item);

/*
 * Removes the oldest ready item without waiting.
 *
 *   item  receives the item on success; untouched otherwise
 *
 * Returns 0,
 *   RING_EMPTY   no item ready: none queued, or a producer has claimed the
 *                next slot but not yet filled it (retry)
 *   RING_CLOSED  ring closed and every pushed item already popped; final
 * Wakes one sleeping producer if any.
 *
 * Ordering: items from one producer reach any single consumer in push
 * order; across consumers there is no order beyond that.
 *
 * Thread-safety: as ring_try_push.  Lock-free.
 */
int ring_try_pop(struct ring *r, void **item);

/*
 * Appends item, waiting while the ring is full: a spin of a few
 * microseconds, then a futex sleep that uses no CPU.
 *
 * Returns 0 or RING_CLOSED (closed before or while waiting; the item stays
 * with the caller).  There is no timeout: ring_close() is how a stuck
 * producer is released.
 *
 * Thread-safety: as ring_try_push.  Lock-free while the ring is not full.
 */
int ring_push(struct ring *r, void *item);

/*
 * Removes the oldest ready item, waiting while none is ready (spin, then
 * futex sleep, as ring_push).
 *
 * Returns 0 (*item set) or RING_CLOSED (closed and drained; *item
 * untouched).  A consumer loop "while (ring_pop(r, &b) == 0)" therefore sees
 * every item pushed before the close.
 *
 * Thread-safety: as ring_try_push.  Lock-free while items are ready.
 */
int ring_pop(struct ring *r, void **item);

/*
 * Closes the ring: every later push returns RING_CLOSED, sleepers on both
 * sides wake up, pops keep delivering the queued items and then return
 * RING_CLOSED.  A push racing with the close either returns 0 (its item is
 * delivered) or RING_CLOSED (it is not queued), never "0 but lost".  The
 * close happens-before every RING_CLOSED return it causes.  Idempotent;
 * a ring cannot be reopened.
 *
 * Thread-safety: any thread, any time between ring_init and ring_release.
 */
void ring_close(struct ring *r);

/*
 * Items queued, as a racy snapshot in [0, capacity]: includes slots a
 * producer has claimed but not yet filled.  For metrics and logs only.
 *
 * Thread-safety: any thread, any time.
 */
uint32_t ring_count_approx(const struct ring *r);

/*
 * Checks the ring's invariants: geometry, tail <= head <= tail + capacity,
 * every slot's sequence number consistent with the positions, nobody in
 * the sleep path.  O(capacity).
 *
 * Returns 0, or HR_EINVAL with a message naming the broken invariant.
 *
 * Thread-safety: only on a quiescent ring (no ring_ call in flight, e.g.
 * after joining every user); concurrent calls may report false breakage.
 */
int ring_check(const struct ring *r);

#endif
