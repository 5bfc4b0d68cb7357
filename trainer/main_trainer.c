/* bin/trainer - train and evaluate a model on a hogrec store.  See --help. */
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "common/progress.h"
#include "models/nn/blas.h"
#include "models/nn/nn.h"
#include "trainer/ckpt.h"
#include "trainer/train.h"

static void usage(FILE *out)
{
	fputs("usage: trainer --data STORE --model NAME --out DIR [options]\n"
	      "\n"
	      "Trains NAME on the train split of STORE (written by bin/ingest) with\n"
	      "Hogwild worker threads, evaluates on valid and test after every epoch,\n"
	      "and prints metrics as JSON lines on stdout (also appended to\n"
	      "DIR/metrics.jsonl).  Logs and progress go to stderr.  Checkpoints\n"
	      "(safetensors, docs/FORMAT.md) go to DIR after every epoch and on\n"
	      "SIGINT/SIGTERM (then exit 0; a second signal exits at once); a run\n"
	      "whose DIR holds a checkpoint continues from it.\n"
	      "\n"
	      "models:\n",
	      out);
	model_list(out);
	fputs("\n"
	      "options:\n"
	      "  --epochs N        passes over the train split (default 1)\n"
	      "  --threads N       worker threads (default: number of cores)\n"
	      "  --batch B         minibatch size (default 256)\n"
	      "  --loaders N       loader threads decoding batches (default 1)\n"
	      "  --optim NAME      sgd, adagrad or adam (default adam)\n"
	      "  --lr X            learning rate (default: adam 0.001, adagrad 0.01, sgd 0.1)\n"
	      "  --lr-sparse X     embedding learning rate (default: --lr)\n"
	      "  --l2 X            L2 regularisation (default 0)\n"
	      "  --emb-dim N       embedding width (default 32)\n"
	      "  --hidden A,B,...  hidden widths; the last is the output width of an MLP\n"
	      "                    or tower (default: per model)\n"
	      "  --seed S          initialisation and shuffling seed (default 1)\n"
	      "  --ckpt-every-steps N  also checkpoint every N optimizer steps\n"
	      "  --ckpt-every-secs T   also checkpoint every T seconds\n"
	      "  --keep K          checkpoints kept in DIR (default 3)\n"
	      "  --no-resume       start afresh even if DIR holds a checkpoint\n"
	      "  --predict SPLIT   print the latest checkpoint's logits for the records of\n"
	      "                    SPLIT (train, valid, test) as JSON lines; no training\n"
	      "  --limit N         --predict: the first N records (default 10)\n"
	      "  --bench-loader    measure the loader alone: decode every epoch, train\n"
	      "                    nothing, print records/s as JSON\n"
	      "  -q, --quiet       no progress bar, warnings only\n"
	      "  -v, --verbose     debug logging\n"
	      "  -h, --help        this text\n"
	      "\n"
	      "example:\n"
	      "  trainer --data ml-1m.lmdb --model dssm --out runs/dssm --epochs 3\n"
	      "\n"
	      "exit status: 0 ok, 64 bad option, 65 bad store or non-finite loss,\n"
	      "66 store missing, 74 I/O error; a signal stops training cleanly with the\n"
	      "final checkpoint and exit 0, a second signal exits 130 at once.\n",
	      out);
}

static int die(int rc)
{
	log_error("%s", hr_errmsg());
	return hr_exit_code(rc);
}

static int parse_num(const char *s, const char *opt, double lo, double hi, double *out)
{
	char *end;

	*out = strtod(s, &end);
	if (end == s || *end || !(*out >= lo && *out <= hi))
		return hr_error(HR_EINVAL, "%s: '%s' is not a number in [%g, %g]", opt, s, lo, hi);
	return 0;
}

static int parse_hidden(const char *s, struct model_config *c)
{
	const char *p = s;

	c->n_hidden = 0;
	while (*p) {
		char *end;
		long v = strtol(p, &end, 10);
		if (end == p || v < 1 || v > 65536 || c->n_hidden == MODEL_MAX_HIDDEN ||
		    (*end && *end != ','))
			return hr_error(HR_EINVAL, "--hidden: '%s' is not a list of up to %d widths", s,
					MODEL_MAX_HIDDEN);
		c->hidden[c->n_hidden++] = (uint32_t)v;
		p = *end ? end + 1 : end;
	}
	return c->n_hidden ? 0 : hr_error(HR_EINVAL, "--hidden: empty list");
}

static void on_signal(int sig)
{
	(void)sig;
	if (train_stop)
		_exit(130);
	train_stop = 1;
}

int main(int argc, char **argv)
{
	enum { O_DATA = 256, O_MODEL, O_OUT, O_EPOCHS, O_THREADS, O_BATCH, O_OPTIM, O_LR,
	       O_LRS, O_L2, O_EMB, O_HIDDEN, O_SEED, O_LOADER, O_LOADERS, O_CK_STEPS, O_CK_SECS,
	       O_KEEP, O_NORESUME, O_PREDICT, O_LIMIT };
	static const struct option longopts[] = {
		{"data", required_argument, 0, O_DATA}, {"model", required_argument, 0, O_MODEL},
		{"out", required_argument, 0, O_OUT}, {"epochs", required_argument, 0, O_EPOCHS},
		{"threads", required_argument, 0, O_THREADS}, {"batch", required_argument, 0, O_BATCH},
		{"optim", required_argument, 0, O_OPTIM}, {"lr", required_argument, 0, O_LR},
		{"lr-sparse", required_argument, 0, O_LRS}, {"l2", required_argument, 0, O_L2},
		{"emb-dim", required_argument, 0, O_EMB}, {"hidden", required_argument, 0, O_HIDDEN},
		{"seed", required_argument, 0, O_SEED}, {"bench-loader", no_argument, 0, O_LOADER},
		{"loaders", required_argument, 0, O_LOADERS},
		{"ckpt-every-steps", required_argument, 0, O_CK_STEPS},
		{"ckpt-every-secs", required_argument, 0, O_CK_SECS}, {"keep", required_argument, 0, O_KEEP},
		{"no-resume", no_argument, 0, O_NORESUME}, {"predict", required_argument, 0, O_PREDICT},
		{"limit", required_argument, 0, O_LIMIT}, {"quiet", no_argument, 0, 'q'},
		{"verbose", no_argument, 0, 'v'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0},
	};
	struct train_opts o;
	double v, lr = -1, lr_sparse = -1, l2 = 0;
	int c, rc = 0, kind = OPTIM_ADAM;

	log_init("trainer", LOG_INFO);
	train_opts_defaults(&o);
	while ((c = getopt_long(argc, argv, "qvh", longopts, NULL)) != -1) {
		switch (c) {
		case O_DATA: o.data = optarg; break;
		case O_MODEL: o.model = optarg; break;
		case O_OUT: o.out = optarg; break;
		case O_EPOCHS:
			rc = parse_num(optarg, "--epochs", 1, 100000, &v);
			o.epochs = (int)v;
			break;
		case O_THREADS:
			rc = parse_num(optarg, "--threads", 1, 256, &v);
			o.threads = (int)v;
			break;
		case O_BATCH:
			rc = parse_num(optarg, "--batch", 1, 65536, &v);
			o.batch = (uint32_t)v;
			break;
		case O_OPTIM:
			kind = optim_parse(optarg);
			if (kind < 0)
				rc = hr_error(HR_EINVAL, "--optim: '%s' is not sgd, adagrad or adam", optarg);
			break;
		case O_LR: rc = parse_num(optarg, "--lr", 1e-9, 100, &lr); break;
		case O_LRS: rc = parse_num(optarg, "--lr-sparse", 1e-9, 100, &lr_sparse); break;
		case O_L2: rc = parse_num(optarg, "--l2", 0, 10, &l2); break;
		case O_EMB:
			rc = parse_num(optarg, "--emb-dim", 1, 4096, &v);
			o.mcfg.emb_dim = (uint32_t)v;
			break;
		case O_HIDDEN: rc = parse_hidden(optarg, &o.mcfg); break;
		case O_SEED:
			rc = parse_num(optarg, "--seed", 0, 1e18, &v);
			o.seed = o.mcfg.seed = (uint64_t)v;
			break;
		case O_LOADER: o.loader_only = 1; break;
		case O_CK_STEPS:
			rc = parse_num(optarg, "--ckpt-every-steps", 0, 1e15, &v);
			o.ckpt_every_steps = (uint64_t)v;
			break;
		case O_CK_SECS: rc = parse_num(optarg, "--ckpt-every-secs", 0, 1e9, &o.ckpt_every_secs); break;
		case O_KEEP:
			rc = parse_num(optarg, "--keep", 1, 100000, &v);
			o.keep = (int)v;
			break;
		case O_NORESUME: o.resume = 0; break;
		case O_PREDICT: o.predict = optarg; break;
		case O_LIMIT:
			rc = parse_num(optarg, "--limit", 1, 1e15, &v);
			o.predict_n = (uint64_t)v;
			break;
		case O_LOADERS:
			rc = parse_num(optarg, "--loaders", 1, 8, &v);
			o.loaders = (int)v;
			break;
		case 'q': o.progress = 0; log_set_level(LOG_WARN); break;
		case 'v': log_set_level(LOG_DEBUG); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 64;
		}
		if (rc)
			return die(rc);
	}
	if (optind != argc)
		return die(hr_error(HR_EINVAL, "unexpected argument '%s' (see --help)", argv[optind]));
	if (!o.data || !o.model || !o.out)
		return die(hr_error(HR_EINVAL, "--data, --model and --out are required (see --help)"));
	if (!model_find(o.model))
		return die(hr_error(HR_EINVAL, "unknown model '%s' (see --help for the list)", o.model));
	optim_defaults(&o.optim, (enum optim_kind)kind);
	if (lr > 0)
		o.optim.lr = o.optim.lr_sparse = (float)lr;
	if (lr_sparse > 0)
		o.optim.lr_sparse = (float)lr_sparse;
	o.optim.l2 = (float)l2;
	progress_enable(o.progress);

	{
		/* Fault injection for the failure tests only (a "disk full" save). */
		const char *fault = getenv("HOGREC_CKPT_FAULT");
		if (fault && *fault)
			ckpt_fault_inject(CKPT_FAULT_WRITE, strtoull(fault, NULL, 10));
	}
	/* May re-exec this program with a better OpenBLAS kernel; fails when
	 * the active kernel's sgemm disagrees with the reference. */
	rc = nn_blas_choose_kernel(argv);
	if (rc)
		return die(rc);
	nn_blas_single_thread();

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	rc = trainer_run(&o);
	return rc ? die(rc) : 0;
}
