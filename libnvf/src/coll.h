/* The collection: the trees and arrays a database's records live in. */
#ifndef NVF_COLL_H
#define NVF_COLL_H

#include "array.h"
#include "distance.h"

/* Catalog tree ids. */
enum {
	NVF_T_CONFIG = 1,   /* key 0: struct nvf_disk_config */
	NVF_T_IDMAP = 2,    /* id -> struct nvf_disk_idrec; desc.aux = next id */
	NVF_T_VECTORS = 3,  /* array: row -> float[dim], rows 64-byte aligned */
	NVF_T_ROWIDS = 4,   /* array: row -> u64 id, NVF_ROW_FREE for a free slot */
	NVF_T_NORMS = 5,    /* array: row -> float |x|^2 */
	NVF_T_FREEROWS = 6, /* free row -> nothing */
	/* 7..10: the HNSW graph (hnsw.h) */
	NVF_T_META = 11,    /* array: row -> struct nvf_disk_recmeta (config version 2) */
	NVF_T_DOCS = 12,    /* id -> record header + payload (tags, document): codec.h */
	NVF_T_FIELDS = 13,  /* field indexes: number -> struct nvf_disk_field + path (fields.c) */
	NVF_T_DICTS = 14,   /* zstd dictionaries: id -> dictionary bytes */
	NVF_T_FIELD_BASE = 1024, /* + field index number: its postings tree */
};

#define NVF_ROW_FREE UINT64_MAX
#define NVF_CONFIG_MAGIC UINT32_C(0x4346564e) /* "NVFC" */
#define NVF_CONFIG_VERSION 2u /* 2: record metadata, documents, field indexes */

struct nvf_disk_config {
	uint32_t magic;
	uint32_t version;
	uint32_t dim;
	uint16_t metric;
	uint16_t index;
	uint32_t flags;     /* NVF_CREATE_* */
	uint32_t hnsw_m;
	uint32_t hnsw_ef_construction;
	uint32_t hnsw_ef_search;
	uint64_t seed;
	uint32_t stride;    /* bytes per vector row */
	uint8_t hnsw_quant; /* NVF_QUANT_NONE or NVF_QUANT_SQ4: the graph's copy of the vectors */
	/* Version 2 (zero in version 1 files: no compression, the default limit): */
	uint8_t doc_codec;  /* NVF_CODEC_* of stored documents */
	int16_t doc_level;  /* zstd level, 0 = 3 */
	uint32_t doc_max_bytes; /* largest document (JSON bytes), 0 = NVF_DOC_DEFAULT_MAX */
	/* The walk's calibration (hnsw.c): with quant_auto, how searches walk by
	 * default is measured on the data, not fixed by the metric (zero in older
	 * files: they walk as hnsw_quant says). */
	uint8_t quant_auto;     /* 1: hnsw_quantize was NVF_QUANT_AUTO */
	uint8_t walk;           /* NVF_WALK_CODES (0) or NVF_WALK_FLOAT */
	uint16_t recall_codes;  /* recall@10 at the default ef on the codes, x 10000, at the last calibration */
	uint16_t recall_float;  /* the same walking on float32 */
	uint16_t reserved2;
	uint32_t calib_nodes;   /* graph nodes at the last calibration (0: none yet) */
};
_Static_assert(sizeof(struct nvf_disk_config) == 64, "config size");
_Static_assert(offsetof(struct nvf_disk_config, doc_codec) == 45 && offsetof(struct nvf_disk_config, doc_max_bytes) == 48 &&
		       offsetof(struct nvf_disk_config, calib_nodes) == 60,
	       "config layout");

/* META array row: what the engine keeps beside every record. */
struct nvf_disk_recmeta {
	uint64_t created_us; /* UTC microseconds */
	uint64_t updated_us;
	uint64_t txnid;      /* the transaction of the last change */
	uint32_t version;    /* 1 at creation, +1 per transaction that changes the record */
	uint32_t flags;      /* NVF_RECMETA_* */
};
_Static_assert(sizeof(struct nvf_disk_recmeta) == 32, "record meta size");
#define NVF_RECMETA_PAYLOAD 0x1u /* the DOCS tree holds an entry (tags or a document) */

/* IDMAP value. flags and reserved leave room for per-record metadata. */
struct nvf_disk_idrec {
	uint64_t row;
	uint32_t flags;
	uint32_t reserved;
};
_Static_assert(sizeof(struct nvf_disk_idrec) == 16, "id record size");

typedef struct nvf_coll {
	struct nvf_disk_config cfg;
	nvf_tree *idmap;
	nvf_tree *freerows;
	nvf_array *vec, *rowids, *norms;
	const nvf_kernels *k;
	struct nvf_hnsw *hnsw; /* the graph, for NVF_INDEX_HNSW (hnsw.c) */
	/* Metadata (meta.c): NULL in a version 1 file until its first write. */
	nvf_array *meta;
	nvf_tree *docs, *dicts;
	struct nvf_fields *fields; /* field indexes and their pending changes (fields.c) */
	int64_t doc_stored_delta, doc_raw_delta; /* this transaction's change of the totals */
	uint64_t train_next;       /* zstd-dict: no training before this many documents */
} nvf_coll;

void nvf__coll_free(nvf_coll *c);

/* Compaction: move the records of the rows above the live count into the free rows
 * below it (vectors, norms, ids, metadata, graph nodes; links renamed), so that every
 * array ends at the live count. Field indexes hold rows: the caller rebuilds them. */
int nvf__coll_pack(nvf_txn *txn, nvf_coll *c, uint64_t *moved);

/* Compaction of an HNSW collection: lay the live records out in a locality order.
 * nvf__layout_order (layout.c) computes it from a collection c as txn sees it:
 * *order (malloc'd) lists the live rows, *n of them. nvf__coll_permute then rewrites
 * txn's collection so that row r holds what row old_of_new[r] of base (the same
 * state, read through another transaction: it is read while txn writes) held:
 * vectors, norms, ids, metadata, graph nodes with every link renamed, the id map;
 * free rows are gone and every array ends at live. Field indexes hold rows: the
 * caller rebuilds them. */
int nvf__layout_order(nvf_txn *txn, nvf_coll *c, uint64_t **order, uint64_t *n);
int nvf__coll_permute(nvf_txn *txn, nvf_coll *c, nvf_coll *base, const uint64_t *old_of_new, uint64_t live);

/* The collection as txn sees it (cached in the transaction). */
int nvf__coll_get(nvf_txn *txn, nvf_coll **out);

/* Scores: what search ranks by (smaller is nearer), turned into the reported
 * distance at the end (euclidean: squared -> root; angular: cosine -> angle). */
float nvf__score_to_distance(int metric, float score);
float nvf__distance_to_score(int metric, float distance);

/* Score of the query against one row. qnorm2 = |q|^2. */
float nvf__score_row(const nvf_coll *c, const float *q, float qnorm2, uint64_t row);

/* The record functions' frame (coll.c), for the other modules' public calls: a
 * transaction (the caller's, or one of their own that leave() commits or aborts) and
 * the collection; leave() reports damage met in arrays. */
int nvf__coll_enter(nvf_db *db, nvf_txn **txn, bool write, bool *own, nvf_coll **c);
int nvf__coll_leave(nvf_txn *txn, bool own, bool write, int rc);
/* The row of id: 0, NVF_ENOTFOUND, or NVF_ECORRUPT. */
int nvf__coll_lookup(nvf_txn *txn, nvf_coll *c, uint64_t id, uint64_t *row);

/* Validation of a vector for this collection (length, finiteness, sign). */
int nvf__coll_check_vector(const nvf_coll *c, const float *v, size_t dim, const char *what);

/* Exact search (flat.c). flt (a row predicate, planner.h) may be NULL. */
struct nvf_rowpred;
int nvf__flat_search(nvf_txn *txn, nvf_coll *c, const float *q, size_t k, int threads, const struct nvf_rowpred *flt,
		     nvf_result *out, size_t *nout);
int nvf__flat_search_batch(nvf_txn *txn, nvf_coll *c, const float *qs, size_t nq, size_t k, int threads,
			   const struct nvf_rowpred *flt, nvf_result *out, size_t *nouts);
int nvf__flat_range(nvf_txn *txn, nvf_coll *c, const float *q, float radius, const struct nvf_rowpred *flt,
		    nvf_result **out, size_t *nout);
/* Exact search over the given rows only (a filter's set, ascending). */
int nvf__flat_search_rows(nvf_txn *txn, nvf_coll *c, const float *q, size_t k, const uint32_t *rows, size_t n,
			  nvf_result *out, size_t *nout);

/* Bounded max-heap of the k best (score, id) so far. */
typedef struct nvf_topk {
	size_t k, n;
	nvf_result *h; /* distance holds the score while searching */
} nvf_topk;

static inline bool nvf__topk_worse(float sa, uint64_t ia, float sb, uint64_t ib)
{
	return sa > sb || (sa == sb && ia > ib);
}

static inline void nvf__topk_push(nvf_topk *t, float score, uint64_t id)
{
	nvf_result *h = t->h;
	if (t->n < t->k) {
		size_t i = t->n++;
		while (i > 0) {
			size_t p = (i - 1) / 2;
			if (!nvf__topk_worse(score, id, h[p].distance, h[p].id))
				break;
			h[i] = h[p];
			i = p;
		}
		h[i].distance = score;
		h[i].id = id;
		return;
	}
	if (!nvf__topk_worse(h[0].distance, h[0].id, score, id))
		return;
	size_t i = 0, n = t->n;
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		float ms = score;
		uint64_t mi = id;
		if (l < n && nvf__topk_worse(h[l].distance, h[l].id, ms, mi)) {
			m = l;
			ms = h[l].distance;
			mi = h[l].id;
		}
		if (r < n && nvf__topk_worse(h[r].distance, h[r].id, ms, mi))
			m = r;
		if (m == i)
			break;
		h[i] = h[m];
		i = m;
	}
	h[i].distance = score;
	h[i].id = id;
}

/* Sort the heap nearest first and convert scores to reported distances. */
void nvf__topk_finish(nvf_topk *t, int metric);

#endif
