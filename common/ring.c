/*
 * ring.c - Vyukov bounded MPMC queue with futex sleeping.
 *
 * Positions.  head counts pushes claimed, tail pops claimed; both only grow.
 * Position p lives in slot p & mask.  Slot s's sequence number says whose
 * turn it is:
 *
 *   seq == p        empty, waiting for the producer of position p
 *   seq == p + 1    full, waiting for the consumer of position p
 *
 * and a consumer hands the slot on by storing p + capacity (the producer
 * position one lap later).  A producer claims p by CAS head p -> p + 1 after
 * seeing seq == p; a consumer claims p by CAS tail p -> p + 1 after seeing
 * seq == p + 1.  The claim gives exclusive use of the slot's item field
 * until the claimer stores the next sequence number.  Quiescent, positions
 * [tail, head) are full and [head, tail + capacity) empty (ring_check).
 *
 * Close.  ring_close() sets bit 63 of head with one atomic OR.  A producer
 * CAS expects a head without the bit, so once the bit is set no position
 * can be claimed: the final head H is fixed, every push that returned 0
 * holds a position below H, and a consumer returns RING_CLOSED only when it
 * finds slot tail not ready, head closed and tail == H, i.e. every pushed
 * item has been claimed by some pop.
 *
 * Sleeping.  One "eventcount" (struct ring_wait) per direction, around a
 * 32-bit futex word whose bit 0 means "someone may be asleep".  A thread
 * that has spun long enough sets the bit (fetch_or, which also reads the
 * word), retries its operation once and, if still blocked, futex-waits for
 * the word to change.  A thread that completes the opposite operation loads
 * the word and, only if the bit is set, CASes it to word + 1 (bit clear,
 * value changed) and wakes all sleepers; those that lose the race for the
 * item set the bit again and sleep.  Waking all rather than one keeps the
 * flag exact without counting: after one wake-up the bit is clear, so
 * further hand-overs cost no system call while the woken threads wait for
 * a CPU.  With a handful of loaders and workers the herd is small.
 *
 * The sleeper stores the bit then loads a slot's seq; the waker stores that
 * seq then loads the bit.  This store-buffering (Dekker) pattern needs one
 * of the two to see the other's store, which release/acquire does not
 * promise: those four accesses are seq_cst.  They are seq_cst operations
 * rather than relaxed ones around atomic_thread_fence because
 * ThreadSanitizer does not model standalone fences (gcc -Wtsan rejects
 * them); on x86 the cost is an xchg per hand-over, on arm64 stlr/ldar.
 *
 * Memory orders, pairs labelled as in ck_ring.h / rte_ring_c11_pvt.h:
 *
 *   R0  close: fetch_or CLOSED into head (acq_rel)
 *       pairs with A0 (head loads that may return RING_CLOSED): close()
 *       happens-before every RING_CLOSED it causes.
 *   S1  push: store seq = p + 1 (seq_cst, hence release)
 *       pairs with A2 (pop's seq load): the producer's writes, item field
 *       included, happen-before the consumer's reads.
 *   S2  pop: store seq = p + capacity (seq_cst, hence release)
 *       pairs with A1 (push's seq load one lap later): the consumer's read
 *       of the old item happens-before the producer's overwrite.
 *   A1, A2  slot seq loads (seq_cst, hence acquire).
 *   W1  sleeper: fetch_or bit 0 (seq_cst); D1 waker: futex word load
 *       (seq_cst).  W1 then A1-or-A2 (the retry) in the sleeper and
 *       S1-or-S2 then D1 in the waker form the Dekker pair above.
 *   R3  waker: CAS word -> word + 1 (release); close: word += 2 (release)
 *       pairs with A3 (W1 read the word, seq_cst hence acquire, before the
 *       retry): if W1 reads a word at or after R3, the waker's store
 *       S1/S2/R0 is visible to the retry; if before, futex_wait finds the
 *       word changed or is woken by the futex_wake that follows R3.  Either
 *       way no wake-up is lost.
 *   Position CASes need no ordering: they only claim a slot, the data
 *   travels through the slot's seq (S1/A2, S2/A1).  The head CAS is acquire
 *   only for A0 (its failure may reveal the CLOSED bit); tail CAS and tail
 *   loads are relaxed.  The sleepers counters are statistics: relaxed.
 */
#include "ring.h"

#include <limits.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "err.h"

#define RING_CLOSED_BIT ((uint64_t)1 << 63)
#define RING_POS_MASK (RING_CLOSED_BIT - 1)

/*
 * Blocking calls retry this many times with a CPU pause (a few
 * microseconds), then sleep on the futex.  There is no sched_yield() phase
 * between the two: on a loaded machine each yield can hand the core to an
 * unrelated CPU-bound thread for a whole time slice, while a futex wake-up
 * gets wake-up preemption.  Measured with stress 2x2, capacity 4, 2 cores
 * plus two busy loops, 10 runs: median 0.4 s without yields, 1.4 s with 1,
 * 2.3 s with 2, up to 21 s with 16 (unloaded, all ~0.05-0.1 s).
 */
#define RING_SPIN_ROUNDS 128u

/*
 * One slot per cache line: neighbouring positions are in use by different
 * threads at the same moment (two producers filling p and p + 1, or a
 * consumer right behind a producer), and a batch queue is short, so the
 * 64 bytes per slot buy the absence of false sharing cheaply.
 */
struct ring_slot {
	alignas(RING_CACHE_LINE) _Atomic uint64_t seq;
	void *item;
};

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

/*
 * The kernel reads the futex word as a plain 32-bit integer: _Atomic
 * uint32_t must be lock-free with the plain type's size (it is on Linux).
 */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2 && sizeof(_Atomic uint32_t) == sizeof(uint32_t),
	       "futex word must be a lock-free 32-bit atomic");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "positions must be lock-free");

static void futex_wait(_Atomic uint32_t *word, uint32_t expected)
{
	/* EAGAIN (word already changed), EINTR and spurious wake-ups all just
	 * send the caller round its loop again. */
	(void)syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *word, int n)
{
	(void)syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

int ring_init(struct ring *r, uint32_t capacity)
{
	memset(r, 0, sizeof(*r));
	if (capacity < 2 || (capacity & (capacity - 1)) != 0)
		return hr_error(HR_EINVAL, "ring capacity %u is not a power of two >= 2",
				(unsigned)capacity);
	/* Only a 32-bit size_t can overflow here. */
	uint64_t bytes = (uint64_t)capacity * sizeof(struct ring_slot);
	if (bytes > (uint64_t)SIZE_MAX)
		return hr_error(HR_ENOMEM, "ring of %u slots is too large", (unsigned)capacity);
	/* sizeof(struct ring_slot) is a multiple of its alignment, so bytes
	 * is too, as aligned_alloc requires. */
	struct ring_slot *slots = aligned_alloc(alignof(struct ring_slot), (size_t)bytes);
	if (!slots)
		return hr_error(HR_ENOMEM, "cannot allocate a ring of %u slots",
				(unsigned)capacity);
	memset(slots, 0, (size_t)bytes);
	for (uint32_t i = 0; i < capacity; i++) {
		atomic_init(&slots[i].seq, i);
		slots[i].item = NULL;
	}
	r->slots = slots;
	r->mask = capacity - 1;
	r->capacity = capacity;
	atomic_init(&r->head, 0);
	atomic_init(&r->tail, 0);
	atomic_init(&r->not_empty.futex, 0);
	atomic_init(&r->not_empty.sleepers, 0);
	atomic_init(&r->not_full.futex, 0);
	atomic_init(&r->not_full.sleepers, 0);
	return 0;
}

void ring_release(struct ring *r)
{
	free(r->slots);
	r->slots = NULL;
	r->mask = 0;
	r->capacity = 0;
}

/* Wakes the sleepers of w if the bit says there may be any. */
static void wake_sleepers(struct ring_wait *w)
{
	/* D1: seq_cst, pairs with W1 (Dekker with the S1/S2 just before). */
	uint32_t word = atomic_load_explicit(&w->futex, memory_order_seq_cst);

	while (word & 1) {
		/* R3: pairs with A3.  Only the waker whose CAS clears the bit
		 * makes the system call; on failure word is reloaded. */
		if (atomic_compare_exchange_weak_explicit(&w->futex, &word, word + 1,
							  memory_order_release,
							  memory_order_relaxed)) {
			futex_wake(&w->futex, INT_MAX);
			return;
		}
	}
}

static int push_once(struct ring *r, void *item)
{
	/* A0: acquire, pairs with R0 when the CLOSED bit is seen. */
	uint64_t pos = atomic_load_explicit(&r->head, memory_order_acquire);
	struct ring_slot *s;

	for (;;) {
		if (pos & RING_CLOSED_BIT)
			return RING_CLOSED;
		s = &r->slots[pos & r->mask];
		/* A1: pairs with S2 of the pop that emptied this slot. */
		uint64_t seq = atomic_load_explicit(&s->seq, memory_order_seq_cst);
		int64_t dif = (int64_t)(seq - pos);
		if (dif == 0) {
			/* Claim pos.  On failure pos is reloaded and may
			 * carry the CLOSED bit: acquire for A0 (C11 wants
			 * success at least as strong as failure; the claim
			 * itself needs no ordering). */
			if (atomic_compare_exchange_weak_explicit(&r->head, &pos, pos + 1,
								  memory_order_acquire,
								  memory_order_acquire))
				break;
		} else if (dif < 0) {
			/* The slot still holds the item of pos - capacity. */
			return RING_FULL;
		} else {
			/* Another producer claimed pos; catch up.  A0 again. */
			pos = atomic_load_explicit(&r->head, memory_order_acquire);
		}
	}
	s->item = item;
	/* S1: pairs with A2; also the Dekker store before D1. */
	atomic_store_explicit(&s->seq, pos + 1, memory_order_seq_cst);
	return 0;
}

/* Slot tail (= pos, as last seen) is not ready: empty, or closed and done. */
static int empty_or_closed(const struct ring *r, uint64_t pos)
{
	/* A0: pairs with R0. */
	uint64_t h = atomic_load_explicit(&r->head, memory_order_acquire);

	/* Closed head is final; tail <= head and pos <= tail, so head == pos
	 * means every claimed position has been claimed by a pop too. */
	if ((h & RING_CLOSED_BIT) && (h & RING_POS_MASK) == pos)
		return RING_CLOSED;
	return RING_EMPTY;
}

static int pop_once(struct ring *r, void **item)
{
	uint64_t pos = atomic_load_explicit(&r->tail, memory_order_relaxed);
	struct ring_slot *s;

	for (;;) {
		s = &r->slots[pos & r->mask];
		/* A2: pairs with S1 of the push that filled this slot. */
		uint64_t seq = atomic_load_explicit(&s->seq, memory_order_seq_cst);
		int64_t dif = (int64_t)(seq - (pos + 1));
		if (dif == 0) {
			if (atomic_compare_exchange_weak_explicit(&r->tail, &pos, pos + 1,
								  memory_order_relaxed,
								  memory_order_relaxed))
				break;
		} else if (dif < 0) {
			return empty_or_closed(r, pos);
		} else {
			pos = atomic_load_explicit(&r->tail, memory_order_relaxed);
		}
	}
	*item = s->item;
	/* S2: pairs with A1 one lap later; Dekker store before D1. */
	atomic_store_explicit(&s->seq, pos + r->mask + 1, memory_order_seq_cst);
	return 0;
}

int ring_try_push(struct ring *r, void *item)
{
	int rc = push_once(r, item);

	if (rc == 0)
		wake_sleepers(&r->not_empty);
	return rc;
}

int ring_try_pop(struct ring *r, void **item)
{
	int rc = pop_once(r, item);

	if (rc == 0)
		wake_sleepers(&r->not_full);
	return rc;
}

/* ring_try_push with ring_try_pop's signature, for blocking_op(). */
static int try_push_ref(struct ring *r, void **item)
{
	return ring_try_push(r, *item);
}

/*
 * Flags w, retries op once and sleeps until w's word changes if op is
 * still blocked.  Returns op's last result (busy if it slept).  A retry
 * that succeeds leaves the bit set: it costs one needless wake-up later,
 * and clearing it could strand another sleeper.
 */
static int sleep_once(struct ring *r, struct ring_wait *w, int busy,
		      int (*op)(struct ring *, void **), void **item)
{
	atomic_fetch_add_explicit(&w->sleepers, 1, memory_order_relaxed);
	/* W1 (seq_cst), pairs with D1; also A3, pairs with R3.  Must
	 * precede the retry. */
	uint32_t word = atomic_fetch_or_explicit(&w->futex, 1, memory_order_seq_cst) | 1;
	int rc = op(r, item);

	if (rc == busy)
		futex_wait(&w->futex, word);
	atomic_fetch_sub_explicit(&w->sleepers, 1, memory_order_relaxed);
	return rc;
}

/* Spin, then sleep on w, until op returns something but busy. */
static int blocking_op(struct ring *r, struct ring_wait *w, int busy,
		       int (*op)(struct ring *, void **), void **item)
{
	int rc;

	for (;;) {
		for (uint32_t round = 0; round < RING_SPIN_ROUNDS; round++) {
			rc = op(r, item);
			if (rc != busy)
				return rc;
			cpu_relax();
		}
		rc = sleep_once(r, w, busy, op, item);
		if (rc != busy)
			return rc;
		/* Woken: the other side is moving, so spin again before the
		 * next sleep.  Going straight back to sleep made a sleeper
		 * that keeps losing items to spinning threads cost a futex
		 * wake per hand-over (stress 4x4 mixed: ~10^5 system calls
		 * against ~10^3). */
	}
}

int ring_push(struct ring *r, void *item)
{
	return blocking_op(r, &r->not_full, RING_FULL, try_push_ref, &item);
}

int ring_pop(struct ring *r, void **item)
{
	return blocking_op(r, &r->not_empty, RING_EMPTY, ring_try_pop, item);
}

void ring_close(struct ring *r)
{
	/* R0: pairs with A0; the bit fixes head for good. */
	atomic_fetch_or_explicit(&r->head, RING_CLOSED_BIT, memory_order_acq_rel);
	/* Change both words (keeping bit 0) and wake everybody, flagged or
	 * about to be: no flag check, so no Dekker pair is needed.  R3: pairs
	 * with A3 (a sleeper whose W1 reads the new word sees R0 in its
	 * retry; one that read the old word does not stay asleep). */
	atomic_fetch_add_explicit(&r->not_empty.futex, 2, memory_order_release);
	futex_wake(&r->not_empty.futex, INT_MAX);
	atomic_fetch_add_explicit(&r->not_full.futex, 2, memory_order_release);
	futex_wake(&r->not_full.futex, INT_MAX);
}

uint32_t ring_count_approx(const struct ring *r)
{
	/* Two unsynchronised loads: the difference can be off either way
	 * while pushes and pops run, hence the clamping. */
	uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
	uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed) & RING_POS_MASK;
	uint64_t n = h > t ? h - t : 0;

	return n > r->capacity ? r->capacity : (uint32_t)n;
}

int ring_check(const struct ring *r)
{
	if (!r->slots || r->capacity < 2 || (r->capacity & (r->capacity - 1)) != 0 ||
	    r->mask != (uint64_t)r->capacity - 1)
		return hr_error(HR_EINVAL, "ring: bad geometry (capacity %u)",
				(unsigned)r->capacity);
	uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed) & RING_POS_MASK;
	uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	if (tail > head || head - tail > r->capacity)
		return hr_error(HR_EINVAL, "ring: tail %llu / head %llu out of range",
				(unsigned long long)tail, (unsigned long long)head);
	/* Walk one lap from tail: full slots, then empty ones. */
	for (uint64_t p = tail; p < tail + r->capacity; p++) {
		uint64_t want = p < head ? p + 1 : p;
		uint64_t seq =
			atomic_load_explicit(&r->slots[p & r->mask].seq, memory_order_relaxed);
		if (seq != want)
			return hr_error(HR_EINVAL, "ring: slot %llu seq %llu, want %llu",
					(unsigned long long)(p & r->mask), (unsigned long long)seq,
					(unsigned long long)want);
	}
	/* The futex bits may legitimately stay set; the counters may not. */
	uint32_t se = atomic_load_explicit(&r->not_empty.sleepers, memory_order_relaxed);
	uint32_t sf = atomic_load_explicit(&r->not_full.sleepers, memory_order_relaxed);
	if (se != 0 || sf != 0)
		return hr_error(HR_EINVAL, "ring: %u + %u threads asleep", (unsigned)se,
				(unsigned)sf);
	return 0;
}
