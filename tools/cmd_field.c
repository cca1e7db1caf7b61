/* nvf-tool field: declare, drop and list field indexes.
 *   field add DB PATH --type string|int|float|bool|timestamp|tags
 *   field drop DB PATH
 *   field list DB [--json] */
#include "tool.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static int field_list(int argc, char **argv)
{
	bool json;
	const char *path = json_and_db(argc, argv, &json);
	nvf_db *db;
	if (open_rdonly(path, &db) != 0)
		return EXIT_ERROR;
	nvf_field_info *f = NULL;
	size_t n = 0;
	int rc = nvf_field_list(db, NULL, &f, &n);
	nvf_db_close(db);
	if (rc != 0)
		return db_error(path, rc);
	if (json) {
		json_t *a = json_array();
		for (size_t i = 0; i < n; i++) {
			json_t *o = json_object();
			json_object_set_new(o, "path", json_string(f[i].path));
			json_object_set_new(o, "type", json_string(nvf_field_type_name(f[i].type)));
			json_object_set_new(o, "keys", juint(f[i].keys));
			json_object_set_new(o, "entries", juint(f[i].entries));
			json_object_set_new(o, "unindexed", juint(f[i].unindexed));
			json_array_append_new(a, o);
		}
		nvf_free(f);
		return print_json(a) ? EXIT_ERROR : EXIT_SUCCESS;
	}
	for (size_t i = 0; i < n; i++)
		printf("%-30s %-9s %" PRIu64 " values, %" PRIu64 " entries, %" PRIu64 " unindexed\n", f[i].path,
		       nvf_field_type_name(f[i].type), f[i].keys, f[i].entries, f[i].unindexed);
	nvf_free(f);
	return EXIT_SUCCESS;
}

static int field_change(int argc, char **argv, bool add)
{
	static const struct option opts[] = {
		{ "type", required_argument, NULL, OPT_TYPE },
		HELP_OPTION,
		{ NULL, 0, NULL, 0 },
	};
	int type = 0, c;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (c == OPT_TYPE && add) {
			if ((type = nvf_field_type_parse(optarg)) < 0)
				usage_error("--type '%s': expected string, int, float, bool, timestamp or tags", optarg);
		} else {
			common_option(c, argv);
		}
	}
	static const char *const names[] = { "DB", "PATH" };
	char **pos = positionals(argc, argv, 2, names);
	if (add && !type)
		usage_error("missing --type (string, int, float, bool, timestamp or tags)");
	nvf_db *db;
	int rc = tool_db_open(&db, pos[0]);
	if (rc != 0)
		return db_error(pos[0], rc);
	double t0 = now();
	rc = add ? nvf_field_add(db, NULL, pos[1], type) : nvf_field_drop(db, NULL, pos[1]);
	int crc = nvf_db_close(db);
	if (rc != 0 || crc != 0)
		return db_error(pos[0], rc ? rc : crc);
	if (add)
		printf("indexed %s as %s in %.2f s\n", pos[1], nvf_field_type_name(type), now() - t0);
	return EXIT_SUCCESS;
}

static int cmd_field(const struct command *cmd, int argc, char **argv)
{
	static const char *const words[] = { "sub-command (add, drop or list)", "add", "drop", "list", NULL };
	const char *w = sub_command(argc, argv, words);
	if (strcmp(w, "list") == 0)
		return field_list(argc - 1, argv + 1);
	return field_change(argc - 1, argv + 1, strcmp(w, "add") == 0);
}

const struct command cmd_field_def = { "field", cmd_field, "Add, drop or list the field indexes of a collection.",
	  "field add|drop|list DB [PATH] [options]\n"
	  "\n"
	  "An index on a path answers filters on it without reading documents, and lets\n"
	  "the planner count the records a filter passes. It is built over the existing\n"
	  "records at once and kept up to date by every write. Results are the same with\n"
	  "or without it.\n"
	  "\n"
	  "  field add DB PATH --type T  index PATH (\"price\", \"a.b\", \"$.id\", tags); T is\n"
	  "                           string, int, float, bool, timestamp (ISO-8601\n"
	  "                           strings) or tags (arrays of strings, or the record's\n"
	  "                           tags)\n"
	  "  field drop DB PATH       drop the index on PATH\n"
	  "  field list DB [--json]   the indexes, their values and entries\n"
	  "  -h, --help               show this help" };
