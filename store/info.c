#include "info.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "common/err.h"

static const char *const field_names[SF_NFIELDS] = {
	"user", "item", "gender", "age", "occupation", "zip", "genre",
};

const char *store_field_name(enum store_field f)
{
	return field_names[f];
}

static int bad(const struct store *s, const char *key, const char *what)
{
	return hr_error(HR_ESTORE, "store '%s': meta '%s' %s", store_path(s), key, what);
}

static int get_uint(const struct store *s, const msgpack_object *map, const char *key, uint64_t *v)
{
	const msgpack_object *o = msgpack_map_get(map, key);

	if (!o)
		return bad(s, key, "is missing");
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return bad(s, key, "is not an unsigned integer");
	*v = o->via.u64;
	return 0;
}

static int get_u32(const struct store *s, const msgpack_object *map, const char *key, uint32_t *v)
{
	uint64_t u = 0;
	int rc = get_uint(s, map, key, &u);

	if (!rc && u > UINT32_MAX)
		rc = bad(s, key, "is too large");
	if (!rc)
		*v = (uint32_t)u;
	return rc;
}

static int check_fields(const struct store *s, const msgpack_object *meta)
{
	const msgpack_object *f = msgpack_map_get(meta, "record_fields");

	if (!f || f->type != MSGPACK_OBJECT_ARRAY || f->via.array.size != REC_NFIELDS)
		return bad(s, "record_fields", "does not list the 15 fields of format version 1");
	for (uint32_t i = 0; i < REC_NFIELDS; i++) {
		const msgpack_object *n = &f->via.array.ptr[i];
		if (n->type != MSGPACK_OBJECT_STR || n->via.str.size != strlen(rec_fields[i]) ||
		    memcmp(n->via.str.ptr, rec_fields[i], n->via.str.size))
			return bad(s, "record_fields", "differs from format version 1");
	}
	return 0;
}

static int parse_meta(struct store *s, const msgpack_object *m, struct store_info *info)
{
	const msgpack_object *o, *sub;
	uint64_t version = 0;
	int rc;

	o = msgpack_map_get(m, "format");
	if (!o || o->type != MSGPACK_OBJECT_STR || o->via.str.size != strlen(STORE_FORMAT) ||
	    memcmp(o->via.str.ptr, STORE_FORMAT, o->via.str.size))
		return hr_error(HR_ESTORE, "'%s' is not a hogrec store (meta 'format')",
				store_path(s));
	if ((rc = get_uint(s, m, "version", &version)))
		return rc;
	if (version != STORE_VERSION)
		return hr_error(HR_EVERSION,
				"store '%s' has format version %llu; this build reads %d",
				store_path(s), (unsigned long long)version, STORE_VERSION);
	if ((rc = check_fields(s, m)))
		return rc;
	o = msgpack_map_get(m, "schema_hash");
	if (!o || o->type != MSGPACK_OBJECT_STR || o->via.str.size != 16)
		return bad(s, "schema_hash", "is not 16 hex digits");
	memcpy(info->schema_hash, o->via.str.ptr, 16);
	info->schema_hash[16] = '\0';
	o = msgpack_map_get(m, "has_demographics");
	info->has_demographics = o && o->type == MSGPACK_OBJECT_BOOLEAN && o->via.boolean;

	sub = msgpack_map_get(m, "vocab_sizes");
	if (!sub || sub->type != MSGPACK_OBJECT_MAP)
		return bad(s, "vocab_sizes", "is missing");
	for (int f = 0; f < SF_NFIELDS; f++)
		if ((rc = get_u32(s, sub, field_names[f], &info->vocab[f])))
			return rc;
	sub = msgpack_map_get(m, "counts");
	if (!sub || sub->type != MSGPACK_OBJECT_MAP)
		return bad(s, "counts", "is missing");
	static const char *const splits[3] = {"train", "valid", "test"};
	for (int k = 0; k < 3; k++)
		if ((rc = get_uint(s, sub, splits[k], &info->count[k])))
			return rc;
	sub = msgpack_map_get(m, "options");
	if (!sub || (rc = get_u32(s, sub, "hist_len", &info->hist_len)))
		return sub ? rc : bad(s, "options", "is missing");
	o = msgpack_map_get(m, "dense_fields");
	if (!o || o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size > REC_MAX_DENSE)
		return bad(s, "dense_fields", "is not a list of at most 16 names");
	info->n_dense = o->via.array.size;
	sub = msgpack_map_get(m, "split");
	if (!sub || (rc = get_u32(s, sub, "train_end_ts", &info->train_end_ts)) ||
	    (rc = get_u32(s, sub, "valid_end_ts", &info->valid_end_ts)))
		return sub ? rc : bad(s, "split", "is missing");
	sub = msgpack_map_get(m, "scaler");
	for (int k = 0; k < 2; k++) {
		const msgpack_object *a = sub ? msgpack_map_get(sub, k ? "max" : "min") : NULL;
		if (!a || a->type != MSGPACK_OBJECT_ARRAY || a->via.array.size != info->n_dense)
			return bad(s, "scaler", "does not hold min and max for every dense field");
		for (uint32_t i = 0; i < info->n_dense; i++) {
			const msgpack_object *v = &a->via.array.ptr[i];
			float f = v->type == MSGPACK_OBJECT_FLOAT64 ||
						  v->type == MSGPACK_OBJECT_FLOAT32 ?
					  (float)v->via.f64 :
				  v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (float)v->via.u64 :
									       0;
			(k ? info->scaler_max : info->scaler_min)[i] = f;
		}
	}
	sub = msgpack_map_get(m, "positive_rate");
	for (int k = 0; sub && k < 3; k++) {
		o = msgpack_map_get(sub, splits[k]);
		if (o && (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32))
			info->positive_rate[k] = o->via.f64;
	}
	return 0;
}

int store_info_load(struct store *s, struct store_info *info)
{
	struct store_reader *r;
	msgpack_unpacked u;
	const void *v;
	size_t n, off = 0;
	int rc;

	memset(info, 0, sizeof(*info));
	rc = store_reader_begin(s, &r);
	if (rc)
		return rc;
	rc = store_get(r, STORE_META, "meta", 4, &v, &n);
	if (rc == HR_ENOENT)
		rc = hr_error(HR_ESTORE, "'%s' is not a hogrec store (no meta)", store_path(s));
	msgpack_unpacked_init(&u);
	if (!rc && (msgpack_well_sized(v, n) ||
		    msgpack_unpack_next(&u, v, n, &off) != MSGPACK_UNPACK_SUCCESS))
		rc = hr_error(HR_ESTORE, "store '%s': meta is not valid msgpack", store_path(s));
	if (!rc)
		rc = parse_meta(s, &u.data, info);
	msgpack_unpacked_destroy(&u);
	store_reader_end(r);
	return rc;
}

int store_meta_vocab(const struct store *s, const void *v, size_t n, uint32_t vocab[SF_NFIELDS])
{
	msgpack_unpacked u;
	size_t off = 0;
	int rc = 0;

	msgpack_unpacked_init(&u);
	if (msgpack_well_sized(v, n) ||
	    msgpack_unpack_next(&u, v, n, &off) != MSGPACK_UNPACK_SUCCESS)
		rc = hr_error(HR_ESTORE, "store '%s': meta is not valid msgpack", store_path(s));
	const msgpack_object *sub = rc ? NULL : msgpack_map_get(&u.data, "vocab_sizes");
	if (!rc && (!sub || sub->type != MSGPACK_OBJECT_MAP))
		rc = bad(s, "vocab_sizes", "is missing");
	for (int f = 0; f < SF_NFIELDS && !rc; f++)
		rc = get_u32(s, sub, field_names[f], &vocab[f]);
	msgpack_unpacked_destroy(&u);
	return rc;
}

int store_vocab_load(struct store *s, enum store_field f, struct store_vocab *v)
{
	struct store_reader *r;
	msgpack_unpacked u;
	const void *val;
	size_t n, off = 0;
	const char *name = field_names[f];
	int rc;

	memset(v, 0, sizeof(*v));
	rc = store_reader_begin(s, &r);
	if (rc)
		return rc;
	rc = store_get(r, STORE_VOCAB, name, strlen(name), &val, &n);
	if (rc == HR_ENOENT)
		rc = hr_error(HR_ESTORE, "store '%s': no vocabulary '%s'", store_path(s), name);
	msgpack_unpacked_init(&u);
	if (!rc && (msgpack_well_sized(val, n) ||
		    msgpack_unpack_next(&u, val, n, &off) != MSGPACK_UNPACK_SUCCESS ||
		    u.data.type != MSGPACK_OBJECT_ARRAY))
		rc = hr_error(HR_ESTORE, "store '%s': vocabulary '%s' is not an array",
			      store_path(s), name);
	if (!rc) {
		v->n = u.data.via.array.size;
		v->raw = calloc(v->n ? v->n : 1, sizeof(*v->raw));
		if (!v->raw)
			rc = hr_error(HR_ENOMEM, "out of memory for vocabulary '%s'", name);
	}
	for (uint32_t i = 0; !rc && i < v->n; i++) {
		const msgpack_object *o = &u.data.via.array.ptr[i];
		char buf[32];
		if (o->type == MSGPACK_OBJECT_STR)
			v->raw[i] = strndup(o->via.str.ptr, o->via.str.size);
		else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
			snprintf(buf, sizeof(buf), "%llu", (unsigned long long)o->via.u64);
			v->raw[i] = strdup(buf);
		} else
			v->raw[i] = strdup("");
		if (!v->raw[i])
			rc = hr_error(HR_ENOMEM, "out of memory for vocabulary '%s'", name);
	}
	msgpack_unpacked_destroy(&u);
	store_reader_end(r);
	if (rc)
		store_vocab_release(v);
	return rc;
}

void store_vocab_release(struct store_vocab *v)
{
	for (uint32_t i = 0; v->raw && i < v->n; i++)
		free(v->raw[i]);
	free(v->raw);
	memset(v, 0, sizeof(*v));
}
