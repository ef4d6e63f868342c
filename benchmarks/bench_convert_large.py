"""Large-graph coverage: convert time and simulation latency next to the FP32 model's (CPU).

Wall times on all cores; on a shared machine prefer benchmarks/bench_convert_time.py, which also
reports CPU time.

Usage: python benchmarks/bench_convert_large.py [--models resnet50_light yolov8n] [--batch 1] [--size 320]

ResNet50 comes from the onnx wheel's light graph with random weights and YOLOv8n from nudenet:
neither result says anything about accuracy (synthetic calibration), only about coverage and cost.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from flexiq_trt.api import convert
from flexiq_trt.calibration.config import CalibConfig
from flexiq_trt.calibration.model_io import input_specs
from flexiq_trt.conversion import ConvertConfig
from flexiq_trt.datasets.model_zoo import load_model_path
from flexiq_trt.plugin_spec import RUNTIME_INPUT
from flexiq_trt.ratios import ratio_vector


def latency_ms(path: Path, feed: dict, repeat: int = 5) -> float:
    """Median latency of one run (CPU EP, all cores)."""
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = {i.name for i in sess.get_inputs()}
    feed = {k: v for k, v in feed.items() if k in names}
    sess.run(None, feed)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        sess.run(None, feed)
        times.append((time.perf_counter() - t) * 1e3)
    return float(np.median(times))


def bench(name: str, batch: int, size: int, work: Path) -> dict:
    """Convert one model (greedy selector, random uniform calibration images) and time its simulation."""
    model = load_model_path(name)
    spec = input_specs(model)[0]
    shape = [batch] + [d or size for d in spec.shape[1:]]
    calib = work / f"{name}_calib.npz"
    rng = np.random.default_rng(0)
    np.savez(calib, **{spec.name: rng.uniform(0, 1, size=[16, *shape[1:]]).astype(np.float32)})
    t0 = time.perf_counter()
    res = convert(model, str(calib), work / name, calib_config=CalibConfig(batch_size=4),
                  config=ConvertConfig(selector="greedy", report=False))
    t_convert = time.perf_counter() - t0
    x = rng.uniform(0, 1, size=shape).astype(np.float32)
    row = {"model": name, "layers": res.table.num_layers, "convert_s": t_convert,
           "fp32_ms": latency_ms(model, {spec.name: x})}
    for r in (0.0, 0.5, 1.0):
        feed = {spec.name: x, RUNTIME_INPUT: ratio_vector(res.files["sidecar"], r)}
        row[f"sim_{int(r * 100)}_ms"] = latency_ms(res.files["sim_onnx"], feed)
    row["sim_50_vs_fp32"] = row["sim_50_ms"] / row["fp32_ms"]  # issue 13 target: <= 3
    return row


def main() -> None:
    """Print one table row per model."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["resnet50_light", "yolov8n"])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--size", type=int, default=320, help="H=W for dynamic spatial dims")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [bench(m, args.batch, args.size, Path(tmp)) for m in args.models]
    cols = ["model", "layers", "convert_s", "fp32_ms", "sim_0_ms", "sim_50_ms", "sim_100_ms", "sim_50_vs_fp32"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(f"{r[c]:.1f}" if isinstance(r[c], float) else str(r[c]) for c in cols) + " |")


if __name__ == "__main__":
    main()
