/* nvf-tool inspect: the file as docs/FORMAT.md describes it, read straight from the
 * bytes, independently of libnvf (so it also shows what the library would refuse to
 * open, and checks FORMAT.md against the files the library writes).
 *   inspect DB            header, both meta records, the trees, a map of the pages
 *   inspect DB page N     one page decoded: header, checksum state, entries or cells */
#include "tool.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

/* FORMAT.md §2-§5, read field by field (little-endian, as the format is). */
static uint64_t u64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static uint32_t u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint16_t u16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }

#define PAGE_BRANCH 0x4272
#define PAGE_LEAF 0x664c
#define CELL_EXTENT 0x1u
#define META_OFF 128
#define META_MAGIC UINT64_C(0x314154454d46564e)

typedef struct {
	int fd;
	uint32_t psize;
	uint64_t fsize, npages;
	uint8_t *buf;
	char *map; /* one kind letter per page, for the map */
} raw;

static int rd(raw *r, void *out, size_t n, uint64_t off)
{
	ssize_t got = pread(r->fd, out, n, (off_t)off);
	return got == (ssize_t)n ? 0 : -1;
}

typedef struct {
	uint64_t root, count, aux;
	uint16_t depth, kind;
	uint32_t aux32;
} tdesc;

static tdesc desc(const uint8_t *p)
{
	return (tdesc){u64(p), u64(p + 8), u64(p + 16), u16(p + 24), u16(p + 26), u32(p + 28)};
}

static const char *tree_name(uint64_t id)
{
	static const char *const names[] = { NULL, "config", "id map", "vectors", "row ids", "norms", "free rows",
					     "graph level 0", "graph upper levels", "graph free slots", "graph record",
					     "record metadata", "documents", "field registry", "dictionaries" };
	if (id < sizeof(names) / sizeof(names[0]) && names[id])
		return names[id];
	return id >= 1024 ? "field postings" : "tree";
}

static char kind_letter(uint64_t id)
{
	switch (id) {
	case 1: return 'c';
	case 2: case 4: case 6: return 'i';
	case 3: case 5: return 'v';
	case 7: case 8: case 9: case 10: return 'g';
	case 11: case 12: case 14: return 'd';
	case 13: return 'f';
	default: return id >= 1024 ? 'f' : 'u';
	}
}

/* Walk a tree's pages (and extents), marking the map with letter; counts pages. */
static void walk(raw *r, uint64_t pg, int level, char letter, bool catalog, uint64_t *pages, int depth_guard)
{
	if (level < 1 || depth_guard > 64 || pg >= r->npages)
		return;
	uint8_t *p = malloc(r->psize);
	if (!p || rd(r, p, r->psize, pg * r->psize) != 0) {
		free(p);
		return;
	}
	r->map[pg] = letter;
	(*pages)++;
	uint16_t nk = u16(p + 26);
	if (level > 1) {
		for (uint16_t i = 0; i < nk && 32 + 16u * (i + 1u) <= r->psize; i++)
			walk(r, u64(p + 32 + 16 * i + 8), level - 1, letter, catalog, pages, depth_guard + 1);
	} else {
		for (uint16_t i = 0; i < nk && 32 + 2u * (i + 1u) <= r->psize; i++) {
			uint32_t off = u16(p + 32 + 2 * i);
			if (off + 16 > r->psize)
				break;
			uint64_t key = u64(p + off);
			uint32_t vlen = u32(p + off + 8), flags = u32(p + off + 12);
			if ((flags & CELL_EXTENT) && off + 48 <= r->psize) {
				uint64_t ep = u64(p + off + 16), len = u64(p + off + 24);
				uint64_t np = (len + r->psize - 1) / r->psize;
				np = np ? np : 1;
				for (uint64_t j = 0; j < np && ep + j < r->npages; j++)
					r->map[ep + j] = letter;
				*pages += np;
			} else if (catalog && vlen == 32 && off + 48 <= r->psize) {
				tdesc t = desc(p + off + 16);
				uint64_t sub = 0;
				if (t.root)
					walk(r, t.root, t.depth, kind_letter(key), false, &sub, depth_guard + 1);
				printf("  tree %-5" PRIu64 " %-20s root %-9" PRIu64 " depth %u  %10" PRIu64 " entries %9" PRIu64
				       " pages\n", key, tree_name(key), t.root, t.depth, t.count, sub);
			}
		}
	}
	free(p);
}

/* FREE and PENDING runs onto the map. */
static void runs(raw *r, uint64_t pg, int level, bool pending, int guard)
{
	if (level < 1 || guard > 64 || pg >= r->npages)
		return;
	uint8_t *p = malloc(r->psize);
	if (!p || rd(r, p, r->psize, pg * r->psize) != 0) {
		free(p);
		return;
	}
	uint16_t nk = u16(p + 26);
	if (level > 1) {
		for (uint16_t i = 0; i < nk && 32 + 16u * (i + 1u) <= r->psize; i++)
			runs(r, u64(p + 32 + 16 * i + 8), level - 1, pending, guard + 1);
	} else {
		for (uint16_t i = 0; i < nk && 32 + 2u * (i + 1u) <= r->psize; i++) {
			uint32_t off = u16(p + 32 + 2 * i);
			if (off + 16 + (pending ? 24 : 8) > r->psize)
				break;
			uint64_t start = pending ? u64(p + off + 16) : u64(p + off);
			uint64_t n = pending ? u64(p + off + 24) : u64(p + off + 16);
			for (uint64_t j = 0; j < n && start + j < r->npages; j++)
				r->map[start + j] = pending ? 'p' : '.';
		}
	}
	free(p);
}

static bool meta_ok(const uint8_t *m, int slot)
{
	return u64(m) == META_MAGIC && u64(m + 248) == XXH3_64bits(m, 248) && u32(m + 36) == (uint32_t)slot;
}

static int inspect_page(raw *r, uint64_t pg)
{
	if (pg >= r->fsize / r->psize)
		return error("page %" PRIu64 ": the file has %" PRIu64 " pages", pg, r->fsize / r->psize);
	uint8_t *p = r->buf;
	if (rd(r, p, r->psize, pg * r->psize) != 0)
		return error("cannot read page %" PRIu64 ": %s", pg, strerror(errno));
	if (pg < 2) {
		printf("page %" PRIu64 ": header copy and meta slot %" PRIu64 " (see `nvf-tool inspect DB`)\n", pg, pg);
		return EXIT_SUCCESS;
	}
	uint64_t sum = u64(p), want = XXH3_64bits(p + 8, r->psize - 8);
	uint16_t type = u16(p + 24), nk = u16(p + 26);
	bool tree = type == PAGE_BRANCH || type == PAGE_LEAF;
	printf("page %" PRIu64 " (bytes %" PRIu64 "..%" PRIu64 ")\n", pg, pg * r->psize, (pg + 1) * r->psize - 1);
	if (!tree || u64(p + 8) != pg) {
		printf("  not a tree page: type 0x%04x, names page %" PRIu64 "; an extent's data, or free\n", type, u64(p + 8));
		printf("  first bytes:");
		for (int i = 0; i < 32; i++)
			printf(" %02x", p[i]);
		printf("\n");
		return EXIT_SUCCESS;
	}
	printf("  checksum  %016" PRIx64 " %s\n", sum, sum == want ? "(ok)" : "(BAD: the bytes hash otherwise)");
	printf("  txnid     %" PRIu64 "\n  type      %s\n  nkeys     %u\n", u64(p + 16), type == PAGE_LEAF ? "leaf" : "branch", nk);
	if (type == PAGE_BRANCH) {
		for (uint16_t i = 0; i < nk && 32 + 16u * (i + 1u) <= r->psize; i++)
			printf("  [%3u] keys >= %-20" PRIu64 " -> page %" PRIu64 "\n", i, i ? u64(p + 32 + 16 * i) : 0,
			       u64(p + 32 + 16 * i + 8));
		return EXIT_SUCCESS;
	}
	printf("  upper     %u\n", u32(p + 28));
	for (uint16_t i = 0; i < nk && 32 + 2u * (i + 1u) <= r->psize; i++) {
		uint32_t off = u16(p + 32 + 2 * i);
		if (off + 16 > r->psize) {
			printf("  [%3u] offset %u past the page\n", i, off);
			continue;
		}
		uint64_t key = u64(p + off);
		uint32_t vlen = u32(p + off + 8), flags = u32(p + off + 12);
		if ((flags & CELL_EXTENT) && off + 48 <= r->psize) {
			printf("  [%3u] key %-20" PRIu64 " extent: page %" PRIu64 ", %" PRIu64 " bytes, txnid %" PRIu64 "\n", i, key,
			       u64(p + off + 16), u64(p + off + 24), u64(p + off + 32));
		} else {
			printf("  [%3u] key %-20" PRIu64 " %u bytes:", i, key, vlen);
			for (uint32_t j = 0; j < vlen && j < 24 && off + 16 + j < r->psize; j++)
				printf(" %02x", p[off + 16 + j]);
			printf("%s\n", vlen > 24 ? " ..." : "");
		}
	}
	return EXIT_SUCCESS;
}

static int cmd_inspect(const struct command *cmd, int argc, char **argv)
{
	(void)cmd;
	help_only(argc, argv);
	int npos = argc - optind;
	if (npos < 1)
		usage_error("missing DB");
	if (npos != 1 && !(npos == 3 && strcmp(argv[optind + 1], "page") == 0))
		usage_error("expected DB, or DB page N");
	const char *path = argv[optind];
	raw r = { .fd = open(path, O_RDONLY | O_CLOEXEC) };
	if (r.fd < 0)
		return error("cannot open %s: %s", path, strerror(errno));
	struct stat st;
	uint8_t h[128];
	if (fstat(r.fd, &st) != 0 || st.st_size < 128 || rd(&r, h, 128, 0) != 0) {
		close(r.fd);
		return error("%s: too short for an nvf file", path);
	}
	r.fsize = (uint64_t)st.st_size;
	if (memcmp(h, "\x89NVF\r\n\x1a\n", 8) != 0) {
		close(r.fd);
		return error("%s: not an nvf file (bad magic)", path);
	}
	r.psize = u32(h + 12);
	if (r.psize < 512 || r.psize > 65536 || (r.psize & (r.psize - 1))) {
		close(r.fd);
		return error("%s: page size %u in the header is not a power of two 512..65536", path, r.psize);
	}
	r.buf = malloc(r.psize);
	int ret;
	if (npos == 3) {
		uint64_t pg = parse_num("N", argv[optind + 2], 0, UINT64_MAX);
		ret = inspect_page(&r, pg);
		goto out;
	}
	bool hok = u64(h + 120) == XXH3_64bits(h, 120);
	printf("file %s: %" PRIu64 " bytes, %" PRIu64 " pages of %u bytes\n", path, r.fsize, r.fsize / r.psize, r.psize);
	printf("header  format %u (min %u), created_ns %" PRIu64 ", flags 0x%x, checksum %s\n", u32(h + 8), u32(h + 52),
	       u64(h + 24), u32(h + 48), hok ? "ok" : "BAD");
	printf("        file_id ");
	for (int i = 0; i < 16; i++)
		printf("%02x", h[32 + i]);
	printf("\n");
	uint8_t m[2][256];
	int best = -1;
	for (int s = 0; s < 2; s++) {
		if (rd(&r, m[s], 256, (uint64_t)s * r.psize + META_OFF) != 0) {
			printf("meta %d  unreadable\n", s);
			continue;
		}
		bool ok = meta_ok(m[s], s);
		printf("meta %d  %s: txnid %" PRIu64 ", npages %" PRIu64 ", commit_ns %" PRIu64 ", flags 0x%x%s\n", s,
		       ok ? "valid" : "INVALID", u64(m[s] + 8), u64(m[s] + 16), u64(m[s] + 24), u32(m[s] + 32),
		       u32(m[s] + 32) & 1 ? " (durable)" : "");
		if (ok && (best < 0 || u64(m[s] + 8) > u64(m[best] + 8)))
			best = s;
	}
	if (best < 0) {
		ret = error("%s: neither meta record is valid", path);
		goto out;
	}
	const uint8_t *mm = m[best];
	r.npages = u64(mm + 16);
	if (r.npages > r.fsize / r.psize)
		r.npages = r.fsize / r.psize;
	r.map = malloc(r.npages + 1);
	memset(r.map, '?', r.npages);
	r.map[0] = r.map[1] = 'H';
	printf("state   txnid %" PRIu64 " (meta %d)\n", u64(mm + 8), best);
	static const char *const sys[] = { "catalog", "FREE", "PENDING", "SNAPSHOTS" };
	tdesc t[4];
	for (int i = 0; i < 4; i++) {
		t[i] = desc(mm + 48 + 32 * i);
		printf("  %-27s root %-9" PRIu64 " depth %u  %10" PRIu64 " entries\n", sys[i], t[i].root, t[i].depth, t[i].count);
	}
	uint64_t pages = 0;
	if (t[1].root)
		runs(&r, t[1].root, t[1].depth, false, 0);
	if (t[2].root)
		runs(&r, t[2].root, t[2].depth, true, 0);
	for (int i = 1; i < 4; i++)
		if (t[i].root)
			walk(&r, t[i].root, t[i].depth, 's', false, &pages, 0);
	printf("user trees (catalog):\n");
	if (t[0].root)
		walk(&r, t[0].root, t[0].depth, 's', true, &pages, 0);
	/* The map: one letter per group of pages, the group's most common kind. */
	static const char legend[] = "Hsvigdfcu.p?";
	uint64_t per = (r.npages + 2047) / 2048;
	per = per ? per : 1;
	printf("map     %" PRIu64 " page%s a letter: H header, s system, v vectors, i ids, g graph, d documents,\n"
	       "        f field indexes, c config, u other, . free, p pending (or only in snapshots), ? none of these\n",
	       per, per == 1 ? "" : "s");
	for (uint64_t g = 0, col = 0; g * per < r.npages; g++) {
		uint64_t cnt[sizeof(legend)] = {0};
		for (uint64_t pg = g * per; pg < (g + 1) * per && pg < r.npages; pg++) {
			const char *k = strchr(legend, r.map[pg]);
			cnt[k ? (size_t)(k - legend) : sizeof(legend) - 2]++;
		}
		size_t top = 0;
		for (size_t i = 1; i < sizeof(legend) - 1; i++)
			if (cnt[i] > cnt[top])
				top = i;
		if (col == 0)
			printf("  %10" PRIu64 " ", g * per);
		putchar(legend[top]);
		if (++col == 64) {
			putchar('\n');
			col = 0;
		} else if ((g + 1) * per >= r.npages) {
			putchar('\n');
		}
	}
	ret = EXIT_SUCCESS;
out:
	free(r.map);
	free(r.buf);
	close(r.fd);
	return ret;
}

const struct command cmd_inspect_def = { "inspect", cmd_inspect, "Show the file's structures, or one page, from its bytes.",
	  "inspect DB [page N]\n"
	  "\n"
	  "Reads the file as docs/FORMAT.md describes it, without the library: the header,\n"
	  "both meta records (valid or not, txnid, durable), the system trees, every user\n"
	  "tree with its depth, entries and pages, and a map of the file by page kind.\n"
	  "`inspect DB page N` decodes one page: header, checksum state, branch entries or\n"
	  "leaf cells. It also shows files the library refuses to open.\n"
	  "\n"
	  "  -h, --help               show this help\n" };
