/* nvf-tool: create, fill, search and inspect .nvf databases from the shell.
 *
 * One table lists the subcommands, each in a file of its own (cmd_*.c) that parses its
 * options with getopt_long. Conventions every subcommand keeps: usage and help on
 * stdout with exit 0; an error is one line on stderr, "nvf-tool: CMD: ...", with exit
 * 1; bad usage is one line on stderr with exit 2. Only the public API of libnvf
 * (nvf.h) is used. */
#include "tool.h"
#include "importer.h"
#include "vecfile.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The subcommand running, for the prefix of messages. */
static const struct command *current;

/* ---- messages ---- */

bool quiet;
static progress *active; /* the line on screen, cleared before an error is printed */

__attribute__((format(printf, 1, 2))) int error(const char *fmt, ...)
{
	va_list ap;
	/* stdout is fully buffered: show what came before the error first. */
	fflush(stdout);
	if (active)
		progress_end(active);
	fprintf(stderr, "nvf-tool: %s%s", current ? current->name : "", current ? ": " : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_ERROR;
}

__attribute__((format(printf, 1, 2), noreturn)) void usage_error(const char *fmt, ...)
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
const char *why(int rc)
{
	return import_why(rc);
}

/* An error of the library about a database file: "PATH: message", without
 * repeating the path where the library's message already names it. */
/* Set when a command failed because a compaction replaced the file after the
 * command opened it (NVF_ESTALE, raised before anything is read or written): main
 * runs the command again on the new file instead of failing. */
static bool stale, stale_final;
enum { STALE_TRIES = 5 };

int db_error(const char *path, int rc)
{
	if (rc == NVF_ESTALE && !stale_final) {
		stale = true;
		return EXIT_ERROR;
	}
	const char *m = why(rc);
	if (strstr(m, path))
		return error("%s", m);
	return error("%s: %s", path, m);
}

double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- option parsing ---- */



/* The synopsis (the usage text's first line), the summary, then the rest. */
void print_usage(const struct command *cmd, FILE *f)
{
	const char *nl = strchr(cmd->usage, '\n');
	int n = nl ? (int)(nl - cmd->usage) : (int)strlen(cmd->usage);
	fprintf(f, "usage: nvf-tool %.*s\n\n%s\n%s\n", n, cmd->usage, cmd->summary, nl ? nl + 1 : "");
}

/* Options every command has, and getopt_long's complaints (opterr is off so that
 * the message is ours and on one line). */
void common_option(int c, char **argv)
{
	switch (c) {
	case OPT_HELP:
		print_usage(current, stdout);
		exit(fflush(stdout) == 0 ? EXIT_SUCCESS : EXIT_ERROR);
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

/* ---- progress ---- */



static void draw(const progress *p, uint64_t done, double t)
{
	char line[200];
	double rate = t > 0 ? (double)done / t : 0;
	int n;
	if (p->total) {
		double left = rate > 0 && done < p->total ? (double)(p->total - done) / rate : 0;
		n = snprintf(line, sizeof(line), "%s: %3.0f%% %" PRIu64 " of %" PRIu64 " %s, %.0f/s, ETA %.0f s", p->what,
			     100.0 * (double)done / (double)p->total, done, p->total, p->unit, rate, left);
	} else {
		n = snprintf(line, sizeof(line), "%s: %" PRIu64 " %s, %.0f/s, %.1f s", p->what, done, p->unit, rate, t);
	}
	if (n > 0)
		fprintf(stderr, "\r\033[K%s", line);
}

void progress_start(progress *p, const char *what, const char *unit, uint64_t total)
{
	p->what = what;
	p->unit = unit;
	p->total = total;
	p->t0 = now();
	p->last = 0;
	p->on = !quiet && isatty(STDERR_FILENO);
	if (p->on) {
		active = p;
		draw(p, 0, 0);
	}
}

void progress_update(progress *p, uint64_t done)
{
	if (!p->on)
		return;
	double t = now();
	if (t - p->last < 0.1 && !(p->total && done >= p->total))
		return;
	p->last = t;
	draw(p, done, t - p->t0);
}

void progress_end(progress *p)
{
	if (p->on)
		fputs("\r\033[K", stderr);
	p->on = false;
	if (active == p)
		active = NULL;
}

struct progress_watch {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop, started;
	const char *what;
	char *file;
	uint64_t total;
};

static void *watch_run(void *arg)
{
	progress_watch *w = arg;
	double t0 = now();
	pthread_mutex_lock(&w->mu);
	/* At least once, however short the call: the terminal sees what ran. */
	for (bool first = true; first || !w->stop; first = false) {
		double t = now() - t0;
		struct stat st;
		if (w->file && w->total && stat(w->file, &st) == 0) {
			double done = (double)st.st_size, rate = t > 0 ? done / t : 0;
			fprintf(stderr, "\r\033[K%s: %3.0f%% %.1f of %.1f MB, %.0f MB/s, ETA %.0f s", w->what,
				100.0 * done / (double)w->total, done / 1e6, (double)w->total / 1e6, rate / 1e6,
				rate > 0 && done < (double)w->total ? ((double)w->total - done) / rate : 0.0);
		} else {
			fprintf(stderr, "\r\033[K%s: %.1f s", w->what, t);
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 200000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		if (!w->stop)
			pthread_cond_timedwait(&w->cv, &w->mu, &ts);
	}
	pthread_mutex_unlock(&w->mu);
	fputs("\r\033[K", stderr);
	return NULL;
}

progress_watch *progress_watch_start(const char *what, const char *file, uint64_t total)
{
	progress_watch *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->what = what;
	w->file = file ? strdup(file) : NULL;
	w->total = total;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	if (!quiet && isatty(STDERR_FILENO))
		w->started = pthread_create(&w->th, NULL, watch_run, w) == 0;
	return w;
}

void progress_watch_stop(progress_watch *w)
{
	if (!w)
		return;
	if (w->started) {
		pthread_mutex_lock(&w->mu);
		w->stop = true;
		pthread_cond_signal(&w->cv);
		pthread_mutex_unlock(&w->mu);
		pthread_join(w->th, NULL);
	}
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	free(w->file);
	free(w);
}

void help_only(int argc, char **argv)
{
	static const struct option opts[] = {
		HELP_OPTION,
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1)
		common_option(c, argv);
}

uint64_t parse_id(const char *arg)
{
	return parse_num("ID", arg, 0, UINT64_MAX - 1);
}

const char *sub_command(int argc, char **argv, const char *const *words)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			common_option(OPT_HELP, argv);
	if (argc < 2)
		usage_error("missing %s", words[0]);
	for (size_t i = 1; words[i]; i++)
		if (strcmp(argv[1], words[i]) == 0)
			return words[i];
	usage_error("unknown %s '%s'", words[0], argv[1]);
}

/* A decimal number in [min, max]; anything else is a usage error. */
uint64_t parse_num(const char *opt, const char *arg, uint64_t min, uint64_t max)
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
char **positionals(int argc, char **argv, int n, const char *const names[])
{
	int have = argc - optind;
	if (have < n)
		usage_error("missing %s", names[have]);
	if (have > n)
		usage_error("unexpected argument '%s'", argv[optind + n]);
	return argv + optind;
}

int parse_format(const char *arg)
{
	int f = vecfile_format_parse(arg);
	if (f < 0)
		usage_error("--format '%s': expected fvecs, bvecs, npy or idx", arg);
	return f;
}

/* --quantize: what the HNSW walk reads (the library rejects a mode the metric
 * cannot use, naming both). */
int parse_quantize(const char *arg)
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

void parse_codec(const char *arg, int *codec, int *level)
{
	static const struct {
		const char *name;
		int codec;
	} codecs[] = {{"none", NVF_CODEC_NONE}, {"lz4", NVF_CODEC_LZ4}, {"snappy", NVF_CODEC_SNAPPY},
		      {"zstd", NVF_CODEC_ZSTD}, {"zstd-dict", NVF_CODEC_ZSTD_DICT}};
	const char *colon = strchr(arg, ':');
	size_t n = colon ? (size_t)(colon - arg) : strlen(arg);
	for (size_t i = 0; i < sizeof(codecs) / sizeof(codecs[0]); i++) {
		if (strlen(codecs[i].name) != n || strncmp(codecs[i].name, arg, n) != 0)
			continue;
		*codec = codecs[i].codec;
		*level = 0;
		if (colon) {
			if (*codec != NVF_CODEC_ZSTD && *codec != NVF_CODEC_ZSTD_DICT)
				usage_error("--codec '%s': only zstd and zstd-dict take a level", arg);
			char *end;
			long v = strtol(colon + 1, &end, 10);
			if (!colon[1] || *end || v < -131072 || v > 22)
				usage_error("--codec '%s': the level must be a number, at most 22", arg);
			*level = (int)v;
		}
		return;
	}
	usage_error("--codec '%s': expected none, lz4, snappy, zstd[:LEVEL] or zstd-dict[:LEVEL]", arg);
}

const char *codec_label(int codec)
{
	static const char *const names[] = {"none", "lz4", "snappy", "zstd", "zstd-dict"};
	return codec >= 0 && codec <= NVF_CODEC_ZSTD_DICT ? names[codec] : "unknown";
}

const char *codec_name(int codec, int level)
{
	static char buf[64];
	const char *n = codec_label(codec);
	if (codec == NVF_CODEC_ZSTD || codec == NVF_CODEC_ZSTD_DICT)
		snprintf(buf, sizeof(buf), "%s (level %d)", n, level ? level : 3);
	else
		snprintf(buf, sizeof(buf), "%s", n);
	return buf;
}

const char *quantize_name(int q)
{
	return q == NVF_QUANT_SQ4 ? "sq4" : "none";
}



/* Parse option c if it is one of INDEX_OPTIONS; *hnsw_params notes an HNSW-only
 * one. Ranges are the library's to enforce (it names the field); here only that
 * they are numbers that fit. */
bool index_option(int c, nvf_index_options *o, bool *hnsw_params)
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
void check_index_options(const nvf_index_options *o, bool hnsw_params)
{
	if (hnsw_params && o->index != NVF_INDEX_HNSW)
		usage_error("--M, --ef-construction, --ef-search, --seed and --quantize need --index hnsw");
}

/* " (M 16, ef_construction 200, ...)" for an HNSW collection, nothing for flat. */
void print_hnsw(const nvf_info *in)
{
	if (in->index == NVF_INDEX_HNSW)
		printf(" (M %" PRIu32 ", ef_construction %" PRIu32 ", ef_search %" PRIu32 ", seed %" PRIu64
		       ", quantize %s)",
		       in->hnsw_m, in->hnsw_ef_construction, in->hnsw_ef_search, in->seed,
		       quantize_name(in->hnsw_quantize));
}

/* ---- databases and output ---- */

nvf_open_options tool_open_options(unsigned flags)
{
	nvf_open_options o = NVF_OPEN_OPTIONS_INIT;
	o.flags = NVF_OPEN_VERIFY | flags;
	return o;
}

int tool_db_open(nvf_db **db, const char *path)
{
	nvf_open_options o = tool_open_options(0);
	return nvf_db_open(db, path, &o);
}

int open_rdonly(const char *path, nvf_db **db)
{
	nvf_open_options oo = tool_open_options(NVF_OPEN_RDONLY);
	int rc = nvf_db_open(db, path, &oo);
	if (rc != 0)
		return db_error(path, rc);
	return 0;
}

/* Parse the options of info and check: [--json] DB. */
const char *json_and_db(int argc, char **argv, bool *json)
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

json_t *juint(uint64_t v)
{
	return json_integer((json_int_t)v);
}

int print_json(json_t *o)
{
	char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (!s)
		return error("out of memory");
	puts(s);
	free(s);
	return 0;
}

/* The library validates every vector too, but its message can only name the
 * vector's place in a batch; checking here first names the record in the file. */
int check_record(const float *v, size_t dim, const nvf_info *info, const char *file, uint64_t rec)
{
	char err[IMPORT_ERRLEN];
	if (import_check_record(v, dim, info, file, rec, err) != 0)
		return error("%s", err);
	return 0;
}

/* ---- the table ---- */

static const struct command *const commands[] = {
	&cmd_create_def, &cmd_import_def, &cmd_search_def, &cmd_info_def, &cmd_reindex_def, &cmd_check_def,
	&cmd_meta_def, &cmd_tag_def, &cmd_field_def, &cmd_snapshot_def, &cmd_compact_def, &cmd_backup_def,
	&cmd_get_def, &cmd_put_def, &cmd_delete_def, &cmd_export_def, &cmd_stats_def, &cmd_inspect_def,
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i]->name, name) == 0)
			return commands[i];
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
		printf("  %-8s %s\n", commands[i]->name, commands[i]->summary);
	printf("\n"
	       "Long commands (import, export, reindex, check, compact, backup) show their\n"
	       "progress on a terminal; --quiet, anywhere, turns that off.\n"
	       "Exit status: 0 done, 1 check found damage, 2 bad usage, 3 any other error\n"
	       "(one line on stderr).\n");
}

static int finish(int status)
{
	/* Output is buffered: a failed write (a full disk, a closed pipe) shows here. */
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "nvf-tool: %s%swriting the output: %s\n", current ? current->name : "",
			current ? ": " : "", strerror(errno));
		return EXIT_ERROR;
	}
	return status;
}

int main(int argc, char **argv)
{
	static char outbuf[1 << 16];
	setvbuf(stdout, outbuf, _IOFBF, sizeof(outbuf));
	opterr = 0;

	/* --quiet anywhere before "--": taken out, as if it were not there. */
	int k = 1;
	bool dashdash = false;
	for (int i = 1; i < argc; i++) {
		if (!dashdash && strcmp(argv[i], "--quiet") == 0) {
			quiet = true;
			continue;
		}
		dashdash = dashdash || strcmp(argv[i], "--") == 0;
		argv[k++] = argv[i];
	}
	argc = k;
	argv[argc] = NULL;
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
	/* The command sees itself as argv[0], as getopt_long expects. Every command
	 * writes in one transaction (or none), and NVF_ESTALE comes at a transaction's
	 * beginning, before it reads or writes: running it again is safe. The last try
	 * reports the error. */
	int status = EXIT_ERROR;
	for (int attempt = 1; attempt <= STALE_TRIES; attempt++) {
		stale = false;
		stale_final = attempt == STALE_TRIES;
		optind = 0; /* glibc: parse the (permuted) arguments afresh */
		status = current->run(current, argc - 1, argv + 1);
		if (!stale)
			break;
	}
	return finish(status);
}

