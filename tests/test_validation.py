"""Tests of skvem._utils.validation, the shared input checks."""

import numpy as np
import pytest
import scipy.sparse as sp

from skvem._utils.validation import (
    check_features,
    check_finite,
    check_fmri,
    check_n_samples,
    check_positive_int,
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


def test_check_positive_int():
    assert check_positive_int(np.int64(3), name="n") == 3
    assert check_positive_int(None, name="n", allow_none=True) is None
    for bad in [0, -1, 2.5, True, "3", None]:
        with pytest.raises(ValueError, match="n must be an integer >= 1"):
            check_positive_int(bad, name="n")
