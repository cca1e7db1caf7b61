/* nvf-tool stats: what the file holds, its free space, the graph's shape, and a
 * recall self-check of the graph against exact search on a sample of its own
 * vectors.
 *   stats DB [--sample N] [--json] */
#include "tool.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Recall@10 of the default graph search against the exact one, on n of the
 * collection's own vectors (evenly spaced ids) as queries; -1 if flat or empty. */
static int self_check(nvf_db *db, const nvf_info *info, uint64_t n, double *recall, uint64_t *used)
{
	*recall = -1;
	*used = 0;
	if (info->index != NVF_INDEX_HNSW || info->count == 0 || n == 0)
		return 0;
	nvf_filter *all;
	int rc = nvf_filter_compile(&all, "id >= 0");
	uint64_t *ids = NULL;
	size_t nid = 0;
	nvf_txn *t = NULL;
	if (rc == 0 && (rc = nvf_txn_begin(&t, db, NVF_TXN_RDONLY)) == 0)
		rc = nvf_filter_ids(db, t, all, &ids, &nid);
	nvf_filter_free(all);
	size_t q = n < nid ? (size_t)n : nid, k = 10;
	float *qs = rc == 0 ? malloc(q * info->dim * sizeof(float)) : NULL;
	nvf_result *g = rc == 0 ? malloc(q * k * sizeof(nvf_result)) : NULL, *e = rc == 0 ? malloc(q * k * sizeof(nvf_result)) : NULL;
	if (rc == 0 && (!qs || !g || !e))
		rc = -ENOMEM;
	for (size_t i = 0; i < q && rc == 0; i++)
		rc = nvf_get(db, t, ids[i * nid / q], qs + i * info->dim, info->dim);
	nvf_search_options ex = NVF_SEARCH_OPTIONS_INIT;
	ex.exact = 1;
	if (rc == 0)
		rc = nvf_search_batch(db, t, qs, q, info->dim, k, NULL, g);
	if (rc == 0)
		rc = nvf_search_batch(db, t, qs, q, info->dim, k, &ex, e);
	if (rc == 0) {
		/* Tie-aware: a result counts if it is no farther than the exact k-th. */
		uint64_t hits = 0, want = 0;
		for (size_t i = 0; i < q; i++) {
			size_t kk = 0;
			while (kk < k && e[i * k + kk].id != NVF_NO_ID)
				kk++;
			want += kk;
			for (size_t j = 0; j < kk; j++)
				hits += g[i * k + j].id != NVF_NO_ID && g[i * k + j].distance <= e[i * k + kk - 1].distance;
		}
		*recall = want ? (double)hits / (double)want : 1.0;
		*used = q;
	}
	free(qs);
	free(g);
	free(e);
	nvf_free(ids);
	nvf_txn_abort(t);
	return rc;
}

static int cmd_stats(const struct command *cmd, int argc, char **argv)
{
	(void)cmd;
	static const struct option opts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "sample", required_argument, NULL, OPT_SAMPLE },
		HELP_OPTION,
		{ NULL, 0, NULL, 0 },
	};
	bool json = false;
	uint64_t sample = 100;
	int c;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (c == OPT_JSON)
			json = true;
		else if (c == OPT_SAMPLE)
			sample = parse_num("--sample", optarg, 0, 1000000);
		else
			common_option(c, argv);
	}
	static const char *const names[] = { "DB" };
	char **pos = positionals(argc, argv, 1, names);
	nvf_db *db;
	if (open_rdonly(pos[0], &db) != 0)
		return EXIT_ERROR;
	nvf_stats s = { .version = NVF_STATS_VERSION };
	nvf_info info;
	double recall = -1;
	uint64_t used = 0;
	int rc = nvf_db_stats(db, &s);
	if (rc == 0)
		rc = nvf_db_info(db, NULL, &info);
	if (rc == 0)
		rc = self_check(db, &info, sample, &recall, &used);
	nvf_db_close(db);
	if (rc != 0)
		return db_error(pos[0], rc);
	static const char *const kinds[] = { "header", "system", "vectors", "ids", "graph", "documents", "fields", "free", "pending" };
	uint64_t pages[] = { s.pages_header, s.pages_system, s.pages_vectors, s.pages_ids, s.pages_graph,
			     s.pages_documents, s.pages_fields, s.pages_free, s.pages_pending };
	if (json) {
		json_t *o = json_object(), *p = json_object(), *lv = json_array(), *dg = json_array();
		json_object_set_new(o, "path", json_string(pos[0]));
		json_object_set_new(o, "txnid", juint(s.txnid));
		json_object_set_new(o, "records", juint(s.records));
		json_object_set_new(o, "page_size", juint(s.page_size));
		json_object_set_new(o, "pages_total", juint(s.pages_total));
		for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
			json_object_set_new(p, kinds[i], juint(pages[i]));
		json_object_set_new(o, "pages", p);
		json_object_set_new(o, "free_runs", juint(s.free_runs));
		json_object_set_new(o, "largest_free_run", juint(s.largest_free_run));
		for (uint32_t l = 0; l < s.hnsw_levels; l++)
			json_array_append_new(lv, juint(s.hnsw_nodes_per_level[l]));
		json_object_set_new(o, "hnsw_nodes_per_level", lv);
		for (int d = 0; d < NVF_STATS_DEGREES; d++)
			json_array_append_new(dg, juint(s.hnsw_degree0[d]));
		json_object_set_new(o, "hnsw_degree0", dg);
		json_object_set_new(o, "recall_sample", juint(used));
		json_object_set_new(o, "recall_at_10", recall < 0 ? json_null() : json_real(recall));
		return print_json(o) ? EXIT_ERROR : EXIT_SUCCESS;
	}
	printf("%-18s%s\n%-18s%" PRIu64 "\n%-18s%" PRIu64 "\n", "path", pos[0], "txnid", s.txnid, "records", s.records);
	printf("%-18s%" PRIu64 " of %u bytes (%.1f MiB)\n", "pages", s.pages_total, s.page_size,
	       (double)s.pages_total * s.page_size / 1048576.0);
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		printf("  %-16s%12" PRIu64 "  %5.1f%%\n", kinds[i], pages[i],
		       s.pages_total ? 100.0 * (double)pages[i] / (double)s.pages_total : 0.0);
	printf("%-18s%" PRIu64 " runs, the largest %" PRIu64 " pages\n", "free space", s.free_runs, s.largest_free_run);
	if (s.hnsw_levels) {
		printf("%-18s", "graph levels");
		for (uint32_t l = 0; l < s.hnsw_levels; l++)
			printf("%s%" PRIu64, l ? " / " : "", s.hnsw_nodes_per_level[l]);
		printf(" nodes (top level 0, 1, ...)\n%-18s", "level-0 degree");
		uint64_t tot = 0, sum = 0;
		int lo = -1, hi = 0;
		for (int d = 0; d < NVF_STATS_DEGREES; d++)
			if (s.hnsw_degree0[d]) {
				lo = lo < 0 ? d : lo;
				hi = d;
				tot += s.hnsw_degree0[d];
				sum += (uint64_t)d * s.hnsw_degree0[d];
			}
		printf("min %d, max %d, mean %.1f links\n", lo, hi, tot ? (double)sum / (double)tot : 0.0);
	}
	if (recall >= 0)
		printf("%-18s%.4f (recall@10 of the default search against exact, %" PRIu64 " of its own vectors)\n",
		       "self-check", recall, used);
	return EXIT_SUCCESS;
}

const struct command cmd_stats_def = { "stats", cmd_stats, "Pages by kind, free space, graph shape, a recall self-check.",
	  "stats DB [options]\n"
	  "\n"
	  "What the current state's pages hold (vectors, ids, graph, documents, field\n"
	  "indexes, system), free and pending pages and how fragmented the free space is,\n"
	  "the HNSW graph's levels and level-0 degrees, and the graph search's recall@10\n"
	  "against exact search with some of the collection's own vectors as queries.\n"
	  "\n"
	  "      --sample N           queries of the self-check (default 100, 0: none)\n"
	  "      --json               one JSON object\n"
	  "  -h, --help               show this help\n" };
