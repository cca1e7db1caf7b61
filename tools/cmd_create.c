/* nvf-tool create: a new database file holding an empty collection. */
#include "tool.h"
#include "vecfile.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


static int cmd_create(const struct command *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dim", required_argument, NULL, 'd' },
		{ "metric", required_argument, NULL, 'm' },
		INDEX_OPTIONS,
		{ "page-size", required_argument, NULL, OPT_PAGE_SIZE },
		{ "allow-nonfinite", no_argument, NULL, OPT_ALLOW_NONFINITE },
		{ "nosync", no_argument, NULL, OPT_NOSYNC },
		{ "codec", required_argument, NULL, OPT_CODEC },
		{ "max-doc-bytes", required_argument, NULL, OPT_MAX_DOC },
		HELP_OPTION,
		{ NULL, 0, NULL, 0 },
	};
	nvf_create_options o = NVF_CREATE_OPTIONS_INIT;
	nvf_index_options io = NVF_INDEX_OPTIONS_INIT;
	io.index = o.index; /* flat unless --index says otherwise */
	bool hnsw_params = false;
	int c;
	while ((c = getopt_long(argc, argv, ":d:m:h", opts, NULL)) != -1) {
		if (index_option(c, &io, &hnsw_params))
			continue;
		switch (c) {
		case 'd':
			o.dim = (uint32_t)parse_num("--dim", optarg, 1, NVF_MAX_DIM);
			break;
		case 'm':
			if ((o.metric = nvf_metric_parse(optarg)) < 0)
				usage_error("--metric '%s': expected euclidean (l2), inner_product (ip, dot), cosine, "
					    "angular, manhattan (l1), chebyshev (linf), jaccard or hamming",
					    optarg);
			break;
		case OPT_PAGE_SIZE:
			o.page_size = (uint32_t)parse_num("--page-size", optarg, 1, UINT32_MAX);
			break;
		case OPT_ALLOW_NONFINITE:
			o.flags |= NVF_CREATE_ALLOW_NONFINITE;
			break;
		case OPT_NOSYNC:
			o.durability = NVF_DURABILITY_NOSYNC;
			break;
		case OPT_CODEC:
			parse_codec(optarg, &o.doc_codec, &o.doc_codec_level);
			break;
		case OPT_MAX_DOC:
			o.doc_max_bytes = (uint32_t)parse_num("--max-doc-bytes", optarg, 1, NVF_DOC_MAX_LIMIT);
			break;
		default:
			common_option(c, argv);
		}
	}
	static const char *const names[] = { "DB" };
	char **pos = positionals(argc, argv, 1, names);
	if (o.dim == 0)
		usage_error("missing --dim N");
	check_index_options(&io, hnsw_params);
	o.index = io.index;
	o.hnsw_m = io.hnsw_m;
	o.hnsw_ef_construction = io.hnsw_ef_construction;
	o.hnsw_ef_search = io.hnsw_ef_search;
	o.seed = io.seed;
	o.hnsw_quantize = io.hnsw_quantize;

	nvf_db *db;
	int rc = nvf_db_create(&db, pos[0], &o);
	if (rc != 0)
		return db_error(pos[0], rc);
	nvf_info info;
	rc = nvf_db_info(db, NULL, &info);
	int crc = nvf_db_close(db);
	if (rc != 0)
		return db_error(pos[0], rc);
	if (crc != 0)
		return error("%s: closing: %s", pos[0], why(crc));
	printf("created %s: dimension %" PRIu32 ", metric %s, index %s", pos[0], info.dim,
	       nvf_metric_name(info.metric), info.index == NVF_INDEX_HNSW ? "hnsw" : "flat");
	print_hnsw(&info);
	printf(", page size %" PRIu32 ", documents %s\n", info.page_size, codec_name(info.doc_codec, info.doc_codec_level));
	return EXIT_SUCCESS;
}

const struct command cmd_create_def = { "create", cmd_create, "Create a database file holding an empty collection.",
	  "create DB --dim N [options]\n"
	  "\n"
	  "  -d, --dim N              vector dimension, 1 to 65536 (required)\n"
	  "  -m, --metric NAME        euclidean (default), inner_product, cosine, angular,\n"
	  "                           manhattan, chebyshev, jaccard, hamming; aliases l2, ip,\n"
	  "                           dot, l1, linf\n"
	  "      --index flat|hnsw    index type (default flat)\n"
	  "      --M N                HNSW links per node (default 16)\n"
	  "      --ef-construction N  HNSW build beam width (default 200)\n"
	  "      --ef-search N        HNSW default search beam width (default 64)\n"
	  "      --seed N             HNSW level generator seed (default 42)\n"
	  "      --quantize Q         what the HNSW walk reads: sq4 (4-bit copies beside\n"
	  "                           the links; euclidean, inner product, cosine,\n"
	  "                           angular), none (float32), auto (default: sq4 where\n"
	  "                           the metric allows)\n"
	  "      --page-size N        page size, a power of two 512 to 65536 (default 4096)\n"
	  "      --allow-nonfinite    accept NaN and infinite components\n"
	  "      --nosync             do not fsync the new file\n"
	  "      --codec C            how documents and tags are stored: none (default),\n"
	  "                           lz4, snappy, zstd[:LEVEL], zstd-dict[:LEVEL] (zstd\n"
	  "                           with a dictionary trained on the first documents)\n"
	  "      --max-doc-bytes N    largest document, JSON bytes (default 1 MiB, at most\n"
	  "                           16 MiB)\n"
	  "  -h, --help               show this help" };
