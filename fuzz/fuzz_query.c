/* Fuzz target: nusterfs query files (docs/NUSTERFS.md, Queries). The input is the
 * content of a file written into /queries, parsed and run by nusterfs/query.c exactly
 * as the daemon does (nfs_query_parse, nfs_query_exec, and for a binary batch the
 * .ids.npy and .dists.npy outputs), without a mount.
 *
 * Byte 0 chooses how the rest is taken:
 *   bits 0-1  the file's name: 0, 1 NAME.json; 2 NAME.npy; 3 NAME.fvecs
 *   bit 2     the database: an HNSW euclidean one, or a flat jaccard one that allows
 *             non-finite values (both 4-dimensional, with documents, tags and field
 *             indexes, so that filters and "documents" find something)
 *   bit 3     a binary query has a sidecar NAME.opts.json: then bytes 1-2 (u16
 *             little-endian) are its length, its text follows, then the query file
 *   bits 4-7  the mount's -o k (1 + 3 * value) */
#include "fuzz.h"

#include <nvf.h>

#include "query.h"

#define DIM 4
/* A query of nq vectors at k each takes nq * k results: the fuzzer is kept to a few
 * MiB of them (a mount takes what fits in memory). */
#define MAX_RESULTS (1u << 16)

static nvf_db *dbs[2];
static nvf_info infos[2];

static nvf_db *fixture(const char *name, int index, int metric, unsigned flags)
{
	char path[512];
	nvf_create_options co = NVF_CREATE_OPTIONS_INIT;
	co.dim = DIM;
	co.index = index;
	co.metric = metric;
	co.flags = flags;
	co.hnsw_m = 4;
	co.hnsw_ef_construction = 16;
	co.durability = NVF_DURABILITY_NOSYNC;
	co.map_size = 64u << 20;
	nvf_db *db;
	FUZZ_CHECK(nvf_db_create(&db, fuzz_path(path, name), &co));
	nvf_txn *txn;
	FUZZ_CHECK(nvf_txn_begin(&txn, db, 0));
	uint64_t state = 11;
	for (int i = 0; i < 40; i++) {
		float v[DIM];
		uint64_t id;
		FUZZ_CHECK(nvf_vec_random(v, DIM, 0, 1, &state));
		FUZZ_CHECK(nvf_insert(db, txn, v, DIM, &id));
		if (i % 2 == 0) {
			char doc[128];
			snprintf(doc, sizeof doc, "{\"g\":%d,\"s\":\"r%d\",\"f\":%d.5,\"o\":{\"p\":[%d,null]}}", i % 5, i % 3,
				 i, i);
			FUZZ_CHECK(nvf_meta_set(db, txn, id, doc));
		}
		if (i % 3 == 0)
			FUZZ_CHECK(nvf_tag_add(db, txn, id, i % 2 ? "odd" : "even"));
	}
	FUZZ_CHECK(nvf_field_add(db, txn, "g", NVF_FIELD_INT));
	FUZZ_CHECK(nvf_field_add(db, txn, "s", NVF_FIELD_STRING));
	FUZZ_CHECK(nvf_field_add(db, txn, "tags", NVF_FIELD_TAGS));
	FUZZ_CHECK(nvf_delete(db, txn, 7));
	FUZZ_CHECK(nvf_txn_commit(txn));
	return db;
}

static void setup(void)
{
	fuzz_dir("query");
	dbs[0] = fixture("hnsw.nvf", NVF_INDEX_HNSW, NVF_METRIC_EUCLIDEAN, 0);
	dbs[1] = fixture("flat.nvf", NVF_INDEX_FLAT, NVF_METRIC_JACCARD, NVF_CREATE_ALLOW_NONFINITE);
	for (int i = 0; i < 2; i++) {
		nvf_txn *txn;
		FUZZ_CHECK(nvf_txn_begin(&txn, dbs[i], NVF_TXN_RDONLY));
		FUZZ_CHECK(nvf_db_info(dbs[i], txn, &infos[i]));
		nvf_txn_abort(txn);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!dbs[0])
		setup();
	if (size < 1)
		return 0;
	static const char *const names[] = {"q.json", "q.json", "q.npy", "q.fvecs"};
	uint8_t sel = data[0];
	const char *name = names[sel & 3];
	int which = (sel >> 2) & 1;
	unsigned k = 1 + 3u * (sel >> 4);
	const uint8_t *body = data + 1;
	size_t len = size - 1;
	char *side = NULL;
	size_t sidelen = 0;
	if ((sel & 3) >= 2 && (sel & 8) && len >= 2) {
		sidelen = (size_t)(body[0] | body[1] << 8);
		if (sidelen > len - 2)
			sidelen = len - 2;
		/* The daemon reads a sidecar as a NUL-terminated copy of the file. */
		side = fuzz_cstr(body + 2, sidelen);
		body += 2 + sidelen;
		len -= 2 + sidelen;
	}
	/* An exact-size copy: the parse must not read past the file's bytes. */
	char *file = malloc(len ? len : 1);
	if (!file)
		abort();
	memcpy(file, body, len);

	struct nfs_query q;
	char err[1024];
	if (nfs_query_parse(&q, name, file, len, side, sidelen, &infos[which], k, err, sizeof err) == 0 &&
	    q.nq <= MAX_RESULTS / q.k) {
		nvf_result *r = malloc(q.nq * q.k * sizeof *r);
		char *text = NULL;
		if (!r)
			abort();
		if (nfs_query_exec(dbs[which], &q, r, &text) == 0 && q.binary) {
			for (int ids = 0; ids < 2; ids++) {
				size_t nl;
				free(nfs_query_npy(r, q.nq, q.k, ids, &nl));
			}
		}
		free(text);
		free(r);
	}
	nfs_query_free(&q);
	free(file);
	free(side);
	return 0;
}
