/*
 * store.h - the hogrec store: one LMDB environment with seven named
 * databases (see docs/FORMAT.md).  This is the only module that includes
 * lmdb.h.
 *
 * A store is either being built (store_create: one writer, the ingest
 * thread) or read (store_open: read-only, any number of threads, each with
 * its own struct store_reader).  Keys of the record, user and item
 * databases are big-endian uint64 so that cursor order is numeric order.
 *
 * Errors: every function returns 0 or a negative HR_E* code and sets the
 * message (common/err.h); LMDB failures become HR_ESTORE with LMDB's text
 * and the store path.
 */
#ifndef HR_STORE_H
#define HR_STORE_H

#include <stddef.h>
#include <stdint.h>

#define STORE_FORMAT "hogrec-store"
#define STORE_VERSION 1
/* The seal beside data.mdb: its crc32 and size (docs/FORMAT.md). */
#define STORE_SEAL_FILE "data.crc"

enum store_db {
	STORE_META = 0,
	STORE_VOCAB,
	STORE_USERS,
	STORE_ITEMS,
	STORE_TRAIN,
	STORE_VALID,
	STORE_TEST,
	STORE_NDB
};

/* The vocabularies: meta["vocab_sizes"] keys, in this order. */
enum store_field {
	SF_USER,
	SF_ITEM,
	SF_GENDER,
	SF_AGE,
	SF_OCCUPATION,
	SF_ZIP,
	SF_GENRE,
	SF_NFIELDS
};

/* The LMDB name of db ("meta", "train", ...). */
const char *store_db_name(enum store_db db);

struct store;

/*
 * Creates a new, empty store in dir (which must exist and be empty) able to
 * grow to mapsize bytes.  Writes are not synced until store_commit(s, 1).
 * On success *out owns the environment; release with store_close().
 */
int store_create(struct store **out, const char *dir, size_t mapsize);

/*
 * Opens an existing store read-only: HR_ENOENT if dir does not exist,
 * HR_ESTORE if it is not an LMDB environment or lacks the databases (for a
 * raw MovieLens directory the message says so and names the bin/ingest
 * command that makes a store of it).  Before LMDB maps data.mdb, the store
 * is verified by plain reads (store/seal.h): HR_ESTORE naming the store and
 * the file when data.mdb or lock.mdb is not a regular file (a FIFO),
 * data.mdb is shorter than its meta pages say (truncated), or its crc32
 * differs from the seal data.crc (damaged), or the seal is missing.  That
 * reads data.mdb once: ~0.1 s per 200 MB in the page cache.  The meta is
 * checked by store_info_load() (HR_EVERSION there).
 */
int store_open(struct store **out, const char *dir);

/* Closes the environment (aborting an open write transaction).  NULL is ok. */
void store_close(struct store *s);

/* The directory the store was created or opened with. */
const char *store_path(const struct store *s);

/*
 * Writing (store_create only).  store_put() appends to db inside the open
 * write transaction, starting one if needed.  With append=1 the key must be
 * greater than every key already in db (MDB_APPEND: pages are filled
 * completely, which is what ingest wants).  store_commit() commits; with
 * sync=1 it also flushes the environment to disk (fsync) and seals the
 * store: writes data.crc, the crc32 of data.mdb as it now is, which
 * store_open() requires.  A write after that breaks the seal until the
 * next store_commit(s, 1), so sync=1 belongs to the last commit.
 */
int store_put(struct store *s, enum store_db db, const void *key, size_t klen, const void *val,
	      size_t vlen, int append);
int store_commit(struct store *s, int sync);

/* Big-endian encoding of a uint64 key (8 bytes). */
static inline void store_key(uint8_t out[8], uint64_t k)
{
	for (int i = 7; i >= 0; i--) {
		out[i] = (uint8_t)k;
		k >>= 8;
	}
}

static inline uint64_t store_key_decode(const uint8_t in[8])
{
	uint64_t k = 0;
	for (int i = 0; i < 8; i++)
		k = (k << 8) | in[i];
	return k;
}

/*
 * Reading.  A reader is a read-only transaction owned by one thread; values
 * returned by store_get point into the memory map and stay valid until
 * store_reader_end() or store_reader_renew().
 */
struct store_reader;

int store_reader_begin(struct store *s, struct store_reader **out);
/* Releases the snapshot and takes a fresh one (cheap; use between epochs). */
int store_reader_renew(struct store_reader *r);
void store_reader_end(struct store_reader *r);

/* Value for a byte-string key; HR_ENOENT (no message) when absent. */
int store_get(struct store_reader *r, enum store_db db, const void *key, size_t klen,
	      const void **val, size_t *vlen);
/* Value for a uint64 key. */
int store_get_u64(struct store_reader *r, enum store_db db, uint64_t key, const void **val,
		  size_t *vlen);
/* Number of entries in db. */
int store_count(struct store_reader *r, enum store_db db, uint64_t *n);

/*
 * An index of a record database (keys 0..n-1) by key: rec[k] points into
 * the memory map, so fetching record k is an array lookup instead of a
 * B-tree search (40% of the loader's time for small models).  Pointer and
 * length share one 16-byte entry: a random key costs one cache miss for
 * the entry, not two.
 * The pointers stay valid while the reader that built the index stays
 * open (a store is never modified, so no writer can move them).
 * The index also carries the store's vocabulary sizes (meta["vocab_sizes"],
 * read in the same transaction): batch_fill() checks every id it decodes
 * against them, so a record of a foreign store cannot index past a table.
 * HR_ESTORE (naming the store and database) when the keys are not exactly
 * 0..n-1, or naming the store when the meta has no valid vocab_sizes;
 * HR_ENOMEM.
 */
struct store_ref {
	const void *data;
	size_t len;
};

struct store_index {
	struct store_ref *rec; /* (n) */
	uint64_t n;
	uint64_t bytes;             /* sum of the records' lengths */
	uint32_t vocab[SF_NFIELDS]; /* meta["vocab_sizes"]: ids must be below these */
	void *copy;                 /* store_index_copy()'s block, or NULL */
};

int store_index_build(struct store_reader *r, enum store_db db, struct store_index *ix);

/*
 * Copies the indexed records out of the memory map into one block of
 * anonymous memory (advised for transparent huge pages) and points rec[] at
 * the copy; the reader may then end.  Random reads of a 4 KiB-page file map
 * pay a TLB miss per record; the copy is 2 MiB pages, packed: the NCF
 * loader decodes ~1.5x faster (docs/ARCHITECTURE.md).  Costs ix->bytes of
 * memory.  HR_ENOMEM leaves the index as it was.
 */
int store_index_copy(struct store_index *ix);
void store_index_release(struct store_index *ix);

/* Bytes used by the environment's data file. */
int store_size_bytes(struct store *s, uint64_t *bytes);

#endif
