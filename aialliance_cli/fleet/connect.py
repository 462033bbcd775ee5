"""Reaching a Ray cluster: an existing one (--address) or a throw-away local one (--local N).

Every failure to connect is a BadInputError (exit 2) that says what to do:
Ray not installed, no address given, nothing answering at the address, or a
cluster whose Ray or Python version differs from this machine's.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aialliance_cli.errors import BadInputError

LOCAL_LABEL = "aia.node"  # the label (and name) that tells the nodes of --local N apart
LOCAL_RESOURCE = "aia_local_{i}"  # and a custom resource, for Ray versions without labels
INSTALL_HINT = 'pip install "aialliance-cli[fleet]"'
CONNECT_TIMEOUT_S = 5.0

# Ray's own settings (RayConfig, ray_config_def.h) for a throw-away local cluster whose
# nodes share the machine they benchmark: what only costs CPU there is off.
LOCAL_SYSTEM_CONFIG: dict[str, Any] = {
    # Ray starts task workers at nice 15 (so that its daemons win the CPU); aia's
    # measuring worker is their child and would measure at 15, below every daemon.
    "worker_niceness": 0,
    "enable_metrics_collection": False,  # metrics recorded and exported every 10 s
    "task_events_report_interval_ms": 0,  # task states sent to the GCS every second
    "enable_timeline": False,
    "event_stats": False,  # per-handler timing of every event loop
    "memory_monitor_refresh_ms": 0,  # Ray's OOM killer scans /proc four times a second
    "local_fs_monitor_interval_ms": 5000,  # the disk-usage check, ten times a second
    "debug_dump_period_milliseconds": 0,
    "prestart_worker_first_driver": False,  # idle workers the benchmark would not use
    "num_workers_soft_limit": 0,  # a finished node's idle worker ends after a second
}
# The head's processes that a fixed local cluster needs not: the autoscaler's monitor,
# the log monitor (aia does not stream the nodes' logs, log_to_driver=False), the
# dashboard (Ray still starts its API server with the minimal modules).
LOCAL_HEAD_ARGS: dict[str, Any] = {
    "include_dashboard": False,
    "no_monitor": True,
    "include_log_monitor": False,
}
LOCAL_ENV = {"RAY_USAGE_STATS_ENABLED": "0"}  # no usage-stats reporter (and no prompt)
DAEMON_NICENESS = 19  # the local cluster's daemons yield the CPU to the measuring worker


def require_ray() -> Any:
    """The ray module, or a BadInputError that says how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise BadInputError(
            f"the fleet commands need Ray, which is not installed here ({exc}). Install it "
            f"with: {INSTALL_HINT} (the same Ray and Python versions as the cluster's)"
        ) from None
    return ray


@dataclass(frozen=True)
class Connection:
    """A live connection: the address as given and whether it is a local throw-away cluster."""

    address: str
    local: bool = False
    nodes_started: int = 0
    startup_s: float | None = None


def resolve_address(address: str | None) -> str:
    """``--address``, else ``RAY_ADDRESS``, else a BadInputError saying what to give."""
    value = (address or os.environ.get("RAY_ADDRESS") or "").strip()
    if not value:
        raise BadInputError(
            "no Ray cluster given: pass --address (auto, HOST:PORT or ray://HOST:10001), set "
            "RAY_ADDRESS, or try the fleet commands on this machine alone with --local 3 "
            "(docs/fleet.md)"
        )
    return value


def _host_port(address: str) -> tuple[str, int] | None:
    rest = address[len("ray://") :] if address.startswith("ray://") else address
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def check_reachable(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """A TCP connection to HOST:PORT, so that a dead address fails in seconds, not minutes."""
    if address == "auto" or address.startswith("local"):
        return
    hp = _host_port(address)
    if hp is None:
        raise BadInputError(
            f"--address '{address}' is not an address Ray knows: give auto, HOST:PORT (the GCS "
            "port of the head, 6379 by default) or ray://HOST:10001 (Ray Client)"
        )
    try:
        with socket.create_connection(hp, timeout=timeout_s):
            pass
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise BadInputError(
            f"no Ray cluster answers at {address} ({why}). Start one with `ray start --head` "
            f"on the head machine and give its address, or try --local 3 (docs/fleet.md)"
        ) from None


def connect(address: str | None) -> Connection:
    """``ray.init`` to an existing cluster; clear errors for the usual ways it fails."""
    ray = require_ray()
    addr = resolve_address(address)
    check_reachable(addr)
    _init(ray, addr)
    return Connection(address=addr)


@contextlib.contextmanager
def _keep_signal_handlers() -> Iterator[None]:
    """ray.init sets its own SIGTERM handler (sys.exit); aia's (interrupts.py) must stay."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    sigs = [s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s]
    old = {s: signal.getsignal(s) for s in sigs}
    try:
        yield
    finally:
        for s, h in old.items():
            if h is not None:
                signal.signal(s, h)


def _init(ray: Any, address: str) -> None:
    try:
        with _quiet_ray_logs(), _keep_signal_handlers():
            ray.init(
                address=address,
                logging_level=logging.ERROR,
                log_to_driver=False,
                configure_logging=True,
            )
    except ConnectionError as exc:
        raise BadInputError(
            f"no Ray cluster answers at {address}: {_first_line(exc)}. Start one with "
            "`ray start --head`, give its address with --address, or try --local 3"
        ) from None
    except Exception as exc:
        text = str(exc)
        if "ersion mismatch" in text or "version" in text.lower() and "python" in text.lower():
            raise BadInputError(
                f"the Ray cluster at {address} runs another Ray or Python version than this "
                f"machine (Ray {ray.__version__}, Python {sys.version.split()[0]}): "
                f"{_first_line(exc)}. Install the cluster's versions here (pip install "
                "ray[default]==THEIRS in a Python of the same minor version) or drive the "
                "fleet from a machine of the cluster"
            ) from None
        raise BadInputError(
            f"could not connect to the Ray cluster at {address}: {_first_line(exc)}"
        ) from None


def _first_line(exc: BaseException) -> str:
    lines = [x.strip() for x in str(exc).splitlines() if x.strip()]
    return lines[0] if lines else type(exc).__name__


@contextlib.contextmanager
def _quiet_ray_logs() -> Iterator[None]:
    """Ray's own INFO lines ("Connecting to existing Ray cluster ...") stay out of stderr."""
    loggers = [logging.getLogger(n) for n in ("ray", "ray._private.worker")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def disconnect() -> None:
    try:
        import ray
    except ImportError:
        return
    with contextlib.suppress(Exception):
        if ray.is_initialized():
            ray.shutdown()


# ----------------------------------------------------------------------------- local cluster


def _become_subreaper() -> None:
    """Orphans of the local cluster (a killed node's benchmark worker) become our children,
    so that teardown finds and stops them: no process aia starts outlives it."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def _kill_descendants(grace_s: float = 3.0) -> None:
    import psutil

    try:
        kids = psutil.Process().children(recursive=True)
    except psutil.Error:
        return
    for p in kids:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _, alive = psutil.wait_procs(kids, timeout=grace_s)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(alive, timeout=grace_s)


_WATCHDOG = r"""
import os, select, signal, sys, time
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(s, signal.SIG_IGN)
os.nice(19)  # its scans yield to the benchmark
parent, me, known = int(sys.argv[1]), os.getpid(), {}


def stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[1]), rest[19], rest[0]  # ppid, start time (a reused pid is not ours), state


def scan():
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid, start, _ = stat(int(d))
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append((int(d), start))
    todo = [parent, *known]
    while todo:
        for pid, start in kids.get(todo.pop(), []):
            if pid != me and pid not in known:
                known[pid] = start
                todo.append(pid)


while True:
    ready = select.select([0], [], [], 0.5)[0]
    try:
        if ready and not os.read(0, 4096):
            break
    except OSError:
        break
    scan()
for _ in range(20):  # what aia started, and what that started meanwhile
    scan()
    alive = 0
    for pid, start in known.items():
        try:
            _, started, state = stat(pid)
            if started == start and state not in "ZX":
                os.kill(pid, signal.SIGKILL)
                alive += 1
        except (OSError, IndexError, ValueError):
            pass
    if not alive:  # nothing of it runs, so nothing can start anything more
        break
    time.sleep(0.1)
"""


@contextlib.contextmanager
def _watchdog() -> Iterator[None]:
    """Linux: a small watchdog notes every process aia starts (and they start) twice a
    second while the local cluster lives, and SIGKILLs them all when the pipe it holds
    from aia closes: at teardown, or when aia dies, even by SIGKILL (Ray's agents, which
    rename themselves, would outlive their raylet by a minute otherwise)."""
    if not sys.platform.startswith("linux"):
        yield
        return
    import subprocess

    try:
        dog = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG, str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError:
        dog = None
    try:
        yield
    finally:
        if dog is not None:
            with contextlib.suppress(Exception):
                assert dog.stdin is not None
                dog.stdin.close()  # the watchdog kills what is left of the cluster
                dog.wait(15)


@contextlib.contextmanager
def _environ(extra: dict[str, str]) -> Iterator[None]:
    """``extra`` in os.environ while the cluster's processes start (they inherit it)."""
    old = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def lower_priority(pids: list[int], niceness: int = DAEMON_NICENESS) -> int:
    """Every thread of these processes at ``niceness`` (Linux's nice is per thread: a
    process's other threads keep theirs); threads they start later inherit it. Returns
    how many threads changed. Raising the niceness of one's own processes needs no
    privilege; a process or thread gone meanwhile is skipped."""
    done = 0
    for pid in pids:
        try:
            tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
        except OSError:
            tids = [pid]
        for tid in tids:
            with contextlib.suppress(OSError):
                if os.getpriority(os.PRIO_PROCESS, tid) < niceness:
                    os.setpriority(os.PRIO_PROCESS, tid, niceness)
                    done += 1
    return done


def _daemons(cluster: Any) -> list[int]:
    """The local cluster's processes but its raylets (they start the workers, which
    inherit the raylet's niceness and could not go back to 0 without privileges):
    GCS, API server and its modules, each node's dashboard and runtime-env agents."""
    import psutil

    raylets = set()
    for node in [cluster.head_node, *cluster.worker_nodes]:
        for info in node.all_processes.get("raylet", []):
            raylets.add(info.process.pid)
    try:
        kids = psutil.Process().children(recursive=True)
    except psutil.Error:
        return []
    workers = set()
    for p in kids:  # a worker started already (none should be before the driver connects)
        with contextlib.suppress(psutil.Error):
            if p.ppid() in raylets and "default_worker.py" in " ".join(p.cmdline()):
                workers.add(p.pid)
    return [p.pid for p in kids if p.pid not in raylets and p.pid not in workers]


def local_node_args(i: int, num_cpus: int) -> dict[str, Any]:
    return {
        "num_cpus": num_cpus,
        "resources": {LOCAL_RESOURCE.format(i=i): 1.0},
        "labels": {LOCAL_LABEL: f"local-{i}"},
    }


def _session_dirs(cluster: Any) -> list[Path]:
    """The session folders (logs, sockets, runtime files) of a local cluster's nodes."""
    dirs = set()
    for node in cluster.list_all_nodes():
        with contextlib.suppress(Exception):
            dirs.add(Path(node.get_session_dir_path()))
    return sorted(dirs)


def _remove_session_dirs(dirs: list[Path]) -> None:
    """Remove a torn-down local cluster's session folders, and Ray's ``session_latest``
    link when it points at one of them: a ``--local`` cluster leaves nothing behind."""
    for d in dirs:
        latest = d.parent / "session_latest"
        with contextlib.suppress(OSError):
            if latest.is_symlink() and Path(os.readlink(latest)).name == d.name:
                latest.unlink()
        shutil.rmtree(d, ignore_errors=True)


@contextlib.contextmanager
def local_cluster(n: int, *, num_cpus: int | None = None) -> Iterator[Connection]:
    """Start a Ray cluster of ``n`` nodes on this machine, connect to it, tear it down after.

    Each node has its own node id, the label ``aia.node=local-I`` and the custom
    resource ``aia_local_I``. Every node may use the whole machine (``num_cpus``
    defaults to its CPU count) because benchmarks on nodes of one machine run one
    after the other. Teardown also runs on Ctrl-C, SIGTERM and SIGHUP (see interrupts.py).
    """
    if n < 1:
        raise BadInputError(
            f"--local {n}: a local cluster needs at least 1 node (--local 3 starts three)"
        )
    ray = require_ray()
    from ray.cluster_utils import Cluster

    cpus = num_cpus if num_cpus is not None else os.cpu_count() or 1
    _become_subreaper()
    started = time.monotonic()
    cluster = None
    session_dirs: list[Path] = []
    dog = _watchdog()
    dog.__enter__()
    # SIGTERM/SIGHUP arrive as interrupts.Terminated, a KeyboardInterrupt: finally runs.
    try:
        # Ray's Node sets a SIGTERM handler of its own (drain, sys.exit(1)): aia's stays.
        try:
            with _quiet_ray_logs(), _keep_signal_handlers(), _environ(LOCAL_ENV):
                cluster = Cluster(
                    initialize_head=True,
                    head_node_args={
                        **local_node_args(0, cpus),
                        **LOCAL_HEAD_ARGS,
                        "_system_config": LOCAL_SYSTEM_CONFIG,
                    },
                    shutdown_at_exit=True,
                )
                for i in range(1, n):  # started together, waited for once
                    cluster.add_node(wait=False, **local_node_args(i, cpus))
                cluster.wait_for_nodes()
            session_dirs = _session_dirs(cluster)
            lower_priority(_daemons(cluster))
        except OSError as exc:
            if "AF_UNIX path length" not in str(exc):
                raise
            import tempfile

            raise BadInputError(
                f"--local: the temp folder {tempfile.gettempdir()} is too deep for the Unix "
                "sockets of a Ray cluster (at most 107 bytes with Ray's session names): set "
                "TMPDIR to a shorter folder, e.g. TMPDIR=/tmp."
            ) from None
        _init(ray, cluster.address)
        yield Connection(
            address=cluster.address,
            local=True,
            nodes_started=n,
            startup_s=time.monotonic() - started,
        )
    finally:
        from aialliance_cli.interrupts import deferred

        with deferred():  # a second signal must not leave half a cluster running
            disconnect()
            if cluster is not None:
                with contextlib.suppress(Exception), _quiet_ray_logs():
                    cluster.shutdown()
            dog.__exit__(None, None, None)  # before: it is one of the descendants
            _kill_descendants()
            _remove_session_dirs(session_dirs)
