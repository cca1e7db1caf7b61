/* Damaged and foreign files: a byte flipped in every page that any state can reach,
 * of every kind (meta, branch, leaf, extent; catalog, user, FREE, PENDING and
 * SNAPSHOTS trees), and the file truncated at every page boundary, must make open
 * or nvf_check report the problem with its page, and reading the damaged file must
 * never crash. Foreign files get NVF_ENOTDB or NVF_EVERSION. */
#include "nvf_int.h"
#include "testutil.h"

#include <fcntl.h>
#include <xxhash.h>

static char *dir, *path, *copy;

static void setup(void)
{
	dir = tu_tmpdir();
	path = tu_path(dir, "c.nvf");
	copy = tu_path(dir, "copy.nvf");
}

static void teardown(void)
{
	tu_rmrf(dir);
	free(dir);
	free(path);
	free(copy);
}

/* A file with pages of every kind: several trees (branches, leaves, extents), free
 * and pending runs, and two snapshots seeing older states. */
static void build(uint32_t page_size)
{
	unlink(path);
	nvf_open_options o = NVF_OPEN_OPTIONS_INIT;
	o.flags = NVF__OPEN_CREATE;
	o.page_size = page_size;
	nvf_db *db;
	ck_nvf(nvf_db_open(&db, path, &o));
	uint8_t buf[3000];
	for (int round = 0; round < 10; round++) {
		nvf_txn *txn;
		nvf_tree *a, *b;
		ck_nvf(nvf_txn_begin(&txn, db, 0));
		ck_nvf(nvf__tree_open(txn, 1, NVF_TREE_KIND_PLAIN, &a));
		ck_nvf(nvf__tree_open(txn, 2, NVF_TREE_KIND_PLAIN, &b));
		for (uint64_t k = 0; k < 300; k++) {
			memset(buf, (int)(k + (uint64_t)round), sizeof(buf));
			uint64_t len = k % 25 == 0 ? sizeof(buf) : 20 + k % 50;
			if ((k + (uint64_t)round) % 3 == 0)
				ck_nvf(nvf__tree_put(txn, &a->d, k * 7, buf, len, 0, NULL));
			ck_nvf(nvf__tree_put(txn, &b->d, k + 1000 * (uint64_t)(round % 2), buf, 8, 0, NULL));
		}
		if (round == 2 || round == 4) {
			char name[8];
			snprintf(name, sizeof(name), "s%d", round);
			ck_nvf(nvf__snapshot_create(txn, name, "corruption test"));
		}
		ck_nvf(nvf_txn_commit(txn));
	}
	ck_nvf(nvf_check(db, NULL));
	ck_nvf(nvf_db_close(db));
}

static void copy_file(void)
{
	char cmd[9000];
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s' && rm -f '%s-lock'", path, copy, copy);
	ck_assert_int_eq(system(cmd), 0);
}

/* Read everything the damaged file offers through the tree code: errors are fine,
 * crashes and hangs are not (ASan runs this too). */
static void read_all(nvf_db *db)
{
	nvf_txn *txn;
	if (nvf_txn_begin(&txn, db, NVF_TXN_RDONLY) != 0)
		return;
	for (uint64_t id = 1; id <= 2; id++) {
		nvf_tree *t;
		if (nvf__tree_open(txn, id, -1, &t) != 0)
			continue;
		nvf_cursor c;
		int rc, steps = 0;
		for (rc = nvf__cursor_seek(&c, txn, &t->d, 0); rc == 0 && c.valid && steps < 100000;
		     rc = nvf__cursor_next(&c), steps++) {
			uint64_t k;
			nvf_val v;
			if (nvf__cursor_get(&c, &k, &v) == 0 && v.len)
				(void)XXH3_64bits(v.data, v.len);
		}
		for (uint64_t k = 0; k < 2100; k += 13) {
			nvf_val v;
			(void)nvf__tree_get(txn, &t->d, k, &v);
		}
	}
	nvf_txn_abort(txn);
}

/* 0: the damage was found by open or check (or warned of); 1: not. */
static int damaged_is_reported(void)
{
	nvf_open_options o = NVF_OPEN_OPTIONS_INIT;
	o.flags = NVF_OPEN_RDONLY; /* no repair: we want the report */
	nvf_db *db;
	int rc = nvf_db_open(&db, copy, &o);
	if (rc != 0) {
		tu_assert(rc == NVF_ECORRUPT || rc == NVF_ENOTDB || rc == NVF_EVERSION, "open -> %d %s", rc,
			  nvf_errmsg());
		tu_assert(strstr(nvf_errmsg(), "page ") != NULL || rc == NVF_ENOTDB, "message names no page: %s",
			  nvf_errmsg());
		return 0;
	}
	read_all(db);
	nvf_check_report rep;
	rc = nvf_check(db, &rep);
	nvf_db_close(db);
	if (rc == NVF_ECORRUPT) {
		tu_assert(rep.first_bad_page != UINT64_MAX || strstr(rep.problem, "page ") != NULL,
			  "check names no page: %s", rep.problem);
		return 0;
	}
	return rep.warnings ? 0 : 1;
}

typedef struct visit {
	uint64_t pgno[4096];
	char kind[4096][24];
	size_t n;
} visit;

static void on_page(void *ctx, uint64_t pgno, uint64_t npages, const char *what, const char *tree)
{
	visit *v = ctx;
	for (uint64_t i = 0; i < npages && v->n < 4096; i++) {
		v->pgno[v->n] = pgno + i;
		snprintf(v->kind[v->n], sizeof(v->kind[0]), "%s/%s", what, tree);
		v->n++;
	}
}

static void flip(uint64_t off)
{
	int fd = open(copy, O_RDWR);
	ck_assert_int_ge(fd, 0);
	uint8_t b;
	ck_assert_int_eq(pread(fd, &b, 1, (off_t)off), 1);
	b ^= (uint8_t)(1u << (off % 8));
	ck_assert_int_eq(pwrite(fd, &b, 1, (off_t)off), 1);
	close(fd);
}

static char kinds[32][24];
static int nkinds;

static void flip_every_kind(uint32_t ps)
{
	build(ps);
	nvf_db *db;
	ck_nvf(nvf_db_open(&db, path, NULL));
	static visit v;
	v.n = 0;
	ck_nvf(nvf__check_visit(db, on_page, &v));
	ck_nvf(nvf_db_close(db));
	/* The two meta pages: header, meta record in use, older record, unused tail. */
	uint64_t meta_offsets[] = {3, 60, 127, NVF_META_OFF + 9, NVF_META_OFF + 200, ps - 1, (uint64_t)ps + 5,
				   (uint64_t)ps + NVF_META_OFF + 17, 2 * (uint64_t)ps - 3};
	int missed = 0, tried = 0;
	for (size_t i = 0; i < NVF_ARRAY_LEN(meta_offsets); i++) {
		copy_file();
		flip(meta_offsets[i]);
		tried++;
		if (damaged_is_reported()) {
			fprintf(stderr, "page size %u: flip at meta offset %llu not reported\n", ps,
				(unsigned long long)meta_offsets[i]);
			missed++;
		}
	}
	/* Every page reached, at its start, middle and end. */
	for (size_t i = 0; i < v.n; i++) {
		bool seen = false;
		for (int k = 0; k < nkinds; k++)
			seen |= strcmp(kinds[k], v.kind[i]) == 0;
		if (!seen && nkinds < 32)
			memcpy(kinds[nkinds++], v.kind[i], sizeof(kinds[0]));
		uint64_t offs[] = {0, 9, ps / 2 + 3, ps - 1};
		for (size_t j = 0; j < NVF_ARRAY_LEN(offs); j++) {
			copy_file();
			flip(v.pgno[i] * ps + offs[j]);
			tried++;
			if (damaged_is_reported()) {
				fprintf(stderr, "page size %u: flip in page %llu (%s) byte %llu not reported\n", ps,
					(unsigned long long)v.pgno[i], v.kind[i], (unsigned long long)offs[j]);
				missed++;
			}
		}
	}
	fprintf(stderr, "page size %u: %d flips in %zu pages, kinds:", ps, tried, v.n);
	for (int k = 0; k < nkinds; k++)
		fprintf(stderr, " %s", kinds[k]);
	fprintf(stderr, "\n");
	ck_assert_int_eq(missed, 0);
}

START_TEST(test_flipped_byte_in_every_page_is_reported)
{
	flip_every_kind(1024);
	flip_every_kind(4096);
	/* Every kind was damaged at least once. */
	static const char *want[] = {"leaf/catalog", "leaf/user", "branch/user", "extent/user", "leaf/free",
				     "leaf/pending", "leaf/snapshots"};
	for (size_t w = 0; w < NVF_ARRAY_LEN(want); w++) {
		bool seen = false;
		for (int k = 0; k < nkinds; k++)
			seen |= strcmp(kinds[k], want[w]) == 0;
		ck_assert_msg(seen, "no %s page in the test files", want[w]);
	}
}
END_TEST

START_TEST(test_truncation_anywhere_is_reported)
{
	build(1024);
	uint64_t size = tu_file_size(path);
	int tried = 0;
	for (uint64_t cut = 0; cut < size; cut += cut < 4096 ? 97 : 1024) {
		copy_file();
		ck_assert_int_eq(truncate(copy, (off_t)cut), 0);
		tried++;
		ck_assert_msg(damaged_is_reported() == 0, "truncation to %llu bytes not reported",
			      (unsigned long long)cut);
	}
	ck_assert_int_gt(tried, 50);
}
END_TEST

/* A small HNSW collection with documents; one random byte of it changed at a time
 * (checksums not fixed: searches do not verify them): searching, reading every
 * record and compacting either work or fail with an error code, never read outside
 * the map or a buffer (ASan runs this too) or loop. Before the walks checked the
 * links they read, 8 of 400 such copies crashed nvf-tool search, and compaction's
 * layout crashed on its own. */
START_TEST(test_hostile_hnsw_files_never_crash)
{
	unlink(path);
	nvf_create_options co = NVF_CREATE_OPTIONS_INIT;
	co.dim = 16;
	co.index = NVF_INDEX_HNSW;
	co.hnsw_ef_construction = 40;
	co.hnsw_quantize = NVF_QUANT_SQ4; /* the codes' array too (auto writes none below 2,000 nodes) */
	co.durability = NVF_DURABILITY_NOSYNC;
	nvf_db *db;
	ck_nvf(nvf_db_create(&db, path, &co));
	enum { N = 1500 };
	static float x[N * 16];
	uint64_t s = 99;
	for (size_t i = 0; i < N * 16; i++)
		x[i] = (float)tu_below(&s, 1000) / 100.0f;
	ck_nvf(nvf_insert_batch(db, NULL, x, N, 16, NULL, NULL));
	for (uint64_t id = 0; id < N; id += 5)
		ck_nvf(nvf_meta_set(db, NULL, id, "{\"a\": 1, \"b\": \"five\"}"));
	ck_nvf(nvf_db_close(db));
	uint64_t size = tu_file_size(path);
	int fd = open(path, O_RDONLY);
	ck_assert(fd >= 0);
	uint8_t *orig = malloc(size);
	ck_assert(pread(fd, orig, size, 0) == (ssize_t)size);
	close(fd);
	unsigned errors = 0;
	for (int round = 0; round < 300; round++) {
		uint64_t off = tu_below(&s, size);
		uint8_t was = orig[off];
		orig[off] ^= (uint8_t)(1 + tu_below(&s, 255));
		fd = open(copy, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		ck_assert(fd >= 0 && pwrite(fd, orig, size, 0) == (ssize_t)size);
		close(fd);
		orig[off] = was;
		char lock[4200];
		snprintf(lock, sizeof(lock), "%s-lock", copy);
		unlink(lock);
		if (nvf_db_open(&db, copy, NULL) != 0) {
			errors++;
			continue;
		}
		nvf_result res[5 * 10];
		int rc = nvf_search_batch(db, NULL, x, 5, 16, 10, NULL, res);
		errors += rc != 0;
		for (uint64_t id = 0; id < N; id += 7) {
			char *js;
			if (nvf_record_json(db, NULL, id, NVF_RECORD_VECTOR, &js) == 0)
				nvf_free(js);
		}
		rc = nvf_db_compact(db);
		tu_assert(rc == 0 || rc == NVF_ECORRUPT || rc == NVF_ENOTFOUND || rc == NVF_EINVAL, "compact at byte %llu: %d %s",
			  (unsigned long long)off, rc, nvf_errmsg());
		nvf_db_close(db);
	}
	printf("hostile HNSW files: 300 copies with one byte changed, %u refused or failed cleanly\n", errors);
	free(orig);
}
END_TEST

static int open_bytes(const void *data, size_t len)
{
	int fd = open(copy, O_RDWR | O_CREAT | O_TRUNC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
	nvf_db *db = NULL;
	int rc = nvf_db_open(&db, copy, NULL);
	ck_assert_ptr_null(db);
	ck_assert_int_gt((int)strlen(nvf_errmsg()), 5);
	return rc;
}

START_TEST(test_foreign_files_are_refused)
{
	ck_assert_int_eq(open_bytes("", 0), NVF_ENOTDB);
	ck_assert_ptr_nonnull(strstr(nvf_errmsg(), "empty file"));
	const char *text = "hello, this is a text file and certainly not a vector database at all\n";
	char big[9000];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = text[i % strlen(text)];
	ck_assert_int_eq(open_bytes(big, sizeof(big)), NVF_ENOTDB);
	uint64_t rng = 42;
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)tu_rand(&rng);
	ck_assert_int_eq(open_bytes(big, sizeof(big)), NVF_ENOTDB);
	/* Our magic, then garbage. */
	memcpy(big, NVF_MAGIC, 8);
	ck_assert_int_eq(open_bytes(big, sizeof(big)), NVF_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(nvf_errmsg(), "page 0"));
	/* A real file from a future version. */
	build(4096);
	int fd = open(path, O_RDWR);
	struct nvf_disk_header h;
	ck_assert_int_eq(pread(fd, &h, sizeof(h), 0), (ssize_t)sizeof(h));
	h.format_version = 99;
	h.checksum = XXH3_64bits(&h, offsetof(struct nvf_disk_header, checksum));
	ck_assert_int_eq(pwrite(fd, &h, sizeof(h), 0), (ssize_t)sizeof(h));
	ck_assert_int_eq(pwrite(fd, &h, sizeof(h), 4096), (ssize_t)sizeof(h));
	close(fd);
	nvf_db *db;
	ck_assert_int_eq(nvf_db_open(&db, path, NULL), NVF_EVERSION);
	ck_assert_ptr_nonnull(strstr(nvf_errmsg(), "version 99"));
	/* A directory. */
	ck_assert_int_eq(nvf_db_open(&db, dir, NULL), NVF_ENOTDB);
}
END_TEST

/* ---- the bit-flip sweep: every page of a sample HNSW file ---- */

enum { SW_DIM = 8, SW_N = 400, SW_Q = 3, SW_K = 5 };

typedef struct sweep_answer {
	int rc[3 * SW_Q];             /* graph, exact and filtered search of each query */
	nvf_result res[3 * SW_Q][SW_K];
	size_t n[3 * SW_Q];
	int export_rc;                /* the export pass: first failure, or 0 */
	uint64_t export_hash;         /* of every record's JSON, in id order */
	size_t exported;
} sweep_answer;

static float sw_q[SW_Q][SW_DIM];
static nvf_filter *sw_where, *sw_all;

/* What the sweep does with a copy: search three ways and export, as nvf-tool does.
 * Every failure must be NVF_ECORRUPT: a damaged file is not bad input. (nvf-tool
 * opens with NVF_OPEN_VERIFY.) */
static int sweep_read(const char *file, unsigned flags, sweep_answer *a, uint64_t at)
{
	memset(a, 0, sizeof(*a));
	nvf_open_options o = NVF_OPEN_OPTIONS_INIT;
	o.flags = NVF_OPEN_RDONLY | flags;
	nvf_db *db;
	int rc = nvf_db_open(&db, file, &o);
	if (rc != 0) {
		tu_assert(rc == NVF_ECORRUPT, "offset %llu: open -> %d %s", (unsigned long long)at, rc, nvf_errmsg());
		return rc;
	}
	for (int q = 0; q < SW_Q; q++) {
		for (int way = 0; way < 3; way++) {
			nvf_search_options so = NVF_SEARCH_OPTIONS_INIT;
			so.threads = 1;
			so.exact = way == 1;
			so.where = way == 2 ? sw_where : NULL;
			int i = 3 * q + way;
			a->rc[i] = nvf_search(db, NULL, sw_q[q], SW_DIM, SW_K, &so, a->res[i], &a->n[i]);
			tu_assert(a->rc[i] == 0 || a->rc[i] == NVF_ECORRUPT, "offset %llu: search (%s) -> %d %s",
				  (unsigned long long)at, way == 0 ? "graph" : way == 1 ? "exact" : "filtered", a->rc[i],
				  nvf_errmsg());
		}
	}
	nvf_txn *txn;
	a->export_rc = nvf_txn_begin(&txn, db, NVF_TXN_RDONLY);
	if (a->export_rc == 0) {
		uint64_t *ids = NULL;
		size_t nids = 0;
		a->export_rc = nvf_filter_ids(db, txn, sw_all, &ids, &nids);
		XXH3_state_t *h = XXH3_createState();
		XXH3_64bits_reset(h);
		for (size_t i = 0; a->export_rc == 0 && i < nids; i++) {
			char *js;
			a->export_rc = nvf_record_json(db, txn, ids[i], NVF_RECORD_VECTOR, &js);
			if (a->export_rc == 0) {
				XXH3_64bits_update(h, js, strlen(js) + 1);
				nvf_free(js);
				a->exported++;
			}
		}
		a->export_hash = XXH3_64bits_digest(h);
		XXH3_freeState(h);
		nvf_free(ids);
		nvf_txn_abort(txn);
	}
	/* Without NVF_OPEN_VERIFY a damaged vector or id chunk is read unchecked: an id
	 * listed from it may not exist (NVF_ENOTFOUND), documented in RELIABILITY.md. */
	tu_assert(a->export_rc == 0 || a->export_rc == NVF_ECORRUPT ||
			  (a->export_rc == NVF_ENOTFOUND && !(flags & NVF_OPEN_VERIFY)),
		  "offset %llu: export -> %d %s", (unsigned long long)at, a->export_rc, nvf_errmsg());
	nvf_db_close(db);
	return 0;
}

static bool same_answer(const sweep_answer *a, const sweep_answer *b, int i)
{
	if (a->n[i] != b->n[i])
		return false;
	for (size_t j = 0; j < a->n[i]; j++)
		if (a->res[i][j].id != b->res[i][j].id || a->res[i][j].distance != b->res[i][j].distance)
			return false;
	return true;
}

/* A sample HNSW file (documents, tags, a field index, a snapshot, deletions) with
 * one byte changed at the start, in the header, in the middle and at the end of
 * every page, one copy each. Every page that a state reaches is reported by open
 * or nvf_check; searching (graph, exact, filtered) and exporting every copy either
 * work or fail with NVF_ECORRUPT; and a handle opened with NVF_OPEN_VERIFY answers
 * exactly as the undamaged file does or fails with NVF_ECORRUPT, since everything
 * it read matched its checksum. */
START_TEST(test_bitflip_sweep_every_page)
{
	unlink(path);
	nvf_create_options co = NVF_CREATE_OPTIONS_INIT;
	co.dim = SW_DIM;
	co.index = NVF_INDEX_HNSW;
	co.hnsw_m = 8;
	co.hnsw_ef_construction = 32;
	co.hnsw_quantize = NVF_QUANT_SQ4; /* the codes' array too (auto writes none below 2,000 nodes) */
	co.page_size = 512;
	co.durability = NVF_DURABILITY_NOSYNC;
	nvf_db *db;
	ck_nvf(nvf_db_create(&db, path, &co));
	uint64_t s = 1234;
	nvf_txn *txn;
	ck_nvf(nvf_txn_begin(&txn, db, 0));
	for (int i = 0; i < SW_N; i++) {
		float v[SW_DIM];
		uint64_t id;
		ck_nvf(nvf_vec_random(v, SW_DIM, -1, 1, &s));
		ck_nvf(nvf_insert(db, txn, v, SW_DIM, &id));
		if (i % 3 == 0) {
			char doc[160];
			snprintf(doc, sizeof doc, "{\"g\": %d, \"name\": \"record %d\", \"l\": [%d, true, null, 2.5]}", i % 7,
				 i, i);
			ck_nvf(nvf_meta_set(db, txn, id, doc));
		}
		if (i % 5 == 0)
			ck_nvf(nvf_tag_add(db, txn, id, i % 2 ? "odd" : "even"));
	}
	ck_nvf(nvf_field_add(db, txn, "g", NVF_FIELD_INT));
	ck_nvf(nvf_txn_commit(txn));
	ck_nvf(nvf_txn_begin(&txn, db, 0));
	ck_nvf(nvf_snapshot_create(db, txn, "before", NULL, NULL));
	for (uint64_t id = 100; id < 140; id++)
		ck_nvf(nvf_delete(db, txn, id));
	ck_nvf(nvf_txn_commit(txn));
	ck_nvf(nvf_db_close(db));
	for (int q = 0; q < SW_Q; q++)
		ck_nvf(nvf_vec_random(sw_q[q], SW_DIM, -1, 1, &s));
	ck_nvf(nvf_filter_compile(&sw_where, "g < 3 OR tags CONTAINS 'odd'"));
	ck_nvf(nvf_filter_compile(&sw_all, "id >= 0")); /* what nvf-tool export uses */

	/* Which pages a state reaches (nvf_check walks them all, snapshots included). */
	ck_nvf(nvf_db_open(&db, path, NULL));
	static visit v;
	v.n = 0;
	ck_nvf(nvf__check_visit(db, on_page, &v));
	ck_nvf(nvf_db_close(db));
	uint64_t size = tu_file_size(path), ps = 512, npages = size / ps;
	static uint8_t reached[1 << 16];
	ck_assert_uint_lt(npages, sizeof(reached));
	memset(reached, 0, sizeof(reached));
	size_t nreached = 0;
	for (size_t i = 0; i < v.n; i++) {
		nreached += !reached[v.pgno[i]];
		reached[v.pgno[i]] = 1;
	}
	ck_assert_uint_lt(v.n, 4096); /* the visit table held them all */

	sweep_answer good, got;
	ck_assert_int_eq(sweep_read(path, 0, &good, 0), 0);
	for (int i = 0; i < 3 * SW_Q; i++)
		ck_assert_int_eq(good.rc[i], 0);
	ck_assert_int_eq(good.export_rc, 0);
	ck_assert_uint_eq(good.exported, SW_N - 40);

	int fd = open(path, O_RDONLY);
	ck_assert(fd >= 0);
	uint8_t *orig = malloc(size);
	ck_assert(pread(fd, orig, size, 0) == (ssize_t)size);
	close(fd);
	char lock[4200];
	snprintf(lock, sizeof(lock), "%s-lock", copy);
	long copies = 0, unreported = 0, failed = 0, failed_verified = 0, differed = 0;
	for (uint64_t pg = 0; pg < npages; pg++) {
		uint64_t offs[] = {0, 9, 30, ps / 2 + 1, ps - 1};
		for (size_t j = 0; j < NVF_ARRAY_LEN(offs); j++) {
			uint64_t at = pg * ps + offs[j];
			orig[at] ^= 0x10;
			fd = open(copy, O_WRONLY | O_CREAT | O_TRUNC, 0644);
			ck_assert(fd >= 0 && pwrite(fd, orig, size, 0) == (ssize_t)size);
			close(fd);
			orig[at] ^= 0x10;
			unlink(lock);
			copies++;
			/* Reported: pages some state reaches, and the two meta pages. */
			if (pg < NVF_FIRST_DATA_PAGE || reached[pg]) {
				if (damaged_is_reported()) {
					fprintf(stderr, "sweep: flip at %llu (page %llu) not reported\n",
						(unsigned long long)at, (unsigned long long)pg);
					unreported++;
				}
				unlink(lock);
			}
			if (sweep_read(copy, 0, &got, at) != 0)
				failed++;
			unlink(lock);
			if (sweep_read(copy, NVF_OPEN_VERIFY, &got, at) != 0) {
				failed_verified++;
				continue;
			}
			unlink(lock);
			/* The meta pages may fall back to the older state, legitimately. */
			if (pg < NVF_FIRST_DATA_PAGE)
				continue;
			for (int i = 0; i < 3 * SW_Q; i++) {
				if (got.rc[i] == 0 && !same_answer(&good, &got, i)) {
					fprintf(stderr, "sweep: flip at %llu (page %llu): verified search %d differs\n",
						(unsigned long long)at, (unsigned long long)pg, i);
					differed++;
				}
			}
			if (got.export_rc == 0 && (got.exported != good.exported || got.export_hash != good.export_hash)) {
				fprintf(stderr, "sweep: flip at %llu (page %llu): verified export differs\n",
					(unsigned long long)at, (unsigned long long)pg);
				differed++;
			}
		}
	}
	printf("bit-flip sweep: %ld copies of a %llu-page file (%zu pages reached), %ld not reported, open failed %ld "
	       "(verified %ld), %ld verified answers differed\n",
	       copies, (unsigned long long)npages, nreached, unreported, failed, failed_verified, differed);
	ck_assert_int_eq(unreported, 0);
	ck_assert_int_eq(differed, 0);
	nvf_filter_free(sw_where);
	nvf_filter_free(sw_all);
	free(orig);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("corrupt");
	TCase *tc = tcase_create("corrupt");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 900);
	tcase_add_test(tc, test_flipped_byte_in_every_page_is_reported);
	tcase_add_test(tc, test_truncation_anywhere_is_reported);
	tcase_add_test(tc, test_foreign_files_are_refused);
	tcase_add_test(tc, test_hostile_hnsw_files_never_crash);
	tcase_add_test(tc, test_bitflip_sweep_every_page);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
