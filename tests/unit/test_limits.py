"""Every number is range-checked once, before work starts: nan, inf, negative, absurd -> exit 2."""

from __future__ import annotations

import math

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from aialliance_cli.errors import BadInputError, ProfileError
from aialliance_cli.limits import (
    MAX_DIM,
    MAX_ITERATIONS,
    MAX_WARMUP,
    WEEK_S,
    check,
    max_threads,
)
from aialliance_cli.profiles.loader import parse_profile
from aialliance_cli.runtime.api import Overrides
from aialliance_cli.runtime.sweep import parse_int_list

_numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 1, math.nan, math.inf, -math.inf, 1e300, 2**31, 2**63]),
)


@pytest.mark.parametrize(
    ("field", "option", "value"),
    [
        ("duration_s", "--duration", math.nan),
        ("duration_s", "--duration", math.inf),
        ("duration_s", "--duration", WEEK_S + 1.0),
        ("until_stable", "--until-stable", math.nan),
        ("until_stable", "--until-stable", 101.0),
        ("min_coverage", "--min-coverage", math.nan),
        ("iterations", "--iterations", MAX_ITERATIONS + 1),
        ("iterations", "--iterations", 0),
        ("warmup", "--warmup", -1),
        ("warmup", "--warmup", MAX_WARMUP + 1),
        ("threads", "--threads", 10**6),
        ("threads", "--threads", -1),
        ("batch", "--batch", 0),
        ("batch", "--batch", 2**40),
    ],
)
def test_overrides_refuse_bad_numbers_naming_the_option(
    field: str, option: str, value: float
) -> None:
    with pytest.raises(BadInputError, match=option):
        Overrides(**{field: value})


def test_threads_bound_is_four_times_the_cores() -> None:
    Overrides(threads=max_threads())
    with pytest.raises(BadInputError, match="4 x the"):
        Overrides(threads=max_threads() + 1)


def test_dims_are_checked_by_name() -> None:
    with pytest.raises(BadInputError, match="--dim sequence"):
        Overrides(dims={"sequence": 2**40})


def test_sweep_lists_are_checked_item_by_item() -> None:
    assert parse_int_list("--threads", "1,2", zero_ok=True) == [1, 2]
    with pytest.raises(BadInputError, match="--threads"):
        parse_int_list("--threads", f"1,{max_threads() + 1}", zero_ok=True)
    with pytest.raises(BadInputError, match="--batch"):
        parse_int_list("--batch", f"1,{2**40}")


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(
        [
            "--warmup",
            "--iterations",
            "--duration",
            "--timeout",
            "--until-stable",
            "--min-coverage",
            "--threads",
            "--batch",
            "--dim sequence",
            "--target-qps",
            "--min-queries",
        ]
    ),
    _numbers,
)
def test_any_number_is_accepted_finite_and_bounded_or_refused_by_name(
    option: str, value: float
) -> None:
    try:
        check(option, value)
    except BadInputError as exc:
        assert str(exc).startswith(option)
    else:
        assert math.isfinite(value) and 0 <= value <= max(WEEK_S * 1000, 1e9, MAX_DIM)


_PROFILE_NUMBERS = [
    ("bench", "warmup"),
    ("bench", "iterations"),
    ("bench", "duration_s"),
    ("bench", "min_coverage"),
    ("session", "intra_op_threads"),
    ("session", "inter_op_threads"),
    ("inputs", "dims"),
    ("inputs", "shape"),
    ("inputs", "low"),
]


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(_PROFILE_NUMBERS), _numbers)
def test_any_profile_number_is_valid_or_a_profile_error_naming_the_key(
    where: tuple[str, str], value: float
) -> None:
    section, key = where
    doc: dict = {"name": "p", "model": "m.onnx"}
    if section == "inputs" and key == "dims":
        doc["inputs"] = {"dims": {"sequence": value}}
        name = "inputs.dims.sequence"
    elif section == "inputs":
        tensor = {"synthesize": "random", key: [1, value] if key == "shape" else value}
        doc["inputs"] = {"tensors": {"x": tensor}}
        name = f"inputs.tensors.x.{key}"
    else:
        doc[section] = {key: value}
        name = f"{section}.{key}"
    text = yaml.safe_dump(doc)
    try:
        profile = parse_profile(text, "gen.yaml")
    except ProfileError as exc:
        assert name in str(exc) and "gen.yaml" in str(exc), str(exc)
    else:
        dumped = profile.model_dump()
        assert all(not isinstance(v, float) or math.isfinite(v) for v in _leaves(dumped))


def _leaves(value: object):
    if isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


# --- whole generated profiles ------------------------------------------------------------------

_keys = st.sampled_from(
    [
        "name",
        "description",
        "task",
        "model",
        "inputs",
        "providers",
        "session",
        "bench",
        "output",
        "variants",
        "custom_ops_library",
        "schema",
        "generation",
        "nmae",
    ]
)
_leaf = st.one_of(
    _numbers,
    st.none(),
    st.booleans(),
    st.text(max_size=12),
    st.sampled_from(["m.onnx", "cpu", "random", "float32", "mean", "\x1b]0;x\x07", "a\n"]),
)
_values = st.recursive(
    _leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.one_of(
                st.sampled_from(
                    [
                        "file",
                        "dims",
                        "tensors",
                        "x",
                        "shape",
                        "synthesize",
                        "warmup",
                        "iterations",
                        "duration_s",
                        "intra_op_threads",
                        "prefer",
                        "options",
                        "int8",
                        "quantize",
                        "url",
                        "sha256",
                        "value",
                        "low",
                        "high",
                    ]
                ),
                st.text(max_size=6),
            ),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(_keys, _values, max_size=6))
def test_any_generated_profile_is_valid_or_one_profile_error(extra: dict) -> None:
    doc = {"name": "p", "model": "m.onnx", **extra}
    try:
        text = yaml.safe_dump(doc, allow_unicode=True)
    except yaml.YAMLError:
        return
    try:
        parse_profile(text, "gen.yaml")
    except ProfileError as exc:
        assert "gen.yaml" in str(exc)
