/* The example of docs/API.md: create a collection, insert, search, read back.
 * Built and run by the test suite (suite "unit": "example_quickstart" in the tree,
 * "install" against the installed header and libnvf.pc). */
#include <math.h>
#include <nvf.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define DIM 4

static int fail(const char *what, int rc)
{
	fprintf(stderr, "%s: %s (%s)\n", what, nvf_strerror(rc), nvf_errmsg());
	return 1;
}

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "quickstart.nvf";
	unlink(path);

	nvf_create_options co = NVF_CREATE_OPTIONS_INIT;
	co.dim = DIM;
	co.metric = NVF_METRIC_COSINE;
	nvf_db *db;
	int rc = nvf_db_create(&db, path, &co);
	if (rc != 0)
		return fail("create", rc);

	/* Three vectors in one transaction: ids 0, 1, 2 are assigned. */
	const float vecs[3 * DIM] = {1, 0, 0, 0, 0, 1, 0, 0, 1, 1, 0, 0};
	uint64_t ids[3];
	if ((rc = nvf_insert_batch(db, NULL, vecs, 3, DIM, NULL, ids)) != 0)
		return fail("insert", rc);

	/* An explicit transaction: several writes, one commit. */
	nvf_txn *txn;
	if ((rc = nvf_txn_begin(&txn, db, 0)) != 0)
		return fail("begin", rc);
	const float v100[DIM] = {0, 0, 1, 0};
	if ((rc = nvf_add(db, txn, 100, v100, DIM)) != 0) {
		nvf_txn_abort(txn);
		return fail("write", rc);
	}
	/* A vector refused for its input (here: a NaN) changes nothing, and the
	 * transaction goes on: the add above and the delete below both commit. */
	const float nan_vec[DIM] = {0, NAN, 0, 0};
	int refused = nvf_add(db, txn, 101, nan_vec, DIM);
	printf("adding a NaN vector: %s: %s\n", nvf_strerror(refused), nvf_errmsg());
	if ((rc = nvf_delete(db, txn, 1)) != 0) {
		nvf_txn_abort(txn);
		return fail("write", rc);
	}
	if ((rc = nvf_txn_commit(txn)) != 0)
		return fail("commit", rc);

	/* The two nearest to (1, 0.5, 0, 0), by cosine distance. */
	const float q[DIM] = {1, 0.5f, 0, 0};
	nvf_result res[2];
	size_t n;
	if ((rc = nvf_search(db, NULL, q, DIM, 2, NULL, res, &n)) != 0)
		return fail("search", rc);
	for (size_t i = 0; i < n; i++)
		printf("id %llu distance %.4f\n", (unsigned long long)res[i].id, res[i].distance);

	/* Bad input is refused with a code and a message, and writes nothing. */
	const float bad[DIM] = {1, 0, 0, 0};
	rc = nvf_add(db, NULL, 100, bad, DIM);
	printf("adding id 100 again: %s: %s\n", nvf_strerror(rc), nvf_errmsg());

	uint64_t count;
	nvf_count(db, NULL, &count);
	printf("%llu records\n", (unsigned long long)count);
	int ok = n == 2 && res[0].id == 2 && res[1].id == 0 && rc == NVF_EEXIST && refused == NVF_EINVAL && count == 3;
	nvf_db_close(db);
	unlink(path);
	return ok ? 0 : 1;
}
