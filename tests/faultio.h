/* A fault-injecting nvf_io, in the manner of SQLite's crash-test VFS.
 *
 * Every write goes to the real file, but until the next sync the layer remembers
 * what each write overwrote. At the chosen write or sync it "crashes": the call fails
 * with -EIO, every later call fails too, and the unsynced writes are dropped, kept or
 * torn (sector by sector) according to the mode, as a power failure could leave them.
 * The test then reopens the file with the real I/O layer.
 *
 * Besides crashes, error faults that a live system returns and survives (the layer
 * goes on working after them): at the chosen write or truncate, -EIO, -ENOSPC, or a
 * short write (a prefix of the bytes reaches the file, then -ENOSPC, as a disk that
 * fills up mid-write: the posix layer loops on short writes, so libnvf sees a partial
 * write and an error); at the chosen sync, -EIO, with the unsynced writes kept (the
 * page cache still holds them) or dropped (the kernel threw the dirty pages away:
 * what the disk holds after they are evicted). */
#ifndef NVF_FAULTIO_H
#define NVF_FAULTIO_H

#include "nvf_int.h"
#include "testutil.h"

#include <fcntl.h>
#include <sys/stat.h>

enum fio_mode {
	FIO_DROP,  /* unsynced writes never reached the disk; the file is its synced size */
	FIO_KEEP,  /* all reached it */
	FIO_TEAR,  /* each unsynced write: kept, dropped, or only a prefix of it */
};

typedef struct fio_undo {
	int fd;
	uint64_t off;
	size_t len;
	uint8_t *old; /* what was there (zeros beyond the old end of file) */
} fio_undo;

/* The size each file had at its last sync (a compaction or a backup writes a second
 * file through the same layer): by inode, since descriptors are reused. */
typedef struct fio_file {
	dev_t dev;
	ino_t ino;
	uint64_t synced_size;
} fio_file;

/* Error faults (not crashes). */
enum fio_err {
	FIO_EIO,    /* the write fails with -EIO, nothing written */
	FIO_ENOSPC, /* the write fails with -ENOSPC, nothing written */
	FIO_SHORT,  /* half of it (not sector-aligned) is written, then -ENOSPC */
};

/* The first syncs of a run, as a counting run saw them: of the database file or of
 * another (a compaction's or a backup's copy), and whether a meta record (pages 0
 * and 1) was among the writes it made durable. */
#define FIO_MAX_SYNCS 64
typedef struct fio_sync_info {
	bool main;
	bool meta;
} fio_sync_info;

typedef struct faultio {
	nvf_io io;
	long writes, syncs;     /* operations so far */
	long truncates;
	long err_write;         /* fail this write (1-based) as err_kind says, then go on */
	long err_truncate;      /* fail this truncate with -EIO or -ENOSPC (err_kind) */
	enum fio_err err_kind;
	long err_sync;          /* fail this sync with -EIO, then go on */
	bool err_sync_drop;     /* ... dropping the unsynced writes (else keeping them) */
	bool faulted;           /* an error fault fired */
	dev_t main_dev;         /* the database file given to fio_init */
	ino_t main_ino;
	uint32_t main_psize;    /* its page size (0: unknown), to tell meta writes */
	fio_sync_info sync_info[FIO_MAX_SYNCS];
	long crash_write;       /* crash at this write (1-based), 0 = never */
	long crash_sync;        /* crash at this sync, 0 = never */
	long fail_write;        /* fail this write with -EIO and go on */
	enum fio_mode mode;
	uint64_t rng;
	bool crashed;
	uint64_t synced_size;   /* the database file's size at open (its entry in files) */
	fio_file files[16];
	size_t nfiles;
	fio_undo *log;
	size_t nlog, caplog;
} faultio;

static void fio_forget(faultio *f)
{
	for (size_t i = 0; i < f->nlog; i++)
		free(f->log[i].old);
	f->nlog = 0;
}

static uint64_t fio_fsize(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* The file behind fd; a file first met now counts as synced at its current size. */
static fio_file *fio_file_of(faultio *f, int fd)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		abort();
	for (size_t i = 0; i < f->nfiles; i++)
		if (f->files[i].dev == st.st_dev && f->files[i].ino == st.st_ino)
			return &f->files[i];
	if (f->nfiles == NVF_ARRAY_LEN(f->files))
		abort();
	fio_file *x = &f->files[f->nfiles++];
	x->dev = st.st_dev;
	x->ino = st.st_ino;
	x->synced_size = (uint64_t)st.st_size;
	return x;
}

/* Undo the unsynced writes as mode says: newest write first, so that each restore
 * puts back the bytes as they were before that write. */
static void fio_revert(faultio *f, int fd)
{
	for (size_t i = f->nlog; i-- > 0;) {
		fio_undo *u = &f->log[i];
		size_t keep = 0;
		switch (f->mode) {
		case FIO_DROP:
			keep = 0;
			break;
		case FIO_KEEP:
			keep = u->len;
			break;
		case FIO_TEAR: {
			/* Whole, nothing, a prefix of 512-byte sectors, or (devices without
			 * sector atomicity) a prefix of any length. */
			uint64_t r = tu_below(&f->rng, 4);
			if (r == 0)
				keep = u->len;
			else if (r == 1)
				keep = 0;
			else if (r == 2)
				keep = (size_t)tu_below(&f->rng, u->len / 512 + 1) * 512;
			else
				keep = (size_t)tu_below(&f->rng, u->len + 1);
			if (keep > u->len)
				keep = u->len;
			break;
		}
		}
		if (keep < u->len && pwrite(u->fd, u->old + keep, u->len - keep, (off_t)(u->off + keep)) < 0)
			abort();
	}
	/* Every file written since its last sync goes back to its synced size. */
	if (f->mode == FIO_DROP) {
		if (ftruncate(fd, (off_t)fio_file_of(f, fd)->synced_size) != 0)
			abort();
		for (size_t i = 0; i < f->nlog; i++)
			if (ftruncate(f->log[i].fd, (off_t)fio_file_of(f, f->log[i].fd)->synced_size) != 0)
				abort();
	}
	fio_forget(f);
}

static void fio_crash(faultio *f, int fd)
{
	f->crashed = true;
	fio_revert(f, fd);
}

static bool fio_is_main(const faultio *f, int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 && st.st_dev == f->main_dev && st.st_ino == f->main_ino;
}

/* Note what sync number f->syncs makes durable, before the log is forgotten. */
static void fio_note_sync(faultio *f, int fd)
{
	if (f->syncs > FIO_MAX_SYNCS)
		return;
	fio_sync_info *si = &f->sync_info[f->syncs - 1];
	si->main = fio_is_main(f, fd);
	si->meta = false;
	for (size_t i = 0; i < f->nlog && si->main && f->main_psize; i++)
		if (f->log[i].fd == fd && f->log[i].off < 2 * (uint64_t)f->main_psize)
			si->meta = true;
}

static int fio_record(faultio *f, int fd, uint64_t off, size_t len)
{
	(void)fio_file_of(f, fd); /* its synced size, before this write */
	if (f->nlog == f->caplog) {
		f->caplog = f->caplog ? 2 * f->caplog : 64;
		f->log = realloc(f->log, f->caplog * sizeof(*f->log));
	}
	fio_undo *u = &f->log[f->nlog++];
	u->fd = fd;
	u->off = off;
	u->len = len;
	u->old = calloc(1, len ? len : 1);
	if (pread(fd, u->old, len, (off_t)off) < 0)
		return -errno;
	return 0;
}

static long fio_pread(void *ctx, int fd, void *buf, size_t n, uint64_t off)
{
	faultio *f = ctx;
	if (f->crashed)
		return -EIO;
	return nvf__io_posix.pread(NULL, fd, buf, n, off);
}

static int fio_pwritev(void *ctx, int fd, const struct iovec *iov, int cnt, uint64_t off)
{
	faultio *f = ctx;
	if (f->crashed)
		return -EIO;
	f->writes++;
	if (f->fail_write && f->writes == f->fail_write)
		return -EIO;
	size_t total = 0;
	for (int i = 0; i < cnt; i++)
		total += iov[i].iov_len;
	if (f->err_write && f->writes == f->err_write) {
		f->faulted = true;
		if (f->err_kind == FIO_EIO)
			return -EIO;
		if (f->err_kind == FIO_ENOSPC)
			return -ENOSPC;
		/* Half the bytes plus one: never a whole sector, never a whole page. */
		size_t part = total / 2 + 1 < total ? total / 2 + 1 : total - 1;
		if (fio_record(f, fd, off, part) != 0)
			return -EIO;
		struct iovec sub[64];
		int n = 0;
		for (size_t left = part; n < cnt && n < 64 && left > 0; n++) {
			sub[n] = iov[n];
			if (sub[n].iov_len > left)
				sub[n].iov_len = left;
			left -= sub[n].iov_len;
		}
		if (part > 0 && nvf__io_posix.pwritev(NULL, fd, sub, n, off) != 0)
			abort();
		return -ENOSPC;
	}
	if (fio_record(f, fd, off, total) != 0)
		return -EIO;
	if (f->crash_write && f->writes == f->crash_write) {
		/* The crashing write itself may land partly (torn) or not at all. */
		if (f->mode != FIO_DROP)
			nvf__io_posix.pwritev(NULL, fd, iov, cnt, off);
		fio_crash(f, fd);
		return -EIO;
	}
	return nvf__io_posix.pwritev(NULL, fd, iov, cnt, off);
}

static int fio_truncate(void *ctx, int fd, uint64_t size)
{
	faultio *f = ctx;
	if (f->crashed)
		return -EIO;
	f->truncates++;
	if (f->err_truncate && f->truncates == f->err_truncate) {
		f->faulted = true;
		return f->err_kind == FIO_EIO ? -EIO : -ENOSPC;
	}
	uint64_t cur = fio_fsize(fd);
	/* Growing only: the new bytes are zeros, nothing to restore but the size,
	 * which FIO_DROP handles by truncating to the synced size. */
	if (size < cur && fio_record(f, fd, size, (size_t)(cur - size)) != 0)
		return -EIO;
	return nvf__io_posix.truncate(NULL, fd, size);
}

static int fio_sync(void *ctx, int fd)
{
	faultio *f = ctx;
	if (f->crashed)
		return -EIO;
	f->syncs++;
	if (f->crash_sync && f->syncs == f->crash_sync) {
		fio_crash(f, fd);
		return -EIO;
	}
	fio_note_sync(f, fd);
	if (f->err_sync && f->syncs == f->err_sync) {
		/* The writes stay in the file (kept), or go back to what the last good
		 * sync left (dropped); either way the sync failed and the log restarts. */
		f->faulted = true;
		enum fio_mode m = f->mode;
		f->mode = f->err_sync_drop ? FIO_DROP : FIO_KEEP;
		fio_revert(f, fd);
		f->mode = m;
		if (!f->err_sync_drop)
			fio_file_of(f, fd)->synced_size = fio_fsize(fd);
		return -EIO;
	}
	/* A real fdatasync adds nothing to what the model needs: skip it for speed.
	 * It forgets the undo log of every file, not only this one's: the workloads
	 * never leave unsynced writes in one file while they sync another. */
	fio_forget(f);
	fio_file_of(f, fd)->synced_size = fio_fsize(fd);
	return 0;
}

static void fio_init(faultio *f, const char *path)
{
	memset(f, 0, sizeof(*f));
	f->io.pread = fio_pread;
	f->io.pwritev = fio_pwritev;
	f->io.sync = fio_sync;
	f->io.truncate = fio_truncate;
	f->io.ctx = f;
	f->synced_size = tu_file_size(path);
	int fd = open(path, O_RDONLY);
	if (fd >= 0) {
		fio_file_of(f, fd)->synced_size = f->synced_size;
		struct stat st;
		if (fstat(fd, &st) == 0) {
			f->main_dev = st.st_dev;
			f->main_ino = st.st_ino;
		}
		struct nvf_disk_header h;
		if (pread(fd, &h, sizeof(h), 0) == (ssize_t)sizeof(h) && memcmp(h.magic, NVF_MAGIC, 8) == 0)
			f->main_psize = h.page_size;
		close(fd);
	}
}

static void fio_fini(faultio *f)
{
	fio_forget(f);
	free(f->log);
	f->log = NULL;
}

#endif
