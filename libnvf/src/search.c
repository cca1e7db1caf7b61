/* The public search functions: argument checks, the planner's view of the filters
 * (planner.c), and the choice of plan per query:
 *  - exact: flat collections, opts->exact, range searches;
 *  - exact over the passing rows: when the planner knows them and they are few
 *    enough that measuring each costs less than a walk;
 *  - a graph walk that admits only passing rows (most pass), or ACORN-1's walk through
 *    passing rows only (fewer pass);
 * with a budget: a walk that has computed more distances than the scan would have
 * stops, and the scan answers; so does one that found fewer than min(k, passing)
 * results. */
#include "hnsw.h"
#include "planner.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* The plan's cost model, in nanoseconds, from Fashion-MNIST on the 2-core development
 * machine (bench/run filter); only the ratios matter:
 *  - a scan of the passing rows reads each one's 4-bit codes (or float32 vector) in
 *    row order: SCAN_NS_PER_BYTE a byte (codes fit the cache better: dearer a byte
 *    than streaming vectors, but 8 times fewer);
 *  - a walk of width ef costs WALK_NS_PER_EF a unit of ef, divided by the square root
 *    of the share that passes (the share of admitted nodes among those visited), and
 *    ACORN-1's walk (below ACORN_BELOW) ACORN_FACTOR times more for its two-hop
 *    expansions.
 * Measured there: a 10% filter (6,000 rows) scans at 6,800 queries/s with recall
 * 0.9996-1, where ACORN reaches 2,000 to 4,000 at recall 0.87-0.99 depending on the
 * class (the nearest members of a class to a query of another class are stray nodes
 * that few walks reach); a 50% filter walks at 13,000 queries/s (recall 0.998 at ef
 * 40) where the scan of 30,000 rows manages 1,500. A scan within SCAN_PREFERRED of a
 * walk's cost wins: it sees every passing row. */
#define SCAN_NS_PER_CODE_BYTE 0.06
#define SCAN_NS_PER_VECTOR_BYTE 0.032
#define WALK_NS_PER_EF 1200.0
#define ACORN_BELOW 0.3
#define ACORN_FACTOR 2.5
#define SCAN_PREFERRED 1.5

static int check_opts(const nvf_search_options *o)
{
	if (o && o->version != NVF_SEARCH_OPTIONS_VERSION && o->version != 1)
		return nvf__err(NVF_EINVAL, "search options version %u, expected %u (use NVF_SEARCH_OPTIONS_INIT)",
				o->version, NVF_SEARCH_OPTIONS_VERSION);
	if (o && o->threads < 0)
		return nvf__err(NVF_EINVAL, "threads %d: must be 0 (all cores) or more", o->threads);
	if (o && o->ef_search > NVF_MAX_EF)
		return nvf__err(NVF_EINVAL, "ef_search %u: at most 100000", o->ef_search);
	if (o && (o->exact & ~1))
		return nvf__err(NVF_EINVAL, "exact %d: must be 0 or 1", o->exact);
	if (o && (o->full_precision & ~1))
		return nvf__err(NVF_EINVAL, "full_precision %d: must be 0 or 1", o->full_precision);
	if (o && o->filter_ctx && !o->filter)
		return nvf__err(NVF_EINVAL, "filter_ctx given without a filter");
	if (o && o->version >= 2 && (o->plan < NVF_PLAN_AUTO || o->plan > NVF_PLAN_ACORN))
		return nvf__err(NVF_EINVAL, "plan %d: use NVF_PLAN_AUTO, _EXACT, _SCAN, _WALK or _ACORN", o->plan);
	if (o && o->version >= 2 && o->plan && o->exact && o->plan != NVF_PLAN_EXACT)
		return nvf__err(NVF_EINVAL, "exact = 1 with another plan than NVF_PLAN_EXACT");
	if (o && o->version >= 2 && o->explain && o->explain->version != NVF_EXPLAIN_VERSION)
		return nvf__err(NVF_EINVAL, "explain version %u, expected %u (use NVF_EXPLAIN_INIT)", o->explain->version,
				NVF_EXPLAIN_VERSION);
	return 0;
}

static nvf_explain *explain_of(const nvf_search_options *o)
{
	return o && o->version >= 2 ? o->explain : NULL;
}

static int check_plan(const nvf_coll *c, const nvf_search_options *o)
{
	if (o && o->version >= 2 && (o->plan == NVF_PLAN_WALK || o->plan == NVF_PLAN_ACORN) && !c->hnsw)
		return nvf__err(NVF_EINVAL, "plan %s walks a graph: this collection has no HNSW index",
				o->plan == NVF_PLAN_WALK ? "WALK" : "ACORN");
	return 0;
}

static int check_k(const nvf_coll *c, size_t k)
{
	if (k == 0)
		return nvf__err(NVF_EINVAL, "k must be at least 1");
	if (k > NVF_MAX_K)
		return nvf__err(NVF_EINVAL, "k %zu: at most %u (NVF_MAX_K)", k, NVF_MAX_K);
	(void)c; /* k past the count returns every record (the plan measures them all) */
	return 0;
}

/* What a search ranks at most: k past the rows finds no more, and must not size
 * the scratch (k up to NVF_MAX_K on a small collection). Output slots stay k. */
static size_t rank_k(const nvf_coll *c, size_t k)
{
	uint64_t rows = nvf__array_rows(c->vec);
	return rows && k > rows ? (size_t)rows : k;
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

enum plan_kind { PK_EXACT, PK_EXACT_SET, PK_CODES_SET, PK_GRAPH, PK_GRAPH_FILTERED, PK_GRAPH_ACORN };
static const char *const plan_names[] = {"exact", "exact-filtered", "scan-filtered", "graph", "graph-filtered",
					 "graph-acorn"};

/* What the queries of one call did (explain). */
typedef struct stats {
	uint64_t distances, visited;
	uint32_t fallbacks;
} stats;

static bool use_graph(const nvf_coll *c, const nvf_search_options *o)
{
	return c->hnsw && !(o && o->exact);
}

/* Bytes one distance reads: a float32 row for the scan; the walk's record. */
static double walk_bytes(const nvf_coll *c, const nvf_search_options *o)
{
	bool quant = c->cfg.hnsw_quant == NVF_QUANT_SQ4 && !(o && o->full_precision) && c->cfg.walk != NVF_WALK_FLOAT;
	return quant ? (c->cfg.dim + 1) / 2 + 12.0 : 4.0 * c->cfg.dim;
}

/* The cost of scanning, in the walk's distances: the passing rows if the plan knows
 * them, otherwise every row with its filter evaluated (a document read costs about
 * as much as a 1 KB row). */
static uint64_t scan_budget(const nvf_coll *c, const nvf_search_options *o, const nvf_plan *p)
{
	double row = 4.0 * c->cfg.dim, walk = walk_bytes(c, o);
	double cost = p->exact ? (double)p->est * row : (double)p->live * (p->pred.where ? 1024.0 + row : row);
	double d = cost / walk;
	return d > 1e15 ? UINT64_MAX : (uint64_t)d + 1;
}

static enum plan_kind choose(const nvf_coll *c, const nvf_search_options *o, const nvf_plan *p, size_t k,
			     size_t width)
{
	int want = o && o->version >= 2 && p->filtered ? o->plan : NVF_PLAN_AUTO;
	bool set = p->exact && p->filtered;
	if (!use_graph(c, o) || want == NVF_PLAN_EXACT)
		return set ? PK_EXACT_SET : PK_EXACT;
	if (!p->filtered)
		return k >= p->live ? PK_EXACT : PK_GRAPH; /* all of them: measure, don't walk */
	if (want == NVF_PLAN_SCAN)
		return !set ? PK_EXACT : walk_bytes(c, o) < 4.0 * c->cfg.dim ? PK_CODES_SET : PK_EXACT_SET;
	if (want == NVF_PLAN_WALK)
		return PK_GRAPH_FILTERED;
	if (want == NVF_PLAN_ACORN)
		return PK_GRAPH_ACORN;
	double sel = p->live ? (double)p->est / (double)p->live : 1.0;
	if (p->exact && p->est <= k)
		return PK_EXACT_SET;
	bool acorn = sel < ACORN_BELOW;
	double walk = WALK_NS_PER_EF * (double)width / sqrt(sel > 1e-9 ? sel : 1e-9) * (acorn ? ACORN_FACTOR : 1.0);
	if (p->exact) {
		/* The passing rows' 4-bit codes (an eighth of the vectors), or their vectors. */
		bool codes = walk_bytes(c, o) < 4.0 * c->cfg.dim;
		double scan = (double)p->est * (codes ? walk_bytes(c, o) * SCAN_NS_PER_CODE_BYTE
						      : 4.0 * c->cfg.dim * SCAN_NS_PER_VECTOR_BYTE);
		if (scan <= SCAN_PREFERRED * walk)
			return codes ? PK_CODES_SET : PK_EXACT_SET;
	}
	return acorn ? PK_GRAPH_ACORN : PK_GRAPH_FILTERED;
}

/* One query, single-threaded inside (batch callers parallelise across queries) or
 * with `threads` for the exact scan. */
static int one(nvf_txn *txn, nvf_coll *c, const float *q, size_t k, const nvf_search_options *o, int threads,
	       const nvf_plan *p, enum plan_kind kind, nvf_result *out, size_t *nout, stats *st)
{
	const nvf_rowpred *pred = p->filtered ? &p->pred : NULL;
	const uint32_t *rows;
	size_t nrows;
	int rc;
	if (kind >= PK_GRAPH) {
		uint64_t budget = kind == PK_GRAPH ? UINT64_MAX : scan_budget(c, o, p);
		uint64_t work[2] = {0, 0};
		nrows = nvf__plan_rows(p, &rows);
		/* The default walk is the one NVF_QUANT_AUTO measured (calib.c). */
		rc = nvf__hnsw_search(txn, c, q, k, o ? o->ef_search : 0,
				      (o && o->full_precision) || c->cfg.walk == NVF_WALK_FLOAT, pred,
				      kind == PK_GRAPH_ACORN, rows, nrows, budget, work, out, nout);
		st->distances += work[0];
		st->visited += work[1];
		/* Whenever fewer than k came back, the scan says whether there are more. */
		if (rc != 0 || *nout >= k || (p->exact && *nout >= p->est))
			return rc;
		st->fallbacks++;
		kind = p->exact ? PK_EXACT_SET : PK_EXACT;
	}
	if (kind == PK_CODES_SET && (nrows = nvf__plan_rows(p, &rows)) > 0) {
		uint64_t work[2] = {0, 0};
		rc = nvf__hnsw_scan(txn, c, q, k, o ? o->ef_search : 0, rows, nrows, work, out, nout);
		st->distances += work[0];
		return rc;
	}
	if ((kind == PK_EXACT_SET || kind == PK_CODES_SET) && (nrows = nvf__plan_rows(p, &rows)) > 0) {
		st->distances += nrows;
		return nvf__flat_search_rows(txn, c, q, k, rows, nrows, out, nout);
	}
	if ((kind == PK_EXACT_SET || kind == PK_CODES_SET) && p->exact) {
		*nout = 0; /* nothing passes */
		return 0;
	}
	st->distances += p->filtered ? p->est : p->live;
	return nvf__flat_search(txn, c, q, k, threads, pred, out, nout);
}

static void explain_fill(nvf_explain *e, const nvf_plan *p, enum plan_kind kind, const stats *st, size_t nq)
{
	if (!e)
		return;
	e->plan = plan_names[kind];
	e->estimate_from = p->from;
	e->estimate = p->est;
	e->records = p->live;
	e->visited = st->visited;
	e->distances = st->distances;
	e->filter_evals = p->evals;
	e->fallbacks = st->fallbacks;
	snprintf(e->text, sizeof(e->text),
		 "plan %s; %s %llu of %llu records pass (%s); %zu quer%s: %llu nodes visited, %llu distances, %llu documents read, %u fell back to the exact scan",
		 e->plan, p->exact ? "exactly" : "about", (unsigned long long)p->est, (unsigned long long)p->live, p->from,
		 nq, nq == 1 ? "y" : "ies", (unsigned long long)st->visited, (unsigned long long)st->distances,
		 (unsigned long long)p->evals, st->fallbacks);
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
	nvf_plan p;
	if ((rc = nvf__coll_check_vector(c, query, dim, "query")) == 0 && (rc = check_k(c, k)) == 0 &&
	    (rc = check_plan(c, opts)) == 0 && (rc = nvf__plan(txn, c, opts, 1, &p)) == 0) {
		size_t width = opts && opts->ef_search ? opts->ef_search : c->cfg.hnsw_ef_search;
		enum plan_kind kind = choose(c, opts, &p, k, width < k ? k : width);
		stats st = {0};
		rc = one(txn, c, query, rank_k(c, k), opts, opts ? opts->threads : 0, &p, kind, out, nout, &st);
		explain_fill(explain_of(opts), &p, kind, &st, 1);
		nvf__plan_free(&p);
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
	if (rc == 0 && nq > NVF_MAX_BATCH)
		rc = nvf__err(NVF_EINVAL, "batch of %zu queries: at most %u (NVF_MAX_BATCH)", nq, NVF_MAX_BATCH);
	if (rc != 0 || (rc = begin(db, &txn, &own, &c)) != 0)
		return rc;
	for (size_t i = 0; i < nq && rc == 0; i++) {
		char what[40];
		snprintf(what, sizeof(what), "query %zu", i);
		rc = nvf__coll_check_vector(c, queries + i * dim, dim, what);
	}
	size_t *nouts = rc == 0 && (rc = check_k(c, k)) == 0 && (rc = check_plan(c, opts)) == 0 ? malloc(nq * sizeof(size_t)) : NULL;
	if (rc == 0 && !nouts)
		rc = nvf__oom();
	nvf_plan p;
	bool planned = rc == 0 && (rc = nvf__plan(txn, c, opts, nq, &p)) == 0;
	if (planned) {
		size_t width = opts && opts->ef_search ? opts->ef_search : c->cfg.hnsw_ef_search;
		enum plan_kind kind = choose(c, opts, &p, k, width < k ? k : width);
		stats st = {0};
		if (kind >= PK_GRAPH || ((kind == PK_EXACT_SET || kind == PK_CODES_SET) && p.exact)) {
			int threads = opts ? opts->threads : 0;
#ifdef _OPENMP
			if (threads <= 0)
				threads = omp_get_max_threads();
#endif
			(void)threads;
#pragma omp parallel num_threads(threads) if (threads > 1 && nq > 1)
			{
				stats mine = {0};
#pragma omp for schedule(dynamic, 4)
				for (size_t i = 0; i < nq; i++) {
					int r = one(txn, c, queries + i * dim, rank_k(c, k), opts, 1, &p, kind, out + i * k,
						    &nouts[i], &mine);
					if (r != 0) {
#pragma omp atomic write
						rc = r;
					}
				}
#pragma omp critical
				{
					st.distances += mine.distances;
					st.visited += mine.visited;
					st.fallbacks += mine.fallbacks;
				}
			}
		} else {
			rc = nvf__flat_search_batch(txn, c, queries, nq, k, opts ? opts->threads : 0,
						    p.filtered ? &p.pred : NULL, out, nouts);
			st.distances = (uint64_t)nq * (p.filtered ? p.est : p.live);
		}
		/* Slots past a query's results (filters): NVF_NO_ID at infinity. */
		for (size_t i = 0; rc == 0 && i < nq; i++)
			for (size_t j = nouts[i]; j < k; j++)
				out[i * k + j] = (nvf_result){NVF_NO_ID, INFINITY};
		explain_fill(explain_of(opts), &p, kind, &st, nq);
		nvf__plan_free(&p);
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
	nvf_plan p;
	/* Distances are never negative but under inner product (-(a.b)). */
	if (radius < 0 && c->cfg.metric != NVF_METRIC_INNER_PRODUCT)
		rc = nvf__err(NVF_EINVAL, "radius %g: must be zero or more under %s", (double)radius,
			      nvf_metric_name(c->cfg.metric));
	else if ((rc = nvf__coll_check_vector(c, query, dim, "query")) == 0 && (rc = nvf__plan(txn, c, opts, 1, &p)) == 0) {
		rc = nvf__flat_range(txn, c, query, radius, p.filtered ? &p.pred : NULL, out, nout);
		stats st = {(uint64_t)p.live, 0, 0};
		explain_fill(explain_of(opts), &p, PK_EXACT, &st, 1);
		nvf__plan_free(&p);
	}
	return end(txn, own, rc);
}
