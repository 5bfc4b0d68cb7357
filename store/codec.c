#include "codec.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

const char *const rec_fields[REC_NFIELDS] = {
	"user_raw", "item_raw",   "rating", "ts",     "label", "user", "item",     "gender",
	"age",      "occupation", "zip",    "genres", "dense", "hist", "neg_hist",
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
	size_t need =
		5 * (REC_NFIELDS + 4 + (size_t)r->n_genres + r->n_dense + r->n_hist + r->n_neg);
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

/*
 * Records are decoded by a bounds-checked cursor straight into the caller's
 * struct: no allocation (msgpack-c's unpacker builds an object tree in a
 * zone, allocating each array's objects when it reads the header - a forged
 * header makes it ask for gigabytes), and no pass over an intermediate tree.
 */
struct mpr {
	const uint8_t *p, *end;
};

static int mpr_fail(const char *field, const char *what)
{
	return hr_error(HR_EFORMAT, "record field '%s' %s", field, what);
}

static int mpr_need(struct mpr *r, size_t n)
{
	return (size_t)(r->end - r->p) >= n;
}

static uint32_t mpr_be(const uint8_t *p, int n)
{
	uint32_t v = 0;

	for (int i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

/* An unsigned integer that fits 32 bits, in any msgpack integer encoding. */
static int mpr_u32(struct mpr *r, uint32_t *v, const char *field)
{
	uint8_t t;
	int n;

	if (!mpr_need(r, 1))
		return mpr_fail(field, "is truncated");
	t = *r->p;
	if (t <= 0x7f) {
		*v = t;
		r->p++;
		return 0;
	}
	n = t == 0xcc ? 1 : t == 0xcd ? 2 : t == 0xce ? 4 : t == 0xcf ? 8 : 0;
	if (n == 0)
		return mpr_fail(field, "is not an unsigned integer");
	if (!mpr_need(r, 1 + (size_t)n))
		return mpr_fail(field, "is truncated");
	if (n == 8) {
		if (mpr_be(r->p + 1, 4) != 0)
			return mpr_fail(field, "does not fit 32 bits");
		*v = mpr_be(r->p + 5, 4);
	} else {
		*v = mpr_be(r->p + 1, n);
	}
	r->p += 1 + n;
	return 0;
}

static int mpr_float(struct mpr *r, float *v, const char *field)
{
	if (!mpr_need(r, 1))
		return mpr_fail(field, "is truncated");
	if (*r->p == 0xca && mpr_need(r, 5)) {
		uint32_t bits = mpr_be(r->p + 1, 4);
		memcpy(v, &bits, sizeof(*v));
		r->p += 5;
		return 0;
	}
	if (*r->p == 0xcb && mpr_need(r, 9)) {
		uint64_t bits = ((uint64_t)mpr_be(r->p + 1, 4) << 32) | mpr_be(r->p + 5, 4);
		double d;
		memcpy(&d, &bits, sizeof(d));
		*v = (float)d;
		r->p += 9;
		return 0;
	}
	if (*r->p == 0xca || *r->p == 0xcb)
		return mpr_fail(field, "is truncated");
	uint32_t u;
	int rc = mpr_u32(r, &u, field);
	if (rc)
		return mpr_fail(field, "is not a number");
	*v = (float)u;
	return 0;
}

/* An array header whose count is at most cap. */
static int mpr_array(struct mpr *r, uint32_t *n, uint32_t cap, const char *field)
{
	uint8_t t;

	if (!mpr_need(r, 1))
		return mpr_fail(field, "is truncated");
	t = *r->p;
	if ((t & 0xf0) == 0x90) {
		*n = t & 0x0f;
		r->p++;
	} else if (t == 0xdc && mpr_need(r, 3)) {
		*n = mpr_be(r->p + 1, 2);
		r->p += 3;
	} else if (t == 0xdd && mpr_need(r, 5)) {
		*n = mpr_be(r->p + 1, 4);
		r->p += 5;
	} else {
		return mpr_fail(field, t == 0xdc || t == 0xdd ? "is truncated" : "is not an array");
	}
	if (*n > cap)
		return hr_error(HR_EFORMAT, "record field '%s' has %u elements, more than %u",
				field, *n, cap);
	return 0;
}

static int mpr_ids(struct mpr *r, uint32_t *out, uint32_t cap, uint32_t *n, const char *field)
{
	int rc = mpr_array(r, n, cap, field);

	for (uint32_t i = 0; i < *n && !rc; i++) {
		/* The two encodings ids take in practice, inline; the rest via mpr_u32. */
		const uint8_t *p = r->p;
		if (p < r->end && *p <= 0x7f) {
			out[i] = *p;
			r->p = p + 1;
		} else if (p + 2 < r->end && *p == 0xcd) {
			out[i] = (uint32_t)p[1] << 8 | p[2];
			r->p = p + 3;
		} else {
			rc = mpr_u32(r, &out[i], field);
		}
	}
	return rc;
}

int record_unpack_fields(const void *data, size_t len, struct record *r, unsigned flags)
{
	struct mpr c = {data, (const uint8_t *)data + len};
	uint32_t *const scalars[] = {
		&r->user_raw, &r->item_raw, NULL,    &r->ts,         &r->label, &r->user,
		&r->item,     &r->gender,   &r->age, &r->occupation, &r->zip,
	};
	uint32_t n;
	int rc = mpr_array(&c, &n, REC_NFIELDS, "record");

	if (!rc && n != REC_NFIELDS)
		rc = hr_error(HR_EFORMAT, "record is an array of %u fields, not %d", n,
			      REC_NFIELDS);
	for (int f = 0; f < 11 && !rc; f++)
		rc = scalars[f] ? mpr_u32(&c, scalars[f], rec_fields[f]) :
				  mpr_float(&c, &r->rating, rec_fields[f]);
	if (flags & REC_SKIP_FEATURES) {
		r->n_genres = r->n_dense = r->n_hist = r->n_neg = 0;
		return rc;
	}
	if (!rc)
		rc = mpr_ids(&c, r->genres, REC_MAX_GENRES, &r->n_genres, rec_fields[11]);
	if (!rc)
		rc = mpr_array(&c, &r->n_dense, REC_MAX_DENSE, rec_fields[12]);
	for (uint32_t i = 0; i < r->n_dense && !rc; i++)
		rc = mpr_float(&c, &r->dense[i], rec_fields[12]);
	if (flags & REC_SKIP_SEQUENCES) {
		/* The sequences are the record's last fields: stop before them. */
		r->n_hist = r->n_neg = 0;
		return rc;
	}
	if (!rc)
		rc = mpr_ids(&c, r->hist, r->hist_cap, &r->n_hist, rec_fields[13]);
	if (!rc)
		rc = mpr_ids(&c, r->neg, r->hist_cap, &r->n_neg, rec_fields[14]);
	if (!rc && c.p != c.end)
		rc = hr_error(HR_EFORMAT, "record has %zu trailing bytes", (size_t)(c.end - c.p));
	return rc;
}

int record_unpack(const void *data, size_t len, struct record *r)
{
	return record_unpack_fields(data, len, r, 0);
}

int msgpack_well_sized(const void *data, size_t len)
{
	const uint8_t *p = data, *end = p + len;
	uint64_t pending = 1; /* values still to read */

	while (pending--) {
		uint64_t kids = 0, skip = 0, n = 0;
		int lenb = 0;  /* bytes of a length field */
		int extra = 0; /* type byte of an ext */
		if (p >= end)
			return -1;
		uint8_t t = *p++;
		if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3)
			;
		else if ((t & 0xf0) == 0x80)
			kids = 2u * (t & 0x0f);
		else if ((t & 0xf0) == 0x90)
			kids = t & 0x0f;
		else if ((t & 0xe0) == 0xa0)
			skip = t & 0x1f;
		else
			switch (t) {
			case 0xc4:
			case 0xd9: lenb = 1; break;
			case 0xc5:
			case 0xda: lenb = 2; break;
			case 0xc6:
			case 0xdb: lenb = 4; break;
			case 0xc7: lenb = 1, extra = 1; break;
			case 0xc8: lenb = 2, extra = 1; break;
			case 0xc9: lenb = 4, extra = 1; break;
			case 0xcc:
			case 0xd0: skip = 1; break;
			case 0xcd:
			case 0xd1: skip = 2; break;
			case 0xca:
			case 0xce:
			case 0xd2: skip = 4; break;
			case 0xcb:
			case 0xcf:
			case 0xd3: skip = 8; break;
			case 0xd4: skip = 2; break;
			case 0xd5: skip = 3; break;
			case 0xd6: skip = 5; break;
			case 0xd7: skip = 9; break;
			case 0xd8: skip = 17; break;
			case 0xdc:
			case 0xde: lenb = 2; break;
			case 0xdd:
			case 0xdf: lenb = 4; break;
			default: return -1; /* 0xc1, never used */
			}
		if (lenb) {
			if ((size_t)(end - p) < (size_t)lenb)
				return -1;
			n = mpr_be(p, lenb);
			p += lenb;
			if (t == 0xdc || t == 0xdd)
				kids = n;
			else if (t == 0xde || t == 0xdf)
				kids = 2 * n;
			else
				skip = n + (uint64_t)extra;
		}
		if (skip > (uint64_t)(end - p))
			return -1;
		p += skip;
		pending += kids;
		if (pending > (uint64_t)(end - p)) /* each value takes a byte at least */
			return -1;
	}
	return 0;
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

/* The shortest %g text that reads back as the same float (or double). */
static void json_number(FILE *out, double v, int lo, int hi, int is_float)
{
	char buf[40];

	if (!isfinite(v)) {
		fputs("null", out); /* JSON has no NaN or infinity */
		return;
	}
	for (int prec = lo; prec <= hi; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, v);
		double back = strtod(buf, NULL);
		if (is_float ? (float)back == (float)v : back == v)
			break;
	}
	fputs(buf, out);
}

void msgpack_to_json(FILE *out, const msgpack_object *o)
{
	switch (o->type) {
	case MSGPACK_OBJECT_NIL: fputs("null", out); break;
	case MSGPACK_OBJECT_BOOLEAN: fputs(o->via.boolean ? "true" : "false", out); break;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		fprintf(out, "%llu", (unsigned long long)o->via.u64);
		break;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER: fprintf(out, "%lld", (long long)o->via.i64); break;
	case MSGPACK_OBJECT_FLOAT32: json_number(out, o->via.f64, 6, 9, 1); break;
	case MSGPACK_OBJECT_FLOAT64: json_number(out, o->via.f64, 15, 17, 0); break;
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
