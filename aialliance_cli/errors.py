"""One error hierarchy for the core, mapped to exit codes in one place.

Every error carries a one-paragraph, actionable message. The CLI prints
``Error: <message>`` to stderr and exits with ``error.exit_code``;
``AIA_DEBUG=1`` shows the traceback instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes are part of aia's interface (docs/commands.md#exit-codes)."""

    OK = 0
    RUNTIME_FAILURE = 1  # valid input broke while running
    BAD_INPUT = 2  # bad usage, bad profile/model/value
    UNAVAILABLE = 3  # asked-for hardware/EP missing (--strict) or a coverage gate failed
    INTERRUPTED = 130  # Ctrl-C (SIGINT); partial results kept
    TERMINATED = 143  # SIGTERM; partial results kept (aialliance_cli/interrupts.py)
    HANGUP = 129  # SIGHUP; partial results kept


class AiaError(Exception):
    """Base of every error aia reports to a user."""

    exit_code: ExitCode = ExitCode.RUNTIME_FAILURE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} {self.hint}"


class BadInputError(AiaError):
    """The user gave something aia cannot use (file, key, value, flag)."""

    exit_code = ExitCode.BAD_INPUT


class ProfileError(BadInputError):
    """A profile is missing, unparsable or invalid."""


class ModelError(BadInputError):
    """A model is missing, unreadable, not ONNX, or its inputs do not fit."""


def they(names: list[str], singular: str, plural: str) -> str:
    """``--a does not`` / ``--a and --b do not``: messages name options with the right verb."""
    if len(names) == 1:
        return f"{names[0]} {singular}"
    return f"{', '.join(names[:-1])} and {names[-1]} {plural}"


class UnknownProviderError(BadInputError):
    """An execution-provider name aia does not know."""


class UnavailableError(AiaError):
    """The asked-for hardware or EP is not there, or a gate failed."""

    exit_code = ExitCode.UNAVAILABLE


class RuntimeFailure(AiaError):
    """Valid input that broke at run time (session build, inference)."""

    exit_code = ExitCode.RUNTIME_FAILURE


class Interrupted(AiaError):
    """The user pressed Ctrl-C; whatever was measured is kept."""

    exit_code = ExitCode.INTERRUPTED


def did_you_mean(word: str, choices: Iterable[object]) -> str:
    """Return ``"; did you mean 'x'?"`` for the closest choice, or ``""``."""
    import difflib

    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""
