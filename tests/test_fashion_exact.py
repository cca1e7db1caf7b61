"""Fashion-MNIST exactness: nvf-tool's flat euclidean search against an independent
brute force.

The 60,000 training images go into a flat euclidean collection of dimension 784
with `nvf-tool import`; the test images are the queries of `nvf-tool search --json
-k 10`. QUERIES below says how many: all 10,000, no --limit reduction needed.
Measured on the 2-core CI machine: import 0.8 s, search 7.8 s, numpy reference
24 s, whole test 33 s, within the minute CI can afford. The reference's time is
numpy's matrix product, so it assumes an optimised BLAS (OpenBLAS); with Debian's
reference BLAS the same product takes about ten times longer.

The reference reads the IDX .gz files itself (gzip + numpy, not the tool) and
computes squared distances |q|^2 + |x|^2 - 2 q.x in float64, which is exact for
these integer pixels (every term is an integer below 2^53). The comparison is
tie-aware: the tool's 10 distances must equal the sorted 10 smallest true ones
(within 1e-3 relative), and every returned id's true distance must be at most the
true 10th; among equal distances any ids may be returned. The dataset comes from
the Debian package dataset-fashion-mnist, which ./setup.sh installs.
"""
import gzip
import json
import os
import subprocess
import time

import numpy as np
import pytest

DATA = "/usr/share/datasets/fashion-mnist"
TRAIN = os.path.join(DATA, "train-images-idx3-ubyte.gz")
TEST = os.path.join(DATA, "t10k-images-idx3-ubyte.gz")
K = 10
QUERIES = 10000  # all of them; see the docstring


def read_idx_u8(path):
    """An IDX file of uint8 images as an (n, rows * cols) array."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    assert raw[0] == 0 and raw[1] == 0 and raw[2] == 0x08, f"{path}: not a uint8 IDX file"
    nd = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * nd)
    assert data.size == int(np.prod(shape)), f"{path}: {data.size} bytes of data for shape {shape}"
    return data.reshape(shape[0], -1)


def run(tool, *args):
    p = subprocess.run([tool, *map(str, args)], capture_output=True, text=True, timeout=1100)
    assert p.returncode == 0, f"nvf-tool {' '.join(map(str, args))}: exit {p.returncode}\n{p.stderr}"
    return p.stdout


def test_fashion_mnist_exact(tmp_path, capsys):
    start = time.monotonic()
    tool = os.environ.get("NVF_TOOL")
    if not tool:
        pytest.fail("NVF_TOOL is not set: run this through `meson test --suite exact`")
    for f in (TRAIN, TEST):
        if not os.path.exists(f):
            pytest.fail(f"{f} is missing: run ./setup.sh (it installs the Debian package dataset-fashion-mnist)")

    db = tmp_path / "fashion.nvf"
    run(tool, "create", db, "--dim", 784, "--metric", "euclidean", "--index", "flat")
    t0 = time.monotonic()
    out = run(tool, "import", db, TRAIN)
    t_import = time.monotonic() - t0
    assert out.startswith("imported 60000 vectors") and "(ids 0..59999)" in out, out
    info = json.loads(run(tool, "info", "--json", db))
    assert (info["dim"], info["count"]) == (784, 60000)

    t0 = time.monotonic()
    out = run(tool, "search", db, "--query-file", TEST, "-k", K, "--json", "--limit", QUERIES)
    t_search = time.monotonic() - t0
    results = [json.loads(line) for line in out.splitlines()]
    assert len(results) == QUERIES

    # The reference, independent of the tool.
    t0 = time.monotonic()
    x = read_idx_u8(TRAIN).astype(np.float64)
    q = read_idx_u8(TEST)[:QUERIES].astype(np.float64)
    assert x.shape == (60000, 784) and q.shape == (QUERIES, 784)
    xn = (x * x).sum(1)
    qn = (q * q).sum(1)
    ties = boundary_ties = zero = 0
    block = 1000
    for b0 in range(0, QUERIES, block):
        d2 = qn[b0:b0 + block, None] + xn[None, :] - 2.0 * (q[b0:b0 + block] @ x.T)
        # K + 1 smallest, to see ties across the K-th place.
        part = np.partition(d2, K, axis=1)[:, :K + 1]
        part.sort(axis=1)
        for i in range(d2.shape[0]):
            qi = b0 + i
            r = results[qi]
            assert r["query"] == qi
            ids = np.array(r["ids"], dtype=np.int64)
            dist = np.array(r["distances"], dtype=np.float64)
            assert len(ids) == K and len(set(ids.tolist())) == K, f"query {qi}: ids {ids}"
            assert ids.min() >= 0 and ids.max() < 60000, f"query {qi}: ids {ids}"
            true_k = part[i, :K]
            kth = true_k[-1]
            np.testing.assert_allclose(dist, np.sqrt(true_k), rtol=1e-3, atol=1e-3,
                                       err_msg=f"query {qi}: distances")
            got = d2[i, ids]
            assert np.all(got <= kth), f"query {qi}: ids {ids} at squared {got}, true 10th {kth}"
            if len(np.unique(true_k)) < K or part[i, K] == kth:
                ties += 1
            if part[i, K] == kth:
                boundary_ties += 1
            zero += int(true_k[0] == 0)
    t_ref = time.monotonic() - t0
    total = time.monotonic() - start
    with capsys.disabled():
        print(f"\nfashion-mnist: {QUERIES} queries, k {K}: import {t_import:.1f} s, search {t_search:.1f} s "
              f"({QUERIES / t_search:.0f} queries/s), numpy reference {t_ref:.1f} s, total {total:.1f} s; "
              f"{ties} queries with equal distances among their 11 nearest "
              f"({boundary_ties} across the 10th place), {zero} with an exact duplicate")
