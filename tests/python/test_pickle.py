"""Pickling a handle gives one that reopens the same path, snapshot and read-only flag,
in this process and in a multiprocessing worker started with spawn."""
import multiprocessing as mp
import os
import pickle

import numpy as np
import pytest

import nusterdb
from nusterdb import NusterDB
from conftest import make_db

DIM = 8


@pytest.fixture
def saved(tmp_path):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((200, DIM)).astype(np.float32)
    db = make_db(tmp_path / "p.nvf", DIM, index="hnsw")
    db.add_items(X, ids=np.arange(200), metadata=[{"i": i} for i in range(200)])
    db.create_snapshot("half")
    for i in range(100):
        db.delete(i)
    yield db, X
    db.close()


def test_round_trip_in_process(saved):
    db, X = saved
    c = pickle.loads(pickle.dumps(db))
    try:
        assert isinstance(c, NusterDB) and c is not db
        assert os.path.samefile(c.path, db.path)
        assert len(c) == 100 and c.stats().read_only is False
        assert c.search(X[150], k=3) == db.search(X[150], k=3)
        c.add(1000, X[0])  # writable like the original
        assert 1000 in db
    finally:
        c.close()


def test_snapshot_and_read_only_survive(saved):
    db, X = saved
    with NusterDB(db.path, snapshot="half") as at:
        c = pickle.loads(pickle.dumps(at, protocol=pickle.HIGHEST_PROTOCOL))
        try:
            assert len(c) == 200 and c.get_metadata(5).to_dict() == {"i": 5}
            assert c.stats().read_only is True
            with pytest.raises(nusterdb.ReadOnlyError):
                c.add(1000, X[0])
        finally:
            c.close()
    with NusterDB(db.path, read_only=True) as ro:
        c = pickle.loads(pickle.dumps(ro))
        try:
            assert len(c) == 100
            with pytest.raises(nusterdb.ReadOnlyError):
                c.delete(150)
        finally:
            c.close()


def test_pickling_a_closed_handle_raises(tmp_path):
    db = make_db(tmp_path / "c.nvf", DIM)
    db.close()
    with pytest.raises((nusterdb.ClosedError, pickle.PicklingError, TypeError)):
        pickle.dumps(db)


def worker(args):
    db, q = args
    try:
        ids, dist = db.knn(q, k=5)
        return len(db), ids.tolist(), dist.tolist(), db.stats().read_only
    finally:
        db.close()


def test_multiprocessing_spawn(saved):
    db, X = saved
    ctx = mp.get_context("spawn")
    Q = X[100:110]
    with NusterDB(db.path, snapshot="half") as at:
        want_now = db.knn(Q, k=5)
        want_at = at.knn(Q, k=5)
        with ctx.Pool(2) as pool:
            res = pool.map(worker, [(db, Q), (at, Q)])
    assert res[0][0] == 100 and res[1][0] == 200
    assert res[0][1] == want_now[0].tolist() and res[0][2] == want_now[1].tolist()
    assert res[1][1] == want_at[0].tolist() and res[1][2] == want_at[1].tolist()
    assert res[0][3] is False and res[1][3] is True
