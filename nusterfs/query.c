/* A query file's parse and search, without a mount (query.h; docs/NUSTERFS.md):
 *
 *   NAME.json   {"vector": [...], "k": 10, "filter": "...", "ef": 64, "exact": false,
 *               "documents": false}, or a batch {"vectors": [[...], ...], ...}
 *   NAME.npy, NAME.fvecs   a batch of query vectors (the export formats); k, filter,
 *               ef and documents from the sidecar NAME.opts.json if there is one
 *
 * queries.c runs them in /queries and puts their outputs there. */
#include "query.h"
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

bool nfs_has_suffix(const char *s, const char *suf)
{
	size_t n = strlen(s), l = strlen(suf);
	return n > l && strcmp(s + n - l, suf) == 0;
}

__attribute__((format(printf, 3, 4))) static int bad(char *err, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, n, fmt, ap);
	va_end(ap);
	return EINVAL;
}

/* The options every format shares: k, filter, ef, exact, documents. */
static int parse_options(json_t *o, struct nfs_query *q, char *err, size_t errlen)
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
	return 0;
}

static int vector_from(size_t dim, json_t *a, float *out, size_t row, char *err, size_t errlen)
{
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

static int parse_json(size_t dim, const char *data, size_t len, struct nfs_query *q, char *err, size_t errlen)
{
	json_error_t je;
	json_t *o = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
	if (!o)
		return bad(err, errlen, "not JSON: line %d, column %d: %s", je.line, je.column, je.text);
	int rc = 0;
	json_t *v = json_object_get(o, "vector"), *vs = json_object_get(o, "vectors");
	if (!json_is_object(o))
		rc = bad(err, errlen, "a query is a JSON object");
	else
		rc = parse_options(o, q, err, errlen);
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
			rc = vector_from(dim, vs ? json_array_get(vs, i) : v, q->vecs + i * dim, i, err, errlen);
	}
	json_decref(o);
	return rc;
}

void nfs_query_sidecar_name(char *buf, size_t n, const char *name)
{
	const char *dot = strrchr(name, '.');
	snprintf(buf, n, "%.*s.opts.json", (int)(dot ? dot - name : (ptrdiff_t)strlen(name)), name);
}

/* .npy and .fvecs are read by the same readers as nvf-tool's, from a memory file. */
static int parse_binary(size_t qdim, const char *name, const char *data, size_t len, const char *text, size_t sl,
			struct nfs_query *q, char *err, size_t errlen)
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
	if (dim != qdim) {
		free(v);
		return bad(err, errlen, "%s: dimension %zu, the collection has %zu", name, dim, qdim);
	}
	q->vecs = v;
	q->nq = n;
	/* The sidecar NAME.opts.json: k, filter, ef, exact, documents. */
	if (!text)
		return 0;
	char side[4096];
	nfs_query_sidecar_name(side, sizeof(side), name);
	json_error_t je;
	json_t *o = json_loadb(text, sl, JSON_REJECT_DUPLICATES, &je);
	int rc;
	if (!json_is_object(o))
		rc = bad(err, errlen, "%s: not a JSON object (line %d, column %d)", side, je.line, je.column);
	else if (json_object_get(o, "vector") || json_object_get(o, "vectors"))
		rc = bad(err, errlen, "%s: options only (k, filter, ef, exact, documents); the vectors are in %s", side,
			 name);
	else
		rc = parse_options(o, q, err, errlen);
	json_decref(o);
	return rc;
}

int nfs_query_parse(struct nfs_query *q, const char *name, const char *data, size_t len, const char *side,
		    size_t sidelen, const nvf_info *info, unsigned k, char *err, size_t errlen)
{
	*q = (struct nfs_query){ .k = k };
	if (errlen)
		*err = 0;
	size_t dim = q->dim = info->dim;
	q->binary = !nfs_has_suffix(name, ".json");
	int rc = q->binary ? parse_binary(dim, name, data, len, side, sidelen, q, err, errlen)
			   : parse_json(dim, data, len, q, err, errlen);
	for (size_t i = 0; rc == 0 && i < q->nq; i++) {
		char ierr[IMPORT_ERRLEN];
		if (import_check_record(q->vecs + i * dim, dim, info, "query", i, ierr) != 0)
			rc = bad(err, errlen, "%s", ierr);
	}
	return rc;
}

void nfs_query_free(struct nfs_query *q)
{
	free(q->vecs);
	nvf_filter_free(q->where);
	q->vecs = NULL;
	q->where = NULL;
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

int nfs_query_exec(nvf_db *db, const struct nfs_query *q, nvf_result *r, char **text)
{
	size_t dim = q->dim;
	nvf_txn *txn = NULL;
	size_t got = 0;
	nvf_search_options so = NVF_SEARCH_OPTIONS_INIT;
	so.ef_search = q->ef;
	so.exact = q->exact;
	so.where = q->where;
	*text = NULL;
	/* One read transaction: the results and their documents are of one state. */
	int rc = nvf_txn_begin(&txn, db, NVF_TXN_RDONLY);
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
		*text = json_dumps(o, NFS_JSON_FLAGS);
		json_decref(o);
		if (!*text)
			rc = -ENOMEM;
	}
	nvf_txn_abort(txn);
	return rc;
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

char *nfs_query_npy(const nvf_result *r, size_t nq, size_t k, bool ids, size_t *len)
{
	char h[192];
	size_t hl = npy_header(h, ids ? "<i8" : "<f4", nq, k), el = ids ? 8 : 4;
	char *d = malloc(hl + nq * k * el);
	if (!d)
		return NULL;
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
	*len = hl + nq * k * el;
	return d;
}
