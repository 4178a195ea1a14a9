"""Tests of skvem.metrics."""

import warnings

import numpy as np
import pytest
from scipy import stats
from sklearn.linear_model import Ridge
from sklearn.model_selection import cross_val_score

import skvem._utils.blocks as blocks
from skvem.metrics import (
    algonauts_score,
    algonauts_score_voxels,
    correlation_scorer,
    noise_ceiling,
    pearson_r,
)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# ----------------------------------------------------------------- pearson_r
def test_pearson_r_matches_scipy(rng):
    y = rng.standard_normal((50, 7))
    p = y + rng.standard_normal((50, 7))
    r = pearson_r(y, p)
    expected = [stats.pearsonr(y[:, j], p[:, j])[0] for j in range(7)]
    assert r.shape == (7,)
    np.testing.assert_allclose(r, expected, rtol=1e-12)


def test_pearson_r_float32_with_large_offset(rng):
    # fMRI betas can sit on a large baseline; float32 inputs are computed in
    # float64 so the offset does not eat the precision.
    y = rng.standard_normal((200, 3))
    p = y + 0.5 * rng.standard_normal((200, 3))
    r64 = pearson_r(y, p)
    r32 = pearson_r((y + 1e4).astype(np.float32), (p - 1e4).astype(np.float32))
    np.testing.assert_allclose(r32, r64, atol=2e-3)


def test_pearson_r_1d_returns_float():
    r = pearson_r([1.0, 2.0, 4.0], [2.0, 4.0, 8.0])
    assert isinstance(r, float)
    assert r == pytest.approx(1.0)


def test_pearson_r_constant_columns_give_zero_without_warning(rng):
    y = rng.standard_normal((10, 3))
    y[:, 1] = 5.0
    p = rng.standard_normal((10, 3))
    p[:, 2] = -1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = pearson_r(y, p)
    assert r[1] == 0.0 and r[2] == 0.0
    assert np.all(np.isfinite(r))


@pytest.mark.parametrize("n", [159, 7, 1000])
def test_pearson_r_constant_float64_columns_score_zero(n):
    # Issue 9: the mean of identical float64 values is not always that value,
    # so a `den > 0` test passed on rounding residue and scored +/-1.
    values = np.round(np.linspace(0.01, 0.99, 99), 2)
    y = np.repeat(values[None, :], n, axis=0)
    p = np.repeat(values[::-1][None, :], n, axis=0)
    np.testing.assert_array_equal(pearson_r(y, p), 0.0)
    scores = algonauts_score_voxels(y, p, noise_ceiling=np.full(99, 50.0))
    np.testing.assert_array_equal(scores, 0.0)


@pytest.mark.parametrize("scale", [1e200, 1e-200, 1e150, 1e-150])
def test_pearson_r_extreme_magnitudes(scale):
    # Issue 13 item 4: products of data around 1e200 overflow and around
    # 1e-200 underflow unless the columns are scaled first.
    y = np.array([1.0, 2.0, 3.0, 5.0]) * scale
    assert pearson_r(y, y) == pytest.approx(1.0)
    assert pearson_r(y, -y) == pytest.approx(-1.0)
    assert pearson_r(y, y + 1e6 * scale) == pytest.approx(1.0)


def test_pearson_r_is_clipped_to_unit_interval(rng):
    y = rng.standard_normal((30, 4)) * 1e-3 + 7.0
    r = pearson_r(y, y)
    assert np.all(r <= 1.0) and np.all(r >= 0.999999)


def test_pearson_r_blocks_give_the_same_result(rng, monkeypatch):
    y = rng.standard_normal((20, 11))
    p = rng.standard_normal((20, 11))
    whole = pearson_r(y, p)
    monkeypatch.setattr(blocks, "BLOCK_ELEMENTS", 20 * 3)  # blocks of 3 voxels
    np.testing.assert_array_equal(pearson_r(y, p), whole)


@pytest.mark.parametrize(
    "y_true, y_pred, match",
    [
        (np.ones((5, 2)), np.ones((5, 3)), "same number of voxels"),
        (np.ones((5, 2)), np.ones((4, 2)), "y_pred has 4 samples"),
        (np.ones((1, 2)), np.ones((1, 2)), "at least 2 samples"),
        (np.array([1.0, np.nan, 2.0]), np.ones(3), "y_true contains 1 NaN"),
        (np.ones(3), np.array([1.0, np.inf, 2.0]), "y_pred contains"),
        (np.ones((3, 2, 2)), np.ones((3, 2, 2)), "3-D"),
    ],
)
def test_pearson_r_errors(y_true, y_pred, match):
    with pytest.raises(ValueError, match=match):
        pearson_r(y_true, y_pred)


# ------------------------------------------------------------- noise_ceiling
def _nc_by_hand(trials, inv_n):
    """Direct transcription of the NSD formula for complete data."""
    noise_var = trials.var(axis=1, ddof=1).mean(axis=0)
    flat = trials.reshape(-1, trials.shape[-1])
    total_var = flat.var(axis=0, ddof=1)
    signal_var = np.clip(total_var - noise_var, 0, None)
    ncsnr2 = signal_var / noise_var
    return 100 * ncsnr2 / (ncsnr2 + inv_n)


def test_noise_ceiling_matches_formula(rng):
    trials = rng.standard_normal((30, 3, 6)) + rng.standard_normal((30, 1, 6)) * 2
    np.testing.assert_allclose(noise_ceiling(trials), _nc_by_hand(trials, 1 / 3), rtol=1e-12)


def test_noise_ceiling_recovers_simulated_snr(rng):
    n_images, n_rep = 4000, 3
    signal_sd = np.array([0.0, 0.5, 1.0, 2.0])
    signal = rng.standard_normal((n_images, 1, 4)) * signal_sd
    trials = signal + rng.standard_normal((n_images, n_rep, 4))
    expected = 100 * signal_sd**2 / (signal_sd**2 + 1 / n_rep)
    nc = noise_ceiling(trials)
    assert np.all((nc >= 0) & (nc <= 100))
    np.testing.assert_allclose(nc, expected, atol=2.5)


def test_noise_ceiling_n_repeats_int_and_nsd_mixture(rng):
    trials = rng.standard_normal((40, 3, 5)) + rng.standard_normal((40, 1, 5))
    np.testing.assert_allclose(noise_ceiling(trials, n_repeats=1), _nc_by_hand(trials, 1.0))
    # NSD: A images with 3 trials, B with 2, C with 1 -> (A/3 + B/2 + C/1) / (A + B + C)
    counts = [3] * 6 + [2] * 3 + [1] * 1
    inv_n = (6 / 3 + 3 / 2 + 1 / 1) / 10
    np.testing.assert_allclose(noise_ceiling(trials, n_repeats=counts), _nc_by_hand(trials, inv_n))
    # more repeats averaged -> higher ceiling
    assert np.all(noise_ceiling(trials, n_repeats=1) <= noise_ceiling(trials, n_repeats=3))


def test_noise_ceiling_nan_padding(rng):
    signal = rng.standard_normal((50, 1, 4))
    trials = signal + 0.7 * rng.standard_normal((50, 3, 4))
    padded = trials.copy()
    padded[:10, 2] = np.nan  # 10 images with 2 repeats
    padded[10:15, 1:] = np.nan  # 5 images with 1 repeat
    nc = noise_ceiling(padded)

    # by hand: pooled within-image variance over images with >= 2 repeats
    ss, df = 0.0, 0
    for img in padded:
        ok = img[~np.isnan(img[:, 0])]
        ss = ss + ((ok - ok.mean(0)) ** 2).sum(0)
        df += len(ok) - 1
    noise_var = ss / df
    flat = padded.reshape(-1, 4)
    total_var = np.nanvar(flat, axis=0, ddof=1)
    ncsnr2 = np.clip(total_var - noise_var, 0, None) / noise_var
    inv_n = (10 / 2 + 5 / 1 + 35 / 3) / 50
    np.testing.assert_allclose(nc, 100 * ncsnr2 / (ncsnr2 + inv_n), rtol=1e-12)

    # an explicit count overrides the padding pattern for the 1/n term
    nc3 = noise_ceiling(padded, n_repeats=3)
    np.testing.assert_allclose(nc3, 100 * ncsnr2 / (ncsnr2 + 1 / 3), rtol=1e-12)


def _nsd_recipe(betas, n_trials):
    """GLMsingle example 9 / Allen et al. (2022), transcribed: images with all
    repeats only; noise sd = sqrt(mean over images of the across-trial
    variance); total variance of those trials; NC = 100 ncsnr^2 / (ncsnr^2 + 1/n)."""
    keep = ~np.isnan(betas).any(axis=(1, 2))  # images with all repeats
    betas2 = betas[keep]  # (images, repeats, voxels)
    noisesd = np.sqrt(np.mean(np.std(betas2, axis=1, ddof=1) ** 2, axis=0))
    totalvar = np.std(betas2.reshape(-1, betas2.shape[-1]), axis=0, ddof=1) ** 2
    signalvar = np.clip(totalvar - noisesd**2, 0, None)
    ncsnr = np.sqrt(signalvar) / noisesd
    return 100 * (ncsnr**2 / (ncsnr**2 + 1 / n_trials))


def test_noise_ceiling_nsd_method_is_the_published_recipe(rng):
    signal = rng.standard_normal((80, 1, 5)) * np.array([0.2, 0.5, 1.0, 2.0, 0.0])
    trials = signal + rng.standard_normal((80, 3, 5))
    padded = trials.copy()
    padded[:20, 2] = np.nan  # 20 images seen twice
    padded[20:30, 1:] = np.nan  # 10 images seen once
    nsd = noise_ceiling(padded, n_repeats=3, method="nsd")
    np.testing.assert_allclose(nsd, _nsd_recipe(padded, 3), rtol=1e-12)
    # the pooled default uses the partial images too, so it differs here ...
    pooled = noise_ceiling(padded, n_repeats=3)
    assert not np.allclose(pooled, nsd)
    # ... and both are the same estimator when every image has every repeat
    np.testing.assert_allclose(noise_ceiling(trials, method="nsd"), noise_ceiling(trials),
                               rtol=1e-12)
    np.testing.assert_allclose(noise_ceiling(trials, method="nsd"), _nsd_recipe(trials, 3),
                               rtol=1e-12)


def test_noise_ceiling_nsd_method_errors(rng):
    trials = rng.standard_normal((6, 3, 2))
    trials[:, 2, 1] = np.nan  # voxel 1 never has all 3 repeats
    with pytest.raises(ValueError, match="Voxel 1 has no image with all 3 repeats"):
        noise_ceiling(trials, method="nsd")
    with pytest.raises(ValueError, match="method must be one of"):
        noise_ceiling(trials, method="glmsingle")


def test_noise_ceiling_edge_voxels_and_single_voxel(rng):
    signal = rng.standard_normal((20, 1))
    trials = np.concatenate(
        [
            np.repeat(signal, 3, axis=1)[:, :, None],  # no noise -> 100
            np.full((20, 3, 1), 4.0),  # constant -> 0
        ],
        axis=2,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nc = noise_ceiling(trials)
    np.testing.assert_array_equal(nc, [100.0, 0.0])
    one = noise_ceiling(trials[:, :, 0])
    assert isinstance(one, float) and one == 100.0


def test_noise_ceiling_blocks_give_the_same_result(rng, monkeypatch):
    trials = rng.standard_normal((10, 3, 9)) + rng.standard_normal((10, 1, 9))
    whole = noise_ceiling(trials)
    monkeypatch.setattr(blocks, "BLOCK_ELEMENTS", 30 * 2)
    np.testing.assert_allclose(noise_ceiling(trials), whole, rtol=1e-14)


@pytest.mark.parametrize(
    "repeats, kwargs, match",
    [
        (np.ones((5, 3)).ravel(), {}, "n_images, n_repeats, n_voxels"),
        (np.ones((1, 3, 2)), {}, "at least 2 images"),
        (np.ones((5, 1, 2)), {}, "at least 2 repeats"),
        (np.ones((5, 3, 0)), {}, "0 voxels"),
        (np.full((5, 3, 2), np.inf), {}, "infinite"),
        (np.where(np.arange(3)[None, :, None] > 0, np.nan, 1.0) * np.ones((5, 3, 2)), {},
         "Voxel 0 has no image with at least 2"),
        (np.ones((5, 3, 2)), {"n_repeats": 0}, "positive integer"),
        (np.ones((5, 3, 2)), {"n_repeats": 2.5}, "positive integer"),
        (np.ones((5, 3, 2)), {"n_repeats": [3, 0]}, "positive integers"),
        (np.ones((5, 3, 2)), {"n_repeats": [[3]]}, "1-D array"),
        (None, {}, "repeats is None"),
    ],
)
def test_noise_ceiling_errors(repeats, kwargs, match):
    with pytest.raises(ValueError, match=match):
        noise_ceiling(repeats, **kwargs)


# ----------------------------------------------------------- algonauts score
def test_algonauts_score_voxels_rule(rng):
    y = rng.standard_normal((100, 4))
    pred = np.column_stack([
        y[:, 0],  # r = 1
        y[:, 1] + rng.standard_normal(100),  # 0 < r < 1
        -y[:, 2],  # r = -1 -> 0
        y[:, 3] + 3 * rng.standard_normal(100),
    ])
    nc = np.array([50.0, 80.0, 60.0, 5.0])
    r = pearson_r(y, pred)
    expected = np.minimum(100, 100 * np.clip(r, 0, None) ** 2 / (nc / 100))
    scores = algonauts_score_voxels(y, pred, nc)
    np.testing.assert_allclose(scores, expected)
    assert scores[0] == 100.0 and scores[2] == 0.0
    assert algonauts_score(y, pred, nc) == pytest.approx(expected.mean())


def test_algonauts_zero_ceiling(rng):
    y = rng.standard_normal((50, 3))
    pred = np.column_stack([y[:, 0] + rng.standard_normal(50), y[:, 1], -y[:, 2]])
    nc = [40.0, 0.0, 0.0]
    excluded = algonauts_score_voxels(y, pred, nc)
    assert np.isnan(excluded[1]) and np.isnan(excluded[2])
    assert algonauts_score(y, pred, nc) == pytest.approx(excluded[0])
    devkit = algonauts_score_voxels(y, pred, nc, zero_ceiling="devkit")
    np.testing.assert_allclose(devkit[1:], [100.0, 0.0])
    assert algonauts_score(y, pred, nc, zero_ceiling="devkit") == pytest.approx(devkit.mean())
    with pytest.raises(ValueError, match="Every voxel has a noise ceiling of 0"):
        algonauts_score(y, pred, [0.0, 0.0, 0.0])


def test_algonauts_single_voxel(rng):
    y = rng.standard_normal(30)
    assert algonauts_score(y, y, 25.0) == 100.0
    assert algonauts_score_voxels(y, y, [25.0]).shape == (1,)


def test_algonauts_warns_on_fractions(rng):
    y = rng.standard_normal((20, 3))
    with pytest.warns(UserWarning, match="multiply them by 100"):
        algonauts_score(y, y, [0.3, 0.5, 0.2])


@pytest.mark.parametrize("nc", [[0.4], [0.0, 0.0, 0.6], [0.9] + [0.0] * 9])
def test_algonauts_warns_on_fractions_whatever_the_voxel_count(nc, rng):
    # Issue 13 item 5a: one voxel (or one non-zero ceiling) given as a
    # fraction scored 100 without a warning.
    y = rng.standard_normal((20, len(nc)))
    with pytest.warns(UserWarning, match="multiply them by 100"):
        algonauts_score(y, y, nc, zero_ceiling="devkit")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        algonauts_score(y, y, np.asarray(nc) * 100, zero_ceiling="devkit")
        algonauts_score(y, y, np.zeros(len(nc)), zero_ceiling="devkit")


def test_algonauts_score_takes_a_float_ceiling(rng):
    # Issue 13 item 11: documented "or float", but refused with a message about rows.
    y = rng.standard_normal((30, 4))
    p = y + rng.standard_normal((30, 4))
    expected = algonauts_score(y, p, np.full(4, 50.0))
    assert algonauts_score(y, p, 50.0) == expected
    assert algonauts_score(y, p, np.float32(50.0)) == pytest.approx(expected)
    np.testing.assert_array_equal(algonauts_score_voxels(y, p, 50.0),
                                  algonauts_score_voxels(y, p, [50.0] * 4))


def test_masked_arrays_are_rejected_or_honoured(rng):
    # Issue 13 item 3: masks were ignored (numpy reads the values under them).
    y = np.ma.masked_array(np.arange(6.0), mask=[0, 0, 0, 0, 0, 1])
    y.data[5] = -100.0  # a masked outlier
    with pytest.raises(ValueError, match="y_true is a masked array with 1 masked"):
        pearson_r(y, np.arange(6.0))
    with pytest.raises(ValueError, match="y_pred is a masked array"):
        pearson_r(np.arange(6.0), y)
    with pytest.raises(ValueError, match="noise_ceiling is a masked array"):
        algonauts_score(np.arange(6.0), np.arange(6.0), np.ma.masked_array([50.0], mask=[1]))
    # nothing masked: the data themselves
    assert pearson_r(np.ma.masked_array(np.arange(6.0)), np.arange(6.0)) == pytest.approx(1.0)
    # repeats: a masked repeat is a missing repeat, as NaN is
    trials = rng.standard_normal((30, 3, 2)) + rng.standard_normal((30, 1, 2))
    nan_padded = trials.copy()
    nan_padded[:5, 2] = np.nan
    masked = np.ma.masked_array(trials, mask=np.isnan(nan_padded))
    masked.data[:5, 2] = 1e6  # must not count
    np.testing.assert_array_equal(noise_ceiling(masked), noise_ceiling(nan_padded))


@pytest.mark.parametrize(
    "nc, kwargs, match",
    [
        ([50.0, 120.0], {}, "between 0 and 100"),
        ([50.0, -1.0], {}, "between 0 and 100"),
        ([50.0, np.nan], {}, "noise_ceiling contains 1 NaN"),
        ([50.0], {}, "noise_ceiling has 1 samples"),
        ([50.0, 50.0], {"zero_ceiling": "ignore"}, "zero_ceiling must be one of"),
    ],
)
def test_algonauts_errors(nc, kwargs, match, rng):
    y = rng.standard_normal((10, 2))
    with pytest.raises(ValueError, match=match):
        algonauts_score_voxels(y, y, nc, **kwargs)


# ------------------------------------------------------------------- scorer
def test_correlation_scorer_in_cross_val_score(rng):
    X = rng.standard_normal((60, 5))
    Y = X @ rng.standard_normal((5, 4)) + rng.standard_normal((60, 4))
    scores = cross_val_score(Ridge(), X, Y, cv=3, scoring=correlation_scorer)
    assert scores.shape == (3,)
    model = Ridge().fit(X[20:], Y[20:])
    direct = correlation_scorer(model, X[:20], Y[:20])
    assert direct == pytest.approx(np.mean(pearson_r(Y[:20], model.predict(X[:20]))))
    assert direct > 0.5  # greater is better: the sign is not flipped


def test_correlation_scorer_single_output(rng):
    X = rng.standard_normal((40, 3))
    y = X[:, 0] + 0.1 * rng.standard_normal(40)
    model = Ridge().fit(X, y)
    assert correlation_scorer(model, X, y) == pytest.approx(pearson_r(y, model.predict(X)))
