/* Records and exact search against a model: random inserts, adds, upserts, updates,
 * deletes and batches over many transactions, with every metric; searches compared
 * with a brute force over the model (tie-aware); every kind of bad input refused with
 * its own code and nothing written. */
#include "coll.h"
#include "testutil.h"

#include <math.h>

#define DIM 19
#define MAXID 400

TU_DB_FIXTURE("r.nvf")

typedef struct model {
	bool present[MAXID];
	float v[MAXID][DIM];
	uint64_t count;
} model;

static nvf_db *make(int metric, int durability)
{
	nvf_create_options o = NVF_CREATE_OPTIONS_INIT;
	o.dim = DIM;
	o.metric = metric;
	o.durability = durability;
	o.page_size = 1024;
	nvf_db *db;
	tu_unlink_db(path);
	ck_nvf(nvf_db_create(&db, path, &o));
	return db;
}

static void rand_vec(uint64_t *rng, float *v, int metric)
{
	for (int i = 0; i < DIM; i++) {
		/* Small integers make exact ties likely: the tie rules get exercised. */
		float x = (float)((int)tu_below(rng, 7) - 3);
		v[i] = metric == NVF_METRIC_JACCARD ? fabsf(x) : x;
	}
}

static int cmp_res(const void *a, const void *b)
{
	const nvf_result *x = a, *y = b;
	if (x->distance != y->distance)
		return x->distance < y->distance ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* Compare search results with a brute force over the model: same distances rank by
 * rank, and every id returned is present with the distance claimed. */
static void check_search(nvf_db *db, nvf_txn *txn, const model *m, int metric, const float *q, size_t k,
			 const nvf_result *got, size_t ngot)
{
	nvf_result all[MAXID];
	size_t n = 0;
	for (uint64_t id = 0; id < MAXID; id++) {
		if (!m->present[id])
			continue;
		float d;
		ck_nvf(nvf_distance(metric, q, m->v[id], DIM, &d));
		all[n++] = (nvf_result){id, d};
	}
	qsort(all, n, sizeof(all[0]), cmp_res);
	tu_eq(ngot, k < n ? k : n);
	for (size_t i = 0; i < ngot; i++) {
		float want = all[i].distance, tol = 1e-4f * (1 + fabsf(want));
		tu_assert(fabsf(got[i].distance - want) <= tol, "rank %zu: distance %g, want %g (metric %d)", i,
			  (double)got[i].distance, (double)want, metric);
		tu_assert(got[i].id < MAXID && m->present[got[i].id], "rank %zu: id %llu not present", i,
			  (unsigned long long)got[i].id);
		float d;
		ck_nvf(nvf_distance(metric, q, m->v[got[i].id], DIM, &d));
		tu_assert(fabsf(d - got[i].distance) <= tol, "rank %zu: id %llu is at %g, reported %g", i,
			  (unsigned long long)got[i].id, (double)d, (double)got[i].distance);
		if (i > 0)
			tu_assert(cmp_res(&got[i - 1], &got[i]) <= 0 || fabsf(got[i - 1].distance - got[i].distance) <= tol,
				  "results not nearest first");
	}
	(void)db;
	(void)txn;
}

static void run_model(int metric)
{
	uint64_t rng = tu_seed(nvf_metric_name(metric)) + (uint64_t)metric;
	nvf_db *db = make(metric, NVF_DURABILITY_NOSYNC);
	static model committed, work;
	memset(&committed, 0, sizeof(committed));
	float v[DIM], batch[30 * DIM];
	uint64_t ids[30];
	for (int t = 0; t < 120; t++) {
		nvf_txn *txn;
		ck_nvf(nvf_txn_begin(&txn, db, 0));
		work = committed;
		int nops = 1 + (int)tu_below(&rng, 30);
		for (int op = 0; op < nops; op++) {
			uint64_t id = tu_below(&rng, MAXID), r = tu_below(&rng, 100);
			rand_vec(&rng, v, metric);
			if (r < 25) {
				int rc = nvf_add(db, txn, id, v, DIM);
				if (work.present[id]) {
					tu_eq(rc, NVF_EEXIST);
					continue;
				}
				ck_nvf(rc);
				work.present[id] = true;
				work.count++;
				memcpy(work.v[id], v, sizeof(v));
			} else if (r < 45) {
				ck_nvf(nvf_upsert(db, txn, id, v, DIM));
				work.count += !work.present[id];
				work.present[id] = true;
				memcpy(work.v[id], v, sizeof(v));
			} else if (r < 55) {
				int rc = nvf_update(db, txn, id, v, DIM);
				if (!work.present[id]) {
					tu_eq(rc, NVF_ENOTFOUND);
					continue;
				}
				ck_nvf(rc);
				memcpy(work.v[id], v, sizeof(v));
			} else if (r < 80) {
				int rc = nvf_delete(db, txn, id);
				if (!work.present[id]) {
					tu_eq(rc, NVF_ENOTFOUND);
					continue;
				}
				ck_nvf(rc);
				work.present[id] = false;
				work.count--;
			} else if (r < 88) {
				/* A batch of new ids (explicit), all absent. */
				size_t nb = 0;
				for (uint64_t cand = tu_below(&rng, MAXID); nb < 1 + tu_below(&rng, 30) && cand < MAXID;
				     cand += 1 + tu_below(&rng, 5)) {
					if (work.present[cand])
						continue;
					ids[nb] = cand;
					rand_vec(&rng, batch + nb * DIM, metric);
					nb++;
				}
				if (nb == 0)
					continue;
				ck_nvf(nvf_insert_batch(db, txn, batch, nb, DIM, ids, NULL));
				for (size_t i = 0; i < nb; i++) {
					work.present[ids[i]] = true;
					work.count++;
					memcpy(work.v[ids[i]], batch + i * DIM, sizeof(v));
				}
			} else {
				/* A read inside the write transaction sees its writes. */
				float got[DIM];
				int rc = nvf_get(db, txn, id, got, DIM);
				if (!work.present[id]) {
					tu_eq(rc, NVF_ENOTFOUND);
				} else {
					ck_nvf(rc);
					tu_assert(memcmp(got, work.v[id], sizeof(got)) == 0, "get %llu", (unsigned long long)id);
				}
				tu_eq(nvf_contains(db, txn, id), work.present[id]);
			}
		}
		uint64_t cnt;
		ck_nvf(nvf_count(db, txn, &cnt));
		tu_eq(cnt, work.count);
		if (tu_below(&rng, 8) == 0) {
			nvf_txn_abort(txn);
		} else {
			ck_nvf(nvf_txn_commit(txn));
			committed = work;
		}
		/* Searches on the committed state. */
		if (committed.count == 0)
			continue;
		nvf_result res[20];
		size_t nres;
		float q[DIM];
		rand_vec(&rng, q, metric);
		size_t k = 1 + tu_below(&rng, committed.count < 20 ? committed.count : 20);
		ck_nvf(nvf_search(db, NULL, q, DIM, k, NULL, res, &nres));
		check_search(db, NULL, &committed, metric, q, k, res, nres);
		/* Batch equals one by one. */
		float qs[5 * DIM];
		for (int i = 0; i < 5; i++)
			rand_vec(&rng, qs + i * DIM, metric);
		nvf_result bres[5 * 20];
		ck_nvf(nvf_search_batch(db, NULL, qs, 5, DIM, k, NULL, bres));
		for (int i = 0; i < 5; i++)
			check_search(db, NULL, &committed, metric, qs + i * DIM, k, bres + (size_t)i * k, k);
		/* Range: everything within the median distance. */
		float radius = res[nres / 2].distance;
		nvf_result *rr;
		size_t nr;
		ck_nvf(nvf_range_search(db, NULL, q, DIM, radius, NULL, &rr, &nr));
		/* Tie-aware at the boundary: every record clearly inside is returned,
		 * nothing returned is clearly outside. */
		float tol = 1e-4f * (1 + fabsf(radius));
		bool returned[MAXID] = {false};
		for (size_t i = 0; i < nr; i++) {
			tu_assert(rr[i].distance <= radius, "range result beyond the radius");
			tu_assert(rr[i].id < MAXID && committed.present[rr[i].id], "range: bad id");
			returned[rr[i].id] = true;
			if (i > 0)
				tu_assert(rr[i - 1].distance <= rr[i].distance, "range results not nearest first");
		}
		for (uint64_t id = 0; id < MAXID; id++) {
			float d;
			if (!committed.present[id])
				continue;
			ck_nvf(nvf_distance(metric, q, committed.v[id], DIM, &d));
			tu_assert(!(d < radius - tol) || returned[id], "range: id %llu at %g inside radius %g missing",
				  (unsigned long long)id, (double)d, (double)radius);
			tu_assert(!(d > radius + tol) || !returned[id], "range: id %llu at %g outside radius %g",
				  (unsigned long long)id, (double)d, (double)radius);
		}
		nvf_free(rr);
	}
	ck_nvf(nvf_check(db, NULL));
	ck_nvf(nvf_db_close(db));
	/* Everything survives a reopen. */
	ck_nvf(nvf_db_open(&db, path, NULL));
	for (uint64_t id = 0; id < MAXID; id++) {
		float got[DIM];
		int rc = nvf_get(db, NULL, id, got, DIM);
		if (committed.present[id]) {
			ck_nvf(rc);
			tu_assert(memcmp(got, committed.v[id], sizeof(got)) == 0, "after reopen: id %llu",
				  (unsigned long long)id);
		} else {
			tu_eq(rc, NVF_ENOTFOUND);
		}
	}
	ck_nvf(nvf_db_close(db));
}

START_TEST(test_records_match_model_for_every_metric)
{
	run_model(_i);
}
END_TEST

START_TEST(test_bad_input_is_refused_and_writes_nothing)
{
	nvf_db *db = make(NVF_METRIC_EUCLIDEAN, NVF_DURABILITY_FULL);
	float v[DIM] = {1, 2, 3};
	uint64_t id;
	ck_nvf(nvf_insert(db, NULL, v, DIM, &id));
	tu_eq(id, 0);
	nvf_info before, after;
	ck_nvf(nvf_db_info(db, NULL, &before));
	nvf_result res[4];
	size_t n;

	ck_assert_int_eq(nvf_insert(db, NULL, v, DIM - 1, &id), NVF_EINVAL);
	ck_assert_ptr_nonnull(strstr(nvf_errmsg(), "has 18 components, the collection has dimension 19"));
	v[5] = NAN;
	ck_assert_int_eq(nvf_insert(db, NULL, v, DIM, &id), NVF_EINVAL);
	ck_assert_ptr_nonnull(strstr(nvf_errmsg(), "component 5 is NaN"));
	v[5] = INFINITY;
	ck_assert_int_eq(nvf_upsert(db, NULL, 7, v, DIM), NVF_EINVAL);
	ck_assert_ptr_nonnull(strstr(nvf_errmsg(), "infinite"));
	v[5] = 0;
	ck_assert_int_eq(nvf_add(db, NULL, 0, v, DIM), NVF_EEXIST);
	ck_assert_ptr_nonnull(strstr(nvf_errmsg(), "id 0 already exists"));
	ck_assert_int_eq(nvf_update(db, NULL, 99, v, DIM), NVF_ENOTFOUND);
	ck_assert_int_eq(nvf_delete(db, NULL, 99), NVF_ENOTFOUND);
	ck_assert_ptr_nonnull(strstr(nvf_errmsg(), "no record with id 99"));
	float out[DIM];
	ck_assert_int_eq(nvf_get(db, NULL, 99, out, DIM), NVF_ENOTFOUND);
	ck_assert_int_eq(nvf_get(db, NULL, 0, out, DIM + 1), NVF_EINVAL);
	ck_assert_int_eq(nvf_search(db, NULL, v, DIM, 0, NULL, res, &n), NVF_EINVAL);
	ck_assert_ptr_nonnull(strstr(nvf_errmsg(), "k must be at least 1"));
	/* k past the count: every record (here the one). */
	ck_assert_int_eq(nvf_search(db, NULL, v, DIM, 3, NULL, res, &n), NVF_OK);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(res[0].id, 0);
	ck_assert_int_eq(nvf_search(db, NULL, v, 3, 1, NULL, res, &n), NVF_EINVAL);
	nvf_result *rr;
	ck_assert_int_eq(nvf_range_search(db, NULL, v, DIM, -1.0f, NULL, &rr, &n), NVF_EINVAL);
	ck_assert_ptr_nonnull(strstr(nvf_errmsg(), "radius -1: must be zero or more under euclidean"));
	ck_assert_int_eq(nvf_range_search(db, NULL, v, DIM, NAN, NULL, &rr, &n), NVF_EINVAL);
	nvf_search_options so = NVF_SEARCH_OPTIONS_INIT;
	so.version = 9;
	ck_assert_int_eq(nvf_search(db, NULL, v, DIM, 1, &so, res, &n), NVF_EINVAL);
	/* A batch with one bad vector inserts none of them. */
	float batch[3 * DIM] = {0};
	batch[2 * DIM + 4] = NAN;
	ck_assert_int_eq(nvf_insert_batch(db, NULL, batch, 3, DIM, NULL, NULL), NVF_EINVAL);
	ck_assert_ptr_nonnull(strstr(nvf_errmsg(), "vector 2: component 4 is NaN"));
	uint64_t dup[2] = {5, 5};
	ck_assert_int_eq(nvf_insert_batch(db, NULL, batch, 2, DIM, dup, NULL), NVF_EEXIST);
	uint64_t clash[2] = {5, 0};
	ck_assert_int_eq(nvf_insert_batch(db, NULL, batch, 2, DIM, clash, NULL), NVF_EEXIST);
	/* Writes through a read transaction. */
	nvf_txn *rd;
	ck_nvf(nvf_txn_begin(&rd, db, NVF_TXN_RDONLY));
	ck_assert_int_eq(nvf_insert(db, rd, v, DIM, &id), NVF_EREADONLY);
	ck_assert_int_eq(nvf_delete(db, rd, 0), NVF_EREADONLY);
	nvf_txn_abort(rd);
	ck_nvf(nvf_db_info(db, NULL, &after));
	tu_eq(after.txnid, before.txnid); /* nothing was committed */
	tu_eq(after.count, 1);
	ck_nvf(nvf_db_close(db));
	/* A read-only handle. */
	nvf_open_options oo = NVF_OPEN_OPTIONS_INIT;
	oo.flags = NVF_OPEN_RDONLY;
	ck_nvf(nvf_db_open(&db, path, &oo));
	ck_assert_int_eq(nvf_insert(db, NULL, v, DIM, &id), NVF_EREADONLY);
	ck_nvf(nvf_search(db, NULL, v, DIM, 1, NULL, res, &n));
	tu_eq(res[0].id, 0);
	ck_nvf(nvf_db_close(db));
	/* Creation errors. */
	nvf_create_options co = NVF_CREATE_OPTIONS_INIT;
	ck_assert_int_eq(nvf_db_create(&db, path, &co), NVF_EINVAL); /* dim 0 */
	co.dim = 4;
	ck_assert_int_eq(nvf_db_create(&db, path, &co), NVF_EEXIST);
	char *p2 = tu_path(dir, "x.nvf");
	co.dim = NVF_MAX_DIM + 1;
	ck_assert_int_eq(nvf_db_create(&db, p2, &co), NVF_EINVAL);
	co.dim = 4;
	co.metric = 42;
	ck_assert_int_eq(nvf_db_create(&db, p2, &co), NVF_EINVAL);
	co.metric = 0;
	co.index = 5;
	ck_assert_int_eq(nvf_db_create(&db, p2, &co), NVF_EINVAL);
	ck_assert_int_ne(access(p2, F_OK), 0);
	free(p2);
}
END_TEST

START_TEST(test_jaccard_refuses_negative_components)
{
	nvf_db *db = make(NVF_METRIC_JACCARD, NVF_DURABILITY_FULL);
	float v[DIM] = {1, 2, 3};
	uint64_t id;
	ck_nvf(nvf_insert(db, NULL, v, DIM, &id));
	v[2] = -1;
	ck_assert_int_eq(nvf_insert(db, NULL, v, DIM, &id), NVF_EINVAL);
	ck_assert_ptr_nonnull(strstr(nvf_errmsg(), "negative"));
	ck_nvf(nvf_db_close(db));
}
END_TEST

START_TEST(test_nonfinite_allowed_when_asked)
{
	nvf_create_options o = NVF_CREATE_OPTIONS_INIT;
	o.dim = 3;
	o.flags = NVF_CREATE_ALLOW_NONFINITE;
	nvf_db *db;
	ck_nvf(nvf_db_create(&db, path, &o));
	float v[3] = {1, INFINITY, 0};
	uint64_t id;
	ck_nvf(nvf_insert(db, NULL, v, 3, &id));
	nvf_info info;
	ck_nvf(nvf_db_info(db, NULL, &info));
	ck_assert_uint_eq(info.flags, NVF_CREATE_ALLOW_NONFINITE);
	ck_nvf(nvf_db_close(db));
}
END_TEST

START_TEST(test_deleted_rows_are_reused_and_vanish_from_results)
{
	nvf_db *db = make(NVF_METRIC_EUCLIDEAN, NVF_DURABILITY_NOSYNC);
	float vs[200 * DIM];
	for (int i = 0; i < 200 * DIM; i++)
		vs[i] = (float)(i / DIM);
	uint64_t ids[200];
	ck_nvf(nvf_insert_batch(db, NULL, vs, 200, DIM, NULL, ids));
	tu_eq(ids[0], 0);
	tu_eq(ids[199], 199);
	nvf_info a, b;
	ck_nvf(nvf_db_info(db, NULL, &a));
	nvf_txn *txn;
	ck_nvf(nvf_txn_begin(&txn, db, 0));
	for (uint64_t id = 0; id < 200; id += 2)
		ck_nvf(nvf_delete(db, txn, id));
	/* Within the transaction, deleted ids are gone from results at once. */
	nvf_result res[100];
	size_t n;
	ck_nvf(nvf_search(db, txn, vs, DIM, 100, NULL, res, &n));
	for (size_t i = 0; i < n; i++)
		tu_assert(res[i].id % 2 == 1, "deleted id %llu returned", (unsigned long long)res[i].id);
	tu_eq(res[0].id, 1);
	ck_nvf(nvf_txn_commit(txn));
	ck_nvf(nvf_insert_batch(db, NULL, vs, 100, DIM, NULL, ids));
	tu_eq(ids[0], 200); /* new ids, old rows */
	ck_nvf(nvf_db_info(db, NULL, &b));
	tu_eq(b.rows, a.rows);
	tu_eq(b.count, 200);
	ck_nvf(nvf_check(db, NULL));
	ck_nvf(nvf_db_close(db));
}
END_TEST

START_TEST(test_read_transaction_sees_one_state_while_writer_commits)
{
	nvf_db *db = make(NVF_METRIC_EUCLIDEAN, NVF_DURABILITY_NOSYNC);
	float v[DIM] = {0};
	uint64_t id;
	for (int i = 0; i < 10; i++) {
		v[0] = (float)i;
		ck_nvf(nvf_insert(db, NULL, v, DIM, &id));
	}
	nvf_txn *rd;
	ck_nvf(nvf_txn_begin(&rd, db, NVF_TXN_RDONLY));
	for (int i = 0; i < 50; i++) {
		v[0] = 100.0f + (float)i;
		ck_nvf(nvf_insert(db, NULL, v, DIM, &id));
		ck_nvf(nvf_delete(db, NULL, (uint64_t)i % 10));
		ck_nvf(nvf_upsert(db, NULL, (uint64_t)i % 10, v, DIM));
	}
	uint64_t cnt;
	ck_nvf(nvf_count(db, rd, &cnt));
	tu_eq(cnt, 10);
	nvf_result res[10];
	size_t n;
	v[0] = 0;
	ck_nvf(nvf_search(db, rd, v, DIM, 10, NULL, res, &n));
	for (size_t i = 0; i < n; i++)
		tu_eq(res[i].distance, (float)res[i].id);
	nvf_txn_abort(rd);
	ck_nvf(nvf_count(db, NULL, &cnt));
	tu_eq(cnt, 60);
	ck_nvf(nvf_db_close(db));
}
END_TEST

START_TEST(test_large_batch_spans_many_chunks)
{
	/* 784 floats: 64 rows a chunk; 5000 rows make 79 chunks, the last partial. */
	nvf_create_options o = NVF_CREATE_OPTIONS_INIT;
	o.dim = 784;
	o.durability = NVF_DURABILITY_NOSYNC;
	nvf_db *db;
	ck_nvf(nvf_db_create(&db, path, &o));
	size_t n = 5000;
	float *vs = malloc(n * 784 * sizeof(float));
	uint64_t rng = 7;
	for (size_t i = 0; i < n * 784; i++)
		vs[i] = (float)tu_below(&rng, 256);
	ck_nvf(nvf_insert_batch(db, NULL, vs, n, 784, NULL, NULL));
	/* Every vector is its own nearest neighbour, through both paths. */
	nvf_result res[3];
	size_t got;
	for (size_t i = 0; i < n; i += 397) {
		ck_nvf(nvf_search(db, NULL, vs + i * 784, 784, 3, NULL, res, &got));
		tu_eq(res[0].id, i);
		tu_eq(res[0].distance, 0);
	}
	nvf_result *bres = malloc(n * sizeof(*bres));
	ck_nvf(nvf_search_batch(db, NULL, vs, n, 784, 1, NULL, bres));
	for (size_t i = 0; i < n; i++) {
		tu_eq(bres[i].id, i);
		tu_eq(bres[i].distance, 0);
	}
	free(bres);
	ck_nvf(nvf_check(db, NULL));
	ck_nvf(nvf_db_close(db));
	free(vs);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("records");
	TCase *tc = tcase_create("records");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 600);
	tcase_add_loop_test(tc, test_records_match_model_for_every_metric, 0, NVF_METRIC_COUNT);
	tcase_add_test(tc, test_bad_input_is_refused_and_writes_nothing);
	tcase_add_test(tc, test_jaccard_refuses_negative_components);
	tcase_add_test(tc, test_nonfinite_allowed_when_asked);
	tcase_add_test(tc, test_deleted_rows_are_reused_and_vanish_from_results);
	tcase_add_test(tc, test_read_transaction_sees_one_state_while_writer_commits);
	tcase_add_test(tc, test_large_batch_spans_many_chunks);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
