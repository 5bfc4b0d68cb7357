/*
 * libFuzzer target: whole stores.  A tiny real store is made once (mlgen +
 * ingest); each input turns it into a hostile one and runs every reader's
 * path over it: store_open, store_info_load, and per split the trainer's
 * (store_index_build, batch_fill in every decode mode) and --dump's
 * (store_get_u64, record_unpack).  Nothing may crash, and a batch that
 * batch_fill accepts must hold only ids below the meta's vocabulary sizes.
 *
 * Input: byte 0 picks the attack, the rest drives it.
 *   0  raw damage: patches (3-byte offset, 1-byte length <= 64, bytes XORed)
 *      applied to data.mdb, optionally truncated; the seal is left as it
 *      was, so store_open must refuse (unless the patches cancel out);
 *   1  hostile values, resealed: patches (1-byte entry, 2-byte offset,
 *      1-byte length, bytes written) applied to the values of the store's
 *      entries (meta, vocabularies, users, items, records), the store
 *      rewritten through the store API and sealed, so LMDB's pages are
 *      sound and only the values are foreign;
 *   2  a hostile seal: the rest is data.crc.
 * Temporary stores live in /dev/shm when it exists (fsync is free there).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "ingest/ingest.h"
#include "ingest/mlgen.h"
#include "models/batch.h"
#include "store/codec.h"
#include "store/info.h"
#include "store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct entry {
	enum store_db db;
	uint8_t key[32];
	size_t klen;
	uint8_t *val;
	size_t vlen;
};

static char root[256], good[300], work[300];
static uint8_t *mdb, *crc;
static size_t mdb_len, crc_len;
static struct entry *entries;
static size_t n_entries;

static int slurp(const char *dir, const char *name, uint8_t **buf, size_t *len)
{
	char path[512];
	struct mapped_file m;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (mapped_file_open(&m, path))
		return -1;
	*buf = malloc(m.len ? m.len : 1);
	memcpy(*buf, m.data, m.len);
	*len = m.len;
	mapped_file_release(&m);
	return 0;
}

static int spill(const char *dir, const char *name, const uint8_t *buf, size_t len)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f)
		return -1;
	size_t put = fwrite(buf, 1, len, f);
	return fclose(f) || put != len ? -1 : 0;
}

static void add_entry(enum store_db db, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct entry *e;

	entries = realloc(entries, (n_entries + 1) * sizeof(*entries));
	e = &entries[n_entries++];
	e->db = db;
	memcpy(e->key, key, klen);
	e->klen = klen;
	e->val = malloc(vlen ? vlen : 1);
	memcpy(e->val, val, vlen);
	e->vlen = vlen;
}

/* The good store's entries, in key order per database (append-safe). */
static void collect(void)
{
	struct store *st;
	struct store_reader *r;
	struct store_info info;
	const void *v;
	size_t n;

	if (store_open(&st, good) || store_info_load(st, &info) || store_reader_begin(st, &r))
		abort();
	if (store_get(r, STORE_META, "meta", 4, &v, &n))
		abort();
	add_entry(STORE_META, "meta", 4, v, n);
	for (int f = 0; f < SF_NFIELDS; f++) {
		const char *name = store_field_name(f);
		if (store_get(r, STORE_VOCAB, name, strlen(name), &v, &n) == 0)
			add_entry(STORE_VOCAB, name, strlen(name), v, n);
	}
	for (int db = STORE_USERS; db <= STORE_TEST; db++) {
		struct store_index ix;
		if (db >= STORE_TRAIN) {
			if (store_index_build(r, db, &ix))
				abort();
			for (uint64_t k = 0; k < ix.n; k++) {
				uint8_t key[8];
				store_key(key, k);
				add_entry(db, key, 8, ix.rec[k].data, ix.rec[k].len);
			}
			store_index_release(&ix);
			continue;
		}
		uint32_t nv = info.vocab[db == STORE_USERS ? SF_USER : SF_ITEM];
		for (uint64_t k = 1; k < nv; k++) {
			uint8_t key[8];
			store_key(key, k);
			if (store_get_u64(r, db, k, &v, &n) == 0)
				add_entry(db, key, 8, v, n);
		}
	}
	store_reader_end(r);
	store_close(st);
}

static void init(void)
{
	struct mlgen_opts g;
	struct ingest_opts o;
	struct ingest_report rep;
	char ml[300];

	log_init("fuzz_store", LOG_ERROR);
	snprintf(root, sizeof(root), "%s/hogrec-fuzz-store-XXXXXX",
		 path_is_dir("/dev/shm") ? "/dev/shm" : "/tmp");
	if (!mkdtemp(root))
		abort();
	snprintf(ml, sizeof(ml), "%s/ml", root);
	snprintf(good, sizeof(good), "%s/good.lmdb", root);
	snprintf(work, sizeof(work), "%s/work.lmdb", root);
	mlgen_defaults(&g);
	g.users = 4;
	g.items = 30;
	g.ratings = 80;
	g.seed = 7;
	ingest_opts_defaults(&o);
	o.in_dir = ml;
	o.out_path = good;
	o.hist_len = 4;
	if (mlgen_write(&g, ml) || ingest_run(&o, &rep))
		abort();
	if (slurp(good, "data.mdb", &mdb, &mdb_len) || slurp(good, "data.crc", &crc, &crc_len))
		abort();
	collect();
}

/* Every id of the filled rows below its vocabulary's size: batch_fill's promise. */
static void assert_in_range(const struct batch *b, const struct store_info *info)
{
	const uint32_t *V = info->vocab;

	for (uint32_t i = 0; i < b->n; i++) {
		if (b->user[i] >= V[SF_USER] || b->item[i] >= V[SF_ITEM] ||
		    b->gender[i] >= V[SF_GENDER] || b->age[i] >= V[SF_AGE] ||
		    b->occupation[i] >= V[SF_OCCUPATION] || b->zip[i] >= V[SF_ZIP])
			abort();
		for (uint32_t j = 0; j < b->n_genres[i]; j++)
			if (b->genres[i * BATCH_GENRES + j] >= V[SF_GENRE])
				abort();
		for (uint32_t j = 0; j < b->n_hist[i]; j++)
			if (b->hist[i * b->hist_cap + j] >= V[SF_ITEM])
				abort();
		for (uint32_t j = 0; j < b->n_neg[i]; j++)
			if (b->neg[i * b->hist_cap + j] >= V[SF_ITEM])
				abort();
	}
}

/* What the trainer, evaluation and --dump do with a store. */
static void read_store(const char *dir)
{
	static const unsigned modes[] = {0, REC_SKIP_SEQUENCES,
					 REC_SKIP_SEQUENCES | REC_SKIP_FEATURES};
	struct store *st;
	struct store_info info;

	if (store_open(&st, dir))
		return;
	if (store_info_load(st, &info) || info.hist_len == 0 || info.hist_len > 1024) {
		store_close(st);
		return;
	}
	for (int db = STORE_TRAIN; db <= STORE_TEST; db++) {
		struct store_reader *r;
		struct store_index ix;
		struct batch b;
		if (store_reader_begin(st, &r))
			continue;
		if (store_index_build(r, db, &ix) == 0) {
			if (batch_alloc(&b, 16, info.hist_len, info.n_dense) == 0) {
				const struct batch_source src = {.ix = &ix,
								 .n = ix.n,
								 .store = dir,
								 .db = store_db_name(db)};
				for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
					batch_set_decode(&b, modes[m]);
					for (uint64_t first = 0; first < ix.n; first += b.cap) {
						uint64_t left = ix.n - first;
						uint32_t count = left < b.cap ? (uint32_t)left :
										b.cap;
						if (batch_fill(&b, &src, first, count))
							break;
						assert_in_range(&b, &info);
					}
				}
				batch_release(&b);
			}
			store_index_release(&ix);
		}
		static uint32_t hist[1024], neg[1024];
		struct record rec = {.hist = hist, .neg = neg, .hist_cap = 1024};
		for (uint64_t k = 0; k < 1000; k++) {
			const void *v;
			size_t len;
			if (store_get_u64(r, db, k, &v, &len))
				break;
			record_unpack(v, len, &rec);
		}
		store_reader_end(r);
	}
	store_close(st);
}

static void raw_damage(const uint8_t *p, size_t n)
{
	uint8_t *buf = malloc(mdb_len);
	size_t len = mdb_len;

	memcpy(buf, mdb, mdb_len);
	if (n && (p[0] & 1)) { /* truncate to a fraction given by the next byte */
		len = n > 1 ? mdb_len * p[1] / 256 : 0;
		p += n > 1 ? 2 : 1;
		n -= n > 1 ? 2 : 1;
	}
	while (n >= 4) {
		size_t off = ((size_t)p[0] << 16 | (size_t)p[1] << 8 | p[2]) % mdb_len;
		size_t k = p[3] % 65;
		p += 4, n -= 4;
		for (size_t i = 0; i < k && i < n && off + i < mdb_len; i++)
			buf[off + i] ^= p[i];
		p += k < n ? k : n;
		n -= k < n ? k : n;
	}
	if (spill(work, "data.mdb", buf, len) == 0 && spill(work, "data.crc", crc, crc_len) == 0) {
		struct store *st;
		int rc = store_open(&st, work);
		if (rc == 0) {
			/* Only an unchanged file passes the seal. */
			if (len != mdb_len || memcmp(buf, mdb, len))
				abort();
			store_close(st);
		}
	}
	free(buf);
}

static void hostile_values(const uint8_t *p, size_t n)
{
	uint8_t **vals = calloc(n_entries, sizeof(*vals));
	size_t *lens = calloc(n_entries, sizeof(*lens));
	struct store *st = NULL;
	int rc;

	for (size_t i = 0; i < n_entries; i++)
		lens[i] = entries[i].vlen;
	while (n >= 4) {
		size_t e = p[0] % n_entries, off = (size_t)p[1] << 8 | p[2], k = p[3];
		p += 4, n -= 4;
		if (k > n)
			k = n;
		if (!vals[e]) {
			vals[e] = malloc(entries[e].vlen + 65536 + 256);
			memcpy(vals[e], entries[e].val, entries[e].vlen);
		}
		if (off > lens[e])
			off = lens[e];
		if (off + k > entries[e].vlen + 65536)
			break; /* the buffer's bound: values stay below 64 KiB longer */
		memcpy(vals[e] + off, p, k); /* overwrite, or extend past the end */
		if (off + k > lens[e])
			lens[e] = off + k;
		else if (k == 0)
			lens[e] = off; /* a zero-length patch truncates */
		p += k, n -= k;
	}
	remove_tree(work);
	rc = mkdir(work, 0755) ? -1 : store_create(&st, work, 1 << 22);
	for (size_t i = 0; rc == 0 && i < n_entries; i++)
		rc = store_put(st, entries[i].db, entries[i].key, entries[i].klen,
			       vals[i] ? vals[i] : entries[i].val, lens[i],
			       entries[i].db >= STORE_USERS);
	if (rc == 0)
		rc = store_commit(st, 1);
	store_close(st);
	if (rc == 0)
		read_store(work);
	for (size_t i = 0; i < n_entries; i++)
		free(vals[i]);
	free(vals);
	free(lens);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;

	if (!ready) {
		init();
		ready = 1;
	}
	if (size == 0)
		return 0;
	remove_tree(work);
	if (mkdir(work, 0755))
		abort();
	switch (data[0] % 3) {
	case 0: raw_damage(data + 1, size - 1); break;
	case 1: hostile_values(data + 1, size - 1); break;
	case 2:
		if (spill(work, "data.mdb", mdb, mdb_len) == 0 &&
		    spill(work, "data.crc", data + 1, size - 1) == 0)
			read_store(work);
		break;
	}
	hr_error_clear();
	return 0;
}
