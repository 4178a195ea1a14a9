"""``skvem cache``: list, export and import cached captions (and features).

``skvem cache export --out FILE`` writes entries of the local cache to a file;
``skvem cache import FILES...`` loads such files (and the ``--export`` files of
``skvem caption --shard`` jobs) into the local cache, so a later
``CaptionTransformer`` with the same settings captions nothing.
"""

from __future__ import annotations

import sys

from skvem.app._common import CommandError, check_output_path

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    """Register ``skvem cache`` on the subcommand parsers ``sub``."""
    from skvem.app.cmd_caption import add_caption_settings

    cache = sub.add_parser(
        "cache",
        help="list, export and import cached captions (merge the shards of a job array)",
        description=(
            "Move cache entries between machines: `export` writes them to a file, `import` "
            "loads such files into this machine's cache (checked first; idempotent)."
        ),
    )
    actions = cache.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, helptext in (
        ("list", "show what the cache holds"),
        ("export", "write cache entries to a file"),
        ("import", "load export files into the cache"),
    ):
        p = actions.add_parser(name, help=helptext, description=helptext)
        p.add_argument("--cache-dir", help="cache folder (default $SKVEM_CACHE_DIR or ~/.cache/skvem)")
        if name == "export":
            p.add_argument("--out", required=True, help="export file to write (JSON Lines)")
            p.add_argument("--kind", default="caption", help="what to export: caption (default), image-features, or all")
        if name == "import":
            p.add_argument("files", nargs="+", help="export files (from `skvem cache export` or `skvem caption --export`)")
            # Optional here: given --model, imported captions must match these settings.
            group = p.add_argument_group(
                "expected settings", "refuse files made with another captioner, prompt or length"
            )
            add_caption_settings(group, required=False)
        p.set_defaults(func=run)


def _cache(args, *, must_exist):
    from skvem._utils.cache import DiskCache, resolve_cache

    # strict: a cache that cannot be written is an error here, not a warning.
    cache = DiskCache(resolve_cache(args.cache_dir).directory, strict=True)
    if must_exist and not cache.path.exists():
        raise CommandError(f"no skvem cache in {str(cache.directory)!r}")
    return cache


def run(args) -> int:
    if args.action == "list":
        cache = _cache(args, must_exist=True)
        for ns, kind, desc, count in cache.namespaces():
            what = desc.get("captioner") or desc.get("backbone") or ""
            print(f"{ns}  {kind:<15} {count:>8}  {what}  prompt={desc.get('prompt')!r}"
                  if kind == "caption" else f"{ns}  {kind:<15} {count:>8}  {what}")
        return 0
    if args.action == "export":
        check_output_path(args.out, kind="file", option="--out")
        from skvem._utils.cache_transfer import export_cache

        kind = None if args.kind == "all" else args.kind
        n = export_cache(args.out, _cache(args, must_exist=True), kind=kind)
        print(f"Exported {n} cache entries to {args.out}", file=sys.stderr)
        return 0
    from skvem._utils.cache_transfer import import_cache
    from skvem.app.cmd_caption import caption_settings
    from skvem.language.captioning import CaptionTransformer

    expect = None
    if args.model is not None:
        expect = CaptionTransformer(**caption_settings(args), cache_dir=False).cache_settings()
    report = import_cache(args.files, _cache(args, must_exist=False), expect=expect)
    new, present = sum(r["new"] for r in report), sum(r["present"] for r in report)
    print(
        f"Imported {new} new entries from {len(args.files)} files ({present} already cached)",
        file=sys.stderr,
    )
    return 0
