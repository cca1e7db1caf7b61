/* The files of /queries and /ingest live in the daemon's memory (an ingest file's
 * bytes in a spool file): a query file, its sidecar of options, its outputs, an
 * ingest file until it is imported, .error files, and files under other names
 * (q.tmp) that wait for a rename to a name that runs or imports them. Each has a serial number for
 * its inode, a lookup count the kernel's FORGETs bring down and a count of opens; an
 * unlinked file is freed when both reach zero, as a real file system frees an
 * unlinked inode once nobody holds it. One mutex guards them all: every operation
 * under it is short (searches and imports run outside it). */
#include "nusterfs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct mnode {
	uint64_t serial;
	enum nfs_kind dir;
	char *name;
	enum mrole role;
	char *data; /* queries, sidecars, outputs, errors */
	size_t len, cap;
	int spool;  /* ingest files: the spool file, -1 otherwise */
	uid_t uid;
	gid_t gid;
	mode_t mode;
	struct timespec mtime;
	uint64_t nlookup, run_seq;
	unsigned opens, writers; /* writers: the opens for writing */
	bool linked, dirty, busy;
	struct mnode *next_dir;  /* the directory's list, in creation order */
	struct mnode *next_hash;
};

struct mfile {
	struct mnode *node;
	bool writable;
};

#define NBUCKETS 4096

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct mnode *buckets[NBUCKETS];
static struct mnode *queries, *ingest; /* directory lists */
static uint64_t next_serial = 1, run_counter;

static struct mnode **dir_list(enum nfs_kind dir)
{
	return dir == K_QUERYDIR ? &queries : &ingest;
}

static struct mnode *by_serial(uint64_t serial)
{
	for (struct mnode *m = buckets[serial % NBUCKETS]; m; m = m->next_hash)
		if (m->serial == serial)
			return m;
	return NULL;
}

static struct mnode *by_name(enum nfs_kind dir, const char *name)
{
	for (struct mnode *m = *dir_list(dir); m; m = m->next_dir)
		if (strcmp(m->name, name) == 0)
			return m;
	return NULL;
}

static void free_node(struct mnode *m)
{
	struct mnode **p = &buckets[m->serial % NBUCKETS];
	while (*p != m)
		p = &(*p)->next_hash;
	*p = m->next_hash;
	if (m->spool >= 0)
		close(m->spool);
	free(m->name);
	free(m->data);
	free(m);
}

static void maybe_free(struct mnode *m)
{
	if (!m->linked && m->nlookup == 0 && m->opens == 0)
		free_node(m);
}

static void unlink_node(struct mnode *m)
{
	struct mnode **p = dir_list(m->dir);
	while (*p && *p != m)
		p = &(*p)->next_dir;
	if (*p)
		*p = m->next_dir;
	m->linked = false;
	maybe_free(m);
}

static struct mnode *new_node(enum nfs_kind dir, const char *name, enum mrole role, mode_t mode, uid_t uid, gid_t gid)
{
	struct mnode *m = calloc(1, sizeof(*m));
	if (!m || !(m->name = strdup(name))) {
		free(m);
		return NULL;
	}
	m->serial = next_serial++;
	m->dir = dir;
	m->role = role;
	m->spool = -1;
	m->mode = mode;
	m->uid = uid;
	m->gid = gid;
	m->linked = true;
	clock_gettime(CLOCK_REALTIME, &m->mtime);
	m->next_hash = buckets[m->serial % NBUCKETS];
	buckets[m->serial % NBUCKETS] = m;
	/* Appended: a listing in progress sees files created after it began. */
	struct mnode **p = dir_list(dir);
	while (*p)
		p = &(*p)->next_dir;
	*p = m;
	return m;
}

static void fill_node(struct nfs_node *out, const struct mnode *m)
{
	memset(out, 0, sizeof(*out));
	out->kind = K_MEM;
	out->id = m->serial;
}

int nfs_mem_lookup(struct nfs *fs, enum nfs_kind dir, const char *name, struct nfs_node *out)
{
	(void)fs;
	pthread_mutex_lock(&mu);
	struct mnode *m = by_name(dir, name);
	if (m)
		fill_node(out, m);
	pthread_mutex_unlock(&mu);
	return m ? 0 : ENOENT;
}

void nfs_mem_ref(uint64_t serial)
{
	pthread_mutex_lock(&mu);
	struct mnode *m = by_serial(serial);
	if (m)
		m->nlookup++;
	pthread_mutex_unlock(&mu);
}

void nfs_mem_forget(struct nfs *fs, uint64_t serial, uint64_t nlookup)
{
	(void)fs;
	pthread_mutex_lock(&mu);
	struct mnode *m = by_serial(serial);
	if (m) {
		m->nlookup = nlookup > m->nlookup ? 0 : m->nlookup - nlookup;
		maybe_free(m);
	}
	pthread_mutex_unlock(&mu);
}

int nfs_mem_stat(struct nfs *fs, uint64_t serial, struct stat *st)
{
	(void)fs;
	pthread_mutex_lock(&mu);
	struct mnode *m = by_serial(serial);
	if (m) {
		st->st_mode = S_IFREG | m->mode;
		st->st_uid = m->uid;
		st->st_gid = m->gid;
		st->st_size = (off_t)m->len;
		st->st_blocks = (st->st_size + 511) / 512;
		st->st_nlink = m->linked ? 1 : 0;
		st->st_mtim = st->st_ctim = st->st_atim = m->mtime;
	}
	pthread_mutex_unlock(&mu);
	return m ? 0 : ENOENT;
}

/* A spool file for an ingest: anonymous (O_TMPFILE) where the file system allows. */
static int spool_open(struct nfs *fs)
{
	int fd = open(fs->o.spool, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
		return fd;
	char path[4096];
	snprintf(path, sizeof(path), "%s/nusterfs-spool-XXXXXX", fs->o.spool);
	fd = mkstemp(path);
	if (fd >= 0)
		unlink(path);
	return fd;
}

int nfs_mem_create(struct nfs *fs, enum nfs_kind dir, const char *name, mode_t mode, uid_t uid, gid_t gid,
		   struct nfs_node *out)
{
	int role;
	if (dir == K_QUERYDIR) {
		role = nfs_query_role(name);
		if (role == M_OUTPUT)
			return EINVAL; /* the daemon's */
	} else {
		if (fs->o.read_only)
			return EROFS;
		if (nfs_ingest_error_name(name))
			return EINVAL;
		role = M_INGEST; /* spooled; imported at close if its name says a format */
	}
	int fd = -1;
	if (role == M_INGEST && (fd = spool_open(fs)) < 0) {
		int e = errno;
		nfs_log("ingest/%s: cannot create a spool file in %s: %s", name, fs->o.spool, strerror(e));
		return e;
	}
	pthread_mutex_lock(&mu);
	struct mnode *m = by_name(dir, name);
	int rc = 0;
	if (m) {
		rc = EEXIST;
	} else if (!(m = new_node(dir, name, (enum mrole)role, mode & 07777, uid, gid))) {
		rc = ENOMEM;
	} else {
		m->spool = fd;
		fd = -1;
		m->nlookup++;
		fill_node(out, m);
	}
	pthread_mutex_unlock(&mu);
	if (fd >= 0)
		close(fd);
	return rc;
}

int nfs_mem_unlink(struct nfs *fs, enum nfs_kind dir, const char *name)
{
	(void)fs;
	pthread_mutex_lock(&mu);
	struct mnode *m = by_name(dir, name);
	if (m)
		unlink_node(m);
	pthread_mutex_unlock(&mu);
	return m ? 0 : ENOENT;
}

void nfs_mem_remove(struct nfs *fs, enum nfs_kind dir, const char *name)
{
	nfs_mem_unlink(fs, dir, name);
}

int nfs_mem_open(struct nfs *fs, uint64_t serial, int flags, struct mfile **out)
{
	(void)fs;
	struct mfile *f = calloc(1, sizeof(*f));
	if (!f)
		return ENOMEM;
	int rc = 0;
	pthread_mutex_lock(&mu);
	struct mnode *m = by_serial(serial);
	bool wr = (flags & O_ACCMODE) != O_RDONLY;
	if (!m) {
		rc = ENOENT;
	} else if (wr && (m->role == M_OUTPUT || m->role == M_ERROR)) {
		rc = EROFS; /* results are the daemon's: remove them, do not edit them */
	} else {
		m->opens++;
		m->writers += wr;
		f->node = m;
		f->writable = wr;
		if (wr && (flags & O_TRUNC)) {
			m->len = 0;
			if (m->spool >= 0 && ftruncate(m->spool, 0) != 0)
				rc = errno;
		}
	}
	pthread_mutex_unlock(&mu);
	if (rc != 0) {
		free(f);
		return rc;
	}
	*out = f;
	return 0;
}

void nfs_mem_release(struct nfs *fs, struct mfile *f)
{
	(void)fs;
	pthread_mutex_lock(&mu);
	f->node->opens--;
	f->node->writers -= f->writable;
	maybe_free(f->node);
	pthread_mutex_unlock(&mu);
	free(f);
}

int nfs_mem_read(struct mfile *f, char *buf, size_t size, off_t off, size_t *got)
{
	int rc = 0;
	pthread_mutex_lock(&mu);
	struct mnode *m = f->node;
	*got = 0;
	if ((size_t)off < m->len) {
		size_t n = m->len - (size_t)off < size ? m->len - (size_t)off : size;
		if (m->spool >= 0) {
			ssize_t r = pread(m->spool, buf, n, off);
			if (r < 0)
				rc = errno;
			else
				*got = (size_t)r;
		} else {
			memcpy(buf, m->data + off, n);
			*got = n;
		}
	}
	pthread_mutex_unlock(&mu);
	return rc;
}

int nfs_mem_write(struct nfs *fs, struct mfile *f, const char *buf, size_t size, off_t off)
{
	int rc = 0;
	pthread_mutex_lock(&mu);
	struct mnode *m = f->node;
	size_t end = (size_t)off + size;
	if (m->spool >= 0) {
		ssize_t w = pwrite(m->spool, buf, size, off);
		if (w != (ssize_t)size)
			rc = w < 0 ? errno : EIO;
	} else if (end > fs->o.max_query) {
		/* A query larger than the limit: refused at the write that passes it. */
		rc = EFBIG;
		nfs_log("queries/%s: larger than max_query (%zu bytes)", m->name, fs->o.max_query);
	} else {
		if (end > m->cap) {
			size_t nc = m->cap ? m->cap : 4096;
			while (nc < end)
				nc *= 2;
			char *d = realloc(m->data, nc);
			if (!d)
				rc = ENOMEM;
			else
				m->data = d, m->cap = nc;
		}
		if (rc == 0) {
			if ((size_t)off > m->len)
				memset(m->data + m->len, 0, (size_t)off - m->len);
			memcpy(m->data + off, buf, size);
		}
	}
	if (rc == 0) {
		if (end > m->len)
			m->len = end;
		m->dirty = true;
		clock_gettime(CLOCK_REALTIME, &m->mtime);
	}
	pthread_mutex_unlock(&mu);
	return rc;
}

static int truncate_node(struct nfs *fs, struct mnode *m, off_t size)
{
	if (m->role == M_OUTPUT || m->role == M_ERROR)
		return EROFS;
	if ((size_t)size > fs->o.max_query && m->spool < 0)
		return EFBIG;
	if (m->spool >= 0) {
		if (ftruncate(m->spool, size) != 0)
			return errno;
	} else if ((size_t)size > m->len) {
		if ((size_t)size > m->cap) {
			char *d = realloc(m->data, (size_t)size);
			if (!d)
				return ENOMEM;
			m->data = d;
			m->cap = (size_t)size;
		}
		memset(m->data + m->len, 0, (size_t)size - m->len);
	}
	m->len = (size_t)size;
	if (size > 0)
		m->dirty = true;
	clock_gettime(CLOCK_REALTIME, &m->mtime);
	return 0;
}

int nfs_mem_truncate(struct nfs *fs, struct mfile *f, off_t size)
{
	pthread_mutex_lock(&mu);
	int rc = truncate_node(fs, f->node, size);
	pthread_mutex_unlock(&mu);
	return rc;
}

int nfs_mem_chmod(struct nfs *fs, uint64_t serial, mode_t mode)
{
	(void)fs;
	pthread_mutex_lock(&mu);
	struct mnode *m = by_serial(serial);
	int rc = !m ? ENOENT : m->role == M_OUTPUT || m->role == M_ERROR ? EPERM : 0;
	if (rc == 0)
		m->mode = mode & 07777;
	pthread_mutex_unlock(&mu);
	return rc;
}

int nfs_mem_truncate_ino(struct nfs *fs, uint64_t serial, off_t size)
{
	pthread_mutex_lock(&mu);
	struct mnode *m = by_serial(serial);
	int rc = m ? truncate_node(fs, m, size) : ENOENT;
	pthread_mutex_unlock(&mu);
	return rc;
}

/* Keep at most max_results queries with results: the oldest run's files go first. */
static void trim_results(struct nfs *fs)
{
	for (;;) {
		unsigned n = 0;
		struct mnode *oldest = NULL;
		for (struct mnode *m = queries; m; m = m->next_dir)
			if (m->role == M_QUERY && m->run_seq) {
				n++;
				if (!oldest || m->run_seq < oldest->run_seq)
					oldest = m;
			}
		if (n <= fs->o.max_results || !oldest)
			return;
		char *base = strdup(oldest->name);
		if (!base)
			return;
		char *dot = strrchr(base, '.');
		if (dot)
			*dot = 0;
		size_t bl = strlen(base);
		for (struct mnode *m = queries, *next; m; m = next) {
			next = m->next_dir;
			if (m == oldest || (m->role == M_OUTPUT && strncmp(m->name, base, bl) == 0 && m->name[bl] == '.' &&
					    nfs_query_role(m->name) == M_OUTPUT))
				unlink_node(m);
		}
		free(base);
	}
}

void nfs_mem_put_output(struct nfs *fs, enum nfs_kind dir, const char *name, char *data, size_t len)
{
	(void)fs;
	pthread_mutex_lock(&mu);
	struct mnode *m = by_name(dir, name);
	if (m)
		unlink_node(m); /* a new inode: readers of the old result keep theirs */
	m = new_node(dir, name, dir == K_INGESTDIR ? M_ERROR : M_OUTPUT, 0444, 0, 0);
	if (m) {
		m->data = data;
		m->len = m->cap = len;
		m->mode = nfs_file_mode(fs, false) | 0444;
		m->uid = fs->dbst.st_uid;
		m->gid = fs->dbst.st_gid;
	} else {
		free(data);
	}
	pthread_mutex_unlock(&mu);
}

char *nfs_mem_get_text(enum nfs_kind dir, const char *name, size_t *len)
{
	pthread_mutex_lock(&mu);
	struct mnode *m = by_name(dir, name);
	char *out = NULL;
	if (m && m->spool < 0 && (out = malloc(m->len + 1))) {
		if (m->len)
			memcpy(out, m->data, m->len);
		out[m->len] = 0;
		*len = m->len;
	}
	pthread_mutex_unlock(&mu);
	return out;
}

void nfs_mem_drop_outputs(struct nfs *fs, enum nfs_kind dir, const char *base)
{
	(void)fs;
	size_t bl = strlen(base);
	pthread_mutex_lock(&mu);
	for (struct mnode *m = *dir_list(dir), *next; m; m = next) {
		next = m->next_dir;
		if ((m->role == M_OUTPUT || m->role == M_ERROR) && strncmp(m->name, base, bl) == 0 && m->name[bl] == '.' &&
		    nfs_query_role(m->name) == M_OUTPUT)
			unlink_node(m);
	}
	pthread_mutex_unlock(&mu);
}

/* The outputs of a query NAME.json (or .npy, .fvecs) are NAME.result.json and the
 * rest: its base name is the name without its last suffix. */
static char *base_of(const char *name)
{
	char *b = strdup(name);
	if (b) {
		char *dot = strrchr(b, '.');
		if (dot && dot != b)
			*dot = 0;
	}
	return b;
}

/* Does a file of role role named name run (a query) or import (an ingest file)? */
static bool runs(enum mrole role, const char *name)
{
	return role == M_QUERY || (role == M_INGEST && nfs_ingest_name_ok(name));
}

/* Give a file a new name and role (mu held); a file of that name is replaced. */
static void rename_node(struct mnode *m, char *nn, enum mrole role)
{
	struct mnode *old = by_name(m->dir, nn);
	if (old && old != m)
		unlink_node(old); /* its openers keep it */
	free(m->name);
	m->name = nn;
	if (m->role == M_QUERY && role != M_QUERY)
		m->run_seq = 0;
	m->role = role;
	clock_gettime(CLOCK_REALTIME, &m->mtime);
}

/* Run a query file or import an ingest file, called with mu held and m not busy;
 * returns with mu released (m may be freed by then). The search or the import runs
 * outside the lock. At a close (as NULL) it runs under its name. At a rename it runs
 * as the file named as (role role) would, and only once it succeeded is it renamed
 * to as (takes as): a rename that fails leaves the names as they were. */
static int run_node(struct nfs *fs, struct mnode *m, char *as, enum mrole role, unsigned flags)
{
	m->dirty = false;
	m->busy = true;
	m->opens++; /* held while the lock is dropped */
	char *name = strdup(as ? as : m->name);
	char *data = NULL;
	size_t len = m->len;
	int fd = -1, rc = 0;
	if (!as)
		role = m->role;
	if (role == M_QUERY && name && (data = malloc(len + 1))) {
		memcpy(data, m->data ? m->data : "", len);
		data[len] = 0;
	} else if (role == M_INGEST) {
		fd = dup(m->spool);
	}
	pthread_mutex_unlock(&mu);

	char *base = name ? base_of(name) : NULL;
	if (!name || !base || (role == M_QUERY && !data) || (role == M_INGEST && fd < 0)) {
		rc = ENOMEM;
	} else if (role == M_QUERY) {
		nfs_mem_drop_outputs(fs, K_QUERYDIR, base);
		rc = nfs_query_run(fs, name, data, len);
	} else {
		char err[1024];
		size_t el = strlen(name) + 8;
		char *errname = malloc(el);
		rc = nfs_ingest_run(fs, name, fd, err, sizeof(err));
		/* Imported or not, the file leaves /ingest (this file: the name may have
		 * been taken by another since), and a rename's target with it; a failure
		 * leaves NAME.error, and the file where it was if it came by a rename. */
		pthread_mutex_lock(&mu);
		if (m->linked && (!as || rc == 0))
			unlink_node(m); /* not freed: opens is held */
		struct mnode *old = as && rc == 0 ? by_name(K_INGESTDIR, as) : NULL;
		if (old && !old->busy)
			unlink_node(old);
		pthread_mutex_unlock(&mu);
		if (errname) {
			snprintf(errname, el, "%s.error", name);
			nfs_mem_remove(fs, K_INGESTDIR, errname);
			if (rc != 0) {
				size_t l = strlen(err);
				char *text = malloc(l + 2);
				if (text) {
					memcpy(text, err, l);
					text[l] = '\n';
					text[l + 1] = 0;
					nfs_mem_put_output(fs, K_INGESTDIR, errname, text, l + 1);
				}
			}
			free(errname);
		}
	}
	if (fd >= 0)
		close(fd);
	free(data);
	free(name);
	free(base);
	pthread_mutex_lock(&mu);
	m->busy = false;
	m->opens--;
	if (role == M_QUERY) {
		if (as && rc == 0 && m->linked) {
			struct mnode *old = by_name(m->dir, as);
			if (old && old != m && (flags & RENAME_NOREPLACE))
				rc = EEXIST; /* created while the query ran */
			else if (old && old != m && old->busy)
				rc = EBUSY;
			else
				rename_node(m, as, M_QUERY), as = NULL;
		}
		if (m->role == M_QUERY)
			m->run_seq = ++run_counter;
		trim_results(fs);
	}
	free(as);
	maybe_free(m);
	pthread_mutex_unlock(&mu);
	return rc;
}

int nfs_mem_flush(struct nfs *fs, struct mfile *f)
{
	pthread_mutex_lock(&mu);
	struct mnode *m = f->node;
	/* The first flush carrying data runs it; a flush without new data (a second
	 * descriptor's close, an fsync) does nothing. A file under a name that does not
	 * run (q.tmp, a sidecar) keeps its data for a rename. */
	if (!f->writable || !m->dirty || m->busy || !m->linked || !runs(m->role, m->name)) {
		pthread_mutex_unlock(&mu);
		return 0;
	}
	return run_node(fs, m, NULL, m->role, 0);
}

/* The role a file of role from takes under the name to, or EPERM: a written file
 * may become a query, a sidecar or a plain file, never an output; an output (or an
 * ingest's error report) stays the daemon's, read-only, under any name that does
 * not run. */
static int renamed_role(enum nfs_kind dir, enum mrole from, const char *to, enum mrole *out)
{
	if (dir == K_INGESTDIR) {
		if (from == M_ERROR ? nfs_ingest_name_ok(to) : nfs_ingest_error_name(to))
			return EPERM;
		*out = from;
		return 0;
	}
	int r = nfs_query_role(to);
	if (from == M_OUTPUT) {
		if (r == M_QUERY || r == M_SIDECAR)
			return EPERM;
		*out = M_OUTPUT;
		return 0;
	}
	if (r == M_OUTPUT)
		return EPERM;
	*out = (enum mrole)r;
	return 0;
}

int nfs_mem_rename(struct nfs *fs, enum nfs_kind dir, const char *name, const char *newname, unsigned flags)
{
	if (flags & ~(unsigned)RENAME_NOREPLACE)
		return EINVAL; /* RENAME_EXCHANGE, RENAME_WHITEOUT */
	if (dir == K_INGESTDIR && fs->o.read_only)
		return EROFS;
	pthread_mutex_lock(&mu);
	struct mnode *m = by_name(dir, name), *old = by_name(dir, newname);
	enum mrole role = M_PLAIN;
	char *nn = NULL;
	int rc = 0;
	if (!m)
		rc = ENOENT;
	else if (m == old)
		rc = 0; /* the same file: nothing to do */
	else if (old && (flags & RENAME_NOREPLACE))
		rc = EEXIST;
	else if (m->busy || (old && old->busy))
		rc = EBUSY; /* its search or import is running */
	else if ((rc = renamed_role(dir, m->role, newname, &role)) == 0 && !(nn = strdup(newname)))
		rc = ENOMEM;
	if (rc != 0 || m == old) {
		pthread_mutex_unlock(&mu);
		if (rc == EPERM)
			nfs_log("%s/%s: cannot be renamed to %s (the outputs and .error files are the daemon's)",
				dir == K_QUERYDIR ? "queries" : "ingest", name, newname);
		return rc;
	}
	if (!runs(role, nn) || m->writers > 0) {
		/* Renamed; one still being written runs at its writer's close, under the
		 * new name. */
		rename_node(m, nn, role);
		if (runs(role, nn))
			m->dirty = true;
		pthread_mutex_unlock(&mu);
		return 0;
	}
	/* As if it had been written under the new name and closed: it runs now. A file
	 * that is no valid query or import gives EBADMSG where a close gives EINVAL:
	 * rename's EINVAL means another thing to its callers (mv says "a subdirectory
	 * of itself"; gnulib retries a RENAME_NOREPLACE without the flag). */
	rc = run_node(fs, m, nn, role, flags);
	return rc == EINVAL ? EBADMSG : rc;
}

int nfs_mem_readdir(struct nfs *fs, fuse_req_t req, enum nfs_kind dir, char *buf, size_t size, off_t off,
		    size_t *used)
{
	(void)fs;
	pthread_mutex_lock(&mu);
	/* The list is in creation order, so serials ascend along it: an entry's
	 * serial is its offset, and a listing resumes after the last one returned
	 * whatever was removed meanwhile. */
	for (struct mnode *m = *dir_list(dir); m; m = m->next_dir) {
		if (m->serial < (uint64_t)off)
			continue;
		struct stat st;
		memset(&st, 0, sizeof(st));
		struct nfs_node n;
		fill_node(&n, m);
		st.st_ino = nfs_ino(&n);
		st.st_mode = S_IFREG;
		size_t need = fuse_add_direntry(req, buf + *used, size - *used, m->name, &st, (off_t)m->serial + 3);
		if (need > size - *used)
			break;
		*used += need;
	}
	pthread_mutex_unlock(&mu);
	return 0;
}
