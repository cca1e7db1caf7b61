/* Named snapshots: a persistent catalog (SNAPSHOTS tree) of committed states kept
 * readable. A snapshot costs no copying: its record holds the state's catalog root,
 * and its txnid is a pin for the free-space manager (freelist.c), which keeps every
 * page that state can see. */
#include "nvf_int.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

static int valid_name(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0 || n > NVF_SNAPSHOT_NAME_MAX)
		return nvf__err(NVF_EINVAL, "snapshot name must be 1 to %u bytes", NVF_SNAPSHOT_NAME_MAX);
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)name[i];
		/* Names become file names under nusterfs: no '/', no control bytes. */
		if (ch < 0x20 || ch == 0x7f || ch == '/')
			return nvf__err(NVF_EINVAL, "snapshot name \"%s\": byte %zu (0x%02x) not allowed", name, i, ch);
	}
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return nvf__err(NVF_EINVAL, "snapshot name \"%s\" not allowed", name);
	return 0;
}

static int rec_parse(const nvf_val *v, struct nvf_disk_snapshot *rec, const char **name)
{
	if (v->len < sizeof(*rec)) /* inline, or an extent on small pages */
		return nvf__err(NVF_ECORRUPT, "snapshot record of %llu bytes", (unsigned long long)v->len);
	memcpy(rec, v->data, sizeof(*rec));
	if (sizeof(*rec) + rec->name_len + rec->note_len != v->len || rec->name_len == 0)
		return nvf__err(NVF_ECORRUPT, "snapshot record lengths %u+%u do not match its %llu bytes", rec->name_len,
				rec->note_len, (unsigned long long)v->len);
	if (name)
		*name = (const char *)v->data + sizeof(*rec);
	return 0;
}

int nvf__snapshot_find(nvf_txn *txn, const char *name, uint64_t *id, struct nvf_disk_snapshot *rec)
{
	size_t n = strlen(name);
	nvf_cursor c;
	int rc;
	for (rc = nvf__cursor_seek(&c, txn, &txn->snapshots, 0); rc == 0 && c.valid; rc = nvf__cursor_next(&c)) {
		uint64_t key;
		nvf_val v;
		const char *nm = NULL;
		struct nvf_disk_snapshot r;
		if ((rc = nvf__cursor_get(&c, &key, &v)) != 0 || (rc = rec_parse(&v, &r, &nm)) != 0)
			return rc;
		if (r.name_len == n && memcmp(nm, name, n) == 0) {
			if (id)
				*id = key;
			if (rec)
				*rec = r;
			return 0;
		}
	}
	return rc != 0 ? rc : nvf__err(NVF_ENOTFOUND, "no snapshot named \"%s\"", name);
}

int nvf__snapshot_create(nvf_txn *txn, const char *name, const char *note)
{
	int rc = nvf__txn_writable(txn);
	if (rc != 0 || (rc = valid_name(name)) != 0)
		return rc;
	size_t note_len = note ? strlen(note) : 0;
	if (note_len > NVF_SNAPSHOT_NOTE_MAX)
		return nvf__err(NVF_EINVAL, "snapshot note of %zu bytes, at most %u", note_len, NVF_SNAPSHOT_NOTE_MAX);
	rc = nvf__snapshot_find(txn, name, NULL, NULL);
	if (rc == 0)
		return nvf__err(NVF_EEXIST, "snapshot \"%s\" already exists", name);
	if (rc != NVF_ENOTFOUND)
		return rc;
	/* Ids only grow: one past the largest ever used, kept in the tree's aux. */
	uint64_t id = txn->snapshots.aux + 1;
	size_t name_len = strlen(name);
	size_t len = sizeof(struct nvf_disk_snapshot) + name_len + note_len;
	uint8_t *buf = malloc(len);
	if (!buf)
		return nvf__oom();
	struct nvf_disk_snapshot rec;
	memset(&rec, 0, sizeof(rec));
	/* The state pinned is the last committed one, the base of this transaction. */
	rec.txnid = txn->base_txnid;
	rec.created_ns = nvf__now_ns();
	rec.npages = txn->meta.npages;
	rec.catalog = txn->meta.catalog;
	rec.name_len = (uint16_t)name_len;
	rec.note_len = (uint16_t)note_len;
	memcpy(buf, &rec, sizeof(rec));
	memcpy(buf + sizeof(rec), name, name_len);
	if (note_len)
		memcpy(buf + sizeof(rec) + name_len, note, note_len);
	rc = nvf__tree_put(txn, &txn->snapshots, id, buf, len, NVF_PUT_NOOVERWRITE, NULL);
	free(buf);
	if (rc == 0)
		txn->snapshots.aux = id;
	return rc;
}

int nvf__snapshot_delete(nvf_txn *txn, const char *name)
{
	int rc = nvf__txn_writable(txn);
	if (rc != 0)
		return rc;
	uint64_t id;
	if ((rc = nvf__snapshot_find(txn, name, &id, NULL)) != 0)
		return rc;
	return nvf__tree_del(txn, &txn->snapshots, id);
}

int nvf__snapshot_pins(nvf_txn *txn, const struct nvf_disk_tree *snaps)
{
	nvf_cursor c;
	int rc;
	for (rc = nvf__cursor_seek(&c, txn, snaps, 0); rc == 0 && c.valid; rc = nvf__cursor_next(&c)) {
		uint64_t key;
		nvf_val v;
		struct nvf_disk_snapshot r;
		if ((rc = nvf__cursor_get(&c, &key, &v)) != 0 || (rc = rec_parse(&v, &r, NULL)) != 0)
			return rc;
		if ((rc = NVF_VEC_PUSH(txn->pins, r.txnid)) != 0)
			return rc;
	}
	return rc;
}

/* A read transaction on a snapshot. Its pages are kept by the snapshot's record; we
 * also pin its txnid in the reader table, then make sure the record still exists in
 * the newest state: a writer that scanned the table before our pin must have seen the
 * record (or we see it gone now), so the pages cannot have been reused. */
static int begin_by(nvf_txn **out, nvf_db *db, const char *name, uint64_t want_id)
{
	nvf_txn *a, *b = NULL;
	int rc = nvf_txn_begin(&a, db, NVF_TXN_RDONLY | NVF__TXN_CURRENT);
	if (rc != 0)
		return rc;
	uint64_t id = want_id;
	struct nvf_disk_snapshot rec;
	if (name) {
		rc = nvf__snapshot_find(a, name, &id, &rec);
	} else {
		nvf_val v;
		rc = nvf__tree_get(a, &a->snapshots, id, &v);
		if (rc == 0)
			rc = rec_parse(&v, &rec, NULL);
		else if (rc == NVF_ENOTFOUND)
			nvf__err(rc, "no snapshot with id %llu", (unsigned long long)id);
	}
	if (rc == 0 && rec.npages > a->npages)
		rc = nvf__err(NVF_ECORRUPT, "snapshot %llu claims %llu pages, more than the file's %llu",
			      (unsigned long long)id, (unsigned long long)rec.npages, (unsigned long long)a->npages);
	struct nvf_disk_meta m = a->meta;
	nvf_txn_abort(a);
	if (rc != 0)
		return rc;
	m.txnid = rec.txnid;
	if ((rc = nvf__txn_begin_state(&b, db, &m, rec.npages, &rec.catalog)) != 0)
		return rc;
	if ((rc = nvf_txn_begin(&a, db, NVF_TXN_RDONLY | NVF__TXN_CURRENT)) != 0)
		goto fail;
	nvf_val v;
	struct nvf_disk_snapshot again;
	rc = nvf__tree_get(a, &a->snapshots, id, &v);
	if (rc == 0)
		rc = rec_parse(&v, &again, NULL);
	nvf_txn_abort(a);
	if (rc == 0 && again.txnid != rec.txnid)
		rc = NVF_ENOTFOUND;
	if (rc == NVF_ENOTFOUND)
		rc = nvf__err(NVF_ENOTFOUND, "snapshot was deleted meanwhile");
	if (rc != 0)
		goto fail;
	*out = b;
	return 0;
fail:
	nvf_txn_abort(b);
	return rc;
}

int nvf__snapshot_begin(nvf_txn **out, nvf_db *db, const char *name)
{
	return begin_by(out, db, name, 0);
}

int nvf__snapshot_begin_id(nvf_txn **out, nvf_db *db, uint64_t id);
int nvf__snapshot_begin_id(nvf_txn **out, nvf_db *db, uint64_t id)
{
	return begin_by(out, db, NULL, id);
}

/* ---- the public calls ---- */

/* A write transaction of the caller's, or one of our own (committed by wleave). */
static int wenter(nvf_db *db, nvf_txn **txn, bool *own)
{
	*own = false;
	if (!db)
		return nvf__err(NVF_EINVAL, "NULL database handle");
	if (*txn) {
		if ((*txn)->db != db)
			return nvf__err(NVF_EINVAL, "the transaction belongs to another handle");
		return nvf__txn_writable(*txn);
	}
	int rc = nvf_txn_begin(txn, db, 0);
	*own = rc == 0;
	return rc;
}

static int wleave(nvf_txn *txn, bool own, int rc)
{
	if (!own)
		return rc;
	if (rc == 0)
		return nvf_txn_commit(txn);
	nvf_txn_abort(txn);
	return rc;
}

static int renter(nvf_db *db, nvf_txn **txn, bool *own)
{
	*own = false;
	if (!db)
		return nvf__err(NVF_EINVAL, "NULL database handle");
	if (*txn)
		return (*txn)->db == db ? 0 : nvf__err(NVF_EINVAL, "the transaction belongs to another handle");
	int rc = nvf_txn_begin(txn, db, NVF_TXN_RDONLY);
	*own = rc == 0;
	return rc;
}

/* A snapshot's document: a JSON object, checked here so that list can hand it back
 * as it came. */
static int check_doc(const char *doc)
{
	if (!doc)
		return 0;
	size_t n = strlen(doc);
	if (n > NVF_SNAPSHOT_NOTE_MAX)
		return nvf__err(NVF_EINVAL, "snapshot document of %zu bytes, at most %u", n, NVF_SNAPSHOT_NOTE_MAX);
	json_error_t e;
	json_t *j = json_loadb(doc, n, JSON_REJECT_DUPLICATES, &e);
	if (!j)
		return nvf__err(NVF_EINVAL, "snapshot document: %s (column %d)", e.text, e.column);
	bool obj = json_is_object(j);
	json_decref(j);
	return obj ? 0 : nvf__err(NVF_EINVAL, "snapshot document must be a JSON object");
}

int nvf_snapshot_create(nvf_db *db, nvf_txn *txn, const char *name, const char *doc, char **name_out)
{
	char gen[32];
	bool own = false;
	int rc = check_doc(doc);
	if (rc == 0 && name && (rc = valid_name(name)) != 0)
		return rc;
	if (rc != 0 || (rc = wenter(db, &txn, &own)) != 0)
		return rc;
	if (!name) {
		/* snapshot-N, N one past the largest id used: taken only if someone chose
		 * that name by hand, then the next. */
		for (uint64_t n = txn->snapshots.aux + 1;; n++) {
			snprintf(gen, sizeof(gen), "snapshot-%llu", (unsigned long long)n);
			rc = nvf__snapshot_find(txn, gen, NULL, NULL);
			if (rc != 0)
				break;
		}
		name = gen;
		rc = rc == NVF_ENOTFOUND ? 0 : rc;
	}
	if (rc == 0)
		rc = nvf__snapshot_create(txn, name, doc);
	char *copy = NULL;
	if (rc == 0 && name_out && !(copy = strdup(name)))
		rc = nvf__oom();
	rc = wleave(txn, own, rc);
	if (rc != 0) {
		free(copy);
		return rc;
	}
	if (name_out)
		*name_out = copy;
	return 0;
}

int nvf_snapshot_delete(nvf_db *db, nvf_txn *txn, const char *name)
{
	bool own = false;
	int rc = name ? wenter(db, &txn, &own) : nvf__err(NVF_EINVAL, "NULL snapshot name");
	if (rc != 0)
		return rc;
	return wleave(txn, own, nvf__snapshot_delete(txn, name));
}

int nvf_txn_begin_snapshot(nvf_txn **out, nvf_db *db, const char *name)
{
	if (!out || !db || !name)
		return nvf__err(NVF_EINVAL, "nvf_txn_begin_snapshot: NULL argument");
	return nvf__snapshot_begin(out, db, name);
}

/* The pins that keep pages, as the free-space manager sees them (freelist.c): the
 * current state, the durable one, readers, snapshots. Sorted. */
static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Pages that only the state `s` keeps: pending runs whose window holds s and no
 * other pin. */
static int bytes_only(nvf_txn *txn, const uint64_t *pins, size_t npins, uint64_t s, uint64_t *out)
{
	uint64_t pages = 0;
	nvf_cursor c;
	int rc;
	for (rc = nvf__cursor_seek(&c, txn, &txn->pending, 0); rc == 0 && c.valid; rc = nvf__cursor_next(&c)) {
		uint64_t key;
		nvf_val v;
		struct nvf_disk_pending p;
		if ((rc = nvf__cursor_get(&c, &key, &v)) != 0)
			break;
		if (v.extent || v.len != sizeof(p))
			return nvf__err(NVF_ECORRUPT, "PENDING record %llu has %llu bytes", (unsigned long long)key,
					(unsigned long long)v.len);
		memcpy(&p, v.data, sizeof(p));
		uint64_t hi = (key >> NVF_PENDING_SEQ_BITS) - 1;
		if (p.alloc_txnid > s || hi < s)
			continue;
		bool other = nvf__pinned_between(pins, npins, p.alloc_txnid, s - 1) ||
			     (s < hi && nvf__pinned_between(pins, npins, s + 1, hi));
		if (!other)
			pages += p.npages;
	}
	*out = pages << txn->db->pshift;
	return rc;
}

int nvf_snapshot_list(nvf_db *db, nvf_txn *txn, nvf_snapshot_info **out, size_t *n)
{
	if (!out || !n)
		return nvf__err(NVF_EINVAL, "nvf_snapshot_list: NULL output");
	bool own = false;
	int rc = renter(db, &txn, &own);
	if (rc != 0)
		return rc;
	/* The catalog of snapshots is the file's, newer than a state a snapshot pins:
	 * through a transaction at a snapshot (or a handle opened at one), list the
	 * current state's. */
	if (txn->flags & NVF_TXN_F_SNAPSHOT) {
		if (own)
			nvf_txn_abort(txn);
		if ((rc = nvf_txn_begin(&txn, db, NVF_TXN_RDONLY | NVF__TXN_CURRENT)) != 0)
			return rc;
		own = true;
	}
	/* Two passes: sizes, then one block of infos and their strings. */
	size_t cnt = 0, strbytes = 0;
	nvf_cursor c;
	for (rc = nvf__cursor_seek(&c, txn, &txn->snapshots, 0); rc == 0 && c.valid; rc = nvf__cursor_next(&c)) {
		uint64_t key;
		nvf_val v;
		struct nvf_disk_snapshot r;
		if ((rc = nvf__cursor_get(&c, &key, &v)) != 0 || (rc = rec_parse(&v, &r, NULL)) != 0)
			break;
		cnt++;
		strbytes += (size_t)r.name_len + 1 + (r.note_len ? (size_t)r.note_len + 1 : 0);
	}
	nvf_snapshot_info *info = NULL;
	uint64_t *pins = NULL;
	size_t npins = 0;
	if (rc == 0 && !(info = calloc(1, (cnt ? cnt : 1) * sizeof(*info) + strbytes)))
		rc = nvf__oom();
	if (rc == 0)
		rc = nvf__lock_reader_pins(&db->lock, &pins, &npins);
	if (rc == 0) {
		uint64_t *more = realloc(pins, (npins + cnt + 2) * sizeof(uint64_t));
		if (!more)
			rc = nvf__oom();
		else
			pins = more;
	}
	if (rc == 0) {
		pins[npins++] = txn->base_txnid;
		if (db->durable_txnid)
			pins[npins++] = db->durable_txnid;
	}
	char *str = info ? (char *)(info + (cnt ? cnt : 1)) : NULL;
	size_t i = 0;
	for (rc = rc ? rc : nvf__cursor_seek(&c, txn, &txn->snapshots, 0); rc == 0 && c.valid && i < cnt;
	     rc = nvf__cursor_next(&c), i++) {
		uint64_t key;
		nvf_val v;
		struct nvf_disk_snapshot r;
		const char *nm = NULL;
		if ((rc = nvf__cursor_get(&c, &key, &v)) != 0 || (rc = rec_parse(&v, &r, &nm)) != 0)
			break;
		info[i].name = str;
		memcpy(str, nm, r.name_len);
		str[r.name_len] = 0;
		str += r.name_len + 1;
		if (r.note_len) {
			info[i].doc = str;
			memcpy(str, nm + r.name_len, r.note_len);
			str[r.note_len] = 0;
			str += r.note_len + 1;
		}
		info[i].txnid = r.txnid;
		info[i].created_us = (int64_t)(r.created_ns / 1000);
		pins[npins++] = r.txnid;
	}
	if (rc == 0)
		qsort(pins, npins, sizeof(uint64_t), cmp_u64);
	for (size_t j = 0; j < cnt && rc == 0; j++) {
		/* Every pin but this snapshot's own (another snapshot of the same state
		 * counts as another pin: deleting this one frees nothing then). */
		uint64_t s = info[j].txnid;
		size_t at = 0;
		while (at < npins && pins[at] != s)
			at++;
		memmove(pins + at, pins + at + 1, (npins - at - 1) * sizeof(uint64_t));
		npins--;
		rc = bytes_only(txn, pins, npins, s, &info[j].bytes_only);
		memmove(pins + at + 1, pins + at, (npins - at) * sizeof(uint64_t));
		pins[at] = s;
		npins++;
		nvf_txn *st = NULL;
		if (rc == 0 && (rc = nvf_txn_begin_snapshot(&st, db, info[j].name)) == 0) {
			rc = nvf_count(db, st, &info[j].count);
			nvf_txn_abort(st);
		} else if (rc == NVF_ENOTFOUND) {
			/* Deleted by another handle since the state we list: its pages may be
			 * reused already, so it cannot be read; it is gone, leave it out. */
			info[j].name = NULL;
			rc = 0;
		}
	}
	size_t kept = 0;
	for (size_t j = 0; rc == 0 && j < cnt; j++)
		if (info[j].name)
			info[kept++] = info[j];
	cnt = rc == 0 ? kept : cnt;
	free(pins);
	rc = own ? (nvf_txn_abort(txn), rc) : rc;
	if (rc != 0) {
		free(info);
		return rc;
	}
	*out = info;
	*n = cnt;
	return 0;
}

/* ---- restore ---- */

/* Pages are never changed once committed, so a page belongs to another state iff
 * that state's tree leads to it from its smallest key at its level
 * (nvf__tree_page_at); a page both states have is shared with everything below it.
 * Walking one state's trees and pruning at shared pages visits only what differs:
 * time proportional to the change, whatever the file's size. (Page txnids alone
 * would not do: a restore brings old pages back to life.) */

typedef struct {
	nvf_txn *txn;
	bool unpend; /* false: free what only the current state has; true: revive */
	/* PENDING runs by first page: what the snapshot has and the current state not */
	struct cand { uint64_t pgno, key; } *cand;
	size_t ncand;
	bool catalog_level; /* walking the catalog itself (its values are descriptors) */
} rwalk;

static int cmp_cand(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;
	return x->pgno < y->pgno ? -1 : x->pgno > y->pgno;
}

/* A page or extent that only the walked state has. */
static int only(rwalk *w, uint64_t pgno, uint64_t npages, uint64_t txnid)
{
	if (!w->unpend)
		return nvf__page_free(w->txn, pgno, npages, txnid);
	/* The snapshot's, gone from the current state: a PENDING run (the snapshot
	 * pins it) that becomes live again. */
	size_t a = 0, b = w->ncand;
	while (a < b) {
		size_t m = a + (b - a) / 2;
		if (w->cand[m].pgno < pgno)
			a = m + 1;
		else
			b = m;
	}
	if (a == w->ncand || w->cand[a].pgno != pgno)
		return nvf__corrupt(pgno, "a snapshot's page is neither live nor pending");
	return NVF_VEC_PUSH(w->txn->pend_del, w->cand[a].key);
}

static int only_page(void *ctx, uint64_t pgno, uint64_t txnid)
{
	return only(ctx, pgno, 1, txnid);
}

static int only_entry(void *ctx, uint64_t pgno, uint64_t key, const nvf_val *v, const nvf_val *ov);

static nvf_unshared_ops plain_ops(rwalk *w)
{
	return (nvf_unshared_ops){only_page, only_entry, w};
}

/* A leaf entry of a page only the walked state has: its extent, unless the other
 * state's value is the same extent; in the catalog, the tree it describes, against
 * the other state's tree of that id. */
static int only_entry(void *ctx, uint64_t pgno, uint64_t key, const nvf_val *v, const nvf_val *ov)
{
	rwalk *w = ctx;
	int rc = 0;
	if (v->extent && !(ov && ov->extent && ov->ref.pgno == v->ref.pgno)) {
		uint64_t np = nvf__pages_for(w->txn->db, v->ref.len);
		if ((rc = only(w, v->ref.pgno, np ? np : 1, v->ref.txnid)) != 0)
			return rc;
	}
	if (!w->catalog_level)
		return 0;
	struct nvf_disk_tree sub, osub = {0};
	if (v->len != sizeof(sub) || (ov && ov->len != sizeof(osub)))
		return nvf__corrupt(pgno, "catalog entry %llu has %llu bytes", (unsigned long long)key,
				    (unsigned long long)v->len);
	memcpy(&sub, v->data, sizeof(sub));
	if (ov)
		memcpy(&osub, ov->data, sizeof(osub));
	if (!sub.root)
		return 0;
	nvf_unshared_ops ops = plain_ops(w);
	w->catalog_level = false; /* the trees the catalog describes hold plain values */
	rc = nvf__tree_unshared(w->txn, sub.root, sub.depth, &osub, &ops);
	w->catalog_level = true;
	return rc;
}

/* The pages of catalog tree t (with the trees it describes) that tree o's state
 * does not have. */
static int diff_catalog(rwalk *w, const struct nvf_disk_tree *t, const struct nvf_disk_tree *o)
{
	nvf_unshared_ops ops = plain_ops(w);
	w->catalog_level = true;
	int rc = t->root ? nvf__tree_unshared(w->txn, t->root, t->depth, o, &ops) : 0;
	w->catalog_level = false;
	return rc;
}

int nvf_snapshot_restore(nvf_db *db, const char *name)
{
	if (!db || !name)
		return nvf__err(NVF_EINVAL, "nvf_snapshot_restore: NULL argument");
	nvf_txn *txn;
	int rc = nvf_txn_begin(&txn, db, 0);
	if (rc != 0)
		return rc;
	struct nvf_disk_snapshot rec;
	rwalk w = {.txn = txn};
	if ((rc = nvf__snapshot_find(txn, name, NULL, &rec)) != 0)
		goto out;
	nvf_cursor c;
	size_t cap = 0;
	for (rc = nvf__cursor_seek(&c, txn, &txn->pending, 0); rc == 0 && c.valid; rc = nvf__cursor_next(&c)) {
		uint64_t key;
		nvf_val v;
		struct nvf_disk_pending p;
		if ((rc = nvf__cursor_get(&c, &key, &v)) != 0)
			break;
		if (v.extent || v.len != sizeof(p)) {
			rc = nvf__corrupt(0, "PENDING record %llu has %llu bytes", (unsigned long long)key,
					  (unsigned long long)v.len);
			break;
		}
		memcpy(&p, v.data, sizeof(p));
		if (p.alloc_txnid > rec.txnid || (key >> NVF_PENDING_SEQ_BITS) <= rec.txnid)
			continue; /* could not be visible to the snapshot */
		if (w.ncand == cap) {
			cap = cap ? 2 * cap : 64;
			struct cand *m = realloc(w.cand, cap * sizeof(*m));
			if (!m) {
				rc = nvf__oom();
				break;
			}
			w.cand = m;
		}
		w.cand[w.ncand++] = (struct cand){p.pgno, key};
	}
	if (rc != 0)
		goto out;
	if (w.ncand)
		qsort(w.cand, w.ncand, sizeof(*w.cand), cmp_cand);
	/* What only the current state has is freed (readers of it keep it by the
	 * lifetime rule); what only the snapshot has leaves PENDING. */
	if ((rc = diff_catalog(&w, &txn->catalog, &rec.catalog)) != 0)
		goto out;
	w.unpend = true;
	if ((rc = diff_catalog(&w, &rec.catalog, &txn->catalog)) != 0)
		goto out;
	txn->catalog = rec.catalog;
	rc = nvf_txn_commit(txn);
	txn = NULL;
out:
	free(w.cand);
	if (txn)
		nvf_txn_abort(txn);
	return rc;
}
