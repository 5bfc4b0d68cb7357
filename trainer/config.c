/*
 * config.c - the trainer's option table, its INI loader (libinih), the
 * printer and the checks.  See config.h for the file format and contracts.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "common/log.h"
#include "common/parse.h"
#include "models/model.h"
#include "models/optim.h"
#include "trainer/eval.h"
#include "trainer/pretrain.h"

enum opt_type {
	T_INT,    /* int field */
	T_U32,    /* uint32_t field */
	T_U64,    /* uint64_t field */
	T_FLOAT,  /* float field, read as a double */
	T_DOUBLE, /* double field */
	T_BOOL,   /* int field, 0 or 1 */
	T_STRING, /* const char * field owned by the opts (config.h, Ownership) */
	T_ENUM,   /* index into choices, through set_enum/get_enum */
	T_LIST,   /* struct model_config field: hidden[0..n_hidden) */
};

struct opt {
	const char *key;  /* in the file: lr_sparse */
	const char *flag; /* on the command line: lr-sparse (a test checks the pair) */
	enum opt_type type;
	double min, max;            /* inclusive, for numbers and list items; integers <= 1e18 */
	const char *def;            /* the default as a file spells it; NULL: computed or none */
	size_t off;                 /* the field in struct train_opts */
	int required;               /* T_STRING: config_check wants it set */
	const char *const *choices; /* T_ENUM, NULL-terminated */
	void (*set_enum)(struct train_opts *o, int k); /* T_ENUM */
	int (*get_enum)(const struct train_opts *o);   /* T_ENUM */
	int (*valid)(const char *s);                   /* T_STRING: extra check */
	const char *expect;                            /* T_STRING: what it holds */
	const char *arg;                               /* T_STRING: --help's ARG, if not PATH */
	void (*after)(struct train_opts *o);           /* after a successful set */
	const char *help;
};

#define THREADS_MAX 256
#define LINE_SHOWN 256 /* bytes of a line kept for messages */

static const char *const optim_names[] = {"sgd", "adagrad", "adam", NULL};
static const char *const level_names[] = {"error", "warn", "info", "debug", NULL};
static const char *const records_names[] = {"auto", "map", "memory", NULL};

static void set_records(struct train_opts *o, int k)
{
	o->records = (enum train_records)k;
}

static int get_records(const struct train_opts *o)
{
	return (int)o->records;
}

/* Changes the optimizer and its constants, keeping what the user sets. */
static void set_optim(struct train_opts *o, int k)
{
	struct optim keep = o->optim;

	optim_defaults(&o->optim, (enum optim_kind)k);
	o->optim.lr = keep.lr;
	o->optim.lr_sparse = keep.lr_sparse;
	o->optim.l2 = keep.l2;
}

static int get_optim(const struct train_opts *o)
{
	return (int)o->optim.kind;
}

static void set_level(struct train_opts *o, int k)
{
	(void)o;
	log_set_level((enum log_level)k);
}

static int get_level(const struct train_opts *o)
{
	(void)o;
	return (int)log_get_level();
}

static void seed_models_too(struct train_opts *o)
{
	o->mcfg.seed = o->seed;
}

static int model_known(const char *name)
{
	return model_find(name) != NULL;
}

static int metric_known(const char *name)
{
	struct eval_metric m;

	return !strcmp(name, "auto") || !eval_metric_parse(name, &m);
}

#define OFF(field) offsetof(struct train_opts, field)

/* The options, in the order config_print and --help show them. */
static const struct opt opts[] = {
	{"data", "data", T_STRING, 0, 0, NULL, OFF(data), .required = 1, .expect = "a path",
	 .help = "store directory written by bin/ingest (required)"},
	{"model", "model", T_STRING, 0, 0, NULL, OFF(model), .required = 1, .valid = model_known,
	 .expect = "a model name (trainer --help lists them)", .help = "model to train (required)"},
	{"out", "out", T_STRING, 0, 0, NULL, OFF(out), .required = 1, .expect = "a path",
	 .help = "output directory: metrics.jsonl, checkpoints (required)"},
	{"epochs", "epochs", T_INT, 1, 100000, "20", OFF(epochs),
	 .help = "passes over the train split, at most (early stopping ends most runs sooner)"},
	{"early_stop", "early-stop", T_INT, 0, 100000, "2", OFF(early_stop),
	 .help = "patience: stop when the valid metric has not improved for N epochs, restore "
		 "the best epoch's parameters; 0: off (every epoch, the last kept); off under "
		 "follow"},
	{"early_stop_metric", "early-stop-metric", T_STRING, 0, 0, "auto", OFF(early_stop_metric),
	 .valid = metric_known, .expect = "auto or a metric (auc, sampled_auc, recall@20, ...)",
	 .help = "the valid metric early stopping selects on: auto (auc; twotower sampled_auc; "
		 "autorec rmse), gauc, recall@K, ndcg@K, hit@K, mrr@K, loo_hr@10 (rank-metrics)"},
	{"threads", "threads", T_INT, 1, THREADS_MAX, NULL, OFF(threads),
	 .help = "worker threads (default: the number of cores)"},
	{"loaders", "loaders", T_INT, 1, 8, "1", OFF(loaders),
	 .help = "loader threads decoding batches"},
	{"records", "records", T_ENUM, 0, 0, "auto", 0, .choices = records_names,
	 .set_enum = set_records, .get_enum = get_records,
	 .help = "where the loader reads train records: map (the store's memory map, no copy), "
		 "memory (a copy in huge pages, faster), auto (memory when the split takes under "
		 "1/8 of the RAM)"},
	{"batch", "batch", T_U32, 1, 65536, "256", OFF(batch), .help = "minibatch size"},
	{"optim", "optim", T_ENUM, 0, 0, "adam", 0, .choices = optim_names, .set_enum = set_optim,
	 .get_enum = get_optim, .help = "optimizer"},
	{"lr", "lr", T_FLOAT, 0, 100, "0", OFF(optim.lr),
	 .help = "learning rate; 0: adam 0.001, adagrad 0.01, sgd 0.1"},
	{"lr_sparse", "lr-sparse", T_FLOAT, 0, 100, "0", OFF(optim.lr_sparse),
	 .help = "embedding learning rate; 0: the same as lr"},
	{"l2", "l2", T_FLOAT, 0, 10, "0", OFF(optim.l2), .help = "L2 regularisation"},
	{"emb_dim", "emb-dim", T_U32, 1, 4096, "32", OFF(mcfg.emb_dim), .help = "embedding width"},
	{"hidden", "hidden", T_LIST, 1, 65536, "", OFF(mcfg),
	 .help = "hidden widths, the last the output width; empty: the model's"},
	{"seed", "seed", T_U64, 0, 1e18, "1", OFF(seed), .after = seed_models_too,
	 .help = "initialisation and shuffling seed"},
	{"ckpt_every_steps", "ckpt-every-steps", T_U64, 0, 1e15, "0", OFF(ckpt_every_steps),
	 .help = "also checkpoint every N optimizer steps; 0: off"},
	{"ckpt_every_secs", "ckpt-every-secs", T_DOUBLE, 0, 1e9, "0", OFF(ckpt_every_secs),
	 .help = "also checkpoint every T seconds; 0: off"},
	{"keep", "keep", T_INT, 1, 100000, "3", OFF(keep),
	 .help = "checkpoints kept in out (the newest)"},
	{"resume", "resume", T_BOOL, 0, 1, "yes", OFF(resume),
	 .help = "continue from out's latest checkpoint if any"},
	{"init_from", "init-from", T_STRING, 0, 0, NULL, OFF(init_from),
	 .expect = "checkpoint paths separated by commas", .arg = "CKPT[,CKPT...]",
	 .help = "a fresh run starts from these trained checkpoints (files, or run directories' "
		 "latest), e.g. neumf from a gmf and an ncf run; out's run resumes only if it "
		 "started from the same"},
	{"rank_metrics", "rank-metrics", T_BOOL, 0, 1, "no", OFF(rank_metrics),
	 .help = "also rank every item for each valid/test user: recall, ndcg, hit, mrr, coverage "
		 "at 10/20/50/100 beside the most popular items (users x items scores)"},
	{"rank_exclude", "rank-exclude", T_BOOL, 0, 1, "yes", OFF(rank_exclude),
	 .help = "rank-metrics: leave out the items each user has in train"},
	{"rank_users", "rank-users", T_U32, 0, 1u << 30, "0", OFF(rank_users),
	 .help = "rank-metrics: rank N users of each split, evenly spaced by id (0: all); "
		 "models without user vectors cost N x items forward rows"},
	{"follow", "follow", T_BOOL, 0, 1, "no", OFF(follow),
	 .help = "after the epochs, wait for a new store at data and train on its new records"},
	{"follow_poll", "follow-poll", T_DOUBLE, 0.01, 86400, "5", OFF(follow_poll),
	 .help = "follow: seconds between checks of the store"},
	{"progress", "progress", T_BOOL, 0, 1, "yes", OFF(progress),
	 .help = "progress bar on stderr if it is a terminal"},
	{"log_level", "log-level", T_ENUM, 0, 0, "info", 0, .choices = level_names,
	 .set_enum = set_level, .get_enum = get_level, .help = "messages logged on stderr"},
};
#define N_OPTS (sizeof(opts) / sizeof(opts[0]))

typedef const char *cstr; /* a T_STRING field, for FIELD and CFIELD */
#define FIELD(o, d, T) ((T *)(void *)((char *)(o) + (d)->off))
#define CFIELD(o, d, T) ((const T *)(const void *)((const char *)(o) + (d)->off))

/* Model options (models/model.h) follow the table's rows in the option
 * numbering: index N_OPTS + k is model_option_at(k). */
static size_t model_option_count(void)
{
	size_t n = 0;

	while (model_option_at(n))
		n++;
	return n;
}

size_t config_option_count(void)
{
	return N_OPTS + model_option_count();
}

const char *config_option_key(size_t i)
{
	HR_ASSERT(i < config_option_count());
	return i < N_OPTS ? opts[i].key : model_option_at(i - N_OPTS)->name;
}

const char *config_option_flag(size_t i)
{
	static char flags[MODEL_MAX_OPTIONS * 8][32];
	const char *key;
	size_t k;

	HR_ASSERT(i < config_option_count());
	if (i < N_OPTS)
		return opts[i].flag;
	k = i - N_OPTS;
	HR_ASSERT(k < sizeof(flags) / sizeof(flags[0]));
	key = model_option_at(k)->name;
	HR_ASSERT(strlen(key) < sizeof(flags[k]));
	for (size_t j = 0; j <= strlen(key); j++)
		flags[k][j] = key[j] == '_' ? '-' : key[j];
	return flags[k];
}

/* ---- values as text ---------------------------------------------------- */

/* What a valid value of d looks like: "an integer between 1 and 8". */
static void describe(const struct opt *d, char *buf, size_t size)
{
	size_t n;

	switch (d->type) {
	case T_INT:
	case T_U32:
	case T_U64: snprintf(buf, size, "an integer between %.0f and %.0f", d->min, d->max); break;
	case T_FLOAT:
	case T_DOUBLE: snprintf(buf, size, "a number between %g and %g", d->min, d->max); break;
	case T_BOOL: snprintf(buf, size, "yes or no"); break;
	case T_ENUM:
		n = (size_t)snprintf(buf, size, "one of");
		for (int k = 0; d->choices[k] && n < size; k++)
			n += (size_t)snprintf(buf + n, size - n, "%s %s", k ? "," : "",
					      d->choices[k]);
		break;
	case T_STRING: snprintf(buf, size, "%s", d->expect); break;
	case T_LIST:
		snprintf(buf, size, "up to %d integers between %.0f and %.0f, comma separated",
			 MODEL_MAX_HIDDEN, d->min, d->max);
		break;
	}
}

/* The shortest %g text of x that reads back as the same float (or double). */
static void format_real(double x, int is_float, char *buf, size_t size)
{
	for (int p = 6; p <= 17; p++) {
		snprintf(buf, size, "%.*g", p, x);
		double y = strtod(buf, NULL);
		if (is_float ? (float)y == (float)x : y == x)
			return;
	}
}

/* o's value of d as the file spells it; 0, or -1 for an unset string. */
static int format_value(const struct train_opts *o, const struct opt *d, char *buf, size_t size)
{
	const struct model_config *c;
	const char *s;
	size_t n = 0;

	buf[0] = '\0';
	switch (d->type) {
	case T_INT: snprintf(buf, size, "%d", *CFIELD(o, d, int)); break;
	case T_U32: snprintf(buf, size, "%lu", (unsigned long)*CFIELD(o, d, uint32_t)); break;
	case T_U64: snprintf(buf, size, "%llu", (unsigned long long)*CFIELD(o, d, uint64_t)); break;
	case T_FLOAT: format_real((double)*CFIELD(o, d, float), 1, buf, size); break;
	case T_DOUBLE: format_real(*CFIELD(o, d, double), 0, buf, size); break;
	case T_BOOL: snprintf(buf, size, "%s", *CFIELD(o, d, int) ? "yes" : "no"); break;
	case T_ENUM: {
		int k = d->get_enum(o), nc = 0;
		while (d->choices[nc])
			nc++;
		snprintf(buf, size, "%s", k >= 0 && k < nc ? d->choices[k] : "?");
		break;
	}
	case T_STRING:
		s = *CFIELD(o, d, cstr);
		if (!s)
			return -1;
		snprintf(buf, size, "%s", s);
		break;
	case T_LIST:
		c = CFIELD(o, d, struct model_config);
		for (int k = 0; k < c->n_hidden && k < MODEL_MAX_HIDDEN && n < size; k++)
			n += (size_t)snprintf(buf + n, size - n, "%s%lu", k ? "," : "",
					      (unsigned long)c->hidden[k]);
		break;
	}
	return 0;
}

/* ---- parsing one value ------------------------------------------------- */

/*
 * A string config_print can write and config_load read back the same:
 * not empty, no control characters, no surrounding spaces (inih strips
 * them), no ';' first or after a space (inih starts an inline comment).
 */
static int string_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || s[0] == ';' || isspace((unsigned char)s[0]) ||
	    isspace((unsigned char)s[n - 1]))
		return 0;
	for (size_t k = 0; k < n; k++)
		if (iscntrl((unsigned char)s[k]) ||
		    (k > 0 && s[k] == ';' && isspace((unsigned char)s[k - 1])))
			return 0;
	return 1;
}

/* "256,64" (spaces around items allowed); "" is the empty list. */
static int parse_list(const char *s, const struct opt *d, struct model_config *c)
{
	uint32_t w[MODEL_MAX_HIDDEN];
	int n = 0;

	while (isspace((unsigned char)*s))
		s++;
	while (*s) {
		char item[24];
		size_t len = strcspn(s, ",");
		uint64_t v;

		while (len && isspace((unsigned char)s[len - 1]))
			len--;
		if (n == MODEL_MAX_HIDDEN || len == 0 || len >= sizeof(item))
			return -1;
		memcpy(item, s, len);
		item[len] = '\0';
		if (parse_u64_quiet(item, &v) || v < (uint64_t)d->min || v > (uint64_t)d->max)
			return -1;
		w[n++] = (uint32_t)v;
		s += strcspn(s, ",");
		if (*s == ',') {
			s++;
			while (isspace((unsigned char)*s))
				s++;
			if (!*s)
				return -1; /* trailing comma */
		}
	}
	memcpy(c->hidden, w, (size_t)n * sizeof(w[0]));
	c->n_hidden = n;
	return 0;
}

/* "WHERE: 'key' must be WANT, not 'text'"; WANT from the table if NULL. */
static int bad_value(const struct opt *d, const char *text, const char *where, const char *want)
{
	char buf[160];

	if (!want) {
		describe(d, buf, sizeof(buf));
		want = buf;
	}
	if (where[0] == '-') /* a flag names the option already */
		return hr_error(HR_EINVAL, "%s: must be %s, not '%s'", where, want, text);
	return hr_error(HR_EINVAL, "%s: '%s' must be %s, not '%s'", where, d->key, want, text);
}

/* Parses text for d and stores it into o; o unchanged on failure. */
static int apply(struct train_opts *o, const struct opt *d, const char *text, const char *where)
{
	uint64_t u = 0;
	double x = 0;
	char *copy;
	int k = 0;

	switch (d->type) {
	case T_INT:
	case T_U32:
	case T_U64:
		if (parse_u64_quiet(text, &u) || u < (uint64_t)d->min || u > (uint64_t)d->max)
			return bad_value(d, text, where, NULL);
		if (d->type == T_INT)
			*FIELD(o, d, int) = (int)u;
		else if (d->type == T_U32)
			*FIELD(o, d, uint32_t) = (uint32_t)u;
		else
			*FIELD(o, d, uint64_t) = u;
		break;
	case T_FLOAT:
	case T_DOUBLE:
		if (parse_f64_quiet(text, &x) || !(x >= d->min && x <= d->max))
			return bad_value(d, text, where, NULL);
		if (d->type == T_FLOAT)
			*FIELD(o, d, float) = (float)x;
		else
			*FIELD(o, d, double) = x;
		break;
	case T_BOOL:
		k = parse_bool(text);
		if (k < 0)
			return bad_value(d, text, where, NULL);
		*FIELD(o, d, int) = k;
		break;
	case T_ENUM:
		while (d->choices[k] && strcmp(d->choices[k], text))
			k++;
		if (!d->choices[k])
			return bad_value(d, text, where, NULL);
		d->set_enum(o, k);
		break;
	case T_STRING:
		if (!string_ok(text))
			return bad_value(d, text, where,
					 "non-empty, without control characters, "
					 "surrounding spaces or ' ;'");
		if (d->valid && !d->valid(text)) /* "unknown model 'x'", as before the table */
			return hr_error(HR_EINVAL,
					"%s: unknown %s '%s' (trainer --help lists them)", where,
					d->key, text);
		copy = strdup(text);
		if (!copy)
			return hr_error(HR_ENOMEM, "%s: out of memory", where);
		free((char *)*FIELD(o, d, cstr));
		*FIELD(o, d, cstr) = copy;
		break;
	case T_LIST:
		if (parse_list(text, d, FIELD(o, d, struct model_config)))
			return bad_value(d, text, where, NULL);
		break;
	}
	if (d->after)
		d->after(o);
	return 0;
}

static const struct opt *find_option(const char *name, int flags_too)
{
	for (size_t i = 0; i < N_OPTS; i++)
		if (!strcmp(opts[i].key, name) || (flags_too && !strcmp(opts[i].flag, name)))
			return &opts[i];
	return NULL;
}

/* Sets model option mo (of some model; which model has it is checked by
 * config_check once the model is known). */
static int apply_model_option(struct train_opts *o, const struct model_option *mo, const char *text,
			      const char *where)
{
	double v;

	if (model_option_parse(mo, text, &v)) {
		if (where[0] == '-')
			return hr_error(HR_EINVAL, "%s: %s", where, hr_errmsg());
		return hr_error(HR_EINVAL, "%s: '%s' %s", where, mo->name, hr_errmsg());
	}
	return model_config_set(&o->mcfg, mo->name, v);
}

int config_apply_option(struct train_opts *o, const char *name, const char *value,
			const char *where)
{
	const struct opt *d = find_option(name, 1);
	const struct model_option *mo;

	if (d)
		return apply(o, d, value, where);
	mo = model_option_any(name);
	if (mo)
		return apply_model_option(o, mo, value, where);
	return hr_error(HR_EINVAL, "%s: unknown option '%s'", where, name);
}

/* ---- defaults, release ------------------------------------------------- */

void config_defaults(struct train_opts *o)
{
	train_opts_defaults(o);
	o->optim.lr = 0.0f;        /* the optimizer's, see config_finish */
	o->optim.lr_sparse = 0.0f; /* lr's */
	o->mcfg.emb_dim = 32;      /* what model_create makes of 0 */
	if (o->threads > THREADS_MAX)
		o->threads = THREADS_MAX;
}

void config_release(struct train_opts *o)
{
	for (size_t i = 0; i < N_OPTS; i++)
		if (opts[i].type == T_STRING) {
			free((char *)*FIELD(o, &opts[i], cstr));
			*FIELD(o, &opts[i], cstr) = NULL;
		}
}

/* ---- the INI file ------------------------------------------------------ */

struct ini_state {
	struct train_opts *o;
	const char *path;
	FILE *f;
	int line;                              /* the line inih is on, from 1 */
	int rc;                                /* the first error (message set), 0 while none */
	int seen[N_OPTS];                      /* the line that set each option, 0 if none */
	int seen_model[MODEL_MAX_OPTIONS * 8]; /* the same for model options */
	char text[LINE_SHOWN];                 /* that line without its end, for messages */
	char *where;                           /* "path:line" for apply's messages */
	size_t where_size;
};

static int line_error(struct ini_state *st, int code, const char *what)
{
	st->rc = hr_error(code, "%s:%d: %s", st->path, st->line, what);
	return st->rc;
}

/* The closest key within two edits, or NULL: for "did you mean". */
static const char *closest_key(const char *key)
{
	const char *best = NULL;
	size_t n = strlen(key), best_d = 3;
	size_t row[40];

	if (n >= sizeof(row) / sizeof(row[0]))
		return NULL;
	for (size_t i = 0; i < N_OPTS; i++) {
		const char *c = opts[i].key;
		size_t m = strlen(c);
		if (m >= sizeof(row) / sizeof(row[0]))
			continue;
		/* Levenshtein distance, one row: row[j] = d(key[0..a), c[0..j)). */
		for (size_t j = 0; j <= m; j++)
			row[j] = j;
		for (size_t a = 1; a <= n; a++) {
			size_t diag = row[0];
			row[0] = a;
			for (size_t j = 1; j <= m; j++) {
				size_t up = row[j], v = diag + (key[a - 1] != c[j - 1]);
				if (up + 1 < v)
					v = up + 1;
				if (row[j - 1] + 1 < v)
					v = row[j - 1] + 1;
				diag = up;
				row[j] = v;
			}
		}
		if (row[m] < best_d && 2 * row[m] <= n) {
			best_d = row[m];
			best = c;
		}
	}
	return best;
}

/*
 * What libinih cannot report: indented lines (it reads them as the
 * continuation of the previous value), sections other than [trainer], and
 * lines that are neither, with the text; checked before inih sees a line
 * so that parsing stops there.
 */
static int check_line(struct ini_state *st)
{
	char what[LINE_SHOWN + 96];
	const char *s = st->text, *p = s, *end;
	size_t n;

	while (isspace((unsigned char)*p))
		p++;
	if (*p == '\0' || *p == ';' || *p == '#')
		return 0;
	if (p != s) {
		snprintf(what, sizeof(what),
			 "indented line '%s' (it would continue the previous value)", s);
		return line_error(st, HR_EINVAL, what);
	}
	if (*p == '[') {
		end = strchr(p, ']');
		if (!end)
			snprintf(what, sizeof(what), "expected '[%s]', not '%s'", CONFIG_SECTION,
				 s);
		else if (((n = strlen(CONFIG_SECTION)) == (size_t)(end - p - 1) &&
			  !strncmp(p + 1, CONFIG_SECTION, n)) ||
			 ((n = strlen(CONFIG_MODEL_SECTION)) == (size_t)(end - p - 1) &&
			  !strncmp(p + 1, CONFIG_MODEL_SECTION, n)))
			return 0;
		else
			snprintf(what, sizeof(what),
				 "unknown section %.*s (the options go in [%s], the model's "
				 "in [%s])",
				 (int)(end - p + 1), p, CONFIG_SECTION, CONFIG_MODEL_SECTION);
		return line_error(st, HR_EINVAL, what);
	}
	if (!strpbrk(p, "=:")) {
		snprintf(what, sizeof(what), "expected 'key = value' or '[section]', not '%s'", s);
		return line_error(st, HR_EINVAL, what);
	}
	return 0;
}

/* libinih's fgets: counts lines, keeps the text, stops at the first error. */
static char *read_line(char *buf, int size, void *stream)
{
	struct ini_state *st = stream;
	size_t n;

	if (st->rc)
		return NULL;
	if (!fgets(buf, size, st->f)) {
		if (ferror(st->f))
			st->rc =
				hr_error(HR_EIO, "cannot read '%s': %s", st->path, strerror(errno));
		return NULL;
	}
	st->line++;
	n = strlen(buf);
	if (n == 0 || buf[n - 1] != '\n') {
		int c;
		if (n + 1 == (size_t)size && (c = getc(st->f)) != EOF) {
			ungetc(c, st->f);
			char what[64];
			snprintf(what, sizeof(what), "line longer than %d characters", size - 2);
			line_error(st, HR_EINVAL, what);
			return NULL;
		}
		if (!feof(st->f) && n + 1 < (size_t)size) {
			line_error(st, HR_EINVAL, "NUL byte in the line");
			return NULL;
		}
	}
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	const char *s = buf;
	if (st->line == 1 && n >= 3 && !memcmp(s, "\xEF\xBB\xBF", 3)) { /* inih skips a BOM */
		s += 3;
		n -= 3;
	}
	snprintf(st->text, sizeof(st->text), "%.*s", (int)n, s);
	return check_line(st) ? NULL : buf;
}

/* A key of [model]: one of some model's options (model.h). */
static int on_model_key(struct ini_state *st, const char *key, const char *value)
{
	char what[LINE_SHOWN + 128];
	const struct model_option *mo = NULL;
	size_t k = 0;

	while ((mo = model_option_at(k)) && strcmp(mo->name, key))
		k++;
	if (!mo) {
		snprintf(what, sizeof(what),
			 "unknown key '%s' in [%s] (trainer --help lists each model's options)",
			 key, CONFIG_MODEL_SECTION);
		return line_error(st, HR_EINVAL, what), 0;
	}
	if (st->seen_model[k]) {
		snprintf(what, sizeof(what), "duplicate key '%s' (first set on line %d)", key,
			 st->seen_model[k]);
		return line_error(st, HR_EINVAL, what), 0;
	}
	st->seen_model[k] = st->line;
	snprintf(st->where, st->where_size, "%s:%d", st->path, st->line);
	st->rc = apply_model_option(st->o, mo, value, st->where);
	return st->rc == 0;
}

static int on_key(void *user, const char *section, const char *key, const char *value)
{
	struct ini_state *st = user;
	char what[LINE_SHOWN + 128];
	const struct opt *d;

	if (st->rc)
		return 0;
	if (!strcmp(section, CONFIG_MODEL_SECTION))
		return on_model_key(st, key, value);
	if (strcmp(section, CONFIG_SECTION)) { /* check_line let only these two through */
		snprintf(what, sizeof(what), "'%s' before any section (start with [%s])", key,
			 CONFIG_SECTION);
		line_error(st, HR_EINVAL, what);
		return 0;
	}
	d = find_option(key, 0);
	if (!d) {
		const char *near = closest_key(key);
		snprintf(what, sizeof(what), "unknown key '%s' in [%s]%s%s%s", key, section,
			 near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
		line_error(st, HR_EINVAL, what);
		return 0;
	}
	if (st->seen[d - opts]) {
		snprintf(what, sizeof(what), "duplicate key '%s' (first set on line %d)", key,
			 st->seen[d - opts]);
		line_error(st, HR_EINVAL, what);
		return 0;
	}
	st->seen[d - opts] = st->line;
	snprintf(st->where, st->where_size, "%s:%d", st->path, st->line);
	st->rc = apply(st->o, d, value, st->where);
	return st->rc == 0;
}

int config_load(struct train_opts *o, const char *path)
{
	struct ini_state *st;
	int rc;

	st = calloc(1, sizeof(*st));
	if (!st)
		return hr_error(HR_ENOMEM, "out of memory reading '%s'", path);
	st->o = o;
	st->path = path;
	st->where_size = strlen(path) + 16; /* ":" and an int */
	st->where = malloc(st->where_size);
	if (!st->where) {
		free(st);
		return hr_error(HR_ENOMEM, "out of memory reading '%s'", path);
	}
	st->f = fopen(path, "r");
	if (!st->f) {
		rc = hr_error(errno == ENOENT ? HR_ENOENT : HR_EIO, "cannot open '%s': %s", path,
			      strerror(errno));
		free(st->where);
		free(st);
		return rc;
	}
	rc = ini_parse_stream(read_line, st, on_key, st);
	if (st->rc)
		rc = st->rc;
	else if (rc == -2)
		rc = hr_error(HR_ENOMEM, "out of memory reading '%s'", path);
	else if (rc > 0) /* a line inih refused that check_line let through */
		rc = hr_error(HR_EINVAL, "%s:%d: syntax error", path, rc);
	else if (rc < 0)
		rc = hr_error(HR_EIO, "cannot read '%s'", path);
	fclose(st->f);
	free(st->where);
	free(st);
	return rc;
}

/* ---- checks and output ------------------------------------------------- */

/* 0 if o's value of d is within d's range. */
static int in_range(const struct train_opts *o, const struct opt *d)
{
	const struct model_config *c;
	const char *s;
	double x = 0;
	int k;

	switch (d->type) {
	case T_INT: x = *CFIELD(o, d, int); break;
	case T_U32: x = *CFIELD(o, d, uint32_t); break;
	case T_U64:
		return *CFIELD(o, d, uint64_t) >= (uint64_t)d->min &&
				       *CFIELD(o, d, uint64_t) <= (uint64_t)d->max ?
			       0 :
			       -1;
	case T_FLOAT: x = *CFIELD(o, d, float); break;
	case T_DOUBLE: x = *CFIELD(o, d, double); break;
	case T_BOOL: k = *CFIELD(o, d, int); return k == 0 || k == 1 ? 0 : -1;
	case T_ENUM:
		k = d->get_enum(o);
		for (int n = 0; d->choices[n]; n++)
			if (n == k)
				return 0;
		return -1;
	case T_STRING:
		s = *CFIELD(o, d, cstr);
		return !s || (string_ok(s) && (!d->valid || d->valid(s))) ? 0 : -1;
	case T_LIST:
		c = CFIELD(o, d, struct model_config);
		if (c->n_hidden < 0 || c->n_hidden > MODEL_MAX_HIDDEN)
			return -1;
		for (k = 0; k < c->n_hidden; k++)
			if (c->hidden[k] < d->min || c->hidden[k] > d->max)
				return -1;
		return 0;
	}
	return x >= d->min && x <= d->max ? 0 : -1;
}

/* init_from: a list of paths, for a model that can start from checkpoints. */
static int check_init_from(const struct train_opts *o)
{
	struct pretrain_list l;
	char can[128];
	int rc;

	if (!o->init_from)
		return 0;
	rc = pretrain_list_parse(&l, o->init_from);
	if (rc)
		return rc;
	pretrain_list_release(&l);
	if (o->model && !model_find(o->model)->init_from) {
		model_init_from_list(can, sizeof(can));
		return hr_error(
			HR_EINVAL,
			"'init_from': model '%s' cannot start from other models' checkpoints "
			"(%s can)",
			o->model, can[0] ? can : "no model");
	}
	return 0;
}

int config_check(const struct train_opts *o)
{
	char value[LINE_SHOWN];

	for (size_t i = 0; i < N_OPTS; i++) {
		const struct opt *d = &opts[i];
		if (format_value(o, d, value, sizeof(value)) < 0) {
			/* --predict takes the model from the checkpoint */
			if (d->required && !(o->predict && d->off == OFF(model)))
				return hr_error(HR_EINVAL, "'%s' is not set (--%s, or %s in [%s])",
						d->key, d->flag, d->key, CONFIG_SECTION);
			continue;
		}
		if (in_range(o, d)) {
			char want[160];
			describe(d, want, sizeof(want));
			return hr_error(HR_EINVAL, "'%s' must be %s, not '%s'", d->key, want,
					value);
		}
	}
	if (o->model) {
		double values[MODEL_MAX_OPTIONS];
		if (model_options_resolve(model_find(o->model), &o->mcfg, values))
			return HR_EINVAL; /* "model 'ncf' has no option 'margin' (...)" */
	}
	if (!strcmp(o->data, o->out))
		return hr_error(HR_EINVAL, "'data' and 'out' are the same directory '%s'", o->data);
	if (o->predict && strcmp(o->predict, "train") && strcmp(o->predict, "valid") &&
	    strcmp(o->predict, "test"))
		return hr_error(HR_EINVAL, "--predict: '%s' is not train, valid or test",
				o->predict);
	return o->predict ? 0 : check_init_from(o); /* --predict trains nothing */
}

int config_finish(struct train_opts *o)
{
	int rc = config_check(o);

	if (rc)
		return rc;
	if (o->optim.lr == 0.0f) {
		struct optim def;
		optim_defaults(&def, o->optim.kind);
		o->optim.lr = def.lr;
	}
	if (o->optim.lr_sparse == 0.0f)
		o->optim.lr_sparse = o->optim.lr;
	if (o->mcfg.n_hidden == 0 && o->model) /* as model_create would */
		for (const uint32_t *h = model_find(o->model)->default_hidden;
		     *h && o->mcfg.n_hidden < MODEL_MAX_HIDDEN; h++)
			o->mcfg.hidden[o->mcfg.n_hidden++] = *h;
	return 0;
}

/* The [model] section: every option of o's model with its value. */
static void print_model_options(FILE *out, const struct train_opts *o)
{
	const struct model_ops *ops = o->model ? model_find(o->model) : NULL;
	double values[MODEL_MAX_OPTIONS];
	char value[64], def[64], want[160];

	if (!ops || !ops->n_options || model_options_resolve(ops, &o->mcfg, values))
		return;
	fprintf(out, "\n; the options of model '%s'\n[%s]\n", ops->name, CONFIG_MODEL_SECTION);
	for (int i = 0; i < ops->n_options; i++) {
		const struct model_option *mo = &ops->options[i];
		model_option_describe(mo, want, sizeof(want));
		model_option_format(mo, mo->def, def, sizeof(def));
		model_option_format(mo, values[i], value, sizeof(value));
		fprintf(out, "\n; %s\n; %s; default %s\n%s = %s\n", mo->help, want, def, mo->name,
			value);
	}
}

void config_print(FILE *out, const struct train_opts *o)
{
	char value[LINE_SHOWN], want[160];

	fprintf(out,
		"; bin/trainer configuration: trainer --config FILE (deploy/trainer.ini)\n"
		"[%s]\n",
		CONFIG_SECTION);
	for (size_t i = 0; i < N_OPTS; i++) {
		const struct opt *d = &opts[i];
		describe(d, want, sizeof(want));
		fprintf(out, "\n; %s\n; %s", d->help, want);
		if (d->def)
			fprintf(out, "; default %s", d->def[0] ? d->def : "empty");
		if (format_value(o, d, value, sizeof(value)) < 0)
			fprintf(out, "\n;%s =\n", d->key); /* unset */
		else
			fprintf(out, "\n%s =%s%s\n", d->key, value[0] ? " " : "", value);
	}
	print_model_options(out, o);
}

/* "  --num-neg N  help (default 4; models neumf, twotower)" per model option. */
void config_usage_models(FILE *out)
{
	const struct model_option *mo;

	if (!model_option_at(0))
		return;
	fprintf(out,
		"\nmodel options (also keys of a config file's [%s] section; a model refuses "
		"another's):\n",
		CONFIG_MODEL_SECTION);
	for (size_t k = 0; (mo = model_option_at(k)); k++) {
		char left[64], def[64];
		const char *arg = mo->type == MOPT_INT   ? "N" :
				  mo->type == MOPT_FLOAT ? "X" :
				  mo->type == MOPT_BOOL  ? "yes|no" :
							   "NAME";
		snprintf(left, sizeof(left), "--%s %s", config_option_flag(N_OPTS + k), arg);
		fprintf(out, "  %-22s %s", left, mo->help);
		if (mo->type == MOPT_ENUM) {
			fputs(": ", out);
			for (int j = 0; mo->choices[j]; j++)
				fprintf(out, "%s%s", j ? ", " : "", mo->choices[j]);
		}
		fputs(" (default:", out);
		for (size_t m = 0, first = 1; model_at(m); m++) {
			int i = model_option_index(model_at(m), mo->name);
			if (i < 0)
				continue;
			model_option_format(mo, model_at(m)->options[i].def, def, sizeof(def));
			fprintf(out, "%s %s %s", first ? "" : ",", model_at(m)->name, def);
			first = 0;
		}
		fputs(")\n", out);
	}
}

void config_usage(FILE *out)
{
	for (size_t i = 0; i < N_OPTS; i++) {
		const struct opt *d = &opts[i];
		char left[64];
		const char *arg = "N";

		switch (d->type) {
		case T_INT:
		case T_U32:
		case T_U64: arg = "N"; break;
		case T_FLOAT:
		case T_DOUBLE: arg = "X"; break;
		case T_BOOL: arg = "yes|no"; break;
		case T_STRING: arg = d->arg ? d->arg : d->valid ? "NAME" : "PATH"; break;
		case T_LIST: arg = "A,B,..."; break;
		case T_ENUM: arg = "NAME"; break;
		}
		snprintf(left, sizeof(left), "--%s %s", d->flag, arg);
		fprintf(out, "  %-22s %s", left, d->help);
		if (d->type == T_ENUM) {
			fputs(": ", out);
			for (int k = 0; d->choices[k]; k++)
				fprintf(out, "%s%s", k ? ", " : "", d->choices[k]);
		}
		if (d->def && d->def[0])
			fprintf(out, " (default %s)", d->def);
		fputc('\n', out);
	}
}
