"""Data sets: a synthetic one with known ground truth, and loaders of real ones.

* :func:`make_scenes` draws synthetic scenes with descriptions and simulated
  voxel responses (offline, seconds on a laptop).
* :func:`load_algonauts2023` reads the Algonauts 2023 challenge layout and
  :func:`write_algonauts_submission` writes predictions for it.
* :func:`load_nsd` reads the Natural Scenes Dataset from its own files.
"""

from skvem.datasets._algonauts import load_algonauts2023
from skvem.datasets._algonauts_submission import write_algonauts_submission
from skvem.datasets._nsd import load_nsd
from skvem.datasets.scenes import make_scenes

__all__ = ["make_scenes", "load_algonauts2023", "write_algonauts_submission", "load_nsd"]
