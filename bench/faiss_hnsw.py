"""FAISS's side of bench hnsw: IndexHNSWFlat(dim, M 16), efConstruction 200, built
with the same thread count as the others, then single-thread queries over the same
ef list, in the same run as bench_hnsw and hnswlib_bench. One JSON object per result;
the result ids per ef go to DIR/hnsw-ids-faiss-efEF.i64 (int64, queries x 10) for
bench/hnsw_recall.py. DATASET names the data in the results (default fashion-mnist-784);
METRIC l2, or cosine: IndexHNSWFlat with METRIC_INNER_PRODUCT on vectors normalized here.

The peer is Debian's python3-faiss, a generic SIMD build (not compiled for this CPU).
Its queries run (best of PASSES passes) as one index.search() call over all queries with 1 OpenMP thread:
FAISS then loops over them one by one inside C++, whereas a Python loop of one-query
calls would measure mostly Python's per-call overhead.

usage: faiss_hnsw.py BASE QUERIES DIR THREADS NQ EFS(10,20,..) PASSES [DATASET l2|cosine]"""
import json
import os
import sys
import time

import faiss
import numpy as np

from hnsw_data import load

DATASET = "fashion-mnist-784"


def emit(metric, value, unit, note=None):
    d = {"suite": "hnsw", "system": "faiss", "dataset": DATASET, "metric": metric,
         "value": value, "unit": unit}
    if note:
        d["note"] = note
    print(json.dumps(d), flush=True)


def main():
    global DATASET
    base_path, query_path, out = sys.argv[1], sys.argv[2], sys.argv[3]
    threads, nq, efs = int(sys.argv[4]), int(sys.argv[5]), [int(e) for e in sys.argv[6].split(",")]
    passes = int(sys.argv[7])
    metric = "l2"
    if len(sys.argv) == 10:
        DATASET, metric = sys.argv[8], sys.argv[9]
    if metric not in ("l2", "cosine"):
        sys.exit("faiss_hnsw: METRIC is l2 or cosine")
    xb, xq = load(base_path), load(query_path)
    if 0 < nq < len(xq):
        xq = xq[:nq]
    xb, xq = np.ascontiguousarray(xb, dtype=np.float32), np.ascontiguousarray(xq, dtype=np.float32)
    if metric == "cosine":
        faiss.normalize_L2(xb)
        faiss.normalize_L2(xq)
    nq, k = len(xq), 10
    build = "faiss %s (Debian python3-faiss: a generic SIMD build, not compiled for this CPU)" % faiss.__version__

    faiss.omp_set_num_threads(threads)
    t0 = time.perf_counter()
    if metric == "cosine":
        index = faiss.IndexHNSWFlat(xb.shape[1], 16, faiss.METRIC_INNER_PRODUCT)
    else:
        index = faiss.IndexHNSWFlat(xb.shape[1], 16)
    index.hnsw.efConstruction = 200
    index.add(xb)
    tb = time.perf_counter() - t0
    emit("build_seconds", tb, "s", "%d vectors, IndexHNSWFlat M 16, efConstruction 200, %s, %d threads, in memory; %s"
         % (len(xb), "inner product on normalized vectors (cosine)" if metric == "cosine" else "L2", threads, build))

    faiss.omp_set_num_threads(1)
    index.hnsw.efSearch = efs[0]
    index.search(xq, k)  # warm-up pass
    for ef in efs:
        index.hnsw.efSearch = ef
        dt = float("inf")
        for _ in range(passes):
            t0 = time.perf_counter()
            _, ids = index.search(xq, k)
            dt = min(dt, time.perf_counter() - t0)
        ids.astype("<i8").tofile(os.path.join(out, "hnsw-ids-faiss-ef%d.i64" % ef))
        emit("qps_ef%d" % ef, nq / dt, "queries/s",
             "%d queries in one index.search() call with 1 OpenMP thread (FAISS loops over them in C++), k 10, "
             "efSearch %d, best of %d passes; %s" % (nq, ef, passes, build))

    path = os.path.join(out, "hnsw-faiss-%d.index" % len(xb))
    faiss.write_index(index, path)
    emit("file_bytes", os.path.getsize(path), "bytes", "faiss.write_index of the %d-vector index" % len(xb))


if __name__ == "__main__":
    main()
