/* Free space, by the lifetime rule.
 *
 * A run of pages written by transaction A and freed by transaction F is visible to
 * exactly the committed states A .. F-1. It may be reused once no pinned state falls
 * in that window; pins are the newest committed state, the newest durable one (a
 * crash falls back to it), every live reader and every named snapshot. So an old
 * snapshot holds back only what it can see, not every page freed after it.
 *
 * Two trees keep this across commits:
 *  - PENDING: freed runs still visible to some state, keyed by F << 24 | sequence,
 *    valued {pgno, npages, A};
 *  - FREE: runs reusable now, keyed by first page, valued by length, coalesced.
 *
 * A write transaction starts by promoting the PENDING runs whose window holds no pin
 * to an in-memory list (avail). It allocates from avail, then from the FREE tree as it
 * was committed (which it only reads; what it takes is recorded in `takes`), then
 * from the end of the file. Neither tree changes until commit: then the frees and
 * takes are folded in, and because doing so copies tree pages, which allocates and
 * frees pages in turn, this repeats until nothing new is left (LMDB's freelist save
 * loop). During that phase allocation comes only from the committed FREE tree or the
 * end of the file, whose bookkeeping the loop applies.
 */
#include "nvf_int.h"

#include <errno.h>
#include <stdlib.h>

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int cmp_ext(const void *a, const void *b)
{
	const nvf_ext *x = a, *y = b;
	return x->pgno < y->pgno ? -1 : x->pgno > y->pgno;
}

bool nvf__pinned_between(const uint64_t *pins, size_t n, uint64_t lo, uint64_t hi)
{
	if (lo > hi)
		return false;
	size_t a = 0, b = n; /* first pin >= lo */
	while (a < b) {
		size_t mid = a + (b - a) / 2;
		if (pins[mid] < lo)
			a = mid + 1;
		else
			b = mid;
	}
	return a < n && pins[a] <= hi;
}

static int collect_pins(nvf_txn *txn)
{
	nvf_db *db = txn->db;
	uint64_t *rp;
	size_t rn;
	int rc = nvf__lock_reader_pins(&db->lock, &rp, &rn);
	if (rc != 0)
		return rc;
	for (size_t i = 0; i < rn && rc == 0; i++)
		rc = NVF_VEC_PUSH(txn->pins, rp[i]);
	free(rp);
	if (rc == 0)
		rc = NVF_VEC_PUSH(txn->pins, txn->base_txnid);
	if (rc == 0 && db->durable_txnid)
		rc = NVF_VEC_PUSH(txn->pins, db->durable_txnid);
	if (rc == 0)
		rc = nvf__snapshot_pins(txn, &txn->snapshots);
	if (rc != 0)
		return rc;
	qsort(txn->pins.v, txn->pins.n, sizeof(uint64_t), cmp_u64);
	size_t k = 0;
	for (size_t i = 0; i < txn->pins.n; i++)
		if (k == 0 || txn->pins.v[k - 1] != txn->pins.v[i])
			txn->pins.v[k++] = txn->pins.v[i];
	txn->pins.n = k;
	return 0;
}

int nvf__free_begin(nvf_txn *txn)
{
	int rc = collect_pins(txn);
	if (rc != 0)
		return rc;
	nvf_cursor c;
	for (rc = nvf__cursor_seek(&c, txn, &txn->pending, 0); rc == 0 && c.valid; rc = nvf__cursor_next(&c)) {
		uint64_t key;
		nvf_val v;
		rc = nvf__cursor_get(&c, &key, &v);
		if (rc != 0)
			break;
		struct nvf_disk_pending p;
		if (v.extent || v.len != sizeof(p))
			return nvf__corrupt(c.pg[c.depth - 1], "PENDING record %llu has %llu bytes",
					    (unsigned long long)key, (unsigned long long)v.len);
		memcpy(&p, v.data, sizeof(p));
		uint64_t freed_by = key >> NVF_PENDING_SEQ_BITS;
		if (p.alloc_txnid >= freed_by || freed_by > txn->base_txnid)
			return nvf__corrupt(c.pg[c.depth - 1], "PENDING record %llu: window %llu..%llu invalid",
					    (unsigned long long)key, (unsigned long long)p.alloc_txnid,
					    (unsigned long long)freed_by);
		if (nvf__pinned_between(txn->pins.v, txn->pins.n, p.alloc_txnid, freed_by - 1))
			continue;
		nvf_ext e = {p.pgno, p.npages};
		if ((rc = NVF_VEC_PUSH(txn->avail, e)) != 0 || (rc = NVF_VEC_PUSH(txn->pend_del, key)) != 0)
			return rc;
	}
	if (rc != 0)
		return rc;
	/* Coalesce what was promoted so that multi-page requests find long runs. */
	if (txn->avail.n > 1) {
		qsort(txn->avail.v, txn->avail.n, sizeof(nvf_ext), cmp_ext);
		size_t k = 0;
		for (size_t i = 0; i < txn->avail.n; i++) {
			if (k && txn->avail.v[k - 1].pgno + txn->avail.v[k - 1].npages == txn->avail.v[i].pgno)
				txn->avail.v[k - 1].npages += txn->avail.v[i].npages;
			else
				txn->avail.v[k++] = txn->avail.v[i];
		}
		txn->avail.n = k;
	}
	return 0;
}

static nvf_take *find_take(nvf_txn *txn, uint64_t start)
{
	for (size_t i = txn->takes.n; i-- > 0;)
		if (txn->takes.v[i].start == start)
			return &txn->takes.v[i];
	return NULL;
}

static int read_run(nvf_cursor *c, uint64_t *start, uint64_t *len)
{
	nvf_val v;
	int rc = nvf__cursor_get(c, start, &v);
	if (rc != 0)
		return rc;
	if (v.extent || v.len != 8)
		return nvf__corrupt(c->pg[c->depth - 1], "FREE run %llu has a %llu-byte value",
				    (unsigned long long)*start, (unsigned long long)v.len);
	memcpy(len, v.data, 8);
	if (*len == 0)
		return nvf__corrupt(c->pg[c->depth - 1], "FREE run %llu is empty", (unsigned long long)*start);
	return 0;
}

/* Take n pages from the FREE tree as committed (txn->meta.freetree, read only). */
static int take_free(nvf_txn *txn, uint64_t n, uint64_t *out)
{
	const struct nvf_disk_tree *ft = &txn->meta.freetree;
	if (ft->count == 0 || (txn->free_fail_n && n >= txn->free_fail_n))
		return NVF_ENOTFOUND;
	/* Runs already being handed out first. */
	for (size_t i = 0; i < txn->takes.n; i++) {
		nvf_take *t = &txn->takes.v[i];
		if (t->len - t->used >= n) {
			*out = t->start + t->used;
			t->used += n;
			return 0;
		}
	}
	/* Single pages advance a cursor through the runs in page order; longer
	 * requests look for the first run long enough. */
	nvf_cursor c;
	uint64_t from = n == 1 ? txn->free_cursor : 0;
	int rc;
	for (rc = nvf__cursor_seek(&c, txn, ft, from); rc == 0 && c.valid; rc = nvf__cursor_next(&c)) {
		uint64_t start, len;
		if ((rc = read_run(&c, &start, &len)) != 0)
			return rc;
		if (start < NVF_FIRST_DATA_PAGE || start + len > txn->meta.npages)
			return nvf__corrupt(c.pg[c.depth - 1], "FREE run %llu+%llu outside the file",
					    (unsigned long long)start, (unsigned long long)len);
		if (n == 1)
			txn->free_cursor = start + 1;
		nvf_take *t = find_take(txn, start);
		if (t && t->len - t->used < n)
			continue;
		if (!t && len < n)
			continue;
		if (!t) {
			nvf_take nt = {.start = start, .len = len};
			if ((rc = NVF_VEC_PUSH(txn->takes, nt)) != 0)
				return rc;
			t = &txn->takes.v[txn->takes.n - 1];
		}
		*out = t->start + t->used;
		t->used += n;
		return 0;
	}
	if (rc != 0)
		return rc;
	if (n > 1 && (txn->free_fail_n == 0 || n < txn->free_fail_n))
		txn->free_fail_n = n;
	return NVF_ENOTFOUND;
}

/* Best fit from the in-memory list of runs reusable now. */
static bool take_avail(nvf_txn *txn, uint64_t n, uint64_t *out)
{
	nvf_ext *best = NULL;
	for (size_t i = 0; i < txn->avail.n; i++) {
		nvf_ext *e = &txn->avail.v[i];
		if (e->npages >= n && (!best || e->npages < best->npages))
			best = e;
		if (best && best->npages == n)
			break;
	}
	if (!best)
		return false;
	*out = best->pgno;
	best->pgno += n;
	best->npages -= n;
	if (best->npages == 0)
		*best = txn->avail.v[--txn->avail.n];
	return true;
}

/* Single pages fill the holes of the FREE tree from the low end; runs come first
 * from the in-memory list, which holds whole runs freed together. Either way the
 * file grows only when neither has room. */
int nvf__alloc(nvf_txn *txn, uint64_t n, uint64_t *out)
{
	nvf_db *db = txn->db;
	int rc;
	if (n > 1 && take_avail(txn, n, out))
		return 0;
	rc = take_free(txn, n, out);
	if (rc != NVF_ENOTFOUND)
		return rc;
	if (n == 1 && take_avail(txn, n, out))
		return 0;
	if (((txn->npages + n) << db->pshift) > db->mapsize || txn->npages + n < txn->npages)
		return nvf__err(NVF_EFULL,
				"%s: the file would grow past the %llu bytes this handle maps (map_size %llu given at open); "
				"open it with a larger map_size (0 = 256 GiB)",
				db->path, (unsigned long long)db->mapsize, (unsigned long long)db->map_size_given);
	*out = txn->npages;
	txn->npages += n;
	return 0;
}

/* ---- commit: fold frees and takes into the trees ---- */

/* Edits to the FREE tree put before they delete, so that the tree never empties
 * in between: emptying frees the root and re-filling allocates a new one, which in
 * the commit phase takes another page, and the loop below would never settle. */
static int free_insert(nvf_txn *txn, uint64_t start, uint64_t len)
{
	struct nvf_disk_tree *ft = &txn->freetree;
	nvf_cursor c;
	uint64_t k, l, del_pred = UINT64_MAX, del_succ = UINT64_MAX;
	int rc = nvf__cursor_seek_le(&c, txn, ft, start);
	if (rc != 0)
		return rc;
	if (c.valid) {
		if ((rc = read_run(&c, &k, &l)) != 0)
			return rc;
		if (k + l > start)
			return nvf__corrupt(start, "freed twice: pages %llu+%llu overlap free run %llu+%llu",
					    (unsigned long long)start, (unsigned long long)len,
					    (unsigned long long)k, (unsigned long long)l);
		if (k + l == start) {
			/* Extend the predecessor: same key, so its value is rewritten. */
			start = k;
			len += l;
			del_pred = k;
		}
	}
	rc = nvf__cursor_seek(&c, txn, ft, start + 1);
	if (rc != 0)
		return rc;
	if (c.valid) {
		if ((rc = read_run(&c, &k, &l)) != 0)
			return rc;
		if (k < start + len)
			return nvf__corrupt(start, "freed twice: pages %llu+%llu overlap free run %llu+%llu",
					    (unsigned long long)start, (unsigned long long)len,
					    (unsigned long long)k, (unsigned long long)l);
		if (k == start + len) {
			len += l;
			del_succ = k;
		}
	}
	(void)del_pred;
	if ((rc = nvf__tree_put(txn, ft, start, &len, 8, 0, NULL)) != 0)
		return rc;
	if (del_succ != UINT64_MAX)
		rc = nvf__tree_del(txn, ft, del_succ);
	return rc;
}

static int free_remove(nvf_txn *txn, uint64_t x, uint64_t d)
{
	struct nvf_disk_tree *ft = &txn->freetree;
	nvf_cursor c;
	uint64_t k, l;
	int rc = nvf__cursor_seek_le(&c, txn, ft, x);
	if (rc != 0)
		return rc;
	if (!c.valid)
		return nvf__corrupt(x, "allocated pages %llu+%llu are not in the FREE tree", (unsigned long long)x,
				    (unsigned long long)d);
	if ((rc = read_run(&c, &k, &l)) != 0)
		return rc;
	if (x + d > k + l)
		return nvf__corrupt(x, "allocated pages %llu+%llu exceed free run %llu+%llu", (unsigned long long)x,
				    (unsigned long long)d, (unsigned long long)k, (unsigned long long)l);
	if (x + d < k + l) {
		uint64_t right = k + l - (x + d);
		if ((rc = nvf__tree_put(txn, ft, x + d, &right, 8, 0, NULL)) != 0)
			return rc;
	}
	if (x > k) {
		uint64_t left = x - k; /* same key: rewritten in place */
		return nvf__tree_put(txn, ft, k, &left, 8, 0, NULL);
	}
	return nvf__tree_del(txn, ft, k);
}

int nvf__free_commit(nvf_txn *txn)
{
	/* One item at a time. Takes first: a page handed out from a FREE run and then
	 * freed again must leave the run before it goes back in, or it would look
	 * freed twice. The in-memory avail list goes into the FREE tree last, one run
	 * at a time, so that the tree edits before it can still allocate from it (the
	 * allocator takes only what is still in the list). */
	size_t pend_i = 0, pend_n = txn->pend_del.n;
	for (uint64_t steps = 0;; steps++) {
		int rc = 0;
		if (steps > (UINT64_C(1) << 26))
			return nvf__err(NVF_ECORRUPT, "free-space bookkeeping does not converge");
		nvf_take *t = NULL;
		for (size_t i = 0; i < txn->takes.n && !t; i++)
			if (txn->takes.v[i].used > txn->takes.v[i].applied)
				t = &txn->takes.v[i];
		if (t) {
			uint64_t from = t->start + t->applied, d = t->used - t->applied;
			t->applied = t->used;
			rc = free_remove(txn, from, d);
		} else if (pend_i < pend_n) {
			rc = nvf__tree_del(txn, &txn->pending, txn->pend_del.v[pend_i++]);
		} else if (txn->freed_done < txn->freed.n) {
			nvf_freed f = txn->freed.v[txn->freed_done++];
			if (txn->pend_seq >= (UINT64_C(1) << NVF_PENDING_SEQ_BITS))
				return nvf__err(NVF_EFULL, "more than %llu freed runs in one transaction",
						(unsigned long long)(UINT64_C(1) << NVF_PENDING_SEQ_BITS));
			uint64_t key = (txn->id << NVF_PENDING_SEQ_BITS) | txn->pend_seq++;
			struct nvf_disk_pending p = {f.pgno, f.npages, f.alloc_txnid};
			rc = nvf__tree_put(txn, &txn->pending, key, &p, sizeof(p), NVF_PUT_NOOVERWRITE, NULL);
		} else if (txn->avail.n > 0) {
			nvf_ext e = txn->avail.v[--txn->avail.n];
			rc = free_insert(txn, e.pgno, e.npages);
		} else {
			return 0;
		}
		if (rc != 0)
			return rc;
	}
}
