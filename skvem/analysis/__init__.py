"""Questions asked of fitted encoding models: what does each feature space add, and is it real.

* :func:`variance_partitioning` -- per-voxel unique and shared cross-validated
  explained variance of 2 or 3 feature spaces (Venn partition), with
  :func:`roi_summary` for per-ROI means;
* :func:`paired_difference` -- model A versus model B on the same test images,
  per ROI, with a bootstrap confidence interval over the images.
"""

from skvem.analysis.paired import paired_difference
from skvem.analysis.variance_partitioning import roi_summary, variance_partitioning

__all__ = ["paired_difference", "roi_summary", "variance_partitioning"]
