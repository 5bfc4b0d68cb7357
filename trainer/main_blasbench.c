/*
 * bin/blasbench - the sgemm peak of this machine, single-threaded, as one
 * JSON line: the reference against which make bench judges a model's
 * achieved GFLOP/s.  Uses the same kernel choice as bin/trainer.  See --help.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <string.h>
#include <time.h>

#include "common/err.h"
#include "common/log.h"
#include "common/npy.h"
#include "common/parse.h"
#include "common/progress.h"
#include "common/rank.h"
#include "common/rng.h"
#include "models/interact.h"
#include "models/nn/blas.h"
#include "models/nn/nn.h"
#include "store/store.h"

#define EXIT_USAGE 64
#define EXIT_SOFTWARE 70
#define SECONDS_MAX 3600.0

static void usage(FILE *out)
{
	fputs("usage: blasbench [--seconds S]\n"
	      "       blasbench [S]\n"
	      "       blasbench retrieval [--store STORE] [options]  (see retrieval --help)\n"
	      "\n"
	      "Measures the single-threaded sgemm throughput of this machine with the\n"
	      "OpenBLAS kernel bin/trainer would use (chosen and checked against a\n"
	      "reference the same way), on two shapes: square 512 x 512 x 512, and the\n"
	      "two-tower layer at batch 256, (256 x 300) x (300 x 300).  make bench\n"
	      "judges a model's achieved GFLOP/s against it.\n"
	      "\n"
	      "options:\n"
	      "  -s, --seconds S    time spent on each shape, 0 < S <= 3600 (default 1);\n"
	      "                     also accepted as the only argument\n"
	      "  -h, --help         this help\n"
	      "\n"
	      "output: one JSON line on stdout, e.g.\n"
	      "  {\"bench\":\"sgemm\",\"core\":\"Haswell\",\"threads\":1,\"gflops_512\":98.1,\n"
	      "   \"gflops_256x300x300\":85.3}\n"
	      "core is the OpenBLAS kernel in use; GFLOP/s count 2 M N K flops per call.\n"
	      "\n"
	      "exit status: 0 ok, 64 bad usage, 70 the kernel failed its check or the\n"
	      "matrices could not be allocated.\n",
	      out);
}

static int usage_error(const char *what, const char *arg)
{
	log_error("%s '%s' (see --help)", what, arg);
	return EXIT_USAGE;
}

static int parse_seconds(const char *s, double *out)
{
	double v;

	if (parse_f64_quiet(s, &v) || v <= 0 || v > SECONDS_MAX)
		return -1;
	*out = v;
	return 0;
}

/* ---- retrieval: full-catalogue top-K for every user, beside its sgemm roofline ---- */

static void retrieval_usage(FILE *out)
{
	fputs("usage: blasbench retrieval [--store STORE] [--users N] [--items N] [--dim D]\n"
	      "                           [-k K] [--block B] [--seconds S] [--seed N] [--save DIR]\n"
	      "\n"
	      "Times what a two-tower retrieval does for a whole user base, one thread: for\n"
	      "each block of B users, one sgemm of their vectors (B x D) against the item\n"
	      "matrix (D x items), then per user the top K of the catalogue without sorting\n"
	      "it (common/rank.h), leaving out the padding item and, with --store, the\n"
	      "user's train items.  Beside it, the same sgemm calls alone: the roofline the\n"
	      "scoring cannot beat.  Vectors are N(0, 1) (the cost does not depend on\n"
	      "their values); with --store the users (every user the store encodes) and\n"
	      "the items are the store's and the exclusions its train records, as\n"
	      "bin/trainer --rank-metrics ranks them.  Each pass covers every user; the\n"
	      "best of the passes run in S seconds (at least one) counts, timed in this\n"
	      "thread's CPU seconds (one thread, OpenBLAS single-threaded: a loaded\n"
	      "machine slows both measures alike).\n"
	      "\n"
	      "options:\n"
	      "  --store STORE   shapes and exclusions from a store (bin/ingest)\n"
	      "  --users N       users without --store (default 6040)\n"
	      "  --items N       items without --store (default 3706)\n"
	      "  --dim D         vector width (default 16: make bench's twotower)\n"
	      "  -k K            top K, 1..100 (default 100)\n"
	      "  --block B       users per sgemm (default 256)\n"
	      "  --seconds S     time per measurement (default 2)\n"
	      "  --seed N        the vectors' seed (default 1)\n"
	      "  --save DIR      write U.npy, V.npy, skip_off.npy, skip.npy and topk.npy (the\n"
	      "                  answer) into DIR for bench/torch_retrieval.py\n"
	      "\n"
	      "output: one JSON line: users_per_s (scoring and top K), sgemm_users_per_s (the\n"
	      "sgemm alone), roofline_share (their ratio), sgemm_gflops, excluded (mean\n"
	      "items left out per user).\n"
	      "exit status: 0 ok, 64 bad usage, 65/66 a bad or missing store, 70 out of\n"
	      "memory or a failed kernel check, 74 --save could not write.\n",
	      out);
}

/* Every user code's train items (ascending) after the padding id 0, as CSR. */
static int store_skips(const char *path, uint32_t *n_users, uint32_t *n_items, uint64_t **off,
		       uint32_t **skip)
{
	struct store *st = NULL;
	struct store_reader *r = NULL;
	struct store_index ix = {0};
	struct interactions x = {0};
	int rc = store_open(&st, path);

	if (!rc)
		rc = store_reader_begin(st, &r);
	if (!rc)
		rc = store_index_build(r, STORE_TRAIN, &ix);
	const struct batch_source src = {.ix = &ix, .n = ix.n, .store = path, .db = "train"};
	if (!rc)
		rc = interactions_load(&x, &src, 0);
	if (!rc && x.n_users < 2)
		rc = hr_error(HR_EFORMAT, "store '%s' has no train users", path);
	if (!rc) {
		*n_users = x.n_users - 1; /* codes 1 .. n_users - 1: 0 is the padding */
		*n_items = x.n_items;
		*off = malloc(((size_t)x.n_users + 1) * sizeof(uint64_t));
		*skip = malloc(((size_t)x.n + x.n_users + 1) * sizeof(uint32_t));
		if (!*off || !*skip)
			rc = hr_error(HR_ENOMEM, "out of memory for %u users' exclusions",
				      x.n_users);
	}
	uint64_t n = 0;
	for (uint32_t u = 1; !rc && u < x.n_users; u++) {
		(*off)[u - 1] = n;
		(*skip)[n++] = 0;
		for (uint64_t e = x.user_off[u]; e < x.user_off[u + 1]; e++)
			(*skip)[n++] = x.user_item[e];
	}
	if (!rc)
		(*off)[x.n_users - 1] = n;
	interactions_release(&x);
	store_index_release(&ix);
	if (r)
		store_reader_end(r);
	store_close(st);
	return rc;
}

struct retrieval {
	uint32_t users, items, dim, k, block;
	const float *U, *V;
	const uint64_t *off;
	const uint32_t *skip;
	float *S, *heap_s;
	uint32_t *heap_i, *top;
};

/* This thread's CPU seconds: what the one-thread passes cost, whatever else the machine runs. */
static double thread_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* One pass over every user: sgemm per block, then (full) each user's top K.  Its CPU seconds. */
static double retrieval_pass(struct retrieval *t, int full)
{
	double t0 = thread_seconds();

	for (uint32_t u0 = 0; u0 < t->users; u0 += t->block) {
		uint32_t n = t->users - u0 < t->block ? t->users - u0 : t->block;
		nn_sgemm(false, true, (int)n, (int)t->items, (int)t->dim, 1.0f,
			 t->U + (size_t)u0 * t->dim, (int)t->dim, t->V, (int)t->dim, 0.0f, t->S,
			 (int)t->items);
		for (uint32_t i = 0; full && i < n; i++) {
			uint32_t u = u0 + i;
			rank_topk(t->S + (size_t)i * t->items, t->items, t->skip + t->off[u],
				  (uint32_t)(t->off[u + 1] - t->off[u]), t->k,
				  t->top + (size_t)u * t->k, t->heap_s, t->heap_i);
		}
	}
	return thread_seconds() - t0;
}

static double best_pass(struct retrieval *t, int full, double seconds)
{
	double best = retrieval_pass(t, full), start = now_seconds();

	while (now_seconds() - start < seconds) {
		double s = retrieval_pass(t, full);
		if (s < best)
			best = s;
	}
	return best;
}

static int save_inputs(const char *dir, const struct retrieval *t)
{
	char p[4096];
	int rc = 0;
	const struct {
		const char *name;
		enum npy_dtype type;
		const void *data;
		uint64_t rows, cols;
	} f[] = {
		{"U", NPY_F32, t->U, t->users, t->dim},
		{"V", NPY_F32, t->V, t->items, t->dim},
		{"skip_off", NPY_U64, t->off, 1, (uint64_t)t->users + 1},
		{"skip", NPY_U32, t->skip, 1, t->off[t->users]},
		{"topk", NPY_U32, t->top, t->users, t->k},
	};
	for (size_t i = 0; !rc && i < sizeof(f) / sizeof(f[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s.npy", dir, f[i].name);
		rc = npy_write(p, f[i].type, f[i].data, f[i].rows, f[i].cols);
	}
	return rc;
}

static int parse_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
	uint64_t v;

	if (parse_u64_quiet(s, &v) || v < lo || v > hi)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static int retrieval_main(int argc, char **argv, char **full_argv)
{
	static const struct option longopts[] = {
		{"store", required_argument, NULL, 'S'}, {"users", required_argument, NULL, 'u'},
		{"items", required_argument, NULL, 'i'}, {"dim", required_argument, NULL, 'd'},
		{"block", required_argument, NULL, 'b'}, {"seconds", required_argument, NULL, 's'},
		{"seed", required_argument, NULL, 'r'},  {"save", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0},
	};
	struct retrieval t = {.users = 6040, .items = 3706, .dim = 16, .k = 100, .block = 256};
	const char *store = NULL, *save = NULL;
	double seconds = 2;
	uint64_t seed = 1;
	uint64_t *off = NULL;
	uint32_t *skip = NULL;
	int c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "k:h", longopts, NULL)) != -1) {
		int bad = 0;
		switch (c) {
		case 'S': store = optarg; break;
		case 'o': save = optarg; break;
		case 'u': bad = parse_u32(optarg, 1, 1u << 24, &t.users); break;
		case 'i': bad = parse_u32(optarg, 2, 1u << 24, &t.items); break;
		case 'd': bad = parse_u32(optarg, 1, 4096, &t.dim); break;
		case 'k': bad = parse_u32(optarg, 1, RANK_KMAX, &t.k); break;
		case 'b': bad = parse_u32(optarg, 1, 65536, &t.block); break;
		case 's': bad = parse_seconds(optarg, &seconds); break;
		case 'r': bad = parse_u64_quiet(optarg, &seed); break;
		case 'h': retrieval_usage(stdout); return 0;
		default: log_error("bad option (see retrieval --help)"); return EXIT_USAGE;
		}
		if (bad)
			return usage_error("bad value for an option (see retrieval --help):",
					   optarg);
	}
	if (optind < argc)
		return usage_error("unexpected argument", argv[optind]);
	rc = nn_blas_choose_kernel(full_argv);
	if (rc) {
		log_error("%s", hr_errmsg());
		return EXIT_SOFTWARE;
	}
	nn_blas_single_thread();
	if (store) {
		rc = store_skips(store, &t.users, &t.items, &off, &skip);
		if (rc) {
			log_error("%s", hr_errmsg());
			return rc == HR_ENOENT ? 66 : rc == HR_ENOMEM ? EXIT_SOFTWARE : 65;
		}
	} else {
		off = malloc(((size_t)t.users + 1) * sizeof(uint64_t));
		skip = malloc((size_t)t.users * sizeof(uint32_t));
		for (uint32_t u = 0; off && skip && u <= t.users; u++) {
			off[u] = u;
			if (u < t.users)
				skip[u] = 0;
		}
	}
	float *U = malloc(((size_t)t.users * t.dim + 1) * sizeof(float));
	float *V = malloc(((size_t)t.items * t.dim + 1) * sizeof(float));
	t.S = malloc((size_t)t.block * t.items * sizeof(float));
	t.top = calloc((size_t)t.users * t.k, sizeof(uint32_t));
	t.heap_s = malloc(t.k * sizeof(float));
	t.heap_i = malloc(t.k * sizeof(uint32_t));
	if (!off || !skip || !U || !V || !t.S || !t.top || !t.heap_s || !t.heap_i) {
		log_error("out of memory for %u users x %u items", t.users, t.items);
		rc = EXIT_SOFTWARE;
		goto out;
	}
	struct rng r;
	rng_seed(&r, seed, 0x7e7);
	for (size_t i = 0; i < (size_t)t.users * t.dim; i++)
		U[i] = (float)rng_normal(&r);
	for (size_t i = 0; i < (size_t)t.items * t.dim; i++)
		V[i] = (float)rng_normal(&r);
	t.U = U;
	t.V = V;
	t.off = off;
	t.skip = skip;
	double full = best_pass(&t, 1, seconds), gemm = best_pass(&t, 0, seconds);
	if (save && save_inputs(save, &t)) {
		log_error("%s", hr_errmsg());
		rc = 74;
		goto out;
	}
	printf("{\"bench\":\"retrieval\",\"core\":\"%s\",\"threads\":1,\"users\":%u,\"items\":%u,"
	       "\"dim\":%u,\"k\":%u,\"block\":%u,\"excluded\":%.1f,\"users_per_s\":%.0f,"
	       "\"sgemm_users_per_s\":%.0f,\"roofline_share\":%.3f,\"sgemm_gflops\":%.1f}\n",
	       nn_blas_corename(), t.users, t.items, t.dim, t.k, t.block,
	       (double)(off[t.users] - t.users) / t.users, t.users / full, t.users / gemm,
	       gemm / full, 2.0 * t.users * t.items * t.dim / gemm * 1e-9);
	rc = 0;
out:
	free(off);
	free(skip);
	free(U);
	free(V);
	free(t.S);
	free(t.top);
	free(t.heap_s);
	free(t.heap_i);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"seconds", required_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	double seconds = 1.0;
	const char *sec_arg = NULL;
	int c, rc;

	log_init("blasbench", LOG_WARN);
	if (argc > 1 && !strcmp(argv[1], "retrieval"))
		return retrieval_main(argc - 1, argv + 1, argv);
	while ((c = getopt_long(argc, argv, "s:h", longopts, NULL)) != -1) {
		switch (c) {
		case 's': sec_arg = optarg; break;
		case 'h': usage(stdout); return 0;
		default: /* getopt has said which option and why */
			log_error("bad option (see --help)");
			return EXIT_USAGE;
		}
	}
	if (optind < argc && !sec_arg)
		sec_arg = argv[optind++];
	if (optind < argc)
		return usage_error("unexpected argument", argv[optind]);
	if (sec_arg && parse_seconds(sec_arg, &seconds))
		return usage_error("seconds must be a number in (0, 3600], not", sec_arg);

	/* May re-execute this program (same argv) with a better kernel. */
	rc = nn_blas_choose_kernel(argv);
	if (rc) {
		log_error("%s", hr_errmsg());
		return EXIT_SOFTWARE;
	}
	nn_blas_single_thread();
	/* Square 512 and the two-tower layer shape at batch 256: (256 x 300) x (300 x 300). */
	double sq = nn_sgemm_gflops(512, seconds);
	double layer = nn_sgemm_gflops_mnk(256, 300, 300, seconds);
	if (sq < 0 || layer < 0) {
		log_error("cannot allocate the benchmark matrices");
		return EXIT_SOFTWARE;
	}
	printf("{\"bench\":\"sgemm\",\"core\":\"%s\",\"threads\":1,\"gflops_512\":%.1f,"
	       "\"gflops_256x300x300\":%.1f}\n",
	       nn_blas_corename(), sq, layer);
	return 0;
}
