/* nusterfs: a query file's parse and search, without a mount (docs/NUSTERFS.md).
 *
 * queries.c serves /queries with it (the database handle, the sidecar's text and the
 * outputs come from the daemon's state); fuzz/fuzz_query.c drives it on its own.
 * Only nvf.h, jansson and tools/ (importer, vecfile): no FUSE. */
#ifndef NUSTERFS_QUERY_H
#define NUSTERFS_QUERY_H

#include <nvf.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What a query asks, whatever its file's format. */
struct nfs_query {
	float *vecs;   /* nq x dim */
	size_t nq, dim; /* dim: the collection's */
	bool batch;    /* results as {"results": [...]} */
	bool binary;   /* .npy/.fvecs: NAME.ids.npy and NAME.dists.npy too */
	size_t k;
	uint32_t ef;
	int exact;
	bool docs;
	nvf_filter *where;
};

/* Whether s ends in suf (and is longer). */
bool nfs_has_suffix(const char *s, const char *suf);

/* The name a query file's options sidecar has: NAME.opts.json for NAME.npy (name has
 * an extension). */
void nfs_query_sidecar_name(char *buf, size_t n, const char *name);

/* Parse a query file's bytes (len of them, no terminator needed) into q: name's
 * extension says the format (.json, else a binary batch: .npy, .fvecs); side (NULL
 * if there is none) is the text of a binary query's sidecar; k is the k of a query
 * that gives none; every vector is checked against info (dim, values). Returns 0 or
 * an errno, with the reason in err (one line; empty when strerror says it). q is
 * initialised first and must be given to nfs_query_free whatever the result. */
int nfs_query_parse(struct nfs_query *q, const char *name, const char *data, size_t len, const char *side,
		    size_t sidelen, const nvf_info *info, unsigned k, char *err, size_t errlen);

/* Run a parsed query in one read transaction of db: r (nq x k results, empty slots
 * NVF_NO_ID) and the text of NAME.result.json (malloc'd into *text). Returns a
 * libnvf code (NVF_ESTALE: the caller may reopen and retry). */
int nfs_query_exec(nvf_db *db, const struct nfs_query *q, nvf_result *r, char **text);

/* A binary batch's results as a NumPy 1.0 file of shape (nq, k): the ids (int64, -1
 * in empty slots) or the distances (float32, +inf there). Malloc'd, its length in
 * *len; NULL if memory ran out. */
char *nfs_query_npy(const nvf_result *r, size_t nq, size_t k, bool ids, size_t *len);

void nfs_query_free(struct nfs_query *q);

/* One query's results as a JSON object {"ids", "distances"} and, with docs,
 * "documents" (each record's document); empty slots (NVF_NO_ID) are left out.
 * NULL if memory ran out. knn.c uses it too. */
struct json_t;
struct json_t *nfs_results_obj(nvf_db *db, nvf_txn *txn, const nvf_result *r, size_t n, bool docs);
/* JSON text with float32 distances printed exactly. */
#define NFS_JSON_FLAGS (JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9))

#endif /* NUSTERFS_QUERY_H */
