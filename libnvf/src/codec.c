/* Document codecs. Compression contexts are per thread (created on first use, freed
 * when the thread ends), dictionaries per handle (immutable once written: their ids
 * are never reused, so a cache by id is safe across states). */
#include "codec.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#ifdef NVF_HAVE_ZSTD
#define ZDICT_STATIC_LINKING_ONLY
/* For ZSTD_c_format (magicless frames): an "experimental" parameter of zstd's stable
 * setParameter call, there since 1.3. */
#define ZSTD_STATIC_LINKING_ONLY
#include <zdict.h>
#include <zstd.h>
#endif
#ifdef NVF_HAVE_LZ4
#include <lz4.h>
#endif
#ifdef NVF_HAVE_SNAPPY
#include <snappy-c.h>
#endif

struct nvf_dict {
	uint32_t id;
#ifdef NVF_HAVE_ZSTD
	ZSTD_CDict *c;
	ZSTD_DDict *d;
#endif
};

const char *nvf__codec_name(int codec)
{
	switch (codec) {
	case NVF_CODEC_NONE: return "none";
	case NVF_CODEC_LZ4: return "lz4";
	case NVF_CODEC_SNAPPY: return "snappy";
	case NVF_CODEC_ZSTD: return "zstd";
	case NVF_CODEC_ZSTD_DICT: return "zstd-dict";
	default: return NULL;
	}
}

bool nvf__codec_available(int codec)
{
	switch (codec) {
	case NVF_CODEC_NONE: return true;
#ifdef NVF_HAVE_LZ4
	case NVF_CODEC_LZ4: return true;
#endif
#ifdef NVF_HAVE_SNAPPY
	case NVF_CODEC_SNAPPY: return true;
#endif
#ifdef NVF_HAVE_ZSTD
	case NVF_CODEC_ZSTD:
	case NVF_CODEC_ZSTD_DICT: return true;
#endif
	default: return false;
	}
}

int nvf__codec_check(int codec, int level)
{
	const char *name = nvf__codec_name(codec);
	if (!name)
		return nvf__err(NVF_EINVAL, "doc_codec %d: unknown (NVF_CODEC_NONE, _LZ4, _SNAPPY, _ZSTD or _ZSTD_DICT)", codec);
	if (!nvf__codec_available(codec))
		return nvf__err(NVF_EINVAL, "doc_codec %s: this build of libnvf has no %s (install its -dev package and rebuild)",
				name, name);
	if (level != 0 && codec != NVF_CODEC_ZSTD && codec != NVF_CODEC_ZSTD_DICT)
		return nvf__err(NVF_EINVAL, "doc_codec_level %d: only zstd takes a level", level);
#ifdef NVF_HAVE_ZSTD
	if (level != 0 && (level < ZSTD_minCLevel() || level > ZSTD_maxCLevel()))
		return nvf__err(NVF_EINVAL, "doc_codec_level %d: zstd levels are %d to %d (0 = 3)", level, ZSTD_minCLevel(),
				ZSTD_maxCLevel());
#endif
	return 0;
}

/* ---- per-thread contexts ---- */

#ifdef NVF_HAVE_ZSTD
typedef struct zctx {
	ZSTD_CCtx *c;
	ZSTD_DCtx *d;
	const ZSTD_DDict *ddict; /* referenced by d now (sticky between calls) */
} zctx;

static pthread_key_t zkey;
static pthread_once_t zonce = PTHREAD_ONCE_INIT;

static void zctx_free(void *p)
{
	zctx *z = p;
	if (z) {
		ZSTD_freeCCtx(z->c);
		ZSTD_freeDCtx(z->d);
		free(z);
	}
}

static void zkey_init(void)
{
	pthread_key_create(&zkey, zctx_free);
}

static zctx *get_zctx(void)
{
	pthread_once(&zonce, zkey_init);
	zctx *z = pthread_getspecific(zkey);
	if (!z) {
		z = calloc(1, sizeof(*z));
		if (!z)
			return NULL;
		z->c = ZSTD_createCCtx();
		z->d = ZSTD_createDCtx();
		if (!z->c || !z->d || pthread_setspecific(zkey, z) != 0) {
			zctx_free(z);
			return NULL;
		}
		/* Parameters are sticky: set once for every frame this thread reads. */
		ZSTD_DCtx_setParameter(z->d, ZSTD_d_format, ZSTD_f_zstd1_magicless);
	}
	return z;
}
#endif

/* ---- pack and unpack ---- */

int nvf__codec_header(const uint8_t *rec, size_t n, nvf_dochdr *h)
{
	const uint8_t *p = rec, *end = rec + n;
	uint64_t v;
	if (n < 1 || rec[0] > NVF_CODEC_ZSTD_DICT)
		return nvf__err(NVF_ECORRUPT, "stored document damaged: %s", n < 1 ? "an empty record" : "an unknown codec");
	h->codec = *p++;
	h->dict_id = 0;
	if (h->codec == NVF_CODEC_NONE) {
		h->raw_len = (uint32_t)(n - 1);
		h->size = 1;
		return 0;
	}
	for (int field = 0; field < (h->codec == NVF_CODEC_ZSTD_DICT ? 2 : 1); field++) {
		v = 0;
		for (int shift = 0;; shift += 7) {
			if (p >= end || shift > 28)
				return nvf__err(NVF_ECORRUPT, "stored document damaged: its header runs past the end");
			v |= (uint64_t)(*p & 0x7f) << shift;
			if (!(*p++ & 0x80))
				break;
		}
		if (v > UINT32_MAX)
			return nvf__err(NVF_ECORRUPT, "stored document damaged: a header field out of range");
		if (field == 0)
			h->raw_len = (uint32_t)v;
		else
			h->dict_id = (uint32_t)v;
	}
	h->size = (size_t)(p - rec);
	return 0;
}

int nvf__codec_pack(int codec, int level, const nvf_dict *dict, const uint8_t *src, size_t n, nvf_buf *out)
{
	if (n > UINT32_MAX)
		return nvf__err(NVF_EINVAL, "payload of %zu bytes is too large", n);
	/* The header for a compressed record; replaced by the raw one's byte below if
	 * compression does not pay. */
	size_t start = out->n;
	uint8_t c0 = (uint8_t)(codec == NVF_CODEC_ZSTD_DICT && !dict ? NVF_CODEC_ZSTD : codec);
	int rc = nvf__buf_put(out, &c0, 1);
	if (rc == 0 && c0 != NVF_CODEC_NONE)
		rc = nvf__buf_varint(out, n);
	if (rc == 0 && c0 == NVF_CODEC_ZSTD_DICT)
		rc = nvf__buf_varint(out, dict->id);
	if (rc != 0)
		return rc;
	size_t got = 0;
	switch (codec) {
	case NVF_CODEC_NONE:
		break;
#ifdef NVF_HAVE_LZ4
	case NVF_CODEC_LZ4: {
		if (n > (size_t)LZ4_MAX_INPUT_SIZE)
			break;
		int bound = LZ4_compressBound((int)n);
		if ((rc = nvf__buf_reserve(out, (size_t)bound)) != 0)
			return rc;
		int r = LZ4_compress_default((const char *)src, (char *)out->p + out->n, (int)n, bound);
		got = r > 0 ? (size_t)r : 0;
		break;
	}
#endif
#ifdef NVF_HAVE_SNAPPY
	case NVF_CODEC_SNAPPY: {
		size_t bound = snappy_max_compressed_length(n);
		if ((rc = nvf__buf_reserve(out, bound)) != 0)
			return rc;
		size_t len = bound;
		if (snappy_compress((const char *)src, n, (char *)out->p + out->n, &len) == SNAPPY_OK)
			got = len;
		break;
	}
#endif
#ifdef NVF_HAVE_ZSTD
	case NVF_CODEC_ZSTD:
	case NVF_CODEC_ZSTD_DICT: {
		zctx *z = get_zctx();
		if (!z)
			return nvf__oom();
		size_t bound = ZSTD_compressBound(n);
		if ((rc = nvf__buf_reserve(out, bound)) != 0)
			return rc;
		/* Frames without what our header already says (magic number, dictionary
		 * id, content size): 8 bytes a document, a twentieth of a small one. */
		ZSTD_CCtx_reset(z->c, ZSTD_reset_session_and_parameters);
		ZSTD_CCtx_setParameter(z->c, ZSTD_c_format, ZSTD_f_zstd1_magicless);
		ZSTD_CCtx_setParameter(z->c, ZSTD_c_contentSizeFlag, 0);
		ZSTD_CCtx_setParameter(z->c, ZSTD_c_dictIDFlag, 0);
		if (codec == NVF_CODEC_ZSTD_DICT && dict) {
			ZSTD_CCtx_refCDict(z->c, dict->c); /* its level came with it */
		} else {
			ZSTD_CCtx_setParameter(z->c, ZSTD_c_compressionLevel, level ? level : 3);
			codec = NVF_CODEC_ZSTD; /* no dictionary yet: plain zstd, and the header says so */
		}
		size_t r = ZSTD_compress2(z->c, out->p + out->n, bound, src, n);
		got = ZSTD_isError(r) ? 0 : r;
		break;
	}
#endif
	default:
		return nvf__err(NVF_EINVAL, "codec %d is not available", codec);
	}
	/* Not worth it (or it failed): store the bytes as they are. */
	if (got == 0 || (double)got > (1.0 - NVF_CODEC_MIN_SAVING) * (double)n) {
		out->n = start;
		uint8_t raw = NVF_CODEC_NONE;
		if ((rc = nvf__buf_put(out, &raw, 1)) != 0)
			return rc;
		return nvf__buf_put(out, src, n);
	}
	out->n += got;
	return 0;
}

static int damaged(const char *codec, const char *why)
{
	return nvf__err(NVF_ECORRUPT, "stored document damaged: %s data %s", codec, why);
}

int nvf__codec_unpack(const uint8_t *rec, size_t n, nvf_dict *(*dict_for)(void *ctx, uint32_t id), void *ctx,
		      nvf_buf *tmp, const uint8_t **out, size_t *outlen)
{
	nvf_dochdr h;
	int rc = nvf__codec_header(rec, n, &h);
	if (rc != 0)
		return rc;
	const uint8_t *src = rec + h.size;
	size_t sn = n - h.size;
	if (h.codec == NVF_CODEC_NONE) {
		*out = src;
		*outlen = sn;
		return 0;
	}
	if (!nvf__codec_available(h.codec))
		return nvf__codec_name(h.codec)
			       ? nvf__err(NVF_EVERSION, "a document is stored with %s, which this build of libnvf lacks",
					  nvf__codec_name(h.codec))
			       : damaged("record", "names an unknown codec");
	/* A damaged length must not make us allocate without bound: documents are
	 * limited in size when written (NVF_DOC_MAX_STORED covers any limit). */
	if (h.raw_len > NVF_DOC_MAX_STORED)
		return damaged(nvf__codec_name(h.codec), "claims an impossible size");
	tmp->n = 0;
	rc = nvf__buf_reserve(tmp, h.raw_len ? h.raw_len : 1);
	if (rc != 0)
		return rc;
	size_t got = 0;
	switch (h.codec) {
#ifdef NVF_HAVE_LZ4
	case NVF_CODEC_LZ4: {
		if (sn > (size_t)INT32_MAX)
			return damaged("lz4", "too long");
		int r = LZ4_decompress_safe((const char *)src, (char *)tmp->p, (int)sn, (int)h.raw_len);
		if (r < 0)
			return damaged("lz4", "does not decompress");
		got = (size_t)r;
		break;
	}
#endif
#ifdef NVF_HAVE_SNAPPY
	case NVF_CODEC_SNAPPY: {
		size_t len = h.raw_len;
		if (snappy_uncompress((const char *)src, sn, (char *)tmp->p, &len) != SNAPPY_OK)
			return damaged("snappy", "does not decompress");
		got = len;
		break;
	}
#endif
#ifdef NVF_HAVE_ZSTD
	case NVF_CODEC_ZSTD:
	case NVF_CODEC_ZSTD_DICT: {
		zctx *z = get_zctx();
		if (!z)
			return nvf__oom();
		/* The dictionary is referenced again only when it changes: a scan reads
		 * thousands of frames with the same one. */
		const ZSTD_DDict *want = NULL;
		if (h.codec == NVF_CODEC_ZSTD_DICT) {
			nvf_dict *d = dict_for ? dict_for(ctx, h.dict_id) : NULL;
			if (!d)
				return nvf__err(NVF_ECORRUPT, "stored document damaged: its dictionary %u is missing", h.dict_id);
			want = d->d;
		}
		if (want != z->ddict) {
			ZSTD_DCtx_refDDict(z->d, want);
			z->ddict = want;
		}
		size_t r = ZSTD_decompressDCtx(z->d, tmp->p, h.raw_len, src, sn);
		if (ZSTD_isError(r))
			return damaged("zstd", ZSTD_getErrorName(r));
		got = r;
		break;
	}
#endif
	default:
		return damaged("record", "names an unknown codec");
	}
	if (got != h.raw_len)
		return damaged(nvf__codec_name(h.codec), "decompresses to the wrong length");
	tmp->n = got;
	*out = tmp->p;
	*outlen = got;
	return 0;
}

/* ---- dictionaries ---- */

nvf_dict *nvf__dict_new(uint32_t id, const uint8_t *bytes, size_t n, int level)
{
#ifdef NVF_HAVE_ZSTD
	nvf_dict *d = calloc(1, sizeof(*d));
	if (!d) {
		nvf__oom();
		return NULL;
	}
	d->id = id;
	d->c = ZSTD_createCDict(bytes, n, level ? level : 3);
	d->d = ZSTD_createDDict(bytes, n);
	if (!d->c || !d->d) {
		nvf__dict_free(d);
		nvf__err(NVF_ECORRUPT, "zstd dictionary %u (%zu bytes) cannot be loaded", id, n);
		return NULL;
	}
	return d;
#else
	(void)id, (void)bytes, (void)n, (void)level;
	nvf__err(NVF_EVERSION, "this build of libnvf has no zstd");
	return NULL;
#endif
}

void nvf__dict_free(nvf_dict *d)
{
	if (!d)
		return;
#ifdef NVF_HAVE_ZSTD
	ZSTD_freeCDict(d->c);
	ZSTD_freeDDict(d->d);
#endif
	free(d);
}

uint32_t nvf__dict_id(const nvf_dict *d)
{
	return d->id;
}

int nvf__dict_train(const uint8_t *samples, const size_t *sizes, size_t nsamples, size_t capacity, nvf_buf *out)
{
#ifdef NVF_HAVE_ZSTD
	if (nsamples > UINT32_MAX)
		nsamples = UINT32_MAX;
	out->n = 0;
	int rc = nvf__buf_reserve(out, capacity);
	if (rc != 0)
		return rc;
	size_t r = ZDICT_trainFromBuffer(out->p, capacity, samples, sizes, (unsigned)nsamples);
	if (ZDICT_isError(r))
		return nvf__err(NVF_EINVAL, "zstd dictionary training failed on %zu documents: %s (it needs more or longer documents)",
				nsamples, ZDICT_getErrorName(r));
	out->n = r;
	return 0;
#else
	(void)samples, (void)sizes, (void)nsamples, (void)capacity, (void)out;
	return nvf__err(NVF_EINVAL, "this build of libnvf has no zstd");
#endif
}
