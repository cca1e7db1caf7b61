/* Crash safety.
 *
 * 1. Simulated crashes (faultio.h): a scripted workload of many transactions
 *    (inline and extent values, in-place extent edits, named snapshots created,
 *    deleted and restored) is replayed once per crash point: every write and every sync in turn,
 *    with the unsynced writes dropped, kept or torn. After each crash the file is
 *    reopened, nvf_check()ed, and its content compared with a model of the last
 *    committed state, or of the one in flight if its meta reached the disk.
 *    The same with an HNSW collection through the public API: vectors, documents
 *    (set, patched, removed), tags and two field indexes kept in step, with a
 *    compaction (records laid out again, the file replaced by rename) after every
 *    10th transaction and a backup after every 15th: a crash inside either leaves
 *    the path opening at a committed state.
 * 2. Real crashes: a child process commits in a loop and is killed with SIGKILL at
 *    random moments, at least 100 times; each time the file is reopened, checked and
 *    compared with the model at the child's last acknowledged commit (or the next).
 *
 * Prints "crash-points: N lost: L corrupt: C". */
#include "faultio.h"

#include <signal.h>
#include <sys/wait.h>
#include <xxhash.h>

#define NKEYS 400
#define TREE_KV 1
#define TREE_META 2
#define MAX_SNAPS 64

typedef struct model {
	int64_t len[NKEYS];
	uint64_t ver[NKEYS];
	uint64_t counter;
	int nsnaps;
	uint64_t snap_txn[MAX_SNAPS]; /* counter value the snapshot pinned */
	char snap_name[MAX_SNAPS][16];
} model;

typedef struct workload {
	uint32_t page_size;
	int ntxn;
	uint64_t seed;
	model *states; /* states[i]: after workload transaction i (0 = empty) */
	uint64_t *hash; /* content hash of states[i] */
} workload;

static void fill_value(uint8_t *buf, uint64_t len, uint64_t key, uint64_t ver)
{
	uint64_t s = tu_mix(key * 7919u + ver * 104729u);
	for (uint64_t i = 0; i < len; i++) {
		if ((i & 7) == 0)
			s = tu_mix(s);
		buf[i] = (uint8_t)(s >> ((i & 7) * 8));
	}
}

static uint64_t model_hash(const model *m)
{
	static uint8_t buf[100000];
	XXH3_state_t *st = XXH3_createState();
	XXH3_64bits_reset(st);
	for (uint64_t k = 0; k < NKEYS; k++) {
		if (m->len[k] < 0)
			continue;
		uint64_t len = (uint64_t)m->len[k];
		fill_value(buf, len, k, m->ver[k]);
		XXH3_64bits_update(st, &k, 8);
		XXH3_64bits_update(st, &len, 8);
		XXH3_64bits_update(st, buf, len);
	}
	uint64_t h = XXH3_64bits_digest(st);
	XXH3_freeState(st);
	return h;
}

/* Hash of the KV tree as a transaction sees it, in the model's format. */
static int db_hash(nvf_txn *txn, uint64_t *out)
{
	nvf_tree *t;
	int rc = nvf__tree_open(txn, TREE_KV, -1, &t);
	XXH3_state_t *st = XXH3_createState();
	XXH3_64bits_reset(st);
	if (rc == 0) {
		nvf_cursor c;
		for (rc = nvf__cursor_seek(&c, txn, &t->d, 0); rc == 0 && c.valid; rc = nvf__cursor_next(&c)) {
			uint64_t k;
			nvf_val v;
			if ((rc = nvf__cursor_get(&c, &k, &v)) != 0)
				break;
			XXH3_64bits_update(st, &k, 8);
			XXH3_64bits_update(st, &v.len, 8);
			XXH3_64bits_update(st, v.data, v.len);
		}
	} else if (rc == NVF_ENOTFOUND) {
		rc = 0;
	}
	*out = XXH3_64bits_digest(st);
	XXH3_freeState(st);
	return rc;
}

static int db_counter(nvf_txn *txn, uint64_t *out)
{
	nvf_tree *t;
	int rc = nvf__tree_open(txn, TREE_META, -1, &t);
	if (rc == NVF_ENOTFOUND) {
		*out = 0;
		return 0;
	}
	nvf_val v;
	if (rc == 0)
		rc = nvf__tree_get(txn, &t->d, 0, &v);
	if (rc == 0)
		memcpy(out, v.data, 8);
	return rc;
}

/* Workload transaction i (1-based): a deterministic function of (seed, i) and the
 * model state, applied to the model and, if txn is not NULL, to the database. */
static int apply_txn(nvf_txn *txn, model *m, uint64_t seed, uint64_t i)
{
	static uint8_t buf[100000];
	uint64_t rng = tu_mix(seed ^ (i * 0x9E37u));
	nvf_tree *kv = NULL, *meta = NULL;
	int rc;
	if (txn) {
		if ((rc = nvf__tree_open(txn, TREE_KV, NVF_TREE_KIND_PLAIN, &kv)) != 0 ||
		    (rc = nvf__tree_open(txn, TREE_META, NVF_TREE_KIND_PLAIN, &meta)) != 0)
			return rc;
	}
	int nops = 1 + (int)tu_below(&rng, i % 9 == 0 ? 120 : 25);
	for (int op = 0; op < nops; op++) {
		uint64_t k = tu_below(&rng, NKEYS), r = tu_below(&rng, 100);
		if (r < 60) {
			/* Mostly small; some extents; now and then one large enough to be
			 * written straight to the file before the commit (spilled). */
			uint64_t pick = tu_below(&rng, 60);
			uint64_t len = pick == 0 ? 70000 + tu_below(&rng, 30000)
				     : pick < 12 ? 1000 + tu_below(&rng, 9000) : tu_below(&rng, 200);
			unsigned fl = tu_below(&rng, 8) == 0 ? NVF_PUT_EXTENT : 0;
			uint64_t ver = m->ver[k] + 1;
			if (txn) {
				fill_value(buf, len, k, ver);
				if ((rc = nvf__tree_put(txn, &kv->d, k, buf, len, fl, NULL)) != 0)
					return rc;
			}
			m->len[k] = (int64_t)len;
			m->ver[k] = ver;
		} else if (r < 85) {
			if (m->len[k] < 0)
				continue;
			if (txn && (rc = nvf__tree_del(txn, &kv->d, k)) != 0)
				return rc;
			m->len[k] = -1;
		} else if (m->len[k] >= 1000) {
			/* Rewrite an extent in place (copy-on-write of the extent). */
			uint64_t ver = m->ver[k] + 1;
			if (txn) {
				uint8_t *p;
				uint64_t len;
				if ((rc = nvf__tree_extent_mut(txn, &kv->d, k, &p, &len)) != 0)
					return rc;
				fill_value(p, len, k, ver);
			}
			m->ver[k] = ver;
		}
	}
	/* Snapshots: one every 7 transactions (pinning the state before this one),
	 * the oldest dropped every 11. */
	if (i % 7 == 0 && m->nsnaps < MAX_SNAPS) {
		char name[16];
		snprintf(name, sizeof(name), "s%llu", (unsigned long long)i);
		if (txn && (rc = nvf__snapshot_create(txn, name, "crash test")) != 0)
			return rc;
		memcpy(m->snap_name[m->nsnaps], name, sizeof(name));
		m->snap_txn[m->nsnaps++] = m->counter;
	}
	if (i % 11 == 0 && m->nsnaps > 0) {
		if (txn && (rc = nvf__snapshot_delete(txn, m->snap_name[0])) != 0)
			return rc;
		memmove(&m->snap_name[0], &m->snap_name[1], (size_t)(m->nsnaps - 1) * sizeof(m->snap_name[0]));
		memmove(&m->snap_txn[0], &m->snap_txn[1], (size_t)(m->nsnaps - 1) * sizeof(uint64_t));
		m->nsnaps--;
	}
	m->counter = i;
	if (txn && (rc = nvf__tree_put(txn, &meta->d, 0, &i, 8, 0, NULL)) != 0)
		return rc;
	return 0;
}

/* Some workload transactions restore a snapshot instead: the newest one, every 9th
 * transaction. The restore is its own commit (the snapshot's state, counter and all),
 * then a commit that writes the counter: a crash in between recovers the restored
 * state, which verify_recovered() accepts too. Returns the snapshot's index in
 * states[i - 1], or -1. */
static int restore_step(const model *prev, uint64_t i)
{
	return i % 9 == 0 && prev->nsnaps > 0 ? prev->nsnaps - 1 : -1;
}

static int write_counter(nvf_txn *txn, uint64_t i)
{
	nvf_tree *meta;
	int rc = nvf__tree_open(txn, TREE_META, NVF_TREE_KIND_PLAIN, &meta);
	return rc ? rc : nvf__tree_put(txn, &meta->d, 0, &i, 8, 0, NULL);
}

static void model_init(model *m)
{
	memset(m, 0, sizeof(*m));
	for (int k = 0; k < NKEYS; k++)
		m->len[k] = -1;
}

static void workload_init(workload *w, uint32_t page_size, int ntxn, uint64_t seed)
{
	w->page_size = page_size;
	w->ntxn = ntxn;
	w->seed = seed;
	w->states = calloc((size_t)ntxn + 1, sizeof(model));
	w->hash = calloc((size_t)ntxn + 1, sizeof(uint64_t));
	model_init(&w->states[0]);
	w->hash[0] = model_hash(&w->states[0]);
	for (int i = 1; i <= ntxn; i++) {
		w->states[i] = w->states[i - 1];
		int r = restore_step(&w->states[i - 1], (uint64_t)i);
		if (r >= 0) {
			/* The snapshot's content; the snapshots as they were. */
			const model *s = &w->states[w->states[i - 1].snap_txn[r]];
			memcpy(w->states[i].len, s->len, sizeof(s->len));
			memcpy(w->states[i].ver, s->ver, sizeof(s->ver));
			w->states[i].counter = (uint64_t)i;
		} else {
			apply_txn(NULL, &w->states[i], seed, (uint64_t)i);
		}
		w->hash[i] = model_hash(&w->states[i]);
	}
}

static void make_empty(const char *path, uint32_t page_size)
{
	tu_unlink_db(path);
	nvf_open_options o = NVF_OPEN_OPTIONS_INIT;
	o.flags = NVF__OPEN_CREATE;
	o.page_size = page_size;
	nvf_db *db;
	ck_nvf(nvf_db_open(&db, path, &o));
	ck_nvf(nvf_db_close(db));
}

/* Run the workload through io until a commit fails; returns the number of
 * transactions acknowledged. */
static int run_workload(const char *path, const workload *w, const nvf_io *io)
{
	nvf_db *db;
	int rc = nvf__db_open_io(&db, path, NULL, io);
	if (rc != 0)
		return -1;
	int done = 0;
	for (int i = 1; i <= w->ntxn; i++) {
		model m = w->states[i - 1];
		nvf_txn *txn;
		int r = restore_step(&m, (uint64_t)i);
		if (r >= 0) {
			if ((rc = nvf_snapshot_restore(db, m.snap_name[r])) != 0 || (rc = nvf_txn_begin(&txn, db, 0)) != 0)
				break;
			if ((rc = write_counter(txn, (uint64_t)i)) != 0) {
				nvf_txn_abort(txn);
				break;
			}
			if ((rc = nvf_txn_commit(txn)) != 0)
				break;
			done = i;
			continue;
		}
		if ((rc = nvf_txn_begin(&txn, db, 0)) != 0)
			break;
		if ((rc = apply_txn(txn, &m, w->seed, (uint64_t)i)) != 0) {
			nvf_txn_abort(txn);
			break;
		}
		if ((rc = nvf_txn_commit(txn)) != 0)
			break;
		done = i;
	}
	nvf_db_close(db);
	return done;
}

typedef struct tally {
	long points, lost, corrupt, at_prev, at_next, restored;
} tally;

/* Every snapshot of model state m reads as the state it pinned. */
static void check_snapshots(nvf_db *db, const workload *w, const model *m, const char *what, tally *t)
{
	int rc = 0;
	for (int s = 0; s < m->nsnaps && rc == 0; s++) {
		nvf_txn *st;
		rc = nvf__snapshot_begin(&st, db, m->snap_name[s]);
		if (rc != 0) {
			fprintf(stderr, "%s: snapshot %s: %s\n", what, m->snap_name[s], nvf_errmsg());
			t->lost++;
			break;
		}
		uint64_t sc, sh;
		if (db_counter(st, &sc) != 0 || db_hash(st, &sh) != 0 || sc != m->snap_txn[s] || sh != w->hash[sc]) {
			fprintf(stderr, "%s: snapshot %s does not hold state %llu\n", what, m->snap_name[s],
				(unsigned long long)m->snap_txn[s]);
			t->lost++;
			rc = -1;
		}
		nvf_txn_abort(st);
	}
}

/* Reopen after a crash with transaction `acked` acknowledged: the state must be
 * acked's or acked+1's, pass nvf_check, and its snapshots must hold their states. */
static void verify_recovered(const char *path, const workload *w, int acked, tally *t, const char *what)
{
	nvf_db *db;
	int rc = nvf_db_open(&db, path, NULL);
	t->points++;
	if (rc != 0) {
		fprintf(stderr, "%s: open failed: %s\n", what, nvf_errmsg());
		t->corrupt++;
		return;
	}
	nvf_check_report rep;
	if ((rc = nvf_check(db, &rep)) != 0) {
		fprintf(stderr, "%s: check failed: %s\n", what, nvf_errmsg());
		t->corrupt++;
		nvf_db_close(db);
		return;
	}
	nvf_txn *txn;
	uint64_t counter = 0, h = 0;
	ck_nvf(nvf_txn_begin(&txn, db, NVF_TXN_RDONLY));
	rc = db_counter(txn, &counter);
	if (rc == 0)
		rc = db_hash(txn, &h);
	nvf_txn_abort(txn);
	if (rc != 0) {
		fprintf(stderr, "%s: read failed: %s\n", what, nvf_errmsg());
		t->corrupt++;
	} else if (acked < w->ntxn && restore_step(&w->states[acked], (uint64_t)acked + 1) >= 0 &&
		   counter == w->states[acked].snap_txn[restore_step(&w->states[acked], (uint64_t)acked + 1)] &&
		   h == w->hash[counter]) {
		/* The restore of transaction acked + 1 committed, its counter not yet. */
		t->at_next++;
		t->restored++;
		check_snapshots(db, w, &w->states[acked], what, t);
	} else if ((counter != (uint64_t)acked && counter != (uint64_t)acked + 1) || counter > (uint64_t)w->ntxn) {
		fprintf(stderr, "%s: recovered state %llu, acknowledged %d\n", what, (unsigned long long)counter, acked);
		t->lost++;
	} else if (h != w->hash[counter]) {
		fprintf(stderr, "%s: state %llu content differs from the model\n", what, (unsigned long long)counter);
		t->lost++;
	} else {
		if (counter == (uint64_t)acked)
			t->at_prev++;
		else
			t->at_next++;
		/* Every snapshot of that state reads as the state it pinned. */
		check_snapshots(db, w, &w->states[counter], what, t);
	}
	nvf_db_close(db);
}

static void crash_every_point(uint32_t page_size, int ntxn, tally *t)
{
	uint64_t seed = tu_seed("crash workload") + page_size;
	workload w;
	workload_init(&w, page_size, ntxn, seed);
	char *dir = tu_tmpdir(), *path = tu_path(dir, "crash.nvf");

	/* Reference run: count the writes and syncs and check the clean result. */
	make_empty(path, page_size);
	faultio f;
	fio_init(&f, path);
	int done = run_workload(path, &w, &f.io);
	ck_assert_int_eq(done, ntxn);
	long writes = f.writes, syncs = f.syncs;
	fio_fini(&f);
	verify_recovered(path, &w, ntxn, t, "clean run");
	ck_assert_int_eq(t->lost + t->corrupt, 0);
	fprintf(stderr, "page size %u: %d transactions, %ld writes, %ld syncs\n", page_size, ntxn, writes, syncs);

	static const enum fio_mode modes[] = {FIO_DROP, FIO_TEAR, FIO_KEEP};
	for (int kind = 0; kind < 2; kind++) {
		long n = kind == 0 ? writes : syncs;
		for (long at = 1; at <= n; at++) {
			for (size_t mi = 0; mi < NVF_ARRAY_LEN(modes); mi++) {
				make_empty(path, page_size);
				fio_init(&f, path);
				if (kind == 0)
					f.crash_write = at;
				else
					f.crash_sync = at;
				f.mode = modes[mi];
				f.rng = tu_mix(seed + (uint64_t)at * 31 + mi);
				int acked = run_workload(path, &w, &f.io);
				ck_assert_msg(f.crashed, "crash point %ld not reached", at);
				fio_fini(&f);
				char what[96];
				snprintf(what, sizeof(what), "page %u, crash at %s %ld (%s)", page_size,
					 kind == 0 ? "write" : "sync", at,
					 modes[mi] == FIO_DROP ? "drop" : modes[mi] == FIO_TEAR ? "tear" : "keep");
				verify_recovered(path, &w, acked, t, what);
			}
		}
	}
	tu_rmrf(dir);
	free(dir);
	free(path);
	free(w.states);
	free(w.hash);
}

static tally total;

START_TEST(test_recovers_after_crash_at_every_write_and_sync)
{
	crash_every_point(4096, 60, &total);
	crash_every_point(512, 60, &total);
	fprintf(stderr,
		"recovered to the acknowledged state %ld times, to the one in flight %ld times (%ld of them a "
		"snapshot restore whose counter was not yet written)\n",
		total.at_prev, total.at_next, total.restored);
	ck_assert_msg(total.lost == 0 && total.corrupt == 0, "lost %ld corrupt %ld", total.lost, total.corrupt);
	/* The workload restores snapshots, and crashes met restores half done. */
	ck_assert_int_gt(total.restored, 0);
	ck_assert_int_ge(total.points, 1000);
}
END_TEST

/* ---- the same with an HNSW collection: records through the public API ---- */

#define HIDS 150
#define HDIM 8
#define HCOUNTER 100000 /* the record whose vector[0] counts the transactions */

/* Besides the vectors, each record's document {"g": G, "v": V} (v 0: none) and three
 * tags t0..t2 (a mask); a field index on g and one on the tags must agree with them
 * after every crash (nvf_check compares every index with the documents). */
typedef struct hmodel {
	uint32_t ver[HIDS];
	bool present[HIDS];
	uint32_t g[HIDS], v[HIDS];
	uint8_t tags[HIDS];
	uint64_t counter;
} hmodel;

static void hvec(float *v, uint64_t id, uint32_t ver)
{
	uint64_t s = tu_mix(id * 31 + ver);
	for (int d = 0; d < HDIM; d++) {
		s = tu_mix(s);
		v[d] = (float)(s % 1000) / 10.0f;
	}
}

static int apply_hnsw(nvf_db *db, nvf_txn *txn, hmodel *m, uint64_t seed, uint64_t i)
{
	uint64_t rng = tu_mix(seed ^ (i * 0x51ED27u));
	float v[HDIM];
	int rc, nops = 1 + (int)tu_below(&rng, i == 1 ? 80 : 12);
	for (int op = 0; op < nops; op++) {
		uint64_t id = tu_below(&rng, HIDS);
		uint64_t what = tu_below(&rng, 6);
		if (m->present[id] && what == 3) {
			/* A new document (set) or a new v (patch). */
			bool patch = m->v[id] && tu_below(&rng, 2);
			char d[64];
			m->v[id]++;
			if (!patch)
				m->g[id] = m->v[id] % 7;
			snprintf(d, sizeof(d), patch ? "{\"v\":%u}" : "{\"g\":%u,\"v\":%u}", patch ? m->v[id] : m->g[id],
				 m->v[id]);
			if (db && (rc = patch ? nvf_meta_patch(db, txn, id, d) : nvf_meta_set(db, txn, id, d)) != 0)
				return rc;
		} else if (m->present[id] && what == 4) {
			uint8_t t = (uint8_t)tu_below(&rng, 3);
			char tag[4] = {'t', (char)('0' + t), 0, 0};
			bool add = !(m->tags[id] >> t & 1);
			if (db && (rc = add ? nvf_tag_add(db, txn, id, tag) : nvf_tag_remove(db, txn, id, tag)) != 0)
				return rc;
			m->tags[id] ^= (uint8_t)(1u << t);
		} else if (m->present[id] && what == 5 && m->v[id]) {
			if (db && (rc = nvf_meta_set(db, txn, id, NULL)) != 0)
				return rc;
			m->v[id] = m->g[id] = 0;
		} else if (m->present[id] && tu_below(&rng, 3) == 0) {
			if (db && (rc = nvf_delete(db, txn, id)) != 0)
				return rc;
			m->present[id] = false;
			m->v[id] = m->g[id] = 0;
			m->tags[id] = 0;
		} else {
			hvec(v, id, m->ver[id] + 1);
			if (db && (rc = nvf_upsert(db, txn, id, v, HDIM)) != 0)
				return rc;
			m->ver[id]++;
			m->present[id] = true;
		}
	}
	m->counter = i;
	memset(v, 0, sizeof(v));
	v[0] = (float)i;
	return db ? nvf_upsert(db, txn, HCOUNTER, v, HDIM) : 0;
}

static void make_hnsw(const char *path)
{
	tu_unlink_db(path);
	nvf_create_options o = NVF_CREATE_OPTIONS_INIT;
	o.dim = HDIM;
	o.index = NVF_INDEX_HNSW;
	o.hnsw_m = 4;
	o.hnsw_ef_construction = 16;
	o.page_size = 1024;
	o.doc_codec = NVF_CODEC_ZSTD;
	nvf_db *db;
	ck_nvf(nvf_db_create(&db, path, &o));
	ck_nvf(nvf_field_add(db, NULL, "g", NVF_FIELD_INT));
	ck_nvf(nvf_field_add(db, NULL, "tags", NVF_FIELD_TAGS));
	ck_nvf(nvf_db_close(db));
}

/* Every COMPACT_EVERY-th transaction is followed by a compaction (the new file is
 * written through io: a crash in it leaves the old file, whole, under the path; the
 * records are laid out again, links renamed) and the handle reopened; every
 * BACKUP_EVERY-th by a backup to a new file (a crash in it leaves the source as it
 * was). */
#define COMPACT_EVERY 10
#define BACKUP_EVERY 15

static int run_hnsw(const char *path, const hmodel *states, int ntxn, uint64_t seed, const nvf_io *io)
{
	nvf_db *db;
	if (nvf__db_open_io(&db, path, NULL, io) != 0)
		return -1;
	int done = 0;
	for (int i = 1; i <= ntxn; i++) {
		hmodel m = states[i - 1];
		nvf_txn *txn;
		if (nvf_txn_begin(&txn, db, 0) != 0)
			break;
		if (apply_hnsw(db, txn, &m, seed, (uint64_t)i) != 0) {
			nvf_txn_abort(txn);
			break;
		}
		if (nvf_txn_commit(txn) != 0)
			break;
		done = i;
		if (i % BACKUP_EVERY == 0) {
			char dest[4200];
			snprintf(dest, sizeof(dest), "%s.backup-%d", path, i);
			unlink(dest);
			if (nvf_db_backup(db, dest) != 0)
				break;
		}
		if (i % COMPACT_EVERY == 0) {
			if (nvf_db_compact(db) != 0)
				break;
			nvf_db_close(db);
			if (nvf__db_open_io(&db, path, NULL, io) != 0)
				return done;
		}
	}
	nvf_db_close(db);
	return done;
}

static void verify_hnsw(const char *path, const hmodel *states, int ntxn, int acked, tally *t, const char *what)
{
	nvf_db *db;
	t->points++;
	if (nvf_db_open(&db, path, NULL) != 0) {
		fprintf(stderr, "%s: open failed: %s\n", what, nvf_errmsg());
		t->corrupt++;
		return;
	}
	nvf_check_report rep;
	if (nvf_check(db, &rep) != 0) {
		fprintf(stderr, "%s: check failed: %s\n", what, rep.problem);
		t->corrupt++;
		nvf_db_close(db);
		return;
	}
	float v[HDIM], want[HDIM];
	uint64_t counter = 0;
	int rc = nvf_get(db, NULL, HCOUNTER, v, HDIM);
	if (rc == 0)
		counter = (uint64_t)v[0];
	if ((rc != 0 && rc != NVF_ENOTFOUND) || (counter != (uint64_t)acked && counter != (uint64_t)acked + 1) ||
	    counter > (uint64_t)ntxn) {
		fprintf(stderr, "%s: recovered state %llu, acknowledged %d\n", what, (unsigned long long)counter, acked);
		t->lost++;
		nvf_db_close(db);
		return;
	}
	const hmodel *m = &states[counter];
	for (uint64_t id = 0; id < HIDS; id++) {
		rc = nvf_get(db, NULL, id, v, HDIM);
		hvec(want, id, m->ver[id]);
		if (m->present[id] ? (rc != 0 || memcmp(v, want, sizeof(v)) != 0) : rc != NVF_ENOTFOUND) {
			fprintf(stderr, "%s: state %llu, id %llu differs from the model\n", what,
				(unsigned long long)counter, (unsigned long long)id);
			t->lost++;
			break;
		}
		if (!m->present[id])
			continue;
		/* The document and the tags, as the record prints them. */
		char want_rec[160], *got = NULL, tags[40] = "";
		for (int tg = 0; tg < 3; tg++)
			if (m->tags[id] >> tg & 1)
				snprintf(tags + strlen(tags), sizeof(tags) - strlen(tags), "%s\"t%d\"", tags[0] ? "," : "", tg);
		if (m->v[id])
			snprintf(want_rec, sizeof(want_rec), "\"tags\":[%s],\"meta\":{\"g\":%u,\"v\":%u}}", tags, m->g[id], m->v[id]);
		else
			snprintf(want_rec, sizeof(want_rec), "\"tags\":[%s],\"meta\":null}", tags);
		rc = nvf_record_json(db, NULL, id, 0, &got);
		if (rc != 0 || !strstr(got, want_rec)) {
			fprintf(stderr, "%s: state %llu, id %llu: record %s, want ...%s\n", what, (unsigned long long)counter,
				(unsigned long long)id, got ? got : nvf_errmsg(), want_rec);
			nvf_free(got);
			t->lost++;
			break;
		}
		nvf_free(got);
	}
	if (counter == (uint64_t)acked)
		t->at_prev++;
	else
		t->at_next++;
	nvf_db_close(db);
}

static void crash_every_point_hnsw(int ntxn, tally *t)
{
	uint64_t seed = tu_seed("crash hnsw workload");
	hmodel *states = calloc((size_t)ntxn + 1, sizeof(hmodel));
	for (int i = 1; i <= ntxn; i++) {
		states[i] = states[i - 1];
		apply_hnsw(NULL, NULL, &states[i], seed, (uint64_t)i);
	}
	char *dir = tu_tmpdir(), *path = tu_path(dir, "hnsw.nvf");
	make_hnsw(path);
	faultio f;
	fio_init(&f, path);
	ck_assert_int_eq(run_hnsw(path, states, ntxn, seed, &f.io), ntxn);
	long writes = f.writes, syncs = f.syncs;
	fio_fini(&f);
	verify_hnsw(path, states, ntxn, ntxn, t, "clean run");
	ck_assert_int_eq(t->lost + t->corrupt, 0);
	fprintf(stderr, "hnsw: %d transactions, %ld writes, %ld syncs\n", ntxn, writes, syncs);
	static const enum fio_mode modes[] = {FIO_DROP, FIO_TEAR, FIO_KEEP};
	for (int kind = 0; kind < 2; kind++) {
		long n = kind == 0 ? writes : syncs;
		for (long at = 1; at <= n; at++) {
			for (size_t mi = 0; mi < NVF_ARRAY_LEN(modes); mi++) {
				make_hnsw(path);
				fio_init(&f, path);
				if (kind == 0)
					f.crash_write = at;
				else
					f.crash_sync = at;
				f.mode = modes[mi];
				f.rng = tu_mix(seed + (uint64_t)at * 17 + mi);
				int acked = run_hnsw(path, states, ntxn, seed, &f.io);
				ck_assert_msg(f.crashed, "crash point %ld not reached", at);
				fio_fini(&f);
				char what[96];
				snprintf(what, sizeof(what), "hnsw, crash at %s %ld (%s)", kind == 0 ? "write" : "sync", at,
					 modes[mi] == FIO_DROP ? "drop" : modes[mi] == FIO_TEAR ? "tear" : "keep");
				verify_hnsw(path, states, ntxn, acked, t, what);
			}
		}
	}
	tu_rmrf(dir);
	free(dir);
	free(path);
	free(states);
}

START_TEST(test_hnsw_recovers_after_crash_at_every_write_and_sync)
{
	tally t = {0};
	crash_every_point_hnsw(40, &t);
	fprintf(stderr, "hnsw: %ld crash points, recovered to the acknowledged state %ld times, to the one in flight %ld\n",
		t.points, t.at_prev, t.at_next);
	total.points += t.points;
	total.lost += t.lost;
	total.corrupt += t.corrupt;
	ck_assert_msg(t.lost == 0 && t.corrupt == 0, "lost %ld corrupt %ld", t.lost, t.corrupt);
}
END_TEST

START_TEST(test_failed_write_leaves_last_commit_intact)
{
	/* An I/O error (not a crash) fails the commit; the handle stays usable and the
	 * next commit succeeds. */
	uint64_t seed = tu_seed("failed write");
	workload w;
	workload_init(&w, 4096, 5, seed);
	char *dir = tu_tmpdir(), *path = tu_path(dir, "fail.nvf");
	make_empty(path, 4096);
	faultio f;
	fio_init(&f, path);
	nvf_db *db;
	ck_nvf(nvf__db_open_io(&db, path, NULL, &f.io));
	nvf_txn *txn;
	model m = w.states[0];
	ck_nvf(nvf_txn_begin(&txn, db, 0));
	ck_nvf(apply_txn(txn, &m, seed, 1));
	f.fail_write = f.writes + 1;
	ck_assert_int_eq(nvf_txn_commit(txn), -EIO);
	ck_assert_ptr_nonnull(strstr(nvf_errmsg(), "cannot write"));
	m = w.states[0];
	ck_nvf(nvf_txn_begin(&txn, db, 0));
	ck_nvf(apply_txn(txn, &m, seed, 1));
	ck_nvf(nvf_txn_commit(txn));
	ck_nvf(nvf_check(db, NULL));
	ck_nvf(nvf_db_close(db));
	fio_fini(&f);
	tally t = {0};
	verify_recovered(path, &w, 1, &t, "after a failed write");
	ck_assert_int_eq(t.lost + t.corrupt, 0);
	tu_rmrf(dir);
	free(dir);
	free(path);
	free(w.states);
	free(w.hash);
}
END_TEST

/* ---- real crashes: SIGKILL ---- */

static void child_loop(const char *path, model *m, uint64_t seed, int wfd)
{
	nvf_db *db;
	if (nvf_db_open(&db, path, NULL) != 0)
		_exit(3);
	for (uint64_t i = m->counter + 1;; i++) {
		nvf_txn *txn;
		if (nvf_txn_begin(&txn, db, NVF_TXN_WAIT) != 0)
			_exit(4);
		if (apply_txn(txn, m, seed, i) != 0)
			_exit(5);
		if (nvf_txn_commit(txn) != 0)
			_exit(6);
		if (write(wfd, &i, sizeof(i)) != (ssize_t)sizeof(i))
			_exit(7);
	}
}

START_TEST(test_recovers_after_kill_9_at_random_moments)
{
	uint64_t seed = tu_seed("kill -9");
	uint64_t rng = seed;
	char *dir = tu_tmpdir(), *path = tu_path(dir, "kill.nvf");
	make_empty(path, 4096);
	model m;
	model_init(&m);
	int kills = 0, mid_commit = 0;
	for (int round = 0; round < 120; round++) {
		int p[2];
		ck_assert_int_eq(pipe(p), 0);
		pid_t pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			close(p[0]);
			child_loop(path, &m, seed, p[1]);
		}
		close(p[1]);
		struct timespec d = {0, (long)(1 + tu_below(&rng, 40)) * 1000000L};
		nanosleep(&d, NULL);
		kill(pid, SIGKILL);
		int status;
		waitpid(pid, &status, 0);
		ck_assert_msg(WIFSIGNALED(status), "child exited by itself with %d", WEXITSTATUS(status));
		kills++;
		uint64_t acked = m.counter, x;
		while (read(p[0], &x, sizeof(x)) == (ssize_t)sizeof(x))
			acked = x;
		close(p[0]);

		nvf_db *db;
		ck_nvf(nvf_db_open(&db, path, NULL));
		nvf_check_report rep;
		int rc = nvf_check(db, &rep);
		ck_assert_msg(rc == 0, "round %d: check: %s", round, rep.problem);
		nvf_txn *txn;
		uint64_t counter, h;
		ck_nvf(nvf_txn_begin(&txn, db, NVF_TXN_RDONLY));
		ck_nvf(db_counter(txn, &counter));
		ck_nvf(db_hash(txn, &h));
		nvf_txn_abort(txn);
		ck_assert_msg(counter == acked || counter == acked + 1, "round %d: state %llu, acknowledged %llu", round,
			      (unsigned long long)counter, (unsigned long long)acked);
		mid_commit += counter == acked + 1;
		while (m.counter < counter)
			apply_txn(NULL, &m, seed, m.counter + 1);
		ck_assert_msg(h == model_hash(&m), "round %d: state %llu differs from the model", round,
			      (unsigned long long)counter);
		ck_nvf(nvf_db_close(db));
	}
	fprintf(stderr, "kill -9: %d kills, %llu transactions, %d killed between commit and acknowledgement\n", kills,
		(unsigned long long)m.counter, mid_commit);
	total.points += kills;
	ck_assert_int_ge(kills, 100);
	ck_assert_uint_gt(m.counter, 100);
	tu_rmrf(dir);
	free(dir);
	free(path);
}
END_TEST

START_TEST(test_prints_summary)
{
	/* Runs last, in the same process as the others (CK_FORK=no in meson). */
	printf("crash-points: %ld lost: %ld corrupt: %ld\n", total.points, total.lost, total.corrupt);
	fflush(stdout);
	ck_assert_int_ge(total.points, 1000);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("crash");
	TCase *tc = tcase_create("crash");
	tcase_set_timeout(tc, 1800);
	tcase_add_test(tc, test_recovers_after_crash_at_every_write_and_sync);
	tcase_add_test(tc, test_hnsw_recovers_after_crash_at_every_write_and_sync);
	tcase_add_test(tc, test_failed_write_leaves_last_commit_intact);
	tcase_add_test(tc, test_recovers_after_kill_9_at_random_moments);
	tcase_add_test(tc, test_prints_summary);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
