/* nvf-tool snapshot: named snapshots of a database.
 *   snapshot create DB [NAME] [--doc JSON]
 *   snapshot list DB [--json]
 *   snapshot delete DB NAME
 *   snapshot restore DB NAME
 *   snapshot diff DB FROM [TO] */
#include "tool.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int snap_list(int argc, char **argv)
{
	bool json;
	const char *path = json_and_db(argc, argv, &json);
	nvf_db *db;
	if (open_rdonly(path, &db) != 0)
		return EXIT_ERROR;
	nvf_snapshot_info *s = NULL;
	size_t n = 0;
	int rc = nvf_snapshot_list(db, NULL, &s, &n);
	nvf_db_close(db);
	if (rc != 0)
		return db_error(path, rc);
	if (json) {
		json_t *a = json_array();
		for (size_t i = 0; i < n; i++) {
			json_t *o = json_object();
			json_object_set_new(o, "name", json_string(s[i].name));
			json_object_set_new(o, "txnid", juint(s[i].txnid));
			json_object_set_new(o, "created_at", json_integer(s[i].created_us));
			json_object_set_new(o, "records", juint(s[i].count));
			json_object_set_new(o, "bytes_only", juint(s[i].bytes_only));
			json_t *d = s[i].doc ? json_loads(s[i].doc, 0, NULL) : NULL;
			json_object_set_new(o, "doc", d ? d : json_null());
			json_array_append_new(a, o);
		}
		nvf_free(s);
		return print_json(a) ? EXIT_ERROR : EXIT_SUCCESS;
	}
	if (n)
		printf("%-24s %10s %-20s %12s %14s  %s\n", "name", "txnid", "created (UTC)", "records", "bytes only", "doc");
	for (size_t i = 0; i < n; i++) {
		time_t t = (time_t)(s[i].created_us / 1000000);
		struct tm tm;
		char when[32];
		gmtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		printf("%-24s %10" PRIu64 " %-20s %12" PRIu64 " %14" PRIu64 "  %s\n", s[i].name, s[i].txnid, when,
		       s[i].count, s[i].bytes_only, s[i].doc ? s[i].doc : "");
	}
	nvf_free(s);
	return EXIT_SUCCESS;
}

static int snap_create(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "doc", required_argument, NULL, OPT_DOC },
		HELP_OPTION,
		{ NULL, 0, NULL, 0 },
	};
	const char *doc = NULL;
	int c;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (c == OPT_DOC)
			doc = optarg;
		else
			common_option(c, argv);
	}
	if (optind >= argc)
		usage_error("missing DB");
	if (argc - optind > 2)
		usage_error("unexpected argument '%s'", argv[optind + 2]);
	const char *path = argv[optind], *name = argc - optind == 2 ? argv[optind + 1] : NULL;
	nvf_db *db;
	int rc = tool_db_open(&db, path);
	if (rc != 0)
		return db_error(path, rc);
	char *made = NULL;
	rc = nvf_snapshot_create(db, NULL, name, doc, &made);
	nvf_txn *t;
	uint64_t txnid = 0;
	if (rc == 0 && nvf_txn_begin_snapshot(&t, db, made) == 0) {
		txnid = nvf_txn_id(t);
		nvf_txn_abort(t);
	}
	int crc = nvf_db_close(db);
	if (rc != 0 || crc != 0)
		return db_error(path, rc ? rc : crc);
	printf("snapshot %s of %s: state %" PRIu64 "\n", made, path, txnid);
	nvf_free(made);
	return EXIT_SUCCESS;
}

static int snap_named(int argc, char **argv, bool restore)
{
	help_only(argc, argv);
	static const char *const names[] = { "DB", "NAME" };
	char **pos = positionals(argc, argv, 2, names);
	nvf_db *db;
	int rc = tool_db_open(&db, pos[0]);
	if (rc != 0)
		return db_error(pos[0], rc);
	rc = restore ? nvf_snapshot_restore(db, pos[1]) : nvf_snapshot_delete(db, NULL, pos[1]);
	uint64_t n = 0;
	if (rc == 0 && restore)
		rc = nvf_count(db, NULL, &n);
	int crc = nvf_db_close(db);
	if (rc != 0 || crc != 0)
		return db_error(pos[0], rc ? rc : crc);
	if (restore)
		printf("restored %s to snapshot %s: %" PRIu64 " records\n", pos[0], pos[1], n);
	else
		printf("deleted snapshot %s of %s\n", pos[1], pos[0]);
	return EXIT_SUCCESS;
}

/* FROM and TO: a snapshot's name, or "-" for the current state. */
static int begin_state(nvf_db *db, const char *name, nvf_txn **t)
{
	if (strcmp(name, "-") == 0)
		return nvf_txn_begin(t, db, NVF_TXN_RDONLY);
	return nvf_txn_begin_snapshot(t, db, name);
}

static int snap_diff(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		HELP_OPTION,
		{ NULL, 0, NULL, 0 },
	};
	bool json = false;
	int c;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (c == OPT_JSON)
			json = true;
		else
			common_option(c, argv);
	}
	if (argc - optind < 2)
		usage_error("missing %s", argc - optind < 1 ? "DB" : "FROM");
	if (argc - optind > 3)
		usage_error("unexpected argument '%s'", argv[optind + 3]);
	const char *path = argv[optind], *from = argv[optind + 1], *to = argc - optind == 3 ? argv[optind + 2] : "-";
	nvf_db *db;
	if (open_rdonly(path, &db) != 0)
		return EXIT_ERROR;
	nvf_txn *a = NULL, *b = NULL;
	nvf_diff_entry *d = NULL;
	size_t n = 0;
	int rc = begin_state(db, from, &a);
	if (rc == 0)
		rc = begin_state(db, to, &b);
	if (rc == 0)
		rc = nvf_diff(db, a, b, &d, &n);
	nvf_txn_abort(a);
	nvf_txn_abort(b);
	nvf_db_close(db);
	if (rc != 0)
		return db_error(path, rc);
	uint64_t counts[4] = {0};
	for (size_t i = 0; i < n; i++) {
		const char *what = d[i].what & NVF_DIFF_ADDED ? "added" : d[i].what & NVF_DIFF_REMOVED ? "removed" : "changed";
		counts[d[i].what & NVF_DIFF_ADDED ? 0 : d[i].what & NVF_DIFF_REMOVED ? 1 : 2]++;
		bool v = d[i].what & NVF_DIFF_VECTOR, m = d[i].what & NVF_DIFF_DOC;
		if (json)
			printf("{\"id\": %" PRIu64 ", \"what\": \"%s\", \"vector\": %s, \"doc\": %s}\n", d[i].id, what,
			       v ? "true" : "false", m ? "true" : "false");
		else
			printf("%-8s %" PRIu64 "%s%s\n", what, d[i].id, v ? " vector" : "", m ? " doc" : "");
	}
	nvf_free(d);
	if (!json)
		printf("%" PRIu64 " added, %" PRIu64 " removed, %" PRIu64 " changed\n", counts[0], counts[1],
			counts[2]);
	return EXIT_SUCCESS;
}

static int cmd_snapshot(const struct command *cmd, int argc, char **argv)
{
	(void)cmd;
	static const char *const words[] = { "sub-command (create, list, delete, restore or diff)", "create", "list",
					     "delete", "restore", "diff", NULL };
	const char *w = sub_command(argc, argv, words);
	if (strcmp(w, "create") == 0)
		return snap_create(argc - 1, argv + 1);
	if (strcmp(w, "list") == 0)
		return snap_list(argc - 1, argv + 1);
	if (strcmp(w, "diff") == 0)
		return snap_diff(argc - 1, argv + 1);
	return snap_named(argc - 1, argv + 1, strcmp(w, "restore") == 0);
}

const struct command cmd_snapshot_def = { "snapshot", cmd_snapshot, "Create, list, delete, restore or compare named snapshots.",
	  "snapshot create|list|delete|restore|diff DB [NAME] [options]\n"
	  "\n"
	  "A snapshot keeps a committed state readable under a name, at no copying cost;\n"
	  "it holds back only the pages that state can see. `search --snapshot NAME`\n"
	  "searches it.\n"
	  "\n"
	  "  snapshot create DB [NAME]  name the last committed state (default name\n"
	  "                           snapshot-N)\n"
	  "      --doc JSON           a JSON object describing it (at most 16 KiB)\n"
	  "  snapshot list DB         name, state, creation time, records, the bytes only\n"
	  "                           it keeps (what deleting it frees), its document\n"
	  "      --json               as a JSON array\n"
	  "  snapshot delete DB NAME  delete it (its pages become free)\n"
	  "  snapshot restore DB NAME make its state the current one, as one commit (the\n"
	  "                           snapshot stays)\n"
	  "  snapshot diff DB FROM [TO] the ids that differ from state FROM to TO (a\n"
	  "                           snapshot's name, or - for the current state, the\n"
	  "                           default TO): added, removed, changed (vector, doc),\n"
	  "                           then the counts\n"
	  "      --json               one JSON object a line: {\"id\", \"what\", \"vector\", \"doc\"}\n"
	  "  -h, --help               show this help\n" };
