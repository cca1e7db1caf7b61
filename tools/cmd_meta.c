/* nvf-tool meta and tag: read and change one record's document and tags.
 *   meta get DB ID [--record] [--vector]
 *   meta set DB ID JSON|-        (null removes the document)
 *   meta patch DB ID JSON|-      (RFC 7386 merge patch)
 *   meta train DB [--dict-size N]
 *   tag add|remove DB ID TAG...
 *   tag list DB ID */
#include "tool.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* JSON given on the command line, or read from stdin for "-". */
static char *json_arg(const char *arg)
{
	if (strcmp(arg, "-") != 0)
		return strdup(arg);
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	for (size_t r; buf && (r = fread(buf + n, 1, cap - n - 1, stdin)) > 0;) {
		n += r;
		if (n + 1 == cap) {
			char *b = realloc(buf, cap *= 2);
			if (!b) {
				free(buf);
				return NULL;
			}
			buf = b;
		}
	}
	if (buf)
		buf[n] = 0;
	return buf;
}

static int meta_get(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "record", no_argument, NULL, OPT_RECORD },
		{ "vector", no_argument, NULL, OPT_VECTOR },
		HELP_OPTION,
		{ NULL, 0, NULL, 0 },
	};
	bool record = false, vector = false;
	int c;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (c == OPT_RECORD)
			record = true;
		else if (c == OPT_VECTOR)
			vector = record = true;
		else
			common_option(c, argv);
	}
	static const char *const names[] = { "DB", "ID" };
	char **pos = positionals(argc, argv, 2, names);
	uint64_t id = parse_id(pos[1]);
	nvf_db *db;
	if (open_rdonly(pos[0], &db) != 0)
		return EXIT_ERROR;
	char *out = NULL;
	int rc = record ? nvf_record_json(db, NULL, id, vector ? NVF_RECORD_VECTOR : 0, &out)
			: nvf_meta_get(db, NULL, id, &out);
	nvf_db_close(db);
	if (rc != 0)
		return db_error(pos[0], rc);
	puts(out);
	nvf_free(out);
	return EXIT_SUCCESS;
}

/* meta set / meta patch: one call in its own transaction. */
static int meta_change(int argc, char **argv, bool patch)
{
	help_only(argc, argv);
	static const char *const names[] = { "DB", "ID", "JSON" };
	char **pos = positionals(argc, argv, 3, names);
	uint64_t id = parse_id(pos[1]);
	char *json = json_arg(pos[2]);
	if (!json)
		return error("out of memory reading the document");
	nvf_db *db;
	int rc = tool_db_open(&db, pos[0]);
	if (rc == 0) {
		rc = patch ? nvf_meta_patch(db, NULL, id, json) : nvf_meta_set(db, NULL, id, json);
		int crc = nvf_db_close(db);
		rc = rc ? rc : crc;
	}
	free(json);
	if (rc != 0)
		return db_error(pos[0], rc);
	return EXIT_SUCCESS;
}

static int meta_train(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dict-size", required_argument, NULL, OPT_DICT_SIZE },
		HELP_OPTION,
		{ NULL, 0, NULL, 0 },
	};
	size_t size = 0;
	int c;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (c == OPT_DICT_SIZE)
			size = (size_t)parse_num("--dict-size", optarg, 1024, 16u << 20);
		else
			common_option(c, argv);
	}
	static const char *const names[] = { "DB" };
	char **pos = positionals(argc, argv, 1, names);
	nvf_db *db;
	nvf_info info;
	int rc = tool_db_open(&db, pos[0]);
	if (rc == 0) {
		if ((rc = nvf_doc_dict_train(db, NULL, size)) == 0)
			rc = nvf_db_info(db, NULL, &info);
		int crc = nvf_db_close(db);
		rc = rc ? rc : crc;
	}
	if (rc != 0)
		return db_error(pos[0], rc);
	printf("trained a dictionary of %" PRIu32 " bytes; %" PRIu64 " documents take %" PRIu64 " bytes (%" PRIu64
	       " before compression)\n",
	       info.dict_bytes, info.docs, info.doc_bytes, info.doc_raw_bytes);
	return EXIT_SUCCESS;
}

static int cmd_meta(const struct command *cmd, int argc, char **argv)
{
	static const char *const words[] = { "sub-command (get, set, patch or train)", "get", "set", "patch", "train", NULL };
	const char *w = sub_command(argc, argv, words);
	if (strcmp(w, "get") == 0)
		return meta_get(argc - 1, argv + 1);
	if (strcmp(w, "train") == 0)
		return meta_train(argc - 1, argv + 1);
	return meta_change(argc - 1, argv + 1, strcmp(w, "patch") == 0);
}

static int cmd_tag(const struct command *cmd, int argc, char **argv)
{
	static const char *const words[] = { "sub-command (add, remove or list)", "add", "remove", "list", NULL };
	const char *w = sub_command(argc, argv, words);
	argc--;
	argv++;
	help_only(argc, argv);
	bool list = strcmp(w, "list") == 0;
	static const char *const names[] = { "DB", "ID", "TAG" };
	if (argc - optind < (list ? 2 : 3))
		usage_error("missing %s", names[argc - optind]);
	if (list && argc - optind > 2)
		usage_error("unexpected argument '%s'", argv[optind + 2]);
	const char *path = argv[optind];
	uint64_t id = parse_id(argv[optind + 1]);
	nvf_db *db;
	int rc;
	if (list) {
		if (open_rdonly(path, &db) != 0)
			return EXIT_ERROR;
		char *out = NULL;
		rc = nvf_record_json(db, NULL, id, 0, &out);
		nvf_db_close(db);
		if (rc != 0)
			return db_error(path, rc);
		json_t *o = json_loads(out, 0, NULL);
		nvf_free(out);
		size_t i;
		json_t *t;
		json_array_foreach(json_object_get(o, "tags"), i, t)
			puts(json_string_value(t));
		json_decref(o);
		return EXIT_SUCCESS;
	}
	/* Every tag in one transaction: all of them or none. */
	nvf_txn *txn = NULL;
	if ((rc = tool_db_open(&db, path)) != 0)
		return db_error(path, rc);
	rc = nvf_txn_begin(&txn, db, 0);
	bool add = strcmp(w, "add") == 0;
	for (int i = optind + 2; i < argc && rc == 0; i++)
		rc = add ? nvf_tag_add(db, txn, id, argv[i]) : nvf_tag_remove(db, txn, id, argv[i]);
	if (rc == 0)
		rc = nvf_txn_commit(txn);
	else
		nvf_txn_abort(txn);
	int crc = nvf_db_close(db);
	if (rc != 0 || crc != 0)
		return db_error(path, rc ? rc : crc);
	return EXIT_SUCCESS;
}

const struct command cmd_meta_def = { "meta", cmd_meta, "Read or change the document of a record.",
	  "meta get|set|patch|train DB ...\n"
	  "\n"
	  "  meta get DB ID           print the record's document (null if none)\n"
	  "      --record             the whole record: id, version, created_at,\n"
	  "                           updated_at (microseconds), tags, meta\n"
	  "      --vector             --record with the vector too\n"
	  "  meta set DB ID JSON      replace the document (a JSON object; null removes it;\n"
	  "                           - reads it from stdin)\n"
	  "  meta patch DB ID JSON    merge a JSON merge patch (RFC 7386: null removes a key)\n"
	  "  meta train DB            train a new zstd dictionary (codec zstd-dict) and\n"
	  "                           recompress every document with it\n"
	  "      --dict-size N        the dictionary's size limit (default: a 32nd of the\n"
	  "                           documents sampled, 32 to 256 KiB)\n"
	  "  -h, --help               show this help" };

const struct command cmd_tag_def = { "tag", cmd_tag, "Add, remove or list the tags of a record.",
	  "tag add|remove|list DB ID [TAG...]\n"
	  "\n"
	  "  tag add DB ID TAG...     add tags (a set: adding one it has changes nothing)\n"
	  "  tag remove DB ID TAG...  remove tags\n"
	  "  tag list DB ID           print its tags, one a line\n"
	  "  -h, --help               show this help" };
