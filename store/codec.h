/*
 * codec.h - msgpack encoding of store records (docs/FORMAT.md).
 *
 * A record is packed as a msgpack array in the fixed field order of
 * rec_fields.  record_pack() appends to a msgpack_sbuffer; record_unpack()
 * decodes one value into a struct record whose variable-length arrays point
 * to caller-provided buffers, without allocating.  Any msgpack integer or
 * float encoding of a field is accepted (e.g. a record written by Python).  Both are pure functions of their arguments,
 * safe to call from many threads with distinct arguments.
 */
#ifndef HR_CODEC_H
#define HR_CODEC_H

#include <msgpack.h>
#include <stdint.h>
#include <stdio.h>

#define REC_NFIELDS 15
#define REC_MAX_GENRES 32
#define REC_MAX_DENSE 16

/* Field names in record order, as written to meta["record_fields"]. */
extern const char *const rec_fields[REC_NFIELDS];

struct record {
	uint32_t user_raw, item_raw;
	float rating;
	uint32_t ts;
	uint32_t label;
	uint32_t user, item, gender, age, occupation, zip; /* encoded ids */
	uint32_t n_genres;
	uint32_t genres[REC_MAX_GENRES];
	uint32_t n_dense;
	float dense[REC_MAX_DENSE];
	uint32_t n_hist, n_neg;
	uint32_t *hist;    /* n_hist ids, oldest first */
	uint32_t *neg;     /* n_neg ids */
	uint32_t hist_cap; /* decoding: capacity of hist and of neg */
};

/* Appends r as one msgpack array to buf.  HR_ENOMEM on failure. */
int record_pack(msgpack_sbuffer *buf, const struct record *r);

/*
 * Decodes one record from data[0..len).  r->hist and r->neg must point to
 * buffers of r->hist_cap elements.  HR_EFORMAT (with a message saying which
 * field) when the bytes are not a well-formed record, or when an array is
 * longer than its buffer.  Never reads outside data[0..len).
 */
int record_unpack(const void *data, size_t len, struct record *r);

/* record_unpack() flags. */
#define REC_SKIP_SEQUENCES 1u /* leave hist and neg_hist undecoded (n_hist = n_neg = 0) */
#define REC_SKIP_FEATURES 2u  /* with REC_SKIP_SEQUENCES: also genres and dense (counts 0) */

/*
 * record_unpack() for the fields a reader needs: with REC_SKIP_SEQUENCES the
 * two sequences (the record's last fields, most of its bytes) are neither
 * decoded nor validated; REC_SKIP_FEATURES stops after the scalar fields.
 */
int record_unpack_fields(const void *data, size_t len, struct record *r, unsigned flags);

/*
 * 0 when data[0..len) starts with one complete msgpack value in which no
 * array, map, string or binary claims more elements or bytes than remain;
 * -1 otherwise.  msgpack-c's unpacker allocates an array's objects when it
 * reads the header, so a forged header in a few bytes asks for gigabytes:
 * check untrusted bytes (a store's meta, vocabularies, users and items)
 * with this before msgpack_unpack_next(), which then allocates O(len).
 */
int msgpack_well_sized(const void *data, size_t len);

/* Packs a C string as a msgpack str. */
int pack_cstr(msgpack_packer *pk, const char *s);

/*
 * Writes a msgpack object as JSON (maps with string keys, arrays, numbers,
 * strings with JSON escapes, nil as null, bin as a string of hex digits).
 */
void msgpack_to_json(FILE *out, const msgpack_object *o);

/* Looks up key in a msgpack map object; NULL if absent or o is not a map. */
const msgpack_object *msgpack_map_get(const msgpack_object *o, const char *key);

#endif
