"""Leaks: each call repeated many times keeps Python allocations (tracemalloc) and the
process's resident size bounded, on success and on error paths; the reference counts of
the arguments are unchanged after each call."""
import gc
import os
import sys
import tracemalloc

import numpy as np
import pytest

import nusterdb
from nusterdb import DistanceMetric, Metadata, Vector
from conftest import make_db

DIM = 16


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    rng = np.random.default_rng(8)
    d = make_db(tmp_path_factory.mktemp("leak") / "l.nvf", DIM, index="hnsw", durability="nosync")
    d.add_items(rng.standard_normal((500, DIM)).astype(np.float32), ids=np.arange(500),
                metadata=[{"i": i, "s": "x" * (i % 20)} for i in range(500)])
    yield d
    d.close()


def calls(db):
    rng = np.random.default_rng(9)
    q = rng.standard_normal(DIM).astype(np.float32)
    ql = q.tolist()
    Q = rng.standard_normal((8, DIM)).astype(np.float32)
    Q64 = Q.astype(np.float64)
    doc = {"a": [1, 2, {"b": "c"}], "d": 1.5}
    meta = Metadata(doc, tags=["t"])
    v = Vector(q)
    w = Vector(Q[0])
    nan = q.copy()
    nan[0] = np.nan

    def expect(exc, f):
        def g():
            try:
                f()
            except exc:
                return
            raise AssertionError("no exception")
        return g

    def write_cycle():
        db.add(10_000, q, doc)
        db.update(10_000, Q[1])
        db.update_metadata(10_000, meta)
        db.upsert(10_000, ql, meta)
        assert db.delete(10_000)

    def items_cycle():
        ids = db.add_items(Q, ids=np.arange(20_000, 20_008), metadata=[doc] * 8)
        for i in ids:
            db.delete(int(i))

    return {
        "search": lambda: db.search(q, k=10),
        "search_list": lambda: db.search(ql, k=5, ef_search=50),
        "search_filter": lambda: db.search(q, k=5, filter="i < 100 AND s STARTS WITH 'x'"),
        "range_search": lambda: db.range_search(q, 3.0),
        "knn": lambda: db.knn(Q, k=5),
        "knn_f64": lambda: db.knn(Q64, k=5, filter="i >= 3"),
        "get": lambda: (db.get(7), db.get(99_999), db[8], 9 in db, len(db)),
        "get_metadata": lambda: db.get_metadata(7).to_dict(),
        "stats": lambda: db.stats(detailed=True).to_dict(),
        "write_cycle": write_cycle,
        "items_cycle": items_cycle,
        "vector_ops": lambda: (v + w, v * 2.0, v.dot(w), v.normalize(), v.distance(w, "cosine"),
                               v[2:5], np.asarray(v).sum(), v.to_list(), repr(v)),
        "metric": lambda: (DistanceMetric.cosine().distance(v, w), DistanceMetric.from_name("l2")),
        "metadata": lambda: (Metadata(doc, tags=["a", "b"]).to_dict(), dict(meta), meta.tags()),
        "err_dim": expect(nusterdb.InvalidArgumentError, lambda: db.search([1.0, 2.0])),
        "err_nan": expect(nusterdb.InvalidArgumentError, lambda: db.add(30_000, nan, doc)),
        "err_filter": expect(nusterdb.FilterError, lambda: db.search(q, filter="i >")),
        "err_exists": expect(nusterdb.ExistsError, lambda: db.add(7, q, doc)),
        "err_missing": expect(nusterdb.NotFoundError, lambda: db.update(99_999, q)),
        "err_type": expect(TypeError, lambda: db.add(30_000, q, {"s": {1}})),
        "err_knn": expect(nusterdb.InvalidArgumentError, lambda: db.knn(np.ones((2, 3, DIM), np.float32))),
        "err_items": expect(nusterdb.InvalidArgumentError, lambda: db.add_items(np.stack([q, nan]))),
    }


NAMES = [
    "search", "search_list", "search_filter", "range_search", "knn", "knn_f64", "get",
    "get_metadata", "stats", "write_cycle", "items_cycle", "vector_ops", "metric", "metadata",
    "err_dim", "err_nan", "err_filter", "err_exists", "err_missing", "err_type", "err_knn",
    "err_items"]


@pytest.mark.parametrize("name", NAMES)
def test_repeated_calls_do_not_grow(name, db):
    f = calls(db)[name]
    for _ in range(50):  # warm-up: caches, free lists, the file's growth
        f()
    gc.collect()
    tracemalloc.start()
    try:
        rss0 = rss_bytes()
        snap0 = tracemalloc.take_snapshot()
        reps = 500 if "cycle" in name else 1500
        for _ in range(reps):
            f()
        gc.collect()
        snap1 = tracemalloc.take_snapshot()
        rss1 = rss_bytes()
    finally:
        tracemalloc.stop()
    grown = sum(s.size_diff for s in snap1.compare_to(snap0, "filename"))
    # a leak of one small object (>= 24 bytes) per call is >= 12 KiB; allow a little noise
    assert grown < 10 * 1024, [str(s) for s in snap1.compare_to(snap0, "lineno")[:5]]
    # Under AddressSanitizer (LD_PRELOAD) freed memory sits in its quarantine: RSS says nothing.
    if "libasan" not in os.environ.get("LD_PRELOAD", ""):
        # C allocations (libnvf's malloc) are invisible to tracemalloc: a leak of a few
        # KiB per call (a result buffer, a document) shows here.
        assert rss1 - rss0 < 4 * 1024 * 1024, (rss0, rss1)


def test_argument_reference_counts_unchanged(db):
    rng = np.random.default_rng(10)
    q = rng.standard_normal(DIM).astype(np.float32)
    ql = q.tolist()
    Q = rng.standard_normal((4, DIM)).astype(np.float32)
    QF = np.asfortranarray(Q.astype(np.float64))
    doc = {"a": [1, "x"], "b": {"c": None}}
    meta = Metadata({"m": 1}, tags=["t"])
    flt = "i < 250"
    ids = np.arange(40_000, 40_004)
    mdl = [doc, meta, {}, {"z": 1}]
    bad = {"s": {1, 2}}
    v = Vector(q)
    args = [q, ql, Q, QF, doc, meta, flt, ids, mdl, bad, v, doc["a"], doc["b"]]

    def counts():
        return [sys.getrefcount(a) for a in args]

    before = counts()
    for _ in range(3):
        db.search(q, k=3)
        db.search(ql, k=3, filter=flt)
        db.search(v, k=3)
        db.range_search(ql, 2.0, filter=flt)
        db.knn(Q, k=3, filter=flt)
        db.knn(QF, k=3)
        db.knn_query(Q, k=2)
        db.add(50_000, q, doc)
        db.update_metadata(50_000, meta)
        db.upsert(50_000, v, doc)
        db.update(50_000, ql)
        db.delete(50_000)
        db.add_items(Q, ids=ids, metadata=mdl)
        for i in ids:
            db.delete(int(i))
        db.batch_insert([q, ql, v], [doc, meta, {}])
        for call in (lambda: db.add(50_001, q, bad), lambda: db.add_items(Q, ids=ids, metadata=[bad] * 4),
                     lambda: db.search(q, filter="i >"), lambda: db.add(7, ql, doc)):
            try:
                call()
            except (TypeError, ValueError):
                pass
        v.dot(v)
        v.distance(q, "euclidean")
        Metadata(doc)
        Metadata.from_dict(doc)
    gc.collect()
    assert counts() == before
