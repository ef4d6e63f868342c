#!/usr/bin/env python3
"""Per-layer latency of the FlexiQ kernels at n4 = 0/25/50/75/100% of C_pad (GPU only).

Runs typical conv and linear layers (ResNet-50 / MobileNet / ViT-B shapes) through the kernel C ABI
(libflexiq_kernels_capi.so) with each tensor-core backend and prints one table row per layer and
backend, the ratios side by side. Times come from CUDA events around `--iters` back-to-back
enqueues (input pass + mixed GEMM) after one warm-up; weights are random codes (timing does not
depend on their values). The int4 backend runs only on sm_80/86/87/89 unless FLEXIQ_FORCE_INT4=1.

    python benchmarks/bench_kernels.py [--lib build/.../libflexiq_kernels_capi.so] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from perfmodel.abi import (  # noqa: E402  (the one wrapper of the kernel C ABI)
    NATIVE_INT4_SMS,
    HostLayer,
    device_info,
    gpu_forward,
    load_kernels,
    random_input,
    random_layer,
)
from perfmodel.layers import BENCH_LAYERS as LAYERS  # noqa: E402  (shared with perf_model.py / gpu_check.py)
from perfmodel.layers import RATIOS  # noqa: E402
from perfmodel.layers import Layer as LayerShape  # noqa: E402


@dataclass
class Row:
    """Latency of one layer and backend at each ratio (ms per call)."""

    layer: str
    backend: str
    group_size: int
    ms: list[float]


def bench_layer(lib, shape: LayerShape, backend: str, group_size: int, iters: int, fp16: bool) -> Row:
    """Time one layer at every ratio."""
    rng = np.random.default_rng(0)
    layer = random_layer(rng, conv=shape.conv, in_channels=shape.in_channels, out_channels=shape.out_channels,
                         group_size=group_size, geometry=shape.geometry())
    x = random_input(rng, layer, shape.batch * shape.tokens, shape.height, shape.width, True)
    host = HostLayer.from_layer(layer)
    times = []
    for ratio in RATIOS:
        n4 = int(ratio * layer.padded_channels) // group_size * group_size
        _, _, ms = gpu_forward(lib, host, x, np.array([n4], np.int32), backend, fp16, iterations=iters)
        times.append(ms)
    return Row(shape.name, backend, group_size, times)


def print_table(rows: list[Row]) -> None:
    """One line per layer/backend; ratios side by side, then the 100%-vs-0% speedup."""
    head = f"{'layer':32} {'backend':8} {'G':>3} " + " ".join(f"{int(r * 100):>7}%" for r in RATIOS) + "  speedup"
    print(head)
    print("-" * len(head))
    for r in rows:
        cells = " ".join(f"{t * 1000:7.1f}u" for t in r.ms)
        print(f"{r.layer:32} {r.backend:8} {r.group_size:3d} {cells}  {r.ms[0] / r.ms[-1]:6.2f}x")


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; exit status 2 when no GPU or library is available."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lib", type=Path, help="libflexiq_kernels_capi.so (default: $FLEXIQ_KERNELS_CAPI_LIB or build*/)")
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--group-sizes", type=int, nargs="+", default=[32, 64])
    ap.add_argument("--fp16", action="store_true", help="FP16 input/output (default FP32)")
    ap.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = ap.parse_args(argv)
    if args.lib:
        os.environ["FLEXIQ_KERNELS_CAPI_LIB"] = str(args.lib)
    lib, why = load_kernels()
    if lib is None:
        print(f"bench_kernels: {why}", file=sys.stderr)
        return 2
    count, sm = device_info(lib)
    if count == 0:
        print("bench_kernels: no CUDA GPU visible", file=sys.stderr)
        return 2
    backends = ["int8"]
    if sm in NATIVE_INT4_SMS or os.environ.get("FLEXIQ_FORCE_INT4") == "1":
        backends.insert(0, "int4")
    print(f"sm_{sm[0]}{sm[1]}, {'FP16' if args.fp16 else 'FP32'} I/O, {args.iters} iterations, backends {backends}")
    rows = [bench_layer(lib, shape, b, g, args.iters, args.fp16)
            for shape in LAYERS for g in args.group_sizes for b in backends]
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps({"sm": f"{sm[0]}{sm[1]}", "ratios": RATIOS,
                                         "rows": [asdict(r) for r in rows]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
