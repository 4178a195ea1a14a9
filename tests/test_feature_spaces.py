"""Tests of skvem.encoding.feature_spaces.FeatureSpaces."""

import pickle

import numpy as np
import pytest
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.decomposition import PCA
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from skvem import AlignedImageFeaturizer, BandedVoxelRidgeCV, FeatureSpaces, ImageFeaturizer
from skvem.datasets import make_scenes

FAST = dict(backbone="small-cnn", image_size=32, batch_size=16, n_components=4, epochs=1, lr=3e-3)


class RecordsY(TransformerMixin, BaseEstimator):
    """Keeps the first columns of X, and the y it was fitted with."""

    def __init__(self, width=2):
        self.width = width

    def fit(self, X, y=None):
        self.y_seen_ = None if y is None else np.asarray(y).copy()
        return self

    def transform(self, X):
        return np.asarray(X)[:, : self.width]


def _tabular(n=90, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 6))
    Y = X[:, :2] @ rng.standard_normal((2, 12)) + 0.5 * rng.standard_normal((n, 12))
    return X, Y


def test_returns_the_blocks_and_passes_y_to_every_space():
    X, Y = _tabular()
    spaces = FeatureSpaces([("first", RecordsY(2)), ("pca", PCA(3, random_state=0))])
    blocks = spaces.fit_transform(X, Y)
    assert [b.shape for b in blocks] == [(90, 2), (90, 3)]
    assert spaces.feature_space_names_ == ["first", "pca"]
    np.testing.assert_array_equal(spaces.named_transformers_["first"].y_seen_, Y)
    again = spaces.transform(X)
    np.testing.assert_allclose(again[1], blocks[1])
    # fit then transform gives what fit_transform gave; the given estimators stay unfitted.
    refit = FeatureSpaces(spaces.spaces).fit(X, Y).transform(X)
    np.testing.assert_allclose(refit[1], blocks[1], atol=1e-10)
    assert not hasattr(spaces.spaces[0][1], "y_seen_")


def test_nested_params_clone_pickle_and_grid_search():
    X, Y = _tabular()
    pipe = make_pipeline(
        FeatureSpaces([("scaled", StandardScaler()), ("pca", PCA(2))]),
        BandedVoxelRidgeCV(n_iter=4, random_state=0, backend="numpy"),
    )
    params = pipe.get_params()
    assert params["featurespaces__pca__n_components"] == 2
    pipe.set_params(featurespaces__pca__n_components=3)
    assert pipe.named_steps["featurespaces"].spaces[1][1].n_components == 3
    assert clone(pipe).get_params()["featurespaces__pca__n_components"] == 3
    scores = cross_val_score(pipe, X, Y, cv=KFold(3))
    assert scores.shape == (3,) and np.all(scores > 0.3)
    search = GridSearchCV(pipe, {"featurespaces__pca__n_components": [1, 4]}, cv=KFold(2))
    search.fit(X, Y)
    assert search.best_params_["featurespaces__pca__n_components"] in (1, 4)
    fitted = pipe.fit(X, Y)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(fitted)).predict(X), fitted.predict(X))


def test_images_to_voxels_pipeline_with_frozen_and_aligned_spaces():
    data = make_scenes(48, image_size=32, n_voxels=6, random_state=0)
    pipe = make_pipeline(
        FeatureSpaces([
            ("frozen", ImageFeaturizer(backbone="small-cnn", image_size=32, random_state=0,
                                       cache_dir=False, batch_size=16)),
            ("aligned", AlignedImageFeaturizer(random_state=0, **FAST)),
        ]),
        BandedVoxelRidgeCV(n_iter=3, random_state=0, cv=3, backend="numpy"),
    )
    scores = cross_val_score(pipe, data.images, data.fmri, cv=KFold(2))
    assert scores.shape == (2,) and np.all(np.isfinite(scores))
    search = GridSearchCV(pipe, {"featurespaces__frozen__batch_size": [8, 16]}, cv=KFold(2))
    search.fit(data.images, data.fmri)
    assert search.best_params_["featurespaces__frozen__batch_size"] in (8, 16)
    parts = search.best_estimator_.predict(data.images[:5])
    assert parts.shape == (5, data.fmri.shape[1]) and parts.dtype == np.float32


@pytest.mark.parametrize("spaces, match", [
    ([], r"spaces must be a non-empty list"),
    ("scaler", r"spaces must be a non-empty list"),
    ([StandardScaler()], r"\(name, transformer\) pairs"),
    ([("a", StandardScaler()), ("a", PCA(2))], r"spaces: Names provided are not unique"),
    ([("a__b", StandardScaler()), ("c", PCA(2))], r"spaces: .*__"),
    ([("a", StandardScaler()), ("b", "passthrough")], r"transformer of 'b' must have fit"),
])
def test_bad_spaces_name_the_parameter(spaces, match):
    X, Y = _tabular()
    with pytest.raises(ValueError, match=match):
        FeatureSpaces(spaces).fit(X, Y)


def test_spaces_with_different_row_counts_are_an_error():
    X, Y = _tabular()
    drop_one = FunctionTransformer(lambda a: a[1:])
    with pytest.raises(ValueError, match=r"different numbers of rows: a=90, b=89"):
        FeatureSpaces([("a", StandardScaler()), ("b", drop_one)]).fit_transform(X, Y)
    bad = FunctionTransformer(lambda a: np.full_like(a, np.nan))
    with pytest.raises(ValueError, match=r"output of space 'b' contains"):
        FeatureSpaces([("a", StandardScaler()), ("b", bad)]).fit_transform(X, Y)
