/* score.c - dot and cosine scoring of row pairs; BCE-with-logits loss. */
#include "models/nn/nn.h"

#include <math.h>
#include <stddef.h>

#include "common/err.h"
#include "models/nn/internal.h"

void nn_dot_forward(float *out, const float *a, const float *b, int B, int D)
{
	HR_ASSERT(B >= 0 && D >= 0);
	for (int r = 0; r < B; r++) {
		const float *x = a + (size_t)r * D, *y = b + (size_t)r * D;
		float s = 0.0f;
		for (int d = 0; d < D; d++)
			s += x[d] * y[d];
		out[r] = s;
	}
}

void nn_dot_backward(float *da, float *db, const float *dout, const float *a, const float *b, int B,
		     int D)
{
	HR_ASSERT(B >= 0 && D >= 0);
	for (int r = 0; r < B; r++) {
		size_t o = (size_t)r * D;
		float g = dout[r];
		if (da)
			for (int d = 0; d < D; d++)
				da[o + d] += g * b[o + d];
		if (db)
			for (int d = 0; d < D; d++)
				db[o + d] += g * a[o + d];
	}
}

void nn_cosine_forward(float *out, float *na, float *nb, const float *a, const float *b, float eps,
		       int B, int D)
{
	HR_ASSERT(B >= 0 && D >= 0 && eps > 0.0f);
	for (int r = 0; r < B; r++) {
		const float *x = a + (size_t)r * D, *y = b + (size_t)r * D;
		double s = 0.0, qa = 0.0, qb = 0.0;
		for (int d = 0; d < D; d++) {
			s += (double)x[d] * y[d];
			qa += (double)x[d] * x[d];
			qb += (double)y[d] * y[d];
		}
		double ra = sqrt(qa), rb = sqrt(qb);
		na[r] = (float)ra;
		nb[r] = (float)rb;
		out[r] = (float)(s / (fmax(ra, eps) * fmax(rb, eps)));
	}
}

/*
 * d out / d a = b / (ca cb) - [|a| > eps] out a / |a|^2 with ca, cb the
 * clamped norms; the radial term vanishes where the norm is clamped.
 */
void nn_cosine_backward(float *da, float *db, const float *dout, const float *a, const float *b,
			const float *out, const float *na, const float *nb, float eps, int B, int D)
{
	HR_ASSERT(B >= 0 && D >= 0 && eps > 0.0f);
	for (int r = 0; r < B; r++) {
		size_t o = (size_t)r * D;
		float ca = na[r] > eps ? na[r] : eps, cb = nb[r] > eps ? nb[r] : eps;
		float g = dout[r], inv = g / (ca * cb);
		float ka = na[r] > eps ? g * out[r] / (na[r] * na[r]) : 0.0f;
		float kb = nb[r] > eps ? g * out[r] / (nb[r] * nb[r]) : 0.0f;

		if (da)
			for (int d = 0; d < D; d++)
				da[o + d] += inv * b[o + d] - ka * a[o + d];
		if (db)
			for (int d = 0; d < D; d++)
				db[o + d] += inv * a[o + d] - kb * b[o + d];
	}
}

double nn_bce_logits_forward(float *losses, const float *logits, const float *labels, int B)
{
	HR_ASSERT(B >= 0);
	double sum = 0.0;

	for (int r = 0; r < B; r++) {
		double x = logits[r], y = labels[r];
		double l = fmax(x, 0.0) - x * y + log1p(exp(-fabs(x)));
		if (losses)
			losses[r] = (float)l;
		sum += l;
	}
	return B > 0 ? sum / B : 0.0;
}

void nn_bce_logits_backward(float *dlogits, float dloss, const float *logits, const float *labels,
			    int B)
{
	HR_ASSERT(B >= 0);
	if (!dlogits || B == 0)
		return;
	float scale = dloss / (float)B;
	for (int r = 0; r < B; r++) {
		dlogits[r] += scale * (nn_sigmoidf(logits[r]) - labels[r]);
	}
}
