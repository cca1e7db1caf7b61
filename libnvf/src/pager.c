/* The pager: creating and opening the file, the header and the two meta records,
 * the map, and syncing. See docs/FORMAT.md for the layout and docs/ARCHITECTURE.md
 * for the commit protocol. */
#include "array.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define DEFAULT_MAP_SIZE (UINT64_C(256) << 30)

uint64_t nvf__header_checksum(const struct nvf_disk_header *h)
{
	return XXH3_64bits(h, offsetof(struct nvf_disk_header, checksum));
}

uint64_t nvf__meta_checksum(const struct nvf_disk_meta *m)
{
	return XXH3_64bits(m, offsetof(struct nvf_disk_meta, checksum));
}

uint64_t nvf__page_checksum(const uint8_t *page, uint32_t psize)
{
	return XXH3_64bits(page + 8, psize - 8);
}

uint64_t nvf__extent_seed(uint64_t pgno, uint64_t txnid)
{
	/* The seed binds the checksum to where and when the extent was written, so
	 * that a misdirected or stale write fails the check as a flipped bit does. */
	return (pgno * UINT64_C(0x9E3779B97F4A7C15)) ^ txnid;
}

uint64_t nvf__extent_checksum(const uint8_t *data, uint64_t npages, uint32_t psize, uint64_t pgno, uint64_t txnid)
{
	return XXH3_64bits_withSeed(data, npages * psize, nvf__extent_seed(pgno, txnid));
}

static bool valid_page_size(uint32_t ps)
{
	return ps >= NVF_MIN_PAGE && ps <= NVF_MAX_PAGE && (ps & (ps - 1)) == 0;
}

static bool header_ok(const struct nvf_disk_header *h)
{
	return memcmp(h->magic, NVF_MAGIC, 8) == 0 && nvf__header_checksum(h) == h->checksum;
}

static int meta_valid(const struct nvf_disk_meta *m, int slot)
{
	return m->magic == NVF_META_MAGIC && m->checksum == nvf__meta_checksum(m) &&
	       m->slot == (uint32_t)slot && m->npages >= NVF_FIRST_DATA_PAGE && m->txnid > 0;
}

static void init_tree(struct nvf_disk_tree *t, uint16_t kind)
{
	memset(t, 0, sizeof(*t));
	t->kind = kind;
}

/* Write a new, empty database to a temporary file and link it into place, so that
 * a crash during creation never leaves a half-made file under the real name. */
static int create_file(const char *path, uint32_t psize, uint32_t hflags, const nvf_io *io, unsigned mode)
{
	int rc = 0;
	size_t plen = strlen(path);
	char *tmp = malloc(plen + 32);
	uint8_t *buf = calloc(2, psize);
	if (!tmp || !buf) {
		rc = nvf__oom();
		goto out;
	}
	snprintf(tmp, plen + 32, "%s.tmp%ld", path, (long)getpid());
	int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, (mode_t)mode);
	if (fd < 0) {
		/* The temporary file is ours, not the caller's: name the path they gave. */
		int e = errno;
		if (e == ENOENT || e == ENOTDIR)
			rc = nvf__err(-e, "cannot create %s: its directory does not exist", path);
		else
			rc = nvf__err(-e, "cannot create %s: %s", path, strerror(e));
		goto out;
	}
	struct nvf_disk_header h;
	memset(&h, 0, sizeof(h));
	memcpy(h.magic, NVF_MAGIC, 8);
	h.format_version = NVF_FORMAT_VERSION;
	h.page_size = psize;
	h.header_size = NVF_HEADER_SIZE;
	h.meta_size = NVF_META_SIZE;
	h.created_ns = nvf__now_ns();
	h.min_version = NVF_FORMAT_VERSION;
	h.flags = hflags;
	if (getrandom(h.file_id, sizeof(h.file_id), 0) != (ssize_t)sizeof(h.file_id))
		memcpy(h.file_id, &h.created_ns, 8);
	h.checksum = nvf__header_checksum(&h);
	for (int slot = 0; slot < 2; slot++) {
		uint8_t *pg = buf + (size_t)slot * psize;
		memcpy(pg, &h, sizeof(h));
		struct nvf_disk_meta m;
		memset(&m, 0, sizeof(m));
		m.magic = NVF_META_MAGIC;
		/* Both slots hold the empty state 1; on a tie slot 0 wins, so the
		 * first commit (state 2) goes to slot 1. */
		m.txnid = 1;
		m.npages = NVF_FIRST_DATA_PAGE;
		m.commit_ns = h.created_ns;
		m.flags = NVF_META_DURABLE;
		m.slot = (uint32_t)slot;
		init_tree(&m.catalog, NVF_TREE_KIND_PLAIN);
		init_tree(&m.freetree, NVF_TREE_KIND_PLAIN);
		init_tree(&m.pending, NVF_TREE_KIND_PLAIN);
		init_tree(&m.snapshots, NVF_TREE_KIND_PLAIN);
		m.checksum = nvf__meta_checksum(&m);
		memcpy(pg + NVF_META_OFF, &m, sizeof(m));
	}
	rc = nvf__io_pwrite(io, fd, buf, 2 * (size_t)psize, 0);
	if (rc == 0)
		rc = io->sync(io->ctx, fd);
	close(fd);
	if (rc != 0) {
		nvf__err(rc, "cannot create %s: writing its first pages failed: %s", path, nvf_strerror(rc));
		unlink(tmp);
		goto out;
	}
	if (link(tmp, path) != 0) {
		int e = errno;
		unlink(tmp);
		rc = e == EEXIST ? nvf__err(NVF_EEXIST, "%s already exists", path)
				 : nvf__err(-e, "cannot create %s: %s", path, strerror(e));
		goto out;
	}
	unlink(tmp);
	nvf__sync_dir(path); /* the new directory entry durable too */
out:
	free(tmp);
	free(buf);
	return rc;
}

/* Read the header from page 0, or its copy in page 1 if page 0's is damaged. */
static int read_header(nvf_db *db, uint64_t fsize)
{
	struct nvf_disk_header h;
	if (fsize < NVF_HEADER_SIZE) {
		if (fsize == 0)
			return nvf__err(NVF_ENOTDB, "%s: empty file, not an nvf database", db->path);
		return nvf__err(NVF_ENOTDB, "%s: %llu bytes, too short for an nvf database", db->path,
				(unsigned long long)fsize);
	}
	long r = db->io->pread(db->io->ctx, db->fd, &h, sizeof(h), 0);
	if (r < 0)
		return nvf__err((int)r, "%s: cannot read header: %s", db->path, nvf_strerror((int)r));
	bool magic0 = memcmp(h.magic, NVF_MAGIC, 8) == 0;
	if (!header_ok(&h)) {
		/* Page 0's copy is damaged: find page 1's, trying each page size. */
		bool found = false;
		for (uint32_t ps = NVF_MIN_PAGE; ps <= NVF_MAX_PAGE && !found; ps *= 2) {
			struct nvf_disk_header h1;
			if ((uint64_t)ps + sizeof(h1) > fsize)
				break;
			r = db->io->pread(db->io->ctx, db->fd, &h1, sizeof(h1), ps);
			if (r == (long)sizeof(h1) && header_ok(&h1) && h1.page_size == ps) {
				h = h1;
				found = true;
			}
		}
		if (!found) {
			if (!magic0)
				return nvf__err(NVF_ENOTDB, "%s: page 0: bad magic, not an nvf database", db->path);
			return nvf__corrupt_file(db->path, 0, "file header checksum mismatch and no valid copy in page 1");
		}
	}
	if (h.format_version > NVF_FORMAT_VERSION || h.min_version > NVF_FORMAT_VERSION)
		return nvf__err(NVF_EVERSION, "%s: format version %u, this library reads up to %u", db->path,
				h.format_version, NVF_FORMAT_VERSION);
	if (!valid_page_size(h.page_size) || h.header_size != NVF_HEADER_SIZE || h.meta_size != NVF_META_SIZE)
		return nvf__corrupt_file(db->path, 0, "invalid page size %u in the file header", h.page_size);
	db->header = h;
	db->psize = h.page_size;
	db->pshift = (uint32_t)__builtin_ctz(h.page_size);
	return 0;
}

/* Copy one meta slot out of the map, verified. */
static bool meta_load(const nvf_db *db, int slot, struct nvf_disk_meta *out)
{
	memcpy(out, nvf__map_page(db, (uint64_t)slot) + NVF_META_OFF, sizeof(*out));
	return meta_valid(out, slot);
}

/* The newest valid meta record. Readers race with a writer rewriting the other
 * slot; a torn copy fails its checksum and the other slot is used. */
int nvf__meta_read_best(nvf_db *db, struct nvf_disk_meta *out, int *slot, bool *other_ok)
{
	struct nvf_disk_meta m[2];
	bool ok[2];
	for (int i = 0; i < 2; i++)
		ok[i] = meta_load(db, i, &m[i]);
	if (db->forced_slot >= 0)
		ok[1 - db->forced_slot] = false;
	int best;
	if (ok[0] && ok[1])
		best = m[1].txnid > m[0].txnid ? 1 : 0;
	else if (ok[0])
		best = 0;
	else if (ok[1])
		best = 1;
	else
		return nvf__corrupt_file(db->path, 0, "no valid meta record in page 0 or page 1");
	*out = m[best];
	if (slot)
		*slot = best;
	if (other_ok)
		*other_ok = ok[1 - best];
	return 0;
}

/* Which slot holds the newest durable meta: commits write the other one. */
static int durable_slot_of(nvf_db *db, uint64_t *txnid)
{
	struct nvf_disk_meta m[2];
	bool ok[2];
	int best = -1;
	for (int i = 0; i < 2; i++) {
		ok[i] = meta_load(db, i, &m[i]) && (m[i].flags & NVF_META_DURABLE);
		if (ok[i] && (best < 0 || m[i].txnid > m[best].txnid))
			best = i;
	}
	if (best < 0) {
		*txnid = 0;
		return 0;
	}
	*txnid = m[best].txnid;
	return best;
}

int nvf__db_refresh_durable(nvf_db *db);
int nvf__db_refresh_durable(nvf_db *db)
{
	db->durable_slot = durable_slot_of(db, &db->durable_txnid);
	return 0;
}

static int write_meta(nvf_db *db, const struct nvf_disk_meta *m)
{
	return nvf__io_pwrite(db->io, db->fd, m, sizeof(*m), ((uint64_t)m->slot << db->pshift) + NVF_META_OFF);
}

int nvf__db_sync(nvf_db *db)
{
	int rc = db->io->sync(db->io->ctx, db->fd);
	if (rc == 0)
		return 0;
	int none = 0;
	atomic_compare_exchange_strong(&db->sync_failed, &none, rc);
	return nvf__err(rc, "%s: fsync failed: %s; this handle commits nothing more: close and reopen the database",
			db->path, nvf_strerror(rc));
}

int nvf__db_sync_refused(nvf_db *db)
{
	int e = atomic_load(&db->sync_failed);
	if (e == 0)
		return 0;
	if (db->meta_lost)
		return nvf__err(-EIO, "%s: an earlier meta record write failed (%s) and the record it overwrote could not be put back: "
				"close and reopen the database", db->path, nvf_strerror(e));
	return nvf__err(-EIO, "%s: an earlier fsync failed (%s); the page cache can no longer be trusted: close and reopen the database",
			db->path, nvf_strerror(e));
}

int nvf__db_write_meta(nvf_db *db, struct nvf_disk_meta *m, bool durable);
int nvf__db_write_meta(nvf_db *db, struct nvf_disk_meta *m, bool durable)
{
	m->slot = (uint32_t)(1 - db->durable_slot);
	m->flags = durable ? (m->flags | NVF_META_DURABLE) : (m->flags & ~NVF_META_DURABLE);
	m->checksum = nvf__meta_checksum(m);
	struct nvf_disk_meta old;
	memcpy(&old, nvf__map_page(db, m->slot) + NVF_META_OFF, sizeof(old));
	int rc = write_meta(db, m);
	if (rc != 0) {
		/* A short write may have torn the record the slot held. With NOSYNC that
		 * is the last commit (every unsynced commit rewrites this slot), which a
		 * failed write must not take away: put it back. */
		int rc2 = write_meta(db, &old);
		if (rc2 != 0) {
			int none = 0;
			db->meta_lost = true;
			atomic_compare_exchange_strong(&db->sync_failed, &none, rc2);
			return nvf__err(rc, "%s: cannot write meta record (%s), nor put back the one it overwrote (%s): "
					"close and reopen the database", db->path, nvf_strerror(rc), nvf_strerror(rc2));
		}
		return nvf__err(rc, "%s: cannot write meta record: %s", db->path, nvf_strerror(rc));
	}
	if (durable && (rc = nvf__db_sync(db)) != 0)
		return rc;
	if (durable) {
		db->durable_slot = (int)m->slot;
		db->durable_txnid = m->txnid;
	}
	nvf__lock_publish(&db->lock, m->txnid);
	return 0;
}

/* After a crash the newest meta may be one a NOSYNC commit wrote: its pages may not
 * have reached the disk. If the machine has not rebooted since, the page cache holds
 * them; otherwise verify the state and fall back to the durable slot. */
/* After a crash the newest meta may be one a NOSYNC commit wrote: its pages may not
 * have reached the disk. If the machine has not restarted since, the page cache holds
 * them; otherwise verify the state and fall back to the durable slot. The fallback
 * must outlive this call, since every transaction picks the newest valid record: a
 * read-write handle overwrites the bad record with the good one, a read-only handle
 * keeps reading the good slot. */
static int settle_nondurable(nvf_db *db, struct nvf_disk_meta *m, int *slot)
{
	if (m->flags & NVF_META_DURABLE)
		return 0;
	if (nvf__lock_same_boot(&db->lock))
		return 0;
	nvf_check_report rep;
	if (nvf__check_state(db, m, &rep) == 0)
		return 0;
	struct nvf_disk_meta other;
	int bad = *slot;
	if (!meta_load(db, 1 - bad, &other) || !(other.flags & NVF_META_DURABLE))
		return nvf__corrupt_file(db->path, (uint64_t)bad,
					 "the unsynced state is incomplete and no synced state remains");
	*m = other;
	*slot = 1 - bad;
	if (db->rdonly) {
		db->forced_slot = *slot;
		return 0;
	}
	int rc = nvf__lock_writer(&db->lock, true);
	if (rc != 0)
		return rc;
	struct nvf_disk_meta copy = other;
	copy.slot = (uint32_t)bad;
	copy.checksum = nvf__meta_checksum(&copy);
	rc = write_meta(db, &copy);
	if (rc == 0)
		rc = db->io->sync(db->io->ctx, db->fd);
	nvf__lock_writer_release(&db->lock);
	if (rc != 0)
		return nvf__err(rc, "%s: cannot discard the incomplete unsynced state: %s", db->path, nvf_strerror(rc));
	return 0;
}

static int repair_other_slot(nvf_db *db, const struct nvf_disk_meta *best, int slot)
{
	/* A torn meta write left the other slot invalid. Rewrite it with a copy of
	 * the good one so that the file again has two valid records (and nvf_check
	 * has nothing to report); only if we can take the writer lock now. */
	if (db->rdonly || nvf__lock_writer(&db->lock, false) != 0)
		return 0;
	struct nvf_disk_meta m = *best;
	int rc = 0;
	struct nvf_disk_meta cur;
	if (!meta_load(db, 1 - slot, &cur)) {
		m.slot = (uint32_t)(1 - slot);
		m.checksum = nvf__meta_checksum(&m);
		rc = write_meta(db, &m);
		if (rc == 0)
			rc = db->io->sync(db->io->ctx, db->fd);
		if (rc != 0)
			nvf__err(rc, "%s: cannot repair the torn meta record in page %d: %s", db->path, 1 - slot,
				 nvf_strerror(rc));
	}
	nvf__lock_writer_release(&db->lock);
	return rc;
}

int nvf__mode_check(unsigned mode, const char *what)
{
	if (mode & ~0777u)
		return nvf__err(NVF_EINVAL, "%s mode %04o: only permission bits (0 to 0777) are allowed", what, mode);
	if (mode & 0002u)
		return nvf__err(NVF_EINVAL, "%s mode %04o: writable by every user (o+w) is refused; any user could damage the database",
				what, mode);
	return 0;
}

int nvf__db_open_io(nvf_db **out, const char *path, const nvf_open_options *opts, const nvf_io *io)
{
	return nvf__db_open_mode(out, path, opts, io, 0644);
}

/* nvf__db_open_mode() once the path is the data file's own (no symlink). */
static int open_resolved(nvf_db **out, const char *path, const nvf_open_options *opts, const nvf_io *io, unsigned mode)
{
	nvf_open_options def = NVF_OPEN_OPTIONS_INIT;
	int rc;
	if (!out || !path || !*path)
		return nvf__err(NVF_EINVAL, "nvf_db_open: NULL handle or path");
	if ((rc = nvf__mode_check(mode, path)) != 0)
		return rc;
	if (!opts)
		opts = &def;
	if (opts->version != 1 && opts->version != NVF_OPEN_OPTIONS_VERSION)
		return nvf__err(NVF_EINVAL, "nvf_db_open: options version %u, expected 1 or %u (use NVF_OPEN_OPTIONS_INIT)",
				opts->version, NVF_OPEN_OPTIONS_VERSION);
	const char *at = opts->version >= 2 ? opts->snapshot : NULL;
	if (at && !(opts->flags & NVF_OPEN_RDONLY))
		return nvf__err(NVF_EINVAL, "nvf_db_open: a handle at snapshot \"%s\" is read-only: add NVF_OPEN_RDONLY", at);
	if (opts->flags & ~(NVF__OPEN_CREATE | NVF__OPEN_EXCL | NVF__OPEN_COLLECTION | NVF_OPEN_RDONLY | NVF_OPEN_LOCK_WAIT |
			    NVF_OPEN_VERIFY))
		return nvf__err(NVF_EINVAL, "nvf_db_open: unknown flags 0x%x", opts->flags);
	if (opts->page_size && !valid_page_size(opts->page_size))
		return nvf__err(NVF_EINVAL, "page size %u: must be a power of two from %u to %u", opts->page_size,
				NVF_MIN_PAGE, NVF_MAX_PAGE);
	if (opts->durability != NVF_DURABILITY_FULL && opts->durability != NVF_DURABILITY_NOSYNC)
		return nvf__err(NVF_EINVAL, "durability %d: use NVF_DURABILITY_FULL or NVF_DURABILITY_NOSYNC",
				opts->durability);
	if ((opts->flags & NVF__OPEN_CREATE) && (opts->flags & NVF_OPEN_RDONLY))
		return nvf__err(NVF_EINVAL, "nvf_db_open: CREATE and RDONLY together");

	struct stat st;
	if (stat(path, &st) != 0) {
		if (errno != ENOENT)
			return nvf__err(-errno, "%s: %s", path, strerror(errno));
		if (!(opts->flags & NVF__OPEN_CREATE))
			return nvf__err(NVF_ENOTFOUND, "%s: no such database file", path);
		rc = create_file(path, opts->page_size ? opts->page_size : NVF_DEFAULT_PAGE,
				 (opts->flags & NVF__OPEN_COLLECTION) ? NVF_HEADER_COLLECTION : 0, io, mode);
		if (rc == NVF_EEXIST && !(opts->flags & NVF__OPEN_EXCL))
			rc = 0; /* lost a race with another creator: open theirs */
		if (rc != 0)
			return rc;
	} else if ((opts->flags & NVF__OPEN_CREATE) && (opts->flags & NVF__OPEN_EXCL)) {
		return nvf__err(NVF_EEXIST, "%s already exists", path);
	} else if (!S_ISREG(st.st_mode)) {
		return nvf__err(NVF_ENOTDB, "%s: not a regular file", path);
	}

	nvf_db *db = calloc(1, sizeof(*db));
	if (!db)
		return nvf__oom();
	db->fd = -1;
	db->lock.fd = -1;
	db->forced_slot = -1;
	db->io = io;
	db->rdonly = (opts->flags & NVF_OPEN_RDONLY) != 0;
	db->durability = opts->durability;
	db->open_flags = opts->flags;
	db->map_size_given = opts->map_size;
	pthread_mutex_init(&db->wmutex, NULL);
	pthread_cond_init(&db->wcond, NULL);
	pthread_mutex_init(&db->cache_mutex, NULL);
	pthread_mutex_init(&db->dict_mutex, NULL);
	db->path = strdup(path);
	if (at && !(db->at_snapshot = strdup(at))) {
		rc = nvf__oom();
		goto fail;
	}
	if (!db->path) {
		rc = nvf__oom();
		goto fail;
	}
	db->fd = open(path, (db->rdonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (db->fd < 0) {
		rc = nvf__err(-errno, "cannot open %s: %s", path, strerror(errno));
		goto fail;
	}
	if (fstat(db->fd, &st) != 0) {
		rc = nvf__err(-errno, "cannot stat %s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = nvf__err(NVF_ENOTDB, "%s: not a regular file", path);
		goto fail;
	}
	uint64_t fsize = (uint64_t)st.st_size;
	rc = read_header(db, fsize);
	if (rc != 0)
		goto fail;
	if (fsize < 2 * (uint64_t)db->psize) {
		rc = nvf__corrupt_file(path, 1, "past the end: the file was truncated to %llu bytes, shorter than its two meta pages",
				       (unsigned long long)fsize);
		goto fail;
	}
	db->mapsize = opts->map_size ? opts->map_size : DEFAULT_MAP_SIZE;
	if (db->mapsize < fsize)
		db->mapsize = fsize;
	db->mapsize = (db->mapsize + db->psize - 1) & ~(uint64_t)(db->psize - 1);
	/* Reserve the address space once: the file grows inside it, so pointers that
	 * readers hold into the map stay valid for the life of the handle. */
	void *map = mmap(NULL, db->mapsize, PROT_READ, MAP_SHARED | MAP_NORESERVE, db->fd, 0);
	if (map == MAP_FAILED) {
		rc = nvf__err(-errno, "cannot map %s (%llu bytes reserved): %s", path,
			      (unsigned long long)db->mapsize, strerror(errno));
		goto fail;
	}
	db->map = map;
	db->file_pages = fsize >> db->pshift;
	{
		/* Tree pages are always verified on first read (a small page hashed once per
		 * handle); extents too under NVF_OPEN_VERIFY (btree.c). */
		size_t vbytes = (size_t)(db->mapsize >> db->pshift) * sizeof(uint64_t);
		void *v = mmap(NULL, vbytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (v == MAP_FAILED) {
			rc = nvf__err(-errno, "cannot reserve the verified-page table of %s: %s", path, strerror(errno));
			goto fail;
		}
		db->verified = v;
	}

	struct nvf_disk_meta m;
	int slot;
	bool other_ok;
	rc = nvf__meta_read_best(db, &m, &slot, &other_ok);
	if (rc != 0)
		goto fail;
	/* A writer may have grown the file and committed since we looked; it extends
	 * the file before it writes the meta record, so look again now. */
	if (fstat(db->fd, &st) == 0)
		db->file_pages = (uint64_t)st.st_size >> db->pshift;
	char *lpath = nvf__lock_path(path);
	if (!lpath) {
		rc = -ENOMEM; /* the message is set */
		goto fail;
	}
	/* The lock file takes the data file's permission bits, so that whoever may
	 * open the data file may open its lock file too. */
	rc = nvf__lock_open(&db->lock, lpath, m.txnid, NVF__COPY_MODE(st.st_mode), st.st_uid);
	free(lpath);
	if (rc != 0)
		goto fail;
	/* A compaction bumps the generation before and after it renames the new file
	 * into place. Read it now, then make sure the file we opened is still the one
	 * at the path: if so, any later replacement changes the generation, and the
	 * next transaction of this handle says so (NVF_ESTALE). */
	db->generation = nvf__lock_generation(&db->lock);
	struct stat now;
	if (stat(path, &now) != 0 || now.st_ino != st.st_ino || now.st_dev != st.st_dev) {
		rc = nvf__err(NVF_ESTALE, "%s was replaced while it was being opened", path);
		goto fail;
	}
	rc = settle_nondurable(db, &m, &slot);
	if (rc != 0)
		goto fail;
	/* Alone with a table we built: publish the state we settled on (the table was
	 * seeded with the newest record, which settle_nondurable may have refused). */
	if (db->lock.rebuilt)
		nvf__lock_publish(&db->lock, m.txnid);
	if (m.npages > db->file_pages) {
		rc = nvf__corrupt_file(path, m.npages - 1,
				       "past the end: the file was truncated to %llu pages of %u bytes, state %llu uses %llu",
				       (unsigned long long)db->file_pages, db->psize, (unsigned long long)m.txnid,
				       (unsigned long long)m.npages);
		goto fail;
	}
	if ((m.npages << db->pshift) > db->mapsize) {
		rc = nvf__err(NVF_EFULL, "%s: %llu bytes in use exceed the %llu bytes mapped; open it with a larger map_size",
			      path, (unsigned long long)(m.npages << db->pshift), (unsigned long long)db->mapsize);
		goto fail;
	}
	if (!other_ok) {
		rc = repair_other_slot(db, &m, slot);
		if (rc != 0)
			goto fail;
	}
	nvf__db_refresh_durable(db);
	if (db->at_snapshot) {
		/* The snapshot must exist now (it may be deleted later: then each read
		 * transaction says so). */
		nvf_txn *t;
		if ((rc = nvf_txn_begin(&t, db, NVF_TXN_RDONLY)) != 0)
			goto fail;
		nvf_txn_abort(t);
	}
	*out = db;
	return 0;
fail:
	nvf_db_close(db);
	return rc;
}

int nvf__db_open_mode(nvf_db **out, const char *path, const nvf_open_options *opts, const nvf_io *io, unsigned mode)
{
	/* A symlink to the data file is followed once, here: the handle then works on
	 * the file it points to, so that every path to one file shares one lock file
	 * (beside the file) and a compaction replaces the file, not the link. */
	struct stat st;
	if (!path || lstat(path, &st) != 0 || !S_ISLNK(st.st_mode))
		return open_resolved(out, path, opts, io, mode);
	char *real = realpath(path, NULL);
	if (!real) {
		if (errno == ENOENT)
			return nvf__err(NVF_ENOTFOUND, "%s: a symbolic link to a missing file", path);
		return nvf__err(-errno, "%s: cannot resolve the symbolic link: %s", path, strerror(errno));
	}
	int rc = open_resolved(out, real, opts, io, mode);
	free(real);
	return rc;
}

int nvf_db_open(nvf_db **out, const char *path, const nvf_open_options *opts)
{
	/* A compaction that renamed the file under us: open the new one. */
	int rc = NVF_ESTALE;
	for (int tries = 0; tries < 5 && rc == NVF_ESTALE; tries++)
		rc = nvf__db_open_io(out, path, opts, &nvf__io_posix);
	return rc;
}

int nvf_db_sync(nvf_db *db)
{
	if (!db)
		return nvf__err(NVF_EINVAL, "nvf_db_sync: NULL handle");
	if (db->rdonly)
		return nvf__err(NVF_EREADONLY, "%s: nvf_db_sync on a read-only handle (nothing to sync)", db->path);
	pthread_mutex_lock(&db->wmutex);
	int rc = nvf__db_sync_refused(db);
	if (rc != 0)
		goto out;
	if (db->writer_active) {
		rc = nvf__err(NVF_EBUSY, "%s: nvf_db_sync: this handle's write transaction is open; commit or abort it first", db->path);
		goto out;
	}
	rc = nvf__lock_writer(&db->lock, true);
	if (rc != 0)
		goto out;
	struct nvf_disk_meta m;
	rc = nvf__meta_read_best(db, &m, NULL, NULL);
	if (rc == 0 && !(m.flags & NVF_META_DURABLE)) {
		/* Data first, then the durable meta: the ordering of a full commit. */
		nvf__db_refresh_durable(db);
		rc = nvf__db_sync(db);
		if (rc == 0)
			rc = nvf__db_write_meta(db, &m, true);
	}
	if (rc == 0)
		db->unsynced = false;
	nvf__lock_writer_release(&db->lock);
out:
	pthread_mutex_unlock(&db->wmutex);
	return rc;
}

int nvf_db_close(nvf_db *db)
{
	if (!db)
		return 0;
	/* As sqlite3_close(): refuse while transactions are open and change nothing,
	 * rather than free what they still use or drop a write the caller meant to
	 * commit. */
	pthread_mutex_lock(&db->wmutex);
	bool writer = db->writer_active;
	pthread_mutex_unlock(&db->wmutex);
	int readers = atomic_load(&db->readers);
	if (writer || readers > 0) {
		char what[80];
		if (readers > 0)
			snprintf(what, sizeof(what), "%d read transaction%s%s", readers, readers > 1 ? "s" : "",
				 writer ? " and the write transaction" : "");
		else
			snprintf(what, sizeof(what), "the write transaction");
		return nvf__err(NVF_EBUSY, "%s: cannot close: %s of this handle %s still open; commit or abort %s first (the handle stays open)",
				db->path, what, writer + readers > 1 ? "are" : "is", writer + readers > 1 ? "them" : "it");
	}
	int rc = 0;
	if (db->unsynced && !db->rdonly)
		rc = nvf_db_sync(db);
	if (db->lock.map || db->lock.fd >= 0)
		nvf__lock_close(&db->lock);
	if (db->map)
		munmap(db->map, db->mapsize);
	if (db->verified)
		munmap((void *)db->verified, (size_t)(db->mapsize >> db->pshift) * sizeof(uint64_t));
	if (db->fd >= 0)
		close(db->fd);
	nvf__chunkmap_cache_free(db);
	nvf__dict_cache_free(db);
	pthread_mutex_destroy(&db->dict_mutex);
	pthread_mutex_destroy(&db->wmutex);
	pthread_cond_destroy(&db->wcond);
	pthread_mutex_destroy(&db->cache_mutex);
	free(db->path);
	free(db->at_snapshot);
	free(db);
	return rc;
}
