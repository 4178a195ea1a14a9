"""Order of the examples in the gallery: from first steps to real data.

Kept in an importable module (not in ``conf.py``) because sphinx-gallery
pickles its configuration and refers to callables by qualified name.
"""

_FIRST = (
    "plot_quickstart.py",
    "plot_alignment_sweep.py",
    "plot_text_targets.py",
    "plot_himalaya_dropin.py",
    "plot_algonauts.py",
)


def example_order(filename):
    """Sort key: the examples listed above in that order, then the rest by name."""
    name = str(filename).rsplit("/", 1)[-1]
    rank = _FIRST.index(name) if name in _FIRST else len(_FIRST)
    return (rank, name)
