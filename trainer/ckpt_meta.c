/*
 * ckpt_meta.c - what writing and reading share: test fault injection, file
 * names, the metadata rules (docs/FORMAT.md, "Checkpoints"), the crc field
 * and non-finite floats.
 */
#include "ckpt_internal.h"

#include <fcntl.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

/* ---- fault injection (tests) ---- */

static _Atomic int fault_where = CKPT_FAULT_NONE;
_Atomic uint64_t ckpt_fault_arg;

void ckpt_fault_inject(enum ckpt_fault where, uint64_t arg)
{
	/* Tests set this between saves; no ordering with other memory needed. */
	atomic_store_explicit(&ckpt_fault_arg, arg, memory_order_relaxed);
	atomic_store_explicit(&fault_where, (int)where, memory_order_relaxed);
}

int ckpt_fault_at(enum ckpt_fault where)
{
	return atomic_load_explicit(&fault_where, memory_order_relaxed) == (int)where;
}

/* ---- names ---- */

void ckpt_file_name(char *out, size_t n, uint64_t step)
{
	snprintf(out, n, "ckpt-%012" PRIu64 ".safetensors", step);
}

/* Strict decimal: digits only, no sign or space, no overflow. */
int ckpt_parse_dec(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;

	if (n == 0 || n > 20)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned)(s[i] - '0');
		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* 1 and the step if name is "ckpt-<digits>.safetensors", else 0. */
int ckpt_parse_name(const char *name, uint64_t *step)
{
	static const char suffix[] = ".safetensors";
	size_t len = strlen(name);

	if (strncmp(name, "ckpt-", 5) || len < 5 + sizeof(suffix))
		return 0;
	if (strcmp(name + len - (sizeof(suffix) - 1), suffix))
		return 0;
	return ckpt_parse_dec(name + 5, len - 5 - (sizeof(suffix) - 1), step) == 0;
}

/* ---- metadata rules, shared by writing and reading ---- */

/* Writes why a value breaks the rules into why (cap bytes); returns -1. */
static int whyf(char *why, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int whyf(char *why, size_t cap, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, cap, fmt, ap);
	va_end(ap);
	return -1;
}

/* 1 if v is a JSON number (integer or real) in [lo, hi], integral if asked. */
static int num_in(const json_t *v, double lo, double hi, int integral)
{
	double x;

	if (json_is_integer(v))
		x = (double)json_integer_value(v);
	else if (json_is_real(v))
		x = json_real_value(v);
	else
		return 0;
	if (!isfinite(x) || x < lo || x > hi)
		return 0;
	return !integral || x == (double)(int64_t)x;
}

/* A JSON string holding a strict decimal integer <= max, into *out. */
static int dec_str(const json_t *v, uint64_t max, uint64_t *out)
{
	const char *s = json_string_value(v);

	return s && !ckpt_parse_dec(s, json_string_length(v), out) && *out <= max;
}

/* 1 if v is a string of 1 to max bytes, none of them a control character. */
int ckpt_short_text(const json_t *v, size_t max)
{
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);

	if (!s || n == 0 || n > max)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

/* The "shape" object: what must match to resume. */
static int check_shape(const json_t *shape, char *why, size_t cap)
{
	const json_t *hidden = json_object_get(shape, "hidden"), *v;
	size_t i;

	if (!json_is_object(shape))
		return whyf(why, cap, "'shape' is not an object");
	if (!num_in(json_object_get(shape, "emb_dim"), 1, 4096, 1))
		return whyf(why, cap, "'shape.emb_dim' is not an integer from 1 to 4096");
	if (!json_is_array(hidden) || json_array_size(hidden) > 8)
		return whyf(why, cap, "'shape.hidden' is not a list of at most 8 widths");
	json_array_foreach(hidden, i, v) if (!num_in(v, 1, 65536, 1)) return whyf(
		why, cap, "'shape.hidden[%zu]' is not an integer from 1 to 65536", i);
	if (!ckpt_short_text(json_object_get(shape, "optimizer"), 15))
		return whyf(why, cap, "'shape.optimizer' is not a name of 1 to 15 characters");
	return 0;
}

/* "metrics": null, or an object of null or finite numbers (AUCs in [0, 1]). */
static int check_metrics(const json_t *m, char *why, size_t cap)
{
	const char *key;
	json_t *v;

	if (json_is_null(m))
		return 0;
	if (!json_is_object(m))
		return whyf(why, cap, "'metrics' is neither null nor an object");
	json_object_foreach((json_t *)m, key, v)
	{
		int auc = strstr(key, "auc") != NULL;
		if (!json_is_null(v) && !num_in(v, auc ? 0 : -DBL_MAX, auc ? 1 : DBL_MAX, 0))
			return whyf(why, cap, "'metrics.%.64s' is not null or a %s", key,
				    auc ? "number from 0 to 1" : "finite number");
	}
	return 0;
}

/*
 * Early stopping's state (snapshot.h): best_auc a number from 0 to 1,
 * best_rmse a number from 0 to 1e6,
 * best_step a decimal string like next_batch, best_epoch and bad_epochs
 * integers up to CKPT_EPOCH_MAX, final a boolean.
 */
static int check_early_stop(const json_t *doc, char *why, size_t cap)
{
	static const char *const epochs[] = {"best_epoch", "bad_epochs"};
	const json_t *v;
	uint64_t u;

	if ((v = json_object_get(doc, "best_auc")) && !num_in(v, 0, 1, 0))
		return whyf(why, cap, "'best_auc' is not a number from 0 to 1");
	if ((v = json_object_get(doc, "best_rmse")) && !num_in(v, 0, 1e6, 0))
		return whyf(why, cap, "'best_rmse' is not a number from 0 to 1000000");
	if ((v = json_object_get(doc, "early_stop_metric")) &&
	    (!json_is_string(v) || json_string_length(v) >= 24))
		return whyf(why, cap, "'early_stop_metric' is not a string of at most 23 bytes");
	if ((v = json_object_get(doc, "best_step")) && !dec_str(v, CKPT_COUNT_MAX, &u))
		return whyf(why, cap, "'best_step' is not a decimal string from 0 to %" PRIu64,
			    CKPT_COUNT_MAX);
	for (size_t i = 0; i < sizeof(epochs) / sizeof(epochs[0]); i++)
		if ((v = json_object_get(doc, epochs[i])) && !num_in(v, 0, CKPT_EPOCH_MAX, 1))
			return whyf(why, cap, "'%s' is not an integer from 0 to %d", epochs[i],
				    CKPT_EPOCH_MAX);
	if ((v = json_object_get(doc, "final")) && !json_is_boolean(v))
		return whyf(why, cap, "'final' is not true or false");
	return 0;
}

/*
 * "init_from" (trainer/pretrain.h): a list of at most CKPT_SOURCES_MAX
 * objects, each with "path" and "file" (1 to CKPT_PATH_MAX bytes), "model"
 * (1 to 63) and "step" (a decimal string like next_batch).
 */
static int check_init_from(const json_t *a, char *why, size_t cap)
{
	static const struct {
		const char *key;
		size_t max;
	} text[] = {
		{"path", CKPT_PATH_MAX}, {"file", CKPT_PATH_MAX}, {"model", CKPT_MODEL_MAX - 1}};
	const json_t *e;
	size_t i;
	uint64_t u;

	if (!json_is_array(a) || json_array_size(a) < 1 || json_array_size(a) > CKPT_SOURCES_MAX)
		return whyf(why, cap, "'init_from' is not a list of 1 to %d checkpoints",
			    CKPT_SOURCES_MAX);
	json_array_foreach(a, i, e)
	{
		if (!json_is_object(e))
			return whyf(why, cap, "'init_from[%zu]' is not an object", i);
		for (size_t k = 0; k < sizeof(text) / sizeof(text[0]); k++)
			if (!ckpt_short_text(json_object_get(e, text[k].key), text[k].max))
				return whyf(why, cap,
					    "'init_from[%zu].%s' is not a string of 1 to %zu "
					    "characters",
					    i, text[k].key, text[k].max);
		if (!dec_str(json_object_get(e, "step"), CKPT_COUNT_MAX, &u))
			return whyf(
				why, cap,
				"'init_from[%zu].step' is not a decimal string from 0 to %" PRIu64,
				i, CKPT_COUNT_MAX);
	}
	return 0;
}

/*
 * The keys of the "hogrec" document that the trainer reads, each checked
 * for its type and range when present (other keys are the writer's own);
 * next_batch and seed go into in.  -1 with the reason in why if one fails.
 */
int ckpt_check_hogrec(const json_t *doc, struct ckpt_info *in, char *why, size_t cap)
{
	static const struct {
		const char *key;
		double max;
	} rates[] = {{"lr", 100}, {"lr_sparse", 100}, {"l2", 10}};
	const json_t *v;

	if (!json_is_object(doc))
		return whyf(why, cap, "is not a JSON object");
	if ((v = json_object_get(doc, "next_batch"))) {
		if (!dec_str(v, CKPT_COUNT_MAX, &in->next_batch))
			return whyf(why, cap,
				    "'next_batch' is not a decimal string from 0 to %" PRIu64,
				    CKPT_COUNT_MAX);
		in->has_next_batch = 1;
	}
	if ((v = json_object_get(doc, "seed"))) {
		if (!dec_str(v, UINT64_MAX, &in->seed))
			return whyf(why, cap, "'seed' is not a decimal string from 0 to 2^64-1");
		in->has_seed = 1;
	}
	if ((v = json_object_get(doc, "batch")) && !num_in(v, 1, 65536, 1))
		return whyf(why, cap, "'batch' is not an integer from 1 to 65536");
	if ((v = json_object_get(doc, "shape")) && check_shape(v, why, cap))
		return -1;
	for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++)
		if ((v = json_object_get(doc, rates[i].key)) && !num_in(v, 0, rates[i].max, 0))
			return whyf(why, cap, "'%s' is not a number from 0 to %g", rates[i].key,
				    rates[i].max);
	if ((v = json_object_get(doc, "metrics")) && check_metrics(v, why, cap))
		return -1;
	if ((v = json_object_get(doc, "init_from")) && check_init_from(v, why, cap))
		return -1;
	return check_early_stop(doc, why, cap);
}

/*
 * The offset in hdr (n bytes) of the crc32's 8 digits just after CRC_KEY,
 * and the number of times CRC_KEY occurs (version 2 wants exactly one).
 */
size_t ckpt_crc_digits(const char *hdr, size_t n, size_t *at)
{
	const size_t k = sizeof(CRC_KEY) - 1;
	size_t count = 0;

	for (const char *p = hdr; (p = memmem(p, n - (size_t)(p - hdr), CRC_KEY, k)) != NULL; p++) {
		*at = (size_t)(p - hdr) + k;
		count++;
	}
	return count;
}

/* Index of the first NaN or infinity of the n floats at p (any alignment), or n. */
uint64_t ckpt_first_nonfinite(const unsigned char *p, uint64_t n)
{
	const uint32_t exp = 0x7f800000u;

	for (uint64_t i = 0; i < n;) {
		uint64_t m = n - i < 4096 ? n - i : 4096;
		unsigned any = 0;
		for (uint64_t k = 0; k < m; k++) { /* a branch-free pass the compiler vectorises */
			uint32_t w;
			memcpy(&w, p + 4 * (i + k), 4);
			any |= (w & exp) == exp;
		}
		if (any)
			for (uint64_t k = 0; k < m; k++) {
				uint32_t w;
				memcpy(&w, p + 4 * (i + k), 4);
				if ((w & exp) == exp)
					return i + k;
			}
		i += m;
	}
	return n;
}

/* "nan" or "inf" / "-inf" for the float at p. */
const char *ckpt_nonfinite_name(const unsigned char *p)
{
	uint32_t w;

	memcpy(&w, p, 4);
	if (w & 0x007fffffu)
		return "nan";
	return w >> 31 ? "-inf" : "inf";
}

/* fsync of a directory without touching the error message (a writer's rollback,
 * retention's deletions: shared so that a reader links no writer). */
void ckpt_sync_dir_quiet(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}
