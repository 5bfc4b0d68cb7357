#include "codec.h"

#include <string.h>

#include "common/err.h"

const char *const rec_fields[REC_NFIELDS] = {
	"user_raw", "item_raw", "rating", "ts", "label", "user", "item", "gender",
	"age", "occupation", "zip", "genres", "dense", "hist", "neg_hist",
};

int pack_cstr(msgpack_packer *pk, const char *s)
{
	size_t n = strlen(s);

	return msgpack_pack_str(pk, n) || msgpack_pack_str_body(pk, s, n);
}

/*
 * Records are the one hot encoding path (a million per ingest), so they are
 * written by this small msgpack writer straight into the buffer: msgpack-c's
 * packer makes an indirect call per value, which cost ~30% of ingest time.
 * The bytes are standard msgpack (smallest integer encodings, float32), and
 * the interop tests decode them with Python's msgpack.
 */
struct mpw {
	char *p;
};

static inline void mpw_u8(struct mpw *w, unsigned v)
{
	*w->p++ = (char)v;
}

static inline void mpw_be16(struct mpw *w, uint32_t v)
{
	w->p[0] = (char)(v >> 8);
	w->p[1] = (char)v;
	w->p += 2;
}

static inline void mpw_be32(struct mpw *w, uint32_t v)
{
	w->p[0] = (char)(v >> 24);
	w->p[1] = (char)(v >> 16);
	w->p[2] = (char)(v >> 8);
	w->p[3] = (char)v;
	w->p += 4;
}

static inline void mpw_uint(struct mpw *w, uint32_t v)
{
	if (v < 128) {
		mpw_u8(w, v);
	} else if (v < 256) {
		mpw_u8(w, 0xcc);
		mpw_u8(w, v);
	} else if (v < 65536) {
		mpw_u8(w, 0xcd);
		mpw_be16(w, v);
	} else {
		mpw_u8(w, 0xce);
		mpw_be32(w, v);
	}
}

static inline void mpw_array(struct mpw *w, uint32_t n)
{
	if (n < 16) {
		mpw_u8(w, 0x90 | n);
	} else if (n < 65536) {
		mpw_u8(w, 0xdc);
		mpw_be16(w, n);
	} else {
		mpw_u8(w, 0xdd);
		mpw_be32(w, n);
	}
}

static inline void mpw_float(struct mpw *w, float f)
{
	uint32_t bits;

	memcpy(&bits, &f, sizeof(bits));
	mpw_u8(w, 0xca);
	mpw_be32(w, bits);
}

static inline void mpw_ids(struct mpw *w, const uint32_t *ids, uint32_t n)
{
	mpw_array(w, n);
	for (uint32_t i = 0; i < n; i++)
		mpw_uint(w, ids[i]);
}

int record_pack(msgpack_sbuffer *buf, const struct record *r)
{
	/* Upper bound: 5 bytes per value and per array header. */
	size_t need = 5 * (REC_NFIELDS + 4 + (size_t)r->n_genres + r->n_dense + r->n_hist + r->n_neg);
	struct mpw w;

	if (buf->alloc - buf->size < need) {
		size_t cap = buf->alloc ? buf->alloc : 1024;
		while (cap - buf->size < need)
			cap *= 2;
		char *p = realloc(buf->data, cap);
		if (!p)
			return hr_error(HR_ENOMEM, "out of memory packing a record");
		buf->data = p;
		buf->alloc = cap;
	}
	w.p = buf->data + buf->size;
	mpw_array(&w, REC_NFIELDS);
	mpw_uint(&w, r->user_raw);
	mpw_uint(&w, r->item_raw);
	mpw_float(&w, r->rating);
	mpw_uint(&w, r->ts);
	mpw_uint(&w, r->label);
	mpw_uint(&w, r->user);
	mpw_uint(&w, r->item);
	mpw_uint(&w, r->gender);
	mpw_uint(&w, r->age);
	mpw_uint(&w, r->occupation);
	mpw_uint(&w, r->zip);
	mpw_ids(&w, r->genres, r->n_genres);
	mpw_array(&w, r->n_dense);
	for (uint32_t i = 0; i < r->n_dense; i++)
		mpw_float(&w, r->dense[i]);
	mpw_ids(&w, r->hist, r->n_hist);
	mpw_ids(&w, r->neg, r->n_neg);
	buf->size = (size_t)(w.p - buf->data);
	return 0;
}

static int get_u32(const msgpack_object *o, uint32_t *v, const char *field)
{
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > UINT32_MAX)
		return hr_error(HR_EFORMAT, "record field '%s' is not an unsigned 32-bit integer",
				field);
	*v = (uint32_t)o->via.u64;
	return 0;
}

static int get_float(const msgpack_object *o, float *v, const char *field)
{
	if (o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64)
		*v = (float)o->via.f64;
	else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
		*v = (float)o->via.u64;
	else
		return hr_error(HR_EFORMAT, "record field '%s' is not a number", field);
	return 0;
}

static int get_ids(const msgpack_object *o, uint32_t *out, uint32_t cap, uint32_t *n,
		   const char *field)
{
	if (o->type != MSGPACK_OBJECT_ARRAY)
		return hr_error(HR_EFORMAT, "record field '%s' is not an array", field);
	if (o->via.array.size > cap)
		return hr_error(HR_EFORMAT, "record field '%s' has %u elements, more than %u",
				field, o->via.array.size, cap);
	for (uint32_t i = 0; i < o->via.array.size; i++) {
		int rc = get_u32(&o->via.array.ptr[i], &out[i], field);
		if (rc)
			return rc;
	}
	*n = o->via.array.size;
	return 0;
}

int record_unpack(const void *data, size_t len, struct record *r)
{
	msgpack_unpacked u;
	size_t off = 0;
	const msgpack_object *f;
	int rc;

	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, data, len, &off) != MSGPACK_UNPACK_SUCCESS) {
		rc = hr_error(HR_EFORMAT, "record is not valid msgpack");
		goto out;
	}
	if (u.data.type != MSGPACK_OBJECT_ARRAY || u.data.via.array.size != REC_NFIELDS) {
		rc = hr_error(HR_EFORMAT, "record is not an array of %d fields", REC_NFIELDS);
		goto out;
	}
	f = u.data.via.array.ptr;
	rc = get_u32(&f[0], &r->user_raw, rec_fields[0]);
	if (!rc) rc = get_u32(&f[1], &r->item_raw, rec_fields[1]);
	if (!rc) rc = get_float(&f[2], &r->rating, rec_fields[2]);
	if (!rc) rc = get_u32(&f[3], &r->ts, rec_fields[3]);
	if (!rc) rc = get_u32(&f[4], &r->label, rec_fields[4]);
	if (!rc) rc = get_u32(&f[5], &r->user, rec_fields[5]);
	if (!rc) rc = get_u32(&f[6], &r->item, rec_fields[6]);
	if (!rc) rc = get_u32(&f[7], &r->gender, rec_fields[7]);
	if (!rc) rc = get_u32(&f[8], &r->age, rec_fields[8]);
	if (!rc) rc = get_u32(&f[9], &r->occupation, rec_fields[9]);
	if (!rc) rc = get_u32(&f[10], &r->zip, rec_fields[10]);
	if (!rc) rc = get_ids(&f[11], r->genres, REC_MAX_GENRES, &r->n_genres, rec_fields[11]);
	if (!rc) {
		const msgpack_object *d = &f[12];
		if (d->type != MSGPACK_OBJECT_ARRAY || d->via.array.size > REC_MAX_DENSE) {
			rc = hr_error(HR_EFORMAT, "record field 'dense' is not an array of at most %d numbers",
				      REC_MAX_DENSE);
		} else {
			r->n_dense = d->via.array.size;
			for (uint32_t i = 0; i < r->n_dense && !rc; i++)
				rc = get_float(&d->via.array.ptr[i], &r->dense[i], "dense");
		}
	}
	if (!rc) rc = get_ids(&f[13], r->hist, r->hist_cap, &r->n_hist, rec_fields[13]);
	if (!rc) rc = get_ids(&f[14], r->neg, r->hist_cap, &r->n_neg, rec_fields[14]);
out:
	msgpack_unpacked_destroy(&u);
	return rc;
}

static void json_string(FILE *out, const char *s, size_t n)
{
	fputc('"', out);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

void msgpack_to_json(FILE *out, const msgpack_object *o)
{
	switch (o->type) {
	case MSGPACK_OBJECT_NIL: fputs("null", out); break;
	case MSGPACK_OBJECT_BOOLEAN: fputs(o->via.boolean ? "true" : "false", out); break;
	case MSGPACK_OBJECT_POSITIVE_INTEGER: fprintf(out, "%llu", (unsigned long long)o->via.u64); break;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER: fprintf(out, "%lld", (long long)o->via.i64); break;
	case MSGPACK_OBJECT_FLOAT32: fprintf(out, "%.9g", o->via.f64); break;
	case MSGPACK_OBJECT_FLOAT64: fprintf(out, "%.17g", o->via.f64); break;
	case MSGPACK_OBJECT_STR: json_string(out, o->via.str.ptr, o->via.str.size); break;
	case MSGPACK_OBJECT_BIN:
		fputc('"', out);
		for (uint32_t i = 0; i < o->via.bin.size; i++)
			fprintf(out, "%02x", (unsigned char)o->via.bin.ptr[i]);
		fputc('"', out);
		break;
	case MSGPACK_OBJECT_ARRAY:
		fputc('[', out);
		for (uint32_t i = 0; i < o->via.array.size; i++) {
			if (i)
				fputc(',', out);
			msgpack_to_json(out, &o->via.array.ptr[i]);
		}
		fputc(']', out);
		break;
	case MSGPACK_OBJECT_MAP:
		fputc('{', out);
		for (uint32_t i = 0; i < o->via.map.size; i++) {
			const msgpack_object_kv *kv = &o->via.map.ptr[i];
			if (i)
				fputc(',', out);
			if (kv->key.type == MSGPACK_OBJECT_STR)
				json_string(out, kv->key.via.str.ptr, kv->key.via.str.size);
			else {
				fputc('"', out);
				msgpack_to_json(out, &kv->key);
				fputc('"', out);
			}
			fputc(':', out);
			msgpack_to_json(out, &kv->val);
		}
		fputc('}', out);
		break;
	default: fputs("null", out); break;
	}
}

const msgpack_object *msgpack_map_get(const msgpack_object *o, const char *key)
{
	size_t n = strlen(key);

	if (o->type != MSGPACK_OBJECT_MAP)
		return NULL;
	for (uint32_t i = 0; i < o->via.map.size; i++) {
		const msgpack_object *k = &o->via.map.ptr[i].key;
		if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
		    !memcmp(k->via.str.ptr, key, n))
			return &o->via.map.ptr[i].val;
	}
	return NULL;
}
