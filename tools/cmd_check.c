/* nvf-tool check: every checksum and invariant, exit 1 on damage (3 on other errors). */
#include "tool.h"
#include "vecfile.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


static int cmd_check(const struct command *cmd, int argc, char **argv)
{
	bool json;
	const char *path = json_and_db(argc, argv, &json);
	nvf_db *db;
	nvf_check_report r;
	nvf_open_options oo = tool_open_options(NVF_OPEN_RDONLY);
	int orc = nvf_db_open(&db, path, &oo);
	if (orc != 0) {
		/* Damage that keeps the file from opening is damage too. */
		db_error(path, orc);
		return orc == NVF_ECORRUPT ? EXIT_DAMAGE : EXIT_ERROR;
	}
	memset(&r, 0, sizeof(r));
	progress_watch *w = progress_watch_start("check", NULL, 0);
	int rc = nvf_check(db, &r);
	progress_watch_stop(w);
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
			return EXIT_ERROR;
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
	if (!ok) {
		error("%s: %s", path, r.problem[0] ? r.problem : why(rc));
		return EXIT_DAMAGE;
	}
	return EXIT_SUCCESS;
}

const struct command cmd_check_def = { "check", cmd_check, "Verify every checksum and structural invariant; exit 1 on damage.",
	  "check DB [--json]\n"
	  "\n"
	  "      --json               print the report as a JSON object\n"
	  "  -h, --help               show this help" };
