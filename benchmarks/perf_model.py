#!/usr/bin/env python3
"""PREDICTED latency of the FlexiQ kernels per layer and ratio on A100, A10/A6000, RTX 4090 and L4.

A static model, no GPU involved: the main-loop instruction mix of each tensor-core kernel comes from
the SASS of the built library (cuobjdump), the per-pipe rates from the vendors' published figures
(benchmarks/perfmodel/hardware.py), the traffic from the layer shape. It prints, per GPU, each
layer's predicted time at 0/25/50/75/100% next to the roofline of the same GEMM at int8 and int4
tensor peak, and the ratios a user cares about: int8 path vs int8 peak, int4 path vs int8 path, and
the 50% ratio's share of the 100% speedup (the FlexiQ paper reports 40%). docs/performance.md says
how to read it; measured numbers come from benchmarks/gpu_check.py.

    python benchmarks/perf_model.py [--lib build/plugins/kernels/libflexiq_kernels_capi.so]
        [--gpus a10 l4] [--io fp16|fp32|int8-edge|int8] [--group-size 32|64]
        [--json resnet50.json --model resnet50 --batches 1 2 4 8 16 32 64]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from dataclasses import fields
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from perfmodel import hardware, kernels, model, sass  # noqa: E402
from perfmodel.layers import BENCH_LAYERS, MODELS, RATIOS  # noqa: E402

LABEL = "PREDICTED (static model from SASS + published rates; not measured)"


def _analyze(lib: Path, archs: set[str], policy: str, fp16: bool) -> dict[str, list[kernels.GemmKernel]]:
    out = {}
    for arch in sorted(archs):
        kerns, notes = kernels.gemm_kernels(lib, arch, policy=policy, fp16=fp16)
        for n in notes:
            print(f"note ({arch}): {n}", file=sys.stderr)
        out[arch] = kerns
    return out


def print_kernels(per_arch: dict[str, list[kernels.GemmKernel]]) -> None:
    """One row per (arch, kernel, main loop): what one K-tile of one warp costs in it.

    Every hot loop is listed: the 8-bit loop, and the 4-bit loop of each G (int4 backend: the int4 MMA
    loop; int8 backend: the loop that expands w4 * step_w, labelled `w4`). `k` is the channels one loop
    iteration covers and `tiles` the K-tiles (channel groups of G) in it: a steady state unrolled over a
    round of kStages tiles has tiles = kStages, and its costs are printed per K-tile (body / tiles);
    `instr` and `min` are the whole body's instructions (longest and shortest path)."""
    print(f"\n== K-step cost per warp and K-tile ({LABEL})")
    head = (f"{'arch':6} {'backend':7} {'kernel<CTA tile,G>':44} {'step':18} {'k':>3} {'tiles':>5} {'instr':>5} {'min':>5} "
            f"{'paths':>5} {'issue':>6} {'tensor':>6} {'alu':>6} {'fma':>6} {'lsu':>5} {'lat':>4} {'bound':>7} "
            f"{'tensor%':>7} {'regs':>4} {'CTA/SM':>6}")
    print(head)
    print("-" * len(head))
    for arch, kerns in per_arch.items():
        rates = hardware.ARCHS[arch]
        for kern in kerns:
            steps = {f"{kern.step8.kind}": kern.step8}
            for g, s in kern.step4.items():
                if kern.backend == "int4":
                    steps[f"{s.kind} G{g}"] = s
                elif s is not kern.step8:
                    steps[f"{s.kind} w4 G{g}"] = s
            regs = kern.resources.regs if kern.resources else 0
            occ = model.ctas_per_sm(kern.resources, kern.tile, rates)
            name = kernels.short_name(kern.function)
            name = name if "<" in name else f"{name}<{kern.tile.cta_m}x{kern.tile.cta_n}>"
            for label, step in steps.items():
                c = model.step_cost(step, rates)
                tiles = kernels.tiles_per_step(step, kern.group_size)
                low = kern.shortest.get((step.loop_header, step.kind), step)
                print(f"{arch:6} {kern.backend:7} {name[:44]:44} {label[5:][:18]:18} {step.k_per_step:3d} "
                      f"{(f'{tiles:g}' if kern.group_size else '-'):>5} {len(step.instrs):5d} {len(low.instrs):5d} "
                      f"{step.paths:5d} {c.issue / tiles:6.0f} {c.tensor / tiles:6.0f} {c.alu / tiles:6.0f} "
                      f"{c.fma / tiles:6.0f} {c.lsu / tiles:5.0f} {c.latency / tiles:4.0f} {c.bound():>7} "
                      f"{100 * c.tensor_efficiency:6.0f}% {regs:4d} {occ:6d}")


def predict_table(per_arch, gpus, layers, opts, family) -> dict:
    """Print one table per GPU and return {gpu: {layer: [LayerPrediction per ratio]}}."""
    result = {}
    for gpu in gpus:
        kerns = kernels.choose(per_arch[gpu.sm], opts.group_size, family, gpu.sm)
        print(f"\n== {gpu.name} ({gpu.sm}, {gpu.sms} SMs @ {gpu.clock_ghz:.2f} GHz, {gpu.dram_gb_s:.0f} GB/s; "
              f"int8 peak {gpu.peak_tops(False):.0f} TOPS, int4 {gpu.peak_tops(True):.0f}) - {LABEL}")
        print(f"   G = {opts.group_size}, {opts.io} I/O, times in microseconds; roofline = the same GEMM at tensor "
              f"peak or DRAM bandwidth; kernel {kerns[0].family} ({kerns[0].backend} backend"
              f"{'' if family else f': the runner choice for G = {opts.group_size} on {gpu.sm}'}), fastest of tiles "
              f"{', '.join(f'{k.tile.cta_m}x{k.tile.cta_n}' for k in kerns)}")
        head = (f"{'layer':28} {'cb':2} " + " ".join(f"{int(r * 100):>6}%" for r in RATIOS)
                + f" {'bound 0/100%':>15} {'roof8':>7} {'roof4':>7} {'8/peak8':>7} {'4vs8':>5} {'50%share':>8}")
        print(head)
        print("-" * len(head))
        rows = {}
        for layer in layers:
            preds = [model.predict_best(layer, r, kerns, gpu, opts) for r in RATIOS]
            t0, t50, t100 = preds[0].us, preds[2].us, preds[-1].us
            r8, r4 = model.roofline_us(layer, 0.0, gpu, opts), model.roofline_us(layer, 1.0, gpu, opts)
            cb = "y" if model.compute_bound(layer, gpu, opts) else "n"
            print(f"{layer.name[:28]:28} {cb:2} " + " ".join(f"{p.us:7.1f}" for p in preds)
                  + f" {preds[0].bound + '/' + preds[-1].bound:>15} {r8:7.1f} {r4:7.1f} {100 * r8 / t0:6.0f}% "
                  f"{t0 / t100:5.2f} {100 * model.speedup_share(t0, t50, t100):7.0f}%")
            rows[layer.name] = (cb == "y", preds, r8)
        _summary(rows, kerns[0].backend)
        result[gpu.key] = rows
    return result


def _summary(rows, backend: str) -> None:
    """Medians over the compute-bound layers. On the int8 backend (sm_80 at G = 32) the 4-bit share runs as
    8-bit K-tiles of effective weights, so "int4 path" there is the same backend at 100% (1.0x by construction
    where the 8-bit loop sets the pace)."""
    cb = [(p, r8) for is_cb, p, r8 in rows.values() if is_cb]
    if not cb:
        print("   (no compute-bound layer in this set on this GPU)")
        return
    eff = [r8 / p[0].us for p, r8 in cb]
    gain = [p[0].us / p[-1].us for p, _ in cb]
    share = [model.speedup_share(p[0].us, p[2].us, p[-1].us) for p, _ in cb]
    share = [s for s in share if not math.isnan(s)]
    on_int8 = " (both on the int8 backend)" if backend == "int8" else ""
    print(f"   compute-bound layers ({len(cb)}), median: int8 path = {100 * statistics.median(eff):.0f}% of int8 peak; "
          f"int4 path = {statistics.median(gain):.2f}x the int8 path{on_int8}; 50% ratio gets "
          f"{100 * statistics.median(share) if share else float('nan'):.0f}% of the 100% speedup (paper: 40%)")


def model_json(per_arch, gpus, model_name: str, batches: list[int], opts, family) -> dict:
    """{gpu: {batch: {ratio: ms}}}: the whole model's FlexiQ layers summed (docs/performance.md)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for gpu in gpus:
        kerns = kernels.choose(per_arch[gpu.sm], opts.group_size, family, gpu.sm)
        out[gpu.key] = {}
        for b in batches:
            layers = MODELS[model_name](b)
            out[gpu.key][str(b)] = {
                str(r): round(sum(model.predict_best(lay, r, kerns, gpu, opts).us for lay in layers) / 1000, 6)
                for r in RATIOS}
    return out


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; exit status 2 when the library or cuobjdump is missing."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lib", type=Path, default=kernels.DEFAULT_LIBRARY, help="libflexiq_kernels_capi.so")
    ap.add_argument("--gpus", nargs="+", default=list(hardware.GPUS), choices=list(hardware.GPUS))
    ap.add_argument("--policy", choices=("longest", "shortest"), default="longest",
                    help="where a loop has data-dependent branches: charge its longest (default) or shortest path")
    for f in fields(model.ModelOptions):
        ap.add_argument(f"--{f.name.replace('_', '-')}", type=type(f.default), default=f.default,
                        help=f.metadata["help"], **({"choices": ("fp16", "fp32", "int8-edge", "int8")} if f.name == "io" else {}))
    ap.add_argument("--kernels-only", action="store_true", help="print only the per-step kernel table")
    ap.add_argument("--kernel", help="kernel family to price (substring, e.g. flexiqInt4MmaKernel); default: the "
                                     "pipelined family of the runner's backend for G on each GPU (int4; int8 on "
                                     "sm_80 at G = 32) if the library has one, else that backend's first family")
    ap.add_argument("--json", type=Path, help="write {gpu: {batch: {ratio: ms}}} for --model to this file")
    ap.add_argument("--model", choices=sorted(MODELS), default="resnet50")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64])
    args = ap.parse_args(argv)
    opts = model.ModelOptions(io=args.io, group_size=args.group_size, launch_us=args.launch_us)
    if opts.group_size not in (32, 64):
        ap.error("--group-size must be 32 or 64")
    gpus = [hardware.GPUS[k] for k in args.gpus]
    try:
        per_arch = _analyze(args.lib, {g.sm for g in gpus}, args.policy, fp16=opts.io == "fp16")
    except (sass.SassError, KeyError, OSError) as exc:
        print(f"perf_model: {exc}", file=sys.stderr)
        return 2
    for arch, kerns in per_arch.items():
        if not kernels.choose(kerns, opts.group_size, args.kernel, arch):
            backend = kernels.runner_backend(arch, opts.group_size)
            print(f"perf_model: no {backend}-backend main loop for G={opts.group_size} found in the {arch} SASS of "
                  f"{args.lib}", file=sys.stderr)
            return 2
    print(LABEL)
    print_kernels(per_arch)
    if not args.kernels_only:
        predict_table(per_arch, gpus, BENCH_LAYERS, opts, args.kernel)
    if args.json:
        data = model_json(per_arch, gpus, args.model, args.batches, opts, args.kernel)
        args.json.write_text(json.dumps(data, indent=1) + "\n")
        print(f"\nwrote {args.json}: PREDICTED {args.model} latency (FlexiQ layers only), "
              f"{{gpu: {{batch: {{ratio: ms}}}}}}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
