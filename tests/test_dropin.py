"""skvem.dropin against himalaya's own estimators, called as the voxelwise tutorials call them.

Each test builds the same scikit-learn pipeline twice, once with himalaya's
estimator and once with the import line swapped for skvem.dropin, fits both
on the same synthetic data and compares what the tutorials read back:
``best_alphas_``, ``predict``, ``score`` (per-voxel R^2) and
``get_primal_coef()``, converted with ``backend.to_numpy`` as they do.
"""

import pickle
import warnings

import himalaya.kernel_ridge as hk
import himalaya.ridge as hr
import numpy as np
import pytest
from himalaya.backend import get_backend, set_backend
from himalaya.scoring import correlation_score, r2_score
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.model_selection import KFold, ShuffleSplit, check_cv
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skvem.dropin import ColumnKernelizer, KernelRidgeCV, Kernelizer, MultipleKernelRidgeCV, RidgeCV
from skvem.encoding._kernel_solver import select_best_alphas, solve_kernel_ridge_cv


def _cuda_available():
    import torch

    return torch.cuda.is_available()


BACKENDS = ["numpy", "torch", pytest.param(
    "torch_cuda", marks=pytest.mark.skipif(not _cuda_available(), reason="no CUDA device"))]
ALPHAS = np.logspace(-1, 5, 7)
N_RUNS, RUN_LENGTH = 4, 40


@pytest.fixture
def backend(request):
    """Set himalaya's global backend for one test and restore it afterwards."""
    previous = get_backend().name
    yield set_backend(request.param)
    set_backend(previous)


class Delayer(TransformerMixin, BaseEstimator):
    """Features concatenated at several delays (zero-filled), as in the tutorials."""

    def __init__(self, delays=(1, 2, 3, 4)):
        self.delays = delays

    def fit(self, X, y=None):
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X):
        n, p = X.shape
        out = np.zeros((n, p * len(self.delays)), dtype=X.dtype)
        for i, d in enumerate(self.delays):
            out[d:, i * p:(i + 1) * p] = X[:n - d]
        return out


def leave_one_run_out(n_runs=N_RUNS, run_length=RUN_LENGTH):
    runs = np.repeat(np.arange(n_runs), run_length)
    return check_cv([(np.flatnonzero(runs != r), np.flatnonzero(runs == r)) for r in range(n_runs)])


def stimulus_data(n_features=60, n_voxels=30, seed=0):
    """Sparse 'wordnet-like' stimulus features and delayed voxel responses with
    varied signal-to-noise (some voxels are noise only)."""
    rng = np.random.default_rng(seed)
    n = N_RUNS * RUN_LENGTH
    X = (rng.random((n + 50, n_features)) < 0.1).astype("float32")
    W = rng.standard_normal((4 * n_features, n_voxels)) * rng.random(n_voxels)
    W[:, :3] = 0
    Y = Delayer().transform(X) @ W + 3 * rng.standard_normal((n + 50, n_voxels))
    Y = (Y - Y[:n].mean(0)).astype("float32")
    return X[:n], Y[:n], X[n:], Y[n:]


def to_np(a):
    return get_backend().to_numpy(a)


def assert_close(a, b, rtol=2e-4):
    a, b = to_np(a), to_np(b)
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, rtol=0, atol=rtol * max(np.abs(b).max(), 1e-12))


def fit_both(make_estimator, himalaya_cls, skvem_cls, X, Y, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # himalaya's "use the other form" hints
        ref = make_estimator(himalaya_cls, **kwargs).fit(X, Y)
        ours = make_estimator(skvem_cls, **kwargs).fit(X, Y)
    return ref, ours


def kernel_pipeline(cls, alphas=ALPHAS, **kwargs):
    return make_pipeline(StandardScaler(with_mean=True, with_std=False), Delayer(),
                         cls(alphas, cv=leave_one_run_out(), **kwargs))


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_wordnet_tutorial_kernel_ridge(backend):
    X, Y, X_test, Y_test = stimulus_data()
    params = dict(solver_params=dict(n_targets_batch=7, n_alphas_batch=3, n_targets_batch_refit=5))
    ref, ours = fit_both(kernel_pipeline, hk.KernelRidgeCV, KernelRidgeCV, X, Y, **params)

    np.testing.assert_allclose(to_np(ours[-1].best_alphas_), to_np(ref[-1].best_alphas_), rtol=1e-5)
    assert_close(ours.predict(X_test), ref.predict(X_test))
    scores = ours.score(X_test, Y_test)
    assert type(scores) is type(ref.score(X_test, Y_test)) and scores.shape == (Y.shape[1],)
    assert_close(scores, ref.score(X_test, Y_test))
    assert_close(ours[-1].get_primal_coef(), ref[-1].get_primal_coef())
    assert_close(ours[-1].cv_scores_, ref[-1].cv_scores_)
    # the arrays live where himalaya puts them: alphas on the device, weights on the CPU
    for name in ("best_alphas_", "dual_coef_", "cv_scores_"):
        assert type(getattr(ours[-1], name)) is type(getattr(ref[-1], name))
        assert getattr(getattr(ours[-1], name), "device", None) == \
            getattr(getattr(ref[-1], name), "device", None)


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_ridge_cv_matches_himalaya(backend):
    X, Y, X_test, Y_test = stimulus_data(n_features=20)
    ref, ours = fit_both(kernel_pipeline, hr.RidgeCV, RidgeCV, X, Y,
                         solver_params=dict(n_targets_batch=8, n_targets_batch_refit=6))
    np.testing.assert_allclose(to_np(ours[-1].best_alphas_), to_np(ref[-1].best_alphas_), rtol=1e-5)
    assert_close(ours[-1].coef_, ref[-1].coef_)
    assert_close(ours.score(X_test, Y_test), ref.score(X_test, Y_test))


@pytest.mark.parametrize("backend", ["numpy", "torch"], indirect=True)
@pytest.mark.parametrize("solver_params", [
    dict(score_func=r2_score), dict(score_func=correlation_score), dict(local_alpha=False),
    dict(conservative=True)], ids=["r2", "correlation", "global-alpha", "conservative"])
@pytest.mark.parametrize("estimator", ["kernel", "primal"])
def test_selection_options_match_himalaya(backend, solver_params, estimator):
    X, Y, X_test, _ = stimulus_data(n_features=20 if estimator == "primal" else 60)
    pair = (hk.KernelRidgeCV, KernelRidgeCV) if estimator == "kernel" else (hr.RidgeCV, RidgeCV)
    ref, ours = fit_both(kernel_pipeline, *pair, X, Y, solver_params=solver_params)
    np.testing.assert_allclose(to_np(ours[-1].best_alphas_), to_np(ref[-1].best_alphas_), rtol=1e-5)
    assert_close(ours[-1].cv_scores_, ref[-1].cv_scores_, rtol=1e-3)
    assert_close(ours.predict(X_test), ref.predict(X_test))


def _float64_reference(X, Y, cv, fit_intercept):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return hk.KernelRidgeCV(ALPHAS, cv=cv, fit_intercept=fit_intercept).fit(
            X.astype("float64"), Y.astype("float64"))


@pytest.mark.parametrize("cv", [leave_one_run_out(), ShuffleSplit(3, test_size=0.2, train_size=0.6,
                                                                    random_state=0)],
                         ids=["runs", "shuffle-split"])
@pytest.mark.parametrize("fit_intercept", [False, True])
def test_kernel_ridge_matches_himalaya_in_float64(cv, fit_intercept):
    """Also with an intercept, a baseline (raw BOLD-like offset) and folds that
    leave samples out: skvem in float32 matches himalaya in float64."""
    set_backend("numpy")
    X, Y, X_test, _ = stimulus_data()
    X = Delayer().transform(X - X.mean(0))
    if fit_intercept:
        Y = Y + 100.0
    ref = _float64_reference(X, Y, cv, fit_intercept)
    ours = KernelRidgeCV(ALPHAS, cv=cv, fit_intercept=fit_intercept).fit(X, Y)
    np.testing.assert_allclose(ours.best_alphas_, ref.best_alphas_, rtol=1e-5)
    assert_close(ours.dual_coef_, ref.dual_coef_, rtol=1e-4)
    assert_close(ours.predict(X[:20]), ref.predict(X[:20]), rtol=1e-5)
    if fit_intercept:
        assert_close(ours.intercept_, ref.intercept_, rtol=1e-5)


@pytest.mark.parametrize("backend", ["numpy", "torch"], indirect=True)
def test_other_kernels_and_kernelizers(backend):
    """rbf kernel, a precomputed kernel through Kernelizer, and ColumnKernelizer's
    stack summed into one kernel."""
    X, Y, X_test, _ = stimulus_data(n_features=30)
    cv = leave_one_run_out()
    ref, ours = fit_both(lambda cls: cls(ALPHAS, kernel="rbf", kernel_params=dict(gamma=0.02),
                                         cv=cv), hk.KernelRidgeCV, KernelRidgeCV, X, Y)
    np.testing.assert_allclose(to_np(ours.best_alphas_), to_np(ref.best_alphas_), rtol=1e-5)
    assert_close(ours.predict(X_test), ref.predict(X_test))

    def precomputed(cls):
        return make_pipeline(StandardScaler(with_std=False), Delayer(),
                             Kernelizer(kernel="linear"), cls(ALPHAS, kernel="precomputed", cv=cv))
    ref, ours = fit_both(precomputed, hk.KernelRidgeCV, KernelRidgeCV, X, Y)
    assert_close(ours.predict(X_test), ref.predict(X_test))
    X_fit = backend.asarray(Delayer().transform(X - X.mean(0)))
    assert_close(ours[-1].get_primal_coef(X_fit), ref[-1].get_primal_coef(X_fit))
    stack = ColumnKernelizer([("a", Kernelizer(), slice(0, 10)), ("b", Kernelizer(), slice(10, 30))])
    assert to_np(stack.fit_transform(X)).shape == (2, len(X), len(X))


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
@pytest.mark.parametrize("fit_intercept", [False, True])
def test_banded_ridge_tutorial_multiple_kernel_ridge(backend, fit_intercept):
    """ColumnKernelizer of two delayed feature spaces into MultipleKernelRidgeCV
    (random search), then predict(split=True) and score(split=True)."""
    X, Y, X_test, Y_test = stimulus_data(n_features=40)
    Y[:, ::2] += X[:, :20] @ np.ones((20, 1), dtype="float32")  # space "a" matters more there

    def banded(cls):
        space = make_pipeline(StandardScaler(with_std=False), Delayer(), Kernelizer(kernel="linear"))
        kernelizer = ColumnKernelizer([("a", space, slice(0, 20)), ("b", space, slice(20, 40))])
        return make_pipeline(kernelizer, cls(
            kernels="precomputed", cv=leave_one_run_out(), random_state=0,
            fit_intercept=fit_intercept, solver_params=dict(
                n_iter=6, alphas=ALPHAS, n_targets_batch=8, n_alphas_batch=3,
                n_targets_batch_refit=5, progress_bar=False)))
    ref, ours = fit_both(banded, hk.MultipleKernelRidgeCV, MultipleKernelRidgeCV, X, Y + 5 * fit_intercept)
    deltas, ref_deltas = to_np(ours[-1].deltas_), to_np(ref[-1].deltas_)
    same = np.all(np.abs(deltas - ref_deltas) <= 1e-5 * np.abs(ref_deltas).max(), axis=0)
    # A voxel whose best candidates tie in CV may pick either one when the
    # BLAS thread count changes the last bits; its CV score is the same.
    assert same.mean() >= 0.9
    assert_close(ours[-1].cv_scores_, ref[-1].cv_scores_, rtol=1e-4)
    np.testing.assert_allclose(to_np(ours[-1].best_alphas_)[same], to_np(ref[-1].best_alphas_)[same], rtol=1e-4)
    assert_close(to_np(ours.predict(X_test))[:, same], to_np(ref.predict(X_test))[:, same])
    assert_close(to_np(ours.score(X_test, Y_test))[same], to_np(ref.score(X_test, Y_test))[same])
    if not fit_intercept:  # himalaya splits predictions without an intercept only
        split = ours.predict(X_test, split=True)
        assert split.shape == (2, len(X_test), Y.shape[1])
        assert_close(to_np(split)[..., same], to_np(ref.predict(X_test, split=True))[..., same])
        assert_close(to_np(ours.score(X_test, Y_test, split=True))[..., same],
                     to_np(ref.score(X_test, Y_test, split=True))[..., same])


@pytest.mark.parametrize("backend", ["numpy", "torch"], indirect=True)
def test_memory_options_and_solver_names_give_the_same_model(backend):
    X, Y, _, _ = stimulus_data()
    Xd = Delayer().transform(X - X.mean(0))
    base = KernelRidgeCV(ALPHAS, cv=leave_one_run_out()).fit(Xd, Y)
    for kwargs in (dict(Y_in_cpu=True), dict(force_cpu=True), dict(solver="svd"),
                   dict(solver_params=dict(diagonalize_method="svd", n_alphas_batch=1))):
        other = KernelRidgeCV(ALPHAS, cv=leave_one_run_out(), **kwargs).fit(Xd, Y)
        np.testing.assert_array_equal(to_np(other.best_alphas_), to_np(base.best_alphas_))
        assert_close(other.dual_coef_, base.dual_coef_, rtol=1e-5)
    one = KernelRidgeCV(ALPHAS, cv=leave_one_run_out()).fit(Xd, Y[:, 5])
    assert one.dual_coef_.shape == (len(Xd),) and one.predict(Xd).shape == (len(Xd),)
    assert_close(one.dual_coef_, base.dual_coef_[:, 5], rtol=1e-5)


@pytest.mark.filterwarnings("ignore:Solving linear kernel ridge:UserWarning")
def test_unknown_options_are_errors_naming_them():
    X, Y, _, _ = stimulus_data()
    with pytest.raises(TypeError, match="n_iter"):
        KernelRidgeCV(ALPHAS, solver_params=dict(n_iter=10)).fit(X, Y)
    with pytest.raises(TypeError, match="jitter_alphas"):
        RidgeCV(ALPHAS, solver_params=dict(jitter_alphas=True)).fit(X, Y)
    with pytest.raises(ValueError, match="diagonalize_method"):
        KernelRidgeCV(ALPHAS, solver_params=dict(diagonalize_method="qr")).fit(X, Y)
    with pytest.raises(ValueError, match="solver"):
        KernelRidgeCV(ALPHAS, solver="conjugate_gradient").fit(X, Y)
    with pytest.raises(ValueError, match="alphas"):
        KernelRidgeCV([0.0, 1.0]).fit(X, Y)
    with pytest.raises(ValueError, match="cv"):
        solve_kernel_ridge_cv(X @ X.T, Y, ALPHAS, cv=[(np.arange(100), np.arange(90, 110))])
    with pytest.raises(ValueError, match="hyper_gradient"):
        MultipleKernelRidgeCV(kernels=["linear", "linear"], solver="hyper_gradient").fit(X, Y)
    with pytest.raises(TypeError, match="n_targets"):
        MultipleKernelRidgeCV(kernels=["linear"], solver_params=dict(n_targets=3)).fit(X, Y)
    with pytest.raises(ValueError, match="local_alpha"):
        select_best_alphas(np.zeros((2, 3, 4)), ALPHAS[:3], local_alpha=False, conservative=True)


def test_solver_leaves_a_float64_kernel_alone():
    X, Y, _, _ = stimulus_data()
    K = (X @ X.T).astype("float64")
    K_before = K.copy()
    res = solve_kernel_ridge_cv(K, Y, ALPHAS, cv=leave_one_run_out(), backend="numpy")
    np.testing.assert_array_equal(K, K_before)
    assert res.dual_coef.shape == Y.shape and res.dual_coef.dtype == np.float32
    again = solve_kernel_ridge_cv(K, Y.tolist(), ALPHAS, cv=leave_one_run_out(), progress_bar=True)
    np.testing.assert_array_equal(again.best_alphas, res.best_alphas)


def test_scikit_learn_protocol():
    X, Y, _, _ = stimulus_data()
    model = KernelRidgeCV(ALPHAS, cv=3, solver_params=dict(n_targets_batch=4))
    params = clone(model).get_params()
    assert params["solver_params"] == dict(n_targets_batch=4)
    np.testing.assert_array_equal(params["alphas"], ALPHAS)
    assert RidgeCV(ALPHAS).get_params()["alphas"] is ALPHAS  # positional, stored as given
    fitted = model.fit(X, Y)
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.predict(X), fitted.predict(X))
    assert repr(model).startswith("KernelRidgeCV(")
