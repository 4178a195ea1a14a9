"""Drawing the scenes of a stimulus set: content, pixels, descriptions and latents."""

from __future__ import annotations

import numpy as np

from skvem._utils.progress import progress
from skvem.datasets.scenes import _brain as brain_mod
from skvem.datasets.scenes._draw import (
    CATEGORY_GROUPS,
    COLORS,
    DIGITS,
    GROUPS,
    ROTATIONS,
    SHAPES,
    SIZE_FRACTION,
    SIZES,
    compose,
    n_digit_exemplars,
    object_mask,
    object_rgb,
    pink_noise_textures,
)
from skvem.datasets.scenes._text import PLACE_NAMES, background_tone, describe

__all__ = ["draw_set", "scene_features", "scene_latents"]



def _sample_scene(rng, categories, max_objects, image_size):
    n = int(rng.integers(1, max_objects + 1))
    cells = rng.choice(9, size=n, replace=False)
    cell = image_size / 3.0
    color_names = tuple(COLORS)
    objects = []
    for c in cells:
        row, col = int(c) // 3, int(c) % 3
        category = categories[int(rng.integers(len(categories)))]
        color = color_names[int(rng.integers(len(color_names)))]
        size = SIZES[int(rng.integers(2))]
        base_hue, base_sat, base_val = COLORS[color]
        hue = base_hue + rng.uniform(-6.0, 6.0)
        sat = base_sat * rng.uniform(0.9, 1.0)
        val = base_val * rng.uniform(0.85, 1.0)
        rotation = int(ROTATIONS[int(rng.integers(len(ROTATIONS)))])
        digit = DIGITS.index(category) if category in DIGITS else None
        exemplar = int(rng.integers(n_digit_exemplars(digit))) if digit is not None else 0
        size_px = max(3, int(round(SIZE_FRACTION[size] * cell)))
        slack = max(0.0, (cell - size_px) / 2.0) * 0.6
        cx = (col + 0.5) * cell + rng.uniform(-slack, slack)
        cy = (row + 0.5) * cell + rng.uniform(-slack, slack)
        objects.append(
            {
                "category": category,
                "group": CATEGORY_GROUPS[category],
                "color": color,
                "size": size,
                "row": row,
                "col": col,
                "place": PLACE_NAMES[(row, col)],
                "hue": float(hue % 360.0),
                "saturation": float(sat),
                "value": float(val),
                "rotation": rotation if category in SHAPES else 0,
                "exemplar": exemplar,
                "size_px": size_px,
                "center": (float(cx), float(cy)),
            }
        )
    relations = []
    for i in range(n):
        for j in range(i + 1, n):
            a, b = objects[i], objects[j]
            vertical = "above" if a["row"] < b["row"] else "below" if a["row"] > b["row"] else None
            horizontal = (
                "to the left of"
                if a["col"] < b["col"]
                else "to the right of"
                if a["col"] > b["col"]
                else None
            )
            relations.append(
                {"subject": i, "object": j, "vertical": vertical, "horizontal": horizontal}
            )
    luminance = float(rng.uniform(0.15, 0.85))
    texture_contrast = float(rng.uniform(0.04, 0.12))
    return {
        "background": {
            "luminance": luminance,
            "tone": background_tone(luminance),
            "texture_contrast": texture_contrast,
        },
        "objects": objects,
        "relations": relations,
    }


def _render(scene, texture, image_size):
    bg = scene["background"]
    gray = np.clip(bg["luminance"] + bg["texture_contrast"] * texture, 0.0, 1.0)
    canvas = np.repeat(gray[:, :, None], 3, axis=2).astype(np.float32)
    pasted = []
    for o in scene["objects"]:
        mask = object_mask(o["category"], o["size_px"], o["rotation"], o["exemplar"])
        s = mask.shape[0]
        pasted.append(
            {
                "mask": mask,
                "rgb": object_rgb(o["hue"], o["saturation"], o["value"]),
                "x0": int(round(o["center"][0] - s / 2.0)),
                "y0": int(round(o["center"][1] - s / 2.0)),
            }
        )
    return compose(canvas, pasted, image_size)


def draw_set(n, seeds, categories, max_objects, image_size, verbose, desc):
    scene_rng = np.random.default_rng(seeds[0])
    text_rng = np.random.default_rng(seeds[1])
    textures = pink_noise_textures(np.random.default_rng(seeds[2]), n, image_size)
    scenes, images, texts = [], np.empty((n, image_size, image_size, 3), dtype=np.uint8), []
    for i in progress(range(n), verbose=verbose, desc=desc, unit="scene"):
        scene = _sample_scene(scene_rng, categories, max_objects, image_size)
        images[i] = _render(scene, textures[i], image_size)
        texts.append(describe(scene, text_rng))
        scenes.append(scene)
    return scenes, images, texts


def scene_features(scenes, images, categories, max_objects):
    return {
        "energy": brain_mod.contrast_energy(images),
        "hue": brain_mod.hue_histograms(images),
        "category": brain_mod.category_drive(scenes, categories),
        "semantic": brain_mod.semantic_factors(scenes, max_objects),
    }


def scene_latents(scenes, feats, categories, max_objects):
    """Ground-truth generative features of every scene, for oracle models."""
    n = len(scenes)
    colors = tuple(COLORS)
    names = ["n_objects", "background:luminance"]
    names += [f"category:{c}" for c in categories]
    names += [f"group:{g}" for g in GROUPS]
    names += [f"color:{c}" for c in colors]
    names += [f"size:{s}" for s in SIZES]
    names += [f"cell:{r},{c}" for r in range(3) for c in range(3)]
    basic = np.zeros((n, len(names)), dtype=np.float32)
    col = {name: i for i, name in enumerate(names)}
    for s, scene in enumerate(scenes):
        basic[s, col["n_objects"]] = len(scene["objects"])
        basic[s, col["background:luminance"]] = scene["background"]["luminance"]
        for o in scene["objects"]:
            basic[s, col[f"category:{o['category']}"]] += 1
            basic[s, col[f"group:{o['group']}"]] += 1
            basic[s, col[f"color:{o['color']}"]] += 1
            basic[s, col[f"size:{o['size']}"]] += 1
            basic[s, col[f"cell:{o['row']},{o['col']}"]] = 1
    g = brain_mod.ENERGY_GRID
    energy = brain_mod.pool_grid(feats["energy"].reshape(n, g, g), 8).reshape(n, 64)
    energy_names = [f"energy:{r},{c}" for r in range(8) for c in range(8)]
    sem_names = brain_mod.semantic_factor_names(max_objects)
    latents = np.concatenate([basic, np.sqrt(energy), feats["semantic"]], axis=1).astype(np.float32)
    return latents, np.array(names + energy_names + sem_names, dtype=object)
