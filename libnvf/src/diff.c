/* Diff between two states of a database (a snapshot, the current state): the ids
 * added, removed, and changed in vector or in document/tags.
 *
 * Pages never change once committed, so two states share every page they both
 * reach, and a page belongs to a state iff that state's tree leads to it from the
 * page's smallest key at its level (nvf__tree_page_at). Walking each tree of one
 * state while skipping the pages the other state has visits only what differs: the
 * keys of the leaves that differ, in time proportional to the change. The record
 * arrays (META, ROWIDS, VECTORS) give the rows whose chunks differ; each of those rows
 * is compared in both states; the DOCS tree gives the ids whose documents or tags
 * differ. */
#include "nvf_int.h"
#include "coll.h"

#include <stdlib.h>

typedef NVF_VEC(uint64_t) u64vec;

/* Same value in both trees (extents: the same pages, as copy-on-write writes a
 * changed value elsewhere). */
static bool same_val(const nvf_val *a, const nvf_val *b)
{
	if (a->extent != b->extent || a->len != b->len)
		return false;
	if (a->extent)
		return a->ref.pgno == b->ref.pgno && a->ref.checksum == b->ref.checksum;
	return memcmp(a->data, b->data, (size_t)a->len) == 0;
}

/* A key whose value differs in the other tree (or is not there). */
static int key_differs(void *ctx, uint64_t pgno, uint64_t key, const nvf_val *v, const nvf_val *ov)
{
	(void)pgno;
	u64vec *out = ctx;
	return ov && same_val(v, ov) ? 0 : NVF_VEC_PUSH(*out, key);
}

/* Keys that differ between trees a and b, both ways (sorted, each once). */
static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
	return a < b ? -1 : a > b;
}

static void sort_unique(u64vec *v)
{
	if (v->n > 1)
		qsort(v->v, v->n, sizeof(uint64_t), cmp_u64);
	size_t k = 0;
	for (size_t i = 0; i < v->n; i++)
		if (k == 0 || v->v[k - 1] != v->v[i])
			v->v[k++] = v->v[i];
	v->n = k;
}

static int tree_diff(nvf_txn *txn, const struct nvf_disk_tree *a, const struct nvf_disk_tree *b, u64vec *out)
{
	nvf_unshared_ops ops = {NULL, key_differs, out};
	int rc = 0;
	if (a->root)
		rc = nvf__tree_unshared(txn, a->root, a->depth, b, &ops);
	if (rc == 0 && b->root)
		rc = nvf__tree_unshared(txn, b->root, b->depth, a, &ops);
	sort_unique(out);
	return rc;
}

/* Rows of the chunks (keys) of array x, as [first, last] ranges pushed in pairs. */
static int chunk_rows(const u64vec *chunks, const nvf_array *x, u64vec *ranges)
{
	int rc = 0;
	for (size_t i = 0; i < chunks->n && rc == 0; i++) {
		uint64_t lo = chunks->v[i] << x->shift, hi = lo + x->mask;
		if ((rc = NVF_VEC_PUSH(*ranges, lo)) == 0)
			rc = NVF_VEC_PUSH(*ranges, hi);
	}
	return rc;
}

static uint64_t row_id(const nvf_array *ids, uint64_t row)
{
	if (row >= nvf__array_rows(ids))
		return NVF_ROW_FREE;
	uint64_t id;
	memcpy(&id, nvf__array_row(ids, row), 8);
	return id;
}

typedef struct {
	uint64_t id, row;
} idrow;

static int cmp_idrow(const void *x, const void *y)
{
	const idrow *a = x, *b = y;
	return a->id < b->id ? -1 : a->id > b->id;
}

static int cmp_entry(const void *x, const void *y)
{
	const nvf_diff_entry *a = x, *b = y;
	return a->id < b->id ? -1 : a->id > b->id;
}

static bool in_sorted(const u64vec *v, uint64_t x)
{
	size_t a = 0, b = v->n;
	while (a < b) {
		size_t m = a + (b - a) / 2;
		if (v->v[m] < x)
			a = m + 1;
		else
			b = m;
	}
	return a < v->n && v->v[a] == x;
}

int nvf_diff(nvf_db *db, nvf_txn *from, nvf_txn *to, nvf_diff_entry **out, size_t *nout)
{
	if (!db || !from || !to || !out || !nout)
		return nvf__err(NVF_EINVAL, "nvf_diff: NULL argument");
	if (from->db != db || to->db != db)
		return nvf__err(NVF_EINVAL, "nvf_diff: the transactions belong to another handle");
	if ((from->flags & NVF_TXN_F_WRITE) || (to->flags & NVF_TXN_F_WRITE))
		return nvf__err(NVF_EINVAL, "nvf_diff compares committed states: give read transactions "
					    "(nvf_txn_begin with NVF_TXN_RDONLY, or nvf_txn_begin_snapshot)");
	nvf_coll *ca, *cb;
	int rc = nvf__coll_get(from, &ca);
	if (rc == 0)
		rc = nvf__coll_get(to, &cb);
	if (rc != 0)
		return rc;
	if (ca->cfg.dim != cb->cfg.dim)
		return nvf__err(NVF_EINVAL, "nvf_diff: the states have dimensions %u and %u", ca->cfg.dim, cb->cfg.dim);
	/* Both states' pages are pinned: read them through the newer state, whose
	 * high-water mark covers the older one's (it never drops within a file) and
	 * whose page checks accept both states' writers. */
	nvf_txn *txn = from->id >= to->id ? from : to;
	u64vec keys = {0}, ranges = {0}, docs = {0};
	NVF_VEC(idrow) gone = {0}, came = {0};
	NVF_VEC(nvf_diff_entry) res = {0};
	const nvf_array *arr[3][2] = {{ca->meta, cb->meta}, {ca->rowids, cb->rowids}, {ca->vec, cb->vec}};
	for (int i = 0; i < 3 && rc == 0; i++) {
		if (!arr[i][0] || !arr[i][1])
			continue; /* a file from before metadata has no META array */
		keys.n = 0;
		if ((rc = tree_diff(txn, &arr[i][0]->t->d, &arr[i][1]->t->d, &keys)) == 0)
			rc = chunk_rows(&keys, arr[i][0], &ranges);
	}
	if (rc == 0 && ca->docs && cb->docs)
		rc = tree_diff(txn, &ca->docs->d, &cb->docs->d, &docs);
	/* Each row in a differing chunk, once (ranges sorted by start, merged). */
	size_t nr = ranges.n / 2;
	if (rc == 0 && nr > 1)
		qsort(ranges.v, nr, 2 * sizeof(uint64_t), cmp_u64); /* by the first of each pair */
	uint64_t done = 0; /* rows below are compared already */
	size_t stride = (size_t)ca->cfg.dim * sizeof(float);
	for (size_t i = 0; i < nr && rc == 0; i++) {
		uint64_t lo = ranges.v[2 * i], hi = ranges.v[2 * i + 1];
		if (lo < done)
			lo = done;
		for (uint64_t r = lo; r <= hi && rc == 0; r++) {
			uint64_t ia = row_id(ca->rowids, r), ib = row_id(cb->rowids, r);
			if (ia == NVF_ROW_FREE && ib == NVF_ROW_FREE) {
				if (r >= nvf__array_rows(ca->rowids) && r >= nvf__array_rows(cb->rowids))
					break;
				continue;
			}
			if (ia == ib) {
				unsigned what = 0;
				if (memcmp(nvf__array_row(ca->vec, r), nvf__array_row(cb->vec, r), stride) != 0)
					what |= NVF_DIFF_VECTOR;
				if (in_sorted(&docs, ia))
					what |= NVF_DIFF_DOC;
				if (what)
					rc = NVF_VEC_PUSH(res, ((nvf_diff_entry){ia, what}));
				continue;
			}
			if (ia != NVF_ROW_FREE)
				rc = NVF_VEC_PUSH(gone, ((idrow){ia, r}));
			if (rc == 0 && ib != NVF_ROW_FREE)
				rc = NVF_VEC_PUSH(came, ((idrow){ib, r}));
		}
		if (hi + 1 > done)
			done = hi + 1;
	}
	/* An id that left one row and arrived at another (deleted and added again in
	 * between) changed; the others were removed or added. */
	if (rc == 0) {
		if (gone.n > 1)
			qsort(gone.v, gone.n, sizeof(idrow), cmp_idrow);
		if (came.n > 1)
			qsort(came.v, came.n, sizeof(idrow), cmp_idrow);
		size_t i = 0, j = 0;
		while (rc == 0 && (i < gone.n || j < came.n)) {
			if (j == came.n || (i < gone.n && gone.v[i].id < came.v[j].id)) {
				rc = NVF_VEC_PUSH(res, ((nvf_diff_entry){gone.v[i++].id, NVF_DIFF_REMOVED}));
			} else if (i == gone.n || came.v[j].id < gone.v[i].id) {
				rc = NVF_VEC_PUSH(res, ((nvf_diff_entry){came.v[j++].id, NVF_DIFF_ADDED}));
			} else {
				unsigned what = 0;
				if (memcmp(nvf__array_row(ca->vec, gone.v[i].row), nvf__array_row(cb->vec, came.v[j].row),
					   stride) != 0)
					what |= NVF_DIFF_VECTOR;
				if (in_sorted(&docs, gone.v[i].id))
					what |= NVF_DIFF_DOC;
				if (what)
					rc = NVF_VEC_PUSH(res, ((nvf_diff_entry){gone.v[i].id, what}));
				i++;
				j++;
			}
		}
	}
	/* Ids whose document or tags alone changed sit in rows of unchanged chunks
	 * only if their META row did not change: it always does (version), so every
	 * DOCS difference was met above. */
	if (rc == 0 && (rc = nvf__arrays_err(from)) == 0)
		rc = nvf__arrays_err(to);
	NVF_VEC_FREE(keys);
	NVF_VEC_FREE(ranges);
	NVF_VEC_FREE(docs);
	NVF_VEC_FREE(gone);
	NVF_VEC_FREE(came);
	if (rc != 0) {
		NVF_VEC_FREE(res);
		return rc;
	}
	if (res.n > 1)
		qsort(res.v, res.n, sizeof(nvf_diff_entry), cmp_entry);
	if (!res.v && !(res.v = malloc(sizeof(nvf_diff_entry))))
		return nvf__oom();
	*out = res.v;
	*nout = res.n;
	return 0;
}
