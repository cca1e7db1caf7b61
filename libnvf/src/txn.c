/* Transactions: MVCC read transactions straight from the map, and the single
 * copy-on-write write transaction with its dirty pages and commit protocol. */
#include "coll.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <xxhash.h>

int nvf__db_refresh_durable(nvf_db *db);
int nvf__db_write_meta(nvf_db *db, struct nvf_disk_meta *m, bool durable);

/* ---- dirty buffers ---- */

/* Large buffers come from mmap: zeroed by the kernel (no memset of ours) and given
 * back whole when freed. */
#define BIG_BUF (UINT64_C(128) << 10)

static void *buf_alloc(size_t bytes)
{
	void *b = NULL;
	if (bytes >= BIG_BUF) {
		b = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		return b == MAP_FAILED ? NULL : b;
	}
	if (posix_memalign(&b, 64, bytes) != 0)
		return NULL;
	memset(b, 0, bytes);
	return b;
}

static void buf_free(void *b, size_t bytes)
{
	if (!b)
		return;
	if (bytes >= BIG_BUF)
		munmap(b, bytes);
	else
		free(b);
}

/* ---- dirty page map: open addressing on the page number ---- */

static size_t hash64(uint64_t k)
{
	k ^= k >> 33;
	k *= UINT64_C(0xff51afd7ed558ccd);
	k ^= k >> 33;
	return (size_t)k;
}

nvf_dirty *nvf__dirty_find(nvf_txn *txn, uint64_t pgno)
{
	nvf_dirtymap *m = &txn->dirty;
	if (m->n == 0)
		return NULL;
	size_t mask = m->cap - 1;
	for (size_t i = hash64(pgno) & mask;; i = (i + 1) & mask) {
		nvf_dirty *d = &m->slots[i];
		if (d->pgno == pgno)
			return d;
		if (d->pgno == 0)
			return NULL;
	}
}

static int dirty_put(nvf_dirtymap *m, const nvf_dirty *e)
{
	if ((m->n + 1) * 2 > m->cap) {
		size_t ncap = m->cap ? m->cap * 2 : 64;
		nvf_dirty *ns = calloc(ncap, sizeof(*ns));
		if (!ns)
			return nvf__oom();
		for (size_t i = 0; i < m->cap; i++) {
			if (m->slots[i].pgno == 0)
				continue;
			size_t j = hash64(m->slots[i].pgno) & (ncap - 1);
			while (ns[j].pgno)
				j = (j + 1) & (ncap - 1);
			ns[j] = m->slots[i];
		}
		free(m->slots);
		m->slots = ns;
		m->cap = ncap;
	}
	size_t mask = m->cap - 1, i = hash64(e->pgno) & mask;
	while (m->slots[i].pgno)
		i = (i + 1) & mask;
	m->slots[i] = *e;
	m->n++;
	m->bytes += e->npages;
	return 0;
}

/* Remove with backward-shift deletion, so that lookups need no tombstones. */
static void dirty_del(nvf_dirtymap *m, nvf_dirty *d)
{
	size_t mask = m->cap - 1, i = (size_t)(d - m->slots);
	m->bytes -= d->npages;
	m->n--;
	for (size_t j = (i + 1) & mask;; j = (j + 1) & mask) {
		if (m->slots[j].pgno == 0)
			break;
		size_t home = hash64(m->slots[j].pgno) & mask;
		/* Can slot j's entry move back to i? Only if i lies between its home and j. */
		if (((j - home) & mask) >= ((j - i) & mask)) {
			m->slots[i] = m->slots[j];
			i = j;
		}
	}
	memset(&m->slots[i], 0, sizeof(m->slots[i]));
}

static void dirty_free_all(nvf_dirtymap *m, uint32_t pshift)
{
	for (size_t i = 0; i < m->cap; i++)
		buf_free(m->slots[i].buf, (size_t)(m->slots[i].npages << pshift));
	free(m->slots);
	memset(m, 0, sizeof(*m));
}

/* ---- page access ---- */

int nvf__page_ref(nvf_txn *txn, uint64_t pgno, uint64_t npages, const uint8_t **out)
{
	if (NVF_UNLIKELY(pgno < NVF_FIRST_DATA_PAGE || pgno >= txn->npages || npages == 0 ||
			 npages > txn->npages - pgno))
		return nvf__corrupt(pgno, "reference to %llu page(s) outside the %llu pages of state %llu",
				    (unsigned long long)npages, (unsigned long long)txn->npages,
				    (unsigned long long)txn->id);
	if (txn->flags & NVF_TXN_F_WRITE) {
		nvf_dirty *d = nvf__dirty_find(txn, pgno);
		if (d) {
			if (NVF_UNLIKELY(d->npages != npages))
				return nvf__corrupt(pgno, "referenced as %llu pages, written as %llu",
						    (unsigned long long)npages, (unsigned long long)d->npages);
			/* Spilled runs were written already: read them from the map. */
			*out = d->buf ? d->buf : nvf__map_page(txn->db, pgno);
			return 0;
		}
	}
	*out = nvf__map_page(txn->db, pgno);
	return 0;
}

int nvf__txn_fail(nvf_txn *txn, int rc)
{
	/* Every caller is in the middle of a change: whatever the code, part of the
	 * change may be in the dirty pages, so nothing more may be built on them. */
	if (rc != 0 && !(txn->flags & NVF_TXN_F_FAILED)) {
		txn->flags |= NVF_TXN_F_FAILED;
		txn->fail_rc = rc;
		snprintf(txn->fail_msg, sizeof(txn->fail_msg), "%s", nvf_errmsg());
	}
	return rc;
}

int nvf__txn_failed_err(const nvf_txn *txn)
{
	return nvf__err(NVF_EBADTXN, "the transaction failed earlier (%s: %s); abort it", nvf_strerror(txn->fail_rc),
			txn->fail_msg);
}

int nvf_txn_status(const nvf_txn *txn)
{
	if (!txn)
		return nvf__err(NVF_EINVAL, "nvf_txn_status: NULL transaction");
	return (txn->flags & NVF_TXN_F_FAILED) ? txn->fail_rc : 0;
}

int nvf__txn_writable(nvf_txn *txn)
{
	if (!txn)
		return nvf__err(NVF_EINVAL, "NULL transaction");
	if (!(txn->flags & NVF_TXN_F_WRITE))
		return nvf__err(NVF_EREADONLY, "a write through a read transaction; begin a write transaction (flags without NVF_TXN_RDONLY)");
	if (txn->flags & NVF_TXN_F_FAILED)
		return nvf__txn_failed_err(txn);
	return 0;
}

int nvf__page_new(nvf_txn *txn, uint64_t npages, uint64_t *pgno, uint8_t **buf)
{
	uint64_t p;
	int rc = nvf__alloc(txn, npages, &p);
	if (rc != 0)
		return rc;
	size_t bytes = (size_t)(npages << txn->db->pshift);
	void *b = buf_alloc(bytes);
	if (!b)
		return nvf__err(-ENOMEM, "out of memory for %zu dirty bytes", bytes);
	nvf_dirty d = {.pgno = p, .npages = npages, .buf = b};
	rc = dirty_put(&txn->dirty, &d);
	if (rc != 0) {
		buf_free(b, bytes);
		return rc;
	}
	*pgno = p;
	*buf = b;
	return 0;
}

int nvf__page_spill(nvf_txn *txn, const void *data, uint64_t len, uint64_t *pgno, uint64_t *checksum)
{
	nvf_db *db = txn->db;
	uint64_t npages = nvf__pages_for(db, len), p;
	if (npages == 0)
		npages = 1;
	int rc = nvf__alloc(txn, npages, &p);
	if (rc != 0)
		return rc;
	/* New pages no committed state can see: writing them before the commit is as
	 * safe as writing them at it, and spares a copy of the whole value. */
	size_t tail = (size_t)((npages << db->pshift) - len);
	static const uint8_t zeros[NVF_MAX_PAGE];
	struct iovec iov[2] = {{(void *)(uintptr_t)data, (size_t)len}, {(void *)(uintptr_t)zeros, tail}};
	rc = db->io->pwritev(db->io->ctx, db->fd, iov, tail ? 2 : 1, p << db->pshift);
	if (rc != 0)
		return nvf__err(rc, "%s: cannot write pages %llu..%llu: %s", db->path, (unsigned long long)p,
				(unsigned long long)(p + npages - 1), nvf_strerror(rc));
	XXH3_state_t *st = XXH3_createState();
	if (!st)
		return nvf__oom();
	XXH3_64bits_reset_withSeed(st, nvf__extent_seed(p, txn->id));
	XXH3_64bits_update(st, data, (size_t)len);
	if (tail)
		XXH3_64bits_update(st, zeros, tail);
	*checksum = XXH3_64bits_digest(st);
	XXH3_freeState(st);
	nvf_dirty d = {.pgno = p, .npages = npages, .buf = NULL};
	if ((rc = dirty_put(&txn->dirty, &d)) != 0)
		return rc;
	*pgno = p;
	return 0;
}

int nvf__page_free(nvf_txn *txn, uint64_t pgno, uint64_t npages, uint64_t alloc_txnid)
{
	if (alloc_txnid == txn->id) {
		/* Written by this transaction and never visible to anyone: reuse it now. */
		nvf_dirty *d = nvf__dirty_find(txn, pgno);
		if (!d || d->npages != npages)
			return nvf__corrupt(pgno, "freeing %llu page(s) this transaction did not write",
					    (unsigned long long)npages);
		buf_free(d->buf, (size_t)(d->npages << txn->db->pshift));
		dirty_del(&txn->dirty, d);
		nvf_ext e = {pgno, npages};
		return NVF_VEC_PUSH(txn->avail, e);
	}
	if (alloc_txnid > txn->base_txnid)
		return nvf__corrupt(pgno, "written by transaction %llu, after state %llu",
				    (unsigned long long)alloc_txnid, (unsigned long long)txn->base_txnid);
	nvf_freed f = {pgno, npages, alloc_txnid};
	return NVF_VEC_PUSH(txn->freed, f);
}

/* ---- begin / end ---- */

static void txn_release(nvf_txn *txn)
{
	nvf_db *db = txn->db;
	if (txn->slot >= 0) {
		nvf__lock_slot_release(&db->lock, txn->slot);
		atomic_fetch_sub(&db->readers, 1);
	}
	if (txn->flags & NVF_TXN_F_WRITE) {
		dirty_free_all(&txn->dirty, db->pshift);
		NVF_VEC_FREE(txn->avail);
		NVF_VEC_FREE(txn->freed);
		NVF_VEC_FREE(txn->pend_del);
		NVF_VEC_FREE(txn->takes);
		NVF_VEC_FREE(txn->fixups);
		NVF_VEC_FREE(txn->pins);
		nvf__lock_writer_release(&db->lock);
		pthread_mutex_lock(&db->wmutex);
		db->writer_active = false;
		pthread_cond_broadcast(&db->wcond);
		pthread_mutex_unlock(&db->wmutex);
	}
	nvf__array_release_all(txn);
	nvf__coll_free(txn->coll);
	free(txn->scratch);
	for (nvf_tree *t = txn->trees, *n; t; t = n) {
		n = t->next;
		free(t);
	}
	free(txn);
}

static void set_state(nvf_txn *txn, const struct nvf_disk_meta *m)
{
	txn->meta = *m;
	txn->npages = m->npages;
	txn->catalog = m->catalog;
	txn->freetree = m->freetree;
	txn->pending = m->pending;
	txn->snapshots = m->snapshots;
}

static int stale(const nvf_db *db)
{
	return nvf__err(NVF_ESTALE, "%s was compacted into a new file since this handle opened it: close the handle and open the path again",
			db->path);
}

/* Register in the reader table the newest committed state. A writer that scanned the
 * table before our store will have committed a newer meta that the re-read sees, so
 * we retry; one that scans after it sees our pin (see docs/ARCHITECTURE.md). */
static int begin_read(nvf_txn *txn)
{
	nvf_db *db = txn->db;
	int rc = nvf__lock_slot_acquire(&db->lock, &txn->slot);
	if (rc != 0) {
		txn->slot = -1;
		return rc;
	}
	atomic_fetch_add(&db->readers, 1);
	struct nvf_disk_meta m, again;
	for (int tries = 0;; tries++) {
		if (tries > 1000000)
			return nvf__err(NVF_EBUSY, "%s: could not settle on a committed state", db->path);
		/* A writer may be rewriting the newest record (a NOSYNC writer rewrites
		 * the same slot at every commit): a torn copy fails its checksum and the
		 * other slot, possibly much older, would win. Never go below what was
		 * published as committed. */
		uint64_t published = nvf__lock_committed(&db->lock);
		rc = nvf__meta_read_best(db, &m, NULL, NULL);
		if (rc != 0)
			return rc;
		if (m.txnid < published) {
			/* A compaction may have renamed a new file over ours meanwhile: its
			 * writers publish states our file never gets. Say so, rather than
			 * wait for them here. */
			if (nvf__lock_generation(&db->lock) != db->generation)
				return stale(db);
			if (tries > 64)
				sched_yield();
			continue;
		}
		nvf__lock_slot_set(&db->lock, txn->slot, m.txnid);
		rc = nvf__meta_read_best(db, &again, NULL, NULL);
		if (rc != 0)
			return rc;
		if (again.txnid == m.txnid)
			break;
	}
	if ((m.npages << db->pshift) > db->mapsize)
		return nvf__err(NVF_EFULL,
				"%s: another writer grew the file to %llu bytes, past the %llu bytes this handle maps; "
				"close it and open again with a larger map_size (0 = 256 GiB)",
				db->path, (unsigned long long)(m.npages << db->pshift), (unsigned long long)db->mapsize);
	set_state(txn, &m);
	txn->id = m.txnid;
	txn->base_txnid = m.txnid;
	return 0;
}

static int begin_write(nvf_txn *txn, bool wait)
{
	nvf_db *db = txn->db;
	pthread_mutex_lock(&db->wmutex);
	/* One write transaction per handle. Another thread's ends some day, so waiting
	 * for it is fine; waiting for our own would never end. */
	while (db->writer_active) {
		bool mine = pthread_equal(db->writer_thread, pthread_self());
		if (!wait || mine) {
			pthread_mutex_unlock(&db->wmutex);
			return nvf__err(NVF_EBUSY, "%s: this handle's write transaction is still open%s; commit or abort it first",
					db->path, mine ? " in this thread" : " in another thread");
		}
		pthread_cond_wait(&db->wcond, &db->wmutex);
	}
	db->writer_active = true;
	db->writer_thread = pthread_self();
	pthread_mutex_unlock(&db->wmutex);
	txn->flags |= NVF_TXN_F_WRITE; /* from here txn_release() undoes the above */

	int rc = nvf__lock_writer(&db->lock, wait);
	if (rc != 0) {
		nvf__errmsg_prefix("%s", db->path);
		return rc;
	}
	struct nvf_disk_meta m;
	rc = nvf__meta_read_best(db, &m, NULL, NULL);
	if (rc != 0)
		return rc;
	nvf__db_refresh_durable(db);
	struct stat st;
	if (fstat(db->fd, &st) != 0)
		return nvf__err(-errno, "cannot stat %s: %s", db->path, strerror(errno));
	db->file_pages = (uint64_t)st.st_size >> db->pshift;
	if (m.npages > db->file_pages)
		return nvf__corrupt_file(db->path, m.npages - 1,
					 "past the end: the file was truncated to %llu pages, state %llu uses %llu",
					 (unsigned long long)db->file_pages, (unsigned long long)m.txnid,
					 (unsigned long long)m.npages);
	set_state(txn, &m);
	txn->base_txnid = m.txnid;
	txn->id = m.txnid + 1;
	return nvf__free_begin(txn);
}

int nvf_txn_begin(nvf_txn **out, nvf_db *db, unsigned flags)
{
	if (!out || !db)
		return nvf__err(NVF_EINVAL, "nvf_txn_begin: NULL argument");
	if (flags & ~(NVF_TXN_RDONLY | NVF_TXN_WAIT | NVF__TXN_CURRENT))
		return nvf__err(NVF_EINVAL, "nvf_txn_begin: unknown flags 0x%x", flags);
	bool rdonly = (flags & NVF_TXN_RDONLY) != 0;
	if (rdonly && db->at_snapshot && !(flags & NVF__TXN_CURRENT))
		return nvf_txn_begin_snapshot(out, db, db->at_snapshot);
	if (!rdonly && db->rdonly)
		return nvf__err(NVF_EREADONLY, "%s: write transaction on a read-only handle", db->path);
	int rc;
	if (!rdonly && (rc = nvf__db_sync_refused(db)) != 0)
		return rc;
	if (nvf__lock_generation(&db->lock) != db->generation)
		return stale(db);
	nvf_txn *txn = calloc(1, sizeof(*txn));
	if (!txn)
		return nvf__err(-ENOMEM, "out of memory");
	txn->db = db;
	txn->slot = -1;
	rc = rdonly ? begin_read(txn)
			: begin_write(txn, (flags & NVF_TXN_WAIT) || (db->open_flags & NVF_OPEN_LOCK_WAIT));
	if (rc != 0) {
		txn_release(txn);
		return rc;
	}
	*out = txn;
	return 0;
}

int nvf__txn_begin_state(nvf_txn **out, nvf_db *db, const struct nvf_disk_meta *meta, uint64_t npages,
			 const struct nvf_disk_tree *catalog)
{
	nvf_txn *txn = calloc(1, sizeof(*txn));
	if (!txn)
		return nvf__oom();
	txn->db = db;
	txn->slot = -1;
	int rc = nvf__lock_slot_acquire(&db->lock, &txn->slot);
	if (rc != 0) {
		txn->slot = -1;
		free(txn);
		return rc;
	}
	atomic_fetch_add(&db->readers, 1);
	nvf__lock_slot_set(&db->lock, txn->slot, meta->txnid);
	set_state(txn, meta);
	txn->npages = npages;
	txn->catalog = *catalog;
	txn->id = meta->txnid;
	txn->base_txnid = meta->txnid;
	txn->flags |= NVF_TXN_F_SNAPSHOT;
	*out = txn;
	return 0;
}

uint64_t nvf_txn_id(const nvf_txn *txn)
{
	return txn ? txn->id : 0;
}

void nvf_txn_abort(nvf_txn *txn)
{
	if (txn)
		txn_release(txn);
}

static int cmp_dirty(const void *a, const void *b)
{
	const nvf_dirty *x = *(const nvf_dirty *const *)a, *y = *(const nvf_dirty *const *)b;
	return x->pgno < y->pgno ? -1 : x->pgno > y->pgno;
}

/* Write every dirty page in page order, contiguous runs in one pwritev. Tree pages
 * get their checksum now that their content is final. */
static int write_dirty(nvf_txn *txn)
{
	nvf_db *db = txn->db;
	nvf_dirtymap *m = &txn->dirty;
	int rc = 0;
	nvf_dirty **list = malloc((m->n ? m->n : 1) * sizeof(*list));
	struct iovec *iov = malloc(1024 * sizeof(*iov));
	if (!list || !iov) {
		rc = nvf__oom();
		goto out;
	}
	size_t n = 0;
	for (size_t i = 0; i < m->cap; i++)
		if (m->slots[i].pgno && m->slots[i].buf)
			list[n++] = &m->slots[i];
	qsort(list, n, sizeof(*list), cmp_dirty);
	for (size_t i = 0; i < n; i++) {
		struct nvf_disk_page *h = (struct nvf_disk_page *)list[i]->buf;
		if (list[i]->npages == 1 && (h->type == NVF_PAGE_BRANCH || h->type == NVF_PAGE_LEAF) &&
		    h->pgno == list[i]->pgno && h->txnid == txn->id)
			h->checksum = nvf__page_checksum(list[i]->buf, db->psize);
	}
	for (size_t i = 0; i < n;) {
		uint64_t start = list[i]->pgno, next = start;
		int cnt = 0;
		while (i < n && list[i]->pgno == next && cnt < 1024) {
			iov[cnt].iov_base = list[i]->buf;
			iov[cnt].iov_len = (size_t)(list[i]->npages << db->pshift);
			next += list[i]->npages;
			cnt++;
			i++;
		}
		rc = db->io->pwritev(db->io->ctx, db->fd, iov, cnt, start << db->pshift);
		if (rc != 0) {
			nvf__err(rc, "%s: cannot write pages %llu..%llu: %s", db->path, (unsigned long long)start,
				 (unsigned long long)(next - 1), nvf_strerror(rc));
			goto out;
		}
	}
	/* Pages handed out at the end and then freed again were never written: make
	 * the file as long as the state says, so that open never sees it short. */
	if (txn->npages > db->file_pages) {
		rc = db->io->truncate(db->io->ctx, db->fd, txn->npages << db->pshift);
		if (rc != 0) {
			nvf__err(rc, "%s: cannot extend the file: %s", db->path, nvf_strerror(rc));
			goto out;
		}
		db->file_pages = txn->npages;
	}
out:
	free(list);
	free(iov);
	return rc;
}

int nvf__txn_prepare(nvf_txn *txn)
{
	int rc = txn->precommit ? txn->precommit(txn) : 0;
	if (rc == 0)
		rc = nvf__catalog_flush(txn);
	if (rc == 0)
		rc = nvf__tree_fix_checksums(txn);
	return rc;
}

static int commit_write(nvf_txn *txn)
{
	nvf_db *db = txn->db;
	int rc = nvf__txn_prepare(txn);
	if (rc != 0)
		return rc;
	if (txn->dirty.n == 0 && txn->freed.n == 0)
		return 0; /* nothing to commit */
	txn->flags |= NVF_TXN_F_COMMIT_PHASE;
	rc = nvf__free_commit(txn);
	if (rc != 0)
		return rc;
	rc = write_dirty(txn);
	if (rc != 0)
		return rc;
	bool durable = db->durability == NVF_DURABILITY_FULL;
	/* Data before meta: the meta may only reach the disk after what it points to. */
	if (durable && (rc = nvf__db_sync(db)) != 0)
		return rc;
	struct nvf_disk_meta m = txn->meta;
	m.txnid = txn->id;
	m.npages = txn->npages;
	m.commit_ns = nvf__now_ns();
	m.catalog = txn->catalog;
	m.freetree = txn->freetree;
	m.pending = txn->pending;
	m.snapshots = txn->snapshots;
	rc = nvf__db_write_meta(db, &m, durable);
	if (rc == 0 && !durable)
		db->unsynced = true;
	return rc;
}

int nvf_txn_commit(nvf_txn *txn)
{
	if (!txn)
		return nvf__err(NVF_EINVAL, "nvf_txn_commit: NULL transaction");
	int rc = 0;
	if (txn->flags & NVF_TXN_F_WRITE) {
		if (txn->flags & NVF_TXN_F_FAILED)
			rc = nvf__err(NVF_EBADTXN, "commit of a transaction that failed earlier (%s: %s): nothing was written, it was aborted",
				      nvf_strerror(txn->fail_rc), txn->fail_msg);
		else
			rc = commit_write(txn);
	}
	txn_release(txn);
	return rc;
}
