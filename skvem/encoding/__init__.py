"""Step 4 of LLM-VEM: features to voxels with voxelwise ridge regression on himalaya.

:class:`~skvem.encoding.ridge.VoxelRidgeCV` is a thin estimator over the pure
solver :func:`~skvem.encoding._ridge_solver.solve_ridge_cv`.
"""

from skvem.encoding._ridge_solver import solve_ridge_cv
from skvem.encoding.ridge import VoxelRidgeCV

__all__ = ["VoxelRidgeCV", "solve_ridge_cv"]
