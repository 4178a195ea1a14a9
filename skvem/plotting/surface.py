"""Algonauts challenge-space values on nilearn's bundled fsaverage5 surface.

The Algonauts 2023 vertices are a subset of FreeSurfer's fsaverage (163,842
vertices per hemisphere), given by ``roi_masks/{lh,rh}.all-vertices_fsaverage_space.npy``.
fsaverage is an icosahedron subdivided seven times and fsaverage5 the same one
subdivided five times, and each subdivision keeps the earlier vertices first:
fsaverage's vertices 0-10,241 *are* fsaverage5's, at the same places. So a
challenge vertex with an fsaverage index below 10,242 is drawn at that
fsaverage5 vertex, and the others (about 15 of every 16) are left out:
decimation, not smoothing. nilearn ships fsaverage5 in its wheel, so nothing
is downloaded.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np

from skvem._utils.validation import _as_float_array, check_finite
from skvem.plotting._stats import require

__all__ = ["to_fsaverage5", "plot_surface_scores", "FSAVERAGE_N", "FSAVERAGE5_N"]

FSAVERAGE_N = 163842  # vertices per hemisphere of fsaverage (ico7)
FSAVERAGE5_N = 10242  # ... and of fsaverage5 (ico5), its first vertices
_HEMISPHERES = (("lh", "left"), ("rh", "right"))


def _mesh_size(data, hemi, vertices):
    sizes = data.get("fsaverage_n_vertices") or {}
    size = sizes.get(hemi)
    if size is None:
        # A hand-made ``data`` without mask sizes: the indices must fit fsaverage.
        size = FSAVERAGE5_N if vertices.max(initial=-1) < FSAVERAGE5_N else FSAVERAGE_N
    if size not in (FSAVERAGE_N, FSAVERAGE5_N):
        raise ValueError(
            f"the {hemi} fsaverage mask (roi_masks/{hemi}.all-vertices_fsaverage_space.npy) has "
            f"{size} entries; expected {FSAVERAGE_N} (fsaverage) or {FSAVERAGE5_N} (fsaverage5)"
        )
    if vertices.size and (vertices.min() < 0 or vertices.max() >= size):
        raise ValueError(f"data's {hemi} fsaverage_vertices must lie in [0, {size})")
    return size


def to_fsaverage5(values, data):
    """Place one value per challenge vertex on the fsaverage5 vertices.

    Parameters
    ----------
    values : array-like of shape (n_lh + n_rh,)
        One value per column of ``data.fmri`` (left then right hemisphere),
        e.g. per-vertex scores. NaN values are left blank.
    data : dict or Bunch
        :func:`~skvem.datasets.load_algonauts2023`'s output, or any mapping
        with ``hemisphere_slices`` and ``fsaverage_vertices`` (and optionally
        ``fsaverage_n_vertices``, the length of each hemisphere's mask).

    Returns
    -------
    textures : dict
        ``{"left": ndarray of shape (10242,), "right": ...}``: the value of
        every fsaverage5 vertex that is a challenge vertex, NaN elsewhere.

    Raises
    ------
    ValueError
        When ``data`` has no fsaverage masks, the masks are neither fsaverage
        (163,842) nor fsaverage5 (10,242) long, or ``values`` has the wrong
        length.

    Examples
    --------
    >>> import numpy as np
    >>> from skvem.plotting import to_fsaverage5
    >>> data = {"hemisphere_slices": {"lh": slice(0, 2), "rh": slice(2, 3)},
    ...         "fsaverage_vertices": {"lh": np.array([5, 20000]), "rh": np.array([7])},
    ...         "fsaverage_n_vertices": {"lh": 163842, "rh": 163842}}
    >>> tex = to_fsaverage5([0.1, 0.2, 0.3], data)
    >>> tex["left"].shape, float(tex["left"][5]), int(np.isfinite(tex["left"]).sum())
    ((10242,), 0.1, 1)
    """
    if not isinstance(data, Mapping) or "hemisphere_slices" not in data:
        raise ValueError(
            "data must be load_algonauts2023(...)'s output (a mapping with hemisphere_slices "
            f"and fsaverage_vertices); got {type(data).__name__}"
        )
    vertices = data.get("fsaverage_vertices")
    if vertices is None:
        raise ValueError(
            "data has no fsaverage_vertices: the surface map needs the files "
            "roi_masks/{lh,rh}.all-vertices_fsaverage_space.npy of the Algonauts layout"
        )
    slices = data["hemisphere_slices"]
    n_columns = max(s.stop for s in slices.values())
    values = _as_float_array(values, name="values", dtype=np.float64)
    check_finite(values, name="values", allow_nan=True)
    if values.shape != (n_columns,):
        raise ValueError(
            f"values must hold one number per vertex of data ({n_columns} = lh + rh); "
            f"got shape {values.shape}"
        )
    textures = {}
    for hemi, side in _HEMISPHERES:
        idx = np.asarray(vertices[hemi], dtype=np.int64).reshape(-1)
        own = values[slices[hemi]]
        if idx.shape != own.shape:
            raise ValueError(
                f"data's {hemi} fsaverage_vertices has {idx.size} entries but the {hemi} "
                f"hemisphere has {own.size} columns"
            )
        _mesh_size(data, hemi, idx)
        keep = idx < FSAVERAGE5_N
        texture = np.full(FSAVERAGE5_N, np.nan)
        texture[idx[keep]] = own[keep]
        textures[side] = texture
    return textures


def _colour_range(textures, vmin, vmax):
    finite = np.concatenate([t[np.isfinite(t)] for t in textures.values()])
    if finite.size == 0:
        return (0.0 if vmin is None else vmin), (1.0 if vmax is None else vmax), False
    signed = finite.min() < 0
    if vmax is None:
        vmax = float(np.abs(finite).max()) if signed else float(finite.max())
        vmax = vmax if vmax > 0 else 1.0
    if vmin is None:
        vmin = -vmax if signed else 0.0
    return float(vmin), float(vmax), signed


def plot_surface_scores(values, data, *, views=("lateral", "medial", "ventral"),
                        surface="inflated", cmap=None, vmin=None, vmax=None, threshold=None,
                        colorbar_label="score", title=None):
    """Draw one value per Algonauts vertex on both hemispheres of fsaverage5.

    The values are placed with :func:`to_fsaverage5` (challenge vertices that
    are fsaverage5 vertices; the rest are left out) and drawn with
    :func:`nilearn.plotting.plot_surf_stat_map` over the sulcal depth, one
    row per view and one column per hemisphere, with one shared colour bar.
    Vertices outside the challenge space (and NaN values) stay grey.

    Parameters
    ----------
    values : array-like of shape (n_lh + n_rh,)
        One value per column of ``data.fmri``, left then right hemisphere.
    data : dict or Bunch
        ``load_algonauts2023(root, subject)`` (it needs the
        ``all-vertices_fsaverage_space`` masks).
    views : sequence of str, default=("lateral", "medial", "ventral")
        nilearn views (``"lateral"``, ``"medial"``, ``"dorsal"``,
        ``"ventral"``, ``"anterior"``, ``"posterior"``).
    surface : {"inflated", "pial", "white_matter", "sphere", "flat"}, default="inflated"
        Which fsaverage5 mesh to draw on.
    cmap : str or Colormap, optional
        Default ``"inferno"`` for values that are all >= 0, else ``"RdBu_r"``
        centred on 0.
    vmin, vmax : float, optional
        Colour range, shared by both hemispheres; default 0 (or ``-vmax`` for
        signed values) to the largest (absolute) value.
    threshold : float, optional
        Hide vertices whose absolute value is below it.
    colorbar_label : str, default="score"
    title : str, optional

    Returns
    -------
    fig : matplotlib.figure.Figure
        ``len(views) x 2`` 3-D axes and a colour bar.

    Raises
    ------
    ValueError
        As :func:`to_fsaverage5`, or for an unknown ``surface``.
    ImportError
        When matplotlib or nilearn is missing (the ``plotting`` extra).

    Examples
    --------
    >>> import numpy as np
    >>> from skvem.plotting import plot_surface_scores
    >>> data = {"hemisphere_slices": {"lh": slice(0, 3), "rh": slice(3, 6)},
    ...         "fsaverage_vertices": {"lh": np.arange(3), "rh": np.arange(3)}}
    >>> fig = plot_surface_scores(np.linspace(0, 1, 6), data, views=["lateral"])
    >>> len(fig.axes)  # two hemispheres and the colour bar
    3
    """
    plt = require("matplotlib.pyplot")
    require("nilearn")
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from nilearn import datasets as nilearn_datasets
    from nilearn import plotting as nilearn_plotting

    views = [views] if isinstance(views, str) else list(views)
    if not views:
        raise ValueError("views must name at least one view, e.g. ['lateral', 'ventral']")
    meshes = nilearn_datasets.load_fsaverage("fsaverage5")
    if surface not in meshes or surface == "description":
        raise ValueError(
            f"surface must be one of {[k for k in meshes if k != 'description']}; got {surface!r}"
        )
    textures = to_fsaverage5(values, data)
    if not any(np.isfinite(t).any() for t in textures.values()):
        warnings.warn(
            "no challenge vertex with a finite value is an fsaverage5 vertex (fsaverage index "
            f"below {FSAVERAGE5_N}); the surface map is empty", stacklevel=2,
        )
    vmin, vmax, signed = _colour_range(textures, vmin, vmax)
    cmap = cmap if cmap is not None else ("RdBu_r" if signed else "inferno")
    sulcal = nilearn_datasets.load_fsaverage_data(mesh="fsaverage5", data_type="sulcal")

    fig, axes = plt.subplots(len(views), 2, figsize=(6.4, 2.5 * len(views) + 0.6),
                             subplot_kw={"projection": "3d"}, squeeze=False)
    for row, view in enumerate(views):
        for col, (_, side) in enumerate(_HEMISPHERES):
            with warnings.catch_warnings():
                # A hemisphere without values draws as background; we warned above.
                warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)
                nilearn_plotting.plot_surf_stat_map(
                    meshes[surface].parts[side], textures[side], hemi=side, view=view,
                    bg_map=sulcal.data.parts[side], cmap=cmap, vmin=vmin, vmax=vmax,
                    symmetric_cbar=False, threshold=threshold, colorbar=False,
                    axes=axes[row, col], figure=fig,
                )
            axes[row, col].set_title(f"{side} {view}", fontsize="small")
    fig.subplots_adjust(left=0, right=0.83, bottom=0, top=0.93 if title else 0.97,
                        wspace=0, hspace=0.05)
    bar_ax = fig.add_axes([0.85, 0.2, 0.025, 0.6])
    fig.colorbar(ScalarMappable(Normalize(vmin, vmax), cmap=cmap), cax=bar_ax,
                 label=colorbar_label)
    if title is not None:
        fig.suptitle(title)
    return fig
