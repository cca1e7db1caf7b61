/* AVX2 + FMA kernels. The file is built without -mavx2: every function carries a
 * target attribute, and nvf__kernels_avx2() hands the table out only when the CPU
 * (and the OS, which must save the ymm state) supports it. Tails use vmaskmovps,
 * which never touches memory past the end of a vector. */
#include "distance.h"
#include "nvf_int.h"

#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>

#define TARGET __attribute__((target("avx2,fma,popcnt")))

/* The row kernels read four rows at once, four interleaved streams that the
 * hardware prefetcher follows poorly: on Zen 4, prefetching the rows PF_ROWS
 * ahead into L2 (T1) raised a 188 MB scan from ~15 to ~22 GB/s, where prefetching
 * into L1 (T0) gained nothing. */
#define PF_ROWS 8
#define PF_HINT _MM_HINT_T1

/* tail_mask(r): the first r of 8 lanes set (0 < r < 8). */
static const int32_t tail_bits[16] = { -1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0 };

TARGET static inline __m256i tail_mask(size_t r)
{
	return _mm256_loadu_si256((const __m256i *)(const void *)(tail_bits + 8 - r));
}

TARGET static inline float hsum(__m256 v)
{
	__m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	x = _mm_add_ps(x, _mm_movehl_ps(x, x));
	x = _mm_add_ss(x, _mm_movehdup_ps(x));
	return _mm_cvtss_f32(x);
}

/* The sums of four vectors, in lanes 0..3. */
TARGET static inline __m128 hsum4(__m256 v0, __m256 v1, __m256 v2, __m256 v3)
{
	__m256 h = _mm256_hadd_ps(_mm256_hadd_ps(v0, v1), _mm256_hadd_ps(v2, v3));
	return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

TARGET static float l2sq(const float *a, const float *b, size_t n)
{
	__m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
	size_t i = 0;
	for (; i + 32 <= n; i += 32) {
		__m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
		__m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
		__m256 d2 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16));
		__m256 d3 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24));
		s0 = _mm256_fmadd_ps(d0, d0, s0);
		s1 = _mm256_fmadd_ps(d1, d1, s1);
		s2 = _mm256_fmadd_ps(d2, d2, s2);
		s3 = _mm256_fmadd_ps(d3, d3, s3);
	}
	for (; i + 8 <= n; i += 8) {
		__m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
		s1 = _mm256_fmadd_ps(d, d, s1);
	}
	if (i < n) {
		__m256i m = tail_mask(n - i);
		__m256 d = _mm256_sub_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m));
		s2 = _mm256_fmadd_ps(d, d, s2);
	}
	return hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

TARGET static float dot(const float *a, const float *b, size_t n)
{
	__m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
	size_t i = 0;
	for (; i + 32 <= n; i += 32) {
		s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
		s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
		s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
		s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
	}
	for (; i + 8 <= n; i += 8)
		s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s1);
	if (i < n) {
		__m256i m = tail_mask(n - i);
		s2 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m), s2);
	}
	return hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

TARGET static float norm_sq(const float *a, size_t n)
{
	__m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
	size_t i = 0;
	for (; i + 32 <= n; i += 32) {
		__m256 x0 = _mm256_loadu_ps(a + i), x1 = _mm256_loadu_ps(a + i + 8);
		__m256 x2 = _mm256_loadu_ps(a + i + 16), x3 = _mm256_loadu_ps(a + i + 24);
		s0 = _mm256_fmadd_ps(x0, x0, s0);
		s1 = _mm256_fmadd_ps(x1, x1, s1);
		s2 = _mm256_fmadd_ps(x2, x2, s2);
		s3 = _mm256_fmadd_ps(x3, x3, s3);
	}
	for (; i + 8 <= n; i += 8) {
		__m256 x = _mm256_loadu_ps(a + i);
		s1 = _mm256_fmadd_ps(x, x, s1);
	}
	if (i < n) {
		__m256 x = _mm256_maskload_ps(a + i, tail_mask(n - i));
		s2 = _mm256_fmadd_ps(x, x, s2);
	}
	return hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

TARGET static inline __m256 absdiff(__m256 x, __m256 y)
{
	/* Clearing the sign bit: |x - y| without a branch or a compare. */
	return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), _mm256_sub_ps(x, y));
}

TARGET static float l1(const float *a, const float *b, size_t n)
{
	__m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
	size_t i = 0;
	for (; i + 32 <= n; i += 32) {
		s0 = _mm256_add_ps(s0, absdiff(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
		s1 = _mm256_add_ps(s1, absdiff(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8)));
		s2 = _mm256_add_ps(s2, absdiff(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16)));
		s3 = _mm256_add_ps(s3, absdiff(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24)));
	}
	for (; i + 8 <= n; i += 8)
		s1 = _mm256_add_ps(s1, absdiff(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
	if (i < n) {
		__m256i m = tail_mask(n - i);
		s2 = _mm256_add_ps(s2, absdiff(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m)));
	}
	return hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

/* Masked-out lanes load as 0 - 0: they cannot raise a maximum of absolute values. */
TARGET static float linf(const float *a, const float *b, size_t n)
{
	__m256 m0 = _mm256_setzero_ps(), m1 = m0, m2 = m0, m3 = m0;
	size_t i = 0;
	for (; i + 32 <= n; i += 32) {
		m0 = _mm256_max_ps(m0, absdiff(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
		m1 = _mm256_max_ps(m1, absdiff(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8)));
		m2 = _mm256_max_ps(m2, absdiff(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16)));
		m3 = _mm256_max_ps(m3, absdiff(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24)));
	}
	for (; i + 8 <= n; i += 8)
		m1 = _mm256_max_ps(m1, absdiff(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
	if (i < n) {
		__m256i m = tail_mask(n - i);
		m2 = _mm256_max_ps(m2, absdiff(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m)));
	}
	__m256 v = _mm256_max_ps(_mm256_max_ps(m0, m1), _mm256_max_ps(m2, m3));
	__m128 x = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	x = _mm_max_ps(x, _mm_movehl_ps(x, x));
	x = _mm_max_ss(x, _mm_movehdup_ps(x));
	return _mm_cvtss_f32(x);
}

TARGET static void minmax(const float *a, const float *b, size_t n, float *smin, float *smax)
{
	__m256 lo0 = _mm256_setzero_ps(), lo1 = lo0, hi0 = lo0, hi1 = lo0;
	size_t i = 0;
	for (; i + 16 <= n; i += 16) {
		__m256 x0 = _mm256_loadu_ps(a + i), y0 = _mm256_loadu_ps(b + i);
		__m256 x1 = _mm256_loadu_ps(a + i + 8), y1 = _mm256_loadu_ps(b + i + 8);
		lo0 = _mm256_add_ps(lo0, _mm256_min_ps(x0, y0));
		hi0 = _mm256_add_ps(hi0, _mm256_max_ps(x0, y0));
		lo1 = _mm256_add_ps(lo1, _mm256_min_ps(x1, y1));
		hi1 = _mm256_add_ps(hi1, _mm256_max_ps(x1, y1));
	}
	for (; i < n; i += 8) {
		__m256i m = n - i >= 8 ? _mm256_set1_epi32(-1) : tail_mask(n - i);
		__m256 x = _mm256_maskload_ps(a + i, m), y = _mm256_maskload_ps(b + i, m);
		lo1 = _mm256_add_ps(lo1, _mm256_min_ps(x, y));
		hi1 = _mm256_add_ps(hi1, _mm256_max_ps(x, y));
	}
	*smin = hsum(_mm256_add_ps(lo0, lo1));
	*smax = hsum(_mm256_add_ps(hi0, hi1));
}

TARGET static float hamming(const float *a, const float *b, size_t n)
{
	size_t count = 0, i = 0;
	/* NEQ_UQ is C's !=: 0.0 equals -0.0 and a NaN differs from everything.
	 * Masked-out lanes load as 0 in both and compare equal. */
	for (; i + 8 <= n; i += 8)
		count += (size_t)__builtin_popcount((unsigned)_mm256_movemask_ps(
			_mm256_cmp_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), _CMP_NEQ_UQ)));
	if (i < n) {
		__m256i m = tail_mask(n - i);
		count += (size_t)__builtin_popcount((unsigned)_mm256_movemask_ps(
			_mm256_cmp_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m), _CMP_NEQ_UQ)));
	}
	return (float)count;
}

/* ---- one query against many rows ---- */

/* Four rows at a time, so that each load of the query serves four rows, with two
 * accumulators per row (eight FMA chains cover the FMA latency), prefetching the
 * group PF_ROWS rows ahead. The last groups prefetch their own rows instead of
 * reading past the array. */
#define ROWS_SETUP()                                                                                  \
	const float *x0 = rows + r * stride, *x1 = x0 + stride, *x2 = x1 + stride, *x3 = x2 + stride; \
	const float *p0 = r + PF_ROWS + 4 <= nrows ? x0 + PF_ROWS * stride : x0;                      \
	const float *p1 = p0 + stride, *p2 = p1 + stride, *p3 = p2 + stride;                          \
	__m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;                                   \
	__m256 t0 = s0, t1 = s0, t2 = s0, t3 = s0;                                                    \
	size_t k = 0

#define PREFETCH4(off)                                             \
	do {                                                       \
		_mm_prefetch((const char *)(p0 + (off)), PF_HINT); \
		_mm_prefetch((const char *)(p1 + (off)), PF_HINT); \
		_mm_prefetch((const char *)(p2 + (off)), PF_HINT); \
		_mm_prefetch((const char *)(p3 + (off)), PF_HINT); \
	} while (0)

#define L2_STEP(s, qv, x, load)                           \
	do {                                              \
		__m256 d_ = _mm256_sub_ps(load(x), (qv)); \
		s = _mm256_fmadd_ps(d_, d_, s);           \
	} while (0)

#define DOT_STEP(s, qv, x, load) s = _mm256_fmadd_ps(load(x), (qv), s)

#define LD0(p) _mm256_loadu_ps((p) + k)
#define LD8(p) _mm256_loadu_ps((p) + k + 8)
#define LDM(p) _mm256_maskload_ps((p) + k, m)

/* One prefetch per 64-byte line: every other 8-float step. */
#define ROWS_BODY(STEP)                                                              \
	for (; k + 16 <= nv; k += 16) {                                              \
		PREFETCH4(k);                                                        \
		__m256 qa = _mm256_loadu_ps(q + k), qb = _mm256_loadu_ps(q + k + 8); \
		STEP(s0, qa, x0, LD0);                                               \
		STEP(s1, qa, x1, LD0);                                               \
		STEP(s2, qa, x2, LD0);                                               \
		STEP(s3, qa, x3, LD0);                                               \
		STEP(t0, qb, x0, LD8);                                               \
		STEP(t1, qb, x1, LD8);                                               \
		STEP(t2, qb, x2, LD8);                                               \
		STEP(t3, qb, x3, LD8);                                               \
	}                                                                            \
	if (k < nv) {                                                                \
		__m256 qa = _mm256_loadu_ps(q + k);                                  \
		STEP(s0, qa, x0, LD0);                                               \
		STEP(s1, qa, x1, LD0);                                               \
		STEP(s2, qa, x2, LD0);                                               \
		STEP(s3, qa, x3, LD0);                                               \
		k += 8;                                                              \
	}                                                                            \
	if (k < n) {                                                                 \
		__m256 qa = _mm256_maskload_ps(q + k, m);                            \
		STEP(t0, qa, x0, LDM);                                               \
		STEP(t1, qa, x1, LDM);                                               \
		STEP(t2, qa, x2, LDM);                                               \
		STEP(t3, qa, x3, LDM);                                               \
	}                                                                            \
	_mm_storeu_ps(out + r, hsum4(_mm256_add_ps(s0, t0), _mm256_add_ps(s1, t1),   \
				     _mm256_add_ps(s2, t2), _mm256_add_ps(s3, t3)))

TARGET static void l2sq_rows(const float *q, const float *rows, size_t stride, size_t nrows, size_t n, float *out)
{
	size_t nv = n & ~(size_t)7, r = 0;
	__m256i m = (n & 7) ? tail_mask(n & 7) : _mm256_setzero_si256();
	for (; r + 4 <= nrows; r += 4) {
		ROWS_SETUP();
		ROWS_BODY(L2_STEP);
	}
	for (; r < nrows; r++)
		out[r] = l2sq(q, rows + r * stride, n);
}

TARGET static void dot_rows(const float *q, const float *rows, size_t stride, size_t nrows, size_t n, float *out)
{
	size_t nv = n & ~(size_t)7, r = 0;
	__m256i m = (n & 7) ? tail_mask(n & 7) : _mm256_setzero_si256();
	for (; r + 4 <= nrows; r += 4) {
		ROWS_SETUP();
		ROWS_BODY(DOT_STEP);
	}
	for (; r < nrows; r++)
		out[r] = dot(q, rows + r * stride, n);
}

/* ---- a block of queries against a block of rows ---- */

/* 3 queries x 4 rows: twelve ymm accumulators plus four row vectors fill the
 * sixteen registers; seven loads per twelve FMAs keeps the FMA units the
 * bottleneck. */
#define TQ 3
#define TILE_STEP(LOAD)                                                                \
	do {                                                                           \
		__m256 b0 = LOAD(x0), b1 = LOAD(x1), b2 = LOAD(x2), b3 = LOAD(x3), a_; \
		a_ = LOAD(q0);                                                         \
		c00 = _mm256_fmadd_ps(a_, b0, c00);                                    \
		c01 = _mm256_fmadd_ps(a_, b1, c01);                                    \
		c02 = _mm256_fmadd_ps(a_, b2, c02);                                    \
		c03 = _mm256_fmadd_ps(a_, b3, c03);                                    \
		a_ = LOAD(q1);                                                         \
		c10 = _mm256_fmadd_ps(a_, b0, c10);                                    \
		c11 = _mm256_fmadd_ps(a_, b1, c11);                                    \
		c12 = _mm256_fmadd_ps(a_, b2, c12);                                    \
		c13 = _mm256_fmadd_ps(a_, b3, c13);                                    \
		a_ = LOAD(q2);                                                         \
		c20 = _mm256_fmadd_ps(a_, b0, c20);                                    \
		c21 = _mm256_fmadd_ps(a_, b1, c21);                                    \
		c22 = _mm256_fmadd_ps(a_, b2, c22);                                    \
		c23 = _mm256_fmadd_ps(a_, b3, c23);                                    \
	} while (0)

/* A partial tile (mq < TQ queries or mx < 4 rows) repeats its last query or row
 * in the missing places, so the loop stays branch-free; only the valid outputs
 * are stored. */
TARGET static void tile(const float *const *q, const float *const *x, size_t n, float *out, size_t ldo, size_t mq,
			size_t mx)
{
	const float *q0 = q[0], *q1 = q[1], *q2 = q[2];
	const float *x0 = x[0], *x1 = x[1], *x2 = x[2], *x3 = x[3];
	__m256 c00 = _mm256_setzero_ps(), c01 = c00, c02 = c00, c03 = c00;
	__m256 c10 = c00, c11 = c00, c12 = c00, c13 = c00;
	__m256 c20 = c00, c21 = c00, c22 = c00, c23 = c00;
	size_t k = 0;
	for (; k + 8 <= n; k += 8)
		TILE_STEP(LD0);
	if (k < n) {
		__m256i m = tail_mask(n - k);
		TILE_STEP(LDM);
	}
	__m128 r0 = hsum4(c00, c01, c02, c03), r1 = hsum4(c10, c11, c12, c13), r2 = hsum4(c20, c21, c22, c23);
	if (NVF_LIKELY(mq == TQ && mx == 4)) {
		_mm_storeu_ps(out, r0);
		_mm_storeu_ps(out + ldo, r1);
		_mm_storeu_ps(out + 2 * ldo, r2);
		return;
	}
	__m128i m = _mm_loadu_si128((const __m128i *)(const void *)(tail_bits + 8 - mx));
	_mm_maskstore_ps(out, m, r0);
	if (mq > 1)
		_mm_maskstore_ps(out + ldo, m, r1);
	if (mq > 2)
		_mm_maskstore_ps(out + 2 * ldo, m, r2);
}

/* Rows outermost: a group of four rows stays in L1 while the query block, which
 * the caller sizes to fit L2, streams past it. */
TARGET static void dot_block(const float *Q, size_t ldq, size_t nq, const float *X, size_t ldx, size_t nx, size_t n,
			     float *out, size_t ldo)
{
	for (size_t j = 0; j < nx; j += 4) {
		size_t mx = nx - j < 4 ? nx - j : 4;
		const float *x[4];
		for (size_t t = 0; t < 4; t++)
			x[t] = X + (j + (t < mx ? t : mx - 1)) * ldx;
		for (size_t i = 0; i < nq; i += TQ) {
			size_t mq = nq - i < TQ ? nq - i : TQ;
			const float *q[TQ];
			for (size_t t = 0; t < TQ; t++)
				q[t] = Q + (i + (t < mq ? t : mq - 1)) * ldq;
			tile(q, x, n, out + i * ldo + j, ldo, mq, mx);
		}
	}
}

/* Nibbles times int8: maddubs multiplies unsigned by signed bytes and adds pairs
 * into 16 bits; with codes <= 15 and |q| <= 127 two such pairs stay below 2^15, so
 * the two halves can share one 16-bit sum before madd widens it to 32 bits. */
TARGET static int32_t dot_q4(const uint8_t *codes, const int8_t *qe, const int8_t *qo, size_t nbytes)
{
	const __m256i low = _mm256_set1_epi8(15), ones = _mm256_set1_epi16(1);
	__m256i acc = _mm256_setzero_si256();
	size_t j = 0;
	for (; j + 32 <= nbytes; j += 32) {
		__m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(codes + j));
		__m256i lo = _mm256_and_si256(v, low), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
		__m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(const void *)(qe + j))),
					     _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(const void *)(qo + j))));
		acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, ones));
	}
	__m128i s = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
	s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
	s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
	int32_t r = _mm_cvtsi128_si32(s);
	for (; j < nbytes; j++)
		r += (int32_t)(codes[j] & 15) * qe[j] + (int32_t)(codes[j] >> 4) * qo[j];
	return r;
}

static const nvf_kernels avx2_kernels = {
	.name = "avx2",
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

const nvf_kernels *nvf__kernels_avx2(void)
{
	/* __builtin_cpu_supports also checks that the OS saves the ymm state (XCR0),
	 * not only the CPUID bits. */
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("popcnt"))
		return &avx2_kernels;
	return NULL;
}

#else

const nvf_kernels *nvf__kernels_avx2(void)
{
	return NULL;
}

#endif
