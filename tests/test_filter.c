/* The filter language and the planner, in C: error messages name the column and what
 * was expected; limits; every plan (exact scan, scan of the passing rows, plain and
 * ACORN walks, the fallback) returns min(k, |S|) results that all pass; a write
 * transaction's searches see its own documents through the field indexes; a compiled
 * filter shared by threads and reused across commits answers for each state; the id
 * callback and the filter combine; range search takes the filter. The semantics of
 * the language against a reference are tests/test_filter_model.py's. */
#include "testutil.h"

#include <math.h>
#include <nvf.h>
#include <pthread.h>
#include <stdbool.h>

#define DIM 8
#define N 3000
#define K 10

TU_DB_FIXTURE("f.nvf")

static void expect_error(const char *expr, const char *msg)
{
	nvf_filter *f = NULL;
	int rc = nvf_filter_compile(&f, expr);
	tu_assert(rc == NVF_EINVAL && f == NULL, "%.60s: compiled (%d)", expr, rc);
	tu_assert(strstr(nvf_errmsg(), msg) != NULL, "%.60s: message \"%s\", want \"%s\"", expr, nvf_errmsg(), msg);
}

START_TEST(test_syntax_errors_name_the_column_and_what_was_expected)
{
	expect_error("price > ", "filter: column 9: expected a value after '>'");
	expect_error("category = 'shoes' AND price >", "filter: column 31: expected a value after '>'");
	expect_error("a = 1 AN b = 2", "column 7: expected AND, OR or the end, found 'AN'");
	expect_error("a ~ 1", "column 3: unexpected character '~'");
	expect_error("a LIKE 'x'", "column 3: expected an operator after a");
	expect_error("(a = 1", "column 7: expected ')' or AND/OR, found the end of the filter");
	expect_error("a = 'open", "column 5: string not closed");
	expect_error("a = 99999999999999999999", "integer literal 99999999999999999999 is out of range (int64)");
	expect_error("a = 1e999", "out of range (float64)");
	expect_error("AND = 1", "column 1: expected a condition, found the keyword 'AND'");
	expect_error("a.and = 1", "quote a key spelt like a keyword");
	expect_error("a IN ()", "expected a value after '('");
	expect_error("a BETWEEN 1 2", "expected AND in BETWEEN");
	expect_error("created_at > 'yesterday'", "ISO-8601");
	expect_error("", "empty filter");
	expect_error("a . b = 1", "no space is allowed before '.'");
	/* Limits: nesting, list length, string size, total size. */
	char *deep = malloc(1000);
	strcpy(deep, "");
	for (int i = 0; i < 65; i++)
		strcat(deep, "(");
	strcat(deep, "a = 1");
	for (int i = 0; i < 65; i++)
		strcat(deep, ")");
	expect_error(deep, "nested more than 64 levels deep");
	deep[1] = ' '; /* 64 levels compile */
	deep[strlen(deep) - 1] = ' ';
	nvf_filter *f;
	ck_nvf(nvf_filter_compile(&f, deep));
	nvf_filter_free(f);
	free(deep);
	char *list = malloc(20000);
	strcpy(list, "a IN (0");
	for (int i = 1; i <= 1024; i++)
		sprintf(list + strlen(list), ",%d", i);
	strcat(list, ")");
	expect_error(list, "a list of more than 1024 values");
	free(list);
	char *str = malloc(5000);
	sprintf(str, "a = '%04097d'", 0);
	expect_error(str, "string literal of 4097 bytes");
	free(str);
	char *huge = malloc(70000);
	memset(huge, ' ', 69999);
	memcpy(huge, "a = 1", 5);
	huge[69999] = 0;
	expect_error(huge, "column 65537");
	free(huge);
	ck_assert_int_eq(nvf_filter_compile(&f, NULL), NVF_EINVAL);
	nvf_filter_free(NULL);
}
END_TEST

static nvf_db *make(int index)
{
	nvf_create_options o = NVF_CREATE_OPTIONS_INIT;
	o.dim = DIM;
	o.index = index;
	o.durability = NVF_DURABILITY_NOSYNC;
	nvf_db *db;
	tu_unlink_db(path);
	ck_nvf(nvf_db_create(&db, path, &o));
	return db;
}

/* N records: group id % 10, a score id % 1000, a vector from the seed. */
static float vecs[N][DIM];

static void fill(nvf_db *db, uint64_t *rng)
{
	nvf_txn *txn;
	ck_nvf(nvf_txn_begin(&txn, db, 0));
	for (uint64_t id = 0; id < N; id++) {
		for (int i = 0; i < DIM; i++)
			vecs[id][i] = (float)tu_below(rng, 10000) / 100.0f;
		ck_nvf(nvf_add(db, txn, id, vecs[id], DIM));
		char d[80];
		snprintf(d, sizeof(d), "{\"g\":%llu,\"score\":%llu}", (unsigned long long)(id % 10),
			 (unsigned long long)(id % 1000));
		ck_nvf(nvf_meta_set(db, txn, id, d));
	}
	ck_nvf(nvf_txn_commit(txn));
}

static int passes(uint64_t id, const char *what)
{
	if (strcmp(what, "g = 3") == 0)
		return id % 10 == 3;
	if (strcmp(what, "score < 5") == 0)
		return id % 1000 < 5;
	if (strcmp(what, "score < 700") == 0)
		return id % 1000 < 700;
	if (strcmp(what, "g IN (1, 2, 3) AND score >= 100") == 0)
		return id % 10 >= 1 && id % 10 <= 3 && id % 1000 >= 100;
	if (strcmp(what, "score = 12345") == 0)
		return 0;
	return -1;
}

/* Search with one plan and ef; results must be min(k, |S|), all passing, sorted. */
static void check_plans(nvf_db *db, const char *expr, uint32_t ef, int plan, const char **plan_seen)
{
	nvf_filter *f;
	ck_nvf(nvf_filter_compile(&f, expr));
	uint64_t s = 0;
	for (uint64_t id = 0; id < N; id++)
		s += passes(id, expr);
	nvf_search_options so = NVF_SEARCH_OPTIONS_INIT;
	nvf_explain ex = NVF_EXPLAIN_INIT;
	so.where = f;
	so.ef_search = ef;
	so.explain = &ex;
	so.plan = plan;
	for (int q = 0; q < 20; q++) {
		nvf_result r[K];
		size_t n;
		ck_nvf(nvf_search(db, NULL, vecs[q * 7], DIM, K, &so, r, &n));
		tu_eq(n, s < K ? s : K);
		for (size_t i = 0; i < n; i++) {
			tu_assert(passes(r[i].id, expr), "%s: id %llu does not pass (%s)", expr, (unsigned long long)r[i].id, ex.text);
			tu_assert(i == 0 || r[i - 1].distance <= r[i].distance, "%s: not sorted", expr);
		}
	}
	*plan_seen = ex.plan;
	nvf_filter_free(f);
}

START_TEST(test_every_plan_returns_min_k_passing_results)
{
	uint64_t rng = tu_seed("test_every_plan_returns_min_k_passing_results");
	nvf_db *db = make(NVF_INDEX_HNSW);
	fill(db, &rng);
	bool seen[6] = {false};
	static const char *const names[] = {"exact-filtered", "scan-filtered", "graph-filtered", "graph-acorn"};
	static const char *const exprs[] = {"g = 3", "score < 5", "score < 700", "g IN (1, 2, 3) AND score >= 100",
					    "score = 12345"};
	for (int indexed = 0; indexed < 2; indexed++) {
		if (indexed) {
			ck_nvf(nvf_field_add(db, NULL, "g", NVF_FIELD_INT));
			ck_nvf(nvf_field_add(db, NULL, "score", NVF_FIELD_FLOAT));
		}
		for (size_t e = 0; e < sizeof(exprs) / sizeof(exprs[0]); e++)
			for (uint32_t ef = 4; ef <= 256; ef *= 4)
				for (int plan = NVF_PLAN_AUTO; plan <= NVF_PLAN_ACORN; plan++) {
					const char *name;
					check_plans(db, exprs[e], ef, plan, &name);
					for (int p = 0; p < 4; p++)
						if (strcmp(name, names[p]) == 0)
							seen[p] = true;
				}
	}
	/* Each plan ran over these filters and widths. */
	for (int p = 0; p < 4; p++)
		tu_assert(seen[p], "plan %s never ran", names[p]);
	/* Bad plans. */
	nvf_search_options so = NVF_SEARCH_OPTIONS_INIT;
	nvf_result r[K];
	size_t n;
	so.plan = 7;
	ck_assert_int_eq(nvf_search(db, NULL, vecs[0], DIM, K, &so, r, &n), NVF_EINVAL);
	ck_nvf(nvf_db_close(db));
	db = make(NVF_INDEX_FLAT);
	fill(db, &rng);
	so.plan = NVF_PLAN_ACORN;
	ck_assert_int_eq(nvf_search(db, NULL, vecs[0], DIM, K, &so, r, &n), NVF_EINVAL);
	ck_assert_ptr_nonnull(strstr(nvf_errmsg(), "no HNSW index"));
	ck_nvf(nvf_db_close(db));
}
END_TEST

START_TEST(test_a_write_transaction_searches_its_own_documents)
{
	uint64_t rng = tu_seed("test_a_write_transaction_searches_its_own_documents");
	nvf_db *db = make(NVF_INDEX_FLAT);
	fill(db, &rng);
	ck_nvf(nvf_field_add(db, NULL, "g", NVF_FIELD_INT));
	nvf_filter *f;
	ck_nvf(nvf_filter_compile(&f, "g = 42"));
	nvf_txn *txn;
	ck_nvf(nvf_txn_begin(&txn, db, 0));
	ck_nvf(nvf_meta_patch(db, txn, 5, "{\"g\":42}"));
	ck_nvf(nvf_meta_patch(db, txn, 6, "{\"g\":42}"));
	uint64_t *ids;
	size_t n;
	ck_nvf(nvf_filter_ids(db, txn, f, &ids, &n));
	tu_eq(n, 2);
	nvf_free(ids);
	nvf_search_options so = NVF_SEARCH_OPTIONS_INIT;
	so.where = f;
	nvf_result r[K];
	ck_nvf(nvf_search(db, txn, vecs[0], DIM, K, &so, r, &n));
	tu_eq(n, 2);
	/* Outside, nothing has changed until the commit. */
	ck_nvf(nvf_filter_ids(db, NULL, f, &ids, &n));
	tu_eq(n, 0);
	nvf_free(ids);
	ck_nvf(nvf_delete(db, txn, 5));
	ck_nvf(nvf_txn_commit(txn));
	/* The same compiled filter, a new state: its cached set is not reused. */
	ck_nvf(nvf_filter_ids(db, NULL, f, &ids, &n));
	tu_eq(n, 1);
	tu_eq(ids[0], 6);
	nvf_free(ids);
	ck_assert_int_eq(nvf_filter_match(db, NULL, f, 6), 1);
	ck_assert_int_eq(nvf_filter_match(db, NULL, f, 7), 0);
	ck_assert_int_eq(nvf_filter_match(db, NULL, f, 5), NVF_ENOTFOUND);
	ck_nvf(nvf_check(db, NULL));
	nvf_filter_free(f);
	ck_nvf(nvf_db_close(db));
}
END_TEST

typedef struct shared {
	nvf_db *db;
	const nvf_filter *f;
	int bad;
} shared;

static void *searcher(void *arg)
{
	shared *sh = arg;
	nvf_search_options so = NVF_SEARCH_OPTIONS_INIT;
	so.where = sh->f;
	so.threads = 1;
	for (int q = 0; q < 200; q++) {
		nvf_result r[K];
		size_t n;
		if (nvf_search(sh->db, NULL, vecs[q], DIM, K, &so, r, &n) != 0 || n != K)
			sh->bad++;
		for (size_t i = 0; i < n; i++)
			sh->bad += r[i].id % 10 != 3;
	}
	return NULL;
}

static int odd(uint64_t id, void *ctx)
{
	(void)ctx;
	return id % 2 == 1;
}

START_TEST(test_a_filter_is_shared_by_threads_and_combines_with_the_callback)
{
	uint64_t rng = tu_seed("test_a_filter_is_shared_by_threads_and_combines_with_the_callback");
	nvf_db *db = make(NVF_INDEX_HNSW);
	fill(db, &rng);
	nvf_filter *f;
	ck_nvf(nvf_filter_compile(&f, "g = 3"));
	shared sh = {db, f, 0};
	pthread_t th[4];
	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, searcher, &sh);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	tu_eq(sh.bad, 0);
	/* Both must pass: g = 3 and an odd id: none (3, 13, 23, ... are odd: all). */
	nvf_search_options so = NVF_SEARCH_OPTIONS_INIT;
	so.where = f;
	so.filter = odd;
	nvf_result r[K];
	size_t n;
	ck_nvf(nvf_search(db, NULL, vecs[0], DIM, K, &so, r, &n));
	tu_eq(n, K);
	for (size_t i = 0; i < n; i++)
		tu_assert(r[i].id % 10 == 3 && r[i].id % 2 == 1, "id %llu", (unsigned long long)r[i].id);
	nvf_filter *g4;
	ck_nvf(nvf_filter_compile(&g4, "g = 4"));
	so.where = g4;
	ck_nvf(nvf_search(db, NULL, vecs[0], DIM, K, &so, r, &n));
	tu_eq(n, 0); /* g = 4 is even only */
	/* Range search with a filter, against a brute force. */
	so.where = f;
	so.filter = NULL;
	nvf_result *all;
	size_t m, want = 0;
	ck_nvf(nvf_range_search(db, NULL, vecs[0], DIM, 200.0f, &so, &all, &m));
	for (uint64_t id = 0; id < N; id++) {
		float d;
		ck_nvf(nvf_distance(NVF_METRIC_EUCLIDEAN, vecs[0], vecs[id], DIM, &d));
		want += id % 10 == 3 && d <= 200.0f;
	}
	tu_eq(m, want);
	for (size_t i = 0; i < m; i++)
		tu_eq(all[i].id % 10, 3);
	nvf_free(all);
	nvf_filter_free(g4);
	nvf_filter_free(f);
	ck_nvf(nvf_db_close(db));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("filter");
	TCase *tc = tcase_create("filter");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_syntax_errors_name_the_column_and_what_was_expected);
	tcase_add_test(tc, test_every_plan_returns_min_k_passing_results);
	tcase_add_test(tc, test_a_write_transaction_searches_its_own_documents);
	tcase_add_test(tc, test_a_filter_is_shared_by_threads_and_combines_with_the_callback);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
