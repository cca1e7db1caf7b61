"""bench nusterfs: searches and imports through the mount against the same work
in-process (the Python module: libnvf's nvf_search / nvf_search_batch) and against
nvf-tool import, in one run. Prints a table, or with --json one object per result.

  - single queries: a client process writes NAME.json and reads NAME.result.json, one
    query after another, with 1 and 2 clients in parallel (HNSW, synthetic Gaussian
    clusters of 96 dimensions); in-process: db.search one query at a time;
  - a batch: Fashion-MNIST's test images as NAME.npy, NAME.ids.npy read back, against
    one nvf_search_batch of the same file in a C process (bench_nusterfs.c; flat:
    exact, so both do the same work), the ids checked against the Python module's;
  - ingest: Fashion-MNIST's training images as .npy copied into /ingest against
    nvf-tool import of the same file.
Usage: nusterfs_bench.py BUILD_DIR OUT_DIR [--json] [--quick]"""
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

build, out = sys.argv[1], sys.argv[2]
as_json = "--json" in sys.argv
quick = "--quick" in sys.argv
sys.path.insert(0, os.path.join(build, "python"))
import nusterdb  # noqa: E402

TOOL = os.path.join(build, "tools", "nvf-tool")
FS = os.path.join(build, "nusterfs", "nusterfs")
DATA = "/usr/share/datasets/fashion-mnist"


def emit(system, dataset, metric, value, unit, note=""):
    if as_json:
        o = {"suite": "nusterfs", "system": system, "dataset": dataset, "metric": metric, "value": value,
             "unit": unit}
        if note:
            o["note"] = note
        print(json.dumps(o), flush=True)
    else:
        print(f"{'nusterfs':8} {system:10} {dataset:16} {metric:34} {value:14.3f} {unit:8} {note}", flush=True)


def idx(path):
    raw = gzip.open(path).read()
    n, r, c = (int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(3))
    return np.frombuffer(raw[16:], dtype=np.uint8).reshape(n, r * c).astype(np.float32)


class Mount:
    def __init__(self, db, *opts):
        self.dir = tempfile.mkdtemp(prefix="nusterfs-bench-", dir=out)
        args = [FS, db, self.dir] + (["-o", ",".join(opts)] if opts else [])
        subprocess.run(args, check=True)
        end = time.monotonic() + 10
        while not os.path.ismount(self.dir) and time.monotonic() < end:
            time.sleep(0.01)

    def __enter__(self):
        return self.dir

    def __exit__(self, *e):
        if subprocess.run(["fusermount3", "-u", self.dir]).returncode != 0:
            subprocess.run(["fusermount3", "-u", "-z", self.dir])
        os.rmdir(self.dir)


CLIENT = r"""
import json, os, sys, time
d, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
qs = json.loads(sys.stdin.read())
q, r = os.path.join(d, name + ".json"), os.path.join(d, name + ".result.json")
t0 = time.perf_counter()
for i in range(n):
    with open(q, "w") as f:
        f.write(json.dumps({"vector": qs[i % len(qs)], "k": 10}))
    with open(r) as f:
        assert len(json.load(f)["ids"]) == 10
print(time.perf_counter() - t0)
"""


def fresh(path):
    for p in (path, path + "-lock"):
        if os.path.exists(p):
            os.unlink(p)
    return path


def single_queries():
    rng = np.random.default_rng(5)
    n, dim = (5000 if quick else 20000), 96
    centers = rng.normal(size=(64, dim)).astype(np.float32) * 4
    x = (centers[rng.integers(0, 64, n)] + rng.normal(size=(n, dim))).astype(np.float32)
    q = (centers[rng.integers(0, 64, 1000)] + rng.normal(size=(1000, dim))).astype(np.float32)
    db = fresh(os.path.join(out, "nusterfs-hnsw.nvf"))
    subprocess.run([TOOL, "create", db, "--dim", str(dim), "--index", "hnsw"], check=True, capture_output=True)
    np.save(os.path.join(out, "nusterfs-hnsw.npy"), x)
    subprocess.run([TOOL, "import", db, os.path.join(out, "nusterfs-hnsw.npy")], check=True, capture_output=True)
    dataset = f"gauss-{n // 1000}k-96"
    h = nusterdb.NusterDB(db, read_only=True)
    h.knn(q[:100], k=10, threads=1)
    t0 = time.perf_counter()
    for v in q:
        h.knn(v.reshape(1, -1), k=10, threads=1)
    inproc = len(q) / (time.perf_counter() - t0)
    h.close()
    emit("libnvf", dataset, "single queries/s, 1 thread", inproc, "q/s", "db.knn one query a call, k 10")
    per = 2000 if quick else 5000
    qs = json.dumps(q.tolist())
    with Mount(db) as m:
        for clients in (1, 2):
            procs = [subprocess.Popen([sys.executable, "-c", CLIENT, os.path.join(m, "queries"), f"c{i}", str(per)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                     for i in range(clients)]
            t0 = time.perf_counter()
            for p in procs:
                p.stdin.write(qs)
                p.stdin.close()
            for p in procs:
                p.wait()
            secs = time.perf_counter() - t0
            rate = clients * per / secs
            emit("nusterfs", dataset, f"single queries/s, {clients} client(s)", rate, "q/s",
                 "write NAME.json, read NAME.result.json (goal: >= 2000 with 2 clients)")
            emit("nusterfs", dataset, f"single, {clients} client(s) / in-process", rate / inproc, "ratio", "")


def batch_and_ingest():
    train = idx(os.path.join(DATA, "train-images-idx3-ubyte.gz"))
    test = idx(os.path.join(DATA, "t10k-images-idx3-ubyte.gz"))
    if quick:
        train, test = train[:20000], test[:1000]
    else:
        test = test[:2000]
    npy = os.path.join(out, "nusterfs-train.npy")
    np.save(npy, train)
    qnpy = os.path.join(out, "nusterfs-test.npy")
    np.save(qnpy, test)
    dataset = f"fashion-{len(train) // 1000}k"
    # ingest: nvf-tool import against cp into /ingest, each into an empty flat file
    a = fresh(os.path.join(out, "nusterfs-a.nvf"))
    subprocess.run([TOOL, "create", a, "--dim", "784", "--nosync"], check=True, capture_output=True)
    t0 = time.perf_counter()
    subprocess.run([TOOL, "import", a, npy], check=True, capture_output=True)
    tool_rate = len(train) / (time.perf_counter() - t0)
    b = fresh(os.path.join(out, "nusterfs-b.nvf"))
    subprocess.run([TOOL, "create", b, "--dim", "784", "--nosync"], check=True, capture_output=True)
    with Mount(b, f"spool={out}") as m:
        t0 = time.perf_counter()
        shutil.copyfile(npy, os.path.join(m, "ingest", "train.npy"))
        fs_rate = len(train) / (time.perf_counter() - t0)
    emit("nvf-tool", dataset, "import records/s", tool_rate, "rec/s", "nvf-tool import train.npy")
    emit("nusterfs", dataset, "ingest records/s", fs_rate, "rec/s", "cp train.npy MNT/ingest/ (spooled, then imported)")
    emit("nusterfs", dataset, "ingest / nvf-tool import", fs_rate / tool_rate, "ratio", "")
    # a batch: exact search (flat), k 10, both cores either way
    # in-process: one nvf_search_batch (bench_nusterfs.c), after a warm-up batch
    r = subprocess.run([os.path.join(build, "bench", "bench_nusterfs"), a, qnpy, "10"], check=True,
                       capture_output=True, text=True)
    inproc = float(r.stdout)
    h = nusterdb.NusterDB(a, read_only=True)
    ids, _ = h.knn(test, k=10, threads=0)
    h.close()
    with Mount(a) as m:
        t0 = time.perf_counter()
        shutil.copyfile(qnpy, os.path.join(m, "queries", "t.npy"))
        got = np.load(os.path.join(m, "queries", "t.ids.npy"))
        fs = len(test) / (time.perf_counter() - t0)
    same = float(np.mean(got == ids))
    emit("libnvf", dataset, "batch queries/s (exact, k 10)", inproc, "q/s", "nvf_search_batch in-process")
    emit("nusterfs", dataset, "batch queries/s (exact, k 10)", fs, "q/s",
         f"cp t.npy MNT/queries/, read t.ids.npy; ids equal in-process: {same:.4f}")
    emit("nusterfs", dataset, "batch mount / in-process q/s", fs / inproc, "ratio", "goal: >= 1/1.2 = 0.83")
    for p in (npy, qnpy):
        os.unlink(p)


if not as_json:
    print(f"{'suite':8} {'system':10} {'dataset':16} {'metric':34} {'value':>14} {'unit':8} note")
single_queries()
batch_and_ingest()
