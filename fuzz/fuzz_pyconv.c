/* Fuzz target: the Python extension's argument paths (python/src, docs/PYTHON.md),
 * with an embedded interpreter. The module nusterdb._core is linked in (the archive
 * the extension is made of) and registered as the built-in "_core".
 *
 * The input is decoded into four Python objects by a small structured decoder (a tag
 * byte each: None, bools, ints up to a few hundred bits, floats of any bit pattern and
 * the special ones, str (also with lone surrogates), bytes, bytearray, lists, tuples,
 * dicts, sets, a cycle, numpy arrays of many dtypes, shapes and layouts (transposed,
 * strided, reversed, misaligned, Fortran), array.array, memoryviews cast to any
 * format and shape, Vector, Metadata, the enums), then:
 *   - the converters of convert.c, metadata.c, enums.c and db.c are called on the
 *     first two directly (ids, vectors, matrices, id lists, JSON encode and decode
 *     with a round-trip check, metadata, filters, enum names, paths);
 *   - two bytes choose groups of public calls that take them: Vector, Metadata,
 *     the config constructors, DistanceMetric, and add/insert/batch_insert/
 *     add_items/upsert/search/knn/range_search/get on a small database in /dev/shm
 *     (records a call adds are deleted again, so that the database stays the same).
 * Every call must either return a value with no exception set or return NULL (or -1)
 * with one set: anything else aborts. Errors are cleared after each call. */
#include "fuzz.h"

#include "nusterdb.h"

#include <math.h>

/* The interpreter's start (numpy's import above all) leaves objects that only the
 * interpreter's finalisation, which never comes, would free: LeakSanitizer ignores
 * what is allocated while it is disabled around the fixture's set-up. */
#if defined(__SANITIZE_ADDRESS__)
#define FUZZ_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FUZZ_LSAN 1
#endif
#endif
#ifdef FUZZ_LSAN
#include <sanitizer/lsan_interface.h>
#else
#define __lsan_disable() ((void)0)
#define __lsan_enable() ((void)0)
#endif

PyMODINIT_FUNC PyInit__core(void);

static PyObject *mod, *helpers, *db, *enum_objs[6];
static nvfpy_state *st;
static int cyclic; /* the input made a cycle: collect it at the end */

/* Python-side makers of the objects that are easier to build in Python. */
static const char helper_src[] =
	"import array\n"
	"try:\n"
	"    import numpy as np\n"
	"except ImportError:\n"
	"    np = None\n"
	"DT = ['f4', 'f8', 'f2', 'i1', 'i2', 'i4', 'i8', 'u1', 'u2', 'u4', 'u8', '?', '>f4', 'c8', '>i8',\n"
	"      'O', 'U2', 'V4', 'M8[s]', '<f8']\n"
	"def fill(raw, need):\n"
	"    return bytearray((raw * (need // len(raw) + 1))[:need]) if raw else bytearray(need)\n"
	"def mkarr(raw, dt, shape, variant):\n"
	"    if np is None:\n"
	"        return None\n"
	"    dt = np.dtype(DT[dt % len(DT)])\n"
	"    n = 1\n"
	"    for s in shape:\n"
	"        n *= s\n"
	"    if dt.kind == 'O':\n"
	"        a = np.array([0.5] * n, dtype=object).reshape(shape)\n"
	"    else:\n"
	"        a = np.frombuffer(fill(raw, n * dt.itemsize), dtype=dt).reshape(shape)\n"
	"    v = variant % 7\n"
	"    if v == 1:\n"
	"        a = a.T\n"
	"    elif v == 2 and a.ndim:\n"
	"        a = np.repeat(a, 2, axis=0)[::2]\n"
	"    elif v == 3 and dt.kind != 'O':\n"
	"        b = bytearray(n * dt.itemsize + 1)\n"
	"        b[1:] = a.tobytes()\n"
	"        a = np.frombuffer(b, dtype=dt, offset=1).reshape(shape)\n"
	"    elif v == 4:\n"
	"        a = np.asfortranarray(a)\n"
	"    elif v == 5 and a.ndim:\n"
	"        a = a[..., ::-1]\n"
	"    elif v == 6:\n"
	"        a = a.copy()\n"
	"        a.flags.writeable = False\n"
	"    return a\n"
	"TC = 'bBhHiIlLqQfdu'\n"
	"def mkaa(raw, tc):\n"
	"    a = array.array(TC[tc % len(TC)])\n"
	"    a.frombytes(raw[:len(raw) - len(raw) % a.itemsize])\n"
	"    return a\n"
	"MVF = ['f', 'd', 'e', 'b', 'B', 'h', 'i', 'l', 'q', 'Q', '?', 'c', 'P', 'n', 'N']\n"
	"def mkmv(raw, fmt, shape):\n"
	"    return memoryview(bytearray(raw)).cast('B').cast(MVF[fmt % len(MVF)], shape)\n";

typedef struct rd {
	const uint8_t *p;
	size_t n, i;
} rd;

static uint8_t u8(rd *r)
{
	return r->i < r->n ? r->p[r->i++] : 0;
}

static void take(rd *r, void *out, size_t len)
{
	memset(out, 0, len);
	size_t got = r->n - r->i < len ? r->n - r->i : len;
	memcpy(out, r->p + r->i, got);
	r->i += got;
}

/* The next up to len bytes as a bytes object. */
static PyObject *raw_bytes(rd *r, size_t len)
{
	size_t got = r->n - r->i < len ? r->n - r->i : len;
	PyObject *b = PyBytes_FromStringAndSize((const char *)r->p + r->i, (Py_ssize_t)got);
	r->i += got;
	return b;
}

static PyObject *helper(const char *name, const char *fmt, ...)
{
	PyObject *fn = PyDict_GetItemString(helpers, name); /* borrowed */
	va_list ap;
	va_start(ap, fmt);
	PyObject *args = Py_VaBuildValue(fmt, ap);
	va_end(ap);
	PyObject *res = fn && args ? PyObject_Call(fn, args, NULL) : NULL;
	Py_XDECREF(args);
	return res;
}

static const double specials[] = {0.0, -0.0, 1.0, 1e308, -1e308, 5e-324, 3.4028234e38, 3.5e38, 1e-46, 65504.0,
				  9007199254740993.0};

#define MAX_DEPTH 6

/* One object; NULL with an exception set when making it failed. */
static PyObject *decode(rd *r, int depth)
{
	uint8_t tag = u8(r);
	if (depth > MAX_DEPTH)
		Py_RETURN_NONE;
	switch (tag % 24) {
	case 0:
		Py_RETURN_NONE;
	case 1:
		Py_RETURN_TRUE;
	case 2:
		Py_RETURN_FALSE;
	case 3:
		return PyLong_FromLong((int8_t)u8(r));
	case 4: {
		int64_t v;
		take(r, &v, sizeof v);
		return PyLong_FromLongLong(v);
	}
	case 5: { /* a big int: an int64 shifted left, maybe negated */
		uint64_t v;
		take(r, &v, sizeof v);
		uint8_t sh = u8(r);
		PyObject *x = PyLong_FromUnsignedLongLong(v), *s = PyLong_FromLong(sh % 200), *y = NULL;
		if (x && s)
			y = PyNumber_Lshift(x, s);
		Py_XDECREF(x);
		Py_XDECREF(s);
		if (y && (sh & 0x80)) {
			PyObject *z = PyNumber_Negative(y);
			Py_DECREF(y);
			y = z;
		}
		return y;
	}
	case 6: {
		double d;
		take(r, &d, sizeof d);
		return PyFloat_FromDouble(d);
	}
	case 7: {
		uint8_t b = u8(r);
		double d = b % 16 < 11 ? specials[b % 16] : b % 16 == 11 ? NAN : b % 16 == 12 ? -NAN : b % 16 == 13 ? INFINITY : -INFINITY;
		return PyFloat_FromDouble(b & 0x80 ? -d : d);
	}
	case 8: { /* str: UTF-8, else latin-1 */
		size_t len = u8(r) % 48;
		size_t got = r->n - r->i < len ? r->n - r->i : len;
		const char *s = (const char *)r->p + r->i;
		r->i += got;
		PyObject *u = PyUnicode_DecodeUTF8(s, (Py_ssize_t)got, "surrogatepass");
		if (!u) {
			PyErr_Clear();
			u = PyUnicode_DecodeLatin1(s, (Py_ssize_t)got, NULL);
		}
		return u;
	}
	case 9: { /* str of UCS-2 code units: lone surrogates and all */
		size_t len = u8(r) % 16;
		uint16_t u[16];
		take(r, u, len * 2);
		return PyUnicode_FromKindAndData(PyUnicode_2BYTE_KIND, u, (Py_ssize_t)len);
	}
	case 10:
		return raw_bytes(r, u8(r) % 64);
	case 11: {
		PyObject *b = raw_bytes(r, u8(r) % 64), *ba = b ? PyByteArray_FromObject(b) : NULL;
		Py_XDECREF(b);
		return ba;
	}
	case 12:
	case 13:
	case 14:
	case 15: { /* list, tuple, dict, set */
		size_t n = depth >= MAX_DEPTH ? 0 : u8(r) % 9;
		PyObject *c = tag % 24 == 12 || tag % 24 == 13 ? PyList_New(0) : tag % 24 == 14 ? PyDict_New() : PySet_New(NULL);
		for (size_t i = 0; c && i < n; i++) {
			PyObject *x = decode(r, depth + 1), *v = NULL;
			int rc = -1;
			if (x && tag % 24 == 14 && (v = decode(r, depth + 1)))
				rc = PyDict_SetItem(c, x, v);
			else if (x && tag % 24 == 15)
				rc = PySet_Add(c, x);
			else if (x && tag % 24 != 14)
				rc = PyList_Append(c, x);
			Py_XDECREF(x);
			Py_XDECREF(v);
			if (rc < 0)
				PyErr_Clear(); /* an unhashable key: left out */
		}
		if (c && tag % 24 == 13) {
			PyObject *t = PyList_AsTuple(c);
			Py_DECREF(c);
			c = t;
		}
		return c;
	}
	case 16:
	case 17: { /* a numpy array: dtype, 0-3 dimensions of 0-4, a layout, the bytes */
		uint8_t dt = u8(r), nd = u8(r) % 4, var = u8(r);
		PyObject *shape = PyTuple_New(nd);
		for (Py_ssize_t i = 0; shape && i < nd; i++)
			PyTuple_SET_ITEM(shape, i, PyLong_FromLong(u8(r) % 5));
		PyObject *raw = raw_bytes(r, u8(r) % 64), *a = NULL;
		if (shape && raw)
			a = helper("mkarr", "(OiOi)", raw, dt, shape, var);
		Py_XDECREF(shape);
		Py_XDECREF(raw);
		return a;
	}
	case 18: {
		uint8_t tc = u8(r);
		PyObject *raw = raw_bytes(r, u8(r) % 64), *a = raw ? helper("mkaa", "(Oi)", raw, tc) : NULL;
		Py_XDECREF(raw);
		return a;
	}
	case 19: {
		uint8_t fmt = u8(r), a = u8(r) % 5, b = u8(r) % 5;
		PyObject *raw = raw_bytes(r, u8(r) % 64), *m = NULL;
		if (raw)
			m = b ? helper("mkmv", "(Oi(ii))", raw, fmt, a, b) : helper("mkmv", "(Oi(i))", raw, fmt, a);
		Py_XDECREF(raw);
		return m;
	}
	case 20: { /* a Vector of what follows */
		PyObject *x = decode(r, depth + 1), *v = x ? PyObject_CallOneArg((PyObject *)st->Vector, x) : NULL;
		Py_XDECREF(x);
		return v;
	}
	case 21: { /* a Metadata of what follows (data, tags) */
		PyObject *x = decode(r, depth + 1), *y = x ? decode(r, depth + 1) : NULL, *m = NULL;
		if (x && y)
			m = PyObject_CallFunctionObjArgs((PyObject *)st->Metadata, x, y, NULL);
		Py_XDECREF(x);
		Py_XDECREF(y);
		return m;
	}
	case 22: { /* a list that holds itself (and something) */
		PyObject *x = decode(r, depth + 1), *l = x ? PyList_New(0) : NULL;
		if (l && (PyList_Append(l, x) < 0 || PyList_Append(l, l) < 0))
			Py_CLEAR(l);
		cyclic = 1;
		Py_XDECREF(x);
		return l;
	}
	default: { /* an enum member */
		PyObject *e = enum_objs[u8(r) % 6];
		Py_INCREF(e);
		return e;
	}
	}
}

/* The invariant of every C-API call: NULL (or -1) exactly when an exception is set. */
static void check(int failed, const char *what)
{
	int set = PyErr_Occurred() != NULL;
	if (failed != set) {
		fprintf(stderr, "%s: %s\n", what,
			failed ? "failed without an exception set" : "succeeded with an exception set");
		if (set)
			PyErr_Print();
		abort();
	}
	/* NVF_FUZZ_VERBOSE=1: say what each call raised (to see what an input reaches). */
	static int verbose = -1;
	if (verbose < 0)
		verbose = getenv("NVF_FUZZ_VERBOSE") != NULL;
	if (verbose) {
		fprintf(stderr, "  %s: %s\n", what, set ? "raised" : "ok");
		if (set)
			PyErr_Print();
	}
	PyErr_Clear();
}

static PyObject *checked(PyObject *res, const char *what)
{
	check(res == NULL, what);
	return res;
}

/* obj.name(*args, **kw); args a tuple or NULL, kw a dict or NULL. A new reference or NULL. */
static PyObject *call(PyObject *obj, const char *name, PyObject *args, PyObject *kw)
{
	PyObject *fn = PyObject_GetAttrString(obj, name), *res = NULL;
	if (!fn)
		abort(); /* every name called here exists */
	PyObject *empty = args ? NULL : PyTuple_New(0);
	res = PyObject_Call(fn, args ? args : empty, kw);
	Py_XDECREF(empty);
	Py_DECREF(fn);
	return checked(res, name);
}

#define ARGS(fmt, ...) Py_BuildValue("(" fmt ")", __VA_ARGS__)

/* call() with an argument tuple built here (and released). */
static PyObject *callv(PyObject *obj, const char *name, PyObject *args, PyObject *kw)
{
	if (!args)
		abort();
	PyObject *res = call(obj, name, args, kw);
	Py_DECREF(args);
	return res;
}

static void drop(PyObject *o)
{
	Py_XDECREF(o);
}

static PyObject *kw1(const char *k, PyObject *v)
{
	PyObject *d = PyDict_New();
	if (!d || PyDict_SetItemString(d, k, v) < 0)
		abort();
	return d;
}

/* A dict with str keys only (usable as **kwargs), or NULL. */
static PyObject *as_kwargs(PyObject *o)
{
	if (!PyDict_Check(o))
		return NULL;
	PyObject *k, *v;
	Py_ssize_t pos = 0;
	while (PyDict_Next(o, &pos, &k, &v))
		if (!PyUnicode_Check(k))
			return NULL;
	return o;
}

static void delete_id(PyObject *id)
{
	drop(callv(db, "delete", ARGS("O", id), NULL));
}

/* Delete every id of a sequence or buffer a write call returned. */
static void delete_all(PyObject *ids)
{
	PyObject *it = PyObject_GetIter(ids), *x;
	if (!it)
		abort();
	while ((x = PyIter_Next(it))) {
		PyObject *i = PyNumber_Index(x);
		if (!i)
			abort();
		delete_id(i);
		Py_DECREF(i);
		Py_DECREF(x);
	}
	Py_DECREF(it);
	check(0, "iterating the ids a write returned");
}

static void converters(PyObject *a, PyObject *b)
{
	uint64_t id;
	check(nvfpy_id(st, a, &id) < 0, "nvfpy_id");

	nvfpy_floats f;
	int rc = nvfpy_vector_in(st, a, &f);
	check(rc < 0, "nvfpy_vector_in");
	if (rc == 0) {
		if (f.rows != 1 || f.cols < 0 || (f.cols > 0 && !f.data))
			abort();
		volatile float sink = 0;
		for (Py_ssize_t i = 0; i < f.cols; i++)
			sink += f.data[i];
		(void)sink;
		nvfpy_floats_release(&f);
	}
	rc = nvfpy_matrix_in(st, a, &f);
	check(rc < 0, "nvfpy_matrix_in");
	if (rc == 0) {
		if (f.rows < 0 || f.cols < 0 || (f.rows * f.cols > 0 && !f.data))
			abort();
		volatile float sink = 0;
		for (Py_ssize_t i = 0; i < f.rows * f.cols; i++)
			sink += f.data[i];
		(void)sink;
		nvfpy_floats_release(&f);
	}

	uint64_t *ids = NULL;
	Py_ssize_t n = 0;
	rc = nvfpy_ids_in(st, a, &ids, &n);
	check(rc < 0, "nvfpy_ids_in");
	if (rc == 0) {
		for (Py_ssize_t i = 0; i < n; i++)
			if (ids[i] == UINT64_MAX)
				abort();
		PyMem_Free(ids);
	}

	/* JSON: what encodes and decodes again must encode to the same text. (A key with
	 * a NUL encodes but does not decode: jansson refuses it, and so does libnvf's
	 * nvf_meta_set, with InvalidArgumentError.) */
	char *text = nvfpy_json_encode(a, "metadata");
	check(text == NULL, "nvfpy_json_encode");
	PyObject *back = text ? checked(nvfpy_json_decode(text), "nvfpy_json_decode of an encoding") : NULL;
	if (back) {
		char *again = nvfpy_json_encode(back, "metadata");
		check(again == NULL, "nvfpy_json_encode of a decoding");
		if (!again || strcmp(text, again) != 0) {
			fprintf(stderr, "JSON round trip: %s -> %s\n", text, again ? again : "(failed)");
			abort();
		}
		free(again);
		Py_DECREF(back);
	}
	free(text);
	/* Text as JSON (a document, a record) and as a filter. */
	PyObject *utf8 = PyUnicode_Check(a) ? PyUnicode_AsUTF8String(a) : PyBytes_Check(a) ? (Py_INCREF(a), a) : NULL;
	PyErr_Clear(); /* lone surrogates: no UTF-8 */
	if (utf8) {
		const char *s = PyBytes_AS_STRING(utf8);
		drop(checked(nvfpy_json_decode(s), "nvfpy_json_decode"));
		drop(checked(nvfpy_metadata_from_record(st, s), "nvfpy_metadata_from_record"));
		Py_DECREF(utf8);
	}
	nvf_filter *flt = NULL;
	rc = nvfpy_filter_in(st, a, &flt);
	check(rc < 0, "nvfpy_filter_in");
	nvf_filter_free(flt);

	nvfpy_meta m;
	rc = nvfpy_meta_in(st, a, &m);
	check(rc < 0, "nvfpy_meta_in");
	if (rc == 0)
		nvfpy_meta_release(&m);

	int v;
	check(nvfpy_enum_from(st, st->DistanceMetric, a, &v) < 0, "nvfpy_enum_from DistanceMetric");
	check(nvfpy_enum_from(st, st->IndexType, a, &v) < 0, "nvfpy_enum_from IndexType");
	check(nvfpy_enum_from(st, st->Compression, a, &v) < 0, "nvfpy_enum_from Compression");
	drop(checked(nvfpy_fspath_bytes(a), "nvfpy_fspath_bytes"));
	(void)b;
}

/* Whether k is an int that only asks for memory: knn's arrays are (n, k) whatever
 * the count, so that k = 2^20 for 2,000 queries is 23 GB that ASan hands out and the
 * fill touches (found by a one-hour run: the caller asked for it). Past NVF_MAX_K
 * (2^24) knn refuses k before it allocates, and from 2^40 on the size is past ASan's
 * 1 TiB or wraps: those are tried. */
static int memory_only_k(PyObject *k)
{
	if (!PyLong_Check(k))
		return 0;
	int overflow;
	long long v = PyLong_AsLongLongAndOverflow(k, &overflow);
	PyErr_Clear();
	return !overflow && v > (1 << 12) && v <= (long long)NVF_MAX_K;
}

/* The public calls, a group chosen by sel, on objects a, b, c. */
static void public_calls(uint8_t sel, PyObject *a, PyObject *b, PyObject *c)
{
	PyObject *r, *x, *kw;
	switch (sel % 16) {
	case 0:
		if ((r = callv(mod, "Vector", ARGS("O", a), NULL))) {
			drop(call(r, "to_list", NULL, NULL));
			drop(call(r, "normalize", NULL, NULL));
			drop(callv(r, "add", ARGS("O", b), NULL));
			drop(callv(r, "distance", ARGS("OO", b, c), NULL));
			drop(callv(r, "__getitem__", ARGS("O", b), NULL));
			drop(callv(r, "__setitem__", ARGS("OO", b, c), NULL));
			Py_DECREF(r);
		}
		break;
	case 1:
		x = PyObject_GetAttrString(mod, "Vector");
		drop(callv(x, "zeros", ARGS("O", a), NULL));
		kw = kw1("seed", b);
		drop(callv(x, "random", ARGS("O", a), kw));
		drop(callv(x, "unit_random", ARGS("O", a), kw));
		Py_DECREF(kw);
		Py_DECREF(x);
		break;
	case 2:
		if ((r = callv(mod, "Metadata", ARGS("OO", a, b), NULL))) {
			drop(call(r, "to_dict", NULL, NULL));
			drop(callv(r, "set", ARGS("OO", b, c), NULL));
			drop(callv(r, "add_tag", ARGS("O", c), NULL));
			drop(callv(r, "get", ARGS("O", b), NULL));
			drop(call(r, "tags", NULL, NULL));
			nvfpy_meta m;
			int rc = nvfpy_meta_in(st, r, &m);
			check(rc < 0, "nvfpy_meta_in of a Metadata");
			if (rc == 0)
				nvfpy_meta_release(&m);
			Py_DECREF(r);
		}
		x = PyObject_GetAttrString(mod, "Metadata");
		drop(callv(x, "from_dict", ARGS("O", a), NULL));
		Py_DECREF(x);
		break;
	case 3: {
		static const char *const cls[] = {"HNSWConfig", "StorageConfiguration", "FlatIndexConfig"};
		for (int i = 0; i < 3; i++) {
			r = as_kwargs(a) ? callv(mod, cls[i], PyTuple_New(0), a) : callv(mod, cls[i], ARGS("OO", a, b), NULL);
			if (r) {
				drop(call(r, "to_dict", NULL, NULL));
				Py_DECREF(r);
			}
		}
		break;
	}
	case 4:
		r = callv(mod, "DatabaseConfig", ARGS("OOO", a, b, c), NULL);
		if (r) {
			drop(call(r, "to_dict", NULL, NULL));
			Py_DECREF(r);
		}
		kw = PyDict_New();
		if (!kw || PyDict_SetItemString(kw, "hnsw_config", a) < 0 || PyDict_SetItemString(kw, "storage_config", b) < 0)
			abort();
		if (as_kwargs(c) && PyDict_Update(kw, c) < 0)
			abort();
		if ((r = callv(mod, "DatabaseConfig", ARGS("i", 4), kw))) {
			drop(call(r, "to_dict", NULL, NULL));
			Py_DECREF(r);
		}
		Py_DECREF(kw);
		break;
	case 5:
		x = PyObject_GetAttrString(mod, "DistanceMetric");
		drop(callv(x, "from_name", ARGS("O", a), NULL));
		for (int i = 0; i < 3; i++) {
			drop(callv(enum_objs[i], "distance", ARGS("OO", b, c), NULL));
			drop(callv(enum_objs[i], "similarity", ARGS("OO", b, c), NULL));
		}
		Py_DECREF(x);
		break;
	case 6:
		if (memory_only_k(b))
			break;
		kw = PyDict_New();
		if (!kw || PyDict_SetItemString(kw, "k", b) < 0 || PyDict_SetItemString(kw, "filter", c) < 0)
			abort();
		drop(callv(db, "search", ARGS("O", a), kw));
		x = PyLong_FromLong(1);
		if (!x || PyDict_SetItemString(kw, "threads", x) < 0)
			abort();
		Py_DECREF(x);
		drop(callv(db, "knn", ARGS("O", a), kw));
		Py_DECREF(kw);
		kw = kw1("filter", c);
		drop(callv(db, "range_search", ARGS("OO", a, b), kw));
		Py_DECREF(kw);
		break;
	case 7:
		if ((r = callv(db, "add", ARGS("OOO", a, b, c), NULL))) {
			Py_DECREF(r);
			drop(callv(db, "update", ARGS("OO", a, c), NULL));
			drop(callv(db, "update_metadata", ARGS("OO", a, b), NULL));
			drop(callv(db, "get_metadata", ARGS("O", a), NULL));
			delete_id(a);
		}
		break;
	case 8:
		if ((r = callv(db, "insert", ARGS("OO", a, b), NULL))) {
			delete_id(r);
			Py_DECREF(r);
		}
		break;
	case 9:
		if ((r = callv(db, "batch_insert", ARGS("OO", a, b), NULL))) {
			delete_all(r);
			Py_DECREF(r);
		}
		break;
	case 10:
		kw = PyDict_New();
		if (!kw || PyDict_SetItemString(kw, "ids", b) < 0 || PyDict_SetItemString(kw, "metadata", c) < 0)
			abort();
		x = PyLong_FromLong(1);
		if (!x || PyDict_SetItemString(kw, "threads", x) < 0)
			abort();
		Py_DECREF(x);
		if ((r = callv(db, "add_items", ARGS("O", a), kw))) {
			delete_all(r);
			Py_DECREF(r);
		}
		Py_DECREF(kw);
		break;
	case 11: {
		/* upsert replaces a record that exists: only ids the fixture has not. */
		int has = PySequence_Contains(db, a);
		check(has < 0, "id in db");
		if (has == 0 && (r = callv(db, "upsert", ARGS("OOO", a, b, c), NULL))) {
			Py_DECREF(r);
			delete_id(a);
		}
		break;
	}
	case 12:
		drop(callv(db, "get", ARGS("O", a), NULL));
		drop(callv(db, "get_metadata", ARGS("O", a), NULL));
		drop(checked(PyObject_GetItem(db, a), "db[id]"));
		break;
	case 13:
		drop(callv(db, "diff", ARGS("OO", a, b), NULL));
		break;
	case 14:
		if (memory_only_k(b))
			break;
		kw = Py_BuildValue("{s:O,s:i}", "ef", c, "threads", 1);
		drop(callv(db, "knn", ARGS("OO", a, b), kw));
		Py_DECREF(kw);
		break;
	default:
		kw = kw1("detailed", a);
		drop(call(db, "stats", NULL, kw));
		Py_DECREF(kw);
		break;
	}
}

static void setup(void)
{
	char path[512];
	fuzz_dir("pyconv");
	__lsan_disable();
	/* Every allocation through malloc, so that ASan sees each object's bounds. */
	PyPreConfig pre;
	PyPreConfig_InitPythonConfig(&pre);
	pre.allocator = PYMEM_ALLOCATOR_MALLOC;
	if (PyStatus_Exception(Py_PreInitialize(&pre)))
		abort();
	if (PyImport_AppendInittab("_core", PyInit__core) < 0)
		abort();
	Py_InitializeEx(0);
	mod = PyImport_ImportModule("_core");
	if (!mod) {
		PyErr_Print();
		abort();
	}
	st = nvfpy_state_mod(mod);
	PyObject *globals = PyDict_New(), *builtins = PyEval_GetBuiltins();
	if (!globals || PyDict_SetItemString(globals, "__builtins__", builtins) < 0)
		abort();
	PyObject *res = PyRun_String(helper_src, Py_file_input, globals, globals);
	if (!res) {
		PyErr_Print();
		abort();
	}
	Py_DECREF(res);
	helpers = globals;
	static const char *const enums[][2] = {{"DistanceMetric", "Euclidean"}, {"DistanceMetric", "Cosine"},
					       {"DistanceMetric", "Jaccard"},   {"IndexType", "Hnsw"},
					       {"IndexType", "IVF"},            {"Compression", "ZSTD"}};
	for (int i = 0; i < 6; i++) {
		PyObject *tp = PyObject_GetAttrString(mod, enums[i][0]);
		enum_objs[i] = tp ? PyObject_GetAttrString(tp, enums[i][1]) : NULL;
		Py_XDECREF(tp);
		if (!enum_objs[i]) {
			PyErr_Print();
			abort();
		}
	}
	/* The database: 4-dimensional HNSW, records with documents and tags, a snapshot. */
	PyObject *kw = Py_BuildValue("{s:i,s:s,s:s}", "dim", 4, "index_type", "hnsw", "durability", "nosync");
	PyObject *conf = kw ? PyObject_Call(PyObject_GetAttrString(mod, "DatabaseConfig"), PyTuple_New(0), kw) : NULL;
	Py_XDECREF(kw);
	db = conf ? PyObject_CallFunction(PyObject_GetAttrString(mod, "NusterDB"), "sO", fuzz_path(path, "py.nvf"), conf)
		  : NULL;
	Py_XDECREF(conf);
	if (!db) {
		PyErr_Print();
		abort();
	}
	for (int i = 0; i < 24; i++) {
		PyObject *m = Py_BuildValue("{s:i,s:s,s:[i,d]}", "g", i % 5, "s", i % 2 ? "odd" : "even", "arr", i, i * 0.5);
		PyObject *r = m ? PyObject_CallMethod(db, "add", "i[dddd]O", i, i * 0.1, 1.0 - i * 0.05, (double)(i % 3), -0.5,
						       m)
				: NULL;
		Py_XDECREF(m);
		if (!r) {
			PyErr_Print();
			abort();
		}
		Py_DECREF(r);
	}
	if (!(res = PyObject_CallMethod(db, "snapshot", "s", "s1"))) {
		PyErr_Print();
		abort();
	}
	Py_DECREF(res);
	__lsan_enable();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!mod)
		setup();
	rd r = {data, size, 0};
	uint8_t sel[2] = {u8(&r), u8(&r)};
	PyObject *o[4];
	cyclic = 0;
	for (int i = 0; i < 4; i++) {
		o[i] = decode(&r, 0);
		if (!o[i]) {
			PyErr_Clear();
			o[i] = Py_NewRef(Py_None);
		}
	}
	converters(o[0], o[1]);
	converters(o[1], o[0]);
	public_calls(sel[0], o[0], o[1], o[2]);
	public_calls(sel[1], o[1], o[2], o[3]);
	for (int i = 0; i < 4; i++)
		Py_DECREF(o[i]);
	if (cyclic)
		PyGC_Collect();
	check(0, "the end of an input");
	return 0;
}
