#include "store.h"

#include <errno.h>
#include <lmdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "common/err.h"
#include "common/fsutil.h"
#include "info.h"
#include "seal.h"

struct store {
	MDB_env *env;
	MDB_dbi dbi[STORE_NDB];
	MDB_txn *wtxn; /* open write transaction, or NULL */
	int writable;
	char path[4096];
};

struct store_reader {
	struct store *s;
	MDB_txn *txn;
};

static const char *const db_names[STORE_NDB] = {
	"meta", "vocab", "users", "items", "train", "valid", "test",
};

const char *store_db_name(enum store_db db)
{
	return db_names[db];
}

/*
 * LMDB returns its own codes (negative, MDB_*) for store problems and
 * errno values (positive) for system failures: a full disk is an I/O
 * error (74), a permission a permission error (77), not a bad store.
 */
static int lmdb_code(int rc)
{
	return rc > 0 ? hr_errno_code(rc) : HR_ESTORE;
}

static int lmdb_error(const struct store *s, int rc, const char *what)
{
	return hr_error(lmdb_code(rc), "store '%s': %s: %s", s->path, what, mdb_strerror(rc));
}

static int env_new(struct store **out, const char *dir, size_t mapsize, unsigned flags)
{
	struct store *s = calloc(1, sizeof(*s));
	int rc;

	*out = NULL;
	if (!s)
		return hr_error(HR_ENOMEM, "out of memory opening store '%s'", dir);
	snprintf(s->path, sizeof(s->path), "%s", dir);
	rc = mdb_env_create(&s->env);
	if (rc) {
		free(s);
		return hr_error(lmdb_code(rc), "store '%s': %s", dir, mdb_strerror(rc));
	}
	rc = mdb_env_set_maxdbs(s->env, STORE_NDB + 1);
	if (!rc && mapsize)
		rc = mdb_env_set_mapsize(s->env, mapsize);
	if (!rc)
		rc = mdb_env_open(s->env, dir, flags, 0644);
	if (rc) {
		int code = lmdb_error(s, rc, "cannot open environment");
		mdb_env_close(s->env);
		free(s);
		return code;
	}
	*out = s;
	return 0;
}

int store_create(struct store **out, const char *dir, size_t mapsize)
{
	struct store *s;
	MDB_txn *txn;
	int rc = env_new(&s, dir, mapsize, MDB_NOSYNC | MDB_NOMETASYNC | MDB_NORDAHEAD);

	if (rc)
		return rc;
	s->writable = 1;
	rc = mdb_txn_begin(s->env, NULL, 0, &txn);
	for (int i = 0; !rc && i < STORE_NDB; i++)
		rc = mdb_dbi_open(txn, db_names[i], MDB_CREATE, &s->dbi[i]);
	if (!rc)
		rc = mdb_txn_commit(txn);
	else
		mdb_txn_abort(txn);
	if (rc) {
		int code = lmdb_error(s, rc, "cannot create databases");
		store_close(s);
		return code;
	}
	*out = s;
	return 0;
}

/*
 * The message for a directory without data.mdb; the ratings file of a raw
 * MovieLens download (the names bin/ingest reads) earns a hint, since
 * passing the download itself is the usual first-run mistake.
 */
static int not_a_store(const char *dir)
{
	static const char *const raw[] = {"ratings.dat", "u.data", "ratings.csv"};
	char path[4096];
	size_t n = strlen(dir);

	while (n > 1 && dir[n - 1] == '/') /* as bin/ingest names its default output */
		n--;
	for (size_t i = 0; i < sizeof(raw) / sizeof(raw[0]); i++)
		if (path_join(path, sizeof(path), dir, raw[i]) == 0 && path_exists(path))
			return hr_error(HR_ESTORE,
					"'%s' is a raw MovieLens directory (%s), not a hogrec "
					"store: make one with 'bin/ingest %s', which writes "
					"'%.*s.lmdb'",
					dir, raw[i], dir, (int)n, dir);
	return hr_error(HR_ESTORE, "'%s' is not a hogrec store (no data.mdb)", dir);
}

int store_open(struct store **out, const char *dir)
{
	char data[4096];
	struct store *s;
	struct stat st;
	MDB_txn *txn = NULL;
	int rc;

	*out = NULL;
	if (stat(dir, &st) < 0)
		return hr_error(hr_errno_code(errno), "cannot open store '%s': %s", dir,
				strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return hr_error(HR_ESTORE, "'%s' is not a hogrec store (not a directory)", dir);
	rc = path_join(data, sizeof(data), dir, "data.mdb");
	if (rc)
		return rc;
	if (stat(data, &st) < 0) /* an unreadable directory is not "no data.mdb" */
		return errno == ENOENT ?
			       not_a_store(dir) :
			       hr_error(hr_errno_code(errno), "cannot open store '%s': %s", dir,
					strerror(errno));
	rc = store_seal_verify(dir); /* before LMDB maps a byte of it */
	if (rc)
		return rc;
	rc = env_new(&s, dir, 0, MDB_RDONLY | MDB_NOLOCK | MDB_NORDAHEAD);
	if (rc == HR_ESTORE)
		return hr_error_prefix(HR_ESTORE, "'%s' is not a hogrec store", dir);
	if (rc)
		return rc;
	rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
	for (int i = 0; !rc && i < STORE_NDB; i++)
		rc = mdb_dbi_open(txn, db_names[i], 0, &s->dbi[i]);
	if (rc) {
		if (txn)
			mdb_txn_abort(txn);
		store_close(s);
		return hr_error(HR_ESTORE, "'%s' is not a hogrec store (%s)", dir,
				rc == MDB_NOTFOUND ? "missing databases" : mdb_strerror(rc));
	}
	/* Keep the dbi handles: they stay valid after this transaction ends. */
	mdb_txn_commit(txn);
	*out = s;
	return 0;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	if (s->wtxn)
		mdb_txn_abort(s->wtxn);
	mdb_env_close(s->env);
	free(s);
}

const char *store_path(const struct store *s)
{
	return s->path;
}

int store_put(struct store *s, enum store_db db, const void *key, size_t klen, const void *val,
	      size_t vlen, int append)
{
	MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
	int rc;

	HR_ASSERT(s->writable);
	if (!s->wtxn) {
		rc = mdb_txn_begin(s->env, NULL, 0, &s->wtxn);
		if (rc) {
			s->wtxn = NULL;
			return lmdb_error(s, rc, "cannot begin write transaction");
		}
	}
	rc = mdb_put(s->wtxn, s->dbi[db], &k, &v, append ? MDB_APPEND : 0);
	if (rc)
		return lmdb_error(s, rc,
				  rc == MDB_MAP_FULL ? "store grew past its map size" :
						       "cannot write");
	return 0;
}

int store_commit(struct store *s, int sync)
{
	int rc = 0;

	if (s->wtxn) {
		rc = mdb_txn_commit(s->wtxn);
		s->wtxn = NULL;
		if (rc)
			return lmdb_error(s, rc, "cannot commit");
	}
	if (sync) {
		rc = mdb_env_sync(s->env, 1);
		if (rc)
			return lmdb_error(s, rc, "cannot sync to disk");
		return store_seal_write(s->path);
	}
	return 0;
}

int store_reader_begin(struct store *s, struct store_reader **out)
{
	struct store_reader *r = calloc(1, sizeof(*r));
	int rc;

	*out = NULL;
	if (!r)
		return hr_error(HR_ENOMEM, "out of memory");
	r->s = s;
	rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &r->txn);
	if (rc) {
		free(r);
		return lmdb_error(s, rc, "cannot begin read transaction");
	}
	*out = r;
	return 0;
}

int store_reader_renew(struct store_reader *r)
{
	int rc;

	mdb_txn_reset(r->txn);
	rc = mdb_txn_renew(r->txn);
	return rc ? lmdb_error(r->s, rc, "cannot renew read transaction") : 0;
}

void store_reader_end(struct store_reader *r)
{
	if (!r)
		return;
	mdb_txn_abort(r->txn);
	free(r);
}

int store_get(struct store_reader *r, enum store_db db, const void *key, size_t klen,
	      const void **val, size_t *vlen)
{
	MDB_val k = {klen, (void *)key}, v;
	int rc = mdb_get(r->txn, r->s->dbi[db], &k, &v);

	if (rc == MDB_NOTFOUND)
		return HR_ENOENT;
	if (rc)
		return lmdb_error(r->s, rc, "cannot read");
	*val = v.mv_data;
	*vlen = v.mv_size;
	return 0;
}

int store_get_u64(struct store_reader *r, enum store_db db, uint64_t key, const void **val,
		  size_t *vlen)
{
	uint8_t k[8];

	store_key(k, key);
	return store_get(r, db, k, sizeof(k), val, vlen);
}

int store_count(struct store_reader *r, enum store_db db, uint64_t *n)
{
	MDB_stat st;
	int rc = mdb_stat(r->txn, r->s->dbi[db], &st);

	if (rc)
		return lmdb_error(r->s, rc, "cannot stat database");
	*n = st.ms_entries;
	return 0;
}

int store_index_build(struct store_reader *r, enum store_db db, struct store_index *ix)
{
	MDB_cursor *c;
	MDB_val k, v;
	MDB_stat st;
	int rc;

	memset(ix, 0, sizeof(*ix));
	{
		const void *meta = NULL;
		size_t len = 0;
		rc = store_get(r, STORE_META, "meta", 4, &meta, &len);
		if (rc == HR_ENOENT)
			return hr_error(HR_ESTORE, "'%s' is not a hogrec store (no meta)",
					r->s->path);
		if (!rc)
			rc = store_meta_vocab(r->s, meta, len, ix->vocab);
		if (rc)
			return rc;
	}
	rc = mdb_stat(r->txn, r->s->dbi[db], &st);
	if (!rc)
		rc = mdb_cursor_open(r->txn, r->s->dbi[db], &c);
	if (rc)
		return lmdb_error(r->s, rc, "cannot index database");
	ix->n = st.ms_entries;
	ix->rec = malloc((ix->n ? ix->n : 1) * sizeof(*ix->rec));
	if (!ix->rec) {
		mdb_cursor_close(c);
		store_index_release(ix);
		return hr_error(HR_ENOMEM, "out of memory indexing %llu records",
				(unsigned long long)st.ms_entries);
	}
	uint64_t expect = 0;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT), expect++) {
		if (k.mv_size != 8 || expect >= ix->n || store_key_decode(k.mv_data) != expect) {
			rc = -1;
			break;
		}
		ix->rec[expect] = (struct store_ref){v.mv_data, v.mv_size};
		ix->bytes += v.mv_size;
	}
	mdb_cursor_close(c);
	if (rc == MDB_NOTFOUND && expect == ix->n)
		return 0;
	store_index_release(ix);
	if (rc == -1)
		return hr_error(HR_ESTORE,
				"store '%s': %s keys are not 0..%llu in order (entry %llu)",
				r->s->path, db_names[db], (unsigned long long)st.ms_entries,
				(unsigned long long)expect);
	return lmdb_error(r->s, rc, "cannot index database");
}

int store_index_copy(struct store_index *ix)
{
	const size_t huge = (size_t)2 << 20, align = 16;
	size_t bytes = 0;

	if (ix->n == 0)
		return 0;
	for (uint64_t i = 0; i < ix->n; i++) {
		size_t len = (ix->rec[i].len + align - 1) & ~(align - 1);
		if (len < ix->rec[i].len || bytes > SIZE_MAX - huge - len)
			return hr_error(HR_ENOMEM, "records too large to copy");
		bytes += len;
	}
	bytes = (bytes + huge - 1) & ~(huge - 1);
	char *p = aligned_alloc(huge, bytes);
	if (!p)
		return hr_error(HR_ENOMEM, "out of memory copying %llu records (%zu MB)",
				(unsigned long long)ix->n, bytes >> 20);
	(void)madvise(p, bytes, MADV_HUGEPAGE); /* advice: a refusal only costs speed */
	size_t off = 0;
	for (uint64_t i = 0; i < ix->n; i++) {
		memcpy(p + off, ix->rec[i].data, ix->rec[i].len);
		ix->rec[i].data = p + off;
		off += (ix->rec[i].len + align - 1) & ~(align - 1);
	}
	free(ix->copy);
	ix->copy = p;
	return 0;
}

void store_index_release(struct store_index *ix)
{
	free(ix->copy);
	free(ix->rec);
	memset(ix, 0, sizeof(*ix));
}

int store_size_bytes(struct store *s, uint64_t *bytes)
{
	MDB_envinfo info;
	MDB_stat st;
	int rc = mdb_env_info(s->env, &info);

	if (!rc)
		rc = mdb_env_stat(s->env, &st);
	if (rc)
		return lmdb_error(s, rc, "cannot stat environment");
	*bytes = (uint64_t)(info.me_last_pgno + 1) * st.ms_psize;
	return 0;
}
