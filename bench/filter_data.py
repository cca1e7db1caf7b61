"""The data of bench filter, made deterministically (fixed seed) in DIR:

 - meta.jsonl: one JSON document per base vector, line i for base row i (id i):
   {"label": the real Fashion-MNIST class 0..9 of row i,
    "price": uniform in [0, 1000) with 2 decimals (a whole number of cents 0..99999,
             / 100: the float64 nearest that decimal, written so that it reads back
             exactly),
    "year": uniform integer 1990..2025,
    "tags": 0..4 (uniform) distinct tags "t0".."t99", drawn without replacement with
            probabilities proportional to rank^-1.2 (Zipf 1.2; t0 the most common), in
            the order drawn}.
   "tags" is a key of the document: a filter on it is written $.tags (the bare name
   tags means the record's own tags field, docs/FILTER.md).
 - filters.json: [{"name", "expr" (NusterDB's filter text, docs/FILTER.md),
   "selectivity" (the share of base rows that match, measured), "count"}], from the
   least selective (s1, no filter) to the most (s0.001);
 - allowed-NAME.npy: the matching ids, sorted int64, computed here in numpy with
   exactly the same predicate as the filter text;
 - gt-NAME.npy: the exact filtered ground truth of the first NQ test images: NQ x 10
   int64 ids (-1 where fewer than 10 rows match), nearest first, ties by the smaller
   id; gt-NAME-dist.npy the squared L2 distances (float64, inf for none). Exact: the
   pixels are integers 0..255, so every float64 product and sum is an integer below
   2^53.
 - filter-data.json: what was made (seed, n, NQ); when it matches and every file is
   there, nothing is redone.

Prints one JSON line per filter (suite filter, system data, metric selectivity_NAME).

usage: filter_data.py BASE_IDX LABELS_IDX QUERIES_IDX DIR NQ"""
import json
import os
import sys
import time

import numpy as np

from benchdata import idx_u8

SEED = 20250611
VERSION = 1  # bump when what is made changes
K = 10
NTAGS = 100
ZIPF_S = 1.2
MAX_TAGS = 4

# name, NusterDB filter text, the same predicate on (label, price) arrays
FILTERS = [
    ("s1", "", lambda label, price: np.ones(len(label), dtype=bool)),
    ("s0.5", "price < 500", lambda label, price: price < 500),
    ("s0.1", "label = 3", lambda label, price: label == 3),
    ("s0.01", "label = 3 AND price < 100", lambda label, price: (label == 3) & (price < 100)),
    ("s0.001", "label = 3 AND price < 10", lambda label, price: (label == 3) & (price < 10)),
]


def make_meta(labels, n):
    """(price float64, year int64, tags list of index arrays) of n rows, from SEED."""
    rng = np.random.default_rng(SEED)
    cents = rng.integers(0, 100000, size=n)
    price = cents / 100.0  # the float64 nearest to the 2-decimal value
    year = rng.integers(1990, 2026, size=n)
    ntags = rng.integers(0, MAX_TAGS + 1, size=n)
    # Weighted sampling without replacement, vectorised: the Gumbel top-k trick (the
    # order of the keys log p + Gumbel is the order of successive weighted draws).
    logp = -ZIPF_S * np.log(np.arange(1, NTAGS + 1))
    keys = logp[None, :] + rng.gumbel(size=(n, NTAGS))
    top = np.argsort(-keys, axis=1, kind="stable")[:, :MAX_TAGS]
    tags = [top[i, :ntags[i]] for i in range(n)]
    return price, year, tags


def write_meta(path, labels, price, year, tags):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        for i in range(len(labels)):
            doc = {"label": int(labels[i]), "price": float(price[i]), "year": int(year[i]),
                   "tags": ["t%d" % t for t in tags[i]]}
            f.write(json.dumps(doc) + "\n")
    os.replace(tmp, path)


def ground_truth(xb, rows, xq):
    """(ids, dist): the K nearest of xb[rows] to each query (ids of xb), ties by id."""
    nq = len(xq)
    ids = np.full((nq, K), -1, dtype=np.int64)
    dist = np.full((nq, K), np.inf)
    if len(rows) == 0:
        return ids, dist
    b = xb[rows].astype(np.float64)
    bn = (b * b).sum(axis=1)
    kk = min(K, len(rows))
    step = 250
    for s in range(0, nq, step):
        q = xq[s:s + step].astype(np.float64)
        d = (q * q).sum(axis=1)[:, None] + bn[None, :] - 2.0 * (q @ b.T)
        kth = np.partition(d, kk - 1, axis=1)[:, kk - 1]
        for j in range(len(q)):
            cand = np.flatnonzero(d[j] <= kth[j])  # ascending positions = ascending ids
            order = np.argsort(d[j, cand], kind="stable")[:kk]  # by distance, ties by id
            ids[s + j, :kk] = rows[cand[order]]
            dist[s + j, :kk] = d[j, cand[order]]
    return ids, dist


def main():
    if len(sys.argv) != 6:
        sys.exit(__doc__.split("usage: ")[1])
    base_path, label_path, query_path, out, nq = sys.argv[1:6]
    nq = int(nq)
    xb = idx_u8(base_path)
    labels = idx_u8(label_path).reshape(-1).astype(np.int64)
    xq = idx_u8(query_path)
    if 0 < nq < len(xq):
        xq = xq[:nq]
    nq, n = len(xq), len(xb)
    if len(labels) != n:
        sys.exit("filter_data: %d labels for %d base vectors" % (len(labels), n))

    stamp = {"version": VERSION, "seed": SEED, "n": n, "nq": nq, "base": base_path, "labels": label_path,
             "queries": query_path, "filters": [[f[0], f[1]] for f in FILTERS]}
    stamp_path = os.path.join(out, "filter-data.json")
    files = ["meta.jsonl", "filters.json"] + ["%s-%s%s" % (p, f[0], e) for f in FILTERS
                                              for p, e in (("allowed", ".npy"), ("gt", ".npy"), ("gt", "-dist.npy"))]
    try:
        with open(stamp_path) as f:
            cached = json.load(f) == stamp and all(os.path.exists(os.path.join(out, p)) for p in files)
    except (OSError, ValueError):
        cached = False

    t0 = time.perf_counter()
    if not cached:
        if os.path.exists(stamp_path):
            os.unlink(stamp_path)
        price, year, tags = make_meta(labels, n)
        write_meta(os.path.join(out, "meta.jsonl"), labels, price, year, tags)
        filters = []
        for name, expr, pred in FILTERS:
            mask = pred(labels, price)
            allowed = np.flatnonzero(mask).astype(np.int64)
            np.save(os.path.join(out, "allowed-%s.npy" % name), allowed)
            ids, dist = ground_truth(xb, allowed, xq)
            np.save(os.path.join(out, "gt-%s.npy" % name), ids)
            np.save(os.path.join(out, "gt-%s-dist.npy" % name), dist)
            filters.append({"name": name, "expr": expr, "selectivity": len(allowed) / n, "count": len(allowed)})
        with open(os.path.join(out, "filters.json"), "w") as f:
            json.dump(filters, f, indent=1)
            f.write("\n")
        with open(stamp_path, "w") as f:
            json.dump(stamp, f)
        print("filter_data: %d documents, %d filters, ground truth of %d queries in %.1f s, in %s"
              % (n, len(FILTERS), nq, time.perf_counter() - t0, out), file=sys.stderr)
    else:
        print("filter_data: reusing the data in %s (same seed, n and NQ)" % out, file=sys.stderr)
        with open(os.path.join(out, "filters.json")) as f:
            filters = json.load(f)
    for flt in filters:
        print(json.dumps({"suite": "filter", "system": "data", "dataset": "fashion-mnist-784",
                          "metric": "selectivity_%s" % flt["name"], "value": flt["selectivity"], "unit": "share",
                          "note": "%d of %d base rows match %s" % (flt["count"], n,
                                                                   repr(flt["expr"]) if flt["expr"] else "(no filter)")}),
              flush=True)


if __name__ == "__main__":
    main()
