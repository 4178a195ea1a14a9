"""``skvem caption``: describe images with a vision-language model."""

from __future__ import annotations

import json
import os
import sys

from skvem.app._common import CommandError, check_output_path

_HDF5_EXTENSIONS = (".hdf5", ".h5")

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    """Register ``skvem caption`` on the subcommand parsers ``sub``."""
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
    cap.set_defaults(func=run)


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


def run(args) -> int:
    check_output_path(args.out, kind="file", option="--out")
    from skvem.language.captioning import CaptionTransformer

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
