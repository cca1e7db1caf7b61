/*
 * module.c: nusterdb._core's definition, multi-phase initialisation, module state
 * and the mapping of libnvf's error codes to the exception classes of
 * docs/PYTHON.md (as CPython's Modules/_sqlite/module.c does for SQLite's).
 */
#include "nusterdb.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>

nvfpy_state *nvfpy_state_of_type(PyTypeObject *tp)
{
	PyObject *mod = PyType_GetModuleByDef(tp, &nvfpy_moduledef);
	if (mod == NULL)
		return NULL;
	return nvfpy_state_mod(mod);
}

PyObject *nvfpy_getattr(PyObject *obj, const char *name)
{
	PyObject *n = PyUnicode_InternFromString(name), *r;
	if (n == NULL)
		return NULL;
	r = PyObject_GetAttr(obj, n);
	Py_DECREF(n);
	return r;
}

int nvfpy_setattr(PyObject *obj, const char *name, PyObject *value)
{
	PyObject *n = PyUnicode_InternFromString(name);
	int r;
	if (n == NULL)
		return -1;
	r = PyObject_SetAttr(obj, n, value);
	Py_DECREF(n);
	return r;
}

/* ---- errors --------------------------------------------------------------- */

int nvfpy_capture(nvfpy_err *e, int rc)
{
	if (rc < 0) {
		const char *m = nvf_errmsg();
		e->rc = rc;
		if (m == NULL || m[0] == '\0')
			m = nvf_strerror(rc);
		snprintf(e->msg, sizeof e->msg, "%s", m);
	}
	return rc;
}

static PyObject *class_for(nvfpy_state *st, int rc)
{
	switch (rc) {
	case NVF_EINVAL: return st->InvalidArgumentError;
	case NVF_ENOTFOUND: return st->NotFoundError;
	case NVF_EEXIST: return st->ExistsError;
	case NVF_EREADONLY: return st->ReadOnlyError;
	case NVF_ELOCKED: return st->LockedError;
	case NVF_ECORRUPT: return st->CorruptError;
	case NVF_EVERSION: return st->VersionError;
	case NVF_ENOTDB: return st->NotADatabaseError;
	case NVF_EFULL: return st->FullError;
	case NVF_ESTALE: return st->StaleError;
	case NVF_EBUSY:
	case NVF_EREADERS: return st->BusyError;
	case NVF_EBADTXN: return st->TransactionError;
	default:
		if (rc < 0 && rc > -1000)
			return st->StorageError;
		return st->Error;
	}
}

/* Build and raise exc(args...) with its code attribute set. */
static PyObject *raise_with(PyObject *exc, PyObject *args, int code, const char *msg)
{
	PyObject *inst = PyObject_Call(exc, args, NULL);
	Py_DECREF(args);
	if (inst == NULL)
		return NULL;
	if (code != 0) {
		PyObject *c = PyLong_FromLong(code);
		if (c == NULL || nvfpy_setattr(inst, "code", c) < 0) {
			Py_XDECREF(c);
			Py_DECREF(inst);
			return NULL;
		}
		Py_DECREF(c);
	}
	/* OSError subclasses built from a message alone get it as strerror too, so
	 * that .strerror says what happened (.errno stays None: not an OS error). */
	if (msg != NULL && PyObject_TypeCheck(inst, (PyTypeObject *)PyExc_OSError)) {
		PyObject *se = nvfpy_getattr(inst, "strerror");
		if (se == Py_None) {
			PyObject *s = PyUnicode_DecodeUTF8(msg, (Py_ssize_t)strlen(msg), "replace");
			if (s == NULL || nvfpy_setattr(inst, "strerror", s) < 0)
				PyErr_Clear();
			Py_XDECREF(s);
		}
		Py_XDECREF(se);
		PyErr_Clear();
	}
	PyErr_SetObject((PyObject *)Py_TYPE(inst), inst);
	Py_DECREF(inst);
	return NULL;
}

PyObject *nvfpy_raise_err(nvfpy_state *st, const nvfpy_err *e, PyObject *filename)
{
	PyObject *exc = class_for(st, e->rc);
	PyObject *msg = PyUnicode_DecodeUTF8(e->msg, (Py_ssize_t)strlen(e->msg), "replace");
	PyObject *args;
	if (msg == NULL)
		return NULL;
	if (exc == st->StorageError) {
		/* (errno, strerror[, filename]) so that OSError fills .errno, .strerror
		 * and .filename */
		if (filename != NULL && filename != Py_None)
			args = Py_BuildValue("(iNO)", -e->rc, msg, filename);
		else
			args = Py_BuildValue("(iN)", -e->rc, msg);
	} else {
		args = Py_BuildValue("(N)", msg);
	}
	if (args == NULL)
		return NULL;
	return raise_with(exc, args, e->rc, e->msg);
}

PyObject *nvfpy_raise(nvfpy_state *st, int rc, PyObject *filename)
{
	nvfpy_err e;
	nvfpy_capture(&e, rc);
	return nvfpy_raise_err(st, &e, filename);
}

PyObject *nvfpy_raise_fmt(nvfpy_state *st, PyObject *exc, int code, const char *fmt, ...)
{
	va_list ap;
	PyObject *msg, *args;
	(void)st;
	va_start(ap, fmt);
	msg = PyUnicode_FromFormatV(fmt, ap);
	va_end(ap);
	if (msg == NULL)
		return NULL;
	args = Py_BuildValue("(N)", msg);
	if (args == NULL)
		return NULL;
	return raise_with(exc, args, code, PyUnicode_AsUTF8(PyTuple_GET_ITEM(args, 0)));
}

/* ---- module functions ---------------------------------------------------- */

/* _reopen(path, read_only, snapshot, timeout): what a pickled NusterDB calls on the
 * other side (NusterDB.__reduce__). */
static PyObject *mod_reopen(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	static const char *const kwlist[] = {"path", "read_only", "snapshot", "timeout", NULL};
	nvfpy_state *st = nvfpy_state_mod(module);
	PyObject *path, *snapshot = Py_None, *timeout = Py_None, *kw, *pos, *res;
	int read_only = 0;
	if (!nvfpy_parse(args, nargs, kwnames, "O|pOO:_reopen", kwlist, &path, &read_only, &snapshot, &timeout))
		return NULL;
	kw = Py_BuildValue("{sOsOsO}", "read_only", read_only ? Py_True : Py_False, "snapshot", snapshot, "timeout",
			   timeout);
	pos = PyTuple_Pack(1, path);
	if (kw == NULL || pos == NULL) {
		Py_XDECREF(kw);
		Py_XDECREF(pos);
		return NULL;
	}
	res = PyObject_Call((PyObject *)st->NusterDB, pos, kw);
	Py_DECREF(kw);
	Py_DECREF(pos);
	return res;
}

static PyObject *mod_simd_level(PyObject *module, PyObject *unused)
{
	(void)module;
	(void)unused;
	return PyUnicode_FromString(nvf_simd_level());
}

static PyMethodDef module_methods[] = {
	{"_reopen", NVFPY_FASTKW(mod_reopen), METH_FASTCALL | METH_KEYWORDS,
	 "Open a database again from a pickle."},
	{"simd_level", mod_simd_level, METH_NOARGS,
	 "The SIMD kernels libnvf chose at run time: 'avx512', 'avx2' or 'scalar'."},
	{NULL, NULL, 0, NULL},
};

/* ---- initialisation ---------------------------------------------------------- */

static int add_type(PyObject *module, PyTypeObject **slot, PyType_Spec *spec, PyObject *base)
{
	*slot = (PyTypeObject *)PyType_FromModuleAndSpec(module, spec, base);
	if (*slot == NULL)
		return -1;
	return PyModule_AddType(module, *slot);
}

static int add_exception(PyObject *module, PyObject **slot, const char *name, const char *doc,
			 PyObject *base1, PyObject *base2)
{
	char full[96];
	PyObject *bases, *dict;
	snprintf(full, sizeof full, "nusterdb.%s", name);
	bases = base2 != NULL ? PyTuple_Pack(2, base1, base2) : PyTuple_Pack(1, base1);
	dict = PyDict_New();
	if (bases == NULL || dict == NULL)
		goto error;
	if (PyDict_SetItemString(dict, "code", Py_None) < 0)
		goto error;
	/* KeyError's str() quotes its message as if it were a key: NotFoundError shows
	 * the message as it is, like the other errors. */
	if (base2 == PyExc_KeyError) {
		PyObject *s = nvfpy_getattr(PyExc_Exception, "__str__");
		if (s == NULL || PyDict_SetItemString(dict, "__str__", s) < 0) {
			Py_XDECREF(s);
			goto error;
		}
		Py_DECREF(s);
	}
	*slot = PyErr_NewExceptionWithDoc(full, doc, bases, dict);
	Py_DECREF(bases);
	Py_DECREF(dict);
	if (*slot == NULL)
		return -1;
	return PyModule_AddObjectRef(module, name, *slot);
error:
	Py_XDECREF(bases);
	Py_XDECREF(dict);
	return -1;
}

static int module_exec(PyObject *module)
{
	nvfpy_state *st = nvfpy_state_mod(module);

	if (add_exception(module, &st->Error, "Error", "Base class of every error NusterDB reports.",
			  PyExc_Exception, NULL) < 0)
		return -1;
#define EXC(field, doc, b)                                                            \
	if (add_exception(module, &st->field, #field, doc, st->Error, b) < 0) \
		return -1
	EXC(InvalidArgumentError, "An argument is invalid (NVF_EINVAL).", PyExc_ValueError);
	EXC(NotFoundError, "No such record or snapshot (NVF_ENOTFOUND).", PyExc_KeyError);
	EXC(ExistsError, "The id or name exists already (NVF_EEXIST).", PyExc_ValueError);
	EXC(ReadOnlyError, "A write through a read-only handle (NVF_EREADONLY).", PyExc_PermissionError);
	EXC(LockedError, "Another process holds the writer lock (NVF_ELOCKED).", PyExc_OSError);
	EXC(CorruptError, "The file is damaged (NVF_ECORRUPT).", PyExc_OSError);
	EXC(VersionError, "The file was written by a newer format (NVF_EVERSION).", PyExc_OSError);
	EXC(NotADatabaseError, "Not a NusterDB file or directory (NVF_ENOTDB).", PyExc_OSError);
	EXC(FullError, "The map size or another hard limit is reached (NVF_EFULL).", PyExc_OSError);
	EXC(StaleError, "The file was compacted by another process: reopen (NVF_ESTALE).", PyExc_OSError);
	EXC(BusyError, "A conflicting call is in progress (NVF_EBUSY, NVF_EREADERS).", PyExc_RuntimeError);
	EXC(TransactionError, "A transaction failed earlier (NVF_EBADTXN).", PyExc_RuntimeError);
	EXC(ClosedError, "The database handle is closed.", PyExc_ValueError);
	EXC(NotSupportedError, "Not supported (IndexType.IVF, LSH, Annoy).", PyExc_NotImplementedError);
	EXC(StorageError, "An operating-system error (errno set).", PyExc_OSError);
#undef EXC
	if (add_exception(module, &st->FilterError, "FilterError", "A filter expression that does not parse.",
			  st->InvalidArgumentError, NULL) < 0)
		return -1;

	nvfpy_config_names();
	if (add_type(module, &st->Vector, &nvfpy_vector_spec, NULL) < 0 ||
	    add_type(module, &st->DistanceMetric, &nvfpy_metric_spec, NULL) < 0 ||
	    add_type(module, &st->IndexType, &nvfpy_index_type_spec, NULL) < 0 ||
	    add_type(module, &st->Compression, &nvfpy_compression_spec, NULL) < 0 ||
	    add_type(module, &st->Metadata, &nvfpy_metadata_spec, NULL) < 0 ||
	    add_type(module, &st->HNSWConfig, &nvfpy_hnsw_config_spec, NULL) < 0 ||
	    add_type(module, &st->FlatIndexConfig, &nvfpy_flat_config_spec, NULL) < 0 ||
	    add_type(module, &st->StorageConfiguration, &nvfpy_storage_config_spec, NULL) < 0 ||
	    add_type(module, &st->DatabaseConfig, &nvfpy_database_config_spec, NULL) < 0 ||
	    add_type(module, &st->DatabaseStats, &nvfpy_stats_spec, NULL) < 0 ||
	    add_type(module, &st->NusterDB, &nvfpy_db_spec, NULL) < 0)
		return -1;
	st->ResultArray = (PyTypeObject *)PyType_FromModuleAndSpec(module, &nvfpy_result_spec, NULL);
	if (st->ResultArray == NULL)
		return -1;
	if (nvfpy_vector_setup(module, st) < 0 || nvfpy_metric_setup(module, st) < 0 ||
	    nvfpy_metadata_setup(module, st) < 0 || nvfpy_db_setup(module, st) < 0)
		return -1;
	if (PyModule_AddStringConstant(module, "__version__", "0.1.0") < 0)
		return -1;
	{
		char v[32];
		snprintf(v, sizeof v, "%d.%d.%d", NVF_VERSION_MAJOR, NVF_VERSION_MINOR, NVF_VERSION_PATCH);
		if (PyModule_AddStringConstant(module, "libnvf_version", v) < 0)
			return -1;
	}
	return 0;
}

static int module_traverse(PyObject *module, visitproc visit, void *arg)
{
	nvfpy_state *st = nvfpy_state_mod(module);
	PyObject **p = (PyObject **)st;
	for (size_t i = 0; i < sizeof *st / sizeof(PyObject *); i++)
		Py_VISIT(p[i]);
	return 0;
}

static int module_clear(PyObject *module)
{
	nvfpy_state *st = nvfpy_state_mod(module);
	PyObject **p = (PyObject **)st;
	for (size_t i = 0; i < sizeof *st / sizeof(PyObject *); i++)
		Py_CLEAR(p[i]);
	return 0;
}

static void module_free(void *module)
{
	module_clear((PyObject *)module);
}

static PyModuleDef_Slot module_slots[] = {
	{Py_mod_exec, NVFPY_FN(module_exec)},
	{0, NULL},
};

PyModuleDef nvfpy_moduledef = {
	PyModuleDef_HEAD_INIT,
	.m_name = "nusterdb._core",
	.m_doc = "NusterDB: an embedded vector database in one .nvf file (libnvf).",
	.m_size = sizeof(nvfpy_state),
	.m_methods = module_methods,
	.m_slots = module_slots,
	.m_traverse = module_traverse,
	.m_clear = module_clear,
	.m_free = module_free,
};

PyMODINIT_FUNC PyInit__core(void);

PyMODINIT_FUNC PyInit__core(void)
{
	return PyModuleDef_Init(&nvfpy_moduledef);
}
