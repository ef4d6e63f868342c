"""Runs the C++ host tests (create -> serialize -> create, every rejected field) built by CMake."""

from __future__ import annotations

import re
import subprocess

import pytest

pytestmark = pytest.mark.plugin


def test_cpp_host_tests_pass(host_tests_exe) -> None:
    out = subprocess.run([str(host_tests_exe)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    m = re.search(r"(\d+) test cases, (\d+) checks, (\d+) failed", out.stdout)
    assert m, out.stdout
    cases, checks, failed = map(int, m.groups())
    assert failed == 0 and cases >= 14 and checks >= 500, out.stdout


def test_cpp_host_tests_report_failure_for_unknown_filter(host_tests_exe) -> None:
    # A filter that selects nothing must not count as success (the harness can fail).
    out = subprocess.run([str(host_tests_exe), "no_such_test_case"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "0 test cases" in out.stdout
