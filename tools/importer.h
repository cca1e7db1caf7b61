/* Importing a file of records into a write transaction: what `nvf-tool import` does,
 * shared with nusterfs's /ingest/ so that both accept exactly the same files.
 *
 *  - vector files (.fvecs, .bvecs, .npy, IDX; vecfile.h), ids assigned in file order,
 *    optionally with a JSON-lines file of documents, line i for record i;
 *  - .jsonl records: {"id": 7, "vector": [...], "meta": {...}, "tags": [...]}, id
 *    optional (every line has one, or none does), meta and tags optional.
 *
 * Nothing is printed: a failure leaves one line in the caller's buffer, naming the
 * file and the record or line. The caller owns the transaction: it commits or aborts
 * (a failure may leave part of the file inserted in it). */
#ifndef NVF_TOOL_IMPORTER_H
#define NVF_TOOL_IMPORTER_H

#include <nvf.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** The format value (beside vecfile.h's VF_*) of a JSON-lines file of records. */
#define IMPORT_JSONL (-2)

/** Room for a message. */
#define IMPORT_ERRLEN 1024

/** Optional progress callbacks (any may be NULL); total 0 is unknown. */
typedef struct import_progress {
	void *ctx;
	void (*start)(void *ctx, uint64_t total);
	void (*update)(void *ctx, uint64_t done);
	void (*end)(void *ctx);
} import_progress;

/** What an import did. */
typedef struct import_result {
	uint64_t done;        /**< records inserted */
	uint64_t first, last; /**< their first and last ids (when done > 0) */
} import_result;

/** Whether a name ends in .jsonl or .ndjson. */
bool import_is_jsonl(const char *file);

/** The library's words for a failure: its detail message (which names the page, id
 * or argument), or else the code's name. */
const char *import_why(int rc);

/** Check a vector read from a file before the library does, to name its record:
 * finite components unless the collection allows others, non-negative for jaccard.
 * @return 0, or -1 with the message in err (IMPORT_ERRLEN bytes). */
int import_check_record(const float *v, size_t dim, const nvf_info *info, const char *file, uint64_t rec,
			char *err);

/**
 * Insert every record of file in txn.
 * @param format    IMPORT_JSONL, or a vecfile format (VF_AUTO: from the name; a
 *                  .jsonl/.ndjson name is JSON lines)
 * @param batch     records per insert call (0: 10000, fewer if longer than 256 MiB;
 *                  4096 for JSON lines)
 * @param metafile  NULL, or documents for a vector file (not with JSON lines)
 * @param label     the name used for file in messages (NULL: file itself)
 * @return 0, or -1 with one line in err (IMPORT_ERRLEN bytes).
 */
int import_file(nvf_db *db, nvf_txn *txn, const nvf_info *info, const char *file, const char *label, int format,
		size_t batch, const char *metafile, const import_progress *progress, import_result *res, char *err);

#endif /* NVF_TOOL_IMPORTER_H */
