"""Plugin EPs (ONNX Runtime >= 1.23): find the installed packages, register them, list devices.

A plugin EP package (``onnxruntime-ep-openvino``, ``onnxruntime-ep-nv-tensorrt-rtx``,
``onnxruntime-ep-webgpu``, ``onnxruntime-qnn`` 2.x) installs a shared library
beside ``onnxruntime``. ORT's packaging guidance asks such a package to expose
``get_library_path()`` and ``get_ep_name()``/``get_ep_names()``; aia uses them,
and falls back to the package's file list for an ``onnxruntime-ep-*`` package
that has none. Registration (``ort.register_execution_provider_library``) is
per process: aia registers each library once and never raises on failure.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aialliance_cli.providers.catalogue import CATALOGUE

_PLUGIN_PREFIX = "onnxruntime-ep-"
# Plugin packages without the "onnxruntime-ep-" prefix: canonical package -> EP name.
_KNOWN_PACKAGES = {pkg: spec.name for spec in CATALOGUE for pkg in spec.plugin_packages}
_LIB_SUFFIXES = (".so", ".dll", ".dylib")


@dataclass(frozen=True)
class PluginLib:
    """An installed plugin EP library."""

    package: str  # distribution name, e.g. onnxruntime-ep-openvino
    ep_name: str  # "" when the package does not say
    library_path: str
    version: str = ""
    ep_names: tuple[str, ...] = ()  # every EP the library provides; defaults to (ep_name,)

    def __post_init__(self) -> None:
        if not self.ep_names and self.ep_name:
            object.__setattr__(self, "ep_names", (self.ep_name,))


@dataclass(frozen=True)
class RegisteredPlugin:
    """The outcome of registering one plugin library (``ok`` False: ``note`` says why)."""

    package: str
    ep_names: tuple[str, ...]
    library_path: str
    registration_name: str
    ok: bool
    note: str = ""


@dataclass(frozen=True)
class EpDevice:
    """One ``OrtEpDevice`` of ``ort.get_ep_devices()``, as plain data."""

    ep_name: str
    ep_vendor: str
    device_type: str  # "cpu", "gpu", "npu"
    vendor: str
    vendor_id: str  # "0x8086"
    device_id: int
    ep_metadata: dict[str, str] = field(default_factory=dict)
    ep_options: dict[str, str] = field(default_factory=dict)
    device_metadata: dict[str, str] = field(default_factory=dict)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _known_ep_for(package: str) -> str:
    for pkg, ep in _KNOWN_PACKAGES.items():
        # A meta-package's variants (onnxruntime-ep-nv-tensorrt-rtx-cu13) share its EP.
        if package == pkg or package.startswith(pkg + "-"):
            return ep
    return ""


def _module_names(dist: md.Distribution) -> list[str]:
    top = dist.read_text("top_level.txt") or ""
    names = [line.strip() for line in top.splitlines() if line.strip()]
    guess = _canonical(dist.metadata["Name"]).replace("-", "_")
    if guess not in names:
        names.append(guess)
    # A full build's module is onnxruntime itself: never treat it as a plugin.
    return [n for n in names if n != "onnxruntime"]


def _from_module(module: Any) -> tuple[str | None, tuple[str, ...]]:
    path = None
    getter = getattr(module, "get_library_path", None)
    if callable(getter):
        path = str(getter())
    names: tuple[str, ...] = ()
    if callable(getattr(module, "get_ep_names", None)):
        names = tuple(str(n) for n in module.get_ep_names())
    elif callable(getattr(module, "get_ep_name", None)):
        names = (str(module.get_ep_name()),)
    return path, names


def _from_files(dist: md.Distribution) -> str | None:
    """The one EP-looking shared library a package ships, if exactly one."""
    found = []
    try:
        files = dist.files or ()
    except Exception:  # a malformed RECORD
        return None
    for f in files:
        name = Path(str(f)).name.lower()
        if not name.endswith(_LIB_SUFFIXES):
            continue
        if "onnxruntime_providers" in name or "_ep" in name or "plugin" in name:
            found.append(str(dist.locate_file(f)))
    return found[0] if len(found) == 1 else None


def _candidate_distributions() -> list[md.Distribution]:
    """Installed distributions whose folder name could be a plugin EP package.

    The name is read from the ``*.dist-info`` folder first, so that only the few
    candidates have their metadata parsed (``md.distributions()`` parses every
    package's METADATA: a quarter of a second beside torch and transformers).
    """
    import os
    import sys

    out: list[md.Distribution] = []
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if not name.endswith((".dist-info", ".egg-info")):
                continue
            package = _canonical(name.rsplit(".", 1)[0].split("-", 1)[0])
            if package.startswith(_PLUGIN_PREFIX) or package in _KNOWN_PACKAGES:
                out.append(md.PathDistribution(Path(entry or ".") / name))
    return out


def _discover() -> tuple[list[PluginLib], list[tuple[str, str]]]:
    libs: list[PluginLib] = []
    problems: list[tuple[str, str]] = []
    seen_paths: set[str] = set()
    seen_dists: set[str] = set()
    for dist in _candidate_distributions():
        raw = dist.metadata["Name"] or ""
        package = _canonical(raw)
        if package in seen_dists:
            continue
        if not (package.startswith(_PLUGIN_PREFIX) or package in _KNOWN_PACKAGES):
            continue
        seen_dists.add(package)
        path, names, error = None, (), ""
        for mod_name in _module_names(dist):
            try:
                module = importlib.import_module(mod_name)
            except ImportError:
                continue
            except Exception as exc:  # a broken plugin must not break detection
                error = f"importing {mod_name} failed: {exc}"
                continue
            try:
                path, names = _from_module(module)
            except Exception as exc:
                error = f"{mod_name}.get_library_path() failed: {exc}"
            if path:
                break
        if not path and package.startswith(_PLUGIN_PREFIX):
            path = _from_files(dist)
        if not path:
            # A meta-package (onnxruntime-ep-nv-tensorrt-rtx) ships no library of its own.
            if error:
                problems.append((raw, error))
            continue
        if path in seen_paths:
            continue
        seen_paths.add(path)
        ep = names[0] if names else _known_ep_for(package)
        libs.append(PluginLib(raw, ep, path, dist.version, names or ((ep,) if ep else ())))
    return libs, problems


def find_plugin_libraries() -> list[PluginLib]:
    """Installed plugin EP packages and the library each ships."""
    return _discover()[0]


# (id of the ort module, library path) -> outcome; the module is kept so its id stays unique.
_REGISTERED: dict[tuple[int, str], tuple[Any, RegisteredPlugin]] = {}


def register_plugins(
    ort_module: Any, libraries: list[PluginLib] | None = None
) -> list[RegisteredPlugin]:
    """Register each plugin library with ``ort_module`` once per process; never raises.

    ``libraries`` defaults to ``find_plugin_libraries()``. A library ORT already
    holds (ORT registers some itself) counts as registered.
    """
    problems: list[tuple[str, str]] = []
    if libraries is None:
        libraries, problems = _discover()
    out = [RegisteredPlugin(pkg, (), "", "", False, note) for pkg, note in problems]
    register = getattr(ort_module, "register_execution_provider_library", None)
    version = getattr(ort_module, "__version__", "?")
    for lib in libraries:
        key = (id(ort_module), lib.library_path)
        if key in _REGISTERED:
            out.append(_REGISTERED[key][1])
            continue
        reg_name = lib.package
        if register is None:
            result = RegisteredPlugin(
                lib.package,
                lib.ep_names,
                lib.library_path,
                reg_name,
                False,
                f"plugin EPs need onnxruntime >= 1.23; this is {version}",
            )
        else:
            try:
                register(reg_name, lib.library_path)
                result = RegisteredPlugin(
                    lib.package, lib.ep_names, lib.library_path, reg_name, True, "registered"
                )
            except Exception as exc:
                already = "already registered" in str(exc).lower()
                note = "already registered" if already else f"registration failed: {exc}"
                result = RegisteredPlugin(
                    lib.package, lib.ep_names, lib.library_path, reg_name, already, note
                )
        _REGISTERED[key] = (ort_module, result)
        out.append(result)
    return out


def _type_name(value: Any) -> str:
    name = getattr(value, "name", None) or str(value).rsplit(".", 1)[-1]
    return str(name).lower()


def plugin_devices(ort_module: Any) -> list[EpDevice]:
    """Every (EP, device) pair ``ort.get_ep_devices()`` offers; [] before ORT 1.23."""
    get = getattr(ort_module, "get_ep_devices", None)
    if get is None:
        return []
    try:
        raw = list(get())
    except Exception:
        return []
    out = []
    for d in raw:
        hw = d.device
        vid = getattr(hw, "vendor_id", 0)
        out.append(
            EpDevice(
                ep_name=str(d.ep_name),
                ep_vendor=str(d.ep_vendor),
                device_type=_type_name(hw.type),
                vendor=str(getattr(hw, "vendor", "")),
                vendor_id=f"0x{int(vid):04x}" if isinstance(vid, int) else str(vid),
                device_id=int(getattr(hw, "device_id", 0) or 0),
                ep_metadata=dict(getattr(d, "ep_metadata", {}) or {}),
                ep_options=dict(getattr(d, "ep_options", {}) or {}),
                device_metadata=dict(getattr(hw, "metadata", {}) or {}),
            )
        )
    return out


def select_ep_devices(ort_module: Any, ep_name: str, device_type: str | None = None) -> list[Any]:
    """The raw ``OrtEpDevice`` objects of one EP (optionally one device type), for
    ``SessionOptions.add_provider_for_devices``. Registers the plugin libraries first
    (once per process), since a plan read from ``aia detect``'s cache did not."""
    get = getattr(ort_module, "get_ep_devices", None)
    if get is None:
        return []
    register_plugins(ort_module)
    return [
        d
        for d in get()
        if d.ep_name == ep_name
        and (device_type is None or _type_name(d.device.type) == device_type)
    ]
