/* Arrays of fixed-size rows (vectors, ids, norms, graph nodes), kept in a B+tree of
 * chunk extents (key = chunk index, value = 2^shift rows, page-aligned). A flat
 * in-memory chunk table makes a row one table lookup away:
 *     row pointer = base[row >> shift] + (row & mask) * stride
 * An entry is resolved (one B+tree lookup) the first time its chunk is touched, so
 * opening and a first query cost the same whatever the array's size. Read
 * transactions share one table per committed state through the handle; a write
 * transaction keeps its own, updated as chunks are copied. Entries are written
 * once (or, in the writer's own table, when a chunk is copied) with atomic stores:
 * threads of a batch search fill a shared table together. */
#ifndef NVF_ARRAY_H
#define NVF_ARRAY_H

#include "nvf_int.h"

/* A chunk table for one state of one array tree, shared by read transactions. */
typedef struct nvf_chunkmap {
	atomic_int refs;
	uint64_t tree_id;
	uint64_t root, root_txnid; /* identifies the tree's content */
	uint64_t nchunks;
	const uint8_t **base;      /* NULL until resolved */
	uint32_t *cap;             /* rows each extent holds */
	struct nvf_chunkmap *next;
} nvf_chunkmap;

typedef struct nvf_array {
	nvf_tree *t;        /* d.aux = rows in use; d.aux32 = stride | shift << 24 */
	uint64_t id;
	uint32_t stride;    /* bytes per row */
	uint32_t shift;     /* 2^shift rows per chunk */
	uint64_t mask;
	uint64_t nchunks;   /* chunks the rows in use span */
	const uint8_t **base;
	uint32_t *cap;
	uint8_t *dirty;     /* write transactions: the chunk's extent is writable */
	uint64_t alloc;     /* table capacity (write transactions) */
	nvf_chunkmap *shared; /* read transactions: the borrowed table */
	nvf_txn *txn;       /* for resolving entries */
	int err;            /* a chunk could not be resolved (damage): sticky */
	uint8_t *zero;      /* what an unresolvable chunk reads as */
	struct nvf_array *next;
} nvf_array;

#define NVF_ARRAY_MAX_STRIDE (UINT32_C(1) << 24)

/* Open (or create, in a write transaction, if stride != 0) array tree `id`.
 * chunk_bytes: target size of a chunk (a power-of-two number of rows near it). */
int nvf__array_open(nvf_txn *txn, uint64_t id, uint32_t stride, uint32_t chunk_bytes, nvf_array **out);

static inline uint64_t nvf__array_rows(const nvf_array *a)
{
	return a->t->d.aux;
}

/* Resolve chunk k's table entry. On damage, sets a->err and returns a zeroed
 * stand-in, so that the caller reads garbage instead of crashing; operations check
 * nvf__arrays_err() before they report success. */
const uint8_t *nvf__array_resolve(nvf_array *a, uint64_t k);

/* Shrink to `rows` rows (compaction): the chunks past the end are freed, the rows
 * past the end in the last one zeroed. */
int nvf__array_truncate(nvf_array *a, nvf_txn *txn, uint64_t rows);

/* Pointer to row `row` (< rows) for reading. */
static inline const uint8_t *nvf__array_row(const nvf_array *a, uint64_t row)
{
	uint64_t k = row >> a->shift;
	const uint8_t *b = __atomic_load_n(&a->base[k], __ATOMIC_ACQUIRE);
	if (NVF_UNLIKELY(!b))
		b = nvf__array_resolve((nvf_array *)(uintptr_t)a, k);
	return b + (row & a->mask) * a->stride;
}

/* Writable row; rows up to it are added (zeroed) if it is past the end. */
int nvf__array_row_mut(nvf_array *a, nvf_txn *txn, uint64_t row, uint8_t **out);

/* Make rows [from, to) writable at once (before a parallel section writes them). */
int nvf__array_prepare(nvf_array *a, nvf_txn *txn, uint64_t from, uint64_t to);

/* Rows of chunk `chunk` in use, of nrows in all. */
static inline uint64_t nvf__array_chunk_rows(const nvf_array *a, uint64_t chunk, uint64_t nrows)
{
	uint64_t first = chunk << a->shift;
	uint64_t n = nrows - first;
	uint64_t full = a->mask + 1;
	return n < full ? n : full;
}

/* Base pointer of chunk k (resolved if need be), for streaming a chunk's rows. */
static inline const uint8_t *nvf__array_chunk(const nvf_array *a, uint64_t k)
{
	return nvf__array_row(a, k << a->shift);
}

/* NVF_ECORRUPT (with its message) if an array of the transaction met damage. */
int nvf__arrays_err(nvf_txn *txn);

void nvf__array_release_all(nvf_txn *txn);
void nvf__chunkmap_cache_free(nvf_db *db);
/* Drop a transaction's view of an array (its tree was emptied and is laid out anew). */
void nvf__array_forget(nvf_txn *txn, uint64_t id);

#endif
