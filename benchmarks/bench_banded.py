"""Benchmark: skvem's BandedVoxelRidgeCV against himalaya's banded and multiple-kernel ridge.

Problem ("main", the issue's shape): two feature spaces X1, X2 of 2000 x 256
each -> Y 2000 x 20000, float32; the same hyperparameter budget for every
method: ``n_iter`` feature-space weights (Dirichlet samples, random_state=0,
so every method tries the *same* candidates), 9 alphas (1e-2 .. 1e6), 5-fold
cross-validation. Centred data, no intercept (himalaya's default). A second,
"wide" shape (more features than samples) shows the kernel regime.

Methods (each fitted in a fresh subprocess, which also measures its peak
memory, i.e. the resident-set growth during ``fit``, with
``bench_ridge.peak_rss_growth``):

skvem
    ``BandedVoxelRidgeCV(groups="input", backend="auto", fit_intercept=False)``;
    the reference of the ratios.
himalaya-banded
    ``himalaya.ridge.BandedRidgeCV(groups="input")``, numpy backend, its
    defaults (all targets in one batch): the primal solver.
himalaya-mkr
    ``himalaya.kernel_ridge.MultipleKernelRidgeCV(kernels="precomputed")``
    with the random-search solver on the two linear kernels (computed inside
    the timed fit): the kernel solver.

Reported: wall time of ``fit`` and its ratio to skvem's (repetitions
alternate between methods), peak memory and its ratio, and the share of
voxels whose per-space regularisation (``deltas_``, both spaces) matches
himalaya's banded estimator.

Usage::

    python benchmarks/bench_banded.py            # both shapes (~5 min on a quiet 2-core machine)
    python benchmarks/bench_banded.py --quick    # small shapes (seconds)
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_ridge import peak_rss_growth  # noqa: E402  (one memory probe for all benchmarks)

ALPHAS = np.logspace(-2, 6, 9)
N_FOLDS = 5
SHAPES = {
    "full": {
        # himalaya-mkr is left out here: its kernel form costs O(n_samples^2) per
        # target, measured 4x slower than skvem and 1.7x slower than himalaya's
        # primal solver on the quick main shape, and > 30 min on the shared
        # 2-core machine at full size.
        "main": dict(n_samples=2000, sizes=(256, 256), n_voxels=20000, n_iter=5,
                     methods=("skvem", "himalaya-banded")),
        "wide": dict(n_samples=500, sizes=(1024, 1024), n_voxels=2000, n_iter=3),
    },
    "quick": {
        "main": dict(n_samples=400, sizes=(32, 32), n_voxels=1000, n_iter=4),
        "wide": dict(n_samples=150, sizes=(200, 200), n_voxels=500, n_iter=3),
    },
}
METHODS = ("skvem", "himalaya-banded", "himalaya-mkr")


def make_data(n_samples, sizes, n_voxels, seed=0):
    """Centred spaces; voxel j mixes them with share w_j; a third are pure noise."""
    rng = np.random.default_rng(seed)
    Xs = [rng.standard_normal((n_samples, p), dtype=np.float32) for p in sizes]
    Xs = [X - X.mean(0) for X in Xs]
    share = rng.uniform(0, 1, n_voxels).astype(np.float32)
    snr = np.where(np.arange(n_voxels) % 3 == 0, 0.0,
                   rng.uniform(0.3, 1.5, n_voxels)).astype(np.float32)
    Y = np.empty((n_samples, n_voxels), dtype=np.float32)
    for start in range(0, n_voxels, 2000):
        sl = slice(start, min(start + 2000, n_voxels))
        signal = sum(
            (X @ rng.standard_normal((X.shape[1], sl.stop - start), dtype=np.float32))
            / np.sqrt(X.shape[1]) * np.sqrt(w)
            for X, w in zip(Xs, (share[sl], 1 - share[sl])))
        Y[:, sl] = signal * snr[sl] + rng.standard_normal((n_samples, sl.stop - start),
                                                          dtype=np.float32)
    Y -= Y.mean(0)
    return Xs, Y


def _fit(method, Xs, Y, n_iter):
    """A no-argument callable fitting ``method``, and the estimator it fits."""
    if method == "skvem":
        from skvem.encoding.banded import BandedVoxelRidgeCV

        est = BandedVoxelRidgeCV(alphas=ALPHAS, n_iter=n_iter, cv=N_FOLDS, fit_intercept=False,
                                 random_state=0, backend="auto")
        return (lambda: est.fit(Xs, Y)), est
    from himalaya.backend import set_backend

    set_backend("numpy")
    params = dict(n_iter=n_iter, alphas=ALPHAS, progress_bar=False)
    if method == "himalaya-banded":
        from himalaya.ridge import BandedRidgeCV

        est = BandedRidgeCV(groups="input", cv=N_FOLDS, random_state=0, solver_params=params)
        return (lambda: est.fit(Xs, Y)), est
    if method == "himalaya-mkr":
        from himalaya.kernel_ridge import MultipleKernelRidgeCV

        est = MultipleKernelRidgeCV(kernels="precomputed", cv=N_FOLDS, random_state=0,
                                    solver="random_search", solver_params=params)
        return (lambda: est.fit(np.stack([X @ X.T for X in Xs]), Y)), est
    raise ValueError(f"unknown method {method!r}")


def _child(method, data_dir, n_iter):
    """Fit one method in this fresh process; print its time and peak memory."""
    with np.load(os.path.join(data_dir, "data.npz")) as data:
        Xs, Y = [data["X0"], data["X1"]], data["Y"]
    import torch  # noqa: F401  (imported by skvem/himalaya anyway: same baseline for all)

    # Warm up on a slice (lazy LAPACK/MKL loading took ~5 s on the first torch
    # eigh): the timed fit then measures the solver, not the process start.
    _fit(method, [X[:60] for X in Xs], Y[:60, :20], 1)[0]()
    fit, est = _fit(method, Xs, Y, n_iter)
    out = peak_rss_growth(fit)
    np.save(os.path.join(data_dir, f"deltas_{method}.npy"), np.asarray(est.deltas_))
    out["backend"] = getattr(est, "backend_", "numpy")
    print(json.dumps(out))


def _measure(method, data_dir, n_iter):
    cmd = [sys.executable, os.path.abspath(__file__), "--child", method, "--data", data_dir,
           "--n-iter", str(n_iter)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _run_shape(shape, repeats, methods, log):
    n_iter = shape["n_iter"]
    methods = [m for m in methods if m in shape.get("methods", methods)]
    Xs, Y = make_data(shape["n_samples"], shape["sizes"], shape["n_voxels"])
    data_dir = tempfile.mkdtemp(prefix="bench_banded_")
    try:
        np.savez(os.path.join(data_dir, "data.npz"), X0=Xs[0], X1=Xs[1], Y=Y)
        runs = {m: [] for m in methods}
        deltas = {}
        for rep in range(repeats):
            for m in methods:
                runs[m].append(_measure(m, data_dir, n_iter))
                if rep == 0:
                    deltas[m] = np.load(os.path.join(data_dir, f"deltas_{m}.npy"))
                log(f"  rep {rep + 1}/{repeats} {m:<16} {runs[m][-1]['wall_s']:8.2f} s "
                    f"{runs[m][-1]['peak_bytes'] / 2**20:8.0f} MB")
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    ref_t = min(r["wall_s"] for r in runs["skvem"])
    ref_m = min(r["peak_bytes"] for r in runs["skvem"])
    entries = {}
    for m in methods:
        best_t = min(r["wall_s"] for r in runs[m])
        peak = min(r["peak_bytes"] for r in runs[m])
        entries[m] = {
            "best_s": best_t,
            "all_s": [r["wall_s"] for r in runs[m]],
            "peak_mb": peak / 2**20,
            "peak_how": runs[m][0]["how"],
            "backend": runs[m][0]["backend"],
            "time_ratio_to_skvem": best_t / ref_t,
            # RSS growth under 1 MB is noise (pages recycled from the warm-up).
            "peak_ratio_to_skvem": max(peak, 2**20) / max(ref_m, 2**20),
        }
        if m != "himalaya-banded" and "himalaya-banded" in deltas:
            same = np.isclose(deltas[m], deltas["himalaya-banded"], rtol=1e-5, atol=1e-6)
            entries[m]["same_deltas_as_himalaya_banded"] = float(np.mean(same.all(0)))
    himalaya = [m for m in methods if m.startswith("himalaya")]
    return {
        "config": {**shape, "sizes": list(shape["sizes"]), "methods": list(methods), "alphas": ALPHAS.tolist(),
                   "n_folds": N_FOLDS, "repeats": repeats, "fit_intercept": False},
        "methods": entries,
        "fastest_himalaya_solver": min(himalaya, key=lambda m: entries[m]["best_s"])
        if himalaya else None,
    }


def run(quick=False, repeats=None, methods=METHODS, verbose=True):
    """Run both shapes and return ``{"machine", "shapes": {name: {...}}}``.

    Parameters
    ----------
    quick : bool, default=False
        Small shapes (seconds).
    repeats : int or None, default=None
        Alternating repetitions per method (fresh process each); None: 2 if
        quick, else 1 (the himalaya fits take minutes at full size).
    methods : sequence of str, default=METHODS
        Must include "skvem", the reference.
    verbose : bool, default=True
        Print progress.
    """
    import himalaya
    import torch

    repeats = repeats or (2 if quick else 1)
    log = print if verbose else (lambda *a, **k: None)
    load_before = os.getloadavg()
    shapes = {}
    for name, shape in SHAPES["quick" if quick else "full"].items():
        log(f"bench_banded[{name}]: X {shape['n_samples']}x{'+'.join(map(str, shape['sizes']))}"
            f" -> Y {shape['n_samples']}x{shape['n_voxels']}, n_iter={shape['n_iter']}, "
            f"{len(ALPHAS)} alphas, {N_FOLDS} folds")
        shapes[name] = _run_shape(shape, repeats, methods, log)
    return {
        "quick": quick,
        "machine": {
            "cpu_count": os.cpu_count(),
            "load_avg_before": load_before,
            "load_avg_after": os.getloadavg(),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
            "torch_threads": torch.get_num_threads(),
            "versions": {"numpy": np.__version__, "torch": torch.__version__,
                         "himalaya": himalaya.__version__},
        },
        "shapes": shapes,
    }


def print_table(results):
    m = results["machine"]
    print(f"\n(load avg before/after: {m['load_avg_before'][0]:.1f}/{m['load_avg_after'][0]:.1f},"
          f" {m['cpu_count']} CPUs, OMP_NUM_THREADS={m['OMP_NUM_THREADS']}; "
          "x skvem: best time and peak memory relative to skvem)")
    for name, shape in results["shapes"].items():
        c = shape["config"]
        print(f"\n[{name}] X {c['n_samples']}x({' + '.join(map(str, c['sizes']))}) -> Y "
              f"{c['n_samples']}x{c['n_voxels']}, n_iter={c['n_iter']}, "
              f"{len(c['alphas'])} alphas, {c['n_folds']} folds")
        header = (f"{'method':<17}{'best s':>9}{'x skvem':>9}{'peak MB':>9}{'x skvem':>9}"
                  f"{'same deltas':>13}")
        print(header)
        print("-" * len(header))
        for meth, e in shape["methods"].items():
            same = e.get("same_deltas_as_himalaya_banded")
            same = f"{100 * same:12.2f}%" if same is not None else f"{'(ref)':>13}"
            print(f"{meth:<17}{e['best_s']:9.2f}{e['time_ratio_to_skvem']:9.2f}"
                  f"{e['peak_mb']:9.0f}{e['peak_ratio_to_skvem']:9.2f}{same}")
        print(f"skvem backend='auto' chose {shape['methods']['skvem']['backend']}; fastest "
              f"himalaya solver for this shape: {shape['fastest_himalaya_solver']}")


def _speed(ratio):
    return f"{ratio:.1f}× faster" if ratio >= 1 else f"{1 / ratio:.2f}× slower"


def summary_rows(results):
    """Rows of the README/docs speed table (see benchmarks/render_docs.py)."""
    threads = results["machine"].get("OMP_NUM_THREADS")
    rows = []
    labels = {"himalaya-banded": "himalaya `BandedRidgeCV` (defaults)",
              "himalaya-mkr": "himalaya `MultipleKernelRidgeCV` (random search)"}
    for name, shape in results["shapes"].items():
        c, methods = shape["config"], shape["methods"]
        ours = methods["skvem"]
        what = (f"`BandedVoxelRidgeCV` fit, X {c['n_samples']}×"
                f"({' + '.join(map(str, c['sizes']))}) → Y {c['n_samples']}×{c['n_voxels']}, "
                f"n_iter={c['n_iter']}, {len(c['alphas'])} alphas, {c['n_folds']} folds"
                + (f", {threads} thread(s)" if threads else ""))
        first = True
        for meth, label in labels.items():
            if meth in methods:
                e = methods[meth]
                rows.append((what if first else "same",
                             f"{ours['best_s']:.1f} s, {ours['peak_mb']:.0f} MB peak" if first
                             else "",
                             f"{label}: {e['best_s']:.1f} s, {e['peak_mb']:.0f} MB",
                             f"{_speed(e['time_ratio_to_skvem'])}, "
                             f"{1 / e['peak_ratio_to_skvem']:.2f}× memory"))
                first = False
        same = ours.get("same_deltas_as_himalaya_banded")
        if same is not None:
            rows.append(("same: per-space regularisation chosen", "",
                         "himalaya `BandedRidgeCV`", f"same for {100 * same:.2f}% of voxels"))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small shapes (seconds)")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--n-iter", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.data, args.n_iter)
        return
    results = run(quick=args.quick, repeats=args.repeats)
    print_table(results)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2, default=float)


if __name__ == "__main__":
    main()
