/* nvf-tool export: the records of a state into a file that import reads back.
 *   export DB FILE [--format fvecs|npy|jsonl] [--snapshot NAME] [--filter EXPR]
 * .fvecs and .npy hold the vectors in id order (import assigns ids in file order);
 * .jsonl holds each record whole: {"id", "vector", "meta", "tags"}. */
#include "tool.h"
#include "vecfile.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int write_all(FILE *f, const void *p, size_t n)
{
	return fwrite(p, 1, n, f) == n ? 0 : -1;
}

/* NumPy format 1.0: magic, header length, a dict padded to 64 bytes with '\n'. */
static int npy_header(FILE *f, uint64_t n, uint32_t dim)
{
	char dict[128];
	int len = snprintf(dict, sizeof(dict), "{'descr': '<f4', 'fortran_order': False, 'shape': (%" PRIu64 ", %u), }",
			   n, dim);
	size_t total = 10 + (size_t)len + 1;
	size_t pad = (64 - total % 64) % 64;
	uint16_t hlen = (uint16_t)((size_t)len + pad + 1);
	if (write_all(f, "\x93NUMPY\x01\x00", 8) || write_all(f, &hlen, 2) || write_all(f, dict, (size_t)len))
		return -1;
	for (size_t i = 0; i < pad; i++)
		if (fputc(' ', f) == EOF)
			return -1;
	return fputc('\n', f) == EOF ? -1 : 0;
}

static int cmd_export(const struct command *cmd, int argc, char **argv)
{
	(void)cmd;
	static const struct option opts[] = {
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "snapshot", required_argument, NULL, OPT_SNAPSHOT },
		{ "filter", required_argument, NULL, OPT_FILTER },
		HELP_OPTION,
		{ NULL, 0, NULL, 0 },
	};
	const char *fmt = NULL, *snapshot = NULL, *filter = NULL;
	int c;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (c == OPT_FORMAT)
			fmt = optarg;
		else if (c == OPT_SNAPSHOT)
			snapshot = optarg;
		else if (c == OPT_FILTER)
			filter = optarg;
		else
			common_option(c, argv);
	}
	static const char *const names[] = { "DB", "FILE" };
	char **pos = positionals(argc, argv, 2, names);
	/* jsonl is the tool's own (import reads it beside the vector files). */
	enum { EX_JSONL = -2 };
	size_t plen = strlen(pos[1]);
	int format = fmt ? (strcmp(fmt, "jsonl") == 0 ? EX_JSONL : vecfile_format_parse(fmt))
			 : plen > 6 && strcmp(pos[1] + plen - 6, ".jsonl") == 0 ? EX_JSONL : vecfile_format_guess(pos[1]);
	if (plen > 3 && strcmp(pos[1] + plen - 3, ".gz") == 0)
		usage_error("%s: export does not compress; write the file, then gzip it", pos[1]);
	if (format != VF_FVECS && format != VF_NPY && format != EX_JSONL) {
		if (fmt)
			usage_error("--format '%s': export writes fvecs, npy or jsonl", fmt);
		usage_error("%s: cannot tell the format from the name (.fvecs, .npy, .jsonl): give --format", pos[1]);
	}
	struct stat st;
	if (stat(pos[1], &st) == 0)
		return error("%s already exists: export never overwrites", pos[1]);
	nvf_filter *flt = NULL;
	int rc = nvf_filter_compile(&flt, filter ? filter : "id >= 0");
	if (rc != 0)
		return error("--filter: %s", why(rc));
	nvf_db *db = NULL;
	nvf_txn *txn = NULL;
	uint64_t *ids = NULL;
	size_t n = 0;
	nvf_info info;
	if (open_rdonly(pos[0], &db) != 0) {
		nvf_filter_free(flt);
		return EXIT_ERROR;
	}
	if ((rc = snapshot ? nvf_txn_begin_snapshot(&txn, db, snapshot) : nvf_txn_begin(&txn, db, NVF_TXN_RDONLY)) == 0 &&
	    (rc = nvf_db_info(db, txn, &info)) == 0)
		rc = nvf_filter_ids(db, txn, flt, &ids, &n);
	nvf_filter_free(flt);
	int ret = EXIT_ERROR;
	if (rc != 0) {
		db_error(pos[0], rc);
		goto out;
	}
	/* A temporary name, renamed at the end: no half-written file under FILE. */
	size_t tl = strlen(pos[1]) + 32;
	char *tmp = malloc(tl);
	snprintf(tmp, tl, "%s.tmp-%ld", pos[1], (long)getpid());
	FILE *f = fopen(tmp, "wbx");
	if (!f) {
		error("cannot create %s: %s", pos[1], strerror(errno));
		free(tmp);
		goto out;
	}
	float *v = malloc((size_t)info.dim * sizeof(float));
	int wrc = format == VF_NPY ? npy_header(f, n, info.dim) : 0;
	int32_t d32 = (int32_t)info.dim;
	progress pr;
	progress_start(&pr, "export", "records", n);
	for (size_t i = 0; i < n && rc == 0 && wrc == 0; i++) {
		progress_update(&pr, i);
		if (format != EX_JSONL) {
			if ((rc = nvf_get(db, txn, ids[i], v, info.dim)) != 0)
				break;
			if (format == VF_FVECS)
				wrc = write_all(f, &d32, 4);
			if (wrc == 0)
				wrc = write_all(f, v, (size_t)info.dim * sizeof(float));
			continue;
		}
		/* The record as import reads it: id, vector, and meta and tags when set. */
		char *s;
		if ((rc = nvf_record_json(db, txn, ids[i], NVF_RECORD_VECTOR, &s)) != 0)
			break;
		json_t *r = json_loads(s, 0, NULL), *o = json_object();
		nvf_free(s);
		json_object_set(o, "id", json_object_get(r, "id"));
		json_object_set(o, "vector", json_object_get(r, "vector"));
		json_t *m = json_object_get(r, "meta"), *tg = json_object_get(r, "tags");
		if (m && !json_is_null(m))
			json_object_set(o, "meta", m);
		if (tg && json_array_size(tg))
			json_object_set(o, "tags", tg);
		char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
		json_decref(o);
		json_decref(r);
		wrc = !line || fputs(line, f) == EOF || fputc('\n', f) == EOF ? -1 : 0;
		free(line);
	}
	progress_end(&pr);
	free(v);
	if (fflush(f) != 0 || ferror(f) || fsync(fileno(f)) != 0)
		wrc = -1;
	int e = errno;
	fclose(f);
	if (rc != 0 || wrc != 0) {
		unlink(tmp);
		if (rc != 0)
			db_error(pos[0], rc);
		else
			error("writing %s failed: %s", pos[1], strerror(e));
	} else if (link(tmp, pos[1]) != 0) {
		e = errno;
		unlink(tmp);
		error("cannot create %s: %s", pos[1], strerror(e));
	} else {
		unlink(tmp);
		printf("exported %zu records of %s%s%s to %s (%s)\n", n, pos[0], snapshot ? " at snapshot " : "",
		       snapshot ? snapshot : "", pos[1], format == EX_JSONL ? "jsonl" : vecfile_format_name(format));
		ret = EXIT_SUCCESS;
	}
	free(tmp);
out:
	nvf_free(ids);
	nvf_txn_abort(txn);
	nvf_db_close(db);
	return ret;
}

const struct command cmd_export_def = { "export", cmd_export, "Write the records to a file that import reads back.",
	  "export DB FILE [options]\n"
	  "\n"
	  "Writes the records in id order: .fvecs and .npy hold the vectors (import gives\n"
	  "them ids in file order), .jsonl each record whole: {\"id\", \"vector\", \"meta\",\n"
	  "\"tags\"}, which import reads back exactly. FILE must not exist; it appears\n"
	  "only when complete.\n"
	  "\n"
	  "      --format F           fvecs, npy or jsonl (default: from the name)\n"
	  "      --snapshot NAME      the state a named snapshot keeps\n"
	  "      --filter EXPR        only the records the filter passes (FILTER.md)\n"
	  "  -h, --help               show this help\n" };
