/* The HNSW graph (Malkov and Yashunin, 2016) kept in the file's pages.
 *
 * Level 0 is an array with one record per vector row (the same row numbers), so a
 * node's links are one table lookup away like its vector. Nodes above level 0 (about
 * one in M) also own `level` consecutive slots of the UPPER array, one per level
 * 1..level, found through the slot number in their level-0 record. The entry point,
 * the top level and the number of nodes per level are a small record of their own.
 * The 4-bit copies of the vectors (NVF_QUANT_SQ4) are an array of their own, row by
 * row, which NVF_QUANT_AUTO writes only once its measure keeps them; files of the
 * first layout keep them in the level-0 records after the links, and go on so.
 * Links hold row numbers. Opening needs none of this in memory: search reads it all
 * straight from the map. */
#ifndef NVF_HNSW_H
#define NVF_HNSW_H

#include "coll.h"

enum {
	NVF_T_GRAPH0 = 7,    /* array: row -> struct nvf_hnsw_node0 + links */
	NVF_T_UPPER = 8,     /* array: slot -> struct nvf_hnsw_upper + links */
	NVF_T_FREEUPPER = 9, /* free slot runs: levels << 40 | first slot -> nothing */
	NVF_T_HNSW = 10,     /* key 0: struct nvf_disk_hnsw */
	NVF_T_CODES = 15,    /* array: row -> struct nvf_hnsw_qparams + ceil(dim / 2) code bytes */
};

#define NVF_HNSW_MAX_LEVEL 24
#define NVF_HNSW_NO_ENTRY UINT64_MAX

/* Level-0 record of a row, followed by 2M u32 links (and, in files of the first
 * layout with NVF_QUANT_SQ4, the row's codes; hnsw.c tells them by the stride). */
struct nvf_hnsw_node0 {
	uint32_t upper;  /* first UPPER slot (level 1), if level > 0 */
	uint32_t indeg;  /* links to this node, at every level: removal must leave none */
	uint8_t level;   /* the node's top level */
	uint8_t flags;   /* NVF_HNSW_LINKED: the row is a node of the graph */
	uint16_t n;      /* links in use */
};
/* No padding to 16: every byte of a record is paid 60,000 or a billion times. */
_Static_assert(sizeof(struct nvf_hnsw_node0) == 12, "node0 size");
#define NVF_HNSW_LINKED 0x1u

/* One upper-level list, followed by M u32 links. */
struct nvf_hnsw_upper {
	uint32_t n;
};
_Static_assert(sizeof(struct nvf_hnsw_upper) == 4, "upper size");

/* The graph's own record. */
struct nvf_disk_hnsw {
	uint64_t entry;                         /* entry row, NVF_HNSW_NO_ENTRY if empty */
	uint32_t max_level;
	uint32_t reserved;
	uint64_t nodes;                         /* linked nodes */
	uint64_t per_level[NVF_HNSW_MAX_LEVEL]; /* nodes whose level is exactly l */
};
_Static_assert(sizeof(struct nvf_disk_hnsw) == 24 + 8 * NVF_HNSW_MAX_LEVEL, "hnsw record size");

/* Create the graph's trees (collection creation and reindex). */
int nvf__hnsw_create(nvf_txn *txn, nvf_coll *c);
/* Open the graph of an HNSW collection (nvf__coll_get calls it). */
int nvf__hnsw_open(nvf_txn *txn, nvf_coll *c);
/* Link rows [first, first + n) (already written) into the graph; in parallel for
 * batches. */
int nvf__hnsw_insert(nvf_txn *txn, nvf_coll *c, const uint64_t *rows, size_t n);
/* Unlink a row's node, re-linking the nodes that linked to it. *deferred: the row
 * is a tombstone until nvf__hnsw_settle() (it must not be reused before). */
int nvf__hnsw_remove(nvf_txn *txn, nvf_coll *c, uint64_t row, bool *deferred);
/* Before commit: repair what still links to tombstones and free them; their rows are
 * returned (caller frees the array) for the caller to release. */
int nvf__hnsw_settle(nvf_txn *txn, nvf_coll *c, uint64_t **rows, size_t *n);
/* A row's vector changes: detach its node before the new vector is written, attach it
 * (from the new position) after. */
int nvf__hnsw_detach(nvf_txn *txn, nvf_coll *c, uint64_t row);
int nvf__hnsw_attach(nvf_txn *txn, nvf_coll *c, uint64_t row);
/* Compaction packs rows: row `from`'s node (record, links, codes) moves to the free
 * row `to`; then every link and the entry point are renamed through
 * to[row - live] for the rows >= live that moved, and level 0 ends at live. */
int nvf__hnsw_move(nvf_txn *txn, nvf_coll *c, uint64_t from, uint64_t to);
int nvf__hnsw_pack(nvf_txn *txn, nvf_coll *c, uint64_t live, const uint64_t *to);
/* Read access for compaction's layout (layout.c): whether row is a node of the graph,
 * its top level (0 if it is none), its links at a level (none above its top;
 * NVF_ECORRUPT for a count, slot or link out of range), the entry row
 * (NVF_HNSW_NO_ENTRY if the graph is empty). */
bool nvf__hnsw_linked(nvf_coll *c, uint64_t row);
int nvf__hnsw_level(nvf_coll *c, uint64_t row);
/* Linked nodes (0 without a graph). */
uint64_t nvf__hnsw_nodes(const nvf_coll *c);
/* NVF_QUANT_AUTO's measure (calib.c): whether one is due (the graph doubled since the
 * last), and the measure itself, which records its choice in txn's configuration. */
bool nvf__calib_due(const nvf_coll *c);
int nvf__calibrate(nvf_txn *txn, nvf_coll *c);
/* For the measure: codes of every node at hand (in memory if the file has none yet);
 * then keep them (into the file, if they were only in memory) or drop them (the
 * configuration then says NVF_QUANT_NONE). Files of the first layout keep theirs. */
int nvf__hnsw_codes_ready(nvf_txn *txn, nvf_coll *c);
int nvf__hnsw_codes_settle(nvf_txn *txn, nvf_coll *c, bool keep);
/* Whether walks can use 4-bit codes now. */
bool nvf__hnsw_has_codes(const nvf_coll *c);
int nvf__hnsw_links(nvf_coll *c, uint64_t row, int level, const uint32_t **links, uint32_t *n);
uint64_t nvf__hnsw_entry(nvf_coll *c);
/* Compaction's relayout (coll.c): node records come from base's rows old_of_new[r]
 * to rows r < live, every link and the entry point renamed through new_of_old; the
 * upper lists are dealt out again in the new row order (no free slot left). */
int nvf__hnsw_permute(nvf_txn *txn, nvf_coll *c, nvf_coll *base, const uint64_t *old_of_new,
		      const uint64_t *new_of_old, uint64_t live);

/* Levels in use, nodes whose top level is each level, and level-0 nodes by their
 * number of links (the last bucket counts ndeg - 1 and more). */
int nvf__hnsw_stats(nvf_txn *txn, nvf_coll *c, uint32_t *levels, uint64_t *per_level, size_t nlevels,
		    uint64_t *degree0, size_t ndeg);

/* Write back the graph record if it changed (before commit). */
int nvf__hnsw_flush(nvf_txn *txn, nvf_coll *c);

struct nvf_rowpred;

/* k nearest by the graph; with a predicate (NULL: none), only rows that pass are
 * returned: walking through every node (plain) or only through passing ones with
 * ACORN-1's two-hop expansion (acorn), which also starts from the nearest of a few of
 * pass_rows (the rows that pass, ascending, when known). The walk stops after max_dist distance
 * computations (the caller then scans instead); work[0] adds the distances
 * computed, work[1] the nodes expanded. */
int nvf__hnsw_search(nvf_txn *txn, nvf_coll *c, const float *q, size_t k, uint32_t ef, bool full_precision,
		     const struct nvf_rowpred *pred, bool acorn, const uint32_t *pass_rows, size_t npass, uint64_t max_dist,
		     uint64_t work[2], nvf_result *out, size_t *nout);

/* The k nearest of the given rows (a filter's passing set) without the graph: the
 * width (ef) nearest by the 4-bit codes, then measured exactly (exact throughout when
 * the graph keeps no codes). A few thousand rows scan faster this way than their
 * float32 vectors stream, and the rows a walk would never reach are all seen. */
int nvf__hnsw_scan(nvf_txn *txn, nvf_coll *c, const float *q, size_t k, uint32_t ef, const uint32_t *rows, size_t n,
		   uint64_t work[2], nvf_result *out, size_t *nout);

/* Graph invariants for nvf_check(). */
int nvf__hnsw_check(nvf_txn *txn, nvf_coll *c, uint64_t *bad_row);

#endif
