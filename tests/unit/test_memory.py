"""Huge pages for the worker's heap (runtime/memory.py): when aia asks, and that it works."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from aialliance_cli.runtime import memory

GLIBC = (2, 36)


@pytest.fixture
def thp(tmp_path):
    """A fake /sys/kernel/mm/transparent_hugepage/enabled in a given mode."""

    def make(mode: str) -> Path:
        f = tmp_path / "enabled"
        f.write_text(" ".join(f"[{m}]" if m == mode else m for m in ("always", "madvise", "never")))
        return f

    return make


@pytest.mark.parametrize(
    ("mode", "libc", "asks"),
    [
        ("madvise", GLIBC, True),
        ("always", GLIBC, True),
        ("never", GLIBC, False),
        ("madvise", (2, 34), False),  # glibc before 2.35 has no hugetlb tunable
    ],
)
def test_worker_environ_asks_where_the_machine_allows(thp, mode, libc, asks):
    env = memory.worker_environ({}, thp_path=thp(mode), libc=libc)
    assert env == ({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"} if asks else {})


def test_worker_environ_without_thp_in_the_kernel(tmp_path):
    assert memory.worker_environ({}, thp_path=tmp_path / "absent", libc=GLIBC) == {}
    assert memory.thp_mode(tmp_path / "absent") is None


def test_worker_environ_keeps_the_users_tunables_and_choice(thp):
    path = thp("madvise")
    env = memory.worker_environ(
        {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}, thp_path=path, libc=GLIBC
    )
    assert env == {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"}
    # The user's own hugetlb setting stands, whatever it is.
    assert (
        memory.worker_environ(
            {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}, thp_path=path, libc=GLIBC
        )
        == {}
    )


@pytest.mark.parametrize("off", ["0", "off", "No", "false"])
def test_aia_huge_pages_0_turns_it_off(thp, off):
    assert memory.worker_environ({memory.SWITCH: off}, thp_path=thp("always"), libc=GLIBC) == {}


def test_a_bad_aia_huge_pages_value_is_bad_input(thp):
    from aialliance_cli.errors import BadInputError

    with pytest.raises(BadInputError, match="AIA_HUGE_PAGES='maybe' is not 1 or 0"):
        memory.worker_environ({memory.SWITCH: "maybe"}, thp_path=thp("always"), libc=GLIBC)


def test_a_bad_aia_huge_pages_value_stops_aia_bench_with_exit_2(monkeypatch):
    from typer.testing import CliRunner

    from aialliance_cli.cli.main import app

    monkeypatch.setenv(memory.SWITCH, "maybe")
    r = CliRunner().invoke(app, ["bench", "silero-vad", "-n", "1", "--json"])
    assert r.exit_code == 2, r.output
    assert "AIA_HUGE_PAGES='maybe' is not 1 or 0" in r.output
    assert "Traceback" not in r.output


@pytest.mark.parametrize(
    ("tunables", "mode", "want"),
    [
        ("glibc.malloc.hugetlb=1", "madvise", True),
        ("glibc.malloc.arena_max=2:glibc.malloc.hugetlb=2", "always", True),
        ("glibc.malloc.hugetlb=0", "always", False),
        ("", "always", False),
        ("glibc.malloc.hugetlb=1", "never", False),  # asked, but the kernel gives none
    ],
)
def test_asked_reads_this_process_environment(thp, tunables, mode, want):
    env = {"GLIBC_TUNABLES": tunables}
    assert memory.asked(env, thp_path=thp(mode), libc=GLIBC) is want


def test_huge_pages_bytes_reads_smaps_rollup(tmp_path):
    smaps = tmp_path / "smaps_rollup"
    smaps.write_text("Rss:  194404 kB\nAnonymous:  143524 kB\nAnonHugePages:  126976 kB\n")
    assert memory.huge_pages_bytes(smaps) == 126976 * 1024
    assert memory.huge_pages_bytes(tmp_path / "absent") is None


def test_glibc_version_of_this_process():
    v = memory.glibc_version()
    assert v is None or (v[0] == 2 and v[1] > 0)


# 64 MiB straight from glibc's malloc (an mmap'd chunk), touched. Not numpy: it asks for
# huge pages itself (madvise) on large arrays.
_ALLOC = (
    "import ctypes; from aialliance_cli.runtime import memory\n"
    "libc = ctypes.CDLL(None); libc.malloc.restype = ctypes.c_void_p\n"
    "p = libc.malloc(64 * 2**20); ctypes.memset(p, 1, 64 * 2**20)\n"
    "print(memory.asked(), memory.huge_pages_bytes() or 0)\n"
)


@pytest.mark.skipif(not memory.supported(), reason="no transparent huge pages for malloc here")
def test_a_worker_environment_really_puts_malloc_memory_in_huge_pages():
    import os

    def run(env):
        out = subprocess.run(
            [sys.executable, "-c", _ALLOC], env=env, capture_output=True, text=True, check=True
        ).stdout.split()
        return out[0] == "True", int(out[1])

    plain = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    plain[memory.SWITCH] = "1"
    asked, got = run({**plain, **memory.worker_environ(plain)})
    assert asked and got >= 32 * 2**20
    asked, got = run(plain)
    assert not asked
    if memory.thp_mode() == "madvise":  # without asking, the kernel gives none
        assert got < 32 * 2**20
