/* Helpers shared by the Check tests: temporary directories, seeded randomness, and
 * a deterministic content hash used to compare the database with a model. */
#ifndef NVF_TESTUTIL_H
#define NVF_TESTUTIL_H

#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static inline uint64_t tu_mix(uint64_t x)
{
	x += UINT64_C(0x9E3779B97F4A7C15);
	x = (x ^ (x >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94D049BB133111EB);
	return x ^ (x >> 31);
}

/* splitmix64: small, fast, and reproducible from a printed seed. */
static inline uint64_t tu_rand(uint64_t *s)
{
	*s += UINT64_C(0x9E3779B97F4A7C15);
	return tu_mix(*s - UINT64_C(0x9E3779B97F4A7C15));
}

static inline uint64_t tu_below(uint64_t *s, uint64_t n)
{
	return n ? tu_rand(s) % n : 0;
}

/* NVF_TEST_SEED fixes the seed; otherwise a fixed default keeps CI reproducible. */
static inline uint64_t tu_seed(const char *test)
{
	const char *e = getenv("NVF_TEST_SEED");
	uint64_t seed = e ? strtoull(e, NULL, 0) : UINT64_C(20261121);
	fprintf(stderr, "%s: seed %llu (set NVF_TEST_SEED to change)\n", test, (unsigned long long)seed);
	return seed;
}

/* A fresh directory under $TMPDIR (or /tmp); caller builds paths inside it. */
static inline char *tu_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char *p = malloc(4096);
	snprintf(p, 4096, "%s/nvftest.XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(p)) {
		perror("mkdtemp");
		abort();
	}
	return p;
}

static inline char *tu_path(const char *dir, const char *name)
{
	char *p = malloc(4096);
	snprintf(p, 4096, "%s/%s", dir, name);
	return p;
}

static inline void tu_rmrf(const char *dir)
{
	char cmd[4200];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

/* Remove a database and the lock file beside it (libnvf names it "PATH-lock"), so
 * that the next create starts from nothing. */
static inline void tu_unlink_db(const char *path)
{
	char *lock = malloc(strlen(path) + sizeof("-lock"));
	sprintf(lock, "%s-lock", path);
	unlink(path);
	unlink(lock);
	free(lock);
}

/* The fixture most suites use: a fresh directory for each test (dir) and one
 * database path in it (path), removed afterwards. Defines setup() and teardown()
 * for tcase_add_checked_fixture(). */
#define TU_DB_FIXTURE(name)                   \
	static char *dir, *path;              \
	static void setup(void)               \
	{                                     \
		dir = tu_tmpdir();            \
		path = tu_path(dir, (name));  \
	}                                     \
	static void teardown(void)            \
	{                                     \
		tu_rmrf(dir);                 \
		free(dir);                    \
		free(path);                   \
	}

static inline uint64_t tu_file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static inline double tu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Check records every passing ck_assert (a write() to its pipe); these call into
 * Check only on failure, so they cost nothing in loops of millions. */
#define tu_assert(cond, ...)                         \
	do {                                         \
		if (!(cond))                         \
			ck_abort_msg(__VA_ARGS__);   \
	} while (0)
#define tu_eq(a, b)                                                                               \
	do {                                                                                      \
		unsigned long long a_ = (unsigned long long)(a), b_ = (unsigned long long)(b);    \
		if (a_ != b_)                                                                     \
			ck_abort_msg("%s == %s: %llu != %llu", #a, #b, a_, b_);                     \
	} while (0)
#define ck_nvf(expr)                                                                            \
	do {                                                                                    \
		int rc_ = (expr);                                                               \
		if (rc_ != 0)                                                                   \
			ck_abort_msg("%s -> %d (%s): %s", #expr, rc_, nvf_strerror(rc_), nvf_errmsg()); \
	} while (0)

static inline int tu_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* A child process that gets into some state and stays there until killed (a writer
 * holding the lock, a reader holding slots): fork, run fn(ctx) in the child; a value
 * >= 0 goes to the parent (in *out, if not NULL) once the state is reached, and the
 * child then waits for its SIGKILL; a negative one ends it with exit status 1, which
 * fails the parent's test. Returns the child's pid. */
static inline pid_t tu_child_until_killed(int (*fn)(void *ctx), void *ctx, int *out)
{
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(p[0]);
		int v = fn(ctx);
		if (v < 0 || write(p[1], &v, sizeof(v)) != (ssize_t)sizeof(v))
			_exit(1);
		pause();
		_exit(0);
	}
	close(p[1]);
	int v;
	ssize_t got = read(p[0], &v, sizeof(v));
	close(p[0]);
	ck_assert_msg(got == (ssize_t)sizeof(v), "the child (pid %d) failed before its state", (int)pid);
	if (out)
		*out = v;
	return pid;
}

/* SIGKILL a child of tu_child_until_killed and reap it. */
static inline void tu_kill9(pid_t pid)
{
	int status;
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

#endif
