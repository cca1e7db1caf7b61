/* On-disk structures of the .nvf format. docs/FORMAT.md describes them byte by byte;
 * keep the two in step. All integers are little-endian (the library refuses to build
 * on big-endian hosts, see nvf_int.h), every struct has a static size assert. */
#ifndef NVF_FORMAT_H
#define NVF_FORMAT_H

#include <stdint.h>

#define NVF_MAGIC "\x89NVF\r\n\x1a\n" /* 8 bytes, PNG-style: catches text-mode mangling */
#define NVF_FORMAT_VERSION 1u
#define NVF_META_MAGIC UINT64_C(0x314154454d46564e) /* "NVFMETA1" little-endian */

#define NVF_MIN_PAGE 512u
#define NVF_MAX_PAGE 65536u
#define NVF_DEFAULT_PAGE 4096u

#define NVF_HEADER_OFF 0u
#define NVF_HEADER_SIZE 128u
#define NVF_META_OFF 128u /* within page 0 (slot 0) and page 1 (slot 1) */
#define NVF_META_SIZE 256u
#define NVF_FIRST_DATA_PAGE 2u

/* File header: the first 128 bytes of page 0 and of page 1 (identical copies, written
 * once at creation). */
struct nvf_disk_header {
	uint8_t magic[8];          /* NVF_MAGIC */
	uint32_t format_version;   /* NVF_FORMAT_VERSION */
	uint32_t page_size;        /* bytes, power of two */
	uint32_t header_size;      /* NVF_HEADER_SIZE */
	uint32_t meta_size;        /* NVF_META_SIZE */
	uint64_t created_ns;       /* creation time, ns since the epoch (UTC) */
	uint8_t file_id[16];       /* random at creation */
	uint32_t flags;            /* NVF_HEADER_* */
	uint32_t min_version;      /* oldest library format version that may write this file */
	uint8_t reserved[64];
	uint64_t checksum;         /* XXH3-64 of bytes [0, 120) */
};
_Static_assert(sizeof(struct nvf_disk_header) == NVF_HEADER_SIZE, "header size");
#define NVF_HEADER_COLLECTION 0x1u /* the file holds a collection (nvf_db_create) */

/* A B+tree descriptor: where a tree's root is and what it holds. Stored in the meta
 * record (the four system trees), in the catalog (user trees) and in snapshots. */
struct nvf_disk_tree {
	uint64_t root;   /* page number of the root, 0 for an empty tree */
	uint64_t count;  /* entries */
	uint64_t aux;    /* owner-defined (arrays: number of rows) */
	uint16_t depth;  /* 0 empty, 1 the root is a leaf */
	uint16_t kind;   /* NVF_TREE_KIND_* */
	uint32_t aux32;  /* owner-defined (arrays: row size) */
};
_Static_assert(sizeof(struct nvf_disk_tree) == 32, "tree descriptor size");

enum {
	NVF_TREE_KIND_PLAIN = 0, /* u64 -> bytes */
	NVF_TREE_KIND_ARRAY = 1, /* chunk index -> extent of fixed-size rows */
};

#define NVF_META_DURABLE 0x1u /* written after the data it points to was synced */

/* Meta record: bytes [128, 384) of page 0 (slot 0) and page 1 (slot 1). A commit
 * writes one slot; open takes the valid slot with the highest txnid. */
struct nvf_disk_meta {
	uint64_t magic;       /* NVF_META_MAGIC */
	uint64_t txnid;       /* id of the committed state */
	uint64_t npages;      /* pages in use, the high-water mark (file may be longer) */
	uint64_t commit_ns;   /* commit time */
	uint32_t flags;       /* NVF_META_* */
	uint32_t slot;        /* 0 or 1: must match where the record is found */
	uint64_t reserved0;
	struct nvf_disk_tree catalog;   /* user trees: tree id -> struct nvf_disk_tree */
	struct nvf_disk_tree freetree;  /* reusable extents: first page -> page count */
	struct nvf_disk_tree pending;   /* freed extents still visible to some state */
	struct nvf_disk_tree snapshots; /* named snapshots: snapshot id -> record */
	uint8_t reserved[72];
	uint64_t checksum;    /* XXH3-64 of bytes [0, 248) */
};
_Static_assert(sizeof(struct nvf_disk_meta) == NVF_META_SIZE, "meta size");
_Static_assert(NVF_META_OFF + NVF_META_SIZE <= NVF_MIN_PAGE, "meta fits the smallest page");

/* Header of every B+tree page. */
struct nvf_disk_page {
	uint64_t checksum; /* XXH3-64 of bytes [8, page_size) */
	uint64_t pgno;     /* the page's own number */
	uint64_t txnid;    /* transaction that wrote it */
	uint16_t type;     /* NVF_PAGE_* */
	uint16_t nkeys;
	uint32_t upper;    /* leaf: offset of the lowest cell; branch: 0 */
};
_Static_assert(sizeof(struct nvf_disk_page) == 32, "page header size");

enum {
	NVF_PAGE_BRANCH = 0x4272, /* "rB" */
	NVF_PAGE_LEAF = 0x664c,   /* "Lf" */
};

/* Branch entry: child i holds keys >= key[i] (key[0] is unused, -infinity). */
struct nvf_disk_branch_ent {
	uint64_t key;
	uint64_t child;
};
_Static_assert(sizeof(struct nvf_disk_branch_ent) == 16, "branch entry size");

/* Leaf cell header; u16 offsets to cells follow the page header in key order, cells
 * grow down from the end of the page, each 8-byte aligned. */
struct nvf_disk_cell {
	uint64_t key;
	uint32_t vlen;  /* inline: value bytes that follow; extent: 32 */
	uint32_t flags; /* NVF_CELL_* */
};
_Static_assert(sizeof(struct nvf_disk_cell) == 16, "cell header size");

#define NVF_CELL_EXTENT 0x1u

/* Reference from a leaf cell to an extent: a run of contiguous pages holding one
 * value, page-aligned and without a header, so that rows can be read in place. */
struct nvf_disk_extref {
	uint64_t pgno;     /* first page */
	uint64_t len;      /* value bytes; the extent is ceil(len / page_size) pages */
	uint64_t txnid;    /* transaction that wrote it */
	uint64_t checksum; /* XXH3-64 of the len bytes, seed nvf__extent_seed(pgno, txnid) */
};
_Static_assert(sizeof(struct nvf_disk_extref) == 32, "extent ref size");

/* FREE tree value: number of pages of the reusable run starting at the key. */
/* PENDING tree: key = freeing txnid << 24 | sequence; value: */
struct nvf_disk_pending {
	uint64_t pgno;
	uint64_t npages;
	uint64_t alloc_txnid; /* transaction that wrote the run */
};
_Static_assert(sizeof(struct nvf_disk_pending) == 24, "pending record size");
#define NVF_PENDING_SEQ_BITS 24

/* SNAPSHOTS tree value (inline): the fixed part, then name and note bytes. */
struct nvf_disk_snapshot {
	uint64_t txnid;            /* the pinned committed state */
	uint64_t created_ns;
	uint64_t npages;           /* the state's high-water mark */
	struct nvf_disk_tree catalog; /* the state's catalog */
	uint16_t name_len;
	uint16_t note_len;
	uint32_t reserved;
	/* char name[name_len]; char note[note_len]; (no terminators) */
};
_Static_assert(sizeof(struct nvf_disk_snapshot) == 64, "snapshot record size");
#define NVF_SNAPSHOT_NAME_MAX 255u
#define NVF_SNAPSHOT_NOTE_MAX 16384u /* its JSON document */

/* Lock file PATH-lock: shared memory, nothing durable. */
#define NVF_LOCK_MAGIC UINT64_C(0x4b434f4c46564e) /* "NVFLOCK" */
#define NVF_LOCK_VERSION 1u
#define NVF_LOCK_SLOTS 510u

struct nvf_lock_header {
	uint64_t magic;
	uint32_t version;
	uint32_t nslots;
	uint64_t committed_txnid;  /* atomic: last commit published by a writer */
	uint32_t next_handle;      /* atomic: handle ids for liveness locks */
	uint32_t generation;       /* atomic: bumped before and after a compaction renames the file */
	uint8_t boot_id[40];       /* kernel boot id when the table was built */
	uint8_t pad[56];
};
_Static_assert(sizeof(struct nvf_lock_header) == 128, "lock header size");

struct nvf_lock_slot {
	uint64_t txnid;   /* atomic: state the reader reads, 0 = none */
	uint32_t owner;   /* atomic: handle id, 0 = free */
	uint32_t pid;
	uint8_t pad[48];  /* one cache line per slot: readers do not false-share */
};
_Static_assert(sizeof(struct nvf_lock_slot) == 64, "lock slot size");

/* fcntl byte locks on the lock file (OFD locks: per handle, released on death). */
#define NVF_LOCK_BYTE_USERS UINT64_C(0)          /* shared by every handle; exclusive = rebuild */
#define NVF_LOCK_BYTE_WRITER UINT64_C(1)         /* the writer lock */
#define NVF_LOCK_BYTE_HANDLE_BASE (UINT64_C(1) << 32) /* + handle id: liveness */

#endif
