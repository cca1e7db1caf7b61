/* The in-process peer of bench/nusterfs.bench: one nvf_search_batch of a query file
 * against a database, after a warm-up batch, with every core. Prints the queries per
 * second of the timed batch. Usage: bench_nusterfs DB QUERIES.npy K */
#include <nvf.h>

#include "benchutil.h"
#include "vecfile.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: bench_nusterfs DB QUERIES.npy K\n");
		return 2;
	}
	char err[VECFILE_ERRLEN];
	size_t nq, dim, k = (size_t)atoi(argv[3]);
	float *q = vecfile_load(argv[2], VF_AUTO, 0, &nq, &dim, err);
	if (!q) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	nvf_open_options oo = NVF_OPEN_OPTIONS_INIT;
	oo.flags = NVF_OPEN_RDONLY;
	nvf_db *db;
	int rc = nvf_db_open(&db, argv[1], &oo);
	nvf_result *r = malloc(nq * k * sizeof(*r));
	if (rc != 0 || !r) {
		fprintf(stderr, "%s: %s\n", argv[1], nvf_strerror(rc));
		return 1;
	}
	size_t warm = nq < 200 ? nq : 200;
	rc = nvf_search_batch(db, NULL, q, warm, dim, k, NULL, r);
	double t0 = bench_now();
	if (rc == 0)
		rc = nvf_search_batch(db, NULL, q, nq, dim, k, NULL, r);
	double secs = bench_now() - t0;
	if (rc != 0) {
		fprintf(stderr, "search: %s\n", nvf_errmsg());
		return 1;
	}
	printf("%.3f\n", (double)nq / secs);
	free(r);
	free(q);
	nvf_db_close(db);
	return 0;
}
