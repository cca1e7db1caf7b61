/* /ingest: a file copied in is imported when it is closed, whole, in one write
 * transaction, by the same importer as `nvf-tool import` (tools/importer.c): the same
 * formats, the same checks, the same messages. The transaction lives inside the one
 * FLUSH request that carries the close, so a daemon killed meanwhile leaves the
 * database without any of the file. */
#include "nusterfs.h"
#include "importer.h"
#include "vecfile.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

bool nfs_ingest_name_ok(const char *name)
{
	return import_is_jsonl(name) || vecfile_format_guess(name) != VF_AUTO;
}

bool nfs_ingest_error_name(const char *name)
{
	size_t n = strlen(name);
	return n > 6 && strcmp(name + n - 6, ".error") == 0;
}

int nfs_ingest_run(struct nfs *fs, const char *name, int fd, char *err, size_t errlen)
{
	if (fs->o.read_only) {
		snprintf(err, errlen, "ingest/%s: the mount is read-only (-o ro)", name);
		return EROFS;
	}
	if (fs->db_gone) {
		snprintf(err, errlen, "ingest/%s: the database file %s was deleted", name, fs->o.db_path);
		nfs_log("%s", err);
		return EIO;
	}
	char path[64], label[300], ierr[IMPORT_ERRLEN];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	snprintf(label, sizeof(label), "ingest/%.255s", name);
	int format = import_is_jsonl(name) ? IMPORT_JSONL : vecfile_format_guess(name);
	int e = 0;
	for (int tries = 0;; tries++) {
		uint64_t gen;
		nvf_db *db = nfs_db_get(fs, &gen);
		nvf_txn *txn = NULL;
		nvf_info info;
		import_result res = { 0 };
		int rc = nvf_txn_begin(&txn, db, NVF_TXN_WAIT);
		if (rc == 0)
			rc = nvf_db_info(db, txn, &info);
		if (rc != 0) {
			snprintf(ierr, sizeof(ierr), "%s: %.700s", label, import_why(rc));
			e = nfs_errno(rc);
		} else if (import_file(db, txn, &info, path, label, format, 0, NULL, NULL, &res, ierr) != 0) {
			/* A failed transaction is the library's (I/O, space); otherwise the file. */
			int st = nvf_txn_status(txn);
			e = st ? nfs_errno(st) : EINVAL;
		} else if (res.done > 0) {
			rc = nvf_txn_commit(txn);
			txn = NULL;
			if (rc != 0) {
				snprintf(ierr, sizeof(ierr), "%s: commit: %.700s", label, import_why(rc));
				e = nfs_errno(rc);
			}
		}
		nvf_txn_abort(txn);
		nfs_db_put(fs);
		if (e == ESTALE && tries == 0 && nfs_db_reopen(fs, gen) == 0) {
			e = 0;
			continue;
		}
		if (e == 0 && res.done > 0)
			nfs_watch_kick();
		break;
	}
	if (e != 0) {
		snprintf(err, errlen, "%s", ierr);
		nfs_log("%s", ierr);
	}
	return e;
}
