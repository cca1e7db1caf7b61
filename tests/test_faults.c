/* Disk faults that a running system survives (issue 13): through the test I/O layer
 * (faultio.h), every write of each workload fails in turn with -EIO, with -ENOSPC, or
 * short (a prefix written, then -ENOSPC), every truncate with -EIO and -ENOSPC, and
 * every sync with -EIO, the unsynced writes kept or dropped. The workloads: inserts
 * (flat and HNSW), documents, field indexes, snapshots (create, restore, delete),
 * compact (with and without snapshots), backup, import (JSON lines).
 *
 * A counting run of the operation, without faults, gives its writes, truncates and
 * syncs, and the committed state after it ("new"); the base file gives the state
 * before ("prev"). A state is a fingerprint of what the public API reads: every
 * record (vector, document, tags, version), the field indexes, and each named
 * snapshot with its own records. Then, for each fault point, on a fresh copy of the
 * base file:
 *
 *  - the operation returns a negative code and nvf_errmsg() names the file or the
 *    write or sync that failed;
 *  - the handle reads exactly the state expected: prev, except after a failed sync
 *    of the data file that made a meta record durable with its writes kept (new);
 *  - a failed write, truncate, or sync of a copy leaves the handle usable: the same
 *    operation, run again on it, succeeds and gives new, and nvf_check() passes (the
 *    pages the failed commit took are neither leaked nor used twice);
 *  - a failed sync of the data file makes the handle refuse write transactions and
 *    nvf_db_sync() with -EIO and a message saying why, while reads go on;
 *  - closed and opened again with the real I/O layer, the file passes nvf_check()
 *    and holds exactly the state expected; after a failed sync the operation then
 *    succeeds on the new handle;
 *  - no temporary file of a compaction or backup is left, and a failed backup leaves
 *    nothing under its destination.
 *
 * Prints one line per workload: fault points tried, failures seen, and how often the
 * handle was refused after a failed fsync. */
#include "faultio.h"
#include "importer.h"

#include <dirent.h>
#include <xxhash.h>

#define DIM 4
#define PSIZE 512
#define MAXID 200 /* fingerprints look at ids 0..MAXID-1 */

TU_DB_FIXTURE("base.nvf")

typedef struct workload {
	const char *name;
	void (*make)(const char *path);        /* the base file: the state before */
	int (*op)(nvf_db *db, const char *where); /* the operation under test */
	bool reopen; /* a successful op replaces the file (compact): open it again */
	bool backup; /* the op writes dir/backup.nvf */
	bool nosync; /* the handle commits with NVF_DURABILITY_NOSYNC */
	int (*prep)(nvf_db *db); /* NULL, or a commit before the op, on the same handle, not faulted */
} workload;

/* ---- fingerprints of the state the API reads ---- */

/* A record's JSON without its times (a repeated operation writes others). */
static void hash_record(XXH3_state_t *st, const char *json)
{
	static const char *const keys[] = {"\"created_at\":", "\"updated_at\":"};
	const char *p = json;
	while (*p) {
		const char *cut = NULL;
		size_t klen = 0;
		for (size_t k = 0; k < NVF_ARRAY_LEN(keys); k++) {
			const char *q = strstr(p, keys[k]);
			if (q && (!cut || q < cut)) {
				cut = q;
				klen = strlen(keys[k]);
			}
		}
		if (!cut) {
			XXH3_64bits_update(st, p, strlen(p));
			break;
		}
		XXH3_64bits_update(st, p, (size_t)(cut - p) + klen);
		p = cut + klen;
		while (*p == '-' || (*p >= '0' && *p <= '9'))
			p++;
	}
}

static uint64_t fp_state(nvf_db *db, nvf_txn *txn, bool snapshots)
{
	XXH3_state_t *st = XXH3_createState();
	XXH3_64bits_reset(st);
	nvf_info info;
	tu_assert(nvf_db_info(db, txn, &info) == 0, "info: %s", nvf_errmsg());
	XXH3_64bits_update(st, &info.count, sizeof(info.count));
	XXH3_64bits_update(st, &info.next_id, sizeof(info.next_id));
	for (uint64_t id = 0; id < MAXID; id++) {
		char *s = NULL;
		int rc = nvf_record_json(db, txn, id, NVF_RECORD_VECTOR, &s);
		tu_assert(rc == 0 || rc == NVF_ENOTFOUND, "record %llu: %s", (unsigned long long)id, nvf_errmsg());
		if (rc == 0)
			hash_record(st, s);
		else
			XXH3_64bits_update(st, "-", 1);
		nvf_free(s);
	}
	nvf_field_info *f = NULL;
	size_t nf = 0;
	tu_assert(nvf_field_list(db, txn, &f, &nf) == 0, "fields: %s", nvf_errmsg());
	for (size_t i = 0; i < nf; i++) {
		XXH3_64bits_update(st, f[i].path, strlen(f[i].path));
		XXH3_64bits_update(st, &f[i].type, sizeof(f[i].type));
		XXH3_64bits_update(st, &f[i].keys, sizeof(f[i].keys));
		XXH3_64bits_update(st, &f[i].entries, sizeof(f[i].entries));
		XXH3_64bits_update(st, &f[i].unindexed, sizeof(f[i].unindexed));
	}
	nvf_free(f);
	if (snapshots) {
		nvf_snapshot_info *s = NULL;
		size_t ns = 0;
		tu_assert(nvf_snapshot_list(db, NULL, &s, &ns) == 0, "snapshots: %s", nvf_errmsg());
		for (size_t i = 0; i < ns; i++) {
			XXH3_64bits_update(st, s[i].name, strlen(s[i].name) + 1);
			if (s[i].doc)
				XXH3_64bits_update(st, s[i].doc, strlen(s[i].doc));
			nvf_txn *t;
			tu_assert(nvf_txn_begin_snapshot(&t, db, s[i].name) == 0, "snapshot %s: %s", s[i].name,
				  nvf_errmsg());
			uint64_t h = fp_state(db, t, false);
			nvf_txn_abort(t);
			XXH3_64bits_update(st, &h, sizeof(h));
		}
		nvf_free(s);
	}
	uint64_t h = XXH3_64bits_digest(st);
	XXH3_freeState(st);
	return h;
}

static uint64_t fp(nvf_db *db)
{
	return fp_state(db, NULL, true);
}

/* ---- base files ---- */

static void vec(float *v, uint64_t id, uint32_t ver)
{
	uint64_t s = tu_mix(id * 131 + ver);
	for (int d = 0; d < DIM; d++) {
		s = tu_mix(s);
		v[d] = (float)(s % 1000) / 10.0f;
	}
}

static nvf_db *create(const char *file, int index)
{
	tu_unlink_db(file);
	nvf_create_options o = NVF_CREATE_OPTIONS_INIT;
	o.dim = DIM;
	o.index = index;
	o.hnsw_m = 4;
	o.hnsw_ef_construction = 16;
	o.page_size = PSIZE;
	o.doc_max_bytes = 1u << 20;
	nvf_db *db;
	ck_nvf(nvf_db_create(&db, file, &o));
	return db;
}

/* Records lo..hi-1 with documents {"g": id % 5, "name": "rN"} and a tag on every third. */
static void add_records(nvf_db *db, uint64_t lo, uint64_t hi, uint32_t ver)
{
	nvf_txn *txn = NULL;
	ck_nvf(nvf_txn_begin(&txn, db, 0));
	for (uint64_t id = lo; id < hi; id++) {
		float v[DIM];
		char d[64];
		vec(v, id, ver);
		ck_nvf(nvf_upsert(db, txn, id, v, DIM));
		snprintf(d, sizeof(d), "{\"g\":%llu,\"name\":\"r%llu\"}", (unsigned long long)(id % 5),
			 (unsigned long long)id);
		ck_nvf(nvf_meta_set(db, txn, id, d));
		if (id % 3 == 0)
			ck_nvf(nvf_tag_add(db, txn, id, "third"));
	}
	ck_nvf(nvf_txn_commit(txn));
}

static void delete_records(nvf_db *db, uint64_t lo, uint64_t hi, uint64_t step)
{
	nvf_txn *txn = NULL;
	ck_nvf(nvf_txn_begin(&txn, db, 0));
	for (uint64_t id = lo; id < hi; id += step)
		ck_nvf(nvf_delete(db, txn, id));
	ck_nvf(nvf_txn_commit(txn));
}

/* Small commits that each rewrite a few scattered records: the pages they free lie
 * all over the file, so that the operation's commit reuses them and writes many
 * runs, not one. */
static void churn(nvf_db *db, uint64_t hi)
{
	for (uint32_t round = 0; round < 6; round++) {
		nvf_txn *txn;
		ck_nvf(nvf_txn_begin(&txn, db, 0));
		for (uint64_t id = round % 7; id < hi; id += 7) {
			if (nvf_contains(db, txn, id) != 1)
				continue;
			float v[DIM];
			char d[64];
			vec(v, id, 10 + round);
			ck_nvf(nvf_update(db, txn, id, v, DIM));
			snprintf(d, sizeof(d), "{\"round\":%u}", round);
			ck_nvf(nvf_meta_patch(db, txn, id, d));
		}
		ck_nvf(nvf_txn_commit(txn));
	}
}

static void make_flat(const char *file)
{
	nvf_db *db = create(file, NVF_INDEX_FLAT);
	add_records(db, 0, 40, 1);
	churn(db, 60);
	ck_nvf(nvf_db_close(db));
}

static void make_hnsw(const char *file)
{
	nvf_db *db = create(file, NVF_INDEX_HNSW);
	add_records(db, 0, 40, 1);
	churn(db, 60);
	ck_nvf(nvf_db_close(db));
}

static void make_indexed(const char *file)
{
	nvf_db *db = create(file, NVF_INDEX_FLAT);
	ck_nvf(nvf_field_add(db, NULL, "g", NVF_FIELD_INT));
	ck_nvf(nvf_field_add(db, NULL, "tags", NVF_FIELD_TAGS));
	add_records(db, 0, 40, 1);
	churn(db, 60);
	ck_nvf(nvf_db_close(db));
}

/* A snapshot s1 of 40 records, then changes after it: updates, deletes, new ones. */
static void make_snapshotted(const char *file, int index)
{
	nvf_db *db = create(file, index);
	ck_nvf(nvf_field_add(db, NULL, "g", NVF_FIELD_INT));
	add_records(db, 0, 40, 1);
	ck_nvf(nvf_snapshot_create(db, NULL, "s1", "{\"why\":\"before\"}", NULL));
	add_records(db, 20, 60, 2);
	delete_records(db, 0, 20, 3);
	churn(db, 60);
	ck_nvf(nvf_db_close(db));
}

static void make_snap_flat(const char *file)
{
	make_snapshotted(file, NVF_INDEX_FLAT);
}

static void make_snap_hnsw(const char *file)
{
	make_snapshotted(file, NVF_INDEX_HNSW);
}

/* Deletes leave free rows (flat: packed by a compaction) and free pages. */
static void make_holes(const char *file, int index)
{
	nvf_db *db = create(file, index);
	ck_nvf(nvf_field_add(db, NULL, "g", NVF_FIELD_INT));
	add_records(db, 0, 60, 1);
	delete_records(db, 0, 60, 4);
	churn(db, 60);
	ck_nvf(nvf_db_close(db));
}

static void make_holes_flat(const char *file)
{
	make_holes(file, NVF_INDEX_FLAT);
}

static void make_holes_hnsw(const char *file)
{
	make_holes(file, NVF_INDEX_HNSW);
}

/* ---- operations ---- */

static int op_insert_batch(nvf_db *db, const char *where)
{
	(void)where;
	float v[30 * DIM];
	for (uint64_t i = 0; i < 30; i++)
		vec(v + i * DIM, 100 + i, 7);
	return nvf_insert_batch(db, NULL, v, 30, DIM, NULL, NULL);
}

/* New records, updated vectors and deletes in one transaction (HNSW: links change). */
static int op_upsert(nvf_db *db, const char *where)
{
	(void)where;
	nvf_txn *txn = NULL;
	int rc = nvf_txn_begin(&txn, db, 0);
	if (rc != 0)
		return rc;
	float v[DIM];
	for (uint64_t id = 40; id < 65 && rc == 0; id++) {
		vec(v, id, 3);
		rc = nvf_upsert(db, txn, id, v, DIM);
	}
	for (uint64_t id = 0; id < 10 && rc == 0; id += 2) {
		vec(v, id, 4);
		rc = nvf_upsert(db, txn, id, v, DIM);
	}
	for (uint64_t id = 11; id < 20 && rc == 0; id += 3)
		rc = nvf_delete(db, txn, id);
	if (rc != 0) {
		nvf_txn_abort(txn);
		return rc;
	}
	return nvf_txn_commit(txn);
}

/* Documents set, patched and removed, tags added, and one document of 70 KB (an
 * extent written straight to the file before the commit). */
static int op_documents(nvf_db *db, const char *where)
{
	(void)where;
	nvf_txn *txn = NULL;
	int rc = nvf_txn_begin(&txn, db, 0);
	if (rc != 0)
		return rc;
	char d[128];
	for (uint64_t id = 0; id < 15 && rc == 0; id++) {
		snprintf(d, sizeof(d), "{\"g\":%llu,\"name\":\"set%llu\",\"n\":[1,2,%llu]}", (unsigned long long)(id % 3),
			 (unsigned long long)id, (unsigned long long)id);
		rc = nvf_meta_set(db, txn, id, d);
	}
	for (uint64_t id = 15; id < 25 && rc == 0; id++)
		rc = nvf_meta_patch(db, txn, id, "{\"g\":9,\"name\":null,\"p\":{\"q\":true}}");
	for (uint64_t id = 25; id < 30 && rc == 0; id++)
		rc = nvf_tag_add(db, txn, id, "new");
	if (rc == 0)
		rc = nvf_meta_set(db, txn, 30, NULL);
	if (rc == 0) {
		size_t n = 70000;
		char *big = malloc(n + 32);
		uint64_t s = 1;
		int len = snprintf(big, 32, "{\"g\":1,\"big\":\"");
		for (size_t i = (size_t)len; i < n; i++)
			big[i] = (char)('a' + tu_below(&s, 26));
		memcpy(big + n, "\"}", 3);
		rc = nvf_meta_set(db, txn, 31, big);
		free(big);
	}
	if (rc != 0) {
		nvf_txn_abort(txn);
		return rc;
	}
	return nvf_txn_commit(txn);
}

/* Two indexes built over the existing documents, in one transaction. */
static int op_field_add(nvf_db *db, const char *where)
{
	(void)where;
	nvf_txn *txn = NULL;
	int rc = nvf_txn_begin(&txn, db, 0);
	if (rc == 0)
		rc = nvf_field_add(db, txn, "g", NVF_FIELD_INT);
	if (rc == 0)
		rc = nvf_field_add(db, txn, "name", NVF_FIELD_STRING);
	if (rc != 0) {
		nvf_txn_abort(txn);
		return rc;
	}
	return nvf_txn_commit(txn);
}

static int op_snapshot_create(nvf_db *db, const char *where)
{
	(void)where;
	return nvf_snapshot_create(db, NULL, "s2", "{\"why\":\"matrix\"}", NULL);
}

static int op_snapshot_restore(nvf_db *db, const char *where)
{
	(void)where;
	return nvf_snapshot_restore(db, "s1");
}

static int op_snapshot_delete(nvf_db *db, const char *where)
{
	(void)where;
	return nvf_snapshot_delete(db, NULL, "s1");
}

static int op_compact(nvf_db *db, const char *where)
{
	(void)where;
	return nvf_db_compact(db);
}

static int op_backup(nvf_db *db, const char *where)
{
	char *dest = tu_path(where, "backup.nvf");
	int rc = nvf_db_backup(db, dest);
	free(dest);
	return rc;
}

/* With NVF_DURABILITY_NOSYNC: a commit that is not yet synced when the op commits
 * (the op's meta record goes to the same slot as the prep's). */
static int prep_nosync_commit(nvf_db *db)
{
	float v[5 * DIM];
	for (uint64_t i = 0; i < 5; i++)
		vec(v + i * DIM, 300 + i, 1);
	return nvf_insert_batch(db, NULL, v, 5, DIM, NULL, NULL);
}

#define IMPORT_FILE "import.jsonl"

static void write_import_file(const char *where)
{
	char *p = tu_path(where, IMPORT_FILE);
	FILE *f = fopen(p, "w");
	ck_assert_ptr_nonnull(f);
	for (uint64_t id = 100; id < 130; id++) {
		float v[DIM];
		vec(v, id, 5);
		fprintf(f, "{\"id\":%llu,\"vector\":[%g,%g,%g,%g],\"meta\":{\"g\":%llu,\"src\":\"import\"}%s}\n",
			(unsigned long long)id, v[0], v[1], v[2], v[3], (unsigned long long)(id % 4),
			id % 2 ? ",\"tags\":[\"odd\"]" : "");
	}
	ck_assert_int_eq(fclose(f), 0);
	free(p);
}

static int op_import(nvf_db *db, const char *where)
{
	char *file = tu_path(where, IMPORT_FILE), err[IMPORT_ERRLEN];
	nvf_info info;
	nvf_txn *txn = NULL;
	int rc = nvf_db_info(db, NULL, &info);
	if (rc == 0)
		rc = nvf_txn_begin(&txn, db, 0);
	if (rc == 0) {
		import_result res;
		if (import_file(db, txn, &info, file, NULL, IMPORT_JSONL, 0, NULL, NULL, &res, err) != 0) {
			/* The library's code; the message is the library's too (err repeats it). */
			rc = nvf_txn_status(txn);
			tu_assert(rc < 0, "import failed without a failed transaction: %s", err);
			nvf_txn_abort(txn);
		} else {
			rc = nvf_txn_commit(txn);
		}
	}
	free(file);
	return rc;
}

/* ---- the matrix ---- */

enum fault { F_WRITE, F_TRUNCATE, F_SYNC };

typedef struct run {
	const workload *w;
	char *work, *base, *backup;
	uint64_t prev, next; /* fingerprints before and after the operation */
	long writes, truncates, syncs;
	fio_sync_info sync_info[FIO_MAX_SYNCS];
	long points, failures, refused;
	long reopened_next; /* reopened at the new state after a failed fsync (kept writes) */
} run;

static void copy_file(const char *from, const char *to)
{
	FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
	ck_assert(a && b);
	char buf[65536];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), a)) > 0)
		ck_assert_uint_eq(fwrite(buf, 1, n, b), n);
	fclose(a);
	ck_assert_int_eq(fclose(b), 0);
}

static void fresh_copy(run *r)
{
	tu_unlink_db(r->work);
	tu_unlink_db(r->backup);
	copy_file(r->base, r->work);
}

/* Nothing but what the test made: no temporary file of a compaction or backup. */
static void no_leftovers(const char *what)
{
	DIR *d = opendir(dir);
	ck_assert_ptr_nonnull(d);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		tu_assert(strcmp(e->d_name, "base.nvf") == 0 || strcmp(e->d_name, "base.nvf-lock") == 0 ||
				  strcmp(e->d_name, "work.nvf") == 0 || strcmp(e->d_name, "work.nvf-lock") == 0 ||
				  strcmp(e->d_name, "backup.nvf") == 0 || strcmp(e->d_name, IMPORT_FILE) == 0,
			  "%s: %s left in the directory", what, e->d_name);
	}
	closedir(d);
}

static void check_ok(nvf_db *db, const char *what)
{
	nvf_check_report rep;
	tu_assert(nvf_check(db, &rep) == 0, "%s: nvf_check: %s", what, rep.problem);
}

/* The backup, when the op succeeded: sound and the source's state (the base's, since
 * a backup changes nothing); when it failed: nothing under its name. */
static void check_backup(const run *r, bool made, const char *what)
{
	if (!r->w->backup)
		return;
	if (!made) {
		tu_assert(access(r->backup, F_OK) != 0, "%s: a failed backup left %s", what, r->backup);
		return;
	}
	nvf_db *b;
	tu_assert(nvf_db_open(&b, r->backup, NULL) == 0, "%s: backup: %s", what, nvf_errmsg());
	check_ok(b, what);
	tu_assert(fp(b) == r->prev, "%s: the backup differs from its source", what);
	ck_nvf(nvf_db_close(b));
	tu_unlink_db(r->backup);
}

/* Open the work file through f (or the real layer), and run the workload's prep. */
static nvf_db *open_work(const run *r, faultio *f)
{
	nvf_open_options oo = NVF_OPEN_OPTIONS_INIT;
	if (r->w->nosync)
		oo.durability = NVF_DURABILITY_NOSYNC;
	nvf_db *db;
	tu_assert(nvf__db_open_io(&db, r->work, &oo, f ? &f->io : &nvf__io_posix) == 0, "open: %s", nvf_errmsg());
	if (r->w->prep)
		tu_assert(r->w->prep(db) == 0, "prep: %s", nvf_errmsg());
	return db;
}

/* The op without faults: counts and the state after it. */
static void count_run(run *r)
{
	fresh_copy(r);
	faultio f;
	fio_init(&f, r->work);
	nvf_db *db = open_work(r, &f);
	r->prev = fp(db);
	long w0 = f.writes, t0 = f.truncates, s0 = f.syncs;
	int rc = r->w->op(db, dir);
	tu_assert(rc == 0, "%s: %s", r->w->name, nvf_errmsg());
	r->writes = f.writes - w0;
	r->truncates = f.truncates - t0;
	r->syncs = f.syncs - s0;
	ck_assert_int_le(f.syncs, FIO_MAX_SYNCS);
	memcpy(r->sync_info, f.sync_info + s0, (size_t)r->syncs * sizeof(r->sync_info[0]));
	if (r->w->reopen) {
		ck_nvf(nvf_db_close(db));
		ck_nvf(nvf_db_open(&db, r->work, NULL));
	}
	r->next = fp(db);
	check_ok(db, r->w->name);
	ck_nvf(nvf_db_close(db));
	fio_fini(&f);
	check_backup(r, true, r->w->name);
	/* A compaction keeps every record as it was; everything else changes some. */
	if (r->w->reopen)
		tu_assert(r->next == r->prev, "%s: the compacted state differs", r->w->name);
	else if (!r->w->backup)
		tu_assert(r->next != r->prev, "%s: the operation changed nothing", r->w->name);
	no_leftovers(r->w->name);
}

static const char *kind_name(enum fault kind, int sub)
{
	if (kind == F_SYNC)
		return sub ? "sync EIO (writes dropped)" : "sync EIO (writes kept)";
	static const char *const w[] = {"EIO", "ENOSPC", "short write"};
	return kind == F_WRITE ? w[sub] : sub == FIO_EIO ? "truncate EIO" : "truncate ENOSPC";
}

/* Run the op again after a failure, on a handle that must take it: it succeeds and
 * gives the new state. Closes db. */
static void retry(run *r, nvf_db *db, const char *what)
{
	int rc = r->w->op(db, dir);
	tu_assert(rc == 0, "%s: the operation again, after the fault: %s", what, nvf_errmsg());
	if (r->w->reopen) {
		ck_nvf(nvf_db_close(db));
		ck_nvf(nvf_db_open(&db, r->work, NULL));
	}
	tu_assert(fp(db) == r->next, "%s: the operation again did not give the new state", what);
	check_ok(db, what);
	ck_nvf(nvf_db_close(db));
	check_backup(r, true, what);
}

static void fault_point(run *r, enum fault kind, int sub, long at)
{
	char what[160];
	snprintf(what, sizeof(what), "%s: %s at %s %ld", r->w->name, kind_name(kind, sub),
		 kind == F_SYNC ? "sync" : kind == F_WRITE ? "write" : "truncate", at);
	fresh_copy(r);
	faultio f;
	fio_init(&f, r->work);
	nvf_db *db = open_work(r, &f);
	/* Armed after the prep: at counts the op's own writes and syncs. */
	if (kind == F_WRITE) {
		f.err_write = f.writes + at;
		f.err_kind = (enum fio_err)sub;
	} else if (kind == F_TRUNCATE) {
		f.err_truncate = f.truncates + at;
		f.err_kind = (enum fio_err)sub;
	} else {
		f.err_sync = f.syncs + at;
		f.err_sync_drop = sub != 0;
	}
	int rc = r->w->op(db, dir);
	r->points++;
	tu_assert(f.faulted, "%s: not reached (the operation is not deterministic?)", what);
	tu_assert(rc < 0, "%s: the operation returned %d", what, rc);
	r->failures++;
	const char *msg = nvf_errmsg();
	tu_assert(msg[0] && (strstr(msg, dir) || strstr(msg, "write") || strstr(msg, "sync")),
		  "%s: message \"%s\" names neither the file nor the failure", what, msg);
	if (kind == F_SYNC)
		tu_assert(strstr(msg, "sync"), "%s: message \"%s\" does not say the sync failed", what, msg);
	check_backup(r, false, what);

	/* A failed sync of the data file: the handle refuses writes, but still reads;
	 * what it reads is the new state only if the meta record's write was kept. */
	const fio_sync_info *si = kind == F_SYNC ? &r->sync_info[at - 1] : NULL;
	bool poisoned = si && si->main;
	bool at_next = si && si->main && si->meta && !f.err_sync_drop;
	tu_assert(fp(db) == (at_next ? r->next : r->prev), "%s: the handle reads %s state", what,
		  at_next ? "not the new" : "not the previous");
	if (poisoned) {
		nvf_txn *t;
		rc = nvf_txn_begin(&t, db, 0);
		tu_assert(rc == -EIO && strstr(nvf_errmsg(), "an earlier fsync failed") && strstr(nvf_errmsg(), "reopen"),
			  "%s: a write transaction after a failed fsync: %d %s", what, rc, nvf_errmsg());
		rc = r->w->op(db, dir);
		tu_assert(rc == -EIO, "%s: the operation after a failed fsync returned %d (%s)", what, rc, nvf_errmsg());
		tu_assert(nvf_db_sync(db) == -EIO, "%s: nvf_db_sync after a failed fsync", what);
		check_backup(r, false, what);
		tu_assert(nvf_db_close(db) == 0, "%s: close: %s", what, nvf_errmsg());
		r->refused++;
	} else {
		retry(r, db, what);
		at_next = true;
	}
	fio_fini(&f);
	no_leftovers(what);

	/* Opened again with the real I/O layer. */
	tu_assert(nvf_db_open(&db, r->work, NULL) == 0, "%s: reopen: %s", what, nvf_errmsg());
	check_ok(db, what);
	tu_assert(fp(db) == (at_next ? r->next : r->prev), "%s: reopened at %s state", what,
		  at_next ? "not the new" : "not the previous");
	if (poisoned && at_next)
		r->reopened_next++;
	if (poisoned && !at_next)
		retry(r, db, what);
	else
		ck_nvf(nvf_db_close(db));
	no_leftovers(what);
}

static void matrix(const workload *w)
{
	run r = {.w = w};
	r.base = path;
	r.work = tu_path(dir, "work.nvf");
	r.backup = tu_path(dir, "backup.nvf");
	w->make(path);
	write_import_file(dir);
	count_run(&r);
	for (long at = 1; at <= r.writes; at++)
		for (int sub = FIO_EIO; sub <= FIO_SHORT; sub++)
			fault_point(&r, F_WRITE, sub, at);
	for (long at = 1; at <= r.truncates; at++)
		for (int sub = FIO_EIO; sub <= FIO_ENOSPC; sub++)
			fault_point(&r, F_TRUNCATE, sub, at);
	for (long at = 1; at <= r.syncs; at++)
		for (int drop = 0; drop <= 1; drop++)
			fault_point(&r, F_SYNC, drop, at);
	fprintf(stderr,
		"faults: %-20s %3ld writes x3, %ld truncates x2, %ld syncs x2: %4ld points, %4ld failures, "
		"refused after fsync %ld (reopened at the new state %ld)\n",
		w->name, r.writes, r.truncates, r.syncs, r.points, r.failures, r.refused, r.reopened_next);
	ck_assert_int_eq(r.points, 3 * r.writes + 2 * r.truncates + 2 * r.syncs);
	ck_assert_int_gt(r.syncs + (w->nosync ? 1 : 0), 0);
	free(r.work);
	free(r.backup);
}

#define MATRIX_TEST(tname, ...)                          \
	START_TEST(tname)                                \
	{                                                \
		static const workload w = {__VA_ARGS__}; \
		matrix(&w);                              \
	}                                                \
	END_TEST

MATRIX_TEST(test_insert_batch_flat_survives_every_fault, .name = "insert_batch flat", .make = make_flat, .op = op_insert_batch)
MATRIX_TEST(test_upsert_hnsw_survives_every_fault, .name = "upsert/delete hnsw", .make = make_hnsw, .op = op_upsert)
MATRIX_TEST(test_documents_survive_every_fault, .name = "documents", .make = make_indexed, .op = op_documents)
MATRIX_TEST(test_field_add_survives_every_fault, .name = "field indexes", .make = make_flat, .op = op_field_add)
MATRIX_TEST(test_snapshot_create_survives_every_fault, .name = "snapshot create", .make = make_snap_hnsw, .op = op_snapshot_create)
MATRIX_TEST(test_snapshot_restore_survives_every_fault, .name = "snapshot restore", .make = make_snap_flat, .op = op_snapshot_restore)
MATRIX_TEST(test_snapshot_delete_survives_every_fault, .name = "snapshot delete", .make = make_snap_hnsw, .op = op_snapshot_delete)
MATRIX_TEST(test_compact_flat_survives_every_fault, .name = "compact flat", .make = make_holes_flat, .op = op_compact, .reopen = true)
MATRIX_TEST(test_compact_hnsw_survives_every_fault, .name = "compact hnsw", .make = make_holes_hnsw, .op = op_compact, .reopen = true)
MATRIX_TEST(test_compact_snapshots_survives_every_fault, .name = "compact w/ snapshot", .make = make_snap_flat, .op = op_compact, .reopen = true)
MATRIX_TEST(test_backup_survives_every_fault, .name = "backup w/ snapshot", .make = make_snap_hnsw, .op = op_backup, .backup = true)
MATRIX_TEST(test_import_survives_every_fault, .name = "import jsonl", .make = make_indexed, .op = op_import)
MATRIX_TEST(test_nosync_commit_survives_every_fault, .name = "nosync after nosync", .make = make_hnsw, .op = op_upsert, .nosync = true, .prep = prep_nosync_commit)

/* NOSYNC commits made durable by nvf_db_sync: its failed fsync refuses the handle
 * too, and close reports it (the commits since the last sync may not be on disk). */
START_TEST(test_failed_db_sync_refuses_commits_until_reopen)
{
	make_flat(path);
	char *work = tu_path(dir, "work.nvf");
	copy_file(path, work);
	faultio f;
	fio_init(&f, work);
	nvf_open_options oo = NVF_OPEN_OPTIONS_INIT;
	oo.durability = NVF_DURABILITY_NOSYNC;
	nvf_db *db;
	ck_nvf(nvf__db_open_io(&db, work, &oo, &f.io));
	ck_nvf(op_insert_batch(db, dir));
	ck_assert_int_eq(f.syncs, 0);
	uint64_t next = fp(db);
	f.err_sync = 1;
	f.err_sync_drop = false;
	ck_assert_int_eq(nvf_db_sync(db), -EIO);
	ck_assert_ptr_nonnull(strstr(nvf_errmsg(), "fsync failed"));
	nvf_txn *t;
	ck_assert_int_eq(nvf_txn_begin(&t, db, 0), -EIO);
	ck_assert_ptr_nonnull(strstr(nvf_errmsg(), "an earlier fsync failed"));
	ck_assert_ptr_nonnull(strstr(nvf_errmsg(), work));
	ck_assert_int_eq(nvf_db_sync(db), -EIO);
	ck_assert_uint_eq(fp(db), next); /* reads go on */
	ck_nvf(nvf_txn_begin(&t, db, NVF_TXN_RDONLY));
	nvf_txn_abort(t);
	ck_assert_int_eq(nvf_db_close(db), -EIO); /* the NOSYNC commit was never made durable */
	fio_fini(&f);
	/* The writes were kept: the same boot reopens at the unsynced commit. */
	ck_nvf(nvf_db_open(&db, work, NULL));
	check_ok(db, "after the failed nvf_db_sync");
	ck_assert_uint_eq(fp(db), next);
	ck_nvf(op_upsert(db, dir));
	ck_nvf(nvf_db_sync(db));
	ck_nvf(nvf_db_close(db));
	free(work);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("faults");
	TCase *tc = tcase_create("matrix");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_insert_batch_flat_survives_every_fault);
	tcase_add_test(tc, test_upsert_hnsw_survives_every_fault);
	tcase_add_test(tc, test_documents_survive_every_fault);
	tcase_add_test(tc, test_field_add_survives_every_fault);
	tcase_add_test(tc, test_snapshot_create_survives_every_fault);
	tcase_add_test(tc, test_snapshot_restore_survives_every_fault);
	tcase_add_test(tc, test_snapshot_delete_survives_every_fault);
	tcase_add_test(tc, test_compact_flat_survives_every_fault);
	tcase_add_test(tc, test_compact_hnsw_survives_every_fault);
	tcase_add_test(tc, test_compact_snapshots_survives_every_fault);
	tcase_add_test(tc, test_backup_survives_every_fault);
	tcase_add_test(tc, test_import_survives_every_fault);
	tcase_add_test(tc, test_nosync_commit_survives_every_fault);
	tcase_add_test(tc, test_failed_db_sync_refuses_commits_until_reopen);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
