/* swap.c - the reference-counted current object (swap.h). */
#include "swap.h"

#include "common/err.h"

void swap_item_init(struct swap_item *it, void (*destroy)(struct swap_item *it))
{
	atomic_init(&it->refs, 1);
	it->destroy = destroy;
}

void swap_init(struct swap *s)
{
	pthread_mutex_init(&s->mu, NULL);
	s->cur = NULL;
	atomic_init(&s->published, 0);
}

struct swap_item *swap_acquire(struct swap *s)
{
	struct swap_item *it;

	pthread_mutex_lock(&s->mu);
	it = s->cur;
	/* Relaxed: the mutex orders this with the publish that stored it (its
	 * unlock, M1, pairs with our lock), and the slot's own reference keeps
	 * the count above zero until we hold ours. */
	if (it)
		atomic_fetch_add_explicit(&it->refs, 1, memory_order_relaxed);
	pthread_mutex_unlock(&s->mu);
	return it;
}

void swap_release(struct swap_item *it)
{
	uint_fast64_t before;

	if (!it)
		return;
	/* acq_rel: the release half of every holder's decrement pairs with
	 * the acquire half of the last one, so every use of the object happens
	 * before its destroy.  (Release plus an acquire fence on the last one
	 * only would do, but ThreadSanitizer does not model fences; one
	 * acq_rel per request costs nothing measurable.) */
	before = atomic_fetch_sub_explicit(&it->refs, 1, memory_order_acq_rel);
	HR_ASSERT(before > 0);
	if (before == 1)
		it->destroy(it);
}

void swap_publish(struct swap *s, struct swap_item *it)
{
	struct swap_item *old;

	/* M1: the object's construction happens before any acquire of it */
	pthread_mutex_lock(&s->mu);
	old = s->cur;
	s->cur = it;
	pthread_mutex_unlock(&s->mu);
	atomic_fetch_add_explicit(&s->published, 1, memory_order_relaxed); /* a counter only */
	swap_release(old);
}

uint64_t swap_published(struct swap *s)
{
	return atomic_load_explicit(&s->published, memory_order_relaxed);
}

void swap_release_all(struct swap *s)
{
	swap_release(s->cur);
	s->cur = NULL;
	pthread_mutex_destroy(&s->mu);
}
