"""Tests of skvem.analysis: variance_partitioning, roi_summary, paired_difference."""

import numpy as np
import pytest
from sklearn.metrics import r2_score
from sklearn.model_selection import KFold
from sklearn.utils import check_random_state

from skvem.analysis import paired_difference, roi_summary, variance_partitioning
from skvem.encoding.ridge import VoxelRidgeCV
from skvem.metrics import algonauts_score_voxels, pearson_r

FAST = dict(n_iter=4, inner_cv=3, random_state=0, backend="numpy", cv=KFold(4))


def _spaces(n=240, seed=0):
    """A and B share 3 columns (S); voxels 0-5 use A-only columns, 6-11 B-only, 12-17 S."""
    rng = np.random.default_rng(seed)
    S, Ua, Ub = (rng.standard_normal((n, 3)) for _ in range(3))
    A = np.hstack([S, Ua])
    B = np.hstack([S + 0.05 * rng.standard_normal((n, 3)), Ub])
    drivers = [Ua] * 6 + [Ub] * 6 + [S] * 6
    y = np.column_stack([d @ rng.standard_normal(3) for d in drivers])
    y += 0.5 * rng.standard_normal(y.shape)
    return {"A": A, "B": B}, y


def test_two_spaces_recover_unique_and_shared_variance():
    spaces, y = _spaces()
    vp = variance_partitioning(spaces, y, **FAST)
    assert vp.names == ("A", "B") and vp.units == "% of variance"
    assert np.all(vp.unique["A"][:6] > 60) and np.all(np.abs(vp.unique["A"][6:]) < 10)
    assert np.all(vp.unique["B"][6:12] > 60) and np.all(np.abs(vp.unique["B"][:6]) < 10)
    assert np.all(vp.shared[12:] > 60) and np.all(np.abs(vp.shared[:12]) < 15)
    # The Venn identities hold exactly.
    np.testing.assert_allclose(vp.unique["A"] + vp.unique["B"] + vp.shared, vp.total)
    np.testing.assert_allclose(vp.unique["A"] + vp.shared, vp.per_space["A"])
    assert set(vp.unions) == {("A",), ("B",), ("A", "B")}


def test_single_space_union_is_the_heldout_r2_of_voxel_ridge():
    spaces, y = _spaces(n=120)
    vp = variance_partitioning(spaces, y, **FAST)
    expected = np.zeros(y.shape[1])
    for train, test in KFold(4).split(y):
        model = VoxelRidgeCV(cv=3, backend="numpy").fit(spaces["A"][train], y[train])
        expected += r2_score(y[test], model.predict(spaces["A"][test]), multioutput="raw_values")
    np.testing.assert_allclose(vp.per_space["A"], 100 * expected / 4, rtol=1e-4, atol=1e-3)


def test_three_spaces_partition_sums_to_the_total():
    spaces, y = _spaces(n=160)
    rng = np.random.default_rng(3)
    spaces["C"] = rng.standard_normal((160, 4))
    vp = variance_partitioning(spaces, y[:, ::3], **FAST)
    assert len(vp.unions) == 7
    assert set(vp.shared) == {("A", "B"), ("A", "C"), ("B", "C"), ("A", "B", "C")}
    regions = sum(vp.unique.values()) + sum(vp.shared.values())
    np.testing.assert_allclose(regions, vp.total, atol=1e-9)
    np.testing.assert_allclose(
        vp.unique["A"] + vp.shared[("A", "B")] + vp.shared[("A", "C")]
        + vp.shared[("A", "B", "C")], vp.per_space["A"], atol=1e-9)
    assert np.all(np.abs(vp.unique["C"]) < 10)  # C is noise


def test_noise_ceiling_scaling_negative_values_and_clip():
    spaces, y = _spaces(n=120)
    plain = variance_partitioning(spaces, y, **FAST)
    nc = np.linspace(0, 90, y.shape[1])
    scaled = variance_partitioning(spaces, y, noise_ceiling=nc, **FAST)
    assert scaled.units == "% of explainable variance"
    assert np.isnan(scaled.total[0])
    np.testing.assert_allclose(scaled.unique["A"][1:], plain.unique["A"][1:] * 100 / nc[1:])
    assert np.any(plain.unique["B"] < 0)  # reported, not hidden
    clipped = variance_partitioning(spaces, y, noise_ceiling=nc, clip=True, **FAST)
    assert clipped.clipped and np.nanmin(clipped.unique["B"]) >= 0 and np.isnan(clipped.shared[0])
    np.testing.assert_allclose(clipped.unique["A"][1:], np.clip(scaled.unique["A"][1:], 0, None))


def test_concatenated_ridge_model_runs_and_differs():
    spaces, y = _spaces(n=120)
    banded = variance_partitioning(spaces, y, **FAST)
    ridge = variance_partitioning(spaces, y, model="ridge", **FAST)
    assert ridge.model == "ridge"
    np.testing.assert_allclose(ridge.per_space["A"], banded.per_space["A"])
    assert not np.allclose(ridge.total, banded.total)


def test_roi_summary_means_per_roi():
    spaces, y = _spaces(n=120)
    vp = variance_partitioning(spaces, y, **FAST)
    rois = {"a_only": np.arange(6), "shared": np.r_[np.zeros(12, bool), np.ones(6, bool)]}
    summary = roi_summary(vp, rois)
    assert summary["a_only"].unique["A"] == pytest.approx(vp.unique["A"][:6].mean())
    assert summary["shared"].shared == pytest.approx(vp.shared[12:].mean())
    assert list(roi_summary(vp, rois, roi_names=["shared"])) == ["shared"]
    with pytest.raises(ValueError, match=r"roi_names has unknown ROI\(s\) \['V9'\]"):
        roi_summary(vp, rois, roi_names=["V9"])
    with pytest.raises(ValueError, match=r"rois\['bad'\] has voxel indices outside \[0, 18\)"):
        roi_summary(vp, {"bad": [0, 18]})


@pytest.mark.parametrize("change, match", [
    (lambda s, y: ({"A": s["A"]}, y), r"spaces has 1 feature space"),
    (lambda s, y: ({**s, "C": s["A"], "D": s["B"]}, y), r"spaces has 4 feature space"),
    (lambda s, y: ([s["A"], s["B"]], y), r"spaces must be a dict"),
    (lambda s, y: ({"A": s["A"], 2: s["B"]}, y), r"keyed by str names"),
    (lambda s, y: ({"A": s["A"], "B": s["B"][:-1]}, y), r"spaces\['B'\] has 119 samples"),
])
def test_variance_partitioning_bad_spaces(change, match):
    spaces, y = _spaces(n=120)
    spaces, y = change(spaces, y)
    with pytest.raises(ValueError, match=match):
        variance_partitioning(spaces, y, **FAST)


def test_variance_partitioning_bad_ceiling_and_model():
    spaces, y = _spaces(n=120)
    with pytest.raises(ValueError, match=r"noise_ceiling has 3 samples.*18"):
        variance_partitioning(spaces, y, noise_ceiling=[50.0] * 3, **FAST)
    with pytest.raises(ValueError, match=r"noise_ceiling must be in percent"):
        variance_partitioning(spaces, y, noise_ceiling=np.full(18, 150.0), **FAST)
    with pytest.warns(UserWarning, match=r"noise_ceiling value is at most 1"):
        variance_partitioning(spaces, y[:, :6], noise_ceiling=np.full(6, 0.4), **FAST)
    with pytest.raises(ValueError, match=r"model must be one of"):
        variance_partitioning(spaces, y, model="lasso", **FAST)


def _paired_data(n=150, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.standard_normal((n, 8))
    good = y + 0.8 * rng.standard_normal((n, 8))
    worse = y + 2.0 * rng.standard_normal((n, 8))
    return y, good, worse, {"first": np.arange(4), "last": np.arange(4, 8)}


def test_paired_difference_point_estimate_and_ci():
    y, good, worse, rois = _paired_data()
    diff = paired_difference(y, good, worse, rois=rois, n_boot=300, random_state=0)
    expected = (pearson_r(y, good) - pearson_r(y, worse))[:4].mean()
    mean, low, high = diff["first"]
    assert mean == pytest.approx(expected)
    assert 0 < low < mean < high
    flipped = paired_difference(y, worse, good, rois=rois, n_boot=300, random_state=0)
    assert flipped["first"][0] == pytest.approx(-mean)
    assert flipped["first"][2] == pytest.approx(-low)
    same = paired_difference(y, good, good, rois=rois, n_boot=50, random_state=0)
    assert same["last"] == pytest.approx((0.0, 0.0, 0.0), abs=1e-12)
    again = paired_difference(y, good, worse, rois=rois, n_boot=300, random_state=0)
    assert again == diff


def test_paired_bootstrap_equals_resampling_rows_one_by_one():
    y, good, worse, rois = _paired_data(n=40)
    n_boot = 25
    got = paired_difference(y, good, worse, rois=rois, n_boot=n_boot, random_state=7,
                            confidence=0.5)
    W = check_random_state(7).multinomial(40, np.full(40, 1 / 40), size=n_boot)
    boots = []
    for counts in W:
        rows = np.repeat(np.arange(40), counts)
        d = pearson_r(y[rows], good[rows]) - pearson_r(y[rows], worse[rows])
        boots.append(d[4:].mean())
    np.testing.assert_allclose(got["last"][1:], np.percentile(boots, [25, 75]), rtol=1e-9)


def test_paired_difference_with_noise_ceiling():
    y, good, worse, rois = _paired_data()
    nc = np.r_[0.0, np.full(7, 60.0)]
    diff = paired_difference(y, good, worse, rois=rois, noise_ceiling=nc, n_boot=100,
                             random_state=0)
    d = algonauts_score_voxels(y, good, nc) - algonauts_score_voxels(y, worse, nc)
    assert diff["first"][0] == pytest.approx(np.nanmean(d[:4]))  # zero-ceiling voxel left out
    assert diff["first"][1] > 0


@pytest.mark.parametrize("kwargs, match", [
    (dict(pred_b=np.zeros((150, 7))), r"pred_b \(voxels\) has 7"),
    (dict(pred_a=np.zeros((149, 8))), r"pred_a has 149 samples"),
    (dict(rois={"v1": [0, 99]}), r"rois\['v1'\] has voxel indices outside"),
    (dict(rois={}), r"rois must be a non-empty mapping"),
    (dict(rois={"v1": [0.5]}), r"rois\['v1'\] must be a 1-D array of voxel indices"),
    (dict(noise_ceiling=[50.0] * 3), r"noise_ceiling has 3 samples"),
    (dict(n_boot=0), r"n_boot must be an integer >= 1"),
    (dict(confidence=95), r"confidence must be a float in \(0, 1\)"),
])
def test_paired_difference_bad_input(kwargs, match):
    y, good, worse, rois = _paired_data()
    args = dict(y_true=y, pred_a=good, pred_b=worse, rois=rois, n_boot=10)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        paired_difference(**args)
