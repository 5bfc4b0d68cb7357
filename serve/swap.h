/*
 * swap.h - one current object that readers borrow and a writer replaces
 * while they hold it: reference counting, so that a request keeps the
 * model it started with until it ends, a reload never waits for requests,
 * and the old model is freed by whoever drops the last reference.
 *
 *     reader                          writer
 *     it = swap_acquire(&s);          swap_publish(&s, fresh);
 *     ... use it, however long ...      (old: the slot's reference dropped;
 *     swap_release(it);                  freed now if no reader holds it,
 *                                        else by the last swap_release)
 *
 * A reader sees either the old object or the new one, whole: the pointer
 * and the reference taken on it are read under one mutex, which the writer
 * takes only to exchange the pointer (nanoseconds; never while building or
 * freeing an object).  A lock-free load-then-increment would need hazard
 * pointers or RCU grace periods to stop the writer freeing the object
 * between the two steps; at one acquire per request a short mutex costs
 * nothing measurable (docs/ARCHITECTURE.md, "Serving").
 *
 * The object embeds a struct swap_item (its reference count and
 * destructor).  swap_item_init gives it one reference, the creator's;
 * swap_publish takes that reference over.
 *
 * Threading: any number of threads may acquire, release and publish
 * concurrently.  swap_release_all (shutdown) only once nothing else uses s.
 */
#ifndef HR_SERVE_SWAP_H
#define HR_SERVE_SWAP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

struct swap_item {
	atomic_uint_fast64_t refs;
	void (*destroy)(struct swap_item *it); /* called once, by the last release */
};

struct swap {
	pthread_mutex_t mu;
	struct swap_item *cur; /* guarded by mu; holds one reference */
	atomic_uint_fast64_t published;
};

/* it's count becomes 1 (the caller's); destroy frees the enclosing object. */
void swap_item_init(struct swap_item *it, void (*destroy)(struct swap_item *it));

void swap_init(struct swap *s);

/*
 * The current object with a reference taken (release it with
 * swap_release), or NULL when nothing has been published.
 */
struct swap_item *swap_acquire(struct swap *s);

/* Drops a reference; the last one destroys the object.  NULL is fine. */
void swap_release(struct swap_item *it);

/*
 * Makes it (with the caller's reference, which s takes over) the current
 * object and drops s's reference to the previous one.  Requests that hold
 * the previous one finish with it.
 */
void swap_publish(struct swap *s, struct swap_item *it);

/* Objects published so far. */
uint64_t swap_published(struct swap *s);

/* Drops s's reference to the current object and releases s. */
void swap_release_all(struct swap *s);

#endif
