"""NusterDB handles: the paths table, open/create/reopen, records (CRUD against a dict
model), the exception classes, and that every refused call leaves the database as it was
(full contents compared, and an empty diff against a snapshot taken before)."""
import errno
import os
import shutil

import numpy as np
import pytest

import nusterdb
from nusterdb import DatabaseConfig, Metadata, NusterDB, Vector
from conftest import dump, make_db, run_tool


# ---- exception classes ----

HIERARCHY = [
    ("InvalidArgumentError", ValueError), ("FilterError", "InvalidArgumentError"),
    ("NotFoundError", KeyError), ("ExistsError", ValueError), ("ReadOnlyError", PermissionError),
    ("LockedError", OSError), ("CorruptError", OSError), ("VersionError", OSError),
    ("NotADatabaseError", OSError), ("FullError", OSError), ("StaleError", OSError),
    ("BusyError", RuntimeError), ("TransactionError", RuntimeError), ("ClosedError", ValueError),
    ("NotSupportedError", NotImplementedError), ("StorageError", OSError),
]


@pytest.mark.parametrize("name,base", HIERARCHY)
def test_exception_hierarchy(name, base):
    cls = getattr(nusterdb, name)
    assert issubclass(cls, nusterdb.Error) and issubclass(cls, Exception)
    if isinstance(base, str):
        base = getattr(nusterdb, base)
    assert issubclass(cls, base)


def test_error_carries_code_and_detail(flatdb):
    with pytest.raises(nusterdb.InvalidArgumentError) as e:
        flatdb.add(1, [1.0, 2.0, 3.0])
    assert isinstance(e.value.code, int) and e.value.code < 0
    msg = str(e.value)
    assert "3" in msg and "8" in msg, msg


# ---- paths ----

def test_path_ending_in_nvf_is_the_file(tmp_path):
    p = tmp_path / "x.nvf"
    with NusterDB(str(p), dim=4) as db:
        assert os.path.samefile(db.path, p)
    assert p.is_file()
    assert sorted(os.listdir(tmp_path)) in (["x.nvf"], ["x.nvf", "x.nvf-lock"])


def test_directory_path_holds_db_nvf(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = DatabaseConfig(dim=4, index_type="flat")
    with NusterDB("./my_db", cfg) as db:
        assert os.path.samefile(db.path, tmp_path / "my_db" / "db.nvf")
        db.add(1, [1, 2, 3, 4])
    assert (tmp_path / "my_db").is_dir() and (tmp_path / "my_db" / "db.nvf").is_file()
    with NusterDB("./my_db", cfg) as db:  # the same string reopens the same data
        assert len(db) == 1 and db.get(1).to_list() == [1, 2, 3, 4]
    with NusterDB.open("./my_db") as db:
        assert len(db) == 1
    shutil.rmtree("./my_db")
    with NusterDB("./my_db", cfg) as db:
        assert len(db) == 0


def test_existing_empty_directory_is_used(tmp_path):
    d = tmp_path / "empty"
    d.mkdir()
    with NusterDB(str(d), dim=4) as db:
        assert os.path.samefile(db.path, d / "db.nvf")


def test_directory_of_other_files_is_refused(tmp_path):
    d = tmp_path / "photos"
    d.mkdir()
    (d / "cat.jpg").write_bytes(b"\xff\xd8not a database")
    with pytest.raises(nusterdb.NotADatabaseError) as e:
        NusterDB(str(d), dim=4)
    assert isinstance(e.value, OSError)
    assert "photos" in str(e.value)
    assert sorted(os.listdir(d)) == ["cat.jpg"]
    assert (d / "cat.jpg").read_bytes() == b"\xff\xd8not a database"


def test_existing_regular_file_is_the_database(tmp_path):
    p = tmp_path / "a.nvf"
    with NusterDB(str(p), DatabaseConfig(dim=4, index_type="flat")) as db:
        db.add(7, [1, 1, 1, 1])
    q = tmp_path / "renamed.data"
    os.rename(p, q)
    with NusterDB(str(q)) as db:
        assert os.path.samefile(db.path, q) and 7 in db
    with NusterDB.open(str(q)) as db:
        assert len(db) == 1


def test_foreign_file_is_refused(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("hello, this is not a database\n" * 100)
    for f in (lambda: NusterDB(str(p), dim=4), lambda: NusterDB.open(str(p)),
              lambda: NusterDB(str(p))):
        with pytest.raises(nusterdb.NotADatabaseError):
            f()
    assert p.read_text() == "hello, this is not a database\n" * 100
    q = tmp_path / "fake.nvf"
    q.write_bytes(b"\0" * 8192)
    with pytest.raises(nusterdb.NotADatabaseError):
        NusterDB(str(q), dim=4)
    assert q.read_bytes() == b"\0" * 8192


def test_open_never_creates(tmp_path):
    for p in (tmp_path / "missing.nvf", tmp_path / "missing_dir"):
        with pytest.raises(FileNotFoundError):
            NusterDB.open(str(p))
        assert not p.exists()


def test_creating_without_config_or_dim_is_refused(tmp_path):
    p = tmp_path / "nothing.nvf"
    with pytest.raises((ValueError, TypeError, FileNotFoundError)):
        NusterDB(str(p))
    assert not p.exists()


def test_missing_parent_directory_is_a_storage_error(tmp_path):
    target = str(tmp_path / "no" / "such" / "x.nvf")
    with pytest.raises(nusterdb.StorageError) as e:
        NusterDB(target, dim=4)
    assert isinstance(e.value, OSError)
    assert e.value.errno == errno.ENOENT and e.value.code == -errno.ENOENT
    assert e.value.filename == target
    with make_db(tmp_path / "src.nvf", 4) as db:
        with pytest.raises(nusterdb.StorageError) as e:
            db.backup(target)
        assert e.value.errno == errno.ENOENT and e.value.filename == target


def test_pathlike_accepted(tmp_path):
    with NusterDB(tmp_path / "pl.nvf", dim=4) as db:
        db.add(1, [0, 0, 0, 0])
    with NusterDB.open(tmp_path / "pl.nvf") as db:
        assert len(db) == 1


# ---- handle lifetime ----

def test_close_is_idempotent_and_closed_raises(tmp_path):
    db = make_db(tmp_path / "c.nvf", 4)
    db.add(1, [1, 2, 3, 4])
    db.close()
    db.close()
    calls = [lambda: db.add(2, [1, 2, 3, 4]), lambda: db.get(1), lambda: db.search([1, 2, 3, 4]),
             lambda: len(db), lambda: 1 in db, lambda: db[1], lambda: db.count(),
             lambda: db.delete(1), lambda: db.stats(), lambda: db.list_snapshots(),
             lambda: db.knn(np.ones((1, 4), np.float32)), lambda: db.insert([1, 2, 3, 4]),
             lambda: db.get_metadata(1), lambda: db.sync()]
    for f in calls:
        with pytest.raises(nusterdb.ClosedError):
            f()
    with pytest.raises(ValueError):
        db.count()
    with NusterDB.open(str(tmp_path / "c.nvf")) as db2:
        assert len(db2) == 1


def test_context_manager_closes(tmp_path):
    with make_db(tmp_path / "cm.nvf", 4) as db:
        assert isinstance(db, NusterDB)
        db.add(1, [1, 2, 3, 4])
    with pytest.raises(nusterdb.ClosedError):
        db.count()


def test_context_manager_closes_on_exception(tmp_path):
    with pytest.raises(RuntimeError):
        with make_db(tmp_path / "cx.nvf", 4) as db:
            raise RuntimeError("x")
    with pytest.raises(nusterdb.ClosedError):
        db.count()


def test_repr(tmp_path):
    with make_db(tmp_path / "r.nvf", 5, metric="cosine", index="hnsw") as db:
        db.add(1, [1, 2, 3, 4, 5])
        db.add(2, [1, 2, 3, 4, 6])
        r = repr(db)
        assert "r.nvf" in r and "5" in r and "cosine" in r.lower() and "hnsw" in r.lower()
        assert "2" in r


# ---- records against a dict model ----

def test_crud_against_model(tmp_path, rng):
    dim = 8
    model = {}
    with make_db(tmp_path / "crud.nvf", dim) as db:
        def check():
            assert db.count() == len(model) == len(db)
            for i, (v, doc, tags) in model.items():
                assert i in db
                assert db.get(i).to_list() == v.tolist()
                assert db[i] == Vector(v)
                m = db.get_metadata(i)
                assert m.to_dict() == doc and m.tags() == tags

        for step in range(300):
            op = rng.integers(0, 6)
            i = int(rng.integers(0, 60))
            v = rng.standard_normal(dim).astype(np.float32)
            doc = {"step": step, "i": i}
            if op == 0:
                if i in model:
                    with pytest.raises(nusterdb.ExistsError):
                        db.add(i, v, doc)
                else:
                    db.add(i, v, doc)
                    model[i] = (v, doc, [])
            elif op == 1:
                new = db.insert(v.tolist(), Metadata(doc, tags=["ins"]))
                assert isinstance(new, int) and new not in model
                model[new] = (v, doc, ["ins"])
            elif op == 2:
                db.upsert(i, Vector(v), doc)
                model[i] = (v, doc, [])
            elif op == 3:
                if i in model:
                    db.update(i, v)
                    model[i] = (v, model[i][1], model[i][2])
                else:
                    with pytest.raises(nusterdb.NotFoundError):
                        db.update(i, v)
            elif op == 4:
                if i in model:
                    db.update_metadata(i, Metadata(doc, tags=["u"]))
                    model[i] = (model[i][0], doc, ["u"])
                else:
                    with pytest.raises(nusterdb.NotFoundError):
                        db.update_metadata(i, doc)
            else:
                assert db.delete(i) is (i in model)
                model.pop(i, None)
                assert i not in db and db.get(i) is None and db.get_metadata(i) is None
                with pytest.raises(nusterdb.NotFoundError):
                    db[i]
            if step % 50 == 0:
                check()
        check()
        path = db.path
        ids = list(model) + [1000, 2000]
        before = dump(db, ids)
    with NusterDB.open(path) as db:
        assert dump(db, ids) == before
    with NusterDB(path, read_only=True) as db:
        assert dump(db, ids) == before


def test_batch_insert(flatdb, rng):
    X = rng.standard_normal((20, 8)).astype(np.float32)
    docs = [{"n": i} for i in range(20)]
    ids = flatdb.batch_insert([Vector(x) for x in X[:10]] + [x.tolist() for x in X[10:]], docs)
    assert isinstance(ids, list) and len(ids) == 20 and len(set(ids)) == 20
    for i, x, d in zip(ids, X, docs):
        assert flatdb.get(i).to_list() == x.tolist()
        assert flatdb.get_metadata(i).to_dict() == d
    ids2 = flatdb.batch_insert(list(X[:3]))
    assert len(set(ids) | set(ids2)) == 23
    assert flatdb.count() == 23
    assert flatdb.batch_insert([]) == []


def test_id_limits(flatdb):
    top = 2**64 - 2
    flatdb.add(top, np.ones(8, np.float32))
    flatdb.add(0, np.zeros(8, np.float32))
    assert top in flatdb and flatdb.get(top) is not None and 0 in flatdb
    assert flatdb.search(np.ones(8, np.float32), k=1)[0][0] == top
    for bad in (-1, 2**64 - 1, 2**64, 2**70):
        with pytest.raises(nusterdb.InvalidArgumentError):
            flatdb.add(bad, np.ones(8, np.float32))
        assert bad not in flatdb
    with pytest.raises(TypeError):
        flatdb.add("1", np.ones(8, np.float32))
    with pytest.raises(TypeError):
        flatdb.add(1.5, np.ones(8, np.float32))
    assert flatdb.count() == 2


def test_vector_inputs(flatdb, rng):
    x = rng.standard_normal(8).astype(np.float32)
    flatdb.add(1, x)
    flatdb.add(2, x.astype(np.float64))
    flatdb.add(3, x.tolist())
    flatdb.add(4, tuple(x.tolist()))
    flatdb.add(5, Vector(x))
    flatdb.add(6, memoryview(x))
    flatdb.add(7, x.reshape(1, 8))
    for i in range(1, 8):
        assert flatdb.get(i).to_list() == x.tolist()


# ---- refused calls change nothing ----

@pytest.fixture
def filled(tmp_path, rng):
    db = make_db(tmp_path / "f.nvf", 8)
    X = rng.standard_normal((30, 8)).astype(np.float32)
    for i, x in enumerate(X):
        db.add(i, x, Metadata({"i": i}, tags=["t"]))
    yield db
    db.close()


def bad_calls(db):
    good = np.ones(8, np.float32)
    nan = good.copy()
    nan[3] = np.nan
    inf = good.copy()
    inf[0] = np.inf
    return [
        (nusterdb.InvalidArgumentError, lambda: db.add(100, [1.0, 2.0, 3.0])),
        (nusterdb.InvalidArgumentError, lambda: db.add(100, np.ones(9, np.float32))),
        (nusterdb.InvalidArgumentError, lambda: db.add(100, nan)),
        (nusterdb.InvalidArgumentError, lambda: db.add(100, inf)),
        (nusterdb.InvalidArgumentError, lambda: db.add(100, [])),
        (TypeError, lambda: db.add(100, "abcdefgh")),
        (TypeError, lambda: db.add(100, [1, 2, 3, 4, 5, 6, 7, "8"])),
        (TypeError, lambda: db.add(100, good, {"bad": {1}})),
        (TypeError, lambda: db.add(100, good, 5)),
        (nusterdb.ExistsError, lambda: db.add(3, good)),
        (nusterdb.InvalidArgumentError, lambda: db.insert(nan)),
        (nusterdb.InvalidArgumentError, lambda: db.upsert(3, np.ones(7, np.float32))),
        (nusterdb.InvalidArgumentError, lambda: db.upsert(3, nan, {"x": 1})),
        (nusterdb.InvalidArgumentError, lambda: db.update(3, nan)),
        (nusterdb.NotFoundError, lambda: db.update(100, good)),
        (nusterdb.NotFoundError, lambda: db.update_metadata(100, {"a": 1})),
        (nusterdb.InvalidArgumentError, lambda: db.batch_insert([good, good, nan, good])),
        (nusterdb.InvalidArgumentError, lambda: db.batch_insert([good, np.ones(9, np.float32)])),
        (TypeError, lambda: db.batch_insert([good, "x"])),
        (nusterdb.InvalidArgumentError, lambda: db.batch_insert([good, good], [{"a": 1}])),
        (nusterdb.InvalidArgumentError, lambda: db.add_items(np.stack([good, nan]))),
        (nusterdb.InvalidArgumentError, lambda: db.search(nan)),
        (nusterdb.InvalidArgumentError, lambda: db.search(good, k=0)),
        (nusterdb.InvalidArgumentError, lambda: db.search(good, k=-3)),
        (nusterdb.InvalidArgumentError, lambda: db.search([1.0, 2.0])),
        (nusterdb.FilterError, lambda: db.search(good, filter="i >")),
        (nusterdb.InvalidArgumentError, lambda: db.range_search(good, -1.0)),
        (nusterdb.NotFoundError, lambda: db[100]),
        (nusterdb.NotFoundError, lambda: db.restore_snapshot("nope")),
        (nusterdb.NotFoundError, lambda: db.delete_snapshot("nope")),
    ]


def test_refused_calls_leave_the_database_unchanged(filled):
    db = filled
    ids = list(range(30)) + [100, 101]
    db.create_snapshot("before")
    before = dump(db, ids)
    for n, (exc, f) in enumerate(bad_calls(db)):
        with pytest.raises(exc):
            f()
        assert dump(db, ids) == before, f"bad call {n} changed the database"
    d = db.diff("before")
    assert d == {"added": [], "removed": [], "vector_changed": [], "doc_changed": []}, d
    assert db.list_snapshots() == ["before"]


def test_refused_calls_through_a_reopened_handle(filled):
    path = filled.path
    ids = list(range(30)) + [100]
    before = dump(filled, ids)
    filled.close()
    with NusterDB.open(path) as db:
        assert dump(db, ids) == before
        for exc, f in bad_calls(db):
            with pytest.raises(exc):
                f()
        assert dump(db, ids) == before


def test_dimension_message_names_both(filled):
    with pytest.raises(nusterdb.InvalidArgumentError) as e:
        filled.add(100, [1.0, 2.0, 3.0])
    assert "3" in str(e.value) and "8" in str(e.value)
    with pytest.raises(nusterdb.FilterError) as e:
        filled.search(np.ones(8, np.float32), filter="i >")
    assert "column" in str(e.value)


# ---- read-only handles ----

def test_read_only_handle_refuses_writes(filled, tool):
    path = filled.path
    before = dump(filled, range(31))
    filled.close()
    with NusterDB(path, read_only=True) as db:
        assert len(db) == 30 and db.stats().read_only is True
        good = np.ones(8, np.float32)
        for f in (lambda: db.add(100, good), lambda: db.insert(good), lambda: db.upsert(1, good),
                  lambda: db.update(1, good), lambda: db.update_metadata(1, {"a": 1}),
                  lambda: db.delete(1), lambda: db.batch_insert([good]),
                  lambda: db.add_items(good[None, :]), lambda: db.create_snapshot("s"),
                  lambda: db.compact()):
            with pytest.raises(nusterdb.ReadOnlyError) as e:
                f()
            assert isinstance(e.value, PermissionError)
        assert dump(db, range(31)) == before
    with NusterDB.open(path, read_only=True) as db:
        with pytest.raises(nusterdb.ReadOnlyError):
            db.delete(2)
    run_tool(tool, "check", path)


def test_read_only_open_of_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        NusterDB(str(tmp_path / "ro.nvf"), read_only=True)
    assert not (tmp_path / "ro.nvf").exists()


def test_sync(filled):
    filled.add(200, np.zeros(8, np.float32))
    assert filled.sync() is None


# ---- attributes, upsert, damaged and replaced files ----

def test_handle_attributes(tmp_path):
    p = tmp_path / "attrs.nvf"
    with NusterDB(str(p), DatabaseConfig(dim=6, distance_metric="cosine", index_type="flat")) as db:
        assert os.path.isabs(db.path) and os.path.samefile(db.path, p)
        assert db.dim == 6 and db.dimension == 6
        assert db.distance_metric == nusterdb.DistanceMetric.Cosine
        assert db.index_type == nusterdb.IndexType.Flat
        assert isinstance(db.config, DatabaseConfig) and db.config.dim == 6
        assert db.read_only is False and db.snapshot_name is None and db.closed is False
        db.add(1, [1, 2, 3, 4, 5, 6])
        db.create_snapshot("s")
    assert db.closed is True
    with NusterDB(str(p), read_only=True) as ro:
        assert ro.read_only is True and ro.snapshot_name is None
    with NusterDB(str(p), snapshot="s") as at:
        assert at.read_only is True and at.snapshot_name == "s" and at.dim == 6


def test_upsert_without_metadata_keeps_document_and_tags(flatdb):
    flatdb.add(1, np.ones(8, np.float32), Metadata({"a": 1}, tags=["t"]))
    flatdb.upsert(1, np.zeros(8, np.float32))
    m = flatdb.get_metadata(1)
    assert m.to_dict() == {"a": 1} and m.tags() == ["t"] and m.version == 2
    assert flatdb.get(1).to_list() == [0.0] * 8
    flatdb.upsert(1, np.ones(8, np.float32), {"b": 2})
    m = flatdb.get_metadata(1)
    assert m.to_dict() == {"b": 2} and m.tags() == []
    flatdb.upsert(2, np.ones(8, np.float32))
    assert flatdb.get_metadata(2).to_dict() == {} and len(flatdb) == 2


def test_damaged_meta_records_raise_corrupt_error(tmp_path):
    p = tmp_path / "d.nvf"
    with NusterDB(str(p), DatabaseConfig(dim=4, index_type="flat")) as db:
        db.add(1, [1, 2, 3, 4])
        page = db.stats().page_size
    with open(p, "r+b") as f:  # both meta records (docs/FORMAT.md section 3)
        for off in (128, page + 128):
            f.seek(off)
            f.write(b"\xff" * 200)
    for f in (lambda: NusterDB.open(str(p)), lambda: NusterDB(str(p), read_only=True)):
        with pytest.raises(nusterdb.CorruptError) as e:
            f()
        assert isinstance(e.value, OSError) and e.value.code < 0
        assert "page" in str(e.value)


def test_compacted_by_another_handle_is_stale(tmp_path):
    p = str(tmp_path / "st.nvf")
    with make_db(p, 4) as db:
        db.add_items(np.eye(4, dtype=np.float32))
    a, b = NusterDB.open(p), NusterDB.open(p)
    try:
        assert len(a) == 4
        b.compact()
        assert len(b) == 4
        with pytest.raises(nusterdb.StaleError) as e:
            a.count()
        assert isinstance(e.value, OSError)
    finally:
        a.close()
        b.close()
    with NusterDB.open(p) as c:
        assert len(c) == 4
