"""SASS of a kernel library, parsed into functions, basic blocks, loops and main-loop instruction mixes.

The main loop of a tensor-core kernel is found without a GPU: split each function into basic blocks,
take every loop (a backward branch), and, for each MMA opcode in the loop's own blocks (nested loops
excluded), the path from the loop header to its back edge that passes through that MMA and through
no other MMA kind. That path is one "K-step" of one warp (one iteration of the loop), and its
instruction mix is what the model charges per step. Where data-dependent branches leave several
such paths, both the longest (the default, conservative) and the shortest are kept.
cuobjdump comes from PATH or the nvidia-cuda-cuobjdump wheel (and needs nvdisasm beside it).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

_INSTR = re.compile(r"/\*([0-9a-f]{4,})\*/\s+((?:@!?U?P\w+\s+)?[A-Z][^;]*);")
_PRED = re.compile(r"^@(!?U?P\w+)\s+")
_TARGET = re.compile(r"0x([0-9a-f]+)\s*$")


class SassError(RuntimeError):
    """cuobjdump is missing or failed, or the library has no SASS for the requested arch."""


@dataclass(frozen=True)
class Instr:
    """One SASS instruction: address, guard predicate (or ""), full opcode with modifiers, operands."""

    addr: int
    pred: str
    opcode: str
    operands: str

    @property
    def op(self) -> str:
        """Base opcode without modifiers (IMMA, LDG, ...)."""
        return self.opcode.split(".")[0]

    @property
    def branch_target(self) -> int | None:
        """Jump target of BRA/CALL.REL (nvcc uses CALL.REL.NOINC for loop exits), else None."""
        if self.op not in ("BRA", "CALL", "BRX", "JMP"):
            return None
        m = _TARGET.search(self.operands)
        return int(m.group(1), 16) if m else None

    @property
    def unconditional(self) -> bool:
        """True for an unpredicated jump (no fall-through); `BRA !P3, X` still falls through."""
        return self.pred in ("", "PT") and "," not in self.operands.split("0x")[0]

    @property
    def mma_kind(self) -> str | None:
        """`IMMA.16832.S8.S8`-style key of a tensor instruction, else None."""
        if self.op not in ("IMMA", "HMMA"):
            return None
        return ".".join(p for p in self.opcode.split(".") if p not in ("SAT",))

    @property
    def mma_macs(self) -> int:
        """Multiply-adds of one MMA (m * n * k from the shape digits, e.g. 16832 -> 16 * 8 * 32)."""
        m = re.match(r"[IH]MMA\.(\d+)", self.opcode)
        if not m:
            return 0
        digits = m.group(1)
        mm, nn, kk = int(digits[:2]), int(digits[2]), int(digits[3:])
        return mm * nn * kk

    @property
    def mma_int4(self) -> bool:
        """True for a 4-bit integer MMA (S4/U4 operands)."""
        return self.op == "IMMA" and bool(re.search(r"\.[SU]4\b", self.opcode))

    @property
    def accumulator(self) -> str:
        """Destination register of an MMA (one 16 x 8 C tile)."""
        return self.operands.split(",")[0].strip()


def parse_instr(addr: int, text: str) -> Instr:
    """Split `@!P0 IMMA.16832.S8.S8 R0, R4, R8, R0` into its parts."""
    pred = ""
    m = _PRED.match(text)
    if m:
        pred = m.group(1)
        text = text[m.end():]
    head, _, rest = text.partition(" ")
    return Instr(addr, pred, head, rest.strip())


def parse_functions(sass: str) -> dict[str, list[Instr]]:
    """`cuobjdump -sass` text -> {mangled function name: instructions in address order}."""
    out: dict[str, list[Instr]] = {}
    for chunk in re.split(r"\n\s*Function : ", "\n" + sass)[1:]:
        name = chunk.split("\n", 1)[0].strip()
        out[name] = [parse_instr(int(a, 16), t.strip()) for a, t in _INSTR.findall(chunk)]
    return out


@dataclass
class Block:
    """A basic block: instructions and successor block start addresses."""

    start: int
    instrs: list[Instr]
    succs: list[int] = field(default_factory=list)


def basic_blocks(instrs: list[Instr]) -> dict[int, Block]:
    """Split a function at branch targets and after branches/EXIT; fill successors."""
    if not instrs:
        return {}
    addrs = [i.addr for i in instrs]
    leaders = {addrs[0]}
    for k, ins in enumerate(instrs):
        tgt = ins.branch_target
        if tgt is not None:
            leaders.add(tgt)
        if (tgt is not None or ins.op in ("EXIT", "RET")) and k + 1 < len(instrs):
            leaders.add(addrs[k + 1])
    blocks: dict[int, Block] = {}
    cur: Block | None = None
    for ins in instrs:
        if ins.addr in leaders:
            cur = blocks.setdefault(ins.addr, Block(ins.addr, []))
        cur.instrs.append(ins)
    starts = sorted(blocks)
    for k, s in enumerate(starts):
        last = blocks[s].instrs[-1]
        nxt = starts[k + 1] if k + 1 < len(starts) else None
        tgt = last.branch_target
        if tgt is not None:
            if tgt in blocks:
                blocks[s].succs.append(tgt)
            if not last.unconditional and nxt is not None:
                blocks[s].succs.append(nxt)
        elif last.op in ("EXIT", "RET") and last.pred in ("", "PT"):
            pass
        elif nxt is not None:
            blocks[s].succs.append(nxt)
    return blocks


@dataclass
class Loop:
    """A loop: header block, back-edge (latch) blocks and the address range [header, last latch]."""

    header: int
    latches: set[int]
    end: int

    def contains(self, addr: int) -> bool:
        return self.header <= addr <= self.end


def find_loops(blocks: dict[int, Block]) -> list[Loop]:
    """Loops from backward edges, one per header (nvcc lays loop bodies out contiguously)."""
    by_header: dict[int, Loop] = {}
    for s, b in blocks.items():
        for t in b.succs:
            if t <= s:
                lp = by_header.setdefault(t, Loop(t, set(), s))
                lp.latches.add(s)
                lp.end = max(lp.end, b.instrs[-1].addr)
    return sorted(by_header.values(), key=lambda lp: lp.header)


@dataclass
class StepPath:
    """The instruction mix of one K-step: one warp's pass through a loop body via one MMA kind."""

    function: str
    loop_header: int
    kind: str
    instrs: list[Instr]
    paths: int  # how many distinct header->latch paths carry this MMA kind (1: branch-free)
    policy: str  # "longest" or "shortest" when paths > 1
    warp_area: int | None = None  # warp-tile outputs from the tile configuration, when known

    @property
    def opcodes(self) -> Counter:
        return Counter(i.op for i in self.instrs)

    @property
    def mmas(self) -> list[Instr]:
        return [i for i in self.instrs if i.mma_kind]

    @property
    def macs(self) -> int:
        """Multiply-adds one warp does in one step."""
        return sum(i.mma_macs for i in self.mmas)

    @property
    def warp_tile_area(self) -> int:
        """Outputs of the warp tile: distinct accumulator registers x 16 x 8."""
        return len({i.accumulator for i in self.mmas}) * 128

    @property
    def k_per_step(self) -> int:
        """Reduction length one step covers (MACs / warp-tile outputs; the tile configuration's warp tile
        when set, since 4-bit partial tiles may reuse accumulator registers)."""
        area = self.warp_area or self.warp_tile_area
        return self.macs // area if area else 0


def _loop_own_blocks(loop: Loop, loops: list[Loop], blocks: dict[int, Block]) -> list[int]:
    inner = [lp for lp in loops if lp is not loop and loop.contains(lp.header) and lp.end <= loop.end
             and (lp.header, lp.end) != (loop.header, loop.end)]
    return [s for s in sorted(blocks) if loop.contains(s) and not any(lp.contains(s) for lp in inner)]


def _kinds(block: Block) -> set[str]:
    return {i.mma_kind for i in block.instrs if i.mma_kind}


def step_paths(name: str, instrs: list[Instr], max_paths: int = 1 << 20) -> list[StepPath]:
    """Every (loop, MMA kind) K-step of one function, with the longest and the shortest path."""
    blocks = basic_blocks(instrs)
    loops = find_loops(blocks)
    found: list[StepPath] = []
    for loop in loops:
        own = _loop_own_blocks(loop, loops, blocks)
        own_set = set(own)
        kinds = set().union(*(_kinds(blocks[s]) for s in own)) if own else set()
        for kind in sorted(kinds):
            allowed = [s for s in own if _kinds(blocks[s]) <= {kind}]
            for policy in ("longest", "shortest"):
                path, count = _best_path(blocks, allowed, own_set, loop, kind, policy, max_paths)
                if path:
                    found.append(StepPath(name, loop.header, kind,
                                          [i for s in path for i in blocks[s].instrs], count, policy))
    return found


def _best_path(blocks: dict[int, Block], allowed: list[int], own: set[int], loop: Loop, kind: str,
               policy: str, max_paths: int) -> tuple[list[int], int]:
    """DP over the forward edges of the loop body: best header->latch path through a `kind` block."""
    allowed_set = set(allowed)
    if loop.header not in allowed_set:
        return [], 0
    better = (lambda a, b: a > b) if policy == "longest" else (lambda a, b: a < b)
    # state (block, has_kind) -> (cost, predecessor state); count of paths for reporting
    best: dict[tuple[int, bool], tuple[int, tuple[int, bool] | None]] = {}
    npaths: dict[tuple[int, bool], int] = {}
    h_has = kind in _kinds(blocks[loop.header])
    best[(loop.header, h_has)] = (len(blocks[loop.header].instrs), None)
    npaths[(loop.header, h_has)] = 1
    for s in allowed:  # address order is a topological order of the forward edges
        for has in (False, True):
            st = (s, has)
            if st not in best:
                continue
            cost = best[st][0]
            for t in blocks[s].succs:
                if t <= s or t not in allowed_set or t not in own:
                    continue
                nt = (t, has or kind in _kinds(blocks[t]))
                c = cost + len(blocks[t].instrs)
                npaths[nt] = min(max_paths, npaths.get(nt, 0) + npaths[st])
                if nt not in best or better(c, best[nt][0]):
                    best[nt] = (c, st)
    ends = [(s, True) for s in loop.latches if (s, True) in best]
    if not ends:
        return [], 0
    end = ends[0]
    for e in ends[1:]:
        if better(best[e][0], best[end][0]):
            end = e
    path, st = [], end
    while st is not None:
        path.append(st[0])
        st = best[st][1]
    return path[::-1], sum(npaths[e] for e in ends)


# ---- running cuobjdump -----------------------------------------------------------------------------

def find_cuobjdump() -> str | None:
    """cuobjdump on PATH, else the one the nvidia-cuda-cuobjdump wheel installs next to this Python."""
    found = shutil.which("cuobjdump")
    if found:
        return found
    for base in {Path(sys.prefix), Path(sys.base_prefix)}:
        for cand in sorted(base.glob("lib/python*/site-packages/nvidia/*/bin/cuobjdump")):
            return str(cand)
    return None


def _run(cmd: list[str]) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SassError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()[-400:]} "
                        "(cuobjdump -sass needs nvdisasm beside it: pip install nvidia-cuda-nvdisasm)")
    return proc.stdout


@dataclass(frozen=True)
class Resources:
    """`cuobjdump -res-usage` figures of one function."""

    regs: int
    shared: int
    stack: int
    local: int


CHECK_SASS = Path(__file__).resolve().parents[2] / "scripts" / "check_sass.py"


def check_sass_module():
    """scripts/check_sass.py as a module: the SASS gate's kernel list and its cuobjdump parsers."""
    import importlib.util

    if "_flexiq_check_sass" not in sys.modules:
        spec = importlib.util.spec_from_file_location("_flexiq_check_sass", CHECK_SASS)
        mod = importlib.util.module_from_spec(spec)
        sys.modules["_flexiq_check_sass"] = mod  # its dataclasses resolve their module by name
        spec.loader.exec_module(mod)
    return sys.modules["_flexiq_check_sass"]


def parse_res_usage(text: str) -> dict[str, Resources]:
    """{function: Resources} from `cuobjdump -res-usage` output (check_sass.py's parser)."""
    table = check_sass_module().res_usage_table(text)
    return {name: Resources(u["regs"], u["shared"], u["stack"], u["local"])
            for name, u in table.items() if None not in u.values()}


def disassemble(library: Path, arch: str, cuobjdump: str | None = None) -> tuple[dict[str, list[Instr]],
                                                                                  dict[str, Resources]]:
    """Functions and resource usage of `library` for `arch` (e.g. sm_86)."""
    tool = cuobjdump or find_cuobjdump()
    if tool is None:
        raise SassError("cuobjdump not found (pip install nvidia-cuda-cuobjdump nvidia-cuda-nvdisasm)")
    if not Path(library).is_file():
        raise SassError(f"{library} does not exist (build the kernels: bash scripts/build_plugins.sh)")
    funcs = parse_functions(_cached(library, arch, "sass", lambda: _run([tool, "-sass", "-arch", arch, str(library)])))
    if not funcs:
        raise SassError(f"{library} holds no SASS for {arch}")
    res = parse_res_usage(_cached(library, arch, "res",
                                  lambda: _run([tool, "-res-usage", "-arch", arch, str(library)])))
    return funcs, res


def _cached(library: Path, arch: str, what: str, produce) -> str:
    """cuobjdump output kept in <library dir>/.perfmodel/, keyed by the library's size and mtime
    (disassembling the whole library takes tens of seconds on a busy 2-core machine)."""
    st = Path(library).stat()
    cache = Path(library).parent / ".perfmodel" / f"{Path(library).name}.{arch}.{st.st_size}.{st.st_mtime_ns}.{what}"
    if cache.is_file():
        return cache.read_text()
    text = produce()
    try:
        cache.parent.mkdir(exist_ok=True)
        for old in cache.parent.glob(f"{Path(library).name}.{arch}.*.{what}"):
            old.unlink()
        cache.write_text(text)
    except OSError:
        pass  # a read-only build folder: no cache
    return text
