/*
 * bin/blasbench - the sgemm peak of this machine, single-threaded, as one
 * JSON line: the reference against which make bench judges a model's
 * achieved GFLOP/s.  Uses the same kernel choice as bin/trainer.
 */
#include <stdio.h>
#include <stdlib.h>

#include "common/err.h"
#include "common/log.h"
#include "models/nn/blas.h"

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 1.0;
	int rc;

	log_init("blasbench", LOG_WARN);
	rc = nn_blas_choose_kernel(argv);
	if (rc) {
		log_error("%s", hr_errmsg());
		return hr_exit_code(rc);
	}
	nn_blas_single_thread();
	/* Square 512 and the two-tower layer shape at batch 256: (256 x 300) x (300 x 300). */
	double sq = nn_sgemm_gflops(512, seconds);
	double layer = nn_sgemm_gflops_mnk(256, 300, 300, seconds);
	printf("{\"bench\":\"sgemm\",\"core\":\"%s\",\"threads\":1,\"gflops_512\":%.1f,"
	       "\"gflops_256x300x300\":%.1f}\n",
	       nn_blas_corename(), sq, layer);
	return 0;
}
