"""The paper's configuration at real size, on a CPU, through ``skvem algonauts``: a smoke run.

LLM-VEM fine-tunes an EVA02-CLIP image tower (224 px) with the contrastive
loss towards CLIP text embeddings of a vision-language model's descriptions.
This runs exactly that path with random weights (``--pretrained none``,
``--text-pretrained none``: nothing downloads) on a small fake Algonauts
layout (``skvem.testing.datasets.make_fake_algonauts``): the open_clip
``EVA02-B-16`` image tower at 224 px, the ``ViT-L-14`` text tower, and a
tiny local BLIP captioner (``skvem.testing.language_models.make_tiny_blip``)
standing in for the chat VLM. It checks that the command finishes and writes
the submission, and reports the peak memory of the run (resident set size of
the child process) and its end-to-end training images per second.

Run: ``python benchmarks/run.py --only real_config --json benchmarks/results.json``.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time

N_TRAIN, N_TEST = 32, 4
QUICK_TRAIN = 24


def run(quick=False):
    from skvem.testing.datasets import make_fake_algonauts
    from skvem.testing.language_models import make_tiny_blip

    n_train = QUICK_TRAIN if quick else N_TRAIN
    epochs = 1 if quick else 2
    with tempfile.TemporaryDirectory() as tmp:
        make_fake_algonauts(os.path.join(tmp, "data"), subject=1, n_train=n_train, n_test=N_TEST,
                            n_voxels=(200, 200), image_size=256, seed=0)
        blip = make_tiny_blip(os.path.join(tmp, "blip"))
        out = os.path.join(tmp, "out")
        argv = ["algonauts", "--root", os.path.join(tmp, "data"), "--subject", "1", "--out", out,
                "--backbone", "open_clip:EVA02-B-16", "--pretrained", "none", "--captioner", blip,
                "--text-model", "ViT-L-14", "--text-pretrained", "none", "--alignment-weight", "0.1",
                "--epochs", str(epochs), "--batch-size", "8", "--n-components", "8", "--no-refit",
                "--no-figures", "--device", "cpu", "--seed", "0"]
        env = dict(os.environ, SKVEM_CACHE_DIR=os.path.join(tmp, "cache"), HF_HUB_OFFLINE="1")
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "skvem", *argv], capture_output=True, text=True,
                              env=env)
        wall = time.perf_counter() - t0
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        written = sorted(os.listdir(os.path.join(out, "subj01"))) if os.path.isdir(os.path.join(out, "subj01")) else []
    ok = proc.returncode == 0 and {"lh_pred_test.npy", "rh_pred_test.npy"} <= set(written)
    if not ok:
        raise RuntimeError(f"skvem algonauts failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    # 10 % of the training images are held out for the report (--validation-fraction).
    n_fit = n_train - round(0.1 * n_train)
    return {
        "command": "skvem " + " ".join(str(a) if "/" not in str(a) else "<tmp>" for a in argv),
        "n_train": n_train, "n_test": N_TEST, "epochs": epochs, "wall_seconds": wall,
        "peak_rss_gb": peak_kb / 2**20,
        "train_images_per_second_end_to_end": n_fit * epochs / wall,
        "passed": ok, "log_tail": proc.stderr[-1500:],
    }


def print_table(result):
    print("Real configuration (EVA02-B-16 @ 224 px fine-tuned with alignment to ViT-L-14 text, random "
          "weights) through skvem algonauts on a fake layout")
    print(f"  passed: {result['passed']}; {result['n_train']} training images x {result['epochs']} epochs, "
          f"{result['n_test']} test images")
    print(f"  wall {result['wall_seconds']:.0f} s, peak RSS {result['peak_rss_gb']:.2f} GB, "
          f"{result['train_images_per_second_end_to_end']:.2f} training images/s end to end "
          "(model building, captioning and extraction included)")


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _cli import bench_main

    bench_main(__doc__, run, print_table, "24 training images, 1 epoch")
