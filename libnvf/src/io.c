/* The I/O layer: every read, write, sync and truncate of the data file goes through
 * an nvf_io so that tests can inject failures and crashes (tests/faultio.c). The map
 * only ever reads what these calls wrote. */
#include "nvf_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <unistd.h>

static long posix_pread(void *ctx, int fd, void *buf, size_t n, uint64_t off)
{
	(void)ctx;
	size_t done = 0;
	while (done < n) {
		ssize_t r = pread(fd, (char *)buf + done, n - done, (off_t)(off + done));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			break;
		done += (size_t)r;
	}
	return (long)done;
}

static int posix_pwritev(void *ctx, int fd, const struct iovec *iov, int iovcnt, uint64_t off)
{
	(void)ctx;
	struct iovec local[64];
	while (iovcnt > 0) {
		int cnt = iovcnt < 64 ? iovcnt : 64;
		memcpy(local, iov, (size_t)cnt * sizeof(*iov));
		size_t total = 0;
		for (int i = 0; i < cnt; i++)
			total += local[i].iov_len;
		struct iovec *cur = local;
		int left = cnt;
		while (total > 0) {
			ssize_t w = pwritev(fd, cur, left, (off_t)off);
			if (w < 0) {
				if (errno == EINTR)
					continue;
				return -errno;
			}
			off += (uint64_t)w;
			total -= (size_t)w;
			/* Short write: skip what was written and go on. */
			while (left > 0 && (size_t)w >= cur->iov_len) {
				w -= (ssize_t)cur->iov_len;
				cur++;
				left--;
			}
			if (left > 0 && w > 0) {
				cur->iov_base = (char *)cur->iov_base + w;
				cur->iov_len -= (size_t)w;
			}
		}
		iov += cnt;
		iovcnt -= cnt;
	}
	return 0;
}

static int posix_sync(void *ctx, int fd)
{
	(void)ctx;
	while (fdatasync(fd) != 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

static int posix_truncate(void *ctx, int fd, uint64_t size)
{
	(void)ctx;
	while (ftruncate(fd, (off_t)size) != 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

const nvf_io nvf__io_posix = {
	.pread = posix_pread,
	.pwritev = posix_pwritev,
	.sync = posix_sync,
	.truncate = posix_truncate,
	.ctx = NULL,
};

int nvf__io_pwrite(const nvf_io *io, int fd, const void *buf, size_t n, uint64_t off)
{
	struct iovec v = {.iov_base = (void *)buf, .iov_len = n};
	return io->pwritev(io->ctx, fd, &v, 1, off);
}

void nvf__sync_dir(const char *path)
{
	char *dir = strdup(path);
	if (!dir)
		return;
	char *slash = strrchr(dir, '/');
	const char *d = ".";
	if (slash) {
		*slash = 0;
		d = slash == dir ? "/" : dir;
	}
	int dfd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	free(dir);
}
