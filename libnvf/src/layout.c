/* Compaction's locality order of an HNSW collection's rows (compact.c).
 *
 * A first query in a new process pays one page fault per run of pages it touches
 * (in the map, and in the tags of its visited set), so what it costs is how many
 * distinct places hold the nodes it visits. Those nodes are near the query in space:
 * laying rows out so that nodes near in space are near in the file makes a walk
 * touch a few runs of pages, whatever the collection's size.
 *
 * The order comes from the graph's own hierarchy. Every node but the entry point
 * takes a parent one level up: its nearest node there, found by a greedy walk on that
 * level's links from the nearest of its own links (at its top level) that reaches
 * higher (else of its links' links, else the entry point). Parents are near their
 * children, so a subtree is a neighbourhood: with M = 16 a level-1 node and its ~16
 * children, a level-2 node and its ~256 descendants, and so on. The walk matters: the
 * nearest higher node among the links alone lands in another cluster for a quarter of
 * the level-1 nodes of clustered data, which cut the clusters into runs of 30 rows.
 * The rows are the depth-first preorder of that tree from the entry point, so every
 * subtree is one run of rows, except that the nodes of level 2 and above come first
 * (HOT_LEVEL). Open plus first query in a new process on 1M x 96 vectors around 1,024
 * Gaussian centres (bench/bench_open.c; median of 25, ef 40): 3.6 ms in insertion
 * order, 1.0 ms in breadth-first order of level 0 from the entry (its layers mix
 * nodes far apart: same-cluster runs of 9 rows), 0.94 ms in the order of a random
 * projection tree (in 96 dimensions a median split cuts through half of the clusters
 * at every level), 0.67 ms in this order without the hot run first (runs of 58 rows),
 * 0.55 ms with it (the pages mapped by a first query: 9.3 MB, then 5.1 MB); blocks of
 * 256 or 1,024 rows grown breadth first from seeds measured as the plain order.
 * Cost: O(N * M) link reads and a few distances per node. */
#include "coll.h"
#include "hnsw.h"
#include "nvf_int.h"

#include <stdlib.h>
#include <string.h>

#define NONE UINT64_MAX
/* Nodes at this level and above go first, in one run: every query's descent reads
 * them, and in their subtrees they sit far apart. About N / M^2 of them: 4,000 (800 KB
 * of level-0 records) at 1M. */
#define HOT_LEVEL 2

/* The nearest of row's candidates (its links at level, or their links with two_hop)
 * whose top level is above level; NONE if none. */
/* Rows come from links nvf__hnsw_links checked against the graph's rows, which the
 * graph's open checked against the vectors'. */
static const float *vec_of(nvf_coll *c, uint64_t row)
{
	return (const float *)(const void *)nvf__array_row(c->vec, row);
}

static int parent_among(nvf_coll *c, uint64_t row, int level, bool two_hop, uint64_t *best_out, float *bestd_out)
{
	uint32_t n;
	const uint32_t *l;
	int rc = nvf__hnsw_links(c, row, level, &l, &n);
	uint64_t best = NONE;
	float bestd = 0;
	const float *v = vec_of(c, row);
	for (uint32_t i = 0; i < n && rc == 0; i++) {
		uint32_t m = 1;
		const uint32_t *cand = &l[i];
		if (two_hop && (rc = nvf__hnsw_links(c, l[i], level, &cand, &m)) != 0)
			break;
		for (uint32_t j = 0; j < m; j++) {
			if (nvf__hnsw_level(c, cand[j]) <= level)
				continue;
			float d;
			nvf_distance(c->cfg.metric, v, vec_of(c, cand[j]), c->cfg.dim, &d);
			if (best == NONE || d < bestd) {
				best = cand[j];
				bestd = d;
			}
		}
	}
	*best_out = best;
	*bestd_out = bestd;
	return rc;
}

/* The nearest node at level + 1 to row, greedily from *p (at distance d). */
static int nearest_above(nvf_coll *c, uint64_t row, int level, uint64_t *p, float d)
{
	const float *v = vec_of(c, row);
	int rc = 0;
	for (bool moved = true; moved && rc == 0;) {
		moved = false;
		uint32_t n;
		const uint32_t *l;
		rc = nvf__hnsw_links(c, *p, level + 1, &l, &n);
		for (uint32_t i = 0; i < n; i++) {
			float e;
			nvf_distance(c->cfg.metric, v, vec_of(c, l[i]), c->cfg.dim, &e);
			if (e < d) {
				*p = l[i];
				d = e;
				moved = true;
			}
		}
	}
	return rc;
}

int nvf__layout_order(nvf_txn *txn, nvf_coll *c, uint64_t **out, uint64_t *nout)
{
	uint64_t rows = nvf__array_rows(c->vec), entry = nvf__hnsw_entry(c), n = 0;
	size_t sz = (rows ? rows : 1) * sizeof(uint64_t);
	uint64_t *parent = malloc(sz), *first = calloc(rows + 2, sizeof(uint64_t)), *kids = malloc(sz),
		 *order = malloc(sz), *stack = malloc(sz);
	int rc = parent && first && kids && order && stack ? 0 : nvf__oom();
	for (uint64_t r = 0; r < rows && rc == 0; r++) {
		uint64_t id;
		memcpy(&id, nvf__array_row(c->rowids, r), 8);
		parent[r] = NONE;
		if (id == NVF_ROW_FREE || !nvf__hnsw_linked(c, r) || r == entry)
			continue;
		int level = nvf__hnsw_level(c, r);
		float d = 0;
		uint64_t p;
		if ((rc = parent_among(c, r, level, false, &p, &d)) != 0)
			break;
		if (p == NONE && (rc = parent_among(c, r, level, true, &p, &d)) != 0)
			break;
		if (p == NONE && nvf__hnsw_level(c, entry) > level) {
			p = entry;
			nvf_distance(c->cfg.metric, vec_of(c, r), vec_of(c, p), c->cfg.dim, &d);
		}
		if (p != NONE && (rc = nearest_above(c, r, level, &p, d)) != 0)
			break;
		parent[r] = p == NONE ? entry : p;
		first[parent[r] + 2]++;
	}
	if (rc == 0)
		rc = nvf__arrays_err(txn);
	if (rc == 0 && entry < rows) {
		/* Children in row order (a counting sort by parent), then the preorder. */
		for (uint64_t r = 0; r < rows; r++)
			first[r + 2] += first[r + 1];
		for (uint64_t r = 0; r < rows; r++)
			if (parent[r] != NONE)
				kids[first[parent[r] + 1]++] = r;
		for (int pass = 0; pass < 2; pass++) {
			size_t top = 0;
			stack[top++] = entry;
			while (top > 0) {
				uint64_t r = stack[--top];
				if ((nvf__hnsw_level(c, r) >= HOT_LEVEL) == (pass == 0))
					order[n++] = r;
				for (uint64_t k = first[r + 1]; k-- > first[r];)
					stack[top++] = kids[k]; /* pushed last to first: popped in row order */
			}
		}
	}
	/* Live rows outside the graph (none in a committed state, but be total). */
	for (uint64_t r = 0; r < rows && rc == 0; r++) {
		uint64_t id;
		memcpy(&id, nvf__array_row(c->rowids, r), 8);
		if (id != NVF_ROW_FREE && !nvf__hnsw_linked(c, r))
			order[n++] = r;
	}
	free(parent);
	free(first);
	free(kids);
	free(stack);
	if (rc != 0) {
		free(order);
		return rc;
	}
	*out = order;
	*nout = n;
	return 0;
}
