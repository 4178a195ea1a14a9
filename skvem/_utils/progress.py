"""Progress bars: one switch (``verbose``) for every long loop."""

from __future__ import annotations

from tqdm.auto import tqdm

__all__ = ["progress"]


def progress(iterable=None, *, verbose=False, desc=None, total=None, unit="it", leave=None):
    """Wrap ``iterable`` in a tqdm bar shown only when ``verbose`` is truthy.

    ``verbose`` may be a bool or an int (scikit-learn style); any value > 0
    shows the bar. The bar goes to stderr so it never mixes with results
    printed on stdout.
    """
    return tqdm(
        iterable,
        desc=desc,
        total=total,
        unit=unit,
        disable=not verbose,
        leave=leave,
        dynamic_ncols=True,
    )
