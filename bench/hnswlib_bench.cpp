// hnswlib's side of bench hnsw (NusterDB's is bench_hnsw.c, in the same run), on
// Debian's libhnswlib-dev headers. bench/hnsw.bench compiles it (not meson) with
// g++ -O3 -march=native -fopenmp, so that hnswlib's distance kernels are built for
// this CPU as NusterDB's are. The same measurements as bench_hnsw:
// The data set is named by DATASET in the results; METRIC l2 (L2Space) or cosine
// (InnerProductSpace on vectors normalized here, as hnswlib's Python 'cosine' space does).
//  - build: HierarchicalNSW(space, n, M 16, ef_construction 200, seed), addPoint in
//    parallel with --threads OpenMP threads (dynamic schedule, the first point alone,
//    as hnswlib's Python bindings do), for the 60,000 vectors and the first 10,000;
//    then saveIndex, timed apart;
//  - single-thread queries/s over the ef list: searchKnn one query at a time (best of
//    PASSES passes), ids
//    written to DIR/hnsw-ids-hnswlib-efEF.i64 (int64, queries x 10);
//  - open + first query: loadIndex + setEf + the first searchKnn in a fresh process
//    (this program again, --open-child), median of --open-reps;
//  - the saved files' sizes, and the graph part of the big one (the file less the
//    vectors and the labels: header and link lists).
// Prints one JSON object per result.
#include <hnswlib/hnswlib.h>

extern "C" {
#include "vecfile.h"
}
#include "benchutil.h"

#include <omp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

static const int K = 10;
static const char *const PROG = "hnswlib_bench";
static const char *const SUITE = "hnsw";
static const char *const SYS = "hnswlib";
static const char *DS = "fashion-mnist-784";
static bool cosine = false; // METRIC cosine: InnerProductSpace on normalized vectors

#include "driver.h"

// For cosine: scale every row to unit length (a zero row stays zero).
static void normalize(std::vector<float> &v, size_t dim)
{
	for (size_t i = 0; i + dim <= v.size(); i += dim) {
		double s = 0;
		for (size_t j = 0; j < dim; j++)
			s += (double)v[i + j] * v[i + j];
		if (s > 0)
			for (size_t j = 0; j < dim; j++)
				v[i + j] = (float)(v[i + j] / sqrt(s));
	}
}

static off_t file_size(const std::string &path)
{
	struct stat st;
	if (stat(path.c_str(), &st) != 0) {
		perror(path.c_str());
		exit(1);
	}
	return st.st_size;
}

// Build an index of base[0, n) with labels 0..n-1; the seconds addPoint took.
static double build(hnswlib::SpaceInterface<float> &space, hnswlib::HierarchicalNSW<float> **out, const float *base, size_t n,
		    size_t dim, int threads)
{
	double t0 = now();
	auto *index = new hnswlib::HierarchicalNSW<float>(&space, n, 16, 200, 100);
	index->addPoint(base, 0); // the first point alone, as the Python bindings do
#pragma omp parallel for schedule(dynamic) num_threads(threads)
	for (size_t i = 1; i < n; i++)
		index->addPoint(base + i * dim, i);
	double dt = now() - t0;
	*out = index;
	return dt;
}

// --open-child: time loadIndex + the first searchKnn in this fresh process.
static int open_child(const char *qpath, const char *path, int qi, int ef)
{
	size_t n, dim;
	std::vector<float> q = load(qpath, (size_t)qi + 1, &n, &dim);
	if (n != (size_t)qi + 1)
		return 1;
	if (cosine)
		normalize(q, dim);
	hnswlib::L2Space l2(dim);
	hnswlib::InnerProductSpace ip(dim);
	hnswlib::SpaceInterface<float> *space = cosine ? (hnswlib::SpaceInterface<float> *)&ip : &l2;
	double t0 = now();
	auto *index = new hnswlib::HierarchicalNSW<float>(space, path);
	double t1 = now();
	index->setEf(ef);
	auto res = index->searchKnn(q.data() + (size_t)qi * dim, K);
	double t2 = now();
	if (res.size() != (size_t)K)
		return 1;
	printf("%.9f %.9f\n", t2 - t0, t1 - t0);
	delete index;
	return 0;
}

// Seconds of loadIndex + first query in a new process (*open: of loadIndex alone).
static double spawn_open(const char *self, const char *qpath, const std::string &path, int qi, int ef, double *open)
{
	std::string qs = std::to_string(qi), es = std::to_string(ef);
	char *const argv[] = {(char *)self, (char *)"--open-child", (char *)qpath, (char *)path.c_str(),
			      (char *)qs.c_str(), (char *)es.c_str(), (char *)(cosine ? "cosine" : "l2"), NULL};
	double r[2];
	if (bench_child(argv, r) != 0) {
		fprintf(stderr, "hnswlib_bench: the open + first query child failed\n");
		exit(1);
	}
	*open = r[1];
	return r[0];
}

static double median(std::vector<double> t)
{
	std::sort(t.begin(), t.end());
	size_t n = t.size();
	return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

// Median seconds of loadIndex + first query; *open: the median of loadIndex alone;
// *min: the fastest loadIndex + first query.
static double open_median(const char *self, const char *qpath, const std::string &path, int reps, int ef,
			  double *open, double *min)
{
	std::vector<double> t, o(reps);
	double dummy;
	spawn_open(self, qpath, path, 0, ef, &dummy); // once untimed: the same warm page cache for every rep
	for (int i = 0; i < reps; i++)
		t.push_back(spawn_open(self, qpath, path, i, ef, &o[i]));
	*open = median(o);
	*min = *std::min_element(t.begin(), t.end());
	return median(t);
}

// --build-save BASE N OUT THREADS: build on the first N vectors and save (bench store's
// open + first query, bench/bench_open.c, times the saved index).
static int build_save(const char *bpath, size_t want, const char *out, int threads)
{
	size_t n, dim;
	std::vector<float> base = load(bpath, want, &n, &dim);
	if (n != want)
		return 1;
	hnswlib::L2Space space(dim);
	hnswlib::HierarchicalNSW<float> *index;
	double t = build(space, &index, base.data(), n, dim, threads);
	index->saveIndex(out);
	printf("%.9f\n", t);
	delete index;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 7 && strcmp(argv[1], "--open-child") == 0) {
		cosine = strcmp(argv[6], "cosine") == 0;
		return open_child(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]));
	}
	if (argc == 6 && strcmp(argv[1], "--build-save") == 0)
		return build_save(argv[2], (size_t)atoll(argv[3]), argv[4], atoi(argv[5]));
	if (argc != 10 && argc != 12) {
		fprintf(stderr, "usage: hnswlib_bench BASE QUERIES DIR THREADS NQ EFS(10,20,..) PASSES OPEN_REPS OPEN_EF "
				"[DATASET l2|cosine]\n");
		return 2;
	}
	if (argc == 12) {
		DS = argv[10];
		if (strcmp(argv[11], "cosine") != 0 && strcmp(argv[11], "l2") != 0) {
			fprintf(stderr, "hnswlib_bench: METRIC is l2 or cosine\n");
			return 2;
		}
		cosine = strcmp(argv[11], "cosine") == 0;
	}
	const char *bpath = argv[1], *qpath = argv[2];
	std::string dir = argv[3];
	int threads = atoi(argv[4]), nq_want = atoi(argv[5]), passes = atoi(argv[7]);
	int open_reps = atoi(argv[8]), open_ef = atoi(argv[9]);
	std::vector<int> efs;
	for (const char *s = argv[6]; *s;) {
		char *end;
		long v = strtol(s, &end, 10);
		if (end == s || v <= 0) {
			fprintf(stderr, "hnswlib_bench: bad ef list\n");
			return 2;
		}
		efs.push_back((int)v);
		s = *end == ',' ? end + 1 : end;
	}
	char self[4096];
	ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (sl <= 0) {
		perror("hnswlib_bench: /proc/self/exe");
		return 1;
	}
	self[sl] = 0;

	size_t n, dim, nq, qdim;
	std::vector<float> base = load(bpath, 0, &n, &dim);
	std::vector<float> queries = load(qpath, 0, &nq, &qdim);
	if (qdim != dim)
		return 1;
	if (nq_want > 0 && (size_t)nq_want < nq)
		nq = (size_t)nq_want;
	if (cosine) {
		normalize(base, dim);
		normalize(queries, dim);
	}
	size_t small_n = std::min<size_t>(10000, n);
	hnswlib::L2Space l2(dim);
	hnswlib::InnerProductSpace ip(dim);
	hnswlib::SpaceInterface<float> &space = cosine ? (hnswlib::SpaceInterface<float> &)ip : l2;
	std::string path = dir + "/hnsw-hnswlib-" + std::to_string(n) + ".bin";
	std::string path_small = dir + "/hnsw-hnswlib-" + std::to_string(small_n) + ".bin";
	const char *simd = "SIMD of -march=native (AVX-512 here if the CPU has it)";

	// Builds, then saves.
	hnswlib::HierarchicalNSW<float> *index, *small;
	double tb = build(space, &index, base.data(), n, dim, threads);
	emit("build_seconds", tb,
	     "s",
	     fmt("%zu vectors, %s, M 16, ef_construction 200, %d threads; addPoint in an OpenMP parallel for "
		 "(dynamic), in memory (saveIndex timed apart); hnswlib 0.6.2 (Debian libhnswlib-dev) compiled by "
		 "g++ -O3 -march=native -fopenmp",
		 n, cosine ? "cosine (InnerProductSpace on normalized vectors)" : "L2Space", threads));
	double t0 = now();
	index->saveIndex(path);
	double ts = now() - t0;
	emit("save_seconds", ts, "s", fmt("saveIndex of the %zu-vector index (no fsync)", n));
	double tbs = build(space, &small, base.data(), small_n, dim, threads);
	emit("build_seconds_10k", tbs, "s", fmt("the first %zu vectors, as build_seconds", small_n));
	small->saveIndex(path_small);
	delete small;

	// Single-thread queries, one at a time, on the index just built.
	std::vector<int64_t> ids(nq * K);
	index->setEf(efs[0]);
	for (size_t i = 0; i < nq; i++) // warm-up pass
		index->searchKnn(queries.data() + i * dim, K);
	for (int ef : efs) {
		index->setEf(ef);
		double dt = 1e30;
		for (int pass = 0; pass < passes; pass++) {
			t0 = now();
			for (size_t i = 0; i < nq; i++) {
				auto res = index->searchKnn(queries.data() + i * dim, K);
				size_t m = res.size();
				for (size_t j = m; j < (size_t)K; j++)
					ids[i * K + j] = -1;
				while (!res.empty()) { // a max-heap: farthest first
					ids[i * K + --m] = (int64_t)res.top().second;
					res.pop();
				}
			}
			dt = std::min(dt, now() - t0);
		}
		std::string idpath = dir + "/hnsw-ids-hnswlib-ef" + std::to_string(ef) + ".i64";
		FILE *f = fopen(idpath.c_str(), "wb");
		if (!f || fwrite(ids.data(), sizeof(int64_t), ids.size(), f) != ids.size() || fclose(f) != 0) {
			fprintf(stderr, "hnswlib_bench: cannot write %s\n", idpath.c_str());
			return 1;
		}
		emit(("qps_ef" + std::to_string(ef)).c_str(), (double)nq / dt, "queries/s",
		     fmt("%zu queries one at a time (searchKnn), 1 thread, k 10, ef %d, best of %d passes, %s", nq, ef,
			 passes, simd));
	}
	// The graph part of the saved index: everything but the vectors and the labels.
	size_t vec_bytes = index->cur_element_count * index->data_size_;
	size_t label_bytes = index->cur_element_count * sizeof(hnswlib::labeltype);
	delete index;

	// Open + first query, fresh processes.
	double op60, op10, mn60, mn10;
	double o60 = open_median(self, qpath, path, open_reps, open_ef, &op60, &mn60);
	double o10 = open_median(self, qpath, path_small, open_reps, open_ef, &op10, &mn10);
	emit("open_first_query_ms_10k", o10 * 1e3, "ms",
	     fmt("loadIndex + setEf(%d) + the first searchKnn (k 10) in a fresh process, warm page cache, median "
		 "of %d (fastest %.3f ms); %zu vectors; loadIndex alone: median %.3f ms",
		 open_ef, open_reps, mn10 * 1e3, small_n, op10 * 1e3));
	emit("open_first_query_ms", o60 * 1e3, "ms",
	     fmt("loadIndex + setEf(%d) + the first searchKnn (k 10) in a fresh process, warm page cache, median "
		 "of %d (fastest %.3f ms); %zu vectors; loadIndex alone: median %.3f ms",
		 open_ef, open_reps, mn60 * 1e3, n, op60 * 1e3));

	off_t fb = file_size(path);
	emit("file_bytes", (double)fb, "bytes", fmt("the saveIndex file of %zu vectors", n));
	emit("file_bytes_10k", (double)file_size(path_small), "bytes", fmt("the saveIndex file of %zu vectors", small_n));
	emit("graph_bytes", (double)((size_t)fb - vec_bytes - label_bytes), "bytes",
	     fmt("the saveIndex file less its %zu vector bytes and %zu label bytes: header and link lists "
		 "(level 0 has room for 2M = 32 links a node)",
		 vec_bytes, label_bytes));
	return 0;
}
