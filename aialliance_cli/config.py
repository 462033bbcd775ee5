"""The user's config file: defaults for command-line options.

``<config dir>/config.toml`` (``AIA_CONFIG_FILE`` names another file). One table per
command, keyed by option names as typed on the command line, without the dashes::

    [bench]
    warmup = 5
    threads = "1,2"

    [cache.clear]
    yes = true

Precedence, highest first: the command line, ``AIA_<COMMAND>_<OPTION>`` environment
variables, this file, the profile, aia's built-in defaults.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from aialliance_cli.errors import BadInputError


def config_file() -> Path:
    """Where the config file is (it need not exist)."""
    named = os.environ.get("AIA_CONFIG_FILE")
    if named:
        return Path(named).expanduser()
    from aialliance_cli.paths import user_dirs

    return user_dirs().config / "config.toml"


def load_config(path: Path | None = None) -> tuple[Path, dict[str, Any]]:
    """The parsed file (an empty mapping when there is none); bad TOML is bad input."""
    path = path or config_file()
    if not path.exists():
        if os.environ.get("AIA_CONFIG_FILE"):
            raise BadInputError(f"AIA_CONFIG_FILE names {path}, which does not exist")
        return path, {}
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError:
            raise BadInputError(
                f"reading the config file {path} needs Python 3.11 or the tomli package"
            ) from None
    from aialliance_cli.safeparse import read_small_text

    text = read_small_text(path, "the config file")  # not a FIFO, /dev/zero or a huge file
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BadInputError(f"the config file {path} is not valid TOML: {exc}") from None
    return path, data
