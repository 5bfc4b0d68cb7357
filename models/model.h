/*
 * model.h - the one interface every model implements.
 *
 * A model is a struct model_ops (its functions) plus a struct model (its
 * parameters and configuration).  Adding a model is one file defining a
 * `const struct model_ops model_<name>` and one line in model.c's table.
 *
 * Training a batch (per worker, see trainer/):
 *   ops->forward(m, ws, b, logits, 1)          logits (B)
 *   dlogits = d loss / d logits                  (nn BCE backward)
 *   zero grad (m->params.dense_n floats); clear the sparse grads
 *   ops->backward(m, ws, b, dlogits, grad, sg)  accumulates into grad and sg
 *   optim_dense_update / optim_sparse_update    Hogwild updates
 * ws is the worker's scratch of ops->workspace_floats(m, B) floats: forward
 * keeps there what backward needs.  forward and backward read the shared
 * weights without locks and never write them; they are callable from many
 * threads at once with distinct ws, grad and sg.
 */
#ifndef HR_MODEL_H
#define HR_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "batch.h"
#include "common/rng.h"
#include "optim.h"
#include "params.h"
#include "store/info.h"

#define MODEL_MAX_HIDDEN 8
#define MODEL_MAX_OPTIONS 24

/*
 * A model's own options (num_neg, sampler, loss, ...): one row each in the
 * model's table (model_ops.options).  bin/trainer's --help, its flags and
 * the [model] section of its config file, --check-config, the checkpoint
 * metadata and the resume check all read the tables, and a test holds
 * docs/models.md to them.  An option name means the same in every model
 * that has it (same type and choices; a test checks), so that a flag can
 * be parsed before the model is known.  Values are doubles: an integer, a
 * number, 0/1, or an index into choices.
 */
enum model_opt_type { MOPT_INT, MOPT_FLOAT, MOPT_BOOL, MOPT_ENUM };

struct model_option {
	const char *name; /* [model] key; the flag is --name with '-' for '_' */
	enum model_opt_type type;
	double min, max;            /* MOPT_INT, MOPT_FLOAT: inclusive */
	double def;                 /* the default (MOPT_ENUM: index into choices) */
	const char *const *choices; /* MOPT_ENUM, NULL-terminated */
	const char *help;           /* one line */
};

/* An option given by name (on the command line, in a config file or a
 * checkpoint); name points into some model's table. */
struct model_opt_value {
	const char *name;
	double v;
};

struct model_config {
	uint32_t emb_dim;                  /* embedding width (default 32) */
	uint32_t hidden[MODEL_MAX_HIDDEN]; /* MLP / tower widths; the last is the output width */
	int n_hidden;
	uint64_t seed; /* weight initialisation */
	/* Model options given; the rest take their defaults (model_create). */
	struct model_opt_value opt[MODEL_MAX_OPTIONS];
	int n_opt;
};

/* What a model reads from a store; checked against the store before training. */
enum model_needs {
	NEEDS_DEMOGRAPHICS = 1 << 0, /* gender, age, occupation, zip */
	NEEDS_HISTORY = 1 << 1,
	NEEDS_DENSE = 1 << 2,
	NEEDS_GENRES = 1 << 3,
};

/* What evaluation compares a model's scores (forward with train = 0) with. */
enum model_target {
	TARGET_LABEL,  /* logits against the 0/1 label: AUC, logloss, gAUC */
	TARGET_RATING, /* predicted ratings against the rating: RMSE */
};

/* What one training sample is.  Evaluation always scores records. */
enum model_view {
	VIEW_RECORDS,   /* a record of the train split (the default) */
	VIEW_USER_ROWS, /* a user's row of the train rating matrix: b->user holds row ids */
	VIEW_ITEM_ROWS, /* an item's row (column of users): b->item holds row ids */
	VIEW_POSITIVES, /* a train record with label 1 (in-batch softmax models) */
};

/*
 * What a worker hands a model's training pass besides the batch.  Owned by
 * the worker; the model may use rng and the scratch freely.
 */
struct model_ctx {
	struct rng rng;    /* reseeded for every batch from (seed, worker, step): sampled
			  * negatives, dropout; one worker and one seed reproduce a run */
	uint64_t step;     /* the optimizer step this batch will be (from 1) */
	int worker;        /* 0 .. threads-1 */
	float *logits;     /* (B * model_train_factor()) scratch for the default loss */
	float *dlogits;    /* (the same) */
	struct batch *neg; /* (B * model_train_factor() rows) the default loss's positives
			    * and sampled negatives when the factor is > 1, else NULL */
};

#define MODEL_MAX_LOSSES 4

/* What a model reads beyond the records; the trainer loads it once (model_data_load). */
enum model_wants {
	WANTS_RATINGS = 1 << 0,   /* every train record's (user, item, rating, label), by row */
	WANTS_NEGATIVES = 1 << 1, /* a negative sampler over the train positives */
	WANTS_ITEMS = 1 << 2,     /* the items table by id: genres, dense features */
};

struct interactions;
struct sampler;
struct store_items;

/*
 * Shared, read-only data a model reads while training and scoring (any
 * number of threads): loaded by model_data_load() before training starts,
 * attached as m->data, released after the model stops being used.
 */
struct model_data {
	struct interactions *train; /* WANTS_RATINGS: every train record */
	struct interactions *pos;   /* WANTS_NEGATIVES: the train positives */
	struct sampler *sampler;    /* WANTS_NEGATIVES: over pos */
	struct store_items *items;  /* WANTS_ITEMS: side information by item id */
	float rating_mean;          /* over the train records (WANTS_RATINGS) */
	float rating_min, rating_max;
};

struct model;

#define MODEL_MAX_SOURCES 8

/*
 * A trained model whose tensors initialise another (pre-training,
 * model_ops.init_from; bin/trainer --init-from reads them from a
 * checkpoint).  The tensors are the source model's own, by the names its
 * model file gives them (docs/FORMAT.md lists them).
 */
struct model_source {
	const char *model; /* the source's model name, e.g. "gmf" */
	const char *where; /* what names it in messages: its checkpoint's path */
	/* Its tensor `name`: (*rows, *cols) floats, row-major, read-only, valid
	 * during the init_from call; NULL (rows and cols untouched) without one. */
	const float *(*tensor)(const void *ctx, const char *name, uint64_t *rows, uint64_t *cols);
	const void *ctx;
};

struct model_ops {
	const char *name;               /* lowercase, as on the command line */
	const char *summary;            /* one line for --help */
	unsigned needs;                 /* enum model_needs bits */
	const uint32_t *default_hidden; /* zero-terminated */
	/* Most Hogwild workers that help it (0: no limit), and why: a model
	 * whose every batch updates nearly all its parameters (AutoRec) loses
	 * accuracy to workers overwriting each other's updates.  With a cap of
	 * one, the trainer lends the other threads to the optimizer step
	 * (common/team.h); the model's calls still run on one thread. */
	int max_workers;
	const char *max_workers_why;
	const struct model_option *options; /* the model's own options, or NULL */
	int n_options;
	/* Names of the loss terms train_forward reports, NULL-terminated; the
	 * first is the main one ("train_loss"), e.g. {"train_loss", "aux_loss",
	 * NULL}.  NULL: {"train_loss", NULL}. */
	const char *const *losses;
	enum model_target target;
	/* The valid metric early stopping selects on by default
	 * (trainer/eval.h, eval_metric_parse): NULL is "auc", or "rmse" for a
	 * rating model; a model trained on positives only, whose label AUC says
	 * little, names another ("sampled_auc"). */
	const char *select_metric;
	/* enum model_wants bits, which may depend on the options and the store
	 * (NULL: none). */
	unsigned (*wants)(const struct model *m);

	/* Declares the parameters (params_add) and reads the config.  HR_EINVAL. */
	int (*init)(struct model *m, const struct store_info *info);
	void (*release)(struct model *m);
	/* NULL: VIEW_RECORDS.  May depend on the model's options. */
	enum model_view (*view)(const struct model *m);
	size_t (*workspace_floats)(const struct model *m, uint32_t batch);
	/* Scores (B): logits (TARGET_LABEL) or predicted ratings (TARGET_RATING).
	 * With train = 1 it keeps in ws what backward needs. */
	void (*forward)(const struct model *m, float *ws, const struct batch *b, float *logits,
			int train);
	/*
	 * Optional: called before a pass of forward(train = 0) calls (the
	 * evaluator's split, --predict) while nothing trains; may fill caches in
	 * m->impl that forward(train = 0) reads until the next call (AutoRec
	 * encodes every row once here instead of once per record).  HR_ENOMEM.
	 */
	int (*score_prepare)(const struct model *m);
	/*
	 * Optional: called once by model_attach when m->data is attached, before
	 * any training or scoring call, on one thread: may derive from the data
	 * what the model then reads (twotower's cfm mutual information).  HR_ENOMEM.
	 */
	int (*data_ready)(struct model *m);
	/* Accumulates d loss / d params from dlogits (B) into grad and sg. */
	void (*backward)(const struct model *m, float *ws, const struct batch *b,
			 const float *dlogits, float *grad, struct sparse_grad *sg);
	/*
	 * Optional: a training pass that owns its loss (sampled negatives,
	 * in-batch softmax, auxiliary terms).  NULL: forward with train = 1,
	 * mean binary cross-entropy of the logits against b->label, backward.
	 * train_forward writes each loss term (a batch mean, its weight
	 * applied) into terms[] in the order of `losses` and returns their sum,
	 * the objective (NaN/inf stops training); it keeps in ws what
	 * train_backward needs.  train_backward accumulates the gradient of
	 * that objective into grad and sg.
	 */
	double (*train_forward)(const struct model *m, float *ws, const struct batch *b,
				struct model_ctx *ctx, double *terms);
	void (*train_backward)(const struct model *m, float *ws, const struct batch *b,
			       struct model_ctx *ctx, float *grad, struct sparse_grad *sg);
	/*
	 * Optional, two-tower models: the user-side and item-side vectors
	 * (B, vector_dim) whose dot product is the score, each from the
	 * batch's user or item fields alone (retrieval scores one user against
	 * every item).  ws as for forward.
	 */
	uint32_t (*vector_dim)(const struct model *m);
	void (*user_vectors)(const struct model *m, float *ws, const struct batch *b, float *out);
	void (*item_vectors)(const struct model *m, float *ws, const struct batch *b, float *out);
	/* Multiply-adds times two of one sample's forward pass (for GFLOP/s). */
	double (*flops_forward)(const struct model *m);
	/*
	 * Optional: the same for one trained sample, forward and backward
	 * (model_flops_train).  NULL: 3 flops_forward, right when the work is
	 * GEMMs, whose backward is two products of the forward's size (dX, dW);
	 * a model with other work (IntTower's max-sim, whose backward is a
	 * gather) counts it here.
	 */
	double (*flops_train)(const struct model *m);
	/*
	 * Optional, pre-training: sets m's parameters, fresh from
	 * model_create, from trained models of other kinds, src[0 .. n) (n >=
	 * 1, at most one per source model: model_init_from checks), copying
	 * what maps from each (model_source_copy) and leaving the rest as
	 * initialised.  The optimizer state stays zero.  HR_EINVAL naming the
	 * source when m does not start from its model, or when a tensor it
	 * maps is missing or of another shape (model_source_tensor's message).
	 * On failure m's parameters may be partly overwritten.  NULL: the model
	 * starts from nothing but its initialisation.  Nothing may train while
	 * it runs.
	 */
	int (*init_from)(struct model *m, const struct model_source *src, int n);
};

struct model {
	const struct model_ops *ops;
	struct model_config cfg;
	double opt[MODEL_MAX_OPTIONS]; /* every option's value, in ops->options order */
	struct store_info info;
	struct params params;
	const struct model_data *data; /* what the trainer loaded for it, or NULL */
	void *impl;                    /* the model's own state (layer sizes, tensor indices) */
};

/* The model called name, or NULL. */
const struct model_ops *model_find(const char *name);
/* The i-th registered model (0, 1, ...), NULL past the last: tests loop over all. */
const struct model_ops *model_at(size_t i);
/* Writes "  name  summary" lines for --help. */
void model_list(FILE *out);

/*
 * Builds model `name` for a store: checks the store has what it needs
 * (HR_EINVAL naming the missing fields), declares and initialises the
 * parameters with `state` optimizer arrays each.
 */
int model_create(struct model *m, const char *name, const struct model_config *cfg,
		 const struct store_info *info, int state);
void model_release(struct model *m);

/*
 * The record_unpack_fields() flags (store/codec.h) that skip the record
 * fields m does not read: sequences without NEEDS_HISTORY, and genres and
 * dense features too when it reads none of them (decoding is the loader's
 * cost for small models).
 */
unsigned model_decode_flags(const struct model *m);

/*
 * Loads what m wants (ops->wants) from the train split src into d: the
 * interactions, a sampler of the kind m's option "sampler" names (random
 * without one), st's items table.  On failure d owns nothing.  HR_* from interactions_load,
 * HR_EINVAL when the split has no ratings a model needs.
 */
int model_data_load(struct model_data *d, const struct model *m, const struct batch_source *src,
		    struct store *st);
void model_data_release(struct model_data *d);

/*
 * Rows one training sample becomes: 1 + num_neg when m trains the default
 * pointwise loss on sampled negatives (its option num_neg > 0 on an
 * implicit store, whose records are all positives), else 1.  The worker's
 * workspace, logits and sparse gradients are sized for batch times this,
 * and ctx->neg holds that many rows.
 */
uint32_t model_train_factor(const struct model *m);

/*
 * Multiply-adds times two of one trained sample (a train record), forward
 * and backward: ops->flops_train, or 3 ops->flops_forward without one.
 */
double model_flops_train(const struct model *m);

/* The option num_neg of m, 0 without one. */
uint32_t model_num_neg(const struct model *m);

/*
 * The options of pointwise models that train on sampled negatives of an
 * implicit store (num_neg, sampler), shared by ncf, gmf and neumf, and their
 * wants function (WANTS_NEGATIVES when model_train_factor() > 1).  The two
 * rows are also macros, for a model whose table has more (neumf).
 */
#define MODEL_OPTION_NUM_NEG                                                                                \
	{                                                                                                   \
		"num_neg", MOPT_INT, 0, 100, 4, NULL,                                                       \
			"negatives sampled per positive (ncf, gmf, neumf: on implicit stores, 0 trains on " \
			"the records alone; twotower: cross_entropy and max_margin)"                        \
	}
#define MODEL_OPTION_SAMPLER                                                                              \
	{                                                                                                 \
		"sampler", MOPT_ENUM, 0, 0, 0 /* SAMPLER_RANDOM */, model_sampler_names,                  \
			"how negatives are drawn: random (any item), unconsumed (none the user rated in " \
			"train), popular (by train frequency)"                                            \
	}
extern const struct model_option model_negative_options[2];
extern const char *const model_sampler_names[]; /* the choices of "sampler" */
unsigned model_negative_wants(const struct model *m);

/* Attaches the loaded data (m->data = d) and calls ops->data_ready. */
int model_attach(struct model *m, const struct model_data *d);

/* ---- pre-training (model_ops.init_from) ---- */

/*
 * Initialises m from the trained models src[0 .. n) through its
 * init_from.  HR_EINVAL when m's model has none ("model 'ncf' cannot start
 * from other models' checkpoints (neumf can)"), n is not 1 to
 * MODEL_MAX_SOURCES, two sources are of one model, or init_from refuses
 * one (its message).  On failure m's parameters may be partly overwritten.
 */
int model_init_from(struct model *m, const struct model_source *src, int n);

/* Writes the names of the models that have an init_from ("neumf"), comma separated. */
void model_init_from_list(char *buf, size_t size);

/*
 * For init_from: src's tensor `name`, which must be rows x cols, into
 * *out.  `to` names what it initialises in the message: HR_EINVAL "'WHERE'
 * (model gmf): tensor 'user_emb' is 301x16; neumf's 'user_gmf' wants 301x32
 * (...)", or "... has no tensor 'out.0.w' (...)".
 */
int model_source_tensor(const struct model *m, const struct model_source *src, const char *name,
			uint32_t rows, uint32_t cols, const char *to, const float **out);

/*
 * For init_from: copies src's tensor `name`, times scale, into columns
 * [col, col + cols) of m's tensor dst (an index into m->params); src's must
 * be (dst's rows) x cols.  HR_EINVAL as model_source_tensor.
 */
int model_source_copy(struct model *m, int dst, uint32_t col, uint32_t cols,
		      const struct model_source *src, const char *name, float scale);

/* ops->score_prepare(m) when the model has one, else 0. */
int model_score_prepare(const struct model *m);

/* m's view (VIEW_RECORDS when the model has no view function). */
enum model_view model_view(const struct model *m);

/* The loss term names of m (see model_ops.losses) and their count. */
const char *const *model_losses(const struct model *m, int *n);

/*
 * One training pass over b: ops->train_forward/train_backward, or the
 * default (forward, mean BCE against b->label, backward).  model_train_forward
 * writes the loss terms into terms[] and returns the objective;
 * model_train_backward accumulates its gradient.  Same threading contract
 * as forward/backward.
 */
double model_train_forward(const struct model *m, float *ws, const struct batch *b,
			   struct model_ctx *ctx, double *terms);
void model_train_backward(const struct model *m, float *ws, const struct batch *b,
			  struct model_ctx *ctx, float *grad, struct sparse_grad *sg);

/* ---- options (struct model_option) ---- */

/*
 * The first registered model's declaration of option `name` (flag spelling
 * with '-' accepted), or NULL: options mean the same in every model.
 */
const struct model_option *model_option_any(const char *name);
/* The i-th distinct option name over every model (0, 1, ...), NULL past the last. */
const struct model_option *model_option_at(size_t i);
/* Index of option `name` in ops's table, or -1. */
int model_option_index(const struct model_ops *ops, const char *name);

/*
 * Parses text as a value of option o ("4", "0.5", "yes", "popular").
 * HR_EINVAL with "must be WANT, not 'TEXT'" (no location; callers prefix
 * it) when it is not one or out of o's range.
 */
int model_option_parse(const struct model_option *o, const char *text, double *v);
/* What a valid value of o looks like ("an integer between 1 and 100"). */
void model_option_describe(const struct model_option *o, char *buf, size_t size);
/* v as o's text ("4", "0.5", "yes", "popular"). */
void model_option_format(const struct model_option *o, double v, char *buf, size_t size);

/*
 * Resolves the options of ops for cfg into values[] (ops->options order):
 * defaults, then cfg->opt.  HR_EINVAL naming an option ops does not have
 * ("model 'ncf' has no option 'margin' (its options: ...)") or a value out
 * of ops's range.
 */
int model_options_resolve(const struct model_ops *ops, const struct model_config *cfg,
			  double *values);

/* Sets option `name` in cfg (replacing an earlier value).  HR_EINVAL when
 * no model has it or cfg is full. */
int model_config_set(struct model_config *cfg, const char *name, double v);

#endif
