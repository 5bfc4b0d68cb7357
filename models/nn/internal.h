/* internal.h - helpers shared by the nn kernels; not part of the API. */
#ifndef HR_NN_INTERNAL_H
#define HR_NN_INTERNAL_H

#include <math.h>

/* 1 / (1 + e^-x) without overflow: exp of a non-positive number only. */
static inline float nn_sigmoidf(float x)
{
	if (x >= 0.0f)
		return 1.0f / (1.0f + expf(-x));
	float e = expf(x);
	return e / (1.0f + e);
}

#endif
