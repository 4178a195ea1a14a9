"""No stale cache hits (issue 13, items 1 and 5b)."""

import runpy

import numpy as np
import pytest

from skvem._utils.callable_key import function_key
from skvem._utils.cache import DiskCache
from skvem.language.captioning import CaptionTransformer

IMAGES = np.zeros((3, 8, 8, 3), dtype=np.uint8)


def _script(path, body, *, preamble=""):
    path.write_text(f"{preamble}\ndef describe(images):\n    {body}\n")
    return runpy.run_path(str(path), run_name="__main__")["describe"]


def _captions(func, cache_dir):
    return list(CaptionTransformer(model=func, cache_dir=cache_dir).fit_transform(IMAGES))


def test_two_main_scripts_with_the_same_function_name_do_not_share(tmp_path):
    one = _script(tmp_path / "one.py", 'return ["one"] * len(images)')
    two = _script(tmp_path / "two.py", 'return ["two"] * len(images)')
    assert one.__qualname__ == two.__qualname__ and one.__module__ == two.__module__ == "__main__"
    assert _captions(one, tmp_path / "c") == ["one"] * 3
    assert _captions(two, tmp_path / "c") == ["two"] * 3
    assert _captions(one, tmp_path / "c") == ["one"] * 3  # both cached, side by side
    assert DiskCache(tmp_path / "c").count() == 2


def test_editing_the_body_or_a_constant_it_reads_recaptions(tmp_path):
    script = tmp_path / "job.py"
    assert _captions(_script(script, 'return ["old"] * len(images)'), tmp_path / "c") == ["old"] * 3
    assert _captions(_script(script, 'return ["new"] * len(images)'), tmp_path / "c") == ["new"] * 3
    body = "return [WORD] * len(images)"
    first = _script(script, body, preamble="WORD = 'cat'")
    second = _script(script, body, preamble="WORD = 'dog'")
    assert _captions(first, tmp_path / "c") == ["cat"] * 3
    assert _captions(second, tmp_path / "c") == ["dog"] * 3


def test_the_same_code_keeps_its_captions(tmp_path):
    script = tmp_path / "job.py"
    func = _script(script, 'CALLS.append(1); return ["x"] * len(images)', preamble="CALLS = []")
    again = _script(script, 'CALLS.append(1); return ["x"] * len(images)', preamble="CALLS = []")
    calls = func.__globals__["CALLS"]
    _captions(func, tmp_path / "c")
    assert calls == [1]
    # a fresh run of the same script (CALLS empty again): a cache hit
    assert _captions(again, tmp_path / "c") == ["x"] * 3
    assert again.__globals__["CALLS"] == []


def test_helper_functions_of_the_same_module_are_part_of_the_key(tmp_path):
    pre = "def word():\n    return {!r}\n"
    first = _script(tmp_path / "a.py", "return [word()] * len(images)", preamble=pre.format("a"))
    second = _script(tmp_path / "b.py", "return [word()] * len(images)", preamble=pre.format("b"))
    assert function_key(first)[0] != function_key(second)[0]


def test_a_function_reading_an_object_is_not_cached_and_says_why(tmp_path):
    func = _script(
        tmp_path / "m.py",
        "return [MODEL.word] * len(images)",
        preamble="class Model:\n    word = 'm'\nMODEL = Model()",
    )
    assert function_key(func)[0] is None
    with pytest.warns(UserWarning, match=r"Model value.*cache_key"):
        assert _captions(func, tmp_path / "c") == ["m"] * 3
    assert not DiskCache(tmp_path / "c").path.exists() or DiskCache(tmp_path / "c").count() == 0
    func.cache_key = "my-model/v1"  # an explicit key makes it cacheable
    assert _captions(func, tmp_path / "c") == ["m"] * 3
    assert DiskCache(tmp_path / "c").count() == 1


def test_function_key_handles_recursion_defaults_and_closures():
    def fact(n, *, base=1):
        return base if n <= 1 else n * fact(n - 1)

    key, reason = function_key(fact)  # a local function: its closure holds itself
    assert key is not None and reason == ""
    with pytest.raises(TypeError, match="Python function"):
        function_key(len)


@pytest.mark.parametrize("result", [{"a", "b", "c"}, {0: "a", 1: "b", 2: "c"}, "abc",
                                    (c for c in "abc")], ids=["set", "dict", "str", "generator"])
def test_unordered_caption_containers_are_refused(result):
    def captioner(images):
        return result

    with pytest.raises(TypeError, match="must return a list of str"):
        CaptionTransformer(model=captioner, cache_dir=False, batch_size=3).fit_transform(IMAGES)


@pytest.mark.parametrize("make", [list, tuple, lambda c: np.array(c, dtype=object)])
def test_ordered_caption_sequences_are_accepted(make):
    def captioner(images):
        return make(["a", "b", "c"][: len(images)])

    out = CaptionTransformer(model=captioner, cache_dir=False, batch_size=3).fit_transform(IMAGES)
    assert list(out) == ["a", "b", "c"]


def test_a_checkpoint_overwritten_at_the_same_path_is_reloaded(tmp_path):
    # issue 13 item 1c: the in-process model memo is keyed by the file's identity
    import os

    from skvem import ImageFeaturizer
    from skvem.testing.backbones import random_images, tiny_timm_checkpoint

    images = random_images(3, size=32)
    name, ckpt = tiny_timm_checkpoint(str(tmp_path), seed=0)
    feat = ImageFeaturizer(backbone=name, pretrained=ckpt, cache_dir=False, device="cpu")
    first = feat.fit_transform(images)
    again = ImageFeaturizer(backbone=name, pretrained=ckpt, cache_dir=False, device="cpu")
    np.testing.assert_array_equal(again.fit_transform(images), first)
    stat = os.stat(ckpt)
    tiny_timm_checkpoint(str(tmp_path), seed=1)  # new weights, same path
    os.utime(ckpt, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # even within one tick
    fresh = ImageFeaturizer(backbone=name, pretrained=ckpt, cache_dir=False, device="cpu")
    assert not np.allclose(fresh.fit_transform(images), first)


def test_local_stamp_follows_files_and_ignores_names(tmp_path):
    from skvem._utils.hub import local_stamp

    ckpt = tmp_path / "w.pt"
    ckpt.write_bytes(b"a")
    before = local_stamp("timm:resnet18", str(ckpt), f"hf:{tmp_path}")
    assert before[0] is None and before[1] is not None and before[2] is not None
    ckpt.write_bytes(b"bb")
    assert local_stamp("timm:resnet18", str(ckpt), f"hf:{tmp_path}") != before
