/*
 * nusterdb: the CPython extension module nusterdb._core over libnvf.
 *
 * The one internal header of the module: its state (types, exceptions, cached
 * objects), the object layouts that several files share, and the helpers each file
 * offers the others. Only nvf.h is included from libnvf.
 */
#ifndef NUSTERDB_PY_H
#define NUSTERDB_PY_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#include <nvf.h>

/* ---- module state ------------------------------------------------------- */

typedef struct nvfpy_state {
	/* types */
	PyTypeObject *Vector;
	PyTypeObject *DistanceMetric;
	PyTypeObject *IndexType;
	PyTypeObject *Compression;
	PyTypeObject *Metadata;
	PyTypeObject *HNSWConfig;
	PyTypeObject *FlatIndexConfig;
	PyTypeObject *StorageConfiguration;
	PyTypeObject *DatabaseConfig;
	PyTypeObject *DatabaseStats;
	PyTypeObject *NusterDB;
	PyTypeObject *ResultArray;
	/* exceptions */
	PyObject *Error;
	PyObject *InvalidArgumentError;
	PyObject *FilterError;
	PyObject *NotFoundError;
	PyObject *ExistsError;
	PyObject *ReadOnlyError;
	PyObject *LockedError;
	PyObject *CorruptError;
	PyObject *VersionError;
	PyObject *NotADatabaseError;
	PyObject *FullError;
	PyObject *StaleError;
	PyObject *BusyError;
	PyObject *TransactionError;
	PyObject *ClosedError;
	PyObject *NotSupportedError;
	PyObject *StorageError;
	/* numpy, imported at first use: NULL = not tried, Py_None = not available */
	PyObject *numpy_asarray;
} nvfpy_state;

extern PyModuleDef nvfpy_moduledef;

/** The module state of a type defined by this module (or a subclass of one). */
nvfpy_state *nvfpy_state_of_type(PyTypeObject *tp);
/** The module state of an instance of one of the module's types. */
#define nvfpy_state_of(obj) nvfpy_state_of_type(Py_TYPE(obj))
/** The module state given the module object. */
#define nvfpy_state_mod(mod) ((nvfpy_state *)PyModule_GetState(mod))

/** getattr / setattr by an interned name: the type attribute cache keeps the name
 * it is asked with, and a fresh string per call would fill it with copies. */
PyObject *nvfpy_getattr(PyObject *obj, const char *name);
int nvfpy_setattr(PyObject *obj, const char *name, PyObject *value);

/* ---- errors (module.c) --------------------------------------------------- */

/** A libnvf failure captured where it happened (nvf_errmsg() is per thread and
 * must be read before another call can overwrite it; it is copied inside the
 * section that released the GIL). */
typedef struct nvfpy_err {
	int rc;
	char msg[512];
} nvfpy_err;

/** Record rc (if negative) and the calling thread's detail message. Safe without
 * the GIL. Returns rc. */
int nvfpy_capture(nvfpy_err *e, int rc);

/** Raise the exception of docs/PYTHON.md for a captured failure; filename may be
 * NULL. Returns NULL. */
PyObject *nvfpy_raise_err(nvfpy_state *st, const nvfpy_err *e, PyObject *filename);
/** The same for rc and nvf_errmsg() right now (the GIL held throughout). */
PyObject *nvfpy_raise(nvfpy_state *st, int rc, PyObject *filename);
/** Raise exc (one of the state's exception classes) with a formatted message and
 * code (0: the class's code stays None). Returns NULL. */
PyObject *nvfpy_raise_fmt(nvfpy_state *st, PyObject *exc, int code, const char *fmt, ...);

/* ---- arguments and conversions (convert.c) ---------------------------------- */

/** Parse METH_FASTCALL | METH_KEYWORDS arguments with a PyArg_ParseTupleAndKeywords
 * format: the one place where arguments are parsed. */
int nvfpy_parse(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, const char *fmt,
		const char *const *kwlist, ...);

/** A record id (0 to 2^64 - 2) from a Python int. */
int nvfpy_id(nvfpy_state *st, PyObject *obj, uint64_t *out);

/** Floats borrowed from an object or converted into a private copy. */
typedef struct nvfpy_floats {
	const float *data;
	Py_ssize_t rows, cols; /* a vector is 1 x cols */
	float *owned;          /* freed by nvfpy_floats_release */
	Py_buffer view;        /* held while data points into it */
	int has_view;
} nvfpy_floats;

/** One vector: a Vector, a float buffer (1-D, or 1 x n) or an iterable of numbers. */
int nvfpy_vector_in(nvfpy_state *st, PyObject *obj, nvfpy_floats *out);
/** A matrix (n, dim) or one vector (dim,): a buffer of any numeric format read in
 * place when it is C-contiguous float32, else converted; or a sequence of vectors. */
int nvfpy_matrix_in(nvfpy_state *st, PyObject *obj, nvfpy_floats *out);
void nvfpy_floats_release(nvfpy_floats *f);

/** n ids from a buffer of integers or a sequence of ints (malloc'd). */
int nvfpy_ids_in(nvfpy_state *st, PyObject *obj, uint64_t **out, Py_ssize_t *n);

/** Encode a Python value as compact JSON text (malloc'd, free with free()).
 * TypeError naming the key path for anything that is not JSON data. what names the
 * root in messages ("metadata"). */
char *nvfpy_json_encode(PyObject *obj, const char *what);
/** Decode JSON text into Python objects; "null" gives None. */
PyObject *nvfpy_json_decode(const char *text);

/** A filesystem path object (str, bytes, os.PathLike) as bytes. */
PyObject *nvfpy_fspath_bytes(PyObject *obj);

/* ---- Vector (vector.c) ----------------------------------------------------- */

typedef struct VectorObject {
	PyObject_HEAD
	float *data;
	Py_ssize_t dim;
} VectorObject;

extern PyType_Spec nvfpy_vector_spec;
/** A new Vector owning data (PyMem_Malloc'd; freed on failure too). */
PyObject *nvfpy_vector_take(nvfpy_state *st, float *data, Py_ssize_t dim);
int nvfpy_vector_setup(PyObject *module, nvfpy_state *st);
/** Static methods on tp whose C functions receive the module (and so its state). */
int nvfpy_add_static(PyObject *module, PyTypeObject *tp, PyMethodDef *defs);

/* ---- enumerations (enums.c, metric.c) -------------------------------------- */

typedef struct nvfpy_enum_item {
	const char *attr;  /* class attribute: "Hnsw" */
	const char *name;  /* its name: "hnsw" */
	int value;
} nvfpy_enum_item;

typedef struct EnumObject {
	PyObject_HEAD
	int value;
	const nvfpy_enum_item *item;
} EnumObject;

extern const nvfpy_enum_item nvfpy_index_items[];
extern const nvfpy_enum_item nvfpy_compression_items[];
extern const nvfpy_enum_item nvfpy_metric_items[];
extern PyType_Spec nvfpy_index_type_spec;
extern PyType_Spec nvfpy_compression_spec;
extern PyType_Spec nvfpy_metric_spec;

/** Create the class attributes (one instance per item, aliases: pairs of alias
 * and attribute, NULL-terminated). */
int nvfpy_enum_setup(PyTypeObject *tp, const nvfpy_enum_item *items, const char *const *aliases);
int nvfpy_enums_setup(nvfpy_state *st);
int nvfpy_metric_setup(PyObject *module, nvfpy_state *st);

/** The instance of value (a new reference). */
PyObject *nvfpy_enum_get(PyTypeObject *tp, int value);
/** An instance, or its name in any case, to the enum's value. */
int nvfpy_enum_from(nvfpy_state *st, PyTypeObject *tp, PyObject *obj, int *out);
/** The shared slot functions. */
PyObject *nvfpy_enum_richcompare(PyObject *a, PyObject *b, int op);
Py_hash_t nvfpy_enum_hash(PyObject *self);
PyObject *nvfpy_enum_str(PyObject *self);
PyObject *nvfpy_enum_repr(PyObject *self);
PyObject *nvfpy_enum_reduce(PyObject *self, PyObject *unused);
extern PyGetSetDef nvfpy_enum_getset[];

#define NVFPY_INDEX_IVF 2
#define NVFPY_INDEX_LSH 3
#define NVFPY_INDEX_ANNOY 4

/* ---- Metadata (metadata.c) --------------------------------------------------- */

typedef struct MetadataObject {
	PyObject_HEAD
	PyObject *data; /* dict */
	PyObject *tags; /* set of str */
	int64_t created_us, updated_us;
	uint64_t version;
} MetadataObject;

extern PyType_Spec nvfpy_metadata_spec;
int nvfpy_metadata_setup(PyObject *module, nvfpy_state *st);

/** What a write stores of a Metadata or dict: the document and the tags. */
typedef struct nvfpy_meta {
	char *json;      /* NULL: no document */
	char **tags;     /* ntags strings, malloc'd */
	size_t ntags;
	int given;       /* metadata was not None */
} nvfpy_meta;

int nvfpy_meta_in(nvfpy_state *st, PyObject *obj, nvfpy_meta *out);
void nvfpy_meta_release(nvfpy_meta *m);
/** A Metadata from nvf_record_json()'s object text. */
PyObject *nvfpy_metadata_from_record(nvfpy_state *st, const char *record_json);

/* ---- configuration (config.c) -------------------------------------------- */

/** Name the record types' members from their field tables (before the types). */
void nvfpy_config_names(void);
extern PyType_Spec nvfpy_hnsw_config_spec;
extern PyType_Spec nvfpy_flat_config_spec;
extern PyType_Spec nvfpy_storage_config_spec;
extern PyType_Spec nvfpy_database_config_spec;
extern PyType_Spec nvfpy_stats_spec;

/** What opening or creating a database takes from a DatabaseConfig. */
typedef struct nvfpy_dbconf {
	nvf_create_options co;
	int index;               /* may be NVFPY_INDEX_IVF.. (not supported) */
	uint64_t cache_size_mb;
	int durability;
} nvfpy_dbconf;

/** Read a DatabaseConfig (conf must be one). */
int nvfpy_config_read(nvfpy_state *st, PyObject *conf, nvfpy_dbconf *out);
/** A DatabaseConfig describing an open database (info), keeping the options the
 * file does not store from given (a DatabaseConfig or NULL). */
PyObject *nvfpy_config_from_info(nvfpy_state *st, const nvf_info *info, PyObject *given, int durability);
/** A DatabaseConfig with dim and every default. */
PyObject *nvfpy_config_default(nvfpy_state *st, Py_ssize_t dim);
/** A DatabaseStats from keyword values (a dict). */
PyObject *nvfpy_stats_new(nvfpy_state *st, PyObject *values);

/* ---- NusterDB (db.c, search.c, snapshot.c) ----------------------------------- */

typedef struct DBObject {
	PyObject_HEAD
	nvf_db *db;            /* NULL once closed */
	PyObject *path;        /* str: the database file */
	PyObject *snapshot;    /* str or None */
	PyObject *config;      /* DatabaseConfig */
	int read_only;
	int durability;
	/* Seconds a write waits for another process's writer lock (or this handle's,
	 * held by another thread) before LockedError; < 0: forever. */
	double timeout;
	uint32_t dim;
	int metric, index;
	/* Calls in progress with the GIL released (counted with the GIL held): close()
	 * refuses while there are any, and compaction, which reopens the handle, runs
	 * only alone (exclusive). */
	int inflight;
	int exclusive;
	/* One writer of this handle at a time: write calls take it with the GIL
	 * released, then begin their write transaction (waiting for other handles). */
	PyThread_type_lock wlock;
	PyObject *weakreflist;
} DBObject;

extern PyType_Spec nvfpy_db_spec;
extern PyType_Spec nvfpy_result_spec;

/** Enter a call: ClosedError after close, BusyError during a compaction. */
int nvfpy_db_enter(DBObject *self);
void nvfpy_db_leave(DBObject *self);
/** Begin a write transaction (takes the handle's writer lock first; without the
 * GIL: call it between Py_BEGIN/END_ALLOW_THREADS). */
int nvfpy_db_wbegin(DBObject *self, nvf_txn **txn, nvfpy_err *e);
/** Commit (or abort if rc < 0) and release the writer lock; returns the result.
 * Without the GIL. */
int nvfpy_db_wend(DBObject *self, nvf_txn *txn, int rc, nvfpy_err *e);
/** For a libnvf call that takes the writer lock itself (restore, compact): after it
 * returned rc, whether to call it again. On NVF_ELOCKED it sleeps a little (1 ms,
 * doubling to 50 ms) and says yes until the handle's timeout has passed since
 * *start (0: set now); then it adds how long it waited to e's message. Without the
 * GIL. */
#define NVFPY_DEFAULT_TIMEOUT 5.0 /* seconds, as Python's sqlite3.connect */
int nvfpy_db_retry(DBObject *self, int rc, double *start, unsigned *attempt, nvfpy_err *e);
/** Compile a filter expression (None: *out = NULL); FilterError for bad syntax. */
int nvfpy_filter_in(nvfpy_state *st, PyObject *obj, nvf_filter **out);
/** Open the handle again on file (after a compaction); without the GIL, alone on
 * the handle. On failure the handle is closed (self->db NULL). */
int nvfpy_db_reopen(DBObject *self, const char *file, nvfpy_err *e);
int nvfpy_db_setup(PyObject *module, nvfpy_state *st);
/** Resolve a path argument per docs/PYTHON.md: the file's path as bytes; create:
 * make the directory when a directory path is missing. */
PyObject *nvfpy_resolve_path(nvfpy_state *st, PyObject *path, int create, int *exists);

/* methods living in search.c and snapshot.c */
PyObject *nvfpy_db_search(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw);
PyObject *nvfpy_db_range_search(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw);
PyObject *nvfpy_db_knn(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw);
PyObject *nvfpy_db_knn_query(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw);
PyObject *nvfpy_db_add_items(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw);
PyObject *nvfpy_db_batch_insert(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw);
PyObject *nvfpy_db_create_snapshot(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw);
PyObject *nvfpy_db_snapshot(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw);
PyObject *nvfpy_db_list_snapshots(PyObject *self, PyObject *unused);
PyObject *nvfpy_db_snapshots(PyObject *self, PyObject *unused);
PyObject *nvfpy_db_delete_snapshot(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw);
PyObject *nvfpy_db_restore_snapshot(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw);
PyObject *nvfpy_db_diff(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw);
PyObject *nvfpy_db_compact(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw);
PyObject *nvfpy_db_backup(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw);
PyObject *nvfpy_db_stats(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kw);
PyObject *nvfpy_db_sync(PyObject *self, PyObject *unused);

/** A result array over malloc'd memory (takes data), through numpy if available. */
PyObject *nvfpy_result_array(nvfpy_state *st, void *data, char format, Py_ssize_t rows, Py_ssize_t cols, int ndim);

/** A function as a PyType_Slot's void * (through an integer: ISO C has no direct
 * conversion between function and object pointers). */
#define NVFPY_FN(f) ((void *)(uintptr_t)(f))

/** Cast a fastcall-with-keywords function for a PyMethodDef. */
#define NVFPY_FASTKW(f) ((PyCFunction)(void (*)(void))(f))

#endif /* NUSTERDB_PY_H */
