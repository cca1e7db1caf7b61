/* The collection and its records: creation, the per-transaction view, validation,
 * and the public record functions (insert, add, upsert, update, batch insert, get,
 * delete, count, contains), each in the caller's transaction or its own. */
#include "hnsw.h"
#include "fields.h"
#include "meta.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define VEC_CHUNK_BYTES (128u << 10)
#define SMALL_CHUNK_BYTES (32u << 10)

static uint32_t vector_stride(uint32_t dim)
{
	/* Cache-line aligned rows (whole lines per vector for the scans); small
	 * vectors take the next power of two instead of a whole line. */
	uint32_t bytes = dim * 4u;
	if (bytes >= 64)
		return (bytes + 63) & ~63u;
	uint32_t s = 4;
	while (s < bytes)
		s *= 2;
	return s;
}

/* ---- the per-transaction view ---- */

/* Before a commit: settle the graph's removals and release their rows; write back the
 * metadata's pending work (field index postings, totals). */
static int coll_precommit(nvf_txn *txn)
{
	nvf_coll *c = txn->coll;
	int rc = 0;
	if (c->hnsw) {
		uint64_t *rows;
		size_t n;
		rc = nvf__hnsw_settle(txn, c, &rows, &n);
		for (size_t i = 0; i < n && rc == 0; i++)
			rc = nvf__tree_put(txn, &c->freerows->d, rows[i], NULL, 0, 0, NULL);
		free(rows);
		if (rc == 0)
			rc = nvf__hnsw_flush(txn, c);
		if (rc == 0 && nvf__calib_due(c))
			rc = nvf__calibrate(txn, c);
	}
	if (rc == 0)
		rc = nvf__meta_precommit(txn, c);
	return nvf__txn_fail(txn, rc);
}

int nvf__coll_get(nvf_txn *txn, nvf_coll **out)
{
	if (txn->coll) {
		*out = txn->coll;
		return 0;
	}
	nvf_tree *cfgt;
	if (!(txn->db->header.flags & NVF_HEADER_COLLECTION))
		return nvf__err(NVF_EINVAL, "%s holds no collection (create databases with nvf_db_create)",
				txn->db->path);
	int rc = nvf__tree_open(txn, NVF_T_CONFIG, -1, &cfgt);
	if (rc == NVF_ENOTFOUND)
		return nvf__err(NVF_ECORRUPT, "%s: the collection's configuration is missing", txn->db->path);
	if (rc != 0)
		return rc;
	nvf_val v;
	if ((rc = nvf__tree_get(txn, &cfgt->d, 0, &v)) != 0)
		return rc == NVF_ENOTFOUND ? nvf__err(NVF_ECORRUPT, "collection configuration record missing") : rc;
	nvf_coll *c = calloc(1, sizeof(*c));
	if (!c)
		return nvf__oom();
	if (v.len != sizeof(c->cfg)) {
		free(c);
		return nvf__err(NVF_ECORRUPT, "collection configuration of %llu bytes", (unsigned long long)v.len);
	}
	memcpy(&c->cfg, v.data, sizeof(c->cfg));
	const struct nvf_disk_config *g = &c->cfg;
	/* Every number the searches size buffers by is checked here, within the bounds
	 * creation enforces (a damaged ef_search had a search allocate 32 GiB). */
	if (g->magic != NVF_CONFIG_MAGIC || g->version > NVF_CONFIG_VERSION || g->dim == 0 || g->dim > NVF_MAX_DIM ||
	    g->metric >= NVF_METRIC_COUNT || g->index > NVF_INDEX_HNSW || g->stride != vector_stride(g->dim) ||
	    (g->index == NVF_INDEX_HNSW &&
	     (g->hnsw_m < 2 || g->hnsw_m > 256 || g->hnsw_ef_construction == 0 || g->hnsw_ef_construction > NVF_MAX_EF ||
	      g->hnsw_ef_search == 0 || g->hnsw_ef_search > NVF_MAX_EF ||
	      g->hnsw_quant > NVF_QUANT_SQ4 || g->walk > NVF_WALK_FLOAT))) {
		rc = nvf__err(g->version > NVF_CONFIG_VERSION ? NVF_EVERSION : NVF_ECORRUPT,
			      "collection configuration invalid (version %u, dim %u, metric %u, M %u, ef %u/%u)", g->version,
			      g->dim, g->metric, g->hnsw_m, g->hnsw_ef_construction, g->hnsw_ef_search);
		free(c);
		return rc;
	}
	c->k = nvf__kernels();
	if ((rc = nvf__tree_open(txn, NVF_T_IDMAP, -1, &c->idmap)) != 0 ||
	    (rc = nvf__tree_open(txn, NVF_T_FREEROWS, -1, &c->freerows)) != 0 ||
	    (rc = nvf__array_open(txn, NVF_T_VECTORS, 0, 0, &c->vec)) != 0 ||
	    (rc = nvf__array_open(txn, NVF_T_ROWIDS, 0, 0, &c->rowids)) != 0 ||
	    (rc = nvf__array_open(txn, NVF_T_NORMS, 0, 0, &c->norms)) != 0) {
		free(c);
		return rc == NVF_ENOTFOUND ? nvf__err(NVF_ECORRUPT, "a tree of the collection is missing") : rc;
	}
	if (c->vec->stride != g->stride || c->rowids->stride != 8 || c->norms->stride != 4 ||
	    nvf__array_rows(c->rowids) != nvf__array_rows(c->vec) || nvf__array_rows(c->norms) != nvf__array_rows(c->vec)) {
		free(c);
		return nvf__err(NVF_ECORRUPT, "collection arrays disagree on their size");
	}
	if ((g->index == NVF_INDEX_HNSW && (rc = nvf__hnsw_open(txn, c)) != 0) || (rc = nvf__meta_open(txn, c)) != 0) {
		nvf__coll_free(c);
		return rc;
	}
	txn->coll = c;
	if (txn->flags & NVF_TXN_F_WRITE)
		txn->precommit = coll_precommit;
	*out = c;
	return 0;
}

void nvf__hnsw_free(nvf_coll *c);

/* NVF_QUANT_AUTO resolved for a metric; NVF_EINVAL for a quantization the metric
 * cannot use (its distance is not a function of a dot product). */
static int resolve_quant(int q, int metric, uint8_t *out)
{
	bool dot_based = metric == NVF_METRIC_EUCLIDEAN || metric == NVF_METRIC_INNER_PRODUCT ||
			 metric == NVF_METRIC_COSINE || metric == NVF_METRIC_ANGULAR;
	if (q == NVF_QUANT_AUTO)
		q = dot_based ? NVF_QUANT_SQ4 : NVF_QUANT_NONE;
	if (q != NVF_QUANT_NONE && q != NVF_QUANT_SQ4)
		return nvf__err(NVF_EINVAL, "hnsw_quantize %d: use NVF_QUANT_AUTO, NVF_QUANT_NONE or NVF_QUANT_SQ4", q);
	if (q == NVF_QUANT_SQ4 && !dot_based)
		return nvf__err(NVF_EINVAL, "4-bit quantization serves euclidean, inner product, cosine and angular, not %s",
				nvf_metric_name(metric));
	*out = (uint8_t)q;
	return 0;
}

/* The metadata trees of a new collection. The collection is opened (as flat) only to
 * hand them to meta.c; the view is dropped, since the HNSW trees come next. */
static int create_meta(nvf_txn *txn)
{
	nvf_coll c;
	memset(&c, 0, sizeof(c));
	int rc = nvf__meta_create(txn, &c);
	nvf__fields_free(&c);
	return rc;
}

/* The index's own trees, for a collection whose config says HNSW. */
static int create_index(nvf_txn *txn)
{
	nvf_coll *c;
	int rc;
	/* The configuration says HNSW but the graph does not exist yet: open the
	 * collection as flat, then create the graph in it. */
	nvf_tree *cfgt;
	if ((rc = nvf__tree_open(txn, NVF_T_CONFIG, -1, &cfgt)) != 0)
		return rc;
	nvf_val v;
	struct nvf_disk_config cfg;
	if ((rc = nvf__tree_get(txn, &cfgt->d, 0, &v)) != 0)
		return rc;
	memcpy(&cfg, v.data, sizeof(cfg));
	if (cfg.index != NVF_INDEX_HNSW)
		return 0;
	cfg.index = NVF_INDEX_FLAT;
	if ((rc = nvf__tree_put(txn, &cfgt->d, 0, &cfg, sizeof(cfg), 0, NULL)) != 0 ||
	    (rc = nvf__coll_get(txn, &c)) != 0 || (rc = nvf__hnsw_create(txn, c)) != 0 ||
	    (rc = nvf__hnsw_flush(txn, c)) != 0)
		return rc;
	cfg.index = NVF_INDEX_HNSW;
	c->cfg.index = NVF_INDEX_HNSW;
	return nvf__tree_put(txn, &cfgt->d, 0, &cfg, sizeof(cfg), 0, NULL);
}

void nvf__coll_free(nvf_coll *c)
{
	if (!c)
		return;
	nvf__hnsw_free(c);
	nvf__fields_free(c);
	free(c);
}

int nvf_db_create(nvf_db **out, const char *path, const nvf_create_options *opts)
{
	if (!out || !path || !opts)
		return nvf__err(NVF_EINVAL, "nvf_db_create: NULL argument");
	/* Older callers' structs end before the later fields: never read those. */
	if (opts->version < 1 || opts->version > NVF_CREATE_OPTIONS_VERSION)
		return nvf__err(NVF_EINVAL, "create options version %u, expected 1 to %u (use NVF_CREATE_OPTIONS_INIT)",
				opts->version, NVF_CREATE_OPTIONS_VERSION);
	unsigned mode = opts->version >= 3 && opts->mode ? opts->mode : 0644;
	if (opts->version >= 3 && nvf__mode_check(mode, "create: file") != 0)
		return NVF_EINVAL;
	int codec = opts->version >= 2 ? opts->doc_codec : NVF_CODEC_NONE;
	int level = opts->version >= 2 ? opts->doc_codec_level : 0;
	uint32_t doc_max = opts->version >= 2 ? opts->doc_max_bytes : 0;
	if (opts->dim == 0 || opts->dim > NVF_MAX_DIM)
		return nvf__err(NVF_EINVAL, "dim %u: the dimension must be 1 to %u", opts->dim, NVF_MAX_DIM);
	if (opts->metric < 0 || opts->metric >= NVF_METRIC_COUNT)
		return nvf__err(NVF_EINVAL, "metric %d: unknown (an nvf_metric, 0 to %d)", opts->metric, NVF_METRIC_COUNT - 1);
	if (opts->index != NVF_INDEX_FLAT && opts->index != NVF_INDEX_HNSW)
		return nvf__err(NVF_EINVAL, "index %d: use NVF_INDEX_FLAT or NVF_INDEX_HNSW", opts->index);
	if (opts->flags & ~NVF_CREATE_ALLOW_NONFINITE)
		return nvf__err(NVF_EINVAL, "unknown create flags 0x%x", opts->flags);
	uint32_t m = opts->hnsw_m ? opts->hnsw_m : 16;
	uint32_t efc = opts->hnsw_ef_construction ? opts->hnsw_ef_construction : 200;
	uint32_t efs = opts->hnsw_ef_search ? opts->hnsw_ef_search : 64;
	if (m < 2 || m > 256)
		return nvf__err(NVF_EINVAL, "hnsw_m %u: must be 2 to 256 (0 = 16)", m);
	if (efc > NVF_MAX_EF)
		return nvf__err(NVF_EINVAL, "hnsw_ef_construction %u: must be 1 to 100000 (0 = 200)", efc);
	if (efs > NVF_MAX_EF)
		return nvf__err(NVF_EINVAL, "hnsw_ef_search %u: must be 1 to 100000 (0 = 64)", efs);
	uint8_t quant = NVF_QUANT_NONE;
	int rc = resolve_quant(opts->hnsw_quantize, opts->metric, &quant);
	if (rc != 0 || (rc = nvf__codec_check(codec, level)) != 0)
		return rc;
	if (level < INT16_MIN || level > INT16_MAX)
		return nvf__err(NVF_EINVAL, "doc_codec_level %d: out of range", level);
	if (doc_max > NVF_DOC_MAX_LIMIT)
		return nvf__err(NVF_EINVAL, "doc_max_bytes %u: at most %u (16 MiB)", doc_max, NVF_DOC_MAX_LIMIT);
	struct stat st;
	if (stat(path, &st) == 0)
		return nvf__err(NVF_EEXIST, "%s already exists", path);

	nvf_open_options o = NVF_OPEN_OPTIONS_INIT;
	o.flags = NVF__OPEN_CREATE | NVF__OPEN_EXCL | NVF__OPEN_COLLECTION;
	o.page_size = opts->page_size;
	o.durability = opts->durability;
	o.map_size = opts->map_size;
	nvf_db *db;
	if ((rc = nvf__db_open_mode(&db, path, &o, &nvf__io_posix, mode)) != 0)
		return rc;
	struct nvf_disk_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.magic = NVF_CONFIG_MAGIC;
	cfg.version = NVF_CONFIG_VERSION;
	cfg.dim = opts->dim;
	cfg.metric = (uint16_t)opts->metric;
	cfg.index = (uint16_t)opts->index;
	cfg.flags = opts->flags;
	cfg.hnsw_m = m;
	cfg.hnsw_ef_construction = efc;
	cfg.hnsw_ef_search = efs;
	cfg.seed = opts->seed ? opts->seed : 42;
	cfg.stride = vector_stride(opts->dim);
	cfg.hnsw_quant = quant;
	cfg.quant_auto = opts->hnsw_quantize == NVF_QUANT_AUTO && quant == NVF_QUANT_SQ4; /* else nothing to choose */
	cfg.doc_codec = (uint8_t)codec;
	cfg.doc_level = (int16_t)level;
	cfg.doc_max_bytes = doc_max;
	nvf_txn *txn;
	nvf_tree *t;
	nvf_array *a;
	if ((rc = nvf_txn_begin(&txn, db, 0)) == 0) {
		if ((rc = nvf__tree_open(txn, NVF_T_CONFIG, NVF_TREE_KIND_PLAIN, &t)) == 0 &&
		    (rc = nvf__tree_put(txn, &t->d, 0, &cfg, sizeof(cfg), 0, NULL)) == 0 &&
		    (rc = nvf__tree_open(txn, NVF_T_IDMAP, NVF_TREE_KIND_PLAIN, &t)) == 0 &&
		    (rc = nvf__tree_open(txn, NVF_T_FREEROWS, NVF_TREE_KIND_PLAIN, &t)) == 0 &&
		    (rc = nvf__array_open(txn, NVF_T_VECTORS, cfg.stride, VEC_CHUNK_BYTES, &a)) == 0 &&
		    (rc = nvf__array_open(txn, NVF_T_ROWIDS, 8, SMALL_CHUNK_BYTES, &a)) == 0 &&
		    (rc = nvf__array_open(txn, NVF_T_NORMS, 4, SMALL_CHUNK_BYTES, &a)) == 0 &&
		    (rc = create_meta(txn)) == 0 && (rc = create_index(txn)) == 0)
			rc = nvf_txn_commit(txn);
		else
			nvf_txn_abort(txn);
	}
	if (rc == NVF_EFULL && opts->map_size)
		rc = nvf__err(NVF_EFULL, "%s: map_size %llu is too small to create the collection; give 0 (the default, 256 GiB) or more",
			      path, (unsigned long long)opts->map_size);
	if (rc != 0) {
		nvf_db_close(db);
		unlink(path);
		char *lock = nvf__lock_path(path);
		if (lock)
			unlink(lock);
		free(lock);
		return rc;
	}
	*out = db;
	return 0;
}

/* ---- transactions for the record functions ---- */

/* With txn NULL, a function runs in a transaction of its own: committed on success
 * of a write, aborted otherwise. */
int nvf__coll_enter(nvf_db *db, nvf_txn **txn, bool write, bool *own, nvf_coll **c)
{
	int rc;
	*own = false;
	if (!db)
		return nvf__err(NVF_EINVAL, "NULL database handle");
	if (*txn) {
		if ((*txn)->db != db)
			return nvf__err(NVF_EINVAL, "the transaction belongs to another handle");
		if (write && (rc = nvf__txn_writable(*txn)) != 0)
			return rc;
		if ((*txn)->flags & NVF_TXN_F_FAILED)
			return nvf__txn_failed_err(*txn);
	} else {
		if ((rc = nvf_txn_begin(txn, db, write ? 0 : NVF_TXN_RDONLY)) != 0)
			return rc;
		*own = true;
	}
	if ((rc = nvf__coll_get(*txn, c)) != 0 && *own) {
		nvf_txn_abort(*txn);
		*txn = NULL;
		*own = false;
	}
	return rc;
}

/* Errors do not fail the caller's transaction here: validation errors come before
 * any change, and a change that fails half-way has failed it where it happened
 * (nvf__txn_fail). Only damage met in a chunk while writing is caught here. */
int nvf__coll_leave(nvf_txn *txn, bool own, bool write, int rc)
{
	/* A damaged chunk met on the way: the result cannot be trusted. */
	if (rc == 0 && (rc = nvf__arrays_err(txn)) != 0 && write)
		nvf__txn_fail(txn, rc);
	if (!own)
		return rc;
	if (rc == 0 && write)
		return nvf_txn_commit(txn);
	nvf_txn_abort(txn);
	return rc;
}

/* ---- validation ---- */

int nvf__coll_check_vector(const nvf_coll *c, const float *v, size_t dim, const char *what)
{
	if (!v)
		return nvf__err(NVF_EINVAL, "%s: NULL vector", what);
	if (dim != c->cfg.dim)
		return nvf__err(NVF_EINVAL, "%s has %zu components, the collection has dimension %u", what, dim,
				c->cfg.dim);
	bool finite_only = !(c->cfg.flags & NVF_CREATE_ALLOW_NONFINITE);
	bool jaccard = c->cfg.metric == NVF_METRIC_JACCARD;
	for (size_t i = 0; i < dim; i++) {
		if (finite_only && !isfinite(v[i]))
			return nvf__err(NVF_EINVAL, "%s: component %zu is %s (not allowed: the collection rejects non-finite values)",
					what, i, isnan(v[i]) ? "NaN" : "infinite");
		if (jaccard && v[i] < 0)
			return nvf__err(NVF_EINVAL, "%s: component %zu is negative (%g); jaccard needs non-negative vectors",
					what, i, (double)v[i]);
	}
	return 0;
}

/* ---- rows ---- */

int nvf__coll_lookup(nvf_txn *txn, nvf_coll *c, uint64_t id, uint64_t *row)
{
	nvf_val v;
	int rc = nvf__tree_get(txn, &c->idmap->d, id, &v);
	if (rc != 0)
		return rc;
	struct nvf_disk_idrec r;
	if (v.len != sizeof(r))
		return nvf__err(NVF_ECORRUPT, "id %llu: record of %llu bytes", (unsigned long long)id,
				(unsigned long long)v.len);
	memcpy(&r, v.data, sizeof(r));
	if (r.row >= nvf__array_rows(c->vec) ||
	    *(const uint64_t *)(const void *)nvf__array_row(c->rowids, r.row) != id)
		return nvf__err(NVF_ECORRUPT, "id %llu: row %llu does not point back to it", (unsigned long long)id,
				(unsigned long long)r.row);
	*row = r.row;
	return 0;
}

static int alloc_row(nvf_txn *txn, nvf_coll *c, uint64_t *row)
{
	nvf_cursor cur;
	int rc = nvf__cursor_seek(&cur, txn, &c->freerows->d, 0);
	if (rc != 0)
		return rc;
	if (cur.valid) {
		if ((rc = nvf__cursor_get(&cur, row, NULL)) != 0)
			return rc;
		return nvf__tree_del(txn, &c->freerows->d, *row);
	}
	*row = nvf__array_rows(c->vec);
	return 0;
}

static int write_row(nvf_txn *txn, nvf_coll *c, uint64_t row, uint64_t id, const float *vec)
{
	uint8_t *p;
	int rc = nvf__array_row_mut(c->vec, txn, row, &p);
	if (rc != 0)
		return rc;
	memcpy(p, vec, (size_t)c->cfg.dim * 4);
	float n2 = c->k->norm_sq(vec, c->cfg.dim);
	if ((rc = nvf__array_row_mut(c->norms, txn, row, &p)) != 0)
		return rc;
	memcpy(p, &n2, 4);
	if ((rc = nvf__array_row_mut(c->rowids, txn, row, &p)) != 0)
		return rc;
	memcpy(p, &id, 8);
	return 0;
}

/* Store vec under id, which validation found absent (exists false) or at row; the
 * row used is returned in *out_row. An existing record's node is re-linked from its
 * new position; a new row is linked by the caller (index_rows), in batches. */
static int put_record(nvf_txn *txn, nvf_coll *c, uint64_t id, const float *vec, bool exists, uint64_t row,
		      uint64_t *out_row)
{
	int rc;
	if (!exists) {
		if ((rc = alloc_row(txn, c, &row)) != 0)
			return nvf__txn_fail(txn, rc);
		struct nvf_disk_idrec r = {.row = row};
		if ((rc = nvf__tree_put(txn, &c->idmap->d, id, &r, sizeof(r), 0, NULL)) != 0)
			return nvf__txn_fail(txn, rc);
		if (id >= c->idmap->d.aux)
			c->idmap->d.aux = id + 1;
	} else if (c->hnsw && (rc = nvf__hnsw_detach(txn, c, row)) != 0) {
		return nvf__txn_fail(txn, rc);
	}
	*out_row = row;
	if ((rc = write_row(txn, c, row, id, vec)) == 0 && exists && c->hnsw &&
	    (rc = nvf__hnsw_attach(txn, c, row)) == 0)
		rc = nvf__hnsw_flush(txn, c);
	if (rc == 0 && c->meta)
		rc = exists ? nvf__meta_on_update(txn, c, row) : nvf__meta_on_insert(txn, c, row);
	return nvf__txn_fail(txn, rc);
}

/* Link written rows into the index and write back its record. */
static int index_rows(nvf_txn *txn, nvf_coll *c, const uint64_t *rows, size_t n)
{
	if (!c->hnsw)
		return 0;
	int rc = nvf__hnsw_insert(txn, c, rows, n);
	if (rc == 0)
		rc = nvf__hnsw_flush(txn, c);
	return nvf__txn_fail(txn, rc);
}

enum put_mode { PUT_ADD, PUT_UPSERT, PUT_UPDATE };

static int put_one(nvf_db *db, nvf_txn *txn, uint64_t id, const float *vec, size_t dim, enum put_mode mode)
{
	nvf_coll *c;
	bool own;
	int rc = nvf__coll_enter(db, &txn, true, &own, &c);
	if (rc != 0)
		return rc;
	uint64_t row = 0;
	if ((rc = nvf__coll_check_vector(c, vec, dim, "vector")) != 0)
		goto out;
	rc = nvf__coll_lookup(txn, c, id, &row);
	bool exists = rc == 0;
	if (rc != 0 && rc != NVF_ENOTFOUND)
		goto out;
	if (exists && mode == PUT_ADD) {
		rc = nvf__err(NVF_EEXIST, "id %llu already exists", (unsigned long long)id);
		goto out;
	}
	if (!exists && mode == PUT_UPDATE) {
		rc = nvf__err(NVF_ENOTFOUND, "no record with id %llu", (unsigned long long)id);
		goto out;
	}
	if (!exists && id == UINT64_MAX) {
		rc = nvf__err(NVF_EINVAL, "id %llu is reserved", (unsigned long long)id);
		goto out;
	}
	if ((rc = put_record(txn, c, id, vec, exists, row, &row)) == 0 && !exists)
		rc = index_rows(txn, c, &row, 1);
out:
	return nvf__coll_leave(txn, own, true, rc);
}

int nvf_add(nvf_db *db, nvf_txn *txn, uint64_t id, const float *vec, size_t dim)
{
	return put_one(db, txn, id, vec, dim, PUT_ADD);
}

int nvf_upsert(nvf_db *db, nvf_txn *txn, uint64_t id, const float *vec, size_t dim)
{
	return put_one(db, txn, id, vec, dim, PUT_UPSERT);
}

int nvf_update(nvf_db *db, nvf_txn *txn, uint64_t id, const float *vec, size_t dim)
{
	return put_one(db, txn, id, vec, dim, PUT_UPDATE);
}

int nvf_insert(nvf_db *db, nvf_txn *txn, const float *vec, size_t dim, uint64_t *out_id)
{
	uint64_t id;
	int rc = nvf_insert_batch(db, txn, vec, 1, dim, NULL, &id);
	if (rc == 0 && out_id)
		*out_id = id;
	return rc;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int nvf_insert_batch(nvf_db *db, nvf_txn *txn, const float *vecs, size_t n, size_t dim, const uint64_t *ids,
		     uint64_t *out_ids)
{
	nvf_coll *c;
	bool own;
	if (n == 0)
		return nvf__err(NVF_EINVAL, "nvf_insert_batch: n is 0 (give at least one vector)");
	if (n > NVF_MAX_BATCH)
		return nvf__err(NVF_EINVAL, "nvf_insert_batch: n %zu: at most %u vectors a call (NVF_MAX_BATCH)", (size_t)n,
				NVF_MAX_BATCH);
	if (!vecs)
		return nvf__err(NVF_EINVAL, "NULL vectors");
	int rc = nvf__coll_enter(db, &txn, true, &own, &c);
	if (rc != 0)
		return rc;
	/* Validate everything before writing anything. */
	for (size_t i = 0; i < n && rc == 0; i++) {
		char what[48] = "vector";
		if (n > 1)
			snprintf(what, sizeof(what), "vector %zu", i);
		rc = nvf__coll_check_vector(c, vecs + i * dim, dim, what);
	}
	if (rc == 0 && ids) {
		uint64_t *sorted = malloc(n * sizeof(*sorted));
		if (!sorted) {
			rc = nvf__oom();
			goto out;
		}
		memcpy(sorted, ids, n * sizeof(*sorted));
		qsort(sorted, n, sizeof(*sorted), cmp_u64);
		for (size_t i = 0; i < n && rc == 0; i++) {
			uint64_t row;
			if (sorted[i] == UINT64_MAX)
				rc = nvf__err(NVF_EINVAL, "id %llu is reserved", (unsigned long long)sorted[i]);
			else if (i > 0 && sorted[i] == sorted[i - 1])
				rc = nvf__err(NVF_EEXIST, "id %llu appears twice in the batch", (unsigned long long)sorted[i]);
			else if ((rc = nvf__coll_lookup(txn, c, sorted[i], &row)) == 0)
				rc = nvf__err(NVF_EEXIST, "id %llu already exists", (unsigned long long)sorted[i]);
			else if (rc == NVF_ENOTFOUND)
				rc = 0;
		}
		free(sorted);
	} else if (rc == 0 && c->idmap->d.aux > UINT64_MAX - 1 - n) {
		rc = nvf__err(NVF_EFULL, "no ids left for nvf_insert to assign (ids up to %llu were used); add records under explicit ids",
			      (unsigned long long)(c->idmap->d.aux - 1));
	}
	if (rc != 0)
		goto out;
	/* Rows appended at the end are made writable in one go; free slots first. */
	uint64_t end = nvf__array_rows(c->vec), need_new = n > c->freerows->d.count ? n - c->freerows->d.count : 0;
	if (need_new && ((rc = nvf__array_prepare(c->vec, txn, end, end + need_new)) != 0 ||
			 (rc = nvf__array_prepare(c->norms, txn, end, end + need_new)) != 0 ||
			 (rc = nvf__array_prepare(c->rowids, txn, end, end + need_new)) != 0 ||
			 (c->meta && (rc = nvf__array_prepare(c->meta, txn, end, end + need_new)) != 0))) {
		rc = nvf__txn_fail(txn, rc);
		goto out;
	}
	/* prepare() extended the arrays; alloc_row hands out the new rows in order. */
	c->vec->t->d.aux = c->norms->t->d.aux = c->rowids->t->d.aux = end;
	if (c->meta)
		c->meta->t->d.aux = end;
	uint64_t *rows = malloc(n * sizeof(*rows));
	if (!rows) {
		rc = nvf__txn_fail(txn, nvf__oom());
		goto out;
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		uint64_t id = ids ? ids[i] : c->idmap->d.aux;
		rc = put_record(txn, c, id, vecs + i * dim, false, 0, &rows[i]);
		if (rc == 0 && out_ids)
			out_ids[i] = id;
	}
	if (rc == 0)
		rc = index_rows(txn, c, rows, n);
	free(rows);
out:
	return nvf__coll_leave(txn, own, true, rc);
}

int nvf_get(nvf_db *db, nvf_txn *txn, uint64_t id, float *out, size_t dim)
{
	nvf_coll *c;
	bool own;
	if (!out)
		return nvf__err(NVF_EINVAL, "NULL output vector");
	int rc = nvf__coll_enter(db, &txn, false, &own, &c);
	if (rc != 0)
		return rc;
	uint64_t row;
	if (dim != c->cfg.dim)
		rc = nvf__err(NVF_EINVAL, "output has room for %zu components, the collection has dimension %u", dim,
			      c->cfg.dim);
	else if ((rc = nvf__coll_lookup(txn, c, id, &row)) == NVF_ENOTFOUND)
		rc = nvf__err(NVF_ENOTFOUND, "no record with id %llu", (unsigned long long)id);
	else if (rc == 0)
		memcpy(out, nvf__array_row(c->vec, row), dim * 4);
	return nvf__coll_leave(txn, own, false, rc);
}

int nvf_delete(nvf_db *db, nvf_txn *txn, uint64_t id)
{
	nvf_coll *c;
	bool own;
	int rc = nvf__coll_enter(db, &txn, true, &own, &c);
	if (rc != 0)
		return rc;
	uint64_t row;
	if ((rc = nvf__coll_lookup(txn, c, id, &row)) == NVF_ENOTFOUND) {
		rc = nvf__err(NVF_ENOTFOUND, "no record with id %llu", (unsigned long long)id);
		goto out;
	}
	if (rc != 0)
		goto out;
	uint8_t *p;
	uint64_t freed = NVF_ROW_FREE;
	float zero = 0;
	bool deferred = false;
	if (c->hnsw && ((rc = nvf__hnsw_remove(txn, c, row, &deferred)) != 0 || (rc = nvf__hnsw_flush(txn, c)) != 0))
		goto fail;
	if ((rc = nvf__meta_on_delete(txn, c, row, id)) != 0)
		goto fail;
	if ((rc = nvf__tree_del(txn, &c->idmap->d, id)) != 0 ||
	    (rc = nvf__array_row_mut(c->rowids, txn, row, &p)) != 0)
		goto fail;
	memcpy(p, &freed, 8);
	if ((rc = nvf__array_row_mut(c->norms, txn, row, &p)) != 0)
		goto fail;
	memcpy(p, &zero, 4);
	/* A tombstone's row is released at commit, after the graph's sweep. */
	if (!deferred && (rc = nvf__tree_put(txn, &c->freerows->d, row, NULL, 0, 0, NULL)) != 0)
		goto fail;
	goto out;
fail:
	rc = nvf__txn_fail(txn, rc);
out:
	return nvf__coll_leave(txn, own, true, rc);
}

int nvf_count(nvf_db *db, nvf_txn *txn, uint64_t *out)
{
	nvf_coll *c;
	bool own;
	int rc = nvf__coll_enter(db, &txn, false, &own, &c);
	if (rc == 0)
		*out = c->idmap->d.count;
	return nvf__coll_leave(txn, own, false, rc);
}

int nvf_contains(nvf_db *db, nvf_txn *txn, uint64_t id)
{
	nvf_coll *c;
	bool own;
	int rc = nvf__coll_enter(db, &txn, false, &own, &c);
	if (rc != 0)
		return rc;
	uint64_t row;
	rc = nvf__coll_lookup(txn, c, id, &row);
	int res = rc == 0 ? 1 : rc == NVF_ENOTFOUND ? 0 : rc;
	nvf__coll_leave(txn, own, false, 0);
	return res;
}

int nvf_db_info(nvf_db *db, nvf_txn *txn, nvf_info *out)
{
	nvf_coll *c;
	bool own;
	if (!out)
		return nvf__err(NVF_EINVAL, "NULL output");
	int rc = nvf__coll_enter(db, &txn, false, &own, &c);
	if (rc != 0)
		return rc;
	memset(out, 0, sizeof(*out));
	out->dim = c->cfg.dim;
	out->metric = c->cfg.metric;
	out->index = c->cfg.index;
	out->hnsw_m = c->cfg.hnsw_m;
	out->hnsw_ef_construction = c->cfg.hnsw_ef_construction;
	out->hnsw_ef_search = c->cfg.hnsw_ef_search;
	out->seed = c->cfg.seed;
	out->hnsw_quantize = c->cfg.hnsw_quant ? c->cfg.hnsw_quant : NVF_QUANT_NONE;
	out->flags = c->cfg.flags;
	out->count = c->idmap->d.count;
	out->next_id = c->idmap->d.aux;
	out->rows = nvf__array_rows(c->vec);
	out->page_size = db->psize;
	out->pages = txn->npages;
	out->txnid = txn->id;
	out->snapshots = txn->snapshots.count;
	struct stat st;
	if (fstat(db->fd, &st) == 0)
		out->file_size = (uint64_t)st.st_size;
	return nvf__coll_leave(txn, own, false, nvf__meta_info(txn, c, out));
}

void nvf_free(void *p)
{
	free(p);
}

/* Invariants of the collection for nvf_check(): the id map and the rows agree, free
 * rows are free, norms match their vectors, and the index's own invariants hold. */
int nvf__coll_check(nvf_txn *txn)
{
	nvf_coll *c;
	if (!(txn->db->header.flags & NVF_HEADER_COLLECTION))
		return 0; /* a bare page store */
	int rc = nvf__coll_get(txn, &c);
	if (rc != 0)
		return rc == NVF_EINVAL ? nvf__err(NVF_ECORRUPT, "the collection's configuration is missing") : rc;
	uint64_t rows = nvf__array_rows(c->vec), live = 0;
	for (uint64_t r = 0; r < rows; r++) {
		uint64_t id;
		memcpy(&id, nvf__array_row(c->rowids, r), 8);
		if (id == NVF_ROW_FREE)
			continue;
		live++;
		uint64_t back;
		if ((rc = nvf__coll_lookup(txn, c, id, &back)) != 0 || back != r)
			return nvf__err(NVF_ECORRUPT, "row %llu holds id %llu, which the id map %s",
					(unsigned long long)r, (unsigned long long)id,
					rc == 0 ? "puts in another row" : "does not have");
		float n2 = c->k->norm_sq((const float *)(const void *)nvf__array_row(c->vec, r), c->cfg.dim), stored;
		memcpy(&stored, nvf__array_row(c->norms, r), 4);
		if (isfinite(n2) && fabsf(n2 - stored) > 1e-3f * (fabsf(n2) + 1e-20f))
			return nvf__err(NVF_ECORRUPT, "row %llu: stored norm %g, the vector's is %g", (unsigned long long)r,
					(double)stored, (double)n2);
	}
	if (live != c->idmap->d.count)
		return nvf__err(NVF_ECORRUPT, "%llu rows hold records, the id map has %llu", (unsigned long long)live,
				(unsigned long long)c->idmap->d.count);
	nvf_cursor cur;
	for (rc = nvf__cursor_seek(&cur, txn, &c->freerows->d, 0); rc == 0 && cur.valid; rc = nvf__cursor_next(&cur)) {
		uint64_t r, id = 0;
		if ((rc = nvf__cursor_get(&cur, &r, NULL)) != 0)
			return rc;
		if (r < rows)
			memcpy(&id, nvf__array_row(c->rowids, r), 8);
		if (r >= rows || id != NVF_ROW_FREE)
			return nvf__err(NVF_ECORRUPT, "free-row list names row %llu, which is %s", (unsigned long long)r,
					r >= rows ? "past the end" : "in use");
	}
	if (rc != 0)
		return rc;
	if (live + c->freerows->d.count != rows)
		return nvf__err(NVF_ECORRUPT, "%llu live and %llu free rows, of %llu", (unsigned long long)live,
				(unsigned long long)c->freerows->d.count, (unsigned long long)rows);
	if (c->hnsw) {
		uint64_t bad;
		if ((rc = nvf__hnsw_check(txn, c, &bad)) != 0)
			return rc;
	}
	if ((rc = nvf__meta_check(txn, c)) != 0)
		return rc;
	return nvf__arrays_err(txn);
}

int nvf_reindex(nvf_db *db, const nvf_index_options *opts)
{
	if (!db || !opts)
		return nvf__err(NVF_EINVAL, "nvf_reindex: NULL argument");
	if (opts->version != NVF_INDEX_OPTIONS_VERSION)
		return nvf__err(NVF_EINVAL, "index options version %u, expected %u (use NVF_INDEX_OPTIONS_INIT)",
				opts->version, NVF_INDEX_OPTIONS_VERSION);
	if (opts->index != NVF_INDEX_FLAT && opts->index != NVF_INDEX_HNSW)
		return nvf__err(NVF_EINVAL, "index %d: use NVF_INDEX_FLAT or NVF_INDEX_HNSW", opts->index);
	uint32_t m = opts->hnsw_m ? opts->hnsw_m : 16;
	uint32_t efc = opts->hnsw_ef_construction ? opts->hnsw_ef_construction : 200;
	uint32_t efs = opts->hnsw_ef_search ? opts->hnsw_ef_search : 64;
	if (m < 2 || m > 256)
		return nvf__err(NVF_EINVAL, "hnsw_m %u: must be 2 to 256 (0 = 16)", m);
	if (efc > NVF_MAX_EF)
		return nvf__err(NVF_EINVAL, "hnsw_ef_construction %u: must be 1 to 100000 (0 = 200)", efc);
	if (efs > NVF_MAX_EF)
		return nvf__err(NVF_EINVAL, "hnsw_ef_search %u: must be 1 to 100000 (0 = 64)", efs);
	nvf_txn *txn = NULL;
	uint8_t quant = NVF_QUANT_NONE;
	nvf_coll *c;
	bool own;
	int rc = nvf__coll_enter(db, &txn, true, &own, &c);
	if (rc != 0)
		return rc;
	if ((rc = resolve_quant(opts->hnsw_quantize, c->cfg.metric, &quant)) != 0)
		return nvf__coll_leave(txn, own, true, rc);
	/* Empty the old graph's trees (their pages go to the free lists). */
	static const uint64_t graph[] = {NVF_T_GRAPH0, NVF_T_UPPER, NVF_T_FREEUPPER, NVF_T_HNSW, NVF_T_CODES};
	for (size_t i = 0; i < NVF_ARRAY_LEN(graph) && rc == 0; i++) {
		nvf_tree *t;
		rc = nvf__tree_open(txn, graph[i], -1, &t);
		if (rc == NVF_ENOTFOUND) {
			rc = 0;
			continue;
		}
		if (rc == 0 && (rc = nvf__tree_drop(txn, &t->d)) == 0) {
			t->d.aux = 0;
			t->d.aux32 = 0; /* an array is laid out anew: M may change */
			nvf__array_forget(txn, graph[i]);
		}
	}
	nvf__hnsw_free(c);
	/* The new configuration, then the new graph over every live row. */
	c->cfg.index = (uint16_t)opts->index;
	c->cfg.hnsw_m = m;
	c->cfg.hnsw_ef_construction = efc;
	c->cfg.hnsw_ef_search = efs;
	c->cfg.seed = opts->seed ? opts->seed : 42;
	c->cfg.hnsw_quant = quant;
	/* A new graph is measured afresh (at its commit, calib.c). */
	c->cfg.quant_auto = opts->hnsw_quantize == NVF_QUANT_AUTO && quant == NVF_QUANT_SQ4;
	c->cfg.walk = NVF_WALK_CODES;
	c->cfg.recall_codes = c->cfg.recall_float = 0;
	c->cfg.calib_nodes = 0;
	nvf_tree *cfgt;
	if (rc == 0 && (rc = nvf__tree_open(txn, NVF_T_CONFIG, -1, &cfgt)) == 0)
		rc = nvf__tree_put(txn, &cfgt->d, 0, &c->cfg, sizeof(c->cfg), 0, NULL);
	if (rc == 0 && opts->index == NVF_INDEX_HNSW) {
		uint64_t rows = nvf__array_rows(c->vec), n = 0;
		uint64_t *live = malloc((rows ? rows : 1) * sizeof(uint64_t));
		if (!live)
			rc = nvf__oom();
		for (uint64_t r = 0; rc == 0 && r < rows; r++) {
			uint64_t id;
			memcpy(&id, nvf__array_row(c->rowids, r), 8);
			if (id != NVF_ROW_FREE)
				live[n++] = r;
		}
		if (rc == 0 && (rc = nvf__hnsw_create(txn, c)) == 0) {
			if (n > 0)
				rc = nvf__hnsw_insert(txn, c, live, n);
			if (rc == 0)
				rc = nvf__hnsw_flush(txn, c);
		}
		free(live);
	}
	return nvf__coll_leave(txn, own, true, nvf__txn_fail(txn, rc));
}


/* ---- laying rows out again (compaction) ---- */

/* Row `from` of a0 (the same array as a, as this or another transaction sees it)
 * copied to row `to` of a. A row a0 never reached reads as zeros, and so does its new
 * place; where neither row is within the array (a shorter one: the metadata of an old
 * file), it is left as it is. */
static int copy_row(nvf_txn *txn, nvf_array *a, const nvf_array *a0, uint64_t from, uint64_t to)
{
	if (!a)
		return 0;
	uint64_t rows0 = a0 ? nvf__array_rows(a0) : 0;
	if (from >= rows0 && to >= nvf__array_rows(a))
		return 0;
	uint8_t *dst;
	int rc = nvf__array_row_mut(a, txn, to, &dst);
	if (rc != 0)
		return rc;
	if (from >= rows0)
		memset(dst, 0, a->stride);
	else
		memcpy(dst, nvf__array_row(a0, from), a->stride); /* read after the write access: it may move the chunk */
	return 0;
}

/* Everything a row holds but its graph node, from row `from` of base (c itself, or
 * the same state read through another transaction) to row `to` of c. */
static int copy_record(nvf_txn *txn, nvf_coll *c, const nvf_coll *base, uint64_t from, uint64_t to)
{
	int rc;
	if ((rc = copy_row(txn, c->vec, base->vec, from, to)) != 0 ||
	    (rc = copy_row(txn, c->norms, base->norms, from, to)) != 0 ||
	    (rc = copy_row(txn, c->rowids, base->rowids, from, to)) != 0)
		return rc;
	return copy_row(txn, c->meta, base->meta, from, to);
}

/* The id map: record id now lives in `row`. */
static int set_row(nvf_txn *txn, nvf_coll *c, uint64_t id, uint64_t row)
{
	nvf_val v;
	struct nvf_disk_idrec r;
	int rc = nvf__tree_get(txn, &c->idmap->d, id, &v);
	if (rc != 0 || v.len != sizeof(r))
		return rc ? rc : nvf__corrupt(0, "id %llu: record of %llu bytes", (unsigned long long)id,
					      (unsigned long long)v.len);
	memcpy(&r, v.data, sizeof(r));
	r.row = row;
	return nvf__tree_put(txn, &c->idmap->d, id, &r, sizeof(r), 0, NULL);
}

/* After the moves: no row is free, and every array ends at the live count. */
static int end_at(nvf_txn *txn, nvf_coll *c, uint64_t live)
{
	int rc = nvf__tree_drop(txn, &c->freerows->d);
	nvf_array *arrays[] = {c->vec, c->norms, c->rowids, c->meta};
	for (size_t i = 0; i < NVF_ARRAY_LEN(arrays) && rc == 0; i++)
		if (arrays[i])
			rc = nvf__array_truncate(arrays[i], txn, live);
	return rc == 0 ? nvf__arrays_err(txn) : rc;
}

int nvf__coll_pack(nvf_txn *txn, nvf_coll *c, uint64_t *moved)
{
	uint64_t rows = nvf__array_rows(c->vec), live = c->idmap->d.count;
	*moved = 0;
	if (live >= rows)
		return 0;
	/* Each free row below `live` takes the record of a live row at or above it,
	 * from the end: rows [0, live) are then all live. */
	uint64_t *to = malloc((size_t)(rows - live) * sizeof(uint64_t));
	NVF_VEC(uint64_t) holes = {0};
	if (!to)
		return nvf__oom();
	nvf_cursor cur;
	int rc;
	for (rc = nvf__cursor_seek(&cur, txn, &c->freerows->d, 0); rc == 0 && cur.valid; rc = nvf__cursor_next(&cur)) {
		uint64_t r;
		nvf_val v;
		if ((rc = nvf__cursor_get(&cur, &r, &v)) != 0)
			break;
		if (r < live && (rc = NVF_VEC_PUSH(holes, r)) != 0)
			break;
	}
	uint64_t src = rows;
	for (size_t i = 0; i < holes.n && rc == 0; i++) {
		uint64_t h = holes.v[i], id;
		do {
			src--;
			memcpy(&id, nvf__array_row(c->rowids, src), 8);
		} while (id == NVF_ROW_FREE && src > live);
		if (id == NVF_ROW_FREE || src < live) {
			rc = nvf__corrupt(0, "packing rows: fewer live rows above %llu than free rows below",
					  (unsigned long long)live);
			break;
		}
		/* Everything the row holds, then the id map. */
		if ((rc = copy_record(txn, c, c, src, h)) != 0 || (rc = nvf__hnsw_move(txn, c, src, h)) != 0 ||
		    (rc = set_row(txn, c, id, h)) != 0)
			break;
		to[src - live] = h;
		(*moved)++;
	}
	/* Links follow the moves; no free rows left; every array ends at `live`. */
	if (rc == 0)
		rc = nvf__hnsw_pack(txn, c, live, to);
	if (rc == 0)
		rc = end_at(txn, c, live);
	free(to);
	NVF_VEC_FREE(holes);
	return rc == 0 ? 0 : nvf__txn_fail(txn, rc);
}

int nvf__coll_permute(nvf_txn *txn, nvf_coll *c, nvf_coll *base, const uint64_t *old_of_new, uint64_t live)
{
	uint64_t rows = nvf__array_rows(base->vec);
	if (live != c->idmap->d.count)
		return nvf__txn_fail(txn, nvf__corrupt(0, "relayout: %llu rows ordered, %llu records",
						       (unsigned long long)live, (unsigned long long)c->idmap->d.count));
	uint64_t *new_of_old = malloc((rows ? rows : 1) * sizeof(uint64_t));
	if (!new_of_old)
		return nvf__txn_fail(txn, nvf__oom());
	memset(new_of_old, 0xff, (rows ? rows : 1) * sizeof(uint64_t));
	int rc = 0;
	for (uint64_t r = 0; r < live && rc == 0; r++) {
		if (old_of_new[r] >= rows || new_of_old[old_of_new[r]] != UINT64_MAX)
			rc = nvf__corrupt(0, "relayout: row %llu ordered twice or out of range",
					  (unsigned long long)old_of_new[r]);
		else
			new_of_old[old_of_new[r]] = r;
	}
	/* Everything a row holds, from the state before (base: the pages this
	 * transaction has not written), then the graph and the id map. */
	for (uint64_t r = 0; r < live && rc == 0; r++) {
		uint64_t from = old_of_new[r], id;
		memcpy(&id, nvf__array_row(base->rowids, from), 8);
		if ((rc = copy_record(txn, c, base, from, r)) == 0)
			rc = set_row(txn, c, id, r);
	}
	if (rc == 0)
		rc = nvf__hnsw_permute(txn, c, base, old_of_new, new_of_old, live);
	if (rc == 0)
		rc = end_at(txn, c, live);
	free(new_of_old);
	return rc == 0 ? 0 : nvf__txn_fail(txn, rc);
}
