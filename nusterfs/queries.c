/* /queries: a query file's search and its result files.
 *
 *   NAME.json   {"vector": [...], "k": 10, "filter": "...", "ef": 64, "exact": false,
 *               "documents": false}, or a batch {"vectors": [[...], ...], ...}
 *   NAME.npy, NAME.fvecs   a batch of query vectors (the export formats); k, filter,
 *               ef and documents from NAME.opts.json if present, else k from the
 *               mount's -o k=N
 * give NAME.result.json, and for a binary batch also NAME.ids.npy (int64, -1 in
 * empty slots) and NAME.dists.npy (float32, +inf there); a query that fails gives
 * NAME.error, one line, and the errno of the close (of the rename: a file renamed to
 * a query's name runs then, memdir.c). Other names (q.tmp) are plain files. The
 * parse and the search are query.c's; here are the mount's parts of them: the
 * handle, the sidecar and the outputs. */
#include "nusterfs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int nfs_query_role(const char *name)
{
	if (nfs_has_suffix(name, ".result.json") || nfs_has_suffix(name, ".ids.npy") ||
	    nfs_has_suffix(name, ".dists.npy") || nfs_has_suffix(name, ".error"))
		return M_OUTPUT;
	if (nfs_has_suffix(name, ".opts.json"))
		return M_SIDECAR;
	if (nfs_has_suffix(name, ".json") || nfs_has_suffix(name, ".npy") || nfs_has_suffix(name, ".fvecs"))
		return M_QUERY;
	return M_PLAIN;
}

static void put_npy(struct nfs *fs, const char *base, const char *suffix, const nvf_result *r, size_t nq, size_t k,
		    bool ids)
{
	char name[4096];
	snprintf(name, sizeof(name), "%s%s", base, suffix);
	size_t len;
	char *d = nfs_query_npy(r, nq, k, ids, &len);
	if (d)
		nfs_mem_put_output(fs, K_QUERYDIR, name, d, len);
}

static void put_text(struct nfs *fs, const char *base, const char *suffix, const char *text)
{
	char name[4096];
	snprintf(name, sizeof(name), "%s%s", base, suffix);
	size_t l = strlen(text);
	char *d = malloc(l + 2);
	if (!d)
		return;
	memcpy(d, text, l);
	d[l] = '\n';
	d[l + 1] = 0;
	nfs_mem_put_output(fs, K_QUERYDIR, name, d, l + 1);
}

static int search(struct nfs *fs, struct nfs_query *q, const char *base, char *err, size_t errlen)
{
	nvf_result *r = malloc(q->nq * q->k * sizeof(*r));
	if (!r)
		return ENOMEM;
	int rc;
	char *text = NULL;
	for (int tries = 0;; tries++) {
		uint64_t gen;
		nvf_db *db = nfs_db_get(fs, &gen);
		rc = nfs_query_exec(db, q, r, &text);
		nfs_db_put(fs);
		if (rc == NVF_ESTALE && tries == 0 && nfs_db_reopen(fs, gen) == 0)
			continue;
		break;
	}
	if (rc != 0) {
		free(r);
		snprintf(err, errlen, "%s", import_why(rc));
		return nfs_errno(rc);
	}
	/* The binary results first: whoever waits for the .result.json finds them. */
	if (q->binary) {
		put_npy(fs, base, ".ids.npy", r, q->nq, q->k, true);
		put_npy(fs, base, ".dists.npy", r, q->nq, q->k, false);
	}
	put_text(fs, base, ".result.json", text);
	free(text);
	free(r);
	return 0;
}

int nfs_query_run(struct nfs *fs, const char *name, const char *data, size_t len)
{
	struct nfs_query q;
	char err[1024] = "";
	char *base = strdup(name);
	if (!base)
		return ENOMEM;
	*strrchr(base, '.') = 0;
	char *side = NULL;
	size_t sl = 0;
	if (!nfs_has_suffix(name, ".json")) {
		char sname[4096];
		nfs_query_sidecar_name(sname, sizeof(sname), name);
		side = nfs_mem_get_text(K_QUERYDIR, sname, &sl);
	}
	int rc = nfs_query_parse(&q, name, data, len, side, sl, &fs->info, fs->o.k, err, sizeof(err));
	free(side);
	if (rc == 0)
		rc = search(fs, &q, base, err, sizeof(err));
	if (rc != 0) {
		if (!*err)
			snprintf(err, sizeof(err), "%s", strerror(rc));
		nfs_log("queries/%s: %s", name, err);
		put_text(fs, base, ".error", err);
	}
	nfs_query_free(&q);
	free(base);
	return rc;
}
