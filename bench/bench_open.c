/* bench store, part 3: open plus first query, cold in the process (a new process,
 * the file in the page cache), at 10k, 60k and 1M records of 96 float32 drawn around
 * 1,024 Gaussian centres (the shape of DEEP1B and of many embeddings), HNSW M 16,
 * ef_construction 200, built with --threads threads and then compacted (the
 * compacted layout is what the goal is about), next to hnswlib's loadIndex plus its
 * first searchKnn on the same vectors (bench/hnswlib_bench.cpp --build-save and
 * --open-child, compiled by store.bench with -O3 -march=native).
 *
 * The children: NusterDB's is bench_hnsw --open-child (nvf_db_open read-only + one
 * nvf_search, k 10, ef --ef, 1 thread), hnswlib's is hnswlib_bench --open-child; each
 * prints "TOTAL OPEN" seconds. The median of --reps runs after one untimed run (the
 * same warm page cache for each), query i in run i.
 *
 * The data (DIR/open-base-96.fvecs, DIR/open-queries-96.fvecs) and the databases are
 * built once and reused while their sizes match. Goals: 1M within 1.2x of 10k, and at
 * most 1/50 of hnswlib's load + first query at every size. */
#include "benchutil.h"
#include "nvf.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define DIM 96
#define CENTRES 1024
#define NQ 1000

static const char *dir = ".", *hnswlib_bin = NULL, *child_bin = NULL;
static int reps = 20, ef = 40, threads = 2;

static void die(const char *what, int rc)
{
	fprintf(stderr, "bench_open: %s: %s (%s)\n", what, nvf_strerror(rc), nvf_errmsg());
	exit(1);
}

static void path_of(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", dir, name);
}

static bool exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static double unif(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return ((double)(rng >> 11) + 0.5) / 9007199254740992.0;
}

static float gauss(void)
{
	return (float)(sqrt(-2.0 * log(unif())) * cos(6.283185307179586 * unif()));
}

/* n vectors around the centres into an .fvecs file (the format both sides read). */
static void write_fvecs(const char *path, const float *centres, size_t n)
{
	char tmp[4200];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "wb");
	if (!f) {
		fprintf(stderr, "bench_open: %s: %s\n", tmp, strerror(errno));
		exit(1);
	}
	int32_t d = DIM;
	float v[DIM];
	for (size_t i = 0; i < n; i++) {
		const float *c = centres + (size_t)(unif() * CENTRES) % CENTRES * DIM;
		for (int j = 0; j < DIM; j++)
			v[j] = c[j] + 0.35f * gauss();
		if (fwrite(&d, 4, 1, f) != 1 || fwrite(v, sizeof(v), 1, f) != 1) {
			fprintf(stderr, "bench_open: cannot write %s\n", tmp);
			exit(1);
		}
	}
	if (fclose(f) != 0 || rename(tmp, path) != 0) {
		fprintf(stderr, "bench_open: cannot write %s\n", path);
		exit(1);
	}
}

static void make_data(const char *base, const char *queries, size_t nmax)
{
	struct stat st;
	if (stat(base, &st) == 0 && (size_t)st.st_size == nmax * (4 + DIM * 4) && exists(queries))
		return;
	fprintf(stderr, "bench_open: writing %zu synthetic vectors\n", nmax);
	float *centres = malloc((size_t)CENTRES * DIM * sizeof(float));
	for (size_t i = 0; i < (size_t)CENTRES * DIM; i++)
		centres[i] = gauss();
	write_fvecs(queries, centres, NQ);
	write_fvecs(base, centres, nmax);
	free(centres);
}

/* The first n vectors of the base file (row-major). */
static float *read_prefix(const char *base, size_t n)
{
	FILE *f = fopen(base, "rb");
	float *v = malloc(n * DIM * sizeof(float));
	if (!f || !v) {
		fprintf(stderr, "bench_open: %s: %s\n", base, strerror(errno));
		exit(1);
	}
	for (size_t i = 0; i < n; i++) {
		int32_t d;
		if (fread(&d, 4, 1, f) != 1 || d != DIM || fread(v + i * DIM, DIM * sizeof(float), 1, f) != 1) {
			fprintf(stderr, "bench_open: %s is short or not %d-dimensional\n", base, DIM);
			exit(1);
		}
	}
	fclose(f);
	return v;
}

/* The HNSW file of the first n vectors, compacted: built unless it exists with n
 * records. *build, *compact: seconds (0 if reused). */
static void nvf_file(const char *path, const char *base, size_t n, double *build, double *compact)
{
	*build = *compact = 0;
	nvf_db *db;
	nvf_open_options oo = NVF_OPEN_OPTIONS_INIT;
	oo.flags = NVF_OPEN_RDONLY;
	if (nvf_db_open(&db, path, &oo) == 0) {
		uint64_t have = 0;
		int rc = nvf_count(db, NULL, &have);
		nvf_db_close(db);
		if (rc == 0 && have == n)
			return;
	}
	char lock[4200];
	snprintf(lock, sizeof(lock), "%s-lock", path);
	unlink(path);
	unlink(lock);
	float *x = read_prefix(base, n);
	nvf_create_options co = NVF_CREATE_OPTIONS_INIT;
	co.dim = DIM;
	co.index = NVF_INDEX_HNSW;
	co.hnsw_m = 16;
	co.hnsw_ef_construction = 200;
	fprintf(stderr, "bench_open: building %s\n", path);
	double t0 = bench_now();
	int rc = nvf_db_create(&db, path, &co);
	if (rc == 0)
		rc = nvf_insert_batch(db, NULL, x, n, DIM, NULL, NULL);
	double t1 = bench_now();
	if (rc == 0)
		rc = nvf_db_compact(db);
	double t2 = bench_now();
	if (rc != 0)
		die(path, rc);
	nvf_db_close(db);
	free(x);
	*build = t1 - t0;
	*compact = t2 - t1;
}

/* hnswlib's saved index of the first n vectors, built unless it exists. */
static double hnswlib_file(const char *path, const char *base, size_t n)
{
	if (exists(path))
		return 0;
	char ns[32], ts[16];
	snprintf(ns, sizeof(ns), "%zu", n);
	snprintf(ts, sizeof(ts), "%d", threads);
	double t0 = bench_now();
	char *const argv[] = {(char *)hnswlib_bin, "--build-save", (char *)base, ns, (char *)path, ts, NULL};
	double out[2];
	if (bench_child(argv, out) != 0) {
		fprintf(stderr, "bench_open: hnswlib's build of %s failed\n", path);
		exit(1);
	}
	return bench_now() - t0;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Median seconds of open + first query in new processes; *open: the median of the
 * open alone. nusterdb: is the child bench_hnsw's or hnswlib_bench's. */
static double open_median(bool nusterdb, const char *path, const char *queries, double *open, bool verify)
{
	double *t = malloc((size_t)reps * sizeof(double)), *o = malloc((size_t)reps * sizeof(double));
	for (int i = -1; i < reps; i++) {
		char qs[16], es[16];
		snprintf(qs, sizeof(qs), "%d", i < 0 ? 0 : i);
		snprintf(es, sizeof(es), "%d", ef);
		char *const nv[] = {(char *)child_bin, "--queries", (char *)queries, "--open-ef", es,
				    "--open-child", (char *)path, "--query-index", qs, verify ? "--open-verify" : NULL, NULL};
		char *const hv[] = {(char *)hnswlib_bin, "--open-child", (char *)queries, (char *)path, qs, es, NULL};
		double r[2];
		if (bench_child(nusterdb ? nv : hv, r) != 0) {
			fprintf(stderr, "bench_open: the open + first query child of %s failed\n", path);
			exit(1);
		}
		if (i >= 0) { /* run -1 warms the page cache */
			t[i] = r[0];
			o[i] = r[1];
		}
	}
	qsort(t, (size_t)reps, sizeof(double), cmp_d);
	qsort(o, (size_t)reps, sizeof(double), cmp_d);
	double med = t[reps / 2];
	*open = o[reps / 2];
	free(t);
	free(o);
	return med;
}

/* Queries per second of a warm handle opened with these flags: NQ queries after one
 * untimed pass, the best of three passes. */
static double warm_qps(const char *path, const char *queries, unsigned flags)
{
	size_t nq = NQ, dim = DIM;
	float *q = read_prefix(queries, NQ);
	nvf_open_options oo = NVF_OPEN_OPTIONS_INIT;
	oo.flags = NVF_OPEN_RDONLY | flags;
	nvf_db *db;
	int rc = nvf_db_open(&db, path, &oo);
	if (rc != 0)
		die("open for warm queries", rc);
	nvf_search_options so = NVF_SEARCH_OPTIONS_INIT;
	so.threads = 1;
	so.ef_search = (uint32_t)ef;
	double best = 0;
	for (int pass = 0; pass < 4; pass++) {
		double t0 = bench_now();
		for (size_t i = 0; i < nq; i++) {
			nvf_result res[10];
			size_t got;
			if ((rc = nvf_search(db, NULL, q + i * dim, dim, 10, &so, res, &got)) != 0)
				die("warm query", rc);
		}
		double qps = (double)nq / (bench_now() - t0);
		if (pass > 0 && qps > best)
			best = qps;
	}
	nvf_db_close(db);
	free(q);
	return best;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'},     {"dir", required_argument, NULL, 'd'},
		{"quick", no_argument, NULL, 'q'},    {"hnswlib", required_argument, NULL, 'H'},
		{"child", required_argument, NULL, 'c'}, {"reps", required_argument, NULL, 'r'},
		{"threads", required_argument, NULL, 't'}, {NULL, 0, NULL, 0},
	};
	bool quick = false;
	int c;
	while ((c = getopt_long(argc, argv, "jd:qH:c:r:t:", opts, NULL)) != -1) {
		if (c == 'j')
			bench_json = true;
		else if (c == 'd')
			dir = optarg;
		else if (c == 'q')
			quick = true;
		else if (c == 'H')
			hnswlib_bin = optarg;
		else if (c == 'c')
			child_bin = optarg;
		else if (c == 'r')
			reps = atoi(optarg);
		else if (c == 't')
			threads = atoi(optarg);
		else
			return 2;
	}
	if (!hnswlib_bin || !child_bin || reps < 1) {
		fprintf(stderr, "usage: bench_open --hnswlib HNSWLIB_BENCH --child BENCH_HNSW [--dir DIR] [--json] [--quick] "
				"[--reps N] [--threads N]\n");
		return 2;
	}
	static const size_t sizes[] = {10000, 60000, 1000000};
	size_t nsizes = quick ? 2 : 3;
	char base[4096], queries[4096];
	path_of(base, sizeof(base), "open-base-96.fvecs");
	path_of(queries, sizeof(queries), "open-queries-96.fvecs");
	make_data(base, queries, sizes[nsizes - 1]);
	bench_header();
	double first[3][2] = {{0}};
	for (size_t s = 0; s < nsizes; s++) {
		size_t n = sizes[s];
		char np[4096], hp[4096], name[64], ds[64], note[512];
		snprintf(name, sizeof(name), "open-%zu.nvf", n);
		path_of(np, sizeof(np), name);
		snprintf(name, sizeof(name), "open-%zu.hnswlib", n);
		path_of(hp, sizeof(hp), name);
		snprintf(ds, sizeof(ds), "gauss-%zuk-96", n / 1000);
		double b, cpt;
		nvf_file(np, base, n, &b, &cpt);
		double hb = hnswlib_file(hp, base, n);
		if (b > 0) {
			snprintf(note, sizeof(note), "nvf_insert_batch into HNSW M 16 ef_c 200, %d threads, then nvf_db_compact "
				 "%.2f s; hnswlib's build + saveIndex %.2f s", threads, cpt, hb);
			bench_emit("store", "nusterdb", ds, "build_s", b, "s", note);
		}
		double no, ho;
		double nt = open_median(true, np, queries, &no, false), ht = open_median(false, hp, queries, &ho, false);
		first[s][0] = nt;
		first[s][1] = ht;
		snprintf(note, sizeof(note), "nvf_db_open (read-only) + one nvf_search (k 10, ef %d, 1 thread) in a fresh "
			 "process, warm page cache, compacted file, median of %d; the open alone %.3f ms", ef, reps, no * 1e3);
		bench_emit("store", "nusterdb", ds, "open_first_query_ms", nt * 1e3, "ms", note);
		snprintf(note, sizeof(note), "loadIndex + setEf(%d) + the first searchKnn (k 10) in a fresh process, warm "
			 "page cache, median of %d; loadIndex alone %.3f ms", ef, reps, ho * 1e3);
		bench_emit("store", "hnswlib", ds, "open_first_query_ms", ht * 1e3, "ms", note);
		bench_emit("store", "nusterdb", ds, "open_first_query_vs_hnswlib", nt / ht, "ratio",
			   "NusterDB's open + first query / hnswlib's (goal: at most 0.02)");
		/* The price of NVF_OPEN_VERIFY: cold (each page and extent hashed on its first
		 * read) and warm (a table lookup per page reference). */
		double vo, vt = open_median(true, np, queries, &vo, true);
		snprintf(note, sizeof(note), "as open_first_query_ms, opened with NVF_OPEN_VERIFY (checksums on first read)");
		bench_emit("store", "nusterdb", ds, "open_first_query_verify_ms", vt * 1e3, "ms", note);
		bench_emit("store", "nusterdb", ds, "open_first_query_verify_over_plain", vt / nt, "ratio",
			   "open + first query with NVF_OPEN_VERIFY / without");
		double qv = warm_qps(np, queries, NVF_OPEN_VERIFY), qp = warm_qps(np, queries, 0);
		snprintf(note, sizeof(note), "%d queries (k 10, ef %d, 1 thread) after one untimed pass, best of 3: %.0f q/s with "
			 "NVF_OPEN_VERIFY, %.0f without", NQ, ef, qv, qp);
		bench_emit("store", "nusterdb", ds, "warm_qps_verify_over_plain", qv / qp, "ratio", note);
	}
	if (nsizes == 3)
		bench_emit("store", "nusterdb", "gauss-96", "open_first_query_1m_over_10k", first[2][0] / first[0][0],
			   "ratio", "open + first query at 1M / at 10k (goal: at most 1.2)");
	return 0;
}
