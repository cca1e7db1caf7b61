"""nusterdb.Vector (docs/PYTHON.md, Vector) against numpy float32/float64."""
import array
import math

import numpy as np
import pytest

import nusterdb
from nusterdb import Vector
from conftest import METRICS, model_distance

DIMS = [1, 3, 8, 17, 64]


def vals(v):
    return np.array(v.to_list(), dtype=np.float64)


def close(v, want, rtol=1e-6, atol=1e-6):
    assert isinstance(v, Vector)
    np.testing.assert_allclose(vals(v), np.asarray(want, dtype=np.float64), rtol=rtol, atol=atol)


# ---- construction ----

def test_from_list_tuple_and_iterable():
    for src in ([1.0, 2.5, -3.0], (1, 2.5, -3), (x for x in [1.0, 2.5, -3.0]), range(3)):
        v = Vector(src)
        assert v.dimension == 3 and v.dim == 3 and len(v) == 3
    assert Vector([1, 2.5, -3]).to_list() == [1.0, 2.5, -3.0]
    assert Vector(range(4)).tolist() == [0.0, 1.0, 2.0, 3.0]


def test_values_are_float32():
    v = Vector([0.1, 1e-3, 1 / 3])
    assert v.to_list() == [float(np.float32(x)) for x in (0.1, 1e-3, 1 / 3)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64, np.int8, np.uint8])
def test_from_numpy_buffers(dtype, rng):
    x = (rng.standard_normal(17) * 10).astype(dtype)
    v = Vector(x)
    assert v.dimension == 17
    assert v.to_list() == [float(np.float32(a)) for a in x.astype(np.float64)]


def test_from_array_array_and_memoryview():
    a = array.array("f", [1.5, -2.0, 3.25])
    assert Vector(a).to_list() == [1.5, -2.0, 3.25]
    assert Vector(memoryview(a)).to_list() == [1.5, -2.0, 3.25]
    d = array.array("d", [1.5, -2.0, 3.25])
    assert Vector(d).to_list() == [1.5, -2.0, 3.25]


def test_copy_of_buffer_is_independent(rng):
    x = rng.standard_normal(8).astype(np.float32)
    v = Vector(x)
    x[0] = 1000.0
    assert v[0] != 1000.0


def test_strided_and_1xn_buffers(rng):
    x = rng.standard_normal((4, 6)).astype(np.float32)
    assert Vector(x[:, 2]).to_list() == [float(a) for a in x[:, 2]]
    assert Vector(x[1::2, 0]).to_list() == [float(a) for a in x[1::2, 0]]
    assert Vector(x[1:2, :]).to_list() == [float(a) for a in x[1]]


def test_multidimensional_buffer_raises_value_error(rng):
    with pytest.raises(ValueError):
        Vector(np.zeros((2, 3), dtype=np.float32))
    with pytest.raises(ValueError):
        Vector(np.zeros((1, 2, 3), dtype=np.float32))


def test_wrong_types_raise_type_error():
    with pytest.raises(TypeError):
        Vector("abc")
    with pytest.raises(TypeError):
        Vector([1.0, "x", 2.0])
    with pytest.raises(TypeError):
        Vector([1.0, None])
    with pytest.raises(TypeError):
        Vector(3.0)


def test_zeros_ones():
    for d in DIMS:
        assert Vector.zeros(d).to_list() == [0.0] * d
        assert Vector.ones(d).to_list() == [1.0] * d


def test_random_range_and_seed():
    v = Vector.random(200, -2.0, 3.0)
    x = vals(v)
    assert v.dimension == 200 and x.min() >= -2.0 and x.max() <= 3.0
    assert x.min() < -1.0 and x.max() > 2.0  # spread over the range
    d = vals(Vector.random(200))
    assert d.min() >= -1.0 and d.max() <= 1.0
    a = Vector.random(50, min=0.0, max=1.0, seed=7)
    b = Vector.random(50, min=0.0, max=1.0, seed=7)
    c = Vector.random(50, min=0.0, max=1.0, seed=8)
    assert a == b and a != c


def test_unit_random():
    for d in DIMS:
        v = Vector.unit_random(d)
        assert v.norm() == pytest.approx(1.0, rel=1e-5)
    assert Vector.unit_random(16, seed=3) == Vector.unit_random(16, seed=3)
    assert Vector.unit_random(16, seed=3) != Vector.unit_random(16, seed=4)


# ---- sequence protocol ----

def test_indexing_and_assignment():
    v = Vector([1.0, 2.0, 3.0, 4.0])
    assert v[0] == 1.0 and v[3] == 4.0 and v[-1] == 4.0 and v[-4] == 1.0
    with pytest.raises(IndexError):
        v[4]
    with pytest.raises(IndexError):
        v[-5]
    v[1] = 7.5
    v[-1] = -1
    assert v.to_list() == [1.0, 7.5, 3.0, -1.0]
    with pytest.raises(IndexError):
        v[4] = 0.0
    with pytest.raises(TypeError):
        v[0] = "x"


def test_slices_give_new_vectors():
    v = Vector([0.0, 1.0, 2.0, 3.0, 4.0])
    s = v[1:4]
    assert isinstance(s, Vector) and s.to_list() == [1.0, 2.0, 3.0]
    assert v[::2].to_list() == [0.0, 2.0, 4.0]
    assert v[::-1].to_list() == [4.0, 3.0, 2.0, 1.0, 0.0]
    s[0] = 100.0
    assert v[1] == 1.0


def test_iteration_equality_repr():
    v = Vector([1.0, -2.0])
    assert list(v) == [1.0, -2.0]
    assert v == Vector([1.0, -2.0])
    assert v != Vector([1.0, -2.5])
    assert v != Vector([1.0, -2.0, 0.0])
    assert isinstance(repr(v), str) and "Vector" in repr(v)


def test_numpy_view_is_writable_and_shares_memory():
    v = Vector([1.0, 2.0, 3.0])
    a = np.asarray(v)
    assert a.dtype == np.float32 and a.shape == (3,)
    assert np.shares_memory(a, np.asarray(v))
    a[1] = 42.0
    assert v[1] == 42.0
    v[2] = -5.0
    assert a[2] == -5.0
    m = memoryview(v)
    assert m.format == "f" and m.shape == (3,) and not m.readonly


# ---- arithmetic ----

@pytest.fixture
def pair(rng):
    a = rng.standard_normal(17).astype(np.float32)
    b = rng.standard_normal(17).astype(np.float32)
    b[np.abs(b) < 0.1] = 0.5
    return a, b


def test_operators(pair):
    a, b = pair
    va, vb = Vector(a), Vector(b)
    close(va + vb, a + b)
    close(va - vb, a - b)
    close(va * vb, a * b)
    close(va / vb, a / b, rtol=1e-5)
    close(va * 2.0, a * 2)
    close(2.0 * va, a * 2)
    close(va / 2.0, a / 2)
    close(va + 1.0, a + 1)
    close(-va, -a)
    assert va.to_list() == [float(x) for x in a]  # operands unchanged


def test_methods(pair):
    a, b = pair
    va, vb = Vector(a), Vector(b)
    close(va.add(vb), a + b)
    close(va.subtract(vb), a - b)
    close(va.multiply(vb), a * b)
    close(va.divide(vb), a / b, rtol=1e-5)
    close(va.add(1.5), a + 1.5)
    close(va.subtract(1.5), a - 1.5)
    close(va.multiply(3.0), a * 3)
    close(va.divide(4.0), a / 4)
    close(va.scale(-0.5), a * -0.5)
    assert va.to_list() == [float(x) for x in a]


def test_dimension_mismatch_raises_invalid_argument():
    a, b = Vector([1.0, 2.0]), Vector([1.0, 2.0, 3.0])
    for f in (lambda: a + b, lambda: a - b, lambda: a * b, lambda: a / b, lambda: a.add(b),
              lambda: a.dot(b), lambda: a.euclidean_distance(b), lambda: a.subtract(b),
              lambda: a.multiply(b), lambda: a.divide(b), lambda: a.cosine_distance(b)):
        with pytest.raises(nusterdb.InvalidArgumentError):
            f()


def test_division_by_zero():
    v = Vector([1.0, 2.0])
    with pytest.raises(ZeroDivisionError):
        v / 0.0
    with pytest.raises(ZeroDivisionError):
        v.divide(0.0)
    with pytest.raises(ZeroDivisionError):
        v / Vector([1.0, 0.0])
    with pytest.raises(ZeroDivisionError):
        v.divide(Vector([0.0, 1.0]))


# ---- norms, distances, statistics ----

def test_norms_and_dot(pair):
    a, b = pair
    va, vb = Vector(a), Vector(b)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    assert va.dot(vb) == pytest.approx(a64 @ b64, rel=1e-5, abs=1e-5)
    assert va.norm() == pytest.approx(np.linalg.norm(a64), rel=1e-5)
    assert va.l1_norm() == pytest.approx(np.abs(a64).sum(), rel=1e-5)
    assert va.linf_norm() == pytest.approx(np.abs(a64).max(), rel=1e-6)
    n = va.normalize()
    close(n, a64 / np.linalg.norm(a64), rtol=1e-5)
    assert n.norm() == pytest.approx(1.0, rel=1e-5)
    with pytest.raises(ValueError):
        Vector.zeros(4).normalize()


@pytest.mark.parametrize("metric", METRICS)
def test_distance_methods_match_model(metric, rng):
    for _ in range(20):
        if metric == "jaccard":
            a, b = rng.random(16).astype(np.float32), rng.random(16).astype(np.float32)
        elif metric == "hamming":
            a = rng.integers(0, 3, 16).astype(np.float32)
            b = rng.integers(0, 3, 16).astype(np.float32)
        else:
            a, b = rng.standard_normal(16).astype(np.float32), rng.standard_normal(16).astype(np.float32)
        va, vb = Vector(a), Vector(b)
        want = model_distance(metric, a, b)
        got = va.distance(vb, getattr(nusterdb.DistanceMetric, metric)())
        assert got == pytest.approx(want, rel=1e-5, abs=1e-5)
        assert va.distance(vb, metric) == got
        method = {"euclidean": va.euclidean_distance, "manhattan": va.manhattan_distance,
                  "cosine": va.cosine_distance, "angular": va.angular_distance,
                  "chebyshev": va.chebyshev_distance, "jaccard": va.jaccard_distance,
                  "hamming": va.hamming_distance}.get(metric)
        if method is not None:
            assert method(vb) == pytest.approx(want, rel=1e-5, abs=1e-5)
        if metric == "cosine":
            assert va.cosine_similarity(vb) == pytest.approx(1.0 - want, rel=1e-5, abs=1e-5)
        if metric == "inner_product":
            # The method named inner_product is the product a . b (what the name says);
            # the metric's distance is its negation.
            assert va.inner_product(vb) == pytest.approx(-want, rel=1e-5, abs=1e-5)


def test_distance_methods_accept_lists():
    v = Vector([3.0, 4.0])
    assert v.euclidean_distance([0.0, 0.0]) == pytest.approx(5.0)
    assert v.dot([1.0, 1.0]) == pytest.approx(7.0)


def test_zero_vector_conventions():
    z, v = Vector.zeros(3), Vector([1.0, 2.0, 3.0])
    assert z.cosine_distance(v) == pytest.approx(1.0)
    assert z.angular_distance(v) == pytest.approx(0.5)
    assert z.jaccard_distance(z) == pytest.approx(0.0)
    assert z.jaccard_distance(v) == pytest.approx(1.0)


def test_statistics(rng):
    a = rng.standard_normal(33).astype(np.float32)
    v = Vector(a)
    a64 = a.astype(np.float64)
    assert v.sum() == pytest.approx(a64.sum(), rel=1e-5, abs=1e-5)
    assert v.mean() == pytest.approx(a64.mean(), rel=1e-5, abs=1e-5)
    assert v.std() == pytest.approx(a64.std(ddof=0), rel=1e-5)
    assert v.variance() == pytest.approx(a64.var(ddof=0), rel=1e-5)
    assert v.min() == float(a.min()) and v.max() == float(a.max())
    assert math.isclose(v.std() ** 2, v.variance(), rel_tol=1e-5)
