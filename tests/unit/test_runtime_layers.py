"""The runtime modules form layers: no module imports one above it, even lazily.

    job <- worker <- launch <- sweep, oprun (and tune, fleet)
    opmeasure <- worker, oprun

Read from the source (every ``import`` statement, inside functions too), so a
lazy import that closes a circle fails here rather than at some later run.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import aialliance_cli.runtime as runtime_pkg

RUNTIME = Path(runtime_pkg.__file__).parent
PREFIX = "aialliance_cli.runtime."


def _imports(module: str) -> set[str]:
    """Runtime modules that ``module`` imports anywhere in its source."""
    tree = ast.parse((RUNTIME / f"{module}.py").read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith(PREFIX):
                out.add(node.module[len(PREFIX) :].split(".")[0])
            elif node.module == "aialliance_cli.runtime":
                out.update(a.name for a in node.names)
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith(PREFIX):
                    out.add(a.name[len(PREFIX) :].split(".")[0])
    out.discard(module)
    return out


def _graph() -> dict[str, set[str]]:
    mods = sorted(p.stem for p in RUNTIME.glob("*.py") if p.stem != "__init__")
    return {m: _imports(m) & set(mods) for m in mods}


def test_runtime_imports_have_no_cycle() -> None:
    graph = _graph()
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for dep in sorted(graph[m]):
            if state.get(dep) == 1:
                cycle = path[path.index(dep) :] + [dep]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep)
        path.pop()
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m)


def test_worker_knows_nothing_of_its_callers() -> None:
    graph = _graph()
    callers = {"sweep", "oprun", "launch"}
    assert not graph["job"] & (callers | {"worker"})
    assert not graph["worker"] & callers
    assert not graph["opmeasure"] & (callers | {"worker"})
    assert not graph["launch"] & {"sweep", "oprun"}


def test_old_import_names_still_work() -> None:
    sweep = importlib.import_module("aialliance_cli.runtime.sweep")
    launch = importlib.import_module("aialliance_cli.runtime.launch")
    oprun = importlib.import_module("aialliance_cli.runtime.oprun")
    opmeasure = importlib.import_module("aialliance_cli.runtime.opmeasure")
    worker = importlib.import_module("aialliance_cli.runtime.worker")
    job = importlib.import_module("aialliance_cli.runtime.job")
    assert sweep.run_worker is launch.run_worker
    assert sweep.SweepInterrupted is launch.WorkerInterrupted
    assert sweep.run_in_process is launch.run_in_process
    assert oprun.ep_profile_from_dict is opmeasure.ep_profile_from_dict
    assert oprun.placement_from_log is opmeasure.placement_from_log
    assert worker.failed_result is job.failed_result
    assert worker.overrides_to_dict is job.overrides_to_dict
    assert callable(launch.run_job)


def test_the_core_imports_no_cli_library() -> None:
    """Everything but aialliance_cli/cli/ is plain functions: no typer, rich or cli import."""
    pkg = RUNTIME.parent
    bad = []
    for path in sorted(pkg.rglob("*.py")):
        rel = path.relative_to(pkg)
        if rel.parts[0] == "cli" or rel.name == "__main__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top in ("typer", "rich", "click") or name.startswith("aialliance_cli.cli"):
                    bad.append(f"{rel}:{node.lineno} imports {name}")
    assert not bad, bad
