/* The C API's contract, through the public header only:
 * - bad input never poisons a transaction: random good and bad calls inside explicit
 *   write transactions, every validation error of every write call, each checked to
 *   leave the transaction usable and unchanged; after each commit (or abort) the
 *   file must hold exactly what a model that applied only the good calls holds;
 * - a real failure in the middle of a change fails the transaction, which keeps and
 *   repeats its cause;
 * - close refuses while transactions are open, and changes nothing;
 * - one write transaction per handle: another thread waits, the same thread is told;
 * - messages name what the caller gave. */
#include "testutil.h"

#include <nvf.h>

#include <math.h>
#include <pthread.h>
#include <stdbool.h>

#define DIM 8
#define MAXID 1024
#define EXPLICIT_IDS 300 /* explicit ids are drawn below this: they collide often */

TU_DB_FIXTURE("contract.nvf")

typedef struct model {
	bool present[MAXID];
	float v[MAXID][DIM];
	uint64_t count;
	uint64_t next_id; /* what nvf_insert assigns next: one past the largest id ever added */
} model;

static void rand_vec(uint64_t *rng, float *v)
{
	for (int i = 0; i < DIM; i++)
		v[i] = (float)tu_below(rng, 1000) / 100.0f; /* non-negative: valid under every metric */
}

static void model_put(model *m, uint64_t id, const float *v)
{
	if (!m->present[id])
		m->count++;
	m->present[id] = true;
	memcpy(m->v[id], v, sizeof(m->v[id]));
	if (id >= m->next_id)
		m->next_id = id + 1;
}

static uint64_t pick_present(uint64_t *rng, const model *m)
{
	if (m->count == 0)
		return UINT64_MAX;
	for (;;) {
		uint64_t id = tu_below(rng, m->next_id);
		if (m->present[id])
			return id;
	}
}

static uint64_t pick_absent(uint64_t *rng, const model *m)
{
	for (int tries = 0; tries < 64; tries++) {
		uint64_t id = tu_below(rng, EXPLICIT_IDS);
		if (!m->present[id])
			return id;
	}
	for (uint64_t id = 0;; id++)
		if (!m->present[id])
			return id;
}

/* The database (through txn, or the last commit if txn is NULL) holds exactly the model. */
static void check_against(nvf_db *db, nvf_txn *txn, const model *m, const char *when)
{
	uint64_t n;
	ck_nvf(nvf_count(db, txn, &n));
	tu_assert(n == m->count, "%s: %llu records, the model has %llu", when, (unsigned long long)n,
		  (unsigned long long)m->count);
	nvf_info info;
	ck_nvf(nvf_db_info(db, txn, &info));
	tu_assert(info.next_id == m->next_id, "%s: next id %llu, the model says %llu", when,
		  (unsigned long long)info.next_id, (unsigned long long)m->next_id);
	for (uint64_t id = 0; id < MAXID; id++) {
		int has = nvf_contains(db, txn, id);
		tu_assert(has == (int)m->present[id], "%s: id %llu: contains %d, the model says %d", when,
			  (unsigned long long)id, has, (int)m->present[id]);
		if (!m->present[id])
			continue;
		float got[DIM];
		ck_nvf(nvf_get(db, txn, id, got, DIM));
		tu_assert(memcmp(got, m->v[id], sizeof(got)) == 0, "%s: id %llu holds another vector", when,
			  (unsigned long long)id);
	}
	if (m->count == 0)
		return;
	/* An exact search for everything returns every id once. */
	nvf_result *res = malloc(m->count * sizeof(*res));
	size_t nres;
	nvf_search_options so = NVF_SEARCH_OPTIONS_INIT;
	so.exact = 1;
	uint64_t rng = n;
	ck_nvf(nvf_search(db, txn, m->v[pick_present(&rng, m)], DIM, m->count, &so, res, &nres));
	tu_eq(nres, m->count);
	bool seen[MAXID] = {false};
	for (size_t i = 0; i < nres; i++) {
		tu_assert(res[i].id < MAXID && m->present[res[i].id] && !seen[res[i].id], "%s: search returned id %llu",
			  when, (unsigned long long)res[i].id);
		seen[res[i].id] = true;
	}
	free(res);
}

/* One bad call: the expected code, and the transaction as it was. */
#define BAD(expect, call)                                                                                   \
	do {                                                                                                \
		int rc_ = (call);                                                                           \
		tu_assert(rc_ == (expect), "seed %llu txn %d: %s -> %d (%s: %s), expected %d", (unsigned long long)seed, \
			  t, #call, rc_, nvf_strerror(rc_), nvf_errmsg(), (expect));                          \
		tu_assert(strlen(nvf_errmsg()) > 5, "%s: no detail message", #call);                        \
		tu_assert(nvf_txn_status(txn) == 0, "seed %llu: %s failed the transaction (%d)",            \
			  (unsigned long long)seed, #call, nvf_txn_status(txn));                              \
		bad++;                                                                                      \
	} while (0)

static int bad_kinds_seen[32];

/* Random good and bad calls in explicit write transactions, committed or aborted at
 * random, against the model; the file reopened at the end. */
static void run_model(int metric, int index, uint64_t seed, int ntxn, int nops)
{
	nvf_create_options co = NVF_CREATE_OPTIONS_INIT;
	co.dim = DIM;
	co.metric = metric;
	co.index = index;
	co.page_size = 1024;
	co.durability = NVF_DURABILITY_NOSYNC;
	nvf_db *db;
	tu_unlink_db(path);
	ck_nvf(nvf_db_create(&db, path, &co));
	uint64_t rng = seed;
	model *committed = calloc(1, sizeof(model)), *m = malloc(sizeof(model));
	long good = 0, bad = 0;
	for (int t = 0; t < ntxn; t++) {
		nvf_txn *txn;
		ck_nvf(nvf_txn_begin(&txn, db, 0));
		memcpy(m, committed, sizeof(*m));
		for (int op = 0; op < nops; op++) {
			float v[DIM], w[4 * DIM];
			rand_vec(&rng, v);
			uint64_t id, ids[4], got;
			int kind = (int)tu_below(&rng, 2) ? -1 : (int)tu_below(&rng, 27);
			if (kind < 0 || (m->next_id > MAXID - 16)) {
				/* A good call. */
				int g = (int)tu_below(&rng, m->next_id > MAXID - 16 ? 3 : 6);
				if (g == 0 && m->count > 0) {
					id = pick_present(&rng, m);
					ck_nvf(nvf_update(db, txn, id, v, DIM));
					model_put(m, id, v);
				} else if (g == 1 && m->count > 0) {
					id = pick_present(&rng, m);
					ck_nvf(nvf_delete(db, txn, id));
					m->present[id] = false;
					m->count--;
				} else if (g == 2) {
					id = tu_below(&rng, 2) && m->count ? pick_present(&rng, m) : pick_absent(&rng, m);
					ck_nvf(nvf_upsert(db, txn, id, v, DIM));
					model_put(m, id, v);
				} else if (g == 3) {
					ck_nvf(nvf_insert(db, txn, v, DIM, &got));
					tu_eq(got, m->next_id);
					model_put(m, got, v);
				} else if (g == 4) {
					id = pick_absent(&rng, m);
					ck_nvf(nvf_add(db, txn, id, v, DIM));
					model_put(m, id, v);
				} else {
					uint64_t out[3];
					for (int i = 0; i < 3; i++)
						rand_vec(&rng, w + i * DIM);
					ck_nvf(nvf_insert_batch(db, txn, w, 3, DIM, NULL, out));
					for (int i = 0; i < 3; i++) {
						tu_eq(out[i], m->next_id);
						model_put(m, out[i], w + i * DIM);
					}
				}
				good++;
				continue;
			}
			bad_kinds_seen[kind]++;
			uint64_t present = m->count ? pick_present(&rng, m) : UINT64_MAX, absent = pick_absent(&rng, m);
			float nan_v[DIM], inf_v[DIM], neg_v[DIM];
			memcpy(nan_v, v, sizeof(v));
			memcpy(inf_v, v, sizeof(v));
			memcpy(neg_v, v, sizeof(v));
			nan_v[tu_below(&rng, DIM)] = NAN;
			inf_v[tu_below(&rng, DIM)] = tu_below(&rng, 2) ? INFINITY : -INFINITY;
			neg_v[tu_below(&rng, DIM)] = -1.0f;
			nvf_result res[4];
			size_t nres;
			switch (kind) {
			case 0: BAD(NVF_EINVAL, nvf_insert(db, txn, v, DIM + 1, &got)); break;
			case 1: BAD(NVF_EINVAL, nvf_insert(db, txn, nan_v, DIM, &got)); break;
			case 2: BAD(NVF_EINVAL, nvf_insert(db, txn, inf_v, DIM, &got)); break;
			case 3: BAD(NVF_EINVAL, nvf_insert(db, txn, NULL, DIM, &got)); break;
			case 4:
				if (present != UINT64_MAX)
					BAD(NVF_EEXIST, nvf_add(db, txn, present, v, DIM));
				break;
			case 5: BAD(NVF_EINVAL, nvf_add(db, txn, UINT64_MAX, v, DIM)); break;
			/* A large new id with a bad vector must not move the next id. */
			case 6: BAD(NVF_EINVAL, nvf_add(db, txn, MAXID - 1, nan_v, DIM)); break;
			case 7: BAD(NVF_EINVAL, nvf_upsert(db, txn, absent, v, DIM - 1)); break;
			case 8: BAD(NVF_EINVAL, nvf_upsert(db, txn, UINT64_MAX, v, DIM)); break;
			case 9: BAD(NVF_ENOTFOUND, nvf_update(db, txn, absent, v, DIM)); break;
			case 10:
				if (present != UINT64_MAX)
					BAD(NVF_EINVAL, nvf_update(db, txn, present, nan_v, DIM));
				break;
			case 11:
				if (present != UINT64_MAX)
					BAD(NVF_EINVAL, nvf_update(db, txn, present, v, 0));
				break;
			case 12: BAD(NVF_ENOTFOUND, nvf_delete(db, txn, absent)); break;
			case 13: BAD(NVF_EINVAL, nvf_insert_batch(db, txn, v, 0, DIM, NULL, NULL)); break;
			case 14: BAD(NVF_EINVAL, nvf_insert_batch(db, txn, NULL, 2, DIM, NULL, NULL)); break;
			case 15:
				/* One bad vector among good ones: none is inserted. */
				rand_vec(&rng, w);
				memcpy(w + DIM, inf_v, sizeof(inf_v));
				rand_vec(&rng, w + 2 * DIM);
				BAD(NVF_EINVAL, nvf_insert_batch(db, txn, w, 3, DIM, NULL, NULL));
				break;
			case 16:
				rand_vec(&rng, w);
				rand_vec(&rng, w + DIM);
				ids[0] = ids[1] = absent;
				BAD(NVF_EEXIST, nvf_insert_batch(db, txn, w, 2, DIM, ids, NULL));
				break;
			case 17:
				if (present != UINT64_MAX) {
					rand_vec(&rng, w);
					rand_vec(&rng, w + DIM);
					ids[0] = absent;
					ids[1] = present;
					BAD(NVF_EEXIST, nvf_insert_batch(db, txn, w, 2, DIM, ids, NULL));
				}
				break;
			case 18:
				rand_vec(&rng, w);
				rand_vec(&rng, w + DIM);
				ids[0] = absent;
				ids[1] = UINT64_MAX;
				BAD(NVF_EINVAL, nvf_insert_batch(db, txn, w, 2, DIM, ids, NULL));
				break;
			case 19:
				if (metric == NVF_METRIC_JACCARD)
					BAD(NVF_EINVAL, nvf_upsert(db, txn, absent, neg_v, DIM));
				else
					BAD(NVF_EINVAL, nvf_insert_batch(db, txn, v, 1, DIM + 3, NULL, NULL));
				break;
			case 20:
				if (present != UINT64_MAX)
					BAD(NVF_EINVAL, nvf_get(db, txn, present, v, DIM - 1));
				break;
			case 21: BAD(NVF_EINVAL, nvf_search(db, txn, v, DIM, 0, NULL, res, &nres)); break;
			case 22: BAD(NVF_EINVAL, nvf_snapshot_create(db, txn, "s", "[1]", NULL)); break;
			case 23: BAD(NVF_EINVAL, nvf_search(db, txn, nan_v, DIM, 1, NULL, res, &nres)); break;
			case 24: {
				/* Reindexing runs its own write transaction: this thread's is open. */
				nvf_index_options io = NVF_INDEX_OPTIONS_INIT;
				BAD(NVF_EBUSY, nvf_reindex(db, &io));
				break;
			}
			case 25: {
				nvf_result *all;
				size_t nall;
				BAD(NVF_EINVAL, nvf_range_search(db, txn, v, DIM, NAN, NULL, &all, &nall));
				break;
			}
			default: BAD(NVF_EINVAL, nvf_add(db, txn, absent, inf_v, DIM)); break;
			}
			/* Nothing of the bad call is visible inside the transaction either. */
			if (op % 8 == 0) {
				uint64_t n;
				ck_nvf(nvf_count(db, txn, &n));
				tu_eq(n, m->count);
			}
		}
		if (tu_below(&rng, 5) == 0) {
			nvf_txn_abort(txn);
		} else {
			ck_nvf(nvf_txn_commit(txn));
			memcpy(committed, m, sizeof(*m));
		}
		char when[64];
		snprintf(when, sizeof(when), "seed %llu after txn %d", (unsigned long long)seed, t);
		check_against(db, NULL, committed, when);
	}
	ck_nvf(nvf_check(db, NULL));
	ck_nvf(nvf_db_close(db));
	ck_nvf(nvf_db_open(&db, path, NULL));
	check_against(db, NULL, committed, "after reopen");
	ck_nvf(nvf_check(db, NULL));
	ck_nvf(nvf_db_close(db));
	tu_assert(good > 100 && bad > 100, "too few calls: %ld good, %ld bad", good, bad);
	free(committed);
	free(m);
}

START_TEST(test_bad_input_never_poisons_a_transaction)
{
	static const int metrics[] = {NVF_METRIC_EUCLIDEAN, NVF_METRIC_COSINE, NVF_METRIC_JACCARD};
	uint64_t seed = tu_seed("test_bad_input_never_poisons_a_transaction");
	memset(bad_kinds_seen, 0, sizeof(bad_kinds_seen));
	for (int index = NVF_INDEX_FLAT; index <= NVF_INDEX_HNSW; index++)
		for (size_t i = 0; i < sizeof(metrics) / sizeof(metrics[0]); i++)
			run_model(metrics[i], index, seed + i * 31 + (uint64_t)index, 30, 40);
	for (int k = 0; k < 27; k++)
		tu_assert(bad_kinds_seen[k] > 0, "bad call kind %d never tried", k);
}
END_TEST

/* A real failure half-way through a change (here: no room left in the map) fails the
 * transaction; later calls and the commit repeat its cause; nothing is written. */
START_TEST(test_a_failure_mid_change_fails_the_transaction_and_keeps_its_cause)
{
	nvf_create_options co = NVF_CREATE_OPTIONS_INIT;
	co.dim = DIM;
	nvf_db *db;
	ck_nvf(nvf_db_create(&db, path, &co));
	float v[DIM] = {1, 2, 3, 4, 5, 6, 7, 8};
	for (int i = 0; i < 10; i++)
		ck_nvf(nvf_insert(db, NULL, v, DIM, NULL));
	ck_nvf(nvf_db_close(db));
	nvf_open_options oo = NVF_OPEN_OPTIONS_INIT;
	oo.map_size = tu_file_size(path) + 8192;
	ck_nvf(nvf_db_open(&db, path, &oo));
	nvf_txn *txn;
	ck_nvf(nvf_txn_begin(&txn, db, 0));
	ck_nvf(nvf_insert(db, txn, v, DIM, NULL)); /* a good write before the failure */
	size_t n = 20000;
	float *many = malloc(n * DIM * sizeof(float));
	for (size_t i = 0; i < n * DIM; i++)
		many[i] = (float)(i % 97);
	int rc = nvf_insert_batch(db, txn, many, n, DIM, NULL, NULL);
	ck_assert_int_eq(rc, NVF_EFULL);
	ck_assert_ptr_nonnull(strstr(nvf_errmsg(), "map_size"));
	ck_assert_int_eq(nvf_txn_status(txn), NVF_EFULL);
	/* Every later call says the transaction failed, and why. */
	ck_assert_int_eq(nvf_insert(db, txn, v, DIM, NULL), NVF_EBADTXN);
	ck_assert_ptr_nonnull(strstr(nvf_errmsg(), "failed earlier ("));
	ck_assert_ptr_nonnull(strstr(nvf_errmsg(), "map_size"));
	uint64_t count;
	ck_assert_int_eq(nvf_count(db, txn, &count), NVF_EBADTXN);
	ck_assert_int_eq(nvf_txn_commit(txn), NVF_EBADTXN);
	ck_assert_ptr_nonnull(strstr(nvf_errmsg(), "map_size"));
	ck_assert_ptr_nonnull(strstr(nvf_errmsg(), "nothing was written"));
	/* Nothing of it was committed, and the handle goes on. */
	ck_nvf(nvf_count(db, NULL, &count));
	tu_eq(count, 10);
	ck_nvf(nvf_insert(db, NULL, v, DIM, NULL));
	ck_nvf(nvf_count(db, NULL, &count));
	tu_eq(count, 11);
	ck_nvf(nvf_check(db, NULL));
	ck_nvf(nvf_db_close(db));
	free(many);
	ck_assert_int_eq(nvf_txn_status(NULL), NVF_EINVAL);
}
END_TEST

START_TEST(test_close_refuses_open_transactions_and_changes_nothing)
{
	nvf_create_options co = NVF_CREATE_OPTIONS_INIT;
	co.dim = DIM;
	nvf_db *db;
	ck_nvf(nvf_db_create(&db, path, &co));
	float v[DIM] = {1, 0, 0, 0, 0, 0, 0, 0};
	ck_nvf(nvf_add(db, NULL, 5, v, DIM));

	nvf_txn *r1, *r2, *w;
	ck_nvf(nvf_txn_begin(&r1, db, NVF_TXN_RDONLY));
	ck_assert_int_eq(nvf_db_close(db), NVF_EBUSY);
	ck_assert_ptr_nonnull(strstr(nvf_errmsg(), "1 read transaction of this handle is still open"));
	/* The handle and the read transaction go on. */
	uint64_t count;
	ck_nvf(nvf_count(db, r1, &count));
	tu_eq(count, 1);

	ck_nvf(nvf_txn_begin(&r2, db, NVF_TXN_RDONLY));
	ck_nvf(nvf_txn_begin(&w, db, 0));
	ck_nvf(nvf_add(db, w, 6, v, DIM));
	ck_assert_int_eq(nvf_db_close(db), NVF_EBUSY);
	ck_assert_ptr_nonnull(strstr(nvf_errmsg(), "2 read transactions and the write transaction"));
	/* The write was not dropped: it commits. */
	ck_nvf(nvf_txn_commit(w));
	nvf_txn_abort(r1);
	ck_assert_int_eq(nvf_db_close(db), NVF_EBUSY);
	ck_assert_ptr_nonnull(strstr(nvf_errmsg(), "1 read transaction"));
	nvf_txn_abort(r2);

	ck_nvf(nvf_txn_begin(&w, db, 0));
	ck_assert_int_eq(nvf_db_close(db), NVF_EBUSY);
	ck_assert_ptr_nonnull(strstr(nvf_errmsg(), "the write transaction of this handle is still open"));
	nvf_txn_abort(w);
	ck_nvf(nvf_db_close(db)); /* now it closes (LeakSanitizer: nothing left behind) */

	ck_nvf(nvf_db_open(&db, path, NULL));
	ck_nvf(nvf_count(db, NULL, &count));
	tu_eq(count, 2);
	ck_assert_int_eq(nvf_contains(db, NULL, 6), 1);
	ck_nvf(nvf_db_close(db));
}
END_TEST

typedef struct waiter {
	nvf_db *db;
	int first_ended; /* set by the main thread just before it commits */
	int saw_first_ended;
	int rc;
} waiter;

static void *wait_for_writer(void *arg)
{
	waiter *w = arg;
	nvf_txn *txn;
	w->rc = nvf_txn_begin(&txn, w->db, NVF_TXN_WAIT);
	if (w->rc == 0) {
		w->saw_first_ended = __atomic_load_n(&w->first_ended, __ATOMIC_ACQUIRE);
		float v[DIM] = {0};
		w->rc = nvf_add(w->db, txn, 2, v, DIM);
		if (w->rc == 0)
			w->rc = nvf_txn_commit(txn);
		else
			nvf_txn_abort(txn);
	}
	return NULL;
}

static void *try_writer(void *arg)
{
	waiter *w = arg;
	nvf_txn *txn = NULL;
	w->rc = nvf_txn_begin(&txn, w->db, 0);
	if (w->rc == NVF_EBUSY && !strstr(nvf_errmsg(), "in another thread"))
		w->rc = -1; /* the message must say where the open transaction is */
	if (txn)
		nvf_txn_abort(txn);
	return NULL;
}

START_TEST(test_one_write_transaction_per_handle_another_thread_waits)
{
	nvf_create_options co = NVF_CREATE_OPTIONS_INIT;
	co.dim = DIM;
	nvf_db *db;
	ck_nvf(nvf_db_create(&db, path, &co));
	nvf_txn *txn;
	ck_nvf(nvf_txn_begin(&txn, db, 0));
	float v[DIM] = {1};
	ck_nvf(nvf_add(db, txn, 1, v, DIM));

	waiter w = {.db = db};
	pthread_t th;
	pthread_create(&th, NULL, try_writer, &w);
	pthread_join(th, NULL);
	ck_assert_int_eq(w.rc, NVF_EBUSY);

	memset(&w, 0, sizeof(w));
	w.db = db;
	pthread_create(&th, NULL, wait_for_writer, &w);
	usleep(50000); /* let it block (if it did not, saw_first_ended tells) */
	__atomic_store_n(&w.first_ended, 1, __ATOMIC_RELEASE);
	ck_nvf(nvf_txn_commit(txn));
	pthread_join(th, NULL);
	ck_nvf(w.rc);
	ck_assert_int_eq(w.saw_first_ended, 1);
	uint64_t count;
	ck_nvf(nvf_count(db, NULL, &count));
	tu_eq(count, 2);
	ck_nvf(nvf_db_close(db));
}
END_TEST

START_TEST(test_messages_name_what_the_caller_gave)
{
	nvf_create_options co = NVF_CREATE_OPTIONS_INIT;
	co.dim = DIM;
	nvf_db *db;
	/* A missing directory: the path given, not a temporary file of ours. */
	char *missing = tu_path(dir, "no/such/dir/x.nvf");
	ck_assert_int_eq(nvf_db_create(&db, missing, &co), -ENOENT);
	ck_assert_ptr_nonnull(strstr(nvf_errmsg(), missing));
	ck_assert_ptr_null(strstr(nvf_errmsg(), ".tmp"));
	free(missing);

	/* A map too small to create in: the value given, and no "reopen". */
	co.map_size = 4096;
	ck_assert_int_eq(nvf_db_create(&db, path, &co), NVF_EFULL);
	ck_assert_ptr_nonnull(strstr(nvf_errmsg(), "map_size 4096 is too small"));
	ck_assert_ptr_null(strstr(nvf_errmsg(), "reopen"));
	ck_assert_int_eq(access(path, F_OK), -1); /* nothing left behind */

	/* A truncated file: the path first, then the page. */
	co.map_size = 0;
	ck_nvf(nvf_db_create(&db, path, &co));
	float v[DIM] = {1};
	for (int i = 0; i < 200; i++)
		ck_nvf(nvf_insert(db, NULL, v, DIM, NULL));
	ck_nvf(nvf_db_close(db));
	ck_assert_int_eq(truncate(path, 3 * 4096), 0);
	ck_assert_int_eq(nvf_db_open(&db, path, NULL), NVF_ECORRUPT);
	char want[4200];
	snprintf(want, sizeof(want), "%s: page ", path);
	ck_assert_msg(strncmp(nvf_errmsg(), want, strlen(want)) == 0, "message: %s", nvf_errmsg());
	ck_assert_ptr_nonnull(strstr(nvf_errmsg(), "truncated"));

	/* Codes and texts agree on whose lock it is. */
	ck_assert_ptr_nonnull(strstr(nvf_strerror(NVF_ELOCKED), "another"));
	ck_assert_ptr_nonnull(strstr(nvf_strerror(NVF_EBUSY), "this handle"));
}
END_TEST

/* The documented maxima are checked before anything is read or allocated, and a k
 * far past the records does not size a search's scratch (ASan would catch a
 * wrapped size; a huge one would fail with ENOMEM instead of answering). */
START_TEST(test_limits_are_checked_and_named)
{
	nvf_create_options co = NVF_CREATE_OPTIONS_INIT;
	co.dim = DIM;
	co.index = NVF_INDEX_HNSW;
	nvf_db *db;
	co.dim = NVF_MAX_DIM + 1;
	ck_assert_int_eq(nvf_db_create(&db, path, &co), NVF_EINVAL);
	co.dim = DIM;
	co.hnsw_ef_search = NVF_MAX_EF + 1;
	ck_assert_int_eq(nvf_db_create(&db, path, &co), NVF_EINVAL);
	ck_assert_ptr_nonnull(strstr(nvf_errmsg(), "100000"));
	co.hnsw_ef_search = 0;
	co.doc_max_bytes = NVF_DOC_MAX_LIMIT + 1;
	ck_assert_int_eq(nvf_db_create(&db, path, &co), NVF_EINVAL);
	co.doc_max_bytes = 0;
	ck_nvf(nvf_db_create(&db, path, &co));
	float v[2 * DIM] = {1, 2, 3};
	for (int i = 0; i < 10; i++) {
		v[i % DIM] += 1;
		ck_nvf(nvf_insert(db, NULL, v, DIM, NULL));
	}
	nvf_result res[16];
	size_t n;
	ck_assert_int_eq(nvf_search(db, NULL, v, DIM, (size_t)NVF_MAX_K + 1, NULL, res, &n), NVF_EINVAL);
	ck_assert_ptr_nonnull(strstr(nvf_errmsg(), "NVF_MAX_K"));
	ck_assert_int_eq(nvf_search(db, NULL, v, DIM, SIZE_MAX / 2, NULL, res, &n), NVF_EINVAL);
	ck_assert_int_eq(nvf_search_batch(db, NULL, v, (size_t)NVF_MAX_BATCH + 1, DIM, 1, NULL, res), NVF_EINVAL);
	ck_assert_ptr_nonnull(strstr(nvf_errmsg(), "NVF_MAX_BATCH"));
	ck_assert_int_eq(nvf_insert_batch(db, NULL, v, (size_t)NVF_MAX_BATCH + 1, DIM, NULL, NULL), NVF_EINVAL);
	ck_assert_ptr_nonnull(strstr(nvf_errmsg(), "NVF_MAX_BATCH"));
	nvf_search_options so = NVF_SEARCH_OPTIONS_INIT;
	so.ef_search = NVF_MAX_EF + 1;
	ck_assert_int_eq(nvf_search(db, NULL, v, DIM, 1, &so, res, &n), NVF_EINVAL);
	/* The largest k on 10 records: the 10, in a buffer of k slots. */
	nvf_result *big = malloc((size_t)NVF_MAX_K * sizeof(*big));
	ck_assert_ptr_nonnull(big);
	so.ef_search = 0;
	ck_nvf(nvf_search(db, NULL, v, DIM, NVF_MAX_K, &so, big, &n));
	ck_assert_uint_eq(n, 10);
	so.exact = 1;
	ck_nvf(nvf_search(db, NULL, v, DIM, NVF_MAX_K, &so, big, &n));
	ck_assert_uint_eq(n, 10);
	free(big);
	/* A filter nested deeper than the maximum is refused by name. */
	char deep[400] = "";
	for (int i = 0; i < 70; i++)
		strcat(deep, "(");
	strcat(deep, "id > 1");
	for (int i = 0; i < 70; i++)
		strcat(deep, ")");
	nvf_filter *f;
	ck_assert_int_eq(nvf_filter_compile(&f, deep), NVF_EINVAL);
	ck_assert_ptr_nonnull(strstr(nvf_errmsg(), "levels deep"));
	ck_nvf(nvf_db_close(db));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("contract");
	TCase *tc = tcase_create("contract");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_bad_input_never_poisons_a_transaction);
	tcase_add_test(tc, test_a_failure_mid_change_fails_the_transaction_and_keeps_its_cause);
	tcase_add_test(tc, test_close_refuses_open_transactions_and_changes_nothing);
	tcase_add_test(tc, test_one_write_transaction_per_handle_another_thread_waits);
	tcase_add_test(tc, test_messages_name_what_the_caller_gave);
	tcase_add_test(tc, test_limits_are_checked_and_named);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
