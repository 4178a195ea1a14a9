"""The random search over feature-space (kernel) weights shared by banded ridge.

Banded ridge in feature form (:func:`skvem.encoding._banded_solver.solve_banded_ridge_cv`)
and in kernel form (:func:`skvem.encoding._multiple_kernel_solver.solve_multiple_kernel_ridge_cv`)
search the same thing: for each candidate weight vector ``gamma`` on the
simplex, one ridge fit whose alpha is chosen per target by cross-validation;
a target then keeps the candidate with the best score. They differ only in
how one candidate is fitted (scaled features through
:func:`~skvem.encoding._ridge_solver.solve_ridge_cv`, or a weighted sum of
kernels through :func:`~skvem.encoding._kernel_solver.solve_kernel_ridge_cv`),
which :func:`search_gammas` takes as a function.

The candidates and the selection are himalaya's
(:func:`himalaya.kernel_ridge.solve_multiple_kernel_ridge_random_search`), so
that skvem and himalaya choose the same weights from the same samples.
"""

from typing import Callable, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from skvem._utils.progress import progress

__all__ = ["DEFAULT_CONCENTRATION", "GammaSearchResult", "candidate_gammas", "search_gammas"]

#: himalaya's default concentrations of the Dirichlet distribution: mostly
#: near-corner samples (one space dominates) alternating with spread ones.
DEFAULT_CONCENTRATION = (0.1, 1.0)


def candidate_gammas(n_iter, n_spaces, *, concentration=DEFAULT_CONCENTRATION,
                     random_state=None):
    """Feature-space weights to try: himalaya's samples, the first one uniform.

    Parameters
    ----------
    n_iter : int or array-like of shape (n_gammas, n_spaces)
        Number of random samples on the simplex, or the weights themselves
        (each row non-negative; used as given, as in himalaya).
    n_spaces : int
        Number of feature spaces.
    concentration : float or sequence of float, default=(0.1, 1.0)
        Dirichlet concentrations, cycled through (himalaya's default).
    random_state : int, RandomState instance or None, default=None
        Seed of the samples.

    Returns
    -------
    gammas : ndarray of shape (n_gammas, n_spaces), float64
    """
    from himalaya.kernel_ridge import generate_dirichlet_samples

    if np.ndim(n_iter) == 0:
        gammas = np.asarray(generate_dirichlet_samples(
            n_samples=int(n_iter), n_kernels=n_spaces,
            concentration=list(np.atleast_1d(concentration)),
            random_state=random_state), dtype=np.float64)
        gammas[0] = 1.0 / n_spaces  # himalaya always tries the uniform weights first
        return gammas
    gammas = np.asarray(n_iter, dtype=np.float64)
    if gammas.ndim != 2 or gammas.shape[1] != n_spaces or gammas.shape[0] == 0:
        raise ValueError(
            f"n_iter must be an int or an array of shape (n_gammas, n_spaces={n_spaces}); "
            f"got shape {gammas.shape}."
        )
    if not np.all(np.isfinite(gammas)) or np.any(gammas < 0) or np.any(gammas.sum(1) <= 0):
        raise ValueError("n_iter (the feature-space weights) must be finite, >= 0, "
                         "with a positive sum in every row.")
    return gammas


class GammaSearchResult(NamedTuple):
    """What :func:`search_gammas` returns (numpy arrays)."""

    deltas: np.ndarray  #: (n_spaces, n_targets) float64, log(gamma / alpha) of the winner
    best_gammas: np.ndarray  #: (n_spaces, n_targets) float64, the winning weights
    best_alphas: np.ndarray  #: (n_targets,) the winning alphas, dtype of the fits'
    cv_scores: np.ndarray  #: (n_gammas, n_targets) every candidate's best-alpha score
    weights: Tuple[Optional[np.ndarray], ...]  #: the winners' columns of each fitted array


def search_gammas(gammas: np.ndarray,
                  fit: Callable[[np.ndarray], Tuple[np.ndarray, np.ndarray, Sequence]],
                  n_targets: int, *, local_alpha: bool = True, desc: Optional[str] = None,
                  progress_bar: bool = False) -> GammaSearchResult:
    """Per-target choice of feature-space weights among ``gammas``, by himalaya's rule.

    Candidates are fitted in order; a target switches to candidate ``i``
    only if its score beats the best earlier one by more than the float32
    epsilon, so exact or rounding-level ties keep the earliest candidate
    (the uniform weights come first).

    Parameters
    ----------
    gammas : ndarray of shape (n_gammas, n_spaces)
        Candidate weights, e.g. from :func:`candidate_gammas`.
    fit : callable
        ``fit(gamma) -> (cv_scores, best_alphas, weights)`` for one weight
        vector ``gamma`` of shape (n_spaces,): the score (n_targets,) of each
        target's best alpha (higher is better), that alpha (n_targets,), and
        a tuple of fitted arrays whose last axis is the targets (an entry may
        be None). Called once per candidate, in order. The comparison runs in
        the dtype of the scores, as the fits return them.
    n_targets : int
        Number of targets.
    local_alpha : bool, default=True
        Choose per target; False: a candidate wins for every target when its
        mean score over targets beats the best earlier mean (himalaya's
        ``local_alpha=False``).
    desc : str or None, default=None
        Label of the progress bar.
    progress_bar : bool, default=False
        Show a tqdm bar over the candidates.

    Returns
    -------
    result : GammaSearchResult
        ``deltas`` (n_spaces, n_targets) = ``log(best_gammas / best_alphas)``
        (``-inf`` for a zero weight, i.e. an infinite penalty);
        ``best_gammas``; ``best_alphas``; ``cv_scores`` (n_gammas, n_targets);
        ``weights``: for each array that ``fit`` returns, the columns of the
        candidate each target chose (zeros if none beat ``-inf``).

    Examples
    --------
    >>> import numpy as np
    >>> from skvem.encoding._random_search import search_gammas
    >>> gammas = np.array([[0.5, 0.5], [1.0, 0.0]])
    >>> fake = {0.5: np.array([0.0, 1.0]), 1.0: np.array([1.0, 1.0])}
    >>> res = search_gammas(gammas, lambda g: (fake[g[0]], np.ones(2), ()), 2)
    >>> res.best_gammas[0].tolist()  # target 1 ties, so it keeps the first
    [1.0, 0.5]
    """
    eps = np.finfo(np.float32).eps
    best_index = np.zeros(n_targets, dtype=np.intp)
    best_scores = best_alphas = cv_scores = kept = None
    for i in progress(range(len(gammas)), verbose=progress_bar, desc=desc):
        scores, alphas, weights = fit(gammas[i])
        if kept is None:
            # Allocated from the first fit: the dtypes are those of the fits.
            best_scores = np.full(n_targets, -np.inf, dtype=scores.dtype)
            best_alphas = np.ones(n_targets, dtype=alphas.dtype)
            cv_scores = np.empty((len(gammas), n_targets), dtype=scores.dtype)
            kept = tuple(None if w is None else np.zeros_like(w) for w in weights)
        cv_scores[i] = scores
        if local_alpha:
            better = scores > best_scores + eps
        else:
            better = np.full(n_targets, scores.mean() > best_scores.mean() + eps)
        best_scores[better] = scores[better]
        best_index[better] = i
        best_alphas[better] = alphas[better]
        for out, w in zip(kept, weights):
            if out is not None:
                out[..., better] = w[..., better]
        # Free this fit's arrays before the next one is computed.
        del scores, alphas, weights

    best_gammas = gammas[best_index].T
    with np.errstate(divide="ignore"):  # a zero weight means an infinite penalty
        deltas = np.log(best_gammas / best_alphas[None, :].astype(np.float64))
    return GammaSearchResult(deltas, best_gammas, best_alphas, cv_scores, kept)
