/*
 * search.c: search, range_search, the numpy path (knn, knn_query, add_items) and
 * batch_insert, and the result-array type that exports malloc'd int64 / float32
 * results through the buffer protocol (numpy.asarray of it is a zero-copy view).
 *
 * Long batches run in slices of about 50 ms with the GIL released; between slices
 * the GIL is taken back and signals are checked, so that Ctrl-C interrupts them
 * (a write is then aborted: nothing of the call is written).
 */
#ifdef _OPENMP
#include <omp.h>
#endif
#include "nusterdb.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Long calls run in slices of about this long, checking for Ctrl-C between them:
 * an interrupt is answered within ~100 ms. */
#define SLICE_TARGET_NS 100000000.0

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* The next slice's size from the last one's rate, within [lo, hi]; at least twice
 * the last while that took under half the target. Batched kernels get cheaper per
 * item as a slice grows (an exact batch reads the vectors once per slice, not per
 * query), so a rate measured on a small slice alone would keep slices small: knn of
 * 2,000 queries over 60,000 x 784 vectors ran at 243 queries/s instead of 3,357. */
static size_t next_slice(size_t done, double ns, size_t lo, size_t hi)
{
	double per = ns / (double)(done > 0 ? done : 1);
	double s = per > 0 ? SLICE_TARGET_NS / per : (double)hi;
	if (ns < SLICE_TARGET_NS / 2 && s < 2.0 * (double)done)
		s = 2.0 * (double)done;
	if (s < (double)lo)
		return lo;
	if (s > (double)hi)
		return hi;
	return (size_t)s;
}

/* ---- the result array ------------------------------------------------------------ */

typedef struct ResultObject {
	PyObject_HEAD
	void *data; /* malloc'd */
	char format[2];
	int ndim;
	Py_ssize_t itemsize;
	Py_ssize_t shape[2];
	Py_ssize_t strides[2];
} ResultObject;

static int result_getbuffer(PyObject *op, Py_buffer *view, int flags)
{
	ResultObject *r = (ResultObject *)op;
	view->obj = Py_NewRef(op);
	view->buf = r->data;
	view->itemsize = r->itemsize;
	view->len = r->itemsize * r->shape[0] * (r->ndim == 2 ? r->shape[1] : 1);
	view->readonly = 0;
	view->format = (flags & PyBUF_FORMAT) ? r->format : NULL;
	view->ndim = r->ndim;
	view->shape = (flags & PyBUF_ND) ? r->shape : NULL;
	view->strides = (flags & PyBUF_STRIDES) ? r->strides : NULL;
	view->suboffsets = NULL;
	view->internal = NULL;
	return 0;
}

static void result_dealloc(PyObject *op)
{
	PyTypeObject *tp = Py_TYPE(op);
	free(((ResultObject *)op)->data);
	tp->tp_free(op);
	Py_DECREF(tp);
}

static PyObject *result_repr(PyObject *op)
{
	ResultObject *r = (ResultObject *)op;
	if (r->ndim == 2)
		return PyUnicode_FromFormat("<nusterdb result buffer '%s' %zd x %zd>", r->format, r->shape[0], r->shape[1]);
	return PyUnicode_FromFormat("<nusterdb result buffer '%s' %zd>", r->format, r->shape[0]);
}

static PyType_Slot result_slots[] = {
	{Py_tp_doc, (void *)"Search results in the extension's memory (memoryview or numpy.asarray read them)."},
	{Py_tp_dealloc, NVFPY_FN(result_dealloc)},
	{Py_tp_repr, NVFPY_FN(result_repr)},
	{Py_bf_getbuffer, NVFPY_FN(result_getbuffer)},
	{0, NULL},
};

PyType_Spec nvfpy_result_spec = {
	.name = "nusterdb._core.ResultBuffer",
	.basicsize = sizeof(ResultObject),
	.flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION,
	.slots = result_slots,
};

static PyObject *numpy_asarray(nvfpy_state *st)
{
	if (st->numpy_asarray == NULL) {
		PyObject *np = PyImport_ImportModule("numpy");
		if (np != NULL) {
			st->numpy_asarray = nvfpy_getattr(np, "asarray");
			Py_DECREF(np);
		}
		if (st->numpy_asarray == NULL) {
			PyErr_Clear();
			st->numpy_asarray = Py_NewRef(Py_None);
		}
	}
	return st->numpy_asarray;
}

PyObject *nvfpy_result_array(nvfpy_state *st, void *data, char format, Py_ssize_t rows, Py_ssize_t cols, int ndim)
{
	ResultObject *r = (ResultObject *)st->ResultArray->tp_alloc(st->ResultArray, 0);
	PyObject *asarray, *out;
	if (r == NULL) {
		free(data);
		return NULL;
	}
	r->data = data;
	r->format[0] = format;
	r->format[1] = '\0';
	r->itemsize = format == 'q' ? 8 : 4;
	r->ndim = ndim;
	r->shape[0] = rows;
	r->shape[1] = cols;
	r->strides[0] = ndim == 2 ? cols * r->itemsize : r->itemsize;
	r->strides[1] = r->itemsize;
	asarray = numpy_asarray(st);
	if (asarray == Py_None)
		return (PyObject *)r;
	out = PyObject_CallOneArg(asarray, (PyObject *)r);
	Py_DECREF(r);
	return out;
}

/* ---- single searches ------------------------------------------------------------- */

static PyObject *results_list(const nvf_result *res, size_t n)
{
	PyObject *l = PyList_New((Py_ssize_t)n);
	if (l == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		PyObject *t = Py_BuildValue("(Kd)", (unsigned long long)res[i].id, (double)res[i].distance);
		if (t == NULL) {
			Py_DECREF(l);
			return NULL;
		}
		PyList_SET_ITEM(l, (Py_ssize_t)i, t);
	}
	return l;
}

static int ef_in(nvfpy_state *st, PyObject *obj, uint32_t *out)
{
	long v;
	*out = 0;
	if (obj == NULL || obj == Py_None)
		return 0;
	v = PyLong_AsLong(obj);
	if (v == -1 && PyErr_Occurred())
		return -1;
	if (v < 1 || v > (long)UINT32_MAX) {
		nvfpy_raise_fmt(st, st->InvalidArgumentError, NVF_EINVAL, "ef_search = %ld must be at least 1", v);
		return -1;
	}
	*out = (uint32_t)v;
	return 0;
}

PyObject *nvfpy_db_search(PyObject *op, PyObject *const *args, Py_ssize_t nargs, PyObject *kw)
{
	static const char *const kwlist[] = {"query", "k", "ef_search", "filter", NULL};
	DBObject *self = (DBObject *)op;
	nvfpy_state *st = nvfpy_state_of(op);
	PyObject *q, *efo = Py_None, *fo = Py_None, *out = NULL;
	Py_ssize_t k = 10;
	nvfpy_floats f;
	nvf_search_options so = NVF_SEARCH_OPTIONS_INIT;
	nvf_filter *filter = NULL;
	nvf_result *res = NULL;
	nvfpy_err e = {0, ""};
	size_t nout = 0;
	int rc;
	if (!nvfpy_parse(args, nargs, kw, "O|nOO:search", kwlist, &q, &k, &efo, &fo))
		return NULL;
	if (k < 1)
		return nvfpy_raise_fmt(st, st->InvalidArgumentError, NVF_EINVAL, "k = %zd must be at least 1", k);
	if (ef_in(st, efo, &so.ef_search) < 0 || nvfpy_vector_in(st, q, &f) < 0)
		return NULL;
	if (nvfpy_filter_in(st, fo, &filter) < 0 || nvfpy_db_enter(self) < 0)
		goto done;
	so.where = filter;
	Py_BEGIN_ALLOW_THREADS
	nvf_txn *txn;
	uint64_t count = 0;
	rc = nvfpy_capture(&e, nvf_txn_begin(&txn, self->db, NVF_TXN_RDONLY));
	if (rc >= 0) {
		rc = nvfpy_capture(&e, nvf_count(self->db, txn, &count));
		if (rc >= 0 && count > 0) {
			size_t kk = (uint64_t)k < count ? (size_t)k : (size_t)count;
			res = malloc(kk * sizeof *res);
			if (res == NULL)
				rc = -12; /* -ENOMEM */
			else
				rc = nvfpy_capture(&e, nvf_search(self->db, txn, f.data, (size_t)f.cols, kk, &so, res, &nout));
		}
		nvf_txn_abort(txn);
	}
	Py_END_ALLOW_THREADS
	nvfpy_db_leave(self);
	if (rc == -12 && res == NULL)
		PyErr_NoMemory();
	else if (rc < 0)
		nvfpy_raise_err(st, &e, NULL);
	else
		out = results_list(res, nout);
done:
	free(res);
	nvf_filter_free(filter);
	nvfpy_floats_release(&f);
	return out;
}

PyObject *nvfpy_db_range_search(PyObject *op, PyObject *const *args, Py_ssize_t nargs, PyObject *kw)
{
	static const char *const kwlist[] = {"query", "radius", "filter", NULL};
	DBObject *self = (DBObject *)op;
	nvfpy_state *st = nvfpy_state_of(op);
	PyObject *q, *fo = Py_None, *out = NULL;
	double radius;
	nvfpy_floats f;
	nvf_search_options so = NVF_SEARCH_OPTIONS_INIT;
	nvf_filter *filter = NULL;
	nvf_result *res = NULL;
	nvfpy_err e = {0, ""};
	size_t nout = 0;
	int rc;
	if (!nvfpy_parse(args, nargs, kw, "Od|O:range_search", kwlist, &q, &radius, &fo))
		return NULL;
	if (nvfpy_vector_in(st, q, &f) < 0)
		return NULL;
	if (nvfpy_filter_in(st, fo, &filter) < 0 || nvfpy_db_enter(self) < 0)
		goto done;
	so.where = filter;
	Py_BEGIN_ALLOW_THREADS
	rc = nvfpy_capture(&e, nvf_range_search(self->db, NULL, f.data, (size_t)f.cols, (float)radius, &so, &res, &nout));
	Py_END_ALLOW_THREADS
	nvfpy_db_leave(self);
	if (rc < 0)
		nvfpy_raise_err(st, &e, NULL);
	else
		out = results_list(res, nout);
done:
	nvf_free(res);
	nvf_filter_free(filter);
	nvfpy_floats_release(&f);
	return out;
}

/* ---- batch search ------------------------------------------------------------------- */

static PyObject *knn_impl(DBObject *self, PyObject *q, Py_ssize_t k, uint32_t ef, PyObject *fo, int threads)
{
	nvfpy_state *st = nvfpy_state_of(self);
	nvfpy_floats f;
	nvf_search_options so = NVF_SEARCH_OPTIONS_INIT;
	nvf_filter *filter = NULL;
	nvfpy_err e = {0, ""};
	nvf_txn *txn = NULL;
	int64_t *ids = NULL;
	float *dist = NULL;
	nvf_result *tmp = NULL;
	PyObject *ids_arr = NULL, *dist_arr = NULL;
	size_t nq, kk = 0, done = 0, slice = 16, smax;
	uint64_t count = 0;
	int rc = 0;
	PyThreadState *ts;
	if (k < 1)
		return nvfpy_raise_fmt(st, st->InvalidArgumentError, NVF_EINVAL, "k = %zd must be at least 1", k);
	/* Refused before the (n, k) arrays are allocated: libnvf would refuse it after. */
	if ((size_t)k > NVF_MAX_K)
		return nvfpy_raise_fmt(st, st->InvalidArgumentError, NVF_EINVAL, "k = %zd: at most %u (NVF_MAX_K)", k,
				       NVF_MAX_K);
	if (nvfpy_matrix_in(st, q, &f) < 0)
		return NULL;
	nq = (size_t)f.rows;
	if (nvfpy_filter_in(st, fo, &filter) < 0)
		goto error;
	so.where = filter;
	so.ef_search = ef;
	so.threads = threads < 0 ? 0 : threads;
	/* The arrays are (nq, k) whatever the count: a k whose size wraps is as much
	 * memory as there is not (it wrapped to a small allocation, then overflowed it). */
	if ((size_t)k > SIZE_MAX / sizeof *ids / (nq > 0 ? nq : 1)) {
		PyErr_NoMemory();
		goto error;
	}
	ids = malloc((nq > 0 ? nq : 1) * (size_t)k * sizeof *ids);
	dist = malloc((nq > 0 ? nq : 1) * (size_t)k * sizeof *dist);
	if (ids == NULL || dist == NULL) {
		PyErr_NoMemory();
		goto error;
	}
	for (size_t i = 0; i < nq * (size_t)k; i++) {
		ids[i] = -1;
		dist[i] = INFINITY;
	}
	if (nvfpy_db_enter(self) < 0)
		goto error;
	ts = PyEval_SaveThread();
	rc = nvfpy_capture(&e, nvf_txn_begin(&txn, self->db, NVF_TXN_RDONLY));
	if (rc >= 0)
		rc = nvfpy_capture(&e, nvf_count(self->db, txn, &count));
	kk = (uint64_t)k < count ? (size_t)k : (size_t)count;
	smax = kk > 0 ? (64u << 20) / (kk * sizeof(nvf_result)) : 1;
	if (smax < 1)
		smax = 1;
	if (smax > 65536)
		smax = 65536;
	if (rc >= 0 && kk > 0 && nq > 0) {
		tmp = malloc((nq < smax ? nq : smax) * kk * sizeof *tmp);
		if (tmp == NULL)
			rc = -12;
	}
	PyEval_RestoreThread(ts);
	while (rc >= 0 && kk > 0 && done < nq) {
		size_t s = slice < nq - done ? slice : nq - done;
		double t0;
		if (s > smax)
			s = smax;
		ts = PyEval_SaveThread();
		t0 = now_ns();
		rc = nvfpy_capture(&e, nvf_search_batch(self->db, txn, f.data + done * (size_t)f.cols, s, (size_t)f.cols, kk,
							 &so, tmp));
		if (rc >= 0) {
			for (size_t i = 0; i < s; i++) {
				for (size_t j = 0; j < kk; j++) {
					const nvf_result *r = &tmp[i * kk + j];
					size_t at = (done + i) * (size_t)k + j;
					ids[at] = r->id == NVF_NO_ID ? -1 : (int64_t)r->id;
					dist[at] = r->id == NVF_NO_ID ? INFINITY : r->distance;
				}
			}
		}
		slice = next_slice(s, now_ns() - t0, 1, smax);
		PyEval_RestoreThread(ts);
		done += s;
		if (rc >= 0 && done < nq && PyErr_CheckSignals() < 0)
			break;
	}
	nvf_txn_abort(txn);
	nvfpy_db_leave(self);
	if (PyErr_Occurred())
		goto error;
	if (rc == -12 && tmp == NULL) {
		PyErr_NoMemory();
		goto error;
	}
	if (rc < 0) {
		nvfpy_raise_err(st, &e, NULL);
		goto error;
	}
	free(tmp);
	tmp = NULL;
	nvf_filter_free(filter);
	filter = NULL;
	nvfpy_floats_release(&f);
	ids_arr = nvfpy_result_array(st, ids, 'q', (Py_ssize_t)nq, k, 2);
	ids = NULL;
	if (ids_arr == NULL)
		goto error;
	dist_arr = nvfpy_result_array(st, dist, 'f', (Py_ssize_t)nq, k, 2);
	dist = NULL;
	if (dist_arr == NULL)
		goto error;
	return Py_BuildValue("(NN)", ids_arr, dist_arr);
error:
	Py_XDECREF(ids_arr);
	free(tmp);
	free(ids);
	free(dist);
	nvf_filter_free(filter);
	nvfpy_floats_release(&f);
	return NULL;
}

PyObject *nvfpy_db_knn(PyObject *op, PyObject *const *args, Py_ssize_t nargs, PyObject *kw)
{
	static const char *const kwlist[] = {"Q", "k", "ef", "filter", "threads", NULL};
	nvfpy_state *st = nvfpy_state_of(op);
	PyObject *q, *efo = Py_None, *fo = Py_None;
	Py_ssize_t k = 1;
	int threads = 0;
	uint32_t ef;
	if (!nvfpy_parse(args, nargs, kw, "O|nOOi:knn", kwlist, &q, &k, &efo, &fo, &threads) || ef_in(st, efo, &ef) < 0)
		return NULL;
	return knn_impl((DBObject *)op, q, k, ef, fo, threads);
}

PyObject *nvfpy_db_knn_query(PyObject *op, PyObject *const *args, Py_ssize_t nargs, PyObject *kw)
{
	static const char *const kwlist[] = {"Q", "k", "num_threads", "filter", NULL};
	PyObject *q, *fo = Py_None;
	Py_ssize_t k = 1;
	int threads = -1;
	if (!nvfpy_parse(args, nargs, kw, "O|niO:knn_query", kwlist, &q, &k, &threads, &fo))
		return NULL;
	return knn_impl((DBObject *)op, q, k, 0, fo, threads <= 0 ? 0 : threads);
}

/* ---- batch insert ------------------------------------------------------------------- */

/* Insert n rows (and their metadata, metas may be NULL) in one write transaction,
 * in slices; out_ids receives the ids. On any error or interrupt nothing is
 * written. Returns 0, or -1 with an exception set. */
static int insert_rows(DBObject *self, const float *x, size_t n, size_t dim, const uint64_t *ids, nvfpy_meta *metas,
		       uint64_t *out_ids, int threads)
{
	nvfpy_state *st = nvfpy_state_of(self);
	nvfpy_err e = {0, ""};
	nvf_txn *txn = NULL;
	/* libnvf links a batch in parallel from 256 rows on (per thread, to keep every
	 * thread busy): slices smaller than that would build on one core. */
#ifdef _OPENMP
	size_t lo = 256 * (size_t)(threads > 0 ? threads : omp_get_max_threads());
#else
	size_t lo = 256;
#endif
	size_t done = 0, slice = lo;
	int rc, interrupted = 0;
	PyThreadState *ts;
	if (nvfpy_db_enter(self) < 0)
		return -1;
	ts = PyEval_SaveThread();
	rc = nvfpy_db_wbegin(self, &txn, &e);
	PyEval_RestoreThread(ts);
	while (rc >= 0 && done < n) {
		size_t s = slice < n - done ? slice : n - done;
		double t0;
		ts = PyEval_SaveThread();
		t0 = now_ns();
#ifdef _OPENMP
		/* libnvf's parallel build uses omp_get_max_threads(), which this sets for
		 * the calling thread only: other Python threads keep their own count. */
		int saved = omp_get_max_threads();
		if (threads > 0)
			omp_set_num_threads(threads);
#endif
		rc = nvfpy_capture(&e, nvf_insert_batch(self->db, txn, x + done * dim, s, dim, ids != NULL ? ids + done : NULL,
							 out_ids + done));
#ifdef _OPENMP
		omp_set_num_threads(saved);
#endif
		for (size_t i = 0; rc >= 0 && metas != NULL && i < s; i++) {
			nvfpy_meta *m = &metas[done + i];
			uint64_t id = out_ids[done + i];
			if (m->json != NULL)
				rc = nvfpy_capture(&e, nvf_meta_set(self->db, txn, id, m->json));
			if (rc >= 0 && m->ntags > 0)
				rc = nvfpy_capture(&e, nvf_tags_set(self->db, txn, id, (const char *const *)m->tags, m->ntags));
		}
		slice = next_slice(s, now_ns() - t0, lo, 1u << 20);
		PyEval_RestoreThread(ts);
		done += s;
		if (rc >= 0 && PyErr_CheckSignals() < 0) {
			interrupted = 1;
			break;
		}
	}
	if (txn != NULL) {
		ts = PyEval_SaveThread();
		rc = nvfpy_db_wend(self, txn, interrupted ? -1 : rc, &e);
		PyEval_RestoreThread(ts);
	}
	nvfpy_db_leave(self);
	if (interrupted)
		return -1;
	if (rc < 0) {
		nvfpy_raise_err(st, &e, NULL);
		return -1;
	}
	return 0;
}

/* metadata: None or a sequence of n Metadata / dict / None. */
static int metas_in(nvfpy_state *st, PyObject *obj, size_t n, nvfpy_meta **out)
{
	PyObject *seq;
	nvfpy_meta *m;
	*out = NULL;
	if (obj == Py_None)
		return 0;
	seq = PySequence_Fast(obj, "metadata must be a list of dicts or Metadata, one per vector");
	if (seq == NULL)
		return -1;
	if ((size_t)PySequence_Fast_GET_SIZE(seq) != n) {
		nvfpy_raise_fmt(st, st->InvalidArgumentError, NVF_EINVAL, "%zd metadata for %zu vectors",
				PySequence_Fast_GET_SIZE(seq), n);
		Py_DECREF(seq);
		return -1;
	}
	m = calloc(n > 0 ? n : 1, sizeof *m);
	if (m == NULL) {
		Py_DECREF(seq);
		PyErr_NoMemory();
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (nvfpy_meta_in(st, PySequence_Fast_GET_ITEM(seq, (Py_ssize_t)i), &m[i]) < 0) {
			for (size_t j = 0; j < i; j++)
				nvfpy_meta_release(&m[j]);
			free(m);
			Py_DECREF(seq);
			return -1;
		}
	}
	Py_DECREF(seq);
	*out = m;
	return 0;
}

static void metas_free(nvfpy_meta *m, size_t n)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		nvfpy_meta_release(&m[i]);
	free(m);
}

PyObject *nvfpy_db_add_items(PyObject *op, PyObject *const *args, Py_ssize_t nargs, PyObject *kw)
{
	static const char *const kwlist[] = {"X", "ids", "metadata", "threads", NULL};
	DBObject *self = (DBObject *)op;
	nvfpy_state *st = nvfpy_state_of(op);
	PyObject *x, *ido = Py_None, *meta = Py_None;
	int threads = 0;
	nvfpy_floats f;
	uint64_t *ids = NULL, *out = NULL;
	nvfpy_meta *metas = NULL;
	size_t n;
	if (!nvfpy_parse(args, nargs, kw, "O|OOi:add_items", kwlist, &x, &ido, &meta, &threads))
		return NULL;
	if (nvfpy_matrix_in(st, x, &f) < 0)
		return NULL;
	n = (size_t)f.rows;
	if (ido != Py_None) {
		Py_ssize_t nids;
		if (nvfpy_ids_in(st, ido, &ids, &nids) < 0)
			goto error;
		if ((size_t)nids != n) {
			nvfpy_raise_fmt(st, st->InvalidArgumentError, NVF_EINVAL, "%zd ids for %zu vectors", nids, n);
			goto error;
		}
	}
	if (metas_in(st, meta, n, &metas) < 0)
		goto error;
	out = malloc((n > 0 ? n : 1) * sizeof *out);
	if (out == NULL) {
		PyErr_NoMemory();
		goto error;
	}
	if (n > 0 && insert_rows(self, f.data, n, (size_t)f.cols, ids, metas, out, threads) < 0)
		goto error;
	if (n == 0 && nvfpy_db_enter(self) < 0)
		goto error;
	if (n == 0)
		nvfpy_db_leave(self);
	PyMem_Free(ids);
	metas_free(metas, n);
	nvfpy_floats_release(&f);
	return nvfpy_result_array(st, out, 'q', (Py_ssize_t)n, 0, 1);
error:
	free(out);
	PyMem_Free(ids);
	metas_free(metas, n);
	nvfpy_floats_release(&f);
	return NULL;
}

PyObject *nvfpy_db_batch_insert(PyObject *op, PyObject *const *args, Py_ssize_t nargs, PyObject *kw)
{
	static const char *const kwlist[] = {"vectors", "metadata_list", NULL};
	DBObject *self = (DBObject *)op;
	nvfpy_state *st = nvfpy_state_of(op);
	PyObject *x, *meta = Py_None, *l = NULL;
	nvfpy_floats f;
	uint64_t *out = NULL;
	nvfpy_meta *metas = NULL;
	size_t n;
	if (!nvfpy_parse(args, nargs, kw, "O|O:batch_insert", kwlist, &x, &meta))
		return NULL;
	if (nvfpy_matrix_in(st, x, &f) < 0)
		return NULL;
	n = (size_t)f.rows;
	if (metas_in(st, meta, n, &metas) < 0)
		goto done;
	out = malloc((n > 0 ? n : 1) * sizeof *out);
	if (out == NULL) {
		PyErr_NoMemory();
		goto done;
	}
	if (n > 0 && insert_rows(self, f.data, n, (size_t)f.cols, NULL, metas, out, 0) < 0)
		goto done;
	l = PyList_New((Py_ssize_t)n);
	for (size_t i = 0; l != NULL && i < n; i++) {
		PyObject *v = PyLong_FromUnsignedLongLong(out[i]);
		if (v == NULL) {
			Py_CLEAR(l);
			break;
		}
		PyList_SET_ITEM(l, (Py_ssize_t)i, v);
	}
done:
	free(out);
	metas_free(metas, n);
	nvfpy_floats_release(&f);
	return l;
}
