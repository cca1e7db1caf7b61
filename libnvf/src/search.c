/* The public search functions: argument checks, then the index that serves them. */
#include "coll.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int check_opts(const nvf_search_options *o)
{
	if (o && o->version != NVF_SEARCH_OPTIONS_VERSION)
		return nvf__err(NVF_EINVAL, "search options version %u, expected %u (use NVF_SEARCH_OPTIONS_INIT)",
				o->version, NVF_SEARCH_OPTIONS_VERSION);
	if (o && o->threads < 0)
		return nvf__err(NVF_EINVAL, "threads %d: must be 0 (all cores) or more", o->threads);
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
			return nvf__err(NVF_EBADTXN, "the transaction failed earlier; abort it");
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
	if (own)
		nvf_txn_abort(txn);
	return rc;
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
	if ((rc = nvf__coll_check_vector(c, query, dim, "query")) == 0 && (rc = check_k(c, k)) == 0)
		rc = nvf__flat_search(txn, c, query, k, opts ? opts->threads : 0, out, nout);
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
	if (rc == 0 && (rc = check_k(c, k)) == 0)
		rc = nvf__flat_search_batch(txn, c, queries, nq, k, opts ? opts->threads : 0, out);
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
	/* Distances are never negative but under inner product (-(a.b)). */
	if (radius < 0 && c->cfg.metric != NVF_METRIC_INNER_PRODUCT)
		rc = nvf__err(NVF_EINVAL, "radius %g: must be zero or more under %s", (double)radius,
			      nvf_metric_name(c->cfg.metric));
	else if ((rc = nvf__coll_check_vector(c, query, dim, "query")) == 0)
		rc = nvf__flat_range(txn, c, query, radius, out, nout);
	return end(txn, own, rc);
}
