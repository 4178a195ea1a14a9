"""The ``skvem`` command: ``skvem demo``, ``skvem caption``, ``skvem algonauts``.

Every subcommand turns an error it can explain (bad input, a missing file or
model) into one line on stderr and exit status 2; ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

__all__ = ["main", "build_parser"]

_HDF5_EXTENSIONS = (".hdf5", ".h5")


class CommandError(Exception):
    """An error the command reports as one line."""


# ---------------------------------------------------------------------------
# skvem demo
# ---------------------------------------------------------------------------


def _cmd_demo(args) -> int:
    from skvem._demo import DemoSettings, format_table, run_demo

    base = DemoSettings.quick() if args.quick else DemoSettings()
    overrides = {
        key: value
        for key, value in dict(
            n_images=args.n_images, folds=args.folds, epochs=args.epochs,
            alignment_weight=args.alignment_weight, seed=args.seed,
        ).items()
        if value is not None
    }
    settings = DemoSettings(**{**base.__dict__, **overrides})
    if settings.folds < 2:
        raise CommandError(f"--folds must be at least 2, got {settings.folds}")
    if settings.n_images < 10 * settings.folds:
        raise CommandError(f"--n-images must be at least 10 per fold, got {settings.n_images}")
    print(
        f"skvem demo: {settings.n_images} synthetic scenes, {settings.folds}-fold CV, "
        f"{settings.epochs} epochs, alignment_weight={settings.alignment_weight}",
        flush=True,
    )
    results = run_demo(settings, out=args.out, device=args.device, verbose=not args.no_progress)
    print()
    print("Noise-normalised score per ROI (% of explainable variance; mean ± sd over folds)")
    print(format_table(results))
    print(f"\nTotal {results['total_seconds']:.0f} s.", end=" ")
    if args.out is not None:
        print(f"Wrote {os.path.join(args.out, 'results.json')} and results.png.")
    else:
        print()
    return 0


# ---------------------------------------------------------------------------
# skvem caption
# ---------------------------------------------------------------------------


def _collect_image_sources(inputs, hdf5_key):
    """Expand files, folders and HDF5 files into ``[(label, ImageSet, names)]``."""
    from skvem.images import IMAGE_EXTENSIONS, ImageSet

    files, sources = [], []
    for item in inputs:
        if os.path.isdir(item):
            found = sorted(
                os.path.join(item, f) for f in os.listdir(item) if f.lower().endswith(IMAGE_EXTENSIONS)
            )
            if not found:
                raise CommandError(f"no image files ({', '.join(IMAGE_EXTENSIONS)}) in folder {item!r}")
            files.extend(found)
        elif item.lower().endswith(_HDF5_EXTENSIONS):
            if not os.path.exists(item):
                raise CommandError(f"HDF5 file not found: {item!r}")
            images = ImageSet.from_hdf5(item, hdf5_key)
            sources.append((item, images, [f"{item}:{hdf5_key}[{i}]" for i in range(len(images))]))
        elif os.path.exists(item):
            files.append(item)
        else:
            raise CommandError(f"no such image file or folder: {item!r}")
    if files:
        sources.insert(0, ("files", ImageSet(files), files))
    return sources


def _cmd_caption(args) -> int:
    from skvem.captioning import CaptionTransformer

    sources = _collect_image_sources(args.images, args.hdf5_key)
    options = dict(model=args.model, batch_size=args.batch_size, device=args.device, verbose=True)
    if args.prompt is not None:
        options["prompt"] = args.prompt
    if args.max_new_tokens is not None:
        options["max_new_tokens"] = args.max_new_tokens
    if args.cache_dir is not None:
        options["cache_dir"] = False if args.cache_dir == "none" else args.cache_dir
    captioner = CaptionTransformer(**options).fit()
    n_total = sum(len(images) for _, images, _ in sources)
    print(f"Captioning {n_total} images with {args.model}", file=sys.stderr, flush=True)
    # Captions are cached per batch as they are made: a killed run resumes
    # from the cache, and the output file appears only once it is complete.
    tmp = f"{args.out}.partial"
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(tmp, "w", encoding="utf-8") as f:
        for _, images, names in sources:
            captions = captioner.transform(images)
            ids = images.ids if images.ids is not None else [None] * len(images)
            for name, image_id, caption in zip(names, ids, captions):
                record = {"image": name, "caption": str(caption)}
                if image_id is not None:
                    record["id"] = str(image_id)
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
    os.replace(tmp, args.out)
    print(f"Wrote {n_total} captions to {args.out}", file=sys.stderr)
    return 0


# ---------------------------------------------------------------------------
# skvem algonauts
# ---------------------------------------------------------------------------


def _none_or(value):
    return None if value is not None and value.lower() == "none" else value


def _cmd_algonauts(args) -> int:
    from skvem._algonauts_job import AlgonautsJob

    job = AlgonautsJob(
        root=args.root,
        subject=args.subject,
        backbone=args.backbone,
        pretrained=_none_or(args.pretrained),
        captioner=args.captioner,
        prompt=args.prompt,
        max_new_tokens=args.max_new_tokens,
        text_model=args.text_model,
        text_pretrained=_none_or(args.text_pretrained),
        alignment_weight=args.alignment_weight,
        epochs=args.epochs,
        batch_size=args.batch_size,
        n_components=args.n_components,
        validation_fraction=args.validation_fraction,
        refit=not args.no_refit,
        device=args.device,
        seed=args.seed,
    )
    report = job.run(args.out)
    print(report)
    return 0


# ---------------------------------------------------------------------------
# Parser
# ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``skvem`` command."""
    from skvem import __version__

    parser = argparse.ArgumentParser(
        prog="skvem",
        description=(
            "LLM-aligned fMRI visual encoding models (LLM-VEM) as scikit-learn estimators. "
            "Run `skvem demo` first."
        ),
    )
    parser.add_argument("--version", action="version", version=f"skvem {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show full tracebacks instead of one-line errors"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="cross-validate LLM-aligned training against baselines on synthetic scenes",
        description=(
            "Cross-validate four encoding models on make_scenes (synthetic scenes with known "
            "ground truth and simulated voxels in early, color, category and semantic ROIs): "
            "a frozen small CNN, the same CNN trained on the fMRI alone "
            "(alignment_weight=0), the same CNN trained with the contrastive loss towards "
            "sentence embeddings of the scene descriptions (all-MiniLM-L6-v2), and a ridge on "
            "the ground-truth latents (oracle). Prints noise-normalised scores per ROI and "
            "writes results.json and results.png to --out."
        ),
    )
    demo.add_argument("--out", default="skvem-demo", help="output folder (default: %(default)s)")
    demo.add_argument("--quick", action="store_true", help="smaller run, about one minute on 2 CPU cores")
    demo.add_argument("--n-images", type=int, help="number of scenes (default 1200, quick 500)")
    demo.add_argument("--folds", type=int, help="cross-validation folds (default 5, quick 3)")
    demo.add_argument("--epochs", type=int, help="training epochs per fit (default 12, quick 6)")
    demo.add_argument("--alignment-weight", type=float, help="weight of the contrastive loss (default 0.1)")
    demo.add_argument("--device", default="auto", help="torch device: auto (CUDA, then MPS, then CPU), cpu, cuda, mps")
    demo.add_argument("--seed", type=int, help="random seed of data, folds and training (default 0)")
    demo.add_argument("--no-progress", action="store_true", help="hide progress bars")
    demo.set_defaults(func=_cmd_demo)

    cap = sub.add_parser(
        "caption",
        help="describe images with a vision-language model (batched, cached, resumable)",
        description=(
            "Caption images from files, folders or HDF5 files (e.g. NSD's nsd_stimuli.hdf5) and "
            "write one JSON object per line: {\"image\": ..., \"caption\": ...}. Captions are "
            "cached per image, so an interrupted run resumes where it stopped."
        ),
    )
    cap.add_argument("images", nargs="+", help="image files, folders of images, or .hdf5/.h5 files")
    cap.add_argument("--model", required=True, help="Hugging Face model id or local folder of a captioner")
    cap.add_argument("--prompt", help="instruction for chat vision-language models (ignored by BLIP/GIT)")
    cap.add_argument("--out", required=True, help="output JSON-lines file")
    cap.add_argument("--batch-size", type=int, default=8, help="images per generation batch (default: %(default)s)")
    cap.add_argument("--max-new-tokens", type=int, help="longest caption in tokens")
    cap.add_argument("--device", default="auto", help="torch device (default: %(default)s)")
    cap.add_argument("--hdf5-key", default="imgBrick", help="dataset inside HDF5 files (default: %(default)s)")
    cap.add_argument("--cache-dir", help="caption cache folder ('none' disables; default $SKVEM_CACHE_DIR or ~/.cache/skvem)")
    cap.set_defaults(func=_cmd_caption)

    alg = sub.add_parser(
        "algonauts",
        help="fit LLM-VEM on an Algonauts 2023 subject and write the challenge submission",
        description=(
            "Fit an LLM-aligned encoding model on the training split of one Algonauts 2023 "
            "subject, report validation scores per ROI on a held-out part of it, and write "
            "subjXX/{lh,rh}_pred_test.npy for the test images to --out."
        ),
    )
    alg.add_argument("--root", required=True, help="the folder holding subj01, subj02, ...")
    alg.add_argument("--subject", type=int, required=True, help="subject number (1-8)")
    alg.add_argument("--out", required=True, help="submission folder")
    alg.add_argument("--backbone", default="open_clip:EVA02-B-16", help="image backbone (default: %(default)s)")
    alg.add_argument("--pretrained", default="auto", help="backbone weights: a tag, a checkpoint file, 'auto' (the library's default) or 'none' (random init) (default: %(default)s)")
    alg.add_argument("--captioner", default=None, help="captioning model id or folder (default: CaptionTransformer's)")
    alg.add_argument("--prompt", default=None, help="captioning prompt for chat models")
    alg.add_argument("--max-new-tokens", type=int, default=None, help="longest caption in tokens (default: CaptionTransformer's)")
    alg.add_argument("--text-model", default="ViT-L-14", help="open_clip text model (default: %(default)s)")
    alg.add_argument("--text-pretrained", default="openai", help="its pretrained tag or checkpoint; 'none' for local-dir:/hf-hub: models (default: %(default)s)")
    alg.add_argument("--alignment-weight", type=float, default=0.1, help="weight of the contrastive loss; 0 trains without language (default: %(default)s)")
    alg.add_argument("--epochs", type=int, default=None, help="training epochs (default: AlignedImageFeaturizer's)")
    alg.add_argument("--batch-size", type=int, default=None, help="training batch size")
    alg.add_argument("--n-components", type=int, default=None, help="fMRI principal components the network predicts")
    alg.add_argument("--validation-fraction", type=float, default=0.1, help="share of training images held out for the report (default: %(default)s)")
    alg.add_argument("--no-refit", action="store_true", help="predict the test images with the model scored on the held-out part, instead of refitting on the whole training split")
    alg.add_argument("--device", default="auto", help="torch device (default: %(default)s)")
    alg.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    alg.set_defaults(func=_cmd_algonauts)
    return parser


def main(argv=None) -> int:
    """Run the ``skvem`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("skvem: interrupted (cached captions and features are kept)", file=sys.stderr)
        return 130
    except (CommandError, ValueError, TypeError, OSError, KeyError, ImportError, RuntimeError) as exc:
        if args.debug:
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"skvem {args.command}: error: {message}", file=sys.stderr)
        return 2
