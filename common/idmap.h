/*
 * idmap.h - open-addressing hash map from uint32 keys to uint32 values.
 *
 * Used to turn raw MovieLens ids into dense indices.  Linear probing over a
 * power-of-two table kept at most half full; keys are arbitrary uint32 (the
 * empty slot is marked by a separate bit, so every key value is allowed).
 * Not thread-safe for writers; concurrent lookups on an unchanging map are.
 */
#ifndef HR_IDMAP_H
#define HR_IDMAP_H

#include <stddef.h>
#include <stdint.h>

struct idmap {
	uint64_t *slots; /* (key << 32 | value), or IDMAP_EMPTY */
	size_t cap;      /* power of two */
	size_t len;
};

#define IDMAP_NONE UINT32_MAX

/* Empty map with room for about hint keys.  HR_ENOMEM on failure. */
int idmap_init(struct idmap *m, size_t hint);
void idmap_release(struct idmap *m);

/* Value for key, or IDMAP_NONE. */
uint32_t idmap_get(const struct idmap *m, uint32_t key);

/*
 * Inserts key -> value if key is absent.  *existing (optional) receives the
 * value now stored for key.  Returns 1 if inserted, 0 if the key was
 * present (value unchanged), HR_ENOMEM if growing failed.  value must not be
 * IDMAP_NONE.
 */
int idmap_put(struct idmap *m, uint32_t key, uint32_t value, uint32_t *existing);

#endif
