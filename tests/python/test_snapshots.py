"""Snapshots, diff, restore, compact, backup and stats against a model: random writes
applied to the database and to a dict, named states kept as copies of the dict."""
import copy
import os

import numpy as np
import pytest

import nusterdb
from nusterdb import DatabaseStats, Metadata, NusterDB
from conftest import make_db, run_tool

DIM = 8


def state_of(db, ids):
    out = {}
    for i in ids:
        v = db.get(i)
        if v is not None:
            m = db.get_metadata(i)
            out[i] = (tuple(v.to_list()), m.to_dict(), tuple(m.tags()))
    return out


def model_diff(a, b):
    added = sorted(set(b) - set(a))
    removed = sorted(set(a) - set(b))
    common = sorted(set(a) & set(b))
    vec = [i for i in common if a[i][0] != b[i][0]]
    doc = [i for i in common if a[i][1:] != b[i][1:]]
    return {"added": added, "removed": removed, "vector_changed": vec, "doc_changed": doc}


def random_writes(db, model, rng, n, idspace=80):
    for _ in range(n):
        op = int(rng.integers(0, 4))
        i = int(rng.integers(0, idspace))
        v = rng.standard_normal(DIM).astype(np.float32)
        if op == 0:
            doc = {"w": int(rng.integers(0, 1000))}
            db.upsert(i, v, doc)
            model[i] = (tuple(v.tolist()), doc, ())
        elif op == 1 and i in model:
            db.update(i, v)
            model[i] = (tuple(v.tolist()),) + model[i][1:]
        elif op == 2 and i in model:
            doc = {"m": int(rng.integers(0, 1000))}
            tags = ("t%d" % int(rng.integers(0, 3)),)
            db.update_metadata(i, Metadata(doc, tags=list(tags)))
            model[i] = (model[i][0], doc, tags)
        else:
            assert db.delete(i) is (i in model)
            model.pop(i, None)


def test_snapshots_against_model(tmp_path, rng, tool):
    ids = range(80)
    with make_db(tmp_path / "s.nvf", DIM) as db:
        model, states, order = {}, {}, []
        for round_ in range(6):
            random_writes(db, model, rng, 40)
            name = f"s{round_}"
            if round_ % 2:
                assert db.create_snapshot(name) == name
            else:
                assert db.snapshot(name, {"round": round_, "by": "test"}) == name
            states[name] = copy.deepcopy(model)
            order.append(name)
            assert db.list_snapshots() == order
        random_writes(db, model, rng, 40)
        assert state_of(db, ids) == model

        infos = db.snapshots()
        assert [s["name"] for s in infos] == order
        for s in infos:
            assert set(s) >= {"name", "txnid", "created_at", "records", "metadata", "bytes_held"}
            assert s["records"] == len(states[s["name"]])
            assert isinstance(s["bytes_held"], int) and s["bytes_held"] >= 0
            r = int(s["name"][1:])
            if r % 2 == 0:
                assert s["metadata"] == {"round": r, "by": "test"}
        txnids = [s["txnid"] for s in infos]
        assert txnids == sorted(txnids) and len(set(txnids)) == len(txnids)

        # every snapshot's state through a snapshot handle
        for name in order:
            with NusterDB(db.path, snapshot=name) as at:
                assert state_of(at, ids) == states[name]
                assert len(at) == len(states[name])
                with pytest.raises(nusterdb.ReadOnlyError):
                    at.add(1000, np.ones(DIM, np.float32))
                with pytest.raises(nusterdb.ReadOnlyError):
                    at.delete(next(iter(states[name]), 0))
            with NusterDB.open(db.path, snapshot=name) as at:
                assert len(at) == len(states[name])

        # diffs both ways, and against the current state
        for a in order:
            assert db.diff(a) == model_diff(states[a], model)
            assert db.diff(a, None) == model_diff(states[a], model)
            for b in order:
                assert db.diff(a, b) == model_diff(states[a], states[b]), (a, b)

        # restore: the state comes back, the snapshot stays
        db.restore_snapshot("s2")
        model = copy.deepcopy(states["s2"])
        assert state_of(db, ids) == model and db.count() == len(model)
        assert db.list_snapshots() == order
        assert db.diff("s2") == model_diff(model, model)
        random_writes(db, model, rng, 30)
        assert state_of(db, ids) == model

        # delete
        db.delete_snapshot("s1")
        order.remove("s1")
        assert db.list_snapshots() == order
        with pytest.raises(nusterdb.NotFoundError):
            db.delete_snapshot("s1")
        with pytest.raises(nusterdb.NotFoundError):
            db.restore_snapshot("s1")
        with pytest.raises(nusterdb.NotFoundError):
            db.diff("s1")
        with pytest.raises(nusterdb.NotFoundError):
            NusterDB(db.path, snapshot="s1")
        with pytest.raises(nusterdb.ExistsError):
            db.create_snapshot("s0")
        with pytest.raises(nusterdb.ExistsError):
            db.snapshot("s0", {"again": True})

        # compact keeps everything, and this handle goes on working
        db.compact()
        assert state_of(db, ids) == model
        assert db.list_snapshots() == order
        for name in order:
            with NusterDB(db.path, snapshot=name) as at:
                assert state_of(at, ids) == states[name]
        random_writes(db, model, rng, 20)
        assert state_of(db, ids) == model
        path = db.path
    run_tool(tool, "check", path)
    with NusterDB.open(path) as db:
        assert state_of(db, ids) == model


def test_generated_snapshot_names(flatdb):
    flatdb.add(1, np.ones(8, np.float32))
    a = flatdb.create_snapshot()
    b = flatdb.create_snapshot(None)
    assert isinstance(a, str) and isinstance(b, str) and a != b
    assert flatdb.list_snapshots() == [a, b]


def test_snapshot_metadata_as_metadata_object(flatdb):
    flatdb.snapshot("m", Metadata({"note": "nightly", "n": 3}))
    flatdb.snapshot("plain")
    infos = {s["name"]: s for s in flatdb.snapshots()}
    assert infos["m"]["metadata"] == {"note": "nightly", "n": 3}
    assert infos["plain"]["metadata"] in (None, {})


def test_bad_snapshot_names(flatdb):
    for bad in ("", "a/b", ".", "..", "x\ny", "n" * 256):
        with pytest.raises(nusterdb.InvalidArgumentError):
            flatdb.create_snapshot(bad)
    assert flatdb.list_snapshots() == []


def test_snapshot_handle_search(tmp_path, rng):
    X = rng.standard_normal((100, DIM)).astype(np.float32)
    with make_db(tmp_path / "sh.nvf", DIM) as db:
        db.add_items(X, ids=np.arange(100))
        db.create_snapshot("full")
        for i in range(50):
            db.delete(i)
        q = X[3]
        now = db.search(q, k=5)
        assert all(i >= 50 for i, _ in now)
        with NusterDB(db.path, snapshot="full") as at:
            assert at.search(q, k=1)[0][0] == 3
            ids, _ = at.knn(X[:4], k=1)
            assert ids[:, 0].tolist() == [0, 1, 2, 3]
            assert at.stats().read_only is True


def test_backup(tmp_path, rng, tool):
    with make_db(tmp_path / "b.nvf", DIM) as db:
        model = {}
        random_writes(db, model, rng, 60)
        db.create_snapshot("s")
        snap = copy.deepcopy(model)
        random_writes(db, model, rng, 30)
        dest = tmp_path / "copy.nvf"
        assert db.backup(str(dest)) is None
        with pytest.raises(nusterdb.ExistsError):
            db.backup(str(dest))
        random_writes(db, model, rng, 5)  # the source goes on
    run_tool(tool, "check", dest)
    with NusterDB.open(str(dest)) as b:
        assert b.list_snapshots() == ["s"]
        with NusterDB(str(dest), snapshot="s") as at:
            assert state_of(at, range(80)) == snap


def test_backup_from_read_only_handle(tmp_path, rng):
    with make_db(tmp_path / "r.nvf", DIM) as db:
        db.add_items(rng.standard_normal((10, DIM)).astype(np.float32))
        path = db.path
    with NusterDB(path, read_only=True) as ro:
        ro.backup(str(tmp_path / "r2.nvf"))
    with NusterDB.open(str(tmp_path / "r2.nvf")) as b:
        assert len(b) == 10


def test_compact_shrinks_after_deletes(tmp_path, rng, tool):
    X = rng.standard_normal((3000, DIM)).astype(np.float32)
    with make_db(tmp_path / "c.nvf", DIM, index="hnsw") as db:
        db.add_items(X, ids=np.arange(3000), metadata=[{"i": i} for i in range(3000)])
        for i in range(0, 3000, 2):
            db.delete(i)
        q = X[:20]
        before = db.knn(q, k=5)
        size = os.path.getsize(db.path)
        db.compact()
        assert os.path.getsize(db.path) < size
        after = db.knn(q, k=5)
        np.testing.assert_array_equal(before[0], after[0])
        assert db.count() == 1500
        assert db.get_metadata(11).to_dict() == {"i": 11}
        path = db.path
    run_tool(tool, "check", path)


def test_compact_retrain_dict(tmp_path, rng):
    cfg = nusterdb.DatabaseConfig(dim=4, index_type="flat", compression="zstd-dict")
    with NusterDB(str(tmp_path / "z.nvf"), cfg) as db:
        docs = [{"title": f"item number {i}", "kind": ["a", "b", "c"][i % 3]} for i in range(1200)]
        db.add_items(rng.standard_normal((1200, 4)).astype(np.float32), metadata=docs)
        db.compact(retrain_dict=True)
        assert db.get_metadata(5).to_dict() == docs[5]


def test_stats_against_model(tmp_path, rng, tool):
    with make_db(tmp_path / "st.nvf", DIM, metric="cosine", index="hnsw") as db:
        X = rng.standard_normal((400, DIM)).astype(np.float32)
        db.add_items(X[:100], ids=np.arange(100), metadata=[{"i": i} for i in range(100)])
        db.add_items(X[100:], ids=np.arange(100, 400))  # records without a document
        db.delete(0)
        db.create_snapshot("a")
        s = db.stats()
        assert isinstance(s, DatabaseStats)
        assert s.vector_count == 399 == db.count()
        assert s.dimension == DIM
        assert s.distance_metric == nusterdb.DistanceMetric.Cosine
        assert s.index_type == nusterdb.IndexType.Hnsw
        assert s.file_size == os.path.getsize(db.path)
        assert s.page_size == 4096 and 0 < s.pages * s.page_size <= s.file_size
        assert s.snapshot_count == 1
        assert s.document_count == 99
        assert s.document_bytes > 0
        assert s.compression == getattr(nusterdb.Compression, "None")
        assert os.path.samefile(s.path, db.path)
        assert s.read_only is False
        assert isinstance(s.simd_level, str) and s.simd_level
        assert isinstance(s.txnid, int) and s.txnid > 0
        assert s.config.dim == DIM
        # 400 nodes: quantize auto has not measured yet (it does from 2,000 on), so the
        # file has no codes yet and the graph walks on float32; nvf-tool info says the same.
        assert s.walk == "float"
        assert s.calibration == {"nodes": 0, "recall_codes": 0.0, "recall_float": 0.0}
        info = __import__("json").loads(run_tool(tool, "info", "--json", db.path).stdout)
        assert info["hnsw"]["walk"] == s.walk and info["hnsw"]["calibration"] == s.calibration
        d = s.to_dict()
        assert d["vector_count"] == 399 and d["dimension"] == DIM
        t0 = s.txnid
        db.add(10_000, np.ones(DIM, np.float32))
        s2 = db.stats()
        assert s2.txnid > t0 and s2.vector_count == 400

        dd = db.stats(detailed=True)
        tool_stats = __import__("json").loads(run_tool(tool, "stats", "--json", db.path).stdout)
        assert sum(dd.pages_by_kind.values()) == tool_stats["pages_total"]
        assert sorted(dd.pages_by_kind.values()) == sorted(tool_stats["pages"].values())
        assert list(dd.hnsw_levels) == tool_stats["hnsw_nodes_per_level"]
        assert isinstance(dd.free_pages, int)
        assert list(dd.degree_histogram) == tool_stats["hnsw_degree0"]


def test_snapshot_times(flatdb):
    import time
    t0 = time.time()
    flatdb.create_snapshot("t")
    s = flatdb.snapshots()[0]
    assert isinstance(s["created_at"], int) and isinstance(s["created_at_us"], int)
    assert s["created_at_us"] // 1_000_000 == s["created_at"]
    assert int(t0) - 1 <= s["created_at"] <= time.time() + 1


def test_backup_destination_maps_like_paths(tmp_path, rng):
    with make_db(tmp_path / "src.nvf", DIM) as db:
        db.add_items(rng.standard_normal((20, DIM)).astype(np.float32))
        db.backup(str(tmp_path / "bk"))  # a directory path: bk/db.nvf
        assert (tmp_path / "bk" / "db.nvf").is_file()
        with pytest.raises(nusterdb.ExistsError):
            db.backup(str(tmp_path / "bk"))
        other = tmp_path / "other"
        other.mkdir()
        (other / "x.txt").write_text("keep")
        with pytest.raises(nusterdb.NotADatabaseError):
            db.backup(str(other))
        assert os.listdir(other) == ["x.txt"]
    with NusterDB(str(tmp_path / "bk")) as b:
        assert len(b) == 20


def test_detailed_stats_fields(flatdb):
    s = flatdb.stats()
    assert s.pages_by_kind is None and s.free_pages is None
    assert s.hnsw_levels is None and s.degree_histogram is None
    assert s.walk is None and s.calibration is None  # a flat collection does not walk
    d = flatdb.stats(detailed=True)
    assert set(d.pages_by_kind) == {"header", "system", "vectors", "ids", "graph", "documents",
                                    "fields", "free", "pending"}
    assert sum(d.pages_by_kind.values()) == d.pages
    assert d.to_dict()["pages_by_kind"] == d.pages_by_kind
