/* Every kernel of every SIMD level this CPU has, against a reference computed in
 * double precision; the reported metrics against hand-computed values; the
 * dispatch; the vector utilities.
 *
 * Tolerance. A kernel result S that is a float sum of terms t_i (l2sq, dot, l1,
 * the two sums of minmax, norm_sq, and the row and block kernels) passes when
 *
 *     |S - ref| <= 1e-5 * sum |t_i| + 1e-30
 *
 * where ref is the same sum in double. The bound is relative to the magnitude of
 * the terms, not of the result, because a sum that cancels (a dot product of
 * orthogonal vectors) cannot be more accurate than its largest terms; the 1e-30
 * absorbs terms that underflow to subnormals in float. linf (a maximum) and
 * hamming (a count) must be exact. */
#include "distance.h"
#include "nvf_int.h"
#include "testutil.h"

#include <ctype.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <strings.h>
#include <sys/mman.h>

#define MAXN 130 /* pairwise and row kernels: every n in 1..MAXN */
#define SENTINEL 12345.5f

static uint64_t seed;

static float *xalloc(size_t nfloats)
{
	void *p = NULL;
	if (posix_memalign(&p, 64, (nfloats + 16) * sizeof(float)) != 0)
		abort();
	return p;
}

/* Uniform in [-1, 1]. */
static float urand(uint64_t *rng)
{
	return (float)((double)(tu_rand(rng) >> 11) * 0x1p-52 - 1.0);
}

/* The levels this CPU has, scalar first. */
static size_t levels(const nvf_kernels **out)
{
	const nvf_kernels *all[3] = { nvf__kernels_scalar(), nvf__kernels_avx2(), nvf__kernels_avx512() };
	size_t n = 0;
	for (size_t i = 0; i < 3; i++)
		if (all[i])
			out[n++] = all[i];
	return n;
}

/* ---- the double-precision reference ---- */

typedef struct ref {
	double v;   /* the sum in double */
	double mag; /* sum of |terms| */
} ref;

static ref ref_l2sq(const float *a, const float *b, size_t n)
{
	ref r = { 0, 0 };
	for (size_t i = 0; i < n; i++) {
		double d = (double)a[i] - (double)b[i];
		r.v += d * d;
	}
	r.mag = r.v;
	return r;
}

static ref ref_dot(const float *a, const float *b, size_t n)
{
	ref r = { 0, 0 };
	for (size_t i = 0; i < n; i++) {
		double t = (double)a[i] * (double)b[i];
		r.v += t;
		r.mag += fabs(t);
	}
	return r;
}

static ref ref_l1(const float *a, const float *b, size_t n)
{
	ref r = { 0, 0 };
	for (size_t i = 0; i < n; i++)
		r.v += fabs((double)a[i] - (double)b[i]);
	r.mag = r.v;
	return r;
}

static void ref_minmax(const float *a, const float *b, size_t n, ref *lo, ref *hi)
{
	*lo = (ref){ 0, 0 };
	*hi = (ref){ 0, 0 };
	for (size_t i = 0; i < n; i++) {
		double x = a[i], y = b[i];
		lo->v += x < y ? x : y;
		lo->mag += fabs(x < y ? x : y);
		hi->v += x < y ? y : x;
		hi->mag += fabs(x < y ? y : x);
	}
}

/* Exact: each |a - b| is rounded to float as the kernels round it. */
static float ref_linf(const float *a, const float *b, size_t n)
{
	float m = 0;
	for (size_t i = 0; i < n; i++) {
		float d = fabsf(a[i] - b[i]);
		m = d > m ? d : m;
	}
	return m;
}

static float ref_hamming(const float *a, const float *b, size_t n)
{
	size_t c = 0;
	for (size_t i = 0; i < n; i++)
		c += a[i] != b[i];
	return (float)c;
}

/* The variadic arguments (a format and its values) say which case failed. */
#define CHECK_SUM(got, r, ...)                                                                             \
	do {                                                                                               \
		double got_ = (got), tol_ = 1e-5 * (r).mag + 1e-30;                                        \
		if (!(fabs(got_ - (r).v) <= tol_)) {                                                       \
			char ctx_[256];                                                                    \
			snprintf(ctx_, sizeof(ctx_), __VA_ARGS__);                                         \
			ck_abort_msg("%s: got %.9g, want %.9g (tolerance %.3g)", ctx_, got_, (r).v, tol_); \
		}                                                                                          \
	} while (0)

/* ---- inputs ---- */

enum kind { K_RANDOM, K_TINY, K_HUGE, K_EQUAL, K_ALTERNATING, K_ZEROS, K_ZERO_A, K_SIGNED_ZEROS, K_COUNT };
static const char *const kind_names[K_COUNT] = { "random", "tiny", "huge", "all-equal", "alternating",
						 "zeros", "a-zero", "signed-zeros" };

static float signed_zero(uint64_t *rng)
{
	return tu_rand(rng) & 1 ? -0.0f : 0.0f;
}

static void fill(enum kind kind, float *a, float *b, size_t n, uint64_t *rng)
{
	float c = urand(rng);
	for (size_t i = 0; i < n; i++) {
		switch (kind) {
		case K_RANDOM:
			a[i] = urand(rng);
			b[i] = urand(rng);
			break;
		case K_TINY: /* products are subnormal in float */
			a[i] = urand(rng) * 1e-20f;
			b[i] = urand(rng) * 1e-20f;
			break;
		case K_HUGE: /* squares near 1e30: large, but every sum stays finite */
			a[i] = urand(rng) * 1e15f;
			b[i] = urand(rng) * 1e15f;
			break;
		case K_EQUAL:
			a[i] = b[i] = c;
			break;
		case K_ALTERNATING: /* dot products cancel to 0 or one term */
			a[i] = i & 1 ? -c : c;
			b[i] = i % 3 == 0 ? -a[i] : 0.5f;
			break;
		case K_ZEROS:
			a[i] = b[i] = 0.0f;
			break;
		case K_ZERO_A:
			a[i] = 0.0f;
			b[i] = urand(rng);
			break;
		case K_SIGNED_ZEROS: /* 0.0 == -0.0: only the non-zero b count for hamming */
			a[i] = signed_zero(rng);
			b[i] = tu_rand(rng) % 4 ? signed_zero(rng) : urand(rng);
			break;
		default:
			abort();
		}
	}
}

/* Every pairwise kernel of one level on one pair of vectors. */
static void check_pairwise(const nvf_kernels *k, const float *a, const float *b, size_t n, const char *what,
			   size_t offa, size_t offb)
{
	ref lo, hi;
	ref_minmax(a, b, n, &lo, &hi);
	float smin = NAN, smax = NAN;
	k->minmax(a, b, n, &smin, &smax);
	CHECK_SUM(k->l2sq(a, b, n), ref_l2sq(a, b, n), "%s l2sq %s n=%zu off=%zu/%zu", k->name, what, n, offa, offb);
	CHECK_SUM(k->dot(a, b, n), ref_dot(a, b, n), "%s dot %s n=%zu off=%zu/%zu", k->name, what, n, offa, offb);
	CHECK_SUM(k->l1(a, b, n), ref_l1(a, b, n), "%s l1 %s n=%zu off=%zu/%zu", k->name, what, n, offa, offb);
	CHECK_SUM(smin, lo, "%s minmax (min) %s n=%zu off=%zu/%zu", k->name, what, n, offa, offb);
	CHECK_SUM(smax, hi, "%s minmax (max) %s n=%zu off=%zu/%zu", k->name, what, n, offa, offb);
	CHECK_SUM(k->norm_sq(a, n), ref_dot(a, a, n), "%s norm_sq(a) %s n=%zu off=%zu", k->name, what, n, offa);
	CHECK_SUM(k->norm_sq(b, n), ref_dot(b, b, n), "%s norm_sq(b) %s n=%zu off=%zu", k->name, what, n, offb);
	float got = k->linf(a, b, n), want = ref_linf(a, b, n);
	tu_assert(got == want, "%s linf %s n=%zu off=%zu/%zu: got %.9g, want %.9g", k->name, what, n, offa, offb,
		  (double)got, (double)want);
	got = k->hamming(a, b, n);
	want = ref_hamming(a, b, n);
	tu_assert(got == want, "%s hamming %s n=%zu off=%zu/%zu: got %g, want %g", k->name, what, n, offa, offb,
		  (double)got, (double)want);
}

START_TEST(test_pairwise_kernels_match_double_reference)
{
	uint64_t rng = seed;
	const nvf_kernels *lv[3];
	size_t nlv = levels(lv);
	float *abuf = xalloc(MAXN + 64), *bbuf = xalloc(MAXN + 64);
	float a0[MAXN], b0[MAXN];
	for (size_t n = 1; n <= MAXN; n++) {
		for (int kind = 0; kind < K_COUNT; kind++) {
			fill(kind, a0, b0, n, &rng);
			/* Every pair of offsets from a 64-byte boundary, aligned included. */
			for (size_t offa = 0; offa < 4; offa++) {
				for (size_t offb = 0; offb < 4; offb++) {
					float *a = abuf + offa, *b = bbuf + offb;
					memcpy(a, a0, n * sizeof(float));
					memcpy(b, b0, n * sizeof(float));
					for (size_t l = 0; l < nlv; l++)
						check_pairwise(lv[l], a, b, n, kind_names[kind], offa, offb);
				}
			}
		}
	}
	free(abuf);
	free(bbuf);
}
END_TEST

START_TEST(test_hamming_counts_signed_zeros_equal_and_nan_different)
{
	const nvf_kernels *lv[3];
	size_t nlv = levels(lv);
	float a[MAXN], b[MAXN];
	for (size_t n = 1; n <= MAXN; n++) {
		for (size_t i = 0; i < n; i++) {
			a[i] = 0.0f;
			b[i] = -0.0f;
		}
		for (size_t l = 0; l < nlv; l++)
			tu_assert(lv[l]->hamming(a, b, n) == 0.0f, "%s hamming(+0, -0) n=%zu is %g", lv[l]->name, n,
				  (double)lv[l]->hamming(a, b, n));
		/* NaN != NaN, as in C. */
		a[n - 1] = b[n - 1] = NAN;
		for (size_t l = 0; l < nlv; l++)
			tu_assert(lv[l]->hamming(a, b, n) == 1.0f, "%s hamming(NaN, NaN) n=%zu is %g", lv[l]->name, n,
				  (double)lv[l]->hamming(a, b, n));
	}
}
END_TEST

/* n floats ending exactly where an unreadable page starts. */
static float *guarded(size_t n, void **map, size_t *maplen)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	size_t bytes = (n * sizeof(float) + pg - 1) / pg * pg;
	uint8_t *m = mmap(NULL, bytes + pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(m, MAP_FAILED);
	ck_assert_int_eq(mprotect(m + bytes, pg, PROT_NONE), 0);
	*map = m;
	*maplen = bytes + pg;
	return (float *)(void *)(m + bytes) - n;
}

/* Tails must be masked or scalar: a vector ending at an unmapped page is read
 * without a fault by every kernel (a SIGSEGV fails the test). */
START_TEST(test_kernels_read_nothing_past_the_end)
{
	uint64_t rng = seed ^ 1;
	const nvf_kernels *lv[3];
	size_t nlv = levels(lv);
	enum { NROWS = 6 };
	float out[NROWS * NROWS];
	for (size_t n = 1; n <= MAXN; n++) {
		void *ma, *mb, *mr, *mq;
		size_t la, lb, lr, lq;
		float *a = guarded(n, &ma, &la), *b = guarded(n, &mb, &lb);
		float *rows = guarded(NROWS * n, &mr, &lr), *qs = guarded(NROWS * n, &mq, &lq);
		fill(K_RANDOM, a, b, n, &rng);
		for (size_t i = 0; i < NROWS * n; i++) {
			rows[i] = urand(&rng);
			qs[i] = urand(&rng);
		}
		for (size_t l = 0; l < nlv; l++) {
			const nvf_kernels *k = lv[l];
			check_pairwise(k, a, b, n, "at a page end", 0, 0);
			/* The last row ends at the guard page. */
			for (size_t nr = 1; nr <= NROWS; nr++) {
				const float *r0 = rows + (NROWS - nr) * n;
				k->l2sq_rows(a, r0, n, nr, n, out);
				for (size_t r = 0; r < nr; r++)
					CHECK_SUM(out[r], ref_l2sq(a, r0 + r * n, n),
						  "%s l2sq_rows at a page end n=%zu", k->name, n);
				k->dot_rows(a, r0, n, nr, n, out);
				for (size_t r = 0; r < nr; r++)
					CHECK_SUM(out[r], ref_dot(a, r0 + r * n, n), "%s dot_rows at a page end n=%zu",
						  k->name, n);
			}
			for (size_t nq = 1; nq <= NROWS; nq++) {
				const float *q0 = qs + (NROWS - nq) * n;
				k->dot_block(q0, n, nq, rows, n, NROWS, n, out, NROWS);
				for (size_t i = 0; i < nq; i++)
					for (size_t j = 0; j < NROWS; j++)
						CHECK_SUM(out[i * NROWS + j], ref_dot(q0 + i * n, rows + j * n, n),
							  "%s dot_block at a page end n=%zu nq=%zu", k->name, n, nq);
			}
		}
		munmap(ma, la);
		munmap(mb, lb);
		munmap(mr, lr);
		munmap(mq, lq);
	}
}
END_TEST

/* ---- one query against many rows ---- */

#define MAXROWS 37

/* One row kernel for every nrows in 0..MAXROWS: each result against the
 * reference, and nothing written past out[nrows - 1]. */
static void check_rows(const nvf_kernels *k, bool l2, const float *q, const float *rows, size_t stride, size_t n,
		       const ref *want)
{
	const char *fn = l2 ? "l2sq_rows" : "dot_rows";
	float out[MAXROWS + 4];
	for (size_t nrows = 0; nrows <= MAXROWS; nrows++) {
		for (size_t r = 0; r < MAXROWS + 4; r++)
			out[r] = SENTINEL;
		(l2 ? k->l2sq_rows : k->dot_rows)(q, rows, stride, nrows, n, out);
		for (size_t r = 0; r < nrows; r++)
			CHECK_SUM(out[r], want[r], "%s %s n=%zu stride=%zu nrows=%zu row %zu", k->name, fn, n, stride,
				  nrows, r);
		for (size_t r = nrows; r < MAXROWS + 4; r++)
			tu_assert(out[r] == SENTINEL, "%s %s n=%zu nrows=%zu wrote out[%zu]", k->name, fn, n, nrows, r);
	}
}

START_TEST(test_row_kernels_match_pairwise_reference)
{
	uint64_t rng = seed ^ 2;
	const nvf_kernels *lv[3];
	size_t nlv = levels(lv);
	size_t maxstride = (MAXN + 15) / 16 * 16 + 3;
	float *rowbuf = xalloc(MAXROWS * maxstride + 4), *qbuf = xalloc(MAXN + 4);
	ref want_l2[MAXROWS], want_dot[MAXROWS];
	for (size_t n = 1; n <= MAXN; n++) {
		/* Packed, odd, and padded to 64-byte rows; unaligned bases. */
		size_t strides[3] = { n, n + 3, (n + 15) / 16 * 16 };
		for (size_t si = 0; si < 3; si++) {
			size_t stride = strides[si];
			float *rows = rowbuf + (n + si) % 4, *q = qbuf + n % 4;
			float scale = si == 1 ? 1e15f : n % 5 == 0 ? 1e-20f : 1.0f;
			for (size_t i = 0; i < n; i++)
				q[i] = urand(&rng) * scale;
			for (size_t r = 0; r < MAXROWS; r++) {
				float *row = rows + r * stride;
				for (size_t i = 0; i < n; i++)
					row[i] = urand(&rng) * scale;
				for (size_t i = n; i < stride; i++)
					row[i] = NAN; /* padding: reading it would poison a result */
				want_l2[r] = ref_l2sq(q, row, n);
				want_dot[r] = ref_dot(q, row, n);
			}
			for (size_t l = 0; l < nlv; l++) {
				check_rows(lv[l], true, q, rows, stride, n, want_l2);
				check_rows(lv[l], false, q, rows, stride, n, want_dot);
			}
		}
	}
	free(rowbuf);
	free(qbuf);
}
END_TEST

/* ---- a block of queries against a block of rows ---- */

#define MAXQ 9
#define BLOCK_MAXN 784
#define OUTLEN ((MAXQ + 1) * (MAXROWS + 4))

typedef struct block {
	const float *Q, *X;
	size_t ldq, nq, ldx, nx, n, ldo;
} block;

/* dot_block on one block: each result against want (MAXROWS to a query), and
 * the padding of out (columns past nx, rows past nq) untouched. */
static void check_block(const nvf_kernels *k, const block *b, const ref *want)
{
	static float out[OUTLEN];
	for (size_t i = 0; i < OUTLEN; i++)
		out[i] = SENTINEL;
	k->dot_block(b->Q, b->ldq, b->nq, b->X, b->ldx, b->nx, b->n, out, b->ldo);
	for (size_t i = 0; i <= MAXQ; i++) {
		for (size_t j = 0; j < b->ldo; j++) {
			float got = out[i * b->ldo + j];
			if (i < b->nq && j < b->nx)
				CHECK_SUM(got, want[i * MAXROWS + j],
					  "%s dot_block n=%zu nq=%zu nx=%zu ld=%zu/%zu/%zu (%zu,%zu)", k->name, b->n,
					  b->nq, b->nx, b->ldq, b->ldx, b->ldo, i, j);
			else
				tu_assert(got == SENTINEL, "%s dot_block n=%zu nq=%zu nx=%zu ldo=%zu wrote (%zu,%zu)",
					  k->name, b->n, b->nq, b->nx, b->ldo, i, j);
		}
	}
}

/* rows rows of n floats from src, stored ld apart with NaN between them. */
static void spread(float *dst, size_t ld, const float *src, size_t rows, size_t n)
{
	for (size_t r = 0; r < rows; r++) {
		memcpy(dst + r * ld, src + r * n, n * sizeof(float));
		for (size_t t = n; t < ld; t++)
			dst[r * ld + t] = NAN;
	}
}

START_TEST(test_dot_block_matches_pairwise_reference)
{
	static const size_t dims[] = { 1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,  12,  13,  14,  15,  16,  17, 18,
				       19, 20, 24, 31, 32, 33, 47, 48, 49, 63, 64, 65, 100, 127, 128, 129, 130, 784 };
	uint64_t rng = seed ^ 3;
	const nvf_kernels *lv[3];
	size_t nlv = levels(lv);
	size_t maxld = BLOCK_MAXN + 8;
	float *q0 = xalloc(MAXQ * BLOCK_MAXN), *x0 = xalloc(MAXROWS * BLOCK_MAXN);
	float *qbuf = xalloc(MAXQ * maxld + 4), *xbuf = xalloc(MAXROWS * maxld + 4);
	ref *want = malloc(MAXQ * MAXROWS * sizeof(ref));
	for (size_t di = 0; di < NVF_ARRAY_LEN(dims); di++) {
		size_t n = dims[di];
		float scale = di % 3 == 1 ? 1e15f : di % 3 == 2 ? 1e-20f : 1.0f;
		for (size_t i = 0; i < MAXQ * n; i++)
			q0[i] = urand(&rng) * scale;
		for (size_t i = 0; i < MAXROWS * n; i++)
			x0[i] = urand(&rng) * scale;
		for (size_t i = 0; i < MAXQ; i++)
			for (size_t j = 0; j < MAXROWS; j++)
				want[i * MAXROWS + j] = ref_dot(q0 + i * n, x0 + j * n, n);
		for (size_t nq = 0; nq <= MAXQ; nq++) {
			for (size_t nx = 0; nx <= MAXROWS; nx++) {
				/* Leading dimensions beyond n (now and then packed),
				 * unaligned bases. */
				bool packed = (nq + nx) % 7 == 0;
				block b = { .nq = nq, .nx = nx, .n = n };
				b.ldq = packed ? n : n + 1 + tu_below(&rng, 8);
				b.ldx = packed ? n : n + 1 + tu_below(&rng, 8);
				b.ldo = nx + 1 + tu_below(&rng, 3);
				float *Q = qbuf + tu_below(&rng, 4), *X = xbuf + tu_below(&rng, 4);
				spread(Q, b.ldq, q0, nq, n);
				spread(X, b.ldx, x0, nx, n);
				b.Q = Q;
				b.X = X;
				for (size_t l = 0; l < nlv; l++)
					check_block(lv[l], &b, want);
			}
		}
	}
	free(q0);
	free(x0);
	free(qbuf);
	free(xbuf);
	free(want);
}
END_TEST

/* ---- dispatch ---- */

START_TEST(test_dispatch_picks_the_best_level_under_the_nvf_simd_cap)
{
	const char *cap = getenv("NVF_SIMD");
	const nvf_kernels *want = NULL;
	if (!cap || strcasecmp(cap, "scalar") != 0) {
		if (!cap || strcasecmp(cap, "avx2") != 0)
			want = nvf__kernels_avx512();
		if (!want)
			want = nvf__kernels_avx2();
	}
	if (!want)
		want = nvf__kernels_scalar();
	ck_assert_ptr_eq(nvf__kernels(), want);
	ck_assert_str_eq(nvf_simd_level(), want->name);
	ck_assert_ptr_eq(nvf__kernels(), want); /* and it stays */
}
END_TEST

static void *grab_kernels(void *arg)
{
	*(const nvf_kernels **)arg = nvf__kernels();
	return NULL;
}

/* Each Check test runs in a fresh process, so these threads race for the
 * first choice. */
START_TEST(test_dispatch_chooses_once_across_racing_threads)
{
	enum { NT = 8 };
	pthread_t t[NT];
	const nvf_kernels *got[NT];
	for (int i = 0; i < NT; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, grab_kernels, &got[i]), 0);
	for (int i = 0; i < NT; i++)
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
	for (int i = 0; i < NT; i++) {
		ck_assert_ptr_nonnull(got[i]);
		ck_assert_ptr_eq(got[i], nvf__kernels());
	}
}
END_TEST

/* ---- reported distances ---- */

#define CHECK_NEAR(got, want, tol, ...)                                        \
	do {                                                                   \
		double g_ = (got), w_ = (want);                                \
		if (!(fabs(g_ - w_) <= (tol))) {                               \
			char ctx_[256];                                        \
			snprintf(ctx_, sizeof(ctx_), __VA_ARGS__);             \
			ck_abort_msg("%s: got %.9g, want %.9g", ctx_, g_, w_); \
		}                                                              \
	} while (0)

typedef struct hand_case {
	const char *what;
	size_t n;
	float a[3], b[3];
	/* euclidean, inner_product, cosine, angular, manhattan, chebyshev, jaccard
	 * (NAN: NVF_EINVAL), hamming */
	double want[NVF_METRIC_COUNT];
} hand_case;

START_TEST(test_distance_matches_hand_computed_values)
{
	static const hand_case cases[] = {
		{ "(3,4) (4,3)", 2, { 3, 4 }, { 4, 3 },
		  { 1.4142135623730951, -24, 0.04, 0.09033447060173315, 2, 1, 0.25, 2 } },
		{ "orthogonal", 3, { 1, 0, 0 }, { 0, 1, 0 }, { 1.4142135623730951, 0, 1, 0.5, 2, 1, 1, 2 } },
		{ "opposite", 3, { 1, 2, 3 }, { -1, -2, -3 }, { 7.483314773547883, 14, 2, 1, 12, 6, NAN, 3 } },
		{ "identical", 3, { 1, 2, 3 }, { 1, 2, 3 }, { 0, -14, 0, 0, 0, 0, 0, 0 } },
		{ "one zero vector", 3, { 0, 0, 0 }, { 1, 2, 2 }, { 3, 0, 1, 0.5, 5, 2, 1, 3 } },
		{ "both zero", 2, { 0, 0 }, { 0, 0 }, { 0, 0, 1, 0.5, 0, 0, 0, 0 } },
		{ "signed zeros", 3, { 0.0f, -0.0f, 1 }, { -0.0f, 0.0f, 1 }, { 0, -1, 0, 0, 0, 0, 0, 0 } },
		/* Squares underflow in float: still parallel, not zero vectors. */
		{ "tiny parallel", 2, { 1e-30f, 1e-30f }, { 2e-30f, 2e-30f },
		  { 1.4142135623730951e-30, 0, 0, 0, 2e-30, 1e-30, 0.5, 2 } },
		/* Squares overflow in float: the angle is still 45 degrees. */
		{ "huge at 45 degrees", 2, { 1e30f, 0 }, { 1e30f, 1e30f },
		  { 1e30, -INFINITY, 0.29289321881345254, 0.25, 1e30, 1e30, 0.5, 1 } },
	};
	for (size_t c = 0; c < NVF_ARRAY_LEN(cases); c++) {
		const hand_case *h = &cases[c];
		for (int m = 0; m < NVF_METRIC_COUNT; m++) {
			double want = h->want[m];
			float got = NAN;
			int rc = nvf_distance(m, h->a, h->b, h->n, &got);
			if (isnan(want)) {
				tu_assert(rc == NVF_EINVAL && isnan(got), "%s %s: rc %d, out %g", nvf_metric_name(m),
					  h->what, rc, (double)got);
				continue;
			}
			tu_assert(rc == 0, "%s %s: rc %d (%s)", nvf_metric_name(m), h->what, rc, nvf_errmsg());
			/* acos is steep near 1: float rounding of an exact cos of 1
			 * can show as 1e-4 of angle. */
			double tol = m == NVF_METRIC_ANGULAR && want == 0 ? 1e-3 : 1e-6 * fabs(want) + 1e-6;
			if (isinf(want))
				tu_assert(got == want, "%s %s: got %g", nvf_metric_name(m), h->what, (double)got);
			else if (fabs(want) < 1e-20 && fabs(want) > 0)
				CHECK_NEAR(got, want, 1e-6 * fabs(want), "%s %s", nvf_metric_name(m), h->what);
			else
				CHECK_NEAR(got, want, tol, "%s %s", nvf_metric_name(m), h->what);
		}
	}
}
END_TEST

static double ref_metric(int m, const float *a, const float *b, size_t n)
{
	double d = 0, na = 0, nb = 0, c;
	ref lo, hi;
	for (size_t i = 0; i < n; i++) {
		d += (double)a[i] * b[i];
		na += (double)a[i] * a[i];
		nb += (double)b[i] * b[i];
	}
	c = na == 0 || nb == 0 ? NAN : fmax(-1, fmin(1, d / sqrt(na * nb)));
	switch (m) {
	case NVF_METRIC_EUCLIDEAN:
		return sqrt(ref_l2sq(a, b, n).v);
	case NVF_METRIC_INNER_PRODUCT:
		return -d;
	case NVF_METRIC_COSINE:
		return isnan(c) ? 1 : 1 - c;
	case NVF_METRIC_ANGULAR:
		return isnan(c) ? 0.5 : acos(c) / M_PI;
	case NVF_METRIC_MANHATTAN:
		return ref_l1(a, b, n).v;
	case NVF_METRIC_CHEBYSHEV:
		return ref_linf(a, b, n);
	case NVF_METRIC_JACCARD:
		ref_minmax(a, b, n, &lo, &hi);
		return hi.v == 0 ? 0 : 1 - lo.v / hi.v;
	default:
		return ref_hamming(a, b, n);
	}
}

START_TEST(test_distance_matches_reference_for_every_metric)
{
	uint64_t rng = seed ^ 4;
	float a[MAXN], b[MAXN];
	for (size_t n = 1; n <= MAXN; n++) {
		for (int rep = 0; rep < 8; rep++) {
			/* Non-negative for jaccard; some exact zeros and shared values. */
			for (size_t i = 0; i < n; i++) {
				a[i] = fabsf(urand(&rng));
				uint64_t pick = tu_below(&rng, 8);
				b[i] = pick < 2 ? a[i] : pick == 2 ? 0.0f : fabsf(urand(&rng));
			}
			if (rep & 1) /* and signed for the others */
				for (size_t i = 0; i < n; i += 2)
					a[i] = -a[i];
			bool negative = false;
			for (size_t i = 0; i < n; i++)
				negative |= a[i] < 0;
			ref l2 = ref_l2sq(a, b, n), dt = ref_dot(a, b, n);
			for (int m = 0; m < NVF_METRIC_COUNT; m++) {
				double want = ref_metric(m, a, b, n);
				float got = NAN;
				int rc = nvf_distance(m, a, b, n, &got);
				if (m == NVF_METRIC_JACCARD && negative) {
					tu_assert(rc == NVF_EINVAL && isnan(got), "jaccard of a negative vector: rc %d",
						  rc);
					continue;
				}
				tu_assert(rc == 0, "%s n=%zu: rc %d (%s)", nvf_metric_name(m), n, rc, nvf_errmsg());
				double tol;
				switch (m) {
				case NVF_METRIC_EUCLIDEAN:
					tol = 1e-5 * sqrt(l2.mag) + 1e-30;
					break;
				case NVF_METRIC_INNER_PRODUCT:
					tol = 1e-5 * dt.mag + 1e-30;
					break;
				case NVF_METRIC_MANHATTAN:
					tol = 1e-5 * want + 1e-30;
					break;
				case NVF_METRIC_COSINE:
				case NVF_METRIC_JACCARD:
					tol = 3e-5;
					break;
				default:
					tol = 0;
				}
				if (m == NVF_METRIC_ANGULAR) {
					/* acos magnifies rounding near +-1: compare cosines. */
					CHECK_NEAR(cos(M_PI * got), cos(M_PI * want), 3e-5, "angular n=%zu", n);
				} else {
					CHECK_NEAR(got, want, tol, "%s n=%zu rep=%d", nvf_metric_name(m), n, rep);
				}
			}
		}
	}
}
END_TEST

START_TEST(test_distance_rejects_bad_arguments)
{
	float a[4] = { 1, 2, 3, 4 }, b[4] = { 1, 2, 3, -4 }, out = SENTINEL;
	ck_assert_int_eq(nvf_distance(-1, a, a, 4, &out), NVF_EINVAL);
	ck_assert_str_ne(nvf_errmsg(), "");
	ck_assert_int_eq(nvf_distance(NVF_METRIC_COUNT, a, a, 4, &out), NVF_EINVAL);
	for (int m = 0; m < NVF_METRIC_COUNT; m++) {
		ck_assert_int_eq(nvf_distance(m, a, a, 0, &out), NVF_EINVAL);
		ck_assert_int_eq(nvf_distance(m, NULL, a, 4, &out), NVF_EINVAL);
		ck_assert_int_eq(nvf_distance(m, a, a, 4, NULL), NVF_EINVAL);
	}
	ck_assert_int_eq(nvf_distance(NVF_METRIC_JACCARD, a, b, 4, &out), NVF_EINVAL);
	ck_assert_ptr_nonnull(strstr(nvf_errmsg(), "negative"));
	ck_assert_int_eq(nvf_distance(NVF_METRIC_JACCARD, b, a, 4, &out), NVF_EINVAL);
	ck_assert(out == SENTINEL); /* out untouched on failure */
	/* -0.0 is not negative. */
	b[3] = -0.0f;
	ck_nvf(nvf_distance(NVF_METRIC_JACCARD, a, b, 4, &out));
	CHECK_NEAR(out, 1.0 - 6.0 / 10.0, 1e-6, "jaccard with -0.0");
}
END_TEST

START_TEST(test_metric_names_round_trip_case_insensitively)
{
	for (int m = 0; m < NVF_METRIC_COUNT; m++) {
		const char *name = nvf_metric_name(m);
		ck_assert_ptr_nonnull(name);
		ck_assert_int_eq(nvf_metric_parse(name), m);
		char upper[32];
		size_t i = 0;
		for (; name[i] && i + 1 < sizeof(upper); i++) /* mixed case: "EuClIdEaN" */
			upper[i] = (char)(i % 2 ? name[i] : toupper((unsigned char)name[i]));
		upper[i] = '\0';
		ck_assert_int_eq(nvf_metric_parse(upper), m);
	}
	ck_assert_str_eq(nvf_metric_name(NVF_METRIC_EUCLIDEAN), "euclidean");
	ck_assert_str_eq(nvf_metric_name(NVF_METRIC_INNER_PRODUCT), "inner_product");
	ck_assert_str_eq(nvf_metric_name(NVF_METRIC_HAMMING), "hamming");
	ck_assert_ptr_null(nvf_metric_name(-1));
	ck_assert_ptr_null(nvf_metric_name(NVF_METRIC_COUNT));
	ck_assert_int_eq(nvf_metric_parse("l2"), NVF_METRIC_EUCLIDEAN);
	ck_assert_int_eq(nvf_metric_parse("L2"), NVF_METRIC_EUCLIDEAN);
	ck_assert_int_eq(nvf_metric_parse("ip"), NVF_METRIC_INNER_PRODUCT);
	ck_assert_int_eq(nvf_metric_parse("DOT"), NVF_METRIC_INNER_PRODUCT);
	ck_assert_int_eq(nvf_metric_parse("l1"), NVF_METRIC_MANHATTAN);
	ck_assert_int_eq(nvf_metric_parse("LInf"), NVF_METRIC_CHEBYSHEV);
	ck_assert_int_eq(nvf_metric_parse("COSINE"), NVF_METRIC_COSINE);
	ck_assert_int_eq(nvf_metric_parse("euclid"), NVF_EINVAL);
	ck_assert_ptr_nonnull(strstr(nvf_errmsg(), "euclid"));
	ck_assert_int_eq(nvf_metric_parse(""), NVF_EINVAL);
	ck_assert_int_eq(nvf_metric_parse("l2 "), NVF_EINVAL);
	ck_assert_int_eq(nvf_metric_parse(NULL), NVF_EINVAL);
}
END_TEST

/* ---- vector utilities ---- */

START_TEST(test_vec_arithmetic_is_exact_and_allows_aliasing)
{
	uint64_t rng = seed ^ 5;
	float a[MAXN], b[MAXN], out[MAXN], x[MAXN];
	for (size_t n = 1; n <= MAXN; n++) {
		for (size_t i = 0; i < n; i++) {
			a[i] = urand(&rng) * 100;
			b[i] = urand(&rng) * 100;
			if (b[i] == 0)
				b[i] = 1;
		}
		float s = urand(&rng) * 10 + 20;
		nvf_vec_zeros(out, n);
		for (size_t i = 0; i < n; i++)
			tu_assert(out[i] == 0 && !signbit(out[i]), "zeros[%zu]", i);
		nvf_vec_ones(out, n);
		for (size_t i = 0; i < n; i++)
			tu_assert(out[i] == 1, "ones[%zu]", i);

		/* Separate output, then out == a, then out == b. */
		for (int alias = 0; alias < 3; alias++) {
			float *dst = alias == 0 ? out : x;
			const float *pa = alias == 1 ? x : a, *pb = alias == 2 ? x : b;
#define RESET() memcpy(x, alias == 2 ? b : a, n * sizeof(float))
#define EXPECT(expr, name)                                                                          \
	for (size_t i = 0; i < n; i++)                                                              \
		tu_assert(dst[i] == (expr), "%s n=%zu alias=%d [%zu]: %g != %g", name, n, alias, i, \
			  (double)dst[i], (double)(expr))
			RESET();
			nvf_vec_add(dst, pa, pb, n);
			EXPECT(a[i] + b[i], "add");
			RESET();
			nvf_vec_sub(dst, pa, pb, n);
			EXPECT(a[i] - b[i], "sub");
			RESET();
			nvf_vec_mul(dst, pa, pb, n);
			EXPECT(a[i] * b[i], "mul");
			RESET();
			ck_nvf(nvf_vec_div(dst, pa, pb, n));
			EXPECT(a[i] / b[i], "div");
			if (alias == 2)
				continue;
			RESET();
			nvf_vec_add_scalar(dst, pa, s, n);
			EXPECT(a[i] + s, "add_scalar");
			RESET();
			nvf_vec_sub_scalar(dst, pa, s, n);
			EXPECT(a[i] - s, "sub_scalar");
			RESET();
			nvf_vec_mul_scalar(dst, pa, s, n);
			EXPECT(a[i] * s, "mul_scalar");
			RESET();
			ck_nvf(nvf_vec_div_scalar(dst, pa, s, n));
			EXPECT(a[i] / s, "div_scalar");
#undef RESET
#undef EXPECT
		}
		/* All three the same array. */
		memcpy(x, a, n * sizeof(float));
		nvf_vec_mul(x, x, x, n);
		for (size_t i = 0; i < n; i++)
			tu_assert(x[i] == a[i] * a[i], "mul(x, x, x)[%zu]", i);
	}
}
END_TEST

START_TEST(test_vec_division_by_zero_fails_and_leaves_out_untouched)
{
	float a[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, b[8] = { 1, 1, 1, 1, 1, 1, 1, 1 }, out[8], keep[8];
	for (size_t z = 0; z < 8; z++) {
		for (int sign = 0; sign < 2; sign++) {
			b[z] = sign ? -0.0f : 0.0f;
			for (size_t i = 0; i < 8; i++)
				out[i] = keep[i] = SENTINEL + (float)i;
			ck_assert_int_eq(nvf_vec_div(out, a, b, 8), NVF_EINVAL);
			ck_assert_str_ne(nvf_errmsg(), "");
			ck_assert(memcmp(out, keep, sizeof(out)) == 0);
			/* in place: a must survive too */
			memcpy(out, a, sizeof(a));
			ck_assert_int_eq(nvf_vec_div(out, out, b, 8), NVF_EINVAL);
			ck_assert(memcmp(out, a, sizeof(a)) == 0);
			b[z] = 1;
		}
	}
	for (size_t i = 0; i < 8; i++)
		out[i] = keep[i] = SENTINEL;
	ck_assert_int_eq(nvf_vec_div_scalar(out, a, 0.0f, 8), NVF_EINVAL);
	ck_assert_int_eq(nvf_vec_div_scalar(out, a, -0.0f, 8), NVF_EINVAL);
	ck_assert(memcmp(out, keep, sizeof(out)) == 0);
	float zero[8] = { 0 };
	ck_assert_int_eq(nvf_vec_normalize(out, zero, 8), NVF_EINVAL);
	ck_assert(memcmp(out, keep, sizeof(out)) == 0);
	zero[3] = -0.0f;
	ck_assert_int_eq(nvf_vec_normalize(out, zero, 8), NVF_EINVAL);
	ck_assert(memcmp(out, keep, sizeof(out)) == 0);
}
END_TEST

START_TEST(test_vec_reductions_match_double_reference)
{
	uint64_t rng = seed ^ 6;
	float a[MAXN], b[MAXN];
	for (size_t n = 1; n <= MAXN; n++) {
		for (int kind = 0; kind < K_COUNT; kind++) {
			fill(kind, a, b, n, &rng);
			if (kind == K_ALTERNATING) /* mean far from zero against the spread */
				for (size_t i = 0; i < n; i++)
					a[i] += 1000;
			ref d = ref_dot(a, b, n), ss = ref_dot(a, a, n);
			double l1 = 0, linf = 0, sum = 0, mn = a[0], mx = a[0];
			for (size_t i = 0; i < n; i++) {
				l1 += fabs(a[i]);
				linf = fmax(linf, fabs(a[i]));
				sum += a[i];
				mn = fmin(mn, a[i]);
				mx = fmax(mx, a[i]);
			}
			double mean = sum / (double)n, var = 0;
			for (size_t i = 0; i < n; i++)
				var += ((double)a[i] - mean) * ((double)a[i] - mean);
			double sd = sqrt(var / (double)n);
			const char *k = kind_names[kind];
			CHECK_SUM(nvf_vec_dot(a, b, n), d, "vec_dot %s n=%zu", k, n);
			CHECK_NEAR(nvf_vec_norm(a, n), sqrt(ss.v), 1e-5 * sqrt(ss.v), "vec_norm %s n=%zu", k, n);
			CHECK_NEAR(nvf_vec_l1_norm(a, n), l1, 1e-6 * l1, "vec_l1_norm %s n=%zu", k, n);
			tu_assert(nvf_vec_linf_norm(a, n) == linf, "vec_linf_norm %s n=%zu", k, n);
			CHECK_NEAR(nvf_vec_mean(a, n), mean, 1e-6 * fabs(mean) + 1e-30, "vec_mean %s n=%zu", k, n);
			CHECK_NEAR(nvf_vec_std(a, n), sd, 1e-6 * sd + 1e-30, "vec_std %s n=%zu", k, n);
			tu_assert(nvf_vec_min(a, n) == mn, "vec_min %s n=%zu", k, n);
			tu_assert(nvf_vec_max(a, n) == mx, "vec_max %s n=%zu", k, n);
		}
	}
	/* Float sums of squares would overflow or underflow here. */
	float huge[3] = { 1e20f, -1e20f, 1e20f }, tiny[3] = { 3e-25f, 0, -4e-25f };
	CHECK_NEAR(nvf_vec_norm(huge, 3), 1.7320508075688772e20, 1e14, "vec_norm of 1e20s");
	CHECK_NEAR(nvf_vec_norm(tiny, 3), 5e-25, 1e-31, "vec_norm of 1e-25s");
	float c[4] = { 2, 4, 4, 6 };
	CHECK_NEAR(nvf_vec_std(c, 4), sqrt(2.0), 1e-6, "population std of 2 4 4 6");
	CHECK_NEAR(nvf_vec_mean(c, 4), 4, 0, "mean of 2 4 4 6");
}
END_TEST

START_TEST(test_vec_normalize_gives_unit_vectors_in_place_too)
{
	uint64_t rng = seed ^ 7;
	float a[MAXN], b[MAXN], out[MAXN];
	for (size_t n = 1; n <= MAXN; n++) {
		for (int kind = 0; kind < K_COUNT; kind++) {
			if (kind == K_ZEROS || kind == K_ZERO_A || kind == K_SIGNED_ZEROS)
				continue;
			fill(kind, a, b, n, &rng);
			double norm = sqrt(ref_dot(a, a, n).v);
			ck_nvf(nvf_vec_normalize(out, a, n));
			const char *k = kind_names[kind];
			CHECK_NEAR(sqrt(ref_dot(out, out, n).v), 1, 1e-6, "normalize %s n=%zu: norm", k, n);
			for (size_t i = 0; i < n; i++)
				CHECK_NEAR(out[i], a[i] / norm, 1e-7, "normalize %s n=%zu [%zu]", k, n, i);
			ck_nvf(nvf_vec_normalize(a, a, n));
			ck_assert(memcmp(a, out, n * sizeof(float)) == 0);
		}
	}
}
END_TEST

START_TEST(test_vec_random_is_uniform_in_range_and_reproducible)
{
	uint64_t state = seed, s2, s3;
	float keep[4] = { SENTINEL, SENTINEL, SENTINEL, SENTINEL }, out[4];
	memcpy(out, keep, sizeof(out));
	ck_assert_int_eq(nvf_vec_random(out, 4, 1, 1, &state), NVF_EINVAL);
	ck_assert_int_eq(nvf_vec_random(out, 4, 2, 1, &state), NVF_EINVAL);
	ck_assert_int_eq(nvf_vec_random(out, 4, NAN, 1, &state), NVF_EINVAL);
	ck_assert_int_eq(nvf_vec_random(out, 4, 0, INFINITY, &state), NVF_EINVAL);
	ck_assert_int_eq(nvf_vec_random(out, 4, -INFINITY, 0, &state), NVF_EINVAL);
	ck_assert_int_eq(nvf_vec_random(out, 4, 0, 1, NULL), NVF_EINVAL);
	ck_assert(memcmp(out, keep, sizeof(out)) == 0);
	ck_assert_uint_eq(state, seed); /* failures do not advance the state */

	enum { N = 100000 };
	float *v = xalloc(N), *w = xalloc(N);
	static const float ranges[][2] = { { 0, 1 }, { -1, 1 }, { 5, 5.5f }, { -3e38f, 3e38f }, { 1, 1.0000001f } };
	for (size_t r = 0; r < NVF_ARRAY_LEN(ranges); r++) {
		float lo = ranges[r][0], hi = ranges[r][1];
		s2 = s3 = state;
		ck_nvf(nvf_vec_random(v, N, lo, hi, &s2));
		ck_nvf(nvf_vec_random(w, N, lo, hi, &s3));
		ck_assert(s2 != state && s2 == s3);
		ck_assert(memcmp(v, w, N * sizeof(float)) == 0); /* same state, same vector */
		double sum = 0;
		size_t below_quarter = 0;
		for (size_t i = 0; i < N; i++) {
			tu_assert(v[i] >= lo && v[i] < hi, "random [%.9g, %.9g): %.9g", (double)lo, (double)hi,
				  (double)v[i]);
			sum += v[i];
			below_quarter += v[i] < lo + ((double)hi - lo) / 4;
		}
		if (r < 4) {
			double mid = ((double)lo + hi) / 2, width = (double)hi - lo;
			CHECK_NEAR(sum / N, mid, 0.01 * width, "mean of random in [%g, %g)", (double)lo, (double)hi);
			CHECK_NEAR((double)below_quarter / N, 0.25, 0.01, "lowest quarter of [%g, %g)", (double)lo,
				   (double)hi);
		}
		state = s2;
	}
	/* The next call continues the stream rather than repeating it. */
	s2 = state;
	ck_nvf(nvf_vec_random(v, 16, 0, 1, &s2));
	ck_nvf(nvf_vec_random(w, 16, 0, 1, &s2));
	ck_assert(memcmp(v, w, 16 * sizeof(float)) != 0);
	free(v);
	free(w);
}
END_TEST

START_TEST(test_vec_unit_random_is_uniform_on_the_sphere)
{
	uint64_t state = seed ^ 8, s2;
	float v[MAXN], w[MAXN];
	ck_assert_int_eq(nvf_vec_unit_random(v, 0, &state), NVF_EINVAL);
	ck_assert_int_eq(nvf_vec_unit_random(v, 3, NULL), NVF_EINVAL);
	for (size_t n = 1; n <= MAXN; n++) {
		s2 = state;
		ck_nvf(nvf_vec_unit_random(v, n, &state));
		ck_nvf(nvf_vec_unit_random(w, n, &s2));
		ck_assert(memcmp(v, w, n * sizeof(float)) == 0);
		CHECK_NEAR(sqrt(ref_dot(v, v, n).v), 1, 1e-6, "unit_random n=%zu: norm", n);
	}
	/* On the sphere in 3 dimensions each coordinate has mean 0 and E[x^2] = 1/3,
	 * and n = 1 gives +1 and -1 equally often. */
	enum { DRAWS = 20000 };
	double m = 0, m2 = 0;
	size_t plus = 0;
	for (int i = 0; i < DRAWS; i++) {
		ck_nvf(nvf_vec_unit_random(v, 3, &state));
		m += v[2];
		m2 += (double)v[2] * v[2];
		ck_nvf(nvf_vec_unit_random(w, 1, &state));
		tu_assert(fabsf(w[0]) == 1.0f, "unit_random n=1 gave %g", (double)w[0]);
		plus += w[0] > 0;
	}
	CHECK_NEAR(m / DRAWS, 0, 0.02, "mean coordinate");
	CHECK_NEAR(m2 / DRAWS, 1.0 / 3, 0.01, "mean squared coordinate");
	CHECK_NEAR((double)plus / DRAWS, 0.5, 0.02, "share of +1 in dimension 1");
}
END_TEST

START_TEST(test_four_bit_dot_is_exact_on_every_level)
{
	/* Integer arithmetic: every level must give exactly the plain sum, for every
	 * length (tails), at the extremes (codes 15, query +-127: the 16-bit pair sums
	 * must not saturate) and on random data. */
	uint64_t rng = tu_seed("dot_q4");
	static uint8_t codes[300];
	static int8_t qe[300], qo[300];
	const nvf_kernels *all[4] = {nvf__kernels_scalar(), nvf__kernels_avx2(), nvf__kernels_avx512(),
				     nvf__kernels_avx512_plain()};
	for (int trial = 0; trial < 3; trial++) {
		for (size_t j = 0; j < sizeof(codes); j++) {
			codes[j] = trial == 0 ? 0xff : (uint8_t)tu_rand(&rng);
			qe[j] = trial == 0 ? 127 : trial == 1 ? -127 : (int8_t)(tu_below(&rng, 255) - 127);
			qo[j] = trial == 0 ? 127 : (int8_t)(tu_below(&rng, 255) - 127);
		}
		for (size_t nbytes = 0; nbytes <= 260; nbytes++) {
			for (int l = 0; l < 4; l++) {
				if (!all[l])
					continue;
				/* Unaligned starts too. */
				int32_t got = all[l]->dot_q4(codes + (nbytes % 3), qe + (nbytes % 3), qo + (nbytes % 3), nbytes);
				int64_t w2 = 0;
				for (size_t j = nbytes % 3; j < nbytes % 3 + nbytes; j++)
					w2 += (codes[j] & 15) * qe[j] + (codes[j] >> 4) * qo[j];
				tu_assert(got == w2, "%s: %zu bytes: %d, want %lld", all[l]->name, nbytes, got, (long long)w2);
			}
		}
	}
}
END_TEST

int main(void)
{
	seed = tu_seed("distance");
	static const char *const names[3] = { "scalar", "avx2", "avx512" };
	const nvf_kernels *all[3] = { nvf__kernels_scalar(), nvf__kernels_avx2(), nvf__kernels_avx512() };
	for (int i = 0; i < 3; i++)
		fprintf(stderr, "distance: level %s: %s\n", names[i],
			all[i] ? "tested" : "not supported by this CPU, skipped");
	fprintf(stderr, "distance: dispatched level: %s\n", nvf_simd_level());

	Suite *s = suite_create("distance");
	TCase *tc = tcase_create("kernels");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_pairwise_kernels_match_double_reference);
	tcase_add_test(tc, test_four_bit_dot_is_exact_on_every_level);
	tcase_add_test(tc, test_hamming_counts_signed_zeros_equal_and_nan_different);
	tcase_add_test(tc, test_kernels_read_nothing_past_the_end);
	tcase_add_test(tc, test_row_kernels_match_pairwise_reference);
	tcase_add_test(tc, test_dot_block_matches_pairwise_reference);
	tcase_add_test(tc, test_dispatch_picks_the_best_level_under_the_nvf_simd_cap);
	tcase_add_test(tc, test_dispatch_chooses_once_across_racing_threads);
	suite_add_tcase(s, tc);

	tc = tcase_create("metrics");
	tcase_add_test(tc, test_distance_matches_hand_computed_values);
	tcase_add_test(tc, test_distance_matches_reference_for_every_metric);
	tcase_add_test(tc, test_distance_rejects_bad_arguments);
	tcase_add_test(tc, test_metric_names_round_trip_case_insensitively);
	suite_add_tcase(s, tc);

	tc = tcase_create("vecops");
	tcase_add_test(tc, test_vec_arithmetic_is_exact_and_allows_aliasing);
	tcase_add_test(tc, test_vec_division_by_zero_fails_and_leaves_out_untouched);
	tcase_add_test(tc, test_vec_reductions_match_double_reference);
	tcase_add_test(tc, test_vec_normalize_gives_unit_vectors_in_place_too);
	tcase_add_test(tc, test_vec_random_is_uniform_in_range_and_reproducible);
	tcase_add_test(tc, test_vec_unit_random_is_uniform_on_the_sphere);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
