"""``skvem caption``: describe images with a vision-language model."""

from __future__ import annotations

import json
import os
import sys

from skvem.app._common import CommandError, check_output_path, none_or

_HDF5_EXTENSIONS = (".hdf5", ".h5")

__all__ = ["add_parser", "run", "add_caption_settings", "caption_settings"]


def add_caption_settings(parser, *, required=True) -> None:
    """The options that make up a caption's cache key (shared with ``skvem cache``)."""
    parser.add_argument("--model", required=required, help="Hugging Face model id or local folder of a captioner")
    parser.add_argument("--prompt", help="instruction for chat vision-language models (ignored by BLIP/GIT)")
    parser.add_argument("--max-new-tokens", type=int, help="longest caption in tokens")
    parser.add_argument("--revision", help="branch, tag or commit of a Hugging Face model")


def caption_settings(args) -> dict:
    """``CaptionTransformer`` keyword arguments from :func:`add_caption_settings`' options."""
    options = {"model": args.model, "revision": args.revision}
    if args.prompt is not None:
        options["prompt"] = args.prompt
    if args.max_new_tokens is not None:
        options["max_new_tokens"] = args.max_new_tokens
    return options


def add_parser(sub) -> None:
    """Register ``skvem caption`` on the subcommand parsers ``sub``."""
    cap = sub.add_parser(
        "caption",
        help="describe images with a vision-language model (batched, cached, resumable)",
        description=(
            "Caption images from files, folders or HDF5 files (e.g. NSD's nsd_stimuli.hdf5) and "
            "write one JSON object per line: {\"image\": ..., \"caption\": ...}. Captions are "
            "cached per image, so an interrupted run resumes where it stopped. With --shard K/N "
            "only the K-th of N contiguous blocks of the image list is captioned (for job "
            "arrays); --export writes its captions for `skvem cache import` elsewhere."
        ),
    )
    cap.add_argument("images", nargs="+", help="image files, folders of images, or .hdf5/.h5 files")
    add_caption_settings(cap)
    cap.add_argument("--out", required=True, help="output JSON-lines file")
    cap.add_argument("--batch-size", type=int, default=8, help="images per generation batch (default: %(default)s)")
    cap.add_argument("--device", default="auto", help="torch device (default: %(default)s)")
    cap.add_argument("--engine", default="hf", choices=("hf", "vllm"), help="generation engine (default: %(default)s; vllm: pip install skvem[vllm])")
    cap.add_argument("--num-workers", type=int, default=2, help="image-decoding threads (default: %(default)s)")
    cap.add_argument("--shard", metavar="K/N", help="caption only the K-th of N shards of the images (1 <= K <= N)")
    cap.add_argument("--export", metavar="FILE", help="also write this run's captions as a cache export file (for `skvem cache import`)")
    cap.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS", help="caption on Ray: one model replica per GPU actor (ADDRESS: ray://HOST:PORT or HOST:PORT; none: RAY_ADDRESS or a local instance; pip install skvem[ray])")
    cap.add_argument("--ray-replicas", type=int, help="model replicas (Ray actors); default one per GPU of the cluster")
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


def _select_shard(sources, k, n_shards):
    """The sources cut down to shard ``k`` of ``n_shards`` of their concatenated images."""
    from skvem._utils.sharding import shard_bounds

    total = sum(len(images) for _, images, _ in sources)
    lo, hi = shard_bounds(total, k, n_shards)
    out, offset = [], 0
    for label, images, names in sources:
        a, b = max(lo - offset, 0), min(hi - offset, len(images))
        if a < b:
            out.append((label, images[a:b], names[a:b]))
        offset += len(images)
    return out


def run(args) -> int:
    check_output_path(args.out, kind="file", option="--out")
    if args.export is not None:
        check_output_path(args.export, kind="file", option="--export")
    from skvem._utils.sharding import parse_shard

    shard = None
    if args.shard is not None:
        try:
            shard = parse_shard(args.shard)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
    cache_dir = none_or(args.cache_dir)
    if args.cache_dir is not None and cache_dir is None:
        cache_dir = False
    if args.export is not None and cache_dir is False:
        raise CommandError("--export writes cached captions; it needs the cache (not --cache-dir none)")
    started_ray = False
    if args.ray is not None:
        from skvem.scale import connect_ray

        # Before anything is loaded or written: an address that does not
        # answer is one error and leaves no output behind.
        started_ray = connect_ray(args.ray)
    try:
        return _caption(args, shard, cache_dir)
    finally:
        if started_ray:
            import ray

            ray.shutdown()


def _caption(args, shard, cache_dir) -> int:
    from skvem._utils.cache import namespace_key, resolve_cache
    from skvem.language.captioning import CaptionTransformer

    options = dict(
        caption_settings(args),
        batch_size=args.batch_size,
        device=args.device,
        engine=args.engine,
        num_workers=args.num_workers,
        cache_dir=cache_dir,
        verbose=True,
    )
    captioner = CaptionTransformer(**options).fit()
    sources = _collect_image_sources(args.images, args.hdf5_key)
    n_all = sum(len(images) for _, images, _ in sources)
    if shard is not None:
        sources = _select_shard(sources, *shard)
    n_total = sum(len(images) for _, images, _ in sources)
    where = f" (shard {shard[0]}/{shard[1]} of {n_all})" if shard else ""
    print(f"Captioning {n_total} images{where} with {args.model}", file=sys.stderr, flush=True)
    # Captions are cached per batch as they are made: a killed run resumes
    # from the cache, and the output file appears only once it is complete.
    tmp = f"{args.out}.partial"
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(tmp, "w", encoding="utf-8") as f:
        for _, images, names in sources:
            if args.ray is not None:
                from skvem.scale import ray_transform

                captions = ray_transform(captioner, images, num_replicas=args.ray_replicas)
            else:
                captions = captioner.transform(images)
            ids = images.ids if images.ids is not None else [None] * len(images)
            for name, image_id, caption in zip(names, ids, captions):
                record = {"image": name, "caption": str(caption)}
                if image_id is not None:
                    record["id"] = str(image_id)
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
    os.replace(tmp, args.out)
    print(f"Wrote {n_total} captions to {args.out}", file=sys.stderr)
    if args.export is not None:
        from skvem._utils.cache_transfer import export_cache

        keys = [fp for _, images, _ in sources for fp in images.fingerprints()]
        ns = namespace_key("caption", captioner.cache_settings())
        n = export_cache(args.export, resolve_cache(cache_dir), namespaces=[ns], keys=keys)
        print(f"Exported {n} cache entries to {args.export}", file=sys.stderr)
    return 0
