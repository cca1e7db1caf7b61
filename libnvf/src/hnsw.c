/* HNSW (Malkov and Yashunin) on the file's pages: insertion with the paper's
 * neighbour-selection heuristic, parallel batch build, search with optional filter,
 * removal that re-links the neighbours around the removed node, and the invariants
 * nvf_check() verifies. Layout in hnsw.h. */
#include "hnsw.h"
#include "planner.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <sys/mman.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define NLOCKS 4096u /* striped locks of the parallel build */

typedef struct nvf_hnsw {
	nvf_array *g0, *up;
	nvf_tree *rec, *freeup;
	struct nvf_disk_hnsw h;
	bool dirty;
	uint32_t m, m0, efc, efs;
	double ml;
	uint64_t seed;
	bool quant;     /* 4-bit codes of every node are at hand (below): walks may use them */
	uint32_t nb;    /* code bytes per vector: ceil(dim / 2) */
	uint32_t qoff;  /* where a level-0 record's links end (and, in files of the
			 * first layout, its codes begin) */
	/* The codes (struct nvf_hnsw_qparams + nb bytes per row) are in one of: */
	bool qin;          /* the level-0 records, after the links (the first layout) */
	nvf_array *codes;  /* their own array, NVF_T_CODES */
	uint8_t *side;     /* memory only: a write transaction's codes for NVF_QUANT_AUTO
			    * before its first measure, which decides whether the file keeps
			    * them (calib.c) */
	uint64_t side_rows;
	size_t side_bytes; /* its mapping (huge_map) */
	uint32_t cstride;  /* bytes of one row's codes */
	uint32_t sstride;  /* and in `side`: whole cache lines, so that a row is one
			    * miss at 96 dimensions, not two */
	/* Only during a parallel insert: */
	pthread_mutex_t *locks;
	pthread_mutex_t glock;
	uint64_t alt; /* an update's starting point (nvf__hnsw_detach) */
	uint64_t up_next, up_end; /* a batch's upper slots, made writable at once (insert) */
	uint64_t linked;          /* rows this transaction's batches linked (connect_all) */
	/* Removed nodes waiting for the commit's sweep (see removal below). */
	NVF_VEC(uint64_t) tombs;
	uint8_t *tomb;
	uint64_t tomb_bits;
} nvf_hnsw;

typedef struct cand {
	float d;
	uint32_t r;
} cand;

/* ---- per-thread scratch: the visited set and heaps ---- */

/* The visited set is one bit per row, 128 KB at a million rows: it stays in the L2
 * cache, where hnswlib's 16-bit tags (2 MB a thread at 1M) missed to L3 at every
 * link a walk tests (8% of a build's walk). The bits set are listed, and a new
 * search clears those (or the whole map, when the list overflowed or a wide search
 * set more bits than clearing the map writes words). */
typedef struct scratch {
	uint64_t *visited;
	uint64_t vcap;   /* rows the map has room for */
	size_t vbytes;   /* its mapping */
	uint32_t *marked; /* the rows whose bits are set, nmarked of them (room: mcap) */
	size_t nmarked, mcap;
	bool overflow;   /* more were set than listed */
	cand *cand, *res, *tmp;
	size_t ccap, rcap, tcap;
	uint32_t *links;
	uint32_t *links2; /* a second list (ACORN looks through a neighbour while walking another's) */
	int8_t *pb;     /* three probes' int8 halves: query, base, candidate */
	size_t pbcap;
} scratch;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *p)
{
	scratch *s = p;
	if (s) {
		if (s->visited)
			munmap(s->visited, s->vbytes);
		free(s->marked);
		free(s->cand);
		free(s->res);
		free(s->tmp);
		free(s->links);
		free(s->links2);
		free(s->pb);
		free(s);
	}
}

static void scratch_init(void)
{
	pthread_key_create(&scratch_key, scratch_free);
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap : 64;
	while (n < need)
		n *= 2;
	void *q = realloc(*p, n * elem);
	if (!q)
		return nvf__oom();
	*p = q;
	*cap = n;
	return 0;
}

/* Fresh zeroed memory for tables read at random (the visited set, the codes in memory):
 * untouched anonymous pages, so that a first search costs what it visits, not the
 * collection's size; in huge pages where the kernel gives them (a 4 KiB page per
 * random access would miss the TLB nearly every time). */
static void *huge_map(size_t want, size_t *bytes)
{
	const size_t huge = (size_t)2 << 20;
	size_t len = want >= huge ? (want + huge - 1) & ~(huge - 1) : want;
	size_t extra = len >= huge ? huge : 0; /* room to align to a huge page */
	uint8_t *m = mmap(NULL, len + extra, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED) {
		nvf__oom();
		return NULL;
	}
	uint8_t *a = m;
	if (extra) {
		a = (uint8_t *)(((uintptr_t)m + huge - 1) & ~(uintptr_t)(huge - 1));
		if (a > m)
			munmap(m, (size_t)(a - m));
		if (a + len < m + len + extra)
			munmap(a + len, (size_t)(m + len + extra - (a + len)));
#ifdef MADV_HUGEPAGE
		madvise(a, len, MADV_HUGEPAGE); /* advice: without it, 4 KiB pages */
#endif
	}
	*bytes = len;
	return a;
}

/* A new search: no row visited. */
static void visit_reset(scratch *s)
{
	if (s->overflow || s->nmarked > s->vcap / 64) {
		memset(s->visited, 0, (s->vcap + 63) / 64 * sizeof(uint64_t));
	} else {
		for (size_t i = 0; i < s->nmarked; i++)
			s->visited[s->marked[i] >> 6] = 0; /* the word: its other bits are cleared too */
	}
	s->nmarked = 0;
	s->overflow = false;
}

static inline bool seen(const scratch *s, uint64_t r)
{
	return s->visited[r >> 6] >> (r & 63) & 1;
}

static inline void mark(scratch *s, uint64_t r)
{
	s->visited[r >> 6] |= UINT64_C(1) << (r & 63);
	if (s->nmarked < s->mcap)
		s->marked[s->nmarked++] = (uint32_t)r;
	else
		s->overflow = true;
}

/* Rows a search lists as visited before it falls back to clearing the whole map. */
#define MARKED_MAX 16384

/* This thread's scratch, with room for `rows` in the visited set and `ef`
 * candidates; nothing visited yet. */
static scratch *get_scratch(uint64_t rows, size_t ef, uint32_t maxlinks, uint32_t nb)
{
	pthread_once(&scratch_once, scratch_init);
	scratch *s = pthread_getspecific(scratch_key);
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s || pthread_setspecific(scratch_key, s) != 0) {
			free(s);
			return NULL;
		}
		s->links = malloc((size_t)(2 * NVF_HNSW_MAX_LEVEL + 512) * sizeof(uint32_t));
		s->links2 = malloc((size_t)(2 * NVF_HNSW_MAX_LEVEL + 512) * sizeof(uint32_t));
		s->marked = malloc(MARKED_MAX * sizeof(uint32_t));
		s->mcap = MARKED_MAX;
		if (!s->links || !s->links2 || !s->marked)
			return NULL;
	}
	if (rows > s->vcap) {
		uint64_t n = rows + rows / 4 + 1024;
		size_t bytes;
		uint64_t *v = huge_map((size_t)(n + 63) / 64 * sizeof(uint64_t), &bytes);
		if (!v)
			return NULL;
		if (s->visited)
			munmap(s->visited, s->vbytes);
		s->visited = v;
		s->vbytes = bytes;
		s->vcap = n;
		s->nmarked = 0;
		s->overflow = false;
	}
	visit_reset(s);
	size_t need = ef + maxlinks + 2;
	if (grow((void **)&s->cand, &s->ccap, need, sizeof(cand)) || grow((void **)&s->res, &s->rcap, need, sizeof(cand)) ||
	    grow((void **)&s->tmp, &s->tcap, need, sizeof(cand)) || grow((void **)&s->pb, &s->pbcap, 6 * (size_t)nb + 64, 1))
		return NULL;
	return s;
}

/* ---- heaps of (d, r): min-heap for candidates, max-heap for results ---- */

static inline bool before(cand a, cand b) /* a nearer than b (ties by row) */
{
	return a.d < b.d || (a.d == b.d && a.r < b.r);
}

static inline void heap_push(cand *h, size_t *n, cand x, bool max)
{
	size_t i = (*n)++;
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (max ? !before(h[p], x) : !before(x, h[p]))
			break;
		h[i] = h[p];
		i = p;
	}
	h[i] = x;
}

static inline cand heap_pop(cand *h, size_t *n, bool max)
{
	cand top = h[0], x = h[--(*n)];
	size_t i = 0, m = *n;
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, b = i;
		cand bx = x;
		if (l < m && (max ? before(bx, h[l]) : before(h[l], bx))) {
			b = l;
			bx = h[l];
		}
		if (r < m && (max ? before(bx, h[r]) : before(h[r], bx)))
			b = r;
		if (b == i)
			break;
		h[i] = h[b];
		i = b;
	}
	if (m)
		h[i] = x;
	return top;
}

/* ---- the graph's records ---- */

static inline struct nvf_hnsw_node0 *node0(const nvf_hnsw *g, uint64_t row)
{
	return (struct nvf_hnsw_node0 *)(uintptr_t)nvf__array_row(g->g0, row);
}

static inline uint32_t *links_of(const nvf_hnsw *g, uint64_t row, int level, uint32_t *n)
{
	struct nvf_hnsw_node0 *z = node0(g, row);
	if (level == 0) {
		*n = z->n;
		return (uint32_t *)(z + 1);
	}
	struct nvf_hnsw_upper *u = (struct nvf_hnsw_upper *)(uintptr_t)nvf__array_row(g->up, z->upper + (uint32_t)level - 1);
	*n = u->n;
	return (uint32_t *)(u + 1);
}

static inline uint32_t max_links(const nvf_hnsw *g, int level)
{
	return level == 0 ? g->m0 : g->m;
}

static inline void lock_row(nvf_hnsw *g, uint64_t row)
{
	if (g->locks)
		pthread_mutex_lock(&g->locks[row % NLOCKS]);
}

static inline void unlock_row(nvf_hnsw *g, uint64_t row)
{
	if (g->locks)
		pthread_mutex_unlock(&g->locks[row % NLOCKS]);
}

/* A node's links at a level, copied out. During a parallel build another thread may
 * be rewriting them: the count and the links are read with atomic loads, without the
 * row's lock (it cost a build 7%, lock and unlock at every node a walk expands). A
 * list read while it changes mixes old and new links; each is a row of the graph
 * (set_links writes only such, with atomic stores), and a walk is a heuristic: it
 * may expand a link just dropped, or miss one just added, as it would a moment
 * earlier or later.
 * Everything read here comes from the file, whose pages a search does not verify: a
 * level above the node's, an upper slot or a count out of range, or a link to a row
 * beyond the graph (one flipped byte does it) gives no links and sets *bad (the row),
 * so that the walk ends with NVF_ECORRUPT instead of reading outside the map. */
static uint32_t copy_links(nvf_hnsw *g, uint64_t row, int level, uint32_t *out, uint64_t *bad)
{
	uint32_t n = 0;
	uint64_t rows = nvf__array_rows(g->g0);
	if (row >= rows) {
		*bad = row;
		return 0;
	}
	const struct nvf_hnsw_node0 *z = node0(g, row);
	if (level > z->level || (level > 0 && (uint64_t)z->upper + (uint64_t)level > nvf__array_rows(g->up))) {
		*bad = row;
	} else {
		const uint32_t *l;
		if (level == 0) {
			n = __atomic_load_n(&z->n, __ATOMIC_ACQUIRE);
			l = (const uint32_t *)(z + 1);
		} else {
			const struct nvf_hnsw_upper *u =
				(const struct nvf_hnsw_upper *)(const void *)nvf__array_row(g->up, z->upper + (uint32_t)level - 1);
			n = __atomic_load_n(&u->n, __ATOMIC_ACQUIRE);
			l = (const uint32_t *)(u + 1);
		}
		if (n > max_links(g, level)) {
			*bad = row;
			n = 0;
		}
		for (uint32_t i = 0; i < n; i++) {
			uint32_t x = __atomic_load_n(&l[i], __ATOMIC_RELAXED);
			if (x >= rows) {
				*bad = row;
				n = 0;
				break;
			}
			out[i] = x;
		}
	}
	return n;
}

/* What a walk that met damaged links (copy_links) returns. */
static int damaged(uint64_t row)
{
	return nvf__corrupt(0, "HNSW: the links of row %llu are damaged (nvf-tool check names the page)",
			    (unsigned long long)row);
}

/* Writable records. Outside the parallel build a chunk is copied on first write;
 * inside it, every chunk was made writable beforehand. */
static int node0_mut(nvf_txn *txn, nvf_hnsw *g, uint64_t row, struct nvf_hnsw_node0 **out)
{
	uint8_t *p;
	int rc = nvf__array_row_mut(g->g0, txn, row, &p);
	*out = (struct nvf_hnsw_node0 *)(void *)p;
	return rc;
}

static int links_mut(nvf_txn *txn, nvf_hnsw *g, uint64_t row, int level, uint32_t **links, uint32_t **count)
{
	struct nvf_hnsw_node0 *z;
	int rc = node0_mut(txn, g, row, &z);
	if (rc != 0)
		return rc;
	if (level == 0) {
		/* n is 16 bits in the record; callers store through a u32 temporary. */
		*links = (uint32_t *)(z + 1);
		*count = NULL;
		return 0;
	}
	uint8_t *p;
	if ((rc = nvf__array_row_mut(g->up, txn, z->upper + (uint32_t)level - 1, &p)) != 0)
		return rc;
	*count = &((struct nvf_hnsw_upper *)(void *)p)->n;
	*links = (uint32_t *)(void *)(p + sizeof(struct nvf_hnsw_upper));
	return 0;
}

/* Change a target's in-degree by d. Other threads may be changing it too (the
 * target's own lock is not held): an atomic add. */
static int indeg_add(nvf_txn *txn, nvf_hnsw *g, uint64_t target, int32_t d)
{
	struct nvf_hnsw_node0 *z;
	int rc = node0_mut(txn, g, target, &z);
	if (rc == 0)
		__atomic_fetch_add(&z->indeg, (uint32_t)d, __ATOMIC_RELAXED);
	return rc;
}

static int set_links(nvf_txn *txn, nvf_hnsw *g, uint64_t row, int level, const uint32_t *l, uint32_t n)
{
	uint32_t *links, *count;
	int rc = links_mut(txn, g, row, level, &links, &count);
	if (rc != 0)
		return rc;
	/* In-degrees: links that go away and links that arrive. */
	uint32_t old_n = count ? *count : ((struct nvf_hnsw_node0 *)(void *)links - 1)->n;
	for (uint32_t i = 0; i < old_n && rc == 0; i++) {
		bool kept = false;
		for (uint32_t j = 0; j < n && !kept; j++)
			kept = l[j] == links[i];
		if (!kept)
			rc = indeg_add(txn, g, links[i], -1);
	}
	for (uint32_t j = 0; j < n && rc == 0; j++) {
		bool had = false;
		for (uint32_t i = 0; i < old_n && !had; i++)
			had = links[i] == l[j];
		if (!had)
			rc = indeg_add(txn, g, l[j], 1);
	}
	if (rc != 0)
		return rc;
	/* indeg_add may have copied this row's chunk too: fetch the pointers again. */
	if ((rc = links_mut(txn, g, row, level, &links, &count)) != 0)
		return rc;
	/* Atomic stores: walks of other threads read the list meanwhile (copy_links). */
	for (uint32_t i = 0; i < n; i++)
		__atomic_store_n(&links[i], l[i], __ATOMIC_RELAXED);
	if (count) {
		__atomic_store_n(count, n, __ATOMIC_RELEASE);
	} else {
		struct nvf_hnsw_node0 *z;
		if ((rc = node0_mut(txn, g, row, &z)) != 0)
			return rc;
		__atomic_store_n(&z->n, (uint16_t)n, __ATOMIC_RELEASE);
	}
	return 0;
}

/* ---- distances ---- */

static inline const float *vec_of(const nvf_coll *c, uint64_t row)
{
	return (const float *)(const void *)nvf__array_row(c->vec, row);
}

static inline float norm2_of(const nvf_coll *c, uint64_t row)
{
	float n;
	memcpy(&n, nvf__array_row(c->norms, row), 4);
	return n;
}

/* The 4-bit copy of a vector, after a node's level-0 links: x[i] ~ min + step * c[i],
 * with c[i] in 0..15 packed two to a byte, and the vector's exact squared norm. */
struct nvf_hnsw_qparams {
	float min, step, norm2;
};
_Static_assert(sizeof(struct nvf_hnsw_qparams) == 12, "qparams size");

static inline const uint8_t *qrec(const nvf_hnsw *g, uint64_t row)
{
	if (g->codes)
		return nvf__array_row(g->codes, row);
	if (g->qin)
		return (const uint8_t *)node0(g, row) + g->qoff;
	return g->side + row * g->sstride;
}

static void encode(const nvf_coll *c, const nvf_hnsw *g, const float *v, float n2, uint8_t *rec)
{
	size_t dim = c->cfg.dim;
	float lo = v[0], hi = v[0];
	for (size_t i = 1; i < dim; i++) {
		lo = v[i] < lo ? v[i] : lo;
		hi = v[i] > hi ? v[i] : hi;
	}
	float step = (hi - lo) / 15.0f;
	if (!isfinite(step) || !isfinite(lo))
		step = 0, lo = isfinite(lo) ? lo : 0; /* non-finite components (if allowed): walk blind */
	struct nvf_hnsw_qparams qp = {lo, step, n2};
	memcpy(rec, &qp, sizeof(qp));
	uint8_t *codes = rec + sizeof(qp);
	for (size_t j = 0; j < g->nb; j++) {
		uint32_t cc[2] = {0, 0};
		for (int h = 0; h < 2 && 2 * j + (size_t)h < dim; h++) {
			float q = step > 0 ? (v[2 * j + (size_t)h] - lo) / step : 0;
			long r = lrintf(q);
			cc[h] = r < 0 ? 0 : r > 15 ? 15 : (uint32_t)r;
		}
		codes[j] = (uint8_t)(cc[0] | cc[1] << 4);
	}
}

/* A vector prepared to be measured against many nodes: exactly (float32), or on the
 * 4-bit codes, as int8 even and odd halves with their scale. */
typedef struct probe {
	const float *v;
	float n2;
	bool quant;
	const int8_t *qe, *qo;
	float qs, sumq;
} probe;

/* Probes for building and repairing the graph measure exactly (the graph's quality
 * is worth it); probe_init_query quantizes for the searches of queries. */
static void probe_init_q(const nvf_coll *c, const nvf_hnsw *g, probe *p, const float *v, float n2, int8_t *buf,
			 bool quant)
{
	p->v = v;
	p->n2 = n2;
	p->quant = quant && g->quant;
	if (!p->quant)
		return;
	size_t dim = c->cfg.dim;
	float amax = 0, sum = 0;
	for (size_t i = 0; i < dim; i++) {
		float a = fabsf(v[i]);
		amax = a > amax ? a : amax;
		sum += v[i];
	}
	p->qs = amax > 0 && isfinite(amax) ? amax / 127.0f : 1.0f;
	p->sumq = sum;
	int8_t *qe = buf, *qo = buf + g->nb;
	for (size_t j = 0; j < g->nb; j++) {
		qe[j] = (int8_t)lrintf(v[2 * j] / p->qs);
		qo[j] = 2 * j + 1 < dim ? (int8_t)lrintf(v[2 * j + 1] / p->qs) : 0;
	}
	p->qe = qe;
	p->qo = qo;
}

static void probe_init(const nvf_coll *c, const nvf_hnsw *g, probe *p, const float *v, float n2, int8_t *buf)
{
	probe_init_q(c, g, p, v, n2, buf, false);
}

static inline float cos_score(float dot, float a2, float b2)
{
	if (a2 <= 0 || b2 <= 0)
		return 1.0f;
	float cs = dot / sqrtf(a2 * b2);
	return 1.0f - (cs > 1 ? 1 : cs < -1 ? -1 : cs);
}

static inline float probe_dist(const nvf_coll *c, const nvf_hnsw *g, const probe *p, uint64_t row)
{
	if (!p->quant) /* L2, the common case, without nvf__score_row's call and switch */
		return c->cfg.metric == NVF_METRIC_EUCLIDEAN ? c->k->l2sq(p->v, vec_of(c, row), c->cfg.dim)
							     : nvf__score_row(c, p->v, p->n2, row);
	const uint8_t *rec = qrec(g, row);
	struct nvf_hnsw_qparams qp;
	memcpy(&qp, rec, sizeof(qp));
	int32_t idot = c->k->dot_q4(rec + sizeof(qp), p->qe, p->qo, g->nb);
	/* q.x ~ min * sum(q) + step * sum(q[i] c[i]), the latter from the int8 query. */
	float dot = qp.min * p->sumq + qp.step * p->qs * (float)idot;
	switch (c->cfg.metric) {
	case NVF_METRIC_EUCLIDEAN: {
		float d = p->n2 + qp.norm2 - 2.0f * dot;
		return d > 0 ? d : 0;
	}
	case NVF_METRIC_INNER_PRODUCT:
		return -dot;
	default: /* cosine, angular: ranked by cosine distance */
		return cos_score(dot, p->n2, qp.norm2);
	}
}

/* Distance from row a to row b, a prepared in buf (2 * nb bytes). */
static inline float dist_rows(const nvf_coll *c, const nvf_hnsw *g, uint64_t a, uint64_t b, int8_t *buf)
{
	probe p;
	probe_init(c, g, &p, vec_of(c, a), norm2_of(c, a), buf);
	return probe_dist(c, g, &p, b);
}

static inline void prefetch_row(const nvf_coll *c, const nvf_hnsw *g, bool quant, uint64_t row)
{
	/* What the distance reads: the codes, or the vector; every line the row
	 * touches, up to 8. A code row is not line-aligned (60 bytes at 96 dimensions:
	 * 14 rows in 16 straddle two lines), so the count is from the row's first line
	 * to its last, not its length in lines. */
	uintptr_t p = quant ? (uintptr_t)qrec(g, row) : (uintptr_t)nvf__array_row(c->vec, row);
	size_t len = quant ? sizeof(struct nvf_hnsw_qparams) + g->nb : c->cfg.dim * sizeof(float);
	uintptr_t a = p & ~(uintptr_t)63, end = p + len;
	for (unsigned i = 0; i < 8 && a < end; i++, a += 64)
		__builtin_prefetch((const void *)a);
}

/* ---- searching one level ---- */

static inline bool is_tomb(const struct nvf_hnsw *g, uint64_t r);

typedef struct query {
	const nvf_coll *c;
	nvf_hnsw *g;
	probe p;               /* the query: on the 4-bit codes or exact */
	const nvf_rowpred *pred; /* level 0 results only; NULL: every row */
	nvf_evalctx *ectx;     /* the searching thread's, for pred->where */
	uint64_t skip;         /* a row never to return (the node being inserted) */
	uint64_t ndist;        /* distances computed (searches count them for explain) */
	uint64_t nvisit;       /* nodes expanded */
	size_t k;              /* results wanted (ACORN walks through failing nodes until it has them) */
	uint64_t bad;          /* a row whose links are damaged (copy_links), or UINT64_MAX */
} query;

static inline float qdist(query *Q, uint64_t row)
{
	Q->ndist++;
	return probe_dist(Q->c, Q->g, &Q->p, row);
}

static inline bool admit(const query *Q, uint64_t row)
{
	if (row == Q->skip || is_tomb(Q->g, row))
		return false;
	if (!Q->pred)
		return true;
	uint64_t id;
	memcpy(&id, nvf__array_row(Q->c->rowids, row), 8);
	return nvf__rowpred_pass(Q->pred, Q->ectx, row, id);
}

/* Greedy descent at an upper level: the nearest node reachable from *cur. */
static void greedy(query *Q, int level, uint32_t *cur, float *curd, uint32_t *buf)
{
	for (bool changed = true; changed;) {
		changed = false;
		uint32_t n = copy_links(Q->g, *cur, level, buf, &Q->bad);
		for (uint32_t i = 0; i < n; i++) {
			float d = qdist(Q, buf[i]);
			if (d < *curd || (d == *curd && buf[i] < *cur)) {
				*curd = d;
				*cur = buf[i];
				changed = true;
			}
		}
	}
}

/* Beam search of width ef at one level from the entries in s->res (their count
 * *nres); leaves the best ef admitted nodes in the max-heap s->res. Without a filter
 * every visited node is admitted; with one, traversal goes through non-matching
 * nodes but only matching ones enter the results, and gives up after max_visit. */
static void search_level(query *Q, scratch *s, int level, size_t ef, const cand *entries, size_t nent,
			 size_t *nres, uint64_t max_dist)
{
	size_t nc = 0, nr = 0;
	*nres = 0;
	for (size_t i = 0; i < nent; i++) {
		mark(s, entries[i].r);
		heap_push(s->cand, &nc, entries[i], false);
		if (admit(Q, entries[i].r))
			heap_push(s->res, &nr, entries[i], true);
	}
	while (nc > 0) {
		cand c = heap_pop(s->cand, &nc, false);
		if (nr >= ef && c.d > s->res[0].d)
			break;
		if (Q->ndist > max_dist)
			break;
		Q->nvisit++;
		uint32_t n = copy_links(Q->g, c.r, level, s->links, &Q->bad);
		/* The visited bits first, all at once: the test below branches on each,
		 * and a mispredicted branch would otherwise wait for its bit's miss. The
		 * new ones are kept (marked now: a duplicate link is seen once), and all
		 * their vectors asked for before the first distance: at 1M x 96 that beat
		 * asking 1, 2, 4 or 8 ahead (10.8k, 12.1k, 13.8k, 15.3k queries/s at ef 64
		 * against 15.8k), however many lines it puts in flight. */
		for (uint32_t i = 0; i < n; i++)
			__builtin_prefetch(&s->visited[s->links[i] >> 6]);
		uint32_t m = 0;
		for (uint32_t i = 0; i < n; i++) {
			uint32_t r = s->links[i];
			if (seen(s, r))
				continue;
			mark(s, r);
			s->links[m++] = r;
		}
		for (uint32_t i = 0; i < m; i++)
			prefetch_row(Q->c, Q->g, Q->p.quant, s->links[i]);
		for (uint32_t i = 0; i < m; i++) {
			uint32_t r = s->links[i];
			cand x = {qdist(Q, r), r};
			if (nr < ef || before(x, s->res[0])) {
				if (nc + 1 > s->ccap && grow((void **)&s->cand, &s->ccap, nc + 1, sizeof(cand)) != 0) {
					*nres = nr; /* out of memory: what was found so far */
					return;
				}
				heap_push(s->cand, &nc, x, false);
				/* Its links are read when it is popped: ask for them now. */
				const char *z = (const char *)node0(Q->g, r);
				__builtin_prefetch(z);
				__builtin_prefetch(z + 64);
				__builtin_prefetch(z + 128);
				if (admit(Q, r)) {
					heap_push(s->res, &nr, x, true);
					if (nr > ef)
						heap_pop(s->res, &nr, true);
				}
			}
		}
	}
	*nres = nr;
}

/* ---- neighbour selection: the paper's heuristic (algorithm 4) ---- */

static inline void swap_cand(cand *x, cand *y)
{
	cand t = *x;
	*x = *y;
	*y = t;
}

/* Nearest first. Inline (qsort's comparison calls cost a build several percent):
 * quicksort on median-of-three pivots, insertion sort below 16, the smaller side
 * first so that the stack stays logarithmic. */
static void sort_cands(cand *a, size_t n)
{
	size_t lo_s[64], hi_s[64], sp = 0;
	size_t lo = 0, hi = n;
	for (;;) {
		while (hi - lo > 16) {
			size_t mid = lo + (hi - lo) / 2, last = hi - 1;
			if (before(a[mid], a[lo]))
				swap_cand(&a[mid], &a[lo]);
			if (before(a[last], a[mid])) {
				swap_cand(&a[last], &a[mid]);
				if (before(a[mid], a[lo]))
					swap_cand(&a[mid], &a[lo]);
			}
			cand p = a[mid];
			size_t i = lo, j = last;
			for (;;) { /* Hoare: a[lo] <= p <= a[last] bound both scans */
				while (before(a[i], p))
					i++;
				while (before(p, a[j]))
					j--;
				if (i >= j)
					break;
				swap_cand(&a[i], &a[j]);
				i++;
				j--;
			}
			/* [lo, j] and [j + 1, hi): push the larger, go on with the smaller. */
			size_t split = j + 1;
			if (split - lo < hi - split) {
				lo_s[sp] = split, hi_s[sp++] = hi;
				hi = split;
			} else {
				lo_s[sp] = lo, hi_s[sp++] = split;
				lo = split;
			}
		}
		for (size_t i = lo + 1; i < hi; i++) {
			cand x = a[i];
			size_t j = i;
			for (; j > lo && before(x, a[j - 1]); j--)
				a[j] = a[j - 1];
			a[j] = x;
		}
		if (sp == 0)
			return;
		sp--;
		lo = lo_s[sp], hi = hi_s[sp];
	}
}

/* From candidates (distances to `base`), keep at most m that are nearer to base than
 * to any already kept: links spread in directions instead of crowding one cluster.
 * With fill, the slots left are filled with the nearest of the pruned ones (the
 * paper's keepPrunedConnections), as repairs after a removal want. */
static size_t select_neighbors(const nvf_coll *c, const nvf_hnsw *g, cand *cands, size_t n, size_t m, bool fill,
			       int8_t *pbuf)
{
	sort_cands(cands, n);
	size_t kept = 0, pruned = 0;
	cand *rest = fill ? malloc(n * sizeof(cand)) : NULL;
	for (size_t i = 0; i < n && kept < m; i++) {
		bool good = true;
		probe p;
		if (kept > 0)
			probe_init(c, g, &p, vec_of(c, cands[i].r), norm2_of(c, cands[i].r), pbuf);
		for (size_t j = 0; j < kept && good; j++)
			if (probe_dist(c, g, &p, cands[j].r) < cands[i].d)
				good = false;
		if (good)
			cands[kept++] = cands[i];
		else if (rest)
			rest[pruned++] = cands[i];
	}
	for (size_t i = 0; i < pruned && kept < m; i++)
		cands[kept++] = rest[i];
	free(rest);
	return kept;
}

static size_t select_heuristic(const nvf_coll *c, const nvf_hnsw *g, cand *cands, size_t n, size_t m, int8_t *pbuf)
{
	return select_neighbors(c, g, cands, n, m, false, pbuf);
}

/* Rows whose vectors are asked for ahead of an exact pass over a list of them. */
#define RERANK_AHEAD 6

/* Add `x` to `row`'s links at `level`, shrinking by the heuristic if full. */
static int add_link(nvf_txn *txn, const nvf_coll *c, nvf_hnsw *g, uint64_t row, int level, uint32_t x, cand *tmp,
		    int8_t *pbuf)
{
	int rc = 0;
	lock_row(g, row);
	uint32_t n, cap = max_links(g, level);
	uint32_t *l = links_of(g, row, level, &n);
	for (uint32_t i = 0; i < n; i++)
		if (l[i] == x)
			goto out;
	if (n < cap) {
		uint32_t buf[512];
		memcpy(buf, l, n * sizeof(uint32_t));
		buf[n] = x;
		rc = set_links(txn, g, row, level, buf, n + 1);
	} else {
		probe p;
		probe_init(c, g, &p, vec_of(c, row), norm2_of(c, row), pbuf);
		for (uint32_t i = 0; i < n && i < RERANK_AHEAD; i++)
			prefetch_row(c, g, false, l[i]);
		for (uint32_t i = 0; i < n; i++) {
			if (i + RERANK_AHEAD < n)
				prefetch_row(c, g, false, l[i + RERANK_AHEAD]);
			tmp[i] = (cand){probe_dist(c, g, &p, l[i]), l[i]};
		}
		tmp[n] = (cand){probe_dist(c, g, &p, x), x};
		size_t k = select_heuristic(c, g, tmp, n + 1, cap, pbuf + 2 * g->nb);
		uint32_t buf[512];
		for (size_t i = 0; i < k; i++)
			buf[i] = tmp[i].r;
		rc = set_links(txn, g, row, level, buf, (uint32_t)k);
	}
out:
	unlock_row(g, row);
	return rc;
}

/* ---- open / create ---- */

static int level_of(const nvf_hnsw *g, uint64_t id)
{
	/* From the id and the seed alone: the same graph whatever the insertion
	 * order's thread interleaving decides for the links. */
	uint64_t x = id ^ g->seed;
	x += UINT64_C(0x9E3779B97F4A7C15);
	x = (x ^ (x >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94D049BB133111EB);
	x ^= x >> 31;
	double u = ((double)(x >> 11) + 1.0) / 9007199254740993.0; /* (0, 1] */
	int l = (int)floor(-log(u) * g->ml);
	return l < NVF_HNSW_MAX_LEVEL - 1 ? l : NVF_HNSW_MAX_LEVEL - 1;
}

/* The codes' chunks: 1,024 rows fill whole pages whatever the dimension (a row is 4k
 * bytes), where 64 KiB would waste 3% of the last page at 784 dimensions. Only the
 * row a transaction adds or moves has its codes written, so a larger chunk costs a
 * small transaction one copy, not one per neighbour as the graph's records do. */
static uint32_t codes_chunk(const nvf_hnsw *g)
{
	uint64_t want = (uint64_t)g->cstride << 10;
	return want < (64u << 10) ? 64u << 10 : want > (512u << 10) ? 512u << 10 : (uint32_t)want;
}

static int setup(nvf_txn *txn, nvf_coll *c, bool create)
{
	nvf_hnsw *g = calloc(1, sizeof(*g));
	if (!g)
		return nvf__oom();
	g->m = c->cfg.hnsw_m;
	g->m0 = 2 * c->cfg.hnsw_m;
	g->efc = c->cfg.hnsw_ef_construction;
	g->efs = c->cfg.hnsw_ef_search;
	g->ml = 1.0 / log((double)g->m);
	g->seed = c->cfg.seed;
	bool sq4 = c->cfg.hnsw_quant == NVF_QUANT_SQ4;
	g->nb = (c->cfg.dim + 1) / 2;
	g->cstride = ((uint32_t)sizeof(struct nvf_hnsw_qparams) + g->nb + 3) & ~3u;
	g->sstride = (g->cstride + 63) & ~63u;
	g->qoff = (uint32_t)(sizeof(struct nvf_hnsw_node0) + 4 * g->m0);
	/* Level-0 records hold links only; files of the first layout also hold the
	 * codes there (s0_in), which they keep. */
	uint32_t s0 = (g->qoff + 7) & ~7u;
	uint32_t s0_in = (g->qoff + (uint32_t)sizeof(struct nvf_hnsw_qparams) + g->nb + 7) & ~7u;
	uint32_t su = (uint32_t)(sizeof(struct nvf_hnsw_upper) + 4 * g->m);
	int rc;
	/* Chunks of about 64 KiB: small enough that a one-record transaction copies
	 * little of the graph, large enough that some power of two of records fills
	 * whole pages (128 of 544 bytes, M 16 and 784 dimensions, make 17 pages). */
	if ((rc = nvf__array_open(txn, NVF_T_GRAPH0, create ? s0 : 0, 64u << 10, &g->g0)) != 0 ||
	    (rc = nvf__array_open(txn, NVF_T_UPPER, create ? su : 0, 64u << 10, &g->up)) != 0 ||
	    (rc = nvf__tree_open(txn, NVF_T_FREEUPPER, create ? NVF_TREE_KIND_PLAIN : -1, &g->freeup)) != 0 ||
	    (rc = nvf__tree_open(txn, NVF_T_HNSW, create ? NVF_TREE_KIND_PLAIN : -1, &g->rec)) != 0) {
		free(g);
		return rc == NVF_ENOTFOUND ? nvf__err(NVF_ECORRUPT, "a tree of the HNSW graph is missing") : rc;
	}
	g->qin = sq4 && !create && g->g0->stride == s0_in;
	/* The codes' array: made with the graph for NVF_QUANT_SQ4, and for NVF_QUANT_AUTO
	 * only once its measure keeps them (calib.c). An emptied tree (reindex) counts
	 * as none. */
	if (sq4 && !g->qin) {
		nvf_tree *ct;
		rc = nvf__tree_open(txn, NVF_T_CODES, -1, &ct);
		bool have = rc == 0 && ct->d.aux32 != 0, make = create && !c->cfg.quant_auto;
		if (rc == NVF_ENOTFOUND)
			rc = 0;
		if (rc == 0 && (have || make))
			rc = nvf__array_open(txn, NVF_T_CODES, make ? g->cstride : 0, codes_chunk(g), &g->codes);
		else if (rc == 0 && !create && (!c->cfg.quant_auto || (c->cfg.calib_nodes && c->cfg.walk == NVF_WALK_CODES)))
			rc = nvf__err(NVF_ECORRUPT, "the 4-bit codes of the HNSW graph are missing");
		if (rc == 0 && g->codes && g->codes->stride != g->cstride)
			rc = nvf__err(NVF_ECORRUPT, "HNSW codes of %u bytes, %u dimensions need %u", g->codes->stride,
				      c->cfg.dim, g->cstride);
		if (rc != 0) {
			free(g);
			return rc;
		}
	}
	g->quant = g->qin || g->codes;
	if ((g->g0->stride != s0 && !g->qin) || g->up->stride != su) {
		rc = nvf__err(NVF_ECORRUPT, "HNSW records of %u/%u bytes, M = %u needs %u/%u", g->g0->stride,
			      g->up->stride, g->m, s0, su);
		free(g);
		return rc;
	}
	if (create) {
		memset(&g->h, 0, sizeof(g->h));
		g->h.entry = NVF_HNSW_NO_ENTRY;
		g->dirty = true;
	} else {
		nvf_val v;
		rc = nvf__tree_get(txn, &g->rec->d, 0, &v);
		if (rc != 0 || v.len != sizeof(g->h)) {
			free(g);
			return rc && rc != NVF_ENOTFOUND ? rc : nvf__err(NVF_ECORRUPT, "HNSW record missing or damaged");
		}
		memcpy(&g->h, v.data, sizeof(g->h));
		/* Walks check links against the graph's rows and index the visited
		 * set and the vectors with them: neither may be shorter. */
		if ((g->h.entry != NVF_HNSW_NO_ENTRY && g->h.entry >= nvf__array_rows(g->g0)) ||
		    g->h.max_level >= NVF_HNSW_MAX_LEVEL || nvf__array_rows(g->g0) > nvf__array_rows(c->vec) ||
		    (g->codes && nvf__array_rows(g->codes) < nvf__array_rows(g->g0)) ||
		    (g->h.entry != NVF_HNSW_NO_ENTRY && node0(g, g->h.entry)->level < g->h.max_level)) {
			rc = nvf__err(NVF_ECORRUPT,
				      "HNSW entry point %llu / top level %u / %llu graph rows / %llu rows of codes out of range",
				      (unsigned long long)g->h.entry, g->h.max_level,
				      (unsigned long long)nvf__array_rows(g->g0),
				      (unsigned long long)(g->codes ? nvf__array_rows(g->codes) : 0));
			free(g);
			return rc;
		}
	}
	c->hnsw = g;
	return 0;
}

int nvf__hnsw_create(nvf_txn *txn, nvf_coll *c)
{
	return setup(txn, c, true);
}

int nvf__hnsw_open(nvf_txn *txn, nvf_coll *c)
{
	return setup(txn, c, false);
}

static void side_drop(nvf_hnsw *g);

void nvf__hnsw_free(nvf_coll *c);
void nvf__hnsw_free(nvf_coll *c)
{
	if (c->hnsw) {
		NVF_VEC_FREE(c->hnsw->tombs);
		free(c->hnsw->tomb);
		side_drop(c->hnsw);
	}
	free(c->hnsw);
	c->hnsw = NULL;
}

int nvf__hnsw_flush(nvf_txn *txn, nvf_coll *c)
{
	nvf_hnsw *g = c->hnsw;
	if (!g)
		return 0;
	/* A walk may read the codes of any row the graph has (rows that are no node
	 * read as zeros, and are never ranked). */
	uint64_t rows = nvf__array_rows(g->g0);
	if (g->codes && nvf__array_rows(g->codes) < rows) {
		int rc = nvf__array_prepare(g->codes, txn, nvf__array_rows(g->codes), rows);
		if (rc != 0)
			return rc;
	}
	if (!g->dirty)
		return 0;
	int rc = nvf__tree_put(txn, &g->rec->d, 0, &g->h, sizeof(g->h), 0, NULL);
	if (rc == 0)
		g->dirty = false;
	return rc;
}

/* ---- upper-level slots ---- */

static int alloc_upper(nvf_txn *txn, nvf_hnsw *g, int levels, uint32_t *slot)
{
	nvf_cursor cur;
	uint64_t want = (uint64_t)levels << 40;
	int rc = nvf__cursor_seek(&cur, txn, &g->freeup->d, want);
	if (rc != 0)
		return rc;
	if (cur.valid) {
		uint64_t key;
		if ((rc = nvf__cursor_get(&cur, &key, NULL)) != 0)
			return rc;
		if ((key >> 40) == (uint64_t)levels) {
			*slot = (uint32_t)(key & ((UINT64_C(1) << 40) - 1));
			return nvf__tree_del(txn, &g->freeup->d, key);
		}
	}
	if (g->up_next + (uint64_t)levels <= g->up_end) { /* the batch's reserve */
		*slot = (uint32_t)g->up_next;
		g->up_next += (uint64_t)levels;
		return 0;
	}
	uint64_t end = nvf__array_rows(g->up);
	if (end + (uint64_t)levels > UINT32_MAX)
		return nvf__err(NVF_EFULL, "HNSW upper-level slots exhausted");
	*slot = (uint32_t)end;
	return nvf__array_prepare(g->up, txn, end, end + (uint64_t)levels);
}

/* Codes in memory for every node (a write transaction of an NVF_QUANT_AUTO graph not
 * measured yet: at most CALIB_MIN nodes were committed, the rest come with it). Made
 * for a batch (its walk is then as fast as on codes in the file) and for the measure;
 * a transaction of a few inserts links them walking on float32 instead of encoding
 * the graph's nodes first. */
static int side_begin(const nvf_coll *c, nvf_hnsw *g)
{
	uint64_t rows = nvf__array_rows(c->vec), have = nvf__array_rows(g->g0);
	rows = rows ? rows : 1;
	g->side = huge_map(rows * g->sstride, &g->side_bytes);
	if (!g->side)
		return nvf__oom();
	g->side_rows = rows;
	for (uint64_t r = 0; r < have && r < rows; r++)
		if (node0(g, r)->flags & NVF_HNSW_LINKED)
			encode(c, g, vec_of(c, r), norm2_of(c, r), g->side + r * g->sstride);
	g->quant = true;
	return 0;
}

/* Let the codes in memory go; walks keep what the file has. */
static void side_drop(nvf_hnsw *g)
{
	if (g->side)
		munmap(g->side, g->side_bytes);
	g->side = NULL;
	g->side_rows = 0;
	g->quant = g->qin || g->codes;
}

static bool side_due(const nvf_coll *c, const nvf_hnsw *g)
{
	return !g->quant && c->cfg.quant_auto && c->cfg.hnsw_quant == NVF_QUANT_SQ4;
}

/* Write a row's 4-bit copy (from its vector), wherever the graph keeps them. */
static int put_codes(nvf_txn *txn, const nvf_coll *c, nvf_hnsw *g, uint64_t row)
{
	int rc;
	uint8_t *p;
	if (g->codes) {
		if ((rc = nvf__array_row_mut(g->codes, txn, row, &p)) != 0)
			return rc;
	} else if (g->qin) {
		struct nvf_hnsw_node0 *z;
		if ((rc = node0_mut(txn, g, row, &z)) != 0)
			return rc;
		p = (uint8_t *)z + g->qoff;
	} else if (g->side) {
		if (row >= g->side_rows) {
			uint64_t n = row + row / 2 + 1024;
			size_t bytes;
			uint8_t *ns = huge_map(n * g->sstride, &bytes);
			if (!ns)
				return nvf__oom();
			memcpy(ns, g->side, g->side_rows * g->sstride);
			munmap(g->side, g->side_bytes);
			g->side = ns;
			g->side_rows = n;
			g->side_bytes = bytes;
		}
		p = g->side + row * g->sstride;
	} else {
		return 0; /* no codes */
	}
	encode(c, g, vec_of(c, row), norm2_of(c, row), p);
	return 0;
}

int nvf__hnsw_codes_ready(nvf_txn *txn, nvf_coll *c)
{
	(void)txn;
	nvf_hnsw *g = c->hnsw;
	return g && side_due(c, g) ? side_begin(c, g) : 0;
}

bool nvf__hnsw_has_codes(const nvf_coll *c)
{
	return c->hnsw && c->hnsw->quant;
}

int nvf__hnsw_codes_settle(nvf_txn *txn, nvf_coll *c, bool keep)
{
	nvf_hnsw *g = c->hnsw;
	int rc = 0;
	if (!g || g->qin)
		return 0; /* the first layout keeps its codes in the records */
	if (keep && g->side) {
		/* Into the file: an array of their own, every row the graph has. */
		uint64_t rows = nvf__array_rows(g->g0);
		if ((rc = nvf__array_open(txn, NVF_T_CODES, g->cstride, codes_chunk(g), &g->codes)) != 0)
			return rc;
		if (rows && (rc = nvf__array_prepare(g->codes, txn, 0, rows)) != 0)
			return rc;
		for (uint64_t r = 0; r < rows && r < g->side_rows; r++) {
			uint8_t *p;
			if ((rc = nvf__array_row_mut(g->codes, txn, r, &p)) != 0)
				return rc;
			memcpy(p, g->side + r * g->sstride, g->cstride);
		}
	} else if (!keep) {
		/* The walk is float32 from now on: the codes go (a measure on the codes
		 * needs NVF_QUANT_AUTO again, by reindex). */
		if (g->codes) {
			if ((rc = nvf__tree_drop(txn, &g->codes->t->d)) != 0)
				return rc;
			g->codes->t->d.aux = 0;
			g->codes->t->d.aux32 = 0;
			nvf__array_forget(txn, NVF_T_CODES);
			g->codes = NULL;
		}
		c->cfg.hnsw_quant = NVF_QUANT_NONE;
	}
	side_drop(g);
	return 0;
}

/* Make a row a node of `level` with no links yet (its upper slots allocated, its
 * 4-bit copy written). */
static int init_node(nvf_txn *txn, const nvf_coll *c, nvf_hnsw *g, uint64_t row, int level)
{
	uint32_t slot = 0;
	int rc;
	if (level > 0 && (rc = alloc_upper(txn, g, level, &slot)) != 0)
		return rc;
	struct nvf_hnsw_node0 *z;
	if ((rc = node0_mut(txn, g, row, &z)) != 0)
		return rc;
	/* A row joins with no links either way (a removed node left none behind). */
	memset(z, 0, sizeof(*z));
	z->upper = slot;
	z->level = (uint8_t)level;
	if ((rc = put_codes(txn, c, g, row)) != 0)
		return rc;
	for (int l = 1; l <= level; l++) {
		uint8_t *p;
		if ((rc = nvf__array_row_mut(g->up, txn, slot + (uint32_t)l - 1, &p)) != 0)
			return rc;
		((struct nvf_hnsw_upper *)(void *)p)->n = 0;
	}
	return 0;
}

/* ---- insertion ---- */

/* Link row x (its node initialised) into the graph. If x is itself the entry point
 * (it is being re-linked), the search starts from `alt`, a former neighbour. */
static int link_node(nvf_txn *txn, nvf_coll *c, nvf_hnsw *g, uint64_t x, uint64_t alt)
{
	struct nvf_hnsw_node0 *zx = node0(g, x);
	int level = zx->level;
	uint64_t rows = nvf__array_rows(c->vec);
	scratch *s = get_scratch(rows, g->efc, g->m0, g->nb);
	if (!s)
		return nvf__oom();
	if (g->locks)
		pthread_mutex_lock(&g->glock);
	uint64_t ep = g->h.entry;
	int top = (int)g->h.max_level;
	bool hold = g->locks && level > top; /* a new top: keep others out meanwhile */
	if (ep == x) {
		/* Re-linking the entry: keep it the entry, but search from elsewhere. */
		ep = alt;
		if (ep == NVF_HNSW_NO_ENTRY) {
			zx->flags |= NVF_HNSW_LINKED;
			g->h.nodes++;
			g->h.per_level[level]++;
			g->dirty = true;
			if (g->locks)
				pthread_mutex_unlock(&g->glock);
			return 0;
		}
		if ((int)node0(g, ep)->level < top)
			top = node0(g, ep)->level;
	}
	if (ep == NVF_HNSW_NO_ENTRY) {
		g->h.entry = x;
		g->h.max_level = (uint32_t)level;
		g->h.nodes++;
		g->h.per_level[level]++;
		g->dirty = true;
		zx->flags |= NVF_HNSW_LINKED;
		if (g->locks)
			pthread_mutex_unlock(&g->glock);
		return 0;
	}
	if (g->locks && !hold)
		pthread_mutex_unlock(&g->glock);

	/* The beam search walks on the 4-bit codes (if any); what it finds is measured
	 * exactly before the heuristic chooses, which keeps the graph as good as a
	 * float32 build at a fraction of the reads. */
	query Q = {c, g, {0}, NULL, NULL, x, 0, 0, 0, UINT64_MAX};
	probe_init_q(c, g, &Q.p, vec_of(c, x), norm2_of(c, x), s->pb, true);
	uint32_t cur = (uint32_t)ep;
	float curd = qdist(&Q, cur);
	for (int l = top; l > level; l--)
		greedy(&Q, l, &cur, &curd, s->links);
	int rc = 0;
	cand entry = {curd, cur};
	uint32_t buf[512];
	for (int l = level < top ? level : top; l >= 0 && rc == 0; l--) {
		size_t nr;
		visit_reset(s);
		search_level(&Q, s, l, g->efc, &entry, 1, &nr, UINT64_MAX);
		if (Q.bad != UINT64_MAX) {
			rc = damaged(Q.bad);
			break;
		}
		/* Results out of the heap, measured exactly; the nearest is the next
		 * level's entry. */
		for (size_t i = 0; i < nr && i < RERANK_AHEAD && Q.p.quant; i++)
			prefetch_row(c, g, false, s->res[i].r);
		for (size_t i = 0; i < nr; i++) {
			s->tmp[i] = s->res[i];
			if (!Q.p.quant)
				continue;
			if (i + RERANK_AHEAD < nr) /* random rows: the hardware cannot guess them */
				prefetch_row(c, g, false, s->res[i + RERANK_AHEAD].r);
			s->tmp[i].d = nvf__score_row(c, vec_of(c, x), norm2_of(c, x), s->res[i].r);
		}
		size_t k = select_heuristic(c, g, s->tmp, nr, g->m, s->pb + 4 * g->nb);
		if (nr > 0)
			entry = s->tmp[0];
		for (size_t i = 0; i < k; i++)
			buf[i] = s->tmp[i].r;
		lock_row(g, x);
		rc = set_links(txn, g, x, l, buf, (uint32_t)k);
		unlock_row(g, x);
		for (size_t i = 0; i < k && rc == 0; i++)
			rc = add_link(txn, c, g, buf[i], l, (uint32_t)x, s->cand, s->pb + 2 * g->nb);
	}
	zx = node0(g, x);
	zx->flags |= NVF_HNSW_LINKED;
	if (g->locks && !hold)
		pthread_mutex_lock(&g->glock);
	g->h.nodes++;
	g->h.per_level[level]++;
	if (level > (int)g->h.max_level) {
		g->h.entry = x;
		g->h.max_level = (uint32_t)level;
	}
	g->dirty = true;
	if (g->locks)
		pthread_mutex_unlock(&g->glock);
	return rc;
}

/* ---- nodes no walk reaches ----
 *
 * The heuristic can leave a node, or a few linking only to each other, that no walk
 * from the entry reaches: a search for its own vector does not find it. A new node's
 * backlinks are pruned from its neighbours' full lists when it is not diverse enough
 * for them, later inserts prune others', and removals take links away. On 3,000
 * uniform 24-dimension vectors at ef_construction 64, 0 to 4 nodes of a build (by the
 * parallel build's interleaving; hnswlib's graph has them too). So the commit of a
 * transaction that swept removed nodes, or that linked at least an eighth of the graph
 * (CONNECT_SHARE), walks level 0 from the entry and links each node not reached from
 * the nearest reached node a search finds, which then reaches all that node reaches.
 * O(N * M) link reads, 0.5 s at 1M x 96: once per transaction, not per batch (an
 * import of 1M rows comes in 100 batches), and only where it is at most a few percent
 * of what linking the rows cost; the sweep reads every record anyway. */
#define CONNECT_SHARE 8

/* Mark what level 0 reaches from `from` (queue: room for every row). */
static void reach(const nvf_hnsw *g, uint64_t from, uint64_t *seen_bits, uint32_t *queue)
{
	size_t head = 0, tail = 0;
	if (seen_bits[from >> 6] >> (from & 63) & 1)
		return;
	seen_bits[from >> 6] |= UINT64_C(1) << (from & 63);
	queue[tail++] = (uint32_t)from;
	while (head < tail) {
		uint32_t n;
		const uint32_t *l = links_of(g, queue[head++], 0, &n);
		for (uint32_t i = 0; i < n; i++) {
			uint32_t y = l[i];
			if (seen_bits[y >> 6] >> (y & 63) & 1)
				continue;
			seen_bits[y >> 6] |= UINT64_C(1) << (y & 63);
			queue[tail++] = y;
		}
	}
}

/* Link x, which the entry does not reach, from the nearest reached node that can
 * take it: one with room, else one whose farthest link's target keeps another
 * in-link (that link gives way). False if none could. */
static int adopt(nvf_txn *txn, nvf_coll *c, nvf_hnsw *g, uint64_t x, const uint64_t *seen_bits, bool *done)
{
	*done = false;
	scratch *s = get_scratch(nvf__array_rows(c->vec), g->efc, g->m0, g->nb);
	if (!s)
		return nvf__oom();
	query Q = {c, g, {0}, NULL, NULL, x, 0, 0, 0, UINT64_MAX};
	probe_init(c, g, &Q.p, vec_of(c, x), norm2_of(c, x), s->pb);
	uint32_t cur = (uint32_t)g->h.entry;
	float curd = qdist(&Q, cur);
	for (int l = (int)g->h.max_level; l > 0; l--)
		greedy(&Q, l, &cur, &curd, s->links);
	visit_reset(s);
	cand e = {curd, cur};
	size_t nr;
	search_level(&Q, s, 0, g->efc, &e, 1, &nr, UINT64_MAX);
	if (Q.bad != UINT64_MAX)
		return damaged(Q.bad);
	memcpy(s->tmp, s->res, nr * sizeof(cand));
	sort_cands(s->tmp, nr);
	uint32_t buf[512];
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < nr; i++) {
			uint64_t y = s->tmp[i].r;
			if (!(seen_bits[y >> 6] >> (y & 63) & 1) || is_tomb(g, y))
				continue;
			uint32_t ny;
			const uint32_t *ly = links_of(g, y, 0, &ny);
			if (pass == 0) {
				if (ny >= g->m0)
					continue;
				memcpy(buf, ly, ny * sizeof(uint32_t));
				buf[ny] = (uint32_t)x;
				*done = true;
				return set_links(txn, g, y, 0, buf, ny + 1);
			}
			probe p;
			probe_init(c, g, &p, vec_of(c, y), norm2_of(c, y), s->pb);
			uint32_t worst = UINT32_MAX;
			float wd = -1;
			for (uint32_t j = 0; j < ny; j++) {
				float d = probe_dist(c, g, &p, ly[j]);
				if (node0(g, ly[j])->indeg > 1 && d > wd)
					wd = d, worst = j;
			}
			if (worst != UINT32_MAX) {
				memcpy(buf, ly, ny * sizeof(uint32_t));
				buf[worst] = (uint32_t)x;
				*done = true;
				return set_links(txn, g, y, 0, buf, ny);
			}
		}
	}
	return 0;
}

static int connect_all(nvf_txn *txn, nvf_coll *c, nvf_hnsw *g)
{
	uint64_t rows = nvf__array_rows(g->g0);
	if (g->h.entry == NVF_HNSW_NO_ENTRY || rows == 0)
		return 0;
	uint64_t *seen_bits = calloc((rows + 63) / 64, sizeof(uint64_t));
	uint32_t *queue = malloc(rows * sizeof(uint32_t));
	int rc = seen_bits && queue ? 0 : nvf__oom();
	/* A link given way may cut off what only it reached: look again, a few times. */
	for (int round = 0; round < 4 && rc == 0; round++) {
		memset(seen_bits, 0, (rows + 63) / 64 * sizeof(uint64_t));
		reach(g, g->h.entry, seen_bits, queue);
		size_t adopted = 0;
		for (uint64_t x = 0; x < rows && rc == 0; x++) {
			const struct nvf_hnsw_node0 *z = node0(g, x);
			if (!(z->flags & NVF_HNSW_LINKED) || is_tomb(g, x) || (seen_bits[x >> 6] >> (x & 63) & 1))
				continue;
			bool done;
			if ((rc = adopt(txn, c, g, x, seen_bits, &done)) == 0 && done) {
				reach(g, x, seen_bits, queue);
				adopted++;
			}
		}
		if (adopted == 0)
			break;
	}
	free(seen_bits);
	free(queue);
	return rc;
}

/* Batches large enough to be worth it are built in parallel. Every chunk of the graph
 * is made writable first (a batch may add links to any node), so that the threads
 * only ever write through pointers, never change a tree. */
#define PARALLEL_MIN 256

int nvf__hnsw_insert(nvf_txn *txn, nvf_coll *c, const uint64_t *rows, size_t n)
{
	nvf_hnsw *g = c->hnsw;
	int rc = 0;
	uint64_t nrows = nvf__array_rows(c->vec);
	if (n >= PARALLEL_MIN && side_due(c, g) && (rc = side_begin(c, g)) != 0)
		return nvf__txn_fail(txn, rc);
	/* A batch's upper slots at once: appended a few at a time, each chunk of the
	 * array would grow by doubling, and the extents it outgrew stay behind as free
	 * pages (0.4% of a 1M x 96 file). Slots the free list gives back instead are
	 * cut off the reserve's end afterwards. */
	if (n >= PARALLEL_MIN) {
		uint64_t total = 0, end = nvf__array_rows(g->up);
		for (size_t i = 0; i < n; i++) {
			uint64_t id;
			memcpy(&id, nvf__array_row(c->rowids, rows[i]), 8);
			total += (uint64_t)level_of(g, id);
		}
		if (total > 0 && end + total <= UINT32_MAX) {
			if ((rc = nvf__array_prepare(g->up, txn, end, end + total)) != 0)
				return nvf__txn_fail(txn, rc);
			g->up_next = end;
			g->up_end = end + total;
		}
	}
	/* Nodes first: levels and upper slots, single-threaded (it changes trees). */
	for (size_t i = 0; i < n && rc == 0; i++) {
		uint64_t id;
		memcpy(&id, nvf__array_row(c->rowids, rows[i]), 8);
		rc = init_node(txn, c, g, rows[i], level_of(g, id));
	}
	if (rc == 0 && g->up_next < g->up_end)
		rc = nvf__array_truncate(g->up, txn, g->up_next);
	g->up_next = g->up_end = 0;
	if (rc != 0)
		return nvf__txn_fail(txn, rc);
	g->linked += n;
	bool parallel = false;
#ifdef _OPENMP
	parallel = n >= PARALLEL_MIN && omp_get_max_threads() > 1;
#endif
	if (!parallel) {
		for (size_t i = 0; i < n && rc == 0; i++)
			rc = link_node(txn, c, g, rows[i], NVF_HNSW_NO_ENTRY);
		return nvf__txn_fail(txn, rc);
	}
	if ((rc = nvf__array_prepare(g->g0, txn, 0, nrows)) != 0 ||
	    (rc = nvf__array_prepare(g->up, txn, 0, nvf__array_rows(g->up))) != 0)
		return nvf__txn_fail(txn, rc);
	g->locks = malloc(NLOCKS * sizeof(*g->locks));
	if (!g->locks)
		return nvf__txn_fail(txn, nvf__oom());
	for (unsigned i = 0; i < NLOCKS; i++)
		pthread_mutex_init(&g->locks[i], NULL);
	pthread_mutex_init(&g->glock, NULL);
	/* The first node alone (it may become the entry), then the rest together. */
	size_t first = 0;
	if (g->h.entry == NVF_HNSW_NO_ENTRY)
		rc = link_node(txn, c, g, rows[first++], NVF_HNSW_NO_ENTRY);
	int err = rc;
#pragma omp parallel for schedule(dynamic, 16)
	for (size_t i = first; i < n; i++) {
		int e;
#pragma omp atomic read
		e = err;
		if (e != 0)
			continue;
		e = link_node(txn, c, g, rows[i], NVF_HNSW_NO_ENTRY);
		if (e != 0) {
#pragma omp atomic write
			err = e;
		}
	}
	for (unsigned i = 0; i < NLOCKS; i++)
		pthread_mutex_destroy(&g->locks[i]);
	pthread_mutex_destroy(&g->glock);
	free(g->locks);
	g->locks = NULL;
	return nvf__txn_fail(txn, err);
}

/* ---- removal ----
 *
 * Removing node x: every node that links to x must drop the link and take others in
 * its place. Links are mostly made both ways, so x's own neighbours and the nodes a
 * search around x finds hold nearly all of them; each is repaired at once, from its
 * other links and x's. The in-degree kept in each record says whether any link to x
 * remains. If none, x is gone. If some (a node for which x is close though it is not
 * close to x), x stays as a tombstone: still a node for the traversal, never a result,
 * its row not reusable; at commit one sweep of the graph repairs the links to every
 * tombstone of the transaction at once, and frees them. */

static bool contains(const uint32_t *l, uint32_t n, uint32_t x)
{
	for (uint32_t i = 0; i < n; i++)
		if (l[i] == x)
			return true;
	return false;
}

static inline bool is_tomb(const nvf_hnsw *g, uint64_t r)
{
	return g->tomb && r < g->tomb_bits && (g->tomb[r >> 3] >> (r & 7) & 1);
}

/* y links to removed node(s) at level l: drop them, take candidates from y's other
 * links and from `extra` (the removed nodes' links), keep the best by the heuristic,
 * topped up to the full degree with the nearest of the rest. */
static int repair(nvf_txn *txn, const nvf_coll *c, nvf_hnsw *g, uint64_t y, int l, const uint32_t *extra,
		  size_t nextra, bool (*gone)(const nvf_hnsw *, uint64_t, uint64_t), uint64_t x, cand *sel, int8_t *pbuf)
{
	uint32_t ny, nbuf[512];
	const uint32_t *ly = links_of(g, y, l, &ny);
	size_t k = 0;
	probe p;
	probe_init(c, g, &p, vec_of(c, y), norm2_of(c, y), pbuf);
	for (uint32_t j = 0; j < ny; j++)
		if (!gone(g, ly[j], x))
			sel[k++] = (cand){probe_dist(c, g, &p, ly[j]), ly[j]};
	for (size_t j = 0; j < nextra; j++) {
		uint32_t z = extra[j];
		if (z == y || gone(g, z, x) || contains(ly, ny, z))
			continue;
		bool dup = false;
		for (size_t i = 0; i < k && !dup; i++)
			dup = sel[i].r == z;
		if (!dup)
			sel[k++] = (cand){probe_dist(c, g, &p, z), z};
	}
	k = select_neighbors(c, g, sel, k, max_links(g, l), true, pbuf + 2 * g->nb);
	for (size_t j = 0; j < k; j++)
		nbuf[j] = sel[j].r;
	return set_links(txn, g, y, l, nbuf, (uint32_t)k);
}

static bool gone_one(const nvf_hnsw *g, uint64_t r, uint64_t x)
{
	(void)g;
	return r == x;
}

static bool gone_tomb(const nvf_hnsw *g, uint64_t r, uint64_t x)
{
	(void)x;
	return is_tomb(g, r);
}

/* Repair the nodes near x that link to it; x keeps its own links. */
static int unlink_near(nvf_txn *txn, nvf_coll *c, nvf_hnsw *g, uint64_t x)
{
	int level = node0(g, x)->level, rc = 0;
	uint64_t rows = nvf__array_rows(c->vec);
	scratch *s = get_scratch(rows, g->efc + 2 * g->m0, g->m0, g->nb);
	cand *pool = malloc((g->efc + 2 * (size_t)g->m0 + 8) * sizeof(cand));
	cand *sel = malloc((3 * (size_t)g->m0 + 8) * sizeof(cand));
	uint32_t *lx = malloc(g->m0 * sizeof(uint32_t));
	if (!s || !pool || !sel || !lx) {
		free(pool);
		free(sel);
		free(lx);
		return nvf__oom();
	}
	query Q = {c, g, {0}, NULL, NULL, x, 0, 0, 0, UINT64_MAX};
	probe_init(c, g, &Q.p, vec_of(c, x), norm2_of(c, x), s->pb);
	uint32_t cur = (uint32_t)g->h.entry;
	float curd = qdist(&Q, cur);
	for (int l = (int)g->h.max_level; l > level; l--)
		greedy(&Q, l, &cur, &curd, s->links);
	cand entry = {curd, cur};
	for (int l = level; l >= 0 && rc == 0 && node0(g, x)->indeg > 0; l--) {
		uint32_t nx = copy_links(g, x, l, lx, &Q.bad);
		size_t nr = 0;
		visit_reset(s);
		/* A narrow search: the commit's sweep catches what it misses. */
		if (entry.r != x)
			search_level(&Q, s, l, g->m0, &entry, 1, &nr, UINT64_MAX);
		if (Q.bad != UINT64_MAX) {
			rc = damaged(Q.bad);
			break;
		}
		size_t np = 0;
		for (size_t i = 0; i < nr; i++)
			pool[np++] = s->res[i];
		for (uint32_t i = 0; i < nx; i++)
			pool[np++] = (cand){0, lx[i]};
		if (nr > 0) {
			size_t b = 0;
			for (size_t i = 1; i < nr; i++)
				if (before(s->res[i], s->res[b]))
					b = i;
			entry = s->res[b];
		}
		for (size_t i = 0; i < np && rc == 0; i++) {
			uint64_t y = pool[i].r;
			bool dup = false;
			for (size_t j = 0; j < i && !dup; j++)
				dup = pool[j].r == y;
			if (dup || y == x || node0(g, y)->level < l || is_tomb(g, y))
				continue;
			uint32_t ny;
			const uint32_t *ly = links_of(g, y, l, &ny);
			if (contains(ly, ny, (uint32_t)x))
				rc = repair(txn, c, g, y, l, lx, nx, gone_one, x, sel, s->pb + 2 * g->nb);
		}
	}
	free(pool);
	free(sel);
	free(lx);
	return rc;
}

/* x has no in-links left: drop its own links, free its upper slots, clear its record,
 * and find a new entry point if it was the one. */
static int finish_removal(nvf_txn *txn, nvf_hnsw *g, uint64_t x)
{
	struct nvf_hnsw_node0 *zx = node0(g, x);
	int level = zx->level, rc = 0;
	uint32_t upper = zx->upper;
	if (g->h.entry == x) {
		/* Levels are nested: x's list at a level holds nodes at least that high. */
		int top = (int)g->h.max_level;
		uint64_t ne = NVF_HNSW_NO_ENTRY;
		uint32_t n;
		g->h.per_level[level]--;
		while (top > 0 && g->h.per_level[top] == 0)
			top--;
		g->h.per_level[level]++;
		/* The highest level that keeps a live node: the others at `top` may all be
		 * tombstones of this same transaction, leaving lower levels only. */
		for (; top >= 0 && ne == NVF_HNSW_NO_ENTRY; top--) {
			for (int l = level < top ? level : top; l >= 0 && ne == NVF_HNSW_NO_ENTRY; l--) {
				const uint32_t *lk = links_of(g, x, l, &n);
				for (uint32_t i = 0; i < n && ne == NVF_HNSW_NO_ENTRY; i++)
					if (node0(g, lk[i])->level == top && !is_tomb(g, lk[i]))
						ne = lk[i];
			}
			for (uint64_t r = 0; ne == NVF_HNSW_NO_ENTRY && r < nvf__array_rows(g->g0); r++) {
				struct nvf_hnsw_node0 *z = node0(g, r);
				if (r != x && (z->flags & NVF_HNSW_LINKED) && z->level == top && !is_tomb(g, r))
					ne = r;
			}
		}
		g->h.entry = ne;
		g->h.max_level = ne == NVF_HNSW_NO_ENTRY ? 0 : node0(g, ne)->level;
	}
	for (int l = 0; l <= level && rc == 0; l++)
		rc = set_links(txn, g, x, l, NULL, 0);
	if (rc == 0 && level > 0)
		rc = nvf__tree_put(txn, &g->freeup->d, (uint64_t)level << 40 | upper, NULL, 0, 0, NULL);
	struct nvf_hnsw_node0 *z;
	if (rc == 0 && (rc = node0_mut(txn, g, x, &z)) == 0) {
		if (z->indeg != 0)
			return nvf__err(NVF_ECORRUPT, "HNSW: %u links to row %llu remain after its removal", z->indeg,
					(unsigned long long)x);
		memset(z, 0, sizeof(*z));
	}
	g->h.nodes--;
	g->h.per_level[level]--;
	g->dirty = true;
	return rc;
}

int nvf__hnsw_remove(nvf_txn *txn, nvf_coll *c, uint64_t x, bool *deferred)
{
	nvf_hnsw *g = c->hnsw;
	*deferred = false;
	if (!(node0(g, x)->flags & NVF_HNSW_LINKED))
		return 0;
	int rc = unlink_near(txn, c, g, x);
	if (rc == 0 && node0(g, x)->indeg > 0) {
		/* Links from farther away remain: a tombstone until the commit's sweep. */
		uint64_t rows = nvf__array_rows(g->g0);
		if (rows > g->tomb_bits) {
			uint64_t bytes = (rows + 7) / 8 + 64;
			uint8_t *t = realloc(g->tomb, bytes);
			if (!t)
				return nvf__txn_fail(txn, nvf__oom());
			memset(t + (g->tomb_bits + 7) / 8, 0, bytes - (g->tomb_bits + 7) / 8);
			g->tomb = t;
			g->tomb_bits = bytes * 8;
		}
		g->tomb[x >> 3] |= (uint8_t)(1u << (x & 7));
		if ((rc = NVF_VEC_PUSH(g->tombs, x)) == 0)
			*deferred = true;
		return nvf__txn_fail(txn, rc);
	}
	if (rc == 0)
		rc = finish_removal(txn, g, x);
	return nvf__txn_fail(txn, rc);
}

/* An update, in two steps around the write of the new vector. Detach: the nodes near
 * the old position let go of x (links from farther away stay: they still lead to a
 * live node) and x drops its links. Attach: x joins again from its new position. */
int nvf__hnsw_detach(nvf_txn *txn, nvf_coll *c, uint64_t x)
{
	nvf_hnsw *g = c->hnsw;
	int rc = unlink_near(txn, c, g, x);
	int level = node0(g, x)->level;
	/* Somewhere to start from if x is the entry: its highest neighbour. */
	g->alt = NVF_HNSW_NO_ENTRY;
	for (int l = level; l >= 0 && g->alt == NVF_HNSW_NO_ENTRY; l--) {
		uint32_t n;
		const uint32_t *lk = links_of(g, x, l, &n);
		if (n > 0)
			g->alt = lk[0];
	}
	for (int l = 0; l <= level && rc == 0; l++)
		rc = set_links(txn, g, x, l, NULL, 0);
	struct nvf_hnsw_node0 *z;
	if (rc == 0 && (rc = node0_mut(txn, g, x, &z)) == 0) {
		z->flags &= (uint8_t)~NVF_HNSW_LINKED;
		g->h.nodes--;
		g->h.per_level[level]--;
	}
	return nvf__txn_fail(txn, rc);
}

int nvf__hnsw_attach(nvf_txn *txn, nvf_coll *c, uint64_t x)
{
	nvf_hnsw *g = c->hnsw;
	struct nvf_hnsw_node0 *z;
	int rc = node0_mut(txn, g, x, &z);
	if (rc == 0)
		rc = put_codes(txn, c, g, x);
	if (rc == 0)
		rc = link_node(txn, c, g, x, g->alt);
	return nvf__txn_fail(txn, rc);
}

int nvf__hnsw_settle(nvf_txn *txn, nvf_coll *c, uint64_t **rows, size_t *n)
{
	nvf_hnsw *g = c->hnsw;
	*rows = NULL;
	*n = 0;
	if (!g)
		return 0;
	if (g->tombs.n == 0) {
		int rc = 0;
		if (g->linked >= PARALLEL_MIN && g->linked * CONNECT_SHARE >= nvf__array_rows(g->g0))
			rc = connect_all(txn, c, g);
		g->linked = 0;
		return nvf__txn_fail(txn, rc);
	}
	g->linked = 0;
	/* One sweep for every tombstone: repair each node that links to any of them,
	 * with the tombstones' links as extra candidates. */
	int rc = 0;
	size_t cap = 0;
	for (size_t i = 0; i < g->tombs.n; i++)
		cap += g->m0;
	uint32_t *extra = malloc((cap + 1) * sizeof(uint32_t));
	cand *sel = malloc((cap + 2 * (size_t)g->m0 + 8) * sizeof(cand));
	int8_t *pbuf = malloc(4 * (size_t)g->nb + 64);
	if (!extra || !sel || !pbuf) {
		free(extra);
		free(sel);
		free(pbuf);
		return nvf__txn_fail(txn, nvf__oom());
	}
	uint64_t grows = nvf__array_rows(g->g0);
	for (uint64_t y = 0; y < grows && rc == 0; y++) {
		struct nvf_hnsw_node0 *zy = node0(g, y);
		if (!(zy->flags & NVF_HNSW_LINKED) || is_tomb(g, y))
			continue;
		for (int l = 0; l <= zy->level && rc == 0; l++) {
			uint32_t ny;
			const uint32_t *ly = links_of(g, y, l, &ny);
			size_t ne = 0;
			for (uint32_t j = 0; j < ny; j++) {
				if (!is_tomb(g, ly[j]) || node0(g, ly[j])->level < l)
					continue;
				uint32_t nt;
				const uint32_t *lt = links_of(g, ly[j], l, &nt);
				for (uint32_t i = 0; i < nt && ne < cap; i++)
					extra[ne++] = lt[i];
			}
			bool hit = false;
			for (uint32_t j = 0; j < ny && !hit; j++)
				hit = is_tomb(g, ly[j]);
			if (hit)
				rc = repair(txn, c, g, y, l, extra, ne, gone_tomb, 0, sel, pbuf);
		}
	}
	free(extra);
	free(sel);
	free(pbuf);
	/* Now nothing live links to them; links among tombstones go with them. */
	for (size_t i = 0; i < g->tombs.n && rc == 0; i++) {
		uint64_t x = g->tombs.v[i];
		int level = node0(g, x)->level;
		for (int l = 0; l <= level && rc == 0; l++)
			rc = set_links(txn, g, x, l, NULL, 0);
	}
	for (size_t i = 0; i < g->tombs.n && rc == 0; i++)
		rc = finish_removal(txn, g, g->tombs.v[i]);
	memset(g->tomb, 0, (g->tomb_bits + 7) / 8); /* none left: every node may be adopted */
	if (rc == 0)
		rc = connect_all(txn, c, g);
	if (rc != 0)
		return nvf__txn_fail(txn, rc);
	*rows = g->tombs.v;
	*n = g->tombs.n;
	g->tombs.v = NULL;
	g->tombs.n = g->tombs.cap = 0;
	memset(g->tomb, 0, (g->tomb_bits + 7) / 8);
	return 0;
}

/* ---- search ---- */

/* ACORN-1 (Patel et al., SIGMOD 2024) on the graph as it was built: the walk goes only
 * through nodes that pass, and looks through a neighbour that fails to its own
 * neighbours (the two-hop expansion), which keeps the passing part of the graph
 * connected when few pass. A plain filtered walk instead goes through every node and
 * only admits passing ones: cheaper per step, but it wanders when most fail. */
static void search_acorn(query *Q, scratch *s, size_t ef, const cand *entries, size_t nent, size_t *nres,
			 uint64_t max_dist)
{
	size_t nc = 0, nr = 0, failing = 0, fail_max = 4 * ef;
	float best = INFINITY; /* the nearest passing node found */
	for (size_t i = 0; i < nent; i++) {
		if (seen(s, entries[i].r))
			continue;
		mark(s, entries[i].r);
		heap_push(s->cand, &nc, entries[i], false);
		if (admit(Q, entries[i].r)) {
			heap_push(s->res, &nr, entries[i], true);
			best = entries[i].d < best ? entries[i].d : best;
		}
	}
	while (nc > 0) {
		cand c = heap_pop(s->cand, &nc, false);
		if (nr >= ef && c.d > s->res[0].d)
			break;
		if (Q->ndist > max_dist)
			break;
		Q->nvisit++;
		uint32_t n = copy_links(Q->g, c.r, 0, s->links, &Q->bad);
		for (uint32_t i = 0; i < n; i++) {
			uint32_t r = s->links[i];
			if (seen(s, r))
				continue;
			mark(s, r);
			uint32_t hop[1] = {r}, *next = hop;
			uint32_t nn = 1;
			if (!admit(Q, r)) {
				/* Failing nodes nearer to the query than every passing node
				 * found so far are walked through as in a plain walk, a bounded
				 * number of them: when the query lies away from what passes
				 * (near no passing node), the passing nodes nearest to it are
				 * stray ones that only its own neighbourhood links to. Other
				 * failing nodes are only looked through. */
				float dr = 0;
				bool walk = nr == 0;
				if (!walk && failing < fail_max) {
					dr = qdist(Q, r);
					walk = dr < best;
				} else if (walk) {
					dr = qdist(Q, r);
				}
				if (walk) {
					failing++;
					cand cr = {dr, r};
					if (nc + 1 > s->ccap && grow((void **)&s->cand, &s->ccap, nc + 1, sizeof(cand)) != 0) {
						*nres = nr;
						return;
					}
					heap_push(s->cand, &nc, cr, false);
				}
				/* Look through it: its neighbours are the candidates. */
				nn = copy_links(Q->g, r, 0, s->links2, &Q->bad);
				next = s->links2;
			}
			for (uint32_t j = 0; j < nn; j++) {
				uint32_t x = next[j];
				if (next != hop) {
					/* A failing node seen only through another is not marked:
					 * met again as a neighbour, it may still be walked. */
					if (seen(s, x) || !admit(Q, x))
						continue;
					mark(s, x);
				}
				cand cx = {qdist(Q, x), x};
				if (nr < ef || before(cx, s->res[0])) {
					if (nc + 1 > s->ccap && grow((void **)&s->cand, &s->ccap, nc + 1, sizeof(cand)) != 0) {
						*nres = nr;
						return;
					}
					heap_push(s->cand, &nc, cx, false);
					heap_push(s->res, &nr, cx, true);
					best = cx.d < best ? cx.d : best;
					if (nr > ef)
						heap_pop(s->res, &nr, true);
				}
			}
		}
	}
	*nres = nr;
}

/* The k best of the nr nodes a walk left in the max-heap s->res, by exact distance
 * (measured here if the walk was on the codes), as results with their ids; returns
 * how many. A row's id costs a cache miss (another array): only rows that can still
 * enter the k best have it looked up, ties included (they are ranked by id). */
static size_t rank_exact(const nvf_coll *c, scratch *s, size_t nr, const float *q, float qn2, bool quant, size_t k,
			 nvf_result *out)
{
	nvf_topk t = {k, 0, out};
	while (nr > 0) {
		cand x = heap_pop(s->res, &nr, true);
		if (!quant && nr >= k && x.d > s->res[0].d)
			continue; /* k strictly nearer ones remain */
		float score = quant ? nvf__score_row(c, q, qn2, x.r) : x.d;
		if (t.n == k && score > t.h[0].distance)
			continue;
		uint64_t id;
		memcpy(&id, nvf__array_row(c->rowids, x.r), 8);
		nvf__topk_push(&t, score, id);
	}
	nvf__topk_finish(&t, c->cfg.metric);
	return t.n;
}

int nvf__hnsw_scan(nvf_txn *txn, nvf_coll *c, const float *q, size_t k, uint32_t ef, const uint32_t *rows, size_t n,
		   uint64_t work[2], nvf_result *out, size_t *nout)
{
	(void)txn;
	nvf_hnsw *g = c->hnsw;
	/* Re-ranking is cheap next to the scan: keep at least 4k by code, so that the
	 * codes' ranking errors cost little recall even at a small ef. */
	size_t width = ef ? ef : g->efs;
	if (width < 4 * k)
		width = 4 * k;
	scratch *s = get_scratch(nvf__array_rows(c->vec), width, g->m0, g->nb);
	if (!s)
		return nvf__oom();
	query Q = {c, g, {0}, NULL, NULL, UINT64_MAX, 0, 0, k, UINT64_MAX};
	float qn2 = c->k->norm_sq(q, c->cfg.dim);
	probe_init_q(c, g, &Q.p, q, qn2, s->pb, true);
	/* The width nearest by their codes (a max-heap), then measured exactly. */
	size_t nr = 0;
	for (size_t i = 0; i < n; i++) {
		if (i + 8 < n)
			prefetch_row(c, g, Q.p.quant, rows[i + 8]);
		cand x = {qdist(&Q, rows[i]), rows[i]};
		if (nr < width || before(x, s->res[0])) {
			heap_push(s->res, &nr, x, true);
			if (nr > width)
				heap_pop(s->res, &nr, true);
		}
	}
	*nout = rank_exact(c, s, nr, q, qn2, Q.p.quant, k, out);
	if (work)
		work[0] += Q.ndist;
	return 0;
}

/* Entry points among the rows that pass: the nearest of up to SEED_PROBES of them,
 * spread over the set. When what passes lies away from the query (a filter that picks
 * a class of the data), the greedy descent ends among failing nodes, and a walk from
 * there spends most of its time reaching the passing part of the graph. */
#define SEED_PROBES 64
#define SEEDS 4

int nvf__hnsw_search(nvf_txn *txn, nvf_coll *c, const float *q, size_t k, uint32_t ef, bool full_precision,
		     const nvf_rowpred *pred, bool acorn, const uint32_t *pass_rows, size_t npass, uint64_t max_dist,
		     uint64_t work[2], nvf_result *out, size_t *nout)
{
	nvf_hnsw *g = c->hnsw;
	*nout = 0;
	if (g->h.entry == NVF_HNSW_NO_ENTRY)
		return 0;
	size_t width = ef ? ef : g->efs;
	if (width < k)
		width = k;

	uint64_t rows = nvf__array_rows(c->vec);
	scratch *s = get_scratch(rows, width, g->m0, g->nb);
	if (!s)
		return nvf__oom();
	nvf_evalctx ectx = {.txn = txn, .c = c, .tmp = pred && pred->where ? nvf__eval_tmp() : NULL};
	if (pred && pred->where && !ectx.tmp)
		return nvf__oom();
	/* Walk on the 4-bit codes (if any): 400 bytes a step instead of the 3 KB
	 * vector; the ef nodes found are then ranked by their exact distances. */
	query Q = {c, g, {0}, pred && nvf__rowpred_any(pred) ? pred : NULL, &ectx, UINT64_MAX, 0, 0, k, UINT64_MAX};
	float qn2 = c->k->norm_sq(q, c->cfg.dim);
	probe_init_q(c, g, &Q.p, q, qn2, s->pb, !full_precision);
	uint32_t cur = (uint32_t)g->h.entry;
	float curd = qdist(&Q, cur);
	for (int l = (int)g->h.max_level; l > 0; l--)
		greedy(&Q, l, &cur, &curd, s->links);
	cand entry = {curd, cur};
	size_t nr;
	cand ents[1 + SEEDS];
	size_t nent = 1;
	ents[0] = entry;
	if (Q.pred) {
		if (npass > 0) {
			size_t probes = npass < SEED_PROBES ? npass : SEED_PROBES;
			for (size_t i = 0; i < probes; i++) {
				uint32_t r = pass_rows[i * npass / probes];
				cand x = {qdist(&Q, r), r};
				/* Keep the SEEDS nearest (insertion into a short sorted list). */
				size_t at = nent < 1 + SEEDS ? nent : 1 + SEEDS;
				while (at > 1 && before(x, ents[at - 1])) {
					if (at < 1 + SEEDS)
						ents[at] = ents[at - 1];
					at--;
				}
				if (at < 1 + SEEDS) {
					ents[at] = x;
					if (nent < 1 + SEEDS)
						nent++;
				}
			}
		}
	}
	if (acorn && Q.pred)
		search_acorn(&Q, s, width, ents, nent, &nr, max_dist);
	else
		search_level(&Q, s, 0, width, ents, nent, &nr, max_dist);
	if (Q.p.quant)
		for (size_t i = 0; i < nr; i++)
			prefetch_row(c, g, false, s->res[i].r);
	*nout = rank_exact(c, s, nr, q, qn2, Q.p.quant, k, out);
	if (work) {
		work[0] += Q.ndist;
		work[1] += Q.nvisit;
	}
	if (Q.bad != UINT64_MAX) {
		*nout = 0;
		return damaged(Q.bad);
	}
	return ectx.err;
}

/* ---- invariants ---- */

/* Every node's records: levels, links (valid, live, high enough, no duplicates,
 * within the degree bounds), its 4-bit copy; in-links counted into indeg. */
static int check_nodes(nvf_coll *c, nvf_hnsw *g, uint64_t *bad_row, uint32_t *indeg, uint64_t *nodes,
		       uint64_t *per_level)
{
	uint64_t rows = nvf__array_rows(c->vec), grows = nvf__array_rows(g->g0);
	for (uint64_t r = 0; r < rows; r++) {
		uint64_t id;
		memcpy(&id, nvf__array_row(c->rowids, r), 8);
		bool live = id != NVF_ROW_FREE;
		const struct nvf_hnsw_node0 *z = r < grows ? node0(g, r) : NULL;
		bool linked = z && (z->flags & NVF_HNSW_LINKED);
		*bad_row = r;
		if (live != linked)
			return nvf__err(NVF_ECORRUPT, "HNSW: row %llu is %s but %s in the graph", (unsigned long long)r,
					live ? "a record" : "free", linked ? "linked" : "not linked");
		if (!linked)
			continue;
		if (z->level >= NVF_HNSW_MAX_LEVEL || z->level > g->h.max_level)
			return nvf__err(NVF_ECORRUPT, "HNSW: row %llu at level %u above the top %u", (unsigned long long)r,
					z->level, g->h.max_level);
		(*nodes)++;
		per_level[z->level]++;
		if (z->level > 0 && (uint64_t)z->upper + z->level > nvf__array_rows(g->up))
			return nvf__err(NVF_ECORRUPT, "HNSW: row %llu's upper slots %u+%u beyond %llu", (unsigned long long)r,
					z->upper, z->level, (unsigned long long)nvf__array_rows(g->up));
		if (g->qin || g->codes) {
			/* The 4-bit copy is the vector's. */
			uint8_t want[sizeof(struct nvf_hnsw_qparams) + 32768];
			encode(c, g, vec_of(c, r), norm2_of(c, r), want);
			if (memcmp(want, qrec(g, r), sizeof(struct nvf_hnsw_qparams) + g->nb) != 0)
				return nvf__err(NVF_ECORRUPT, "HNSW: row %llu's 4-bit copy does not match its vector",
						(unsigned long long)r);
		}
		for (int l = 0; l <= z->level; l++) {
			uint32_t n;
			const uint32_t *lk = links_of(g, r, l, &n);
			if (n > max_links(g, l))
				return nvf__err(NVF_ECORRUPT, "HNSW: row %llu has %u links at level %d, at most %u",
						(unsigned long long)r, n, l, max_links(g, l));
			for (uint32_t i = 0; i < n; i++) {
				uint64_t y = lk[i];
				if (y >= grows || y == r)
					return nvf__err(NVF_ECORRUPT, "HNSW: row %llu links to row %llu at level %d",
							(unsigned long long)r, (unsigned long long)y, l);
				const struct nvf_hnsw_node0 *zy = node0(g, y);
				if (!(zy->flags & NVF_HNSW_LINKED) || zy->level < l)
					return nvf__err(NVF_ECORRUPT, "HNSW: row %llu links at level %d to row %llu, %s",
							(unsigned long long)r, l, (unsigned long long)y,
							(zy->flags & NVF_HNSW_LINKED) ? "a lower node" : "not a live node");
				for (uint32_t j = 0; j < i; j++)
					if (lk[j] == y)
						return nvf__err(NVF_ECORRUPT, "HNSW: row %llu links twice to row %llu",
								(unsigned long long)r, (unsigned long long)y);
				indeg[y]++;
			}
		}
	}
	for (uint64_t r = 0; r < grows; r++) {
		*bad_row = r;
		if (node0(g, r)->indeg != indeg[r])
			return nvf__err(NVF_ECORRUPT, "HNSW: row %llu has %u links to it, its record says %u",
					(unsigned long long)r, indeg[r], node0(g, r)->indeg);
	}
	return 0;
}

int nvf__hnsw_check(nvf_txn *txn, nvf_coll *c, uint64_t *bad_row)
{
	(void)txn;
	nvf_hnsw *g = c->hnsw;
	uint64_t rows = nvf__array_rows(c->vec), grows = nvf__array_rows(g->g0), nodes = 0;
	uint64_t per_level[NVF_HNSW_MAX_LEVEL] = {0};
	if (grows > rows) {
		*bad_row = rows;
		return nvf__err(NVF_ECORRUPT, "HNSW graph has %llu records for %llu rows", (unsigned long long)grows,
				(unsigned long long)rows);
	}
	if (g->codes && nvf__array_rows(g->codes) < grows) {
		*bad_row = nvf__array_rows(g->codes);
		return nvf__err(NVF_ECORRUPT, "HNSW graph has %llu records but %llu rows of codes", (unsigned long long)grows,
				(unsigned long long)nvf__array_rows(g->codes));
	}
	uint32_t *indeg = calloc(grows ? grows : 1, sizeof(uint32_t));
	if (!indeg)
		return nvf__oom();
	int rc = check_nodes(c, g, bad_row, indeg, &nodes, per_level);
	free(indeg);
	if (rc != 0)
		return rc;
	*bad_row = g->h.entry;
	if (nodes != g->h.nodes || nodes != c->idmap->d.count)
		return nvf__err(NVF_ECORRUPT, "HNSW: %llu linked nodes, the graph record says %llu, the id map %llu",
				(unsigned long long)nodes, (unsigned long long)g->h.nodes,
				(unsigned long long)c->idmap->d.count);
	for (int l = 0; l < NVF_HNSW_MAX_LEVEL; l++)
		if (per_level[l] != g->h.per_level[l])
			return nvf__err(NVF_ECORRUPT, "HNSW: %llu nodes at level %d, the record says %llu",
					(unsigned long long)per_level[l], l, (unsigned long long)g->h.per_level[l]);
	if (nodes == 0) {
		if (g->h.entry != NVF_HNSW_NO_ENTRY)
			return nvf__err(NVF_ECORRUPT, "HNSW: an entry point in an empty graph");
	} else {
		const struct nvf_hnsw_node0 *ze = node0(g, g->h.entry);
		if (!(ze->flags & NVF_HNSW_LINKED) || ze->level != g->h.max_level)
			return nvf__err(NVF_ECORRUPT, "HNSW: entry point row %llu is not a node at the top level %u",
					(unsigned long long)g->h.entry, g->h.max_level);
		for (int l = (int)g->h.max_level + 1; l < NVF_HNSW_MAX_LEVEL; l++)
			if (per_level[l])
				return nvf__err(NVF_ECORRUPT, "HNSW: nodes above the top level %u", g->h.max_level);
	}
	*bad_row = UINT64_MAX;
	return 0;
}

/* ---- statistics (nvf_db_stats) ---- */

int nvf__hnsw_stats(nvf_txn *txn, nvf_coll *c, uint32_t *levels, uint64_t *per_level, size_t nlevels,
		    uint64_t *degree0, size_t ndeg)
{
	(void)txn;
	nvf_hnsw *g = c->hnsw;
	if (!g)
		return 0;
	*levels = g->h.entry == NVF_HNSW_NO_ENTRY ? 0 : g->h.max_level + 1;
	for (size_t l = 0; l < nlevels && l < NVF_HNSW_MAX_LEVEL; l++)
		per_level[l] = g->h.per_level[l];
	uint64_t rows = nvf__array_rows(g->g0);
	for (uint64_t r = 0; r < rows; r++) {
		const struct nvf_hnsw_node0 *z = node0(g, r);
		if (!(z->flags & NVF_HNSW_LINKED))
			continue;
		degree0[z->n < ndeg ? z->n : ndeg - 1]++;
	}
	return nvf__arrays_err(txn);
}

/* ---- packing rows (compaction) ---- */

int nvf__hnsw_move(nvf_txn *txn, nvf_coll *c, uint64_t from, uint64_t to)
{
	nvf_hnsw *g = c->hnsw;
	if (!g)
		return 0;
	uint8_t *dst;
	int rc = nvf__array_row_mut(g->g0, txn, to, &dst);
	if (rc != 0)
		return rc;
	/* Read after the write access: a copy-on-write of a shared chunk moves it. */
	memcpy(dst, nvf__array_row(g->g0, from), g->g0->stride);
	if (g->codes && from < nvf__array_rows(g->codes)) {
		if ((rc = nvf__array_row_mut(g->codes, txn, to, &dst)) != 0)
			return rc;
		memcpy(dst, nvf__array_row(g->codes, from), g->cstride);
	}
	side_drop(g); /* rows move: codes in memory no longer fit (made again if need be) */
	return 0;
}

int nvf__hnsw_level(nvf_coll *c, uint64_t row)
{
	return nvf__hnsw_linked(c, row) ? node0(c->hnsw, row)->level : 0;
}

uint64_t nvf__hnsw_nodes(const nvf_coll *c)
{
	return c->hnsw ? c->hnsw->h.nodes : 0;
}

bool nvf__hnsw_linked(nvf_coll *c, uint64_t row)
{
	nvf_hnsw *g = c->hnsw;
	return g && row < nvf__array_rows(g->g0) && (node0(g, row)->flags & NVF_HNSW_LINKED);
}

uint64_t nvf__hnsw_entry(nvf_coll *c)
{
	return c->hnsw ? c->hnsw->h.entry : NVF_HNSW_NO_ENTRY;
}

int nvf__hnsw_links(nvf_coll *c, uint64_t row, int level, const uint32_t **out, uint32_t *n)
{
	*n = 0;
	*out = NULL;
	if (!nvf__hnsw_linked(c, row) || level > node0(c->hnsw, row)->level)
		return 0;
	nvf_hnsw *g = c->hnsw;
	const struct nvf_hnsw_node0 *z = node0(g, row);
	uint64_t rows = nvf__array_rows(g->g0);
	if (level > 0 && (uint64_t)z->upper + (uint64_t)level > nvf__array_rows(g->up))
		return damaged(row);
	uint32_t m;
	const uint32_t *l = links_of(g, row, level, &m);
	if (m > max_links(g, level))
		return damaged(row);
	for (uint32_t i = 0; i < m; i++)
		if (l[i] >= rows)
			return damaged(row);
	*out = l;
	*n = m;
	return 0;
}

/* Rename n links through new_of_old (every one must name a record). */
static int rename_links(uint32_t *l, uint32_t n, const uint64_t *new_of_old, uint64_t brows, uint64_t live,
			uint64_t from)
{
	for (uint32_t i = 0; i < n; i++) {
		if (l[i] >= brows || new_of_old[l[i]] >= live)
			return nvf__corrupt(0, "row %llu links to row %u, which holds no record", (unsigned long long)from,
					    l[i]);
		l[i] = (uint32_t)new_of_old[l[i]];
	}
	return 0;
}

int nvf__hnsw_permute(nvf_txn *txn, nvf_coll *c, nvf_coll *base, const uint64_t *old_of_new,
		      const uint64_t *new_of_old, uint64_t live)
{
	nvf_hnsw *g = c->hnsw, *b = base->hnsw;
	if (!g || !b)
		return 0;
	uint64_t brows = nvf__array_rows(b->g0), bup = nvf__array_rows(b->up);
	uint32_t slot = 0; /* upper lists are dealt out again in the new row order */
	int rc = 0;
	for (uint64_t r = 0; r < live && rc == 0; r++) {
		uint64_t from = old_of_new[r];
		uint8_t *dst;
		if ((rc = nvf__array_row_mut(g->g0, txn, r, &dst)) != 0)
			break;
		if (from >= brows) { /* a row the graph never reached */
			memset(dst, 0, g->g0->stride);
			continue;
		}
		memcpy(dst, nvf__array_row(b->g0, from), g->g0->stride);
		if (g->codes && b->codes && from < nvf__array_rows(b->codes)) {
			uint8_t *cd;
			if ((rc = nvf__array_row_mut(g->codes, txn, r, &cd)) != 0)
				break;
			memcpy(cd, nvf__array_row(b->codes, from), g->cstride);
		}
		struct nvf_hnsw_node0 *z = (struct nvf_hnsw_node0 *)(void *)dst;
		if (!(z->flags & NVF_HNSW_LINKED))
			continue;
		/* Links name rows: rename them, level 0 in the new record, the upper
		 * lists as they are copied to their new slots. */
		if ((rc = rename_links((uint32_t *)(z + 1), z->n, new_of_old, brows, live, from)) != 0)
			break;
		uint32_t old = z->upper;
		int levels = z->level;
		if (levels == 0)
			continue;
		if ((uint64_t)old + (uint64_t)levels > bup) {
			rc = nvf__corrupt(0, "row %llu: upper slots %u+%d beyond %llu", (unsigned long long)from, old,
					  levels, (unsigned long long)bup);
			break;
		}
		z->upper = slot;
		for (int l = 0; l < levels && rc == 0; l++) {
			uint8_t *p;
			if ((rc = nvf__array_row_mut(g->up, txn, (uint64_t)slot + (uint64_t)l, &p)) != 0)
				break;
			memcpy(p, nvf__array_row(b->up, (uint64_t)old + (uint64_t)l), g->up->stride);
			struct nvf_hnsw_upper *u = (struct nvf_hnsw_upper *)(void *)p;
			rc = rename_links((uint32_t *)(u + 1), u->n, new_of_old, brows, live, from);
		}
		slot += (uint32_t)levels;
	}
	if (rc == 0 && g->h.entry != NVF_HNSW_NO_ENTRY) {
		if (g->h.entry >= brows || new_of_old[g->h.entry] >= live)
			rc = nvf__corrupt(0, "the graph's entry row %llu holds no record", (unsigned long long)g->h.entry);
		else
			g->h.entry = new_of_old[g->h.entry];
		g->dirty = true;
	}
	/* Every upper slot is in use now: none is free, the array ends at the last. */
	if (rc == 0)
		rc = nvf__tree_drop(txn, &g->freeup->d);
	if (rc == 0)
		rc = nvf__array_truncate(g->g0, txn, live);
	if (rc == 0 && g->codes && nvf__array_rows(g->codes) > live)
		rc = nvf__array_truncate(g->codes, txn, live);
	if (rc == 0)
		rc = nvf__array_truncate(g->up, txn, slot);
	return rc == 0 ? nvf__hnsw_flush(txn, c) : rc;
}

int nvf__hnsw_pack(nvf_txn *txn, nvf_coll *c, uint64_t live, const uint64_t *to)
{
	nvf_hnsw *g = c->hnsw;
	if (!g)
		return 0;
	int rc = 0;
	for (uint64_t r = 0; r < live && rc == 0; r++) {
		const struct nvf_hnsw_node0 *z = node0(g, r);
		if (!(z->flags & NVF_HNSW_LINKED))
			continue;
		for (int level = 0; level <= z->level && rc == 0; level++) {
			uint32_t n, *l = links_of(g, r, level, &n);
			bool any = false;
			for (uint32_t i = 0; i < n && !any; i++)
				any = l[i] >= live;
			if (!any)
				continue;
			uint8_t *p;
			if (level == 0)
				rc = nvf__array_row_mut(g->g0, txn, r, &p);
			else
				rc = nvf__array_row_mut(g->up, txn, z->upper + (uint32_t)level - 1, &p);
			if (rc != 0)
				break;
			l = links_of(g, r, level, &n); /* the writable copy now */
			for (uint32_t i = 0; i < n; i++)
				if (l[i] >= live)
					l[i] = (uint32_t)to[l[i] - live];
			z = node0(g, r);
		}
	}
	if (rc == 0 && g->h.entry != NVF_HNSW_NO_ENTRY && g->h.entry >= live) {
		g->h.entry = to[g->h.entry - live];
		g->dirty = true;
	}
	if (rc == 0)
		rc = nvf__array_truncate(g->g0, txn, live);
	if (rc == 0 && g->codes && nvf__array_rows(g->codes) > live)
		rc = nvf__array_truncate(g->codes, txn, live);
	return rc == 0 ? nvf__hnsw_flush(txn, c) : rc;
}
