"""Threads: many Python threads search one handle while another thread writes through
it; every answer must be one the model allows at some state. Writers of one file wait
for each other."""
import threading
import time

import numpy as np
import pytest

import nusterdb
from nusterdb import NusterDB
from conftest import assert_knn_matches, make_db

DIM = 16
N_BASE = 1500


def test_readers_and_a_writer_share_one_handle(tmp_path):
    rng = np.random.default_rng(77)
    X = rng.standard_normal((N_BASE, DIM)).astype(np.float32)
    Q = rng.standard_normal((40, DIM)).astype(np.float32)
    # The writer's vectors are far from every query (all components about +50), so
    # whatever it has committed, the k nearest of every query are base records.
    far = (50.0 + rng.standard_normal((400, DIM))).astype(np.float32)
    base_ids = np.arange(N_BASE)
    with make_db(tmp_path / "t.nvf", DIM, index="flat") as db:
        db.add_items(X, ids=base_ids)
        want = [db.search(q, k=10) for q in Q]
        for q, w in zip(Q, want):
            assert_knn_matches("euclidean", X, base_ids, q, w, 10)
        want_knn = db.knn(Q, k=10)
        stop = threading.Event()
        errors = []
        counts = []

        def reader(seed):
            r = np.random.default_rng(seed)
            try:
                while not stop.is_set():
                    j = int(r.integers(0, len(Q)))
                    got = db.search(Q[j], k=10)
                    if got != want[j]:
                        errors.append(("search", j, got, want[j]))
                    ids, dist = db.knn(Q, k=10)
                    if not (np.array_equal(ids, want_knn[0]) and np.array_equal(dist, want_knn[1])):
                        errors.append(("knn", ids, dist))
                    n = len(db)
                    if not (N_BASE <= n <= N_BASE + len(far)):
                        errors.append(("count", n))
                    counts.append(n)
                    v = db.get(int(r.integers(0, N_BASE)))
                    if v is None:
                        errors.append(("get", None))
            except Exception as e:  # pragma: no cover - reported below
                errors.append(("exception", repr(e)))

        def writer():
            try:
                for start in range(0, len(far), 50):
                    ids = np.arange(10_000 + start, 10_000 + start + 50)
                    db.add_items(far[start:start + 50], ids=ids)
                    for i in ids[::2]:
                        db.update(int(i), far[start])
                    for i in ids[::5]:
                        db.delete(int(i))
                    db.update_metadata(int(ids[1]), {"w": start})
            except Exception as e:  # pragma: no cover
                errors.append(("writer", repr(e)))

        readers = [threading.Thread(target=reader, args=(s,)) for s in range(4)]
        for t in readers:
            t.start()
        w = threading.Thread(target=writer)
        w.start()
        w.join()
        stop.set()
        for t in readers:
            t.join()
        assert not errors, errors[:3]
        assert len(counts) > 0
        assert len(db) == N_BASE + len(far) - len(far) // 5
        for q, wnt in zip(Q, want):
            assert db.search(q, k=10) == wnt


def test_hnsw_readers_during_inserts(tmp_path):
    rng = np.random.default_rng(78)
    X = rng.standard_normal((1000, DIM)).astype(np.float32)
    more = rng.standard_normal((1000, DIM)).astype(np.float32)
    Q = rng.standard_normal((20, DIM)).astype(np.float32)
    with make_db(tmp_path / "h.nvf", DIM, index="hnsw") as db:
        db.add_items(X, ids=np.arange(1000))
        stop = threading.Event()
        errors = []

        def reader():
            try:
                while not stop.is_set():
                    ids, dist = db.knn(Q, k=10)
                    # well-formed: sorted rows of distinct existing ids with true distances
                    for q, ri, rd in zip(Q, ids, dist):
                        if (ri < 0).any() or len(set(ri.tolist())) != 10:
                            errors.append(("ids", ri))
                        if not np.all(np.diff(rd) >= 0):
                            errors.append(("order", rd))
                        allx = np.concatenate([X, more])
                        true = np.sqrt(((allx[ri] - q) ** 2).sum(axis=1))
                        if not np.allclose(rd, true, rtol=1e-3, atol=1e-3):
                            errors.append(("dist", ri, rd, true))
            except Exception as e:  # pragma: no cover
                errors.append(("exception", repr(e)))

        ts = [threading.Thread(target=reader) for _ in range(3)]
        for t in ts:
            t.start()
        for start in range(0, 1000, 100):
            db.add_items(more[start:start + 100], ids=np.arange(1000 + start, 1100 + start))
        stop.set()
        for t in ts:
            t.join()
        assert not errors, errors[:3]
        assert len(db) == 2000


def test_two_writer_threads_on_one_handle(tmp_path):
    with make_db(tmp_path / "w.nvf", DIM) as db:
        errors = []

        def writer(base):
            r = np.random.default_rng(base)
            try:
                for j in range(100):
                    db.add(base + j, r.standard_normal(DIM).astype(np.float32), {"b": base})
            except Exception as e:  # pragma: no cover
                errors.append(repr(e))

        ts = [threading.Thread(target=writer, args=(b,)) for b in (0, 1000, 2000)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert not errors
        assert len(db) == 300
        assert all(db.get_metadata(b + j).to_dict() == {"b": b} for b in (0, 1000, 2000) for j in range(100))


def test_writers_on_two_handles_wait_for_each_other(tmp_path):
    path = str(tmp_path / "two.nvf")
    make_db(path, DIM).close()
    a, b = NusterDB.open(path), NusterDB.open(path)
    try:
        errors = []

        def writer(db, base):
            r = np.random.default_rng(base)
            try:
                for j in range(0, 200, 20):
                    db.add_items(r.standard_normal((20, DIM)).astype(np.float32),
                                 ids=np.arange(base + j, base + j + 20))
            except Exception as e:  # pragma: no cover
                errors.append(repr(e))

        ts = [threading.Thread(target=writer, args=(a, 0)), threading.Thread(target=writer, args=(b, 5000))]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert not errors, errors
        assert len(a) == 400 and len(b) == 400
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("n_threads", [4])
def test_parallel_searches_equal_serial(tmp_path, n_threads):
    rng = np.random.default_rng(80)
    X = rng.standard_normal((1200, DIM)).astype(np.float32)
    Q = rng.standard_normal((64, DIM)).astype(np.float32)
    with make_db(tmp_path / "p.nvf", DIM, index="hnsw") as db:
        db.add_items(X)
        serial = [db.search(q, k=8) for q in Q]
        results = [None] * len(Q)

        def work(t):
            for j in range(t, len(Q), n_threads):
                results[j] = db.search(Q[j], k=8)

        ts = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert results == serial


def _long_knn_db(tmp_path):
    rng = np.random.default_rng(81)
    db = make_db(tmp_path / "long.nvf", 32)
    db.add_items(rng.standard_normal((20000, 32)).astype(np.float32))
    Q = rng.standard_normal((20000, 32)).astype(np.float32)
    return db, Q


def _run_in_thread(f):
    started = threading.Event()
    out = {}

    def body():
        started.set()
        try:
            out["result"] = f()
        except Exception as e:  # pragma: no cover - reported by the caller
            out["error"] = e

    t = threading.Thread(target=body)
    t.start()
    started.wait()
    return t, out


@pytest.mark.parametrize("call", ["knn", "add_items"])
def test_the_gil_is_released_during_long_calls(call, tmp_path):
    """While another thread is inside a long call, this thread keeps running Python
    code: it counts how many loop turns it gets before the call returns. With the GIL
    held for the call it would get almost none."""
    db, Q = _long_knn_db(tmp_path)
    try:
        if call == "knn":
            f = lambda: db.knn(Q, k=10, threads=1)  # noqa: E731
        else:
            X = np.random.default_rng(82).standard_normal((20000, 32)).astype(np.float32)
            f = lambda: db.add_items(X)  # noqa: E731
        t, out = _run_in_thread(f)
        turns = 0
        while t.is_alive():
            turns += 1
        t.join()
        assert "error" not in out, out
        assert turns > 10_000, turns
    finally:
        db.close()


def test_close_while_another_thread_is_inside_a_call(tmp_path):
    db, Q = _long_knn_db(tmp_path)
    t, out = _run_in_thread(lambda: db.knn(Q, k=10, threads=1))
    try:
        time.sleep(0.3)  # let the call get under way (a delay, not a measurement)
        while t.is_alive() and not getattr(db, "closed", False):
            try:
                db.close()
            except nusterdb.BusyError:
                break
        else:
            pytest.fail("close() succeeded or the call ended before close() was refused")
        assert db.closed is False
        assert len(db) == 20000  # the handle stays open and usable
        with pytest.raises(nusterdb.BusyError):
            db.compact()
    finally:
        t.join()
    assert "error" not in out, out
    assert out["result"][0].shape == (20000, 10)
    db.compact()
    db.close()
    assert db.closed is True


LOCK_HOLDER = """
import sys
import numpy as np
import nusterdb
db = nusterdb.NusterDB.open(sys.argv[1])
X = np.random.default_rng(2).standard_normal((300000, 16)).astype(np.float32)
print("start", flush=True)
try:
    db.add_items(X)  # one long write transaction, holding the writer lock
    print("finished", flush=True)
except KeyboardInterrupt:
    print("interrupted", flush=True)
db.close()
"""


def test_writer_lock_of_another_process(tmp_path):
    """docs/PYTHON.md: a write waits `timeout` seconds for another process's writer
    lock, then raises LockedError with nothing changed; timeout=None waits for good."""
    import os
    import signal
    import subprocess
    import sys
    path = str(tmp_path / "lock.nvf")
    with make_db(path, DIM, index="hnsw") as db:
        db.add(1, np.ones(DIM, np.float32), {"a": 1})
    child = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, path], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        assert child.stdout.readline() == "start\n", child.stderr.read() if child.poll() is not None else ""
        time.sleep(0.5)  # let the child's transaction begin (a delay, not a measurement)
        for t in (0, 0.2):
            with NusterDB.open(path, timeout=t) as db:
                with pytest.raises(nusterdb.LockedError) as e:
                    db.add(2, np.zeros(DIM, np.float32))
                assert isinstance(e.value, OSError)
                with pytest.raises(nusterdb.LockedError):
                    db.update_metadata(1, {"a": 2})
                assert len(db) == 1 and db.get(2) is None
                assert db.get_metadata(1).to_dict() == {"a": 1}
                assert db.search(np.ones(DIM, np.float32), k=1)[0][0] == 1  # reads go on
        with NusterDB.open(path, timeout=None) as db:
            waiter = threading.Thread(target=lambda: db.add(3, np.zeros(DIM, np.float32)))
            waiter.start()
            time.sleep(0.3)
            assert waiter.is_alive()  # still waiting for the lock
            child.send_signal(signal.SIGINT)  # the child's call aborts and frees the lock
            waiter.join(timeout=120)
            assert not waiter.is_alive()
            assert 3 in db and len(db) == 2
        out, err = child.communicate(timeout=120)
        assert out.strip() == "interrupted", (out, err)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
