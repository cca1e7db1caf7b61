/* Output of the C benches: a table for people, or with --json one object per result
 * (suite, system, dataset, metric, value, unit, plus free-form "note"). */
#ifndef NVF_BENCHUTIL_H
#define NVF_BENCHUTIL_H

#include <stdbool.h>
#include <stdio.h>
#include <time.h>

static bool bench_json;

static inline void bench_emit(const char *suite, const char *system, const char *dataset, const char *metric,
			      double value, const char *unit, const char *note)
{
	if (bench_json) {
		printf("{\"suite\": \"%s\", \"system\": \"%s\", \"dataset\": \"%s\", \"metric\": \"%s\", "
		       "\"value\": %.12g, \"unit\": \"%s\"%s%s%s}\n",
		       suite, system, dataset, metric, value, unit, note ? ", \"note\": \"" : "", note ? note : "",
		       note ? "\"" : "");
	} else {
		printf("%-8s %-10s %-16s %-34s %14.3f %-8s %s\n", suite, system, dataset, metric, value, unit,
		       note ? note : "");
	}
	fflush(stdout);
}

static inline void bench_header(void)
{
	if (!bench_json)
		printf("%-8s %-10s %-16s %-34s %14s %-8s %s\n", "suite", "system", "dataset", "metric", "value",
		       "unit", "note");
}

static inline double bench_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#endif
