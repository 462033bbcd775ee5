"""Validated profiles as plain frozen views, cached by the profile's text.

Importing the pydantic schema (profiles/schema.py) builds its validators: about
0.2 s, paid by every `aia` process that reads a profile, twice for `aia bench`
(the command and its worker). Yet a profile text that validated once validates
to the same profile as long as the schema code is the same. So the validated
profile is stored as JSON (``<cache>/profiles/<key>.json``; the key holds the
text's sha256, aia's version, the modification times of the schema modules and
of pydantic) and read back as *views*: frozen objects with the schema
classes' names, fields, properties, methods (the mixins below, which the schema
classes inherit too) and a ``model_dump`` with pydantic's arguments. A first load
validates with pydantic and returns views as well, so every caller sees one kind
of object. Only valid profiles are stored: every error message still comes from
the full validation (profiles/validate.py).

The cache is aia's own, in the user's cache folder (as the FLOP counts of
analysis/facts.py): a file there that does not decode is ignored and rewritten.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

VIEW_VERSION = 1
MAX_CACHE_BYTES = 2**22  # a validated profile is a few kB; anything larger is not ours
BASE_VARIANT = "base"  # the top-level model; not a key of variants:

# The files whose code decides what a profile text validates to: a change to any of them
# (an edited checkout, an upgrade) gives another key.
_SCHEMA_FILES = (
    "profiles/schema.py",
    "profiles/validate.py",
    "profiles/view.py",
    "genai/__init__.py",
    "limits.py",
    "providers/catalogue.py",
)


# ----------------------------------------------------------------------------- shared methods
# The properties and methods of the schema classes, written once: schema.py's pydantic
# classes and the views both inherit them, and they read only fields.


class ModelSpecMethods:
    def sources(self) -> list[str]:
        return [
            k for k in ("file", "package", "huggingface", "url") if getattr(self, k) is not None
        ]

    @property
    def kind(self) -> str:
        """Which source key is set: file, package, huggingface or url."""
        return self.sources()[0]


class TextInputMethods:
    @property
    def texts(self) -> tuple[str, ...]:
        value = self.value  # type: ignore[attr-defined]
        return (value,) if isinstance(value, str) else value


class TensorSpecMethods:
    @property
    def kind(self) -> str:
        """synthesize, value or file."""
        if self.synthesize is not None:  # type: ignore[attr-defined]
            return "synthesize"
        return "value" if self.value is not None else "file"  # type: ignore[attr-defined]


class InputsSpecMethods:
    def shape_of(self, name: str) -> tuple[int, ...] | None:
        """The concrete shape given for input ``name`` (dimension names resolved), if any."""
        spec = self.tensors.get(name)  # type: ignore[attr-defined]
        if spec is None or spec.shape is None:
            return None
        dims = self.dims  # type: ignore[attr-defined]
        return tuple(dims[d] if isinstance(d, str) else d for d in spec.shape)


class ProfileMethods:
    def variant_names(self) -> list[str]:
        """``base`` then the profile's variants, in file order."""
        return [BASE_VARIANT, *self.variants]  # type: ignore[attr-defined]


_METHODS: dict[str, type] = {
    "ModelSpec": ModelSpecMethods,
    "TextInput": TextInputMethods,
    "TensorSpec": TensorSpecMethods,
    "InputsSpec": InputsSpecMethods,
    "Profile": ProfileMethods,
}


# ----------------------------------------------------------------------------- views


class View:
    """A frozen, validated record: fields as attributes, compared by value."""

    __aia_view__ = True
    _names: tuple[str, ...] = ()

    def __init__(self, values: dict[str, Any], fields_set: set[str], aliases: dict[str, str]):
        object.__setattr__(self, "__dict__", dict(values))
        object.__setattr__(self, "_names", tuple(values))
        object.__setattr__(self, "_fields_set", frozenset(fields_set))
        object.__setattr__(self, "_aliases", dict(aliases))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen: cannot set '{name}'")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen: cannot delete '{name}'")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, View) or type(other).__name__ != type(self).__name__:
            return NotImplemented
        return self._items() == other._items()

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(v for _, v in self._items())))

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._items())
        return f"{type(self).__name__}({inner})"

    def _items(self) -> list[tuple[str, Any]]:
        return [(n, self.__dict__[n]) for n in self._names]

    @property
    def model_fields_set(self) -> set[str]:
        return set(self._fields_set)

    def model_dump(
        self,
        *,
        mode: str = "python",
        exclude_none: bool = False,
        exclude_unset: bool = False,
        by_alias: bool = False,
    ) -> dict[str, Any]:
        """As pydantic's ``model_dump`` with these arguments."""
        if mode not in ("python", "json"):
            raise ValueError(f"mode must be 'python' or 'json', got {mode!r}")
        return _dump(self, mode == "json", exclude_none, exclude_unset, by_alias)


def _dump(value: Any, json_mode: bool, none: bool, unset: bool, alias: bool) -> Any:
    if isinstance(value, View):
        out: dict[str, Any] = {}
        for name, v in value._items():
            if none and v is None:
                continue
            if unset and name not in value._fields_set:
                continue
            key = value._aliases.get(name, name) if alias else name
            out[key] = _dump(v, json_mode, none, unset, alias)
        return out
    if isinstance(value, dict):
        return {k: _dump(v, json_mode, none, unset, alias) for k, v in value.items()}
    if isinstance(value, tuple):
        items = [_dump(v, json_mode, none, unset, alias) for v in value]
        return items if json_mode else tuple(items)
    if isinstance(value, list):
        return [_dump(v, json_mode, none, unset, alias) for v in value]
    return value


class _ViewClasses:
    """The view classes by name, each made on first use: ``Views.Profile``. pickle (and
    Ray's cloudpickle) send a view by reference to that name, and another process makes
    the class when it reads one."""

    def __getattr__(self, name: str) -> type[View]:
        if not _CLASS_NAME.fullmatch(name):
            raise AttributeError(name)
        return _view_class(name)


Views = _ViewClasses()
_CLASS_NAME = re.compile(r"[A-Z][A-Za-z0-9]{0,63}")


def _view_class(name: str) -> type[View]:
    cls = Views.__dict__.get(name)
    if cls is None:
        if not _CLASS_NAME.fullmatch(name):
            raise ValueError(f"not a schema class name: {name!r}")
        bases = (_METHODS[name], View) if name in _METHODS else (View,)
        cls = type(name, bases, {"__module__": __name__, "__qualname__": f"Views.{name}"})
        Views.__dict__[name] = cls
    return cls


def is_view(value: Any) -> bool:
    return getattr(type(value), "__aia_view__", False) is True


# ----------------------------------------------------------------------------- encoding


class Unencodable(TypeError):
    """A validated profile holding a value the JSON form cannot carry (then it is not cached)."""


def encode(value: Any) -> Any:
    """A validated pydantic profile (or any part of it) as JSON-able data with its types."""
    fields = getattr(type(value), "model_fields", None)
    if isinstance(fields, dict):
        return {
            "$": type(value).__name__,
            "f": {n: encode(getattr(value, n)) for n in fields},
            "s": sorted(value.model_fields_set),
            "a": {n: f.alias for n, f in fields.items() if f.alias and f.alias != n},
        }
    if isinstance(value, tuple):
        return {"$t": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise Unencodable("a mapping with keys that are not strings")
        return {"$d": {k: encode(v) for k, v in value.items()}}
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    raise Unencodable(f"a value of type {type(value).__name__}")


def decode(data: Any) -> Any:
    """Views from :func:`encode`'s data; ValueError when it is not such data."""
    if isinstance(data, list):
        return [decode(v) for v in data]
    if isinstance(data, dict):
        if "$t" in data:
            return tuple(decode(v) for v in data["$t"])
        if "$d" in data:
            return {str(k): decode(v) for k, v in data["$d"].items()}
        if "$" in data:
            cls = _view_class(str(data["$"]))
            values = {str(k): decode(v) for k, v in dict(data["f"]).items()}
            return cls(values, {str(s) for s in data["s"]}, dict(data.get("a") or {}))
        raise ValueError("a mapping without a type tag")
    if data is None or isinstance(data, (str, bool, int, float)):
        return data
    raise ValueError(f"unexpected {type(data).__name__}")


# ----------------------------------------------------------------------------- the cache


def _code_stamp() -> list[str]:
    import aialliance_cli

    root = Path(aialliance_cli.__file__).parent
    parts = [str(VIEW_VERSION), getattr(aialliance_cli, "__version__", "?"), sys.version]
    for rel in _SCHEMA_FILES:
        try:
            st = os.stat(root / rel)
            parts.append(f"{rel}:{st.st_mtime_ns}:{st.st_size}")
        except OSError:
            parts.append(f"{rel}:-")
    import importlib.util

    for module in ("pydantic", "pydantic_core"):  # the validator's own code (an upgrade)
        try:
            spec = importlib.util.find_spec(module)
            origin = spec.origin if spec is not None else None
            st = os.stat(origin) if origin else None
            parts.append(f"{module}:{origin}:{st.st_mtime_ns if st else '-'}")
        except (ImportError, ValueError, OSError):
            parts.append(f"{module}:-")
    return parts


def cache_path(digest: str) -> Path:
    """Where the views of the profile text with this sha256 are kept."""
    from aialliance_cli.paths import user_dirs

    raw = "\n".join([digest, *_code_stamp()]).encode("utf-8", "surrogateescape")
    return user_dirs().cache / "profiles" / f"{hashlib.sha256(raw).hexdigest()[:40]}.json"


def _load(path: Path, digest: str) -> Any | None:
    try:
        if path.stat().st_size > MAX_CACHE_BYTES:
            return None
        entry = json.loads(path.read_text(encoding="utf-8"))
        if entry.get("version") != VIEW_VERSION or entry.get("sha256") != digest:
            return None
        view = decode(entry["profile"])
    except (OSError, ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return None
    return view if type(view).__name__ == "Profile" else None


def validated_view(text: str, digest: str, path: str | Path = "<profile>") -> Any:
    """The profile in ``text`` (sha256 ``digest``) as views: from the cache, or validated
    (raising ProfileError, as :func:`aialliance_cli.profiles.loader.parse_profile`) and kept."""
    where = cache_path(digest)
    view = _load(where, digest)
    if view is not None:
        return view
    from aialliance_cli.profiles.validate import parse_profile

    profile = parse_profile(text, path)
    try:
        data = encode(profile)
    except Unencodable:
        return profile
    with contextlib.suppress(OSError, ValueError):  # a read-only cache only costs a validation
        from aialliance_cli.atomicfile import write_text_atomic

        write_text_atomic(
            where, json.dumps({"version": VIEW_VERSION, "sha256": digest, "profile": data})
        )
    return decode(data)
