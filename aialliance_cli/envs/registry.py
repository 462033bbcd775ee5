"""The registry of Python environments with other ONNX Runtime builds.

A JSON file in the user config dir (``envs.json``, written atomically under a
lock) maps a name to an :class:`EnvRecord`: the environment's python, its ORT
distribution and version, and the EPs it offers, all probed by running that
python. aia's own code reaches such an environment through ``PYTHONPATH`` (the
folder that holds the ``aialliance_cli`` package), so aia need not be installed
there; only what the worker imports must be (:data:`WORKER_PACKAGES`).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aialliance_cli.children import run_group, spawn_group, stop_group
from aialliance_cli.errors import BadInputError, RuntimeFailure

REGISTRY_SCHEMA = "aia.envs/1"
# What `aia env create` installs beside the ONNX Runtime build: the worker's imports.
WORKER_PACKAGES: tuple[str, ...] = (
    "numpy",
    "psutil",
    "pyyaml",
    "pydantic",
    "platformdirs",
    "tokenizers",
    "onnx",
)
# Installed when possible; a scenario run (--scenario) needs it, a plain bench does not.
OPTIONAL_PACKAGES: tuple[str, ...] = ("mlcommons-loadgen",)
# Modules without which the worker cannot start (import name -> package).
WORKER_MODULES = {
    "numpy": "numpy",
    "psutil": "psutil",
    "yaml": "pyyaml",
    "pydantic": "pydantic",
    "platformdirs": "platformdirs",
}
# Matched with fullmatch: "$" would also match before a trailing newline ("name\n").
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_PACKAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}(\[[A-Za-z0-9,._-]{1,128}\])?")
_VERSION = re.compile(r"[A-Za-z0-9.+!*-]{1,64}")
PROBE_TIMEOUT_S = 180.0

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def aia_root() -> Path:
    """The folder that holds the ``aialliance_cli`` package (what PYTHONPATH must name)."""
    return Path(__file__).resolve().parent.parent.parent


def aia_path_entry(root: Path | None = None) -> Path:
    """A folder to put on another environment's PYTHONPATH so that it imports aia, and only aia.

    In a checkout that is the folder above the package. When aia is installed,
    that folder is a site-packages full of this environment's packages (its
    onnxruntime among them), which would shadow the other environment's build:
    then a folder in the user cache dir holding only a link to the package.
    """
    root = aia_root() if root is None else Path(root)
    crowded = root.name.endswith("-packages") or any(
        (root / name).exists() for name in ("onnxruntime", "numpy", "pydantic")
    )
    if not crowded:
        return root
    from aialliance_cli.paths import user_dirs

    shim = user_dirs().cache / "worker-path"
    link = shim / "aialliance_cli"
    target = root / "aialliance_cli"
    shim.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() and Path(os.readlink(link)) == target:
        return shim
    if link.is_symlink() or link.is_file():
        link.unlink()
    elif link.is_dir():
        shutil.rmtree(link)
    try:
        link.symlink_to(target, target_is_directory=True)
    except OSError:  # no symlinks (Windows without the privilege): a copy
        shutil.copytree(target, link, ignore=shutil.ignore_patterns("__pycache__"))
    return shim


def worker_environ(extra: dict[str, str] | None = None) -> dict[str, str]:
    """os.environ with aia (alone) first on PYTHONPATH, for a python of another environment."""
    env = dict(os.environ)
    parts = [str(aia_path_entry())]
    if env.get("PYTHONPATH"):
        parts.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(parts)
    env.pop("PYTHONHOME", None)  # would point the other python at this one's stdlib
    env.update(extra or {})
    return env


@dataclass(frozen=True)
class EnvRecord:
    """One registered environment, as probed when it was added or created."""

    name: str
    python: str
    onnxruntime: str  # version of the onnxruntime module there
    distribution: str  # the full build that provides it (onnxruntime-openvino, ...)
    providers: tuple[str, ...]  # usable EPs there, best first
    python_version: str = ""
    distributions: tuple[str, ...] = ()  # every ORT build/plugin there, "name==version"
    managed: bool = False  # made by `aia env create`: removing it deletes its folder
    path: str | None = None  # the environment's folder when managed
    added: str = ""
    missing: tuple[str, ...] = ()  # worker modules it lacks (the worker cannot start there)
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("providers", "distributions", "missing", "notes"):
            d[k] = list(d[k])
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EnvRecord:
        known = {f for f in cls.__dataclass_fields__}
        d = {k: v for k, v in data.items() if k in known}
        for k in ("providers", "distributions", "missing", "notes"):
            d[k] = tuple(d.get(k) or ())
        return cls(**d)

    def result_record(self) -> dict[str, Any]:
        """What a benchmark result says about the environment it ran in."""
        return {
            "name": self.name,
            "python": self.python,
            "onnxruntime": self.onnxruntime,
            "distribution": self.distribution,
        }

    def problem(self) -> str | None:
        """Why a worker cannot run here now (python gone, modules missing), or None."""
        if not os.path.isfile(self.python) or not os.access(self.python, os.X_OK):
            return (
                f"the python of environment '{self.name}' ({self.python}) is gone or not "
                f"executable; re-create it (aia env remove {self.name} && aia env create ...) "
                "or register another (aia env add NAME --python PATH)"
            )
        if self.missing:
            pkgs = " ".join(WORKER_MODULES.get(m, m) for m in self.missing)
            return (
                f"environment '{self.name}' lacks what aia's worker imports "
                f"({', '.join(self.missing)}): {self.python} -m pip install {pkgs}"
            )
        return None


# ----------------------------------------------------------------------------- file


def registry_path() -> Path:
    from aialliance_cli.paths import user_dirs

    return user_dirs().config / "envs.json"


def envs_dir() -> Path:
    from aialliance_cli.paths import user_dirs

    return user_dirs().data / "envs"


def _read(path: Path) -> dict[str, EnvRecord]:
    if not path.exists():
        return {}
    from aialliance_cli.safeparse import loads_json

    try:
        data = loads_json(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError, BadInputError) as exc:
        raise BadInputError(
            f"the environment registry {path} cannot be read ({exc}); fix or delete it"
        ) from exc
    if not isinstance(data, dict) or not isinstance(data.get("envs"), dict):
        raise BadInputError(
            f"the environment registry {path} is not an aia registry (no 'envs' mapping); "
            "fix or delete it"
        )
    out: dict[str, EnvRecord] = {}
    for name, rec in data["envs"].items():
        try:
            out[name] = EnvRecord.from_dict({**rec, "name": name})
        except TypeError as exc:
            raise BadInputError(f"the environment registry {path}: entry '{name}' {exc}") from exc
    return out


def _write(path: Path, envs: dict[str, EnvRecord]) -> None:
    from aialliance_cli.results.store import write_json_atomic

    write_json_atomic(
        path,
        {"schema": REGISTRY_SCHEMA, "envs": {n: envs[n].to_dict() for n in sorted(envs)}},
    )


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise read-modify-write of the registry between aia processes (POSIX)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: last writer wins, still atomic
        yield
        return
    with open(path.with_suffix(".lock"), "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def list_envs() -> list[EnvRecord]:
    """Every registered environment, sorted by name."""
    envs = _read(registry_path())
    return [envs[n] for n in sorted(envs)]


def get_env(name: str) -> EnvRecord:
    envs = _read(registry_path())
    if name not in envs:
        known = ", ".join(sorted(envs)) or "none registered"
        raise BadInputError(f"no environment named '{name}' (known: {known}; see aia env list)")
    return envs[name]


def env_for_ep(ep: str, envs: list[EnvRecord] | None = None) -> EnvRecord | None:
    """The first registered environment that offers ``ep`` (a working one before a broken one)."""
    candidates = [e for e in (list_envs() if envs is None else envs) if ep in e.providers]
    working = [e for e in candidates if e.problem() is None]
    return (working or candidates or [None])[0]


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise BadInputError(
            f"environment name {name!r} is not allowed: use letters, digits, '.', '_' or '-' "
            "(64 at most), starting with a letter or digit"
        )


# ----------------------------------------------------------------------------- probe

_PROBE = r"""
import importlib.util, json, re, sys
out = {"python": sys.executable, "python_version": "%d.%d.%d" % sys.version_info[:3]}
out["missing"] = [m for m in MODULES if importlib.util.find_spec(m) is None]
try:
    import onnxruntime as ort
except BaseException as exc:
    out["error"] = "%s: %s" % (type(exc).__name__, exc)
    print("AIA-PROBE " + json.dumps(out)); sys.exit(0)
out["onnxruntime"] = getattr(ort, "__version__", "unknown")
out["available"] = list(ort.get_available_providers())
try:
    from importlib import metadata
    dists = {}
    for d in metadata.distributions():
        name = re.sub(r"[-_.]+", "-", (d.metadata["Name"] or "")).lower()
        if name.startswith("onnxruntime") and not name.startswith(
                ("onnxruntime-extensions", "onnxruntime-genai", "onnxruntime-tools")):
            dists.setdefault(name, d.version)
    out["distributions"] = sorted(dists.items())
except BaseException as exc:
    out["distributions"] = []
try:
    from aialliance_cli.providers.planner import plan_for_machine
    out["usable"] = list(plan_for_machine().eps)
except BaseException as exc:
    out["plan_error"] = "%s: %s" % (type(exc).__name__, exc)
print("AIA-PROBE " + json.dumps(out))
"""


def _resolve_python(python: str | Path) -> Path:
    text = str(python).strip()
    if not text:
        raise BadInputError("--python needs the path of a Python interpreter")
    p = Path(text).expanduser()
    if not p.exists() and os.sep not in text and "/" not in text:
        found = shutil.which(text)
        if found:
            p = Path(found)
    if not p.exists():
        raise BadInputError(f"--python {text}: no such file")
    if p.is_dir():
        for sub in ("bin/python", "bin/python3", "Scripts/python.exe"):
            if (p / sub).is_file():
                p = p / sub
                break
        else:
            raise BadInputError(
                f"--python {text} is a folder with no bin/python in it; give the interpreter"
            )
    # Not resolve(): a venv's python is a symlink to the base one, and the link is the venv.
    return p.absolute()


def probe_python(python: str | Path) -> dict[str, Any]:
    """Run ``python`` and report its ONNX Runtime; BadInputError saying why it cannot serve.

    Returns the probe's facts: python, python_version, onnxruntime, distributions
    (name, version pairs), available (get_available_providers), usable (the plan
    there, when aia could plan), missing (worker modules it lacks).
    """
    exe = _resolve_python(python)
    script = _PROBE.replace("MODULES", repr(tuple(WORKER_MODULES)))
    try:
        proc = subprocess.run(
            [str(exe), "-c", script],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
            env=worker_environ(),
            stdin=subprocess.DEVNULL,
            cwd=str(aia_root()),
        )
    except subprocess.TimeoutExpired as exc:
        raise BadInputError(
            f"{exe} did not answer within {PROBE_TIMEOUT_S:.0f} s when asked for its onnxruntime"
        ) from exc
    except OSError as exc:
        raise BadInputError(f"{exe} cannot be run: {exc.strerror or exc}") from exc
    line = next((x for x in proc.stdout.splitlines() if x.startswith("AIA-PROBE ")), None)
    if line is None:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise BadInputError(
            f"{exe} does not run Python code as aia expects (exit {proc.returncode}): "
            + (" | ".join(tail) or "no output")
        )
    facts = json.loads(line[len("AIA-PROBE ") :])
    if "error" in facts:
        raise BadInputError(
            f"{exe} has no usable onnxruntime ({facts['error']}). Install a build there "
            f"({exe} -m pip install onnxruntime-openvino, for example) or let aia make an "
            "environment: aia env create NAME --package onnxruntime-openvino"
        )
    return facts


def _record_from_probe(
    name: str, facts: dict[str, Any], *, managed: bool, path: str | None
) -> EnvRecord:
    from aialliance_cli.hardware.software import is_plugin_distribution
    from aialliance_cli.providers.catalogue import find_spec

    dists = [(n, v) for n, v in facts.get("distributions") or []]
    full = [n for n, v in dists if not is_plugin_distribution(n, v)]
    eps = list(dict.fromkeys([*(facts.get("usable") or []), *(facts.get("available") or [])]))
    # Remote EPs (Azure) are not local hardware: never a sweep column.
    eps = [e for e in eps if not (find_spec(e) is not None and find_spec(e).remote)]
    notes = []
    if facts.get("plan_error"):
        notes.append(f"aia could not plan there ({facts['plan_error']}); EPs from the build")
    return EnvRecord(
        name=name,
        python=facts["python"] if not path else str(_venv_python(Path(path))),
        onnxruntime=str(facts.get("onnxruntime") or "unknown"),
        distribution=full[0] if full else (dists[0][0] if dists else "onnxruntime"),
        providers=tuple(eps),
        python_version=str(facts.get("python_version") or ""),
        distributions=tuple(f"{n}=={v}" for n, v in dists),
        managed=managed,
        path=path,
        added=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        missing=tuple(facts.get("missing") or ()),
        notes=tuple(notes),
    )


# ----------------------------------------------------------------------------- commands


def add_env(name: str, python: str | Path, *, replace: bool = False) -> EnvRecord:
    """Probe ``python`` and register it as ``name`` (BadInputError if it cannot serve)."""
    _check_name(name)
    path = registry_path()
    if not replace and name in _read(path):
        raise BadInputError(
            f"an environment named '{name}' is already registered; remove it first "
            f"(aia env remove {name}) or pass --replace"
        )
    facts = probe_python(python)
    # The path as given (a venv's bin/python link), not sys.executable's view of it.
    facts["python"] = str(_resolve_python(python))
    rec = _record_from_probe(name, facts, managed=False, path=None)
    with _locked(path):
        envs = _read(path)
        if not replace and name in envs:
            raise BadInputError(f"an environment named '{name}' is already registered")
        envs[name] = rec
        _write(path, envs)
    return rec


def _venv_python(folder: Path) -> Path:
    return folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _pip(python: Path, args: list[str], progress: Progress) -> tuple[int, str]:
    """Run pip, passing each line to ``progress``; returns (exit code, last lines)."""
    cmd = [str(python), "-m", "pip", "install", "--disable-pip-version-check", *args]
    progress("$ " + " ".join(cmd))
    proc = spawn_group(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    tail: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            if line and "is ignored: it is neither a file nor a directory" not in line:
                progress(line)
                tail = (tail + [line])[-15:]
        return proc.wait(), "\n".join(tail)
    except BaseException:
        stop_group(proc)  # pip and what it started: nothing outlives aia
        raise


def create_env(
    name: str,
    package: str,
    version: str | None = None,
    *,
    progress: Progress = _quiet,
    python: str | Path | None = None,
) -> EnvRecord:
    """Make a venv under the user data dir, install ``package`` and the worker's needs, register.

    ``python`` is the interpreter that makes the venv (default: the one running aia).
    Bad package names or versions that pip cannot find are BadInputError; the
    half-made folder is removed on any failure or Ctrl-C.
    """
    _check_name(name)
    if not _PACKAGE.fullmatch(package or ""):
        raise BadInputError(f"--package {package!r} is not a package name")
    if version is not None and not _VERSION.fullmatch(version):
        raise BadInputError(f"--version {version!r} is not a version")
    path = registry_path()
    if name in _read(path):
        raise BadInputError(
            f"an environment named '{name}' is already registered; remove it first "
            f"(aia env remove {name})"
        )
    folder = envs_dir() / name
    _claim_folder(folder)
    spec = f"{package}=={version}" if version else package
    wanted = [spec]
    if package.lower().startswith("onnxruntime-ep-"):
        wanted.append("onnxruntime>=1.23")  # a plugin EP installs beside the plain build
    try:
        folder.mkdir(parents=True)
        # Until registered, the folder says who is making it: a create that was killed
        # (SIGKILL, power loss) leaves one that the next create recognises and replaces.
        (folder / _CREATING).write_text(str(os.getpid()), encoding="ascii")
        progress(f"creating the virtual environment {folder}")
        base = str(python) if python else sys.executable
        code, out, err = run_group([base, "-m", "venv", str(folder)])
        if code != 0:
            raise RuntimeFailure(f"python -m venv {folder} failed: {(err or out).strip()[-500:]}")
        exe = _venv_python(folder)
        code, tail = _pip(exe, [*wanted, *WORKER_PACKAGES], progress)
        if code != 0:
            if "No matching distribution" in tail or "Could not find a version" in tail:
                raise BadInputError(
                    f"pip found no {spec} for this Python and platform "
                    f"({sys.version_info.major}.{sys.version_info.minor}, {sys.platform}): "
                    + tail.splitlines()[-1]
                )
            raise RuntimeFailure(f"pip install {spec} failed (exit {code}): {tail[-800:]}")
        notes = []
        for extra in OPTIONAL_PACKAGES:
            code, tail = _pip(exe, [extra], progress)
            if code != 0:
                notes.append(f"{extra} could not be installed; --scenario will not run here")
        facts = probe_python(exe)
        rec = _record_from_probe(name, facts, managed=True, path=str(folder))
        rec = EnvRecord(**{**rec.__dict__, "notes": (*rec.notes, *notes)})
        with _locked(path):
            envs = _read(path)
            envs[name] = rec
            _write(path, envs)
        (folder / _CREATING).unlink(missing_ok=True)
        return rec
    except BaseException:
        from aialliance_cli import interrupts

        with interrupts.deferred():  # a second signal must not leave half a folder
            shutil.rmtree(folder, ignore_errors=True)
        raise


_CREATING = ".aia-creating"


def _claim_folder(folder: Path) -> None:
    """Refuse a folder that exists, unless it is the leftover of a killed ``env create``."""
    if not folder.exists() and not folder.is_symlink():
        return
    marker = folder / _CREATING
    try:
        pid = int(marker.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        pid = None
    if marker.is_file() and folder.is_dir() and not folder.is_symlink():
        from aialliance_cli.models.cache import pid_alive

        if pid is None or not pid_alive(pid) or pid == os.getpid():
            shutil.rmtree(folder, ignore_errors=True)  # half-made by a create that died
            if not folder.exists():
                return
        else:
            raise BadInputError(
                f"{folder} is being created by another aia (pid {pid}); wait for it to finish"
            )
    raise BadInputError(
        f"{folder} already exists but is not registered; delete it or choose another name"
    )


@dataclass(frozen=True)
class EnvRemoval:
    """What ``unregister_env`` did: the record dropped, and its folder's fate."""

    record: EnvRecord
    deleted: str | None = None  # the folder removed, if one was
    kept: str | None = None  # why a folder aia made was left in place


def remove_env(name: str) -> EnvRecord:
    """Unregister ``name``; delete its folder too when aia created it."""
    return unregister_env(name).record


def unregister_env(name: str) -> EnvRemoval:
    """Unregister ``name`` and delete the folder ``aia env create`` made; say what happened."""
    _check_name(name)
    path = registry_path()
    with _locked(path):
        envs = _read(path)
        if name not in envs:
            known = ", ".join(sorted(envs)) or "none registered"
            raise BadInputError(f"no environment named '{name}' (known: {known})")
        rec = envs.pop(name)
        _write(path, envs)
    if not (rec.managed and rec.path):
        return EnvRemoval(rec)
    folder = Path(rec.path)
    # Only ever delete inside aia's own envs folder.
    if folder.resolve().parent != envs_dir().resolve():
        return EnvRemoval(rec, kept=f"{folder} is not in aia's folder {envs_dir()}")
    if not folder.exists():
        return EnvRemoval(rec, kept=f"{folder} was already gone")
    problems: list[str] = []
    shutil.rmtree(folder, onerror=lambda fn, p, exc: problems.append(f"{p}: {exc[1]}"))
    if folder.exists():
        return EnvRemoval(
            rec, kept=f"{folder} could not be deleted ({problems[0] if problems else 'unknown'})"
        )
    return EnvRemoval(rec, deleted=str(folder))
