/* Copy-on-write B+tree: u64 key -> value, values inline in the leaf or, when large or
 * asked for, in an extent of whole pages referenced (with its checksum) from the
 * leaf cell, so that they can be read in place with page alignment.
 *
 * Every change copies the path from the root to the leaf (pages already written by
 * this transaction are changed in place); the old pages stay untouched for readers
 * of older states and are handed to the free-space manager. */
#include "nvf_int.h"

#include <errno.h>
#include <stdlib.h>

#define HDR ((uint32_t)sizeof(struct nvf_disk_page))
#define CELL_HDR ((uint32_t)sizeof(struct nvf_disk_cell))
#define EXTREF ((uint32_t)sizeof(struct nvf_disk_extref))
#define SPILL_MIN (UINT64_C(64) << 10) /* values this large given whole skip the dirty copy */

static inline struct nvf_disk_page *ph(const uint8_t *p)
{
	return (struct nvf_disk_page *)(uintptr_t)p;
}

static inline uint16_t *offs(const uint8_t *p)
{
	return (uint16_t *)(uintptr_t)(p + HDR);
}

static inline struct nvf_disk_branch_ent *ents(const uint8_t *p)
{
	return (struct nvf_disk_branch_ent *)(uintptr_t)(p + HDR);
}

static inline struct nvf_disk_cell *cell_at(const uint8_t *p, int i)
{
	return (struct nvf_disk_cell *)(uintptr_t)(p + offs(p)[i]);
}

static inline uint32_t align8(uint64_t x)
{
	return (uint32_t)((x + 7) & ~(uint64_t)7);
}

static inline uint32_t cell_size(const struct nvf_disk_cell *c)
{
	return align8(CELL_HDR + ((c->flags & NVF_CELL_EXTENT) ? EXTREF : c->vlen));
}

static uint32_t branch_cap(uint32_t psize)
{
	return (psize - HDR) / (uint32_t)sizeof(struct nvf_disk_branch_ent);
}

uint32_t nvf__tree_max_inline(const nvf_db *db)
{
	/* At least four cells fit a leaf, so a split always leaves both halves legal. */
	return ((db->psize - HDR) / 4 - CELL_HDR - 2) & ~7u;
}

/* Per-transaction scratch for rebuilding pages: a page copy and a cell list. */
typedef struct cellref {
	const uint8_t *p;
	uint32_t size;
} cellref;

static int scratch(nvf_txn *txn, uint8_t **page, cellref **cells)
{
	if (!txn->scratch) {
		uint32_t ps = txn->db->psize;
		txn->scratch = malloc(2 * (size_t)ps + (size_t)(ps / 8 + 4) * sizeof(cellref));
		if (!txn->scratch)
			return nvf__err(-ENOMEM, "out of memory");
	}
	*page = txn->scratch;
	if (cells)
		*cells = (cellref *)(void *)(txn->scratch + 2 * (size_t)txn->db->psize);
	return 0;
}

/* ---- reading and validating pages ---- */

/* A tree page of the expected type, its header and bounds checked so that nothing
 * below can read outside it however the bytes are damaged. */
static int tpage(nvf_txn *txn, uint64_t pgno, uint16_t type, const uint8_t **out)
{
	const uint8_t *p;
	int rc = nvf__page_ref(txn, pgno, 1, &p);
	if (rc != 0)
		return rc;
	const struct nvf_disk_page *h = ph(p);
	uint32_t ps = txn->db->psize;
	if (NVF_UNLIKELY(h->pgno != pgno))
		return nvf__corrupt(pgno, "header names page %llu", (unsigned long long)h->pgno);
	if (NVF_UNLIKELY(h->type != type))
		return nvf__corrupt(pgno, "type 0x%04x, expected a %s page", h->type,
				    type == NVF_PAGE_LEAF ? "leaf" : "branch");
	if (NVF_UNLIKELY(h->txnid == 0 || h->txnid > txn->id))
		return nvf__corrupt(pgno, "written by transaction %llu, state is %llu", (unsigned long long)h->txnid,
				    (unsigned long long)txn->id);
	if (NVF_UNLIKELY(h->nkeys == 0))
		return nvf__corrupt(pgno, "empty tree page");
	if ((rc = nvf__verify_page(txn, pgno, p)) != 0)
		return rc;
	if (type == NVF_PAGE_LEAF) {
		if (NVF_UNLIKELY(h->upper > ps || h->upper < HDR + 2u * h->nkeys))
			return nvf__corrupt(pgno, "leaf with %u keys has cell area at %u", h->nkeys, h->upper);
	} else if (NVF_UNLIKELY(h->nkeys > branch_cap(ps))) {
		return nvf__corrupt(pgno, "branch with %u keys, at most %u fit", h->nkeys, branch_cap(ps));
	}
	*out = p;
	return 0;
}

/* Cell i of a validated leaf, its extent (if any) bounds-checked. */
static int leaf_cell(nvf_txn *txn, uint64_t pgno, const uint8_t *p, int i, const struct nvf_disk_cell **out)
{
	uint32_t ps = txn->db->psize, o = offs(p)[i];
	if (NVF_UNLIKELY(o < ph(p)->upper || o > ps - CELL_HDR || (o & 7)))
		return nvf__corrupt(pgno, "cell %d at offset %u outside the cell area", i, o);
	const struct nvf_disk_cell *c = cell_at(p, i);
	if (NVF_UNLIKELY(o + cell_size(c) > ps || ((c->flags & NVF_CELL_EXTENT) && c->vlen != EXTREF) ||
			 (c->flags & ~NVF_CELL_EXTENT)))
		return nvf__corrupt(pgno, "cell %d (key %llu) overruns the page", i, (unsigned long long)c->key);
	*out = c;
	return 0;
}

static int cell_val(nvf_txn *txn, uint64_t pgno, const struct nvf_disk_cell *c, nvf_val *out)
{
	memset(out, 0, sizeof(*out));
	if (!(c->flags & NVF_CELL_EXTENT)) {
		out->data = (const uint8_t *)(c + 1);
		out->len = c->vlen;
		return 0;
	}
	memcpy(&out->ref, c + 1, sizeof(out->ref));
	if (NVF_UNLIKELY(out->ref.txnid == 0 || out->ref.txnid > txn->id))
		return nvf__corrupt(pgno, "key %llu: extent written by transaction %llu, state is %llu",
				    (unsigned long long)c->key, (unsigned long long)out->ref.txnid,
				    (unsigned long long)txn->id);
	uint64_t np = nvf__pages_for(txn->db, out->ref.len);
	int rc = nvf__page_ref(txn, out->ref.pgno, np ? np : 1, &out->data);
	if (rc != 0) {
		nvf__errmsg_prefix("leaf page %llu, key %llu", (unsigned long long)pgno, (unsigned long long)c->key);
		return rc;
	}
	if (((txn->db->open_flags & NVF_OPEN_VERIFY) || (txn->flags & NVF_TXN_F_VERIFY)) &&
	    (rc = nvf__verify_extent(txn, &out->ref, out->data)) != 0) {
		nvf__errmsg_prefix("leaf page %llu, key %llu", (unsigned long long)pgno, (unsigned long long)c->key);
		return rc;
	}
	out->len = out->ref.len;
	out->extent = true;
	return 0;
}

/* A version of a page is known good once its checksum matched: pages are never
 * rewritten in place (copy-on-write), and a page reused later carries its new
 * writer's txnid, which the table does not hold yet. The write transaction's own
 * pages have no checksum until its commit and are not checked. */
int nvf__verify_page(nvf_txn *txn, uint64_t pgno, const uint8_t *p)
{
	const struct nvf_disk_page *h = ph(p);
	if ((txn->flags & NVF_TXN_F_WRITE) && h->txnid == txn->id)
		return 0;
	_Atomic uint64_t *seen = &txn->db->verified[pgno];
	if (atomic_load_explicit(seen, memory_order_relaxed) == h->txnid)
		return 0;
	if (NVF_UNLIKELY(nvf__page_checksum(p, txn->db->psize) != h->checksum))
		return nvf__corrupt(pgno, "checksum mismatch (%s page, verified on first read)",
				    h->type == NVF_PAGE_LEAF ? "leaf" : "branch");
	atomic_store_explicit(seen, h->txnid, memory_order_relaxed);
	return 0;
}

int nvf__verify_extent(nvf_txn *txn, const struct nvf_disk_extref *ref, const uint8_t *data)
{
	if ((txn->flags & NVF_TXN_F_WRITE) && ref->txnid == txn->id)
		return 0;
	_Atomic uint64_t *seen = &txn->db->verified[ref->pgno];
	if (atomic_load_explicit(seen, memory_order_relaxed) == ref->txnid)
		return 0;
	uint64_t np = nvf__pages_for(txn->db, ref->len);
	if (NVF_UNLIKELY(nvf__extent_checksum(data, np ? np : 1, txn->db->psize, ref->pgno, ref->txnid) != ref->checksum))
		return nvf__corrupt(ref->pgno, "extent of %llu bytes fails its checksum (verified on first read)",
				    (unsigned long long)ref->len);
	atomic_store_explicit(seen, ref->txnid, memory_order_relaxed);
	return 0;
}

static int leaf_search(const uint8_t *p, uint64_t key)
{
	int lo = 0, hi = ph(p)->nkeys;
	while (lo < hi) {
		int mid = (lo + hi) / 2;
		if (cell_at(p, mid)->key < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int branch_search(const uint8_t *p, uint64_t key)
{
	const struct nvf_disk_branch_ent *e = ents(p);
	int lo = 1, hi = ph(p)->nkeys; /* largest i with e[i].key <= key, else 0 */
	while (lo < hi) {
		int mid = (lo + hi) / 2;
		if (e[mid].key <= key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo - 1;
}

static inline uint16_t level_type(int level)
{
	return level == 1 ? NVF_PAGE_LEAF : NVF_PAGE_BRANCH;
}

/* Leaf cells are validated by leaf_search's callers lazily: validate all offsets of a
 * leaf once when we first descend into it. */
static int leaf_validate(nvf_txn *txn, uint64_t pgno, const uint8_t *p)
{
	const struct nvf_disk_cell *c;
	for (int i = 0; i < ph(p)->nkeys; i++) {
		int rc = leaf_cell(txn, pgno, p, i, &c);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static int descend(nvf_txn *txn, const struct nvf_disk_tree *t, uint64_t key, uint64_t *leaf_pg, const uint8_t **leaf)
{
	uint64_t pg = t->root;
	if (t->depth == 0 || t->depth > NVF_MAX_DEPTH)
		return nvf__corrupt(pg, "tree depth %u", t->depth);
	for (int level = t->depth; level > 1; level--) {
		const uint8_t *p;
		int rc = tpage(txn, pg, NVF_PAGE_BRANCH, &p);
		if (rc != 0)
			return rc;
		pg = ents(p)[branch_search(p, key)].child;
	}
	int rc = tpage(txn, pg, NVF_PAGE_LEAF, leaf);
	if (rc == 0)
		rc = leaf_validate(txn, pg, *leaf);
	*leaf_pg = pg;
	return rc;
}

/* leaf_search for a lookup: only the cells the binary search reads are checked (the
 * rest of the page is not needed), the one found in full. A point lookup in a leaf of
 * 128 cells checks 8 of them instead of 128. */
static int leaf_lookup(nvf_txn *txn, uint64_t pgno, const uint8_t *p, uint64_t key, const struct nvf_disk_cell **out)
{
	uint32_t ps = txn->db->psize, upper = ph(p)->upper;
	int lo = 0, hi = ph(p)->nkeys;
	while (lo < hi) {
		int mid = (lo + hi) / 2;
		uint32_t o = offs(p)[mid];
		if (NVF_UNLIKELY(o < upper || o > ps - CELL_HDR || (o & 7)))
			return nvf__corrupt(pgno, "cell %d at offset %u outside the cell area", mid, o);
		if (cell_at(p, mid)->key < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo >= ph(p)->nkeys)
		return NVF_ENOTFOUND;
	int rc = leaf_cell(txn, pgno, p, lo, out);
	if (rc == 0 && (*out)->key != key)
		rc = NVF_ENOTFOUND;
	return rc;
}

int nvf__tree_get(nvf_txn *txn, const struct nvf_disk_tree *t, uint64_t key, nvf_val *out)
{
	if (t->root == 0)
		return NVF_ENOTFOUND;
	uint64_t pg = t->root;
	if (t->depth == 0 || t->depth > NVF_MAX_DEPTH)
		return nvf__corrupt(pg, "tree depth %u", t->depth);
	const uint8_t *p;
	int rc;
	for (int level = t->depth; level > 1; level--) {
		if ((rc = tpage(txn, pg, NVF_PAGE_BRANCH, &p)) != 0)
			return rc;
		pg = ents(p)[branch_search(p, key)].child;
	}
	const struct nvf_disk_cell *c = NULL;
	if ((rc = tpage(txn, pg, NVF_PAGE_LEAF, &p)) != 0 || (rc = leaf_lookup(txn, pg, p, key, &c)) != 0)
		return rc;
	return cell_val(txn, pg, c, out);
}

/* The page at `level` (1 = leaves) on the path to key in t, 0 if t is shallower:
 * under copy-on-write a page belongs to a state iff it is where its smallest key
 * leads at its level (restore and diff compare states this way). */
int nvf__tree_page_at(nvf_txn *txn, const struct nvf_disk_tree *t, uint64_t key, int level, uint64_t *out)
{
	*out = 0;
	if (t->root == 0 || t->depth < level)
		return 0;
	if (t->depth > NVF_MAX_DEPTH)
		return nvf__corrupt(t->root, "tree depth %u", t->depth);
	uint64_t pg = t->root;
	const uint8_t *p;
	int rc;
	for (int l = t->depth; l > level; l--) {
		if ((rc = tpage(txn, pg, NVF_PAGE_BRANCH, &p)) != 0)
			return rc;
		pg = ents(p)[branch_search(p, key)].child;
	}
	*out = pg;
	return 0;
}

/* The smallest key under page pgno at `level`. */
int nvf__tree_page_min(nvf_txn *txn, uint64_t pgno, int level, uint64_t *key)
{
	const uint8_t *p;
	int rc;
	for (; level > 1; level--) {
		if ((rc = tpage(txn, pgno, NVF_PAGE_BRANCH, &p)) != 0)
			return rc;
		pgno = ents(p)[0].child;
	}
	if ((rc = tpage(txn, pgno, NVF_PAGE_LEAF, &p)) != 0)
		return rc;
	if (ph(p)->nkeys == 0)
		return nvf__corrupt(pgno, "empty leaf inside a tree");
	*key = cell_at(p, 0)->key;
	return 0;
}

int nvf__tree_unshared(nvf_txn *txn, uint64_t pgno, int level, const struct nvf_disk_tree *o,
			const nvf_unshared_ops *ops)
{
	uint64_t kmin, there;
	int rc = nvf__tree_page_min(txn, pgno, level, &kmin);
	if (rc == 0)
		rc = nvf__tree_page_at(txn, o, kmin, level, &there);
	if (rc != 0 || there == pgno)
		return rc; /* shared, and all below it */
	const uint8_t *p;
	if ((rc = tpage(txn, pgno, level == 1 ? NVF_PAGE_LEAF : NVF_PAGE_BRANCH, &p)) != 0)
		return rc;
	if (ops->page && (rc = ops->page(ops->ctx, pgno, ph(p)->txnid)) != 0)
		return rc;
	if (level > 1) {
		uint16_t nk = ph(p)->nkeys;
		for (uint16_t i = 0; i < nk && rc == 0; i++)
			rc = nvf__tree_unshared(txn, ents(p)[i].child, level - 1, o, ops);
		return rc;
	}
	nvf_cursor cur;
	struct nvf_disk_tree one = {.root = pgno, .depth = 1};
	for (rc = nvf__cursor_seek(&cur, txn, &one, 0); rc == 0 && cur.valid; rc = nvf__cursor_next(&cur)) {
		uint64_t key;
		nvf_val v, ov;
		if ((rc = nvf__cursor_get(&cur, &key, &v)) != 0)
			break;
		int orc = nvf__tree_get(txn, o, key, &ov);
		if (orc != 0 && orc != NVF_ENOTFOUND)
			return orc;
		if ((rc = ops->entry(ops->ctx, pgno, key, &v, orc == 0 ? &ov : NULL)) != 0)
			break;
	}
	return rc;
}

/* ---- copy-on-write ---- */

static int touch(nvf_txn *txn, uint64_t pgno, uint16_t type, uint8_t **out, uint64_t *newpg)
{
	nvf_dirty *d = nvf__dirty_find(txn, pgno);
	if (d) {
		if (d->npages != 1 || ph(d->buf)->type != type)
			return nvf__corrupt(pgno, "dirty page is not a tree page of the expected type");
		*out = d->buf;
		*newpg = pgno;
		return 0;
	}
	const uint8_t *src;
	int rc = tpage(txn, pgno, type, &src);
	if (rc == 0 && type == NVF_PAGE_LEAF)
		rc = leaf_validate(txn, pgno, src);
	if (rc != 0)
		return rc;
	uint64_t np;
	uint8_t *buf;
	if ((rc = nvf__page_new(txn, 1, &np, &buf)) != 0)
		return rc;
	memcpy(buf, src, txn->db->psize);
	struct nvf_disk_page *h = ph(buf);
	uint64_t old_txn = ph(src)->txnid;
	h->pgno = np;
	h->txnid = txn->id;
	h->checksum = 0;
	if ((rc = nvf__page_free(txn, pgno, 1, old_txn)) != 0)
		return rc;
	*out = buf;
	*newpg = np;
	return 0;
}

static int new_tree_page(nvf_txn *txn, uint16_t type, uint8_t **out, uint64_t *pg)
{
	int rc = nvf__page_new(txn, 1, pg, out);
	if (rc != 0)
		return rc;
	struct nvf_disk_page *h = ph(*out);
	h->pgno = *pg;
	h->txnid = txn->id;
	h->type = type;
	h->nkeys = 0;
	h->upper = type == NVF_PAGE_LEAF ? txn->db->psize : 0;
	return 0;
}

/* ---- leaf rebuilding ---- */

static uint32_t leaf_used(const uint8_t *p)
{
	uint32_t u = 0;
	for (int i = 0; i < ph(p)->nkeys; i++)
		u += 2 + cell_size(cell_at(p, i));
	return u;
}

/* Lay out cells [from, to) into page p (header kept). Sources must not be in p. */
static void leaf_build(uint8_t *p, uint32_t psize, const cellref *cells, int from, int to)
{
	uint32_t upper = psize;
	uint16_t *o = offs(p);
	int n = 0;
	for (int i = from; i < to; i++, n++) {
		upper -= cells[i].size;
		memcpy(p + upper, cells[i].p, cells[i].size);
		o[n] = (uint16_t)upper;
	}
	ph(p)->nkeys = (uint16_t)n;
	ph(p)->upper = upper;
	memset(p + HDR + 2u * (uint32_t)n, 0, upper - HDR - 2u * (uint32_t)n);
}

typedef struct splitres {
	bool split;
	uint64_t sep;
	uint64_t right;
} splitres;

/* Rebuild leaf p (page pg) from its cells with cell `skip` dropped and `ins` placed at
 * index `at` (either may be absent: skip < 0, ins NULL); split if it does not fit. */
static int leaf_rewrite(nvf_txn *txn, uint8_t *p, int skip, int at, const uint8_t *ins, uint32_t ins_size,
			splitres *sp)
{
	uint32_t ps = txn->db->psize;
	uint8_t *tmp;
	cellref *cells;
	int rc = scratch(txn, &tmp, &cells);
	if (rc != 0)
		return rc;
	memcpy(tmp, p, ps);
	int n = ph(tmp)->nkeys;
	int k = 0;
	uint32_t total = 0;
	bool appended = at == n && skip < 0;
	for (int i = 0; i <= n; i++) {
		if (ins && i == at) {
			cells[k++] = (cellref){ins, ins_size};
			total += 2 + ins_size;
		}
		if (i == n)
			break;
		if (i == skip)
			continue;
		const struct nvf_disk_cell *c = cell_at(tmp, i);
		cells[k] = (cellref){(const uint8_t *)c, cell_size(c)};
		total += 2 + cells[k].size;
		k++;
	}
	if (total <= ps - HDR) {
		leaf_build(p, ps, cells, 0, k);
		sp->split = false;
		return 0;
	}
	/* Split. Appending at the end (ascending ids, array chunks) keeps the left page
	 * full and starts the right one with the new cell, so sequential loads pack
	 * pages densely; otherwise split by bytes in half. */
	int m;
	if (appended && ins) {
		m = k - 1;
	} else {
		uint32_t acc = 0;
		for (m = 0; m < k - 1; m++) {
			if (acc + 2 + cells[m].size > total / 2 && m > 0)
				break;
			acc += 2 + cells[m].size;
		}
	}
	uint8_t *r;
	uint64_t rpg;
	if ((rc = new_tree_page(txn, NVF_PAGE_LEAF, &r, &rpg)) != 0)
		return rc;
	leaf_build(p, ps, cells, 0, m);
	leaf_build(r, ps, cells, m, k);
	sp->split = true;
	sp->sep = cell_at(r, 0)->key;
	sp->right = rpg;
	return 0;
}

/* Insert entry (key, child) at index `at` of branch p; split if full. */
static int branch_insert(nvf_txn *txn, uint8_t *p, int at, uint64_t key, uint64_t child, splitres *sp)
{
	uint32_t cap = branch_cap(txn->db->psize);
	int n = ph(p)->nkeys;
	struct nvf_disk_branch_ent *e = ents(p);
	sp->split = false;
	if ((uint32_t)n < cap) {
		memmove(&e[at + 1], &e[at], (size_t)(n - at) * sizeof(*e));
		e[at].key = key;
		e[at].child = child;
		ph(p)->nkeys = (uint16_t)(n + 1);
		return 0;
	}
	struct nvf_disk_branch_ent *all = malloc((size_t)(n + 1) * sizeof(*all));
	if (!all)
		return nvf__oom();
	memcpy(all, e, (size_t)at * sizeof(*e));
	all[at].key = key;
	all[at].child = child;
	memcpy(&all[at + 1], &e[at], (size_t)(n - at) * sizeof(*e));
	int m = at == n ? n : (n + 1) / 2;
	uint8_t *r;
	uint64_t rpg;
	int rc = new_tree_page(txn, NVF_PAGE_BRANCH, &r, &rpg);
	if (rc == 0) {
		memset(p + HDR, 0, txn->db->psize - HDR);
		memcpy(ents(p), all, (size_t)m * sizeof(*all));
		ph(p)->nkeys = (uint16_t)m;
		memcpy(ents(r), &all[m], (size_t)(n + 1 - m) * sizeof(*all));
		ph(r)->nkeys = (uint16_t)(n + 1 - m);
		sp->split = true;
		sp->sep = all[m].key;
		sp->right = rpg;
	}
	free(all);
	return rc;
}

/* ---- put ---- */

typedef struct putarg {
	struct nvf_disk_tree *t;
	uint64_t key;
	const void *data;
	uint64_t len;
	unsigned flags;
	uint8_t **reserve;
	bool added;
} putarg;

static int make_cell(nvf_txn *txn, putarg *a, uint8_t *cell, uint32_t *size)
{
	struct nvf_disk_cell *c = (struct nvf_disk_cell *)cell;
	c->key = a->key;
	bool ext = (a->flags & NVF_PUT_EXTENT) || a->len > nvf__tree_max_inline(txn->db);
	if (!ext) {
		c->vlen = (uint32_t)a->len;
		c->flags = 0;
		*size = align8(CELL_HDR + a->len);
		memset(cell + CELL_HDR, 0, *size - CELL_HDR);
		if (a->data)
			memcpy(cell + CELL_HDR, a->data, a->len);
		if (a->reserve) /* inline: caller gets a pointer only after the rewrite */
			*a->reserve = NULL;
		return 0;
	}
	int rc;
	if (a->data && !a->reserve && a->len >= SPILL_MIN) {
		/* Large value given whole: straight to the file. */
		uint64_t epg, sum;
		if ((rc = nvf__page_spill(txn, a->data, a->len, &epg, &sum)) != 0)
			return rc;
		struct nvf_disk_extref ref = {.pgno = epg, .len = a->len, .txnid = txn->id, .checksum = sum};
		c->vlen = EXTREF;
		c->flags = NVF_CELL_EXTENT;
		memcpy(cell + CELL_HDR, &ref, sizeof(ref));
		*size = CELL_HDR + EXTREF;
		return 0;
	}
	uint64_t np = nvf__pages_for(txn->db, a->len);
	if (np == 0)
		np = 1;
	uint64_t epg;
	uint8_t *ebuf;
	rc = nvf__page_new(txn, np, &epg, &ebuf);
	if (rc != 0)
		return rc;
	if (a->data)
		memcpy(ebuf, a->data, a->len);
	if (a->reserve)
		*a->reserve = ebuf;
	nvf_fixup f = {a->t, a->key, epg};
	if ((rc = NVF_VEC_PUSH(txn->fixups, f)) != 0)
		return rc;
	struct nvf_disk_extref ref = {.pgno = epg, .len = a->len, .txnid = txn->id, .checksum = 0};
	c->vlen = EXTREF;
	c->flags = NVF_CELL_EXTENT;
	memcpy(cell + CELL_HDR, &ref, sizeof(ref));
	*size = CELL_HDR + EXTREF;
	return 0;
}

static int free_cell_extent(nvf_txn *txn, const struct nvf_disk_cell *c)
{
	if (!(c->flags & NVF_CELL_EXTENT))
		return 0;
	struct nvf_disk_extref ref;
	memcpy(&ref, c + 1, sizeof(ref));
	uint64_t np = nvf__pages_for(txn->db, ref.len);
	return nvf__page_free(txn, ref.pgno, np ? np : 1, ref.txnid);
}

static int leaf_put(nvf_txn *txn, uint8_t *p, putarg *a, splitres *sp)
{
	uint8_t cell[CELL_HDR + NVF_MAX_PAGE / 4 + 8];
	uint32_t size;
	int i = leaf_search(p, a->key);
	bool exists = i < ph(p)->nkeys && cell_at(p, i)->key == a->key;
	/* The new value first: the caller's data may live in the old extent. */
	int rc = make_cell(txn, a, cell, &size);
	if (rc != 0)
		return rc;
	if (exists && (rc = free_cell_extent(txn, cell_at(p, i))) != 0)
		return rc;
	a->added = !exists;
	return leaf_rewrite(txn, p, exists ? i : -1, i, cell, size, sp);
}

static int put_rec(nvf_txn *txn, uint64_t pgno, int level, putarg *a, uint64_t *newpg, splitres *sp)
{
	uint8_t *p;
	int rc = touch(txn, pgno, level_type(level), &p, newpg);
	if (rc != 0)
		return rc;
	if (level == 1)
		return leaf_put(txn, p, a, sp);
	int i = branch_search(p, a->key);
	uint64_t child = ents(p)[i].child, nc;
	splitres csp = {0};
	if ((rc = put_rec(txn, child, level - 1, a, &nc, &csp)) != 0)
		return rc;
	ents(p)[i].child = nc;
	sp->split = false;
	if (csp.split)
		return branch_insert(txn, p, i + 1, csp.sep, csp.right, sp);
	return 0;
}

int nvf__tree_put(nvf_txn *txn, struct nvf_disk_tree *t, uint64_t key, const void *data, uint64_t len,
		  unsigned flags, uint8_t **reserve)
{
	int rc = nvf__txn_writable(txn);
	if (rc != 0)
		return rc;
	if (len > UINT32_MAX && !(flags & NVF_PUT_EXTENT))
		flags |= NVF_PUT_EXTENT;
	if (flags & NVF_PUT_NOOVERWRITE) {
		nvf_val v;
		rc = nvf__tree_get(txn, t, key, &v);
		if (rc == 0)
			return NVF_EEXIST;
		if (rc != NVF_ENOTFOUND)
			return nvf__txn_fail(txn, rc);
	}
	putarg a = {.t = t, .key = key, .data = data, .len = len, .flags = flags, .reserve = reserve};
	if (t->root == 0) {
		uint8_t *p;
		uint64_t pg;
		uint8_t cell[CELL_HDR + NVF_MAX_PAGE / 4 + 8];
		uint32_t size;
		if ((rc = new_tree_page(txn, NVF_PAGE_LEAF, &p, &pg)) != 0 ||
		    (rc = make_cell(txn, &a, cell, &size)) != 0)
			return nvf__txn_fail(txn, rc);
		cellref cr = {cell, size};
		leaf_build(p, txn->db->psize, &cr, 0, 1);
		t->root = pg;
		t->depth = 1;
		t->count = 1;
	} else {
		uint64_t newroot;
		splitres sp = {0};
		if ((rc = put_rec(txn, t->root, t->depth, &a, &newroot, &sp)) != 0)
			return nvf__txn_fail(txn, rc);
		t->root = newroot;
		if (sp.split) {
			if (t->depth >= NVF_MAX_DEPTH)
				return nvf__txn_fail(txn, nvf__err(NVF_EFULL, "tree depth limit"));
			uint8_t *r;
			uint64_t rpg;
			if ((rc = new_tree_page(txn, NVF_PAGE_BRANCH, &r, &rpg)) != 0)
				return nvf__txn_fail(txn, rc);
			struct nvf_disk_branch_ent *e = ents(r);
			e[0].key = 0;
			e[0].child = newroot;
			e[1].key = sp.sep;
			e[1].child = sp.right;
			ph(r)->nkeys = 2;
			t->root = rpg;
			t->depth++;
		}
		if (a.added)
			t->count++;
	}
	if (reserve && *reserve == NULL) {
		/* Inline value: point at it in its (dirty) leaf. */
		nvf_val v;
		if ((rc = nvf__tree_get(txn, t, key, &v)) != 0)
			return nvf__txn_fail(txn, rc);
		*reserve = (uint8_t *)(uintptr_t)v.data;
	}
	return 0;
}

/* ---- delete ---- */

enum { DEL_OK = 0, DEL_UNDER = 1, DEL_EMPTY = 2 };

static int page_state(const nvf_db *db, const uint8_t *p, int level)
{
	int n = ph(p)->nkeys;
	if (n == 0)
		return DEL_EMPTY;
	uint32_t used = level == 1 ? leaf_used(p) : (uint32_t)n * (uint32_t)sizeof(struct nvf_disk_branch_ent);
	return used < (db->psize - HDR) / 4 ? DEL_UNDER : DEL_OK;
}

/* Merge child `i` of branch p with a sibling if both fit in one page. */
static int try_merge(nvf_txn *txn, uint8_t *p, int i, int level)
{
	int n = ph(p)->nkeys;
	if (n < 2)
		return 0;
	int l = i + 1 < n ? i : i - 1, r = l + 1;
	struct nvf_disk_branch_ent *e = ents(p);
	uint16_t type = level_type(level);
	uint32_t ps = txn->db->psize;
	const uint8_t *rp;
	int rc = tpage(txn, e[r].child, type, &rp);
	if (rc != 0)
		return rc;
	uint8_t *lp;
	uint64_t lpg;
	const uint8_t *lro;
	if ((rc = tpage(txn, e[l].child, type, &lro)) != 0)
		return rc;
	if (type == NVF_PAGE_LEAF) {
		if ((rc = leaf_validate(txn, e[r].child, rp)) != 0)
			return rc;
		if (leaf_used(lro) + leaf_used(rp) > ps - HDR)
			return 0;
	} else if ((uint32_t)(ph(lro)->nkeys + ph(rp)->nkeys) > branch_cap(ps)) {
		return 0;
	}
	if ((rc = touch(txn, e[l].child, type, &lp, &lpg)) != 0)
		return rc;
	e[l].child = lpg;
	/* rp is still readable: freeing it below only queues it (or, if dirty, it is
	 * copied from before the free). */
	if (type == NVF_PAGE_LEAF) {
		int ln = ph(lp)->nkeys, rn = ph(rp)->nkeys;
		uint8_t *tmp;
		cellref *cells;
		if ((rc = scratch(txn, &tmp, &cells)) != 0)
			return rc;
		memcpy(tmp, lp, ps);
		memcpy(tmp + ps, rp, ps);
		for (int k = 0; k < ln; k++) {
			const struct nvf_disk_cell *c = cell_at(tmp, k);
			cells[k] = (cellref){(const uint8_t *)c, cell_size(c)};
		}
		for (int k = 0; k < rn; k++) {
			const struct nvf_disk_cell *c = cell_at(tmp + ps, k);
			cells[ln + k] = (cellref){(const uint8_t *)c, cell_size(c)};
		}
		leaf_build(lp, ps, cells, 0, ln + rn);
	} else {
		int ln = ph(lp)->nkeys, rn = ph(rp)->nkeys;
		struct nvf_disk_branch_ent *le = ents(lp);
		memcpy(&le[ln], ents(rp), (size_t)rn * sizeof(*le));
		le[ln].key = e[r].key; /* the right page's -infinity becomes the separator */
		ph(lp)->nkeys = (uint16_t)(ln + rn);
	}
	if ((rc = nvf__page_free(txn, e[r].child, 1, ph(rp)->txnid)) != 0)
		return rc;
	memmove(&e[r], &e[r + 1], (size_t)(n - r - 1) * sizeof(*e));
	memset(&e[n - 1], 0, sizeof(*e));
	ph(p)->nkeys = (uint16_t)(n - 1);
	return 0;
}

static int del_rec(nvf_txn *txn, uint64_t pgno, int level, uint64_t key, uint64_t *newpg, int *state)
{
	uint8_t *p;
	int rc = touch(txn, pgno, level_type(level), &p, newpg);
	if (rc != 0)
		return rc;
	if (level == 1) {
		int i = leaf_search(p, key);
		if (i >= ph(p)->nkeys || cell_at(p, i)->key != key)
			return nvf__corrupt(*newpg, "key %llu vanished during delete", (unsigned long long)key);
		if ((rc = free_cell_extent(txn, cell_at(p, i))) != 0)
			return rc;
		splitres sp;
		if ((rc = leaf_rewrite(txn, p, i, -1, NULL, 0, &sp)) != 0)
			return rc;
		*state = page_state(txn->db, p, 1);
		return 0;
	}
	int i = branch_search(p, key), cs;
	uint64_t nc;
	if ((rc = del_rec(txn, ents(p)[i].child, level - 1, key, &nc, &cs)) != 0)
		return rc;
	struct nvf_disk_branch_ent *e = ents(p);
	e[i].child = nc;
	if (cs == DEL_EMPTY) {
		int n = ph(p)->nkeys;
		if ((rc = nvf__page_free(txn, nc, 1, txn->id)) != 0)
			return rc;
		memmove(&e[i], &e[i + 1], (size_t)(n - i - 1) * sizeof(*e));
		memset(&e[n - 1], 0, sizeof(*e));
		ph(p)->nkeys = (uint16_t)(n - 1);
	} else if (cs == DEL_UNDER) {
		if ((rc = try_merge(txn, p, i, level - 1)) != 0)
			return rc;
	}
	*state = page_state(txn->db, p, level);
	return 0;
}

int nvf__tree_del(nvf_txn *txn, struct nvf_disk_tree *t, uint64_t key)
{
	int rc = nvf__txn_writable(txn);
	if (rc != 0)
		return rc;
	nvf_val v;
	rc = nvf__tree_get(txn, t, key, &v);
	if (rc != 0)
		return rc == NVF_ENOTFOUND ? rc : nvf__txn_fail(txn, rc);
	uint64_t newroot;
	int st;
	if ((rc = del_rec(txn, t->root, t->depth, key, &newroot, &st)) != 0)
		return nvf__txn_fail(txn, rc);
	t->root = newroot;
	t->count--;
	if (st == DEL_EMPTY) {
		if ((rc = nvf__page_free(txn, t->root, 1, txn->id)) != 0)
			return nvf__txn_fail(txn, rc);
		t->root = 0;
		t->depth = 0;
		return 0;
	}
	/* A root branch with one child is replaced by the child. */
	while (t->depth > 1) {
		nvf_dirty *d = nvf__dirty_find(txn, t->root);
		if (!d || ph(d->buf)->nkeys != 1)
			break;
		uint64_t child = ents(d->buf)[0].child;
		if ((rc = nvf__page_free(txn, t->root, 1, txn->id)) != 0)
			return nvf__txn_fail(txn, rc);
		t->root = child;
		t->depth--;
	}
	return 0;
}

int nvf__tree_extent_mut(nvf_txn *txn, struct nvf_disk_tree *t, uint64_t key, uint8_t **out, uint64_t *len)
{
	int rc = nvf__txn_writable(txn);
	if (rc != 0)
		return rc;
	nvf_val v;
	if ((rc = nvf__tree_get(txn, t, key, &v)) != 0)
		return rc == NVF_ENOTFOUND ? rc : nvf__txn_fail(txn, rc);
	if (!v.extent)
		return nvf__err(NVF_EINVAL, "key %llu is not stored in an extent", (unsigned long long)key);
	*len = v.len;
	if (v.ref.txnid == txn->id) {
		nvf_dirty *d = nvf__dirty_find(txn, v.ref.pgno);
		if (d && d->buf) {
			*out = d->buf;
			return 0;
		}
		/* Spilled: no writable copy; copy-on-write below makes one (the
		 * spilled pages go back to this transaction's free runs). */
	}
	/* The old extent's pages are not reused in this transaction, so v.data stays
	 * valid while put copies it into the new one. */
	return nvf__txn_fail(txn, nvf__tree_put(txn, t, key, v.data, v.len, NVF_PUT_EXTENT, out));
}

static int drop_rec(nvf_txn *txn, uint64_t pgno, int level)
{
	const uint8_t *p;
	int rc = tpage(txn, pgno, level_type(level), &p);
	if (rc != 0)
		return rc;
	if (level == 1) {
		if ((rc = leaf_validate(txn, pgno, p)) != 0)
			return rc;
		for (int i = 0; i < ph(p)->nkeys && rc == 0; i++)
			rc = free_cell_extent(txn, cell_at(p, i));
	} else {
		for (int i = 0; i < ph(p)->nkeys && rc == 0; i++)
			rc = drop_rec(txn, ents(p)[i].child, level - 1);
	}
	if (rc == 0)
		rc = nvf__page_free(txn, pgno, 1, ph(p)->txnid);
	return rc;
}

int nvf__tree_drop(nvf_txn *txn, struct nvf_disk_tree *t)
{
	int rc = nvf__txn_writable(txn);
	if (rc != 0)
		return rc;
	if (t->root && (rc = drop_rec(txn, t->root, t->depth)) != 0)
		return nvf__txn_fail(txn, rc);
	t->root = 0;
	t->depth = 0;
	t->count = 0;
	return 0;
}

int nvf__tree_fix_checksums(nvf_txn *txn)
{
	for (size_t i = 0; i < txn->fixups.n; i++) {
		nvf_fixup *f = &txn->fixups.v[i];
		if (f->tree->root == 0)
			continue;
		uint64_t pg = 0;
		const uint8_t *leaf;
		int rc = descend(txn, f->tree, f->key, &pg, &leaf);
		if (rc != 0)
			return rc;
		int k = leaf_search(leaf, f->key);
		if (k >= ph(leaf)->nkeys || cell_at(leaf, k)->key != f->key)
			continue; /* deleted since */
		struct nvf_disk_cell *c = cell_at(leaf, k);
		if (!(c->flags & NVF_CELL_EXTENT))
			continue;
		struct nvf_disk_extref ref;
		memcpy(&ref, c + 1, sizeof(ref));
		if (ref.pgno != f->pgno)
			continue; /* replaced since */
		nvf_dirty *ext = nvf__dirty_find(txn, ref.pgno);
		if (!ext || !nvf__dirty_find(txn, pg))
			return nvf__corrupt(pg, "extent %llu written this transaction is not dirty",
					    (unsigned long long)ref.pgno);
		ref.checksum = nvf__extent_checksum(ext->buf, ext->npages, txn->db->psize, ref.pgno, ref.txnid);
		memcpy(c + 1, &ref, sizeof(ref));
	}
	txn->fixups.n = 0;
	return 0;
}

/* ---- cursors ---- */

static int cur_fill_down(nvf_cursor *c, int from, bool rightmost)
{
	for (int i = from; i < c->depth; i++) {
		const uint8_t *parent;
		int rc = tpage(c->txn, c->pg[i - 1], NVF_PAGE_BRANCH, &parent);
		if (rc != 0)
			return rc;
		c->pg[i] = ents(parent)[c->idx[i - 1]].child;
		const uint8_t *p;
		uint16_t type = i == c->depth - 1 ? NVF_PAGE_LEAF : NVF_PAGE_BRANCH;
		if ((rc = tpage(c->txn, c->pg[i], type, &p)) != 0)
			return rc;
		if (type == NVF_PAGE_LEAF && (rc = leaf_validate(c->txn, c->pg[i], p)) != 0)
			return rc;
		c->idx[i] = rightmost ? ph(p)->nkeys - 1 : 0;
	}
	c->valid = true;
	return 0;
}

static int cur_page(const nvf_cursor *c, int level, const uint8_t **p)
{
	return tpage(c->txn, c->pg[level], level == c->depth - 1 ? NVF_PAGE_LEAF : NVF_PAGE_BRANCH, p);
}

int nvf__cursor_next(nvf_cursor *c)
{
	if (!c->valid)
		return 0;
	const uint8_t *p;
	int leaf = c->depth - 1, rc;
	if ((rc = cur_page(c, leaf, &p)) != 0)
		return rc;
	if (++c->idx[leaf] < ph(p)->nkeys)
		return 0;
	for (int i = leaf - 1; i >= 0; i--) {
		if ((rc = cur_page(c, i, &p)) != 0)
			return rc;
		if (c->idx[i] + 1 < ph(p)->nkeys) {
			c->idx[i]++;
			return cur_fill_down(c, i + 1, false);
		}
	}
	c->valid = false;
	return 0;
}

int nvf__cursor_prev(nvf_cursor *c)
{
	if (!c->valid)
		return 0;
	int leaf = c->depth - 1;
	if (--c->idx[leaf] >= 0)
		return 0;
	for (int i = leaf - 1; i >= 0; i--) {
		if (c->idx[i] > 0) {
			c->idx[i]--;
			return cur_fill_down(c, i + 1, true);
		}
	}
	c->valid = false;
	return 0;
}

static int cur_init(nvf_cursor *c, nvf_txn *txn, const struct nvf_disk_tree *t)
{
	memset(c, 0, sizeof(*c));
	c->txn = txn;
	c->t = t;
	c->depth = t->depth;
	if (t->root == 0)
		return 0;
	if (t->depth == 0 || t->depth > NVF_MAX_DEPTH)
		return nvf__corrupt(t->root, "tree depth %u", t->depth);
	c->pg[0] = t->root;
	return 1;
}

int nvf__cursor_seek(nvf_cursor *c, nvf_txn *txn, const struct nvf_disk_tree *t, uint64_t key)
{
	int rc = cur_init(c, txn, t);
	if (rc <= 0)
		return rc;
	for (int i = 0; i < c->depth; i++) {
		const uint8_t *p;
		if (i > 0) {
			const uint8_t *parent;
			if ((rc = cur_page(c, i - 1, &parent)) != 0)
				return rc;
			c->pg[i] = ents(parent)[c->idx[i - 1]].child;
		}
		if ((rc = cur_page(c, i, &p)) != 0)
			return rc;
		if (i < c->depth - 1) {
			c->idx[i] = branch_search(p, key);
		} else {
			if ((rc = leaf_validate(txn, c->pg[i], p)) != 0)
				return rc;
			c->idx[i] = leaf_search(p, key);
			c->valid = true;
			if (c->idx[i] >= ph(p)->nkeys) {
				c->idx[i] = ph(p)->nkeys - 1;
				return nvf__cursor_next(c);
			}
		}
	}
	return 0;
}

int nvf__cursor_seek_le(nvf_cursor *c, nvf_txn *txn, const struct nvf_disk_tree *t, uint64_t key)
{
	int rc = nvf__cursor_seek(c, txn, t, key);
	if (rc != 0)
		return rc;
	if (c->valid) {
		uint64_t k;
		nvf_val v;
		if ((rc = nvf__cursor_get(c, &k, &v)) != 0)
			return rc;
		return k == key ? 0 : nvf__cursor_prev(c);
	}
	/* Past the end: the last entry. */
	if ((rc = cur_init(c, txn, t)) <= 0)
		return rc;
	const uint8_t *p;
	if ((rc = cur_page(c, 0, &p)) != 0)
		return rc;
	if (c->depth == 1) {
		if ((rc = leaf_validate(txn, c->pg[0], p)) != 0)
			return rc;
		c->idx[0] = ph(p)->nkeys - 1;
		c->valid = true;
		return 0;
	}
	c->idx[0] = ph(p)->nkeys - 1;
	return cur_fill_down(c, 1, true);
}

int nvf__cursor_get(const nvf_cursor *c, uint64_t *key, nvf_val *val)
{
	if (!c->valid)
		return NVF_ENOTFOUND;
	const uint8_t *p;
	int leaf = c->depth - 1;
	int rc = cur_page(c, leaf, &p);
	if (rc != 0)
		return rc;
	const struct nvf_disk_cell *cell;
	if ((rc = leaf_cell(c->txn, c->pg[leaf], p, c->idx[leaf], &cell)) != 0)
		return rc;
	*key = cell->key;
	return val ? cell_val(c->txn, c->pg[leaf], cell, val) : 0;
}

/* ---- the catalog of user trees ---- */

int nvf__tree_open(nvf_txn *txn, uint64_t id, int create_kind, nvf_tree **out)
{
	for (nvf_tree *t = txn->trees; t; t = t->next) {
		if (t->id == id) {
			*out = t;
			return 0;
		}
	}
	nvf_val v;
	struct nvf_disk_tree d;
	bool created = false;
	int rc = nvf__tree_get(txn, &txn->catalog, id, &v);
	if (rc == 0) {
		if (v.extent || v.len != sizeof(d))
			return nvf__err(NVF_ECORRUPT, "catalog entry %llu has %llu bytes", (unsigned long long)id,
					(unsigned long long)v.len);
		memcpy(&d, v.data, sizeof(d));
		if (d.depth > NVF_MAX_DEPTH || (d.root == 0) != (d.depth == 0))
			return nvf__err(NVF_ECORRUPT, "catalog entry %llu: root %llu depth %u", (unsigned long long)id,
					(unsigned long long)d.root, d.depth);
	} else if (rc == NVF_ENOTFOUND && create_kind >= 0) {
		if ((rc = nvf__txn_writable(txn)) != 0)
			return rc;
		memset(&d, 0, sizeof(d));
		d.kind = (uint16_t)create_kind;
		created = true;
	} else {
		return rc;
	}
	nvf_tree *t = calloc(1, sizeof(*t));
	if (!t)
		return nvf__oom();
	t->id = id;
	t->d = d;
	/* A newly made tree differs from its "original" so that it is written out. */
	t->orig = d;
	if (created)
		t->orig.kind = 0xffff;
	t->next = txn->trees;
	txn->trees = t;
	*out = t;
	return 0;
}

int nvf__catalog_flush(nvf_txn *txn)
{
	for (nvf_tree *t = txn->trees; t; t = t->next) {
		if (memcmp(&t->d, &t->orig, sizeof(t->d)) == 0)
			continue;
		int rc = nvf__tree_put(txn, &txn->catalog, t->id, &t->d, sizeof(t->d), 0, NULL);
		if (rc != 0)
			return rc;
		t->orig = t->d;
	}
	return 0;
}
