/* /vectors/<id> and /meta/<id>.json: a record's float32 vector as raw bytes and its
 * document as JSON text (with a final newline, as a text file has). Reads take one
 * read transaction; a write is stored when the file is closed, in one write
 * transaction of its own that ends before the close returns. */
#include "nusterfs.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int nfs_record_read(struct nfs *fs, const struct nfs_node *n, char **out, size_t *len)
{
	int rc;
	for (int tries = 0;; tries++) {
		uint64_t gen;
		nvf_db *db = nfs_db_get(fs, &gen);
		nvf_txn *txn = NULL;
		char *text = NULL;
		rc = nfs_view_begin(fs, db, n->slot, &txn);
		if (rc == 0 && n->kind == K_VEC) {
			/* libnvf copies the vector out of the map (it has no call that lends
			 * a pointer into it): one copy, then the kernel's. */
			size_t bytes = (size_t)fs->info.dim * sizeof(float);
			if (!(text = malloc(bytes)))
				rc = -ENOMEM;
			else if ((rc = nvf_get(db, txn, n->id, (float *)text, fs->info.dim)) == 0)
				*len = bytes;
		} else if (rc == 0) {
			char *doc;
			if ((rc = nvf_meta_get(db, txn, n->id, &doc)) == 0) {
				size_t dl = strlen(doc);
				if (!(text = malloc(dl + 2))) {
					rc = -ENOMEM;
				} else {
					memcpy(text, doc, dl);
					text[dl] = '\n';
					text[dl + 1] = 0;
					*len = dl + 1;
				}
				nvf_free(doc);
			}
		}
		nvf_txn_abort(txn);
		nfs_db_put(fs);
		if (rc == 0) {
			*out = text;
			return 0;
		}
		free(text);
		if (rc == NVF_ESTALE && tries == 0 && nfs_db_reopen(fs, gen) == 0)
			continue;
		return nfs_errno(rc);
	}
}

/* One write call with its own transaction, retried once on a new handle if the file
 * was compacted meanwhile. */
static int write_once(struct nfs *fs, const struct nfs_node *n, const float *vec, const char *doc, bool del)
{
	if (fs->db_gone)
		return NVF_ENOTDB;
	for (int tries = 0;; tries++) {
		uint64_t gen;
		nvf_db *db = nfs_db_get(fs, &gen);
		int rc = del ? nvf_delete(db, NULL, n->id)
		       : vec ? nvf_upsert(db, NULL, n->id, vec, fs->info.dim)
			     : nvf_meta_set(db, NULL, n->id, doc);
		nfs_db_put(fs);
		if (rc == NVF_ESTALE && tries == 0 && nfs_db_reopen(fs, gen) == 0)
			continue;
		if (rc == 0)
			nfs_watch_kick();
		return rc;
	}
}

int nfs_record_write(struct nfs *fs, const struct nfs_node *n, const char *data, size_t len)
{
	if (n->slot != 0 || fs->o.read_only)
		return EROFS;
	int rc;
	if (n->kind == K_VEC) {
		size_t want = (size_t)fs->info.dim * sizeof(float);
		if (len != want) {
			nfs_log("vectors/%" PRIu64 ": %zu bytes written, a vector is %zu (%u float32)", n->id, len, want,
				fs->info.dim);
			return EINVAL;
		}
		float *vec = malloc(want);
		if (!vec)
			return ENOMEM;
		memcpy(vec, data, want);
		rc = write_once(fs, n, vec, NULL, false);
		free(vec);
		if (rc != 0)
			nfs_log("vectors/%" PRIu64 ": %s", n->id, rc == NVF_ENOTDB ? "the database file was deleted" : import_why(rc));
	} else {
		char *doc = malloc(len + 1);
		if (!doc)
			return ENOMEM;
		memcpy(doc, data, len);
		doc[len] = 0;
		/* Trailing whitespace (echo's newline) is no part of the document. */
		while (len > 0 && (doc[len - 1] == '\n' || doc[len - 1] == ' ' || doc[len - 1] == '\r' ||
				   doc[len - 1] == '\t'))
			doc[--len] = 0;
		if (memchr(doc, 0, len)) {
			free(doc);
			nfs_log("meta/%" PRIu64 ".json: a NUL byte in the document", n->id);
			return EINVAL;
		}
		rc = write_once(fs, n, NULL, len ? doc : "null", false);
		free(doc);
		if (rc != 0)
			nfs_log("meta/%" PRIu64 ".json: %s", n->id, rc == NVF_ENOTDB ? "the database file was deleted" : import_why(rc));
	}
	return rc == NVF_ENOTDB ? EIO : nfs_errno(rc);
}

int nfs_record_delete(struct nfs *fs, uint64_t id)
{
	if (fs->o.read_only)
		return EROFS;
	struct nfs_node n = { .kind = K_VEC, .id = id };
	int rc = write_once(fs, &n, NULL, NULL, true);
	if (rc != 0 && rc != NVF_ENOTFOUND)
		nfs_log("rm vectors/%" PRIu64 ": %s", id, rc == NVF_ENOTDB ? "the database file was deleted" : import_why(rc));
	return rc == NVF_ENOTDB ? EIO : nfs_errno(rc);
}
