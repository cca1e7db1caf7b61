/* Arrays of fixed-size rows over a B+tree of chunk extents (see array.h). */
#include "array.h"

#include <errno.h>
#include <stdlib.h>

static uint32_t pick_shift(uint32_t stride, uint32_t chunk_bytes, uint32_t psize)
{
	/* Powers of two of rows between half and twice the target; the one wasting
	 * least of its last page wins (784 floats: 64 rows fill 49 pages exactly). */
	uint32_t best = 0;
	double best_waste = 2.0;
	for (uint32_t s = 0; s <= 12; s++) {
		uint64_t bytes = (uint64_t)stride << s;
		if (bytes > 2 * (uint64_t)chunk_bytes && s > 0)
			break;
		if (bytes * 2 < chunk_bytes && s < 12)
			continue;
		uint64_t pages = (bytes + psize - 1) / psize;
		double waste = (double)(pages * psize - bytes) / (double)(pages * psize);
		if (waste < best_waste - 1e-9) {
			best_waste = waste;
			best = s;
		}
	}
	return best;
}

/* Write transactions: room for `need` entries in the private table, new ones
 * unresolved. */
static int table_grow(nvf_array *a, uint64_t need)
{
	if (need <= a->alloc)
		return 0;
	uint64_t n = a->alloc ? a->alloc : 16;
	while (n < need)
		n *= 2;
	const uint8_t **b = realloc((void *)a->base, n * sizeof(*b));
	if (!b)
		return nvf__oom();
	a->base = b;
	uint32_t *c = realloc(a->cap, n * sizeof(*c));
	if (!c)
		return nvf__oom();
	a->cap = c;
	uint8_t *d = realloc(a->dirty, n);
	if (!d)
		return nvf__oom();
	a->dirty = d;
	memset((void *)(a->base + a->alloc), 0, (n - a->alloc) * sizeof(*b));
	memset(a->cap + a->alloc, 0, (n - a->alloc) * sizeof(*c));
	memset(a->dirty + a->alloc, 0, n - a->alloc);
	a->alloc = n;
	return 0;
}

const uint8_t *nvf__array_resolve(nvf_array *a, uint64_t k)
{
	nvf_val v;
	int rc = NVF_ENOTFOUND;
	uint64_t need = 0;
	if (k < a->nchunks) {
		need = nvf__array_chunk_rows(a, k, a->t->d.aux);
		rc = nvf__tree_get(a->txn, &a->t->d, k, &v);
	}
	if (rc == 0 && (!v.extent || v.len % a->stride || v.len / a->stride > a->mask + 1 || v.len / a->stride < need))
		rc = NVF_ECORRUPT;
	if (rc == 0) {
		__atomic_store_n(&a->cap[k], (uint32_t)(v.len / a->stride), __ATOMIC_RELAXED);
		__atomic_store_n(&a->base[k], v.data, __ATOMIC_RELEASE);
		return v.data;
	}
	/* Damage (or a row past the end: a bug of ours). Remember it, and hand out
	 * zeros rather than crash; the operation reports the error. */
	int e = nvf__err(NVF_ECORRUPT, "array %llu: chunk %llu %s", (unsigned long long)a->id, (unsigned long long)k,
			 rc == NVF_ENOTFOUND ? "is missing" : "is damaged or of the wrong size");
	__atomic_store_n(&a->err, e, __ATOMIC_RELAXED);
	uint8_t *z = __atomic_load_n(&a->zero, __ATOMIC_ACQUIRE);
	if (!z) {
		uint8_t *fresh = calloc(1, (size_t)a->stride << a->shift);
		if (!fresh)
			abort(); /* no memory to stand in for a damaged chunk: nothing sane left */
		if (__atomic_compare_exchange_n(&a->zero, &z, fresh, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			z = fresh;
		else
			free(fresh);
	}
	return z;
}

int nvf__arrays_err(nvf_txn *txn)
{
	for (nvf_array *a = txn->arrays; a; a = a->next) {
		int e = __atomic_load_n(&a->err, __ATOMIC_RELAXED);
		if (e)
			return nvf__err(e, "array %llu of the collection is damaged (run nvf_check)",
					(unsigned long long)a->id);
	}
	return 0;
}

static void chunkmap_unref(nvf_chunkmap *m)
{
	if (m && atomic_fetch_sub(&m->refs, 1) == 1) {
		free((void *)m->base);
		free(m->cap);
		free(m);
	}
}

void nvf__chunkmap_cache_free(nvf_db *db)
{
	for (nvf_chunkmap *m = db->chunkmaps, *n; m; m = n) {
		n = m->next;
		chunkmap_unref(m);
	}
	db->chunkmaps = NULL;
}

/* Read transactions: find or make the shared table for this state of the tree. The
 * same root page written by the same transaction means the same content. */
static int borrow_table(nvf_txn *txn, nvf_array *a)
{
	nvf_db *db = txn->db;
	uint64_t root = a->t->d.root, root_txnid = 0;
	if (root) {
		const uint8_t *p;
		int rc = nvf__page_ref(txn, root, 1, &p);
		if (rc != 0)
			return rc;
		root_txnid = ((const struct nvf_disk_page *)p)->txnid;
	}
	pthread_mutex_lock(&db->cache_mutex);
	nvf_chunkmap *m;
	for (m = db->chunkmaps; m; m = m->next)
		if (m->tree_id == a->id && m->root == root && m->root_txnid == root_txnid && m->nchunks == a->nchunks)
			break;
	if (!m) {
		m = calloc(1, sizeof(*m));
		if (m) {
			m->tree_id = a->id;
			m->root = root;
			m->root_txnid = root_txnid;
			m->nchunks = a->nchunks;
			/* Zeroed (unresolved): calloc hands large tables out as untouched
			 * pages, so this costs nothing like their size. */
			m->base = calloc(a->nchunks + 1, sizeof(*m->base));
			m->cap = calloc(a->nchunks + 1, sizeof(*m->cap));
			atomic_init(&m->refs, 1); /* the cache's */
		}
		if (!m || !m->base || !m->cap) {
			pthread_mutex_unlock(&db->cache_mutex);
			if (m)
				chunkmap_unref(m);
			return nvf__oom();
		}
		m->next = db->chunkmaps;
		db->chunkmaps = m;
		/* Keep the newest few tables per tree. */
		int kept = 0;
		for (nvf_chunkmap **pp = &db->chunkmaps; *pp;) {
			if ((*pp)->tree_id == a->id && ++kept > 3) {
				nvf_chunkmap *old = *pp;
				*pp = old->next;
				chunkmap_unref(old);
			} else {
				pp = &(*pp)->next;
			}
		}
	}
	atomic_fetch_add(&m->refs, 1);
	pthread_mutex_unlock(&db->cache_mutex);
	a->shared = m;
	a->base = m->base;
	a->cap = m->cap;
	return 0;
}

static void array_free(nvf_array *a)
{
	if (a->shared) {
		chunkmap_unref(a->shared);
	} else {
		free((void *)a->base);
		free(a->cap);
	}
	free(a->dirty);
	free(a->zero);
	free(a);
}

int nvf__array_open(nvf_txn *txn, uint64_t id, uint32_t stride, uint32_t chunk_bytes, nvf_array **out)
{
	for (nvf_array *a = txn->arrays; a; a = a->next) {
		if (a->id == id) {
			*out = a;
			return 0;
		}
	}
	bool write = (txn->flags & NVF_TXN_F_WRITE) != 0;
	nvf_tree *t;
	int rc = nvf__tree_open(txn, id, write && stride ? NVF_TREE_KIND_ARRAY : -1, &t);
	if (rc != 0)
		return rc;
	if (t->d.kind != NVF_TREE_KIND_ARRAY)
		return nvf__err(NVF_ECORRUPT, "tree %llu is not an array", (unsigned long long)id);
	if (t->d.aux32 == 0) {
		/* New: fix its layout. */
		if (stride == 0 || stride >= NVF_ARRAY_MAX_STRIDE)
			return nvf__err(NVF_EINVAL, "array row of %u bytes", stride);
		t->d.aux32 = stride | pick_shift(stride, chunk_bytes, txn->db->psize) << 24;
	}
	nvf_array *a = calloc(1, sizeof(*a));
	if (!a)
		return nvf__oom();
	a->t = t;
	a->id = id;
	a->txn = txn;
	a->stride = t->d.aux32 & (NVF_ARRAY_MAX_STRIDE - 1);
	a->shift = t->d.aux32 >> 24;
	if (a->stride == 0 || a->shift > 12 || (stride && stride != a->stride)) {
		rc = nvf__err(NVF_ECORRUPT, "array %llu: row size %u, chunk shift %u", (unsigned long long)id,
			      a->stride, a->shift);
		free(a);
		return rc;
	}
	a->mask = (UINT64_C(1) << a->shift) - 1;
	/* The row count comes from the file: its chunks must fit in the pages the
	 * state has (each chunk is at least a page; 4x and a margin leave room for a
	 * transaction's chunks not yet written), else the chunk table would be
	 * allocated from a damaged number. */
	a->nchunks = t->d.aux > UINT64_MAX - a->mask ? UINT64_MAX : (t->d.aux + a->mask) >> a->shift;
	if (a->nchunks > 4 * txn->npages + 64) {
		rc = nvf__err(NVF_ECORRUPT, "array %llu: %llu rows in chunks of %llu, more than a file of %llu pages holds",
			      (unsigned long long)id, (unsigned long long)t->d.aux, (unsigned long long)a->mask + 1,
			      (unsigned long long)txn->npages);
		free(a);
		return rc;
	}
	/* A transaction that verifies what it reads cannot borrow chunks that other
	 * transactions of the handle resolved without checking them. */
	rc = write || (txn->flags & NVF_TXN_F_VERIFY) ? table_grow(a, a->nchunks + 1) : borrow_table(txn, a);
	if (rc != 0) {
		array_free(a);
		return rc;
	}
	a->next = txn->arrays;
	txn->arrays = a;
	*out = a;
	return 0;
}

/* Make chunk k writable with room for `rows` rows (copy-on-write, or grow). */
static int chunk_writable(nvf_array *a, nvf_txn *txn, uint64_t k, uint32_t rows)
{
	uint32_t full = (uint32_t)(a->mask + 1);
	if (k < a->nchunks && !a->base[k]) {
		nvf__array_resolve(a, k);
		if (a->err)
			return nvf__txn_fail(txn, a->err);
	}
	if (a->dirty[k] && a->cap[k] >= rows)
		return 0;
	uint32_t cap = a->cap[k];
	if (cap < rows) {
		/* Grow geometrically up to a full chunk, at least a page's worth. */
		uint32_t want = cap * 2 > rows ? cap * 2 : rows;
		uint32_t page_rows = txn->db->psize / a->stride;
		if (want < page_rows)
			want = page_rows;
		cap = want < full ? want : full;
	}
	uint64_t len = (uint64_t)cap * a->stride;
	uint8_t *buf;
	int rc;
	if (a->base[k] && !a->dirty[k] && cap == a->cap[k]) {
		/* Plain copy-on-write: the old extent stays readable for the copy. */
		rc = nvf__tree_extent_mut(txn, &a->t->d, k, &buf, &len);
	} else {
		/* New or growing: copy what there is aside first, since replacing a
		 * dirty extent releases its buffer. */
		uint8_t *old = NULL;
		size_t oldlen = (size_t)a->cap[k] * a->stride;
		if (a->base[k] && oldlen) {
			old = malloc(oldlen);
			if (!old)
				return nvf__oom();
			memcpy(old, a->base[k], oldlen);
		}
		rc = nvf__tree_put(txn, &a->t->d, k, NULL, len, NVF_PUT_EXTENT | NVF_PUT_RESERVE, &buf);
		if (rc == 0 && old)
			memcpy(buf, old, oldlen);
		free(old);
	}
	if (rc != 0)
		return nvf__txn_fail(txn, rc);
	__atomic_store_n(&a->cap[k], cap, __ATOMIC_RELAXED);
	__atomic_store_n(&a->base[k], buf, __ATOMIC_RELEASE);
	a->dirty[k] = 1;
	return 0;
}

int nvf__array_prepare(nvf_array *a, nvf_txn *txn, uint64_t from, uint64_t to)
{
	int rc = nvf__txn_writable(txn);
	if (rc != 0 || from >= to)
		return rc;
	uint64_t last = (to - 1) >> a->shift;
	if ((rc = table_grow(a, last + 2)) != 0)
		return rc;
	for (uint64_t k = from >> a->shift; k <= last; k++) {
		uint64_t end = (k + 1) << a->shift;
		if (end > to)
			end = to;
		uint32_t rows = (uint32_t)(end - (k << a->shift));
		if (k < a->nchunks && !a->base[k])
			nvf__array_resolve(a, k);
		if (k < a->nchunks && a->cap[k] > rows)
			rows = a->cap[k];
		if ((rc = chunk_writable(a, txn, k, rows)) != 0)
			return rc;
	}
	if (last + 1 > a->nchunks)
		a->nchunks = last + 1;
	if (to > a->t->d.aux)
		a->t->d.aux = to;
	return 0;
}

int nvf__array_row_mut(nvf_array *a, nvf_txn *txn, uint64_t row, uint8_t **out)
{
	uint64_t k = row >> a->shift;
	if (row >= a->t->d.aux) {
		int rc = nvf__array_prepare(a, txn, a->t->d.aux, row + 1);
		if (rc != 0)
			return rc;
	} else if (!(k < a->nchunks && a->dirty[k] && (row & a->mask) < a->cap[k])) {
		int rc = nvf__array_prepare(a, txn, row, row + 1);
		if (rc != 0)
			return rc;
	}
	*out = (uint8_t *)(uintptr_t)a->base[k] + (row & a->mask) * a->stride;
	return 0;
}

void nvf__array_release_all(nvf_txn *txn)
{
	for (nvf_array *a = txn->arrays, *n; a; a = n) {
		n = a->next;
		array_free(a);
	}
	txn->arrays = NULL;
}

void nvf__array_forget(nvf_txn *txn, uint64_t id)
{
	for (nvf_array **pp = &txn->arrays; *pp; pp = &(*pp)->next) {
		nvf_array *a = *pp;
		if (a->id != id)
			continue;
		*pp = a->next;
		array_free(a);
		return;
	}
}

int nvf__array_truncate(nvf_array *a, nvf_txn *txn, uint64_t rows)
{
	int rc = nvf__txn_writable(txn);
	uint64_t old = a->t->d.aux;
	if (rc != 0 || rows >= old)
		return rc;
	uint64_t keep = rows ? ((rows - 1) >> a->shift) + 1 : 0;
	/* The kept last chunk's rows past the end read as zeros, as new rows do. */
	uint64_t end = keep << a->shift;
	for (uint64_t r = rows; r < end && r < old && rc == 0; r++) {
		uint8_t *p;
		if ((rc = nvf__array_row_mut(a, txn, r, &p)) == 0)
			memset(p, 0, a->stride);
	}
	for (uint64_t k = keep; k < a->nchunks && rc == 0; k++) {
		rc = nvf__tree_del(txn, &a->t->d, k);
		if (rc == NVF_ENOTFOUND)
			rc = 0;
		__atomic_store_n(&a->base[k], NULL, __ATOMIC_RELEASE);
		a->cap[k] = 0;
		a->dirty[k] = 0;
	}
	if (rc != 0)
		return nvf__txn_fail(txn, rc);
	a->nchunks = keep;
	a->t->d.aux = rows;
	return 0;
}
