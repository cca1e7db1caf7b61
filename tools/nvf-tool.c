/* nvf-tool: create, fill, search and inspect .nvf databases from the shell.
 *
 * One table lists the subcommands; each parses its own options with getopt_long.
 * Conventions every subcommand keeps: usage and help on stdout with exit 0; an
 * error is one line on stderr, "nvf-tool: CMD: ...", with exit 1; bad usage is one
 * line on stderr with exit 2. Only the public API of libnvf (nvf.h) is used. */
#include <nvf.h>

#include "vecfile.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EXIT_USAGE 2

struct command {
	const char *name;
	int (*run)(const struct command *cmd, int argc, char **argv);
	const char *summary;
	const char *usage; /* synopsis, then one line per option */
};

/* The subcommand running, for the prefix of messages. */
static const struct command *current;

/* ---- messages ---- */

__attribute__((format(printf, 1, 2))) static int error(const char *fmt, ...)
{
	va_list ap;
	/* stdout is fully buffered: show what came before the error first. */
	fflush(stdout);
	fprintf(stderr, "nvf-tool: %s%s", current ? current->name : "", current ? ": " : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_FAILURE;
}

__attribute__((format(printf, 1, 2), noreturn)) static void usage_error(const char *fmt, ...)
{
	va_list ap;
	char msg[512];
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (current)
		fprintf(stderr, "nvf-tool: %s: %s (see 'nvf-tool %s --help')\n", current->name, msg, current->name);
	else
		fprintf(stderr, "nvf-tool: %s (see 'nvf-tool --help')\n", msg);
	exit(EXIT_USAGE);
}

/* The library's words for a failure: its detail message, which names the page,
 * id or argument, or else the code's name. The detail message is only replaced
 * by the next failure that sets one, and some -errno paths (I/O, memory) set
 * none: for those, it is trusted only if it names the same OS error. */
static const char *why(int rc)
{
	const char *m = nvf_errmsg(), *s = nvf_strerror(rc);
	if (!m || !*m)
		return s;
	if (rc < 0 && rc > -1000 && !strstr(m, s))
		return s;
	return m;
}

/* An error of the library about a database file: "PATH: message", without
 * repeating the path where the library's message already names it. */
static int db_error(const char *path, int rc)
{
	const char *m = why(rc);
	if (strstr(m, path))
		return error("%s", m);
	return error("%s: %s", path, m);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- option parsing ---- */

/* Long-only options get values above every character. */
enum {
	OPT_HELP = 'h',
	OPT_M = 256,
	OPT_EF_CONSTRUCTION,
	OPT_EF_SEARCH,
	OPT_SEED,
	OPT_PAGE_SIZE,
	OPT_ALLOW_NONFINITE,
	OPT_NOSYNC,
	OPT_INDEX,
	OPT_FORMAT,
	OPT_BATCH,
	OPT_THREADS,
	OPT_JSON,
	OPT_EF,
	OPT_EXACT,
	OPT_LIMIT,
	OPT_QUANTIZE,
	OPT_FULL_PRECISION,
};

#define HELP_OPTION { "help", no_argument, NULL, OPT_HELP }

/* The synopsis (the usage text's first line), the summary, then the rest. */
static void print_usage(const struct command *cmd, FILE *f)
{
	const char *nl = strchr(cmd->usage, '\n');
	int n = nl ? (int)(nl - cmd->usage) : (int)strlen(cmd->usage);
	fprintf(f, "usage: nvf-tool %.*s\n\n%s\n%s\n", n, cmd->usage, cmd->summary, nl ? nl + 1 : "");
}

/* Options every command has, and getopt_long's complaints (opterr is off so that
 * the message is ours and on one line). */
static void common_option(int c, char **argv)
{
	switch (c) {
	case OPT_HELP:
		print_usage(current, stdout);
		exit(fflush(stdout) == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
	case ':':
		usage_error("option '%s' needs an argument", argv[optind - 1]);
	case '?':
		if (optopt > 0 && optopt < 128)
			usage_error("unknown option '-%c'", optopt);
		usage_error("unknown or malformed option '%s'", argv[optind - 1]);
	default:
		usage_error("option %d not handled", c); /* a bug in the option tables */
	}
}

/* A decimal number in [min, max]; anything else is a usage error. */
static uint64_t parse_num(const char *opt, const char *arg, uint64_t min, uint64_t max)
{
	const char *p = arg;
	uint64_t v = 0;
	if (!*p)
		usage_error("%s: empty number", opt);
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			usage_error("%s '%s': not a non-negative integer", opt, arg);
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			usage_error("%s '%s': too large", opt, arg);
		v = v * 10 + d;
	}
	if (v < min || v > max)
		usage_error("%s %" PRIu64 ": must be %" PRIu64 " to %" PRIu64, opt, v, min, max);
	return v;
}

/* The positional arguments: exactly n of them, named for the message. */
static char **positionals(int argc, char **argv, int n, const char *const names[])
{
	int have = argc - optind;
	if (have < n)
		usage_error("missing %s", names[have]);
	if (have > n)
		usage_error("unexpected argument '%s'", argv[optind + n]);
	return argv + optind;
}

static int parse_format(const char *arg)
{
	int f = vecfile_format_parse(arg);
	if (f < 0)
		usage_error("--format '%s': expected fvecs, bvecs, npy or idx", arg);
	return f;
}

/* --quantize: what the HNSW walk reads (the library rejects a mode the metric
 * cannot use, naming both). */
static int parse_quantize(const char *arg)
{
	if (strcmp(arg, "auto") == 0)
		return NVF_QUANT_AUTO;
	if (strcmp(arg, "none") == 0)
		return NVF_QUANT_NONE;
	if (strcmp(arg, "sq4") == 0)
		return NVF_QUANT_SQ4;
	usage_error("--quantize '%s': expected auto, none or sq4", arg);
	return -1;
}

static const char *quantize_name(int q)
{
	return q == NVF_QUANT_SQ4 ? "sq4" : "none";
}

/* The index options create and reindex share. The parsed values land in an
 * nvf_index_options (create copies them into its own struct). */
#define INDEX_OPTIONS                                                         \
	{ "index", required_argument, NULL, OPT_INDEX },                      \
	{ "M", required_argument, NULL, OPT_M },                              \
	{ "ef-construction", required_argument, NULL, OPT_EF_CONSTRUCTION },  \
	{ "ef-search", required_argument, NULL, OPT_EF_SEARCH },              \
	{ "seed", required_argument, NULL, OPT_SEED },                        \
	{ "quantize", required_argument, NULL, OPT_QUANTIZE }

/* Parse option c if it is one of INDEX_OPTIONS; *hnsw_params notes an HNSW-only
 * one. Ranges are the library's to enforce (it names the field); here only that
 * they are numbers that fit. */
static bool index_option(int c, nvf_index_options *o, bool *hnsw_params)
{
	switch (c) {
	case OPT_INDEX:
		if (strcmp(optarg, "flat") == 0)
			o->index = NVF_INDEX_FLAT;
		else if (strcmp(optarg, "hnsw") == 0)
			o->index = NVF_INDEX_HNSW;
		else
			usage_error("--index '%s': expected flat or hnsw", optarg);
		return true;
	case OPT_M:
		o->hnsw_m = (uint32_t)parse_num("--M", optarg, 1, UINT32_MAX);
		break;
	case OPT_EF_CONSTRUCTION:
		o->hnsw_ef_construction = (uint32_t)parse_num("--ef-construction", optarg, 1, UINT32_MAX);
		break;
	case OPT_EF_SEARCH:
		o->hnsw_ef_search = (uint32_t)parse_num("--ef-search", optarg, 1, UINT32_MAX);
		break;
	case OPT_SEED:
		o->seed = parse_num("--seed", optarg, 0, UINT64_MAX);
		break;
	case OPT_QUANTIZE:
		o->hnsw_quantize = parse_quantize(optarg);
		break;
	default:
		return false;
	}
	*hnsw_params = true;
	return true;
}

/* A collection would store them and never use them. */
static void check_index_options(const nvf_index_options *o, bool hnsw_params)
{
	if (hnsw_params && o->index != NVF_INDEX_HNSW)
		usage_error("--M, --ef-construction, --ef-search, --seed and --quantize need --index hnsw");
}

/* " (M 16, ef_construction 200, ...)" for an HNSW collection, nothing for flat. */
static void print_hnsw(const nvf_info *in)
{
	if (in->index == NVF_INDEX_HNSW)
		printf(" (M %" PRIu32 ", ef_construction %" PRIu32 ", ef_search %" PRIu32 ", seed %" PRIu64
		       ", quantize %s)",
		       in->hnsw_m, in->hnsw_ef_construction, in->hnsw_ef_search, in->seed,
		       quantize_name(in->hnsw_quantize));
}

/* ---- create ---- */

static int cmd_create(const struct command *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dim", required_argument, NULL, 'd' },
		{ "metric", required_argument, NULL, 'm' },
		INDEX_OPTIONS,
		{ "page-size", required_argument, NULL, OPT_PAGE_SIZE },
		{ "allow-nonfinite", no_argument, NULL, OPT_ALLOW_NONFINITE },
		{ "nosync", no_argument, NULL, OPT_NOSYNC },
		HELP_OPTION,
		{ NULL, 0, NULL, 0 },
	};
	nvf_create_options o = NVF_CREATE_OPTIONS_INIT;
	nvf_index_options io = NVF_INDEX_OPTIONS_INIT;
	io.index = o.index; /* flat unless --index says otherwise */
	bool hnsw_params = false;
	int c;
	while ((c = getopt_long(argc, argv, ":d:m:h", opts, NULL)) != -1) {
		if (index_option(c, &io, &hnsw_params))
			continue;
		switch (c) {
		case 'd':
			o.dim = (uint32_t)parse_num("--dim", optarg, 1, NVF_MAX_DIM);
			break;
		case 'm':
			if ((o.metric = nvf_metric_parse(optarg)) < 0)
				usage_error("--metric '%s': expected euclidean (l2), inner_product (ip, dot), cosine, "
					    "angular, manhattan (l1), chebyshev (linf), jaccard or hamming",
					    optarg);
			break;
		case OPT_PAGE_SIZE:
			o.page_size = (uint32_t)parse_num("--page-size", optarg, 1, UINT32_MAX);
			break;
		case OPT_ALLOW_NONFINITE:
			o.flags |= NVF_CREATE_ALLOW_NONFINITE;
			break;
		case OPT_NOSYNC:
			o.durability = NVF_DURABILITY_NOSYNC;
			break;
		default:
			common_option(c, argv);
		}
	}
	static const char *const names[] = { "DB" };
	char **pos = positionals(argc, argv, 1, names);
	if (o.dim == 0)
		usage_error("missing --dim N");
	check_index_options(&io, hnsw_params);
	o.index = io.index;
	o.hnsw_m = io.hnsw_m;
	o.hnsw_ef_construction = io.hnsw_ef_construction;
	o.hnsw_ef_search = io.hnsw_ef_search;
	o.seed = io.seed;
	o.hnsw_quantize = io.hnsw_quantize;

	nvf_db *db;
	int rc = nvf_db_create(&db, pos[0], &o);
	if (rc != 0)
		return db_error(pos[0], rc);
	nvf_info info;
	rc = nvf_db_info(db, NULL, &info);
	int crc = nvf_db_close(db);
	if (rc != 0)
		return db_error(pos[0], rc);
	if (crc != 0)
		return error("%s: closing: %s", pos[0], why(crc));
	printf("created %s: dimension %" PRIu32 ", metric %s, index %s", pos[0], info.dim,
	       nvf_metric_name(info.metric), info.index == NVF_INDEX_HNSW ? "hnsw" : "flat");
	print_hnsw(&info);
	printf(", page size %" PRIu32 "\n", info.page_size);
	return EXIT_SUCCESS;
}

/* ---- import ---- */

/* The library validates every vector too, but its message can only name the
 * vector's place in a batch; checking here first names the record in the file. */
static int check_record(const float *v, size_t dim, const nvf_info *info, const char *file, uint64_t rec)
{
	bool finite_only = !(info->flags & NVF_CREATE_ALLOW_NONFINITE);
	for (size_t i = 0; i < dim; i++) {
		if (finite_only && !isfinite(v[i]))
			return error("%s: record %" PRIu64 ": component %zu is %s (the collection rejects non-finite "
				     "values; create it with --allow-nonfinite to allow them)",
				     file, rec, i, isnan(v[i]) ? "NaN" : "infinite");
		if (info->metric == NVF_METRIC_JACCARD && v[i] < 0)
			return error("%s: record %" PRIu64 ": component %zu is negative (%g); jaccard needs "
				     "non-negative vectors",
				     file, rec, i, (double)v[i]);
	}
	return 0;
}

static int cmd_import(const struct command *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "batch", required_argument, NULL, OPT_BATCH },
		HELP_OPTION,
		{ NULL, 0, NULL, 0 },
	};
	int format = VF_AUTO, c;
	size_t batch = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case OPT_FORMAT:
			format = parse_format(optarg);
			break;
		case OPT_BATCH:
			batch = (size_t)parse_num("--batch", optarg, 1, 10000000);
			break;
		default:
			common_option(c, argv);
		}
	}
	static const char *const names[] = { "DB", "FILE" };
	char **pos = positionals(argc, argv, 2, names);
	const char *path = pos[0], *file = pos[1];

	double t0 = now();
	char err[VECFILE_ERRLEN];
	vecfile *vf = NULL;
	nvf_db *db = NULL;
	nvf_txn *txn = NULL;
	float *vecs = NULL;
	uint64_t *ids = NULL, first_id = 0, last_id = 0, done = 0;
	nvf_info info;
	int rc, ret = EXIT_FAILURE;

	if (vecfile_open(&vf, file, format, err) != 0) {
		error("%s", err);
		goto out;
	}
	/* One write transaction for the whole file: an error anywhere in it, even in
	 * the last record, aborts it, and the collection is as it was. */
	if ((rc = nvf_db_open(&db, path, NULL)) != 0 || (rc = nvf_txn_begin(&txn, db, 0)) != 0 ||
	    (rc = nvf_db_info(db, txn, &info)) != 0) {
		db_error(path, rc);
		goto out;
	}
	size_t dim = vecfile_dim(vf);
	if (dim != 0 && dim != info.dim) {
		error("%s: record 0: dimension %zu, the collection has dimension %" PRIu32, file, dim, info.dim);
		goto out;
	}
	/* By default 10000 vectors a call, fewer where they are long (a batch buffer of
	 * at most 256 MiB); an explicit --batch is taken as it is. */
	if (batch == 0) {
		batch = dim ? (256u << 20) / (dim * sizeof(float)) : 1;
		batch = batch < 1 ? 1 : batch > 10000 ? 10000 : batch;
	}
	if (dim != 0 && (!(vecs = malloc(batch * dim * sizeof(*vecs))) || !(ids = malloc(batch * sizeof(*ids))))) {
		error("out of memory for a batch of %zu vectors of dimension %zu", batch, dim);
		goto out;
	}
	for (bool eof = dim == 0; !eof;) {
		size_t n = 0;
		while (n < batch) {
			uint64_t rec = vecfile_record(vf);
			int r = vecfile_read(vf, vecs + n * dim, err);
			if (r < 0) {
				error("%s", err);
				goto out;
			}
			if (r == 0) {
				eof = true;
				break;
			}
			if (check_record(vecs + n * dim, dim, &info, file, rec) != 0)
				goto out;
			n++;
		}
		if (n == 0)
			break;
		if ((rc = nvf_insert_batch(db, txn, vecs, n, dim, NULL, ids)) != 0) {
			error("%s: records %" PRIu64 " to %" PRIu64 ": %s", file, done, done + n - 1, why(rc));
			goto out;
		}
		if (done == 0)
			first_id = ids[0];
		last_id = ids[n - 1];
		done += n;
	}
	rc = done ? nvf_txn_commit(txn) : 0; /* nothing to commit: abort it below */
	if (done)
		txn = NULL; /* freed by commit, whatever it returned */
	if (rc != 0) {
		error("%s: commit: %s", path, why(rc));
		goto out;
	}
	nvf_txn_abort(txn);
	txn = NULL;
	rc = nvf_db_close(db);
	db = NULL;
	if (rc != 0) {
		error("%s: closing: %s", path, why(rc));
		goto out;
	}
	double secs = now() - t0;
	printf("imported %" PRIu64 " vectors from %s", done, file);
	if (done)
		printf(" (ids %" PRIu64 "..%" PRIu64 ")", first_id, last_id);
	printf(" in %.2f s, %.0f vectors/s\n", secs, secs > 0 ? (double)done / secs : 0.0);
	ret = EXIT_SUCCESS;
out:
	nvf_txn_abort(txn);
	nvf_db_close(db);
	vecfile_close(vf);
	free(vecs);
	free(ids);
	return ret;
}

/* ---- search ---- */

static void print_json_result(size_t q, const nvf_result *r, size_t k)
{
	json_t *o = json_object(), *ids = json_array(), *dists = json_array();
	json_object_set_new(o, "query", json_integer((json_int_t)q));
	for (size_t j = 0; j < k; j++) {
		json_array_append_new(ids, json_integer((json_int_t)r[j].id));
		/* JSON has no NaN or infinity; collections that allow them can
		 * produce such distances. */
		json_array_append_new(dists, isfinite(r[j].distance) ? json_real(r[j].distance) : json_null());
	}
	json_object_set_new(o, "ids", ids);
	json_object_set_new(o, "distances", dists);
	/* 9 significant digits give back every float32 exactly. */
	char *s = json_dumps(o, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
	if (s) {
		fputs(s, stdout);
		fputc('\n', stdout);
	}
	free(s);
	json_decref(o);
}

static int cmd_search(const struct command *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "query-file", required_argument, NULL, 'q' },
		{ "k", required_argument, NULL, 'k' },
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "threads", required_argument, NULL, OPT_THREADS },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "ef", required_argument, NULL, OPT_EF },
		{ "exact", no_argument, NULL, OPT_EXACT },
		{ "full-precision", no_argument, NULL, OPT_FULL_PRECISION },
		{ "limit", required_argument, NULL, OPT_LIMIT },
		HELP_OPTION,
		{ NULL, 0, NULL, 0 },
	};
	nvf_search_options so = NVF_SEARCH_OPTIONS_INIT;
	const char *qfile = NULL;
	size_t k = 0;
	uint64_t limit = UINT64_MAX;
	int format = VF_AUTO, c;
	bool json = false;
	while ((c = getopt_long(argc, argv, ":q:k:h", opts, NULL)) != -1) {
		switch (c) {
		case 'q':
			qfile = optarg;
			break;
		case 'k':
			k = (size_t)parse_num("-k", optarg, 1, 1000000);
			break;
		case OPT_FORMAT:
			format = parse_format(optarg);
			break;
		case OPT_THREADS:
			so.threads = (int)parse_num("--threads", optarg, 0, 4096);
			break;
		case OPT_JSON:
			json = true;
			break;
		case OPT_EF:
			so.ef_search = (uint32_t)parse_num("--ef", optarg, 1, UINT32_MAX);
			break;
		case OPT_EXACT:
			so.exact = 1;
			break;
		case OPT_FULL_PRECISION:
			so.full_precision = 1;
			break;
		case OPT_LIMIT:
			limit = parse_num("--limit", optarg, 1, UINT64_MAX);
			break;
		default:
			common_option(c, argv);
		}
	}
	static const char *const names[] = { "DB" };
	char **pos = positionals(argc, argv, 1, names);
	const char *path = pos[0];
	if (!qfile)
		usage_error("missing --query-file FILE");
	if (k == 0)
		usage_error("missing -k K");
	if (so.exact && (so.ef_search || so.full_precision))
		usage_error("--ef and --full-precision tune the graph search; --exact scans instead");

	char err[VECFILE_ERRLEN];
	vecfile *vf = NULL;
	nvf_db *db = NULL;
	nvf_txn *txn = NULL;
	float *qs = NULL;
	nvf_result *res = NULL;
	nvf_info info;
	int rc, ret = EXIT_FAILURE;
	double t0 = now();

	if (vecfile_open(&vf, qfile, format, err) != 0) {
		error("%s", err);
		goto out;
	}
	nvf_open_options oo = NVF_OPEN_OPTIONS_INIT;
	oo.flags = NVF_OPEN_RDONLY;
	/* One read transaction for every query: all see the same state, and so does
	 * the check of k against the count. */
	if ((rc = nvf_db_open(&db, path, &oo)) != 0 || (rc = nvf_txn_begin(&txn, db, NVF_TXN_RDONLY)) != 0 ||
	    (rc = nvf_db_info(db, txn, &info)) != 0) {
		db_error(path, rc);
		goto out;
	}
	if (k > info.count) {
		error("-k %zu: the collection has %" PRIu64 " records", k, info.count);
		goto out;
	}
	if (info.index != NVF_INDEX_HNSW && (so.ef_search || so.full_precision)) {
		error("%s: --ef and --full-precision need an HNSW index; this collection is flat (exact)", path);
		goto out;
	}
	size_t dim = vecfile_dim(vf);
	if (dim != 0 && dim != info.dim) {
		error("%s: record 0: dimension %zu, the collection has dimension %" PRIu32, qfile, dim, info.dim);
		goto out;
	}
	/* Queries go to the library in chunks, so that memory stays bounded however
	 * long the file is. */
	size_t chunk = (64u << 20) / (dim * sizeof(float) + k * sizeof(nvf_result) + 1);
	chunk = chunk < 1 ? 1 : chunk > 16384 ? 16384 : chunk;
	if (dim && (!(qs = malloc(chunk * dim * sizeof(*qs))) || !(res = malloc(chunk * k * sizeof(*res))))) {
		error("out of memory for %zu queries", chunk);
		goto out;
	}
	uint64_t nq = 0;
	for (bool eof = dim == 0; !eof && nq < limit;) {
		size_t n = 0;
		while (n < chunk && nq + n < limit) {
			int r = vecfile_read(vf, qs + n * dim, err);
			if (r < 0) {
				error("%s", err);
				goto out;
			}
			if (r == 0) {
				eof = true;
				break;
			}
			if (check_record(qs + n * dim, dim, &info, qfile, nq + n) != 0)
				goto out;
			n++;
		}
		if (n == 0)
			break;
		if ((rc = nvf_search_batch(db, txn, qs, n, dim, k, &so, res)) != 0) {
			/* The library numbers queries within the chunk. */
			error("%s: queries %" PRIu64 " to %" PRIu64 ": %s", qfile, nq, nq + n - 1, why(rc));
			goto out;
		}
		if (!json && nq == 0)
			printf("%7s %5s %20s %15s\n", "query", "rank", "id", "distance");
		for (size_t i = 0; i < n; i++) {
			const nvf_result *r = res + i * k;
			if (json) {
				print_json_result(nq + i, r, k);
				continue;
			}
			for (size_t j = 0; j < k; j++)
				printf("%7" PRIu64 " %5zu %20" PRIu64 " %15.9g\n", nq + i, j + 1, r[j].id,
				       (double)r[j].distance);
		}
		nq += n;
	}
	if (nq == 0) {
		error("%s: no queries in the file", qfile);
		goto out;
	}
	if (!json) {
		double secs = now() - t0;
		printf("%" PRIu64 " queries, k %zu, %.2f s, %.0f queries/s\n", nq, k, secs,
		       secs > 0 ? (double)nq / secs : 0.0);
	}
	ret = EXIT_SUCCESS;
out:
	nvf_txn_abort(txn);
	nvf_db_close(db);
	vecfile_close(vf);
	free(qs);
	free(res);
	return ret;
}

/* ---- info ---- */

static int open_rdonly(const char *path, nvf_db **db)
{
	nvf_open_options oo = NVF_OPEN_OPTIONS_INIT;
	oo.flags = NVF_OPEN_RDONLY;
	int rc = nvf_db_open(db, path, &oo);
	if (rc != 0)
		return db_error(path, rc);
	return 0;
}

/* Parse the options of info and check: [--json] DB. */
static const char *json_and_db(int argc, char **argv, bool *json)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		HELP_OPTION,
		{ NULL, 0, NULL, 0 },
	};
	int c;
	*json = false;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (c == OPT_JSON)
			*json = true;
		else
			common_option(c, argv);
	}
	static const char *const names[] = { "DB" };
	return positionals(argc, argv, 1, names)[0];
}

static json_t *juint(uint64_t v)
{
	return json_integer((json_int_t)v);
}

static int print_json(json_t *o)
{
	char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (!s)
		return error("out of memory");
	puts(s);
	free(s);
	return 0;
}

static int cmd_info(const struct command *cmd, int argc, char **argv)
{
	bool json;
	const char *path = json_and_db(argc, argv, &json);
	nvf_db *db;
	nvf_info in;
	if (open_rdonly(path, &db) != 0)
		return EXIT_FAILURE;
	int rc = nvf_db_info(db, NULL, &in);
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
		return print_json(o) ? EXIT_FAILURE : EXIT_SUCCESS;
	}
	printf("%-16s%s\n", "path", path);
	printf("%-16s%" PRIu32 "\n", "dimension", in.dim);
	printf("%-16s%s\n", "metric", metric ? metric : "unknown");
	printf("%-16s%s", "index", index);
	print_hnsw(&in);
	printf("\n%-16s%s\n", "non-finite", nonfinite ? "allowed" : "rejected");
	printf("%-16s%" PRIu64 "\n", "count", in.count);
	printf("%-16s%" PRIu64 "\n", "next id", in.next_id);
	printf("%-16s%" PRIu64 "\n", "rows", in.rows);
	printf("%-16s%" PRIu32 "\n", "page size", in.page_size);
	printf("%-16s%" PRIu64 "\n", "pages", in.pages);
	printf("%-16s%" PRIu64 " bytes\n", "file size", in.file_size);
	printf("%-16s%" PRIu64 "\n", "txnid", in.txnid);
	printf("%-16s%" PRIu64 "\n", "snapshots", in.snapshots);
	return EXIT_SUCCESS;
}

/* ---- check ---- */

static int cmd_check(const struct command *cmd, int argc, char **argv)
{
	bool json;
	const char *path = json_and_db(argc, argv, &json);
	nvf_db *db;
	nvf_check_report r;
	if (open_rdonly(path, &db) != 0)
		return EXIT_FAILURE;
	memset(&r, 0, sizeof(r));
	int rc = nvf_check(db, &r);
	nvf_db_close(db);
	/* Damage is reported in full; anything else (I/O, memory) is just an error. */
	if (rc != 0 && rc != NVF_ECORRUPT)
		return db_error(path, rc);
	bool ok = rc == 0;
	if (json) {
		json_t *o = json_object();
		json_object_set_new(o, "path", json_string(path));
		json_object_set_new(o, "ok", json_boolean(ok));
		json_object_set_new(o, "txnid", juint(r.txnid));
		json_object_set_new(o, "pages_total", juint(r.pages_total));
		json_object_set_new(o, "pages_live", juint(r.pages_live));
		json_object_set_new(o, "pages_free", juint(r.pages_free));
		json_object_set_new(o, "pages_pending", juint(r.pages_pending));
		json_object_set_new(o, "pages_snapshot_only", juint(r.pages_snapshot_only));
		json_object_set_new(o, "trees", juint(r.trees));
		json_object_set_new(o, "entries", juint(r.entries));
		json_object_set_new(o, "snapshots", juint(r.snapshots));
		json_object_set_new(o, "warnings", juint(r.warnings));
		json_object_set_new(o, "warning", r.warnings ? json_string(r.warning) : json_null());
		json_object_set_new(o, "problem", ok ? json_null() : json_string(r.problem));
		json_object_set_new(o, "first_bad_page",
				    ok || r.first_bad_page == UINT64_MAX ? json_null() : juint(r.first_bad_page));
		if (print_json(o) != 0)
			return EXIT_FAILURE;
	} else {
		printf("%-16s%s\n", "path", path);
		printf("%-16s%" PRIu64 "\n", "txnid", r.txnid);
		printf("%-16s%" PRIu64 " in use: %" PRIu64 " live, %" PRIu64 " free, %" PRIu64 " pending, %" PRIu64
		       " only in snapshots\n",
		       "pages", r.pages_total, r.pages_live, r.pages_free, r.pages_pending, r.pages_snapshot_only);
		printf("%-16s%" PRIu64 " (%" PRIu64 " entries)\n", "trees", r.trees, r.entries);
		printf("%-16s%" PRIu64 "\n", "snapshots", r.snapshots);
		printf("%-16s%" PRIu32 "%s%s\n", "warnings", r.warnings, r.warnings ? ": " : "",
		       r.warnings ? r.warning : "");
		printf("%-16s%s%s\n", "result", ok ? "ok" : "DAMAGED: ", ok ? "" : r.problem);
	}
	if (!ok)
		return error("%s: %s", path, r.problem[0] ? r.problem : why(rc));
	return EXIT_SUCCESS;
}

/* ---- the table ---- */

/* ---- reindex ---- */

static int cmd_reindex(const struct command *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		INDEX_OPTIONS,
		HELP_OPTION,
		{ NULL, 0, NULL, 0 },
	};
	nvf_index_options o = NVF_INDEX_OPTIONS_INIT;
	bool hnsw_params = false;
	int c;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1)
		if (!index_option(c, &o, &hnsw_params))
			common_option(c, argv);
	static const char *const names[] = { "DB" };
	char **pos = positionals(argc, argv, 1, names);
	check_index_options(&o, hnsw_params);
	nvf_db *db;
	int rc = nvf_db_open(&db, pos[0], NULL);
	if (rc != 0)
		return db_error(pos[0], rc);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = nvf_reindex(db, &o);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	nvf_info info;
	if (rc == 0)
		rc = nvf_db_info(db, NULL, &info);
	int crc = nvf_db_close(db);
	if (rc != 0)
		return db_error(pos[0], rc);
	if (crc != 0)
		return error("%s: closing: %s", pos[0], why(crc));
	printf("reindexed %s: %" PRIu64 " records, index %s", pos[0], info.count,
	       info.index == NVF_INDEX_HNSW ? "hnsw" : "flat");
	print_hnsw(&info);
	printf(", %.2f s\n", (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9);
	return EXIT_SUCCESS;
}

static const struct command commands[] = {
	{ "create", cmd_create, "Create a database file holding an empty collection.",
	  "create DB --dim N [options]\n"
	  "\n"
	  "  -d, --dim N              vector dimension, 1 to 65536 (required)\n"
	  "  -m, --metric NAME        euclidean (default), inner_product, cosine, angular,\n"
	  "                           manhattan, chebyshev, jaccard, hamming; aliases l2, ip,\n"
	  "                           dot, l1, linf\n"
	  "      --index flat|hnsw    index type (default flat)\n"
	  "      --M N                HNSW links per node (default 16)\n"
	  "      --ef-construction N  HNSW build beam width (default 200)\n"
	  "      --ef-search N        HNSW default search beam width (default 64)\n"
	  "      --seed N             HNSW level generator seed (default 42)\n"
	  "      --quantize Q         what the HNSW walk reads: sq4 (4-bit copies beside\n"
	  "                           the links; euclidean, inner product, cosine,\n"
	  "                           angular), none (float32), auto (default: sq4 where\n"
	  "                           the metric allows)\n"
	  "      --page-size N        page size, a power of two 512 to 65536 (default 4096)\n"
	  "      --allow-nonfinite    accept NaN and infinite components\n"
	  "      --nosync             do not fsync the new file\n"
	  "  -h, --help               show this help" },
	{ "import", cmd_import, "Insert every vector of a file, all or nothing, with ids assigned in file order.",
	  "import DB FILE [options]\n"
	  "\n"
	  "FILE is .fvecs, .bvecs, .npy (2-D, <f4 <f8 |u1 <i4) or IDX (.idx, *-ubyte),\n"
	  "optionally gzip-compressed. Every record is checked and the whole file goes in\n"
	  "one transaction: a bad record anywhere imports nothing.\n"
	  "\n"
	  "      --format F           fvecs, bvecs, npy or idx (default: from the name)\n"
	  "      --batch N            vectors per insert call (default 10000, fewer\n"
	  "                           if that would take more than 256 MiB)\n"
	  "  -h, --help               show this help" },
	{ "search", cmd_search, "k nearest neighbours of every vector of a query file.",
	  "search DB --query-file FILE -k K [options]\n"
	  "\n"
	  "  -q, --query-file FILE    queries, in any format import reads\n"
	  "  -k, --k K                neighbours per query (1 to the collection's count)\n"
	  "      --format F           format of the query file (default: from the name)\n"
	  "      --limit N            use only the first N queries\n"
	  "      --threads N          search threads (default 0: all cores)\n"
	  "      --ef N               HNSW search beam width (default: the collection's)\n"
	  "      --exact              scan every vector even if there is an index\n"
	  "      --full-precision     walk the HNSW graph on float32 vectors, not its\n"
	  "                           4-bit copies (higher recall at a small --ef)\n"
	  "      --json               one line per query:\n"
	  "                           {\"query\": i, \"ids\": [...], \"distances\": [...]}\n"
	  "  -h, --help               show this help" },
	{ "info", cmd_info, "Describe a database: collection settings, counts, pages, file size.",
	  "info DB [--json]\n"
	  "\n"
	  "      --json               print a JSON object\n"
	  "  -h, --help               show this help" },
	{ "reindex", cmd_reindex, "Rebuild the index: flat to HNSW, back, or new HNSW parameters.",
	  "reindex DB [options]\n"
	  "\n"
	  "One transaction: readers see the old index until it commits, and a crash\n"
	  "leaves the old one.\n"
	  "\n"
	  "      --index flat|hnsw    the new index (default hnsw)\n"
	  "      --M N                HNSW links per node (default 16)\n"
	  "      --ef-construction N  HNSW build beam width (default 200)\n"
	  "      --ef-search N        HNSW default search beam width (default 64)\n"
	  "      --seed N             HNSW level generator seed (default 42)\n"
	  "      --quantize Q         what the HNSW walk reads: sq4 (4-bit copies beside\n"
	  "                           the links; euclidean, inner product, cosine,\n"
	  "                           angular), none (float32), auto (default: sq4 where\n"
	  "                           the metric allows)\n"
	  "  -h, --help               show this help" },
	{ "check", cmd_check, "Verify every checksum and structural invariant; exit 1 on damage.",
	  "check DB [--json]\n"
	  "\n"
	  "      --json               print the report as a JSON object\n"
	  "  -h, --help               show this help" },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static void print_main_usage(void)
{
	printf("usage: nvf-tool COMMAND [options] [arguments]\n"
	       "       nvf-tool help COMMAND | nvf-tool COMMAND --help\n"
	       "\n"
	       "Create, fill, search and inspect NusterDB (.nvf) vector databases.\n"
	       "\n"
	       "commands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		printf("  %-8s %s\n", commands[i].name, commands[i].summary);
	printf("\n"
	       "Errors are one line on stderr with exit status 1; bad usage exits with 2.\n");
}

static int finish(int status)
{
	/* Output is buffered: a failed write (a full disk, a closed pipe) shows here. */
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "nvf-tool: %s%swriting the output: %s\n", current ? current->name : "",
			current ? ": " : "", strerror(errno));
		return EXIT_FAILURE;
	}
	return status;
}

int main(int argc, char **argv)
{
	static char outbuf[1 << 16];
	setvbuf(stdout, outbuf, _IOFBF, sizeof(outbuf));
	opterr = 0;

	if (argc < 2)
		usage_error("missing command");
	const char *a = argv[1];
	if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0 || (strcmp(a, "help") == 0 && argc == 2)) {
		print_main_usage();
		return finish(EXIT_SUCCESS);
	}
	if (strcmp(a, "--version") == 0) {
		printf("nvf-tool %d.%d.%d (%s kernels)\n", NVF_VERSION_MAJOR, NVF_VERSION_MINOR, NVF_VERSION_PATCH,
		       nvf_simd_level());
		return finish(EXIT_SUCCESS);
	}
	if (strcmp(a, "help") == 0) {
		if (argc > 3)
			usage_error("help takes one command name");
		const struct command *cmd = find_command(argv[2]);
		if (!cmd)
			usage_error("unknown command '%s'", argv[2]);
		print_usage(cmd, stdout);
		return finish(EXIT_SUCCESS);
	}
	if (a[0] == '-')
		usage_error("unknown option '%s' before the command", a);
	current = find_command(a);
	if (!current)
		usage_error("unknown command '%s'", a);
	/* The command sees itself as argv[0], as getopt_long expects. */
	return finish(current->run(current, argc - 1, argv + 1));
}
