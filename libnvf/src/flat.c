/* Exact search: stream every vector straight from the map.
 *
 * One query: the row kernels score a chunk of rows at a time (each chunk is one
 * contiguous extent), threads take contiguous ranges of chunks, each keeps its own
 * k best, merged at the end.
 * Many queries: like a GEMM, a block of queries (sized to stay in L2) meets each
 * chunk of rows through the dot_block micro-kernel; euclidean distances come from
 * |q|^2 + |x|^2 - 2 q.x with the stored norms. That expansion loses precision where
 * |q| and |x| are large and close, so each query keeps a margin of candidates whose
 * distances are then recomputed directly and ranked again: the results equal those
 * of the one-query path. Threads take query blocks. */
#include "planner.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define QBLOCK 128

float nvf__score_to_distance(int metric, float s)
{
	switch (metric) {
	case NVF_METRIC_EUCLIDEAN:
		return sqrtf(s > 0 ? s : 0);
	case NVF_METRIC_ANGULAR: {
		float cs = 1.0f - s;
		cs = cs > 1 ? 1 : cs < -1 ? -1 : cs;
		return acosf(cs) / (float)M_PI;
	}
	default:
		return s;
	}
}

float nvf__distance_to_score(int metric, float d)
{
	switch (metric) {
	case NVF_METRIC_EUCLIDEAN:
		return d * d;
	case NVF_METRIC_ANGULAR:
		return 1.0f - cosf(d * (float)M_PI);
	default:
		return d;
	}
}

static inline float cos_score(float dot, float a2, float b2)
{
	if (a2 <= 0 || b2 <= 0)
		return 1.0f;
	float c = dot / sqrtf(a2 * b2);
	c = c > 1 ? 1 : c < -1 ? -1 : c;
	return 1.0f - c;
}

static inline uint64_t row_id(const nvf_coll *c, uint64_t row)
{
	uint64_t id;
	memcpy(&id, nvf__array_row(c->rowids, row), 8);
	return id;
}

static inline float row_norm2(const nvf_coll *c, uint64_t row)
{
	float n;
	memcpy(&n, nvf__array_row(c->norms, row), 4);
	return n;
}

float nvf__score_row(const nvf_coll *c, const float *q, float qn2, uint64_t row)
{
	const float *x = (const float *)(const void *)nvf__array_row(c->vec, row);
	size_t n = c->cfg.dim;
	const nvf_kernels *k = c->k;
	switch (c->cfg.metric) {
	case NVF_METRIC_EUCLIDEAN:
		return k->l2sq(q, x, n);
	case NVF_METRIC_INNER_PRODUCT:
		return -k->dot(q, x, n);
	case NVF_METRIC_COSINE:
	case NVF_METRIC_ANGULAR:
		return cos_score(k->dot(q, x, n), qn2, row_norm2(c, row));
	case NVF_METRIC_MANHATTAN:
		return k->l1(q, x, n);
	case NVF_METRIC_CHEBYSHEV:
		return k->linf(q, x, n);
	case NVF_METRIC_JACCARD: {
		float smin, smax;
		k->minmax(q, x, n, &smin, &smax);
		return smax > 0 ? 1.0f - smin / smax : 0.0f;
	}
	default:
		return k->hamming(q, x, n);
	}
}

static int cmp_result(const void *a, const void *b)
{
	const nvf_result *x = a, *y = b;
	if (x->distance != y->distance)
		return x->distance < y->distance ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

void nvf__topk_finish(nvf_topk *t, int metric)
{
	if (t->n > 1) /* qsort(NULL, 0) is undefined: a range search may find nothing */
		qsort(t->h, t->n, sizeof(*t->h), cmp_result);
	for (size_t i = 0; i < t->n; i++)
		t->h[i].distance = nvf__score_to_distance(metric, t->h[i].distance);
}

/* Score chunk `ch` against one query into buf (scores, not yet filtered). */
static void score_chunk(const nvf_coll *c, const float *q, float qn2, uint64_t ch, uint64_t cnt, float *buf)
{
	const nvf_array *v = c->vec;
	const float *base = (const float *)(const void *)nvf__array_chunk(v, ch);
	size_t stride = v->stride / 4, n = c->cfg.dim;
	uint64_t r0 = ch << v->shift;
	switch (c->cfg.metric) {
	case NVF_METRIC_EUCLIDEAN:
		c->k->l2sq_rows(q, base, stride, cnt, n, buf);
		break;
	case NVF_METRIC_INNER_PRODUCT:
		c->k->dot_rows(q, base, stride, cnt, n, buf);
		for (uint64_t i = 0; i < cnt; i++)
			buf[i] = -buf[i];
		break;
	case NVF_METRIC_COSINE:
	case NVF_METRIC_ANGULAR:
		c->k->dot_rows(q, base, stride, cnt, n, buf);
		for (uint64_t i = 0; i < cnt; i++)
			buf[i] = cos_score(buf[i], qn2, row_norm2(c, r0 + i));
		break;
	default:
		for (uint64_t i = 0; i < cnt; i++)
			buf[i] = nvf__score_row(c, q, qn2, r0 + i);
	}
}

static void scan_range(const nvf_coll *c, const float *q, float qn2, uint64_t c0, uint64_t c1, nvf_topk *t,
		       float *buf, const nvf_rowpred *flt, nvf_evalctx *ectx)
{
	uint64_t nrows = nvf__array_rows(c->vec);
	if (flt) {
		/* The filter first: distances only for the records that pass. */
		for (uint64_t r = c0 << c->vec->shift; r < nrows && r < (c1 << c->vec->shift) && !ectx->err; r++) {
			uint64_t id = row_id(c, r);
			if (id != NVF_ROW_FREE && nvf__rowpred_pass(flt, ectx, r, id))
				nvf__topk_push(t, nvf__score_row(c, q, qn2, r), id);
		}
		return;
	}
	for (uint64_t ch = c0; ch < c1; ch++) {
		uint64_t cnt = nvf__array_chunk_rows(c->vec, ch, nrows), r0 = ch << c->vec->shift;
		score_chunk(c, q, qn2, ch, cnt, buf);
		for (uint64_t i = 0; i < cnt; i++) {
			uint64_t id = row_id(c, r0 + i);
			if (id != NVF_ROW_FREE)
				nvf__topk_push(t, buf[i], id);
		}
	}
}

static int nthreads(int want, uint64_t work)
{
#ifdef _OPENMP
	int n = want > 0 ? want : omp_get_max_threads();
	/* Small scans are not worth waking threads for. */
	if (work < (UINT64_C(1) << 20))
		n = 1;
	return n < 1 ? 1 : n;
#else
	(void)want;
	(void)work;
	return 1;
#endif
}

int nvf__flat_search(nvf_txn *txn, nvf_coll *c, const float *q, size_t k, int threads, const nvf_rowpred *flt,
		     nvf_result *out, size_t *nout)
{
	if (flt && !nvf__rowpred_any(flt))
		flt = NULL;
	uint64_t nchunks = c->vec->nchunks, rows_per = c->vec->mask + 1;
	float qn2 = c->k->norm_sq(q, c->cfg.dim);
	int nt = nthreads(threads, nvf__array_rows(c->vec) * c->cfg.dim);
	if ((uint64_t)nt > nchunks)
		nt = nchunks ? (int)nchunks : 1;
	uint64_t rows = nvf__array_rows(c->vec);
	if (rows && k > rows)
		k = (size_t)rows; /* no more to find: k must not size the heaps */
	nvf_result *heaps = malloc((size_t)nt * k * sizeof(*heaps));
	float *bufs = malloc((size_t)nt * rows_per * sizeof(float));
	size_t *counts = calloc((size_t)nt, sizeof(*counts));
	if (!heaps || !bufs || !counts) {
		free(heaps);
		free(bufs);
		free(counts);
		return nvf__err(-ENOMEM, "out of memory for search");
	}
	int err = 0;
#pragma omp parallel num_threads(nt) if (nt > 1)
	{
		int me = 0, all = 1;
#ifdef _OPENMP
		me = omp_get_thread_num();
		all = omp_get_num_threads();
#endif
		nvf_topk t = {k, 0, heaps + (size_t)me * k};
		uint64_t c0 = nchunks * (uint64_t)me / (uint64_t)all, c1 = nchunks * (uint64_t)(me + 1) / (uint64_t)all;
		nvf_evalctx ectx = {.txn = txn, .c = c, .tmp = flt && flt->where ? nvf__eval_tmp() : NULL};
		if (flt && flt->where && !ectx.tmp)
			ectx.err = -ENOMEM;
		scan_range(c, q, qn2, c0, c1, &t, bufs + (size_t)me * rows_per, flt, &ectx);
		counts[me] = t.n;
		if (ectx.err) {
#pragma omp atomic write
			err = ectx.err;
		}
	}
	if (err != 0) {
		free(heaps);
		free(bufs);
		free(counts);
		return err == -ENOMEM ? nvf__oom() : err;
	}
	nvf_topk all = {k, 0, out};
	for (int i = 0; i < nt; i++)
		for (size_t j = 0; j < counts[i]; j++)
			nvf__topk_push(&all, heaps[(size_t)i * k + j].distance, heaps[(size_t)i * k + j].id);
	nvf__topk_finish(&all, c->cfg.metric);
	*nout = all.n;
	free(heaps);
	free(bufs);
	free(counts);
	return 0;
}

/* ---- batch ---- */

typedef struct block_ctx {
	const nvf_coll *c;
	const float *qs;
	size_t nq, k, kk;
	nvf_result *out;
} block_ctx;

static bool gemm_metric(int m)
{
	return m == NVF_METRIC_EUCLIDEAN || m == NVF_METRIC_INNER_PRODUCT || m == NVF_METRIC_COSINE ||
	       m == NVF_METRIC_ANGULAR;
}

/* Queries [q0, q0 + nb) against every chunk; results to out. */
static int run_block(const block_ctx *b, size_t q0, size_t nb, float *tile, nvf_result *heapmem, float *qn2,
		     uint64_t *ids, float *xn2)
{
	const nvf_coll *c = b->c;
	const nvf_array *v = c->vec;
	size_t dim = c->cfg.dim, stride = v->stride / 4;
	int metric = c->cfg.metric;
	uint64_t nrows = nvf__array_rows(v), rows_per = v->mask + 1;
	nvf_topk *t = (nvf_topk *)(void *)(heapmem + nb * b->kk);
	for (size_t i = 0; i < nb; i++) {
		t[i] = (nvf_topk){b->kk, 0, heapmem + i * b->kk};
		qn2[i] = c->k->norm_sq(b->qs + (q0 + i) * dim, dim);
	}
	for (uint64_t ch = 0; ch < v->nchunks; ch++) {
		uint64_t cnt = nvf__array_chunk_rows(v, ch, nrows), r0 = ch << v->shift;
		for (uint64_t j = 0; j < cnt; j++) {
			ids[j] = row_id(c, r0 + j);
			xn2[j] = row_norm2(c, r0 + j);
		}
		c->k->dot_block(b->qs + q0 * dim, dim, nb, (const float *)(const void *)nvf__array_chunk(v, ch), stride, cnt, dim,
				tile, rows_per);
		for (size_t i = 0; i < nb; i++) {
			const float *dots = tile + i * rows_per;
			for (uint64_t j = 0; j < cnt; j++) {
				if (ids[j] == NVF_ROW_FREE)
					continue;
				float s;
				if (metric == NVF_METRIC_EUCLIDEAN)
					s = qn2[i] + xn2[j] - 2.0f * dots[j];
				else if (metric == NVF_METRIC_INNER_PRODUCT)
					s = -dots[j];
				else
					s = cos_score(dots[j], qn2[i], xn2[j]);
				nvf__topk_push(&t[i], s, r0 + j); /* the row: re-ranking needs it */
			}
		}
	}
	return 0;
}

int nvf__flat_search_rows(nvf_txn *txn, nvf_coll *c, const float *q, size_t k, const uint32_t *rows, size_t n,
			  nvf_result *out, size_t *nout)
{
	(void)txn;
	float qn2 = c->k->norm_sq(q, c->cfg.dim);
	nvf_topk t = {k, 0, out};
	for (size_t i = 0; i < n; i++) {
		if (i + 4 < n)
			__builtin_prefetch(nvf__array_row(c->vec, rows[i + 4]));
		nvf__topk_push(&t, nvf__score_row(c, q, qn2, rows[i]), row_id(c, rows[i]));
	}
	nvf__topk_finish(&t, c->cfg.metric);
	*nout = t.n;
	return 0;
}

int nvf__flat_search_batch(nvf_txn *txn, nvf_coll *c, const float *qs, size_t nq, size_t k, int threads,
			   const nvf_rowpred *flt, nvf_result *out, size_t *nouts)
{
	size_t dim = c->cfg.dim;
	if (flt && !nvf__rowpred_any(flt))
		flt = NULL;
	if (!gemm_metric(c->cfg.metric) || flt) {
		/* No block kernel for the metric, or a filter: one scan per query, the
		 * queries in parallel. */
		int rc = 0;
		int nt = nthreads(threads, (uint64_t)nq * nvf__array_rows(c->vec) * dim);
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt) if (nt > 1)
		for (size_t i = 0; i < nq; i++) {
			int r = nvf__flat_search(txn, c, qs + i * dim, k, 1, flt, out + i * k, &nouts[i]);
			if (r != 0) {
#pragma omp atomic write
				rc = r;
			}
		}
		return rc;
	}
	/* nouts: min(k, live) each, set as each query's results are ranked. The
	 * candidates' distances are recomputed directly at the end; keep a margin
	 * so that rounding in the expansion cannot push a true neighbour out. */
	size_t kk = 2 * k + 8;
	uint64_t live = c->idmap->d.count;
	if (kk > live)
		kk = (size_t)live;
	uint64_t rows_per = c->vec->mask + 1;
	int nt = nthreads(threads, (uint64_t)nq * nvf__array_rows(c->vec) * dim);
	/* Blocks of at most QBLOCK queries, as many as a multiple of the threads and
	 * of even size: 150 queries on 2 threads are 75 + 75, not 128 + 22 (a
	 * caller that slices a batch, like the Python module, sends such counts). */
	size_t nblocks = (nq + QBLOCK - 1) / QBLOCK;
	nblocks = (nblocks + (size_t)nt - 1) / (size_t)nt * (size_t)nt;
	if (nblocks > nq)
		nblocks = nq;
	size_t qb = (nq + nblocks - 1) / nblocks;
	nblocks = (nq + qb - 1) / qb;
	block_ctx b = {c, qs, nq, k, kk, out};
	int rc = 0;
#pragma omp parallel num_threads(nt) if (nt > 1)
	{
		float *tile = malloc(qb * rows_per * sizeof(float));
		nvf_result *heapmem = malloc(qb * kk * sizeof(nvf_result) + qb * sizeof(nvf_topk) + 64);
		float *qn2 = malloc(qb * sizeof(float));
		uint64_t *ids = malloc(rows_per * sizeof(uint64_t));
		float *xn2 = malloc(rows_per * sizeof(float));
		if (!tile || !heapmem || !qn2 || !ids || !xn2) {
#pragma omp atomic write
			rc = nvf__oom();
		} else {
#pragma omp for schedule(dynamic, 1)
			for (size_t blk = 0; blk < nblocks; blk++) {
				size_t q0 = blk * qb, nb = nq - q0 < qb ? nq - q0 : qb;
				run_block(&b, q0, nb, tile, heapmem, qn2, ids, xn2);
				nvf_topk *t = (nvf_topk *)(void *)(heapmem + nb * kk);
				for (size_t i = 0; i < nb; i++) {
					/* Re-rank the candidates (rows) by the direct distance. */
					const float *q = qs + (q0 + i) * dim;
					nvf_topk fin = {k, 0, out + (q0 + i) * k};
					for (size_t j = 0; j < t[i].n; j++) {
						uint64_t row = t[i].h[j].id;
						nvf__topk_push(&fin, nvf__score_row(c, q, qn2[i], row), row_id(c, row));
					}
					nvf__topk_finish(&fin, c->cfg.metric);
					nouts[q0 + i] = fin.n;
				}
			}
		}
		free(tile);
		free(heapmem);
		free(qn2);
		free(ids);
		free(xn2);
	}
	return rc == 0 ? 0 : nvf__err(rc, "out of memory for batch search");
}

/* ---- range ---- */

int nvf__flat_range(nvf_txn *txn, nvf_coll *c, const float *q, float radius, const nvf_rowpred *flt,
		    nvf_result **out, size_t *nout)
{
	if (flt && !nvf__rowpred_any(flt))
		flt = NULL;
	nvf_evalctx ectx = {.txn = txn, .c = c, .tmp = flt && flt->where ? nvf__eval_tmp() : NULL};
	if (flt && flt->where && !ectx.tmp)
		return nvf__oom();
	/* Prefilter on the score with a little slack, then decide on the reported
	 * distance itself, so that the boundary is the one the caller sees. */
	float limit = nvf__distance_to_score(c->cfg.metric, radius);
	limit += fabsf(limit) * 1e-5f + 1e-30f;
	float qn2 = c->k->norm_sq(q, c->cfg.dim);
	uint64_t nrows = nvf__array_rows(c->vec), rows_per = c->vec->mask + 1;
	float *buf = malloc(rows_per * sizeof(float));
	NVF_VEC(nvf_result) res = {0};
	if (!buf)
		return nvf__oom();
	int rc = 0;
	for (uint64_t ch = 0; ch < c->vec->nchunks && rc == 0; ch++) {
		uint64_t cnt = nvf__array_chunk_rows(c->vec, ch, nrows), r0 = ch << c->vec->shift;
		score_chunk(c, q, qn2, ch, cnt, buf);
		for (uint64_t i = 0; i < cnt && rc == 0; i++) {
			uint64_t id = row_id(c, r0 + i);
			if (id != NVF_ROW_FREE && buf[i] <= limit && (!flt || nvf__rowpred_pass(flt, &ectx, r0 + i, id)) &&
			    nvf__score_to_distance(c->cfg.metric, buf[i]) <= radius) {
				nvf_result r = {id, buf[i]};
				rc = NVF_VEC_PUSH(res, r);
			}
		}
		if (rc == 0)
			rc = ectx.err;
	}
	free(buf);
	if (rc != 0) {
		NVF_VEC_FREE(res);
		return rc == -ENOMEM ? nvf__err(rc, "out of memory for range search") : rc;
	}
	nvf_topk t = {res.n, res.n, res.v};
	nvf__topk_finish(&t, c->cfg.metric);
	*out = res.v;
	*nout = res.n;
	return 0;
}
