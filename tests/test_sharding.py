"""Sharded captioning (``skvem caption --shard K/N``) and cache export/import."""

import json
import os
import pytest
from PIL import Image

from skvem._utils.cache import DiskCache, namespace_key
from skvem._utils.cache_transfer import CacheImportError, export_cache, import_cache
from skvem._utils.sharding import parse_shard, shard_bounds
from skvem.app.cli import main
from skvem.images import ImageSet
from skvem.language import _hf_captioner
from skvem.language.captioning import CaptionTransformer
from skvem.testing import language_models as tiny


@pytest.fixture(scope="module")
def blip_dir(tmp_path_factory):
    return tiny.make_tiny_blip(tmp_path_factory.mktemp("blip"))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    for i, arr in enumerate(tiny.make_images(11, seed=21)):
        Image.fromarray(arr).save(root / f"img_{i:03d}.png")
    return root


def _records(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


@pytest.mark.parametrize("spec", ["5/4", "0/0", "a/b", "0/4", "3", "", "1/0", "-1/4", "2/3/4"])
def test_bad_shard_specs(spec, tmp_path, blip_dir, folder, capsys):
    with pytest.raises(ValueError, match="--shard"):
        parse_shard(spec)
    code = main(["caption", str(folder), "--model", str(blip_dir), f"--shard={spec}",
                 "--out", str(tmp_path / "o.jsonl"), "--cache-dir", str(tmp_path / "c")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "--shard" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "c").exists()  # refused before anything was loaded or written


@pytest.mark.parametrize("n", [0, 1, 7, 100])
@pytest.mark.parametrize("n_shards", [1, 3, 8])
def test_shards_are_disjoint_and_cover_everything(n, n_shards):
    assert parse_shard(f" 2 / {max(n_shards, 2)} ") == (2, max(n_shards, 2))
    parts = [range(*shard_bounds(n, k, n_shards)) for k in range(1, n_shards + 1)]
    assert [i for p in parts for i in p] == list(range(n))
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1


def _caption_cli(folder, blip_dir, tmp, *extra):
    return main(["caption", str(folder), "--model", str(blip_dir), "--max-new-tokens", "5",
                 "--batch-size", "2", *extra])


def test_shards_in_any_order_then_import_equal_one_process(
    tmp_path, blip_dir, folder, monkeypatch, capsys
):
    whole = tmp_path / "whole.jsonl"
    assert _caption_cli(folder, blip_dir, tmp_path, "--out", str(whole),
                        "--cache-dir", str(tmp_path / "whole-cache")) == 0
    exports, records = [], []
    for k in (3, 1, 2):  # any order; each job has its own (node-local) cache
        out, exp = tmp_path / f"shard-{k}.jsonl", tmp_path / f"shard-{k}.skvem.jsonl"
        assert _caption_cli(folder, blip_dir, tmp_path, "--shard", f"{k}/3", "--out", str(out),
                            "--export", str(exp), "--cache-dir", str(tmp_path / f"c{k}")) == 0
        exports.append(exp)
        records.append((k, _records(out)))
    shards = [r for _, r in sorted(records)]
    assert [len(r) for r in shards] == [3, 4, 4]
    assert [r for part in shards for r in part] == _records(whole)

    main_cache = tmp_path / "main-cache"
    assert main(["cache", "import", *map(str, exports), "--cache-dir", str(main_cache),
                 "--model", str(blip_dir), "--max-new-tokens", "5"]) == 0
    assert main(["cache", "import", *map(str, exports), "--cache-dir", str(main_cache)]) == 0
    report = import_cache(exports, main_cache)  # idempotent
    assert sum(r["new"] for r in report) == 0 and sum(r["present"] for r in report) == 11

    def no_loading(*args, **kwargs):
        raise AssertionError("a caption was not found in the imported cache")

    monkeypatch.setattr(_hf_captioner, "load_hf_captioner", no_loading)
    cap = CaptionTransformer(model=str(blip_dir), max_new_tokens=5, cache_dir=main_cache)
    out = cap.fit_transform(ImageSet.from_folder(folder))
    assert list(out) == [r["caption"] for r in _records(whole)]

    capsys.readouterr()
    assert main(["cache", "list", "--cache-dir", str(main_cache)]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 1 and " caption " in listed[0] and " 11 " in listed[0]
    assert main(["cache", "list", "--cache-dir", str(tmp_path / "nothing-here")]) == 2

    # export of the merged cache round-trips into yet another cache
    assert main(["cache", "export", "--out", str(tmp_path / "all.jsonl"),
                 "--cache-dir", str(main_cache)]) == 0
    other = DiskCache(tmp_path / "other")
    assert import_cache([tmp_path / "all.jsonl"], other)[0]["new"] == 11
    assert CaptionTransformer(model=str(blip_dir), max_new_tokens=5, cache_dir=other.directory
                              ).fit_transform(ImageSet.from_folder(folder)).tolist() == list(out)


def _callable_export(tmp_path, name, **params):
    cap = CaptionTransformer(model=tiny.LoggingCaptioner(tmp_path / "log"), cache_dir=tmp_path / name,
                             **params)
    cap.fit_transform(tiny.make_images(4, seed=2))
    path = tmp_path / f"{name}.jsonl"
    export_cache(path, DiskCache(tmp_path / name))
    return path, cap


def test_import_refuses_other_settings_naming_them(tmp_path, blip_dir, folder, capsys):
    path, cap = _callable_export(tmp_path, "a", prompt="Describe.")
    target = DiskCache(tmp_path / "target")
    other_prompt = cap.set_params(prompt="What is this?").cache_settings()
    with pytest.raises(CacheImportError, match=r"prompt: file has 'Describe.', expected 'What is"):
        import_cache([path], target, expect=other_prompt)
    other_model = CaptionTransformer(
        model=tiny.LoggingCaptioner(tmp_path / "log", cache_key="another/v2"), prompt="Describe."
    ).cache_settings()
    with pytest.raises(CacheImportError, match="captioner: file has 'callable:tests.Logging"):
        import_cache([path], target, expect=other_model)
    assert target.count() == 0  # nothing written

    # the command line names the difference too, and writes nothing
    exp = tmp_path / "blip.jsonl"
    assert _caption_cli(folder, blip_dir, tmp_path, "--out", str(tmp_path / "o.jsonl"),
                        "--export", str(exp), "--cache-dir", str(tmp_path / "bc")) == 0
    capsys.readouterr()
    for extra, what in ((["--prompt", "Other."], "prompt"), (["--max-new-tokens", "9"],
                                                            "max_new_tokens")):
        code = main(["cache", "import", str(exp), "--cache-dir", str(tmp_path / "t2"),
                     "--model", str(blip_dir), *(["--max-new-tokens", "5"] if what == "prompt"
                                                 else []), *extra])
        err = capsys.readouterr().err
        assert code == 2 and f"{what}: file has" in err and "refused" in err
    assert DiskCache(tmp_path / "t2").count() == 0


def test_import_refuses_damaged_files_and_writes_nothing(tmp_path):
    good, _ = _callable_export(tmp_path, "good")
    lines = good.read_text().splitlines()
    truncated = tmp_path / "truncated.jsonl"
    truncated.write_text("\n".join(lines[:-1]) + "\n")
    edited = tmp_path / "edited.jsonl"
    header = json.loads(lines[0])
    header["settings"]["prompt"] = "edited"
    edited.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    plain = tmp_path / "captions.jsonl"
    plain.write_text(json.dumps({"image": "a.png", "caption": "x"}) + "\n")
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(b"\x00\xffnot text\n")
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_text("not json\n")
    target = DiskCache(tmp_path / "target")
    for bad, match in ((truncated, "announces 4 entries"), (edited, "does not match its settings"),
                       (plain, "no header line"), (garbage, "not JSON"),
                       (binary, "not a text file"),
                       (tmp_path / "missing.jsonl", "cannot read")):
        with pytest.raises(CacheImportError, match=match):
            import_cache([good, bad], target)  # the good file is not written either
    assert target.count() == 0


def test_crashed_shard_keeps_finished_batches_and_rerun_resumes(
    tmp_path, blip_dir, folder, monkeypatch
):
    """A shard job dying mid-run keeps its finished batches; the rerun captions the rest.

    The crash is an exception from the model after 2 batches (SIGKILL of a
    captioning process is tested in test_captioning.test_killed_run_resumes).
    """
    real = _hf_captioner.load_hf_captioner
    calls = []

    def counting(*args, **kwargs):
        model = real(*args, **kwargs)

        def caption(images, **kw):
            if crash_after is not None and len(calls) == crash_after:
                raise RuntimeError("node lost")
            calls.append(len(images))
            return model(images, **kw)

        return caption

    monkeypatch.setattr(_hf_captioner, "load_hf_captioner", counting)
    out, cache = tmp_path / "s2.jsonl", tmp_path / "cache"
    args = ["--shard", "2/2", "--out", str(out), "--cache-dir", str(cache), "--batch-size", "2"]
    crash_after = 2
    assert _caption_cli(folder, blip_dir, tmp_path, *args) == 2  # shard 2/2: 6 images
    assert DiskCache(cache).count() == 4 and not out.exists()
    calls.clear()
    crash_after = None
    assert _caption_cli(folder, blip_dir, tmp_path, *args) == 0
    assert calls == [2]  # only the last batch is captioned again
    records = _records(out)
    assert [os.path.basename(r["image"]) for r in records] == [
        f"img_{i:03d}.png" for i in range(5, 11)
    ]
    settings = CaptionTransformer(model=str(blip_dir), max_new_tokens=5).cache_settings()
    fps = ImageSet.from_folder(folder)[5:].fingerprints().tolist()
    kept = DiskCache(cache).get_many(namespace_key("caption", settings), fps)
    assert [kept[fp] for fp in fps] == [r["caption"] for r in records]
