/* Named snapshots: a persistent catalog (SNAPSHOTS tree) of committed states kept
 * readable. A snapshot costs no copying: its record holds the state's catalog root,
 * and its txnid is a pin for the free-space manager (freelist.c), which keeps every
 * page that state can see. */
#include "nvf_int.h"

#include <errno.h>
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
	if (v->extent || v->len < sizeof(*rec))
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
		const char *nm;
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
	int rc = nvf_txn_begin(&a, db, NVF_TXN_RDONLY);
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
	if ((rc = nvf_txn_begin(&a, db, NVF_TXN_RDONLY)) != 0)
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
