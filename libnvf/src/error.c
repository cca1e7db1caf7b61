/* Error codes and the thread-local detail message. */
#include "nvf_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static _Thread_local char errbuf[512];

const char *nvf_strerror(int code)
{
	switch (code) {
	case NVF_OK: return "success";
	case NVF_ECORRUPT: return "database file is corrupt";
	case NVF_EVERSION: return "unsupported file format version";
	case NVF_ELOCKED: return "database is locked by another writer (another handle or process)";
	case NVF_ENOTFOUND: return "not found";
	case NVF_EEXIST: return "already exists";
	case NVF_EINVAL: return "invalid argument";
	case NVF_EREADONLY: return "database or transaction is read-only";
	case NVF_EFULL: return "limit reached (map size or table full)";
	case NVF_EREADERS: return "reader table is full";
	case NVF_EBADTXN: return "transaction failed earlier and can only be aborted";
	case NVF_ENOTDB: return "not an nvf database file";
	case NVF_ESTALE: return "stale handle: the file was compacted into a new one; close and open it again";
	case NVF_EBUSY: return "busy: another operation is in progress (an open transaction of this handle, or a lock-file rebuild)";
	default:
		break;
	}
	if (code < 0 && code > -4096) {
		/* strerror() is not thread-safe; strerrordesc_np (glibc >= 2.32) is. */
		const char *s = strerrordesc_np(-code);
		return s ? s : "unknown system error";
	}
	return "unknown error";
}

const char *nvf_errmsg(void)
{
	return errbuf;
}

int nvf__err(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errbuf, sizeof(errbuf), fmt, ap);
	va_end(ap);
	return code;
}

int nvf__oom(void)
{
	snprintf(errbuf, sizeof(errbuf), "out of memory");
	return -12; /* -ENOMEM */
}

int nvf__corrupt(uint64_t pgno, const char *fmt, ...)
{
	char tmp[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	snprintf(errbuf, sizeof(errbuf), "page %llu: %s", (unsigned long long)pgno, tmp);
	return NVF_ECORRUPT;
}

int nvf__corrupt_file(const char *path, uint64_t pgno, const char *fmt, ...)
{
	char tmp[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	snprintf(errbuf, sizeof(errbuf), "%s: page %llu: %s", path, (unsigned long long)pgno, tmp);
	return NVF_ECORRUPT;
}

void nvf__errmsg_prefix(const char *fmt, ...)
{
	char pre[200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(pre, sizeof(pre), fmt, ap);
	va_end(ap);
	/* Shift the old message right and put "pre: " in front, truncating the end. */
	size_t pl = strlen(pre), ol = strlen(errbuf);
	if (pl + 2 + ol >= sizeof(errbuf))
		ol = sizeof(errbuf) - pl - 3;
	memmove(errbuf + pl + 2, errbuf, ol);
	errbuf[pl + 2 + ol] = 0;
	memcpy(errbuf, pre, pl);
	errbuf[pl] = ':';
	errbuf[pl + 1] = ' ';
}

int nvf__vec_grow(void **v, size_t *cap, size_t need, size_t elem)
{
	size_t ncap = *cap ? *cap : 16;
	while (ncap < need)
		ncap *= 2;
	void *p = realloc(*v, ncap * elem);
	if (!p)
		return nvf__oom();
	*v = p;
	*cap = ncap;
	return 0;
}

uint64_t nvf__now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
