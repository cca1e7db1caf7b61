/* /errors: the most recent failures, one line each with its time, so that a user
 * whose `cp` failed can read why (the errno at close says only which kind). A ring
 * of the last 200 lines, also written to stderr (the journal when daemonized). */
#include "nusterfs.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NLINES 200
#define LINELEN 600

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static char ring[NLINES][LINELEN + 64];
static unsigned head, count;

void nfs_log(const char *fmt, ...)
{
	char msg[LINELEN - 32];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* One line per failure, whatever the message held. */
	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char stamp[32];
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	pthread_mutex_lock(&mu);
	snprintf(ring[head], sizeof(ring[head]), "%s %s\n", stamp, msg);
	fprintf(stderr, "nusterfs: %s", ring[head]);
	head = (head + 1) % NLINES;
	if (count < NLINES)
		count++;
	pthread_mutex_unlock(&mu);
}

char *nfs_log_text(size_t *len)
{
	pthread_mutex_lock(&mu);
	char *out = malloc((size_t)count * (LINELEN + 64) + 1);
	size_t n = 0;
	if (out) {
		for (unsigned i = 0; i < count; i++) {
			const char *l = ring[(head + NLINES - count + i) % NLINES];
			size_t ll = strlen(l);
			memcpy(out + n, l, ll);
			n += ll;
		}
		out[n] = 0;
	}
	pthread_mutex_unlock(&mu);
	*len = n;
	return out;
}
