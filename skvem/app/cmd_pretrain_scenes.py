"""``skvem pretrain-scenes``: reproduce the shipped ``pretrained="scenes"`` weights."""

from __future__ import annotations

from skvem.app._common import CommandError, check_output_path

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    """Register ``skvem pretrain-scenes`` on the subcommand parsers ``sub``."""
    from skvem.app.pretrain_scenes import PRETRAIN_SEED, PretrainSettings

    d = PretrainSettings()
    p = sub.add_parser(
        "pretrain-scenes",
        help="pretrain the small CNN CLIP-style on synthetic scenes (the pretrained='scenes' weights)",
        description=(
            "Draw make_scenes images from the pretraining world seed, embed their descriptions "
            f"with {d.text_model} and train the built-in small CNN plus a linear projection with "
            "symmetric InfoNCE (CLIP's loss) against those embeddings. No fMRI is used. The "
            "defaults reproduce the weights that ship with skvem (backbone='small-cnn', "
            "pretrained='scenes'); load another file with pretrained='/path/to/file.pt'."
        ),
    )
    p.add_argument("--out", default="small_cnn_scenes.pt", help="weights file to write (default: %(default)s)")
    p.add_argument("--seed", type=int, default=PRETRAIN_SEED,
                   help="world seed of the pretraining scenes and of the training (default: %(default)s, "
                   "reserved: no demo, test or benchmark uses it)")
    p.add_argument("--n-images", type=int, default=d.n_images,
                   help="training scenes (default: %(default)s; 1,000 more are held out for validation)")
    p.add_argument("--epochs", type=int, default=d.epochs, help="epochs (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="batch size (default: %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=run)


def run(args) -> int:
    check_output_path(args.out, kind="file", option="--out")
    from skvem._utils.validation import check_int
    from skvem.app.pretrain_scenes import PretrainSettings, run_pretraining

    try:
        check_int(args.seed, name="--seed", min_val=0)
        check_int(args.n_images, name="--n-images", min_val=2)
        check_int(args.epochs, name="--epochs")
        check_int(args.batch_size, name="--batch-size", min_val=2)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    settings = PretrainSettings(n_images=args.n_images, epochs=args.epochs,
                                batch_size=args.batch_size, seed=args.seed)
    run_pretraining(settings, out=args.out, verbose=not args.no_progress)
    print(f"Wrote {args.out}. Use it with backbone='small-cnn', pretrained={args.out!r}.")
    return 0
