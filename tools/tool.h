/* nvf-tool's shared part: the command table's entry type, messages, option parsing
 * and output helpers. One source file per command (cmd_*.c) includes this and nvf.h
 * only: the tool uses the public API of libnvf alone. */
#ifndef NVF_TOOL_H
#define NVF_TOOL_H

#include <nvf.h>

#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Exit statuses (docs/TOOL.md): 0 done, 1 check found damage, 2 bad usage, 3 any
 * other error (the one line on stderr says which). */
#define EXIT_DAMAGE 1
#define EXIT_USAGE 2
#define EXIT_ERROR 3

struct command {
	const char *name;
	int (*run)(const struct command *cmd, int argc, char **argv);
	const char *summary;
	const char *usage; /* synopsis, then one line per option */
};

/* The commands (each in its cmd_*.c). */
extern const struct command cmd_create_def, cmd_import_def, cmd_search_def, cmd_info_def, cmd_reindex_def,
	cmd_check_def, cmd_meta_def, cmd_tag_def, cmd_field_def, cmd_snapshot_def, cmd_compact_def, cmd_backup_def,
	cmd_get_def, cmd_put_def, cmd_delete_def, cmd_export_def, cmd_stats_def, cmd_inspect_def;

/* ---- messages ---- */

/* One line on stderr, "nvf-tool: CMD: ...": returns EXIT_ERROR. */
__attribute__((format(printf, 1, 2))) int error(const char *fmt, ...);
/* Bad usage: one line on stderr, exit 2. */
__attribute__((format(printf, 1, 2), noreturn)) void usage_error(const char *fmt, ...);
/* The library's words for a failure (its detail message, or the code's name). */
const char *why(int rc);
/* An error of the library about a database file: "PATH: message". */
int db_error(const char *path, int rc);
double now(void);

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
	OPT_META,
	OPT_FILTER,
	OPT_FILTER_FILE,
	OPT_EXPLAIN,
	OPT_CODEC,
	OPT_MAX_DOC,
	OPT_TYPE,
	OPT_RECORD,
	OPT_VECTOR,
	OPT_DICT_SIZE,
	OPT_PLAN,
	OPT_DOC,
	OPT_SNAPSHOT,
	OPT_VECTOR_ARG,
	OPT_TAGS,
	OPT_SAMPLE,
};

#define HELP_OPTION { "help", no_argument, NULL, OPT_HELP }

void print_usage(const struct command *cmd, FILE *f);
/* --help, and getopt_long's complaints as usage errors. */
void common_option(int c, char **argv);
/* The options of a command that has none but -h/--help. */
void help_only(int argc, char **argv);
/* A command with sub-commands (meta get, field add...): returns the word of
 * words[1..] (NULL-terminated) that argv[1] is; words[0] names them in messages.
 * -h or --help anywhere before "--" shows the command's help, as for the others. */
const char *sub_command(int argc, char **argv, const char *const *words);
/* A record id (0 to 2^64 - 2); anything else is a usage error. */
uint64_t parse_id(const char *arg);
/* A decimal number in [min, max]; anything else is a usage error. */
uint64_t parse_num(const char *opt, const char *arg, uint64_t min, uint64_t max);
/* The positional arguments: exactly n of them, named for the message. */
char **positionals(int argc, char **argv, int n, const char *const names[]);
int parse_format(const char *arg);
int parse_quantize(const char *arg);
/* --codec none|lz4|snappy|zstd[:LEVEL]|zstd-dict[:LEVEL] */
void parse_codec(const char *arg, int *codec, int *level);
/* "zstd-dict" and the like. */
const char *codec_label(int codec);
/* "zstd-dict (level 3)" and the like, in static storage. */
const char *codec_name(int codec, int level);
const char *quantize_name(int q);

/* The index options create and reindex share. */
#define INDEX_OPTIONS                                                         \
	{ "index", required_argument, NULL, OPT_INDEX },                      \
	{ "M", required_argument, NULL, OPT_M },                              \
	{ "ef-construction", required_argument, NULL, OPT_EF_CONSTRUCTION },  \
	{ "ef-search", required_argument, NULL, OPT_EF_SEARCH },              \
	{ "seed", required_argument, NULL, OPT_SEED },                        \
	{ "quantize", required_argument, NULL, OPT_QUANTIZE }
bool index_option(int c, nvf_index_options *o, bool *hnsw_params);
void check_index_options(const nvf_index_options *o, bool hnsw_params);
/* " (M 16, ef_construction 200, ...)" for an HNSW collection, nothing for flat. */
void print_hnsw(const nvf_info *in);

/* ---- progress on a terminal ---- */

/* --quiet (anywhere on the command line): no progress even on a terminal. */
extern bool quiet;

/* A progress line on stderr, redrawn at most ten times a second, only when stderr is
 * a terminal and not --quiet: "import: 45% 27000 of 60000 records, 52000/s, ETA 1 s".
 * total 0: unknown (count and rate only). Cleared at the end. */
typedef struct progress {
	const char *what, *unit;
	uint64_t total;
	double t0, last;
	bool on;
} progress;
void progress_start(progress *p, const char *what, const char *unit, uint64_t total);
void progress_update(progress *p, uint64_t done);
void progress_end(progress *p);

/* Around one blocking library call: a thread redraws the elapsed time, and if file is
 * not NULL, its size growing toward total bytes (a compaction's or backup's copy). */
typedef struct progress_watch progress_watch;
progress_watch *progress_watch_start(const char *what, const char *file, uint64_t total);
void progress_watch_stop(progress_watch *w);

/* ---- databases and output ---- */

/* Every command opens with NVF_OPEN_VERIFY: a command runs once and reads what it
 * needs, so checking each extent's checksum on first read costs little, and damage
 * is reported (NVF_ECORRUPT) instead of being searched, exported or rewritten. */
nvf_open_options tool_open_options(unsigned flags);
/* nvf_db_open() read-write with tool_open_options(0). */
int tool_db_open(nvf_db **db, const char *path);
int open_rdonly(const char *path, nvf_db **db);
/* Parse [--json] DB (info, check, and the like). */
const char *json_and_db(int argc, char **argv, bool *json);
json_t *juint(uint64_t v);
/* Print a JSON value (object or array) indented and free it; nonzero if it could not be printed. */
int print_json(json_t *o);
/* Check a vector read from a file before the library does, to name its record. */
int check_record(const float *v, size_t dim, const nvf_info *info, const char *file, uint64_t rec);

#endif
