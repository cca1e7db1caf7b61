// hnswlib's side of bench filter (bench/filter.bench; NusterDB's is bench_filter.c, the
// other peers usearch_filter.cpp and faiss_filter.py, in the same run on the same data),
// on Debian's libhnswlib-dev 0.6.2 headers, compiled by g++ -O3 -march=native -fopenmp
// as in bench hnsw.
//  - build: HierarchicalNSW(L2Space, n, M 16, ef_construction 200), addPoint in an
//    OpenMP parallel for with THREADS threads (the first point alone), as hnswlib_bench;
//  - hnswlib 0.6.2 has no filtered search, so a filter is applied after the search
//    (over-fetch): for a filter matching |S| of the n rows (selectivity s = |S| / n),
//    searchKnn asks for k' = min(n, ceil(10 / s * 1.2)) neighbours with ef = max(ef, k')
//    and keeps the first 10 that are in S (a bitmap test). Without a filter (s1, every
//    row allowed) it is the plain search, k 10 at ef;
//  - for every filter NAME of FILTERS (DIR/allowed-NAME.npy, sorted int64 ids) and every
//    ef: the first NQ queries one at a time on 1 thread, best of PASSES passes; ids to
//    DIR/filter-ids-hnswlib-NAME-efEF.i64 (int64, NQ x 10, -1 for none).
// Prints one JSON object per result.
#include <hnswlib/hnswlib.h>

extern "C" {
#include "vecfile.h"
}

#include <omp.h>
#include <time.h>

#include <algorithm>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

static const int K = 10;
static const char *DS = "fashion-mnist-784";
static const char *const PROG = "hnswlib_filter";
static const char *const SUITE = "filter";
static const char *const SYS = "hnswlib";

#include "filter_driver.h"


int main(int argc, char **argv)
{
	if (argc != 9) {
		fprintf(stderr, "usage: hnswlib_filter BASE QUERIES DIR THREADS NQ EFS(10,20,..) PASSES "
				"FILTERS(s1,s0.5,..)\n");
		return 2;
	}
	const char *bpath = argv[1], *qpath = argv[2];
	std::string dir = argv[3];
	int threads = atoi(argv[4]), nq_want = atoi(argv[5]), passes = atoi(argv[7]);
	std::vector<int> efs;
	for (const std::string &e : split(argv[6])) {
		int v = atoi(e.c_str());
		if (v <= 0)
			die("bad ef list");
		efs.push_back(v);
	}
	std::vector<std::string> names = split(argv[8]);
	if (efs.empty() || names.empty() || threads <= 0 || passes <= 0)
		die("bad arguments");

	size_t n, dim, nq, qdim;
	std::vector<float> base = load(bpath, 0, &n, &dim);
	std::vector<float> queries = load(qpath, nq_want > 0 ? (size_t)nq_want : 0, &nq, &qdim);
	if (qdim != dim)
		die("the queries' dimension differs from the base's");
	const char *build_note = "hnswlib 0.6.2 (Debian libhnswlib-dev) compiled by g++ -O3 -march=native -fopenmp";

	// Build.
	hnswlib::L2Space space(dim);
	double t0 = now();
	auto *index = new hnswlib::HierarchicalNSW<float>(&space, n, 16, 200, 100);
	index->addPoint(base.data(), 0); // the first point alone, as the Python bindings do
#pragma omp parallel for schedule(dynamic) num_threads(threads)
	for (size_t i = 1; i < n; i++)
		index->addPoint(base.data() + i * dim, i);
	double tb = now() - t0;
	emit("build_seconds", tb, "s",
	     fmt("%zu vectors, M 16, ef_construction 200, %d threads (addPoint in an OpenMP parallel for), in "
		 "memory; %s",
		 n, threads, build_note));

	// Warm-up: one plain pass.
	index->setEf(efs[0]);
	for (size_t i = 0; i < nq; i++)
		index->searchKnn(queries.data() + i * dim, K);

	std::vector<int64_t> ids(nq * K);
	std::vector<std::pair<float, hnswlib::labeltype>> got;
	for (const std::string &name : names) {
		std::vector<int64_t> allowed = load_npy_i64(dir + "/allowed-" + name + ".npy");
		std::vector<uint8_t> bits((n + 7) / 8, 0);
		for (int64_t id : allowed) {
			if (id < 0 || (size_t)id >= n)
				die("allowed-" + name + ".npy: id out of range");
			bits[(size_t)id >> 3] |= (uint8_t)(1u << (id & 7));
		}
		size_t cnt = allowed.size();
		if (cnt == 0)
			die("allowed-" + name + ".npy: no ids");
		bool all = cnt == n;
		// k' = ceil(10 / s * 1.2) = ceil(12 n / |S|), at most n
		size_t kf = all ? (size_t)K : std::min(n, (12 * n + cnt - 1) / cnt);
		for (int ef : efs) {
			size_t ef_used = std::max((size_t)ef, kf);
			index->setEf(ef_used);
			double dt = 1e30;
			for (int pass = 0; pass < passes; pass++) {
				t0 = now();
				for (size_t i = 0; i < nq; i++) {
					auto res = index->searchKnn(queries.data() + i * dim, kf);
					got.resize(res.size());
					for (size_t m = res.size(); m > 0; res.pop()) // a max-heap: farthest first
						got[--m] = res.top();
					size_t m = 0;
					for (size_t j = 0; j < got.size() && m < (size_t)K; j++) {
						size_t id = got[j].second;
						if (all || (bits[id >> 3] >> (id & 7) & 1))
							ids[i * K + m++] = (int64_t)id;
					}
					for (; m < (size_t)K; m++)
						ids[i * K + m] = -1;
				}
				dt = std::min(dt, now() - t0);
			}
			std::string idpath = dir + "/filter-ids-hnswlib-" + name + "-ef" + std::to_string(ef) + ".i64";
			FILE *f = fopen(idpath.c_str(), "wb");
			if (!f || fwrite(ids.data(), sizeof(int64_t), ids.size(), f) != ids.size() || fclose(f) != 0)
				die("cannot write " + idpath);
			std::string how =
				all ? fmt("no filter: searchKnn k 10, ef %d", ef)
				    : fmt("no filtered search in hnswlib 0.6.2: searchKnn k' %zu (= min(n, ceil(12 n / |S|)), "
					  "|S| %zu) at ef %zu (= max(ef, k')), then the first 10 allowed (bitmap)",
					  kf, cnt, ef_used);
			emit("qps_" + name + "_ef" + std::to_string(ef), (double)nq / dt, "queries/s",
			     fmt("%zu queries one at a time, 1 thread, k 10, best of %d passes; %s; %s", nq, passes,
				 how.c_str(), build_note));
		}
	}
	delete index;
	return 0;
}
