"""A comparison as one self-contained, offline HTML file.

Inline CSS and SVG charts drawn here; no script, no font, no image, no link to
anything outside the file, so it opens the same on an air-gapped machine and
can be attached to a ticket. All text from result files is escaped.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from aialliance_cli.results.compare import CompareTable, Row, machine_names, short_labels

VERDICT_COLOURS = {
    "faster": "#1a7f37",
    "slower": "#cf222e",
    "within noise": "#6e7781",
    "baseline": "#0969da",
    "no baseline": "#9a6700",
    "no data": "#9a6700",
    "failed": "#cf222e",
    "outputs differ": "#cf222e",
}
BASELINE_BAR = "#0969da"
OTHER_BAR = "#2da44e"
P50_COLOUR = "#0969da"
P99_COLOUR = "#bf8700"

_CSS = """
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       margin: 2rem auto; max-width: 1180px; padding: 0 1rem; color: #1f2328; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
h2 { font-size: 1.25rem; border-bottom: 1px solid #d0d7de; padding-bottom: .3rem;
     margin-top: 2.2rem; }
h3 { font-size: 1rem; margin: 1.2rem 0 .3rem; }
.meta { color: #57606a; margin: 0 0 1rem; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; }
th, td { border: 1px solid #d0d7de; padding: .3rem .55rem; text-align: left;
         vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.verdict { font-weight: 600; white-space: nowrap; }
.charts { display: grid; grid-template-columns: 1fr; gap: .5rem; }
figure { margin: 0; }
figcaption { color: #57606a; font-size: .9rem; }
svg text { font: 12px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
           fill: #1f2328; }
details { border: 1px solid #d0d7de; border-radius: 6px; padding: .4rem .8rem;
          margin: .5rem 0; }
summary { cursor: pointer; font-weight: 600; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; }
dt { color: #57606a; }
dd { margin: 0; }
ul.notes { color: #9a6700; }
"""

_LABEL_W = 380  # px kept for the labels left of the bars
_BAR_H = 18
_CHART_W = 960


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _fmt(x: float | None, digits: int = 2) -> str:
    if x is None:
        return "n/a"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.{digits}f}" if abs(x) >= 0.01 or x == 0 else f"{x:.4f}"


def _ratio(r: Row) -> str:
    if r.ratio is None:
        return "—" if r.verdict == "baseline" else "n/a"
    from aialliance_cli.results.compare import arrow

    return f"{r.ratio:.2f}× {arrow(r.ratio)}"


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _svg_open(height: int, title: str) -> str:
    return (
        f'<svg role="img" width="100%" '
        f'viewBox="0 0 {_CHART_W} {height}" preserveAspectRatio="xMinYMin meet">'
        f"<title>{_e(title)}</title>"
    )


def throughput_chart(group: str, rows: Sequence[Row]) -> str:
    """Horizontal bars of inferences/s, one per configuration; the baseline in blue.

    Bars show samples/s at the median latency, the rate the ratio and verdict use, so the
    chart, the ratio and the table agree.
    """
    labels = dict(zip((r.index for r in rows), short_labels(rows), strict=True))
    data = [(r, r.rate_p50) for r in rows if r.rate_p50 is not None]
    if not data:
        return ""
    top = 24
    height = top + len(data) * (_BAR_H + 8) + 8
    vmax = max(v for _, v in data) or 1.0
    span = _CHART_W - _LABEL_W - 110
    parts = [
        _svg_open(height, f"Throughput of {group}"),
        '<text x="0" y="14" font-weight="600">samples/s at the median (higher is better)</text>',
    ]
    for k, (r, v) in enumerate(data):
        y = top + k * (_BAR_H + 8)
        w = max(1.0, span * v / vmax)
        colour = BASELINE_BAR if r.verdict == "baseline" else OTHER_BAR
        label = labels[r.index]
        parts.append(
            f'<g class="bar" data-config="{_e(r.config)}"><title>{_e(label)}: '
            f"{_fmt(v)} samples/s ({_e(r.verdict)})</title>"
            f'<text x="{_LABEL_W - 8}" y="{y + 13}" text-anchor="end">{_e(_short(label, 56))}'
            f'</text><rect x="{_LABEL_W}" y="{y}" width="{w:.1f}" height="{_BAR_H}" '
            f'rx="2" fill="{colour}"/><text x="{_LABEL_W + w + 6:.1f}" y="{y + 13}">'
            f"{_fmt(v, 1)}</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def latency_chart(group: str, rows: Sequence[Row]) -> str:
    """Pairs of horizontal bars per configuration: median (p50) and p99 latency in ms."""
    labels = dict(zip((r.index for r in rows), short_labels(rows), strict=True))
    data = [r for r in rows if r.p50 is not None]
    if not data:
        return ""
    top = 30
    pair = 2 * _BAR_H + 10
    height = top + len(data) * pair + 8
    vmax = max(max(r.p50 or 0.0, r.p99 or 0.0) for r in data) or 1.0
    span = _CHART_W - _LABEL_W - 110
    parts = [
        _svg_open(height, f"Latency of {group}"),
        '<text x="0" y="14" font-weight="600">latency, ms (lower is better)</text>',
        f'<rect x="{_LABEL_W}" y="4" width="12" height="12" fill="{P50_COLOUR}"/>'
        f'<text x="{_LABEL_W + 16}" y="14">p50</text>'
        f'<rect x="{_LABEL_W + 60}" y="4" width="12" height="12" fill="{P99_COLOUR}"/>'
        f'<text x="{_LABEL_W + 76}" y="14">p99</text>',
    ]
    for k, r in enumerate(data):
        y = top + k * pair
        label = labels[r.index]
        parts.append(
            f'<g class="latency" data-config="{_e(r.config)}"><title>{_e(label)}: '
            f"p50 {_fmt(r.p50)} ms, p99 {_fmt(r.p99)} ms</title>"
            f'<text x="{_LABEL_W - 8}" y="{y + _BAR_H + 4}" text-anchor="end">'
            f"{_e(_short(label, 56))}</text>"
        )
        for j, (value, colour) in enumerate(((r.p50, P50_COLOUR), (r.p99, P99_COLOUR))):
            if value is None:
                continue
            yy = y + j * (_BAR_H + 1)
            w = max(1.0, span * value / vmax)
            parts.append(
                f'<rect x="{_LABEL_W}" y="{yy}" width="{w:.1f}" height="{_BAR_H}" rx="2" '
                f'fill="{colour}"/><text x="{_LABEL_W + w + 6:.1f}" y="{yy + 13}">'
                f"{_fmt(value)}</text>"
            )
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


def _table(rows: Sequence[Row], names: Mapping[str, str]) -> str:
    head = (
        "Machine",
        "EP",
        "Configuration",
        "p50 (ms)",
        "median 95% CI (ms)",
        "p99 (ms)",
        "samples/s at p50",
        "ratio",
        "verdict",
    )
    out = [
        '<table class="compare"><thead><tr>',
        *(f"<th>{h}</th>" for h in head),
        "</tr></thead><tbody>",
    ]
    for r in rows:
        ci = f"{_fmt(r.median_ci95[0])} – {_fmt(r.median_ci95[1])}" if r.median_ci95 else "n/a"
        colour = VERDICT_COLOURS.get(r.verdict, "#1f2328")
        vs = f' title="compared with {_e(r.baseline)}"' if r.baseline else ""
        out.append(
            f'<tr data-verdict="{_e(r.verdict)}" data-config="{_e(r.config)}">'
            f'<td title="{_e(r.machine)}">{_e(names[r.machine])}</td><td>{_e(r.ep_short)}</td>'
            f"<td>{_e(r.settings)}</td>"
            f'<td class="num">{_fmt(r.p50)}</td><td class="num">{ci}</td>'
            f'<td class="num">{_fmt(r.p99)}</td><td class="num">{_fmt(r.rate_p50, 1)}</td>'
            f'<td class="num">{_ratio(r)}</td>'
            f'<td class="verdict" style="color:{colour}"{vs}>{_e(r.verdict)}</td></tr>'
        )
    out.append("</tbody></table>")
    return "".join(out)


def _bytes(n: Any) -> str:
    if not isinstance(n, (int, float)):
        return "n/a"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def _machine(label: str, m: Mapping[str, Any]) -> str:
    cpu = m.get("cpu") if isinstance(m.get("cpu"), Mapping) else {}
    mem = m.get("memory") if isinstance(m.get("memory"), Mapping) else {}
    sw = m.get("software") if isinstance(m.get("software"), Mapping) else {}
    ort = m.get("onnxruntime") if isinstance(m.get("onnxruntime"), Mapping) else {}
    caches = ", ".join(
        f"L{c.get('level')} {c.get('type', '')} {_bytes(c.get('size_bytes'))}"
        for c in cpu.get("caches") or ()
        if isinstance(c, Mapping)
    )
    accs = []
    for a in m.get("accelerators") or ():
        if not isinstance(a, Mapping):
            continue
        bits = [str(a.get("kind", "")).upper(), str(a.get("vendor", "")), str(a.get("name", ""))]
        if a.get("memory_bytes"):
            bits.append(_bytes(a["memory_bytes"]))
        if a.get("driver"):
            bits.append(f"driver {a['driver']}")
        accs.append(" ".join(b for b in bits if b))
    dists = ort.get("distributions") or [
        f"{d.get('name')}=={d.get('version')}"
        for d in sw.get("ort_distributions") or ()
        if isinstance(d, Mapping)
    ]
    providers = ort.get("available_providers") or sw.get("available_providers") or ()
    items = [
        ("Hostname", m.get("hostname")),
        (
            "CPU",
            f"{cpu.get('model_name', 'n/a')} ({cpu.get('vendor', '?')}, "
            f"{cpu.get('architecture', '?')})",
        ),
        (
            "Cores",
            f"{cpu.get('physical_cores', '?')} physical, "
            f"{cpu.get('logical_cores', '?')} logical, {cpu.get('sockets', '?')} socket(s), "
            f"{cpu.get('numa_nodes', '?')} NUMA node(s)",
        ),
        ("ISA features", ", ".join(map(str, cpu.get("features") or ())) or "n/a"),
        ("Caches", caches or "n/a"),
        ("Clock", f"{cpu.get('max_mhz')} MHz max" if cpu.get("max_mhz") else "n/a"),
        ("Governor", cpu.get("governor") or "n/a"),
        ("Memory", f"{_bytes(mem.get('total_bytes'))} total"),
        ("Accelerators", "; ".join(accs) or "none found"),
        (
            "OS",
            " ".join(str(x) for x in (sw.get("os_release") or sw.get("os"), sw.get("kernel")) if x)
            or "n/a",
        ),
        ("Python", sw.get("python") or "n/a"),
        (
            "ONNX Runtime",
            f"{ort.get('version') or sw.get('ort_version') or 'n/a'}"
            + (f" ({', '.join(map(str, dists))})" if dists else ""),
        ),
        ("Available EPs", ", ".join(map(str, providers)) or "n/a"),
    ]
    body = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in items)
    return f'<details class="machine"><summary>{_e(label)}</summary><dl>{body}</dl></details>'


def render_html(
    table: CompareTable,
    *,
    title: str = "aia compare",
    notes: Sequence[str] = (),
    sources: Sequence[str] = (),
) -> str:
    """The whole report as one HTML string (no external resource of any kind)."""
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    base = table.baseline if table.baseline is not None else "default (first file / first record)"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # A strict policy so that nothing in the page could ever fetch anything.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">",
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="meta">{len(table.rows)} configurations in {len(table.groups)} profile(s); '
        f"baseline: {_e(base)} ({_e(table.baseline_kind)}); generated {_e(now)}.",
    ]
    if sources:
        parts.append(f" Files: {_e(', '.join(sources))}.")
    parts.append(
        " Verdicts compare the 95% confidence intervals of the median latencies; "
        "ratio &gt; 1 means faster than the baseline.</p>"
    )
    all_notes = [*notes, *table.skipped]
    if all_notes:
        parts.append(
            '<ul class="notes">' + "".join(f"<li>{_e(n)}</li>" for n in all_notes) + "</ul>"
        )
    for k, group in enumerate(table.groups):
        rows = table.group_rows(group)
        parts.append(f'<section class="group" id="group-{k}"><h2>{_e(group)}</h2>')
        parts.append(_table(rows, machine_names(table.rows)))
        parts.append('<div class="charts">')
        tp = throughput_chart(group, rows)
        if tp:
            parts.append(
                f'<figure class="throughput">{tp}<figcaption>Throughput of '
                f"{_e(group)} per configuration (recorded inferences/s; the baseline "
                "in blue).</figcaption></figure>"
            )
        lat = latency_chart(group, rows)
        if lat:
            parts.append(
                f'<figure class="latency">{lat}<figcaption>Median and p99 latency '
                f"of {_e(group)} per configuration.</figcaption></figure>"
            )
        parts.append("</div></section>")
    parts.append('<section id="machines"><h2>Machines</h2>')
    for label, machine in table.machines.items():
        parts.append(_machine(label, machine))
    parts.append("</section></body></html>")
    return "\n".join(parts) + "\n"


def write_html(path: str | Path, html_text: str) -> Path:
    """Write the report atomically (a reader never sees half a page), shared like any file."""
    from aialliance_cli.atomicfile import write_text_atomic
    from aialliance_cli.errors import BadInputError

    path = Path(path)
    try:
        return write_text_atomic(path, html_text, shared=True)
    except OSError as exc:
        raise BadInputError(f"cannot write the HTML report {path}: {exc.strerror}") from exc
