/* /.snapshots: one read-only tree per named snapshot, mkdir to create one and rmdir
 * to delete it. A snapshot's files need inode numbers that do not collide with the
 * current state's, so each name gets a slot (tree.c puts it in bits 46-57) on first
 * sight; a slot stays with its name for the daemon's life, so a snapshot deleted and
 * created again under the same name keeps its inodes. */
#include "nusterfs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static char *names[NFS_MAX_SLOTS + 1]; /* slot 0 is the current state */
static unsigned nslots;

unsigned nfs_snap_slot(const char *name)
{
	pthread_mutex_lock(&mu);
	unsigned s;
	for (s = 1; s <= nslots; s++)
		if (strcmp(names[s], name) == 0)
			goto out;
	s = 0;
	if (nslots < NFS_MAX_SLOTS && (names[nslots + 1] = strdup(name)))
		s = ++nslots;
out:
	pthread_mutex_unlock(&mu);
	return s;
}

const char *nfs_snap_name(unsigned slot)
{
	pthread_mutex_lock(&mu);
	const char *n = slot >= 1 && slot <= nslots ? names[slot] : NULL;
	pthread_mutex_unlock(&mu);
	return n;
}

/* Runs fn on the snapshot list, with a retry on a fresh handle after a compaction. */
static int with_list(struct nfs *fs, nvf_snapshot_info **out, size_t *n)
{
	for (int tries = 0;; tries++) {
		uint64_t gen;
		nvf_db *db = nfs_db_get(fs, &gen);
		int rc = nvf_snapshot_list(db, NULL, out, n);
		nfs_db_put(fs);
		if (rc == NVF_ESTALE && tries == 0 && nfs_db_reopen(fs, gen) == 0)
			continue;
		return rc;
	}
}

int nfs_snap_exists(struct nfs *fs, const char *name)
{
	nvf_snapshot_info *s;
	size_t n;
	int rc = with_list(fs, &s, &n);
	if (rc != 0)
		return nfs_errno(rc);
	int found = ENOENT;
	for (size_t i = 0; i < n; i++)
		if (strcmp(s[i].name, name) == 0)
			found = 0;
	nvf_free(s);
	return found;
}

static int change(struct nfs *fs, const char *name, bool create)
{
	if (fs->o.read_only)
		return EROFS;
	if (fs->db_gone)
		return EIO;
	for (int tries = 0;; tries++) {
		uint64_t gen;
		nvf_db *db = nfs_db_get(fs, &gen);
		int rc = create ? nvf_snapshot_create(db, NULL, name, NULL, NULL) : nvf_snapshot_delete(db, NULL, name);
		nfs_db_put(fs);
		if (rc == NVF_ESTALE && tries == 0 && nfs_db_reopen(fs, gen) == 0)
			continue;
		if (rc != 0)
			nfs_log("%s .snapshots/%s: %s", create ? "mkdir" : "rmdir", name, import_why(rc));
		else
			nfs_watch_kick();
		return nfs_errno(rc);
	}
}

int nfs_snap_mkdir(struct nfs *fs, const char *name)
{
	return change(fs, name, true);
}

int nfs_snap_rmdir(struct nfs *fs, const char *name)
{
	return change(fs, name, false);
}

static int by_slot(const void *a, const void *b)
{
	unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
	return x < y ? -1 : x > y;
}

/* Listed in slot order, offset = slot: a listing resumes after the last name given
 * even when snapshots come and go meanwhile. */
int nfs_snap_readdir(struct nfs *fs, fuse_req_t req, char *buf, size_t size, off_t off, size_t *used)
{
	nvf_snapshot_info *s;
	size_t n;
	int rc = with_list(fs, &s, &n);
	if (rc != 0)
		return nfs_errno(rc);
	unsigned *slots = malloc((n ? n : 1) * sizeof(*slots));
	if (!slots) {
		nvf_free(s);
		return ENOMEM;
	}
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned sl = nfs_snap_slot(s[i].name);
		if (sl)
			slots[m++] = sl;
	}
	nvf_free(s);
	qsort(slots, m, sizeof(*slots), by_slot);
	for (size_t i = 0; i < m; i++) {
		if (slots[i] < (uint64_t)off)
			continue;
		struct nfs_node c = { .kind = K_ROOT, .slot = slots[i] };
		struct stat st;
		memset(&st, 0, sizeof(st));
		st.st_ino = nfs_ino(&c);
		st.st_mode = S_IFDIR;
		size_t need = fuse_add_direntry(req, buf + *used, size - *used, nfs_snap_name(slots[i]), &st,
						(off_t)slots[i] + 3);
		if (need > size - *used)
			break;
		*used += need;
	}
	free(slots);
	return 0;
}
