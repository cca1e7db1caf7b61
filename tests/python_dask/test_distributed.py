"""nusterdb.distributed against one NusterDB as the model: the same operations applied to
a sharded collection (S = 1, 2, 4 shards over two worker processes) and to one file in
this process must give the same records and the same exact search results, ties by id
included. Then HNSW recall, snapshots across shards, kill -9 of a worker mid-search and
mid-insert, and the dask.array path. No test measures time.

One LocalCluster (2 processes, 1 thread each) serves the module; seeds are fixed and
printed with each model run."""

import json
import os
import signal
import threading
import time

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")

import nusterdb  # noqa: E402
from nusterdb.distributed import (  # noqa: E402
    ManifestError, ShardedNusterDB, ShardError, ShardWriteError, route, shard_of, splitmix64)

DIM = 16


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(processes=True, n_workers=2, threads_per_worker=1,
                                       dashboard_address=None, silence_logs=50)
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def flat(dim=DIM):
    return nusterdb.DatabaseConfig(dim, index_type="flat")


def grid(rng, n, dim=DIM):
    # Components in {0..3}: many vectors at equal distances from a query, so ties
    # (broken by ascending id) are the rule rather than the exception.
    return rng.integers(0, 4, size=(n, dim)).astype(np.float32)


def shard_ids(path):
    """The ids stored in one shard file, read directly (flat: knn with k = count)."""
    with nusterdb.NusterDB.open(path, read_only=True) as db:
        n = len(db)
        if n == 0:
            return set()
        ids, _ = db.knn(np.zeros((1, db.dim), np.float32), k=n)
        return set(ids[0].tolist())


def wait_for_workers(client, n=2, limit=60):
    # The nanny restarts a killed worker; later tests want both back.
    client.wait_for_workers(n, timeout=limit)


# -- routing ---------------------------------------------------------------------------
def test_splitmix64_is_the_published_function():
    # The first outputs of splitmix64 seeded with 0 (state advanced by the golden ratio
    # before mixing), as in Vigna's reference implementation.
    assert splitmix64(0) == 0xE220A8397B1DCDAF
    assert splitmix64(0x9E3779B97F4A7C15) == 0x6E789E6AA1B965F4


def test_route_array_agrees_with_scalar_for_every_width():
    rng = np.random.default_rng(5)
    ids = np.concatenate([np.arange(1000), rng.integers(0, 2**63 - 1, 1000)]).astype(np.int64)
    big = [2**63, 2**64 - 2, 2**63 + 12345]
    for S in (1, 2, 3, 4, 7, 64):
        r = route(ids, S)
        assert [shard_of(int(i), S) for i in ids] == r.tolist()
        assert route(np.array(big, dtype=np.uint64), S).tolist() == [shard_of(i, S) for i in big]
        if S > 1:  # consecutive ids spread evenly
            counts = np.bincount(route(np.arange(40000), S), minlength=S)
            assert counts.min() > 40000 / S * 0.9


# -- the model: exact search equals one NusterDB ---------------------------------------
@pytest.mark.parametrize("S", [1, 2, 4])
def test_exact_search_equals_single_machine_under_random_writes(client, tmp_path, S):
    seed = 1000 + S
    print("seed", seed)
    rng = np.random.default_rng(seed)
    one = nusterdb.NusterDB(str(tmp_path / "one.nvf"), flat())
    db = ShardedNusterDB.create(client, tmp_path / "sharded", flat(), shards=S)
    try:
        n = 2000
        X = grid(rng, n)
        ids = rng.choice(10**6, n, replace=False).astype(np.int64)
        docs = [{"label": int(i % 5), "even": bool(i % 2 == 0)} for i in ids]
        one.add_items(X, ids=ids, metadata=docs)
        got = db.add_items(X, ids=ids, metadata=docs, chunk_rows=700)
        assert got.tolist() == ids.tolist()
        live = set(ids.tolist())
        # Random single-record writes, applied to both.
        for step in range(150):
            op = rng.integers(0, 5)
            i = int(rng.choice(ids))
            if op == 0:
                assert db.delete(i) == one.delete(i)
                live.discard(i)
            elif op == 1 and i in live:
                v = grid(rng, 1)[0]
                one.update(i, v)
                db.update(i, v)
            elif op == 2 and i in live:
                m = {"label": int(rng.integers(0, 5)), "even": bool(rng.integers(0, 2))}
                one.update_metadata(i, m)
                db.update_metadata(i, m)
            elif op == 3:
                new = int(rng.integers(10**6, 2 * 10**6))
                if new not in live:
                    v = grid(rng, 1)[0]
                    one.add(new, v, {"label": 9})
                    db.add(new, v, {"label": 9})
                    live.add(new)
            else:
                assert (i in db) == (i in one)
        assert len(db) == len(one) == len(live)
        for i in rng.choice(sorted(live), 50):
            i = int(i)
            assert db.get(i) == one.get(i)
            assert db.get_metadata(i).to_dict() == one.get_metadata(i).to_dict()
            assert db.get_metadata(i).version == one.get_metadata(i).version
        assert db.get(5 * 10**6) is None and db.get_metadata(5 * 10**6) is None

        Q = grid(rng, 40)
        for k in (1, 10, 57):
            I1, D1 = one.knn(Q, k=k)
            I2, D2 = db.knn(Q, k=k)
            np.testing.assert_array_equal(I2, I1)
            np.testing.assert_array_equal(D2, D1)
        for f in ("label = 3", "even = true AND label < 2", "label = 9"):
            I1, D1 = one.knn(Q, k=10, filter=f)
            I2, D2 = db.knn(Q, k=10, filter=f)
            np.testing.assert_array_equal(I2, I1)
            np.testing.assert_array_equal(D2, D1)
        for q in Q[:5]:
            assert db.search(q, k=10) == one.search(q, k=10)
            assert db.search(q, k=10, filter="label = 1") == one.search(q, k=10, filter="label = 1")
            assert db.range_search(q, 3.0) == one.range_search(q, 3.0)
        # More than there are: every record, as one NusterDB gives.
        I1, D1 = one.knn(Q[:2], k=len(one) + 5)
        I2, D2 = db.knn(Q[:2], k=len(one) + 5)
        np.testing.assert_array_equal(I2, I1)
        np.testing.assert_array_equal(D2, D1)

        # Every record sits in the shard its id routes to, and nowhere else.
        db.sync()
        for s, path in enumerate(db.paths):
            held = shard_ids(path)
            assert all(shard_of(i, S) == s for i in held)
            assert held == {i for i in live if shard_of(i, S) == s}

        st = db.stats()
        assert st.vector_count == len(live) and st.shard_count == S
        assert st.vector_count == sum(p["vector_count"] for p in st.shards)
        assert st.file_size == sum(p["file_size"] for p in st.shards)
        db.compact()
        I2, D2 = db.knn(Q, k=10)
        I1, D1 = one.knn(Q, k=10)
        np.testing.assert_array_equal(I2, I1)
    finally:
        db.close()
        one.close()


def test_errors_are_the_shards_own(client, tmp_path):
    db = ShardedNusterDB.create(client, tmp_path / "c", flat(), shards=2)
    try:
        db.add(7, np.ones(DIM))
        with pytest.raises(nusterdb.ExistsError):
            db.add(7, np.ones(DIM))
        with pytest.raises(nusterdb.NotFoundError):
            db.update(8, np.ones(DIM))
        with pytest.raises(nusterdb.NotFoundError):
            db.update_metadata(8, {"a": 1})
        with pytest.raises(nusterdb.InvalidArgumentError):
            db.add_items(np.ones((3, DIM + 1), np.float32))
        with pytest.raises(nusterdb.FilterError):
            db.knn(np.ones((1, DIM)), k=3, filter="label = ")
        with pytest.raises(KeyError):
            db[12345]
        assert db.delete(8) is False
        assert len(db) == 1
    finally:
        db.close()
    with pytest.raises(FileExistsError):
        ShardedNusterDB.create(client, tmp_path / "c", flat(), shards=2)
    with pytest.raises(FileNotFoundError):
        ShardedNusterDB.open(client, tmp_path / "nothing-here")


def test_insert_draws_ids_that_route_and_never_collide(client, tmp_path):
    db = ShardedNusterDB.create(client, tmp_path / "c", flat(), shards=4)
    try:
        rng = np.random.default_rng(3)
        singles = [db.insert(v, {"n": i}) for i, v in enumerate(grid(rng, 20))]
        batch = db.batch_insert(list(grid(rng, 300)), [{"n": i} for i in range(300)])
        many = db.add_items(grid(rng, 500)).tolist()
        every = singles + batch + many
        assert len(set(every)) == len(every) == len(db) == 820
        assert all(0 <= i < 2**63 for i in every)
        assert db.get_metadata(singles[3])["n"] == 3 and db.get_metadata(batch[7])["n"] == 7
        # Force a collision: drawing again from the same start must be detected by
        # the owning shard and drawn anew, not overwrite or fail.
        state = db._rng.bit_generator.state
        db.add_items(grid(rng, 200))
        db._rng.bit_generator.state = state
        again = db.add_items(grid(rng, 200))
        assert len(db) == 1220 and len(set(again.tolist())) == 200
    finally:
        db.close()


# -- HNSW ------------------------------------------------------------------------------
def clusters(rng, n, dim, centers=20):
    c = rng.normal(0, 4, size=(centers, dim))
    return (c[rng.integers(0, centers, n)] + rng.normal(0, 1, size=(n, dim))).astype(np.float32)


def recall(I, truth):
    return np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(I.tolist(), truth.tolist())])


@pytest.mark.parametrize("S", [2, 4])
def test_hnsw_recall_within_one_point_of_one_machine(client, tmp_path, S):
    rng = np.random.default_rng(77)
    dim, n, k, ef = 32, 4000, 10, 16
    X = clusters(rng, n, dim)
    Q = clusters(rng, 200, dim)
    d2 = ((Q[:, None, :].astype(np.float64) - X[None, :, :]) ** 2).sum(-1)
    truth = np.argsort(d2, axis=1, kind="stable")[:, :k]
    cfg = nusterdb.DatabaseConfig(dim, index_type="hnsw", hnsw_max_connections=8,
                                  hnsw_ef_construction=64)
    one = nusterdb.NusterDB(str(tmp_path / "one.nvf"), cfg)
    one.add_items(X, ids=np.arange(n), threads=1)
    db = ShardedNusterDB.create(client, tmp_path / "h", cfg, shards=S)
    try:
        db.add_items(X, ids=np.arange(n), threads=1)
        r1 = recall(one.knn(Q, k=k, ef=ef, threads=1)[0], truth)
        I, D = db.knn(Q, k=k, ef=ef, threads=1)
        r2 = recall(I, truth)
        print(f"S={S} recall one {r1:.4f} sharded {r2:.4f}")
        assert r2 >= r1 - 0.01
        assert np.all(np.diff(D, axis=1) >= 0)
        # Filters under HNSW: every hit passes, and never fewer than exist.
        db.update_metadata(5, {"tag": "x"})
        db.update_metadata(3999, {"tag": "x"})
        I, _ = db.knn(Q[:3], k=k, ef=ef, filter="tag = 'x'")
        assert all(sorted(r[:2]) == [5, 3999] and list(r[2:]) == [-1] * (k - 2) for r in I.tolist())
    finally:
        db.close()
        one.close()


# -- snapshots -------------------------------------------------------------------------
def test_snapshot_is_one_cut_with_an_atomic_manifest(client, tmp_path):
    rng = np.random.default_rng(11)
    home = tmp_path / "s"
    db = ShardedNusterDB.create(client, home, flat(), shards=4)
    X = grid(rng, 600)
    db.add_items(X, ids=np.arange(600))
    Q = grid(rng, 20)
    before = db.knn(Q, k=10)
    assert db.snapshot("before", {"why": "test"}) == "before"
    with pytest.raises(nusterdb.ExistsError):
        db.snapshot("before")
    for i in range(0, 600, 3):
        db.delete(i)
    db.add_items(grid(rng, 100), ids=np.arange(1000, 1100))
    assert db.list_snapshots() == ["before"]
    assert db.stats().snapshot_count == 1
    db.close()

    man = json.loads((home / "snapshots" / "before.json").read_text())
    assert man["shards"] == 4 and man["route"] == "splitmix64"
    assert [m["shard"] for m in man["members"]] == [0, 1, 2, 3]
    assert sum(m["records"] for m in man["members"]) == 600
    assert [m["path"] for m in man["members"]] == db.paths
    assert not [f for f in os.listdir(home / "snapshots") if ".tmp" in f]

    snap = ShardedNusterDB.open(client, home, snapshot="before")
    try:
        assert len(snap) == 600 and snap.read_only
        I, D = snap.knn(Q, k=10)
        np.testing.assert_array_equal(I, before[0])
        np.testing.assert_array_equal(D, before[1])
        with pytest.raises(nusterdb.ReadOnlyError):
            snap.add(5000, np.ones(DIM))
    finally:
        snap.close()
    now = ShardedNusterDB.open(client, home)
    assert len(now) == 600 - 200 + 100
    now.close()

    # A shard that lost its snapshot: the error names it.
    with nusterdb.NusterDB.open(db.paths[2]) as h:
        h.delete_snapshot("before")
    with pytest.raises(nusterdb.NotFoundError, match=r"shard 2 .*shard-002\.nvf.* no snapshot 'before'"):
        ShardedNusterDB.open(client, home, snapshot="before")
    with pytest.raises(FileNotFoundError, match="no snapshot 'nope'"):
        ShardedNusterDB.open(client, home, snapshot="nope")
    # Shard paths given in the wrong order do not pass for the cut.
    db = ShardedNusterDB.open(client, home)
    db.snapshot("second")
    db.close()
    with pytest.raises(ManifestError):
        ShardedNusterDB.open(client, list(reversed(db.paths)), home=str(home), snapshot="second")
    db = ShardedNusterDB.open(client, home)
    db.delete_snapshot("second")
    assert db.list_snapshots() == ["before"]
    db.close()


# -- failures: kill -9 of a worker -----------------------------------------------------
def test_kill_9_mid_search_retries_on_a_new_actor(client, tmp_path):
    wait_for_workers(client)
    rng = np.random.default_rng(21)
    one = nusterdb.NusterDB(str(tmp_path / "one.nvf"), flat())
    X = grid(rng, 3000)
    one.add_items(X, ids=np.arange(3000))
    db = ShardedNusterDB.create(client, tmp_path / "k", flat(), shards=4)
    try:
        db.add_items(X, ids=np.arange(3000))
        Q = grid(rng, 500)
        want = one.knn(Q, k=10)
        # First the plain case: the worker is gone before the call.
        os.kill(db.workers()[0]["pid"], signal.SIGKILL)
        I, D = db.knn(Q, k=10)
        np.testing.assert_array_equal(I, want[0])
        np.testing.assert_array_equal(D, want[1])
        # Then in flight: searches run in a loop while the shard's worker dies.
        wait_for_workers(client)
        victim = db.workers()[1]["pid"]
        outcomes = []

        def searching():
            for _ in range(40):
                try:
                    outcomes.append(db.knn(Q, k=10))
                except ShardError as e:
                    outcomes.append(e)

        t = threading.Thread(target=searching)
        t.start()
        while not outcomes and t.is_alive():
            time.sleep(0.001)
        os.kill(victim, signal.SIGKILL)
        t.join()
        answered = [o for o in outcomes if not isinstance(o, ShardError)]
        assert len(answered) >= len(outcomes) - 1  # a read is retried: at most a report
        for I, D in answered:
            np.testing.assert_array_equal(I, want[0])
            np.testing.assert_array_equal(D, want[1])
        assert victim not in [w["pid"] for w in db.workers()]
    finally:
        db.close()
        one.close()


def test_kill_9_mid_insert_keeps_every_committed_record(client, tmp_path):
    wait_for_workers(client)
    rng = np.random.default_rng(31)
    home = tmp_path / "w"
    cfg = nusterdb.DatabaseConfig(DIM, index_type="hnsw", hnsw_max_connections=8,
                                  hnsw_ef_construction=64)
    db = ShardedNusterDB.create(client, home, cfg, shards=2)
    X = clusters(rng, 12000, DIM)
    committed, uncertain, errors = [], [], []

    def inserting():
        for b in range(0, len(X), 1000):
            ids = np.arange(b, b + 1000)
            try:
                db.add_items(X[b:b + 1000], ids=ids)
                committed.extend(ids.tolist())
            except ShardWriteError as e:
                errors.append(e)
                committed.extend(e.committed_ids.tolist())
                uncertain.extend(e.uncertain_ids.tolist())

    t = threading.Thread(target=inserting)
    t.start()
    while len(committed) < 2000 and t.is_alive():
        time.sleep(0.001)
    os.kill(db.workers()[0]["pid"], signal.SIGKILL)
    t.join()
    print(f"{len(committed)} committed, {len(uncertain)} uncertain, {len(errors)} reports")
    for e in errors:  # a report names the shard whose worker died
        assert 0 in e.failed and "shard 0" in str(e)
    assert len(committed) + len(uncertain) == len(X)
    db.close()

    wait_for_workers(client)
    db = ShardedNusterDB.open(client, home)
    try:
        held = set()
        for p in db.paths:
            with nusterdb.NusterDB.open(p, read_only=True) as h:
                held |= {i for i in committed + uncertain if i in h}
        assert set(committed) <= held
        got = np.stack([db.get(i).to_list() for i in rng.choice(committed, 200)])
        assert got.shape == (200, DIM)
        for i in rng.choice(committed, 200):
            np.testing.assert_array_equal(np.asarray(db.get(int(i))), X[i])
        assert len(db) == len(held)
    finally:
        db.close()


# -- dask.array ------------------------------------------------------------------------
def test_dask_array_ingest_and_query_chunk_by_chunk(client, tmp_path):
    rng = np.random.default_rng(41)
    X = grid(rng, 2500)
    one = nusterdb.NusterDB(str(tmp_path / "one.nvf"), flat())
    one.add_items(X, ids=np.arange(2500))
    db = ShardedNusterDB.create(client, tmp_path / "d", flat(), shards=2)
    try:
        dX = da.from_array(X, chunks=(400, DIM))
        ids = db.add_items(dX, ids=np.arange(2500), metadata=[{"r": i % 3} for i in range(2500)])
        assert ids.tolist() == list(range(2500))
        drawn = db.add_items(da.from_array(X[:300] + 100, chunks=(128, DIM)))
        assert len(set(drawn.tolist())) == 300 and len(db) == 2800
        for i in (0, 1234, 2499):
            np.testing.assert_array_equal(np.asarray(db.get(i)), X[i])
        assert db.get_metadata(1234)["r"] == 1234 % 3
        Q = grid(rng, 333)
        dQ = da.from_array(Q, chunks=(100, DIM))
        I, D = db.knn(dQ, k=7)
        I1, D1 = one.knn(Q, k=7)
        np.testing.assert_array_equal(I, I1)
        np.testing.assert_array_equal(D, D1)
        I, _ = db.knn(dQ, k=7, filter="r = 2")
        assert all(i % 3 == 2 for i in I.ravel().tolist())
        # A float64 array computed on the workers, never materialised here.
        lazy = da.random.RandomState(3).random_sample((1000, DIM), chunks=(250, DIM)) * 3
        more = db.add_items(lazy)
        assert len(more) == 1000 and len(db) == 3800
    finally:
        db.close()
        one.close()


def test_per_machine_paths_with_placement_and_home(client, tmp_path):
    # Several machines are simulated by one: each shard restricted to one worker by
    # address, shard paths given as a list, the manifests in a home of their own.
    wait_for_workers(client)
    workers = sorted(client.scheduler_info()["workers"])
    paths = [str(tmp_path / f"m{i}" / "part.nvf") for i in range(2)]
    home = tmp_path / "home"
    db = ShardedNusterDB.create(client, paths, flat(), placement=[workers[0], workers[1]], home=str(home))
    try:
        assert [w["worker"] for w in db.workers()] == workers
        db.add_items(grid(np.random.default_rng(1), 100), ids=np.arange(100))
        db.snapshot("a")
    finally:
        db.close()
    assert json.loads((home / "nusterdb-shards.json").read_text())["paths"] == paths
    db = ShardedNusterDB.open(client, paths, home=str(home), snapshot="a")
    assert len(db) == 100
    db.close()
    with pytest.raises(ManifestError):
        ShardedNusterDB.open(client, paths[:1], home=str(home))
