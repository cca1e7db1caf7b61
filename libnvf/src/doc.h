/* Documents: a record's JSON object in a compact binary encoding that a filter reads
 * in place (docs/FORMAT.md, "Documents"), the record payload (tags + document), and
 * JSON merge patches. Every reader is bounds-checked: a stored document is as
 * untrusted as any other byte of the file. */
#ifndef NVF_DOC_H
#define NVF_DOC_H

#include "nvf_int.h"

#include <jansson.h>

/* Value types: the low 4 bits of a value's tag byte. */
enum {
	NVF_DT_NULL = 0,
	NVF_DT_FALSE = 1,
	NVF_DT_TRUE = 2,
	NVF_DT_INT = 3,   /* zigzag varint */
	NVF_DT_FLOAT = 4, /* 8 bytes, IEEE-754 binary64, little-endian */
	NVF_DT_STR = 5,   /* UTF-8 bytes, then a NUL */
	NVF_DT_ARRAY = 6, /* varint count, elements */
	NVF_DT_OBJECT = 7 /* varint count, (key bytes, NUL, value) sorted by key bytes */
};

#define NVF_DOC_MAX_DEPTH 32        /* nesting of arrays and objects */
#define NVF_DOC_DEFAULT_MAX (1u << 20) /* JSON text bytes */
#define NVF_TAG_MAX_BYTES 1024u
#define NVF_TAGS_MAX 1024u

/* A growable byte buffer. */
typedef struct nvf_buf {
	uint8_t *p;
	size_t n, cap;
} nvf_buf;

int nvf__buf_reserve(nvf_buf *b, size_t more);
int nvf__buf_put(nvf_buf *b, const void *data, size_t n);
int nvf__buf_varint(nvf_buf *b, uint64_t v);
void nvf__buf_free(nvf_buf *b);

/* A decoded value: scalars in place, containers as their body. */
typedef struct nvf_dval {
	int type;
	int64_t i;
	double f;
	const uint8_t *s;  /* string bytes / container body */
	uint64_t len;      /* string bytes / body bytes */
	uint64_t count;    /* container entries */
} nvf_dval;

/* Read the value at *p (not past end); *p moves past it. NVF_ECORRUPT if the bytes
 * are not a well-formed value (containers are walked to find their end, at most
 * NVF_DOC_MAX_DEPTH deep). */
int nvf__dval_read(const uint8_t **p, const uint8_t *end, nvf_dval *out);
/* Look key up in an object: 1 (found, *out set), 0 (absent), or NVF_ECORRUPT. */
int nvf__dval_get(const nvf_dval *obj, const char *key, size_t klen, nvf_dval *out);
/* Iterate a container's entries: *it starts at obj->s; for objects, key is set. */
int nvf__dval_next(const nvf_dval *c, const uint8_t **it, const uint8_t **key, uint64_t *klen, nvf_dval *out);

/* The encoding of a decoded value (a copy of its bytes, tag and lengths included). */
int nvf__dval_encode_copy(const nvf_dval *v, nvf_buf *out);

/* Parse JSON text into a document's encoding, checking it is an object, its depth, its
 * size (at most max_bytes of text) and its numbers. NVF_EINVAL with a message naming the
 * problem ("document: line 1, column 17: ..."). */
int nvf__doc_from_json(const char *json, size_t len, size_t max_bytes, nvf_buf *out);
/* Encode a jansson value (already checked) into out. */
int nvf__doc_encode(const json_t *v, nvf_buf *out);
/* Print a value as compact JSON text (NUL-terminated) into out: the same text jansson
 * prints for it (keys in their sorted order), without building a tree. */
int nvf__doc_print(const nvf_dval *v, nvf_buf *out);
/* Decode an encoded value into a new jansson value (NULL on damage, with the error set). */
json_t *nvf__doc_to_json(const uint8_t *p, size_t n);
/* Check a jansson document: an object, depth, integer range. */
int nvf__doc_check(const json_t *doc, const char *what);

/* The record payload, before compression: the tags, then the document (absent if
 * has_doc is 0). docs/FORMAT.md. */
typedef struct nvf_payload {
	uint32_t ntags;
	const uint8_t *tags; /* ntags x (bytes, NUL), sorted, unique */
	const uint8_t *tags_end;
	bool has_doc;
	nvf_dval doc;        /* an object */
} nvf_payload;

int nvf__payload_parse(const uint8_t *p, size_t n, nvf_payload *out);
/* Build a payload from sorted unique tags (NUL-terminated strings) and an encoded
 * document (doc NULL: none). */
int nvf__payload_build(nvf_buf *out, const char *const *tags, size_t ntags, const uint8_t *doc, size_t doclen);
/* Next tag of a payload: 1 and *tag, *len; 0 at the end; or NVF_ECORRUPT. */
int nvf__payload_tag(const nvf_payload *pl, const uint8_t **it, const uint8_t **tag, uint64_t *len);

/* UTF-8 as RFC 3629 defines it. */
bool nvf__utf8_valid(const uint8_t *s, size_t n);
/* Stored payloads never exceed this (documents and tags are limited far below). */
#define NVF_DOC_MAX_STORED (64u << 20)

/* Validate a tag given by the caller. */
int nvf__tag_check(const char *tag);

#endif
