"""Decode overlap and sharded runs, for ``bench_captioning.py`` (see its docstring)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import warnings

BATCH = 16
MAX_NEW_TOKENS = 8
SIZE = (425, 425)


def _write_pngs(folder, n, seed):
    from PIL import Image

    from skvem.testing import language_models as tiny

    os.makedirs(folder, exist_ok=True)
    for i, arr in enumerate(tiny.make_images(n, seed=seed, shapes=[SIZE])):
        Image.fromarray(arr).save(os.path.join(folder, f"{i:05d}.png"))
    return folder


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


class _Decoded:
    """A map-style dataset of PIL images for a DataLoader (decoded in its workers)."""

    def __init__(self, images):
        self.images = images

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images.get_pil(i)


class _Accelerator:
    """A captioner whose work leaves the CPU free, as generation on a GPU does.

    It sleeps ``seconds_per_image`` per image (set to the tiny model's measured
    time) and answers with the image's mean, so a machine whose cores are all
    busy can still show how much decoding the pipeline hides.
    """

    cache_key = "bench.accelerator/v1"

    def __init__(self, seconds_per_image):
        self.seconds_per_image = seconds_per_image

    def __call__(self, images):
        import numpy as np

        time.sleep(self.seconds_per_image * len(images))
        return [f"{np.asarray(im).mean():.3f}" for im in images]


def overlap(quick=False):
    import torch

    from skvem.images import ImageSet
    from skvem.language.captioning import CaptionTransformer
    from skvem.testing import language_models as tiny

    n = 160 if quick else 1000
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pngs = _write_pngs(os.path.join(tmp, "pngs"), n, seed=3)
            model = tiny.make_tiny_smolvlm(os.path.join(tmp, "smolvlm"))
            kw = dict(model=str(model), max_new_tokens=MAX_NEW_TOKENS, batch_size=BATCH,
                      device="cpu")
            cap = CaptionTransformer(cache_dir=False, **kw).fit()
            cap.transform(ImageSet.from_folder(pngs)[:2])  # load the model outside the timing
            generate = cap._get_captioner()

            def fresh():  # a new ImageSet: nothing decoded or fingerprinted yet
                return ImageSet.from_folder(pngs)

            t_decode, pil = _timed(lambda: [fresh().get_pil(i) for i in range(n)])

            def model_only():
                return [c for s in range(0, n, BATCH) for c in generate(pil[s : s + BATCH])]

            def pipeline(workers, cache_dir=False):
                c = CaptionTransformer(cache_dir=cache_dir, num_workers=workers, **kw).fit()
                return list(c.transform(fresh()))

            def dataloader(workers=2):
                loader = torch.utils.data.DataLoader(
                    _Decoded(fresh()), batch_size=BATCH, num_workers=workers,
                    collate_fn=list, prefetch_factor=2,
                )
                return [c for batch in loader for c in generate(batch)]

            t_model, ref = _timed(model_only)
            t_seq, seq = _timed(lambda: pipeline(0))
            t_thr, thr = _timed(lambda: pipeline(2))
            t_dl, dl = _timed(dataloader)
            t_seq_c, seq_c = _timed(lambda: pipeline(0, os.path.join(tmp, "cache0")))
            t_thr_c, thr_c = _timed(lambda: pipeline(2, os.path.join(tmp, "cache2")))
            accel = _Accelerator(t_model / n)

            def accelerated(workers):
                c = CaptionTransformer(model=accel, batch_size=BATCH, cache_dir=False,
                                       num_workers=workers).fit()
                return list(c.transform(fresh()))

            t_acc_model, _ = _timed(lambda: [accel(pil[s : s + BATCH]) for s in range(0, n, BATCH)])
            t_acc_seq, acc_seq = _timed(lambda: accelerated(0))
            t_acc_thr, acc_thr = _timed(lambda: accelerated(2))
    finally:
        torch.set_num_threads(threads)
    return {
        "overlap_n_images": n,
        "overlap_image_size": list(SIZE),
        "overlap_max_new_tokens": MAX_NEW_TOKENS,
        "overlap_batch_size": BATCH,
        "load_average_1min": os.getloadavg()[0],
        "decode_only_s": t_decode,
        "model_only_s": t_model,
        "sequential_s": t_seq,
        "threads2_s": t_thr,
        "dataloader2_s": t_dl,
        "sequential_cached_s": t_seq_c,
        "threads2_cached_s": t_thr_c,
        "ratio_sequential_over_threads": t_seq / t_thr,
        "ratio_sequential_over_dataloader": t_seq / t_dl,
        "ratio_threads_over_model_only": t_thr / t_model,
        "ratio_sequential_over_threads_cached": t_seq_c / t_thr_c,
        "overlap_same_captions": ref == seq == thr == dl == seq_c == thr_c,
        "accel_model_only_s": t_acc_model,
        "accel_sequential_s": t_acc_seq,
        "accel_threads2_s": t_acc_thr,
        "ratio_accel_sequential_over_threads": t_acc_seq / t_acc_thr,
        "ratio_accel_threads_over_model_only": t_acc_thr / t_acc_model,
        "accel_same_captions": acc_seq == acc_thr,
    }


def sharded(quick=False, n_shards=4):
    import json

    from skvem import import_cache
    from skvem.images import ImageSet
    from skvem.language.captioning import CaptionTransformer
    from skvem.testing import language_models as tiny

    n = 48 if quick else 200
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               PYTHONPATH=os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")]))
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pngs = _write_pngs(os.path.join(tmp, "pngs"), n, seed=4)
        model = tiny.make_tiny_smolvlm(os.path.join(tmp, "smolvlm"))

        def command(out, cache, *extra):
            return [sys.executable, "-m", "skvem", "caption", pngs, "--model", str(model),
                    "--max-new-tokens", str(MAX_NEW_TOKENS), "--batch-size", str(BATCH),
                    "--out", out, "--cache-dir", cache, *extra]

        def one():
            subprocess.run(command(os.path.join(tmp, "one.jsonl"), os.path.join(tmp, "c1")),
                           env=env, check=True, capture_output=True)

        def many():
            procs = [
                subprocess.Popen(
                    command(os.path.join(tmp, f"s{k}.jsonl"), os.path.join(tmp, f"c-{k}"),
                            "--shard", f"{k}/{n_shards}", "--export",
                            os.path.join(tmp, f"s{k}.skvem.jsonl")),
                    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                )
                for k in range(1, n_shards + 1)
            ]
            for p in procs:
                if p.wait() != 0:
                    raise RuntimeError(p.stderr.read().decode()[-2000:])
            exports = [os.path.join(tmp, f"s{k}.skvem.jsonl") for k in range(1, n_shards + 1)]
            import_cache(exports, os.path.join(tmp, "merged"))

        t_one, _ = _timed(one)
        t_many, _ = _timed(many)

        def captions(path):
            with open(path) as f:
                return [json.loads(line)["caption"] for line in f]

        whole = captions(os.path.join(tmp, "one.jsonl"))
        parts = [c for k in range(1, n_shards + 1) for c in captions(os.path.join(tmp, f"s{k}.jsonl"))]
        merged = CaptionTransformer(
            model=str(model), max_new_tokens=MAX_NEW_TOKENS, cache_dir=os.path.join(tmp, "merged"),
            num_workers=0,
        ).fit_transform(ImageSet.from_folder(pngs))
    return {
        "sharded_n_images": n,
        "n_shards": n_shards,
        "one_process_s": t_one,
        "sharded_plus_import_s": t_many,
        "ratio_one_over_sharded": t_one / t_many,
        "sharded_same_captions": whole == parts == list(merged),
    }


def print_overlap(r):
    n = r["overlap_n_images"]
    print(f"decode overlap: {n} PNGs {r['overlap_image_size'][0]}x{r['overlap_image_size'][1]}, "
          f"load average {r['load_average_1min']:.1f} on {r['cpu_cores']} cores")
    print(f"{'path':<34} {'s':>8} {'images/s':>9} {'ratio':>7}")
    rows = [
        ("decode only", r["decode_only_s"], None),
        ("model only (pre-decoded)", r["model_only_s"], None),
        ("sequential (num_workers=0)", r["sequential_s"], 1.0),
        ("threads (num_workers=2)", r["threads2_s"], r["ratio_sequential_over_threads"]),
        ("DataLoader (2 processes)", r["dataloader2_s"], r["ratio_sequential_over_dataloader"]),
        ("sequential, fresh cache", r["sequential_cached_s"], None),
        ("threads, fresh cache", r["threads2_cached_s"], r["ratio_sequential_over_threads_cached"]),
    ]
    for name, t, ratio in rows:
        shown = f"{ratio:>7.2f}" if ratio is not None else f"{'':>7}"
        print(f"{name:<34} {t:>8.2f} {n / t:>9.1f} {shown}")
    print(f"threads / model only: {r['ratio_threads_over_model_only']:.2f}; "
          f"same captions: {r['overlap_same_captions']}")
    print("model on a simulated accelerator (sleeps the tiny model's time, CPU free):")
    for name, t, ratio in (
        ("  model only", r["accel_model_only_s"], None),
        ("  sequential (num_workers=0)", r["accel_sequential_s"], 1.0),
        ("  threads (num_workers=2)", r["accel_threads2_s"],
         r["ratio_accel_sequential_over_threads"]),
    ):
        shown = f"{ratio:>7.2f}" if ratio is not None else f"{'':>7}"
        print(f"{name:<34} {t:>8.2f} {n / t:>9.1f} {shown}")
    print(f"  threads / model only: {r['ratio_accel_threads_over_model_only']:.2f}")
    print(f"sharded: {r['sharded_n_images']} images, one process {r['one_process_s']:.1f} s, "
          f"{r['n_shards']} shard processes + import {r['sharded_plus_import_s']:.1f} s, ratio "
          f"{r['ratio_one_over_sharded']:.2f}; same captions: {r['sharded_same_captions']}")
