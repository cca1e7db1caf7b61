// What bench filter's C++ drivers (hnswlib_filter.cpp, usearch_filter.cpp) share
// beyond driver.h: the allowed-id files filter_data.py writes, and comma lists.
// Included after the driver defines K, PROG, SUITE, SYS and DS and includes vecfile.h
// and the standard headers.
#ifndef NVF_BENCH_FILTER_DRIVER_H
#define NVF_BENCH_FILTER_DRIVER_H

#include "driver.h"

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
