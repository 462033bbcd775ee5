"""Bounded YAML and JSON parsing: hostile documents end in BadInputError, never a hang or crash."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aialliance_cli.errors import BadInputError, ProfileError
from aialliance_cli.profiles.loader import parse_profile
from aialliance_cli.safeparse import (
    MAX_ALIAS_NODES,
    MAX_DEPTH,
    ParseLimitError,
    json_depth,
    load_yaml,
    loads_json,
)


def laughs(levels: int, fan: int = 9) -> str:
    doc = "a0: &a0 [" + ",".join(['"lol"'] * fan) + "]\n"
    for i in range(1, levels + 1):
        doc += f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * fan) + "]\n"
    return doc


def test_billion_laughs_is_refused_quickly() -> None:
    start = time.monotonic()
    with pytest.raises(ParseLimitError, match="aliases expand"):
        load_yaml(laughs(9), "doc.yaml")
    assert time.monotonic() - start < 5  # measured, not expanded (generous bound: shared CPU)


def test_a_few_aliases_are_fine() -> None:
    data = load_yaml("base: &b {x: 1}\nother: *b\nmore: [*b, *b]\n", "doc.yaml")
    assert data["more"][1] == {"x": 1}


def test_alias_budget_is_the_documented_bound() -> None:
    fan = 100
    ok = "a: &a [" + ",".join(["1"] * fan) + "]\nb: [" + ",".join(["*a"] * 50) + "]\n"
    load_yaml(ok, "ok.yaml")  # 50 aliases of 101 nodes = 5050 added
    too_many = "a: &a [" + ",".join(["1"] * fan) + "]\nb: [" + ",".join(["*a"] * 200) + "]\n"
    with pytest.raises(ParseLimitError, match=f"{MAX_ALIAS_NODES:,}"):
        load_yaml(too_many, "many.yaml")


def test_recursive_alias_is_refused() -> None:
    with pytest.raises(ParseLimitError, match="contains it"):
        load_yaml("x: &a [*a]\n", "rec.yaml")


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 5000, 100_000])
def test_deep_yaml_is_refused(depth: int) -> None:
    with pytest.raises(ParseLimitError, match="deeper than"):
        load_yaml("[" * depth + "]" * depth, "deep.yaml")


def test_deep_yaml_at_the_limit_is_read() -> None:
    depth = MAX_DEPTH
    assert json_depth(load_yaml("[" * depth + "]" * depth, "ok.yaml")) == depth


def test_aliases_cannot_build_depth_past_the_limit() -> None:
    half = MAX_DEPTH // 2 + 2
    doc = "a: &a " + "[" * half + "1" + "]" * half + "\n"
    doc += "b: " + "[" * half + "*a" + "]" * half + "\n"
    with pytest.raises(ParseLimitError, match="deeper than"):
        load_yaml(doc, "alias-deep.yaml")


def test_huge_integer_is_a_bad_input_with_its_line() -> None:
    with pytest.raises(BadInputError, match="line 2"):
        load_yaml("a: 1\nb: " + "9" * 5000 + "\n", "big.yaml")


def test_python_tags_are_refused() -> None:
    with pytest.raises(BadInputError, match="not readable YAML"):
        load_yaml("!!python/object/apply:os.system ['true']\n", "tag.yaml")


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 5000, 200_000])
def test_deep_json_is_refused(depth: int) -> None:
    with pytest.raises(ParseLimitError, match="deeper than"):
        loads_json("[" * depth + "]" * depth, "r.jsonl:1")


def test_json_problems_name_the_document() -> None:
    with pytest.raises(BadInputError, match="r.jsonl:3 is not valid JSON"):
        loads_json('{"a": ', "r.jsonl:3")
    with pytest.raises(BadInputError, match="r.jsonl:4 is not readable JSON"):
        loads_json('{"a": ' + "9" * 5000 + "}", "r.jsonl:4")


def test_profile_errors_keep_file_line_and_column() -> None:
    with pytest.raises(ProfileError, match=r"p\.yaml is refused: .*deeper than .*\(p\.yaml:3:"):
        parse_profile("name: x\nmodel: m.onnx\ndescription: " + "[" * 100 + "]" * 100, "p.yaml")


# --- property-based: any document is accepted or refused with a message, quickly --------------

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
_json_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=30,
)


@st.composite
def yaml_documents(draw: st.DrawFn) -> str:
    """YAML text with anchors, aliases, tags and nesting of random depth and fan-out."""
    lines = []
    anchors: list[str] = []
    for i in range(draw(st.integers(1, 8))):
        depth = draw(st.integers(0, 120))
        fan = draw(st.integers(1, 12))
        items = []
        for _ in range(fan):
            kind = draw(st.sampled_from(["alias", "scalar", "tag", "flow"]))
            if kind == "alias" and anchors:
                items.append("*" + draw(st.sampled_from(anchors)))
            elif kind == "tag":
                items.append(
                    draw(
                        st.sampled_from(
                            [
                                "!!str 1",
                                "!!int 7",
                                "!!float .nan",
                                "!!binary aGk=",
                                "!!python/name:os.system",
                                "!custom x",
                                "!!timestamp 2026-13-45",
                                "!!set {a, b}",
                            ]
                        )
                    )
                )
            elif kind == "flow":
                items.append("{k: [1, 2, {j: .inf}]}")
            else:
                items.append(json.dumps(draw(st.text(max_size=10))))
        body = "[" * depth + "[" + ", ".join(items) + "]" + "]" * depth
        anchor = f"n{i}"
        anchors.append(anchor)
        lines.append(f"k{i}: &{anchor} {body}")
    if draw(st.booleans()):
        lines.append("loop: &loop [*loop]")
    return "\n".join(lines) + "\n"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(yaml_documents())
def test_any_yaml_is_read_or_refused_with_a_message(text: str) -> None:
    start = time.monotonic()
    try:
        data = load_yaml(text, "gen.yaml")
    except BadInputError as exc:
        assert "gen.yaml" in str(exc)
    else:
        assert json_depth(data) <= MAX_DEPTH
    assert time.monotonic() - start < 10


@settings(max_examples=60, deadline=None)
@given(yaml_documents())
def test_any_yaml_profile_is_valid_or_a_profile_error(text: str) -> None:
    try:
        parse_profile("name: p\nmodel: m.onnx\n" + text, "gen.yaml")
    except ProfileError as exc:
        assert "gen.yaml" in str(exc)


@settings(max_examples=80, deadline=None)
@given(_json_values, st.integers(0, 300))
def test_any_json_line_is_read_or_refused(value: object, wrap: int) -> None:
    text = "[" * wrap + json.dumps(value) + "]" * wrap
    try:
        data = loads_json(text, "r.jsonl:1")
    except BadInputError as exc:
        assert "r.jsonl:1" in str(exc)
    else:
        assert json_depth(data) <= MAX_DEPTH


@settings(max_examples=200, deadline=None)
@given(st.text(), st.booleans())
def test_clean_leaves_nothing_a_terminal_would_act_on(text: str, one_line: bool) -> None:
    from aialliance_cli.cli.output import clean

    out = clean(text, one_line=one_line)
    allowed = "" if one_line else "\n\t"
    assert not any(
        (ord(c) < 0x20 and c not in allowed) or 0x7F <= ord(c) <= 0x9F or c in "\u202e\u2066"
        for c in out
    )
    if text.isprintable():
        assert out == text


def test_bounded_json_keeps_syntax_errors_for_the_caller() -> None:
    from aialliance_cli.safeparse import bounded_json

    with pytest.raises(json.JSONDecodeError):
        bounded_json("{not json", "x.json")
    with pytest.raises(ParseLimitError, match="x.json nests deeper"):
        bounded_json("[" * 10_000 + "]" * 10_000, "x.json")
    assert bounded_json('{"a": [1]}', "x.json") == {"a": [1]}


def test_detect_diff_of_a_deep_file_is_exit_2(tmp_path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from aialliance_cli.cli.main import app

    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    result = CliRunner().invoke(app, ["detect", "--diff", str(deep)])
    assert result.exit_code == 2, result.output
    assert "deeper than" in result.output and "unexpected" not in result.output


def test_a_profile_larger_than_the_bound_is_refused(tmp_path) -> None:
    from aialliance_cli.profiles.loader import MAX_PROFILE_BYTES, load_profile

    big = tmp_path / "big.yaml"
    big.write_text("name: big\nmodel: m.onnx\ndescription: " + "x" * MAX_PROFILE_BYTES + "\n")
    with pytest.raises(ProfileError, match="larger than 1 MiB"):
        load_profile(big)


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="no FIFOs here")
def test_a_profile_that_is_a_fifo_or_device_is_refused_without_blocking(tmp_path) -> None:
    import os

    from aialliance_cli.profiles.loader import load_profile

    fifo = tmp_path / "p.yaml"
    os.mkfifo(fifo)
    with pytest.raises(ProfileError, match="not a regular file"):
        load_profile(fifo)
    if os.path.exists("/dev/zero"):
        with pytest.raises(ProfileError, match="not a regular file"):
            load_profile(__import__("pathlib").Path("/dev/zero"))
