/* Record metadata: times and versions in the META array (one 32-byte row per vector
 * row, read in place by filters), tags and documents in the DOCS tree (one value per
 * id: a codec header and the compressed payload), the zstd dictionaries, and the
 * public calls that read and change them. Every change goes through store(), which
 * keeps the field indexes, the totals and the version in step in the same
 * transaction. */
#include "meta.h"
#include "fields.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define META_CHUNK_BYTES (32u << 10)

static uint64_t now_us(void)
{
	return nvf__now_ns() / 1000;
}

/* ---- dictionaries (cached per handle: ids are never reused) ---- */

void nvf__dict_cache_free(nvf_db *db)
{
	for (size_t i = 0; i < db->ndicts; i++)
		nvf__dict_free(db->dicts[i]);
	free(db->dicts);
	db->dicts = NULL;
	db->ndicts = 0;
}

typedef struct dictctx {
	nvf_txn *txn;
	nvf_coll *c;
} dictctx;

/* The dictionary `id` of this state, loaded once per handle. */
static nvf_dict *dict_get(nvf_txn *txn, nvf_coll *c, uint32_t id)
{
	nvf_db *db = txn->db;
	nvf_dict *d = NULL;
	pthread_mutex_lock(&db->dict_mutex);
	for (size_t i = 0; i < db->ndicts && !d; i++)
		if (nvf__dict_id(db->dicts[i]) == id)
			d = db->dicts[i];
	pthread_mutex_unlock(&db->dict_mutex);
	if (d || !c->dicts || id == 0)
		return d;
	nvf_val v;
	if (nvf__tree_get(txn, &c->dicts->d, id, &v) != 0)
		return NULL;
	nvf_dict *nd = nvf__dict_new(id, v.data, (size_t)v.len, c->cfg.doc_level);
	if (!nd)
		return NULL;
	pthread_mutex_lock(&db->dict_mutex);
	for (size_t i = 0; i < db->ndicts && !d; i++)
		if (nvf__dict_id(db->dicts[i]) == id)
			d = db->dicts[i];
	if (!d) {
		nvf_dict **grown = realloc(db->dicts, (db->ndicts + 1) * sizeof(*grown));
		if (grown) {
			db->dicts = grown;
			db->dicts[db->ndicts++] = nd;
			d = nd;
			nd = NULL;
		}
	}
	pthread_mutex_unlock(&db->dict_mutex);
	nvf__dict_free(nd);
	return d;
}

static nvf_dict *dict_for(void *ctx, uint32_t id)
{
	dictctx *x = ctx;
	return dict_get(x->txn, x->c, id);
}

/* The dictionary new documents are compressed with: the newest one. */
static nvf_dict *dict_current(nvf_txn *txn, nvf_coll *c)
{
	if (c->cfg.doc_codec != NVF_CODEC_ZSTD_DICT || !c->dicts || c->dicts->d.aux == 0)
		return NULL;
	return dict_get(txn, c, (uint32_t)c->dicts->d.aux);
}

/* ---- opening and creating ---- */

static int open_trees(nvf_txn *txn, nvf_coll *c, bool create)
{
	int kind = create ? NVF_TREE_KIND_PLAIN : -1;
	int rc;
	if ((rc = nvf__array_open(txn, NVF_T_META, create ? sizeof(struct nvf_disk_recmeta) : 0, META_CHUNK_BYTES,
				  &c->meta)) != 0 ||
	    (rc = nvf__tree_open(txn, NVF_T_DOCS, kind, &c->docs)) != 0 ||
	    (rc = nvf__tree_open(txn, NVF_T_DICTS, kind, &c->dicts)) != 0)
		return rc == NVF_ENOTFOUND ? nvf__err(NVF_ECORRUPT, "a metadata tree of the collection is missing") : rc;
	if (c->meta->stride != sizeof(struct nvf_disk_recmeta))
		return nvf__err(NVF_ECORRUPT, "metadata rows of %u bytes, expected %zu", c->meta->stride,
				sizeof(struct nvf_disk_recmeta));
	return nvf__fields_open(txn, c, create);
}

int nvf__meta_create(nvf_txn *txn, nvf_coll *c)
{
	return open_trees(txn, c, true);
}

int nvf__meta_open(nvf_txn *txn, nvf_coll *c)
{
	if (c->cfg.version >= 2)
		return open_trees(txn, c, false);
	if (!(txn->flags & NVF_TXN_F_WRITE))
		return 0; /* a version 1 file read as it is: no documents, times 0, version 1 */
	/* The first write to a version 1 file gives it the metadata trees (a row of
	 * zeros per existing record: times unknown) and marks it version 2, so that an
	 * older library, which would not keep documents and indexes in step, refuses it. */
	int rc = open_trees(txn, c, true);
	uint64_t rows = nvf__array_rows(c->vec);
	if (rc == 0 && rows)
		rc = nvf__array_prepare(c->meta, txn, 0, rows);
	if (rc == 0) {
		for (uint64_t r = 0; r < rows && rc == 0; r++) {
			uint64_t id;
			memcpy(&id, nvf__array_row(c->rowids, r), 8);
			uint8_t *p;
			if (id != NVF_ROW_FREE && (rc = nvf__array_row_mut(c->meta, txn, r, &p)) == 0)
				((struct nvf_disk_recmeta *)(void *)p)->version = 1;
		}
	}
	nvf_tree *cfgt;
	c->cfg.version = NVF_CONFIG_VERSION;
	if (rc == 0 && (rc = nvf__tree_open(txn, NVF_T_CONFIG, -1, &cfgt)) == 0)
		rc = nvf__tree_put(txn, &cfgt->d, 0, &c->cfg, sizeof(c->cfg), 0, NULL);
	return nvf__txn_fail(txn, rc);
}

void nvf__meta_row(const nvf_coll *c, uint64_t row, struct nvf_disk_recmeta *out)
{
	if (c->meta && row < nvf__array_rows(c->meta)) {
		memcpy(out, nvf__array_row(c->meta, row), sizeof(*out));
	} else {
		memset(out, 0, sizeof(*out));
		out->version = 1;
	}
}

static int meta_mut(nvf_txn *txn, nvf_coll *c, uint64_t row, struct nvf_disk_recmeta **out)
{
	uint8_t *p;
	int rc = nvf__array_row_mut(c->meta, txn, row, &p);
	*out = (struct nvf_disk_recmeta *)(void *)p;
	return rc;
}

/* A change to the record: its update time, and its version once per transaction. */
static int bump(nvf_txn *txn, nvf_coll *c, uint64_t row)
{
	struct nvf_disk_recmeta *m;
	int rc = meta_mut(txn, c, row, &m);
	if (rc != 0)
		return rc;
	m->updated_us = now_us();
	if (m->txnid != txn->id) {
		m->txnid = txn->id;
		m->version++;
	}
	return 0;
}

int nvf__meta_on_insert(nvf_txn *txn, nvf_coll *c, uint64_t row)
{
	struct nvf_disk_recmeta *m;
	int rc = meta_mut(txn, c, row, &m);
	if (rc == 0) {
		uint64_t t = now_us();
		*m = (struct nvf_disk_recmeta){t, t, txn->id, 1, 0};
	}
	return rc;
}

int nvf__meta_on_update(nvf_txn *txn, nvf_coll *c, uint64_t row)
{
	return bump(txn, c, row);
}

/* ---- payloads ---- */

int nvf__meta_payload(nvf_txn *txn, nvf_coll *c, uint64_t row, uint64_t id, nvf_buf *tmp, nvf_payload *out)
{
	if (!c->docs)
		return 0;
	struct nvf_disk_recmeta rm;
	nvf__meta_row(c, row, &rm);
	if (!(rm.flags & NVF_RECMETA_PAYLOAD))
		return 0;
	nvf_val v;
	int rc = nvf__tree_get(txn, &c->docs->d, id, &v);
	if (rc == NVF_ENOTFOUND)
		return nvf__err(NVF_ECORRUPT, "id %llu: its metadata row says it has a document, the document tree has none",
				(unsigned long long)id);
	if (rc != 0)
		return rc;
	return nvf__meta_unpack(txn, c, id, &v, tmp, out);
}

int nvf__meta_unpack(nvf_txn *txn, nvf_coll *c, uint64_t id, const nvf_val *v, nvf_buf *tmp, nvf_payload *out)
{
	dictctx dc = {txn, c};
	const uint8_t *p;
	size_t n;
	int rc;
	if ((rc = nvf__codec_unpack(v->data, (size_t)v->len, dict_for, &dc, tmp, &p, &n)) != 0 ||
	    (rc = nvf__payload_parse(p, n, out)) != 0) {
		nvf__errmsg_prefix("id %llu", (unsigned long long)id);
		return rc;
	}
	return 1;
}

/* Replace the payload of (id, row) with raw (NULL: none). old is its parsed current
 * payload (NULL: none); new_pl the parsed new one. Inside a change: fails the
 * transaction on error. */
static int store(nvf_txn *txn, nvf_coll *c, uint64_t id, uint64_t row, const nvf_payload *old, const nvf_buf *raw,
		 const nvf_payload *new_pl)
{
	int rc = 0;
	/* The index changes first: old points into pages the put below may change. */
	if ((rc = nvf__fields_change(txn, c, row, old, new_pl)) != 0)
		return nvf__txn_fail(txn, rc);
	nvf_val v;
	uint64_t old_stored = 0, old_raw = 0;
	nvf_dochdr h;
	if (old && (rc = nvf__tree_get(txn, &c->docs->d, id, &v)) == 0 &&
	    (rc = nvf__codec_header(v.data, (size_t)v.len, &h)) == 0) {
		old_stored = v.len;
		old_raw = h.raw_len;
	} else if (old) {
		return nvf__txn_fail(txn, rc);
	}
	struct nvf_disk_recmeta *m;
	if (!raw) {
		if (old && (rc = nvf__tree_del(txn, &c->docs->d, id)) != 0)
			return nvf__txn_fail(txn, rc);
		c->doc_stored_delta -= (int64_t)old_stored;
		c->doc_raw_delta -= (int64_t)old_raw;
		if ((rc = meta_mut(txn, c, row, &m)) != 0)
			return nvf__txn_fail(txn, rc);
		m->flags &= ~NVF_RECMETA_PAYLOAD;
		return nvf__txn_fail(txn, bump(txn, c, row));
	}
	nvf_buf packed = {0};
	rc = nvf__codec_pack(c->cfg.doc_codec, c->cfg.doc_level, dict_current(txn, c), raw->p, raw->n, &packed);
	if (rc == 0)
		rc = nvf__tree_put(txn, &c->docs->d, id, packed.p, packed.n, 0, NULL);
	if (rc == 0) {
		c->doc_stored_delta += (int64_t)packed.n - (int64_t)old_stored;
		c->doc_raw_delta += (int64_t)raw->n - (int64_t)old_raw;
		if ((rc = meta_mut(txn, c, row, &m)) == 0) {
			m->flags |= NVF_RECMETA_PAYLOAD;
			rc = bump(txn, c, row);
		}
	}
	nvf__buf_free(&packed);
	return nvf__txn_fail(txn, rc);
}

int nvf__meta_on_delete(nvf_txn *txn, nvf_coll *c, uint64_t row, uint64_t id)
{
	if (!c->meta)
		return 0;
	nvf_buf tmp = {0};
	nvf_payload pl;
	int rc = nvf__meta_payload(txn, c, row, id, &tmp, &pl);
	if (rc == 1) {
		rc = nvf__fields_change(txn, c, row, &pl, NULL);
		nvf_val v;
		nvf_dochdr h;
		if (rc == 0 && (rc = nvf__tree_get(txn, &c->docs->d, id, &v)) == 0 &&
		    (rc = nvf__codec_header(v.data, (size_t)v.len, &h)) == 0) {
			c->doc_stored_delta -= (int64_t)v.len;
			c->doc_raw_delta -= (int64_t)h.raw_len;
			rc = nvf__tree_del(txn, &c->docs->d, id);
		}
	}
	nvf__buf_free(&tmp);
	struct nvf_disk_recmeta *m;
	if (rc == 0 && (rc = meta_mut(txn, c, row, &m)) == 0)
		memset(m, 0, sizeof(*m));
	return nvf__txn_fail(txn, rc);
}

static int read_stats(nvf_txn *txn, nvf_coll *c, struct nvf_disk_docstats *st);

/* ---- training a dictionary ---- */

/* Train a dictionary on (up to 8 MiB of) the stored payloads, store it as the next
 * id, and recompress every document with it. */
static int train(nvf_txn *txn, nvf_coll *c, size_t capacity)
{
	nvf_buf samples = {0}, tmp = {0}, dict = {0};
	NVF_VEC(size_t) sizes = {0};
	NVF_VEC(uint64_t) ids = {0};
	dictctx dc = {txn, c};
	nvf_cursor cur;
	int rc;
	for (rc = nvf__cursor_seek(&cur, txn, &c->docs->d, 0); rc == 0 && cur.valid; rc = nvf__cursor_next(&cur)) {
		uint64_t id;
		nvf_val v;
		const uint8_t *p;
		size_t n;
		if ((rc = nvf__cursor_get(&cur, &id, &v)) != 0 || (rc = NVF_VEC_PUSH(ids, id)) != 0)
			break;
		if (samples.n >= (8u << 20))
			continue;
		if ((rc = nvf__codec_unpack(v.data, (size_t)v.len, dict_for, &dc, &tmp, &p, &n)) != 0 ||
		    (rc = nvf__buf_put(&samples, p, n)) != 0 || (rc = NVF_VEC_PUSH(sizes, n)) != 0)
			break;
	}
	if (rc == 0 && sizes.n < 8)
		rc = nvf__err(NVF_EINVAL, "zstd dictionary training needs at least 8 documents, the collection has %zu",
			      sizes.n);
	/* By default a 32nd of the samples, 32 to 256 KiB (on Debian's package index, 256
	 * KiB from 8 MiB of samples: 9% smaller documents than 64 KiB). */
	if (rc == 0 && capacity == 0)
		capacity = samples.n / 32 < (32u << 10) ? (32u << 10) : samples.n / 32 > (256u << 10) ? (256u << 10) : samples.n / 32;
	if (rc == 0 && capacity > samples.n / 4)
		capacity = samples.n / 4 > 1024 ? samples.n / 4 : 1024;
	if (rc == 0)
		rc = nvf__dict_train(samples.p, sizes.v, sizes.n, capacity, &dict);
	nvf__buf_free(&samples);
	NVF_VEC_FREE(sizes);
	if (rc != 0)
		goto out;
	/* Validation is over: from here on the transaction changes. */
	uint64_t did = c->dicts->d.aux + 1;
	if (did > UINT16_MAX) {
		rc = nvf__err(NVF_EFULL, "no dictionary ids left (the collection was retrained %llu times)",
			      (unsigned long long)c->dicts->d.aux);
		goto out;
	}
	if ((rc = nvf__tree_put(txn, &c->dicts->d, did, dict.p, dict.n, 0, NULL)) != 0)
		goto fail;
	c->dicts->d.aux = did;
	c->dicts->d.aux32 = ids.n > UINT32_MAX ? UINT32_MAX : (uint32_t)ids.n; /* documents when trained */
	nvf_dict *d = dict_current(txn, c);
	if (!d) {
		rc = nvf__err(NVF_ECORRUPT, "the new dictionary cannot be loaded");
		goto fail;
	}
	for (size_t i = 0; i < ids.n && rc == 0; i++) {
		nvf_val v;
		const uint8_t *p;
		size_t n;
		nvf_buf packed = {0};
		if ((rc = nvf__tree_get(txn, &c->docs->d, ids.v[i], &v)) == 0 &&
		    (rc = nvf__codec_unpack(v.data, (size_t)v.len, dict_for, &dc, &tmp, &p, &n)) == 0 &&
		    (rc = nvf__codec_pack(NVF_CODEC_ZSTD_DICT, c->cfg.doc_level, d, p, n, &packed)) == 0) {
			c->doc_stored_delta += (int64_t)packed.n - (int64_t)v.len;
			rc = nvf__tree_put(txn, &c->docs->d, ids.v[i], packed.p, packed.n, 0, NULL);
		}
		nvf__buf_free(&packed);
	}
fail:
	rc = nvf__txn_fail(txn, rc);
out:
	nvf__buf_free(&tmp);
	nvf__buf_free(&dict);
	NVF_VEC_FREE(ids);
	return rc;
}

/* After a document is stored: the first dictionary once there are enough samples,
 * and a new one each time the documents have grown sixteen-fold since the last (a
 * dictionary trained on the first thousand documents says little about the next
 * hundred thousand), up to NVF_DICT_RETRAIN_MAX: every document is recompressed each
 * time, which costs at most about a fifteenth more than writing them once. A training
 * that fails (documents too alike or too short) is retried 1,000 documents later;
 * until then documents are plain zstd. */
static int maybe_train(nvf_txn *txn, nvf_coll *c)
{
	if (c->cfg.doc_codec != NVF_CODEC_ZSTD_DICT)
		return 0;
	uint64_t n = c->docs->d.count, trained_on = c->dicts->d.aux32;
	if (c->dicts->d.aux != 0 && (n < 16 * trained_on || trained_on >= NVF_DICT_RETRAIN_MAX))
		return 0;
	if (n < c->train_next)
		return 0;
	struct nvf_disk_docstats st;
	int rc = read_stats(txn, c, &st);
	if (rc != 0)
		return rc;
	if (n < NVF_DICT_TRAIN_DOCS && st.raw_bytes + (uint64_t)c->doc_raw_delta < NVF_DICT_TRAIN_BYTES)
		return 0;
	rc = train(txn, c, 0);
	if (rc == NVF_EINVAL) {
		c->train_next = n + NVF_DICT_TRAIN_DOCS; /* not trainable yet: plain zstd until then */
		return 0;
	}
	return rc;
}

/* ---- the public calls ---- */

/* The write calls: a transaction (the caller's or our own), the collection, the
 * record's row. */
typedef struct mcall {
	nvf_txn *txn;
	bool own;
	nvf_coll *c;
	uint64_t row;
} mcall;

static int begin_call(nvf_db *db, nvf_txn *txn, uint64_t id, bool write, mcall *m)
{
	m->txn = txn;
	int rc = nvf__coll_enter(db, &m->txn, write, &m->own, &m->c);
	if (rc != 0)
		return rc;
	rc = nvf__coll_lookup(m->txn, m->c, id, &m->row);
	if (rc == NVF_ENOTFOUND)
		rc = nvf__err(NVF_ENOTFOUND, "no record with id %llu", (unsigned long long)id);
	if (rc == 0 && write && !m->c->meta)
		rc = nvf__err(NVF_ECORRUPT, "the collection has no metadata trees");
	return rc;
}

static int end_call(mcall *m, bool write, int rc)
{
	return nvf__coll_leave(m->txn, m->own, write, rc);
}

/* Rebuild a payload from tags (sorted, unique) and an encoded document. */
typedef NVF_VEC(char *) strvec;

static void strvec_free(strvec *v)
{
	for (size_t i = 0; i < v->n; i++)
		free(v->v[i]);
	NVF_VEC_FREE(*v);
}

static int tags_of(const nvf_payload *pl, strvec *out)
{
	if (!pl)
		return 0;
	const uint8_t *it = pl->tags, *t;
	uint64_t len;
	int rc;
	while ((rc = nvf__payload_tag(pl, &it, &t, &len)) == 1) {
		char *s = strndup((const char *)t, (size_t)len);
		if (!s || NVF_VEC_PUSH(*out, s) != 0) {
			free(s);
			return nvf__oom();
		}
	}
	return rc;
}

/* Encode the new payload and store it (NULL when nothing is left). */
static int put_payload(mcall *m, uint64_t id, const nvf_payload *old, const strvec *tags, const uint8_t *doc,
		       size_t doclen)
{
	nvf_buf raw = {0};
	nvf_payload pl;
	int rc = 0;
	bool empty = tags->n == 0 && !doc;
	if (!empty && ((rc = nvf__payload_build(&raw, (const char *const *)tags->v, tags->n, doc, doclen)) != 0 ||
		       (rc = nvf__payload_parse(raw.p, raw.n, &pl)) != 0)) {
		nvf__buf_free(&raw);
		return rc; /* nothing changed yet */
	}
	if (!empty && raw.n > NVF_DOC_MAX_STORED)
		rc = nvf__err(NVF_EINVAL, "id %llu: tags and document take %zu bytes, at most %u", (unsigned long long)id,
			      raw.n, NVF_DOC_MAX_STORED);
	if (rc == 0 && (old || !empty)) {
		rc = store(m->txn, m->c, id, m->row, old, empty ? NULL : &raw, empty ? NULL : &pl);
		if (rc == 0 && !empty)
			rc = nvf__txn_fail(m->txn, maybe_train(m->txn, m->c));
	}
	nvf__buf_free(&raw);
	return rc;
}

static size_t doc_limit(const nvf_coll *c)
{
	return c->cfg.doc_max_bytes ? c->cfg.doc_max_bytes : NVF_DOC_MAX_DEFAULT;
}

int nvf_meta_set(nvf_db *db, nvf_txn *txn, uint64_t id, const char *json)
{
	mcall m;
	int rc = begin_call(db, txn, id, true, &m);
	if (rc != 0)
		return end_call(&m, true, rc);
	nvf_buf doc = {0}, tmp = {0};
	nvf_payload old;
	strvec tags = {0};
	bool remove = !json || strcmp(json, "null") == 0;
	/* Validate the new document before anything changes. */
	if (!remove)
		rc = nvf__doc_from_json(json, strlen(json), doc_limit(m.c), &doc);
	int has = rc == 0 ? nvf__meta_payload(m.txn, m.c, m.row, id, &tmp, &old) : 0;
	if (has < 0)
		rc = has;
	if (rc == 0)
		rc = tags_of(has ? &old : NULL, &tags);
	if (rc == 0)
		rc = put_payload(&m, id, has ? &old : NULL, &tags, remove ? NULL : doc.p, doc.n);
	strvec_free(&tags);
	nvf__buf_free(&doc);
	nvf__buf_free(&tmp);
	return end_call(&m, true, rc);
}

/* RFC 7386: merge patch into target (both jansson values; target is changed). */
static int merge_patch(json_t *target, json_t *patch)
{
	const char *k;
	json_t *v;
	json_object_foreach(patch, k, v) {
		if (json_is_null(v)) {
			json_object_del(target, k);
			continue;
		}
		json_t *t = json_object_get(target, k);
		if (json_is_object(v)) {
			if (!json_is_object(t)) {
				t = json_object();
				if (!t || json_object_set_new(target, k, t) != 0)
					return nvf__oom();
			}
			int rc = merge_patch(t, v);
			if (rc != 0)
				return rc;
			continue;
		}
		if (json_object_set(target, k, v) != 0)
			return nvf__oom();
	}
	return 0;
}

int nvf_meta_patch(nvf_db *db, nvf_txn *txn, uint64_t id, const char *json_patch)
{
	mcall m;
	int rc = begin_call(db, txn, id, true, &m);
	if (rc != 0)
		return end_call(&m, true, rc);
	nvf_buf doc = {0}, tmp = {0};
	nvf_payload old;
	strvec tags = {0};
	json_t *patch = NULL, *cur = NULL;
	if (!json_patch) {
		rc = nvf__err(NVF_EINVAL, "patch: NULL");
		goto out;
	}
	size_t plen = strlen(json_patch);
	json_error_t e;
	if (plen > doc_limit(m.c)) {
		rc = nvf__err(NVF_EINVAL, "patch: %zu bytes of JSON, more than the collection's limit of %zu", plen,
			      doc_limit(m.c));
		goto out;
	}
	if (!(patch = json_loadb(json_patch, plen, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &e))) {
		bool big = strstr(e.text, "too big") != NULL;
		rc = nvf__err(NVF_EINVAL, "patch: line %d, column %d: %s%s", e.line, e.column, e.text,
			      big ? " (integers must fit int64)" : "");
		goto out;
	}
	if ((rc = nvf__doc_check(patch, "patch")) != 0)
		goto out;
	int has = nvf__meta_payload(m.txn, m.c, m.row, id, &tmp, &old);
	if (has < 0) {
		rc = has;
		goto out;
	}
	if (has && old.has_doc) {
		/* The stored document as a tree, patched, checked, encoded again. */
		nvf_buf whole = {0};
		if ((rc = nvf__dval_encode_copy(&old.doc, &whole)) == 0) {
			cur = nvf__doc_to_json(whole.p, whole.n);
			if (!cur)
				rc = NVF_ECORRUPT;
		}
		nvf__buf_free(&whole);
		if (rc != 0)
			goto out;
	} else if (!(cur = json_object())) {
		rc = nvf__oom();
		goto out;
	}
	if ((rc = merge_patch(cur, patch)) != 0 || (rc = nvf__doc_check(cur, "patched document")) != 0)
		goto out;
	size_t len = json_dumpb(cur, NULL, 0, JSON_COMPACT);
	if (len > doc_limit(m.c)) {
		rc = nvf__err(NVF_EINVAL, "patched document: %zu bytes of JSON, more than the collection's limit of %zu", len,
			      doc_limit(m.c));
		goto out;
	}
	if ((rc = nvf__doc_encode(cur, &doc)) == 0 && (rc = tags_of(has ? &old : NULL, &tags)) == 0)
		rc = put_payload(&m, id, has ? &old : NULL, &tags, doc.p, doc.n);
out:
	json_decref(patch);
	json_decref(cur);
	strvec_free(&tags);
	nvf__buf_free(&doc);
	nvf__buf_free(&tmp);
	return end_call(&m, true, rc);
}

static int cmp_str(const void *a, const void *b)
{
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;
	size_t xl = strlen(x), yl = strlen(y);
	int c = memcmp(x, y, xl < yl ? xl : yl);
	return c ? c : xl < yl ? -1 : xl > yl;
}

static int tag_change(nvf_db *db, nvf_txn *txn, uint64_t id, const char *tag, bool add)
{
	mcall m;
	int rc = nvf__tag_check(tag);
	if (rc != 0)
		return rc;
	if ((rc = begin_call(db, txn, id, true, &m)) != 0)
		return end_call(&m, true, rc);
	nvf_buf tmp = {0}, doc = {0};
	nvf_payload old;
	strvec tags = {0};
	int has = nvf__meta_payload(m.txn, m.c, m.row, id, &tmp, &old);
	if (has < 0 || (rc = tags_of(has ? &old : NULL, &tags)) != 0) {
		rc = has < 0 ? has : rc;
		goto out;
	}
	size_t at = 0;
	bool found = false;
	for (; at < tags.n; at++) {
		int c = cmp_str(&tags.v[at], &tag);
		if (c >= 0) {
			found = c == 0;
			break;
		}
	}
	if (found == add)
		goto out; /* a set: nothing to do */
	if (add) {
		if (tags.n >= NVF_TAGS_MAX) {
			rc = nvf__err(NVF_EINVAL, "id %llu has %u tags, the most a record may have", (unsigned long long)id,
				      NVF_TAGS_MAX);
			goto out;
		}
		char *s = strdup(tag);
		if (!s || NVF_VEC_PUSH(tags, s) != 0) {
			free(s);
			rc = nvf__oom();
			goto out;
		}
		memmove(&tags.v[at + 1], &tags.v[at], (tags.n - 1 - at) * sizeof(char *));
		tags.v[at] = s;
	} else {
		free(tags.v[at]);
		memmove(&tags.v[at], &tags.v[at + 1], (tags.n - at - 1) * sizeof(char *));
		tags.n--;
	}
	/* The document stays as it is: copy its bytes out of the old payload. */
	if (has && old.has_doc && (rc = nvf__dval_encode_copy(&old.doc, &doc)) != 0)
		goto out;
	rc = put_payload(&m, id, has ? &old : NULL, &tags, has && old.has_doc ? doc.p : NULL, doc.n);
out:
	strvec_free(&tags);
	nvf__buf_free(&tmp);
	nvf__buf_free(&doc);
	return end_call(&m, true, rc);
}

int nvf_tags_set(nvf_db *db, nvf_txn *txn, uint64_t id, const char *const *tags, size_t n)
{
	if (n > 0 && !tags)
		return nvf__err(NVF_EINVAL, "nvf_tags_set: NULL tags");
	int rc = 0;
	strvec want = {0};
	for (size_t i = 0; i < n && rc == 0; i++) {
		if ((rc = nvf__tag_check(tags[i])) == 0) {
			char *s = strdup(tags[i]);
			if (!s || NVF_VEC_PUSH(want, s) != 0) {
				free(s);
				rc = nvf__oom();
			}
		}
	}
	/* A set: sorted, each once. */
	if (rc == 0 && want.n) {
		qsort(want.v, want.n, sizeof(char *), cmp_str);
		size_t u = 1;
		for (size_t i = 1; i < want.n; i++) {
			if (cmp_str(&want.v[i], &want.v[u - 1]) == 0)
				free(want.v[i]);
			else
				want.v[u++] = want.v[i];
		}
		want.n = u;
	}
	if (rc == 0 && want.n > NVF_TAGS_MAX)
		rc = nvf__err(NVF_EINVAL, "%zu tags: a record may have at most %u", want.n, NVF_TAGS_MAX);
	if (rc != 0) {
		strvec_free(&want);
		return rc;
	}
	mcall m;
	if ((rc = begin_call(db, txn, id, true, &m)) != 0) {
		strvec_free(&want);
		return end_call(&m, true, rc);
	}
	nvf_buf tmp = {0}, doc = {0};
	nvf_payload old;
	strvec have = {0};
	int has = nvf__meta_payload(m.txn, m.c, m.row, id, &tmp, &old);
	if (has < 0 || (rc = tags_of(has ? &old : NULL, &have)) != 0) {
		rc = has < 0 ? has : rc;
		goto out;
	}
	bool same = have.n == want.n;
	for (size_t i = 0; i < want.n && same; i++)
		same = strcmp(have.v[i], want.v[i]) == 0;
	if (same)
		goto out;
	if (has && old.has_doc && (rc = nvf__dval_encode_copy(&old.doc, &doc)) != 0)
		goto out;
	rc = put_payload(&m, id, has ? &old : NULL, &want, has && old.has_doc ? doc.p : NULL, doc.n);
out:
	strvec_free(&want);
	strvec_free(&have);
	nvf__buf_free(&tmp);
	nvf__buf_free(&doc);
	return end_call(&m, true, rc);
}

int nvf_tag_add(nvf_db *db, nvf_txn *txn, uint64_t id, const char *tag)
{
	return tag_change(db, txn, id, tag, true);
}

int nvf_tag_remove(nvf_db *db, nvf_txn *txn, uint64_t id, const char *tag)
{
	return tag_change(db, txn, id, tag, false);
}

int nvf_meta_get(nvf_db *db, nvf_txn *txn, uint64_t id, char **out)
{
	if (!out)
		return nvf__err(NVF_EINVAL, "nvf_meta_get: NULL output");
	mcall m;
	int rc = begin_call(db, txn, id, false, &m);
	if (rc != 0)
		return end_call(&m, false, rc);
	nvf_buf tmp = {0}, whole = {0};
	nvf_payload pl;
	char *s = NULL;
	int has = nvf__meta_payload(m.txn, m.c, m.row, id, &tmp, &pl);
	if (has < 0) {
		rc = has;
	} else if (!has || !pl.has_doc) {
		s = strdup("null");
	} else if ((rc = nvf__doc_print(&pl.doc, &whole)) == 0) {
		s = (char *)whole.p; /* handed over */
		whole.p = NULL;
	}
	if (rc == 0 && !s)
		rc = nvf__oom();
	nvf__buf_free(&tmp);
	nvf__buf_free(&whole);
	rc = end_call(&m, false, rc);
	if (rc == 0)
		*out = s;
	else
		free(s);
	return rc;
}

int nvf_record_info_get(nvf_db *db, nvf_txn *txn, uint64_t id, nvf_record_info *out)
{
	if (!out)
		return nvf__err(NVF_EINVAL, "nvf_record_info_get: NULL output");
	mcall m;
	int rc = begin_call(db, txn, id, false, &m);
	if (rc != 0)
		return end_call(&m, false, rc);
	nvf_record_info info = {.id = id};
	struct nvf_disk_recmeta rm;
	nvf__meta_row(m.c, m.row, &rm);
	info.created_us = (int64_t)rm.created_us;
	info.updated_us = (int64_t)rm.updated_us;
	info.version = rm.version;
	nvf_buf tmp = {0};
	nvf_payload pl;
	int has = nvf__meta_payload(m.txn, m.c, m.row, id, &tmp, &pl);
	if (has < 0) {
		rc = has;
	} else if (has) {
		nvf_val v;
		info.ntags = pl.ntags;
		info.has_doc = pl.has_doc;
		nvf_dochdr h;
		if ((rc = nvf__tree_get(m.txn, &m.c->docs->d, id, &v)) == 0 &&
		    (rc = nvf__codec_header(v.data, (size_t)v.len, &h)) == 0) {
			info.doc_bytes = (uint32_t)v.len;
			info.raw_bytes = h.raw_len;
		}
	}
	nvf__buf_free(&tmp);
	rc = end_call(&m, false, rc);
	if (rc == 0)
		*out = info;
	return rc;
}

int nvf_record_json(nvf_db *db, nvf_txn *txn, uint64_t id, unsigned flags, char **out)
{
	if (!out)
		return nvf__err(NVF_EINVAL, "nvf_record_json: NULL output");
	if (flags & ~NVF_RECORD_VECTOR)
		return nvf__err(NVF_EINVAL, "nvf_record_json: unknown flags 0x%x", flags);
	mcall m;
	int rc = begin_call(db, txn, id, false, &m);
	if (rc != 0)
		return end_call(&m, false, rc);
	nvf_buf tmp = {0}, whole = {0};
	nvf_payload pl;
	json_t *o = json_object(), *tags = json_array(), *doc = NULL;
	struct nvf_disk_recmeta rm;
	nvf__meta_row(m.c, m.row, &rm);
	int has = nvf__meta_payload(m.txn, m.c, m.row, id, &tmp, &pl);
	if (!o || !tags) {
		rc = nvf__oom();
	} else if (has < 0) {
		rc = has;
	} else if (has) {
		const uint8_t *it = pl.tags, *t;
		uint64_t len;
		int r;
		while ((r = nvf__payload_tag(&pl, &it, &t, &len)) == 1)
			json_array_append_new(tags, json_stringn_nocheck((const char *)t, (size_t)len));
		if (r < 0)
			rc = r;
		if (rc == 0 && pl.has_doc && (rc = nvf__dval_encode_copy(&pl.doc, &whole)) == 0 &&
		    !(doc = nvf__doc_to_json(whole.p, whole.n)))
			rc = NVF_ECORRUPT;
	}
	char *s = NULL;
	if (rc == 0) {
		json_object_set_new(o, "id", json_integer((json_int_t)id));
		json_object_set_new(o, "version", json_integer((json_int_t)rm.version));
		json_object_set_new(o, "created_at", json_integer((json_int_t)rm.created_us));
		json_object_set_new(o, "updated_at", json_integer((json_int_t)rm.updated_us));
		json_object_set(o, "tags", tags);
		json_object_set(o, "meta", doc ? doc : json_null());
		/* Documents keep every digit of their doubles (17); the vector's float32
		 * components need 9, written here so that they do not print as 17. */
		s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
		if (!s)
			rc = nvf__oom();
		if (rc == 0 && (flags & NVF_RECORD_VECTOR)) {
			nvf_buf b = {0};
			size_t n = strlen(s);
			const float *x = (const float *)(const void *)nvf__array_row(m.c->vec, m.row);
			rc = nvf__buf_put(&b, s, n - 1); /* without the closing brace */
			if (rc == 0)
				rc = nvf__buf_put(&b, ",\"vector\":[", 11);
			for (uint32_t i = 0; i < m.c->cfg.dim && rc == 0; i++) {
				char num[40];
				int len = isfinite(x[i]) ? snprintf(num, sizeof(num), "%s%.9g", i ? "," : "", (double)x[i])
							 : snprintf(num, sizeof(num), "%snull", i ? "," : "");
				rc = nvf__buf_put(&b, num, (size_t)len);
			}
			if (rc == 0)
				rc = nvf__buf_put(&b, "]}", 3);
			free(s);
			s = rc == 0 ? (char *)b.p : NULL;
			if (rc != 0)
				nvf__buf_free(&b);
		}
	}
	json_decref(o);
	json_decref(tags);
	json_decref(doc);
	nvf__buf_free(&tmp);
	nvf__buf_free(&whole);
	rc = end_call(&m, false, rc);
	if (rc == 0)
		*out = s;
	else
		free(s);
	return rc;
}

int nvf_doc_dict_train(nvf_db *db, nvf_txn *txn, size_t max_bytes)
{
	nvf_coll *c;
	bool own;
	int rc = nvf__coll_enter(db, &txn, true, &own, &c);
	if (rc != 0)
		return rc;
	if (!c->meta)
		rc = nvf__err(NVF_ECORRUPT, "the collection has no metadata trees");
	else if (c->cfg.doc_codec != NVF_CODEC_ZSTD_DICT)
		rc = nvf__err(NVF_EINVAL, "the collection stores documents with %s, not zstd-dict: it has no dictionary to train",
			      nvf__codec_name(c->cfg.doc_codec));
	else if (max_bytes != 0 && (max_bytes < 1024 || max_bytes > (16u << 20)))
		rc = nvf__err(NVF_EINVAL, "dictionary size %zu: must be 1 KiB to 16 MiB (0: sized from the documents)", max_bytes);
	else
		rc = train(txn, c, max_bytes);
	return nvf__coll_leave(txn, own, true, rc);
}

/* ---- commit, check, info ---- */

static int read_stats(nvf_txn *txn, nvf_coll *c, struct nvf_disk_docstats *st)
{
	memset(st, 0, sizeof(*st));
	nvf_val v;
	int rc = nvf__tree_get(txn, &c->dicts->d, 0, &v);
	if (rc == NVF_ENOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	if (v.len != sizeof(*st))
		return nvf__err(NVF_ECORRUPT, "document totals of %llu bytes", (unsigned long long)v.len);
	memcpy(st, v.data, sizeof(*st));
	return 0;
}

int nvf__meta_precommit(nvf_txn *txn, nvf_coll *c)
{
	if (!c->meta)
		return 0;
	int rc = nvf__fields_flush(txn, c);
	if (rc == 0 && (c->doc_stored_delta || c->doc_raw_delta)) {
		struct nvf_disk_docstats st;
		if ((rc = read_stats(txn, c, &st)) == 0) {
			st.stored_bytes += (uint64_t)c->doc_stored_delta;
			st.raw_bytes += (uint64_t)c->doc_raw_delta;
			rc = nvf__tree_put(txn, &c->dicts->d, 0, &st, sizeof(st), 0, NULL);
		}
		if (rc == 0)
			c->doc_stored_delta = c->doc_raw_delta = 0;
	}
	return nvf__txn_fail(txn, rc);
}

int nvf__meta_info(nvf_txn *txn, nvf_coll *c, nvf_info *out)
{
	out->doc_codec = c->cfg.doc_codec;
	out->doc_codec_level = c->cfg.doc_level;
	out->doc_max_bytes = c->cfg.doc_max_bytes ? c->cfg.doc_max_bytes : NVF_DOC_MAX_DEFAULT;
	if (!c->meta)
		return 0;
	struct nvf_disk_docstats st;
	int rc = read_stats(txn, c, &st);
	if (rc != 0)
		return rc;
	out->docs = c->docs->d.count;
	out->doc_bytes = st.stored_bytes + (uint64_t)c->doc_stored_delta;
	out->doc_raw_bytes = st.raw_bytes + (uint64_t)c->doc_raw_delta;
	if (c->dicts->d.aux) {
		nvf_val v;
		if ((rc = nvf__tree_get(txn, &c->dicts->d, c->dicts->d.aux, &v)) != 0)
			return rc;
		out->dict_bytes = (uint32_t)v.len;
	}
	out->fields = nvf__fields_count(c);
	return 0;
}

int nvf__meta_check(nvf_txn *txn, nvf_coll *c)
{
	if (!c->meta)
		return 0;
	uint64_t rows = nvf__array_rows(c->vec);
	if (nvf__array_rows(c->meta) < rows)
		return nvf__err(NVF_ECORRUPT, "%llu metadata rows for %llu vector rows",
				(unsigned long long)nvf__array_rows(c->meta), (unsigned long long)rows);
	nvf_buf tmp = {0};
	uint64_t with = 0, stored = 0, raw = 0;
	int rc = 0;
	for (uint64_t r = 0; r < rows && rc == 0; r++) {
		uint64_t id;
		memcpy(&id, nvf__array_row(c->rowids, r), 8);
		struct nvf_disk_recmeta rm;
		nvf__meta_row(c, r, &rm);
		if (id == NVF_ROW_FREE) {
			if (rm.flags & NVF_RECMETA_PAYLOAD)
				rc = nvf__err(NVF_ECORRUPT, "free row %llu says it has a document", (unsigned long long)r);
			continue;
		}
		if (rm.version == 0) {
			rc = nvf__err(NVF_ECORRUPT, "row %llu (id %llu): version 0", (unsigned long long)r, (unsigned long long)id);
			break;
		}
		nvf_payload pl;
		int has = nvf__meta_payload(txn, c, r, id, &tmp, &pl);
		if (has < 0) {
			rc = has;
			break;
		}
		if (!has)
			continue;
		with++;
		/* The payload must decode all the way down. */
		nvf_buf whole = {0};
		if (pl.has_doc) {
			if ((rc = nvf__dval_encode_copy(&pl.doc, &whole)) == 0) {
				json_t *j = nvf__doc_to_json(whole.p, whole.n);
				if (!j)
					rc = NVF_ECORRUPT;
				json_decref(j);
			}
			if (rc != 0)
				nvf__errmsg_prefix("id %llu", (unsigned long long)id);
		}
		nvf__buf_free(&whole);
		nvf_val v;
		nvf_dochdr h;
		if (rc == 0 && (rc = nvf__tree_get(txn, &c->docs->d, id, &v)) == 0 &&
		    (rc = nvf__codec_header(v.data, (size_t)v.len, &h)) == 0) {
			stored += v.len;
			raw += h.raw_len;
		}
	}
	nvf__buf_free(&tmp);
	if (rc != 0)
		return rc;
	if (with != c->docs->d.count)
		return nvf__err(NVF_ECORRUPT, "%llu records say they have documents, the document tree holds %llu",
				(unsigned long long)with, (unsigned long long)c->docs->d.count);
	struct nvf_disk_docstats st;
	if ((rc = read_stats(txn, c, &st)) != 0)
		return rc;
	if (st.stored_bytes != stored || st.raw_bytes != raw)
		return nvf__err(NVF_ECORRUPT, "document totals say %llu stored / %llu raw bytes, the documents hold %llu / %llu",
				(unsigned long long)st.stored_bytes, (unsigned long long)st.raw_bytes,
				(unsigned long long)stored, (unsigned long long)raw);
	return nvf__fields_check(txn, c);
}
