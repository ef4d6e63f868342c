"""Fuzzing the plugin-field parser (tests/cpp/fuzz) for a fixed budget, seeded from real models.

The seeds are the FlexiQConv/FlexiQGemm nodes of two real conversions, encoded as the
PluginFieldCollection TensorRT hands to createPlugin (fuzz_corpus.py). The fuzz target runs under
ASan + UBSan in build-asan, with libFuzzer when built by Clang, else the bounded mutation driver.
Budget: FLEXIQ_FUZZ_SECONDS (default 30) with a fixed seed; 0 crashes is the pass condition.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from fuzz_corpus import write_corpus

pytestmark = pytest.mark.plugin

FUZZER = "tests/cpp/fuzz/flexiq_fuzz_plugin_fields"
REGRESSIONS = Path(__file__).resolve().parents[2] / "cpp" / "fuzz" / "regressions"
MAX_LEN = 32768  # seeds above this are left out of the timed run: smaller inputs, more executions
ENV = {**os.environ, "FLEXIQ_FUZZ_STATS": "1", "ASAN_OPTIONS": "detect_leaks=1:halt_on_error=1",
       "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"}


def _stats(stderr: str) -> tuple[int, int]:
    m = re.search(r"flexiq fuzz stats: (\d+) inputs, (\d+) accepted", stderr)
    assert m, stderr[-3000:]
    return int(m.group(1)), int(m.group(2))


@pytest.fixture(scope="module")
def seeds(real_plugin_models, tmp_path_factory) -> list[Path]:
    """One seed per plugin node of the real models."""
    return write_corpus(real_plugin_models, tmp_path_factory.mktemp("seeds"))


def test_every_real_node_is_an_accepted_seed(asan_binary, seeds) -> None:
    """The encoding matches what the parser reads: every real node parses and round-trips."""
    fuzzer = asan_binary(FUZZER)
    out = subprocess.run([str(fuzzer), "-runs=0", *map(str, seeds)], capture_output=True, text=True, timeout=300,
                         env=ENV)
    assert out.returncode == 0, out.stderr[-6000:]
    # libFuzzer runs an input a second time when its mallocs and frees differ (its leak check), so
    # the count of executions may exceed the seeds; every execution must still be accepted.
    inputs, accepted = _stats(out.stderr)
    assert len(seeds) >= 20 and inputs >= len(seeds) and accepted == inputs, (len(seeds), inputs, accepted)


def test_found_crashes_stay_fixed(asan_binary) -> None:
    """Inputs that once crashed the parser (tests/cpp/fuzz/regressions) are rejected cleanly."""
    fuzzer = asan_binary(FUZZER)
    files = sorted(REGRESSIONS.glob("*.bin"))
    assert files
    out = subprocess.run([str(fuzzer), "-runs=0", *map(str, files)], capture_output=True, text=True, timeout=120,
                         env=ENV)
    assert out.returncode == 0, out.stderr[-6000:]
    assert _stats(out.stderr) == (len(files), 0)


def test_fuzz_budget_finds_no_crash(asan_binary, asan_cache, seeds, tmp_path) -> None:
    fuzzer = asan_binary(FUZZER)
    seconds = int(os.environ.get("FLEXIQ_FUZZ_SECONDS", "30"))
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for s in seeds:
        if s.stat().st_size <= MAX_LEN:
            shutil.copy(s, corpus)
    assert len(list(corpus.iterdir())) >= 10
    args = [str(fuzzer), "-seed=1", f"-max_total_time={seconds}", f"-max_len={MAX_LEN}", "-timeout=20",
            "-rss_limit_mb=2048", f"-artifact_prefix={tmp_path}/", str(corpus)]
    out = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 240, env=ENV)
    log = out.stdout + out.stderr
    crashes = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("crash-", "leak-", "timeout-", "oom-")))
    assert out.returncode == 0 and not crashes, f"{crashes}\n{log[-8000:]}"
    assert "ERROR:" not in log and "runtime error" not in log, log[-8000:]
    m = re.search(r"Done (\d+) runs in (\d+) second", log)
    assert m, log[-3000:]
    runs = int(m.group(1))
    inputs, accepted = _stats(out.stderr)
    engine = asan_cache.get("FLEXIQ_FUZZ_ENGINE", "?")
    print(f"fuzz ({engine}): {runs} runs in {m.group(2)} s, {accepted} inputs accepted and round-tripped, 0 crashes")
    assert runs >= 1000 and accepted > 0
