/* bench meta (NusterDB's side; SQLite's is bench/meta_sqlite.py, the corpus
 * bench/meta_corpus.py): Debian's package index as JSON documents, one record each
 * (a one-component vector beside it), in a flat collection, once per codec:
 *  - file_bytes (the whole file), bytes_per_doc (the document store: compressed
 *    payloads with their headers; the zstd dictionary is counted in too) and
 *    file_bytes_per_doc;
 *  - get_per_s: nvf_meta_get (JSON text back) of the ids in DIR/meta-get-ids.npy, in
 *    one read transaction, best of 3 passes;
 *  - scan_docs_per_s and scan_matches: nvf_filter_ids with
 *    Section = 'python' AND "Installed-Size" > 1000 (no field index: every document
 *    is read), best of 3.
 * Systems nusterdb-none, -lz4, -snappy, -zstd (level 3), -zstd-dict (level 19) and
 * -zstd-dict-level3. One JSON object per result. */
#include "benchutil.h"
#include "nvf.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void die(const char *what, int rc)
{
	fprintf(stderr, "bench_meta: %s: %s (%s)\n", what, nvf_strerror(rc), nvf_errmsg());
	exit(1);
}

/* The ids of an .npy of int64 (the header's shape is not needed: the data runs to
 * the end). */
static int64_t *load_ids(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "bench_meta: %s: cannot open\n", path);
		exit(1);
	}
	unsigned char pre[10];
	if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) {
		fprintf(stderr, "bench_meta: %s: not an .npy file\n", path);
		exit(1);
	}
	size_t hlen = pre[8] | (size_t)pre[9] << 8;
	if (pre[6] >= 2) { /* version 2: a 4-byte header length */
		unsigned char more[2];
		if (fread(more, 1, 2, f) != 2)
			exit(1);
		hlen |= (size_t)more[0] << 16 | (size_t)more[1] << 24;
	}
	fseek(f, 0, SEEK_END);
	long end = ftell(f);
	long start = (pre[6] >= 2 ? 12 : 10) + (long)hlen;
	*n = (size_t)(end - start) / 8;
	int64_t *ids = malloc(*n * 8);
	fseek(f, start, SEEK_SET);
	if (fread(ids, 8, *n, f) != *n) {
		fprintf(stderr, "bench_meta: %s: short read\n", path);
		exit(1);
	}
	fclose(f);
	return ids;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"corpus", required_argument, NULL, 'c'},
		{"dir", required_argument, NULL, 'd'},
		{"get-ids", required_argument, NULL, 'g'},
		{"only", required_argument, NULL, 'o'},
		{NULL, 0, NULL, 0},
	};
	const char *corpus = NULL, *dir = ".", *getids = NULL, *only = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'c': corpus = optarg; break;
		case 'd': dir = optarg; break;
		case 'g': getids = optarg; break;
		case 'o': only = optarg; break; /* one system, for a profile */
		default:
			fprintf(stderr, "usage: bench_meta --corpus FILE.jsonl --dir DIR --get-ids IDS.npy [--only SYSTEM]\n");
			return 2;
		}
	}
	if (!corpus || !getids) {
		fprintf(stderr, "bench_meta: --corpus and --get-ids are required\n");
		return 2;
	}
	bench_json = true;
	/* The corpus in memory: the load times the store, not the file reading. */
	FILE *f = fopen(corpus, "r");
	if (!f) {
		fprintf(stderr, "bench_meta: %s: cannot open\n", corpus);
		return 1;
	}
	size_t cap = 0, ndocs = 0, dcap = 1024;
	char *line = NULL, **docs = malloc(dcap * sizeof(char *));
	ssize_t len;
	while ((len = getline(&line, &cap, f)) > 0) {
		if (ndocs == dcap)
			docs = realloc(docs, (dcap *= 2) * sizeof(char *));
		line[len - 1] = line[len - 1] == '\n' ? 0 : line[len - 1];
		docs[ndocs++] = strdup(line);
	}
	fclose(f);
	free(line);
	size_t nget;
	int64_t *ids = load_ids(getids, &nget);
	nvf_filter *flt;
	int rc = nvf_filter_compile(&flt, "Section = 'python' AND \"Installed-Size\" > 1000");
	if (rc != 0)
		die("filter", rc);

	/* zstd-dict at level 19 (its smallest; the level costs only writes: reading is as
	 * fast), and at the default level 3 beside it. */
	static const struct {
		int codec, level;
		const char *name;
	} codecs[] = {{NVF_CODEC_NONE, 0, "nusterdb-none"},
		      {NVF_CODEC_LZ4, 0, "nusterdb-lz4"},
		      {NVF_CODEC_SNAPPY, 0, "nusterdb-snappy"},
		      {NVF_CODEC_ZSTD, 0, "nusterdb-zstd"},
		      {NVF_CODEC_ZSTD_DICT, 19, "nusterdb-zstd-dict"},
		      {NVF_CODEC_ZSTD_DICT, 0, "nusterdb-zstd-dict-level3"}};
	for (size_t ci = 0; ci < sizeof(codecs) / sizeof(codecs[0]); ci++) {
		const char *sys = codecs[ci].name;
		if (only && strcmp(only, sys) != 0)
			continue;
		char path[4200], lock[4300];
		snprintf(path, sizeof(path), "%s/meta-%s.nvf", dir, sys);
		snprintf(lock, sizeof(lock), "%s-lock", path);
		unlink(path);
		unlink(lock);
		nvf_create_options co = NVF_CREATE_OPTIONS_INIT;
		co.dim = 1;
		co.doc_codec = codecs[ci].codec;
		co.doc_codec_level = codecs[ci].level;
		co.doc_max_bytes = NVF_DOC_MAX_LIMIT;
		nvf_db *db;
		if ((rc = nvf_db_create(&db, path, &co)) != 0)
			die("create", rc);
		double t0 = bench_now();
		nvf_txn *txn;
		float *zero = calloc(ndocs, sizeof(float));
		if ((rc = nvf_txn_begin(&txn, db, 0)) != 0 || (rc = nvf_insert_batch(db, txn, zero, ndocs, 1, NULL, NULL)) != 0)
			die("insert", rc);
		for (size_t i = 0; i < ndocs; i++)
			if ((rc = nvf_meta_set(db, txn, i, docs[i])) != 0)
				die("meta_set", rc);
		if ((rc = nvf_txn_commit(txn)) != 0)
			die("commit", rc);
		double load = bench_now() - t0;
		free(zero);
		nvf_info in;
		if ((rc = nvf_db_info(db, NULL, &in)) != 0)
			die("info", rc);
		char note[300];
		bench_emit("meta", sys, "debian-packages", "load_seconds", load, "s", "every document in one transaction");
		snprintf(note, sizeof(note), "the whole .nvf file (%zu records; vectors of one component, ids, times beside)",
			 ndocs);
		bench_emit("meta", sys, "debian-packages", "file_bytes", (double)in.file_size, "bytes", note);
		bench_emit("meta", sys, "debian-packages", "file_bytes_per_doc", (double)in.file_size / (double)ndocs, "bytes",
			   "the whole file / documents");
		snprintf(note, sizeof(note),
			 "stored documents (compressed, 1-9 byte headers) + the dictionary (%u bytes) / documents; before "
			 "compression %.1f bytes",
			 in.dict_bytes, (double)in.doc_raw_bytes / (double)ndocs);
		bench_emit("meta", sys, "debian-packages", "bytes_per_doc",
			   (double)(in.doc_bytes + in.dict_bytes) / (double)ndocs, "bytes", note);
		/* Random gets, JSON text back, in one read transaction. */
		nvf_txn *rt;
		if ((rc = nvf_txn_begin(&rt, db, NVF_TXN_RDONLY)) != 0)
			die("begin", rc);
		double best = 1e30;
		for (int pass = 0; pass < 3; pass++) {
			t0 = bench_now();
			for (size_t i = 0; i < nget; i++) {
				char *s;
				if ((rc = nvf_meta_get(db, rt, (uint64_t)ids[i], &s)) != 0)
					die("get", rc);
				nvf_free(s);
			}
			double t = bench_now() - t0;
			best = t < best ? t : best;
		}
		snprintf(note, sizeof(note), "nvf_meta_get of %zu random ids (JSON text back), one read transaction, best of 3",
			 nget);
		bench_emit("meta", sys, "debian-packages", "get_per_s", (double)nget / best, "gets/s", note);
		/* A full scan with the filter. */
		best = 1e30;
		size_t matches = 0;
		for (int pass = 0; pass < 3; pass++) {
			uint64_t *m;
			t0 = bench_now();
			if ((rc = nvf_filter_ids(db, rt, flt, &m, &matches)) != 0)
				die("scan", rc);
			double t = bench_now() - t0;
			best = t < best ? t : best;
			nvf_free(m);
		}
		nvf_txn_abort(rt);
		bench_emit("meta", sys, "debian-packages", "scan_docs_per_s", (double)ndocs / best, "docs/s",
			   "nvf_filter_ids, Section = 'python' AND \\\"Installed-Size\\\" > 1000, no index: every document "
			   "decompressed and read in place, best of 3");
		bench_emit("meta", sys, "debian-packages", "scan_matches", (double)matches, "records", NULL);
		if ((rc = nvf_db_close(db)) != 0)
			die("close", rc);
	}
	nvf_filter_free(flt);
	for (size_t i = 0; i < ndocs; i++)
		free(docs[i]);
	free(docs);
	free(ids);
	return 0;
}
