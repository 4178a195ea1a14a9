"""skvem.plotting: the figures draw what they are given, and say what is wrong."""

import sys
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.container import BarContainer, ErrorbarContainer
from scipy import stats

from skvem.datasets import load_algonauts2023
from skvem.plotting import (mean_confidence_interval, plot_learning_curve, plot_roi_scores,
                            plot_surface_scores, to_fsaverage5)
from skvem.plotting.surface import FSAVERAGE5_N, FSAVERAGE_N
from skvem.testing import datasets as fake


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_confidence_interval_is_the_t_interval():
    values = np.array([3.0, 5.0, 4.5, 6.0, 2.5])
    mean, half = mean_confidence_interval(values, 0.9)
    low, high = stats.t.interval(0.9, values.size - 1, loc=values.mean(), scale=stats.sem(values))
    assert mean == pytest.approx(values.mean())
    assert (mean - half, mean + half) == pytest.approx((low, high))
    assert np.isnan(mean_confidence_interval([1.0])[1])
    for bad in (0, 1, 1.5, "0.95", True):
        with pytest.raises(ValueError, match="confidence"):
            mean_confidence_interval(values, bad)
    with pytest.raises(ValueError, match="NaN"):
        mean_confidence_interval([1.0, np.nan])


def _scores():
    rng = np.random.default_rng(0)
    rois = ["V1", "V2", "FFA", "PPA"]
    scores = {m: {r: rng.normal(20 + 5 * k, 3, size=5) for r in rois}
              for k, m in enumerate(["frozen", "no language", "aligned"])}
    return scores, rois


def test_roi_bars_heights_and_error_bars():
    scores, rois = _scores()
    fig = plot_roi_scores(scores, ylabel="score (%)")
    ax = fig.axes[0]
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert [c.get_label() for c in bars] == list(scores)
    assert len(ax.patches) == 3 * 4
    for container, per_roi in zip(bars, scores.values()):
        heights = [p.get_height() for p in container.patches]
        np.testing.assert_allclose(heights, [per_roi[r].mean() for r in rois])
        # Each bar's error bar spans the t-interval.
        segments = container.errorbar.lines[2][0].get_segments()
        assert len(segments) == 4
        for seg, roi in zip(segments, rois):
            mean, half = mean_confidence_interval(per_roi[roi])
            np.testing.assert_allclose(sorted(seg[:, 1]), [mean - half, mean + half])
    assert [t.get_text() for t in ax.get_xticklabels()] == rois
    assert ax.get_legend() is not None


def test_roi_subset_missing_rois_and_single_values():
    scores = {"a": {"V1": [1.0, 2.0], "FFA": [3.0]}, "b": {"V1": [2.0, 2.5]}}
    fig = plot_roi_scores(scores, rois=["FFA", "V1"])
    ax = fig.axes[0]
    a, b = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert a.patches[0].get_height() == 3.0 and np.isnan(b.patches[0].get_height())
    # One value: no spread, no error bar.
    segs = a.errorbar.lines[2][0].get_segments()
    assert sum(s.size > 0 for s in segs) == 1
    # NaN values (voxels left out) are dropped, not averaged.
    fig = plot_roi_scores({"a": {"V1": [1.0, np.nan, 3.0]}})
    assert fig.axes[0].patches[0].get_height() == 2.0
    with pytest.raises(ValueError, match="unknown ROIs \\['LOC'\\]"):
        plot_roi_scores(scores, rois=["LOC"])


@pytest.mark.parametrize("bad, match", [
    ([1, 2], "scores must be a non-empty dict"),
    ({}, "scores must be a non-empty dict"),
    ({"a": [1, 2]}, "scores\\['a'\\] must be a non-empty dict"),
    ({"a": {"V1": [1.0, np.inf]}}, "scores\\['a'\\]\\['V1'\\] holds infinite"),
    ({"a": {"V1": [np.nan]}}, "scores\\['a'\\]\\['V1'\\] must hold at least one value"),
    ({"a": {"V1": []}}, "scores\\['a'\\]\\['V1'\\]"),
    ({"a": {"V1": ["x"]}}, "scores\\['a'\\]\\['V1'\\]"),
])
def test_roi_bad_input_names_the_entry(bad, match):
    with pytest.raises(ValueError, match=match):
        plot_roi_scores(bad)


def test_roi_draws_into_given_axes():
    fig, ax = plt.subplots()
    assert plot_roi_scores({"a": {"V1": [1.0, 2.0]}}, ax=ax) is fig


def test_learning_curve_lines_and_bands():
    curves = {"aligned": {400: [0.3, 0.32, 0.31], 100: [0.1, 0.12, 0.09], 200: [0.2, 0.21, 0.19]},
              "no language": {100: [0.08], 200: [0.15], 400: [0.25]}}
    fig = plot_learning_curve(curves, logx=True, ylabel="mean r")
    ax = fig.axes[0]
    assert len(ax.lines) == 2
    x, y = ax.lines[0].get_data()
    np.testing.assert_array_equal(x, [100, 200, 400])
    np.testing.assert_allclose(y, [np.mean(curves["aligned"][n]) for n in (100, 200, 400)])
    # A band only where there is a spread to show: the single-value model has none.
    assert len(ax.collections) == 1
    assert ax.get_xscale() == "log"
    with pytest.raises(ValueError, match="training sizes \\[0\\]"):
        plot_learning_curve({"a": {0: [0.1]}})


def _fake_subject(tmp_path, fsaverage_size, n_voxels=(40, 30)):
    truth = fake.make_fake_algonauts(tmp_path, subject=1, n_train=4, n_test=2, n_voxels=n_voxels,
                                     rois=False, noise_ceiling=False, fsaverage_size=fsaverage_size)
    return truth, load_algonauts2023(tmp_path, 1, rois=False)


def test_fsaverage_masks_downsample_to_fsaverage5(tmp_path):
    truth, data = _fake_subject(tmp_path, FSAVERAGE_N, n_voxels=(400, 300))
    assert data.fsaverage_n_vertices == {"lh": FSAVERAGE_N, "rh": FSAVERAGE_N}
    values = np.arange(700, dtype=float)
    tex = to_fsaverage5(values, data)
    for hemi, side, cols in (("lh", "left", slice(0, 400)), ("rh", "right", slice(400, 700))):
        vertices = truth["fsaverage"][hemi]
        keep = vertices < FSAVERAGE5_N
        assert keep.any() and not keep.all()
        assert tex[side].shape == (FSAVERAGE5_N,)
        np.testing.assert_array_equal(tex[side][vertices[keep]], values[cols][keep])
        assert np.isfinite(tex[side]).sum() == keep.sum()


def test_fsaverage5_masks_keep_every_vertex(tmp_path):
    truth, data = _fake_subject(tmp_path, FSAVERAGE5_N)
    values = np.linspace(-1, 1, 70)
    values[3] = np.nan
    tex = to_fsaverage5(values, data)
    assert np.isfinite(tex["left"]).sum() == 39 and np.isfinite(tex["right"]).sum() == 30
    np.testing.assert_array_equal(tex["right"][truth["fsaverage"]["rh"]], values[40:])


def test_surface_bad_input(tmp_path):
    _, data = _fake_subject(tmp_path / "a", None)  # the default fake: 50-vertex masks
    with pytest.raises(ValueError, match="has 50 entries; expected 163842"):
        to_fsaverage5(np.zeros(70), data)
    _, data = _fake_subject(tmp_path / "b", FSAVERAGE5_N)
    with pytest.raises(ValueError, match="one number per vertex of data \\(70"):
        to_fsaverage5(np.zeros(69), data)
    with pytest.raises(ValueError, match="values contains 1 infinite"):
        to_fsaverage5(np.r_[np.inf, np.zeros(69)], data)
    data.fsaverage_vertices = None
    with pytest.raises(ValueError, match="all-vertices_fsaverage_space"):
        to_fsaverage5(np.zeros(70), data)
    with pytest.raises(ValueError, match="load_algonauts2023"):
        to_fsaverage5(np.zeros(70), [1, 2])


def test_fsaverage5_starts_with_the_coarser_icosahedra():
    """The nesting the downsampling relies on, checked on nilearn's bundled mesh.

    Subdividing a triangle mesh puts one new vertex on every old edge. When the
    old vertices are numbered first (as in FreeSurfer's ico meshes), every
    vertex past the old ones has exactly two neighbours among them, at whose
    midpoint it lies on the sphere, and those pairs are the old mesh's edges.
    Undone level by level, fsaverage5 must come back to the icosahedron;
    fsaverage -> fsaverage5 is the same numbering two levels further.
    """
    from nilearn.datasets import load_fsaverage

    sphere = load_fsaverage("fsaverage5").sphere.parts["left"]
    xyz = sphere.coordinates / np.linalg.norm(sphere.coordinates, axis=1, keepdims=True)
    faces = np.asarray(sphere.faces)
    edges = np.unique(np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]],
                                              faces[:, [2, 0]]]), axis=1), axis=0)
    n = FSAVERAGE5_N
    while n > 12:
        n_old = (n + 6) // 4
        assert not np.any(edges[:, 1] < n_old)  # old vertices are never adjacent now
        to_old = edges[(edges[:, 0] < n_old) & (edges[:, 1] >= n_old)]
        np.testing.assert_array_equal(np.bincount(to_old[:, 1] - n_old), np.full(n - n_old, 2))
        parents = to_old[np.argsort(to_old[:, 1], kind="stable"), 0].reshape(-1, 2)
        midpoints = xyz[parents[:, 0]] + xyz[parents[:, 1]]
        midpoints /= np.linalg.norm(midpoints, axis=1, keepdims=True)
        assert np.all(np.einsum("ij,ij->i", midpoints, xyz[n_old:n]) > np.cos(np.radians(0.5)))
        edges = np.unique(np.sort(parents, axis=1), axis=0)
        assert len(edges) == 3 * n_old - 6  # a triangulated sphere's edge count
        n = n_old
    assert n == 12 and len(edges) == 30  # the icosahedron


def test_surface_figure_has_both_hemispheres_and_views(tmp_path):
    _, data = _fake_subject(tmp_path, FSAVERAGE5_N)
    fig = plot_surface_scores(np.linspace(0, 1, 70), data, views=("lateral", "ventral"),
                              title="subject 1", colorbar_label="r")
    three_d = [ax for ax in fig.axes if ax.name == "3d"]
    assert len(three_d) == 4 and len(fig.axes) == 5
    assert [ax.get_title() for ax in three_d] == [
        "left lateral", "right lateral", "left ventral", "right ventral"]
    for ax in three_d:
        (mesh,) = ax.collections
        assert len(mesh.get_facecolors()) == 2 * FSAVERAGE5_N - 4  # the mesh's 20480 faces
    assert fig.axes[-1].get_ylabel() == "r"
    assert fig._suptitle.get_text() == "subject 1"


def test_surface_empty_map_warns_and_missing_nilearn_names_extra(tmp_path, monkeypatch):
    _, data = _fake_subject(tmp_path, FSAVERAGE5_N)
    with pytest.warns(UserWarning, match="map is empty"):
        plot_surface_scores(np.full(70, np.nan), data, views="lateral")
    monkeypatch.setitem(sys.modules, "nilearn", None)
    with pytest.raises(ImportError, match="skvem\\[plotting\\]"):
        plot_surface_scores(np.zeros(70), data)
