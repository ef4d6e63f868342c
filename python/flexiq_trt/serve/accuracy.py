"""Accuracy per ratio, read from a conversion's ``report.json`` (held-out figures at the ladder ratios).

The controller ranks ratios by this table, and the simulation reports the mean over served
requests. Between ladder ratios the figure is interpolated linearly (a served ratio off the
ladder runs a 4-bit set between its neighbours' nested sets).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from flexiq_trt.errors import ConfigError, ModelError


@dataclass(frozen=True)
class AccuracyTable:
    """A metric (higher is better) at increasing ratios, with its name and source."""

    ratios: tuple[float, ...]
    values: tuple[float, ...]
    metric: str
    source: str = ""

    def __post_init__(self) -> None:
        if not self.ratios or len(self.ratios) != len(self.values):
            raise ConfigError(f"accuracy table ({self.source}): needs as many values as ratios, at least one")
        if any(b <= a for a, b in zip(self.ratios, self.ratios[1:], strict=False)):
            raise ConfigError(f"accuracy table ({self.source}): ratios must increase, got {list(self.ratios)}")

    def at(self, ratio: float) -> float:
        """The metric at `ratio` (linear between ladder points, clamped at the ends)."""
        return float(np.interp(ratio, self.ratios, self.values))

    def to_dict(self) -> dict:
        """JSON-ready form (the Triton front model reads it back with :meth:`from_dict`)."""
        return {"metric": self.metric, "source": self.source, "ratios": list(self.ratios),
                "values": list(self.values)}

    @classmethod
    def from_dict(cls, d: dict, source: str = "<dict>") -> AccuracyTable:
        """Inverse of :meth:`to_dict`."""
        try:
            return cls(tuple(float(r) for r in d["ratios"]), tuple(float(v) for v in d["values"]),
                       str(d["metric"]), str(d.get("source", source)))
        except (KeyError, TypeError, ValueError) as e:
            raise ModelError(f"{source}: not an accuracy table ({e})") from e


def load_report_accuracy(path: str | Path, metric: str = "accuracy", variant: str = "flexiq") -> AccuracyTable:
    """`metric` of `variant` at every ratio of a conversion report (``report.json``)."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such report")
    try:
        report = json.loads(path.read_text())
        rows = report["rows"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ModelError(f"{path}: not a flexiq_trt report.json ({e})") from e
    if report.get("calibration", {}).get("synthetic"):
        raise ModelError(f"{path}: the conversion used synthetic calibration data; its accuracy figures are "
                         "meaningless for serving decisions")
    mine = sorted((float(r["ratio"]), r.get(metric)) for r in rows if r.get("variant") == variant)
    if not mine:
        variants = sorted({r.get("variant") for r in rows})
        raise ModelError(f"{path}: no rows of variant {variant!r} (variants: {variants})")
    missing = [r for r, v in mine if v is None]
    if missing:
        present = sorted({k for r in rows for k, v in r.items() if isinstance(v, (int, float))} - {"ratio", "mac_share"})
        raise ModelError(f"{path}: metric {metric!r} missing at ratios {missing} (numeric fields: {present})")
    return AccuracyTable(tuple(r for r, _ in mine), tuple(float(v) for _, v in mine), metric,
                         f"{path} ({variant}, {report.get('eval', {}).get('samples', '?')} held-out samples)")
