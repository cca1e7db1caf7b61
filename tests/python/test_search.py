"""search, range_search and filters against a float64 numpy brute force: exact on Flat
for every metric, recall above a loose bound on Hnsw."""
import numpy as np
import pytest

import nusterdb
from nusterdb import Metadata, Vector
from conftest import METRICS, assert_knn_matches, data_for, make_db, model_distances

N, DIM = 600, 16
CATS = ["image", "text", "audio"]


def docs_for(n, rng):
    return [{"category": CATS[i % 3], "year": 2015 + int(rng.integers(0, 10)), "n": i}
            for i in range(n)]


def passes(doc, year_min, cat):
    return doc["category"] == cat and doc["year"] >= year_min


@pytest.fixture(scope="module")
def flat_dbs(tmp_path_factory):
    rng = np.random.default_rng(11)
    out = {}
    base = tmp_path_factory.mktemp("flat")
    for metric in METRICS:
        X = data_for(metric, rng, N, DIM)
        db = make_db(base / f"{metric}.nvf", DIM, metric=metric, index="flat")
        ids = [int(i) * 3 + 5 for i in range(N)]  # ids unrelated to rows
        docs = docs_for(N, rng)
        for i, x, d in zip(ids, X, docs):
            db.add(i, x, d)
        out[metric] = (db, X, np.array(ids), docs)
    yield out
    for db, *_ in out.values():
        db.close()


@pytest.mark.parametrize("metric", METRICS)
def test_flat_search_is_exact(metric, flat_dbs):
    db, X, ids, _ = flat_dbs[metric]
    rng = np.random.default_rng(5)
    Q = data_for(metric, rng, 20, DIM)
    for q in Q:
        for k in (1, 10, 37):
            got = db.search(q, k=k)
            assert isinstance(got, list) and all(isinstance(t, tuple) and len(t) == 2 for t in got)
            assert all(isinstance(i, int) and isinstance(d, float) for i, d in got)
            assert_knn_matches(metric, X, ids, q, got, k)
    # a stored vector is its own nearest (distance 0) for the true metrics
    if metric in ("euclidean", "manhattan", "chebyshev", "hamming", "jaccard"):
        for r in (0, 17, N - 1):
            got = db.search(X[r], k=1)
            assert got[0][1] == pytest.approx(0.0, abs=1e-5)


def test_hamming_ties_are_by_ascending_id(flat_dbs):
    db, X, ids, _ = flat_dbs["hamming"]
    q = X[3]
    got = db.search(q, k=60)
    d = [x for _, x in got]
    for (i1, d1), (i2, d2) in zip(got, got[1:]):
        assert d1 < d2 or (d1 == d2 and i1 < i2), (i1, d1, i2, d2)
    assert_knn_matches("hamming", X, ids, q, got, 60)
    assert d == sorted(d)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_query_spellings_agree(metric, flat_dbs):
    db, X, ids, _ = flat_dbs[metric]
    q = np.random.default_rng(1).standard_normal(DIM).astype(np.float32)
    want = db.search(q, k=5)
    assert db.search(Vector(q), k=5) == want
    assert db.search(q.tolist(), k=5) == want
    assert db.search(q.astype(np.float64), k=5) == want
    assert db.search(q, 5) == want


def test_k_larger_than_count_returns_every_record(tmp_path, rng):
    X = rng.standard_normal((7, 4)).astype(np.float32)
    for index in ("flat", "hnsw"):
        with make_db(tmp_path / f"{index}.nvf", 4, index=index) as db:
            assert db.search(X[0], k=3) == []
            for i, x in enumerate(X):
                db.add(i, x)
            got = db.search(X[0], k=100)
            assert sorted(i for i, _ in got) == list(range(7))
            assert_knn_matches("euclidean", X, np.arange(7), X[0], got, 7)
            db.delete(4)
            got = db.search(X[0], k=100)
            assert sorted(i for i, _ in got) == [0, 1, 2, 3, 5, 6]


@pytest.mark.parametrize("metric", ["euclidean", "manhattan", "cosine", "inner_product"])
def test_range_search_is_exact(metric, flat_dbs):
    db, X, ids, _ = flat_dbs[metric]
    rng = np.random.default_rng(9)
    for q in data_for(metric, rng, 10, DIM):
        d = model_distances(metric, X, q)
        radius = float(np.quantile(d, 0.05))
        got = db.range_search(q, radius)
        got_ids = {i for i, _ in got}
        dd = [x for _, x in got]
        assert dd == sorted(dd)
        for i, x in got:
            assert x <= radius
        want = {int(i) for i, x in zip(ids, d) if x <= radius - 1e-4}
        maybe = {int(i) for i, x in zip(ids, d) if abs(x - radius) <= 1e-4}
        assert want <= got_ids <= want | maybe
        for i, x in got:
            assert x == pytest.approx(d[list(ids).index(i)], rel=1e-4, abs=1e-4)


def test_range_search_radius_zero_and_huge(flat_dbs):
    db, X, ids, _ = flat_dbs["euclidean"]
    got = db.range_search(X[10], 0.0)
    assert [i for i, _ in got] == [int(ids[10])]
    assert len(db.range_search(X[10], 1e9)) == N


def test_inner_product_range_search_negative_radius(flat_dbs):
    db, X, ids, _ = flat_dbs["inner_product"]
    q = X[0]
    d = model_distances("inner_product", X, q)
    radius = float(np.quantile(d, 0.1))
    assert radius < 0
    got = {i for i, _ in db.range_search(q, radius)}
    want = {int(i) for i, x in zip(ids, d) if x <= radius - 1e-4}
    assert want <= got


FILTERS = [
    ("category = 'image' AND year >= 2020", lambda d: d["category"] == "image" and d["year"] >= 2020),
    ("category IN ('text', 'audio')", lambda d: d["category"] in ("text", "audio")),
    ("year BETWEEN 2016 AND 2017 OR n < 10", lambda d: 2016 <= d["year"] <= 2017 or d["n"] < 10),
    ("NOT category = 'image'", lambda d: d["category"] != "image"),
    ("n = 123", lambda d: d["n"] == 123),
    ("missing = 1", lambda d: False),
]


@pytest.mark.parametrize("expr,pred", FILTERS, ids=[f[0] for f in FILTERS])
def test_filtered_search_on_flat_is_exact(expr, pred, flat_dbs):
    db, X, ids, docs = flat_dbs["euclidean"]
    keep = np.array([pred(d) for d in docs])
    rng = np.random.default_rng(3)
    for q in rng.standard_normal((8, DIM)).astype(np.float32):
        got = db.search(q, k=10, filter=expr)
        assert_knn_matches("euclidean", X[keep], ids[keep], q, got, 10)
        got_r = db.range_search(q, 4.0, filter=expr)
        d = model_distances("euclidean", X, q)
        want = {int(i) for i, x, p in zip(ids, d, keep) if p and x <= 4.0 - 1e-4}
        maybe = {int(i) for i, x, p in zip(ids, d, keep) if p and abs(x - 4.0) <= 1e-4}
        assert want <= {i for i, _ in got_r} <= want | maybe


def test_filter_on_tags_and_record_fields(tmp_path, rng):
    X = rng.standard_normal((50, 4)).astype(np.float32)
    with make_db(tmp_path / "tags.nvf", 4) as db:
        for i, x in enumerate(X):
            db.add(i, x, Metadata({"i": i}, tags=["even"] if i % 2 == 0 else ["odd"]))
        got = db.search(X[0], k=50, filter="tags CONTAINS 'odd'")
        assert sorted(i for i, _ in got) == list(range(1, 50, 2))
        got = db.search(X[0], k=50, filter="id < 10")
        assert sorted(i for i, _ in got) == list(range(10))
        db.update(3, X[3])
        got = db.search(X[0], k=50, filter="version = 2")
        assert [i for i, _ in got] == [3]


def test_bad_filters_raise_filter_error(flat_dbs):
    db = flat_dbs["euclidean"][0]
    q = np.zeros(DIM, np.float32)
    for bad in ("year >", "category = ", "AN x = 1", "(year = 1", "year = 99999999999999999999",
                "x STARTS WITH 3"):
        with pytest.raises(nusterdb.FilterError) as e:
            db.search(q, k=3, filter=bad)
        assert isinstance(e.value, nusterdb.InvalidArgumentError) and isinstance(e.value, ValueError)
        assert "column" in str(e.value)
        with pytest.raises(nusterdb.FilterError):
            db.range_search(q, 1.0, filter=bad)
    with pytest.raises(TypeError):
        db.search(q, k=3, filter=5)


def test_deleted_and_updated_records_in_search(tmp_path, rng):
    X = rng.standard_normal((200, 8)).astype(np.float32)
    for index in ("flat", "hnsw"):
        with make_db(tmp_path / f"du_{index}.nvf", 8, index=index) as db:
            db.add_items(X, ids=np.arange(200))
            for i in range(0, 200, 3):
                assert db.delete(i)
            live = np.array([i for i in range(200) if i % 3])
            X2 = X.copy()
            for i in range(1, 200, 7):
                if i % 3:
                    X2[i] = rng.standard_normal(8).astype(np.float32)
                    db.update(i, X2[i])
            for q in X[:20]:
                got = db.search(q, k=len(live) + 10)
                assert_knn_matches("euclidean", X2[live], live, q, got, len(live))


# ---- HNSW ----

def recall(got, want):
    return len({i for i, _ in got} & {i for i, _ in want}) / max(1, len(want))


@pytest.mark.parametrize("metric", ["euclidean", "cosine", "inner_product", "manhattan"])
def test_hnsw_recall(metric, tmp_path):
    rng = np.random.default_rng(21)
    n, dim, k = 2000, 24, 10
    X = rng.standard_normal((n, dim)).astype(np.float32)
    Q = rng.standard_normal((50, dim)).astype(np.float32)
    with make_db(tmp_path / "h.nvf", dim, metric=metric, index="hnsw") as db:
        db.add_items(X)
        ids = np.arange(n)
        total = 0.0
        total_ef = 0.0
        for q in Q:
            d = model_distances(metric, X, q)
            want = [(int(i), 0.0) for i in np.argsort(d)[:k]]
            got = db.search(q, k=k)
            assert len(got) == k
            dd = [x for _, x in got]
            assert dd == sorted(dd)
            for i, x in got:
                assert x == pytest.approx(d[i], rel=1e-3, abs=1e-3)  # true distances
            total += recall(got, want)
            total_ef += recall(db.search(q, k=k, ef_search=400), want)
        assert total / len(Q) >= 0.8
        assert total_ef / len(Q) >= 0.9
        del ids


def test_hnsw_filtered_results_pass_the_filter(tmp_path):
    rng = np.random.default_rng(4)
    n, dim = 1500, 16
    X = rng.standard_normal((n, dim)).astype(np.float32)
    docs = docs_for(n, rng)
    with make_db(tmp_path / "hf.nvf", dim, index="hnsw") as db:
        db.add_items(X, metadata=docs)
        keep = np.array([d["category"] == "image" and d["year"] >= 2020 for d in docs])
        total = 0.0
        Q = rng.standard_normal((30, dim)).astype(np.float32)
        for q in Q:
            got = db.search(q, k=10, filter="category = 'image' AND year >= 2020")
            assert len(got) == 10
            assert all(keep[i] for i, _ in got)
            d = model_distances("euclidean", X, q)
            d[~keep] = np.inf
            want = [(int(i), 0.0) for i in np.argsort(d)[:10]]
            total += recall(got, want)
        assert total / len(Q) >= 0.8
        # a filter fewer records pass than k: all of them
        got = db.search(Q[0], k=10, filter="n < 4")
        assert sorted(i for i, _ in got) == [0, 1, 2, 3]


def test_hnsw_default_ef_search_from_config(tmp_path, tool):
    from conftest import tool_info
    with make_db(tmp_path / "ef.nvf", 8, index="hnsw", hnsw_ef_search=123) as db:
        path = db.path
    assert tool_info(tool, path)["hnsw"]["ef_search"] == 123


def _seeded_build(path, X, Q, batches, threads):
    with make_db(path, 16, index="hnsw", hnsw_config=nusterdb.HNSWConfig(seed=1234, ef_search=16)) as db:
        for b in batches:
            if b is None:
                for x in X[:200]:
                    db.insert(x)
            else:
                db.add_items(X[b], threads=threads)
        return db.knn(Q, k=10)


@pytest.mark.parametrize("plan", ["inserts_and_small_batches", "one_large_batch_1_thread"])
def test_hnsw_builds_are_reproducible_with_a_seed(plan, tmp_path):
    """docs/PYTHON.md: `seed` is the level generator's seed; builds that link nodes one
    at a time are reproducible (a parallel batch is not, and the doc says so).
    Small batches link one record at a time; a batch of 256 or more links in parallel
    unless threads=1."""
    rng = np.random.default_rng(6)
    X = rng.standard_normal((1500, 16)).astype(np.float32)
    Q = rng.standard_normal((30, 16)).astype(np.float32)
    threads = 1 if plan.endswith("1_thread") else 0
    if plan.startswith("one_large_batch"):
        batches = [slice(0, 1500)]
    else:
        batches = [None] + [slice(s, s + 100) for s in range(200, 1500, 100)]
    a = _seeded_build(tmp_path / "a.nvf", X, Q, batches, threads)
    b = _seeded_build(tmp_path / "b.nvf", X, Q, batches, threads)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
