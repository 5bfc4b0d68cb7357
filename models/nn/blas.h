/*
 * blas.h - the OpenBLAS underneath nn_sgemm: which kernel ("core") is
 * active, choosing a better one at start-up, threading, a GFLOP/s probe.
 *
 * Debian's OpenBLAS is built with DYNAMIC_ARCH: at load time it detects the
 * CPU and picks one of its kernels, or the one named by the environment
 * variable OPENBLAS_CORETYPE.  On a CPU it does not know it falls back to
 * an old generic kernel (Prescott, Core2, Nehalem, Sandybridge) that can be
 * several times slower than the AVX2/AVX-512 kernels the CPU could run.
 * Since the variable is read only when the library loads, choosing another
 * kernel means re-executing the program: nn_blas_choose_kernel() does that,
 * once, at the top of main.  It never overrides a user's OPENBLAS_CORETYPE.
 *
 * Every kernel that ends up active is checked against nn_sgemm_ref on a few
 * random shapes (all four transpose cases) before training relies on it.
 *
 * Thread-safety: nn_blas_choose_kernel() and nn_blas_single_thread() are
 * start-up calls for the main thread before any other thread exists; the
 * rest are safe from any thread.
 */
#ifndef HR_NN_BLAS_H
#define HR_NN_BLAS_H

#include <stdint.h>

/* Environment variable marking a re-executed process ("1", then "2"). */
#define NN_BLAS_MARKER "HOGREC_BLAS_REEXEC"

/* CPU features that decide which OpenBLAS kernels can run. */
enum nn_cpu_feature {
	NN_CPU_AVX2 = 1u << 0,
	NN_CPU_FMA = 1u << 1,
	NN_CPU_AVX512F = 1u << 2,
	NN_CPU_AVX512BW = 1u << 3,
	NN_CPU_AVX512DQ = 1u << 4,
	NN_CPU_AVX512VL = 1u << 5,
	NN_CPU_AVX512CD = 1u << 6,
};

/* Everything the SkylakeX kernels use, and the Haswell ones. */
#define NN_CPU_SKYLAKEX                                                                  \
	(NN_CPU_AVX2 | NN_CPU_FMA | NN_CPU_AVX512F | NN_CPU_AVX512BW | NN_CPU_AVX512DQ | \
	 NN_CPU_AVX512VL | NN_CPU_AVX512CD)
#define NN_CPU_HASWELL (NN_CPU_AVX2 | NN_CPU_FMA)

/*
 * The NN_CPU_* bits this CPU (and OS: AVX state enabled) supports, from
 * __builtin_cpu_supports; 0 on non-x86 targets.
 */
unsigned nn_cpu_features(void);

/* The active OpenBLAS kernel's name, e.g. "Haswell"; static storage. */
const char *nn_blas_corename(void);

/* openblas_set_num_threads(1): parallelism comes from the trainer's workers. */
void nn_blas_single_thread(void);

/*
 * The pure decision of nn_blas_choose_kernel: the OPENBLAS_CORETYPE to
 * re-execute with, or NULL to keep the active kernel.
 *
 *   corename  the active kernel (NULL or unknown names count as generic)
 *   cpu       NN_CPU_* bits
 *   env       the current OPENBLAS_CORETYPE, or NULL when unset
 *
 * NULL when env is set and non-empty (the user's choice wins), when the CPU
 * supports nothing better than Haswell-class kernels without AVX2+FMA, or
 * when the active kernel is already of the best class the CPU supports
 * (AVX-512: SkylakeX, Cooperlake, SapphireRapids; AVX2: those and Haswell,
 * Zen).  Otherwise "SkylakeX" when the CPU has every NN_CPU_SKYLAKEX bit,
 * else "Haswell".
 */
const char *nn_blas_pick(const char *corename, unsigned cpu, const char *env);

/*
 * The kernel to retry with when corename failed verification, or NULL:
 * an AVX-512 kernel falls back to "Haswell" (if the CPU has AVX2+FMA) else
 * "Prescott"; an AVX2 kernel to "Prescott" (SSE3, any x86-64); else NULL.
 */
const char *nn_blas_fallback(const char *corename, unsigned cpu);

/*
 * Compares nn_sgemm with nn_sgemm_ref on random matrices of a few odd
 * shapes (up to 67 x 75 x 301), all four transpose cases, alpha and beta
 * not 0 or 1.  An element passes when |C - ref| <= (K + 4) FLT_EPSILON
 * (|alpha| sum_k |a_ik b_kj| + |beta c_ij|), twice the classic bound on a
 * float dot product of length K, so only a wrong kernel fails.
 *
 * Returns 0; HR_EINVAL (message: the kernel, shape and worst element) when
 * an element fails or is not finite; HR_ENOMEM.
 */
int nn_blas_verify(uint64_t seed);

/*
 * Start-up kernel choice; call first thing in main, before any thread, with
 * main's argv (NULL-terminated).  Logs the active kernel and the decision
 * (log_info).  In order:
 *
 *  - OPENBLAS_CORETYPE set by the user (no NN_BLAS_MARKER): kept.
 *  - Otherwise, if nn_blas_pick() names a better kernel: sets
 *    OPENBLAS_CORETYPE and NN_BLAS_MARKER=1 and execv()s /proc/self/exe
 *    with argv.  Does not return unless execv fails (then logs a warning
 *    and continues with the active kernel).
 *  - Whatever kernel is active is verified (nn_blas_verify).  If it fails
 *    and the kernel was chosen by hogrec (not the user), re-executes once
 *    more with nn_blas_fallback() (NN_BLAS_MARKER=2).
 *
 * argv NULL: decide, verify and log, but never re-execute (tests).
 *
 * Returns 0 when the active kernel passed verification; HR_EINVAL when it
 * failed and no fallback is allowed or possible (the message names the
 * kernel; the caller should exit: results would be wrong); HR_ENOMEM.
 */
int nn_blas_choose_kernel(char **argv);

/*
 * Measured sgemm throughput, GFLOP/s (2 M N K flops per call), of nn_sgemm
 * C (M, N) = A (M, K) B (K, N) repeated for about `seconds` (at least one
 * timed call after a warm-up).  Allocates its matrices.  Returns a negative
 * value when they cannot be allocated.  For benchmarks and logs.
 */
double nn_sgemm_gflops_mnk(int M, int N, int K, double seconds);

/* nn_sgemm_gflops_mnk(n, n, n, seconds). */
double nn_sgemm_gflops(int n, double seconds);

#endif
