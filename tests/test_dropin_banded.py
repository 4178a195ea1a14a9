"""skvem.dropin.BandedRidgeCV against himalaya's BandedRidgeCV, called as the voxelwise
tutorials call it (feature spaces from ColumnTransformerNoStack, ``groups="input"``)."""

import pickle

import himalaya.ridge as hr
import numpy as np
import pytest
from himalaya.backend import set_backend
from sklearn.base import clone
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skvem.dropin import BandedRidgeCV, ColumnTransformerNoStack, GroupRidgeCV
from tests.test_dropin import (ALPHAS, Delayer, assert_close, backend, fit_both,  # noqa: F401
                               leave_one_run_out, stimulus_data, to_np)

SOLVER_PARAMS = dict(n_iter=6, alphas=ALPHAS, n_targets_batch=8, n_alphas_batch=3,
                     n_targets_batch_refit=5, progress_bar=False)


def banded_data():
    X, Y, X_test, Y_test = stimulus_data(n_features=40, n_voxels=100)
    Y[:, ::2] += X[:, :20] @ np.ones((20, 1), dtype="float32")  # space "a" matters more there
    return X, Y, X_test, Y_test


def assert_same_model(ours, ref, X_test, Y_test, split=True):
    deltas, ref_deltas = to_np(ours.deltas_), to_np(ref.deltas_)
    same = np.isclose(deltas, ref_deltas, rtol=1e-5, atol=1e-5).all(0)
    assert same.mean() >= 0.99, f"deltas differ for targets {np.flatnonzero(~same)}"
    # A target may choose differently only where every candidate scores the same
    # up to float32 rounding (a voxel without signal), which himalaya's absolute
    # epsilon then breaks by rounding noise.
    scores, ref_scores = to_np(ours.cv_scores_), to_np(ref.cv_scores_)
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-5, atol=0)
    ties = np.ptp(ref_scores[:, ~same], axis=0) <= 1e-6 * np.abs(ref_scores[:, ~same]).max(0)
    assert ties.all(), f"targets {np.flatnonzero(~same)[~ties]} choose differently"

    def close(a, b):  # on the targets with the same deltas (the last axis)
        assert_close(to_np(a)[..., same], to_np(b)[..., same])

    np.testing.assert_allclose(to_np(ours.best_alphas_)[same], to_np(ref.best_alphas_)[same],
                               rtol=1e-4)
    close(ours.coef_, ref.coef_)
    close(ours.predict(X_test), ref.predict(X_test))
    close(ours.score(X_test, Y_test), ref.score(X_test, Y_test))
    if split:  # himalaya splits predictions without an intercept only
        pred = ours.predict(X_test, split=True)
        assert pred.shape == (ref.deltas_.shape[0], len(Y_test), Y_test.shape[1])
        close(pred, ref.predict(X_test, split=True))
        close(ours.score(X_test, Y_test, split=True), ref.score(X_test, Y_test, split=True))
    return same


@pytest.mark.parametrize("backend", ["numpy", "torch"], indirect=True)
@pytest.mark.parametrize("fit_intercept", [False, True])
def test_tutorial_banded_ridge_matches_himalaya(backend, fit_intercept):
    """ColumnTransformerNoStack of two delayed feature spaces into
    BandedRidgeCV(groups="input"), as in the voxelwise tutorials."""
    X, Y, X_test, Y_test = banded_data()

    def banded(cls):
        space = make_pipeline(StandardScaler(with_std=False), Delayer())
        spaces = ColumnTransformerNoStack([("a", space, slice(0, 20)), ("b", space, slice(20, 40))])
        return make_pipeline(spaces, cls(
            groups="input", cv=leave_one_run_out(), random_state=0,
            fit_intercept=fit_intercept, solver_params=SOLVER_PARAMS))

    ref, ours = fit_both(banded, hr.BandedRidgeCV, BandedRidgeCV, X, Y + 5 * fit_intercept)
    assert ours[-1].coef_.shape == (160, Y.shape[1])
    same = assert_same_model(ours[-1], ref[-1], ours[0].transform(X_test),
                             Y_test + 5 * fit_intercept, split=not fit_intercept)
    assert_close(ours.predict(X_test)[:, same], ref.predict(X_test)[:, same])


def test_groups_as_column_ids_and_given_gammas():
    """groups as one id per column of a 2-D X (negative: dropped), and n_iter
    given as the weights themselves."""
    set_backend("numpy")
    X, Y, X_test, Y_test = banded_data()
    X, X_test = X - X.mean(0), X_test - X.mean(0)
    groups = np.repeat([0, 1, -1], [15, 15, 10])
    gammas = np.array([[0.5, 0.5], [0.9, 0.1], [0.1, 0.9], [0.99, 0.01]])

    def banded(cls):
        return cls(groups=groups, cv=leave_one_run_out(), solver_params=dict(
            n_iter=gammas, alphas=ALPHAS, progress_bar=False))

    ref, ours = fit_both(banded, hr.BandedRidgeCV, BandedRidgeCV, X, Y)
    assert_same_model(ours, ref, X_test, Y_test)


def test_unsupported_options_are_errors_naming_them():
    set_backend("numpy")
    X, Y, _, _ = banded_data()
    Xs = [X[:, :20], X[:, 20:]]
    for key, value in [("local_alpha", False), ("conservative", True), ("jitter_alphas", True),
                       ("diagonalize_method", "eigh"), ("score_func", lambda y, p: -p)]:
        model = BandedRidgeCV(groups="input", solver_params={key: value, "n_iter": 2})
        with pytest.raises(ValueError, match=key):
            model.fit(Xs, Y)
    with pytest.raises(TypeError, match="n_kernels_batch"):
        BandedRidgeCV(groups="input", solver_params=dict(n_kernels_batch=2)).fit(Xs, Y)
    with pytest.raises(ValueError, match="solver"):
        BandedRidgeCV(groups="input", solver="hyper_gradient").fit(Xs, Y)


def test_alias_and_scikit_learn_protocol():
    set_backend("numpy")
    assert GroupRidgeCV is BandedRidgeCV
    X, Y, X_test, _ = banded_data()
    model = BandedRidgeCV(groups="input", random_state=0, solver_params=dict(
        n_iter=3, alphas=ALPHAS, progress_bar=False))
    assert clone(model).get_params()["groups"] == "input"
    Xs = [X[:, :20], X[:, 20:]]
    model.fit(Xs, Y[:, 0])  # one target: 1-D outputs, as himalaya's
    assert model.coef_.shape == (40,) and model.deltas_.shape == (2,)
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict([X_test[:, :20], X_test[:, 20:]]),
                                  model.predict([X_test[:, :20], X_test[:, 20:]]))
