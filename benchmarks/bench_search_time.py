#!/usr/bin/env python3
"""Time the channel-selection search: per model, per generation, and for a whole conversion.

Three measurements, each printed as a table row:
  1. search overhead: the evolutionary search itself (operators, repair, bookkeeping) on a
     MobileNetV2-shaped selection problem with a closed-form fitness, so no model is run;
  2. evaluation cost: one fitness evaluation of a model through ONNX Runtime at each subset size
     (the mask-mode simulation ONNX with ``--sim``, else the FP32 graph as a lower bound), and the
     search time it implies for each preset (simulation runs x cost: item responses of the
     linearized output model plus full-set elites, or every candidate on subsets for paper-exact);
  3. end to end: ``flexiq_trt.api.convert`` with default settings (search included) on each model,
     when the API is available, with the per-generation times from the search log if the report has it.

The default model is a random-weight MobileNetV2 (3.5 M parameters, ~300 M MACs at 224x224) built
here, as the acceptance criterion allows for timing.

    PYTHONPATH=python python benchmarks/bench_search_time.py [--models mnv2 path/to/model.onnx] [--sim x.flexiq-sim.onnx]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from flexiq_trt.select.base import LayerGroups, SelectionProblem
from flexiq_trt.select.config import PRESETS, SearchConfig
from flexiq_trt.select.evolutionary import EvolutionarySelector, interior_ladder

LADDER = (0.25, 0.5, 0.75, 1.0)
MNV2_BLOCKS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


# ---------------------------------------------------------------------------- MobileNetV2
class _Builder:
    def __init__(self, seed: int = 0):
        self.rng, self.nodes, self.inits, self.n = np.random.default_rng(seed), [], [], 0
        self.eligible: list[tuple[int, int]] = []  # (C_in, MACs) of group-1 convs / Gemm

    def conv(self, x: str, c_in: int, c_out: int, k: int, stride: int, hw: int, groups: int = 1, act: bool = True):
        self.n += 1
        w = self.rng.normal(0, np.sqrt(2.0 / (k * k * c_in / groups)), (c_out, c_in // groups, k, k))
        self.inits += [numpy_helper.from_array(w.astype(np.float32), f"w{self.n}"),
                       numpy_helper.from_array(np.zeros(c_out, np.float32), f"b{self.n}")]
        out_hw = hw // stride
        self.nodes.append(helper.make_node("Conv", [x, f"w{self.n}", f"b{self.n}"], [f"c{self.n}"], group=groups,
                                           kernel_shape=[k, k], strides=[stride, stride], pads=[k // 2] * 4))
        if groups == 1:
            self.eligible.append((c_in, c_out * k * k * c_in * out_hw * out_hw))
        y = f"c{self.n}"
        if act:
            self.nodes.append(helper.make_node("Clip", [y, "zero", "six"], [f"a{self.n}"]))
            y = f"a{self.n}"
        return y, out_hw


def mobilenet_v2(path: Path, size: int = 224, seed: int = 0) -> list[tuple[int, int]]:
    """Write a random-weight MobileNetV2 (width 1.0) and return its eligible layers' (C_in, MACs)."""
    b = _Builder(seed)
    b.inits += [numpy_helper.from_array(np.array(0, np.float32), "zero"),
                numpy_helper.from_array(np.array(6, np.float32), "six")]
    x, hw = b.conv("input", 3, 32, 3, 2, size)
    c = 32
    for t, c_out, reps, stride in MNV2_BLOCKS:
        for i in range(reps):
            s = stride if i == 0 else 1
            h, hw2 = (b.conv(x, c, c * t, 1, 1, hw)[0], hw) if t != 1 else (x, hw)
            h, hw2 = b.conv(h, c * t, c * t, 3, s, hw2, groups=c * t)
            h, hw2 = b.conv(h, c * t, c_out, 1, 1, hw2, act=False)
            if s == 1 and c == c_out:
                b.nodes.append(helper.make_node("Add", [x, h], [f"res{b.n}"]))
                h = f"res{b.n}"
            x, hw, c = h, hw2, c_out
    x, hw = b.conv(x, c, 1280, 1, 1, hw)
    b.nodes += [helper.make_node("GlobalAveragePool", [x], ["gap"]), helper.make_node("Flatten", ["gap"], ["flat"])]
    b.inits += [numpy_helper.from_array(b.rng.normal(0, 0.03, (1000, 1280)).astype(np.float32), "fc_w"),
                numpy_helper.from_array(np.zeros(1000, np.float32), "fc_b")]
    b.nodes.append(helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], transB=1))
    b.eligible.append((1280, 1280 * 1000))
    graph = helper.make_graph(b.nodes, "mobilenet_v2_random",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, size, size])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 1000])], b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return b.eligible


# ------------------------------------------------------------------------------- measurements
class _ClosedFormFitness:
    """Cheap stand-in fitness with cross-layer interaction (for timing the search machinery only)."""

    def __init__(self, problem: SelectionProblem):
        self.err = [lg.error_score for lg in problem.layers]

    def __call__(self, masks) -> float:
        return float(sum(np.dot(e, m) + 0.01 * m.sum() ** 2 for e, m in zip(self.err, masks, strict=True)))


def problem_from_layers(eligible: list[tuple[int, int]], group: int = 32, seed: int = 0) -> SelectionProblem:
    rng = np.random.default_rng(seed)
    layers = []
    for i, (c_in, macs) in enumerate(eligible):
        gc = -(-c_in // group)
        per_ch = macs / c_in
        gm = np.array([per_ch * min(group, c_in - g * group) for g in range(gc)])
        layers.append(LayerGroups(f"layer{i}", i, gm, rng.uniform(0.1, 2, gc) * gm / gm.max(), rng.uniform(0.5, 4, gc)))
    return SelectionProblem(layers, ladder=LADDER, seed=seed)


def evaluations_per_search(cfg: SearchConfig, ladder: tuple[float, ...], items: int) -> dict[str, int]:
    """Upper bound of simulation runs (before caching) per sample count ("0" = full set), whole ladder.

    With the linearized output model the population costs one run per free item and ratio on
    `surrogate_samples` samples (free items shrink as lower ratios lock theirs); elites stay real.
    """
    points = interior_ladder(ladder)
    if cfg.screening == "surrogate":
        free = sum(round(items * (1.0 - prev)) for prev in (0.0, *points[:-1]))
        return {str(cfg.surrogate_samples): free, "0": max(1, cfg.elite_count) * (cfg.generations + 1) * len(points)}
    counts: dict[str, int] = {}
    sizes = cfg.subset_sizes or (0,)
    for g in range(cfg.generations + 1):
        n = sizes[min(g * len(sizes) // (cfg.generations + 1), len(sizes) - 1)]
        children = cfg.population if g == 0 else cfg.population - cfg.elite_count
        counts[str(n)] = counts.get(str(n), 0) + children
        counts["0"] = counts.get("0", 0) + max(1, cfg.elite_count)
    return {k: v * len(points) for k, v in counts.items()}


def time_overhead(eligible, preset: str) -> tuple[float, int]:
    p = problem_from_layers(eligible)
    p.fitness = _ClosedFormFitness(p)
    start = time.monotonic()
    order = EvolutionarySelector(PRESETS[preset]).select(p)
    gens = sum(1 for e in order.log if "best" in e)
    return time.monotonic() - start, gens


def time_evaluation(model: Path, sizes: list[int], sim: bool, repeats: int = 2) -> dict[int, float]:
    """Seconds per fitness evaluation on n samples (mask-mode simulation, or FP32 forward as a lower bound)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    data_in = [i for i in sess.get_inputs() if not i.name.startswith("flexiq_")]
    shape = [d if isinstance(d, int) else 1 for d in data_in[0].shape]
    out = {}
    for n in sizes:
        feed = {data_in[0].name: np.random.default_rng(0).normal(0, 1, [n, *shape[1:]]).astype(np.float32)}
        if sim:
            from flexiq_trt.select.evaluator import MaskFitnessEvaluator

            ev = MaskFitnessEvaluator(str(model), feed, batch_size=16)
            masks = [np.ones_like(m) for m in ev.all_false_masks()]
            run = lambda ev=ev, masks=masks: ev(masks)  # noqa: E731
        else:
            run = lambda feed=feed, n=n: [sess.run(None, {k: v[s:s + 16] for k, v in feed.items()})  # noqa: E731
                                     for s in range(0, n, 16)]
        run()
        start = time.monotonic()
        for _ in range(repeats):
            run()
        out[n] = (time.monotonic() - start) / repeats
    return out


def _cpu_seconds() -> float:
    """User + sys CPU seconds of this process (ORT threads included): robust to other load on the machine."""
    import resource

    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


def time_convert(model: Path, out_dir: Path, samples: int = 160) -> dict | None:
    """`flexiq_trt.api.convert` with default settings on random calibration data (timing only)."""
    try:
        from flexiq_trt import api
    except ImportError as e:
        print(f"end-to-end: flexiq_trt.api is not available ({e}); skipped")
        return None
    calib = out_dir / "calib.npz"
    sess_in = onnx.load(str(model), load_external_data=False).graph.input[0]
    dims = [d.dim_value or 1 for d in sess_in.type.tensor_type.shape.dim]
    np.savez(calib, **{sess_in.name: np.random.default_rng(0).normal(0, 1, [samples, *dims[1:]]).astype(np.float32)})
    start, cpu_start = time.monotonic(), _cpu_seconds()
    result = api.convert(str(model), calib=str(calib), output_dir=str(out_dir / "convert"),
                         calib_config=api.CalibConfig(max_samples=samples), config=api.ConvertConfig())
    total, cpu = time.monotonic() - start, _cpu_seconds() - cpu_start
    log = (result.report or {}).get("search_log", [])
    gens = [e["seconds"] for e in log if "event" not in e and "seconds" in e and e.get("generation", 0) > 0]
    screening = [e["seconds"] for e in log if e.get("event") == "screening"]
    return {"total_s": total, "cpu_s": cpu, "timings": result.timings, "generations": len(gens),
            "mean_generation_s": float(np.mean(gens)) if gens else None, "screening_s": sum(screening)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["mnv2"], help="'mnv2' (built here) and/or ONNX paths")
    ap.add_argument("--sim", type=Path, help="a mask-mode simulation ONNX to time real fitness evaluations")
    ap.add_argument("--subsets", nargs="+", type=int, default=[8, 16, 32, 64],
                    help="sample counts to time; the largest stands for the full fitness set")
    ap.add_argument("--end-to-end", action="store_true", help="also run flexiq_trt.api.convert (default settings)")
    ap.add_argument("--out", type=Path, default=Path("bench_out/search_time"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.models:
        path = args.out / "mobilenet_v2_random.onnx" if name == "mnv2" else Path(name)
        if name == "mnv2":
            eligible = mobilenet_v2(path)
            print(f"[{name}] random-weight MobileNetV2: {sum(m for _, m in eligible) / 1e6:.0f} M eligible MACs, "
                  f"{len(eligible)} eligible layers, {sum(-(-c // 32) for c, _ in eligible)} (layer, group) items")
        else:
            eligible = None
        if eligible is not None:
            for preset in PRESETS:
                seconds, gens = time_overhead(eligible, preset)
                print(f"[{name}] search overhead, preset {preset}: {seconds:.1f} s for {gens} generations "
                      f"({1e3 * seconds / max(gens, 1):.0f} ms/generation without model evaluation)")
        model_for_eval = args.sim or path
        sizes = sorted(set(args.subsets) | {n for cfg in PRESETS.values() for n in cfg.subset_sizes if n})
        per_eval = time_evaluation(model_for_eval, sizes, sim=args.sim is not None)
        kind = "mask-mode simulation" if args.sim else "FP32 forward (a lower bound of the simulation's cost)"
        print(f"[{name}] one evaluation, {kind}: " + ", ".join(f"n={n}: {s:.2f} s" for n, s in per_eval.items()))
        full_n = max(args.subsets)  # the size of the full calibration set the pipeline feeds the fitness
        for preset, cfg in PRESETS.items():
            items = sum(-(-c // 32) for c, _ in eligible) if eligible else 300
            counts = evaluations_per_search(cfg, LADDER, items)
            est = sum(c * per_eval.get(int(n) or full_n, per_eval[full_n]) for n, c in counts.items())
            gens = cfg.generations * len(interior_ladder(LADDER))
            print(f"[{name}] preset {preset} (population ranked by {cfg.screening}): <= {sum(counts.values())} "
                  f"simulation runs {counts} (samples: runs) over {gens} generations -> ~{est / 60:.1f} min search "
                  f"({est / max(gens, 1):.1f} s/generation), full set = {full_n} samples")
        if args.end_to_end:
            res = time_convert(path, args.out)
            if res is not None:
                print(f"[{name}] convert with default settings: {res['total_s'] / 60:.1f} min total "
                      f"({res['cpu_s'] / 60:.1f} min CPU), stages "
                      f"{ {k: round(v, 1) for k, v in res['timings'].items()} }; of the selection, "
                      f"{res['screening_s']:.0f} s measured the linearized output model and {res['generations']} "
                      f"generations took {res['mean_generation_s'] or 0:.2f} s each on average")
    return 0


if __name__ == "__main__":
    sys.exit(main())
