"""Step 4 of LLM-VEM: features to voxels with voxelwise ridge regression on himalaya.

:class:`~skvem.encoding.ridge.VoxelRidgeCV` is a thin estimator over the pure
solver :func:`~skvem.encoding._ridge_solver.solve_ridge_cv`;
:class:`~skvem.encoding.banded.BandedVoxelRidgeCV` (one penalty per feature space
and voxel) over :func:`~skvem.encoding._banded_solver.solve_banded_ridge_cv`, fed
by :class:`~skvem.encoding.feature_spaces.FeatureSpaces` (several featurizers side by side);
:mod:`skvem.dropin`'s himalaya-compatible kernel ridge over
:func:`~skvem.encoding._kernel_solver.solve_kernel_ridge_cv`.
"""

from skvem.encoding._banded_solver import solve_banded_ridge_cv
from skvem.encoding._kernel_solver import solve_kernel_ridge_cv
from skvem.encoding._ridge_solver import solve_ridge_cv
from skvem.encoding.banded import BandedVoxelRidgeCV
from skvem.encoding.feature_spaces import FeatureSpaces
from skvem.encoding.ridge import VoxelRidgeCV

__all__ = ["BandedVoxelRidgeCV", "FeatureSpaces", "VoxelRidgeCV", "solve_banded_ridge_cv",
           "solve_kernel_ridge_cv", "solve_ridge_cv"]
