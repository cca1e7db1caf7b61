/* Element-wise vector utilities (nvf.h, "Vector utilities"), behind the Python
 * Vector class. Output may alias an input: every loop reads element i of its
 * inputs before it writes element i of out, and no pointer is restrict. Checks
 * that can fail run before the first write, so a failure leaves out untouched.
 * dot and norm use the dispatched kernels; the statistics accumulate in double. */
#include "distance.h"
#include "nvf_int.h"

#include <float.h>
#include <math.h>

void nvf_vec_zeros(float *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = 0.0f;
}

void nvf_vec_ones(float *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = 1.0f;
}

/* ---- random vectors ---- */

/* splitmix64: one word of state, as the API gives the caller, and every seed
 * (zero included) yields a full-period, well-mixed stream. */
static uint64_t next_u64(uint64_t *state)
{
	uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));
	z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

/* Uniform in [0, 1) with 53 random bits. */
static double next_unit(uint64_t *state)
{
	return (double)(next_u64(state) >> 11) * 0x1p-53;
}

int nvf_vec_random(float *out, size_t n, float lo, float hi, uint64_t *state)
{
	if (!state)
		return nvf__err(NVF_EINVAL, "random vector: NULL PRNG state");
	if (!isfinite(lo) || !isfinite(hi) || !(lo < hi))
		return nvf__err(NVF_EINVAL, "random vector: need finite lo < hi, got [%g, %g)", (double)lo, (double)hi);
	/* In double, hi - lo cannot overflow and lo + span * u >= lo exactly; only the
	 * rounding to float can reach hi, which the interval excludes. */
	double span = (double)hi - (double)lo;
	float below_hi = nextafterf(hi, lo);
	for (size_t i = 0; i < n; i++) {
		float x = (float)(lo + span * next_unit(state));
		out[i] = x < hi ? x : below_hi;
	}
	return 0;
}

int nvf_vec_unit_random(float *out, size_t n, uint64_t *state)
{
	if (!state)
		return nvf__err(NVF_EINVAL, "random unit vector: NULL PRNG state");
	if (n == 0)
		return nvf__err(NVF_EINVAL, "random unit vector of dimension 0");
	/* Normal deviates (Box-Muller) in every coordinate give a direction uniform
	 * on the sphere. An all-zero draw has probability ~0 but is drawn again. */
	double ss;
	do {
		ss = 0;
		for (size_t i = 0; i < n; i += 2) {
			double u1 = 1.0 - next_unit(state); /* (0, 1]: log() stays finite */
			double u2 = next_unit(state);
			double r = sqrt(-2.0 * log(u1));
			double z0 = r * cos(2.0 * M_PI * u2), z1 = r * sin(2.0 * M_PI * u2);
			out[i] = (float)z0;
			ss += (double)out[i] * out[i];
			if (i + 1 < n) {
				out[i + 1] = (float)z1;
				ss += (double)out[i + 1] * out[i + 1];
			}
		}
	} while (ss == 0);
	double inv = 1.0 / sqrt(ss);
	for (size_t i = 0; i < n; i++)
		out[i] = (float)(out[i] * inv);
	return 0;
}

/* ---- element-wise arithmetic ---- */

void nvf_vec_add(float *out, const float *a, const float *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = a[i] + b[i];
}

void nvf_vec_sub(float *out, const float *a, const float *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = a[i] - b[i];
}

void nvf_vec_mul(float *out, const float *a, const float *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = a[i] * b[i];
}

int nvf_vec_div(float *out, const float *a, const float *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (b[i] == 0)
			return nvf__err(NVF_EINVAL, "vector division: divisor component %zu is zero", i);
	for (size_t i = 0; i < n; i++)
		out[i] = a[i] / b[i];
	return 0;
}

void nvf_vec_add_scalar(float *out, const float *a, float s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = a[i] + s;
}

void nvf_vec_sub_scalar(float *out, const float *a, float s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = a[i] - s;
}

void nvf_vec_mul_scalar(float *out, const float *a, float s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = a[i] * s;
}

int nvf_vec_div_scalar(float *out, const float *a, float s, size_t n)
{
	if (s == 0)
		return nvf__err(NVF_EINVAL, "vector division by zero");
	for (size_t i = 0; i < n; i++)
		out[i] = a[i] / s;
	return 0;
}

/* ---- reductions ---- */

float nvf_vec_dot(const float *a, const float *b, size_t n)
{
	return n ? nvf__kernels()->dot(a, b, n) : 0.0f;
}

/* Sum of squares in double, for the vectors whose float sum underflows or
 * overflows (components beyond about 1e-19 or 1e19 in magnitude). */
static double norm_sq_slow(const float *a, size_t n)
{
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += (double)a[i] * a[i];
	return s;
}

static double norm_sq(const float *a, size_t n)
{
	float s = n ? nvf__kernels()->norm_sq(a, n) : 0.0f;
	if (NVF_LIKELY(s >= FLT_MIN && s <= FLT_MAX))
		return s;
	return norm_sq_slow(a, n);
}

float nvf_vec_norm(const float *a, size_t n)
{
	return (float)sqrt(norm_sq(a, n));
}

float nvf_vec_l1_norm(const float *a, size_t n)
{
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += fabsf(a[i]);
	return (float)s;
}

float nvf_vec_linf_norm(const float *a, size_t n)
{
	float m = 0;
	for (size_t i = 0; i < n; i++)
		m = fabsf(a[i]) > m ? fabsf(a[i]) : m;
	return m;
}

int nvf_vec_normalize(float *out, const float *a, size_t n)
{
	double ss = norm_sq(a, n);
	if (ss == 0)
		return nvf__err(NVF_EINVAL, "cannot normalize a zero vector");
	/* Scaling in double: 1/norm of a tiny vector does not fit a float. */
	double inv = 1.0 / sqrt(ss);
	for (size_t i = 0; i < n; i++)
		out[i] = (float)(a[i] * inv);
	return 0;
}

/* mean, std, min and max of an empty vector are NaN. */

float nvf_vec_mean(const float *a, size_t n)
{
	if (n == 0)
		return NAN;
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += a[i];
	return (float)(s / (double)n);
}

float nvf_vec_std(const float *a, size_t n)
{
	if (n == 0)
		return NAN;
	/* Two passes: the one-pass sum-of-squares formula cancels catastrophically
	 * when the mean is large against the spread. */
	double mean = 0, ss = 0;
	for (size_t i = 0; i < n; i++)
		mean += a[i];
	mean /= (double)n;
	for (size_t i = 0; i < n; i++)
		ss += (a[i] - mean) * (a[i] - mean);
	return (float)sqrt(ss / (double)n);
}

float nvf_vec_min(const float *a, size_t n)
{
	if (n == 0)
		return NAN;
	float m = a[0];
	for (size_t i = 1; i < n; i++)
		m = a[i] < m ? a[i] : m;
	return m;
}

float nvf_vec_max(const float *a, size_t n)
{
	if (n == 0)
		return NAN;
	float m = a[0];
	for (size_t i = 1; i < n; i++)
		m = a[i] > m ? a[i] : m;
	return m;
}
