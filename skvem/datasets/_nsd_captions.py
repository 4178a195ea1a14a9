"""Captions of NSD images from JSON files: ``{nsd_id: caption(s)}`` or COCO annotations."""

from __future__ import annotations

import csv
import json
import os

from skvem.datasets._nsd_io import missing

__all__ = ["read_captions"]


_EXPECTED = (
    "expected a JSON object, either {\"<0-based NSD id>\": caption or [captions]} or COCO "
    "caption annotations ({\"annotations\": [{\"image_id\": ..., \"caption\": ...}]})"
)


def _read_coco_map(stim_info):
    if not os.path.isfile(stim_info):
        raise missing(stim_info, "nsd_stim_info_merged.csv (maps COCO ids to NSD ids)")
    coco_to_nsd = {}
    with open(stim_info, newline="", encoding="utf-8", errors="replace") as f:
        reader = csv.DictReader(f)
        if not {"cocoId", "nsdId"} <= set(reader.fieldnames or ()):
            raise ValueError(
                f"{stim_info!r} needs the columns 'cocoId' and 'nsdId'; has {reader.fieldnames}"
            )
        for line, row in enumerate(reader, start=2):
            try:
                coco_to_nsd[int(float(row["cocoId"]))] = int(float(row["nsdId"]))
            except (TypeError, ValueError):
                raise ValueError(
                    f"{stim_info!r}, line {line}: cocoId and nsdId must be integers; got "
                    f"{row.get('cocoId')!r}, {row.get('nsdId')!r}"
                ) from None
    return coco_to_nsd


def _load_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except UnicodeDecodeError as exc:
        raise ValueError(f"captions file {path!r} is not UTF-8 text ({exc}); {_EXPECTED}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"captions file {path!r} is not valid JSON ({exc}); {_EXPECTED}") from None


def _coco_captions(obj, path, coco_map, out):
    annotations = obj["annotations"]
    if not isinstance(annotations, list):
        raise ValueError(f"captions file {path!r}: 'annotations' must be a list; {_EXPECTED}")
    for i, ann in enumerate(annotations):
        try:
            image_id, caption = int(ann["image_id"]), ann["caption"]
        except (TypeError, KeyError, ValueError):
            raise ValueError(
                f"captions file {path!r}: annotation {i} needs an integer 'image_id' and a "
                f"'caption'; got {ann!r:.200}"
            ) from None
        if not isinstance(caption, str):
            raise ValueError(f"captions file {path!r}: annotation {i}'s caption is not a string")
        nsd_id = coco_map.get(image_id)
        if nsd_id is not None:
            out.setdefault(nsd_id, []).append(caption.strip())


def _mapped_captions(obj, path, out):
    for key, value in obj.items():
        try:
            nsd_id = int(key)
        except ValueError:
            raise ValueError(
                f"captions file {path!r}: keys must be 0-based NSD 73k ids, e.g. '2950'; found "
                f"{key!r}"
            ) from None
        texts = [value] if isinstance(value, str) else value
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise ValueError(
                f"captions file {path!r}: the captions of {key!r} must be a string or a list of "
                f"strings; got {value!r:.200}"
            )
        out.setdefault(nsd_id, []).extend(texts)


def read_captions(captions, stim_info):
    """Return ``{0-based 73k id: [caption, ...]}`` from JSON file(s).

    Raises
    ------
    FileNotFoundError
        For a missing file.
    ValueError
        For a file that is not JSON or not in one of the two layouts; the
        message names the file and what was expected.
    """
    if isinstance(captions, (str, os.PathLike)):
        files = [captions]
    elif isinstance(captions, (list, tuple)):
        files = list(captions)
    else:
        raise TypeError(
            f"captions must be a path or a list of paths to JSON files; got {type(captions).__name__}"
        )
    out: dict = {}
    coco_map = None
    for path in files:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"captions must list paths to JSON files; got {type(path).__name__}")
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"captions file not found: {path!r}")
        obj = _load_json(path)
        if isinstance(obj, dict) and "annotations" in obj:
            if coco_map is None:
                coco_map = _read_coco_map(stim_info)
            _coco_captions(obj, path, coco_map, out)
        elif isinstance(obj, dict):
            _mapped_captions(obj, path, out)
        else:
            raise ValueError(
                f"captions file {path!r} holds a JSON {type(obj).__name__}; {_EXPECTED}"
            )
    return out
