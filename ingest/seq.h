/*
 * seq.h - stage 6: per-record history and negative-history sequences.
 *
 * struct hist keeps, per user, a ring of the last L positive items.  The
 * caller reads a record's history before pushing the events of the record's
 * own second (see build.c), so a history holds only strictly earlier events.
 *
 * struct neg_sampler draws the negative history (docs/FORMAT.md): distinct
 * items, uniformly, from the candidate pool (train items whose first train
 * event is already applied) minus what the user rated so far minus the
 * record's own item.  Rated sets are per-user open-addressing hash sets
 * sized from the user's event count, so memory is linear in the ratings.
 * A draw first tries rejection sampling and, when that keeps failing (the
 * user rated most of the pool), enumerates the candidates; both give a
 * uniform sample without replacement.
 *
 * Neither structure is thread-safe; one scan owns them.
 */
#ifndef HR_SEQ_H
#define HR_SEQ_H

#include <stddef.h>
#include <stdint.h>

#include "common/rng.h"
#include "events.h"

struct hist {
	uint32_t len_max; /* L */
	uint32_t *ring;   /* n_users * L item codes */
	uint32_t *count;  /* pushes per user (ring position = count % L) */
};

int hist_init(struct hist *h, size_t n_users, uint32_t len_max);
void hist_release(struct hist *h);

static inline void hist_push(struct hist *h, uint32_t user, uint32_t code)
{
	uint32_t c = h->count[user]++;

	h->ring[(size_t)user * h->len_max + c % h->len_max] = code;
}

/* Writes the user's history, oldest first, to out (room for L); returns its length. */
uint32_t hist_get(const struct hist *h, uint32_t user, uint32_t *out);

struct neg_sampler {
	size_t n_items;
	uint32_t *set_off;  /* per user: first slot of its rated set */
	uint32_t *set_mask; /* per user: set capacity - 1 (power of two) */
	uint32_t *slots;    /* item index + 1, 0 = empty */
	uint32_t *pool;     /* candidate items, in order of entry */
	size_t pool_len;
	uint8_t *in_pool; /* per item */
	uint32_t *mark;   /* per item: stamp of the draw that took it */
	uint32_t stamp;
	uint32_t *scratch; /* n_items, for enumeration */
};

/* Sizes the rated sets from the events' per-user counts.  HR_ENOMEM. */
int neg_init(struct neg_sampler *s, const struct event *ev, size_t n, size_t n_users,
	     size_t n_items);
void neg_release(struct neg_sampler *s);

/* Records that user rated item (call after the event's second is read). */
void neg_mark_rated(struct neg_sampler *s, uint32_t user, uint32_t item);
/* 1 if user rated item (as marked so far). */
int neg_rated(const struct neg_sampler *s, uint32_t user, uint32_t item);
/* Adds item to the candidate pool if it is not there yet. */
void neg_pool_add(struct neg_sampler *s, uint32_t item);

/*
 * Draws up to want distinct candidates for (user, own_item) into out
 * (dataset item indices); returns how many (fewer only when fewer
 * candidates exist).
 */
uint32_t neg_sample(struct neg_sampler *s, struct rng *r, uint32_t user, uint32_t own_item,
		    uint32_t want, uint32_t *out);

#endif
