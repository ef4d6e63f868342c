"""The warp/CTA emulator tests (tests/unit/kernels) rerun with the emulator built under ASan + UBSan.

tests/unit/kernels/flexiq_kernel_ctypes.build_emulator adds the sanitizer flags when
FLEXIQ_SANITIZE=1; the emulator is a shared library loaded by Python, so the child pytest runs with
GCC's libasan preloaded. Any report aborts that child (-fno-sanitize-recover=all, halt_on_error).
The planted-fault tests are left out here: they need a third emulator build and test the
emulator's own checks, not memory safety.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.plugin

REPO = Path(__file__).resolve().parents[3]
EMULATOR_TESTS = ["tests/unit/kernels/test_warp_emulator.py", "tests/unit/kernels/test_pipelined_emulator.py",
                  "tests/unit/kernels/test_workspace_edges.py"]


def _libasan(gxx: str) -> str | None:
    out = subprocess.run([gxx, "-print-file-name=libasan.so"], capture_output=True, text=True, check=True)
    path = out.stdout.strip()
    return path if os.path.isabs(path) and os.path.exists(path) else None


def test_emulator_tests_pass_under_asan_and_ubsan(tmp_path) -> None:
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("the sanitized emulator run needs g++ (and its libasan)")
    asan = _libasan(gxx)
    if asan is None:
        pytest.fail(f"{gxx} has no libasan.so (install libasan / gcc's sanitizer runtime)")
    env = {**os.environ, "FLEXIQ_SANITIZE": "1", "CXX": gxx, "LD_PRELOAD": asan,
           # Python itself is not instrumented: its allocator's leaks are not ours.
           "ASAN_OPTIONS": "detect_leaks=0:halt_on_error=1", "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"}
    env.pop("FLEXIQ_SLOW", None)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow", "-k", "not fault",
           f"--basetemp={tmp_path / 'base'}", *EMULATOR_TESTS]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=1500, env=env)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-8000:]
    assert "AddressSanitizer" not in log and "runtime error" not in log, log[-8000:]
    m = re.search(r"(\d+) passed", out.stdout)
    assert m and int(m.group(1)) >= 30 and "failed" not in out.stdout, out.stdout[-3000:]
