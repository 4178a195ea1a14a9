"""Captioning throughput: batching, cache hits, decode overlap, and sharded runs.

Side by side, in one run, with the same tiny random chat VLM (SmolVLM
architecture: vision tower, pixel shuffle, Llama decoder, chat template,
image splitting) written to a temporary folder, so nothing is downloaded.

**Batching and the cache** (in-memory images of mixed sizes):

* ``loop``: plain transformers, one image at a time (processor, generate,
  decode the new tokens): what a script without batching does;
* ``batched``: ``CaptionTransformer(batch_size=16, cache_dir=False)``, with
  left-padded batches of images of mixed aspect ratios;
* ``cache hits``: a second run in a fresh ``ImageSet`` (fingerprints are
  recomputed, as in a new process) with every caption in the cache.

Both captioning paths must produce the same captions (checked). Ratios are
loop time / batched time (above 1: batching is faster). A tiny model
overstates the per-call overhead that batching removes; on a GPU with a
real VLM the gain comes from filling the device instead.

**Decode overlap** (``_captioning_scale.overlap``): PNG files of 425 x 425 random pixels
(incompressible, so expensive to decode) in a folder, captioned without a
cache by ``CaptionTransformer(num_workers=0)`` (decode, then generate, one
after the other: the 0.1 loop), ``num_workers=2`` (decoding threads ahead of
generation) and a ``torch.utils.data.DataLoader`` with 2 worker processes
feeding the same model; ``model only`` runs the model on images decoded
beforehand (the floor). Torch runs on one thread, so one core is the
"accelerator" and the others decode. Also with a fresh cache, where every
image is read once more to be fingerprinted. The overlap needs a free core:
on a machine whose cores are all busy it cannot help (the load average is
recorded). So the same three paths also run with the model replaced by a
simulated accelerator that sleeps the tiny model's measured time per image
(generation on a GPU leaves the CPU free in the same way).

**Sharded runs** (``_captioning_scale.sharded``): ``skvem caption --shard K/4 --export``
in 4 processes at once, each with its own cache, then ``skvem.import_cache``
of their 4 files, against one ``skvem caption`` process: same captions
(checked), wall-time ratio. Each process pays its own start-up and model load.

Run::

    python benchmarks/bench_captioning.py [--quick] [--json PATH]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
SHAPES = [(96, 128), (128, 96), (112, 112), (80, 160)]


def _tiny():
    from skvem.testing import language_models

    return language_models


def _batching(quick):
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from skvem._utils import hub as _hub
    from skvem.language.captioning import CaptionTransformer
    from skvem.images import ImageSet

    tiny = _tiny()
    n = 16 if quick else 64
    max_new_tokens = 16
    batch_size = 16
    prompt = "Describe this image in detail."
    arrays = tiny.make_images(n, seed=11, shapes=SHAPES)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        folder = tiny.make_tiny_smolvlm(os.path.join(tmp, "smolvlm"))
        images = ImageSet(arrays)
        pil = [images.get_pil(i) for i in range(n)]

        processor = AutoProcessor.from_pretrained(folder)
        model = AutoModelForImageTextToText.from_pretrained(folder).eval()
        messages = [
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}
        ]
        text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

        def loop():
            out = []
            for im in pil:
                inputs = processor(text=[text], images=[[im]], return_tensors="pt")
                with torch.no_grad():
                    seq = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
                new = seq[0, inputs["input_ids"].shape[1] :]
                out.append(processor.tokenizer.decode(new, skip_special_tokens=True).strip())
            return out

        captioner = CaptionTransformer(
            model=str(folder),
            prompt=prompt,
            max_new_tokens=max_new_tokens,
            batch_size=batch_size,
            cache_dir=False,
            device="cpu",
        ).fit(images)
        captioner.transform(images[:2])  # load the model outside the timing

        def batched():
            return list(captioner.transform(images))

        loop()  # warm-up
        t0 = time.perf_counter()
        ref = loop()
        t_loop = time.perf_counter() - t0
        t0 = time.perf_counter()
        ours = batched()
        t_batched = time.perf_counter() - t0

        cache_dir = os.path.join(tmp, "cache")
        cached = CaptionTransformer(
            model=str(folder),
            prompt=prompt,
            max_new_tokens=max_new_tokens,
            batch_size=batch_size,
            cache_dir=cache_dir,
            device="cpu",
        )
        t0 = time.perf_counter()
        cached.fit_transform(images)
        t_fill = time.perf_counter() - t0
        _hub.release_models()
        fresh = ImageSet(arrays)  # fingerprints recomputed, as in a new process
        t0 = time.perf_counter()
        hits = CaptionTransformer(
            model=str(folder),
            prompt=prompt,
            max_new_tokens=max_new_tokens,
            batch_size=batch_size,
            cache_dir=cache_dir,
            device="cpu",
        ).fit_transform(fresh)
        t_hits = time.perf_counter() - t0

    return {
        "n_images": n,
        "image_shapes": [list(s) for s in SHAPES],
        "max_new_tokens": max_new_tokens,
        "batch_size": batch_size,
        "loop_s": t_loop,
        "batched_s": t_batched,
        "loop_images_per_s": n / t_loop,
        "batched_images_per_s": n / t_batched,
        "ratio_loop_over_batched": t_loop / t_batched,
        "same_captions": ref == ours,
        "cache_fill_s": t_fill,
        "cache_hit_s": t_hits,
        "cache_hit_captions_per_s": n / t_hits,
        "ratio_fill_over_hits": t_fill / t_hits,
        "cache_hits_identical": list(hits) == ours,
    }


def run(quick: bool = False) -> dict:
    from _captioning_scale import overlap, sharded

    out = {"model": "tiny random SmolVLM (2+2 layers, width 32)", "cpu_cores": os.cpu_count()}
    out.update(_batching(quick))
    out.update(overlap(quick))
    out.update(sharded(quick))
    return out


def _print_batching(r):
    print(f"{'path':<22} {'images/s':>10} {'ratio':>8}")
    print(f"{'one-image loop':<22} {r['loop_images_per_s']:>10.1f} {1.0:>8.2f}")
    print(
        f"{'batched (bs=' + str(r['batch_size']) + ')':<22} {r['batched_images_per_s']:>10.1f} "
        f"{r['ratio_loop_over_batched']:>8.2f}"
    )
    print(
        f"{'cache hits':<22} {r['cache_hit_captions_per_s']:>10.1f} "
        f"{r['loop_s'] / r['cache_hit_s']:>8.1f}"
    )
    print(f"same captions: {r['same_captions']}; cache hits identical: {r['cache_hits_identical']}")


def summary_rows(r):
    """Rows of the README/docs speed table (see benchmarks/render_docs.py)."""
    return [
        (f"`CaptionTransformer`, {r['model']}, batch {r['batch_size']}",
         f"{r['batched_images_per_s']:.0f} images/s",
         f"one image at a time: {r['loop_images_per_s']:.0f} images/s",
         f"{r['ratio_loop_over_batched']:.1f}× faster"),
        ("caption cache hits", f"{r['cache_hit_captions_per_s']:.0f} captions/s", "captioning",
         f"{r['loop_s'] / r['cache_hit_s']:.0f}× faster"),
    ]


def print_table(r):
    from _captioning_scale import print_overlap

    _print_batching(r)
    print()
    print_overlap(r)


def main(argv=None):
    from _cli import bench_main

    return bench_main(__doc__, run, print_table, 'fewer images', argv)


if __name__ == "__main__":
    main()
