/* bench hnsw (NusterDB's side; hnswlib's is bench/hnswlib_bench.cpp, USearch's
 * bench/usearch_hnsw.cpp and FAISS's bench/faiss_hnsw.py, in the same run;
 * bench/hnsw_recall.py scores them all) on one data set (--base, --queries; default
 * Fashion-MNIST; --dataset names it in the results, --metric is the collection's):
 *  - build: nvf_db_create + nvf_insert_batch of the base vectors (and of the first
 *    10,000) into an HNSW collection, M 16, ef_construction 200, the default
 *    quantization (auto), with --threads threads, one durable transaction, seconds;
 *  - single-thread queries/s over a list of ef_search values: the queries one at a
 *    time (nvf_search, 1 thread, k 10), best of --passes passes, their result ids
 *    written to DIR/hnsw-ids-nusterdb-efEF.i64 (int64, queries x 10) for the recall
 *    script; then, untimed, the graph walked on float32 (full_precision) at ef 10,
 *    written to DIR/hnsw-ids-nusterdb-graph-ef10.i64: the graph's own quality;
 *  - open + first query: nvf_db_open + one nvf_search in a fresh process (this
 *    program again, --open-child), median of --open-reps, for both databases;
 *  - the size of the files, and the default ef_search (default_ef) with the walk
 *    that quantize auto chose (walk_float: 1 float32, 0 the 4-bit codes).
 * Prints one JSON object per result (bench/report.py makes the table). */
#include "benchutil.h"
#include "nvf.h"
#include "vecfile.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define K 10
#define MAXEF 32

static const char *base_path = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz";
static const char *query_path = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
static const char *dir = ".";
static const char *ds = "fashion-mnist-784";
static int dist_metric = NVF_METRIC_EUCLIDEAN;
static int threads = 2, passes = 2, nq_want = 0, open_reps = 20, open_ef = 40, small_n = 10000;
/* --open-verify: the --open-child opens with NVF_OPEN_VERIFY (bench_open's price of it). */
static unsigned open_flags = 0;
static int efs[MAXEF] = {10, 20, 40, 80, 120, 200, 400}, nefs = 7;

/* Read records [0, limit) of a vector file (limit 0: all). */
static float *load(const char *path, size_t limit, size_t *n, size_t *dim)
{
	char err[VECFILE_ERRLEN];
	float *v = vecfile_load(path, VF_AUTO, limit, n, dim, err);
	if (!v) {
		fprintf(stderr, "bench_hnsw: %s\n", err);
		exit(1);
	}
	return v;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "bench_hnsw: %s: %s (%s)\n", what, nvf_strerror(rc), nvf_errmsg());
	exit(1);
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void remove_db(const char *path)
{
	char lock[4200];
	snprintf(lock, sizeof(lock), "%s-lock", path);
	unlink(path);
	unlink(lock);
}

/* Create an HNSW database of base[0, n) with ids 0..n-1; returns the seconds taken. */
static double build(const char *path, const float *base, size_t n, size_t dim)
{
	remove_db(path);
	uint64_t *ids = malloc(n * sizeof(*ids));
	for (size_t i = 0; i < n; i++)
		ids[i] = i;
	nvf_create_options co = NVF_CREATE_OPTIONS_INIT;
	co.dim = (uint32_t)dim;
	co.metric = dist_metric;
	co.index = NVF_INDEX_HNSW;
	co.hnsw_m = 16;
	co.hnsw_ef_construction = 200;
	nvf_db *db;
	double t0 = bench_now();
	int rc = nvf_db_create(&db, path, &co);
	if (rc == 0)
		rc = nvf_insert_batch(db, NULL, base, n, dim, ids, NULL);
	if (rc != 0)
		die("build", rc);
	if ((rc = nvf_db_close(db)) != 0)
		die("close", rc);
	double dt = bench_now() - t0;
	free(ids);
	return dt;
}

/* --open-child: time nvf_db_open + the first nvf_search in this fresh process and
 * print the seconds. The query is read before the clock starts. */
static int open_child(const char *path, int qi)
{
	size_t n, dim;
	float *q = load(query_path, (size_t)qi + 1, &n, &dim);
	if (n != (size_t)qi + 1)
		return 1;
	const float *query = q + (size_t)qi * dim;
	nvf_result res[K];
	size_t got;
	nvf_open_options oo = NVF_OPEN_OPTIONS_INIT;
	oo.flags = NVF_OPEN_RDONLY | open_flags;
	nvf_search_options so = NVF_SEARCH_OPTIONS_INIT;
	so.threads = 1;
	so.ef_search = (uint32_t)open_ef;
	nvf_db *db;
	double t0 = bench_now();
	int rc = nvf_db_open(&db, path, &oo);
	double t1 = bench_now();
	if (rc == 0)
		rc = nvf_search(db, NULL, query, dim, K, &so, res, &got);
	double t2 = bench_now();
	if (rc != 0)
		die("open + first query", rc);
	printf("%.9f %.9f\n", t2 - t0, t1 - t0);
	nvf_db_close(db);
	free(q);
	return 0;
}

/* Run this program with --open-child in a new process; its seconds (*open: of the
 * open alone). */
static double spawn_open(const char *self, const char *path, int qi, double *open)
{
	char qs[16], efs_[16];
	snprintf(qs, sizeof(qs), "%d", qi);
	snprintf(efs_, sizeof(efs_), "%d", open_ef);
	char *const argv[] = {(char *)self, "--queries", (char *)query_path, "--open-ef", efs_, "--open-child",
			      (char *)path, "--query-index", qs, NULL};
	double r[2];
	if (bench_child(argv, r) != 0) {
		fprintf(stderr, "bench_hnsw: the open + first query child failed\n");
		exit(1);
	}
	*open = r[1];
	return r[0];
}

static double median(double *t, int n)
{
	qsort(t, (size_t)n, sizeof(double), cmp_d);
	return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

/* Median seconds of open + first query; *open: the median of the open alone; *min:
 * the fastest open + first query. */
static double open_median(const char *self, const char *path, double *open, double *min)
{
	double *t = malloc((size_t)open_reps * sizeof(double)), *o = malloc((size_t)open_reps * sizeof(double));
	spawn_open(self, path, 0, o); /* once untimed: the same warm page cache for every rep */
	for (int i = 0; i < open_reps; i++)
		t[i] = spawn_open(self, path, i, &o[i]);
	double med = median(t, open_reps);
	*min = t[0];
	*open = median(o, open_reps);
	free(t);
	free(o);
	return med;
}

static off_t file_size(const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		fprintf(stderr, "bench_hnsw: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	return st.st_size;
}

static void parse_efs(const char *s)
{
	nefs = 0;
	while (*s && nefs < MAXEF) {
		char *end;
		long v = strtol(s, &end, 10);
		if (end == s || v <= 0) {
			fprintf(stderr, "bench_hnsw: bad --efs list\n");
			exit(2);
		}
		efs[nefs++] = (int)v;
		s = *end == ',' ? end + 1 : end;
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"base", required_argument, NULL, 'b'},      {"queries", required_argument, NULL, 'q'},
		{"dir", required_argument, NULL, 'd'},       {"threads", required_argument, NULL, 't'},
		{"nq", required_argument, NULL, 'n'},        {"efs", required_argument, NULL, 'e'},
		{"passes", required_argument, NULL, 'p'},
		{"open-reps", required_argument, NULL, 'r'}, {"open-ef", required_argument, NULL, 'E'},
		{"open-child", required_argument, NULL, 'C'}, {"query-index", required_argument, NULL, 'I'},
		{"open-verify", no_argument, NULL, 'V'},     {"help", no_argument, NULL, 'h'},
		{"dataset", required_argument, NULL, 'D'},   {"metric", required_argument, NULL, 'M'},
		{NULL, 0, NULL, 0},
	};
	const char *child = NULL;
	int qi = 0, c;
	while ((c = getopt_long(argc, argv, "b:q:d:t:n:e:p:r:E:C:I:VhD:M:", opts, NULL)) != -1) {
		switch (c) {
		case 'b':
			base_path = optarg;
			break;
		case 'q':
			query_path = optarg;
			break;
		case 'd':
			dir = optarg;
			break;
		case 't':
			threads = atoi(optarg);
			break;
		case 'n':
			nq_want = atoi(optarg);
			break;
		case 'e':
			parse_efs(optarg);
			break;
		case 'p':
			passes = atoi(optarg);
			break;
		case 'r':
			open_reps = atoi(optarg);
			break;
		case 'E':
			open_ef = atoi(optarg);
			break;
		case 'C':
			child = optarg;
			break;
		case 'I':
			qi = atoi(optarg);
			break;
		case 'V':
			open_flags = NVF_OPEN_VERIFY;
			break;
		case 'D':
			ds = optarg;
			break;
		case 'M':
			if ((dist_metric = nvf_metric_parse(optarg)) < 0) {
				fprintf(stderr, "bench_hnsw: unknown metric %s\n", optarg);
				return 2;
			}
			break;
		case 'h':
			printf("usage: bench_hnsw [--base FILE] [--queries FILE] [--dir DIR] [--threads N] [--nq N]\n"
			       "                  [--efs 10,20,...] [--passes N] [--open-reps N] [--open-ef EF]\n"
			       "                  [--dataset LABEL] [--metric euclidean|cosine|...]\n");
			return 0;
		default:
			return 2;
		}
	}
	if (child)
		return open_child(child, qi);
	if (threads < 1 || open_reps < 1 || passes < 1) {
		fprintf(stderr, "bench_hnsw: --threads, --passes and --open-reps must be at least 1\n");
		return 2;
	}
	bench_json = true;
#ifdef _OPENMP
	omp_set_num_threads(threads); /* the library's parallel build uses OpenMP's count */
#endif
	char self[4096];
	ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (sl <= 0) {
		perror("bench_hnsw: /proc/self/exe");
		return 1;
	}
	self[sl] = 0;

	size_t n, dim, nq, qdim;
	float *base = load(base_path, 0, &n, &dim);
	float *queries = load(query_path, 0, &nq, &qdim);
	if (qdim != dim) {
		fprintf(stderr, "bench_hnsw: queries of dimension %zu for a base of %zu\n", qdim, dim);
		return 1;
	}
	if (nq_want > 0 && (size_t)nq_want < nq)
		nq = (size_t)nq_want;
	if ((size_t)small_n > n)
		small_n = (int)n;
	char path[4096], path_small[4096], note[512];
	snprintf(path, sizeof(path), "%s/hnsw-nusterdb-%zu.nvf", dir, n);
	snprintf(path_small, sizeof(path_small), "%s/hnsw-nusterdb-%d.nvf", dir, small_n);

	/* Builds. */
	double tb = build(path, base, n, dim);
	snprintf(note, sizeof(note),
		 "%zu vectors, %s, M 16, ef_construction 200, quantize auto, %d threads; nvf_db_create + "
		 "nvf_insert_batch + close: one transaction, durable (fsync) on return",
		 n, nvf_metric_name(dist_metric), threads);
	bench_emit("hnsw", "nusterdb", ds, "build_seconds", tb, "s", note);
	double tbs = build(path_small, base, (size_t)small_n, dim);
	snprintf(note, sizeof(note), "the first %d vectors, as build_seconds", small_n);
	bench_emit("hnsw", "nusterdb", ds, "build_seconds_10k", tbs, "s", note);

	/* Single-thread queries, one at a time. */
	nvf_open_options oo = NVF_OPEN_OPTIONS_INIT;
	oo.flags = NVF_OPEN_RDONLY;
	nvf_db *db;
	int rc = nvf_db_open(&db, path, &oo);
	if (rc != 0)
		die("open", rc);
	/* The default beam and the walk quantize auto chose for this data. */
	nvf_info in;
	nvf_calibration cal = NVF_CALIBRATION_INIT;
	if ((rc = nvf_db_info(db, NULL, &in)) != 0 || (rc = nvf_hnsw_calibration(db, NULL, &cal)) != 0)
		die("info", rc);
	snprintf(note, sizeof(note), "nvf_search's ef_search when none is given (its recall there: recall_ef%u)",
		 in.hnsw_ef_search);
	bench_emit("hnsw", "nusterdb", ds, "default_ef", (double)in.hnsw_ef_search, "ef", note);
	snprintf(note, sizeof(note),
		 "the walk searches take by default: 1 float32, 0 the 4-bit codes (quantize auto: at %llu nodes, "
		 "recall@10 at the default ef %.3f on the codes, %.3f on float32)",
		 (unsigned long long)cal.nodes, cal.recall_codes, cal.recall_float);
	bench_emit("hnsw", "nusterdb", ds, "walk_float", cal.walk == NVF_WALK_FLOAT ? 1.0 : 0.0, "bool", note);
	nvf_search_options so = NVF_SEARCH_OPTIONS_INIT;
	so.threads = 1;
	nvf_result res[K];
	size_t got;
	int64_t *ids = malloc(nq * K * sizeof(*ids));
	so.ef_search = (uint32_t)efs[0];
	for (size_t i = 0; i < nq; i++) /* warm-up pass: page cache, scratch, branch predictors */
		if ((rc = nvf_search(db, NULL, queries + i * dim, dim, K, &so, res, &got)) != 0)
			die("search", rc);
	for (int e = 0; e < nefs; e++) {
		so.ef_search = (uint32_t)efs[e];
		double dt = 1e30;
		for (int pass = 0; pass < passes; pass++) {
			double t0 = bench_now();
			for (size_t i = 0; i < nq; i++) {
				if ((rc = nvf_search(db, NULL, queries + i * dim, dim, K, &so, res, &got)) != 0)
					die("search", rc);
				for (size_t j = 0; j < K; j++)
					ids[i * K + j] = j < got ? (int64_t)res[j].id : -1;
			}
			double t = bench_now() - t0;
			dt = t < dt ? t : dt;
		}
		char idpath[4200], metric[32];
		snprintf(idpath, sizeof(idpath), "%s/hnsw-ids-nusterdb-ef%d.i64", dir, efs[e]);
		FILE *f = fopen(idpath, "wb");
		if (!f || fwrite(ids, sizeof(*ids), nq * K, f) != nq * K || fclose(f) != 0) {
			fprintf(stderr, "bench_hnsw: cannot write %s\n", idpath);
			return 1;
		}
		snprintf(metric, sizeof(metric), "qps_ef%d", efs[e]);
		snprintf(note, sizeof(note),
			 "%zu queries one at a time (nvf_search, its own read transaction each), 1 thread, k 10, "
			 "ef_search %d, best of %d passes, SIMD %s",
			 nq, efs[e], passes, nvf_simd_level());
		bench_emit("hnsw", "nusterdb", ds, metric, (double)nq / dt, "queries/s", note);
	}
	/* The graph's own quality, walked on float32 as hnswlib and FAISS walk theirs
	 * (full_precision: no 4-bit copies) at the narrowest beam, ef = k. */
	so.ef_search = K;
	so.full_precision = 1;
	for (size_t i = 0; i < nq; i++) {
		if ((rc = nvf_search(db, NULL, queries + i * dim, dim, K, &so, res, &got)) != 0)
			die("search", rc);
		for (size_t j = 0; j < K; j++)
			ids[i * K + j] = j < got ? (int64_t)res[j].id : -1;
	}
	char gpath[4200];
	snprintf(gpath, sizeof(gpath), "%s/hnsw-ids-nusterdb-graph-ef%d.i64", dir, K);
	FILE *gf = fopen(gpath, "wb");
	if (!gf || fwrite(ids, sizeof(*ids), nq * K, gf) != nq * K || fclose(gf) != 0) {
		fprintf(stderr, "bench_hnsw: cannot write %s\n", gpath);
		return 1;
	}
	nvf_db_close(db);

	/* Open + first query, fresh processes. */
	double op60, op10, mn60, mn10;
	double o60 = open_median(self, path, &op60, &mn60), o10 = open_median(self, path_small, &op10, &mn10);
	snprintf(note, sizeof(note),
		 "nvf_db_open (read-only) + one nvf_search (k 10, ef %d, 1 thread) in a fresh process, warm page "
		 "cache, median of %d (fastest %.3f ms); %d vectors; the open alone: median %.3f ms",
		 open_ef, open_reps, mn10 * 1e3, small_n, op10 * 1e3);
	bench_emit("hnsw", "nusterdb", ds, "open_first_query_ms_10k", o10 * 1e3, "ms", note);
	snprintf(note, sizeof(note),
		 "nvf_db_open (read-only) + one nvf_search (k 10, ef %d, 1 thread) in a fresh process, warm page "
		 "cache, median of %d (fastest %.3f ms); %zu vectors; the open alone: median %.3f ms",
		 open_ef, open_reps, mn60 * 1e3, n, op60 * 1e3);
	bench_emit("hnsw", "nusterdb", ds, "open_first_query_ms", o60 * 1e3, "ms", note);

	/* Sizes. */
	snprintf(note, sizeof(note), "the .nvf file of %zu vectors", n);
	bench_emit("hnsw", "nusterdb", ds, "file_bytes", (double)file_size(path), "bytes", note);
	snprintf(note, sizeof(note), "the .nvf file of %d vectors", small_n);
	bench_emit("hnsw", "nusterdb", ds, "file_bytes_10k", (double)file_size(path_small), "bytes", note);
	snprintf(note, sizeof(note), "%zu x %zu x 4 bytes: the vectors alone, as float32", n, dim);
	bench_emit("hnsw", "nusterdb", ds, "raw_vector_bytes", (double)(n * dim * sizeof(float)), "bytes", note);
	free(ids);
	free(base);
	free(queries);
	return 0;
}
