/* nvf_db_stats: what the pages of the current state hold, the free space and its
 * fragmentation, and the shape of the HNSW graph. Walks every tree page (not the
 * extents' contents), as check does, without verifying: check is for that. */
#include "nvf_int.h"
#include "coll.h"
#include "hnsw.h"

#include <stdlib.h>

/* Which counter a catalog tree's pages go to. */
static uint64_t *bucket(nvf_stats *s, uint64_t id)
{
	switch (id) {
	case NVF_T_VECTORS:
	case NVF_T_NORMS:
		return &s->pages_vectors;
	case NVF_T_IDMAP:
	case NVF_T_ROWIDS:
	case NVF_T_FREEROWS:
		return &s->pages_ids;
	case NVF_T_GRAPH0:
	case NVF_T_UPPER:
	case NVF_T_FREEUPPER:
	case NVF_T_HNSW:
	case NVF_T_CODES:
		return &s->pages_graph;
	case NVF_T_META:
	case NVF_T_DOCS:
	case NVF_T_DICTS:
		return &s->pages_documents;
	case NVF_T_FIELDS:
		return &s->pages_fields;
	default:
		return id >= NVF_T_FIELD_BASE ? &s->pages_fields : &s->pages_system;
	}
}

/* Pages of a tree: its own and its extents'. For the catalog, each entry's tree is
 * counted into its bucket. */
static int count(nvf_txn *txn, nvf_stats *s, uint64_t pgno, int level, uint64_t *into, bool catalog)
{
	if (level < 1 || level > NVF_MAX_DEPTH)
		return nvf__corrupt(pgno, "tree level %d", level);
	const uint8_t *p;
	int rc = nvf__page_ref(txn, pgno, 1, &p);
	if (rc != 0)
		return rc;
	const struct nvf_disk_page *h = (const struct nvf_disk_page *)p;
	if (h->pgno != pgno || h->type != (level == 1 ? NVF_PAGE_LEAF : NVF_PAGE_BRANCH))
		return nvf__corrupt(pgno, "not the tree page expected");
	(*into)++;
	if (level > 1) {
		const struct nvf_disk_branch_ent *e = (const struct nvf_disk_branch_ent *)(p + sizeof(*h));
		uint16_t nk = h->nkeys;
		for (uint16_t i = 0; i < nk && rc == 0; i++)
			rc = count(txn, s, e[i].child, level - 1, into, catalog);
		return rc;
	}
	nvf_cursor cur;
	struct nvf_disk_tree one = {.root = pgno, .depth = 1};
	for (rc = nvf__cursor_seek(&cur, txn, &one, 0); rc == 0 && cur.valid; rc = nvf__cursor_next(&cur)) {
		uint64_t key;
		nvf_val v;
		if ((rc = nvf__cursor_get(&cur, &key, &v)) != 0)
			break;
		if (v.extent) {
			uint64_t np = nvf__pages_for(txn->db, v.ref.len);
			*into += np ? np : 1;
		}
		if (catalog) {
			struct nvf_disk_tree t;
			if (v.len != sizeof(t))
				return nvf__corrupt(pgno, "catalog entry %llu", (unsigned long long)key);
			memcpy(&t, v.data, sizeof(t));
			if (t.root && (rc = count(txn, s, t.root, t.depth, bucket(s, key), false)) != 0)
				break;
		}
	}
	return rc;
}

int nvf_db_stats(nvf_db *db, nvf_stats *out)
{
	if (!db || !out)
		return nvf__err(NVF_EINVAL, "nvf_db_stats: NULL argument");
	if (out->version != NVF_STATS_VERSION)
		return nvf__err(NVF_EINVAL, "nvf_stats.version %u: this library knows version %u", out->version,
				NVF_STATS_VERSION);
	nvf_stats s;
	memset(&s, 0, sizeof(s));
	s.version = NVF_STATS_VERSION;
	nvf_txn *txn;
	int rc = nvf_txn_begin(&txn, db, NVF_TXN_RDONLY | NVF__TXN_CURRENT);
	if (rc != 0)
		return rc;
	s.page_size = db->psize;
	s.txnid = txn->id;
	s.pages_total = txn->npages;
	s.pages_header = NVF_FIRST_DATA_PAGE;
	const struct nvf_disk_tree *sys[4] = {&txn->catalog, &txn->freetree, &txn->pending, &txn->snapshots};
	for (int i = 0; i < 4 && rc == 0; i++)
		if (sys[i]->root)
			rc = count(txn, &s, sys[i]->root, sys[i]->depth, &s.pages_system, i == 0);
	/* Free runs and pending pages, from their trees. */
	nvf_cursor c;
	for (rc = rc ? rc : nvf__cursor_seek(&c, txn, &txn->freetree, 0); rc == 0 && c.valid; rc = nvf__cursor_next(&c)) {
		uint64_t key, len;
		nvf_val v;
		if ((rc = nvf__cursor_get(&c, &key, &v)) != 0 || v.len != 8)
			break;
		memcpy(&len, v.data, 8);
		s.pages_free += len;
		s.free_runs++;
		if (len > s.largest_free_run)
			s.largest_free_run = len;
	}
	for (rc = rc ? rc : nvf__cursor_seek(&c, txn, &txn->pending, 0); rc == 0 && c.valid; rc = nvf__cursor_next(&c)) {
		uint64_t key;
		nvf_val v;
		struct nvf_disk_pending p;
		if ((rc = nvf__cursor_get(&c, &key, &v)) != 0 || v.len != sizeof(p))
			break;
		memcpy(&p, v.data, sizeof(p));
		s.pages_pending += p.npages;
	}
	nvf_coll *coll;
	if (rc == 0 && (rc = nvf__coll_get(txn, &coll)) == 0) {
		s.records = coll->idmap->d.count;
		rc = nvf__hnsw_stats(txn, coll, &s.hnsw_levels, s.hnsw_nodes_per_level, 24, s.hnsw_degree0,
				     NVF_STATS_DEGREES);
	}
	nvf_txn_abort(txn);
	if (rc == 0)
		*out = s;
	return rc;
}
