/* Portable kernels: the reference level, and the one used where no SIMD level is
 * available. Each sum runs in LANES independent accumulators over fixed-size
 * blocks: the fixed inner trip count lets gcc vectorize it (SLP) at -O2 without
 * -ffast-math, and the split accumulators keep the rounding error low. */
#include "distance.h"
#include "nvf_int.h"

#include <math.h>

#define LANES 8

static float hsum(const float *acc)
{
	return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

static float l2sq(const float *a, const float *b, size_t n)
{
	float acc[LANES] = { 0 };
	size_t i = 0;
	for (; i + LANES <= n; i += LANES) {
		for (size_t j = 0; j < LANES; j++) {
			float d = a[i + j] - b[i + j];
			acc[j] += d * d;
		}
	}
	for (size_t j = 0; i < n; i++, j++) {
		float d = a[i] - b[i];
		acc[j] += d * d;
	}
	return hsum(acc);
}

static float dot(const float *a, const float *b, size_t n)
{
	float acc[LANES] = { 0 };
	size_t i = 0;
	for (; i + LANES <= n; i += LANES) {
		for (size_t j = 0; j < LANES; j++)
			acc[j] += a[i + j] * b[i + j];
	}
	for (size_t j = 0; i < n; i++, j++)
		acc[j] += a[i] * b[i];
	return hsum(acc);
}

static float l1(const float *a, const float *b, size_t n)
{
	float acc[LANES] = { 0 };
	size_t i = 0;
	for (; i + LANES <= n; i += LANES) {
		for (size_t j = 0; j < LANES; j++)
			acc[j] += fabsf(a[i + j] - b[i + j]);
	}
	for (size_t j = 0; i < n; i++, j++)
		acc[j] += fabsf(a[i] - b[i]);
	return hsum(acc);
}

static float linf(const float *a, const float *b, size_t n)
{
	float acc[LANES] = { 0 };
	size_t i = 0;
	for (; i + LANES <= n; i += LANES) {
		for (size_t j = 0; j < LANES; j++) {
			float d = fabsf(a[i + j] - b[i + j]);
			acc[j] = d > acc[j] ? d : acc[j];
		}
	}
	for (size_t j = 0; i < n; i++, j++) {
		float d = fabsf(a[i] - b[i]);
		acc[j] = d > acc[j] ? d : acc[j];
	}
	float m = acc[0];
	for (size_t j = 1; j < LANES; j++)
		m = acc[j] > m ? acc[j] : m;
	return m;
}

static void minmax(const float *a, const float *b, size_t n, float *smin, float *smax)
{
	float lo[LANES] = { 0 }, hi[LANES] = { 0 };
	size_t i = 0;
	for (; i + LANES <= n; i += LANES) {
		for (size_t j = 0; j < LANES; j++) {
			float x = a[i + j], y = b[i + j];
			lo[j] += x < y ? x : y;
			hi[j] += x < y ? y : x;
		}
	}
	for (size_t j = 0; i < n; i++, j++) {
		float x = a[i], y = b[i];
		lo[j] += x < y ? x : y;
		hi[j] += x < y ? y : x;
	}
	*smin = hsum(lo);
	*smax = hsum(hi);
}

static float hamming(const float *a, const float *b, size_t n)
{
	size_t count = 0;
	for (size_t i = 0; i < n; i++)
		count += a[i] != b[i]; /* float compare: 0.0 == -0.0, NaN differs */
	return (float)count;
}

static float norm_sq(const float *a, size_t n)
{
	return dot(a, a, n);
}

static void l2sq_rows(const float *q, const float *rows, size_t stride, size_t nrows, size_t n, float *out)
{
	for (size_t r = 0; r < nrows; r++)
		out[r] = l2sq(q, rows + r * stride, n);
}

static void dot_rows(const float *q, const float *rows, size_t stride, size_t nrows, size_t n, float *out)
{
	for (size_t r = 0; r < nrows; r++)
		out[r] = dot(q, rows + r * stride, n);
}

static void dot_block(const float *Q, size_t ldq, size_t nq, const float *X, size_t ldx, size_t nx, size_t n,
		      float *out, size_t ldo)
{
	/* Rows outermost: one row stays in cache while the (smaller) query block
	 * streams past it. */
	for (size_t j = 0; j < nx; j++)
		for (size_t i = 0; i < nq; i++)
			out[i * ldo + j] = dot(Q + i * ldq, X + j * ldx, n);
}

static int32_t dot_q4(const uint8_t *codes, const int8_t *qe, const int8_t *qo, size_t nbytes)
{
	int32_t s = 0;
	for (size_t j = 0; j < nbytes; j++)
		s += (int32_t)(codes[j] & 15) * qe[j] + (int32_t)(codes[j] >> 4) * qo[j];
	return s;
}

static const nvf_kernels scalar_kernels = {
	.name = "scalar",
	.l2sq = l2sq,
	.dot = dot,
	.l1 = l1,
	.linf = linf,
	.minmax = minmax,
	.hamming = hamming,
	.norm_sq = norm_sq,
	.l2sq_rows = l2sq_rows,
	.dot_rows = dot_rows,
	.dot_block = dot_block,
	.dot_q4 = dot_q4,
};

const nvf_kernels *nvf__kernels_scalar(void)
{
	return &scalar_kernels;
}
