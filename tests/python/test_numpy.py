"""The numpy path: add_items and knn/knn_query, their shapes, dtypes and padding, every
input layout giving the same results, arrays over the extension's own memory, and the
buffer objects returned when numpy is not importable."""
import array
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import nusterdb
from nusterdb import Metadata
from conftest import assert_knn_matches, dump, make_db, model_distances

DIM = 12


@pytest.fixture
def data(rng):
    return rng.standard_normal((500, DIM)).astype(np.float32)


def misaligned(X):
    """X's values in a C-contiguous float32 array at an odd byte address (Dask hands
    such views out): read in place, libnvf would load floats from it unaligned (UBSan
    in the sanitizer build stops on that)."""
    raw = np.zeros(X.nbytes + 1, dtype=np.uint8)
    M = raw[1:].view(np.float32).reshape(X.shape)
    M[...] = X
    assert M.ctypes.data % 4 != 0 and M.flags.c_contiguous
    return M


def layouts(X):
    """The same values as C float32, float64, Fortran order, strided views and ints."""
    F = np.asfortranarray(X)
    wide = np.zeros((X.shape[0] * 2, X.shape[1] * 3), dtype=np.float32)
    wide[::2, ::3] = X
    return {
        "misaligned": misaligned(X),
        "c32": np.ascontiguousarray(X),
        "f64": X.astype(np.float64),
        "fortran": F,
        "strided": wide[::2, ::3],
        "reversed": X[::-1][::-1],
        "f64_fortran": np.asfortranarray(X.astype(np.float64)),
    }


# ---- add_items ----

def test_add_items_returns_int64_ids(tmp_path, data):
    with make_db(tmp_path / "a.nvf", DIM) as db:
        ids = db.add_items(data)
        assert isinstance(ids, np.ndarray) and ids.dtype == np.int64 and ids.shape == (500,)
        assert len(set(ids.tolist())) == 500 and len(db) == 500
        for i, x in zip(ids[::37], data[::37]):
            assert db.get(int(i)).to_list() == x.tolist()
        one = db.add_items(data[0])  # shape (dim,)
        assert one.shape == (1,) and int(one[0]) not in set(ids.tolist())
        assert len(db) == 501


@pytest.mark.parametrize("layout", ["c32", "f64", "fortran", "strided", "reversed", "f64_fortran", "misaligned"])
def test_add_items_layouts_store_the_same_values(layout, tmp_path, data):
    X = layouts(data)[layout]
    with make_db(tmp_path / f"{layout}.nvf", DIM) as db:
        ids = db.add_items(X, ids=np.arange(1000, 1500))
        assert ids.tolist() == list(range(1000, 1500))
        for i in range(0, 500, 23):
            assert db.get(1000 + i).to_list() == data[i].tolist()


def test_add_items_integer_input(tmp_path, rng):
    X = rng.integers(-5, 5, size=(40, DIM))
    for dt in (np.int32, np.int64, np.uint8):
        with make_db(tmp_path / f"{np.dtype(dt).name}.nvf", DIM) as db:
            Xt = np.abs(X).astype(dt) if dt == np.uint8 else X.astype(dt)
            db.add_items(Xt, ids=np.arange(40))
            for i in range(40):
                assert db.get(i).to_list() == Xt[i].astype(np.float32).tolist()


def test_add_items_array_array_and_memoryview(tmp_path, data):
    flat = array.array("f", data[:10].ravel().tolist())
    m2 = memoryview(flat).cast("B").cast("f", (10, DIM))
    with make_db(tmp_path / "mv.nvf", DIM) as db:
        ids = db.add_items(m2, ids=list(range(10)))
        assert ids.tolist() == list(range(10))
        one = db.add_items(array.array("f", data[10].tolist()), ids=[10])
        assert one.tolist() == [10]
        for i in range(11):
            assert db.get(i).to_list() == data[i].tolist()


def test_add_items_ids_and_metadata(tmp_path, data):
    with make_db(tmp_path / "m.nvf", DIM) as db:
        ids = np.array([5, 9, 2**40, 7], dtype=np.uint64)
        md = [{"a": 1}, Metadata({"b": 2}, tags=["x"]), {}, {"d": [1, 2]}]
        out = db.add_items(data[:4], ids=ids, metadata=md)
        assert out.tolist() == [5, 9, 2**40, 7] and out.dtype == np.int64
        assert db.get_metadata(5).to_dict() == {"a": 1}
        assert db.get_metadata(9).to_dict() == {"b": 2} and db.get_metadata(9).tags() == ["x"]
        assert db.get_metadata(2**40).to_dict() == {}
        assert db.get_metadata(7).to_dict() == {"d": [1, 2]}
        out = db.add_items(data[4:6], ids=[100, 101])
        assert out.tolist() == [100, 101]


def test_add_items_is_all_or_nothing(tmp_path, data):
    with make_db(tmp_path / "n.nvf", DIM) as db:
        db.add_items(data[:50], ids=np.arange(50))
        snapshot_ids = list(range(0, 60))
        before = dump(db, snapshot_ids)
        bad_nan = data[50:60].copy()
        bad_nan[7, 3] = np.nan
        cases = [
            (nusterdb.InvalidArgumentError, lambda: db.add_items(bad_nan)),
            (nusterdb.InvalidArgumentError, lambda: db.add_items(np.ones((5, DIM + 1), np.float32))),
            (nusterdb.InvalidArgumentError, lambda: db.add_items(np.ones((2, 5, DIM), np.float32))),
            (nusterdb.InvalidArgumentError, lambda: db.add_items(np.ones((1, 1, 1, DIM), np.float32))),
            (nusterdb.ExistsError, lambda: db.add_items(data[50:60], ids=np.arange(45, 55))),
            (nusterdb.InvalidArgumentError, lambda: db.add_items(data[50:60], ids=np.arange(50, 59))),
            (nusterdb.InvalidArgumentError,
             lambda: db.add_items(data[50:60], ids=np.arange(50, 60), metadata=[{}] * 9)),
            (TypeError,
             lambda: db.add_items(data[50:60], ids=np.arange(50, 60), metadata=[{}] * 9 + [{"s": {1}}])),
            (nusterdb.InvalidArgumentError, lambda: db.add_items(data[50:60], ids=np.full(10, -1))),
        ]
        for n, (exc, f) in enumerate(cases):
            with pytest.raises(exc):
                f()
            assert dump(db, snapshot_ids) == before, f"case {n} changed the database"
        # duplicate ids inside one call
        with pytest.raises(nusterdb.ExistsError):
            db.add_items(data[50:52], ids=[70, 70])
        assert 70 not in db and len(db) == 50


# ---- knn ----

@pytest.fixture
def flat(tmp_path, data):
    db = make_db(tmp_path / "k.nvf", DIM)
    db.add_items(data, ids=np.arange(500) * 2)
    yield db
    db.close()


def test_knn_shapes_dtypes_and_exactness(flat, data, rng):
    Q = rng.standard_normal((30, DIM)).astype(np.float32)
    ids, dist = flat.knn(Q, k=7)
    assert isinstance(ids, np.ndarray) and isinstance(dist, np.ndarray)
    assert ids.shape == (30, 7) and dist.shape == (30, 7)
    assert ids.dtype == np.int64 and dist.dtype == np.float32
    assert (ids >= 0).all() and np.isfinite(dist).all()
    for q, row_i, row_d in zip(Q, ids, dist):
        assert_knn_matches("euclidean", data, np.arange(500) * 2, q,
                           list(zip(row_i.tolist(), row_d.tolist())), 7)
    i1, d1 = flat.knn(Q[0], k=3)
    assert i1.shape == (1, 3) and d1.shape == (1, 3)
    i0, _ = flat.knn(Q)
    assert i0.shape == (30, 1)


@pytest.mark.parametrize("metric", ["euclidean", "cosine", "inner_product", "manhattan"])
def test_flat_knn_rows_equal_single_searches(metric, tmp_path, rng):
    """docs/METRICS.md: batch exact search gives single searches' results up to float
    rounding: a distance may differ in its last bit, and two records that close may
    swap places. Nothing else may differ."""
    X = rng.standard_normal((500, DIM)).astype(np.float32)
    Q = rng.standard_normal((30, DIM)).astype(np.float32)
    with make_db(tmp_path / "eq.nvf", DIM, metric=metric) as db:
        db.add_items(X)
        ids, dist = db.knn(Q, k=7)
        for j, q in enumerate(Q):
            single = db.search(q, k=7)
            s_ids = [i for i, _ in single]
            s_d = np.array([d for _, d in single], dtype=np.float32)
            # within a few float32 ulps of each other
            np.testing.assert_allclose(dist[j], s_d, rtol=4e-7, atol=1e-6)
            for p, (a, b) in enumerate(zip(ids[j].tolist(), s_ids)):
                if a != b:  # only a swap between near-equal distances
                    assert b in ids[j].tolist() and abs(float(s_d[p]) - float(dist[j][p])) <= 1e-5 * (1 + abs(float(s_d[p]))), (j, p, a, b)


@pytest.mark.parametrize("layout", ["f64", "fortran", "strided", "reversed", "f64_fortran", "misaligned"])
def test_knn_layouts_agree(layout, flat, rng):
    Q = rng.standard_normal((25, DIM)).astype(np.float32)
    want_i, want_d = flat.knn(Q, k=5)
    got_i, got_d = flat.knn(layouts(Q)[layout], k=5)
    np.testing.assert_array_equal(got_i, want_i)
    np.testing.assert_array_equal(got_d, want_d)


def test_knn_query_hnswlib_spelling(flat, rng):
    Q = rng.standard_normal((10, DIM)).astype(np.float32)
    a = flat.knn(Q, k=4)
    b = flat.knn_query(Q, k=4)
    c = flat.knn_query(Q, k=4, num_threads=-1)
    d = flat.knn_query(Q, 4, 1)
    for x in (b, c, d):
        np.testing.assert_array_equal(x[0], a[0])
        np.testing.assert_array_equal(x[1], a[1])


def test_knn_threads_agree(tmp_path, rng):
    X = rng.standard_normal((1500, DIM)).astype(np.float32)
    Q = rng.standard_normal((200, DIM)).astype(np.float32)
    with make_db(tmp_path / "t.nvf", DIM, index="hnsw") as db:
        db.add_items(X)
        a = db.knn(Q, k=10, threads=1)
        for t in (0, 2, 3):
            b = db.knn(Q, k=10, threads=t)
            np.testing.assert_array_equal(a[0], b[0])
            np.testing.assert_array_equal(a[1], b[1])
        c = db.knn(Q, k=10, ef=300)
        assert c[0].shape == (200, 10)
        # one knn row equals one search
        for r in (0, 99, 199):
            assert db.search(Q[r], k=10) == list(zip(a[0][r].tolist(), a[1][r].tolist()))
            assert db.search(Q[r], k=10, ef_search=300) == list(zip(c[0][r].tolist(), c[1][r].tolist()))


def test_padding_only_when_fewer_than_k(tmp_path, rng):
    X = rng.standard_normal((6, DIM)).astype(np.float32)
    Q = rng.standard_normal((3, DIM)).astype(np.float32)
    for index in ("flat", "hnsw"):
        with make_db(tmp_path / f"p{index}.nvf", DIM, index=index) as db:
            ids, dist = db.knn(Q, k=4)  # empty collection
            assert (ids == -1).all() and np.isposinf(dist).all()
            db.add_items(X, metadata=[{"g": i % 2} for i in range(6)])
            ids, dist = db.knn(Q, k=10)
            assert ids.shape == (3, 10)
            assert (ids[:, :6] >= 0).all() and (ids[:, 6:] == -1).all()
            assert np.isfinite(dist[:, :6]).all() and np.isposinf(dist[:, 6:]).all()
            for q, row in zip(Q, ids):
                assert sorted(row[:6].tolist()) == list(range(6))
            ids, dist = db.knn(Q, k=6)
            assert (ids >= 0).all() and np.isfinite(dist).all()
            ids, dist = db.knn(Q, k=5, filter="g = 1")
            assert (ids[:, 3:] == -1).all() and np.isposinf(dist[:, 3:]).all()
            assert all(sorted(r[:3].tolist()) == [1, 3, 5] for r in ids)


def test_knn_with_filter_is_exact_on_flat(tmp_path, data, rng):
    with make_db(tmp_path / "f.nvf", DIM) as db:
        db.add_items(data, metadata=[{"m": i % 5} for i in range(500)])
        Q = rng.standard_normal((10, DIM)).astype(np.float32)
        ids, dist = db.knn(Q, k=8, filter="m = 2")
        keep = np.arange(500) % 5 == 2
        for q, ri, rd in zip(Q, ids, dist):
            assert_knn_matches("euclidean", data[keep], np.arange(500)[keep], q,
                               list(zip(ri.tolist(), rd.tolist())), 8)
        with pytest.raises(nusterdb.FilterError):
            db.knn(Q, k=3, filter="m ==")


def test_knn_bad_input(flat, rng):
    ids = list(range(0, 1000, 2))
    before = dump(flat, ids[:20])
    for exc, f in [
        (nusterdb.InvalidArgumentError, lambda: flat.knn(np.ones((2, DIM + 1), np.float32))),
        (nusterdb.InvalidArgumentError, lambda: flat.knn(np.ones((2, 3, DIM), np.float32))),
        (nusterdb.InvalidArgumentError, lambda: flat.knn(np.ones((2, DIM), np.float32), k=0)),
        (nusterdb.InvalidArgumentError, lambda: flat.knn(np.ones((2, DIM), np.float32), k=-1)),
        # Past NVF_MAX_K (2^24): refused before the (n, k) arrays are allocated.
        (nusterdb.InvalidArgumentError, lambda: flat.knn(np.ones((2, DIM), np.float32), k=(1 << 24) + 1)),
        (nusterdb.InvalidArgumentError, lambda: flat.knn(np.full((2, DIM), np.nan, np.float32))),
        (TypeError, lambda: flat.knn("not an array")),
    ]:
        with pytest.raises(exc):
            f()
    assert dump(flat, ids[:20]) == before


def test_knn_zero_queries(flat):
    ids, dist = flat.knn(np.zeros((0, DIM), np.float32), k=3)
    assert ids.shape == (0, 3) and dist.shape == (0, 3)


def test_results_share_the_extensions_memory(flat, rng):
    Q = rng.standard_normal((4, DIM)).astype(np.float32)
    ids, dist = flat.knn(Q, k=3)
    for a in (ids, dist):
        assert a.base is not None and not a.flags.owndata
        assert a.flags.c_contiguous
        assert not np.shares_memory(a, Q)
    assert not np.shares_memory(ids, dist)
    out = flat.add_items(Q)
    assert out.base is not None and not out.flags.owndata
    # the arrays stay valid after the handle is closed and the other array is dropped
    keep = ids.copy()
    flat.close()
    del dist
    np.testing.assert_array_equal(ids, keep)


def test_results_without_numpy(tmp_path, data):
    with make_db(tmp_path / "nonp.nvf", DIM) as db:
        db.add_items(data[:20], ids=np.arange(20))
        path = db.path
        want = db.knn(data[:3], k=4)
    script = textwrap.dedent(f"""
        import sys
        sys.modules["numpy"] = None  # `import numpy` raises ImportError
        import array, json
        import nusterdb
        rows = {data[:3].tolist()!r}
        q = array.array("f", [x for r in rows for x in r])
        m = memoryview(q).cast("B").cast("f", (3, {DIM}))
        with nusterdb.NusterDB.open({path!r}) as db:
            ids, dist = db.knn(m, k=4)
            mi, md = memoryview(ids), memoryview(dist)
            print(json.dumps({{"shape": [list(mi.shape), list(md.shape)],
                              "fmt": [mi.format, md.format], "item": [mi.itemsize, md.itemsize],
                              "ids": mi.tolist(), "dist": md.tolist(),
                              "added": memoryview(db.add_items(array.array("f", rows[0]), ids=[77])).tolist()}}))
    """)
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                       env=os.environ.copy())
    assert p.returncode == 0, p.stderr
    import json
    out = json.loads(p.stdout)
    assert out["shape"] == [[3, 4], [3, 4]]
    assert out["item"] == [8, 4] and out["fmt"][1] == "f" and out["fmt"][0] in ("q", "l", "<q", "=q")
    assert out["ids"] == want[0].tolist()
    assert out["dist"] == want[1].tolist()
    assert out["added"] == [77]


def test_knn_matches_model_for_other_metrics(tmp_path, rng):
    for metric in ("cosine", "inner_product", "chebyshev"):
        X = rng.standard_normal((300, DIM)).astype(np.float32)
        Q = rng.standard_normal((10, DIM)).astype(np.float32)
        with make_db(tmp_path / f"{metric}.nvf", DIM, metric=metric) as db:
            db.add_items(X)
            ids, dist = db.knn(Q, k=5)
            for q, ri, rd in zip(Q, ids, dist):
                d = model_distances(metric, X, q)
                np.testing.assert_allclose(rd, np.sort(d)[:5], rtol=1e-4, atol=1e-4)


def test_huge_ids(tmp_path):
    big = 2**64 - 2
    with make_db(tmp_path / "big.nvf", DIM) as db:
        db.add(big, np.ones(DIM, np.float32))
        db.add(5, np.zeros(DIM, np.float32))
        ids, _ = db.knn(np.ones((1, DIM), np.float32), k=2)
        assert ids.tolist() == [[np.array(big, dtype=np.uint64).astype(np.int64).item(), 5]]
        assert ids[0, 0] == -2
        assert db.search(np.ones(DIM, np.float32), k=1)[0][0] == big
        # the next assigned id would be past the largest: a hard limit, said plainly
        with pytest.raises(nusterdb.FullError):
            db.batch_insert([np.ones(DIM, np.float32)])
        assert len(db) == 2
