// USearch's side of bench hnsw (bench/hnsw.bench; NusterDB's is bench_hnsw.c, the other
// peers hnswlib_bench.cpp and faiss_hnsw.py, in the same run on the same data), through
// USearch's C API (usearch.h), compiled from the npm package `usearch` exactly as for
// bench filter (bench/filter.bench, bench/usearch_filter.cpp: c/lib.cpp by g++ -O3
// -march=native, its vendored NumKong kernels as the package's Node build compiles
// them, NK_DYNAMIC_DISPATCH=1, the best kernels for this CPU picked at run time).
//  - build: usearch_init(L2sq or cos, f32 storage, connectivity 16, expansion_add 200),
//    usearch_reserve(n), then usearch_add of every vector in an OpenMP parallel for with
//    THREADS threads (the first alone, as the other drivers), in memory; usearch_save
//    timed apart, its file's size;
//  - single-thread queries/s over the ef list: expansion_search = ef, usearch_search one
//    query at a time (best of PASSES passes), ids to DIR/hnsw-ids-usearch-efEF.i64
//    (int64, NQ x 10, -1 for none) for bench/hnsw_recall.py.
// METRIC l2 (usearch_metric_l2sq_k) or cosine (usearch_metric_cos_k: USearch normalizes
// inside its distance). Prints one JSON object per result.
#include "usearch.h"

extern "C" {
#include "vecfile.h"
}

#include <omp.h>
#include <sys/stat.h>
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
static const char *const PROG = "usearch_hnsw";
static const char *const SUITE = "hnsw";
static const char *const SYS = "usearch";
static const char *DS = "fashion-mnist-784";

#include "driver.h"

static void check(usearch_error_t err, const char *what)
{
	if (err)
		die(fmt("%s: %s", what, err));
}

int main(int argc, char **argv)
{
	if (argc != 10) {
		fprintf(stderr, "usage: usearch_hnsw BASE QUERIES DIR THREADS NQ EFS(10,20,..) PASSES DATASET l2|cosine\n");
		return 2;
	}
	const char *bpath = argv[1], *qpath = argv[2];
	std::string dir = argv[3];
	int threads = atoi(argv[4]), nq_want = atoi(argv[5]), passes = atoi(argv[7]);
	DS = argv[8];
	bool cosine = strcmp(argv[9], "cosine") == 0;
	if (!cosine && strcmp(argv[9], "l2") != 0)
		die("METRIC is l2 or cosine");
	std::vector<int> efs;
	for (const char *s = argv[6]; *s;) {
		char *end;
		long v = strtol(s, &end, 10);
		if (end == s || v <= 0)
			die("bad ef list");
		efs.push_back((int)v);
		s = *end == ',' ? end + 1 : end;
	}
	if (efs.empty() || threads <= 0 || passes <= 0)
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
	opts.metric_kind = cosine ? usearch_metric_cos_k : usearch_metric_l2sq_k;
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
	usearch_change_threads_search(index, 1, &err);
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
	     fmt("%zu vectors, f32, %s, connectivity 16, expansion_add 200, %d threads (usearch_add in an OpenMP "
		 "parallel for), in memory (usearch_save timed apart); %s",
		 n, cosine ? "cos" : "L2sq", threads, build_note.c_str()));
	std::string path = dir + "/hnsw-usearch-" + std::to_string(n) + ".usearch";
	t0 = now();
	usearch_save(index, path.c_str(), &err);
	check(err, "usearch_save");
	emit("save_seconds", now() - t0, "s", fmt("usearch_save of the %zu-vector index (no fsync)", n));
	struct stat st;
	if (stat(path.c_str(), &st) != 0)
		die("cannot stat " + path);
	emit("file_bytes", (double)st.st_size, "bytes", fmt("the usearch_save file of %zu vectors", n));

	// Single-thread queries, one at a time.
	usearch_key_t keys[K];
	usearch_distance_t dists[K];
	usearch_change_expansion_search(index, (size_t)efs[0], &err);
	check(err, "usearch_change_expansion_search");
	for (size_t i = 0; i < nq; i++) { // warm-up pass
		usearch_search(index, queries.data() + i * dim, usearch_scalar_f32_k, K, keys, dists, &err);
		check(err, "usearch_search");
	}
	std::vector<int64_t> ids(nq * K);
	for (int ef : efs) {
		usearch_change_expansion_search(index, (size_t)ef, &err);
		check(err, "usearch_change_expansion_search");
		double dt = 1e30;
		for (int pass = 0; pass < passes; pass++) {
			t0 = now();
			for (size_t i = 0; i < nq; i++) {
				size_t m = usearch_search(index, queries.data() + i * dim, usearch_scalar_f32_k, K, keys, dists,
							  &err);
				if (err)
					die(fmt("search: %s", err));
				for (size_t j = 0; j < (size_t)K; j++)
					ids[i * K + j] = j < m ? (int64_t)keys[j] : -1;
			}
			dt = std::min(dt, now() - t0);
		}
		std::string idpath = dir + "/hnsw-ids-usearch-ef" + std::to_string(ef) + ".i64";
		FILE *f = fopen(idpath.c_str(), "wb");
		if (!f || fwrite(ids.data(), sizeof(int64_t), ids.size(), f) != ids.size() || fclose(f) != 0)
			die("cannot write " + idpath);
		emit("qps_ef" + std::to_string(ef), (double)nq / dt, "queries/s",
		     fmt("%zu queries one at a time (usearch_search), 1 thread, k 10, expansion_search %d, best of %d "
			 "passes; %s",
			 nq, ef, passes, build_note.c_str()));
	}
	usearch_free(index, &err);
	return 0;
}
