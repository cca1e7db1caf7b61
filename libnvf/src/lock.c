/* The lock file PATH-lock: a shared-memory reader table and the writer lock, as
 * LMDB's lock.mdb. It holds nothing durable: the first handle to open it while no one
 * else has it open rebuilds it.
 *
 * Locks are Linux open-file-description (OFD) byte locks: they belong to one handle
 * (not to the process, so two handles in one process exclude each other) and vanish
 * when the handle's process dies, so a killed writer never leaves the database locked
 * and a killed reader's slot is recognised as dead and cleared.
 *
 * A slot's liveness is its owner's handle lock, never its pid: the kernel drops the
 * lock when the process dies, so a pid reused by an unrelated process cannot keep a
 * dead reader's slot (and its pages) alive, and a live reader is never mistaken for
 * a dead one. The pid in the slot is for people reading the table.
 *
 * Whoever can write the lock file can stall the writer (hold its lock) or make it
 * free pages a reader still reads (clear a slot), so the file must be trusted: it
 * is opened without following a symlink and must be a regular file, not writable
 * by others, owned by the caller or by the data file's owner. */
#include "nvf_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOCK_FILE_SIZE (sizeof(struct nvf_lock_header) + NVF_LOCK_SLOTS * sizeof(struct nvf_lock_slot))
_Static_assert(LOCK_FILE_SIZE == 32768, "lock file is 32 KiB");

static struct nvf_lock_header *lhdr(const nvf_lockfile *lk)
{
	return (struct nvf_lock_header *)lk->map;
}

static struct nvf_lock_slot *lslot(const nvf_lockfile *lk, int i)
{
	return (struct nvf_lock_slot *)(lk->map + sizeof(struct nvf_lock_header)) + i;
}

static int ofd_lock(int fd, short type, uint64_t off, bool wait)
{
	struct flock fl;
	memset(&fl, 0, sizeof(fl));
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	fl.l_start = (off_t)off;
	fl.l_len = 1;
	while (fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl) != 0) {
		if (errno == EINTR)
			continue;
		return -errno;
	}
	return 0;
}

/* Is a lock held on this byte by another open file description? */
static bool ofd_held(int fd, uint64_t off)
{
	struct flock fl;
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	fl.l_start = (off_t)off;
	fl.l_len = 1;
	if (fcntl(fd, F_OFD_GETLK, &fl) != 0)
		return true; /* cannot tell: assume alive, never free a live reader's pages */
	return fl.l_type != F_UNLCK;
}

static void read_boot_id(uint8_t out[40])
{
	memset(out, 0, 40);
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t r = read(fd, out, 39);
	(void)r;
	close(fd);
}

bool nvf__lock_same_boot(const nvf_lockfile *lk)
{
	return lk->same_boot;
}

char *nvf__lock_path(const char *path)
{
	size_t n = strlen(path);
	char *p = malloc(n + sizeof("-lock"));
	if (!p) {
		nvf__oom();
		return NULL;
	}
	memcpy(p, path, n);
	memcpy(p + n, "-lock", sizeof("-lock"));
	return p;
}

/* Is the open lock file one we may trust? (See the top of this file.) */
static int lock_file_trusted(int fd, const char *path, uid_t data_uid)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		return nvf__err(-errno, "cannot stat lock file %s: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return nvf__err(NVF_EINVAL, "lock file %s is not a regular file; remove it (it holds nothing durable)", path);
	/* No exception for root: a lock file that another user planted beside root's
	 * database could stall or mislead root's writer as much as anyone's. */
	if (st.st_uid != geteuid() && st.st_uid != data_uid)
		return nvf__err(-EPERM, "lock file %s is owned by uid %u, neither the caller (%u) nor the database's owner (%u); remove it (it holds nothing durable)",
				path, (unsigned)st.st_uid, (unsigned)geteuid(), (unsigned)data_uid);
	if (st.st_mode & S_IWOTH)
		return nvf__err(-EPERM, "lock file %s is writable by every user (mode %04o); chmod o-w it or remove it",
				path, (unsigned)(st.st_mode & 07777));
	return 0;
}

int nvf__lock_open(nvf_lockfile *lk, const char *path, uint64_t committed_txnid, unsigned mode, uid_t data_uid)
{
	int rc;
	memset(lk, 0, sizeof(*lk));
	lk->fd = -1;
	/* Never world-writable, whatever the data file's mode; the umask applies too. */
	int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, (mode_t)(mode & 0777 & ~(unsigned)S_IWOTH));
	if (fd < 0) {
		int e = errno;
		if (e == ELOOP)
			return nvf__err(-ELOOP, "lock file %s is a symbolic link: refused (it could point anywhere); remove it", path);
		return nvf__err(-e, "cannot open lock file %s: %s", path, strerror(e));
	}
	if ((rc = lock_file_trusted(fd, path, data_uid)) != 0)
		goto fail;

	/* Sole user? Then (re)build the table: whatever is in it is stale. Others wait
	 * on their shared lock until we downgrade. */
	rc = ofd_lock(fd, F_WRLCK, NVF_LOCK_BYTE_USERS, false);
	bool rebuild = rc == 0;
	if (rc != 0 && rc != -EAGAIN && rc != -EACCES) {
		nvf__err(rc, "cannot lock %s: %s", path, strerror(-rc));
		goto fail;
	}
	uint8_t boot_now[40];
	read_boot_id(boot_now);
	if (rebuild) {
		/* Has the machine restarted since the table was built? Then unsynced
		 * writes may be lost (see settle_nondurable() in pager.c). A missing or
		 * unreadable table counts as a restart. */
		struct nvf_lock_header old;
		lk->same_boot = pread(fd, &old, sizeof(old), 0) == (ssize_t)sizeof(old) &&
				old.magic == NVF_LOCK_MAGIC && boot_now[0] != 0 &&
				memcmp(old.boot_id, boot_now, sizeof(boot_now)) == 0;
		/* Resize only when needed: truncating drops the cached pages, and
		 * writing them back costs block allocation on every open. */
		struct stat st0;
		if (fstat(fd, &st0) != 0 ||
		    (st0.st_size != (off_t)LOCK_FILE_SIZE && ftruncate(fd, (off_t)LOCK_FILE_SIZE) != 0)) {
			rc = nvf__err(-errno, "cannot size lock file %s: %s", path, strerror(errno));
			goto fail;
		}
	} else {
		rc = ofd_lock(fd, F_RDLCK, NVF_LOCK_BYTE_USERS, true);
		if (rc != 0) {
			nvf__err(rc, "cannot lock %s: %s", path, strerror(-rc));
			goto fail;
		}
	}
	struct stat st;
	if (fstat(fd, &st) != 0) {
		rc = nvf__err(-errno, "cannot stat %s: %s", path, strerror(errno));
		goto fail;
	}
	if ((uint64_t)st.st_size < LOCK_FILE_SIZE) {
		rc = nvf__err(NVF_EBUSY, "lock file %s is being rebuilt or was replaced while in use", path);
		goto fail;
	}
	void *map = mmap(NULL, LOCK_FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		rc = nvf__err(-errno, "cannot map lock file %s: %s", path, strerror(errno));
		goto fail;
	}
	lk->fd = fd;
	lk->map = map;
	lk->rebuilt = rebuild;
	if (!rebuild)
		lk->same_boot = boot_now[0] != 0 && memcmp(lhdr(lk)->boot_id, boot_now, sizeof(boot_now)) == 0;
	lk->size = LOCK_FILE_SIZE;
	struct nvf_lock_header *h = lhdr(lk);
	if (rebuild) {
		/* Clear stale slots, writing only those that are not clear already: a
		 * clean table is then rebuilt without dirtying its pages. */
		for (int i = 0; i < (int)NVF_LOCK_SLOTS; i++) {
			struct nvf_lock_slot *s = lslot(lk, i);
			static const struct nvf_lock_slot zero;
			if (memcmp(s, &zero, sizeof(zero)) != 0)
				memset(s, 0, sizeof(*s));
		}
		memset(h, 0, sizeof(*h));
		h->version = NVF_LOCK_VERSION;
		h->nslots = NVF_LOCK_SLOTS;
		h->committed_txnid = committed_txnid;
		h->next_handle = 1;
		memcpy(h->boot_id, boot_now, sizeof(boot_now));
		__atomic_store_n(&h->magic, NVF_LOCK_MAGIC, __ATOMIC_RELEASE);
		rc = ofd_lock(fd, F_RDLCK, NVF_LOCK_BYTE_USERS, true); /* downgrade */
		if (rc != 0) {
			nvf__err(rc, "cannot downgrade lock on %s", path);
			goto fail_map;
		}
	} else if (__atomic_load_n(&h->magic, __ATOMIC_ACQUIRE) != NVF_LOCK_MAGIC ||
		   h->version != NVF_LOCK_VERSION || h->nslots != NVF_LOCK_SLOTS) {
		rc = nvf__err(NVF_EBUSY, "lock file %s is in use by an incompatible version", path);
		goto fail_map;
	}
	/* A handle id whose byte lock says "alive" for as long as this handle is. */
	for (;;) {
		uint32_t id = __atomic_fetch_add(&h->next_handle, 1, __ATOMIC_SEQ_CST);
		if (id == 0)
			continue;
		if (ofd_held(fd, NVF_LOCK_BYTE_HANDLE_BASE + id))
			continue; /* wrapped around onto a live handle */
		rc = ofd_lock(fd, F_RDLCK, NVF_LOCK_BYTE_HANDLE_BASE + id, false);
		if (rc != 0) {
			nvf__err(rc, "cannot take handle lock on %s", path);
			goto fail_map;
		}
		lk->handle_id = id;
		break;
	}
	return 0;

fail_map:
	munmap(lk->map, lk->size);
	lk->map = NULL;
	lk->fd = -1;
fail:
	close(fd);
	return rc;
}

void nvf__lock_close(nvf_lockfile *lk)
{
	if (lk->map) {
		/* Slots of this handle that a caller leaked: free them now. */
		for (int i = 0; i < (int)NVF_LOCK_SLOTS; i++) {
			struct nvf_lock_slot *s = lslot(lk, i);
			if (__atomic_load_n(&s->owner, __ATOMIC_ACQUIRE) == lk->handle_id)
				nvf__lock_slot_release(lk, i);
		}
		munmap(lk->map, lk->size);
	}
	if (lk->fd >= 0)
		close(lk->fd); /* drops every OFD lock of this handle */
	memset(lk, 0, sizeof(*lk));
	lk->fd = -1;
}

int nvf__lock_writer(nvf_lockfile *lk, bool wait)
{
	int rc = ofd_lock(lk->fd, F_WRLCK, NVF_LOCK_BYTE_WRITER, wait);
	if (rc == -EAGAIN || rc == -EACCES)
		return nvf__err(NVF_ELOCKED, "another handle or process holds the write lock; retry later, or begin with NVF_TXN_WAIT to wait for it");
	if (rc != 0)
		return nvf__err(rc, "cannot take the write lock: %s", strerror(-rc));
	lk->have_writer = true;
	return 0;
}

void nvf__lock_writer_release(nvf_lockfile *lk)
{
	if (lk->have_writer) {
		ofd_lock(lk->fd, F_UNLCK, NVF_LOCK_BYTE_WRITER, false);
		lk->have_writer = false;
	}
}

static bool owner_alive(nvf_lockfile *lk, uint32_t owner)
{
	if (owner == lk->handle_id)
		return true;
	return ofd_held(lk->fd, NVF_LOCK_BYTE_HANDLE_BASE + owner);
}

/* Clear slots whose handle is gone (its process died without ending its reads). */
static int reap_dead(nvf_lockfile *lk)
{
	int freed = 0;
	for (int i = 0; i < (int)NVF_LOCK_SLOTS; i++) {
		struct nvf_lock_slot *s = lslot(lk, i);
		uint32_t owner = __atomic_load_n(&s->owner, __ATOMIC_ACQUIRE);
		if (owner == 0 || owner_alive(lk, owner))
			continue;
		__atomic_store_n(&s->txnid, 0, __ATOMIC_SEQ_CST);
		if (__atomic_compare_exchange_n(&s->owner, &owner, 0, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
			freed++;
	}
	return freed;
}

int nvf__lock_slot_acquire(nvf_lockfile *lk, int *slot)
{
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < (int)NVF_LOCK_SLOTS; i++) {
			struct nvf_lock_slot *s = lslot(lk, i);
			uint32_t expect = 0;
			if (__atomic_load_n(&s->owner, __ATOMIC_RELAXED) != 0)
				continue;
			if (__atomic_compare_exchange_n(&s->owner, &expect, lk->handle_id, false,
							__ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
				s->pid = (uint32_t)getpid();
				*slot = i;
				return 0;
			}
		}
		if (reap_dead(lk) == 0)
			break;
	}
	return nvf__err(NVF_EREADERS, "all %u reader slots of the lock file are in use; end read transactions that are no longer needed",
			NVF_LOCK_SLOTS);
}

void nvf__lock_slot_set(nvf_lockfile *lk, int slot, uint64_t txnid)
{
	__atomic_store_n(&lslot(lk, slot)->txnid, txnid, __ATOMIC_SEQ_CST);
}

void nvf__lock_slot_release(nvf_lockfile *lk, int slot)
{
	struct nvf_lock_slot *s = lslot(lk, slot);
	__atomic_store_n(&s->txnid, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&s->owner, 0, __ATOMIC_RELEASE);
}

int nvf__lock_reader_pins(nvf_lockfile *lk, uint64_t **out, size_t *n)
{
	uint64_t *v = malloc(NVF_LOCK_SLOTS * sizeof(uint64_t));
	if (!v)
		return nvf__oom();
	size_t k = 0;
	for (int i = 0; i < (int)NVF_LOCK_SLOTS; i++) {
		struct nvf_lock_slot *s = lslot(lk, i);
		uint32_t owner = __atomic_load_n(&s->owner, __ATOMIC_SEQ_CST);
		if (owner == 0)
			continue;
		uint64_t t = __atomic_load_n(&s->txnid, __ATOMIC_SEQ_CST);
		if (t == 0)
			continue;
		if (!owner_alive(lk, owner)) {
			__atomic_store_n(&s->txnid, 0, __ATOMIC_SEQ_CST);
			__atomic_compare_exchange_n(&s->owner, &owner, 0, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
			continue;
		}
		v[k++] = t;
	}
	*out = v;
	*n = k;
	return 0;
}

uint32_t nvf__lock_generation(const nvf_lockfile *lk)
{
	return __atomic_load_n(&lhdr(lk)->generation, __ATOMIC_SEQ_CST);
}

void nvf__lock_bump_generation(nvf_lockfile *lk)
{
	__atomic_fetch_add(&lhdr(lk)->generation, 1, __ATOMIC_SEQ_CST);
}

uint64_t nvf__lock_committed(const nvf_lockfile *lk)
{
	return __atomic_load_n(&lhdr(lk)->committed_txnid, __ATOMIC_SEQ_CST);
}

void nvf__lock_publish(nvf_lockfile *lk, uint64_t txnid)
{
	__atomic_store_n(&lhdr(lk)->committed_txnid, txnid, __ATOMIC_SEQ_CST);
}
