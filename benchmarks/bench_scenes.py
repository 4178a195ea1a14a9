"""How long make_scenes takes, side by side: set size, image size, the 10 s budget.

make_scenes must draw 2,000 scenes at 64 px with their responses in under
10 s on a laptop. This runs the configurations in one process and reports
every time as a ratio: to that budget, and to the 64 px / full-size run (how
the cost scales with images and pixels). It also prints the noise-ceiling
distribution of every ROI of the main run.

Run::

    python benchmarks/bench_scenes.py [--quick] [--json PATH]
"""

from __future__ import annotations

import time

import numpy as np

BUDGET_S = 10.0


def _time(n, size, repeats):
    from skvem.datasets import make_scenes

    best, data = np.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        data = make_scenes(n, image_size=size, random_state=0)
        best = min(best, time.perf_counter() - t0)
    return best, data


def run(quick: bool = False) -> dict:
    n_main = 400 if quick else 2000
    repeats = 1 if quick else 2
    configs = [(n_main, 64), (n_main // 4, 64), (n_main, 128)]
    rows, main_data = [], None
    _time(20, 64, 1)  # warm-up: imports, the digit bank, the mask caches
    for n, size in configs:
        seconds, data = _time(n, size, repeats)
        if (n, size) == configs[0]:
            main_data = data
        rows.append({"n_images": n, "image_size": size, "seconds": seconds})
    base = rows[0]["seconds"]
    for row in rows:
        row["ms_per_scene"] = 1000 * row["seconds"] / row["n_images"]
        row["ratio_to_main"] = row["seconds"] / base
        # The budget is set for 2,000 scenes at 64 px; smaller runs carry the
        # fixed cost of the 500 reference scenes, so no ratio for them.
        in_budget = row["n_images"] == 2000 and row["image_size"] == 64
        row["ratio_to_budget"] = row["seconds"] / BUDGET_S if in_budget else None
    ceilings = {
        roi: {
            "n_voxels": int(idx.size),
            "min": float(np.min(main_data.noise_ceiling[idx])),
            "median": float(np.median(main_data.noise_ceiling[idx])),
            "max": float(np.max(main_data.noise_ceiling[idx])),
        }
        for roi, idx in main_data.rois.items()
    }
    return {
        "benchmark": "scenes",
        "quick": quick,
        "budget_s_per_2000": BUDGET_S,
        "runs": rows,
        "noise_ceiling_percent": ceilings,
    }


def print_table(results):
    print(f"make_scenes timing (best of runs; budget {BUDGET_S:.0f} s per 2,000 scenes at 64 px)")
    print(f"{'n_images':>9}{'px':>5}{'seconds':>9}{'ms/scene':>10}{'vs main':>9}{'vs budget':>11}")
    for r in results["runs"]:
        budget = "-" if r["ratio_to_budget"] is None else f"{r['ratio_to_budget']:.2f}"
        print(
            f"{r['n_images']:>9}{r['image_size']:>5}{r['seconds']:>9.2f}"
            f"{r['ms_per_scene']:>10.2f}{r['ratio_to_main']:>9.2f}{budget:>11}"
        )
    print("\nnoise ceiling (%) of the main run")
    print(f"{'ROI':<10}{'voxels':>7}{'min':>7}{'median':>8}{'max':>7}")
    for roi, c in results["noise_ceiling_percent"].items():
        print(f"{roi:<10}{c['n_voxels']:>7}{c['min']:>7.1f}{c['median']:>8.1f}{c['max']:>7.1f}")


def summary_rows(results):
    """Rows of the README/docs speed table (see benchmarks/render_docs.py)."""
    return [(f"`make_scenes({r['n_images']})` at {r['image_size']} px with responses",
             f"{r['seconds']:.2f} s", f"{results['budget_s_per_2000']:.0f} s budget",
             f"{r['ratio_to_budget']:.2f} of budget")
            for r in results["runs"] if r["ratio_to_budget"] is not None]


def main(argv=None):
    from _cli import bench_main

    return bench_main(__doc__, run, print_table, 'smaller sets, one repeat', argv)


if __name__ == "__main__":
    main()
