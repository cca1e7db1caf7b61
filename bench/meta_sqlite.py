"""SQLite's side of bench meta, and the size limits it is compared with.

usage: meta_sqlite.py OUT [--passes 3]

Reads OUT/meta-corpus.jsonl, OUT/meta-corpus.info.json and OUT/meta-get-ids.npy (all
written by bench/meta_corpus.py) and prints one JSON object per result, suite "meta",
dataset "debian-packages":

 system "sqlite" (python3's sqlite3 module, Debian's libsqlite3, its JSON functions):
  - a fresh database file OUT/meta.sqlite (removed first), default settings (page size
    4096, rollback journal, synchronous FULL), one table
    docs(id INTEGER PRIMARY KEY, doc TEXT), each document's JSON text as it stands on
    its line (no newline), id = its line number from 0, all inserted with executemany
    in one transaction, committed; no VACUUM and no index besides the rowid.
    file_bytes: the file's size after the commit (the journal is gone by then);
    bytes_per_doc: file_bytes / count.
  - get_per_s: `SELECT doc FROM docs WHERE id=?` for each id of meta-get-ids.npy in
    its order (N ids drawn with r = random.Random(42); r.randrange(count), see
    meta_corpus.py), one query and fetchone per id, all in one read transaction, the
    text returned as a Python str; the best of the passes over all N ids, N / seconds.
    The file was just written, so its pages are in the page cache (as for NusterDB's
    driver, which reads the same ids). Each get goes through the Python module: its
    per-call overhead is part of SQLite's figure here.
  - scan_docs_per_s: `SELECT id FROM docs WHERE json_extract(doc, '$.Section') = 'python'
    AND json_extract(doc, '$."Installed-Size"') > 1000`, all rows fetched; count /
    seconds of the best pass. scan_matches: the number of ids it returned, which must
    equal filter_matches of meta-corpus.info.json (counted in Python); if not, the
    script says so on stderr and exits 1 after printing its results.
 system "zstd-3-stream": bytes_per_doc = the size of `zstd -3` over the whole jsonl file
  as one stream / count, and file_bytes = that size: the limit.
 system "json-text": bytes_per_doc = the documents' JSON bytes (compact, UTF-8, no
  newline) / count, file_bytes = the jsonl file's size, and scan_matches = the
  reference count from meta_corpus.py.
"""
import argparse
import json
import os
import sqlite3
import sys
import time

import numpy as np

SCAN_SQL = ("SELECT id FROM docs WHERE json_extract(doc, '$.Section') = 'python' "
            "AND json_extract(doc, '$.\"Installed-Size\"') > 1000")


def emit(system, metric, value, unit, note=None):
    d = {"suite": "meta", "system": system, "dataset": "debian-packages", "metric": metric,
         "value": value, "unit": unit}
    if note:
        d["note"] = note
    print(json.dumps(d), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--passes", type=int, default=3)
    a = ap.parse_args()
    with open(os.path.join(a.out, "meta-corpus.info.json")) as f:
        info = json.load(f)
    count = info["count"]
    ids = [int(i) for i in np.load(os.path.join(a.out, "meta-get-ids.npy"))]
    with open(os.path.join(a.out, "meta-corpus.jsonl"), encoding="utf-8") as f:
        docs = [line.rstrip("\n") for line in f]
    if len(docs) != count:
        sys.exit("meta_sqlite.py: %d lines in meta-corpus.jsonl, info says %d" % (len(docs), count))
    if ids and not 0 <= min(ids) <= max(ids) < count:
        sys.exit("meta_sqlite.py: meta-get-ids.npy has ids outside 0..%d" % (count - 1))

    emit("json-text", "file_bytes", info["json_bytes"], "bytes", "meta-corpus.jsonl, one compact UTF-8 JSON "
         "document a line")
    emit("json-text", "bytes_per_doc", info["json_doc_bytes"] / count, "bytes",
         "JSON text of a document (no newline), mean over %d documents" % count)
    emit("json-text", "scan_matches", info["filter_matches"], "docs",
         "the reference: documents with Section = 'python' AND Installed-Size > 1000, counted in Python")
    zstd = info["zstd_3_stream_bytes"]
    emit("zstd-3-stream", "file_bytes", zstd, "bytes", "zstd -3 over the whole jsonl file as one stream (%s)"
         % info.get("zstd_version", "zstd"))
    emit("zstd-3-stream", "bytes_per_doc", zstd / count, "bytes",
         "the limit: zstd -3 over the whole jsonl file as one stream / %d documents (no random access)" % count)

    path = os.path.join(a.out, "meta.sqlite")
    for p in (path, path + "-journal", path + "-wal", path + "-shm"):
        if os.path.exists(p):
            os.remove(p)
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("CREATE TABLE docs(id INTEGER PRIMARY KEY, doc TEXT)")
    t0 = time.perf_counter()
    con.execute("BEGIN")
    con.executemany("INSERT INTO docs(id, doc) VALUES (?, ?)", enumerate(docs))
    con.execute("COMMIT")
    load = time.perf_counter() - t0
    size = os.path.getsize(path)
    page = con.execute("PRAGMA page_size").fetchone()[0]
    mode = con.execute("PRAGMA journal_mode").fetchone()[0]
    ver = "SQLite %s (python3 sqlite3 module)" % sqlite3.sqlite_version
    how = "%s, page size %d, journal %s, default synchronous; one transaction of %d inserts (%.2f s), " \
          "no VACUUM" % (ver, page, mode, count, load)
    emit("sqlite", "file_bytes", size, "bytes", "meta.sqlite after the load: " + how)
    emit("sqlite", "bytes_per_doc", size / count, "bytes", "file_bytes / %d documents" % count)

    best = float("inf")
    got = 0
    for _ in range(a.passes):
        con.execute("BEGIN")
        t0 = time.perf_counter()
        for i in ids:
            got += len(con.execute("SELECT doc FROM docs WHERE id=?", (i,)).fetchone()[0])
        best = min(best, time.perf_counter() - t0)
        con.execute("COMMIT")
    floor = float("inf")  # the module's own cost: the same calls on a query that reads no table
    for _ in range(a.passes):
        t0 = time.perf_counter()
        for i in ids:
            con.execute("SELECT ?", (i,)).fetchone()
        floor = min(floor, time.perf_counter() - t0)
    emit("sqlite", "get_per_s", len(ids) / best, "gets/s",
         "%d random ids of meta-get-ids.npy, one SELECT by rowid each through Python's sqlite3 (its call "
         "overhead included: the same calls on `SELECT ?`, no table, run at %.0f/s), one thread, warm cache, "
         "best of %d passes" % (len(ids), len(ids) / floor, a.passes))

    best = float("inf")
    res = None
    for _ in range(a.passes):
        t0 = time.perf_counter()
        res = con.execute(SCAN_SQL).fetchall()
        best = min(best, time.perf_counter() - t0)
    con.close()
    emit("sqlite", "scan_docs_per_s", count / best, "docs/s",
         "%d documents / seconds of the full-table json_extract filter scan (no index), one thread, warm cache, "
         "best of %d passes (%.3f s)" % (count, a.passes, best))
    ok = len(res) == info["filter_matches"]
    emit("sqlite", "scan_matches", len(res), "docs",
         "equals the reference %d" % info["filter_matches"] if ok else
         "MISMATCH: the reference (Python) counts %d" % info["filter_matches"])
    if not ok:
        print("meta_sqlite.py: SQLite's filter found %d documents, Python's %d" % (len(res), info["filter_matches"]),
              file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
