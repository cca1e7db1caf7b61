// What bench's C++ drivers of the peers share (hnswlib_bench.cpp and usearch_hnsw.cpp for
// bench hnsw, hnswlib_filter.cpp and usearch_filter.cpp through filter_driver.h for bench
// filter): the clock, printf into a std::string, the JSON line of one result, the exit
// on an error, and the vector files they read (tools/vecfile.c, as NusterDB's drivers).
// Included after the driver includes vecfile.h and the standard headers and defines
// PROG (its name, for messages), SUITE (the bench) and SYS (the system) as constant
// strings and DS (the data set's label, which it may set from its arguments).
#ifndef NVF_BENCH_DRIVER_H
#define NVF_BENCH_DRIVER_H

static double now()
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static std::string fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static std::string fmt(const char *f, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, f);
	vsnprintf(buf, sizeof(buf), f, ap);
	va_end(ap);
	return buf;
}

// One result as bench/run --json prints them (bench/report.py reads them back).
static void emit(const std::string &metric, double value, const char *unit, const std::string &note)
{
	printf("{\"suite\": \"%s\", \"system\": \"%s\", \"dataset\": \"%s\", \"metric\": \"%s\", "
	       "\"value\": %.12g, \"unit\": \"%s\", \"note\": \"%s\"}\n",
	       SUITE, SYS, DS, metric.c_str(), value, unit, note.c_str());
	fflush(stdout);
}

static void die(const std::string &msg)
{
	fprintf(stderr, "%s: %s\n", PROG, msg.c_str());
	exit(1);
}

// The first `limit` vectors (0: all) of an .fvecs/.bvecs/IDX file.
static std::vector<float> load(const char *path, size_t limit, size_t *n, size_t *dim)
{
	char err[VECFILE_ERRLEN];
	float *v = vecfile_load(path, VF_AUTO, limit, n, dim, err);
	if (!v)
		die(err);
	std::vector<float> out(v, v + *n * *dim);
	free(v);
	return out;
}

#endif
