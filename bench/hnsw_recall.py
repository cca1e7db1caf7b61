"""Recall of bench hnsw, computed the same way for every system from the result ids
each driver wrote (DIR/hnsw-ids-SYSTEM-efEF.i64: int64, queries x 10, -1 for none).

Tie-aware recall@10: a returned id counts if its true distance to the query is at
most the true 10th-nearest distance (so that any of several vectors tied at the 10th
distance counts), each id once. True distances are squared L2 in float64 on the raw
pixels: the data are integers 0..255, so every product and sum is exact. The exact
ground truth (10 nearest distances and ids of every query) is cached in
DIR/hnsw-gt-*.npy, keyed by the number of base vectors and queries.

usage: hnsw_recall.py BASE QUERIES DIR NQ EFS(10,20,..) SYSTEMS(a,b,..)
Prints one JSON object per (system, ef): metric recall_efEF, plus
built_index_recall_ef10: the narrowest beam, ef = k, walked on float32 distances
(hnsw-ids-SYSTEM-graph-ef10.i64 if the driver wrote one, else its ef10 search)."""
import json
import os
import sys
import time

import numpy as np

from benchdata import idx_u8

K = 10


def ground_truth(xb, xq, out):
    """(dist, ids): the K nearest squared distances (ascending) and their ids."""
    stem = os.path.join(out, "hnsw-gt-fashion-mnist-784-%dx%d" % (len(xb), len(xq)))
    try:
        d, i = np.load(stem + "-dist.npy"), np.load(stem + "-ids.npy")
        if d.shape == (len(xq), K) and i.shape == (len(xq), K):
            return d, i
    except (OSError, ValueError):
        pass
    t0 = time.perf_counter()
    b = xb.astype(np.float64)
    bn = (b * b).sum(axis=1)
    dist = np.empty((len(xq), K))
    ids = np.empty((len(xq), K), dtype=np.int64)
    for s in range(0, len(xq), 500):
        q = xq[s:s + 500].astype(np.float64)
        d = (q * q).sum(axis=1)[:, None] + bn[None, :] - 2.0 * (q @ b.T)
        part = np.argpartition(d, K - 1, axis=1)[:, :K]
        pd = np.take_along_axis(d, part, axis=1)
        order = np.lexsort((part, pd), axis=1)
        ids[s:s + 500] = np.take_along_axis(part, order, axis=1)
        dist[s:s + 500] = np.take_along_axis(pd, order, axis=1)
    np.save(stem + "-dist.npy", dist)
    np.save(stem + "-ids.npy", ids)
    print("hnsw_recall: ground truth of %d queries in %.1f s, cached in %s-*.npy"
          % (len(xq), time.perf_counter() - t0, stem), file=sys.stderr)
    return dist, ids


def recall(xb, bn, xq, qn, kth, res):
    """Tie-aware recall@K of result ids res (nq x K)."""
    hits = 0
    for s in range(0, len(xq), 1000):
        r = res[s:s + 1000]
        valid = (r >= 0) & (r < len(xb))
        # each id once: a repeat of the id just before it (in sorted order) is no hit
        srt = np.sort(np.where(valid, r, -1), axis=1)
        first = np.ones_like(srt, dtype=bool)
        first[:, 1:] = srt[:, 1:] != srt[:, :-1]
        rr = np.where(srt >= 0, srt, 0)
        v = xb[rr].astype(np.float64)                      # (q, K, dim)
        q = xq[s:s + 1000].astype(np.float64)
        d = bn[rr] + qn[s:s + 1000, None] - 2.0 * np.einsum("qkd,qd->qk", v, q)
        hits += int(((srt >= 0) & first & (d <= kth[s:s + 1000, None])).sum())
    return hits / (len(xq) * K)


def main():
    base_path, query_path, out = sys.argv[1], sys.argv[2], sys.argv[3]
    nq, efs, systems = int(sys.argv[4]), [int(e) for e in sys.argv[5].split(",")], sys.argv[6].split(",")
    xb, xq = idx_u8(base_path), idx_u8(query_path)
    if 0 < nq < len(xq):
        xq = xq[:nq]
    gt_d, _ = ground_truth(xb, xq, out)
    kth = gt_d[:, K - 1]
    bf = xb.astype(np.float64)
    bn = (bf * bf).sum(axis=1)
    qf = xq.astype(np.float64)
    qn = (qf * qf).sum(axis=1)
    for system in systems:
        for ef in efs:
            path = os.path.join(out, "hnsw-ids-%s-ef%d.i64" % (system, ef))
            res = np.fromfile(path, dtype="<i8")
            if res.size != len(xq) * K:
                sys.exit("hnsw_recall: %s holds %d ids, expected %d" % (path, res.size, len(xq) * K))
            r = recall(xb, bn, xq, qn, kth, res.reshape(len(xq), K))
            note = ("tie-aware recall@10 over %d queries, ef %d, against the exact float64 ground truth"
                    % (len(xq), ef))
            print(json.dumps({"suite": "hnsw", "system": system, "dataset": "fashion-mnist-784",
                              "metric": "recall_ef%d" % ef, "value": r, "unit": "recall", "note": note}),
                  flush=True)
            if ef != K:
                continue
            # The graph's quality: the narrowest beam, walked on float32 by every
            # system (a driver that walks otherwise by default, NusterDB on its 4-bit
            # copies, writes this walk apart as hnsw-ids-SYSTEM-graph-ef10.i64).
            gpath = os.path.join(out, "hnsw-ids-%s-graph-ef%d.i64" % (system, K))
            how = "the same search"
            if os.path.exists(gpath):
                res = np.fromfile(gpath, dtype="<i8")
                if res.size != len(xq) * K:
                    sys.exit("hnsw_recall: %s holds %d ids, expected %d" % (gpath, res.size, len(xq) * K))
                r = recall(xb, bn, xq, qn, kth, res.reshape(len(xq), K))
                how = "full_precision: the graph walked on float32, not its 4-bit copies"
            print(json.dumps({"suite": "hnsw", "system": system, "dataset": "fashion-mnist-784",
                              "metric": "built_index_recall_ef10", "value": r, "unit": "recall",
                              "note": "the built graph searched with ef = k = 10, the narrowest beam, on float32 "
                              "distances (%s): its quality (%s)" % (how, note)}), flush=True)


if __name__ == "__main__":
    main()
