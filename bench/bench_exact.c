/* bench exact (NusterDB's side; FAISS's is bench/faiss_flat.py, in the same run):
 *  - ingest: the 60,000 Fashion-MNIST training images in one durable transaction,
 *    vectors/s;
 *  - streaming read bandwidth of this machine, measured here on a buffer the size of
 *    the vectors with the same threads: the ceiling of a single exact query;
 *  - single-query exact search latency (median of many queries), and the bandwidth it
 *    achieves (vector bytes scanned / latency);
 *  - batch exact search of 1,000 queries, k = 10, queries/s.
 * Prints one JSON object per result (bench/report.py makes the table). */
#include "benchutil.h"
#include "nvf.h"
#include "vecfile.h"

#include <getopt.h>
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static const char *base_path = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz";
static const char *query_path = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
static const char *dir = ".";
static int threads = 0, nsingle = 200, nbatch = 1000;

static float *load(const char *path, size_t *n, size_t *dim)
{
	char err[VECFILE_ERRLEN];
	float *v = vecfile_load(path, VF_AUTO, 0, n, dim, err);
	if (!v) {
		fprintf(stderr, "bench_exact: %s\n", err);
		exit(1);
	}
	return v;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "bench_exact: %s: %s (%s)\n", what, nvf_strerror(rc), nvf_errmsg());
	exit(1);
}

/* Streaming read bandwidth: sum every float of a buffer as large as the vectors,
 * in as many threads as the search uses; best of several passes. */
__attribute__((target("avx2"))) static double bandwidth_gbs(size_t bytes, int nt)
{
	size_t n = bytes / sizeof(float);
	float *buf = aligned_alloc(64, (n * sizeof(float) + 63) & ~(size_t)63);
	for (size_t i = 0; i < n; i++)
		buf[i] = (float)(i & 255);
	double best = 1e30, sink = 0;
	for (int pass = 0; pass < 8; pass++) {
		double t0 = bench_now(), total = 0;
#pragma omp parallel for num_threads(nt) reduction(+ : total) schedule(static)
		for (size_t blk = 0; blk < n / 4096; blk++) {
			__m256 a = _mm256_setzero_ps(), b = a, c = a, d = a;
			const float *p = buf + blk * 4096;
			for (size_t i = 0; i < 4096; i += 32) {
				a = _mm256_add_ps(a, _mm256_load_ps(p + i));
				b = _mm256_add_ps(b, _mm256_load_ps(p + i + 8));
				c = _mm256_add_ps(c, _mm256_load_ps(p + i + 16));
				d = _mm256_add_ps(d, _mm256_load_ps(p + i + 24));
			}
			__m256 s = _mm256_add_ps(_mm256_add_ps(a, b), _mm256_add_ps(c, d));
			float t[8];
			_mm256_storeu_ps(t, s);
			total += t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
		}
		double dt = bench_now() - t0;
		sink += total;
		if (dt < best)
			best = dt;
	}
	if (sink == 42)
		printf(" ");
	free(buf);
	return (double)(n / 4096 * 4096 * sizeof(float)) / best / 1e9;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"base", required_argument, NULL, 'b'},    {"queries", required_argument, NULL, 'q'},
		{"dir", required_argument, NULL, 'd'},     {"threads", required_argument, NULL, 't'},
		{"quick", no_argument, NULL, 'Q'},         {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;
	while ((c = getopt_long(argc, argv, "b:q:d:t:Qh", opts, NULL)) != -1) {
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
		case 'Q':
			nsingle = 20;
			nbatch = 200;
			break;
		case 'h':
			printf("usage: bench_exact [--base FILE] [--queries FILE] [--dir DIR] [--threads N] [--quick]\n");
			return 0;
		default:
			return 2;
		}
	}
	bench_json = true;
#ifdef _OPENMP
	int nt = threads > 0 ? threads : omp_get_max_threads();
#else
	int nt = 1;
#endif
	size_t n, dim, nq, qdim;
	float *base = load(base_path, &n, &dim);
	float *queries = load(query_path, &nq, &qdim);
	if (qdim != dim || nq < (size_t)nbatch) {
		fprintf(stderr, "bench_exact: queries of dimension %zu (%zu of them) for a base of %zu\n", qdim, nq, dim);
		return 1;
	}
	const char *ds = "fashion-mnist-784";
	char path[4096], lock[4200], note[160];
	snprintf(path, sizeof(path), "%s/exact.nvf", dir);
	snprintf(lock, sizeof(lock), "%s-lock", path);
	unlink(path);
	unlink(lock);

	/* Ingest: one durable transaction into a fresh file; the median of 3, as the
	 * time fsync takes varies from one run to the next on a virtual disk. */
	nvf_create_options co = NVF_CREATE_OPTIONS_INIT;
	co.dim = (uint32_t)dim;
	nvf_db *db = NULL;
	double t[3];
	int rc;
	for (int rep = 0; rep < 3; rep++) {
		if (db)
			nvf_db_close(db);
		unlink(path);
		unlink(lock);
		double t0 = bench_now();
		rc = nvf_db_create(&db, path, &co);
		if (rc == 0)
			rc = nvf_insert_batch(db, NULL, base, n, dim, NULL, NULL);
		if (rc != 0)
			die("ingest", rc);
		t[rep] = bench_now() - t0;
	}
	double lo = t[0] < t[1] ? t[0] : t[1], hi = t[0] < t[1] ? t[1] : t[0];
	double ingest = t[2] < lo ? lo : t[2] > hi ? hi : t[2];
	snprintf(note, sizeof(note),
		 "%zu vectors, one transaction, full durability (fsync); median of 3 fresh files (%.0f..%.0f)", n,
		 (double)n / (t[2] > hi ? t[2] : hi), (double)n / (t[2] < lo ? t[2] : lo));
	bench_emit("exact", "nusterdb", ds, "ingest_throughput", (double)n / ingest, "vectors/s", note);
	nvf_db_close(db);

	nvf_open_options oo = NVF_OPEN_OPTIONS_INIT;
	oo.flags = NVF_OPEN_RDONLY;
	if ((rc = nvf_db_open(&db, path, &oo)) != 0)
		die("open", rc);
	double bytes = (double)n * dim * sizeof(float);

	/* Memory bandwidth with the same threads, then single queries. */
	double bw = bandwidth_gbs((size_t)bytes, nt);
	snprintf(note, sizeof(note), "sum of a %.0f MB buffer, %d threads, best of 8", bytes / 1e6, nt);
	bench_emit("exact", "memory", ds, "stream_read_bandwidth", bw, "GB/s", note);

	nvf_search_options so = NVF_SEARCH_OPTIONS_INIT;
	so.threads = nt;
	nvf_result res[10];
	size_t got;
	double *lat = malloc((size_t)nsingle * sizeof(double));
	for (int i = 0; i < 3; i++) /* warm the page cache and the chunk table */
		nvf_search(db, NULL, queries, dim, 10, &so, res, &got);
	for (int i = 0; i < nsingle; i++) {
		double t0 = bench_now();
		if ((rc = nvf_search(db, NULL, queries + (size_t)i * dim, dim, 10, &so, res, &got)) != 0)
			die("search", rc);
		lat[i] = bench_now() - t0;
	}
	qsort(lat, (size_t)nsingle, sizeof(double), cmp_d);
	double med = lat[nsingle / 2];
	snprintf(note, sizeof(note), "median of %d queries, k 10, %d threads, SIMD %s", nsingle, nt, nvf_simd_level());
	bench_emit("exact", "nusterdb", ds, "single_query_latency", med * 1e3, "ms", note);
	bench_emit("exact", "nusterdb", ds, "single_query_bandwidth", bytes / med / 1e9, "GB/s",
		   "vector bytes scanned / median latency");
	bench_emit("exact", "nusterdb", ds, "single_query_vs_stream_bandwidth", bytes / med / 1e9 / bw, "ratio",
		   "target >= 0.70");

	/* Batch: the first nbatch queries, best of three. */
	nvf_result *bres = malloc((size_t)nbatch * 10 * sizeof(*bres));
	double best = 1e30;
	for (int r = 0; r < 3; r++) {
		double t0 = bench_now();
		if ((rc = nvf_search_batch(db, NULL, queries, (size_t)nbatch, dim, 10, &so, bres)) != 0)
			die("batch search", rc);
		double dt = bench_now() - t0;
		if (dt < best)
			best = dt;
	}
	snprintf(note, sizeof(note), "%d queries, k 10, %d threads, best of 3", nbatch, nt);
	bench_emit("exact", "nusterdb", ds, "batch_1000_seconds", best, "s", note);
	bench_emit("exact", "nusterdb", ds, "batch_qps", nbatch / best, "queries/s", note);
	/* Record the ids of the first query so the report can compare with FAISS. */
	printf("{\"suite\": \"exact\", \"system\": \"nusterdb\", \"dataset\": \"%s\", \"metric\": \"first_query_ids\", "
	       "\"value\": 0, \"unit\": \"ids\", \"ids\": [", ds);
	for (int i = 0; i < 10; i++)
		printf("%s%llu", i ? ", " : "", (unsigned long long)bres[i].id);
	printf("]}\n");
	nvf_db_close(db);
	unlink(path);
	unlink(lock);
	free(bres);
	free(lat);
	free(base);
	free(queries);
	return 0;
}
