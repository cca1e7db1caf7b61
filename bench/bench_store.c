/* bench store: the page store itself (B+tree puts, commits), in one run:
 *  - commit latency of small transactions (one 100-byte value into a tree of 10,000
 *    keys), with full durability and with NOSYNC: median, 99th percentile, mean;
 *  - bulk write throughput: one transaction of 256 MiB in 1 MiB values, committed
 *    with full durability, in MB/s;
 *  - the same bytes written sequentially to a plain file in 1 MiB writes and synced
 *    (dd conv=fdatasync), in MB/s, and the ratio of the two. */
#include "benchutil.h"
#include "nvf_int.h"

#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <unistd.h>

static const char *dir = ".";
static int small_full = 300, small_nosync = 3000;
static uint64_t bulk_mib = 256;

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "bench_store: %s: %s (%s)\n", what, nvf_strerror(rc), nvf_errmsg());
	exit(1);
}

static nvf_db *fresh(const char *name, int durability)
{
	char path[4096], lock[4200];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(lock, sizeof(lock), "%s-lock", path);
	unlink(path);
	unlink(lock);
	nvf_open_options o = NVF_OPEN_OPTIONS_INIT;
	o.flags = NVF__OPEN_CREATE;
	o.durability = durability;
	nvf_db *db;
	int rc = nvf_db_open(&db, path, &o);
	if (rc != 0)
		die("open", rc);
	return db;
}

static void small_commits(int durability, int n)
{
	nvf_db *db = fresh("store-small.nvf", durability);
	uint8_t val[100];
	memset(val, 7, sizeof(val));
	/* A tree of 10,000 keys first, so that each commit copies a real path. */
	nvf_txn *txn;
	nvf_tree *t;
	int rc = nvf_txn_begin(&txn, db, 0);
	if (rc == 0)
		rc = nvf__tree_open(txn, 1, NVF_TREE_KIND_PLAIN, &t);
	for (uint64_t k = 0; k < 10000 && rc == 0; k++)
		rc = nvf__tree_put(txn, &t->d, k * 7919 % 10000, val, sizeof(val), 0, NULL);
	if (rc != 0 || (rc = nvf_txn_commit(txn)) != 0)
		die("load", rc);
	double *lat = malloc((size_t)n * sizeof(double));
	uint64_t rng = 1;
	for (int i = 0; i < n; i++) {
		rng = rng * 6364136223846793005u + 1442695040888963407u;
		double t0 = bench_now();
		if ((rc = nvf_txn_begin(&txn, db, 0)) != 0 || (rc = nvf__tree_open(txn, 1, -1, &t)) != 0 ||
		    (rc = nvf__tree_put(txn, &t->d, (rng >> 33) % 10000, val, sizeof(val), 0, NULL)) != 0 ||
		    (rc = nvf_txn_commit(txn)) != 0)
			die("small commit", rc);
		lat[i] = (bench_now() - t0) * 1e6;
	}
	qsort(lat, (size_t)n, sizeof(double), cmp_d);
	double sum = 0;
	for (int i = 0; i < n; i++)
		sum += lat[i];
	const char *mode = durability == NVF_DURABILITY_FULL ? "full" : "nosync";
	char metric[64], note[64];
	snprintf(note, sizeof(note), "%d commits of one 100-byte put", n);
	snprintf(metric, sizeof(metric), "commit_latency_p50_%s", mode);
	bench_emit("store", "nusterdb", "synthetic", metric, lat[n / 2], "us", note);
	snprintf(metric, sizeof(metric), "commit_latency_p99_%s", mode);
	bench_emit("store", "nusterdb", "synthetic", metric, lat[(size_t)n * 99 / 100], "us", note);
	snprintf(metric, sizeof(metric), "commit_latency_mean_%s", mode);
	bench_emit("store", "nusterdb", "synthetic", metric, sum / n, "us", note);
	free(lat);
	nvf_db_close(db);
}

static double bulk_nvf(void)
{
	nvf_db *db = fresh("store-bulk.nvf", NVF_DURABILITY_FULL);
	size_t chunk = 1 << 20;
	uint8_t *buf = malloc(chunk);
	for (size_t i = 0; i < chunk; i++)
		buf[i] = (uint8_t)(i * 131);
	double t0 = bench_now();
	nvf_txn *txn;
	nvf_tree *t;
	int rc = nvf_txn_begin(&txn, db, 0);
	if (rc == 0)
		rc = nvf__tree_open(txn, 1, NVF_TREE_KIND_PLAIN, &t);
	for (uint64_t k = 0; k < bulk_mib && rc == 0; k++)
		rc = nvf__tree_put(txn, &t->d, k, buf, chunk, 0, NULL);
	if (rc != 0 || (rc = nvf_txn_commit(txn)) != 0)
		die("bulk", rc);
	double secs = bench_now() - t0;
	free(buf);
	nvf_db_close(db);
	return (double)(bulk_mib << 20) / secs / 1e6;
}

static double bulk_dd(void)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/store-dd.bin", dir);
	unlink(path);
	size_t chunk = 1 << 20;
	uint8_t *buf = malloc(chunk);
	for (size_t i = 0; i < chunk; i++)
		buf[i] = (uint8_t)(i * 131);
	double t0 = bench_now();
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		perror(path);
		exit(1);
	}
	for (uint64_t k = 0; k < bulk_mib; k++)
		if (write(fd, buf, chunk) != (ssize_t)chunk) {
			perror("write");
			exit(1);
		}
	fdatasync(fd);
	close(fd);
	double secs = bench_now() - t0;
	unlink(path);
	free(buf);
	return (double)(bulk_mib << 20) / secs / 1e6;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'},     {"dir", required_argument, NULL, 'd'},
		{"quick", no_argument, NULL, 'q'},    {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;
	while ((c = getopt_long(argc, argv, "jd:qh", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			bench_json = true;
			break;
		case 'd':
			dir = optarg;
			break;
		case 'q':
			small_full = 50;
			small_nosync = 300;
			bulk_mib = 32;
			break;
		case 'h':
			printf("usage: bench_store [--json] [--dir DIR] [--quick]\n");
			return 0;
		default:
			return 2;
		}
	}
	bench_header();
	small_commits(NVF_DURABILITY_FULL, small_full);
	small_commits(NVF_DURABILITY_NOSYNC, small_nosync);
	/* Alternate the two bulk writers and keep each one's best of three, so that
	 * neither is favoured by the page cache's state. */
	double nvf = 0, dd = 0;
	for (int round = 0; round < 3; round++) {
		double a = bulk_dd(), b = bulk_nvf();
		dd = a > dd ? a : dd;
		nvf = b > nvf ? b : nvf;
	}
	char note[96];
	snprintf(note, sizeof(note), "%llu MiB in 1 MiB values, one transaction, synced; best of 3",
		 (unsigned long long)bulk_mib);
	bench_emit("store", "nusterdb", "synthetic", "bulk_write_throughput", nvf, "MB/s", note);
	snprintf(note, sizeof(note), "%llu MiB in 1 MiB writes + fdatasync; best of 3", (unsigned long long)bulk_mib);
	bench_emit("store", "dd", "synthetic", "bulk_write_throughput", dd, "MB/s", note);
	bench_emit("store", "nusterdb", "synthetic", "bulk_write_vs_dd", nvf / dd, "ratio", "higher is better, 1.0 = dd");
	char path[4096];
	snprintf(path, sizeof(path), "%s/store-bulk.nvf", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/store-small.nvf", dir);
	unlink(path);
	return 0;
}
