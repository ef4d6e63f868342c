"""The package logger, its one-time configuration by the CLI, and progress/stage helpers.

Library code only ever calls :func:`get_logger` (a child of ``"flexiq_trt"``, which carries a
``NullHandler``), so importing flexiq_trt never changes the application's logging. Handlers and
format are installed by :func:`configure`, which only the CLI entry point calls (``-v/-q/--log-file``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

LOGGER_NAME = "flexiq_trt"
_FORMAT = "[%(levelname)s] %(message)s"
_FILE_FORMAT = "%(asctime)s [%(levelname)s] %(name)s: %(message)s"
# Set FLEXIQ_PROGRESS=0 to suppress progress bars/lines even on a TTY (e.g. in notebooks or CI logs).
PROGRESS_ENV = "FLEXIQ_PROGRESS"

logging.getLogger(LOGGER_NAME).addHandler(logging.NullHandler())

# Handlers installed by configure(), remembered so a second call replaces rather than duplicates them.
_configured_handlers: list[logging.Handler] = []

T = TypeVar("T")


def get_logger(name: str | None = None) -> logging.Logger:
    """The package logger, or its child ``flexiq_trt.<name>`` (``name`` may be a module's ``__name__``)."""
    if not name or name == LOGGER_NAME:
        return logging.getLogger(LOGGER_NAME)
    if name.startswith(LOGGER_NAME + "."):
        return logging.getLogger(name)
    return logging.getLogger(f"{LOGGER_NAME}.{name}")


def verbosity_to_level(verbosity: int) -> int:
    """Map the CLI's ``-v`` count minus its ``-q`` count to a level: 0 INFO, 1+ DEBUG, -1 WARNING, -2 ERROR."""
    if verbosity >= 1:
        return logging.DEBUG
    if verbosity == 0:
        return logging.INFO
    if verbosity == -1:
        return logging.WARNING
    return logging.ERROR


def configure(verbosity: int = 0, log_file: str | Path | None = None) -> None:
    """Install a stderr handler (and optionally a DEBUG file handler) on the package logger.

    For the CLI entry point only. Calling it again replaces the handlers it installed before.
    """
    root = logging.getLogger(LOGGER_NAME)
    for handler in _configured_handlers:
        root.removeHandler(handler)
        handler.close()
    _configured_handlers.clear()

    level = verbosity_to_level(verbosity)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(level)
    console.setFormatter(logging.Formatter(_FORMAT))
    _configured_handlers.append(console)
    if log_file is not None:
        file_handler = logging.FileHandler(str(log_file), mode="w", encoding="utf-8")
        file_handler.setLevel(logging.DEBUG)
        file_handler.setFormatter(logging.Formatter(_FILE_FORMAT))
        _configured_handlers.append(file_handler)
    for handler in _configured_handlers:
        root.addHandler(handler)
    root.setLevel(logging.DEBUG if log_file is not None else level)
    root.propagate = False


def _use_bar(logger: logging.Logger) -> bool:
    """A bar only when a human watches stderr, INFO is visible, and it is not switched off."""
    if os.environ.get(PROGRESS_ENV, "1") == "0":
        return False
    stream = sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)()) and logger.isEnabledFor(logging.INFO)


def progress(
    iterable: Iterable[T],
    total: int | None = None,
    desc: str = "",
    *,
    interval_s: float = 5.0,
    logger: logging.Logger | None = None,
) -> Iterator[T]:
    """Yield from ``iterable`` while reporting progress.

    On a TTY a tqdm bar is shown; otherwise an INFO line is logged at most every ``interval_s``
    seconds (plus a final line), so CI logs stay short however many items there are.
    """
    log = logger or get_logger()
    if _use_bar(log):
        from tqdm import tqdm  # lazy: only needed for interactive runs

        yield from tqdm(iterable, total=total, desc=desc or None, leave=False, file=sys.stderr)
        return
    start = last = time.monotonic()
    count = 0
    for item in iterable:
        yield item
        count += 1
        now = time.monotonic()
        if now - last >= interval_s:
            last = now
            log.info("%s: %s (%.1f s)", desc or "progress", _count_text(count, total), now - start)
    if count and time.monotonic() - start >= interval_s:
        log.info("%s: done, %d items in %.1f s", desc or "progress", count, time.monotonic() - start)


def _count_text(count: int, total: int | None) -> str:
    return f"{count}/{total}" if total else str(count)


@contextlib.contextmanager
def stage(name: str, logger: logging.Logger | None = None) -> Iterator[None]:
    """Log the start of a pipeline stage and its finish (or failure) with its duration."""
    log = logger or get_logger()
    log.info("%s: started", name)
    start = time.monotonic()
    try:
        yield
    except BaseException:
        log.error("%s: FAILED after %.2f s", name, time.monotonic() - start)
        raise
    log.info("%s: finished in %.2f s", name, time.monotonic() - start)
