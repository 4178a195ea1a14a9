"""Natural-language descriptions of the synthetic scenes.

A description names every object's size, colour, category and place, the
spatial relations between objects, the number of objects and the tone of the
background, in one of several phrasings drawn at random (seeded). It states
only what is true of the drawn scene, so it is the "ideal caption" a
vision-language model would aim for.
"""

from __future__ import annotations

from skvem.datasets.scenes._draw import DIGITS

NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four"}

SIZE_WORDS = {"small": ("small", "little"), "large": ("large", "big")}

# Grid cell (row, column) -> canonical place name and its phrasings.
PLACE_NAMES = {
    (0, 0): "top left",
    (0, 1): "top",
    (0, 2): "top right",
    (1, 0): "left",
    (1, 1): "center",
    (1, 2): "right",
    (2, 0): "bottom left",
    (2, 1): "bottom",
    (2, 2): "bottom right",
}
PLACE_PHRASES = {
    (0, 0): ("in the top left corner", "at the top left", "in the upper left"),
    (0, 1): ("at the top", "at the top center", "in the upper middle"),
    (0, 2): ("in the top right corner", "at the top right", "in the upper right"),
    (1, 0): ("on the left", "on the left side", "at the middle of the left edge"),
    (1, 1): ("in the center", "in the middle", "at the center"),
    (1, 2): ("on the right", "on the right side", "at the middle of the right edge"),
    (2, 0): ("in the bottom left corner", "at the bottom left", "in the lower left"),
    (2, 1): ("at the bottom", "at the bottom center", "in the lower middle"),
    (2, 2): ("in the bottom right corner", "at the bottom right", "in the lower right"),
}

BACKGROUND_WORDS = {
    "dark": ("dark", "dark gray"),
    "gray": ("gray", "medium gray"),
    "light": ("light", "light gray", "pale"),
}


def background_tone(luminance: float) -> str:
    """Name the background's luminance: ``"dark"``, ``"gray"`` or ``"light"``."""
    if luminance < 0.38:
        return "dark"
    if luminance > 0.62:
        return "light"
    return "gray"


def category_phrases(category: str) -> tuple:
    """Noun phrases naming a category; digits have several."""
    if category in DIGITS:
        return (f"digit {category}", f"number {category}", f"handwritten {category}")
    return (category,)


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _pick(rng, options):
    return options[int(rng.integers(len(options)))]


def _relation_phrase(vertical, horizontal, rng):
    if vertical and horizontal:
        return f"{vertical} and {horizontal}"
    if vertical:
        return _pick(rng, (vertical, f"directly {vertical}"))
    return horizontal


def _inverse(vertical, horizontal):
    inv_v = {"above": "below", "below": "above", None: None}[vertical]
    inv_h = {"to the left of": "to the right of", "to the right of": "to the left of", None: None}[
        horizontal
    ]
    return inv_v, inv_h


def _referring_expressions(objects, words):
    """Shortest phrase that singles out each object among the others."""
    levels = (("category",), ("category", "color"), ("category", "color", "size"))
    refs = []
    for i, obj in enumerate(objects):
        cat, color, size = words[i]["category"], obj["color"], words[i]["size"]
        phrases = (cat, f"{color} {cat}", f"{size} {color} {cat}")
        chosen = None
        for phrase, keys in zip(phrases, levels):
            if sum(all(o[k] == obj[k] for k in keys) for o in objects) == 1:
                chosen = phrase
                break
        if chosen is None:
            chosen = f"{color} {cat} {PLACE_PHRASES[(obj['row'], obj['col'])][1]}"
        refs.append(chosen)
    return refs


def describe(scene: dict, rng) -> str:
    """Write one description of ``scene`` (see :func:`skvem.datasets.make_scenes`).

    Parameters
    ----------
    scene : dict
        ``{"background": {"tone": ...}, "objects": [...], "relations": [...]}``.
    rng : numpy.random.Generator
        Chooses the phrasing.

    Returns
    -------
    description : str
    """
    objects = scene["objects"]
    n = len(objects)
    bg = _pick(rng, BACKGROUND_WORDS[scene["background"]["tone"]])
    words = [
        {
            "category": _pick(rng, category_phrases(o["category"])),
            "size": _pick(rng, SIZE_WORDS[o["size"]]),
            "place": _pick(rng, PLACE_PHRASES[(o["row"], o["col"])]),
        }
        for o in objects
    ]
    phrases = [
        f"{_article(w['size'])} {w['size']} {o['color']} {w['category']} {w['place']}"
        for o, w in zip(objects, words)
    ]

    if n == 1:
        template = int(rng.integers(4))
        p = phrases[0]
        if template == 0:
            return f"{p[0].upper()}{p[1:]} on {_article(bg)} {bg} background."
        if template == 1:
            return f"There is {p}. The background is {bg} and textured."
        if template == 2:
            return f"{_article(bg).capitalize()} {bg}, textured background with {p}."
        return f"The image shows {p} against {_article(bg)} {bg} background."

    listing = ", ".join(phrases[:-1]) + " and " + phrases[-1]
    refs = _referring_expressions(objects, words)
    relation_sentences = []
    for rel in scene["relations"]:
        i, j = rel["subject"], rel["object"]
        vertical, horizontal = rel["vertical"], rel["horizontal"]
        if rng.random() < 0.5:
            i, j = j, i
            vertical, horizontal = _inverse(vertical, horizontal)
        phrase = _relation_phrase(vertical, horizontal, rng)
        relation_sentences.append(f"The {refs[i]} is {phrase} the {refs[j]}.")
    relations = " ".join(relation_sentences)
    count = NUMBER_WORDS[n]
    template = int(rng.integers(4))
    a_bg = f"{_article(bg)} {bg}"
    if template == 0:
        return f"{count.capitalize()} objects on {a_bg} background: {listing}. {relations}"
    if template == 1:
        return f"There are {count} objects: {listing}. {relations} The background is {bg}."
    if template == 2:
        return f"The image shows {count} objects, {listing}, against {a_bg} background. {relations}"
    return (
        f"{listing[0].upper()}{listing[1:]}, {count} objects on {a_bg}, textured background. "
        f"{relations}"
    )
