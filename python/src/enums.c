/*
 * enums.c: the small enumeration types IndexType and Compression, and the slots
 * they share with DistanceMetric (metric.c): one immutable instance per value, a
 * class attribute each, equal to their string name as well.
 */
#include "nusterdb.h"

#include <strings.h>

const nvfpy_enum_item nvfpy_index_items[] = {
	{"Flat", "flat", NVF_INDEX_FLAT},
	{"Hnsw", "hnsw", NVF_INDEX_HNSW},
	{"IVF", "ivf", NVFPY_INDEX_IVF},
	{"LSH", "lsh", NVFPY_INDEX_LSH},
	{"Annoy", "annoy", NVFPY_INDEX_ANNOY},
	{NULL, NULL, 0},
};
static const char *const index_aliases[] = {"FLAT", "Flat", "HNSW", "Hnsw", NULL};

const nvfpy_enum_item nvfpy_compression_items[] = {
	{"None", "none", NVF_CODEC_NONE},
	{"Snappy", "snappy", NVF_CODEC_SNAPPY},
	{"LZ4", "lz4", NVF_CODEC_LZ4},
	{"ZSTD", "zstd", NVF_CODEC_ZSTD},
	{"ZSTD_DICT", "zstd-dict", NVF_CODEC_ZSTD_DICT},
	{NULL, NULL, 0},
};
static const char *const compression_aliases[] = {"NONE", "None", NULL};

static const nvfpy_enum_item *items_of(PyTypeObject *tp)
{
	const char *n = tp->tp_name;
	if (strcmp(n, "nusterdb.IndexType") == 0)
		return nvfpy_index_items;
	if (strcmp(n, "nusterdb.Compression") == 0)
		return nvfpy_compression_items;
	return nvfpy_metric_items;
}

int nvfpy_enum_setup(PyTypeObject *tp, const nvfpy_enum_item *items, const char *const *aliases)
{
	for (const nvfpy_enum_item *it = items; it->attr != NULL; it++) {
		EnumObject *e = (EnumObject *)tp->tp_alloc(tp, 0);
		int rc;
		if (e == NULL)
			return -1;
		e->value = it->value;
		e->item = it;
		rc = nvfpy_setattr((PyObject *)tp, it->attr, (PyObject *)e);
		Py_DECREF(e);
		if (rc < 0)
			return -1;
	}
	for (const char *const *a = aliases; a != NULL && a[0] != NULL; a += 2) {
		PyObject *o = nvfpy_getattr((PyObject *)tp, a[1]);
		int rc;
		if (o == NULL)
			return -1;
		rc = nvfpy_setattr((PyObject *)tp, a[0], o);
		Py_DECREF(o);
		if (rc < 0)
			return -1;
	}
	return 0;
}

int nvfpy_enums_setup(nvfpy_state *st)
{
	if (nvfpy_enum_setup(st->IndexType, nvfpy_index_items, index_aliases) < 0 ||
	    nvfpy_enum_setup(st->Compression, nvfpy_compression_items, compression_aliases) < 0)
		return -1;
	return 0;
}

PyObject *nvfpy_enum_get(PyTypeObject *tp, int value)
{
	for (const nvfpy_enum_item *it = items_of(tp); it->attr != NULL; it++)
		if (it->value == value)
			return nvfpy_getattr((PyObject *)tp, it->attr);
	PyErr_Format(PyExc_ValueError, "%s has no value %d", tp->tp_name, value);
	return NULL;
}

/* The item named name (its name or attribute, any case; "_" for "-"). */
static const nvfpy_enum_item *by_name(const nvfpy_enum_item *items, const char *name)
{
	for (const nvfpy_enum_item *it = items; it->attr != NULL; it++) {
		if (strcasecmp(it->name, name) == 0 || strcasecmp(it->attr, name) == 0)
			return it;
		if (strchr(it->name, '-') != NULL) {
			char alt[32];
			snprintf(alt, sizeof alt, "%s", it->name);
			for (char *p = alt; *p; p++)
				if (*p == '-')
					*p = '_';
			if (strcasecmp(alt, name) == 0)
				return it;
		}
	}
	return NULL;
}

static int value_of_name(PyTypeObject *tp, const char *name, int *out)
{
	const nvfpy_enum_item *items = items_of(tp), *it;
	if (items == nvfpy_metric_items) {
		int m = nvf_metric_parse(name);
		if (m >= 0) {
			*out = m;
			return 0;
		}
	}
	it = by_name(items, name);
	if (it == NULL)
		return -1;
	*out = it->value;
	return 0;
}

int nvfpy_enum_from(nvfpy_state *st, PyTypeObject *tp, PyObject *obj, int *out)
{
	const char *name, *short_name = strrchr(tp->tp_name, '.') + 1;
	if (PyObject_TypeCheck(obj, tp)) {
		*out = ((EnumObject *)obj)->value;
		return 0;
	}
	if (!PyUnicode_Check(obj)) {
		PyErr_Format(PyExc_TypeError, "expected a %s or its name, not %.100s", short_name, Py_TYPE(obj)->tp_name);
		return -1;
	}
	name = PyUnicode_AsUTF8(obj);
	if (name == NULL)
		return -1;
	if (value_of_name(tp, name, out) < 0) {
		PyObject *names = PyList_New(0);
		PyObject *sep, *joined;
		if (names == NULL)
			return -1;
		for (const nvfpy_enum_item *it = items_of(tp); it->attr != NULL; it++) {
			PyObject *s = PyUnicode_FromString(it->name);
			if (s == NULL || PyList_Append(names, s) < 0) {
				Py_XDECREF(s);
				Py_DECREF(names);
				return -1;
			}
			Py_DECREF(s);
		}
		sep = PyUnicode_FromString(", ");
		joined = sep != NULL ? PyUnicode_Join(sep, names) : NULL;
		Py_XDECREF(sep);
		Py_DECREF(names);
		if (joined == NULL)
			return -1;
		nvfpy_raise_fmt(st, st->InvalidArgumentError, NVF_EINVAL, "unknown %s '%s' (one of %U)", short_name, name,
				joined);
		Py_DECREF(joined);
		return -1;
	}
	return 0;
}

/* ---- shared slots ------------------------------------------------------------ */

PyObject *nvfpy_enum_richcompare(PyObject *a, PyObject *b, int op)
{
	int eq, v;
	if (op != Py_EQ && op != Py_NE)
		Py_RETURN_NOTIMPLEMENTED;
	if (Py_TYPE(a) == Py_TYPE(b)) {
		eq = ((EnumObject *)a)->value == ((EnumObject *)b)->value;
	} else if (PyUnicode_Check(b)) {
		const char *s = PyUnicode_AsUTF8(b);
		if (s == NULL)
			return NULL;
		eq = value_of_name(Py_TYPE(a), s, &v) == 0 && v == ((EnumObject *)a)->value;
	} else {
		Py_RETURN_NOTIMPLEMENTED;
	}
	return PyBool_FromLong(op == Py_EQ ? eq : !eq);
}

Py_hash_t nvfpy_enum_hash(PyObject *self)
{
	/* equal to its name, so hash as the name does */
	PyObject *s = PyUnicode_FromString(((EnumObject *)self)->item->name);
	Py_hash_t h;
	if (s == NULL)
		return -1;
	h = PyObject_Hash(s);
	Py_DECREF(s);
	return h;
}

PyObject *nvfpy_enum_str(PyObject *self)
{
	return PyUnicode_FromString(((EnumObject *)self)->item->name);
}

PyObject *nvfpy_enum_repr(PyObject *self)
{
	const char *tn = strrchr(Py_TYPE(self)->tp_name, '.') + 1;
	return PyUnicode_FromFormat("%s.%s", tn, ((EnumObject *)self)->item->attr);
}

PyObject *nvfpy_enum_reduce(PyObject *self, PyObject *unused)
{
	PyObject *builtins = PyEval_GetBuiltins(), *getattr_fn;
	(void)unused;
	getattr_fn = builtins != NULL ? PyDict_GetItemString(builtins, "getattr") : NULL;
	if (getattr_fn == NULL) {
		PyErr_SetString(PyExc_RuntimeError, "no builtins.getattr");
		return NULL;
	}
	return Py_BuildValue("(O(Os))", getattr_fn, (PyObject *)Py_TYPE(self), ((EnumObject *)self)->item->attr);
}

static PyObject *enum_get_name(PyObject *self, void *c)
{
	(void)c;
	return PyUnicode_FromString(((EnumObject *)self)->item->name);
}

static PyObject *enum_get_value(PyObject *self, void *c)
{
	(void)c;
	return PyLong_FromLong(((EnumObject *)self)->value);
}

PyGetSetDef nvfpy_enum_getset[] = {
	{"name", enum_get_name, NULL, "The name (as accepted wherever a string is).", NULL},
	{"value", enum_get_value, NULL, "The C value.", NULL},
	{NULL, NULL, NULL, NULL, NULL},
};

static PyObject *enum_no_new(PyTypeObject *tp, PyObject *args, PyObject *kw)
{
	(void)args;
	(void)kw;
	PyErr_Format(PyExc_TypeError, "cannot create '%s' instances: use its class attributes", tp->tp_name);
	return NULL;
}

static void enum_dealloc(PyObject *self)
{
	PyTypeObject *tp = Py_TYPE(self);
	tp->tp_free(self);
	Py_DECREF(tp);
}

static PyMethodDef enum_methods[] = {
	{"__reduce__", nvfpy_enum_reduce, METH_NOARGS, NULL},
	{NULL, NULL, 0, NULL},
};

static PyType_Slot index_slots[] = {
	{Py_tp_doc, (void *)"The index of a collection: IndexType.Flat (exact scan) or IndexType.Hnsw (graph).\n"
			    "IVF, LSH and Annoy exist and are not supported (NotSupportedError at creation)."},
	{Py_tp_new, NVFPY_FN(enum_no_new)},
	{Py_tp_dealloc, NVFPY_FN(enum_dealloc)},
	{Py_tp_richcompare, NVFPY_FN(nvfpy_enum_richcompare)},
	{Py_tp_hash, NVFPY_FN(nvfpy_enum_hash)},
	{Py_tp_str, NVFPY_FN(nvfpy_enum_str)},
	{Py_tp_repr, NVFPY_FN(nvfpy_enum_repr)},
	{Py_tp_getset, nvfpy_enum_getset},
	{Py_tp_methods, enum_methods},
	{0, NULL},
};

PyType_Spec nvfpy_index_type_spec = {
	.name = "nusterdb.IndexType",
	.basicsize = sizeof(EnumObject),
	.flags = Py_TPFLAGS_DEFAULT,
	.slots = index_slots,
};

static PyType_Slot compression_slots[] = {
	{Py_tp_doc, (void *)"The codec of the documents and tags: None, Snappy, LZ4, ZSTD, ZSTD_DICT."},
	{Py_tp_new, NVFPY_FN(enum_no_new)},
	{Py_tp_dealloc, NVFPY_FN(enum_dealloc)},
	{Py_tp_richcompare, NVFPY_FN(nvfpy_enum_richcompare)},
	{Py_tp_hash, NVFPY_FN(nvfpy_enum_hash)},
	{Py_tp_str, NVFPY_FN(nvfpy_enum_str)},
	{Py_tp_repr, NVFPY_FN(nvfpy_enum_repr)},
	{Py_tp_getset, nvfpy_enum_getset},
	{Py_tp_methods, enum_methods},
	{0, NULL},
};

PyType_Spec nvfpy_compression_spec = {
	.name = "nusterdb.Compression",
	.basicsize = sizeof(EnumObject),
	.flags = Py_TPFLAGS_DEFAULT,
	.slots = compression_slots,
};
