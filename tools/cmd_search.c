/* nvf-tool search: the k nearest neighbours of every query of a file, optionally
 * among the records a filter lets through (--filter EXPR, or one filter per line of
 * --filter-file, each run over every query), with --explain saying what the planner
 * chose. */
#include "tool.h"
#include "vecfile.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void print_line(json_t *o)
{
	/* 9 significant digits give back every float32 exactly. */
	char *s = json_dumps(o, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
	if (s) {
		fputs(s, stdout);
		fputc('\n', stdout);
	}
	free(s);
	json_decref(o);
}

/* One query's results; slots a filter left empty (NVF_NO_ID) are not printed. */
static void print_json_result(long filter, uint64_t q, const nvf_result *r, size_t k)
{
	json_t *o = json_object(), *ids = json_array(), *dists = json_array();
	if (filter >= 0)
		json_object_set_new(o, "filter", json_integer(filter));
	json_object_set_new(o, "query", json_integer((json_int_t)q));
	for (size_t j = 0; j < k && r[j].id != NVF_NO_ID; j++) {
		json_array_append_new(ids, json_integer((json_int_t)r[j].id));
		/* JSON has no NaN or infinity; collections that allow them can
		 * produce such distances. */
		json_array_append_new(dists, isfinite(r[j].distance) ? json_real(r[j].distance) : json_null());
	}
	json_object_set_new(o, "ids", ids);
	json_object_set_new(o, "distances", dists);
	print_line(o);
}

static void print_explain(long filter, const nvf_explain *e, bool json)
{
	if (!json) {
		printf("explain: %s\n", e->text);
		return;
	}
	json_t *o = json_object(), *x = json_object();
	if (filter >= 0)
		json_object_set_new(o, "filter", json_integer(filter));
	json_object_set_new(x, "plan", json_string(e->plan ? e->plan : ""));
	json_object_set_new(x, "estimate_from", json_string(e->estimate_from ? e->estimate_from : ""));
	json_object_set_new(x, "estimate", juint(e->estimate));
	json_object_set_new(x, "records", juint(e->records));
	json_object_set_new(x, "visited", juint(e->visited));
	json_object_set_new(x, "distances", juint(e->distances));
	json_object_set_new(x, "filter_evals", juint(e->filter_evals));
	json_object_set_new(x, "fallbacks", juint(e->fallbacks));
	json_object_set_new(o, "explain", x);
	print_line(o);
}

typedef struct run {
	nvf_db *db;
	nvf_txn *txn;
	const nvf_info *info;
	const char *qfile;
	int format;
	size_t k;
	uint64_t limit;
	bool json, explain;
	nvf_search_options so;
	float *qs;
	nvf_result *res;
	size_t chunk;
} run;

/* Every query of the file, with the options' filter; filter is the line number of a
 * filter file (-1: none). Returns the number of queries, or -1 after an error. */
static int64_t run_queries(run *R, long filter)
{
	char err[VECFILE_ERRLEN];
	vecfile *vf = NULL;
	if (vecfile_open(&vf, R->qfile, R->format, err) != 0)
		return error("%s", err), -1;
	size_t dim = vecfile_dim(vf);
	int64_t ret = -1;
	if (dim != 0 && dim != R->info->dim) {
		error("%s: record 0: dimension %zu, the collection has dimension %" PRIu32, R->qfile, dim, R->info->dim);
		goto out;
	}
	nvf_explain ex = NVF_EXPLAIN_INIT, sum = NVF_EXPLAIN_INIT;
	R->so.explain = R->explain ? &ex : NULL;
	uint64_t nq = 0;
	for (bool eof = dim == 0; !eof && nq < R->limit;) {
		size_t n = 0;
		while (n < R->chunk && nq + n < R->limit) {
			int r = vecfile_read(vf, R->qs + n * dim, err);
			if (r < 0) {
				error("%s", err);
				goto out;
			}
			if (r == 0) {
				eof = true;
				break;
			}
			if (check_record(R->qs + n * dim, dim, R->info, R->qfile, nq + n) != 0)
				goto out;
			n++;
		}
		if (n == 0)
			break;
		int rc = nvf_search_batch(R->db, R->txn, R->qs, n, dim, R->k, &R->so, R->res);
		if (rc != 0) {
			/* The library numbers queries within the chunk. */
			error("%s: queries %" PRIu64 " to %" PRIu64 ": %s", R->qfile, nq, nq + n - 1, why(rc));
			goto out;
		}
		if (R->explain) {
			sum.plan = ex.plan;
			sum.estimate_from = ex.estimate_from;
			sum.estimate = ex.estimate;
			sum.records = ex.records;
			sum.visited += ex.visited;
			sum.distances += ex.distances;
			sum.filter_evals += ex.filter_evals;
			sum.fallbacks += ex.fallbacks;
			memcpy(sum.text, ex.text, sizeof(sum.text));
		}
		if (!R->json && nq == 0)
			printf("%7s %5s %20s %15s\n", "query", "rank", "id", "distance");
		for (size_t i = 0; i < n; i++) {
			const nvf_result *r = R->res + i * R->k;
			if (R->json) {
				print_json_result(filter, nq + i, r, R->k);
				continue;
			}
			for (size_t j = 0; j < R->k && r[j].id != NVF_NO_ID; j++)
				printf("%7" PRIu64 " %5zu %20" PRIu64 " %15.9g\n", nq + i, j + 1, r[j].id,
				       (double)r[j].distance);
		}
		nq += n;
	}
	if (nq == 0) {
		error("%s: no queries in the file", R->qfile);
		goto out;
	}
	if (R->explain) {
		/* The totals of every chunk; the words are the last chunk's. */
		if (nq > R->chunk)
			snprintf(sum.text, sizeof(sum.text),
				 "plan %s; about %" PRIu64 " of %" PRIu64 " records pass (%s); %" PRIu64
				 " queries: %" PRIu64 " nodes visited, %" PRIu64 " distances, %" PRIu64
				 " documents read, %" PRIu32 " fell back to the exact scan",
				 sum.plan, sum.estimate, sum.records, sum.estimate_from, nq, sum.visited, sum.distances,
				 sum.filter_evals, sum.fallbacks);
		print_explain(filter, &sum, R->json);
	}
	ret = (int64_t)nq;
out:
	vecfile_close(vf);
	return ret;
}

static int cmd_search(const struct command *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "query-file", required_argument, NULL, 'q' },
		{ "k", required_argument, NULL, 'k' },
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "threads", required_argument, NULL, OPT_THREADS },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "ef", required_argument, NULL, OPT_EF },
		{ "exact", no_argument, NULL, OPT_EXACT },
		{ "full-precision", no_argument, NULL, OPT_FULL_PRECISION },
		{ "limit", required_argument, NULL, OPT_LIMIT },
		{ "filter", required_argument, NULL, OPT_FILTER },
		{ "filter-file", required_argument, NULL, OPT_FILTER_FILE },
		{ "explain", no_argument, NULL, OPT_EXPLAIN },
		{ "plan", required_argument, NULL, OPT_PLAN },
		{ "snapshot", required_argument, NULL, OPT_SNAPSHOT },
		HELP_OPTION,
		{ NULL, 0, NULL, 0 },
	};
	run R = {.so = NVF_SEARCH_OPTIONS_INIT, .format = VF_AUTO, .limit = UINT64_MAX};
	const char *filter = NULL, *filter_file = NULL, *snapshot = NULL;
	int c;
	while ((c = getopt_long(argc, argv, ":q:k:h", opts, NULL)) != -1) {
		switch (c) {
		case 'q':
			R.qfile = optarg;
			break;
		case 'k':
			R.k = (size_t)parse_num("-k", optarg, 1, 1000000);
			break;
		case OPT_FORMAT:
			R.format = parse_format(optarg);
			break;
		case OPT_THREADS:
			R.so.threads = (int)parse_num("--threads", optarg, 0, 4096);
			break;
		case OPT_JSON:
			R.json = true;
			break;
		case OPT_EF:
			R.so.ef_search = (uint32_t)parse_num("--ef", optarg, 1, UINT32_MAX);
			break;
		case OPT_EXACT:
			R.so.exact = 1;
			break;
		case OPT_FULL_PRECISION:
			R.so.full_precision = 1;
			break;
		case OPT_LIMIT:
			R.limit = parse_num("--limit", optarg, 1, UINT64_MAX);
			break;
		case OPT_FILTER:
			filter = optarg;
			break;
		case OPT_FILTER_FILE:
			filter_file = optarg;
			break;
		case OPT_EXPLAIN:
			R.explain = true;
			break;
		case OPT_SNAPSHOT:
			snapshot = optarg;
			break;
		case OPT_PLAN: {
			static const char *const plans[] = {"auto", "exact", "scan", "walk", "acorn"};
			int p = -1;
			for (int i = 0; i < 5; i++)
				if (strcmp(optarg, plans[i]) == 0)
					p = i;
			if (p < 0)
				usage_error("--plan '%s': expected auto, exact, scan, walk or acorn", optarg);
			R.so.plan = p; /* NVF_PLAN_AUTO .. NVF_PLAN_ACORN, in this order */
			break;
		}
		default:
			common_option(c, argv);
		}
	}
	static const char *const names[] = { "DB" };
	char **pos = positionals(argc, argv, 1, names);
	const char *path = pos[0];
	if (!R.qfile)
		usage_error("missing --query-file FILE");
	if (R.k == 0)
		usage_error("missing -k K");
	if (R.so.exact && (R.so.ef_search || R.so.full_precision))
		usage_error("--ef and --full-precision tune the graph search; --exact scans instead");
	if (filter && filter_file)
		usage_error("--filter and --filter-file: give one");
	if (R.so.plan && !filter && !filter_file)
		usage_error("--plan chooses how a filtered search runs: give --filter or --filter-file");

	nvf_info info;
	nvf_filter *f = NULL;
	FILE *ff = NULL;
	char *line = NULL;
	size_t cap = 0;
	int rc, ret = EXIT_ERROR;
	double t0 = now();
	/* A single filter that does not compile is an error before any work. */
	if (filter && (rc = nvf_filter_compile(&f, filter)) != 0) {
		error("--filter: %s", why(rc));
		goto out;
	}
	if (filter_file && !(ff = strcmp(filter_file, "-") == 0 ? stdin : fopen(filter_file, "r"))) {
		error("%s: %s", filter_file, strerror(errno));
		goto out;
	}
	nvf_open_options oo = tool_open_options(NVF_OPEN_RDONLY);
	/* One read transaction for every query and filter: all see the same state, and
	 * so does the bound of k by the count. */
	if ((rc = nvf_db_open(&R.db, path, &oo)) != 0 ||
	    (rc = snapshot ? nvf_txn_begin_snapshot(&R.txn, R.db, snapshot) : nvf_txn_begin(&R.txn, R.db, NVF_TXN_RDONLY)) != 0 ||
	    (rc = nvf_db_info(R.db, R.txn, &info)) != 0) {
		db_error(path, rc);
		goto out;
	}
	R.info = &info;
	/* Past the count every record comes back: no buffer larger than that. */
	if (R.k > info.count)
		R.k = info.count ? (size_t)info.count : 1;
	if (info.index != NVF_INDEX_HNSW && (R.so.ef_search || R.so.full_precision)) {
		error("%s: --ef and --full-precision need an HNSW index; this collection is flat (exact)", path);
		goto out;
	}
	/* Queries go to the library in chunks, so that memory stays bounded however
	 * long the file is. */
	R.chunk = (64u << 20) / (info.dim * sizeof(float) + R.k * sizeof(nvf_result) + 1);
	R.chunk = R.chunk < 1 ? 1 : R.chunk > 16384 ? 16384 : R.chunk;
	if (!(R.qs = malloc(R.chunk * info.dim * sizeof(float))) || !(R.res = malloc(R.chunk * R.k * sizeof(nvf_result)))) {
		error("out of memory for %zu queries", R.chunk);
		goto out;
	}
	int64_t nq = 0;
	bool bad_filter = false;
	if (!ff) {
		R.so.where = f;
		if ((nq = run_queries(&R, -1)) < 0)
			goto out;
	} else {
		/* Each line a filter; one that does not compile is reported on its own
		 * line and the others still run (exit status 1 at the end). */
		ssize_t len;
		for (long no = 0; (len = getline(&line, &cap, ff)) >= 0; no++) {
			while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
				line[--len] = 0;
			nvf_filter_free(f);
			f = NULL;
			if ((rc = nvf_filter_compile(&f, line)) != 0) {
				bad_filter = true;
				if (R.json) {
					json_t *o = json_object();
					json_object_set_new(o, "filter", json_integer(no));
					json_object_set_new(o, "error", json_string(why(rc)));
					print_line(o);
				} else {
					printf("filter %ld: %s\n", no, why(rc));
				}
				continue;
			}
			R.so.where = f;
			if (!R.json)
				printf("filter %ld: %s\n", no, line);
			int64_t n = run_queries(&R, no);
			if (n < 0)
				goto out;
			nq += n;
		}
		if (ferror(ff)) {
			error("%s: %s", filter_file, strerror(errno));
			goto out;
		}
	}
	if (!R.json) {
		double secs = now() - t0;
		printf("%" PRId64 " queries, k %zu, %.2f s, %.0f queries/s\n", nq, R.k, secs,
		       secs > 0 ? (double)nq / secs : 0.0);
	}
	ret = bad_filter ? error("%s: some filters do not compile (reported above)", filter_file) : EXIT_SUCCESS;
out:
	nvf_txn_abort(R.txn);
	nvf_db_close(R.db);
	nvf_filter_free(f);
	if (ff && ff != stdin)
		fclose(ff);
	free(line);
	free(R.qs);
	free(R.res);
	return ret;
}

const struct command cmd_search_def = { "search", cmd_search, "k nearest neighbours of every vector of a query file.",
	  "search DB --query-file FILE -k K [options]\n"
	  "\n"
	  "  -q, --query-file FILE    queries, in any format import reads\n"
	  "  -k, --k K                neighbours per query (at least 1; past the count,\n"
	  "                           every record)\n"
	  "      --format F           format of the query file (default: from the name)\n"
	  "      --limit N            use only the first N queries\n"
	  "      --threads N          search threads (default 0: all cores)\n"
	  "      --ef N               HNSW search beam width (default: the collection's)\n"
	  "      --exact              scan every vector even if there is an index\n"
	  "      --full-precision     walk the HNSW graph on float32 vectors, not its\n"
	  "                           4-bit copies (higher recall at a small --ef)\n"
	  "      --filter EXPR        only records that match (docs/FILTER.md); fewer than\n"
	  "                           K results only if fewer records match\n"
	  "      --filter-file FILE   one filter a line: every query runs with each\n"
	  "      --explain            say what the planner chose: the estimate of matching\n"
	  "                           records, the plan, nodes visited, distances computed\n"
	  "      --snapshot NAME      search the state a named snapshot keeps\n"
	  "      --plan P             how a filtered search runs: auto (the planner's\n"
	  "                           choice), exact, scan (the passing records' 4-bit\n"
	  "                           codes), walk or acorn (HNSW walks)\n"
	  "      --json               one line per query:\n"
	  "                           {\"query\": i, \"ids\": [...], \"distances\": [...]}\n"
	  "                           (with --filter-file, \"filter\": its line, from 0)\n"
	  "  -h, --help               show this help" };
