/*
 * simd.h - hand-written kernels built for the CPU they run on.
 *
 * The project builds for baseline x86-64 (SSE2), so that one binary runs
 * on every machine; OpenBLAS picks its kernels at run time, our own loops
 * cannot.  HR_MULTIVERSION on a hot function makes the compiler build it
 * three times (AVX-512F, AVX2, baseline) and pick one at load time (GNU
 * ifunc): the loops vectorise 16, 8 or 4 floats wide.  Only for leaf
 * kernels that dominate a profile: each clone is code size.
 */
#ifndef HR_SIMD_H
#define HR_SIMD_H

/* ThreadSanitizer's runtime is not up when the loader runs ifunc resolvers
 * (the program dies with SIGSEGV before main): no clones under TSan. */
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define HR_NO_MULTIVERSION 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define HR_NO_MULTIVERSION 1
#endif

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(HR_NO_MULTIVERSION)
#define HR_MULTIVERSION __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define HR_MULTIVERSION
#endif

#endif
