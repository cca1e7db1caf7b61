/* Internal declarations shared by libnvf's modules. Never installed.
 * Internal non-static functions are named nvf__module_verb. */
#ifndef NVF_INT_H
#define NVF_INT_H

#include "nvf.h"
#include "format.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
/* The format is little-endian and rows are read in place from the map; a big-endian
 * port would need byte-swapping readers for every struct and every row. */
#error "libnvf supports little-endian hosts only"
#endif

#define NVF_INTERNAL __attribute__((visibility("hidden")))
#define NVF_LIKELY(x) __builtin_expect(!!(x), 1)
#define NVF_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define NVF_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define NVF_MAX_DEPTH 24 /* B+tree depth bound: far beyond any real file */

/* ---- errors (error.c) ---- */

/* Set the thread's detail message and return code (for `return nvf__err(...)`). */
int nvf__err(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Report a corrupt structure at a page: NVF_ECORRUPT with "page N: ..." */
int nvf__corrupt(uint64_t pgno, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same for a problem of the file as a whole: "PATH: page N: ..." */
int nvf__corrupt_file(const char *path, uint64_t pgno, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* -ENOMEM with the message "out of memory". */
int nvf__oom(void);
/* Keep the current detail message but prefix it with context. */
void nvf__errmsg_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- I/O layer (io.c): every read, write and sync of the data file ---- */

/* All functions return 0 (pread: bytes read) or -errno. Tests install a layer that
 * fails or "crashes" at the N-th write or sync (tests/faultio.c). */
typedef struct nvf_io {
	long (*pread)(void *ctx, int fd, void *buf, size_t n, uint64_t off);
	int (*pwritev)(void *ctx, int fd, const struct iovec *iov, int iovcnt, uint64_t off);
	int (*sync)(void *ctx, int fd);
	int (*truncate)(void *ctx, int fd, uint64_t size);
	void *ctx;
} nvf_io;

extern const nvf_io nvf__io_posix;
int nvf__io_pwrite(const nvf_io *io, int fd, const void *buf, size_t n, uint64_t off);
/* Make the directory entry of path durable (after a create, link or rename); best
 * effort: a directory that cannot be opened or synced is left as it is. */
void nvf__sync_dir(const char *path);

/* ---- small containers ---- */

typedef struct nvf_ext {
	uint64_t pgno;
	uint64_t npages;
} nvf_ext;

typedef struct nvf_freed {
	uint64_t pgno;
	uint64_t npages;
	uint64_t alloc_txnid;
} nvf_freed;

#define NVF_VEC(T) struct { T *v; size_t n, cap; }
int nvf__vec_grow(void **v, size_t *cap, size_t need, size_t elem);
#define NVF_VEC_PUSH(vec, val)                                                        \
	((vec).n < (vec).cap || nvf__vec_grow((void **)&(vec).v, &(vec).cap, (vec).n + 1, \
					      sizeof(*(vec).v)) == 0                      \
		 ? ((vec).v[(vec).n++] = (val), 0)                                        \
		 : nvf__oom())
#define NVF_VEC_FREE(vec) (free((vec).v), (vec).v = NULL, (vec).n = (vec).cap = 0)

/* Dirty page: a page or extent written by the current write transaction. */
typedef struct nvf_dirty {
	uint64_t pgno;   /* 0 = empty slot */
	uint64_t npages;
	uint8_t *buf;    /* NULL: spilled, already written to the file */
} nvf_dirty;

typedef struct nvf_dirtymap {
	nvf_dirty *slots;
	size_t cap; /* power of two */
	size_t n;
	size_t bytes;
} nvf_dirtymap;

/* Extent whose checksum must be computed at commit (its contents may be written
 * after it was allocated): the tree and key whose cell points at it. */
typedef struct nvf_fixup {
	struct nvf_disk_tree *tree;
	uint64_t key;
	uint64_t pgno;
} nvf_fixup;

/* A user tree opened in a transaction (catalog entry id -> descriptor). */
typedef struct nvf_tree {
	uint64_t id;
	struct nvf_disk_tree d;
	struct nvf_disk_tree orig;
	struct nvf_tree *next;
} nvf_tree;

/* Pages taken this transaction from one run of the committed FREE tree. */
typedef struct nvf_take {
	uint64_t start;   /* key of the run in the committed FREE tree */
	uint64_t len;     /* its length there */
	uint64_t used;    /* pages handed out from its start */
	uint64_t applied; /* pages already removed from the new FREE tree */
} nvf_take;

/* ---- lock file (lock.c) ---- */

typedef struct nvf_lockfile {
	int fd;
	uint8_t *map;
	size_t size;
	uint32_t handle_id;
	bool have_writer;
	bool same_boot; /* no restart since the table was built (unsynced writes survive) */
	bool rebuilt;   /* this handle built the table: no other user at open */
} nvf_lockfile;

struct nvf_lock_header;
struct nvf_lock_slot;

/* The lock file beside database `path` ("PATH-lock"), malloc'd; NULL (with the
 * error set) when memory runs out. */
char *nvf__lock_path(const char *path);
/* Open (creating it with `mode`, never o+w, under the umask) and check the lock
 * file: not a symlink (-ELOOP), a regular file (NVF_EINVAL), owned by the caller or
 * by data_uid and not world-writable (-EPERM). */
int nvf__lock_open(nvf_lockfile *lk, const char *path, uint64_t committed_txnid, unsigned mode, uid_t data_uid);
void nvf__lock_close(nvf_lockfile *lk);
int nvf__lock_writer(nvf_lockfile *lk, bool wait);
void nvf__lock_writer_release(nvf_lockfile *lk);
int nvf__lock_slot_acquire(nvf_lockfile *lk, int *slot);
void nvf__lock_slot_set(nvf_lockfile *lk, int slot, uint64_t txnid);
void nvf__lock_slot_release(nvf_lockfile *lk, int slot);
/* Txnids pinned by live readers (dead ones are cleared). */
int nvf__lock_reader_pins(nvf_lockfile *lk, uint64_t **out, size_t *n);
void nvf__lock_publish(nvf_lockfile *lk, uint64_t txnid);
/* The last commit a writer published: readers never settle on an older state. */
uint64_t nvf__lock_committed(const nvf_lockfile *lk);
uint32_t nvf__lock_generation(const nvf_lockfile *lk);
void nvf__lock_bump_generation(nvf_lockfile *lk);
bool nvf__lock_same_boot(const nvf_lockfile *lk);

/* Open flags for the raw page store (nvf_db_create() uses them; tests of the store
 * create files without a collection). */
#define NVF__OPEN_CREATE 0x01u /* create the file if it does not exist */
#define NVF__OPEN_EXCL 0x02u   /* with CREATE: NVF_EEXIST if it exists */
#define NVF__OPEN_COLLECTION 0x1000u /* with CREATE: mark the header as a collection's */

/* ---- the database handle ---- */

struct nvf_db {
	char *path;
	char *at_snapshot;      /* nvf_open_options.snapshot: read transactions begin there */
	int fd;
	const nvf_io *io;
	uint32_t psize;
	uint32_t pshift;
	uint8_t *map;
	uint64_t mapsize;
	bool rdonly;
	int durability;
	unsigned open_flags;
	struct nvf_disk_header header;
	nvf_lockfile lock;
	pthread_mutex_t wmutex; /* one write transaction per handle */
	pthread_cond_t wcond;   /* signalled when the handle's write transaction ends */
	bool writer_active;     /* under wmutex */
	pthread_t writer_thread; /* the thread that began it (under wmutex) */
	uint64_t map_size_given; /* nvf_open_options.map_size as the caller gave it */
	int durable_slot;       /* slot holding the newest durable meta (writer's view) */
	uint64_t durable_txnid;
	uint32_t generation;    /* the lock file's generation when this handle opened the file */
	int forced_slot;        /* read-only handle after a failed unsynced state: read only this slot */
	bool unsynced;          /* committed with NOSYNC since the last sync */
	atomic_int sync_failed; /* the error of a failed fsync of the file, 0 if none: no more
				 * commits until the file is opened again (nvf__db_sync) */
	bool meta_lost;         /* ... or of a meta record write that could not be undone */
	uint64_t file_pages;    /* file length in pages, as the writer last saw it */
	atomic_int readers;     /* live read transactions of this handle */
	pthread_mutex_t cache_mutex; /* guards chunkmaps */
	struct nvf_chunkmap *chunkmaps; /* chunk tables shared by read transactions (array.c) */
	pthread_mutex_t dict_mutex;  /* guards dicts */
	struct nvf_dict **dicts;     /* zstd dictionaries loaded so far, by id (meta.c) */
	size_t ndicts;
	/* By page number, the txnid of the page's version whose checksum this handle
	 * has verified (0: none): tree pages always, extents under NVF_OPEN_VERIFY. Anonymous memory reserved for the
	 * whole map, touched only where pages are read; relaxed atomics, since two
	 * threads verifying the same page at once only repeat the work. */
	_Atomic uint64_t *verified;
};

/* Check a committed tree page (always) or an extent (NVF_OPEN_VERIFY), by its
 * first page, the first time this handle reads that version of it (btree.c). */
int nvf__verify_page(nvf_txn *txn, uint64_t pgno, const uint8_t *p);
int nvf__verify_extent(nvf_txn *txn, const struct nvf_disk_extref *ref, const uint8_t *data);

/* fsync the data file. A failure is remembered: the kernel may have dropped the
 * dirty pages and marked them clean, so a later fsync could succeed without their
 * bytes ever reaching the disk (PostgreSQL's "fsyncgate"). From then on the handle
 * refuses write transactions and syncs (nvf__db_sync_refused); reads go on. */
int nvf__db_sync(nvf_db *db);
/* 0, or -EIO naming the earlier failed fsync. */
int nvf__db_sync_refused(nvf_db *db);

/* ---- transactions (txn.c) ---- */

/* nvf_txn_begin: the newest state even on a handle opened at a snapshot (internal). */
#define NVF__TXN_CURRENT 0x80000000u
#define NVF_TXN_F_WRITE 0x100u
#define NVF_TXN_F_FAILED 0x200u
#define NVF_TXN_F_COMMIT_PHASE 0x400u
#define NVF_TXN_F_SNAPSHOT 0x800u
#define NVF_TXN_F_NOSLOT 0x1000u
/* Verify extents on first read whatever the open flags (compaction: what it rewrites
 * gets new checksums, so damage must stop it rather than be sealed in). */
#define NVF_TXN_F_VERIFY 0x2000u

struct nvf_txn {
	nvf_db *db;
	uint64_t id;          /* write: the txnid being built; read: the state's txnid */
	uint64_t base_txnid;  /* write: the committed state it started from */
	unsigned flags;
	int fail_rc;          /* NVF_TXN_F_FAILED: the first failure's code ... */
	char fail_msg[200];   /* ... and its detail message, repeated by later calls */
	int slot;             /* reader slot, -1 for none */
	uint64_t npages;      /* high-water mark (grows as the writer appends) */
	struct nvf_disk_meta meta; /* the state read (read) or started from (write) */
	struct nvf_disk_tree catalog, freetree, pending, snapshots;
	nvf_tree *trees;      /* user trees opened in this transaction */
	struct nvf_array *arrays; /* arrays opened in this transaction (array.c) */
	struct nvf_coll *coll;    /* the collection's view (coll.c) */
	int (*precommit)(nvf_txn *txn); /* work the collection finishes before a commit */
	uint8_t *scratch;     /* page rebuilding (btree.c) */

	/* write transactions only */
	nvf_dirtymap dirty;
	NVF_VEC(nvf_ext) avail;    /* reusable now: recycled + promoted from PENDING */
	NVF_VEC(nvf_freed) freed;  /* freed pages still visible to the base state */
	NVF_VEC(uint64_t) pend_del;/* PENDING keys promoted to avail */
	NVF_VEC(nvf_take) takes;   /* runs of the committed FREE tree handed out */
	NVF_VEC(nvf_fixup) fixups;
	NVF_VEC(uint64_t) pins;    /* sorted txnids that must stay readable */
	uint64_t free_cursor;      /* next key to look at in the committed FREE tree */
	uint64_t free_fail_n;      /* no run of >= this many pages left in FREE */
	uint64_t pend_seq;
	size_t freed_done;         /* commit phase progress */
};

/* Page access. Return 0 or NVF_ECORRUPT naming the page. */
static inline uint8_t *nvf__map_page(const nvf_db *db, uint64_t pgno)
{
	return db->map + (pgno << db->pshift);
}
nvf_dirty *nvf__dirty_find(nvf_txn *txn, uint64_t pgno);
int nvf__page_ref(nvf_txn *txn, uint64_t pgno, uint64_t npages, const uint8_t **out);
/* A new zeroed page run, dirty in txn. */
int nvf__page_new(nvf_txn *txn, uint64_t npages, uint64_t *pgno, uint8_t **buf);
/* Write a value straight to new pages of the file ("spill"), without a dirty copy;
 * returns the first page and the extent checksum. Reads see it through the map. */
int nvf__page_spill(nvf_txn *txn, const void *data, uint64_t len, uint64_t *pgno, uint64_t *checksum);
/* Release a run: reusable at once if this transaction wrote it, else pending. */
int nvf__page_free(nvf_txn *txn, uint64_t pgno, uint64_t npages, uint64_t alloc_txnid);
/* A change failed half-way (I/O, no space, damage, no memory): the transaction can
 * only be aborted. Records the first failure's code and message; returns rc. Calls
 * that fail validation before changing anything never call it. */
int nvf__txn_fail(nvf_txn *txn, int rc);
/* NVF_EBADTXN, repeating the first failure ("the transaction failed earlier (...)"). */
int nvf__txn_failed_err(const nvf_txn *txn);
int nvf__txn_writable(nvf_txn *txn);
/* Begin a read transaction on an explicit committed state (snapshots). */
int nvf__txn_begin_state(nvf_txn **out, nvf_db *db, const struct nvf_disk_meta *meta, uint64_t npages, const struct nvf_disk_tree *catalog);
/* What a commit does before it writes: the collection's pending changes, the
 * catalog, the checksums of the dirty pages. The transaction's state is then whole in
 * memory (compaction copies it from there and aborts). */
int nvf__txn_prepare(nvf_txn *txn);

/* Open a database with a custom I/O layer (tests). */
int nvf__db_open_io(nvf_db **out, const char *path, const nvf_open_options *opts, const nvf_io *io);
/* The same, creating the file (NVF__OPEN_CREATE) with `mode` under the umask. */
int nvf__db_open_mode(nvf_db **out, const char *path, const nvf_open_options *opts, const nvf_io *io, unsigned mode);
/* A mode for files the library creates: 0 to 0777, not writable by others. */
int nvf__mode_check(unsigned mode, const char *what);
/* The mode a copy of the data file gets: its permission bits, never o+w. */
#define NVF__COPY_MODE(st_mode) ((unsigned)(st_mode) & 0777u & ~0002u)

/* Meta records (pager.c). */
int nvf__meta_read_best(nvf_db *db, struct nvf_disk_meta *out, int *slot, bool *other_ok);
uint64_t nvf__meta_checksum(const struct nvf_disk_meta *m);
uint64_t nvf__header_checksum(const struct nvf_disk_header *h);
uint64_t nvf__page_checksum(const uint8_t *page, uint32_t psize);
uint64_t nvf__extent_seed(uint64_t pgno, uint64_t txnid);
uint64_t nvf__extent_checksum(const uint8_t *data, uint64_t npages, uint32_t psize, uint64_t pgno, uint64_t txnid);
static inline uint64_t nvf__pages_for(const nvf_db *db, uint64_t bytes)
{
	return (bytes + db->psize - 1) >> db->pshift;
}

/* ---- free space (freelist.c) ---- */

int nvf__alloc(nvf_txn *txn, uint64_t npages, uint64_t *pgno);
int nvf__free_begin(nvf_txn *txn);     /* pins, promote pending runs */
int nvf__free_commit(nvf_txn *txn);    /* fold this txn's frees and takes into the trees */
bool nvf__pinned_between(const uint64_t *pins, size_t n, uint64_t lo, uint64_t hi);

/* ---- B+tree (btree.c) ---- */

typedef struct nvf_val {
	const uint8_t *data;
	uint64_t len;
	bool extent;
	struct nvf_disk_extref ref; /* when extent */
} nvf_val;

#define NVF_PUT_NOOVERWRITE 0x1u /* NVF_EEXIST if the key exists */
#define NVF_PUT_EXTENT 0x2u      /* store out of line, page-aligned, whatever the size */
#define NVF_PUT_RESERVE 0x4u     /* data may be NULL: return a writable buffer in *reserve */

uint32_t nvf__tree_max_inline(const nvf_db *db);
int nvf__tree_get(nvf_txn *txn, const struct nvf_disk_tree *t, uint64_t key, nvf_val *out);
int nvf__tree_page_at(nvf_txn *txn, const struct nvf_disk_tree *t, uint64_t key, int level, uint64_t *out);
int nvf__tree_page_min(nvf_txn *txn, uint64_t pgno, int level, uint64_t *key);
/* The pages of the subtree at pgno (level) that tree o does not share (a page both
 * reach is shared with all below it: pages never change once committed): page() for
 * each (may be NULL), entry() for each entry of their leaves, with o's value for
 * the key (NULL if o has none). Restore and diff are built on it. */
typedef struct nvf_unshared_ops {
	int (*page)(void *ctx, uint64_t pgno, uint64_t txnid);
	int (*entry)(void *ctx, uint64_t pgno, uint64_t key, const nvf_val *v, const nvf_val *ov);
	void *ctx;
} nvf_unshared_ops;
int nvf__tree_unshared(nvf_txn *txn, uint64_t pgno, int level, const struct nvf_disk_tree *o,
		       const nvf_unshared_ops *ops);
int nvf__tree_put(nvf_txn *txn, struct nvf_disk_tree *t, uint64_t key, const void *data,
		  uint64_t len, unsigned flags, uint8_t **reserve);
int nvf__tree_del(nvf_txn *txn, struct nvf_disk_tree *t, uint64_t key);
/* Writable access to an existing extent value (copy-on-write if not yet dirty). */
int nvf__tree_extent_mut(nvf_txn *txn, struct nvf_disk_tree *t, uint64_t key, uint8_t **out, uint64_t *len);
/* Free every page of a tree (and its extents). */
int nvf__tree_drop(nvf_txn *txn, struct nvf_disk_tree *t);
int nvf__tree_fix_checksums(nvf_txn *txn);

typedef struct nvf_cursor {
	nvf_txn *txn;
	const struct nvf_disk_tree *t;
	int depth;
	uint64_t pg[NVF_MAX_DEPTH];
	int idx[NVF_MAX_DEPTH];
	bool valid;
} nvf_cursor;

/* Position at the first key >= key; valid=false at the end. */
int nvf__cursor_seek(nvf_cursor *c, nvf_txn *txn, const struct nvf_disk_tree *t, uint64_t key);
/* Position at the last key <= key; valid=false if none. */
int nvf__cursor_seek_le(nvf_cursor *c, nvf_txn *txn, const struct nvf_disk_tree *t, uint64_t key);
int nvf__cursor_next(nvf_cursor *c);
int nvf__cursor_prev(nvf_cursor *c);
int nvf__cursor_get(const nvf_cursor *c, uint64_t *key, nvf_val *val);

/* Catalog of user trees. */
int nvf__tree_open(nvf_txn *txn, uint64_t id, int create_kind, nvf_tree **out);
int nvf__catalog_flush(nvf_txn *txn);

/* ---- snapshots (snapshot.c), internal until the snapshot API lands ---- */

int nvf__snapshot_create(nvf_txn *txn, const char *name, const char *note);
int nvf__snapshot_delete(nvf_txn *txn, const char *name);
int nvf__snapshot_find(nvf_txn *txn, const char *name, uint64_t *id, struct nvf_disk_snapshot *rec);
int nvf__snapshot_begin(nvf_txn **out, nvf_db *db, const char *name);
int nvf__snapshot_pins(nvf_txn *txn, const struct nvf_disk_tree *snaps);

/* ---- check (check.c) ---- */

int nvf__check_state(nvf_db *db, const struct nvf_disk_meta *meta, nvf_check_report *rep);
/* The collection's own invariants (coll.c); 0 for a store without a collection. */
int nvf__coll_check(nvf_txn *txn);
/* Walk like nvf_check(), calling fn for every page run reached: what it is ("leaf",
 * "branch", "extent") and in which tree ("catalog", "user", "free", "pending",
 * "snapshots"). For tests that damage each kind of page. */
typedef void (*nvf__check_visit_fn)(void *ctx, uint64_t pgno, uint64_t npages, const char *what, const char *tree);
int nvf__check_visit(nvf_db *db, nvf__check_visit_fn fn, void *ctx);

/* Free the handle's dictionary cache (meta.c). */
void nvf__dict_cache_free(nvf_db *db);

/* ---- time ---- */
uint64_t nvf__now_ns(void);

#endif
