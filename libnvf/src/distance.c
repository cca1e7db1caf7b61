/* Metrics as search results report them, and the choice of kernels for this CPU.
 *
 * The kernels compute raw float sums (distance.h); this file turns them into the
 * reported distances, falling back to double precision where float sums would
 * underflow or overflow and so misjudge a vector as zero or infinite. */
#include "distance.h"
#include "nvf_int.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <strings.h>

/* ---- dispatch ---- */

static _Atomic(const nvf_kernels *) chosen;
static pthread_once_t chosen_once = PTHREAD_ONCE_INIT;

static void choose(void)
{
	/* NVF_SIMD caps the level (to compare results or work around a CPU bug);
	 * other values, and none, leave the best level available. */
	const char *cap = getenv("NVF_SIMD");
	bool allow512 = true, allow2 = true;
	if (cap && strcasecmp(cap, "scalar") == 0)
		allow512 = allow2 = false;
	else if (cap && strcasecmp(cap, "avx2") == 0)
		allow512 = false;

	const nvf_kernels *k = allow512 ? nvf__kernels_avx512() : NULL;
	if (!k && allow2)
		k = nvf__kernels_avx2();
	if (!k)
		k = nvf__kernels_scalar();
	atomic_store_explicit(&chosen, k, memory_order_release);
}

const nvf_kernels *nvf__kernels(void)
{
	const nvf_kernels *k = atomic_load_explicit(&chosen, memory_order_acquire);
	if (NVF_LIKELY(k))
		return k;
	pthread_once(&chosen_once, choose);
	return atomic_load_explicit(&chosen, memory_order_acquire);
}

const char *nvf_simd_level(void)
{
	return nvf__kernels()->name;
}

/* ---- metric names ---- */

static const char *const metric_names[NVF_METRIC_COUNT] = {
	[NVF_METRIC_EUCLIDEAN] = "euclidean",
	[NVF_METRIC_INNER_PRODUCT] = "inner_product",
	[NVF_METRIC_COSINE] = "cosine",
	[NVF_METRIC_ANGULAR] = "angular",
	[NVF_METRIC_MANHATTAN] = "manhattan",
	[NVF_METRIC_CHEBYSHEV] = "chebyshev",
	[NVF_METRIC_JACCARD] = "jaccard",
	[NVF_METRIC_HAMMING] = "hamming",
};

static const struct {
	const char *name;
	int metric;
} metric_aliases[] = {
	{ "l2", NVF_METRIC_EUCLIDEAN },     { "ip", NVF_METRIC_INNER_PRODUCT }, { "dot", NVF_METRIC_INNER_PRODUCT },
	{ "l1", NVF_METRIC_MANHATTAN },     { "linf", NVF_METRIC_CHEBYSHEV },
};

const char *nvf_metric_name(int metric)
{
	if (metric < 0 || metric >= NVF_METRIC_COUNT)
		return NULL;
	return metric_names[metric];
}

int nvf_metric_parse(const char *name)
{
	if (!name)
		return nvf__err(NVF_EINVAL, "metric name is NULL");
	for (int m = 0; m < NVF_METRIC_COUNT; m++)
		if (strcasecmp(name, metric_names[m]) == 0)
			return m;
	for (size_t i = 0; i < NVF_ARRAY_LEN(metric_aliases); i++)
		if (strcasecmp(name, metric_aliases[i].name) == 0)
			return metric_aliases[i].metric;
	return nvf__err(NVF_EINVAL, "unknown metric \"%s\"", name);
}

/* ---- reported distances ---- */

/* The cosine of the angle between a and b, clamped to [-1, 1] (float rounding can
 * push it just outside); false if either vector is zero. */
static bool cosine_of(const nvf_kernels *k, const float *a, const float *b, size_t n, double *out)
{
	double d = k->dot(a, b, n), na = k->norm_sq(a, n), nb = k->norm_sq(b, n);
	/* A float sum of squares below FLT_MIN has lost its precision (or is zero
	 * only because the squares underflowed), one above FLT_MAX has overflowed:
	 * redo those rare cases in double, which holds every product of two floats. */
	if (NVF_UNLIKELY(!(na >= FLT_MIN && na <= FLT_MAX && nb >= FLT_MIN && nb <= FLT_MAX && isfinite(d)))) {
		d = na = nb = 0;
		for (size_t i = 0; i < n; i++) {
			d += (double)a[i] * b[i];
			na += (double)a[i] * a[i];
			nb += (double)b[i] * b[i];
		}
		if (na == 0 || nb == 0)
			return false;
	}
	double c = d / (sqrt(na) * sqrt(nb));
	*out = c < -1 ? -1 : c > 1 ? 1 : c;
	return true;
}

static float euclidean(const nvf_kernels *k, const float *a, const float *b, size_t n)
{
	float s = k->l2sq(a, b, n);
	if (NVF_LIKELY(s >= FLT_MIN && s <= FLT_MAX))
		return sqrtf(s);
	/* Zero, underflowed or overflowed squares (equal vectors, or differences
	 * beyond about 1e-19 or 1e19): the distance itself may well fit a float. */
	double d = 0;
	for (size_t i = 0; i < n; i++) {
		double t = (double)a[i] - b[i];
		d += t * t;
	}
	return (float)sqrt(d);
}

static int jaccard(const nvf_kernels *k, const float *a, const float *b, size_t n, float *out)
{
	for (size_t i = 0; i < n; i++)
		if (NVF_UNLIKELY(a[i] < 0 || b[i] < 0))
			return nvf__err(NVF_EINVAL, "jaccard distance needs non-negative vectors: component %zu is %g",
					i, (double)(a[i] < 0 ? a[i] : b[i]));
	float smin, smax;
	k->minmax(a, b, n, &smin, &smax);
	double lo = smin, hi = smax;
	if (NVF_UNLIKELY(isinf(smax))) {
		/* Components near FLT_MAX: the float sums overflowed, the double ones cannot. */
		lo = hi = 0;
		for (size_t i = 0; i < n; i++) {
			lo += a[i] < b[i] ? a[i] : b[i];
			hi += a[i] < b[i] ? b[i] : a[i];
		}
	}
	*out = hi == 0 ? 0.0f : (float)(1.0 - lo / hi);
	return 0;
}

int nvf_distance(int metric, const float *a, const float *b, size_t n, float *out)
{
	if (metric < 0 || metric >= NVF_METRIC_COUNT)
		return nvf__err(NVF_EINVAL, "unknown metric %d", metric);
	if (n == 0)
		return nvf__err(NVF_EINVAL, "%s distance of vectors of dimension 0", metric_names[metric]);
	if (!a || !b || !out)
		return nvf__err(NVF_EINVAL, "%s distance: NULL vector or output", metric_names[metric]);

	const nvf_kernels *k = nvf__kernels();
	double c;
	switch (metric) {
	case NVF_METRIC_EUCLIDEAN:
		*out = euclidean(k, a, b, n);
		return 0;
	case NVF_METRIC_INNER_PRODUCT:
		*out = -k->dot(a, b, n);
		return 0;
	case NVF_METRIC_COSINE:
		*out = cosine_of(k, a, b, n, &c) ? (float)(1.0 - c) : 1.0f;
		return 0;
	case NVF_METRIC_ANGULAR:
		*out = cosine_of(k, a, b, n, &c) ? (float)(acos(c) / M_PI) : 0.5f;
		return 0;
	case NVF_METRIC_MANHATTAN:
		*out = k->l1(a, b, n);
		return 0;
	case NVF_METRIC_CHEBYSHEV:
		*out = k->linf(a, b, n);
		return 0;
	case NVF_METRIC_JACCARD:
		return jaccard(k, a, b, n, out);
	case NVF_METRIC_HAMMING:
		*out = k->hamming(a, b, n);
		return 0;
	default:
		return nvf__err(NVF_EINVAL, "unknown metric %d", metric);
	}
}
