"""Configuration: DatabaseConfig in both forms (nested objects and the flat keywords of
the original summary), StorageConfiguration, HNSWConfig, IndexType and Compression, and
what a created database records (read back through `nvf-tool info`, which reads the
file, and through stats().config)."""
import numpy as np
import pytest

import nusterdb
from nusterdb import (Compression, DatabaseConfig, DistanceMetric, FlatIndexConfig, HNSWConfig,
                      IndexType, NusterDB, StorageConfiguration)
from conftest import tool_info


# ---- defaults and attributes ----

def test_hnsw_config_defaults_and_attributes():
    h = HNSWConfig()
    assert (h.max_nb_connection, h.ef_construction, h.max_nb_elements, h.max_layer,
            h.ef_search, h.seed, h.quantize) == (16, 200, 1_000_000, 16, 64, 42, "auto")
    h = HNSWConfig(max_nb_connection=8, ef_construction=50, max_nb_elements=10,
                   max_layer=5, ef_search=20, seed=7, quantize="none")
    assert (h.max_nb_connection, h.ef_construction, h.max_nb_elements, h.max_layer,
            h.ef_search, h.seed, h.quantize) == (8, 50, 10, 5, 20, 7, "none")
    h = HNSWConfig(32, 400, 10000)  # positional, as the seeds' order
    assert (h.max_nb_connection, h.ef_construction, h.max_nb_elements) == (32, 400, 10000)


def test_flat_index_config():
    assert isinstance(FlatIndexConfig(), FlatIndexConfig)


def test_storage_configuration_defaults_and_attributes():
    s = StorageConfiguration()
    assert s.cache_size_mb == 0
    assert s.compression == getattr(Compression, "None")
    assert s.enable_bloom_filter is False
    assert s.bloom_filter_bits_per_key == 10
    assert s.durability == "full"
    assert s.page_size == 4096
    s = StorageConfiguration(cache_size_mb=512, compression="lz4", enable_bloom_filter=True,
                             bloom_filter_bits_per_key=12, durability="nosync", page_size=8192)
    assert s.cache_size_mb == 512 and s.compression == Compression.LZ4
    assert s.enable_bloom_filter is True and s.bloom_filter_bits_per_key == 12
    assert s.durability == "nosync" and s.page_size == 8192


def test_database_config_defaults():
    c = DatabaseConfig(128)
    assert c.dim == 128
    assert c.index_type == IndexType.Hnsw
    assert c.distance_metric == DistanceMetric.Euclidean
    assert c.hnsw_max_connections == 16 and c.hnsw_ef_construction == 200
    assert c.hnsw_ef_search == 64
    assert c.compression == getattr(Compression, "None")
    assert c.cache_size_mb == 0 and c.enable_bloom_filter is False and c.durability == "full"
    d = c.to_dict()
    assert isinstance(d, dict) and d["dim"] == 128


def test_database_config_nested_form():
    h = HNSWConfig(max_nb_connection=8, ef_construction=100, ef_search=30)
    s = StorageConfiguration(cache_size_mb=4, compression=Compression.ZSTD, durability="nosync")
    c = DatabaseConfig(dim=16, index_type=IndexType.Hnsw, distance_metric=DistanceMetric.Cosine,
                       hnsw_config=h, flat_config=None, storage_config=s)
    assert c.dim == 16 and c.distance_metric == DistanceMetric.Cosine
    assert c.hnsw_max_connections == 8 and c.hnsw_ef_construction == 100 and c.hnsw_ef_search == 30
    assert c.compression == Compression.ZSTD and c.cache_size_mb == 4 and c.durability == "nosync"
    assert c.hnsw_config.max_nb_connection == 8
    assert c.storage_config.compression == Compression.ZSTD


def test_database_config_flat_keywords_win_over_nested():
    h = HNSWConfig(max_nb_connection=8, ef_construction=100, ef_search=30)
    s = StorageConfiguration(compression="zstd", cache_size_mb=4, durability="full")
    c = DatabaseConfig(dim=16, hnsw_config=h, storage_config=s, hnsw_max_connections=12,
                       hnsw_ef_construction=77, hnsw_ef_search=21, compression=Compression.LZ4,
                       cache_size_mb=9, enable_bloom_filter=True, durability="nosync")
    assert (c.hnsw_max_connections, c.hnsw_ef_construction, c.hnsw_ef_search) == (12, 77, 21)
    assert c.compression == Compression.LZ4 and c.cache_size_mb == 9
    assert c.enable_bloom_filter is True and c.durability == "nosync"


def test_flat_keywords_reach_the_file(tmp_path, tool):
    h = HNSWConfig(max_nb_connection=8, ef_construction=100, ef_search=30, seed=5)
    c = DatabaseConfig(dim=16, hnsw_config=h, hnsw_max_connections=12, hnsw_ef_construction=77,
                       hnsw_ef_search=21, compression="lz4", distance_metric="cosine")
    with NusterDB(str(tmp_path / "a.nvf"), c) as db:
        path = db.path
        sc = db.stats().config
        assert sc.hnsw_max_connections == 12 and sc.hnsw_ef_search == 21
    info = tool_info(tool, path)
    assert info["dim"] == 16 and info["metric"] == "cosine" and info["index"] == "hnsw"
    assert info["hnsw"]["M"] == 12
    assert info["hnsw"]["ef_construction"] == 77
    assert info["hnsw"]["ef_search"] == 21
    assert info["hnsw"]["seed"] == 5
    assert info["documents"]["codec"] == "lz4"


def test_nested_config_reaches_the_file(tmp_path, tool):
    h = HNSWConfig(max_nb_connection=6, ef_construction=60, ef_search=40, seed=9, quantize="none")
    s = StorageConfiguration(compression=Compression.ZSTD, page_size=8192)
    c = DatabaseConfig(dim=8, index_type="HNSW", distance_metric=DistanceMetric.manhattan(),
                       hnsw_config=h, storage_config=s)
    with NusterDB(str(tmp_path / "b.nvf"), c) as db:
        path = db.path
        assert db.stats().page_size == 8192
    info = tool_info(tool, path)
    assert info["metric"] == "manhattan" and info["index"] == "hnsw"
    assert info["hnsw"] == {**info["hnsw"], "M": 6, "ef_construction": 60, "ef_search": 40,
                            "seed": 9, "quantize": "none"}
    assert info["documents"]["codec"] == "zstd"
    assert info["page_size"] == 8192


def test_flat_index_reaches_the_file(tmp_path, tool):
    for spelling in (IndexType.Flat, IndexType.FLAT, "flat", "Flat", "FLAT"):
        p = tmp_path / f"f{abs(hash(str(spelling)))}.nvf"
        with NusterDB(str(p), DatabaseConfig(dim=4, index_type=spelling,
                                             flat_config=FlatIndexConfig())) as db:
            assert db.stats().index_type == IndexType.Flat
        assert tool_info(tool, str(p))["index"] == "flat"


# ---- IndexType ----

def test_index_type_members():
    assert IndexType.Flat == IndexType.FLAT and IndexType.Hnsw == IndexType.HNSW
    assert IndexType.Flat != IndexType.Hnsw
    members = [IndexType.Flat, IndexType.Hnsw, IndexType.IVF, IndexType.LSH, IndexType.Annoy]
    assert len({m.value for m in members}) == 5
    assert len(set(members)) == 5
    for m in members:
        assert isinstance(m.name, str) and isinstance(repr(m), str)
        assert m == m.name
    assert hash(IndexType.Flat) == hash(IndexType.FLAT)
    assert hash(IndexType.Hnsw) == hash(IndexType.HNSW)
    assert DatabaseConfig(dim=4, index_type="hnsw").index_type == IndexType.Hnsw
    assert DatabaseConfig(dim=4, index_type="FLAT").index_type == IndexType.Flat


@pytest.mark.parametrize("name", ["IVF", "LSH", "Annoy"])
def test_unsupported_index_types(name, tmp_path):
    p = tmp_path / "u.nvf"
    with pytest.raises(nusterdb.NotSupportedError) as e:
        NusterDB(str(p), DatabaseConfig(dim=4, index_type=getattr(IndexType, name)))
    assert isinstance(e.value, NotImplementedError)
    assert name in str(e.value) and "not supported" in str(e.value)
    assert not p.exists()


def test_unknown_index_string_raises(tmp_path):
    with pytest.raises(ValueError):
        NusterDB(str(tmp_path / "x.nvf"), DatabaseConfig(dim=4, index_type="btree"))
    assert not (tmp_path / "x.nvf").exists()


# ---- Compression ----

CODECS = [("None", "none"), ("Snappy", "snappy"), ("LZ4", "lz4"), ("ZSTD", "zstd"),
          ("ZSTD_DICT", "zstd-dict")]


def test_compression_members():
    none = getattr(Compression, "None")
    assert none == Compression.NONE
    vals = set()
    for attr, s in CODECS:
        c = getattr(Compression, attr)
        vals.add(c.value)
        assert c == s and isinstance(repr(c), str) and isinstance(c.name, str)
        assert hash(c) == hash(getattr(Compression, attr))
        assert StorageConfiguration(compression=s).compression == c
        assert DatabaseConfig(dim=4, compression=s).compression == c
    assert len(vals) == len(CODECS)
    with pytest.raises(ValueError):
        StorageConfiguration(compression="gzip")


@pytest.mark.parametrize("attr,name", CODECS)
def test_every_codec_stores_documents(attr, name, tmp_path, tool, rng):
    p = str(tmp_path / f"{name}.nvf")
    cfg = DatabaseConfig(dim=4, index_type="flat", compression=getattr(Compression, attr))
    docs = [{"text": "lorem ipsum " * (i % 7 + 1), "i": i, "f": i / 3.0, "nested": {"k": [i, None]}}
            for i in range(300)]
    with NusterDB(p, cfg) as db:
        ids = db.batch_insert([rng.standard_normal(4).astype(np.float32) for _ in docs], docs)
        for i, d in zip(ids, docs):
            assert db.get_metadata(i).to_dict() == d
        assert db.stats().compression == getattr(Compression, attr)
    assert tool_info(tool, p)["documents"]["codec"] == name
    with NusterDB.open(p) as db:
        for i, d in zip(ids, docs):
            assert db.get_metadata(i).to_dict() == d


# ---- values checked at creation ----

# Each is refused when the config or the database is made (either may check).
BAD = {
    "dim0": lambda: dict(dim=0),
    "dim65537": lambda: dict(dim=65537),
    "dim-1": lambda: dict(dim=-1),
    "max_layer0": lambda: dict(dim=4, hnsw_config=HNSWConfig(max_layer=0)),
    "max_layer25": lambda: dict(dim=4, hnsw_config=HNSWConfig(max_layer=25)),
    "quantize": lambda: dict(dim=4, hnsw_config=HNSWConfig(quantize="sq9")),
    "page1000": lambda: dict(dim=4, storage_config=StorageConfiguration(page_size=1000)),
    "page256": lambda: dict(dim=4, storage_config=StorageConfiguration(page_size=256)),
    "page128k": lambda: dict(dim=4, storage_config=StorageConfiguration(page_size=131072)),
    "durability": lambda: dict(dim=4, durability="sometimes"),
    "metric": lambda: dict(dim=4, distance_metric="nope"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_values_raise_invalid_argument(name, tmp_path):
    p = tmp_path / "bad.nvf"
    with pytest.raises(ValueError):
        NusterDB(str(p), DatabaseConfig(**BAD[name]()))
    assert not p.exists()


def test_limits_accepted(tmp_path):
    with NusterDB(str(tmp_path / "a.nvf"), DatabaseConfig(dim=1, index_type="flat")) as db:
        db.add(0, [1.0])
        assert db.search([0.0], k=1)[0][0] == 0
    with NusterDB(str(tmp_path / "b.nvf"), DatabaseConfig(dim=65536, index_type="flat")) as db:
        db.add(0, np.ones(65536, dtype=np.float32))
        assert len(db) == 1
    for ml in (1, 24):
        with NusterDB(str(tmp_path / f"ml{ml}.nvf"),
                      DatabaseConfig(dim=4, hnsw_config=HNSWConfig(max_layer=ml))) as db:
            assert db.stats().config.hnsw_config.max_layer == ml


def test_kept_options_are_reported(tmp_path):
    cfg = DatabaseConfig(dim=8, cache_size_mb=3, enable_bloom_filter=True, durability="nosync",
                         hnsw_config=HNSWConfig(max_nb_elements=1234, max_layer=7))
    with NusterDB(str(tmp_path / "k.nvf"), cfg) as db:
        db.add_items(np.eye(8, dtype=np.float32))
        c = db.stats().config
        assert c.cache_size_mb == 3 and c.enable_bloom_filter is True and c.durability == "nosync"
        assert c.hnsw_config.max_nb_elements == 1234 and c.hnsw_config.max_layer == 7
        assert c.to_dict()["dim"] == 8


# ---- an existing database keeps its configuration ----

def test_reopen_with_other_dim_or_metric_raises(tmp_path, tool):
    p = str(tmp_path / "r.nvf")
    with NusterDB(p, DatabaseConfig(dim=8, distance_metric="cosine", index_type="flat")) as db:
        db.add(1, np.ones(8, dtype=np.float32))
    with pytest.raises(nusterdb.InvalidArgumentError):
        NusterDB(p, DatabaseConfig(dim=9, distance_metric="cosine", index_type="flat"))
    with pytest.raises(nusterdb.InvalidArgumentError):
        NusterDB(p, DatabaseConfig(dim=8, distance_metric="euclidean", index_type="flat"))
    # other options apply to new databases only
    with NusterDB(p, DatabaseConfig(dim=8, distance_metric="cosine", index_type="hnsw",
                                    compression="zstd")) as db:
        assert len(db) == 1 and db.stats().index_type == IndexType.Flat
    info = tool_info(tool, p)
    assert info["index"] == "flat" and info["documents"]["codec"] == "none" and info["count"] == 1


def test_dim_keyword_creates_with_defaults(tmp_path, tool):
    p = str(tmp_path / "d.nvf")
    with NusterDB(p, dim=12) as db:
        assert db.stats().dimension == 12
        assert db.stats().distance_metric == DistanceMetric.Euclidean
        assert db.stats().index_type == IndexType.Hnsw
    info = tool_info(tool, p)
    assert info["dim"] == 12 and info["index"] == "hnsw" and info["hnsw"]["M"] == 16


def test_to_dict_nests_and_round_trips():
    h = HNSWConfig(max_nb_connection=8, ef_search=33)
    s = StorageConfiguration(compression="zstd", page_size=8192)
    c = DatabaseConfig(dim=16, index_type="hnsw", distance_metric="cosine", hnsw_config=h,
                       storage_config=s)
    d = c.to_dict()
    assert d["dim"] == 16 and d["index_type"] == "hnsw" and d["distance_metric"] == "cosine"
    assert d["hnsw_config"] == h.to_dict() and d["hnsw_config"]["max_nb_connection"] == 8
    assert d["storage_config"] == s.to_dict() and d["storage_config"]["compression"] == "zstd"
    assert c.page_size == 8192
    again = DatabaseConfig(dim=16, index_type=d["index_type"], distance_metric=d["distance_metric"],
                           hnsw_config=d["hnsw_config"], storage_config=d["storage_config"])
    assert again == c and again.to_dict() == d
    assert HNSWConfig(max_nb_connection=8, ef_search=33) == h
    assert HNSWConfig(max_nb_connection=9) != h
    assert StorageConfiguration(compression="zstd", page_size=8192) == s
    assert FlatIndexConfig() == FlatIndexConfig()
    assert DatabaseConfig(dim=16) != DatabaseConfig(dim=17)


def test_database_config_reports_the_file(tmp_path):
    cfg = DatabaseConfig(dim=8, index_type="flat", distance_metric="manhattan", compression="lz4",
                         storage_config=StorageConfiguration(page_size=16384))
    with NusterDB(str(tmp_path / "c.nvf"), cfg) as db:
        path = db.path
    with NusterDB.open(path) as db:
        c = db.config
        assert c.dim == 8 and c.index_type == IndexType.Flat
        assert c.distance_metric == DistanceMetric.Manhattan
        assert c.compression == Compression.LZ4 and c.page_size == 16384
