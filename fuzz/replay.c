/* Replay driver: runs one fuzz target over every file named on the command line,
 * directories taken file by file in name order (a missing directory holds nothing).
 * It is what the fuzz test suite runs, with gcc and under ASan, without libFuzzer. */
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>

static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		return -1;
	}
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;
	for (;;) {
		if (len == cap) {
			cap = cap ? cap * 2 : 4096;
			uint8_t *nb = realloc(buf, cap);
			if (!nb)
				abort();
			buf = nb;
		}
		size_t got = fread(buf + len, 1, cap - len, f);
		len += got;
		if (got == 0)
			break;
	}
	int err = ferror(f);
	fclose(f);
	if (err) {
		fprintf(stderr, "%s: read error\n", path);
		free(buf);
		return -1;
	}
	/* An exact-size copy, so that ASan catches a read one past the input's end. */
	uint8_t *in = malloc(len ? len : 1);
	if (!in)
		abort();
	memcpy(in, buf, len);
	free(buf);
	LLVMFuzzerTestOneInput(in, len);
	free(in);
	return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv)
{
	unsigned long n = 0;
	int failed = 0;
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) != 0) {
			if (errno == ENOENT)
				continue;
			perror(argv[i]);
			return 1;
		}
		if (!S_ISDIR(st.st_mode)) {
			failed |= replay_file(argv[i]) != 0;
			n++;
			continue;
		}
		struct dirent **ents;
		int ne = scandir(argv[i], &ents, NULL, by_name);
		if (ne < 0) {
			perror(argv[i]);
			return 1;
		}
		for (int j = 0; j < ne; j++) {
			char path[4096];
			snprintf(path, sizeof path, "%s/%s", argv[i], ents[j]->d_name);
			if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
				fprintf(stderr, "%s\n", path);
				failed |= replay_file(path) != 0;
				n++;
			}
			free(ents[j]);
		}
		free(ents);
	}
	printf("replayed %lu inputs\n", n);
	return failed ? 1 : 0;
}
