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
    with pytest.raises(KeyError, match="imgBrick"):
        ImageSet.from_hdf5(path, "imgBrick")


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
