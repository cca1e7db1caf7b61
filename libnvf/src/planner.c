/* The planner. For a compiled filter it works out, per committed state:
 *  - which rows pass, exactly, from the field indexes when they answer every
 *    predicate (AND, OR and NOT combine the answers as bitmaps); otherwise a superset
 *    from the indexes that answer part of it, with the rest evaluated on documents;
 *  - how many: a count when exact, else a sample of 256 rows evaluated.
 * Evaluating every candidate once to materialise the exact set pays off when the
 * same compiled filter serves many searches of one state (a batch, or the same filter
 * reused), so the set is cached in the filter, keyed by the file and the state, and
 * built on the second search of a state (the first one evaluates only what it visits).
 * search.c then picks the plan. */
#include "planner.h"
#include "fields.h"
#include "meta.h"

#include <errno.h>
#include <stdlib.h>

#define SAMPLE 256

/* An allowed-row set of one (file, state). */
typedef struct nvf_rowset {
	atomic_int refs;
	uint8_t file_id[16];
	uint64_t txnid;
	uint32_t uses;        /* searches of this state seen (materialised at the second) */
	bool ready;
	uint64_t *bits;       /* exact set */
	uint64_t nbits;
	uint32_t *rows;       /* the same rows, ascending */
	uint64_t count;
	const char *from;
	uint64_t evals;
} nvf_rowset;

static void rowset_unref(nvf_rowset *s)
{
	if (s && atomic_fetch_sub(&s->refs, 1) == 1) {
		free(s->bits);
		free(s->rows);
		free(s);
	}
}

void nvf__rowset_cache_free(struct nvf_filter *f);
void nvf__rowset_cache_free(struct nvf_filter *f)
{
	rowset_unref(f->cache);
	f->cache = NULL;
}

/* Rows holding a record. */
static roaring_bitmap_t *live_rows(const nvf_coll *c)
{
	roaring_bitmap_t *r = roaring_bitmap_create();
	if (!r)
		return NULL;
	uint64_t rows = nvf__array_rows(c->vec);
	for (uint64_t i = 0; i < rows; i++) {
		uint64_t id;
		memcpy(&id, nvf__array_row(c->rowids, i), 8);
		if (id != NVF_ROW_FREE)
			roaring_bitmap_add(r, (uint32_t)i);
	}
	return r;
}

/* The rows of a node: *super a superset (NULL: every row), *exact whether it is the
 * set itself. */
typedef struct setres {
	roaring_bitmap_t *super;
	bool exact;
} setres;

static int node_set(nvf_txn *txn, nvf_coll *c, const struct nvf_filter *f, int ni, roaring_bitmap_t **live,
		    setres *out, uint64_t *evals)
{
	const nvf_fnode *n = &f->nodes[ni];
	out->super = NULL;
	out->exact = false;
	int rc;
	setres a, b;
	switch (n->kind) {
	case NVF_FN_AND:
		if ((rc = node_set(txn, c, f, n->a, live, &a, evals)) != 0)
			return rc;
		if ((rc = node_set(txn, c, f, n->b, live, &b, evals)) != 0) {
			nvf__rb_free(a.super);
			return rc;
		}
		out->exact = a.exact && b.exact;
		if (a.super && b.super) {
			roaring_bitmap_and_inplace(a.super, b.super);
			nvf__rb_free(b.super);
			out->super = a.super;
		} else {
			out->super = a.super ? a.super : b.super;
		}
		return 0;
	case NVF_FN_OR:
		if ((rc = node_set(txn, c, f, n->a, live, &a, evals)) != 0)
			return rc;
		if ((rc = node_set(txn, c, f, n->b, live, &b, evals)) != 0) {
			nvf__rb_free(a.super);
			return rc;
		}
		if (a.super && b.super) {
			roaring_bitmap_or_inplace(a.super, b.super);
			nvf__rb_free(b.super);
			out->super = a.super;
			out->exact = a.exact && b.exact;
		} else {
			nvf__rb_free(a.super);
			nvf__rb_free(b.super);
		}
		return 0;
	case NVF_FN_NOT:
		if ((rc = node_set(txn, c, f, n->a, live, &a, evals)) != 0)
			return rc;
		if (a.exact) {
			if (!*live && !(*live = live_rows(c))) {
				nvf__rb_free(a.super);
				return nvf__oom();
			}
			roaring_bitmap_t *r = roaring_bitmap_andnot(*live, a.super);
			nvf__rb_free(a.super);
			if (!r)
				return nvf__oom();
			out->super = r;
			out->exact = true;
		} else {
			nvf__rb_free(a.super);
		}
		return 0;
	default:
		rc = nvf__fields_answer(txn, c, f, ni, &out->super, evals);
		if (rc < 0)
			return rc;
		out->exact = rc == 1;
		return 0;
	}
}

/* Every record, in id order, evaluated: the id map and the document tree are walked
 * side by side (both are in id order), a leaf after another, rather than looked up
 * record by record. */
static int evaluate_walk(nvf_txn *txn, nvf_coll *c, const struct nvf_filter *f, roaring_bitmap_t *r,
			 uint64_t *evals)
{
	nvf_evalctx ctx = {.txn = txn, .c = c, .tmp = nvf__eval_tmp()};
	if (!ctx.tmp)
		return nvf__oom();
	uint64_t rows = nvf__array_rows(c->vec);
	nvf_cursor ci, cd;
	bool docs = c->docs && f->needs_payload;
	int rc = nvf__cursor_seek(&ci, txn, &c->idmap->d, 0);
	if (rc == 0 && docs)
		rc = nvf__cursor_seek(&cd, txn, &c->docs->d, 0);
	uint64_t dkey = UINT64_MAX;
	nvf_val dv;
	if (rc == 0 && docs && cd.valid)
		rc = nvf__cursor_get(&cd, &dkey, &dv);
	for (; rc == 0 && ci.valid; rc = nvf__cursor_next(&ci)) {
		uint64_t id;
		nvf_val v;
		struct nvf_disk_idrec ir;
		if ((rc = nvf__cursor_get(&ci, &id, &v)) != 0)
			break;
		if (v.len != sizeof(ir) || (memcpy(&ir, v.data, sizeof(ir)), ir.row >= rows)) {
			rc = nvf__err(NVF_ECORRUPT, "id %llu: a damaged id map record", (unsigned long long)id);
			break;
		}
		while (rc == 0 && docs && cd.valid && dkey < id) {
			if ((rc = nvf__cursor_next(&cd)) == 0 && cd.valid)
				rc = nvf__cursor_get(&cd, &dkey, &dv);
		}
		if (rc != 0)
			break;
		nvf__evalctx_reset(&ctx, ir.row, id);
		if (docs) {
			/* The payload is known here: no lookup when the filter reads it. */
			ctx.payload_loaded = true;
			if (cd.valid && dkey == id) {
				int got = nvf__meta_unpack(txn, c, id, &dv, ctx.tmp, &ctx.pl);
				if (got < 0) {
					rc = got;
					break;
				}
				ctx.has_payload = true;
				ctx.evals++;
			}
		}
		if (nvf__filter_eval(f, &ctx))
			roaring_bitmap_add(r, (uint32_t)ir.row);
		rc = ctx.err;
	}
	*evals += ctx.evals;
	return rc;
}

/* Evaluate the filter on the given rows (NULL: every live row) into a new exact set. */
static int evaluate_all(nvf_txn *txn, nvf_coll *c, const struct nvf_filter *f, const roaring_bitmap_t *cand,
			roaring_bitmap_t **out, uint64_t *evals)
{
	if (!cand) {
		roaring_bitmap_t *r = roaring_bitmap_create();
		if (!r)
			return nvf__oom();
		int rc = evaluate_walk(txn, c, f, r, evals);
		if (rc != 0) {
			nvf__rb_free(r);
			return rc;
		}
		*out = r;
		return 0;
	}
	roaring_bitmap_t *r = roaring_bitmap_create();
	if (!r)
		return nvf__oom();
	nvf_evalctx ctx = {.txn = txn, .c = c, .tmp = nvf__eval_tmp()};
	if (!ctx.tmp) {
		nvf__rb_free(r);
		return nvf__oom();
	}
	uint64_t rows = nvf__array_rows(c->vec);
	int rc = 0;
	roaring_uint32_iterator_t *it = cand ? roaring_create_iterator(cand) : NULL;
	for (uint64_t i = 0; rc == 0; i++) {
		uint64_t row;
		if (cand) {
			if (!it || !it->has_value)
				break;
			row = it->current_value;
			roaring_advance_uint32_iterator(it);
			if (row >= rows)
				continue;
		} else {
			if (i >= rows)
				break;
			row = i;
		}
		uint64_t id;
		memcpy(&id, nvf__array_row(c->rowids, row), 8);
		if (id == NVF_ROW_FREE)
			continue;
		nvf__evalctx_reset(&ctx, row, id);
		if (nvf__filter_eval(f, &ctx))
			roaring_bitmap_add(r, (uint32_t)row);
		rc = ctx.err;
	}
	nvf__rb_iter_free(it);
	*evals += ctx.evals;
	if (rc != 0) {
		nvf__rb_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

/* A set turned into the forms searches use: a bitset and a sorted row list. */
static int rowset_fill(nvf_rowset *s, const roaring_bitmap_t *r, uint64_t nrows)
{
	s->nbits = nrows;
	s->count = roaring_bitmap_get_cardinality(r);
	s->bits = calloc((nrows + 63) / 64 + 1, sizeof(uint64_t));
	s->rows = malloc((s->count ? s->count : 1) * sizeof(uint32_t));
	if (!s->bits || !s->rows)
		return nvf__oom();
	roaring_bitmap_to_uint32_array(r, s->rows);
	for (uint64_t i = 0; i < s->count; i++)
		if (s->rows[i] < nrows)
			s->bits[s->rows[i] >> 6] |= UINT64_C(1) << (s->rows[i] & 63);
	s->ready = true;
	return 0;
}

/* Share of a sample of the candidate rows that pass. */
static double sample_rate(nvf_txn *txn, nvf_coll *c, const struct nvf_filter *f, const roaring_bitmap_t *cand,
			  uint64_t *evals, int *err)
{
	uint64_t rows = nvf__array_rows(c->vec), n = cand ? roaring_bitmap_get_cardinality(cand) : rows;
	if (n == 0)
		return 0;
	nvf_evalctx ctx = {.txn = txn, .c = c, .tmp = nvf__eval_tmp()};
	if (!ctx.tmp) {
		*err = nvf__oom();
		return 1;
	}
	uint64_t seen = 0, pass = 0, x = 0x9E3779B97F4A7C15u;
	for (int i = 0; i < 4 * SAMPLE && seen < SAMPLE; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		uint64_t row;
		if (cand) {
			uint32_t r32;
			if (!roaring_bitmap_select(cand, (uint32_t)(x % n), &r32))
				continue;
			row = r32;
		} else {
			row = x % rows;
		}
		if (row >= rows)
			continue;
		uint64_t id;
		memcpy(&id, nvf__array_row(c->rowids, row), 8);
		if (id == NVF_ROW_FREE)
			continue;
		seen++;
		nvf__evalctx_reset(&ctx, row, id);
		pass += nvf__filter_eval(f, &ctx);
		if (ctx.err) {
			*err = ctx.err;
			break;
		}
	}
	*evals += ctx.evals;
	return seen ? (double)pass / (double)seen : 1.0;
}

/* Share of live records the id callback lets through, from a sample. */
static double callback_rate(const nvf_coll *c, int (*fn)(uint64_t, void *), void *ctx)
{
	uint64_t rows = nvf__array_rows(c->vec), seen = 0, pass = 0, x = 0x2545F4914F6CDD1Du;
	for (int i = 0; i < 4 * SAMPLE && seen < SAMPLE && rows; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		uint64_t id;
		memcpy(&id, nvf__array_row(c->rowids, x % rows), 8);
		if (id == NVF_ROW_FREE)
			continue;
		seen++;
		pass += fn(id, ctx) != 0;
	}
	return seen ? (double)pass / (double)seen : 1.0;
}

int nvf__plan(nvf_txn *txn, nvf_coll *c, const nvf_search_options *o, size_t nq, nvf_plan *p)
{
	memset(p, 0, sizeof(*p));
	p->pred.txn = txn;
	p->pred.c = c;
	p->live = c->idmap->d.count;
	p->est = p->live;
	p->exact = true;
	p->from = "none";
	const struct nvf_filter *f = o && o->version >= 2 ? o->where : NULL;
	if (o && o->filter) {
		p->pred.fn = o->filter;
		p->pred.fn_ctx = o->filter_ctx;
		p->filtered = true;
	}
	int rc = 0;
	if (f) {
		p->filtered = true;
		bool write = (txn->flags & NVF_TXN_F_WRITE) != 0;
		uint64_t rows = nvf__array_rows(c->vec);
		/* The cached set of this state, if any. */
		nvf_rowset *s = NULL;
		bool build = nq > 1;
		if (!write) {
			pthread_mutex_t *m = (pthread_mutex_t *)&f->cache_mutex;
			struct nvf_filter *fm = (struct nvf_filter *)(uintptr_t)f;
			pthread_mutex_lock(m);
			s = fm->cache;
			if (s && (s->txnid != txn->id || memcmp(s->file_id, txn->db->header.file_id, 16) != 0)) {
				rowset_unref(s);
				s = fm->cache = NULL;
			}
			if (!s && (s = calloc(1, sizeof(*s))) != NULL) {
				atomic_init(&s->refs, 1);
				memcpy(s->file_id, txn->db->header.file_id, 16);
				s->txnid = txn->id;
				fm->cache = s;
			}
			if (s) {
				atomic_fetch_add(&s->refs, 1);
				build |= ++s->uses > 1;
			}
			pthread_mutex_unlock(m);
			if (!s)
				return nvf__oom();
		}
		/* Sets are built under the filter's lock the first time: threads of a
		 * batch or concurrent searches of one state share the work. */
		bool locked = s != NULL;
		if (locked)
			pthread_mutex_lock((pthread_mutex_t *)&f->cache_mutex);
		if (s && s->ready) {
			p->set = s;
			s = NULL;
		} else {
			roaring_bitmap_t *live = NULL, *exact = NULL;
			setres r = {0};
			rc = node_set(txn, c, f, f->root, &live, &r, &p->evals);
			const char *from = r.exact ? "index" : r.super ? "index+sample" : "sample";
			if (rc == 0 && r.exact) {
				exact = r.super;
				r.super = NULL;
			} else if (rc == 0 && build) {
				rc = evaluate_all(txn, c, f, r.super, &exact, &p->evals);
				from = r.super ? "index+evaluated" : "evaluated";
			}
			if (rc == 0 && exact) {
				nvf_rowset *t = s ? s : calloc(1, sizeof(*t));
				if (!t) {
					rc = nvf__oom();
				} else {
					if (!s)
						atomic_init(&t->refs, 1);
					t->from = from;
					if ((rc = rowset_fill(t, exact, rows)) == 0) {
						if (s)
							atomic_fetch_add(&s->refs, 1);
						p->set = t;
					} else if (!s) {
						rowset_unref(t);
					}
				}
			} else if (rc == 0) {
				/* Not materialised: a superset to test first (if the indexes gave
				 * one), the filter evaluated on what passes it, and an estimate. */
				double rate = sample_rate(txn, c, f, r.super, &p->evals, &rc);
				uint64_t base = r.super ? roaring_bitmap_get_cardinality(r.super) : p->live;
				p->est = (uint64_t)(rate * (double)base + 0.5);
				p->exact = false;
				p->from = from;
				p->pred.where = f;
				if (r.super) {
					nvf_rowset *t = calloc(1, sizeof(*t));
					if (!t || (atomic_init(&t->refs, 1), rc = rowset_fill(t, r.super, rows)) != 0) {
						rowset_unref(t);
						rc = rc ? rc : nvf__oom();
					} else {
						t->ready = false; /* a superset, never cached as the set */
						p->pred.bits = t->bits;
						p->pred.nbits = t->nbits;
						p->set = t;
					}
				}
			}
			nvf__rb_free(r.super);
			nvf__rb_free(exact);
			nvf__rb_free(live);
		}
		if (locked)
			pthread_mutex_unlock((pthread_mutex_t *)&f->cache_mutex);
		rowset_unref(s);
		if (rc != 0) {
			nvf__plan_free(p);
			return rc;
		}
		if (p->set && p->set->ready) {
			p->pred.bits = p->set->bits;
			p->pred.nbits = p->set->nbits;
			p->est = p->set->count;
			p->exact = true;
			p->from = p->set->from;
		}
	}
	if (p->pred.fn) {
		/* The callback narrows whatever the filter let through. */
		double rate = callback_rate(c, p->pred.fn, p->pred.fn_ctx);
		p->est = (uint64_t)(rate * (double)p->est + 0.5);
		p->exact = false;
		p->from = f ? p->from : "sample";
	}
	return 0;
}

void nvf__plan_free(nvf_plan *p)
{
	rowset_unref(p->set);
	p->set = NULL;
}

size_t nvf__plan_rows(const nvf_plan *p, const uint32_t **rows)
{
	if (!p->set || !p->set->ready || !p->set->rows) {
		*rows = NULL;
		return 0;
	}
	*rows = p->set->rows;
	return p->set->count;
}

/* ---- the public filter calls ---- */

int nvf_filter_match(nvf_db *db, nvf_txn *txn, const nvf_filter *f, uint64_t id)
{
	if (!f)
		return nvf__err(NVF_EINVAL, "nvf_filter_match: NULL filter");
	nvf_coll *c;
	bool own;
	int rc = nvf__coll_enter(db, &txn, false, &own, &c);
	if (rc != 0)
		return rc;
	uint64_t row;
	int res = 0;
	if ((rc = nvf__coll_lookup(txn, c, id, &row)) == NVF_ENOTFOUND)
		rc = nvf__err(NVF_ENOTFOUND, "no record with id %llu", (unsigned long long)id);
	if (rc == 0) {
		nvf_evalctx ctx = {.txn = txn, .c = c, .tmp = nvf__eval_tmp()};
		if (!ctx.tmp)
			rc = nvf__oom();
		else {
			nvf__evalctx_reset(&ctx, row, id);
			res = nvf__filter_eval(f, &ctx);
			rc = ctx.err;
		}
	}
	rc = nvf__coll_leave(txn, own, false, rc);
	return rc != 0 ? rc : res;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int nvf_filter_ids(nvf_db *db, nvf_txn *txn, const nvf_filter *f, uint64_t **ids, size_t *n)
{
	if (!f || !ids || !n)
		return nvf__err(NVF_EINVAL, "nvf_filter_ids: NULL argument");
	nvf_coll *c;
	bool own;
	int rc = nvf__coll_enter(db, &txn, false, &own, &c);
	if (rc != 0)
		return rc;
	roaring_bitmap_t *live = NULL, *exact = NULL;
	setres r = {0};
	uint64_t evals = 0;
	uint64_t *out = NULL;
	size_t cnt = 0;
	rc = node_set(txn, c, f, f->root, &live, &r, &evals);
	if (rc == 0 && r.exact) {
		exact = r.super;
		r.super = NULL;
	} else if (rc == 0) {
		rc = evaluate_all(txn, c, f, r.super, &exact, &evals);
	}
	if (rc == 0) {
		cnt = (size_t)roaring_bitmap_get_cardinality(exact);
		out = malloc((cnt ? cnt : 1) * sizeof(uint64_t));
		uint32_t *rows = malloc((cnt ? cnt : 1) * sizeof(uint32_t));
		if (!out || !rows) {
			rc = nvf__oom();
		} else {
			roaring_bitmap_to_uint32_array(exact, rows);
			for (size_t i = 0; i < cnt; i++)
				memcpy(&out[i], nvf__array_row(c->rowids, rows[i]), 8);
			qsort(out, cnt, sizeof(uint64_t), cmp_u64);
		}
		free(rows);
	}
	nvf__rb_free(r.super);
	nvf__rb_free(exact);
	nvf__rb_free(live);
	rc = nvf__coll_leave(txn, own, false, rc);
	if (rc != 0) {
		free(out);
		return rc;
	}
	*ids = out;
	*n = cnt;
	return 0;
}
