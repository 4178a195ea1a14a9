"""Data-parallel training on the CPU: steps/s of one process against two ``torchrun`` processes.

The same short :func:`~skvem.vision.training.train_aligned` fit (small CNN,
32 px images, alignment on, global batch fixed) runs in one process and in
two gloo processes of one thread each (``skvem.testing.ddp``), and the
training time inside each run (process start-up excluded) is reported as
steps/s and as a ratio. On a 2-core machine the ratio is bounded by 2 and
eaten into by the all-reduce and the embedding gather; on GPUs the same code
runs with nccl. It is a check that the DDP path scales, not a GPU figure.

Run::

    python benchmarks/bench_ddp.py [--quick] [--json PATH]
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def _fit_seconds(n_processes, epochs, n_images, batch_size):
    import torch

    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    with tempfile.TemporaryDirectory() as out:
        worker = ["-m", "skvem.testing.ddp", out, "bench", str(epochs), str(n_images), str(batch_size)]
        launch = [sys.executable] if n_processes == 1 else [
            sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n_processes}"]
        proc = subprocess.run(launch + worker, env=env, capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError(f"{n_processes}-process run failed:\n{proc.stderr[-2000:]}")
        return torch.load(os.path.join(out, "bench.pt"), weights_only=False)["seconds"]


def run(quick: bool = False) -> dict:
    epochs, n_images, batch_size = (2, 128, 32) if quick else (4, 512, 64)
    # Training steps of the whole fit: every epoch of both stages (the
    # frozen stage reads features, the fine-tuning stage pixels).
    steps = epochs * math.ceil(n_images / batch_size)
    runs = {}
    for n_processes in (1, 2):
        seconds = _fit_seconds(n_processes, epochs, n_images, batch_size)
        runs[n_processes] = {"seconds": seconds, "steps_per_s": steps / seconds}
    return {
        "config": {"epochs": epochs, "n_images": n_images, "image_size": 32, "global_batch": batch_size,
                   "backbone": "small-cnn", "threads_per_process": 1, "quick": quick,
                   "cpu_count": os.cpu_count()},
        "runs": {str(k): v for k, v in runs.items()},
        "speedup_ratio_2_vs_1_process": runs[1]["seconds"] / runs[2]["seconds"],
    }


def print_table(results):
    cfg = results["config"]
    print(f"train_aligned, small CNN, {cfg['n_images']} images at 32 px, global batch "
          f"{cfg['global_batch']}, {cfg['epochs']} epochs, 1 thread per process")
    print(f"{'processes':>10} {'fit s':>8} {'steps/s':>9}")
    for n, r in results["runs"].items():
        print(f"{n:>10} {r['seconds']:8.2f} {r['steps_per_s']:9.2f}")
    print(f"2 vs 1 process: {results['speedup_ratio_2_vs_1_process']:.2f}x")


def summary_rows(results):
    """Rows of the README/docs speed table (see benchmarks/render_docs.py)."""
    cfg, runs = results["config"], results["runs"]
    return [(f"`AlignedImageFeaturizer` under `torchrun`, 2 gloo CPU processes, small CNN, "
             f"global batch {cfg['global_batch']}",
             f"{runs['2']['steps_per_s']:.1f} steps/s",
             f"1 process: {runs['1']['steps_per_s']:.1f} steps/s",
             f"{results['speedup_ratio_2_vs_1_process']:.2f}×")]


def main(argv=None):
    from _cli import bench_main

    return bench_main(__doc__, run, print_table, "fewer images and epochs", argv)


if __name__ == "__main__":
    main()
