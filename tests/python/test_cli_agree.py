"""The module and nvf-tool on the same file agree: db.knn equals `nvf-tool search
--json`, with and without a filter, in a snapshot, on Flat and Hnsw; and a file the
tool builds reads the same through the module."""
import json

import numpy as np
import pytest

from nusterdb import DistanceMetric, NusterDB
from conftest import make_db, run_tool

DIM = 24


def tool_search(tool, path, Q, k, tmp_path, *extra):
    qf = tmp_path / "q.npy"
    np.save(qf, np.ascontiguousarray(Q, dtype="<f4"))
    out = run_tool(tool, "search", path, "--query-file", qf, "-k", k, "--json", *extra).stdout
    lines = [json.loads(line) for line in out.splitlines()]
    assert [r["query"] for r in lines] == list(range(len(Q)))
    return lines


def assert_agree(lines, ids, dist):
    for r, ri, rd in zip(lines, ids, dist):
        n = len(r["ids"])
        assert ri[:n].tolist() == r["ids"]
        np.testing.assert_allclose(rd[:n], np.array(r["distances"], dtype=np.float64), rtol=1e-6, atol=1e-6)
        assert (ri[n:] == -1).all() and np.isposinf(rd[n:]).all()


@pytest.mark.parametrize("index,metric", [("flat", "euclidean"), ("flat", "cosine"),
                                          ("hnsw", "euclidean"), ("hnsw", "inner_product")])
def test_knn_equals_tool_search(index, metric, tmp_path, tool):
    rng = np.random.default_rng(31)
    X = rng.standard_normal((2000, DIM)).astype(np.float32)
    Q = rng.standard_normal((40, DIM)).astype(np.float32)
    with make_db(tmp_path / "a.nvf", DIM, metric=metric, index=index) as db:
        db.add_items(X, metadata=[{"g": i % 4, "name": f"n{i}"} for i in range(2000)])
        ids, dist = db.knn(Q, k=10)
        fids, fdist = db.knn(Q, k=10, filter="g = 1 AND name STARTS WITH 'n1'")
        db.create_snapshot("s")
        for i in range(0, 2000, 3):
            db.delete(i)
        ids_after, dist_after = db.knn(Q, k=10)
        path = db.path
    assert_agree(tool_search(tool, path, Q, 10, tmp_path, "--snapshot", "s"), ids, dist)
    assert_agree(tool_search(tool, path, Q, 10, tmp_path, "--snapshot", "s", "--filter",
                             "g = 1 AND name STARTS WITH 'n1'"), fids, fdist)
    assert_agree(tool_search(tool, path, Q, 10, tmp_path), ids_after, dist_after)
    with NusterDB.open(path) as db:
        i2, d2 = db.knn(Q, k=10)
        np.testing.assert_array_equal(i2, ids_after)
        np.testing.assert_array_equal(d2, dist_after)
        if index == "hnsw":
            i3, d3 = db.knn(Q, k=10, ef=200)
            assert_agree(tool_search(tool, path, Q, 10, tmp_path, "--ef", 200), i3, d3)


def test_k_beyond_count_agrees(tmp_path, tool):
    rng = np.random.default_rng(32)
    X = rng.standard_normal((5, DIM)).astype(np.float32)
    with make_db(tmp_path / "small.nvf", DIM) as db:
        db.add_items(X, ids=[3, 1, 4, 15, 9])
        ids, dist = db.knn(X[:2], k=8)
        path = db.path
    lines = tool_search(tool, path, X[:2], 8, tmp_path)
    assert all(len(r["ids"]) == 5 for r in lines)
    assert_agree(lines, ids, dist)


def test_tool_built_file_reads_the_same(tmp_path, tool):
    rng = np.random.default_rng(33)
    X = rng.standard_normal((300, DIM)).astype(np.float32)
    path = tmp_path / "t.nvf"
    run_tool(tool, "create", path, "--dim", DIM, "--index", "hnsw", "--metric", "cosine", "--M", 8)
    np.save(tmp_path / "x.npy", X)
    meta = tmp_path / "m.jsonl"
    meta.write_text("".join(json.dumps({"i": i}) + "\n" for i in range(300)))
    run_tool(tool, "import", path, tmp_path / "x.npy", "--meta", meta)
    run_tool(tool, "tag", "add", path, 7, "seven")
    with NusterDB.open(str(path)) as db:
        assert len(db) == 300
        s = db.stats()
        assert s.distance_metric == DistanceMetric.Cosine and s.config.hnsw_max_connections == 8
        for i in (0, 7, 299):
            assert db.get(i).to_list() == X[i].tolist()
            assert db.get_metadata(i).to_dict() == {"i": i}
        assert db.get_metadata(7).tags() == ["seven"]
        ids, dist = db.knn(X[:10], k=5)
    assert_agree(tool_search(tool, str(path), X[:10], 5, tmp_path), ids, dist)


def test_module_writes_are_visible_to_the_tool(tmp_path, tool):
    with make_db(tmp_path / "w.nvf", 4) as db:
        db.add(42, [1.0, 2.0, 3.0, 4.0], {"x": 1})
        db.add(43, [0.0, 0.0, 0.0, 1.0])
        db.delete(43)
        db.snapshot("snap", {"who": "python"})
        path = db.path
    rec = json.loads(run_tool(tool, "get", path, 42).stdout)
    assert rec["vector"] == [1.0, 2.0, 3.0, 4.0] and rec["meta"] == {"x": 1}
    assert json.loads(run_tool(tool, "info", "--json", path).stdout)["count"] == 1
    snaps = json.loads(run_tool(tool, "snapshot", "list", "--json", path).stdout)
    assert [s["name"] for s in snaps] == ["snap"] and snaps[0]["doc"] == {"who": "python"}
    run_tool(tool, "check", path)
