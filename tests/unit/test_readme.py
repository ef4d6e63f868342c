"""The README's commands stay true: scripts exist and every CLI line parses with today's flags."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from flexiq_trt.cli.main import build_parser

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()
BLOCKS = re.findall(r"```bash\n(.*?)```", README, flags=re.S)
CLI_PREFIXES = ("flexiq-trt ", ".venv/bin/python -m flexiq_trt ", "python -m flexiq_trt ")


def cli_lines() -> list[list[str]]:
    out = []
    for block in BLOCKS:
        for line in block.splitlines():
            for part in line.split("&&"):
                part = part.split("#")[0].strip()
                for prefix in CLI_PREFIXES:
                    if part.startswith(prefix):
                        out.append(shlex.split(part[len(prefix):]))
    return out


def test_the_two_setup_commands_are_there_and_their_scripts_exist():
    assert "bash scripts/setup.sh && .venv/bin/python -m flexiq_trt convert -o flexiq_out" in README
    assert "bash scripts/setup.sh && bash scripts/test.sh" in README
    for script in ("scripts/setup.sh", "scripts/test.sh", ".ci/run"):
        assert (REPO / script).is_file(), script
    assert "scripts/test.sh" in (REPO / ".ci/run").read_text()


@pytest.mark.parametrize("argv", cli_lines(), ids=lambda a: " ".join(a)[:60])
def test_readme_cli_line_parses(argv):
    args = build_parser().parse_args(argv)
    assert args.command == argv[0]


def test_quick_start_describes_the_default_demo_as_configured():
    """The sizes the README quotes are the ones datasets/demo.py builds (no stale numbers)."""
    from flexiq_trt.datasets import demo, orientation

    calib = len(orientation.split_sources("calibration"))
    held = len(orientation.split_sources("heldout"))
    quick = README.split("## Quick start")[1].split("## Using it")[0]
    assert demo.DemoConfig().demo == "orientation" and "PP-LCNet" in quick
    assert f"{calib * demo.ORIENTATION_CALIB_CROPS * 4} rotated crops of {calib} real photos" in quick
    assert f"{held * demo.ORIENTATION_EVAL_CROPS * 4} rotated crops of {held}" in quick
    assert "--demo fmnist" in quick
    assert "change vs INT8" in quick  # the table the command prints, with its intervals
