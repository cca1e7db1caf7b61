/* The copy-on-write B+tree against an in-memory model: random puts (inline and
 * extent values), deletes and lookups over thousands of keys and hundreds of
 * transactions, some aborted, with every state compared entry by entry. */
#include "nvf_int.h"
#include "testutil.h"

#define NKEYS 3000

typedef struct model {
	int64_t len[NKEYS]; /* -1: absent */
	uint64_t ver[NKEYS];
	bool ext[NKEYS];
	uint64_t count;
} model;

static void fill_value(uint8_t *buf, uint64_t len, uint64_t key, uint64_t ver)
{
	uint64_t s = tu_mix(key * 1000003u + ver);
	for (uint64_t i = 0; i < len; i++) {
		if ((i & 7) == 0)
			s = tu_mix(s);
		buf[i] = (uint8_t)(s >> ((i & 7) * 8));
	}
}

static uint64_t pick_len(uint64_t *rng)
{
	uint64_t r = tu_below(rng, 100);
	if (r < 70)
		return tu_below(rng, 65);
	if (r < 90)
		return 65 + tu_below(rng, 900);
	return 1000 + tu_below(rng, 20000);
}

static void verify(nvf_txn *txn, const struct nvf_disk_tree *t, const model *m, uint64_t *rng)
{
	static uint8_t expect[21000];
	tu_eq(t->count, m->count);
	/* Full scan in order. */
	nvf_cursor c;
	uint64_t seen = 0, prev = 0;
	bool first = true;
	int rc;
	for (rc = nvf__cursor_seek(&c, txn, t, 0); rc == 0 && c.valid; rc = nvf__cursor_next(&c)) {
		uint64_t k;
		nvf_val v;
		ck_nvf(nvf__cursor_get(&c, &k, &v));
		tu_assert(first || k > prev, "keys out of order: %llu after %llu", (unsigned long long)k,
			      (unsigned long long)prev);
		ck_assert_uint_lt(k, NKEYS);
		tu_assert(m->len[k] >= 0, "key %llu present in tree, absent in model", (unsigned long long)k);
		tu_eq(v.len, (uint64_t)m->len[k]);
		if (m->ext[k])
			tu_assert(v.extent, "v.extent");
		fill_value(expect, v.len, k, m->ver[k]);
		tu_assert(memcmp(v.data, expect, v.len) == 0, "value of key %llu differs", (unsigned long long)k);
		first = false;
		prev = k;
		seen++;
	}
	ck_nvf(rc);
	tu_eq(seen, m->count);
	/* Point lookups and ordered seeks at random keys. */
	for (int i = 0; i < 200; i++) {
		uint64_t k = tu_below(rng, NKEYS + 10);
		nvf_val v;
		rc = nvf__tree_get(txn, t, k, &v);
		if (k < NKEYS && m->len[k] >= 0)
			tu_eq(rc, 0);
		else
			tu_eq(rc, NVF_ENOTFOUND);
		/* seek: first key >= k */
		uint64_t want = UINT64_MAX;
		for (uint64_t j = k; j < NKEYS; j++)
			if (m->len[j] >= 0) {
				want = j;
				break;
			}
		ck_nvf(nvf__cursor_seek(&c, txn, t, k));
		if (want == UINT64_MAX) {
			tu_assert(!c.valid, "!c.valid");
		} else {
			uint64_t got;
			tu_assert(c.valid, "c.valid");
			ck_nvf(nvf__cursor_get(&c, &got, NULL));
			tu_eq(got, want);
		}
		/* seek_le: last key <= k */
		want = UINT64_MAX;
		for (int64_t j = (int64_t)(k < NKEYS ? k : NKEYS - 1); j >= 0; j--)
			if (m->len[j] >= 0) {
				want = (uint64_t)j;
				break;
			}
		ck_nvf(nvf__cursor_seek_le(&c, txn, t, k));
		if (want == UINT64_MAX) {
			tu_assert(!c.valid, "!c.valid");
		} else {
			uint64_t got;
			tu_assert(c.valid, "c.valid");
			ck_nvf(nvf__cursor_get(&c, &got, NULL));
			tu_eq(got, want);
		}
	}
}

static void run_model(uint32_t page_size, int ntxn, const char *name)
{
	uint64_t rng = tu_seed(name);
	char *dir = tu_tmpdir(), *path = tu_path(dir, "t.nvf");
	nvf_open_options o = NVF_OPEN_OPTIONS_INIT;
	o.flags = NVF__OPEN_CREATE;
	o.page_size = page_size;
	o.durability = NVF_DURABILITY_NOSYNC;
	nvf_db *db;
	ck_nvf(nvf_db_open(&db, path, &o));
	static model committed, work;
	for (int k = 0; k < NKEYS; k++)
		committed.len[k] = -1;
	committed.count = 0;
	static uint8_t buf[21000];
	for (int t = 0; t < ntxn; t++) {
		nvf_txn *txn;
		ck_nvf(nvf_txn_begin(&txn, db, 0));
		nvf_tree *tree;
		ck_nvf(nvf__tree_open(txn, 7, NVF_TREE_KIND_PLAIN, &tree));
		work = committed;
		/* Phases: grow, churn, shrink, so that splits, merges and root collapse
		 * all happen. */
		int phase = (t * 3) / ntxn;
		int nops = 1 + (int)tu_below(&rng, t % 10 == 0 ? 600 : 150);
		for (int i = 0; i < nops; i++) {
			uint64_t k = tu_below(&rng, NKEYS);
			uint64_t r = tu_below(&rng, 100);
			int put_pct = phase == 0 ? 85 : phase == 1 ? 55 : 20;
			if (r < (uint64_t)put_pct) {
				uint64_t len = pick_len(&rng);
				bool force = tu_below(&rng, 10) == 0;
				uint64_t ver = work.ver[k] + 1;
				fill_value(buf, len, k, ver);
				unsigned fl = force ? NVF_PUT_EXTENT : 0;
				bool noover = tu_below(&rng, 5) == 0;
				if (noover)
					fl |= NVF_PUT_NOOVERWRITE;
				int rc = nvf__tree_put(txn, &tree->d, k, buf, len, fl, NULL);
				if (noover && work.len[k] >= 0) {
					tu_eq(rc, NVF_EEXIST);
					continue;
				}
				tu_assert(rc == 0, "put %llu: %s", (unsigned long long)k, nvf_errmsg());
				if (work.len[k] < 0)
					work.count++;
				work.len[k] = (int64_t)len;
				work.ver[k] = ver;
				work.ext[k] = force || len > nvf__tree_max_inline(db);
			} else if (r < 98) {
				int rc = nvf__tree_del(txn, &tree->d, k);
				if (work.len[k] < 0) {
					tu_eq(rc, NVF_ENOTFOUND);
				} else {
					tu_assert(rc == 0, "del %llu: %s", (unsigned long long)k, nvf_errmsg());
					work.len[k] = -1;
					work.count--;
				}
			} else if (work.len[k] > 0) {
				/* Rewrite an extent value in place through extent_mut. */
				uint8_t *p;
				uint64_t len;
				int rc = nvf__tree_extent_mut(txn, &tree->d, k, &p, &len);
				if (work.ext[k]) {
					tu_eq(rc, 0);
					tu_eq(len, (uint64_t)work.len[k]);
					work.ver[k]++;
					fill_value(p, len, k, work.ver[k]);
				} else {
					tu_eq(rc, NVF_EINVAL);
				}
			}
		}
		verify(txn, &tree->d, &work, &rng);
		if (tu_below(&rng, 10) == 0) {
			nvf_txn_abort(txn);
		} else {
			ck_nvf(nvf_txn_commit(txn));
			committed = work;
		}
		/* The committed state, seen by a read transaction. */
		nvf_txn *rd;
		ck_nvf(nvf_txn_begin(&rd, db, NVF_TXN_RDONLY));
		nvf_tree *rt;
		int rc = nvf__tree_open(rd, 7, -1, &rt);
		if (rc == NVF_ENOTFOUND) {
			tu_eq(committed.count, 0);
		} else {
			ck_nvf(rc);
			verify(rd, &rt->d, &committed, &rng);
		}
		nvf_txn_abort(rd);
		if (t % 10 == 9) {
			nvf_check_report rep;
			rc = nvf_check(db, &rep);
			tu_assert(rc == 0, "check after txn %d: %s", t, rep.problem);
		}
	}
	ck_nvf(nvf_db_close(db));
	/* And again after reopening. */
	o.flags = 0;
	ck_nvf(nvf_db_open(&db, path, &o));
	nvf_txn *rd;
	ck_nvf(nvf_txn_begin(&rd, db, NVF_TXN_RDONLY));
	nvf_tree *rt;
	ck_nvf(nvf__tree_open(rd, 7, -1, &rt));
	verify(rd, &rt->d, &committed, &rng);
	nvf_txn_abort(rd);
	ck_nvf(nvf_check(db, NULL));
	ck_nvf(nvf_db_close(db));
	tu_rmrf(dir);
	free(dir);
	free(path);
}

START_TEST(test_tree_matches_model_with_small_pages)
{
	run_model(512, 300, "test_tree_matches_model_with_small_pages");
}
END_TEST

START_TEST(test_tree_matches_model_with_default_pages)
{
	run_model(4096, 200, "test_tree_matches_model_with_default_pages");
}
END_TEST

START_TEST(test_sequential_keys_pack_leaves_densely)
{
	char *dir = tu_tmpdir(), *path = tu_path(dir, "seq.nvf");
	nvf_open_options o = NVF_OPEN_OPTIONS_INIT;
	o.flags = NVF__OPEN_CREATE;
	nvf_db *db;
	ck_nvf(nvf_db_open(&db, path, &o));
	nvf_txn *txn;
	ck_nvf(nvf_txn_begin(&txn, db, 0));
	nvf_tree *t;
	ck_nvf(nvf__tree_open(txn, 1, NVF_TREE_KIND_PLAIN, &t));
	uint64_t v = 0;
	for (uint64_t k = 0; k < 100000; k++)
		ck_nvf(nvf__tree_put(txn, &t->d, k, &v, sizeof(v), 0, NULL));
	ck_nvf(nvf_txn_commit(txn));
	nvf_check_report rep;
	ck_nvf(nvf_check(db, &rep));
	/* 100,000 cells of 24+2 bytes in 4064-byte leaves: 640 full leaves. Allow 5%
	 * for branches and system trees; a half-full layout would need ~1280. */
	tu_assert(rep.pages_live < 700, "%llu live pages", (unsigned long long)rep.pages_live);
	ck_nvf(nvf_db_close(db));
	tu_rmrf(dir);
	free(dir);
	free(path);
}
END_TEST

START_TEST(test_catalog_keeps_many_trees_apart)
{
	char *dir = tu_tmpdir(), *path = tu_path(dir, "cat.nvf");
	nvf_open_options o = NVF_OPEN_OPTIONS_INIT;
	o.flags = NVF__OPEN_CREATE;
	o.page_size = 512;
	nvf_db *db;
	ck_nvf(nvf_db_open(&db, path, &o));
	nvf_txn *txn;
	ck_nvf(nvf_txn_begin(&txn, db, 0));
	for (uint64_t id = 1; id <= 50; id++) {
		nvf_tree *t;
		ck_nvf(nvf__tree_open(txn, id, NVF_TREE_KIND_PLAIN, &t));
		for (uint64_t k = 0; k < id * 3; k++) {
			uint64_t v = id * 1000 + k;
			ck_nvf(nvf__tree_put(txn, &t->d, k, &v, 8, 0, NULL));
		}
	}
	ck_nvf(nvf_txn_commit(txn));
	ck_nvf(nvf_txn_begin(&txn, db, NVF_TXN_RDONLY));
	for (uint64_t id = 1; id <= 50; id++) {
		nvf_tree *t;
		ck_nvf(nvf__tree_open(txn, id, -1, &t));
		tu_eq(t->d.count, id * 3);
		nvf_val v;
		ck_nvf(nvf__tree_get(txn, &t->d, id * 3 - 1, &v));
		uint64_t x;
		memcpy(&x, v.data, 8);
		tu_eq(x, id * 1000 + id * 3 - 1);
	}
	nvf_tree *none;
	tu_eq(nvf__tree_open(txn, 51, -1, &none), NVF_ENOTFOUND);
	/* A read transaction cannot create trees. */
	tu_eq(nvf__tree_open(txn, 52, NVF_TREE_KIND_PLAIN, &none), NVF_EREADONLY);
	nvf_txn_abort(txn);
	ck_nvf(nvf_check(db, NULL));
	ck_nvf(nvf_db_close(db));
	tu_rmrf(dir);
	free(dir);
	free(path);
}
END_TEST

START_TEST(test_drop_frees_every_page)
{
	char *dir = tu_tmpdir(), *path = tu_path(dir, "drop.nvf");
	nvf_open_options o = NVF_OPEN_OPTIONS_INIT;
	o.flags = NVF__OPEN_CREATE;
	nvf_db *db;
	ck_nvf(nvf_db_open(&db, path, &o));
	nvf_txn *txn;
	ck_nvf(nvf_txn_begin(&txn, db, 0));
	nvf_tree *t;
	ck_nvf(nvf__tree_open(txn, 3, NVF_TREE_KIND_PLAIN, &t));
	uint8_t big[10000] = {1};
	for (uint64_t k = 0; k < 500; k++)
		ck_nvf(nvf__tree_put(txn, &t->d, k, big, k % 3 ? 16 : sizeof(big), 0, NULL));
	ck_nvf(nvf_txn_commit(txn));
	nvf_check_report before, after;
	ck_nvf(nvf_check(db, &before));
	ck_nvf(nvf_txn_begin(&txn, db, 0));
	ck_nvf(nvf__tree_open(txn, 3, -1, &t));
	ck_nvf(nvf__tree_drop(txn, &t->d));
	ck_nvf(nvf_txn_commit(txn));
	/* One more commit lets the pages freed by the drop become reusable. */
	ck_nvf(nvf_txn_begin(&txn, db, 0));
	ck_nvf(nvf__tree_open(txn, 4, NVF_TREE_KIND_PLAIN, &t));
	ck_nvf(nvf__tree_put(txn, &t->d, 1, big, 8, 0, NULL));
	ck_nvf(nvf_txn_commit(txn));
	ck_nvf(nvf_check(db, &after));
	ck_assert_uint_lt(after.pages_live, 12);
	ck_assert_uint_gt(after.pages_free, before.pages_live - 12);
	ck_nvf(nvf_db_close(db));
	tu_rmrf(dir);
	free(dir);
	free(path);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("btree");
	TCase *tc = tcase_create("model");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_tree_matches_model_with_small_pages);
	tcase_add_test(tc, test_tree_matches_model_with_default_pages);
	tcase_add_test(tc, test_sequential_keys_pack_leaves_densely);
	tcase_add_test(tc, test_catalog_keeps_many_trees_apart);
	tcase_add_test(tc, test_drop_frees_every_page);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
