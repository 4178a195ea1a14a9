"""Property test: skvem.metrics.pearson_r against scipy.stats.pearsonr."""

import warnings

import numpy as np
import pytest
from scipy import stats

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

from skvem.metrics import pearson_r  # noqa: E402


def _scipy_r(x, y):
    """scipy's r in float64, or None where scipy calls it undefined or inaccurate."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            r = stats.pearsonr(x.astype(np.float64), y.astype(np.float64)).statistic
        except (stats.ConstantInputWarning, stats.NearConstantInputWarning, RuntimeWarning):
            return None
    return None if not np.isfinite(r) else float(r)


def _conditioning(v):
    """How many times the spread of ``v`` fits in its magnitude (rounding amplifies by this)."""
    v = v.astype(np.float64)
    spread = v.max() - v.min()
    return float(np.abs(v).max() / spread) if spread > 0 else np.inf


@st.composite
def _pairs(draw):
    n = draw(st.integers(2, 60))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    elements = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, width=32)
    x = draw(hnp.arrays(np.float64, n, elements=elements))
    y = draw(hnp.arrays(np.float64, n, elements=elements))
    offsets = st.sampled_from([0.0, 1.0, -37.5, 1e3, 1e6, -1e6])
    x = (x + draw(offsets)).astype(dtype)
    y = (y + draw(offsets)).astype(dtype)
    return x, y


@settings(max_examples=200, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(_pairs())
def test_pearson_r_matches_scipy_wherever_scipy_is_defined(pair):
    x, y = pair
    ours = pearson_r(x, y)
    assert -1.0 <= ours <= 1.0
    expected = _scipy_r(x, y)
    if expected is None:
        return  # constant or nearly constant: scipy gives NaN or warns
    # Centring loses about eps * (magnitude / spread) of each column.
    tol = 1e-9 + 1e3 * np.finfo(np.float64).eps * (_conditioning(x) + _conditioning(y))
    assert ours == pytest.approx(expected, abs=tol)


@settings(max_examples=100, derandomize=True, deadline=None)
@given(st.floats(-1e6, 1e6, allow_nan=False), st.floats(-1e6, 1e6, allow_nan=False),
       st.integers(2, 300), st.sampled_from([np.float32, np.float64]))
def test_pearson_r_constant_columns_always_score_zero(a, b, n, dtype):
    x = np.full(n, a, dtype=dtype)
    y = np.linspace(-1, 1, n).astype(dtype) if n > 2 else np.array([0.0, 1.0], dtype)
    assert pearson_r(x, np.full(n, b, dtype=dtype)) == 0.0
    assert pearson_r(x, y) == 0.0
    assert pearson_r(y, x) == 0.0
