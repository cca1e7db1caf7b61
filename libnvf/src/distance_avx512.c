/* AVX-512 kernels (F, VL and BW). The file is built without -mavx512f: every function
 * carries a target attribute, and nvf__kernels_avx512() hands the table out only
 * when the CPU (and the OS, which must save the zmm state) supports it. Tails are
 * masked loads, which never touch memory past the end of a vector. */
#include "distance.h"
#include "nvf_int.h"

#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>

#define TARGET __attribute__((target("avx512f,avx512vl,avx512bw,popcnt")))

/* The row kernels read four rows at once, four interleaved streams that the
 * hardware prefetcher follows poorly: on Zen 4, prefetching the rows PF_ROWS
 * ahead into L2 (T1) raised a 188 MB scan from ~15 to ~22 GB/s, where prefetching
 * into L1 (T0) gained nothing. */
#define PF_ROWS 8
#define PF_HINT _MM_HINT_T1

TARGET static inline __mmask16 tail_mask(size_t r)
{
	return (__mmask16)((1u << r) - 1);
}

/* The sums of four vectors, in lanes 0..3. */
TARGET static inline __m128 hsum4(__m512 v0, __m512 v1, __m512 v2, __m512 v3)
{
	/* Unpacks and shuffles leave, in every 128-bit lane, a partial sum of v0, v1,
	 * v2 and v3 in that order... */
	__m512 w0 = _mm512_add_ps(_mm512_unpacklo_ps(v0, v1), _mm512_unpackhi_ps(v0, v1));
	__m512 w1 = _mm512_add_ps(_mm512_unpacklo_ps(v2, v3), _mm512_unpackhi_ps(v2, v3));
	__m512 x = _mm512_add_ps(_mm512_shuffle_ps(w0, w1, _MM_SHUFFLE(1, 0, 1, 0)),
				 _mm512_shuffle_ps(w0, w1, _MM_SHUFFLE(3, 2, 3, 2)));
	/* ...then the four 128-bit lanes are folded together. */
	x = _mm512_add_ps(x, _mm512_shuffle_f32x4(x, x, _MM_SHUFFLE(1, 0, 3, 2)));
	x = _mm512_add_ps(x, _mm512_shuffle_f32x4(x, x, _MM_SHUFFLE(2, 3, 0, 1)));
	return _mm512_castps512_ps128(x);
}

TARGET static float l2sq(const float *a, const float *b, size_t n)
{
	__m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
	size_t i = 0;
	for (; i + 64 <= n; i += 64) {
		__m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
		__m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
		__m512 d2 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32));
		__m512 d3 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48));
		s0 = _mm512_fmadd_ps(d0, d0, s0);
		s1 = _mm512_fmadd_ps(d1, d1, s1);
		s2 = _mm512_fmadd_ps(d2, d2, s2);
		s3 = _mm512_fmadd_ps(d3, d3, s3);
	}
	for (; i + 16 <= n; i += 16) {
		__m512 d = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
		s1 = _mm512_fmadd_ps(d, d, s1);
	}
	if (i < n) {
		__mmask16 m = tail_mask(n - i);
		__m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i));
		s2 = _mm512_fmadd_ps(d, d, s2);
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

TARGET static float dot(const float *a, const float *b, size_t n)
{
	__m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
	size_t i = 0;
	for (; i + 64 <= n; i += 64) {
		s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
		s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
		s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
		s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
	}
	for (; i + 16 <= n; i += 16)
		s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s1);
	if (i < n) {
		__mmask16 m = tail_mask(n - i);
		s2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s2);
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

TARGET static float norm_sq(const float *a, size_t n)
{
	__m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
	size_t i = 0;
	for (; i + 64 <= n; i += 64) {
		__m512 x0 = _mm512_loadu_ps(a + i), x1 = _mm512_loadu_ps(a + i + 16);
		__m512 x2 = _mm512_loadu_ps(a + i + 32), x3 = _mm512_loadu_ps(a + i + 48);
		s0 = _mm512_fmadd_ps(x0, x0, s0);
		s1 = _mm512_fmadd_ps(x1, x1, s1);
		s2 = _mm512_fmadd_ps(x2, x2, s2);
		s3 = _mm512_fmadd_ps(x3, x3, s3);
	}
	for (; i + 16 <= n; i += 16) {
		__m512 x = _mm512_loadu_ps(a + i);
		s1 = _mm512_fmadd_ps(x, x, s1);
	}
	if (i < n) {
		__m512 x = _mm512_maskz_loadu_ps(tail_mask(n - i), a + i);
		s2 = _mm512_fmadd_ps(x, x, s2);
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

TARGET static inline __m512 absdiff(__m512 x, __m512 y)
{
	return _mm512_abs_ps(_mm512_sub_ps(x, y));
}

TARGET static float l1(const float *a, const float *b, size_t n)
{
	__m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
	size_t i = 0;
	for (; i + 64 <= n; i += 64) {
		s0 = _mm512_add_ps(s0, absdiff(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i)));
		s1 = _mm512_add_ps(s1, absdiff(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16)));
		s2 = _mm512_add_ps(s2, absdiff(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32)));
		s3 = _mm512_add_ps(s3, absdiff(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48)));
	}
	for (; i + 16 <= n; i += 16)
		s1 = _mm512_add_ps(s1, absdiff(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i)));
	if (i < n) {
		__mmask16 m = tail_mask(n - i);
		s2 = _mm512_add_ps(s2, absdiff(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i)));
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

/* Masked-out lanes load as 0 - 0: they cannot raise a maximum of absolute values. */
TARGET static float linf(const float *a, const float *b, size_t n)
{
	__m512 m0 = _mm512_setzero_ps(), m1 = m0, m2 = m0, m3 = m0;
	size_t i = 0;
	for (; i + 64 <= n; i += 64) {
		m0 = _mm512_max_ps(m0, absdiff(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i)));
		m1 = _mm512_max_ps(m1, absdiff(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16)));
		m2 = _mm512_max_ps(m2, absdiff(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32)));
		m3 = _mm512_max_ps(m3, absdiff(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48)));
	}
	for (; i + 16 <= n; i += 16)
		m1 = _mm512_max_ps(m1, absdiff(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i)));
	if (i < n) {
		__mmask16 m = tail_mask(n - i);
		m2 = _mm512_max_ps(m2, absdiff(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i)));
	}
	return _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(m0, m1), _mm512_max_ps(m2, m3)));
}

TARGET static void minmax(const float *a, const float *b, size_t n, float *smin, float *smax)
{
	__m512 lo0 = _mm512_setzero_ps(), lo1 = lo0, hi0 = lo0, hi1 = lo0;
	size_t i = 0;
	for (; i + 32 <= n; i += 32) {
		__m512 x0 = _mm512_loadu_ps(a + i), y0 = _mm512_loadu_ps(b + i);
		__m512 x1 = _mm512_loadu_ps(a + i + 16), y1 = _mm512_loadu_ps(b + i + 16);
		lo0 = _mm512_add_ps(lo0, _mm512_min_ps(x0, y0));
		hi0 = _mm512_add_ps(hi0, _mm512_max_ps(x0, y0));
		lo1 = _mm512_add_ps(lo1, _mm512_min_ps(x1, y1));
		hi1 = _mm512_add_ps(hi1, _mm512_max_ps(x1, y1));
	}
	for (; i < n; i += 16) {
		__mmask16 m = n - i >= 16 ? (__mmask16)0xffff : tail_mask(n - i);
		__m512 x = _mm512_maskz_loadu_ps(m, a + i), y = _mm512_maskz_loadu_ps(m, b + i);
		lo1 = _mm512_add_ps(lo1, _mm512_min_ps(x, y));
		hi1 = _mm512_add_ps(hi1, _mm512_max_ps(x, y));
	}
	*smin = _mm512_reduce_add_ps(_mm512_add_ps(lo0, lo1));
	*smax = _mm512_reduce_add_ps(_mm512_add_ps(hi0, hi1));
}

TARGET static float hamming(const float *a, const float *b, size_t n)
{
	size_t count = 0, i = 0;
	/* NEQ_UQ is C's !=: 0.0 equals -0.0 and a NaN differs from everything. */
	for (; i + 16 <= n; i += 16)
		count += (size_t)__builtin_popcount(
			_mm512_cmp_ps_mask(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), _CMP_NEQ_UQ));
	if (i < n) {
		__mmask16 m = tail_mask(n - i);
		count += (size_t)__builtin_popcount(_mm512_mask_cmp_ps_mask(
			m, _mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), _CMP_NEQ_UQ));
	}
	return (float)count;
}

/* ---- one query against many rows ---- */

/* The row kernels take rows four at a time, so that each load of the query
 * serves four rows, with two accumulators per row (eight FMA chains hide the
 * FMA latency when the rows are already in cache), and prefetch the group
 * PF_ROWS rows ahead. The last groups prefetch their own rows instead of
 * reading past the array. */
#define ROWS_SETUP()                                                                                  \
	const float *x0 = rows + r * stride, *x1 = x0 + stride, *x2 = x1 + stride, *x3 = x2 + stride; \
	const float *p0 = r + PF_ROWS + 4 <= nrows ? x0 + PF_ROWS * stride : x0;                      \
	const float *p1 = p0 + stride, *p2 = p1 + stride, *p3 = p2 + stride;                          \
	__m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;                                   \
	__m512 t0 = s0, t1 = s0, t2 = s0, t3 = s0;                                                    \
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
		__m512 d_ = _mm512_sub_ps(load(x), (qv)); \
		s = _mm512_fmadd_ps(d_, d_, s);           \
	} while (0)

#define DOT_STEP(s, qv, x, load) s = _mm512_fmadd_ps(load(x), (qv), s)

#define LD0(p) _mm512_loadu_ps((p) + k)
#define LD16(p) _mm512_loadu_ps((p) + k + 16)
#define LDM(p) _mm512_maskz_loadu_ps(m, (p) + k)

#define ROWS_BODY(STEP)                                                               \
	for (; k + 32 <= nv; k += 32) {                                               \
		PREFETCH4(k);                                                         \
		PREFETCH4(k + 16);                                                    \
		__m512 qa = _mm512_loadu_ps(q + k), qb = _mm512_loadu_ps(q + k + 16); \
		STEP(s0, qa, x0, LD0);                                                \
		STEP(s1, qa, x1, LD0);                                                \
		STEP(s2, qa, x2, LD0);                                                \
		STEP(s3, qa, x3, LD0);                                                \
		STEP(t0, qb, x0, LD16);                                               \
		STEP(t1, qb, x1, LD16);                                               \
		STEP(t2, qb, x2, LD16);                                               \
		STEP(t3, qb, x3, LD16);                                               \
	}                                                                             \
	if (k < nv) {                                                                 \
		PREFETCH4(k);                                                         \
		__m512 qa = _mm512_loadu_ps(q + k);                                   \
		STEP(s0, qa, x0, LD0);                                                \
		STEP(s1, qa, x1, LD0);                                                \
		STEP(s2, qa, x2, LD0);                                                \
		STEP(s3, qa, x3, LD0);                                                \
		k += 16;                                                              \
	}                                                                             \
	if (k < n) {                                                                  \
		__m512 qa = _mm512_maskz_loadu_ps(m, q + k);                          \
		STEP(t0, qa, x0, LDM);                                                \
		STEP(t1, qa, x1, LDM);                                                \
		STEP(t2, qa, x2, LDM);                                                \
		STEP(t3, qa, x3, LDM);                                                \
	}                                                                             \
	_mm_storeu_ps(out + r, hsum4(_mm512_add_ps(s0, t0), _mm512_add_ps(s1, t1),    \
				     _mm512_add_ps(s2, t2), _mm512_add_ps(s3, t3)))

TARGET static void l2sq_rows(const float *q, const float *rows, size_t stride, size_t nrows, size_t n, float *out)
{
	size_t nv = n & ~(size_t)15, r = 0;
	__mmask16 m = tail_mask(n & 15);
	for (; r + 4 <= nrows; r += 4) {
		ROWS_SETUP();
		ROWS_BODY(L2_STEP);
	}
	for (; r < nrows; r++)
		out[r] = l2sq(q, rows + r * stride, n);
}

TARGET static void dot_rows(const float *q, const float *rows, size_t stride, size_t nrows, size_t n, float *out)
{
	size_t nv = n & ~(size_t)15, r = 0;
	__mmask16 m = tail_mask(n & 15);
	for (; r + 4 <= nrows; r += 4) {
		ROWS_SETUP();
		ROWS_BODY(DOT_STEP);
	}
	for (; r < nrows; r++)
		out[r] = dot(q, rows + r * stride, n);
}

/* ---- a block of queries against a block of rows ---- */

/* 4 queries x 4 rows: sixteen zmm accumulators, each loaded vector used four
 * times (eight loads per sixteen FMAs keeps the FMA units the bottleneck). */
#define TILE_STEP(LOAD)                                                                \
	do {                                                                           \
		__m512 b0 = LOAD(x0), b1 = LOAD(x1), b2 = LOAD(x2), b3 = LOAD(x3), a_; \
		a_ = LOAD(q0);                                                         \
		c00 = _mm512_fmadd_ps(a_, b0, c00);                                    \
		c01 = _mm512_fmadd_ps(a_, b1, c01);                                    \
		c02 = _mm512_fmadd_ps(a_, b2, c02);                                    \
		c03 = _mm512_fmadd_ps(a_, b3, c03);                                    \
		a_ = LOAD(q1);                                                         \
		c10 = _mm512_fmadd_ps(a_, b0, c10);                                    \
		c11 = _mm512_fmadd_ps(a_, b1, c11);                                    \
		c12 = _mm512_fmadd_ps(a_, b2, c12);                                    \
		c13 = _mm512_fmadd_ps(a_, b3, c13);                                    \
		a_ = LOAD(q2);                                                         \
		c20 = _mm512_fmadd_ps(a_, b0, c20);                                    \
		c21 = _mm512_fmadd_ps(a_, b1, c21);                                    \
		c22 = _mm512_fmadd_ps(a_, b2, c22);                                    \
		c23 = _mm512_fmadd_ps(a_, b3, c23);                                    \
		a_ = LOAD(q3);                                                         \
		c30 = _mm512_fmadd_ps(a_, b0, c30);                                    \
		c31 = _mm512_fmadd_ps(a_, b1, c31);                                    \
		c32 = _mm512_fmadd_ps(a_, b2, c32);                                    \
		c33 = _mm512_fmadd_ps(a_, b3, c33);                                    \
	} while (0)

/* A partial tile (mq queries or mx rows below 4) repeats its last query or row
 * in the missing places, so the loop stays branch-free; only the valid outputs
 * are stored. */
TARGET static void tile4x4(const float *const *q, const float *const *x, size_t n, float *out, size_t ldo,
			   size_t mq, size_t mx)
{
	const float *q0 = q[0], *q1 = q[1], *q2 = q[2], *q3 = q[3];
	const float *x0 = x[0], *x1 = x[1], *x2 = x[2], *x3 = x[3];
	__m512 c00 = _mm512_setzero_ps(), c01 = c00, c02 = c00, c03 = c00;
	__m512 c10 = c00, c11 = c00, c12 = c00, c13 = c00;
	__m512 c20 = c00, c21 = c00, c22 = c00, c23 = c00;
	__m512 c30 = c00, c31 = c00, c32 = c00, c33 = c00;
	size_t k = 0;
	for (; k + 16 <= n; k += 16)
		TILE_STEP(LD0);
	if (k < n) {
		__mmask16 m = tail_mask(n - k);
		TILE_STEP(LDM);
	}
	__m128 r0 = hsum4(c00, c01, c02, c03), r1 = hsum4(c10, c11, c12, c13);
	__m128 r2 = hsum4(c20, c21, c22, c23), r3 = hsum4(c30, c31, c32, c33);
	if (NVF_LIKELY(mq == 4 && mx == 4)) {
		_mm_storeu_ps(out, r0);
		_mm_storeu_ps(out + ldo, r1);
		_mm_storeu_ps(out + 2 * ldo, r2);
		_mm_storeu_ps(out + 3 * ldo, r3);
		return;
	}
	__mmask8 m = (__mmask8)((1u << mx) - 1);
	_mm_mask_storeu_ps(out, m, r0);
	if (mq > 1)
		_mm_mask_storeu_ps(out + ldo, m, r1);
	if (mq > 2)
		_mm_mask_storeu_ps(out + 2 * ldo, m, r2);
	if (mq > 3)
		_mm_mask_storeu_ps(out + 3 * ldo, m, r3);
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
		for (size_t i = 0; i < nq; i += 4) {
			size_t mq = nq - i < 4 ? nq - i : 4;
			const float *q[4];
			for (size_t t = 0; t < 4; t++)
				q[t] = Q + (i + (t < mq ? t : mq - 1)) * ldq;
			tile4x4(q, x, n, out + i * ldo + j, ldo, mq, mx);
		}
	}
}

/* The codes are read exactly, never past their last byte: a code row is one cache
 * line or two, and a 64-byte window from it reaches into the next row's line, which
 * the load then brings in whatever its mask says (at 1M x 96 that was a tenth of a
 * build). So: 64 bytes at a time, then 32, then 16, then the last bytes one by one. */
static inline int32_t q4_tail(const uint8_t *codes, const int8_t *qe, const int8_t *qo, size_t j, size_t nbytes)
{
	int32_t r = 0;
	for (; j < nbytes; j++)
		r += (int32_t)(codes[j] & 15) * qe[j] + (int32_t)(codes[j] >> 4) * qo[j];
	return r;
}

/* As the AVX2 one (see there), 64 bytes (128 dimensions) at a time. */
TARGET static int32_t dot_q4(const uint8_t *codes, const int8_t *qe, const int8_t *qo, size_t nbytes)
{
	const __m512i low = _mm512_set1_epi8(15), ones = _mm512_set1_epi16(1);
	__m512i acc = _mm512_setzero_si512();
	size_t j = 0;
	for (; j + 64 <= nbytes; j += 64) {
		__m512i v = _mm512_loadu_si512(codes + j);
		__m512i lo = _mm512_and_si512(v, low), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
		__m512i p = _mm512_add_epi16(_mm512_maddubs_epi16(lo, _mm512_loadu_si512(qe + j)),
					     _mm512_maddubs_epi16(hi, _mm512_loadu_si512(qo + j)));
		acc = _mm512_add_epi32(acc, _mm512_madd_epi16(p, ones));
	}
	for (; j + 16 <= nbytes; j += 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(codes + j));
		__m128i lo = _mm_and_si128(v, _mm512_castsi512_si128(low));
		__m128i hi = _mm_and_si128(_mm_srli_epi16(v, 4), _mm512_castsi512_si128(low));
		__m128i p = _mm_add_epi16(_mm_maddubs_epi16(lo, _mm_loadu_si128((const __m128i *)(const void *)(qe + j))),
					  _mm_maddubs_epi16(hi, _mm_loadu_si128((const __m128i *)(const void *)(qo + j))));
		acc = _mm512_add_epi32(acc, _mm512_zextsi128_si512(_mm_madd_epi16(p, _mm512_castsi512_si128(ones))));
	}
	return _mm512_reduce_add_epi32(acc) + q4_tail(codes, qe, qo, j, nbytes);
}

/* With VNNI, vpdpbusd does the multiply, the pairing and the widening at once. */
__attribute__((target("avx512f,avx512vl,avx512bw,avx512vnni"))) static int32_t
dot_q4_vnni(const uint8_t *codes, const int8_t *qe, const int8_t *qo, size_t nbytes)
{
	const __m512i low = _mm512_set1_epi8(15);
	__m512i acc0 = _mm512_setzero_si512(), acc1 = _mm512_setzero_si512();
	size_t j = 0;
	for (; j + 64 <= nbytes; j += 64) {
		__m512i v = _mm512_loadu_si512(codes + j);
		acc0 = _mm512_dpbusd_epi32(acc0, _mm512_and_si512(v, low), _mm512_loadu_si512(qe + j));
		acc1 = _mm512_dpbusd_epi32(acc1, _mm512_and_si512(_mm512_srli_epi16(v, 4), low), _mm512_loadu_si512(qo + j));
	}
	__m256i a = _mm256_add_epi32(_mm512_castsi512_si256(_mm512_add_epi32(acc0, acc1)),
				     _mm512_extracti64x4_epi64(_mm512_add_epi32(acc0, acc1), 1));
	const __m256i low8 = _mm256_set1_epi8(15);
	if (j + 32 <= nbytes) {
		__m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(codes + j));
		a = _mm256_dpbusd_epi32(a, _mm256_and_si256(v, low8), _mm256_loadu_si256((const __m256i *)(const void *)(qe + j)));
		a = _mm256_dpbusd_epi32(a, _mm256_and_si256(_mm256_srli_epi16(v, 4), low8),
					_mm256_loadu_si256((const __m256i *)(const void *)(qo + j)));
		j += 32;
	}
	__m128i b = _mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
	if (j + 16 <= nbytes) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(codes + j));
		const __m128i low4 = _mm_set1_epi8(15);
		b = _mm_dpbusd_epi32(b, _mm_and_si128(v, low4), _mm_loadu_si128((const __m128i *)(const void *)(qe + j)));
		b = _mm_dpbusd_epi32(b, _mm_and_si128(_mm_srli_epi16(v, 4), low4),
				     _mm_loadu_si128((const __m128i *)(const void *)(qo + j)));
		j += 16;
	}
	b = _mm_add_epi32(b, _mm_shuffle_epi32(b, 0x4e));
	b = _mm_add_epi32(b, _mm_shuffle_epi32(b, 0xb1));
	return _mm_cvtsi128_si32(b) + q4_tail(codes, qe, qo, j, nbytes);
}

static const nvf_kernels avx512_kernels = {
	.name = "avx512",
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

static nvf_kernels avx512_vnni_kernels;
static pthread_once_t vnni_once = PTHREAD_ONCE_INIT;

static void vnni_init(void)
{
	avx512_vnni_kernels = avx512_kernels;
	avx512_vnni_kernels.dot_q4 = dot_q4_vnni;
}

const nvf_kernels *nvf__kernels_avx512(void)
{
	/* __builtin_cpu_supports also checks that the OS saves the zmm and mask
	 * registers (XCR0), not only the CPUID bits. */
	__builtin_cpu_init();
	if (!(__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
	      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("popcnt")))
		return NULL;
	if (__builtin_cpu_supports("avx512vnni")) {
		pthread_once(&vnni_once, vnni_init);
		return &avx512_vnni_kernels;
	}
	return &avx512_kernels;
}

const nvf_kernels *nvf__kernels_avx512_plain(void)
{
	return nvf__kernels_avx512() ? &avx512_kernels : NULL;
}

#else

const nvf_kernels *nvf__kernels_avx512(void)
{
	return NULL;
}

const nvf_kernels *nvf__kernels_avx512_plain(void)
{
	return NULL;
}

#endif
