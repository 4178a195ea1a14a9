"""Tests of skvem.encoding.ridge.VoxelRidgeCV and its solver."""

import pickle

import himalaya.backend
import numpy as np
import pytest
from himalaya.ridge import RidgeCV as HimalayaRidgeCV
from sklearn.base import clone
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV, GroupKFold, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from skvem.encoding import _backends
from skvem.encoding._ridge_solver import resolve_backend, solve_ridge_cv
from skvem.metrics import pearson_r
from skvem.encoding.ridge import DEFAULT_ALPHAS, VoxelRidgeCV


def _cuda_available():
    import torch

    return torch.cuda.is_available()


BACKENDS = [
    "numpy",
    "torch",
    pytest.param(
        "torch_cuda",
        marks=pytest.mark.skipif(not _cuda_available(), reason="no CUDA device"),
    ),
]
ALPHAS = np.logspace(-2, 6, 9)


def _data(n_samples=120, n_features=12, n_voxels=40, seed=0, offset=0.0):
    """Voxels with varied signal-to-noise, including pure-noise voxels."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features)) + offset
    W = rng.standard_normal((n_features, n_voxels))
    snr = np.linspace(0.0, 2.0, n_voxels)
    Y = (X - offset) @ W * snr / np.sqrt(n_features) + rng.standard_normal((n_samples, n_voxels))
    return X.astype(np.float32), (Y + 3.0).astype(np.float32)


def _ridge_float64(X, y, alpha, fit_intercept=True):
    """Closed-form ridge in float64, the reference for the refit weights."""
    X = X.astype(np.float64)
    y = y.astype(np.float64)
    x_mean = X.mean(0) if fit_intercept else np.zeros(X.shape[1])
    y_mean = y.mean(0) if fit_intercept else 0.0
    Xc = X - x_mean
    coef = np.linalg.solve(Xc.T @ Xc + alpha * np.eye(X.shape[1]), Xc.T @ (y - y_mean))
    return coef, y_mean - x_mean @ coef


def _cv_scores_float64(X, Y, alphas, cv, fit_intercept=True):
    """Mean over folds of the negative validation MSE, per alpha and voxel."""
    scores = []
    for train, test in cv.split(X):
        per_alpha = []
        for alpha in alphas:
            coef, intercept = _ridge_float64(X[train], Y[train], alpha, fit_intercept)
            pred = X[test].astype(np.float64) @ coef + intercept
            per_alpha.append(-((pred - Y[test]) ** 2).mean(0))
        scores.append(per_alpha)
    return np.mean(scores, axis=0)  # (n_alphas, n_voxels)


# ------------------------------------------------------- scikit-learn checks
def _expected_failed_checks(estimator):
    return {
        # DESIGN.md: predict returns float32 (whole-brain predictions are
        # large and the model is fitted in float32); this check demands float64.
        "check_regressor_multioutput": "predict returns float32 by design",
        # float32 matrix products round differently (last bit, ~1e-7
        # relative) when BLAS blocks the rows differently; the checks
        # compare with rtol=1e-7.
        "check_methods_sample_order_invariance": "float32 predictions differ in the last bit",
        "check_methods_subset_invariance": "float32 predictions differ in the last bit",
    }


@parametrize_with_checks(
    [VoxelRidgeCV(backend="numpy"), VoxelRidgeCV(backend="torch")],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


# ------------------------------------------------------ agreement with refs
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("solver", ["primal", "kernel"])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_same_alphas_and_weights_as_himalaya(backend, solver, fit_intercept):
    X, Y = _data(offset=2.0)
    ours = VoxelRidgeCV(alphas=ALPHAS, cv=5, fit_intercept=fit_intercept,
                        backend=backend, solver=solver).fit(X, Y)
    himalaya.backend.set_backend("numpy")
    ref = HimalayaRidgeCV(alphas=ALPHAS, cv=5, fit_intercept=fit_intercept).fit(X, Y)
    assert ours.solver_ == solver
    # Both round differently in float32, so a voxel whose two best alphas
    # score within rounding may differ (on some BLAS); 39 of 40 must agree.
    same = np.isclose(ours.best_alphas_, ref.best_alphas_, rtol=1e-5)
    assert same.mean() >= 0.97
    np.testing.assert_allclose(ours.cv_scores_, ref.cv_scores_, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(ours.coef_[:, same], ref.coef_[:, same], rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(ours.predict(X)[:, same], ref.predict(X)[:, same],
                               rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("solver", ["primal", "kernel"])
def test_cv_selection_and_refit_match_float64_reference(solver):
    X, Y = _data(n_samples=90, n_features=8, n_voxels=12, seed=1, offset=1.0)
    alphas = np.logspace(-1, 4, 6)
    model = VoxelRidgeCV(alphas=alphas, cv=KFold(4), solver=solver, backend="numpy").fit(X, Y)

    ref = _cv_scores_float64(X, Y, alphas, KFold(4))
    best = ref.argmax(0)
    top2 = np.sort(ref, axis=0)[-2:]
    clear = (top2[1] - top2[0]) > 1e-5 * np.abs(top2[1])  # not a near-tie
    assert clear.sum() >= 10
    np.testing.assert_array_equal(model.best_alphas_[clear], alphas[best][clear])
    np.testing.assert_allclose(model.cv_scores_, ref[best, np.arange(12)], rtol=1e-4)
    for j in range(Y.shape[1]):
        coef, intercept = _ridge_float64(X, Y[:, j], model.best_alphas_[j])
        np.testing.assert_allclose(model.coef_[:, j], coef, rtol=1e-3, atol=1e-5)
        assert model.intercept_[j] == pytest.approx(intercept, rel=1e-4)


@pytest.mark.parametrize("solver", ["primal", "kernel"])
def test_each_fold_is_centred_on_its_own_training_mean(solver):
    # Features and responses drift over a session, so fold means differ from
    # the global mean: each training fold must be centred on its own mean
    # (the kernel solver does it on the kernel).
    rng = np.random.default_rng(20)
    n, p = 60, (90 if solver == "kernel" else 6)
    drift = np.linspace(-3, 3, n)[:, None]
    X = rng.standard_normal((n, p)) + drift * rng.standard_normal(p)
    Y = X @ rng.standard_normal((p, 8)) * 0.3 + rng.standard_normal((n, 8)) + 2 * drift
    alphas = np.logspace(-1, 4, 6)
    model = VoxelRidgeCV(alphas=alphas, cv=KFold(5), solver=solver, backend="numpy").fit(X, Y)
    ref = _cv_scores_float64(X, Y, alphas, KFold(5))
    chosen = np.searchsorted(alphas, model.best_alphas_)
    np.testing.assert_allclose(model.cv_scores_, ref[chosen, np.arange(8)], rtol=1e-5)
    np.testing.assert_allclose(ref[chosen, np.arange(8)], ref.max(0), rtol=1e-5)


def test_large_baseline_does_not_change_the_model():
    X, Y = _data(seed=21)
    base = VoxelRidgeCV(backend="numpy").fit(X, Y)
    shifted = VoxelRidgeCV(backend="numpy").fit(X + 100, Y + 1e4)
    assert np.mean(base.best_alphas_ == shifted.best_alphas_) >= 0.97
    same = base.best_alphas_ == shifted.best_alphas_
    np.testing.assert_allclose(shifted.cv_scores_, base.cv_scores_, rtol=1e-3)
    np.testing.assert_allclose(shifted.coef_[:, same], base.coef_[:, same], atol=2e-3)
    np.testing.assert_allclose(shifted.predict(X + 100) - 1e4, base.predict(X), atol=2e-2)


def test_kernel_solver_for_more_features_than_samples():
    X, Y = _data(n_samples=40, n_features=100, n_voxels=10, seed=2)
    auto = VoxelRidgeCV(alphas=ALPHAS, backend="numpy").fit(X, Y)
    primal = VoxelRidgeCV(alphas=ALPHAS, backend="numpy", solver="primal").fit(X, Y)
    assert auto.solver_ == "kernel" and primal.solver_ == "primal"
    np.testing.assert_array_equal(auto.best_alphas_, primal.best_alphas_)
    np.testing.assert_allclose(auto.coef_, primal.coef_, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_backends_agree(backend):
    X, Y = _data(seed=3)
    ref = VoxelRidgeCV(backend="numpy").fit(X, Y)
    model = VoxelRidgeCV(backend=backend).fit(X, Y)
    assert model.backend_ == backend
    assert np.mean(model.best_alphas_ == ref.best_alphas_) >= 0.95
    pred = model.predict(X)
    assert isinstance(pred, np.ndarray) and pred.dtype == np.float32
    assert isinstance(model.coef_, np.ndarray) and model.coef_.dtype == np.float32
    same = model.best_alphas_ == ref.best_alphas_
    np.testing.assert_allclose(pred[:, same], ref.predict(X)[:, same], rtol=1e-3, atol=1e-3)


def test_batches_do_not_change_the_result():
    X, Y = _data(n_voxels=23, seed=4)
    whole = VoxelRidgeCV(backend="numpy").fit(X, Y)
    batched = VoxelRidgeCV(backend="numpy", n_targets_batch=5, n_alphas_batch=2).fit(X, Y)
    np.testing.assert_array_equal(batched.best_alphas_, whole.best_alphas_)
    np.testing.assert_allclose(batched.coef_, whole.coef_, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(batched.cv_scores_, whole.cv_scores_, rtol=1e-5)


def test_solver_refit_false_and_list_of_splits():
    X, Y = _data(seed=5)
    splits = list(GroupKFold(4).split(X, Y, groups=np.repeat(np.arange(8), 15)))
    res = solve_ridge_cv(X, Y, ALPHAS, cv=splits, refit=False)
    assert res.coef is None and res.intercept is None
    full = VoxelRidgeCV(cv=splits, backend="numpy").fit(X, Y)
    np.testing.assert_array_equal(res.best_alphas, full.best_alphas_)


# --------------------------------------------------------------- behaviour
def test_strong_and_noise_voxels_get_sensible_alphas():
    X, Y = _data(n_samples=200, n_voxels=40, seed=6)
    model = VoxelRidgeCV(backend="numpy").fit(X, Y)
    # pure noise (first voxel) -> heavy regularisation; strong signal -> light
    assert model.best_alphas_[0] >= 1e3
    assert model.best_alphas_[-1] <= 1e2
    r = model.score_voxels(X, Y)
    assert r[-1] > 0.8


def test_one_dimensional_y_is_one_voxel():
    X, Y = _data(seed=7)
    y = Y[:, -1]
    model = VoxelRidgeCV(backend="numpy").fit(X, y)
    assert model.coef_.shape == (X.shape[1],)
    assert isinstance(model.intercept_, float)
    assert model.best_alphas_.shape == (1,)
    pred = model.predict(X)
    assert pred.shape == (X.shape[0],) and pred.dtype == np.float32
    assert model.score_voxels(X, y).shape == (1,)
    two_d = VoxelRidgeCV(backend="numpy").fit(X, y[:, None])
    np.testing.assert_allclose(two_d.predict(X)[:, 0], pred, rtol=1e-6)


def test_score_is_mean_pearson_r_not_r2():
    X, Y = _data(seed=8)
    model = VoxelRidgeCV(backend="numpy").fit(X[:80], Y[:80])
    pred = model.predict(X[80:])
    expected = pearson_r(Y[80:], pred)
    np.testing.assert_allclose(model.score_voxels(X[80:], Y[80:]), expected, rtol=1e-12)
    score = model.score(X[80:], Y[80:])
    assert isinstance(score, float)
    assert score == pytest.approx(expected.mean())
    assert score != pytest.approx(r2_score(Y[80:], pred))


def test_constant_voxel_and_constant_features():
    X, Y = _data(seed=9)
    Y[:, 0] = 5.0
    model = VoxelRidgeCV(backend="numpy").fit(X, Y)
    np.testing.assert_array_equal(model.coef_[:, 0], 0.0)
    assert model.intercept_[0] == pytest.approx(5.0)
    assert model.best_alphas_[0] == ALPHAS.max()  # ties go to the largest alpha
    assert model.score_voxels(X, Y)[0] == 0.0

    flat = VoxelRidgeCV(backend="numpy").fit(np.ones_like(X), Y)
    np.testing.assert_allclose(flat.predict(X), np.broadcast_to(Y.mean(0), Y.shape), rtol=1e-5)


def test_inputs_are_not_modified_and_float64_is_accepted():
    X, Y = _data(seed=10)
    X64, Y64 = X.astype(np.float64), Y.astype(np.float64)
    X_copy, Y_copy = X64.copy(), Y64.copy()
    model = VoxelRidgeCV(backend="numpy").fit(X64, Y64)
    np.testing.assert_array_equal(X64, X_copy)
    np.testing.assert_array_equal(Y64, Y_copy)
    ref = VoxelRidgeCV(backend="numpy").fit(X, Y)
    np.testing.assert_array_equal(model.best_alphas_, ref.best_alphas_)


def test_auto_backend_and_global_backend_untouched():
    himalaya.backend.set_backend("numpy")
    X, Y = _data(seed=11)
    model = VoxelRidgeCV().fit(X, Y)
    # A problem this small takes numpy without a measurement.
    assert model.backend_ == ("torch_cuda" if _cuda_available() else "numpy")
    assert model.backend == "auto"  # the parameter is left as given
    VoxelRidgeCV(backend="torch").fit(X, Y)
    assert himalaya.backend.get_backend().name == "numpy"


@pytest.fixture
def fresh_auto(monkeypatch):
    """backend='auto' as in a new process: nothing measured, no override."""
    monkeypatch.setattr(_backends, "_measured", None)
    monkeypatch.setattr(_backends, "AUTO_CPU_BACKEND", None)
    monkeypatch.delenv(_backends.CPU_BACKEND_ENV, raising=False)
    monkeypatch.setattr(_backends, "_cuda_available", lambda: False)
    return monkeypatch


def test_auto_cpu_backend_is_measured_once_per_process(fresh_auto):
    calls = []

    def fake_measure():
        calls.append(1)
        return "torch", "measured (fake)"

    fresh_auto.setattr(_backends, "_measure", fake_measure)
    fresh_auto.setattr(_backends, "PROBE_SHAPE", (10, 2, 2))  # every fit is "large"
    X, Y = _data(seed=11)
    assert VoxelRidgeCV().fit(X, Y).backend_ == "torch"
    assert VoxelRidgeCV().fit(X, Y).backend_ == "torch"
    assert calls == [1]
    assert _backends.auto_cpu_backend() == ("torch", "measured (fake)")


def test_auto_cpu_backend_real_measurement_picks_the_faster(fresh_auto):
    fresh_auto.setattr(_backends, "PROBE_SHAPE", (120, 16, 64))
    fresh_auto.setattr(_backends, "_PROBE_REPEATS", 1)
    name, reason = _backends.auto_cpu_backend()
    times = dict(part.rsplit(" ", 2)[:2] for part in reason.split(": ", 1)[1].split(", "))
    assert name in ("numpy", "torch") and set(times) == {"numpy", "torch"}
    assert float(times[name]) == min(float(t) for t in times.values())


def test_auto_cpu_backend_small_problem_skips_the_measurement(fresh_auto):
    fresh_auto.setattr(_backends, "_measure", lambda: pytest.fail("measured a tiny problem"))
    name, reason = _backends.auto_cpu_backend((200, 20, 50))
    assert name == "numpy" and "smaller than the measurement probe" in reason


@pytest.mark.parametrize("how", ["env", "module"])
def test_auto_cpu_backend_override(fresh_auto, how):
    fresh_auto.setattr(_backends, "_measure", lambda: pytest.fail("measured despite override"))
    if how == "env":
        fresh_auto.setenv(_backends.CPU_BACKEND_ENV, "torch")
    else:
        fresh_auto.setattr(_backends, "AUTO_CPU_BACKEND", "torch")
    X, Y = _data(seed=11)
    assert VoxelRidgeCV().fit(X, Y).backend_ == "torch"
    fresh_auto.setenv(_backends.CPU_BACKEND_ENV, "cupy")
    fresh_auto.setattr(_backends, "AUTO_CPU_BACKEND", None)
    with pytest.raises(ValueError, match="SKVEM_RIDGE_CPU_BACKEND must be one of"):
        VoxelRidgeCV().fit(X, Y)


# ------------------------------------------- issue 13: cv, float32 range, masks
def test_cv_errors_name_cv():
    X, Y = _data(seed=12)
    with pytest.raises(ValueError, match="cv produced no"):
        VoxelRidgeCV(backend="numpy", cv=[]).fit(X, Y)
    one_shot = VoxelRidgeCV(backend="numpy", cv=KFold(3).split(X))
    one_shot.fit(X, Y)
    with pytest.raises(ValueError, match="one-shot iterator"):
        one_shot.fit(X, Y)
    bad = [(np.arange(10), np.arange(10, 20) + 0.5)]
    with pytest.raises(ValueError, match="cv split 0: the test set must be a 1-D array"):
        VoxelRidgeCV(backend="numpy", cv=bad).fit(X, Y)
    with pytest.raises(ValueError, match=r"cv split 0: train indices must be in \[0, "):
        VoxelRidgeCV(backend="numpy", cv=[(np.arange(len(X) + 5), np.arange(3))]).fit(X, Y)
    with pytest.raises(ValueError, match="cv split 0 has an empty test set"):
        VoxelRidgeCV(backend="numpy", cv=[(np.arange(len(X)), np.array([], int))]).fit(X, Y)


def test_cv_boolean_masks_are_index_arrays():
    X, Y = _data(seed=12)
    splits = list(KFold(3).split(X))
    masks = []
    for train, test in splits:
        tr, te = np.zeros(len(X), bool), np.zeros(len(X), bool)
        tr[train], te[test] = True, True
        masks.append((tr, te))
    by_mask = VoxelRidgeCV(backend="numpy", cv=masks).fit(X, Y)
    by_index = VoxelRidgeCV(backend="numpy", cv=splits).fit(X, Y)
    np.testing.assert_array_equal(by_mask.best_alphas_, by_index.best_alphas_)
    np.testing.assert_array_equal(by_mask.coef_, by_index.coef_)


def test_alphas_beyond_float32_are_refused():
    # Issue 13 item 4: 1e39 became inf in float32 and won every tie-break.
    X, Y = _data(seed=13)
    for alphas in ([1e-3, 1e39], [1e-45, 1.0]):
        with pytest.raises(ValueError, match="alphas must lie within float32's range"):
            VoxelRidgeCV(backend="numpy", alphas=alphas).fit(X, Y)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("factor", [1e20, 1e39, 1e-25])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_scaled_targets_give_the_same_model(backend, factor, fit_intercept):
    # Issue 13 item 4: y * 1e20 gave cv_scores_ = -inf and the first alpha
    # everywhere; y * 1e39 (float64) gave NaN coefficients.
    X, Y = _data(seed=14)
    ref = VoxelRidgeCV(backend=backend, fit_intercept=fit_intercept).fit(X, Y)
    Y64 = Y.astype(np.float64) * factor
    if factor > 1e38:
        with pytest.raises(ValueError, match="y is too large for the float32 model"):
            VoxelRidgeCV(backend=backend, fit_intercept=fit_intercept).fit(X, Y64)
        Y64 = Y64 / 1e5  # values beyond float32, coefficients within it
        factor = factor / 1e5
    model = VoxelRidgeCV(backend=backend, fit_intercept=fit_intercept).fit(X, Y64)
    assert np.mean(model.best_alphas_ == ref.best_alphas_) > 0.95
    same = model.best_alphas_ == ref.best_alphas_
    np.testing.assert_allclose(model.cv_scores_[same] / factor**2, ref.cv_scores_[same],
                               rtol=1e-4)
    assert np.all(np.isfinite(model.coef_))
    np.testing.assert_allclose(model.coef_[:, same] / factor, ref.coef_[:, same],
                               rtol=1e-3, atol=1e-5)


def test_masked_inputs_are_refused_by_name():
    X, Y = _data(seed=15)
    mask = np.zeros_like(Y, bool)
    mask[0, 0] = True
    with pytest.raises(ValueError, match="y is a masked array with 1 masked"):
        VoxelRidgeCV(backend="numpy").fit(X, np.ma.masked_array(Y, mask))
    model = VoxelRidgeCV(backend="numpy").fit(X, Y)
    with pytest.raises(ValueError, match="X is a masked array"):
        model.predict(np.ma.masked_array(X, np.ones_like(X, bool)))
    with pytest.raises(ValueError, match="y_true is a masked array"):
        model.score(X, np.ma.masked_array(Y, mask))
    np.testing.assert_array_equal(  # nothing masked: the plain data
        VoxelRidgeCV(backend="numpy").fit(np.ma.masked_array(X), Y).coef_, model.coef_)


def test_default_alphas_are_logspace():
    np.testing.assert_array_equal(np.asarray(VoxelRidgeCV().alphas), np.logspace(-2, 6, 9))
    assert VoxelRidgeCV().alphas is DEFAULT_ALPHAS


def test_init_is_keyword_only():
    with pytest.raises(TypeError):
        VoxelRidgeCV(ALPHAS)


def test_verbose_shows_progress(capsys):
    X, Y = _data(seed=12)
    VoxelRidgeCV(backend="numpy", verbose=True, n_targets_batch=10).fit(X, Y)
    assert "VoxelRidgeCV" in capsys.readouterr().err
    VoxelRidgeCV(backend="numpy").fit(X, Y)
    assert capsys.readouterr().err == ""


def test_pickle_round_trip():
    X, Y = _data(seed=13)
    model = VoxelRidgeCV(backend="torch").fit(X, Y)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict(X), model.predict(X))
    assert restored.backend_ == "torch"


# ------------------------------------------------------------ bad inputs
def _bad(X, Y, *changes):
    X, Y = X.copy(), Y.copy()
    for key in changes:
        if key == "X_nan":
            X[3, 2] = np.nan
        elif key == "X_inf":
            X[0, 0] = np.inf
        elif key == "y_nan":
            Y[5, 1] = np.nan
        elif key == "y_inf":
            Y[2, 0] = -np.inf
    return X, Y


X0, Y0 = _data(n_samples=30, n_features=4, n_voxels=3, seed=14)


@pytest.mark.parametrize(
    "X, y, params, match",
    [
        (*_bad(X0, Y0, "X_nan"), {}, "X contains NaN"),
        (*_bad(X0, Y0, "X_inf"), {}, "X contains infinity"),
        (*_bad(X0, Y0, "y_nan"), {}, r"y contains 1 NaN value\(s\).*index \(5, 1\)"),
        (*_bad(X0, Y0, "y_inf"), {}, r"y contains 1 infinite"),
        (X0, Y0[:-1], {}, "y has 29 samples.*X has 30"),
        (X0, Y0[:, :0], {}, "y has 0 voxels"),
        (X0, np.stack([Y0, Y0], axis=1), {}, "y must be 1-D .* or 2-D"),
        (X0[:0], Y0[:0], {}, "0 sample"),
        (X0[:, :0], Y0, {}, "0 feature"),
        (X0, Y0, {"alphas": [1.0, 0.0]}, "alphas must all be finite and > 0"),
        (X0, Y0, {"alphas": [-1.0]}, "alphas must all be finite and > 0"),
        (X0, Y0, {"alphas": []}, "alphas is empty"),
        (X0, Y0, {"alphas": [[1.0, 2.0]]}, "alphas must be a 1-D"),
        (X0, Y0, {"alphas": "big"}, "alphas must be an array"),
        (X0, Y0, {"solver": "cholesky"}, "solver must be one of"),
        (X0, Y0, {"backend": "jax"}, "backend must be one of"),
        (X0, Y0, {"backend": "torch_mps"}, "torch_mps' is not supported"),
        (X0, Y0, {"n_targets_batch": 0}, "n_targets_batch must be an integer >= 1"),
        (X0, Y0, {"n_alphas_batch": 1.5}, "n_alphas_batch must be an integer >= 1"),
        (X0, Y0, {"fit_intercept": "yes"}, "fit_intercept must be True or False"),
        (X0, Y0, {"cv": 1}, "cv must be an integer >= 2"),
        (X0[:3], Y0[:3], {}, "n_samples=3"),
    ],
)
def test_bad_input_is_a_clear_value_error(X, y, params, match):
    with pytest.raises(ValueError, match=match):
        VoxelRidgeCV(**{"backend": "numpy", **params}).fit(X, y)


def test_y_none_and_predict_checks():
    with pytest.raises(ValueError, match="requires y to be passed"):
        VoxelRidgeCV().fit(X0, None)
    model = VoxelRidgeCV(backend="numpy").fit(X0, Y0)
    with pytest.raises(ValueError, match="X has 3 features"):
        model.predict(X0[:, :3])
    with pytest.raises(ValueError, match="y has 2 voxels but the model predicts 3"):
        model.score(X0, Y0[:, :2])


@pytest.mark.skipif(_cuda_available(), reason="checks the no-CUDA error")
def test_torch_cuda_without_cuda_is_a_value_error():
    with pytest.raises(ValueError, match="backend='torch_cuda' needs PyTorch with a CUDA"):
        resolve_backend("torch_cuda")


# ------------------------------------------------------ scikit-learn tools
def test_pipeline_cross_val_score_without_scoring():
    X, Y = _data(seed=15)
    pipe = make_pipeline(StandardScaler(), VoxelRidgeCV(backend="numpy"))
    scores = cross_val_score(pipe, X, Y, cv=3)
    assert scores.shape == (3,)
    # the default score of cross_val_score is our mean voxel correlation
    manual = []
    for train, test in KFold(3).split(X):
        fitted = clone(pipe).fit(X[train], Y[train])
        manual.append(np.mean(pearson_r(Y[test], fitted.predict(X[test]))))
    np.testing.assert_allclose(scores, manual, rtol=1e-10)


def test_grid_search_over_estimator_params():
    X, Y = _data(seed=16)
    grid = GridSearchCV(
        VoxelRidgeCV(backend="numpy"),
        {"alphas": [(1e-2, 1e-1), (1e2, 1e3, 1e4)], "fit_intercept": [True, False]},
        cv=3,
    ).fit(X, Y)
    assert grid.best_params_["fit_intercept"] is True  # Y has a +3 offset
    assert set(grid.best_estimator_.best_alphas_) <= set(grid.best_params_["alphas"])
    assert grid.score(X, Y) == pytest.approx(grid.best_estimator_.score(X, Y))


def test_drop_in_for_himalaya_ridgecv_in_voxelwise_pipeline():
    """A voxelwise-tutorials style script, with the model swapped."""
    X, Y = _data(n_samples=150, n_voxels=60, seed=17, offset=5.0)
    X_train, X_test, Y_train, Y_test = X[:120], X[120:], Y[:120], Y[120:]
    Y_mean = Y_train.mean(0)
    Y_train, Y_test = Y_train - Y_mean, Y_test - Y_mean
    cv = KFold(4)

    himalaya.backend.set_backend("numpy")
    ref = make_pipeline(StandardScaler(with_mean=True, with_std=False),
                        HimalayaRidgeCV(alphas=ALPHAS, cv=cv))
    ours = make_pipeline(StandardScaler(with_mean=True, with_std=False),
                         VoxelRidgeCV(alphas=ALPHAS, cv=cv, fit_intercept=False))
    ref.fit(X_train, Y_train)
    ours.fit(X_train, Y_train)

    # himalaya returns exp(-log(alpha)) in float32, i.e. alpha to ~1e-7
    assert np.mean(np.isclose(ours[-1].best_alphas_, ref[-1].best_alphas_, rtol=1e-5)) >= 0.99
    backend = himalaya.backend.get_backend()
    np.testing.assert_allclose(backend.to_numpy(ours.predict(X_test)),
                               backend.to_numpy(ref.predict(X_test)), rtol=1e-3, atol=1e-3)
    assert ours[-1].coef_.shape == ref[-1].coef_.shape == (X.shape[1], Y.shape[1])
    # himalaya's score is per-voxel R^2; ours is the mean voxel correlation
    r = ours[-1].score_voxels(ours[0].transform(X_test), Y_test)
    assert ours.score(X_test, Y_test) == pytest.approx(r.mean())
