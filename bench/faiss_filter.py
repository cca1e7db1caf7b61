"""FAISS's side of bench filter (bench/filter.bench; NusterDB's is bench_filter.c, the
other peers usearch_filter.cpp and hnswlib_filter.cpp, in the same run on the same
data): IndexHNSWFlat(784, M 16), efConstruction 200, built with THREADS OpenMP threads,
then single-thread filtered searches.

A filter is FAISS's own filtered HNSW search (1.7.3 and later): index.search(...,
params=faiss.SearchParametersHNSW(sel=faiss.IDSelectorBitmap(n, bitmap), efSearch=ef)),
where the selector is tested during the graph walk (disallowed nodes are walked through
but not returned). IDSelectorBitmap tests one bit (IDSelectorBatch would hash). No filter
(s1, every row allowed) is the plain search, SearchParametersHNSW(efSearch=ef).
FAISS 1.7.3 sizes the search's candidate heap by the index's hnsw.efSearch, not by the
params' (fixed upstream in 2024, facebookresearch/faiss#3233): with the params alone
the recall stops rising past the default efSearch 16. So index.hnsw.efSearch is set to
ef as well.

For every filter NAME of FILTERS (DIR/allowed-NAME.npy, sorted int64 ids) and every ef,
the first NQ queries are searched, best of PASSES passes, as one index.search() call
with 1 OpenMP thread: FAISS then loops over the queries one by one in C++ (as in bench
hnsw), whereas a Python loop of one-query calls would mostly time Python's per-call
overhead. The ids go to DIR/filter-ids-faiss-NAME-efEF.i64 (int64, NQ x 10, -1 for
none). The peer is Debian's python3-faiss, a generic SIMD build (not compiled for this
CPU). One JSON object per result.

usage: faiss_filter.py BASE QUERIES DIR THREADS NQ EFS(10,20,..) PASSES FILTERS(s1,s0.5,..)"""
import json
import os
import sys
import time

import faiss
import numpy as np

from benchdata import idx_f32


def emit(metric, value, unit, note=None):
    d = {"suite": "filter", "system": "faiss", "dataset": "fashion-mnist-784", "metric": metric,
         "value": value, "unit": unit}
    if note:
        d["note"] = note
    print(json.dumps(d), flush=True)


def main():
    if len(sys.argv) != 9:
        sys.exit(__doc__.split("usage: ")[1])
    base_path, query_path, out = sys.argv[1], sys.argv[2], sys.argv[3]
    threads, nq, efs = int(sys.argv[4]), int(sys.argv[5]), [int(e) for e in sys.argv[6].split(",")]
    passes, names = int(sys.argv[7]), sys.argv[8].split(",")
    xb, xq = idx_f32(base_path), idx_f32(query_path)
    if 0 < nq < len(xq):
        xq = xq[:nq]
    n, nq, k = len(xb), len(xq), 10
    build = "faiss %s (Debian python3-faiss: a generic SIMD build, not compiled for this CPU)" % faiss.__version__

    faiss.omp_set_num_threads(threads)
    t0 = time.perf_counter()
    index = faiss.IndexHNSWFlat(xb.shape[1], 16)
    index.hnsw.efConstruction = 200
    index.add(xb)
    tb = time.perf_counter() - t0
    emit("build_seconds", tb, "s", "%d vectors, IndexHNSWFlat M 16, efConstruction 200, %d threads, in memory; %s"
         % (n, threads, build))

    faiss.omp_set_num_threads(1)
    index.hnsw.efSearch = efs[0]
    index.search(xq, k, params=faiss.SearchParametersHNSW(efSearch=efs[0]))  # warm-up pass
    for name in names:
        allowed = np.load(os.path.join(out, "allowed-%s.npy" % name))
        if allowed.ndim != 1 or len(allowed) == 0 or allowed.min() < 0 or allowed.max() >= n:
            sys.exit("faiss_filter: allowed-%s.npy: not a list of ids below %d" % (name, n))
        everything = len(allowed) == n
        mask = np.zeros(n, dtype=bool)
        mask[allowed] = True
        bits = np.packbits(mask, bitorder="little")  # bit i of the bitmap: (bits[i >> 3] >> (i & 7)) & 1
        sel = None if everything else faiss.IDSelectorBitmap(n, faiss.swig_ptr(bits))
        for ef in efs:
            index.hnsw.efSearch = ef  # see above: 1.7.3 reads both
            params = faiss.SearchParametersHNSW(efSearch=ef) if everything else \
                faiss.SearchParametersHNSW(sel=sel, efSearch=ef)
            dt = float("inf")
            for _ in range(passes):
                t0 = time.perf_counter()
                _, ids = index.search(xq, k, params=params)
                dt = min(dt, time.perf_counter() - t0)
            ids.astype("<i8").tofile(os.path.join(out, "filter-ids-faiss-%s-ef%d.i64" % (name, ef)))
            how = ("no filter: SearchParametersHNSW(efSearch %d)" % ef if everything else
                   "SearchParametersHNSW(sel=IDSelectorBitmap (|S| %d), efSearch %d)" % (len(allowed), ef))
            emit("qps_%s_ef%d" % (name, ef), nq / dt, "queries/s",
                 "%d queries in one index.search() call with 1 OpenMP thread (FAISS loops over them in C++), k 10, "
                 "best of %d passes; %s; %s" % (nq, passes, how, build))
        del sel  # after the searches that use it (the bitmap stays alive until here too)


if __name__ == "__main__":
    main()
