"""Ridge regression with one alpha per target, chosen by K-fold cross-validation.

This is the solver under :class:`skvem.encoding.ridge.VoxelRidgeCV`: a pure function,
in the style of :func:`himalaya.ridge.solve_ridge_cv_svd`, that runs on any
himalaya backend (numpy, torch, torch_cuda, ...).

Algorithm
---------
For every fold, the (centred) training features are diagonalised once, as
the thin SVD ``Xtrain = U diag(s) V^T`` obtained from the float64
eigendecomposition of ``Xtrain^T Xtrain = V diag(s**2) V^T`` ("primal",
p x p) or of the linear kernel ``Xtrain Xtrain^T = U diag(s**2) U^T``
("kernel", n x n, computed once for all folds). The ridge predictions of
the validation samples for every alpha follow from the same factors::

    Ytest_hat(alpha) = C diag(s / (s**2 + alpha)) U^T Ytrain,   C = Xtest V

so a fold costs one product ``Z = U^T Ytrain`` (rank x targets) and, for all
alphas at once, one product ``[C diag(w_1); ...; C diag(w_A)] @ Z``. himalaya
instead multiplies an ``(n_alphas, n_test, n_train)`` matrix with ``Ytrain``,
i.e. ``n_train / rank`` more work per alpha; this is where the speed-up comes
from. Targets are processed in batches (bounded memory) and each batch is
read once: all folds, the alpha selection and the refit are done before the
next batch, so with a GPU backend each voxel crosses the bus once.

Alpha selection copies himalaya's rule, so that both choose the same alphas:
the score of a fold is the negative mean squared error on the validation
samples (``himalaya.scoring.l2_neg_loss``), averaged over folds in float64
and rounded to float32, with a ``1e-10 * log(alpha)`` slope that breaks exact
ties towards larger alphas; the best mean score wins.
"""

import math
from typing import NamedTuple, Optional

import numpy as np

from skvem._utils.progress import progress
from skvem.encoding._backends import BACKENDS, resolve_backend  # noqa: F401 (re-exported)
from skvem.encoding._inputs import check_alphas, check_splits

__all__ = ["RidgeCVResult", "resolve_backend", "solve_ridge_cv"]

_EPS32 = float(np.finfo(np.float32).eps)

# Memory for the per-batch work arrays, in bytes. On the CPU, batches of
# ~2-3k targets were fastest (X 2000 x 512, 9 alphas: 1.10-1.15 s for 6000
# targets against 1.15-1.25 s with 6000-target batches, torch backend):
# beyond that the products gain nothing and the predictions fall out of
# cache. A GPU amortises kernel launches over larger batches.
_BATCH_BYTES_CPU = 128 * 2**20
_BATCH_BYTES_GPU = 2 * 2**30

def _on_gpu(backend):
    return backend.name in ("torch_cuda", "cupy")


class RidgeCVResult(NamedTuple):
    """Output of :func:`solve_ridge_cv`.

    Attributes
    ----------
    best_alphas : ndarray of shape (n_targets,)
        Selected alpha of each target (exactly one of the given alphas).
    coef : ndarray of shape (n_features, n_targets), float32, or None
        Ridge weights refit on all samples with each target's alpha
        (None when ``refit=False``).
    intercept : ndarray of shape (n_targets,), float32, or None
        Intercepts (zeros when ``fit_intercept=False``; None when
        ``refit=False``).
    cv_scores : ndarray of shape (n_targets,)
        Cross-validation score of the selected alpha: negative mean squared
        error on the validation samples, averaged over folds.
    solver : str
        ``"primal"`` or ``"kernel"``, the decomposition that was used.
    """

    best_alphas: np.ndarray
    coef: Optional[np.ndarray]
    intercept: Optional[np.ndarray]
    cv_scores: np.ndarray
    solver: str


class _Decomposition(NamedTuple):
    # Factors of one training set: predictions for alpha are
    # C @ diag(s / (s**2 + alpha)) @ U^T @ (Ytrain - mean).
    U: object  # (n_train, rank) float32, orthonormal columns
    s: object  # (rank,) float64 singular values of the (centred) Xtrain
    C: object  # (n_test, rank) float32: Xtest V -- or V (n_features, rank) for the refit


def _eigh(backend, M):
    """Eigendecomposition (ascending) of a symmetric float64 matrix."""
    if backend.name == "numpy":
        # numpy's LAPACK driver (syevd) ran 2-3x faster than scipy's default
        # (syevr, himalaya's numpy ``eigh``) on 512 x 512 Gram matrices here.
        return np.linalg.eigh(M)
    return backend.eigh(M)


def _truncate(backend, lam, vectors, shape):
    """Singular values and vectors of the numerical range of a float32 X.

    ``lam`` are eigenvalues of X^T X or X X^T (float64, hence accurate to
    ~1e-16 lam_max). X itself is float32 data, known only to ~eps32 of its
    norm: directions with singular values below numpy's ``matrix_rank``
    tolerance for float32 (s_max * max(n, p) * eps32) are quantisation noise,
    and dropping them also keeps 1/s out of the computation of U.
    """
    s_max2 = float(lam.max()) if lam.shape[0] else 0.0
    tol2 = s_max2 * (max(shape) * _EPS32) ** 2
    keep = lam > max(tol2, 0.0)
    return backend.sqrt(lam[keep]), vectors[:, keep]


def _as32(backend, a):
    return backend.asarray(a, dtype="float32")


def _decompose_primal(backend, Xtr, Xte, fit_intercept, want_V):
    """Thin SVD of the (centred) float64 Xtrain through its p x p Gram matrix."""
    if fit_intercept:
        mean = Xtr.mean(0)
        Xtr = Xtr - mean
        Xte = None if Xte is None else Xte - mean
    lam, V = _eigh(backend, Xtr.T @ Xtr)
    s, V = _truncate(backend, lam, V, Xtr.shape)
    U = (Xtr @ V) / s
    C = V if want_V else Xte @ V
    return _Decomposition(_as32(backend, U), s, _as32(backend, C))


def _center_kernel_blocks(K_tr, K_te):
    """Centre the train and test-vs-train blocks of a linear kernel on the train mean."""
    row_mean = K_tr.mean(1)  # (n_train,): x_i . m
    grand_mean = row_mean.mean()  # m . m
    K_tr = K_tr - row_mean[:, None] - row_mean[None, :] + grand_mean
    if K_te is not None:
        K_te = K_te - K_te.mean(1)[:, None] - row_mean[None, :] + grand_mean
    return K_tr, K_te


def _decompose_kernel(backend, K_tr, K_te, fit_intercept, n_features, X_for_V=None):
    """Thin SVD of Xtrain through the eigendecomposition of its float64 linear kernel."""
    if fit_intercept:
        K_tr, K_te = _center_kernel_blocks(K_tr, K_te)
    lam, Q = _eigh(backend, K_tr)
    s, U = _truncate(backend, lam, Q, (K_tr.shape[0], n_features))
    if X_for_V is None:
        C = (K_te @ U) / s  # = Xtest V, since Xtrain V = U diag(s)
    else:
        C = (X_for_V.T @ U) / s  # V = Xtrain^T U diag(1/s), (n_features, rank)
    return _Decomposition(_as32(backend, U), s, _as32(backend, C))


def _alpha_weights(backend, s, alphas):
    """w[a, k] = s_k / (s_k**2 + alpha_a), float64 -> float32, (n_alphas, rank)."""
    alphas = backend.asarray_like(alphas, s)
    return _as32(backend, s[None, :] / (s[None, :] ** 2 + alphas[:, None]))


def _auto_n_targets_batch(n_samples, n_train, n_test, n_features, rank,
                          n_alphas_batch, n_folds, n_alphas, gpu):
    """Targets per batch so that the per-batch float32 work arrays fit the budget."""
    # Per target: the validation predictions of an alpha batch and the
    # validation rows; the training rows and Z = U^T Ytrain; the batch of Y
    # and its centred copy for the refit; the refit's Z, weights and
    # products (~4 x rank) and coefficients; the fold scores.
    per_target = 4 * (n_test * (n_alphas_batch + 1) + n_train + rank
                      + 2 * n_samples + 4 * rank + n_features + n_folds * n_alphas)
    budget = _BATCH_BYTES_GPU if gpu else _BATCH_BYTES_CPU
    return max(64, budget // per_target)


def _matmul(backend, a, b, out):
    """``a @ b`` written into the preallocated ``out`` where the backend allows.

    Reusing buffers across folds and batches avoids re-faulting hundreds of
    MB of fresh pages per product (~10% of the sweep on CPU).
    """
    if backend.name == "numpy":
        return np.matmul(a, b, out=out)
    if backend.name.startswith("torch"):
        import torch

        return torch.matmul(a, b, out=out)
    return a @ b


def _take_rows(backend, a, idx, out):
    """``a[idx]`` (rows), written into ``out`` where the backend allows."""
    if backend.name == "numpy":
        # Fancy indexing was 4x faster than np.take(..., out=) on a column
        # slice of Y; its allocation is small enough for malloc to recycle.
        return a[idx]
    if backend.name.startswith("torch"):
        import torch

        return torch.index_select(a, 0, idx, out=out)
    return a[idx]


def _sum_squares_axis1(backend, P):
    """Sum of squares over axis 1 of a 3-D array, which may be overwritten."""
    if backend.name == "numpy":
        # one read pass, no temporary (P *= P; P.sum(1) takes two passes)
        return np.einsum("aij,aij->aj", P, P)
    P *= P
    return P.sum(1)


def _view(buf, shape):
    """A C-contiguous array of ``shape`` at the start of the flat buffer ``buf``."""
    return buf[: math.prod(shape)].reshape(shape)


def _select_alphas(scores, alphas32):
    """himalaya's rule: mean over folds in float64, rounded to float32, plus a
    tiny slope towards large alphas, then the first maximum."""
    mean = scores.mean(0, dtype=np.float64).astype(np.float32)
    slope = np.log(alphas32) * np.float32(1e-10)
    best = np.argmax(mean + slope[:, None], axis=0)
    return best, np.take_along_axis(mean, best[None], 0)[0].astype(np.float64)


_F32 = np.finfo(np.float32)


# Largest magnitudes of a (centred) target that the float32 sweep takes as
# they are: squared residuals summed over folds stay far from float32's
# overflow (3.4e38) and underflow (1.2e-38) thresholds.
_SAFE_RANGE = (2.0**-40, 2.0**40)


def _target_scales(Y_np, fit_intercept):
    """Power-of-two scale per target, or None when every target is in the safe range."""
    hi = Y_np.max(0).astype(np.float64)
    lo = Y_np.min(0).astype(np.float64)
    size = (hi - lo) if fit_intercept else np.maximum(np.abs(hi), np.abs(lo))
    safe = (size == 0) | ((size > _SAFE_RANGE[0]) & (size < _SAFE_RANGE[1]))
    if fit_intercept and np.all(safe):
        # float32 must also hold the raw values to centre them after the cast
        safe &= np.maximum(np.abs(hi), np.abs(lo)) < _F32.max
    if np.all(safe):
        return None
    return np.where(safe | (size == 0), 1.0, np.exp2(np.round(np.log2(np.where(size > 0, size, 1.0)))))


def _unscale(B, coef_b, y_mean64, x_mean, scale, y_mean_scaled):
    """Coefficients and intercepts of the original targets from those of Y / scale."""
    coef64 = B.to_numpy(coef_b).astype(np.float64) * scale
    intercept64 = np.zeros(coef64.shape[1])
    if y_mean64 is not None:
        # y_mean_scaled is ~0 here: the batch was centred in float64 already
        offset = B.to_numpy(y_mean_scaled).astype(np.float64) * scale
        intercept64 = y_mean64 + offset - B.to_numpy(x_mean).astype(np.float64) @ coef64
    if not (np.all(np.abs(coef64) <= _F32.max) and np.all(np.abs(intercept64) <= _F32.max)):
        raise ValueError(
            "y is too large for the float32 model: its coefficients or intercepts exceed "
            f"{_F32.max:.3g}; divide y by a constant (and the predictions by the same) first."
        )
    return coef64.astype(np.float32), intercept64.astype(np.float32)


def solve_ridge_cv(X, Y, alphas, *, cv=5, fit_intercept=True, solver="auto",
                   n_targets_batch=None, n_alphas_batch=None, refit=True,
                   backend="numpy", progress_bar=False):
    """Ridge regression with one alpha per target, chosen by cross-validation.

    Solves, for each target ``j``, ``min_b ||X b - Y[:, j]||^2 + alpha_j ||b||^2``
    (plus an unpenalised intercept if ``fit_intercept``), where ``alpha_j``
    is the alpha with the best mean validation score over the folds of
    ``cv``. See the module docstring for the algorithm.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Features, finite (converted to float32, the model's precision).
    Y : array-like of shape (n_samples, n_targets)
        Targets, finite (converted to float32 batch by batch; a float64
        array is never copied whole).
    alphas : array-like of shape (n_alphas,)
        Positive regularisation strengths to try.
    cv : int, cross-validation generator or iterable, default=5
        Anything :func:`sklearn.model_selection.check_cv` takes; an int is
        ``KFold(cv)`` without shuffling.
    fit_intercept : bool, default=True
        Centre features and targets on the training samples of each fold
        (and of the refit), i.e. fit an unpenalised intercept.
    solver : {"auto", "primal", "kernel"}, default="auto"
        ``"primal"`` diagonalises each training set through its p x p Gram
        matrix (cost O(n p^2 + p^3)), ``"kernel"`` through the n x n linear
        kernel ``X X^T``, computed once for all folds (cost O(n^2 p + n^3);
        cheaper when n_features > n_samples). ``"auto"`` picks ``"primal"``
        when n_features <= n_samples. Both give the same model.
    n_targets_batch : int or None, default=None
        Targets processed at once. None bounds the work memory to about
        128 MB on CPU (2 GB on GPU).
    n_alphas_batch : int or None, default=None
        Alphas whose validation predictions are held at once; None: all.
    refit : bool, default=True
        Refit the weights on all samples with the selected alphas.
    backend : str or module, default="numpy"
        A himalaya backend name (see :func:`resolve_backend`; ``"auto"``
        measures the faster CPU backend on first use) or module.
    progress_bar : bool, default=False
        Show a tqdm progress bar over target batches.

    Returns
    -------
    result : RidgeCVResult
        Named tuple ``(best_alphas, coef, intercept, cv_scores, solver)``.

    Examples
    --------
    >>> import numpy as np
    >>> from skvem.encoding._ridge_solver import solve_ridge_cv
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((60, 5))
    >>> Y = X @ rng.standard_normal((5, 3)) + rng.standard_normal((60, 3))
    >>> res = solve_ridge_cv(X, Y, alphas=[0.1, 10.0, 1000.0])
    >>> res.coef.shape, res.best_alphas.shape
    ((5, 3), (3,))
    """
    X = np.asarray(X, dtype=np.float32)
    if not X.flags.writeable:
        X = np.array(X)  # see the note on read-only Y below
    Y = np.asarray(Y)
    if Y.ndim != 2 or X.ndim != 2 or X.shape[0] != Y.shape[0]:
        raise ValueError(
            f"X (n_samples, n_features) and Y (n_samples, n_targets) must be 2-D "
            f"with the same rows; got {X.shape} and {Y.shape}."
        )
    alphas = check_alphas(alphas)
    alphas32 = alphas.astype(np.float32)
    n_samples, n_features = X.shape
    n_targets = Y.shape[1]
    n_alphas = alphas.shape[0]
    backend = resolve_backend(backend, shape=(n_samples, n_features, n_targets))

    if solver == "auto":
        solver = "primal" if n_features <= n_samples else "kernel"
    if solver not in ("primal", "kernel"):
        raise ValueError(f"solver must be 'auto', 'primal' or 'kernel'; got {solver!r}.")
    n_alphas_batch = n_alphas if n_alphas_batch is None else min(int(n_alphas_batch), n_alphas)

    splits = check_splits(cv, X)
    n_folds = len(splits)

    # ------------------------------------------------------------ decompose
    # The decompositions are small (p x p Gram or n x n kernel) and are done
    # in float64: more accurate than a float32 SVD, and faster on CPU (a
    # Gram product plus eigh ran 2-7x faster than scipy's float32 gesdd on
    # 1600 x 512). Every product with Y, the bulk of the work, is float32.
    B = backend
    X64 = B.asarray(X, dtype="float64")
    x_mean = None
    if fit_intercept:
        # Ridge with an intercept does not depend on a global shift of X;
        # removing it first keeps the kernel free of cancellation.
        x_mean = X64.mean(0)
        X64 = X64 - x_mean
        x_mean = _as32(B, x_mean)
    K = X64 @ X64.T if solver == "kernel" else None

    folds = []
    for train, test in splits:
        tr = B.asarray(train)
        te = B.asarray(test)
        if solver == "primal":
            dec = _decompose_primal(B, X64[tr], X64[te], fit_intercept, want_V=False)
        else:
            dec = _decompose_kernel(B, K[tr][:, tr], K[te][:, tr], fit_intercept,
                                    n_features)
        folds.append((tr, te, dec, _alpha_weights(B, dec.s, alphas)))

    full = None
    if refit:
        # X64 is already centred on all samples (the refit training set).
        if solver == "primal":
            full = _decompose_primal(B, X64, None, False, want_V=True)
        else:
            full = _decompose_kernel(B, K, None, False, n_features, X_for_V=X64)
        full_weights = _alpha_weights(B, full.s, alphas)
    del K, X64

    rank = max(f[2].U.shape[1] for f in folds)
    max_test = max(len(te) for _, te in splits)
    if n_targets_batch is None:
        n_targets_batch = _auto_n_targets_batch(
            n_samples, max(len(tr) for tr, _ in splits), max_test, n_features,
            rank, n_alphas_batch, n_folds, n_alphas, _on_gpu(B))
    n_targets_batch = int(min(n_targets_batch, n_targets))

    # -------------------------------------------------------------- sweep
    best_alphas = np.empty(n_targets, dtype=np.float64)
    cv_scores = np.empty(n_targets, dtype=np.float64)
    coef = np.empty((n_features, n_targets), dtype=np.float32) if refit else None
    intercept = np.zeros(n_targets, dtype=np.float32) if refit else None

    # Work buffers, reused by every fold and batch (see _matmul).
    ref = folds[0][3]  # a float32 array on the backend's device
    max_train = max(len(tr) for tr, _ in splits)
    buf_P = B.zeros_like(ref, shape=(n_alphas_batch * max_test * n_targets_batch,))
    buf_Ytr = B.zeros_like(ref, shape=(max_train * n_targets_batch,))
    buf_Z = B.zeros_like(ref, shape=(rank * n_targets_batch,))

    batches = progress(range(0, n_targets, n_targets_batch), verbose=progress_bar,
                       desc="VoxelRidgeCV target batches", unit="batch")
    for start in batches:
        sl = slice(start, min(start + n_targets_batch, n_targets))
        Y_np = Y[:, sl]
        scale = _target_scales(Y_np, fit_intercept)
        y_mean64 = None
        if scale is not None:
            # Rare: targets whose float32 squares would overflow or underflow
            # (or that float32 cannot hold). Centre in float64 and solve for
            # Y / scale, which the model maps back exactly (scale is a power of 2).
            Y_np = np.array(Y_np, dtype=np.float64)
            if fit_intercept:
                y_mean64 = Y_np.mean(0)
                Y_np -= y_mean64
            Y_np /= scale
        elif B.name != "numpy" and not Y_np.flags.writeable:
            # torch warns on read-only arrays (e.g. memory maps); we never
            # write to Y, but a batch copy keeps the warning away.
            Y_np = np.array(Y_np)
        Yb = B.asarray(Y_np, dtype="float32")
        n_b = Yb.shape[1]
        if fit_intercept:
            # Centre the batch once: the model does not depend on a global
            # shift of Y, and this keeps the float32 products away from a
            # large baseline (raw BOLD sits at ~1e3-1e4). The refit reuses it.
            y_mean = Yb.mean(0)
            Yb = Yb - y_mean
        scores = B.zeros_like(Yb, shape=(n_folds, n_alphas, n_b))
        for f, (tr, te, dec, weights) in enumerate(folds):
            n_tr, n_te, r = len(tr), len(te), dec.U.shape[1]
            Ytr = _take_rows(B, Yb, tr, _view(buf_Ytr, (n_tr, n_b)))
            Z = _matmul(B, dec.U.T, Ytr, _view(buf_Z, (r, n_b)))
            Yte = Yb[te]
            if fit_intercept:
                # Xtrain is centred on the training mean, so U^T 1 = 0 and
                # Z = U^T Ytrain needs no centring of Ytrain; the validation
                # rows are centred on the training mean like in a refit.
                Yte -= Ytr.mean(0)
            for a0 in range(0, n_alphas, n_alphas_batch):
                ab = slice(a0, min(a0 + n_alphas_batch, n_alphas))
                w = weights[ab]
                n_a = w.shape[0]
                # All alphas of the batch in one GEMM: stack C diag(w_a).
                A = (w[:, None, :] * dec.C[None, :, :]).reshape(n_a * n_te, r)
                P = _matmul(B, A, Z, _view(buf_P, (n_a * n_te, n_b)))
                P = P.reshape(n_a, n_te, n_b)
                P -= Yte[None]
                scores[f, ab] = _sum_squares_axis1(B, P) * (-1.0 / n_te)
                del A, P
            del Ytr, Yte, Z
        best, cv_best = _select_alphas(B.to_numpy(scores), alphas32)
        best_alphas[sl] = alphas[best]
        cv_scores[sl] = cv_best if scale is None else cv_best * scale**2

        if refit:
            Z = full.U.T @ Yb  # Yb is centred when fit_intercept
            w_sel = full_weights[B.asarray(best)].T  # (rank, n_b)
            coef_b = full.C @ (w_sel * Z)
            if scale is None:
                coef[:, sl] = B.to_numpy(coef_b)
                if fit_intercept:
                    intercept[sl] = B.to_numpy(y_mean - x_mean @ coef_b)
            else:
                coef[:, sl], intercept[sl] = _unscale(
                    B, coef_b, y_mean64, x_mean, scale, y_mean if fit_intercept else None)
            del Z, w_sel, coef_b
        del Yb, scores

    return RidgeCVResult(best_alphas, coef, intercept, cv_scores, solver)
