/* Files whose text is made when they are looked at: /info, /errors and
 * /knn/<k>/<id>.json. Their size must be exact at stat time, so the text is made
 * then too; a knn file's search is remembered (per state, k and id) so that the
 * stat before an open and the open itself search once. */
#include "nusterfs.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define KNN_CACHE 64

struct knn_entry {
	unsigned slot, k;
	uint64_t id, txnid, generation;
	char *text;
	size_t len;
};

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static struct knn_entry cache[KNN_CACHE];
static unsigned cache_next;

static const char *index_name(int index)
{
	return index == NVF_INDEX_HNSW ? "hnsw" : "flat";
}

static const char *codec_name(int codec)
{
	static const char *const names[] = { "none", "lz4", "snappy", "zstd", "zstd-dict" };
	return codec >= 0 && codec <= 4 ? names[codec] : "unknown";
}

static int info_text(struct nfs *fs, nvf_db *db, nvf_txn *txn, unsigned slot, char **out)
{
	nvf_info in;
	int rc = nvf_db_info(db, txn, &in);
	if (rc != 0)
		return rc;
	nvf_snapshot_info *snaps = NULL;
	size_t ns = 0;
	if ((rc = nvf_snapshot_list(db, NULL, &snaps, &ns)) != 0)
		return rc;
	json_t *o = json_object(), *names = json_array();
	for (size_t i = 0; i < ns; i++)
		json_array_append_new(names, json_string(snaps[i].name));
	nvf_free(snaps);
	json_object_set_new(o, "path", json_string(fs->o.db_path));
	if (slot)
		json_object_set_new(o, "snapshot", json_string(nfs_snap_name(slot)));
	json_object_set_new(o, "dimension", json_integer(in.dim));
	json_object_set_new(o, "metric", json_string(nvf_metric_name(in.metric)));
	json_object_set_new(o, "index", json_string(index_name(in.index)));
	if (in.index == NVF_INDEX_HNSW) {
		json_t *h = json_object();
		json_object_set_new(h, "M", json_integer(in.hnsw_m));
		json_object_set_new(h, "ef_construction", json_integer(in.hnsw_ef_construction));
		json_object_set_new(h, "ef_search", json_integer(in.hnsw_ef_search));
		json_object_set_new(o, "hnsw", h);
	}
	json_object_set_new(o, "count", json_integer((json_int_t)in.count));
	json_object_set_new(o, "next_id", json_integer((json_int_t)in.next_id));
	json_object_set_new(o, "txnid", json_integer((json_int_t)in.txnid));
	json_object_set_new(o, "snapshots", names);
	json_object_set_new(o, "codec", json_string(codec_name(in.doc_codec)));
	json_object_set_new(o, "documents", json_integer((json_int_t)in.docs));
	json_object_set_new(o, "file_size", json_integer((json_int_t)in.file_size));
	json_object_set_new(o, "read_only", json_boolean(fs->o.read_only || slot != 0));
	char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (!s)
		return -ENOMEM;
	*out = s;
	return 0;
}

static int knn_text(struct nfs *fs, nvf_db *db, nvf_txn *txn, const struct nfs_node *n, char **out)
{
	size_t dim = fs->info.dim, k = n->k + 1, got = 0;
	float *v = malloc(dim * sizeof(float));
	nvf_result *r = malloc(k * sizeof(*r));
	int rc = !v || !r ? -ENOMEM : nvf_get(db, txn, n->id, v, dim);
	if (rc == 0)
		rc = nvf_search(db, txn, v, dim, k, NULL, r, &got);
	if (rc == 0) {
		/* The record's own vector is its nearest: the k others are its neighbours. */
		size_t w = 0;
		for (size_t i = 0; i < got; i++)
			if (r[i].id != n->id && w < n->k)
				r[w++] = r[i];
		json_t *o = nfs_results_obj(db, txn, r, w, false), *head = json_object();
		json_object_set_new(head, "id", json_integer((json_int_t)n->id));
		json_object_set_new(head, "k", json_integer(n->k));
		json_object_update(head, o);
		json_decref(o);
		*out = json_dumps(head, NFS_JSON_FLAGS);
		json_decref(head);
		if (!*out)
			rc = -ENOMEM;
	}
	free(v);
	free(r);
	return rc;
}

static bool cached(const struct nfs_node *n, uint64_t txnid, uint64_t gen, char **out, size_t *len)
{
	bool hit = false;
	pthread_mutex_lock(&cache_mu);
	for (unsigned i = 0; i < KNN_CACHE && !hit; i++) {
		struct knn_entry *e = &cache[i];
		if (e->text && e->slot == n->slot && e->k == n->k && e->id == n->id && e->txnid == txnid &&
		    e->generation == gen && (*out = malloc(e->len + 1))) {
			memcpy(*out, e->text, e->len + 1);
			*len = e->len;
			hit = true;
		}
	}
	pthread_mutex_unlock(&cache_mu);
	return hit;
}

static void remember(const struct nfs_node *n, uint64_t txnid, uint64_t gen, const char *text, size_t len)
{
	char *copy = malloc(len + 1);
	if (!copy)
		return;
	memcpy(copy, text, len + 1);
	pthread_mutex_lock(&cache_mu);
	struct knn_entry *e = &cache[cache_next++ % KNN_CACHE];
	free(e->text);
	*e = (struct knn_entry){ n->slot, n->k, n->id, txnid, gen, copy, len };
	pthread_mutex_unlock(&cache_mu);
}

int nfs_made_text(struct nfs *fs, const struct nfs_node *n, char **out, size_t *len)
{
	if (n->kind == K_ERRORS) {
		*out = nfs_log_text(len);
		return *out ? 0 : ENOMEM;
	}
	for (int tries = 0;; tries++) {
		uint64_t gen;
		nvf_db *db = nfs_db_get(fs, &gen);
		nvf_txn *txn = NULL;
		char *text = NULL;
		int rc = nfs_view_begin(fs, db, n->slot, &txn);
		bool hit = rc == 0 && n->kind == K_KNN && cached(n, nvf_txn_id(txn), gen, out, len);
		if (rc == 0 && !hit)
			rc = n->kind == K_INFO ? info_text(fs, db, txn, n->slot, &text) : knn_text(fs, db, txn, n, &text);
		if (rc == 0 && !hit) {
			/* A text file ends with a newline. */
			size_t tl = strlen(text);
			char *t = realloc(text, tl + 2);
			if (t) {
				t[tl] = '\n';
				t[tl + 1] = 0;
				text = t;
				*out = text;
				*len = tl + 1;
				if (n->kind == K_KNN)
					remember(n, nvf_txn_id(txn), gen, text, tl + 1);
			} else {
				free(text);
				rc = -ENOMEM;
			}
		}
		nvf_txn_abort(txn);
		nfs_db_put(fs);
		if (rc == NVF_ESTALE && tries == 0 && nfs_db_reopen(fs, gen) == 0)
			continue;
		if (rc != 0 && rc != NVF_ENOTFOUND)
			nfs_log("%s: %s", n->kind == K_INFO ? "info" : "knn", import_why(rc));
		return nfs_errno(rc);
	}
}
