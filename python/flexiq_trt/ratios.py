"""The ratio table of a converted model: any ratio in [0, 1] -> the int32 [L] `flexiq_max_4bit_ch` vector.

This is the `<stem>.flexiq.json` sidecar (and the models' `metadata_props`): the layers, their MACs
and group sizes, the global priority order of (layer, group) items and the ladder. A ratio's 4-bit set is the shortest
prefix of the global order covering that share of the eligible MACs (docs/design.md §2), so sets are nested
and ratios between ladder points are served too.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from flexiq_trt.errors import ConfigError, ModelError
from flexiq_trt.plugin_spec import (
    FLEXIQ_ONNX_SUFFIX,
    METADATA_KEY,
    RATIO_TABLE_SUFFIX,
    SIM_ONNX_SUFFIX,
    SUPPORTED_GROUP_SIZES,
)

SIDECAR_SCHEMA = "flexiq_trt.ratio_table/1"


@dataclass
class LayerEntry:
    """One FlexiQ layer as the runtime sees it."""

    name: str
    op_type: str
    layer_index: int
    in_channels: int
    padded_channels: int
    macs: float  # eligible MACs per sample at the calibration shape
    group_macs: list[float]  # MACs of each group in permutation order
    group_size: int = 0  # this layer's G (docs/design.md §2.2); 0 here = the table's group_size


PER_LAYER = 0  # RatioTable.group_size when the layers' G differ (each LayerEntry carries its own)


def common_group_size(sizes: list[int]) -> int:
    """The table-level group size: the layers' G when they all share one, else PER_LAYER."""
    distinct = set(sizes)
    return distinct.pop() if len(distinct) == 1 else PER_LAYER


@dataclass
class RatioTable:
    """Everything needed to turn a ratio into the runtime vector, without parsing ONNX.

    `group_size` is the G every layer shares, or PER_LAYER (0) when they differ; each layer's own G
    is `layers[i].group_size` (filled in from `group_size` for tables written before G was per layer).
    """

    group_size: int
    layers: list[LayerEntry]
    order: list[tuple[int, int]]  # (layer_index, group position in that layer's permutation), global
    ladder: list[float]
    selector: str = "greedy"
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.group_size not in (PER_LAYER, *SUPPORTED_GROUP_SIZES):
            raise ConfigError(f"ratio table group_size must be {SUPPORTED_GROUP_SIZES} or {PER_LAYER} (per layer), "
                              f"got {self.group_size}")
        layers = []
        for i, le in enumerate(self.layers):
            if not le.group_size:
                if self.group_size == PER_LAYER:
                    raise ConfigError(f"layers[{i}] ({le.name}): no group_size, and the table's is per layer")
                le = replace(le, group_size=self.group_size)
            if le.group_size not in SUPPORTED_GROUP_SIZES or (self.group_size not in (PER_LAYER, le.group_size)):
                raise ConfigError(f"layers[{i}] ({le.name}): group_size {le.group_size} is not "
                                  f"{self.group_size or SUPPORTED_GROUP_SIZES}")
            if le.padded_channels % le.group_size or len(le.group_macs) != le.padded_channels // le.group_size:
                raise ConfigError(f"layers[{i}] ({le.name}): padded_channels {le.padded_channels} and "
                                  f"{len(le.group_macs)} group_macs do not fit group_size {le.group_size}")
            layers.append(le)
        self.layers = layers

    @property
    def group_size_label(self) -> str:
        """The group size for people: "32", "64", or "per layer (32/64)" with the sizes present."""
        if self.group_size != PER_LAYER:
            return str(self.group_size)
        return "per layer (" + "/".join(self.group_size_counts()) + ")"

    def group_size_counts(self) -> dict[str, int]:
        """How many layers have each G, e.g. {"32": 12, "64": 30} (for the report)."""
        sizes = [le.group_size for le in self.layers]
        return {str(g): sizes.count(g) for g in sorted(set(sizes))}

    def group_sizes(self) -> np.ndarray:
        """int32 [L]: each layer's G."""
        return np.array([le.group_size for le in self.layers], dtype=np.int32)

    @property
    def num_layers(self) -> int:
        """L, the length of the runtime vector."""
        return len(self.layers)

    def _cumulative_macs(self) -> np.ndarray:
        return np.cumsum([self.layers[li].group_macs[g] for li, g in self.order], dtype=np.float64)

    def prefix_length(self, ratio: float) -> int:
        """Shortest prefix of the global order whose MACs cover `ratio` of all eligible MACs."""
        check_ratio(ratio)
        if ratio <= 0 or not self.order:
            return 0
        cum = self._cumulative_macs()
        return int(min(np.searchsorted(cum, ratio * cum[-1] * (1 - 1e-12)) + 1, len(self.order)))

    def vector(self, ratio: float) -> np.ndarray:
        """int32 [L]: n4 (input channels in 4-bit, a multiple of the layer's G) for each layer at `ratio`."""
        counts = np.zeros(self.num_layers, dtype=np.int64)
        for li, _ in self.order[: self.prefix_length(ratio)]:
            counts[li] += 1
        return (counts * self.group_sizes()).astype(np.int32)

    def achieved_ratio(self, vector: np.ndarray) -> float:
        """The share of eligible MACs that `vector` runs in 4-bit."""
        total = sum(sum(le.group_macs) for le in self.layers)
        four = sum(sum(le.group_macs[: max(min(int(v), le.padded_channels), 0) // le.group_size])
                   for le, v in zip(self.layers, vector, strict=True))
        return float(four / total) if total else 0.0

    def ladder_table(self) -> dict[str, list[int]]:
        """n4 per layer at each ladder ratio (stored in the sidecar for readers without this module)."""
        return {f"{r:.4f}": self.vector(r).tolist() for r in self.ladder}

    def to_json(self) -> str:
        """Serialise (schema-tagged) for the sidecar and metadata_props."""
        d = asdict(self)
        d["schema"] = SIDECAR_SCHEMA
        d["num_layers"] = self.num_layers
        d["ladder_n4"] = self.ladder_table()
        return json.dumps(d, indent=1)

    @classmethod
    def from_json(cls, text: str, source: str = "<string>") -> RatioTable:
        """Parse a sidecar; errors name the source."""
        try:
            d = json.loads(text)
            if d.get("schema") != SIDECAR_SCHEMA:
                raise ValueError(f"schema {d.get('schema')!r}, expected {SIDECAR_SCHEMA!r}")
            layers = [LayerEntry(**le) for le in d["layers"]]
            return cls(d["group_size"], layers, [tuple(x) for x in d["order"]], list(d["ladder"]),
                       d.get("selector", "unknown"), d.get("extra", {}))
        except (ValueError, KeyError, TypeError, ConfigError) as e:
            raise ModelError(f"{source}: not a valid FlexiQ ratio table ({e})") from e


def check_ratio(ratio: float) -> float:
    """Reject ratios outside [0, 1] with a clear message."""
    if not isinstance(ratio, (int, float)) or not 0.0 <= float(ratio) <= 1.0 or ratio != ratio:
        raise ConfigError(f"ratio must be a number in [0, 1], got {ratio!r}")
    return float(ratio)


def load_ratio_table(model: object) -> RatioTable:
    """From a `.flexiq.json` path, either ONNX artifact (path or ModelProto), or a RatioTable."""
    if isinstance(model, RatioTable):
        return model
    if isinstance(model, (str, Path)):
        path = Path(model)
        if not path.exists():
            raise ModelError(f"{path}: no such file")
        if path.suffix == ".json":
            return RatioTable.from_json(path.read_text(), str(path))
        sidecar = _sidecar_for(path)
        if sidecar is not None:
            return RatioTable.from_json(sidecar.read_text(), str(sidecar))
        import onnx

        try:
            model = onnx.load(str(path), load_external_data=False)
        except Exception as e:  # noqa: BLE001 - protobuf raises many types
            raise ModelError(f"{path}: cannot be read as ONNX ({e})") from e
        source = str(path)
    else:
        source = "<ModelProto>"
    for prop in getattr(model, "metadata_props", []):
        if prop.key == METADATA_KEY:
            return RatioTable.from_json(prop.value, source)
    raise ModelError(f"{source}: not a FlexiQ model (no {METADATA_KEY!r} metadata and no .flexiq.json sidecar)")


def _sidecar_for(path: Path) -> Path | None:
    name = path.name
    for suffix in (SIM_ONNX_SUFFIX, FLEXIQ_ONNX_SUFFIX):
        if name.endswith(suffix):
            cand = path.with_name(name[: -len(suffix)] + RATIO_TABLE_SUFFIX)
            return cand if cand.exists() else None
    return None


def ratio_vector(model: object, ratio: float) -> np.ndarray:
    """The int32 [L] vector to feed as `flexiq_max_4bit_ch` for `ratio` (model: path, ModelProto or table)."""
    return load_ratio_table(model).vector(check_ratio(ratio))
