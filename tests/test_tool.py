"""nvf-tool end to end: every subcommand through real processes on small files that
numpy writes in a temporary directory, results checked against a float64 brute force.

Run by `meson test --suite tool`, which sets NVF_TOOL to the built binary.
"""
import gzip
import json
import os
import subprocess

import numpy as np
import pytest

COMMANDS = ["create", "import", "search", "info", "check", "reindex", "meta", "tag", "field",
            "snapshot", "compact", "backup", "get", "put", "delete", "export", "stats", "inspect"]


@pytest.fixture(scope="session")
def tool():
    path = os.environ.get("NVF_TOOL")
    if not path:
        pytest.fail("NVF_TOOL is not set: run this through `meson test --suite tool` "
                    "(or set NVF_TOOL to the nvf-tool binary)")
    if not os.access(path, os.X_OK):
        pytest.fail(f"NVF_TOOL={path} is not an executable")
    return path


class Tool:
    def __init__(self, path):
        self.path = path

    def run(self, *args, code=0):
        """Run nvf-tool; assert its exit status; on failure, assert the one-line
        stderr that every error must be."""
        p = subprocess.run([self.path, *map(str, args)], capture_output=True, text=True, timeout=300)
        assert p.returncode == code, (
            f"nvf-tool {' '.join(map(str, args))}: exit {p.returncode}, expected {code}\n"
            f"stdout: {p.stdout[:2000]}\nstderr: {p.stderr}")
        if code != 0:
            lines = p.stderr.splitlines()
            assert len(lines) == 1, f"expected one stderr line, got {lines!r}"
            assert lines[0].startswith("nvf-tool: "), lines[0]
        else:
            assert p.stderr == "", p.stderr
        return p

    def info(self, db):
        return json.loads(self.run("info", "--json", db).stdout)

    def search(self, db, queries, k, *extra):
        out = self.run("search", db, "--query-file", queries, "-k", k, "--json", *extra).stdout
        return [json.loads(line) for line in out.splitlines()]


@pytest.fixture
def t(tool):
    return Tool(tool)


# ---- writers ----

def write_fvecs(path, x):
    x = np.ascontiguousarray(x, dtype="<f4")
    rec = np.empty((x.shape[0], x.shape[1] + 1), dtype="<i4")
    rec[:, 0] = x.shape[1]
    rec[:, 1:] = x.view("<i4")
    data = rec.tobytes()
    if str(path).endswith(".gz"):
        data = gzip.compress(data)
    path.write_bytes(data)


def write_bvecs(path, x):
    x = np.ascontiguousarray(x, dtype=np.uint8)
    n, d = x.shape
    rec = np.empty((n, 4 + d), dtype=np.uint8)
    rec[:, :4] = np.frombuffer(np.int32(d).astype("<i4").tobytes(), dtype=np.uint8)
    rec[:, 4:] = x
    path.write_bytes(rec.tobytes())


def write_idx(path, x):
    """IDX as MNIST has it: big-endian; uint8 (type 0x08) or float32 (0x0D)."""
    x = np.asarray(x)
    code = {np.dtype(np.uint8): 0x08, np.dtype(np.float32): 0x0D}[x.dtype]
    head = bytes([0, 0, code, x.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in x.shape)
    data = head + x.astype(x.dtype.newbyteorder(">")).tobytes()
    if str(path).endswith(".gz"):
        data = gzip.compress(data)
    path.write_bytes(data)


def write_npy(path, x):
    np.save(path, x, allow_pickle=False)


# ---- the reference ----

def brute_force(data, queries):
    """Exact euclidean distances in float64, queries x data."""
    d = data.astype(np.float64)
    q = queries.astype(np.float64)
    d2 = (q * q).sum(1)[:, None] + (d * d).sum(1)[None, :] - 2.0 * q @ d.T
    return np.sqrt(np.maximum(d2, 0.0))


def assert_knn(results, data, queries, k, rtol=1e-4, atol=1e-4):
    """Tie-aware: the distances must be the k smallest true ones, and every returned
    id must be at most as far as the true k-th (ids may differ among equals)."""
    assert len(results) == len(queries)
    true = brute_force(data, queries)
    for i, r in enumerate(results):
        assert list(r) == ["query", "ids", "distances"], r
        assert r["query"] == i
        ids, dist = r["ids"], r["distances"]
        assert len(ids) == k and len(dist) == k
        assert all(isinstance(x, float) for x in dist), dist
        assert len(set(ids)) == k, f"query {i}: repeated ids {ids}"
        assert all(0 <= j < len(data) for j in ids)
        want = np.sort(true[i])[:k]
        np.testing.assert_allclose(dist, want, rtol=rtol, atol=atol, err_msg=f"query {i}")
        kth = want[-1]
        got = true[i][ids]
        assert np.all(got <= kth * (1 + rtol) + atol), f"query {i}: ids {ids} at {got}, true k-th {kth}"


def rng(seed=1):
    return np.random.default_rng(seed)


# ---- help and usage ----

def test_main_help_exits_0(t):
    for args in (["--help"], ["-h"], ["help"]):
        out = t.run(*args).stdout
        assert out.startswith("usage: nvf-tool")
        for c in COMMANDS:
            assert f"  {c} " in out


@pytest.mark.parametrize("cmd", COMMANDS)
def test_every_command_has_help(t, cmd):
    for args in ([cmd, "--help"], [cmd, "-h"], ["help", cmd], [cmd, "somedb", "--help"]):
        out = t.run(*args).stdout
        assert out.startswith(f"usage: nvf-tool {cmd} "), out


def test_version(t):
    assert t.run("--version").stdout.startswith("nvf-tool ")


def test_usage_errors_exit_2_with_one_line(t, tmp_path):
    db = tmp_path / "u.nvf"
    f = tmp_path / "q.fvecs"
    write_fvecs(f, rng().standard_normal((4, 4)))
    cases = [
        [],
        ["bogus"],
        ["--bogus"],
        ["help", "bogus"],
        ["create", db],
        ["create", "--dim", "4"],
        ["create", db, "--dim"],
        ["create", db, "--dim", "x"],
        ["create", db, "--dim", "-3"],
        ["create", db, "--dim", "0"],
        ["create", db, "--dim", "99999999999999999999999"],
        ["create", db, "--dim", "4", "--bogus"],
        ["create", db, "--dim", "4", "extra"],
        ["create", db, "--dim", "4", "--metric", "nope"],
        ["create", db, "--dim", "4", "--index", "ivf"],
        ["create", db, "--dim", "4", "--M", "8"],  # HNSW parameters need --index hnsw
        ["create", db, "--dim", "4", "--quantize", "sq4"],
        ["create", db, "--dim", "4", "--index", "hnsw", "--quantize", "pq"],
        ["import", db],
        ["import", db, f, "--batch", "0"],
        ["import", db, f, "--format", "csv"],
        ["search", db, "-k", "3"],
        ["search", db, "--query-file", f],
        ["search", db, "-q", f, "-k", "0"],
        ["search", db, "-q", f, "-k", "3", "--limit", "abc"],
        ["search", db, "-q", f, "-k", "3", "--threads", "x"],
        ["search", db, "-q", f, "-k", "3", "--exact", "--ef", "5"],
        ["search", db, "-q", f, "-k", "3", "--exact", "--full-precision"],
        ["info"],
        ["info", db, "extra"],
        ["check", db, "--json=yes"],
        ["check", "-z", db],
    ]
    for args in cases:
        t.run(*args, code=2)
    assert not db.exists()


# ---- round trips ----

def make_data(kind, n, d, seed=1):
    r = rng(seed)
    if kind in ("u8", "bvecs", "idx-u8"):
        return r.integers(0, 256, size=(n, d)).astype(np.uint8)
    if kind == "i4":
        return r.integers(-1000, 1000, size=(n, d)).astype(np.int32)
    if kind == "f8":
        return r.standard_normal((n, d))
    return r.standard_normal((n, d)).astype(np.float32)


FORMATS = {
    # name: (file name, kind, writer)
    "fvecs": ("data.fvecs", "f4", write_fvecs),
    "fvecs.gz": ("data.fvecs.gz", "f4", write_fvecs),
    "bvecs": ("data.bvecs", "bvecs", write_bvecs),
    "npy-f4": ("data.npy", "f4", write_npy),
    "npy-f8": ("data.npy", "f8", write_npy),
    "npy-u1": ("data.npy", "u8", write_npy),
    "npy-i4": ("data.npy", "i4", write_npy),
    "idx": ("data-idx3-ubyte", "idx-u8", write_idx),
    "idx.gz": ("data.idx.gz", "idx-u8", write_idx),
    "idx-f32": ("data.idx", "f4", write_idx),
}


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_round_trip(t, tmp_path, fmt):
    name, kind, writer = FORMATS[fmt]
    n, d, k = 300, 12, 7
    data = make_data(kind, n, d)
    if fmt.startswith("idx"):
        data = data.reshape(n, 3, 4)  # IDX flattens the dimensions after the first
    f = tmp_path / name
    writer(f, data)
    data = data.reshape(n, d).astype(np.float32)  # what the tool reads

    db = tmp_path / "rt.nvf"
    t.run("create", db, "--dim", d)
    out = t.run("import", db, f).stdout
    assert out.startswith(f"imported {n} vectors") and f"(ids 0..{n - 1})" in out, out
    info = t.info(db)
    assert (info["dim"], info["count"], info["next_id"], info["metric"], info["index"]) == \
        (d, n, n, "euclidean", "flat")

    # The file's own records as queries: each finds itself first, which shows
    # that ids follow the file's order.
    res = t.search(db, f, k)
    assert_knn(res, data, data, k)
    for i, r in enumerate(res):
        assert r["ids"][0] == i and r["distances"][0] == 0.0

    t.run("check", db)


def test_search_options_agree(t, tmp_path):
    n, d, k = 500, 16, 10
    data = make_data("f4", n, d)
    queries = make_data("f4", 40, d, seed=2)
    f, q = tmp_path / "d.npy", tmp_path / "q.fvecs"
    write_npy(f, data)
    write_fvecs(q, queries)
    db = tmp_path / "s.nvf"
    t.run("create", db, "--dim", d)
    t.run("import", db, f)
    base = t.search(db, q, k)
    assert_knn(base, data, queries, k)
    for extra in (["--threads", "1"], ["--threads", "2"], ["--exact"]):
        assert t.search(db, q, k, *extra) == base, extra
    assert t.search(db, q, k, "--limit", "3") == base[:3]
    assert t.search(db, q, k, "--limit", "1000") == base

    table = t.run("search", db, "-q", q, "-k", k).stdout.splitlines()
    assert table[0].split() == ["query", "rank", "id", "distance"]
    rows = [line.split() for line in table[1:1 + 40 * k]]
    assert [int(r[2]) for r in rows[:k]] == base[0]["ids"]
    assert table[1 + 40 * k].startswith("40 queries, k 10")


def test_import_appends_and_batches(t, tmp_path):
    d = 8
    a, b = make_data("f4", 123, d, 3), make_data("f4", 50, d, 4)
    fa, fb = tmp_path / "a.fvecs", tmp_path / "b.npy"
    write_fvecs(fa, a)
    write_npy(fb, b)
    db = tmp_path / "a.nvf"
    t.run("create", db, "--dim", d)
    t.run("import", db, fa, "--batch", "7")
    out = t.run("import", db, fb, "--batch", "1").stdout
    assert "imported 50 vectors" in out and "(ids 123..172)" in out
    info = t.info(db)
    assert (info["count"], info["next_id"]) == (173, 173)
    both = np.vstack([a, b])
    res = t.search(db, fb, 5)
    assert_knn(res, both, b, 5)
    assert [r["ids"][0] for r in res] == list(range(123, 173))
    t.run("check", db)


def test_format_option_overrides_the_name(t, tmp_path):
    d = 6
    x = make_data("f4", 20, d)
    f = tmp_path / "vectors.bin"
    write_fvecs(f, x)
    db = tmp_path / "f.nvf"
    t.run("create", db, "--dim", d)
    err = t.run("import", db, f, code=3).stderr
    assert "format" in err
    t.run("import", db, f, "--format", "fvecs")
    assert t.info(db)["count"] == 20


def test_empty_file_imports_nothing(t, tmp_path):
    db = tmp_path / "e.nvf"
    f = tmp_path / "empty.fvecs"
    f.write_bytes(b"")
    t.run("create", db, "--dim", 4)
    assert "imported 0 vectors" in t.run("import", db, f).stdout
    assert t.info(db)["count"] == 0
    q = tmp_path / "q.npy"
    write_npy(q, make_data("f4", 2, 4))
    assert t.search(db, q, 1) == [{"query": 0, "ids": [], "distances": []},
                                  {"query": 1, "ids": [], "distances": []}]


def test_create_settings_are_stored(t, tmp_path):
    db = tmp_path / "h.nvf"
    out = t.run("create", db, "--dim", 5, "--metric", "cosine", "--index", "hnsw", "--M", 12,
                "--ef-construction", 100, "--ef-search", 30, "--seed", 7, "--page-size", 8192,
                "--allow-nonfinite", "--nosync").stdout
    assert out.startswith(f"created {db}")
    info = t.info(db)
    assert info["metric"] == "cosine" and info["index"] == "hnsw"
    # quantize auto: sq4 codes, not made until the walk is measured (from 2,000 nodes
    # on): the walk is float32 until then.
    assert info["hnsw"] == {"M": 12, "ef_construction": 100, "ef_search": 30, "seed": 7, "quantize": "sq4",
                            "walk": "float",
                            "calibration": {"nodes": 0, "recall_codes": 0.0, "recall_float": 0.0}}
    assert info["page_size"] == 8192 and info["allow_nonfinite"] is True
    text = t.run("info", db).stdout
    assert "hnsw (M 12, ef_construction 100, ef_search 30, seed 7, quantize sq4)" in text
    assert "walk            float32 (quantize auto: measured from 2,000 nodes on)" in text
    # --quantize: auto resolves by metric; sq4 where the metric cannot use it is
    # the library's error (exit 1), naming the metric.
    for metric, q, want in [("euclidean", "none", "none"), ("manhattan", "auto", "none"),
                            ("inner_product", "sq4", "sq4")]:
        p = tmp_path / f"q-{metric}.nvf"
        t.run("create", p, "--dim", 5, "--metric", metric, "--index", "hnsw", "--quantize", q)
        h = t.info(p)["hnsw"]
        assert h["quantize"] == want and ("calibration" in h) == (q == "auto" and want == "sq4")
        assert h["walk"] == ("codes" if want == "sq4" else "float")
    err = t.run("create", tmp_path / "q.nvf", "--dim", 5, "--metric", "manhattan", "--index", "hnsw",
                "--quantize", "sq4", code=3).stderr
    assert "manhattan" in err and not (tmp_path / "q.nvf").exists()
    # Out of the library's ranges: an error (exit 1), not a usage error.
    t.run("create", tmp_path / "x.nvf", "--dim", 5, "--page-size", 1000, code=3)
    t.run("create", tmp_path / "y.nvf", "--dim", 5, "--index", "hnsw", "--M", 1, code=3)
    t.run("create", db, "--dim", 5, code=3)  # exists


def test_hnsw_collection_searches_exactly_with_exact(t, tmp_path):
    # --exact must scan every vector whatever the index: the results equal the
    # brute force (and a flat collection's) now and once the HNSW graph exists.
    n, d, k = 400, 10, 5
    data = make_data("f4", n, d, 11)
    queries = make_data("f4", 25, d, 12)
    f, q = tmp_path / "d.npy", tmp_path / "q.npy"
    write_npy(f, data)
    write_npy(q, queries)
    flat, hnsw = tmp_path / "flat.nvf", tmp_path / "hnsw.nvf"
    t.run("create", flat, "--dim", d)
    t.run("create", hnsw, "--dim", d, "--index", "hnsw", "--M", 8, "--ef-search", 16)
    t.run("import", flat, f)
    t.run("import", hnsw, f)
    res = t.search(hnsw, q, k, "--exact")
    assert_knn(res, data, queries, k)
    assert res == t.search(flat, q, k)
    t.run("check", hnsw)


def test_missing_database_is_an_error(t, tmp_path):
    f = tmp_path / "q.fvecs"
    write_fvecs(f, make_data("f4", 3, 4))
    for args in (["info", tmp_path / "none.nvf"], ["check", tmp_path / "none.nvf"],
                 ["import", tmp_path / "none.nvf", f],
                 ["search", tmp_path / "none.nvf", "-q", f, "-k", 1]):
        t.run(*args, code=3)
    t.run("import", tmp_path / "none.nvf", tmp_path / "none.fvecs", code=3)


# ---- malformed input leaves the collection as it was ----

@pytest.fixture
def filled(t, tmp_path):
    """A collection of dimension 16 holding 50 vectors."""
    db = tmp_path / "m.nvf"
    f = tmp_path / "good.fvecs"
    write_fvecs(f, make_data("f4", 50, 16, 9))
    t.run("create", db, "--dim", 16)
    t.run("import", db, f)
    return db


def import_fails(t, db, f, *words):
    before = t.info(db)
    err = t.run("import", db, f, "--batch", "4", code=3).stderr
    for w in words:
        assert w in err, f"{w!r} not in {err!r}"
    after = t.info(db)
    assert (after["count"], after["next_id"], after["txnid"]) == \
        (before["count"], before["next_id"], before["txnid"])
    return err


def test_truncated_last_record(t, tmp_path, filled):
    f = tmp_path / "trunc.fvecs"
    write_fvecs(f, make_data("f4", 20, 16))
    f.write_bytes(f.read_bytes()[:-10])
    err = import_fails(t, filled, f, "record 19", "truncated")
    assert "got 58 of 68 bytes" in err
    b = tmp_path / "trunc.bvecs"
    write_bvecs(b, make_data("u8", 20, 16))
    b.write_bytes(b.read_bytes()[:-1])
    import_fails(t, filled, b, "record 19", "truncated")
    n = tmp_path / "trunc.npy"
    write_npy(n, make_data("f4", 20, 16))
    n.write_bytes(n.read_bytes()[:-3])
    import_fails(t, filled, n, "record 19", "truncated")
    i = tmp_path / "trunc.idx.gz"
    write_idx(i, make_data("u8", 20, 16))
    raw = gzip.decompress(i.read_bytes())
    i.write_bytes(gzip.compress(raw[:-5]))
    import_fails(t, filled, i, "record 19", "truncated")
    # A gzip stream cut short is an error too, whatever record it stops in.
    g = tmp_path / "cut.fvecs.gz"
    write_fvecs(g, make_data("f4", 200, 16))
    g.write_bytes(g.read_bytes()[:-40])
    import_fails(t, filled, g, "record")


def test_record_with_another_dimension(t, tmp_path, filled):
    x = make_data("f4", 30, 16)
    good = tmp_path / "g.fvecs"
    write_fvecs(good, x)
    raw = bytearray(good.read_bytes())
    rec = 4 + 16 * 4
    raw[17 * rec:17 * rec + 4] = (15).to_bytes(4, "little")
    f = tmp_path / "dim.fvecs"
    f.write_bytes(bytes(raw))
    import_fails(t, filled, f, "record 17", "dimension 15, expected 16")
    raw[17 * rec:17 * rec + 4] = (-1).to_bytes(4, "little", signed=True)
    f.write_bytes(bytes(raw))
    import_fails(t, filled, f, "record 17", "dimension -1")


def test_absurd_first_dimension(t, tmp_path, filled):
    f = tmp_path / "text.fvecs"
    f.write_bytes(b"this is not a vector file at all\n")
    import_fails(t, filled, f, "record 0", "absurd")
    f.write_bytes((0).to_bytes(4, "little") + b"\0" * 64)
    import_fails(t, filled, f, "record 0", "dimension 0")


def test_bad_npy_headers(t, tmp_path, filled):
    x = make_data("f4", 10, 16)
    f = tmp_path / "bad.npy"
    write_npy(f, x)
    raw = f.read_bytes()
    f.write_bytes(raw.replace(b"'descr'", b"'dexcr'"))
    import_fails(t, filled, f, "npy header")
    f.write_bytes(raw.replace(b"{", b"[", 1))
    import_fails(t, filled, f, "npy header")
    f.write_bytes(b"\x93NUMPX" + raw[6:])
    import_fails(t, filled, f, "not a .npy file")
    f.write_bytes(raw[:20])
    import_fails(t, filled, f, "npy header", "truncated")
    write_npy(f, np.asfortranarray(x))
    import_fails(t, filled, f, "Fortran")
    write_npy(f, x.astype(np.int64))
    import_fails(t, filled, f, "dtype '<i8' not supported")
    write_npy(f, x.astype(">f4"))
    import_fails(t, filled, f, "dtype '>f4' not supported")
    write_npy(f, x.reshape(10, 4, 4))
    import_fails(t, filled, f, "2-D")
    write_npy(f, x[0])
    import_fails(t, filled, f, "2-D")
    write_npy(f, x)
    f.write_bytes(f.read_bytes() + b"\0" * 8)
    import_fails(t, filled, f, "after the 10 records")


def test_bad_idx_files(t, tmp_path, filled):
    f = tmp_path / "bad.idx"
    x = make_data("u8", 10, 16)
    write_idx(f, x)
    raw = f.read_bytes()
    f.write_bytes(raw[:2] + b"\x0c" + raw[3:])
    import_fails(t, filled, f, "0x0C", "not supported")
    f.write_bytes(b"\x01" + raw[1:])
    import_fails(t, filled, f, "not an IDX file")
    write_idx(f, x[:, 0].copy())
    import_fails(t, filled, f, "1-dimensional")


def test_wrong_dimension_for_the_collection(t, tmp_path, filled):
    f = tmp_path / "d8.npy"
    write_npy(f, make_data("f4", 10, 8))
    import_fails(t, filled, f, "record 0", "dimension 8", "dimension 16")
    err = t.run("search", filled, "-q", f, "-k", 3, code=3).stderr
    assert "dimension 8" in err


def test_nan_imports_nothing(t, tmp_path, filled):
    x = make_data("f4", 20, 16)
    x[13, 5] = np.nan
    f = tmp_path / "nan.npy"
    write_npy(f, x)
    import_fails(t, filled, f, "record 13", "NaN")
    x[13, 5] = np.inf
    write_fvecs(tmp_path / "inf.fvecs", x)
    import_fails(t, filled, tmp_path / "inf.fvecs", "record 13", "infinite")
    # A query with a NaN is refused the same way.
    assert "record 13" in t.run("search", filled, "-q", f, "-k", 3, code=3).stderr
    # Unless the collection allows them.
    db = tmp_path / "nf.nvf"
    t.run("create", db, "--dim", 16, "--allow-nonfinite")
    t.run("import", db, f)
    assert t.info(db)["count"] == 20


def test_k_larger_than_count(t, tmp_path, filled):
    f = tmp_path / "q.fvecs"
    write_fvecs(f, make_data("f4", 5, 16))
    # Past the count, every record, nearest first, exactly (even a huge k).
    every = t.search(filled, f, 50)
    assert all(sorted(r["ids"]) == list(range(50)) for r in every)
    assert t.search(filled, f, 51) == every
    assert t.search(filled, f, 10**6) == every


# ---- check ----

def test_check_reports_a_sound_file(t, filled):
    rep = json.loads(t.run("check", "--json", filled).stdout)
    assert rep["ok"] is True and rep["problem"] is None
    assert rep["pages_live"] > 0 and rep["trees"] > 0 and rep["entries"] >= 50
    assert rep["pages_total"] >= rep["pages_live"] + rep["pages_free"]
    text = t.run("check", filled).stdout
    assert "result          ok" in text


def test_check_finds_damage(t, tmp_path, filled):
    """A flipped byte in each page in turn: check (or opening) must fail with one
    line naming the page for at least the pages in use, and never crash."""
    raw = filled.read_bytes()
    ps = t.info(filled)["page_size"]
    npages = len(raw) // ps
    found = 0
    for pg in range(2, npages):
        bad = bytearray(raw)
        bad[pg * ps + ps // 2] ^= 0x5A
        f = tmp_path / "bad.nvf"
        f.write_bytes(bytes(bad))
        p = subprocess.run([t.path, "check", f], capture_output=True, text=True, timeout=60)
        assert p.returncode in (0, 1), p.stderr
        if p.returncode == 1:
            lines = p.stderr.splitlines()
            assert len(lines) == 1 and lines[0].startswith("nvf-tool: check: "), lines
            assert "page" in lines[0]
            found += 1
        for extra in (tmp_path / "bad.nvf-lock",):
            if extra.exists():
                extra.unlink()
    assert found > 0, "no damaged page was noticed"


def test_reindex_and_graph_search(t, tmp_path):
    # A flat collection becomes HNSW and back; the graph answers with high recall
    # at a wide --ef and is what plain searches use; --exact still scans.
    n, d, k = 2000, 12, 10
    data = make_data("f4", n, d, 21)
    queries = make_data("f4", 40, d, 22)
    f, q, db = tmp_path / "d.npy", tmp_path / "q.npy", tmp_path / "r.nvf"
    write_npy(f, data)
    write_npy(q, queries)
    t.run("create", db, "--dim", d)
    t.run("import", db, f)
    out = t.run("reindex", db, "--M", 12, "--ef-construction", 100).stdout
    assert out.startswith(f"reindexed {db}: {n} records, index hnsw (M 12, ef_construction 100")
    info = t.info(db)
    assert info["index"] == "hnsw" and info["hnsw"]["M"] == 12, info
    t.run("check", db)
    true = brute_force(data, queries)
    hits = 0
    for r, row in zip(t.search(db, q, k, "--ef", 200), true):
        kth = np.sort(row)[k - 1]
        hits += sum(1 for i in r["ids"] if row[i] <= kth + 1e-3)
    assert hits / (k * len(queries)) >= 0.95
    assert_knn(t.search(db, q, k, "--exact"), data, queries, k)
    # --full-precision walks on float32: at the same wide beam, as good.
    hits = 0
    for r, row in zip(t.search(db, q, k, "--ef", 200, "--full-precision"), true):
        kth = np.sort(row)[k - 1]
        hits += sum(1 for i in r["ids"] if row[i] <= kth + 1e-3)
    assert hits / (k * len(queries)) >= 0.95
    # The graph without its 4-bit copies, then with them again: same answers' quality.
    t.run("reindex", db, "--quantize", "none")
    assert t.info(db)["hnsw"]["quantize"] == "none"
    t.run("check", db)
    assert_knn(t.search(db, q, k, "--exact"), data, queries, k)
    hits = 0
    for r, row in zip(t.search(db, q, k, "--ef", 200), true):
        kth = np.sort(row)[k - 1]
        hits += sum(1 for i in r["ids"] if row[i] <= kth + 1e-3)
    assert hits / (k * len(queries)) >= 0.95
    t.run("reindex", db, "--index", "flat")
    assert t.info(db)["index"] == "flat"
    assert_knn(t.search(db, q, k), data, queries, k)
    # A flat collection has no beam to tune: saying so is an error, not ignored.
    for opt in (["--ef", 50], ["--full-precision"]):
        err = t.run("search", db, "-q", q, "-k", k, *opt, code=3).stderr
        assert "flat" in err and err.count("\n") == 1
    t.run("reindex", db, "--index", "flat", "--M", 4, code=2)
    t.run("reindex", db, "--index", "tree", code=2)
    t.run("reindex", tmp_path / "missing.nvf", code=3)


def test_documents_tags_fields_and_filtered_search(t, tmp_path):
    # Documents come in with --meta, change with meta set/patch and tag add/remove;
    # a field index changes no result; every plan returns the exact filtered answer
    # when it measures every passing record, and --explain says what ran.
    n, d, k = 3000, 16, 5
    data = make_data("f4", n, d, 31)
    queries = make_data("f4", 8, d, 32)
    f, q, m, db = tmp_path / "d.npy", tmp_path / "q.npy", tmp_path / "m.jsonl", tmp_path / "m.nvf"
    write_npy(f, data)
    write_npy(q, queries)
    m.write_text("".join(json.dumps({"cls": i % 10, "name": f"n{i}"}) + "\n" for i in range(n)))
    t.run("create", db, "--dim", d, "--index", "hnsw", "--codec", "zstd")
    t.run("import", db, f, "--meta", m)
    assert json.loads(t.run("meta", "get", db, 7).stdout) == {"cls": 7, "name": "n7"}
    t.run("meta", "patch", db, 7, '{"name": null, "x": 1}')
    t.run("tag", "add", db, 7, "red", "blue")
    t.run("tag", "remove", db, 7, "blue")
    rec = json.loads(t.run("meta", "get", db, 7, "--record").stdout)
    assert rec["meta"] == {"cls": 7, "x": 1} and rec["tags"] == ["red"] and rec["version"] == 4, rec
    assert t.run("tag", "list", db, 7).stdout == "red\n"
    t.run("meta", "set", db, 8, "null")
    assert t.run("meta", "get", db, 8).stdout.strip() == "null"
    t.run("meta", "set", db, 9, "[1]", code=3)
    t.run("meta", "patch", db, 10, "{bad", code=3)

    passing = np.array([i for i in range(n) if i % 10 == 3 and i != 8])
    true = brute_force(data[passing], queries)

    def check(results):
        for r, row in zip(results, true):
            want = np.sort(row)[:k]
            np.testing.assert_allclose(r["distances"], want, rtol=1e-4, atol=1e-4)
            assert all(i % 10 == 3 and i != 8 for i in r["ids"]), r

    flt = ("--filter", "cls = 3")
    before = t.search(db, q, k, "--exact", *flt)
    check(before)
    t.run("field", "add", db, "cls", "--type", "int")
    t.run("field", "add", db, "tags", "--type", "tags")
    fields = json.loads(t.run("field", "list", db, "--json").stdout)
    assert [(x["path"], x["type"], x["entries"]) for x in fields] == [("$.cls", "int", n - 1), ("tags", "tags", 1)]
    t.run("check", db)
    assert t.search(db, q, k, "--exact", *flt) == before
    check(t.search(db, q, k, "--plan", "exact", *flt))
    check(t.search(db, q, k, "--plan", "scan", *flt))
    out = t.run("search", db, "--query-file", q, "-k", k, "--json", "--explain", "--plan", "scan", *flt).stdout
    ex = json.loads(out.splitlines()[-1])["explain"]
    assert ex["plan"] == "scan-filtered" and ex["estimate_from"] == "index" and ex["estimate"] == len(passing), ex
    # The walks return k passing records (not the exact k: it is a graph).
    for plan in ("walk", "acorn"):
        for r in t.search(db, q, k, "--plan", plan, "--ef", 200, *flt):
            assert len(r["ids"]) == k and all(i % 10 == 3 and i != 8 for i in r["ids"]), (plan, r)
    tagged = t.search(db, q, k, "--filter", "tags CONTAINS 'red'")
    assert [r["ids"] for r in tagged] == [[7]] * len(queries)
    t.run("search", db, "--query-file", q, "-k", k, "--filter", "cls >", code=3)
    t.run("search", db, "--query-file", q, "-k", k, "--plan", "bogus", *flt, code=2)
    t.run("search", db, "--query-file", q, "-k", k, "--plan", "scan", code=2)
    t.run("field", "drop", db, "cls")
    assert [x["path"] for x in json.loads(t.run("field", "list", db, "--json").stdout)] == ["tags"]
    assert t.search(db, q, k, "--exact", *flt) == before


def test_snapshots_compact_and_backup(t, tmp_path):
    # snapshot create/list/delete/restore, search --snapshot, compact, backup: each
    # against what numpy holds; errors exit 3 with one line, usage errors 2.
    n, d, k = 400, 8, 5
    a = make_data("f4", n, d, 41)
    b = make_data("f4", n, d, 42)
    fa, fb, q, db = tmp_path / "a.npy", tmp_path / "b.npy", tmp_path / "q.npy", tmp_path / "s.nvf"
    write_npy(fa, a)
    write_npy(fb, b)
    write_npy(q, a[:6])
    t.run("create", db, "--dim", d)
    t.run("import", db, fa)
    out = t.run("snapshot", "create", db, "first", "--doc", '{"note": "a only"}').stdout
    assert out.startswith(f"snapshot first of {db}: state ")
    t.run("import", db, fb)  # ids n..2n-1
    assert t.run("snapshot", "create", db).stdout.startswith(f"snapshot snapshot-2 of {db}")
    snaps = json.loads(t.run("snapshot", "list", db, "--json").stdout)
    assert [(s["name"], s["records"], s["doc"]) for s in snaps] == [
        ("first", n, {"note": "a only"}), ("snapshot-2", 2 * n, None)]
    assert "first" in t.run("snapshot", "list", db).stdout
    both = np.vstack([a, b])
    assert_knn(t.search(db, q, k, "--snapshot", "first"), a, a[:6], k)
    assert_knn(t.search(db, q, k), both, a[:6], k)
    t.run("search", db, "-q", q, "-k", k, "--snapshot", "nope", code=3)
    # Restore: the current state becomes the first one; the snapshot stays.
    assert t.run("snapshot", "restore", db, "first").stdout.startswith(f"restored {db} to snapshot first: {n} records")
    assert t.info(db)["count"] == n
    assert_knn(t.search(db, q, k), a, a[:6], k)
    t.run("check", db)
    # diff: from the second snapshot to now, the second half was removed; a
    # changed document shows as such.
    assert t.run("snapshot", "diff", db, "first").stdout == "0 added, 0 removed, 0 changed\n"
    t.run("meta", "set", db, 3, '{"x": 1}')
    rows = [json.loads(x) for x in t.run("snapshot", "diff", db, "snapshot-2", "--json").stdout.splitlines()]
    assert rows == [{"id": 3, "what": "changed", "vector": False, "doc": True}] + [
        {"id": i, "what": "removed", "vector": False, "doc": False} for i in range(n, 2 * n)]
    p = t.run("snapshot", "diff", db, "-", "snapshot-2")
    assert p.stdout.splitlines()[:2] == ["changed  3 doc", f"added    {n}"]
    t.run("snapshot", "diff", db, "nope", code=3)
    t.run("meta", "set", db, 3, "null")
    # Compact and backup keep everything; the backup never overwrites.
    before = t.run("check", "--json", db).stdout
    size0 = db.stat().st_size
    out = t.run("compact", db).stdout
    assert out.startswith(f"compacted {db}: ")
    assert db.stat().st_size < size0
    rep = json.loads(t.run("check", "--json", db).stdout)
    assert rep["ok"] and rep["pages_free"] == 0 and rep["snapshots"] == 2, rep
    assert json.loads(before)["snapshots"] == 2
    assert_knn(t.search(db, q, k, "--snapshot", "snapshot-2"), both, a[:6], k)
    bk = tmp_path / "copy.nvf"
    assert t.run("backup", db, bk).stdout.startswith(f"backed up {db} to {bk}: ")
    t.run("check", bk)
    assert_knn(t.search(bk, q, k), a, a[:6], k)
    assert "already exists" in t.run("backup", db, bk, code=3).stderr
    t.run("backup", db, tmp_path / "no" / "dir.nvf", code=3)
    # Deleting, then the errors.
    assert t.run("snapshot", "delete", db, "first").stdout == f"deleted snapshot first of {db}\n"
    assert [s["name"] for s in json.loads(t.run("snapshot", "list", db, "--json").stdout)] == ["snapshot-2"]
    assert 'no snapshot named "first"' in t.run("snapshot", "restore", db, "first", code=3).stderr
    t.run("snapshot", "delete", db, "first", code=3)
    t.run("snapshot", "create", db, "snapshot-2", code=3)
    t.run("snapshot", "create", db, "x", "--doc", "[1]", code=3)
    t.run("snapshot", "create", db, "a/b", code=3)
    t.run("snapshot", "create", db, "x", "y", code=2)
    t.run("snapshot", "frobnicate", db, code=2)
    t.run("snapshot", "restore", db, code=2)
    t.run("compact", db, "--retrain-dict", code=3)  # documents stored without zstd-dict
    z = tmp_path / "z.nvf"
    t.run("create", z, "--dim", d, "--codec", "zstd-dict")
    docs = tmp_path / "m.jsonl"
    docs.write_text("".join(json.dumps({"name": f"record {i}", "tags": ["x", "y"][: i % 3]}) + "\n" for i in range(n)))
    t.run("import", z, fa, "--meta", docs)
    assert t.info(z)["documents"]["dict_bytes"] == 0
    t.run("compact", z, "--retrain-dict")
    assert t.info(z)["documents"]["dict_bytes"] > 0
    assert json.loads(t.run("meta", "get", z, 7).stdout) == {"name": "record 7", "tags": ["x"]}
    t.run("compact", tmp_path / "missing.nvf", code=3)
    t.run("compact", code=2)
    t.run("backup", db, code=2)


def test_export_import_round_trip_and_records(t, tmp_path):
    # export writes what import reads: vectors bit for bit (fvecs, npy), whole records
    # (jsonl: ids, documents, tags); --filter and --snapshot choose the records; get,
    # put and delete one record at a time, all or nothing.
    n, d = 300, 12
    x = make_data("f4", n, d, 51)
    f, db = tmp_path / "x.npy", tmp_path / "e.nvf"
    write_npy(f, x)
    t.run("create", db, "--dim", d, "--codec", "lz4")
    t.run("import", db, f)
    t.run("snapshot", "create", db, "plain")
    for i in range(0, n, 3):
        t.run("meta", "set", db, i, json.dumps({"i": i, "third": True, "s": "é\"\\n"}))
    t.run("tag", "add", db, 5, "five", "odd")
    t.run("delete", db, 1, 2)
    keep = [i for i in range(n) if i not in (1, 2)]
    for fmt in ("fvecs", "npy", "jsonl"):
        out = tmp_path / f"out.{fmt}"
        assert t.run("export", db, out).stdout.startswith(f"exported {n - 2} records of {db} to {out}")
        if fmt == "npy":
            np.testing.assert_array_equal(np.load(out), x[keep])
        back = tmp_path / f"back-{fmt}.nvf"
        t.run("create", back, "--dim", d)
        t.run("import", back, out)
        again = tmp_path / f"again.{fmt}"
        t.run("export", back, again)
        if fmt == "jsonl":
            assert again.read_bytes() == out.read_bytes()  # ids, vectors, documents, tags
            rec = [json.loads(line) for line in out.read_text().splitlines()]
            assert [r["id"] for r in rec] == keep
            np.testing.assert_array_equal(np.array([r["vector"] for r in rec], dtype=np.float32), x[keep])
            assert rec[1]["meta"] == {"i": 3, "third": True, "s": "é\"\\n"} and rec[3]["tags"] == ["five", "odd"]
        else:
            assert again.read_bytes() == out.read_bytes()
    # --filter, --snapshot.
    sel = tmp_path / "sel.jsonl"
    t.run("export", db, sel, "--filter", "third = true AND i < 30")
    assert [json.loads(line)["id"] for line in sel.read_text().splitlines()] == list(range(0, 30, 3))
    old = tmp_path / "old.npy"
    t.run("export", db, old, "--snapshot", "plain")
    np.testing.assert_array_equal(np.load(old), x)
    # Refusals: an existing file, an unknown format, gzip, a bad filter or snapshot.
    t.run("export", db, sel, code=3)
    t.run("export", db, tmp_path / "x.bin", code=2)
    t.run("export", db, tmp_path / "x.fvecs.gz", code=2)
    t.run("export", db, tmp_path / "y.jsonl", "--filter", "i >", code=3)
    t.run("export", db, tmp_path / "y.jsonl", "--snapshot", "nope", code=3)
    assert not (tmp_path / "y.jsonl").exists()
    # get / put / delete.
    r = json.loads(t.run("get", db, 5).stdout)
    assert r["id"] == 5 and r["tags"] == ["five", "odd"] and np.array_equal(np.float32(r["vector"]), x[5])
    assert "vector" not in json.loads(t.run("get", db, 5, "--no-vector").stdout)
    v = [float(i) for i in range(d)]
    assert t.run("put", db, 1000, "--vector", json.dumps(v), "--meta", '{"new": 1}', "--tags", "a,b").stdout \
        == f"added record 1000 in {db}\n"
    r = json.loads(t.run("get", db, 1000).stdout)
    assert r["vector"] == v and r["meta"] == {"new": 1} and r["tags"] == ["a", "b"]
    assert t.run("put", db, 1000, "--meta", "null", "--tags", "").stdout == f"updated record 1000 in {db}\n"
    r = json.loads(t.run("get", db, 1000).stdout)
    assert r["meta"] is None and r["tags"] == [] and r["version"] == 2
    t.run("put", db, 2000, "--meta", "{}", code=3)           # a new id needs a vector
    t.run("put", db, 1000, "--vector", "[1, 2]", code=3)     # wrong dimension
    t.run("put", db, 1000, "--vector", json.dumps(v), "--meta", "[1]", code=3)  # bad document: nothing changes
    assert json.loads(t.run("get", db, 1000).stdout)["version"] == 2
    t.run("put", db, 1000, code=2)
    t.run("get", db, 1, code=3)
    t.run("delete", db, 1000, 99999, code=3)                   # all or nothing
    t.run("get", db, 1000)
    assert t.run("delete", db, 1000, 0).stdout == f"deleted 2 records from {db}\n"
    t.run("get", db, 1000, code=3)
    t.run("delete", db, code=2)


def test_stats(t, tmp_path):
    # Pages by kind add up to the total; the graph's nodes and degrees; the recall
    # self-check on the collection's own vectors (near 1 at the default ef here).
    n, d = 1500, 16
    f, db, flat = tmp_path / "x.npy", tmp_path / "h.nvf", tmp_path / "f.nvf"
    write_npy(f, make_data("f4", n, d, 61))
    t.run("create", db, "--dim", d, "--index", "hnsw")
    t.run("import", db, f)
    t.run("delete", db, 0, 1, 2)
    s = json.loads(t.run("stats", db, "--json", "--sample", 50).stdout)
    assert sum(s["pages"].values()) == s["pages_total"] == t.info(db)["pages"]
    assert s["records"] == n - 3 and s["pages"]["vectors"] > 0 and s["pages"]["graph"] > 0
    assert sum(s["hnsw_nodes_per_level"]) == n - 3 == sum(s["hnsw_degree0"])
    assert s["recall_sample"] == 50 and 0.9 <= s["recall_at_10"] <= 1.0
    text = t.run("stats", db).stdout
    assert "self-check" in text and "graph levels" in text
    t.run("create", flat, "--dim", d)
    t.run("import", flat, f)
    s = json.loads(t.run("stats", flat, "--json").stdout)
    assert s["recall_at_10"] is None and s["hnsw_nodes_per_level"] == []
    t.run("stats", flat, "--sample", "x", code=2)
    t.run("stats", tmp_path / "none.nvf", code=3)


def test_inspect(t, tmp_path, filled):
    # The file read from its bytes (FORMAT.md): header, both meta records, the trees
    # with their pages, the map; one page decoded; damage shown, not hidden.
    out = t.run("inspect", filled).stdout
    info = t.info(filled)
    assert f"pages of {info['page_size']} bytes" in out and "header  format 1" in out and "checksum ok" in out
    assert "meta 0  valid" in out and "meta 1  valid" in out and f"state   txnid {info['txnid']}" in out
    assert "tree 3     vectors" in out and "map     " in out
    root = int(out.split("tree 2     id map")[1].split("root")[1].split()[0])
    page = t.run("inspect", filled, "page", root).stdout
    assert "(ok)" in page and ("leaf" in page or "branch" in page)
    assert "header copy and meta slot 1" in t.run("inspect", filled, "page", 1).stdout
    raw = bytearray(filled.read_bytes())
    ps = info["page_size"]
    raw[root * ps + ps - 3] ^= 0xFF
    bad = tmp_path / "bad.nvf"
    bad.write_bytes(bytes(raw))
    assert "(BAD" in t.run("inspect", bad, "page", root).stdout
    raw[ps + 128 + 8] ^= 0x01  # meta slot 1's txnid
    bad.write_bytes(bytes(raw))
    assert "meta 1  INVALID" in t.run("inspect", bad).stdout
    t.run("inspect", filled, "page", 10**9, code=3)
    t.run("inspect", filled, "pages", 3, code=2)
    t.run("inspect", tmp_path / "none.nvf", code=3)
    (tmp_path / "text.nvf").write_text("hello, not a database at all" * 10)
    assert "bad magic" in t.run("inspect", tmp_path / "text.nvf", code=3).stderr


def run_on_pty(tool, *args):
    """Run nvf-tool with stderr on a pseudo-terminal (stdout a pipe); return (exit
    status, stdout, what the terminal received)."""
    import pty
    import select
    master, slave = pty.openpty()
    p = subprocess.Popen([tool, *map(str, args)], stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    term = b""
    while True:
        r, _, _ = select.select([master], [], [], 30)
        if not r:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed its end
            break
        if not chunk:
            break
        term += chunk
    out = p.stdout.read()
    p.wait(timeout=60)
    os.close(master)
    return p.returncode, out.decode(), term.decode(errors="replace")


def test_progress_only_on_a_terminal(t, tmp_path):
    # On a terminal: a progress line (redrawn with \r, cleared at the end); not on a
    # pipe (every other test checks stderr is empty); never with --quiet.
    n, d = 6000, 32
    f, db = tmp_path / "x.npy", tmp_path / "p.nvf"
    write_npy(f, make_data("f4", n, d, 71))
    t.run("create", db, "--dim", d)
    rc, out, term = run_on_pty(t.path, "import", db, f)
    assert rc == 0 and out.startswith(f"imported {n} vectors"), (out, term)
    assert "\r" in term and "import:" in term and f"of {n} records" in term, repr(term)
    assert term.endswith("\r\033[K"), repr(term[-40:])
    for cmd in (["export", db, tmp_path / "x.jsonl"], ["check", db], ["compact", db],
                ["backup", db, tmp_path / "b.nvf"], ["reindex", db, "--index", "hnsw"]):
        rc, out, term = run_on_pty(t.path, *cmd)
        assert rc == 0, (cmd, out, term)
        assert f"{cmd[0]}:" in term and "\r" in term, (cmd, repr(term))
    rc, out, term = run_on_pty(t.path, "export", db, tmp_path / "y.jsonl", "--quiet")
    assert rc == 0 and term == "" and out.startswith("exported"), repr(term)
    rc, out, term = run_on_pty(t.path, "--quiet", "check", db)
    assert rc == 0 and term == "", repr(term)
    # An error on a terminal: the progress line is cleared, then the one-line error.
    bad = tmp_path / "bad.npy"
    x = make_data("f4", 12000, d, 72)
    x[11000, 3] = np.nan
    write_npy(bad, x)
    rc, out, term = run_on_pty(t.path, "import", db, bad)
    assert rc == 3, (out, term)
    last = term.split("\r\033[K")[-1]
    assert last.startswith("nvf-tool: import: ") and "record 11000" in last and last.count("\n") == 1, repr(term[-200:])


# ---- a compaction between a command's open and its first transaction ----

def test_a_command_reopens_a_file_compacted_under_it(t, tmp_path):
    """NVF_ESTALE at a command's first transaction (another process compacted the
    file after the command opened it) is not an error: the command runs again on
    the new file. Only when it keeps happening does it fail, with one line."""
    shim = os.environ.get("NVF_STALE_SHIM_LIB")
    if not shim:
        pytest.skip("NVF_STALE_SHIM_LIB is not set (run through meson test)")
    data, queries = make_data("float", 300, 8), make_data("float", 5, 8, seed=2)
    db, vf, qf = tmp_path / "s.nvf", tmp_path / "v.fvecs", tmp_path / "q.fvecs"
    write_fvecs(vf, data)
    write_fvecs(qf, queries)
    t.run("create", db, "--dim", 8)

    def run(fails, *args):
        # Under AddressSanitizer the shim comes before the ASan runtime, which ASan
        # refuses unless told the order is fine (the shim calls nothing it watches).
        asan = ":".join(x for x in (os.environ.get("ASAN_OPTIONS"), "verify_asan_link_order=0") if x)
        env = dict(os.environ, LD_PRELOAD=shim, NVF_STALE_SHIM=str(fails), ASAN_OPTIONS=asan)
        return subprocess.run([t.path, *map(str, args)], capture_output=True, text=True, env=env, timeout=60)

    p = run(1, "import", db, vf)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    assert t.info(db)["count"] == 300  # imported once, not twice
    p = run(4, "search", db, "--query-file", qf, "-k", 3, "--json")
    assert p.returncode == 0 and p.stderr == "", p.stderr
    assert [json.loads(x) for x in p.stdout.splitlines()] == t.search(db, qf, 3)
    # Stale on every try: one line naming the cause, nothing imported.
    p = run(1000, "import", db, vf)
    assert p.returncode == 3, p  # a database error, as the other failures to open
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and "compacted" in lines[0], lines
    assert t.info(db)["count"] == 300
