"""Shared fixtures of the Python suite: the module, temporary databases, seeded random
data, the nvf-tool binary and a float64 numpy model of every metric (docs/METRICS.md).

Run by `meson test --suite python`, which sets PYTHONPATH to the build's python
directory and NVF_TOOL to the built nvf-tool. By hand:

    PYTHONPATH=build/python NVF_TOOL=build/tools/nvf-tool \
        /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/python
"""
import json
import os
import subprocess

import numpy as np
import pytest

import nusterdb

SEED = 20240611

METRICS = ["euclidean", "manhattan", "cosine", "angular", "chebyshev", "jaccard",
           "hamming", "inner_product"]


# ---- the model of the metrics (float64) ----

def model_distances(metric, X, q):
    """Distances from q to every row of X as docs/METRICS.md defines them, in float64."""
    X = np.asarray(X, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    if metric == "euclidean":
        return np.sqrt(((X - q) ** 2).sum(axis=1))
    if metric == "manhattan":
        return np.abs(X - q).sum(axis=1)
    if metric == "chebyshev":
        return np.abs(X - q).max(axis=1)
    if metric == "inner_product":
        return -(X @ q)
    if metric in ("cosine", "angular"):
        nx = np.linalg.norm(X, axis=1)
        nq = np.linalg.norm(q)
        denom = nx * nq
        with np.errstate(invalid="ignore", divide="ignore"):
            c = np.where(denom > 0, (X @ q) / np.where(denom > 0, denom, 1.0), np.nan)
        c = np.clip(c, -1.0, 1.0)
        if metric == "cosine":
            return np.where(np.isnan(c), 1.0, 1.0 - c)
        return np.where(np.isnan(c), 0.5, np.arccos(np.nan_to_num(c)) / np.pi)
    if metric == "jaccard":
        mn = np.minimum(X, q).sum(axis=1)
        mx = np.maximum(X, q).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(mx > 0, 1.0 - mn / np.where(mx > 0, mx, 1.0), 0.0)
    if metric == "hamming":
        return (X != q).sum(axis=1).astype(np.float64)
    raise ValueError(metric)


def model_distance(metric, a, b):
    return float(model_distances(metric, np.asarray(a)[None, :], b)[0])


def model_similarity(metric, a, b):
    """DistanceMetric.similarity as docs/PYTHON.md defines it."""
    d = model_distance(metric, a, b)
    if metric in ("cosine", "angular", "jaccard"):
        return 1.0 - d
    if metric == "inner_product":
        return float(np.dot(np.asarray(a, np.float64), np.asarray(b, np.float64)))
    if metric == "hamming":
        return 1.0 - d / len(a)
    return 1.0 / (1.0 + d)


def model_knn(metric, X, ids, q, k, tol=1e-4):
    """The k nearest (id, distance) of the model, ties by ascending id."""
    d = model_distances(metric, X, q)
    order = np.lexsort((np.asarray(ids), d))
    return [(int(ids[i]), float(d[i])) for i in order[:k]]


def assert_knn_matches(metric, X, ids, q, got, k, rtol=1e-4, atol=1e-4):
    """`got` ([(id, distance)...]) is an exact k-NN answer of the model: the same number
    of results, sorted, each distance the model's for that id, and the distances those
    of the model's k nearest (so a near-tie may swap ids, nothing else)."""
    ids = np.asarray(ids)
    d = model_distances(metric, X, q)
    pos = {int(i): n for n, i in enumerate(ids)}
    want = np.sort(d)[:k]
    assert len(got) == min(k, len(ids)), (len(got), k, len(ids))
    got_ids = [int(i) for i, _ in got]
    got_d = np.array([float(x) for _, x in got])
    assert len(set(got_ids)) == len(got_ids), f"duplicate ids in {got_ids}"
    for i, dist in got:
        assert int(i) in pos, f"id {i} is not in the collection"
        assert dist == pytest.approx(d[pos[int(i)]], rel=rtol, abs=atol), (i, dist, d[pos[int(i)]])
    assert np.all(np.diff(got_d) >= -atol), f"not sorted: {got_d}"
    np.testing.assert_allclose(got_d, want, rtol=rtol, atol=atol)


# ---- data ----

@pytest.fixture
def rng():
    return np.random.default_rng(SEED)


def gaussian(rng, n, dim):
    return rng.standard_normal((n, dim)).astype(np.float32)


def data_for(metric, rng, n, dim):
    """Data on which a metric is meaningful: non-negative for jaccard, small integers for
    hamming (so that components repeat), gaussian otherwise."""
    if metric == "jaccard":
        return rng.random((n, dim)).astype(np.float32)
    if metric == "hamming":
        return rng.integers(0, 3, size=(n, dim)).astype(np.float32)
    return gaussian(rng, n, dim)


# ---- databases ----

@pytest.fixture
def dbpath(tmp_path):
    return str(tmp_path / "t.nvf")


def make_db(path, dim, metric="euclidean", index="flat", **kw):
    # nosync: commits survive a process crash, not a power cut; the suite makes
    # thousands of small commits on ext4 and tests nothing about power cuts.
    kw.setdefault("durability", "nosync")
    cfg = nusterdb.DatabaseConfig(dim=dim, index_type=index, distance_metric=metric, **kw)
    return nusterdb.NusterDB(str(path), cfg)


@pytest.fixture
def flatdb(tmp_path):
    db = make_db(tmp_path / "flat.nvf", 8)
    yield db
    db.close()


def dump(db, ids):
    """Every visible fact about the records `ids` (and the count): what must not change
    after a failed call."""
    out = {"count": db.count(), "len": len(db)}
    for i in ids:
        v = db.get(i)
        m = db.get_metadata(i)
        if v is None:
            assert m is None
            out[i] = None
            continue
        out[i] = (tuple(v.to_list()), json.dumps(m.to_dict(), sort_keys=True), tuple(m.tags()),
                  m.version, m.created_at_us, m.updated_at_us)
    return out


# ---- nvf-tool ----

@pytest.fixture(scope="session")
def tool():
    path = os.environ.get("NVF_TOOL")
    if not path:
        pytest.fail("NVF_TOOL is not set: run this through `meson test --suite python` "
                    "(or set NVF_TOOL to the nvf-tool binary)")
    if not os.access(path, os.X_OK):
        pytest.fail(f"NVF_TOOL={path} is not an executable")
    return path


def run_tool(tool, *args, code=0):
    p = subprocess.run([tool, *map(str, args)], capture_output=True, text=True, timeout=300)
    assert p.returncode == code, (f"nvf-tool {' '.join(map(str, args))}: exit {p.returncode}, "
                                  f"expected {code}\nstdout: {p.stdout[:2000]}\nstderr: {p.stderr}")
    return p


def tool_info(tool, path):
    return json.loads(run_tool(tool, "info", "--json", path).stdout)
