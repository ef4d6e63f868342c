"""Search state that survives an interruption: written atomically as JSON after every generation.

Candidates are stored as the sorted flat indices of their 4-bit items, the random generator as its
bit-generator state and fitness values as Python floats (JSON round-trips them exactly), so a
resumed search continues bit for bit where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from flexiq_trt.errors import ConfigError
from flexiq_trt.select.chromosome import ItemSpace

FORMAT_VERSION = 1


@dataclass
class RunState:
    """One ladder ratio's search in progress."""

    ratio: float
    generation: int
    rng_state: dict
    population: list[list[int]]
    pop_fit: list[float]
    pop_n: int | None
    best_full: float
    best: list[int]
    guard_value: float  # held-out fitness of `guard` (calibration fitness without held-out data)
    guard: list[int]
    greedy: list[int]  # the heuristic baseline's set (greedy or range order, see `baseline`)
    greedy_full: float
    greedy_guard: float
    baseline: str = "greedy"
    guard_tests: int = 0  # times a new calibration best was tested on the held-out guard
    guard_passed: int = 0  # of which passed (each replaced the current choice)
    since_improve: int = 0
    done: bool = False


@dataclass
class SearchState:
    """The whole search: finished ladder segments, the run in progress and the log so far."""

    segments: list[list[int]] = field(default_factory=list)
    run: RunState | None = None
    log: list[dict] = field(default_factory=list)


def flags_to_list(flags: np.ndarray) -> list[int]:
    """Sorted flat indices of the True items."""
    return [int(i) for i in np.flatnonzero(flags)]


def list_to_flags(items: list[int], size: int) -> np.ndarray:
    """Inverse of `flags_to_list`."""
    flags = np.zeros(size, dtype=bool)
    flags[np.asarray(items, dtype=np.int64)] = True
    return flags


def problem_fingerprint(space: ItemSpace, ladder: tuple[float, ...], seed: int, settings: dict) -> dict:
    """What a checkpoint must match to be resumed: the items, ladder, seed and search settings."""
    digest = hashlib.sha256(space.macs.tobytes() + space.cost.tobytes() + space.offsets.tobytes()).hexdigest()
    return {"items": digest, "ladder": list(ladder), "seed": seed, "settings": settings}


def save(path: str | os.PathLike, fingerprint: dict, state: SearchState) -> None:
    """Write the checkpoint (temporary file + rename, so a crash never leaves half a file)."""
    path = Path(path)
    payload = {"version": FORMAT_VERSION, "fingerprint": fingerprint, "state": asdict(state)}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload))
    os.replace(tmp, path)


def load(path: str | os.PathLike, fingerprint: dict) -> SearchState | None:
    """The saved state, None when there is no checkpoint; ConfigError when it belongs to another search."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        payload = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"search checkpoint {path} is unreadable ({e}); delete it to start afresh") from e
    if payload.get("version") != FORMAT_VERSION or payload.get("fingerprint") != fingerprint:
        raise ConfigError(f"search checkpoint {path} belongs to a different model, ladder, seed or "
                          "search settings; delete it or choose another checkpoint path")
    raw = payload["state"]
    run = RunState(**raw["run"]) if raw["run"] is not None else None
    return SearchState(segments=raw["segments"], run=run, log=raw["log"])
