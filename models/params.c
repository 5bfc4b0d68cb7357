#include "params.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

void params_init(struct params *p)
{
	memset(p, 0, sizeof(*p));
}

int params_add(struct params *p, const char *name, uint32_t rows, uint32_t cols, int sparse,
	       enum param_init init, float scale)
{
	struct tensor *t;

	if (p->n == PARAMS_MAX)
		return hr_error(HR_EINVAL, "more than %d parameter tensors", PARAMS_MAX);
	if (rows == 0 || cols == 0 || strlen(name) >= PARAM_NAME_MAX)
		return hr_error(HR_EINVAL, "bad parameter tensor '%s' (%u x %u)", name, rows, cols);
	t = &p->t[p->n];
	memset(t, 0, sizeof(*t));
	snprintf(t->name, sizeof(t->name), "%s", name);
	t->rows = rows;
	t->cols = cols;
	t->sparse = sparse;
	t->init = init;
	t->scale = scale;
	t->vocab = -1;
	if (!sparse) {
		t->offset = p->dense_n;
		/* 16-float alignment keeps every tensor's rows 64-byte aligned. */
		p->dense_n += ((size_t)rows * cols + 15) & ~(size_t)15;
	}
	return p->n++;
}

int params_add_state(struct params *p, const char *name, uint32_t rows, uint32_t cols,
		     enum param_init init)
{
	size_t keep = p->dense_n;
	int i = params_add(p, name, rows, cols, 0, init, 0);

	if (i < 0)
		return i;
	p->dense_n = keep; /* not in the dense block: its own allocation */
	p->t[i].offset = 0;
	p->t[i].frozen = 1;
	return i;
}

static void fill(struct tensor *t, uint64_t seed, int index)
{
	size_t n = (size_t)t->rows * t->cols;
	float fan_in = (float)t->cols, fan_out = (float)t->rows;
	struct rng r;
	float a;

	rng_seed(&r, seed, 0x9a7a0000u + (uint64_t)index);
	switch (t->init) {
	case INIT_ZERO: memset(t->w, 0, n * sizeof(float)); break;
	case INIT_ONE:
	case INIT_CONST:
		for (size_t i = 0; i < n; i++)
			t->w[i] = t->init == INIT_ONE ? 1.0f : t->scale;
		break;
	case INIT_XAVIER:
	case INIT_KAIMING:
		a = t->init == INIT_XAVIER ? sqrtf(6.0f / (fan_in + fan_out)) :
					     sqrtf(6.0f / fan_in);
		for (size_t i = 0; i < n; i++)
			t->w[i] = (float)((2.0 * rng_uniform(&r) - 1.0) * a);
		break;
	case INIT_NORMAL:
		for (size_t i = 0; i < n; i++)
			t->w[i] = (float)(rng_normal(&r) * t->scale);
		break;
	}
	if (t->sparse)
		memset(t->w, 0, t->cols * sizeof(float)); /* row 0 is padding */
}

static float *alloc_floats(size_t n)
{
	/* 64-byte aligned, zeroed. */
	size_t bytes = (n ? n : 1) * sizeof(float);
	void *p = aligned_alloc(64, (bytes + 63) & ~(size_t)63);

	if (p)
		memset(p, 0, bytes);
	return p;
}

int params_finalize(struct params *p, int state, uint64_t seed)
{
	p->dense = alloc_floats(p->dense_n);
	if (state >= 1)
		p->dense_s1 = alloc_floats(p->dense_n);
	if (state >= 2)
		p->dense_s2 = alloc_floats(p->dense_n);
	if (!p->dense || (state >= 1 && !p->dense_s1) || (state >= 2 && !p->dense_s2))
		goto oom;
	for (int i = 0; i < p->n; i++) {
		struct tensor *t = &p->t[i];
		size_t n = (size_t)t->rows * t->cols;
		if (t->frozen) {
			t->w = alloc_floats(n);
			if (!t->w)
				goto oom;
		} else if (t->sparse) {
			t->w = alloc_floats(n);
			t->s1 = state >= 1 ? alloc_floats(n) : NULL;
			t->s2 = state >= 2 ? alloc_floats(n) : NULL;
			if (!t->w || (state >= 1 && !t->s1) || (state >= 2 && !t->s2))
				goto oom;
		} else {
			t->w = p->dense + t->offset;
			t->s1 = p->dense_s1 ? p->dense_s1 + t->offset : NULL;
			t->s2 = p->dense_s2 ? p->dense_s2 + t->offset : NULL;
		}
		fill(t, seed, i);
	}
	return 0;
oom:
	params_release(p);
	return hr_error(HR_ENOMEM, "out of memory for %zu parameters", params_count(p));
}

void params_release(struct params *p)
{
	for (int i = 0; i < p->n; i++) {
		struct tensor *t = &p->t[i];
		if (t->sparse || t->frozen) {
			free(t->w);
			free(t->s1);
			free(t->s2);
		}
		t->w = t->s1 = t->s2 = NULL;
	}
	free(p->dense);
	free(p->dense_s1);
	free(p->dense_s2);
	p->dense = p->dense_s1 = p->dense_s2 = NULL;
}

struct tensor *params_find(struct params *p, const char *name)
{
	for (int i = 0; i < p->n; i++)
		if (!strcmp(p->t[i].name, name))
			return &p->t[i];
	return NULL;
}

size_t params_count(const struct params *p)
{
	size_t n = 0;

	for (int i = 0; i < p->n; i++)
		n += (size_t)p->t[i].rows * p->t[i].cols;
	return n;
}
