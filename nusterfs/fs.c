/* The low-level operations, one handler each (libfuse's passthrough_ll.c is the
 * model): decode the inode, ask the layout (tree.c) or the part that owns the node,
 * reply exactly once. Writes are buffered per open file and stored at FLUSH (the
 * close), in a transaction that begins and ends inside that one request. */
#include "nusterfs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

/* The buffer of a record file open for writing. */
struct wbuf {
	struct nfs_node node;
	char *data;
	size_t len, cap;
	bool dirty;
};

/* Records being created: open, not yet stored. The kernel asks their attributes
 * (without the file handle) between the create and the close. */
struct pending {
	fuse_ino_t ino;
	struct wbuf *w;
	struct pending *next;
};
static pthread_mutex_t pending_mu = PTHREAD_MUTEX_INITIALIZER;
static struct pending *pendings;

static void pending_add(fuse_ino_t ino, struct wbuf *w)
{
	struct pending *p = malloc(sizeof(*p));
	if (!p)
		return;
	pthread_mutex_lock(&pending_mu);
	*p = (struct pending){ ino, w, pendings };
	pendings = p;
	pthread_mutex_unlock(&pending_mu);
}

static void pending_remove(struct wbuf *w)
{
	pthread_mutex_lock(&pending_mu);
	for (struct pending **p = &pendings; *p; p = &(*p)->next)
		if ((*p)->w == w) {
			struct pending *q = *p;
			*p = q->next;
			free(q);
			break;
		}
	pthread_mutex_unlock(&pending_mu);
}

/* The size written so far to a record being created, or -1. */
static off_t pending_size(fuse_ino_t ino)
{
	off_t size = -1;
	pthread_mutex_lock(&pending_mu);
	for (struct pending *p = pendings; p; p = p->next)
		if (p->ino == ino)
			size = (off_t)p->w->len;
	pthread_mutex_unlock(&pending_mu);
	return size;
}

/* The text of a file made on open (/info, /errors, knn). */
struct made {
	char *text;
	size_t len;
};

static struct nfs *FS(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static bool is_dir(enum nfs_kind k)
{
	return k == K_ROOT || k == K_VECDIR || k == K_METADIR || k == K_KNNDIR || k == K_KNNK || k == K_INGESTDIR ||
	       k == K_QUERYDIR || k == K_SNAPDIR;
}

/* Names and attributes of the record files may be cached (the watcher invalidates
 * them when a commit changes them); files whose size follows each read, none. */
static double attr_timeout(struct nfs *fs, const struct nfs_node *n)
{
	switch (n->kind) {
	case K_VEC:
	case K_KNNDIR:
	case K_KNNK:
		return fs->o.timeout;
	case K_ROOT:
		return n->slot ? fs->o.timeout : 0;
	default:
		return 0;
	}
}

static int reply_node(fuse_req_t req, const struct nfs_node *n, bool entry, struct fuse_file_info *fi)
{
	struct nfs *fs = FS(req);
	struct fuse_entry_param e;
	memset(&e, 0, sizeof(e));
	int rc = nfs_node_stat(fs, n, &e.attr);
	if (rc != 0)
		return rc;
	e.ino = e.attr.st_ino;
	e.attr_timeout = attr_timeout(fs, n);
	e.entry_timeout = n->kind == K_MEM ? 0 : fs->o.timeout;
	if (n->kind == K_MEM)
		nfs_mem_ref(n->id);
	if (!entry)
		fuse_reply_attr(req, &e.attr, e.attr_timeout);
	else if (fi)
		fuse_reply_create(req, &e, fi);
	else
		fuse_reply_entry(req, &e);
	return 0;
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	/* O_TRUNC comes with the open, so a query file rewritten later is seen as new. */
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	/* Big writes for /ingest copies. */
	conn->max_write = 1u << 20;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct nfs_node dir, n;
	int rc = nfs_node_of(parent, &dir);
	if (rc == 0)
		rc = nfs_lookup_child(FS(req), &dir, name, &n);
	if (rc == 0)
		rc = reply_node(req, &n, true, NULL);
	if (rc != 0)
		fuse_reply_err(req, rc);
}

static void forget_one(fuse_ino_t ino, uint64_t nlookup)
{
	struct nfs_node n;
	if (nfs_node_of(ino, &n) == 0 && n.kind == K_MEM)
		nfs_mem_forget(nfs_g, n.id, nlookup);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	forget_one(ino, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		forget_one(forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct nfs_node n;
	int rc = nfs_node_of(ino, &n);
	off_t psize = -1;
	if (rc == 0 && (n.kind == K_VEC || n.kind == K_META) && fi && fi->fh)
		psize = (off_t)((struct wbuf *)(uintptr_t)fi->fh)->len;
	else if (rc == 0 && n.kind == K_VEC)
		psize = pending_size(ino);
	if (psize >= 0) {
		/* Open for writing: the file is what has been written so far (a record
		 * being created has no other existence yet). */
		struct stat st;
		memset(&st, 0, sizeof(st));
		st.st_ino = ino;
		st.st_mode = S_IFREG | nfs_file_mode(FS(req), true);
		st.st_uid = FS(req)->dbst.st_uid;
		st.st_gid = FS(req)->dbst.st_gid;
		st.st_nlink = 1;
		st.st_size = psize;
		fuse_reply_attr(req, &st, 0);
		return;
	}
	if (rc == 0) {
		struct stat st;
		if ((rc = nfs_node_stat(FS(req), &n, &st)) == 0)
			fuse_reply_attr(req, &st, attr_timeout(FS(req), &n));
	}
	if (rc != 0)
		fuse_reply_err(req, rc);
}

static int resize(struct wbuf *w, size_t size)
{
	if (size > w->cap) {
		size_t nc = w->cap ? w->cap : 4096;
		while (nc < size)
			nc *= 2;
		char *d = realloc(w->data, nc);
		if (!d)
			return ENOMEM;
		w->data = d;
		w->cap = nc;
	}
	if (size > w->len)
		memset(w->data + w->len, 0, size - w->len);
	w->len = size;
	return 0;
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi)
{
	struct nfs *fs = FS(req);
	struct nfs_node n;
	int rc = nfs_node_of(ino, &n);
	if (rc == 0 && n.kind == K_MEM && (to_set & FUSE_SET_ATTR_MODE) && !(to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)))
		rc = nfs_mem_chmod(fs, n.id, attr->st_mode); /* cp -p, shutil.copy: a query file is its writer's */
	else if (rc == 0 && (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)))
		rc = EPERM; /* owner and mode are the database file's */
	if (rc == 0 && (to_set & FUSE_SET_ATTR_SIZE)) {
		if (n.kind == K_MEM) {
			rc = fi ? nfs_mem_truncate(fs, (struct mfile *)(uintptr_t)fi->fh, attr->st_size)
				: nfs_mem_truncate_ino(fs, n.id, attr->st_size);
		} else if (n.kind != K_VEC && n.kind != K_META) {
			rc = is_dir(n.kind) ? EISDIR : EROFS;
		} else if (n.slot != 0 || fs->o.read_only) {
			rc = EROFS;
		} else if (fi && fi->fh) {
			struct wbuf *w = (struct wbuf *)(uintptr_t)fi->fh;
			if ((rc = resize(w, (size_t)attr->st_size)) == 0)
				w->dirty = true;
		} else {
			/* truncate(2) without an open file: only to the size it has. */
			struct stat st;
			if ((rc = nfs_node_stat(fs, &n, &st)) == 0 && st.st_size != attr->st_size)
				rc = EINVAL;
		}
	}
	/* Times (touch, cp -p) are accepted and not kept: they are the records'. */
	if (rc == 0)
		rc = reply_node(req, &n, false, NULL);
	if (rc != 0)
		fuse_reply_err(req, rc);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct nfs_node n;
	int rc = nfs_node_of(ino, &n);
	if (rc == 0 && !is_dir(n.kind))
		rc = ENOTDIR;
	if (rc != 0)
		fuse_reply_err(req, rc);
	else
		fuse_reply_open(req, fi);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)fi;
	struct nfs_node n;
	int rc = nfs_node_of(ino, &n);
	char *buf = rc == 0 ? malloc(size) : NULL;
	size_t used = 0;
	if (rc == 0 && !buf)
		rc = ENOMEM;
	if (rc == 0)
		rc = nfs_readdir(FS(req), req, &n, buf, size, off, &used);
	if (rc == 0)
		fuse_reply_buf(req, buf, used);
	else
		fuse_reply_err(req, rc);
	free(buf);
}

static int open_record(struct nfs *fs, const struct nfs_node *n, struct fuse_file_info *fi)
{
	if ((fi->flags & O_ACCMODE) == O_RDONLY)
		return 0;
	if (n->slot != 0 || fs->o.read_only)
		return EROFS;
	struct wbuf *w = calloc(1, sizeof(*w));
	if (!w)
		return ENOMEM;
	w->node = *n;
	/* Without O_TRUNC a write may change part of the file: start from its bytes. */
	if (!(fi->flags & O_TRUNC)) {
		char *text;
		size_t len;
		int rc = nfs_record_read(fs, n, &text, &len);
		if (rc != 0 && rc != ENOENT) {
			free(w);
			return rc;
		}
		if (rc == 0) {
			w->data = text;
			w->len = w->cap = len;
		}
	}
	fi->fh = (uintptr_t)w;
	return 0;
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct nfs *fs = FS(req);
	struct nfs_node n;
	int rc = nfs_node_of(ino, &n);
	fi->fh = 0;
	if (rc == 0) {
		switch (n.kind) {
		case K_VEC:
		case K_META:
			rc = open_record(fs, &n, fi);
			break;
		case K_INFO:
		case K_ERRORS:
		case K_KNN: {
			if ((fi->flags & O_ACCMODE) != O_RDONLY) {
				rc = EROFS;
				break;
			}
			/* Made once for this open: reads of it are consistent. */
			struct made *m = calloc(1, sizeof(*m));
			if (!m || (rc = nfs_made_text(fs, &n, &m->text, &m->len)) != 0) {
				free(m);
				rc = rc ? rc : ENOMEM;
				break;
			}
			fi->fh = (uintptr_t)m;
			fi->direct_io = 1;
			break;
		}
		case K_MEM: {
			struct mfile *m;
			if ((rc = nfs_mem_open(fs, n.id, fi->flags, &m)) == 0) {
				fi->fh = (uintptr_t)m;
				fi->direct_io = 1; /* its bytes change under the page cache */
			}
			break;
		}
		default:
			rc = EISDIR;
		}
	}
	if (rc != 0)
		fuse_reply_err(req, rc);
	else
		fuse_reply_open(req, fi);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct nfs *fs = FS(req);
	struct nfs_node n;
	int rc = nfs_node_of(ino, &n);
	if (rc != 0) {
		fuse_reply_err(req, rc);
		return;
	}
	if (n.kind == K_MEM) {
		char *buf = malloc(size ? size : 1);
		size_t got = 0;
		rc = buf ? nfs_mem_read((struct mfile *)(uintptr_t)fi->fh, buf, size, off, &got) : ENOMEM;
		if (rc == 0)
			fuse_reply_buf(req, buf, got);
		else
			fuse_reply_err(req, rc);
		free(buf);
		return;
	}
	if (n.kind == K_INFO || n.kind == K_ERRORS || n.kind == K_KNN) {
		/* Replied from a copy: once the kernel has the reply, the RELEASE that
		 * frees the text may run in another thread while this one is still
		 * inside fuse_reply_buf (ASan's writev check reads the buffer after it). */
		struct made *m = (struct made *)(uintptr_t)fi->fh;
		size_t from = (size_t)off < m->len ? (size_t)off : m->len;
		size_t cnt = m->len - from < size ? m->len - from : size;
		char *copy = malloc(cnt ? cnt : 1);
		if (!copy) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
		memcpy(copy, m->text + from, cnt);
		fuse_reply_buf(req, copy, cnt);
		free(copy);
		return;
	}
	char *text;
	size_t len;
	if ((rc = nfs_record_read(fs, &n, &text, &len)) != 0) {
		fuse_reply_err(req, rc);
		return;
	}
	size_t from = (size_t)off < len ? (size_t)off : len;
	fuse_reply_buf(req, text + from, len - from < size ? len - from : size);
	free(text);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	struct nfs *fs = FS(req);
	struct nfs_node n;
	int rc = nfs_node_of(ino, &n);
	if (rc == 0 && n.kind == K_MEM) {
		rc = nfs_mem_write(fs, (struct mfile *)(uintptr_t)fi->fh, buf, size, off);
	} else if (rc == 0 && (n.kind == K_VEC || n.kind == K_META) && fi->fh) {
		struct wbuf *w = (struct wbuf *)(uintptr_t)fi->fh;
		size_t end = (size_t)off + size;
		if (end > fs->o.max_query) {
			rc = EFBIG;
		} else {
			if (end > w->len)
				rc = resize(w, end);
			if (rc == 0) {
				memcpy(w->data + off, buf, size);
				w->dirty = true;
			}
		}
	} else if (rc == 0) {
		rc = EROFS;
	}
	if (rc != 0)
		fuse_reply_err(req, rc);
	else
		fuse_reply_write(req, size);
}

static int store(struct nfs *fs, struct wbuf *w)
{
	if (!w->dirty)
		return 0;
	w->dirty = false;
	return nfs_record_write(fs, &w->node, w->data ? w->data : "", w->len);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct nfs *fs = FS(req);
	struct nfs_node n;
	int rc = nfs_node_of(ino, &n);
	if (rc == 0 && n.kind == K_MEM)
		rc = nfs_mem_flush(fs, (struct mfile *)(uintptr_t)fi->fh);
	else if (rc == 0 && (n.kind == K_VEC || n.kind == K_META) && fi->fh)
		rc = store(fs, (struct wbuf *)(uintptr_t)fi->fh);
	fuse_reply_err(req, rc);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct nfs *fs = FS(req);
	struct nfs_node n;
	if (nfs_node_of(ino, &n) == 0 && fi->fh) {
		if (n.kind == K_MEM) {
			nfs_mem_release(fs, (struct mfile *)(uintptr_t)fi->fh);
		} else if (n.kind == K_VEC || n.kind == K_META) {
			struct wbuf *w = (struct wbuf *)(uintptr_t)fi->fh;
			store(fs, w); /* written through a mapping, never flushed: the error goes to /errors */
			pending_remove(w);
			free(w->data);
			free(w);
		} else {
			struct made *m = (struct made *)(uintptr_t)fi->fh;
			free(m->text);
			free(m);
		}
	}
	fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino;
	(void)datasync;
	(void)fi;
	fuse_reply_err(req, 0); /* every commit is already durable */
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi)
{
	struct nfs *fs = FS(req);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct nfs_node dir, n;
	int rc = nfs_node_of(parent, &dir);
	if (rc == 0 && dir.slot != 0)
		rc = EROFS;
	if (rc != 0)
		goto out;
	switch (dir.kind) {
	case K_QUERYDIR:
	case K_INGESTDIR: {
		struct mfile *m;
		if ((rc = nfs_mem_create(fs, dir.kind, name, mode & ~ctx->umask, ctx->uid, ctx->gid, &n)) != 0)
			break;
		if ((rc = nfs_mem_open(fs, n.id, fi->flags, &m)) != 0) {
			nfs_mem_forget(fs, n.id, 1);
			break;
		}
		fi->fh = (uintptr_t)m;
		fi->direct_io = 1;
		struct fuse_entry_param e;
		memset(&e, 0, sizeof(e));
		nfs_mem_stat(fs, n.id, &e.attr);
		e.ino = e.attr.st_ino = nfs_ino(&n);
		fuse_reply_create(req, &e, fi);
		return;
	}
	case K_VECDIR: {
		/* A new record: its vector is stored when the file is closed. */
		n = (struct nfs_node){ .kind = K_VEC };
		if (fs->o.read_only) {
			rc = EROFS;
		} else if (!nfs_parse_id(name, strlen(name), &n.id)) {
			rc = EINVAL;
			nfs_log("create vectors/%s: not a record id (a decimal number below 2^64 - 1)", name);
		} else if ((rc = nfs_record_exists(fs, 0, n.id)) != ENOENT) {
			rc = rc == 0 ? EEXIST : rc;
		} else {
			struct wbuf *w = calloc(1, sizeof(*w));
			if (!w) {
				rc = ENOMEM;
				break;
			}
			w->node = n;
			fi->fh = (uintptr_t)w;
			struct fuse_entry_param e;
			memset(&e, 0, sizeof(e));
			e.attr.st_ino = e.ino = nfs_ino(&n);
			e.attr.st_mode = S_IFREG | nfs_file_mode(fs, true);
			e.attr.st_uid = fs->dbst.st_uid;
			e.attr.st_gid = fs->dbst.st_gid;
			e.attr.st_nlink = 1;
			pending_add(e.ino, w);
			fuse_reply_create(req, &e, fi);
			return;
		}
		break;
	}
	case K_METADIR:
		rc = fs->o.read_only ? EROFS : ENOENT; /* a document belongs to a record: write vectors/<id> first */
		break;
	case K_ROOT:
	case K_KNNDIR:
	case K_KNNK:
	case K_SNAPDIR:
		rc = EPERM;
		break;
	default:
		rc = ENOTDIR;
	}
out:
	fuse_reply_err(req, rc);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct nfs *fs = FS(req);
	struct nfs_node dir;
	uint64_t id;
	int rc = nfs_node_of(parent, &dir);
	if (rc == 0 && dir.slot != 0)
		rc = EROFS;
	else if (rc == 0 && dir.kind == K_VECDIR)
		rc = nfs_parse_id(name, strlen(name), &id) ? nfs_record_delete(fs, id) : ENOENT;
	else if (rc == 0 && (dir.kind == K_QUERYDIR || dir.kind == K_INGESTDIR))
		rc = nfs_mem_unlink(fs, dir.kind, name);
	else if (rc == 0 && dir.kind == K_METADIR)
		rc = fs->o.read_only ? EROFS : EPERM; /* `rm vectors/<id>` deletes the record */
	else if (rc == 0)
		rc = fs->o.read_only ? EROFS : EPERM;
	fuse_reply_err(req, rc);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	(void)mode;
	struct nfs *fs = FS(req);
	struct nfs_node dir, n;
	int rc = nfs_node_of(parent, &dir);
	if (rc == 0 && (dir.kind != K_SNAPDIR || dir.slot != 0))
		rc = dir.slot != 0 ? EROFS : EPERM;
	if (rc == 0 && (rc = nfs_snap_mkdir(fs, name)) == 0 && (rc = nfs_lookup_child(fs, &dir, name, &n)) == 0)
		rc = reply_node(req, &n, true, NULL);
	if (rc != 0)
		fuse_reply_err(req, rc);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct nfs_node dir;
	int rc = nfs_node_of(parent, &dir);
	if (rc == 0 && (dir.kind != K_SNAPDIR || dir.slot != 0))
		rc = dir.slot != 0 ? EROFS : EPERM;
	if (rc == 0)
		rc = nfs_snap_rmdir(FS(req), name);
	fuse_reply_err(req, rc);
}

/* rename(2): within /queries and /ingest a file is renamed (and runs or is imported
 * if its new name says so, memdir.c). Across directories EXDEV, so that mv copies and
 * unlinks through the paths that work; elsewhere the layout's names are fixed. */
static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent, const char *newname,
		      unsigned int flags)
{
	struct nfs *fs = FS(req);
	struct nfs_node dir, ndir;
	int rc = nfs_node_of(parent, &dir);
	if (rc == 0)
		rc = nfs_node_of(newparent, &ndir);
	if (rc != 0)
		;
	else if (parent != newparent)
		rc = EXDEV;
	else if (dir.slot != 0)
		rc = EROFS; /* a snapshot */
	else if (dir.kind == K_QUERYDIR || dir.kind == K_INGESTDIR)
		rc = nfs_mem_rename(fs, dir.kind, name, newname, flags);
	else if (dir.kind == K_KNNDIR || dir.kind == K_KNNK)
		rc = EROFS;
	else
		/* /vectors, /meta (an id is not renamed: copy the record and rm it), the
		 * snapshots' names, the root's fixed names */
		rc = fs->o.read_only ? EROFS : EPERM;
	fuse_reply_err(req, rc);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	(void)ino;
	struct nfs *fs = FS(req);
	struct statvfs sv;
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = sv.f_frsize = 4096;
	sv.f_blocks = (fsblkcnt_t)((fs->dbst.st_size + 4095) / 4096);
	sv.f_files = (fsfilcnt_t)fs->info.count;
	sv.f_namemax = 255;
	fuse_reply_statfs(req, &sv);
}

const struct fuse_lowlevel_ops nfs_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.release = op_release,
	.fsync = op_fsync,
	.create = op_create,
	.unlink = op_unlink,
	.mkdir = op_mkdir,
	.rmdir = op_rmdir,
	.rename = op_rename,
	.statfs = op_statfs,
};
