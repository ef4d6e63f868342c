"""Runs the C++ host tests (create -> serialize -> create, every rejected field) built by CMake."""

from __future__ import annotations

import subprocess

import pytest
from _utils.cpp_harness import assert_harness_passed

pytestmark = pytest.mark.plugin


def test_cpp_host_tests_pass(host_tests_exe) -> None:
    assert_harness_passed(subprocess.run([str(host_tests_exe)], capture_output=True, text=True, timeout=120), min_cases=14, min_checks=500)


def test_cpp_host_tests_report_failure_for_unknown_filter(host_tests_exe) -> None:
    # A filter that selects nothing must not count as success (the harness can fail).
    out = subprocess.run([str(host_tests_exe), "no_such_test_case"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "0 test cases" in out.stdout
