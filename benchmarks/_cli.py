"""The command line every ``bench_<area>.py`` shares: ``--quick`` and ``--json PATH``."""

import argparse
import json


def bench_main(doc, run, print_table, quick_help, argv=None):
    """Parse ``--quick``/``--json``, run the benchmark, print its table, write JSON."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    results = run(quick=args.quick)
    print_table(results)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return results
