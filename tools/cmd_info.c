/* nvf-tool info: a database's settings, counts, documents and indexes. */
#include "tool.h"
#include "vecfile.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int cmd_info(const struct command *cmd, int argc, char **argv)
{
	bool json;
	const char *path = json_and_db(argc, argv, &json);
	nvf_db *db;
	nvf_info in;
	nvf_txn *txn = NULL;
	nvf_field_info *fields = NULL;
	size_t nfields = 0;
	nvf_calibration cal = NVF_CALIBRATION_INIT;
	if (open_rdonly(path, &db) != 0)
		return EXIT_ERROR;
	/* One read transaction: the counts and the indexes of one state. */
	int rc = nvf_txn_begin(&txn, db, NVF_TXN_RDONLY);
	if (rc == 0 && (rc = nvf_db_info(db, txn, &in)) == 0)
		rc = nvf_field_list(db, txn, &fields, &nfields);
	if (rc == 0 && in.index == NVF_INDEX_HNSW)
		rc = nvf_hnsw_calibration(db, txn, &cal);
	nvf_txn_abort(txn);
	nvf_db_close(db);
	if (rc != 0)
		return db_error(path, rc);
	const char *metric = nvf_metric_name(in.metric), *index = in.index == NVF_INDEX_HNSW ? "hnsw" : "flat";
	bool nonfinite = in.flags & NVF_CREATE_ALLOW_NONFINITE;
	if (json) {
		json_t *o = json_object();
		json_object_set_new(o, "path", json_string(path));
		json_object_set_new(o, "dim", juint(in.dim));
		json_object_set_new(o, "metric", json_string(metric ? metric : "unknown"));
		json_object_set_new(o, "index", json_string(index));
		if (in.index == NVF_INDEX_HNSW) {
			json_t *h = json_object();
			json_object_set_new(h, "M", juint(in.hnsw_m));
			json_object_set_new(h, "ef_construction", juint(in.hnsw_ef_construction));
			json_object_set_new(h, "ef_search", juint(in.hnsw_ef_search));
			json_object_set_new(h, "seed", juint(in.seed));
			json_object_set_new(h, "quantize", json_string(quantize_name(in.hnsw_quantize)));
			json_object_set_new(h, "walk", json_string(cal.walk == NVF_WALK_FLOAT ? "float" : "codes"));
			if (cal.automatic) {
				json_t *m = json_object();
				json_object_set_new(m, "nodes", juint(cal.nodes));
				json_object_set_new(m, "recall_codes", json_real(cal.recall_codes));
				json_object_set_new(m, "recall_float", json_real(cal.recall_float));
				json_object_set_new(h, "calibration", m);
			}
			json_object_set_new(o, "hnsw", h);
		}
		json_object_set_new(o, "allow_nonfinite", json_boolean(nonfinite));
		json_object_set_new(o, "count", juint(in.count));
		json_object_set_new(o, "next_id", juint(in.next_id));
		json_object_set_new(o, "rows", juint(in.rows));
		json_object_set_new(o, "page_size", juint(in.page_size));
		json_object_set_new(o, "pages", juint(in.pages));
		json_object_set_new(o, "file_size", juint(in.file_size));
		json_object_set_new(o, "txnid", juint(in.txnid));
		json_object_set_new(o, "snapshots", juint(in.snapshots));
		json_t *d = json_object();
		json_object_set_new(d, "codec", json_string(codec_label(in.doc_codec)));
		if (in.doc_codec == NVF_CODEC_ZSTD || in.doc_codec == NVF_CODEC_ZSTD_DICT)
			json_object_set_new(d, "level", json_integer(in.doc_codec_level ? in.doc_codec_level : 3));
		json_object_set_new(d, "max_bytes", juint(in.doc_max_bytes));
		json_object_set_new(d, "records", juint(in.docs));
		json_object_set_new(d, "stored_bytes", juint(in.doc_bytes));
		json_object_set_new(d, "raw_bytes", juint(in.doc_raw_bytes));
		json_object_set_new(d, "dict_bytes", juint(in.dict_bytes));
		json_object_set_new(o, "documents", d);
		json_t *fs = json_array();
		for (size_t i = 0; i < nfields; i++) {
			json_t *f = json_object();
			json_object_set_new(f, "path", json_string(fields[i].path));
			json_object_set_new(f, "type", json_string(nvf_field_type_name(fields[i].type)));
			json_object_set_new(f, "keys", juint(fields[i].keys));
			json_object_set_new(f, "entries", juint(fields[i].entries));
			json_object_set_new(f, "unindexed", juint(fields[i].unindexed));
			json_array_append_new(fs, f);
		}
		json_object_set_new(o, "fields", fs);
		nvf_free(fields);
		return print_json(o) ? EXIT_ERROR : EXIT_SUCCESS;
	}
	printf("%-16s%s\n", "path", path);
	printf("%-16s%" PRIu32 "\n", "dimension", in.dim);
	printf("%-16s%s\n", "metric", metric ? metric : "unknown");
	printf("%-16s%s", "index", index);
	print_hnsw(&in);
	if (in.index == NVF_INDEX_HNSW) {
		printf("\n%-16s%s", "walk", cal.walk == NVF_WALK_FLOAT ? "float32" : "4-bit codes");
		if (cal.automatic && cal.nodes)
			printf(" (quantize auto: at %" PRIu64 " nodes, recall@10 at ef %" PRIu32 " was %.3f on the codes, "
			       "%.3f on float32%s)", cal.nodes, in.hnsw_ef_search, cal.recall_codes, cal.recall_float,
			       in.hnsw_quantize == NVF_QUANT_NONE ? "; the codes are not kept" : "");
		else if (cal.automatic)
			printf(" (quantize auto: measured from 2,000 nodes on)");
	}
	printf("\n%-16s%s\n", "non-finite", nonfinite ? "allowed" : "rejected");
	printf("%-16s%" PRIu64 "\n", "count", in.count);
	printf("%-16s%" PRIu64 "\n", "next id", in.next_id);
	printf("%-16s%" PRIu64 "\n", "rows", in.rows);
	printf("%-16s%" PRIu32 "\n", "page size", in.page_size);
	printf("%-16s%" PRIu64 "\n", "pages", in.pages);
	printf("%-16s%" PRIu64 " bytes\n", "file size", in.file_size);
	printf("%-16s%" PRIu64 "\n", "txnid", in.txnid);
	printf("%-16s%" PRIu64 "\n", "snapshots", in.snapshots);
	printf("%-16s%s", "documents", codec_name(in.doc_codec, in.doc_codec_level));
	if (in.doc_codec == NVF_CODEC_ZSTD_DICT)
		printf(in.dict_bytes ? ", dictionary of %" PRIu32 " bytes" : ", no dictionary yet", in.dict_bytes);
	printf("; %" PRIu64 " records with a document or tags, %" PRIu64 " bytes stored", in.docs, in.doc_bytes);
	if (in.doc_raw_bytes)
		printf(" (%" PRIu64 " before compression, %.2fx)", in.doc_raw_bytes,
		       in.doc_bytes ? (double)in.doc_raw_bytes / (double)in.doc_bytes : 0.0);
	printf("; at most %" PRIu32 " bytes each\n", in.doc_max_bytes);
	printf("%-16s%zu\n", "field indexes", nfields);
	for (size_t i = 0; i < nfields; i++)
		printf("  %-30s %-9s %" PRIu64 " values, %" PRIu64 " entries, %" PRIu64 " unindexed\n", fields[i].path,
		       nvf_field_type_name(fields[i].type), fields[i].keys, fields[i].entries, fields[i].unindexed);
	nvf_free(fields);
	return EXIT_SUCCESS;
}

const struct command cmd_info_def = { "info", cmd_info, "Describe a database: settings, counts, documents, field indexes, pages.",
	  "info DB [--json]\n"
	  "\n"
	  "      --json               print a JSON object\n"
	  "  -h, --help               show this help" };
