"""Read pickled data without running code from the file.

Some data sets ship Python dictionaries as pickles: Algonauts 2023's
``mapping_<roi-file>.npy`` files are ``np.save``-d dictionaries (label ->
ROI name) that the devkit opens with ``np.load(allow_pickle=True).item()``.
Unpickling a file runs whatever callables the file names, so a tampered file
can run arbitrary code. The unpickler here resolves only the few globals that
plain containers, strings, numbers and numpy arrays / scalars need, and
refuses every other one *before* anything is called.
"""

from __future__ import annotations

import _compat_pickle
import ast
import io
import os
import pickle
import struct

import numpy as np

__all__ = [
    "UnsafePickleError",
    "RestrictedUnpickler",
    "safe_loads",
    "load_npy_object",
    "load_pickled_dict",
]


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle names a global outside the allowed set; nothing was called."""


def _latin1_encode(text, encoding="latin1"):
    # Protocol-2 pickles (Python 2, or numpy arrays saved by old versions)
    # store bytes as ``_codecs.encode(str, "latin1")``; only that use is let in.
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise UnsafePickleError("_codecs.encode is only allowed as encode(str, 'latin1')")
    return text.encode("latin1")


def _allowed_globals():
    allowed = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("builtins", "complex"): complex,
        ("builtins", "slice"): slice,
    }
    # numpy moved its internals from numpy.core to numpy._core in 2.0; a file
    # written by either version names one or the other.
    try:
        from numpy._core import multiarray as _ma
    except ImportError:  # pragma: no cover - numpy < 2
        from numpy.core import multiarray as _ma
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(mod, "_reconstruct")] = _ma._reconstruct
        allowed[(mod, "scalar")] = _ma.scalar
    # Scalar and array dtypes are looked up by name (numpy.dtypes.Int64DType
    # etc. in numpy >= 1.25 pickles of dtype objects).
    for name in (
        "Float64DType",
        "Float32DType",
        "Int64DType",
        "Int32DType",
        "Int16DType",
        "Int8DType",
        "UInt8DType",
        "UInt16DType",
        "UInt32DType",
        "UInt64DType",
        "BoolDType",
        "ObjectDType",
        "StrDType",
        "BytesDType",
    ):
        cls = getattr(getattr(np, "dtypes", None), name, None)
        if cls is not None:
            allowed[("numpy.dtypes", name)] = cls
    return allowed


_ALLOWED = _allowed_globals()


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that admits only plain data and numpy arrays / scalars.

    ``dict``, ``list``, ``tuple``, ``str``, ``bytes``, ``int``, ``float``,
    ``bool`` and ``None`` need no global and always load. Of the globals a
    pickle may name, only numpy's array / dtype / scalar reconstructors and
    ``set``, ``frozenset``, ``complex``, ``slice`` are resolved; any other
    name raises :class:`UnsafePickleError` without being imported or called.
    """

    def find_class(self, module, name):
        # Python 2 names (protocol < 3), as the stock find_class translates them.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refused to load the global {module}.{name}: this file asks to call code, "
                "which a data file has no reason to do"
            ) from None

    def persistent_load(self, pid):
        raise UnsafePickleError("refused a persistent id: not plain data")


def safe_loads(data: bytes):
    """Unpickle ``data`` with :class:`RestrictedUnpickler`."""
    return RestrictedUnpickler(io.BytesIO(data)).load()


# numpy's own limit on a header's length (a longer one is a denial of service).
_MAX_HEADER = 10_000


def _read_header_3_0(fp):
    """``(shape, fortran_order, dtype)`` of a format-3.0 header (utf-8 field names).

    numpy's public API reads 1.0 and 2.0 headers only; 3.0 is 2.0's layout
    (a 4-byte little-endian length) with the header text in utf-8.
    """
    raw = fp.read(4)
    if len(raw) != 4:
        raise ValueError("the .npy header is cut short")
    (length,) = struct.unpack("<I", raw)
    if length > _MAX_HEADER:
        raise ValueError(f"the .npy header claims {length} bytes (at most {_MAX_HEADER})")
    text = fp.read(length)
    if len(text) != length:
        raise ValueError("the .npy header is cut short")
    header = ast.literal_eval(text.decode("utf-8"))
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise ValueError(f"the .npy header is not a dict of descr, fortran_order, shape: {header!r}")
    shape, fortran = header["shape"], header["fortran_order"]
    if not (isinstance(shape, tuple) and all(isinstance(n, int) and n >= 0 for n in shape)):
        raise ValueError(f"the .npy header has an invalid shape {shape!r}")
    if not isinstance(fortran, bool):
        raise ValueError(f"the .npy header has an invalid fortran_order {fortran!r}")
    return shape, fortran, np.lib.format.descr_to_dtype(header["descr"])


def _read_npy_header(fp):
    version = np.lib.format.read_magic(fp)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(fp)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(fp)
    if version == (3, 0):
        return _read_header_3_0(fp)
    raise ValueError(f"unknown .npy format version {version[0]}.{version[1]}")


def load_npy_object(path):
    """Load a ``.npy`` file (or a bare pickle) without running code from it.

    Numeric arrays load as with ``np.load(path, allow_pickle=False)``;
    object arrays, which ``np.save`` stores as a pickle, go through
    :class:`RestrictedUnpickler`. A file that is a bare pickle (what
    ``np.load(allow_pickle=True)`` also accepts) is read the same way.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    UnsafePickleError
        If the pickle names anything but plain data or numpy arrays.
    ValueError
        If the file is neither a valid ``.npy`` file (format 1.0, 2.0 or
        3.0) nor a pickle; the message names it.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as fp:
            magic = fp.read(6)
            fp.seek(0)
            if magic != b"\x93NUMPY":
                return RestrictedUnpickler(fp).load()
            shape, fortran_order, dtype = _read_npy_header(fp)
            if not dtype.hasobject:
                return np.load(path, allow_pickle=False)
            array = RestrictedUnpickler(fp).load()
    except UnsafePickleError as exc:
        raise UnsafePickleError(f"{path}: {exc}") from None
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except Exception as exc:  # pickle and numpy raise many types for a damaged file
        raise ValueError(
            f"{path}: not a readable .npy file or pickle ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(array, np.ndarray) or array.shape != tuple(shape):
        raise ValueError(f"{path}: the pickled payload does not match the .npy header {shape}")
    return array


def load_pickled_dict(path):
    """Load a dictionary saved with ``np.save(path, d)`` (or pickled), safely.

    Returns
    -------
    d : dict
        What ``np.load(path, allow_pickle=True).item()`` returns, obtained
        without running code from the file.
    """
    obj = load_npy_object(path)
    if isinstance(obj, np.ndarray) and obj.dtype == object and obj.shape == ():
        obj = obj.item()
    if not isinstance(obj, dict):
        raise ValueError(f"{os.fspath(path)}: expected a pickled dict, found {type(obj).__name__}")
    return obj
