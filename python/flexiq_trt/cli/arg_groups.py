"""Generate one argparse argument group per config dataclass (the dataclass stays the source of truth)."""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any


def _flag(prefix: str, name: str) -> str:
    return "--" + (f"{prefix}-" if prefix else "") + name.replace("_", "-")


def _base_type(tp: Any) -> Any:
    """Unwrap `X | None` / Optional[X] to X."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0]
    return tp


def docstring_attributes(cls: type) -> dict[str, str]:
    """Google-style `Attributes:` entries of a class docstring (help text for fields without metadata)."""
    out: dict[str, str] = {}
    lines = (cls.__doc__ or "").splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Attributes:")
    except StopIteration:
        return out
    current = None
    for line in lines[start + 1:]:
        text = line.strip()
        if not text:
            break
        name, sep, rest = text.partition(":")
        if sep and name.isidentifier() and len(line) - len(line.lstrip()) <= 8:
            current, out[name] = name, rest.strip()
        elif current:
            out[current] += " " + text
    return out


def add_dataclass_group(parser: argparse.ArgumentParser, cls: type, title: str, prefix: str = "",
                        skip: tuple[str, ...] = ()) -> None:
    """Add `cls`'s fields as `--prefix-field-name` options (defaults stay None = "use the dataclass default")."""
    group = parser.add_argument_group(title, (cls.__doc__ or "").strip().splitlines()[0])
    hints = typing.get_type_hints(cls)
    documented = docstring_attributes(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip or not f.init:
            continue
        meta, tp = f.metadata, _base_type(hints[f.name])
        kwargs: dict[str, Any] = {"dest": f"{prefix}_{f.name}" if prefix else f.name, "default": None,
                                  "help": f"{meta.get('help', documented.get(f.name, ''))} (default: {f.default})"}
        if tp is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(tp) is tuple:
            kwargs["nargs"] = "+"
            kwargs["type"] = typing.get_args(tp)[0]
        else:
            kwargs["type"] = tp if tp in (int, float, str) else str
            if "choices" in meta:
                kwargs["choices"] = meta["choices"]
        group.add_argument(_flag(prefix, f.name), **kwargs)


def dataclass_from_args(cls: type, args: argparse.Namespace, prefix: str = "", **overrides: Any) -> Any:
    """Build `cls` from parsed args, keeping dataclass defaults for options that were not given."""
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        dest = f"{prefix}_{f.name}" if prefix else f.name
        v = getattr(args, dest, None)
        if v is not None:
            values[f.name] = tuple(v) if isinstance(v, list) else v
    values.update({k: v for k, v in overrides.items() if v is not None})
    return cls(**values)
