"""Per-ROI scores of several models as grouped bars with confidence intervals."""

from __future__ import annotations

import numpy as np

from skvem.plotting._stats import (check_confidence, check_nested_scores, ordered_keys, require,
                                   summarise)

__all__ = ["plot_roi_scores"]


def plot_roi_scores(scores, *, rois=None, confidence=0.95, ylabel="score", title=None, ax=None):
    """Grouped bar chart: one group per ROI, one bar per model, with confidence intervals.

    Parameters
    ----------
    scores : dict of str -> dict of str -> array-like
        ``{model: {roi: values}}``: one score per fold, seed or subject for
        every model and ROI, e.g. the per-fold noise-normalised scores of
        :func:`~skvem.metrics.algonauts_score_voxels` averaged over each ROI's
        voxels. A model may lack an ROI (no bar is drawn there). NaN values
        are left out (e.g. voxels with a zero noise ceiling).
    rois : list of str, optional
        ROIs to draw, in this order; default every ROI in ``scores``, in the
        order they first appear.
    confidence : float, default=0.95
        Coverage of the error bars: Student-t intervals of the mean over the
        values (see :func:`~skvem.plotting.mean_confidence_interval`). A
        single value gets no error bar.
    ylabel : str, default="score"
    title : str, optional
    ax : matplotlib Axes, optional
        Draw into this axes; default a new figure.

    Returns
    -------
    fig : matplotlib.figure.Figure

    Raises
    ------
    ValueError
        When ``scores`` is not ``{model: {roi: values}}`` with finite values,
        or ``rois`` names an ROI no model has.

    Examples
    --------
    >>> from skvem.plotting import plot_roi_scores
    >>> fig = plot_roi_scores({"frozen": {"V1": [20, 24, 22], "FFA": [5, 7, 6]},
    ...                        "aligned": {"V1": [25, 27, 26], "FFA": [12, 15, 11]}},
    ...                       ylabel="noise-normalised score (%)")
    >>> len(fig.axes[0].patches)  # 2 models x 2 ROIs
    4
    """
    plt = require("matplotlib.pyplot")
    confidence = check_confidence(confidence)
    scores = check_nested_scores(scores, name="scores", inner="roi")
    known = ordered_keys(scores)
    if rois is None:
        rois = known
    else:
        rois = [rois] if isinstance(rois, str) else list(rois)
        unknown = [r for r in rois if r not in known]
        if unknown or not rois:
            raise ValueError(f"rois has unknown ROIs {unknown}; the scores have {known}")
    means, halves = summarise(scores, rois, confidence)

    if ax is None:
        width = float(np.clip(1.5 + 0.3 * len(rois) * len(scores) ** 0.5, 4.0, 14.0))
        fig, ax = plt.subplots(figsize=(width, 3.6), layout="constrained")
    else:
        fig = ax.figure
    x = np.arange(len(rois))
    width = 0.8 / len(scores)
    for k, model in enumerate(scores):
        offset = (k - (len(scores) - 1) / 2) * width
        # NaN half-widths (one value) draw no error bar; NaN means no bar.
        ax.bar(x + offset, means[k], width, yerr=halves[k], capsize=3, label=model,
               error_kw={"elinewidth": 1})
    ax.set_xticks(x, rois, rotation=30 if len(rois) > 6 else 0,
                  ha="right" if len(rois) > 6 else "center")
    ax.axhline(0, color="0.3", linewidth=0.8)
    ax.set_ylabel(ylabel)
    n = sorted({v.size for per_roi in scores.values() for v in per_roi.values()})
    n_text = f"n = {n[0]}" if len(n) == 1 else f"n = {n[0]}-{n[-1]}"
    if title is not None:
        ax.set_title(title)
    # Under the ROI names, where no title or legend can collide with it.
    ax.set_xlabel(f"error bars: {100 * confidence:g}% t-interval of the mean, {n_text}",
                  fontsize="x-small", color="0.35")
    if len(scores) > 1:
        ax.legend(frameon=False, fontsize="small")
    return fig
