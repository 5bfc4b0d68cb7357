/*
 * mlgen - write a synthetic MovieLens data set with a known model, or
 * report the oracle AUC of one.  See ingest/mlgen.h.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "common/parse.h"
#include "common/progress.h"
#include "ingest/mlgen.h"

#define EXIT_USAGE 64

static void usage(FILE *out)
{
	fputs("usage: mlgen -o DIR [--users N] [--items M] [--ratings K] [--seed S]\n"
	      "             [--interest B] [--format ml-1m|ml-100k|csv] [--force] [-q]\n"
	      "       mlgen --oracle DIR [--pos-min R] [--neg-max R]\n"
	      "\n"
	      "Writes a synthetic MovieLens data set whose ratings come from a known\n"
	      "(planted) model, plus truth.dat with each rating's probabilities, or\n"
	      "prints the oracle AUC those probabilities reach on a written set.\n"
	      "\n"
	      "  -o, --output DIR   directory to write (created if missing)\n"
	      "      --users N      users (default 6040)\n"
	      "      --items M      rated movies (default 3706; ~M*1.048 listed)\n"
	      "      --ratings K    ratings, 20*N <= K <= N*M, K >= M (default 1000209)\n"
	      "      --seed S       random seed (default 1); same options, same bytes\n"
	      "      --interest B   logit boost of a movie in the user's current interest\n"
	      "                     genre, 0..5 (default 0.4); larger makes the recent\n"
	      "                     history matter more\n"
	      "      --format F     ml-1m (default): ratings.dat users.dat movies.dat\n"
	      "                     ml-100k: u.data u.user u.item u.genre u.occupation\n"
	      "                     csv: ratings.csv movies.csv (ml-latest style)\n"
	      "      --force        overwrite a directory that already holds ratings\n"
	      "      --oracle DIR   print {\"oracle_auc\":..,\"rows\":..,\"positive_rate\":..}\n"
	      "      --pos-min R    oracle: ratings >= R are positive (default 4)\n"
	      "      --neg-max R    oracle: ratings <= R are negative (default 2);\n"
	      "                     ratings in between are dropped\n"
	      "  -q, --quiet        no summary on stderr\n"
	      "  -h, --help         this text\n"
	      "\n"
	      "examples:\n"
	      "  mlgen -o data/ml-1m-synth                    # ml-1m size, ~1M ratings\n"
	      "  mlgen -o /tmp/small --users 300 --items 400 --ratings 40000 --seed 7\n"
	      "  mlgen -o /tmp/csv --format csv --force\n"
	      "  mlgen --oracle data/ml-1m-synth              # {\"oracle_auc\":0.87,...}\n",
	      out);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("mlgen: error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (see --help)\n", stderr);
	return EXIT_USAGE;
}

enum {
	OPT_USERS = 256,
	OPT_ITEMS,
	OPT_RATINGS,
	OPT_SEED,
	OPT_INTEREST,
	OPT_FORMAT,
	OPT_FORCE,
	OPT_ORACLE,
	OPT_POS_MIN,
	OPT_NEG_MAX,
};

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"output", required_argument, NULL, 'o'},
		{"users", required_argument, NULL, OPT_USERS},
		{"items", required_argument, NULL, OPT_ITEMS},
		{"ratings", required_argument, NULL, OPT_RATINGS},
		{"seed", required_argument, NULL, OPT_SEED},
		{"interest", required_argument, NULL, OPT_INTEREST},
		{"format", required_argument, NULL, OPT_FORMAT},
		{"force", no_argument, NULL, OPT_FORCE},
		{"oracle", required_argument, NULL, OPT_ORACLE},
		{"pos-min", required_argument, NULL, OPT_POS_MIN},
		{"neg-max", required_argument, NULL, OPT_NEG_MAX},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct mlgen_opts o;
	const char *out_dir = NULL, *oracle_dir = NULL;
	uint64_t v, pos_min = 4, neg_max = 2;
	int c, quiet = 0, gen_opts = 0, oracle_opts = 0, rc;

	log_init("mlgen", LOG_INFO);
	mlgen_defaults(&o);
	while ((c = getopt_long(argc, argv, "o:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'o': out_dir = optarg; break;
		case OPT_USERS:
			if (parse_u64(optarg, "--users", 1, UINT32_MAX, &v))
				return usage_error("%s", hr_errmsg());
			o.users = (uint32_t)v;
			gen_opts = 1;
			break;
		case OPT_ITEMS:
			if (parse_u64(optarg, "--items", 1, UINT32_MAX, &v))
				return usage_error("%s", hr_errmsg());
			o.items = (uint32_t)v;
			gen_opts = 1;
			break;
		case OPT_RATINGS:
			if (parse_u64(optarg, "--ratings", 1, UINT64_MAX, &v))
				return usage_error("%s", hr_errmsg());
			o.ratings = v;
			gen_opts = 1;
			break;
		case OPT_SEED:
			if (parse_u64(optarg, "--seed", 0, UINT64_MAX, &v))
				return usage_error("%s", hr_errmsg());
			o.seed = v;
			gen_opts = 1;
			break;
		case OPT_INTEREST:
			if (parse_f64(optarg, "--interest", 0, MLGEN_MAX_INTEREST, &o.interest))
				return usage_error("%s", hr_errmsg());
			gen_opts = 1;
			break;
		case OPT_FORMAT:
			if (mlgen_parse_format(optarg, &o.format))
				return usage_error("--format: '%s' is not ml-1m, ml-100k or csv",
						   optarg);
			gen_opts = 1;
			break;
		case OPT_FORCE:
			o.force = 1;
			gen_opts = 1;
			break;
		case OPT_ORACLE: oracle_dir = optarg; break;
		case OPT_POS_MIN:
			if (parse_u64(optarg, "--pos-min", 1, 5, &pos_min))
				return usage_error("%s", hr_errmsg());
			oracle_opts = 1;
			break;
		case OPT_NEG_MAX:
			if (parse_u64(optarg, "--neg-max", 1, 5, &neg_max))
				return usage_error("%s", hr_errmsg());
			oracle_opts = 1;
			break;
		case 'q': quiet = 1; break;
		case 'h': usage(stdout); return 0;
		default: /* getopt has said which option and why */
			return usage_error("%s", "bad option");
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (!out_dir == !oracle_dir)
		return usage_error("%s", "give exactly one of -o DIR or --oracle DIR");
	if (oracle_dir && gen_opts)
		return usage_error("%s", "--oracle takes only --pos-min and --neg-max");
	if (out_dir && oracle_opts)
		return usage_error("%s", "--pos-min and --neg-max go with --oracle");
	if (oracle_dir && !(1 <= neg_max && neg_max < pos_min && pos_min <= 5))
		return usage_error("need 1 <= --neg-max < --pos-min <= 5, got %d and %d",
				   (int)neg_max, (int)pos_min);
	if (out_dir && mlgen_check(&o))
		return usage_error("%s", hr_errmsg());

	if (oracle_dir) {
		double auc, pos_rate;
		size_t rows;
		rc = mlgen_oracle(oracle_dir, (int)pos_min, (int)neg_max, &auc, &rows, &pos_rate);
		if (rc) {
			log_error("%s", hr_errmsg());
			return hr_exit_code(rc);
		}
		printf("{\"oracle_auc\":%.4f,\"rows\":%zu,\"positive_rate\":%.4f}\n", auc, rows,
		       pos_rate);
		return 0;
	}

	double t0 = now_seconds();
	rc = mlgen_write(&o, out_dir);
	if (rc) {
		log_error("%s", hr_errmsg());
		return hr_exit_code(rc);
	}
	if (!quiet)
		log_info(
			"wrote %llu ratings by %u users of %u movies to '%s' (%s, seed %llu, %.1f s)",
			(unsigned long long)o.ratings, o.users, o.items, out_dir,
			mlgen_format_name(o.format), (unsigned long long)o.seed,
			now_seconds() - t0);
	return 0;
}
