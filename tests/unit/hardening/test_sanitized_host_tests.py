"""The C++ host tests (plugin creators, flexiq_infer's host logic) under ASan + UBSan (build-asan).

Any sanitizer report aborts the binary (-fno-sanitize-recover=all), so exit status 0 with the full
test count means no report. A planted heap overflow and a planted signed overflow, compiled with the
tree's own compiler and flags, show that those flags do trap.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.plugin

ASAN_ENV = {**os.environ, "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:halt_on_error=1",
            "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"}

HOST_TESTS = [  # (binary in build-asan, minimum test cases, minimum checks)
    ("tests/cpp/host/flexiq_host_tests", 14, 800),
    ("examples/cpp/flexiq_infer_host_tests", 12, 3000),
]


def _instrumented(exe: Path) -> bool:
    data = exe.read_bytes()
    return b"__asan_report_load" in data and b"__ubsan_handle_" in data


@pytest.mark.parametrize("rel,min_cases,min_checks", HOST_TESTS, ids=[Path(h[0]).name for h in HOST_TESTS])
def test_host_tests_pass_under_asan_and_ubsan(asan_binary, rel, min_cases, min_checks) -> None:
    exe = asan_binary(rel)
    assert _instrumented(exe), f"{exe} carries no ASan/UBSan instrumentation"
    out = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300, env=ASAN_ENV)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-6000:]
    assert "Sanitizer" not in out.stderr and "runtime error" not in out.stderr, out.stderr[-6000:]
    m = re.search(r"(\d+) test cases, (\d+) checks, (\d+) failed", out.stdout)
    assert m, out.stdout
    cases, checks, failed = map(int, m.groups())
    assert failed == 0 and cases >= min_cases and checks >= min_checks, out.stdout


PLANTED = {
    "heap-buffer-overflow": ("#include <vector>\nint main(int c, char**) { std::vector<int> v(4); return v.data()[3 + c]; }",
                             "AddressSanitizer: heap-buffer-overflow"),
    "signed-overflow": ("#include <climits>\nint main(int c, char**) { int x = INT_MAX - 1 + c; return x + 1 > 0; }",
                        "runtime error: signed integer overflow"),
}


@pytest.mark.parametrize("fault", sorted(PLANTED))
def test_tree_flags_trap_planted_faults(asan_cache, tmp_path, fault) -> None:
    source, report = PLANTED[fault]
    cxx = asan_cache["CMAKE_CXX_COMPILER"]
    flags = asan_cache["FLEXIQ_SANITIZER_FLAGS"].split(";")
    assert asan_cache.get("FLEXIQ_SANITIZE") == "ON" and "-fno-sanitize-recover=all" in flags
    src = tmp_path / "planted.cpp"
    src.write_text(source)
    exe = tmp_path / "planted"
    subprocess.run([cxx, "-O1", "-g", *flags, str(src), "-o", str(exe)], check=True, timeout=120)
    out = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60, env=ASAN_ENV)
    assert out.returncode != 0 and report in out.stderr, out.stderr[-3000:]
