"""Score against training-set size, one line per model, with confidence bands."""

from __future__ import annotations

from numbers import Real

import numpy as np

from skvem.plotting._stats import check_confidence, check_nested_scores, require, summarise

__all__ = ["plot_learning_curve"]


def plot_learning_curve(curves, *, confidence=0.95, xlabel="training images", ylabel="score",
                        logx=False, title=None, ax=None):
    """Learning curves: mean score against training-set size, with confidence bands.

    Parameters
    ----------
    curves : dict of str -> dict of int -> array-like
        ``{model: {n_train: values}}``: one score per fold or seed for every
        model and training-set size. NaN values are left out.
    confidence : float, default=0.95
        Coverage of the bands: Student-t intervals of the mean over the values
        (see :func:`~skvem.plotting.mean_confidence_interval`). A size with a
        single value gets no band.
    xlabel, ylabel : str
    logx : bool, default=False
        Logarithmic x axis (for sizes that double).
    title : str, optional
    ax : matplotlib Axes, optional
        Draw into this axes; default a new figure.

    Returns
    -------
    fig : matplotlib.figure.Figure

    Raises
    ------
    ValueError
        When ``curves`` is not ``{model: {n_train: values}}`` with positive
        sizes and finite values.

    Examples
    --------
    >>> from skvem.plotting import plot_learning_curve
    >>> fig = plot_learning_curve({"aligned": {100: [0.10, 0.12], 200: [0.18, 0.20]},
    ...                            "no language": {100: [0.08, 0.09], 200: [0.15, 0.16]}})
    >>> len(fig.axes[0].lines)
    2
    """
    plt = require("matplotlib.pyplot")
    confidence = check_confidence(confidence)
    curves = check_nested_scores(curves, name="curves", inner="n_train")
    for model, per_size in curves.items():
        bad = [n for n in per_size
               if not isinstance(n, Real) or isinstance(n, bool) or not np.isfinite(n) or n <= 0]
        if bad:
            raise ValueError(f"curves[{model!r}] has training sizes {bad}; sizes must be positive")

    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 3.6), layout="constrained")
    else:
        fig = ax.figure
    for model, per_size in curves.items():
        sizes = sorted(per_size)
        means, halves = summarise({model: per_size}, sizes, confidence)
        means, halves = means[0], halves[0]
        (line,) = ax.plot(sizes, means, marker="o", label=model)
        ok = np.isfinite(halves)
        if ok.any():
            ax.fill_between(np.asarray(sizes, dtype=float)[ok], (means - halves)[ok],
                            (means + halves)[ok], color=line.get_color(), alpha=0.2, linewidth=0)
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title is not None:
        ax.set_title(title)
    ax.legend(frameon=False, fontsize="small",
              title=f"bands: {100 * confidence:g}% t-interval", title_fontsize="x-small")
    return fig
