/* nusterfs: a .nvf database served as a directory (docs/NUSTERFS.md).
 *
 * The daemon's shared state and the seams between its files:
 *   main.c      options, the stale-mount check, the session and its loop
 *   db.c        the database handle all threads share, reopened after a compaction
 *   fs.c        the low-level operations: thin handlers over the layout
 *   tree.c      the layout: inode numbers, names, attributes, directory listings
 *   records.c   /vectors/<id> and /meta/<id>.json, read and written
 *   knn.c       /knn/<k>/<id>.json and /info: files whose text is made on open
 *   memdir.c    the in-memory files of /queries and /ingest
 *   queries.c   a query file's search and its result files in /queries
 *   query.c     a query file's parse and search, without the mount (query.h)
 *   ingest.c    an /ingest file imported in one transaction
 *   snapshots.c snapshot names to inode slots, mkdir and rmdir
 *   watch.c     the thread that follows other writers' commits
 *   errlog.c    /errors
 * Only nvf.h of libnvf is used. */
#ifndef NUSTERFS_H
#define NUSTERFS_H

#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 12)
#include <fuse_lowlevel.h>
#include <nvf.h>
#include "importer.h"
#include "query.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

/* ---- options and state ---- */

struct nfs_options {
	const char *db_path;   /* absolute */
	const char *mountpoint;
	int read_only;         /* -o ro: the database is opened read-only */
	unsigned k;            /* -o k=N: k of binary queries without a sidecar (10) */
	size_t max_query;      /* -o max_query=BYTES: largest query file (64 MiB) */
	unsigned max_results;  /* -o max_results=N: query results kept (1000) */
	double timeout;        /* -o cache_timeout=SECS: kernel attribute/entry cache (1.0) */
	unsigned poll_ms;      /* -o poll_ms=N: how often the watcher looks at the txnid (100) */
	const char *spool;     /* -o spool=DIR: where /ingest files wait for their close ($TMPDIR or /tmp) */
};

struct nfs {
	struct nfs_options o;
	struct fuse_session *se;
	/* The database: handlers hold the read side while they use db; a reopen after
	 * NVF_ESTALE takes the write side, so no transaction of the old handle is open
	 * when it closes. */
	pthread_rwlock_t dblock;
	nvf_db *db;
	uint64_t generation;   /* bumped at every reopen */
	nvf_info info;         /* dim, metric...: fixed for a file's life */
	struct stat dbst;      /* the database file's owner and mode (permissions) */
	bool db_gone;          /* the file was deleted under the mount: writes fail EIO */
};

extern struct nfs *nfs_g;

/* ---- db.c ---- */

int nfs_db_open(struct nfs *fs);
void nfs_db_close(struct nfs *fs);
/* Take the handle for one operation (read side), and give it back. */
nvf_db *nfs_db_get(struct nfs *fs, uint64_t *gen);
void nfs_db_put(struct nfs *fs);
/* After NVF_ESTALE: reopen the path unless another thread already did since gen.
 * Returns 0 when a retry makes sense. */
int nfs_db_reopen(struct nfs *fs, uint64_t gen);
/* A read transaction on the state a snapshot slot shows (0: the current state). */
int nfs_view_begin(struct nfs *fs, nvf_db *db, unsigned slot, nvf_txn **out);
/* libnvf code -> errno for a reply. */
int nfs_errno(int rc);
/* The library's words for a failure: import_why() (tools/importer.h). */

/* ---- errlog.c ---- */

__attribute__((format(printf, 1, 2))) void nfs_log(const char *fmt, ...);
/* The log's text (a copy to free) and its length. */
char *nfs_log_text(size_t *len);

/* ---- tree.c: inodes and the layout ---- */

enum nfs_kind {
	K_ROOT = 1,  /* FUSE_ROOT_ID for slot 0; a snapshot's root otherwise */
	K_INFO,
	K_ERRORS,
	K_VECDIR,
	K_METADIR,
	K_KNNDIR,
	K_INGESTDIR,
	K_QUERYDIR,
	K_SNAPDIR,   /* /.snapshots */
	K_VEC,       /* /vectors/<id> */
	K_META,      /* /meta/<id>.json */
	K_KNNK,      /* /knn/<k> */
	K_KNN,       /* /knn/<k>/<id>.json */
	K_MEM,       /* a file of /queries or /ingest (memdir.c) */
	K_FAR,       /* a record file whose id or k does not fit the encoding (tree.c's table) */
};

/* A decoded inode: what it names. */
struct nfs_node {
	enum nfs_kind kind;
	unsigned slot; /* 0: the current state; n: a snapshot (snapshots.c) */
	uint64_t id;   /* K_VEC, K_META, K_KNN; K_MEM: the memdir serial */
	unsigned k;    /* K_KNNK, K_KNN */
};

#define NFS_MAX_K 1024u
#define NFS_MAX_SLOTS 4095u

fuse_ino_t nfs_ino(const struct nfs_node *n);
int nfs_node_of(fuse_ino_t ino, struct nfs_node *out);
/* Parse a decimal id the way the mount prints them (no sign, no leading zeros). */
bool nfs_parse_id(const char *s, size_t len, uint64_t *out);
/* Fill attributes (size included, exactly) for a node; errno on failure. */
int nfs_node_stat(struct nfs *fs, const struct nfs_node *n, struct stat *st);
/* The child of a directory node by name; errno (ENOENT...) on failure. */
int nfs_lookup_child(struct nfs *fs, const struct nfs_node *dir, const char *name, struct nfs_node *out);
/* Mode bits derived from the database file's. */
mode_t nfs_file_mode(struct nfs *fs, bool writable);
mode_t nfs_dir_mode(struct nfs *fs, bool writable);
/* Directory listing: add entries starting at offset off; returns bytes used in buf. */
int nfs_readdir(struct nfs *fs, fuse_req_t req, const struct nfs_node *dir, char *buf, size_t size, off_t off,
		size_t *used);

/* ---- records.c ---- */

/* Current bytes of a record file (K_VEC or K_META) into a new buffer. */
int nfs_record_read(struct nfs *fs, const struct nfs_node *n, char **out, size_t *len);
/* Store written bytes (at close). Returns errno (0). */
int nfs_record_write(struct nfs *fs, const struct nfs_node *n, const char *data, size_t len);
int nfs_record_delete(struct nfs *fs, uint64_t id);
int nfs_record_exists(struct nfs *fs, unsigned slot, uint64_t id);

/* ---- knn.c: files made on open ---- */

/* The text of /info, /errors or a knn file (a new buffer). */
int nfs_made_text(struct nfs *fs, const struct nfs_node *n, char **out, size_t *len);

/* ---- memdir.c: /queries and /ingest ---- */

struct mfile;
/* M_PLAIN: a file of /queries under a name that is no query's (q.tmp): kept, never run. */
enum mrole { M_QUERY, M_SIDECAR, M_OUTPUT, M_INGEST, M_ERROR, M_PLAIN };
int nfs_mem_lookup(struct nfs *fs, enum nfs_kind dir, const char *name, struct nfs_node *out);
int nfs_mem_stat(struct nfs *fs, uint64_t serial, struct stat *st);
int nfs_mem_create(struct nfs *fs, enum nfs_kind dir, const char *name, mode_t mode, uid_t uid, gid_t gid,
		   struct nfs_node *out);
int nfs_mem_unlink(struct nfs *fs, enum nfs_kind dir, const char *name);
/* rename(2) within /queries or /ingest (flags: RENAME_NOREPLACE). A file renamed to a
 * query's name runs, to an importable name in /ingest is imported, before it returns
 * (at its writer's close if it is still open for writing): the errno is the run's. */
int nfs_mem_rename(struct nfs *fs, enum nfs_kind dir, const char *name, const char *newname, unsigned flags);
void nfs_mem_forget(struct nfs *fs, uint64_t serial, uint64_t nlookup);
void nfs_mem_ref(uint64_t serial);
int nfs_mem_open(struct nfs *fs, uint64_t serial, int flags, struct mfile **out);
void nfs_mem_release(struct nfs *fs, struct mfile *m);
int nfs_mem_read(struct mfile *m, char *buf, size_t size, off_t off, size_t *got);
int nfs_mem_write(struct nfs *fs, struct mfile *m, const char *buf, size_t size, off_t off);
int nfs_mem_truncate(struct nfs *fs, struct mfile *m, off_t size);
int nfs_mem_truncate_ino(struct nfs *fs, uint64_t serial, off_t size);
int nfs_mem_chmod(struct nfs *fs, uint64_t serial, mode_t mode);
/* At close: run the query or the import if data came since the last close. */
int nfs_mem_flush(struct nfs *fs, struct mfile *m);
int nfs_mem_readdir(struct nfs *fs, fuse_req_t req, enum nfs_kind dir, char *buf, size_t size, off_t off,
		    size_t *used);
/* Add or replace an output file of a query (takes data). */
void nfs_mem_put_output(struct nfs *fs, enum nfs_kind dir, const char *name, char *data, size_t len);
/* Remove the outputs of a query named base (NAME.result.json and the rest). */
void nfs_mem_drop_outputs(struct nfs *fs, enum nfs_kind dir, const char *base);
/* A copy of a file's text (NUL-terminated), NULL if there is none. */
char *nfs_mem_get_text(enum nfs_kind dir, const char *name, size_t *len);
/* Delete a file by name (used after an ingest). */
void nfs_mem_remove(struct nfs *fs, enum nfs_kind dir, const char *name);

/* ---- queries.c ---- */

/* The role a name has in /queries: M_QUERY, M_SIDECAR, M_OUTPUT, M_PLAIN (any other). */
int nfs_query_role(const char *name);
/* Run a query file's bytes; outputs go into the memdir. Returns errno (0). */
int nfs_query_run(struct nfs *fs, const char *name, const char *data, size_t len);
/* nfs_results_obj and NFS_JSON_FLAGS (knn.c uses them too): query.h. */

/* ---- ingest.c ---- */

/* A name whose extension says an importable format (imported at close). */
bool nfs_ingest_name_ok(const char *name);
/* NAME.error: the daemon's report of a failed import, never a user's file. */
bool nfs_ingest_error_name(const char *name);
/* Import the spooled file (fd) named name in one transaction. Returns errno (0); the
 * reason in err. */
int nfs_ingest_run(struct nfs *fs, const char *name, int fd, char *err, size_t errlen);

/* ---- snapshots.c ---- */

/* The slot of a snapshot name, assigned on first sight; 0 if the table is full. */
unsigned nfs_snap_slot(const char *name);
/* The name of a slot (static storage while the daemon runs), NULL if none. */
const char *nfs_snap_name(unsigned slot);
int nfs_snap_exists(struct nfs *fs, const char *name);
int nfs_snap_mkdir(struct nfs *fs, const char *name);
int nfs_snap_rmdir(struct nfs *fs, const char *name);
/* A listing of the snapshot names, from offset off (index into the list). */
int nfs_snap_readdir(struct nfs *fs, fuse_req_t req, char *buf, size_t size, off_t off, size_t *used);

/* ---- watch.c ---- */

int nfs_watch_start(struct nfs *fs);
void nfs_watch_stop(void);
/* A commit through the mount: look now rather than at the next tick. */
void nfs_watch_kick(void);
/* Before a reopen closes the handle: end the watcher's transaction on it. */
void nfs_watch_drop(void);

/* ---- fs.c ---- */

extern const struct fuse_lowlevel_ops nfs_ops;

#endif /* NUSTERFS_H */
