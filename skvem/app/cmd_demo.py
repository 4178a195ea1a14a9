"""``skvem demo``: cross-validate the demo models on synthetic scenes."""

from __future__ import annotations

import argparse
import os

from skvem.app._common import CommandError, check_output_path

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    """Register ``skvem demo`` on the subcommand parsers ``sub``."""
    demo = sub.add_parser(
        "demo",
        help="the LLM-VEM comparison (language-pretrained CNN, fine-tuned with and without "
        "alignment, controls) on synthetic scenes",
        description=(
            "Cross-validate, on the same folds of make_scenes (synthetic scenes with known "
            "ground truth and simulated voxels in early, color, category and semantic ROIs): "
            "the small CNN pretrained CLIP-style on scenes of another world (pretrained='scenes'), "
            "frozen + ridge; the same CNN fine-tuned on the fMRI without language; fine-tuned "
            "with the contrastive loss towards all-MiniLM-L6-v2 embeddings of the scene "
            "descriptions (LLM-VEM); the negative control aligned to shuffled descriptions; the same "
            "pair from a random initialisation (not with --quick); and a ridge on the ground-truth latents "
            "(oracle). Prints noise-normalised scores per ROI and the per-fold paired effect of "
            "alignment, and writes results.json and results.png to --out."
        ),
    )
    demo.add_argument("--out", default="skvem-demo", help="output folder (default: %(default)s)")
    demo.add_argument("--quick", action="store_true", help="smaller run, about one minute on 2 CPU cores")
    demo.add_argument("--from-scratch", action=argparse.BooleanOptionalAction, default=None,
                      help="also fine-tune the randomly initialised CNN with and without language "
                      "(default: yes, except with --quick)")
    demo.add_argument("--n-images", type=int, help="number of scenes (default 600, quick 300)")
    demo.add_argument("--folds", type=int, help="cross-validation folds (default 3)")
    demo.add_argument("--epochs", type=int, help="training epochs per fit (default 8, quick 4)")
    demo.add_argument("--alignment-weight", type=float, help="weight of the contrastive loss (default 0.1)")
    demo.add_argument("--device", default="auto", help="torch device: auto (CUDA, then MPS, then CPU), cpu, cuda, mps")
    demo.add_argument("--seed", type=int, help="random seed of data, folds and training (default 0)")
    demo.add_argument("--no-progress", action="store_true", help="hide progress bars")
    demo.set_defaults(func=run)


_OPTIONS = {"n_images": "--n-images", "folds": "--folds", "epochs": "--epochs",
            "alignment_weight": "--alignment-weight", "seed": "--seed", "n_components": "n_components"}


def run(args) -> int:
    check_output_path(args.out, kind="dir", option="--out")
    from skvem.app.demo import DemoSettings, check_settings, format_table, run_demo

    base = DemoSettings.quick() if args.quick else DemoSettings()
    overrides = {
        key: value
        for key, value in dict(
            n_images=args.n_images, folds=args.folds, epochs=args.epochs,
            alignment_weight=args.alignment_weight, seed=args.seed,
            from_scratch=args.from_scratch,
        ).items()
        if value is not None
    }
    settings = DemoSettings(**{**base.__dict__, **overrides})
    try:
        check_settings(settings, names=_OPTIONS)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    print(
        f"skvem demo: {settings.n_images} synthetic scenes, {settings.folds}-fold CV, "
        f"{settings.epochs} epochs, alignment_weight={settings.alignment_weight}",
        flush=True,
    )
    results = run_demo(settings, out=args.out, device=args.device, verbose=not args.no_progress)
    print()
    print("Noise-normalised score per ROI (% of explainable variance; mean ± sd over folds), "
          "and the paired per-fold differences")
    print(format_table(results))
    print(f"\nTotal {results['total_seconds']:.0f} s.", end=" ")
    if args.out is not None:
        print(f"Wrote {os.path.join(args.out, 'results.json')} and results.png.")
    else:
        print()
    return 0
