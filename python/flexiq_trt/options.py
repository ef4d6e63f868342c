"""One convention for configuration dataclass fields: `option(default, help, ...)`.

Every stage keeps its options in one frozen dataclass (CalibConfig, QuantConfig, SearchConfig,
ConvertConfig, ...) that feeds both the Python API and the CLI; `cli/arg_groups.py` generates the
command-line flags from the metadata written here, so a flag's name, type, choices and help are
never written twice. Metadata keys (the only ones the CLI reads):

* ``help``: the help text (required).
* ``choices``: allowed values, or a zero-argument callable returning them (resolved lazily,
  e.g. the selector registry).
* ``flags``: the flag spellings when they differ from ``--<prefix>-<field-name>`` (e.g. ``("-o", "--output")``).
* ``nargs``: argparse's nargs for tuple fields (default ``"+"``).
* ``cli``: False keeps a field out of the CLI (structured values such as mappings).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

_MISSING: Any = dataclasses.MISSING


def option(default: Any = _MISSING, help: str = "", *, choices: tuple | Callable[[], tuple] | None = None,  # noqa: A002
           flags: tuple[str, ...] | None = None, default_factory: Callable[[], Any] = _MISSING,
           **extra: Any) -> Any:
    """A dataclass field carrying its CLI metadata (see the module docstring for the keys)."""
    if not help:
        raise ValueError("option() needs a help text")
    meta: dict[str, Any] = {"help": help, **extra}
    if choices is not None:
        meta["choices"] = choices
    if flags is not None:
        meta["flags"] = tuple(flags)
    if default_factory is not _MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)
