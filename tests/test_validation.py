"""Tests of skvem._utils.validation, the shared input checks."""

import numpy as np
import pytest
import scipy.sparse as sp

from skvem._utils.validation import (
    check_features,
    check_finite,
    check_fmri,
    check_n_samples,
    check_bool,
    check_float,
    check_int,
    check_texts,
    check_unmasked,
    ParameterError,
)


def test_check_fmri_1d_is_one_voxel():
    y2, was_1d = check_fmri(np.arange(5.0))
    assert was_1d
    assert y2.shape == (5, 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_check_fmri_keeps_float_arrays_without_copy(dtype):
    y = np.ones((4, 3), dtype=dtype)
    y2, was_1d = check_fmri(y, n_samples=4)
    assert not was_1d
    assert y2.dtype == dtype
    assert np.shares_memory(y, y2)


def test_check_fmri_converts_ints_and_lists():
    y2, _ = check_fmri([[1, 2], [3, 4]])
    assert y2.dtype == np.float64
    y3, _ = check_fmri(np.arange(6).reshape(3, 2), dtype=np.float32)
    assert y3.dtype == np.float32


@pytest.mark.parametrize(
    "y, match",
    [
        (np.zeros((3, 2, 2)), r"2-D \(n_samples, n_voxels\).*3-D.*mean\(axis=1\)"),
        (np.zeros((4, 0)), "0 voxels"),
        (np.zeros((0, 3)), "empty"),
        (np.zeros(0), "empty"),
        (np.array([[1.0, np.nan], [np.nan, 2.0]]), r"2 NaN value\(s\).*index \(0, 1\)"),
        (np.array([[1.0, np.inf], [0.0, 2.0]]), r"infinite \(inf\)"),
        (np.array(3.0), "scalar"),
        (None, "None"),
        (np.array([["a", "b"]]), "numbers"),
        (np.ones((2, 2)) * 1j, "Complex"),
    ],
)
def test_check_fmri_errors(y, match):
    with pytest.raises(ValueError, match=match):
        check_fmri(y, name="y")


def test_check_fmri_length_mismatch_names_both():
    with pytest.raises(ValueError, match="y has 3 samples.*X has 4"):
        check_fmri(np.ones((3, 2)), n_samples=4)


def test_check_fmri_uses_name():
    with pytest.raises(ValueError, match="^fmri contains 1 NaN"):
        check_fmri(np.array([np.nan, 1.0]), name="fmri")


def test_check_fmri_sparse_is_type_error():
    with pytest.raises(TypeError, match="sparse"):
        check_fmri(sp.csr_matrix(np.eye(3)))


def test_check_finite_sum_overflow_is_not_an_error():
    # The sum overflows to inf although every value is finite: the fast
    # path must fall back to the element-wise test.
    a = np.full((4, 4), 3e38, dtype=np.float32)
    check_finite(a, name="a")


def test_check_finite_allow_nan_still_rejects_inf():
    check_finite(np.array([np.nan, 1.0]), name="r", allow_nan=True)
    with pytest.raises(ValueError, match="infinite"):
        check_finite(np.array([np.nan, -np.inf]), name="r", allow_nan=True)


def test_check_features():
    X = check_features([[1, 2], [3, 4]], dtype=np.float32)
    assert X.dtype == np.float32 and X.shape == (2, 2)
    with pytest.raises(ValueError, match=r"X must be 2-D.*reshape\(-1, 1\)"):
        check_features(np.ones(3))
    with pytest.raises(ValueError, match="0 features"):
        check_features(np.ones((3, 0)))
    with pytest.raises(ValueError, match="empty"):
        check_features(np.ones((0, 3)))
    with pytest.raises(ValueError, match="X contains 1 NaN"):
        check_features(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="X has 2 samples.*y has 3"):
        check_features(np.ones((2, 2)), n_samples=3)


def test_check_n_samples():
    check_n_samples(None, 3, name="a")
    check_n_samples(3, 3, name="a")
    with pytest.raises(ValueError, match="a has 2 samples.*b has 3"):
        check_n_samples(3, 2, name="a", ref_name="b")


def test_check_int():
    assert check_int(np.int64(3), name="n") == 3
    assert check_int(None, name="n", allow_none=True) is None
    assert check_int("auto", name="n", allow=("auto",)) == "auto"
    assert check_int(0, name="n", min_val=0) == 0
    for bad in [0, -1, 2.5, True, np.bool_(True), "3", None, np.nan]:
        with pytest.raises(ValueError, match=r"n must be an integer >= 1; got "):
            check_int(bad, name="n")
    with pytest.raises(TypeError, match=r"Est: n must be an integer in \[1, 8\] or one of \['auto'\]"):
        check_int(9, name="n", max_val=8, allow=("auto",), owner="Est")


def test_check_float():
    assert check_float(0, name="x") == 0.0
    assert check_float(np.float32(0.5), name="x", min_val=0, max_val=1) == 0.5
    assert check_float("auto", name="x", allow=("auto",)) == "auto"
    for bad, kwargs, match in [
        (np.nan, {}, "x must be a finite number"),
        (np.inf, {"min_val": 0.0}, r"x must be a number >= 0.0"),
        (True, {}, "x must be a finite number"),
        ("1", {}, "x must be a finite number"),
        (1.0, {"min_val": 0.0, "max_val": 1.0, "include_boundaries": "left"},
         r"x must be a number in \[0.0, 1.0\); got 1.0"),
        (0.0, {"min_val": 0.0, "include_boundaries": "neither"}, r"x must be a number > 0.0"),
    ]:
        with pytest.raises(ParameterError, match=match):
            check_float(bad, name="x", **kwargs)


def test_check_bool():
    assert check_bool(np.bool_(False), name="b") is False
    with pytest.raises(ValueError, match="b must be True or False; got 1"):
        check_bool(1, name="b")


def test_check_unmasked():
    plain = np.arange(3.0)
    assert check_unmasked(plain, name="a") is plain
    np.testing.assert_array_equal(check_unmasked(np.ma.masked_array(plain), name="a"), plain)
    masked = np.ma.masked_array(plain, mask=[0, 1, 0])
    with pytest.raises(ValueError, match="a is a masked array with 1 masked value"):
        check_unmasked(masked, name="a")
    np.testing.assert_array_equal(check_unmasked(masked, name="a", masked_as_nan=True),
                                  [0.0, np.nan, 2.0])


def test_check_texts():
    assert check_texts(("a", "")) == ["a", ""]
    assert check_texts(np.array([["x"], ["y"]], dtype=object)) == ["x", "y"]
    with pytest.raises(TypeError, match="caption 1 is int"):
        check_texts(["a", 3], owner="E")
    with pytest.raises(TypeError, match="single str"):
        check_texts("abc")
