"""make_scenes: shapes, determinism, descriptions true to the scenes, ROI rules."""

import re

import numpy as np
import pytest
from sklearn.linear_model import RidgeCV

from skvem.datasets.scenes import _brain as brain
from skvem.datasets import make_scenes
from skvem.datasets.scenes._draw import CATEGORIES, COLORS, DIGITS, SHAPES, shape_mask
from skvem.datasets.scenes._text import PLACE_PHRASES, SIZE_WORDS, describe
from skvem.images import ImageSet
from skvem.metrics import noise_ceiling


@pytest.fixture(scope="module")
def data():
    return make_scenes(300, n_reference=100, random_state=0)


def test_bunch_contents(data):
    n = 300
    n_vox = data.fmri.shape[1]
    assert isinstance(data.images, ImageSet) and len(data.images) == n
    assert data.images.get_array(0).shape == (64, 64, 3)
    assert data.fmri.dtype == np.float32 and data.fmri.shape == (n, n_vox)
    assert data.fmri_repeats.dtype == np.float32 and data.fmri_repeats.shape == (n, 3, n_vox)
    np.testing.assert_allclose(data.fmri, data.fmri_repeats.mean(axis=1), rtol=1e-5, atol=1e-5)
    assert set(data.rois) == {"early", "color", "category", "semantic"}
    all_idx = np.sort(np.concatenate(list(data.rois.values())))
    np.testing.assert_array_equal(all_idx, np.arange(n_vox))
    assert n_vox == 80 + 60 + 60 + 60
    assert data.noise_ceiling.shape == (n_vox,)
    assert np.all((data.noise_ceiling >= 0) & (data.noise_ceiling <= 100))
    np.testing.assert_allclose(data.noise_ceiling, noise_ceiling(data.fmri_repeats))
    assert data.latents.shape == (n, len(data.latent_names)) and data.latents.dtype == np.float32
    assert np.all(np.isfinite(data.latents)) and np.all(np.isfinite(data.fmri))
    captions = data.images.captions
    assert all(isinstance(c, str) and len(c) > 20 for c in captions)
    np.testing.assert_array_equal(captions, data.descriptions)
    assert len(data.scenes) == n and "early" in data.DESCR and "Kay" in data.DESCR


def test_deterministic_and_prefix_stable():
    a = make_scenes(40, n_reference=60, random_state=3)
    b = make_scenes(40, n_reference=60, random_state=3)
    c = make_scenes(70, n_reference=60, random_state=3)
    d = make_scenes(40, n_reference=60, random_state=4)
    np.testing.assert_array_equal(a.images.to_numpy(), b.images.to_numpy())
    np.testing.assert_array_equal(a.fmri_repeats, b.fmri_repeats)
    np.testing.assert_array_equal(a.descriptions, b.descriptions)
    # The same simulated subject sees more scenes: the first 40 are unchanged.
    np.testing.assert_array_equal(a.images.to_numpy(), c.images.to_numpy()[:40])
    np.testing.assert_allclose(a.fmri_repeats, c.fmri_repeats[:40], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(a.descriptions, c.descriptions[:40])
    assert not np.array_equal(a.images.to_numpy(), d.images.to_numpy())
    assert not np.allclose(a.fmri, d.fmri)


def test_scene_content_rules(data):
    for scene in data.scenes:
        objs = scene["objects"]
        assert 1 <= len(objs) <= 3
        cells = [(o["row"], o["col"]) for o in objs]
        assert len(set(cells)) == len(cells), "two objects share a grid cell"
        for o in objs:
            assert (
                o["category"] in CATEGORIES
                and o["color"] in COLORS
                and o["size"] in ("small", "large")
            )
            # The jittered centre stays inside the object's cell.
            x, y = o["center"]
            assert int(x // (64 / 3)) == o["col"] and int(y // (64 / 3)) == o["row"]
        assert len(scene["relations"]) == len(objs) * (len(objs) - 1) // 2
    n_cat = {o["category"] for s in data.scenes for o in s["objects"]}
    assert len(n_cat) >= 15 and len({o["color"] for s in data.scenes for o in s["objects"]}) == 8


def test_objects_are_drawn_where_the_scene_says(data):
    arrays = data.images.to_numpy()
    for i, scene in enumerate(data.scenes[:50]):
        img = arrays[i].astype(int)
        chroma = img.max(axis=2) - img.min(axis=2)
        for o in scene["objects"]:
            x, y = (int(round(v)) for v in o["center"])
            window = chroma[max(0, y - 4) : y + 5, max(0, x - 4) : x + 5]
            assert window.max() > 60, f"no coloured object near {o['center']} in scene {i}"
        # The background is grey: no chroma far from every object.
        far = np.ones_like(chroma, dtype=bool)
        for o in scene["objects"]:
            x, y = o["center"]
            yy, xx = np.mgrid[:64, :64]
            far &= np.hypot(xx - x, yy - y) > 0.75 * o["size_px"]
        assert chroma[far].max() == 0


def test_descriptions_name_every_object(data):
    count_words = {2: "two", 3: "three"}
    for scene, text in zip(data.scenes, data.descriptions):
        objs = scene["objects"]
        lower = text.lower()
        for o in objs:
            assert o["color"] in lower
            assert o["category"] in lower
            assert any(w in lower for w in SIZE_WORDS[o["size"]])
            assert any(p in lower for p in PLACE_PHRASES[(o["row"], o["col"])])
        if len(objs) > 1:
            assert count_words[len(objs)] in lower
        assert scene["background"]["tone"] in lower or (
            "pale" in lower and scene["background"]["tone"] == "light"
        )


def _two_object_scene(a, b):
    rel = {
        "subject": 0,
        "object": 1,
        "vertical": "above" if a["row"] < b["row"] else "below" if a["row"] > b["row"] else None,
        "horizontal": "to the left of"
        if a["col"] < b["col"]
        else "to the right of"
        if a["col"] > b["col"]
        else None,
    }
    return {"background": {"tone": "dark"}, "objects": [a, b], "relations": [rel]}


def _obj(category, color, size, row, col):
    return {"category": category, "color": color, "size": size, "row": row, "col": col}


@pytest.mark.parametrize("seed", range(12))
def test_relations_are_true(seed):
    rng = np.random.default_rng(seed)
    circle = _obj("circle", "red", "small", 0, 1)
    star = _obj("star", "blue", "large", 2, 1)
    text = describe(_two_object_scene(circle, star), rng)
    m = re.search(r"The (circle|star) is (?:directly )?(above|below) the (circle|star)\.", text)
    assert m is not None, text
    subj, rel, obj = m.groups()
    assert (subj, rel, obj) in {("circle", "above", "star"), ("star", "below", "circle")}

    left = _obj("diamond", "green", "large", 1, 0)
    right = _obj("digit", "pink", "small", 1, 2)
    right["category"] = "seven"
    text = describe(_two_object_scene(left, right), rng)
    m = re.search(
        r"The (diamond|[\w ]*seven) is to the (left|right) of the (diamond|[\w ]*seven)\.", text
    )
    assert m is not None, text
    assert (m.group(1) == "diamond") == (m.group(2) == "left")


def test_identical_objects_are_told_apart():
    rng = np.random.default_rng(0)
    a = _obj("ring", "cyan", "small", 0, 0)
    b = _obj("ring", "cyan", "small", 2, 2)
    text = describe(_two_object_scene(a, b), rng)
    # Same category, colour and size: the relation sentence refers by place.
    m = re.search(r"The cyan ring (.+?) is (.+?) the cyan ring (.+?)\.", text)
    assert m is not None, text


def test_categories_subset_and_sizes():
    d = make_scenes(30, n_reference=50, categories="shapes", n_voxels=5, random_state=1)
    assert {o["category"] for s in d.scenes for o in s["objects"]} <= set(SHAPES)
    assert d.fmri.shape == (30, 20)
    d = make_scenes(
        30,
        n_reference=50,
        categories=["circle", "seven"],
        image_size=40,
        n_voxels={"early": 3, "semantic": 0},
        random_state=1,
    )
    assert d.images.get_array(0).shape == (40, 40, 3)
    assert d.rois["semantic"].size == 0 and d.rois["early"].size == 3
    assert d.fmri.shape[1] == 3 + 60 + 60
    assert {o["category"] for s in d.scenes for o in s["objects"]} <= {"circle", "seven"}
    d = make_scenes(10, n_reference=50, n_repeats=1, n_voxels=2, random_state=0)
    assert d.noise_ceiling is None and d.fmri_repeats.shape == (10, 1, 8)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"n_images": 0}, "n_images"),
        ({"n_repeats": 0}, "n_repeats"),
        ({"image_size": 16}, "image_size"),
        ({"max_objects": 5}, "max_objects"),
        ({"categories": ["circle"]}, "categories"),
        ({"categories": ["blob", "circle"]}, "categories"),
        ({"categories": "animals"}, "categories"),
        ({"n_voxels": {"v1": 3}}, "n_voxels"),
        ({"n_voxels": -1}, "n_voxels"),
        ({"n_voxels": {"early": 0, "color": 0, "category": 0, "semantic": 0}}, "n_voxels"),
        ({"snr": (0.5, 0.1)}, "snr"),
        ({"snr": {"early": (0, 1)}}, "snr"),
        ({"shared_noise": 1.0}, "shared_noise"),
    ],
)
def test_bad_parameters(kwargs, name):
    kwargs = {"n_images": 5, "n_reference": 50, **kwargs}
    with pytest.raises(ValueError, match=name):
        make_scenes(**kwargs)


def test_noise_ceiling_tracks_truth_and_spreads(data):
    est, true = data.noise_ceiling, data.true_noise_ceiling
    assert np.corrcoef(est, true)[0, 1] > 0.9
    for name, idx in data.rois.items():
        assert true[idx].min() < 12, f"{name}: no voxel near the noise floor"
        assert true[idx].max() > 60, f"{name}: no reliable voxel"
    # Noise is what it claims to be: residuals around the signal have sd gain / snr.
    resid = data.fmri_repeats - data.signal[:, None, :]
    expected = data.voxel_params["gain"] / data.voxel_params["snr"]
    ratio = resid.std(axis=(0, 1)) / expected
    assert 0.85 < np.median(ratio) < 1.15


def _ridge_r2(X, Y, n_train):
    model = RidgeCV(alphas=np.logspace(-3, 3, 7)).fit(X[:n_train], Y[:n_train])
    pred = model.predict(X[n_train:])
    resid = ((Y[n_train:] - pred) ** 2).sum(axis=0)
    total = ((Y[n_train:] - Y[n_train:].mean(axis=0)) ** 2).sum(axis=0)
    keep = total > 0  # a sparse semantic voxel may be silent on all test scenes
    return 1 - resid[keep] / total[keep]


def test_each_roi_follows_its_rule(data):
    names = data.latent_names
    sig = data.signal
    energy = data.latents[:, [n.startswith("energy:") for n in names]]
    semantic = data.latents[:, [n.split(":")[0] in brain.SEMANTIC_FAMILIES for n in names]]
    pixels = data.images.to_numpy(size=16).reshape(len(sig), -1).astype(float) / 255
    r2_early = _ridge_r2(energy, sig[:, data.rois["early"]], 240)
    r2_sem = _ridge_r2(semantic, sig[:, data.rois["semantic"]], 240)
    r2_sem_pixels = _ridge_r2(pixels, sig[:, data.rois["semantic"]], 240)
    assert np.median(r2_early) > 0.7
    # The semantic ROI is an exact linear read-out of its factors ...
    assert np.median(r2_sem) > 0.95
    # ... which pixels carry only non-linearly.
    assert np.median(r2_sem_pixels) < 0.3


def test_color_rule_ignores_grey_and_prefers_its_hue():
    grey = np.full((1, 32, 32, 3), 127, dtype=np.uint8)
    assert brain.hue_histograms(grey).sum() == 0
    red = grey.copy()
    red[0, 12:20, 12:20] = (230, 20, 20)
    blue = grey.copy()
    blue[0, 12:20, 12:20] = (20, 40, 230)
    hist = brain.hue_histograms(np.concatenate([red, blue]))
    bins = hist.sum(axis=1)
    assert bins[0].argmax() in (0, 11) and 7 <= bins[1].argmax() <= 8


def test_category_rule_is_invariant_and_averages():
    cats = ("circle", "star", "seven")
    a = {"objects": [{"category": "star", "size": "large", "row": 0, "col": 0, "color": "red"}]}
    b = {"objects": [{"category": "star", "size": "large", "row": 2, "col": 1, "color": "blue"}]}
    c = {
        "objects": [
            {"category": "star", "size": "large", "row": 0, "col": 0, "color": "red"},
            {"category": "circle", "size": "large", "row": 1, "col": 1, "color": "red"},
        ]
    }
    drive = brain.category_drive([a, b, c], cats)
    np.testing.assert_array_equal(drive[0], drive[1])  # position and colour do not count
    np.testing.assert_allclose(drive[2], [0.5, 0.5, 0.0])  # two objects: the average


def test_semantic_factors_of_a_known_scene():
    objs = [
        {"category": "circle", "color": "red", "size": "small", "row": 0, "col": 1},
        {"category": "seven", "color": "red", "size": "small", "row": 2, "col": 1},
    ]
    scene = {"objects": objs, "relations": [{"subject": 0, "object": 1}]}
    f = dict(zip(brain.semantic_factor_names(3), brain.semantic_factors([scene], 3)[0]))
    assert f["numerosity:2"] == pytest.approx(1.0) and f["numerosity:1"] < 0.2
    assert f["relation:stacked"] == 1 and f["relation:side_by_side"] == 0
    assert f["role:curved_above"] == 1 and f["role:digit_below"] == 1 and f["role:digit_above"] == 0
    assert f["conjunction:curved+digit"] == 1 and f["conjunction:curved+curved"] == 0
    assert f["sameness:color"] == 1 and f["sameness:size"] == 1 and f["sameness:category"] == 0


def test_shape_masks_differ():
    masks = {s: shape_mask(s, 20, 0) for s in SHAPES}
    for s, m in masks.items():
        assert 0.15 < m.mean() < 0.9, s
    assert not np.allclose(masks["circle"], masks["ring"])
    assert masks["ring"][10, 10] == 0 and masks["circle"][10, 10] == 1
    assert len(DIGITS) == 10
