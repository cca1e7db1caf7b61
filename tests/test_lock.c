/* Files and locks: the modes of the files libnvf creates, the symlinks and owners it
 * accepts for the data file and the lock file, and the reclaiming of what a process
 * killed with SIGKILL leaves in the lock file (its reader slots, the writer lock),
 * pid reuse included. */
#include "nvf_int.h"
#include "testutil.h"

#include <sys/file.h>

#include <signal.h>
#include <sys/wait.h>

TU_DB_FIXTURE("lock.nvf")

static char *lock_of(const char *p)
{
	char *l = nvf__lock_path(p);
	ck_assert_ptr_nonnull(l);
	return l;
}

static unsigned mode_of(const char *p)
{
	struct stat st;
	ck_assert_int_eq(lstat(p, &st), 0);
	return (unsigned)(st.st_mode & 07777);
}

/* A collection of dim 4 at p with `mode`, and `n` records. */
static int create_with(const char *p, unsigned mode, int n)
{
	nvf_create_options co = NVF_CREATE_OPTIONS_INIT;
	co.dim = 4;
	co.mode = mode;
	nvf_db *db;
	int rc = nvf_db_create(&db, p, &co);
	if (rc != 0)
		return rc;
	for (int i = 0; i < n; i++) {
		float v[4] = {(float)i, 1, 2, 3};
		ck_nvf(nvf_insert(db, NULL, v, 4, NULL));
	}
	ck_nvf(nvf_db_close(db));
	return 0;
}

START_TEST(test_files_take_the_mode_asked_for_under_the_umask)
{
	static const struct {
		mode_t umask;
		unsigned mode, want;
	} cases[] = {
		{022, 0644, 0644}, {077, 0644, 0600}, {022, 0660, 0640}, {007, 0660, 0660},
		{077, 0640, 0600}, {022, 0, 0644},    {002, 0600, 0600},
	};
	mode_t old = umask(022);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		umask(cases[i].umask);
		tu_unlink_db(path);
		ck_nvf(create_with(path, cases[i].mode, 1));
		char *lock = lock_of(path);
		ck_assert_msg(mode_of(path) == cases[i].want, "case %zu: data file %04o, want %04o", i, mode_of(path),
			      cases[i].want);
		ck_assert_msg(mode_of(lock) == cases[i].want, "case %zu: lock file %04o, want %04o", i, mode_of(lock),
			      cases[i].want);
		free(lock);
	}
	umask(old);
}
END_TEST

START_TEST(test_a_missing_lock_file_takes_the_data_files_mode)
{
	mode_t old = umask(0);
	ck_nvf(create_with(path, 0640, 1));
	char *lock = lock_of(path);
	ck_assert_int_eq(unlink(lock), 0);
	ck_assert_int_eq(chmod(path, 0600), 0);
	nvf_db *db;
	ck_nvf(nvf_db_open(&db, path, NULL));
	ck_assert_uint_eq(mode_of(lock), 0600);
	ck_nvf(nvf_db_close(db));
	/* A world-writable data file (the user's chmod) still gets a lock file that is not. */
	ck_assert_int_eq(unlink(lock), 0);
	ck_assert_int_eq(chmod(path, 0666), 0);
	ck_nvf(nvf_db_open(&db, path, NULL));
	ck_assert_uint_eq(mode_of(lock), 0664);
	ck_nvf(nvf_db_close(db));
	free(lock);
	umask(old);
}
END_TEST

START_TEST(test_world_writable_and_odd_modes_are_refused)
{
	static const unsigned bad[] = {0666, 0602, 0777, 04644, 02640, 01644, 010644};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(create_with(path, bad[i], 0), NVF_EINVAL);
		ck_assert_msg(strstr(nvf_errmsg(), "mode") != NULL, "message: %s", nvf_errmsg());
		struct stat st;
		ck_assert_msg(stat(path, &st) != 0, "mode %04o: the file was created", bad[i]);
	}
}
END_TEST

START_TEST(test_compaction_keeps_and_backup_takes_the_files_mode)
{
	mode_t old = umask(022);
	ck_nvf(create_with(path, 0644, 50));
	ck_assert_int_eq(chmod(path, 0640), 0);
	nvf_db *db;
	ck_nvf(nvf_db_open(&db, path, NULL));
	for (uint64_t id = 0; id < 50; id += 2)
		ck_nvf(nvf_delete(db, NULL, id));
	ck_nvf(nvf_db_compact(db));
	ck_nvf(nvf_db_close(db));
	ck_assert_uint_eq(mode_of(path), 0640);
	umask(077);
	ck_nvf(nvf_db_open(&db, path, NULL));
	ck_nvf(nvf_db_compact(db)); /* the umask does not narrow a file that exists */
	ck_nvf(nvf_db_close(db));
	ck_assert_uint_eq(mode_of(path), 0640);
	char *bak = tu_path(dir, "backup.nvf");
	ck_nvf(nvf_db_open(&db, path, NULL));
	ck_nvf(nvf_db_backup(db, bak)); /* a new file: the umask applies */
	ck_nvf(nvf_db_close(db));
	ck_assert_uint_eq(mode_of(bak), 0600);
	free(bak);
	umask(old);
}
END_TEST

START_TEST(test_a_symlinked_lock_file_is_refused)
{
	ck_nvf(create_with(path, 0644, 1));
	char *lock = lock_of(path);
	char *target = tu_path(dir, "elsewhere");
	ck_assert_int_eq(unlink(lock), 0);
	ck_assert_int_eq(symlink(target, lock), 0); /* dangling: open would create the target */
	nvf_db *db = NULL;
	ck_assert_int_eq(nvf_db_open(&db, path, NULL), -ELOOP);
	ck_assert_ptr_null(db);
	ck_assert_msg(strstr(nvf_errmsg(), lock) && strstr(nvf_errmsg(), "symbolic link"), "message: %s", nvf_errmsg());
	struct stat st;
	ck_assert_int_ne(stat(target, &st), 0);
	/* To an existing lock file of another database: refused as well. */
	ck_nvf(create_with(target, 0644, 1));
	ck_assert_int_eq(unlink(lock), 0);
	char *tlock = lock_of(target);
	ck_assert_int_eq(symlink(tlock, lock), 0);
	ck_assert_int_eq(nvf_db_open(&db, path, NULL), -ELOOP);
	ck_assert_int_eq(unlink(lock), 0);
	ck_nvf(nvf_db_open(&db, path, NULL));
	ck_nvf(nvf_db_close(db));
	free(tlock);
	free(target);
	free(lock);
}
END_TEST

START_TEST(test_a_lock_file_that_is_not_a_regular_file_is_refused)
{
	ck_nvf(create_with(path, 0644, 1));
	char *lock = lock_of(path);
	ck_assert_int_eq(unlink(lock), 0);
	ck_assert_int_eq(mkfifo(lock, 0600), 0);
	nvf_db *db = NULL;
	ck_assert_int_eq(nvf_db_open(&db, path, NULL), NVF_EINVAL);
	ck_assert_msg(strstr(nvf_errmsg(), "not a regular file"), "message: %s", nvf_errmsg());
	free(lock);
}
END_TEST

START_TEST(test_a_world_writable_lock_file_is_refused)
{
	ck_nvf(create_with(path, 0644, 1));
	char *lock = lock_of(path);
	ck_assert_int_eq(chmod(lock, 0646), 0);
	nvf_db *db = NULL;
	ck_assert_int_eq(nvf_db_open(&db, path, NULL), -EPERM);
	ck_assert_msg(strstr(nvf_errmsg(), lock) && strstr(nvf_errmsg(), "every user"), "message: %s", nvf_errmsg());
	ck_assert_int_eq(chmod(lock, 0644), 0);
	ck_nvf(nvf_db_open(&db, path, NULL));
	ck_nvf(nvf_db_close(db));
	free(lock);
}
END_TEST

START_TEST(test_a_lock_file_of_another_user_is_refused)
{
	if (geteuid() != 0) {
		fprintf(stderr, "test_a_lock_file_of_another_user_is_refused: skipped (needs root to chown)\n");
		return;
	}
	ck_nvf(create_with(path, 0644, 1));
	char *lock = lock_of(path);
	/* uid 1 (daemon) owns the lock file, root the data file: refused, root too. */
	ck_assert_int_eq(chown(lock, 1, 1), 0);
	nvf_db *db = NULL;
	ck_assert_int_eq(nvf_db_open(&db, path, NULL), -EPERM);
	ck_assert_msg(strstr(nvf_errmsg(), lock) && strstr(nvf_errmsg(), "uid 1"), "message: %s", nvf_errmsg());
	/* The data file's owner may own it: root opening daemon's database. */
	ck_assert_int_eq(chown(path, 1, 1), 0);
	ck_nvf(nvf_db_open(&db, path, NULL));
	ck_nvf(nvf_db_close(db));
	/* A compaction by root keeps the owner of the file. */
	ck_nvf(nvf_db_open(&db, path, NULL));
	ck_nvf(nvf_db_compact(db));
	ck_nvf(nvf_db_close(db));
	struct stat st;
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_uid, 1);
	ck_assert_uint_eq(st.st_gid, 1);
	free(lock);
}
END_TEST

START_TEST(test_a_symlinked_data_path_shares_the_files_lock)
{
	char *real = tu_path(dir, "real.nvf");
	char *link1 = tu_path(dir, "link.nvf");
	ck_nvf(create_with(real, 0644, 20));
	ck_assert_int_eq(symlink("real.nvf", link1), 0); /* relative, as users write them */
	nvf_db *a, *b;
	ck_nvf(nvf_db_open(&a, link1, NULL));
	ck_nvf(nvf_db_open(&b, real, NULL));
	char *linklock = lock_of(link1);
	struct stat st;
	ck_assert_msg(lstat(linklock, &st) != 0, "a second lock file beside the link");
	/* One lock for both paths: a writer through one excludes a writer through the other. */
	nvf_txn *ta, *tb;
	ck_nvf(nvf_txn_begin(&ta, a, 0));
	ck_assert_int_eq(nvf_txn_begin(&tb, b, 0), NVF_ELOCKED);
	nvf_txn_abort(ta);
	ck_nvf(nvf_db_close(b));
	/* Compaction through the link replaces the file, not the link. */
	for (uint64_t id = 0; id < 20; id += 3)
		ck_nvf(nvf_delete(a, NULL, id));
	ck_nvf(nvf_db_compact(a));
	ck_nvf(nvf_db_close(a));
	ck_assert_int_eq(lstat(link1, &st), 0);
	ck_assert(S_ISLNK(st.st_mode));
	ck_nvf(nvf_db_open(&a, link1, NULL));
	nvf_info info;
	ck_nvf(nvf_db_info(a, NULL, &info));
	ck_assert_uint_eq(info.count, 20 - 7);
	ck_nvf(nvf_check(a, NULL));
	ck_nvf(nvf_db_close(a));
	free(linklock);
	free(link1);
	free(real);
}
END_TEST

/* The lock table's slots in use (owner set), read through a handle's map. */
static int slots_in_use(nvf_db *db)
{
	int n = 0;
	struct nvf_lock_slot *s = (struct nvf_lock_slot *)(db->lock.map + sizeof(struct nvf_lock_header));
	for (unsigned i = 0; i < NVF_LOCK_SLOTS; i++)
		n += __atomic_load_n(&s[i].owner, __ATOMIC_SEQ_CST) != 0;
	return n;
}

/* A child that opens the database, begins `nread` read transactions (0: as many as
 * the table holds), reports how many and waits to be killed. */
static int hold_readers(void *ctx)
{
	int nread = *(const int *)ctx, n = 0;
	nvf_db *db;
	if (nvf_db_open(&db, path, NULL) != 0)
		return -1;
	for (;;) {
		nvf_txn *t;
		if ((nread && n == nread) || nvf_txn_begin(&t, db, NVF_TXN_RDONLY) != 0)
			break;
		n++;
	}
	return n;
}

static pid_t reader_child(int nread, int *count)
{
	return tu_child_until_killed(hold_readers, &nread, count);
}

START_TEST(test_a_killed_readers_slots_are_reclaimed)
{
	ck_nvf(create_with(path, 0644, 10));
	nvf_db *db;
	ck_nvf(nvf_db_open(&db, path, NULL)); /* keeps the table: no rebuild on the next open */
	int n;
	pid_t pid = reader_child(0, &n);
	ck_assert_int_eq(n, (int)NVF_LOCK_SLOTS); /* the child filled the table */
	nvf_txn *t;
	ck_assert_int_eq(nvf_txn_begin(&t, db, NVF_TXN_RDONLY), NVF_EREADERS);
	tu_kill9(pid);
	ck_assert_int_eq(slots_in_use(db), (int)NVF_LOCK_SLOTS); /* nobody has looked yet */
	/* The next reader finds the table full, sees the owner dead and takes a slot. */
	ck_nvf(nvf_txn_begin(&t, db, NVF_TXN_RDONLY));
	ck_assert_int_eq(slots_in_use(db), 1);
	nvf_txn_abort(t);
	ck_nvf(nvf_db_close(db));
}
END_TEST

START_TEST(test_a_killed_readers_slot_no_longer_pins_pages)
{
	ck_nvf(create_with(path, 0644, 10));
	nvf_db *db;
	ck_nvf(nvf_db_open(&db, path, NULL));
	int n;
	pid_t pid = reader_child(1, &n);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(slots_in_use(db), 1);
	tu_kill9(pid);
	/* A commit asks which states readers pin: the dead reader's slot goes. */
	float v[4] = {9, 9, 9, 9};
	ck_nvf(nvf_insert(db, NULL, v, 4, NULL));
	ck_assert_int_eq(slots_in_use(db), 0);
	ck_nvf(nvf_db_close(db));
}
END_TEST

START_TEST(test_a_reused_pid_neither_keeps_a_dead_slot_nor_frees_a_live_one)
{
	ck_nvf(create_with(path, 0644, 10));
	nvf_db *db;
	ck_nvf(nvf_db_open(&db, path, NULL));
	struct nvf_lock_header *h = (struct nvf_lock_header *)db->lock.map;
	struct nvf_lock_slot *s = (struct nvf_lock_slot *)(db->lock.map + sizeof(struct nvf_lock_header));

	/* A dead reader whose pid now belongs to a live process (our parent): a handle
	 * id nobody holds, the live pid, a pinned state. */
	uint32_t dead = __atomic_load_n(&h->next_handle, __ATOMIC_SEQ_CST) + 1000;
	s[7].pid = (uint32_t)getppid();
	s[7].txnid = 1;
	__atomic_store_n(&s[7].owner, dead, __ATOMIC_SEQ_CST);
	ck_assert_int_eq(kill(getppid(), 0), 0);

	/* A live reader in a child, its slot's pid rewritten to one that is dead (a
	 * reaped child's). */
	pid_t gone = fork();
	if (gone == 0)
		_exit(0);
	ck_assert_int_eq(waitpid(gone, NULL, 0), gone);
	int n;
	pid_t pid = reader_child(1, &n);
	ck_assert_int_eq(n, 1);
	int live = -1;
	for (int i = 0; i < (int)NVF_LOCK_SLOTS; i++)
		if (i != 7 && s[i].owner != 0)
			live = i;
	ck_assert_int_ge(live, 0);
	ck_assert_uint_eq(s[live].pid, (uint32_t)pid);
	uint64_t pinned = s[live].txnid;
	ck_assert_uint_ne(pinned, 0);
	s[live].pid = (uint32_t)gone;

	uint64_t *pins;
	size_t npins;
	ck_nvf(nvf__lock_reader_pins(&db->lock, &pins, &npins));
	ck_assert_uint_eq(npins, 1);
	ck_assert_uint_eq(pins[0], pinned);
	free(pins);
	ck_assert_uint_eq(s[7].owner, 0); /* the dead one, live pid or not */
	ck_assert_uint_ne(s[live].owner, 0); /* the live one, dead pid or not */
	ck_assert_uint_eq(s[live].txnid, pinned);
	tu_kill9(pid);
	ck_nvf(nvf__lock_reader_pins(&db->lock, &pins, &npins));
	ck_assert_uint_eq(npins, 0);
	free(pins);
	ck_nvf(nvf_db_close(db));
}
END_TEST

/* A child's write transaction: 500 inserts, never committed. */
static int write_uncommitted(void *ctx)
{
	(void)ctx;
	nvf_db *w;
	nvf_txn *t;
	if (nvf_db_open(&w, path, NULL) != 0 || nvf_txn_begin(&t, w, 0) != 0)
		return -1;
	for (int i = 0; i < 500; i++) {
		float v[4] = {1, 1, 1, (float)i};
		if (nvf_insert(w, t, v, 4, NULL) != 0)
			return -1;
	}
	return 0;
}

START_TEST(test_a_writer_killed_mid_transaction_leaves_no_lock_and_no_trace)
{
	ck_nvf(create_with(path, 0644, 10));
	nvf_db *db;
	ck_nvf(nvf_db_open(&db, path, NULL));
	pid_t pid = tu_child_until_killed(write_uncommitted, NULL, NULL);
	nvf_txn *t;
	ck_assert_int_eq(nvf_txn_begin(&t, db, 0), NVF_ELOCKED);
	tu_kill9(pid);
	ck_nvf(nvf_txn_begin(&t, db, 0)); /* at once: no waiting, no stale lock */
	nvf_info info;
	ck_nvf(nvf_db_info(db, t, &info));
	ck_assert_uint_eq(info.count, 10);
	ck_nvf(nvf_txn_commit(t));
	ck_nvf(nvf_check(db, NULL));
	ck_nvf(nvf_db_close(db));
}
END_TEST

START_TEST(test_compaction_removes_the_copies_of_killed_compactions)
{
	ck_nvf(create_with(path, 0644, 30));
	/* What a compaction killed before its rename leaves, and names that only look
	 * alike (another database's, not a pid): only the first are removed. */
	static const char *dead[] = {"lock.nvf.compact-123", "lock.nvf.compact-123-lock", "lock.nvf.compact-99999"};
	static const char *keep[] = {"lock.nvf.compact-x1", "lock.nvf.compact-12.bak", "other.nvf.compact-123",
				     "lock.nvf.backup-123"};
	for (size_t i = 0; i < 3; i++) {
		char *p = tu_path(dir, dead[i]);
		FILE *f = fopen(p, "w");
		ck_assert_ptr_nonnull(f);
		fclose(f);
		free(p);
	}
	for (size_t i = 0; i < 4; i++) {
		char *p = tu_path(dir, keep[i]);
		FILE *f = fopen(p, "w");
		ck_assert_ptr_nonnull(f);
		fclose(f);
		free(p);
	}
	nvf_db *db;
	ck_nvf(nvf_db_open(&db, path, NULL));
	ck_nvf(nvf_db_compact(db));
	ck_nvf(nvf_db_close(db));
	struct stat st;
	for (size_t i = 0; i < 3; i++) {
		char *p = tu_path(dir, dead[i]);
		ck_assert_msg(stat(p, &st) != 0, "%s is still there", dead[i]);
		free(p);
	}
	for (size_t i = 0; i < 4; i++) {
		char *p = tu_path(dir, keep[i]);
		ck_assert_msg(stat(p, &st) == 0, "%s was removed", keep[i]);
		free(p);
	}
}
END_TEST

/* A backup killed before its link leaves DEST.backup-PID (and maybe its lock file).
 * The next backup to DEST removes such a copy when no one holds its flock (the
 * writer is dead, whatever became of its pid), and keeps one that a live backup is
 * writing (here: a copy a child process holds locked). */
START_TEST(test_backup_removes_the_copies_of_killed_backups_only)
{
	ck_nvf(create_with(path, 0644, 30));
	char *dest = tu_path(dir, "b.nvf"), *dead = tu_path(dir, "b.nvf.backup-123"),
	     *deadlock = tu_path(dir, "b.nvf.backup-123-lock"), *live = tu_path(dir, "b.nvf.backup-456"),
	     *orphan = tu_path(dir, "b.nvf.backup-789-lock");
	const char *all[] = {dead, deadlock, live, orphan};
	for (size_t i = 0; i < 4; i++) {
		FILE *f = fopen(all[i], "w");
		ck_assert_ptr_nonnull(f);
		fclose(f);
	}
	int ready[2], done[2];
	ck_assert_int_eq(pipe(ready), 0);
	ck_assert_int_eq(pipe(done), 0);
	pid_t child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0) {
		int fd = open(live, O_RDWR);
		char c = fd >= 0 && flock(fd, LOCK_EX) == 0 ? 'y' : 'n';
		if (write(ready[1], &c, 1) != 1 || read(done[0], &c, 1) < 0)
			_exit(1);
		_exit(0);
	}
	char c;
	ck_assert_int_eq(read(ready[0], &c, 1), 1);
	ck_assert_int_eq(c, 'y');
	nvf_db *db;
	ck_nvf(nvf_db_open(&db, path, NULL));
	ck_nvf(nvf_db_backup(db, dest));
	ck_nvf(nvf_db_close(db));
	struct stat st;
	ck_assert_msg(stat(dead, &st) != 0, "the dead backup's copy is still there");
	ck_assert_msg(stat(deadlock, &st) != 0, "the dead backup's lock file is still there");
	ck_assert_msg(stat(orphan, &st) != 0, "a lock file without its copy is still there");
	ck_assert_msg(stat(live, &st) == 0, "the live backup's copy was removed");
	ck_assert_int_eq(write(done[1], "x", 1), 1);
	int status;
	ck_assert_int_eq(waitpid(child, &status, 0), child);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	free(dest);
	free(dead);
	free(deadlock);
	free(live);
	free(orphan);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("lock");
	TCase *tc = tcase_create("lock");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_files_take_the_mode_asked_for_under_the_umask);
	tcase_add_test(tc, test_a_missing_lock_file_takes_the_data_files_mode);
	tcase_add_test(tc, test_world_writable_and_odd_modes_are_refused);
	tcase_add_test(tc, test_compaction_keeps_and_backup_takes_the_files_mode);
	tcase_add_test(tc, test_a_symlinked_lock_file_is_refused);
	tcase_add_test(tc, test_a_lock_file_that_is_not_a_regular_file_is_refused);
	tcase_add_test(tc, test_a_world_writable_lock_file_is_refused);
	tcase_add_test(tc, test_a_lock_file_of_another_user_is_refused);
	tcase_add_test(tc, test_a_symlinked_data_path_shares_the_files_lock);
	tcase_add_test(tc, test_a_killed_readers_slots_are_reclaimed);
	tcase_add_test(tc, test_a_killed_readers_slot_no_longer_pins_pages);
	tcase_add_test(tc, test_a_reused_pid_neither_keeps_a_dead_slot_nor_frees_a_live_one);
	tcase_add_test(tc, test_a_writer_killed_mid_transaction_leaves_no_lock_and_no_trace);
	tcase_add_test(tc, test_compaction_removes_the_copies_of_killed_compactions);
	tcase_add_test(tc, test_backup_removes_the_copies_of_killed_backups_only);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
