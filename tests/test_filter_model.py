"""The filter language (docs/FILTER.md) checked against a model.

A Python reference of the language -- tokenizer, recursive-descent parser, evaluator
-- decides which records each filter selects, and nvf-tool, run as a process, must
select exactly the same ids. Documents and filters are random (seeded) so that the test
reaches combinations nobody would write by hand: every operator and form of the
grammar, literals of matching and mismatching types, present and missing paths,
ISO-8601 strings in several zones, integers beyond 2**53 against floats. The filter
*text* is what gets tested: the reference parses the same text the tool gets.

The tool-driven tests need NVF_TOOL (the nvf-tool binary) and skip without it; the unit
tests of the reference (hand-written cases from FILTER.md) always run.

Where FILTER.md leaves room, the reference reads it as follows (the C side does the same):

- `!= null` is true for every present non-null value, arrays and objects included (it
  is `IS NOT NULL`); `= null` only for null. Every other comparison with an array or an
  object is false, so `a NOT IN (null)` is true for an array.
- ISO-8601: exactly `YYYY-MM-DD`, or that with `T` or one space and `HH:MM`, optional
  `:SS`, then an optional fraction (`.` and 1 to 9 digits, only after `:SS`), then an
  optional zone `Z` or `+HH:MM` / `-HH:MM` (only after a time; `-00:00` is UTC). `T` and
  `Z` are upper case; digits ASCII. A real calendar date (leap years), hour 00-23,
  minute 00-59, second 00-59 (no leap second), zone hour 00-23 and minute 00-59.
  Anything else is an ordinary string (and an error as a timestamp literal). A zone can
  move the instant outside years 0001-9999; that is allowed.
- created_at / updated_at are integers (microseconds) for every operator. An ISO string
  literal becomes an integer when the filter compiles, in comparisons, IN, BETWEEN and
  CONTAINS [ANY|ALL] lists; a non-ISO one is an error there. STARTS WITH is not
  converted or checked: on a timestamp field it is simply false. Float literals compare
  by value; TRUE/FALSE compare false; `= null` false, `!= null` true.
- The record fields are the *bare, unquoted, single-segment* names `id`, `version`,
  `created_at`, `updated_at`, `tags` (case-sensitive: `ID` is a document key). `"id"`
  (quoted) is the document key, like `$.id`; `id.x` and `tags.x` are document paths.
- `tags` is always present (an array, possibly empty): `EXISTS tags` is true,
  `tags IS NULL` false.
- Keywords are reserved in every segment of a path (`a.and`, `$.and` are errors).
- A path is one token: no spaces around its dots. A quoted segment accepts only the
  escapes `\\"` and `\\\\` (another backslash is an error); `""` is the empty key.
- Numbers: leading zeros are allowed (`007` is 7); `5.`, `.5`, `- 5` and `1e` are not
  numbers. A float literal that underflows to 0 or a subnormal is accepted; only an
  infinite one is an error.
- Limits: the filter's length in bytes; a string literal's length in bytes after `''`
  is undone; nesting counts grouping parentheses and NOT (not the parentheses of a
  list); 64 deep is accepted, 65 refused; 1,024 literals accepted, 1,025 refused.
- Whitespace is space, tab, CR and LF. Literals, operators and keywords need no space
  where the characters cannot run together (`x IN(1)`, `(a=1)AND(b=2)`).

Not a choice but easy to miss: string `=` compares instants when both sides are ISO
timestamps, for array elements and tags too (`tags CONTAINS '2026-01-01'` matches a tag
'2026-01-01T01:00:00+01:00'), so a string or tags index cannot answer an ISO literal
by its bytes alone.
"""
import datetime
import functools
import json
import math
import operator
import os
import random
import re
import subprocess
import time

import numpy as np
import pytest

# ---- sizes: tune here ----
SEEDS = (101, 202, 303, 404)  # one database per seed, printed on failure
N_DOCS = 300
N_FILTERS = 500
EXPR_DEPTH = 3                # AND / OR / NOT / ( ) levels of a generated filter
CODEC_SEED = 505
CODEC_DOCS = 1200             # past the 1,000 documents at which zstd-dict trains its dictionary
CODEC_FILTERS = 150
CODECS = ("none", "lz4", "snappy", "zstd", "zstd-dict")
DIM = 4
TOOL_TIMEOUT = 600            # seconds per nvf-tool run (AddressSanitizer builds are slow)

# The field indexes of the indexed runs: at least one path of every index type.
INDEXES = (
    ("name", "string"), ('"a b"', "string"), ("$.created_at", "string"),
    ("n", "int"), ("$.id", "int"), ("obj.n", "int"),
    ("price", "float"), ("big", "float"),
    ("flag", "bool"),
    ("ts", "timestamp"),
    ("tags", "tags"),
)

# ---- FILTER.md's limits ----
MAX_FILTER_BYTES = 64 * 1024
MAX_NESTING = 64
MAX_STRING_BYTES = 4 * 1024
MAX_LIST = 1024
INT64_MIN, INT64_MAX = -2**63, 2**63 - 1

# The record times of an import are not known in advance; the filters are generated for
# a window [lo, hi] (lo a little before generation, hi an hour later) and use only time
# literals outside it, so their answers hold for any instant inside. Every import must
# then fall inside the window, which the test checks. lo and hi + 1 are whole minutes:
# an ISO spelling of a literal outside, truncated to the minute or finer, stays outside
# (so the random stream, and the filters but for their time values, follow the seed).
WINDOW_MARGIN_US = 10**6
WINDOW_SLACK_US = 3600 * 10**6
MINUTE_US = 60 * 10**6


def now_us():
    return time.time_ns() // 1000


# ---------------------------------------------------------------- ISO-8601

EPOCH = datetime.datetime(1970, 1, 1)
ONE_US = datetime.timedelta(microseconds=1)
_ISO = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
                  r"(?:[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]{1,9}))?)?"
                  r"(?:(Z)|([+-])([0-9]{2}):([0-9]{2}))?)?")


@functools.lru_cache(maxsize=None)
def iso_to_us(s):
    """The instant of an ISO-8601 timestamp of FILTER.md's subset, in microseconds since
    1970 UTC, or None if s is not one (see the module docstring for the details)."""
    m = _ISO.fullmatch(s)
    if not m:
        return None
    year, month, day, hour, minute, second, frac, _, sign, zh, zm = m.groups()
    try:
        local = datetime.datetime(int(year), int(month), int(day),
                                  int(hour or 0), int(minute or 0), int(second or 0))
    except ValueError:  # no such date or time, or year 0000
        return None
    offset = 0
    if sign:
        if int(zh) > 23 or int(zm) > 59:
            return None
        offset = (int(zh) * 60 + int(zm)) * 60_000_000 * (1 if sign == "+" else -1)
    micros = int((frac or "").ljust(6, "0")[:6])  # truncated to microseconds
    return (local - EPOCH) // ONE_US + micros - offset


def iso_format(us, zone="Z", precision="us", sep="T", extra_digits=""):
    """An ISO-8601 text of instant us, truncated to precision ('date', 'min', 's', 'ms',
    'us', 'ns'). zone is 'Z', None (no designator: UTC) or minutes east of UTC, written
    +HH:MM / -HH:MM. extra_digits follow the microseconds of 'ns' (reading truncates
    them away). OverflowError if the local time is outside years 1 to 9999."""
    minutes = zone if isinstance(zone, int) else 0
    t = EPOCH + datetime.timedelta(microseconds=us + minutes * 60_000_000)
    text = f"{t.year:04d}-{t.month:02d}-{t.day:02d}"
    if precision == "date":
        return text
    text += f"{sep}{t.hour:02d}:{t.minute:02d}"
    if precision != "min":
        text += f":{t.second:02d}"
    if precision == "ms":
        text += f".{t.microsecond // 1000:03d}"
    elif precision in ("us", "ns"):
        text += f".{t.microsecond:06d}" + (extra_digits if precision == "ns" else "")
    if zone is None:
        return text
    if zone == "Z":
        return text + "Z"
    return text + f"{'+' if zone >= 0 else '-'}{abs(zone) // 60:02d}:{abs(zone) % 60:02d}"


# ---------------------------------------------------------------- the reference: parsing

KEYWORDS = frozenset("AND OR NOT IN BETWEEN CONTAINS ANY ALL IS NULL EXISTS STARTS WITH TRUE FALSE".split())
RECORD_FIELDS = ("id", "version", "created_at", "updated_at", "tags")
TIMESTAMP_FIELDS = ("created_at", "updated_at")
_NAME = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(rb"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")


class FilterError(ValueError):
    """A filter that does not compile. str() is the message, column the 1-based byte
    column it names."""

    def __init__(self, column, message):
        super().__init__(f"filter: column {column}: {message}")
        self.column = column


class Lit:
    """A literal. kind is 'null', 'bool', 'num' or 'str'; a string keeps its UTF-8 bytes
    (raw) and, if it is an ISO-8601 timestamp, its instant."""
    __slots__ = ("kind", "value", "raw", "instant")

    def __init__(self, kind, value):
        self.kind, self.value = kind, value
        self.raw = value.encode() if kind == "str" else None
        self.instant = iso_to_us(value) if kind == "str" else None

    def __repr__(self):
        return f"Lit({self.kind}, {self.value!r})"


def _tokenize(src):
    """Tokens of the filter bytes src: (kind, value, column) with kind 'kw' (upper-case
    word), 'path' (('field', name) or ('doc', keys)), 'num', 'str', 'op' ('<>' already
    '!='), 'punct' ('(', ')', ','), and a final 'end'."""
    toks, i, n = [], 0, len(src)
    while True:
        while i < n and src[i] in b" \t\r\n":
            i += 1
        col = i + 1
        if i == n:
            toks.append(("end", None, col))
            return toks
        c = src[i:i + 1]
        if c in (b"(", b")", b","):
            toks.append(("punct", c.decode(), col))
            i += 1
        elif c in (b"=", b"<", b">", b"!"):
            op = src[i:i + 2] if src[i:i + 2] in (b"!=", b"<>", b"<=", b">=") else c
            if op == b"!":
                raise FilterError(col, "expected '=' after '!'")
            toks.append(("op", "!=" if op == b"<>" else op.decode(), col))
            i += len(op)
        elif c == b"'":
            i = _lex_string(src, i, toks)
        elif c == b"-" or c.isdigit():
            i = _lex_number(src, i, toks)
        elif c in (b"$", b'"') or _NAME.match(src, i):
            i = _lex_path(src, i, toks)
        else:
            raise FilterError(col, f"unexpected character {c!r}")


def _lex_string(src, i, toks):
    col, j, buf = i + 1, i + 1, bytearray()
    while True:
        k = src.find(b"'", j)
        if k < 0:
            raise FilterError(col, "unterminated string")
        buf += src[j:k]
        if src[k + 1:k + 2] != b"'":
            break
        buf += b"'"
        j = k + 2
    if len(buf) > MAX_STRING_BYTES:
        raise FilterError(col, f"string literal of {len(buf)} bytes (at most {MAX_STRING_BYTES})")
    try:
        toks.append(("str", bytes(buf).decode("utf-8"), col))
    except UnicodeDecodeError:
        raise FilterError(col, "string literal is not valid UTF-8") from None
    return k + 1


def _lex_number(src, i, toks):
    col = i + 1
    m = _NUMBER.match(src, i)
    if not m:
        raise FilterError(col, "expected a number after '-'")
    text = m.group().decode()
    if m.group(1) or m.group(2):
        value = float(text)
        if math.isinf(value):
            raise FilterError(col, f"float literal {text} is not finite")
    else:
        value = int(text)
        if not INT64_MIN <= value <= INT64_MAX:
            raise FilterError(col, f"integer literal {text} is out of range (int64)")
    toks.append(("num", value, col))
    return m.end()


def _lex_quoted_key(src, i):
    col, j, buf = i + 1, i + 1, bytearray()
    while True:
        if j >= len(src):
            raise FilterError(col, "unterminated quoted key")
        b = src[j]
        if b == 0x22:
            break
        if b == 0x5C:
            if src[j + 1:j + 2] not in (b'"', b"\\"):
                raise FilterError(j + 1, 'in a quoted key only \\" and \\\\ are escapes')
            buf += src[j + 1:j + 2]
            j += 2
        else:
            buf.append(b)
            j += 1
    try:
        return j + 1, bytes(buf).decode("utf-8")
    except UnicodeDecodeError:
        raise FilterError(col, "quoted key is not valid UTF-8") from None


def _lex_path(src, i, toks):
    """A path, or a keyword (a lone bare name that is one)."""
    col = i + 1
    dollar = src[i:i + 1] == b"$"
    if dollar:
        if src[i + 1:i + 2] != b".":
            raise FilterError(col, "expected '.' after '$'")
        i += 2
    segs = []  # (key, quoted)
    while True:
        if src[i:i + 1] == b'"':
            i, key = _lex_quoted_key(src, i)
            segs.append((key, True))
        else:
            m = _NAME.match(src, i)
            if not m:
                raise FilterError(i + 1, "expected a key")
            key = m.group().decode()
            if key.upper() in KEYWORDS and (dollar or segs or src[m.end():m.end() + 1] == b"."):
                raise FilterError(i + 1, f"'{key}' is a keyword: a key spelt like one must be quoted")
            segs.append((key, False))
            i = m.end()
        if src[i:i + 1] != b".":
            break
        i += 1
    if not dollar and len(segs) == 1 and not segs[0][1]:
        name = segs[0][0]
        if name.upper() in KEYWORDS:
            toks.append(("kw", name.upper(), col))
            return i
        if name in RECORD_FIELDS:
            toks.append(("path", ("field", name), col))
            return i
    toks.append(("path", ("doc", tuple(k for k, _ in segs)), col))
    return i


class _Parser:
    """Recursive descent over the tokens, one method per rule of the grammar. The AST is
    tuples: ('or', [..]), ('and', [..]), ('not', e), ('exists', path),
    ('cmp', path, op, lit), ('in', path, negated, lits),
    ('between', path, negated, lo, hi), ('contains', path, lit),
    ('contains_any', path, lits), ('contains_all', path, lits),
    ('isnull', path, negated), ('starts', path, prefix_bytes)."""

    def __init__(self, toks):
        self.toks, self.pos, self.depth = toks, 0, 0

    def peek(self):
        return self.toks[self.pos]

    def take(self):
        self.pos += 1
        return self.toks[self.pos - 1]

    def at(self, kind, value):
        t = self.toks[self.pos]
        return t[0] == kind and t[1] == value

    def expect(self, kind, value, what):
        t = self.take()
        if t[0] != kind or t[1] != value:
            raise FilterError(t[2], f"expected {what}")

    def nest(self, col):
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise FilterError(col, f"nested more than {MAX_NESTING} deep")

    def parse_or(self):
        items = [self.parse_and()]
        while self.at("kw", "OR"):
            self.take()
            items.append(self.parse_and())
        return items[0] if len(items) == 1 else ("or", items)

    def parse_and(self):
        items = [self.parse_not()]
        while self.at("kw", "AND"):
            self.take()
            items.append(self.parse_not())
        return items[0] if len(items) == 1 else ("and", items)

    def parse_not(self):
        if not self.at("kw", "NOT"):
            return self.parse_primary()
        self.nest(self.take()[2])
        inner = self.parse_not()
        self.depth -= 1
        return ("not", inner)

    def parse_primary(self):
        t = self.take()
        if t[:2] == ("punct", "("):
            self.nest(t[2])
            inner = self.parse_or()
            self.expect("punct", ")", "')'")
            self.depth -= 1
            return inner
        if t[:2] == ("kw", "EXISTS"):
            p = self.take()
            if p[0] != "path":
                raise FilterError(p[2], "expected a path after EXISTS")
            return ("exists", p[1])
        if t[0] != "path":
            raise FilterError(t[2], "expected a path, NOT, EXISTS or '('")
        path = t[1]
        ts = path[0] == "field" and path[1] in TIMESTAMP_FIELDS
        op = self.take()
        if op[0] == "op":
            return ("cmp", path, op[1], self.literal(ts, f"'{op[1]}'"))
        word = op[1] if op[0] == "kw" else None
        negated = word == "NOT"
        if negated:
            t = self.take()
            if t[0] != "kw" or t[1] not in ("IN", "BETWEEN"):
                raise FilterError(t[2], "expected IN or BETWEEN after NOT")
            word = t[1]
        if word == "IN":
            return ("in", path, negated, self.literal_list(ts, "IN"))
        if word == "BETWEEN":
            lo = self.literal(ts, "BETWEEN")
            self.expect("kw", "AND", "AND of BETWEEN")
            return ("between", path, negated, lo, self.literal(ts, "AND"))
        if word == "CONTAINS":
            for w, kind in (("ANY", "contains_any"), ("ALL", "contains_all")):
                if self.at("kw", w):
                    self.take()
                    return (kind, path, self.literal_list(ts, w))
            return ("contains", path, self.literal(ts, "CONTAINS"))
        if word == "IS":
            negated = self.at("kw", "NOT")
            if negated:
                self.take()
            self.expect("kw", "NULL", "NULL")
            return ("isnull", path, negated)
        if word == "STARTS":
            self.expect("kw", "WITH", "WITH after STARTS")
            s = self.take()
            if s[0] != "str":
                raise FilterError(s[2], "expected a string after STARTS WITH")
            return ("starts", path, s[1].encode())
        raise FilterError(op[2], "expected an operator after the path")

    def literal(self, timestamp, after):
        t = self.take()
        if t[0] in ("num", "str"):
            lit = Lit(t[0], t[1])
        elif t[0] == "kw" and t[1] in ("TRUE", "FALSE"):
            lit = Lit("bool", t[1] == "TRUE")
        elif t[:2] == ("kw", "NULL"):
            lit = Lit("null", None)
        else:
            raise FilterError(t[2], f"expected a value after {after}")
        if timestamp and lit.kind == "str":
            if lit.instant is None:
                raise FilterError(t[2], f"'{lit.value}' is not an ISO-8601 timestamp")
            lit = Lit("num", lit.instant)
        return lit

    def literal_list(self, timestamp, after):
        self.expect("punct", "(", f"'(' after {after}")
        items = [self.literal(timestamp, "'('")]
        while self.at("punct", ","):
            col = self.take()[2]
            items.append(self.literal(timestamp, "','"))
            if len(items) > MAX_LIST:
                raise FilterError(col + 1, f"a list of more than {MAX_LIST} literals")
        self.expect("punct", ")", "',' or ')'")
        return items


def parse(text):
    """The AST of a filter (str or bytes); FilterError if it does not compile."""
    src = text.encode() if isinstance(text, str) else bytes(text)
    if len(src) > MAX_FILTER_BYTES:
        raise FilterError(MAX_FILTER_BYTES + 1, f"a filter of more than {MAX_FILTER_BYTES} bytes")
    p = _Parser(_tokenize(src))
    ast = p.parse_or()
    t = p.peek()
    if t[0] != "end":
        raise FilterError(t[2], "expected AND, OR or the end")
    return ast


# ---------------------------------------------------------------- the reference: evaluation

class _Missing:
    """The value of a path that leads nowhere (not JSON null, which is None)."""

    def __repr__(self):
        return "MISSING"


MISSING = _Missing()
_OPS = {"=": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
        ">": operator.gt, ">=": operator.ge}


def resolve(path, record):
    """The value at path, or MISSING. Paths go through objects only."""
    if path[0] == "field":
        return record[path[1]]
    v = record["meta"]
    for key in path[1]:
        if not isinstance(v, dict):
            return MISSING
        v = v.get(key, MISSING)
        if v is MISSING:
            return MISSING
    return v


def compare(v, op, lit):
    """v op lit under FILTER.md's two-valued rules (op is never '<>')."""
    if v is MISSING:
        return False
    kind = lit.kind
    if kind == "null":
        return v is None if op == "=" else v is not None if op == "!=" else False
    if v is None:
        return False
    if isinstance(v, bool):
        return kind == "bool" and op in ("=", "!=") and _OPS[op](v, lit.value)
    if isinstance(v, (int, float)):
        return kind == "num" and _OPS[op](v, lit.value)  # Python compares int/float exactly
    if isinstance(v, str):
        if kind != "str":
            return False
        if lit.instant is not None:
            t = iso_to_us(v)
            if t is not None:
                return _OPS[op](t, lit.instant)
        return _OPS[op](v.encode(), lit.raw)
    return False  # arrays and objects


def matches(ast, record):
    """Whether record ({'id', 'version', 'created_at', 'updated_at', 'tags', 'meta'})
    satisfies the filter ast."""
    kind = ast[0]
    if kind == "and":
        return all(matches(a, record) for a in ast[1])
    if kind == "or":
        return any(matches(a, record) for a in ast[1])
    if kind == "not":
        return not matches(ast[1], record)
    v = resolve(ast[1], record)
    if kind == "cmp":
        return compare(v, ast[2], ast[3])
    if kind == "in":
        if ast[2]:
            return all(compare(v, "!=", lit) for lit in ast[3])
        return any(compare(v, "=", lit) for lit in ast[3])
    if kind == "between":
        if ast[2]:
            return compare(v, "<", ast[3]) or compare(v, ">", ast[4])
        return compare(v, ">=", ast[3]) and compare(v, "<=", ast[4])
    if kind == "contains":
        return isinstance(v, list) and any(compare(e, "=", ast[2]) for e in v)
    if kind == "contains_any":
        return isinstance(v, list) and any(compare(e, "=", lit) for lit in ast[2] for e in v)
    if kind == "contains_all":
        return isinstance(v, list) and all(any(compare(e, "=", lit) for e in v) for lit in ast[2])
    if kind == "isnull":
        present = v is not MISSING and v is not None
        return present if ast[2] else not present
    if kind == "exists":
        return v is not MISSING
    if kind == "starts":
        return isinstance(v, str) and v.encode().startswith(ast[2])
    raise AssertionError(f"unknown node {kind}")


def time_literals_outside(ast, lo, hi):
    """Whether every literal compared with created_at or updated_at lies outside
    [lo, hi], so that the filter's answer is the same whatever instant in [lo, hi] the
    records got: t op L is constant over the window when L is not in it."""
    kind = ast[0]
    if kind in ("and", "or"):
        return all(time_literals_outside(a, lo, hi) for a in ast[1])
    if kind == "not":
        return time_literals_outside(ast[1], lo, hi)
    path = ast[1]
    if path[0] != "field" or path[1] not in TIMESTAMP_FIELDS:
        return True
    lits = {"cmp": lambda: [ast[3]], "in": lambda: ast[3], "between": lambda: ast[3:5],
            "contains": lambda: [ast[2]], "contains_any": lambda: ast[2],
            "contains_all": lambda: ast[2]}.get(kind, list)()
    return all(not (lit.kind == "num" and lo <= lit.value <= hi) for lit in lits)


# ---------------------------------------------------------------- random documents

BASE_US = iso_to_us("2026-01-01T00:00:00Z")
# Instants the ISO strings of documents and literals are drawn from: few, so that
# different spellings of one instant meet (equality across zones and precisions).
INSTANTS = (
    BASE_US, BASE_US + 1, BASE_US + 500_000, BASE_US + 1_000_000, BASE_US + 1800 * 10**6,
    BASE_US + 3600 * 10**6, BASE_US - 3600 * 10**6, BASE_US + 86400 * 10**6,
    iso_to_us("2000-02-29T12:00:00Z"), iso_to_us("1969-12-31T23:59:59.999999Z"),
    iso_to_us("0001-01-01T00:00:00Z"), iso_to_us("9999-12-31T23:59:59.999999Z"),
)
ZONES = (0, 0, 60, -300, 330, 545, -720, 840)  # minutes east of UTC
# Strings that are almost ISO-8601 but not by FILTER.md (or that are, at an edge).
NEAR_ISO = (
    "2026-02-30", "2026-13-01", "2025-02-29", "2024-02-29", "1900-02-29", "2000-02-29",
    "2026-01-01T24:00", "2026-01-01T00:00:60", "2026-01-01T00:00:00.", "2026-01-01T00:00:00.1234567890",
    "2026-01-01t00:00Z", "2026-01-01T00:00z", "2026-01-01T00:00+0100", "2026-01-01Z",
    "0000-01-01", "2026-1-01", "\uff12\uff10\uff12\uff16-01-01", "2026-01-01T00:00+24:00",
    "2026-01-01T00:00+23:59", "2026-01-01 ", " 2026-01-01", "2026-01-01T00", "2026-01-01T00:00:00,5",
    "2026-01-01T00:00:00.5", "2026-01-01T00:00-00:00", "2026-01-01T00:00:00.000000999Z",
)
STRINGS = (
    "", "a", "ab", "abc", "b", "B", "shoes", "shoe", "it's", "''", "é", "e", "ée", "ef", "z", "ß",
    "日本", "日本語", "😀", "😀x", "a b", "%", "_", "Ω", "null", "true", "1", "-1", "web/home",
    "web", "\\", '"', "tab\there", "\u00a0", "\uffff", "\U0010ffff",
)
TAGS = ("red", "green", "blue", "sale", "new", "x", "é", "日本", "a b", "it's", "discontinued",
        "Red", "2026-01-01", "2026-01-01T00:00:00Z", "2025-12-31T23:00:00-01:00")
BIG = (INT64_MAX, INT64_MIN, 2**53, 2**53 + 1, 2**53 - 1, -(2**53) - 1, 9007199254740992.0,
       9.223372036854775807e18, -9.223372036854775808e18, 1e300, -1e-300, 5e-324, 0.1,
       0.30000000000000004, 1e16, 10**16, 10**16 + 1, -0.0, 0)


def random_zone(rng):
    """A zone for iso_format: minutes east of UTC, and UTC spelt three ways."""
    zone = rng.choice(ZONES)
    return rng.choice(("Z", 0, None)) if zone == 0 else zone


def iso_string(rng, us=None, precisions=("date", "min", "s", "s", "ms", "us", "us", "ns")):
    """An ISO-8601 string of instant us (default: one of INSTANTS) in a random zone,
    precision and spelling."""
    us = rng.choice(INSTANTS) if us is None else us
    precision = rng.choice(precisions)
    zone = None if precision == "date" else random_zone(rng)
    try:
        return iso_format(us, zone, precision, rng.choice("TT "), str(rng.randrange(1000)).zfill(3))
    except OverflowError:  # the zone moved it outside years 1-9999
        return iso_format(us, "Z", precision)


def gen_scalar(rng):
    """Any JSON scalar, from small pools so that documents and literals meet."""
    r = rng.random()
    if r < 0.25:
        return rng.randint(-3, 3)
    if r < 0.35:
        return rng.choice((-1.5, 0.5, 1.0, 2.0, 2.5, -0.0))
    if r < 0.6:
        return rng.choice(STRINGS)
    if r < 0.7:
        return iso_string(rng)
    if r < 0.8:
        return rng.choice((True, False))
    if r < 0.9:
        return None
    return rng.choice(BIG)


def gen_n(rng):
    """Small numbers, the same value as integer and float, and a few other types."""
    r = rng.random()
    x = rng.randint(-3, 3)
    if r < 0.55:
        return x
    if r < 0.7:
        return float(x)
    if r < 0.8:
        return x + 0.5
    if r < 0.85:
        return str(x)
    if r < 0.9:
        return rng.choice((True, False, None))
    return rng.choice(BIG)


def gen_ts(rng):
    """Mostly ISO-8601 strings; also near misses, integers and other strings."""
    r = rng.random()
    if r < 0.7:
        return iso_string(rng)
    if r < 0.85:
        return rng.choice(NEAR_ISO)
    if r < 0.9:
        return rng.choice(INSTANTS)
    return rng.choice(STRINGS)


def gen_array(rng):
    """An array of scalars (tag-like strings among them), now and then a nested array or
    object, which CONTAINS must not match."""
    items = []
    for _ in range(rng.randint(0, 5)):
        r = rng.random()
        if r < 0.05:
            items.append([1, "a"])
        elif r < 0.1:
            items.append({"k": 1})
        elif r < 0.4:
            items.append(rng.choice(TAGS))
        else:
            items.append(gen_scalar(rng))
    return items


def gen_obj(rng):
    """Mostly an object two levels deep; sometimes an array or a scalar, so that paths
    through it are missing."""
    r = rng.random()
    if r < 0.1:
        return [1, 2]
    if r < 0.2:
        return gen_scalar(rng)
    obj = {"n": gen_n(rng), "s": rng.choice(STRINGS),
           "inner": {"x": gen_scalar(rng), "s": rng.choice(STRINGS), "deep": {"t": gen_ts(rng)}}}
    for key in ("n", "s", "inner"):
        if rng.random() < 0.2:
            del obj[key]
    return obj


# Document keys: (key, generator, probability of being present).
DOC_FIELDS = (
    ("n", gen_n, 0.8),
    ("price", lambda rng: rng.choice((rng.randint(0, 100), round(rng.uniform(0, 100), 2), 10, 50, 10.0)), 0.7),
    ("name", lambda rng: rng.choice(STRINGS), 0.7),
    ("flag", lambda rng: rng.choice((True, False, True, False, None, 0, 1, "true")), 0.6),
    ("ts", gen_ts, 0.7),
    ("arr", gen_array, 0.6),
    ("obj", gen_obj, 0.6),
    ("a b", gen_scalar, 0.4),
    ("a.b", gen_scalar, 0.3),
    ("id", lambda rng: rng.choice((rng.randint(-5, 1000), "7", 7.0)), 0.5),
    ("tags", lambda rng: rng.sample(TAGS, rng.randint(0, 3)), 0.3),
    ("created_at", lambda rng: rng.choice((iso_string(rng), rng.choice(STRINGS))), 0.4),
    ("version", gen_n, 0.2),
    ("and", gen_scalar, 0.3),
    ("Not", gen_scalar, 0.2),
    ('q"k\\', gen_scalar, 0.3),
    ("ключ", lambda rng: rng.choice(STRINGS), 0.3),
    ("big", lambda rng: rng.choice(BIG), 0.5),
    ("nul", lambda rng: None, 0.4),
    ("e", lambda rng: rng.choice(({}, [], "")), 0.3),
)


def gen_doc(rng):
    """A document (or None: no document) with a random subset of DOC_FIELDS."""
    r = rng.random()
    if r < 0.05:
        return None
    if r < 0.08:
        return {}
    return {key: gen(rng) for key, gen, p in DOC_FIELDS if rng.random() < p}


def gen_records(rng, n, created_at):
    """n records with distinct ids; created_at stands for any instant of the window."""
    records = []
    for rid in sorted(rng.sample(range(4 * n), n)):
        tags = sorted(set(rng.sample(TAGS, rng.randint(0, 4))), key=str.encode)
        records.append({"id": rid, "version": 1, "created_at": created_at, "updated_at": created_at,
                        "tags": tags, "meta": gen_doc(rng)})
    return records


# ---------------------------------------------------------------- random filters

GENERAL_VALUES = (None, True, False, 0, 1, -1, 3, 2.5, -0.0, 10**16 + 1, INT64_MAX, INT64_MIN, 1e300,
                  "a", "", "it's", "é", "😀", "2026-01-01T00:00:00Z", "2026-01-01", "zzz", "2026-02-30")
FORMS = ("cmp", "in", "not_in", "between", "not_between", "contains", "contains_any",
         "contains_all", "is_null", "is_not_null", "exists", "starts")
WEIGHTS = {
    "doc": (30, 8, 5, 8, 5, 8, 5, 5, 5, 5, 6, 8),
    "array": (10, 5, 5, 5, 3, 25, 15, 15, 5, 5, 5, 5),
    "tags": (8, 5, 3, 3, 2, 30, 15, 15, 5, 4, 4, 6),
    "scalar_field": (40, 10, 5, 10, 10, 4, 2, 2, 4, 4, 4, 5),
}
MISSING_PATHS = (("missing",), ("obj", "missing"), ("n", "x"), ("arr", "x"),
                 ("obj", "inner", "s", "x"), ("ID",), ("Name",), ("",))
_BARE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def quote_key(key):
    return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_string(s):
    return "'" + s.replace("'", "''") + "'"


def _collect(doc, prefix, out):
    """Every document path of doc (through objects) with the values seen there."""
    for key, v in doc.items():
        out.setdefault(prefix + (key,), []).append(v)
        if isinstance(v, dict):
            _collect(v, prefix + (key,), out)


class FilterGenerator:
    """Random filter texts over a set of records. Literals come mostly from values the
    documents hold at the path (so that filters select something), perturbed (off by
    one, another spelling of the same instant, a prefix) or of another type.
    Predicates on created_at / updated_at use literals outside [lo, hi] only."""

    def __init__(self, rng, records, lo, hi):
        self.rng, self.lo, self.hi = rng, lo, hi
        self.values = {}
        for r in records:
            if r["meta"]:
                _collect(r["meta"], (), self.values)
        self.doc_paths = list(self.values)
        self.ids = [r["id"] for r in records]

    # -- spelling --

    def kw(self, word):
        r = self.rng.random()
        if r < 0.5:
            return word
        if r < 0.75:
            return word.lower()
        return "".join(c.upper() if self.rng.random() < 0.5 else c.lower() for c in word)

    def ws(self):
        return self.rng.choice((" ", " ", " ", " ", " ", "  ", "\t"))

    def opt_ws(self):
        """Space where the characters cannot run together anyway."""
        return "" if self.rng.random() < 0.2 else self.ws()

    def join(self, word, parts):
        """parts joined by keyword word; the space around it is dropped now and then
        where a parenthesis or a quote separates already."""
        text = parts[0]
        for part in parts[1:]:
            left = self.opt_ws() if text[-1] in ")'\"" else self.ws()
            right = self.opt_ws() if part[0] in "(\"" else self.ws()
            text += left + self.kw(word) + right + part
        return text

    def int_text(self, i):
        """Integer i, or a float spelling of it (which rounds beyond 2**53)."""
        r = self.rng.random()
        if r < 0.8:
            return str(i)
        if r < 0.9:
            return f"{i}.0"  # a float literal; rounds when |i| > 2**53
        return self.rng.choice((f"{i}e0", f"{i}E+0", f"{i}e-0"))

    def float_text(self, f):
        """Float f in shortest, 17-digit or exponent form (all exact spellings of f)."""
        r = self.rng.random()
        if r < 0.7:
            return repr(f)
        if r < 0.85:
            return f"{f:.17g}"
        return f"{f:.17E}"

    def literal_text(self, v):
        if v is None:
            return self.kw("NULL")
        if isinstance(v, bool):
            return self.kw("TRUE" if v else "FALSE")
        if isinstance(v, int):
            return self.int_text(v)
        if isinstance(v, float):
            return self.float_text(v)
        return quote_string(v)

    def doc_path_text(self, keys):
        """A spelling of document path keys: bare or quoted segments, with or without
        '$.' (required when a lone bare key would name a record field)."""
        segs = [k if _BARE.fullmatch(k) and k.upper() not in KEYWORDS and self.rng.random() < 0.8
                else quote_key(k) for k in keys]
        dollar = self.rng.random() < 0.25 or (len(segs) == 1 and segs[0] in RECORD_FIELDS)
        return ("$." if dollar else "") + ".".join(segs)

    # -- values --

    def perturb(self, v):
        """v itself most of the time, else a neighbour of it."""
        rng = self.rng
        if rng.random() < 0.6:
            return v
        if isinstance(v, bool):
            return not v
        if isinstance(v, int):
            return rng.choice((v - 1, v + 1, float(v), v + 0.5))
        if isinstance(v, float):
            return rng.choice((v - 1, v + 1, v / 2, int(v) if v.is_integer() and abs(v) < 2**63 else v))
        if isinstance(v, str):
            instant = iso_to_us(v)
            if instant is not None and rng.random() < 0.7:
                return iso_string(rng, instant, ("min", "s", "us", "ns"))
            return rng.choice((v[:-1], v + "a", v.upper(), v + "😀"))
        return v

    def doc_value(self, keys, element=False):
        """A value for a document path: one seen there (an array's element if element, or
        sometimes anyway), perturbed; or any value."""
        seen = self.values.get(keys)
        if seen and self.rng.random() < 0.85:
            v = self.rng.choice(seen)
            if isinstance(v, list) and (element or self.rng.random() < 0.5):
                v = self.rng.choice(v) if v else self.rng.choice(GENERAL_VALUES)
            if not isinstance(v, (list, dict)):
                return self.perturb(v)
        return self.rng.choice(GENERAL_VALUES)

    def time_value(self):
        """A literal for created_at / updated_at: an instant outside [lo, hi] as an
        integer, a float or an ISO string, or (rarely) a literal of another type."""
        rng = self.rng
        r = rng.random()
        if r < 0.05:
            return rng.choice((True, None))
        delta = rng.choice((1, 999, 10**6, 3600 * 10**6, 400 * 86400 * 10**6))
        us = rng.choice((self.lo - delta, self.hi + delta, self.lo - delta, self.hi + delta,
                         rng.choice(INSTANTS), INT64_MAX, 0))
        if r < 0.5:
            return us
        if r < 0.6:
            return float(us)
        return iso_string(rng, min(us, iso_to_us("9999-12-31T23:59:59.999999Z")), ("min", "s", "ms", "us", "ns"))

    def field_value(self, name):
        """A literal for a record field: times outside the window, ids of records and
        their neighbours, versions around 1, tags."""
        rng = self.rng
        if name in TIMESTAMP_FIELDS:
            return self.time_value()
        if name == "id":
            return self.perturb(rng.choice(self.ids)) if rng.random() < 0.8 else rng.choice(GENERAL_VALUES)
        if name == "version":
            return rng.choice((0, 1, 1, 1, 2, -1, 1.0, 0.5, 1.5, "1", True, None))
        return rng.choice(TAGS) if rng.random() < 0.8 else self.perturb(rng.choice(GENERAL_VALUES))

    # -- predicates and expressions --

    def predicate_once(self):
        """One predicate of a random form on a record field, a document path or a
        missing path; it may not compile (see predicate)."""
        rng = self.rng
        r = rng.random()
        if r < 0.25:
            name = rng.choice(RECORD_FIELDS)
            path, value = name, lambda element=False: self.field_value(name)
            weights = WEIGHTS["tags" if name == "tags" else "scalar_field"]
        else:
            keys = rng.choice(MISSING_PATHS) if r < 0.32 else rng.choice(self.doc_paths)
            path, value = self.doc_path_text(keys), lambda element=False: self.doc_value(keys, element)
            arrays = any(isinstance(v, list) for v in self.values.get(keys, ()))
            weights = WEIGHTS["array" if arrays else "doc"]
        form = rng.choices(FORMS, weights)[0]
        ws, kw, lit = self.ws, self.kw, self.literal_text

        def lits(element=False):
            return "(" + ("," + ws()).join(lit(value(element)) for _ in range(rng.randint(1, 4))) + ")"

        if form == "cmp":
            op = rng.choice(("=", "!=", "<>", "<", "<=", ">", ">="))
            return f"{path}{self.opt_ws()}{op}{self.opt_ws()}{lit(value())}"
        if form in ("in", "not_in"):
            neg = kw("NOT") + ws() if form == "not_in" else ""
            return f"{path}{ws()}{neg}{kw('IN')}{self.opt_ws()}{lits()}"
        if form in ("between", "not_between"):
            a, b = value(), value()
            if rng.random() < 0.7 and isinstance(a, (int, float)) and isinstance(b, (int, float)):
                a, b = min(a, b), max(a, b)
            neg = kw("NOT") + ws() if form == "not_between" else ""
            return f"{path}{ws()}{neg}{kw('BETWEEN')}{ws()}{lit(a)}{ws()}{kw('AND')}{ws()}{lit(b)}"
        if form == "contains":
            return f"{path}{ws()}{kw('CONTAINS')}{ws()}{lit(value(True))}"
        if form in ("contains_any", "contains_all"):
            which = kw("ANY" if form == "contains_any" else "ALL")
            return f"{path}{ws()}{kw('CONTAINS')}{ws()}{which}{self.opt_ws()}{lits(True)}"
        if form == "is_null":
            return f"{path}{ws()}{kw('IS')}{ws()}{kw('NULL')}"
        if form == "is_not_null":
            return f"{path}{ws()}{kw('IS')}{ws()}{kw('NOT')}{ws()}{kw('NULL')}"
        if form == "exists":
            return f"{kw('EXISTS')}{ws()}{path}"
        v = value()
        prefix = v[:rng.randint(0, len(v))] if isinstance(v, str) else rng.choice(("", "a", "é", "2026", "日"))
        return f"{path}{ws()}{kw('STARTS')}{ws()}{kw('WITH')}{self.opt_ws()}{quote_string(prefix)}"

    def predicate(self):
        """A predicate that compiles and whose answer does not depend on the record times."""
        for _ in range(1000):
            text = self.predicate_once()
            try:
                ast = parse(text)
            except FilterError:
                continue
            if time_literals_outside(ast, self.lo, self.hi):
                return text
        raise AssertionError("the generator could not make a valid predicate")

    def expr(self, depth):
        """Predicates combined with AND, OR, NOT and parentheses, depth levels at most;
        the text's own precedence decides the tree."""
        rng = self.rng
        r = rng.random()
        if depth == 0 or r < 0.4:
            return self.predicate()
        if r < 0.57:
            return self.join("AND", [self.expr(depth - 1) for _ in range(rng.randint(2, 3))])
        if r < 0.8:
            return self.join("OR", [self.expr(depth - 1) for _ in range(rng.randint(2, 3))])
        if r < 0.9:
            inner = self.expr(depth - 1)
            return self.kw("NOT") + (self.opt_ws() if inner[0] in '("' else self.ws()) + inner
        return "(" + self.opt_ws() + self.expr(depth - 1) + self.opt_ws() + ")"

    def filter(self):
        text = self.expr(EXPR_DEPTH)
        assert "\n" not in text and "\r" not in text and "\0" not in text
        return text


class Dataset:
    """One seed's records, filters and the reference's answers (the set of matching ids
    of each filter). Deterministic given the seed, except for the time literals, which
    follow the clock."""

    def __init__(self, seed, n_docs, n_filters):
        rng = random.Random(seed)
        self.seed = seed
        self.lo = (now_us() - WINDOW_MARGIN_US) // MINUTE_US * MINUTE_US
        self.hi = self.lo + WINDOW_SLACK_US - 1
        self.records = gen_records(rng, n_docs, self.lo)
        self.by_id = {r["id"]: r for r in self.records}
        gen = FilterGenerator(rng, self.records, self.lo, self.hi)
        self.filters = [gen.filter() for _ in range(n_filters)]
        self.asts = [parse(f) for f in self.filters]
        self.expected = [frozenset(r["id"] for r in self.records if matches(a, r)) for a in self.asts]
        self.vectors = [[float(np.float32(rng.uniform(-1, 1))) for _ in range(DIM)] for _ in self.records]


@functools.lru_cache(maxsize=None)
def dataset(seed, n_docs=N_DOCS, n_filters=N_FILTERS):
    return Dataset(seed, n_docs, n_filters)


# ---------------------------------------------------------------- unit tests of the reference

def rec(meta=None, tags=(), rid=7, version=1, created_at=0):
    """A record as matches() takes it."""
    return {"id": rid, "version": version, "created_at": created_at, "updated_at": created_at,
            "tags": sorted(set(tags), key=str.encode), "meta": meta}


def m(text, meta=None, **kw):
    """Whether filter text selects the record of document meta (and rec()'s keywords)."""
    return matches(parse(text), rec(meta, **kw))


def test_examples_of_filter_md_parse():
    parse("category = 'shoes' AND price BETWEEN 10 AND 50 AND NOT tags CONTAINS 'discontinued'")
    parse("year >= 2020 OR (label IN (3, 5, 7) AND $.source.name STARTS WITH 'web')")
    parse("updated_at > '2026-01-01T00:00:00Z' AND EXISTS review.score")
    doc = {"category": "shoes", "price": 10, "year": 2019, "label": 5, "source": {"name": "web/home"}}
    assert m("category = 'shoes' AND price BETWEEN 10 AND 50 AND NOT tags CONTAINS 'discontinued'", doc)
    assert not m("category = 'shoes' AND NOT tags CONTAINS 'discontinued'", doc, tags=["discontinued"])
    assert m("year >= 2020 OR (label IN (3, 5, 7) AND $.source.name STARTS WITH 'web')", doc)


def test_two_valued_logic():
    assert not m("price != 5", {})
    assert m("NOT price = 5", {})
    assert not m("price != 5", None)
    assert m("price != 5", {"price": 6})
    assert not m("price != 5", {"price": "5"})   # type mismatch
    assert m("NOT price != 5", {"price": "5"})
    assert not m("price < 5", {"price": True})
    assert not m("x = 1", {"x": {"y": 1}})
    assert not m("x.y.z = 1", {"x": {"y": 1}})   # an object on the way is not an object


def test_numbers_compare_exactly():
    assert m("x = 1.0", {"x": 1}) and m("x = 1", {"x": 1.0}) and m("x = 1e0", {"x": 1})
    assert m("x = 0", {"x": -0.0}) and m("x = -0", {"x": 0.0})
    assert not m("x = 9007199254740992.0", {"x": 2**53 + 1})
    assert m("x > 9007199254740992.0", {"x": 2**53 + 1})
    assert not m("x = 9007199254740993.0", {"x": 2**53 + 1})  # the literal rounds to 2**53
    assert m("x < 9.223372036854775807e18", {"x": INT64_MAX})  # the float is 2**63
    assert m("x = -9223372036854775808", {"x": -9.223372036854775808e18})
    assert m("x BETWEEN 10 AND 50", {"x": 10.0}) and m("x BETWEEN 10 AND 50", {"x": 50})
    assert not m("x BETWEEN 10 AND 50", {"x": 50.000000000001})


def test_strings_and_iso_instants():
    doc = {"t": "2026-01-01T00:00:00Z", "s": "é", "u": "2026-01-01T01:00:00+01:00"}
    assert m("t = '2026-01-01T01:00:00+01:00'", doc)
    assert m("u = '2026-01-01T00:00:00Z'", doc)
    assert m("t = '2026-01-01'", doc) and m("t = '2026-01-01 00:00'", doc)
    assert not m("t < '2026-01-01T00:30:00+00:30'", {"t": "2026-01-01T00:00:00.000001Z"})
    assert m("t = '2026-01-01T00:00:00.000000999Z'", doc)      # truncated to microseconds
    assert m("t > '2025-12-31T23:59:59.999999-00:00'", doc)
    assert m("t < '2026-01-01T00:00:00-01:00'", doc)
    assert not m("t = '2026-01-01T00:00:00+01:00'", doc)
    assert m("t != '2026-01-01T00:00:00+01:00'", doc)
    # Either side not an ISO timestamp: bytes.
    assert not m("t = '2026-01-01T00:00:00Z '", doc)
    assert m("t < 'Z'", doc) and m("t STARTS WITH '2026-01-01T'", doc)
    assert not m("x = '2026-02-30'", {"x": "2026-03-02"})
    assert m("x < '2026-02-30'", {"x": "2026-02-29T00:00Z"})      # no such date: bytes
    assert m("x = '2024-02-29'", {"x": "2024-02-29T00:00:00Z"})   # a leap day
    assert not m("x = '2025-02-29'", {"x": "2025-03-01"})
    # UTF-8 byte order is code-point order.
    assert m("s > 'z'", doc) and m("s < '😀'", doc) and m("s >= ''", doc)
    assert m("s STARTS WITH 'é'", doc) and m("s STARTS WITH ''", doc) and not m("s STARTS WITH 'e'", doc)
    assert m("q = 'it''s'", {"q": "it's"})


def test_iso_subset():
    assert iso_to_us("1970-01-01") == 0
    assert iso_to_us("1970-01-01T00:00:00.000001Z") == 1
    assert iso_to_us("1969-12-31T23:59:59.999999Z") == -1
    assert iso_to_us("1970-01-01T01:00+01:00") == 0 == iso_to_us("1970-01-01 00:00")
    assert iso_to_us("2026-01-01T00:00:00.123456789Z") == iso_to_us("2026-01-01T00:00:00.123456Z")
    assert iso_to_us("0001-01-01T00:00+01:00") == iso_to_us("0001-01-01") - 3600 * 10**6
    for bad in ("2026-02-30", "2026-13-01", "2025-02-29", "1900-02-29", "2026-01-01T24:00",
                "2026-01-01T00:00:60", "2026-01-01Z", "0000-01-01", "2026-01-01t00:00Z", "2026-01-01T00:00z",
                "2026-01-01T00:00+0100", "2026-01-01T00:00+24:00", "\uff12\uff10\uff12\uff16-01-01",
                "2026-01-01T00:00:00.1234567890", "2026-01-01T00:00.5", "2026-01-01T00:00:00,5",
                "2026-01-01T00:00:00.", "2026-01-01 ", " 2026-01-01", "2026-1-01", "2026-01-01T00",
                "10000-01-01"):
        assert iso_to_us(bad) is None, bad
    for y in ("2024-02-29", "2000-02-29", "9999-12-31T23:59:59.999999999+23:59"):
        assert iso_to_us(y) is not None, y
    for us in INSTANTS:
        for zone in ZONES:
            try:
                text = iso_format(us, zone, "us", " ")
            except OverflowError:
                continue
            assert iso_to_us(text) == us, text


def test_booleans_and_null():
    doc = {"f": True, "z": None, "a": [1], "o": {}}
    assert m("f = true", doc) and m("f != FALSE", doc) and m("f = True", doc)
    assert not m("f < true", doc) and not m("f >= true", doc) and not m("f = 1", doc)
    assert m("z = null", doc) and not m("z != null", doc) and not m("z != 5", doc)
    assert not m("z < null", doc) and not m("z = 0", doc)
    assert not m("missing = null", doc) and not m("missing != null", doc)
    assert m("f != null", doc)
    # Arrays and objects compare false, except that they are present and not null.
    assert not m("a = 1", doc) and not m("a != 1", doc) and not m("o = 1", doc)
    assert m("a != null", doc) and m("o != null", doc) and not m("a = null", doc)
    assert m("a NOT IN (null)", doc) and not m("a NOT IN (null, 1)", doc)


def test_in_and_between():
    assert m("x IN (1, 2)", {"x": 2.0}) and not m("x IN (1, 2)", {"x": 3})
    assert m("x NOT IN (1, 2)", {"x": 3})
    assert not m("x NOT IN (1, 2)", {}) and not m("x NOT IN (1, 2)", {"x": "a"})
    assert m("NOT x IN (1, 2)", {})
    assert m("x IN (null, 1)", {"x": None}) and not m("x NOT IN (null, 1)", {"x": None})
    assert not m("x NOT BETWEEN 10 AND 50", {}) and m("NOT x BETWEEN 10 AND 50", {})
    assert m("x NOT BETWEEN 10 AND 50", {"x": 5}) and not m("x NOT BETWEEN 10 AND 50", {"x": 10})
    assert m("x NOT BETWEEN 1 AND 'z'", {"x": 0}) and m("x NOT BETWEEN 1 AND 'z'", {"x": "zz"})
    assert not m("x BETWEEN 1 AND 'z'", {"x": 2})
    assert m("x BETWEEN 'a' AND 'b'", {"x": "ab"})
    assert m("t BETWEEN '2025-12-31T23:00:00-01:00' AND '2026-01-01'", {"t": "2026-01-01T00:00Z"})


def test_contains():
    assert m("tags CONTAINS 'x'", tags=["x", "y"]) and not m("tags CONTAINS 'z'", tags=["x"])
    assert m("tags CONTAINS ANY ('z', 'y')", tags=["x", "y"])
    assert m("tags CONTAINS ALL ('x', 'y')", tags=["x", "y"]) and not m("tags CONTAINS ALL ('x', 'z')", tags=["x"])
    assert not m("tags CONTAINS ANY ('x')", tags=[])
    assert m("tags CONTAINS '2026-01-01'", tags=["2026-01-01T01:00:00+01:00"])  # elements use '='
    doc = {"a": [1, "b", None, [2], {"k": 1}], "s": "abc"}
    assert m("a CONTAINS 1.0", doc) and m("a CONTAINS null", doc) and m("a CONTAINS 'b'", doc)
    assert not m("a CONTAINS 2", doc) and not m("a CONTAINS '1'", doc)
    assert not m("s CONTAINS 'a'", doc) and not m("missing CONTAINS 1", doc)
    assert m("$.tags CONTAINS 'q'", {"tags": ["q"]}, tags=["x"]) and not m("tags CONTAINS 'q'", {"tags": ["q"]})


def test_is_null_and_exists():
    doc = {"z": None, "n": 0, "o": {"p": None}}
    assert m("z IS NULL", doc) and m("missing IS NULL", doc) and m("o.p IS NULL", doc)
    assert not m("n IS NULL", doc) and m("n IS NOT NULL", doc) and not m("z IS NOT NULL", doc)
    assert m("EXISTS z", doc) and m("EXISTS o.p", doc) and not m("EXISTS missing", doc)
    assert not m("EXISTS n.x", doc) and not m("EXISTS x", None)
    assert m("EXISTS tags", doc) and not m("tags IS NULL", doc) and m("EXISTS id", None)


def test_keywords_are_case_insensitive():
    doc = {"p": 1, "n": "abc", "l": [1]}
    assert m("p between 0 and 2 and not exists x or Not P = 1", doc)
    assert m("n sTaRtS wItH 'a' AnD l CoNtAiNs aNy (1) AND l contains all (1) aND p iN (1) And n is not null", doc)
    assert m("p != NuLl AND n NOT in ('x')", doc) and m("f = tRuE", {"f": True})
    with pytest.raises(FilterError):
        parse("P = 1 AN n = 'abc'")


def test_precedence():
    assert parse("a = 1 OR b = 1 AND c = 1")[0] == "or"
    assert parse("NOT a = 1 AND b = 1")[0] == "and"
    assert parse("NOT (a = 1 AND b = 1)")[0] == "not"
    assert parse("x BETWEEN 1 AND 2 AND y = 1")[0] == "and"
    assert m("a = 1 OR b = 1 AND c = 1", {"a": 1}) and not m("(a = 1 OR b = 1) AND c = 1", {"a": 1})
    assert m("NOT a = 1 AND b = 1", {"b": 1}) and m("NOT NOT a = 1", {"a": 1})


def test_paths():
    doc = {"price (EUR)": 3, 'a"b': 1, "back\\slash": 2, "and": 4, "a.b": 5, "a": {"b": 6},
           "id": 8, "ключ": "v", "": 9, "x": {"and": 10}}
    assert m('"price (EUR)" > 1', doc) and m('"a\\"b" = 1', doc) and m('"back\\\\slash" = 2', doc)
    assert m('"and" = 4', doc) and m('$."and" = 4', doc) and m('x."and" = 10', doc)
    assert m('"a.b" = 5', doc) and m("a.b = 6", doc) and m('a."b" = 6', doc) and m('$.a.b = 6', doc)
    assert m('"ключ" = \'v\'', doc) and m('"" = 9', doc)
    # id is the record's, $.id and "id" the document's.
    assert m("id = 7", doc, rid=7) and m("$.id = 8", doc, rid=7) and m('"id" = 8', doc, rid=7)
    assert not m("id = 8", doc, rid=7) and not m("ID = 7", doc, rid=7)
    assert m("version = 1", doc) and m("$.version IS NULL", doc) and m("id.x IS NULL", doc)
    for bad in ("and = 1", "a.and = 1", "$.and = 1", "And.x = 1", "$ = 1", "$. x = 1", "a. b = 1",
                "a .b = 1", "a..b = 1", '"a\\b" = 1', '"a = 1', "1a = 1", "é = 1"):
        with pytest.raises(FilterError):
            parse(bad)


def test_record_timestamps():
    t0 = iso_to_us("2026-01-01T00:00:00Z")
    assert m("created_at = '2026-01-01T01:00:00+01:00'", created_at=t0)
    assert m(f"created_at = {t0}", created_at=t0) and m(f"updated_at >= {t0}.0", created_at=t0)
    assert m("created_at BETWEEN '2025-12-31' AND '2026-01-01'", created_at=t0)
    assert m("created_at IN (1, '2026-01-01')", created_at=t0)
    assert not m("created_at STARTS WITH '2026'", created_at=t0)
    assert not m("created_at = true", created_at=t0) and m("created_at != null", created_at=t0)
    assert not m("created_at IS NULL", created_at=t0) and not m("created_at CONTAINS 1", created_at=t0)
    assert m("$.created_at = 'yesterday'", {"created_at": "yesterday"})
    for bad in ("created_at > 'yesterday'", "updated_at = '2026-02-30'", "created_at IN (1, 'x')",
                "created_at BETWEEN '2026-01-01' AND 'soon'", "created_at < '2026-01-01Z'"):
        with pytest.raises(FilterError):
            parse(bad)


def test_time_literals_outside():
    lo, hi = 1000, 2000
    for text, stable in (("created_at > 999", True), ("created_at = 1000", False), ("updated_at < 2001", True),
                         ("created_at IN (1, 1500)", False), ("created_at BETWEEN 0 AND 3000", True),
                         ("NOT created_at NOT BETWEEN 0 AND 1999.5", False), ("created_at = TRUE", True),
                         ("x = 1500 OR id = 1500", True), ("created_at CONTAINS ANY (1, 2000)", False)):
        assert time_literals_outside(parse(text), lo, hi) is stable, text
        if stable:
            ast = parse(text)
            assert all(matches(ast, rec({"x": 0}, created_at=t)) == matches(ast, rec({"x": 0}, created_at=lo))
                       for t in range(lo, hi + 1, 50)), text


# Filters that must not compile, each with the reason. Bytes where the text is not UTF-8.
BAD_FILTERS = (
    "price > AND x = 1",                   # FILTER.md: column 9: expected a value after '>'
    "popularity = 99999999999999999999",   # FILTER.md: column 14: integer out of range
    "AN price = 5",
    "price = 5 AN x = 1",
    "price =", "price", "= 5", "(price = 5", "price = 5)", "()", "NOT", "price = 5 AND",
    "price = 5 OR OR x = 1", "price == 5", "price => 5", "price ! 5", "price = 'abc",
    "price IN ()", "price IN (1,)", "price IN 1", "price IN (1 2)", "price BETWEEN 1",
    "price BETWEEN 1 OR 2", "price NOT = 5", "price NOT CONTAINS 1", "tags CONTAINS",
    "tags CONTAINS ANY 'x'", "tags CONTAINS ALL ()", "price IS 5", "price IS NOT", "EXISTS", "EXISTS 5",
    "name STARTS WITH 5", "name STARTS 'a'", "name STARTS WITH", "and = 1", "a.or = 1", "$.not = 1",
    "$ = 1", "$.= 1", "a..b = 1", "a. b = 1", '"unterminated = 1', '"bad\\n" = 1', "price = 1e999",
    "price = -1e999", "price = 5.", "price = .5", "price = - 5", "price = 9223372036854775808",
    "price = -9223372036854775809", "price = 5 # comment", "x = 'a' 'b'", "x = TRUE FALSE",
    "x = nul", "price = @", "x IS NULL NULL", "created_at > 'yesterday'", "updated_at = '2026-02-30'",
    "created_at < '2026-01-01T24:00'", "created_at > '2026-01-01Z'", "created_at IN (1, 'x')",
    "created_at BETWEEN '2026-01-01' AND 'soon'", "tags CONTAINS 5 5",
    b"name = '\xff'", b'"\xc3" = 1', b"name = '\xc0\xaf'", b"name = '\xed\xa0\x80'",
    "x = '" + "a" * (MAX_STRING_BYTES + 1) + "'",
    "x IN (" + ", ".join(["1"] * (MAX_LIST + 1)) + ")",
    "(" * (MAX_NESTING + 1) + "x = 1" + ")" * (MAX_NESTING + 1),
    "NOT " * (MAX_NESTING + 1) + "x = 1",
    "NOT (" * (MAX_NESTING // 2) + "NOT x = 1" + ")" * (MAX_NESTING // 2),
    "x =" + " " * (MAX_FILTER_BYTES - 3) + "1",
)
# Filters at the limits, which must compile.
LIMIT_FILTERS = (
    "n = '" + "a" * MAX_STRING_BYTES + "'",
    "name = '" + "é" * (MAX_STRING_BYTES // 2) + "'",
    "n IN (" + ", ".join(str(i) for i in range(MAX_LIST)) + ")",
    "(" * MAX_NESTING + "n = 1" + ")" * MAX_NESTING,
    "NOT " * MAX_NESTING + "n = 1",
    "NOT (" * (MAX_NESTING // 2) + "n IN (1, 2)" + ")" * (MAX_NESTING // 2),
    "n =" + " " * (MAX_FILTER_BYTES - 4) + "1",
    "big = -9223372036854775808 OR big = 9223372036854775807 OR n = 007",
    "price = 1e-400 OR price < 4.9e-324 OR n >= -0.0e+0",
    "(n=1)AND(price>1)OR(name='a')AND\"a b\" IS NOT NULL OR n IN(1,2)",
    "\tn\t=\t1\r",
)


def test_bad_filters_are_refused():
    for text in BAD_FILTERS:
        with pytest.raises(FilterError):
            parse(text)
    with pytest.raises(FilterError) as e:
        parse("price > AND x = 1")
    assert e.value.column == 9
    with pytest.raises(FilterError) as e:
        parse("popularity = 99999999999999999999")
    assert e.value.column == 14


def test_limit_filters_compile():
    for text in LIMIT_FILTERS:
        parse(text)
    assert len(LIMIT_FILTERS[6].encode()) == MAX_FILTER_BYTES


def test_generator_reaches_every_form():
    """The random filters use every form of the grammar, and select neither always
    nothing nor always everything."""
    data = dataset(SEEDS[0])
    seen = set()

    def walk(ast):
        kind = ast[0]
        if kind in ("and", "or"):
            seen.add(kind)
            for a in ast[1]:
                walk(a)
        elif kind == "not":
            seen.add(kind)
            walk(ast[1])
        else:
            negated = kind in ("in", "between", "isnull") and ast[2]
            seen.add(("not_" if negated else "") + kind + (ast[2] if kind == "cmp" else ""))
            seen.add(ast[1][1] if ast[1][0] == "field" else "doc")
    for ast in data.asts:
        walk(ast)
    want = {"and", "or", "not", "exists", "in", "not_in", "between", "not_between", "contains",
            "contains_any", "contains_all", "isnull", "not_isnull", "starts",
            "cmp=", "cmp!=", "cmp<", "cmp<=", "cmp>", "cmp>=", "doc"} | set(RECORD_FIELDS)
    assert want <= seen, want - seen
    texts = " ".join(data.filters)
    assert "<>" in texts and " and " in texts and "$." in texts and '"' in texts
    sizes = [len(e) for e in data.expected]
    n = len(data.records)
    assert sum(0 < s < n for s in sizes) > len(sizes) // 3, "too few filters select some but not all"
    assert sum(s == 0 for s in sizes) > len(sizes) // 20 and sum(s == n for s in sizes) > len(sizes) // 20


# ---------------------------------------------------------------- against nvf-tool

@pytest.fixture(scope="module")
def tool():
    path = os.environ.get("NVF_TOOL")
    if not path:
        pytest.skip("NVF_TOOL is not set (the nvf-tool binary)")
    assert os.access(path, os.X_OK), f"NVF_TOOL={path} is not an executable"
    return path


def run(tool, *args, check=True):
    """Run nvf-tool; with check, it must succeed."""
    p = subprocess.run([tool, *map(str, args)], capture_output=True, timeout=TOOL_TIMEOUT)
    if check:
        assert p.returncode == 0, (f"nvf-tool {' '.join(map(str, args))[:300]}: exit {p.returncode}\n"
                                   f"stderr: {p.stderr.decode(errors='replace')}")
    return p


def same_json(a, b):
    """JSON equality that tells 1 from 1.0 and from true."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b))
    return a == b


def build_db(tool, directory, data, codec=None, indexes=(), indexes_first=False):
    """A database of data's records: created (with codec), indexes declared before or
    after the import, and two records read back whole."""
    db = directory / f"filters-{data.seed}-{codec or 'default'}.nvf"
    run(tool, "create", db, "--dim", DIM, *(("--codec", codec) if codec else ()))

    def declare():
        for path, kind in indexes:
            run(tool, "field", "add", db, path, "--type", kind)
    if indexes_first:
        declare()
    lines = []
    for r, vec in zip(data.records, data.vectors):
        obj = {"id": r["id"], "vector": vec}
        if r["meta"] is not None:
            obj["meta"] = r["meta"]
        if r["tags"] or r["id"] % 2:
            obj["tags"] = r["tags"]
        lines.append(json.dumps(obj, ensure_ascii=bool(r["id"] % 3 == 0)))
    jsonl = directory / "records.jsonl"
    jsonl.write_text("\n".join(lines) + "\n", encoding="utf-8")
    before = now_us()
    run(tool, "import", db, jsonl)
    after = now_us()
    assert data.lo <= before and after <= data.hi, (
        f"seed {data.seed}: the import ran at [{before}, {after}], outside the window "
        f"[{data.lo}, {data.hi}] the filters' time literals were chosen for (WINDOW_SLACK_US)")
    if not indexes_first:
        declare()
    for r in (data.records[0], data.records[-1]):
        got = json.loads(run(tool, "meta", "get", db, r["id"], "--record").stdout)
        assert got["id"] == r["id"] and got["version"] == 1 and got["tags"] == r["tags"], got
        for name in TIMESTAMP_FIELDS:
            assert data.lo <= got[name] <= data.hi, f"{name} {got[name]} outside [{data.lo}, {data.hi}]"
        assert same_json(got["meta"], r["meta"]), f"id {r['id']}: stored {got['meta']!r}, imported {r['meta']!r}"
    return db


def search(tool, directory, db, filters, k, errors_expected=False):
    """Run every filter (str or bytes) in one search of one query with k = all records;
    the answer line of each, in order. Unless errors_expected, the exit status must be 0."""
    q = directory / "q.npy"
    np.save(q, np.zeros((1, DIM), dtype=np.float32), allow_pickle=False)
    ff = directory / "filters.txt"
    ff.write_bytes(b"".join((f.encode() if isinstance(f, str) else f) + b"\n" for f in filters))
    p = run(tool, "search", db, "--query-file", q, "-k", k, "--exact", "--json", "--filter-file", ff,
            check=not errors_expected)
    try:
        out = p.stdout.decode("utf-8")
    except UnicodeDecodeError as e:
        raise AssertionError(f"search output is not UTF-8 ({e}): {p.stdout[max(0, e.start - 100):e.end + 100]!r}")
    answers = {}
    for line in out.splitlines():
        try:
            a = json.loads(line)
        except ValueError as e:
            raise AssertionError(f"search output line is not JSON ({e}): {line[:300]!r}")
        assert a["filter"] not in answers, f"two answers for filter {a['filter']}"
        answers[a["filter"]] = a
    assert sorted(answers) == list(range(len(filters))), (
        f"answers for filters {sorted(answers)[:20]}..., expected 0..{len(filters) - 1}; "
        f"exit {p.returncode}, stderr: {p.stderr.decode(errors='replace')}")
    return [answers[j] for j in range(len(filters))]


def differences(data, filters, expected, answers, label):
    """Describe every filter whose answer differs from the reference's (the first three
    in detail), or return ''."""
    bad = []
    for text, want, a in zip(filters, expected, answers):
        if "error" in a:
            bad.append(f"filter {text!r}: the tool refused it: {a['error']}")
            continue
        ids = a["ids"]
        got = set(ids)
        dist = a.get("distances")
        if len(got) != len(ids) or a.get("query") != 0 or dist is None or len(dist) != len(ids) or dist != sorted(dist):
            bad.append(f"filter {text!r}: malformed answer {json.dumps(a)[:300]}")
        elif got != want:
            tool_only, model_only = sorted(got - want), sorted(want - got)
            rid = (tool_only or model_only)[0]
            r = data.by_id.get(rid)
            bad.append(f"filter {text!r} (the tool: {len(got)} ids, the model: {len(want)})\n"
                       f"  only the tool's: {tool_only[:10]}\n  only the model's: {model_only[:10]}\n"
                       f"  id {rid}: " + (f"document {json.dumps(r['meta'], ensure_ascii=False)}, tags {r['tags']}"
                                          if r else "no such record"))
    if not bad:
        return ""
    return f"{label}: {len(bad)} of {len(filters)} filters differ from the reference\n" + "\n".join(bad[:3])


@pytest.mark.parametrize("seed", SEEDS)
def test_filters_match_model(tool, tmp_path, seed):
    data = dataset(seed)
    db = build_db(tool, tmp_path, data)
    answers = search(tool, tmp_path, db, data.filters, len(data.records))
    msg = differences(data, data.filters, data.expected, answers, f"seed {seed}, no index")
    assert not msg, msg


@pytest.mark.parametrize("seed", SEEDS)
def test_filters_match_model_with_indexes(tool, tmp_path, seed):
    """The same answers with field indexes, declared on an empty collection (every
    other seed) or over the imported records."""
    data = dataset(seed)
    first = SEEDS.index(seed) % 2 == 0
    db = build_db(tool, tmp_path, data, indexes=INDEXES, indexes_first=first)
    answers = search(tool, tmp_path, db, data.filters, len(data.records))
    msg = differences(data, data.filters, data.expected, answers,
                      f"seed {seed}, indexes declared {'before' if first else 'after'} the import")
    assert not msg, msg


@pytest.mark.parametrize("codec", CODECS)
def test_filters_match_model_with_codec(tool, tmp_path, codec):
    """Every codec stores the documents so that the filters see the same values."""
    data = dataset(CODEC_SEED, CODEC_DOCS, CODEC_FILTERS)
    db = build_db(tool, tmp_path, data, codec=codec)
    answers = search(tool, tmp_path, db, data.filters, len(data.records))
    msg = differences(data, data.filters, data.expected, answers, f"seed {CODEC_SEED}, codec {codec}")
    assert not msg, msg


def test_limits_and_syntax_errors(tool, tmp_path):
    """Each bad filter gets an error line naming a column (the good ones around it
    still answer); filters at the limits answer as the reference does."""
    data = dataset(SEEDS[0])
    db = build_db(tool, tmp_path, data)
    good = data.filters[0]
    filters = [good, *BAD_FILTERS, good, *LIMIT_FILTERS]
    answers = search(tool, tmp_path, db, filters, len(data.records), errors_expected=True)
    wrong = []
    for text, a in zip(BAD_FILTERS, answers[1:]):
        shown = text if len(text) < 80 else text[:60] + f"... ({len(text)} bytes)"
        if "error" not in a:
            wrong.append(f"{shown!r}: accepted, answered {len(a.get('ids', []))} ids")
        elif not re.search(r"\bcolumn [0-9]+\b", a["error"]):
            wrong.append(f"{shown!r}: error without a column: {a['error']!r}")
    assert not wrong, f"{len(wrong)} bad filters:\n" + "\n".join(wrong)
    checked = [good, good, *LIMIT_FILTERS]
    expected = [frozenset(r["id"] for r in data.records if matches(parse(f), r)) for f in checked]
    got = [answers[0], answers[len(BAD_FILTERS) + 1], *answers[len(BAD_FILTERS) + 2:]]
    msg = differences(data, [f if len(f) < 200 else f[:100] + "..." for f in checked], expected, got,
                      f"seed {SEEDS[0]}, limits")
    assert not msg, msg
