/* Backup and compact: a committed state, with every named snapshot, copied page by
 * page into a new file that holds only what those states can reach.
 *
 * The copy walks the trees from the catalog (and each snapshot's catalog), children
 * before their parent, and gives every page the next number of the new file; a map
 * from old to new numbers makes a page that several states share one page of the
 * new file as well. Branch entries, extent references (whose checksums are seeded by
 * their page number), catalog descriptors and snapshot records are rewritten to the
 * new numbers and every page and extent is re-checksummed, after its old checksum
 * was verified: a copy never launders damage. The free-space trees start empty.
 *
 * The new file is written under a temporary name beside the destination, synced,
 * then linked (backup: the destination must not exist) or renamed over the file
 * (compact), and the directory synced: a crash leaves the old file whole and no
 * half-written file under the final name.
 *
 * A compaction holds the write lock from start to end, so nothing commits to the old
 * file meanwhile. Handles opened before it (in any process) keep reading the old
 * file through their open transactions; their next transaction fails with
 * NVF_ESTALE (the lock file's generation, bumped around the rename, tells them). */
#include "nvf_int.h"
#include "coll.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

enum role { R_PLAIN, R_CATALOG, R_SNAPS };

typedef struct {
	nvf_txn *txn;
	nvf_db *db;
	int fd;
	uint32_t psize;
	uint64_t next; /* next page number of the new file */
	/* old first page -> new first page: open addressing, 0 = empty (page 0 is
	 * never a data page) */
	uint64_t *key, *val;
	size_t cap, n;
	/* Copying the snapshots: the runs only they reach (new page, length, writer),
	 * which the new file lists as PENDING, as the old one did. */
	bool snap_phase;
	NVF_VEC(nvf_freed) only;
} copier;

static size_t slot_of(const copier *c, uint64_t k)
{
	uint64_t h = k * UINT64_C(0x9e3779b97f4a7c15);
	return (size_t)(h >> 17) & (c->cap - 1);
}

static bool map_get(const copier *c, uint64_t k, uint64_t *v)
{
	if (c->cap == 0)
		return false;
	for (size_t i = slot_of(c, k);; i = (i + 1) & (c->cap - 1)) {
		if (c->key[i] == k) {
			*v = c->val[i];
			return true;
		}
		if (c->key[i] == 0)
			return false;
	}
}

static int map_put(copier *c, uint64_t k, uint64_t v)
{
	if (2 * (c->n + 1) > c->cap) {
		size_t ncap = c->cap ? 2 * c->cap : 4096;
		uint64_t *nk = calloc(ncap, sizeof(uint64_t)), *nv = calloc(ncap, sizeof(uint64_t));
		if (!nk || !nv) {
			free(nk);
			free(nv);
			return nvf__oom();
		}
		uint64_t *ok = c->key, *ov = c->val;
		size_t ocap = c->cap;
		c->key = nk;
		c->val = nv;
		c->cap = ncap;
		for (size_t i = 0; i < ocap; i++)
			if (ok[i]) {
				size_t j = slot_of(c, ok[i]);
				while (c->key[j])
					j = (j + 1) & (c->cap - 1);
				c->key[j] = ok[i];
				c->val[j] = ov[i];
			}
		free(ok);
		free(ov);
	}
	size_t j = slot_of(c, k);
	while (c->key[j])
		j = (j + 1) & (c->cap - 1);
	c->key[j] = k;
	c->val[j] = v;
	c->n++;
	return 0;
}

static int put(copier *c, const void *buf, uint64_t npages, uint64_t pgno)
{
	int rc = nvf__io_pwrite(c->db->io, c->fd, buf, (size_t)(npages * c->psize), pgno * c->psize);
	if (rc != 0)
		nvf__err(rc, "writing the copy of %s failed: %s", c->db->path, nvf_strerror(rc));
	return rc;
}

static int copy_page(copier *c, uint64_t pgno, int level, enum role role, uint64_t *out);

/* An extent, verified, rewritten (a snapshot record in it) and re-checksummed: its
 * checksum's seed is its page number. */
static int copy_extent(copier *c, struct nvf_disk_extref *r, enum role role)
{
	uint64_t np = nvf__pages_for(c->db, r->len);
	np = np ? np : 1;
	const uint8_t *src;
	int rc = nvf__page_ref(c->txn, r->pgno, np, &src);
	if (rc != 0)
		return rc;
	/* Verified unless this (compacting) transaction wrote it: its checksum is
	 * computed at commit, which never comes; it is computed below for the copy. */
	bool mine = (c->txn->flags & NVF_TXN_F_WRITE) && nvf__dirty_find(c->txn, r->pgno);
	if (!mine && nvf__extent_checksum(src, np, c->psize, r->pgno, r->txnid) != r->checksum)
		return nvf__corrupt(r->pgno, "extent fails its checksum; the copy stops here");
	uint64_t to;
	bool done = map_get(c, r->pgno, &to); /* shared with a state copied before */
	if (done && role == R_SNAPS)
		return nvf__corrupt(r->pgno, "a snapshot record's extent is referenced twice");
	uint8_t *buf = NULL;
	const uint8_t *data = src;
	if (role == R_SNAPS) {
		/* The record's catalog moves with the copy. */
		struct nvf_disk_snapshot rec;
		if (r->len < sizeof(rec))
			return nvf__corrupt(r->pgno, "snapshot record of %llu bytes", (unsigned long long)r->len);
		if (!(buf = malloc((size_t)(np * c->psize))))
			return nvf__oom();
		memcpy(buf, src, (size_t)(np * c->psize));
		memcpy(&rec, buf, sizeof(rec));
		if (rec.catalog.root &&
		    (rc = copy_page(c, rec.catalog.root, rec.catalog.depth, R_CATALOG, &rec.catalog.root)) != 0) {
			free(buf);
			return rc;
		}
		rec.npages = c->next; /* every page of its state is below */
		memcpy(buf, &rec, sizeof(rec));
		data = buf;
	}
	if (!done) {
		to = c->next;
		c->next += np;
		if ((rc = put(c, data, np, to)) == 0)
			rc = map_put(c, r->pgno, to);
		if (rc == 0 && c->snap_phase && role != R_SNAPS)
			rc = NVF_VEC_PUSH(c->only, ((nvf_freed){to, np, r->txnid}));
	}
	if (rc == 0) {
		r->checksum = nvf__extent_checksum(data, np, c->psize, to, r->txnid);
		r->pgno = to;
	}
	free(buf);
	return rc;
}

/* A value that names pages: a catalog's tree descriptor, a snapshot record. */
static int rewrite_value(copier *c, uint8_t *v, uint32_t len, enum role role, uint64_t pgno)
{
	int rc = 0;
	if (role == R_CATALOG) {
		struct nvf_disk_tree t;
		if (len != sizeof(t))
			return nvf__corrupt(pgno, "catalog entry of %u bytes", len);
		memcpy(&t, v, sizeof(t));
		if (t.root && (rc = copy_page(c, t.root, t.depth, R_PLAIN, &t.root)) == 0)
			memcpy(v, &t, sizeof(t));
	} else if (role == R_SNAPS) {
		struct nvf_disk_snapshot rec;
		if (len < sizeof(rec))
			return nvf__corrupt(pgno, "snapshot record of %u bytes", len);
		memcpy(&rec, v, sizeof(rec));
		if (rec.catalog.root &&
		    (rc = copy_page(c, rec.catalog.root, rec.catalog.depth, R_CATALOG, &rec.catalog.root)) != 0)
			return rc;
		rec.npages = c->next; /* every page of its state is below */
		memcpy(v, &rec, sizeof(rec));
	}
	return rc;
}

static int copy_page(copier *c, uint64_t pgno, int level, enum role role, uint64_t *out)
{
	if (map_get(c, pgno, out))
		return 0;
	if (level < 1 || level > NVF_MAX_DEPTH)
		return nvf__corrupt(pgno, "tree level %d", level);
	const uint8_t *src;
	int rc = nvf__page_ref(c->txn, pgno, 1, &src);
	if (rc != 0)
		return rc;
	const struct nvf_disk_page *sh = (const struct nvf_disk_page *)src;
	uint16_t type = level == 1 ? NVF_PAGE_LEAF : NVF_PAGE_BRANCH;
	bool mine = (c->txn->flags & NVF_TXN_F_WRITE) && nvf__dirty_find(c->txn, pgno);
	if (sh->pgno != pgno || sh->type != type || (!mine && nvf__page_checksum(src, c->psize) != sh->checksum))
		return nvf__corrupt(pgno, "tree page fails its checks (checksum, number or type); the copy stops here");
	uint8_t *p = malloc(c->psize);
	if (!p)
		return nvf__oom();
	memcpy(p, src, c->psize);
	struct nvf_disk_page *h = (struct nvf_disk_page *)p;
	uint32_t hdr = (uint32_t)sizeof(*h);
	if (level > 1) {
		struct nvf_disk_branch_ent *e = (struct nvf_disk_branch_ent *)(p + hdr);
		if ((uint64_t)h->nkeys * sizeof(*e) > c->psize - hdr)
			rc = nvf__corrupt(pgno, "branch with %u entries", h->nkeys);
		for (uint16_t i = 0; i < h->nkeys && rc == 0; i++)
			rc = copy_page(c, e[i].child, level - 1, role, &e[i].child);
	} else {
		const uint16_t *offs = (const uint16_t *)(p + hdr);
		for (uint16_t i = 0; i < h->nkeys && rc == 0; i++) {
			uint32_t off = offs[i];
			if (off < hdr || off + sizeof(struct nvf_disk_cell) > c->psize) {
				rc = nvf__corrupt(pgno, "cell %u at offset %u", i, off);
				break;
			}
			struct nvf_disk_cell cell;
			memcpy(&cell, p + off, sizeof(cell));
			uint8_t *v = p + off + sizeof(cell);
			if (cell.flags & NVF_CELL_EXTENT) {
				struct nvf_disk_extref r;
				if (off + sizeof(cell) + sizeof(r) > c->psize) {
					rc = nvf__corrupt(pgno, "cell %u runs past the page", i);
					break;
				}
				memcpy(&r, v, sizeof(r));
				if ((rc = copy_extent(c, &r, role)) != 0)
					break;
				memcpy(v, &r, sizeof(r));
				if (role == R_CATALOG)
					rc = nvf__corrupt(pgno, "catalog entry in an extent");
			} else {
				if (off + sizeof(cell) + cell.vlen > c->psize) {
					rc = nvf__corrupt(pgno, "cell %u runs past the page", i);
					break;
				}
				rc = rewrite_value(c, v, cell.vlen, role, pgno);
			}
		}
	}
	if (rc == 0) {
		*out = c->next++;
		h->pgno = *out;
		h->checksum = nvf__page_checksum(p, c->psize);
		if ((rc = put(c, p, 1, *out)) == 0)
			rc = map_put(c, pgno, *out);
		if (rc == 0 && c->snap_phase && role != R_SNAPS)
			rc = NVF_VEC_PUSH(c->only, ((nvf_freed){*out, 1, h->txnid}));
	}
	free(p);
	return rc;
}

/* Every page is live, free or PENDING (nvf_check holds the format to it): the pages
 * only snapshots reach are freed in one commit of the new file, with the library's
 * own free-space code, so that they become PENDING runs whose windows the snapshots
 * pin, and free when the snapshots go. */
static int pend_only(nvf_db *db, const char *tmp, copier *c)
{
	nvf_db *ndb;
	nvf_open_options oo = NVF_OPEN_OPTIONS_INIT;
	int rc = nvf__db_open_io(&ndb, tmp, &oo, db->io);
	if (rc != 0)
		return rc;
	nvf_txn *txn;
	if ((rc = nvf_txn_begin(&txn, ndb, 0)) == 0) {
		for (size_t i = 0; i < c->only.n && rc == 0; i++)
			rc = nvf__page_free(txn, c->only.v[i].pgno, c->only.v[i].npages, c->only.v[i].alloc_txnid);
		rc = rc == 0 ? nvf_txn_commit(txn) : (nvf_txn_abort(txn), rc);
	}
	int rc2 = nvf_db_close(ndb);
	char *lock = nvf__lock_path(tmp);
	if (lock) {
		unlink(lock);
		free(lock);
	}
	return rc ? rc : rc2;
}

/* Write txn's state (and its snapshots) to tmp, synced. The copy takes the data
 * file's permission bits (never o+w): a backup under the umask, as any new file; a
 * compaction's (replace) exactly, and its owner too where the caller may set it
 * (root compacting a user's file must not hand it to root). */
static int copy_to(nvf_txn *txn, const char *tmp, const char *dest, bool replace)
{
	nvf_db *db = txn->db;
	copier c = {.txn = txn, .db = db, .psize = db->psize, .next = NVF_FIRST_DATA_PAGE};
	struct stat st;
	if (fstat(db->fd, &st) != 0)
		return nvf__err(-errno, "cannot stat %s: %s", db->path, strerror(errno));
	c.fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, (mode_t)NVF__COPY_MODE(st.st_mode));
	if (c.fd < 0) {
		int e = errno;
		if (e == ENOENT || e == ENOTDIR)
			return nvf__err(-e, "cannot create %s: its directory does not exist", dest);
		return nvf__err(-e, "cannot create %s: %s", dest, strerror(e));
	}
	/* Held until the copy is closed: a later backup to the same destination takes
	 * a copy it can lock for one whose writer died (remove_dead_copies). */
	(void)flock(c.fd, LOCK_EX | LOCK_NB);
	if (replace) {
		/* Best effort: only root may give a file away, and others only to a group
		 * they are in; failing that the copy stays the caller's. */
		if (fchown(c.fd, st.st_uid, st.st_gid) != 0 && fchown(c.fd, (uid_t)-1, st.st_gid) != 0)
			errno = 0;
		if (fchmod(c.fd, (mode_t)NVF__COPY_MODE(st.st_mode)) != 0) {
			int e = errno;
			close(c.fd);
			unlink(tmp);
			return nvf__err(-e, "cannot set the mode of the copy of %s: %s", db->path, strerror(e));
		}
	}
	struct nvf_disk_tree cat = txn->catalog, snaps = txn->snapshots;
	int rc = 0;
	if (cat.root)
		rc = copy_page(&c, cat.root, cat.depth, R_CATALOG, &cat.root);
	c.snap_phase = true; /* what is new from here on, only snapshots reach */
	if (rc == 0 && snaps.root)
		rc = copy_page(&c, snaps.root, snaps.depth, R_SNAPS, &snaps.root);
	if (rc == 0) {
		/* Pages 0 and 1: the header (a new file id: caches keyed by it start
		 * afresh) and the state, in both meta slots. */
		uint8_t *buf = calloc(2, db->psize);
		if (!buf) {
			rc = nvf__oom();
		} else {
			struct nvf_disk_header h = db->header;
			if (getrandom(h.file_id, sizeof(h.file_id), 0) != (ssize_t)sizeof(h.file_id))
				h.file_id[0] ^= 0x5a;
			h.checksum = nvf__header_checksum(&h);
			for (int slot = 0; slot < 2; slot++) {
				uint8_t *pg = buf + (size_t)slot * db->psize;
				memcpy(pg, &h, sizeof(h));
				struct nvf_disk_meta m;
				memset(&m, 0, sizeof(m));
				m.magic = NVF_META_MAGIC;
				/* A write transaction (compact) may have packed rows: its pages
				 * carry its own txnid. */
				m.txnid = (txn->flags & NVF_TXN_F_WRITE) && txn->dirty.n ? txn->id : txn->base_txnid;
				m.npages = c.next;
				m.commit_ns = nvf__now_ns();
				m.flags = NVF_META_DURABLE;
				m.slot = (uint32_t)slot;
				m.catalog = cat;
				m.snapshots = snaps;
				m.freetree.kind = NVF_TREE_KIND_PLAIN;
				m.pending.kind = NVF_TREE_KIND_PLAIN;
				m.checksum = nvf__meta_checksum(&m);
				memcpy(pg + NVF_META_OFF, &m, sizeof(m));
			}
			rc = put(&c, buf, 2, 0);
			free(buf);
		}
	}
	if (rc == 0 && (rc = db->io->sync(db->io->ctx, c.fd)) != 0)
		nvf__err(rc, "cannot sync the copy of %s: %s", db->path, nvf_strerror(rc));
	close(c.fd);
	free(c.key);
	free(c.val);
	if (rc == 0 && c.only.n)
		rc = pend_only(db, tmp, &c);
	NVF_VEC_FREE(c.only);
	if (rc != 0)
		unlink(tmp);
	return rc;
}

static void remove_dead_copies(const char *path, const char *what, bool check_flock);

static char *tmp_name(const char *dest, const char *what)
{
	size_t n = strlen(dest) + 64;
	char *t = malloc(n);
	if (t)
		snprintf(t, n, "%s.%s-%ld", dest, what, (long)getpid());
	return t;
}

int nvf_db_backup(nvf_db *db, const char *dest)
{
	if (!db || !dest || !*dest)
		return nvf__err(NVF_EINVAL, "nvf_db_backup: NULL argument");
	struct stat st;
	if (lstat(dest, &st) == 0)
		return nvf__err(NVF_EEXIST, "%s already exists: a backup never overwrites", dest);
	remove_dead_copies(dest, "backup", true);
	char *tmp = tmp_name(dest, "backup");
	if (!tmp)
		return nvf__oom();
	nvf_txn *txn;
	int rc = nvf_txn_begin(&txn, db, NVF_TXN_RDONLY | NVF__TXN_CURRENT); /* pins the state; writers go on */
	if (rc == 0) {
		rc = copy_to(txn, tmp, dest, false);
		nvf_txn_abort(txn);
	}
	if (rc == 0) {
		if (link(tmp, dest) != 0) {
			int e = errno;
			rc = e == EEXIST ? nvf__err(NVF_EEXIST, "%s already exists: a backup never overwrites", dest)
					 : nvf__err(-e, "cannot create %s: %s", dest, strerror(e));
		}
		unlink(tmp);
		if (rc == 0)
			nvf__sync_dir(dest);
	}
	free(tmp);
	return rc;
}

/* An HNSW collection's records in a locality order (layout.c), read from base, the
 * state txn started from. */
static int relayout(nvf_db *db, nvf_txn *txn, nvf_coll *c)
{
	nvf_txn *rt;
	nvf_coll *base;
	uint64_t *order = NULL, n = 0;
	int rc = nvf_txn_begin(&rt, db, NVF_TXN_RDONLY);
	if (rc != 0)
		return rc;
	rt->flags |= NVF_TXN_F_VERIFY;
	if ((rc = nvf__coll_get(rt, &base)) == 0 && (rc = nvf__layout_order(rt, base, &order, &n)) == 0)
		rc = nvf__coll_permute(txn, c, base, order, n);
	free(order);
	nvf_txn_abort(rt);
	return rc;
}

/* Before the copy, in the compaction's own write transaction (never committed to the
 * old file: the copy is made from its pages in memory): an HNSW collection's records
 * are laid out in a locality order, so that a first query touches few pages; a flat
 * one's records above the live count move into the rows deletes freed (coll.c). Either
 * way the arrays, and the copy, end at the live count; the field indexes, which hold
 * rows, are rebuilt. Not with snapshots: they keep their rows, and the copy shares
 * their pages. */
static int pack(nvf_db *db, nvf_txn *txn)
{
	nvf_coll *c;
	uint64_t moved = 0;
	int rc;
	if (txn->snapshots.count > 0 || (rc = nvf__coll_get(txn, &c)) != 0)
		return 0;
	bool graph = c->hnsw && c->idmap->d.count > 1;
	if (!graph && c->freerows->d.count == 0)
		return 0;
	nvf_field_info *f = NULL;
	size_t nf = 0;
	if ((rc = nvf_field_list(db, txn, &f, &nf)) == 0)
		rc = graph ? relayout(db, txn, c) : nvf__coll_pack(txn, c, &moved);
	for (size_t i = 0; i < nf && rc == 0; i++)
		if ((rc = nvf_field_drop(db, txn, f[i].path)) == 0)
			rc = nvf_field_add(db, txn, f[i].path, f[i].type);
	nvf_free(f);
	return rc == 0 ? nvf__txn_prepare(txn) : rc;
}

/* Remove what killed compactions or backups left beside path: PATH.WHAT-PID (WHAT
 * "compact" or "backup") and its lock file. A compaction calls it under the write
 * lock, which every compaction holds from its first page to its rename, so no live
 * one owns such a copy; backups take no lock, so a backup's copy is removed only
 * when its flock is free (copy_to holds it while the copy is written): the writer
 * is dead, whatever its pid has become since. */
static void remove_dead_copies(const char *path, const char *what, bool check_flock)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	size_t dlen = slash ? (size_t)(slash - path) + 1 : 0;
	char *dir = strndup(dlen ? path : ".", dlen ? dlen : 1);
	DIR *d = dir ? opendir(dir) : NULL;
	size_t blen = strlen(base), wlen = strlen(what);
	if (d) {
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			const char *n = e->d_name;
			if (strncmp(n, base, blen) != 0 || n[blen] != '.' || strncmp(n + blen + 1, what, wlen) != 0 ||
			    n[blen + 1 + wlen] != '-')
				continue;
			const char *q = n + blen + wlen + 2;
			if (*q < '0' || *q > '9')
				continue;
			while (*q >= '0' && *q <= '9')
				q++;
			bool lockfile = strcmp(q, "-lock") == 0;
			if (*q != '\0' && !lockfile)
				continue;
			if (check_flock) {
				/* The copy itself (for its lock file: the copy it belongs to). */
				char copy[NAME_MAX + 1];
				snprintf(copy, sizeof(copy), "%.*s", (int)(q - n), n);
				int fd = openat(dirfd(d), copy, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
				bool dead = fd < 0 ? errno == ENOENT : flock(fd, LOCK_EX | LOCK_NB) == 0;
				if (fd >= 0)
					close(fd);
				if (!dead)
					continue;
			}
			unlinkat(dirfd(d), n, 0);
		}
		closedir(d);
	}
	free(dir);
}

int nvf_db_compact(nvf_db *db)
{
	if (!db)
		return nvf__err(NVF_EINVAL, "nvf_db_compact: NULL handle");
	char *tmp = tmp_name(db->path, "compact");
	if (!tmp)
		return nvf__oom();
	nvf_txn *txn;
	int rc = nvf_txn_begin(&txn, db, 0); /* the write lock: nothing commits meanwhile */
	if (rc == 0) {
		txn->flags |= NVF_TXN_F_VERIFY;
		remove_dead_copies(db->path, "compact", false);
		if ((rc = pack(db, txn)) == 0 && (rc = copy_to(txn, tmp, db->path, true)) == 0) {
			nvf__lock_bump_generation(&db->lock);
			if (rename(tmp, db->path) != 0) {
				int e = errno;
				rc = nvf__err(-e, "cannot replace %s by its compacted copy: %s", db->path, strerror(e));
				unlink(tmp);
			} else {
				nvf__sync_dir(db->path);
			}
			nvf__lock_bump_generation(&db->lock);
		}
		nvf_txn_abort(txn);
	}
	free(tmp);
	return rc;
}
