"""nusterfs: a real mount of a real database, driven with shell tools and Python file
I/O, every answer compared with nvf-tool on the same file (docs/NUSTERFS.md).

Environment: NUSTERFS (the daemon), NVF_TOOL (nvf-tool). Without /dev/fuse or
fusermount3 the module exits 77, which meson counts as a skip (never a silent pass).
After each test the database passes `nvf-tool check`. No test asserts on time.
"""
import errno
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time

import pytest

NUSTERFS = os.environ.get("NUSTERFS", "")
NVF_TOOL = os.environ.get("NVF_TOOL", "")

if not os.path.exists("/dev/fuse") or not shutil.which("fusermount3") or not os.access("/dev/fuse", os.R_OK | os.W_OK):
    print("test_nusterfs: SKIPPED: no usable /dev/fuse or fusermount3 here", file=sys.stderr)
    pytest.exit("no /dev/fuse: the FUSE suite cannot run here", returncode=77)
if not (os.access(NUSTERFS, os.X_OK) and os.access(NVF_TOOL, os.X_OK)):
    pytest.exit("set NUSTERFS and NVF_TOOL to the built programs", returncode=1)

import numpy as np  # noqa: E402  (after the skip: the suite needs no numpy to skip)

DIM = 8


def tool(*args, check=True):
    r = subprocess.run([NVF_TOOL, *map(str, args)], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"nvf-tool {' '.join(map(str, args))}: {r.returncode}: {r.stderr}")
    return r


def tool_json(*args):
    return [json.loads(line) for line in tool(*args).stdout.splitlines() if line.strip()]


def vectors(n, seed=1, dim=DIM):
    return np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)


def make_db(path, n=200, hnsw=False, ids=None, seed=1):
    args = ["create", path, "--dim", DIM]
    if hnsw:
        args += ["--index", "hnsw"]
    tool(*args)
    v = vectors(n, seed)
    src = path + ".src.jsonl"
    with open(src, "w") as f:
        for i in range(n):
            rec = {"id": int(ids[i]) if ids is not None else i, "vector": [float(x) for x in v[i]],
                   "meta": {"n": i, "kind": "even" if i % 2 == 0 else "odd"}}
            f.write(json.dumps(rec) + "\n")
    tool("import", path, src)
    os.unlink(src)
    return v


def wait_for(pred, timeout=10.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class Mount:
    """The daemon in the foreground on a temporary directory; unmounted with
    fusermount3 -u (lazily if busy) in a finally."""

    def __init__(self, db, *opts, expect_clean_exit=True):
        self.db = db
        self.dir = tempfile.mkdtemp(prefix="nusterfs-mnt-")
        self.opts = list(opts)
        self.clean = expect_clean_exit
        self.proc = None

    def start(self):
        args = [NUSTERFS, self.db, self.dir, "-f"]
        if self.opts:
            args += ["-o", ",".join(self.opts)]
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        wait_for(lambda: os.path.ismount(self.dir) or self.proc.poll() is not None, what="the mount")
        if self.proc.poll() is not None:
            raise AssertionError(f"nusterfs exited {self.proc.returncode}: {self.proc.stderr.read()}")
        return self

    def path(self, *p):
        return os.path.join(self.dir, *p)

    def stop(self):
        if self.proc is None:
            return
        r = subprocess.run(["fusermount3", "-u", self.dir], capture_output=True)
        if r.returncode != 0 and os.path.ismount(self.dir):
            subprocess.run(["fusermount3", "-u", "-z", self.dir], capture_output=True)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        err = self.proc.stderr.read()
        self.stderr = err
        rc = self.proc.returncode
        self.proc = None
        wait_for(lambda: not os.path.ismount(self.dir), what="the unmount")
        os.rmdir(self.dir)
        if self.clean:
            assert rc == 0, f"nusterfs exited {rc}: {err}"
            assert "AddressSanitizer" not in err and "LeakSanitizer" not in err, err

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


@pytest.fixture
def db(tmp_path):
    path = str(tmp_path / "db.nvf")
    v = make_db(path)
    yield path, v
    r = tool("check", path, check=False)
    assert r.returncode == 0, r.stdout + r.stderr


def read(path, mode="r"):
    with open(path, mode) as f:
        return f.read()


def write(path, data, mode="w"):
    """Write and close: the errno of the close (where the query or import runs)
    comes back as OSError."""
    with open(path, mode) as f:
        f.write(data)


def errno_of(fn):
    try:
        fn()
    except OSError as e:
        return e.errno
    return 0


# ---- layout, reads ---------------------------------------------------------------


def test_layout_sizes_and_reads_match_the_tool(db):
    path, v = db
    with Mount(path) as m:
        assert sorted(os.listdir(m.dir)) == sorted(
            [".snapshots", "errors", "info", "ingest", "knn", "meta", "queries", "vectors"])
        info = json.loads(read(m.path("info")))
        assert info["dimension"] == DIM and info["count"] == 200 and info["metric"] == "euclidean"
        tinfo = json.loads(tool("info", path, "--json").stdout)
        assert info["txnid"] == tinfo.get("txnid", info["txnid"])
        assert os.stat(m.path("info")).st_size == len(read(m.path("info"), "rb"))
        ids = sorted(int(x) for x in os.listdir(m.path("vectors")))
        assert ids == list(range(200))
        assert sorted(os.listdir(m.path("meta"))) == sorted(f"{i}.json" for i in range(200))
        for i in (0, 7, 199):
            st = os.stat(m.path("vectors", str(i)))
            assert st.st_size == DIM * 4
            got = np.frombuffer(read(m.path("vectors", str(i)), "rb"), dtype=np.float32)
            rec = json.loads(tool("get", path, i).stdout)
            assert np.array_equal(got, np.array(rec["vector"], dtype=np.float32))
            assert np.array_equal(got, v[i])
            text = read(m.path("meta", f"{i}.json"))
            assert os.stat(m.path("meta", f"{i}.json")).st_size == len(text.encode())
            assert json.loads(text) == rec["meta"] == {"n": i, "kind": "even" if i % 2 == 0 else "odd"}
        # shell tools see the same
        out = subprocess.run(["find", m.dir, "-path", "*/vectors/*", "-type", "f"], capture_output=True,
                             text=True).stdout.split()
        assert len(out) == 200
        assert subprocess.run(["cat", m.path("meta", "3.json")], capture_output=True, text=True).stdout == \
            read(m.path("meta", "3.json"))
        # inode numbers are stable and distinct
        a = os.stat(m.path("vectors", "5")).st_ino
        assert a == os.stat(m.path("vectors", "5")).st_ino != os.stat(m.path("meta", "5.json")).st_ino
        assert errno_of(lambda: os.stat(m.path("vectors", "200"))) == errno.ENOENT
        assert errno_of(lambda: os.stat(m.path("vectors", "007"))) == errno.ENOENT
        assert errno_of(lambda: os.stat(m.path("errors"))) == 0


def test_listing_streams_over_dense_and_sparse_ids(tmp_path):
    path = str(tmp_path / "big.nvf")
    n = 30000
    tool("create", path, "--dim", 2)
    ids = list(range(n - 500)) + [10**12 + 7 * i for i in range(500)]
    with open(tmp_path / "r.jsonl", "w") as f:
        for i in ids:
            f.write(json.dumps({"id": i, "vector": [float(i % 97), 1.0]}) + "\n")
    tool("import", path, tmp_path / "r.jsonl")
    with Mount(path) as m:
        # os.scandir reads in kernel-sized chunks: each resumes at its offset
        names = [e.name for e in os.scandir(m.path("vectors"))]
        assert len(names) == len(set(names)) == n
        assert sorted(int(x) for x in names) == sorted(ids)
        ls = subprocess.run(["ls", "-f", m.path("meta")], capture_output=True, text=True).stdout.split()
        assert len([x for x in ls if x.endswith(".json")]) == n
        assert os.stat(m.path("vectors", str(10**12 + 7 * 499))).st_size == 8
    assert tool("check", path).returncode == 0


# ---- writes ----------------------------------------------------------------------


def test_vector_and_document_writes(db):
    path, v = db
    with Mount(path) as m:
        new = np.arange(DIM, dtype=np.float32)
        write(m.path("vectors", "5"), new.tobytes(), "wb")
        assert json.loads(tool("get", path, 5).stdout)["vector"] == [float(x) for x in new]
        # a new record by cp, then its document
        src = os.path.join(os.path.dirname(path), "v.bin")
        (new + 1).tofile(src)
        subprocess.run(["cp", src, m.path("vectors", "1000")], check=True)
        assert json.loads(tool("get", path, 1000).stdout)["vector"] == [float(x) for x in new + 1]
        write(m.path("meta", "1000.json"), '{"b": 2, "a": [1, "x"]}\n')
        assert json.loads(tool("meta", "get", path, 1000).stdout) == {"a": [1, "x"], "b": 2}
        assert json.loads(read(m.path("meta", "1000.json"))) == {"a": [1, "x"], "b": 2}
        # part of a vector, in place
        with open(m.path("vectors", "5"), "r+b") as f:
            f.seek(4)
            f.write(struct.pack("<f", 42.0))
        assert json.loads(tool("get", path, 5).stdout)["vector"][1] == 42.0
        # rm deletes the record
        subprocess.run(["rm", m.path("vectors", "7")], check=True)
        assert tool("get", path, 7, check=False).returncode != 0
        wait_for(lambda: "7" not in os.listdir(m.path("vectors")), what="the listing without 7")
        assert errno_of(lambda: os.unlink(m.path("meta", "8.json"))) == errno.EPERM
        assert errno_of(lambda: write(m.path("meta", "99999.json"), "{}")) == errno.ENOENT


def test_bad_writes_change_nothing(db):
    path, v = db
    with Mount(path, "max_query=4096") as m:
        before = tool("get", path, 3).stdout
        # a partial vector, then close
        assert errno_of(lambda: write(m.path("vectors", "3"), b"\0" * 5, "wb")) == errno.EINVAL
        # NaN
        bad = v[3].copy()
        bad[2] = np.nan
        assert errno_of(lambda: write(m.path("vectors", "3"), bad.tobytes(), "wb")) == errno.EINVAL
        assert tool("get", path, 3).stdout == before
        # a new id that is not a number
        assert errno_of(lambda: write(m.path("vectors", "x1"), b"\0" * DIM * 4, "wb")) == errno.EINVAL
        # malformed documents
        doc = tool("meta", "get", path, 3).stdout
        assert errno_of(lambda: write(m.path("meta", "3.json"), "{bad")) == errno.EINVAL
        assert errno_of(lambda: write(m.path("meta", "3.json"), "[1, 2]")) == errno.EINVAL
        assert tool("meta", "get", path, 3).stdout == doc
        # read-only paths
        assert errno_of(lambda: write(m.path("info"), "x")) == errno.EROFS
        assert errno_of(lambda: write(m.path("knn", "3", "1.json"), "x")) == errno.EROFS
        assert errno_of(lambda: write(m.path("newfile"), "x")) == errno.EPERM
        assert errno_of(lambda: os.mkdir(m.path("vectors", "d"))) == errno.EPERM
        assert errno_of(lambda: os.chmod(m.path("vectors", "3"), 0o600)) == errno.EPERM
        errors = read(m.path("errors"))
        assert "vectors/3: 5 bytes written" in errors and "NaN" in errors and "meta/3.json" in errors
        assert all(line.count("\n") == 0 for line in errors.splitlines())


# ---- queries ---------------------------------------------------------------------


def search_tool(path, qs, k, *extra):
    qf = os.path.join(os.path.dirname(path), "q.npy")
    np.save(qf, np.asarray(qs, dtype=np.float32).reshape(-1, DIM))
    out = tool_json("search", path, "--query-file", qf, "-k", k, "--json", *extra)
    os.unlink(qf)
    return out


def test_json_queries_match_the_tool(db):
    path, v = db
    with Mount(path) as m:
        q = v[10] + 0.01
        subprocess.run(["sh", "-c", f"echo '{json.dumps({'vector': [float(x) for x in q], 'k': 5})}' > "
                        f"{m.path('queries', 'q.json')}"], check=True)
        res = json.loads(subprocess.run(["cat", m.path("queries", "q.result.json")], capture_output=True,
                                        text=True, check=True).stdout)
        ref = search_tool(path, [q], 5)[0]
        assert res["ids"] == ref["ids"]
        assert np.allclose(res["distances"], ref["distances"], rtol=1e-6)
        assert os.stat(m.path("queries", "q.result.json")).st_size == len(read(m.path("queries", "q.result.json")))
        # a batch with a filter and documents
        qs = v[:4] + 0.02
        write(m.path("queries", "b.json"), json.dumps({"vectors": qs.tolist(), "k": 3, "filter": "kind = 'even'",
                                                       "documents": True}))
        res = json.loads(read(m.path("queries", "b.result.json")))
        ref = search_tool(path, qs, 3, "--filter", "kind = 'even'")
        assert [r["ids"] for r in res["results"]] == [r["ids"] for r in ref]
        for r in res["results"]:
            assert all(d["kind"] == "even" and d["n"] == i for d, i in zip(r["documents"], r["ids"]))
        # rewritten later (O_TRUNC): runs again
        write(m.path("queries", "q.json"), json.dumps({"vector": v[20].tolist(), "k": 1}))
        assert json.loads(read(m.path("queries", "q.result.json")))["ids"] == [20]
        # a flush without data does nothing; the result stays until removed
        fd = os.open(m.path("queries", "q.json"), os.O_RDONLY)
        os.close(fd)
        assert json.loads(read(m.path("queries", "q.result.json")))["ids"] == [20]
        subprocess.run(["sh", "-c", f"rm {m.path('queries')}/q*"], check=True)
        assert sorted(os.listdir(m.path("queries"))) == ["b.json", "b.result.json"]


def test_binary_queries_with_sidecar(db):
    path, v = db
    with Mount(path, "k=4") as m:
        qs = v[30:40] + 0.001
        src = os.path.join(os.path.dirname(path), "qs.npy")
        np.save(src, qs)
        shutil.copy(src, m.path("queries", "batch.npy"))
        ids = np.load(m.path("queries", "batch.ids.npy"))
        dists = np.load(m.path("queries", "batch.dists.npy"))
        ref = search_tool(path, qs, 4)
        assert ids.shape == (10, 4) and ids.dtype == np.int64 and dists.dtype == np.float32
        assert ids.tolist() == [r["ids"] for r in ref]
        assert np.allclose(dists, [r["distances"] for r in ref], rtol=1e-5)
        res = json.loads(read(m.path("queries", "batch.result.json")))
        assert [r["ids"] for r in res["results"]] == ids.tolist()
        # .fvecs with a sidecar: k 2
        write(m.path("queries", "f.opts.json"), '{"k": 2}')
        assert not os.path.exists(m.path("queries", "f.opts.result.json"))
        with open(m.path("queries", "f.fvecs"), "wb") as f:
            for row in qs[:3]:
                f.write(struct.pack("<i", DIM) + row.tobytes())
        assert np.load(m.path("queries", "f.ids.npy")).tolist() == [r["ids"][:2] for r in ref[:3]]


def test_bad_queries(db):
    path, v = db
    with Mount(path, "max_query=65536", "max_results=3") as m:
        qd = m.path("queries")
        cases = {
            "malformed.json": "{\"vector\": [1, 2",
            "dim.json": json.dumps({"vector": [1.0, 2.0], "k": 3}),
            "key.json": json.dumps({"vector": v[0].tolist(), "kk": 3}),
            "k0.json": json.dumps({"vector": v[0].tolist(), "k": 0}),
            "filter.json": json.dumps({"vector": v[0].tolist(), "filter": "kind ="}),
            "both.json": json.dumps({"vector": v[0].tolist(), "vectors": [v[0].tolist()]}),
        }
        for name, text in cases.items():
            assert errno_of(lambda: write(os.path.join(qd, name), text)) == errno.EINVAL, name
            err = read(os.path.join(qd, name[:-5] + ".error"))
            assert err.count("\n") == 1 and len(err) > 5, (name, err)
        # NaN in a binary batch, a file that is not what its name says
        nanq = v[:2].copy()
        nanq[1, 3] = np.nan
        src = os.path.join(os.path.dirname(path), "nan.npy")
        np.save(src, nanq)
        assert errno_of(lambda: shutil.copy(src, os.path.join(qd, "nan.npy"))) == errno.EINVAL
        assert "NaN" in read(os.path.join(qd, "nan.error"))
        assert errno_of(lambda: write(os.path.join(qd, "fake.npy"), "not numpy")) == errno.EINVAL
        # larger than max_query: EFBIG at the write that passes it
        assert errno_of(lambda: write(os.path.join(qd, "huge.json"), " " * 70000)) == errno.EFBIG
        # a name that is no query's is a plain file (for a rename later); outputs written by hand
        write(os.path.join(qd, "notes.txt"), "x")
        assert read(os.path.join(qd, "notes.txt")) == "x" and not os.path.exists(os.path.join(qd, "notes.error"))
        assert errno_of(lambda: write(os.path.join(qd, "x.result.json"), "x")) == errno.EINVAL
        assert errno_of(lambda: write(os.path.join(qd, "nan.error"), "x")) == errno.EROFS
        # odd names work
        for name in ("with space.json", "ünï cödé.json", "quote'\"$(x).json", "-dash.json"):
            write(os.path.join(qd, name), json.dumps({"vector": v[1].tolist(), "k": 1}))
            assert json.loads(read(os.path.join(qd, name[:-5] + ".result.json")))["ids"] == [1]
        # at most max_results queries keep results: the oldest went
        runs = [n for n in os.listdir(qd) if n.endswith(".result.json") or n.endswith(".error")]
        assert len(runs) <= 3
        assert "with space.result.json" not in os.listdir(qd)
        assert "queries/dim.json" in read(m.path("errors"))


def test_concurrent_queries_from_many_processes(db):
    path, v = db
    with Mount(path) as m:
        script = r"""
import json, os, sys
d, start, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
vecs = json.loads(sys.stdin.read())
for i in range(start, start + n):
    p = os.path.join(d, f"c{i}.json")
    with open(p, "w") as f:
        json.dump({"vector": vecs[i], "k": 3}, f)
    with open(os.path.join(d, f"c{i}.result.json")) as f:
        r = json.load(f)
    assert r["ids"][0] == i, (i, r)
    os.unlink(p)
    os.unlink(os.path.join(d, f"c{i}.result.json"))
print("ok")
"""
        vecs = json.dumps(v.tolist())
        procs = [subprocess.Popen([sys.executable, "-c", script, m.path("queries"), str(40 * j), "40"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for j in range(4)]
        outs = [p.communicate(vecs) for p in procs]
        assert all(p.returncode == 0 for p in procs), outs
        assert os.listdir(m.path("queries")) == []


def test_knn_files(tmp_path):
    path = str(tmp_path / "h.nvf")
    v = make_db(path, n=300, hnsw=True)
    with Mount(path) as m:
        for i in (0, 17, 299):
            res = json.loads(read(m.path("knn", "5", f"{i}.json")))
            assert res["id"] == i and res["k"] == 5 and i not in res["ids"]
            ref = search_tool(path, [v[i]], 6)[0]
            assert res["ids"] == [x for x in ref["ids"] if x != i][:5]
            assert os.stat(m.path("knn", "5", f"{i}.json")).st_size == len(read(m.path("knn", "5", f"{i}.json")))
        assert errno_of(lambda: read(m.path("knn", "0", "1.json"))) == errno.ENOENT
        assert errno_of(lambda: read(m.path("knn", "5", "300.json"))) == errno.ENOENT
        assert len(os.listdir(m.path("knn", "3"))) == 300
    assert tool("check", path).returncode == 0


# ---- ingest ----------------------------------------------------------------------


def test_ingest_accepts_what_export_writes(db, tmp_path):
    path, v = db
    other = str(tmp_path / "other.nvf")
    ov = make_db(other, n=50, seed=7)
    tool("export", other, tmp_path / "o.npy")
    tool("export", other, tmp_path / "o.fvecs")
    tool("meta", "set", other, 3, '{"from": "other"}')
    tool("tag", "add", other, 3, "t1")
    tool("delete", other, 0)
    tool("export", other, tmp_path / "o.jsonl")
    with Mount(path) as m:
        subprocess.run(["cp", tmp_path / "o.npy", m.path("ingest")], check=True)
        assert os.listdir(m.path("ingest")) == []
        assert json.loads(read(m.path("info")))["count"] == 250
        assert np.array_equal(np.float32(json.loads(tool("get", path, 200).stdout)["vector"]), ov[0])
        shutil.copyfile(tmp_path / "o.fvecs", m.path("ingest", "o.fvecs"))
        assert np.array_equal(np.float32(json.loads(tool("get", path, 299).stdout)["vector"]), ov[49])
        # jsonl carries ids: these collide with existing ones -> refused whole
        assert errno_of(lambda: shutil.copyfile(tmp_path / "o.jsonl", m.path("ingest", "o.jsonl"))) == errno.EINVAL
        err = read(m.path("ingest", "o.jsonl.error"))
        assert err.startswith("ingest/o.jsonl") and err.count("\n") == 1
        assert json.loads(tool("info", path, "--json").stdout)["count"] == 300
        os.unlink(m.path("ingest", "o.jsonl.error"))
        # the same file with fresh ids
        lines = [json.loads(x) for x in open(tmp_path / "o.jsonl")]
        with open(tmp_path / "n.jsonl", "w") as f:
            for r in lines:
                r["id"] += 5000
                f.write(json.dumps(r) + "\n")
        shutil.copyfile(tmp_path / "n.jsonl", m.path("ingest", "n.jsonl"))
        assert json.loads(tool("meta", "get", path, 5003, "--record").stdout)["tags"] == ["t1"]
        assert json.loads(read(m.path("meta", "5003.json"))) == {"from": "other"}
        # not what the name says; a bad vector
        assert errno_of(lambda: write(m.path("ingest", "x.npy"), "hello")) == errno.EINVAL
        assert "npy" in read(m.path("ingest", "x.npy.error"))
        bad = np.ones((3, DIM), dtype=np.float32)
        bad[2, 1] = np.inf
        np.save(tmp_path / "inf.npy", bad)
        assert errno_of(lambda: shutil.copyfile(tmp_path / "inf.npy", m.path("ingest", "inf.npy"))) == errno.EINVAL
        assert "record 2" in read(m.path("ingest", "inf.npy.error"))
        np.save(tmp_path / "d.npy", np.ones((2, DIM + 1), dtype=np.float32))
        assert errno_of(lambda: shutil.copyfile(tmp_path / "d.npy", m.path("ingest", "d.npy"))) == errno.EINVAL
        # a name that says no format: kept in the spool, not imported (a rename may import it)
        write(m.path("ingest", "x.txt"), "x")
        assert "x.txt" in os.listdir(m.path("ingest")) and read(m.path("ingest", "x.txt")) == "x"
        assert errno_of(lambda: write(m.path("ingest", "y.error"), "x")) == errno.EINVAL
        assert json.loads(tool("info", path, "--json").stdout)["count"] == 349


# ---- rename -----------------------------------------------------------------------

RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2


def renameat2(old, new, flags):
    """renameat2(2) through libc: the errno, 0 on success."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    at_fdcwd = -100
    rc = libc.renameat2(at_fdcwd, os.fsencode(old), at_fdcwd, os.fsencode(new), ctypes.c_uint(flags))
    return ctypes.get_errno() if rc != 0 else 0


def count_of(path):
    return json.loads(tool("info", path, "--json").stdout)["count"]


def test_rename_in_queries_runs_the_query(db, tmp_path):
    path, v = db
    with Mount(path) as m:
        qd = m.path("queries")
        q = lambda name: os.path.join(qd, name)  # noqa: E731
        # written under a temporary name: kept, nothing runs; mv to NAME.json runs it
        write(q("q.tmp"), json.dumps({"vector": (v[10] + 0.01).tolist(), "k": 3}))
        assert os.listdir(qd) == ["q.tmp"]
        subprocess.run(["mv", q("q.tmp"), q("q.json")], check=True)
        assert sorted(os.listdir(qd)) == ["q.json", "q.result.json"]
        ref = search_tool(path, [v[10] + 0.01], 3)[0]
        assert json.loads(read(q("q.result.json")))["ids"] == ref["ids"]
        # os.replace over an existing query runs it again: the file and its outputs replaced
        text = json.dumps({"vector": v[20].tolist(), "k": 1})
        write(q("r.tmp"), text)
        ino = os.stat(q("r.tmp")).st_ino
        os.replace(q("r.tmp"), q("q.json"))
        assert sorted(os.listdir(qd)) == ["q.json", "q.result.json"]
        assert json.loads(read(q("q.result.json")))["ids"] == [20]
        assert read(q("q.json")) == text and os.stat(q("q.json")).st_ino == ino
        # rsync's way: hidden temporary names, a sidecar then a binary batch
        write(q(".b.opts.json.x1"), '{"k": 2}')
        os.rename(q(".b.opts.json.x1"), q("b.opts.json"))
        np.save(tmp_path / "qs.npy", v[30:33] + 0.001)
        shutil.copyfile(tmp_path / "qs.npy", q(".b.npy.Xy12"))
        assert not os.path.exists(q("b.result.json"))
        os.rename(q(".b.npy.Xy12"), q("b.npy"))
        ids = np.load(q("b.ids.npy"))
        assert ids.shape == (3, 2) and ids[:, 0].tolist() == [30, 31, 32]
        # between names that are no query's: only renamed
        write(q("notes.txt"), "hello")
        os.rename(q("notes.txt"), q("notes.old"))
        assert read(q("notes.old")) == "hello" and not os.path.exists(q("notes.txt"))
        os.rename(q("q.result.json"), q("q.saved"))  # an output under another name stays read-only
        assert json.loads(read(q("q.saved")))["ids"] == [20]
        assert errno_of(lambda: write(q("q.saved"), "x")) == errno.EROFS
        # a bad query at the rename: EBADMSG (the close's EINVAL), NAME.error, the old name kept
        write(q("bad.tmp"), json.dumps({"vector": [1.0, 2.0]}))
        assert errno_of(lambda: os.rename(q("bad.tmp"), q("bad.json"))) == errno.EBADMSG
        assert os.path.exists(q("bad.tmp")) and not os.path.exists(q("bad.json"))
        err = read(q("bad.error"))
        assert err.count("\n") == 1 and "components" in err
        r = subprocess.run(["mv", q("bad.tmp"), q("bad.json")], capture_output=True, text=True)
        assert r.returncode != 0 and "Bad message" in r.stderr, r.stderr
        # RENAME_NOREPLACE over an existing name, RENAME_EXCHANGE, the daemon's names
        write(q("n.tmp"), text)
        assert renameat2(q("n.tmp"), q("q.json"), RENAME_NOREPLACE) == errno.EEXIST
        assert renameat2(q("n.tmp"), q("q.json"), RENAME_EXCHANGE) == errno.EINVAL
        assert renameat2(q("n.tmp"), q("n.json"), RENAME_NOREPLACE) == 0
        assert json.loads(read(q("n.result.json")))["ids"] == [20]
        write(q("o.tmp"), text)
        assert errno_of(lambda: os.rename(q("o.tmp"), q("o.result.json"))) == errno.EPERM
        assert errno_of(lambda: os.rename(q("o.tmp"), q("bad.error"))) == errno.EPERM
        assert errno_of(lambda: os.rename(q("n.result.json"), q("n2.json"))) == errno.EPERM
        assert errno_of(lambda: os.rename(q("missing.tmp"), q("m.json"))) == errno.ENOENT
        # mv from a real directory (the kernel says EXDEV; mv copies, the close runs it)
        (tmp_path / "t.json").write_text(json.dumps({"vector": v[5].tolist(), "k": 1}))
        subprocess.run(["mv", tmp_path / "t.json", qd], check=True)
        assert not (tmp_path / "t.json").exists()
        assert json.loads(read(q("t.result.json")))["ids"] == [5]
    assert tool("check", path).returncode == 0


def test_rename_in_ingest_imports(db, tmp_path):
    path, v = db
    other = str(tmp_path / "other.nvf")
    ov = make_db(other, n=50, seed=7)
    tool("export", other, tmp_path / "o.npy")
    tool("export", other, tmp_path / "o.fvecs")
    with Mount(path) as m:
        ing = lambda name: m.path("ingest", name)  # noqa: E731
        # spooled under a name that says no format, imported at the rename
        shutil.copyfile(tmp_path / "o.npy", ing("o.part"))
        assert os.listdir(m.path("ingest")) == ["o.part"] and count_of(path) == 200
        os.rename(ing("o.part"), ing("o.npy"))
        assert os.listdir(m.path("ingest")) == [] and count_of(path) == 250
        assert np.array_equal(np.float32(json.loads(tool("get", path, 200).stdout)["vector"]), ov[0])
        assert tool("check", path).returncode == 0
        # renamed while still open for writing: imported at the writer's close, under the new name
        data = (tmp_path / "o.npy").read_bytes()
        # (no subprocess meanwhile: a child's copy of the descriptor closes too, and
        # the first close after the data is the one that imports)
        with open(ing("w.tmp"), "wb", buffering=0) as f:
            f.write(data[:100])
            os.rename(ing("w.tmp"), ing("w.npy"))
            assert os.listdir(m.path("ingest")) == ["w.npy"]
            assert json.loads(read(m.path("info")))["count"] == 250
            f.write(data[100:])
        assert os.listdir(m.path("ingest")) == [], read(ing("w.npy.error"))
        assert count_of(path) == 300
        assert tool("check", path).returncode == 0
        # a file that is not what the new name says: EBADMSG, NAME.error, nothing imported,
        # the file where it was
        write(ing("bad.part"), "hello")
        assert errno_of(lambda: os.rename(ing("bad.part"), ing("bad.npy"))) == errno.EBADMSG
        assert sorted(os.listdir(m.path("ingest"))) == ["bad.npy.error", "bad.part"]
        assert "npy" in read(ing("bad.npy.error")) and count_of(path) == 300
        assert errno_of(lambda: os.rename(ing("bad.part"), ing("x.error"))) == errno.EPERM
        assert errno_of(lambda: os.rename(ing("bad.npy.error"), ing("x.npy"))) == errno.EPERM
        # over an existing name: replaced, imported
        shutil.copyfile(tmp_path / "o.fvecs", ing("f.part"))
        os.replace(ing("f.part"), ing("bad.part"))
        assert sorted(os.listdir(m.path("ingest"))) == ["bad.npy.error", "bad.part"]
        assert renameat2(ing("bad.part"), ing("bad.npy.error"), RENAME_NOREPLACE) == errno.EEXIST
        os.rename(ing("bad.part"), ing("f.fvecs"))
        assert sorted(os.listdir(m.path("ingest"))) == ["bad.npy.error"] and count_of(path) == 350
        # mv from a real directory: the kernel's EXDEV, mv copies, the close imports
        shutil.copyfile(tmp_path / "o.npy", tmp_path / "mv.npy")
        subprocess.run(["mv", tmp_path / "mv.npy", m.path("ingest")], check=True)
        assert not (tmp_path / "mv.npy").exists()
        assert sorted(os.listdir(m.path("ingest"))) == ["bad.npy.error"] and count_of(path) == 400
    assert tool("check", path).returncode == 0


def test_rename_elsewhere_is_refused(db, tmp_path):
    path, v = db
    with Mount(path) as m:
        os.mkdir(m.path(".snapshots", "s"))
        # across directories: EXDEV, and mv falls back to copy and unlink, which works
        np.save(tmp_path / "d.npy", v[:10] + 1)
        shutil.copyfile(tmp_path / "d.npy", m.path("queries", "d.bin"))
        assert errno_of(lambda: os.rename(m.path("queries", "d.bin"), m.path("ingest", "d.npy"))) == errno.EXDEV
        assert errno_of(lambda: os.rename(m.path("vectors", "1"), m.path("meta", "1.json"))) == errno.EXDEV
        assert errno_of(lambda: os.rename(m.path("vectors", "1"), m.path("queries", "1.npy"))) == errno.EXDEV
        subprocess.run(["mv", m.path("queries", "d.bin"), m.path("ingest", "d.npy")], check=True)
        assert os.listdir(m.path("queries")) == [] and os.listdir(m.path("ingest")) == []
        assert count_of(path) == 210
        assert tool("check", path).returncode == 0
        # ids, documents, snapshot names and the root's names are not renamed: EPERM
        for a, b in (("vectors/1", "vectors/1000"), ("meta/1.json", "meta/2.json"), ("info", "info2"),
                     ("vectors", "vecs"), (".snapshots/s", ".snapshots/t")):
            assert errno_of(lambda: os.rename(m.path(a), m.path(b))) == errno.EPERM, a
        # read-only paths: EROFS
        for a, b in (("knn/3/1.json", "knn/3/2.json"), (".snapshots/s/vectors/1", ".snapshots/s/vectors/9"),
                     (".snapshots/s/info", ".snapshots/s/x")):
            assert errno_of(lambda: os.rename(m.path(a), m.path(b))) == errno.EROFS, a
        assert np.array_equal(np.frombuffer(read(m.path("vectors", "1"), "rb"), np.float32), v[1])
        assert not os.path.exists(m.path("vectors", "1000"))
        assert "s" in tool("snapshot", "list", path).stdout
        os.rmdir(m.path(".snapshots", "s"))


# ---- snapshots -------------------------------------------------------------------


def test_snapshots_by_mkdir_and_rmdir(db):
    path, v = db
    with Mount(path) as m:
        os.mkdir(m.path(".snapshots", "before"))
        assert [s["name"] for s in json.loads(tool("snapshot", "list", path, "--json").stdout)] == ["before"] or \
            "before" in tool("snapshot", "list", path).stdout
        assert errno_of(lambda: os.mkdir(m.path(".snapshots", "before"))) == errno.EEXIST
        assert errno_of(lambda: os.rmdir(m.path(".snapshots", "missing"))) == errno.ENOENT
        tool("delete", path, 1, 2, 3)
        tool("snapshot", "create", path, "by-tool")
        wait_for(lambda: sorted(os.listdir(m.path(".snapshots"))) == ["before", "by-tool"], what="the listing")
        snap = m.path(".snapshots", "before")
        assert sorted(os.listdir(snap)) == ["info", "knn", "meta", "vectors"]
        assert len(os.listdir(m.path(".snapshots", "before", "vectors"))) == 200
        assert json.loads(read(os.path.join(snap, "info")))["count"] == 200
        assert np.array_equal(np.frombuffer(read(os.path.join(snap, "vectors", "2"), "rb"), np.float32), v[2])
        assert errno_of(lambda: os.stat(m.path("vectors", "2"))) == errno.ENOENT
        assert errno_of(lambda: write(os.path.join(snap, "vectors", "2"), v[2].tobytes(), "wb")) == errno.EROFS
        assert errno_of(lambda: write(os.path.join(snap, "meta", "4.json"), "{}")) == errno.EROFS
        assert errno_of(lambda: os.unlink(os.path.join(snap, "vectors", "4"))) == errno.EROFS
        assert json.loads(read(os.path.join(snap, "knn", "2", "5.json")))["k"] == 2
        os.rmdir(m.path(".snapshots", "before"))
        assert "before" not in tool("snapshot", "list", path).stdout
        assert errno_of(lambda: os.mkdir(m.path(".snapshots", "a\nb"))) == errno.EINVAL


def test_read_only_mount(db):
    path, v = db
    with Mount(path, "ro") as m:
        assert errno_of(lambda: write(m.path("vectors", "1"), v[0].tobytes(), "wb")) == errno.EROFS
        assert errno_of(lambda: write(m.path("meta", "1.json"), "{}")) == errno.EROFS
        assert errno_of(lambda: os.unlink(m.path("vectors", "1"))) == errno.EROFS
        assert errno_of(lambda: os.mkdir(m.path(".snapshots", "s"))) == errno.EROFS
        assert errno_of(lambda: write(m.path("ingest", "a.npy"), "x")) == errno.EROFS
        assert errno_of(lambda: os.rename(m.path("vectors", "1"), m.path("vectors", "500"))) == errno.EROFS
        write(m.path("queries", "r.tmp"), json.dumps({"vector": v[8].tolist(), "k": 1}))
        os.rename(m.path("queries", "r.tmp"), m.path("queries", "r.json"))
        assert json.loads(read(m.path("queries", "r.result.json")))["ids"] == [8]
        write(m.path("queries", "q.json"), json.dumps({"vector": v[9].tolist(), "k": 1}))
        assert json.loads(read(m.path("queries", "q.result.json")))["ids"] == [9]
        assert json.loads(read(m.path("info")))["read_only"] is True


# ---- other processes, compaction, deletion ------------------------------------------


def test_other_writers_are_seen(db):
    path, v = db
    # the kernel may cache for a minute: only the watcher's invalidation shows changes
    with Mount(path, "cache_timeout=60") as m:
        assert os.stat(m.path("meta", "4.json")).st_size > 0
        os.stat(m.path("vectors", "4"))
        assert "500" not in os.listdir(m.path("vectors"))
        tool("put", path, 500, "--vector", json.dumps(v[0].tolist()), "--meta", '{"new": true}')
        tool("delete", path, 4)
        tool("meta", "set", path, 5, '{"changed": 1}')
        wait_for(lambda: os.path.exists(m.path("vectors", "500")), what="the new record")
        wait_for(lambda: not os.path.exists(m.path("vectors", "4")), what="the deleted record")
        wait_for(lambda: read(m.path("meta", "5.json")) == '{"changed":1}\n', what="the new document")
        assert json.loads(read(m.path("info")))["count"] == 200
        # a writer through the Python module (libnvf in this process), when built
        try:
            import nusterdb
        except ImportError:
            return
        d = nusterdb.NusterDB(path)
        d.upsert(600, (v[2] * 2).tolist(), {"py": 1})
        d.close()
        wait_for(lambda: os.path.exists(m.path("vectors", "600")), what="the Python writer's record")
        assert json.loads(read(m.path("meta", "600.json"))) == {"py": 1}
        assert np.allclose(np.frombuffer(read(m.path("vectors", "600"), "rb"), np.float32), v[2] * 2)


def test_compaction_and_replacement_under_the_mount(db, tmp_path):
    path, v = db
    with Mount(path) as m:
        tool("delete", path, 10, 11)
        tool("compact", path)
        # the next operations meet NVF_ESTALE, reopen, and carry on
        assert json.loads(read(m.path("info")))["count"] == 198
        assert np.array_equal(np.frombuffer(read(m.path("vectors", "12"), "rb"), np.float32), v[12])
        write(m.path("meta", "12.json"), '{"after": "compact"}')
        assert json.loads(tool("meta", "get", path, 12).stdout) == {"after": "compact"}
        write(m.path("queries", "q.json"), json.dumps({"vector": v[13].tolist(), "k": 1}))
        assert json.loads(read(m.path("queries", "q.result.json")))["ids"] == [13]
    # deleted under the mount: reads go on, writes fail with EIO and say why
    with Mount(path) as m:
        os.stat(m.path("vectors", "12"))
        keep = str(tmp_path / "keep.nvf")
        os.link(path, keep)
        os.unlink(path)
        wait_for(lambda: "was deleted" in read(m.path("errors")), what="the deletion noticed")
        assert errno_of(lambda: write(m.path("meta", "12.json"), "{}")) == errno.EIO
        assert len(read(m.path("vectors", "12"), "rb")) == DIM * 4
        os.link(keep, path)
    assert tool("check", path).returncode == 0


# ---- crashes, stale mounts -----------------------------------------------------------


def test_kill9_mid_ingest_is_whole_or_absent_and_stale_mount_is_reported(db, tmp_path):
    path, v = db
    n = 150000
    big = np.random.default_rng(3).normal(size=(n, DIM)).astype(np.float32)
    np.save(tmp_path / "big.npy", big)
    m = Mount(path, expect_clean_exit=False).start()
    try:
        cp = subprocess.Popen(["cp", tmp_path / "big.npy", m.path("ingest", "big.npy")], stderr=subprocess.PIPE)
        size = os.path.getsize(tmp_path / "big.npy")
        # wait until the whole file is in the spool (the import runs at the close)
        wait_for(lambda: os.path.exists(m.path("ingest", "big.npy")) and
                 os.stat(m.path("ingest", "big.npy")).st_size == size or cp.poll() is not None, what="the copy")
        time.sleep(0.05)
        m.proc.send_signal(signal.SIGKILL)
        m.proc.wait()
        cp.wait()
        # the mount point is stale now: a new daemon says so
        r = subprocess.run([NUSTERFS, path, m.dir, "-f"], capture_output=True, text=True, timeout=20)
        assert r.returncode == 1 and "Transport endpoint is not connected" in r.stderr and "fusermount3 -u" in r.stderr
    finally:
        m.stop()
    count = json.loads(tool("info", path, "--json").stdout)["count"]
    assert count in (200, 200 + n)


def test_second_user_sees_the_file_mode(db, tmp_path):
    path, v = db
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to act as a second user")
    os.chmod(path, 0o644)
    os.chmod(tmp_path, 0o755)
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]

    def as_nobody(*cmd, stdin=None):
        return subprocess.run(nobody + list(cmd), capture_output=True, text=True, input=stdin)

    with Mount(path, "allow_other") as m:
        assert as_nobody("cat", m.path("meta", "3.json")).returncode == 0
        r = as_nobody("sh", "-c", f"printf 'xxxx' > {m.path('vectors', '3')}")
        assert r.returncode != 0 and "Permission denied" in r.stderr
        r = as_nobody("sh", "-c", f"echo hi > {m.path('ingest', 'a.npy')}")
        assert r.returncode != 0 and "Permission denied" in r.stderr
        assert as_nobody("mkdir", m.path(".snapshots", "x")).returncode != 0
        assert as_nobody("rm", "-f", m.path("vectors", "3")).returncode != 0
        # reading the database is enough to search it
        q = json.dumps({"vector": v[6].tolist(), "k": 1})
        r = as_nobody("sh", "-c", f"cat > {m.path('queries', 'n.json')} && cat {m.path('queries', 'n.result.json')}",
                      stdin=q)
        assert r.returncode == 0 and json.loads(r.stdout)["ids"] == [6], r.stderr
        # and someone else's query file is theirs
        write(m.path("queries", "root.json"), q)
        assert as_nobody("rm", m.path("queries", "root.json")).returncode != 0
        assert os.path.exists(m.path("vectors", "3"))
    os.chmod(path, 0o600)
    with Mount(path, "allow_other") as m:
        r = as_nobody("cat", m.path("meta", "3.json"))
        assert r.returncode != 0 and "Permission denied" in r.stderr
        r = as_nobody("sh", "-c", f"echo '{{}}' > {m.path('queries', 'n.json')}")
        assert r.returncode != 0
