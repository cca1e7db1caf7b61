/* nusterfs DB MOUNTPOINT [-f] [-d] [-s] [-o OPT,...]: options, the checks before
 * mounting (a stale mount point left by a killed daemon is named as such), the
 * session and its multi-threaded loop (libfuse's example/passthrough_ll.c shape). */
#include "nusterfs.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct cli {
	char *db, *mnt;
	int ro, help;
	unsigned k, max_results, poll_ms, max_threads;
	unsigned long max_query;
	double timeout;
	char *spool;
};

#define OPT(t, p) { t, offsetof(struct cli, p), 1 }
static const struct fuse_opt cli_opts[] = {
	OPT("k=%u", k),
	OPT("max_query=%lu", max_query),
	OPT("max_results=%u", max_results),
	OPT("cache_timeout=%lf", timeout),
	OPT("poll_ms=%u", poll_ms),
	OPT("spool=%s", spool),
	OPT("max_threads=%u", max_threads),
	FUSE_OPT_KEY("ro", 1),
	FUSE_OPT_KEY("-h", 2),
	FUSE_OPT_KEY("--help", 2),
	FUSE_OPT_END,
};

static int cli_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	(void)outargs;
	struct cli *c = data;
	if (key == 1) {
		/* Not passed to the kernel: a read-only database, while /queries stays
		 * writable (a query changes nothing). */
		c->ro = 1;
		return 0;
	}
	if (key == 2) {
		c->help = 1;
		return 0;
	}
	if (key == FUSE_OPT_KEY_NONOPT) {
		if (!c->db) {
			c->db = strdup(arg);
			return 0;
		}
		if (!c->mnt) {
			c->mnt = strdup(arg);
			return 1; /* fuse_parse_cmdline takes it too */
		}
		fprintf(stderr, "nusterfs: unexpected argument '%s'\n", arg);
		return -1;
	}
	return 1;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: nusterfs DB.nvf MOUNTPOINT [-f] [-d] [-s] [-o OPT[,OPT...]]\n"
		   "\n"
		   "Serves a NusterDB database as a directory (docs/NUSTERFS.md, nusterfs(1)).\n"
		   "\n"
		   "  -f                     stay in the foreground\n"
		   "  -d                     debug: foreground, every request printed\n"
		   "  -s                     one thread\n"
		   "  -o ro                  open the database read-only (queries still run)\n"
		   "  -o allow_other         let other users in (the file's mode still applies)\n"
		   "  -o auto_unmount        unmount when the daemon dies\n"
		   "  -o k=N                 k of .npy/.fvecs queries without NAME.opts.json (10)\n"
		   "  -o max_query=BYTES     largest query file (67108864)\n"
		   "  -o max_results=N       queries whose results are kept, oldest dropped (1000)\n"
		   "  -o cache_timeout=SECS  kernel cache of names and attributes (1)\n"
		   "  -o poll_ms=N           how often other writers' commits are looked for (100)\n"
		   "  -o spool=DIR           where /ingest files wait for their close ($TMPDIR or /tmp)\n"
		   "  -o max_threads=N       request threads at most (10)\n");
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct cli c = { .k = 10, .max_results = 1000, .poll_ms = 100, .max_threads = 10, .max_query = 64ul << 20,
			 .timeout = 1.0 };
	struct fuse_cmdline_opts opts;
	struct fuse_session *se = NULL;
	struct fuse_loop_config *cfg = NULL;
	static struct nfs fs;
	int ret = 1;
	memset(&opts, 0, sizeof(opts));

	if (fuse_opt_parse(&args, &c, cli_opts, cli_proc) != 0) {
		ret = 2;
		goto out;
	}
	if (c.help) {
		usage(stdout);
		ret = 0;
		goto out;
	}
	if (!c.db || !c.mnt) {
		usage(stderr);
		ret = 2;
		goto out;
	}
	if (c.k < 1 || c.k > 100000 || c.max_results < 1 || c.timeout < 0 || c.poll_ms < 1 || c.max_query < 1) {
		fprintf(stderr, "nusterfs: an option is out of range (see nusterfs -h)\n");
		ret = 2;
		goto out;
	}
	/* A daemon killed without unmounting leaves its mount point answering ENOTCONN
	 * to everything: say so and how to clear it, rather than "bad mount point". */
	struct stat st;
	if (stat(c.mnt, &st) != 0) {
		int e = errno;
		if (e == ENOTCONN)
			fprintf(stderr,
				"nusterfs: %s: %s: a nusterfs (or other FUSE daemon) mounted here has died; "
				"clear it with 'fusermount3 -u %s' (or 'umount -l %s' as root) and mount again\n",
				c.mnt, strerror(e), c.mnt, c.mnt);
		else
			fprintf(stderr, "nusterfs: %s: %s\n", c.mnt, strerror(e));
		ret = 1;
		goto out;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "nusterfs: %s: not a directory\n", c.mnt);
		ret = 1;
		goto out;
	}
	char dbpath[PATH_MAX];
	if (!realpath(c.db, dbpath)) {
		fprintf(stderr, "nusterfs: %s: %s\n", c.db, strerror(errno));
		ret = 1;
		goto out;
	}
	fs.o.db_path = dbpath;
	fs.o.mountpoint = c.mnt;
	fs.o.read_only = c.ro;
	fs.o.k = c.k;
	fs.o.max_query = c.max_query;
	fs.o.max_results = c.max_results;
	fs.o.timeout = c.timeout;
	fs.o.poll_ms = c.poll_ms;
	const char *tmp = getenv("TMPDIR");
	fs.o.spool = c.spool ? c.spool : tmp && *tmp ? tmp : "/tmp";
	nfs_g = &fs;

	/* The kernel checks every access against the modes (the database file's), also
	 * for other users under allow_other. */
	char fsname[PATH_MAX + 64], shown[PATH_MAX];
	snprintf(shown, sizeof(shown), "%s", dbpath);
	for (char *p = shown; *p; p++)
		if (*p == ',')
			*p = '_'; /* a comma would end the option */
	snprintf(fsname, sizeof(fsname), "-ofsname=nusterfs:%s,subtype=nusterfs,default_permissions", shown);
	fuse_opt_add_arg(&args, fsname);

	if (fuse_parse_cmdline(&args, &opts) != 0)
		goto out;
	if (opts.show_help) {
		usage(stdout);
		ret = 0;
		goto out;
	}
	if (opts.show_version) {
		printf("nusterfs %d.%d.%d, libfuse %s\n", NVF_VERSION_MAJOR, NVF_VERSION_MINOR, NVF_VERSION_PATCH,
		       fuse_pkgversion());
		ret = 0;
		goto out;
	}
	/* Opened here to report a bad file on the terminal, and again after the fork
	 * of fuse_daemonize(): a handle is not carried across it. */
	int rc = nfs_db_open(&fs);
	if (rc != 0) {
		fprintf(stderr, "nusterfs: %s: %s\n", dbpath, import_why(rc));
		goto out;
	}
	nvf_db_close(fs.db);
	fs.db = NULL;
	if (!(se = fuse_session_new(&args, &nfs_ops, sizeof(nfs_ops), &fs)))
		goto out;
	fs.se = se;
	if (fuse_set_signal_handlers(se) != 0)
		goto out;
	if (fuse_session_mount(se, opts.mountpoint) != 0)
		goto out_signals;
	fuse_daemonize(opts.foreground);
	if ((rc = nfs_db_open(&fs)) != 0) {
		fprintf(stderr, "nusterfs: %s: %s\n", dbpath, import_why(rc));
		goto out_unmount;
	}
	if (nfs_watch_start(&fs) != 0)
		goto out_unmount;
	if (opts.singlethread) {
		ret = fuse_session_loop(se);
	} else {
		cfg = fuse_loop_cfg_create();
		/* A /dev/fuse descriptor per thread: requests do not queue behind one read. */
		fuse_loop_cfg_set_clone_fd(cfg, 1);
		fuse_loop_cfg_set_max_threads(cfg, c.max_threads);
		ret = fuse_session_loop_mt(se, cfg);
	}
	ret = ret != 0;
	nfs_watch_stop();
out_unmount:
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out:
	if (se)
		fuse_session_destroy(se);
	fuse_loop_cfg_destroy(cfg);
	if (fs.db)
		nfs_db_close(&fs);
	free(opts.mountpoint);
	fuse_opt_free_args(&args);
	free(c.db);
	free(c.mnt);
	free(c.spool);
	return ret;
}
