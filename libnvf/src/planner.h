/* The filtered-search planner: which records a search's filters let through (a row
 * predicate), how many (estimated from field indexes or a sample), and which plan runs
 * the search. */
#ifndef NVF_PLANNER_H
#define NVF_PLANNER_H

#include "filter.h"

/* What a row must pass: the allowed-row bitset (exact when where is NULL), the
 * compiled filter to evaluate otherwise, and the caller's id callback. */
typedef struct nvf_rowpred {
	const uint64_t *bits;           /* bit r set: row r may pass; NULL: every row may */
	uint64_t nbits;
	const struct nvf_filter *where; /* to evaluate on rows the bits let through; NULL: none */
	int (*fn)(uint64_t id, void *ctx);
	void *fn_ctx;
	nvf_txn *txn;
	nvf_coll *c;
} nvf_rowpred;

static inline bool nvf__rowpred_any(const nvf_rowpred *p)
{
	return p->bits || p->where || p->fn;
}

/* Does (row, id) pass? ctx is the calling thread's own evaluation context. */
static inline bool nvf__rowpred_pass(const nvf_rowpred *p, nvf_evalctx *ctx, uint64_t row, uint64_t id)
{
	if (p->bits && (row >= p->nbits || !(p->bits[row >> 6] >> (row & 63) & 1)))
		return false;
	if (p->where) {
		nvf__evalctx_reset(ctx, row, id);
		if (!nvf__filter_eval(p->where, ctx))
			return false;
	}
	return !p->fn || p->fn(id, p->fn_ctx) != 0;
}

/* A plan's view of the filters of one search call. */
typedef struct nvf_plan {
	nvf_rowpred pred;
	bool filtered;        /* a filter or a callback */
	uint64_t live;        /* records in the collection */
	uint64_t est;         /* records estimated to pass */
	bool exact;           /* est is a count, and pred.bits the exact set (no where, no fn) */
	const char *from;     /* "none", "index", "index+sample", "sample", "evaluated" */
	uint64_t evals;       /* documents read while planning */
	struct nvf_rowset *set; /* the allowed rows (owned or shared with the filter's cache) */
} nvf_plan;

/* Plan the filters of options o for nq queries in txn. */
int nvf__plan(nvf_txn *txn, nvf_coll *c, const nvf_search_options *o, size_t nq, nvf_plan *out);
void nvf__plan_free(nvf_plan *p);

/* The rows of the plan's exact set, ascending, for a scan of only them: *rows points
 * into the plan (valid until nvf__plan_free); 0 if the plan has no exact set. */
size_t nvf__plan_rows(const nvf_plan *p, const uint32_t **rows);

#endif
