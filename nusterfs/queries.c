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
 * a query's name runs then, memdir.c). Other names (q.tmp) are plain files. */
#include "nusterfs.h"
#include "importer.h"
#include "vecfile.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAX_K 100000

static bool has_suffix(const char *s, const char *suf)
{
	size_t n = strlen(s), l = strlen(suf);
	return n > l && strcmp(s + n - l, suf) == 0;
}

int nfs_query_role(const char *name)
{
	if (has_suffix(name, ".result.json") || has_suffix(name, ".ids.npy") || has_suffix(name, ".dists.npy") ||
	    has_suffix(name, ".error"))
		return M_OUTPUT;
	if (has_suffix(name, ".opts.json"))
		return M_SIDECAR;
	if (has_suffix(name, ".json") || has_suffix(name, ".npy") || has_suffix(name, ".fvecs"))
		return M_QUERY;
	return M_PLAIN;
}

/* What a query asks, whatever its file's format. */
struct query {
	float *vecs;
	size_t nq;
	bool batch;
	size_t k;
	uint32_t ef;
	int exact;
	bool docs;
	nvf_filter *where;
};

__attribute__((format(printf, 3, 4))) static int bad(char *err, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, n, fmt, ap);
	va_end(ap);
	return EINVAL;
}

/* The options every format shares: k, filter, ef, exact, documents. */
static int parse_options(struct nfs *fs, json_t *o, struct query *q, char *err, size_t errlen)
{
	json_t *v;
	if ((v = json_object_get(o, "k"))) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > MAX_K)
			return bad(err, errlen, "\"k\" must be an integer from 1 to %d", MAX_K);
		q->k = (size_t)json_integer_value(v);
	}
	if ((v = json_object_get(o, "ef"))) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 1000000)
			return bad(err, errlen, "\"ef\" must be an integer from 1 to 1000000");
		q->ef = (uint32_t)json_integer_value(v);
	}
	if ((v = json_object_get(o, "exact"))) {
		if (!json_is_boolean(v))
			return bad(err, errlen, "\"exact\" must be true or false");
		q->exact = json_is_true(v);
	}
	if ((v = json_object_get(o, "documents"))) {
		if (!json_is_boolean(v))
			return bad(err, errlen, "\"documents\" must be true or false");
		q->docs = json_is_true(v);
	}
	if ((v = json_object_get(o, "filter")) && !json_is_null(v)) {
		if (!json_is_string(v))
			return bad(err, errlen, "\"filter\" must be a string (docs/FILTER.md)");
		int rc = nvf_filter_compile(&q->where, json_string_value(v));
		if (rc != 0)
			return bad(err, errlen, "%s", import_why(rc));
	}
	const char *key;
	json_t *val;
	json_object_foreach(o, key, val) {
		if (strcmp(key, "k") && strcmp(key, "ef") && strcmp(key, "exact") && strcmp(key, "documents") &&
		    strcmp(key, "filter") && strcmp(key, "vector") && strcmp(key, "vectors"))
			return bad(err, errlen,
				   "unknown key \"%s\" (a query has vector or vectors, k, filter, ef, exact, documents)",
				   key);
	}
	(void)fs;
	return 0;
}

static int vector_from(struct nfs *fs, json_t *a, float *out, size_t row, char *err, size_t errlen)
{
	size_t dim = fs->info.dim;
	if (!json_is_array(a))
		return bad(err, errlen, "vector %zu is not an array", row);
	if (json_array_size(a) != dim)
		return bad(err, errlen, "vector %zu has %zu components, the collection has %zu", row, json_array_size(a),
			   dim);
	for (size_t i = 0; i < dim; i++) {
		json_t *x = json_array_get(a, i);
		if (!json_is_number(x))
			return bad(err, errlen, "vector %zu: component %zu is not a number", row, i);
		out[i] = (float)json_number_value(x);
	}
	return 0;
}

static int parse_json(struct nfs *fs, const char *data, size_t len, struct query *q, char *err, size_t errlen)
{
	json_error_t je;
	json_t *o = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
	if (!o)
		return bad(err, errlen, "not JSON: line %d, column %d: %s", je.line, je.column, je.text);
	int rc = 0;
	json_t *v = json_object_get(o, "vector"), *vs = json_object_get(o, "vectors");
	size_t dim = fs->info.dim;
	if (!json_is_object(o))
		rc = bad(err, errlen, "a query is a JSON object");
	else
		rc = parse_options(fs, o, q, err, errlen);
	if (rc != 0) {
		json_decref(o);
		return rc;
	}
	if (!v == !vs)
		rc = bad(err, errlen, "a query has \"vector\" (one) or \"vectors\" (a batch), not %s", v ? "both" : "neither");
	else if (vs && (!json_is_array(vs) || json_array_size(vs) == 0))
		rc = bad(err, errlen, "\"vectors\" must be a non-empty array of vectors");
	else {
		q->batch = vs != NULL;
		q->nq = vs ? json_array_size(vs) : 1;
		if (!(q->vecs = malloc(q->nq * dim * sizeof(float))))
			rc = ENOMEM;
		for (size_t i = 0; rc == 0 && i < q->nq; i++)
			rc = vector_from(fs, vs ? json_array_get(vs, i) : v, q->vecs + i * dim, i, err, errlen);
	}
	json_decref(o);
	return rc;
}

/* .npy and .fvecs are read by the same readers as nvf-tool's, from a memory file. */
static int parse_binary(struct nfs *fs, const char *name, const char *data, size_t len, struct query *q, char *err,
			size_t errlen)
{
	q->batch = true;
	int fd = memfd_create("nusterfs-query", MFD_CLOEXEC);
	if (fd < 0)
		return errno;
	size_t done = 0;
	while (done < len) {
		ssize_t w = write(fd, data + done, len - done);
		if (w <= 0) {
			close(fd);
			return EIO;
		}
		done += (size_t)w;
	}
	char path[64], verr[VECFILE_ERRLEN];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	size_t n = 0, dim = 0;
	float *v = vecfile_load(path, vecfile_format_guess(name), 0, &n, &dim, verr);
	close(fd);
	if (!v) {
		/* The reader names the memory file: say the query's name instead. */
		const char *p = strstr(verr, path);
		return bad(err, errlen, "%s%s", name, p ? p + strlen(path) : verr);
	}
	if (n == 0) {
		free(v);
		return bad(err, errlen, "%s: no query vectors", name);
	}
	if (dim != fs->info.dim) {
		free(v);
		return bad(err, errlen, "%s: dimension %zu, the collection has %u", name, dim, fs->info.dim);
	}
	q->vecs = v;
	q->nq = n;
	/* The sidecar NAME.opts.json: k, filter, ef, exact, documents. */
	char side[4096];
	const char *dot = strrchr(name, '.');
	snprintf(side, sizeof(side), "%.*s.opts.json", (int)(dot - name), name);
	size_t sl;
	char *text = nfs_mem_get_text(K_QUERYDIR, side, &sl);
	if (!text)
		return 0;
	json_error_t je;
	json_t *o = json_loadb(text, sl, JSON_REJECT_DUPLICATES, &je);
	free(text);
	int rc;
	if (!json_is_object(o))
		rc = bad(err, errlen, "%s: not a JSON object (line %d, column %d)", side, je.line, je.column);
	else if (json_object_get(o, "vector") || json_object_get(o, "vectors"))
		rc = bad(err, errlen, "%s: options only (k, filter, ef, exact, documents); the vectors are in %s", side,
			 name);
	else
		rc = parse_options(fs, o, q, err, errlen);
	json_decref(o);
	return rc;
}

struct json_t *nfs_results_obj(nvf_db *db, nvf_txn *txn, const nvf_result *r, size_t n, bool docs)
{
	json_t *o = json_object(), *ids = json_array(), *dist = json_array(), *dj = docs ? json_array() : NULL;
	for (size_t i = 0; i < n; i++) {
		if (r[i].id == NVF_NO_ID)
			break;
		json_array_append_new(ids, json_integer((json_int_t)r[i].id));
		json_array_append_new(dist, json_real((double)r[i].distance));
		if (dj) {
			char *doc = NULL;
			json_t *d = NULL;
			if (nvf_meta_get(db, txn, r[i].id, &doc) == 0)
				d = json_loads(doc, JSON_DECODE_ANY, NULL);
			nvf_free(doc);
			json_array_append_new(dj, d ? d : json_null());
		}
	}
	json_object_set_new(o, "ids", ids);
	json_object_set_new(o, "distances", dist);
	if (dj)
		json_object_set_new(o, "documents", dj);
	return o;
}

/* NumPy 1.0 header for a 2-D array, padded to 64 bytes (as nvf-tool export writes). */
static size_t npy_header(char *h, const char *descr, size_t rows, size_t cols)
{
	char dict[128];
	int len = snprintf(dict, sizeof(dict), "{'descr': '%s', 'fortran_order': False, 'shape': (%zu, %zu), }", descr,
			   rows, cols);
	size_t total = 10 + (size_t)len + 1;
	size_t pad = (64 - total % 64) % 64;
	uint16_t hlen = (uint16_t)((size_t)len + pad + 1);
	memcpy(h, "\x93NUMPY\x01\x00", 8);
	memcpy(h + 8, &hlen, 2);
	memcpy(h + 10, dict, (size_t)len);
	memset(h + 10 + len, ' ', pad);
	h[10 + (size_t)len + pad] = '\n';
	return 10 + (size_t)len + pad + 1;
}

static void put_npy(struct nfs *fs, const char *base, const char *suffix, const nvf_result *r, size_t nq, size_t k,
		    bool ids)
{
	char name[4096];
	snprintf(name, sizeof(name), "%s%s", base, suffix);
	char h[192];
	size_t hl = npy_header(h, ids ? "<i8" : "<f4", nq, k), el = ids ? 8 : 4;
	char *d = malloc(hl + nq * k * el);
	if (!d)
		return;
	memcpy(d, h, hl);
	for (size_t i = 0; i < nq * k; i++) {
		if (ids) {
			int64_t v = r[i].id == NVF_NO_ID ? -1 : (int64_t)r[i].id;
			memcpy(d + hl + i * 8, &v, 8);
		} else {
			float v = r[i].id == NVF_NO_ID ? INFINITY : r[i].distance;
			memcpy(d + hl + i * 4, &v, 4);
		}
	}
	nfs_mem_put_output(fs, K_QUERYDIR, name, d, hl + nq * k * el);
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

static int search(struct nfs *fs, struct query *q, const char *base, bool binary, char *err, size_t errlen)
{
	size_t dim = fs->info.dim;
	for (size_t i = 0; i < q->nq; i++) {
		char ierr[IMPORT_ERRLEN];
		if (import_check_record(q->vecs + i * dim, dim, &fs->info, "query", i, ierr) != 0)
			return bad(err, errlen, "%s", ierr);
	}
	nvf_result *r = malloc(q->nq * q->k * sizeof(*r));
	if (!r)
		return ENOMEM;
	nvf_search_options so = NVF_SEARCH_OPTIONS_INIT;
	so.ef_search = q->ef;
	so.exact = q->exact;
	so.where = q->where;
	int rc;
	char *text = NULL;
	for (int tries = 0;; tries++) {
		uint64_t gen;
		nvf_db *db = nfs_db_get(fs, &gen);
		nvf_txn *txn = NULL;
		size_t got = 0;
		/* One read transaction: the results and their documents are of one state. */
		rc = nvf_txn_begin(&txn, db, NVF_TXN_RDONLY);
		if (rc == 0 && !q->batch) {
			if ((rc = nvf_search(db, txn, q->vecs, dim, q->k, &so, r, &got)) == 0)
				for (size_t i = got; i < q->k; i++)
					r[i].id = NVF_NO_ID;
		} else if (rc == 0) {
			rc = nvf_search_batch(db, txn, q->vecs, q->nq, dim, q->k, &so, r);
		}
		if (rc == 0) {
			json_t *o;
			if (!q->batch) {
				o = nfs_results_obj(db, txn, r, q->k, q->docs);
			} else {
				json_t *all = json_array();
				for (size_t i = 0; i < q->nq; i++)
					json_array_append_new(all, nfs_results_obj(db, txn, r + i * q->k, q->k, q->docs));
				o = json_object();
				json_object_set_new(o, "results", all);
			}
			json_object_set_new(o, "txnid", json_integer((json_int_t)nvf_txn_id(txn)));
			text = json_dumps(o, NFS_JSON_FLAGS);
			json_decref(o);
			if (!text)
				rc = -ENOMEM;
		}
		nvf_txn_abort(txn);
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
	if (binary) {
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
	struct query q = { .k = fs->o.k };
	char err[1024] = "";
	char *base = strdup(name);
	if (!base)
		return ENOMEM;
	*strrchr(base, '.') = 0;
	bool binary = !has_suffix(name, ".json");
	int rc = binary ? parse_binary(fs, name, data, len, &q, err, sizeof(err))
			: parse_json(fs, data, len, &q, err, sizeof(err));
	if (rc == 0)
		rc = search(fs, &q, base, binary, err, sizeof(err));
	if (rc != 0) {
		if (!*err)
			snprintf(err, sizeof(err), "%s", strerror(rc));
		nfs_log("queries/%s: %s", name, err);
		put_text(fs, base, ".error", err);
	}
	free(q.vecs);
	nvf_filter_free(q.where);
	free(base);
	return rc;
}
