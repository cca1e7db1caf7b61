/**
 * @file nvf.h
 * @brief libnvf: an embedded vector database in one page-based, memory-mapped file.
 *
 * This header is the whole public contract of libnvf. Everything else is internal.
 *
 * Conventions (see docs/API.md):
 * - Functions that return `int` return 0 on success or a negative code: `-errno` for
 *   errors of the operating system, `NVF_E*` for the library's own. nvf_strerror()
 *   names a code, nvf_errmsg() gives the calling thread's detail message for its last
 *   failure. The exceptions say so: nvf_contains() (1 or 0), nvf_metric_parse() (a
 *   metric), nvf_txn_status() (the failure a transaction keeps); functions returning
 *   a pointer, a float or `uint64_t` cannot fail.
 * - Bad input changes nothing: a call refused for its arguments (NVF_EINVAL,
 *   NVF_EEXIST, NVF_ENOTFOUND, NVF_EFULL for a limit, NVF_EREADONLY) leaves the
 *   caller's transaction exactly as it was and usable. Only a failure in the middle
 *   of a change (I/O, no space, damage met, no memory) fails a write transaction;
 *   its later calls then return NVF_EBADTXN, repeating the first failure, and it
 *   can only be aborted.
 * - Disk faults: a failed write (-EIO, -ENOSPC, a short write) or truncate fails
 *   the call that made it (a commit returns the code, the message names the file
 *   and the pages); nothing committed before is lost and the handle stays usable:
 *   the next transaction may commit. A failed fsync of the file is different: the
 *   kernel may have dropped the dirty pages and marked them clean, so the page cache
 *   can no longer be trusted and a later fsync could succeed without the bytes
 *   reaching the disk. The call whose fsync failed returns its code, and from then
 *   on the handle refuses write transactions (and anything that begins one: the
 *   calls with txn NULL, compact, restore) and nvf_db_sync() with -EIO, "PATH: an
 *   earlier fsync failed (...); the page cache can no longer be trusted: close and
 *   reopen the database". Reads (and nvf_db_backup()) go on, seeing what the page
 *   cache holds. Reopened, the file is at the last commit that returned 0, or at
 *   the failed one if its meta record was written before the fsync failed and the
 *   kernel kept it. Only this handle knows: other handles learn of the failure from
 *   their own fsyncs. A failed fsync of a copy (backup, compact) fails that call
 *   only; the copy is removed and the handle stays usable.
 * - Handles are opaque. Objects returned through `**out` belong to the caller and
 *   have a matching close/free function that accepts NULL. On failure, out
 *   parameters are left untouched.
 * - Option structs are versioned and must be initialised with their `_INIT` macro.
 * - The library never prints and never exits.
 */
#ifndef NVF_H
#define NVF_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define NVF_API __attribute__((visibility("default")))
#else
#define NVF_API
#endif

#define NVF_VERSION_MAJOR 0
#define NVF_VERSION_MINOR 1
#define NVF_VERSION_PATCH 0

/** @name Error codes
 * Library errors are below -1000 so that they never collide with `-errno`.
 * @{ */
#define NVF_OK          0
#define NVF_ECORRUPT  (-1001) /**< the file is damaged: a checksum or structural check failed */
#define NVF_EVERSION  (-1002) /**< the file's format version is not supported */
#define NVF_ELOCKED   (-1003) /**< another writer holds the write lock */
#define NVF_ENOTFOUND (-1004) /**< no such record or file */
#define NVF_EEXIST    (-1005) /**< it already exists */
#define NVF_EINVAL    (-1006) /**< an argument is invalid */
#define NVF_EREADONLY (-1007) /**< a write through a read-only handle or transaction */
#define NVF_EFULL     (-1008) /**< the reserved map size or another hard limit is reached */
#define NVF_EREADERS  (-1009) /**< every slot of the reader table is in use */
#define NVF_EBADTXN   (-1010) /**< the transaction failed earlier and can only be aborted (nvf_txn_status() gives the cause) */
#define NVF_ENOTDB    (-1011) /**< the file is not an .nvf database (bad magic) */
#define NVF_EBUSY     (-1012) /**< the operation conflicts with one in progress: a transaction of this handle still open, a lock file being rebuilt */
#define NVF_ESTALE    (-1013) /**< the file was replaced by a compaction since this handle opened it: close the handle and open the path again */
/** @} */

/** Opaque handle of an open database file. Thread-safe: any number of threads may
 * run read transactions on one handle; one write transaction at a time. */
typedef struct nvf_db nvf_db;

/** Opaque transaction. A transaction belongs to one thread at a time. */
typedef struct nvf_txn nvf_txn;

/** Name an error code (never NULL, static storage). */
NVF_API const char *nvf_strerror(int code);

/** The calling thread's detail message for its most recent failure: which page,
 * which id, which argument. Thread-local; valid until the thread's next failing call. */
NVF_API const char *nvf_errmsg(void);

/** @name Durability
 * @{ */
/** fsync the data pages, then the meta record, at every commit (default). A commit
 * that returned 0 survives a crash of the process or of the machine. */
#define NVF_DURABILITY_FULL   0
/** Do not sync at commit. A crash of the process loses nothing (the OS page cache
 * holds the writes); a crash of the machine loses every commit since the last
 * nvf_db_sync() (or close), never more, and the file still opens: the next open
 * verifies the unsynced state and falls back to the last synced one if it is
 * incomplete. For bulk loads that can be redone. */
#define NVF_DURABILITY_NOSYNC 1
/** @} */

/** @name Open flags
 * @{ */
#define NVF_OPEN_RDONLY    0x04u /**< read-only handle: writes fail with NVF_EREADONLY */
#define NVF_OPEN_LOCK_WAIT 0x08u /**< write transactions wait for the writer lock instead of NVF_ELOCKED */
/** Also verify the checksum of every extent (vector and graph chunks, large
 * documents) the first time this handle reads it, and fail that read with
 * NVF_ECORRUPT naming the page if it does not match. Tree pages (B+tree branches and
 * leaves: id map, documents, field indexes, catalog) are verified on first read by
 * every handle; extents are not by default, because a first query would hash and
 * fault in whole chunks of which it reads a few rows (measured in
 * docs/RELIABILITY.md). Without the flag a damaged extent gives wrong values or
 * NVF_ECORRUPT from the structural checks, never a crash; nvf_check() verifies
 * everything. A page is verified once per handle and committed version. */
#define NVF_OPEN_VERIFY    0x10u
/** @} */

#define NVF_OPEN_OPTIONS_VERSION 2
/** Options of nvf_db_open(). Initialise with NVF_OPEN_OPTIONS_INIT. */
typedef struct nvf_open_options {
	unsigned version;     /**< NVF_OPEN_OPTIONS_VERSION */
	unsigned flags;       /**< NVF_OPEN_* */
	uint32_t page_size;   /**< reserved (the page size is the file's, fixed by nvf_db_create()) */
	int durability;       /**< NVF_DURABILITY_* */
	uint64_t map_size;    /**< address space reserved for the map, bytes; 0 = 256 GiB. The file cannot grow beyond it (NVF_EFULL). */
	/* Version 2: */
	/** NULL, or a named snapshot: the handle's read transactions (and the calls that
	 * make their own) see that state instead of the newest one. Needs NVF_OPEN_RDONLY.
	 * nvf_check, nvf_db_stats and nvf_db_backup still work on the whole file. */
	const char *snapshot;
} nvf_open_options;

#define NVF_OPEN_OPTIONS_INIT { NVF_OPEN_OPTIONS_VERSION, 0u, 0u, NVF_DURABILITY_FULL, 0u, NULL }

/**
 * Open an existing database file (nvf_db_create() makes new ones).
 *
 * Opening does no work proportional to the size of the file: it reads the header and
 * the two meta records, picks the newest valid one and maps the file. A lock file
 * `PATH-lock` beside the database holds the reader table and the writer lock; it
 * holds nothing durable and is rebuilt if missing.
 *
 * Files and locks:
 * - `path` may be a symbolic link to the data file: it is resolved once, at open,
 *   and the handle works on the file it points to. The lock file is then the one
 *   beside that file (so every path to a file shares one lock file), and
 *   nvf_db_compact() replaces that file, leaving the link in place.
 * - The lock file is created with the data file's permission bits, never o+w, under
 *   the umask. It must not be a symbolic link (-ELOOP: it is opened with
 *   O_NOFOLLOW), must be a regular file (NVF_EINVAL), and must be owned by the
 *   caller's effective user or by the data file's owner and not writable by others
 *   (-EPERM); root gets no exception. Removing a refused lock file is safe while no
 *   handle has the database open: it holds nothing durable.
 * - Locks end with their process: the writer lock and each handle's liveness lock
 *   are Linux open-file-description byte locks, which the kernel releases when the
 *   process dies (kill -9 included). A dead reader's slot is reclaimed by the next
 *   handle that needs a slot or frees pages; a slot is judged by its handle's lock,
 *   never by its pid, so pid reuse neither keeps a dead slot nor frees a live one.
 *
 * @param[out] out  the new handle; close it with nvf_db_close()
 * @param path      the database file
 * @param opts      options, or NULL for the defaults
 * @return 0; NVF_ENOTFOUND if the file does not exist; NVF_ENOTDB, NVF_EVERSION or
 *         NVF_ECORRUPT for a file
 *         that is foreign, too new or damaged (the message names the page);
 *         NVF_EINVAL for bad options; -ELOOP, -EPERM or NVF_EINVAL for a lock file
 *         that is refused (above; the message names it); -errno from the OS.
 */
NVF_API int nvf_db_open(nvf_db **out, const char *path, const nvf_open_options *opts);

/**
 * Close a handle. Syncs first if the handle committed without syncing. Accepts NULL.
 *
 * Every transaction of the handle must have ended (committed or aborted): like
 * sqlite3_close(), a close with transactions still open returns NVF_EBUSY and changes
 * nothing; the handle stays open and usable, and a later close succeeds once they
 * have ended.
 * @return 0 (the handle is freed); NVF_EBUSY (still open); or the sync's error (the
 *         handle is freed anyway).
 */
NVF_API int nvf_db_close(nvf_db *db);

/** Make every commit so far durable (fsync data and a durable meta record). Useful
 * with NVF_DURABILITY_NOSYNC. A failed fsync is final for the handle, as at commit:
 * later syncs and write transactions return -EIO until it is reopened (see "Disk
 * faults" at the top). @return 0, NVF_EREADONLY, NVF_ELOCKED or -errno. */
NVF_API int nvf_db_sync(nvf_db *db);

/** @name Transaction flags
 * @{ */
#define NVF_TXN_RDONLY 0x01u /**< a read transaction: a consistent snapshot, no locks on the read path */
#define NVF_TXN_WAIT   0x02u /**< a write transaction waits for the writer lock */
/** @} */

/**
 * Begin a transaction.
 *
 * A read transaction sees the last committed state for its whole life, however many
 * commits happen meanwhile, in this process or others; it takes a slot in the reader
 * table so that the pages it sees are not reused. A write transaction takes the
 * writer lock (one writer across all processes).
 *
 * @param[out] out  the transaction; end it with nvf_txn_commit() or nvf_txn_abort()
 * @param db        the handle
 * @param flags     NVF_TXN_*
 * A handle has at most one write transaction at a time. With NVF_TXN_WAIT (or
 * NVF_OPEN_LOCK_WAIT) a write begins when the one before it ends, whether it belongs
 * to another thread of this handle or to another handle or process; without, or if
 * the open one belongs to the calling thread (waiting would never end), it fails.
 *
 * @return 0; NVF_ELOCKED if another handle or process is writing (and neither
 *         NVF_TXN_WAIT nor NVF_OPEN_LOCK_WAIT); NVF_EBUSY if this handle's write
 *         transaction is open (see above); NVF_EREADONLY for a write on a read-only
 *         handle; NVF_EREADERS if the reader table is full; -EIO for a write
 *         transaction after an fsync of the file failed on this handle (close and
 *         reopen it: see "Disk faults" at the top).
 */
NVF_API int nvf_txn_begin(nvf_txn **out, nvf_db *db, unsigned flags);

/** Commit and free a transaction. For a write transaction, writes the new pages,
 * syncs, writes the meta record and syncs again (with full durability); on failure
 * nothing of the transaction is visible and the transaction is freed. A failed write
 * leaves the handle usable; a failed fsync leaves it refusing write transactions
 * until it is closed and reopened, and the file then holds this commit only if its
 * meta record reached the disk (see "Disk faults" at the top). Committing a read
 * transaction just ends it. @return 0; NVF_EBADTXN if a call failed the transaction
 * earlier (the message repeats why; nothing is written); NVF_EFULL; -errno (-EIO,
 * -ENOSPC: the message names the file and the write or the fsync that failed). */
NVF_API int nvf_txn_commit(nvf_txn *txn);

/** Abandon and free a transaction; nothing of it becomes visible. Accepts NULL. */
NVF_API void nvf_txn_abort(nvf_txn *txn);

/** The id of the committed state a transaction reads (read transaction) or of the
 * state it will commit (write transaction). Ids grow by one per commit. Returns the
 * id itself (never an error code); 0 for a NULL transaction. */
NVF_API uint64_t nvf_txn_id(const nvf_txn *txn);

/**
 * Whether a write transaction can still be used.
 *
 * Calls refused for their arguments never fail a transaction. A failure in the middle
 * of a change does (an I/O error, no space, damage met, no memory): every later call
 * in it returns NVF_EBADTXN with a message that repeats the first failure's, and only
 * nvf_txn_abort() (or a commit, which then writes nothing) ends it.
 * @return 0 while the transaction is usable; otherwise the code of the failure that
 *         ended its usefulness (e.g. -EIO, NVF_EFULL, NVF_ECORRUPT); NVF_EINVAL for
 *         NULL.
 */
NVF_API int nvf_txn_status(const nvf_txn *txn);

/** @name Collections
 * A database file holds one collection: records of an id, a float32 vector of the
 * collection's dimension and (in a later version) metadata. Dimension, metric, index
 * type and index parameters are fixed at creation and stored in the file. Ids are
 * any uint64_t from 0 to UINT64_MAX - 1 (UINT64_MAX is NVF_NO_ID); nvf_insert()
 * assigns them from 0 up.
 * @{ */

/** Index types. */
#define NVF_INDEX_FLAT 0 /**< exact search by scanning every vector */
#define NVF_INDEX_HNSW 1 /**< approximate search on an HNSW graph kept in the file */

/** Largest dimension. */
#define NVF_MAX_DIM 65536u
/** Largest k of a search. A search's memory is bounded by min(k, records) results
 * (plus ef candidates for a graph walk, NVF_MAX_EF), whatever k the caller gives:
 * see docs/RELIABILITY.md, Limits. */
#define NVF_MAX_K (1u << 24)
/** Largest ef_search and ef_construction. */
#define NVF_MAX_EF 100000u
/** Most queries in one nvf_search_batch() and vectors in one nvf_insert_batch(). */
#define NVF_MAX_BATCH (1u << 24)

/** @name HNSW traversal quantization
 * The graph may keep a 4-bit copy of each vector next to its links and walk on
 * approximate distances from it (8 times fewer bytes per step than float32); the
 * candidates found are then ranked by their exact float32 distances. Results report
 * exact distances either way.
 * @{ */
#define NVF_QUANT_AUTO 0 /**< 4-bit codes for euclidean, inner product, cosine and angular (none
			  *   otherwise), and whether searches walk on them or on float32 is
			  *   measured on the data: see nvf_hnsw_calibration() */
#define NVF_QUANT_NONE 1 /**< walk on float32 distances */
#define NVF_QUANT_SQ4 2  /**< 4-bit scalar quantization, a minimum and a step per vector */
/** @} */

/** @name How searches walk an HNSW graph by default (nvf_calibration.walk)
 * @{ */
#define NVF_WALK_CODES 0 /**< on the 4-bit codes (or on float32 if the graph keeps none) */
#define NVF_WALK_FLOAT 1 /**< on float32: the codes cost recall on this collection's data */
/** @} */

/** Reject nothing: allow NaN and infinite components (default: rejected, NVF_EINVAL). */
#define NVF_CREATE_ALLOW_NONFINITE 0x1u

/** @name Document codecs
 * How a collection stores its records' documents and tags (vectors are never
 * compressed: searches read them in place). A document that does not shrink by 10%
 * is stored as it is.
 * @{ */
#define NVF_CODEC_NONE 0      /**< no compression (default) */
#define NVF_CODEC_LZ4 1       /**< LZ4: fastest */
#define NVF_CODEC_SNAPPY 2    /**< Snappy */
#define NVF_CODEC_ZSTD 3      /**< zstd at doc_codec_level (0 = 3) */
/** zstd with a dictionary trained (ZDICT) on the collection's own documents once it
 * holds enough of them (1,000 documents or 1 MiB), kept in the file; documents written
 * before are recompressed with it. Smallest for many small documents of one shape. */
#define NVF_CODEC_ZSTD_DICT 4
/** @} */

/** The largest document a collection accepts by default (JSON text bytes). */
#define NVF_DOC_MAX_DEFAULT (1u << 20)
/** The largest limit a collection may set. */
#define NVF_DOC_MAX_LIMIT (16u << 20)

#define NVF_CREATE_OPTIONS_VERSION 3
/** Options of nvf_db_create(). Initialise with NVF_CREATE_OPTIONS_INIT, then set dim. */
typedef struct nvf_create_options {
	unsigned version;          /**< NVF_CREATE_OPTIONS_VERSION */
	unsigned flags;            /**< NVF_CREATE_* */
	uint32_t dim;              /**< 1..NVF_MAX_DIM, required */
	int metric;                /**< nvf_metric; default NVF_METRIC_EUCLIDEAN */
	int index;                 /**< NVF_INDEX_*; default NVF_INDEX_FLAT */
	uint32_t hnsw_m;           /**< HNSW links per node (0 = 16) */
	uint32_t hnsw_ef_construction; /**< HNSW build beam width (0 = 200) */
	uint32_t hnsw_ef_search;   /**< default search beam width (0 = 64) */
	uint64_t seed;             /**< HNSW level generator seed (0 = 42) */
	uint32_t page_size;        /**< power of two 512..65536; 0 = 4096 */
	int durability;            /**< NVF_DURABILITY_* of the returned handle */
	uint64_t map_size;         /**< as nvf_open_options.map_size */
	int hnsw_quantize;         /**< NVF_QUANT_* (NVF_QUANT_AUTO) */
	/* Version 2: */
	int doc_codec;             /**< NVF_CODEC_* for documents and tags (NVF_CODEC_NONE) */
	int doc_codec_level;       /**< zstd level (0 = 3; others take none) */
	uint32_t doc_max_bytes;    /**< largest document, JSON bytes (0 = NVF_DOC_MAX_DEFAULT; at most NVF_DOC_MAX_LIMIT) */
	/* Version 3: */
	/** Permission bits of the data file and its lock file, as open(2)'s mode: the
	 * process's umask is taken away (0644 under umask 022 gives rw-r--r--, under 077
	 * rw-------). 0 = 0644 (earlier versions: 0644). Bits beyond 0777 and write
	 * permission for others (o+w) are refused with NVF_EINVAL: any user could then
	 * damage the database or stall its writer. Readers need write access to the lock
	 * file (the reader table), so a group sharing the file needs 0660. */
	unsigned mode;
} nvf_create_options;

#define NVF_CREATE_OPTIONS_INIT                                                                         \
	{ NVF_CREATE_OPTIONS_VERSION, 0u, 0u, NVF_METRIC_EUCLIDEAN, NVF_INDEX_FLAT, 0u, 0u, 0u, 0u, 0u, \
	  NVF_DURABILITY_FULL, 0u, NVF_QUANT_AUTO, NVF_CODEC_NONE, 0, 0u, 0644u }

/**
 * Create a new database file holding an empty collection, and open it.
 * @param[out] out  the handle
 * @param path      must not exist (a dangling symbolic link is refused too)
 * @param opts      dim is required; the rest defaults. The file and its lock file
 *                  get opts->mode under the umask.
 * @return 0; NVF_EEXIST if path exists; NVF_EINVAL for bad options (the message
 *         names the field, or the mode); -errno.
 */
NVF_API int nvf_db_create(nvf_db **out, const char *path, const nvf_create_options *opts);

/** What nvf_db_info() reports. */
typedef struct nvf_info {
	uint32_t dim;
	int metric;
	int index;
	uint32_t hnsw_m, hnsw_ef_construction, hnsw_ef_search;
	uint64_t seed;
	int hnsw_quantize;       /**< NVF_QUANT_NONE or NVF_QUANT_SQ4 (as resolved) */
	unsigned flags;          /**< NVF_CREATE_* given at creation */
	uint64_t count;          /**< live records */
	uint64_t next_id;        /**< the id nvf_insert() assigns next */
	uint64_t rows;           /**< vector slots, live and free */
	uint32_t page_size;
	uint64_t pages;          /**< pages in use */
	uint64_t file_size;      /**< bytes */
	uint64_t txnid;          /**< the committed state described */
	uint64_t snapshots;      /**< named snapshots in the file (nvf_snapshot_list()) */
	int doc_codec;           /**< NVF_CODEC_* */
	int doc_codec_level;
	uint32_t doc_max_bytes;
	uint64_t docs;           /**< records with a document or tags */
	uint64_t doc_bytes;      /**< their stored bytes (after compression, headers included) */
	uint64_t doc_raw_bytes;  /**< the same before compression */
	uint32_t dict_bytes;     /**< NVF_CODEC_ZSTD_DICT: the dictionary's size (0: not trained yet) */
	uint32_t fields;         /**< field indexes */
} nvf_info;

/** Describe the collection as txn sees it (txn may be NULL: the last commit). */
NVF_API int nvf_db_info(nvf_db *db, nvf_txn *txn, nvf_info *out);

#define NVF_INDEX_OPTIONS_VERSION 1
/** Options of nvf_reindex(). Initialise with NVF_INDEX_OPTIONS_INIT. */
typedef struct nvf_index_options {
	unsigned version;          /**< NVF_INDEX_OPTIONS_VERSION */
	int index;                 /**< NVF_INDEX_FLAT or NVF_INDEX_HNSW */
	uint32_t hnsw_m;           /**< 0 = 16 */
	uint32_t hnsw_ef_construction; /**< 0 = 200 */
	uint32_t hnsw_ef_search;   /**< 0 = 64 */
	uint64_t seed;             /**< 0 = 42 */
	int hnsw_quantize;         /**< NVF_QUANT_* (NVF_QUANT_AUTO) */
} nvf_index_options;

#define NVF_INDEX_OPTIONS_INIT { NVF_INDEX_OPTIONS_VERSION, NVF_INDEX_HNSW, 0u, 0u, 0u, 0u, NVF_QUANT_AUTO }

/**
 * Rebuild the index: flat to HNSW, HNSW to flat, or HNSW with new parameters, in one
 * write transaction (readers keep seeing the old index until it commits; a crash
 * leaves the old one). The HNSW build runs in parallel (OpenMP).
 * @return 0; NVF_EINVAL for bad options; NVF_ELOCKED; -errno.
 */
NVF_API int nvf_reindex(nvf_db *db, const nvf_index_options *opts);

#define NVF_CALIBRATION_VERSION 1
/**
 * What NVF_QUANT_AUTO chose for an HNSW collection. The 4-bit walk is fast, but how
 * much recall it keeps depends on the data (on Fashion-MNIST's pixels nearly all; on
 * 96-dimensional float embeddings it can lose a quarter of the true neighbours at the
 * default ef). So whenever a commit has doubled the graph since the last measure (from
 * 2,000 nodes on), the library samples 64 of its vectors as queries, finds their
 * exact 10 nearest others, and measures recall@10 at the default ef walking on the
 * codes and on float32. If the codes lose more than half a point, searches walk on
 * float32 and the file drops the codes (nvf_info.hnsw_quantize then says
 * NVF_QUANT_NONE; 12 + dim / 2 bytes a record, 9% of a 1M x 96 file); else it keeps
 * them, and they are measured again at the next doubling. Codes are written to the
 * file only once a measure keeps them: before the first measure searches walk on
 * float32 (nvf_search_options.full_precision forces float32 either way). The measure
 * costs 64 exact queries over the collection, about 2% of a build.
 */
typedef struct nvf_calibration {
	unsigned version;     /**< NVF_CALIBRATION_VERSION */
	int automatic;        /**< 1 if the collection has NVF_QUANT_AUTO (created or reindexed so), so the walk is measured (else fixed by its quantize option) */
	int walk;             /**< NVF_WALK_*: how searches walk by default now */
	uint64_t nodes;       /**< graph nodes at the last measure (0: none yet) */
	double recall_codes;  /**< recall@10 at the default ef walking on the codes, at that measure */
	double recall_float;  /**< the same on float32 */
} nvf_calibration;

#define NVF_CALIBRATION_INIT { NVF_CALIBRATION_VERSION, 0, 0, 0u, 0.0, 0.0 }

/** Describe the calibration (txn may be NULL: the last commit). @return 0;
 * NVF_EINVAL for a flat collection. */
NVF_API int nvf_hnsw_calibration(nvf_db *db, nvf_txn *txn, nvf_calibration *out);

/** @} */

/** @name Records
 * Every function takes the handle and a transaction. With txn == NULL a write runs
 * in its own transaction and commits (or fails with nothing written), and a read
 * sees the last commit. A write through a read transaction or a read-only handle
 * fails with NVF_EREADONLY. Vectors are checked before anything is written: their
 * length must be the collection's dimension (NVF_EINVAL, "vector has 3 components,
 * the collection has 128"), their components finite unless the collection allows
 * otherwise, and non-negative under NVF_METRIC_JACCARD.
 * @{ */

/** Insert a vector under a new id (one past the largest id ever used; 0 in an empty
 * collection), returned in *out_id (which may be NULL). */
NVF_API int nvf_insert(nvf_db *db, nvf_txn *txn, const float *vec, size_t dim, uint64_t *out_id);

/** Insert under a given id (0 to UINT64_MAX - 1; NVF_EINVAL for UINT64_MAX).
 * @return NVF_EEXIST if the id exists (nothing written). */
NVF_API int nvf_add(nvf_db *db, nvf_txn *txn, uint64_t id, const float *vec, size_t dim);

/** Insert, or replace the vector of an existing id. */
NVF_API int nvf_upsert(nvf_db *db, nvf_txn *txn, uint64_t id, const float *vec, size_t dim);

/** Replace the vector of an existing id. @return NVF_ENOTFOUND if it does not exist. */
NVF_API int nvf_update(nvf_db *db, nvf_txn *txn, uint64_t id, const float *vec, size_t dim);

/**
 * Insert n vectors (row-major, n * dim floats) in one call and one transaction.
 * @param ids      n ids to add (NVF_EEXIST if any exists or repeats), or NULL to assign new ones
 * @param out_ids  if not NULL, receives the n ids
 * Every vector is validated first; on any error nothing is inserted.
 */
NVF_API int nvf_insert_batch(nvf_db *db, nvf_txn *txn, const float *vecs, size_t n, size_t dim,
			     const uint64_t *ids, uint64_t *out_ids);

/** Copy the vector of id into out (dim floats). @return NVF_ENOTFOUND. */
NVF_API int nvf_get(nvf_db *db, nvf_txn *txn, uint64_t id, float *out, size_t dim);

/** Delete a record: it leaves every result at once; its space is reused. @return NVF_ENOTFOUND. */
NVF_API int nvf_delete(nvf_db *db, nvf_txn *txn, uint64_t id);

/** Number of live records. */
NVF_API int nvf_count(nvf_db *db, nvf_txn *txn, uint64_t *out);

/** Whether a record exists. Unlike the other calls it does not return 0 on success:
 * @return 1 if id exists, 0 if not, or a negative error code. */
NVF_API int nvf_contains(nvf_db *db, nvf_txn *txn, uint64_t id);

/** @} */

/** @name Metadata
 * Beside its vector every record has a creation and an update time (UTC,
 * microseconds), a version (1 at creation, +1 in every transaction that changes its
 * vector, its document or its tags, however many calls it makes), a set of tags
 * (strings), and optionally one document: a JSON object of null, booleans, int64,
 * float64, strings, arrays and nested objects. Documents are stored in a compact
 * binary form (docs/FORMAT.md) that filters read in place, compressed with the
 * collection's codec; they come back as JSON with their keys sorted. Changing a
 * document never rewrites the vector or the graph; changing the vector keeps the
 * document; deleting a record deletes its document, tags and index entries in the
 * same transaction.
 *
 * Documents are refused (NVF_EINVAL, nothing changed) if they are not JSON objects,
 * nest deeper than 32 levels, are longer than the collection's doc_max_bytes, repeat
 * a key, hold invalid UTF-8, or hold integers beyond int64.
 * @{ */

/** Set (replace) the document of record id; json NULL or "null" removes it.
 * @return 0; NVF_ENOTFOUND (no record); NVF_EINVAL (the document, with the reason). */
NVF_API int nvf_meta_set(nvf_db *db, nvf_txn *txn, uint64_t id, const char *json);

/** Merge a JSON merge patch (RFC 7386) into the document of record id: keys set to
 * null are removed, objects merge recursively, everything else replaces. A record
 * without a document starts from {}. The patch must be an object. */
NVF_API int nvf_meta_patch(nvf_db *db, nvf_txn *txn, uint64_t id, const char *json_patch);

/** The document of record id as JSON text in *out (free it with nvf_free()); "null"
 * if the record has none. @return 0 or NVF_ENOTFOUND. */
NVF_API int nvf_meta_get(nvf_db *db, nvf_txn *txn, uint64_t id, char **out);

/** Add a tag (1 to 1024 bytes of UTF-8) to record id; adding a tag it has changes
 * nothing. At most 1024 tags per record. */
NVF_API int nvf_tag_add(nvf_db *db, nvf_txn *txn, uint64_t id, const char *tag);

/** Remove a tag from record id; removing a tag it lacks changes nothing. */
NVF_API int nvf_tag_remove(nvf_db *db, nvf_txn *txn, uint64_t id, const char *tag);

/** Replace the tags of record id with n tags (a set: repeats count once; n may be 0).
 * Every tag is checked before anything changes. */
NVF_API int nvf_tags_set(nvf_db *db, nvf_txn *txn, uint64_t id, const char *const *tags, size_t n);

/** What nvf_record_info() reports. */
typedef struct nvf_record_info {
	uint64_t id;
	int64_t created_us;  /**< creation, UTC microseconds since 1970 */
	int64_t updated_us;  /**< last change of vector, document or tags */
	uint64_t version;    /**< 1 at creation, +1 per transaction that changed the record */
	uint32_t ntags;
	int has_doc;         /**< 1 if the record has a document */
	uint32_t doc_bytes;  /**< its stored size, compressed, with the tags (0 if none) */
	uint32_t raw_bytes;  /**< the same before compression */
} nvf_record_info;

/** Describe record id. @return 0 or NVF_ENOTFOUND. */
NVF_API int nvf_record_info_get(nvf_db *db, nvf_txn *txn, uint64_t id, nvf_record_info *out);

/** @name nvf_record_json() flags
 * @{ */
#define NVF_RECORD_VECTOR 0x1u /**< include "vector" */
/** @} */

/**
 * The whole record as one JSON object, as `nvf-tool meta get --record` and export
 * print it: {"id", "version", "created_at", "updated_at" (microseconds), "tags",
 * "meta" (the document or null)} and, with NVF_RECORD_VECTOR, "vector". *out is
 * freed with nvf_free(). @return 0 or NVF_ENOTFOUND.
 */
NVF_API int nvf_record_json(nvf_db *db, nvf_txn *txn, uint64_t id, unsigned flags, char **out);

/**
 * Train a new zstd dictionary on the collection's documents (NVF_CODEC_ZSTD_DICT)
 * and recompress every document with it, in txn. The first one is trained on its
 * own once there are enough documents; this retrains (after the documents have
 * changed a lot, say).
 * @param max_bytes  the dictionary's size limit, 1 KiB to 16 MiB; 0: a 32nd of the
 *                   documents sampled (at most 8 MiB of them), 32 to 256 KiB
 * @return 0; NVF_EINVAL if the collection's codec is not zstd-dict, or if training
 *         fails (too few or too short documents: the message says so); nothing is
 *         changed then.
 */
NVF_API int nvf_doc_dict_train(nvf_db *db, nvf_txn *txn, size_t max_bytes);

/** @} */

/** @name Filters
 * A filter selects records by their metadata, in the language docs/FILTER.md
 * defines ("price < 50 AND tags CONTAINS 'new'"). It compiles once, independently of
 * any database, into an immutable program that any number of threads may share.
 * @{ */

/** Opaque compiled filter. */
typedef struct nvf_filter nvf_filter;

/** Compile a filter. @return 0; NVF_EINVAL with "filter: column N: expected ..." for a
 * syntax error, an out-of-range literal, or a filter beyond the limits FILTER.md
 * lists. */
NVF_API int nvf_filter_compile(nvf_filter **out, const char *expr);

/** Free a compiled filter. Accepts NULL. */
NVF_API void nvf_filter_free(nvf_filter *f);

/** Whether record id matches. @return 1, 0, or a negative error (NVF_ENOTFOUND: no
 * such record). */
NVF_API int nvf_filter_match(nvf_db *db, nvf_txn *txn, const nvf_filter *f, uint64_t id);

/** Every id that matches, in ascending order, in *ids (free with nvf_free()), *n of
 * them. Uses field indexes where they answer the filter. */
NVF_API int nvf_filter_ids(nvf_db *db, nvf_txn *txn, const nvf_filter *f, uint64_t **ids, size_t *n);

/** @} */

/** @name Field indexes
 * An index on a path lets filters on it be answered without reading documents, and
 * lets the search planner count the records a filter passes. An index is built over
 * the existing records when it is added and kept up to date by every later write, in
 * the same transactions, inside the file. Results are the same with or without one.
 * @{ */
#define NVF_FIELD_STRING 1    /**< string values: =, !=, IN */
#define NVF_FIELD_INT 2       /**< integers (and integral floats): comparisons, IN, BETWEEN */
#define NVF_FIELD_FLOAT 3     /**< numbers: comparisons, IN, BETWEEN */
#define NVF_FIELD_BOOL 4      /**< booleans: = */
#define NVF_FIELD_TIMESTAMP 5 /**< ISO-8601 strings, as instants: comparisons, BETWEEN */
#define NVF_FIELD_TAGS 6      /**< arrays of strings (or the record's tags): CONTAINS, ANY, ALL */

/** "string", "int", "float", "bool", "timestamp", "tags"; NULL if out of range. */
NVF_API const char *nvf_field_type_name(int type);
/** Parse a type name. @return the NVF_FIELD_* or NVF_EINVAL. */
NVF_API int nvf_field_type_parse(const char *name);

/** Add an index on path (FILTER.md's path syntax: "price", "a.b", "$.id", "tags"),
 * built over the existing records in txn. @return 0; NVF_EEXIST (the path has one);
 * NVF_EINVAL (bad path or type). */
NVF_API int nvf_field_add(nvf_db *db, nvf_txn *txn, const char *path, int type);

/** Drop the index on path (its pages are freed). @return 0 or NVF_ENOTFOUND. */
NVF_API int nvf_field_drop(nvf_db *db, nvf_txn *txn, const char *path);

/** One index, as nvf_field_list() reports it. */
typedef struct nvf_field_info {
	char path[256];
	int type;             /**< NVF_FIELD_* */
	uint64_t keys;        /**< distinct values */
	uint64_t entries;     /**< (value, record) pairs */
	uint64_t unindexed;   /**< records whose value at the path the index cannot hold
			       * (another type): filters read their documents */
} nvf_field_info;

/** The collection's indexes in *out (free with nvf_free()), *n of them. */
NVF_API int nvf_field_list(nvf_db *db, nvf_txn *txn, nvf_field_info **out, size_t *n);

/** @} */

/** @name Search
 * Results are (id, distance) pairs, nearest first (ascending distance, ties by
 * ascending id). Distances are as nvf_distance() defines them: for similarity
 * metrics a smaller value means more similar (inner product reports -(a.b), cosine
 * 1 - cos). k must be at least 1 (NVF_EINVAL otherwise); a search returns
 * min(k, records) results, so a k past the count returns every record, exactly.
 *
 * Flat collections are searched exactly. HNSW collections are searched on the graph
 * (approximate: recall rises with ef_search) unless opts->exact. Range search is
 * always exact.
 *
 * **Filters** (opts->where, a compiled nvf_filter, and/or the callback opts->filter:
 * a record must pass both). The planner estimates how many records pass, from field
 * indexes (exactly, when they answer the whole filter) or from a sample, and picks:
 * an exact scan of the passing records when there are few; a graph walk that admits
 * only passing records when many pass; in between a walk that also expands through
 * the neighbours of non-passing nodes (ACORN-1), which keeps the passing part of the
 * graph connected. A walk that has cost more than the scan would have switches to the
 * scan, and a walk that found fewer than k results is completed by the scan: a search
 * returns min(k, passing records) results, always. opts->explain reports the choice.
 * @{ */

/** The id of an empty result slot (a filtered batch search with fewer matches than k). */
#define NVF_NO_ID UINT64_MAX

/** One search result. */
typedef struct nvf_result {
	uint64_t id;
	float distance;
} nvf_result;

/** What a search did, filled in when nvf_search_options.explain points at one
 * (initialise with NVF_EXPLAIN_INIT). A batch search sums over its queries. */
typedef struct nvf_explain {
	unsigned version;         /**< NVF_EXPLAIN_VERSION */
	const char *plan;         /**< "exact", "graph", "graph-filtered", "graph-acorn",
				   * "exact-filtered" (a scan of the passing records) */
	const char *estimate_from;/**< "none" (no filter), "index" (exact count), "index+sample", "sample" */
	uint64_t estimate;        /**< records estimated to pass (all, without a filter) */
	uint64_t records;         /**< records in the collection */
	uint64_t visited;         /**< graph nodes expanded */
	uint64_t distances;       /**< distances computed (graph walk and scan) */
	uint64_t filter_evals;    /**< documents read to evaluate the filter */
	uint32_t fallbacks;       /**< walks completed or replaced by the exact scan */
	char text[512];           /**< all of the above in one line of words */
} nvf_explain;

/** @name Plans of a filtered search (nvf_search_options.plan)
 * The planner chooses by its cost estimates; a caller who knows better (a filter that
 * picks records far from the queries favours a scan) can insist. Every plan returns
 * min(k, passing records) results.
 * @{ */
#define NVF_PLAN_AUTO 0  /**< the planner decides (default) */
#define NVF_PLAN_EXACT 1 /**< measure every passing record exactly */
#define NVF_PLAN_SCAN 2  /**< scan the passing records on the graph's 4-bit codes, re-rank exactly (HNSW; else as EXACT) */
#define NVF_PLAN_WALK 3  /**< walk the graph through every node, admitting passing ones (HNSW only) */
#define NVF_PLAN_ACORN 4 /**< walk only through passing nodes, ACORN-1's two-hop expansion (HNSW only) */
/** @} */

#define NVF_EXPLAIN_VERSION 1
#define NVF_EXPLAIN_INIT { NVF_EXPLAIN_VERSION, NULL, NULL, 0u, 0u, 0u, 0u, 0u, 0u, "" }

#define NVF_SEARCH_OPTIONS_VERSION 2
/** Options of the search functions. Initialise with NVF_SEARCH_OPTIONS_INIT. */
typedef struct nvf_search_options {
	unsigned version;   /**< NVF_SEARCH_OPTIONS_VERSION */
	uint32_t ef_search; /**< HNSW beam width, 0 = the collection's default (exact
			     * searches, flat or with exact = 1, have no beam) */
	int exact;          /**< 1: scan every vector even if there is an index */
	int threads;        /**< search threads, 0 = all cores */
	/** Only records for which filter(id, filter_ctx) returns non-zero are results;
	 * NULL = all. Fewer than k results come back only if fewer than k records
	 * match. Called concurrently from several threads in batch searches. */
	int (*filter)(uint64_t id, void *filter_ctx);
	void *filter_ctx;
	/** 1: walk the HNSW graph on the float32 vectors even where it keeps 4-bit
	 * copies (NVF_QUANT_SQ4): higher recall at a small ef_search, fewer queries per
	 * second. Results are measured exactly either way. */
	int full_precision;
	/* Version 2: */
	/** Only records that match this compiled filter (docs/FILTER.md); NULL = all. */
	const nvf_filter *where;
	/** If not NULL, filled in with what the search did. */
	nvf_explain *explain;
	/** NVF_PLAN_*: how a filtered search runs (NVF_PLAN_AUTO: the planner decides). */
	int plan;
} nvf_search_options;

#define NVF_SEARCH_OPTIONS_INIT { NVF_SEARCH_OPTIONS_VERSION, 0u, 0, 0, NULL, NULL, 0, NULL, NULL, NVF_PLAN_AUTO }

/**
 * k nearest neighbours of one query.
 * @param opts  NULL for defaults
 * @param out   room for k results
 * @param[out] nout  results written (k)
 */
NVF_API int nvf_search(nvf_db *db, nvf_txn *txn, const float *query, size_t dim, size_t k,
		       const nvf_search_options *opts, nvf_result *out, size_t *nout);

/**
 * k nearest neighbours of each of nq queries (row-major), in parallel across
 * queries and blocks of vectors. out holds nq * k results, query i's at out + i * k;
 * slots past a query's last result (only with a filter) hold NVF_NO_ID at +infinity.
 */
NVF_API int nvf_search_batch(nvf_db *db, nvf_txn *txn, const float *queries, size_t nq, size_t dim, size_t k,
			     const nvf_search_options *opts, nvf_result *out);

/**
 * Every record within distance radius of the query (distance <= radius), nearest
 * first. *out is allocated by the library; free it with nvf_free().
 * @return NVF_EINVAL for a negative or NaN radius.
 */
NVF_API int nvf_range_search(nvf_db *db, nvf_txn *txn, const float *query, size_t dim, float radius,
			     const nvf_search_options *opts, nvf_result **out, size_t *nout);

/** Free memory the library returned. Accepts NULL. */
NVF_API void nvf_free(void *p);

/** @} */

/** @name Named snapshots
 * A snapshot keeps a committed state readable under a name, at no copying cost: its
 * record in the file pins that state's pages, which copy-on-write never overwrites.
 * Creating, deleting and restoring one take time independent of the file's size
 * (restore and delete also do free-space work proportional to what changed since
 * the snapshot). A snapshot holds back only the pages it can see and nothing else.
 * Names are 1 to 255 bytes, no '/' nor control bytes, not "." or "..".
 * @{ */

/** One snapshot, as nvf_snapshot_list() reports it. */
typedef struct nvf_snapshot_info {
	const char *name;     /**< its name (in the list's allocation) */
	const char *doc;      /**< the JSON object describing it, or NULL */
	uint64_t txnid;       /**< the committed state it keeps */
	int64_t created_us;   /**< when it was made, UTC microseconds */
	uint64_t count;       /**< records in that state */
	uint64_t bytes_only;  /**< bytes of pages no other state (current, snapshot,
			       * reader) can see: what deleting it frees */
} nvf_snapshot_info;

/**
 * Name the last committed state (in txn: the state txn began from; its own changes
 * are not in it until it commits).
 * @param txn   a write transaction, or NULL for one of its own
 * @param name  NULL: a generated one ("snapshot-N"), returned in *name_out
 * @param doc   NULL, or a JSON object describing it (at most 16 KiB of text)
 * @param[out] name_out  if not NULL, the name (free with nvf_free())
 * @return 0; NVF_EEXIST (the name is taken); NVF_EINVAL (bad name or document);
 *         NVF_EREADONLY (a read-only handle or transaction).
 */
NVF_API int nvf_snapshot_create(nvf_db *db, nvf_txn *txn, const char *name, const char *doc, char **name_out);

/** Delete a snapshot: the pages only it kept become free once no reader sees them.
 * @return 0 or NVF_ENOTFOUND. */
NVF_API int nvf_snapshot_delete(nvf_db *db, nvf_txn *txn, const char *name);

/** The snapshots, oldest first, in *out (one allocation: free with nvf_free()). A
 * snapshot another handle deletes while the list is made is left out. */
NVF_API int nvf_snapshot_list(nvf_db *db, nvf_txn *txn, nvf_snapshot_info **out, size_t *n);

/** A read transaction on a snapshot: every read and search call works on it as on
 * the state it keeps. @return 0 or NVF_ENOTFOUND. */
NVF_API int nvf_txn_begin_snapshot(nvf_txn **out, nvf_db *db, const char *name);

/**
 * Make a snapshot's state the current one, as one new commit (in a write transaction
 * of its own; the snapshot stays). Readers of the state it replaces keep reading it.
 * @return 0; NVF_ENOTFOUND; NVF_EREADONLY; NVF_EBUSY (another write transaction).
 */
NVF_API int nvf_snapshot_restore(nvf_db *db, const char *name);

/** @name nvf_diff_entry.what
 * @{ */
#define NVF_DIFF_ADDED 0x1u   /**< in `to`, not in `from` */
#define NVF_DIFF_REMOVED 0x2u /**< in `from`, not in `to` */
#define NVF_DIFF_VECTOR 0x4u  /**< in both, another vector */
#define NVF_DIFF_DOC 0x8u     /**< in both, another document or other tags */
/** @} */

/** One id that differs between two states. */
typedef struct nvf_diff_entry {
	uint64_t id;
	unsigned what; /**< NVF_DIFF_ADDED, _REMOVED, or _VECTOR and/or _DOC */
} nvf_diff_entry;

/**
 * The ids that differ between two committed states, ascending, in *out (free with
 * nvf_free()). Time is proportional to what changed between them, not to their size:
 * the pages both states share are skipped.
 * @param from, to  read transactions of this handle: nvf_txn_begin(NVF_TXN_RDONLY)
 *                  for the current state, nvf_txn_begin_snapshot() for a snapshot
 * @return 0; NVF_EINVAL (a write transaction, another handle's).
 */
NVF_API int nvf_diff(nvf_db *db, nvf_txn *from, nvf_txn *to, nvf_diff_entry **out, size_t *n);

/** @} */

/** @name Backup and compact
 * Both copy a committed state with every named snapshot into a new file that holds
 * only the pages those states reach (pages the states share stay shared), verifying
 * every checksum on the way: a damaged file fails the copy with NVF_ECORRUPT and
 * nothing is written under the final name. The new file is written beside the
 * destination under a temporary name, synced, then put in place in one step, so a
 * crash at any point leaves the old file whole and no half-written one.
 * @{ */

/**
 * Hot backup: the last committed state (and the snapshots) into a new file at dest,
 * compacted. Writers keep committing meanwhile (a read transaction pins the state);
 * a read-only handle can back up. The backup gets the data file's permission bits
 * (never o+w) under the umask, and belongs to the caller. The copy is written as
 * DEST.backup-PID, held with flock(2) until it is linked at dest; copies of backups
 * killed meanwhile (no one holds their flock) are removed first, with their lock
 * files, and copies of live backups to the same dest are left alone.
 * @return 0; NVF_EEXIST (dest exists: a backup never overwrites); -errno (e.g.
 *         -ENOSPC, -ENOENT for a missing directory).
 */
NVF_API int nvf_db_backup(nvf_db *db, const char *dest);

/**
 * Compact in place: the file is rewritten without its free and pending pages and the
 * copy renamed over it, with the file's permission bits (o+w dropped) and, where the
 * caller may set them (root), its owner and group. The copies that compactions
 * killed before their rename left beside the file (PATH.compact-PID and its lock
 * file) are removed first: the write lock says none of them is in use. Without named snapshots the records are also laid out again:
 * an HNSW collection's in a locality order of its graph (a first query in a new
 * process touches few pages), a flat one's packed into the rows deletes freed; the
 * rewritten state is held in memory until copied (about the file's size). Holds the write lock throughout (other writers wait or get
 * NVF_ELOCKED). Afterwards every handle opened on the file before (this one too, and
 * those of other processes) answers its next transaction with NVF_ESTALE: close it
 * and open the path again. Transactions open during the compaction finish on the old
 * file, unaffected.
 * @return 0; NVF_EREADONLY; NVF_EBUSY (this handle's write transaction is open);
 *         -errno (e.g. -ENOSPC: the old file is untouched).
 */
NVF_API int nvf_db_compact(nvf_db *db);

/** @} */

/** @name Statistics
 * @{ */
#define NVF_STATS_VERSION 1
#define NVF_STATS_DEGREES 65 /**< buckets of nvf_stats.hnsw_degree0 */
/** What nvf_db_stats() reports. Page counts are the current state's live pages by
 * what they hold, then the free and pending ones: together they add up to
 * pages_total. */
typedef struct nvf_stats {
	unsigned version;          /**< in: NVF_STATS_VERSION */
	uint32_t page_size;
	uint64_t txnid;            /**< the state described */
	uint64_t records;
	uint64_t pages_total;      /**< the file's pages in use (high-water mark) */
	uint64_t pages_header;     /**< pages 0 and 1: header and meta records */
	uint64_t pages_system;     /**< catalog, free-space and snapshot trees, configuration */
	uint64_t pages_vectors;    /**< vectors and their norms */
	uint64_t pages_ids;        /**< id map, row ids, free rows */
	uint64_t pages_graph;      /**< HNSW links and the 4-bit copies beside them */
	uint64_t pages_documents;  /**< record metadata, documents, tags, dictionaries */
	uint64_t pages_fields;     /**< field indexes */
	uint64_t pages_free;       /**< reusable now */
	uint64_t pages_pending;    /**< freed, still visible to a reader or a snapshot */
	uint64_t free_runs;        /**< FREE runs: many small ones mean fragmentation */
	uint64_t largest_free_run; /**< pages */
	uint32_t hnsw_levels;      /**< 0 for a flat collection or an empty graph */
	uint64_t hnsw_nodes_per_level[24]; /**< nodes whose top level is l */
	uint64_t hnsw_degree0[NVF_STATS_DEGREES]; /**< level-0 nodes by links (last: that many or more) */
} nvf_stats;

/** Describe the last committed state's pages and graph (reads every tree page). */
NVF_API int nvf_db_stats(nvf_db *db, nvf_stats *out);
/** @} */

/** Result of nvf_check(). The snapshot fields count named snapshots (pinned
 * committed states, nvf_snapshot_create()); in files without any they are 0. */
typedef struct nvf_check_report {
	uint64_t txnid;        /**< the committed state checked */
	uint64_t pages_total;  /**< pages in use by the file (high-water mark) */
	uint64_t pages_live;   /**< reachable from the current state */
	uint64_t pages_free;   /**< reusable now */
	uint64_t pages_pending;/**< freed but still visible to a reader or snapshot */
	uint64_t pages_snapshot_only; /**< reachable only from named snapshots */
	uint64_t trees;        /**< B+trees walked */
	uint64_t entries;      /**< entries in them */
	uint64_t snapshots;    /**< named snapshots (verified like the current state) */
	uint64_t first_bad_page; /**< page of the first problem, or UINT64_MAX */
	char problem[256];     /**< the first problem in words, or "" */
	uint32_t warnings;     /**< findings that are not damage, e.g. the older meta record torn by a crash */
	char warning[256];     /**< the first warning in words, or "" */
} nvf_check_report;

/**
 * Verify every checksum and structural invariant of the last committed state and
 * of every named snapshot: the file header copies, the meta record in use, page
 * checksums and identities, tree
 * order and depth, extent checksums, reachability, no page used twice, the free
 * lists disjoint from live pages and every page accounted for. An invalid older
 * meta record is a warning, not damage: a crash during a commit leaves it torn and
 * the next read-write open rewrites it.
 *
 * @param db       the handle
 * @param[out] report  filled in (may be NULL)
 * @return 0 if the file is sound; NVF_ECORRUPT at the first problem, with its page
 *         in the report and in nvf_errmsg(); other codes for I/O errors.
 */
NVF_API int nvf_check(nvf_db *db, nvf_check_report *report);

/** @name Distance metrics
 * Every search reports a distance, smaller is nearer; docs/METRICS.md defines each
 * precisely, zero vectors included.
 * @{ */
typedef enum nvf_metric {
	NVF_METRIC_EUCLIDEAN = 0, /**< sqrt(sum (a-b)^2): results report the true L2 distance */
	NVF_METRIC_INNER_PRODUCT = 1, /**< -(a . b): the negated inner product */
	NVF_METRIC_COSINE = 2,    /**< 1 - cos(a, b), in [0, 2]; 1 if either vector is zero */
	NVF_METRIC_ANGULAR = 3,   /**< arccos(cos(a, b)) / pi, in [0, 1]; 0.5 if either is zero */
	NVF_METRIC_MANHATTAN = 4, /**< sum |a-b| (L1) */
	NVF_METRIC_CHEBYSHEV = 5, /**< max |a-b| (L-infinity) */
	NVF_METRIC_JACCARD = 6,   /**< 1 - sum min(a,b) / sum max(a,b), for non-negative vectors; 0 if both are zero */
	NVF_METRIC_HAMMING = 7,   /**< number of components where a and b differ */
} nvf_metric;
#define NVF_METRIC_COUNT 8
/** @} */

/** The name of a metric ("euclidean", "inner_product", "cosine", "angular",
 * "manhattan", "chebyshev", "jaccard", "hamming"), or NULL if out of range. */
NVF_API const char *nvf_metric_name(int metric);

/** Parse a metric name (the names above, case-insensitive, and the aliases "l2",
 * "ip", "dot", "l1", "linf"). @return the metric (0 or more: an nvf_metric), or
 * NVF_EINVAL for an unknown name. */
NVF_API int nvf_metric_parse(const char *name);

/**
 * Distance between two vectors under a metric, as search results report it.
 * @param metric  an nvf_metric
 * @param a,b     n floats each (any alignment)
 * @param n       dimension, at least 1
 * @param[out] out  the distance
 * @return 0, or NVF_EINVAL for an unknown metric, n == 0, or negative components
 *         under NVF_METRIC_JACCARD.
 */
NVF_API int nvf_distance(int metric, const float *a, const float *b, size_t n, float *out);

/** Name of the SIMD kernels chosen at run time: "avx512", "avx2" or "scalar".
 * Set the environment variable NVF_SIMD=scalar (or avx2) before the first call to
 * force a lower level. */
NVF_API const char *nvf_simd_level(void);

/** @name Vector utilities
 * Element-wise operations on float arrays of length n (n >= 1). Output may alias
 * an input. These back the Python `Vector` class.
 * @{ */
NVF_API void nvf_vec_zeros(float *out, size_t n);
NVF_API void nvf_vec_ones(float *out, size_t n);
/** Uniform in [lo, hi). *state is a caller-owned PRNG state, advanced. */
NVF_API int nvf_vec_random(float *out, size_t n, float lo, float hi, uint64_t *state);
/** Uniform on the unit sphere. */
NVF_API int nvf_vec_unit_random(float *out, size_t n, uint64_t *state);
NVF_API void nvf_vec_add(float *out, const float *a, const float *b, size_t n);
NVF_API void nvf_vec_sub(float *out, const float *a, const float *b, size_t n);
NVF_API void nvf_vec_mul(float *out, const float *a, const float *b, size_t n);
/** @return 0, or NVF_EINVAL (out untouched) if some b[i] is zero. */
NVF_API int nvf_vec_div(float *out, const float *a, const float *b, size_t n);
NVF_API void nvf_vec_add_scalar(float *out, const float *a, float s, size_t n);
NVF_API void nvf_vec_sub_scalar(float *out, const float *a, float s, size_t n);
NVF_API void nvf_vec_mul_scalar(float *out, const float *a, float s, size_t n);
/** @return 0, or NVF_EINVAL (out untouched) if s is zero. */
NVF_API int nvf_vec_div_scalar(float *out, const float *a, float s, size_t n);
NVF_API float nvf_vec_dot(const float *a, const float *b, size_t n);
NVF_API float nvf_vec_norm(const float *a, size_t n);
NVF_API float nvf_vec_l1_norm(const float *a, size_t n);
NVF_API float nvf_vec_linf_norm(const float *a, size_t n);
/** Scale to unit L2 norm. @return 0, or NVF_EINVAL (out untouched) for a zero vector. */
NVF_API int nvf_vec_normalize(float *out, const float *a, size_t n);
NVF_API float nvf_vec_mean(const float *a, size_t n);
/** Population standard deviation. */
NVF_API float nvf_vec_std(const float *a, size_t n);
NVF_API float nvf_vec_min(const float *a, size_t n);
NVF_API float nvf_vec_max(const float *a, size_t n);
/** @} */

#ifdef __cplusplus
}
#endif
#endif /* NVF_H */
