/*
 * metric.c: nusterdb.DistanceMetric, both spellings of the original documents
 * (DistanceMetric.Cosine and DistanceMetric.cosine()), with distance() as a search
 * reports it and similarity() (docs/METRICS.md).
 */
#include "nusterdb.h"

#include <string.h>

const nvfpy_enum_item nvfpy_metric_items[] = {
	{"Euclidean", "euclidean", NVF_METRIC_EUCLIDEAN},
	{"InnerProduct", "inner_product", NVF_METRIC_INNER_PRODUCT},
	{"Cosine", "cosine", NVF_METRIC_COSINE},
	{"Angular", "angular", NVF_METRIC_ANGULAR},
	{"Manhattan", "manhattan", NVF_METRIC_MANHATTAN},
	{"Chebyshev", "chebyshev", NVF_METRIC_CHEBYSHEV},
	{"Jaccard", "jaccard", NVF_METRIC_JACCARD},
	{"Hamming", "hamming", NVF_METRIC_HAMMING},
	{NULL, NULL, 0},
};

static PyObject *pair_distance(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw,
			       const char *fmt, double *out, Py_ssize_t *dim)
{
	static const char *const kwlist[] = {"a", "b", NULL};
	nvfpy_state *st = nvfpy_state_of(self);
	PyObject *a, *b;
	nvfpy_floats fa, fb;
	float d;
	int rc;
	if (!nvfpy_parse(args, nargs, kw, fmt, kwlist, &a, &b))
		return NULL;
	if (nvfpy_vector_in(st, a, &fa) < 0)
		return NULL;
	if (nvfpy_vector_in(st, b, &fb) < 0) {
		nvfpy_floats_release(&fa);
		return NULL;
	}
	if (fa.cols != fb.cols || fa.cols < 1) {
		nvfpy_raise_fmt(st, st->InvalidArgumentError, NVF_EINVAL,
				"vectors of different dimensions: %zd and %zd", fa.cols, fb.cols);
		goto error;
	}
	rc = nvf_distance(((EnumObject *)self)->value, fa.data, fb.data, (size_t)fa.cols, &d);
	if (rc < 0) {
		nvfpy_raise(st, rc, NULL);
		goto error;
	}
	*out = d;
	*dim = fa.cols;
	nvfpy_floats_release(&fa);
	nvfpy_floats_release(&fb);
	return Py_None;
error:
	nvfpy_floats_release(&fa);
	nvfpy_floats_release(&fb);
	return NULL;
}

static PyObject *metric_distance(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw)
{
	double d;
	Py_ssize_t dim;
	if (pair_distance(self, args, nargs, kw, "OO:distance", &d, &dim) == NULL)
		return NULL;
	return PyFloat_FromDouble(d);
}

static PyObject *metric_similarity(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw)
{
	double d, s;
	Py_ssize_t dim;
	if (pair_distance(self, args, nargs, kw, "OO:similarity", &d, &dim) == NULL)
		return NULL;
	switch (((EnumObject *)self)->value) {
	case NVF_METRIC_COSINE:
	case NVF_METRIC_ANGULAR:
	case NVF_METRIC_JACCARD: s = 1.0 - d; break;
	case NVF_METRIC_INNER_PRODUCT: s = -d; break;
	case NVF_METRIC_HAMMING: s = 1.0 - d / (double)dim; break;
	default: s = 1.0 / (1.0 + d); break;
	}
	return PyFloat_FromDouble(s);
}

/* The static methods euclidean() ... hamming(): their C function gets the module;
 * which metric is told by the method's name. */
static PyObject *metric_by_attr(PyObject *module, const char *attr)
{
	nvfpy_state *st = nvfpy_state_mod(module);
	return nvfpy_getattr((PyObject *)st->DistanceMetric, attr);
}

#define FACTORY(fn, attr)                                        \
	static PyObject *fn(PyObject *module, PyObject *unused) \
	{                                                        \
		(void)unused;                                    \
		return metric_by_attr(module, attr);             \
	}
FACTORY(f_euclidean, "Euclidean")
FACTORY(f_manhattan, "Manhattan")
FACTORY(f_cosine, "Cosine")
FACTORY(f_angular, "Angular")
FACTORY(f_chebyshev, "Chebyshev")
FACTORY(f_jaccard, "Jaccard")
FACTORY(f_hamming, "Hamming")
FACTORY(f_inner_product, "InnerProduct")
#undef FACTORY

static PyObject *f_from_name(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kw)
{
	static const char *const kwlist[] = {"name", NULL};
	nvfpy_state *st = nvfpy_state_mod(module);
	PyObject *name;
	int m;
	if (!nvfpy_parse(args, nargs, kw, "U:from_name", kwlist, &name))
		return NULL;
	if (nvfpy_enum_from(st, st->DistanceMetric, name, &m) < 0)
		return NULL;
	return nvfpy_enum_get(st->DistanceMetric, m);
}

static PyMethodDef metric_static_methods[] = {
	{"euclidean", f_euclidean, METH_NOARGS, "DistanceMetric.Euclidean: L2."},
	{"manhattan", f_manhattan, METH_NOARGS, "DistanceMetric.Manhattan: L1."},
	{"cosine", f_cosine, METH_NOARGS, "DistanceMetric.Cosine: 1 - cos."},
	{"angular", f_angular, METH_NOARGS, "DistanceMetric.Angular: arccos(cos) / pi."},
	{"chebyshev", f_chebyshev, METH_NOARGS, "DistanceMetric.Chebyshev: L-infinity."},
	{"jaccard", f_jaccard, METH_NOARGS, "DistanceMetric.Jaccard: 1 - sum min / sum max."},
	{"hamming", f_hamming, METH_NOARGS, "DistanceMetric.Hamming: components that differ."},
	{"inner_product", f_inner_product, METH_NOARGS, "DistanceMetric.InnerProduct: -(a . b)."},
	{"from_name", NVFPY_FASTKW(f_from_name), METH_FASTCALL | METH_KEYWORDS,
	 "DistanceMetric.from_name(name): parse a name or alias ('l2', 'ip', 'dot', 'l1', 'linf')."},
	{NULL, NULL, 0, NULL},
};

int nvfpy_metric_setup(PyObject *module, nvfpy_state *st)
{
	if (nvfpy_enum_setup(st->DistanceMetric, nvfpy_metric_items, NULL) < 0)
		return -1;
	if (nvfpy_enums_setup(st) < 0)
		return -1;
	return nvfpy_add_static(module, st->DistanceMetric, metric_static_methods);
}

static PyObject *metric_no_new(PyTypeObject *tp, PyObject *args, PyObject *kw)
{
	(void)args;
	(void)kw;
	PyErr_Format(PyExc_TypeError, "cannot create '%s' instances: use DistanceMetric.Euclidean, "
				      "DistanceMetric.euclidean() or DistanceMetric.from_name()", tp->tp_name);
	return NULL;
}

static void metric_dealloc(PyObject *self)
{
	PyTypeObject *tp = Py_TYPE(self);
	tp->tp_free(self);
	Py_DECREF(tp);
}

static PyMethodDef metric_methods[] = {
	{"distance", NVFPY_FASTKW(metric_distance), METH_FASTCALL | METH_KEYWORDS,
	 "distance(a, b): the distance a search reports."},
	{"similarity", NVFPY_FASTKW(metric_similarity), METH_FASTCALL | METH_KEYWORDS,
	 "similarity(a, b): larger for nearer vectors."},
	{"__reduce__", nvfpy_enum_reduce, METH_NOARGS, NULL},
	{NULL, NULL, 0, NULL},
};

static PyType_Slot metric_slots[] = {
	{Py_tp_doc, (void *)"A distance metric (docs/METRICS.md): DistanceMetric.Cosine or DistanceMetric.cosine()."},
	{Py_tp_new, NVFPY_FN(metric_no_new)},
	{Py_tp_dealloc, NVFPY_FN(metric_dealloc)},
	{Py_tp_richcompare, NVFPY_FN(nvfpy_enum_richcompare)},
	{Py_tp_hash, NVFPY_FN(nvfpy_enum_hash)},
	{Py_tp_str, NVFPY_FN(nvfpy_enum_str)},
	{Py_tp_repr, NVFPY_FN(nvfpy_enum_repr)},
	{Py_tp_getset, nvfpy_enum_getset},
	{Py_tp_methods, metric_methods},
	{0, NULL},
};

PyType_Spec nvfpy_metric_spec = {
	.name = "nusterdb.DistanceMetric",
	.basicsize = sizeof(EnumObject),
	.flags = Py_TPFLAGS_DEFAULT,
	.slots = metric_slots,
};
