/* Field indexes. Each index is a B+tree of its own: key = an order-preserving 64-bit
 * image of a value (integers and timestamps with the sign bit flipped, floats with the
 * IEEE-754 total-order trick, strings hashed with XXH3), value = the rows holding it
 * (a posting: a sorted list when small, a roaring bitmap otherwise; string keys carry
 * the strings themselves, so that a hash collision is harmless). Rows whose value the
 * index cannot hold exactly but that a predicate on the path could still match (a
 * non-integral number in an int index, a string that is not a timestamp in a timestamp
 * index) are kept in an "unindexed" posting and evaluated one by one, so an index
 * never changes an answer.
 *
 * Writes do not touch the trees at once: a change of a document records add/remove
 * operations, applied in one pass before the commit (or before the planner reads the
 * index in the same transaction). */
#include "fields.h"
#include "meta.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <xxhash.h>

typedef struct fidx {
	uint64_t num;
	int type;
	nvf_path path;
	uint64_t entries;
	nvf_tree *t;       /* postings, opened on first use */
	bool changed;      /* entries changed: the registry record is written at flush */
} fidx;

typedef struct fop {
	uint64_t key;
	uint64_t seq;
	uint32_t idx;
	uint32_t row;
	uint32_t slen;
	uint8_t add;
	uint8_t unidx;
	char *str;         /* string keys: the value (owned) */
} fop;

struct nvf_fields {
	nvf_tree *reg;
	NVF_VEC(fidx) idx;
	NVF_VEC(fop) ops;
	uint64_t seq;
};

static const char *const type_names[] = {NULL, "string", "int", "float", "bool", "timestamp", "tags"};

const char *nvf_field_type_name(int type)
{
	return type >= NVF_FIELD_STRING && type <= NVF_FIELD_TAGS ? type_names[type] : NULL;
}

int nvf_field_type_parse(const char *name)
{
	for (int t = NVF_FIELD_STRING; name && t <= NVF_FIELD_TAGS; t++)
		if (strcmp(name, type_names[t]) == 0)
			return t;
	return nvf__err(NVF_EINVAL, "field type \"%s\": use string, int, float, bool, timestamp or tags", name ? name : "(null)");
}

static bool string_keyed(int type)
{
	return type == NVF_FIELD_STRING || type == NVF_FIELD_TAGS;
}

/* ---- keys ---- */

static uint64_t int_key(int64_t i)
{
	return (uint64_t)i ^ (UINT64_C(1) << 63);
}

static uint64_t float_key(double d)
{
	if (d == 0)
		d = 0; /* -0.0 = 0.0 */
	uint64_t u;
	memcpy(&u, &d, 8);
	return (u >> 63) ? ~u : u | (UINT64_C(1) << 63);
}

static uint64_t str_key(const uint8_t *s, size_t n)
{
	return XXH3_64bits(s, n);
}

/* A double that is an integer within int64: its value in *i. */
static bool integral(double d, int64_t *i)
{
	if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) || trunc(d) != d)
		return false;
	*i = (int64_t)d;
	return true;
}

/* An int64 that a double holds exactly. */
static bool exact_double(int64_t i, double *d)
{
	double x = (double)i;
	if (!(x >= -9223372036854775808.0 && x < 9223372036854775808.0) || (int64_t)x != i)
		return false;
	*d = x;
	return true;
}

typedef struct vkey {
	uint64_t key;
	const uint8_t *s;
	uint32_t slen;
} vkey;
typedef NVF_VEC(vkey) vkeys;

static int push_key(vkeys *v, uint64_t key, const uint8_t *s, uint32_t slen)
{
	vkey k = {key, s, slen};
	return NVF_VEC_PUSH(*v, k);
}

/* The keys an index holds for a payload, and whether the row is unindexed. */
static int payload_keys(const fidx *x, const nvf_payload *pl, vkeys *out, bool *unidx)
{
	*unidx = false;
	out->n = 0;
	if (!pl)
		return 0;
	int rc = 0;
	if (x->path.field == NVF_PF_TAGS) {
		const uint8_t *it = pl->tags, *t;
		uint64_t len;
		while ((rc = nvf__payload_tag(pl, &it, &t, &len)) == 1)
			if ((rc = push_key(out, str_key(t, (size_t)len), t, (uint32_t)len)) != 0)
				return rc;
		return rc;
	}
	if (!pl->has_doc)
		return 0;
	nvf_dval v = pl->doc;
	for (size_t i = 0; i < x->path.nseg; i++) {
		nvf_dval nx;
		int r = nvf__dval_get(&v, x->path.seg[i].s, x->path.seg[i].len, &nx);
		if (r <= 0)
			return r;
		v = nx;
	}
	int64_t iv;
	double d;
	switch (x->type) {
	case NVF_FIELD_STRING:
		if (v.type == NVF_DT_STR && v.len <= UINT32_MAX)
			return push_key(out, str_key(v.s, (size_t)v.len), v.s, (uint32_t)v.len);
		return 0;
	case NVF_FIELD_INT:
		if (v.type == NVF_DT_INT)
			return push_key(out, int_key(v.i), NULL, 0);
		if (v.type == NVF_DT_FLOAT) {
			if (integral(v.f, &iv))
				return push_key(out, int_key(iv), NULL, 0);
			*unidx = true;
		}
		return 0;
	case NVF_FIELD_FLOAT:
		if (v.type == NVF_DT_FLOAT)
			return push_key(out, float_key(v.f), NULL, 0);
		if (v.type == NVF_DT_INT) {
			if (exact_double(v.i, &d))
				return push_key(out, float_key(d), NULL, 0);
			*unidx = true;
		}
		return 0;
	case NVF_FIELD_BOOL:
		if (v.type == NVF_DT_TRUE || v.type == NVF_DT_FALSE)
			return push_key(out, v.type == NVF_DT_TRUE, NULL, 0);
		return 0;
	case NVF_FIELD_TIMESTAMP:
		if (v.type == NVF_DT_STR) {
			if (nvf__iso8601_parse((const char *)v.s, (size_t)v.len, &iv))
				return push_key(out, int_key(iv), NULL, 0);
			*unidx = true;
		}
		return 0;
	case NVF_FIELD_TAGS: {
		if (v.type != NVF_DT_ARRAY)
			return 0;
		const uint8_t *it = v.s, *k;
		uint64_t kl;
		nvf_dval e;
		int r;
		while ((r = nvf__dval_next(&v, &it, &k, &kl, &e)) == 1) {
			if (e.type != NVF_DT_STR || e.len > UINT32_MAX)
				continue;
			bool dup = false; /* an array may repeat a string: one entry */
			for (size_t j = 0; j < out->n && !dup; j++)
				dup = out->v[j].slen == e.len && memcmp(out->v[j].s, e.s, (size_t)e.len) == 0;
			if (!dup && (rc = push_key(out, str_key(e.s, (size_t)e.len), e.s, (uint32_t)e.len)) != 0)
				return rc;
		}
		return r;
	}
	default:
		return 0;
	}
}

/* ---- postings ---- */

/* Decode a posting (bytes p..p+n) into a new bitmap. */
static int posting_load(const uint8_t *p, size_t n, roaring_bitmap_t **out)
{
	uint32_t card;
	if (n < 4)
		return nvf__err(NVF_ECORRUPT, "field index posting of %zu bytes", n);
	memcpy(&card, p, 4);
	roaring_bitmap_t *r = NULL;
	if (card <= NVF_POSTING_SMALL) {
		if (n != 4 + 4 * (size_t)card)
			return nvf__err(NVF_ECORRUPT, "field index posting: %u rows in %zu bytes", card, n);
		r = roaring_bitmap_create();
		if (!r)
			return nvf__oom();
		for (uint32_t i = 0; i < card; i++) {
			uint32_t row;
			memcpy(&row, p + 4 + 4 * (size_t)i, 4);
			roaring_bitmap_add(r, row);
		}
	} else {
		r = roaring_bitmap_portable_deserialize_safe((const char *)p + 4, n - 4);
		if (!r)
			return nvf__err(NVF_ECORRUPT, "field index posting: a bitmap that does not decode");
	}
	if (roaring_bitmap_get_cardinality(r) != card) {
		nvf__rb_free(r);
		return nvf__err(NVF_ECORRUPT, "field index posting: says %u rows, holds another number", card);
	}
	*out = r;
	return 0;
}

static uint32_t posting_card(const uint8_t *p, size_t n)
{
	uint32_t card = 0;
	if (n >= 4)
		memcpy(&card, p, 4);
	return card;
}

static int posting_store(const roaring_bitmap_t *r, nvf_buf *out)
{
	uint64_t card64 = roaring_bitmap_get_cardinality(r);
	if (card64 > UINT32_MAX)
		return nvf__err(NVF_EFULL, "a field index posting of more than 2^32 rows");
	uint32_t card = (uint32_t)card64;
	int rc = nvf__buf_put(out, &card, 4);
	if (rc != 0)
		return rc;
	if (card <= NVF_POSTING_SMALL) {
		uint32_t rows[NVF_POSTING_SMALL];
		roaring_bitmap_to_uint32_array(r, rows);
		return nvf__buf_put(out, rows, 4 * (size_t)card);
	}
	roaring_bitmap_t *opt = roaring_bitmap_copy(r);
	if (!opt)
		return nvf__oom();
	roaring_bitmap_run_optimize(opt);
	size_t len = roaring_bitmap_portable_size_in_bytes(opt);
	if ((rc = nvf__buf_reserve(out, len)) == 0) {
		roaring_bitmap_portable_serialize(opt, (char *)out->p + out->n);
		out->n += len;
	}
	nvf__rb_free(opt);
	return rc;
}

/* A string-keyed value: entries of (string, posting), parsed. */
typedef struct sentry {
	const uint8_t *s;
	uint32_t slen;
	const uint8_t *post;
	uint32_t plen;
} sentry;

static int chain_parse(const uint8_t *p, size_t n, sentry *ents, size_t max, size_t *nents)
{
	const uint8_t *end = p + n;
	uint32_t cnt;
	if (n < 4)
		return nvf__err(NVF_ECORRUPT, "field index value of %zu bytes", n);
	memcpy(&cnt, p, 4);
	p += 4;
	if (cnt == 0 || cnt > max)
		return nvf__err(NVF_ECORRUPT, "field index value with %u strings under one hash", cnt);
	for (uint32_t i = 0; i < cnt; i++) {
		if (end - p < 4)
			return nvf__err(NVF_ECORRUPT, "field index value cut short");
		memcpy(&ents[i].slen, p, 4);
		p += 4;
		if ((uint64_t)(end - p) < (uint64_t)ents[i].slen + 4)
			return nvf__err(NVF_ECORRUPT, "field index value cut short");
		ents[i].s = p;
		p += ents[i].slen;
		memcpy(&ents[i].plen, p, 4);
		p += 4;
		if ((uint64_t)(end - p) < ents[i].plen)
			return nvf__err(NVF_ECORRUPT, "field index value cut short");
		ents[i].post = p;
		p += ents[i].plen;
	}
	if (p != end)
		return nvf__err(NVF_ECORRUPT, "field index value with bytes after its strings");
	*nents = cnt;
	return 0;
}

#define MAX_CHAIN 64 /* strings under one 64-bit hash: more is damage, not chance */

/* ---- opening ---- */

static void fidx_free(fidx *x)
{
	nvf__path_free(&x->path);
}

void nvf__fields_free(nvf_coll *c)
{
	struct nvf_fields *F = c->fields;
	if (!F)
		return;
	for (size_t i = 0; i < F->idx.n; i++)
		fidx_free(&F->idx.v[i]);
	NVF_VEC_FREE(F->idx);
	for (size_t i = 0; i < F->ops.n; i++)
		free(F->ops.v[i].str);
	NVF_VEC_FREE(F->ops);
	free(F);
	c->fields = NULL;
}

uint32_t nvf__fields_count(const nvf_coll *c)
{
	return c->fields ? (uint32_t)c->fields->idx.n : 0;
}

static int load_index(uint64_t num, const nvf_val *v, fidx *out)
{
	struct nvf_disk_field h;
	if (v->len < sizeof(h))
		return nvf__err(NVF_ECORRUPT, "field index %llu: record of %llu bytes", (unsigned long long)num,
				(unsigned long long)v->len);
	memcpy(&h, v->data, sizeof(h));
	if (h.magic != NVF_FIELD_MAGIC || h.type < NVF_FIELD_STRING || h.type > NVF_FIELD_TAGS ||
	    sizeof(h) + h.path_len != v->len || h.path_len == 0 || h.path_len > 4096)
		return nvf__err(NVF_ECORRUPT, "field index %llu: record damaged", (unsigned long long)num);
	char *text = strndup((const char *)v->data + sizeof(h), h.path_len);
	if (!text)
		return nvf__oom();
	memset(out, 0, sizeof(*out));
	int rc = nvf__path_parse(text, &out->path);
	free(text);
	if (rc != 0)
		return nvf__err(NVF_ECORRUPT, "field index %llu: its path does not parse", (unsigned long long)num);
	out->num = num;
	out->type = h.type;
	out->entries = h.entries;
	return 0;
}

int nvf__fields_open(nvf_txn *txn, nvf_coll *c, bool create)
{
	struct nvf_fields *F = calloc(1, sizeof(*F));
	if (!F)
		return nvf__oom();
	c->fields = F;
	int rc = nvf__tree_open(txn, NVF_T_FIELDS, create ? NVF_TREE_KIND_PLAIN : -1, &F->reg);
	if (rc != 0)
		return rc == NVF_ENOTFOUND ? nvf__err(NVF_ECORRUPT, "the field index registry is missing") : rc;
	nvf_cursor cur;
	for (rc = nvf__cursor_seek(&cur, txn, &F->reg->d, 0); rc == 0 && cur.valid; rc = nvf__cursor_next(&cur)) {
		uint64_t key;
		nvf_val v;
		fidx x;
		if ((rc = nvf__cursor_get(&cur, &key, &v)) != 0)
			break;
		if (key & NVF_FIELD_UNINDEXED)
			break; /* the unindexed postings sort after every index record */
		if ((rc = load_index(key, &v, &x)) != 0)
			break;
		if ((rc = NVF_VEC_PUSH(F->idx, x)) != 0) {
			fidx_free(&x);
			break;
		}
	}
	return rc;
}

static int postings_tree(nvf_txn *txn, fidx *x, bool create)
{
	if (x->t)
		return 0;
	int rc = nvf__tree_open(txn, NVF_T_FIELD_BASE + x->num, create ? NVF_TREE_KIND_PLAIN : -1, &x->t);
	if (rc == NVF_ENOTFOUND)
		return nvf__err(NVF_ECORRUPT, "field index on %s: its postings tree is missing", x->path.canon);
	return rc;
}

static fidx *find_index(struct nvf_fields *F, const char *canon)
{
	for (size_t i = 0; F && i < F->idx.n; i++)
		if (strcmp(F->idx.v[i].path.canon, canon) == 0)
			return &F->idx.v[i];
	return NULL;
}

/* ---- recording changes ---- */

static int push_op(struct nvf_fields *F, uint32_t idx, uint32_t row, const vkey *k, bool add, bool unidx)
{
	fop op = {.key = unidx ? 0 : k->key, .seq = F->seq++, .idx = idx, .row = row, .add = add, .unidx = unidx};
	if (!unidx && k->s) {
		op.str = malloc(k->slen ? k->slen : 1);
		if (!op.str)
			return nvf__oom();
		memcpy(op.str, k->s, k->slen);
		op.slen = k->slen;
	}
	int rc = NVF_VEC_PUSH(F->ops, op);
	if (rc != 0)
		free(op.str);
	return rc;
}

static bool same_key(const vkey *a, const vkey *b)
{
	return a->key == b->key && a->slen == b->slen && (a->slen == 0 || memcmp(a->s, b->s, a->slen) == 0);
}

int nvf__fields_change(nvf_txn *txn, nvf_coll *c, uint64_t row, const nvf_payload *old, const nvf_payload *new_pl)
{
	(void)txn;
	struct nvf_fields *F = c->fields;
	if (!F || F->idx.n == 0)
		return 0;
	if (row > UINT32_MAX)
		return nvf__err(NVF_EFULL, "row %llu: field indexes address rows below 2^32", (unsigned long long)row);
	vkeys ko = {0}, kn = {0};
	int rc = 0;
	for (size_t i = 0; i < F->idx.n && rc == 0; i++) {
		fidx *x = &F->idx.v[i];
		bool uo, un;
		if ((rc = payload_keys(x, old, &ko, &uo)) != 0 || (rc = payload_keys(x, new_pl, &kn, &un)) != 0)
			break;
		for (size_t a = 0; a < ko.n && rc == 0; a++) {
			bool kept = false;
			for (size_t b = 0; b < kn.n && !kept; b++)
				kept = same_key(&ko.v[a], &kn.v[b]);
			if (!kept)
				rc = push_op(F, (uint32_t)i, (uint32_t)row, &ko.v[a], false, false);
		}
		for (size_t b = 0; b < kn.n && rc == 0; b++) {
			bool had = false;
			for (size_t a = 0; a < ko.n && !had; a++)
				had = same_key(&ko.v[a], &kn.v[b]);
			if (!had)
				rc = push_op(F, (uint32_t)i, (uint32_t)row, &kn.v[b], true, false);
		}
		if (rc == 0 && uo != un)
			rc = push_op(F, (uint32_t)i, (uint32_t)row, NULL, un, true);
	}
	NVF_VEC_FREE(ko);
	NVF_VEC_FREE(kn);
	return rc;
}

/* ---- applying them ---- */

static int cmp_op(const void *a, const void *b)
{
	const fop *x = a, *y = b;
	if (x->idx != y->idx)
		return x->idx < y->idx ? -1 : 1;
	if (x->unidx != y->unidx)
		return x->unidx < y->unidx ? -1 : 1;
	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	if (x->slen != y->slen)
		return x->slen < y->slen ? -1 : 1;
	int c = x->slen ? memcmp(x->str, y->str, x->slen) : 0;
	if (c)
		return c;
	if (x->row != y->row)
		return x->row < y->row ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static bool same_group(const fop *a, const fop *b)
{
	return a->idx == b->idx && a->unidx == b->unidx && a->key == b->key;
}

static bool same_string(const fop *a, const fop *b)
{
	return a->slen == b->slen && (a->slen == 0 || memcmp(a->str, b->str, a->slen) == 0);
}

/* Apply ops[i..j) (one string's, sorted by row then sequence: the last op of a row
 * wins) to the bitmap; the change in its cardinality goes to *delta. */
static void apply_ops(roaring_bitmap_t *r, const fop *ops, size_t i, size_t j, int64_t *delta)
{
	uint64_t before = roaring_bitmap_get_cardinality(r);
	for (size_t k = i; k < j; k++) {
		if (k + 1 < j && ops[k + 1].row == ops[k].row)
			continue;
		if (ops[k].add)
			roaring_bitmap_add(r, ops[k].row);
		else
			roaring_bitmap_remove(r, ops[k].row);
	}
	*delta += (int64_t)roaring_bitmap_get_cardinality(r) - (int64_t)before;
}

/* One key of a non-string index (or the unindexed posting). */
static int flush_plain(nvf_txn *txn, struct nvf_disk_tree *t, uint64_t key, const fop *ops, size_t i, size_t j,
		       int64_t *delta)
{
	nvf_val v;
	roaring_bitmap_t *r = NULL;
	int rc = nvf__tree_get(txn, t, key, &v);
	if (rc == 0)
		rc = posting_load(v.data, (size_t)v.len, &r);
	else if (rc == NVF_ENOTFOUND && !(r = roaring_bitmap_create()))
		rc = nvf__oom();
	else if (rc == NVF_ENOTFOUND)
		rc = 0;
	if (rc != 0)
		return rc;
	apply_ops(r, ops, i, j, delta);
	if (roaring_bitmap_is_empty(r)) {
		rc = nvf__tree_del(txn, t, key);
		if (rc == NVF_ENOTFOUND)
			rc = 0;
	} else {
		nvf_buf b = {0};
		if ((rc = posting_store(r, &b)) == 0)
			rc = nvf__tree_put(txn, t, key, b.p, b.n, 0, NULL);
		nvf__buf_free(&b);
	}
	nvf__rb_free(r);
	return rc;
}

/* One key of a string-keyed index: its chain of (string, posting). */
static int flush_chain(nvf_txn *txn, struct nvf_disk_tree *t, uint64_t key, const fop *ops, size_t i, size_t j,
		       int64_t *delta)
{
	sentry ents[MAX_CHAIN];
	size_t nents = 0;
	nvf_val v;
	int rc = nvf__tree_get(txn, t, key, &v);
	if (rc == 0)
		rc = chain_parse(v.data, (size_t)v.len, ents, MAX_CHAIN, &nents);
	else if (rc == NVF_ENOTFOUND)
		rc = 0;
	if (rc != 0)
		return rc;
	/* The new chain: every old string (changed or not), then the new ones. */
	nvf_buf out = {0};
	uint32_t cnt = 0;
	rc = nvf__buf_put(&out, &cnt, 4);
	bool *used = calloc(nents ? nents : 1, sizeof(bool));
	if (!used)
		rc = nvf__oom();
	for (size_t e = 0; e <= nents && rc == 0; e++) {
		/* e < nents: an existing string; e == nents: the strings not seen yet. */
		for (size_t a = i; a < j && rc == 0;) {
			size_t b = a;
			while (b < j && same_string(&ops[a], &ops[b]))
				b++;
			bool match = e < nents && ops[a].slen == ents[e].slen &&
				     (ops[a].slen == 0 || memcmp(ops[a].str, ents[e].s, ops[a].slen) == 0);
			bool fresh = e == nents;
			for (size_t x = 0; fresh && x < nents; x++)
				fresh = !(ops[a].slen == ents[x].slen && (ops[a].slen == 0 || memcmp(ops[a].str, ents[x].s, ops[a].slen) == 0));
			if (match || fresh) {
				roaring_bitmap_t *r = NULL;
				if (match)
					rc = posting_load(ents[e].post, ents[e].plen, &r);
				else if (!(r = roaring_bitmap_create()))
					rc = nvf__oom();
				if (rc == 0) {
					apply_ops(r, ops, a, b, delta);
					if (match)
						used[e] = true;
					if (!roaring_bitmap_is_empty(r)) {
						nvf_buf p = {0};
						uint32_t sl = ops[a].slen, pl;
						if ((rc = posting_store(r, &p)) == 0) {
							pl = (uint32_t)p.n;
							if ((rc = nvf__buf_put(&out, &sl, 4)) == 0 &&
							    (rc = nvf__buf_put(&out, ops[a].str, sl)) == 0 &&
							    (rc = nvf__buf_put(&out, &pl, 4)) == 0)
								rc = nvf__buf_put(&out, p.p, p.n);
							cnt++;
						}
						nvf__buf_free(&p);
					}
				}
				nvf__rb_free(r);
			}
			a = b;
		}
		/* An existing string no op touched stays as it was. */
		if (rc == 0 && e < nents && !used[e]) {
			uint32_t sl = ents[e].slen, pl = ents[e].plen;
			if ((rc = nvf__buf_put(&out, &sl, 4)) == 0 && (rc = nvf__buf_put(&out, ents[e].s, sl)) == 0 &&
			    (rc = nvf__buf_put(&out, &pl, 4)) == 0)
				rc = nvf__buf_put(&out, ents[e].post, pl);
			cnt++;
		}
	}
	free(used);
	if (rc == 0) {
		memcpy(out.p, &cnt, 4);
		if (cnt == 0) {
			rc = nvf__tree_del(txn, t, key);
			if (rc == NVF_ENOTFOUND)
				rc = 0;
		} else if (cnt > MAX_CHAIN) {
			rc = nvf__err(NVF_EFULL, "more than %d strings under one hash in a field index", MAX_CHAIN);
		} else {
			rc = nvf__tree_put(txn, t, key, out.p, out.n, 0, NULL);
		}
	}
	nvf__buf_free(&out);
	return rc;
}

static int write_record(nvf_txn *txn, struct nvf_fields *F, const fidx *x)
{
	size_t plen = strlen(x->path.canon);
	struct nvf_disk_field h = {.magic = NVF_FIELD_MAGIC, .type = (uint8_t)x->type, .entries = x->entries,
				   .path_len = (uint32_t)plen};
	nvf_buf b = {0};
	int rc = nvf__buf_put(&b, &h, sizeof(h));
	if (rc == 0)
		rc = nvf__buf_put(&b, x->path.canon, plen);
	if (rc == 0)
		rc = nvf__tree_put(txn, &F->reg->d, x->num, b.p, b.n, 0, NULL);
	nvf__buf_free(&b);
	return rc;
}

int nvf__fields_flush(nvf_txn *txn, nvf_coll *c)
{
	struct nvf_fields *F = c->fields;
	if (!F || F->ops.n == 0)
		return 0;
	qsort(F->ops.v, F->ops.n, sizeof(fop), cmp_op);
	int rc = 0;
	for (size_t i = 0; i < F->ops.n && rc == 0;) {
		size_t j = i + 1;
		while (j < F->ops.n && same_group(&F->ops.v[i], &F->ops.v[j]))
			j++;
		fidx *x = &F->idx.v[F->ops.v[i].idx];
		int64_t delta = 0;
		if (F->ops.v[i].unidx) {
			rc = flush_plain(txn, &F->reg->d, NVF_FIELD_UNINDEXED | x->num, F->ops.v, i, j, &delta);
		} else if ((rc = postings_tree(txn, x, true)) == 0) {
			if (string_keyed(x->type))
				rc = flush_chain(txn, &x->t->d, F->ops.v[i].key, F->ops.v, i, j, &delta);
			else
				rc = flush_plain(txn, &x->t->d, F->ops.v[i].key, F->ops.v, i, j, &delta);
			x->entries += (uint64_t)delta;
			x->changed |= delta != 0;
		}
		i = j;
	}
	for (size_t i = 0; i < F->idx.n && rc == 0; i++)
		if (F->idx.v[i].changed && (rc = write_record(txn, F, &F->idx.v[i])) == 0)
			F->idx.v[i].changed = false;
	for (size_t i = 0; i < F->ops.n; i++)
		free(F->ops.v[i].str);
	F->ops.n = 0;
	return nvf__txn_fail(txn, rc);
}

/* ---- the public calls ---- */

static int check_indexable(const nvf_path *p, int type)
{
	if (!nvf_field_type_name(type))
		return nvf__err(NVF_EINVAL, "field type %d: use NVF_FIELD_STRING, _INT, _FLOAT, _BOOL, _TIMESTAMP or _TAGS", type);
	if (p->field == NVF_PF_TAGS)
		return type == NVF_FIELD_TAGS ? 0
					      : nvf__err(NVF_EINVAL, "the record's tags are indexed with type tags, not %s",
							 type_names[type]);
	if (p->field != NVF_PF_DOC)
		return nvf__err(NVF_EINVAL, "%s is read from the record itself and needs no index", p->canon);
	return 0;
}

/* The ops that put every record's keys for index x into `into` (as its index idx):
 * building an index, and check's expectation of what one holds. */
static int index_ops(nvf_txn *txn, nvf_coll *c, fidx *x, struct nvf_fields *into, uint32_t idx)
{
	uint64_t rows = nvf__array_rows(c->vec);
	nvf_buf *tmp = nvf__eval_tmp();
	if (!tmp)
		return nvf__oom();
	if (rows > (uint64_t)UINT32_MAX + 1)
		return nvf__err(NVF_EFULL, "field indexes address rows below 2^32; the collection has %llu",
				(unsigned long long)rows);
	vkeys keys = {0};
	int rc = 0;
	for (uint64_t r = 0; r < rows && rc == 0; r++) {
		uint64_t id;
		memcpy(&id, nvf__array_row(c->rowids, r), 8);
		if (id == NVF_ROW_FREE)
			continue;
		nvf_payload pl;
		int has = nvf__meta_payload(txn, c, r, id, tmp, &pl);
		bool un;
		if (has < 0)
			rc = has;
		else if (has && (rc = payload_keys(x, &pl, &keys, &un)) == 0) {
			for (size_t k = 0; k < keys.n && rc == 0; k++)
				rc = push_op(into, idx, (uint32_t)r, &keys.v[k], true, false);
			if (rc == 0 && un)
				rc = push_op(into, idx, (uint32_t)r, NULL, true, true);
		}
	}
	NVF_VEC_FREE(keys);
	return rc;
}

int nvf_field_add(nvf_db *db, nvf_txn *txn, const char *path, int type)
{
	nvf_path p;
	int rc = nvf__path_parse(path, &p);
	if (rc != 0)
		return rc;
	if ((rc = check_indexable(&p, type)) != 0) {
		nvf__path_free(&p);
		return rc;
	}
	nvf_coll *c;
	bool own;
	if ((rc = nvf__coll_enter(db, &txn, true, &own, &c)) != 0) {
		nvf__path_free(&p);
		return rc;
	}
	struct nvf_fields *F = c->fields;
	if (!F) {
		rc = nvf__err(NVF_ECORRUPT, "the collection has no field index registry");
	} else if (find_index(F, p.canon)) {
		rc = nvf__err(NVF_EEXIST, "%s already has an index", p.canon);
	} else if (F->idx.n >= 256) {
		rc = nvf__err(NVF_EFULL, "the collection has 256 field indexes, the most it may have");
	}
	if (rc != 0) {
		nvf__path_free(&p);
		return nvf__coll_leave(txn, own, true, rc);
	}
	/* From here the transaction changes. Pending changes of other indexes go
	 * first, so that the new index's ops are the only ones left. */
	fidx x = {.num = F->reg->d.aux + 1, .type = type, .path = p, .changed = true};
	if ((rc = nvf__fields_flush(txn, c)) != 0 || (rc = NVF_VEC_PUSH(F->idx, x)) != 0) {
		nvf__path_free(&p);
		return nvf__coll_leave(txn, own, true, nvf__txn_fail(txn, rc));
	}
	F->reg->d.aux = x.num;
	fidx *nx = &F->idx.v[F->idx.n - 1];
	uint32_t me = (uint32_t)(F->idx.n - 1);
	rc = postings_tree(txn, nx, true);
	/* Build over every record that has a payload. */
	if (rc == 0)
		rc = index_ops(txn, c, nx, F, me);
	if (rc == 0)
		rc = write_record(txn, F, nx);
	if (rc == 0)
		rc = nvf__fields_flush(txn, c);
	return nvf__coll_leave(txn, own, true, nvf__txn_fail(txn, rc));
}

int nvf_field_drop(nvf_db *db, nvf_txn *txn, const char *path)
{
	nvf_path p;
	int rc = nvf__path_parse(path, &p);
	if (rc != 0)
		return rc;
	nvf_coll *c;
	bool own;
	if ((rc = nvf__coll_enter(db, &txn, true, &own, &c)) != 0) {
		nvf__path_free(&p);
		return rc;
	}
	struct nvf_fields *F = c->fields;
	fidx *x = find_index(F, p.canon);
	if (!x) {
		rc = nvf__err(NVF_ENOTFOUND, "%s has no index", p.canon);
		nvf__path_free(&p);
		return nvf__coll_leave(txn, own, true, rc);
	}
	nvf__path_free(&p);
	size_t at = (size_t)(x - F->idx.v);
	/* Its pending ops go with it; the others keep their index numbers. */
	if ((rc = nvf__fields_flush(txn, c)) == 0 && (rc = postings_tree(txn, x, false)) == 0 &&
	    (rc = nvf__tree_drop(txn, &x->t->d)) == 0) {
		rc = nvf__tree_del(txn, &F->reg->d, x->num);
		if (rc == 0) {
			rc = nvf__tree_del(txn, &F->reg->d, NVF_FIELD_UNINDEXED | x->num);
			if (rc == NVF_ENOTFOUND)
				rc = 0;
		}
	}
	if (rc == 0) {
		/* The emptied tree stays in the catalog with no pages; a later index
		 * takes a new number. */
		fidx_free(x);
		memmove(&F->idx.v[at], &F->idx.v[at + 1], (F->idx.n - at - 1) * sizeof(fidx));
		F->idx.n--;
	}
	return nvf__coll_leave(txn, own, true, nvf__txn_fail(txn, rc));
}

int nvf_field_list(nvf_db *db, nvf_txn *txn, nvf_field_info **out, size_t *n)
{
	if (!out || !n)
		return nvf__err(NVF_EINVAL, "nvf_field_list: NULL output");
	nvf_coll *c;
	bool own;
	int rc = nvf__coll_enter(db, &txn, false, &own, &c);
	if (rc != 0)
		return rc;
	struct nvf_fields *F = c->fields;
	size_t cnt = F ? F->idx.n : 0;
	nvf_field_info *info = calloc(cnt ? cnt : 1, sizeof(*info));
	if (!info)
		rc = nvf__oom();
	if (rc == 0 && (txn->flags & NVF_TXN_F_WRITE))
		rc = nvf__fields_flush(txn, c);
	for (size_t i = 0; i < cnt && rc == 0; i++) {
		fidx *x = &F->idx.v[i];
		snprintf(info[i].path, sizeof(info[i].path), "%s", x->path.canon);
		info[i].type = x->type;
		info[i].entries = x->entries;
		if ((rc = postings_tree(txn, x, false)) != 0)
			break;
		info[i].keys = x->t->d.count;
		nvf_val v;
		int r = nvf__tree_get(txn, &F->reg->d, NVF_FIELD_UNINDEXED | x->num, &v);
		if (r == 0)
			info[i].unindexed = posting_card(v.data, (size_t)v.len);
		else if (r != NVF_ENOTFOUND)
			rc = r;
	}
	rc = nvf__coll_leave(txn, own, false, rc);
	if (rc != 0) {
		free(info);
		return rc;
	}
	*out = info;
	*n = cnt;
	return 0;
}

/* ---- answering predicates ---- */

/* The inclusive key range [lo, hi] a comparison with a literal covers; false if the
 * index cannot answer it exactly (wrong kind of literal, a number it cannot hold). */
static bool lit_range(int type, int op, const nvf_lit *l, uint64_t *lo, uint64_t *hi, bool *empty)
{
	*empty = false;
	if (type == NVF_FIELD_INT) {
		if (l->type != NVF_DT_INT && l->type != NVF_DT_FLOAT)
			return false;
		/* [lo, hi] over the integers for "i op l". */
		int64_t a = INT64_MIN, b = INT64_MAX;
		if (l->type == NVF_DT_INT) {
			int64_t x = l->i;
			switch (op) {
			case NVF_OP_EQ: a = b = x; break;
			case NVF_OP_LT: if (x == INT64_MIN) *empty = true; else b = x - 1; break;
			case NVF_OP_LE: b = x; break;
			case NVF_OP_GT: if (x == INT64_MAX) *empty = true; else a = x + 1; break;
			case NVF_OP_GE: a = x; break;
			default: return false;
			}
		} else {
			double x = l->f, fl = floor(x), ce = ceil(x);
			bool ok_fl = fl >= -9223372036854775808.0 && fl < 9223372036854775808.0;
			bool ok_ce = ce >= -9223372036854775808.0 && ce < 9223372036854775808.0;
			switch (op) {
			case NVF_OP_EQ:
				if (fl != x || !ok_fl)
					*empty = true;
				else
					a = b = (int64_t)x;
				break;
			case NVF_OP_LT: /* i < x  <=>  i <= ceil(x) - 1 */
				if (ce <= -9223372036854775808.0) *empty = true; else if (ok_ce) b = (int64_t)ce - 1;
				break;
			case NVF_OP_LE: /* i <= floor(x) */
				if (fl < -9223372036854775808.0) *empty = true; else if (ok_fl) b = (int64_t)fl;
				break;
			case NVF_OP_GT: /* i >= floor(x) + 1 */
				if (fl >= 9223372036854775807.0) *empty = true; else if (ok_fl) a = (int64_t)fl + 1;
				break;
			case NVF_OP_GE: /* i >= ceil(x) */
				if (ce >= 9223372036854775808.0) *empty = true; else if (ok_ce) a = (int64_t)ce;
				break;
			default: return false;
			}
		}
		*lo = int_key(a);
		*hi = int_key(b);
		return true;
	}
	if (type == NVF_FIELD_FLOAT) {
		double x;
		if (l->type == NVF_DT_FLOAT)
			x = l->f;
		else if (l->type != NVF_DT_INT || !exact_double(l->i, &x))
			return false;
		uint64_t k = float_key(x);
		*lo = 0;
		*hi = UINT64_MAX;
		switch (op) {
		case NVF_OP_EQ: *lo = *hi = k; break;
		case NVF_OP_LT: if (k == 0) *empty = true; else *hi = k - 1; break;
		case NVF_OP_LE: *hi = k; break;
		case NVF_OP_GT: if (k == UINT64_MAX) *empty = true; else *lo = k + 1; break;
		case NVF_OP_GE: *lo = k; break;
		default: return false;
		}
		/* -0.0 and 0.0 are one key: a range ending at one of them covers both. */
		return true;
	}
	if (type == NVF_FIELD_TIMESTAMP) {
		if (l->type != NVF_DT_STR || !l->iso)
			return false;
		uint64_t k = int_key(l->us);
		*lo = 0;
		*hi = UINT64_MAX;
		switch (op) {
		case NVF_OP_EQ: *lo = *hi = k; break;
		case NVF_OP_LT: if (k == 0) *empty = true; else *hi = k - 1; break;
		case NVF_OP_LE: *hi = k; break;
		case NVF_OP_GT: if (k == UINT64_MAX) *empty = true; else *lo = k + 1; break;
		case NVF_OP_GE: *lo = k; break;
		default: return false;
		}
		return true;
	}
	if (type == NVF_FIELD_BOOL) {
		if (l->type != NVF_DT_TRUE && l->type != NVF_DT_FALSE)
			return false;
		uint64_t k = l->type == NVF_DT_TRUE;
		if (op == NVF_OP_EQ)
			*lo = *hi = k;
		else if (op == NVF_OP_NE)
			*lo = *hi = !k;
		else
			*empty = true; /* booleans have no order: every row compares false */
		return true;
	}
	return false;
}

/* OR the postings of keys [lo, hi] into r. */
static int add_range(nvf_txn *txn, fidx *x, uint64_t lo, uint64_t hi, roaring_bitmap_t *r)
{
	nvf_cursor cur;
	int rc;
	for (rc = nvf__cursor_seek(&cur, txn, &x->t->d, lo); rc == 0 && cur.valid; rc = nvf__cursor_next(&cur)) {
		uint64_t key;
		nvf_val v;
		if ((rc = nvf__cursor_get(&cur, &key, &v)) != 0 || key > hi)
			break;
		uint32_t card = posting_card(v.data, (size_t)v.len);
		if (card <= NVF_POSTING_SMALL && v.len == 4 + 4 * (uint64_t)card) {
			uint32_t rows[NVF_POSTING_SMALL];
			memcpy(rows, v.data + 4, 4 * (size_t)card);
			roaring_bitmap_add_many(r, card, rows);
			continue;
		}
		roaring_bitmap_t *p;
		if ((rc = posting_load(v.data, (size_t)v.len, &p)) != 0)
			break;
		roaring_bitmap_or_inplace(r, p);
		nvf__rb_free(p);
	}
	return rc;
}

/* The posting of one string (a string-keyed index), ORed into r. */
static int add_string(nvf_txn *txn, fidx *x, const char *s, size_t n, roaring_bitmap_t *r)
{
	nvf_val v;
	int rc = nvf__tree_get(txn, &x->t->d, str_key((const uint8_t *)s, n), &v);
	if (rc == NVF_ENOTFOUND)
		return 0;
	sentry ents[MAX_CHAIN];
	size_t ne;
	if (rc != 0 || (rc = chain_parse(v.data, (size_t)v.len, ents, MAX_CHAIN, &ne)) != 0)
		return rc;
	for (size_t e = 0; e < ne; e++) {
		if (ents[e].slen != n || memcmp(ents[e].s, s, n) != 0)
			continue;
		roaring_bitmap_t *p;
		if ((rc = posting_load(ents[e].post, ents[e].plen, &p)) != 0)
			return rc;
		roaring_bitmap_or_inplace(r, p);
		nvf__rb_free(p);
	}
	return 0;
}

/* Can the index answer node exactly? (The literals decide for each kind.) */
static bool answerable(const fidx *x, const nvf_fnode *n)
{
	uint64_t lo, hi;
	bool empty;
	switch (n->kind) {
	case NVF_FN_CMP:
		if (string_keyed(x->type))
			return x->type == NVF_FIELD_STRING && n->op == NVF_OP_EQ && n->lits[0].type == NVF_DT_STR &&
			       !n->lits[0].iso;
		if (n->op == NVF_OP_NE)
			return x->type == NVF_FIELD_BOOL ? lit_range(x->type, NVF_OP_NE, &n->lits[0], &lo, &hi, &empty)
							 : lit_range(x->type, NVF_OP_LT, &n->lits[0], &lo, &hi, &empty);
		return lit_range(x->type, n->op, &n->lits[0], &lo, &hi, &empty);
	case NVF_FN_IN:
	case NVF_FN_NOT_IN:
		for (size_t i = 0; i < n->nlits; i++) {
			const nvf_lit *l = &n->lits[i];
			if (x->type == NVF_FIELD_STRING ? (n->kind == NVF_FN_NOT_IN || l->type != NVF_DT_STR || l->iso)
							: x->type == NVF_FIELD_TAGS || !lit_range(x->type, NVF_OP_EQ, l, &lo, &hi, &empty))
				return false;
		}
		return true;
	case NVF_FN_BETWEEN:
	case NVF_FN_NOT_BETWEEN:
		return !string_keyed(x->type) && x->type != NVF_FIELD_BOOL &&
		       lit_range(x->type, NVF_OP_GE, &n->lits[0], &lo, &hi, &empty) &&
		       lit_range(x->type, NVF_OP_LE, &n->lits[1], &lo, &hi, &empty);
	case NVF_FN_CONTAINS:
	case NVF_FN_CONTAINS_ANY:
	case NVF_FN_CONTAINS_ALL:
		if (x->type != NVF_FIELD_TAGS)
			return false;
		for (size_t i = 0; i < n->nlits; i++)
			if (n->lits[i].type != NVF_DT_STR || n->lits[i].iso)
				return false;
		return true;
	default:
		return false;
	}
}

/* The rows of one comparison (op, literal) by key ranges. NE is LT plus GT (booleans:
 * the other value). */
static int cmp_rows(nvf_txn *txn, fidx *x, int op, const nvf_lit *l, roaring_bitmap_t *r)
{
	uint64_t lo, hi;
	bool empty;
	int rc = 0;
	if (op == NVF_OP_NE && x->type != NVF_FIELD_BOOL) {
		if (lit_range(x->type, NVF_OP_LT, l, &lo, &hi, &empty) && !empty)
			rc = add_range(txn, x, lo, hi, r);
		if (rc == 0 && lit_range(x->type, NVF_OP_GT, l, &lo, &hi, &empty) && !empty)
			rc = add_range(txn, x, lo, hi, r);
		return rc;
	}
	if (lit_range(x->type, op, l, &lo, &hi, &empty) && !empty && lo <= hi)
		rc = add_range(txn, x, lo, hi, r);
	return rc;
}

int nvf__fields_answer(nvf_txn *txn, nvf_coll *c, const struct nvf_filter *f, int node, roaring_bitmap_t **out,
		       uint64_t *evals)
{
	const nvf_fnode *n = &f->nodes[node];
	if (n->path < 0 || !c->fields)
		return 0;
	fidx *x = find_index(c->fields, f->paths[n->path].canon);
	if (!x || !answerable(x, n))
		return 0;
	int rc = 0;
	if ((txn->flags & NVF_TXN_F_WRITE) && (rc = nvf__fields_flush(txn, c)) != 0)
		return rc;
	x = find_index(c->fields, f->paths[n->path].canon);
	if ((rc = postings_tree(txn, x, false)) != 0)
		return rc;
	roaring_bitmap_t *r = roaring_bitmap_create();
	if (!r)
		return nvf__oom();
	uint64_t lo, hi;
	bool empty;
	switch (n->kind) {
	case NVF_FN_CMP:
		if (x->type == NVF_FIELD_STRING)
			rc = add_string(txn, x, n->lits[0].s, n->lits[0].len, r);
		else
			rc = cmp_rows(txn, x, n->op, &n->lits[0], r);
		break;
	case NVF_FN_IN:
		for (size_t i = 0; i < n->nlits && rc == 0; i++)
			rc = x->type == NVF_FIELD_STRING ? add_string(txn, x, n->lits[i].s, n->lits[i].len, r)
							 : cmp_rows(txn, x, NVF_OP_EQ, &n->lits[i], r);
		break;
	case NVF_FN_NOT_IN: {
		/* Every held value but the listed ones: the whole key range, minus each. */
		if (x->type == NVF_FIELD_BOOL) {
			bool seen[2] = {false, false};
			for (size_t i = 0; i < n->nlits; i++)
				seen[n->lits[i].type == NVF_DT_TRUE] = true;
			for (uint64_t k = 0; k < 2 && rc == 0; k++)
				if (!seen[k])
					rc = add_range(txn, x, k, k, r);
			break;
		}
		rc = add_range(txn, x, 0, UINT64_MAX, r);
		roaring_bitmap_t *eqs = roaring_bitmap_create();
		if (!eqs)
			rc = nvf__oom();
		for (size_t i = 0; i < n->nlits && rc == 0; i++)
			rc = cmp_rows(txn, x, NVF_OP_EQ, &n->lits[i], eqs);
		if (rc == 0)
			roaring_bitmap_andnot_inplace(r, eqs);
		nvf__rb_free(eqs);
		break;
	}
	case NVF_FN_BETWEEN: {
		uint64_t lo2, hi2;
		bool e2;
		lit_range(x->type, NVF_OP_GE, &n->lits[0], &lo, &hi, &empty);
		lit_range(x->type, NVF_OP_LE, &n->lits[1], &lo2, &hi2, &e2);
		if (!empty && !e2 && lo <= hi2)
			rc = add_range(txn, x, lo, hi2, r);
		break;
	}
	case NVF_FN_NOT_BETWEEN:
		rc = cmp_rows(txn, x, NVF_OP_LT, &n->lits[0], r);
		if (rc == 0)
			rc = cmp_rows(txn, x, NVF_OP_GT, &n->lits[1], r);
		break;
	case NVF_FN_CONTAINS:
	case NVF_FN_CONTAINS_ANY:
		for (size_t i = 0; i < n->nlits && rc == 0; i++)
			rc = add_string(txn, x, n->lits[i].s, n->lits[i].len, r);
		break;
	case NVF_FN_CONTAINS_ALL:
		for (size_t i = 0; i < n->nlits && rc == 0; i++) {
			roaring_bitmap_t *one = roaring_bitmap_create();
			if (!one) {
				rc = nvf__oom();
				break;
			}
			rc = add_string(txn, x, n->lits[i].s, n->lits[i].len, one);
			if (i == 0)
				roaring_bitmap_or_inplace(r, one);
			else
				roaring_bitmap_and_inplace(r, one);
			nvf__rb_free(one);
		}
		break;
	default:
		break;
	}
	/* Rows the index holds as unindexed: their documents decide. */
	nvf_val v;
	if (rc == 0 && (rc = nvf__tree_get(txn, &c->fields->reg->d, NVF_FIELD_UNINDEXED | x->num, &v)) == 0) {
		roaring_bitmap_t *u;
		if ((rc = posting_load(v.data, (size_t)v.len, &u)) == 0) {
			nvf_evalctx ctx = {.txn = txn, .c = c, .tmp = nvf__eval_tmp()};
			roaring_uint32_iterator_t *it = roaring_create_iterator(u);
			uint64_t rows = nvf__array_rows(c->vec);
			for (; it && it->has_value && rc == 0; roaring_advance_uint32_iterator(it)) {
				uint64_t row = it->current_value, id;
				if (row >= rows) {
					rc = nvf__err(NVF_ECORRUPT, "field index on %s: unindexed row %llu past the end",
						      x->path.canon, (unsigned long long)row);
					break;
				}
				memcpy(&id, nvf__array_row(c->rowids, row), 8);
				nvf__evalctx_reset(&ctx, row, id);
				if (nvf__filter_eval_node(f, node, &ctx))
					roaring_bitmap_add(r, (uint32_t)row);
				if (ctx.err)
					rc = ctx.err;
			}
			nvf__rb_iter_free(it);
			nvf__rb_free(u);
			*evals += ctx.evals;
		}
	} else if (rc == NVF_ENOTFOUND) {
		rc = 0;
	}
	if (rc != 0) {
		nvf__rb_free(r);
		return rc;
	}
	*out = r;
	return 1;
}

/* ---- check ---- */

/* Every index holds exactly what the documents say: rebuilt in memory and compared
 * key by key with the stored postings (and the unindexed rows, and the counts). */
int nvf__fields_check(nvf_txn *txn, nvf_coll *c)
{
	struct nvf_fields *F = c->fields;
	if (!F)
		return 0;
	int rc = 0;
	for (size_t i = 0; i < F->idx.n && rc == 0; i++) {
		fidx *x = &F->idx.v[i];
		struct nvf_fields want = {0};
		if ((rc = postings_tree(txn, x, false)) == 0 && (rc = index_ops(txn, c, x, &want, 0)) != 0) {
			for (size_t k = 0; k < want.ops.n; k++)
				free(want.ops.v[k].str);
			NVF_VEC_FREE(want.ops);
		}
		if (rc != 0)
			break;
		/* Group the expected ops by key and compare with the tree in order. */
		if (rc == 0 && want.ops.n > 1)
			qsort(want.ops.v, want.ops.n, sizeof(fop), cmp_op);
		uint64_t entries = 0, keys_seen = 0;
		nvf_cursor cur;
		size_t a = 0;
		while (a < want.ops.n && want.ops.v[a].unidx == 0 && rc == 0) {
			size_t b = a;
			while (b < want.ops.n && same_group(&want.ops.v[a], &want.ops.v[b]))
				b++;
			nvf_val v;
			rc = nvf__tree_get(txn, &x->t->d, want.ops.v[a].key, &v);
			if (rc == NVF_ENOTFOUND) {
				rc = nvf__err(NVF_ECORRUPT, "field index on %s lacks a value row %u holds", x->path.canon,
					      want.ops.v[a].row);
				break;
			}
			keys_seen++;
			/* Rebuild the expected value and compare bytes: postings are canonical. */
			nvf_buf exp = {0};
			if (string_keyed(x->type)) {
				/* Chains keep their strings in the order they were first added:
				 * compare as sets of (string, rows). */
				sentry ents[MAX_CHAIN];
				size_t ne;
				if (rc == 0 && (rc = chain_parse(v.data, (size_t)v.len, ents, MAX_CHAIN, &ne)) == 0) {
					size_t strings = 0;
					for (size_t s = a; s < b && rc == 0;) {
						size_t e2 = s;
						while (e2 < b && same_string(&want.ops.v[s], &want.ops.v[e2]))
							e2++;
						strings++;
						roaring_bitmap_t *w = roaring_bitmap_create(), *got = NULL;
						for (size_t k = s; k < e2; k++)
							roaring_bitmap_add(w, want.ops.v[k].row);
						entries += e2 - s;
						bool found = false;
						for (size_t e = 0; e < ne && !found && rc == 0; e++) {
							if (ents[e].slen != want.ops.v[s].slen ||
							    memcmp(ents[e].s, want.ops.v[s].str, ents[e].slen) != 0)
								continue;
							found = true;
							if ((rc = posting_load(ents[e].post, ents[e].plen, &got)) == 0 &&
							    !roaring_bitmap_equals(w, got))
								rc = nvf__err(NVF_ECORRUPT, "field index on %s: the rows of a value disagree with the documents",
									      x->path.canon);
							nvf__rb_free(got);
						}
						if (!found && rc == 0)
							rc = nvf__err(NVF_ECORRUPT, "field index on %s lacks a string row %u holds",
								      x->path.canon, want.ops.v[s].row);
						nvf__rb_free(w);
						s = e2;
					}
					if (rc == 0 && strings != ne)
						rc = nvf__err(NVF_ECORRUPT, "field index on %s holds strings no document has",
							      x->path.canon);
				}
			} else if (rc == 0) {
				roaring_bitmap_t *w = roaring_bitmap_create(), *got = NULL;
				for (size_t k = a; k < b; k++)
					roaring_bitmap_add(w, want.ops.v[k].row);
				entries += b - a;
				if ((rc = posting_load(v.data, (size_t)v.len, &got)) == 0 && !roaring_bitmap_equals(w, got))
					rc = nvf__err(NVF_ECORRUPT, "field index on %s: the rows of a value disagree with the documents",
						      x->path.canon);
				nvf__rb_free(got);
				nvf__rb_free(w);
			}
			nvf__buf_free(&exp);
			a = b;
		}
		if (rc == 0 && keys_seen != x->t->d.count)
			rc = nvf__err(NVF_ECORRUPT, "field index on %s holds %llu values, the documents %llu", x->path.canon,
				      (unsigned long long)x->t->d.count, (unsigned long long)keys_seen);
		if (rc == 0 && entries != x->entries)
			rc = nvf__err(NVF_ECORRUPT, "field index on %s counts %llu entries, the documents make %llu",
				      x->path.canon, (unsigned long long)x->entries, (unsigned long long)entries);
		/* The unindexed rows. */
		if (rc == 0) {
			roaring_bitmap_t *w = roaring_bitmap_create(), *got = NULL;
			for (size_t k = a; k < want.ops.n; k++)
				roaring_bitmap_add(w, want.ops.v[k].row);
			nvf_val v;
			int r = nvf__tree_get(txn, &F->reg->d, NVF_FIELD_UNINDEXED | x->num, &v);
			if (r == 0)
				r = posting_load(v.data, (size_t)v.len, &got);
			else if (r == NVF_ENOTFOUND)
				r = (got = roaring_bitmap_create()) ? 0 : nvf__oom();
			if (r != 0)
				rc = r;
			else if (!roaring_bitmap_equals(w, got))
				rc = nvf__err(NVF_ECORRUPT, "field index on %s: its unindexed rows disagree with the documents",
					      x->path.canon);
			nvf__rb_free(w);
			nvf__rb_free(got);
		}
		(void)cur;
		for (size_t k = 0; k < want.ops.n; k++)
			free(want.ops.v[k].str);
		NVF_VEC_FREE(want.ops);
	}
	return rc;
}
