/*
 * metadata.c: nusterdb.Metadata, a record's document (a dict of JSON data) and its
 * tags, with the times and version the database keeps; and the conversion of a
 * Metadata or dict into what a write stores (nvf_meta_set, nvf_tags_set).
 */
#include "nusterdb.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int add_tags(PyObject *set, PyObject *tags)
{
	PyObject *it, *t;
	if (PyUnicode_Check(tags)) {
		PyErr_SetString(PyExc_TypeError, "tags must be an iterable of strings, not a string");
		return -1;
	}
	it = PyObject_GetIter(tags);
	if (it == NULL)
		return -1;
	while ((t = PyIter_Next(it)) != NULL) {
		if (!PyUnicode_Check(t)) {
			PyErr_Format(PyExc_TypeError, "a tag must be a str, not %.100s", Py_TYPE(t)->tp_name);
			Py_DECREF(t);
			Py_DECREF(it);
			return -1;
		}
		if (PySet_Add(set, t) < 0) {
			Py_DECREF(t);
			Py_DECREF(it);
			return -1;
		}
		Py_DECREF(t);
	}
	Py_DECREF(it);
	return PyErr_Occurred() ? -1 : 0;
}

static MetadataObject *meta_alloc(PyTypeObject *type)
{
	MetadataObject *m = (MetadataObject *)type->tp_alloc(type, 0);
	if (m == NULL)
		return NULL;
	m->data = PyDict_New();
	m->tags = PySet_New(NULL);
	if (m->data == NULL || m->tags == NULL) {
		Py_DECREF(m);
		return NULL;
	}
	m->created_us = m->updated_us = now_us();
	m->version = 1;
	return m;
}

static PyObject *meta_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = {"data", "tags", NULL};
	PyObject *data = Py_None, *tags = Py_None;
	MetadataObject *m;
	if (!PyArg_ParseTupleAndKeywords(args, kwds, "|OO:Metadata", kwlist, &data, &tags))
		return NULL;
	m = meta_alloc(type);
	if (m == NULL)
		return NULL;
	if (data != Py_None) {
		nvfpy_state *st = nvfpy_state_of_type(type);
		if (st != NULL && PyObject_TypeCheck(data, st->Metadata)) {
			MetadataObject *o = (MetadataObject *)data;
			if (PyDict_Update(m->data, o->data) < 0 || add_tags(m->tags, o->tags) < 0)
				goto error;
		} else if (PyDict_Merge(m->data, data, 1) < 0) {
			goto error;
		}
	}
	if (tags != Py_None && add_tags(m->tags, tags) < 0)
		goto error;
	return (PyObject *)m;
error:
	Py_DECREF(m);
	return NULL;
}

static int meta_traverse(PyObject *self, visitproc visit, void *arg)
{
	MetadataObject *m = (MetadataObject *)self;
	Py_VISIT(m->data);
	Py_VISIT(m->tags);
	Py_VISIT(Py_TYPE(self));
	return 0;
}

static int meta_clear(PyObject *self)
{
	MetadataObject *m = (MetadataObject *)self;
	Py_CLEAR(m->data);
	Py_CLEAR(m->tags);
	return 0;
}

static void meta_dealloc(PyObject *self)
{
	PyTypeObject *tp = Py_TYPE(self);
	PyObject_GC_UnTrack(self);
	meta_clear(self);
	tp->tp_free(self);
	Py_DECREF(tp);
}

/* from_dict(d): Metadata(d), a static method bound to the module. */
static PyObject *meta_from_dict(PyObject *module, PyObject *d)
{
	nvfpy_state *st = nvfpy_state_mod(module);
	return PyObject_CallOneArg((PyObject *)st->Metadata, d);
}

static PyMethodDef meta_static_methods[] = {
	{"from_dict", meta_from_dict, METH_O, "Metadata.from_dict(d): the same as Metadata(d)."},
	{NULL, NULL, 0, NULL},
};

int nvfpy_metadata_setup(PyObject *module, nvfpy_state *st)
{
	return nvfpy_add_static(module, st->Metadata, meta_static_methods);
}

/* ---- the mapping ------------------------------------------------------------ */

static int check_value(PyObject *key, PyObject *value)
{
	/* refuse what is not JSON data now rather than when it is stored */
	PyObject *d = PyDict_New();
	char *text;
	if (d == NULL)
		return -1;
	if (PyDict_SetItem(d, key, value) < 0) {
		Py_DECREF(d);
		return -1;
	}
	text = nvfpy_json_encode(d, "metadata");
	Py_DECREF(d);
	if (text == NULL)
		return -1;
	free(text);
	return 0;
}

static int check_key(PyObject *key)
{
	if (!PyUnicode_Check(key)) {
		PyErr_Format(PyExc_TypeError, "metadata keys must be strings, not %.100s", Py_TYPE(key)->tp_name);
		return -1;
	}
	return 0;
}

static PyObject *m_set(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw)
{
	static const char *const kwlist[] = {"key", "value", NULL};
	PyObject *key, *value;
	if (!nvfpy_parse(args, nargs, kw, "OO:set", kwlist, &key, &value))
		return NULL;
	if (check_key(key) < 0 || check_value(key, value) < 0)
		return NULL;
	if (PyDict_SetItem(((MetadataObject *)self)->data, key, value) < 0)
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *m_get(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw)
{
	static const char *const kwlist[] = {"key", "default", NULL};
	PyObject *key, *dflt = Py_None, *v;
	if (!nvfpy_parse(args, nargs, kw, "O|O:get", kwlist, &key, &dflt))
		return NULL;
	v = PyDict_GetItemWithError(((MetadataObject *)self)->data, key);
	if (v == NULL) {
		if (PyErr_Occurred())
			return NULL;
		v = dflt;
	}
	return Py_NewRef(v);
}

static PyObject *m_remove(PyObject *self, PyObject *key)
{
	if (PyDict_DelItem(((MetadataObject *)self)->data, key) < 0)
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *m_keys(PyObject *self, PyObject *u) { (void)u; return PyDict_Keys(((MetadataObject *)self)->data); }
static PyObject *m_values(PyObject *self, PyObject *u) { (void)u; return PyDict_Values(((MetadataObject *)self)->data); }
static PyObject *m_items(PyObject *self, PyObject *u) { (void)u; return PyDict_Items(((MetadataObject *)self)->data); }
static PyObject *m_to_dict(PyObject *self, PyObject *u) { (void)u; return PyDict_Copy(((MetadataObject *)self)->data); }

static PyObject *m_add_tag(PyObject *self, PyObject *tag)
{
	if (!PyUnicode_Check(tag)) {
		PyErr_Format(PyExc_TypeError, "a tag must be a str, not %.100s", Py_TYPE(tag)->tp_name);
		return NULL;
	}
	if (PySet_Add(((MetadataObject *)self)->tags, tag) < 0)
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *m_remove_tag(PyObject *self, PyObject *tag)
{
	if (PySet_Discard(((MetadataObject *)self)->tags, tag) < 0)
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *m_has_tag(PyObject *self, PyObject *tag)
{
	int r = PySet_Contains(((MetadataObject *)self)->tags, tag);
	if (r < 0)
		return NULL;
	return PyBool_FromLong(r);
}

static PyObject *m_tags(PyObject *self, PyObject *u)
{
	PyObject *l = PySequence_List(((MetadataObject *)self)->tags);
	(void)u;
	if (l == NULL || PyList_Sort(l) < 0) {
		Py_XDECREF(l);
		return NULL;
	}
	return l;
}

static Py_ssize_t mp_len(PyObject *self)
{
	return PyDict_Size(((MetadataObject *)self)->data);
}

static PyObject *mp_get(PyObject *self, PyObject *key)
{
	PyObject *v = PyDict_GetItemWithError(((MetadataObject *)self)->data, key);
	if (v == NULL) {
		if (!PyErr_Occurred())
			PyErr_SetObject(PyExc_KeyError, key);
		return NULL;
	}
	return Py_NewRef(v);
}

static int mp_set(PyObject *self, PyObject *key, PyObject *value)
{
	if (value == NULL)
		return PyDict_DelItem(((MetadataObject *)self)->data, key);
	if (check_key(key) < 0 || check_value(key, value) < 0)
		return -1;
	return PyDict_SetItem(((MetadataObject *)self)->data, key, value);
}

static int sq_contains(PyObject *self, PyObject *key)
{
	return PyDict_Contains(((MetadataObject *)self)->data, key);
}

static PyObject *meta_iter(PyObject *self)
{
	return PyObject_GetIter(((MetadataObject *)self)->data);
}

static PyObject *meta_repr(PyObject *self)
{
	MetadataObject *m = (MetadataObject *)self;
	PyObject *tags = m_tags(self, NULL), *out;
	if (tags == NULL)
		return NULL;
	out = PyUnicode_FromFormat("Metadata(%R, tags=%R, version=%llu)", m->data, tags, (unsigned long long)m->version);
	Py_DECREF(tags);
	return out;
}

static PyObject *meta_richcompare(PyObject *a, PyObject *b, int op)
{
	nvfpy_state *st = nvfpy_state_of(a);
	MetadataObject *x = (MetadataObject *)a, *y;
	int eq;
	if ((op != Py_EQ && op != Py_NE) || st == NULL)
		Py_RETURN_NOTIMPLEMENTED;
	if (PyDict_Check(b)) {
		eq = PyObject_RichCompareBool(x->data, b, Py_EQ);
	} else if (PyObject_TypeCheck(b, st->Metadata)) {
		y = (MetadataObject *)b;
		eq = PyObject_RichCompareBool(x->data, y->data, Py_EQ);
		if (eq > 0)
			eq = PyObject_RichCompareBool(x->tags, y->tags, Py_EQ);
	} else {
		Py_RETURN_NOTIMPLEMENTED;
	}
	if (eq < 0)
		return NULL;
	return PyBool_FromLong(op == Py_EQ ? eq : !eq);
}

static PyObject *meta_reduce(PyObject *self, PyObject *u)
{
	MetadataObject *m = (MetadataObject *)self;
	PyObject *tags = m_tags(self, u);
	if (tags == NULL)
		return NULL;
	return Py_BuildValue("(O(ON)(LLK))", (PyObject *)Py_TYPE(self), m->data, tags, (long long)m->created_us,
			     (long long)m->updated_us, (unsigned long long)m->version);
}

static PyObject *meta_setstate(PyObject *self, PyObject *state)
{
	MetadataObject *m = (MetadataObject *)self;
	long long c, u;
	unsigned long long v;
	if (!PyArg_ParseTuple(state, "LLK:__setstate__", &c, &u, &v))
		return NULL;
	m->created_us = c;
	m->updated_us = u;
	m->version = v;
	Py_RETURN_NONE;
}

static PyObject *g_created(PyObject *s, void *c) { (void)c; return PyLong_FromLongLong(((MetadataObject *)s)->created_us / 1000000); }
static PyObject *g_updated(PyObject *s, void *c) { (void)c; return PyLong_FromLongLong(((MetadataObject *)s)->updated_us / 1000000); }
static PyObject *g_created_us(PyObject *s, void *c) { (void)c; return PyLong_FromLongLong(((MetadataObject *)s)->created_us); }
static PyObject *g_updated_us(PyObject *s, void *c) { (void)c; return PyLong_FromLongLong(((MetadataObject *)s)->updated_us); }
static PyObject *g_version(PyObject *s, void *c) { (void)c; return PyLong_FromUnsignedLongLong(((MetadataObject *)s)->version); }
static PyObject *g_data(PyObject *s, void *c) { (void)c; return PyDict_Copy(((MetadataObject *)s)->data); }

static PyGetSetDef meta_getset[] = {
	{"created_at", g_created, NULL, "Creation time, Unix seconds.", NULL},
	{"updated_at", g_updated, NULL, "Last change, Unix seconds.", NULL},
	{"created_at_us", g_created_us, NULL, "Creation time, Unix microseconds.", NULL},
	{"updated_at_us", g_updated_us, NULL, "Last change, Unix microseconds.", NULL},
	{"version", g_version, NULL, "1 at creation, +1 per transaction that changed the record.", NULL},
	{"data", g_data, NULL, "A copy of the data dict.", NULL},
	{NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef meta_methods[] = {
	{"set", NVFPY_FASTKW(m_set), METH_FASTCALL | METH_KEYWORDS, "set(key, value): TypeError for non-JSON values."},
	{"get", NVFPY_FASTKW(m_get), METH_FASTCALL | METH_KEYWORDS, "get(key, default=None)."},
	{"remove", m_remove, METH_O, "remove(key): KeyError if absent."},
	{"keys", m_keys, METH_NOARGS, "The keys of the data."},
	{"values", m_values, METH_NOARGS, "The values of the data."},
	{"items", m_items, METH_NOARGS, "The (key, value) pairs of the data."},
	{"to_dict", m_to_dict, METH_NOARGS, "A new dict of the data (tags not included)."},
	{"add_tag", m_add_tag, METH_O, "Add a tag."},
	{"remove_tag", m_remove_tag, METH_O, "Remove a tag (nothing if absent)."},
	{"has_tag", m_has_tag, METH_O, "Whether the tag is set."},
	{"tags", m_tags, METH_NOARGS, "The tags, sorted."},
	{"__reduce__", meta_reduce, METH_NOARGS, NULL},
	{"__setstate__", meta_setstate, METH_O, NULL},
	{NULL, NULL, 0, NULL},
};

static PyType_Slot meta_slots[] = {
	{Py_tp_doc, (void *)"Metadata(data=None, tags=None): a record's document (JSON data) and tags."},
	{Py_tp_new, NVFPY_FN(meta_new)},
	{Py_tp_dealloc, NVFPY_FN(meta_dealloc)},
	{Py_tp_traverse, NVFPY_FN(meta_traverse)},
	{Py_tp_clear, NVFPY_FN(meta_clear)},
	{Py_tp_repr, NVFPY_FN(meta_repr)},
	{Py_tp_richcompare, NVFPY_FN(meta_richcompare)},
	{Py_tp_hash, NVFPY_FN(PyObject_HashNotImplemented)},
	{Py_tp_iter, NVFPY_FN(meta_iter)},
	{Py_tp_methods, meta_methods},
	{Py_tp_getset, meta_getset},
	{Py_mp_length, NVFPY_FN(mp_len)},
	{Py_mp_subscript, NVFPY_FN(mp_get)},
	{Py_mp_ass_subscript, NVFPY_FN(mp_set)},
	{Py_sq_contains, NVFPY_FN(sq_contains)},
	{0, NULL},
};

PyType_Spec nvfpy_metadata_spec = {
	.name = "nusterdb.Metadata",
	.basicsize = sizeof(MetadataObject),
	.flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
	.slots = meta_slots,
};

/* ---- to and from the database ------------------------------------------------ */

void nvfpy_meta_release(nvfpy_meta *m)
{
	free(m->json);
	for (size_t i = 0; i < m->ntags; i++)
		free(m->tags[i]);
	free(m->tags);
	memset(m, 0, sizeof *m);
}

int nvfpy_meta_in(nvfpy_state *st, PyObject *obj, nvfpy_meta *out)
{
	PyObject *data, *tags = NULL;
	memset(out, 0, sizeof *out);
	if (obj == Py_None)
		return 0;
	if (PyObject_TypeCheck(obj, st->Metadata)) {
		data = ((MetadataObject *)obj)->data;
		tags = ((MetadataObject *)obj)->tags;
	} else if (PyDict_Check(obj)) {
		data = obj;
	} else {
		PyErr_Format(PyExc_TypeError, "metadata must be a Metadata or a dict, not %.100s", Py_TYPE(obj)->tp_name);
		return -1;
	}
	out->given = 1;
	if (PyDict_Size(data) > 0) {
		out->json = nvfpy_json_encode(data, "metadata");
		if (out->json == NULL)
			return -1;
	}
	if (tags != NULL && PySet_GET_SIZE(tags) > 0) {
		Py_ssize_t n = PySet_GET_SIZE(tags), i = 0;
		PyObject *t, *it = PyObject_GetIter(tags);
		if (it == NULL)
			goto error;
		out->tags = calloc((size_t)n, sizeof(char *));
		if (out->tags == NULL) {
			Py_DECREF(it);
			PyErr_NoMemory();
			goto error;
		}
		while (i < n && (t = PyIter_Next(it)) != NULL) {
			const char *s = PyUnicode_AsUTF8(t);
			out->tags[i] = s != NULL ? strdup(s) : NULL;
			Py_DECREF(t);
			if (out->tags[i] == NULL) {
				if (s != NULL)
					PyErr_NoMemory();
				Py_DECREF(it);
				goto error;
			}
			out->ntags = (size_t)++i;
		}
		Py_DECREF(it);
		if (PyErr_Occurred())
			goto error;
	}
	return 0;
error:
	nvfpy_meta_release(out);
	return -1;
}

PyObject *nvfpy_metadata_from_record(nvfpy_state *st, const char *record_json)
{
	json_error_t err;
	json_t *j = json_loads(record_json, JSON_ALLOW_NUL, &err), *doc, *tags, *v;
	MetadataObject *m;
	if (j == NULL) {
		PyErr_Format(PyExc_ValueError, "the library returned JSON that does not parse: %s", err.text);
		return NULL;
	}
	m = meta_alloc(st->Metadata);
	if (m == NULL)
		goto error;
	doc = json_object_get(j, "meta");
	if (doc != NULL && json_is_object(doc)) {
		char *text = json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(17));
		PyObject *d = text != NULL ? nvfpy_json_decode(text) : NULL;
		free(text);
		if (d == NULL || PyDict_Update(m->data, d) < 0) {
			Py_XDECREF(d);
			goto error;
		}
		Py_DECREF(d);
	}
	tags = json_object_get(j, "tags");
	if (tags != NULL && json_is_array(tags)) {
		size_t i;
		json_array_foreach(tags, i, v) {
			PyObject *s;
			if (!json_is_string(v))
				continue;
			s = PyUnicode_DecodeUTF8(json_string_value(v), (Py_ssize_t)json_string_length(v), "surrogateescape");
			if (s == NULL || PySet_Add(m->tags, s) < 0) {
				Py_XDECREF(s);
				goto error;
			}
			Py_DECREF(s);
		}
	}
	if ((v = json_object_get(j, "created_at")) != NULL && json_is_integer(v))
		m->created_us = (int64_t)json_integer_value(v);
	if ((v = json_object_get(j, "updated_at")) != NULL && json_is_integer(v))
		m->updated_us = (int64_t)json_integer_value(v);
	if ((v = json_object_get(j, "version")) != NULL && json_is_integer(v))
		m->version = (uint64_t)json_integer_value(v);
	json_decref(j);
	return (PyObject *)m;
error:
	json_decref(j);
	Py_XDECREF(m);
	return NULL;
}
