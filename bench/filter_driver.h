// What bench filter's C++ drivers (hnswlib_filter.cpp, usearch_filter.cpp) share:
// timing, the JSON lines they print, the data files they read. Included after the
// driver defines K, DS and SYS and includes vecfile.h and the standard headers.
#ifndef NVF_BENCH_FILTER_DRIVER_H
#define NVF_BENCH_FILTER_DRIVER_H

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

static void emit(const std::string &metric, double value, const char *unit, const std::string &note)
{
	printf("{\"suite\": \"filter\", \"system\": \"%s\", \"dataset\": \"%s\", \"metric\": \"%s\", "
	       "\"value\": %.12g, \"unit\": \"%s\", \"note\": \"%s\"}\n",
	       SYS, DS, metric.c_str(), value, unit, note.c_str());
	fflush(stdout);
}

static void die(const std::string &msg)
{
	fprintf(stderr, "%s_filter: %s\n", SYS, msg.c_str());
	exit(1);
}

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

// A 1-D little-endian int64 .npy file (what numpy.save writes for filter_data.py's ids).
static std::vector<int64_t> load_npy_i64(const std::string &path)
{
	FILE *f = fopen(path.c_str(), "rb");
	if (!f)
		die("cannot open " + path);
	unsigned char pre[10];
	if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0)
		die(path + ": not a .npy file");
	size_t hlen;
	if (pre[6] == 1) {
		hlen = pre[8] | (size_t)pre[9] << 8;
	} else {
		unsigned char b[2];
		if (fread(b, 1, 2, f) != 2)
			die(path + ": short header");
		hlen = pre[8] | (size_t)pre[9] << 8 | (size_t)b[0] << 16 | (size_t)b[1] << 24;
	}
	std::string h(hlen, '\0');
	if (fread(&h[0], 1, hlen, f) != hlen)
		die(path + ": short header");
	const char *shape = strstr(h.c_str(), "'shape': (");
	if (h.find("'descr': '<i8'") == std::string::npos || h.find("'fortran_order': False") == std::string::npos ||
	    !shape)
		die(path + ": not a 1-D '<i8' array");
	char *end;
	long long cnt = strtoll(shape + 10, &end, 10);
	if (end == shape + 10) // shape (): a 0-d array
		die(path + ": not a 1-D array");
	while (*end == ' ')
		end++;
	if (*end != ',' || end[1] != ')' || cnt < 0)
		die(path + ": not a 1-D array");
	std::vector<int64_t> v((size_t)cnt);
	if (cnt && fread(v.data(), sizeof(int64_t), v.size(), f) != v.size())
		die(path + ": short data");
	fclose(f);
	return v;
}

static std::vector<std::string> split(const char *s)
{
	std::vector<std::string> out;
	std::string cur;
	for (; *s; s++) {
		if (*s == ',') {
			out.push_back(cur);
			cur.clear();
		} else {
			cur += *s;
		}
	}
	if (!cur.empty())
		out.push_back(cur);
	return out;
}

#endif
