/* NVF_QUANT_AUTO's measure: does the 4-bit walk keep recall on this collection's data?
 *
 * A graph built with 4-bit codes can walk on them (8 times fewer bytes per step) or
 * on float32; results are re-ranked exactly either way, so what the codes can cost is
 * recall: neighbours the walk never reached. On Fashion-MNIST's pixels they cost
 * almost nothing; on 1M x 96 float vectors around 1,024 Gaussian centres the default
 * ef found 0.767 of the true 10 nearest on the codes and 0.970 on float32. Which one
 * a collection gets cannot be known from its metric, so it is measured: when a commit
 * has doubled the graph since the last measure (from CALIB_MIN nodes on), CALIB_Q of
 * its vectors (a fixed sample) are searched exactly and on the graph both ways at the
 * default ef, and searches walk on float32 from then on if the codes lose more than
 * CALIB_SLACK of recall. The result is kept in the configuration record, so every
 * process sees the same choice, and reported by nvf_hnsw_calibration().
 *
 * Cost: CALIB_Q exact queries over the collection at each doubling, about twice the
 * last one in all: a few seconds over a million 96-dimension vectors, some 2% of
 * their build. */
#include "coll.h"
#include "hnsw.h"
#include "nvf_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CALIB_MIN 2000
#define CALIB_Q 64
#define CALIB_K 10
#define CALIB_SLACK 0.005

bool nvf__calib_due(const nvf_coll *c)
{
	uint64_t nodes = nvf__hnsw_nodes(c);
	return c->hnsw && c->cfg.quant_auto && c->cfg.hnsw_quant == NVF_QUANT_SQ4 && nodes >= CALIB_MIN &&
	       nodes >= 2 * (uint64_t)c->cfg.calib_nodes;
}

/* Recall of got (n results, the query's own id left out) against the exact
 * neighbours (the same), ties at the k-th distance counting. */
static double recall_of(const nvf_result *want, size_t nw, const nvf_result *got, size_t ng, uint64_t self)
{
	nvf_result w[CALIB_K], g[CALIB_K];
	size_t a = 0, b = 0;
	for (size_t i = 0; i < nw && a < CALIB_K; i++)
		if (want[i].id != self)
			w[a++] = want[i];
	for (size_t i = 0; i < ng && b < CALIB_K; i++)
		if (got[i].id != self)
			g[b++] = got[i];
	if (a == 0)
		return 1;
	float kth = w[a - 1].distance;
	size_t hits = 0;
	for (size_t i = 0; i < b; i++)
		hits += g[i].distance <= kth + fabsf(kth) * 1e-6f;
	return (double)(hits < a ? hits : a) / (double)a;
}

int nvf__calibrate(nvf_txn *txn, nvf_coll *c)
{
	uint64_t rows = nvf__array_rows(c->vec), live = c->idmap->d.count;
	size_t dim = c->cfg.dim, nq = live < CALIB_Q ? (size_t)live : CALIB_Q, k = CALIB_K + 1;
	if (nq == 0)
		return 0;
	float *qs = calloc(nq * dim, sizeof(float));
	uint64_t *self = malloc(nq * sizeof(uint64_t));
	nvf_result *want = malloc(nq * k * sizeof(nvf_result)), got[CALIB_K + 1];
	size_t *nw = malloc(nq * sizeof(size_t));
	int rc = qs && self && want && nw ? 0 : nvf__oom();
	/* The sample: live rows at evenly spaced places, the same for a given size. */
	size_t n = 0;
	for (uint64_t i = 0; rc == 0 && i < rows && n < nq; i++) {
		uint64_t r = (i * 2654435761u + c->cfg.seed) % rows, id;
		memcpy(&id, nvf__array_row(c->rowids, r), 8);
		bool dup = false;
		for (size_t j = 0; j < n && !dup; j++)
			dup = self[j] == id;
		if (id == NVF_ROW_FREE || dup)
			continue;
		memcpy(qs + n * dim, nvf__array_row(c->vec, r), dim * sizeof(float));
		self[n++] = id;
	}
	if (rc == 0)
		rc = nvf__hnsw_codes_ready(txn, c);
	if (rc == 0)
		rc = nvf__flat_search_batch(txn, c, qs, n, k, 0, NULL, want, nw);
	double codes = 0, flt = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		for (int full = 0; full < 2 && rc == 0; full++) {
			size_t ng;
			rc = nvf__hnsw_search(txn, c, qs + i * dim, k, 0, full, NULL, false, NULL, 0, UINT64_MAX, NULL, got, &ng);
			if (rc == 0)
				*(full ? &flt : &codes) += recall_of(want + i * k, nw[i], got, ng, self[i]);
		}
	}
	if (rc == 0 && n > 0) {
		codes /= (double)n;
		flt /= (double)n;
		bool keep = codes + CALIB_SLACK >= flt;
		c->cfg.walk = keep ? NVF_WALK_CODES : NVF_WALK_FLOAT;
		c->cfg.recall_codes = (uint16_t)lround(codes * 10000);
		c->cfg.recall_float = (uint16_t)lround(flt * 10000);
		uint64_t nodes = nvf__hnsw_nodes(c);
		c->cfg.calib_nodes = nodes > UINT32_MAX ? UINT32_MAX : (uint32_t)nodes;
		/* Codes the walk does not use are not kept: 12 + dim / 2 bytes a node
		 * (60 MB at 1M x 96, 9% of the file). */
		rc = nvf__hnsw_codes_settle(txn, c, keep);
		nvf_tree *t;
		if (rc == 0 && (rc = nvf__tree_open(txn, NVF_T_CONFIG, -1, &t)) == 0)
			rc = nvf__tree_put(txn, &t->d, 0, &c->cfg, sizeof(c->cfg), 0, NULL);
	}
	free(qs);
	free(self);
	free(want);
	free(nw);
	return rc;
}

int nvf_hnsw_calibration(nvf_db *db, nvf_txn *txn, nvf_calibration *out)
{
	if (!db || !out)
		return nvf__err(NVF_EINVAL, "nvf_hnsw_calibration: NULL argument");
	if (out->version < 1 || out->version > NVF_CALIBRATION_VERSION)
		return nvf__err(NVF_EINVAL, "nvf_calibration version %u: this library knows 1 to %u", out->version,
				NVF_CALIBRATION_VERSION);
	nvf_coll *c;
	bool own;
	int rc = nvf__coll_enter(db, &txn, false, &own, &c);
	if (rc != 0)
		return rc;
	if (!c->hnsw)
		return nvf__coll_leave(txn, own, false, nvf__err(NVF_EINVAL, "%s: a flat collection has no graph to walk",
								 db->path));
	out->automatic = c->cfg.quant_auto;
	out->walk = nvf__hnsw_has_codes(c) && c->cfg.walk != NVF_WALK_FLOAT ? NVF_WALK_CODES : NVF_WALK_FLOAT;
	out->nodes = c->cfg.calib_nodes;
	out->recall_codes = c->cfg.recall_codes / 10000.0;
	out->recall_float = c->cfg.recall_float / 10000.0;
	return nvf__coll_leave(txn, own, false, 0);
}
