"""FAISS's side of bench exact: IndexFlatL2 batch search of the same queries with the
same thread count, in the same run as bench_exact. One JSON object per result.

The peer is Debian's python3-faiss (a generic SIMD build, not compiled for this
CPU); its BLAS is whatever /usr/lib/x86_64-linux-gnu/libblas.so.3 points to, which the
bench's set-up makes OpenBLAS (libopenblas0-pthread): the note says which it found."""
import json
import os
import sys
import time

import faiss

from benchdata import idx_f32


def blas():
    try:
        return os.path.realpath("/usr/lib/x86_64-linux-gnu/libblas.so.3")
    except OSError:
        return "unknown"


def emit(metric, value, unit, note=None, **extra):
    d = {"suite": "exact", "system": "faiss", "dataset": "fashion-mnist-784", "metric": metric,
         "value": value, "unit": unit}
    if note:
        d["note"] = note
    d.update(extra)
    print(json.dumps(d), flush=True)


def main():
    base_path, query_path, threads, nq = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    xb, xq = idx_f32(base_path), idx_f32(query_path)[:nq]
    faiss.omp_set_num_threads(threads)
    index = faiss.IndexFlatL2(xb.shape[1])
    index.add(xb)
    index.search(xq[:10], 10)  # warm up
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        _, ids = index.search(xq, 10)
        best = min(best, time.perf_counter() - t0)
    note = "faiss %s (Debian python3-faiss, generic build), BLAS %s, %d threads, best of 3" % (
        faiss.__version__, blas(), threads)
    emit("batch_1000_seconds", best, "s", note)
    emit("batch_qps", nq / best, "queries/s", note)
    emit("first_query_ids", 0, "ids", ids=[int(i) for i in ids[0]])


if __name__ == "__main__":
    main()
