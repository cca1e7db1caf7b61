/* Codecs for stored documents: none, LZ4, Snappy, zstd (with a level) and zstd with
 * a dictionary trained on the collection's own documents (ZDICT) and kept in the
 * file. Vectors are never compressed: searches read them in place. */
#ifndef NVF_CODEC_H
#define NVF_CODEC_H

#include "doc.h"

/* A stored record's header (the DOCS tree value starts with it; docs/FORMAT.md): a
 * codec byte, then, if compressed, the payload's length as a varint, then, for
 * NVF_CODEC_ZSTD_DICT, the dictionary id as a varint. 1 to 9 bytes. */
typedef struct nvf_dochdr {
	int codec;
	uint32_t raw_len;  /* payload bytes once decompressed */
	uint32_t dict_id;
	size_t size;       /* header bytes */
} nvf_dochdr;

/* Parse a record's header: 0 or NVF_ECORRUPT. */
int nvf__codec_header(const uint8_t *rec, size_t n, nvf_dochdr *out);

/* A document must shrink by at least this share to be stored compressed. */
#define NVF_CODEC_MIN_SAVING 0.10

/* Whether the library was built with the codec. */
bool nvf__codec_available(int codec);
/* Check a codec and level given by the caller (NVF_EINVAL naming them). */
int nvf__codec_check(int codec, int level);

/* Compress src into out (appended): the header, then the bytes. dict may be NULL
 * (then ZSTD_DICT compresses as plain zstd and says so in the header). Falls back to
 * raw when compression saves less than NVF_CODEC_MIN_SAVING. */
typedef struct nvf_dict nvf_dict;
int nvf__codec_pack(int codec, int level, const nvf_dict *dict, const uint8_t *src, size_t n, nvf_buf *out);
/* The payload of a stored record (header + bytes) in *out: the bytes themselves if
 * raw, else decompressed into tmp. dict_for(ctx, id) finds a dictionary. */
int nvf__codec_unpack(const uint8_t *rec, size_t n, nvf_dict *(*dict_for)(void *ctx, uint32_t id), void *ctx,
		      nvf_buf *tmp, const uint8_t **out, size_t *outlen);

/* Dictionaries. */
nvf_dict *nvf__dict_new(uint32_t id, const uint8_t *bytes, size_t n, int level);
void nvf__dict_free(nvf_dict *d);
uint32_t nvf__dict_id(const nvf_dict *d);
/* Train a dictionary of at most capacity bytes from samples (concatenated, sizes[i]
 * each). NVF_EINVAL naming why ZDICT failed (too few or too small samples). */
int nvf__dict_train(const uint8_t *samples, const size_t *sizes, size_t nsamples, size_t capacity, nvf_buf *out);

const char *nvf__codec_name(int codec);

#endif
