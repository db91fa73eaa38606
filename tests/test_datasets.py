"""Dataset fingerprints: shape, dtype and a content digest that tells data sets apart."""

import numpy as np
import pytest

from autolog.patching.datasets import fingerprint


def test_numpy_fingerprint_has_shape_dtype_and_digest():
    info = fingerprint(np.zeros((3, 4), dtype=np.float32))
    assert info["shape"] == "3x4" and info["dtype"] == "float32" and len(info["digest"]) == 16


def test_same_shape_different_content_differs():
    a, b = np.zeros((5, 2)), np.ones((5, 2))
    assert fingerprint(a)["digest"] != fingerprint(b)["digest"]
    assert fingerprint(a)["digest"] == fingerprint(a.copy())["digest"]


def test_pandas_and_lists():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": [1, 2], "b": [0.5, 0.25]})
    info = fingerprint(frame)
    assert info["shape"] == "2x2" and "digest" in info
    renamed = frame.rename(columns={"a": "z"})
    assert fingerprint(renamed)["digest"] != info["digest"]
    assert fingerprint([1, 2, 3])["shape"] == "3"


def test_scipy_sparse_gets_a_digest():
    sparse = pytest.importorskip("scipy.sparse")
    m = sparse.random(20, 10, density=0.2, format="csr", random_state=0)
    info = fingerprint(m)
    assert info["shape"] == "20x10" and "digest" in info
    assert fingerprint(m * 2)["digest"] != info["digest"]


def test_none_and_unknown_objects():
    assert fingerprint(None) == {}
    assert "digest" not in fingerprint(object())
