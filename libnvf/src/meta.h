/* Record metadata: the META array (times, version), the DOCS tree (tags and the
 * document, compressed), the zstd dictionaries, and the hooks the record functions
 * call so that every change keeps them (and the field indexes) in step. */
#ifndef NVF_META_H
#define NVF_META_H

#include "codec.h"
#include "coll.h"

/* Records with a document start collecting samples for a dictionary from here. */
#define NVF_DICT_TRAIN_DOCS 1000u
#define NVF_DICT_TRAIN_BYTES (1u << 20)
#define NVF_DICT_RETRAIN_MAX 100000u /* no automatic retraining past this many documents */

/* DICTS tree key 0: totals of the stored payloads. */
struct nvf_disk_docstats {
	uint64_t stored_bytes; /* DOCS values, headers included */
	uint64_t raw_bytes;    /* payloads before compression */
	uint64_t reserved[2];
};
_Static_assert(sizeof(struct nvf_disk_docstats) == 32, "doc stats size");

/* Open the metadata of a collection (nvf__coll_get); in a write transaction, a
 * version 1 collection gets its metadata trees here. */
int nvf__meta_open(nvf_txn *txn, nvf_coll *c);
/* Create the metadata trees of a new collection. */
int nvf__meta_create(nvf_txn *txn, nvf_coll *c);
/* Before commit: write back the totals, flush field index changes. */
int nvf__meta_precommit(nvf_txn *txn, nvf_coll *c);

/* Hooks of the record functions, inside their change (they fail the transaction). */
int nvf__meta_on_insert(nvf_txn *txn, nvf_coll *c, uint64_t row);
int nvf__meta_on_update(nvf_txn *txn, nvf_coll *c, uint64_t row);
int nvf__meta_on_delete(nvf_txn *txn, nvf_coll *c, uint64_t row, uint64_t id);

/* A record's META row (zeros where the file has none). */
void nvf__meta_row(const nvf_coll *c, uint64_t row, struct nvf_disk_recmeta *out);
/* A record's payload: 1 (*out set, pointing into tmp or the map), 0 (none), <0. */
int nvf__meta_payload(nvf_txn *txn, nvf_coll *c, uint64_t row, uint64_t id, nvf_buf *tmp, nvf_payload *out);

/* A DOCS tree value of id, decompressed into tmp if need be, parsed: 1 or < 0. */
int nvf__meta_unpack(nvf_txn *txn, nvf_coll *c, uint64_t id, const nvf_val *v, nvf_buf *tmp, nvf_payload *out);

/* Verify documents against the META rows and every payload's encoding (nvf_check). */
int nvf__meta_check(nvf_txn *txn, nvf_coll *c);
/* Totals for nvf_db_info. */
int nvf__meta_info(nvf_txn *txn, nvf_coll *c, nvf_info *out);

#endif
