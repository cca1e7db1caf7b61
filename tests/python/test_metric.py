"""nusterdb.DistanceMetric: both spellings, names, aliases, distance and similarity
against the float64 model of docs/METRICS.md."""
import numpy as np
import pytest

import nusterdb
from nusterdb import DistanceMetric, Vector
from conftest import METRICS, data_for, model_distance, model_similarity

ATTR = {"euclidean": "Euclidean", "manhattan": "Manhattan", "cosine": "Cosine",
        "angular": "Angular", "chebyshev": "Chebyshev", "jaccard": "Jaccard",
        "hamming": "Hamming", "inner_product": "InnerProduct"}


@pytest.mark.parametrize("name", METRICS)
def test_both_spellings_are_equal(name):
    a = getattr(DistanceMetric, ATTR[name])
    m = getattr(DistanceMetric, name)()
    assert isinstance(a, DistanceMetric) and isinstance(m, DistanceMetric)
    assert a == m and hash(a) == hash(m)
    assert a.name == name and str(a) == name
    assert repr(a) == f"DistanceMetric.{ATTR[name]}"
    assert DistanceMetric.from_name(name) == a
    assert DistanceMetric.from_name(name.upper()) == a
    assert isinstance(a.value, int)


def test_metrics_are_distinct():
    ms = [getattr(DistanceMetric, ATTR[n]) for n in METRICS]
    assert len({m.value for m in ms}) == len(ms)
    assert len(set(ms)) == len(ms)
    for i, a in enumerate(ms):
        for j, b in enumerate(ms):
            assert (a == b) == (i == j)
            assert (a != b) == (i != j)


@pytest.mark.parametrize("alias,name", [("l2", "euclidean"), ("ip", "inner_product"),
                                        ("dot", "inner_product"), ("l1", "manhattan"),
                                        ("linf", "chebyshev"), ("L2", "euclidean"),
                                        ("Cosine", "cosine")])
def test_aliases(alias, name):
    assert DistanceMetric.from_name(alias) == getattr(DistanceMetric, ATTR[name])


def test_unknown_name_raises_value_error():
    with pytest.raises(ValueError):
        DistanceMetric.from_name("nope")
    with pytest.raises(ValueError):
        DistanceMetric.from_name("")


@pytest.mark.parametrize("name", METRICS)
def test_distance_and_similarity_match_model(name, rng):
    m = getattr(DistanceMetric, name)()
    X = data_for(name, rng, 40, 12)
    for a, b in zip(X[:20], X[20:]):
        want = model_distance(name, a, b)
        for args in ((Vector(a), Vector(b)), (a.tolist(), b.tolist()), (a, b)):
            assert m.distance(*args) == pytest.approx(want, rel=1e-5, abs=1e-5)
        assert m.similarity(Vector(a), Vector(b)) == pytest.approx(
            model_similarity(name, a, b), rel=1e-5, abs=1e-5)
    # nearer means larger similarity
    q = X[0]
    d = [model_distance(name, q, x) for x in X[1:]]
    s = [m.similarity(q, x) for x in X[1:]]
    for i in range(len(d)):
        for j in range(len(d)):
            if d[i] < d[j] - 1e-4:
                assert s[i] > s[j] - 1e-6, (name, d[i], d[j], s[i], s[j])


def test_distance_dimension_mismatch():
    with pytest.raises(nusterdb.InvalidArgumentError):
        DistanceMetric.Euclidean.distance([1.0, 2.0], [1.0, 2.0, 3.0])


def test_metric_string_accepted_in_config():
    for name in METRICS:
        cfg = nusterdb.DatabaseConfig(dim=4, distance_metric=name)
        assert cfg.distance_metric == getattr(DistanceMetric, ATTR[name])
    cfg = nusterdb.DatabaseConfig(dim=4, distance_metric="l2")
    assert cfg.distance_metric == DistanceMetric.Euclidean


def test_metric_is_usable_as_dict_key():
    d = {DistanceMetric.Cosine: 1, DistanceMetric.euclidean(): 2}
    assert d[DistanceMetric.cosine()] == 1 and d[DistanceMetric.Euclidean] == 2
