/* Filtered k-NN on Fashion-MNIST with its real class labels as a document field plus
 * synthetic ones (a uniform price, a year, Zipf-distributed tags as record tags), at
 * selectivities from 0.1% to 100%, with and without field indexes: recall@10 at the
 * collection's default ef at least 0.95 against an exact ground truth, and exactly
 * min(k, |S|) results for every query. The ground truth comes from an exact scan
 * with the test's own predicate (an id callback on the test's arrays), so that it
 * does not rest on the filter engine it checks. Recall is tie-aware. */
#include "testutil.h"
#include "vecfile.h"

#include <math.h>
#include <nvf.h>
#include <zlib.h>

#define FASHION "/usr/share/datasets/fashion-mnist/"
#define K 10
#define NQ 200

static char *dir;
static float *base, *queries;
static size_t nbase, nq, dim;
static uint8_t *label;
static float *price;
static int *year;
static uint32_t *tagbits; /* bit t: tag "t<t>" for t < 32 */

static void setup(void)
{
	dir = tu_tmpdir();
}

static void teardown(void)
{
	tu_rmrf(dir);
	free(dir);
}

static float *load(const char *path, size_t limit, size_t *n, size_t *d)
{
	char err[VECFILE_ERRLEN];
	float *v = vecfile_load(path, VF_AUTO, limit, n, d, err);
	if (!v)
		ck_abort_msg("%s (install dataset-fashion-mnist: ./setup.sh test does)", err);
	return v;
}

/* The class labels: an IDX file of one dimension (8-byte header, then a byte each). */
static uint8_t *load_labels(const char *path, size_t n)
{
	gzFile f = gzopen(path, "rb");
	ck_assert_msg(f != NULL, "%s: cannot open", path);
	uint8_t hdr[8];
	ck_assert_int_eq(gzread(f, hdr, 8), 8);
	uint8_t *l = malloc(n);
	ck_assert_int_eq(gzread(f, l, (unsigned)n), (int)n);
	gzclose(f);
	return l;
}

/* Predicates on the test's own arrays: the ground truth's filter. */
typedef struct pred {
	const char *expr;
	int (*fn)(uint64_t id, void *ctx);
} pred;

static int p_label3(uint64_t id, void *c) { (void)c; return label[id] == 3; }
static int p_label3_p100(uint64_t id, void *c) { (void)c; return label[id] == 3 && price[id] < 100; }
static int p_label3_p10(uint64_t id, void *c) { (void)c; return label[id] == 3 && price[id] < 10; }
static int p_price500(uint64_t id, void *c) { (void)c; return price[id] < 500; }
static int p_years(uint64_t id, void *c) { (void)c; return year[id] >= 2000 && year[id] <= 2004; }
static int p_tag(uint64_t id, void *c) { (void)c; return (tagbits[id] >> 5) & 1; }
static int p_label8_or(uint64_t id, void *c) { (void)c; return label[id] == 8 || (label[id] == 1 && year[id] > 2020); }

static const pred preds[] = {
	{"price < 500", p_price500},                          /* 50% */
	{"year BETWEEN 2000 AND 2004", p_years},              /* 14% */
	{"label = 3", p_label3},                              /* 10%, one class */
	{"label = 8 OR (label = 1 AND year > 2020)", p_label8_or},
	{"tags CONTAINS 't5'", p_tag},                        /* Zipf: a few % */
	{"label = 3 AND price < 100", p_label3_p100},         /* 1% */
	{"label = 3 AND price < 10", p_label3_p10},           /* 0.1% */
};

static nvf_db *build(void)
{
	base = load(FASHION "train-images-idx3-ubyte.gz", 0, &nbase, &dim);
	queries = load(FASHION "t10k-images-idx3-ubyte.gz", NQ, &nq, &dim);
	label = load_labels(FASHION "train-labels-idx1-ubyte.gz", nbase);
	price = malloc(nbase * sizeof(float));
	year = malloc(nbase * sizeof(int));
	tagbits = calloc(nbase, sizeof(uint32_t));
	uint64_t rng = tu_seed("test_filtered");
	char *path = tu_path(dir, "f.nvf");
	nvf_create_options o = NVF_CREATE_OPTIONS_INIT;
	o.dim = (uint32_t)dim;
	o.index = NVF_INDEX_HNSW;
	o.durability = NVF_DURABILITY_NOSYNC;
	o.doc_codec = NVF_CODEC_ZSTD;
	nvf_db *db;
	ck_nvf(nvf_db_create(&db, path, &o));
	free(path);
	nvf_txn *txn;
	ck_nvf(nvf_txn_begin(&txn, db, 0));
	ck_nvf(nvf_insert_batch(db, txn, base, nbase, dim, NULL, NULL));
	for (uint64_t id = 0; id < nbase; id++) {
		price[id] = (float)(tu_below(&rng, 100000)) / 100.0f;
		year[id] = 1990 + (int)tu_below(&rng, 36);
		char doc[128];
		snprintf(doc, sizeof(doc), "{\"label\":%d,\"price\":%.2f,\"year\":%d}", label[id], (double)price[id], year[id]);
		ck_nvf(nvf_meta_set(db, txn, id, doc));
		/* Zipf(1) over 32 tags: tag t with probability ~ 1/(t+1), up to 3 draws. */
		char names[3][8];
		const char *tags[3];
		size_t nt = tu_below(&rng, 4);
		for (size_t i = 0; i < nt; i++) {
			double u = (double)tu_below(&rng, 1u << 30) / (double)(1u << 30) * 4.06; /* H(32) */
			int t = 0;
			for (double acc = 1.0; acc < u && t < 31; acc += 1.0 / (++t + 1))
				;
			snprintf(names[i], sizeof(names[i]), "t%d", t);
			tags[i] = names[i];
			tagbits[id] |= 1u << t;
		}
		ck_nvf(nvf_tags_set(db, txn, id, tags, nt));
	}
	ck_nvf(nvf_txn_commit(txn));
	return db;
}

#define NPREDS (sizeof(preds) / sizeof(preds[0]))

/* The exact answers, computed once: nq x K per filter, and their counts. */
static nvf_result *truth[NPREDS];
static size_t *ntruth[NPREDS];

static void ground_truth(nvf_db *db)
{
	for (size_t fi = 0; fi < NPREDS; fi++) {
		nvf_search_options gt_opts = NVF_SEARCH_OPTIONS_INIT;
		gt_opts.exact = 1;
		gt_opts.filter = preds[fi].fn;
		truth[fi] = malloc(nq * K * sizeof(nvf_result));
		ntruth[fi] = malloc(nq * sizeof(size_t));
		for (size_t q = 0; q < nq; q++)
			ck_nvf(nvf_search(db, NULL, queries + q * dim, dim, K, &gt_opts, truth[fi] + q * K, &ntruth[fi][q]));
	}
}

/* Every filter: results are min(k, |S|) always, and recall at the default ef. */
static void check_filters(nvf_db *db, const char *what)
{
	for (size_t fi = 0; fi < NPREDS; fi++) {
		uint64_t s = 0;
		for (uint64_t id = 0; id < nbase; id++)
			s += preds[fi].fn(id, NULL) != 0;
		nvf_filter *f;
		ck_nvf(nvf_filter_compile(&f, preds[fi].expr));
		nvf_search_options so = NVF_SEARCH_OPTIONS_INIT;
		so.where = f;
		nvf_explain ex = NVF_EXPLAIN_INIT;
		so.explain = &ex;
		size_t hit = 0, want = 0, expected = s < K ? (size_t)s : K;
		for (size_t q = 0; q < nq; q++) {
			nvf_result got[K];
			const nvf_result *gt = truth[fi] + q * K;
			size_t ngt = ntruth[fi][q], ngot;
			ck_nvf(nvf_search(db, NULL, queries + q * dim, dim, K, &so, got, &ngot));
			tu_assert(ngot == expected && ngt == expected, "%s, %s, query %zu: %zu results (ground truth %zu), want %zu",
				  what, preds[fi].expr, q, ngot, ngt, expected);
			for (size_t i = 0; i < ngot; i++) {
				tu_assert(preds[fi].fn(got[i].id, NULL), "%s, %s: id %llu does not pass", what, preds[fi].expr,
					  (unsigned long long)got[i].id);
				hit += ngt && got[i].distance <= gt[ngt - 1].distance * (1 + 1e-6f);
			}
			want += ngt;
		}
		double r = want ? (double)hit / (double)want : 1.0;
		fprintf(stderr, "%s: %-45s |S| %6llu  recall@10 %.4f  (%s)\n", what, preds[fi].expr, (unsigned long long)s, r,
			ex.text);
		tu_assert(r >= 0.95, "%s, %s: recall %.4f at the default ef (%s)", what, preds[fi].expr, r, ex.text);
		/* A batch answers as the single searches do. */
		nvf_result *b = malloc(20 * K * sizeof(*b)), one[K];
		so.explain = NULL;
		ck_nvf(nvf_search_batch(db, NULL, queries, 20, dim, K, &so, b));
		for (size_t q = 0; q < 20; q++) {
			size_t n;
			ck_nvf(nvf_search(db, NULL, queries + q * dim, dim, K, &so, one, &n));
			for (size_t i = 0; i < K; i++)
				tu_assert(i < n ? b[q * K + i].id == one[i].id : b[q * K + i].id == NVF_NO_ID,
					  "%s, %s, query %zu: batch and single differ at rank %zu", what, preds[fi].expr, q, i);
		}
		free(b);
		nvf_filter_free(f);
	}
}

START_TEST(test_filtered_recall_and_result_counts_on_fashion_mnist)
{
	nvf_db *db = build();
	ground_truth(db);
	check_filters(db, "no index");
	ck_nvf(nvf_field_add(db, NULL, "label", NVF_FIELD_INT));
	ck_nvf(nvf_field_add(db, NULL, "price", NVF_FIELD_FLOAT));
	ck_nvf(nvf_field_add(db, NULL, "year", NVF_FIELD_INT));
	ck_nvf(nvf_field_add(db, NULL, "tags", NVF_FIELD_TAGS));
	check_filters(db, "indexed");
	/* The indexes count exactly: the planner's estimate is |S|. */
	nvf_filter *f;
	ck_nvf(nvf_filter_compile(&f, "label = 3 AND price < 100"));
	nvf_search_options so = NVF_SEARCH_OPTIONS_INIT;
	nvf_explain ex = NVF_EXPLAIN_INIT;
	so.where = f;
	so.explain = &ex;
	nvf_result r[K];
	size_t n;
	ck_nvf(nvf_search(db, NULL, queries, dim, K, &so, r, &n));
	uint64_t s = 0;
	for (uint64_t id = 0; id < nbase; id++)
		s += p_label3_p100(id, NULL);
	tu_eq(ex.estimate, s);
	ck_assert_str_eq(ex.estimate_from, "index");
	nvf_filter_free(f);
	ck_nvf(nvf_check(db, NULL));
	ck_nvf(nvf_db_close(db));
	for (size_t fi = 0; fi < NPREDS; fi++) {
		free(truth[fi]);
		free(ntruth[fi]);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("filtered");
	TCase *tc = tcase_create("filtered");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 1800);
	tcase_add_test(tc, test_filtered_recall_and_result_counts_on_fashion_mnist);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
