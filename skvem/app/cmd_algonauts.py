"""``skvem algonauts``: fit LLM-VEM on Algonauts 2023 and write the submission."""

from __future__ import annotations

from skvem.app._common import check_output_path, none_or

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    """Register ``skvem algonauts`` on the subcommand parsers ``sub``."""
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
    alg.set_defaults(func=run)


def run(args) -> int:
    check_output_path(args.out, kind="dir", option="--out")
    from skvem.app.algonauts import AlgonautsJob

    job = AlgonautsJob(
        root=args.root,
        subject=args.subject,
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
    )
    report = job.run(args.out)
    print(report)
    return 0
