/* bin/trainer - train and evaluate a model on a hogrec store.  See --help. */
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/faultpoint.h"
#include "common/log.h"
#include "common/parse.h"
#include "common/progress.h"
#include "models/nn/blas.h"
#include "models/nn/nn.h"
#include "trainer/ckpt.h"
#include "trainer/config.h"
#include "trainer/report.h"
#include "trainer/train.h"

static void usage(FILE *out)
{
	fputs("usage: trainer --data STORE --model NAME --out DIR [options]\n"
	      "       trainer --config FILE [options]\n"
	      "       trainer --data STORE --out DIR --predict SPLIT [--limit N]\n"
	      "       trainer report RUN_DIR [-o OUT.svg]   (learning curves; report --help)\n"
	      "\n"
	      "Trains NAME on the train split of STORE (written by bin/ingest) with\n"
	      "Hogwild worker threads, evaluates on valid and test after every epoch,\n"
	      "and prints metrics as JSON lines on stdout (also appended to\n"
	      "DIR/metrics.jsonl).  Logs and progress go to stderr.  Checkpoints\n"
	      "(safetensors, docs/FORMAT.md) go to DIR after every epoch and on\n"
	      "SIGINT/SIGTERM (then exit 0; a second signal exits at once); a run\n"
	      "whose DIR holds a checkpoint continues from it.  Early stopping\n"
	      "(--early-stop N): when the valid AUC has not improved for N epochs, or\n"
	      "after --epochs, the best epoch's parameters are restored; the closing\n"
	      "lines (\"final\":true, \"best_epoch\":K) and checkpoint (DIR/latest)\n"
	      "describe that model.  Off under --follow, which trains --epochs epochs\n"
	      "on each new store and keeps the last parameters.\n"
	      "\n"
	      "models:\n",
	      out);
	model_list(out);
	fputs("\n"
	      "options (each also a key of the [trainer] section of a config file, with\n"
	      "'_' for '-'; deploy/trainer.ini is a commented example):\n",
	      out);
	config_usage(out);
	fputs("  --config FILE          read options from FILE; flags override it\n"
	      "  --check-config         check the options, print them as a config file, exit\n"
	      "  --no-resume            --resume no\n"
	      "  --predict SPLIT        print the logits of DIR's latest checkpoint for the\n"
	      "                         records of SPLIT (train, valid, test) as JSON lines;\n"
	      "                         the checkpoint names the model and its shape (--model\n"
	      "                         may be left out); trains and writes nothing\n"
	      "  --limit N              --predict: the first N records (default 10)\n"
	      "  --bench-loader         measure the loader alone: decode every epoch, train\n"
	      "                         nothing, print records/s as JSON\n"
	      "  -q, --quiet            --progress no --log-level warn\n"
	      "  -v, --verbose          --log-level debug\n"
	      "  -h, --help             this text\n",
	      out);
	config_usage_models(out);
	fputs("\n"
	      "example:\n"
	      "  trainer --data ml-1m.lmdb --model dssm --out runs/dssm --epochs 3\n"
	      "  trainer --config /etc/hogrec/trainer.ini --epochs 5\n"
	      "  trainer --data s.lmdb --model neumf --out runs/neumf --init-from runs/gmf,runs/ncf\n"
	      "\n"
	      "exit status: 0 ok, 64 bad option, 65 bad store or non-finite loss,\n"
	      "66 store missing (--predict: DIR or its checkpoint missing), 74 I/O error;\n"
	      "--init-from: 64 a checkpoint of another model, store or shape, 65 a\n"
	      "damaged one, 66 a missing one;\n"
	      "a signal stops training cleanly with the final checkpoint and exit 0, a\n"
	      "second signal exits 130 at once.\n",
	      out);
}

static int die(int rc)
{
	log_error("%s", hr_errmsg());
	return hr_exit_code(rc);
}

static void on_signal(int sig)
{
	fault_point_release();
	if (sig == SIGHUP) {
		train_reload = 1;
		return;
	}
	if (train_stop)
		_exit(130);
	train_stop = 1;
}

/* What SIGHUP may change mid-run: the config file's log level, checkpoint
 * cadence and retention; everything else needs a restart. */
struct reload_ctx {
	struct train_opts *live;
	const char *config;
};

static int reload(void *arg)
{
	struct reload_ctx *r = arg;
	struct train_opts fresh;
	int rc;

	if (!r->config)
		return 0;
	config_defaults(&fresh);
	rc = config_load(&fresh, r->config); /* applies log_level as it reads it */
	if (!rc) {
		r->live->ckpt_every_steps = fresh.ckpt_every_steps;
		r->live->ckpt_every_secs = fresh.ckpt_every_secs;
		r->live->keep = fresh.keep;
	}
	config_release(&fresh);
	return rc;
}

/*
 * getopt_long's table: one required_argument entry per config option
 * (val O_TABLE + i), then the flags that are actions rather than settings.
 */
enum { O_CONFIG = 256, O_CHECK, O_LOADER, O_NORESUME, O_PREDICT, O_LIMIT, O_TABLE };
#define MAX_LONGOPTS 128

static void build_longopts(struct option *lo)
{
	static const struct option actions[] = {
		{"config", required_argument, 0, O_CONFIG},
		{"check-config", no_argument, 0, O_CHECK},
		{"bench-loader", no_argument, 0, O_LOADER},
		{"no-resume", no_argument, 0, O_NORESUME},
		{"predict", required_argument, 0, O_PREDICT},
		{"limit", required_argument, 0, O_LIMIT},
		{"quiet", no_argument, 0, 'q'},
		{"verbose", no_argument, 0, 'v'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0},
	};
	size_t n = config_option_count();

	HR_ASSERT(n + sizeof(actions) / sizeof(actions[0]) <= MAX_LONGOPTS);
	for (size_t i = 0; i < n; i++)
		lo[i] = (struct option){config_option_flag(i), required_argument, 0,
					O_TABLE + (int)i};
	memcpy(lo + n, actions, sizeof(actions));
}

/*
 * Reads the options: defaults, then the --config file, then every other
 * flag wherever it stands (two getopt passes).  Returns 0, 1 after --help,
 * or a negative HR_E* code with the message set; *check is --check-config,
 * *config_out the --config path (NULL without one).
 */
static int parse_args(int argc, char **argv, struct train_opts *o, int *check,
		      const char **config_out)
{
	struct option lo[MAX_LONGOPTS];
	const char *config = NULL;
	char where[64];
	int c, rc = 0;

	build_longopts(lo);
	opterr = 0; /* the second pass reports bad flags */
	while ((c = getopt_long(argc, argv, "qvh", lo, NULL)) != -1)
		if (c == O_CONFIG)
			config = optarg;
	*config_out = config;
	if (config && (rc = config_load(o, config)))
		return rc;
	opterr = 1;
	optind = 0; /* rescan from the start (GNU) */
	while (!rc && (c = getopt_long(argc, argv, "qvh", lo, NULL)) != -1) {
		switch (c) {
		case O_CONFIG: break;
		case O_CHECK: *check = 1; break;
		case O_LOADER: o->loader_only = 1; break;
		case O_NORESUME: o->resume = 0; break;
		case O_PREDICT: o->predict = optarg; break; /* argv: not a config string */
		case O_LIMIT:
			rc = parse_u64(optarg, "--limit", 1, UINT64_MAX, &o->predict_n);
			break;
		case 'q':
			o->progress = 0;
			log_set_level(LOG_WARN);
			break;
		case 'v': log_set_level(LOG_DEBUG); break;
		case 'h': usage(stdout); return 1;
		default:
			if (c < O_TABLE || c >= O_TABLE + (int)config_option_count())
				return hr_error(HR_EINVAL,
						"bad option (see --help)"); /* getopt said which */
			snprintf(where, sizeof(where), "--%s",
				 config_option_flag((size_t)(c - O_TABLE)));
			rc = config_apply_option(o, config_option_key((size_t)(c - O_TABLE)),
						 optarg, where);
		}
	}
	if (!rc && optind != argc)
		rc = hr_error(HR_EINVAL, "unexpected argument '%s' (see --help)", argv[optind]);
	return rc ? rc : config_finish(o);
}

int main(int argc, char **argv)
{
	struct train_opts o;
	const char *config_path = NULL;
	int rc, check = 0;

	log_init("trainer", LOG_INFO);
	if (argc > 1 && !strcmp(argv[1], "report"))
		return report_main(argc - 1, argv + 1);
	config_defaults(&o);
	rc = parse_args(argc, argv, &o, &check, &config_path);
	if (rc || check) {
		if (rc == 0)
			config_print(stdout, &o);
		config_release(&o);
		return rc == 1 ? 0 : rc ? die(rc) : 0;
	}
	progress_enable(o.progress);

	{
		/* Fault injection for the failure tests only (a "disk full" save). */
		const char *fault = getenv("HOGREC_CKPT_FAULT");
		uint64_t after;
		if (fault && parse_u64_quiet(fault, &after) == 0)
			ckpt_fault_inject(CKPT_FAULT_WRITE, after);
	}
	/* May re-exec this program with a better OpenBLAS kernel; fails when
	 * the active kernel's sgemm disagrees with the reference. */
	rc = nn_blas_choose_kernel(argv);
	if (rc) {
		config_release(&o);
		return die(rc);
	}
	nn_blas_single_thread();

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	struct reload_ctx rctx = {&o, config_path};
	o.reload = reload;
	o.reload_ctx = &rctx;
	rc = trainer_run(&o);
	if (rc)
		rc = die(rc);
	config_release(&o);
	return rc;
}
