/* Filters: a recursive-descent parser for the grammar of docs/FILTER.md, compiled to
 * a flat array of nodes, and the evaluator that runs it on a record's stored metadata:
 * the META row for version and times, the payload (tags and the binary document) for
 * the rest, each loaded only if the filter reads it. */
#include "filter.h"
#include "meta.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

/* ---- ISO-8601 ---- */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	/* Howard Hinnant's algorithm: days since 1970-01-01 in the proleptic Gregorian
	 * calendar. */
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static bool digits(const char *s, size_t n, size_t at, size_t count, int *out)
{
	if (at + count > n)
		return false;
	int v = 0;
	for (size_t i = 0; i < count; i++) {
		char c = s[at + i];
		if (c < '0' || c > '9')
			return false;
		v = v * 10 + (c - '0');
	}
	*out = v;
	return true;
}

bool nvf__iso8601_parse(const char *s, size_t n, int64_t *us)
{
	int y, mo, d, h = 0, mi = 0, sec = 0;
	int64_t frac_us = 0;
	size_t i = 0;
	if (!digits(s, n, 0, 4, &y) || n < 10 || s[4] != '-' || !digits(s, n, 5, 2, &mo) || s[7] != '-' ||
	    !digits(s, n, 8, 2, &d))
		return false;
	i = 10;
	static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] + (mo == 2 && leap))
		return false;
	int zone_min = 0;
	if (i < n) {
		if (s[i] != 'T' && s[i] != ' ')
			return false;
		if (!digits(s, n, i + 1, 2, &h) || i + 3 >= n || s[i + 3] != ':' || !digits(s, n, i + 4, 2, &mi))
			return false;
		i += 6;
		if (i < n && s[i] == ':') {
			if (!digits(s, n, i + 1, 2, &sec))
				return false;
			i += 3;
			if (i < n && s[i] == '.') {
				size_t k = 0;
				i++;
				for (; i < n && s[i] >= '0' && s[i] <= '9'; i++, k++) {
					if (k >= 9)
						return false;
					if (k < 6)
						frac_us = frac_us * 10 + (s[i] - '0');
				}
				if (k == 0)
					return false;
				for (; k < 6; k++)
					frac_us *= 10;
			}
		}
		if (h > 23 || mi > 59 || sec > 59)
			return false;
		if (i < n) {
			if (s[i] == 'Z') {
				i++;
			} else if (s[i] == '+' || s[i] == '-') {
				int zh, zm;
				if (!digits(s, n, i + 1, 2, &zh) || i + 3 >= n || s[i + 3] != ':' || !digits(s, n, i + 4, 2, &zm) ||
				    zh > 23 || zm > 59)
					return false;
				zone_min = (zh * 60 + zm) * (s[i] == '-' ? -1 : 1);
				i += 6;
			} else {
				return false;
			}
		}
	}
	if (i != n)
		return false;
	int64_t secs = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec - zone_min * 60;
	*us = secs * 1000000 + frac_us;
	return true;
}

/* ---- numbers ---- */

/* a (an int64) against b (a finite double), exactly. */
static int cmp_i_d(int64_t a, double b)
{
	if (b >= 9223372036854775808.0)
		return -1;
	if (b < -9223372036854775808.0)
		return 1;
	double t = trunc(b);
	int64_t bi = (int64_t)t; /* exact: |t| < 2^63 */
	if (a != bi)
		return a < bi ? -1 : 1;
	double frac = b - t;
	return frac > 0 ? -1 : frac < 0 ? 1 : 0;
}

int nvf__num_cmp(bool ai, int64_t a_i, double a_f, bool bi, int64_t b_i, double b_f)
{
	if (ai && bi)
		return a_i < b_i ? -1 : a_i > b_i;
	if (ai)
		return cmp_i_d(a_i, b_f);
	if (bi)
		return -cmp_i_d(b_i, a_f);
	return a_f < b_f ? -1 : a_f > b_f;
}

/* ---- paths ---- */

static bool is_name_start(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static bool is_name_char(char c)
{
	return is_name_start(c) || (c >= '0' && c <= '9');
}

static const char *const keywords[] = {"AND", "OR", "NOT", "IN", "BETWEEN", "CONTAINS", "ANY", "ALL",
				       "IS", "NULL", "EXISTS", "STARTS", "WITH", "TRUE", "FALSE"};

static bool is_keyword(const char *s, size_t n)
{
	for (size_t i = 0; i < NVF_ARRAY_LEN(keywords); i++)
		if (strlen(keywords[i]) == n && strncasecmp(keywords[i], s, n) == 0)
			return true;
	return false;
}

static const struct {
	const char *name;
	int field;
} record_fields[] = {{"id", NVF_PF_ID}, {"version", NVF_PF_VERSION}, {"created_at", NVF_PF_CREATED},
		     {"updated_at", NVF_PF_UPDATED}, {"tags", NVF_PF_TAGS}};

/* The canonical text of a path: record fields by name; document paths as "$." and
 * segments joined by dots, each quoted unless it is a plain name. */
static int canon(nvf_path *p)
{
	if (p->field != NVF_PF_DOC) {
		for (size_t i = 0; i < NVF_ARRAY_LEN(record_fields); i++)
			if (record_fields[i].field == p->field)
				p->canon = strdup(record_fields[i].name);
		return p->canon ? 0 : nvf__oom();
	}
	nvf_buf b = {0};
	int rc = nvf__buf_put(&b, "$", 1);
	for (size_t i = 0; i < p->nseg && rc == 0; i++) {
		const nvf_seg *s = &p->seg[i];
		bool plain = s->len > 0 && is_name_start(s->s[0]) && !is_keyword(s->s, s->len);
		for (size_t j = 0; j < s->len && plain; j++)
			plain = is_name_char(s->s[j]);
		rc = nvf__buf_put(&b, plain ? "." : ".\"", plain ? 1 : 2);
		for (size_t j = 0; j < s->len && rc == 0; j++) {
			if (!plain && (s->s[j] == '"' || s->s[j] == '\\'))
				rc = nvf__buf_put(&b, "\\", 1);
			if (rc == 0)
				rc = nvf__buf_put(&b, &s->s[j], 1);
		}
		if (rc == 0 && !plain)
			rc = nvf__buf_put(&b, "\"", 1);
	}
	if (rc == 0)
		rc = nvf__buf_put(&b, "", 1);
	if (rc != 0) {
		nvf__buf_free(&b);
		return rc;
	}
	p->canon = (char *)b.p;
	return 0;
}

void nvf__path_free(nvf_path *p)
{
	for (size_t i = 0; i < p->nseg; i++)
		free(p->seg[i].s);
	free(p->seg);
	free(p->canon);
	memset(p, 0, sizeof(*p));
}

/* ---- the parser ---- */

enum tok {
	T_END, T_NAME, T_QNAME, T_STRING, T_NUMBER, T_LPAREN, T_RPAREN, T_COMMA, T_DOT, T_DOLLAR,
	T_EQ, T_NE, T_LT, T_LE, T_GT, T_GE,
};

typedef struct parser {
	const char *src;
	size_t len, pos;
	/* the current token */
	enum tok t;
	size_t start, tlen;  /* in src */
	char *text;          /* T_QNAME / T_STRING: the unescaped text */
	size_t textlen;
	int depth;
	struct nvf_filter *f;
	int rc;
	NVF_VEC(nvf_fnode) nodes;
	NVF_VEC(nvf_path) paths;
} parser;

__attribute__((format(printf, 3, 4))) static int perr(parser *P, size_t col0, const char *fmt, ...)
{
	if (P->rc)
		return P->rc;
	char msg[300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	P->rc = nvf__err(NVF_EINVAL, "filter: column %zu: %s", col0 + 1, msg);
	return P->rc;
}

/* The current token, for messages. */
static const char *tokdesc(parser *P, char *buf, size_t n)
{
	if (P->t == T_END)
		return "the end of the filter";
	size_t l = P->tlen > 40 ? 40 : P->tlen;
	snprintf(buf, n, "'%.*s%s'", (int)l, P->src + P->start, P->tlen > 40 ? "..." : "");
	return buf;
}

static bool kw(parser *P, const char *word)
{
	return P->t == T_NAME && strlen(word) == P->tlen && strncasecmp(P->src + P->start, word, P->tlen) == 0;
}

/* A quoted run (' or "), unescaped into P->text. */
static int lex_quoted(parser *P, char q)
{
	nvf_buf b = {0};
	size_t i = P->pos + 1;
	for (;;) {
		if (i >= P->len) {
			nvf__buf_free(&b);
			return perr(P, P->pos, "%s not closed", q == '\'' ? "string" : "quoted name");
		}
		char c = P->src[i];
		if (c == q) {
			if (q == '\'' && i + 1 < P->len && P->src[i + 1] == '\'') {
				i += 2;
				if (nvf__buf_put(&b, "'", 1) != 0)
					goto oom;
				continue;
			}
			break;
		}
		if (q == '"' && c == '\\') {
			if (i + 1 >= P->len || (P->src[i + 1] != '"' && P->src[i + 1] != '\\')) {
				nvf__buf_free(&b);
				return perr(P, i, "in a quoted name, '\\' must be followed by '\"' or '\\'");
			}
			i++;
			c = P->src[i];
		}
		if (nvf__buf_put(&b, &c, 1) != 0)
			goto oom;
		i++;
	}
	if (q == '\'' && b.n > NVF_FILTER_MAX_STRING) {
		size_t n = b.n;
		nvf__buf_free(&b);
		return perr(P, P->pos, "string literal of %zu bytes, at most %u", n, NVF_FILTER_MAX_STRING);
	}
	if (nvf__buf_put(&b, "", 1) != 0)
		goto oom;
	free(P->text);
	P->text = (char *)b.p;
	P->textlen = b.n - 1;
	P->tlen = i + 1 - P->pos;
	return 0;
oom:
	nvf__buf_free(&b);
	return P->rc = nvf__oom();
}

static int next(parser *P)
{
	P->pos += P->tlen;
	while (P->pos < P->len && (P->src[P->pos] == ' ' || P->src[P->pos] == '\t' || P->src[P->pos] == '\n' ||
				   P->src[P->pos] == '\r'))
		P->pos++;
	P->start = P->pos;
	P->tlen = 0;
	if (P->pos >= P->len) {
		P->t = T_END;
		return 0;
	}
	const char *s = P->src + P->pos;
	size_t left = P->len - P->pos;
	char c = s[0];
	P->tlen = 1;
	switch (c) {
	case '(': P->t = T_LPAREN; return 0;
	case ')': P->t = T_RPAREN; return 0;
	case ',': P->t = T_COMMA; return 0;
	case '.': P->t = T_DOT; return 0;
	case '$': P->t = T_DOLLAR; return 0;
	case '=': P->t = T_EQ; return 0;
	case '<':
		if (left > 1 && s[1] == '=')
			P->t = T_LE, P->tlen = 2;
		else if (left > 1 && s[1] == '>')
			P->t = T_NE, P->tlen = 2;
		else
			P->t = T_LT;
		return 0;
	case '>':
		if (left > 1 && s[1] == '=')
			P->t = T_GE, P->tlen = 2;
		else
			P->t = T_GT;
		return 0;
	case '!':
		if (left > 1 && s[1] == '=') {
			P->t = T_NE, P->tlen = 2;
			return 0;
		}
		break;
	case '\'':
		P->t = T_STRING;
		return lex_quoted(P, '\'');
	case '"':
		P->t = T_QNAME;
		return lex_quoted(P, '"');
	default:
		break;
	}
	if (c == '-' || (c >= '0' && c <= '9')) {
		size_t i = c == '-' ? 1 : 0;
		if (i >= left || s[i] < '0' || s[i] > '9')
			return perr(P, P->pos, "expected a digit after '-'");
		while (i < left && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i < left && s[i] == '.') {
			i++;
			if (i >= left || s[i] < '0' || s[i] > '9')
				return perr(P, P->pos + i, "expected a digit after the decimal point");
			while (i < left && s[i] >= '0' && s[i] <= '9')
				i++;
		}
		if (i < left && (s[i] == 'e' || s[i] == 'E')) {
			i++;
			if (i < left && (s[i] == '+' || s[i] == '-'))
				i++;
			if (i >= left || s[i] < '0' || s[i] > '9')
				return perr(P, P->pos + i, "expected a digit in the exponent");
			while (i < left && s[i] >= '0' && s[i] <= '9')
				i++;
		}
		if (i < left && is_name_char(s[i]))
			return perr(P, P->pos + i, "unexpected '%c' after a number", s[i]);
		P->t = T_NUMBER;
		P->tlen = i;
		return 0;
	}
	if (is_name_start(c)) {
		size_t i = 1;
		while (i < left && is_name_char(s[i]))
			i++;
		P->t = T_NAME;
		P->tlen = i;
		return 0;
	}
	if ((unsigned char)c >= 0x20 && (unsigned char)c < 0x7f)
		return perr(P, P->pos, "unexpected character '%c'", c);
	return perr(P, P->pos, "unexpected byte 0x%02x", (unsigned char)c);
}

static int add_node(parser *P, nvf_fnode n)
{
	if (NVF_VEC_PUSH(P->nodes, n) != 0) {
		P->rc = -ENOMEM;
		return -1;
	}
	return (int)P->nodes.n - 1;
}

/* A path: [$.] segment (. segment)* */
static int parse_path(parser *P, nvf_path *out)
{
	memset(out, 0, sizeof(*out));
	bool dollar = false;
	size_t col = P->start;
	if (P->t == T_DOLLAR) {
		dollar = true;
		if (next(P) != 0)
			return P->rc;
		if (P->t != T_DOT)
			return perr(P, P->start, "expected '.' after '$'");
		if (next(P) != 0)
			return P->rc;
	}
	NVF_VEC(nvf_seg) segs = {0};
	bool quoted_first = P->t == T_QNAME;
	for (;;) {
		nvf_seg sg;
		char buf[64];
		if (P->t == T_NAME) {
			if (is_keyword(P->src + P->start, P->tlen)) {
				for (size_t i = 0; i < segs.n; i++)
					free(segs.v[i].s);
				free(segs.v);
				return perr(P, P->start, "expected a path, found the keyword %s (quote a key spelt like a keyword: \"%.*s\")",
					    tokdesc(P, buf, sizeof(buf)), (int)P->tlen, P->src + P->start);
			}
			sg.len = P->tlen;
			sg.s = strndup(P->src + P->start, P->tlen);
		} else if (P->t == T_QNAME) {
			if (!nvf__utf8_valid((const uint8_t *)P->text, P->textlen)) {
				for (size_t i = 0; i < segs.n; i++)
					free(segs.v[i].s);
				free(segs.v);
				return perr(P, P->start, "quoted name is not valid UTF-8");
			}
			sg.len = P->textlen;
			sg.s = malloc(P->textlen + 1);
			if (sg.s)
				memcpy(sg.s, P->text, P->textlen + 1);
		} else {
			for (size_t i = 0; i < segs.n; i++)
				free(segs.v[i].s);
			free(segs.v);
			return perr(P, P->start, "expected a path, found %s", tokdesc(P, buf, sizeof(buf)));
		}
		if (!sg.s || NVF_VEC_PUSH(segs, sg) != 0) {
			free(sg.s);
			out->seg = segs.v;
			out->nseg = segs.n;
			nvf__path_free(out);
			return P->rc = nvf__oom();
		}
		/* A path is one word: no space around its dots. */
		size_t seg_end = P->start + P->tlen;
		if (next(P) != 0)
			break;
		if (P->t != T_DOT)
			break;
		if (P->start != seg_end) {
			perr(P, P->start, "no space is allowed before '.' in a path");
			break;
		}
		size_t dot_end = P->start + 1;
		if (next(P) != 0)
			break;
		if (P->start != dot_end) {
			perr(P, P->start, "no space is allowed after '.' in a path");
			break;
		}
	}
	out->seg = segs.v;
	out->nseg = segs.n;
	if (P->rc) {
		nvf__path_free(out);
		return P->rc;
	}
	out->field = NVF_PF_DOC;
	/* Only the bare names are the record's fields: "id" (quoted), id.x and $.id are
	 * in the document. */
	(void)col;
	if (!dollar && !quoted_first && out->nseg == 1) {
		for (size_t i = 0; i < NVF_ARRAY_LEN(record_fields); i++)
			if (strlen(record_fields[i].name) == out->seg[0].len &&
			    memcmp(record_fields[i].name, out->seg[0].s, out->seg[0].len) == 0)
				out->field = record_fields[i].field;
	}
	if (out->field != NVF_PF_DOC) {
		for (size_t i = 0; i < out->nseg; i++)
			free(out->seg[i].s);
		free(out->seg);
		out->seg = NULL;
		out->nseg = 0;
	}
	int rc = canon(out);
	if (rc != 0) {
		nvf__path_free(out);
		return P->rc = rc;
	}
	return 0;
}

static int parse_literal(parser *P, nvf_lit *l, const nvf_path *path, const char *after)
{
	memset(l, 0, sizeof(*l));
	char buf[64];
	size_t col = P->start;
	switch (P->t) {
	case T_NUMBER: {
		char tmp[400];
		if (P->tlen >= sizeof(tmp))
			return perr(P, col, "number literal of %zu characters is too long", P->tlen);
		memcpy(tmp, P->src + P->start, P->tlen);
		tmp[P->tlen] = 0;
		bool integer = !strpbrk(tmp, ".eE");
		errno = 0;
		char *end;
		if (integer) {
			long long v = strtoll(tmp, &end, 10);
			if (errno == ERANGE)
				return perr(P, col, "integer literal %s is out of range (int64)", tmp);
			l->type = NVF_DT_INT;
			l->i = v;
		} else {
			double v = strtod(tmp, &end);
			if (!isfinite(v) || (errno == ERANGE && fabs(v) > 1))
				return perr(P, col, "number literal %s is out of range (float64)", tmp);
			l->type = NVF_DT_FLOAT;
			l->f = v;
		}
		break;
	}
	case T_STRING:
		l->type = NVF_DT_STR;
		l->s = P->text;
		l->len = P->textlen;
		P->text = NULL;
		if (!nvf__utf8_valid((const uint8_t *)l->s, l->len)) {
			free(l->s);
			l->s = NULL;
			return perr(P, col, "string literal is not valid UTF-8");
		}
		l->iso = nvf__iso8601_parse(l->s, l->len, &l->us);
		break;
	case T_NAME:
		if (kw(P, "TRUE"))
			l->type = NVF_DT_TRUE;
		else if (kw(P, "FALSE"))
			l->type = NVF_DT_FALSE;
		else if (kw(P, "NULL"))
			l->type = NVF_DT_NULL;
		else
			return perr(P, col, "expected a value after %s, found %s (strings are in single quotes)", after,
				    tokdesc(P, buf, sizeof(buf)));
		break;
	default:
		return perr(P, col, "expected a value after %s%s%s", after, P->t == T_END ? "" : ", found ",
			    P->t == T_END ? "" : tokdesc(P, buf, sizeof(buf)));
	}
	/* Timestamps of the record compare as microseconds: convert ISO literals now. */
	if (path && (path->field == NVF_PF_CREATED || path->field == NVF_PF_UPDATED) && l->type == NVF_DT_STR) {
		if (!l->iso) {
			free(l->s);
			l->s = NULL;
			return perr(P, col, "%s compares with microseconds or an ISO-8601 timestamp such as '2026-01-31T12:00:00Z'",
				    path->canon);
		}
		free(l->s);
		l->s = NULL;
		l->type = NVF_DT_INT;
		l->i = l->us;
		l->iso = false;
	}
	/* On an error the literal is not the caller's: free what it holds. */
	if (next(P) != 0) {
		free(l->s);
		l->s = NULL;
		return P->rc;
	}
	return 0;
}

static void free_lits(nvf_lit *l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(l[i].s);
	free(l);
}

/* '(' literal (',' literal)* ')' */
static int parse_list(parser *P, nvf_fnode *n, const nvf_path *path, const char *what)
{
	char buf[64];
	if (P->t != T_LPAREN)
		return perr(P, P->start, "expected '(' after %s, found %s", what, tokdesc(P, buf, sizeof(buf)));
	if (next(P) != 0)
		return P->rc;
	NVF_VEC(nvf_lit) lits = {0};
	for (;;) {
		nvf_lit l;
		if (lits.n >= NVF_FILTER_MAX_LIST) {
			free_lits(lits.v, lits.n);
			return perr(P, P->start, "a list of more than %u values", NVF_FILTER_MAX_LIST);
		}
		if (parse_literal(P, &l, path, lits.n ? "','" : "'('") != 0) {
			free_lits(lits.v, lits.n);
			return P->rc;
		}
		if (NVF_VEC_PUSH(lits, l) != 0) {
			free(l.s);
			free_lits(lits.v, lits.n);
			return P->rc = -ENOMEM;
		}
		if (P->t == T_RPAREN)
			break;
		if (P->t != T_COMMA) {
			free_lits(lits.v, lits.n);
			return perr(P, P->start, "expected ',' or ')' in the list, found %s", tokdesc(P, buf, sizeof(buf)));
		}
		if (next(P) != 0) {
			free_lits(lits.v, lits.n);
			return P->rc;
		}
	}
	/* The token after ')' may fail to lex: the list is not the node's until then
	 * (the callers free nothing of a node whose parse failed). */
	if (next(P) != 0) {
		free_lits(lits.v, lits.n);
		return P->rc;
	}
	n->lits = lits.v;
	n->nlits = lits.n;
	return 0;
}

static int parse_or(parser *P);

static int add_path(parser *P, nvf_path *p)
{
	if (NVF_VEC_PUSH(P->paths, *p) != 0) {
		nvf__path_free(p);
		P->rc = -ENOMEM;
		return -1;
	}
	return (int)P->paths.n - 1;
}

/* A predicate on a path, the path already parsed. */
static int parse_predicate(parser *P, nvf_path *path)
{
	char buf[64], after[80];
	nvf_fnode n = {.path = -1, .a = -1, .b = -1};
	int pi = add_path(P, path);
	if (pi < 0)
		return -1;
	n.path = pi;
	const nvf_path *pp = &P->paths.v[pi];
	snprintf(after, sizeof(after), "'%.*s'", (int)(P->tlen > 20 ? 20 : P->tlen), P->src + P->start);
	static const struct {
		enum tok t;
		int op;
	} ops[] = {{T_EQ, NVF_OP_EQ}, {T_NE, NVF_OP_NE}, {T_LT, NVF_OP_LT},
		   {T_LE, NVF_OP_LE}, {T_GT, NVF_OP_GT}, {T_GE, NVF_OP_GE}};
	for (size_t i = 0; i < NVF_ARRAY_LEN(ops); i++) {
		if (P->t != ops[i].t)
			continue;
		n.kind = NVF_FN_CMP;
		n.op = ops[i].op;
		n.lits = calloc(1, sizeof(nvf_lit));
		n.nlits = 1;
		if (!n.lits)
			return P->rc = nvf__oom();
		if (next(P) != 0 || parse_literal(P, n.lits, pp, after) != 0) {
			free_lits(n.lits, 1);
			return -1;
		}
		return add_node(P, n);
	}
	bool negate = false;
	if (kw(P, "NOT")) {
		negate = true;
		if (next(P) != 0)
			return -1;
		if (!kw(P, "IN") && !kw(P, "BETWEEN"))
			return perr(P, P->start, "expected IN or BETWEEN after NOT, found %s", tokdesc(P, buf, sizeof(buf)));
	}
	if (kw(P, "IN")) {
		n.kind = negate ? NVF_FN_NOT_IN : NVF_FN_IN;
		if (next(P) != 0 || parse_list(P, &n, pp, "IN") != 0)
			return -1;
		return add_node(P, n);
	}
	if (kw(P, "BETWEEN")) {
		n.kind = negate ? NVF_FN_NOT_BETWEEN : NVF_FN_BETWEEN;
		n.lits = calloc(2, sizeof(nvf_lit));
		if (!n.lits)
			return P->rc = nvf__oom();
		n.nlits = 2;
		if (next(P) != 0 || parse_literal(P, &n.lits[0], pp, "BETWEEN") != 0) {
			free_lits(n.lits, 2);
			return -1;
		}
		if (!kw(P, "AND")) {
			free_lits(n.lits, 2);
			return perr(P, P->start, "expected AND in BETWEEN ... AND ..., found %s", tokdesc(P, buf, sizeof(buf)));
		}
		if (next(P) != 0 || parse_literal(P, &n.lits[1], pp, "AND") != 0) {
			free_lits(n.lits, 2);
			return -1;
		}
		return add_node(P, n);
	}
	if (kw(P, "CONTAINS")) {
		if (next(P) != 0)
			return -1;
		if (kw(P, "ANY") || kw(P, "ALL")) {
			n.kind = kw(P, "ANY") ? NVF_FN_CONTAINS_ANY : NVF_FN_CONTAINS_ALL;
			const char *w = n.kind == NVF_FN_CONTAINS_ANY ? "CONTAINS ANY" : "CONTAINS ALL";
			if (next(P) != 0 || parse_list(P, &n, pp, w) != 0)
				return -1;
			return add_node(P, n);
		}
		n.kind = NVF_FN_CONTAINS;
		n.lits = calloc(1, sizeof(nvf_lit));
		if (!n.lits)
			return P->rc = nvf__oom();
		n.nlits = 1;
		if (parse_literal(P, n.lits, pp, "CONTAINS") != 0) {
			free_lits(n.lits, 1);
			return -1;
		}
		return add_node(P, n);
	}
	if (kw(P, "IS")) {
		if (next(P) != 0)
			return -1;
		n.kind = NVF_FN_IS_NULL;
		if (kw(P, "NOT")) {
			n.kind = NVF_FN_IS_NOT_NULL;
			if (next(P) != 0)
				return -1;
		}
		if (!kw(P, "NULL"))
			return perr(P, P->start, "expected NULL after IS%s, found %s", n.kind == NVF_FN_IS_NULL ? "" : " NOT",
				    tokdesc(P, buf, sizeof(buf)));
		if (next(P) != 0)
			return -1;
		return add_node(P, n);
	}
	if (kw(P, "STARTS")) {
		if (next(P) != 0)
			return -1;
		if (!kw(P, "WITH"))
			return perr(P, P->start, "expected WITH after STARTS, found %s", tokdesc(P, buf, sizeof(buf)));
		if (next(P) != 0)
			return -1;
		if (P->t != T_STRING)
			return perr(P, P->start, "expected a string after STARTS WITH, found %s", tokdesc(P, buf, sizeof(buf)));
		n.kind = NVF_FN_STARTS;
		n.lits = calloc(1, sizeof(nvf_lit));
		if (!n.lits)
			return P->rc = nvf__oom();
		n.nlits = 1;
		if (parse_literal(P, n.lits, NULL, "STARTS WITH") != 0) {
			free_lits(n.lits, 1);
			return -1;
		}
		return add_node(P, n);
	}
	return perr(P, P->start,
		    "expected an operator after %s (=, !=, <, <=, >, >=, IN, NOT IN, BETWEEN, CONTAINS, IS, STARTS WITH), found %s",
		    pp->canon[0] == '$' ? pp->canon + 2 : pp->canon, tokdesc(P, buf, sizeof(buf)));
}

static int parse_not(parser *P)
{
	char buf[64];
	int r;
	/* Nesting counts what can nest without bound: NOT and parentheses. */
	if ((kw(P, "NOT") || P->t == T_LPAREN) && ++P->depth > NVF_FILTER_MAX_DEPTH)
		return perr(P, P->start, "nested more than %d levels deep", NVF_FILTER_MAX_DEPTH);
	if (kw(P, "NOT")) {
		if (next(P) != 0)
			return -1;
		int a = parse_not(P);
		if (a < 0)
			return -1;
		r = add_node(P, (nvf_fnode){.kind = NVF_FN_NOT, .a = a, .b = -1, .path = -1});
		P->depth--;
	} else if (P->t == T_LPAREN) {
		if (next(P) != 0)
			return -1;
		r = parse_or(P);
		if (r < 0)
			return -1;
		if (P->t != T_RPAREN)
			return perr(P, P->start, "expected ')' or AND/OR, found %s", tokdesc(P, buf, sizeof(buf)));
		if (next(P) != 0)
			return -1;
		P->depth--;
	} else if (kw(P, "EXISTS")) {
		if (next(P) != 0)
			return -1;
		nvf_path p;
		if (parse_path(P, &p) != 0)
			return -1;
		int pi = add_path(P, &p);
		if (pi < 0)
			return -1;
		r = add_node(P, (nvf_fnode){.kind = NVF_FN_EXISTS, .a = -1, .b = -1, .path = pi});
	} else if (P->t == T_NAME || P->t == T_QNAME || P->t == T_DOLLAR) {
		if (P->t == T_NAME && is_keyword(P->src + P->start, P->tlen))
			return perr(P, P->start, "expected a condition, found the keyword %s", tokdesc(P, buf, sizeof(buf)));
		nvf_path p;
		if (parse_path(P, &p) != 0)
			return -1;
		r = parse_predicate(P, &p);
	} else {
		return perr(P, P->start, "expected a condition (a path, NOT, EXISTS or '('), found %s",
			    tokdesc(P, buf, sizeof(buf)));
	}
	return r;
}

static int parse_and(parser *P)
{
	int a = parse_not(P);
	while (a >= 0 && kw(P, "AND")) {
		if (next(P) != 0)
			return -1;
		int b = parse_not(P);
		if (b < 0)
			return -1;
		a = add_node(P, (nvf_fnode){.kind = NVF_FN_AND, .a = a, .b = b, .path = -1});
	}
	return a;
}

static int parse_or(parser *P)
{
	int a = parse_and(P);
	while (a >= 0 && kw(P, "OR")) {
		if (next(P) != 0)
			return -1;
		int b = parse_and(P);
		if (b < 0)
			return -1;
		a = add_node(P, (nvf_fnode){.kind = NVF_FN_OR, .a = a, .b = b, .path = -1});
	}
	return a;
}

static void filter_free_parts(nvf_fnode *nodes, size_t nn, nvf_path *paths, size_t np)
{
	for (size_t i = 0; i < nn; i++)
		free_lits(nodes[i].lits, nodes[i].nlits);
	free(nodes);
	for (size_t i = 0; i < np; i++)
		nvf__path_free(&paths[i]);
	free(paths);
}

void nvf__rowset_cache_free(struct nvf_filter *f);

void nvf_filter_free(nvf_filter *f)
{
	if (!f)
		return;
	nvf__rowset_cache_free(f);
	pthread_mutex_destroy(&f->cache_mutex);
	filter_free_parts(f->nodes, f->nnodes, f->paths, f->npaths);
	free(f->text);
	free(f);
}

int nvf_filter_compile(nvf_filter **out, const char *expr)
{
	if (!out || !expr)
		return nvf__err(NVF_EINVAL, "nvf_filter_compile: NULL argument");
	size_t len = strlen(expr);
	if (len > NVF_FILTER_MAX_TEXT)
		return nvf__err(NVF_EINVAL, "filter: column %u: the filter is %zu bytes long, at most %u",
				NVF_FILTER_MAX_TEXT + 1, len, NVF_FILTER_MAX_TEXT);
	parser P = {.src = expr, .len = len};
	int root = -1;
	if (next(&P) == 0) {
		if (P.t == T_END)
			perr(&P, 0, "empty filter (expected a condition)");
		else
			root = parse_or(&P);
		if (root >= 0 && P.t != T_END) {
			char buf[64];
			perr(&P, P.start, "expected AND, OR or the end, found %s", tokdesc(&P, buf, sizeof(buf)));
		}
	}
	free(P.text);
	if (P.rc != 0 || root < 0) {
		filter_free_parts(P.nodes.v, P.nodes.n, P.paths.v, P.paths.n);
		return P.rc ? P.rc : nvf__err(NVF_EINVAL, "filter: cannot be compiled");
	}
	nvf_filter *f = calloc(1, sizeof(*f));
	char *text = strdup(expr);
	if (!f || !text) {
		free(f);
		free(text);
		filter_free_parts(P.nodes.v, P.nodes.n, P.paths.v, P.paths.n);
		return nvf__oom();
	}
	f->text = text;
	f->nodes = P.nodes.v;
	f->nnodes = P.nodes.n;
	f->paths = P.paths.v;
	f->npaths = P.paths.n;
	f->root = root;
	pthread_mutex_init(&f->cache_mutex, NULL);
	for (size_t i = 0; i < f->npaths; i++) {
		int fd = f->paths[i].field;
		if (fd == NVF_PF_VERSION || fd == NVF_PF_CREATED || fd == NVF_PF_UPDATED)
			f->needs_meta = true;
		if (fd == NVF_PF_DOC || fd == NVF_PF_TAGS)
			f->needs_payload = true;
	}
	*out = f;
	return 0;
}

int nvf__path_parse(const char *text, nvf_path *out)
{
	if (!text)
		return nvf__err(NVF_EINVAL, "path: NULL");
	parser P = {.src = text, .len = strlen(text)};
	if (next(&P) == 0) {
		if (P.t == T_END) {
			perr(&P, 0, "empty path");
		} else if (parse_path(&P, out) == 0 && P.t != T_END) {
			char buf[64];
			nvf__path_free(out);
			perr(&P, P.start, "expected the end of the path, found %s", tokdesc(&P, buf, sizeof(buf)));
		}
	}
	free(P.text);
	if (P.rc != 0) {
		/* Paths are reported as paths, not filters. */
		const char *m = nvf_errmsg();
		if (strncmp(m, "filter: ", 8) == 0) {
			char copy[512];
			snprintf(copy, sizeof(copy), "%s", m + 8);
			nvf__err(P.rc, "path \"%.100s\": %s", text, copy);
		}
		return P.rc;
	}
	return 0;
}

/* ---- evaluation ---- */

static pthread_key_t tmp_key;
static pthread_once_t tmp_once = PTHREAD_ONCE_INIT;

static void tmp_free(void *p)
{
	if (p) {
		nvf__buf_free(p);
		free(p);
	}
}

static void tmp_init(void)
{
	pthread_key_create(&tmp_key, tmp_free);
}

nvf_buf *nvf__eval_tmp(void)
{
	pthread_once(&tmp_once, tmp_init);
	nvf_buf *b = pthread_getspecific(tmp_key);
	if (!b) {
		b = calloc(1, sizeof(*b));
		if (b && pthread_setspecific(tmp_key, b) != 0) {
			free(b);
			b = NULL;
		}
	}
	return b;
}

void nvf__evalctx_reset(nvf_evalctx *ctx, uint64_t row, uint64_t id)
{
	ctx->row = row;
	ctx->id = id;
	ctx->meta_loaded = ctx->payload_loaded = false;
	ctx->has_payload = false;
}

static bool load_meta(nvf_evalctx *ctx)
{
	if (!ctx->meta_loaded) {
		nvf__meta_row(ctx->c, ctx->row, &ctx->rm);
		ctx->meta_loaded = true;
	}
	return true;
}

static bool load_payload(nvf_evalctx *ctx)
{
	if (ctx->payload_loaded)
		return ctx->has_payload;
	ctx->payload_loaded = true;
	ctx->evals++;
	int rc = nvf__meta_payload(ctx->txn, ctx->c, ctx->row, ctx->id, ctx->tmp, &ctx->pl);
	if (rc == 1) {
		ctx->has_payload = true;
	} else if (rc < 0) {
		ctx->err = rc;
	}
	return ctx->has_payload;
}

/* The value a path names: 1 (present, *v), 0 (missing). Tags are an array whose
 * entries are read through the payload (v->type NVF_DT_ARRAY, count, and v->s == NULL
 * marks "the record's tags"). */
static int resolve(const struct nvf_filter *f, int pi, nvf_evalctx *ctx, nvf_dval *v)
{
	const nvf_path *p = &f->paths[pi];
	memset(v, 0, sizeof(*v));
	switch (p->field) {
	case NVF_PF_ID:
		v->type = NVF_DT_INT;
		/* ids above INT64_MAX compare as their unsigned value would not: they
		 * are beyond every integer literal, so clamp (documented). */
		v->i = ctx->id > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)ctx->id;
		return 1;
	case NVF_PF_VERSION:
		load_meta(ctx);
		v->type = NVF_DT_INT;
		v->i = ctx->rm.version;
		return 1;
	case NVF_PF_CREATED:
	case NVF_PF_UPDATED:
		load_meta(ctx);
		v->type = NVF_DT_INT;
		v->i = (int64_t)(p->field == NVF_PF_CREATED ? ctx->rm.created_us : ctx->rm.updated_us);
		return 1;
	case NVF_PF_TAGS:
		v->type = NVF_DT_ARRAY;
		v->s = NULL;
		v->count = load_payload(ctx) ? ctx->pl.ntags : 0;
		return 1;
	default:
		break;
	}
	if (!load_payload(ctx) || !ctx->pl.has_doc)
		return 0;
	nvf_dval cur = ctx->pl.doc;
	for (size_t i = 0; i < p->nseg; i++) {
		nvf_dval nx;
		int r = nvf__dval_get(&cur, p->seg[i].s, p->seg[i].len, &nx);
		if (r < 0) {
			ctx->err = r;
			return 0;
		}
		if (r == 0)
			return 0;
		cur = nx;
	}
	*v = cur;
	return 1;
}

/* Compare a value with a literal: -1, 0, 1, or 2 (not comparable). */
static int compare(const nvf_dval *v, const nvf_lit *l)
{
	bool vnum = v->type == NVF_DT_INT || v->type == NVF_DT_FLOAT;
	bool lnum = l->type == NVF_DT_INT || l->type == NVF_DT_FLOAT;
	if (vnum && lnum)
		return nvf__num_cmp(v->type == NVF_DT_INT, v->i, v->f, l->type == NVF_DT_INT, l->i, l->f);
	if (v->type == NVF_DT_STR && l->type == NVF_DT_STR) {
		int64_t us;
		if (l->iso && nvf__iso8601_parse((const char *)v->s, (size_t)v->len, &us))
			return us < l->us ? -1 : us > l->us;
		size_t n = v->len < l->len ? (size_t)v->len : l->len;
		int c = memcmp(v->s, l->s, n);
		if (c)
			return c < 0 ? -1 : 1;
		return v->len < l->len ? -1 : v->len > l->len;
	}
	return 2;
}

static bool is_bool(int t)
{
	return t == NVF_DT_TRUE || t == NVF_DT_FALSE;
}

/* The = of FILTER.md (used by IN and CONTAINS too). */
static bool eq(const nvf_dval *v, const nvf_lit *l)
{
	if (l->type == NVF_DT_NULL)
		return v->type == NVF_DT_NULL;
	if (is_bool(l->type) || is_bool(v->type))
		return v->type == l->type;
	return compare(v, l) == 0;
}

static bool cmp_op(const nvf_dval *v, const nvf_lit *l, int op)
{
	if (l->type == NVF_DT_NULL) {
		if (op == NVF_OP_EQ)
			return v->type == NVF_DT_NULL;
		if (op == NVF_OP_NE)
			return v->type != NVF_DT_NULL;
		return false;
	}
	if (v->type == NVF_DT_NULL || v->type == NVF_DT_ARRAY || v->type == NVF_DT_OBJECT)
		return false;
	if (is_bool(l->type) || is_bool(v->type)) {
		if (!is_bool(l->type) || !is_bool(v->type))
			return false;
		if (op == NVF_OP_EQ)
			return v->type == l->type;
		if (op == NVF_OP_NE)
			return v->type != l->type;
		return false;
	}
	int c = compare(v, l);
	if (c == 2)
		return false;
	switch (op) {
	case NVF_OP_EQ: return c == 0;
	case NVF_OP_NE: return c != 0;
	case NVF_OP_LT: return c < 0;
	case NVF_OP_LE: return c <= 0;
	case NVF_OP_GT: return c > 0;
	default: return c >= 0;
	}
}

/* Does the array (or the record's tags) hold an element = l? */
static bool array_has(const nvf_dval *arr, const nvf_lit *l, nvf_evalctx *ctx)
{
	nvf_dval e;
	int r;
	if (!arr->s) {
		/* The record's tags: strings in the payload. */
		if (l->type != NVF_DT_STR || !ctx->has_payload)
			return false;
		const uint8_t *it = ctx->pl.tags, *t;
		uint64_t len;
		while ((r = nvf__payload_tag(&ctx->pl, &it, &t, &len)) == 1) {
			e.type = NVF_DT_STR;
			e.s = t;
			e.len = len;
			if (eq(&e, l))
				return true;
		}
		if (r < 0)
			ctx->err = r;
		return false;
	}
	const uint8_t *it = arr->s, *k;
	uint64_t kl;
	while ((r = nvf__dval_next(arr, &it, &k, &kl, &e)) == 1)
		if (eq(&e, l))
			return true;
	if (r < 0)
		ctx->err = r;
	return false;
}

bool nvf__filter_eval_node(const struct nvf_filter *f, int ni, nvf_evalctx *ctx)
{
	const nvf_fnode *n = &f->nodes[ni];
	switch (n->kind) {
	case NVF_FN_AND:
		return nvf__filter_eval_node(f, n->a, ctx) && nvf__filter_eval_node(f, n->b, ctx);
	case NVF_FN_OR:
		return nvf__filter_eval_node(f, n->a, ctx) || nvf__filter_eval_node(f, n->b, ctx);
	case NVF_FN_NOT:
		return !nvf__filter_eval_node(f, n->a, ctx);
	default:
		break;
	}
	nvf_dval v;
	int present = resolve(f, n->path, ctx, &v);
	if (ctx->err)
		return false;
	switch (n->kind) {
	case NVF_FN_EXISTS:
		return present;
	case NVF_FN_IS_NULL:
		return !present || v.type == NVF_DT_NULL;
	case NVF_FN_IS_NOT_NULL:
		return present && v.type != NVF_DT_NULL;
	default:
		break;
	}
	if (!present)
		return false;
	switch (n->kind) {
	case NVF_FN_CMP:
		return cmp_op(&v, &n->lits[0], n->op);
	case NVF_FN_IN:
		for (size_t i = 0; i < n->nlits; i++)
			if (cmp_op(&v, &n->lits[i], NVF_OP_EQ))
				return true;
		return false;
	case NVF_FN_NOT_IN:
		for (size_t i = 0; i < n->nlits; i++)
			if (!cmp_op(&v, &n->lits[i], NVF_OP_NE))
				return false;
		return true;
	case NVF_FN_BETWEEN:
		return cmp_op(&v, &n->lits[0], NVF_OP_GE) && cmp_op(&v, &n->lits[1], NVF_OP_LE);
	case NVF_FN_NOT_BETWEEN:
		return cmp_op(&v, &n->lits[0], NVF_OP_LT) || cmp_op(&v, &n->lits[1], NVF_OP_GT);
	case NVF_FN_CONTAINS:
		return v.type == NVF_DT_ARRAY && array_has(&v, &n->lits[0], ctx);
	case NVF_FN_CONTAINS_ANY:
		for (size_t i = 0; i < n->nlits && v.type == NVF_DT_ARRAY; i++)
			if (array_has(&v, &n->lits[i], ctx))
				return true;
		return false;
	case NVF_FN_CONTAINS_ALL:
		if (v.type != NVF_DT_ARRAY)
			return false;
		for (size_t i = 0; i < n->nlits; i++)
			if (!array_has(&v, &n->lits[i], ctx))
				return false;
		return true;
	case NVF_FN_STARTS:
		return v.type == NVF_DT_STR && v.len >= n->lits[0].len && memcmp(v.s, n->lits[0].s, n->lits[0].len) == 0;
	default:
		return false;
	}
}

bool nvf__filter_eval(const struct nvf_filter *f, nvf_evalctx *ctx)
{
	return nvf__filter_eval_node(f, f->root, ctx);
}
