"""The Python examples of the original NusterDB documents (the technical documentation
and the package summary), copied as they are written: code written against them must
run unchanged. Only the working directory is a temporary one (the examples use
relative paths such as "./my_db" and "path"). After each example, its results are
checked against numpy."""
import numpy as np
import pytest

import nusterdb


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


# ---- the technical documentation: 6. Features Implementation ----

def test_doc_vector_operations():
    # Vector creation
    v1 = nusterdb.Vector([1.0, 2.0, 3.0])
    v2 = nusterdb.Vector.zeros(3)
    v3 = nusterdb.Vector.ones(3)
    v4 = nusterdb.Vector.random(3, -1.0, 1.0)

    # Mathematical operations
    dot_product = v1.dot(v2)
    distance = v1.euclidean_distance(v2)
    norm = v1.norm()
    normalized = v1.normalize()

    assert dot_product == 0.0
    assert distance == pytest.approx(np.sqrt(14.0))
    assert norm == pytest.approx(np.sqrt(14.0))
    np.testing.assert_allclose(normalized.to_list(), np.array([1, 2, 3]) / np.sqrt(14), rtol=1e-6)
    assert v3.to_list() == [1.0, 1.0, 1.0]
    assert all(-1.0 <= x <= 1.0 for x in v4.to_list()) and v4.dimension == 3


def test_doc_distance_metrics():
    v1 = nusterdb.Vector([1.0, 2.0, 3.0])
    v2 = nusterdb.Vector([2.0, 0.0, 3.5])

    euclidean = nusterdb.DistanceMetric.euclidean()
    manhattan = nusterdb.DistanceMetric.manhattan()
    cosine = nusterdb.DistanceMetric.cosine()
    angular = nusterdb.DistanceMetric.angular()
    chebyshev = nusterdb.DistanceMetric.chebyshev()
    jaccard = nusterdb.DistanceMetric.jaccard()
    hamming = nusterdb.DistanceMetric.hamming()

    distance = euclidean.distance(v1, v2)
    similarity = euclidean.similarity(v1, v2)

    a, b = np.array([1.0, 2.0, 3.0]), np.array([2.0, 0.0, 3.5])
    assert distance == pytest.approx(np.linalg.norm(a - b), rel=1e-6)
    assert similarity == pytest.approx(1 / (1 + np.linalg.norm(a - b)), rel=1e-6)
    assert manhattan.distance(v1, v2) == pytest.approx(3.5)
    cos = a @ b / np.linalg.norm(a) / np.linalg.norm(b)
    assert cosine.distance(v1, v2) == pytest.approx(1 - cos, rel=1e-5)
    assert angular.distance(v1, v2) == pytest.approx(np.arccos(cos) / np.pi, rel=1e-5)
    assert chebyshev.distance(v1, v2) == pytest.approx(2.0)
    assert jaccard.distance(v1, v2) == pytest.approx(1 - (1 + 0 + 3) / (2 + 2 + 3.5), rel=1e-6)
    assert hamming.distance(v1, v2) == 3.0


def test_doc_metadata_system(capsys):
    meta = nusterdb.Metadata()
    meta.set("category", "image")
    meta.set("format", "jpg")
    meta.add_tag("processed")
    meta.add_tag("high-res")

    # Automatic timestamps and versioning
    print(f"Created: {meta.created_at}")
    print(f"Version: {meta.version}")
    print(f"Tags: {meta.tags()}")

    out = capsys.readouterr().out
    assert f"Created: {meta.created_at}\n" in out
    assert "Version: 1\n" in out
    assert "Tags: ['high-res', 'processed']\n" in out
    assert meta.get("category") == "image" and meta.get("format") == "jpg"


def test_doc_index_configuration():
    # HNSW for fast approximate search
    hnsw_config = nusterdb.HNSWConfig(
        max_nb_connection=32,
        ef_construction=400,
        max_nb_elements=10000
    )

    # Database configuration
    config = nusterdb.DatabaseConfig(
        dim=128,
        index_type="hnsw",
        distance_metric=nusterdb.DistanceMetric.cosine(),
        hnsw_config=hnsw_config
    )

    assert config.dim == 128 and config.index_type == nusterdb.IndexType.Hnsw
    assert config.distance_metric == nusterdb.DistanceMetric.Cosine
    assert config.hnsw_max_connections == 32 and config.hnsw_ef_construction == 400
    db = nusterdb.NusterDB("./vectors", config)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((300, 128)).astype(np.float32)
    db.add_items(X)
    ids, dist = db.knn(X[:5], k=1)
    assert ids[:, 0].tolist() == [0, 1, 2, 3, 4] or np.allclose(dist[:, 0], 0, atol=1e-5)
    assert db.stats().config.hnsw_config.max_nb_elements == 10000
    db.close()


def test_doc_storage_configuration():
    storage_config = nusterdb.StorageConfiguration(
        cache_size_mb=512,
        compression="lz4",
        enable_bloom_filter=True,
        bloom_filter_bits_per_key=10
    )

    assert storage_config.compression == nusterdb.Compression.LZ4
    config = nusterdb.DatabaseConfig(dim=4, storage_config=storage_config)
    with nusterdb.NusterDB("./stored", config) as db:
        db.add(1, [1.0, 2.0, 3.0, 4.0], {"k": "v" * 100})
        assert db.get_metadata(1).to_dict() == {"k": "v" * 100}
        s = db.stats()
        assert s.compression == nusterdb.Compression.LZ4
        assert s.config.cache_size_mb == 512 and s.config.enable_bloom_filter is True


def test_doc_execution_flow():
    # 1. Database Initialization: NusterDB("path", dim=128)
    db = nusterdb.NusterDB("path", dim=128)
    rng = np.random.default_rng(2)
    X = rng.standard_normal((50, 128)).astype(np.float32)

    # 2. Vector Addition: db.add(id, vector, metadata)
    for i, x in enumerate(X):
        id = i
        vector = nusterdb.Vector(x)
        metadata = {"row": i}
        db.add(id, vector, metadata)

    # 3. Vector Search: db.search(query_vector, k=10)
    query_vector = nusterdb.Vector(X[7])
    results = db.search(query_vector, k=10)

    # 4. Snapshot Creation: db.create_snapshot("backup_v1")
    name = db.create_snapshot("backup_v1")

    d = np.linalg.norm(X - X[7], axis=1)
    assert [i for i, _ in results] == list(np.argsort(d)[:10])
    assert name == "backup_v1" and db.list_snapshots() == ["backup_v1"]
    assert len(results) == 10 and isinstance(results[0], tuple)
    db.close()


# ---- the package summary: Usage Examples ----

def test_summary_basic_usage():
    from nusterdb import NusterDB, DatabaseConfig, Vector, IndexType

    # Configure database
    config = DatabaseConfig(dim=128, index_type=IndexType.Hnsw)
    db = NusterDB("./my_db", config)

    # Insert vectors
    vector = Vector([1.0, 2.0, 3.0] + [0.0] * 125)
    id = db.insert(vector, {"category": "example"})

    # Search
    query = Vector([1.1, 2.1, 3.1] + [0.0] * 125)
    results = db.search(query, k=5)

    assert results == [(id, pytest.approx(np.sqrt(3 * 0.1 ** 2), rel=1e-4))]
    assert db.get_metadata(id).to_dict() == {"category": "example"}
    db.close()
    import shutil
    shutil.rmtree("./my_db")


def test_summary_advanced_configuration():
    from nusterdb import DatabaseConfig, IndexType, DistanceMetric, Compression

    config = DatabaseConfig(
        dim=256,
        index_type=IndexType.Hnsw,
        distance_metric=DistanceMetric.Cosine,
        hnsw_max_connections=32,
        hnsw_ef_construction=400,
        compression=Compression.LZ4,
        cache_size_mb=512
    )

    assert (config.dim, config.hnsw_max_connections, config.hnsw_ef_construction) == (256, 32, 400)
    assert config.compression == Compression.LZ4 and config.cache_size_mb == 512
    with nusterdb.NusterDB("./adv", config) as db:
        s = db.stats()
        assert s.distance_metric == DistanceMetric.Cosine and s.dimension == 256
        assert s.config.hnsw_max_connections == 32 and s.config.hnsw_ef_construction == 400


def test_summary_nusterdb_methods():
    """Every NusterDB method the summary lists, with its arguments as listed:
    insert(vector, metadata), search(query, k, ef_search), get(id) / get_metadata(id),
    update(id, vector) / update_metadata(id, metadata), delete(id),
    batch_insert(vectors, metadata_list), range_search(query, radius),
    snapshot(name, metadata), stats(), compact()."""
    from nusterdb import NusterDB, DatabaseConfig, Vector, IndexType

    db = NusterDB("./methods", DatabaseConfig(dim=3, index_type=IndexType.Hnsw))
    vector = Vector([1.0, 0.0, 0.0])
    metadata = {"name": "first"}
    id = db.insert(vector, metadata)
    ids = db.batch_insert([Vector([0.0, 1.0, 0.0]), Vector([0.0, 0.0, 1.0])],
                          [{"name": "second"}, {"name": "third"}])
    results = db.search(Vector([0.9, 0.1, 0.0]), 2, 50)
    assert results[0][0] == id and results[1][0] == ids[0]
    assert db.get(id) == vector and db.get_metadata(id).get("name") == "first"
    db.update(id, Vector([1.0, 1.0, 0.0]))
    db.update_metadata(id, {"name": "changed"})
    assert db.get(id).to_list() == [1.0, 1.0, 0.0]
    assert db.get_metadata(id).to_dict() == {"name": "changed"}
    within = db.range_search(Vector([0.0, 0.0, 1.0]), 0.5)
    assert [i for i, _ in within] == [ids[1]]
    db.snapshot("v1", {"note": "three vectors"})
    assert db.delete(ids[1]) is True
    assert db.get(ids[1]) is None
    stats = db.stats()
    assert stats.vector_count == 2
    db.compact()
    assert db.count() == 2 and db.snapshots()[0]["metadata"] == {"note": "three vectors"}
    db.close()


def test_summary_vector_class():
    """The summary's Vector: add/subtract/multiply/divide, norm, dimension, dot, the
    factories, normalisation and statistics."""
    from nusterdb import Vector

    a = Vector([1.0, 2.0, 3.0, 4.0])
    b = Vector([2.0, 2.0, 2.0, 2.0])
    assert a.add(b).to_list() == [3.0, 4.0, 5.0, 6.0]
    assert a.subtract(b).to_list() == [-1.0, 0.0, 1.0, 2.0]
    assert a.multiply(b).to_list() == [2.0, 4.0, 6.0, 8.0]
    assert a.divide(b).to_list() == [0.5, 1.0, 1.5, 2.0]
    assert a.norm() == pytest.approx(np.sqrt(30)) and a.dimension == 4 and a.dot(b) == 20.0
    assert Vector.zeros(4).to_list() == [0.0] * 4 and Vector.ones(2).to_list() == [1.0, 1.0]
    assert Vector.random(4).dimension == 4
    assert Vector.unit_random(4).norm() == pytest.approx(1.0, rel=1e-5)
    assert a.normalize().norm() == pytest.approx(1.0, rel=1e-6)
    assert (a.mean(), a.sum(), a.min(), a.max()) == (2.5, 10.0, 1.0, 4.0)
    assert a.std() == pytest.approx(np.std([1, 2, 3, 4]))


def test_summary_index_types_and_compression_enums():
    from nusterdb import IndexType, Compression
    # IndexType enum - Flat, HNSW, IVF, LSH, Annoy; Compression enum - None, Snappy, LZ4, ZSTD
    for name in ("Flat", "HNSW", "IVF", "LSH", "Annoy"):
        assert getattr(IndexType, name) is not None
    for name in ("None", "Snappy", "LZ4", "ZSTD"):
        assert getattr(Compression, name) is not None
    assert len({getattr(Compression, n) for n in ("None", "Snappy", "LZ4", "ZSTD")}) == 4
