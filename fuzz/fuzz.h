/* Helpers shared by the fuzz targets: each target is one file defining
 * LLVMFuzzerTestOneInput, linked either with libFuzzer (clang, -fsanitize=fuzzer) or
 * with replay.c, which runs it over the files of a corpus (the fuzz test suite). */
#ifndef NVF_FUZZ_H
#define NVF_FUZZ_H

#include <ftw.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/** The entry point every target defines (libFuzzer's name and signature). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fuzz_dir_path[256];

static inline int fuzz_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static inline void fuzz_rm_dir(void)
{
	if (fuzz_dir_path[0])
		nftw(fuzz_dir_path, fuzz_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/** A private directory for the target's files, on tmpfs where there is one (every
 * execution writes a file), removed at exit. Aborts if it cannot be made: a fuzz run
 * without its fixture would measure nothing. */
static inline const char *fuzz_dir(const char *tag)
{
	if (fuzz_dir_path[0])
		return fuzz_dir_path;
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
	snprintf(fuzz_dir_path, sizeof fuzz_dir_path, "%s/nvf-fuzz-%s-XXXXXX", base ? base : "/tmp", tag);
	if (!mkdtemp(fuzz_dir_path)) {
		perror(fuzz_dir_path);
		abort();
	}
	atexit(fuzz_rm_dir);
	return fuzz_dir_path;
}

/** dir/name into buf (a fixed 512 bytes). */
static inline char *fuzz_path(char *buf, const char *name)
{
	snprintf(buf, 512, "%s/%s", fuzz_dir_path, name);
	return buf;
}

/** Write the input to a file; 0 or -1. */
static inline int fuzz_write(const char *path, const uint8_t *data, size_t size)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	int ok = (size == 0 || fwrite(data, 1, size, f) == size);
	if (fclose(f) != 0)
		ok = 0;
	return ok ? 0 : -1;
}

/** The input as a NUL-terminated string (to free()); an embedded NUL ends it early. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/** Abort on a failure in the fixture (not in the input's handling). */
#define FUZZ_CHECK(expr)                                                                  \
	do {                                                                                \
		int fuzz_rc_ = (expr);                                                      \
		if (fuzz_rc_ != 0) {                                                        \
			fprintf(stderr, "%s:%d: %s: %d (%s)\n", __FILE__, __LINE__, #expr,  \
				fuzz_rc_, nvf_errmsg());                                    \
			abort();                                                            \
		}                                                                           \
	} while (0)

#endif /* NVF_FUZZ_H */
