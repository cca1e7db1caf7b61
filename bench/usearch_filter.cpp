// USearch's side of bench filter (bench/filter.bench; NusterDB's is bench_filter.c, the
// other peers hnswlib_filter.cpp and faiss_filter.py, in the same run on the same data),
// through USearch's C API (usearch.h). The npm package `usearch` ships the C/C++ sources;
// bench/filter.bench compiles its c/lib.cpp with g++ -O3 -march=native and its vendored
// NumKong kernels as the package's Node build does (binding.gyp + numkong.gypi: the ISA
// probes, NK_DYNAMIC_DISPATCH=1, the best kernels for this CPU picked at run time).
//  - build: usearch_init(L2sq, f32 storage, connectivity 16, expansion_add 200), then
//    usearch_reserve(n) and usearch_add of every vector in an OpenMP parallel for with
//    THREADS threads (the C API's add is thread-safe: each call takes one of the index's
//    per-thread contexts, usearch_change_threads_add(THREADS); c/README.md "Concurrency");
//  - search: expansion_search = ef (usearch_change_expansion_search); a filter is
//    usearch_filtered_search with a predicate callback that tests a bitmap of the allowed
//    ids (USearch applies it during the graph walk: disallowed nodes are walked through
//    but not kept); no filter (s1, every row allowed) is the plain usearch_search;
//  - for every filter NAME of FILTERS (DIR/allowed-NAME.npy, sorted int64 ids) and every
//    ef: the first NQ queries one at a time on 1 thread, best of PASSES passes; ids to
//    DIR/filter-ids-usearch-NAME-efEF.i64 (int64, NQ x 10, -1 for none).
// Prints one JSON object per result.
#include "usearch.h"

extern "C" {
#include "vecfile.h"
}

#include <omp.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

static const int K = 10;
static const char *DS = "fashion-mnist-784";
static const char *const PROG = "usearch_filter";
static const char *const SUITE = "filter";
static const char *const SYS = "usearch";

#include "filter_driver.h"

static void check(usearch_error_t err, const char *what)
{
	if (err)
		die(fmt("%s: %s", what, err));
}


// The predicate: is the key's bit set in the bitmap (state)?
static int allowed_cb(usearch_key_t key, void *state)
{
	const uint8_t *bits = (const uint8_t *)state;
	return bits[key >> 3] >> (key & 7) & 1;
}

int main(int argc, char **argv)
{
	if (argc != 9) {
		fprintf(stderr, "usage: usearch_filter BASE QUERIES DIR THREADS NQ EFS(10,20,..) PASSES "
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

	// Build.
	usearch_error_t err = NULL;
	usearch_init_options_t opts;
	memset(&opts, 0, sizeof(opts));
	opts.metric_kind = usearch_metric_l2sq_k;
	opts.metric = NULL;
	opts.quantization = usearch_scalar_f32_k;
	opts.dimensions = dim;
	opts.connectivity = 16;
	opts.expansion_add = 200;
	opts.expansion_search = (size_t)efs[0];
	opts.multi = false;
	double t0 = now();
	usearch_index_t index = usearch_init(&opts, &err);
	check(err, "usearch_init");
	usearch_reserve(index, n, &err);
	check(err, "usearch_reserve");
	usearch_change_threads_add(index, (size_t)threads, &err);
	check(err, "usearch_change_threads_add");
	usearch_change_threads_search(index, (size_t)threads, &err);
	check(err, "usearch_change_threads_search");
	usearch_add(index, 0, base.data(), usearch_scalar_f32_k, &err); // the first point alone, as the others
	check(err, "usearch_add");
	std::atomic<bool> failed(false);
	const char *add_err = NULL;
#pragma omp parallel for schedule(dynamic) num_threads(threads)
	for (size_t i = 1; i < n; i++) {
		usearch_error_t e = NULL;
		usearch_add(index, (usearch_key_t)i, base.data() + i * dim, usearch_scalar_f32_k, &e);
		if (e && !failed.exchange(true))
			add_err = e;
	}
	double tb = now() - t0;
	check(add_err, "usearch_add");
	if (usearch_size(index, &err) != n)
		die("the index does not hold every vector");
	const char *isa = usearch_hardware_acceleration(index, &err);
	check(err, "usearch_hardware_acceleration");
	std::string build_note =
		fmt("USearch %s (npm package's C/C++ sources: c/lib.cpp by g++ -O3 -march=native, NumKong kernels as "
		    "its Node build, dynamic dispatch), kernel in use: %s",
		    usearch_version(), isa ? isa : "?");
	emit("build_seconds", tb, "s",
	     fmt("%zu vectors, f32, L2sq, connectivity 16, expansion_add 200, %d threads (usearch_add in an OpenMP "
		 "parallel for), in memory; %s",
		 n, threads, build_note.c_str()));

	// Warm-up: one plain pass.
	usearch_key_t keys[K];
	usearch_distance_t dists[K];
	usearch_change_expansion_search(index, (size_t)efs[0], &err);
	check(err, "usearch_change_expansion_search");
	for (size_t i = 0; i < nq; i++) {
		usearch_search(index, queries.data() + i * dim, usearch_scalar_f32_k, K, keys, dists, &err);
		check(err, "usearch_search");
	}

	std::vector<int64_t> ids(nq * K);
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
		for (int ef : efs) {
			usearch_change_expansion_search(index, (size_t)ef, &err);
			check(err, "usearch_change_expansion_search");
			double dt = 1e30;
			for (int pass = 0; pass < passes; pass++) {
				t0 = now();
				for (size_t i = 0; i < nq; i++) {
					const float *q = queries.data() + i * dim;
					size_t m = all ? usearch_search(index, q, usearch_scalar_f32_k, K, keys, dists, &err)
						       : usearch_filtered_search(index, q, usearch_scalar_f32_k, K, allowed_cb,
										 bits.data(), keys, dists, &err);
					if (err)
						die(fmt("search: %s", err));
					for (size_t j = 0; j < (size_t)K; j++)
						ids[i * K + j] = j < m ? (int64_t)keys[j] : -1;
				}
				dt = std::min(dt, now() - t0);
			}
			std::string idpath = dir + "/filter-ids-usearch-" + name + "-ef" + std::to_string(ef) + ".i64";
			FILE *f = fopen(idpath.c_str(), "wb");
			if (!f || fwrite(ids.data(), sizeof(int64_t), ids.size(), f) != ids.size() || fclose(f) != 0)
				die("cannot write " + idpath);
			std::string how = all ? fmt("no filter: usearch_search, expansion_search %d", ef)
					      : fmt("usearch_filtered_search, bitmap predicate (|S| %zu), "
						    "expansion_search %d",
						    cnt, ef);
			emit("qps_" + name + "_ef" + std::to_string(ef), (double)nq / dt, "queries/s",
			     fmt("%zu queries one at a time, 1 thread, k 10, best of %d passes; %s; %s", nq, passes,
				 how.c_str(), build_note.c_str()));
		}
	}
	usearch_free(index, &err);
	return 0;
}
