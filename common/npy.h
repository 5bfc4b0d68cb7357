/*
 * npy.h - writing numpy .npy files (format 1.0, little-endian, C order):
 * `bin/ckpt export` writes tensors with it, `bin/blasbench retrieval` the
 * inputs and answers its Python twin reads.  Written to OUT.tmp-PID and
 * renamed into place, so a reader never sees half a file.
 */
#ifndef HR_NPY_H
#define HR_NPY_H

#include <stdint.h>

enum npy_dtype { NPY_F32, NPY_U32, NPY_U64 };

/*
 * Writes data, a (rows, cols) matrix of dtype in C order, to out.  0, or
 * HR_EIO / HR_EINVAL (path too long) naming out; nothing is left behind
 * on failure.
 */
int npy_write(const char *out, enum npy_dtype dtype, const void *data, uint64_t rows,
	      uint64_t cols);

#endif
