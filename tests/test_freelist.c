/* Free space by the lifetime rule: the file levels off under steady updates, pages
 * are reused as soon as no pinned state can see them (an old snapshot holds back
 * only what it sees), pins of readers and snapshots are honoured, dead readers do
 * not pin anything. Snapshots' internal API is tested here too. */
#include "nvf_int.h"
#include "testutil.h"

#include <signal.h>
#include <sys/wait.h>

#define NKEYS 1000

TU_DB_FIXTURE("f.nvf")

static nvf_db *create(int durability)
{
	nvf_open_options o = NVF_OPEN_OPTIONS_INIT;
	o.flags = NVF__OPEN_CREATE;
	o.durability = durability;
	nvf_db *db;
	ck_nvf(nvf_db_open(&db, path, &o));
	return db;
}

/* One update transaction of the fixed data set: rewrite `n` random keys with values
 * of random size (some inline, some extents). */
static void update(nvf_db *db, uint64_t *rng, int n)
{
	static uint8_t buf[6000];
	nvf_txn *txn;
	nvf_tree *t;
	ck_nvf(nvf_txn_begin(&txn, db, 0));
	ck_nvf(nvf__tree_open(txn, 1, NVF_TREE_KIND_PLAIN, &t));
	for (int i = 0; i < n; i++) {
		uint64_t k = tu_below(rng, NKEYS);
		uint64_t len = tu_below(rng, 4) == 0 ? 1500 + tu_below(rng, 4000) : 8 + tu_below(rng, 300);
		memset(buf, (int)(k & 0xff), len);
		ck_nvf(nvf__tree_put(txn, &t->d, k, buf, len, 0, NULL));
	}
	ck_nvf(nvf_txn_commit(txn));
}

static void load(nvf_db *db, uint64_t *rng)
{
	for (int i = 0; i < 20; i++)
		update(db, rng, 200);
}

START_TEST(test_file_size_levels_off_under_steady_updates)
{
	uint64_t rng = tu_seed("steady updates");
	nvf_db *db = create(NVF_DURABILITY_NOSYNC);
	load(db, &rng);
	uint64_t sizes[11];
	sizes[0] = tu_file_size(path);
	for (int k = 1; k <= 10; k++) {
		for (int i = 0; i < 1000; i++)
			update(db, &rng, 5);
		sizes[k] = tu_file_size(path);
	}
	fprintf(stderr, "file size after 0..10,000 update transactions (KiB):");
	for (int k = 0; k <= 10; k++)
		fprintf(stderr, " %llu", (unsigned long long)(sizes[k] >> 10));
	fprintf(stderr, "\n");
	/* Level: the second 5,000 transactions add less than 3%. */
	ck_assert_msg(sizes[10] <= sizes[5] + sizes[5] / 33, "grew from %llu to %llu", (unsigned long long)sizes[5],
		      (unsigned long long)sizes[10]);
	nvf_check_report rep;
	ck_nvf(nvf_check(db, &rep));
	/* Only what the last commit freed waits (for the next writer to release it). */
	ck_assert_uint_lt(rep.pages_pending, 30);
	ck_nvf(nvf_db_close(db));
}
END_TEST

START_TEST(test_old_snapshot_holds_back_only_what_it_sees)
{
	/* With the "oldest reader" rule, a snapshot taken at the start would stop all
	 * reuse and the file would grow with every update. By the lifetime rule only
	 * the pages the snapshot sees stay: the file levels off. */
	uint64_t rng = tu_seed("old snapshot");
	nvf_db *db = create(NVF_DURABILITY_NOSYNC);
	load(db, &rng);
	nvf_txn *txn;
	ck_nvf(nvf_txn_begin(&txn, db, 0));
	ck_nvf(nvf__snapshot_create(txn, "start", "before the updates"));
	ck_nvf(nvf_txn_commit(txn));
	uint64_t s1 = 0, s2;
	for (int k = 0; k < 10; k++) {
		for (int i = 0; i < 1000; i++)
			update(db, &rng, 5);
		if (k == 4)
			s1 = tu_file_size(path);
	}
	s2 = tu_file_size(path);
	ck_assert_msg(s2 <= s1 + s1 / 33, "with a snapshot: grew from %llu to %llu", (unsigned long long)s1,
		      (unsigned long long)s2);
	nvf_check_report rep;
	ck_nvf(nvf_check(db, &rep));
	ck_assert_uint_gt(rep.pages_pending, 0);     /* what the snapshot sees */
	ck_assert_uint_gt(rep.pages_snapshot_only, 0);
	ck_assert_uint_eq(rep.snapshots, 1);
	/* Deleting it releases its pages. */
	ck_nvf(nvf_txn_begin(&txn, db, 0));
	ck_nvf(nvf__snapshot_delete(txn, "start"));
	ck_nvf(nvf_txn_commit(txn));
	update(db, &rng, 1);
	update(db, &rng, 1);
	ck_nvf(nvf_check(db, &rep));
	ck_assert_uint_lt(rep.pages_pending, 30);
	ck_assert_uint_eq(rep.pages_snapshot_only, 0);
	ck_assert_uint_eq(rep.snapshots, 0);
	ck_nvf(nvf_db_close(db));
}
END_TEST

START_TEST(test_reuse_window_is_per_page_not_oldest_pin)
{
	/* State S pinned by a snapshot. A page written after S and freed later was
	 * never visible to S: it is reused at once, although S is older. */
	nvf_db *db = create(NVF_DURABILITY_FULL);
	nvf_txn *txn;
	nvf_tree *t;
	uint8_t big[20000];
	memset(big, 1, sizeof(big));
	ck_nvf(nvf_txn_begin(&txn, db, 0));
	ck_nvf(nvf__tree_open(txn, 1, NVF_TREE_KIND_PLAIN, &t));
	ck_nvf(nvf__tree_put(txn, &t->d, 1, big, 8, 0, NULL));
	ck_nvf(nvf_txn_commit(txn));
	ck_nvf(nvf_txn_begin(&txn, db, 0));
	ck_nvf(nvf__snapshot_create(txn, "S", NULL));
	ck_nvf(nvf_txn_commit(txn));
	/* Write a 5-page extent after S, then replace it twice. */
	uint64_t total[3];
	for (int round = 0; round < 3; round++) {
		ck_nvf(nvf_txn_begin(&txn, db, 0));
		ck_nvf(nvf__tree_open(txn, 1, -1, &t));
		ck_nvf(nvf__tree_put(txn, &t->d, 2, big, sizeof(big), 0, NULL));
		ck_nvf(nvf_txn_commit(txn));
		nvf_check_report rep;
		ck_nvf(nvf_check(db, &rep));
		total[round] = rep.pages_total;
	}
	/* Round 1 freed round 0's pages, visible only to the state after S; round 2
	 * reuses them instead of growing the file (the oldest-pin rule would grow). */
	ck_assert_uint_gt(total[1], total[0]);
	ck_assert_uint_eq(total[2], total[1]);
	ck_nvf(nvf_check(db, NULL));
	ck_nvf(nvf_db_close(db));
}
END_TEST

static uint64_t tree_sum(nvf_txn *txn)
{
	nvf_tree *t;
	if (nvf__tree_open(txn, 1, -1, &t) != 0)
		return 0;
	nvf_cursor c;
	uint64_t sum = 0;
	int rc;
	for (rc = nvf__cursor_seek(&c, txn, &t->d, 0); rc == 0 && c.valid; rc = nvf__cursor_next(&c)) {
		uint64_t k;
		nvf_val v;
		ck_nvf(nvf__cursor_get(&c, &k, &v));
		for (uint64_t i = 0; i < v.len; i++)
			sum = sum * 31 + v.data[i];
	}
	ck_nvf(rc);
	return sum;
}

START_TEST(test_live_reader_keeps_its_pages)
{
	uint64_t rng = tu_seed("live reader");
	nvf_db *db = create(NVF_DURABILITY_NOSYNC), *db2;
	load(db, &rng);
	ck_nvf(nvf_db_open(&db2, path, NULL));
	nvf_txn *rd;
	ck_nvf(nvf_txn_begin(&rd, db2, NVF_TXN_RDONLY));
	uint64_t before = tree_sum(rd);
	for (int i = 0; i < 300; i++)
		update(db, &rng, 20);
	/* Everything the reader saw is still there, unchanged. */
	ck_assert_uint_eq(tree_sum(rd), before);
	nvf_check_report rep;
	ck_nvf(nvf_check(db, &rep));
	ck_assert_uint_gt(rep.pages_pending, 0);
	uint64_t held = rep.pages_pending;
	nvf_txn_abort(rd);
	update(db, &rng, 1);
	update(db, &rng, 1);
	ck_nvf(nvf_check(db, &rep));
	ck_assert_uint_lt(rep.pages_pending, 30);
	ck_assert_uint_gt(held, 100);
	ck_nvf(nvf_db_close(db2));
	ck_nvf(nvf_db_close(db));
}
END_TEST

START_TEST(test_dead_reader_does_not_pin_pages)
{
	uint64_t rng = tu_seed("dead reader");
	nvf_db *db = create(NVF_DURABILITY_FULL);
	load(db, &rng);
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	pid_t pid = fork();
	if (pid == 0) {
		nvf_db *cdb;
		nvf_txn *rd;
		if (nvf_db_open(&cdb, path, NULL) != 0 || nvf_txn_begin(&rd, cdb, NVF_TXN_RDONLY) != 0)
			_exit(1);
		uint64_t id = nvf_txn_id(rd);
		if (write(p[1], &id, 8) != 8)
			_exit(2);
		pause();
		_exit(0);
	}
	uint64_t pinned;
	ck_assert_int_eq(read(p[0], &pinned, 8), 8);
	for (int i = 0; i < 20; i++)
		update(db, &rng, 50);
	nvf_check_report rep;
	ck_nvf(nvf_check(db, &rep));
	ck_assert_uint_gt(rep.pages_pending, 100); /* the live child pins */
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	update(db, &rng, 1);
	update(db, &rng, 1);
	ck_nvf(nvf_check(db, &rep));
	ck_assert_uint_lt(rep.pages_pending, 30); /* its slot was reaped */
	uint64_t *pins;
	size_t n;
	ck_nvf(nvf__lock_reader_pins(&db->lock, &pins, &n));
	for (size_t i = 0; i < n; i++)
		ck_assert_uint_ne(pins[i], pinned);
	free(pins);
	close(p[0]);
	close(p[1]);
	ck_nvf(nvf_db_close(db));
}
END_TEST

START_TEST(test_snapshot_reads_the_state_it_pinned)
{
	uint64_t rng = tu_seed("snapshot");
	nvf_db *db = create(NVF_DURABILITY_NOSYNC);
	load(db, &rng);
	nvf_txn *txn, *st;
	ck_nvf(nvf_txn_begin(&txn, db, NVF_TXN_RDONLY));
	uint64_t at_snapshot = tree_sum(txn);
	uint64_t pinned_id = nvf_txn_id(txn);
	nvf_txn_abort(txn);
	ck_nvf(nvf_txn_begin(&txn, db, 0));
	ck_nvf(nvf__snapshot_create(txn, "v1", "a note"));
	ck_assert_int_eq(nvf__snapshot_create(txn, "v1", NULL), NVF_EEXIST);
	ck_assert_int_eq(nvf__snapshot_create(txn, "", NULL), NVF_EINVAL);
	ck_assert_int_eq(nvf__snapshot_create(txn, "a/b", NULL), NVF_EINVAL);
	ck_assert_ptr_nonnull(strstr(nvf_errmsg(), "not allowed"));
	ck_nvf(nvf_txn_commit(txn));
	for (int i = 0; i < 100; i++)
		update(db, &rng, 10);
	ck_nvf(nvf_db_close(db));
	ck_nvf(nvf_db_open(&db, path, NULL));
	ck_nvf(nvf__snapshot_begin(&st, db, "v1"));
	ck_assert_uint_eq(nvf_txn_id(st), pinned_id);
	ck_assert_uint_eq(tree_sum(st), at_snapshot);
	/* Read-only, and deletion waits for no one: the reader's pin keeps the pages. */
	nvf_tree *t;
	ck_nvf(nvf__tree_open(st, 1, -1, &t));
	uint64_t x = 0;
	ck_assert_int_eq(nvf__tree_put(st, &t->d, 1, &x, 8, 0, NULL), NVF_EREADONLY);
	ck_nvf(nvf_txn_begin(&txn, db, 0));
	ck_nvf(nvf__snapshot_delete(txn, "v1"));
	ck_nvf(nvf_txn_commit(txn));
	for (int i = 0; i < 50; i++)
		update(db, &rng, 10);
	ck_assert_uint_eq(tree_sum(st), at_snapshot);
	nvf_txn_abort(st);
	ck_assert_int_eq(nvf__snapshot_begin(&st, db, "v1"), NVF_ENOTFOUND);
	ck_nvf(nvf_txn_begin(&txn, db, 0));
	ck_assert_int_eq(nvf__snapshot_delete(txn, "v1"), NVF_ENOTFOUND);
	nvf_txn_abort(txn);
	ck_nvf(nvf_check(db, NULL));
	ck_nvf(nvf_db_close(db));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("freelist");
	TCase *tc = tcase_create("freelist");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_file_size_levels_off_under_steady_updates);
	tcase_add_test(tc, test_old_snapshot_holds_back_only_what_it_sees);
	tcase_add_test(tc, test_reuse_window_is_per_page_not_oldest_pin);
	tcase_add_test(tc, test_live_reader_keeps_its_pages);
	tcase_add_test(tc, test_dead_reader_does_not_pin_pages);
	tcase_add_test(tc, test_snapshot_reads_the_state_it_pinned);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
