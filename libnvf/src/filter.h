/* The filter language of docs/FILTER.md: parser, compiled program, and its
 * evaluation on a record's stored metadata (read in place, nothing materialised). */
#ifndef NVF_FILTER_H
#define NVF_FILTER_H

#include "coll.h"
#include "doc.h"

#define NVF_FILTER_MAX_TEXT (64u << 10)
#define NVF_FILTER_MAX_DEPTH 64
#define NVF_FILTER_MAX_STRING 4096u
#define NVF_FILTER_MAX_LIST 1024u

/* What a path names. */
enum {
	NVF_PF_DOC = 0,   /* a path in the document */
	NVF_PF_ID,
	NVF_PF_VERSION,
	NVF_PF_CREATED,
	NVF_PF_UPDATED,
	NVF_PF_TAGS,
};

typedef struct nvf_seg {
	char *s;
	size_t len;
} nvf_seg;

typedef struct nvf_path {
	int field;       /* NVF_PF_* */
	size_t nseg;     /* document paths */
	nvf_seg *seg;
	char *canon;     /* canonical text: how field indexes are matched */
} nvf_path;

/* Literal types follow the document's value types (NVF_DT_*). */
typedef struct nvf_lit {
	int type;        /* NVF_DT_NULL, _TRUE, _FALSE, _INT, _FLOAT, _STR */
	int64_t i;
	double f;
	char *s;
	size_t len;
	bool iso;        /* a string that is an ISO-8601 timestamp ... */
	int64_t us;      /* ... this instant, in microseconds */
} nvf_lit;

enum {
	NVF_FN_AND, NVF_FN_OR, NVF_FN_NOT,
	NVF_FN_CMP,      /* op, one literal */
	NVF_FN_IN, NVF_FN_NOT_IN,
	NVF_FN_BETWEEN, NVF_FN_NOT_BETWEEN,
	NVF_FN_CONTAINS, NVF_FN_CONTAINS_ANY, NVF_FN_CONTAINS_ALL,
	NVF_FN_IS_NULL, NVF_FN_IS_NOT_NULL, NVF_FN_EXISTS,
	NVF_FN_STARTS,
};

enum { NVF_OP_EQ, NVF_OP_NE, NVF_OP_LT, NVF_OP_LE, NVF_OP_GT, NVF_OP_GE };

typedef struct nvf_fnode {
	int kind;        /* NVF_FN_* */
	int op;          /* NVF_FN_CMP: NVF_OP_* */
	int a, b;        /* children (node indexes); AND/OR: a, b; NOT: a */
	int path;        /* index into paths, or -1 */
	nvf_lit *lits;
	size_t nlits;
} nvf_fnode;

struct nvf_filter {
	char *text;
	nvf_fnode *nodes;
	size_t nnodes;
	int root;
	nvf_path *paths;
	size_t npaths;
	bool needs_meta;     /* reads version / created_at / updated_at */
	bool needs_payload;  /* reads the document or the tags */
	/* Allowed-row sets computed by the planner, reused while the state is the
	 * same (planner.c). */
	pthread_mutex_t cache_mutex;
	struct nvf_rowset *cache;
};

/* Parse a path as FILTER.md writes it (also for field indexes). */
int nvf__path_parse(const char *text, nvf_path *out);
void nvf__path_free(nvf_path *p);

/* The value a path names in a record, as the evaluator sees it. */
typedef struct nvf_evalctx {
	nvf_txn *txn;
	nvf_coll *c;
	uint64_t row, id;
	bool meta_loaded, payload_loaded;
	struct nvf_disk_recmeta rm;
	nvf_payload pl;
	bool has_payload;
	int err;          /* damage met: the evaluation is false and the caller reports it */
	nvf_buf *tmp;     /* decompression buffer */
	uint64_t evals;   /* records whose metadata was read */
} nvf_evalctx;

/* Evaluate the filter on one record (row, id). Returns true or false; damage sets
 * ctx->err (and the result is false). */
bool nvf__filter_eval(const struct nvf_filter *f, nvf_evalctx *ctx);
/* Evaluate one node (the planner evaluates residual parts). */
bool nvf__filter_eval_node(const struct nvf_filter *f, int node, nvf_evalctx *ctx);
/* Prepare ctx for a record. */
void nvf__evalctx_reset(nvf_evalctx *ctx, uint64_t row, uint64_t id);
/* This thread's decompression buffer for evaluations. */
nvf_buf *nvf__eval_tmp(void);

/* ISO-8601 as FILTER.md defines it; true and *us on success. */
bool nvf__iso8601_parse(const char *s, size_t n, int64_t *us);
/* Exact comparison of a number and a literal value: -1, 0, 1. */
int nvf__num_cmp(bool ai, int64_t a_i, double a_f, bool bi, int64_t b_i, double b_f);

#endif
