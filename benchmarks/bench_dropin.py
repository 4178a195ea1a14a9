"""Benchmark: skvem.dropin.KernelRidgeCV against himalaya's KernelRidgeCV, the tutorial call.

Problem (the default, "full"): the shape of the voxelwise tutorials' wordnet
model -- X 3600 x (1705 features x 4 delays) -> Y 3600 x 5000 voxels, float32,
leave-one-run-out cross-validation over 12 runs of 300 samples, 10 alphas
(1 .. 1e9), kernel form with a linear kernel, no intercept (centred data), and
the tutorial's ``solver_params=dict(n_targets_batch=500, n_alphas_batch=5,
n_targets_batch_refit=100)``. Both estimators get the same call; only the
import differs. The features are sparse 0/1 labels (10 % active), centred;
voxels mix a sparse linear signal of varied strength with noise (a fifth are
noise only).

"quick" keeps the 12 leave-one-run-out folds and halves the rest: X 1200 x
(1705 x 2) -> Y 1200 x 2000, on the numpy and the torch backend.

Reported, per himalaya backend (each fit in a fresh subprocess, methods
alternating): wall time and CPU time of ``fit`` (with one thread, the CPU
time is the work done, whatever else runs on the machine), the ratios
himalaya / skvem, peak memory (resident-set growth during ``fit``), the
share of voxels given the same alpha, and how far the held-out R^2 of the
two models differ (largest difference; voxels differing by more than 1e-3,
where two alphas tie in cross-validation to float32 precision).

Usage (the recorded figures ran with ``OMP_NUM_THREADS=1``: on a shared
machine, multi-threaded LAPACK calls spin against other jobs)::

    python benchmarks/bench_dropin.py            # tutorial size (himalaya: tens of minutes)
    python benchmarks/bench_dropin.py --quick    # half size, numpy and torch
    python benchmarks/bench_dropin.py --json results.json

``run(quick=False) -> dict`` does the same from Python (for run.py).
"""

import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_ridge import _proc_status  # noqa: E402  (one /proc reader for the benchmarks)

ALPHAS = np.logspace(0, 9, 10)
SOLVER_PARAMS = dict(n_targets_batch=500, n_alphas_batch=5, n_targets_batch_refit=100)
SIZES = {
    "full": dict(n_runs=12, run_length=300, n_features=1705 * 4, n_voxels=5000,
                 backends=("torch",)),
    "quick": dict(n_runs=12, run_length=100, n_features=1705 * 2, n_voxels=2000,
                  backends=("numpy", "torch")),
}
METHODS = ("himalaya", "skvem.dropin")
N_TEST = 270


def make_data(n_runs, run_length, n_features, n_voxels, seed=0):
    """Centred sparse labels and voxels with a sparse linear signal (see module doc)."""
    rng = np.random.default_rng(seed)
    n = n_runs * run_length + N_TEST
    X = (rng.random((n, n_features), dtype=np.float32) < 0.1).astype(np.float32)
    X -= X[:-N_TEST].mean(0)
    active = rng.random(n_features) < 0.05
    W = np.zeros((n_features, n_voxels), dtype=np.float32)
    W[active] = rng.standard_normal((int(active.sum()), n_voxels), dtype=np.float32)
    W *= (rng.random(n_voxels, dtype=np.float32) * (rng.random(n_voxels) > 0.2))[None] * 0.3
    Y = X @ W + rng.standard_normal((n, n_voxels), dtype=np.float32)
    Y -= Y[:-N_TEST].mean(0)
    return X, Y


def _cv(n_runs, run_length):
    from sklearn.model_selection import check_cv

    runs = np.repeat(np.arange(n_runs), run_length)
    return check_cv([(np.flatnonzero(runs != r), np.flatnonzero(runs == r))
                     for r in range(n_runs)])


def _child(method, backend, data_dir, n_runs, run_length):
    """Fit one method in this fresh process; save its alphas and test R^2."""
    from himalaya.backend import set_backend

    if method == "himalaya":
        from himalaya.kernel_ridge import KernelRidgeCV
    else:
        from skvem.dropin import KernelRidgeCV
    B = set_backend(backend)
    X = np.load(os.path.join(data_dir, "X.npy"))
    Y = np.load(os.path.join(data_dir, "Y.npy"))
    X_train, Y_train, X_test, Y_test = X[:-N_TEST], Y[:-N_TEST], X[-N_TEST:], Y[-N_TEST:]
    model = KernelRidgeCV(ALPHAS, cv=_cv(n_runs, run_length), solver_params=dict(SOLVER_PARAMS))
    with open("/proc/self/clear_refs", "w") as f:  # reset the high-water mark (Linux >= 4.0)
        f.write("5")
    before = _proc_status()["VmRSS"]
    t0, c0 = time.perf_counter(), time.process_time()
    model.fit(X_train, Y_train)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = _proc_status()["VmHWM"] - before
    stem = os.path.join(data_dir, f"{method}-{backend}")
    np.save(stem + "-alphas.npy", B.to_numpy(model.best_alphas_))
    np.save(stem + "-r2.npy", B.to_numpy(model.score(X_test, Y_test)))
    print(json.dumps({"wall_s": wall, "cpu_s": cpu, "peak_bytes": peak}))


def _measure(method, backend, data_dir, cfg):
    cmd = [sys.executable, os.path.abspath(__file__), "--child", method, backend, data_dir,
           str(cfg["n_runs"]), str(cfg["run_length"])]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
         os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(quick=False, repeats=None, verbose=True):
    """Time both estimators on every backend of the size; returns a JSON-able dict."""
    size = "quick" if quick else "full"
    cfg = SIZES[size]
    repeats = repeats or 1
    result = {"size": size, "config": dict(
        n_samples=cfg["n_runs"] * cfg["run_length"], n_features=cfg["n_features"],
        n_voxels=cfg["n_voxels"], n_folds=cfg["n_runs"], alphas=ALPHAS.tolist(),
        solver_params=SOLVER_PARAMS, repeats=repeats,
        omp_num_threads=os.environ.get("OMP_NUM_THREADS")), "backends": {}}
    with tempfile.TemporaryDirectory() as data_dir:
        X, Y = make_data(**{k: cfg[k] for k in ("n_runs", "run_length", "n_features",
                                                   "n_voxels")})
        np.save(os.path.join(data_dir, "X.npy"), X)
        np.save(os.path.join(data_dir, "Y.npy"), Y)
        del X, Y
        for backend in cfg["backends"]:
            runs = {m: [] for m in METHODS}
            for rep in range(repeats):
                order = METHODS if rep % 2 == 0 else METHODS[::-1]
                for method in order:
                    runs[method].append(_measure(method, backend, data_dir, cfg))
                    if verbose:
                        r = runs[method][-1]
                        print(f"[{backend}] {method}: {r['wall_s']:.1f} s wall, "
                              f"{r['cpu_s']:.1f} s CPU", file=sys.stderr, flush=True)
            entry = {m: {"best_s": min(r["wall_s"] for r in rs),
                         "times_s": [r["wall_s"] for r in rs],
                         "cpu_s": min(r["cpu_s"] for r in rs),
                         "peak_mb": max(r["peak_bytes"] for r in rs) / 2**20}
                     for m, rs in runs.items()}
            h, s = entry["himalaya"], entry["skvem.dropin"]
            load = lambda m, what: np.load(os.path.join(data_dir, f"{m}-{backend}-{what}.npy"))  # noqa: E731
            a_h, a_s = load("himalaya", "alphas"), load("skvem.dropin", "alphas")
            r2_h, r2_s = load("himalaya", "r2"), load("skvem.dropin", "r2")
            entry.update(
                time_ratio_himalaya_to_skvem=h["best_s"] / s["best_s"],
                cpu_time_ratio_himalaya_to_skvem=h["cpu_s"] / s["cpu_s"],
                memory_ratio_skvem_to_himalaya=s["peak_mb"] / h["peak_mb"],
                same_alpha_share=float(np.mean(np.isclose(a_h, a_s, rtol=1e-4))),
                max_abs_r2_difference=float(np.abs(r2_h - r2_s).max()),
                median_test_r2=float(np.median(r2_s)))
            # a near-tie of two alphas' validation scores can move one voxel's test R^2
            entry["voxels_r2_differ_by_1e-3"] = int((np.abs(r2_h - r2_s) > 1e-3).sum())
            result["backends"][backend] = entry
    return result


def print_table(result):
    c = result["config"]
    print(f"KernelRidgeCV fit, X {c['n_samples']}x{c['n_features']} -> Y {c['n_samples']}x"
          f"{c['n_voxels']}, {c['n_folds']} folds (leave-one-run-out), {len(c['alphas'])} alphas")
    print(f"{'backend':8} {'himalaya s':>11} {'skvem s':>8} {'ratio':>6} {'CPU ratio':>10} "
          f"{'himalaya MB':>12} {'skvem MB':>9} {'same alpha':>11} {'max|dR2|':>9} "
          f"{'|dR2|>1e-3':>10}")
    for backend, e in result["backends"].items():
        h, s = e["himalaya"], e["skvem.dropin"]
        print(f"{backend:8} {h['best_s']:11.1f} {s['best_s']:8.1f} "
              f"{e['time_ratio_himalaya_to_skvem']:5.1f}x "
              f"{e['cpu_time_ratio_himalaya_to_skvem']:9.1f}x {h['peak_mb']:12.0f} "
              f"{s['peak_mb']:9.0f} {100 * e['same_alpha_share']:10.1f}% "
              f"{e['max_abs_r2_difference']:9.1e} {e['voxels_r2_differ_by_1e-3']:10d}")


def summary_rows(result):
    """Rows of the README/docs speed table (see benchmarks/render_docs.py)."""
    c = result["config"]
    what = (f"`skvem.dropin.KernelRidgeCV` fit (tutorial call), X {c['n_samples']}×"
            f"{c['n_features']} → Y {c['n_samples']}×{c['n_voxels']}, {c['n_folds']} runs, "
            f"{len(c['alphas'])} alphas" + (" (`--quick` size)" if result.get("size") == "quick"
                                             else ""))
    rows = []
    for backend, e in result["backends"].items():
        h, s = e["himalaya"], e["skvem.dropin"]
        rows.append((what if not rows else "same", f"{s['best_s']:.1f} s, {s['peak_mb']:.0f} MB "
                     f"peak ({backend} backend)",
                     f"himalaya `KernelRidgeCV`: {h['best_s']:.1f} s, {h['peak_mb']:.0f} MB",
                     f"{e['time_ratio_himalaya_to_skvem']:.1f}× faster "
                     f"({e['cpu_time_ratio_himalaya_to_skvem']:.1f}× less CPU time), "
                     f"{e['memory_ratio_skvem_to_himalaya']:.2f}× memory, same alpha for "
                     f"{100 * e['same_alpha_share']:.1f}% of voxels"))
    return rows


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]))
    else:
        from _cli import bench_main

        bench_main(__doc__, run, print_table, "small sizes (a minute)")
