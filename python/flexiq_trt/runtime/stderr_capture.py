"""Capture what native code writes to file descriptor 2 while a block runs, and pass it through.

The plugin library reports field errors through TensorRT's ILogger when the loader provides one and
to stderr otherwise; TensorRT-RTX provides none (docs/design.md §6). TensorRT's own parser error then only
says "Could not create the plugin", so the builder reads the plugin's lines from here to name the
field in its exception.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field

PLUGIN_LINE_PREFIX = "[flexiq "


@dataclass
class CapturedText:
    """The captured text, available after the block exits."""

    text: str = ""
    lines: list[str] = field(default_factory=list)

    def plugin_lines(self) -> list[str]:
        """Lines written by the FlexiQ plugin library."""
        return [line for line in self.lines if line.startswith(PLUGIN_LINE_PREFIX)]


@contextlib.contextmanager
def capture_fd2() -> Iterator[CapturedText]:
    """Redirect fd 2 to a temp file for the block, then copy it to the real stderr and parse it."""
    captured = CapturedText()
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield captured
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            captured.text = tmp.read().decode("utf-8", errors="replace")
            captured.lines = captured.text.splitlines()
            if captured.text:
                sys.stderr.write(captured.text)
                sys.stderr.flush()
