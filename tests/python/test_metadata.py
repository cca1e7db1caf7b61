"""nusterdb.Metadata: the mapping, tags, times and versions, and documents stored in a
database (round trip of every JSON type, refusal of what is not JSON)."""
import json
import time

import numpy as np
import pytest

import nusterdb
from nusterdb import Metadata
from conftest import dump, make_db


def test_mapping_protocol():
    m = Metadata()
    assert len(m) == 0 and list(m.keys()) == []
    m.set("category", "image")
    m["format"] = "jpg"
    m["n"] = 3
    assert m.get("category") == "image" and m["format"] == "jpg" and m["n"] == 3
    assert m.get("missing") is None and m.get("missing", 5) == 5
    assert "category" in m and "missing" not in m
    assert len(m) == 3
    assert sorted(m.keys()) == ["category", "format", "n"]
    assert sorted(m) == ["category", "format", "n"]
    assert sorted(m.items()) == [("category", "image"), ("format", "jpg"), ("n", 3)]
    del m["format"]
    assert "format" not in m and len(m) == 2
    m.remove("n")
    assert m.to_dict() == {"category": "image"}
    with pytest.raises(KeyError):
        m.remove("n")
    with pytest.raises(KeyError):
        m["n"]
    with pytest.raises(KeyError):
        del m["n"]
    assert dict(m) == {"category": "image"}


def test_constructor_from_dict_and_tags():
    d = {"a": 1, "b": [1, 2, {"c": None}], "s": "x"}
    m = Metadata(d, tags=["z", "a", "z"])
    assert m.to_dict() == d and dict(m) == d
    assert m.tags() == ["a", "z"]
    assert Metadata.from_dict(d).to_dict() == Metadata(d).to_dict()
    assert Metadata.from_dict(d).tags() == []
    # to_dict is a new dict: changing it changes nothing
    m.to_dict()["a"] = 99
    assert m["a"] == 1
    d["a"] = 5
    assert m["a"] == 1


def test_tags():
    m = Metadata()
    assert m.tags() == []
    m.add_tag("processed")
    m.add_tag("high-res")
    m.add_tag("processed")
    assert m.tags() == ["high-res", "processed"]
    assert m.has_tag("processed") and not m.has_tag("x")
    m.remove_tag("processed")
    assert m.tags() == ["high-res"]
    assert "high-res" not in m  # tags are not data
    assert m.to_dict() == {}


def test_new_metadata_times_and_version():
    before = time.time()
    m = Metadata()
    after = time.time()
    assert m.version == 1
    assert isinstance(m.created_at, int) and isinstance(m.updated_at, int)
    assert int(before) - 1 <= m.created_at <= after + 1
    assert int(before) - 1 <= m.updated_at <= after + 1
    assert isinstance(m.created_at_us, int)
    assert m.created_at_us // 1_000_000 == m.created_at
    assert m.updated_at_us // 1_000_000 == m.updated_at
    assert before * 1e6 - 2e6 <= m.created_at_us <= after * 1e6 + 2e6


VALUES = {
    "none": None, "t": True, "f": False, "zero": 0, "neg": -7, "big": 2**63 - 1,
    "small": -2**63, "pi": 3.14159, "one_f": 1.0, "neg_zero_f": -0.5, "s": "héllo ✓ 日本",
    "empty_s": "", "list": [1, "two", 3.0, None, True, [], {}], "obj": {"x": {"y": {"z": [1]}}},
    "quote": 'a"b\\c\n', "emptyobj": {},
}


def same_json(a, b):
    """Equal, with equal types (True is not 1, 1.0 is not 1)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def test_every_json_type_round_trips_through_a_database(tmp_path):
    with make_db(tmp_path / "m.nvf", 4) as db:
        db.add(1, [1, 2, 3, 4], VALUES)
        db.add(2, [1, 2, 3, 4], Metadata(VALUES, tags=["b", "a"]))
        for i in (1, 2):
            got = db.get_metadata(i)
            assert isinstance(got, Metadata)
            assert same_json(got.to_dict(), VALUES), got.to_dict()
        assert db.get_metadata(1).tags() == []
        assert db.get_metadata(2).tags() == ["a", "b"]
        path = db.path
    with nusterdb.NusterDB.open(path) as db:
        assert same_json(db.get_metadata(2).to_dict(), VALUES)
        assert db.get_metadata(2).tags() == ["a", "b"]


class Obj:
    pass


def cyclic():
    d = {"a": []}
    d["a"].append(d)
    return d


BAD = [
    {"s": {1, 2}},
    {"b": b"bytes"},
    {"o": Obj()},
    {1: "non-string key"},
    {"nested": {"deep": [1, {2: "x"}]}},
    {"nested": {"deep": [1, frozenset()]}},
    {"t": (1, 2, object())},
    {"c": 1 + 2j},
]


@pytest.mark.parametrize("bad", BAD, ids=[str(i) for i in range(len(BAD))])
def test_non_json_values_raise_type_error_and_change_nothing(bad, tmp_path):
    with make_db(tmp_path / "b.nvf", 4) as db:
        db.add(1, [0, 0, 0, 1], {"keep": 1})
        before = dump(db, [1, 2])
        with pytest.raises(TypeError):
            db.add(2, [1, 0, 0, 0], bad)
        with pytest.raises(TypeError):
            db.update_metadata(1, bad)
        with pytest.raises(TypeError):
            db.upsert(1, [1, 1, 1, 1], bad)
        with pytest.raises(TypeError):
            db.insert([1, 0, 0, 0], bad)
        with pytest.raises(TypeError):
            db.batch_insert([[1, 0, 0, 0], [0, 1, 0, 0]], [{"ok": 1}, bad])
        assert dump(db, [1, 2]) == before
        assert db.count() == 1


def test_type_error_names_the_key_path(tmp_path):
    with make_db(tmp_path / "p.nvf", 4) as db:
        with pytest.raises(TypeError) as e:
            db.add(1, [0, 0, 0, 1], {"outer": {"inner": {1, 2}}})
        assert "inner" in str(e.value)


def test_cycle_raises_type_error(tmp_path):
    with make_db(tmp_path / "c.nvf", 4) as db:
        with pytest.raises(TypeError):
            db.add(1, [0, 0, 0, 1], cyclic())
        assert db.count() == 0


@pytest.mark.parametrize("bad", [{"x": float("nan")}, {"x": float("inf")}, {"x": [float("-inf")]},
                                 {"x": 2**63}, {"x": -2**63 - 1}])
def test_unrepresentable_numbers_are_refused(bad, tmp_path):
    with make_db(tmp_path / "n.nvf", 4) as db:
        with pytest.raises((TypeError, ValueError, OverflowError)):
            db.add(1, [0, 0, 0, 1], bad)
        assert db.count() == 0 and db.get(1) is None


def test_record_times_and_versions(tmp_path):
    with make_db(tmp_path / "v.nvf", 4) as db:
        t0 = time.time()
        db.add(5, [1, 0, 0, 0], {"a": 1})
        m = db.get_metadata(5)
        assert m.version == 1
        assert int(t0) - 1 <= m.created_at <= time.time() + 1
        assert m.created_at_us <= m.updated_at_us
        db.update_metadata(5, {"a": 2})
        m2 = db.get_metadata(5)
        assert m2.version == 2 and m2.to_dict() == {"a": 2}
        assert m2.created_at_us == m.created_at_us and m2.updated_at_us >= m.updated_at_us
        db.update(5, [0, 1, 0, 0])
        m3 = db.get_metadata(5)
        assert m3.version == 3 and m3.to_dict() == {"a": 2}  # the vector change keeps the document
        db.upsert(5, [0, 0, 1, 0], Metadata({"b": 1}, tags=["t"]))
        m4 = db.get_metadata(5)
        assert m4.version == 4 and m4.to_dict() == {"b": 1} and m4.tags() == ["t"]
        assert m4.created_at_us == m.created_at_us
        # a Metadata's own times and version are not written over the record's
        old = Metadata({"c": 1})
        db.update_metadata(5, old)
        assert db.get_metadata(5).version == 5


def test_update_metadata_replaces_document_and_tags(tmp_path):
    with make_db(tmp_path / "u.nvf", 4) as db:
        db.add(1, [1, 0, 0, 0], Metadata({"a": 1, "b": 2}, tags=["x", "y"]))
        db.update_metadata(1, Metadata({"c": 3}, tags=["z"]))
        m = db.get_metadata(1)
        assert m.to_dict() == {"c": 3} and m.tags() == ["z"]
        db.update_metadata(1, {"d": 4})  # a dict: data with no tags
        m = db.get_metadata(1)
        assert m.to_dict() == {"d": 4} and m.tags() == []
        np.testing.assert_array_equal(db.get(1).to_list(), [1, 0, 0, 0])


def test_record_without_metadata(tmp_path):
    with make_db(tmp_path / "e.nvf", 4) as db:
        db.add(1, [1, 0, 0, 0])
        m = db.get_metadata(1)
        assert isinstance(m, Metadata) and m.to_dict() == {} and m.tags() == [] and m.version == 1
        assert db.get_metadata(2) is None


def test_documents_visible_to_the_tool(tmp_path, tool):
    from conftest import run_tool
    with make_db(tmp_path / "t.nvf", 4) as db:
        db.add(3, [1, 0, 0, 0], Metadata({"label": 3, "name": "x"}, tags=["new"]))
        path = db.path
    rec = json.loads(run_tool(tool, "get", path, 3).stdout)
    assert rec["meta"] == {"label": 3, "name": "x"} and rec["tags"] == ["new"]
    assert rec["version"] == 1
