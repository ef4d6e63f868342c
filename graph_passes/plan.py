"""The conversion plan: per candidate node, "replace with FlexiQConv/FlexiQGemm" or "keep, because ...".

`convert --plan-only` writes it as JSON for review; `convert --plan plan.json` applies an edited one:
a node switched to "keep" is kept. A node cannot be switched to "replace" unless intake found it
eligible (the reason it was kept still holds).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from flexiq_trt.errors import ConfigError

PLAN_FORMAT = 1
REPLACE, KEEP = "replace", "keep"


@dataclass
class PlanEntry:
    """One candidate node's decision."""

    node: str
    op_type: str
    action: str  # "replace" | "keep"
    plugin_op: str | None = None
    reason: str = ""
    macs: int = 0


@dataclass
class ConversionPlan:
    """All decisions for one model and group-size setting (QuantConfig.group_size: 32, 64 or 0 = auto per layer)."""

    group_size: int
    entries: list[PlanEntry] = field(default_factory=list)
    model: str = ""

    @classmethod
    def from_layers(cls, eligible: list, skipped: list, group_size: int, model: str = "") -> ConversionPlan:
        """Plan replacing every eligible layer and keeping every skipped one."""
        entries = [PlanEntry(e.name, e.op_type, REPLACE, e.plugin_op, "eligible", e.macs) for e in eligible]
        entries += [PlanEntry(s.name, s.op_type, KEEP, None, s.reason) for s in skipped]
        return cls(group_size, entries, model)

    def replaced(self) -> set[str]:
        """Names of the nodes to replace."""
        return {e.node for e in self.entries if e.action == REPLACE}

    def to_json(self) -> str:
        """Stable, human-editable JSON."""
        return json.dumps({"format": PLAN_FORMAT, "model": self.model, "group_size": self.group_size,
                           "layers": [asdict(e) for e in self.entries]}, indent=2)

    def save(self, path: str | Path) -> None:
        """Write the plan as JSON."""
        Path(path).write_text(self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | Path) -> ConversionPlan:
        """Read a plan, checking its structure; errors name the file and entry."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ConfigError(f"{path}: cannot read conversion plan: {e}") from e
        if not isinstance(data, dict) or data.get("format") != PLAN_FORMAT or "layers" not in data:
            raise ConfigError(f"{path}: not a flexiq_trt conversion plan (format {PLAN_FORMAT} expected)")
        entries = []
        for i, raw in enumerate(data["layers"]):
            try:
                entry = PlanEntry(**raw)
            except TypeError as e:
                raise ConfigError(f"{path}: layers[{i}]: {e}") from e
            if entry.action not in (REPLACE, KEEP):
                raise ConfigError(f"{path}: layers[{i}] ({entry.node}): action must be "
                                  f"{REPLACE!r} or {KEEP!r}, got {entry.action!r}")
            entries.append(entry)
        return cls(int(data.get("group_size", 0)), entries, str(data.get("model", "")))

    def select(self, eligible: list, group_size: int) -> list:
        """The eligible layers this plan replaces; a plan asking for something impossible is an error."""
        if self.group_size != group_size:
            raise ConfigError(f"plan was made for group size {_setting(self.group_size)}, converting with "
                              f"{_setting(group_size)} (eligibility depends on it: pass --group-size "
                              f"{self.group_size} or make a new plan)")
        by_name = {e.name: e for e in eligible}
        for entry in self.entries:
            if entry.action == REPLACE and entry.node not in by_name:
                raise ConfigError(f"plan asks to replace node {entry.node!r}, which is not eligible "
                                  "(or not in this model)")
        chosen = self.replaced()
        return [e for e in eligible if e.name in chosen]

    def apply(self, eligible: list, skipped: list, group_size: int) -> tuple[list, list]:
        """(layers to replace, layers kept): eligible layers the plan keeps join the skipped ones."""
        from flexiq_trt.intake import SkippedLayer

        chosen = self.select(eligible, group_size)
        names = {e.name for e in chosen}
        kept = [SkippedLayer(e.name, e.op_type, "kept by the user's plan") for e in eligible if e.name not in names]
        return chosen, list(skipped) + kept


def _setting(group_size: int) -> str:
    """A group-size setting for messages."""
    return "auto (0, G per layer)" if group_size == 0 else str(group_size)
