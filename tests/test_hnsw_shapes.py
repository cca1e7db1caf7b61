"""HNSW recall on small versions of bench hnsw's two synthetic shapes, through nvf-tool,
against the exact scan (`nvf-tool search --exact`): no timing, only recall.

The data are bench/hnsw_data.py's own recipes at a small scale (the same code, so the
same shapes: the points per cluster stay as in the full sets):
 - gauss: 20,000 x 96, 20 Gaussian centres (gauss-1m-96 at scale 0.02), L2;
 - lowrank: 10,000 x 768, 10 topics through a decaying 64-dim basis plus noise,
   normalized (lowrank-200k-768 at scale 0.05), cosine;
200 queries each, from the recipe's query stream.

Each shape is built three times, M 16, ef_construction 200, 2 threads:
 - with the defaults (quantize auto): recall@10 at the default ef (64) must be at
   least 0.95, the issue's goal; the walk auto chose must be in the file (info --json:
   hnsw.walk and hnsw.calibration, measured at the whole collection) and shown by
   `nvf-tool info`; the same graph walked on float32 (--full-precision) at least 0.95;
 - with --quantize none (float32 walk, no codes): at least 0.95 at the default ef;
 - with --quantize sq4 (the walk always on the 4-bit codes, not measured): a floor
   per shape (SQ4_FLOOR below) at the default ef, and at least 0.95 at ef 400: the
   codes only rank the walk, the results are re-ranked on float32.
Recall is tie-aware: a returned id counts if its exact distance (as the exact scan
reports distances) is at most the exact 10th.

Run by `meson test --suite hnsw` (NVF_TOOL: the built binary).
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
import hnsw_data  # noqa: E402  (bench hnsw's generators: the same recipes)

K = 10
NQ = 200
DEFAULT_EF = 64
SHAPES = {
    # name: (recipe, scale, nvf-tool metric)
    "gauss": ("gauss-1m-96", 0.02, "euclidean"),
    "lowrank": ("lowrank-200k-768", 0.05, "cosine"),
}
# The 4-bit walk at the default ef, measured (the exact numbers print): a floor a few
# points under them. On the gauss shape the codes cannot rank a cluster's
# near-equidistant members (the reason quantize auto measures the walk).
SQ4_FLOOR = {"gauss": 0.75, "lowrank": 0.85}


@pytest.fixture(scope="module")
def tool():
    path = os.environ.get("NVF_TOOL")
    if not path:
        pytest.fail("NVF_TOOL is not set: run this through `meson test --suite hnsw`")
    return path


def run(tool, *args):
    p = subprocess.run([tool, *map(str, args)], capture_output=True, text=True, timeout=1500)
    assert p.returncode == 0, f"nvf-tool {' '.join(map(str, args))}: exit {p.returncode}\n{p.stderr}"
    return p.stdout


def search(tool, db, queries, *extra):
    out = run(tool, "search", db, "--query-file", queries, "-k", K, "--json", "--threads", 2, *extra)
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == NQ
    return rows


def recall(got, exact):
    """Tie-aware recall@K of the graph results got against the exact scan's."""
    hit = want = 0
    for g, e in zip(got, exact):
        assert len(e["ids"]) == K
        kth = e["distances"][K - 1]
        want += K
        seen = set()
        for i, d in zip(g["ids"], g["distances"]):
            if i not in seen and d <= kth + 1e-6 * abs(kth) + 1e-7:
                hit += 1
            seen.add(i)
    return hit / want


@pytest.fixture(scope="module", params=sorted(SHAPES))
def shape(request, tool, tmp_path_factory):
    """(name, metric, dir, base.fvecs, queries.fvecs, n, exact results)."""
    name = request.param
    recipe, scale, metric = SHAPES[name]
    d = tmp_path_factory.mktemp(name)
    r = dict(hnsw_data.scaled(hnsw_data.RECIPES[recipe], scale), nq=NQ)
    base, queries = str(d / "base.fvecs"), str(d / "queries.fvecs")
    hnsw_data.generate(r, base, queries)
    xb = hnsw_data.read_fvecs(base)
    assert xb.shape == (r["n"], r["dim"]) and np.isfinite(xb).all()
    flat = str(d / "flat.nvf")
    run(tool, "create", flat, "--dim", r["dim"], "--metric", metric, "--nosync")
    run(tool, "import", flat, base)
    exact = search(tool, flat, queries, "--exact")
    return name, metric, d, base, queries, r["n"], r["dim"], exact


def build(tool, shape, quantize):
    name, metric, d, base, _, n, dim, _ = shape
    db = str(d / f"hnsw-{quantize}.nvf")
    if not os.path.exists(db):
        run(tool, "create", db, "--dim", dim, "--metric", metric, "--index", "hnsw", "--quantize", quantize,
            "--nosync")
        run(tool, "import", db, base)
    return db


def test_default_build_reaches_095_at_the_default_ef(tool, shape):
    name, _, _, _, queries, n, _, exact = shape
    db = build(tool, shape, "auto")
    info = json.loads(run(tool, "info", "--json", db))
    h = info["hnsw"]
    cal = h["calibration"]
    r = recall(search(tool, db, queries), exact)
    rf = recall(search(tool, db, queries, "--full-precision"), exact)
    print(f"{name}: quantize auto chose walk {h['walk']} (at {cal['nodes']} nodes: recall@10 "
          f"{cal['recall_codes']:.3f} on the codes, {cal['recall_float']:.3f} on float32); recall@10 at the "
          f"default ef {h['ef_search']}: {r:.4f}, on float32 {rf:.4f}")
    # The choice is in the file, measured at the whole collection, and `info` shows it.
    # Codes the walk does not use are not kept in the file.
    assert h["walk"] in ("codes", "float") and cal["nodes"] == n
    assert h["ef_search"] == DEFAULT_EF and h["quantize"] == ("sq4" if h["walk"] == "codes" else "none")
    assert 0 < cal["recall_codes"] <= 1 and 0 < cal["recall_float"] <= 1
    assert (h["walk"] == "float") == (cal["recall_codes"] + 0.005 < cal["recall_float"])
    text = run(tool, "info", db)
    shown = "float32" if h["walk"] == "float" else "4-bit codes"
    assert f"walk            {shown} (quantize auto: at {n} nodes" in text, text
    assert ("the codes are not kept" in text) == (h["walk"] == "float"), text
    # The goal, and the graph itself on float32.
    assert r >= 0.95, f"{name}: recall@10 at the default ef {r:.4f} < 0.95 (walk {h['walk']})"
    assert rf >= 0.95, f"{name}: recall@10 at the default ef on float32 {rf:.4f} < 0.95"


def test_float32_walk_reaches_095_at_the_default_ef(tool, shape):
    name, _, _, _, queries, _, _, exact = shape
    db = build(tool, shape, "none")
    info = json.loads(run(tool, "info", "--json", db))
    assert info["hnsw"]["quantize"] == "none" and info["hnsw"]["walk"] == "float"
    r = recall(search(tool, db, queries), exact)
    print(f"{name}: quantize none, recall@10 at the default ef: {r:.4f}")
    assert r >= 0.95, f"{name}: float32 walk, recall@10 at the default ef {r:.4f} < 0.95"


def test_4bit_walk_against_the_exact_scan(tool, shape):
    name, _, _, _, queries, _, _, exact = shape
    db = build(tool, shape, "sq4")
    h = json.loads(run(tool, "info", "--json", db))["hnsw"]
    assert h["quantize"] == "sq4" and h["walk"] == "codes" and "calibration" not in h  # not measured
    r = recall(search(tool, db, queries), exact)
    r400 = recall(search(tool, db, queries, "--ef", 400), exact)
    print(f"{name}: quantize sq4, recall@10 at the default ef: {r:.4f}, at ef 400: {r400:.4f}")
    assert r >= SQ4_FLOOR[name], f"{name}: 4-bit walk, recall@10 at the default ef {r:.4f} < {SQ4_FLOOR[name]}"
    assert r400 >= 0.95, f"{name}: 4-bit walk, recall@10 at ef 400 {r400:.4f} < 0.95"
