/* nvf-tool reindex: rebuild the index in one transaction. */
#include "tool.h"
#include "vecfile.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


static int cmd_reindex(const struct command *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		INDEX_OPTIONS,
		HELP_OPTION,
		{ NULL, 0, NULL, 0 },
	};
	nvf_index_options o = NVF_INDEX_OPTIONS_INIT;
	bool hnsw_params = false;
	int c;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1)
		if (!index_option(c, &o, &hnsw_params))
			common_option(c, argv);
	static const char *const names[] = { "DB" };
	char **pos = positionals(argc, argv, 1, names);
	check_index_options(&o, hnsw_params);
	nvf_db *db;
	int rc = tool_db_open(&db, pos[0]);
	if (rc != 0)
		return db_error(pos[0], rc);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	progress_watch *w = progress_watch_start("reindex", NULL, 0);
	rc = nvf_reindex(db, &o);
	progress_watch_stop(w);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	nvf_info info;
	if (rc == 0)
		rc = nvf_db_info(db, NULL, &info);
	int crc = nvf_db_close(db);
	if (rc != 0)
		return db_error(pos[0], rc);
	if (crc != 0)
		return error("%s: closing: %s", pos[0], why(crc));
	printf("reindexed %s: %" PRIu64 " records, index %s", pos[0], info.count,
	       info.index == NVF_INDEX_HNSW ? "hnsw" : "flat");
	print_hnsw(&info);
	printf(", %.2f s\n", (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9);
	return EXIT_SUCCESS;
}

const struct command cmd_reindex_def = { "reindex", cmd_reindex, "Rebuild the index: flat to HNSW, back, or new HNSW parameters.",
	  "reindex DB [options]\n"
	  "\n"
	  "One transaction: readers see the old index until it commits, and a crash\n"
	  "leaves the old one.\n"
	  "\n"
	  "      --index flat|hnsw    the new index (default hnsw)\n"
	  "      --M N                HNSW links per node (default 16)\n"
	  "      --ef-construction N  HNSW build beam width (default 200)\n"
	  "      --ef-search N        HNSW default search beam width (default 64)\n"
	  "      --seed N             HNSW level generator seed (default 42)\n"
	  "      --quantize Q         what the HNSW walk reads: sq4 (4-bit copies beside\n"
	  "                           the links; euclidean, inner product, cosine,\n"
	  "                           angular), none (float32), auto (default: sq4 where\n"
	  "                           the metric allows)\n"
	  "  -h, --help               show this help" };
