"""Resolve references to skvem objects by any path they are importable from.

Each public object is documented once, under the path api.rst lists (e.g.
``skvem.featurizers.AlignedImageFeaturizer``), but docstrings name it where it
is handy: ``skvem.AlignedImageFeaturizer`` (the lazy top-level export),
``skvem.encoding._ridge_solver.solve_ridge_cv`` (its home module), or a bare
``VoxelRidgeCV`` written inside another module. Sphinx would leave all of those
unlinked. A reference that Sphinx cannot resolve is imported here and, when the
object it names is documented under another path, linked there.
"""

from __future__ import annotations

import importlib
import inspect

# Built once per build, when the first reference is missing (all pages read).
_CACHE = {}


def _import(path):
    """The object named by a dotted ``path``, or None."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


def _linkable(obj):
    # id() names one object only for classes, functions and modules: equal
    # small ints or strings may be one interned object.
    return callable(obj) or inspect.ismodule(obj)


def _documented(env):
    """``id(object) -> documented name`` and ``short name -> documented names``."""
    if "documented" not in _CACHE:
        by_id, by_tail = {}, {}
        for name in env.get_domain("py").objects:
            if not name.startswith("skvem"):
                continue
            obj = _import(name)
            if _linkable(obj):
                by_id.setdefault(id(obj), name)
            parts = name.split(".")
            for cut in range(1, len(parts)):
                by_tail.setdefault(".".join(parts[cut:]), set()).add(name)
        _CACHE["documented"] = (by_id, by_tail)
    return _CACHE["documented"]


def _candidates(node, target):
    yield target
    module, cls = node.get("py:module"), node.get("py:class")
    if module and cls:
        yield f"{module}.{cls}.{target}"
    if module:
        yield f"{module}.{target}"
    if not target.startswith("skvem."):
        yield f"skvem.{target}"


def _resolve(app, env, node, contnode):
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "").lstrip("~.")
    if not target:
        return None
    by_id, by_tail = _documented(env)
    name = None
    for candidate in _candidates(node, target):
        obj = _import(candidate) if candidate.startswith("skvem") else None
        if _linkable(obj) and id(obj) in by_id:
            name = by_id[id(obj)]
            break
    if name is None:
        matches = by_tail.get(target, ())
        if len(matches) != 1:
            return None
        (name,) = matches
    # "obj" matches every object type: :class: may name a scorer instance.
    domain = env.get_domain("py")
    return domain.resolve_xref(env, node["refdoc"], app.builder, "obj", name, node, contnode)


def setup(app):
    app.connect("builder-inited", lambda app: _CACHE.clear())
    app.connect("missing-reference", _resolve)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
