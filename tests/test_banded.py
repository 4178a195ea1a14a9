"""Tests of skvem.encoding.banded.BandedVoxelRidgeCV and its solver."""

import pickle

import himalaya.backend
import numpy as np
import pytest
from himalaya.kernel_ridge import MultipleKernelRidgeCV
from himalaya.ridge import BandedRidgeCV
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import skvem
from skvem.encoding._banded_solver import candidate_gammas, solve_banded_ridge_cv
from skvem.encoding.banded import BandedVoxelRidgeCV
from skvem.metrics import pearson_r

ALPHAS = np.logspace(-2, 6, 9)


def _data(n_samples=150, sizes=(8, 12), n_voxels=40, seed=0):
    """Two spaces; voxel j mixes them with weight share[j] (0: only X2, 1: only X1)."""
    rng = np.random.default_rng(seed)
    Xs = [rng.standard_normal((n_samples, p)).astype(np.float32) for p in sizes]
    share = np.linspace(0.0, 1.0, n_voxels)
    signal = sum(X @ rng.standard_normal((X.shape[1], n_voxels)) / np.sqrt(X.shape[1]) * w
                 for X, w in zip(Xs, (share, 1.0 - share)))
    Y = signal + 0.7 * rng.standard_normal((n_samples, n_voxels)) + 5.0
    return Xs, Y.astype(np.float32)


def _himalaya(Xs, Y, fit_intercept, n_iter=8, random_state=0):
    himalaya.backend.set_backend("numpy")
    model = BandedRidgeCV(groups="input", fit_intercept=fit_intercept, random_state=random_state,
                          solver_params=dict(n_iter=n_iter, alphas=ALPHAS, progress_bar=False))
    return model.fit(Xs, Y)


def _model(**kw):
    params = dict(alphas=ALPHAS, n_iter=8, random_state=0, backend="numpy")
    params.update(kw)
    return BandedVoxelRidgeCV(**params)


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_matches_himalaya_banded_ridge(fit_intercept):
    Xs, Y = _data()
    if not fit_intercept:
        Xs = [X - X.mean(0) for X in Xs]
        Y = Y - Y.mean(0)
    ref = _himalaya(Xs, Y, fit_intercept)
    model = _model(fit_intercept=fit_intercept).fit(Xs, Y)
    same = np.all(np.isclose(model.deltas_, ref.deltas_, rtol=1e-5, atol=1e-6), axis=0)
    assert same.mean() >= 0.95
    assert model.predict(Xs).dtype == np.float32
    np.testing.assert_allclose(model.predict(Xs), ref.predict(Xs), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(model.cv_scores_, ref.cv_scores_, rtol=1e-3)
    np.testing.assert_allclose(model.best_alphas_, ref.best_alphas_, rtol=1e-5)


def test_matches_himalaya_multiple_kernel_ridge_with_kernel_solver():
    # Same model in the kernel form (more features than samples).
    Xs, Y = _data(n_samples=60, sizes=(40, 50), n_voxels=12)
    Xs = [X - X.mean(0) for X in Xs]
    Y = Y - Y.mean(0)
    himalaya.backend.set_backend("numpy")
    ref = MultipleKernelRidgeCV(kernels="precomputed", random_state=0, solver_params=dict(
        n_iter=6, alphas=ALPHAS, progress_bar=False))
    ref.fit(np.stack([X @ X.T for X in Xs]), Y)
    model = _model(fit_intercept=False, n_iter=6, solver="kernel").fit(Xs, Y)
    assert model.solver_ == "kernel"
    same = np.all(np.isclose(model.deltas_, ref.deltas_, rtol=1e-4, atol=1e-5), axis=0)
    assert same.mean() >= 0.9
    pred_ref = ref.predict(np.stack([X @ X.T for X in Xs]))  # test = train kernels
    np.testing.assert_allclose(model.predict(Xs), pred_ref, rtol=1e-3, atol=1e-3)


def test_primal_and_kernel_solvers_agree():
    Xs, Y = _data(n_voxels=15)
    a = _model(solver="primal").fit(Xs, Y)
    b = _model(solver="kernel").fit(Xs, Y)
    np.testing.assert_allclose(a.deltas_, b.deltas_)
    np.testing.assert_allclose(a.predict(Xs), b.predict(Xs), rtol=1e-3, atol=1e-3)


def test_per_space_penalty_follows_the_signal():
    # Voxels driven by X1 penalise X2 more than X1, and conversely: able to fail
    # if the spaces or the deltas were mixed up.
    Xs, Y = _data(n_samples=300, n_voxels=30)
    model = _model(n_iter=20).fit(Xs, Y)
    log_ratio = np.log(model.space_alphas_[1] / model.space_alphas_[0])
    assert np.mean(log_ratio[-8:] > 0) >= 0.9   # X1 voxels: X2 penalised more
    assert np.mean(log_ratio[:8] < 0) >= 0.9    # X2 voxels: X1 penalised more
    np.testing.assert_allclose(model.space_alphas_, np.exp(-model.deltas_))
    np.testing.assert_allclose(model.best_alphas_, 1 / np.exp(model.deltas_).sum(0), rtol=1e-6)


def test_split_predictions_sum_to_the_prediction():
    Xs, Y = _data()
    model = _model().fit(Xs, Y)
    parts = model.predict(Xs, split=True)
    assert parts.shape == (2, Y.shape[0], Y.shape[1]) and parts.dtype == np.float32
    np.testing.assert_allclose(parts.sum(0) + model.intercept_, model.predict(Xs),
                               rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(parts[0], Xs[0] @ model.coef_[:8], rtol=1e-5, atol=1e-5)


def test_groups_array_equals_input_lists_in_column_order():
    Xs, Y = _data()
    perm = np.random.default_rng(1).permutation(20)
    X = np.concatenate(Xs, 1)[:, perm]
    groups = np.repeat([0, 1], [8, 12])[perm]
    a = _model(groups=groups).fit(X, Y)
    b = _model().fit(Xs, Y)
    np.testing.assert_allclose(a.deltas_, b.deltas_)
    np.testing.assert_allclose(a.coef_, b.coef_[perm], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a.predict(X), b.predict(Xs), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(a.predict(X, split=True), b.predict(Xs, split=True),
                               rtol=1e-5, atol=1e-5)
    assert a.n_features_in_ == b.n_features_in_ == 20


def test_target_batches_and_backends_give_the_same_model():
    Xs, Y = _data(n_voxels=23)
    ref = _model().fit(Xs, Y)
    batched = _model(n_targets_batch=5, n_alphas_batch=2).fit(Xs, Y)
    np.testing.assert_allclose(batched.deltas_, ref.deltas_)
    np.testing.assert_allclose(batched.coef_, ref.coef_, rtol=1e-4, atol=1e-5)
    torch_model = _model(backend="torch").fit(Xs, Y)
    assert torch_model.backend_ == "torch"
    assert np.mean(np.isclose(torch_model.deltas_, ref.deltas_).all(0)) >= 0.95
    assert isinstance(torch_model.coef_, np.ndarray)


def test_one_voxel_and_score():
    Xs, Y = _data()
    model = _model().fit(Xs, Y[:, 5])
    assert model.coef_.shape == (20,) and model.deltas_.shape == (2,)
    assert model.predict(Xs).shape == (150,)
    assert model.predict(Xs, split=True).shape == (2, 150)
    full = _model().fit(Xs, Y)
    np.testing.assert_allclose(full.score_voxels(Xs, Y), pearson_r(Y, full.predict(Xs)))
    assert full.score(Xs, Y) == pytest.approx(pearson_r(Y, full.predict(Xs)).mean())


def test_given_gammas_are_used_as_is():
    Xs, Y = _data(n_voxels=10)
    gammas = np.array([[0.5, 0.5], [1.0, 0.0], [0.0, 1.0]])
    model = _model(n_iter=gammas).fit(Xs, Y)
    np.testing.assert_array_equal(model.gammas_, gammas)
    assert model.cv_scores_.shape == (3, 10)
    assert candidate_gammas(4, 3, random_state=0)[0] == pytest.approx([1 / 3] * 3)


def test_sklearn_integration():
    Xs, Y = _data()
    X = np.concatenate(Xs, 1)
    groups = np.repeat([0, 1], [8, 12])
    model = _model(groups=groups, n_iter=4)
    cloned = clone(model)
    assert cloned.get_params()["n_iter"] == 4
    pipe = make_pipeline(StandardScaler(), model)
    scores = cross_val_score(pipe, X, Y, cv=KFold(3))
    assert scores.shape == (3,) and np.all(scores > 0.3)
    search = GridSearchCV(model, {"alphas": [ALPHAS, ALPHAS[:3]]}, cv=KFold(2)).fit(X, Y)
    assert search.best_params_["alphas"] is not None
    fitted = model.fit(X, Y)
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.predict(X), fitted.predict(X))
    assert skvem.BandedVoxelRidgeCV is BandedVoxelRidgeCV
    from skvem.ridge import BandedVoxelRidgeCV as from_shim

    assert from_shim is BandedVoxelRidgeCV


def test_cv_generator_is_used_for_every_gamma():
    Xs, Y = _data(n_voxels=8)
    splits = KFold(4).split(Xs[0])  # a one-shot generator
    a = _model(cv=splits).fit(Xs, Y)
    b = _model(cv=KFold(4)).fit(Xs, Y)
    np.testing.assert_allclose(a.cv_scores_, b.cv_scores_)


@pytest.mark.parametrize("params, X, match", [
    (dict(groups=[0, 1, 1]), "concat", r"groups must give the feature space of each of the 20"),
    (dict(groups=np.r_[np.zeros(8), -np.ones(12)]), "concat", r"groups must assign every column"),
    (dict(groups=np.zeros(20)), "concat", r"1 feature space; banded ridge needs at least 2"),
    (dict(groups=["a"] * 20), "concat", r"groups must hold integer"),
    (dict(groups="columns"), "list", r"groups must be 'input'"),
    (dict(), "concat", r"X must be a list of 2-D arrays"),
    (dict(), "one", r"1 feature space"),
    (dict(), "ragged", r"different numbers of samples"),
    (dict(n_iter=0), "list", r"n_iter must be an integer >= 1"),
    (dict(n_iter=np.ones((3, 3))), "list", r"n_iter must be an int or an array of shape"),
    (dict(concentration=-1.0), "list", r"concentration must be a positive"),
    (dict(alphas=[-1.0]), "list", r"alphas must all be finite and > 0"),
    (dict(cv=1), "list", r"cv must be an integer >= 2"),
    (dict(backend="jax"), "list", r"backend must be one of"),
])
def test_bad_input_names_the_parameter(params, X, match):
    Xs, Y = _data(n_voxels=5)
    inputs = {"concat": np.concatenate(Xs, 1), "list": Xs, "one": Xs[:1],
              "ragged": [Xs[0], Xs[1][:-3]]}[X]
    with pytest.raises(ValueError, match=match):
        _model(**params).fit(inputs, Y)


def test_bad_input_at_fit_and_predict_time():
    Xs, Y = _data(n_voxels=5)
    with pytest.raises(ValueError, match="y has 149 samples"):
        _model().fit(Xs, Y[:-1])
    Xbad = [Xs[0].copy(), Xs[1]]
    Xbad[0][3, 2] = np.nan
    with pytest.raises(ValueError, match=r"X\[0\] contains 1 NaN"):
        _model().fit(Xbad, Y)
    model = _model().fit(Xs, Y)
    with pytest.raises(ValueError, match="fitted with"):
        model.predict([Xs[1], Xs[0]])
    with pytest.raises(ValueError, match="y has 3 voxels but the model predicts 5"):
        model.score(Xs, Y[:, :3])


def test_solver_recovers_a_noise_space():
    rng = np.random.default_rng(0)
    X1, X2 = rng.standard_normal((100, 4)), rng.standard_normal((100, 30))
    Y = X1 @ rng.standard_normal((4, 6)) + 0.3 * rng.standard_normal((100, 6))
    res = solve_banded_ridge_cv([X1, X2], Y, ALPHAS, n_iter=10, random_state=0)
    assert np.all(res.deltas[0] > res.deltas[1] + 2)
    assert res.coef.shape == (34, 6) and res.cv_scores.shape == (10, 6)
    assert np.abs(res.coef[4:]).max() < 0.1 * np.abs(res.coef[:4]).max()


def test_whole_brain_voxel_count_in_bounded_batches():
    # 40k+ voxels go through the target batches; each voxel's fit is the one
    # it gets alone (batches change nothing but memory).
    rng = np.random.default_rng(0)
    Xs = [rng.standard_normal((60, 3)).astype(np.float32) for _ in range(2)]
    Y = (Xs[0] @ rng.standard_normal((3, 41000)) + rng.standard_normal((60, 41000)))
    Y = Y.astype(np.float32)
    big = _model(n_iter=2, n_targets_batch=8192).fit(Xs, Y)
    small = _model(n_iter=2).fit(Xs, Y[:, -50:])
    np.testing.assert_allclose(big.deltas_[:, -50:], small.deltas_)
    np.testing.assert_allclose(big.coef_[:, -50:], small.coef_, rtol=1e-4, atol=1e-6)
    assert big.predict(Xs).shape == (60, 41000)
