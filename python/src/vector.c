/*
 * vector.c: nusterdb.Vector, dim float32 values that the buffer protocol exports in
 * place, with the arithmetic, norms, distances and statistics of libnvf's nvf_vec_*
 * functions.
 */
#include "nusterdb.h"

#include <math.h>
#include <string.h>
#include <time.h>

static PyObject *vec_alloc(nvfpy_state *st, Py_ssize_t dim, float **data)
{
	float *d = NULL;
	if (dim < 1) {
		return nvfpy_raise_fmt(st, st->InvalidArgumentError, NVF_EINVAL,
				       "a vector has at least one component (dimension %zd)", dim);
	}
	if ((size_t)dim > PY_SSIZE_T_MAX / sizeof(float))
		return PyErr_NoMemory();
	d = PyMem_Malloc((size_t)dim * sizeof(float));
	if (d == NULL)
		return PyErr_NoMemory();
	*data = d;
	return nvfpy_vector_take(st, d, dim);
}

PyObject *nvfpy_vector_take(nvfpy_state *st, float *data, Py_ssize_t dim)
{
	VectorObject *v = (VectorObject *)st->Vector->tp_alloc(st->Vector, 0);
	if (v == NULL) {
		PyMem_Free(data);
		return NULL;
	}
	v->data = data;
	v->dim = dim;
	return (PyObject *)v;
}

static PyObject *vec_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = {"data", NULL};
	nvfpy_state *st = nvfpy_state_of_type(type);
	PyObject *data, *out;
	nvfpy_floats f;
	VectorObject *v;
	float *d = NULL;
	if (st == NULL || !PyArg_ParseTupleAndKeywords(args, kwds, "O:Vector", kwlist, &data))
		return NULL;
	if (nvfpy_vector_in(st, data, &f) < 0)
		return NULL;
	if (f.cols < 1) {
		nvfpy_floats_release(&f);
		return nvfpy_raise_fmt(st, st->InvalidArgumentError, NVF_EINVAL, "a vector has at least one component");
	}
	d = PyMem_Malloc((size_t)f.cols * sizeof(float));
	if (d == NULL) {
		nvfpy_floats_release(&f);
		return PyErr_NoMemory();
	}
	memcpy(d, f.data, (size_t)f.cols * sizeof(float));
	out = type->tp_alloc(type, 0);
	if (out == NULL) {
		PyMem_Free(d);
		nvfpy_floats_release(&f);
		return NULL;
	}
	v = (VectorObject *)out;
	v->data = d;
	v->dim = f.cols;
	nvfpy_floats_release(&f);
	return out;
}

static void vec_dealloc(PyObject *self)
{
	PyTypeObject *tp = Py_TYPE(self);
	PyMem_Free(((VectorObject *)self)->data);
	tp->tp_free(self);
	Py_DECREF(tp);
}

/* ---- factories (static methods, bound to the module) ----------------------- */

static int dim_arg(nvfpy_state *st, Py_ssize_t dim)
{
	if (dim < 1 || dim > (Py_ssize_t)NVF_MAX_DIM * 1024) {
		nvfpy_raise_fmt(st, st->InvalidArgumentError, NVF_EINVAL, "dimension %zd is out of range", dim);
		return -1;
	}
	return 0;
}

/* Vector.zeros(dim) and Vector.ones(dim): a new vector filled by fill. */
static PyObject *vec_filled(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kw, const char *fmt,
			    void (*fill)(float *, size_t))
{
	static const char *const kwlist[] = {"dim", NULL};
	nvfpy_state *st = nvfpy_state_mod(module);
	Py_ssize_t dim;
	float *d = NULL;
	PyObject *v;
	if (!nvfpy_parse(args, nargs, kw, fmt, kwlist, &dim) || dim_arg(st, dim) < 0)
		return NULL;
	v = vec_alloc(st, dim, &d);
	if (v != NULL)
		fill(d, (size_t)dim);
	return v;
}

static PyObject *vec_zeros(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kw)
{
	return vec_filled(module, args, nargs, kw, "n:zeros", nvf_vec_zeros);
}

static PyObject *vec_ones(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kw)
{
	return vec_filled(module, args, nargs, kw, "n:ones", nvf_vec_ones);
}

static uint64_t seed_state(PyObject *seed, int *err)
{
	static uint64_t counter;
	struct timespec ts;
	*err = 0;
	if (seed != Py_None) {
		unsigned long long s = PyLong_AsUnsignedLongLongMask(seed);
		if (s == (unsigned long long)-1 && PyErr_Occurred()) {
			*err = 1;
			return 0;
		}
		return (uint64_t)s;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	return ((uint64_t)ts.tv_sec * 1000000007u) ^ (uint64_t)ts.tv_nsec ^ (++counter * 0x9E3779B97F4A7C15ull) ^
	       (uint64_t)(uintptr_t)&counter;
}

static PyObject *vec_random(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kw)
{
	static const char *const kwlist[] = {"dim", "min", "max", "seed", NULL};
	nvfpy_state *st = nvfpy_state_mod(module);
	Py_ssize_t dim;
	double lo = -1.0, hi = 1.0;
	PyObject *seed = Py_None, *v;
	uint64_t state;
	float *d = NULL;
	int err, rc;
	if (!nvfpy_parse(args, nargs, kw, "n|ddO:random", kwlist, &dim, &lo, &hi, &seed) || dim_arg(st, dim) < 0)
		return NULL;
	state = seed_state(seed, &err);
	if (err)
		return NULL;
	v = vec_alloc(st, dim, &d);
	if (v == NULL)
		return NULL;
	rc = nvf_vec_random(d, (size_t)dim, (float)lo, (float)hi, &state);
	if (rc < 0) {
		Py_DECREF(v);
		return nvfpy_raise(st, rc, NULL);
	}
	return v;
}

static PyObject *vec_unit_random(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kw)
{
	static const char *const kwlist[] = {"dim", "seed", NULL};
	nvfpy_state *st = nvfpy_state_mod(module);
	Py_ssize_t dim;
	PyObject *seed = Py_None, *v;
	uint64_t state;
	float *d = NULL;
	int err, rc;
	if (!nvfpy_parse(args, nargs, kw, "n|O:unit_random", kwlist, &dim, &seed) || dim_arg(st, dim) < 0)
		return NULL;
	state = seed_state(seed, &err);
	if (err)
		return NULL;
	v = vec_alloc(st, dim, &d);
	if (v == NULL)
		return NULL;
	rc = nvf_vec_unit_random(d, (size_t)dim, &state);
	if (rc < 0) {
		Py_DECREF(v);
		return nvfpy_raise(st, rc, NULL);
	}
	return v;
}

static PyMethodDef vec_static_methods[] = {
	{"zeros", NVFPY_FASTKW(vec_zeros), METH_FASTCALL | METH_KEYWORDS, "Vector.zeros(dim): a vector of zeros."},
	{"ones", NVFPY_FASTKW(vec_ones), METH_FASTCALL | METH_KEYWORDS, "Vector.ones(dim): a vector of ones."},
	{"random", NVFPY_FASTKW(vec_random), METH_FASTCALL | METH_KEYWORDS,
	 "Vector.random(dim, min=-1.0, max=1.0, seed=None): uniform components in [min, max)."},
	{"unit_random", NVFPY_FASTKW(vec_unit_random), METH_FASTCALL | METH_KEYWORDS,
	 "Vector.unit_random(dim, seed=None): uniform on the unit sphere."},
	{NULL, NULL, 0, NULL},
};

/* Static methods whose C functions receive the module: the state without a
 * defining class. Shared with metric.c through nvfpy_vector_setup's sibling. */
static int add_static(PyObject *module, PyTypeObject *tp, PyMethodDef *defs)
{
	PyObject *modname = PyModule_GetNameObject(module);
	if (modname == NULL)
		return -1;
	for (PyMethodDef *d = defs; d->ml_name != NULL; d++) {
		PyObject *f = PyCMethod_New(d, module, modname, NULL), *sm;
		if (f == NULL)
			goto error;
		sm = PyStaticMethod_New(f);
		Py_DECREF(f);
		if (sm == NULL)
			goto error;
		if (nvfpy_setattr((PyObject *)tp, d->ml_name, sm) < 0) {
			Py_DECREF(sm);
			goto error;
		}
		Py_DECREF(sm);
	}
	Py_DECREF(modname);
	return 0;
error:
	Py_DECREF(modname);
	return -1;
}

int nvfpy_vector_setup(PyObject *module, nvfpy_state *st)
{
	return add_static(module, st->Vector, vec_static_methods);
}

/* ---- sequence and buffer ----------------------------------------------------- */

static Py_ssize_t vec_len(PyObject *self)
{
	return ((VectorObject *)self)->dim;
}

static PyObject *vec_item(PyObject *self, Py_ssize_t i)
{
	VectorObject *v = (VectorObject *)self;
	if (i < 0 || i >= v->dim) {
		PyErr_SetString(PyExc_IndexError, "vector index out of range");
		return NULL;
	}
	return PyFloat_FromDouble(v->data[i]);
}

static PyObject *vec_subscript(PyObject *self, PyObject *key)
{
	VectorObject *v = (VectorObject *)self;
	if (PySlice_Check(key)) {
		Py_ssize_t start, stop, step, n;
		float *d;
		PyObject *out;
		nvfpy_state *st = nvfpy_state_of(self);
		if (PySlice_Unpack(key, &start, &stop, &step) < 0)
			return NULL;
		n = PySlice_AdjustIndices(v->dim, &start, &stop, step);
		out = vec_alloc(st, n, &d);
		if (out == NULL)
			return NULL;
		for (Py_ssize_t i = 0; i < n; i++)
			d[i] = v->data[start + i * step];
		return out;
	}
	if (PyIndex_Check(key)) {
		Py_ssize_t i = PyNumber_AsSsize_t(key, PyExc_IndexError);
		if (i == -1 && PyErr_Occurred())
			return NULL;
		if (i < 0)
			i += v->dim;
		return vec_item(self, i);
	}
	PyErr_Format(PyExc_TypeError, "vector indices must be integers or slices, not %.100s", Py_TYPE(key)->tp_name);
	return NULL;
}

static int vec_ass_subscript(PyObject *self, PyObject *key, PyObject *value)
{
	VectorObject *v = (VectorObject *)self;
	Py_ssize_t i;
	double d;
	if (value == NULL) {
		PyErr_SetString(PyExc_TypeError, "a vector's components cannot be deleted");
		return -1;
	}
	if (!PyIndex_Check(key)) {
		PyErr_Format(PyExc_TypeError, "vector indices must be integers, not %.100s", Py_TYPE(key)->tp_name);
		return -1;
	}
	i = PyNumber_AsSsize_t(key, PyExc_IndexError);
	if (i == -1 && PyErr_Occurred())
		return -1;
	if (i < 0)
		i += v->dim;
	if (i < 0 || i >= v->dim) {
		PyErr_SetString(PyExc_IndexError, "vector assignment index out of range");
		return -1;
	}
	d = PyFloat_AsDouble(value);
	if (d == -1.0 && PyErr_Occurred())
		return -1;
	v->data[i] = (float)d;
	return 0;
}

static int vec_getbuffer(PyObject *self, Py_buffer *view, int flags)
{
	VectorObject *v = (VectorObject *)self;
	/* one dimension of float32, contiguous: every request can be met */
	view->obj = Py_NewRef(self);
	view->buf = v->data;
	view->len = v->dim * (Py_ssize_t)sizeof(float);
	view->readonly = 0;
	view->itemsize = sizeof(float);
	view->format = (flags & PyBUF_FORMAT) ? (char *)"f" : NULL;
	view->ndim = 1;
	view->shape = (flags & PyBUF_ND) ? &v->dim : NULL;
	view->strides = (flags & PyBUF_STRIDES) ? &view->itemsize : NULL;
	view->suboffsets = NULL;
	view->internal = NULL;
	return 0;
}

static PyObject *vec_iter(PyObject *self)
{
	return PySeqIter_New(self);
}

static PyObject *vec_to_list(PyObject *self, PyObject *unused)
{
	VectorObject *v = (VectorObject *)self;
	PyObject *l = PyList_New(v->dim);
	(void)unused;
	if (l == NULL)
		return NULL;
	for (Py_ssize_t i = 0; i < v->dim; i++) {
		PyObject *f = PyFloat_FromDouble(v->data[i]);
		if (f == NULL) {
			Py_DECREF(l);
			return NULL;
		}
		PyList_SET_ITEM(l, i, f);
	}
	return l;
}

static PyObject *vec_repr(PyObject *self)
{
	VectorObject *v = (VectorObject *)self;
	PyObject *parts = PyList_New(0), *sep = NULL, *body = NULL, *out = NULL;
	Py_ssize_t shown = v->dim <= 8 ? v->dim : 3;
	if (parts == NULL)
		return NULL;
	for (Py_ssize_t i = 0; i < v->dim; i++) {
		PyObject *f, *r;
		if (i == shown && v->dim > 8) {
			r = PyUnicode_FromString("...");
			i = v->dim - 2;
			if (r == NULL || PyList_Append(parts, r) < 0) {
				Py_XDECREF(r);
				goto done;
			}
			Py_DECREF(r);
		}
		f = PyFloat_FromDouble(v->data[i]);
		r = f != NULL ? PyObject_Repr(f) : NULL;
		Py_XDECREF(f);
		if (r == NULL || PyList_Append(parts, r) < 0) {
			Py_XDECREF(r);
			goto done;
		}
		Py_DECREF(r);
	}
	sep = PyUnicode_FromString(", ");
	if (sep == NULL)
		goto done;
	body = PyUnicode_Join(sep, parts);
	if (body == NULL)
		goto done;
	if (v->dim > 8)
		out = PyUnicode_FromFormat("Vector([%U], dim=%zd)", body, v->dim);
	else
		out = PyUnicode_FromFormat("Vector([%U])", body);
done:
	Py_XDECREF(body);
	Py_XDECREF(sep);
	Py_DECREF(parts);
	return out;
}

static PyObject *vec_richcompare(PyObject *a, PyObject *b, int op)
{
	nvfpy_state *st = nvfpy_state_of(a);
	VectorObject *x, *y;
	int eq;
	if ((op != Py_EQ && op != Py_NE) || st == NULL || !PyObject_TypeCheck(a, st->Vector) ||
	    !PyObject_TypeCheck(b, st->Vector))
		Py_RETURN_NOTIMPLEMENTED;
	x = (VectorObject *)a;
	y = (VectorObject *)b;
	eq = x->dim == y->dim;
	for (Py_ssize_t i = 0; eq && i < x->dim; i++)
		eq = x->data[i] == y->data[i];
	return PyBool_FromLong(op == Py_EQ ? eq : !eq);
}

static PyObject *vec_reduce(PyObject *self, PyObject *unused)
{
	PyObject *l = vec_to_list(self, unused);
	if (l == NULL)
		return NULL;
	return Py_BuildValue("(O(N))", (PyObject *)Py_TYPE(self), l);
}

/* ---- arithmetic ------------------------------------------------------------ */

enum { OP_ADD, OP_SUB, OP_MUL, OP_DIV };

/* other as a vector of self's dimension (a Vector, list or buffer). */
static int other_vector(nvfpy_state *st, VectorObject *self, PyObject *other, nvfpy_floats *f)
{
	if (nvfpy_vector_in(st, other, f) < 0)
		return -1;
	if (f->cols != self->dim) {
		nvfpy_raise_fmt(st, st->InvalidArgumentError, NVF_EINVAL,
				"vectors of different dimensions: %zd and %zd", self->dim, f->cols);
		nvfpy_floats_release(f);
		return -1;
	}
	return 0;
}

/* self op other (other a vector or a number); scalar_left: other op self. */
static PyObject *arith(nvfpy_state *st, VectorObject *self, PyObject *other, int op, int scalar_left, int strict)
{
	float *d = NULL;
	PyObject *out;
	int rc = 0;
	if (PyFloat_Check(other) || (PyLong_Check(other)) || (!strict && PyNumber_Check(other) && !PyObject_CheckBuffer(other) &&
							  !PySequence_Check(other))) {
		double s = PyFloat_AsDouble(other);
		if (s == -1.0 && PyErr_Occurred())
			return NULL;
		if (scalar_left && (op == OP_SUB || op == OP_DIV))
			Py_RETURN_NOTIMPLEMENTED;
		if (op == OP_DIV && s == 0.0) {
			PyErr_SetString(PyExc_ZeroDivisionError, "vector division by zero");
			return NULL;
		}
		out = vec_alloc(st, self->dim, &d);
		if (out == NULL)
			return NULL;
		switch (op) {
		case OP_ADD: nvf_vec_add_scalar(d, self->data, (float)s, (size_t)self->dim); break;
		case OP_SUB: nvf_vec_sub_scalar(d, self->data, (float)s, (size_t)self->dim); break;
		case OP_MUL: nvf_vec_mul_scalar(d, self->data, (float)s, (size_t)self->dim); break;
		default: rc = nvf_vec_div_scalar(d, self->data, (float)s, (size_t)self->dim); break;
		}
	} else {
		nvfpy_floats f;
		if (strict && !PyObject_TypeCheck(other, st->Vector))
			Py_RETURN_NOTIMPLEMENTED;
		if (other_vector(st, self, other, &f) < 0)
			return NULL;
		out = vec_alloc(st, self->dim, &d);
		if (out == NULL) {
			nvfpy_floats_release(&f);
			return NULL;
		}
		switch (op) {
		case OP_ADD: nvf_vec_add(d, self->data, f.data, (size_t)self->dim); break;
		case OP_SUB: nvf_vec_sub(d, self->data, f.data, (size_t)self->dim); break;
		case OP_MUL: nvf_vec_mul(d, self->data, f.data, (size_t)self->dim); break;
		default: rc = nvf_vec_div(d, self->data, f.data, (size_t)self->dim); break;
		}
		nvfpy_floats_release(&f);
	}
	if (rc < 0) {
		Py_DECREF(out);
		PyErr_SetString(PyExc_ZeroDivisionError, "vector division by zero");
		return NULL;
	}
	return out;
}

static PyObject *binop(PyObject *a, PyObject *b, int op)
{
	nvfpy_state *st;
	if (Py_TYPE(a)->tp_as_buffer != NULL && Py_TYPE(a)->tp_as_buffer->bf_getbuffer == vec_getbuffer) {
		st = nvfpy_state_of(a);
		return arith(st, (VectorObject *)a, b, op, 0, 1);
	}
	st = nvfpy_state_of(b);
	return arith(st, (VectorObject *)b, a, op, 1, 1);
}

static PyObject *nb_add(PyObject *a, PyObject *b) { return binop(a, b, OP_ADD); }
static PyObject *nb_sub(PyObject *a, PyObject *b) { return binop(a, b, OP_SUB); }
static PyObject *nb_mul(PyObject *a, PyObject *b) { return binop(a, b, OP_MUL); }
static PyObject *nb_div(PyObject *a, PyObject *b) { return binop(a, b, OP_DIV); }

static PyObject *nb_neg(PyObject *self)
{
	VectorObject *v = (VectorObject *)self;
	float *d = NULL;
	PyObject *out = vec_alloc(nvfpy_state_of(self), v->dim, &d);
	if (out != NULL)
		nvf_vec_mul_scalar(d, v->data, -1.0f, (size_t)v->dim);
	return out;
}

static PyObject *m_add(PyObject *self, PyObject *o) { return arith(nvfpy_state_of(self), (VectorObject *)self, o, OP_ADD, 0, 0); }
static PyObject *m_sub(PyObject *self, PyObject *o) { return arith(nvfpy_state_of(self), (VectorObject *)self, o, OP_SUB, 0, 0); }
static PyObject *m_mul(PyObject *self, PyObject *o) { return arith(nvfpy_state_of(self), (VectorObject *)self, o, OP_MUL, 0, 0); }
static PyObject *m_div(PyObject *self, PyObject *o) { return arith(nvfpy_state_of(self), (VectorObject *)self, o, OP_DIV, 0, 0); }

static PyObject *m_scale(PyObject *self, PyObject *o)
{
	double s = PyFloat_AsDouble(o);
	if (s == -1.0 && PyErr_Occurred())
		return NULL;
	return arith(nvfpy_state_of(self), (VectorObject *)self, o, OP_MUL, 0, 0);
}

/* ---- norms, distances, statistics ------------------------------------------- */

static PyObject *m_dot(PyObject *self, PyObject *o)
{
	nvfpy_state *st = nvfpy_state_of(self);
	VectorObject *v = (VectorObject *)self;
	nvfpy_floats f;
	float r;
	if (other_vector(st, v, o, &f) < 0)
		return NULL;
	r = nvf_vec_dot(v->data, f.data, (size_t)v->dim);
	nvfpy_floats_release(&f);
	return PyFloat_FromDouble(r);
}

static PyObject *m_norm(PyObject *self, PyObject *u) { (void)u; return PyFloat_FromDouble(nvf_vec_norm(((VectorObject *)self)->data, (size_t)((VectorObject *)self)->dim)); }
static PyObject *m_l1(PyObject *self, PyObject *u) { (void)u; return PyFloat_FromDouble(nvf_vec_l1_norm(((VectorObject *)self)->data, (size_t)((VectorObject *)self)->dim)); }
static PyObject *m_linf(PyObject *self, PyObject *u) { (void)u; return PyFloat_FromDouble(nvf_vec_linf_norm(((VectorObject *)self)->data, (size_t)((VectorObject *)self)->dim)); }
static PyObject *m_mean(PyObject *self, PyObject *u) { (void)u; return PyFloat_FromDouble(nvf_vec_mean(((VectorObject *)self)->data, (size_t)((VectorObject *)self)->dim)); }
static PyObject *m_std(PyObject *self, PyObject *u) { (void)u; return PyFloat_FromDouble(nvf_vec_std(((VectorObject *)self)->data, (size_t)((VectorObject *)self)->dim)); }
static PyObject *m_min(PyObject *self, PyObject *u) { (void)u; return PyFloat_FromDouble(nvf_vec_min(((VectorObject *)self)->data, (size_t)((VectorObject *)self)->dim)); }
static PyObject *m_max(PyObject *self, PyObject *u) { (void)u; return PyFloat_FromDouble(nvf_vec_max(((VectorObject *)self)->data, (size_t)((VectorObject *)self)->dim)); }

static PyObject *m_sum(PyObject *self, PyObject *u)
{
	VectorObject *v = (VectorObject *)self;
	double s = 0.0;
	(void)u;
	for (Py_ssize_t i = 0; i < v->dim; i++)
		s += v->data[i];
	return PyFloat_FromDouble(s);
}

static PyObject *m_variance(PyObject *self, PyObject *u)
{
	VectorObject *v = (VectorObject *)self;
	double mean = 0.0, s = 0.0;
	(void)u;
	for (Py_ssize_t i = 0; i < v->dim; i++)
		mean += v->data[i];
	mean /= (double)v->dim;
	for (Py_ssize_t i = 0; i < v->dim; i++)
		s += (v->data[i] - mean) * (v->data[i] - mean);
	return PyFloat_FromDouble(s / (double)v->dim);
}

static PyObject *m_normalize(PyObject *self, PyObject *u)
{
	VectorObject *v = (VectorObject *)self;
	nvfpy_state *st = nvfpy_state_of(self);
	float *d = NULL;
	PyObject *out = vec_alloc(st, v->dim, &d);
	(void)u;
	if (out == NULL)
		return NULL;
	if (nvf_vec_normalize(d, v->data, (size_t)v->dim) < 0) {
		Py_DECREF(out);
		return nvfpy_raise_fmt(st, st->InvalidArgumentError, NVF_EINVAL, "the zero vector has no direction to normalize");
	}
	return out;
}

static PyObject *distance(PyObject *self, PyObject *o, int metric)
{
	nvfpy_state *st = nvfpy_state_of(self);
	VectorObject *v = (VectorObject *)self;
	nvfpy_floats f;
	float d;
	int rc;
	if (other_vector(st, v, o, &f) < 0)
		return NULL;
	rc = nvf_distance(metric, v->data, f.data, (size_t)v->dim, &d);
	nvfpy_floats_release(&f);
	if (rc < 0)
		return nvfpy_raise(st, rc, NULL);
	return PyFloat_FromDouble(d);
}

static PyObject *m_euclidean(PyObject *s, PyObject *o) { return distance(s, o, NVF_METRIC_EUCLIDEAN); }
static PyObject *m_manhattan(PyObject *s, PyObject *o) { return distance(s, o, NVF_METRIC_MANHATTAN); }
static PyObject *m_cosine(PyObject *s, PyObject *o) { return distance(s, o, NVF_METRIC_COSINE); }
static PyObject *m_angular(PyObject *s, PyObject *o) { return distance(s, o, NVF_METRIC_ANGULAR); }
static PyObject *m_chebyshev(PyObject *s, PyObject *o) { return distance(s, o, NVF_METRIC_CHEBYSHEV); }
static PyObject *m_jaccard(PyObject *s, PyObject *o) { return distance(s, o, NVF_METRIC_JACCARD); }
static PyObject *m_hamming(PyObject *s, PyObject *o) { return distance(s, o, NVF_METRIC_HAMMING); }

static PyObject *m_cosine_similarity(PyObject *s, PyObject *o)
{
	PyObject *d = distance(s, o, NVF_METRIC_COSINE);
	double x;
	if (d == NULL)
		return NULL;
	x = PyFloat_AS_DOUBLE(d);
	Py_DECREF(d);
	return PyFloat_FromDouble(1.0 - x);
}

static PyObject *m_inner_product(PyObject *s, PyObject *o)
{
	return m_dot(s, o);
}

static PyObject *m_distance(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw)
{
	static const char *const kwlist[] = {"other", "metric", NULL};
	nvfpy_state *st = nvfpy_state_of(self);
	PyObject *other, *metric;
	int m;
	if (!nvfpy_parse(args, nargs, kw, "OO:distance", kwlist, &other, &metric))
		return NULL;
	if (nvfpy_enum_from(st, st->DistanceMetric, metric, &m) < 0)
		return NULL;
	return distance(self, other, m);
}

static PyObject *vec_get_dim(PyObject *self, void *c)
{
	(void)c;
	return PyLong_FromSsize_t(((VectorObject *)self)->dim);
}

static PyGetSetDef vec_getset[] = {
	{"dimension", vec_get_dim, NULL, "The number of components.", NULL},
	{"dim", vec_get_dim, NULL, "The number of components.", NULL},
	{NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef vec_methods[] = {
	{"to_list", vec_to_list, METH_NOARGS, "The components as a list of floats."},
	{"tolist", vec_to_list, METH_NOARGS, "The components as a list of floats."},
	{"add", m_add, METH_O, "Element-wise sum with a vector, or a scalar added to each component."},
	{"subtract", m_sub, METH_O, "Element-wise difference (vector or scalar)."},
	{"multiply", m_mul, METH_O, "Element-wise product (vector or scalar)."},
	{"divide", m_div, METH_O, "Element-wise quotient (vector or scalar); ZeroDivisionError."},
	{"scale", m_scale, METH_O, "Every component times s."},
	{"dot", m_dot, METH_O, "Inner product."},
	{"norm", m_norm, METH_NOARGS, "L2 norm."},
	{"l1_norm", m_l1, METH_NOARGS, "L1 norm."},
	{"linf_norm", m_linf, METH_NOARGS, "L-infinity norm."},
	{"normalize", m_normalize, METH_NOARGS, "A new unit vector (ValueError for the zero vector)."},
	{"euclidean_distance", m_euclidean, METH_O, "L2 distance."},
	{"manhattan_distance", m_manhattan, METH_O, "L1 distance."},
	{"cosine_distance", m_cosine, METH_O, "1 - cosine similarity."},
	{"cosine_similarity", m_cosine_similarity, METH_O, "Cosine similarity (0 against a zero vector)."},
	{"angular_distance", m_angular, METH_O, "arccos(cos) / pi."},
	{"chebyshev_distance", m_chebyshev, METH_O, "L-infinity distance."},
	{"jaccard_distance", m_jaccard, METH_O, "Weighted Jaccard distance (non-negative vectors)."},
	{"hamming_distance", m_hamming, METH_O, "Number of components that differ."},
	{"inner_product", m_inner_product, METH_O, "a . b (the database's inner-product distance is its negation)."},
	{"distance", NVFPY_FASTKW(m_distance), METH_FASTCALL | METH_KEYWORDS,
	 "distance(other, metric): the distance a search under metric reports."},
	{"sum", m_sum, METH_NOARGS, "Sum of the components."},
	{"mean", m_mean, METH_NOARGS, "Mean of the components."},
	{"std", m_std, METH_NOARGS, "Population standard deviation."},
	{"variance", m_variance, METH_NOARGS, "Population variance."},
	{"min", m_min, METH_NOARGS, "Smallest component."},
	{"max", m_max, METH_NOARGS, "Largest component."},
	{"__reduce__", vec_reduce, METH_NOARGS, NULL},
	{NULL, NULL, 0, NULL},
};

static PyType_Slot vec_slots[] = {
	{Py_tp_doc, (void *)"Vector(data): dim float32 values (a list, iterable or float buffer).\n\n"
			    "np.asarray(v) is a writable view of the vector's memory."},
	{Py_tp_new, NVFPY_FN(vec_new)},
	{Py_tp_dealloc, NVFPY_FN(vec_dealloc)},
	{Py_tp_repr, NVFPY_FN(vec_repr)},
	{Py_tp_richcompare, NVFPY_FN(vec_richcompare)},
	{Py_tp_hash, NVFPY_FN(PyObject_HashNotImplemented)},
	{Py_tp_methods, vec_methods},
	{Py_tp_getset, vec_getset},
	{Py_tp_iter, NVFPY_FN(vec_iter)},
	{Py_sq_length, NVFPY_FN(vec_len)},
	{Py_sq_item, NVFPY_FN(vec_item)},
	{Py_mp_length, NVFPY_FN(vec_len)},
	{Py_mp_subscript, NVFPY_FN(vec_subscript)},
	{Py_mp_ass_subscript, NVFPY_FN(vec_ass_subscript)},
	{Py_nb_add, NVFPY_FN(nb_add)},
	{Py_nb_subtract, NVFPY_FN(nb_sub)},
	{Py_nb_multiply, NVFPY_FN(nb_mul)},
	{Py_nb_true_divide, NVFPY_FN(nb_div)},
	{Py_nb_negative, NVFPY_FN(nb_neg)},
	{Py_bf_getbuffer, NVFPY_FN(vec_getbuffer)},
	{0, NULL},
};

PyType_Spec nvfpy_vector_spec = {
	.name = "nusterdb.Vector",
	.basicsize = sizeof(VectorObject),
	.flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.slots = vec_slots,
};

int nvfpy_add_static(PyObject *module, PyTypeObject *tp, PyMethodDef *defs)
{
	return add_static(module, tp, defs);
}
