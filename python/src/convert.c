/*
 * convert.c: arguments, numbers, vectors and matrices in (the buffer protocol),
 * and JSON <-> Python objects (jansson). Everything that turns a Python value into
 * C data happens here, with the GIL held, before any transaction begins: bad input
 * never reaches the database.
 */
#include "nusterdb.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- arguments ------------------------------------------------------------- */

int nvfpy_parse(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, const char *fmt,
		const char *const *kwlist, ...)
{
	/* The objects parsed out stay valid after the tuple and dict are released:
	 * the caller's argument array holds them for the whole call. */
	PyObject *tuple, *kwargs = NULL;
	Py_ssize_t nkw = kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0;
	va_list ap;
	int ok;
	tuple = PyTuple_New(nargs);
	if (tuple == NULL)
		return 0;
	for (Py_ssize_t i = 0; i < nargs; i++) {
		Py_INCREF(args[i]);
		PyTuple_SET_ITEM(tuple, i, args[i]);
	}
	if (nkw > 0) {
		kwargs = PyDict_New();
		if (kwargs == NULL) {
			Py_DECREF(tuple);
			return 0;
		}
		for (Py_ssize_t i = 0; i < nkw; i++) {
			if (PyDict_SetItem(kwargs, PyTuple_GET_ITEM(kwnames, i), args[nargs + i]) < 0) {
				Py_DECREF(tuple);
				Py_DECREF(kwargs);
				return 0;
			}
		}
	}
	va_start(ap, kwlist);
	ok = PyArg_VaParseTupleAndKeywords(tuple, kwargs, fmt, (char **)(uintptr_t)kwlist, ap);
	va_end(ap);
	Py_DECREF(tuple);
	Py_XDECREF(kwargs);
	return ok;
}

int nvfpy_id(nvfpy_state *st, PyObject *obj, uint64_t *out)
{
	PyObject *idx;
	unsigned long long v;
	int overflow;
	long long sv;
	if (PyBool_Check(obj) || !PyIndex_Check(obj)) {
		PyErr_Format(PyExc_TypeError, "an id must be an int, not %.100s", Py_TYPE(obj)->tp_name);
		return -1;
	}
	idx = PyNumber_Index(obj);
	if (idx == NULL)
		return -1;
	sv = PyLong_AsLongLongAndOverflow(idx, &overflow);
	if (sv == -1 && PyErr_Occurred()) {
		Py_DECREF(idx);
		return -1;
	}
	if (overflow == 0) {
		v = (unsigned long long)sv;
		if (sv < 0)
			goto range;
	} else if (overflow < 0) {
		goto range;
	} else {
		v = PyLong_AsUnsignedLongLong(idx);
		if (v == (unsigned long long)-1 && PyErr_Occurred()) {
			PyErr_Clear();
			goto range;
		}
		if (v == UINT64_MAX)
			goto range;
	}
	Py_DECREF(idx);
	*out = (uint64_t)v;
	return 0;
range:
	nvfpy_raise_fmt(st, st->InvalidArgumentError, NVF_EINVAL, "id %S is out of range (0 to 2^64 - 2)", idx);
	Py_DECREF(idx);
	return -1;
}

/* ---- buffers of numbers ---------------------------------------------------- */

/* The element kind of a struct-module format of one item, native byte order. */
static int format_kind(const char *fmt, char *kind, Py_ssize_t itemsize)
{
	if (fmt == NULL)
		fmt = "B";
	if (fmt[0] == '@' || fmt[0] == '=' || fmt[0] == '<')
		fmt++;
	else if (fmt[0] == '>' || fmt[0] == '!')
		return -1;
	if (fmt[0] == '\0' || fmt[1] != '\0')
		return -1;
	switch (fmt[0]) {
	case 'f': case 'd': case 'b': case 'B': case 'h': case 'H': case 'i': case 'I':
	case 'l': case 'L': case 'q': case 'Q': case 'n': case 'N': case '?':
		*kind = fmt[0];
		break;
	default:
		return -1;
	}
	(void)itemsize;
	return 0;
}

static double read_item(const char *p, char kind)
{
	switch (kind) {
	case 'f': { float v; memcpy(&v, p, sizeof v); return v; }
	case 'd': { double v; memcpy(&v, p, sizeof v); return v; }
	case 'b': return (double)*(const signed char *)p;
	case 'B': return (double)*(const unsigned char *)p;
	case '?': return *(const unsigned char *)p ? 1.0 : 0.0;
	case 'h': { short v; memcpy(&v, p, sizeof v); return v; }
	case 'H': { unsigned short v; memcpy(&v, p, sizeof v); return v; }
	case 'i': { int v; memcpy(&v, p, sizeof v); return v; }
	case 'I': { unsigned v; memcpy(&v, p, sizeof v); return v; }
	case 'l': { long v; memcpy(&v, p, sizeof v); return (double)v; }
	case 'L': { unsigned long v; memcpy(&v, p, sizeof v); return (double)v; }
	case 'q': { long long v; memcpy(&v, p, sizeof v); return (double)v; }
	case 'Q': { unsigned long long v; memcpy(&v, p, sizeof v); return (double)v; }
	case 'n': { Py_ssize_t v; memcpy(&v, p, sizeof v); return (double)v; }
	case 'N': { size_t v; memcpy(&v, p, sizeof v); return (double)v; }
	default: return 0.0;
	}
}

void nvfpy_floats_release(nvfpy_floats *f)
{
	if (f->has_view) {
		PyBuffer_Release(&f->view);
		f->has_view = 0;
	}
	PyMem_Free(f->owned);
	f->owned = NULL;
	f->data = NULL;
}

/* A buffer as (rows, cols): 1-D is one row; 2-D as it is; more: maxdim decides. */
static int floats_from_buffer(nvfpy_state *st, PyObject *obj, nvfpy_floats *out, int matrix)
{
	Py_buffer *v = &out->view;
	char kind;
	Py_ssize_t rows, cols, rs, cs;
	if (PyObject_GetBuffer(obj, v, PyBUF_RECORDS_RO) < 0)
		return -1;
	out->has_view = 1;
	if (format_kind(v->format, &kind, v->itemsize) < 0) {
		PyErr_Format(PyExc_TypeError, "a vector buffer holds numbers in native byte order, not format '%s'",
			     v->format != NULL ? v->format : "B");
		goto error;
	}
	if (v->ndim == 0) {
		PyErr_SetString(PyExc_TypeError, "a vector buffer needs at least one dimension");
		goto error;
	}
	if (v->ndim == 1) {
		rows = 1;
		cols = v->shape[0];
		rs = 0;
		cs = v->strides[0];
	} else if (v->ndim == 2) {
		rows = v->shape[0];
		cols = v->shape[1];
		rs = v->strides[0];
		cs = v->strides[1];
		if (!matrix && rows != 1) {
			nvfpy_raise_fmt(st, st->InvalidArgumentError, NVF_EINVAL,
					"a vector must be one-dimensional (or 1 x n), not %zd x %zd", rows, cols);
			goto error;
		}
	} else {
		nvfpy_raise_fmt(st, st->InvalidArgumentError, NVF_EINVAL,
				"an array of vectors has one or two dimensions, not %d", v->ndim);
		goto error;
	}
	out->rows = rows;
	out->cols = cols;
	/* Read in place when C-contiguous and aligned as a float must be (a view at an
	 * odd byte offset, which Dask hands out, is copied: libnvf reads floats). */
	if (kind == 'f' && cs == (Py_ssize_t)sizeof(float) && (rows <= 1 || rs == cols * (Py_ssize_t)sizeof(float)) &&
	    (uintptr_t)v->buf % _Alignof(float) == 0) {
		out->data = (const float *)v->buf;
		return 0;
	}
	{
		size_t n = (size_t)rows * (size_t)cols;
		float *f = PyMem_Malloc(n > 0 ? n * sizeof(float) : sizeof(float));
		if (f == NULL) {
			PyErr_NoMemory();
			goto error;
		}
		for (Py_ssize_t r = 0; r < rows; r++) {
			const char *row = (const char *)v->buf + r * rs;
			for (Py_ssize_t c = 0; c < cols; c++)
				f[(size_t)r * (size_t)cols + (size_t)c] = (float)read_item(row + c * cs, kind);
		}
		out->owned = f;
		out->data = f;
		PyBuffer_Release(v);
		out->has_view = 0;
	}
	return 0;
error:
	PyBuffer_Release(v);
	out->has_view = 0;
	return -1;
}

static int reject_text(PyObject *obj)
{
	if (PyUnicode_Check(obj) || PyBytes_Check(obj) || PyByteArray_Check(obj)) {
		PyErr_Format(PyExc_TypeError, "a vector must be a Vector, a sequence of numbers or a float buffer, not %.100s",
			     Py_TYPE(obj)->tp_name);
		return -1;
	}
	return 0;
}

/* Numbers of a sequence into dst (n of them). */
static int numbers_into(PyObject *seq, float *dst, Py_ssize_t n)
{
	for (Py_ssize_t i = 0; i < n; i++) {
		PyObject *x = PySequence_Fast_GET_ITEM(seq, i);
		double d;
		if (PyUnicode_Check(x) || PyBytes_Check(x)) {
			PyErr_Format(PyExc_TypeError, "component %zd is a %.100s, not a number", i, Py_TYPE(x)->tp_name);
			return -1;
		}
		d = PyFloat_AsDouble(x);
		if (d == -1.0 && PyErr_Occurred())
			return -1;
		dst[i] = (float)d;
	}
	return 0;
}

int nvfpy_vector_in(nvfpy_state *st, PyObject *obj, nvfpy_floats *out)
{
	PyObject *seq;
	Py_ssize_t n;
	memset(out, 0, sizeof *out);
	if (PyObject_TypeCheck(obj, st->Vector)) {
		VectorObject *v = (VectorObject *)obj;
		out->data = v->data;
		out->rows = 1;
		out->cols = v->dim;
		return 0;
	}
	if (reject_text(obj) < 0)
		return -1;
	if (PyObject_CheckBuffer(obj))
		return floats_from_buffer(st, obj, out, 0);
	seq = PySequence_Fast(obj, "a vector must be a Vector, a sequence of numbers or a float buffer");
	if (seq == NULL)
		return -1;
	n = PySequence_Fast_GET_SIZE(seq);
	out->owned = PyMem_Malloc(n > 0 ? (size_t)n * sizeof(float) : sizeof(float));
	if (out->owned == NULL) {
		Py_DECREF(seq);
		PyErr_NoMemory();
		return -1;
	}
	if (numbers_into(seq, out->owned, n) < 0) {
		Py_DECREF(seq);
		nvfpy_floats_release(out);
		return -1;
	}
	Py_DECREF(seq);
	out->data = out->owned;
	out->rows = 1;
	out->cols = n;
	return 0;
}

int nvfpy_matrix_in(nvfpy_state *st, PyObject *obj, nvfpy_floats *out)
{
	PyObject *seq;
	Py_ssize_t n, cols = -1;
	float *m = NULL;
	memset(out, 0, sizeof *out);
	if (PyObject_TypeCheck(obj, st->Vector))
		return nvfpy_vector_in(st, obj, out);
	if (reject_text(obj) < 0)
		return -1;
	if (PyObject_CheckBuffer(obj))
		return floats_from_buffer(st, obj, out, 1);
	/* a sequence of vectors */
	seq = PySequence_Fast(obj, "vectors must be a 2-D buffer or a sequence of vectors");
	if (seq == NULL)
		return -1;
	n = PySequence_Fast_GET_SIZE(seq);
	for (Py_ssize_t i = 0; i < n; i++) {
		nvfpy_floats row;
		if (nvfpy_vector_in(st, PySequence_Fast_GET_ITEM(seq, i), &row) < 0)
			goto error;
		if (cols < 0) {
			cols = row.cols;
			m = PyMem_Malloc((size_t)n * (size_t)(cols > 0 ? cols : 1) * sizeof(float));
			if (m == NULL) {
				nvfpy_floats_release(&row);
				PyErr_NoMemory();
				goto error;
			}
		} else if (row.cols != cols) {
			nvfpy_raise_fmt(st, st->InvalidArgumentError, NVF_EINVAL,
					"vector %zd has %zd components, vector 0 has %zd", i, row.cols, cols);
			nvfpy_floats_release(&row);
			goto error;
		}
		if (cols > 0)
			memcpy(m + (size_t)i * (size_t)cols, row.data, (size_t)cols * sizeof(float));
		nvfpy_floats_release(&row);
	}
	Py_DECREF(seq);
	out->owned = m;
	out->data = m;
	out->rows = n;
	out->cols = cols < 0 ? 0 : cols;
	return 0;
error:
	PyMem_Free(m);
	Py_DECREF(seq);
	return -1;
}

int nvfpy_ids_in(nvfpy_state *st, PyObject *obj, uint64_t **out, Py_ssize_t *n)
{
	uint64_t *ids = NULL;
	if (PyObject_CheckBuffer(obj) && !PyBytes_Check(obj)) {
		Py_buffer v;
		char kind;
		if (PyObject_GetBuffer(obj, &v, PyBUF_RECORDS_RO) < 0)
			return -1;
		if (v.ndim != 1 || format_kind(v.format, &kind, v.itemsize) < 0 || kind == 'f' || kind == 'd') {
			PyBuffer_Release(&v);
			PyErr_SetString(PyExc_TypeError, "ids must be a one-dimensional buffer of integers");
			return -1;
		}
		ids = PyMem_Malloc(v.shape[0] > 0 ? (size_t)v.shape[0] * sizeof(uint64_t) : 1);
		if (ids == NULL) {
			PyBuffer_Release(&v);
			PyErr_NoMemory();
			return -1;
		}
		for (Py_ssize_t i = 0; i < v.shape[0]; i++) {
			const char *p = (const char *)v.buf + i * v.strides[0];
			uint64_t u;
			int negative = 0;
			switch (kind) {
			case 'b': { signed char x; memcpy(&x, p, 1); negative = x < 0; u = (uint64_t)x; break; }
			case 'h': { short x; memcpy(&x, p, sizeof x); negative = x < 0; u = (uint64_t)x; break; }
			case 'i': { int x; memcpy(&x, p, sizeof x); negative = x < 0; u = (uint64_t)x; break; }
			case 'l': case 'q': case 'n': { long long x; memcpy(&x, p, sizeof x); negative = x < 0; u = (uint64_t)x; break; }
			case 'B': case '?': u = *(const unsigned char *)p; break;
			case 'H': { unsigned short x; memcpy(&x, p, sizeof x); u = x; break; }
			case 'I': { unsigned x; memcpy(&x, p, sizeof x); u = x; break; }
			default: { unsigned long long x; memcpy(&x, p, sizeof x); u = x; break; }
			}
			if (negative || u == UINT64_MAX) {
				PyBuffer_Release(&v);
				PyMem_Free(ids);
				nvfpy_raise_fmt(st, st->InvalidArgumentError, NVF_EINVAL,
						"ids[%zd] is out of range (0 to 2^64 - 2)", i);
				return -1;
			}
			ids[i] = u;
		}
		*n = v.shape[0];
		PyBuffer_Release(&v);
		*out = ids;
		return 0;
	}
	{
		PyObject *seq = PySequence_Fast(obj, "ids must be a buffer or a sequence of ints");
		Py_ssize_t len;
		if (seq == NULL)
			return -1;
		len = PySequence_Fast_GET_SIZE(seq);
		ids = PyMem_Malloc(len > 0 ? (size_t)len * sizeof(uint64_t) : 1);
		if (ids == NULL) {
			Py_DECREF(seq);
			PyErr_NoMemory();
			return -1;
		}
		for (Py_ssize_t i = 0; i < len; i++) {
			if (nvfpy_id(st, PySequence_Fast_GET_ITEM(seq, i), &ids[i]) < 0) {
				Py_DECREF(seq);
				PyMem_Free(ids);
				return -1;
			}
		}
		Py_DECREF(seq);
		*out = ids;
		*n = len;
		return 0;
	}
}

PyObject *nvfpy_fspath_bytes(PyObject *obj)
{
	PyObject *out = NULL;
	if (!PyUnicode_FSConverter(obj, &out))
		return NULL;
	return out;
}

/* ---- JSON -------------------------------------------------------------------- */

#define JSON_MAX_DEPTH 64

typedef struct enc {
	char path[512];
	size_t len;
	const char *what;
	PyObject *stack[JSON_MAX_DEPTH];
	int depth;
} enc;

static void path_push(enc *e, size_t *saved, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void path_push(enc *e, size_t *saved, const char *fmt, ...)
{
	va_list ap;
	*saved = e->len;
	if (e->len >= sizeof e->path - 1)
		return;
	va_start(ap, fmt);
	int w = vsnprintf(e->path + e->len, sizeof e->path - e->len, fmt, ap);
	va_end(ap);
	if (w > 0)
		e->len += (size_t)w < sizeof e->path - e->len ? (size_t)w : sizeof e->path - e->len - 1;
}

static json_t *enc_fail(enc *e, PyObject *obj, const char *why)
{
	if (PyErr_Occurred() && !PyErr_ExceptionMatches(PyExc_TypeError))
		return NULL;
	PyErr_Clear();
	if (why != NULL)
		PyErr_Format(PyExc_TypeError, "%s%s: %s", e->what, e->path, why);
	else
		PyErr_Format(PyExc_TypeError, "%s%s: a %.100s is not JSON data (None, bool, int, float, str, list, dict)",
			     e->what, e->path, Py_TYPE(obj)->tp_name);
	return NULL;
}

static json_t *enc_value(enc *e, PyObject *obj)
{
	if (obj == Py_None)
		return json_null();
	if (obj == Py_True)
		return json_true();
	if (obj == Py_False)
		return json_false();
	if (PyLong_Check(obj)) {
		int overflow;
		long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
		if (overflow)
			return enc_fail(e, obj, "an integer beyond int64");
		if (v == -1 && PyErr_Occurred())
			return NULL;
		return json_integer((json_int_t)v);
	}
	if (PyFloat_Check(obj)) {
		double d = PyFloat_AS_DOUBLE(obj);
		if (!isfinite(d))
			return enc_fail(e, obj, "NaN and infinity are not JSON numbers");
		return json_real(d);
	}
	if (PyUnicode_Check(obj)) {
		Py_ssize_t n;
		const char *s = PyUnicode_AsUTF8AndSize(obj, &n);
		if (s == NULL)
			return enc_fail(e, obj, "a string that is not valid UTF-8");
		return json_stringn_nocheck(s, (size_t)n);
	}
	if (PyDict_Check(obj) || PyList_Check(obj) || PyTuple_Check(obj)) {
		json_t *out;
		if (e->depth >= JSON_MAX_DEPTH)
			return enc_fail(e, obj, "nested too deeply");
		for (int i = 0; i < e->depth; i++)
			if (e->stack[i] == obj)
				return enc_fail(e, obj, "a cycle (the value contains itself)");
		e->stack[e->depth++] = obj;
		if (PyDict_Check(obj)) {
			PyObject *k, *v;
			Py_ssize_t pos = 0;
			out = json_object();
			while (out != NULL && PyDict_Next(obj, &pos, &k, &v)) {
				size_t saved;
				json_t *jv;
				Py_ssize_t kn;
				const char *ks;
				if (!PyUnicode_Check(k)) {
					PyObject *r = PyObject_Repr(k);
					path_push(e, &saved, "[%s]", r != NULL ? PyUnicode_AsUTF8(r) : "?");
					Py_XDECREF(r);
					PyErr_Clear();
					json_decref(out);
					out = NULL;
					enc_fail(e, k, "keys must be strings");
					break;
				}
				ks = PyUnicode_AsUTF8AndSize(k, &kn);
				if (ks == NULL) {
					json_decref(out);
					out = enc_fail(e, k, "a key that is not valid UTF-8");
					break;
				}
				path_push(e, &saved, e->len == 0 && e->what[0] == '\0' ? "%s" : ".%s", ks);
				Py_INCREF(v);
				jv = enc_value(e, v);
				Py_DECREF(v);
				if (jv == NULL || json_object_setn_new_nocheck(out, ks, (size_t)kn, jv) < 0) {
					json_decref(out);
					out = NULL;
					if (!PyErr_Occurred())
						PyErr_NoMemory();
					break;
				}
				e->len = saved;
				e->path[saved] = '\0';
			}
		} else {
			Py_ssize_t n = PySequence_Fast_GET_SIZE(obj);
			out = json_array();
			for (Py_ssize_t i = 0; out != NULL && i < n; i++) {
				size_t saved;
				json_t *jv;
				path_push(e, &saved, "[%zd]", i);
				jv = enc_value(e, PySequence_Fast_GET_ITEM(obj, i));
				if (jv == NULL || json_array_append_new(out, jv) < 0) {
					json_decref(out);
					out = NULL;
					if (!PyErr_Occurred())
						PyErr_NoMemory();
					break;
				}
				e->len = saved;
				e->path[saved] = '\0';
			}
		}
		e->depth--;
		if (out == NULL && !PyErr_Occurred())
			PyErr_NoMemory();
		return out;
	}
	return enc_fail(e, obj, NULL);
}

char *nvfpy_json_encode(PyObject *obj, const char *what)
{
	enc *e = PyMem_Calloc(1, sizeof *e);
	json_t *j;
	char *text;
	if (e == NULL) {
		PyErr_NoMemory();
		return NULL;
	}
	e->what = what;
	/* the root's path: "metadata['key'][0]..." reads as a key path */
	e->path[0] = '\0';
	j = enc_value(e, obj);
	PyMem_Free(e);
	if (j == NULL)
		return NULL;
	text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
	json_decref(j);
	if (text == NULL)
		PyErr_NoMemory();
	return text;
}

static PyObject *dec_value(json_t *j)
{
	switch (json_typeof(j)) {
	case JSON_OBJECT: {
		PyObject *d = PyDict_New();
		const char *k;
		size_t klen;
		json_t *v;
		void *tmp;
		if (d == NULL)
			return NULL;
		json_object_keylen_foreach_safe(j, tmp, k, klen, v) {
			PyObject *pk = PyUnicode_DecodeUTF8(k, (Py_ssize_t)klen, "surrogateescape");
			PyObject *pv = pk != NULL ? dec_value(v) : NULL;
			if (pv == NULL || PyDict_SetItem(d, pk, pv) < 0) {
				Py_XDECREF(pk);
				Py_XDECREF(pv);
				Py_DECREF(d);
				return NULL;
			}
			Py_DECREF(pk);
			Py_DECREF(pv);
		}
		return d;
	}
	case JSON_ARRAY: {
		size_t n = json_array_size(j);
		PyObject *l = PyList_New((Py_ssize_t)n);
		if (l == NULL)
			return NULL;
		for (size_t i = 0; i < n; i++) {
			PyObject *v = dec_value(json_array_get(j, i));
			if (v == NULL) {
				Py_DECREF(l);
				return NULL;
			}
			PyList_SET_ITEM(l, (Py_ssize_t)i, v);
		}
		return l;
	}
	case JSON_STRING:
		return PyUnicode_DecodeUTF8(json_string_value(j), (Py_ssize_t)json_string_length(j), "surrogateescape");
	case JSON_INTEGER:
		return PyLong_FromLongLong((long long)json_integer_value(j));
	case JSON_REAL:
		return PyFloat_FromDouble(json_real_value(j));
	case JSON_TRUE:
		Py_RETURN_TRUE;
	case JSON_FALSE:
		Py_RETURN_FALSE;
	case JSON_NULL:
	default:
		Py_RETURN_NONE;
	}
}

PyObject *nvfpy_json_decode(const char *text)
{
	json_error_t err;
	json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
	PyObject *out;
	if (j == NULL) {
		PyErr_Format(PyExc_ValueError, "the library returned JSON that does not parse: %s", err.text);
		return NULL;
	}
	out = dec_value(j);
	json_decref(j);
	return out;
}
