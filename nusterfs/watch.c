/* The watcher: other processes (nvf-tool, Python, another nusterfs) commit to the
 * same file while it is mounted, and the kernel caches attributes and names for
 * cache_timeout seconds. A thread looks at the committed txnid every poll_ms; when
 * it moves, nvf_diff between the state seen last time and the new one lists the ids
 * that changed (time proportional to the change), and their inodes and names are
 * invalidated with fuse_lowlevel_notify_inval_*, as libfuse's notify_inval_inode.c
 * and notify_inval_entry.c do. The last state stays pinned by a read transaction
 * between two looks, which costs a reader slot and holds back the pages it sees
 * for one tick. It also notices the file deleted or replaced under the mount. */
#include "nusterfs.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Beyond this many changed ids, only the directories are invalidated (the rest
 * expire with cache_timeout): a bulk import should not cost a notify per record. */
#define MAX_NOTIFY 200000

static pthread_t thread;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static bool stopping, kicked, running;
static nvf_txn *prev;     /* the state seen last, or NULL */
static uint64_t prev_gen; /* the handle generation it belongs to */
static struct nfs *wfs;

void nfs_watch_kick(void)
{
	pthread_mutex_lock(&mu);
	kicked = true;
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
}

/* Before a reopen closes the handle: no transaction of it may stay open. */
void nfs_watch_drop(void)
{
	pthread_mutex_lock(&mu);
	nvf_txn_abort(prev);
	prev = NULL;
	pthread_mutex_unlock(&mu);
}

static void inval_ino(struct nfs *fs, enum nfs_kind kind, uint64_t id)
{
	struct nfs_node n = { .kind = kind, .id = id };
	fuse_lowlevel_notify_inval_inode(fs->se, nfs_ino(&n), 0, 0);
}

static void inval_name(struct nfs *fs, enum nfs_kind dir, const char *name)
{
	struct nfs_node n = { .kind = dir };
	fuse_lowlevel_notify_inval_entry(fs->se, nfs_ino(&n), name, strlen(name));
}

static void invalidate(struct nfs *fs, const nvf_diff_entry *d, size_t nd)
{
	for (size_t i = 0; nd <= MAX_NOTIFY && i < nd; i++) {
		/* Ids past the computed range have table inodes: they expire instead. */
		if (d[i].id >= (UINT64_C(1) << 46))
			continue;
		char name[40];
		if (d[i].what & (NVF_DIFF_ADDED | NVF_DIFF_REMOVED)) {
			snprintf(name, sizeof(name), "%" PRIu64, d[i].id);
			inval_name(fs, K_VECDIR, name);
			snprintf(name, sizeof(name), "%" PRIu64 ".json", d[i].id);
			inval_name(fs, K_METADIR, name);
		}
		if (!(d[i].what & NVF_DIFF_ADDED)) {
			inval_ino(fs, K_VEC, d[i].id);
			inval_ino(fs, K_META, d[i].id);
		}
	}
	inval_ino(fs, K_VECDIR, 0);
	inval_ino(fs, K_METADIR, 0);
	inval_ino(fs, K_INFO, 0);
	fuse_lowlevel_notify_inval_inode(fs->se, FUSE_ROOT_ID, 0, 0);
}

/* The path: gone (deleted under the mount) or another file (replaced). */
static void check_path(struct nfs *fs, uint64_t gen)
{
	struct stat st;
	if (stat(fs->o.db_path, &st) != 0) {
		if (errno == ENOENT && !fs->db_gone) {
			fs->db_gone = true;
			nfs_log("%s was deleted: reads go on from the open file, writes fail (EIO)", fs->o.db_path);
		}
		return;
	}
	if (st.st_ino != fs->dbst.st_ino || st.st_dev != fs->dbst.st_dev) {
		nfs_log("%s was replaced by another file: reopening it", fs->o.db_path);
		if (nfs_db_reopen(fs, gen) == 0)
			invalidate(fs, NULL, 0);
	} else if (fs->db_gone) {
		fs->db_gone = false;
	}
}

static void tick(struct nfs *fs)
{
	uint64_t gen;
	nvf_db *db = nfs_db_get(fs, &gen);
	nvf_txn *now = NULL;
	nvf_diff_entry *d = NULL;
	size_t nd = 0;
	bool changed = false;
	int rc = nvf_txn_begin(&now, db, NVF_TXN_RDONLY);
	pthread_mutex_lock(&mu);
	if (rc == 0) {
		if (!prev || prev_gen != gen) {
			changed = prev != NULL;
		} else if (nvf_txn_id(now) != nvf_txn_id(prev)) {
			changed = true;
			if (nvf_diff(db, prev, now, &d, &nd) != 0)
				d = NULL, nd = MAX_NOTIFY + 1;
		}
		if (!prev || changed) {
			nvf_txn_abort(prev);
			prev = now;
			prev_gen = gen;
			now = NULL;
		}
	}
	pthread_mutex_unlock(&mu);
	nvf_txn_abort(now);
	nfs_db_put(fs);
	if (rc == NVF_ESTALE) {
		/* Compacted by someone: a fresh handle, and everything may have moved. */
		if (nfs_db_reopen(fs, gen) == 0)
			invalidate(fs, NULL, MAX_NOTIFY + 1);
	} else if (changed) {
		invalidate(fs, d, nd);
	}
	nvf_free(d);
	check_path(fs, gen);
}

static void *run(void *arg)
{
	struct nfs *fs = arg;
	pthread_mutex_lock(&mu);
	while (!stopping) {
		pthread_mutex_unlock(&mu);
		tick(fs);
		pthread_mutex_lock(&mu);
		if (!kicked && !stopping) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)fs->o.poll_ms * 1000000u;
			ts.tv_sec += (time_t)(ns / 1000000000u);
			ts.tv_nsec = (long)(ns % 1000000000u);
			pthread_cond_timedwait(&cv, &mu, &ts);
		}
		kicked = false;
	}
	nvf_txn_abort(prev);
	prev = NULL;
	pthread_mutex_unlock(&mu);
	return NULL;
}

int nfs_watch_start(struct nfs *fs)
{
	wfs = fs;
	int rc = pthread_create(&thread, NULL, run, fs);
	running = rc == 0;
	return rc;
}

void nfs_watch_stop(void)
{
	if (!running)
		return;
	pthread_mutex_lock(&mu);
	stopping = true;
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
	pthread_join(thread, NULL);
	running = false;
}
