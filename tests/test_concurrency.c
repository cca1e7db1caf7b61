/* Concurrency: reader processes and reader threads verify an invariant the writer
 * keeps (the sum of all balances, the number of accounts, a commit counter that
 * never goes back) while a writer process commits continuously, moving money between
 * accounts and rewriting values of changing sizes so that pages are freed and reused
 * under the readers' feet. No reader may ever see the invariant broken. */
#include "nvf_int.h"
#include "testutil.h"

#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define NACC 200
#define START 10000
#define COUNTER_KEY 1000000
#define RUN_SECONDS 3.0


typedef struct shared {
	volatile int stop;
	volatile uint64_t commits;
} shared;

TU_DB_FIXTURE("bank.nvf")

static int put_account(nvf_txn *txn, nvf_tree *t, uint64_t k, int64_t bal, uint64_t fill)
{
	static _Thread_local uint8_t buf[3000];
	memcpy(buf, &bal, 8);
	memset(buf + 8, (int)(fill & 0xff), fill);
	return nvf__tree_put(txn, &t->d, k, buf, 8 + fill, 0, NULL);
}

static void create_bank(void)
{
	nvf_open_options o = NVF_OPEN_OPTIONS_INIT;
	o.flags = NVF__OPEN_CREATE;
	nvf_db *db;
	ck_nvf(nvf_db_open(&db, path, &o));
	nvf_txn *txn;
	nvf_tree *t;
	ck_nvf(nvf_txn_begin(&txn, db, 0));
	ck_nvf(nvf__tree_open(txn, 1, NVF_TREE_KIND_PLAIN, &t));
	for (uint64_t k = 0; k < NACC; k++)
		ck_nvf(put_account(txn, t, k, START, k % 40));
	uint64_t zero = 0;
	ck_nvf(nvf__tree_put(txn, &t->d, COUNTER_KEY, &zero, 8, 0, NULL));
	ck_nvf(nvf_txn_commit(txn));
	ck_nvf(nvf_db_close(db));
}

static int writer(shared *sh, uint64_t seed)
{
	nvf_open_options o = NVF_OPEN_OPTIONS_INIT;
	o.durability = NVF_DURABILITY_NOSYNC; /* commit as fast as possible */
	nvf_db *db;
	if (nvf_db_open(&db, path, &o) != 0)
		return 2;
	uint64_t rng = seed, n = 0;
	while (!sh->stop) {
		nvf_txn *txn;
		nvf_tree *t;
		if (nvf_txn_begin(&txn, db, NVF_TXN_WAIT) != 0 || nvf__tree_open(txn, 1, -1, &t) != 0)
			return 3;
		int moves = 1 + (int)tu_below(&rng, 8);
		for (int i = 0; i < moves; i++) {
			uint64_t a = tu_below(&rng, NACC), b = tu_below(&rng, NACC);
			nvf_val va, vb;
			int64_t ba, bb, amt = (int64_t)tu_below(&rng, 500);
			if (nvf__tree_get(txn, &t->d, a, &va) != 0)
				return 4;
			memcpy(&ba, va.data, 8);
			if (put_account(txn, t, a, ba - amt, tu_below(&rng, 4) ? tu_below(&rng, 60) : 2000) != 0)
				return 5;
			if (nvf__tree_get(txn, &t->d, b, &vb) != 0)
				return 6;
			memcpy(&bb, vb.data, 8);
			if (put_account(txn, t, b, bb + amt, tu_below(&rng, 60)) != 0)
				return 7;
		}
		n++;
		if (nvf__tree_put(txn, &t->d, COUNTER_KEY, &n, 8, 0, NULL) != 0 || nvf_txn_commit(txn) != 0)
			return 8;
		sh->commits = n;
	}
	return nvf_db_close(db) == 0 ? 0 : 9;
}

/* One read transaction: the sum, the count and the counter; twice, to see that the
 * state does not move under the reader. Returns 0 or a description of the breach. */
static const char *audit(nvf_db *db, uint64_t *last_counter, long *reads)
{
	nvf_txn *txn;
	if (nvf_txn_begin(&txn, db, NVF_TXN_RDONLY) != 0)
		return "begin failed";
	nvf_tree *t;
	const char *bad = NULL;
	int64_t first_sum = 0;
	uint64_t counter = 0;
	for (int pass = 0; pass < 2 && !bad; pass++) {
		if (nvf__tree_open(txn, 1, -1, &t) != 0) {
			bad = "no tree";
			break;
		}
		nvf_cursor c;
		int64_t sum = 0;
		uint64_t count = 0;
		int rc;
		for (rc = nvf__cursor_seek(&c, txn, &t->d, 0); rc == 0 && c.valid; rc = nvf__cursor_next(&c)) {
			uint64_t k;
			nvf_val v;
			if (nvf__cursor_get(&c, &k, &v) != 0) {
				rc = -1;
				break;
			}
			if (k == COUNTER_KEY) {
				memcpy(&counter, v.data, 8);
				continue;
			}
			int64_t bal;
			memcpy(&bal, v.data, 8);
			sum += bal;
			count++;
		}
		if (rc != 0)
			bad = "read error";
		else if (count != NACC)
			bad = "wrong number of accounts";
		else if (sum != (int64_t)NACC * START)
			bad = "sum of balances broken";
		else if (pass == 1 && sum != first_sum)
			bad = "state changed inside a read transaction";
		first_sum = sum;
		if (pass == 0)
			usleep(200);
	}
	nvf_txn_abort(txn);
	if (!bad && counter < *last_counter)
		bad = "commit counter went back";
	*last_counter = counter;
	(*reads)++;
	return bad;
}

static int reader_process(shared *sh)
{
	nvf_db *db;
	if (nvf_db_open(&db, path, NULL) != 0)
		return 2;
	uint64_t last = 0;
	long reads = 0;
	while (!sh->stop) {
		const char *bad = audit(db, &last, &reads);
		if (bad) {
			fprintf(stderr, "reader %d: %s\n", (int)getpid(), bad);
			return 1;
		}
	}
	fprintf(stderr, "reader process %d: %ld audits, last counter %llu\n", (int)getpid(), reads,
		(unsigned long long)last);
	nvf_db_close(db);
	return reads > 10 ? 0 : 3;
}

typedef struct thr {
	nvf_db *db;
	shared *sh;
	long reads;
	const char *bad;
} thr;

static void *reader_thread(void *arg)
{
	thr *t = arg;
	uint64_t last = 0;
	while (!t->sh->stop && !t->bad)
		t->bad = audit(t->db, &last, &t->reads);
	return NULL;
}

START_TEST(test_readers_never_see_a_broken_invariant)
{
	uint64_t seed = tu_seed("bank");
	create_bank();
	shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(sh, MAP_FAILED);
	memset(sh, 0, sizeof(*sh));
	pid_t pids[4];
	for (int i = 0; i < 4; i++) {
		pids[i] = fork();
		ck_assert_int_ge(pids[i], 0);
		if (pids[i] == 0)
			_exit(i == 0 ? writer(sh, seed) : reader_process(sh));
	}
	/* And threads of this process sharing one handle. */
	nvf_db *db;
	ck_nvf(nvf_db_open(&db, path, NULL));
	thr th[2] = {{db, sh, 0, NULL}, {db, sh, 0, NULL}};
	pthread_t tid[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&tid[i], NULL, reader_thread, &th[i]);
	double t0 = tu_now();
	while (tu_now() - t0 < RUN_SECONDS)
		usleep(20000);
	sh->stop = 1;
	for (int i = 0; i < 2; i++) {
		pthread_join(tid[i], NULL);
		ck_assert_msg(th[i].bad == NULL, "reader thread: %s", th[i].bad);
		ck_assert_int_gt(th[i].reads, 10);
	}
	for (int i = 0; i < 4; i++) {
		int status;
		waitpid(pids[i], &status, 0);
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s %d failed with %d",
			      i == 0 ? "writer" : "reader", i, WEXITSTATUS(status));
	}
	fprintf(stderr, "writer: %llu commits; reader threads: %ld + %ld audits\n", (unsigned long long)sh->commits,
		th[0].reads, th[1].reads);
	ck_assert_uint_gt(sh->commits, 100);
	nvf_check_report rep;
	ck_nvf(nvf_check(db, &rep));
	ck_nvf(nvf_db_close(db));
	munmap(sh, sizeof(*sh));
}
END_TEST

START_TEST(test_new_reader_sees_latest_commit_of_other_process)
{
	create_bank();
	nvf_db *reader;
	ck_nvf(nvf_db_open(&reader, path, NULL));
	for (uint64_t round = 1; round <= 20; round++) {
		pid_t pid = fork();
		if (pid == 0) {
			nvf_db *db;
			nvf_txn *txn;
			nvf_tree *t;
			if (nvf_db_open(&db, path, NULL) != 0 || nvf_txn_begin(&txn, db, 0) != 0 ||
			    nvf__tree_open(txn, 1, -1, &t) != 0 ||
			    nvf__tree_put(txn, &t->d, COUNTER_KEY, &round, 8, 0, NULL) != 0 || nvf_txn_commit(txn) != 0)
				_exit(1);
			_exit(nvf_db_close(db) == 0 ? 0 : 2);
		}
		int status;
		waitpid(pid, &status, 0);
		ck_assert_int_eq(WEXITSTATUS(status), 0);
		nvf_txn *txn;
		nvf_tree *t;
		nvf_val v;
		ck_nvf(nvf_txn_begin(&txn, reader, NVF_TXN_RDONLY));
		ck_nvf(nvf__tree_open(txn, 1, -1, &t));
		ck_nvf(nvf__tree_get(txn, &t->d, COUNTER_KEY, &v));
		uint64_t got;
		memcpy(&got, v.data, 8);
		ck_assert_uint_eq(got, round);
		nvf_txn_abort(txn);
	}
	ck_nvf(nvf_db_close(reader));
}
END_TEST

/* A child's write transaction, begun and left open. */
static int hold_the_writer_lock(void *ctx)
{
	(void)ctx;
	nvf_db *db;
	nvf_txn *txn;
	return nvf_db_open(&db, path, NULL) == 0 && nvf_txn_begin(&txn, db, 0) == 0 ? 0 : -1;
}

START_TEST(test_killed_writer_releases_the_lock)
{
	create_bank();
	pid_t pid = tu_child_until_killed(hold_the_writer_lock, NULL, NULL);
	nvf_db *db;
	ck_nvf(nvf_db_open(&db, path, NULL));
	nvf_txn *txn;
	ck_assert_int_eq(nvf_txn_begin(&txn, db, 0), NVF_ELOCKED);
	tu_kill9(pid);
	ck_nvf(nvf_txn_begin(&txn, db, 0));
	nvf_txn_abort(txn);
	ck_nvf(nvf_db_close(db));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("concurrency");
	TCase *tc = tcase_create("concurrency");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_readers_never_see_a_broken_invariant);
	tcase_add_test(tc, test_new_reader_sees_latest_commit_of_other_process);
	tcase_add_test(tc, test_killed_writer_releases_the_lock);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
