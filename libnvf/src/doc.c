/* Documents: JSON text (parsed and printed by jansson) to and from a compact binary
 * encoding in which a filter finds a key without building a tree: objects keep their
 * keys sorted and every string and container carries its length, so a lookup walks
 * one object's entries and skips each value in O(1). msgpack and CBOR would need a
 * full parse to skip a container (their maps and arrays carry a count, not a byte
 * length), and msgpack-c's reader builds a tree; so the encoding is ours, documented
 * in docs/FORMAT.md. */
#include "doc.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- buffers ---- */

int nvf__buf_reserve(nvf_buf *b, size_t more)
{
	if (b->n + more <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->n + more)
		cap *= 2;
	uint8_t *p = realloc(b->p, cap);
	if (!p)
		return nvf__oom();
	b->p = p;
	b->cap = cap;
	return 0;
}

int nvf__buf_put(nvf_buf *b, const void *data, size_t n)
{
	int rc = nvf__buf_reserve(b, n);
	if (rc == 0 && n) {
		memcpy(b->p + b->n, data, n);
		b->n += n;
	}
	return rc;
}

int nvf__buf_varint(nvf_buf *b, uint64_t v)
{
	uint8_t tmp[10];
	size_t n = 0;
	do {
		tmp[n] = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v)
			tmp[n] |= 0x80;
		n++;
	} while (v);
	return nvf__buf_put(b, tmp, n);
}

void nvf__buf_free(nvf_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* ---- reading ---- */

static int bad(const char *what)
{
	return nvf__err(NVF_ECORRUPT, "stored document damaged: %s", what);
}

static int get_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
	uint64_t v = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		if (*p >= end)
			return bad("varint runs past the end");
		uint8_t c = *(*p)++;
		v |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80)) {
			*out = v;
			return 0;
		}
	}
	return bad("varint longer than 10 bytes");
}

int nvf__dval_read(const uint8_t **p, const uint8_t *end, nvf_dval *v)
{
	if (*p >= end)
		return bad("value runs past the end");
	uint8_t tag = *(*p)++;
	v->type = tag & 0x0f;
	if (tag >> 4)
		return bad("unknown tag bits");
	uint64_t x;
	int rc;
	switch (v->type) {
	case NVF_DT_NULL:
	case NVF_DT_FALSE:
	case NVF_DT_TRUE:
		return 0;
	case NVF_DT_INT:
		if ((rc = get_varint(p, end, &x)) != 0)
			return rc;
		v->i = (int64_t)((x >> 1) ^ (~(x & 1) + 1)); /* zigzag */
		return 0;
	case NVF_DT_FLOAT:
		if (end - *p < 8)
			return bad("float runs past the end");
		memcpy(&v->f, *p, 8);
		*p += 8;
		return 0;
	case NVF_DT_STR:
		if ((rc = get_varint(p, end, &v->len)) != 0)
			return rc;
		if (v->len > (uint64_t)(end - *p))
			return bad("string runs past the end");
		v->s = *p;
		*p += v->len;
		return 0;
	case NVF_DT_ARRAY:
	case NVF_DT_OBJECT:
		if ((rc = get_varint(p, end, &v->count)) != 0 || (rc = get_varint(p, end, &v->len)) != 0)
			return rc;
		if (v->len > (uint64_t)(end - *p))
			return bad("container runs past the end");
		/* Every entry takes at least one byte (two for an object): a count
		 * beyond that is damage, and bounds any loop over it. */
		if (v->count > v->len)
			return bad("container count larger than its body");
		v->s = *p;
		*p += v->len;
		return 0;
	default:
		return bad("unknown value type");
	}
}

int nvf__dval_next(const nvf_dval *c, const uint8_t **it, const uint8_t **key, uint64_t *klen, nvf_dval *out)
{
	const uint8_t *end = c->s + c->len;
	if (*it >= end)
		return 0;
	int rc;
	if (c->type == NVF_DT_OBJECT) {
		if ((rc = get_varint(it, end, klen)) != 0)
			return rc;
		if (*klen > (uint64_t)(end - *it))
			return bad("key runs past the end");
		*key = *it;
		*it += *klen;
	}
	if ((rc = nvf__dval_read(it, end, out)) != 0)
		return rc;
	return 1;
}

static int keycmp(const uint8_t *a, uint64_t al, const uint8_t *b, uint64_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);
	return c ? c : al < bl ? -1 : al > bl;
}

int nvf__dval_get(const nvf_dval *obj, const char *key, size_t klen, nvf_dval *out)
{
	if (obj->type != NVF_DT_OBJECT)
		return 0;
	const uint8_t *it = obj->s, *k = NULL;
	uint64_t kl = 0;
	nvf_dval v;
	int rc;
	while ((rc = nvf__dval_next(obj, &it, &k, &kl, &v)) == 1) {
		int c = keycmp(k, kl, (const uint8_t *)key, klen);
		if (c == 0) {
			*out = v;
			return 1;
		}
		if (c > 0)
			return 0; /* keys are sorted: it is not further on */
	}
	return rc;
}

/* ---- JSON in ---- */

static int check_value(const json_t *v, int depth, const char *what)
{
	if (depth > NVF_DOC_MAX_DEPTH)
		return nvf__err(NVF_EINVAL, "%s: nested more than %d levels deep", what, NVF_DOC_MAX_DEPTH);
	if (json_is_array(v)) {
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e) {
			int rc = check_value(e, depth + 1, what);
			if (rc != 0)
				return rc;
		}
	} else if (json_is_object(v)) {
		const char *k;
		json_t *e;
		json_object_foreach((json_t *)(uintptr_t)v, k, e) {
			int rc = check_value(e, depth + 1, what);
			if (rc != 0)
				return rc;
		}
	} else if (json_is_real(v) && !isfinite(json_real_value(v))) {
		return nvf__err(NVF_EINVAL, "%s: a number is not finite", what);
	}
	return 0;
}

int nvf__doc_check(const json_t *doc, const char *what)
{
	if (!json_is_object(doc))
		return nvf__err(NVF_EINVAL, "%s: must be a JSON object, not %s", what,
				json_is_array(doc) ? "an array" : json_is_string(doc) ? "a string" :
				json_is_number(doc) ? "a number" : json_is_null(doc) ? "null" : "a boolean");
	return check_value(doc, 1, what);
}

int nvf__doc_from_json(const char *json, size_t len, size_t max_bytes, nvf_buf *out)
{
	if (!json)
		return nvf__err(NVF_EINVAL, "document: NULL text");
	if (len > max_bytes)
		return nvf__err(NVF_EINVAL, "document: %zu bytes of JSON, more than the collection's limit of %zu", len,
				max_bytes);
	json_error_t e;
	/* Duplicate keys would make "the" value of a key ambiguous: refuse them. */
	json_t *doc = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &e);
	if (!doc) {
		/* jansson says "too big integer" for an integer beyond int64. */
		bool big = strstr(e.text, "too big") != NULL;
		return nvf__err(NVF_EINVAL, "document: line %d, column %d: %s%s", e.line, e.column, e.text,
				big ? " (integers must fit int64)" : "");
	}
	int rc = nvf__doc_check(doc, "document");
	if (rc == 0)
		rc = nvf__doc_encode(doc, out);
	json_decref(doc);
	return rc;
}

typedef struct kv {
	const char *k;
	size_t kl;
	json_t *v;
} kv;

static int cmp_kv(const void *a, const void *b)
{
	const kv *x = a, *y = b;
	return keycmp((const uint8_t *)x->k, x->kl, (const uint8_t *)y->k, y->kl);
}

int nvf__doc_encode(const json_t *v, nvf_buf *b)
{
	int rc = 0;
	uint8_t tag;
	switch (json_typeof(v)) {
	case JSON_NULL: tag = NVF_DT_NULL; return nvf__buf_put(b, &tag, 1);
	case JSON_FALSE: tag = NVF_DT_FALSE; return nvf__buf_put(b, &tag, 1);
	case JSON_TRUE: tag = NVF_DT_TRUE; return nvf__buf_put(b, &tag, 1);
	case JSON_INTEGER: {
		int64_t i = (int64_t)json_integer_value(v);
		tag = NVF_DT_INT;
		if ((rc = nvf__buf_put(b, &tag, 1)) != 0)
			return rc;
		return nvf__buf_varint(b, ((uint64_t)i << 1) ^ (uint64_t)(i >> 63));
	}
	case JSON_REAL: {
		double f = json_real_value(v);
		tag = NVF_DT_FLOAT;
		if ((rc = nvf__buf_put(b, &tag, 1)) != 0)
			return rc;
		return nvf__buf_put(b, &f, 8);
	}
	case JSON_STRING: {
		size_t n = json_string_length(v);
		tag = NVF_DT_STR;
		if ((rc = nvf__buf_put(b, &tag, 1)) != 0 || (rc = nvf__buf_varint(b, n)) != 0)
			return rc;
		return nvf__buf_put(b, json_string_value(v), n);
	}
	case JSON_ARRAY:
	case JSON_OBJECT:
		break;
	}
	/* Containers: the body goes to a buffer of its own first, since its length
	 * precedes it. */
	nvf_buf body = {0};
	size_t count;
	if (json_is_array(v)) {
		tag = NVF_DT_ARRAY;
		count = json_array_size(v);
		for (size_t i = 0; i < count && rc == 0; i++)
			rc = nvf__doc_encode(json_array_get(v, i), &body);
	} else {
		tag = NVF_DT_OBJECT;
		count = json_object_size(v);
		kv *ents = malloc((count ? count : 1) * sizeof(kv));
		if (!ents)
			return nvf__oom();
		size_t n = 0;
		const char *k;
		json_t *e;
		json_object_foreach((json_t *)(uintptr_t)v, k, e) {
			ents[n++] = (kv){k, strlen(k), e};
		}
		qsort(ents, n, sizeof(kv), cmp_kv);
		for (size_t i = 0; i < n && rc == 0; i++) {
			if ((rc = nvf__buf_varint(&body, ents[i].kl)) == 0 &&
			    (rc = nvf__buf_put(&body, ents[i].k, ents[i].kl)) == 0)
				rc = nvf__doc_encode(ents[i].v, &body);
		}
		free(ents);
	}
	if (rc == 0 && (rc = nvf__buf_put(b, &tag, 1)) == 0 && (rc = nvf__buf_varint(b, count)) == 0 &&
	    (rc = nvf__buf_varint(b, body.n)) == 0)
		rc = nvf__buf_put(b, body.p, body.n);
	nvf__buf_free(&body);
	return rc;
}

int nvf__dval_encode_copy(const nvf_dval *v, nvf_buf *out)
{
	uint8_t tag = (uint8_t)v->type;
	int rc = nvf__buf_put(out, &tag, 1);
	if (rc != 0)
		return rc;
	switch (v->type) {
	case NVF_DT_NULL:
	case NVF_DT_FALSE:
	case NVF_DT_TRUE:
		return 0;
	case NVF_DT_INT:
		return nvf__buf_varint(out, ((uint64_t)v->i << 1) ^ (uint64_t)(v->i >> 63));
	case NVF_DT_FLOAT:
		return nvf__buf_put(out, &v->f, 8);
	case NVF_DT_STR:
		if ((rc = nvf__buf_varint(out, v->len)) != 0)
			return rc;
		return nvf__buf_put(out, v->s, (size_t)v->len);
	default:
		if ((rc = nvf__buf_varint(out, v->count)) != 0 || (rc = nvf__buf_varint(out, v->len)) != 0)
			return rc;
		return nvf__buf_put(out, v->s, (size_t)v->len);
	}
}

/* ---- JSON out ---- */

static json_t *to_json(const nvf_dval *v, int depth)
{
	if (depth > NVF_DOC_MAX_DEPTH) {
		bad("nested too deep");
		return NULL;
	}
	switch (v->type) {
	case NVF_DT_NULL: return json_null();
	case NVF_DT_FALSE: return json_false();
	case NVF_DT_TRUE: return json_true();
	case NVF_DT_INT: return json_integer((json_int_t)v->i);
	case NVF_DT_FLOAT: return json_real(v->f);
	case NVF_DT_STR: {
		json_t *s = json_stringn_nocheck((const char *)v->s, (size_t)v->len);
		if (!s)
			nvf__oom();
		return s;
	}
	default:
		break;
	}
	json_t *c = v->type == NVF_DT_ARRAY ? json_array() : json_object();
	if (!c) {
		nvf__oom();
		return NULL;
	}
	const uint8_t *it = v->s, *k = NULL;
	uint64_t kl = 0;
	nvf_dval e;
	int rc;
	while ((rc = nvf__dval_next(v, &it, &k, &kl, &e)) == 1) {
		json_t *x = to_json(&e, depth + 1);
		if (!x)
			goto fail;
		if (v->type == NVF_DT_ARRAY) {
			if (json_array_append_new(c, x) != 0)
				goto fail;
		} else {
			/* Keys are stored with their length; jansson wants C strings. */
			char stack[128], *key = kl < sizeof(stack) ? stack : malloc(kl + 1);
			if (!key) {
				json_decref(x);
				nvf__oom();
				goto fail;
			}
			memcpy(key, k, kl);
			key[kl] = 0;
			int r = json_object_set_new_nocheck(c, key, x);
			if (key != stack)
				free(key);
			if (r != 0)
				goto fail;
		}
	}
	if (rc < 0)
		goto fail;
	return c;
fail:
	json_decref(c);
	return NULL;
}

json_t *nvf__doc_to_json(const uint8_t *p, size_t n)
{
	const uint8_t *q = p, *end = p + n;
	nvf_dval v;
	if (nvf__dval_read(&q, end, &v) != 0)
		return NULL;
	if (q != end) {
		bad("bytes after the document");
		return NULL;
	}
	return to_json(&v, 1);
}

/* ---- the record payload: tags, then the document ---- */

int nvf__payload_parse(const uint8_t *p, size_t n, nvf_payload *out)
{
	const uint8_t *end = p + n;
	uint64_t ntags, len;
	int rc = get_varint(&p, end, &ntags);
	if (rc != 0)
		return rc;
	if (ntags > NVF_TAGS_MAX)
		return bad("too many tags");
	out->ntags = (uint32_t)ntags;
	out->tags = p;
	for (uint64_t i = 0; i < ntags; i++) {
		if ((rc = get_varint(&p, end, &len)) != 0)
			return rc;
		if (len > (uint64_t)(end - p))
			return bad("tag runs past the end");
		p += len;
	}
	out->tags_end = p;
	if (p >= end)
		return bad("payload without its document flag");
	out->has_doc = *p++ != 0;
	if (!out->has_doc)
		return p == end ? 0 : bad("bytes after the payload");
	if ((rc = nvf__dval_read(&p, end, &out->doc)) != 0)
		return rc;
	if (out->doc.type != NVF_DT_OBJECT || p != end)
		return bad("the document is not one object");
	return 0;
}

int nvf__payload_tag(const nvf_payload *pl, const uint8_t **it, const uint8_t **tag, uint64_t *len)
{
	if (*it >= pl->tags_end)
		return 0;
	int rc = get_varint(it, pl->tags_end, len);
	if (rc != 0)
		return rc;
	if (*len > (uint64_t)(pl->tags_end - *it))
		return bad("tag runs past the end");
	*tag = *it;
	*it += *len;
	return 1;
}

int nvf__payload_build(nvf_buf *out, const char *const *tags, size_t ntags, const uint8_t *doc, size_t doclen)
{
	int rc = nvf__buf_varint(out, ntags);
	for (size_t i = 0; i < ntags && rc == 0; i++) {
		size_t l = strlen(tags[i]);
		if ((rc = nvf__buf_varint(out, l)) == 0)
			rc = nvf__buf_put(out, tags[i], l);
	}
	uint8_t has = doc != NULL;
	if (rc == 0)
		rc = nvf__buf_put(out, &has, 1);
	if (rc == 0 && doc)
		rc = nvf__buf_put(out, doc, doclen);
	return rc;
}

/* UTF-8 as RFC 3629 defines it: no overlongs, no surrogates, nothing past U+10FFFF. */
bool nvf__utf8_valid(const uint8_t *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		uint8_t c = s[i];
		size_t len;
		uint32_t cp;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			len = 2, cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			len = 3, cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			len = 4, cp = c & 0x07;
		} else {
			return false;
		}
		if (i + len > n)
			return false;
		for (size_t j = 1; j < len; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + j] & 0x3f);
		}
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

int nvf__tag_check(const char *tag)
{
	if (!tag)
		return nvf__err(NVF_EINVAL, "tag: NULL");
	size_t n = strlen(tag);
	if (n == 0 || n > NVF_TAG_MAX_BYTES)
		return nvf__err(NVF_EINVAL, "tag of %zu bytes: must be 1 to %u", n, NVF_TAG_MAX_BYTES);
	if (!nvf__utf8_valid((const uint8_t *)tag, n))
		return nvf__err(NVF_EINVAL, "tag \"%.40s\": not valid UTF-8", tag);
	return 0;
}
