/* SIMD distance kernels, chosen once at run time (distance.c). Each level
 * (scalar, AVX2+FMA, AVX-512) fills the same table; NVF_SIMD=scalar|avx2 in the
 * environment caps the level. */
#ifndef NVF_DISTANCE_H
#define NVF_DISTANCE_H

#include <stddef.h>
#include <stdint.h>

typedef struct nvf_kernels {
	const char *name; /* "scalar", "avx2", "avx512" */
	/* Pairwise, any alignment, n >= 1. */
	float (*l2sq)(const float *a, const float *b, size_t n);
	float (*dot)(const float *a, const float *b, size_t n);
	float (*l1)(const float *a, const float *b, size_t n);
	float (*linf)(const float *a, const float *b, size_t n);
	/* *smin = sum min(a,b), *smax = sum max(a,b) (weighted Jaccard). */
	void (*minmax)(const float *a, const float *b, size_t n, float *smin, float *smax);
	/* Number of i with a[i] != b[i] (0.0 == -0.0), as a float. */
	float (*hamming)(const float *a, const float *b, size_t n);
	float (*norm_sq)(const float *a, size_t n);
	/* One query against nrows rows: out[i] = f(q, rows + i * stride) (stride in
	 * floats). Rows are 64-byte aligned when stride * 4 is a multiple of 64. */
	void (*l2sq_rows)(const float *q, const float *rows, size_t stride, size_t nrows, size_t n, float *out);
	void (*dot_rows)(const float *q, const float *rows, size_t stride, size_t nrows, size_t n, float *out);
	/* A block of queries against a block of rows, register-tiled like a GEMM:
	 * out[i * ldo + j] = dot(Q + i * ldq, X + j * ldx) for i < nq, j < nx. */
	void (*dot_block)(const float *Q, size_t ldq, size_t nq, const float *X, size_t ldx, size_t nx, size_t n,
			  float *out, size_t ldo);
	/* 4-bit codes (two per byte: the even dimension in the low nibble, the odd one
	 * in the high nibble) against an int8 query split into its even (qe) and odd
	 * (qo) dimensions: sum of code * q over the 2 * nbytes dimensions. qe and qo
	 * hold nbytes values each (a missing last odd dimension is 0 in qo). */
	int32_t (*dot_q4)(const uint8_t *codes, const int8_t *qe, const int8_t *qo, size_t nbytes);
} nvf_kernels;

/* The table for this CPU (thread-safe, chosen on first call). */
const nvf_kernels *nvf__kernels(void);
/* Tables by level, for tests comparing each with the scalar reference; NULL if this
 * CPU (or build) lacks the level. */
const nvf_kernels *nvf__kernels_scalar(void);
const nvf_kernels *nvf__kernels_avx2(void);
const nvf_kernels *nvf__kernels_avx512(void);
/* The AVX-512 set without its VNNI kernel (dot_q4), which nvf__kernels_avx512 picks
 * where the CPU has VNNI: for tests, so that both are checked on such a CPU. */
const nvf_kernels *nvf__kernels_avx512_plain(void);

#endif
