/*
 * norm.c - LayerNorm (per row), BatchNorm and Dice (per channel over the
 * batch), and the running-statistics update they share.
 *
 * Per-channel statistics walk the batch in chunks of NN_CHUNK channels (one
 * 64-byte line of floats) with double accumulators on the stack: full cache
 * lines are read, the sums do not lose precision with large B, and no
 * scratch buffer is needed.
 */
#include "models/nn/nn.h"

#include <math.h>
#include <stddef.h>

#include "common/err.h"
#include "common/simd.h"
#include "models/nn/internal.h"

#define NN_CHUNK 16

static inline int chunk_width(int d0, int D)
{
	return D - d0 < NN_CHUNK ? D - d0 : NN_CHUNK;
}

/* mean (D), rstd (D) of in (B, D) over the batch, biased variance. */
HR_MULTIVERSION
static void batch_stats(float *mean, float *rstd, const float *in, float eps, int B, int D)
{
	for (int d0 = 0; d0 < D; d0 += NN_CHUNK) {
		int w = chunk_width(d0, D);
		double s[NN_CHUNK] = {0}, q[NN_CHUNK] = {0};

		for (int b = 0; b < B; b++)
			for (int j = 0; j < w; j++)
				s[j] += in[(size_t)b * D + d0 + j];
		for (int j = 0; j < w; j++)
			s[j] = B > 0 ? s[j] / B : 0.0;
		/* Two passes: var = E[(x - mean)^2] does not cancel like E[x^2] - mean^2. */
		for (int b = 0; b < B; b++)
			for (int j = 0; j < w; j++) {
				double c = in[(size_t)b * D + d0 + j] - s[j];
				q[j] += c * c;
			}
		for (int j = 0; j < w; j++) {
			mean[d0 + j] = (float)s[j];
			rstd[d0 + j] = (float)(1.0 / sqrt((B > 0 ? q[j] / B : 0.0) + eps));
		}
	}
}

/* mean, rstd (D) from running statistics: the eval-mode cache. */
static void running_cache(float *mean, float *rstd, const float *run_mean, const float *run_var,
			  float eps, int D)
{
	HR_ASSERT(run_mean != NULL && run_var != NULL);
	for (int d = 0; d < D; d++) {
		mean[d] = run_mean[d];
		rstd[d] = (float)(1.0 / sqrt((double)run_var[d] + eps));
	}
}

/*
 * The backward of xhat = (x - mean) * rstd through the statistics of the
 * n values normalised together (a row for LayerNorm, a channel over the
 * batch for BatchNorm/Dice): given the sums over them of g = dL/dxhat and
 * of g * xhat, dL/dx = rstd * (g - mean(g) - xhat * mean(g xhat)).
 */
static inline float bn_dx(float g, float xhat, float rstd, double sg, double sgx, int n)
{
	return rstd * (g - (float)(sg / n) - xhat * (float)(sgx / n));
}

void nn_layernorm_forward(float *out, float *mean, float *rstd, const float *in, const float *gamma,
			  const float *beta, float eps, int B, int D)
{
	HR_ASSERT(B >= 0 && D > 0 && eps >= 0.0f);
	for (int b = 0; b < B; b++) {
		const float *x = in + (size_t)b * D;
		float *y = out + (size_t)b * D;
		double s = 0.0, q = 0.0;

		for (int d = 0; d < D; d++)
			s += x[d];
		s /= D;
		for (int d = 0; d < D; d++)
			q += (x[d] - s) * (x[d] - s);
		float m = (float)s, r = (float)(1.0 / sqrt(q / D + eps));
		for (int d = 0; d < D; d++)
			y[d] = (x[d] - m) * r * gamma[d] + beta[d];
		mean[b] = m;
		rstd[b] = r;
	}
}

void nn_layernorm_backward(float *dinp, float *dgamma, float *dbeta, const float *dout,
			   const float *in, const float *mean, const float *rstd,
			   const float *gamma, int B, int D)
{
	HR_ASSERT(B >= 0 && D > 0);
	for (int b = 0; b < B; b++) {
		const float *x = in + (size_t)b * D;
		const float *g = dout + (size_t)b * D;
		float m = mean[b], r = rstd[b];

		if (dgamma || dbeta)
			for (int d = 0; d < D; d++) {
				if (dgamma)
					dgamma[d] += g[d] * (x[d] - m) * r;
				if (dbeta)
					dbeta[d] += g[d];
			}
		if (!dinp)
			continue;
		/* dnorm = dout * gamma; dx = rstd * (dnorm - mean(dnorm) - xhat mean(dnorm xhat)) */
		double sg = 0.0, sgx = 0.0;
		for (int d = 0; d < D; d++) {
			float dn = g[d] * gamma[d];
			sg += dn;
			sgx += (double)dn * ((x[d] - m) * r);
		}
		float *dx = dinp + (size_t)b * D;
		for (int d = 0; d < D; d++)
			dx[d] += bn_dx(g[d] * gamma[d], (x[d] - m) * r, r, sg, sgx, D);
	}
}

void nn_batchnorm_forward(float *out, float *mean, float *rstd, const float *in, const float *gamma,
			  const float *beta, const float *run_mean, const float *run_var, float eps,
			  bool training, int B, int D)
{
	HR_ASSERT(B >= 0 && D >= 0 && eps >= 0.0f);
	if (training)
		batch_stats(mean, rstd, in, eps, B, D);
	else
		running_cache(mean, rstd, run_mean, run_var, eps, D);
	for (int b = 0; b < B; b++) {
		const float *x = in + (size_t)b * D;
		float *y = out + (size_t)b * D;
		for (int d = 0; d < D; d++)
			y[d] = (x[d] - mean[d]) * rstd[d] * gamma[d] + beta[d];
	}
}

/* nn_batchnorm_backward's loops, built per CPU (common/simd.h). */
HR_MULTIVERSION
static void bn_backward(float *dinp, float *dgamma, float *dbeta, const float *dout,
			const float *in, const float *mean, const float *rstd, const float *gamma,
			bool training, int B, int D)
{
	for (int d0 = 0; d0 < D; d0 += NN_CHUNK) {
		int w = chunk_width(d0, D);
		double sg[NN_CHUNK] = {0}, sgx[NN_CHUNK] = {0}; /* sums of dout, dout*xhat */

		for (int b = 0; b < B; b++)
			for (int j = 0; j < w; j++) {
				size_t i = (size_t)b * D + d0 + j;
				float xhat = (in[i] - mean[d0 + j]) * rstd[d0 + j];
				sg[j] += dout[i];
				sgx[j] += (double)dout[i] * xhat;
			}
		for (int j = 0; j < w; j++) {
			if (dgamma)
				dgamma[d0 + j] += (float)sgx[j];
			if (dbeta)
				dbeta[d0 + j] += (float)sg[j];
		}
		if (!dinp)
			continue;
		for (int b = 0; b < B; b++)
			for (int j = 0; j < w; j++) {
				int d = d0 + j;
				size_t i = (size_t)b * D + d;
				float gm = gamma[d];
				if (!training) {
					dinp[i] += dout[i] * gm * rstd[d];
					continue;
				}
				/* dL/dxhat = dout * gamma; its sums are gamma times ours */
				float xhat = (in[i] - mean[d]) * rstd[d];
				dinp[i] += bn_dx(dout[i] * gm, xhat, rstd[d], sg[j] * gm,
						 sgx[j] * gm, B);
			}
	}
}

void nn_batchnorm_backward(float *dinp, float *dgamma, float *dbeta, const float *dout,
			   const float *in, const float *mean, const float *rstd,
			   const float *gamma, bool training, int B, int D)
{
	HR_ASSERT(B >= 0 && D >= 0);
	if (B > 0)
		bn_backward(dinp, dgamma, dbeta, dout, in, mean, rstd, gamma, training, B, D);
}

void nn_running_stats_update(float *run_mean, float *run_var, const float *mean, const float *rstd,
			     float eps, float momentum, int B, int D)
{
	HR_ASSERT(B >= 0 && D >= 0 && momentum >= 0.0f && momentum <= 1.0f);
	for (int d = 0; d < D; d++) {
		double var = 1.0 / ((double)rstd[d] * rstd[d]) - eps;
		if (var < 0.0) /* rounding when the variance is far below eps */
			var = 0.0;
		if (B > 1)
			var *= (double)B / (B - 1);
		run_mean[d] = (float)((1.0 - momentum) * run_mean[d] + momentum * (double)mean[d]);
		run_var[d] = (float)((1.0 - momentum) * run_var[d] + momentum * var);
	}
}

void nn_dice_forward(float *out, float *mean, float *rstd, const float *in, const float *alpha,
		     const float *run_mean, const float *run_var, float eps, bool training, int B,
		     int D)
{
	HR_ASSERT(B >= 0 && D >= 0 && eps >= 0.0f);
	if (training)
		batch_stats(mean, rstd, in, eps, B, D);
	else
		running_cache(mean, rstd, run_mean, run_var, eps, D);
	for (int b = 0; b < B; b++) {
		const float *x = in + (size_t)b * D;
		float *y = out + (size_t)b * D;
		for (int d = 0; d < D; d++) {
			float p = nn_sigmoidf((x[d] - mean[d]) * rstd[d]);
			/* p x + (1 - p) alpha x = x (alpha + (1 - alpha) p) */
			y[d] = x[d] * (alpha[d] + (1.0f - alpha[d]) * p);
		}
	}
}

void nn_dice_backward(float *dinp, float *dalpha, const float *dout, const float *in,
		      const float *mean, const float *rstd, const float *alpha, bool training,
		      int B, int D)
{
	HR_ASSERT(B >= 0 && D >= 0);
	if (B == 0)
		return;
	for (int d0 = 0; d0 < D; d0 += NN_CHUNK) {
		int w = chunk_width(d0, D);
		double sg[NN_CHUNK] = {0}, sgz[NN_CHUNK] = {0}; /* sums of gz, gz*z */

		/* Pass 1: dalpha and the batch sums of gz = dL/dz. */
		for (int b = 0; b < B; b++)
			for (int j = 0; j < w; j++) {
				int d = d0 + j;
				size_t i = (size_t)b * D + d;
				float z = (in[i] - mean[d]) * rstd[d];
				float p = nn_sigmoidf(z);
				float gz = dout[i] * in[i] * (1.0f - alpha[d]) * p * (1.0f - p);
				if (dalpha)
					dalpha[d] += dout[i] * in[i] * (1.0f - p);
				sg[j] += gz;
				sgz[j] += (double)gz * z;
			}
		if (!dinp)
			continue;
		/* Pass 2: the direct term plus the path through z (and the stats). */
		for (int b = 0; b < B; b++)
			for (int j = 0; j < w; j++) {
				int d = d0 + j;
				size_t i = (size_t)b * D + d;
				float z = (in[i] - mean[d]) * rstd[d];
				float p = nn_sigmoidf(z);
				float gz = dout[i] * in[i] * (1.0f - alpha[d]) * p * (1.0f - p);
				float direct = dout[i] * (alpha[d] + (1.0f - alpha[d]) * p);
				float viaz = training ? bn_dx(gz, z, rstd[d], sg[j], sgz[j], B) :
							gz * rstd[d];
				dinp[i] += direct + viaz;
			}
	}
}
