/* Fuzz target: the filter language. The input is compiled as a filter; one that
 * compiles is evaluated on every record of a small fixed collection (documents of
 * every JSON type, tags, records without a document, field indexes of every type),
 * record by record, through the index planner (nvf_filter_ids) and in a search. */
#include "fuzz.h"

#include <nvf.h>

static nvf_db *db;

static const char *const docs[] = {
	"{\"a\":1,\"s\":\"x\",\"f\":1.5,\"b\":true,\"t\":\"2026-01-01T00:00:00Z\",\"arr\":[1,2,\"z\"],"
	"\"o\":{\"p\":{\"q\":null}},\"tags\":[\"u\"]}",
	"{\"a\":-5,\"s\":\"hello world\",\"f\":-0.0,\"b\":false,\"arr\":[],\"o\":{},\"t\":\"1999-12-31T23:59:59.5+02:00\"}",
	NULL,
	"{\"a\":9223372036854775807,\"s\":\"\",\"f\":1e308,\"n\":null,\"tags\":[\"u\",\"v\"]}",
	"{\"a\":2.5,\"s\":1,\"b\":\"true\",\"f\":\"1.5\",\"t\":7,\"tags\":\"u\"}",
	"{\"x\":{\"y\":{\"z\":[{\"w\":1},[2,[3]]]}},\"s\":\"\\u00e9t\\u00e9\",\"a\":-9223372036854775808}",
};
#define NRECS (sizeof docs / sizeof docs[0])

static void setup(void)
{
	char path[512];
	fuzz_dir("filter");
	nvf_create_options co = NVF_CREATE_OPTIONS_INIT;
	co.dim = 2;
	co.durability = NVF_DURABILITY_NOSYNC;
	co.map_size = 64u << 20;
	FUZZ_CHECK(nvf_db_create(&db, fuzz_path(path, "filter.nvf"), &co));
	nvf_txn *txn;
	FUZZ_CHECK(nvf_txn_begin(&txn, db, 0));
	static const char *const tags[] = {"red", "green", "blue", "new"};
	for (size_t i = 0; i < NRECS; i++) {
		float v[2] = {(float)i, (float)(i % 3)};
		uint64_t id;
		FUZZ_CHECK(nvf_insert(db, txn, v, 2, &id));
		if (docs[i])
			FUZZ_CHECK(nvf_meta_set(db, txn, id, docs[i]));
		if (i % 2 == 0)
			FUZZ_CHECK(nvf_tags_set(db, txn, id, tags + i % 4, 4 - i % 4));
	}
	FUZZ_CHECK(nvf_field_add(db, txn, "a", NVF_FIELD_INT));
	FUZZ_CHECK(nvf_field_add(db, txn, "f", NVF_FIELD_FLOAT));
	FUZZ_CHECK(nvf_field_add(db, txn, "s", NVF_FIELD_STRING));
	FUZZ_CHECK(nvf_field_add(db, txn, "b", NVF_FIELD_BOOL));
	FUZZ_CHECK(nvf_field_add(db, txn, "t", NVF_FIELD_TIMESTAMP));
	FUZZ_CHECK(nvf_field_add(db, txn, "tags", NVF_FIELD_TAGS));
	FUZZ_CHECK(nvf_txn_commit(txn));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!db)
		setup();
	char *expr = fuzz_cstr(data, size);
	nvf_filter *f = NULL;
	if (nvf_filter_compile(&f, expr) == 0) {
		nvf_txn *txn;
		FUZZ_CHECK(nvf_txn_begin(&txn, db, NVF_TXN_RDONLY));
		for (uint64_t id = 0; id <= NRECS; id++) /* NRECS itself: no such record */
			(void)nvf_filter_match(db, txn, f, id);
		uint64_t *ids = NULL;
		size_t n = 0;
		if (nvf_filter_ids(db, txn, f, &ids, &n) == 0)
			nvf_free(ids);
		float q[2] = {1, 1};
		nvf_result res[3];
		size_t nres;
		nvf_search_options so = NVF_SEARCH_OPTIONS_INIT;
		so.where = f;
		so.threads = 1;
		(void)nvf_search(db, txn, q, 2, 3, &so, res, &nres);
		nvf_txn_abort(txn);
		nvf_filter_free(f);
	}
	free(expr);
	return 0;
}
