"""Generate argparse argument groups from config dataclasses (the dataclass stays the source of truth).

Field metadata follows `flexiq_trt.options` (help, choices, flags, nargs, cli). Every option the
generator adds is recorded on the parser, so a test can check that each command's flags come from
a dataclass.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any

GENERATED_DESTS = "_flexiq_generated_dests"


def _flag(prefix: str, name: str) -> str:
    return "--" + (f"{prefix}-" if prefix else "").replace("_", "-") + name.replace("_", "-")


def _base_type(tp: Any) -> Any:
    """Unwrap `X | None` / Optional[X] to X."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0]
    return tp


def _default_text(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        return f" (default: {f.default})"
    return ""


def dest_name(prefix: str, name: str) -> str:
    """The argparse dest of a field (`prefix_name`, or `name` without a prefix)."""
    return f"{prefix}_{name}" if prefix else name


def add_dataclass_group(parser: argparse.ArgumentParser, cls: type, title: str, prefix: str = "",
                        skip: tuple[str, ...] = (), only: tuple[str, ...] | None = None) -> None:
    """Add `cls`'s fields as options (defaults stay None = "use the dataclass default").

    `skip` leaves fields out (the command sets them itself, e.g. from a positional argument);
    `only` keeps just the named fields.
    """
    group = parser.add_argument_group(title, (cls.__doc__ or "").strip().splitlines()[0])
    hints = typing.get_type_hints(cls)
    generated = parser.__dict__.setdefault(GENERATED_DESTS, set())
    for f in dataclasses.fields(cls):
        if f.name in skip or not f.init or (only is not None and f.name not in only):
            continue
        meta, tp = f.metadata, _base_type(hints[f.name])
        if meta.get("cli", True) is False:
            continue
        if "help" not in meta:
            raise TypeError(f"{cls.__name__}.{f.name}: config fields need option(..., help=...) metadata")
        dest = dest_name(prefix, f.name)
        kwargs: dict[str, Any] = {"dest": dest, "default": None, "help": meta["help"] + _default_text(f)}
        if tp is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(tp) is tuple:
            kwargs["nargs"] = meta.get("nargs", "+")
            kwargs["type"] = typing.get_args(tp)[0]
        else:
            kwargs["type"] = tp if tp in (int, float, str) else str
        if "choices" in meta and tp is not bool:
            choices = meta["choices"]
            kwargs["choices"] = tuple(choices() if callable(choices) else choices)
        flags = meta.get("flags") or (_flag(prefix, f.name),)
        group.add_argument(*flags, **kwargs)
        generated.add(dest)


def dataclass_from_args(cls: type, args: argparse.Namespace, prefix: str = "", **overrides: Any) -> Any:
    """Build `cls` from parsed args, keeping dataclass defaults for options that were not given."""
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        v = getattr(args, dest_name(prefix, f.name), None)
        if v is not None:
            values[f.name] = tuple(v) if isinstance(v, list) else v
    values.update({k: v for k, v in overrides.items() if v is not None})
    return cls(**values)
