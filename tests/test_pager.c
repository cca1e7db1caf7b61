/* The pager and transactions: creating and opening, options and their errors,
 * read-only handles, durability modes, map limits, the lock file, meta repair. */
#include "faultio.h"

#include <fcntl.h>
#include <pthread.h>

TU_DB_FIXTURE("p.nvf")

static nvf_db *create(uint32_t page_size, int durability)
{
	nvf_open_options o = NVF_OPEN_OPTIONS_INIT;
	o.flags = NVF__OPEN_CREATE;
	o.page_size = page_size;
	o.durability = durability;
	nvf_db *db;
	ck_nvf(nvf_db_open(&db, path, &o));
	return db;
}

static void put_u64(nvf_db *db, uint64_t key, uint64_t val)
{
	nvf_txn *txn;
	nvf_tree *t;
	ck_nvf(nvf_txn_begin(&txn, db, 0));
	ck_nvf(nvf__tree_open(txn, 1, NVF_TREE_KIND_PLAIN, &t));
	ck_nvf(nvf__tree_put(txn, &t->d, key, &val, 8, 0, NULL));
	ck_nvf(nvf_txn_commit(txn));
}

static int get_u64(nvf_db *db, uint64_t key, uint64_t *val)
{
	nvf_txn *txn;
	nvf_tree *t;
	int rc = nvf_txn_begin(&txn, db, NVF_TXN_RDONLY);
	if (rc != 0)
		return rc;
	rc = nvf__tree_open(txn, 1, -1, &t);
	nvf_val v;
	if (rc == 0)
		rc = nvf__tree_get(txn, &t->d, key, &v);
	if (rc == 0)
		memcpy(val, v.data, 8);
	nvf_txn_abort(txn);
	return rc;
}

START_TEST(test_create_then_reopen_keeps_data)
{
	nvf_db *db = create(0, NVF_DURABILITY_FULL);
	put_u64(db, 5, 55);
	ck_nvf(nvf_db_close(db));
	ck_nvf(nvf_db_open(&db, path, NULL));
	uint64_t v;
	ck_nvf(get_u64(db, 5, &v));
	ck_assert_uint_eq(v, 55);
	ck_assert_int_eq(get_u64(db, 6, &v), NVF_ENOTFOUND);
	ck_nvf(nvf_check(db, NULL));
	ck_nvf(nvf_db_close(db));
}
END_TEST

START_TEST(test_every_page_size_works)
{
	for (uint32_t ps = 512; ps <= 65536; ps *= 2) {
		unlink(path);
		nvf_db *db = create(ps, NVF_DURABILITY_NOSYNC);
		for (uint64_t k = 0; k < 300; k++)
			put_u64(db, k, k * 3);
		ck_nvf(nvf_db_close(db));
		ck_nvf(nvf_db_open(&db, path, NULL));
		ck_assert_uint_eq(db->psize, ps);
		uint64_t v;
		ck_nvf(get_u64(db, 299, &v));
		ck_assert_uint_eq(v, 897);
		ck_nvf(nvf_check(db, NULL));
		ck_nvf(nvf_db_close(db));
	}
}
END_TEST

START_TEST(test_bad_options_are_rejected)
{
	nvf_db *db = NULL;
	nvf_open_options o = NVF_OPEN_OPTIONS_INIT;
	o.flags = NVF__OPEN_CREATE;
	o.page_size = 3000;
	ck_assert_int_eq(nvf_db_open(&db, path, &o), NVF_EINVAL);
	ck_assert_ptr_nonnull(strstr(nvf_errmsg(), "page size 3000"));
	ck_assert_ptr_null(db);
	o.page_size = 131072;
	ck_assert_int_eq(nvf_db_open(&db, path, &o), NVF_EINVAL);
	o.page_size = 0;
	o.version = 99;
	ck_assert_int_eq(nvf_db_open(&db, path, &o), NVF_EINVAL);
	ck_assert_ptr_nonnull(strstr(nvf_errmsg(), "NVF_OPEN_OPTIONS_INIT"));
	o.version = NVF_OPEN_OPTIONS_VERSION;
	o.durability = 7;
	ck_assert_int_eq(nvf_db_open(&db, path, &o), NVF_EINVAL);
	o.durability = NVF_DURABILITY_FULL;
	o.flags = NVF__OPEN_CREATE | NVF_OPEN_RDONLY;
	ck_assert_int_eq(nvf_db_open(&db, path, &o), NVF_EINVAL);
	o.flags = 0x100000;
	ck_assert_int_eq(nvf_db_open(&db, path, &o), NVF_EINVAL);
	ck_assert_int_eq(nvf_db_open(NULL, path, NULL), NVF_EINVAL);
	ck_assert_int_eq(nvf_db_open(&db, "", NULL), NVF_EINVAL);
	/* Nothing was created by any of these. */
	ck_assert_int_ne(access(path, F_OK), 0);
	ck_assert_int_eq(nvf_db_open(&db, path, NULL), NVF_ENOTFOUND);
	ck_assert_ptr_nonnull(strstr(nvf_errmsg(), "no such database"));
	ck_assert_int_eq(nvf_db_close(NULL), 0);
}
END_TEST

START_TEST(test_exclusive_create_refuses_existing_file)
{
	nvf_db *db = create(0, NVF_DURABILITY_FULL);
	ck_nvf(nvf_db_close(db));
	nvf_open_options o = NVF_OPEN_OPTIONS_INIT;
	o.flags = NVF__OPEN_CREATE | NVF__OPEN_EXCL;
	ck_assert_int_eq(nvf_db_open(&db, path, &o), NVF_EEXIST);
	o.flags = NVF__OPEN_CREATE; /* without EXCL: just opens it */
	ck_nvf(nvf_db_open(&db, path, &o));
	ck_nvf(nvf_db_close(db));
}
END_TEST

START_TEST(test_read_only_handle_refuses_writes)
{
	nvf_db *db = create(0, NVF_DURABILITY_FULL);
	put_u64(db, 1, 10);
	ck_nvf(nvf_db_close(db));
	nvf_open_options o = NVF_OPEN_OPTIONS_INIT;
	o.flags = NVF_OPEN_RDONLY;
	ck_nvf(nvf_db_open(&db, path, &o));
	nvf_txn *txn = NULL;
	ck_assert_int_eq(nvf_txn_begin(&txn, db, 0), NVF_EREADONLY);
	ck_assert_ptr_null(txn);
	ck_assert_int_eq(nvf_db_sync(db), NVF_EREADONLY);
	uint64_t v;
	ck_nvf(get_u64(db, 1, &v));
	ck_assert_uint_eq(v, 10);
	/* A read transaction cannot write either. */
	ck_nvf(nvf_txn_begin(&txn, db, NVF_TXN_RDONLY));
	nvf_tree *t;
	ck_nvf(nvf__tree_open(txn, 1, -1, &t));
	ck_assert_int_eq(nvf__tree_put(txn, &t->d, 2, &v, 8, 0, NULL), NVF_EREADONLY);
	ck_assert_int_eq(nvf__tree_del(txn, &t->d, 1), NVF_EREADONLY);
	ck_nvf(nvf_txn_commit(txn)); /* ending a read transaction */
	ck_nvf(nvf_db_close(db));
}
END_TEST

START_TEST(test_abort_discards_everything)
{
	nvf_db *db = create(0, NVF_DURABILITY_FULL);
	put_u64(db, 1, 10);
	uint64_t size = tu_file_size(path);
	nvf_txn *txn;
	nvf_tree *t;
	ck_nvf(nvf_txn_begin(&txn, db, 0));
	ck_nvf(nvf__tree_open(txn, 1, -1, &t));
	uint8_t big[50000] = {7};
	for (uint64_t k = 2; k < 200; k++)
		ck_nvf(nvf__tree_put(txn, &t->d, k, big, sizeof(big), 0, NULL));
	ck_nvf(nvf__tree_del(txn, &t->d, 1));
	uint64_t id = nvf_txn_id(txn);
	nvf_txn_abort(txn);
	uint64_t v;
	ck_nvf(get_u64(db, 1, &v));
	ck_assert_uint_eq(v, 10);
	ck_assert_uint_eq(tu_file_size(path), size); /* nothing written */
	ck_nvf(nvf_txn_begin(&txn, db, 0));
	ck_assert_uint_eq(nvf_txn_id(txn), id); /* the id is not burnt */
	nvf_txn_abort(txn);
	nvf_txn_abort(NULL);
	ck_nvf(nvf_check(db, NULL));
	ck_nvf(nvf_db_close(db));
}
END_TEST

START_TEST(test_failed_transaction_must_be_aborted)
{
	nvf_db *db = create(512, NVF_DURABILITY_FULL);
	nvf_txn *txn;
	nvf_tree *t;
	ck_nvf(nvf_txn_begin(&txn, db, 0));
	ck_nvf(nvf__tree_open(txn, 1, NVF_TREE_KIND_PLAIN, &t));
	/* Damage the transaction's view: a tree root pointing past the end. */
	t->d.root = 999999;
	t->d.depth = 1;
	uint64_t v = 1;
	ck_assert_int_eq(nvf__tree_put(txn, &t->d, 1, &v, 8, 0, NULL), NVF_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(nvf_errmsg(), "page 999999"));
	ck_assert_int_eq(nvf__tree_put(txn, &t->d, 1, &v, 8, 0, NULL), NVF_EBADTXN);
	ck_assert_int_eq(nvf_txn_commit(txn), NVF_EBADTXN);
	ck_nvf(nvf_check(db, NULL));
	ck_nvf(nvf_db_close(db));
}
END_TEST

START_TEST(test_one_write_transaction_per_handle)
{
	nvf_db *db = create(0, NVF_DURABILITY_FULL);
	nvf_txn *a, *b = NULL;
	ck_nvf(nvf_txn_begin(&a, db, 0));
	/* The handle's own write transaction: busy, not "locked by another writer";
	 * waiting in the same thread would never end, so it fails even with WAIT. */
	ck_assert_int_eq(nvf_txn_begin(&b, db, 0), NVF_EBUSY);
	ck_assert_ptr_nonnull(strstr(nvf_errmsg(), "this handle's write transaction is still open"));
	ck_assert_int_eq(nvf_txn_begin(&b, db, NVF_TXN_WAIT), NVF_EBUSY);
	ck_assert_ptr_null(b);
	ck_assert_int_eq(nvf_db_sync(db), NVF_EBUSY);
	/* Reads go on meanwhile. */
	ck_nvf(nvf_txn_begin(&b, db, NVF_TXN_RDONLY));
	nvf_txn_abort(b);
	nvf_txn_abort(a);
	ck_nvf(nvf_txn_begin(&a, db, 0));
	nvf_txn_abort(a);
	ck_assert_int_eq(nvf_txn_begin(&a, db, 0x80), NVF_EINVAL);
	ck_nvf(nvf_db_close(db));
}
END_TEST

START_TEST(test_second_handle_is_locked_out_then_waits)
{
	nvf_db *a = create(0, NVF_DURABILITY_FULL), *b;
	ck_nvf(nvf_db_open(&b, path, NULL));
	nvf_txn *ta, *tb = NULL;
	ck_nvf(nvf_txn_begin(&ta, a, 0));
	ck_assert_int_eq(nvf_txn_begin(&tb, b, 0), NVF_ELOCKED);
	ck_assert_ptr_nonnull(strstr(nvf_errmsg(), "write lock"));
	nvf_txn_abort(ta);
	ck_nvf(nvf_txn_begin(&tb, b, 0));
	nvf_txn_abort(tb);
	ck_nvf(nvf_db_close(a));
	ck_nvf(nvf_db_close(b));
}
END_TEST

static void *waiter(void *arg)
{
	nvf_db *db = arg;
	nvf_txn *t;
	intptr_t rc = nvf_txn_begin(&t, db, NVF_TXN_WAIT);
	if (rc == 0) {
		nvf_tree *tr;
		uint64_t v = 2;
		rc = nvf__tree_open(t, 1, NVF_TREE_KIND_PLAIN, &tr);
		if (rc == 0)
			rc = nvf__tree_put(t, &tr->d, 2, &v, 8, 0, NULL);
		if (rc == 0)
			rc = nvf_txn_commit(t);
		else
			nvf_txn_abort(t);
	}
	return (void *)rc;
}

START_TEST(test_waiting_writer_proceeds_after_commit)
{
	nvf_db *a = create(0, NVF_DURABILITY_FULL), *b;
	ck_nvf(nvf_db_open(&b, path, NULL));
	nvf_txn *ta;
	ck_nvf(nvf_txn_begin(&ta, a, 0));
	nvf_tree *t;
	ck_nvf(nvf__tree_open(ta, 1, NVF_TREE_KIND_PLAIN, &t));
	uint64_t v = 1;
	ck_nvf(nvf__tree_put(ta, &t->d, 1, &v, 8, 0, NULL));
	pthread_t th;
	pthread_create(&th, NULL, waiter, b);
	usleep(100000);
	ck_nvf(nvf_txn_commit(ta));
	void *ret;
	pthread_join(th, &ret);
	ck_assert_int_eq((intptr_t)ret, 0);
	ck_nvf(get_u64(a, 1, &v));
	ck_assert_uint_eq(v, 1);
	ck_nvf(get_u64(a, 2, &v));
	ck_assert_uint_eq(v, 2);
	ck_nvf(nvf_db_close(a));
	ck_nvf(nvf_db_close(b));
}
END_TEST

START_TEST(test_nosync_close_makes_state_durable)
{
	nvf_db *db = create(0, NVF_DURABILITY_NOSYNC);
	put_u64(db, 1, 1);
	struct nvf_disk_meta m;
	ck_nvf(nvf__meta_read_best(db, &m, NULL, NULL));
	ck_assert_uint_eq(m.flags & NVF_META_DURABLE, 0);
	ck_nvf(nvf_db_sync(db));
	ck_nvf(nvf__meta_read_best(db, &m, NULL, NULL));
	ck_assert_uint_ne(m.flags & NVF_META_DURABLE, 0);
	put_u64(db, 2, 2);
	ck_nvf(nvf_db_close(db)); /* syncs */
	ck_nvf(nvf_db_open(&db, path, NULL));
	ck_nvf(nvf__meta_read_best(db, &m, NULL, NULL));
	ck_assert_uint_ne(m.flags & NVF_META_DURABLE, 0);
	uint64_t v;
	ck_nvf(get_u64(db, 2, &v));
	ck_nvf(nvf_db_close(db));
}
END_TEST

START_TEST(test_nosync_machine_crash_falls_back_to_last_sync)
{
	/* Commit with NOSYNC, sync once, commit more, then "lose power": every write
	 * since the sync is dropped except some torn ones. A fresh boot (no lock file)
	 * must open the file, verified, at the synced state or a later complete one. */
	for (int trial = 0; trial < 20; trial++) {
		unlink(path);
		char *lock = tu_path(dir, "p.nvf-lock");
		nvf_db *db = create(512, NVF_DURABILITY_NOSYNC);
		ck_nvf(nvf_db_close(db));
		faultio f;
		fio_init(&f, path);
		nvf_open_options o = NVF_OPEN_OPTIONS_INIT;
		o.durability = NVF_DURABILITY_NOSYNC;
		ck_nvf(nvf__db_open_io(&db, path, &o, &f.io));
		for (uint64_t k = 0; k < 50; k++)
			put_u64(db, k, k);
		ck_nvf(nvf_db_sync(db));
		for (uint64_t k = 0; k < 50 + (uint64_t)trial * 7; k++)
			put_u64(db, k, 1000 + k);
		f.mode = trial % 2 ? FIO_TEAR : FIO_DROP;
		f.rng = (uint64_t)trial;
		f.crash_sync = f.syncs + 1;
		nvf_db_close(db); /* the close's sync is where the power goes */
		ck_assert(f.crashed);
		fio_fini(&f);
		unlink(lock); /* a reboot: the page cache is gone */
		/* A read-only handle first: it cannot repair, it must read around. */
		nvf_open_options ro = NVF_OPEN_OPTIONS_INIT;
		ro.flags = NVF_OPEN_RDONLY;
		ck_nvf(nvf_db_open(&db, path, &ro));
		nvf_check_report rep;
		ck_nvf(nvf_check(db, &rep));
		ck_nvf(nvf_db_close(db));
		unlink(lock);
		free(lock);
		ck_nvf(nvf_db_open(&db, path, NULL));
		ck_nvf(nvf_check(db, NULL));
		/* Each put committed one key: the state is the synced one plus a prefix
		 * of the later commits (keys below m rewritten), never a mix. */
		uint64_t m = 0, v;
		for (uint64_t k = 0; k < 50; k++) {
			ck_nvf(get_u64(db, k, &v));
			if (v == 1000 + k)
				ck_assert_msg(m == k, "trial %d: key %llu rewritten after an older one was not",
					      trial, (unsigned long long)k);
			else
				ck_assert_msg(v == k, "trial %d: key %llu holds %llu", trial, (unsigned long long)k,
					      (unsigned long long)v);
			m += v == 1000 + k;
		}
		ck_nvf(nvf_db_close(db));
	}
}
END_TEST

START_TEST(test_map_size_limits_growth)
{
	nvf_open_options o = NVF_OPEN_OPTIONS_INIT;
	o.flags = NVF__OPEN_CREATE;
	o.map_size = 64 * 4096;
	nvf_db *db;
	ck_nvf(nvf_db_open(&db, path, &o));
	nvf_txn *txn;
	nvf_tree *t;
	ck_nvf(nvf_txn_begin(&txn, db, 0));
	ck_nvf(nvf__tree_open(txn, 1, NVF_TREE_KIND_PLAIN, &t));
	uint8_t big[100000];
	memset(big, 1, sizeof(big));
	int rc = 0;
	for (uint64_t k = 0; k < 10 && rc == 0; k++)
		rc = nvf__tree_put(txn, &t->d, k, big, sizeof(big), 0, NULL);
	ck_assert_int_eq(rc, NVF_EFULL);
	ck_assert_ptr_nonnull(strstr(nvf_errmsg(), "map_size"));
	nvf_txn_abort(txn);
	ck_nvf(nvf_check(db, NULL));
	ck_nvf(nvf_db_close(db));
}
END_TEST

START_TEST(test_lock_file_is_rebuilt_when_missing)
{
	nvf_db *db = create(0, NVF_DURABILITY_FULL);
	put_u64(db, 1, 1);
	ck_nvf(nvf_db_close(db));
	char *lock = tu_path(dir, "p.nvf-lock");
	ck_assert_int_eq(access(lock, F_OK), 0);
	unlink(lock);
	ck_nvf(nvf_db_open(&db, path, NULL));
	ck_assert_int_eq(access(lock, F_OK), 0);
	put_u64(db, 2, 2);
	/* Garbage in the lock file of a closed database is rebuilt too. */
	ck_nvf(nvf_db_close(db));
	int fd = open(lock, O_WRONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "garbage garbage garbage", 23), 23);
	close(fd);
	ck_nvf(nvf_db_open(&db, path, NULL));
	uint64_t v;
	ck_nvf(get_u64(db, 2, &v));
	ck_nvf(nvf_db_close(db));
	/* A table full of stale slots, too short, or too long: the first opener
	 * clears every slot and sizes the file to exactly one table. */
	static uint8_t junk[65536], back[32768];
	memset(junk, 0xFF, sizeof(junk));
	const size_t sizes[] = {sizeof(back), 10, sizeof(junk)};
	for (int i = 0; i < 3; i++) {
		fd = open(lock, O_WRONLY | O_TRUNC);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(write(fd, junk, sizes[i]), (ssize_t)sizes[i]);
		close(fd);
		ck_nvf(nvf_db_open(&db, path, NULL));
		fd = open(lock, O_RDONLY);
		ck_assert_int_eq(pread(fd, back, sizeof(back), 0), (ssize_t)sizeof(back));
		struct stat st;
		ck_assert_int_eq(fstat(fd, &st), 0);
		ck_assert_int_eq(st.st_size, (off_t)sizeof(back));
		close(fd);
		for (size_t b = 128; b < sizeof(back); b++)
			ck_assert_msg(back[b] == 0, "size %zu: stale slot byte %zu survived", sizes[i], b);
		ck_nvf(get_u64(db, 2, &v));
		ck_assert_uint_eq(v, 2);
		put_u64(db, 3, 3);
		ck_nvf(nvf_db_close(db));
	}
	free(lock);
}
END_TEST

START_TEST(test_torn_meta_is_repaired_on_open)
{
	nvf_db *db = create(0, NVF_DURABILITY_FULL);
	put_u64(db, 1, 1);
	put_u64(db, 1, 2);
	ck_nvf(nvf_db_close(db));
	/* Tear the newest meta (state 3 is in slot 0: 1 -> slot 0, 2 -> 1, 3 -> 0). */
	int fd = open(path, O_RDWR);
	uint8_t junk[40];
	memset(junk, 0xAB, sizeof(junk));
	ck_assert_int_eq(pwrite(fd, junk, sizeof(junk), NVF_META_OFF + 100), (ssize_t)sizeof(junk));
	close(fd);
	nvf_open_options ro = NVF_OPEN_OPTIONS_INIT;
	ro.flags = NVF_OPEN_RDONLY;
	ck_nvf(nvf_db_open(&db, path, &ro));
	nvf_check_report rep;
	ck_nvf(nvf_check(db, &rep)); /* not damage, but said */
	ck_assert_uint_eq(rep.warnings, 1);
	ck_assert_ptr_nonnull(strstr(rep.warning, "page 0: older meta record invalid"));
	ck_nvf(nvf_db_close(db));
	ck_nvf(nvf_db_open(&db, path, NULL));
	uint64_t v;
	ck_nvf(get_u64(db, 1, &v));
	ck_assert_uint_eq(v, 1); /* fell back to the previous commit */
	ck_nvf(nvf_check(db, &rep));
	ck_assert_uint_eq(rep.warnings, 0); /* repaired by the read-write open */
	ck_nvf(nvf_check(db, NULL)); /* both slots valid again */
	put_u64(db, 1, 3);
	ck_nvf(nvf_db_close(db));
	ck_nvf(nvf_db_open(&db, path, NULL));
	ck_nvf(get_u64(db, 1, &v));
	ck_assert_uint_eq(v, 3);
	ck_nvf(nvf_check(db, NULL));
	ck_nvf(nvf_db_close(db));
}
END_TEST

START_TEST(test_error_names_and_messages)
{
	static const int codes[] = {NVF_OK, NVF_ECORRUPT, NVF_EVERSION, NVF_ELOCKED, NVF_ENOTFOUND, NVF_EEXIST,
				    NVF_EINVAL, NVF_EREADONLY, NVF_EFULL, NVF_EREADERS, NVF_EBADTXN, NVF_ENOTDB,
				    NVF_EBUSY, -ENOENT, -EIO};
	for (size_t i = 0; i < NVF_ARRAY_LEN(codes); i++) {
		const char *s = nvf_strerror(codes[i]);
		ck_assert_ptr_nonnull(s);
		ck_assert_int_gt((int)strlen(s), 2);
		for (size_t j = 0; j < i; j++)
			ck_assert_str_ne(s, nvf_strerror(codes[j]));
	}
	ck_assert_str_eq(nvf_strerror(-99999), "unknown error");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("pager");
	TCase *tc = tcase_create("pager");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_create_then_reopen_keeps_data);
	tcase_add_test(tc, test_every_page_size_works);
	tcase_add_test(tc, test_bad_options_are_rejected);
	tcase_add_test(tc, test_exclusive_create_refuses_existing_file);
	tcase_add_test(tc, test_read_only_handle_refuses_writes);
	tcase_add_test(tc, test_abort_discards_everything);
	tcase_add_test(tc, test_failed_transaction_must_be_aborted);
	tcase_add_test(tc, test_one_write_transaction_per_handle);
	tcase_add_test(tc, test_second_handle_is_locked_out_then_waits);
	tcase_add_test(tc, test_waiting_writer_proceeds_after_commit);
	tcase_add_test(tc, test_nosync_close_makes_state_durable);
	tcase_add_test(tc, test_nosync_machine_crash_falls_back_to_last_sync);
	tcase_add_test(tc, test_map_size_limits_growth);
	tcase_add_test(tc, test_lock_file_is_rebuilt_when_missing);
	tcase_add_test(tc, test_torn_meta_is_repaired_on_open);
	tcase_add_test(tc, test_error_names_and_messages);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
