/* bench filter (NusterDB's side; the peers' drivers are bench/usearch_filter.cpp,
 * bench/faiss_filter.py and bench/hnswlib_filter.cpp, in the same run; the recall of
 * every system comes from bench/filter_recall.py):
 *  - build: an HNSW collection (M 16, ef_construction 200, --threads threads) of the
 *    Fashion-MNIST base, with one document per vector from DIR/meta.jsonl (label,
 *    price, year, tags), in one transaction; then field indexes on label, price, year
 *    and $.tags;
 *  - for every filter of DIR/filters.json and every ef: the queries one at a time
 *    (nvf_search with the compiled filter, 1 thread, k 10), best of --passes passes,
 *    ids written to DIR/filter-ids-SYSTEM-NAME-efEF.i64 (int64, nq x 10, -1 for an empty
 *    slot); SYSTEM "nusterdb" with the field indexes, "nusterdb-noindex" before they
 *    exist (the planner then samples and evaluates documents);
 *  - the planner's choice per filter (explain), as notes.
 * Prints one JSON object per result. */
#include "benchutil.h"
#include "nvf.h"
#include "vecfile.h"

#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define K 10
#define MAXEF 32
#define MAXF 16

static void die(const char *what, int rc)
{
	fprintf(stderr, "bench_filter: %s: %s (%s)\n", what, nvf_strerror(rc), nvf_errmsg());
	exit(1);
}

static float *load(const char *path, size_t limit, size_t *n, size_t *dim)
{
	char err[VECFILE_ERRLEN];
	float *v = vecfile_load(path, VF_AUTO, limit, n, dim, err);
	if (!v) {
		fprintf(stderr, "bench_filter: %s\n", err);
		exit(1);
	}
	return v;
}

typedef struct filt {
	char name[32];
	char *expr;
	nvf_filter *f;
} filt;

static int read_filters(const char *dir, filt *out)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/filters.json", dir);
	json_error_t e;
	json_t *a = json_load_file(path, 0, &e);
	if (!json_is_array(a)) {
		fprintf(stderr, "bench_filter: %s: %s\n", path, e.text);
		exit(1);
	}
	int n = 0;
	size_t i;
	json_t *o;
	json_array_foreach(a, i, o) {
		if (n == MAXF)
			break;
		snprintf(out[n].name, sizeof(out[n].name), "%s", json_string_value(json_object_get(o, "name")));
		out[n].expr = strdup(json_string_value(json_object_get(o, "expr")));
		out[n].f = NULL;
		if (out[n].expr[0]) {
			int rc = nvf_filter_compile(&out[n].f, out[n].expr);
			if (rc != 0)
				die(out[n].expr, rc);
		}
		n++;
	}
	json_decref(a);
	return n;
}

static void run(nvf_db *db, const char *system, const char *dir, filt *F, int nf, const float *qs, size_t nq,
		size_t dim, const int *efs, int nefs, int passes)
{
	nvf_result *res = malloc(nq * K * sizeof(*res));
	int64_t *ids = malloc(nq * K * sizeof(*ids));
	for (int fi = 0; fi < nf; fi++) {
		for (int e = 0; e < nefs; e++) {
			nvf_search_options so = NVF_SEARCH_OPTIONS_INIT;
			so.ef_search = (uint32_t)efs[e];
			so.threads = 1;
			so.where = F[fi].f;
			nvf_explain ex = NVF_EXPLAIN_INIT;
			double best = 1e30;
			uint64_t dist = 0, visited = 0, fallbacks = 0;
			const char *plan = "";
			for (int p = 0; p < passes; p++) {
				dist = visited = fallbacks = 0;
				double t0 = bench_now();
				for (size_t q = 0; q < nq; q++) {
					size_t n;
					so.explain = &ex;
					int rc = nvf_search(db, NULL, qs + q * dim, dim, K, &so, res + q * K, &n);
					if (rc != 0)
						die("search", rc);
					for (size_t j = n; j < K; j++)
						res[q * K + j].id = NVF_NO_ID;
					dist += ex.distances;
					visited += ex.visited;
					fallbacks += ex.fallbacks;
					plan = ex.plan;
				}
				double t = bench_now() - t0;
				best = t < best ? t : best;
			}
			for (size_t i = 0; i < nq * K; i++)
				ids[i] = res[i].id == NVF_NO_ID ? -1 : (int64_t)res[i].id;
			char path[4200], metric[64], note[400];
			snprintf(path, sizeof(path), "%s/filter-ids-%s-%s-ef%d.i64", dir, system, F[fi].name, efs[e]);
			FILE *f = fopen(path, "wb");
			if (!f || fwrite(ids, sizeof(int64_t), nq * K, f) != nq * K || fclose(f) != 0) {
				fprintf(stderr, "bench_filter: cannot write %s\n", path);
				exit(1);
			}
			snprintf(metric, sizeof(metric), "qps_%s_ef%d", F[fi].name, efs[e]);
			snprintf(note, sizeof(note),
				 "plan %s (%s estimate %llu); per query %.0f nodes visited, %.0f distances; %llu fallbacks",
				 plan, ex.estimate_from ? ex.estimate_from : "", (unsigned long long)ex.estimate,
				 (double)visited / (double)nq, (double)dist / (double)nq, (unsigned long long)fallbacks);
			bench_emit("filter", system, "fashion-mnist-784", metric, (double)nq / best, "queries/s", note);
		}
	}
	free(res);
	free(ids);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"dir", required_argument, NULL, 'd'},	   {"base", required_argument, NULL, 'b'},
		{"queries", required_argument, NULL, 'q'}, {"nq", required_argument, NULL, 'n'},
		{"efs", required_argument, NULL, 'e'},	   {"threads", required_argument, NULL, 't'},
		{"passes", required_argument, NULL, 'p'},  {NULL, 0, NULL, 0},
	};
	const char *dir = ".", *base_path = NULL, *query_path = NULL;
	int nq_want = 1000, threads = 2, passes = 2, efs[MAXEF], nefs = 0, c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 'b': base_path = optarg; break;
		case 'q': query_path = optarg; break;
		case 'n': nq_want = atoi(optarg); break;
		case 't': threads = atoi(optarg); break;
		case 'p': passes = atoi(optarg); break;
		case 'e':
			for (char *s = strtok(optarg, ","); s && nefs < MAXEF; s = strtok(NULL, ","))
				efs[nefs++] = atoi(s);
			break;
		default:
			fprintf(stderr, "usage: bench_filter --dir D --base B --queries Q [--nq N] [--efs 10,20] [--threads T] [--passes P]\n");
			return 2;
		}
	}
	if (!base_path || !query_path || nefs == 0) {
		fprintf(stderr, "bench_filter: --base, --queries and --efs are required\n");
		return 2;
	}
	bench_json = true;
	size_t n, dim, nq, qdim;
	float *base = load(base_path, 0, &n, &dim);
	float *qs = load(query_path, (size_t)nq_want, &nq, &qdim);
	filt F[MAXF];
	int nf = read_filters(dir, F);

	char path[4200], lock[4300], metapath[4200];
	snprintf(path, sizeof(path), "%s/filter-nusterdb.nvf", dir);
	snprintf(lock, sizeof(lock), "%s-lock", path);
	snprintf(metapath, sizeof(metapath), "%s/meta.jsonl", dir);
	unlink(path);
	unlink(lock);
	setenv("OMP_NUM_THREADS", "2", 0);
	(void)threads;
	nvf_create_options co = NVF_CREATE_OPTIONS_INIT;
	co.dim = (uint32_t)dim;
	co.index = NVF_INDEX_HNSW;
	co.hnsw_m = 16;
	co.hnsw_ef_construction = 200;
	co.doc_codec = NVF_CODEC_ZSTD_DICT;
	nvf_db *db;
	int rc = nvf_db_create(&db, path, &co);
	if (rc != 0)
		die("create", rc);
	/* The build: vectors and documents in one transaction. */
	double t0 = bench_now();
	nvf_txn *txn;
	uint64_t *ids = malloc(n * sizeof(*ids));
	for (size_t i = 0; i < n; i++)
		ids[i] = i;
	if ((rc = nvf_txn_begin(&txn, db, 0)) != 0 || (rc = nvf_insert_batch(db, txn, base, n, dim, ids, NULL)) != 0)
		die("insert", rc);
	double t_vec = bench_now() - t0;
	FILE *mf = fopen(metapath, "r");
	if (!mf) {
		fprintf(stderr, "bench_filter: %s: cannot open\n", metapath);
		return 1;
	}
	char *line = NULL;
	size_t cap = 0;
	for (size_t i = 0; i < n && getline(&line, &cap, mf) > 0; i++)
		if ((rc = nvf_meta_set(db, txn, i, line)) != 0)
			die("meta_set", rc);
	fclose(mf);
	free(line);
	if ((rc = nvf_txn_commit(txn)) != 0)
		die("commit", rc);
	double t_build = bench_now() - t0;
	bench_emit("filter", "nusterdb", "fashion-mnist-784", "build_seconds", t_build, "s",
		   "vectors, graph and documents in one transaction, 2 threads");
	bench_emit("filter", "nusterdb", "fashion-mnist-784", "build_vectors_seconds", t_vec, "s", "vectors and graph only");

	run(db, "nusterdb-noindex", dir, F, nf, qs, nq, dim, efs, nefs, passes);

	t0 = bench_now();
	static const char *const fields[][2] = {{"label", "int"}, {"price", "float"}, {"year", "int"}, {"$.tags", "tags"}};
	if ((rc = nvf_txn_begin(&txn, db, 0)) != 0)
		die("begin", rc);
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if ((rc = nvf_field_add(db, txn, fields[i][0], nvf_field_type_parse(fields[i][1]))) != 0)
			die(fields[i][0], rc);
	if ((rc = nvf_txn_commit(txn)) != 0)
		die("commit", rc);
	bench_emit("filter", "nusterdb", "fashion-mnist-784", "field_index_seconds", bench_now() - t0, "s",
		   "label, price, year, $.tags built over the 60,000 documents");
	run(db, "nusterdb", dir, F, nf, qs, nq, dim, efs, nefs, passes);
	nvf_info info;
	if ((rc = nvf_db_info(db, NULL, &info)) == 0)
		bench_emit("filter", "nusterdb", "fashion-mnist-784", "file_bytes", (double)info.file_size, "bytes",
			   "vectors, graph, documents (zstd-dict) and four field indexes");
	nvf_db_close(db);
	for (int i = 0; i < nf; i++) {
		nvf_filter_free(F[i].f);
		free(F[i].expr);
	}
	free(base);
	free(qs);
	free(ids);
	return 0;
}
