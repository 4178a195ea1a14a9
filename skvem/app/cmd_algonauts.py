"""``skvem algonauts``: fit LLM-VEM on Algonauts 2023 subjects and write the submission."""

from __future__ import annotations

import os
import sys

from skvem.app._common import CommandError, check_output_path, none_or

__all__ = ["add_parser", "run", "parse_subjects"]


def parse_subjects(text: str):
    """``"all"`` or a comma-separated list of subject numbers (``"1,2,5"``, ``"subj03"``)."""
    if text.strip().lower() == "all":
        return "all"
    numbers = []
    for part in text.split(","):
        token = part.strip().lower().removeprefix("subj")
        if not token.isdigit():
            raise CommandError(
                f"--subjects must be 'all' or numbers separated by commas (e.g. 1,2,5); got {text!r}"
            )
        numbers.append(int(token))
    return numbers


def add_parser(sub) -> None:
    """Register ``skvem algonauts`` on the subcommand parsers ``sub``."""
    alg = sub.add_parser(
        "algonauts",
        help="fit LLM-VEM on Algonauts 2023 subjects and write the challenge submission",
        description=(
            "Fit an LLM-aligned encoding model on the training split of Algonauts 2023 "
            "subjects, report validation scores per ROI on a held-out part of it, and write "
            "OUT/subjXX/{lh,rh}_pred_test.npy for the test images, the submission zip, a "
            "leaderboard-style report and figures. A killed run started again with the same "
            "settings resumes at the first unfinished subject. The defaults are the paper's "
            "regime: a language-pretrained EVA02-CLIP image tower (open_clip:EVA02-B-16) "
            "fine-tuned on the fMRI while aligned with CLIP ViT-L-14 text embeddings of a chat "
            "VLM's descriptions (SmolVLM); `skvem demo` runs the same comparison on a laptop."
        ),
    )
    alg.add_argument("--root", required=True, help="the folder holding subj01, subj02, ...")
    which = alg.add_mutually_exclusive_group(required=True)
    which.add_argument("--subjects", default=None, help="'all' (every subjXX folder in --root) or a list such as 1,2,5")
    which.add_argument("--subject", type=int, default=None, help="one subject number (1-8); the same as --subjects N")
    alg.add_argument("--out", required=True, help="output folder: submission folders, zip, reports, figures")
    alg.add_argument("--n-jobs", type=int, default=1, help="subjects fitted at once (joblib; each holds its data and models in memory) (default: %(default)s)")
    alg.add_argument("--no-figures", action="store_true", help="skip the ROI figures and surface maps")
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
    alg.set_defaults(func=run)


def run(args) -> int:
    check_output_path(args.out, kind="dir", option="--out")
    # Figures are written to files, never shown; set before matplotlib is imported
    # (joblib workers inherit it).
    os.environ.setdefault("MPLBACKEND", "Agg")
    from skvem.app.algonauts import AlgonautsJob

    subjects = parse_subjects(args.subjects) if args.subjects is not None else [args.subject]
    job = AlgonautsJob(
        root=args.root,
        subjects=subjects,
        backbone=args.backbone,
        pretrained=none_or(args.pretrained),
        captioner=args.captioner,
        prompt=args.prompt,
        max_new_tokens=args.max_new_tokens,
        text_model=args.text_model,
        text_pretrained=none_or(args.text_pretrained),
        alignment_weight=args.alignment_weight,
        epochs=args.epochs,
        batch_size=args.batch_size,
        n_components=args.n_components,
        validation_fraction=args.validation_fraction,
        refit=not args.no_refit,
        device=args.device,
        seed=args.seed,
        n_jobs=args.n_jobs,
        figures=not args.no_figures,
        log=lambda message: print(f"skvem algonauts: {message}", file=sys.stderr),
    )
    print(job.run(args.out))
    return 0
