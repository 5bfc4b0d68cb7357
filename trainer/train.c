#include "train.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
#endif

#include "ckpt.h"
#include "common/err.h"
#include "common/log.h"
#include "common/progress.h"
#include "common/ring.h"
#include "common/team.h"
#include "eval.h"
#include "loader.h"
#include "models/carry.h"
#include "models/interact.h"
#include "notify.h"
#include "pretrain.h"
#include "runlog.h"
#include "snapshot.h"
#include "models/nn/blas.h"
#include "models/nn/nn.h"
#include "store/codec.h"
#include "store/store.h"

volatile sig_atomic_t train_stop;
volatile sig_atomic_t train_reload;

/*
 * Flush-to-zero and denormals-are-zero for the calling thread: tiny
 * gradients otherwise turn into denormal floats, which x86 handles with
 * microcode assists ~100x slower (measured: ReLU backward and sgemm slowed
 * the two-tower model by a third).  Training loses nothing by it.
 */
static void flush_denormals(void)
{
#if defined(__SSE__) || defined(__x86_64__)
	_mm_setcsr(_mm_getcsr() | 0x8040); /* FTZ (bit 15) | DAZ (bit 6) */
#endif
}

void train_opts_defaults(struct train_opts *o)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);

	memset(o, 0, sizeof(*o));
	o->epochs = 20;    /* a ceiling: early stopping ends most runs (docs/models.md) */
	o->early_stop = 2; /* FuxiCTR's patience (docs/models.md) */
	o->threads = cores > 0 ? (int)cores : 1;
	o->loaders = 1;
	o->keep = 3;
	o->resume = 1;
	o->predict_n = 10;
	o->rank_exclude = 1;
	o->rank_users = 0;
	o->follow_poll = 5;
	o->batch = 256;
	o->seed = 1;
	optim_defaults(&o->optim, OPTIM_ADAM);
	o->mcfg.seed = 1;
	o->progress = 1;
}

struct worker {
	struct trainer *t;
	int id;
	pthread_t thread;
	float *ws;                         /* model workspace */
	float *logits, *dlogits;           /* (B) */
	float *grad;                       /* dense gradient block */
	struct sparse_grad sg[PARAMS_MAX]; /* per embedding tensor */
	struct model_ctx ctx;              /* the model's per-batch stream and scratch */
	double loss_sum[MODEL_MAX_LOSSES]; /* each loss term times samples, this epoch */
	uint64_t samples;
	uint64_t step; /* the batch's, for update_part */
};

struct trainer {
	const struct train_opts *o;
	struct store *st;
	struct store_info info;
	struct model model;
	struct model_data data; /* what the model reads beyond records (model.h) */
	uint32_t *rows;         /* a row view's row ids (model.h, enum model_view) */
	uint64_t *keys;         /* the positives view's record keys */
	struct ring full, free; /* batch pointers: loader -> workers -> loader */
	struct batch *batches;
	uint32_t n_batches;
	struct worker *workers;
	int threads; /* workers: o->threads, or fewer when the model says so */
	/* With one worker and threads to spare (the model caps its workers),
	 * the spare threads share each step's optimizer update. */
	struct team *team;

	_Atomic uint64_t step;  /* global optimizer step (Adam bias correction) */
	_Atomic uint64_t done;  /* batches finished in the current epoch */
	_Atomic int failed;     /* first failure wins; workers then skip work */
	_Atomic int halt;       /* tells the loader to end the segment early */
	uint64_t samples;       /* training samples applied (main thread) */
	struct eval_metric sel; /* what early stopping selects on (--early-stop-metric) */
	double best;            /* its best valid value at an epoch end (0: none), and the */
	uint64_t best_step;     /* step of its checkpoint (kept by retention), */
	int best_epoch;         /* that epoch, and the epochs since without a better */
	int bad_epochs;         /* one (early stopping; saved in every checkpoint) */
	pthread_mutex_t mu;     /* guards fail_* and the epoch-done wakeup */
	pthread_cond_t cv;
	int fail_code;
	char fail_msg[512];

	struct loader loader;
	struct store_reader *index_reader; /* keeps the train index's pointers valid */
	struct store_index index;
	FILE *metrics;
	int pretrain;    /* setup applies --init-from (a run's first trainer, not --follow's) */
	char *init_from; /* what the run started from (pretrain.h), a JSON array, or NULL */
};

/* Records the first failure (any thread) and asks everyone to stop. */
static void fail(struct trainer *t, int code, const char *msg)
{
	pthread_mutex_lock(&t->mu);
	if (!atomic_load_explicit(&t->failed, memory_order_relaxed)) {
		t->fail_code = code;
		snprintf(t->fail_msg, sizeof(t->fail_msg), "%s", msg);
		/* R1: release pairs with the acquire loads of `failed` (A2, A3). */
		atomic_store_explicit(&t->failed, 1, memory_order_release);
		atomic_store_explicit(&t->halt, 1, memory_order_relaxed);
	}
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->mu);
}

/* ---- the workers ------------------------------------------------------- */

/* The random stream of the batch at `step` on worker `id`: a function of
 * (seed, worker, step) alone, so one worker with one seed replays a run. */
static void seed_batch_stream(struct rng *r, uint64_t seed, int id, uint64_t step)
{
	uint64_t x = step;

	rng_seed(r, seed ^ splitmix64(&x), (uint64_t)id + 1);
}

/* Part `part` of `parts` of the worker's optimizer step (team_fn). */
static void update_part(void *arg, int part, int parts)
{
	struct worker *w = arg;

	optim_step(&w->t->o->optim, &w->t->model.params, w->grad, w->sg, w->step, part, parts);
}

static int train_batch(struct worker *w, const struct batch *b)
{
	struct trainer *t = w->t;
	struct model *m = &t->model;
	struct params *p = &m->params;
	double terms[MODEL_MAX_LOSSES] = {0}, loss;
	int n_terms;
	/* Relaxed: the step only orders Adam's bias correction and names the
	 * batch's random stream, not memory. */
	uint64_t step = atomic_fetch_add_explicit(&t->step, 1, memory_order_relaxed) + 1;

	model_losses(m, &n_terms);
	w->ctx.step = step;
	seed_batch_stream(&w->ctx.rng, t->o->seed, w->id, step);
	loss = model_train_forward(m, w->ws, b, &w->ctx, terms);
	if (!isfinite(loss))
		return 1;
	for (int k = 0; k < n_terms; k++)
		w->loss_sum[k] += terms[k] * b->n;
	w->samples += b->n;
	memset(w->grad, 0, p->dense_n * sizeof(float));
	for (int i = 0; i < p->n; i++)
		if (p->t[i].sparse)
			sparse_grad_clear(&w->sg[i]);
	model_train_backward(m, w->ws, b, &w->ctx, w->grad, w->sg);
	w->step = step;
	team_run(t->team, update_part, w); /* just the call with no team */
	return 0;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct trainer *t = w->t;
	void *item;

	nn_blas_single_thread();
	flush_denormals();
	while (ring_pop(&t->full, &item) == 0) {
		struct batch *b = item;
		if (t->o->loader_only) {
			w->samples += b->n;
		} else if (/* A2: acquire pairs with fail()'s release (R1) */
			   !atomic_load_explicit(&t->failed, memory_order_acquire) &&
			   train_batch(w, b)) {
			char msg[160];
			snprintf(msg, sizeof(msg),
				 "loss is not finite at step %llu (epoch %d); "
				 "try a lower --lr",
				 (unsigned long long)atomic_load_explicit(&t->step,
									  memory_order_relaxed),
				 b->epoch);
			fail(t, HR_EFORMAT, msg);
		}
		ring_push(&t->free, b);
		/* R3: release pairs with the main thread's acquire (A3): the
		 * worker's loss counters are visible once `done` counts the batch. */
		atomic_fetch_add_explicit(&t->done, 1, memory_order_release);
		if (loader_finished(&t->loader) && ring_count_approx(&t->full) == 0) {
			/* possibly the epoch's last batch: wake the main thread */
			pthread_mutex_lock(&t->mu);
			pthread_cond_broadcast(&t->cv);
			pthread_mutex_unlock(&t->mu);
		}
	}
	return NULL;
}

static int workers_init(struct trainer *t)
{
	struct model *m = &t->model;
	struct params *p = &m->params;
	uint32_t F = model_train_factor(m), B = t->o->batch * F; /* rows a batch becomes */
	size_t ws = m->ops->workspace_floats(m, B);

	t->workers = calloc((size_t)t->threads, sizeof(*t->workers));
	if (!t->workers)
		return hr_error(HR_ENOMEM, "out of memory for workers");
	for (int k = 0; k < t->threads; k++) {
		struct worker *w = &t->workers[k];
		w->t = t; /* w->id stays 0 until its thread starts (see setup) */
		w->ws = aligned_alloc(64, ((ws ? ws : 1) * sizeof(float) + 63) & ~(size_t)63);
		w->logits = malloc(B * sizeof(float));
		w->dlogits = malloc(B * sizeof(float));
		w->grad = aligned_alloc(64, ((p->dense_n ? p->dense_n : 1) * sizeof(float) + 63) &
						    ~(size_t)63);
		w->ctx.logits = w->logits;
		w->ctx.dlogits = w->dlogits;
		if (F > 1) {
			w->ctx.neg = calloc(1, sizeof(*w->ctx.neg));
			if (!w->ctx.neg ||
			    batch_alloc(w->ctx.neg, B, t->info.hist_len, t->info.n_dense))
				return hr_error(HR_ENOMEM, "out of memory for negatives");
		}
		if (!w->ws || !w->logits || !w->dlogits || !w->grad)
			return hr_error(HR_ENOMEM, "out of memory for worker scratch (%zu floats)",
					ws);
		for (int i = 0; i < p->n; i++) {
			if (!p->t[i].sparse)
				continue;
			/* distinct rows: at most lookups per sample, at most the table */
			uint64_t rows = (uint64_t)B * (p->t[i].lookups ? p->t[i].lookups : 1);
			int rc = sparse_grad_init(
				&w->sg[i], (uint32_t)(rows < p->t[i].rows ? rows : p->t[i].rows),
				p->t[i].cols);
			if (rc)
				return rc;
		}
	}
	return 0;
}

static void workers_release(struct trainer *t)
{
	if (!t->workers)
		return;
	for (int k = 0; k < t->threads; k++) {
		struct worker *w = &t->workers[k];
		free(w->ws);
		free(w->logits);
		free(w->dlogits);
		free(w->grad);
		if (w->ctx.neg) {
			batch_release(w->ctx.neg);
			free(w->ctx.neg);
		}
		for (int i = 0; i < PARAMS_MAX; i++)
			if (w->sg[i].cap)
				sparse_grad_release(&w->sg[i]);
	}
	free(t->workers);
	t->workers = NULL;
}

/* ---- epochs ------------------------------------------------------------ */

/*
 * Trains batches [first, end) of `epoch`, or fewer if a checkpoint is due
 * (ckpt_every_secs), a signal arrived or something failed; *next receives
 * where the epoch resumes.  *seconds accumulates the time spent.
 */
static int run_segment(struct trainer *t, int epoch, uint64_t first, uint64_t end, uint64_t *next,
		       double *seconds, double t_ckpt, struct progress *bar)
{
	uint64_t n = t->info.count[0], B = t->o->batch, base = first * B;
	double t0 = now_seconds();
	int rc;

	*next = first;
	atomic_store_explicit(&t->done, 0, memory_order_relaxed);
	rc = loader_start(&t->loader, epoch, first, end);
	if (rc)
		return rc;
	pthread_mutex_lock(&t->mu);
	for (;;) {
		/* A3: acquire pairs with the workers' release (R3). */
		uint64_t d = atomic_load_explicit(&t->done, memory_order_acquire);
		if (loader_finished(&t->loader) && d >= loader_batches(&t->loader))
			break; /* every batch the loader produced is trained */
		if (train_stop ||
		    (t->o->ckpt_every_secs > 0 && now_seconds() - t_ckpt >= t->o->ckpt_every_secs))
			atomic_store_explicit(&t->halt, 1, memory_order_relaxed);
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&t->cv, &t->mu, &ts);
		pthread_mutex_unlock(&t->mu);
		progress_update(bar, base + d * B > n ? n : base + d * B);
		notify_watchdog();
		if (train_reload) {
			train_reload = 0;
			if (t->o->reload && t->o->reload(t->o->reload_ctx))
				log_warn("reload failed, keeping the current settings: %s",
					 hr_errmsg());
			else if (t->o->reload)
				log_info("reloaded: checkpoint every %llu steps / %g s, keep %d",
					 (unsigned long long)t->o->ckpt_every_steps,
					 t->o->ckpt_every_secs, t->o->keep);
		}
		pthread_mutex_lock(&t->mu);
	}
	pthread_mutex_unlock(&t->mu);
	rc = loader_join(&t->loader);
	*next = loader_resume_index(&t->loader);
	*seconds += now_seconds() - t0;
	if (!rc && atomic_load_explicit(&t->failed, memory_order_acquire))
		rc = hr_error(t->fail_code, "%s", t->fail_msg);
	if (!rc && !atomic_load_explicit(&t->failed, memory_order_relaxed))
		atomic_store_explicit(&t->halt, 0, memory_order_relaxed);
	return rc;
}

/* ---- set-up, the epoch loop, metrics ----------------------------------- */

/* Appends ,"key":value to line (null when value is not finite: JSON has no NaN). */
static void jnum(char *line, size_t cap, const char *key, double v, int decimals)
{
	size_t n = strlen(line);

	if (isfinite(v))
		snprintf(line + n, cap - n, ",\"%s\":%.*f", key, decimals, v);
	else
		snprintf(line + n, cap - n, ",\"%s\":null", key);
}

/*
 * One metrics line.  final: the run's closing line; best_epoch > 0 names
 * the epoch whose parameters it describes (early stopping's restore).
 */
static void emit(struct trainer *t, const char *split, int epoch, const struct eval_result *r,
		 const double *loss, double samples_per_s, int final, int best_epoch)
{
	char line[4096];
	double gflops = samples_per_s * model_flops_train(&t->model) * 1e-9;

	snprintf(line, sizeof(line), "{\"split\":\"%s\",\"epoch\":%d,\"model\":\"%s\",\"n\":%llu",
		 split, epoch, t->model.ops->name, (unsigned long long)r->n);
	if (t->model.ops->target == TARGET_RATING) {
		jnum(line, sizeof(line), "rmse", r->rmse, 6);
		jnum(line, sizeof(line), "rmse_global_mean", r->rmse_global_mean, 6);
		jnum(line, sizeof(line), "rmse_item_mean", r->rmse_item_mean, 6);
		jnum(line, sizeof(line), "rmse_user_mean", r->rmse_user_mean, 6);
	} else {
		jnum(line, sizeof(line), "auc", r->auc, 6);
		jnum(line, sizeof(line), "logloss", r->logloss, 6);
		jnum(line, sizeof(line), "gauc", r->gauc, 6);
		jnum(line, sizeof(line), "sampled_auc", r->sampled_auc, 6);
		jnum(line, sizeof(line), "baseline_sampled_auc", r->base_sampled_auc, 6);
		jnum(line, sizeof(line), "baseline_auc", r->base_auc, 6);
		jnum(line, sizeof(line), "baseline_logloss", r->base_logloss, 6);
		jnum(line, sizeof(line), "positive_rate", r->positive_rate, 4);
	}
	if (r->rank.users) {
		static const char *const names[] = {"recall", "ndcg",     "hit",
						    "mrr",    "coverage", "popularity"};
		const double *v[] = {r->rank.recall, r->rank.ndcg,     r->rank.hit,
				     r->rank.mrr,    r->rank.coverage, r->rank.popularity};
		char key[48];
		for (int q = 0; q < RANK_NK; q++)
			for (int f = 0; f < 6; f++) {
				snprintf(key, sizeof(key), "%s@%u", names[f], rank_k[q]);
				jnum(line, sizeof(line), key, v[f][q], f == 5 ? 2 : 6);
			}
		jnum(line, sizeof(line), "loo_hr@10", r->rank.loo_hr, 6);
		jnum(line, sizeof(line), "loo_ndcg@10", r->rank.loo_ndcg, 6);
		/* the baselines: most popular ("baseline_"), item-kNN, iALS */
		static const char *const prefix[] = {"baseline", "knn", "ials"};
		const struct rank_result *base[] = {&r->rank_popular, &r->rank_knn, &r->rank_ials};
		for (int bi = 0; bi < 3; bi++) {
			const struct rank_result *x = base[bi];
			const double *p[] = {x->recall, x->ndcg, x->hit, x->mrr};
			for (int q = 0; q < RANK_NK; q++)
				for (int f = 0; f < 4; f++) {
					snprintf(key, sizeof(key), "%s_%s@%u", prefix[bi], names[f],
						 rank_k[q]);
					jnum(line, sizeof(line), key, p[f][q], 6);
				}
			snprintf(key, sizeof(key), "%s_loo_hr@10", prefix[bi]);
			jnum(line, sizeof(line), key, x->loo_hr, 6);
			snprintf(key, sizeof(key), "%s_loo_ndcg@10", prefix[bi]);
			jnum(line, sizeof(line), key, x->loo_ndcg, 6);
		}
		jnum(line, sizeof(line), "rank_users", (double)r->rank.users, 0);
		jnum(line, sizeof(line), "rank_seconds", r->rank_seconds, 3);
		jnum(line, sizeof(line), "rank_baseline_seconds", r->rank_base_seconds, 3);
	}
	int n_terms;
	const char *const *terms = model_losses(&t->model, &n_terms);
	for (int k = 0; k < n_terms; k++) /* train_loss first, then the model's other terms */
		jnum(line, sizeof(line), terms[k], loss ? loss[k] : NAN, 6);
	jnum(line, sizeof(line), "samples_per_s", samples_per_s, 0);
	jnum(line, sizeof(line), "gflops", gflops, 2);
	size_t n = strlen(line);
	snprintf(line + n, sizeof(line) - n, ",\"threads\":%d,\"batch\":%u", t->threads,
		 t->o->batch);
	n = strlen(line);
	if (best_epoch > 0)
		snprintf(line + n, sizeof(line) - n, ",\"best_epoch\":%d", best_epoch);
	n = strlen(line);
	snprintf(line + n, sizeof(line) - n, "%s}\n", final ? ",\"final\":true" : "");
	fputs(line, stdout);
	fflush(stdout);
	if (t->metrics) {
		fputs(line, t->metrics);
		fflush(t->metrics);
	}
}

/* OUT itself; what goes into it is opened once the run is known good. */
static int open_outputs(struct trainer *t)
{
	if (mkdir(t->o->out, 0755) < 0 && errno != EEXIST)
		return hr_error(HR_EIO, "cannot create '%s': %s", t->o->out, strerror(errno));
	return 0;
}

/*
 * Opens OUT/metrics.jsonl for appending.  A run that trains from `epoch`
 * (> 0) first drops the file's lines of that epoch and later, written by a
 * run killed before its checkpoint, which this run does again (runlog.h).
 */
static int metrics_open(struct trainer *t, int epoch)
{
	char path[4096];
	size_t dropped = 0;
	int rc;

	if (snprintf(path, sizeof(path), "%s/metrics.jsonl", t->o->out) >= (int)sizeof(path))
		return hr_error(HR_EINVAL, "output path too long: '%s'", t->o->out);
	if (epoch > 0 && (rc = runlog_keep_before(path, epoch, &dropped)))
		return rc;
	if (dropped)
		log_info("'%s': dropped %zu lines of epoch %d and later, which this run does again",
			 path, dropped, epoch);
	t->metrics = fopen(path, "a");
	if (!t->metrics)
		return hr_error(HR_EIO, "cannot open '%s': %s", path, strerror(errno));
	return 0;
}

/*
 * --records: copy the train records out of the map when asked, or (auto)
 * when they take under 1/8 of physical memory; a failed auto copy keeps
 * reading the map.
 */
static int records_place(const struct train_opts *o, struct store_index *ix)
{
	long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
	double ram = pages > 0 && page > 0 ? (double)pages * (double)page : 0;
	int rc;

	if (o->records == RECORDS_MAP ||
	    (o->records == RECORDS_AUTO && (double)ix->bytes > ram / 8))
		return 0;
	rc = store_index_copy(ix);
	if (rc && o->records == RECORDS_AUTO) {
		log_info("train records stay in the map: %s", hr_errmsg());
		return 0;
	}
	if (!rc)
		log_debug("train records copied to memory: %.1f MB", (double)ix->bytes / 1e6);
	return rc;
}

/*
 * What the model reads beyond records (model_data_load), attached to it,
 * and for a row view the loader's rows: every row with a train rating.
 */
static int data_setup(struct trainer *t)
{
	const struct batch_source src = {
		.ix = &t->index,
		.n = t->index.n,
		.store = t->o->data,
		.db = "train",
	};
	enum model_view view;
	const struct interactions *x;
	uint64_t n = 0;
	int rc = model_data_load(&t->data, &t->model, &src, t->st);

	if (!rc)
		rc = model_attach(&t->model, &t->data);
	if (rc)
		return rc;
	view = model_view(&t->model);
	if (view == VIEW_RECORDS)
		return 0;
	x = t->data.train;
	HR_ASSERT(x);                 /* a row or positives view wants the ratings */
	if (view == VIEW_POSITIVES) { /* interactions keep the split's key order */
		t->keys = malloc((x->n ? x->n : 1) * sizeof(*t->keys));
		if (!t->keys)
			return hr_error(HR_ENOMEM, "out of memory for %llu keys",
					(unsigned long long)x->n);
		for (uint64_t k = 0; k < x->n; k++)
			if (x->label[k])
				t->keys[n++] = k;
		if (n == 0)
			return hr_error(HR_EINVAL, "store '%s': no positive train records",
					t->o->data);
		loader_set_keys(&t->loader, t->keys, n);
		log_info("training on the %llu positive train records", (unsigned long long)n);
		return 0;
	}
	uint32_t n_rows = view == VIEW_USER_ROWS ? x->n_users : x->n_items;
	const uint64_t *off = view == VIEW_USER_ROWS ? x->user_off : x->item_off;
	t->rows = malloc((n_rows ? n_rows : 1) * sizeof(*t->rows));
	if (!t->rows)
		return hr_error(HR_ENOMEM, "out of memory for %u rows", n_rows);
	for (uint32_t r = 1; r < n_rows; r++) /* row 0 (unknown) trains nothing */
		if (off[r + 1] > off[r])
			t->rows[n++] = r;
	if (n == 0)
		return hr_error(HR_EINVAL, "store '%s': no rows with train ratings", t->o->data);
	loader_set_rows(&t->loader, t->rows, n, view == VIEW_USER_ROWS ? SF_USER : SF_ITEM);
	log_info("training on %llu %s rows of the train ratings", (unsigned long long)n,
		 view == VIEW_USER_ROWS ? "user" : "item");
	return 0;
}

/*
 * What early stopping selects on: o->early_stop_metric, or with "auto" the
 * model's (rmse for a rating model, else its select_metric, else auc).
 * HR_EINVAL when the model does not report the metric, or a ranking
 * metric without --rank-metrics.
 */
static int selection_setup(struct trainer *t)
{
	const struct model_ops *ops = t->model.ops;
	const char *name = t->o->early_stop_metric;
	int rating = ops->target == TARGET_RATING, rc;

	if (!name || !strcmp(name, "auto"))
		name = rating ? "rmse" : ops->select_metric ? ops->select_metric : "auc";
	rc = eval_metric_parse(name, &t->sel);
	if (rc)
		return hr_error_prefix(rc, "--early-stop-metric");
	if (eval_metric_ranked(&t->sel)) {
		if (!t->o->rank_metrics)
			return hr_error(
				HR_EINVAL,
				"--early-stop-metric %s needs the ranking: add --rank-metrics "
				"yes",
				name);
	} else if (rating != (t->sel.kind == EM_RMSE)) {
		return hr_error(HR_EINVAL, "--early-stop-metric %s: model %s reports %s", name,
				ops->name,
				rating ? "rmse (it predicts ratings), not AUCs" : "AUCs, not rmse");
	}
	return 0;
}

static const char *selection_name(const struct trainer *t)
{
	return t->sel.name;
}

static double selection_value(const struct trainer *t, const struct eval_result *r)
{
	return eval_metric_value(&t->sel, r);
}

static double selection_best(const struct trainer *t)
{
	return t->best;
}

/* Whether valid result r beats the best epoch so far (higher, or lower for rmse). */
static int improves(const struct trainer *t, const struct eval_result *r)
{
	double v = selection_value(t, r);

	if (!isfinite(v))
		return 0;
	return t->sel.lower ? t->best == 0 || v < t->best : v > t->best;
}

static int setup(struct trainer *t)
{
	const struct train_opts *o = t->o;
	uint32_t cap = 2;
	int rc;

	if (o->threads < 1 || o->threads > 256)
		return hr_error(HR_EINVAL, "--threads must be between 1 and 256, not %d",
				o->threads);
	t->threads = o->threads;
	const struct model_ops *ops = model_find(o->model);
	if (ops && ops->max_workers && t->threads > ops->max_workers) {
		t->threads = ops->max_workers;
		log_info("model %s trains with %d worker%s, not %d: %s%s", ops->name, t->threads,
			 t->threads == 1 ? "" : "s", o->threads, ops->max_workers_why,
			 t->threads == 1 ? "; the other threads share its optimizer steps" : "");
	}
	if (o->batch < 1 || o->batch > 65536)
		return hr_error(HR_EINVAL, "--batch must be between 1 and 65536, not %u", o->batch);
	if (o->epochs < 1)
		return hr_error(HR_EINVAL, "--epochs must be at least 1, not %d", o->epochs);
	rc = store_open(&t->st, o->data);
	if (!rc)
		rc = store_info_load(t->st, &t->info);
	if (rc)
		return rc;
	if (t->info.count[0] == 0)
		return hr_error(HR_EINVAL, "store '%s' has no train records", o->data);
	rc = model_create(&t->model, o->model, &o->mcfg, &t->info,
			  optim_state_count(o->optim.kind));
	if (!rc)
		rc = selection_setup(t);
	if (rc)
		return rc;
	/* Before OUT is made: a source refused leaves nothing behind.  A resume
	 * overwrites these parameters (trainer_run checks it may). */
	if (t->pretrain && o->init_from && !o->loader_only) {
		rc = pretrain_apply(o, &t->model, &t->init_from);
		if (rc)
			return rc;
	}
	rc = open_outputs(t);
	if (rc)
		return rc;
	/* Enough batches that the loader runs ahead of every worker. */
	t->n_batches = 2 * (uint32_t)(t->threads + o->loaders) + 2;
	while (cap < t->n_batches)
		cap *= 2;
	rc = ring_init(&t->full, cap);
	if (!rc)
		rc = ring_init(&t->free, cap);
	if (rc)
		return rc;
	t->batches = calloc(t->n_batches, sizeof(*t->batches));
	if (!t->batches)
		return hr_error(HR_ENOMEM, "out of memory for batches");
	for (uint32_t i = 0; i < t->n_batches && !rc; i++) {
		rc = batch_alloc(&t->batches[i], o->batch, t->info.hist_len, t->info.n_dense);
		if (!rc)
			batch_set_decode(&t->batches[i], model_decode_flags(&t->model));
		if (!rc)
			rc = ring_push(&t->free, &t->batches[i]);
	}
	if (!rc)
		rc = store_reader_begin(t->st, &t->index_reader);
	if (!rc)
		rc = store_index_build(t->index_reader, STORE_TRAIN, &t->index);
	if (!rc)
		rc = records_place(o, &t->index);
	if (!rc && t->index.n != t->info.count[0])
		rc = hr_error(HR_ESTORE,
			      "store '%s': meta counts %llu train records, the database "
			      "holds %llu",
			      o->data, (unsigned long long)t->info.count[0],
			      (unsigned long long)t->index.n);
	if (!rc)
		rc = loader_init(&t->loader, t->st, STORE_TRAIN, &t->index, o->batch, o->loaders,
				 o->seed, &t->free, &t->full, &t->halt);
	if (!rc)
		rc = data_setup(t);
	if (!rc)
		rc = workers_init(t);
	if (!rc && t->threads == 1 && o->threads > 1 && !o->loader_only)
		rc = team_start(&t->team, o->threads - 1, flush_denormals);
	for (int k = 0; !rc && k < t->threads; k++)
		if (pthread_create(&t->workers[k].thread, NULL, worker_main, &t->workers[k]))
			rc = hr_error(HR_EIO, "cannot start worker thread %d", k);
		else
			t->workers[k].id = k + 1; /* marks a started thread for the join */
	return rc;
}

static void teardown(struct trainer *t)
{
	if (t->workers) {
		ring_close(&t->full);
		for (int k = 0; k < t->threads; k++)
			if (t->workers[k].id)
				pthread_join(t->workers[k].thread, NULL);
	}
	team_stop(t->team);
	workers_release(t);
	loader_release(&t->loader);
	store_index_release(&t->index);
	store_reader_end(t->index_reader);
	for (uint32_t i = 0; t->batches && i < t->n_batches; i++)
		batch_release(&t->batches[i]);
	free(t->batches);
	ring_release(&t->full);
	ring_release(&t->free);
	if (t->metrics)
		fclose(t->metrics);
	if (t->model.ops)
		model_release(&t->model);
	model_data_release(&t->data);
	free(t->rows);
	free(t->keys);
	free(t->init_from);
	store_close(t->st);
}

/*
 * Publishes a checkpoint of the state (workers idle); logs where it went.
 * final: the run's closing checkpoint (the best epoch's parameters).
 */
static int checkpoint(struct trainer *t, int epoch, uint64_t next_batch, const char *metrics,
		      int final)
{
	struct snapshot_state st = {
		.epoch = epoch,
		.next_batch = next_batch,
		.step = atomic_load_explicit(&t->step, memory_order_relaxed),
		.samples = t->samples,
		.best_auc = t->sel.lower ? 0 : t->best,
		.best_rmse = t->sel.lower ? t->best : 0,
		.best_step = t->best_step,
		.best_epoch = t->best_epoch,
		.bad_epochs = t->bad_epochs,
		.final = final,
		.init_from = t->init_from,
	};
	char path[4096];
	int rc;

	snprintf(st.early_stop_metric, sizeof(st.early_stop_metric), "%s", t->sel.name);

	if (t->o->loader_only)
		return 0;
	rc = snapshot_save(t->o, &t->model, &st, metrics, path, sizeof(path));
	if (!rc)
		log_info("checkpoint %s (epoch %d, batch %llu, step %llu%s)", path, epoch,
			 (unsigned long long)next_batch, (unsigned long long)st.step,
			 final ? ", the best epoch's parameters" : "");
	return rc;
}

/* The test metrics as a JSON object for the checkpoint's metadata. */
static void metrics_json(const struct trainer *t, char *buf, size_t cap,
			 const struct eval_result *valid, const struct eval_result *test)
{
	if (t->model.ops->target == TARGET_RATING)
		snprintf(buf, cap, "{\"valid_rmse\":%.6f,\"test_rmse\":%.6f}",
			 isfinite(valid->rmse) ? valid->rmse : 0,
			 isfinite(test->rmse) ? test->rmse : 0);
	else
		snprintf(buf, cap, "{\"valid_auc\":%.6f,\"test_auc\":%.6f}",
			 isfinite(valid->auc) ? valid->auc : 0,
			 isfinite(test->auc) ? test->auc : 0);
}

/* t's evaluator: its batch size, and ranking as the options ask. */
static int trainer_evaluator(struct trainer *t, struct evaluator *ev)
{
	int rc = evaluator_init(ev, t->st, &t->model, t->o->batch);

	ev->rank = t->o->rank_metrics;
	ev->exclude_train = t->o->rank_exclude;
	ev->rank_users = t->o->rank_users;
	return rc;
}

/* One epoch from batch `first`, in segments between checkpoints. */
static int train_epoch(struct trainer *t, int epoch, uint64_t first, double *seconds, double *loss,
		       int *stopped)
{
	uint64_t nb = loader_epoch_batches(&t->loader), steps = t->o->ckpt_every_steps;
	uint64_t samples = 0;
	double t_ckpt = now_seconds();
	struct progress bar;
	int rc = 0;

	for (int k = 0; k < t->threads; k++) {
		memset(t->workers[k].loss_sum, 0, sizeof(t->workers[k].loss_sum));
		t->workers[k].samples = 0;
	}
	progress_begin(&bar, "epoch", t->info.count[0]);
	while (!rc && first < nb) {
		uint64_t end = steps ? first + steps : nb, next = first;
		rc = run_segment(t, epoch, first, end, &next, seconds, t_ckpt, &bar);
		first = next;
		if (rc)
			break;
		if (train_stop) {
			*stopped = 1;
			notify_stopping();
			break;
		}
		if (first < nb && (steps || t->o->ckpt_every_secs > 0)) {
			rc = checkpoint(t, epoch, first, NULL, 0);
			t_ckpt = now_seconds();
		}
	}
	progress_end(&bar);
	for (int k = 0; k < t->threads; k++)
		samples += t->workers[k].samples;
	for (int i = 0; i < MODEL_MAX_LOSSES; i++) {
		double sum = 0;
		for (int k = 0; k < t->threads; k++)
			sum += t->workers[k].loss_sum[i];
		loss[i] = samples ? sum / (double)samples : NAN;
	}
	t->samples += samples;
	if (!rc && *stopped)
		rc = checkpoint(t, epoch, first, NULL, 0); /* the last checkpoint of a clean stop */
	return rc;
}

/* What m reads beyond records (model_data_load) from st's train split, attached to m. */
static int predict_data(const struct train_opts *o, struct store *st, struct model *m,
			struct model_data *data)
{
	struct store_reader *r = NULL;
	struct store_index ix = {0};
	int rc;

	if (!m->ops->wants || !m->ops->wants(m))
		return 0;
	rc = store_reader_begin(st, &r);
	if (!rc)
		rc = store_index_build(r, STORE_TRAIN, &ix);
	if (!rc) {
		const struct batch_source src = {
			.ix = &ix, .n = ix.n, .store = o->data, .db = "train"};
		rc = model_data_load(data, m, &src, st); /* copies: the index may go */
	}
	store_index_release(&ix);
	store_reader_end(r);
	if (!rc)
		rc = model_attach(m, data);
	return rc;
}

/* --predict's checkpoint: the newest valid one of o->out, which must exist. */
static int predict_checkpoint(const struct train_opts *o, char *path, size_t cap)
{
	static const char hint[] = "--out names the directory of a training run";
	struct stat st;
	int rc;

	if (stat(o->out, &st) < 0) {
		if (errno == ENOENT)
			return hr_error(HR_ENOENT, "--predict: '%s' does not exist (%s)", o->out,
					hint);
		return hr_error(HR_EIO, "--predict: cannot read '%s': %s", o->out, strerror(errno));
	}
	if (!S_ISDIR(st.st_mode))
		return hr_error(HR_ENOENT, "--predict: '%s' is not a directory (%s)", o->out, hint);
	rc = ckpt_latest(o->out, path, cap);
	if (rc == HR_ENOENT) /* an empty directory: "no checkpoint in 'DIR'" */
		return hr_error(rc, "--predict: %s (%s)", hr_errmsg(), hint);
	return rc;
}

/* Prints the logits of the first n records of db as JSON lines. */
static int predict_print(const struct model *m, struct store *st, enum store_db db, uint64_t n,
			 struct batch *b, float *ws, float *logits)
{
	struct store_reader *r = NULL;
	struct store_index ix = {0};
	int rc = model_score_prepare(m);

	if (!rc)
		rc = store_reader_begin(st, &r);
	if (!rc)
		rc = store_index_build(r, db, &ix);
	if (n > ix.n)
		n = ix.n;
	const struct batch_source src = {
		.ix = &ix,
		.n = n,
		.store = store_path(st),
		.db = store_db_name(db),
	};
	for (uint64_t first = 0; !rc && first < n; first += b->n) {
		uint64_t left = n - first;
		rc = batch_fill(b, &src, first, left < b->cap ? (uint32_t)left : b->cap);
		if (rc)
			break;
		m->ops->forward(m, ws, b, logits, 0);
		/* A line is valid JSON or not written: NaN is no JSON number. */
		for (uint32_t i = 0; !rc && i < b->n; i++)
			if (!isfinite(logits[i]))
				rc = hr_error(
					HR_EFORMAT,
					"--predict: the logit of %s record %llu is not finite "
					"(%g)",
					store_db_name(db), (unsigned long long)(first + i),
					(double)logits[i]);
		for (uint32_t i = 0; !rc && i < b->n; i++)
			printf("{\"split\":\"%s\",\"key\":%llu,\"user_raw\":%u,\"item_raw\":%u,"
			       "\"label\":%.0f,\"logit\":%.9g}\n",
			       store_db_name(db), (unsigned long long)(first + i), b->user_raw[i],
			       b->item_raw[i], (double)b->label[i], (double)logits[i]);
	}
	store_index_release(&ix);
	store_reader_end(r);
	return rc;
}

/*
 * --predict: the logits of the latest checkpoint of o->out for the first
 * o->predict_n records of a split.  The checkpoint names the model and its
 * shape; nothing is trained or written (no directory, metrics, checkpoint).
 */
static int predict(const struct train_opts *o)
{
	struct model_data data = {0};
	enum store_db db = !strcmp(o->predict, "valid") ? STORE_VALID :
			   !strcmp(o->predict, "test")  ? STORE_TEST :
							  STORE_TRAIN; /* config_check'ed */
	struct store *st = NULL;
	struct store_info info;
	struct model m = {0};
	struct batch b = {0};
	float *ws = NULL, *logits = NULL;
	char path[4096];
	int rc = predict_checkpoint(o, path, sizeof(path));

	if (!rc)
		rc = store_open(&st, o->data);
	if (!rc)
		rc = store_info_load(st, &info);
	if (!rc)
		rc = snapshot_load_model(o, &info, path, &m);
	if (rc)
		goto fail;
	log_info("predicting with %s (model %s)", path, m.ops->name);
	rc = predict_data(o, st, &m, &data);
	if (rc)
		goto fail;
	size_t wsn = m.ops->workspace_floats(&m, o->batch);
	rc = batch_alloc(&b, o->batch, info.hist_len, info.n_dense);
	if (rc)
		goto fail;
	batch_set_decode(&b, model_decode_flags(&m));
	ws = aligned_alloc(64, ((wsn ? wsn : 1) * sizeof(float) + 63) & ~(size_t)63);
	logits = malloc(o->batch * sizeof(float));
	if (!ws || !logits) {
		rc = hr_error(HR_ENOMEM, "out of memory for a batch of %u", o->batch);
		goto fail;
	}
	rc = predict_print(&m, st, db, o->predict_n, &b, ws, logits);
fail:
	free(logits);
	free(ws);
	batch_release(&b);
	if (m.ops)
		model_release(&m);
	model_data_release(&data);
	store_close(st);
	return rc;
}

/*
 * A trainer on the heap: it embeds the rings, which need 64-byte alignment.
 * pretrain: initialise the model from o->init_from (a run's first trainer;
 * --follow's next one carries the parameters over instead).
 */
static int trainer_open(const struct train_opts *o, int pretrain, struct trainer **out)
{
	struct trainer *t = aligned_alloc(64, (sizeof(*t) + 63) & ~(size_t)63);
	int rc;

	*out = NULL;
	if (!t)
		return hr_error(HR_ENOMEM, "out of memory");
	memset(t, 0, sizeof(*t));
	t->o = o;
	t->pretrain = pretrain;
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->cv, NULL);
	rc = setup(t);
	*out = t;
	return rc;
}

static void trainer_close(struct trainer *t)
{
	if (!t)
		return;
	teardown(t);
	pthread_mutex_destroy(&t->mu);
	pthread_cond_destroy(&t->cv);
	free(t);
}

/* Early stopping applies: a patience, a valid split to watch, and no --follow. */
static int early_stopping(const struct trainer *t)
{
	const struct train_opts *o = t->o;

	return o->early_stop > 0 && t->info.count[1] > 0 && !o->follow && !o->loader_only;
}

/* Whether the run is over after `epoch`: the last of `to`, or patience exhausted. */
static int run_over(const struct trainer *t, int epoch, int to)
{
	return epoch >= to || (early_stopping(t) && t->bad_epochs >= t->o->early_stop);
}

/*
 * Ends an early-stopping run after `epoch` (its lines written, *valid and
 * *test its results): restores the best epoch's parameters, writes the
 * closing valid and test lines ("final":true, "best_epoch":K; train_loss
 * and speed null: nothing was trained for them) and publishes the closing
 * checkpoint in place of the epoch's, so that `latest`, `--predict` and
 * `bin/ckpt watch` all see the model the closing line describes.
 *
 * The best parameters are read back from the best epoch's checkpoint,
 * which retention keeps (best_step), rather than copied in memory after
 * every improvement: no second copy of the tables and their optimizer
 * state, and the same path works after a restart, when a copy in memory
 * would be gone.  The closing lines come from evaluating the restored
 * model (evaluation is single-threaded and deterministic, so they equal
 * the best epoch's lines), which proves the restore.  Lines first, then
 * the checkpoint: a kill before the checkpoint is published leaves the
 * previous one, and the restart drops this epoch's lines (closing ones
 * included: they carry this epoch's number) and does the epoch again.
 */
static int finish(struct trainer *t, struct evaluator *ev, int epoch, struct eval_result *valid,
		  struct eval_result *test)
{
	char path[4096], mj[256];
	int rc = 0;

	if (t->best_step && t->best_epoch != epoch) {
		rc = snapshot_restore(t->o, &t->model, t->best_step, path, sizeof(path));
		if (rc)
			return hr_error_prefix(
				rc,
				"cannot restore the parameters of epoch %d, the best "
				"on valid (--early-stop 0 keeps the last epoch's)",
				t->best_epoch);
		log_info("restored the parameters of epoch %d (valid %s %.4f) from %s",
			 t->best_epoch, selection_name(t), selection_best(t), path);
		rc = evaluate(ev, STORE_VALID, valid);
		if (!rc && t->info.count[2])
			rc = evaluate(ev, STORE_TEST, test);
		if (rc)
			return rc;
	}
	emit(t, "valid", epoch, valid, NULL, NAN, !t->info.count[2], t->best_epoch);
	if (t->info.count[2])
		emit(t, "test", epoch, test, NULL, NAN, 1, t->best_epoch);
	metrics_json(t, mj, sizeof(mj), valid, test);
	return checkpoint(t, epoch, loader_epoch_batches(&t->loader), mj, 1);
}

/* Epochs [from, to] of t's records, the first from batch `first`. */
static int run_epochs(struct trainer *t, struct evaluator *ev, int from, uint64_t first_batch,
		      int to, int *stopped)
{
	const struct train_opts *o = t->o;
	struct eval_result valid = {0}, test = {0};
	char mj[256];
	int rc = 0, es = early_stopping(t);

	for (int epoch = from; !rc && !*stopped && epoch <= to; epoch++) {
		double secs = 0, loss[MODEL_MAX_LOSSES], rate;
		uint64_t first = epoch == from ? first_batch : 0;
		rc = train_epoch(t, epoch, first, &secs, loss, stopped);
		if (rc || *stopped)
			break;
		rate = secs > 0 ? (double)t->loader.n *
					  (1.0 - (double)first /
							 (double)loader_epoch_batches(&t->loader)) /
					  secs :
				  0;
		if (o->loader_only) {
			printf("{\"bench\":\"loader\",\"epoch\":%d,\"records\":%llu,\"seconds\":%.3f,"
			       "\"records_per_s\":%.0f,\"loaders\":%d,\"batch\":%u}\n",
			       epoch, (unsigned long long)t->loader.n, secs, rate, o->loaders,
			       o->batch);
			continue;
		}
		if (t->info.count[1]) {
			rc = evaluate(ev, STORE_VALID, &valid);
			if (!rc)
				emit(t, "valid", epoch, &valid, loss, rate, 0, 0);
		}
		if (!rc && t->info.count[2]) {
			rc = evaluate(ev, STORE_TEST, &test);
			if (!rc)
				emit(t, "test", epoch, &test, loss, rate, !es && epoch == to, 0);
		}
		if (rc)
			break;
		log_info("epoch %d: train loss %.4f, %.0f samples/s, valid %s %.4f, test %s %.4f",
			 epoch, loss[0], rate, selection_name(t),
			 t->info.count[1] ? selection_value(t, &valid) : NAN, selection_name(t),
			 t->info.count[2] ? selection_value(t, &test) : NAN);
		notify_status(
			"epoch %d/%d done, step %llu, %.0f samples/s, valid %s %.4f", epoch, to,
			(unsigned long long)atomic_load_explicit(&t->step, memory_order_relaxed),
			rate, selection_name(t),
			t->info.count[1] ? selection_value(t, &valid) : NAN);
		notify_watchdog();
		metrics_json(t, mj, sizeof(mj), &valid, &test);
		/* A valid metric that is undefined (AUC on an implicit store, whose
		 * valid split holds only positives) selects nothing: no epoch is
		 * better or worse, as without a valid split. */
		int judged = t->info.count[1] && isfinite(selection_value(t, &valid));
		if (judged && improves(t, &valid)) {
			t->best = selection_value(t, &valid);
			t->best_step = atomic_load_explicit(&t->step, memory_order_relaxed);
			t->best_epoch = epoch;
			t->bad_epochs = 0;
		} else if (judged) {
			t->bad_epochs++;
		}
		if (es && run_over(t, epoch, to)) {
			if (epoch < to)
				log_info(
					"early stop after epoch %d: no better valid %s for %d epochs "
					"(best %.4f at epoch %d)",
					epoch, selection_name(t), t->bad_epochs, selection_best(t),
					t->best_epoch);
			rc = finish(t, ev, epoch, &valid, &test);
			break;
		}
		/* The epoch is done: the checkpoint resumes at the next one. */
		rc = checkpoint(t, epoch, loader_epoch_batches(&t->loader), mj, 0);
	}
	return rc;
}

/*
 * One trainer per output directory: an exclusive flock(2) on OUT/lock,
 * held until the process exits (the kernel drops it even after kill -9),
 * with the holder's pid in the file for the message.  Readers (bin/ckpt,
 * --predict) take no lock.  Returns the descriptor to keep open, or a
 * negative HR_E* code: HR_EEXIST when another process holds the lock.
 */
static int lock_out(const char *out)
{
	char path[4096], holder[32] = "";
	struct stat st;
	ssize_t n;
	int fd;

	if (snprintf(path, sizeof(path), "%s/lock", out) >= (int)sizeof(path))
		return hr_error(HR_EINVAL, "output path too long: '%s'", out);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0644);
	if (fd < 0)
		return hr_error(HR_EIO, "cannot open '%s': %s", path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return hr_error(HR_EIO, "'%s' is not a regular file", path);
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		n = pread(fd, holder, sizeof(holder) - 1, 0);
		holder[n > 0 ? n : 0] = '\0';
		holder[strcspn(holder, "\n")] = '\0';
		close(fd);
		if (e == EWOULDBLOCK)
			return hr_error(HR_EEXIST,
					"'%s' is in use by another trainer (pid %s): one trainer "
					"per --out; stop that one or choose another --out",
					out, holder[0] ? holder : "unknown");
		return hr_error(HR_EIO, "cannot lock '%s': %s", path, strerror(e));
	}
	n = snprintf(holder, sizeof(holder), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, holder, (size_t)n, 0) != n)
		log_warn("cannot write the pid into '%s': %s", path, strerror(errno));
	return fd;
}

/* Takes over a loaded checkpoint's step and position (st), checked against this store. */
static int resume_position(struct trainer *t, struct snapshot_state *st, const char *path)
{
	uint64_t nb = loader_epoch_batches(&t->loader);

	if (st->next_batch > nb)
		return hr_error(HR_EFORMAT,
				"checkpoint '%s': next_batch %llu is beyond the %llu batches of an "
				"epoch of '%s' at batch %u",
				path, (unsigned long long)st->next_batch, (unsigned long long)nb,
				t->o->data, t->o->batch);
	if (st->next_batch == nb) { /* the epoch was finished */
		st->epoch++;
		st->next_batch = 0;
	}
	atomic_store_explicit(&t->step, st->step, memory_order_relaxed);
	t->samples = st->samples;
	const char *was = st->early_stop_metric[0]              ? st->early_stop_metric :
			  t->model.ops->target == TARGET_RATING ? "rmse" :
								  "auc"; /* before the option */
	if (strcmp(was, t->sel.name)) {
		/* another metric's best says nothing about this one's: start afresh */
		log_warn("%s selected on valid %s, this run on %s: early stopping starts afresh",
			 path, was, t->sel.name);
	} else {
		t->best = t->sel.lower ? st->best_rmse : st->best_auc;
		t->best_step = st->best_step;
		t->best_epoch = st->best_epoch;
		t->bad_epochs = st->bad_epochs;
	}
	log_info("resuming from %s: epoch %d, batch %llu, step %llu", path, st->epoch,
		 (unsigned long long)st->next_batch, (unsigned long long)st->step);
	return 0;
}

/* Device and inode of the store directory: a new ingest renames a new one in. */
static int store_identity(const char *path, dev_t *dev, ino_t *ino)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -1;
	*dev = st.st_dev;
	*ino = st.st_ino;
	return 0;
}

/* --follow: sleeps until the store at o->data is replaced (1) or a signal (0). */
static int wait_for_store(const struct train_opts *o, dev_t dev, ino_t ino)
{
	double next = now_seconds() + o->follow_poll;

	notify_status("waiting for a new store at %s", o->data);
	log_info("waiting for a new store at '%s' (checked every %g s)", o->data, o->follow_poll);
	while (!train_stop) {
		dev_t d;
		ino_t i;
		usleep(o->follow_poll < 0.1 ? (useconds_t)(o->follow_poll * 1e6) : 100000);
		notify_watchdog();
		if (now_seconds() < next)
			continue;
		next = now_seconds() + o->follow_poll;
		if (store_identity(o->data, &d, &i) == 0 && (d != dev || i != ino))
			return 1;
	}
	return 0;
}

/* The first train key whose timestamp is after ts (keys are in time order). */
static int first_key_after(struct trainer *t, uint32_t ts, uint64_t *key)
{
	uint64_t lo = 0, hi = t->index.n;
	struct batch *b = &t->batches[0];
	int rc = 0;

	while (!rc && lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		rc = batch_set_row(b, 0, t->index.rec[mid].data, t->index.rec[mid].len);
		if (!rc && b->ts[0] <= ts)
			lo = mid + 1;
		else
			hi = mid;
	}
	*key = lo;
	return rc;
}

/*
 * --follow: a new store was published at o->data.  Opens it with a model
 * built for it, carries the trained parameters over (by raw id), and limits
 * training to its train records newer than the old store's.
 */
static int switch_store(struct trainer **tp, struct evaluator *ev)
{
	struct trainer *old = *tp, *t;
	uint64_t k0 = 0;
	int rc = trainer_open(old->o, 0, &t);

	if (!rc)
		rc = model_carry_over(&t->model, t->st, &old->model, old->st);
	if (!rc)
		rc = metrics_open(t, 0);
	if (!rc)
		rc = first_key_after(t, old->info.train_end_ts, &k0);
	if (rc) {
		hr_error_prefix(rc, "new store at '%s'", old->o->data);
		trainer_close(t);
		return rc;
	}
	loader_set_range(&t->loader, k0, t->index.n - k0);
	atomic_store_explicit(&t->step, atomic_load_explicit(&old->step, memory_order_relaxed),
			      memory_order_relaxed);
	t->samples = old->samples;
	log_info("new store at '%s' (schema %s): %llu train records, %llu after %u; "
		 "the model is carried over",
		 old->o->data, t->info.schema_hash, (unsigned long long)t->index.n,
		 (unsigned long long)(t->index.n - k0), old->info.train_end_ts);
	t->init_from = old->init_from; /* the run's provenance goes on */
	old->init_from = NULL;
	evaluator_release(ev);
	trainer_close(old);
	*tp = t;
	return trainer_evaluator(t, ev);
}

int trainer_run(const struct train_opts *o)
{
	struct trainer *t = NULL;
	struct evaluator ev = {0};
	struct snapshot_state st = {.epoch = 1};
	char path[4096];
	int rc, found = 0, stopped = 0, last, lock = -1;
	dev_t dev = 0;
	ino_t ino = 0;

	if (o->predict)
		return predict(o);
	store_identity(o->data, &dev, &ino);
	rc = trainer_open(o, 1, &t);
	/* Before anything in OUT is read or written (trainer_open made it). */
	if (!rc) {
		lock = lock_out(o->out);
		rc = lock < 0 ? lock : 0;
	}
	if (!rc && o->resume && !o->loader_only)
		rc = snapshot_resume(o, &t->model, &st, &found, path, sizeof(path));
	if (!rc && found && o->init_from)
		rc = pretrain_check_resume(o, st.init_from, path);
	if (!rc && found) { /* the run's record, from its checkpoint */
		free(t->init_from);
		t->init_from = st.init_from;
		st.init_from = NULL;
	}
	if (!rc && found)
		rc = resume_position(t, &st, path);
	/* A run that starts from other checkpoints publishes its starting point
	 * as step 0: the record of what it started from, and what a restart
	 * before the first epoch's checkpoint resumes from. */
	if (!rc && !found && t->init_from)
		rc = checkpoint(t, 1, 0, NULL, 0);
	if (!rc && !o->loader_only)
		rc = metrics_open(t, st.epoch);
	if (!rc)
		rc = trainer_evaluator(t, &ev);
	if (!rc) {
		notify_ready();
		notify_status("training %s from epoch %d, step %llu", o->model, st.epoch,
			      (unsigned long long)atomic_load_explicit(&t->step,
								       memory_order_relaxed));
		log_info("model %s: %zu parameters (%zu dense); %llu train, %llu valid, %llu test "
			 "records; %d workers, batch %u, %s lr %g",
			 o->model, params_count(&t->model.params), t->model.params.dense_n,
			 (unsigned long long)t->info.count[0], (unsigned long long)t->info.count[1],
			 (unsigned long long)t->info.count[2], t->threads, o->batch,
			 optim_name(o->optim.kind), (double)o->optim.lr);
		if (found && st.next_batch == 0 && early_stopping(t) &&
		    t->bad_epochs >= o->early_stop && st.epoch <= o->epochs)
			log_info("nothing to train: the run in '%s' stopped early after epoch %d, "
				 "the valid %s not better for %d epochs since epoch %d (raise "
				 "--early-stop to continue)",
				 o->out, st.epoch - 1, selection_name(t), t->bad_epochs,
				 t->best_epoch);
		else
			rc = run_epochs(t, &ev, st.epoch, st.next_batch, o->epochs, &stopped);
	}
	last = st.epoch > o->epochs ? st.epoch - 1 : o->epochs;
	if (!rc && !stopped && found && st.epoch > o->epochs && !o->follow)
		log_info("nothing to train: the checkpoint in '%s' has finished epoch %d of %d "
			 "(raise --epochs to continue)",
			 o->out, st.epoch - 1, o->epochs);
	while (!rc && !stopped && o->follow && !o->loader_only) {
		if (!wait_for_store(o, dev, ino)) {
			stopped = 1; /* a signal while waiting: every epoch is checkpointed */
			break;
		}
		store_identity(o->data, &dev, &ino);
		rc = switch_store(&t, &ev);
		if (!rc && t->loader.n == 0)
			log_info("the new store adds no train records; waiting again");
		else if (!rc) {
			rc = run_epochs(t, &ev, last + 1, 0, last + o->epochs, &stopped);
			last += o->epochs;
		}
	}
	if (!rc && stopped)
		log_info("stopped by a signal; the final checkpoint is written");
	evaluator_release(&ev);
	trainer_close(t);
	free(st.init_from);
	if (lock >= 0)
		close(lock);
	return rc;
}
