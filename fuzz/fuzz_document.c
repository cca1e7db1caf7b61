/* Fuzz target: JSON documents. The input is set as the document of a record of a
 * small collection (zstd-compressed where the codec is built in, with field indexes
 * that every set updates), read back (nvf_meta_get, nvf_record_json), merged as a
 * patch into another record's document, patched by a fixed patch, and used as a tag.
 * Every execution aborts its transaction: the collection never changes. */
#include "fuzz.h"

#include <nvf.h>

static nvf_db *db;

static void setup(void)
{
	char path[512];
	fuzz_dir("document");
	nvf_create_options co = NVF_CREATE_OPTIONS_INIT;
	co.dim = 2;
	co.durability = NVF_DURABILITY_NOSYNC;
	co.map_size = 64u << 20;
	co.doc_codec = NVF_CODEC_ZSTD;
	co.doc_max_bytes = 1u << 16;
	if (nvf_db_create(&db, fuzz_path(path, "doc.nvf"), &co) != 0) {
		unlink(path);
		co.doc_codec = NVF_CODEC_NONE;
		FUZZ_CHECK(nvf_db_create(&db, path, &co));
	}
	nvf_txn *txn;
	FUZZ_CHECK(nvf_txn_begin(&txn, db, 0));
	for (int i = 0; i < 3; i++) {
		float v[2] = {(float)i, 0};
		uint64_t id;
		FUZZ_CHECK(nvf_insert(db, txn, v, 2, &id));
	}
	FUZZ_CHECK(nvf_meta_set(db, txn, 1, "{\"a\":1,\"o\":{\"p\":[1,2],\"q\":\"x\"},\"s\":\"str\",\"tags\":[\"t\"]}"));
	FUZZ_CHECK(nvf_tag_add(db, txn, 2, "tag"));
	FUZZ_CHECK(nvf_field_add(db, txn, "a", NVF_FIELD_INT));
	FUZZ_CHECK(nvf_field_add(db, txn, "f", NVF_FIELD_FLOAT));
	FUZZ_CHECK(nvf_field_add(db, txn, "s", NVF_FIELD_STRING));
	FUZZ_CHECK(nvf_field_add(db, txn, "t", NVF_FIELD_TIMESTAMP));
	FUZZ_CHECK(nvf_field_add(db, txn, "tags", NVF_FIELD_TAGS));
	FUZZ_CHECK(nvf_field_add(db, txn, "o.q", NVF_FIELD_STRING));
	FUZZ_CHECK(nvf_txn_commit(txn));
}

static void read_back(nvf_txn *txn, uint64_t id)
{
	char *s = NULL;
	if (nvf_meta_get(db, txn, id, &s) == 0)
		nvf_free(s);
	s = NULL;
	if (nvf_record_json(db, txn, id, NVF_RECORD_VECTOR, &s) == 0)
		nvf_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!db)
		setup();
	char *json = fuzz_cstr(data, size);
	nvf_txn *txn;
	FUZZ_CHECK(nvf_txn_begin(&txn, db, 0));
	if (nvf_meta_set(db, txn, 0, json) == 0) {
		read_back(txn, 0);
		if (nvf_meta_patch(db, txn, 0, "{\"a\":null,\"o\":{\"p\":null,\"n\":{\"x\":1}},\"z\":[true]}") == 0)
			read_back(txn, 0);
	}
	if (nvf_meta_patch(db, txn, 1, json) == 0)
		read_back(txn, 1);
	if (nvf_tag_add(db, txn, 2, json) == 0)
		read_back(txn, 2);
	nvf_txn_abort(txn);
	free(json);
	return 0;
}
