/* The database handle every thread of the daemon shares. libnvf's handle is
 * thread-safe for any number of read transactions and one write transaction at a
 * time; what needs care here is its replacement: after a compaction (by this or
 * another process) every transaction of the old handle answers NVF_ESTALE, and the
 * path must be opened again. Handlers hold the read side of dblock while they use
 * the handle; the reopen takes the write side, so the old handle has no open
 * transaction when it is closed (nvf_db_close would refuse with NVF_EBUSY). */
#include "nusterfs.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

struct nfs *nfs_g;

static int open_path(struct nfs *fs, nvf_db **out)
{
	nvf_open_options oo = NVF_OPEN_OPTIONS_INIT;
	/* Writes through the mount wait for another process's writer rather than fail:
	 * a write is one short transaction, and the writer's is too. */
	oo.flags = fs->o.read_only ? NVF_OPEN_RDONLY : NVF_OPEN_LOCK_WAIT;
	return nvf_db_open(out, fs->o.db_path, &oo);
}

int nfs_db_open(struct nfs *fs)
{
	pthread_rwlock_init(&fs->dblock, NULL);
	int rc = open_path(fs, &fs->db);
	if (rc != 0)
		return rc;
	if ((rc = nvf_db_info(fs->db, NULL, &fs->info)) != 0 || stat(fs->o.db_path, &fs->dbst) != 0) {
		nvf_db_close(fs->db);
		fs->db = NULL;
		return rc ? rc : -errno;
	}
	return 0;
}

void nfs_db_close(struct nfs *fs)
{
	pthread_rwlock_wrlock(&fs->dblock);
	nvf_db_close(fs->db);
	fs->db = NULL;
	pthread_rwlock_unlock(&fs->dblock);
}

nvf_db *nfs_db_get(struct nfs *fs, uint64_t *gen)
{
	pthread_rwlock_rdlock(&fs->dblock);
	if (gen)
		*gen = fs->generation;
	return fs->db;
}

void nfs_db_put(struct nfs *fs)
{
	pthread_rwlock_unlock(&fs->dblock);
}

int nfs_db_reopen(struct nfs *fs, uint64_t gen)
{
	int rc = 0;
	pthread_rwlock_wrlock(&fs->dblock);
	if (fs->generation == gen) {
		/* The watcher keeps a read transaction between its looks: end it (it
		 * takes the read side before its own lock, so it is not using it now). */
		nfs_watch_drop();
		nvf_db *db = NULL;
		rc = open_path(fs, &db);
		if (rc == 0) {
			nvf_db_close(fs->db);
			fs->db = db;
			fs->generation++;
			struct stat st;
			if (stat(fs->o.db_path, &st) == 0)
				fs->dbst = st;
			nvf_db_info(db, NULL, &fs->info);
			fs->db_gone = false;
		} else {
			nfs_log("reopen %s after a compaction: %s", fs->o.db_path, import_why(rc));
		}
	}
	pthread_rwlock_unlock(&fs->dblock);
	return rc;
}

int nfs_view_begin(struct nfs *fs, nvf_db *db, unsigned slot, nvf_txn **out)
{
	if (slot == 0)
		return nvf_txn_begin(out, db, NVF_TXN_RDONLY);
	const char *name = nfs_snap_name(slot);
	if (!name)
		return NVF_ENOTFOUND;
	return nvf_txn_begin_snapshot(out, db, name);
}

int nfs_errno(int rc)
{
	if (rc >= 0)
		return 0;
	if (rc > -1000)
		return -rc;
	switch (rc) {
	case NVF_ENOTFOUND:
		return ENOENT;
	case NVF_EEXIST:
		return EEXIST;
	case NVF_EINVAL:
		return EINVAL;
	case NVF_EREADONLY:
		return EROFS;
	case NVF_EFULL:
		return ENOSPC;
	case NVF_ELOCKED:
	case NVF_EBUSY:
	case NVF_EREADERS:
		return EBUSY;
	case NVF_ESTALE:
		return ESTALE;
	default:
		return EIO;
	}
}

