"""Input and parameter validation shared by skvem's estimators and metrics.

Every public entry point of skvem checks its arrays here, so that bad input
(NaN voxels, a 3-D response array, a length mismatch between images and
responses, ...) fails early with a ``ValueError`` that names the argument and
the problem, instead of crashing deep inside torch or himalaya.

The helpers only validate and convert; they never copy an array that already
has the requested dtype and layout, because fMRI response matrices can take
several gigabytes.

Scalar parameters go through :func:`check_int`, :func:`check_float` and
:func:`check_bool` (on :func:`sklearn.utils.check_scalar`), so every skvem
estimator words a bad value the same way, e.g. ``"epochs must be an integer
>= 1; got 0."``, and raises a :class:`ParameterError` (both a ``ValueError``
and a ``TypeError``). Captions go through :func:`check_texts`.
"""

import numbers

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_scalar

__all__ = [
    "ParameterError",
    "check_bool",
    "check_features",
    "check_finite",
    "check_float",
    "check_fmri",
    "check_int",
    "check_n_samples",
    "check_texts",
    "check_unicode",
    "check_unmasked",
]

_FLOAT_DTYPES = (np.float32, np.float64)


def check_unmasked(a, *, name, masked_as_nan=False):
    """``a`` without its mask: a masked array is never read as its raw data.

    numpy functions ignore the mask of an ``np.ma.MaskedArray`` (they see
    the values under it), so a masked entry would count as data. A masked
    array with nothing masked becomes its data; masked entries become NaN
    where ``masked_as_nan`` (NaN means "missing" there, e.g. absent repeats),
    and are a ``ValueError`` naming ``name`` otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> from skvem._utils.validation import check_unmasked
    >>> a = np.ma.masked_array([1.0, 2.0, 3.0], mask=[False, True, False])
    >>> check_unmasked(a, name="repeats", masked_as_nan=True)
    array([ 1., nan,  3.])
    """
    if not np.ma.isMaskedArray(a):
        return a
    mask = np.ma.getmaskarray(a)
    n_masked = int(np.count_nonzero(mask))
    if n_masked == 0:
        return np.ma.getdata(a)
    if masked_as_nan:
        data = np.array(np.ma.getdata(a), dtype=np.result_type(a.dtype, np.float32))
        data[mask] = np.nan
        return data
    raise ValueError(
        f"{name} is a masked array with {n_masked} masked value(s); skvem does not skip "
        f"masked entries (numpy would read the values under the mask). Drop the masked "
        f"samples or voxels first, e.g. {name}[:, ~{name}.mask.any(axis=0)], or fill "
        f"them ({name}.filled(value))."
    )


def _as_float_array(a, *, name, dtype):
    """Convert ``a`` to a numeric float ndarray, with messages naming ``name``."""
    if a is None:
        raise ValueError(f"{name} is None; an array is required.")
    a = check_unmasked(a, name=name)
    if sp.issparse(a):
        raise TypeError(
            f"{name} is a sparse matrix; skvem needs a dense array "
            f"(call {name}.toarray() first)."
        )
    if isinstance(a, (str, bytes)) or np.isscalar(a):
        raise ValueError(f"{name} must be an array, got the scalar {a!r}.")
    try:
        arr = np.asarray(a)
    except Exception as exc:  # ragged lists and other oddities
        raise ValueError(f"{name} could not be converted to an array: {exc}") from exc
    if np.iscomplexobj(arr):
        raise ValueError(f"Complex data not supported for {name}.")
    if dtype is None:
        target = arr.dtype if arr.dtype in _FLOAT_DTYPES else np.float64
    else:
        target = np.dtype(dtype)
    if arr.dtype != target:
        if arr.dtype.kind not in "biuf" and arr.dtype != object:
            raise ValueError(
                f"{name} must hold numbers; got an array of dtype {arr.dtype}."
            )
        try:
            arr = arr.astype(target)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} must hold numbers: {exc}") from exc
    return arr


def check_finite(a, *, name, allow_nan=False):
    """Raise a ``ValueError`` if ``a`` holds NaN or infinite values.

    The common case (everything finite) costs one reduction and no temporary
    array: the sum of a float array is finite only if every element is
    finite (or, rarely, the sum overflows, in which case we fall back to an
    element-wise test).

    Parameters
    ----------
    a : ndarray of float
        Array to check.
    name : str
        Name of the argument, used in the error message.
    allow_nan : bool, default=False
        If True, only infinite values are rejected (NaN is used by some
        functions as padding for missing repeats).

    Raises
    ------
    ValueError
        If ``a`` contains NaN (unless ``allow_nan``) or +/-inf. The message
        counts the bad values and gives the index of the first one.
    """
    if a.dtype.kind != "f" or a.size == 0:
        return
    if not allow_nan:
        with np.errstate(over="ignore", invalid="ignore"):
            if np.isfinite(a.sum()):
                return
    n_nan = 0 if allow_nan else int(np.count_nonzero(np.isnan(a)))
    n_inf = int(np.count_nonzero(np.isinf(a)))
    if n_nan == 0 and n_inf == 0:
        return
    kind = "NaN" if n_nan else "infinite (inf)"
    bad = np.isnan(a) if n_nan else np.isinf(a)
    first = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), a.shape))
    first = first[0] if len(first) == 1 else first
    parts = []
    if n_nan:
        parts.append(f"{n_nan} NaN")
    if n_inf:
        parts.append(f"{n_inf} infinite (inf)")
    raise ValueError(
        f"{name} contains {' and '.join(parts)} value(s); the first {kind} "
        f"value is at index {first}. Remove or impute them before fitting "
        "(e.g. drop voxels outside the brain mask)."
    )


def check_n_samples(n_expected, n_found, *, name, ref_name="X"):
    """Raise a ``ValueError`` if two arrays disagree on the number of samples.

    Parameters
    ----------
    n_expected : int
        Number of samples (rows) of the reference array ``ref_name``.
    n_found : int
        Number of samples of ``name``.
    name, ref_name : str
        Argument names used in the message.
    """
    if n_expected is not None and n_found != n_expected:
        raise ValueError(
            f"{name} has {n_found} samples (rows) but {ref_name} has "
            f"{n_expected}; they must describe the same images, one row each."
        )


def check_fmri(y, n_samples=None, *, name="y", dtype=None):
    """Validate an fMRI response array: one row per image, one column per voxel.

    Parameters
    ----------
    y : array-like of shape (n_samples,) or (n_samples, n_voxels)
        Responses. A 1-D array is a single voxel, as in scikit-learn.
    n_samples : int or None, default=None
        Expected number of rows (the number of images); ``None`` skips the
        check.
    name : str, default="y"
        Name of the argument, used in error messages.
    dtype : dtype or None, default=None
        Requested float dtype. ``None`` keeps float32 and float64 arrays
        as they are (no copy) and converts anything else to float64.

    Returns
    -------
    y_2d : ndarray of shape (n_samples, n_voxels)
        The responses as a 2-D float array (a view of ``y`` when no
        conversion was needed).
    was_1d : bool
        True if ``y`` was 1-D, so that callers can return 1-D results.

    Raises
    ------
    ValueError
        If ``y`` is empty, has zero voxels, is not 1-D or 2-D, contains NaN
        or infinite values, or does not have ``n_samples`` rows.
    TypeError
        If ``y`` is a sparse matrix.

    Examples
    --------
    >>> import numpy as np
    >>> from skvem._utils.validation import check_fmri
    >>> y2, was_1d = check_fmri(np.arange(4.0))
    >>> y2.shape, was_1d
    ((4, 1), True)
    """
    y = _as_float_array(y, name=name, dtype=dtype)
    if y.ndim == 0:
        raise ValueError(f"{name} must be an array, got a scalar.")
    if y.ndim > 2:
        hint = ""
        if y.ndim == 3:
            hint = (
                " If the middle axis holds repeated presentations, average it "
                f"first ({name}.mean(axis=1)); skvem.metrics.noise_ceiling "
                "takes the repeats."
            )
        raise ValueError(
            f"{name} must be 1-D (one voxel) or 2-D (n_samples, n_voxels); "
            f"got a {y.ndim}-D array of shape {y.shape}.{hint}"
        )
    was_1d = y.ndim == 1
    y2 = y[:, None] if was_1d else y
    if y2.shape[0] == 0:
        raise ValueError(f"{name} is empty: it has 0 samples (shape {y.shape}).")
    if y2.shape[1] == 0:
        raise ValueError(f"{name} has 0 voxels (shape {y.shape}); nothing to fit.")
    check_n_samples(n_samples, y2.shape[0], name=name)
    check_finite(y2, name=name)
    return y2, was_1d


def check_features(X, n_samples=None, *, name="X", dtype=None):
    """Validate a 2-D feature matrix ``(n_samples, n_features)``.

    This is for functions; estimators use
    :func:`sklearn.utils.validation.validate_data`, which also records
    ``n_features_in_``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Features, one row per image.
    n_samples : int or None, default=None
        Expected number of rows; ``None`` skips the check.
    name : str, default="X"
        Name of the argument, used in error messages.
    dtype : dtype or None, default=None
        Requested float dtype; ``None`` keeps float32/float64 and converts
        anything else to float64.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        The features as a 2-D float array (``X`` itself when no conversion
        was needed).

    Raises
    ------
    ValueError
        If ``X`` is not 2-D, is empty, has 0 features, contains NaN or
        infinite values, or does not have ``n_samples`` rows.

    Examples
    --------
    >>> import numpy as np
    >>> from skvem._utils.validation import check_features
    >>> check_features(np.ones((3, 2)), dtype=np.float32).dtype
    dtype('float32')
    """
    X = _as_float_array(X, name=name, dtype=dtype)
    if X.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D (n_samples, n_features); got a {X.ndim}-D "
            f"array of shape {X.shape}. Reshape a single feature with "
            f"{name}.reshape(-1, 1) or a single sample with {name}.reshape(1, -1)."
        )
    if X.shape[0] == 0:
        raise ValueError(f"{name} is empty: it has 0 samples (shape {X.shape}).")
    if X.shape[1] == 0:
        raise ValueError(f"{name} has 0 features (shape {X.shape}).")
    check_n_samples(n_samples, X.shape[0], name=name, ref_name="y")
    check_finite(X, name=name)
    return X


class ParameterError(ValueError, TypeError):
    """A parameter of the wrong type or out of range.

    Both a ``ValueError`` and a ``TypeError``, like scikit-learn's
    ``InvalidParameterError``, so callers may catch either.
    """


def _range_text(min_val, max_val, include_boundaries):
    lo_closed = include_boundaries in ("both", "left")
    hi_closed = include_boundaries in ("both", "right")
    if max_val is None:
        return f"{'>=' if lo_closed else '>'} {min_val}"
    if min_val is None:
        return f"{'<=' if hi_closed else '<'} {max_val}"
    return f"in {'[' if lo_closed else '('}{min_val}, {max_val}{']' if hi_closed else ')'}"


def _fail(value, *, name, owner, expected, allow, exc=None):
    extra = f" or one of {list(allow)}" if allow else ""
    prefix = f"{owner}: " if owner else ""
    raise ParameterError(f"{prefix}{name} must be {expected}{extra}; got {value!r}.") from exc


def check_int(value, *, name, min_val=1, max_val=None, allow=(), allow_none=False, owner=None):
    """Return ``value`` as an ``int``, or raise a :class:`ParameterError` naming ``name``.

    A thin layer over :func:`sklearn.utils.check_scalar` that also refuses
    booleans and gives every skvem parameter the same message.

    Parameters
    ----------
    value : object
        The parameter value.
    name : str
        Its name, used in the message.
    min_val, max_val : int or None, default=1, None
        Inclusive bounds (None: unbounded).
    allow : tuple of str, default=()
        Strings accepted as they are (e.g. ``("auto",)``).
    allow_none : bool, default=False
        Accept ``None`` (returned as is).
    owner : str or None, default=None
        Prefix of the message, e.g. the estimator's name.

    Examples
    --------
    >>> from skvem._utils.validation import check_int
    >>> check_int(3, name="epochs")
    3
    >>> check_int(0, name="epochs")
    Traceback (most recent call last):
    ...
    skvem._utils.validation.ParameterError: epochs must be an integer >= 1; got 0.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, str) and value in allow:
        return value
    bounds = _range_text(min_val, max_val, "both") if min_val is not None or max_val is not None \
        else ""
    expected = f"an integer {bounds}".rstrip()
    if isinstance(value, (bool, np.bool_)):
        _fail(value, name=name, owner=owner, expected=expected, allow=allow)
    try:
        check_scalar(value, name, numbers.Integral, min_val=min_val, max_val=max_val)
    except (TypeError, ValueError) as exc:
        _fail(value, name=name, owner=owner, expected=expected, allow=allow, exc=exc)
    return int(value)


def check_float(value, *, name, min_val=None, max_val=None, include_boundaries="both",
                allow=(), owner=None):
    """Return ``value`` as a finite ``float``, or raise a :class:`ParameterError`.

    Parameters are those of :func:`check_int`, with
    ``include_boundaries`` in {"both", "left", "right", "neither"} as in
    :func:`sklearn.utils.check_scalar`.

    Examples
    --------
    >>> from skvem._utils.validation import check_float
    >>> check_float(0.5, name="warmup_fraction", min_val=0.0, max_val=1.0,
    ...             include_boundaries="left")
    0.5
    """
    if isinstance(value, str) and value in allow:
        return value
    if min_val is None and max_val is None:
        expected = "a finite number"
    else:
        expected = f"a number {_range_text(min_val, max_val, include_boundaries)}"
    ok = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) \
        and np.isfinite(value)
    if not ok:
        _fail(value, name=name, owner=owner, expected=expected, allow=allow)
    try:
        check_scalar(value, name, numbers.Real, min_val=min_val, max_val=max_val,
                     include_boundaries=include_boundaries)
    except (TypeError, ValueError) as exc:
        _fail(value, name=name, owner=owner, expected=expected, allow=allow, exc=exc)
    return float(value)


def check_bool(value, *, name, owner=None):
    """Return ``value`` as a ``bool`` (Python or numpy), or raise a :class:`ParameterError`."""
    if not isinstance(value, (bool, np.bool_)):
        _fail(value, name=name, owner=owner, expected="True or False", allow=())
    return bool(value)


def check_unicode(text: str, where: str) -> str:
    """Refuse a string that is not valid Unicode text (a lone surrogate such as ``"\\ud800"``).

    Such strings come from broken decoding (``surrogateescape``, JSON with a
    half escape pair); sqlite, tokenizers and UTF-8 files cannot hold them.
    Rather than changing the text silently, the error names where it is.
    """
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"{where} is not valid Unicode text: it holds the lone surrogate "
            f"{text[exc.start]!r} at character {exc.start}; repair it, e.g. with "
            "text.encode('utf-8', 'replace').decode('utf-8')"
        ) from None
    return text


def check_texts(X, *, owner="this estimator") -> list:
    """Return ``X`` as a list of ``str``, or raise a clear error.

    Parameters
    ----------
    X : sequence of str
        A list or tuple, a 1-D ndarray of str or object, a pandas Series, or
        a single column: a 2-D array or DataFrame shaped ``(n, 1)`` (what
        ``ColumnTransformer`` passes). Empty strings are allowed.
    owner : str
        Named in error messages.

    Returns
    -------
    texts : list of str, length n

    Raises
    ------
    TypeError
        For a bare string, or any element that is not a ``str`` (the message
        names its index and type).
    ValueError
        For arrays with more than one column, or a caption that is not valid
        Unicode (a lone surrogate; the message names its index).
    """
    if isinstance(X, (str, bytes)):
        raise TypeError(
            f"{owner} expects a sequence of captions, got a single {type(X).__name__}; "
            "wrap it in a list: [text]"
        )
    if hasattr(X, "iloc") and getattr(X, "ndim", 1) == 2:  # pandas DataFrame
        if X.shape[1] != 1:
            raise ValueError(f"{owner} expects one column of captions; got {X.shape[1]} columns")
        X = X.iloc[:, 0]
    if hasattr(X, "to_numpy") and not isinstance(X, np.ndarray):  # pandas Series
        X = X.to_numpy(dtype=object)
    if isinstance(X, np.ndarray):
        if X.ndim == 2:
            if X.shape[1] != 1:
                raise ValueError(
                    f"{owner} expects captions shaped (n,) or (n, 1); got shape {X.shape}"
                )
            X = X[:, 0]
        elif X.ndim != 1:
            raise ValueError(f"{owner} expects captions shaped (n,) or (n, 1); got shape {X.shape}")
        items = X.tolist()
    elif isinstance(X, (dict, set, frozenset)):
        raise TypeError(
            f"{owner} expects an ordered sequence of captions (one per image), got a "
            f"{type(X).__name__}, whose order is not the images'"
        )
    else:
        try:
            items = list(X)
        except TypeError:
            raise TypeError(f"{owner} expects a sequence of str, got {type(X).__name__}") from None
        # A list of one-element rows is the (n, 1) column form.
        if items and all(isinstance(x, (list, tuple)) and len(x) == 1 for x in items):
            items = [x[0] for x in items]
    for i, text in enumerate(items):
        if not isinstance(text, str):
            raise TypeError(
                f"{owner} expects every caption to be a str; caption {i} is "
                f"{type(text).__name__} ({text!r:.60})"
            )
        check_unicode(text, f"{owner}: caption {i}")
    return [str(t) for t in items]
