/* LD_PRELOAD shim for test_tool.py: the first NVF_STALE_SHIM (default 1)
 * nvf_txn_begin() calls of the process fail with NVF_ESTALE, as when a compaction
 * renames its copy over the file between nvf-tool's open and its first
 * transaction (a race the soak bench hits every few minutes, too rare to stage). */
#include "nvf.h"

#include <dlfcn.h>
#include <stdlib.h>

__attribute__((visibility("default"))) int nvf_txn_begin(nvf_txn **out, nvf_db *db, unsigned flags)
{
	static int (*real)(nvf_txn **, nvf_db *, unsigned);
	static int failed;
	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "nvf_txn_begin"); /* POSIX's idiom for a function */
	const char *e = getenv("NVF_STALE_SHIM");
	if (failed < (e ? atoi(e) : 1)) {
		failed++;
		return NVF_ESTALE;
	}
	return real(out, db, flags);
}
