"""The one place that says which kernels are hot and what tile shapes they use, read from the repository.

* Hot kernel names: `HOT_KERNELS` of scripts/check_sass.py (the SASS gate the kernel owners keep
  current). Of those, the ones whose SASS holds an IMMA are the tensor-core GEMM kernels; a kernel
  with a 4-bit IMMA is the int4 backend, one with only 8-bit IMMAs the int8 backend.
* CTA tile, threads and stages: the `constexpr` block of plugins/kernels/flexiqTileConfig.cuh
  (kCtaM, kCtaN, kThreads, kStages). The warp tile and the K covered per step are read from the
  SASS itself (accumulator registers and MMA shapes), so a new tile shape needs no edit here.
A kernel rewrite that renames these constants or kernels needs an edit in this file only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from . import sass

REPO = Path(__file__).resolve().parents[2]
TILE_HEADER = REPO / "plugins" / "kernels" / "flexiqTileConfig.cuh"
DEFAULT_LIBRARY = REPO / "build" / "plugins" / "kernels" / "libflexiq_kernels_capi.so"


def hot_kernel_names() -> tuple[str, ...]:
    """HOT_KERNELS of scripts/check_sass.py."""
    return tuple(sass.check_sass_module().HOT_KERNELS)


@dataclass(frozen=True)
class TileConfig:
    """CTA tile of the mixed GEMM (outputs M x N per CTA), threads per CTA and pipeline stages."""

    cta_m: int
    cta_n: int
    threads: int
    stages: int
    source: str
    warp_m: int = 0  # warp tile (0: unknown, then read from the SASS accumulators)
    warp_n: int = 0

    @property
    def warps(self) -> int:
        return self.threads // 32


_CONSTEXPR = re.compile(r"constexpr\s+(?:int32_t|int|unsigned|uint32_t)\s+(k\w+)\s*=\s*([^;]+);")


def parse_constexprs(text: str) -> dict[str, int]:
    """Integer `constexpr` constants of a header, each expression evaluated over the earlier ones."""
    values: dict[str, int] = {}
    for name, expr in _CONSTEXPR.findall(re.sub(r"//[^\n]*", "", text)):
        expr = expr.strip()
        for known in sorted(values, key=len, reverse=True):
            expr = re.sub(rf"\b{known}\b", str(values[known]), expr)
        if re.fullmatch(r"[\d\s+\-*/()]+", expr):
            values[name] = int(eval(expr.replace("/", "//"), {"__builtins__": {}}))  # digits and + - * / only
    return values


def tile_config(header: Path = TILE_HEADER) -> TileConfig:
    """kCtaM/kCtaN/kThreads/kStages from flexiqTileConfig.cuh; a missing one is an error naming the file."""
    values = parse_constexprs(header.read_text())
    missing = [k for k in ("kCtaM", "kCtaN", "kThreads") if k not in values]
    if missing:
        raise KeyError(f"{header}: constants {missing} not found; update benchmarks/perfmodel/kernels.py "
                       "to the new tile configuration")
    return TileConfig(values["kCtaM"], values["kCtaN"], values["kThreads"], values.get("kStages", 1),
                      str(header.relative_to(REPO)) if header.is_relative_to(REPO) else str(header),
                      values.get("kWarpM", 0), values.get("kWarpN", 0))


@dataclass
class GemmKernel:
    """One tensor-core kernel instantiation and its K-steps (main-loop instruction mixes)."""

    function: str
    family: str  # the kernel's base name, e.g. flexiqInt4MmaKernel or flexiqPipeInt4Kernel
    backend: str  # "int4" (4-bit groups on int4 MMA) or "int8" (4-bit groups as int8 MMA)
    tile: TileConfig
    group_size: int | None  # G this instantiation is specialised for (None: any G)
    resources: sass.Resources | None
    step8: sass.StepPath
    step4: dict[int, sass.StepPath] = field(default_factory=dict)  # G -> the step of one 4-bit group
    shortest: dict[tuple[int, str], sass.StepPath] = field(default_factory=dict)  # (loop, MMA kind) -> its shortest path

    def int4_steps_per_group(self, group_size: int) -> float:
        """Loop iterations per 4-bit channel group (K-tile): 1 when one iteration is one K-tile, 2 when an
        atom covers half a group (first-version kernels at G = 64), 1/3 when the loop body is unrolled over
        three K-tiles (the pipelined kernels' rounds of kStages tiles)."""
        return steps_per_group(self.step4[group_size], group_size)

    def int8_steps_per_group(self, group_size: int) -> float:
        """Loop iterations per 8-bit channel group (as int4_steps_per_group)."""
        return steps_per_group(self.step8, group_size)

    def serves(self, group_size: int) -> bool:
        return group_size in self.step4 and self.group_size in (None, group_size)


def steps_per_group(step: sass.StepPath, group_size: int) -> float:
    """Iterations of `step`'s loop per channel group of G channels: G / (channels one iteration covers).
    A loop body that covers several K-tiles (k = kStages x G, an unrolled steady state) is priced per
    K-tile as body / tiles."""
    return group_size / step.k_per_step if step.k_per_step else 1.0


def tiles_per_step(step: sass.StepPath, group_size: int | None) -> float:
    """K-tiles (channel groups) one iteration covers: 1 / steps_per_group; 1 for a G-agnostic kernel's loop."""
    return step.k_per_step / group_size if group_size and step.k_per_step else 1.0


def _covers(step: sass.StepPath, group_size: int) -> bool:
    """A loop iteration covers whole K-tiles of G channels (k = n x G) or whole fractions of one (G = n x k)."""
    k = step.k_per_step
    return bool(k) and (k % group_size == 0 or group_size % k == 0)


# The int8 backend's 4-bit loop, in libraries built before the effective weights (docs/performance.md, "Int8
# backend: effective weights on the device"): their pipelined kernel built B fragments from the packed 4-bit
# weights with ld.shared.u16, which no 8-bit loop does. Today's int8 kernel copies ready-made effective
# weights and runs 4-bit K-tiles through its 8-bit loop, so nothing matches and the 8-bit step prices both.
_EXPANDS_W4 = "LDS.U16"


def _expands_w4(step: sass.StepPath) -> bool:
    return any(i.opcode.startswith(_EXPANDS_W4) for i in step.instrs)


_FAMILY = re.compile(r"\d+(flexiq[A-Za-z0-9]*Kernel)I")
_TILE_ARGS = re.compile(r"(?:PipeTile|Tile)ILi(\d+)ELi(\d+)ELi(\d+)ELi(\d+)EE")


def family_of(name: str) -> str:
    """flexiqInt4MmaKernel from a mangled instantiation name (the name itself when unrecognised)."""
    m = _FAMILY.search(name)
    return m.group(1) if m else name


def short_name(name: str) -> str:
    """Family<tile,G> instead of the whole mangled name."""
    tile = _TILE_ARGS.search(name)
    g = _group_of(name)
    extra = ",".join(x for x in (f"{tile.group(1)}x{tile.group(2)}" if tile else "", f"G{g}" if g else "") if x)
    return family_of(name) + (f"<{extra}>" if extra else "")


def _group_of(name: str) -> int | None:
    """The G template argument of a G-specialised kernel (an int 32 or 64 after the tile type)."""
    tail = _TILE_ARGS.split(name)[-1] if _TILE_ARGS.search(name) else ""
    m = re.search(r"Li(32|64)E", tail)
    return int(m.group(1)) if m else None


def _tile_of(name: str, default: TileConfig) -> TileConfig:
    """CTA tile from PipeTile<M, N, warpsM, warpsN> template arguments, else the header's."""
    m = _TILE_ARGS.search(name)
    if not m:
        return default
    cta_m, cta_n, wm, wn = (int(x) for x in m.groups())
    return TileConfig(cta_m, cta_n, 32 * wm * wn, default.stages, "template arguments", cta_m // wm, cta_n // wn)


def _is_8bit(kind: str) -> bool:
    return bool(re.search(r"\.[SU]8\.S8", kind))


def _pick(steps: list[sass.StepPath], policy: str) -> sass.StepPath | None:
    """The main loop's step under `policy`. The main loop is chosen on the longest paths, whatever the policy:
    the tightest loop (fewest instructions per MMA) is the main loop, prologue copies of it and phase
    tails (which issue the next phase's copies, or none on their shortest path) lose. `shortest` then
    prices that same loop's shortest path, not a tail loop's."""
    longest = [s for s in steps if s.policy == "longest"]
    if not longest:
        return None
    main = min(longest, key=lambda s: len(s.instrs) / max(1, len(s.mmas)))
    if policy == "longest":
        return main
    return next((s for s in steps if s.policy == policy and (s.loop_header, s.kind) == (main.loop_header, main.kind)),
                main)


def step4_for(four: list[sass.StepPath], group_size: int, policy: str) -> sass.StepPath | None:
    """The int4 backend's 4-bit main loop for G: the tightest loop (instructions per MMA) whose iteration
    covers whole K-tiles of G channels (one, or a round of several), else whole fractions of one (an
    atom of half a group, two iterations per K-tile)."""
    whole = [s for s in four if s.k_per_step and s.k_per_step % group_size == 0]
    return _pick(whole or [s for s in four if _covers(s, group_size)], policy)


def _score(name: str, signed: bool, fp16: bool) -> int:
    m = re.search(r"Lb([01])E", name)
    score = 1 if m and (m.group(1) == "1") == signed else 0
    return score + (1 if ("6__half" in name) == fp16 else 0)


def gemm_kernels(library: Path, arch: str, policy: str = "longest", signed: bool = True,
                 fp16: bool = True) -> tuple[list[GemmKernel], list[str]]:
    """Every tensor-core hot kernel of `library` for `arch` (one per family, tile and G), and notes.

    Of the signed/unsigned and FP32/FP16 variants of one (family, tile, G), the one matching `signed`
    and `fp16` is analysed (the main loop does not depend on the output type).
    """
    funcs, res = sass.disassemble(library, arch)
    hot = hot_kernel_names()
    notes: list[str] = []
    groups: dict[tuple, list[str]] = {}
    for name, instrs in funcs.items():
        kinds = {i.mma_kind for i in instrs if i.mma_kind}
        if not kinds:
            continue
        if not any(h in name for h in hot):
            notes.append(f"tensor-core kernel not in HOT_KERNELS of scripts/check_sass.py (ignored): {short_name(name)}")
            continue
        tile = _TILE_ARGS.search(name)
        groups.setdefault((family_of(name), tile.groups() if tile else None, _group_of(name)), []).append(name)
    default_tile = tile_config()
    out: list[GemmKernel] = []
    for (family, _, g), names in sorted(groups.items(), key=lambda kv: str(kv[0])):
        name = max(sorted(names), key=lambda n: _score(n, signed, fp16))
        tile = _tile_of(name, default_tile)
        steps = sass.step_paths(name, funcs[name])
        for st in steps:
            st.warp_area = tile.warp_m * tile.warp_n or None
        eight = [s for s in steps if _is_8bit(s.kind)]
        expand = [s for s in eight if _expands_w4(s)]
        step8 = _pick([s for s in eight if not _expands_w4(s)] or eight, policy)
        if step8 is None:
            notes.append(f"{short_name(name)}: no loop with an 8-bit IMMA found")
            continue
        four = [s for s in steps if not _is_8bit(s.kind)]
        backend = "int4" if four else "int8"
        kern = GemmKernel(name, family, backend, tile, g, res.get(name), step8)
        for gs in ((g,) if g else (32, 64)):
            if backend == "int8":  # 4-bit groups: the loop that expands w4 * step_w, else the same int8 loop
                kern.step4[gs] = _pick([s for s in expand if _covers(s, gs)], policy) or step8
                continue
            best = step4_for(four, gs, policy)
            if best is not None:
                kern.step4[gs] = best
        chosen = {(st.loop_header, st.kind) for st in [step8, *kern.step4.values()]}
        kern.shortest = {(st.loop_header, st.kind): st for st in steps
                         if st.policy == "shortest" and (st.loop_header, st.kind) in chosen}
        out.append(kern)
    return out, notes


# The layers the runner moves to the int8 backend on an arch whose own backend is int4: (arch, G). A mirror of
# backendRule in plugins/kernels/flexiqLauncher.cpp (sm_80 exactly, G = 32: the int4 path PREDICTED 0.84x
# the int8 path, the int8 backend 1.0x; docs/performance.md), so the medians price what the runner runs;
# tests/unit/kernels/test_backend_rule_mirror.py checks it against the library.
INT8_BACKEND_LAYERS = frozenset({("sm_80", 32)})


def runner_backend(arch: str | None, group_size: int) -> str:
    """"int8" or "int4": the backend the runner picks for a layer of G on `arch` (sm_80/86/89, the archs the
    model has rates for; all native int4). None: the device's backend, int4."""
    return "int8" if (arch, group_size) in INT8_BACKEND_LAYERS else "int4"


def choose(kerns: list[GemmKernel], group_size: int, family: str | None = None,
           arch: str | None = None) -> list[GemmKernel]:
    """The kernels (all tiles) that serve G with the backend the runner picks on `arch` (runner_backend:
    int4, except int8 on sm_80 at G = 32; arch None: int4): the families containing `family` if given (of
    that backend where some are, else of any), else the pipelined family of that backend when the library
    has one, else its first family."""
    backend = runner_backend(arch, group_size)
    if family:
        matches = [k for k in kerns if k.serves(group_size) and family in k.family]
        return [k for k in matches if k.backend == backend] or matches
    cands = [k for k in kerns if k.backend == backend and k.serves(group_size)]
    fams = sorted({k.family for k in cands}, key=lambda f: (0 if "Pipe" in f else 1, f))
    return [k for k in cands if fams and k.family == fams[0]]
