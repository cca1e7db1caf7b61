/* nvf-tool get, put, delete: one record at a time.
 *   get DB ID [--no-vector]
 *   put DB ID [--vector JSON] [--meta JSON|-] [--tags A,B]
 *   delete DB ID... */
#include "tool.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmd_get(const struct command *cmd, int argc, char **argv)
{
	(void)cmd;
	static const struct option opts[] = {
		{ "no-vector", no_argument, NULL, OPT_VECTOR },
		HELP_OPTION,
		{ NULL, 0, NULL, 0 },
	};
	unsigned flags = NVF_RECORD_VECTOR;
	int c;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (c == OPT_VECTOR)
			flags = 0;
		else
			common_option(c, argv);
	}
	static const char *const names[] = { "DB", "ID" };
	char **pos = positionals(argc, argv, 2, names);
	uint64_t id = parse_id(pos[1]);
	nvf_db *db;
	if (open_rdonly(pos[0], &db) != 0)
		return EXIT_ERROR;
	char *s;
	int rc = nvf_record_json(db, NULL, id, flags, &s);
	nvf_db_close(db);
	if (rc != 0)
		return db_error(pos[0], rc);
	puts(s);
	nvf_free(s);
	return EXIT_SUCCESS;
}

/* A JSON array of dim numbers. */
static float *parse_vector(const char *arg, size_t dim)
{
	json_error_t e;
	json_t *a = json_loads(arg, JSON_DECODE_ANY, &e);
	if (!a || !json_is_array(a)) {
		json_decref(a);
		usage_error("--vector: expected a JSON array of numbers, as [0.5, 1, -2]");
	}
	if (json_array_size(a) != dim) {
		size_t n = json_array_size(a);
		json_decref(a);
		error("--vector has %zu components, the collection has dimension %zu", n, dim);
		exit(EXIT_ERROR);
	}
	float *v = malloc(dim * sizeof(float));
	for (size_t i = 0; v && i < dim; i++) {
		json_t *x = json_array_get(a, i);
		if (!json_is_number(x)) {
			json_decref(a);
			usage_error("--vector: component %zu is not a number", i);
		}
		v[i] = (float)json_number_value(x);
	}
	json_decref(a);
	return v;
}

static int cmd_put(const struct command *cmd, int argc, char **argv)
{
	(void)cmd;
	static const struct option opts[] = {
		{ "vector", required_argument, NULL, OPT_VECTOR_ARG },
		{ "meta", required_argument, NULL, OPT_META },
		{ "tags", required_argument, NULL, OPT_TAGS },
		HELP_OPTION,
		{ NULL, 0, NULL, 0 },
	};
	const char *vec = NULL, *meta = NULL, *tags = NULL;
	int c;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (c == OPT_VECTOR_ARG)
			vec = optarg;
		else if (c == OPT_META)
			meta = optarg;
		else if (c == OPT_TAGS)
			tags = optarg;
		else
			common_option(c, argv);
	}
	static const char *const names[] = { "DB", "ID" };
	char **pos = positionals(argc, argv, 2, names);
	uint64_t id = parse_id(pos[1]);
	if (!vec && !meta && !tags)
		usage_error("nothing to put: give --vector, --meta and/or --tags");
	nvf_db *db;
	int rc = tool_db_open(&db, pos[0]);
	if (rc != 0)
		return db_error(pos[0], rc);
	nvf_info info;
	float *v = NULL;
	if ((rc = nvf_db_info(db, NULL, &info)) == 0 && vec)
		v = parse_vector(vec, info.dim);
	/* All in one transaction: a bad document leaves the vector unchanged too. */
	nvf_txn *t = NULL;
	bool created = false, missing = false;
	if (rc == 0)
		rc = nvf_txn_begin(&t, db, 0);
	if (rc == 0) {
		int has = nvf_contains(db, t, id);
		missing = has == 0 && !v;
		created = has == 0 && v;
		if (has < 0)
			rc = has;
		else if (missing)
			rc = NVF_ENOTFOUND;
		else if (v)
			rc = nvf_upsert(db, t, id, v, info.dim);
	}
	if (rc == 0 && meta)
		rc = nvf_meta_set(db, t, id, meta);
	if (rc == 0 && tags) {
		/* Comma-separated; an empty string clears them. */
		char *copy = strdup(tags), *save = NULL;
		const char *list[1024];
		size_t n = 0;
		for (char *tok = strtok_r(copy, ",", &save); tok && n < 1024; tok = strtok_r(NULL, ",", &save))
			list[n++] = tok;
		rc = nvf_tags_set(db, t, id, list, n);
		free(copy);
	}
	if (t)
		rc = rc == 0 ? nvf_txn_commit(t) : (nvf_txn_abort(t), rc);
	free(v);
	int crc = nvf_db_close(db);
	if (missing)
		return error("%s: no record with id %" PRIu64 " (give --vector to add it)", pos[0], id);
	if (rc != 0 || crc != 0)
		return db_error(pos[0], rc ? rc : crc);
	printf("%s record %" PRIu64 " in %s\n", created ? "added" : "updated", id, pos[0]);
	return EXIT_SUCCESS;
}

static int cmd_delete(const struct command *cmd, int argc, char **argv)
{
	(void)cmd;
	help_only(argc, argv);
	if (optind >= argc)
		usage_error("missing DB");
	if (optind + 1 >= argc)
		usage_error("missing ID");
	const char *path = argv[optind];
	size_t n = (size_t)(argc - optind - 1);
	uint64_t *ids = malloc(n * sizeof(uint64_t));
	for (size_t i = 0; i < n; i++)
		ids[i] = parse_id(argv[optind + 1 + i]);
	nvf_db *db;
	int rc = tool_db_open(&db, path);
	if (rc != 0) {
		free(ids);
		return db_error(path, rc);
	}
	/* One transaction: an id that does not exist deletes nothing. */
	nvf_txn *t;
	if ((rc = nvf_txn_begin(&t, db, 0)) == 0) {
		for (size_t i = 0; i < n && rc == 0; i++)
			rc = nvf_delete(db, t, ids[i]);
		rc = rc == 0 ? nvf_txn_commit(t) : (nvf_txn_abort(t), rc);
	}
	free(ids);
	int crc = nvf_db_close(db);
	if (rc != 0 || crc != 0)
		return db_error(path, rc ? rc : crc);
	printf("deleted %zu record%s from %s\n", n, n == 1 ? "" : "s", path);
	return EXIT_SUCCESS;
}

const struct command cmd_get_def = { "get", cmd_get, "Print one record: id, vector, document, tags, times, version.",
	  "get DB ID [options]\n"
	  "\n"
	  "Prints the record as one JSON object: id, version, created_at, updated_at (UTC\n"
	  "microseconds), tags, meta (the document or null) and vector.\n"
	  "\n"
	  "      --no-vector          leave the vector out\n"
	  "  -h, --help               show this help\n" };

const struct command cmd_put_def = { "put", cmd_put, "Add or change one record: its vector, document, tags.",
	  "put DB ID [--vector JSON] [--meta JSON] [--tags A,B]\n"
	  "\n"
	  "All in one transaction. A new id needs --vector.\n"
	  "\n"
	  "      --vector JSON        the vector, a JSON array of numbers\n"
	  "      --meta JSON          the document, a JSON object (null removes it)\n"
	  "      --tags A,B           the tags, comma-separated (\"\" removes them)\n"
	  "  -h, --help               show this help\n" };

const struct command cmd_delete_def = { "delete", cmd_delete, "Delete records, all or none.",
	  "delete DB ID...\n"
	  "\n"
	  "Deletes every ID in one transaction: if one does not exist, none is deleted.\n"
	  "\n"
	  "  -h, --help               show this help\n" };
