"""The static performance model: SASS parsing on the real library, arithmetic on a known mix, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import REPO
from perfmodel import hardware, kernels, model, sass
from perfmodel.layers import BENCH_LAYERS, resnet50, vit_b16

# A hand-written loop: header, a guarded load that a branch may skip, 2 int8 MMAs, back edge.
SASS_LOOP = """
        Function : _ZN6flexiq19flexiqInt8MmaKernelILb1EfEEvNS_15MixedGemmParamsE
        /*0000*/                   MOV R1, c[0x0][0x28] ;
        /*0010*/                   IADD3 R2, R2, 0x20, RZ ;
        /*0020*/                   LDG.E.128.CONSTANT R8, [R4.64] ;
        /*0030*/              @!P0 BRA 0x60 ;
        /*0040*/                   LOP3.LUT R9, R9, 0xf, RZ, 0xc0, !PT ;
        /*0050*/                   IMAD R9, R9, 0x2, RZ ;
        /*0060*/                   LDS R12, [R3] ;
        /*0070*/                   IMMA.16832.S8.S8 R16, R8.ROW, R12.COL, R16 ;
        /*0080*/                   IMMA.16832.S8.S8 R20, R8.ROW, R14.COL, R20 ;
        /*0090*/                   ISETP.GE.AND P1, PT, R2, R0, PT ;
        /*00a0*/              @!P1 BRA 0x10 ;
        /*00b0*/                   EXIT ;
"""


def _steps(policy: str) -> sass.StepPath:
    name, instrs = next(iter(sass.parse_functions(SASS_LOOP).items()))
    return next(s for s in sass.step_paths(name, instrs) if s.policy == policy)


def test_parser_finds_loop_paths_and_warp_tile():
    longest, shortest = _steps("longest"), _steps("shortest")
    assert longest.loop_header == 0x10 and longest.kind == "IMMA.16832.S8.S8"
    assert longest.paths == 2  # the guarded block is taken or skipped
    assert len(longest.instrs) == 10 and len(shortest.instrs) == 8
    assert longest.macs == 2 * 16 * 8 * 32
    assert longest.warp_tile_area == 2 * 128 and longest.k_per_step == 32


def test_step_cost_arithmetic_known_answer():
    cost = model.step_cost(_steps("longest"), hardware.ARCHS["sm_86"])
    # 10 instructions; 2 x 4096 MACs at 1024/4 MAC/clk per sub-partition = 32 cycles;
    # ALU: IADD3, LOP3, ISETP (+ BRA not) = 3 x 2 cycles; FMA pipe: IMAD = 2; MOV outside the loop
    # LSU: LDG.128 = 32 x 16 B / 128 B = 4, LDS = 1; LDG without LDGSTS: 200-cycle L2 latency exposed
    assert (cost.issue, cost.tensor, cost.alu, cost.fma, cost.lsu, cost.latency) == (10, 32, 6, 2, 5, 200)
    assert cost.bound() == "tensor" and cost.tensor_efficiency == 1.0
    a100 = model.step_cost(_steps("longest"), hardware.ARCHS["sm_80"])
    assert a100.tensor == 16 and a100.bound() == "lsu"  # A100: twice the int8 rate; 4 x 5 LSU > 16


# A main loop (a copy block its shortest path skips) and a phase-tail loop whose optional copy block is
# longer: by instructions per MMA the main loop is the tighter on the longest paths, the tail on the shortest.
SASS_TWO_LOOPS = """
        Function : _ZN6flexiq19flexiqInt8MmaKernelILb1EfEEvNS_15MixedGemmParamsE
        /*0000*/                   MOV R1, c[0x0][0x28] ;
        /*0010*/                   IADD3 R2, R2, 0x20, RZ ;
        /*0020*/              @!P0 BRA 0x50 ;
        /*0030*/                   LDGSTS.E.BYPASS.128 [R3], [R4.64] ;
        /*0040*/                   IADD3 R4, R4, 0x10, RZ ;
        /*0050*/                   IMMA.16832.S8.S8 R16, R8.ROW, R12.COL, R16 ;
        /*0060*/                   IMMA.16832.S8.S8 R20, R8.ROW, R14.COL, R20 ;
        /*0070*/                   ISETP.GE.AND P1, PT, R2, R0, PT ;
        /*0080*/              @!P1 BRA 0x10 ;
        /*0090*/                   IADD3 R2, R2, 0x1, RZ ;
        /*00a0*/               @P2 BRA 0xf0 ;
        /*00b0*/                   LDGSTS.E.BYPASS.128 [R3], [R4.64] ;
        /*00c0*/                   LDGSTS.E.BYPASS.128 [R3+0x10], [R4.64+0x10] ;
        /*00d0*/                   LDGSTS.E.BYPASS.128 [R3+0x20], [R4.64+0x20] ;
        /*00e0*/                   IADD3 R4, R4, 0x30, RZ ;
        /*00f0*/                   IMMA.16832.S8.S8 R16, R8.ROW, R12.COL, R16 ;
        /*0100*/                   IMMA.16832.S8.S8 R20, R8.ROW, R14.COL, R20 ;
        /*0110*/                   ISETP.GE.AND P1, PT, R2, R0, PT ;
        /*0120*/              @!P1 BRA 0x90 ;
        /*0130*/                   EXIT ;
"""


def test_shortest_policy_prices_the_main_loop_not_a_tail():
    name, instrs = next(iter(sass.parse_functions(SASS_TWO_LOOPS).items()))
    steps = sass.step_paths(name, instrs)
    longest, shortest = kernels._pick(steps, "longest"), kernels._pick(steps, "shortest")
    assert longest.loop_header == shortest.loop_header == 0x10  # main loop: 8 instructions per 2 MMAs vs 9
    assert len(longest.instrs) == 8 and len(shortest.instrs) == 6  # the tail's shortest path (5) is not used


def test_never_executed_padding_costs_only_its_issue_slot():
    name, instrs = next(iter(sass.parse_functions(SASS_LOOP.replace(
        "LDS R12, [R3] ;", "LDS R12, [R3] ;\n        /*0065*/              @!PT LDS RZ, [RZ] ;")).items()))
    padded = next(s for s in sass.step_paths(name, instrs) if s.policy == "longest")
    cost, plain = (model.step_cost(st, hardware.ARCHS["sm_86"]) for st in (padded, _steps("longest")))
    assert padded.instrs[-5].pred == "!PT" and cost.issue == plain.issue + 1
    assert (cost.lsu, cost.alu, cost.fma) == (plain.lsu, plain.alu, plain.fma)


def _round_sass(tiles: int, mma: str, per_tile: int, tail: bool = False) -> str:
    """A G = 64 kernel's loop whose body covers `tiles` K-tiles (each: `per_tile` MMAs on one accumulator,
    a fragment load, a shift and a multiply-add), plus the loop's own counter and back edge; with `tail`,
    a second, one-tile loop after it that costs more per MMA (a phase tail)."""
    lines, addr = ["        Function : _ZN6flexiq12_GLOBAL__N_120flexiqPipeInt4KernelILb1ENS_4tile8PipeTileILi64ELi64ELi2ELi2EEELi64EEEvNS_15MixedGemmParamsE",
                   "        /*0000*/                   MOV R1, c[0x0][0x28] ;"], 0x10

    def emit(text):
        nonlocal addr
        lines.append(f"        /*{addr:04x}*/                   {text} ;")
        addr += 0x10

    for reps, extra in ((tiles, 0), (1 if tail else 0, 3)):
        if not reps:
            continue
        head = addr
        for _ in range(reps):
            emit("LDSM.16.M88.4 R8, [R2+0x100]")
            for _ in range(per_tile):
                emit(f"{mma} R16, R8.ROW, R12.COL, RZ" if "S4" in mma else f"{mma} R16, R8.ROW, R12.COL, R16")
            emit("SHF.L.U32 R20, R16, R3, RZ")
            emit("IMAD R24, R20, R5, R24")
        for _ in range(extra):
            emit("IADD3 R2, R2, 0x1, RZ")
        emit("ISETP.GE.AND P1, PT, R2, R0, PT")
        emit(f"@!P1 BRA 0x{head:x}")
    emit("EXIT")
    return "\n".join(lines) + "\n"


def _round_step(tiles: int, mma: str, per_tile: int, tail: bool = False) -> list[sass.StepPath]:
    name, instrs = next(iter(sass.parse_functions(_round_sass(tiles, mma, per_tile, tail)).items()))
    return [s for s in sass.step_paths(name, instrs) if s.policy == "longest"]


def test_loop_body_over_several_k_tiles_is_priced_per_k_tile():
    """An unrolled steady state (a round of kStages K-tiles per iteration, docs/performance.md, "Unrolled
    steady state") costs body / tiles per K-tile: the same layer predicts the same time as the one-tile loop
    with the same per-tile mix. (Charging one iteration per K-tile would price it 3x, and the 8-bit loop,
    G // k = 0 iterations, not at all.)"""
    one4, = _round_step(1, "IMMA.16864.S4.S4", 1)
    three4, tail4 = _round_step(3, "IMMA.16864.S4.S4", 1, tail=True)
    one8, = _round_step(1, "IMMA.16832.S8.S8", 2)
    three8, = _round_step(3, "IMMA.16832.S8.S8", 2)
    assert (one4.k_per_step, three4.k_per_step, tail4.k_per_step) == (64, 192, 64)
    assert (one8.k_per_step, three8.k_per_step) == (64, 192)
    assert kernels.tiles_per_step(three4, 64) == 3 and kernels.steps_per_group(three4, 64) == pytest.approx(1 / 3)
    # the round, not the phase tail, is the 4-bit main loop (fewer instructions per MMA)
    assert kernels.step4_for([tail4, three4], 64, "longest") is three4
    # whole K-tiles win over a fraction of one; a loop of half a K-tile serves when nothing else does
    half, = _round_step(1, "IMMA.16832.S4.S4", 1)
    assert half.k_per_step == 32 and kernels.step4_for([half, three4], 64, "longest") is three4
    assert kernels.step4_for([half], 64, "longest") is half and kernels.steps_per_group(half, 64) == 2
    tile = kernels.TileConfig(64, 64, 128, 3, "test", 0, 0)
    rolled = kernels.GemmKernel("k", "flexiqPipeInt4Kernel", "int4", tile, 64, None, one8, {64: one4})
    unrolled = kernels.GemmKernel("k", "flexiqPipeInt4Kernel", "int4", tile, 64, None, three8, {64: three4})
    gpu, opts = hardware.GPUS["a100"], model.ModelOptions(group_size=64, io="int8")
    for ratio in (0.0, 0.5, 1.0):
        a, b = (model.predict_layer(BENCH_LAYERS[2], ratio, k, gpu, opts) for k in (rolled, unrolled))
        assert b.us == pytest.approx(a.us, rel=1e-9) and b.bound == a.bound
    # per K-tile, the round's own loop overhead (counter and branch) is paid once per 3 tiles
    c1, c3 = model.step_cost(one4, hardware.ARCHS["sm_80"]), model.step_cost(three4, hardware.ARCHS["sm_80"])
    assert c3.issue == 3 * c1.issue - 2 * 2 and c3.tensor == 3 * c1.tensor


def test_sm_cycles_bounds():
    cost = model.StepCost(issue=10, tensor=32, alu=6, fma=2, cvt=0, lsu=5, latency=200, macs=8192)
    # 8 warps (2 per sub-partition), 100 steps: tensor 2 x 32 x 100 = 6400 vs latency (200 + 10) x 100
    assert model._sm_cycles(8, [(100, cost)]) == (21000.0, "latency")
    hidden = model.StepCost(issue=10, tensor=32, alu=6, fma=2, cvt=0, lsu=5, latency=0, macs=8192)
    assert model._sm_cycles(8, [(100, hidden)]) == (6400.0, "tensor")
    assert model._sm_cycles(32, [(100, hidden)]) == (8 * 32 * 100, "tensor")  # 8 warps per sub-partition
    lsu_heavy = model.StepCost(issue=10, tensor=32, alu=6, fma=2, cvt=0, lsu=10, latency=0, macs=8192)
    assert model._sm_cycles(32, [(100, lsu_heavy)]) == (32 * 10 * 100, "lsu")  # SM-wide: every warp's bytes


def test_roofline_and_share():
    gpu = hardware.GPUS["a10"]
    assert round(gpu.peak_tops(False)) == 250 and round(gpu.peak_tops(True)) == 500  # A10 datasheet
    layer = BENCH_LAYERS[2]  # resnet50 layer3 3x3 at batch 16
    opts = model.ModelOptions()
    r8, r4 = model.roofline_us(layer, 0.0, gpu, opts), model.roofline_us(layer, 1.0, gpu, opts)
    assert r8 == pytest.approx(layer.macs() / gpu.peak_macs_per_s(False) * 1e6)
    assert r4 == pytest.approx(r8 / 2) and model.compute_bound(layer, gpu, opts)
    assert model.speedup_share(10.0, 8.0, 5.0) == pytest.approx(0.4)


def test_kernel_names_tiles_and_group_from_templates():
    pipe = "_ZN6flexiq12_GLOBAL__N_120flexiqPipeInt4KernelILb1ENS_4tile8PipeTileILi128ELi64ELi2ELi2EEELi64EEEvNS_15MixedGemmParamsE"
    old = "_ZN6flexiq12_GLOBAL__N_119flexiqInt4MmaKernelILb1EfEEvNS_15MixedGemmParamsE"
    assert kernels.family_of(pipe) == "flexiqPipeInt4Kernel" and kernels.family_of(old) == "flexiqInt4MmaKernel"
    assert kernels._group_of(pipe) == 64 and kernels._group_of(old) is None
    default = kernels.TileConfig(64, 64, 128, 1, "header")
    assert kernels._tile_of(pipe, default) == kernels.TileConfig(128, 64, 128, 1, "template arguments", 64, 32)
    assert kernels._tile_of(old, default) is default
    assert kernels.short_name(pipe) == "flexiqPipeInt4Kernel<128x64,G64>"


def test_tile_header_constants():
    values = kernels.parse_constexprs("constexpr int32_t kA = 16; // x\nconstexpr int32_t kB = 2 * kA;\n"
                                      "constexpr int32_t kAB = kB / 4 + kA;")
    assert values == {"kA": 16, "kB": 32, "kAB": 24}
    tile = kernels.tile_config()
    assert tile.cta_m > 0 and tile.threads % 32 == 0 and tile.warp_m * tile.warp_n > 0


def test_model_layer_lists():
    r50 = resnet50(1)
    assert len(r50) == 53 and sum(lay.conv for lay in r50) == 52  # stem (C_in = 3) is not eligible
    stem = 112 * 112 * 64 * 3 * 7 * 7
    assert sum(lay.macs() for lay in r50) + stem == pytest.approx(4.09e9, rel=0.01)  # ResNet-50: ~4.1 GMAC
    assert vit_b16(2)[0].rows == 2 * 197


@pytest.mark.plugin
def test_real_library_main_loops(sm86_kernels):
    kerns, _ = sm86_kernels
    assert {k.backend for k in kerns} == {"int4", "int8"}
    int4, int4_g64 = kernels.choose(kerns, 32)[0], kernels.choose(kerns, 64)[0]
    assert int4.backend == "int4" and kernels.short_name(int4.function).startswith(int4.family)
    # a loop iteration covers whole K-tiles (a round of kStages of them in the pipelined kernels)
    assert int4.step8.kind.endswith("8.S8") and int4.step8.k_per_step % 32 == 0
    assert int4.step4[32].kind.startswith("IMMA.16832.") and int4.step4[32].kind.endswith("4.S4")
    assert int4.step4[32].k_per_step % 32 == 0 and int4_g64.step4[64].k_per_step % 64 == 0
    int8 = [k for k in kerns if k.backend == "int8" and k.group_size == 64]
    # the int8 backend runs 4-bit K-tiles through its 8-bit loop on effective weights (docs/performance.md,
    # "Int8 backend: effective weights on the device"): no nibble-expanding loop, one step prices both kinds
    assert int8 and all(k.step4[64] is k.step8 for k in int8)
    assert not any(i.opcode.startswith("LDS.U16") for k in int8 for i in k.step8.instrs)
    for step in (int4.step8, int4.step4[32], int4_g64.step4[64]):
        assert step.opcodes["IMMA"] >= 1 and len(step.instrs) > step.opcodes["IMMA"]
        assert step.warp_tile_area > 0
    assert int4.resources is not None and int4.resources.local == 0
    for kern in kerns:
        assert kern.tile.cta_m > 0 and kern.tile.cta_n > 0 and kern.tile.threads % 32 == 0


@pytest.mark.plugin
def test_real_library_prediction_is_finite(sm86_kernels):
    kerns, _ = sm86_kernels
    gpu, opts = hardware.GPUS["a10"], model.ModelOptions()
    preds = [model.predict_best(BENCH_LAYERS[2], r, kernels.choose(kerns, 32), gpu, opts) for r in (0.0, 1.0)]
    for p in preds:
        assert 0 < p.roofline_us < p.us < 1e5 and p.bound in model.RESOURCES + ("dram",)
    assert preds[1].n4 == 256 and preds[0].n4 == 0


@pytest.mark.plugin
def test_cli_prints_predicted_table_and_json(capi_library, tmp_path):
    out = tmp_path / "r50.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "perf_model.py"), "--lib", str(capi_library),
                           "--gpus", "a10", "--json", str(out), "--batches", "1", "16"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "PREDICTED" in proc.stdout and "resnet50.layer3.conv2 3x3" in proc.stdout
    assert "of int8 peak" in proc.stdout and "paper: 40%" in proc.stdout
    data = json.loads(out.read_text())
    assert set(data) == {"a10"} and set(data["a10"]) == {"1", "16"}
    assert set(data["a10"]["16"]) == {"0.0", "0.25", "0.5", "0.75", "1.0"}
    assert data["a10"]["16"]["0.0"] > data["a10"]["1"]["0.0"] > 0


def test_cli_reports_missing_library(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "perf_model.py"), "--lib",
                           str(tmp_path / "nope.so"), "--gpus", "a10"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "does not exist" in proc.stderr and "Traceback" not in proc.stderr
