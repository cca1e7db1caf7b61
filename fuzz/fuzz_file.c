/* Fuzz target: whole .nvf file images. The input is opened read-only as a database
 * and everything a reader does is tried on it: nvf_check, info, searches (graph walk,
 * exact, filtered), records as JSON, an export-like pass over every id, snapshots and
 * field indexes.
 *
 * Structure-aware mode: an input shorter than MUTATE_MAX is not a file (the smallest
 * is two 512-byte pages) but mutation instructions for a valid small HNSW database
 * built once (documents, tags, a field index, a snapshot, deletions; 512-byte pages
 * so that it has many): byte 0 holds flags, then 5-byte records (u32 little-endian
 * offset, taken modulo the file's size, and a byte to xor there). With flag bit 0 the
 * header, meta and tree page checksums are recomputed after the mutation, so that the
 * decoders behind the checksums see the damage. */
#include "fuzz.h"

#include <nvf.h>

#include "format.h"
#include "nvf_int.h"

#define MUTATE_MAX 512
#define BASE_PAGE 512u
#define BASE_DIM 8
#define MAX_QUERY_DIM 4096

static uint8_t *base;
static size_t base_len;
static nvf_filter *where, *all;
static char image_path[512], lock_path[520];

static void build_base(void)
{
	char path[512];
	nvf_create_options co = NVF_CREATE_OPTIONS_INIT;
	co.dim = BASE_DIM;
	co.index = NVF_INDEX_HNSW;
	co.hnsw_m = 4;
	co.hnsw_ef_construction = 16;
	co.hnsw_quantize = NVF_QUANT_SQ4; /* the codes' array too (auto writes none below 2,000 nodes) */
	co.page_size = BASE_PAGE;
	co.durability = NVF_DURABILITY_NOSYNC;
	co.map_size = 64u << 20;
	nvf_db *db;
	FUZZ_CHECK(nvf_db_create(&db, fuzz_path(path, "base.nvf"), &co));
	nvf_txn *txn;
	FUZZ_CHECK(nvf_txn_begin(&txn, db, 0));
	uint64_t state = 7;
	for (int i = 0; i < 48; i++) {
		float v[BASE_DIM];
		uint64_t id;
		FUZZ_CHECK(nvf_vec_random(v, BASE_DIM, -1, 1, &state));
		FUZZ_CHECK(nvf_insert(db, txn, v, BASE_DIM, &id));
		if (i % 3 == 0) {
			char doc[128];
			snprintf(doc, sizeof doc, "{\"g\":%d,\"name\":\"r%d\",\"v\":[%d,true,null]}", i % 7, i, i);
			FUZZ_CHECK(nvf_meta_set(db, txn, id, doc));
		}
		if (i % 5 == 0)
			FUZZ_CHECK(nvf_tag_add(db, txn, id, i % 2 ? "odd" : "even"));
	}
	FUZZ_CHECK(nvf_field_add(db, txn, "g", NVF_FIELD_INT));
	FUZZ_CHECK(nvf_txn_commit(txn));
	FUZZ_CHECK(nvf_txn_begin(&txn, db, 0));
	FUZZ_CHECK(nvf_snapshot_create(db, txn, "s1", "{\"note\":1}", NULL));
	for (uint64_t id = 40; id < 44; id++)
		FUZZ_CHECK(nvf_delete(db, txn, id));
	FUZZ_CHECK(nvf_txn_commit(txn));
	FUZZ_CHECK(nvf_db_close(db));

	FILE *f = fopen(path, "rb");
	if (!f || fseek(f, 0, SEEK_END) != 0)
		abort();
	base_len = (size_t)ftell(f);
	rewind(f);
	base = malloc(base_len);
	if (!base || fread(base, 1, base_len, f) != base_len)
		abort();
	fclose(f);
	char lock[520];
	snprintf(lock, sizeof lock, "%s-lock", path);
	unlink(lock);
	unlink(path);
}

static void setup(void)
{
	fuzz_dir("file");
	fuzz_path(image_path, "image.nvf");
	snprintf(lock_path, sizeof lock_path, "%s-lock", image_path);
	build_base();
	FUZZ_CHECK(nvf_filter_compile(&where, "g < 4 OR tags CONTAINS 'odd'"));
	FUZZ_CHECK(nvf_filter_compile(&all, "id >= 0")); /* what nvf-tool export lists */
}

/* Recompute the checksums a mutation broke: the header copies, the meta records and
 * every page that still calls itself a tree page. Extents keep theirs (their checksum
 * lives in the cell that points at them). */
static void fix_checksums(uint8_t *img, size_t len)
{
	for (size_t pg = 0; pg < 2 && (pg + 1) * BASE_PAGE <= len; pg++) {
		struct nvf_disk_header h;
		memcpy(&h, img + pg * BASE_PAGE, sizeof h);
		h.checksum = nvf__header_checksum(&h);
		memcpy(img + pg * BASE_PAGE, &h, sizeof h);
		struct nvf_disk_meta m;
		memcpy(&m, img + pg * BASE_PAGE + NVF_META_OFF, sizeof m);
		m.checksum = nvf__meta_checksum(&m);
		memcpy(img + pg * BASE_PAGE + NVF_META_OFF, &m, sizeof m);
	}
	for (size_t pg = NVF_FIRST_DATA_PAGE; (pg + 1) * BASE_PAGE <= len; pg++) {
		uint8_t *p = img + pg * BASE_PAGE;
		struct nvf_disk_page hdr;
		memcpy(&hdr, p, sizeof hdr);
		if (hdr.type != NVF_PAGE_BRANCH && hdr.type != NVF_PAGE_LEAF)
			continue;
		hdr.checksum = nvf__page_checksum(p, BASE_PAGE);
		memcpy(p, &hdr.checksum, sizeof hdr.checksum);
	}
}

static void read_everything(bool verify)
{
	nvf_open_options oo = NVF_OPEN_OPTIONS_INIT;
	oo.flags = NVF_OPEN_RDONLY | (verify ? NVF_OPEN_VERIFY : 0);
	oo.map_size = 256u << 20;
	nvf_db *db;
	if (nvf_db_open(&db, image_path, &oo) != 0)
		return;
	nvf_check_report rep;
	(void)nvf_check(db, &rep);
	nvf_txn *txn;
	if (nvf_txn_begin(&txn, db, NVF_TXN_RDONLY) != 0)
		goto close;
	nvf_info info;
	if (nvf_db_info(db, txn, &info) == 0 && info.dim >= 1 && info.dim <= MAX_QUERY_DIM) {
		float q[MAX_QUERY_DIM];
		for (uint32_t i = 0; i < info.dim; i++)
			q[i] = (float)(i % 3) * 0.25f;
		nvf_result res[5];
		size_t n;
		nvf_search_options so = NVF_SEARCH_OPTIONS_INIT;
		so.threads = 1;
		(void)nvf_search(db, txn, q, info.dim, 5, &so, res, &n);
		so.exact = 1;
		(void)nvf_search(db, txn, q, info.dim, 5, &so, res, &n);
		so.exact = 0;
		so.where = where;
		(void)nvf_search(db, txn, q, info.dim, 5, &so, res, &n);
	}
	char *s;
	for (uint64_t id = 0; id < 4; id++)
		if (nvf_record_json(db, txn, id, NVF_RECORD_VECTOR, &s) == 0)
			nvf_free(s);
	/* What `nvf-tool export` does: every id, then each record. */
	uint64_t *ids = NULL;
	size_t nids = 0;
	if (nvf_filter_ids(db, txn, all, &ids, &nids) == 0) {
		for (size_t i = 0; i < nids && i < 64; i++)
			if (nvf_record_json(db, txn, ids[i], NVF_RECORD_VECTOR, &s) == 0)
				nvf_free(s);
		nvf_free(ids);
	}
	nvf_snapshot_info *snaps = NULL;
	size_t nsnaps = 0;
	if (nvf_snapshot_list(db, txn, &snaps, &nsnaps) == 0)
		nvf_free(snaps);
	nvf_field_info *fields = NULL;
	size_t nfields = 0;
	if (nvf_field_list(db, txn, &fields, &nfields) == 0)
		nvf_free(fields);
	nvf_txn_abort(txn);
close:
	(void)nvf_db_close(db);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!base)
		setup();
	int rc;
	/* Mutations: flag bit 1 opens with NVF_OPEN_VERIFY (checksums on first read);
	 * whole images: the last byte's low bit does. */
	bool verify = size > 0 && (size < MUTATE_MAX ? (data[0] & 2) : (data[size - 1] & 1));
	if (size < MUTATE_MAX) {
		uint8_t *img = malloc(base_len);
		if (!img)
			abort();
		memcpy(img, base, base_len);
		for (size_t i = 1; i + 5 <= size; i += 5) {
			uint32_t off;
			memcpy(&off, data + i, 4);
			img[off % base_len] ^= data[i + 4] ? data[i + 4] : 0xff;
		}
		if (size > 0 && (data[0] & 1))
			fix_checksums(img, base_len);
		rc = fuzz_write(image_path, img, base_len);
		free(img);
	} else {
		rc = fuzz_write(image_path, data, size);
	}
	if (rc != 0)
		abort();
	read_everything(verify);
	unlink(lock_path);
	unlink(image_path);
	return 0;
}
