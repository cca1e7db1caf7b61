/* Output of the C benches: a table for people, or with --json one object per result
 * (suite, system, dataset, metric, value, unit, plus free-form "note"). */
#ifndef NVF_BENCHUTIL_H
#define NVF_BENCHUTIL_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static bool bench_json;

static inline void bench_emit(const char *suite, const char *system, const char *dataset, const char *metric,
			      double value, const char *unit, const char *note)
{
	if (bench_json) {
		printf("{\"suite\": \"%s\", \"system\": \"%s\", \"dataset\": \"%s\", \"metric\": \"%s\", "
		       "\"value\": %.12g, \"unit\": \"%s\"%s%s%s}\n",
		       suite, system, dataset, metric, value, unit, note ? ", \"note\": \"" : "", note ? note : "",
		       note ? "\"" : "");
	} else {
		printf("%-8s %-10s %-16s %-34s %14.3f %-8s %s\n", suite, system, dataset, metric, value, unit,
		       note ? note : "");
	}
	fflush(stdout);
}

static inline void bench_header(void)
{
	if (!bench_json)
		printf("%-8s %-10s %-16s %-34s %14s %-8s %s\n", "suite", "system", "dataset", "metric", "value",
		       "unit", "note");
}

static inline double bench_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Run argv (argv[0] a path) in a new process with its stdout read here, and parse the
 * two numbers it prints into out[0], out[1] (a child that prints one leaves out[1]
 * 0). Returns 0, or -1 if it could not run, failed or printed nothing. The open +
 * first query benches time their children with it. */
static inline int bench_child(char *const argv[], double out[2])
{
	int fd[2];
	if (pipe(fd) != 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		dup2(fd[1], 1);
		close(fd[0]);
		close(fd[1]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(fd[1]);
	char buf[128] = {0};
	size_t len = 0;
	ssize_t r;
	while (len < sizeof(buf) - 1 && (r = read(fd[0], buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)r;
	close(fd[0]);
	int st;
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || len == 0)
		return -1;
	char *end;
	out[0] = strtod(buf, &end);
	out[1] = strtod(end, NULL);
	return 0;
}

#endif
