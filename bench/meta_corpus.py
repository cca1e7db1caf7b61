"""The corpus of bench meta: Debian's package index, one JSON document per package stanza.

usage: meta_corpus.py OUT [--lists DIR] [--gets N]

Reads every *_Packages.lz4 under DIR (default /var/lib/apt/lists), in the order of their
file names (sorted, so the run is deterministic for a given set of lists), decompressed
with the `lz4cat` command (Debian package lz4; Python has no lz4 module here). Where a
machine's apt keeps its lists uncompressed, the plain *_Packages files are read instead
(only when there is no *_Packages.lz4 at all). Writes:

  OUT/meta-corpus.jsonl   one JSON object per stanza, in file order then stanza order;
      keys are the field names exactly as written ("Package", "Version",
      "Installed-Size", ...), in the stanza's order; values are strings, except
      Installed-Size and Size, which are integers. Depends, Recommends, Suggests,
      Pre-Depends, Breaks, Conflicts, Provides, Replaces and the rest stay strings.
      A field continued over several lines (lines starting with a space or a tab) is
      one string: its first line, then each continuation line without its one leading
      space or tab, joined by "\\n"; a " ." continuation line (a paragraph break inside
      a Description) becomes an empty line. Every line is serialised compactly
      (separators "," and ":", no spaces) and in UTF-8 (ensure_ascii off), with "\\n"
      after it; the document's bytes are its line without the "\\n".
  OUT/meta-corpus.info.json  count, json_bytes (the whole jsonl file, newlines
      included, and json_doc_bytes without them), zstd_3_stream_bytes (the size of
      `zstd -3` over the whole jsonl file as one stream: the compression limit the
      bench compares against), filter_matches (documents with Section == "python" and
      Installed-Size > 1000, counted here in Python: a document without Installed-Size
      does not match), the input files with their sizes and the SHA-256 of their
      decompressed text (the lists change with every apt-get update), and the get ids.
  OUT/meta-get-ids.npy    the ids (line numbers from 0) every system's random-get test
      reads, in this order: int64, shape (N,), N 100,000 by default; they are
      r = random.Random(42); [r.randrange(count) for _ in range(N)]
      (CPython's Mersenne Twister; written out so that no other language has to
      reproduce it).
"""
import argparse
import glob
import hashlib
import json
import os
import random
import re
import subprocess
import sys

import numpy as np

INT_FIELDS = ("Installed-Size", "Size")
GET_SEED = 42
GET_N = 100000


def read_lists(lists):
    """[(path, text)] of the Packages lists, sorted by file name."""
    paths = sorted(glob.glob(os.path.join(lists, "*_Packages.lz4")))
    compressed = bool(paths)
    if not paths:
        paths = sorted(glob.glob(os.path.join(lists, "*_Packages")))
    if not paths:
        sys.exit("meta_corpus.py: no *_Packages.lz4 (nor *_Packages) under %s: run apt-get update" % lists)
    out = []
    for p in paths:
        if compressed:
            raw = subprocess.run(["lz4cat", p], check=True, stdout=subprocess.PIPE).stdout
        else:
            with open(p, "rb") as f:
                raw = f.read()
        out.append((p, raw))
    return out


def stanzas(text, where):
    """Yield each stanza of an RFC 822-style (deb822) text as a dict, fields in order."""
    doc, last = {}, None
    for n, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            if doc:
                yield doc
            doc, last = {}, None
        elif line[0] in " \t":
            if last is None:
                raise ValueError("%s:%d: continuation line outside a field" % (where, n))
            rest = line[1:]
            doc[last] += "\n" + ("" if rest == "." else rest)
        elif line.startswith("#"):
            continue
        else:
            name, sep, value = line.partition(":")
            if not sep:
                raise ValueError("%s:%d: not a field: %r" % (where, n, line[:60]))
            if name in doc:
                raise ValueError("%s:%d: field %s twice in one stanza" % (where, n, name))
            doc[name] = value.strip()
            last = name
    if doc:
        yield doc


def typed(doc, where):
    for k in INT_FIELDS:
        if k in doc:
            try:
                doc[k] = int(doc[k])
            except ValueError:
                raise ValueError("%s: package %s: %s is not an integer: %r" % (where, doc.get("Package"), k, doc[k]))
    return doc


def matches(doc):
    """The bench's filter: Section = 'python' AND Installed-Size > 1000."""
    size = doc.get("Installed-Size")
    return doc.get("Section") == "python" and size is not None and size > 1000


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--lists", default="/var/lib/apt/lists")
    ap.add_argument("--gets", type=int, default=GET_N)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    jsonl = os.path.join(a.out, "meta-corpus.jsonl")
    count = doc_bytes = nmatch = 0
    inputs = []
    with open(jsonl + ".tmp", "wb") as f:
        for path, raw in read_lists(a.lists):
            name = os.path.basename(path)
            n0 = count
            for doc in stanzas(raw.decode("utf-8"), name):
                line = json.dumps(typed(doc, name), separators=(",", ":"), ensure_ascii=False).encode("utf-8")
                f.write(line + b"\n")
                count += 1
                doc_bytes += len(line)
                nmatch += matches(doc)
            inputs.append({"file": name, "file_bytes": os.path.getsize(path), "text_bytes": len(raw),
                           "text_sha256": hashlib.sha256(raw).hexdigest(), "stanzas": count - n0})
    os.replace(jsonl + ".tmp", jsonl)
    json_bytes = os.path.getsize(jsonl)
    zst = subprocess.run(["zstd", "-3", "-q", "-c", jsonl], check=True, stdout=subprocess.PIPE).stdout
    zver = subprocess.run(["zstd", "-V"], stdout=subprocess.PIPE, text=True).stdout.strip()
    m = re.search(r"v\d[\w.]*", zver)
    zver = "zstd " + m.group(0) if m else zver

    r = random.Random(GET_SEED)
    ids = np.array([r.randrange(count) for _ in range(a.gets)], dtype=np.int64)
    np.save(os.path.join(a.out, "meta-get-ids.npy"), ids)

    info = {
        "dataset": "debian-packages",
        "count": count,
        "json_bytes": json_bytes,
        "json_doc_bytes": doc_bytes,
        "zstd_3_stream_bytes": len(zst),
        "zstd_version": zver,
        "filter": "Section = 'python' AND Installed-Size > 1000",
        "filter_matches": nmatch,
        "get_ids": {"file": "meta-get-ids.npy", "n": a.gets, "dtype": "int64",
                    "generator": "r = random.Random(%d); [r.randrange(count) for _ in range(n)]" % GET_SEED},
        "inputs": inputs,
    }
    with open(os.path.join(a.out, "meta-corpus.info.json"), "w") as f:
        json.dump(info, f, indent=1)
        f.write("\n")
    print("meta_corpus.py: %d documents, %d JSON bytes (%.1f/doc), zstd -3 stream %d bytes (%.1f/doc), "
          "%d match the filter -> %s" % (count, json_bytes, doc_bytes / count, len(zst), len(zst) / count,
                                         nmatch, jsonl), file=sys.stderr)


if __name__ == "__main__":
    main()
