/* The layout: which inode and which name mean what, their attributes and the
 * directory listings. Handlers (fs.c) stay thin by asking here.
 *
 *   /info /errors /vectors/<id> /meta/<id>.json /knn/<k>/<id>.json
 *   /ingest/ /queries/ /.snapshots/<name>/{info,vectors,meta,knn}
 *
 * Inode numbers mean something (as in libfuse's passthrough_ll): they are computed
 * from what they name, so they are stable for the daemon's life and across a
 * remount, and no table grows with the number of records listed:
 *   bits 58-63 kind, 46-57 snapshot slot, 0-45 the id (or k, or a serial).
 * A knn file holds k - 1 in bits 36-45 and the id below. Ids that do not fit (2^46
 * and above; 2^36 for knn files) get numbers from a table instead (K_FAR), entered
 * on first lookup and kept: only files someone looked up are in it. */
#include "nusterfs.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KIND_SHIFT 58
#define SLOT_SHIFT 46
#define VAL_MASK ((UINT64_C(1) << SLOT_SHIFT) - 1)
#define KNN_ID_BITS 36

/* ---- the far table ---- */

static pthread_mutex_t far_mu = PTHREAD_MUTEX_INITIALIZER;
static struct nfs_node *far;
static size_t nfar, capfar;
static uint32_t *far_hash; /* open addressing: index + 1, 0 empty */
static size_t hcap;

static uint64_t node_hash(const struct nfs_node *n)
{
	uint64_t h = n->id * UINT64_C(0x9E3779B97F4A7C15);
	h ^= ((uint64_t)n->kind << 40) ^ ((uint64_t)n->slot << 20) ^ n->k;
	return h ^ (h >> 29);
}

static bool same(const struct nfs_node *a, const struct nfs_node *b)
{
	return a->kind == b->kind && a->slot == b->slot && a->id == b->id && a->k == b->k;
}

static uint64_t far_ino(const struct nfs_node *n)
{
	pthread_mutex_lock(&far_mu);
	uint64_t ret = 0;
	if (nfar + 1 > hcap / 2) {
		size_t nh = hcap ? hcap * 2 : 1024;
		uint32_t *t = calloc(nh, sizeof(*t));
		if (!t)
			goto out;
		for (size_t i = 0; i < nfar; i++) {
			size_t j = node_hash(&far[i]) & (nh - 1);
			while (t[j])
				j = (j + 1) & (nh - 1);
			t[j] = (uint32_t)(i + 1);
		}
		free(far_hash);
		far_hash = t;
		hcap = nh;
	}
	size_t j = node_hash(n) & (hcap - 1);
	while (far_hash[j]) {
		if (same(&far[far_hash[j] - 1], n)) {
			ret = far_hash[j];
			goto out;
		}
		j = (j + 1) & (hcap - 1);
	}
	if (nfar == capfar) {
		size_t nc = capfar ? capfar * 2 : 256;
		struct nfs_node *t = realloc(far, nc * sizeof(*t));
		if (!t)
			goto out;
		far = t;
		capfar = nc;
	}
	far[nfar++] = *n;
	far_hash[j] = (uint32_t)nfar;
	ret = nfar;
out:
	pthread_mutex_unlock(&far_mu);
	return ret ? ((uint64_t)K_FAR << KIND_SHIFT) | ret : 0;
}

fuse_ino_t nfs_ino(const struct nfs_node *n)
{
	uint64_t base = ((uint64_t)n->kind << KIND_SHIFT) | ((uint64_t)n->slot << SLOT_SHIFT);
	switch (n->kind) {
	case K_ROOT:
		return n->slot == 0 ? FUSE_ROOT_ID : base;
	case K_VEC:
	case K_META:
		if (n->id <= VAL_MASK)
			return base | n->id;
		return far_ino(n);
	case K_KNNK:
		return base | n->k;
	case K_KNN:
		if (n->id < (UINT64_C(1) << KNN_ID_BITS))
			return base | ((uint64_t)(n->k - 1) << KNN_ID_BITS) | n->id;
		return far_ino(n);
	case K_MEM:
		return base | (n->id & VAL_MASK);
	default:
		return base;
	}
}

int nfs_node_of(fuse_ino_t ino, struct nfs_node *out)
{
	memset(out, 0, sizeof(*out));
	if (ino == FUSE_ROOT_ID) {
		out->kind = K_ROOT;
		return 0;
	}
	out->kind = (enum nfs_kind)(ino >> KIND_SHIFT);
	out->slot = (unsigned)((ino >> SLOT_SHIFT) & 0xfff);
	uint64_t v = ino & VAL_MASK;
	switch (out->kind) {
	case K_VEC:
	case K_META:
	case K_MEM:
		out->id = v;
		return 0;
	case K_KNNK:
		out->k = (unsigned)v;
		return 0;
	case K_KNN:
		out->k = (unsigned)(v >> KNN_ID_BITS) + 1;
		out->id = v & ((UINT64_C(1) << KNN_ID_BITS) - 1);
		return 0;
	case K_FAR: {
		pthread_mutex_lock(&far_mu);
		int rc = ino - ((uint64_t)K_FAR << KIND_SHIFT) - 1 < nfar ? 0 : ENOENT;
		if (rc == 0)
			*out = far[ino - ((uint64_t)K_FAR << KIND_SHIFT) - 1];
		pthread_mutex_unlock(&far_mu);
		return rc;
	}
	default:
		return out->kind >= K_ROOT && out->kind <= K_SNAPDIR ? 0 : ENOENT;
	}
}

bool nfs_parse_id(const char *s, size_t len, uint64_t *out)
{
	if (len == 0 || len > 20 || (s[0] == '0' && len > 1))
		return false;
	uint64_t v = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	if (v == NVF_NO_ID)
		return false;
	*out = v;
	return true;
}

/* ---- modes ---- */

mode_t nfs_file_mode(struct nfs *fs, bool writable)
{
	mode_t m = fs->dbst.st_mode & 0666;
	if (!writable || fs->o.read_only)
		m &= (mode_t)~0222;
	return m;
}

mode_t nfs_dir_mode(struct nfs *fs, bool writable)
{
	mode_t m = nfs_file_mode(fs, writable);
	return m | ((m & 0444) >> 2);
}

/* /queries: whoever may read the database may search it (a query changes nothing),
 * so each class that has read permission gets rwx. */
static mode_t query_dir_mode(struct nfs *fs)
{
	mode_t r = fs->dbst.st_mode & 0444;
	/* Sticky, as /tmp: a user removes only the files they created. */
	return S_ISVTX | r | (r >> 1) | (r >> 2);
}

/* ---- names ---- */

struct entry {
	const char *name;
	enum nfs_kind kind;
	bool live_only; /* not in a snapshot's tree */
};

static const struct entry root_entries[] = {
	{ "info", K_INFO, false },     { "errors", K_ERRORS, true },  { "vectors", K_VECDIR, false },
	{ "meta", K_METADIR, false },  { "knn", K_KNNDIR, false },    { "ingest", K_INGESTDIR, true },
	{ "queries", K_QUERYDIR, true }, { ".snapshots", K_SNAPDIR, true },
};
#define NROOT (sizeof(root_entries) / sizeof(root_entries[0]))

int nfs_record_exists(struct nfs *fs, unsigned slot, uint64_t id)
{
	for (int tries = 0;; tries++) {
		uint64_t gen;
		nvf_db *db = nfs_db_get(fs, &gen);
		nvf_txn *txn = NULL;
		int rc = nfs_view_begin(fs, db, slot, &txn);
		if (rc == 0)
			rc = nvf_contains(db, txn, id);
		nvf_txn_abort(txn);
		nfs_db_put(fs);
		if (rc == NVF_ESTALE && tries == 0 && nfs_db_reopen(fs, gen) == 0)
			continue;
		return rc == 1 ? 0 : rc == 0 ? ENOENT : nfs_errno(rc);
	}
}

static bool ends_with(const char *s, size_t len, const char *suf, size_t *stem)
{
	size_t sl = strlen(suf);
	if (len < sl || memcmp(s + len - sl, suf, sl) != 0)
		return false;
	*stem = len - sl;
	return true;
}

int nfs_lookup_child(struct nfs *fs, const struct nfs_node *dir, const char *name, struct nfs_node *out)
{
	memset(out, 0, sizeof(*out));
	out->slot = dir->slot;
	size_t len = strlen(name), stem;
	switch (dir->kind) {
	case K_ROOT:
		for (size_t i = 0; i < NROOT; i++)
			if (strcmp(name, root_entries[i].name) == 0 && (dir->slot == 0 || !root_entries[i].live_only)) {
				out->kind = root_entries[i].kind;
				return 0;
			}
		return ENOENT;
	case K_VECDIR:
		out->kind = K_VEC;
		if (!nfs_parse_id(name, len, &out->id))
			return ENOENT;
		return nfs_record_exists(fs, dir->slot, out->id);
	case K_METADIR:
		out->kind = K_META;
		if (!ends_with(name, len, ".json", &stem) || !nfs_parse_id(name, stem, &out->id))
			return ENOENT;
		return nfs_record_exists(fs, dir->slot, out->id);
	case K_KNNDIR: {
		uint64_t k;
		if (!nfs_parse_id(name, len, &k) || k < 1 || k > NFS_MAX_K)
			return ENOENT;
		out->kind = K_KNNK;
		out->k = (unsigned)k;
		return 0;
	}
	case K_KNNK:
		out->kind = K_KNN;
		out->k = dir->k;
		if (!ends_with(name, len, ".json", &stem) || !nfs_parse_id(name, stem, &out->id))
			return ENOENT;
		return nfs_record_exists(fs, dir->slot, out->id);
	case K_SNAPDIR: {
		int rc = nfs_snap_exists(fs, name);
		if (rc != 0)
			return rc;
		unsigned slot = nfs_snap_slot(name);
		if (!slot)
			return ENOSPC;
		out->kind = K_ROOT;
		out->slot = slot;
		return 0;
	}
	case K_QUERYDIR:
	case K_INGESTDIR:
		return nfs_mem_lookup(fs, dir->kind, name, out);
	default:
		return ENOTDIR;
	}
}

/* ---- attributes ---- */

static void times_of(struct stat *st, int64_t us)
{
	st->st_mtim.tv_sec = us / 1000000;
	st->st_mtim.tv_nsec = (us % 1000000) * 1000;
	st->st_ctim = st->st_mtim;
	st->st_atim = st->st_mtim;
}

int nfs_node_stat(struct nfs *fs, const struct nfs_node *n, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = nfs_ino(n);
	st->st_uid = fs->dbst.st_uid;
	st->st_gid = fs->dbst.st_gid;
	st->st_blksize = 4096;
	st->st_mtim = fs->dbst.st_mtim;
	st->st_ctim = fs->dbst.st_ctim;
	st->st_atim = fs->dbst.st_atim;
	bool live = n->slot == 0;
	st->st_nlink = 1;
	switch (n->kind) {
	case K_ROOT:
	case K_VECDIR:
	case K_METADIR:
	case K_KNNDIR:
	case K_KNNK:
	case K_SNAPDIR:
	case K_INGESTDIR:
		st->st_nlink = 2;
		st->st_mode = S_IFDIR | nfs_dir_mode(fs, live && (n->kind == K_VECDIR || n->kind == K_SNAPDIR ||
								   n->kind == K_INGESTDIR));
		return 0;
	case K_QUERYDIR:
		st->st_nlink = 2;
		st->st_mode = S_IFDIR | query_dir_mode(fs);
		return 0;
	case K_MEM:
		return nfs_mem_stat(fs, n->id, st);
	case K_VEC:
	case K_META: {
		st->st_mode = S_IFREG | nfs_file_mode(fs, live);
		if (n->kind == K_VEC) {
			/* A vector's size is the collection's: no read needed. */
			nvf_record_info ri;
			int rc = NVF_ENOTFOUND;
			for (int tries = 0; tries < 2; tries++) {
				uint64_t gen;
				nvf_db *db = nfs_db_get(fs, &gen);
				nvf_txn *txn = NULL;
				rc = nfs_view_begin(fs, db, n->slot, &txn);
				if (rc == 0)
					rc = nvf_record_info_get(db, txn, n->id, &ri);
				nvf_txn_abort(txn);
				nfs_db_put(fs);
				if (rc != NVF_ESTALE || nfs_db_reopen(fs, gen) != 0)
					break;
			}
			if (rc != 0)
				return nfs_errno(rc);
			st->st_size = (off_t)fs->info.dim * 4;
			times_of(st, ri.updated_us);
			st->st_blocks = (st->st_size + 511) / 512;
			return 0;
		}
		char *text;
		size_t len;
		int e = nfs_record_read(fs, n, &text, &len);
		if (e != 0)
			return e;
		free(text);
		st->st_size = (off_t)len;
		st->st_blocks = (st->st_size + 511) / 512;
		return 0;
	}
	case K_INFO:
	case K_ERRORS:
	case K_KNN: {
		st->st_mode = S_IFREG | (nfs_file_mode(fs, false) & 0444);
		char *text;
		size_t len;
		int e = nfs_made_text(fs, n, &text, &len);
		if (e != 0)
			return e;
		free(text);
		st->st_size = (off_t)len;
		st->st_blocks = (st->st_size + 511) / 512;
		return 0;
	}
	default:
		return ENOENT;
	}
}

/* ---- listings ---- */

/* Whether an entry fits: fuse_add_direntry() says how much it needs. */
static bool add(fuse_req_t req, char *buf, size_t size, size_t *used, const char *name, fuse_ino_t ino, mode_t type,
		off_t next)
{
	struct stat st;
	memset(&st, 0, sizeof(st));
	st.st_ino = ino;
	st.st_mode = type;
	size_t need = fuse_add_direntry(req, buf + *used, size - *used, name, &st, next);
	if (need > size - *used)
		return false;
	*used += need;
	return true;
}

/* Up to max live ids from `from` up, ascending, in out. libnvf has no cursor over
 * ids (reported), so: probe ids one by one with nvf_contains (a B+tree lookup each)
 * while they are dense, and when a run of misses shows they are sparse, ask
 * nvf_filter_ids for a window of ids sized from the density, widening it until
 * something is found. Memory stays bounded by the window, never the collection. */
static int next_ids(nvf_db *db, nvf_txn *txn, uint64_t from, size_t max, uint64_t *out, size_t *n)
{
	nvf_info info;
	int rc = nvf_db_info(db, txn, &info);
	if (rc != 0)
		return rc;
	*n = 0;
	uint64_t end = info.next_id; /* every id is below it */
	size_t misses = 0;
	uint64_t id = from;
	while (id < end && *n < max && misses < 4096) {
		rc = nvf_contains(db, txn, id);
		if (rc < 0)
			return rc;
		if (rc == 1)
			out[(*n)++] = id;
		else
			misses++;
		id++;
	}
	if (id >= end || *n == max || *n > 0)
		return 0;
	double density = end ? (double)info.count / (double)end : 1.0;
	if (density <= 0)
		return 0;
	double w = (double)max / density * 2;
	while (id < end && *n == 0) {
		uint64_t hi = w >= (double)(end - id) ? end : id + (uint64_t)w;
		if (hi > (uint64_t)INT64_MAX)
			hi = (uint64_t)INT64_MAX;
		if (hi <= id)
			break;
		char expr[96];
		snprintf(expr, sizeof(expr), "id >= %" PRIu64 " AND id < %" PRIu64, id, hi);
		nvf_filter *f;
		if ((rc = nvf_filter_compile(&f, expr)) != 0)
			return rc;
		uint64_t *ids;
		size_t cnt;
		rc = nvf_filter_ids(db, txn, f, &ids, &cnt);
		nvf_filter_free(f);
		if (rc != 0)
			return rc;
		for (size_t i = 0; i < cnt && *n < max; i++)
			out[(*n)++] = ids[i];
		nvf_free(ids);
		id = hi;
		w *= 4;
	}
	return 0;
}

/* A directory of one entry per record: offsets 1 and 2 are "." and "..", then an
 * entry for id x is followed by offset x + 3, so a listing resumes at the id after
 * the last one returned, however many there are and whatever changed meanwhile. */
static int list_ids(struct nfs *fs, fuse_req_t req, const struct nfs_node *dir, char *buf, size_t size, off_t off,
		    size_t *used)
{
	uint64_t from = off < 2 ? 0 : (uint64_t)off - 2;
	size_t max = size / 24 + 1;
	uint64_t *ids = malloc(max * sizeof(*ids));
	if (!ids)
		return ENOMEM;
	int rc;
	size_t n = 0;
	for (int tries = 0; tries < 2; tries++) {
		uint64_t gen;
		nvf_db *db = nfs_db_get(fs, &gen);
		nvf_txn *txn = NULL;
		rc = nfs_view_begin(fs, db, dir->slot, &txn);
		if (rc == 0)
			rc = next_ids(db, txn, from, max, ids, &n);
		nvf_txn_abort(txn);
		nfs_db_put(fs);
		if (rc != NVF_ESTALE || nfs_db_reopen(fs, gen) != 0)
			break;
	}
	if (rc != 0) {
		free(ids);
		return nfs_errno(rc);
	}
	struct nfs_node c = { .slot = dir->slot, .k = dir->k };
	c.kind = dir->kind == K_VECDIR ? K_VEC : dir->kind == K_METADIR ? K_META : K_KNN;
	const char *suffix = c.kind == K_VEC ? "" : ".json";
	for (size_t i = 0; i < n; i++) {
		/* Offsets are off_t: ids from 2^63 - 3 up cannot be resumed after, so the
		 * listing ends before them (they still open by name). */
		if (ids[i] >= (uint64_t)INT64_MAX - 3)
			break;
		char name[32];
		snprintf(name, sizeof(name), "%" PRIu64 "%s", ids[i], suffix);
		c.id = ids[i];
		if (!add(req, buf, size, used, name, nfs_ino(&c), S_IFREG, (off_t)(ids[i] + 3)))
			break;
	}
	free(ids);
	return 0;
}

int nfs_readdir(struct nfs *fs, fuse_req_t req, const struct nfs_node *dir, char *buf, size_t size, off_t off,
		size_t *used)
{
	*used = 0;
	struct nfs_node parent = { .kind = K_ROOT, .slot = dir->slot };
	if (dir->kind == K_ROOT && dir->slot != 0)
		parent.kind = K_SNAPDIR, parent.slot = 0;
	if (dir->kind == K_ROOT && dir->slot == 0)
		parent = *dir;
	if (dir->kind == K_KNNK)
		parent.kind = K_KNNDIR;
	if (off < 1 && !add(req, buf, size, used, ".", nfs_ino(dir), S_IFDIR, 1))
		return 0;
	if (off < 2 && !add(req, buf, size, used, "..", nfs_ino(&parent), S_IFDIR, 2))
		return 0;
	switch (dir->kind) {
	case K_ROOT:
		for (size_t i = off < 2 ? 0 : (size_t)off - 2; i < NROOT; i++) {
			if (dir->slot != 0 && root_entries[i].live_only)
				continue;
			struct nfs_node c = { .kind = root_entries[i].kind, .slot = dir->slot };
			bool isdir = c.kind != K_INFO && c.kind != K_ERRORS;
			if (!add(req, buf, size, used, root_entries[i].name, nfs_ino(&c), isdir ? S_IFDIR : S_IFREG,
				 (off_t)i + 3))
				break;
		}
		return 0;
	case K_VECDIR:
	case K_METADIR:
	case K_KNNK:
		return list_ids(fs, req, dir, buf, size, off, used);
	case K_KNNDIR:
		return 0; /* any k from 1 to NFS_MAX_K opens; listing them all would say nothing */
	case K_SNAPDIR:
		return nfs_snap_readdir(fs, req, buf, size, off < 2 ? 0 : off - 2, used);
	case K_QUERYDIR:
	case K_INGESTDIR:
		return nfs_mem_readdir(fs, req, dir->kind, buf, size, off < 2 ? 0 : off - 2, used);
	default:
		return ENOTDIR;
	}
}
