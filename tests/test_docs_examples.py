"""Every `aia` example in README.md and docs/*.md is run, so docs and behaviour cannot drift.

The rules (docs/CONTRIBUTING.md says the same for writers):

- A line of a ```bash, ```sh or ```console fence that starts with ``aia `` or ``$ aia `` is
  an example. In a fence that has ``$ `` prompts, only the ``$ aia`` lines are commands (the
  rest is output). A line ending in ``\\`` continues on the next one. Other commands
  (``pip install``, ``export``) are not run.
- Each example runs through bash (``set -o pipefail``) with ``aia`` on PATH, in a temporary
  working directory shared by the examples of one doc (run in the doc's order, so a later
  line can use a file an earlier one wrote), with ``AIA_HOME`` and ``HOME`` in temporary
  folders, ``HF_HUB_OFFLINE=1``, and one model cache shared by the whole test session.
- It must exit 0, unless its comment says otherwise: ``# exits 2`` (or ``# exit 2: why``).
- A fence directly preceded by ``<!-- docs-test: help-only -->`` is not run: its examples
  are only checked against the CLI itself (the subcommand exists, every ``--option`` it
  uses is one of that subcommand's options). Use it for examples that need the network,
  hardware or an environment the test machine lacks, or that take more than a few seconds.
- ``$ aia`` in a fence of any other language (or none) is an error: label it.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
RUN_LANGS = {"bash", "sh", "console", "shell"}
HELP_ONLY = "<!-- docs-test: help-only -->"
EXIT_RE = re.compile(r"#.*?\bexits?\s+(\d+)\b")
TIMEOUT_S = 600  # the first example that exports MiniLM pays for the export


@dataclass
class Example:
    doc: Path
    line: int
    command: str  # the shell line, prompt removed, continuations joined
    expected_exit: int

    @property
    def where(self) -> str:
        return f"{self.doc.relative_to(REPO)}:{self.line}"


@dataclass
class Fence:
    doc: Path
    line: int
    lang: str
    help_only: bool
    body: list[tuple[int, str]] = field(default_factory=list)

    def examples(self) -> list[Example]:
        has_prompts = any(text.lstrip().startswith("$ ") for _, text in self.body)
        out: list[Example] = []
        pending: tuple[int, str] | None = None
        for lineno, raw in self.body:
            text = raw.strip()
            if pending is not None:
                start, acc = pending
                acc = acc + " " + text.rstrip("\\").strip()
                pending = (start, acc) if text.endswith("\\") else None
                if pending is None:
                    out.append(_example(self.doc, start, acc))
                continue
            if text.startswith("$ "):
                text = text[2:].lstrip()
            elif has_prompts:
                continue  # output
            if not text.startswith("aia ") and text != "aia":
                continue
            if text.endswith("\\"):
                pending = (lineno, text[:-1].strip())
            else:
                out.append(_example(self.doc, lineno, text))
        return out


def _example(doc: Path, line: int, command: str) -> Example:
    match = EXIT_RE.search(command)
    return Example(doc, line, command, int(match.group(1)) if match else 0)


def fences(doc: Path) -> list[Fence]:
    found: list[Fence] = []
    current: Fence | None = None
    previous = ""
    for lineno, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("```"):
            if current is None:
                lang = stripped[3:].strip().split()[0] if stripped[3:].strip() else ""
                current = Fence(doc, lineno, lang, previous == HELP_ONLY)
            else:
                found.append(current)
                current = None
            previous = stripped
            continue
        if current is not None:
            current.body.append((lineno, line))
        if stripped:
            previous = stripped
    return found


def _all_fences() -> list[Fence]:
    return [f for doc in DOCS for f in fences(doc)]


RUN_DOCS = sorted(
    {f.doc for f in _all_fences() if f.lang in RUN_LANGS and not f.help_only and f.examples()}
)
HELP_EXAMPLES = [
    e for f in _all_fences() if f.lang in RUN_LANGS and f.help_only for e in f.examples()
]


# ---------------------------------------------------------------- help-only checks


def _click_root():
    import typer

    from aialliance_cli.cli.main import app

    return typer.main.get_command(app)


def _option_names(command) -> set[str]:
    return set(_options(command))


def _options(command) -> dict[str, bool]:
    """Option name -> whether it takes a value (the next token is then no subcommand)."""
    out: dict[str, bool] = {}
    for param in command.params:
        takes = not getattr(param, "is_flag", False) and not getattr(param, "count", False)
        if getattr(param, "param_type_name", "") != "option":
            continue
        for name in [*getattr(param, "opts", []), *getattr(param, "secondary_opts", [])]:
            out[name] = takes
    return out


_COMPLETION = {"--install-completion", "--show-completion"}
_SHELLS = {"bash", "zsh", "fish", "powershell", "pwsh"}


def check_against_help(command_line: str) -> list[str]:
    """Problems with one example: an unknown subcommand or an option it does not have."""
    argv = shlex.split(command_line, comments=True)
    assert argv and argv[0] == "aia", command_line
    stops = {"|", "&&", ";", ">", ">>", "<"}
    if any(tok in stops for tok in argv):
        argv = argv[: next(i for i, t in enumerate(argv) if t in stops)]
    command = _click_root()
    path = ["aia"]
    options = _options(command)
    problems: list[str] = []
    tokens = iter(argv[1:])
    for tok in tokens:
        if tok == "--":
            break
        if tok.startswith("-") and not re.fullmatch(r"-\d[\d.,]*", tok):
            name, eq, _ = tok.partition("=")
            if name not in options:
                problems.append(f"`{' '.join(path)}` has no option {name}")
            elif options[name] and not eq:
                next(tokens, None)  # its value
            elif name in _COMPLETION:  # typer's completion flags read the shell after them
                tokens = iter([t for t in tokens if t not in _SHELLS])
            continue
        if isinstance(getattr(command, "commands", None), dict):  # a group (typer vendors click)
            sub = command.commands.get(tok)
            if sub is None:
                return [*problems, f"`{' '.join(path)}` has no subcommand {tok!r}"]
            command, path = sub, [*path, tok]
            options |= _options(command)
    return problems


@pytest.mark.parametrize("example", HELP_EXAMPLES, ids=lambda e: e.where)
def test_help_only_example_matches_the_cli(example: Example) -> None:
    assert check_against_help(example.command) == [], example.where


def test_help_check_catches_a_wrong_option_and_subcommand() -> None:
    assert check_against_help("aia bench --no-such-option 3") == [
        "`aia bench` has no option --no-such-option"
    ]
    assert check_against_help("aia cache frobnicate") == [
        "`aia cache` has no subcommand 'frobnicate'"
    ]
    assert check_against_help("aia cache list --json  # a comment --not-an-option") == []
    assert check_against_help("aia --install-completion bash") == []  # an option's value
    assert check_against_help("aia bench --ep cpu silero-vad --columns ep,p50") == []


def test_parser_reads_prompts_continuations_and_exit_codes(tmp_path: Path) -> None:
    doc = tmp_path / "d.md"
    doc.write_text(
        "\n".join(
            [
                "```console",
                "$ aia detect   # exits 3",
                "aia profile: this is output",
                "$ aia bench x \\",
                "    --threads 2",
                "```",
                HELP_ONLY,
                "```bash",
                "pip install aia",
                "aia run",
                "```",
                "```",
                "aia detect  # not a runnable fence",
                "```",
            ]
        )
    )
    found = fences(doc)
    langs = [(f.lang, f.help_only) for f in found]
    assert langs == [("console", False), ("bash", True), ("", False)]
    assert [(e.line, e.command, e.expected_exit) for e in found[0].examples()] == [
        (2, "aia detect   # exits 3", 3),
        (4, "aia bench x --threads 2", 0),
    ]
    assert [e.command for e in found[1].examples()] == ["aia run"]


def test_no_unlabelled_fence_holds_a_prompted_aia_command() -> None:
    wrong = [
        f"{f.doc.relative_to(REPO)}:{lineno}"
        for f in _all_fences()
        if f.lang not in RUN_LANGS
        for lineno, text in f.body
        if text.strip().startswith("$ aia")
    ]
    assert wrong == [], "label these fences ```console (and mark them help-only if long)"


# ---------------------------------------------------------------- runnable examples


def _env(home: Path, cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    for var in ("AIA_CONFIG_DIR", "AIA_DATA_DIR", "AIA_DEBUG", "COLUMNS"):
        env.pop(var, None)
    env.update(
        AIA_HOME=str(home / "aia"),
        AIA_CACHE_DIR=str(cache),
        HOME=str(home),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    )
    return env


@pytest.fixture(scope="session")
def docs_model_cache(shared_cache: Path) -> Path:
    """The session's shared model cache (the same folder the e2e MiniLM export uses)."""
    return shared_cache


@pytest.mark.slow
@pytest.mark.parametrize("doc", RUN_DOCS, ids=lambda d: str(d.relative_to(REPO)))
def test_doc_examples_run(doc: Path, tmp_path: Path, docs_model_cache: Path) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    env = _env(tmp_path / "home", docs_model_cache)
    examples = [
        e for f in fences(doc) if f.lang in RUN_LANGS and not f.help_only for e in f.examples()
    ]
    for example in examples:
        try:
            proc = subprocess.run(
                ["bash", "-c", "set -o pipefail; " + example.command],
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"{example.where}: `{example.command}` ran over {TIMEOUT_S} s")
        assert proc.returncode == example.expected_exit, (
            f"{example.where}: `{example.command}` exited {proc.returncode}, the docs say "
            f"{example.expected_exit}\n--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n"
            f"{proc.stderr[-3000:]}"
        )
        assert "Traceback (most recent call last)" not in proc.stderr, example.where
