/* build_tables(): the vocab, users, items and meta databases (docs/FORMAT.md). */
#include <stdlib.h>
#include <string.h>

#include "build.h"
#include "common/err.h"
#include "seq.h"
#include "store/codec.h"

#define HOGREC_VERSION "0.1.0"

static const char *const user_fields[] = {
	"user_raw", "user", "gender", "age", "occupation", "zip", "dense", "hist",
};
static const char *const item_fields[] = {
	"item_raw", "item", "title", "year", "genres", "dense",
};
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static int put_buf(struct store *st, enum store_db db, const void *key, size_t klen,
		   const msgpack_sbuffer *buf, int append)
{
	return store_put(st, db, key, klen, buf->data, buf->size, append);
}

static int write_vocab(const struct encoding *enc, struct store *st, msgpack_sbuffer *buf)
{
	for (int f = 0; f < ENC_NFIELDS; f++) {
		const struct vocab *v = &enc->vocab[f];
		const char *name = enc_field_name(f);
		msgpack_packer pk;
		int rc;

		msgpack_sbuffer_clear(buf);
		msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
		rc = msgpack_pack_array(&pk, v->n);
		rc |= msgpack_pack_nil(&pk);
		for (uint32_t i = 1; i < v->n; i++)
			rc |= v->is_str ? pack_cstr(&pk, v->strs[i]) :
					  msgpack_pack_uint32(&pk, v->nums[i]);
		if (rc)
			return hr_error(HR_ENOMEM, "out of memory packing vocabulary '%s'", name);
		rc = put_buf(st, STORE_VOCAB, name, strlen(name), buf, 0);
		if (rc)
			return rc;
	}
	return 0;
}

static int pack_ids(msgpack_packer *pk, const uint32_t *ids, uint32_t n)
{
	int rc = msgpack_pack_array(pk, n);

	for (uint32_t i = 0; i < n; i++)
		rc |= msgpack_pack_uint32(pk, ids[i]);
	return rc;
}

static int pack_floats(msgpack_packer *pk, const float *v, int n)
{
	int rc = msgpack_pack_array(pk, (size_t)n);

	for (int i = 0; i < n; i++)
		rc |= msgpack_pack_float(pk, v[i]);
	return rc;
}

/* Users and items as of the end of train: all train events applied. */
static int write_users_items(const struct build_input *in, struct store *st, msgpack_sbuffer *buf)
{
	const struct dataset *ds = in->ds;
	const struct encoding *enc = in->enc;
	struct dense_state d;
	struct hist h;
	uint32_t *hbuf = malloc((in->opts->hist_len + 1) * sizeof(uint32_t));
	uint32_t *by_code = NULL;
	int rc = 0;

	if (!hbuf)
		return hr_error(HR_ENOMEM, "out of memory writing users");
	rc = dense_init(&d, ds->n_users, ds->n_items);
	if (rc) {
		free(hbuf);
		return rc;
	}
	rc = hist_init(&h, ds->n_users, in->opts->hist_len);
	if (rc)
		goto out_dense;
	for (size_t i = 0; i < in->n; i++) {
		const struct event *e = &in->ev[i];
		dense_apply(&d, e);
		if (e->split == SPLIT_TRAIN && e->label == 1)
			hist_push(&h, e->user, enc->item_code[e->item]);
	}
	/* Keys must ascend for MDB_APPEND: visit dataset indices in code order. */
	size_t nmax = (ds->n_users > ds->n_items ? ds->n_users : ds->n_items) + 1;
	by_code = malloc(nmax * sizeof(uint32_t));
	if (!by_code) {
		rc = hr_error(HR_ENOMEM, "out of memory writing users");
		goto out;
	}
	for (uint32_t c = 0; c < enc->vocab[ENC_USER].n; c++)
		by_code[c] = UINT32_MAX;
	for (size_t u = 0; u < ds->n_users; u++)
		if (enc->user_code[u])
			by_code[enc->user_code[u]] = (uint32_t)u;
	for (uint32_t c = 1; c < enc->vocab[ENC_USER].n && !rc; c++) {
		uint32_t u = by_code[c];
		float raw[DENSE_USER_N], sc[DENSE_USER_N];
		msgpack_packer pk;
		uint8_t key[8];
		uint32_t nh = hist_get(&h, u, hbuf);

		dense_user_raw(&d, u, raw);
		scaler_apply(in->sc, raw, sc, 0, DENSE_USER_N);
		msgpack_sbuffer_clear(buf);
		msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
		rc = msgpack_pack_array(&pk, NELEM(user_fields));
		rc |= msgpack_pack_uint32(&pk, ds->users[u].raw_id);
		rc |= msgpack_pack_uint32(&pk, c);
		rc |= msgpack_pack_uint32(&pk, enc->gender_code[u]);
		rc |= msgpack_pack_uint32(&pk, enc->age_code[u]);
		rc |= msgpack_pack_uint32(&pk, enc->occ_code[u]);
		rc |= msgpack_pack_uint32(&pk, enc->zip_code[u]);
		rc |= pack_floats(&pk, sc, DENSE_USER_N);
		rc |= pack_ids(&pk, hbuf, nh);
		if (rc) {
			rc = hr_error(HR_ENOMEM, "out of memory packing a user");
			break;
		}
		store_key(key, c);
		rc = put_buf(st, STORE_USERS, key, 8, buf, 1);
	}
	for (uint32_t c = 0; c < enc->vocab[ENC_ITEM].n; c++)
		by_code[c] = UINT32_MAX;
	for (size_t i = 0; i < ds->n_items; i++)
		if (enc->item_code[i])
			by_code[enc->item_code[i]] = (uint32_t)i;
	for (uint32_t c = 1; c < enc->vocab[ENC_ITEM].n && !rc; c++) {
		uint32_t i = by_code[c];
		float raw[DENSE_N - DENSE_USER_N], sc[DENSE_N - DENSE_USER_N];
		msgpack_packer pk;
		uint8_t key[8];

		dense_item_raw(&d, i, raw);
		scaler_apply(in->sc, raw, sc, DENSE_USER_N, DENSE_N - DENSE_USER_N);
		msgpack_sbuffer_clear(buf);
		msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
		rc = msgpack_pack_array(&pk, NELEM(item_fields));
		rc |= msgpack_pack_uint32(&pk, ds->items[i].raw_id);
		rc |= msgpack_pack_uint32(&pk, c);
		rc |= pack_cstr(&pk, dataset_title(ds, i));
		rc |= msgpack_pack_uint32(&pk, ds->items[i].year);
		rc |= pack_ids(&pk, enc->item_genres[i], enc->n_item_genres[i]);
		rc |= pack_floats(&pk, sc, DENSE_N - DENSE_USER_N);
		if (rc) {
			rc = hr_error(HR_ENOMEM, "out of memory packing an item");
			break;
		}
		store_key(key, c);
		rc = put_buf(st, STORE_ITEMS, key, 8, buf, 1);
	}
out:
	free(by_code);
	hist_release(&h);
out_dense:
	dense_release(&d);
	free(hbuf);
	return rc;
}

static int pack_str_array(msgpack_packer *pk, const char *const *s, size_t n)
{
	int rc = msgpack_pack_array(pk, n);

	for (size_t i = 0; i < n; i++)
		rc |= pack_cstr(pk, s[i]);
	return rc;
}

static int pack_kv_str(msgpack_packer *pk, const char *k, const char *v)
{
	return pack_cstr(pk, k) | pack_cstr(pk, v);
}

static int pack_kv_u64(msgpack_packer *pk, const char *k, uint64_t v)
{
	return pack_cstr(pk, k) | msgpack_pack_uint64(pk, v);
}

static int pack_kv_f64(msgpack_packer *pk, const char *k, double v)
{
	return pack_cstr(pk, k) | msgpack_pack_double(pk, v);
}

/* FNV-1a 64 over everything that shapes a model's inputs. */
static uint64_t schema_hash(const struct encoding *enc, uint32_t hist_len)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	char tmp[64];
#define MIX(str)                                  \
	for (const char *p_ = (str); *p_; p_++) { \
		h ^= (unsigned char)*p_;          \
		h *= 0x100000001b3ULL;            \
	}                                         \
	h ^= '|';                                 \
	h *= 0x100000001b3ULL;

	snprintf(tmp, sizeof(tmp), "%s/%d", STORE_FORMAT, STORE_VERSION);
	MIX(tmp);
	for (int i = 0; i < REC_NFIELDS; i++) {
		MIX(rec_fields[i]);
	}
	for (size_t i = 0; i < NELEM(user_fields); i++) {
		MIX(user_fields[i]);
	}
	for (size_t i = 0; i < NELEM(item_fields); i++) {
		MIX(item_fields[i]);
	}
	for (int i = 0; i < DENSE_N; i++) {
		MIX(dense_names[i]);
	}
	for (int f = 0; f < ENC_NFIELDS; f++) {
		snprintf(tmp, sizeof(tmp), "%s=%u", enc_field_name(f), enc->vocab[f].n);
		MIX(tmp);
	}
	snprintf(tmp, sizeof(tmp), "L=%u", hist_len);
	MIX(tmp);
#undef MIX
	return h;
}

static int write_meta(const struct build_input *in, struct store *st,
		      const struct ingest_report *rep, msgpack_sbuffer *buf)
{
	const struct ingest_opts *o = in->opts;
	msgpack_packer pk;
	char hash[17];
	int rc;

	snprintf(hash, sizeof(hash), "%016llx",
		 (unsigned long long)schema_hash(in->enc, o->hist_len));
	msgpack_sbuffer_clear(buf);
	msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
	rc = msgpack_pack_map(&pk, 16);
	rc |= pack_kv_str(&pk, "format", STORE_FORMAT);
	rc |= pack_kv_u64(&pk, "version", STORE_VERSION);
	rc |= pack_kv_str(&pk, "schema_hash", hash);
	rc |= pack_kv_str(&pk, "created_by", "hogrec ingest " HOGREC_VERSION);

	rc |= pack_cstr(&pk, "source") | msgpack_pack_map(&pk, 2);
	rc |= pack_kv_str(&pk, "dir", o->in_dir);
	rc |= pack_kv_str(&pk, "format", ds_format_name(in->ds->format));

	rc |= pack_cstr(&pk, "has_demographics");
	rc |= in->ds->has_demographics ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk);

	rc |= pack_cstr(&pk, "options") | msgpack_pack_map(&pk, 10);
	rc |= pack_kv_str(&pk, "label_mode",
			  o->label.mode == LABEL_IMPLICIT ? "implicit" : "explicit");
	rc |= pack_kv_f64(&pk, "pos_min", o->label.pos_min);
	rc |= pack_kv_f64(&pk, "neg_max", o->label.neg_max);
	rc |= pack_kv_str(&pk, "split", split_kind_name(o->split.kind));
	rc |= pack_kv_f64(&pk, "valid_frac", o->split.valid_frac);
	rc |= pack_kv_f64(&pk, "test_frac", o->split.test_frac);
	rc |= pack_kv_u64(&pk, "hist_len", o->hist_len);
	rc |= pack_kv_u64(&pk, "seed", o->seed);
	rc |= pack_kv_u64(&pk, "zip_prefix", (uint64_t)o->zip_prefix);
	rc |= pack_kv_str(&pk, "neg_sampler", "uniform-seen");

	rc |= pack_cstr(&pk, "split") | msgpack_pack_map(&pk, 2);
	rc |= pack_kv_u64(&pk, "train_end_ts", in->split->train_end_ts);
	rc |= pack_kv_u64(&pk, "valid_end_ts", in->split->valid_end_ts);

	rc |= pack_cstr(&pk, "counts") | msgpack_pack_map(&pk, 6);
	rc |= pack_kv_u64(&pk, "ratings", rep->ratings);
	rc |= pack_kv_u64(&pk, "skipped_lines", rep->skipped);
	rc |= pack_kv_u64(&pk, "dropped", rep->dropped);
	for (int s = 0; s < 3; s++)
		rc |= pack_kv_u64(&pk, split_name(s), rep->records[s]);

	rc |= pack_cstr(&pk, "record_fields") | pack_str_array(&pk, rec_fields, REC_NFIELDS);
	rc |= pack_cstr(&pk, "user_fields") | pack_str_array(&pk, user_fields, NELEM(user_fields));
	rc |= pack_cstr(&pk, "item_fields") | pack_str_array(&pk, item_fields, NELEM(item_fields));
	rc |= pack_cstr(&pk, "dense_fields") | pack_str_array(&pk, dense_names, DENSE_N);

	rc |= pack_cstr(&pk, "vocab_sizes") | msgpack_pack_map(&pk, ENC_NFIELDS);
	for (int f = 0; f < ENC_NFIELDS; f++)
		rc |= pack_kv_u64(&pk, enc_field_name(f), in->enc->vocab[f].n);

	rc |= pack_cstr(&pk, "scaler") | msgpack_pack_map(&pk, 2);
	rc |= pack_cstr(&pk, "min") | msgpack_pack_array(&pk, DENSE_N);
	for (int f = 0; f < DENSE_N; f++)
		rc |= msgpack_pack_double(&pk, in->sc->min[f]);
	rc |= pack_cstr(&pk, "max") | msgpack_pack_array(&pk, DENSE_N);
	for (int f = 0; f < DENSE_N; f++)
		rc |= msgpack_pack_double(&pk, in->sc->max[f]);

	rc |= pack_cstr(&pk, "positive_rate") | msgpack_pack_map(&pk, 3);
	for (int s = 0; s < 3; s++)
		rc |= pack_kv_f64(&pk, split_name(s),
				  rep->records[s] ?
					  (double)rep->positives[s] / (double)rep->records[s] :
					  0.0);
	if (rc)
		return hr_error(HR_ENOMEM, "out of memory packing meta");
	return put_buf(st, STORE_META, "meta", 4, buf, 0);
}

int build_tables(const struct build_input *in, struct store *st, const struct ingest_report *rep)
{
	msgpack_sbuffer buf;
	int rc;

	msgpack_sbuffer_init(&buf);
	rc = write_vocab(in->enc, st, &buf);
	if (!rc)
		rc = write_users_items(in, st, &buf);
	if (!rc)
		rc = write_meta(in, st, rep, &buf);
	msgpack_sbuffer_destroy(&buf);
	if (!rc)
		rc = store_commit(st, 0);
	return rc;
}
