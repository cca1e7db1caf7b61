/* Record metadata: documents (round trip, merge patches, removal), tags, versions and
 * times, deletes taking documents and index entries with them, every codec (round
 * trip, reopen, the zstd dictionary trained, kept and retrained), every kind of bad
 * input refused with its code and the transaction left usable and unchanged, and the
 * upgrade of a file written before metadata existed. */
#include "coll.h"
#include "testutil.h"

#include <jansson.h>
#include <math.h>

#define DIM 4

TU_DB_FIXTURE("m.nvf")

static nvf_db *make(int codec, int index, uint32_t doc_max)
{
	nvf_create_options o = NVF_CREATE_OPTIONS_INIT;
	o.dim = DIM;
	o.index = index;
	o.doc_codec = codec;
	o.doc_max_bytes = doc_max;
	o.durability = NVF_DURABILITY_NOSYNC;
	nvf_db *db;
	tu_unlink_db(path);
	ck_nvf(nvf_db_create(&db, path, &o));
	return db;
}

static void add(nvf_db *db, nvf_txn *txn, uint64_t id)
{
	float v[DIM] = {(float)id, 1, 2, 3};
	ck_nvf(nvf_add(db, txn, id, v, DIM));
}

/* The stored document of id, as a jansson value (NULL for none). */
static json_t *doc_of(nvf_db *db, nvf_txn *txn, uint64_t id)
{
	char *s;
	ck_nvf(nvf_meta_get(db, txn, id, &s));
	json_t *j = json_loads(s, JSON_DECODE_ANY, NULL);
	nvf_free(s);
	ck_assert_ptr_nonnull(j);
	if (json_is_null(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

static void assert_doc(nvf_db *db, nvf_txn *txn, uint64_t id, const char *want)
{
	json_t *got = doc_of(db, txn, id), *w = json_loads(want, JSON_DECODE_ANY, NULL);
	ck_assert_ptr_nonnull(w);
	bool same = (got == NULL && json_is_null(w)) || (got && json_equal(got, w));
	if (!same) {
		char *g = got ? json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS) : strdup("null");
		ck_abort_msg("id %llu: document %s, want %s", (unsigned long long)id, g, want);
	}
	json_decref(got);
	json_decref(w);
}

START_TEST(test_documents_round_trip_with_their_types)
{
	nvf_db *db = make(NVF_CODEC_NONE, NVF_INDEX_FLAT, 0);
	add(db, NULL, 1);
	const char *doc = "{\"s\":\"ünïcödé 🙂\",\"i\":-9223372036854775808,\"big\":9223372036854775807,"
			  "\"f\":0.1,\"neg0\":-0.0,\"t\":true,\"n\":null,\"a\":[1,2.5,\"x\",[],{}],"
			  "\"o\":{\"z\":{\"y\":[false]}},\"\":\"empty key\",\"b\":1e300,"
			  "\"esc \\\"q\\\\\":\"a\\\"b\\\\c\\n\\t\\u0001\\u001f/long enough to take the 8-byte path\"}";
	ck_nvf(nvf_meta_set(db, NULL, 1, doc));
	assert_doc(db, NULL, 1, doc);
	/* Types are kept: 1 stays an integer, 1.0 a float. */
	ck_nvf(nvf_meta_set(db, NULL, 1, "{\"x\":1,\"y\":1.0}"));
	char *s;
	ck_nvf(nvf_meta_get(db, NULL, 1, &s));
	ck_assert_str_eq(s, "{\"x\":1,\"y\":1.0}");
	nvf_free(s);
	/* null removes it; a record without a document reads "null". */
	ck_nvf(nvf_meta_set(db, NULL, 1, "null"));
	assert_doc(db, NULL, 1, "null");
	ck_nvf(nvf_meta_set(db, NULL, 1, "{}"));
	assert_doc(db, NULL, 1, "{}");
	ck_nvf(nvf_meta_set(db, NULL, 1, NULL));
	assert_doc(db, NULL, 1, "null");
	ck_assert_int_eq(nvf_meta_get(db, NULL, 99, &s), NVF_ENOTFOUND);
	ck_assert_int_eq(nvf_meta_set(db, NULL, 99, "{}"), NVF_ENOTFOUND);
	ck_nvf(nvf_check(db, NULL));
	ck_nvf(nvf_db_close(db));
}
END_TEST

START_TEST(test_merge_patch_follows_rfc7386)
{
	nvf_db *db = make(NVF_CODEC_NONE, NVF_INDEX_FLAT, 0);
	add(db, NULL, 1);
	/* RFC 7386's own example. */
	ck_nvf(nvf_meta_set(db, NULL, 1,
			    "{\"title\":\"Goodbye!\",\"author\":{\"givenName\":\"John\",\"familyName\":\"Doe\"},"
			    "\"tags\":[\"example\",\"sample\"],\"content\":\"This will be unchanged\"}"));
	ck_nvf(nvf_meta_patch(db, NULL, 1,
			      "{\"title\":\"Hello!\",\"phoneNumber\":\"+01-123-456-7890\",\"author\":{\"familyName\":null},"
			      "\"tags\":[\"example\"]}"));
	assert_doc(db, NULL, 1,
		   "{\"title\":\"Hello!\",\"author\":{\"givenName\":\"John\"},\"tags\":[\"example\"],"
		   "\"content\":\"This will be unchanged\",\"phoneNumber\":\"+01-123-456-7890\"}");
	/* A record without a document starts from {}; an object replaces a scalar. */
	add(db, NULL, 2);
	ck_nvf(nvf_meta_patch(db, NULL, 2, "{\"a\":{\"b\":1},\"gone\":null}"));
	assert_doc(db, NULL, 2, "{\"a\":{\"b\":1}}");
	ck_nvf(nvf_meta_patch(db, NULL, 2, "{\"a\":5}"));
	ck_nvf(nvf_meta_patch(db, NULL, 2, "{\"a\":{\"c\":2}}"));
	assert_doc(db, NULL, 2, "{\"a\":{\"c\":2}}");
	/* The patch must be an object (a document must stay one). */
	ck_assert_int_eq(nvf_meta_patch(db, NULL, 2, "[1]"), NVF_EINVAL);
	ck_assert_ptr_nonnull(strstr(nvf_errmsg(), "must be a JSON object"));
	assert_doc(db, NULL, 2, "{\"a\":{\"c\":2}}");
	ck_nvf(nvf_check(db, NULL));
	ck_nvf(nvf_db_close(db));
}
END_TEST

static nvf_record_info info_of(nvf_db *db, uint64_t id)
{
	nvf_record_info ri;
	ck_nvf(nvf_record_info_get(db, NULL, id, &ri));
	return ri;
}

START_TEST(test_versions_count_transactions_and_times_move)
{
	nvf_db *db = make(NVF_CODEC_ZSTD, NVF_INDEX_HNSW, 0);
	int64_t t0 = (int64_t)(nvf__now_ns() / 1000);
	add(db, NULL, 7);
	nvf_record_info a = info_of(db, 7);
	tu_eq(a.version, 1);
	tu_assert(a.created_us >= t0 && a.updated_us >= a.created_us, "times %lld %lld after %lld",
		  (long long)a.created_us, (long long)a.updated_us, (long long)t0);
	tu_eq(a.has_doc, 0);
	/* Several changes in one transaction: one version. */
	nvf_txn *txn;
	ck_nvf(nvf_txn_begin(&txn, db, 0));
	ck_nvf(nvf_meta_set(db, txn, 7, "{\"a\":1}"));
	ck_nvf(nvf_meta_patch(db, txn, 7, "{\"b\":2}"));
	ck_nvf(nvf_tag_add(db, txn, 7, "x"));
	ck_nvf(nvf_txn_commit(txn));
	nvf_record_info b = info_of(db, 7);
	tu_eq(b.version, 2);
	tu_eq(b.created_us, a.created_us);
	tu_assert(b.updated_us >= a.updated_us, "updated went back");
	tu_eq(b.ntags, 1);
	tu_eq(b.has_doc, 1);
	/* A vector update is a change too, and keeps the document and tags. */
	float v[DIM] = {9, 9, 9, 9};
	ck_nvf(nvf_update(db, NULL, 7, v, DIM));
	tu_eq(info_of(db, 7).version, 3);
	assert_doc(db, NULL, 7, "{\"a\":1,\"b\":2}");
	/* A record created with its document in one transaction is version 1. */
	ck_nvf(nvf_txn_begin(&txn, db, 0));
	add(db, txn, 8);
	ck_nvf(nvf_meta_set(db, txn, 8, "{\"z\":0}"));
	ck_nvf(nvf_tags_set(db, txn, 8, (const char *[]){"b", "a", "b"}, 3));
	ck_nvf(nvf_txn_commit(txn));
	tu_eq(info_of(db, 8).version, 1);
	tu_eq(info_of(db, 8).ntags, 2);
	/* Adding a tag it has, or removing one it lacks, changes nothing. */
	ck_nvf(nvf_tag_add(db, NULL, 8, "a"));
	ck_nvf(nvf_tag_remove(db, NULL, 8, "nope"));
	tu_eq(info_of(db, 8).version, 1);
	ck_nvf(nvf_tag_remove(db, NULL, 8, "a"));
	tu_eq(info_of(db, 8).version, 2);
	char *s;
	ck_nvf(nvf_record_json(db, NULL, 8, NVF_RECORD_VECTOR, &s));
	json_t *j = json_loads(s, 0, NULL);
	nvf_free(s);
	ck_assert_ptr_nonnull(j);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "version")), 2);
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(j, "tags"), 0)), "b");
	ck_assert_int_eq((int)json_array_size(json_object_get(j, "vector")), DIM);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(j, "meta"), "z")), 0);
	json_decref(j);
	ck_nvf(nvf_check(db, NULL));
	ck_nvf(nvf_db_close(db));
}
END_TEST

START_TEST(test_delete_takes_the_document_tags_and_index_entries)
{
	nvf_db *db = make(NVF_CODEC_LZ4, NVF_INDEX_HNSW, 0);
	ck_nvf(nvf_field_add(db, NULL, "k", NVF_FIELD_STRING));
	ck_nvf(nvf_field_add(db, NULL, "tags", NVF_FIELD_TAGS));
	for (uint64_t id = 0; id < 40; id++) {
		add(db, NULL, id);
		char d[64];
		snprintf(d, sizeof(d), "{\"k\":\"v%llu\",\"n\":%llu}", (unsigned long long)(id % 3), (unsigned long long)id);
		ck_nvf(nvf_meta_set(db, NULL, id, d));
		ck_nvf(nvf_tag_add(db, NULL, id, id % 2 ? "odd" : "even"));
	}
	nvf_filter *f;
	ck_nvf(nvf_filter_compile(&f, "k = 'v1' AND tags CONTAINS 'odd'"));
	uint64_t *ids;
	size_t n;
	ck_nvf(nvf_filter_ids(db, NULL, f, &ids, &n));
	tu_eq(n, 7); /* ids 1, 7, 13, 19, 25, 31, 37 */
	nvf_free(ids);
	for (uint64_t id = 1; id < 40; id += 6)
		ck_nvf(nvf_delete(db, NULL, id));
	ck_nvf(nvf_filter_ids(db, NULL, f, &ids, &n));
	tu_eq(n, 0);
	nvf_free(ids);
	/* The id added again starts with nothing. */
	add(db, NULL, 7);
	assert_doc(db, NULL, 7, "null");
	tu_eq(info_of(db, 7).ntags, 0);
	tu_eq(info_of(db, 7).version, 1);
	nvf_info in;
	ck_nvf(nvf_db_info(db, NULL, &in));
	tu_eq(in.docs, 33);
	ck_nvf(nvf_check(db, NULL));
	nvf_filter_free(f);
	ck_nvf(nvf_db_close(db));
}
END_TEST

/* A document of about n bytes that compresses well (repeated words). */
static char *wordy(uint64_t id, size_t n)
{
	static const char *const words[] = {"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"};
	char *s = malloc(n + 200);
	int off = sprintf(s, "{\"id\":%llu,\"section\":\"%s\",\"text\":\"", (unsigned long long)id, words[id % 8]);
	uint64_t x = id * 2654435761u + 1;
	while ((size_t)off < n) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		off += sprintf(s + off, "%s ", words[x % 8]);
	}
	sprintf(s + off, "\",\"size\":%llu}", (unsigned long long)(x % 100000));
	return s;
}

START_TEST(test_every_codec_round_trips_and_reopens)
{
	static const int codecs[] = {NVF_CODEC_NONE, NVF_CODEC_LZ4, NVF_CODEC_SNAPPY, NVF_CODEC_ZSTD, NVF_CODEC_ZSTD_DICT};
	for (size_t ci = 0; ci < sizeof(codecs) / sizeof(codecs[0]); ci++) {
		nvf_db *db = make(codecs[ci], NVF_INDEX_FLAT, 0);
		nvf_txn *txn;
		size_t n = codecs[ci] == NVF_CODEC_ZSTD_DICT ? 1200 : 200;
		ck_nvf(nvf_txn_begin(&txn, db, 0));
		for (uint64_t id = 0; id < n; id++) {
			add(db, txn, id);
			char *d = wordy(id, 300 + id % 700);
			ck_nvf(nvf_meta_set(db, txn, id, d));
			free(d);
		}
		ck_nvf(nvf_txn_commit(txn));
		nvf_info in;
		ck_nvf(nvf_db_info(db, NULL, &in));
		tu_eq(in.doc_codec, codecs[ci]);
		tu_eq(in.docs, n);
		if (codecs[ci] != NVF_CODEC_NONE)
			tu_assert(in.doc_bytes < in.doc_raw_bytes * 0.8, "codec %d: %llu stored bytes for %llu", codecs[ci],
				  (unsigned long long)in.doc_bytes, (unsigned long long)in.doc_raw_bytes);
		if (codecs[ci] == NVF_CODEC_ZSTD_DICT)
			tu_assert(in.dict_bytes > 0, "no dictionary after %zu documents", n);
		uint32_t dict = in.dict_bytes;
		uint64_t stored = in.doc_bytes;
		ck_nvf(nvf_db_close(db));
		ck_nvf(nvf_db_open(&db, path, NULL));
		ck_nvf(nvf_db_info(db, NULL, &in));
		tu_eq(in.dict_bytes, dict);
		tu_eq(in.doc_bytes, stored);
		for (uint64_t id = 0; id < n; id += 37) {
			char *d = wordy(id, 300 + id % 700);
			assert_doc(db, NULL, id, d);
			free(d);
		}
		if (codecs[ci] == NVF_CODEC_ZSTD_DICT) {
			/* Retraining writes a new dictionary and keeps every document. */
			ck_nvf(nvf_doc_dict_train(db, NULL, 16384));
			ck_nvf(nvf_db_info(db, NULL, &in));
			tu_assert(in.dict_bytes > 0 && in.dict_bytes <= 16384, "dictionary of %u bytes", in.dict_bytes);
			char *d = wordy(5, 305);
			assert_doc(db, NULL, 5, d);
			free(d);
		} else {
			ck_assert_int_eq(nvf_doc_dict_train(db, NULL, 0), NVF_EINVAL);
			ck_assert_ptr_nonnull(strstr(nvf_errmsg(), "not zstd-dict"));
		}
		ck_nvf(nvf_check(db, NULL));
		ck_nvf(nvf_db_close(db));
	}
}
END_TEST

START_TEST(test_a_dictionary_that_cannot_train_is_an_error_that_changes_nothing)
{
	nvf_db *db = make(NVF_CODEC_ZSTD_DICT, NVF_INDEX_FLAT, 0);
	add(db, NULL, 1);
	ck_nvf(nvf_meta_set(db, NULL, 1, "{\"a\":1}"));
	nvf_txn *txn;
	ck_nvf(nvf_txn_begin(&txn, db, 0));
	ck_assert_int_eq(nvf_doc_dict_train(db, txn, 0), NVF_EINVAL);
	ck_assert_ptr_nonnull(strstr(nvf_errmsg(), "at least 8 documents"));
	ck_assert_int_eq(nvf_txn_status(txn), 0);
	ck_assert_int_eq(nvf_doc_dict_train(db, txn, 100), NVF_EINVAL);
	ck_nvf(nvf_meta_set(db, txn, 1, "{\"a\":2}"));
	ck_nvf(nvf_txn_commit(txn));
	assert_doc(db, NULL, 1, "{\"a\":2}");
	ck_nvf(nvf_db_close(db));
}
END_TEST

START_TEST(test_bad_input_is_refused_and_changes_nothing)
{
	nvf_db *db = make(NVF_CODEC_ZSTD, NVF_INDEX_FLAT, 1000);
	add(db, NULL, 1);
	ck_nvf(nvf_meta_set(db, NULL, 1, "{\"keep\":true}"));
	ck_nvf(nvf_tag_add(db, NULL, 1, "kept"));
	nvf_txn *txn;
	ck_nvf(nvf_txn_begin(&txn, db, 0));
	char deep[200] = "", big[1200];
	for (int i = 0; i < 33; i++)
		strcat(deep, "{\"a\":");
	strcat(deep, "1");
	for (int i = 0; i < 33; i++)
		strcat(deep, "}");
	snprintf(big, sizeof(big), "{\"x\":\"%01000d\"}", 0);
	char tag_long[1100];
	memset(tag_long, 'x', 1025);
	tag_long[1025] = 0;
	static const struct {
		const char *doc, *msg;
	} bad[] = {
		{"[1,2]", "must be a JSON object, not an array"},
		{"\"s\"", "not a string"},
		{"5", "not a number"},
		{"{\"a\":", "line 1"},
		{"{\"a\":1,\"a\":2}", "duplicate"},
		{"{\"n\":99999999999999999999}", "integers must fit int64"},
		{"{\"s\":\"\xff\xfe\"}", "document: line 1"},
		{NULL, "nested more than 32"},
		{NULL, "more than the collection's limit of 1000"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *d = bad[i].doc ? bad[i].doc : i == 7 ? deep : big;
		int rc = nvf_meta_set(db, txn, 1, d);
		tu_assert(rc == NVF_EINVAL && strstr(nvf_errmsg(), bad[i].msg), "case %zu: %d: %s", i, rc, nvf_errmsg());
		rc = nvf_meta_patch(db, txn, 1, d);
		tu_assert(rc == NVF_EINVAL, "patch case %zu: %d: %s", i, rc, nvf_errmsg());
		ck_assert_int_eq(nvf_txn_status(txn), 0);
	}
	ck_assert_int_eq(nvf_tag_add(db, txn, 1, ""), NVF_EINVAL);
	ck_assert_int_eq(nvf_tag_add(db, txn, 1, tag_long), NVF_EINVAL);
	ck_assert_int_eq(nvf_tag_add(db, txn, 1, "\xc3"), NVF_EINVAL);
	ck_assert_ptr_nonnull(strstr(nvf_errmsg(), "not valid UTF-8"));
	ck_assert_int_eq(nvf_tags_set(db, txn, 1, (const char *[]){"ok", ""}, 2), NVF_EINVAL);
	ck_assert_int_eq(nvf_field_add(db, txn, "a..b", NVF_FIELD_INT), NVF_EINVAL);
	ck_assert_int_eq(nvf_field_add(db, txn, "a", 99), NVF_EINVAL);
	ck_assert_int_eq(nvf_field_add(db, txn, "version", NVF_FIELD_INT), NVF_EINVAL);
	ck_assert_int_eq(nvf_field_drop(db, txn, "nope"), NVF_ENOTFOUND);
	ck_assert_int_eq(nvf_txn_status(txn), 0);
	/* The good write after all of that still commits. */
	ck_nvf(nvf_meta_patch(db, txn, 1, "{\"more\":1}"));
	ck_nvf(nvf_txn_commit(txn));
	assert_doc(db, NULL, 1, "{\"keep\":true,\"more\":1}");
	tu_eq(info_of(db, 1).ntags, 1);
	ck_nvf(nvf_check(db, NULL));
	ck_nvf(nvf_db_close(db));

	/* Creation options. */
	nvf_create_options o = NVF_CREATE_OPTIONS_INIT;
	o.dim = DIM;
	tu_unlink_db(path);
	o.doc_codec = 9;
	ck_assert_int_eq(nvf_db_create(&db, path, &o), NVF_EINVAL);
	ck_assert_ptr_nonnull(strstr(nvf_errmsg(), "doc_codec 9"));
	o.doc_codec = NVF_CODEC_LZ4;
	o.doc_codec_level = 5;
	ck_assert_int_eq(nvf_db_create(&db, path, &o), NVF_EINVAL);
	ck_assert_ptr_nonnull(strstr(nvf_errmsg(), "only zstd takes a level"));
	o.doc_codec = NVF_CODEC_ZSTD;
	o.doc_codec_level = 99;
	ck_assert_int_eq(nvf_db_create(&db, path, &o), NVF_EINVAL);
	o.doc_codec_level = 0;
	o.doc_max_bytes = NVF_DOC_MAX_LIMIT + 1;
	ck_assert_int_eq(nvf_db_create(&db, path, &o), NVF_EINVAL);
	ck_assert_int_eq(access(path, F_OK), -1);
	/* A version 1 options struct (before documents) still creates. */
	o.version = 1;
	ck_nvf(nvf_db_create(&db, path, &o));
	nvf_info in;
	ck_nvf(nvf_db_info(db, NULL, &in));
	tu_eq(in.doc_codec, NVF_CODEC_NONE);
	ck_nvf(nvf_db_close(db));
}
END_TEST

/* A file from before metadata: its config says version 1 and it has no metadata trees.
 * Made by removing them from a new file. */
static void make_version1(void)
{
	nvf_db *db = make(NVF_CODEC_NONE, NVF_INDEX_FLAT, 0);
	for (uint64_t id = 0; id < 5; id++)
		add(db, NULL, id);
	nvf_txn *txn;
	ck_nvf(nvf_txn_begin(&txn, db, 0));
	static const uint64_t gone[] = {NVF_T_META, NVF_T_DOCS, NVF_T_FIELDS, NVF_T_DICTS};
	for (size_t i = 0; i < 4; i++) {
		nvf_tree *t;
		ck_nvf(nvf__tree_open(txn, gone[i], -1, &t));
		ck_nvf(nvf__tree_drop(txn, &t->d));
		ck_nvf(nvf__tree_del(txn, &txn->catalog, gone[i]));
		t->orig = t->d; /* not written back */
		t->id = UINT64_MAX - i;
	}
	nvf_tree *cfgt;
	nvf_val v;
	struct nvf_disk_config cfg;
	ck_nvf(nvf__tree_open(txn, NVF_T_CONFIG, -1, &cfgt));
	ck_nvf(nvf__tree_get(txn, &cfgt->d, 0, &v));
	memcpy(&cfg, v.data, sizeof(cfg));
	cfg.version = 1;
	ck_nvf(nvf__tree_put(txn, &cfgt->d, 0, &cfg, sizeof(cfg), 0, NULL));
	ck_nvf(nvf_txn_commit(txn));
	ck_nvf(nvf_db_close(db));
}

START_TEST(test_a_file_from_before_metadata_reads_and_upgrades_on_write)
{
	make_version1();
	nvf_db *db;
	nvf_open_options ro = NVF_OPEN_OPTIONS_INIT;
	ro.flags = NVF_OPEN_RDONLY;
	ck_nvf(nvf_db_open(&db, path, &ro));
	/* Read as it is: no documents, version 1, no times. */
	assert_doc(db, NULL, 3, "null");
	nvf_record_info ri = info_of(db, 3);
	tu_eq(ri.version, 1);
	tu_eq(ri.created_us, 0);
	nvf_filter *f;
	ck_nvf(nvf_filter_compile(&f, "version = 1 AND NOT EXISTS a"));
	ck_assert_int_eq(nvf_filter_match(db, NULL, f, 3), 1);
	ck_nvf(nvf_check(db, NULL));
	ck_nvf(nvf_db_close(db));
	/* The first write gives it the metadata trees. */
	ck_nvf(nvf_db_open(&db, path, NULL));
	ck_nvf(nvf_meta_set(db, NULL, 3, "{\"a\":1}"));
	ck_assert_int_eq(nvf_filter_match(db, NULL, f, 3), 0);
	tu_eq(info_of(db, 2).version, 1);
	tu_eq(info_of(db, 3).version, 2);
	add(db, NULL, 10);
	tu_assert(info_of(db, 10).created_us > 0, "no creation time");
	ck_nvf(nvf_check(db, NULL));
	ck_nvf(nvf_db_close(db));
	nvf_filter_free(f);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("meta");
	TCase *tc = tcase_create("meta");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_documents_round_trip_with_their_types);
	tcase_add_test(tc, test_merge_patch_follows_rfc7386);
	tcase_add_test(tc, test_versions_count_transactions_and_times_move);
	tcase_add_test(tc, test_delete_takes_the_document_tags_and_index_entries);
	tcase_add_test(tc, test_every_codec_round_trips_and_reopens);
	tcase_add_test(tc, test_a_dictionary_that_cannot_train_is_an_error_that_changes_nothing);
	tcase_add_test(tc, test_bad_input_is_refused_and_changes_nothing);
	tcase_add_test(tc, test_a_file_from_before_metadata_reads_and_upgrades_on_write);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
