"""Issue #11: network-in-the-loop (empirical) bias rungs and degraded-input statistics vs today's analytic rungs.

Why: the analytic bias rungs (`quantization/bias_rungs.py`, docs/design.md §2.8) cancel the mean
shift each 4-bit group causes on the layer's FLOAT input. At high ratios every input is itself
degraded by the 4-bit layers upstream. This script measures whether correcting with the
quantized network in the loop helps, on the same conversion (same codes, same order) and the same
held-out crops, so every column is paired with the `analytic` one (docs/accuracy.md, "Empirical
(network-in-the-loop) bias correction and degraded-input statistics").

Variants (each starts from the converted model's analytic tables; row 0, the INT8 bias, never changes):

- ``local``: per layer and sampled ratio r, run the quantized network (float-exact simulation,
  prefix mode, the int32 accumulators as debug outputs) and compare the layer's mean pre-activation
  output (acc * out_scale + bias row k(r)) with what the FLOAT layer gives on the same degraded input
  (W * mean im2col column + b): the residual of the layer's own quantization on the inputs it really
  sees. One simulation run per sampled ratio.
- ``fp32_seq``: the residual against the FP32 network's pre-activation mean at that layer, layers
  corrected one after the other in graph order (each measured with every upstream layer already
  corrected): L x R simulation runs.
- ``fp32_jacobi``: the same target, every layer corrected at once per pass, damped by 0.5, 4 passes
  (undamped passes diverge: upstream and downstream corrections count the same shift twice).
- ``order_aware``: a third lever, order-aware compensation: after selection, each layer's 4-bit codes
  are re-rounded group by group in π order, group j's GPTQ target absorbing the weight error of the
  4-bit groups before it (``w_j + e_<j H[<j, j] H[j, j]^-1``, float-input Hessian of the whole row,
  1x1 convs and Gemm/MatMul only), so at every rung the 4-bit prefix compensates itself; the analytic
  rows are recomputed for the new codes. The INT8 codes and the order do not change.
- ``stats_deg``: the second lever: pass 2's statistics (Hessian blocks and code column sums) gathered
  on the layer inputs of the quantized network at ratio 1, then GPTQ codes and analytic rows
  recomputed (``stats_deg_bias``: only the code sums, i.e. the analytic rows on degraded inputs).

- ``group_rms`` / ``group_p99``: an activation-side lever, outside the bias table: the base channel
  order that cuts a layer's channels into groups (which channels share a 4-bit shift) sorted by each
  channel's RMS or 99th percentile of |x| on the calibration data instead of its maximum
  (`QuantConfig.channel_grouping`, gathered in calibration pass 1; the `analytic` row groups by the
  maximum whatever the default). Everything after it is redone
  (statistics, codes, error scores, the greedy order), so these rows are paired on the crops but
  not on the order.

Rungs between sampled ratios: the residual measured at each sampled rung k(r) is interpolated
linearly over k (anchored at 0 for rung 0) and added to the analytic rows, so every ratio is served.
Layers with fewer than ``--min-rows`` output rows on the calibration set (squeeze-excite FCs and the
classifier: one row per sample) keep their analytic rows: 64 per-class means are too noisy a target.

    python benchmarks/bench_bias_empirical.py --models pplcnet efficientnet_lite0 --json bias_empirical.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_accuracy as ba  # noqa: E402  (the same models, crops and seeds as docs/accuracy.md)

EVAL_RATIOS = (0.0, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0)
SAMPLED = (0.25, 0.5, 0.75, 1.0)  # the default ladder's non-zero ratios


def build_state(name: str, calib_n: int, heldout_n: int, tmp: Path, group_key: str = "range"):
    """A ConversionState up to selection: default QuantConfig (gptq, per-layer G), greedy selector.

    `group_key` "range" groups each layer's channels by their calibrated maximum; "rms" or "p99" by
    that statistic (`QuantConfig.channel_grouping`).
    """
    from flexiq_trt.calibration.config import CalibConfig
    from flexiq_trt.conversion import ConversionState, ConvertConfig
    from flexiq_trt.pipeline import convert as pc
    from flexiq_trt.quantization.config import QuantConfig
    from flexiq_trt.select.config import SearchConfig

    model, meta = ba.imagenet_meta(name)
    iname = meta["input_name"]
    np.savez(tmp / "calib.npz", **{iname: ba.crops("calibration", calib_n, meta, seed=1)})
    np.savez(tmp / "eval.npz", **{iname: ba.crops("heldout", heldout_n, meta, seed=2)})
    cfg = ConvertConfig(output_dir=str(tmp / "out"), selector="greedy", eval_data=str(tmp / "eval.npz"),
                        ort_baseline=False)
    quant = QuantConfig(channel_grouping="max" if group_key == "range" else group_key)
    st = ConversionState(Path(model), CalibConfig(data=str(tmp / "calib.npz"), batch_size=16, max_samples=None),
                         quant, cfg)
    pc.intake(st)
    pc.split_data(st)
    pc.calibrate_and_quantize(st)
    pc.select(st, SearchConfig())
    return st


def session(model: onnx.ModelProto):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def with_outputs(model: onnx.ModelProto, names: list[str]) -> onnx.ModelProto:
    """A copy of `model` that also returns the tensors `names`."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    have = {o.name for o in out.graph.output}
    out.graph.output.extend(onnx.helper.make_empty_tensor_value_info(n) for n in names if n not in have)
    return out


def column_sums(x: np.ndarray, geo) -> tuple[np.ndarray, int]:
    """float64 [taps, C] sums of the im2col columns of a float input (NCHW conv / [..., C] gemm), and the rows."""
    from flexiq_trt.quantization.group_stats import im2col_column_sums

    if geo is None:
        return im2col_column_sums(x, None), int(np.prod(x.shape[:-1]))
    x = np.moveaxis(x, 1, -1)
    p, q = geo.output_hw(x.shape[1], x.shape[2])
    return im2col_column_sums(x, geo), x.shape[0] * p * q


def float_pre_mean(el, sums: np.ndarray, rows: int) -> np.ndarray:
    """The float layer's mean pre-activation output per channel, from its input's im2col column sums."""
    w = el.weight.astype(np.float64)
    w = np.moveaxis(w, 1, -1).reshape(w.shape[0], -1) if el.geometry is not None else w
    return w @ (sums / rows).reshape(-1) + el.bias.astype(np.float64)


def channel_mean(a: np.ndarray, conv: bool) -> tuple[np.ndarray, int]:
    ax = 1 if conv else a.ndim - 1
    flat = np.moveaxis(a, ax, -1).reshape(-1, a.shape[ax])
    return flat.sum(axis=0, dtype=np.float64), flat.shape[0]


def fp32_targets(st) -> list[np.ndarray]:
    """Per layer: the FP32 network's mean pre-activation output on the calibration data."""
    names = list(dict.fromkeys(el.input_name for el in st.eligible))
    sess = session(with_outputs(st.prepared, names))
    acc = [[0.0, 0] for _ in st.eligible]
    for batch in st.calib_feeds.batches:
        vals = dict(zip(names, sess.run(names, batch), strict=True))
        for i, el in enumerate(st.eligible):
            s, n = column_sums(vals[el.input_name].astype(np.float64), el.geometry)
            acc[i][0], acc[i][1] = acc[i][0] + s, acc[i][1] + n
    return [float_pre_mean(el, s, n) for el, (s, n) in zip(st.eligible, acc, strict=True)]


def measure(st, layers, ratios, local: bool) -> dict:
    """Per sampled ratio: (quantized mean pre-activation per layer, rung per layer, local float target or None, rows)."""
    from flexiq_trt.graph_passes.simulate_layers import acc_output_name, write_simulation_model
    from flexiq_trt.plugin_spec import RUNTIME_INPUT

    pairs = list(zip(st.eligible, layers, strict=True))
    sim = write_simulation_model(st.prepared, pairs, {}, debug_outputs=True, float_exact=True)
    accs = [acc_output_name(el.output_name) for el in st.eligible]
    inputs = list(dict.fromkeys(el.input_name for el in st.eligible)) if local else []
    sess = session(with_outputs(sim, inputs))
    out = {}
    for r in ratios:
        vec = st.table.vector(r)
        sums, xs = [[0.0, 0] for _ in layers], [[0.0, 0] for _ in layers]
        for batch in st.calib_feeds.batches:
            vals = sess.run(accs + inputs, {**batch, RUNTIME_INPUT: vec})
            xin = dict(zip(inputs, vals[len(accs):], strict=True))
            for i, q in enumerate(layers):
                s, n = channel_mean(vals[i], q.is_conv)
                sums[i][0], sums[i][1] = sums[i][0] + s, sums[i][1] + n
                if local:
                    s, n = column_sums(xin[st.eligible[i].input_name].astype(np.float64), st.eligible[i].geometry)
                    xs[i][0], xs[i][1] = xs[i][0] + s, xs[i][1] + n
        ks = [int(vec[i]) // q.group_size for i, q in enumerate(layers)]
        means = [s / n * q.out_scale().astype(np.float64) + q.bias_table()[k].astype(np.float64)
                 for (s, n), q, k in zip(sums, layers, ks, strict=True)]
        targets = [float_pre_mean(el, s, n) for el, (s, n) in zip(st.eligible, xs, strict=True)] if local else None
        out[r] = (means, ks, targets, [n for _, n in sums])
    return out


def with_rows(layer, rows: np.ndarray):
    """The layer with bias table `rows` (row 0 must be its bias), stored as per-group shifts in π order."""
    return replace(layer, group_bias_shift=rows[:-1] - rows[1:])


def correct(layers, residuals: list[dict[int, list[np.ndarray]]], rows: list[np.ndarray], damp: float = 1.0) -> list:
    """Subtract the residuals, averaged per rung and interpolated linearly over k (0 at rung 0), from the rows."""
    out = list(layers)
    for i, q in enumerate(layers):
        if not residuals[i]:
            continue
        ks = sorted(residuals[i])
        known = np.vstack([np.zeros(q.out_channels)] + [np.mean(residuals[i][k], axis=0) for k in ks])
        at = np.array([0, *ks], dtype=float)
        full = np.stack([np.interp(np.arange(q.group_count + 1), at, known[:, n]) for n in range(q.out_channels)],
                        axis=1)
        full[0] = 0.0
        rows[i] = rows[i] - damp * full
        out[i] = with_rows(q, rows[i])
    return out


def empirical(st, layers, variant: str, ratios, min_rows: int) -> list:
    """The corrected layers for one of `local`, `fp32_seq`, `fp32_jacobi`."""
    rows = [q.bias_table().astype(np.float64) for q in layers]
    target = None if variant == "local" else fp32_targets(st)
    if variant == "fp32_seq":
        passes, damp = [[j] for j in range(len(layers))], 1.0
    else:
        passes, damp = [list(range(len(layers)))] * (1 if variant == "local" else 4), 1.0 if variant == "local" else 0.5
    cur = list(layers)
    for only in passes:
        res: list[dict[int, list[np.ndarray]]] = [{} for _ in layers]
        for means, ks, local, counts in measure(st, cur, ratios, variant == "local").values():
            for i in only:
                if ks[i] > 0 and counts[i] >= min_rows:
                    want = local[i] if local is not None else target[i]
                    res[i].setdefault(ks[i], []).append(means[i] - want)
        cur = correct(cur, res, rows, damp)
    return cur


def degraded_stats_layers(st, layers, ratio: float, bias_only: bool) -> list:
    """GPTQ codes and analytic rows from pass-2 statistics gathered on the quantized network's layer inputs."""
    from flexiq_trt.graph_passes.simulate_layers import write_simulation_model
    from flexiq_trt.plugin_spec import RUNTIME_INPUT
    from flexiq_trt.quantization.group_stats import GroupStatsObserver
    from flexiq_trt.quantization.quantize_layer import quantize_layer
    from flexiq_trt.select.stage import apply_order

    names = list(dict.fromkeys(el.input_name for el in st.eligible))
    sim = write_simulation_model(st.prepared, list(zip(st.eligible, layers, strict=True)), {}, float_exact=True)
    sess = session(with_outputs(sim, names))
    observers = [GroupStatsObserver(rec.base_order, rec.layer.in_channels, rec.layer.group_size,
                                    rec.calibrated.act_scale, not rec.calibrated.unsigned, rec.eligible.geometry,
                                    st.quant.max_rows_per_batch, seed=i).with_code_sums(True)
                 for i, rec in enumerate(st.quantized)]
    vec = st.table.vector(ratio)
    for batch in st.calib_feeds.batches:
        vals = dict(zip(names, sess.run(names, {**batch, RUNTIME_INPUT: vec}), strict=True))
        for el, obs in zip(st.eligible, observers, strict=True):
            obs.update(vals[el.input_name])
    results = []
    for i, (rec, obs) in enumerate(zip(st.quantized, observers, strict=True)):
        deg = obs.result()
        stats = replace(rec.stats, code_sums=deg.code_sums) if bias_only else deg
        results.append(quantize_layer(rec.source, i, rec.base_order, rec.calibrated.act_scale, stats, st.quant))
    return apply_order(results, st.problem, st.order)


def full_hessians(st, max_rows: int = 2048) -> list[np.ndarray | None]:
    """Per 1x1-conv / Gemm layer: E[x x^T] of its float input over every channel (base order), None otherwise."""
    names = list(dict.fromkeys(el.input_name for el in st.eligible))
    sess = session(with_outputs(st.prepared, names))
    sums: list = [None] * len(st.eligible)
    rows = [0] * len(st.eligible)
    rngs = [np.random.default_rng(i) for i in range(len(st.eligible))]
    for batch in st.calib_feeds.batches:
        vals = dict(zip(names, sess.run(names, batch), strict=True))
        for i, (el, rec) in enumerate(zip(st.eligible, st.quantized, strict=True)):
            geo = el.geometry
            if geo is not None and (geo.kernel_shape != (1, 1) or any(geo.pads) or geo.dilations != (1, 1)):
                continue
            x = vals[el.input_name]
            if geo is not None:
                x = np.moveaxis(x[:, :, ::geo.strides[0], ::geo.strides[1]], 1, -1)
            x = x.reshape(-1, x.shape[-1])
            x = np.pad(x, ((0, 0), (0, rec.base_order.shape[0] - x.shape[1])))[:, rec.base_order].astype(np.float64)
            if x.shape[0] > max_rows:
                x = x[rngs[i].choice(x.shape[0], max_rows, replace=False)]
            sums[i] = x.T @ x + (0.0 if sums[i] is None else sums[i])
            rows[i] += x.shape[0]
    return [None if h is None else h / n for h, n in zip(sums, rows, strict=True)]


def order_aware(rec, rank: list[int], hess: np.ndarray, damp: float = 0.01):
    """The base-order layer with 4-bit codes re-rounded in π group order, each group compensating the ones before."""
    from flexiq_trt.quantization import bias_rungs, gptq
    from flexiq_trt.quantization.quantize_layer import from_group_blocks, group_blocks
    from flexiq_trt.quantization.weights import int8_codes, pad_and_permute, to_channels_last, weight_scales

    q, g = rec.layer, rec.layer.group_size
    s_w = weight_scales(rec.source.weight)
    w_cl = pad_and_permute(to_channels_last(rec.source.weight), rec.base_order).astype(np.float64)
    target = group_blocks(w_cl / s_w.reshape((-1,) + (1,) * (w_cl.ndim - 1)), q.group_count, g)
    w8 = group_blocks(int8_codes(w_cl, s_w).astype(np.int32), q.group_count, g)
    w4, steps = np.zeros_like(w8), np.ones(q.group_count, dtype=np.int32)
    err, done = np.zeros((q.out_channels, 0)), []
    for j in rank:
        cols = np.arange(j * g, (j + 1) * g)
        hjj = hess[np.ix_(cols, cols)]
        t = target[j]
        if done:
            prev = np.concatenate(done)
            reg = damp * float(np.mean(np.diag(hjj))) + 1e-12
            t = t + err @ hess[np.ix_(prev, cols)] @ np.linalg.inv(hjj + reg * np.eye(g))
        pick = gptq.gptq_or_plain(t, w8[j], hjj, damp)
        w4[j], steps[j] = pick.codes, pick.step
        eff = pick.effective()
        err, done = np.concatenate([err, target[j] - eff], axis=1), [*done, cols]
    w4eff = w4.astype(np.int64) * steps.astype(np.int64)[:, None, None]
    shift = None if q.group_bias_shift is None else bias_rungs.group_bias_shift(
        rec.stats.code_sums, w8, w4eff, q.out_scale(), q.act_shift_mode, q.act_static_shift)
    out = replace(q, weight_int4=from_group_blocks(w4, q.weight_int8.shape, g).astype(np.int8),
                  weight_step=steps.astype(np.int8), group_bias_shift=shift)
    out.validate()
    return out


def order_aware_layers(st, final) -> list:
    """Every 1x1-conv / Gemm layer re-rounded by `order_aware` in its final π order (others unchanged)."""
    from flexiq_trt.quantization.quantize_layer import reorder_groups
    from flexiq_trt.select.stage import padded_last

    ranks = padded_last(st.order, st.problem, [rec.layer for rec in st.quantized]).group_rank(st.problem)
    out = []
    for rec, rank, hess, ref in zip(st.quantized, ranks, full_hessians(st), final, strict=True):
        layer = ref if hess is None else reorder_groups(order_aware(rec, rank, hess), rank)
        if not (np.array_equal(layer.permutation, ref.permutation) and np.array_equal(layer.weight_int8, ref.weight_int8)):
            raise AssertionError(f"{ref.name}: the order or the INT8 codes changed")
        out.append(layer)
    return out


def evaluate(st, layers, fp32: np.ndarray) -> dict:
    """Per eval ratio: per-crop top-1 agreement with FP32 and mean KL(FP32 || quantized) of the softmax."""
    from flexiq_trt.graph_passes.simulate_layers import write_simulation_model
    from flexiq_trt.plugin_spec import RUNTIME_INPUT
    from flexiq_trt.report.metrics import softmax

    sess = session(write_simulation_model(st.prepared, list(zip(st.eligible, layers, strict=True)), {},
                                          float_exact=True))
    p = softmax(fp32)
    out = {}
    for r in EVAL_RATIOS:
        vec = st.table.vector(r)
        o = np.concatenate([sess.run(None, {**b, RUNTIME_INPUT: vec})[0] for b in st.eval_feeds.batches])
        o = o.reshape(o.shape[0], -1)
        q = softmax(o)
        kl = float(np.mean(np.sum(p * (np.log(p + 1e-12) - np.log(q + 1e-12)), axis=1)))
        out[r] = {"agree": (o.argmax(axis=1) == fp32.argmax(axis=1)).tolist(), "kl": kl}
    return out


def markdown(name: str, results: dict, heldout: int) -> str:
    """Agreement (%) with KL in brackets; non-analytic rows add the McNemar p against `analytic` where p < 0.2."""
    lines = [f"### {name} ({heldout} held-out crops)", "",
             "| variant | " + " | ".join(f"{r:.1%}" for r in EVAL_RATIOS) + " | CPU s |",
             "|---|" + "---|" * (len(EVAL_RATIOS) + 1)]
    base = results["analytic"]["eval"]
    for variant, res in results.items():
        cells = []
        for r in EVAL_RATIOS:
            a = np.array(res["eval"][r]["agree"])
            cell = f"{100 * a.mean():.1f} [{res['eval'][r]['kl']:.3f}]"
            if variant != "analytic":
                b0 = np.array(base[r]["agree"])
                p = ba.mcnemar_p(int((b0 & ~a).sum()), int((~b0 & a).sum()))
                cell += f" p={p:.2f}" if p < 0.2 else ""
            cells.append(cell)
        lines.append(f"| {variant} | " + " | ".join(cells) + f" | {res['cpu_s']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["pplcnet", "efficientnet_lite0"])
    ap.add_argument("--calib", type=int, default=64, help="calibration crops")
    ap.add_argument("--heldout", type=int, default=150, help="held-out crops (photos never calibrated on)")
    ap.add_argument("--variants", nargs="+",
                    default=["local", "fp32_jacobi", "fp32_seq", "stats_deg", "stats_deg_bias", "order_aware",
                             "group_rms", "group_p99"])
    ap.add_argument("--min-rows", type=int, default=1000,
                    help="layers with fewer calibration output rows keep their analytic rows")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    import tempfile

    from flexiq_trt.log import configure
    from flexiq_trt.report.evaluate import run_outputs
    from flexiq_trt.report.evaluate import session as eval_session

    configure(0)
    everything = {}
    for name in args.models:
        with tempfile.TemporaryDirectory() as d:
            t0, c0 = time.perf_counter(), time.process_time()
            st = build_state(name, args.calib, args.heldout, Path(d))
            print(f"{name}: conversion up to selection {time.perf_counter() - t0:.0f}s wall, "
                  f"{time.process_time() - c0:.0f}s CPU", flush=True)
            fp32 = np.concatenate(run_outputs(eval_session(st.original), st.eval_feeds))
            fp32 = fp32.reshape(fp32.shape[0], -1)
            final = [rec.final for rec in st.selected]
            results = {"analytic": {"eval": evaluate(st, final, fp32), "cpu_s": 0.0, "wall_s": 0.0}}
            for variant in args.variants:
                t0, c0 = time.perf_counter(), time.process_time()
                if variant.startswith("group_"):
                    sub = Path(d) / variant
                    sub.mkdir()
                    other = build_state(name, args.calib, args.heldout, sub, variant.removeprefix("group_"))
                    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
                    results[variant] = {"eval": evaluate(other, [rec.final for rec in other.selected], fp32),
                                        "cpu_s": cpu, "wall_s": wall}
                    print(f"  {variant}: whole conversion up to selection {wall:.0f}s wall, {cpu:.0f}s CPU", flush=True)
                    continue
                if variant == "order_aware":
                    layers = order_aware_layers(st, final)
                elif variant.startswith("stats_deg"):
                    layers = degraded_stats_layers(st, final, 1.0, variant == "stats_deg_bias")
                else:
                    layers = empirical(st, final, variant, SAMPLED, args.min_rows)
                wall, cpu = time.perf_counter() - t0, time.process_time() - c0
                for q, ref in zip(layers, final, strict=True):  # the INT8 model never changes
                    assert np.array_equal(q.bias_table()[0], ref.bias_table()[0]), q.name
                results[variant] = {"eval": evaluate(st, layers, fp32), "cpu_s": cpu, "wall_s": wall}
                print(f"  {variant}: {wall:.0f}s wall, {cpu:.0f}s CPU (process, all threads)", flush=True)
        everything[name] = {"heldout": args.heldout, "calib": args.calib, "results": {
            v: {"cpu_s": r["cpu_s"], "wall_s": r["wall_s"], "eval": {str(k): e for k, e in r["eval"].items()}}
            for v, r in results.items()}}
        print(markdown(name, results, args.heldout), flush=True)
        if args.json:
            args.json.write_text(json.dumps(everything, indent=1))


if __name__ == "__main__":
    main()
