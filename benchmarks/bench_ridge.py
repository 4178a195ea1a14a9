"""Benchmark: skvem's VoxelRidgeCV against himalaya's and scikit-learn's RidgeCV.

Problem (the default, "full"): X 2000 x 512 -> Y 2000 x 20000, float32,
9 alphas (1e-2 .. 1e6), 5-fold cross-validation, one alpha per voxel. The
data are centred, as after ``StandardScaler(with_std=False)`` in the
voxelwise-modelling tutorials, so every method runs without an intercept:
``fit_intercept=False`` is himalaya's default and is set for the others.

Methods
-------
skvem[torch], skvem[numpy]
    ``VoxelRidgeCV(alphas, cv=5, fit_intercept=False, backend=...)``;
    ``backend="auto"`` picks one of them on a CPU-only machine by a short
    measurement on first use (``skvem.encoding._backends.auto_cpu_backend``);
    the benchmark prints the choice and why, and the chosen one is the
    reference of the ratios. ``auto`` is also compared with the faster of
    the two (``time_ratio_to_faster``: 1.0 when it chose right).
himalaya
    ``himalaya.ridge.RidgeCV(alphas, cv=5)`` with its defaults (numpy
    backend, all targets in one batch).
sklearn-loo
    ``sklearn.linear_model.RidgeCV(alphas, alpha_per_target=True)``: one
    alpha per voxel, but chosen by efficient leave-one-out (scikit-learn
    only offers per-target alphas with LOO), computed in float64.
sklearn-cv5
    ``sklearn.linear_model.RidgeCV(alphas, cv=5)``: 5-fold like the others,
    but a single alpha shared by all voxels (a grid search over ``Ridge``).

Reported: wall time (best and median of the repetitions, which alternate
between methods in one process so that machine-load drift hits all alike),
time relative to skvem, peak memory (resident-set growth during ``fit``,
measured in a fresh subprocess per method), the share of the machine's
float32 matmul rate reached by skvem's cross-validation sweep, and the share
of voxels for which skvem chose the same alpha as himalaya.

Usage::

    python benchmarks/bench_ridge.py            # full size (a few minutes)
    python benchmarks/bench_ridge.py --quick    # small sizes (seconds)
    python benchmarks/bench_ridge.py --json results.json

``run(quick=False) -> dict`` does the same from Python (for an aggregator).
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

ALPHAS = np.logspace(-2, 6, 9)
N_FOLDS = 5
SIZES = {
    "full": dict(n_samples=2000, n_features=512, n_voxels=20000),
    "quick": dict(n_samples=400, n_features=64, n_voxels=1000),
}
METHODS = ("skvem[torch]", "skvem[numpy]", "himalaya", "sklearn-loo", "sklearn-cv5")


# ---------------------------------------------------------------- data
def make_data(n_samples, n_features, n_voxels, seed=0):
    """Centred features and responses with a spread of signal-to-noise ratios.

    A third of the voxels are pure noise (as outside visual cortex); the rest
    have a prediction R^2 between ~0.05 and ~0.7. Generated voxel block by
    voxel block so that no temporary exceeds a few hundred MB.
    """
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features), dtype=np.float32)
    X -= X.mean(0)
    Y = np.empty((n_samples, n_voxels), dtype=np.float32)
    snr = np.where(np.arange(n_voxels) % 3 == 0, 0.0,
                   rng.uniform(0.2, 1.5, n_voxels)).astype(np.float32)
    for start in range(0, n_voxels, 2000):
        sl = slice(start, min(start + 2000, n_voxels))
        W = rng.standard_normal((n_features, sl.stop - start), dtype=np.float32)
        W /= np.sqrt(n_features)
        Y[:, sl] = (X @ W) * snr[sl] + rng.standard_normal(
            (n_samples, sl.stop - start), dtype=np.float32)
    Y -= Y.mean(0)
    return X, Y


# ------------------------------------------------------------- methods
def make_estimator(name):
    if name.startswith("skvem"):
        from skvem.encoding.ridge import VoxelRidgeCV

        backend = name[len("skvem["):-1]
        return VoxelRidgeCV(alphas=ALPHAS, cv=N_FOLDS, fit_intercept=False, backend=backend)
    if name == "himalaya":
        from himalaya.backend import set_backend
        from himalaya.ridge import RidgeCV

        set_backend("numpy")
        return RidgeCV(alphas=ALPHAS, cv=N_FOLDS)
    if name == "sklearn-loo":
        from sklearn.linear_model import RidgeCV

        return RidgeCV(alphas=ALPHAS, alpha_per_target=True, fit_intercept=False)
    if name == "sklearn-cv5":
        from sklearn.linear_model import RidgeCV

        return RidgeCV(alphas=ALPHAS, cv=N_FOLDS, fit_intercept=False)
    raise ValueError(f"unknown method {name!r}")


def best_alphas(name, est):
    if name == "sklearn-cv5":
        return np.full(est.coef_.shape[0], est.alpha_)
    if name == "sklearn-loo":
        return np.asarray(est.alpha_, dtype=np.float64)
    return np.asarray(est.best_alphas_, dtype=np.float64)


# --------------------------------------------------------------- memory
def _proc_status():
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) * 1024
    return out


def peak_rss_growth(fit):
    """Call ``fit()`` and return ``{"peak_bytes", "wall_s", "how"}``: the growth of
    the resident set over the call (its high-water mark) and the call's wall time.

    Run it in a fresh process, once the inputs are loaded and the imports done.
    Shared with the other benchmarks (bench_banded.py).
    """
    try:  # reset the high-water mark (Linux >= 4.0) so it covers fit only
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        how = "VmHWM"
    except OSError:
        how = "ru_maxrss"
    before = _proc_status()["VmRSS"]
    t0 = time.perf_counter()
    fit()
    wall = time.perf_counter() - t0
    if how == "VmHWM":
        peak = _proc_status()["VmHWM"]
    else:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"peak_bytes": peak - before, "wall_s": wall, "how": how}


def _child(method, data_dir):
    """Fit one method in this fresh process and print its peak RSS growth."""
    X = np.load(os.path.join(data_dir, "X.npy"))
    Y = np.load(os.path.join(data_dir, "Y.npy"))
    est = make_estimator(method)  # imports happen before the baseline
    import torch  # noqa: F401  (imported by skvem/himalaya anyway: same baseline for all)

    print(json.dumps(peak_rss_growth(lambda: est.fit(X, Y))))


def measure_memory(method, data_dir):
    cmd = [sys.executable, os.path.abspath(__file__), "--child", method, "--data", data_dir]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------ matmul floor
def sweep_flops(n_samples, n_features, n_voxels, n_alphas=None, n_folds=N_FOLDS):
    """GEMM flops of skvem's cross-validation sweep (full-rank X, KFold)."""
    from sklearn.model_selection import KFold

    n_alphas = len(ALPHAS) if n_alphas is None else n_alphas
    total = 0
    for train, test in KFold(n_folds).split(np.empty(n_samples)):
        rank = min(len(train), n_features)
        total += 2 * rank * (len(train) + n_alphas * len(test)) * n_voxels
    return total


def gemm_rate(m, k, n, repeats=3):
    """Best float32 GEMM rate (flop/s) of numpy on this machine for (m,k)@(k,n)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    a @ b
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2.0 * m * k * n / best


# ------------------------------------------------------------------ run
def _auto_entry(auto, reason, times):
    """The backend="auto" choice against the faster of the CPU backends timed."""
    entry = {"backend": auto, "reason": reason}
    cpu = {b: min(times[f"skvem[{b}]"]) for b in ("numpy", "torch") if f"skvem[{b}]" in times}
    if len(cpu) == 2:
        faster = min(cpu, key=cpu.get)
        entry.update(faster=faster, time_ratio_to_faster=cpu[auto] / cpu[faster])
    return entry


def run(quick=False, repeats=None, methods=METHODS, memory=True, verbose=True):
    """Run the benchmark and return its figures as a dict.

    Parameters
    ----------
    quick : bool, default=False
        Use the small problem (seconds instead of minutes).
    repeats : int or None, default=None
        Timed repetitions per method (alternating); None: 3 (2 if quick).
    methods : sequence of str, default=METHODS
        Methods to run; ``skvem[<the backend="auto" choice>]``, the
        reference of the time ratios, is added if missing.
    memory : bool, default=True
        Also measure peak memory, one subprocess per method.
    verbose : bool, default=True
        Print progress and the final table.

    Returns
    -------
    results : dict
        ``{"config", "machine", "methods": {name: {...}}, "sweep", "alphas_agreement"}``.
    """
    from skvem.encoding._backends import auto_cpu_backend
    from skvem.encoding._ridge_solver import solve_ridge_cv

    size = SIZES["quick" if quick else "full"]
    repeats = repeats or (2 if quick else 3)
    log = print if verbose else (lambda *a, **k: None)
    X, Y = make_data(**size)
    n, p = X.shape
    T = Y.shape[1]
    # Chosen before any timing, as VoxelRidgeCV(backend="auto") would for
    # this problem, so the measurement's own cost stays out of the figures.
    auto, auto_reason = auto_cpu_backend((n, p, T))
    log(f"backend='auto' on this CPU: {auto} ({auto_reason})")
    methods = tuple(methods)
    if f"skvem[{auto}]" not in methods:
        methods = (f"skvem[{auto}]",) + methods
    log(f"bench_ridge: X {n}x{p} -> Y {n}x{T} float32, {len(ALPHAS)} alphas, "
        f"{N_FOLDS} folds, {repeats} alternating repetitions")

    times = {m: [] for m in methods}
    alphas = {}
    load_before = os.getloadavg()
    for rep in range(repeats):
        for m in methods:
            est = make_estimator(m)
            t0 = time.perf_counter()
            est.fit(X, Y)
            times[m].append(time.perf_counter() - t0)
            if rep == 0:
                alphas[m] = best_alphas(m, est)
            del est
            log(f"  rep {rep + 1}/{repeats} {m:<13} {times[m][-1]:7.2f} s")

    # Sweep (cross-validation only, no refit) against the GEMM rate of the
    # sweep's dominant product shape, interleaved.
    n_test = n // N_FOLDS
    gemm_shape = (len(ALPHAS) * n_test, min(p, n - n_test), min(T, 4096))
    sweep = {}
    rates = []
    for backend in ("numpy", "torch"):
        ts = []
        for _ in range(repeats):
            rates.append(gemm_rate(*gemm_shape))
            t0 = time.perf_counter()
            solve_ridge_cv(X, Y, ALPHAS, cv=N_FOLDS, fit_intercept=False,
                           refit=False, backend=backend)
            ts.append(time.perf_counter() - t0)
        sweep[backend] = min(ts)
    flops = sweep_flops(n, p, T)
    rate = max(rates)
    floor = flops / rate
    sweep_res = {
        "gflop": flops / 1e9,
        "gemm_gflops": rate / 1e9,
        "gemm_shape": gemm_shape,
        "floor_s": floor,
        **{f"{b}_s": t for b, t in sweep.items()},
        **{f"{b}_share_of_matmul_rate": floor / t for b, t in sweep.items()},
    }

    res_methods = {}
    data_dir = None
    if memory:
        data_dir = tempfile.mkdtemp(prefix="bench_ridge_")
        np.save(os.path.join(data_dir, "X.npy"), X)
        np.save(os.path.join(data_dir, "Y.npy"), Y)
    try:
        ref = min(times[f"skvem[{auto}]"])
        for m in methods:
            entry = {
                "best_s": min(times[m]),
                "median_s": float(np.median(times[m])),
                "all_s": times[m],
                "time_ratio_to_skvem": min(times[m]) / ref,
            }
            if memory:
                log(f"  memory: {m}")
                mem = measure_memory(m, data_dir)
                entry["peak_mb"] = mem["peak_bytes"] / 2**20
                entry["peak_how"] = mem["how"]
            res_methods[m] = entry
    finally:
        if data_dir:
            for f in ("X.npy", "Y.npy"):
                os.remove(os.path.join(data_dir, f))
            os.rmdir(data_dir)

    agreement = {}
    if "himalaya" in alphas:
        for m in methods:
            if m != "himalaya":
                agreement[m] = float(np.mean(np.isclose(alphas[m], alphas["himalaya"], rtol=1e-5)))

    import himalaya
    import sklearn
    import torch
    from threadpoolctl import threadpool_info

    results = {
        "config": {**size, "alphas": ALPHAS.tolist(), "n_folds": N_FOLDS,
                   "repeats": repeats, "quick": quick, "fit_intercept": False},
        "machine": {
            "cpu_count": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "load_avg_before": load_before,
            "load_avg_after": os.getloadavg(),
            "blas": [f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')}"
                     for i in threadpool_info() if i.get("user_api") == "blas"],
            "versions": {"numpy": np.__version__, "torch": torch.__version__,
                         "himalaya": himalaya.__version__, "sklearn": sklearn.__version__},
            "auto_cpu_backend": auto,
        },
        "auto": _auto_entry(auto, auto_reason, times),
        "methods": res_methods,
        "sweep": sweep_res,
        "alphas_agreement_with_himalaya": agreement,
    }
    if verbose:
        print_table(results)
    return results


def print_table(results):
    cfg, machine = results["config"], results["machine"]
    print()
    print(f"X {cfg['n_samples']}x{cfg['n_features']} -> Y {cfg['n_samples']}x{cfg['n_voxels']}"
          f" float32, {len(cfg['alphas'])} alphas, {cfg['n_folds']} folds"
          f" (load avg before/after: {machine['load_avg_before'][0]:.1f}/"
          f"{machine['load_avg_after'][0]:.1f}, {machine['cpu_count']} CPUs)")
    print(f"(x skvem: best time / best time of skvem[{machine['auto_cpu_backend']}], the "
          "backend='auto' choice; same alphas: share of voxels with himalaya's alpha)")
    header = (f"{'method':<14}{'best s':>9}{'median s':>10}{'x skvem':>9}{'peak MB':>9}"
              f"{'same alphas':>13}")
    print(header)
    print("-" * len(header))
    agree = results["alphas_agreement_with_himalaya"]
    for m, e in results["methods"].items():
        mem = f"{e['peak_mb']:9.0f}" if "peak_mb" in e else f"{'-':>9}"
        if m in agree:
            ag = f"{100 * agree[m]:12.2f}%"
        else:
            ag = f"{'(ref)' if m == 'himalaya' else '-':>13}"
        print(f"{m:<14}{e['best_s']:9.2f}{e['median_s']:10.2f}"
              f"{e['time_ratio_to_skvem']:9.2f}{mem}{ag}")
    s = results["sweep"]
    print()
    print(f"CV sweep: {s['gflop']:.0f} GFLOP of GEMM; numpy sgemm {tuple(s['gemm_shape'])} "
          f"peaks at {s['gemm_gflops']:.0f} GFLOP/s -> floor {s['floor_s']:.2f} s")
    for b in ("numpy", "torch"):
        if f"{b}_s" in s:
            print(f"  skvem[{b}] sweep {s[f'{b}_s']:.2f} s = "
                  f"{100 * s[f'{b}_share_of_matmul_rate']:.0f}% of the matmul rate")
    a = results.get("auto")
    if a:
        faster = (f"; {a['time_ratio_to_faster']:.2f}x the time of the faster, {a['faster']}"
                  if a.get("faster") else "")
        print(f"backend='auto' on this machine (no GPU): {a['backend']} ({a['reason']}){faster}")


def summary_rows(results):
    """Rows of the README/docs speed table (see benchmarks/render_docs.py)."""
    cfg, methods = results["config"], results["methods"]
    auto = results["machine"]["auto_cpu_backend"]
    ref = methods[f"skvem[{auto}]"]
    what = (f"`VoxelRidgeCV` fit, X {cfg['n_samples']}×{cfg['n_features']} → Y "
            f"{cfg['n_samples']}×{cfg['n_voxels']} float32, {len(cfg['alphas'])} alphas, "
            f"{cfg['n_folds']} folds")
    load = results["machine"].get("load_avg_before"), results["machine"].get("load_avg_after")
    if all(load):  # a shared machine: times scale with its load, ratios much less
        what += f" (load average {load[0][0]:.1f} → {load[1][0]:.1f} on {results['machine']['cpu_count']} cores)"

    def mem(entry):
        return f", {entry['peak_mb']:.0f} MB" if "peak_mb" in entry else ""

    rows = []
    labels = {"himalaya": "himalaya `RidgeCV` (defaults)",
              "sklearn-loo": "scikit-learn `RidgeCV(alpha_per_target=True)` (LOO)"}
    for name, label in labels.items():
        if name in methods:
            e = methods[name]
            ratio = f"{e['time_ratio_to_skvem']:.1f}× faster"
            if "peak_mb" in e and "peak_mb" in ref:
                ratio += f", {ref['peak_mb'] / e['peak_mb']:.2f}× memory"
            ours = "" if rows else f"{ref['best_s']:.2f} s{mem(ref)} peak"
            rows.append((what if not rows else "same", ours,
                         f"{label}: {e['best_s']:.2f} s{mem(e)}", ratio))
    agree = results["alphas_agreement_with_himalaya"].get(f"skvem[{auto}]")
    if agree is not None:
        rows.append(("same: alphas chosen", "", "himalaya",
                     f"same alpha for {100 * agree:.3f}% of voxels"))
    a = results.get("auto", {})
    if "time_ratio_to_faster" in a:
        rows.append(("same: `backend=\"auto\"` on the CPU", f"chose {auto}: {a['reason']}",
                     f"the faster of numpy and torch ({a['faster']})",
                     f"{a['time_ratio_to_faster']:.2f}× its time"))
    s = results["sweep"]
    if f"{auto}_s" in s:
        rows.append((f"same: CV sweep vs the machine's float32 GEMM rate "
                     f"({s['gemm_gflops']:.0f} GFLOP/s)",
                     f"{s[f'{auto}_s']:.2f} s for {s['gflop']:.0f} GFLOP",
                     f"matmul floor {s['floor_s']:.2f} s",
                     f"{100 * s[f'{auto}_share_of_matmul_rate']:.0f}% of peak"))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small problem sizes")
    parser.add_argument("--repeats", type=int, default=None, help="timed repetitions per method")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON")
    parser.add_argument("--no-memory", action="store_true",
                        help="skip the peak-memory subprocesses")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.data)
        return
    results = run(quick=args.quick, repeats=args.repeats, methods=args.methods,
                  memory=not args.no_memory)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2, default=float)


if __name__ == "__main__":
    main()
