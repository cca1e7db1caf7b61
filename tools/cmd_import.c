/* nvf-tool import: every record of a file, all or nothing, in one transaction.
 *  - vector files (.fvecs, .bvecs, .npy, IDX), ids assigned in file order, and with
 *    --meta FILE.jsonl one document per vector (line i for record i);
 *  - .jsonl records: {"id": 7, "vector": [...], "meta": {...}, "tags": [...]}, id
 *    optional (then assigned), meta and tags optional. */
#include "tool.h"
#include "importer.h"
#include "vecfile.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* The progress line of the terminal around the importer's callbacks. */
static void pg_start(void *ctx, uint64_t total)
{
	progress_start(ctx, "import", "records", total);
}

static void pg_update(void *ctx, uint64_t done)
{
	progress_update(ctx, done);
}

static void pg_end(void *ctx)
{
	progress_end(ctx);
}

static int cmd_import(const struct command *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "batch", required_argument, NULL, OPT_BATCH },
		{ "meta", required_argument, NULL, OPT_META },
		HELP_OPTION,
		{ NULL, 0, NULL, 0 },
	};
	int format = VF_AUTO, c;
	bool jsonl = false;
	size_t batch = 0;
	const char *metafile = NULL;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case OPT_FORMAT:
			if (strcmp(optarg, "jsonl") == 0)
				jsonl = true;
			else
				format = parse_format(optarg);
			break;
		case OPT_BATCH:
			batch = (size_t)parse_num("--batch", optarg, 1, 10000000);
			break;
		case OPT_META:
			metafile = optarg;
			break;
		default:
			common_option(c, argv);
		}
	}
	static const char *const names[] = { "DB", "FILE" };
	char **pos = positionals(argc, argv, 2, names);
	const char *path = pos[0], *file = pos[1];
	jsonl |= format == VF_AUTO && import_is_jsonl(file);
	if (jsonl && metafile)
		usage_error("--meta goes with a vector file; a .jsonl file carries its documents itself");

	double t0 = now();
	nvf_db *db = NULL;
	nvf_txn *txn = NULL;
	uint64_t first_id = 0, last_id = 0, done = 0;
	nvf_info info;
	int rc, ret = EXIT_ERROR;
	/* One write transaction for the whole file: an error anywhere in it, even in
	 * the last record, aborts it, and the collection is as it was. */
	if ((rc = tool_db_open(&db, path)) != 0 || (rc = nvf_txn_begin(&txn, db, 0)) != 0 ||
	    (rc = nvf_db_info(db, txn, &info)) != 0) {
		db_error(path, rc);
		goto out;
	}
	progress pr;
	import_progress ip = { &pr, pg_start, pg_update, pg_end };
	import_result res;
	char err[IMPORT_ERRLEN];
	if (import_file(db, txn, &info, file, NULL, jsonl ? IMPORT_JSONL : format, batch, metafile, &ip, &res, err) != 0) {
		error("%s", err);
		goto out;
	}
	done = res.done;
	first_id = res.first;
	last_id = res.last;
	rc = done ? nvf_txn_commit(txn) : 0; /* nothing to commit: abort it below */
	if (done)
		txn = NULL; /* freed by commit, whatever it returned */
	if (rc != 0) {
		error("%s: commit: %s", path, why(rc));
		goto out;
	}
	nvf_txn_abort(txn);
	txn = NULL;
	rc = nvf_db_close(db);
	db = NULL;
	if (rc != 0) {
		error("%s: closing: %s", path, why(rc));
		goto out;
	}
	double secs = now() - t0;
	printf("imported %" PRIu64 " %s from %s", done, jsonl ? "records" : "vectors", file);
	if (done)
		printf(" (ids %" PRIu64 "..%" PRIu64 ")", first_id, last_id);
	printf(" in %.2f s, %.0f records/s\n", secs, secs > 0 ? (double)done / secs : 0.0);
	ret = EXIT_SUCCESS;
out:
	nvf_txn_abort(txn);
	nvf_db_close(db);
	return ret;
}

const struct command cmd_import_def = { "import", cmd_import, "Insert every record of a file, all or nothing.",
	  "import DB FILE [options]\n"
	  "\n"
	  "FILE is .fvecs, .bvecs, .npy (2-D, <f4 <f8 |u1 <i4) or IDX (.idx, *-ubyte),\n"
	  "optionally gzip-compressed (ids assigned in file order), or .jsonl: one record\n"
	  "a line, {\"id\": 7, \"vector\": [...], \"meta\": {...}, \"tags\": [\"a\"]}, where id\n"
	  "(every line or none), meta and tags may be left out. Every record is checked and\n"
	  "the whole file goes in one transaction: a bad record anywhere imports nothing.\n"
	  "\n"
	  "      --format F           fvecs, bvecs, npy, idx or jsonl (default: from the name)\n"
	  "      --meta FILE.jsonl    documents for a vector file, one JSON object (or null)\n"
	  "                           a line, line i for record i; as many lines as vectors\n"
	  "      --batch N            vectors per insert call (default 10000, fewer\n"
	  "                           if that would take more than 256 MiB)\n"
	  "  -h, --help               show this help" };
