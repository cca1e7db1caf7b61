/*
 * snapshot.c: named snapshots, diff, compact, backup, stats and sync of a
 * NusterDB handle (docs/API.md describes each operation).
 */
#include "nusterdb.h"

#include <stdlib.h>
#include <string.h>

static int name_in(PyObject *obj, const char **out)
{
	if (!PyUnicode_Check(obj)) {
		PyErr_Format(PyExc_TypeError, "a snapshot name must be a str, not %.100s", Py_TYPE(obj)->tp_name);
		return -1;
	}
	*out = PyUnicode_AsUTF8(obj);
	return *out == NULL ? -1 : 0;
}

/* The snapshot's document: None, a dict, or a Metadata's data. */
static int doc_in(nvfpy_state *st, PyObject *obj, char **out)
{
	nvfpy_meta m;
	*out = NULL;
	if (obj == Py_None)
		return 0;
	if (nvfpy_meta_in(st, obj, &m) < 0)
		return -1;
	*out = m.json;
	m.json = NULL;
	if (*out == NULL) {
		*out = strdup("{}");
		if (*out == NULL) {
			nvfpy_meta_release(&m);
			PyErr_NoMemory();
			return -1;
		}
	}
	nvfpy_meta_release(&m);
	return 0;
}

static PyObject *make_snapshot(DBObject *self, const char *name, const char *doc)
{
	nvfpy_state *st = nvfpy_state_of(self);
	nvfpy_err e = {0, ""};
	nvf_txn *txn;
	char *made = NULL;
	PyObject *out;
	int rc;
	if (nvfpy_db_enter(self) < 0)
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	rc = nvfpy_db_wbegin(self, &txn, &e);
	if (rc >= 0) {
		rc = nvfpy_capture(&e, nvf_snapshot_create(self->db, txn, name, doc, &made));
		rc = nvfpy_db_wend(self, txn, rc, &e);
	}
	Py_END_ALLOW_THREADS
	nvfpy_db_leave(self);
	if (rc < 0) {
		nvf_free(made);
		return nvfpy_raise_err(st, &e, NULL);
	}
	out = made != NULL ? PyUnicode_FromString(made) : PyUnicode_FromString(name);
	nvf_free(made);
	return out;
}

PyObject *nvfpy_db_create_snapshot(PyObject *op, PyObject *const *args, Py_ssize_t nargs, PyObject *kw)
{
	static const char *const kwlist[] = {"name", NULL};
	PyObject *nameo = Py_None;
	const char *name = NULL;
	if (!nvfpy_parse(args, nargs, kw, "|O:create_snapshot", kwlist, &nameo))
		return NULL;
	if (nameo != Py_None && name_in(nameo, &name) < 0)
		return NULL;
	return make_snapshot((DBObject *)op, name, NULL);
}

PyObject *nvfpy_db_snapshot(PyObject *op, PyObject *const *args, Py_ssize_t nargs, PyObject *kw)
{
	static const char *const kwlist[] = {"name", "metadata", NULL};
	nvfpy_state *st = nvfpy_state_of(op);
	PyObject *nameo, *meta = Py_None, *out;
	const char *name;
	char *doc;
	if (!nvfpy_parse(args, nargs, kw, "O|O:snapshot", kwlist, &nameo, &meta) || name_in(nameo, &name) < 0)
		return NULL;
	if (doc_in(st, meta, &doc) < 0)
		return NULL;
	out = make_snapshot((DBObject *)op, name, doc);
	free(doc);
	return out;
}

static int list_of(DBObject *self, nvf_snapshot_info **list, size_t *n)
{
	nvfpy_state *st = nvfpy_state_of(self);
	nvfpy_err e = {0, ""};
	int rc;
	if (nvfpy_db_enter(self) < 0)
		return -1;
	Py_BEGIN_ALLOW_THREADS
	rc = nvfpy_capture(&e, nvf_snapshot_list(self->db, NULL, list, n));
	Py_END_ALLOW_THREADS
	nvfpy_db_leave(self);
	if (rc < 0) {
		nvfpy_raise_err(st, &e, NULL);
		return -1;
	}
	return 0;
}

PyObject *nvfpy_db_list_snapshots(PyObject *op, PyObject *unused)
{
	nvf_snapshot_info *list = NULL;
	size_t n = 0;
	PyObject *l;
	(void)unused;
	if (list_of((DBObject *)op, &list, &n) < 0)
		return NULL;
	l = PyList_New((Py_ssize_t)n);
	for (size_t i = 0; l != NULL && i < n; i++) {
		PyObject *s = PyUnicode_FromString(list[i].name);
		if (s == NULL) {
			Py_CLEAR(l);
			break;
		}
		PyList_SET_ITEM(l, (Py_ssize_t)i, s);
	}
	nvf_free(list);
	return l;
}

PyObject *nvfpy_db_snapshots(PyObject *op, PyObject *unused)
{
	nvf_snapshot_info *list = NULL;
	size_t n = 0;
	PyObject *l;
	(void)unused;
	if (list_of((DBObject *)op, &list, &n) < 0)
		return NULL;
	l = PyList_New((Py_ssize_t)n);
	for (size_t i = 0; l != NULL && i < n; i++) {
		PyObject *doc = list[i].doc != NULL ? nvfpy_json_decode(list[i].doc) : Py_NewRef(Py_None);
		PyObject *d = doc == NULL ? NULL
					  : Py_BuildValue("{sssKsLsLsKsNsK}", "name", list[i].name, "txnid",
							  (unsigned long long)list[i].txnid, "created_at",
							  (long long)(list[i].created_us / 1000000), "created_at_us",
							  (long long)list[i].created_us, "records",
							  (unsigned long long)list[i].count, "metadata", doc, "bytes_held",
							  (unsigned long long)list[i].bytes_only);
		if (d == NULL) {
			Py_CLEAR(l);
			break;
		}
		PyList_SET_ITEM(l, (Py_ssize_t)i, d);
	}
	nvf_free(list);
	return l;
}

PyObject *nvfpy_db_delete_snapshot(PyObject *op, PyObject *const *args, Py_ssize_t nargs, PyObject *kw)
{
	static const char *const kwlist[] = {"name", NULL};
	DBObject *self = (DBObject *)op;
	nvfpy_state *st = nvfpy_state_of(op);
	nvfpy_err e = {0, ""};
	PyObject *nameo;
	const char *name;
	nvf_txn *txn;
	int rc;
	if (!nvfpy_parse(args, nargs, kw, "O:delete_snapshot", kwlist, &nameo) || name_in(nameo, &name) < 0 ||
	    nvfpy_db_enter(self) < 0)
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	rc = nvfpy_db_wbegin(self, &txn, &e);
	if (rc >= 0) {
		rc = nvfpy_capture(&e, nvf_snapshot_delete(self->db, txn, name));
		rc = nvfpy_db_wend(self, txn, rc, &e);
	}
	Py_END_ALLOW_THREADS
	nvfpy_db_leave(self);
	if (rc < 0)
		return nvfpy_raise_err(st, &e, NULL);
	Py_RETURN_NONE;
}

PyObject *nvfpy_db_restore_snapshot(PyObject *op, PyObject *const *args, Py_ssize_t nargs, PyObject *kw)
{
	static const char *const kwlist[] = {"name", NULL};
	DBObject *self = (DBObject *)op;
	nvfpy_state *st = nvfpy_state_of(op);
	nvfpy_err e = {0, ""};
	PyObject *nameo;
	const char *name;
	int rc;
	if (!nvfpy_parse(args, nargs, kw, "O:restore_snapshot", kwlist, &nameo) || name_in(nameo, &name) < 0 ||
	    nvfpy_db_enter(self) < 0)
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	/* restore makes its own write transaction: no other writer of this handle */
	double start = 0;
	unsigned attempt = 0;
	PyThread_acquire_lock(self->wlock, WAIT_LOCK);
	do
		rc = nvfpy_capture(&e, nvf_snapshot_restore(self->db, name));
	while (nvfpy_db_retry(self, rc, &start, &attempt, &e));
	PyThread_release_lock(self->wlock);
	Py_END_ALLOW_THREADS
	nvfpy_db_leave(self);
	if (rc < 0)
		return nvfpy_raise_err(st, &e, NULL);
	Py_RETURN_NONE;
}

static int state_txn(DBObject *self, const char *name, nvf_txn **txn)
{
	if (name == NULL)
		return nvf_txn_begin(txn, self->db, NVF_TXN_RDONLY);
	return nvf_txn_begin_snapshot(txn, self->db, name);
}

PyObject *nvfpy_db_diff(PyObject *op, PyObject *const *args, Py_ssize_t nargs, PyObject *kw)
{
	static const char *const kwlist[] = {"from_snapshot", "to_snapshot", NULL};
	DBObject *self = (DBObject *)op;
	nvfpy_state *st = nvfpy_state_of(op);
	nvfpy_err e = {0, ""};
	PyObject *fo, *to = Py_None, *lists[4] = {NULL, NULL, NULL, NULL}, *out = NULL;
	const char *from = NULL, *until = NULL;
	nvf_diff_entry *d = NULL;
	size_t n = 0;
	int rc;
	if (!nvfpy_parse(args, nargs, kw, "O|O:diff", kwlist, &fo, &to))
		return NULL;
	if ((fo != Py_None && name_in(fo, &from) < 0) || (to != Py_None && name_in(to, &until) < 0))
		return NULL;
	if (nvfpy_db_enter(self) < 0)
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	nvf_txn *a = NULL, *b = NULL;
	rc = nvfpy_capture(&e, state_txn(self, from, &a));
	if (rc >= 0)
		rc = nvfpy_capture(&e, state_txn(self, until, &b));
	if (rc >= 0)
		rc = nvfpy_capture(&e, nvf_diff(self->db, a, b, &d, &n));
	nvf_txn_abort(b);
	nvf_txn_abort(a);
	Py_END_ALLOW_THREADS
	nvfpy_db_leave(self);
	if (rc < 0)
		return nvfpy_raise_err(st, &e, NULL);
	for (int i = 0; i < 4; i++)
		if ((lists[i] = PyList_New(0)) == NULL)
			goto done;
	for (size_t i = 0; i < n; i++) {
		static const unsigned bits[4] = {NVF_DIFF_ADDED, NVF_DIFF_REMOVED, NVF_DIFF_VECTOR, NVF_DIFF_DOC};
		for (int j = 0; j < 4; j++) {
			if (d[i].what & bits[j]) {
				PyObject *id = PyLong_FromUnsignedLongLong(d[i].id);
				if (id == NULL || PyList_Append(lists[j], id) < 0) {
					Py_XDECREF(id);
					goto done;
				}
				Py_DECREF(id);
			}
		}
	}
	out = Py_BuildValue("{sOsOsOsO}", "added", lists[0], "removed", lists[1], "vector_changed", lists[2],
			    "doc_changed", lists[3]);
done:
	for (int i = 0; i < 4; i++)
		Py_XDECREF(lists[i]);
	nvf_free(d);
	return out;
}

PyObject *nvfpy_db_compact(PyObject *op, PyObject *const *args, Py_ssize_t nargs, PyObject *kw)
{
	static const char *const kwlist[] = {"retrain_dict", NULL};
	DBObject *self = (DBObject *)op;
	nvfpy_state *st = nvfpy_state_of(op);
	nvfpy_err e = {0, ""};
	PyObject *file;
	int retrain = 0, rc;
	if (!nvfpy_parse(args, nargs, kw, "|p:compact", kwlist, &retrain) || nvfpy_db_enter(self) < 0)
		return NULL;
	/* Compaction makes this handle stale, so it is reopened afterwards: that
	 * needs every other call on the handle to have ended, and new ones to wait. */
	if (self->inflight > 1) {
		nvfpy_db_leave(self);
		return nvfpy_raise_fmt(st, st->BusyError, NVF_EBUSY,
				       "compact(): other threads are using this handle (%d calls in progress)",
				       self->inflight - 1);
	}
	file = PyUnicode_EncodeFSDefault(self->path);
	if (file == NULL) {
		nvfpy_db_leave(self);
		return NULL;
	}
	self->exclusive = 1;
	Py_BEGIN_ALLOW_THREADS
	nvf_txn *txn;
	double start = 0;
	unsigned attempt = 0;
	PyThread_acquire_lock(self->wlock, WAIT_LOCK);
	rc = 0;
	if (retrain) {
		do
			rc = nvfpy_capture(&e, nvf_txn_begin(&txn, self->db, 0));
		while (nvfpy_db_retry(self, rc, &start, &attempt, &e));
		if (rc >= 0) {
			rc = nvfpy_capture(&e, nvf_doc_dict_train(self->db, txn, 0));
			if (rc < 0)
				nvf_txn_abort(txn);
			else
				rc = nvfpy_capture(&e, nvf_txn_commit(txn));
		}
	}
	if (rc >= 0) {
		do
			rc = nvfpy_capture(&e, nvf_db_compact(self->db));
		while (nvfpy_db_retry(self, rc, &start, &attempt, &e));
	}
	if (rc >= 0)
		rc = nvfpy_db_reopen(self, PyBytes_AS_STRING(file), &e);
	PyThread_release_lock(self->wlock);
	Py_END_ALLOW_THREADS
	self->exclusive = 0;
	nvfpy_db_leave(self);
	Py_DECREF(file);
	if (rc < 0)
		return nvfpy_raise_err(st, &e, self->path);
	Py_RETURN_NONE;
}

PyObject *nvfpy_db_backup(PyObject *op, PyObject *const *args, Py_ssize_t nargs, PyObject *kw)
{
	static const char *const kwlist[] = {"dest", NULL};
	DBObject *self = (DBObject *)op;
	nvfpy_state *st = nvfpy_state_of(op);
	nvfpy_err e = {0, ""};
	PyObject *dest, *file;
	int exists, rc;
	if (!nvfpy_parse(args, nargs, kw, "O:backup", kwlist, &dest))
		return NULL;
	if (self->db == NULL)
		return nvfpy_raise_fmt(st, st->ClosedError, 0, "the database %R is closed", self->path);
	file = nvfpy_resolve_path(st, dest, 1, &exists);
	if (file == NULL)
		return NULL;
	if (nvfpy_db_enter(self) < 0) {
		Py_DECREF(file);
		return NULL;
	}
	Py_BEGIN_ALLOW_THREADS
	rc = nvfpy_capture(&e, nvf_db_backup(self->db, PyBytes_AS_STRING(file)));
	Py_END_ALLOW_THREADS
	nvfpy_db_leave(self);
	Py_DECREF(file);
	if (rc < 0)
		return nvfpy_raise_err(st, &e, dest);
	Py_RETURN_NONE;
}

static int set_u64(PyObject *d, const char *key, uint64_t v)
{
	PyObject *o = PyLong_FromUnsignedLongLong(v);
	int rc = o != NULL ? PyDict_SetItemString(d, key, o) : -1;
	Py_XDECREF(o);
	return rc;
}

static int set_obj(PyObject *d, const char *key, PyObject *o)
{
	int rc = o != NULL ? PyDict_SetItemString(d, key, o) : -1;
	Py_XDECREF(o);
	return rc;
}

PyObject *nvfpy_db_stats(PyObject *op, PyObject *const *args, Py_ssize_t nargs, PyObject *kw)
{
	static const char *const kwlist[] = {"detailed", NULL};
	DBObject *self = (DBObject *)op;
	nvfpy_state *st = nvfpy_state_of(op);
	nvfpy_err e = {0, ""};
	nvf_info info;
	nvf_stats *s = NULL;
	PyObject *d = NULL, *out = NULL;
	int detailed = 0, rc;
	if (!nvfpy_parse(args, nargs, kw, "|p:stats", kwlist, &detailed) || nvfpy_db_enter(self) < 0)
		return NULL;
	if (detailed) {
		s = calloc(1, sizeof *s);
		if (s == NULL) {
			nvfpy_db_leave(self);
			return PyErr_NoMemory();
		}
		s->version = NVF_STATS_VERSION;
	}
	nvf_calibration cal = NVF_CALIBRATION_INIT;
	Py_BEGIN_ALLOW_THREADS
	rc = nvfpy_capture(&e, nvf_db_info(self->db, NULL, &info));
	if (rc >= 0 && info.index == NVF_INDEX_HNSW)
		rc = nvfpy_capture(&e, nvf_hnsw_calibration(self->db, NULL, &cal));
	if (rc >= 0 && s != NULL)
		rc = nvfpy_capture(&e, nvf_db_stats(self->db, s));
	Py_END_ALLOW_THREADS
	nvfpy_db_leave(self);
	if (rc < 0) {
		nvfpy_raise_err(st, &e, NULL);
		goto done;
	}
	d = PyDict_New();
	if (d == NULL)
		goto done;
	if (set_u64(d, "vector_count", info.count) < 0 || set_u64(d, "dimension", info.dim) < 0 ||
	    set_obj(d, "distance_metric", nvfpy_enum_get(st->DistanceMetric, info.metric)) < 0 ||
	    set_obj(d, "index_type", nvfpy_enum_get(st->IndexType, info.index)) < 0 ||
	    set_u64(d, "file_size", info.file_size) < 0 || set_u64(d, "page_size", info.page_size) < 0 ||
	    set_u64(d, "pages", info.pages) < 0 || set_u64(d, "txnid", info.txnid) < 0 ||
	    set_u64(d, "snapshot_count", info.snapshots) < 0 || set_u64(d, "document_count", info.docs) < 0 ||
	    set_u64(d, "document_bytes", info.doc_bytes) < 0 ||
	    set_obj(d, "compression", nvfpy_enum_get(st->Compression, info.doc_codec)) < 0 ||
	    set_obj(d, "path", Py_NewRef(self->path)) < 0 ||
	    set_obj(d, "read_only", PyBool_FromLong(self->read_only)) < 0 ||
	    set_obj(d, "simd_level", PyUnicode_FromString(nvf_simd_level())) < 0 ||
	    set_obj(d, "config", Py_NewRef(self->config)) < 0)
		goto done;
	/* How an HNSW collection's searches walk, and what quantize auto measured. */
	if (info.index == NVF_INDEX_HNSW &&
	    (set_obj(d, "walk", PyUnicode_FromString(cal.walk == NVF_WALK_FLOAT ? "float" : "codes")) < 0 ||
	     (cal.automatic && set_obj(d, "calibration", Py_BuildValue("{sKsdsd}", "nodes", (unsigned long long)cal.nodes,
								       "recall_codes", cal.recall_codes,
								       "recall_float", cal.recall_float)) < 0)))
		goto done;
	if (s != NULL) {
		PyObject *kinds = Py_BuildValue(
			"{sKsKsKsKsKsKsKsKsK}", "header", (unsigned long long)s->pages_header, "system",
			(unsigned long long)s->pages_system, "vectors", (unsigned long long)s->pages_vectors, "ids",
			(unsigned long long)s->pages_ids, "graph", (unsigned long long)s->pages_graph, "documents",
			(unsigned long long)s->pages_documents, "fields", (unsigned long long)s->pages_fields, "free",
			(unsigned long long)s->pages_free, "pending", (unsigned long long)s->pages_pending);
		PyObject *levels = PyList_New(0), *hist = PyList_New(0);
		if (set_obj(d, "pages_by_kind", kinds) < 0 || levels == NULL || hist == NULL) {
			Py_XDECREF(levels);
			Py_XDECREF(hist);
			goto done;
		}
		for (uint32_t i = 0; i < s->hnsw_levels && i < 24; i++) {
			PyObject *v = PyLong_FromUnsignedLongLong(s->hnsw_nodes_per_level[i]);
			if (v == NULL || PyList_Append(levels, v) < 0) {
				Py_XDECREF(v);
				Py_DECREF(levels);
				Py_DECREF(hist);
				goto done;
			}
			Py_DECREF(v);
		}
		for (int i = 0; i < NVF_STATS_DEGREES; i++) {
			PyObject *v = PyLong_FromUnsignedLongLong(s->hnsw_degree0[i]);
			if (v == NULL || PyList_Append(hist, v) < 0) {
				Py_XDECREF(v);
				Py_DECREF(levels);
				Py_DECREF(hist);
				goto done;
			}
			Py_DECREF(v);
		}
		if (set_u64(d, "free_pages", s->pages_free) < 0 || set_obj(d, "hnsw_levels", levels) < 0 ||
		    set_obj(d, "degree_histogram", hist) < 0)
			goto done;
	}
	out = nvfpy_stats_new(st, d);
done:
	Py_XDECREF(d);
	free(s);
	return out;
}

PyObject *nvfpy_db_sync(PyObject *op, PyObject *unused)
{
	DBObject *self = (DBObject *)op;
	nvfpy_state *st = nvfpy_state_of(op);
	nvfpy_err e = {0, ""};
	int rc;
	(void)unused;
	if (nvfpy_db_enter(self) < 0)
		return NULL;
	if (self->read_only) {
		nvfpy_db_leave(self);
		Py_RETURN_NONE;
	}
	Py_BEGIN_ALLOW_THREADS
	PyThread_acquire_lock(self->wlock, WAIT_LOCK);
	rc = nvfpy_capture(&e, nvf_db_sync(self->db));
	PyThread_release_lock(self->wlock);
	Py_END_ALLOW_THREADS
	nvfpy_db_leave(self);
	if (rc < 0)
		return nvfpy_raise_err(st, &e, NULL);
	Py_RETURN_NONE;
}
