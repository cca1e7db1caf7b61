/* nvf_check(): verify every checksum and structural invariant of a committed state
 * and of every named snapshot, and account for every page of the file. Reports the
 * first problem with its page number. */
#include "nvf_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

int nvf__snapshot_begin_id(nvf_txn **out, nvf_db *db, uint64_t id);
int nvf__check_txn(nvf_txn *txn, nvf_check_report *rep, bool meta_pages);

typedef struct chk {
	nvf_db *db;
	nvf_txn *txn;      /* the state being walked (current or a snapshot) */
	uint64_t npages;   /* of the current state */
	uint8_t *live;     /* reachable from the current state */
	uint8_t *other;    /* free / pending (current) or reachable (snapshot walk) */
	uint8_t *mark;     /* bitmap the walk marks into */
	bool snapshot;
	nvf_check_report *rep;
	NVF_VEC(nvf_ext) freeruns;
	NVF_VEC(nvf_ext) pendruns;
	NVF_VEC(uint64_t) snapids;
	const char *tree_role;                   /* for the visitor: which tree */
	nvf__check_visit_fn visit;               /* tests: every page walked */
	void *visit_ctx;
} chk;

enum role { R_PLAIN, R_CATALOG, R_FREE, R_PENDING, R_SNAPS };

static inline bool bit(const uint8_t *bm, uint64_t i)
{
	return (bm[i >> 3] >> (i & 7)) & 1;
}

static inline void setbit(uint8_t *bm, uint64_t i)
{
	bm[i >> 3] |= (uint8_t)(1u << (i & 7));
}

static int bad(chk *c, uint64_t pgno, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(chk *c, uint64_t pgno, const char *fmt, ...)
{
	char msg[240];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return nvf__corrupt(pgno, "%s%s", c->snapshot ? "in a snapshot: " : "", msg);
}

static int mark_run(chk *c, uint64_t pgno, uint64_t n, const char *what)
{
	if (c->visit)
		c->visit(c->visit_ctx, pgno, n, what, c->tree_role);
	if (pgno < NVF_FIRST_DATA_PAGE || pgno >= c->txn->npages || n > c->txn->npages - pgno)
		return bad(c, pgno, "%s of %llu pages lies outside the %llu pages of state %llu", what,
			   (unsigned long long)n, (unsigned long long)c->txn->npages, (unsigned long long)c->txn->id);
	for (uint64_t i = 0; i < n; i++) {
		if (bit(c->mark, pgno + i))
			return bad(c, pgno + i, "used twice (again as %s)", what);
		setbit(c->mark, pgno + i);
	}
	return 0;
}

static int walk_tree(chk *c, const struct nvf_disk_tree *t, enum role role, const char *name);

static int leaf_value(chk *c, uint64_t pgno, uint64_t key, const nvf_val *v, enum role role)
{
	nvf_db *db = c->db;
	int rc;
	if (v->extent) {
		uint64_t np = nvf__pages_for(db, v->ref.len);
		if (np == 0)
			np = 1;
		if ((rc = mark_run(c, v->ref.pgno, np, "extent")) != 0)
			return rc;
		uint64_t sum = nvf__extent_checksum(v->data, np, db->psize, v->ref.pgno, v->ref.txnid);
		if (sum != v->ref.checksum)
			return bad(c, v->ref.pgno, "extent of key %llu (leaf %llu) fails its checksum",
				   (unsigned long long)key, (unsigned long long)pgno);
	}
	switch (role) {
	case R_CATALOG: {
		struct nvf_disk_tree sub;
		if (v->len != sizeof(sub))
			return bad(c, pgno, "catalog entry %llu has %llu bytes", (unsigned long long)key,
				   (unsigned long long)v->len);
		memcpy(&sub, v->data, sizeof(sub));
		char nm[40];
		snprintf(nm, sizeof(nm), "tree %llu", (unsigned long long)key);
		return walk_tree(c, &sub, R_PLAIN, nm);
	}
	case R_FREE: {
		uint64_t len;
		if (v->len != 8)
			return bad(c, pgno, "FREE entry %llu has %llu bytes", (unsigned long long)key,
				   (unsigned long long)v->len);
		memcpy(&len, v->data, 8);
		nvf_ext e = {key, len};
		if (len == 0)
			return bad(c, pgno, "FREE run at %llu is empty", (unsigned long long)key);
		return NVF_VEC_PUSH(c->freeruns, e);
	}
	case R_PENDING: {
		struct nvf_disk_pending p;
		if (v->len != sizeof(p))
			return bad(c, pgno, "PENDING entry has %llu bytes", (unsigned long long)v->len);
		memcpy(&p, v->data, sizeof(p));
		uint64_t freed_by = key >> NVF_PENDING_SEQ_BITS;
		if (p.alloc_txnid >= freed_by || freed_by > c->txn->id || p.npages == 0)
			return bad(c, pgno, "PENDING run %llu+%llu has window %llu..%llu", (unsigned long long)p.pgno,
				   (unsigned long long)p.npages, (unsigned long long)p.alloc_txnid,
				   (unsigned long long)freed_by);
		nvf_ext e = {p.pgno, p.npages};
		return NVF_VEC_PUSH(c->pendruns, e);
	}
	case R_SNAPS: {
		struct nvf_disk_snapshot r;
		if (v->len < sizeof(r))
			return bad(c, pgno, "snapshot record %llu has %llu bytes", (unsigned long long)key,
				   (unsigned long long)v->len);
		memcpy(&r, v->data, sizeof(r));
		if (sizeof(r) + r.name_len + r.note_len != v->len || r.name_len == 0 || r.txnid >= c->txn->id ||
		    r.npages > c->txn->npages)
			return bad(c, pgno, "snapshot record %llu is inconsistent", (unsigned long long)key);
		if (key > c->txn->snapshots.aux)
			return bad(c, pgno, "snapshot id %llu beyond the id counter %llu", (unsigned long long)key,
				   (unsigned long long)c->txn->snapshots.aux);
		return NVF_VEC_PUSH(c->snapids, key);
	}
	case R_PLAIN:
		break;
	}
	return 0;
}

/* Walk a subtree whose keys must lie in [lo, hi] (hi inclusive). */
static int walk_page(chk *c, uint64_t pgno, int level, uint64_t lo, uint64_t hi, enum role role, uint64_t *count)
{
	nvf_db *db = c->db;
	int rc = mark_run(c, pgno, 1, level == 1 ? "leaf" : "branch");
	if (rc != 0)
		return rc;
	const uint8_t *p;
	if ((rc = nvf__page_ref(c->txn, pgno, 1, &p)) != 0)
		return rc;
	const struct nvf_disk_page *h = (const struct nvf_disk_page *)p;
	if (nvf__page_checksum(p, db->psize) != h->checksum)
		return bad(c, pgno, "checksum mismatch (%s page)", level == 1 ? "leaf" : "branch");
	if (h->pgno != pgno)
		return bad(c, pgno, "header names page %llu", (unsigned long long)h->pgno);
	uint16_t type = level == 1 ? NVF_PAGE_LEAF : NVF_PAGE_BRANCH;
	if (h->type != type)
		return bad(c, pgno, "type 0x%04x at tree level %d", h->type, level);
	if (h->txnid == 0 || h->txnid > c->txn->id)
		return bad(c, pgno, "written by transaction %llu, after state %llu", (unsigned long long)h->txnid,
			   (unsigned long long)c->txn->id);
	if (level == 1) {
		/* The tree code's own validation, on a one-page tree rooted here. */
		nvf_cursor cur;
		struct nvf_disk_tree one = {.root = pgno, .depth = 1};
		uint64_t prev = 0;
		bool first = true;
		for (rc = nvf__cursor_seek(&cur, c->txn, &one, 0); rc == 0 && cur.valid; rc = nvf__cursor_next(&cur)) {
			uint64_t key;
			nvf_val v;
			if ((rc = nvf__cursor_get(&cur, &key, &v)) != 0)
				break;
			if ((!first && key <= prev) || key < lo || key > hi)
				return bad(c, pgno, "key %llu out of order (bounds %llu..%llu)", (unsigned long long)key,
					   (unsigned long long)lo, (unsigned long long)hi);
			first = false;
			prev = key;
			(*count)++;
			c->rep->entries++;
			if ((rc = leaf_value(c, pgno, key, &v, role)) != 0)
				return rc;
		}
		return rc;
	}
	const struct nvf_disk_branch_ent *e = (const struct nvf_disk_branch_ent *)(p + sizeof(*h));
	uint32_t cap = (db->psize - (uint32_t)sizeof(*h)) / (uint32_t)sizeof(*e);
	if (h->nkeys < 1 || h->nkeys > cap)
		return bad(c, pgno, "branch with %u entries", h->nkeys);
	for (int i = 1; i < h->nkeys; i++) {
		/* Separators strictly increase inside (lo, hi], so no child range is empty. */
		if (e[i].key <= (i == 1 ? lo : e[i - 1].key) || e[i].key > hi)
			return bad(c, pgno, "separator %d (%llu) out of order or outside %llu..%llu", i,
				   (unsigned long long)e[i].key, (unsigned long long)lo, (unsigned long long)hi);
	}
	for (int i = 0; i < h->nkeys; i++) {
		uint64_t clo = i == 0 ? lo : e[i].key;
		uint64_t chi = i + 1 < h->nkeys ? e[i + 1].key - 1 : hi;
		if ((rc = walk_page(c, e[i].child, level - 1, clo, chi, role, count)) != 0)
			return rc;
	}
	return 0;
}

static int walk_tree(chk *c, const struct nvf_disk_tree *t, enum role role, const char *name)
{
	const char *outer = c->tree_role;
	int rc = 0;
	c->rep->trees++;
	c->tree_role = role == R_PLAIN ? "user" : role == R_CATALOG ? "catalog" : role == R_FREE ? "free"
		     : role == R_PENDING ? "pending" : "snapshots";
	uint64_t count = 0;
	if (t->root == 0) {
		if (t->depth != 0 || t->count != 0)
			rc = bad(c, 0, "%s: empty tree with depth %u and %llu entries", name, t->depth,
				 (unsigned long long)t->count);
	} else if (t->depth == 0 || t->depth > NVF_MAX_DEPTH) {
		rc = bad(c, t->root, "%s: depth %u", name, t->depth);
	} else if ((rc = walk_page(c, t->root, t->depth, 0, UINT64_MAX, role, &count)) == 0 && count != t->count) {
		rc = bad(c, t->root, "%s holds %llu entries, its descriptor says %llu", name,
			 (unsigned long long)count, (unsigned long long)t->count);
	}
	c->tree_role = outer;
	return rc;
}

/* Free and pending runs: inside the file, disjoint from live pages and from each
 * other; then every page must be live, free or pending. */
static int check_runs(chk *c)
{
	for (int pass = 0; pass < 2; pass++) {
		const nvf_ext *v = pass ? c->pendruns.v : c->freeruns.v;
		size_t n = pass ? c->pendruns.n : c->freeruns.n;
		const char *what = pass ? "pending run" : "free run";
		for (size_t i = 0; i < n; i++) {
			uint64_t pg = v[i].pgno, k = v[i].npages;
			if (pg < NVF_FIRST_DATA_PAGE || pg >= c->npages || k > c->npages - pg)
				return bad(c, pg, "%s of %llu pages outside the file's %llu", what, (unsigned long long)k,
					   (unsigned long long)c->npages);
			for (uint64_t j = 0; j < k; j++) {
				if (bit(c->live, pg + j))
					return bad(c, pg + j, "live page is also in a %s", what);
				if (bit(c->other, pg + j))
					return bad(c, pg + j, "in two free/pending runs");
				setbit(c->other, pg + j);
			}
			if (pass)
				c->rep->pages_pending += k;
			else
				c->rep->pages_free += k;
		}
	}
	for (uint64_t pg = NVF_FIRST_DATA_PAGE; pg < c->npages; pg++)
		if (!bit(c->live, pg) && !bit(c->other, pg))
			return bad(c, pg, "leaked: neither live, free nor pending");
	return 0;
}

static int check_meta_pages(chk *c)
{
	nvf_db *db = c->db;
	for (uint64_t pg = 0; pg < 2; pg++) {
		const uint8_t *p = nvf__map_page(db, pg);
		if (memcmp(p, &db->header, sizeof(db->header)) != 0)
			return nvf__corrupt(pg, "file header copy differs or is damaged");
		struct nvf_disk_meta m;
		memcpy(&m, p + NVF_META_OFF, sizeof(m));
		bool ok = m.magic == NVF_META_MAGIC && m.checksum == nvf__meta_checksum(&m) && m.slot == pg;
		if (!ok && m.txnid != c->txn->meta.txnid && !c->rep->warnings++)
			snprintf(c->rep->warning, sizeof(c->rep->warning),
				 "page %llu: older meta record invalid (torn by a crash, or damaged); the next read-write open rewrites it",
				 (unsigned long long)pg);
		else if (!ok)
			return nvf__corrupt(pg, "meta record in use is invalid");
		for (uint32_t i = NVF_META_OFF + NVF_META_SIZE; i < db->psize; i++)
			if (p[i] != 0)
				return nvf__corrupt(pg, "unused byte %u of a meta page is not zero", i);
	}
	return 0;
}

static int check_snapshots(chk *c, size_t bytes)
{
	int rc = 0;
	uint8_t *freemap = calloc(1, bytes);
	if (!freemap)
		return nvf__oom();
	for (size_t k = 0; k < c->freeruns.n; k++)
		for (uint64_t j = 0; j < c->freeruns.v[k].npages; j++)
			setbit(freemap, c->freeruns.v[k].pgno + j);
	nvf_txn *cur = c->txn;
	for (size_t i = 0; rc == 0 && i < c->snapids.n; i++) {
		nvf_txn *st;
		rc = nvf__snapshot_begin_id(&st, c->db, c->snapids.v[i]);
		if (rc == NVF_ENOTFOUND) { /* deleted meanwhile */
			rc = 0;
			continue;
		}
		if (rc != 0)
			break;
		c->rep->snapshots++;
		memset(c->other, 0, bytes);
		c->txn = st;
		c->mark = c->other;
		c->snapshot = true;
		rc = walk_tree(c, &st->catalog, R_CATALOG, "catalog");
		for (uint64_t pg = 0; rc == 0 && pg < st->npages; pg++) {
			if (!bit(c->other, pg))
				continue;
			if (bit(freemap, pg))
				rc = bad(c, pg, "page of snapshot %llu is in the FREE tree",
					 (unsigned long long)c->snapids.v[i]);
			else if (!bit(c->live, pg))
				c->rep->pages_snapshot_only++;
		}
		c->snapshot = false;
		c->txn = cur;
		nvf_txn_abort(st);
	}
	free(freemap);
	return rc;
}

static int check_txn(nvf_txn *txn, nvf_check_report *rep, bool meta_pages, nvf__check_visit_fn visit, void *ctx);

int nvf__check_txn(nvf_txn *txn, nvf_check_report *rep, bool meta_pages)
{
	return check_txn(txn, rep, meta_pages, NULL, NULL);
}

int nvf__check_visit(nvf_db *db, nvf__check_visit_fn visit, void *ctx)
{
	nvf_txn *txn;
	int rc = nvf_txn_begin(&txn, db, NVF_TXN_RDONLY | NVF__TXN_CURRENT);
	if (rc != 0)
		return rc;
	rc = check_txn(txn, NULL, true, visit, ctx);
	nvf_txn_abort(txn);
	return rc;
}

static int check_txn(nvf_txn *txn, nvf_check_report *rep, bool meta_pages, nvf__check_visit_fn visit, void *ctx)
{
	nvf_check_report local;
	if (!rep)
		rep = &local;
	memset(rep, 0, sizeof(*rep));
	rep->first_bad_page = UINT64_MAX;
	rep->txnid = txn->id;
	rep->pages_total = txn->npages;
	chk c;
	memset(&c, 0, sizeof(c));
	c.db = txn->db;
	c.txn = txn;
	c.rep = rep;
	c.npages = txn->npages;
	c.visit = visit;
	c.visit_ctx = ctx;
	size_t bytes = (size_t)((txn->npages + 7) / 8);
	c.live = calloc(1, bytes);
	c.other = calloc(1, bytes);
	int rc = (!c.live || !c.other) ? nvf__oom() : 0;
	if (rc == 0 && meta_pages)
		rc = check_meta_pages(&c);
	c.mark = c.live;
	if (rc == 0)
		rc = walk_tree(&c, &txn->catalog, R_CATALOG, "catalog");
	if (rc == 0)
		rc = walk_tree(&c, &txn->freetree, R_FREE, "FREE tree");
	if (rc == 0)
		rc = walk_tree(&c, &txn->pending, R_PENDING, "PENDING tree");
	if (rc == 0)
		rc = walk_tree(&c, &txn->snapshots, R_SNAPS, "SNAPSHOTS tree");
	if (rc == 0) {
		for (uint64_t pg = 0; pg < txn->npages; pg++)
			rep->pages_live += bit(c.live, pg);
		rc = check_runs(&c);
	}
	if (rc == 0 && c.snapids.n)
		rc = check_snapshots(&c, bytes);
	if (rc == NVF_ECORRUPT) {
		snprintf(rep->problem, sizeof(rep->problem), "%s", nvf_errmsg());
		unsigned long long pg;
		if (sscanf(nvf_errmsg(), "page %llu", &pg) == 1)
			rep->first_bad_page = pg;
	}
	free(c.live);
	free(c.other);
	NVF_VEC_FREE(c.freeruns);
	NVF_VEC_FREE(c.pendruns);
	NVF_VEC_FREE(c.snapids);
	return rc;
}

int nvf__check_state(nvf_db *db, const struct nvf_disk_meta *meta, nvf_check_report *rep)
{
	/* Used at open, before any transaction exists: a private read view. */
	nvf_txn t;
	memset(&t, 0, sizeof(t));
	t.db = db;
	t.slot = -1;
	t.id = meta->txnid;
	t.base_txnid = meta->txnid;
	t.npages = meta->npages;
	t.meta = *meta;
	t.catalog = meta->catalog;
	t.freetree = meta->freetree;
	t.pending = meta->pending;
	t.snapshots = meta->snapshots;
	if (meta->npages > db->file_pages)
		return nvf__corrupt(meta->npages - 1, "state %llu uses %llu pages, the file has %llu",
				    (unsigned long long)meta->txnid, (unsigned long long)meta->npages,
				    (unsigned long long)db->file_pages);
	return nvf__check_txn(&t, rep, false);
}

int nvf_check(nvf_db *db, nvf_check_report *report)
{
	if (!db)
		return nvf__err(NVF_EINVAL, "nvf_check: NULL handle");
	nvf_txn *txn;
	int rc = nvf_txn_begin(&txn, db, NVF_TXN_RDONLY | NVF__TXN_CURRENT);
	if (rc != 0)
		return rc;
	rc = nvf__check_txn(txn, report, true);
	/* Pages sound: now what they hold (ids, rows, the graph). */
	if (rc == 0 && (rc = nvf__coll_check(txn)) == NVF_ECORRUPT && report) {
		/* A damaged newest meta record makes open read the older state, which may
		 * predate the collection: say which page sent it there. */
		if (report->warnings) {
			char why[sizeof(report->problem)];
			snprintf(why, sizeof(why), "%s", nvf_errmsg());
			nvf__err(rc, "%s (%s)", why, report->warning);
		}
		snprintf(report->problem, sizeof(report->problem), "%s", nvf_errmsg());
	}
	nvf_txn_abort(txn);
	return rc;
}
