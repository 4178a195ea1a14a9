import os
import pickle
import subprocess
import sys

import h5py
import numpy as np
import pytest
from PIL import Image
from sklearn.model_selection import KFold
from sklearn.utils import _safe_indexing

from skvem.images import ImageLoadError, ImageSet, as_imageset, fingerprint_array


@pytest.fixture
def pixels():
    return np.random.RandomState(0).randint(0, 256, size=(6, 9, 7, 3)).astype(np.uint8)


def test_array_roundtrip_and_shape(pixels):
    images = ImageSet(pixels)
    assert len(images) == 6 and images.shape == (6,)
    np.testing.assert_array_equal(images.get_array(2), pixels[2])
    np.testing.assert_array_equal(np.asarray(images[2]), pixels[2])
    np.testing.assert_array_equal(images.to_numpy(), pixels)


def test_grayscale_and_float_arrays(pixels):
    gray = pixels[..., 0]
    out = ImageSet(gray).get_array(0)
    assert out.shape == (9, 7, 3)
    np.testing.assert_array_equal(out[..., 1], gray[0])
    floats = pixels.astype(np.float32) / 255.0
    np.testing.assert_array_equal(ImageSet(floats).get_array(1), pixels[1])


def test_float_out_of_range_names_index(pixels):
    bad = pixels.astype(np.float32)  # 0..255, not 0..1
    with pytest.raises(ImageLoadError, match="image 0.*\\[0, 1\\]"):
        ImageSet(bad).get_array(0)


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "CMYK", "I;16", "I", "F", "1"])
def test_every_pil_mode_comes_out_rgb(mode, pixels):
    if mode == "I;16":
        img = Image.fromarray(pixels[0, ..., 0].astype(np.uint16) * 257)
    elif mode == "F":  # float pixels lie in [0, 1], as float arrays do
        img = Image.fromarray(pixels[0, ..., 0].astype(np.float32) / 255.0)
    else:
        img = Image.fromarray(pixels[0]).convert(mode)
    assert img.mode == mode
    out = ImageSet([img]).get_array(0)
    assert out.dtype == np.uint8 and out.shape == (9, 7, 3)


def test_sixteen_bit_is_scaled_by_its_range_not_clipped():
    ramp = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)
    img = Image.fromarray(ramp)
    assert img.mode == "I;16"
    expected = np.rint(ramp / 257.0).astype(np.uint8)
    np.testing.assert_array_equal(ImageSet([img]).get_array(0)[..., 0], expected)
    np.testing.assert_array_equal(ImageSet(ramp[None]).get_array(0)[..., 0], expected)
    # A dim image stays dim: the scale does not depend on the image.
    dim = np.full((1, 4, 4), 5140, dtype=np.uint16)
    assert (ImageSet(dim).get_array(0) == 20).all()


def test_integer_images_out_of_range_are_refused():
    with pytest.raises(ImageLoadError, match=r"int32 image values lie in \[0, 300\]"):
        ImageSet(np.arange(301, dtype=np.int32)[None, None, :]).get_array(0)


def test_transparent_pixels_become_white():
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)  # fully transparent black
    out = ImageSet([Image.fromarray(rgba, mode="RGBA")]).get_array(0)
    assert (out == 255).all()
    out = ImageSet(rgba[None]).get_array(0)
    assert (out == 255).all()


def test_paths_and_fingerprints_match_arrays(tmp_path, pixels):
    paths = []
    for i, p in enumerate(pixels):
        path = tmp_path / f"img{i}.png"
        Image.fromarray(p).save(path)
        paths.append(str(path))
    from_files = ImageSet(paths)
    np.testing.assert_array_equal(from_files.get_array(3), pixels[3])
    np.testing.assert_array_equal(from_files.fingerprints(), ImageSet(pixels).fingerprints())
    folder = ImageSet.from_folder(tmp_path)
    assert list(folder.ids) == [f"img{i}" for i in range(6)]


def test_fingerprints_distinguish_content_and_shape(pixels):
    fps = ImageSet(pixels).fingerprints()
    assert len(set(fps)) == 6 and all(len(f) == 32 for f in fps)
    flat = np.zeros((1, 4, 6, 3), np.uint8)
    tall = np.zeros((1, 6, 4, 3), np.uint8)
    assert ImageSet(flat).fingerprints()[0] != ImageSet(tall).fingerprints()[0]


def test_fingerprints_stable_across_processes(pixels, tmp_path):
    np.save(tmp_path / "p.npy", pixels)
    code = (
        "import numpy as np, sys; from skvem.images import ImageSet; "
        f"print(','.join(ImageSet(np.load({str(tmp_path / 'p.npy')!r})).fingerprints()))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().split(",") == list(ImageSet(pixels).fingerprints())


def test_missing_truncated_and_non_image_files(tmp_path, pixels):
    good = tmp_path / "good.png"
    Image.fromarray(pixels[0]).save(good)
    truncated = tmp_path / "trunc.png"
    truncated.write_bytes(good.read_bytes()[:60])
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    images = ImageSet([str(good), str(tmp_path / "missing.png"), str(truncated), str(text)])
    images.get_array(0)
    with pytest.raises(ImageLoadError, match=r"image 1 .*missing\.png.*not found"):
        images.get_array(1)
    with pytest.raises(ImageLoadError, match=r"image 2 .*trunc\.png"):
        images.get_array(2)
    with pytest.raises(ImageLoadError, match=r"image 3 .*notes\.png"):
        images.get_array(3)
    # In a view, the message gives the position in the view too.
    with pytest.raises(ImageLoadError, match=r"index 0 of this view"):
        images[[3]].get_array(0)


@pytest.mark.parametrize(
    "key, expected",
    [
        (slice(1, 4), [1, 2, 3]),
        (np.array([5, 0, 2]), [5, 0, 2]),
        ([4, 4], [4, 4]),
        (np.array([True, False, True, False, False, True]), [0, 2, 5]),
        (np.array([], dtype=int), []),
    ],
)
def test_indexing_returns_views_with_columns(pixels, key, expected):
    images = ImageSet(pixels, ids=np.arange(6) * 10, captions=[f"c{i}" for i in range(6)])
    view = images[key]
    assert isinstance(view, ImageSet) and len(view) == len(expected)
    assert list(view.ids) == [10 * e for e in expected]
    assert list(view.captions) == [f"c{e}" for e in expected]
    for pos, e in enumerate(expected):
        np.testing.assert_array_equal(view.get_array(pos), pixels[e])
    assert view._source is images._source  # no pixel copy


def test_views_compose(pixels):
    images = ImageSet(pixels)
    view = images[1:][np.array([0, 2])][::-1]
    np.testing.assert_array_equal(view.get_array(0), pixels[3])
    np.testing.assert_array_equal(view.get_array(1), pixels[1])


def test_bad_indexing(pixels):
    images = ImageSet(pixels)
    with pytest.raises(IndexError):
        images[np.array([True, False])]
    with pytest.raises(IndexError):
        images.get_array(6)
    with pytest.raises(IndexError):
        images[np.array([0.5])]


def test_sklearn_slices_like_an_array(pixels):
    images = ImageSet(pixels, captions=list("abcdef"))
    for train, test in KFold(3).split(images):
        part = _safe_indexing(images, train)
        assert isinstance(part, ImageSet)
        assert list(part.captions) == [images.captions[i] for i in train]


def test_hdf5_is_read_lazily_and_pickles(tmp_path, pixels):
    path = tmp_path / "stim.hdf5"
    with h5py.File(path, "w") as f:
        f.create_dataset("imgBrick", data=pixels, chunks=(1, 9, 7, 3))
    images = ImageSet.from_hdf5(path, "imgBrick")
    assert len(images) == 6 and images._source._file is None  # nothing opened yet
    reads = []
    source = images._source
    original = type(source).raw
    source.raw = lambda i: (reads.append(i), original(source, i))[1]
    np.testing.assert_array_equal(images[np.array([4])].get_array(0), pixels[4])
    assert reads == [4]  # one image read, never the whole dataset
    del source.raw
    clone = pickle.loads(pickle.dumps(images[2:]))
    np.testing.assert_array_equal(clone.get_array(0), pixels[2])
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(as_imageset(f["imgBrick"]).get_array(5), pixels[5])


def test_hdf5_errors(tmp_path, pixels):
    with pytest.raises(FileNotFoundError, match="nope.hdf5"):
        ImageSet.from_hdf5(tmp_path / "nope.hdf5", "imgBrick")
    path = tmp_path / "s.hdf5"
    with h5py.File(path, "w") as f:
        f.create_dataset("other", data=pixels)
    with pytest.raises(ImageLoadError, match="has no dataset 'imgBrick'"):
        ImageSet.from_hdf5(path, "imgBrick")
    garbage = tmp_path / "garbage.hdf5"
    garbage.write_bytes(np.random.RandomState(0).bytes(4096))
    with pytest.raises(ImageLoadError, match=r"cannot open .*garbage\.hdf5.* as an HDF5 file"):
        ImageSet.from_hdf5(garbage)


def test_as_imageset_and_input_errors(pixels):
    images = ImageSet(pixels)
    assert as_imageset(images) is images
    assert len(as_imageset([Image.fromarray(p) for p in pixels])) == 6
    with pytest.raises(ValueError, match="shape"):
        as_imageset(np.zeros((3, 4)))
    with pytest.raises(TypeError, match="wrap a single image"):
        as_imageset("one.png")
    with pytest.raises(TypeError, match="image 1 is a int"):
        as_imageset([Image.fromarray(pixels[0]), 3])
    with pytest.raises(ValueError, match="captions has 2 entries"):
        ImageSet(pixels, captions=["a", "b"])


def test_repeated_images_cannot_get_two_captions(pixels):
    boot = ImageSet(pixels)[[0, 0, 1]]
    assert boot.with_captions(["a", "a", "b"]).captions.tolist() == ["a", "a", "b"]
    with pytest.raises(ValueError, match="repeats images"):
        boot.with_captions(["a", "z", "b"])


def test_hdf5_handle_is_reopened_in_a_child_process(tmp_path, pixels):
    path = tmp_path / "stim.hdf5"
    with h5py.File(path, "w") as f:
        f.create_dataset("imgBrick", data=pixels)
    images = ImageSet.from_hdf5(path)
    images.get_array(0)  # opens the handle in this process
    source = images._source
    source._pid = -1  # as a forked child sees it
    np.testing.assert_array_equal(images.get_array(3), pixels[3])
    assert source._pid == os.getpid()


def test_with_captions_and_rewrap(pixels):
    images = ImageSet(pixels)[2:5].with_captions(["x", "y", "z"])
    assert list(images.captions) == ["x", "y", "z"]
    assert ImageSet(images).captions.tolist() == ["x", "y", "z"]


def test_pickle_array_view(pixels):
    view = ImageSet(pixels, captions=list("abcdef"))[[1, 3]]
    clone = pickle.loads(pickle.dumps(view))
    assert clone.captions.tolist() == ["b", "d"]
    assert clone.fingerprints().tolist() == view.fingerprints().tolist()


def test_fingerprint_array_matches_method(pixels):
    assert fingerprint_array(pixels[0]) == ImageSet(pixels).fingerprints()[0]


# ---------------------------------------------------------------------------
# Issue 13: float images by one rule; fingerprints that follow the pixels;
# columns that say what is wrong


def test_float_pil_images_follow_the_array_rule(tmp_path):
    ramp = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    expected = ImageSet(ramp[None]).get_array(0)
    assert expected.max() == 255 and len(np.unique(expected)) > 2
    img = Image.fromarray(ramp)
    assert img.mode == "F"
    np.testing.assert_array_equal(ImageSet([img]).get_array(0), expected)
    tiff = tmp_path / "float.tif"
    img.save(tiff)
    np.testing.assert_array_equal(ImageSet([str(tiff)]).get_array(0), expected)


@pytest.mark.parametrize("value", [np.nan, np.inf, 2.0])
def test_bad_float_pixels_are_refused_on_every_path(tmp_path, value):
    ramp = np.linspace(0, 1, 16, dtype=np.float32).reshape(4, 4)
    ramp[1, 2] = value
    tiff = tmp_path / "bad.tif"
    Image.fromarray(ramp).save(tiff)
    match = "NaN or infinite" if not np.isfinite(value) else r"\[0, 1\]"
    for images in (ImageSet(ramp[None]), ImageSet([Image.fromarray(ramp)]), ImageSet([str(tiff)])):
        with pytest.raises(ImageLoadError, match=match):
            images.get_array(0)


def test_fingerprints_follow_in_place_array_edits(pixels):
    images = ImageSet(pixels.copy())
    before = images.fingerprints()
    images._source.items[2] = 0  # the caller's array, edited in place
    after = images.fingerprints()
    assert after[2] != before[2] and list(after[[0, 1, 3]]) == list(before[[0, 1, 3]])
    assert after[2] == fingerprint_array(np.zeros_like(pixels[2]))


def test_fingerprints_follow_pil_edits(pixels):
    img = Image.fromarray(pixels[0])
    images = ImageSet([img])
    before = images.fingerprints()[0]
    img.paste((0, 0, 0), (0, 0, 7, 9))
    assert images.fingerprints()[0] != before


def test_fingerprints_follow_rewritten_files(tmp_path, pixels):
    path = tmp_path / "a.png"
    Image.fromarray(pixels[0]).save(path)
    images = ImageSet([str(path)])
    before = images.fingerprints()[0]
    reads = []
    original = images._source.read
    images._source.read = lambda j: (reads.append(j), original(j))[1]
    assert images.fingerprints()[0] == before and reads == []  # unchanged file: remembered
    Image.fromarray(pixels[1]).save(path)  # rewritten in place
    assert images.fingerprints()[0] == fingerprint_array(pixels[1]) and reads == [0]
    replacement = tmp_path / "b.png"
    Image.fromarray(pixels[2]).save(replacement)
    os.replace(replacement, path)  # replaced atomically
    assert images.fingerprints()[0] == fingerprint_array(pixels[2])


def test_fingerprints_follow_a_rewritten_hdf5_file(tmp_path, pixels):
    path = tmp_path / "stim.hdf5"
    with h5py.File(path, "w") as f:
        f.create_dataset("imgBrick", data=pixels)
    images = ImageSet.from_hdf5(path)
    before = images.fingerprints()
    new = tmp_path / "new.hdf5"
    with h5py.File(new, "w") as f:  # another process writes the new version
        f.create_dataset("imgBrick", data=pixels[::-1])
    os.replace(new, path)
    after = images.fingerprints()
    assert list(after) == list(before[::-1])
    np.testing.assert_array_equal(images.get_array(0), pixels[5])


def test_repeated_images_are_fingerprinted_once(pixels):
    images = ImageSet(pixels)[[1, 1, 1, 2]]
    reads = []
    original = images._source.read
    images._source.read = lambda j: (reads.append(j), original(j))[1]
    fps = images.fingerprints()
    assert reads == [1, 2] and fps[0] == fps[1] == fps[2] != fps[3]


def test_captions_must_be_a_sized_ordered_sequence(pixels):
    with pytest.raises(TypeError, match="captions must be a sequence.*generator"):
        ImageSet(pixels, captions=(f"c{i}" for i in range(6)))
    with pytest.raises(TypeError, match="captions must be a sequence.*set"):
        ImageSet(pixels[:2], captions={"a", "b"})
    with pytest.raises(TypeError, match=r"captions\[3\] is a int"):
        ImageSet(pixels, captions=["a", "b", "c", 4, "e", "f"])


def test_pandas_missing_captions_and_ids():
    pd = pytest.importorskip("pandas")
    pixels = np.zeros((3, 4, 4, 3), np.uint8)
    captions = pd.Series(["a", np.nan, None])
    images = ImageSet(pixels, captions=captions)
    assert images.captions.tolist() == ["a", None, None]
    boot = images[[1, 1, 0]]  # a view repeating a caption-less image
    assert boot.with_captions([None, np.nan, "a"]).captions.tolist() == [None, None, "a"]
    assert ImageSet(pixels, captions=pd.array(["a", pd.NA, "c"], dtype="string")).captions[1] is None
    with pytest.raises(ValueError, match=r"ids has 1 missing values \(None or NaN\) at positions 1"):
        ImageSet(pixels, ids=pd.Series([1.0, np.nan, 3.0]))
