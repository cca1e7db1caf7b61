/* Field indexes: per indexed path, a B+tree from an order-preserving 64-bit key of
 * the value to the set of rows holding it (a posting), kept in step with every change
 * of a document in the same transaction; the planner asks them for the rows that
 * pass a predicate. docs/FORMAT.md, "Field indexes". */
#ifndef NVF_FIELDS_H
#define NVF_FIELDS_H

#include "filter.h"

#include <roaring/roaring.h>

/* FIELDS tree value (key: the index number), followed by the path's canonical text. */
struct nvf_disk_field {
	uint32_t magic;      /* NVF_FIELD_MAGIC */
	uint8_t type;        /* NVF_FIELD_* */
	uint8_t reserved[3];
	uint64_t entries;    /* (value, row) pairs in the postings */
	uint32_t path_len;
	uint32_t reserved2;
};
_Static_assert(sizeof(struct nvf_disk_field) == 24, "field record size");
#define NVF_FIELD_MAGIC UINT32_C(0x444c4946) /* "FILD" */
/* FIELDS tree key of index n's unindexed rows (a posting). */
#define NVF_FIELD_UNINDEXED (UINT64_C(1) << 63)
/* Postings of at most this many rows are a sorted u32 list; more, a roaring bitmap. */
#define NVF_POSTING_SMALL 16u

/* Debian's libroaring (0.2) frees NULL badly: these accept it. */
static inline void nvf__rb_free(roaring_bitmap_t *r)
{
	if (r)
		roaring_bitmap_free(r);
}
static inline void nvf__rb_iter_free(roaring_uint32_iterator_t *it)
{
	if (it)
		roaring_free_uint32_iterator(it);
}

int nvf__fields_open(nvf_txn *txn, nvf_coll *c, bool create);
void nvf__fields_free(nvf_coll *c);
uint32_t nvf__fields_count(const nvf_coll *c);
/* Record what a change of row's payload (old -> new, either NULL for none) does to
 * every index; applied to the trees by nvf__fields_flush (before commit, and before
 * the planner reads the indexes in the same transaction). */
int nvf__fields_change(nvf_txn *txn, nvf_coll *c, uint64_t row, const nvf_payload *old, const nvf_payload *new_pl);
int nvf__fields_flush(nvf_txn *txn, nvf_coll *c);
/* Every index against the documents (nvf_check). */
int nvf__fields_check(nvf_txn *txn, nvf_coll *c);

/* For the planner: the rows that pass filter node `node` according to the index on
 * its path, or 0 (*out untouched) if no index answers it exactly. *out is a new
 * bitmap; rows the index holds as unindexed are evaluated one by one. 1 = answered. */
int nvf__fields_answer(nvf_txn *txn, nvf_coll *c, const struct nvf_filter *f, int node, roaring_bitmap_t **out,
		       uint64_t *evals);

#endif
