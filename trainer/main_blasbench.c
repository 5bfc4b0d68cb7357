/*
 * bin/blasbench - the sgemm peak of this machine, single-threaded, as one
 * JSON line: the reference against which make bench judges a model's
 * achieved GFLOP/s.  Uses the same kernel choice as bin/trainer.  See --help.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/err.h"
#include "common/log.h"
#include "common/parse.h"
#include "models/nn/blas.h"

#define EXIT_USAGE 64
#define EXIT_SOFTWARE 70
#define SECONDS_MAX 3600.0

static void usage(FILE *out)
{
	fputs("usage: blasbench [--seconds S]\n"
	      "       blasbench [S]\n"
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
