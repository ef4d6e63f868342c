"""Reading the summary line of the C++ test harness (tests/cpp/common/flexiqTestHarness.h)."""

from __future__ import annotations

import re
import subprocess


def assert_harness_passed(out: subprocess.CompletedProcess, min_cases: int, min_checks: int) -> None:
    """The run exited 0, printed "<cases> test cases, <checks> checks, <failed> failed", failed none,
    and ran at least the given numbers (so a harness that silently runs nothing cannot pass)."""
    assert out.returncode == 0, out.stdout + out.stderr
    m = re.search(r"(\d+) test cases, (\d+) checks, (\d+) failed", out.stdout)
    assert m, out.stdout
    cases, checks, failed = map(int, m.groups())
    assert failed == 0 and cases >= min_cases and checks >= min_checks, out.stdout
