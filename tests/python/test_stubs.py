"""The type stubs (python/nusterdb/_core.pyi) against the built module, with mypy's
stubtest: every name, signature, class and attribute the stubs declare must exist at
run time with a compatible signature, and nothing public may be missing from them."""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

SOURCE_PKG = Path(__file__).resolve().parents[2] / "python"


def test_stub_files_exist():
    assert (SOURCE_PKG / "nusterdb" / "_core.pyi").is_file()
    assert (SOURCE_PKG / "nusterdb" / "py.typed").is_file()


def test_stubtest_passes(tmp_path):
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (Debian package python3-mypy; setup.sh installs it)")
    env = os.environ.copy()
    # The runtime module comes from the build (PYTHONPATH); the stubs from the source tree.
    env["MYPYPATH"] = str(SOURCE_PKG)
    allow = Path(__file__).resolve().parent / "stubtest_allowlist.txt"
    p = subprocess.run([sys.executable, "-m", "mypy.stubtest", "--concise", "--allowlist", str(allow),
                        "nusterdb"],
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert p.returncode == 0, f"stubtest:\n{p.stdout}\n{p.stderr}"


def test_stubs_type_check_example_code(tmp_path):
    """The stubs describe the documented calls: a small program in the style of the
    seeds type-checks against them with mypy, and a wrong call is reported."""
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (Debian package python3-mypy; setup.sh installs it)")
    good = tmp_path / "good.py"
    good.write_text(
        "import numpy as np\n"
        "import nusterdb\n"
        "from nusterdb import NusterDB, DatabaseConfig, Vector, IndexType, DistanceMetric, Compression\n"
        "config = DatabaseConfig(dim=4, index_type=IndexType.Hnsw, distance_metric=DistanceMetric.Cosine,\n"
        "                        hnsw_max_connections=32, compression=Compression.LZ4, cache_size_mb=512)\n"
        "db = NusterDB('./my_db', config)\n"
        "i: int = db.insert(Vector([1.0, 2.0, 3.0, 4.0]), {'category': 'example'})\n"
        "res: list[tuple[int, float]] = db.search([1.0, 2.0, 3.0, 4.1], k=5, filter=\"category = 'example'\")\n"
        "ids, dist = db.knn(np.zeros((2, 4), dtype=np.float32), k=3)\n"
        "m = db.get_metadata(i)\n"
        "if m is not None:\n"
        "    t: list[str] = m.tags()\n"
        "name: str = db.create_snapshot('s')\n"
        "d = db.diff('s')\n"
        "n: int = db.stats().vector_count\n"
        "e = DistanceMetric.cosine().distance(Vector.zeros(4), Vector.ones(4))\n"
        "x: float = e\n"
        "c = getattr(Compression, 'None')\n"
        "try:\n"
        "    db.add(1, [0.0] * 4)\n"
        "except nusterdb.ExistsError as err:\n"
        "    code: int | None = err.code\n"
        "db.close()\n")
    bad = tmp_path / "bad.py"
    bad.write_text("import nusterdb\n"
                   "db = nusterdb.NusterDB('x', dim=4)\n"
                   "s: str = db.count()\n"
                   "db.search([1.0], kk=3)\n")
    env = os.environ.copy()
    env["MYPYPATH"] = str(SOURCE_PKG)
    cmd = [sys.executable, "-m", "mypy", "--no-incremental", "--cache-dir", str(tmp_path / "cache"),
           "--python-version", "3.11"]
    p = subprocess.run(cmd + [str(good)], capture_output=True, text=True, env=env, cwd=tmp_path,
                       timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    p = subprocess.run(cmd + [str(bad)], capture_output=True, text=True, env=env, cwd=tmp_path,
                       timeout=600)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "bad.py:3" in p.stdout and "bad.py:4" in p.stdout, p.stdout
