/*
 * db.c: nusterdb.NusterDB: paths, opening and creating, closing, the handle's
 * guard (calls in flight, one writer at a time), and the record calls. Searches
 * live in search.c, snapshots and maintenance in snapshot.c.
 *
 * Every call that reads or writes the file runs with the GIL released; Python
 * objects are converted to C data before, and results built after. Writes run in
 * an explicit write transaction (waiting up to the handle's timeout for the writer lock) that holds everything one call
 * changes, aborted on any error: after an exception the database is as it was.
 */
#include "nusterdb.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <structmember.h>

/* ---- the guard -------------------------------------------------------------------- */

int nvfpy_db_enter(DBObject *self)
{
	nvfpy_state *st = nvfpy_state_of(self);
	if (self->db == NULL) {
		nvfpy_raise_fmt(st, st->ClosedError, 0, "the database %R is closed", self->path);
		return -1;
	}
	if (self->exclusive) {
		nvfpy_raise_fmt(st, st->BusyError, NVF_EBUSY, "the database %R is being compacted by another thread",
				self->path);
		return -1;
	}
	self->inflight++;
	return 0;
}

void nvfpy_db_leave(DBObject *self)
{
	self->inflight--;
}

static double mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int nvfpy_db_retry(DBObject *self, int rc, double *start, unsigned *attempt, nvfpy_err *e)
{
	if (rc != NVF_ELOCKED)
		return 0;
	double now = mono_now();
	if (*start == 0)
		*start = now;
	if (self->timeout >= 0 && now - *start >= self->timeout) {
		/* libnvf's message speaks of C flags: say it in this API's terms. */
		snprintf(e->msg, sizeof e->msg,
			 "another process or handle holds the writer lock of the database (waited %.1f s: the timeout= "
			 "of NusterDB() or NusterDB.open() says how long a write waits; None waits as long as it takes)",
			 now - *start);
		return 0;
	}
	/* Polling: libnvf either waits for good or not at all, and a timeout is what
	 * users of sqlite3 and LMDB wrappers expect. */
	unsigned ms = *attempt < 6 ? 1u << *attempt : 50u;
	(*attempt)++;
	struct timespec ts = {0, (long)ms * 1000000L};
	nanosleep(&ts, NULL);
	return 1;
}

int nvfpy_db_wbegin(DBObject *self, nvf_txn **txn, nvfpy_err *e)
{
	int rc;
	double start = mono_now();
	unsigned attempt = 0;
	/* Threads of this process first (the handle has one writer at a time)... */
	PY_TIMEOUT_T us = self->timeout < 0 ? -1 : (PY_TIMEOUT_T)(self->timeout * 1e6);
	if (PyThread_acquire_lock_timed(self->wlock, us, 0) != PY_LOCK_ACQUIRED) {
		e->rc = NVF_ELOCKED;
		snprintf(e->msg, sizeof e->msg, "another thread of this process is writing through this handle (waited %.1f s, the handle's timeout)",
			 self->timeout);
		return NVF_ELOCKED;
	}
	/* ...then other processes, up to what is left of the timeout. */
	do
		rc = nvfpy_capture(e, nvf_txn_begin(txn, self->db, 0));
	while (nvfpy_db_retry(self, rc, &start, &attempt, e));
	if (rc < 0)
		PyThread_release_lock(self->wlock);
	return rc;
}

int nvfpy_db_wend(DBObject *self, nvf_txn *txn, int rc, nvfpy_err *e)
{
	if (rc < 0)
		nvf_txn_abort(txn);
	else
		rc = nvfpy_capture(e, nvf_txn_commit(txn));
	PyThread_release_lock(self->wlock);
	return rc;
}

int nvfpy_filter_in(nvfpy_state *st, PyObject *obj, nvf_filter **out)
{
	const char *s;
	int rc;
	*out = NULL;
	if (obj == NULL || obj == Py_None)
		return 0;
	if (!PyUnicode_Check(obj)) {
		PyErr_Format(PyExc_TypeError, "a filter is a str expression, not %.100s", Py_TYPE(obj)->tp_name);
		return -1;
	}
	s = PyUnicode_AsUTF8(obj);
	if (s == NULL)
		return -1;
	rc = nvf_filter_compile(out, s);
	if (rc < 0) {
		nvfpy_raise_fmt(st, rc == NVF_EINVAL ? st->FilterError : st->Error, rc, "%s", nvf_errmsg());
		return -1;
	}
	return 0;
}

/* ---- paths -------------------------------------------------------------------------- */

static int ends_with(const char *s, size_t n, const char *suffix)
{
	size_t m = strlen(suffix);
	return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

/* Whether a directory holds nothing but (maybe) what a database called db.nvf
 * leaves beside it. */
static int dir_is_free(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int ok = 1;
	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (strncmp(de->d_name, "db.nvf", 6) == 0)
			continue;
		ok = 0;
		break;
	}
	closedir(d);
	return ok;
}

PyObject *nvfpy_resolve_path(nvfpy_state *st, PyObject *path, int create, int *exists)
{
	PyObject *b = nvfpy_fspath_bytes(path), *file;
	const char *p;
	size_t n;
	struct stat sb;
	if (b == NULL)
		return NULL;
	if (PyBytes_GET_SIZE(b) == 0) {
		Py_DECREF(b);
		return nvfpy_raise_fmt(st, st->InvalidArgumentError, NVF_EINVAL, "the path is empty");
	}
	if (PyBytes_AS_STRING(b)[0] != '/') {
		/* absolute, so that db.path (and a pickle) do not depend on the cwd */
		char cwd[4096];
		PyObject *abs;
		if (getcwd(cwd, sizeof cwd) == NULL) {
			Py_DECREF(b);
			return PyErr_SetFromErrno(PyExc_OSError);
		}
		abs = PyBytes_FromFormat("%s/%s", cwd, PyBytes_AS_STRING(b));
		Py_DECREF(b);
		if (abs == NULL)
			return NULL;
		b = abs;
	}
	p = PyBytes_AS_STRING(b);
	n = (size_t)PyBytes_GET_SIZE(b);
	if (ends_with(p, n, ".nvf")) {
		*exists = stat(p, &sb) == 0;
		return b;
	}
	if (stat(p, &sb) == 0 && !S_ISDIR(sb.st_mode)) {
		*exists = 1;
		return b; /* nvf_db_open says NotADatabaseError if it is not one */
	}
	file = PyBytes_FromFormat("%s%sdb.nvf", p, ends_with(p, n, "/") ? "" : "/");
	if (file == NULL) {
		Py_DECREF(b);
		return NULL;
	}
	if (stat(PyBytes_AS_STRING(file), &sb) == 0) {
		*exists = 1;
	} else {
		int free_dir = access(p, F_OK) == 0 ? dir_is_free(p) : 1;
		*exists = 0;
		if (free_dir == 0) {
			nvfpy_raise_fmt(st, st->NotADatabaseError, NVF_ENOTDB,
					"%R is a directory of other files, not a NusterDB directory (one holding db.nvf)",
					path);
			goto error;
		}
		if (create && mkdir(p, 0777) < 0 && errno != EEXIST) {
			PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, path);
			goto error;
		}
	}
	Py_DECREF(b);
	return file;
error:
	Py_DECREF(b);
	Py_DECREF(file);
	return NULL;
}

/* ---- open, create, close ----------------------------------------------------------- */

static void read_ahead(const char *file, uint64_t mb)
{
	/* there is no block cache: ask the page cache to read the first mb MiB */
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	(void)posix_fadvise(fd, 0, (off_t)(mb << 20), POSIX_FADV_WILLNEED);
	close(fd);
}

static int open_handle(DBObject *self, const char *file, const char *snap, nvfpy_err *e)
{
	nvf_open_options oo = NVF_OPEN_OPTIONS_INIT;
	int rc;
	oo.flags = self->read_only ? NVF_OPEN_RDONLY : 0u; /* writes wait in nvfpy_db_wbegin, up to the timeout */
	oo.durability = self->durability;
	oo.snapshot = snap;
	rc = nvf_db_open(&self->db, file, &oo);
	return nvfpy_capture(e, rc);
}

/* timeout=: None (wait for good) or seconds >= 0; *out < 0 for None. */
static int timeout_in(nvfpy_state *st, PyObject *obj, double *out)
{
	if (obj == Py_None) {
		*out = -1;
		return 0;
	}
	double t = PyFloat_AsDouble(obj);
	if (t == -1 && PyErr_Occurred())
		return -1;
	if (!(t >= 0) || isinf(t)) {
		nvfpy_raise_fmt(st, st->InvalidArgumentError, NVF_EINVAL,
				"timeout = %R: seconds >= 0, or None to wait as long as it takes", obj);
		return -1;
	}
	*out = t;
	return 0;
}

static PyObject *db_make(nvfpy_state *st, PyTypeObject *tp, PyObject *path, PyObject *config, PyObject *dimobj,
			 int read_only, PyObject *snapshot, int may_create, double timeout)
{
	DBObject *self = NULL;
	PyObject *file = NULL, *defconf = NULL;
	nvfpy_dbconf conf;
	nvf_info info;
	nvfpy_err e = {0, ""};
	const char *snap = NULL;
	int exists = 0, rc, have_conf = 0;

	if (snapshot != Py_None) {
		if (!PyUnicode_Check(snapshot)) {
			PyErr_Format(PyExc_TypeError, "snapshot must be a str, not %.100s", Py_TYPE(snapshot)->tp_name);
			return NULL;
		}
		if ((snap = PyUnicode_AsUTF8(snapshot)) == NULL)
			return NULL;
		read_only = 1; /* a snapshot is read-only */
	}
	if (config == Py_None && dimobj != Py_None) {
		Py_ssize_t d = PyNumber_AsSsize_t(dimobj, PyExc_OverflowError);
		if (d == -1 && PyErr_Occurred())
			return NULL;
		config = defconf = nvfpy_config_default(st, d);
		if (config == NULL)
			return NULL;
	}
	if (config != Py_None) {
		if (nvfpy_config_read(st, config, &conf) < 0)
			goto error;
		have_conf = 1;
		if (dimobj != Py_None && defconf == NULL) {
			Py_ssize_t d = PyNumber_AsSsize_t(dimobj, PyExc_OverflowError);
			if (d == -1 && PyErr_Occurred())
				goto error;
			if ((uint32_t)d != conf.co.dim) {
				nvfpy_raise_fmt(st, st->InvalidArgumentError, NVF_EINVAL,
						"dim=%zd and config.dim=%u differ", d, conf.co.dim);
				goto error;
			}
		}
		if (conf.index != NVF_INDEX_FLAT && conf.index != NVF_INDEX_HNSW) {
			const char *names[] = {"Flat", "Hnsw", "IVF", "LSH", "Annoy"};
			nvfpy_raise_fmt(st, st->NotSupportedError, 0,
					"index type %s is not supported yet; use Flat or Hnsw", names[conf.index]);
			goto error;
		}
	}
	may_create = may_create && have_conf && !read_only;
	file = nvfpy_resolve_path(st, path, may_create, &exists);
	if (file == NULL)
		goto error;
	if (!exists && !may_create) {
		errno = ENOENT;
		PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, path);
		goto error;
	}
	self = (DBObject *)tp->tp_alloc(tp, 0);
	if (self == NULL)
		goto error;
	self->read_only = read_only;
	self->timeout = timeout;
	self->durability = have_conf ? conf.durability : NVF_DURABILITY_FULL;
	self->snapshot = Py_NewRef(snapshot);
	self->wlock = PyThread_allocate_lock();
	if (self->wlock == NULL) {
		PyErr_NoMemory();
		goto error;
	}
	{
		const char *f = PyBytes_AS_STRING(file);
		Py_BEGIN_ALLOW_THREADS
		if (exists) {
			rc = open_handle(self, f, snap, &e);
		} else {
			rc = nvfpy_capture(&e, nvf_db_create(&self->db, f, &conf.co));
			if (rc == NVF_EEXIST) /* made meanwhile by someone else */
				rc = open_handle(self, f, snap, &e);
		}
		if (rc >= 0)
			rc = nvfpy_capture(&e, nvf_db_info(self->db, NULL, &info));
		if (rc >= 0 && have_conf && conf.cache_size_mb > 0)
			read_ahead(f, conf.cache_size_mb);
		Py_END_ALLOW_THREADS
	}
	self->path = PyUnicode_DecodeFSDefault(PyBytes_AS_STRING(file));
	if (self->path == NULL)
		goto error;
	if (rc < 0) {
		if (rc == NVF_ENOTFOUND && snap == NULL) {
			errno = ENOENT;
			PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, path);
		} else {
			nvfpy_raise_err(st, &e, self->path);
		}
		goto error;
	}
	if (have_conf && exists && (info.dim != conf.co.dim || info.metric != conf.co.metric)) {
		nvfpy_raise_fmt(st, st->InvalidArgumentError, NVF_EINVAL,
				"%U holds a collection of dimension %u and metric %s; the config asks for dimension %u "
				"and metric %s",
				self->path, info.dim, nvf_metric_name(info.metric), conf.co.dim,
				nvf_metric_name(conf.co.metric));
		goto error;
	}
	self->dim = info.dim;
	self->metric = info.metric;
	self->index = info.index;
	self->config = nvfpy_config_from_info(st, &info, have_conf ? config : NULL, self->durability);
	if (self->config == NULL)
		goto error;
	Py_DECREF(file);
	Py_XDECREF(defconf);
	return (PyObject *)self;
error:
	Py_XDECREF(file);
	Py_XDECREF(defconf);
	Py_XDECREF(self); /* closes the handle */
	return NULL;
}

static PyObject *db_new(PyTypeObject *tp, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"path", "config", "dim", "read_only", "snapshot", "timeout", NULL};
	nvfpy_state *st = nvfpy_state_of_type(tp);
	PyObject *path, *config = Py_None, *dim = Py_None, *snapshot = Py_None, *to = NULL;
	int read_only = 0;
	double timeout = NVFPY_DEFAULT_TIMEOUT;
	if (st == NULL || !PyArg_ParseTupleAndKeywords(args, kw, "O|O$OpOO:NusterDB", kwlist, &path, &config, &dim,
						       &read_only, &snapshot, &to) ||
	    (to != NULL && timeout_in(st, to, &timeout) < 0))
		return NULL;
	return db_make(st, tp, path, config, dim, read_only, snapshot, 1, timeout);
}

static PyObject *db_open(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kw)
{
	static const char *const kwlist[] = {"path", "read_only", "snapshot", "timeout", NULL};
	nvfpy_state *st = nvfpy_state_mod(module);
	PyObject *path, *snapshot = Py_None, *to = NULL;
	int read_only = 0;
	double timeout = NVFPY_DEFAULT_TIMEOUT;
	if (!nvfpy_parse(args, nargs, kw, "O|$pOO:open", kwlist, &path, &read_only, &snapshot, &to) ||
	    (to != NULL && timeout_in(st, to, &timeout) < 0))
		return NULL;
	return db_make(st, st->NusterDB, path, Py_None, Py_None, read_only, snapshot, 0, timeout);
}

int nvfpy_db_reopen(DBObject *self, const char *file, nvfpy_err *e)
{
	/* without the GIL, the caller alone on the handle (exclusive) */
	nvf_db *old = self->db;
	int rc = nvfpy_capture(e, nvf_db_close(old));
	if (rc == NVF_EBUSY)
		return rc;
	self->db = NULL;
	return open_handle(self, file, NULL, e);
}

static PyObject *db_close(PyObject *op, PyObject *unused)
{
	DBObject *self = (DBObject *)op;
	nvfpy_state *st = nvfpy_state_of(op);
	nvfpy_err e = {0, ""};
	nvf_db *db = self->db;
	int rc;
	(void)unused;
	if (db == NULL)
		Py_RETURN_NONE;
	if (self->inflight > 0)
		return nvfpy_raise_fmt(st, st->BusyError, NVF_EBUSY,
				       "close(): %d call(s) on this handle are still running in other threads",
				       self->inflight);
	Py_BEGIN_ALLOW_THREADS
	rc = nvfpy_capture(&e, nvf_db_close(db));
	Py_END_ALLOW_THREADS
	if (rc == NVF_EBUSY)
		return nvfpy_raise_err(st, &e, self->path);
	self->db = NULL;
	if (rc < 0)
		return nvfpy_raise_err(st, &e, self->path);
	Py_RETURN_NONE;
}

static void db_dealloc(PyObject *op)
{
	DBObject *self = (DBObject *)op;
	PyTypeObject *tp = Py_TYPE(op);
	PyObject_GC_UnTrack(op);
	if (self->weakreflist != NULL)
		PyObject_ClearWeakRefs(op);
	if (self->db != NULL) {
		nvf_db *db = self->db;
		self->db = NULL;
		Py_BEGIN_ALLOW_THREADS
		(void)nvf_db_close(db);
		Py_END_ALLOW_THREADS
	}
	if (self->wlock != NULL)
		PyThread_free_lock(self->wlock);
	Py_CLEAR(self->path);
	Py_CLEAR(self->snapshot);
	Py_CLEAR(self->config);
	tp->tp_free(op);
	Py_DECREF(tp);
}

static int db_traverse(PyObject *op, visitproc visit, void *arg)
{
	DBObject *self = (DBObject *)op;
	Py_VISIT(self->config);
	Py_VISIT(Py_TYPE(op));
	return 0;
}

static PyObject *db_enter_cm(PyObject *op, PyObject *unused)
{
	DBObject *self = (DBObject *)op;
	nvfpy_state *st = nvfpy_state_of(op);
	(void)unused;
	if (self->db == NULL)
		return nvfpy_raise_fmt(st, st->ClosedError, 0, "the database %R is closed", self->path);
	return Py_NewRef(op);
}

static PyObject *db_exit_cm(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
	PyObject *r;
	(void)args;
	(void)nargs;
	r = db_close(op, NULL);
	if (r == NULL)
		return NULL;
	Py_DECREF(r);
	Py_RETURN_FALSE;
}

static PyObject *db_reduce(PyObject *op, PyObject *unused)
{
	DBObject *self = (DBObject *)op;
	PyObject *mod = PyType_GetModuleByDef(Py_TYPE(op), &nvfpy_moduledef), *fn;
	(void)unused;
	if (mod == NULL)
		return NULL;
	if (self->db == NULL) {
		nvfpy_state *st = nvfpy_state_of(op);
		return nvfpy_raise_fmt(st, st->ClosedError, 0, "the database %R is closed: nothing to pickle", self->path);
	}
	fn = nvfpy_getattr(mod, "_reopen");
	if (fn == NULL)
		return NULL;
	PyObject *to = self->timeout < 0 ? Py_NewRef(Py_None) : PyFloat_FromDouble(self->timeout);
	if (to == NULL) {
		Py_DECREF(fn);
		return NULL;
	}
	return Py_BuildValue("(N(OOON))", fn, self->path, self->read_only ? Py_True : Py_False, self->snapshot, to);
}

static PyObject *db_repr(PyObject *op)
{
	DBObject *self = (DBObject *)op;
	uint64_t n = 0;
	int rc;
	if (self->db == NULL)
		return PyUnicode_FromFormat("<NusterDB %R (closed)>", self->path);
	if (self->exclusive)
		return PyUnicode_FromFormat("<NusterDB %R (compacting)>", self->path);
	self->inflight++;
	Py_BEGIN_ALLOW_THREADS
	rc = nvf_count(self->db, NULL, &n);
	Py_END_ALLOW_THREADS
	self->inflight--;
	if (rc < 0)
		n = 0;
	return PyUnicode_FromFormat("<NusterDB %R dim=%u metric=%s index=%s count=%llu%s%s>", self->path,
				    (unsigned)self->dim, nvf_metric_name(self->metric),
				    self->index == NVF_INDEX_HNSW ? "hnsw" : "flat", (unsigned long long)n,
				    self->read_only ? " read_only" : "", self->snapshot != Py_None ? " snapshot" : "");
}

/* ---- records ------------------------------------------------------------------------- */

enum { W_ADD, W_INSERT, W_UPSERT, W_UPDATE, W_META };

static PyObject *record_write(DBObject *self, int op, uint64_t id, PyObject *vec, PyObject *meta, uint64_t *out_id)
{
	nvfpy_state *st = nvfpy_state_of(self);
	nvfpy_floats f = {NULL, 0, 0, NULL, {0}, 0};
	nvfpy_meta m = {NULL, NULL, 0, 0};
	nvfpy_err e = {0, ""};
	nvf_txn *txn = NULL;
	int rc;
	if (vec != NULL && nvfpy_vector_in(st, vec, &f) < 0)
		return NULL;
	if (meta != NULL && nvfpy_meta_in(st, meta, &m) < 0)
		goto error;
	if (nvfpy_db_enter(self) < 0)
		goto error;
	Py_BEGIN_ALLOW_THREADS
	rc = nvfpy_db_wbegin(self, &txn, &e);
	if (rc >= 0) {
		size_t dim = (size_t)f.cols;
		switch (op) {
		case W_ADD: rc = nvf_add(self->db, txn, id, f.data, dim); break;
		case W_INSERT: rc = nvf_insert(self->db, txn, f.data, dim, &id); break;
		case W_UPSERT: rc = nvf_upsert(self->db, txn, id, f.data, dim); break;
		case W_UPDATE: rc = nvf_update(self->db, txn, id, f.data, dim); break;
		default: rc = 0; break;
		}
		nvfpy_capture(&e, rc);
		if (rc >= 0 && m.given) {
			int replace = op == W_UPSERT || op == W_META;
			if (m.json != NULL || replace)
				rc = nvfpy_capture(&e, nvf_meta_set(self->db, txn, id, m.json));
			if (rc >= 0 && (m.ntags > 0 || replace))
				rc = nvfpy_capture(&e, nvf_tags_set(self->db, txn, id, (const char *const *)m.tags, m.ntags));
		}
		rc = nvfpy_db_wend(self, txn, rc, &e);
	}
	Py_END_ALLOW_THREADS
	nvfpy_db_leave(self);
	nvfpy_floats_release(&f);
	nvfpy_meta_release(&m);
	if (rc < 0)
		return nvfpy_raise_err(st, &e, NULL);
	if (out_id != NULL)
		*out_id = id;
	Py_RETURN_NONE;
error:
	nvfpy_floats_release(&f);
	nvfpy_meta_release(&m);
	return NULL;
}

static PyObject *db_add(PyObject *op, PyObject *const *args, Py_ssize_t nargs, PyObject *kw)
{
	static const char *const kwlist[] = {"id", "vector", "metadata", NULL};
	PyObject *ido, *vec, *meta = Py_None;
	uint64_t id;
	if (!nvfpy_parse(args, nargs, kw, "OO|O:add", kwlist, &ido, &vec, &meta) ||
	    nvfpy_id(nvfpy_state_of(op), ido, &id) < 0)
		return NULL;
	return record_write((DBObject *)op, W_ADD, id, vec, meta, NULL);
}

static PyObject *db_upsert(PyObject *op, PyObject *const *args, Py_ssize_t nargs, PyObject *kw)
{
	static const char *const kwlist[] = {"id", "vector", "metadata", NULL};
	PyObject *ido, *vec, *meta = Py_None;
	uint64_t id;
	if (!nvfpy_parse(args, nargs, kw, "OO|O:upsert", kwlist, &ido, &vec, &meta) ||
	    nvfpy_id(nvfpy_state_of(op), ido, &id) < 0)
		return NULL;
	return record_write((DBObject *)op, W_UPSERT, id, vec, meta, NULL);
}

static PyObject *db_insert(PyObject *op, PyObject *const *args, Py_ssize_t nargs, PyObject *kw)
{
	static const char *const kwlist[] = {"vector", "metadata", NULL};
	PyObject *vec, *meta = Py_None, *r;
	uint64_t id = 0;
	if (!nvfpy_parse(args, nargs, kw, "O|O:insert", kwlist, &vec, &meta))
		return NULL;
	r = record_write((DBObject *)op, W_INSERT, 0, vec, meta, &id);
	if (r == NULL)
		return NULL;
	Py_DECREF(r);
	return PyLong_FromUnsignedLongLong(id);
}

static PyObject *db_update(PyObject *op, PyObject *const *args, Py_ssize_t nargs, PyObject *kw)
{
	static const char *const kwlist[] = {"id", "vector", NULL};
	PyObject *ido, *vec;
	uint64_t id;
	if (!nvfpy_parse(args, nargs, kw, "OO:update", kwlist, &ido, &vec) || nvfpy_id(nvfpy_state_of(op), ido, &id) < 0)
		return NULL;
	return record_write((DBObject *)op, W_UPDATE, id, vec, NULL, NULL);
}

static PyObject *db_update_metadata(PyObject *op, PyObject *const *args, Py_ssize_t nargs, PyObject *kw)
{
	static const char *const kwlist[] = {"id", "metadata", NULL};
	nvfpy_state *st = nvfpy_state_of(op);
	PyObject *ido, *meta;
	uint64_t id;
	if (!nvfpy_parse(args, nargs, kw, "OO:update_metadata", kwlist, &ido, &meta) || nvfpy_id(st, ido, &id) < 0)
		return NULL;
	if (meta == Py_None) {
		PyErr_SetString(PyExc_TypeError, "metadata must be a Metadata or a dict, not None");
		return NULL;
	}
	return record_write((DBObject *)op, W_META, id, NULL, meta, NULL);
}

static PyObject *db_delete(PyObject *op, PyObject *const *args, Py_ssize_t nargs, PyObject *kw)
{
	static const char *const kwlist[] = {"id", NULL};
	DBObject *self = (DBObject *)op;
	nvfpy_state *st = nvfpy_state_of(op);
	PyObject *ido;
	nvfpy_err e = {0, ""};
	nvf_txn *txn;
	uint64_t id;
	int rc, missing = 0;
	if (!nvfpy_parse(args, nargs, kw, "O:delete", kwlist, &ido) || nvfpy_id(st, ido, &id) < 0 ||
	    nvfpy_db_enter(self) < 0)
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	rc = nvfpy_db_wbegin(self, &txn, &e);
	if (rc >= 0) {
		rc = nvfpy_capture(&e, nvf_delete(self->db, txn, id));
		missing = rc == NVF_ENOTFOUND;
		rc = nvfpy_db_wend(self, txn, rc, &e);
	}
	Py_END_ALLOW_THREADS
	nvfpy_db_leave(self);
	if (missing)
		Py_RETURN_FALSE;
	if (rc < 0)
		return nvfpy_raise_err(st, &e, NULL);
	Py_RETURN_TRUE;
}

/* The vector of id: None (missing_none) or NotFoundError if there is none. */
static PyObject *get_vector(DBObject *self, PyObject *ido, int missing_none)
{
	nvfpy_state *st = nvfpy_state_of(self);
	nvfpy_err e = {0, ""};
	uint64_t id;
	float *buf;
	int rc;
	if (nvfpy_id(st, ido, &id) < 0)
		return NULL;
	if (nvfpy_db_enter(self) < 0)
		return NULL;
	buf = PyMem_Malloc((size_t)self->dim * sizeof(float));
	if (buf == NULL) {
		nvfpy_db_leave(self);
		return PyErr_NoMemory();
	}
	Py_BEGIN_ALLOW_THREADS
	rc = nvfpy_capture(&e, nvf_get(self->db, NULL, id, buf, self->dim));
	Py_END_ALLOW_THREADS
	nvfpy_db_leave(self);
	if (rc < 0) {
		PyMem_Free(buf);
		if (rc == NVF_ENOTFOUND && missing_none)
			Py_RETURN_NONE;
		return nvfpy_raise_err(st, &e, NULL);
	}
	return nvfpy_vector_take(st, buf, (Py_ssize_t)self->dim);
}

static PyObject *db_get(PyObject *op, PyObject *const *args, Py_ssize_t nargs, PyObject *kw)
{
	static const char *const kwlist[] = {"id", NULL};
	PyObject *ido;
	if (!nvfpy_parse(args, nargs, kw, "O:get", kwlist, &ido))
		return NULL;
	return get_vector((DBObject *)op, ido, 1);
}

static PyObject *db_getitem(PyObject *op, PyObject *key)
{
	return get_vector((DBObject *)op, key, 0);
}

static PyObject *db_get_metadata(PyObject *op, PyObject *const *args, Py_ssize_t nargs, PyObject *kw)
{
	static const char *const kwlist[] = {"id", NULL};
	DBObject *self = (DBObject *)op;
	nvfpy_state *st = nvfpy_state_of(op);
	nvfpy_err e = {0, ""};
	PyObject *ido, *out;
	uint64_t id;
	char *json = NULL;
	int rc;
	if (!nvfpy_parse(args, nargs, kw, "O:get_metadata", kwlist, &ido) || nvfpy_id(st, ido, &id) < 0 ||
	    nvfpy_db_enter(self) < 0)
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	rc = nvfpy_capture(&e, nvf_record_json(self->db, NULL, id, 0, &json));
	Py_END_ALLOW_THREADS
	nvfpy_db_leave(self);
	if (rc == NVF_ENOTFOUND)
		Py_RETURN_NONE;
	if (rc < 0)
		return nvfpy_raise_err(st, &e, NULL);
	out = nvfpy_metadata_from_record(st, json);
	nvf_free(json);
	return out;
}

static int count_of(DBObject *self, uint64_t *n)
{
	nvfpy_state *st = nvfpy_state_of(self);
	nvfpy_err e = {0, ""};
	int rc;
	if (nvfpy_db_enter(self) < 0)
		return -1;
	Py_BEGIN_ALLOW_THREADS
	rc = nvfpy_capture(&e, nvf_count(self->db, NULL, n));
	Py_END_ALLOW_THREADS
	nvfpy_db_leave(self);
	if (rc < 0) {
		nvfpy_raise_err(st, &e, NULL);
		return -1;
	}
	return 0;
}

static PyObject *db_count(PyObject *op, PyObject *unused)
{
	uint64_t n;
	(void)unused;
	if (count_of((DBObject *)op, &n) < 0)
		return NULL;
	return PyLong_FromUnsignedLongLong(n);
}

static Py_ssize_t db_len(PyObject *op)
{
	uint64_t n;
	if (count_of((DBObject *)op, &n) < 0)
		return -1;
	return (Py_ssize_t)n;
}

static int db_contains(PyObject *op, PyObject *key)
{
	DBObject *self = (DBObject *)op;
	nvfpy_state *st = nvfpy_state_of(op);
	nvfpy_err e = {0, ""};
	uint64_t id;
	int rc;
	if (nvfpy_id(st, key, &id) < 0) {
		if (PyErr_ExceptionMatches(st->InvalidArgumentError)) {
			PyErr_Clear();
			return 0;
		}
		return -1;
	}
	if (nvfpy_db_enter(self) < 0)
		return -1;
	Py_BEGIN_ALLOW_THREADS
	rc = nvfpy_capture(&e, nvf_contains(self->db, NULL, id));
	Py_END_ALLOW_THREADS
	nvfpy_db_leave(self);
	if (rc < 0) {
		nvfpy_raise_err(st, &e, NULL);
		return -1;
	}
	return rc;
}

/* ---- attributes --------------------------------------------------------------------- */

static PyObject *g_path(PyObject *op, void *c) { (void)c; return Py_NewRef(((DBObject *)op)->path); }
static PyObject *g_dim(PyObject *op, void *c) { (void)c; return PyLong_FromUnsignedLong(((DBObject *)op)->dim); }
static PyObject *g_config(PyObject *op, void *c) { (void)c; return Py_NewRef(((DBObject *)op)->config); }
static PyObject *g_read_only(PyObject *op, void *c) { (void)c; return PyBool_FromLong(((DBObject *)op)->read_only); }
static PyObject *g_snapshot(PyObject *op, void *c) { (void)c; return Py_NewRef(((DBObject *)op)->snapshot); }
static PyObject *g_closed(PyObject *op, void *c) { (void)c; return PyBool_FromLong(((DBObject *)op)->db == NULL); }

/* The id insert() gives next: one past the largest id ever used (a sharded client
 * continues a sequence with it). */
static PyObject *g_next_id(PyObject *op, void *c)
{
	DBObject *self = (DBObject *)op;
	nvfpy_state *st = nvfpy_state_of(op);
	nvfpy_err e = {0, ""};
	nvf_info info;
	int rc;
	(void)c;
	if (nvfpy_db_enter(self) < 0)
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	rc = nvfpy_capture(&e, nvf_db_info(self->db, NULL, &info));
	Py_END_ALLOW_THREADS
	nvfpy_db_leave(self);
	if (rc < 0)
		return nvfpy_raise_err(st, &e, self->path);
	return PyLong_FromUnsignedLongLong(info.next_id);
}

static PyObject *g_metric(PyObject *op, void *c)
{
	(void)c;
	return nvfpy_enum_get(nvfpy_state_of(op)->DistanceMetric, ((DBObject *)op)->metric);
}

static PyObject *g_index(PyObject *op, void *c)
{
	(void)c;
	return nvfpy_enum_get(nvfpy_state_of(op)->IndexType, ((DBObject *)op)->index);
}

static PyGetSetDef db_getset[] = {
	{"path", g_path, NULL, "The database file.", NULL},
	{"dimension", g_dim, NULL, "The collection's dimension.", NULL},
	{"dim", g_dim, NULL, "The collection's dimension.", NULL},
	{"distance_metric", g_metric, NULL, "The collection's metric.", NULL},
	{"index_type", g_index, NULL, "The collection's index.", NULL},
	{"config", g_config, NULL, "The DatabaseConfig the collection has.", NULL},
	{"read_only", g_read_only, NULL, "Whether the handle is read-only.", NULL},
	{"snapshot_name", g_snapshot, NULL, "The snapshot the handle reads, or None.", NULL},
	{"closed", g_closed, NULL, "Whether close() was called.", NULL},
	{"next_id", g_next_id, NULL, "The id insert() assigns next: one past the largest id ever used.", NULL},
	{NULL, NULL, NULL, NULL, NULL},
};

#define KW(name, fn, doc) {name, NVFPY_FASTKW(fn), METH_FASTCALL | METH_KEYWORDS, doc}

/* Docstrings start with a text signature ("name($self, ...)\n--\n\n", as Argument
 * Clinic writes them): help() and inspect.signature() show the arguments, and
 * mypy.stubtest checks the stubs against them. */
#define SIG(sig, doc) sig "\n--\n\n" doc

static PyMethodDef db_methods[] = {
	KW("add", db_add, SIG("add($self, /, id, vector, metadata=None)",
			      "Add a record under id (an int, 0 to 2**64 - 2). vector: a Vector, a list of numbers or a\n"
			      "float buffer; metadata: a Metadata or a dict. ExistsError if the id exists.")),
	KW("insert", db_insert, SIG("insert($self, /, vector, metadata=None)",
				    "Add a record under a new id (one past the largest ever used) and return it.")),
	KW("batch_insert", nvfpy_db_batch_insert,
	   SIG("batch_insert($self, /, vectors, metadata_list=None)",
	       "Add one record per vector (a list of vectors or a 2-D buffer) in one transaction, with\n"
	       "metadata_list[i] (None, or one Metadata or dict per vector); return their new ids.")),
	KW("upsert", db_upsert, SIG("upsert($self, /, id, vector, metadata=None)",
				    "Add the record, or replace its vector; metadata None keeps its document and tags.")),
	KW("get", db_get, SIG("get($self, /, id)", "The record's Vector, or None if there is no such record (as dict.get).")),
	KW("get_metadata", db_get_metadata, SIG("get_metadata($self, /, id)",
						"The record's Metadata (document, tags, times, version), or None.")),
	KW("update", db_update, SIG("update($self, /, id, vector)", "Replace the record's vector; NotFoundError if missing.")),
	KW("update_metadata", db_update_metadata,
	   SIG("update_metadata($self, /, id, metadata)",
	       "Replace the record's document and tags; NotFoundError if missing.")),
	KW("delete", db_delete, SIG("delete($self, /, id)", "Delete the record: True if it was deleted, False if it did not exist.")),
	{"count", db_count, METH_NOARGS, SIG("count($self, /)", "The number of live records.")},
	KW("search", nvfpy_db_search,
	   SIG("search($self, /, query, k=10, ef_search=None, filter=None)",
	       "The k nearest records as [(id, distance), ...], nearest first. ef_search: the HNSW beam\n"
	       "(None: the collection's default); filter: an expression of docs/FILTER.md over the\n"
	       "documents. k larger than the count returns every record.")),
	KW("range_search", nvfpy_db_range_search,
	   SIG("range_search($self, /, query, radius, filter=None)",
	       "Every record within radius of the query (distance <= radius), nearest first.")),
	KW("add_items", nvfpy_db_add_items,
	   SIG("add_items($self, /, X, ids=None, metadata=None, threads=0)",
	       "hnswlib's batch insert: X a (n, dim) or (dim,) buffer (C-contiguous float32 is read in\n"
	       "place), ids a buffer of n ints (None: new ids), metadata one dict or Metadata per row;\n"
	       "one transaction, the GIL released, threads=0 every core. Returns the ids (int64 array).")),
	KW("knn", nvfpy_db_knn,
	   SIG("knn($self, /, Q, k=1, ef=None, filter=None, threads=0)",
	       "hnswlib's batch search: Q a (nq, dim) or (dim,) buffer; returns (ids, distances), two\n"
	       "(nq, k) arrays of int64 and float32, padded with -1 / inf only where fewer than k\n"
	       "records exist (or pass the filter). The GIL is released; threads=0 every core.")),
	KW("knn_query", nvfpy_db_knn_query,
	   SIG("knn_query($self, /, Q, k=1, num_threads=-1, filter=None)", "knn in hnswlib's spelling.")),
	KW("create_snapshot", nvfpy_db_create_snapshot,
	   SIG("create_snapshot($self, /, name=None)", "Name the current state (no copy); returns the name (generated if None).")),
	KW("snapshot", nvfpy_db_snapshot,
	   SIG("snapshot($self, /, name, metadata=None)",
	       "create_snapshot with a document describing the snapshot (a dict or Metadata).")),
	{"list_snapshots", nvfpy_db_list_snapshots, METH_NOARGS, SIG("list_snapshots($self, /)", "The snapshots' names, oldest first.")},
	{"snapshots", nvfpy_db_snapshots, METH_NOARGS,
	 SIG("snapshots($self, /)", "The snapshots as dicts: name, txnid, created_at, records, metadata, bytes_held.")},
	KW("delete_snapshot", nvfpy_db_delete_snapshot,
	   SIG("delete_snapshot($self, /, name)", "Delete a snapshot; NotFoundError for an unknown name.")),
	KW("restore_snapshot", nvfpy_db_restore_snapshot,
	   SIG("restore_snapshot($self, /, name)", "Make the snapshot's state the current one, in one commit.")),
	KW("diff", nvfpy_db_diff,
	   SIG("diff($self, /, from_snapshot, to_snapshot=None)",
	       "The ids added, removed, vector_changed and doc_changed between two states (None: the\n"
	       "current one).")),
	KW("compact", nvfpy_db_compact,
	   SIG("compact($self, /, retrain_dict=False)",
	       "Rewrite the file without free space (records laid out for locality) and replace it\n"
	       "atomically; the handle moves to the new file.")),
	KW("backup", nvfpy_db_backup,
	   SIG("backup($self, /, dest)", "Copy a consistent committed state to dest (a new file) while writers go on.")),
	KW("stats", nvfpy_db_stats, SIG("stats($self, /, detailed=False)", "A DatabaseStats (detailed: page accounting and graph shape).")),
	{"sync", nvfpy_db_sync, METH_NOARGS, SIG("sync($self, /)", "Make every commit durable.")},
	{"close", db_close, METH_NOARGS,
	 SIG("close($self, /)", "Close the handle (idempotent; BusyError while other threads use it).")},
	{"__enter__", db_enter_cm, METH_NOARGS, NULL},
	{"__exit__", (PyCFunction)(void (*)(void))db_exit_cm, METH_FASTCALL, NULL},
	{"__reduce__", db_reduce, METH_NOARGS, NULL},
	{NULL, NULL, 0, NULL},
};

static PyMethodDef db_static_methods[] = {
	KW("open", db_open, SIG("open(path, *, read_only=False, snapshot=None, timeout=5.0)",
				"Open an existing database (never creates: FileNotFoundError). snapshot: a named\n"
				"snapshot, read-only; timeout: seconds a write waits for the writer lock.")),
	{NULL, NULL, 0, NULL},
};

int nvfpy_db_setup(PyObject *module, nvfpy_state *st)
{
	return nvfpy_add_static(module, st->NusterDB, db_static_methods);
}

static PyMemberDef db_members[] = {
	{"__weaklistoffset__", T_PYSSIZET, offsetof(DBObject, weakreflist), READONLY, NULL},
	{NULL, 0, 0, 0, NULL},
};

static PyType_Slot db_slots[] = {
	{Py_tp_doc, (void *)SIG("NusterDB(path, config=None, *, dim=None, read_only=False, snapshot=None, timeout=5.0)",
				"A database: one .nvf file (docs/PYTHON.md). Opens the database at path, or creates it\n"
				"from config (or dim=). A path without .nvf names a directory holding db.nvf.")},
	{Py_tp_new, NVFPY_FN(db_new)},
	{Py_tp_dealloc, NVFPY_FN(db_dealloc)},
	{Py_tp_traverse, NVFPY_FN(db_traverse)},
	{Py_tp_repr, NVFPY_FN(db_repr)},
	{Py_tp_methods, db_methods},
	{Py_tp_getset, db_getset},
	{Py_tp_members, db_members},
	{Py_mp_length, NVFPY_FN(db_len)},
	{Py_mp_subscript, NVFPY_FN(db_getitem)},
	{Py_sq_length, NVFPY_FN(db_len)},
	{Py_sq_contains, NVFPY_FN(db_contains)},
	{0, NULL},
};

PyType_Spec nvfpy_db_spec = {
	.name = "nusterdb.NusterDB",
	.basicsize = sizeof(DBObject),
	.flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
	.slots = db_slots,
};
