"""Kernel ridge regression with one alpha per target, from one eigendecomposition.

The kernel-form solver under :class:`skvem.dropin.KernelRidgeCV`: a pure
function, in the style of :func:`himalaya.kernel_ridge.solve_kernel_ridge_cv_eigenvalues`,
that takes a precomputed kernel and runs on any himalaya backend.

Algorithm
---------
himalaya diagonalises the training kernel of every fold (one ``eigh`` of
``n_train x n_train`` per fold) and refits with one ``n x n`` matrix per
alpha. Here the full kernel is diagonalised once, ``K = Q diag(lam) Q^T``,
and the validation residuals of every fold and alpha follow from it by the
block hold-out identity of ridge regression: with ``H = (K + alpha I)^-1``
and the full-data dual coefficients ``c = H Y``, the residuals of the
samples ``te`` held out of a fold, ``Y_te - Yhat_te``, are exactly
``H[te, te]^-1 c[te]``. So::

    residuals(alpha, fold) = M(alpha, fold) @ Z,    Z = Q^T Y  (once),
    M = H[te, te]^-1 Q[te] diag(1 / (lam + alpha))   (n_test x n, float64)

A fold costs one small float64 solve per alpha (``n_test x n_test``) and one
float32 GEMM over all its alphas; the refit costs one product
``Q (w_selected * Z)``. With an intercept, the same identity holds for the
bordered system ``[[K + alpha I, 1], [1^T, 0]]`` (ridge with an unpenalised
intercept, which is what himalaya's per-fold kernel centring fits): ``H``
gains a rank-one correction. A fold whose training and validation samples do
not cover all samples (e.g. ``ShuffleSplit``) gets its own decomposition of
the samples it uses.

Alpha selection is himalaya's (``_select_best_alphas``): fold scores averaged
in float64, rounded to float32, a ``1e-10 * log(alpha)`` slope that breaks
ties towards larger alphas, per target (``local_alpha``) or shared, optionally
the largest alpha within one standard deviation of the best
(``conservative``). The default score is ``himalaya.scoring.l2_neg_loss``.
"""

from typing import NamedTuple, Optional

import numpy as np

from skvem._utils.progress import progress
from skvem.encoding._backends import resolve_backend
from skvem.encoding._inputs import check_alphas, check_splits
from skvem.encoding._ridge_solver import _eigh, _select_alphas, _sum_squares_axis1

__all__ = ["KernelRidgeCVResult", "select_best_alphas", "solve_kernel_ridge_cv"]

# Float64 bytes for one batch of the per-fold operators M (and their
# right-hand sides): bounds the alphas solved at once when n_alphas_batch
# is None.
_OPERATOR_BYTES = 256 * 2**20
# Float32 bytes for the residuals of one (alpha batch, target batch) block
# when n_targets_batch is None.
_RESIDUAL_BYTES = 128 * 2**20


class KernelRidgeCVResult(NamedTuple):
    """Output of :func:`solve_kernel_ridge_cv` (numpy arrays).

    Attributes
    ----------
    best_alphas : ndarray of shape (n_targets,), float32
        Selected alpha of each target (one of the given alphas).
    dual_coef : ndarray of shape (n_samples, n_targets), float32
        Dual coefficients refit on all samples: predictions are
        ``K(X_new, X_fit) @ dual_coef + intercept``.
    intercept : ndarray of shape (n_targets,), float32, or None
        Intercepts (None when ``fit_intercept=False``).
    cv_scores : ndarray of shape (n_targets,), float32
        Mean validation score of the selected alpha.
    """

    best_alphas: np.ndarray
    dual_coef: np.ndarray
    intercept: Optional[np.ndarray]
    cv_scores: np.ndarray


def select_best_alphas(scores, alphas, *, local_alpha=True, conservative=False, std_ddof=0):
    """Index of the best alpha of each target, by himalaya's rule.

    Parameters
    ----------
    scores : ndarray of shape (n_folds, n_alphas, n_targets)
        Validation scores (higher is better).
    alphas : ndarray of shape (n_alphas,)
        The candidate alphas (float32, as himalaya compares them).
    local_alpha : bool, default=True
        One alpha per target; False: the alpha with the best score averaged
        over targets, for all targets.
    conservative : bool, default=False
        Take the largest alpha whose mean score beats the best mean score
        minus its standard deviation over folds (``local_alpha`` only).
    std_ddof : int, default=0
        Delta degrees of freedom of that standard deviation. himalaya calls
        its backend's ``std``: numpy's and cupy's divide by n (0), torch's by
        n - 1 (1).

    Returns
    -------
    best : ndarray of shape (n_targets,), int
        Index of the selected alpha.
    cv_best : ndarray of shape (n_targets,), float32
        Mean score of the selected alpha (with himalaya's tie-breaking slope,
        as himalaya reports it).
    """
    alphas = np.asarray(alphas, dtype=np.float32)
    if local_alpha and not conservative:
        best, cv_best = _select_alphas(scores, alphas)
        return best, cv_best.astype(np.float32)
    if not local_alpha and conservative:
        raise ValueError("conservative=True needs local_alpha=True (as in himalaya).")
    mean = scores.mean(0, dtype=np.float64).astype(np.float32)
    mean += (np.log(alphas) * np.float32(1e-10))[:, None]
    if local_alpha:  # conservative
        best = np.argmax(mean, 0)
        to_beat = np.take_along_axis(mean - scores.std(0, ddof=std_ddof), best[None], 0)
        beats = (mean > to_beat).astype(np.float32)
        best = np.argmax(beats + (np.log(alphas) * np.float32(1e-4))[:, None], 0)
    else:
        best = np.full(mean.shape[1], np.argmax(mean.mean(1)))
    return best, np.take_along_axis(mean, best[None], 0)[0]


class _Basis(NamedTuple):
    # Eigendecomposition of the (centred) kernel of the samples ``rows``.
    rows: Optional[np.ndarray]  # sample indices, None for all samples
    Q64: object  # (n_rows, n_rows) eigenvectors, float64
    Q32: object  # the same, float32, for the products with Y
    lam: object  # (n_rows,) eigenvalues, clipped at 0, float64
    g: object  # Q^T 1 (n_rows,), float64, for the intercept; None without


def _eigh_float64(B, K64):
    """Eigendecomposition of a symmetric float64 matrix, overwritten on the CPU."""
    if B.name == "numpy" or (B.name == "torch" and not K64.is_cuda):
        import scipy.linalg

        # LAPACK's syevd writing the eigenvectors over the kernel (its
        # transpose is the Fortran-ordered view of the same symmetric
        # matrix): one n x n float64 array less at the peak. On torch's CPU
        # tensors (shared memory) it also beat torch.linalg.eigh here: 1200 x
        # 1200, 4.1-4.8 s against 7.0-12.8 s (2 shared cores).
        K_np = K64 if B.name == "numpy" else K64.numpy()
        lam, Q = scipy.linalg.eigh(K_np.T, overwrite_a=True, driver="evd", check_finite=False)
        return (lam, Q) if B.name == "numpy" else (B.asarray(lam), B.asarray(Q))
    return _eigh(B, K64)


def _basis(B, K64, rows, fit_intercept):
    """Decompose ``K64`` (overwritten), centred in place first with an intercept:
    the model then ignores a constant shift of the feature map, and removing it
    keeps the eigenvalues free of a large constant mode."""
    if fit_intercept:
        K64 -= K64.mean(0)[None, :]
        K64 -= K64.mean(1)[:, None]
    lam, Q = _eigh_float64(B, K64)
    # Negative eigenvalues of a positive semi-definite kernel are rounding.
    lam = lam * (lam > 0)
    g = Q.sum(0) if fit_intercept else None
    return _Basis(rows, Q, B.asarray(Q, dtype="float32"), lam, g)


def _solve(B, A, R):
    """Batched ``A^-1 R`` for symmetric positive definite ``A`` (Cholesky;
    LU if rounding made a block indefinite)."""
    if B.name == "numpy":
        import scipy.linalg

        try:
            return np.stack([scipy.linalg.cho_solve(scipy.linalg.cho_factor(a), r)
                             for a, r in zip(A, R)])
        except np.linalg.LinAlgError:
            return np.linalg.solve(A, R)
    if B.name.startswith("torch"):
        import torch

        L, info = torch.linalg.cholesky_ex(A)
        if bool((info == 0).all()):
            return torch.cholesky_solve(R, L)
        return torch.linalg.solve(A, R)
    import cupy

    return cupy.linalg.solve(A, R)


def _fold_operator(B, basis, pos, alphas, fit_intercept, predictions):
    """M such that the held-out residuals of rows ``pos`` are ``M @ Q^T Y``,
    or, with ``predictions``, N = Q[pos] - M for the predictions ``N @ Q^T Y``
    (formed in float64: ``Y - residuals`` in float32 would cancel where the
    predictions are small, at large alphas).

    Returns float32 of shape (n_alphas * n_test, n_rows) (alpha-major).
    """
    Qte = basis.Q64[pos]  # (n_te, n)
    d = 1.0 / (basis.lam[None, :] + alphas[:, None])  # (n_a, n): diag of H
    R = Qte[None, :, :] * d[:, None, :]  # Q_te D
    H = R @ Qte.T  # H[te, te], (n_a, n_te, n_te)
    if fit_intercept:
        # Bordered system: H loses (H 1)(H 1)^T / (1^T H 1).
        gd = d * basis.g[None, :]  # (n_a, n): rows of (H 1)^T Q
        u = gd @ Qte.T  # (n_a, n_te): (H 1)[te]
        gamma = (gd * basis.g[None, :]).sum(1)[:, None, None]
        H = H - u[:, :, None] * u[:, None, :] / gamma
        R = R - u[:, :, None] * gd[:, None, :] / gamma
    M = _solve(B, H, R)
    if predictions:
        M = Qte[None] - M
    return B.asarray(M.reshape(-1, M.shape[-1]), dtype="float32")


def _batches(n, size):
    return [slice(s, min(s + size, n)) for s in range(0, n, size)]


def solve_kernel_ridge_cv(K, Y, alphas, *, cv=5, fit_intercept=False, score_func=None,
                          local_alpha=True, conservative=False, n_targets_batch=None,
                          n_alphas_batch=None, n_targets_batch_refit=None, Y_in_cpu=False,
                          backend="numpy", progress_bar=False):
    """Kernel ridge regression with one alpha per target, chosen by cross-validation.

    Solves, for each target ``j``, ``min_w ||K w - Y[:, j]||^2 + alpha_j w^T K w``
    (plus an unpenalised intercept if ``fit_intercept``), with ``alpha_j``
    the candidate with the best mean validation score over the folds of
    ``cv``, refit on all samples. See the module docstring for the algorithm.

    Parameters
    ----------
    K : array of shape (n_samples, n_samples)
        Positive semi-definite kernel of the training samples (numpy or an
        array of ``backend``). Decomposed in float64.
    Y : array of shape (n_samples, n_targets)
        Targets (numpy or an array of ``backend``), used in float32.
    alphas : array-like of shape (n_alphas,)
        Regularisation strengths to try, all > 0.
    cv : int, cross-validation generator or iterable, default=5
        Anything :func:`sklearn.model_selection.check_cv` takes. Training and
        validation samples of a fold must not overlap.
    fit_intercept : bool, default=False
        Fit an unpenalised intercept in every fold and in the refit
        (himalaya's centring of the kernel on the training samples).
    score_func : callable or None, default=None
        ``score_func(Y_true (n_test, n_t), Y_pred (n_alphas, n_test, n_t)) ->
        (n_alphas, n_t)``, higher is better, computed with ``backend`` (e.g.
        ``himalaya.scoring.r2_score`` when it is himalaya's active backend).
        None: the negative mean squared error (``l2_neg_loss``), computed
        from the residuals without forming the predictions. A score function
        must not depend on a shift shared by ``Y_true`` and ``Y_pred``
        (R^2, correlation, squared error do not): the targets are centred
        globally, not on each fold's training mean.
    local_alpha, conservative : bool
        See :func:`select_best_alphas`.
    n_targets_batch : int or None, default=None
        Targets whose residuals are computed at once (None: ~128 MB).
    n_alphas_batch : int or None, default=None
        Alphas whose fold operators are solved at once (None: ~256 MB).
    n_targets_batch_refit : int or None, default=None
        Targets refit at once (None: ``n_targets_batch``).
    Y_in_cpu : bool, default=False
        Keep ``Y`` and ``Q^T Y`` in CPU memory, moving one batch at a time to
        the backend's device.
    backend : str or module, default="numpy"
        A himalaya backend name (see
        :func:`skvem.encoding._ridge_solver.resolve_backend`) or module.
    progress_bar : bool, default=False
        Show a tqdm bar over the folds.

    Returns
    -------
    result : KernelRidgeCVResult
        ``(best_alphas, dual_coef, intercept, cv_scores)``, numpy arrays.

    Examples
    --------
    >>> import numpy as np
    >>> from skvem.encoding._kernel_solver import solve_kernel_ridge_cv
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((60, 100))
    >>> Y = X @ rng.standard_normal((100, 3)) + rng.standard_normal((60, 3))
    >>> res = solve_kernel_ridge_cv(X @ X.T, Y, alphas=[1.0, 100.0, 1e4])
    >>> res.dual_coef.shape, res.best_alphas.shape
    ((60, 3), (3,))
    """
    B = resolve_backend(backend) if isinstance(backend, str) else backend
    K64 = B.asarray(K, dtype="float64")
    if str(getattr(K, "dtype", "")).endswith("float64"):
        K64 = B.copy(K64)  # decomposed in place below: never the caller's array
    n = K64.shape[0]
    Y = Y if hasattr(Y, "shape") else np.asarray(Y)
    if K64.ndim != 2 or K64.shape[1] != n or Y.ndim != 2 or Y.shape[0] != n:
        raise ValueError(f"K must be (n_samples, n_samples) and Y (n_samples, n_targets); "
                         f"got {tuple(K64.shape)} and {tuple(Y.shape)}.")
    alphas = check_alphas(alphas)
    n_targets, n_alphas = Y.shape[1], alphas.size
    splits = check_splits(cv, np.empty((n, 1)))
    for tr, te in splits:
        # The hold-out identity holds only for held-out samples outside the training set.
        if np.intersect1d(tr, te).size:
            raise ValueError("cv must give disjoint training and validation sets; "
                             "check the cv argument.")

    # Y (and Z = Q^T Y, as large) live on the device unless Y_in_cpu.
    store = (lambda a: B.asarray(a, dtype="float32", device="cpu")) if Y_in_cpu else \
        (lambda a: B.asarray(a, dtype="float32"))
    on_device = lambda a: B.asarray(a, dtype="float32")  # noqa: E731
    Y = store(Y)
    y_mean = Y.mean(0) if fit_intercept else None

    def centred(rows, sl):
        Yb = on_device(Y[:, sl] if rows is None else Y[B.asarray(rows, device="cpu") if Y_in_cpu
                                                      else B.asarray(rows)][:, sl])
        return Yb - on_device(y_mean[sl]) if fit_intercept else Yb

    k_mean = B.asarray(K64.mean(0), dtype="float32", device="cpu") if fit_intercept else None
    # Folds that leave samples out need the kernel after the full decomposition.
    K_rest = B.copy(K64) if any(len(tr) + len(te) < n for tr, te in splits) else None
    full = _basis(B, K64, None, fit_intercept)
    del K64

    if n_targets_batch is None:
        n_te = max(len(te) for _, te in splits)
        n_targets_batch = max(64, _RESIDUAL_BYTES // (4 * (n_alphas * n_te + 2 * n)))
    n_targets_batch = int(min(n_targets_batch, n_targets))
    t_batches = _batches(n_targets, n_targets_batch)
    Z = B.zeros_like(Y, shape=(n, n_targets))
    for sl in t_batches:
        Z[:, sl] = store(full.Q32.T @ centred(None, sl))

    alphas_dev = B.asarray(alphas, dtype="float64")
    scores = np.empty((len(splits), n_alphas, n_targets), dtype=np.float32)
    for f in progress(range(len(splits)), verbose=progress_bar, desc="KernelRidgeCV folds"):
        tr, te = splits[f]
        rows = None
        basis, pos = full, te
        if len(tr) + len(te) < n:
            rows = np.sort(np.concatenate([tr, te]))
            sub = B.asarray(rows)
            basis = _basis(B, K_rest[sub][:, sub], rows, fit_intercept)
            pos = np.searchsorted(rows, te)
        n_rows = n if rows is None else len(rows)
        a_size = n_alphas_batch or max(1, _OPERATOR_BYTES // (16 * len(te) * (n_rows + len(te))))
        for ab in _batches(n_alphas, int(a_size)):
            M = _fold_operator(B, basis, B.asarray(pos), alphas_dev[ab], fit_intercept,
                               predictions=score_func is not None)
            n_a = ab.stop - ab.start
            for sl in t_batches:
                Zb = on_device(Z[:, sl]) if rows is None else basis.Q32.T @ centred(rows, sl)
                P = (M @ Zb).reshape(n_a, len(te), -1)
                if score_func is None:  # P holds the residuals
                    s = _sum_squares_axis1(B, P) * (-1.0 / len(te))
                else:
                    s = score_func(centred(te, sl), P)
                scores[f, ab, sl] = B.to_numpy(s)
                del P, Zb
            del M

    best, cv_best = select_best_alphas(scores, alphas.astype(np.float32), local_alpha=local_alpha,
                                       conservative=conservative,
                                       std_ddof=int(B.name.startswith("torch")))

    # Refit: dual = H(alpha_j) Y_j = Q diag(1/(lam + alpha_j)) Z_j (+ intercept correction).
    d = 1.0 / (full.lam[None, :] + alphas_dev[:, None])  # (n_alphas, n)
    d32 = B.asarray(d, dtype="float32")
    if fit_intercept:
        gd = d * full.g[None, :]
        u32 = B.asarray((full.Q64 @ gd.T).T, dtype="float32")  # (n_alphas, n): H(alpha) 1
        gamma32 = B.asarray((gd * full.g[None, :]).sum(1), dtype="float32")
        g32 = B.asarray(full.g, dtype="float32")
    dual = np.empty((n, n_targets), dtype=np.float32)
    best_dev = B.asarray(best)
    for sl in _batches(n_targets, int(min(n_targets_batch_refit or n_targets_batch, n_targets))):
        idx = best_dev[sl]
        W = d32[idx].T * on_device(Z[:, sl])
        A = full.Q32 @ W
        if fit_intercept:
            A -= u32[idx].T * ((g32 @ W) / gamma32[idx])[None, :]
        dual[:, sl] = B.to_numpy(A)
        del W, A
    intercept = None
    if fit_intercept:
        # With sum(dual) = 0, the intercept of the uncentred kernel's model.
        intercept = B.to_numpy(y_mean) - B.to_numpy(k_mean) @ dual
    return KernelRidgeCVResult(alphas.astype(np.float32)[best], dual, intercept, cv_best)
