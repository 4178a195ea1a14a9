"""Column blocks that bound the memory of per-voxel computations."""

__all__ = ["BLOCK_ELEMENTS", "voxel_blocks"]

#: Float64 elements per temporary block (~32 MB each): whole-brain arrays
#: (tens of thousands of voxels) never need a full float64 copy.
BLOCK_ELEMENTS = 1 << 22


def voxel_blocks(n_rows, n_voxels):
    """Slices of at most ``BLOCK_ELEMENTS // n_rows`` voxels covering ``range(n_voxels)``."""
    step = max(1, BLOCK_ELEMENTS // max(n_rows, 1))
    for start in range(0, n_voxels, step):
        yield slice(start, min(start + step, n_voxels))
