"""Run every side-by-side benchmark and print one table of ratios.

Each ``bench_<area>.py`` module compares skvem with a reference (himalaya,
scikit-learn, a plain PyTorch / open_clip / sentence-transformers loop, a
one-at-a-time loop) within one process and reports ratios, which stay
meaningful on a shared, noisy machine where absolute times do not.

    python benchmarks/run.py [--quick] [--only ridge,text] [--json results.json]

Every ``bench_<area>.py`` beside this file is an area. ``--json`` updates the
file in place: the areas that ran replace their old entries, the others are
kept, so one benchmark can be re-measured without re-running all of them.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import platform
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
# The cheap, established areas first; a new ``bench_<area>.py`` joins by existing.
_FIRST = ("ridge", "featurizers", "text", "captioning", "scenes")
_FOUND = sorted(f[len("bench_"):-3] for f in os.listdir(HERE) if f.startswith("bench_") and f.endswith(".py"))
AREAS = tuple(a for a in _FIRST if a in _FOUND) + tuple(a for a in _FOUND if a not in _FIRST)
# Areas that need hardware this machine may lack run only when named in --only.
ON_REQUEST = ("gpu",)


def headline_ratios(result, prefix=""):
    """Every ``*ratio*`` number of a nested result, as ``(path, value)`` pairs."""
    rows = []
    if isinstance(result, dict):
        for key, value in result.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and "ratio" in str(key):
                rows.append((path, float(value)))
            else:
                rows.extend(headline_ratios(value, path))
    elif isinstance(result, list):
        for i, value in enumerate(result):
            label = value.get("name") or value.get("method") or value.get("backbone") or i \
                if isinstance(value, dict) else i
            rows.extend(headline_ratios(value, f"{prefix}[{label}]"))
    return rows


def write_results(path, results):
    """Merge ``results`` into the JSON file at ``path`` (areas that ran replace old ones)."""
    merged = {"benchmarks": {}}
    if os.path.exists(path):
        with open(path) as f:
            merged = json.load(f)
    merged.setdefault("benchmarks", {}).update(results["benchmarks"])
    merged["machine"] = results["machine"]
    # Per area: one --quick re-run must not relabel the areas measured at full size.
    merged["quick"] = sorted(a for a, r in merged["benchmarks"].items() if r.get("_quick"))
    tmp = f"{path}.partial"
    with open(tmp, "w") as f:
        json.dump(merged, f, indent=2, default=str)
    os.replace(tmp, path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (minutes, not tens)")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(AREAS)}")
    parser.add_argument("--json", help="write every result to this JSON file")
    args = parser.parse_args(argv)
    areas = tuple(a for a in AREAS if a not in ON_REQUEST) if not args.only else \
        tuple(a.strip() for a in args.only.split(","))
    unknown = [a for a in areas if a not in AREAS]
    if unknown:
        parser.error(f"unknown benchmarks {unknown}; choose from {AREAS}")

    sys.path.insert(0, HERE)
    results = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "platform": platform.platform()},
        "quick": args.quick,
        "benchmarks": {},
    }
    failed = []
    for area in areas:
        print(f"\n=== {area} ===", flush=True)
        module = importlib.import_module(f"bench_{area}")
        start = time.perf_counter()
        try:
            # A module that prints its own table while it runs is asked not to.
            quiet = {"verbose": False} if "verbose" in inspect.signature(module.run).parameters else {}
            result = module.run(quick=args.quick, **quiet)
        except Exception:  # one broken benchmark must not hide the others
            traceback.print_exc()
            failed.append(area)
            continue
        module.print_table(result)
        result["_seconds"] = time.perf_counter() - start
        result["_quick"] = args.quick
        results["benchmarks"][area] = result

    print("\n=== ratios (see each table above for what they compare) ===")
    for area, result in results["benchmarks"].items():
        for path, value in headline_ratios(result):
            print(f"{area:<12} {path:<60} {value:8.2f}")
    if args.json:
        write_results(args.json, results)
        print(f"\nwrote {args.json}")
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
