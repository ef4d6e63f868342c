"""Fixtures of the C++ hardening tests: the sanitizer tree build-asan and real converted models.

scripts/build_plugins.sh --hardening builds build-asan (ASan + UBSan, Clang when available; CI runs
it in scripts/setup.sh). Missing binaries skip with the reason, or fail under FLEXIQ_REQUIRE_PLUGIN=1.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def asan_dir() -> Path:
    """The sanitizer build tree (FLEXIQ_ASAN_BUILD_DIR, default build-asan/)."""
    return Path(os.environ.get("FLEXIQ_ASAN_BUILD_DIR", REPO / "build-asan"))


def _missing(reason: str) -> None:
    if os.environ.get("FLEXIQ_REQUIRE_PLUGIN") == "1":
        pytest.fail(f"{reason} (FLEXIQ_REQUIRE_PLUGIN=1)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def asan_binary():
    """Returns the path of a binary in build-asan, given its path inside the tree."""

    def _get(rel: str) -> Path:
        exe = asan_dir() / rel
        if not exe.is_file():
            _missing(f"{exe} not built (scripts/build_plugins.sh --hardening builds it)")
        return exe

    return _get


@pytest.fixture(scope="session")
def asan_cache() -> dict[str, str]:
    """build-asan/CMakeCache.txt as name -> value (compiler, sanitizer flags, fuzz engine)."""
    cache = asan_dir() / "CMakeCache.txt"
    if not cache.is_file():
        _missing(f"{cache} missing (scripts/build_plugins.sh --hardening configures it)")
    out = {}
    for line in cache.read_text().splitlines():
        if ":" in line and "=" in line and not line.startswith(("#", "//")):
            key, value = line.split("=", 1)
            out[key.split(":", 1)[0]] = value
    return out


@pytest.fixture(scope="session")
def real_plugin_models(real_conversions) -> list[Path]:
    """`<stem>.flexiq.onnx` of the real conversions (tests/conftest.py: real_conversions)."""
    return [files["flexiq_onnx"] for files in real_conversions.values()]
