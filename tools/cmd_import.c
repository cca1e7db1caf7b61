/* nvf-tool import: every record of a file, all or nothing, in one transaction.
 *  - vector files (.fvecs, .bvecs, .npy, IDX), ids assigned in file order, and with
 *    --meta FILE.jsonl one document per vector (line i for record i);
 *  - .jsonl records: {"id": 7, "vector": [...], "meta": {...}, "tags": [...]}, id
 *    optional (then assigned), meta and tags optional. */
#include "tool.h"
#include "vecfile.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* One line of a JSON-lines file at a time, with its number for messages. */
typedef struct lines {
	FILE *f;
	const char *name;
	char *buf;
	size_t cap;
	uint64_t no; /* 1-based number of the line last read */
} lines;

static int lines_open(lines *l, const char *name)
{
	memset(l, 0, sizeof(*l));
	l->name = name;
	l->f = strcmp(name, "-") == 0 ? stdin : fopen(name, "r");
	if (!l->f)
		return error("%s: %s", name, strerror(errno));
	return 0;
}

/* The next line (without its newline) in *out: 1, 0 at the end, -1 on error. */
static int lines_next(lines *l, const char **out)
{
	errno = 0;
	ssize_t n = getline(&l->buf, &l->cap, l->f);
	if (n < 0) {
		if (ferror(l->f))
			return error("%s: line %" PRIu64 ": %s", l->name, l->no + 1, strerror(errno)), -1;
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
static int put_tags(nvf_db *db, nvf_txn *txn, uint64_t id, json_t *tags, const char *file, uint64_t line)
{
	if (!json_is_array(tags))
		return error("%s: line %" PRIu64 ": \"tags\" must be an array of strings", file, line);
	size_t n = json_array_size(tags);
	const char **v = malloc((n ? n : 1) * sizeof(*v));
	if (!v)
		return error("out of memory");
	for (size_t i = 0; i < n; i++) {
		v[i] = json_string_value(json_array_get(tags, i));
		if (!v[i]) {
			free(v);
			return error("%s: line %" PRIu64 ": tag %zu is not a string", file, line, i);
		}
	}
	int rc = nvf_tags_set(db, txn, id, v, n);
	free(v);
	if (rc != 0)
		return error("%s: line %" PRIu64 ": %s", file, line, why(rc));
	return 0;
}

/* A document given as a JSON value: stored unless null. */
static int put_meta(nvf_db *db, nvf_txn *txn, uint64_t id, json_t *meta, const char *file, uint64_t line)
{
	if (!meta || json_is_null(meta))
		return 0;
	char *text = json_dumps(meta, JSON_COMPACT | JSON_ENCODE_ANY);
	if (!text)
		return error("out of memory");
	int rc = nvf_meta_set(db, txn, id, text);
	free(text);
	if (rc != 0)
		return error("%s: line %" PRIu64 ": %s", file, line, why(rc));
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
			uint64_t *done, uint64_t *first, uint64_t *last)
{
	if (b->n == 0)
		return 0;
	int rc = nvf_insert_batch(db, txn, b->vecs, b->n, info->dim, with_ids ? b->ids : NULL, b->ids);
	if (rc != 0)
		return error("%s: lines %" PRIu64 " to %" PRIu64 ": %s", file, b->lineno[0], b->lineno[b->n - 1], why(rc));
	for (size_t i = 0; i < b->n; i++) {
		json_t *tags = json_object_get(b->objs[i], "tags");
		if (put_meta(db, txn, b->ids[i], json_object_get(b->objs[i], "meta"), file, b->lineno[i]) != 0 ||
		    (tags && put_tags(db, txn, b->ids[i], tags, file, b->lineno[i]) != 0))
			return -1;
		json_decref(b->objs[i]);
		b->objs[i] = NULL;
	}
	if (*done == 0)
		*first = b->ids[0];
	*last = b->ids[b->n - 1];
	*done += b->n;
	b->n = 0;
	return 0;
}

/* A .jsonl file of records. */
static int import_jsonl(nvf_db *db, nvf_txn *txn, const nvf_info *info, const char *file, size_t batch,
			uint64_t *done, uint64_t *first, uint64_t *last)
{
	lines l;
	if (lines_open(&l, file) != 0)
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
		error("out of memory for a batch of %zu records", b.cap);
		goto out;
	}
	progress pr;
	progress_start(&pr, "import", "records", 0);
	while ((r = lines_next(&l, &text)) == 1) {
		progress_update(&pr, *done + b.n);
		if (!*text)
			continue; /* blank lines separate nothing: skip them */
		json_error_t e;
		json_t *o = json_loads(text, JSON_REJECT_DUPLICATES, &e);
		if (!o) {
			error("%s: line %" PRIu64 ", column %d: %s", file, l.no, e.column, e.text);
			goto out;
		}
		b.objs[b.n] = o; /* owned by the batch from here */
		json_t *jid = json_object_get(o, "id"), *jv = json_object_get(o, "vector");
		const char *key;
		json_t *val;
		json_object_foreach(o, key, val) {
			if (strcmp(key, "id") && strcmp(key, "vector") && strcmp(key, "meta") && strcmp(key, "tags")) {
				error("%s: line %" PRIu64 ": unknown key \"%s\" (a record has id, vector, meta, tags)", file,
				      l.no, key);
				goto out;
			}
		}
		int has_id = jid != NULL;
		if (with_ids >= 0 && has_id != with_ids) {
			error("%s: line %" PRIu64 ": %s an \"id\", the lines before %s (give every record an id, or none)",
			      file, l.no, has_id ? "has" : "has no", with_ids ? "have one" : "do not");
			goto out;
		}
		with_ids = has_id;
		if (has_id && (!json_is_integer(jid) || json_integer_value(jid) < 0)) {
			error("%s: line %" PRIu64 ": \"id\" must be a non-negative integer", file, l.no);
			goto out;
		}
		if (!json_is_array(jv) || json_array_size(jv) != info->dim) {
			error("%s: line %" PRIu64 ": \"vector\" must be an array of %" PRIu32 " numbers%s", file, l.no,
			      info->dim, json_is_array(jv) ? " (the collection's dimension)" : "");
			goto out;
		}
		float *vec = b.vecs + b.n * info->dim;
		for (size_t i = 0; i < info->dim; i++) {
			json_t *x = json_array_get(jv, i);
			if (!json_is_number(x)) {
				error("%s: line %" PRIu64 ": vector component %zu is not a number", file, l.no, i);
				goto out;
			}
			vec[i] = (float)json_number_value(x);
		}
		if (check_record(vec, info->dim, info, file, l.no - 1) != 0)
			goto out;
		b.ids[b.n] = has_id ? (uint64_t)json_integer_value(jid) : 0;
		b.lineno[b.n] = l.no;
		if (++b.n == b.cap && jbatch_flush(db, txn, info, &b, with_ids == 1, file, done, first, last) != 0)
			goto out;
	}
	if (r == 0 && jbatch_flush(db, txn, info, &b, with_ids == 1, file, done, first, last) == 0)
		ret = 0;
	progress_end(&pr);
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
static int import_vectors(nvf_db *db, nvf_txn *txn, const nvf_info *info, const char *file, int format,
			  size_t batch, const char *metafile, uint64_t *done, uint64_t *first, uint64_t *last)
{
	char err[VECFILE_ERRLEN];
	vecfile *vf = NULL;
	float *vecs = NULL;
	uint64_t *ids = NULL;
	lines ml = {0};
	int ret = -1, rc;
	if (vecfile_open(&vf, file, format, err) != 0) {
		error("%s", err);
		return -1;
	}
	if (metafile && lines_open(&ml, metafile) != 0)
		goto out;
	size_t dim = vecfile_dim(vf);
	if (dim != 0 && dim != info->dim) {
		error("%s: record 0: dimension %zu, the collection has dimension %" PRIu32, file, dim, info->dim);
		goto out;
	}
	/* By default 10000 vectors a call, fewer where they are long (a batch buffer of
	 * at most 256 MiB); an explicit --batch is taken as it is. */
	if (batch == 0) {
		batch = dim ? (256u << 20) / (dim * sizeof(float)) : 1;
		batch = batch < 1 ? 1 : batch > 10000 ? 10000 : batch;
	}
	if (dim != 0 && (!(vecs = malloc(batch * dim * sizeof(*vecs))) || !(ids = malloc(batch * sizeof(*ids))))) {
		error("out of memory for a batch of %zu vectors of dimension %zu", batch, dim);
		goto out;
	}
	progress pr;
	int64_t total = vecfile_count(vf);
	progress_start(&pr, "import", "records", total > 0 ? (uint64_t)total : 0);
	for (bool eof = dim == 0; !eof;) {
		progress_update(&pr, *done);
		size_t n = 0;
		while (n < batch) {
			uint64_t rec = vecfile_record(vf);
			int r = vecfile_read(vf, vecs + n * dim, err);
			if (r < 0) {
				error("%s", err);
				goto out;
			}
			if (r == 0) {
				eof = true;
				break;
			}
			if (check_record(vecs + n * dim, dim, info, file, rec) != 0)
				goto out;
			n++;
		}
		if (n == 0)
			break;
		if ((rc = nvf_insert_batch(db, txn, vecs, n, dim, NULL, ids)) != 0) {
			error("%s: records %" PRIu64 " to %" PRIu64 ": %s", file, *done, *done + n - 1, why(rc));
			goto out;
		}
		for (size_t i = 0; metafile && i < n; i++) {
			const char *text;
			int r = lines_next(&ml, &text);
			if (r < 0)
				goto out;
			if (r == 0) {
				error("%s: %" PRIu64 " lines, %s has more vectors", metafile, ml.no, file);
				goto out;
			}
			if (strcmp(text, "null") != 0 && *text && (rc = nvf_meta_set(db, txn, ids[i], text)) != 0) {
				error("%s: line %" PRIu64 ": %s", metafile, ml.no, why(rc));
				goto out;
			}
		}
		if (*done == 0)
			*first = ids[0];
		*last = ids[n - 1];
		*done += n;
	}
	progress_end(&pr);
	if (metafile) {
		const char *text;
		int r = lines_next(&ml, &text);
		if (r < 0)
			goto out;
		if (r == 1) {
			error("%s: line %" PRIu64 ": more documents than %s has vectors (%" PRIu64 ")", metafile, ml.no, file,
			      *done);
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

static bool is_jsonl(const char *file)
{
	size_t n = strlen(file);
	return (n >= 6 && strcmp(file + n - 6, ".jsonl") == 0) || (n >= 5 && strcmp(file + n - 5, ".ndjson") == 0);
}

static int cmd_import(const struct command *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "batch", required_argument, NULL, OPT_BATCH },
		{ "meta", required_argument, NULL, OPT_META },
		HELP_OPTION,
		{ NULL, 0, NULL, 0 },
	};
	int format = VF_AUTO, c;
	bool jsonl = false;
	size_t batch = 0;
	const char *metafile = NULL;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case OPT_FORMAT:
			if (strcmp(optarg, "jsonl") == 0)
				jsonl = true;
			else
				format = parse_format(optarg);
			break;
		case OPT_BATCH:
			batch = (size_t)parse_num("--batch", optarg, 1, 10000000);
			break;
		case OPT_META:
			metafile = optarg;
			break;
		default:
			common_option(c, argv);
		}
	}
	static const char *const names[] = { "DB", "FILE" };
	char **pos = positionals(argc, argv, 2, names);
	const char *path = pos[0], *file = pos[1];
	jsonl |= format == VF_AUTO && is_jsonl(file);
	if (jsonl && metafile)
		usage_error("--meta goes with a vector file; a .jsonl file carries its documents itself");

	double t0 = now();
	nvf_db *db = NULL;
	nvf_txn *txn = NULL;
	uint64_t first_id = 0, last_id = 0, done = 0;
	nvf_info info;
	int rc, ret = EXIT_ERROR;
	/* One write transaction for the whole file: an error anywhere in it, even in
	 * the last record, aborts it, and the collection is as it was. */
	if ((rc = nvf_db_open(&db, path, NULL)) != 0 || (rc = nvf_txn_begin(&txn, db, 0)) != 0 ||
	    (rc = nvf_db_info(db, txn, &info)) != 0) {
		db_error(path, rc);
		goto out;
	}
	if ((jsonl ? import_jsonl(db, txn, &info, file, batch, &done, &first_id, &last_id)
		   : import_vectors(db, txn, &info, file, format, batch, metafile, &done, &first_id, &last_id)) != 0)
		goto out;
	rc = done ? nvf_txn_commit(txn) : 0; /* nothing to commit: abort it below */
	if (done)
		txn = NULL; /* freed by commit, whatever it returned */
	if (rc != 0) {
		error("%s: commit: %s", path, why(rc));
		goto out;
	}
	nvf_txn_abort(txn);
	txn = NULL;
	rc = nvf_db_close(db);
	db = NULL;
	if (rc != 0) {
		error("%s: closing: %s", path, why(rc));
		goto out;
	}
	double secs = now() - t0;
	printf("imported %" PRIu64 " %s from %s", done, jsonl ? "records" : "vectors", file);
	if (done)
		printf(" (ids %" PRIu64 "..%" PRIu64 ")", first_id, last_id);
	printf(" in %.2f s, %.0f records/s\n", secs, secs > 0 ? (double)done / secs : 0.0);
	ret = EXIT_SUCCESS;
out:
	nvf_txn_abort(txn);
	nvf_db_close(db);
	return ret;
}

const struct command cmd_import_def = { "import", cmd_import, "Insert every record of a file, all or nothing.",
	  "import DB FILE [options]\n"
	  "\n"
	  "FILE is .fvecs, .bvecs, .npy (2-D, <f4 <f8 |u1 <i4) or IDX (.idx, *-ubyte),\n"
	  "optionally gzip-compressed (ids assigned in file order), or .jsonl: one record\n"
	  "a line, {\"id\": 7, \"vector\": [...], \"meta\": {...}, \"tags\": [\"a\"]}, where id\n"
	  "(every line or none), meta and tags may be left out. Every record is checked and\n"
	  "the whole file goes in one transaction: a bad record anywhere imports nothing.\n"
	  "\n"
	  "      --format F           fvecs, bvecs, npy, idx or jsonl (default: from the name)\n"
	  "      --meta FILE.jsonl    documents for a vector file, one JSON object (or null)\n"
	  "                           a line, line i for record i; as many lines as vectors\n"
	  "      --batch N            vectors per insert call (default 10000, fewer\n"
	  "                           if that would take more than 256 MiB)\n"
	  "  -h, --help               show this help" };
