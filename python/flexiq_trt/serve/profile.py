"""Latency per (ratio, batch size): the one record the controller and the simulation read.

A profile is a grid: latency in milliseconds at every (ratio, batch) point measured or predicted,
interpolated linearly in between (batch sizes and ratios in between are common: the dynamic
batcher forms any batch up to its maximum, and the controller may use ratios off the grid).

File format (``flexiq_trt.latency_profile/1``, written by :meth:`LatencyProfile.to_json`)::

    {"schema": "flexiq_trt.latency_profile/1", "label": "...", "source": "...",
     "ratios": [0.0, 0.5, 1.0], "batch_sizes": [1, 8, 16],
     "latency_ms": [[...one per batch size...], ...one row per ratio...]}

:func:`load_latency_profile` also reads flat measurement/prediction records — a list, or a dict
with a ``records``/``rows``/``results``/``measurements``/``predictions`` list, of entries with a
``ratio``, a ``batch``/``batch_size`` and ``latency_ms``/``mean_ms``/``median_ms``/``p50_ms`` —
which is how a runner benchmark or a kernel performance model reports one figure per point.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from flexiq_trt.errors import ConfigError, ModelError

PROFILE_SCHEMA = "flexiq_trt.latency_profile/1"

# FlexiQ paper figures: ViT-B/16, batch 16, RTX A6000, end-to-end latency at 0/50/100% 4-bit.
PUBLISHED_VIT_B_BATCH16_MS = {0.0: 12.24, 0.5: 10.17, 1.0: 8.67}
PUBLISHED_LABEL = "published figures (FlexiQ paper, ViT-B, A6000, batch 16), batch scaling modelled"
_RECORD_LISTS = ("records", "rows", "results", "measurements", "predictions")
_BATCH_KEYS = ("batch", "batch_size")
_LATENCY_KEYS = ("latency_ms", "mean_ms", "median_ms", "p50_ms")


@dataclass(frozen=True)
class LatencyProfile:
    """Latency (ms) on a (ratio × batch size) grid, with where the figures came from."""

    ratios: tuple[float, ...]
    batch_sizes: tuple[int, ...]
    latency_ms: tuple[tuple[float, ...], ...]  # [ratio index][batch index]
    label: str
    source: str = ""

    def __post_init__(self) -> None:
        r, b = np.asarray(self.ratios, float), np.asarray(self.batch_sizes, float)
        grid = np.asarray(self.latency_ms, float)
        where = f"latency profile {self.label!r}"
        if len(r) == 0 or len(b) == 0:
            raise ConfigError(f"{where}: needs at least one ratio and one batch size")
        if np.any(np.diff(r) <= 0) or r[0] < 0 or r[-1] > 1:
            raise ConfigError(f"{where}: ratios must be strictly increasing in [0, 1], got {list(self.ratios)}")
        if np.any(np.diff(b) <= 0) or b[0] < 1:
            raise ConfigError(f"{where}: batch sizes must be strictly increasing and >= 1, got {list(self.batch_sizes)}")
        if grid.shape != (len(r), len(b)):
            raise ConfigError(f"{where}: latency_ms must be [ratios={len(r)}][batch_sizes={len(b)}], got "
                              f"shape {list(grid.shape)}")
        if not np.all(np.isfinite(grid)) or np.any(grid <= 0):
            raise ConfigError(f"{where}: every latency must be a positive number")
        object.__setattr__(self, "_memo", {})  # (ratio, batch) -> ms; the simulation asks the same points often

    @property
    def max_batch(self) -> int:
        """The largest batch the profile covers (larger batches are not extrapolated)."""
        return self.batch_sizes[-1]

    def latency(self, ratio: float, batch: int) -> float:
        """Predicted latency (ms) of one batch: bilinear in (ratio, batch) inside the grid."""
        memo = self._memo  # type: ignore[attr-defined]
        key = (ratio, batch)
        if key in memo:
            return memo[key]
        if not 1 <= batch <= self.max_batch:
            raise ConfigError(f"latency profile {self.label!r}: batch {batch} outside 1..{self.max_batch}")
        if not self.ratios[0] - 1e-9 <= ratio <= self.ratios[-1] + 1e-9:
            raise ConfigError(f"latency profile {self.label!r}: ratio {ratio} outside "
                              f"[{self.ratios[0]}, {self.ratios[-1]}]")
        grid = np.asarray(self.latency_ms, float)
        # Batch sizes below the smallest profiled one take that one's figure (no extrapolation).
        per_ratio = [float(np.interp(batch, self.batch_sizes, row)) for row in grid]
        memo[key] = value = float(np.interp(ratio, self.ratios, per_ratio))
        return value

    def to_json(self) -> str:
        """Serialise in the schema :func:`load_latency_profile` reads."""
        return json.dumps({"schema": PROFILE_SCHEMA, "label": self.label, "source": self.source,
                           "ratios": list(self.ratios), "batch_sizes": list(self.batch_sizes),
                           "latency_ms": [list(row) for row in self.latency_ms]}, indent=1)


def published_profile(max_batch: int = 16, overhead_ms: float = 1.5) -> LatencyProfile:
    """The paper's batch-16 figures, scaled to other batches by ``overhead + batch × per-sample cost``.

    Only batch 16 is published, so the batch dependence is a model: a fixed per-batch cost
    (``overhead_ms``, an assumption: launches and the non-GEMM work that does not grow with the
    batch) plus a per-sample cost fitted so that batch 16 matches the published figure exactly.
    """
    if not 0 <= overhead_ms < min(PUBLISHED_VIT_B_BATCH16_MS.values()):
        raise ConfigError(f"overhead_ms must be in [0, {min(PUBLISHED_VIT_B_BATCH16_MS.values())}), got {overhead_ms}")
    if max_batch < 1:
        raise ConfigError(f"max_batch must be >= 1, got {max_batch}")
    ratios = tuple(sorted(PUBLISHED_VIT_B_BATCH16_MS))
    batches = tuple(range(1, max_batch + 1))
    grid = tuple(tuple(overhead_ms + (PUBLISHED_VIT_B_BATCH16_MS[r] - overhead_ms) * b / 16 for b in batches)
                 for r in ratios)
    return LatencyProfile(ratios, batches, grid, PUBLISHED_LABEL,
                          f"12.24/10.17/8.67 ms at 0/50/100% for batch 16; per-batch overhead {overhead_ms} ms "
                          "(assumed) + per-sample cost fitted to batch 16")


def profile_from_records(records: list[dict], label: str, source: str = "") -> LatencyProfile:
    """Build the grid from flat (ratio, batch, latency) records; every grid point must be present."""
    points: dict[tuple[float, int], float] = {}
    for i, rec in enumerate(records):
        where = f"{source or label}: record {i}"
        if not isinstance(rec, dict):
            raise ModelError(f"{where}: expected an object, got {type(rec).__name__}")
        batch_key = next((k for k in _BATCH_KEYS if k in rec), None)
        lat_key = next((k for k in _LATENCY_KEYS if k in rec), None)
        if "ratio" not in rec or batch_key is None or lat_key is None:
            raise ModelError(f"{where}: needs 'ratio', one of {list(_BATCH_KEYS)} and one of {list(_LATENCY_KEYS)} "
                             f"(has {sorted(rec)})")
        try:
            key = (round(float(rec["ratio"]), 6), int(rec[batch_key]))
            points[key] = float(rec[lat_key])
        except (TypeError, ValueError) as e:
            raise ModelError(f"{where}: {e}") from e
    if not points:
        raise ModelError(f"{source or label}: no latency records")
    ratios = tuple(sorted({r for r, _ in points}))
    batches = tuple(sorted({b for _, b in points}))
    missing = [(r, b) for r in ratios for b in batches if (r, b) not in points]
    if missing:
        raise ModelError(f"{source or label}: the records do not fill the ratio × batch grid; missing "
                         f"(ratio, batch) {missing[:5]}{' …' if len(missing) > 5 else ''}")
    grid = tuple(tuple(points[(r, b)] for b in batches) for r in ratios)
    return LatencyProfile(ratios, batches, grid, label, source)


def load_latency_profile(path: str | Path) -> LatencyProfile:
    """Read a profile file: this module's schema, or flat records from a benchmark or performance model."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such latency profile")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ModelError(f"{path}: not JSON ({e})") from e
    if isinstance(data, dict) and data.get("schema") == PROFILE_SCHEMA:
        try:
            return LatencyProfile(tuple(float(r) for r in data["ratios"]), tuple(int(b) for b in data["batch_sizes"]),
                                  tuple(tuple(float(x) for x in row) for row in data["latency_ms"]),
                                  str(data.get("label", path.name)), str(data.get("source", str(path))))
        except (KeyError, TypeError, ValueError) as e:
            raise ModelError(f"{path}: invalid {PROFILE_SCHEMA} profile ({e})") from e
    records = data
    label = path.stem
    if isinstance(data, dict):
        label = str(data.get("label", data.get("name", label)))
        records = next((data[k] for k in _RECORD_LISTS if isinstance(data.get(k), list)), None)
        if records is None:
            raise ModelError(f"{path}: neither a {PROFILE_SCHEMA} profile nor a list of latency records "
                             f"(looked for {list(_RECORD_LISTS)})")
    if not isinstance(records, list):
        raise ModelError(f"{path}: expected a list of latency records")
    return profile_from_records(records, label, str(path))
