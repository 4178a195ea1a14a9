"""Writing predictions in the Algonauts 2023 submission layout, both files or neither."""

from __future__ import annotations

import os
import shutil
from numbers import Integral

import numpy as np

from skvem.datasets._algonauts import _subject_number

__all__ = ["write_algonauts_submission"]

# Official challenge sizes (Gifford et al., 2023): test images and vertices
# per hemisphere, subjects 1-8. Used by write_algonauts_submission(strict=True).
OFFICIAL_N_TEST = (159, 159, 293, 395, 159, 293, 159, 395)
OFFICIAL_N_LH = (19004, 19004, 19004, 19004, 19004, 18978, 19004, 18981)
OFFICIAL_N_RH = (20544, 20544, 20544, 20544, 20544, 20220, 20544, 20530)


def _hemisphere_slices(split, n_voxels):
    if isinstance(split, Integral) and not isinstance(split, bool):
        n_lh = int(split)
        if not 0 < n_lh < n_voxels:
            raise ValueError(
                f"n_lh={n_lh} must split the {n_voxels} prediction columns into two non-empty parts"
            )
        return slice(0, n_lh), slice(n_lh, n_voxels)
    if isinstance(split, dict) and set(split) >= {"lh", "rh"}:
        lh, rh = split["lh"], split["rh"]
        if not (isinstance(lh, slice) and isinstance(rh, slice)):
            raise ValueError("hemisphere_slices must map 'lh' and 'rh' to slices")
        lh_idx = np.arange(n_voxels)[lh]
        rh_idx = np.arange(n_voxels)[rh]
        if lh_idx.size == 0 or rh_idx.size == 0 or np.intersect1d(lh_idx, rh_idx).size:
            raise ValueError(
                f"hemisphere_slices {split} must select two non-empty, disjoint sets of the "
                f"{n_voxels} prediction columns"
            )
        if lh_idx.size + rh_idx.size != n_voxels:
            raise ValueError(
                f"hemisphere_slices cover {lh_idx.size} + {rh_idx.size} columns but predictions "
                f"have {n_voxels}"
            )
        return lh, rh
    raise ValueError(
        "hemisphere_slices must be a dict {'lh': slice, 'rh': slice} (load_algonauts2023's "
        f"hemisphere_slices) or the number of left-hemisphere vertices; got {split!r}"
    )


def write_algonauts_submission(out_dir, subject, predictions, hemisphere_slices, *, strict=False):
    """Write test-set predictions in the Algonauts 2023 submission layout.

    Parameters
    ----------
    out_dir : str or path-like
        Folder to write into (created if needed); the files go to
        ``out_dir/subjXX/lh_pred_test.npy`` and ``rh_pred_test.npy``.
    subject : int or str
        1 to 8, or ``"subj01"`` ... ``"subj08"``.
    predictions : array-like of shape (n_test, n_lh + n_rh)
        Predicted responses to ``test_images``, left then right hemisphere.
    hemisphere_slices : dict or int
        ``load_algonauts2023(...).hemisphere_slices``, or the number of left
        hemisphere vertices.
    strict : bool, default=False
        Also check the shapes against the official challenge sizes of the
        subject (test images and vertices per hemisphere).

    Returns
    -------
    paths : tuple of str
        ``(lh_path, rh_path)``.

    Raises
    ------
    ValueError
        When predictions are not 2-D, not finite, or do not match the
        hemisphere split (or the official sizes, with ``strict=True``).
    OSError
        When the files cannot be written; the previous submission (if any)
        is then left as it was: both files are written, or neither.

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> from skvem.datasets import write_algonauts_submission
    >>> out = tempfile.mkdtemp()
    >>> lh, rh = write_algonauts_submission(out, 1, np.zeros((4, 10)), 6)
    >>> np.load(rh).shape
    (4, 4)
    """
    subject = _subject_number(subject)
    if np.ma.isMaskedArray(predictions):
        raise ValueError(
            "predictions is a masked array; every test vertex needs a value: fill the masked "
            "ones first (predictions.filled(...))"
        )
    try:
        pred = np.asarray(predictions)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"predictions must be a 2-D array (n_test, n_vertices): {exc}") from None
    if pred.ndim != 2 or 0 in pred.shape:
        raise ValueError(f"predictions must be 2-D (n_test, n_vertices); got shape {pred.shape}")
    if not (np.issubdtype(pred.dtype, np.number) or pred.dtype == bool) or np.iscomplexobj(pred):
        raise ValueError(f"predictions must be real numbers; got dtype {pred.dtype}")
    if not np.all(np.isfinite(pred)):
        raise ValueError("predictions contain NaN or infinite values")
    if pred.size and np.abs(pred).max() > np.finfo(np.float32).max:
        raise ValueError(
            f"predictions reach {np.abs(pred).max():.3g}, beyond float32 (the submission format)"
        )
    pred = pred.astype(np.float32)
    lh_slice, rh_slice = _hemisphere_slices(hemisphere_slices, pred.shape[1])
    lh, rh = pred[:, lh_slice], pred[:, rh_slice]
    if strict:
        k = subject - 1
        expected = (OFFICIAL_N_TEST[k], OFFICIAL_N_LH[k], OFFICIAL_N_RH[k])
        found = (pred.shape[0], lh.shape[1], rh.shape[1])
        if found != expected:
            raise ValueError(
                f"subject {subject} submissions need {expected[0]} test images x "
                f"({expected[1]} lh + {expected[2]} rh) vertices; got {found[0]} x "
                f"({found[1]} + {found[2]})"
            )
    folder = os.path.join(os.fspath(out_dir), f"subj{subject:02d}")
    os.makedirs(folder, exist_ok=True)
    arrays = {
        os.path.join(folder, f"{hemi}_pred_test.npy"): np.ascontiguousarray(arr, dtype=np.float32)
        for hemi, arr in (("lh", lh), ("rh", rh))
    }
    _replace_together(arrays)
    return tuple(arrays)


def _save(path, array):
    with open(path, "wb") as f:
        np.save(f, array)
        f.flush()
        os.fsync(f.fileno())


def _replace_together(arrays):
    """Write every ``{path: array}`` or none: a submission never mixes two runs.

    All arrays are written to temporary names first (a full disk or any other
    failure leaves the previous files untouched); then they are renamed over
    the old ones, which are kept as hard links until every rename succeeded
    and put back if one fails.
    """
    tag = f".tmp-{os.getpid()}"
    temps, backups = {}, {}
    try:
        for path, array in arrays.items():
            temps[path] = path + tag
            _save(temps[path], array)
        for path in arrays:
            if os.path.exists(path):
                backups[path] = path + ".previous" + tag
                try:
                    os.link(path, backups[path])
                except OSError:  # a file system without hard links
                    shutil.copyfile(path, backups[path])
        done = []
        try:
            for path, temp in temps.items():
                os.replace(temp, path)
                done.append(path)
        except BaseException:
            for path in done:  # undo: the old file back, or no file as before
                if path in backups:
                    os.replace(backups.pop(path), path)
                else:
                    os.remove(path)
            raise
    finally:
        for leftover in (*temps.values(), *backups.values()):
            try:
                os.remove(leftover)
            except FileNotFoundError:
                pass
