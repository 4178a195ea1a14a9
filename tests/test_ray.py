"""Captioning and frozen features as a Ray Data job, on a local Ray instance (CPU)."""

import json
import os

import numpy as np
import pytest
from PIL import Image

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

from skvem._utils.cache import DiskCache, namespace_key  # noqa: E402
from skvem.app.cli import main  # noqa: E402
from skvem.images import ImageSet  # noqa: E402
from skvem.language.captioning import CaptionTransformer  # noqa: E402
from skvem.scale import connect_ray, ray_transform  # noqa: E402
from skvem.testing import language_models as tiny  # noqa: E402
from skvem.vision.featurizers import ImageFeaturizer  # noqa: E402


@pytest.fixture(scope="module")
def local_ray():
    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def blip_dir(tmp_path_factory):
    return tiny.make_tiny_blip(tmp_path_factory.mktemp("blip"))


def test_unanswering_address_one_error_nothing_written(tmp_path, blip_dir, capsys):
    # First in this module: it needs Ray not yet initialised in this process.
    if ray.is_initialized():
        pytest.skip("Ray is already initialised in this process")
    with pytest.raises(ConnectionError, match="no Ray cluster answers at '127.0.0.1:9'"):
        connect_ray("127.0.0.1:9", timeout=2)
    assert not ray.is_initialized()
    out, cache = tmp_path / "c.jsonl", tmp_path / "cache"
    code = main(["caption", str(tmp_path), "--model", str(blip_dir), "--ray",
                 "ray://127.0.0.1:9", "--out", str(out), "--cache-dir", str(cache)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "no Ray cluster answers" in err and len(err.splitlines()) == 1
    assert not out.exists() and not cache.exists() and not list(tmp_path.glob("*.partial"))
    with pytest.raises(ValueError, match="expected ray://HOST:PORT"):
        connect_ray("ray://nohostport")


def test_ray_captions_and_cache_entries_equal_one_process(local_ray, tmp_path):
    arrays = tiny.make_images(9, seed=31)
    images = ImageSet(arrays + [arrays[2]])  # a duplicate is captioned once
    log = tmp_path / "log"
    kw = dict(model=tiny.LoggingCaptioner(log), batch_size=2)
    ref = CaptionTransformer(cache_dir=tmp_path / "one", **kw).fit_transform(images)
    cap = CaptionTransformer(cache_dir=tmp_path / "ray", **kw).fit(images)
    out = ray_transform(cap, images, num_replicas=2, num_cpus=0.5)
    assert out.dtype == object and list(out) == list(ref)
    ns = namespace_key("caption", cap.cache_settings())
    one, many = DiskCache(tmp_path / "one"), DiskCache(tmp_path / "ray")
    keys = images.fingerprints().tolist()
    assert many.get_many(ns, keys) == one.get_many(ns, keys) and many.count() == 9
    pids = {line.split()[0] for line in log.read_text().splitlines()}
    assert os.getpid() in {int(p) for p in pids} and len(pids) >= 2  # ran in actors too
    n_calls = tiny.LoggingCaptioner(log).n_calls()
    again = ray_transform(cap, images, num_replicas=2, num_cpus=0.5)  # all cached: no job
    assert list(again) == list(ref) and tiny.LoggingCaptioner(log).n_calls() == n_calls


def test_ray_with_a_hf_captioner_and_the_command_line(local_ray, blip_dir, tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, arr in enumerate(tiny.make_images(5, seed=32)):
        Image.fromarray(arr).save(folder / f"{i}.png")
    ref = CaptionTransformer(model=str(blip_dir), max_new_tokens=4, cache_dir=False).fit_transform(
        ImageSet.from_folder(folder)
    )
    out = tmp_path / "c.jsonl"
    cache = tmp_path / "cache"
    code = main(["caption", str(folder), "--model", str(blip_dir), "--max-new-tokens", "4",
                 "--ray", "--ray-replicas", "1", "--out", str(out), "--cache-dir", str(cache)])
    assert code == 0
    with open(out) as f:
        assert [json.loads(line)["caption"] for line in f] == list(ref)
    assert DiskCache(cache).count() == 5


def test_ray_frozen_features_equal_one_process(local_ray):
    images = ImageSet(tiny.make_images(6, seed=33, shapes=[(32, 32)]))
    feat = ImageFeaturizer(backbone="small-cnn", random_state=0, cache_dir=False, batch_size=4)
    ref = feat.fit_transform(images)
    out = ray_transform(feat, images, num_replicas=1, num_cpus=0.5, batch_size=3)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)


def test_ray_transform_rejects_other_estimators(local_ray):
    from sklearn.preprocessing import StandardScaler

    with pytest.raises(TypeError, match="CaptionTransformer or an ImageFeaturizer"):
        ray_transform(StandardScaler().fit([[0.0], [1.0]]), tiny.make_images(1))
