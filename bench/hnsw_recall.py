"""Recall of bench hnsw, computed the same way for every system from the result ids
each driver wrote (DIR/hnsw-ids-SYSTEM-efEF.i64: int64, queries x 10, -1 for none).

Tie-aware recall@10: a returned id counts if its true distance to the query is at
most the true 10th-nearest distance (so that any of several vectors tied at the 10th
distance counts), each id once. True distances in float64, computed as the ground
truth's are (bench/hnsw_data.py: squared L2 as (q - x)^2 summed, or 1 - cos): on
Fashion-MNIST's integer pixels every product and sum is exact. The exact ground truth
(GT, made and cached by bench/hnsw_data.py: the 100 nearest of each query) gives the
10th distance.

usage: hnsw_recall.py BASE QUERIES DIR NQ EFS(10,20,..) SYSTEMS(a,b,..) DATASET l2|cosine GT
Prints one JSON object per (system, ef): metric recall_efEF, plus
built_index_recall_ef10: the narrowest beam, ef = k, walked on float32 distances
(hnsw-ids-SYSTEM-graph-ef10.i64 if the driver wrote one, else its ef10 search)."""
import json
import os
import sys

import numpy as np

import hnsw_data
from hnsw_data import dist64, load

K = 10


def ground_truth(xb, xq, out):
    """(dist, ids): the K nearest squared L2 distances (ascending, float64) of each query
    and their ids, cached in out/hnsw-data/ (bench/python_bench.py's ground truth)."""
    d = os.path.join(out, "hnsw-data")
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "l2-%dx%d-%dx%d-gt.npz" % (len(xb), xb.shape[1], len(xq), hnsw_data.VERSION))
    ids, dist = hnsw_data.ground_truth("l2", xb, xq, path)
    return dist[:, :K], ids[:, :K]


def recall(xb, bn, xq, qn, kth, res):
    """recall_of() under L2 (bn, qn: unused, kept for bench/python_bench.py)."""
    return recall_of("l2", xb, xq, kth, res)


def recall_of(metric, xb, xq, kth, res):
    """Tie-aware recall@K of result ids res (nq x K)."""
    hits = 0
    for s in range(0, len(xq), 200):
        r = res[s:s + 200]
        valid = (r >= 0) & (r < len(xb))
        # each id once: a repeat of the id just before it (in sorted order) is no hit
        srt = np.sort(np.where(valid, r, -1), axis=1)
        first = np.ones_like(srt, dtype=bool)
        first[:, 1:] = srt[:, 1:] != srt[:, :-1]
        rr = np.where(srt >= 0, srt, 0)
        d = dist64(metric, xq[s:s + 200], xb[rr.ravel()].reshape(len(r), K, -1))
        hits += int(((srt >= 0) & first & (d <= kth[s:s + 200, None])).sum())
    return hits / (len(xq) * K)


def main():
    if len(sys.argv) != 10:
        sys.exit(__doc__.split("\n\n")[-1])
    base_path, query_path, out = sys.argv[1], sys.argv[2], sys.argv[3]
    nq, efs, systems = int(sys.argv[4]), [int(e) for e in sys.argv[5].split(",")], sys.argv[6].split(",")
    dataset, metric, gt = sys.argv[7], sys.argv[8], sys.argv[9]
    xb, xq = load(base_path), load(query_path)
    if 0 < nq < len(xq):
        xq = xq[:nq]
    with np.load(gt) as z:
        gt_d = z["dist"]
    if len(gt_d) != len(xq):
        sys.exit("hnsw_recall: %s holds the ground truth of %d queries, not %d" % (gt, len(gt_d), len(xq)))
    kth = gt_d[:, min(K, gt_d.shape[1]) - 1]

    def emit(system, metric_name, value, note):
        print(json.dumps({"suite": "hnsw", "system": system, "dataset": dataset, "metric": metric_name,
                          "value": value, "unit": "recall", "note": note}), flush=True)

    def ids_of(path):
        res = np.fromfile(path, dtype="<i8")
        if res.size != len(xq) * K:
            sys.exit("hnsw_recall: %s holds %d ids, expected %d" % (path, res.size, len(xq) * K))
        return res.reshape(len(xq), K)

    for system in systems:
        for ef in efs:
            path = os.path.join(out, "hnsw-ids-%s-ef%d.i64" % (system, ef))
            if not os.path.exists(path):
                continue  # a driver that failed, or an ef it does not run
            r = recall_of(metric, xb, xq, kth, ids_of(path))
            note = ("tie-aware recall@10 over %d queries, ef %d, against the exact float64 ground truth"
                    % (len(xq), ef))
            emit(system, "recall_ef%d" % ef, r, note)
            if ef != K:
                continue
            # The graph's quality: the narrowest beam, walked on float32 by every
            # system (a driver that walks otherwise by default, NusterDB on its 4-bit
            # copies, writes this walk apart as hnsw-ids-SYSTEM-graph-ef10.i64).
            gpath = os.path.join(out, "hnsw-ids-%s-graph-ef%d.i64" % (system, K))
            how = "the same search"
            if os.path.exists(gpath):
                r = recall_of(metric, xb, xq, kth, ids_of(gpath))
                how = "full_precision: the graph walked on float32, not its 4-bit copies"
            emit(system, "built_index_recall_ef10", r, "the built graph searched with ef = k = 10, the narrowest "
                 "beam, on float32 distances (%s): its quality (%s)" % (how, note))


if __name__ == "__main__":
    main()
