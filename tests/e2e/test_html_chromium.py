"""The `aia compare --html` report in a real headless Chromium: it renders, and it is offline.

Chromium's NetLog records every request the network stack sees. Chromium
itself talks to Google in the background even with the flags below, so the
check keeps the requests that the page started (initiator "null", the opaque
origin of a file:// page); a control page with an <img> proves it sees them.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from aialliance_cli.results.compare import compare, load_many
from aialliance_cli.results.html import render_html, write_html

CHROMIUM = Path("/usr/bin/chromium")
RESULTS = Path(__file__).resolve().parent.parent / "fixtures" / "results"
FILES = [
    RESULTS / n
    for n in ("silero-vad.jsonl", "silero-vad-rerun.jsonl", "minilm.jsonl", "ppocr-det.jsonl")
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="/usr/bin/chromium is absent: install Debian's chromium package "
        "(apt-get install -y chromium) to test the HTML report in a browser",
    ),
]


def chromium(tmp_path: Path, page: Path, *args: str) -> tuple[str, list[dict[str, Any]]]:
    """Load ``page`` headless; returns (stdout, the requests the page itself started)."""
    profile = tmp_path / f"profile-{page.stem}-{len(args)}"
    netlog = tmp_path / f"netlog-{page.stem}-{len(args)}.json"
    cmd = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        f"--log-net-log={netlog}",
        *args,
        page.as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout, page_requests(netlog)


def page_requests(netlog: Path) -> list[dict[str, Any]]:
    data = json.loads(netlog.read_text(encoding="utf-8"))
    types = {v: k for k, v in data["constants"]["logEventTypes"].items()}
    out = []
    for event in data["events"]:
        params = event.get("params") or {}
        if types.get(event["type"]) != "URL_REQUEST_START_JOB" or "url" not in params:
            continue
        if params.get("initiator") == "null" or "file://" in params.get(
            "network_isolation_key", ""
        ):
            out.append(params)
    return out


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    records, skipped = load_many(FILES)
    assert skipped == []
    table = compare(records)
    path = tmp_path_factory.mktemp("html") / "report.html"
    write_html(path, render_html(table, sources=[str(f) for f in FILES]))
    return path, table


def test_report_renders_table_rows_and_charts(tmp_path: Path, report: tuple[Path, Any]) -> None:
    path, table = report
    dom, requests = chromium(tmp_path, path, "--dump-dom")
    assert requests == [], f"the report fetched: {[r['url'] for r in requests]}"
    assert dom.count("<tr data-verdict=") == len(table.rows) == 7
    for group in ("silero-vad", "all-minilm-l6-v2", "ppocr-det"):
        assert f"<h2>{group}</h2>" in dom
    # One throughput and one latency chart per profile, with a bar per configuration.
    assert dom.count('<figure class="throughput">') == 3
    assert dom.count('<figure class="latency">') == 3
    assert dom.count('<g class="bar"') == 7 and dom.count('<g class="latency"') == 7
    assert 'data-verdict="slower"' in dom and 'data-verdict="faster"' in dom
    assert '<details class="machine">' in dom and "avx512f" in dom
    assert "ONNX Runtime" in dom and "1.32.0" in dom


def test_report_screenshot(tmp_path: Path, report: tuple[Path, Any]) -> None:
    path, _ = report
    shot = tmp_path / "report.png"
    _, requests = chromium(tmp_path, path, f"--screenshot={shot}", "--window-size=1200,1600")
    assert requests == []
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000  # a blank page compresses to a few kB


def test_the_request_check_sees_a_fetching_page(tmp_path: Path) -> None:
    control = tmp_path / "control.html"
    control.write_text(
        '<!DOCTYPE html><html><body><img src="http://127.0.0.1:9/x.png"></body></html>',
        encoding="utf-8",
    )
    _, requests = chromium(tmp_path, control, "--dump-dom")
    assert [r["url"] for r in requests] == ["http://127.0.0.1:9/x.png"]
