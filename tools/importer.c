/* Importing a file of records into a write transaction (importer.h): nvf-tool import
 * and nusterfs's /ingest/ share it, so both accept exactly the same files. */
#include "importer.h"
#include "vecfile.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((format(printf, 2, 3))) static int fail(char *err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, IMPORT_ERRLEN, fmt, ap);
	va_end(ap);
	return -1;
}

/* vecfile's messages name the path it opened; the caller may know the file by
 * another name (nusterfs reads a spool file for /ingest/NAME). */
static void relabel(char *err, const char *file, const char *label)
{
	size_t fl = strlen(file), ll = strlen(label);
	char *p = strstr(err, file);
	if (!p || fl == 0 || ll > fl + 256)
		return;
	char tail[IMPORT_ERRLEN];
	snprintf(tail, sizeof(tail), "%s", p + fl);
	snprintf(p, IMPORT_ERRLEN - (size_t)(p - err), "%s%s", label, tail);
}

bool import_is_jsonl(const char *file)
{
	size_t n = strlen(file);
	return (n >= 6 && strcmp(file + n - 6, ".jsonl") == 0) || (n >= 5 && strcmp(file + n - 5, ".ndjson") == 0);
}

/* The detail message is only replaced by the next failure that sets one, and some
 * -errno paths (I/O, memory) set none: for those it is trusted only if it names the
 * same OS error. */
const char *import_why(int rc)
{
	const char *m = nvf_errmsg(), *s = nvf_strerror(rc);
	if (!m || !*m)
		return s;
	if (rc < 0 && rc > -1000 && !strstr(m, s))
		return s;
	return m;
}

int import_check_record(const float *v, size_t dim, const nvf_info *info, const char *file, uint64_t rec, char *err)
{
	bool finite_only = !(info->flags & NVF_CREATE_ALLOW_NONFINITE);
	for (size_t i = 0; i < dim; i++) {
		if (finite_only && !isfinite(v[i]))
			return fail(err,
				    "%s: record %" PRIu64 ": component %zu is %s (the collection rejects non-finite "
				    "values; create it with --allow-nonfinite to allow them)",
				    file, rec, i, isnan(v[i]) ? "NaN" : "infinite");
		if (info->metric == NVF_METRIC_JACCARD && v[i] < 0)
			return fail(err,
				    "%s: record %" PRIu64 ": component %zu is negative (%g); jaccard needs "
				    "non-negative vectors",
				    file, rec, i, (double)v[i]);
	}
	return 0;
}

/* One line of a JSON-lines file at a time, with its number for messages. */
typedef struct lines {
	FILE *f;
	const char *name;
	char *buf;
	size_t cap;
	uint64_t no; /* 1-based number of the line last read */
} lines;

static int lines_open(lines *l, const char *path, const char *name, char *err)
{
	memset(l, 0, sizeof(*l));
	l->name = name;
	l->f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	if (!l->f)
		return fail(err, "%s: %s", name, strerror(errno));
	return 0;
}

/* The next line (without its newline) in *out: 1, 0 at the end, -1 on error. */
static int lines_next(lines *l, const char **out, char *err)
{
	errno = 0;
	ssize_t n = getline(&l->buf, &l->cap, l->f);
	if (n < 0) {
		if (ferror(l->f))
			return fail(err, "%s: line %" PRIu64 ": %s", l->name, l->no + 1, strerror(errno));
		return 0;
	}
	l->no++;
	while (n > 0 && (l->buf[n - 1] == '\n' || l->buf[n - 1] == '\r'))
		l->buf[--n] = 0;
	*out = l->buf;
	return 1;
}

static void lines_close(lines *l)
{
	if (l->f && l->f != stdin)
		fclose(l->f);
	free(l->buf);
}

/* The tags of a record (a JSON array of strings) set in txn. */
static int put_tags(nvf_db *db, nvf_txn *txn, uint64_t id, json_t *tags, const char *file, uint64_t line, char *err)
{
	if (!json_is_array(tags))
		return fail(err, "%s: line %" PRIu64 ": \"tags\" must be an array of strings", file, line);
	size_t n = json_array_size(tags);
	const char **v = malloc((n ? n : 1) * sizeof(*v));
	if (!v)
		return fail(err, "out of memory");
	for (size_t i = 0; i < n; i++) {
		v[i] = json_string_value(json_array_get(tags, i));
		if (!v[i]) {
			free(v);
			return fail(err, "%s: line %" PRIu64 ": tag %zu is not a string", file, line, i);
		}
	}
	int rc = nvf_tags_set(db, txn, id, v, n);
	free(v);
	if (rc != 0)
		return fail(err, "%s: line %" PRIu64 ": %s", file, line, import_why(rc));
	return 0;
}

/* A document given as a JSON value: stored unless null. */
static int put_meta(nvf_db *db, nvf_txn *txn, uint64_t id, json_t *meta, const char *file, uint64_t line, char *err)
{
	if (!meta || json_is_null(meta))
		return 0;
	char *text = json_dumps(meta, JSON_COMPACT | JSON_ENCODE_ANY);
	if (!text)
		return fail(err, "out of memory");
	int rc = nvf_meta_set(db, txn, id, text);
	free(text);
	if (rc != 0)
		return fail(err, "%s: line %" PRIu64 ": %s", file, line, import_why(rc));
	return 0;
}

/* A batch of .jsonl records, inserted together (the graph links a batch in parallel),
 * then their documents and tags. */
typedef struct jbatch {
	float *vecs;
	uint64_t *ids, *lineno;
	json_t **objs;
	size_t n, cap;
} jbatch;

static int jbatch_flush(nvf_db *db, nvf_txn *txn, const nvf_info *info, jbatch *b, bool with_ids, const char *file,
			import_result *res, char *err)
{
	if (b->n == 0)
		return 0;
	int rc = nvf_insert_batch(db, txn, b->vecs, b->n, info->dim, with_ids ? b->ids : NULL, b->ids);
	if (rc != 0)
		return fail(err, "%s: lines %" PRIu64 " to %" PRIu64 ": %s", file, b->lineno[0], b->lineno[b->n - 1],
			    import_why(rc));
	for (size_t i = 0; i < b->n; i++) {
		json_t *tags = json_object_get(b->objs[i], "tags");
		if (put_meta(db, txn, b->ids[i], json_object_get(b->objs[i], "meta"), file, b->lineno[i], err) != 0 ||
		    (tags && put_tags(db, txn, b->ids[i], tags, file, b->lineno[i], err) != 0))
			return -1;
		json_decref(b->objs[i]);
		b->objs[i] = NULL;
	}
	if (res->done == 0)
		res->first = b->ids[0];
	res->last = b->ids[b->n - 1];
	res->done += b->n;
	b->n = 0;
	return 0;
}

#define PROGRESS(pg, fn, ...)                    \
	do {                                     \
		if ((pg) && (pg)->fn)            \
			(pg)->fn((pg)->ctx, ##__VA_ARGS__); \
	} while (0)

/* A .jsonl file of records. */
static int import_jsonl(nvf_db *db, nvf_txn *txn, const nvf_info *info, const char *path, const char *file,
			size_t batch, const import_progress *pg, import_result *res, char *err)
{
	lines l;
	if (lines_open(&l, path, file, err) != 0)
		return -1;
	int ret = -1, r;
	const char *text;
	int with_ids = -1; /* every line has an id, or none does */
	jbatch b = {0};
	b.cap = batch ? batch : 4096;
	b.vecs = malloc(b.cap * info->dim * sizeof(float));
	b.ids = malloc(b.cap * sizeof(uint64_t));
	b.lineno = malloc(b.cap * sizeof(uint64_t));
	b.objs = calloc(b.cap, sizeof(json_t *));
	if (!b.vecs || !b.ids || !b.lineno || !b.objs) {
		fail(err, "out of memory for a batch of %zu records", b.cap);
		goto out;
	}
	PROGRESS(pg, start, 0);
	while ((r = lines_next(&l, &text, err)) == 1) {
		PROGRESS(pg, update, res->done + b.n);
		if (!*text)
			continue; /* blank lines separate nothing: skip them */
		json_error_t e;
		json_t *o = json_loads(text, JSON_REJECT_DUPLICATES, &e);
		if (!o) {
			fail(err, "%s: line %" PRIu64 ", column %d: %s", file, l.no, e.column, e.text);
			goto out;
		}
		b.objs[b.n] = o; /* owned by the batch from here */
		json_t *jid = json_object_get(o, "id"), *jv = json_object_get(o, "vector");
		const char *key;
		json_t *val;
		json_object_foreach(o, key, val) {
			if (strcmp(key, "id") && strcmp(key, "vector") && strcmp(key, "meta") && strcmp(key, "tags")) {
				fail(err, "%s: line %" PRIu64 ": unknown key \"%s\" (a record has id, vector, meta, tags)",
				     file, l.no, key);
				goto out;
			}
		}
		int has_id = jid != NULL;
		if (with_ids >= 0 && has_id != with_ids) {
			fail(err, "%s: line %" PRIu64 ": %s an \"id\", the lines before %s (give every record an id, or none)",
			     file, l.no, has_id ? "has" : "has no", with_ids ? "have one" : "do not");
			goto out;
		}
		with_ids = has_id;
		if (has_id && (!json_is_integer(jid) || json_integer_value(jid) < 0)) {
			fail(err, "%s: line %" PRIu64 ": \"id\" must be a non-negative integer", file, l.no);
			goto out;
		}
		if (!json_is_array(jv) || json_array_size(jv) != info->dim) {
			fail(err, "%s: line %" PRIu64 ": \"vector\" must be an array of %" PRIu32 " numbers%s", file, l.no,
			     info->dim, json_is_array(jv) ? " (the collection's dimension)" : "");
			goto out;
		}
		float *vec = b.vecs + b.n * info->dim;
		for (size_t i = 0; i < info->dim; i++) {
			json_t *x = json_array_get(jv, i);
			if (!json_is_number(x)) {
				fail(err, "%s: line %" PRIu64 ": vector component %zu is not a number", file, l.no, i);
				goto out;
			}
			vec[i] = (float)json_number_value(x);
		}
		if (import_check_record(vec, info->dim, info, file, l.no - 1, err) != 0)
			goto out;
		b.ids[b.n] = has_id ? (uint64_t)json_integer_value(jid) : 0;
		b.lineno[b.n] = l.no;
		if (++b.n == b.cap && jbatch_flush(db, txn, info, &b, with_ids == 1, file, res, err) != 0)
			goto out;
	}
	if (r == 0 && jbatch_flush(db, txn, info, &b, with_ids == 1, file, res, err) == 0)
		ret = 0;
	PROGRESS(pg, end);
out:
	for (size_t i = 0; b.objs && i <= b.n && i < b.cap; i++)
		json_decref(b.objs[i]);
	free(b.vecs);
	free(b.ids);
	free(b.lineno);
	free(b.objs);
	lines_close(&l);
	return ret;
}

/* A vector file, with an optional JSON-lines file of documents beside it. */
static int import_vectors(nvf_db *db, nvf_txn *txn, const nvf_info *info, const char *path, const char *file,
			  int format, size_t batch, const char *metafile, const import_progress *pg, import_result *res,
			  char *err)
{
	char verr[VECFILE_ERRLEN];
	vecfile *vf = NULL;
	float *vecs = NULL;
	uint64_t *ids = NULL;
	lines ml = {0};
	int ret = -1, rc;
	if (vecfile_open(&vf, path, format, verr) != 0) {
		fail(err, "%s", verr);
		relabel(err, path, file);
		return -1;
	}
	if (metafile && lines_open(&ml, metafile, metafile, err) != 0)
		goto out;
	size_t dim = vecfile_dim(vf);
	if (dim != 0 && dim != info->dim) {
		fail(err, "%s: record 0: dimension %zu, the collection has dimension %" PRIu32, file, dim, info->dim);
		goto out;
	}
	/* By default 10000 vectors a call, fewer where they are long (a batch buffer of
	 * at most 256 MiB); an explicit batch is taken as it is. */
	if (batch == 0) {
		batch = dim ? (256u << 20) / (dim * sizeof(float)) : 1;
		batch = batch < 1 ? 1 : batch > 10000 ? 10000 : batch;
	}
	if (dim != 0 && (!(vecs = malloc(batch * dim * sizeof(*vecs))) || !(ids = malloc(batch * sizeof(*ids))))) {
		fail(err, "out of memory for a batch of %zu vectors of dimension %zu", batch, dim);
		goto out;
	}
	int64_t total = vecfile_count(vf);
	PROGRESS(pg, start, total > 0 ? (uint64_t)total : 0);
	for (bool eof = dim == 0; !eof;) {
		PROGRESS(pg, update, res->done);
		size_t n = 0;
		while (n < batch) {
			uint64_t rec = vecfile_record(vf);
			int r = vecfile_read(vf, vecs + n * dim, verr);
			if (r < 0) {
				fail(err, "%s", verr);
				relabel(err, path, file);
				goto out;
			}
			if (r == 0) {
				eof = true;
				break;
			}
			if (import_check_record(vecs + n * dim, dim, info, file, rec, err) != 0)
				goto out;
			n++;
		}
		if (n == 0)
			break;
		if ((rc = nvf_insert_batch(db, txn, vecs, n, dim, NULL, ids)) != 0) {
			fail(err, "%s: records %" PRIu64 " to %" PRIu64 ": %s", file, res->done, res->done + n - 1,
			     import_why(rc));
			goto out;
		}
		for (size_t i = 0; metafile && i < n; i++) {
			const char *text;
			int r = lines_next(&ml, &text, err);
			if (r < 0)
				goto out;
			if (r == 0) {
				fail(err, "%s: %" PRIu64 " lines, %s has more vectors", metafile, ml.no, file);
				goto out;
			}
			if (strcmp(text, "null") != 0 && *text && (rc = nvf_meta_set(db, txn, ids[i], text)) != 0) {
				fail(err, "%s: line %" PRIu64 ": %s", metafile, ml.no, import_why(rc));
				goto out;
			}
		}
		if (res->done == 0)
			res->first = ids[0];
		res->last = ids[n - 1];
		res->done += n;
	}
	PROGRESS(pg, end);
	if (metafile) {
		const char *text;
		int r = lines_next(&ml, &text, err);
		if (r < 0)
			goto out;
		if (r == 1) {
			fail(err, "%s: line %" PRIu64 ": more documents than %s has vectors (%" PRIu64 ")", metafile, ml.no,
			     file, res->done);
			goto out;
		}
	}
	ret = 0;
out:
	if (metafile)
		lines_close(&ml);
	vecfile_close(vf);
	free(vecs);
	free(ids);
	return ret;
}

int import_file(nvf_db *db, nvf_txn *txn, const nvf_info *info, const char *file, const char *label, int format,
		size_t batch, const char *metafile, const import_progress *progress, import_result *res, char *err)
{
	memset(res, 0, sizeof(*res));
	if (!label)
		label = file;
	bool jsonl = format == IMPORT_JSONL || (format == VF_AUTO && import_is_jsonl(label));
	if (jsonl && metafile)
		return fail(err, "documents go with a vector file; a .jsonl file carries its documents itself");
	return jsonl ? import_jsonl(db, txn, info, file, label, batch, progress, res, err)
		     : import_vectors(db, txn, info, file, label, format, batch, metafile, progress, res, err);
}
