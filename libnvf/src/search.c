/* The public search functions: argument checks, then the plan: the HNSW graph or
 * an exact scan (flat collections, opts->exact, range searches, and filters that few
 * records pass), with the exact scan as the fallback whenever the graph returned
 * fewer than k matches. */
#include "hnsw.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* Below this estimated share of matching records, a filtered search scans exactly
 * the records that pass rather than walk a graph mostly made of others. */
#define EXACT_BELOW_SELECTIVITY 0.02
#define SELECTIVITY_SAMPLE 256

static int check_opts(const nvf_search_options *o)
{
	if (o && o->version != NVF_SEARCH_OPTIONS_VERSION)
		return nvf__err(NVF_EINVAL, "search options version %u, expected %u (use NVF_SEARCH_OPTIONS_INIT)",
				o->version, NVF_SEARCH_OPTIONS_VERSION);
	if (o && o->threads < 0)
		return nvf__err(NVF_EINVAL, "threads %d: must be 0 (all cores) or more", o->threads);
	if (o && o->ef_search > 100000)
		return nvf__err(NVF_EINVAL, "ef_search %u: at most 100000", o->ef_search);
	if (o && (o->exact & ~1))
		return nvf__err(NVF_EINVAL, "exact %d: must be 0 or 1", o->exact);
	if (o && (o->full_precision & ~1))
		return nvf__err(NVF_EINVAL, "full_precision %d: must be 0 or 1", o->full_precision);
	if (o && o->filter_ctx && !o->filter)
		return nvf__err(NVF_EINVAL, "filter_ctx given without a filter");
	return 0;
}

static int check_k(const nvf_coll *c, size_t k)
{
	if (k == 0)
		return nvf__err(NVF_EINVAL, "k must be at least 1");
	if (k > c->idmap->d.count)
		return nvf__err(NVF_EINVAL, "k = %zu exceeds the %llu records in the collection", k,
				(unsigned long long)c->idmap->d.count);
	return 0;
}

/* Reads in the caller's transaction, or in one of our own. */
static int begin(nvf_db *db, nvf_txn **txn, bool *own, nvf_coll **c)
{
	*own = false;
	if (!db)
		return nvf__err(NVF_EINVAL, "NULL database handle");
	int rc;
	if (*txn) {
		if ((*txn)->db != db)
			return nvf__err(NVF_EINVAL, "the transaction belongs to another handle");
		if ((*txn)->flags & NVF_TXN_F_FAILED)
			return nvf__txn_failed_err(*txn);
	} else {
		if ((rc = nvf_txn_begin(txn, db, NVF_TXN_RDONLY)) != 0)
			return rc;
		*own = true;
	}
	rc = nvf__coll_get(*txn, c);
	if (rc != 0 && *own) {
		nvf_txn_abort(*txn);
		*own = false;
	}
	return rc;
}

static int end(nvf_txn *txn, bool own, int rc)
{
	/* A damaged chunk met on the way: the results cannot be trusted. */
	if (rc == 0)
		rc = nvf__arrays_err(txn);
	if (own)
		nvf_txn_abort(txn);
	return rc;
}

/* Share of live records that pass, from a fixed sample of rows. */
static double selectivity(const nvf_coll *c, const nvf_filter *f)
{
	uint64_t rows = nvf__array_rows(c->vec), seen = 0, pass = 0, x = 0x9E3779B97F4A7C15u;
	for (int i = 0; i < 4 * SELECTIVITY_SAMPLE && seen < SELECTIVITY_SAMPLE && rows; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		uint64_t id;
		memcpy(&id, nvf__array_row(c->rowids, x % rows), 8);
		if (id == NVF_ROW_FREE)
			continue;
		seen++;
		pass += f->fn(id, f->ctx) != 0;
	}
	return seen ? (double)pass / (double)seen : 1.0;
}

static bool use_graph(const nvf_coll *c, const nvf_search_options *o)
{
	return c->hnsw && !(o && o->exact);
}

/* One query, single-threaded inside (batch callers parallelise across queries) or
 * with `threads` for the exact scan. */
static int one(nvf_txn *txn, nvf_coll *c, const float *q, size_t k, const nvf_search_options *o, int threads,
	       double sel, nvf_result *out, size_t *nout)
{
	nvf_filter flt = {o ? o->filter : NULL, o ? o->filter_ctx : NULL};
	const nvf_filter *f = flt.fn ? &flt : NULL;
	if (use_graph(c, o) && (!f || sel >= EXACT_BELOW_SELECTIVITY)) {
		int rc = nvf__hnsw_search(txn, c, q, k, o ? o->ef_search : 0, o && o->full_precision, flt.fn,
					  flt.ctx, out, nout);
		if (rc != 0 || *nout >= k)
			return rc;
		/* Fewer than k: the graph ran out of matches; the scan finds them all. */
	}
	return nvf__flat_search(txn, c, q, k, threads, f, out, nout);
}

int nvf_search(nvf_db *db, nvf_txn *txn, const float *query, size_t dim, size_t k, const nvf_search_options *opts,
	       nvf_result *out, size_t *nout)
{
	nvf_coll *c;
	bool own;
	int rc = check_opts(opts);
	if (rc == 0 && (!out || !nout))
		rc = nvf__err(NVF_EINVAL, "NULL result buffer");
	if (rc != 0 || (rc = begin(db, &txn, &own, &c)) != 0)
		return rc;
	if ((rc = nvf__coll_check_vector(c, query, dim, "query")) == 0 && (rc = check_k(c, k)) == 0) {
		double sel = 1.0;
		if (opts && opts->filter && use_graph(c, opts)) {
			nvf_filter f = {opts->filter, opts->filter_ctx};
			sel = selectivity(c, &f);
		}
		rc = one(txn, c, query, k, opts, opts ? opts->threads : 0, sel, out, nout);
	}
	return end(txn, own, rc);
}

int nvf_search_batch(nvf_db *db, nvf_txn *txn, const float *queries, size_t nq, size_t dim, size_t k,
		     const nvf_search_options *opts, nvf_result *out)
{
	nvf_coll *c;
	bool own;
	int rc = check_opts(opts);
	if (rc == 0 && (!out || !queries))
		rc = nvf__err(NVF_EINVAL, "NULL queries or result buffer");
	if (rc == 0 && nq == 0)
		rc = nvf__err(NVF_EINVAL, "batch of 0 queries");
	if (rc != 0 || (rc = begin(db, &txn, &own, &c)) != 0)
		return rc;
	for (size_t i = 0; i < nq && rc == 0; i++) {
		char what[40];
		snprintf(what, sizeof(what), "query %zu", i);
		rc = nvf__coll_check_vector(c, queries + i * dim, dim, what);
	}
	size_t *nouts = rc == 0 && (rc = check_k(c, k)) == 0 ? malloc(nq * sizeof(size_t)) : NULL;
	if (rc == 0 && !nouts)
		rc = nvf__oom();
	if (rc == 0) {
		nvf_filter flt = {opts ? opts->filter : NULL, opts ? opts->filter_ctx : NULL};
		if (use_graph(c, opts)) {
			double sel = flt.fn ? selectivity(c, &flt) : 1.0;
			int threads = opts ? opts->threads : 0;
#ifdef _OPENMP
			if (threads <= 0)
				threads = omp_get_max_threads();
#endif
			(void)threads;
#pragma omp parallel for schedule(dynamic, 4) num_threads(threads) if (threads > 1 && nq > 1)
			for (size_t i = 0; i < nq; i++) {
				int r = one(txn, c, queries + i * dim, k, opts, 1, sel, out + i * k, &nouts[i]);
				if (r != 0) {
#pragma omp atomic write
					rc = r;
				}
			}
		} else {
			rc = nvf__flat_search_batch(txn, c, queries, nq, k, opts ? opts->threads : 0,
						    flt.fn ? &flt : NULL, out, nouts);
		}
		/* Slots past a query's results (filters): NVF_NO_ID at infinity. */
		for (size_t i = 0; rc == 0 && i < nq; i++)
			for (size_t j = nouts[i]; j < k; j++)
				out[i * k + j] = (nvf_result){NVF_NO_ID, INFINITY};
	}
	free(nouts);
	return end(txn, own, rc);
}

int nvf_range_search(nvf_db *db, nvf_txn *txn, const float *query, size_t dim, float radius,
		     const nvf_search_options *opts, nvf_result **out, size_t *nout)
{
	nvf_coll *c;
	bool own;
	int rc = check_opts(opts);
	if (rc == 0 && (!out || !nout))
		rc = nvf__err(NVF_EINVAL, "NULL result pointers");
	if (rc == 0 && isnan(radius))
		rc = nvf__err(NVF_EINVAL, "radius is NaN");
	if (rc != 0 || (rc = begin(db, &txn, &own, &c)) != 0)
		return rc;
	nvf_filter flt = {opts ? opts->filter : NULL, opts ? opts->filter_ctx : NULL};
	/* Distances are never negative but under inner product (-(a.b)). */
	if (radius < 0 && c->cfg.metric != NVF_METRIC_INNER_PRODUCT)
		rc = nvf__err(NVF_EINVAL, "radius %g: must be zero or more under %s", (double)radius,
			      nvf_metric_name(c->cfg.metric));
	else if ((rc = nvf__coll_check_vector(c, query, dim, "query")) == 0)
		rc = nvf__flat_range(txn, c, query, radius, flt.fn ? &flt : NULL, out, nout);
	return end(txn, own, rc);
}
