/* nvf-tool compact and backup: a copy of the database that holds only what its
 * current state and snapshots reach.
 *   compact DB
 *   backup DB DEST */
#include "tool.h"

#include <inttypes.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static int cmd_compact(const struct command *cmd, int argc, char **argv)
{
	(void)cmd;
	static const struct option opts[] = {
		{ "retrain-dict", no_argument, NULL, OPT_DICT_SIZE },
		HELP_OPTION,
		{ NULL, 0, NULL, 0 },
	};
	bool retrain = false;
	int c;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (c == OPT_DICT_SIZE)
			retrain = true;
		else
			common_option(c, argv);
	}
	static const char *const names[] = { "DB" };
	char **pos = positionals(argc, argv, 1, names);
	nvf_db *db;
	int rc = tool_db_open(&db, pos[0]);
	if (rc != 0)
		return db_error(pos[0], rc);
	uint64_t before = file_size(pos[0]);
	double t0 = now();
	/* A dictionary trained on today's documents first (one commit, every document
	 * recompressed), so that the copy carries them at their new size. */
	if (retrain && (rc = nvf_doc_dict_train(db, NULL, 0)) != 0) {
		nvf_db_close(db);
		return db_error(pos[0], rc);
	}
	/* The copy grows under PATH.compact-PID (FORMAT.md §9): its size is the progress. */
	char tmp[4200];
	snprintf(tmp, sizeof(tmp), "%s.compact-%ld", pos[0], (long)getpid());
	progress_watch *w = progress_watch_start("compact", tmp, before);
	rc = nvf_db_compact(db);
	progress_watch_stop(w);
	double t = now() - t0;
	nvf_db_close(db); /* stale after a compaction: nothing to report */
	if (rc != 0)
		return db_error(pos[0], rc);
	uint64_t after = file_size(pos[0]);
	printf("compacted %s: %" PRIu64 " bytes, was %" PRIu64 " (%.1f%%), in %.2f s\n", pos[0], after, before,
	       before ? 100.0 * (double)after / (double)before : 100.0, t);
	return EXIT_SUCCESS;
}

static int cmd_backup(const struct command *cmd, int argc, char **argv)
{
	(void)cmd;
	help_only(argc, argv);
	static const char *const names[] = { "DB", "DEST" };
	char **pos = positionals(argc, argv, 2, names);
	nvf_db *db;
	if (open_rdonly(pos[0], &db) != 0)
		return EXIT_ERROR;
	double t0 = now();
	char tmp[4200];
	snprintf(tmp, sizeof(tmp), "%s.backup-%ld", pos[1], (long)getpid());
	progress_watch *w = progress_watch_start("backup", tmp, file_size(pos[0]));
	int rc = nvf_db_backup(db, pos[1]);
	progress_watch_stop(w);
	double t = now() - t0;
	nvf_db_close(db);
	if (rc != 0)
		return db_error(pos[0], rc);
	printf("backed up %s to %s: %" PRIu64 " bytes (source %" PRIu64 "), in %.2f s\n", pos[0], pos[1],
	       file_size(pos[1]), file_size(pos[0]), t);
	return EXIT_SUCCESS;
}

const struct command cmd_compact_def = { "compact", cmd_compact, "Rewrite a database without its free pages.",
	  "compact DB [--retrain-dict]\n"
	  "\n"
	  "Copies the current state and every snapshot into a new file (pages they share\n"
	  "stay shared, every checksum verified) and renames it over DB. Holds the write\n"
	  "lock meanwhile. Other processes' open transactions finish on the old file;\n"
	  "their next one fails with a message to reopen. A crash leaves the old file.\n"
	  "\n"
	  "      --retrain-dict       first train a new zstd dictionary on the documents\n"
	  "                           and recompress them (codec zstd-dict)\n"
	  "  -h, --help               show this help\n" };

const struct command cmd_backup_def = { "backup", cmd_backup, "Copy a database, compacted, while it is in use.",
	  "backup DB DEST\n"
	  "\n"
	  "Copies the last committed state and every snapshot into a new file DEST,\n"
	  "compacted, while writers go on committing. DEST must not exist; a failure\n"
	  "leaves no file under its name.\n"
	  "\n"
	  "  -h, --help               show this help\n" };
