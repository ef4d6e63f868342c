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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "python"))
sys.path.insert(0, str(REPO / "tests" / "unit" / "kernels"))  # ctypes bindings shared with the kernel tests

from flexiq_kernel_ctypes import (  # noqa: E402
    NATIVE_INT4_SMS,
    HostLayer,
    device_info,
    gpu_forward,
    load_kernels_capi,
    random_input,
    random_layer,
)

from flexiq_trt.quantization.layer import ConvGeometry  # noqa: E402

RATIOS = (0.0, 0.25, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class LayerShape:
    """One benchmark layer: a conv (NCHW input) or a gemm ([M, C_in] input)."""

    name: str
    conv: bool
    batch: int
    in_channels: int
    out_channels: int
    height: int = 1
    width: int = 1
    geometry: ConvGeometry | None = None


LAYERS = (
    LayerShape("resnet50.layer1.conv2 3x3", True, 16, 64, 64, 56, 56, ConvGeometry((3, 3), (1, 1), (1, 1, 1, 1))),
    LayerShape("resnet50.layer3.conv2 3x3", True, 16, 256, 256, 14, 14, ConvGeometry((3, 3), (1, 1), (1, 1, 1, 1))),
    LayerShape("resnet50.layer4.conv3 1x1", True, 16, 512, 2048, 7, 7, ConvGeometry((1, 1))),
    LayerShape("resnet50.layer2.down 1x1/2", True, 16, 256, 512, 56, 56, ConvGeometry((1, 1), (2, 2))),
    LayerShape("mobilenetv2.expand 1x1", True, 16, 96, 576, 14, 14, ConvGeometry((1, 1))),
    LayerShape("vit_b.qkv", False, 16 * 197, 768, 2304),
    LayerShape("vit_b.mlp.fc1", False, 16 * 197, 768, 3072),
    LayerShape("vit_b.mlp.fc2", False, 16 * 197, 3072, 768),
)


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
                         group_size=group_size, geometry=shape.geometry)
    x = random_input(rng, layer, shape.batch, shape.height, shape.width, True)
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
    lib, why = load_kernels_capi()
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
