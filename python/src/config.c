/*
 * config.c: HNSWConfig, FlatIndexConfig, StorageConfiguration, DatabaseConfig and
 * DatabaseStats. Each is a record of named read-only attributes (validated when it
 * is made), with to_dict(), repr and ==, sharing one implementation: an object
 * holding an array of values described by a table of field names.
 */
#include "nusterdb.h"

#include <stddef.h>
#include <string.h>
#include <strings.h>
#include <structmember.h>

#define REC_MAX 24

typedef struct rec_desc {
	const char *const *fields; /* NULL-terminated */
} rec_desc;

typedef struct RecObject {
	PyObject_HEAD
	const rec_desc *desc;
	PyObject *f[REC_MAX];
} RecObject;

#define F(i) {NULL, T_OBJECT, (Py_ssize_t)(offsetof(RecObject, f) + (i) * sizeof(PyObject *)), READONLY, NULL}

static const char *const hnsw_fields[] = {"max_nb_connection", "ef_construction", "max_nb_elements", "max_layer",
					  "ef_search", "seed", "quantize", NULL};
static const char *const flat_fields[] = {NULL};
static const char *const storage_fields[] = {"cache_size_mb", "compression", "enable_bloom_filter",
					     "bloom_filter_bits_per_key", "durability", "page_size", NULL};
static const char *const db_fields[] = {"dim", "index_type", "distance_metric", "hnsw_config", "flat_config",
					"storage_config", NULL};
static const char *const stats_fields[] = {"vector_count", "dimension", "distance_metric", "index_type", "file_size",
					   "page_size", "pages", "txnid", "snapshot_count", "document_count",
					   "document_bytes", "compression", "path", "read_only", "simd_level", "config",
					   "pages_by_kind", "free_pages", "hnsw_levels", "degree_histogram", "walk",
					   "calibration", NULL};

static const rec_desc hnsw_desc = {hnsw_fields};
static const rec_desc flat_desc = {flat_fields};
static const rec_desc storage_desc = {storage_fields};
static const rec_desc db_desc = {db_fields};
static const rec_desc stats_desc = {stats_fields};

enum { H_M, H_EFC, H_MAXEL, H_MAXLAYER, H_EFS, H_SEED, H_QUANT };
enum { S_CACHE, S_COMP, S_BLOOM, S_BITS, S_DUR, S_PAGE };
enum { D_DIM, D_INDEX, D_METRIC, D_HNSW, D_FLAT, D_STORAGE };

static RecObject *rec_alloc(PyTypeObject *tp, const rec_desc *desc)
{
	RecObject *r = (RecObject *)tp->tp_alloc(tp, 0);
	if (r != NULL)
		r->desc = desc;
	return r;
}

static int rec_traverse(PyObject *self, visitproc visit, void *arg)
{
	RecObject *r = (RecObject *)self;
	for (int i = 0; i < REC_MAX; i++)
		Py_VISIT(r->f[i]);
	Py_VISIT(Py_TYPE(self));
	return 0;
}

static int rec_clear(PyObject *self)
{
	RecObject *r = (RecObject *)self;
	for (int i = 0; i < REC_MAX; i++)
		Py_CLEAR(r->f[i]);
	return 0;
}

static void rec_dealloc(PyObject *self)
{
	PyTypeObject *tp = Py_TYPE(self);
	PyObject_GC_UnTrack(self);
	rec_clear(self);
	tp->tp_free(self);
	Py_DECREF(tp);
}

static PyObject *rec_to_dict(PyObject *self, PyObject *unused)
{
	RecObject *r = (RecObject *)self;
	PyObject *d = PyDict_New();
	(void)unused;
	if (d == NULL)
		return NULL;
	for (int i = 0; r->desc->fields[i] != NULL; i++) {
		PyObject *v = r->f[i] != NULL ? r->f[i] : Py_None, *conv;
		if (Py_TYPE(v)->tp_dealloc == rec_dealloc)
			conv = rec_to_dict(v, NULL);
		else if (Py_TYPE(v)->tp_str == nvfpy_enum_str)
			conv = PyObject_Str(v);
		else
			conv = Py_NewRef(v);
		if (conv == NULL || PyDict_SetItemString(d, r->desc->fields[i], conv) < 0) {
			Py_XDECREF(conv);
			Py_DECREF(d);
			return NULL;
		}
		Py_DECREF(conv);
	}
	return d;
}

static PyObject *rec_repr(PyObject *self)
{
	RecObject *r = (RecObject *)self;
	const char *tn = strrchr(Py_TYPE(self)->tp_name, '.');
	PyObject *parts = PyList_New(0), *sep = NULL, *body = NULL, *out = NULL;
	tn = tn != NULL ? tn + 1 : Py_TYPE(self)->tp_name;
	if (parts == NULL)
		return NULL;
	for (int i = 0; r->desc->fields[i] != NULL; i++) {
		PyObject *p = PyUnicode_FromFormat("%s=%R", r->desc->fields[i], r->f[i] != NULL ? r->f[i] : Py_None);
		if (p == NULL || PyList_Append(parts, p) < 0) {
			Py_XDECREF(p);
			goto done;
		}
		Py_DECREF(p);
	}
	sep = PyUnicode_FromString(", ");
	body = sep != NULL ? PyUnicode_Join(sep, parts) : NULL;
	if (body != NULL)
		out = PyUnicode_FromFormat("%s(%U)", tn, body);
done:
	Py_XDECREF(sep);
	Py_XDECREF(body);
	Py_DECREF(parts);
	return out;
}

static PyObject *rec_richcompare(PyObject *a, PyObject *b, int op)
{
	RecObject *x = (RecObject *)a, *y = (RecObject *)b;
	int eq = 1;
	if ((op != Py_EQ && op != Py_NE) || Py_TYPE(a) != Py_TYPE(b))
		Py_RETURN_NOTIMPLEMENTED;
	for (int i = 0; eq == 1 && x->desc->fields[i] != NULL; i++)
		eq = PyObject_RichCompareBool(x->f[i] != NULL ? x->f[i] : Py_None, y->f[i] != NULL ? y->f[i] : Py_None, Py_EQ);
	if (eq < 0)
		return NULL;
	return PyBool_FromLong(op == Py_EQ ? eq : !eq);
}

/* ---- validation ---------------------------------------------------------------- */

/* An int option in [lo, hi], stored as a Python int. */
static PyObject *int_opt(nvfpy_state *st, PyObject *v, const char *name, unsigned long long lo, unsigned long long hi)
{
	unsigned long long x;
	int overflow;
	long long s;
	if (PyBool_Check(v) || !PyLong_Check(v)) {
		PyErr_Format(PyExc_TypeError, "%s must be an int, not %.100s", name, Py_TYPE(v)->tp_name);
		return NULL;
	}
	s = PyLong_AsLongLongAndOverflow(v, &overflow);
	if (s == -1 && PyErr_Occurred())
		return NULL;
	if (overflow < 0 || (overflow == 0 && s < 0))
		goto range;
	if (overflow > 0) {
		x = PyLong_AsUnsignedLongLong(v);
		if (x == (unsigned long long)-1 && PyErr_Occurred()) {
			PyErr_Clear();
			goto range;
		}
	} else {
		x = (unsigned long long)s;
	}
	if (x < lo || x > hi)
		goto range;
	return PyLong_FromUnsignedLongLong(x);
range:
	return nvfpy_raise_fmt(st, st->InvalidArgumentError, NVF_EINVAL, "%s = %R is out of range (%llu to %llu)", name,
			       v, lo, hi);
}

static PyObject *choice_opt(nvfpy_state *st, PyObject *v, const char *name, const char *const *choices)
{
	const char *s;
	if (!PyUnicode_Check(v)) {
		PyErr_Format(PyExc_TypeError, "%s must be a str, not %.100s", name, Py_TYPE(v)->tp_name);
		return NULL;
	}
	s = PyUnicode_AsUTF8(v);
	if (s == NULL)
		return NULL;
	for (const char *const *c = choices; *c != NULL; c++)
		if (strcasecmp(s, *c) == 0)
			return PyUnicode_FromString(*c);
	return nvfpy_raise_fmt(st, st->InvalidArgumentError, NVF_EINVAL, "%s = %R is not one of the choices", name, v);
}

static const char *const quant_choices[] = {"auto", "none", "sq4", NULL};
static const char *const durability_choices[] = {"full", "nosync", NULL};

/* ---- HNSWConfig ------------------------------------------------------------------ */

static PyObject *hnsw_new(PyTypeObject *tp, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"max_nb_connection", "ef_construction", "max_nb_elements", "max_layer", "ef_search",
				 "seed", "quantize", NULL};
	nvfpy_state *st = nvfpy_state_of_type(tp);
	PyObject *v[7] = {NULL, NULL, NULL, NULL, NULL, NULL, NULL};
	RecObject *r;
	static const unsigned long long lo[] = {2, 1, 0, 1, 1, 0}, hi[] = {4096, 1u << 20, UINT64_MAX, 24, 1u << 20, UINT64_MAX};
	if (!PyArg_ParseTupleAndKeywords(args, kw, "|OOOOOOO:HNSWConfig", kwlist, &v[0], &v[1], &v[2], &v[3], &v[4],
					 &v[5], &v[6]))
		return NULL;
	r = rec_alloc(tp, &hnsw_desc);
	if (r == NULL)
		return NULL;
	{
		static const long long dflt[] = {16, 200, 1000000, 16, 64, 42};
		for (int i = 0; i < 6; i++) {
			if (v[i] == NULL || v[i] == Py_None)
				r->f[i] = PyLong_FromLongLong(dflt[i]);
			else
				r->f[i] = int_opt(st, v[i], kwlist[i], lo[i], hi[i]);
			if (r->f[i] == NULL)
				goto error;
		}
	}
	r->f[H_QUANT] = v[6] == NULL || v[6] == Py_None ? PyUnicode_FromString("auto")
							: choice_opt(st, v[6], "quantize", quant_choices);
	if (r->f[H_QUANT] == NULL)
		goto error;
	return (PyObject *)r;
error:
	Py_DECREF(r);
	return NULL;
}

static PyObject *flat_new(PyTypeObject *tp, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {NULL};
	if (!PyArg_ParseTupleAndKeywords(args, kw, ":FlatIndexConfig", kwlist))
		return NULL;
	return (PyObject *)rec_alloc(tp, &flat_desc);
}

static PyObject *storage_new(PyTypeObject *tp, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"cache_size_mb", "compression", "enable_bloom_filter", "bloom_filter_bits_per_key",
				 "durability", "page_size", NULL};
	nvfpy_state *st = nvfpy_state_of_type(tp);
	PyObject *v[6] = {NULL, NULL, NULL, NULL, NULL, NULL};
	RecObject *r;
	int codec;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "|OOOOOO:StorageConfiguration", kwlist, &v[0], &v[1], &v[2], &v[3],
					 &v[4], &v[5]))
		return NULL;
	r = rec_alloc(tp, &storage_desc);
	if (r == NULL)
		return NULL;
	r->f[S_CACHE] = v[0] == NULL || v[0] == Py_None ? PyLong_FromLong(0) : int_opt(st, v[0], "cache_size_mb", 0, 1ull << 40);
	if (r->f[S_CACHE] == NULL)
		goto error;
	codec = NVF_CODEC_NONE;
	if (v[1] != NULL && v[1] != Py_None && nvfpy_enum_from(st, st->Compression, v[1], &codec) < 0)
		goto error;
	if ((r->f[S_COMP] = nvfpy_enum_get(st->Compression, codec)) == NULL)
		goto error;
	if (v[2] == NULL || v[2] == Py_None) {
		r->f[S_BLOOM] = Py_NewRef(Py_False);
	} else {
		int b = PyObject_IsTrue(v[2]);
		if (b < 0)
			goto error;
		r->f[S_BLOOM] = PyBool_FromLong(b);
	}
	r->f[S_BITS] = v[3] == NULL || v[3] == Py_None ? PyLong_FromLong(10)
						       : int_opt(st, v[3], "bloom_filter_bits_per_key", 1, 1024);
	if (r->f[S_BITS] == NULL)
		goto error;
	r->f[S_DUR] = v[4] == NULL || v[4] == Py_None ? PyUnicode_FromString("full")
						      : choice_opt(st, v[4], "durability", durability_choices);
	if (r->f[S_DUR] == NULL)
		goto error;
	r->f[S_PAGE] = v[5] == NULL || v[5] == Py_None ? PyLong_FromLong(4096) : int_opt(st, v[5], "page_size", 512, 65536);
	if (r->f[S_PAGE] == NULL)
		goto error;
	{
		unsigned long ps = PyLong_AsUnsignedLong(r->f[S_PAGE]);
		if ((ps & (ps - 1)) != 0) {
			nvfpy_raise_fmt(st, st->InvalidArgumentError, NVF_EINVAL,
					"page_size = %lu is not a power of two (512 to 65536)", ps);
			goto error;
		}
	}
	return (PyObject *)r;
error:
	Py_DECREF(r);
	return NULL;
}

/* A nested config: given (an instance, a dict of its keywords, or None) with the
 * flat keywords of DatabaseConfig (non-None values of over) winning. */
static PyObject *nested(PyTypeObject *tp, PyObject *given, PyObject *over, const char *what)
{
	PyObject *kw, *args, *out;
	if (given == NULL || given == Py_None) {
		kw = PyDict_New();
	} else if (PyDict_Check(given)) {
		kw = PyDict_Copy(given);
	} else if (Py_TYPE(given) == tp) {
		kw = rec_to_dict(given, NULL);
	} else {
		PyErr_Format(PyExc_TypeError, "%s must be a %s or a dict, not %.100s", what, tp->tp_name,
			     Py_TYPE(given)->tp_name);
		return NULL;
	}
	if (kw == NULL)
		return NULL;
	{
		PyObject *k, *v;
		Py_ssize_t pos = 0;
		while (PyDict_Next(over, &pos, &k, &v)) {
			if (v != Py_None && PyDict_SetItem(kw, k, v) < 0) {
				Py_DECREF(kw);
				return NULL;
			}
		}
	}
	args = PyTuple_New(0);
	if (args == NULL) {
		Py_DECREF(kw);
		return NULL;
	}
	out = PyObject_Call((PyObject *)tp, args, kw);
	Py_DECREF(args);
	Py_DECREF(kw);
	return out;
}

static PyObject *dbconf_new(PyTypeObject *tp, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"dim", "index_type", "distance_metric", "hnsw_config", "flat_config", "storage_config",
				 "hnsw_max_connections", "hnsw_ef_construction", "hnsw_ef_search", "compression",
				 "cache_size_mb", "enable_bloom_filter", "durability", NULL};
	nvfpy_state *st = nvfpy_state_of_type(tp);
	PyObject *dim, *index = NULL, *metric = NULL, *hnsw = Py_None, *flat = Py_None, *storage = Py_None;
	PyObject *hm = Py_None, *hefc = Py_None, *hefs = Py_None, *comp = Py_None, *cache = Py_None, *bloom = Py_None,
		 *dur = Py_None, *over = NULL;
	RecObject *r;
	int v;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|OOOOOOOOOOOO:DatabaseConfig", kwlist, &dim, &index, &metric, &hnsw,
					 &flat, &storage, &hm, &hefc, &hefs, &comp, &cache, &bloom, &dur))
		return NULL;
	r = rec_alloc(tp, &db_desc);
	if (r == NULL)
		return NULL;
	if ((r->f[D_DIM] = int_opt(st, dim, "dim", 1, NVF_MAX_DIM)) == NULL)
		goto error;
	v = NVF_INDEX_HNSW;
	if (index != NULL && index != Py_None && nvfpy_enum_from(st, st->IndexType, index, &v) < 0)
		goto error;
	if ((r->f[D_INDEX] = nvfpy_enum_get(st->IndexType, v)) == NULL)
		goto error;
	v = NVF_METRIC_EUCLIDEAN;
	if (metric != NULL && metric != Py_None && nvfpy_enum_from(st, st->DistanceMetric, metric, &v) < 0)
		goto error;
	if ((r->f[D_METRIC] = nvfpy_enum_get(st->DistanceMetric, v)) == NULL)
		goto error;
	over = Py_BuildValue("{sOsOsO}", "max_nb_connection", hm, "ef_construction", hefc, "ef_search", hefs);
	if (over == NULL || (r->f[D_HNSW] = nested(st->HNSWConfig, hnsw, over, "hnsw_config")) == NULL)
		goto error;
	Py_CLEAR(over);
	over = PyDict_New();
	if (over == NULL || (r->f[D_FLAT] = nested(st->FlatIndexConfig, flat, over, "flat_config")) == NULL)
		goto error;
	Py_CLEAR(over);
	over = Py_BuildValue("{sOsOsOsO}", "compression", comp, "cache_size_mb", cache, "enable_bloom_filter", bloom,
			     "durability", dur);
	if (over == NULL || (r->f[D_STORAGE] = nested(st->StorageConfiguration, storage, over, "storage_config")) == NULL)
		goto error;
	Py_DECREF(over);
	return (PyObject *)r;
error:
	Py_XDECREF(over);
	Py_DECREF(r);
	return NULL;
}

/* DatabaseConfig's flat spellings read the nested objects. */
typedef struct flat_alias {
	int sub;
	int field;
} flat_alias;

static const flat_alias a_hm = {D_HNSW, H_M}, a_hefc = {D_HNSW, H_EFC}, a_hefs = {D_HNSW, H_EFS},
			a_comp = {D_STORAGE, S_COMP}, a_cache = {D_STORAGE, S_CACHE}, a_bloom = {D_STORAGE, S_BLOOM},
			a_dur = {D_STORAGE, S_DUR}, a_page = {D_STORAGE, S_PAGE};

static PyObject *dbconf_alias(PyObject *self, void *closure)
{
	const flat_alias *a = closure;
	RecObject *sub = (RecObject *)((RecObject *)self)->f[a->sub];
	return Py_NewRef(sub->f[a->field]);
}

static PyGetSetDef dbconf_getset[] = {
	{"hnsw_max_connections", dbconf_alias, NULL, "hnsw_config.max_nb_connection", (void *)&a_hm},
	{"hnsw_ef_construction", dbconf_alias, NULL, "hnsw_config.ef_construction", (void *)&a_hefc},
	{"hnsw_ef_search", dbconf_alias, NULL, "hnsw_config.ef_search", (void *)&a_hefs},
	{"compression", dbconf_alias, NULL, "storage_config.compression", (void *)&a_comp},
	{"cache_size_mb", dbconf_alias, NULL, "storage_config.cache_size_mb", (void *)&a_cache},
	{"enable_bloom_filter", dbconf_alias, NULL, "storage_config.enable_bloom_filter", (void *)&a_bloom},
	{"durability", dbconf_alias, NULL, "storage_config.durability", (void *)&a_dur},
	{"page_size", dbconf_alias, NULL, "storage_config.page_size", (void *)&a_page},
	{NULL, NULL, NULL, NULL, NULL},
};

/* ---- to and from libnvf ----------------------------------------------------- */

static unsigned long long ull(PyObject *v)
{
	return PyLong_AsUnsignedLongLong(v);
}

int nvfpy_config_read(nvfpy_state *st, PyObject *conf, nvfpy_dbconf *out)
{
	RecObject *r = (RecObject *)conf, *h, *s;
	nvf_create_options co = NVF_CREATE_OPTIONS_INIT;
	const char *q, *d;
	if (!PyObject_TypeCheck(conf, st->DatabaseConfig)) {
		PyErr_Format(PyExc_TypeError, "config must be a DatabaseConfig, not %.100s", Py_TYPE(conf)->tp_name);
		return -1;
	}
	h = (RecObject *)r->f[D_HNSW];
	s = (RecObject *)r->f[D_STORAGE];
	co.dim = (uint32_t)ull(r->f[D_DIM]);
	co.metric = ((EnumObject *)r->f[D_METRIC])->value;
	out->index = ((EnumObject *)r->f[D_INDEX])->value;
	co.index = out->index == NVF_INDEX_FLAT ? NVF_INDEX_FLAT : NVF_INDEX_HNSW;
	co.hnsw_m = (uint32_t)ull(h->f[H_M]);
	co.hnsw_ef_construction = (uint32_t)ull(h->f[H_EFC]);
	co.hnsw_ef_search = (uint32_t)ull(h->f[H_EFS]);
	co.seed = (uint64_t)ull(h->f[H_SEED]);
	q = PyUnicode_AsUTF8(h->f[H_QUANT]);
	if (q == NULL)
		return -1;
	co.hnsw_quantize = strcmp(q, "sq4") == 0 ? NVF_QUANT_SQ4 : strcmp(q, "none") == 0 ? NVF_QUANT_NONE : NVF_QUANT_AUTO;
	co.page_size = (uint32_t)ull(s->f[S_PAGE]);
	co.doc_codec = ((EnumObject *)s->f[S_COMP])->value;
	d = PyUnicode_AsUTF8(s->f[S_DUR]);
	if (d == NULL)
		return -1;
	out->durability = strcmp(d, "nosync") == 0 ? NVF_DURABILITY_NOSYNC : NVF_DURABILITY_FULL;
	co.durability = out->durability;
	out->cache_size_mb = ull(s->f[S_CACHE]);
	out->co = co;
	return PyErr_Occurred() ? -1 : 0;
}

PyObject *nvfpy_config_default(nvfpy_state *st, Py_ssize_t dim)
{
	return PyObject_CallFunction((PyObject *)st->DatabaseConfig, "n", dim);
}

PyObject *nvfpy_config_from_info(nvfpy_state *st, const nvf_info *info, PyObject *given, int durability)
{
	RecObject *g = given != NULL && given != Py_None ? (RecObject *)given : NULL;
	PyObject *hkw = NULL, *skw = NULL, *hnsw = NULL, *storage = NULL, *out = NULL, *idx = NULL, *met = NULL;
	PyObject *empty = PyTuple_New(0);
	if (empty == NULL)
		return NULL;
	hkw = g != NULL ? rec_to_dict(g->f[D_HNSW], NULL) : PyDict_New();
	skw = g != NULL ? rec_to_dict(g->f[D_STORAGE], NULL) : PyDict_New();
	if (hkw == NULL || skw == NULL)
		goto done;
	if (info->index == NVF_INDEX_HNSW) {
		PyObject *t = Py_BuildValue("{sIsIsIsKss}", "max_nb_connection", info->hnsw_m, "ef_construction",
					    info->hnsw_ef_construction, "ef_search", info->hnsw_ef_search, "seed",
					    (unsigned long long)info->seed, "quantize",
					    info->hnsw_quantize == NVF_QUANT_SQ4 ? "sq4" : "none");
		if (t == NULL || PyDict_Update(hkw, t) < 0) {
			Py_XDECREF(t);
			goto done;
		}
		Py_DECREF(t);
	}
	{
		PyObject *t = Py_BuildValue("{sisIss}", "compression", info->doc_codec, "page_size", info->page_size,
					    "durability", durability == NVF_DURABILITY_NOSYNC ? "nosync" : "full");
		PyObject *comp;
		if (t == NULL)
			goto done;
		comp = nvfpy_enum_get(st->Compression, info->doc_codec);
		if (comp == NULL || PyDict_SetItemString(t, "compression", comp) < 0 || PyDict_Update(skw, t) < 0) {
			Py_XDECREF(comp);
			Py_DECREF(t);
			goto done;
		}
		Py_DECREF(comp);
		Py_DECREF(t);
	}
	hnsw = PyObject_Call((PyObject *)st->HNSWConfig, empty, hkw);
	storage = hnsw != NULL ? PyObject_Call((PyObject *)st->StorageConfiguration, empty, skw) : NULL;
	idx = nvfpy_enum_get(st->IndexType, info->index);
	met = nvfpy_enum_get(st->DistanceMetric, info->metric);
	if (storage == NULL || idx == NULL || met == NULL)
		goto done;
	out = PyObject_CallFunction((PyObject *)st->DatabaseConfig, "IOOOOO", info->dim, idx, met, hnsw,
				    g != NULL ? g->f[D_FLAT] : Py_None, storage);
done:
	Py_DECREF(empty);
	Py_XDECREF(hkw);
	Py_XDECREF(skw);
	Py_XDECREF(hnsw);
	Py_XDECREF(storage);
	Py_XDECREF(idx);
	Py_XDECREF(met);
	return out;
}

PyObject *nvfpy_stats_new(nvfpy_state *st, PyObject *values)
{
	RecObject *r = rec_alloc(st->DatabaseStats, &stats_desc);
	if (r == NULL)
		return NULL;
	for (int i = 0; stats_fields[i] != NULL; i++) {
		PyObject *v = PyDict_GetItemString(values, stats_fields[i]);
		r->f[i] = Py_NewRef(v != NULL ? v : Py_None);
	}
	return (PyObject *)r;
}

/* ---- the types ------------------------------------------------------------------ */

static PyMethodDef rec_methods[] = {
	{"to_dict", rec_to_dict, METH_NOARGS, "Every option (or value) as a dict."},
	{NULL, NULL, 0, NULL},
};

static PyMemberDef flat_members[] = {{NULL, 0, 0, 0, NULL}};
static PyMemberDef hnsw_members[] = {F(0), F(1), F(2), F(3), F(4), F(5), F(6), {NULL, 0, 0, 0, NULL}};
static PyMemberDef storage_members[] = {F(0), F(1), F(2), F(3), F(4), F(5), {NULL, 0, 0, 0, NULL}};
static PyMemberDef db_members[] = {F(0), F(1), F(2), F(3), F(4), F(5), {NULL, 0, 0, 0, NULL}};
static PyMemberDef stats_members[] = {F(0), F(1), F(2), F(3), F(4), F(5), F(6), F(7), F(8), F(9), F(10),
				      F(11), F(12), F(13), F(14), F(15), F(16), F(17), F(18), F(19), F(20), F(21),
				      {NULL, 0, 0, 0, NULL}};

/* Member names come from the field tables (one list to keep in order). */
static void name_members(PyMemberDef *m, const char *const *fields)
{
	for (int i = 0; fields[i] != NULL; i++)
		m[i].name = fields[i];
}

#define REC_SLOTS(newfn, doc, members, extra_getset)                               \
	{Py_tp_doc, (void *)(doc)}, {Py_tp_new, NVFPY_FN(newfn)},                  \
		{Py_tp_dealloc, NVFPY_FN(rec_dealloc)}, {Py_tp_traverse, NVFPY_FN(rec_traverse)}, \
		{Py_tp_clear, NVFPY_FN(rec_clear)}, {Py_tp_repr, NVFPY_FN(rec_repr)},  \
		{Py_tp_richcompare, NVFPY_FN(rec_richcompare)},                       \
		{Py_tp_hash, NVFPY_FN(PyObject_HashNotImplemented)},                 \
		{Py_tp_methods, rec_methods}, {Py_tp_members, (members)}, {Py_tp_getset, (extra_getset)}

static PyGetSetDef no_getset[] = {{NULL, NULL, NULL, NULL, NULL}};

static PyType_Slot hnsw_slots[] = {
	REC_SLOTS(hnsw_new,
		  "HNSWConfig(max_nb_connection=16, ef_construction=200, max_nb_elements=1_000_000, max_layer=16, "
		  "ef_search=64, seed=42, quantize='auto')",
		  hnsw_members, no_getset),
	{0, NULL},
};
static PyType_Slot flat_slots[] = {
	REC_SLOTS(flat_new, "FlatIndexConfig()\n--\n\nThe exact-scan index has no options.", flat_members, no_getset),
	{0, NULL},
};
static PyType_Slot storage_slots[] = {
	REC_SLOTS(storage_new,
		  "StorageConfiguration(cache_size_mb=0, compression=Compression.None, enable_bloom_filter=False, "
		  "bloom_filter_bits_per_key=10, durability='full', page_size=4096)",
		  storage_members, no_getset),
	{0, NULL},
};
static PyType_Slot db_slots[] = {
	REC_SLOTS(dbconf_new,
		  "DatabaseConfig(dim, index_type=IndexType.Hnsw, distance_metric=DistanceMetric.Euclidean, "
		  "hnsw_config=None, flat_config=None, storage_config=None, hnsw_max_connections=None, "
		  "hnsw_ef_construction=None, hnsw_ef_search=None, compression=None, cache_size_mb=None, "
		  "enable_bloom_filter=None, durability=None)",
		  db_members, dbconf_getset),
	{0, NULL},
};
static PyType_Slot stats_slots[] = {
	{Py_tp_doc, (void *)"What NusterDB.stats() reports."},
	{Py_tp_dealloc, NVFPY_FN(rec_dealloc)},
	{Py_tp_traverse, NVFPY_FN(rec_traverse)},
	{Py_tp_clear, NVFPY_FN(rec_clear)},
	{Py_tp_repr, NVFPY_FN(rec_repr)},
	{Py_tp_methods, rec_methods},
	{Py_tp_members, stats_members},
	{0, NULL},
};

#define REC_FLAGS (Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE)

PyType_Spec nvfpy_hnsw_config_spec = {"nusterdb.HNSWConfig", sizeof(RecObject), 0, REC_FLAGS, hnsw_slots};
PyType_Spec nvfpy_flat_config_spec = {"nusterdb.FlatIndexConfig", sizeof(RecObject), 0, REC_FLAGS, flat_slots};
PyType_Spec nvfpy_storage_config_spec = {"nusterdb.StorageConfiguration", sizeof(RecObject), 0, REC_FLAGS, storage_slots};
PyType_Spec nvfpy_database_config_spec = {"nusterdb.DatabaseConfig", sizeof(RecObject), 0, REC_FLAGS, db_slots};
PyType_Spec nvfpy_stats_spec = {"nusterdb.DatabaseStats", sizeof(RecObject), 0,
				Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION, stats_slots};

/* Called once before the types are made (module exec). */
void nvfpy_config_names(void)
{
	name_members(hnsw_members, hnsw_fields);
	name_members(storage_members, storage_fields);
	name_members(db_members, db_fields);
	name_members(stats_members, stats_fields);
}
