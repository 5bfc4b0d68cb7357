/*
 * loss.c - retrieval and rating losses: in-batch softmax, max-margin,
 * sampled softmax, masked MSE.  (BCE on logits lives in score.c.)
 *
 * Each forward returns the mean loss summed in double; each backward is the
 * gradient of dloss times that mean and accumulates.  Exponentials are
 * float (B x B of them per step for the in-batch softmax), their sums
 * double.
 */
#include "models/nn/nn.h"

#include <math.h>
#include <stddef.h>

#include "common/err.h"
#include "common/simd.h"

/* ------------------------------------------------------ in-batch softmax */

/* Candidate j is an accidental hit of row i: the same id, off the diagonal. */
static bool accidental_hit(const uint32_t *ids, int i, int j)
{
	return ids && j != i && ids[j] == ids[i];
}

/*
 * One row: z = s / tau - logq into p (masked: -inf), then p = softmax(z).
 * Returns -log p[i], as log(sum e^(z - m)) - (z[i] - m) in double.
 */
HR_MULTIVERSION
static double inbatch_row(float *p, const float *s, const float *logq, const uint32_t *ids,
			  float tau, int i, int B)
{
	float m = -INFINITY;

	for (int j = 0; j < B; j++) {
		float z = s[j] / tau - (logq ? logq[j] : 0.0f);
		p[j] = accidental_hit(ids, i, j) ? -INFINITY : z;
		m = fmaxf(m, p[j]);
	}
	/* m >= z[i], the never-masked diagonal: finite for finite inputs. */
	double zi = (double)p[i] - m, sum = 0.0;
	for (int j = 0; j < B; j++) {
		p[j] = expf(p[j] - m); /* exp(-inf) = 0 for masked j */
		sum += p[j];
	}
	float inv = (float)(1.0 / sum);
	for (int j = 0; j < B; j++)
		p[j] *= inv;
	return log(sum) - zi;
}

double nn_inbatch_softmax_forward(float *prob, const float *scores, const float *logq,
				  const uint32_t *ids, float tau, int B)
{
	HR_ASSERT(B >= 0 && tau > 0.0f && isfinite(tau));
	double total = 0.0;

	for (int i = 0; i < B; i++)
		total += inbatch_row(prob + (size_t)i * B, scores + (size_t)i * B, logq, ids, tau,
				     i, B);
	return B > 0 ? total / B : 0.0;
}

/*
 * dL/dz[i][j] = c (p[i][j] - [i == j]), c = dloss / B; dz/dS = 1 / tau and
 * dz/dtau = -S / tau^2.  The diagonal's p - 1 is taken as minus the sum of
 * the row's other probabilities, which keeps its precision when p[i][i] is
 * close to 1.
 */
void nn_inbatch_softmax_backward(float *dscores, float *dtau, float dloss, const float *prob,
				 const float *scores, float tau, int B)
{
	HR_ASSERT(B >= 0 && tau > 0.0f && isfinite(tau));
	if (B == 0 || (!dscores && !dtau))
		return;
	float c = dloss / (float)B, cs = c / tau;
	double gs = 0.0; // sum_ij (p - [i == j]) S

	for (int i = 0; i < B; i++) {
		const float *p = prob + (size_t)i * B, *s = scores + (size_t)i * B;
		float *ds = dscores ? dscores + (size_t)i * B : NULL;
		double off = 0.0, offs = 0.0; // sum_{j != i} p, sum_{j != i} p S
		for (int j = 0; j < B; j++) {
			if (j == i)
				continue;
			off += p[j];
			offs += (double)p[j] * s[j];
			if (ds)
				ds[j] += cs * p[j];
		}
		if (ds)
			ds[i] -= cs * (float)off;
		gs += offs - off * s[i];
	}
	if (dtau)
		*dtau -= (float)((double)c * gs / ((double)tau * tau));
}

/* ------------------------------------------------------------ max margin */

double nn_max_margin_forward(const float *pos, const float *neg, float margin, int B, int N)
{
	HR_ASSERT(B >= 0 && N >= 0);
	double total = 0.0;

	for (int b = 0; b < B; b++) {
		const float *n = neg + (size_t)b * N;
		for (int k = 0; k < N; k++) {
			/* The same float expression as the backward's: one active set. */
			float h = n[k] - pos[b] + margin;
			if (h > 0.0f)
				total += h;
		}
	}
	return B > 0 && N > 0 ? total / ((double)B * N) : 0.0;
}

void nn_max_margin_backward(float *dpos, float *dneg, float dloss, const float *pos,
			    const float *neg, float margin, int B, int N)
{
	HR_ASSERT(B >= 0 && N >= 0);
	if (B == 0 || N == 0 || (!dpos && !dneg))
		return;
	float c = (float)((double)dloss / ((double)B * N));

	for (int b = 0; b < B; b++) {
		const float *n = neg + (size_t)b * N;
		int active = 0;
		for (int k = 0; k < N; k++) {
			float h = n[k] - pos[b] + margin;
			if (!(h > 0.0f))
				continue;
			active++;
			if (dneg)
				dneg[(size_t)b * N + k] += c;
		}
		if (dpos)
			dpos[b] -= c * (float)active;
	}
}

/* ------------------------------------------------------- sampled softmax */

/* Row b: the max of its N + 1 logits and sum e^(x - max) in double. */
static double sampled_row(float *mx, float pos, const float *neg, int N)
{
	float m = pos;
	double sum = 0.0;

	for (int k = 0; k < N; k++)
		m = fmaxf(m, neg[k]);
	sum = expf(pos - m);
	for (int k = 0; k < N; k++)
		sum += expf(neg[k] - m);
	*mx = m;
	return sum;
}

double nn_sampled_softmax_forward(const float *pos, const float *neg, int B, int N)
{
	HR_ASSERT(B >= 0 && N >= 0);
	double total = 0.0;

	for (int b = 0; b < B; b++) {
		float m;
		double sum = sampled_row(&m, pos[b], neg + (size_t)b * N, N);
		total += log(sum) - ((double)pos[b] - m);
	}
	return B > 0 ? total / B : 0.0;
}

void nn_sampled_softmax_backward(float *dpos, float *dneg, float dloss, const float *pos,
				 const float *neg, int B, int N)
{
	HR_ASSERT(B >= 0 && N >= 0);
	if (B == 0 || (!dpos && !dneg))
		return;
	float c = dloss / (float)B;

	for (int b = 0; b < B; b++) {
		const float *n = neg + (size_t)b * N;
		float m;
		double sum = sampled_row(&m, pos[b], n, N), negp = 0.0;
		float inv = (float)(1.0 / sum);
		for (int k = 0; k < N; k++) {
			float p = expf(n[k] - m) * inv;
			negp += p;
			if (dneg)
				dneg[(size_t)b * N + k] += c * p;
		}
		if (dpos)
			dpos[b] -= c * (float)negp;
	}
}

/* ------------------------------------------------------------ masked MSE */

static int observed_count(const uint8_t *mask, int N)
{
	if (!mask)
		return N;
	int n = 0;
	for (int i = 0; i < N; i++)
		n += mask[i] != 0;
	return n;
}

double nn_masked_mse_forward(const float *pred, const float *target, const uint8_t *mask, int N)
{
	HR_ASSERT(N >= 0);
	double total = 0.0;
	int n = 0;

	for (int i = 0; i < N; i++) {
		if (mask && !mask[i])
			continue;
		double d = (double)pred[i] - target[i];
		total += d * d;
		n++;
	}
	return n > 0 ? total / n : 0.0;
}

void nn_masked_mse_backward(float *dpred, float dloss, const float *pred, const float *target,
			    const uint8_t *mask, int N)
{
	HR_ASSERT(N >= 0);
	if (!dpred)
		return;
	int n = observed_count(mask, N);
	if (n == 0)
		return;
	float c = 2.0f * dloss / (float)n;

	for (int i = 0; i < N; i++)
		if (!mask || mask[i])
			dpred[i] += c * (pred[i] - target[i]);
}
