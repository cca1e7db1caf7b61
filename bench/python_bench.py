"""bench python: NusterDB from Python next to python3-hnswlib and FAISS's IndexHNSWFlat
(python3-faiss), in one run on the same data: Fashion-MNIST (60,000 x 784, the 10,000
test images as queries, euclidean), M 16, ef_construction 200, k 10.

  - build: NusterDB.add_items / hnswlib add_items / faiss add, 2 threads each;
  - batch search: queries/s over an ef list with 1 thread and with every core
    (knn / knn_query / search), tie-aware recall@10 of each (bench/hnsw_recall.py's
    scoring), then for each target recall (0.95, 0.99) the best queries/s of the efs
    that reach it, and NusterDB's ratio to each peer there;
  - single-query call latency: one row per call (knn with a 1 x 784 array against
    knn_query with one row), ef 40, 1 thread, the mean over 2,000 calls;
  - open: a new process imports the module (untimed), then NusterDB.open against
    hnswlib's load_index (and FAISS's read_index), the time and the growth of the
    resident set it causes, median of 5 processes.

Prints one JSON object per result. usage: python_bench.py BASE QUERIES DIR"""
import json
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchdata import idx_f32  # noqa: E402
from hnsw_recall import K, ground_truth, recall  # noqa: E402

EFS = [10, 20, 40, 80, 120, 200, 400]
TARGETS = [0.95, 0.99]
DS = "fashion-mnist-784"
THREADS = 2


def emit(system, metric, value, unit, note):
    print(json.dumps({"suite": "python", "system": system, "dataset": DS, "metric": metric,
                      "value": value, "unit": unit, "note": note}), flush=True)


def rss_kb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def open_child(system, path):
    """In a fresh process: import (untimed), then open; prints seconds and KB grown."""
    if system == "nusterdb":
        import nusterdb
        r0 = rss_kb()
        t0 = time.perf_counter()
        db = nusterdb.NusterDB.open(path, read_only=True)
        t1 = time.perf_counter()
        assert len(db) > 0
    elif system == "hnswlib":
        import hnswlib
        r0 = rss_kb()
        t0 = time.perf_counter()
        idx = hnswlib.Index(space="l2", dim=784)
        idx.load_index(path)
        t1 = time.perf_counter()
        assert idx.get_current_count() > 0
    else:
        import faiss
        r0 = rss_kb()
        t0 = time.perf_counter()
        idx = faiss.read_index(path)
        t1 = time.perf_counter()
        assert idx.ntotal > 0
    print(json.dumps({"s": t1 - t0, "kb": rss_kb() - r0}))


def open_median(system, path, reps=5):
    out = []
    for _ in range(reps):
        p = subprocess.run([sys.executable, __file__, "--open-child", system, path],
                           capture_output=True, text=True, check=True,
                           env=dict(os.environ, OMP_NUM_THREADS="1"))
        out.append(json.loads(p.stdout))
    s = sorted(o["s"] for o in out)[reps // 2]
    kb = sorted(o["kb"] for o in out)[reps // 2]
    return s, kb


def best_at(points, target):
    """The best queries/s among (recall, qps) points reaching the target, or None."""
    ok = [q for r, q in points if r >= target]
    return max(ok) if ok else None


def main():
    base, queries, out = sys.argv[1], sys.argv[2], sys.argv[3]
    nq = int(os.environ.get("NVF_PY_NQ", "10000"))
    xb = idx_f32(base)
    xq = idx_f32(queries)[:nq]
    dist, _ = ground_truth(xb.astype(np.uint8), xq.astype(np.uint8), out)
    kth = dist[:, K - 1]
    bn = (xb.astype(np.float64) ** 2).sum(axis=1)
    qn = (xq.astype(np.float64) ** 2).sum(axis=1)

    import faiss
    import hnswlib
    import nusterdb

    # ---- build
    path = os.path.join(out, "python-fmnist.nvf")
    for f in (path, path + "-lock"):
        if os.path.exists(f):
            os.remove(f)
    cfg = nusterdb.DatabaseConfig(dim=784, index_type=nusterdb.IndexType.Hnsw,
                                  distance_metric=nusterdb.DistanceMetric.Euclidean,
                                  hnsw_max_connections=16, hnsw_ef_construction=200)
    db = nusterdb.NusterDB(path, cfg)
    t0 = time.perf_counter()
    db.add_items(xb, threads=THREADS)
    build = {"nusterdb": time.perf_counter() - t0}
    hl = hnswlib.Index(space="l2", dim=784)
    hl.init_index(max_elements=len(xb), ef_construction=200, M=16, random_seed=100)
    t0 = time.perf_counter()
    hl.add_items(xb, num_threads=THREADS)
    build["hnswlib"] = time.perf_counter() - t0
    hpath = os.path.join(out, "python-fmnist.hnswlib")
    hl.save_index(hpath)
    faiss.omp_set_num_threads(THREADS)
    fi = faiss.IndexHNSWFlat(784, 16)
    fi.hnsw.efConstruction = 200
    t0 = time.perf_counter()
    fi.add(xb)
    build["faiss"] = time.perf_counter() - t0
    fpath = os.path.join(out, "python-fmnist.faiss")
    faiss.write_index(fi, fpath)
    for s in ("nusterdb", "hnswlib", "faiss"):
        emit(s, "build_s", build[s], "s", "60,000 vectors, M 16, ef_construction 200, %d threads "
             "(NusterDB.add_items / hnswlib add_items / faiss IndexHNSWFlat.add)" % THREADS)
    for s in ("hnswlib", "faiss"):
        emit("nusterdb", "build_vs_" + s, build["nusterdb"] / build[s], "ratio", "build time / %s's" % s)

    # ---- batch search
    def run(system, ef, threads):
        if system == "nusterdb":
            t0 = time.perf_counter()
            ids, _ = db.knn(xq, k=K, ef=ef, threads=threads)
        elif system == "hnswlib":
            hl.set_ef(ef)
            t0 = time.perf_counter()
            ids, _ = hl.knn_query(xq, k=K, num_threads=threads)
        else:
            faiss.omp_set_num_threads(threads)
            fi.hnsw.efSearch = ef
            t0 = time.perf_counter()
            _, ids = fi.search(xq, K)
        return time.perf_counter() - t0, np.asarray(ids, dtype=np.int64)

    for threads in (1, THREADS):
        curves = {}
        for system in ("nusterdb", "hnswlib", "faiss"):
            pts = []
            for ef in EFS:
                secs, ids = min((run(system, ef, threads) for _ in range(2)), key=lambda r: r[0])
                rec = recall(xb, bn, xq, qn, kth, ids)
                pts.append((rec, nq / secs))
                emit(system, "qps_t%d_ef%d" % (threads, ef), nq / secs, "queries/s",
                     "batch of %d queries, k 10, ef %d, %d thread(s), best of 2; recall@10 %.4f"
                     % (nq, ef, threads, rec))
            curves[system] = pts
        for target in TARGETS:
            ours = best_at(curves["nusterdb"], target)
            for system in ("nusterdb", "hnswlib", "faiss"):
                b = best_at(curves[system], target)
                if b is not None:
                    emit(system, "qps_t%d_at_recall_%.2f" % (threads, target), b, "queries/s",
                         "the best queries/s over ef %s reaching recall@10 %.2f, %d thread(s)"
                         % (",".join(map(str, EFS)), target, threads))
                if system != "nusterdb" and b is not None and ours is not None:
                    emit("nusterdb", "qps_t%d_at_recall_%.2f_vs_%s" % (threads, target, system), ours / b,
                         "ratio", "NusterDB's queries/s / %s's at recall %.2f, %d thread(s)"
                         % (system, target, threads))

    # ---- single-query call latency
    calls = min(2000, nq)
    hl.set_ef(40)
    for q in xq[:50]:
        db.knn(q[None, :], k=K, ef=40, threads=1)
        hl.knn_query(q[None, :], k=K, num_threads=1)
    lat = {}
    t0 = time.perf_counter()
    for i in range(calls):
        db.knn(xq[i:i + 1], k=K, ef=40, threads=1)
    lat["nusterdb"] = (time.perf_counter() - t0) / calls
    t0 = time.perf_counter()
    for i in range(calls):
        hl.knn_query(xq[i:i + 1], k=K, num_threads=1)
    lat["hnswlib"] = (time.perf_counter() - t0) / calls
    for s in ("nusterdb", "hnswlib"):
        emit(s, "single_query_us", lat[s] * 1e6, "us", "one 1 x 784 query per call (knn / knn_query), "
             "k 10, ef 40, 1 thread, mean of %d calls" % calls)
    emit("nusterdb", "single_query_vs_hnswlib", lat["nusterdb"] / lat["hnswlib"], "ratio",
         "NusterDB's call latency / hnswlib's (goal: at most 1)")

    # ---- open in a new process
    db.close()
    op = {}
    for system, p in (("nusterdb", path), ("hnswlib", hpath), ("faiss", fpath)):
        op[system] = open_median(system, p)
        emit(system, "open_ms", op[system][0] * 1e3, "ms", "NusterDB.open / hnswlib load_index / "
             "faiss.read_index of the 60,000-vector index in a new process (module imported "
             "first, untimed), median of 5")
        emit(system, "open_rss_growth_kb", op[system][1], "KB", "resident set growth caused by the open, "
             "median of 5")
    for s in ("hnswlib", "faiss"):
        emit("nusterdb", "open_time_vs_" + s, op["nusterdb"][0] / op[s][0], "ratio",
             "open time / %s's (goal vs hnswlib: at most 0.02)" % s)
        emit("nusterdb", "open_rss_vs_" + s, op["nusterdb"][1] / max(op[s][1], 1), "ratio",
             "resident growth / %s's (goal vs hnswlib: at most 0.05)" % s)
    emit("nusterdb", "file_bytes", os.path.getsize(path), "bytes", "the .nvf file")
    emit("hnswlib", "file_bytes", os.path.getsize(hpath), "bytes", "save_index's file")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--open-child":
        open_child(sys.argv[2], sys.argv[3])
    else:
        main()
