/* Documents: JSON text (parsed by jansson) to and from a compact binary encoding that
 * a filter reads in place: one pass over the bytes finds a key, nothing is built.
 * Strings and keys end with a NUL byte (JSON text without \u0000 has none inside) and
 * containers carry a count, not a byte length: the bytes then repeat from document to
 * document as JSON text does, and compress as well (length prefixes, which vary with
 * every value, cost a zstd dictionary a fifth of its ratio on Debian's package index).
 * msgpack and CBOR would prefix every string with its length; msgpack-c's reader also
 * builds a tree. So the encoding is ours, documented in docs/FORMAT.md. */
#include "doc.h"

#include <errno.h>
#include <inttypes.h>
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

/* Skip the value at *p, at most depth levels deep. */
static int skip(const uint8_t **p, const uint8_t *end, int depth);

/* A NUL-terminated run at *p: its length, *p moved past the NUL. */
static int cstr(const uint8_t **p, const uint8_t *end, uint64_t *len)
{
	const uint8_t *z = memchr(*p, 0, (size_t)(end - *p));
	if (!z)
		return bad("string runs past the end");
	*len = (uint64_t)(z - *p);
	*p = z + 1;
	return 0;
}

static int read_depth(const uint8_t **p, const uint8_t *end, nvf_dval *v, int depth)
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
		v->s = *p;
		return cstr(p, end, &v->len);
	case NVF_DT_ARRAY:
	case NVF_DT_OBJECT:
		if (depth > NVF_DOC_MAX_DEPTH)
			return bad("nested too deep");
		if ((rc = get_varint(p, end, &v->count)) != 0)
			return rc;
		/* Every entry takes at least one byte (two for an object): a count beyond
		 * what is left is damage, and bounds the walk below. */
		if (v->count > (uint64_t)(end - *p))
			return bad("container count larger than what is left");
		v->s = *p;
		for (uint64_t i = 0; i < v->count; i++) {
			if (v->type == NVF_DT_OBJECT && (rc = cstr(p, end, &x)) != 0)
				return rc;
			if ((rc = skip(p, end, depth + 1)) != 0)
				return rc;
		}
		v->len = (uint64_t)(*p - v->s);
		return 0;
	default:
		return bad("unknown value type");
	}
}

static int skip(const uint8_t **p, const uint8_t *end, int depth)
{
	nvf_dval v;
	return read_depth(p, end, &v, depth);
}

int nvf__dval_read(const uint8_t **p, const uint8_t *end, nvf_dval *v)
{
	return read_depth(p, end, v, 1);
}

int nvf__dval_next(const nvf_dval *c, const uint8_t **it, const uint8_t **key, uint64_t *klen, nvf_dval *out)
{
	const uint8_t *end = c->s + c->len;
	if (*it >= end)
		return 0;
	int rc;
	if (c->type == NVF_DT_OBJECT) {
		*key = *it;
		if ((rc = cstr(it, end, klen)) != 0)
			return rc;
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
	const uint8_t *it = obj->s, *end = obj->s + obj->len;
	int rc;
	for (uint64_t i = 0; i < obj->count && it < end; i++) {
		const uint8_t *k = it;
		uint64_t kl = 0;
		if ((rc = cstr(&it, end, &kl)) != 0)
			return rc;
		int c = keycmp(k, kl, (const uint8_t *)key, klen);
		if (c > 0)
			return 0; /* keys are sorted: it is not further on */
		if (c == 0)
			return nvf__dval_read(&it, end, out) == 0 ? 1 : NVF_ECORRUPT;
		if ((rc = skip(&it, end, 2)) != 0)
			return rc;
	}
	return 0;
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
		/* NUL-terminated: jansson refuses \u0000 inside strings (no JSON_ALLOW_NUL). */
		tag = NVF_DT_STR;
		if ((rc = nvf__buf_put(b, &tag, 1)) != 0)
			return rc;
		return nvf__buf_put(b, json_string_value(v), json_string_length(v) + 1);
	}
	case JSON_ARRAY:
	case JSON_OBJECT:
		break;
	}
	/* Containers: the tag, the count, then the entries. */
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
			if ((rc = nvf__buf_put(&body, ents[i].k, ents[i].kl + 1)) == 0)
				rc = nvf__doc_encode(ents[i].v, &body);
		}
		free(ents);
	}
	if (rc == 0 && (rc = nvf__buf_put(b, &tag, 1)) == 0 && (rc = nvf__buf_varint(b, count)) == 0)
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
		return nvf__buf_put(out, v->s, (size_t)v->len + 1); /* with its NUL */
	default:
		if ((rc = nvf__buf_varint(out, v->count)) != 0)
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
		} else if (json_object_set_new_nocheck(c, (const char *)k, x) != 0) {
			goto fail; /* keys end with their NUL in the encoding */
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

/* ---- JSON text straight from the encoding ---- */

static int print_str(nvf_buf *b, const uint8_t *s, uint64_t n)
{
	static const char hex[] = "0123456789abcdef";
	int rc = nvf__buf_reserve(b, (size_t)n * 6 + 2);
	if (rc != 0)
		return rc;
	uint8_t *o = b->p + b->n;
	*o++ = '"';
	for (uint64_t i = 0; i < n; i++) {
		/* Runs that need no escape are copied whole, found 8 bytes at a time: a
		 * word holds a byte below 0x20, a '"' or a '\\' iff one of these SWAR tests
		 * says so (Mycroft's "has a zero byte" on the word, or on it XOR '"' or
		 * '\\' repeated). */
		uint64_t j = i;
		const uint64_t ones = UINT64_C(0x0101010101010101), highs = UINT64_C(0x8080808080808080);
		while (j + 8 <= n) {
			uint64_t w;
			memcpy(&w, s + j, 8);
			uint64_t lt = (w - ones * 0x20) & ~w & highs;
			uint64_t q = w ^ (ones * '"'), bs = w ^ (ones * '\\');
			if (lt | ((q - ones) & ~q & highs) | ((bs - ones) & ~bs & highs))
				break;
			j += 8;
		}
		while (j < n && s[j] >= 0x20 && s[j] != '"' && s[j] != '\\')
			j++;
		memcpy(o, s + i, (size_t)(j - i));
		o += j - i;
		if (j == n)
			break;
		i = j;
		uint8_t c = s[i];
		if (c == '"' || c == '\\') {
			*o++ = '\\';
			*o++ = c;
		} else if (c < 0x20) {
			*o++ = '\\';
			switch (c) {
			case '\n': *o++ = 'n'; break;
			case '\t': *o++ = 't'; break;
			case '\r': *o++ = 'r'; break;
			case '\b': *o++ = 'b'; break;
			case '\f': *o++ = 'f'; break;
			default:
				memcpy(o, "u00", 3);
				o[3] = (uint8_t)hex[c >> 4];
				o[4] = (uint8_t)hex[c & 15];
				o += 5;
			}
		} else {
			*o++ = c; /* UTF-8 passes through, as jansson prints it */
		}
	}
	*o++ = '"';
	b->n = (size_t)(o - b->p);
	return 0;
}

static int print_value(nvf_buf *b, const nvf_dval *v, int depth)
{
	char num[40];
	int len;
	switch (v->type) {
	case NVF_DT_NULL: return nvf__buf_put(b, "null", 4);
	case NVF_DT_FALSE: return nvf__buf_put(b, "false", 5);
	case NVF_DT_TRUE: return nvf__buf_put(b, "true", 4);
	case NVF_DT_INT:
		len = snprintf(num, sizeof(num), "%" PRId64, v->i);
		return nvf__buf_put(b, num, (size_t)len);
	case NVF_DT_FLOAT:
		/* As jansson prints a real: 17 significant digits, always with a '.' or
		 * an exponent, so that it reads back as a float. */
		len = snprintf(num, sizeof(num), "%.17g", v->f);
		if (!strpbrk(num, ".eEn"))
			memcpy(num + len, ".0", 3), len += 2;
		return nvf__buf_put(b, num, (size_t)len);
	case NVF_DT_STR:
		return print_str(b, v->s, v->len);
	default:
		break;
	}
	if (depth > NVF_DOC_MAX_DEPTH)
		return bad("nested too deep");
	bool obj = v->type == NVF_DT_OBJECT;
	int rc = nvf__buf_put(b, obj ? "{" : "[", 1);
	const uint8_t *it = v->s, *k = NULL;
	uint64_t kl = 0;
	nvf_dval e;
	for (uint64_t i = 0; rc == 0 && (rc = nvf__dval_next(v, &it, &k, &kl, &e)) == 1; i++) {
		rc = i ? nvf__buf_put(b, ",", 1) : 0;
		if (rc == 0 && obj && (rc = print_str(b, k, kl)) == 0)
			rc = nvf__buf_put(b, ":", 1);
		if (rc == 0)
			rc = print_value(b, &e, depth + 1);
	}
	if (rc < 0)
		return rc;
	return nvf__buf_put(b, obj ? "}" : "]", 1);
}

int nvf__doc_print(const nvf_dval *v, nvf_buf *out)
{
	int rc = print_value(out, v, 1);
	return rc == 0 ? nvf__buf_put(out, "", 1) : rc;
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
	for (uint64_t i = 0; i < ntags; i++)
		if ((rc = cstr(&p, end, &len)) != 0)
			return rc;
	out->tags_end = p;
	if (p >= end)
		return bad("payload without its document flag");
	out->has_doc = *p++ != 0;
	if (!out->has_doc)
		return p == end ? 0 : bad("bytes after the payload");
	/* The document runs to the end of the payload: its entries are walked (and
	 * checked) only as far as a reader needs them, not here. */
	if (p >= end || *p != NVF_DT_OBJECT)
		return bad("the document is not an object");
	p++;
	out->doc.type = NVF_DT_OBJECT;
	if ((rc = get_varint(&p, end, &out->doc.count)) != 0)
		return rc;
	if (out->doc.count > (uint64_t)(end - p))
		return bad("container count larger than what is left");
	out->doc.s = p;
	out->doc.len = (uint64_t)(end - p);
	return 0;
}

int nvf__payload_tag(const nvf_payload *pl, const uint8_t **it, const uint8_t **tag, uint64_t *len)
{
	if (*it >= pl->tags_end)
		return 0;
	*tag = *it;
	int rc = cstr(it, pl->tags_end, len);
	return rc != 0 ? rc : 1;
}

int nvf__payload_build(nvf_buf *out, const char *const *tags, size_t ntags, const uint8_t *doc, size_t doclen)
{
	int rc = nvf__buf_varint(out, ntags);
	for (size_t i = 0; i < ntags && rc == 0; i++)
		rc = nvf__buf_put(out, tags[i], strlen(tags[i]) + 1);
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
