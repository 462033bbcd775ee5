"""A Python that runs ONNX Runtime GenAI's model builder, for the tests that build with it.

The builder needs transformers>=5, which optimum (in the test environment) does not
take. :func:`builder_python` returns ``$AIA_GENAI_BUILDER_PYTHON`` when set, else this
Python when it can run the builder, else makes, once per checkout, the layered
environment that aia itself makes for users (``genai.builder.create_builder_env``) at
``<repo>/.venv-genai-test`` (git-ignored) and reuses it. Tests skip with the reason
only when the package index has no onnxruntime-genai for this platform.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
VENV = REPO / ".venv-genai-test"


def builder_python() -> Path:
    from aialliance_cli.errors import RuntimeFailure
    from aialliance_cli.genai import builder as B

    given = os.environ.get(B.ENV_PYTHON)
    if given:
        return Path(given)
    if B._here_can_build():
        import sys

        return Path(sys.executable)
    try:
        return B.create_builder_env(VENV)
    except RuntimeFailure as exc:
        text = str(exc)
        if "No matching distribution" in text or "Could not find a version" in text:
            pytest.skip(f"the package index has no onnxruntime-genai here: {text[-300:]}")
        raise
