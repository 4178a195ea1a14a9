"""Figures of encoding results: per-ROI bars, brain surface maps, learning curves.

Every function returns a :class:`matplotlib.figure.Figure` (drawn with
pyplot, so notebooks and sphinx-gallery show it). They need the ``plotting``
extra: ``pip install 'skvem[plotting]'`` (matplotlib, and nilearn for the
surface maps).
"""

from skvem.plotting._stats import mean_confidence_interval
from skvem.plotting.learning_curve import plot_learning_curve
from skvem.plotting.roi import plot_roi_scores
from skvem.plotting.surface import plot_surface_scores, to_fsaverage5

__all__ = [
    "mean_confidence_interval",
    "plot_learning_curve",
    "plot_roi_scores",
    "plot_surface_scores",
    "to_fsaverage5",
]
