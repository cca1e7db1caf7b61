"""Ctrl-C: a child process running a long add_items, batch_insert or batch knn gets
SIGINT; the call must raise KeyboardInterrupt, write nothing, leave the handle usable,
and leave a file that `nvf-tool check` passes with the count from before the call."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from nusterdb import NusterDB
from conftest import run_tool

CHILD = textwrap.dedent("""
    import sys
    import numpy as np
    import nusterdb
    path, mode = sys.argv[1], sys.argv[2]
    rng = np.random.default_rng(1)
    dim = 32
    if mode == "knn":
        db = nusterdb.NusterDB(path, nusterdb.DatabaseConfig(dim=dim, index_type="flat"))
        db.add_items(rng.standard_normal((20000, dim)).astype(np.float32))
        X = rng.standard_normal((400000, dim)).astype(np.float32)
    else:
        db = nusterdb.NusterDB(path, nusterdb.DatabaseConfig(dim=dim, index_type="hnsw"))
        db.add_items(rng.standard_normal((100, dim)).astype(np.float32))
        X = rng.standard_normal((300000, dim)).astype(np.float32)
        if mode == "batch_insert":
            X = [row for row in X]
    before = len(db)
    print("start", before, flush=True)
    try:
        if mode == "add_items":
            db.add_items(X)
        elif mode == "batch_insert":
            db.batch_insert(X)
        else:
            db.knn(X, k=10)
        print("finished", len(db), flush=True)
    except KeyboardInterrupt:
        print("interrupted", len(db), flush=True)
    # the handle is usable and the writer lock was released: a write and its undo
    db.add(10**12, np.ones(dim, dtype=np.float32))
    assert db.delete(10**12)
    print("usable", len(db), flush=True)
    db.close()
""")


@pytest.mark.parametrize("mode", ["add_items", "batch_insert", "knn"])
def test_sigint_aborts_the_call(mode, tmp_path, tool):
    path = str(tmp_path / "int.nvf")
    p = subprocess.Popen([sys.executable, "-c", CHILD, path, mode], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        line = p.stdout.readline()
        assert line.startswith("start "), (line, p.stderr.read() if p.poll() is not None else "")
        before = int(line.split()[1])
        # Let the call get well under way (a delay, not a measurement), then Ctrl-C.
        time.sleep(0.7)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    lines = out.splitlines()
    assert p.returncode == 0, (out, err)
    assert lines[0] == f"interrupted {before}", (out, err)
    assert lines[1] == f"usable {before}", (out, err)
    run_tool(tool, "check", path)
    with NusterDB.open(path) as db:
        assert len(db) == before
    info = run_tool(tool, "info", "--json", path).stdout
    assert f'"count": {before},' in info
