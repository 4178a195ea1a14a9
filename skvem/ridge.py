"""Features to voxels: :class:`VoxelRidgeCV`, :class:`BandedVoxelRidgeCV`.

This public module path is kept stable; the code lives in :mod:`skvem.encoding.ridge` and :mod:`skvem.encoding.banded`.
"""

from skvem.encoding.ridge import VoxelRidgeCV, DEFAULT_ALPHAS
from skvem.encoding.banded import BandedVoxelRidgeCV

__all__ = ["VoxelRidgeCV", "BandedVoxelRidgeCV", "DEFAULT_ALPHAS"]
