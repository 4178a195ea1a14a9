"""A cache identity for a plain Python function: its code and the data it reads.

A function's name says nothing about what it computes: two scripts that each
define ``describe`` in ``__main__`` share the name, and editing the body keeps
it. Cached results keyed by the name would then come back for code that no
longer exists. :func:`function_key` therefore hashes what determines the
result as far as Python can see it:

* the bytecode, constants (recursively, through nested functions and
  comprehensions) and names the function uses, its defaults and its
  keyword-only defaults;
* the values of the globals and closure variables it reads, when they are
  plain data (``None``, bool, numbers, str, bytes and tuples, lists, dicts,
  sets of those); the functions it calls from its own module, the same way,
  recursively; and by name the modules, classes and functions of other
  modules (library code changes with its version, not with your script).

A function that reads anything else (a loaded model object, an open file, an
instance with state) depends on something the key cannot see; it gets no key
and its results are not cached unless it carries an explicit ``cache_key``.
Bytecode differs between Python versions, so an upgrade of Python (not of
skvem) recomputes the results of such functions once.
"""

from __future__ import annotations

import hashlib
import inspect
import types

__all__ = ["function_key"]

_PLAIN = (type(None), bool, int, float, complex, str, bytes)
_MAX_DEPTH = 20


class _Unkeyable(Exception):
    """The function reads a value the key cannot describe."""


def _data(value, depth):
    """A deterministic description of plain data, or raise :class:`_Unkeyable`."""
    if depth > _MAX_DEPTH:
        raise _Unkeyable("nested too deeply")
    if isinstance(value, _PLAIN):
        return f"{type(value).__name__}:{value!r}"
    if isinstance(value, (tuple, list)):
        inner = ",".join(_data(v, depth + 1) for v in value)
        return f"{type(value).__name__}:[{inner}]"
    if isinstance(value, (set, frozenset)):
        inner = ",".join(sorted(_data(v, depth + 1) for v in value))
        return f"set:{{{inner}}}"
    if isinstance(value, dict):
        items = sorted(f"{_data(k, depth + 1)}={_data(v, depth + 1)}" for k, v in value.items())
        return "dict:{" + ",".join(items) + "}"
    raise _Unkeyable(type(value).__name__)


def _code(code, depth):
    """Bytecode, constants and names of ``code``, with nested code objects expanded."""
    consts = []
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            consts.append(_code(const, depth + 1))
        else:
            consts.append(_data(const, depth + 1))
    return "|".join(
        [code.co_code.hex(), ";".join(consts), ",".join(code.co_names), ",".join(code.co_varnames)]
    )


def _global_names(code):
    """Every name ``code`` (and the code nested in it) may look up as a global."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


def _referenced(value, depth, seen, home):
    """Describe a value a function reads: data, a function (recursively), a module or a class."""
    if isinstance(value, types.ModuleType):
        return f"module:{value.__name__}"
    if isinstance(value, type):
        return f"class:{value.__module__}.{value.__qualname__}"
    if isinstance(value, types.BuiltinFunctionType):
        return f"builtin:{getattr(value, '__module__', '')}.{value.__qualname__}"
    if inspect.isfunction(value):
        if value.__module__ != home:
            return f"function:{value.__module__}.{value.__qualname__}"
        return _function(value, depth + 1, seen, home)
    return _data(value, depth)


def _function(func, depth, seen, home):
    if depth > _MAX_DEPTH:
        raise _Unkeyable("calls nested too deeply")
    ident = f"{func.__module__}.{func.__qualname__}"
    if id(func) in seen:  # recursion: the name suffices the second time
        return f"function:{ident}"
    seen.add(id(func))
    code = func.__code__
    parts = [f"function:{ident}", _code(code, depth)]
    parts.append("defaults:" + _data(func.__defaults__ or (), depth))
    parts.append("kwdefaults:" + _data(func.__kwdefaults__ or {}, depth))
    for name, cell in zip(code.co_freevars, func.__closure__ or ()):
        try:
            contents = cell.cell_contents
        except ValueError:  # an empty cell: the variable is not yet bound
            contents = None
        parts.append(f"closure:{name}=" + _referenced(contents, depth, seen, home))
    env = func.__globals__
    for name in sorted(_global_names(code)):
        # Names not bound here are attributes, builtins or globals defined
        # later: the name itself is part of the code already.
        if name in env:
            parts.append(f"global:{name}=" + _referenced(env[name], depth, seen, home))
    return "\n".join(parts)


def function_key(func) -> tuple[str | None, str]:
    """``(key, reason)``: a hash of ``func``'s code and the data it reads.

    Parameters
    ----------
    func : function
        A plain Python function (``inspect.isfunction``).

    Returns
    -------
    key : str or None
        A 32-hex-digit hash that changes when the function's code, defaults,
        or the plain-data globals and closure variables it reads change;
        ``None`` when it reads a value that cannot be described.
    reason : str
        Empty when ``key`` is set, else what made the function unkeyable.

    Examples
    --------
    >>> from skvem._utils.callable_key import function_key
    >>> def shout(words):
    ...     return [w.upper() for w in words]
    >>> key, reason = function_key(shout)
    >>> len(key), reason
    (32, '')
    """
    if not inspect.isfunction(func):
        raise TypeError(f"function_key needs a Python function, got {type(func).__name__}")
    try:
        description = _function(func, 0, set(), func.__module__)
    except _Unkeyable as exc:
        return None, f"it reads a {exc} value, which the cache key cannot describe"
    return hashlib.sha256(description.encode("utf-8", "surrogatepass")).hexdigest()[:32], ""
