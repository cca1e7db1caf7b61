"""The data sets of bench hnsw, made at bench time from fixed seeds (never committed),
with their exact ground truth.

Data sets (NAME):
 - fashion-mnist: Debian's dataset-fashion-mnist, 60,000 training images as the base
   and the 10,000 test images as queries, 784 uint8 pixels read as float32, L2.
 - gauss-1m-96: 1,000,000 base vectors + 10,000 queries, 96 dimensions, L2: 1,024
   centres drawn N(0, 1) per component, each point a uniformly chosen centre plus
   0.35 * N(0, 1) per component (the shape bench/bench_open.c makes; about 977
   points per centre).
 - lowrank-200k-768: 200,000 base vectors + 10,000 queries, 768 dimensions, cosine:
   the shape of sentence embeddings, a low-rank signal plus isotropic noise,
       x = normalize(U S z + 0.1 * e),  e ~ N(0, I_768),
   U a fixed random 768 x 64 orthonormal basis (QR of a Gaussian matrix), S =
   diag(s_j) with decaying singular values s_j = (j + 1)^-0.5 (j = 0..63), and z in
   R^64 drawn from a mixture of 200 topics: z = m_c + 0.7 * N(0, I_64), m_c ~
   N(0, I_64), c uniform (1,000 points per topic). The signal's expected energy,
   1.49 * sum (j+1)^-1 ~ 7.1, is about the noise's, 768 * 0.01 = 7.7: about half the
   variance lies in 64 directions, as in sentence embeddings, and a query's nearest
   neighbour is at a cosine distance of about 0.55 (0.59 for its 10th).
Queries are drawn from the same distribution as the base, from a separate stream.

--scale S (0 < S <= 1) makes a small version: S times the base vectors, and S times
the centres or topics (at least 1), so that the points per cluster, what makes the
shape hard for an HNSW (and for 4-bit codes), stay as in the full set. The queries
stay 10,000 (bench hnsw uses the first NVF_HNSW_NQ of them).

Ground truth: the 100 nearest base ids of each of the first NQ queries and their
distances, exact: FAISS's flat index (IndexFlatL2, or IndexFlatIP on the normalized
vectors for cosine) finds 100 candidates in float32, their distances are recomputed in
float64 ((q - x)^2 summed for L2, squared; 1 - q.x / (|q| |x|) for cosine) and sorted
(ties by the smaller id); then a sample of queries is checked against a plain numpy
float64 scan of the whole base (the same 100 distances), else the script fails.
Files, in DIR/hnsw-data/ (DIR is bench/out):
   LABEL-HASH.base.fvecs, LABEL-HASH.query.fvecs  (synthetic sets only)
   LABEL-HASH-gt-NQ.npz  (ids int64 NQ x 100, dist float64 NQ x 100)
where LABEL names the set at its size (gauss-1m-96, gauss-20k-96 at scale 0.02) and
HASH is a hash of the recipe (generator version, seed, sizes, parameters): a changed
recipe makes new files, an unchanged one reuses them.

usage: hnsw_data.py NAME DIR [--scale S] [--nq NQ]
Prints shell assignments for bench/hnsw.bench: dataset= (the label results carry),
metric= (l2 or cosine), base=, queries=, gt=."""
import argparse
import hashlib
import json
import os
import sys
import time

import numpy as np

from benchdata import idx_f32

VERSION = 1  # bump when what a recipe makes changes
GT_K = 100
FASHION = "/usr/share/datasets/fashion-mnist/"
CHUNK = 65536  # rows generated and written at a time

RECIPES = {
    "gauss-1m-96": {"kind": "gauss", "n": 1000000, "nq": 10000, "dim": 96, "centres": 1024, "spread": 0.35,
                    "seed": 20261116, "metric": "l2"},
    "lowrank-200k-768": {"kind": "lowrank", "n": 200000, "nq": 10000, "dim": 768, "rank": 64, "topics": 200,
                         "topic_spread": 0.7, "sv_scale": 1.0, "sv_power": 0.5, "noise": 0.1,
                         "seed": 20261117, "metric": "cosine"},
}
NAMES = ["fashion-mnist", "gauss-1m-96", "lowrank-200k-768"]


def label(name, n, dim):
    """gauss-1m-96, gauss-20k-96, lowrank-200k-768, ..."""
    size = "%gm" % (n / 1e6) if n >= 1000000 else "%gk" % (n / 1e3) if n >= 1000 else "%d" % n
    return "%s-%s-%d" % (name.split("-")[0], size, dim)


def scaled(recipe, scale):
    r = dict(recipe, version=VERSION)
    if scale != 1:
        r["n"] = max(1, int(round(recipe["n"] * scale)))
        for key in ("centres", "topics"):
            if key in r:
                r[key] = max(1, int(round(recipe[key] * scale)))
    return r


def recipe_hash(r):
    return hashlib.sha256(json.dumps(r, sort_keys=True).encode()).hexdigest()[:10]


def write_fvecs(path, chunks, dim):
    """Write the float32 row blocks of the iterable chunks as .fvecs, atomically."""
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        for x in chunks:
            rec = np.empty((len(x), dim + 1), dtype="<f4")
            rec[:, 0] = np.array([dim], dtype="<i4").view("<f4")[0]
            rec[:, 1:] = x
            rec.tofile(f)
    os.replace(tmp, path)


def read_fvecs(path):
    """An .fvecs file as an (n, dim) float32 array (a view of a memory map)."""
    raw = np.memmap(path, dtype="<i4", mode="r")
    if raw.size == 0:
        return np.empty((0, 0), dtype=np.float32)
    dim = int(raw[0])
    if dim <= 0 or raw.size % (dim + 1):
        raise ValueError("%s: not an .fvecs file" % path)
    return raw.reshape(-1, dim + 1)[:, 1:].view("<f4")


def gauss_rows(r, rng, centres, n):
    for s in range(0, n, CHUNK):
        m = min(CHUNK, n - s)
        c = rng.integers(0, len(centres), size=m)
        yield (centres[c] + np.float32(r["spread"]) * rng.standard_normal((m, r["dim"]), dtype=np.float32))


def lowrank_rows(r, rng, basis, topics, n):
    for s in range(0, n, CHUNK):
        m = min(CHUNK, n - s)
        c = rng.integers(0, len(topics), size=m)
        z = topics[c] + r["topic_spread"] * rng.standard_normal((m, r["rank"]))
        x = z @ basis.T + r["noise"] * rng.standard_normal((m, r["dim"]))
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        yield x.astype(np.float32)


def generate(r, base_path, query_path):
    """Write the base and the queries of recipe r: one seed, separate streams for the
    model (centres, basis, topics), the base and the queries."""
    model, bstream, qstream = (np.random.default_rng(s) for s in np.random.SeedSequence(r["seed"]).spawn(3))
    if r["kind"] == "gauss":
        centres = model.standard_normal((r["centres"], r["dim"]), dtype=np.float32)
        rows = lambda rng, n: gauss_rows(r, rng, centres, n)  # noqa: E731
    else:
        q, _ = np.linalg.qr(model.standard_normal((r["dim"], r["rank"])))
        sv = r["sv_scale"] * (np.arange(r["rank"]) + 1.0) ** -r["sv_power"]
        basis = q * sv  # U S: 768 x 64
        topics = model.standard_normal((r["topics"], r["rank"]))
        rows = lambda rng, n: lowrank_rows(r, rng, basis, topics, n)  # noqa: E731
    write_fvecs(query_path, rows(qstream, r["nq"]), r["dim"])
    write_fvecs(base_path, rows(bstream, r["n"]), r["dim"])


def dist64(metric, q, x):
    """float64 distances of queries q (m, d) to candidate rows x (m, c, d)."""
    q = q.astype(np.float64)[:, None, :]
    x = x.astype(np.float64)
    if metric == "l2":
        diff = x - q
        return np.einsum("mcd,mcd->mc", diff, diff)
    dot = np.einsum("mcd,mcd->mc", x, q)
    nx = np.sqrt(np.einsum("mcd,mcd->mc", x, x))
    nq = np.sqrt(np.einsum("mcd,mcd->mc", q, q))
    return 1.0 - dot / (nx * nq)


def rank(ids, dist):
    """Sort each row by (distance, id)."""
    order = np.lexsort((ids, dist), axis=1)
    return np.take_along_axis(ids, order, axis=1), np.take_along_axis(dist, order, axis=1)


def exact_scan(metric, xb, q, k):
    """numpy's float64 scan of the whole base: the k nearest (ids, dist) of queries q."""
    qd = q.astype(np.float64)
    qn = (qd * qd).sum(axis=1)
    d = np.empty((len(q), len(xb)))
    for s in range(0, len(xb), CHUNK):
        b = xb[s:s + CHUNK].astype(np.float64)
        bn = (b * b).sum(axis=1)
        if metric == "l2":
            d[:, s:s + len(b)] = qn[:, None] + bn[None, :] - 2.0 * (qd @ b.T)
        else:
            d[:, s:s + len(b)] = 1.0 - (qd @ b.T) / np.sqrt(qn[:, None] * bn[None, :])
    part = np.argpartition(d, k - 1, axis=1)[:, :k]
    return rank(part, np.take_along_axis(d, part, axis=1))


def ground_truth(metric, xb, xq, path, sample=20):
    """(ids, dist): the GT_K nearest of each query, exact (see the module's text), cached
    in path."""
    try:
        with np.load(path) as z:
            if z["ids"].shape == (len(xq), GT_K):
                return z["ids"], z["dist"]
    except (OSError, ValueError, KeyError):
        pass
    import faiss
    t0 = time.perf_counter()
    k = min(GT_K, len(xb))
    dim = xb.shape[1]
    if metric == "l2":
        index = faiss.IndexFlatL2(dim)
    else:
        index = faiss.IndexFlatIP(dim)
    for s in range(0, len(xb), 262144):
        b = np.ascontiguousarray(xb[s:s + 262144], dtype=np.float32)
        if metric == "cosine":
            b = b / np.linalg.norm(b, axis=1, keepdims=True)
        index.add(b)
    ids = np.empty((len(xq), k), dtype=np.int64)
    dist = np.empty((len(xq), k))
    for s in range(0, len(xq), 1000):
        q = np.ascontiguousarray(xq[s:s + 1000], dtype=np.float32)
        if metric == "cosine":
            q = q / np.linalg.norm(q, axis=1, keepdims=True)
        _, cand = index.search(q, k)
        for t in range(0, len(q), 100):  # float64 distances of the candidates, 100 queries at a time
            c = cand[t:t + 100]
            ids[s + t:s + t + len(c)], dist[s + t:s + t + len(c)] = rank(
                c, dist64(metric, xq[s + t:s + t + len(c)], xb[c.ravel()].reshape(len(c), k, dim)))
    # The check: a sample of queries against numpy's scan of the whole base.
    pick = np.unique(np.linspace(0, len(xq) - 1, min(sample, len(xq))).astype(np.int64))
    _, sd = exact_scan(metric, xb, xq[pick], k)
    if not np.allclose(sd, dist[pick], rtol=1e-9, atol=1e-12):
        bad = np.argwhere(~np.isclose(sd, dist[pick], rtol=1e-9, atol=1e-12))[0]
        sys.exit("hnsw_data: the ground truth of query %d differs from numpy's exact scan at rank %d: %r vs %r"
                 % (pick[bad[0]], bad[1], dist[pick][tuple(bad)], sd[tuple(bad)]))
    tmp = path + ".tmp.npz"
    np.savez(tmp, ids=ids, dist=dist)
    os.replace(tmp, path)
    print("hnsw_data: ground truth of %d queries (top %d) in %.1f s, %d checked against numpy's scan, cached in %s"
          % (len(xq), k, time.perf_counter() - t0, len(pick), path), file=sys.stderr)
    return ids, dist


def load(path):
    """A base or query file of bench hnsw (IDX .gz or .fvecs) as float32 rows."""
    if path.endswith(".fvecs"):
        return read_fvecs(path)
    return idx_f32(path)


def prepare(name, out, scale=1.0, nq=0):
    """Make (or find) data set name in out/hnsw-data; return its shell variables."""
    d = os.path.join(out, "hnsw-data")
    os.makedirs(d, exist_ok=True)
    if name == "fashion-mnist":
        base, queries = FASHION + "train-images-idx3-ubyte.gz", FASHION + "t10k-images-idx3-ubyte.gz"
        metric, lab = "l2", "fashion-mnist-784"
        stem = os.path.join(d, "%s-v%d" % (lab, VERSION))
    elif name in RECIPES:
        r = scaled(RECIPES[name], scale)
        metric, lab = r["metric"], label(name, r["n"], r["dim"])
        stem = os.path.join(d, "%s-%s" % (lab, recipe_hash(r)))
        base, queries = stem + ".base.fvecs", stem + ".query.fvecs"
        want = lambda n: n * (r["dim"] + 1) * 4  # noqa: E731
        if not (os.path.exists(base) and os.path.getsize(base) == want(r["n"])
                and os.path.exists(queries) and os.path.getsize(queries) == want(r["nq"])):
            t0 = time.perf_counter()
            generate(r, base, queries)
            print("hnsw_data: %s (%d + %d queries, recipe %s) made in %.1f s"
                  % (lab, r["n"], r["nq"], json.dumps(r, sort_keys=True), time.perf_counter() - t0), file=sys.stderr)
    else:
        sys.exit("hnsw_data: no data set %r (%s)" % (name, ", ".join(NAMES)))
    xb, xq = load(base), load(queries)
    if 0 < nq < len(xq):
        xq = xq[:nq]
    gt = "%s-gt-%d.npz" % (stem, len(xq))
    ground_truth(metric, xb, xq, gt)
    return {"dataset": lab, "metric": metric, "base": base, "queries": queries, "gt": gt}


def main():
    ap = argparse.ArgumentParser(description="make a data set of bench hnsw and its exact ground truth")
    ap.add_argument("name", choices=NAMES)
    ap.add_argument("dir")
    ap.add_argument("--scale", type=float, default=1.0, help="0 < S <= 1: a small version (synthetic sets)")
    ap.add_argument("--nq", type=int, default=0, help="ground truth of the first NQ queries (0: all)")
    a = ap.parse_args()
    if not 0 < a.scale <= 1:
        sys.exit("hnsw_data: --scale must be in (0, 1]")
    for k, v in prepare(a.name, a.dir, a.scale, a.nq).items():
        print("%s='%s'" % (k, v))


if __name__ == "__main__":
    main()
