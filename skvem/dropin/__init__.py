"""himalaya's estimators on skvem's solvers: a one-import-line swap for existing scripts.

:class:`RidgeCV`, :class:`BandedRidgeCV` (alias ``GroupRidgeCV``),
:class:`KernelRidgeCV` and :class:`MultipleKernelRidgeCV` (both banded models
by random search) take himalaya's constructor
arguments (``alphas`` first, ``fit_intercept=False``, ``solver``,
``solver_params``, ``Y_in_cpu``, ``force_cpu``; ``kernel`` and
``kernel_params``) and follow its conventions (``score`` returns one R^2 per
target, outputs are arrays of the active himalaya backend), so that::

    from himalaya.kernel_ridge import KernelRidgeCV

becomes::

    from skvem.dropin import KernelRidgeCV

with nothing else changed. himalaya's kernelizers and ``ColumnTransformerNoStack``,
which transform and fit nothing, are re-exported so that the same line can import them.

These names are not exported from :mod:`skvem` itself: ``RidgeCV`` would
shadow scikit-learn's in ``from skvem import *`` scripts, and skvem's own
estimator (:class:`skvem.VoxelRidgeCV`) keeps scikit-learn's scalar ``score``.
"""

from himalaya.kernel_ridge import ColumnKernelizer, Kernelizer, make_column_kernelizer
from himalaya.ridge import ColumnTransformerNoStack, make_column_transformer_no_stack

from skvem.dropin._banded import BandedRidgeCV, GroupRidgeCV
from skvem.dropin._kernel_ridge import KernelRidgeCV
from skvem.dropin._multiple_kernel import MultipleKernelRidgeCV
from skvem.dropin._ridge import RidgeCV

__all__ = ["BandedRidgeCV", "ColumnKernelizer", "ColumnTransformerNoStack", "GroupRidgeCV",
           "KernelRidgeCV", "Kernelizer", "MultipleKernelRidgeCV", "RidgeCV",
           "make_column_kernelizer", "make_column_transformer_no_stack"]
