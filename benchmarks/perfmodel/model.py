"""Predicted cycles per K-step, latency per layer and ratio, and the roofline of the same GEMM.

Per K-step of one warp (one main-loop iteration, from `sass.StepPath`), each resource of the SM
sub-partition it runs on is charged (docs/performance.md has the derivation):
  issue   1 cycle per instruction (one warp instruction per clock per sub-partition); an instruction
          guarded by @!PT (never executes: ptxas's padding) costs its issue slot and nothing else
  tensor  MACs of each IMMA / (dense MAC/clk/SM / 4)          [hardware.ARCHS]
  alu     integer/logic/move instructions x 32 / (int ops/clk/SM / 4)
  fma     IMAD-class x 32 / (int ops/clk/SM / 4), FP32 FMA x 32 / (FP32 FMA/clk/SM / 4)
  cvt     conversions x 32 / (conversions/clk/SM / 4)
and, shared by the SM's four sub-partitions, lsu = sum over memory instructions of
max(1, bytes per warp / L1 bytes per clock). A step whose global loads feed registers directly (LDG
and no LDGSTS) also waits one L2-hit latency per iteration per warp (latency). W warps on an SM
doing S steps each take S * max(ceil(W/4) * max(issue, tensor, alu, fma, cvt), W * lsu,
latency + issue) cycles; CTAs fill SMs in waves at the occupancy that registers, shared memory and
threads allow. A layer adds its compulsory DRAM traffic (every tensor once) as a bound that overlaps
with compute, the separate input-pass kernel for float I/O, and a fixed launch cost per kernel.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from . import hardware, kernels, sass
from .layers import Layer

ALU_OPS = {"IADD3", "IADD", "LOP3", "LOP", "SHF", "SHL", "SHR", "ISETP", "ISCADD", "SEL", "LEA", "PRMT",
           "IMNMX", "IABS", "MOV", "CS2R", "PLOP3", "P2R", "R2P", "SGXT", "BMSK", "FLO", "POPC", "BREV",
           "FSEL", "FSETP", "FMNMX", "VIADD", "VIMNMX"}
IMAD_OPS = {"IMAD", "IMUL", "IMADSP", "IDP", "IDP4A", "IMAD.WIDE"}
FP32_OPS = {"FFMA", "FMUL", "FADD", "HFMA2", "HADD2", "HMUL2"}
CVT_OPS = {"I2F", "F2I", "F2F", "I2I", "FRND", "I2FP", "F2IP"}
MEM_OPS = {"LDG", "LDGSTS", "LDS", "LDSM", "STS", "STG", "LD", "ST", "LDL", "STL", "ATOM", "ATOMS", "ATOMG", "RED"}
RESOURCES = ("issue", "tensor", "alu", "fma", "cvt", "lsu", "latency")


def mem_bytes_per_thread(ins: sass.Instr) -> int:
    """Bytes one thread moves with a memory instruction, from its width modifier (default 4)."""
    mods = ins.opcode.split(".")[1:]
    if ins.op == "LDSM":
        m = re.search(r"\.M?T?88(?:\.(\d))?", ins.opcode)
        return 4 * int(m.group(1) or 1) if m else 4
    for mod, size in (("128", 16), ("64", 8), ("U16", 2), ("S16", 2), ("U8", 1), ("S8", 1)):
        if mod in mods:
            return size
    return 4


@dataclass(frozen=True)
class StepCost:
    """Cycles one warp's K-step costs on each resource (lsu: SM-wide; the rest: its sub-partition)."""

    issue: float
    tensor: float
    alu: float
    fma: float
    cvt: float
    lsu: float
    latency: float
    macs: int

    @property
    def smsp(self) -> float:
        """The sub-partition's own bound: max of issue and the per-sub-partition pipes."""
        return max(self.issue, self.tensor, self.alu, self.fma, self.cvt)

    def bound(self) -> str:
        """The resource that limits a full SM (4+ warps, latency hidden by other warps)."""
        vals = {"issue": self.issue, "tensor": self.tensor, "alu": self.alu, "fma": self.fma, "cvt": self.cvt,
                "lsu": 4 * self.lsu}
        return max(vals, key=vals.get)

    @property
    def tensor_efficiency(self) -> float:
        """Tensor-pipe share of the step on a full SM (1.0 = the MMAs alone set the pace)."""
        return self.tensor / max(self.smsp, 4 * self.lsu)


def step_cost(step: sass.StepPath, arch: hardware.ArchRates) -> StepCost:
    """Charge each instruction of a K-step to its resource (see the module docstring)."""
    int_cycles = 32 / (arch.int_ops_per_clk_sm / 4)
    fp_cycles = 32 / (arch.fp32_fma_per_clk_sm / 4)
    cvt_cycles = 32 / (arch.conversions_per_clk_sm / 4)
    tensor = alu = fma = cvt = lsu = 0.0
    for ins in step.instrs:
        if ins.pred == "!PT":  # never executes (ptxas pads with `@!PT LDS RZ, [RZ]`): an issue slot only
            continue
        if ins.mma_kind:
            tensor += arch.tensor_cycles(ins.mma_macs, ins.mma_int4)
        elif ins.op in ALU_OPS:
            alu += int_cycles
        elif ins.op in IMAD_OPS:
            fma += int_cycles
        elif ins.op in FP32_OPS:
            fma += fp_cycles
        elif ins.op in CVT_OPS:
            cvt += cvt_cycles
        elif ins.op in MEM_OPS:
            lsu += max(1.0, 32 * mem_bytes_per_thread(ins) / arch.l1_bytes_per_clk_sm)
    ops = step.opcodes
    exposed = ops["LDG"] > 0 and ops["LDGSTS"] == 0
    return StepCost(float(len(step.instrs)), tensor, alu, fma, cvt, lsu,
                    float(arch.l2_latency_cycles) if exposed else 0.0, step.macs)


@dataclass(frozen=True)
class ModelOptions:
    """What the prediction assumes about the deployment."""

    io: str = field(default="fp16", metadata={"help": "layer I/O: fp16/fp32 (float in and out, separate input "
                                                      "pass); int8-edge (INT8 codes in and out with the input pass "
                                                      "reading 1-byte codes: fan-out edges, docs/design.md §2.8); "
                                                      "int8 (no input pass: workspace edges, built behind "
                                                      "--workspace-edges for one-reader edges; the producer "
                                                      "writes the reader's codes and activation steps)"})
    group_size: int = field(default=32, metadata={"help": "channels per group G (32 or 64)"})
    launch_us: float = field(default=2.0, metadata={"help": "fixed cost per kernel launch in microseconds "
                                                            "(CUDA-graph replay of back-to-back kernels)"})

    @property
    def io_bytes(self) -> int:
        return {"fp16": 2, "fp32": 4, "int8": 1, "int8-edge": 1}[self.io]


@dataclass
class LayerPrediction:
    """Predicted latency of one layer at one ratio, its bound, and the roofline of the same GEMM."""

    layer: str
    ratio: float
    n4: int
    us: float
    bound: str
    gemm_us: float
    input_pass_us: float
    roofline_us: float  # same GEMM at this ratio's mix of int8/int4 peak
    waves: int
    ctas_per_sm: int
    kernel: str = ""


def ctas_per_sm(res: sass.Resources | None, tile: kernels.TileConfig, arch: hardware.ArchRates) -> int:
    """Occupancy in CTAs per SM from registers (256-register warp granularity), shared memory and threads."""
    regs = res.regs if res else 128
    regs_per_warp = math.ceil(regs * 32 / 256) * 256
    by_regs = arch.regs_per_sm // (regs_per_warp * tile.warps)
    by_threads = arch.max_threads_per_sm // tile.threads
    by_smem = arch.smem_per_sm // res.shared if res and res.shared else arch.max_ctas_per_sm
    return max(0, min(by_regs, by_threads, by_smem, arch.max_ctas_per_sm))


def _sm_cycles(warps: int, steps: list[tuple[float, StepCost]]) -> tuple[float, str]:
    """Cycles for `warps` warps on one SM, each doing count x step for every (count, step); and the bound."""
    per_smsp = math.ceil(warps / 4)
    totals = {r: sum(n * getattr(c, r) for n, c in steps) for r in RESOURCES}
    cands = {
        "issue": per_smsp * totals["issue"], "tensor": per_smsp * totals["tensor"],
        "alu": per_smsp * totals["alu"], "fma": per_smsp * totals["fma"], "cvt": per_smsp * totals["cvt"],
        "lsu": warps * totals["lsu"],
        "latency": (totals["latency"] + totals["issue"]) if totals["latency"] else 0.0,
    }
    bound = max(cands, key=cands.get)
    return cands[bound], bound


def _n4(layer: Layer, ratio: float, g: int) -> tuple[int, int]:
    c_pad = -(-layer.in_channels // g) * g
    return c_pad, int(ratio * c_pad) // g * g


def predict_layer(layer: Layer, ratio: float, kern: kernels.GemmKernel, gpu: hardware.Gpu,
                  opts: ModelOptions) -> LayerPrediction:
    """Predicted latency of `layer` at `ratio` (share of its C_pad in 4-bit, rounded down to G)."""
    g, arch, tile = opts.group_size, gpu.arch, kern.tile
    c_pad, n4 = _n4(layer, ratio, g)
    g4, g8 = n4 // g, (c_pad - n4) // g
    c8, c4 = step_cost(kern.step8, arch), step_cost(kern.step4[g], arch)
    # loop iterations (fractional where one iteration covers a round of several K-tiles)
    steps8 = layer.taps * g8 * kern.int8_steps_per_group(g)
    steps4 = layer.taps * g4 * kern.int4_steps_per_group(g)
    ctas = math.ceil(layer.rows / tile.cta_m) * math.ceil(layer.out_channels / tile.cta_n)
    occ = max(1, ctas_per_sm(kern.resources, tile, arch))
    per_wave = gpu.sms * occ
    full, rem = divmod(ctas, per_wave)
    work = [(steps8, c8), (steps4, c4)]
    cycles, bound = _sm_cycles(occ * tile.warps, work) if full else (0.0, "")
    cycles *= full
    if rem:
        tail, tail_bound = _sm_cycles(math.ceil(rem / gpu.sms) * tile.warps, work)
        cycles += tail
        bound = bound or tail_bound
    compute_s = cycles / (gpu.clock_ghz * 1e9)

    # compulsory DRAM traffic: codes, activation steps, weights (and their G_count weight steps) and output once each
    code_bytes = (c_pad - n4) + n4 / 2
    in_codes = layer.input_rows * code_bytes + (layer.input_rows * (c_pad // g) if n4 else 0)
    weights = layer.out_channels * layer.taps * code_bytes + c_pad // g
    out = layer.rows * layer.out_channels * opts.io_bytes
    if opts.io == "int8":  # a workspace edge: the reader's image (codes at this ratio, shiftA, factorA int32)
        out = layer.rows * (layer.out_channels * code_bytes / c_pad + 5 * math.ceil(layer.out_channels / g))
    gemm_dram_s = (in_codes + weights + out) / (gpu.dram_gb_s * 1e9)
    if gemm_dram_s > compute_s:
        bound = "dram"
    gemm_us = max(compute_s, gemm_dram_s) * 1e6 + opts.launch_us
    input_us = 0.0
    if opts.io != "int8":  # the separate input pass: read the float input (or codes), write codes and steps
        in_bytes = layer.input_rows * layer.in_channels * opts.io_bytes + in_codes
        input_us = in_bytes / (gpu.dram_gb_s * 1e9) * 1e6 + opts.launch_us
    return LayerPrediction(layer.name, ratio, n4, gemm_us + input_us, bound, gemm_us, input_us,
                           roofline_us(layer, n4 / c_pad if c_pad else 0.0, gpu, opts), full + (1 if rem else 0), occ,
                           kernels.short_name(kern.function))


def predict_best(layer: Layer, ratio: float, kerns: list[kernels.GemmKernel], gpu: hardware.Gpu,
                 opts: ModelOptions) -> LayerPrediction:
    """The fastest predicted of several tile configurations (a runner that picks the tile per layer)."""
    return min((predict_layer(layer, ratio, k, gpu, opts) for k in kerns), key=lambda p: p.us)


def roofline_us(layer: Layer, four_share: float, gpu: hardware.Gpu, opts: ModelOptions) -> float:
    """The same GEMM (real C_in, int8/int4 codes in, `opts.io` out) at tensor peak or DRAM bandwidth."""
    macs = layer.macs()
    compute = macs * ((1 - four_share) / gpu.peak_macs_per_s(False) + four_share / gpu.peak_macs_per_s(True))
    code = 1 - four_share / 2
    bytes_ = (layer.input_rows * layer.in_channels * code + layer.out_channels * layer.taps * layer.in_channels * code
              + layer.rows * layer.out_channels * opts.io_bytes)
    return max(compute, bytes_ / (gpu.dram_gb_s * 1e9)) * 1e6


def compute_bound(layer: Layer, gpu: hardware.Gpu, opts: ModelOptions) -> bool:
    """True when the int8 roofline of the layer is set by tensor peak, not DRAM."""
    compute = layer.macs() / gpu.peak_macs_per_s(False)
    return compute * 1e6 >= roofline_us(layer, 0.0, gpu, opts) * 0.999


def speedup_share(t0: float, t50: float, t100: float) -> float:
    """Share of the 0% -> 100% time saving that the 50% ratio already gets (the paper reports 0.40)."""
    return (t0 - t50) / (t0 - t100) if t0 != t100 else float("nan")
