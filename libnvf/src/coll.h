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
	/* 7..: the HNSW graph, metadata (later versions) */
};

#define NVF_ROW_FREE UINT64_MAX
#define NVF_CONFIG_MAGIC UINT32_C(0x4346564e) /* "NVFC" */
#define NVF_CONFIG_VERSION 1u

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
	uint8_t reserved[19];
};
_Static_assert(sizeof(struct nvf_disk_config) == 64, "config size");

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
} nvf_coll;

void nvf__coll_free(nvf_coll *c);

/* The collection as txn sees it (cached in the transaction). */
int nvf__coll_get(nvf_txn *txn, nvf_coll **out);

/* Scores: what search ranks by (smaller is nearer), turned into the reported
 * distance at the end (euclidean: squared -> root; angular: cosine -> angle). */
float nvf__score_to_distance(int metric, float score);
float nvf__distance_to_score(int metric, float distance);

/* Score of the query against one row. qnorm2 = |q|^2. */
float nvf__score_row(const nvf_coll *c, const float *q, float qnorm2, uint64_t row);

/* Validation of a vector for this collection (length, finiteness, sign). */
int nvf__coll_check_vector(const nvf_coll *c, const float *v, size_t dim, const char *what);

/* A search's filter: only ids for which fn returns non-zero. */
typedef struct nvf_filter {
	int (*fn)(uint64_t id, void *ctx);
	void *ctx;
} nvf_filter;

/* Exact search (flat.c). flt may be NULL. */
int nvf__flat_search(nvf_txn *txn, nvf_coll *c, const float *q, size_t k, int threads, const nvf_filter *flt,
		     nvf_result *out, size_t *nout);
int nvf__flat_search_batch(nvf_txn *txn, nvf_coll *c, const float *qs, size_t nq, size_t k, int threads,
			   const nvf_filter *flt, nvf_result *out, size_t *nouts);
int nvf__flat_range(nvf_txn *txn, nvf_coll *c, const float *q, float radius, const nvf_filter *flt,
		    nvf_result **out, size_t *nout);

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
