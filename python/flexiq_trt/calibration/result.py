"""Typed calibration results: per tensor statistics plus the chosen thresholds and scales.

A result can be saved as JSON and loaded again, so ``flexiq_trt calibrate`` can hand its output
to later stages (and a different method can be applied later without re-running the model, since
the histograms are kept). Results of user-attached observers (``extra``) are not serialized.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from flexiq_trt.calibration.histogram import HistogramSnapshot
from flexiq_trt.calibration.observers import ChannelRange, TensorRange
from flexiq_trt.calibration.scales import scale_from_threshold
from flexiq_trt.errors import CalibrationDataError, FlexiqInternalError

FORMAT_VERSION = 1


@dataclass(frozen=True)
class TensorCalibration:
    """Statistics and thresholds of one observed tensor."""

    name: str
    range: TensorRange
    histogram: HistogramSnapshot
    method: str
    threshold_signed: float  # clipping threshold t for signed int8 codes (scale t / 127)
    threshold_unsigned: float | None  # for u8 codes (scale t / 255); None when negatives were observed
    channels: ChannelRange | None = None  # when a channel axis was requested
    extra: Mapping[str, Any] = field(default_factory=dict)  # results of user-attached observers

    def threshold(self, signed: bool = True) -> float:
        """Clipping threshold for signed (127 levels) or unsigned (255 levels) codes."""
        if signed:
            return self.threshold_signed
        if self.threshold_unsigned is None:
            raise FlexiqInternalError(
                f"tensor '{self.name}': unsigned scale requested, but negative values were observed "
                f"(min {self.range.min:g})"
            )
        return self.threshold_unsigned

    def scale(self, signed: bool = True) -> float:
        """The activation scale ``s_a``: threshold / 127 (signed) or / 255 (unsigned), as float32."""
        return scale_from_threshold(self.threshold(signed), signed)

    def to_dict(self) -> dict:
        """JSON-friendly form."""
        data = {
            "name": self.name,
            "range": _range_dict(self.range),
            "histogram": self.histogram.to_dict(),
            "method": self.method,
            "threshold_signed": self.threshold_signed,
            "threshold_unsigned": self.threshold_unsigned,
        }
        if self.channels is not None:
            data["channels"] = {
                "axis": self.channels.axis,
                "min": self.channels.min.tolist(),
                "max": self.channels.max.tolist(),
            }
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TensorCalibration:
        """Inverse of :meth:`to_dict`."""
        channels = None
        if "channels" in data:
            low = np.asarray(data["channels"]["min"], np.float64)
            high = np.asarray(data["channels"]["max"], np.float64)
            channels = ChannelRange(int(data["channels"]["axis"]), low, high, np.fmax(-low, high))
        return cls(
            name=data["name"],
            range=TensorRange(**data["range"]),
            histogram=HistogramSnapshot.from_dict(data["histogram"]),
            method=data["method"],
            threshold_signed=float(data["threshold_signed"]),
            threshold_unsigned=None
            if data["threshold_unsigned"] is None
            else float(data["threshold_unsigned"]),
            channels=channels,
        )


def _range_dict(value: TensorRange) -> dict:
    return {
        "min": value.min,
        "max": value.max,
        "absmax": value.absmax,
        "count": value.count,
        "nonfinite": value.nonfinite,
    }


@dataclass(frozen=True)
class CalibrationResult:
    """Everything calibration learned about the observed tensors."""

    tensors: Mapping[str, TensorCalibration]
    method: str
    num_samples: int
    num_batches: int
    source: str  # the data the statistics came from
    synthetic: bool  # True when any of it was random data: scales are then unreliable

    def __getitem__(self, name: str) -> TensorCalibration:
        try:
            return self.tensors[name]
        except KeyError:
            raise FlexiqInternalError(
                f"tensor '{name}' was not calibrated; observed: {sorted(self.tensors)}"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self.tensors

    def __iter__(self) -> Iterator[str]:
        return iter(self.tensors)

    def scale(self, name: str, signed: bool = True) -> float:
        """Activation scale of tensor ``name``."""
        return self[name].scale(signed)

    def to_dict(self) -> dict:
        """JSON-friendly form."""
        return {
            "format_version": FORMAT_VERSION,
            "method": self.method,
            "num_samples": self.num_samples,
            "num_batches": self.num_batches,
            "source": self.source,
            "synthetic": self.synthetic,
            "tensors": [tensor.to_dict() for tensor in self.tensors.values()],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CalibrationResult:
        """Inverse of :meth:`to_dict`."""
        tensors = [TensorCalibration.from_dict(item) for item in data["tensors"]]
        return cls(
            tensors={tensor.name: tensor for tensor in tensors},
            method=data["method"],
            num_samples=int(data["num_samples"]),
            num_batches=int(data["num_batches"]),
            source=data["source"],
            synthetic=bool(data["synthetic"]),
        )

    def save(self, path: str | Path) -> None:
        """Write as JSON."""
        Path(path).write_text(json.dumps(self.to_dict()), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> CalibrationResult:
        """Read a file written by :meth:`save`."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CalibrationDataError(f"{path}: cannot read calibration result ({exc})") from exc
        if data.get("format_version") != FORMAT_VERSION:
            raise CalibrationDataError(
                f"{path}: calibration result format {data.get('format_version')!r}, expected {FORMAT_VERSION}"
            )
        return cls.from_dict(data)
