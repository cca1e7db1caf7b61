/* bench store, part 2: snapshots, diff and compact, in one run.
 *  - snapshot create, restore and delete, each in its own committed transaction
 *    (full durability: the fsyncs are in the time), at 10,000, 60,000 and 1,000,000
 *    records of 96 float32 (synthetic, flat; the 1M file is built once into DIR and
 *    reused): the time should not grow with N;
 *  - diff between a snapshot and the current state after 100 changed records, at
 *    each N: the time should not grow with N either;
 *  - compact of a 60,000-record HNSW file (Fashion-MNIST, M 16) after deleting half
 *    its records (no snapshots: the rows are packed), against `cp` of the same file followed by fsync (goal: at most 2x),
 *    and its size against a fresh build of the remaining records (goal: at most
 *    1.05x). */
#include "benchutil.h"
#include "vecfile.h"

#include <nvf.h>

#include <fcntl.h>
#include <getopt.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DIM 96

static const char *dir = ".";

static void die(const char *what, int rc)
{
	fprintf(stderr, "bench_snap: %s: %s (%s)\n", what, nvf_strerror(rc), nvf_errmsg());
	exit(1);
}

static void path_of(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", dir, name);
}

static void remove_db(const char *path)
{
	char lock[4200];
	snprintf(lock, sizeof(lock), "%s-lock", path);
	unlink(path);
	unlink(lock);
}

static uint64_t fsize(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static uint64_t rng = 0x9e3779b97f4a7c15u;
static float frand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (float)(rng >> 40) / (float)(1u << 24);
}

/* A flat file of n random records (built once, then reused if it holds n). */
static nvf_db *synthetic(uint64_t n)
{
	char path[4096];
	char name[64];
	snprintf(name, sizeof(name), "snap-%llu.nvf", (unsigned long long)n);
	path_of(path, sizeof(path), name);
	nvf_db *db;
	uint64_t have = 0;
	if (nvf_db_open(&db, path, NULL) == 0) {
		nvf_snapshot_info *s;
		size_t ns;
		if (nvf_count(db, NULL, &have) == 0 && have == n && nvf_snapshot_list(db, NULL, &s, &ns) == 0) {
			for (size_t i = 0; i < ns; i++)
				nvf_snapshot_delete(db, NULL, s[i].name);
			nvf_free(s);
			return db;
		}
		nvf_db_close(db);
	}
	remove_db(path);
	nvf_create_options co = NVF_CREATE_OPTIONS_INIT;
	co.dim = DIM;
	co.durability = NVF_DURABILITY_NOSYNC;
	int rc = nvf_db_create(&db, path, &co);
	if (rc != 0)
		die("create", rc);
	size_t chunk = 100000;
	float *v = malloc(chunk * DIM * sizeof(float));
	nvf_txn *t;
	if ((rc = nvf_txn_begin(&t, db, 0)) != 0)
		die("begin", rc);
	for (uint64_t done = 0; done < n; done += chunk) {
		size_t m = n - done < chunk ? (size_t)(n - done) : chunk;
		for (size_t i = 0; i < m * DIM; i++)
			v[i] = frand();
		if ((rc = nvf_insert_batch(db, t, v, m, DIM, NULL, NULL)) != 0)
			die("insert", rc);
	}
	if ((rc = nvf_txn_commit(t)) != 0 || (rc = nvf_db_sync(db)) != 0)
		die("commit", rc);
	free(v);
	nvf_db_close(db);
	if ((rc = nvf_db_open(&db, path, NULL)) != 0)
		die("open", rc);
	return db;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void snapshots(uint64_t n)
{
	nvf_db *db = synthetic(n);
	char ds[32];
	snprintf(ds, sizeof(ds), "synthetic-%lluk-96", (unsigned long long)(n / 1000));
	enum { R = 5 };
	double create[R], restore[R], del[R], diff[R];
	float v[DIM];
	for (int r = 0; r < R; r++) {
		double t0 = bench_now();
		int rc = nvf_snapshot_create(db, NULL, "bench", NULL, NULL);
		create[r] = bench_now() - t0;
		if (rc != 0)
			die("snapshot create", rc);
		/* 100 records change (their vectors), in one transaction. */
		nvf_txn *t;
		if ((rc = nvf_txn_begin(&t, db, 0)) != 0)
			die("begin", rc);
		for (int i = 0; i < 100 && rc == 0; i++) {
			for (int c = 0; c < DIM; c++)
				v[c] = frand();
			rc = nvf_update(db, t, (uint64_t)(frand() * (float)(n - 1)), v, DIM);
		}
		if (rc != 0 || (rc = nvf_txn_commit(t)) != 0)
			die("update", rc);
		nvf_txn *a, *b;
		nvf_diff_entry *d;
		size_t nd;
		if ((rc = nvf_txn_begin_snapshot(&a, db, "bench")) != 0 || (rc = nvf_txn_begin(&b, db, NVF_TXN_RDONLY)) != 0)
			die("begin", rc);
		t0 = bench_now();
		rc = nvf_diff(db, a, b, &d, &nd);
		diff[r] = bench_now() - t0;
		if (rc != 0)
			die("diff", rc);
		if (nd == 0 || nd > 100) {
			fprintf(stderr, "bench_snap: diff found %zu changed records, expected 1 to 100\n", nd);
			exit(1);
		}
		nvf_free(d);
		nvf_txn_abort(a);
		nvf_txn_abort(b);
		t0 = bench_now();
		rc = nvf_snapshot_restore(db, "bench");
		restore[r] = bench_now() - t0;
		if (rc != 0)
			die("restore", rc);
		t0 = bench_now();
		rc = nvf_snapshot_delete(db, NULL, "bench");
		del[r] = bench_now() - t0;
		if (rc != 0)
			die("delete", rc);
	}
	const char *names[4] = {"snapshot_create_ms", "diff_100_changes_ms", "snapshot_restore_ms", "snapshot_delete_ms"};
	double *all[4] = {create, diff, restore, del};
	const char *notes[4] = {
		"nvf_snapshot_create in its own committed transaction (fsync included), median of 5",
		"nvf_diff between the snapshot and the state after 100 records got new vectors, median of 5",
		"nvf_snapshot_restore after those 100 changes, one committed transaction (fsync included), median of 5",
		"nvf_snapshot_delete, one committed transaction (fsync included), median of 5"};
	for (int m = 0; m < 4; m++) {
		qsort(all[m], R, sizeof(double), cmp_d);
		bench_emit("store", "nusterdb", ds, names[m], all[m][R / 2] * 1e3, "ms", notes[m]);
	}
	nvf_db_close(db);
}

/* cp SRC DST and fsync, as a user would copy the file. */
static double cp_time(const char *src, const char *dst)
{
	unlink(dst);
	char cmd[3 * 4096 + 64];
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s' && sync -f '%s'", src, dst, dst);
	double t0 = bench_now();
	if (system(cmd) != 0) {
		fprintf(stderr, "bench_snap: %s failed\n", cmd);
		exit(1);
	}
	double t = bench_now() - t0;
	unlink(dst);
	return t;
}

static nvf_db *hnsw_file(const char *path, const float *x, const uint64_t *ids, size_t n, size_t dim)
{
	remove_db(path);
	nvf_create_options co = NVF_CREATE_OPTIONS_INIT;
	co.dim = (uint32_t)dim;
	co.index = NVF_INDEX_HNSW;
	nvf_db *db;
	int rc = nvf_db_create(&db, path, &co);
	nvf_txn *t;
	if (rc != 0 || (rc = nvf_txn_begin(&t, db, 0)) != 0)
		die("create", rc);
	for (size_t i = 0; i < n && rc == 0; i += 5000) {
		size_t m = n - i < 5000 ? n - i : 5000;
		if (ids) {
			/* Those ids, their own vectors. */
			for (size_t j = 0; j < m && rc == 0; j++)
				rc = nvf_upsert(db, t, ids[i + j], x + ids[i + j] * dim, dim);
		} else {
			rc = nvf_insert_batch(db, t, x + i * dim, m, dim, NULL, NULL);
		}
	}
	if (rc != 0 || (rc = nvf_txn_commit(t)) != 0)
		die("build", rc);
	return db;
}

static void compact_vs_cp(void)
{
	const char *data = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz";
	char err[VECFILE_ERRLEN];
	size_t n, dim;
	float *x = vecfile_load(data, 0, 0, &n, &dim, err);
	if (!x) {
		fprintf(stderr, "bench_snap: %s\n", err);
		exit(1);
	}
	char full[4096], fresh[4096], copy[4096];
	path_of(full, sizeof(full), "compact-60k.nvf");
	path_of(fresh, sizeof(fresh), "compact-fresh-30k.nvf");
	path_of(copy, sizeof(copy), "compact-cp.nvf");
	nvf_db *db = hnsw_file(full, x, NULL, n, dim);
	/* Delete every other record. */
	nvf_txn *t;
	int rc = nvf_txn_begin(&t, db, 0);
	for (uint64_t id = 0; id < n && rc == 0; id += 2)
		rc = nvf_delete(db, t, id);
	if (rc != 0 || (rc = nvf_txn_commit(t)) != 0)
		die("delete half", rc);
	uint64_t before = fsize(full);
	double cp = cp_time(full, copy);
	double t0 = bench_now();
	if ((rc = nvf_db_compact(db)) != 0)
		die("compact", rc);
	double comp = bench_now() - t0;
	nvf_db_close(db);
	uint64_t after = fsize(full);
	/* The remaining records built afresh (odd ids, their vectors, in order). */
	uint64_t *ids = malloc(n / 2 * sizeof(uint64_t));
	for (size_t i = 0; i < n / 2; i++)
		ids[i] = 2 * i + 1;
	nvf_db *f = hnsw_file(fresh, x, ids, n / 2, dim);
	nvf_db_close(f);
	uint64_t fsz = fsize(fresh);
	char note[256];
	const char *ds = "fashion-mnist-784";
	snprintf(note, sizeof(note), "HNSW M 16, 60,000 records, every other one deleted: %llu bytes before",
		 (unsigned long long)before);
	bench_emit("store", "nusterdb", ds, "compact_seconds", comp, "s", "nvf_db_compact: copy, fsync, rename");
	bench_emit("store", "cp", ds, "copy_seconds", cp, "s", "cp of the same file, then sync -f (page cache warm)");
	bench_emit("store", "nusterdb", ds, "compact_time_ratio_vs_cp", comp / cp, "ratio", "goal <= 2");
	bench_emit("store", "nusterdb", ds, "compacted_bytes", (double)after, "bytes", note);
	bench_emit("store", "nusterdb", ds, "fresh_build_bytes", (double)fsz, "bytes",
		   "the 30,000 remaining records inserted into a new HNSW file");
	bench_emit("store", "nusterdb", ds, "compact_size_ratio_vs_fresh", (double)after / (double)fsz, "ratio",
		   "goal <= 1.05");
	free(ids);
	free(x);
	remove_db(full);
	remove_db(fresh);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'},
		{"dir", required_argument, NULL, 'd'},
		{"quick", no_argument, NULL, 'q'},
		{NULL, 0, NULL, 0},
	};
	bool quick = false;
	int c;
	while ((c = getopt_long(argc, argv, "jd:q", opts, NULL)) != -1) {
		if (c == 'j')
			bench_json = true;
		else if (c == 'd')
			dir = optarg;
		else if (c == 'q')
			quick = true;
		else
			return 2;
	}
	bench_header();
	snapshots(10000);
	snapshots(60000);
	if (!quick)
		snapshots(1000000);
	compact_vs_cp();
	return 0;
}
