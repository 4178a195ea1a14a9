"""Features to voxels: :class:`VoxelRidgeCV`.

This public module path is kept stable; the code lives in :mod:`skvem.encoding.ridge`.
"""

from skvem.encoding.ridge import VoxelRidgeCV, DEFAULT_ALPHAS

__all__ = ["VoxelRidgeCV", "DEFAULT_ALPHAS"]
