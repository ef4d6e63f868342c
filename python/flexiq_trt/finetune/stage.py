"""The finetune stage: distillation of the FlexiQ layers' float weights to the FP32 model, then re-quantization.

Runs after selection, which fixed every layer's π and, per ratio, its n4 (the ratio table). The
student is the prepared FP32 graph with each FlexiQ layer replaced by a `FakeQuantLayer` (the
contract in float, straight-through rounding); the teacher is the same graph in FP32. Each step
draws a batch of (augmented) calibration inputs and distils the student to the FP32 output (KL of
the softmax for classifiers, else MSE relative to the FP32 output's energy), each ratio's loss over
its value before training. By default (`train = "four_bit"`) only the float weights the 4-bit codes
are rounded from train, so the INT8 model cannot change and each step runs one pass at a ratio
drawn from the ladder; with `"shared"` the float weights and biases train, with FlexiQ's dual
forward: an INT8 pass (n4 = 0) and a ratio pass. Adam runs until the time budget is spent. Then
every layer is quantized again by the quantization stage from its finetuned float weights, with the
same calibration scales, statistics, base order and the SAME global order, so the ratio table stays
valid; by default with plain 4-bit rounding, the codes the training saw (GPTQ codes of the
finetuned weights had the higher KL in most cells, docs/accuracy.md, "Distillation finetuning
(`--finetune`)").
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
import onnx

from flexiq_trt.calibration.feeds import FeedSet
from flexiq_trt.finetune.config import FinetuneConfig, require_torch
from flexiq_trt.log import get_logger, stage
from flexiq_trt.plugin_spec import ShiftMode
from flexiq_trt.quantization.config import QuantConfig
from flexiq_trt.quantization.quantize_layer import quantize_layer
from flexiq_trt.quantization.stage import QuantizedRecord
from flexiq_trt.ratios import RatioTable
from flexiq_trt.select.base import GlobalOrder, SelectionProblem
from flexiq_trt.select.stage import SelectedRecord, finalize

_log = get_logger(__name__)

LOG_EVERY_S = 10.0
EVAL_SAMPLES = 64  # calibration samples (no augmentation) on which the loss is reported before and after


@dataclass(frozen=True)
class FinetuneResult:
    """The re-quantized layers (base order and in the kept global order) and what the finetune did."""

    records: list[QuantizedRecord]
    selected: list[SelectedRecord]
    summary: dict  # steps, seconds, losses before/after per ladder ratio (for the report and the ratio table)
    # the same finetuned layers stored with the other rounding (FinetuneConfig.rounding), base order: a report
    # variant, so each run shows plain against the configured rounding; None when both are the same
    other: tuple[str, list[QuantizedRecord]] | None = None


def base_positions(rec: SelectedRecord) -> np.ndarray:
    """The base-order position of each channel of the layer's final π order (int [C_pad])."""
    base = rec.quantized.base_order
    position = np.empty_like(base)
    position[base] = np.arange(base.shape[0], dtype=base.dtype)
    return position[rec.final.permutation]


def code_means(rec: SelectedRecord) -> tuple[np.ndarray, np.ndarray] | None:
    """Mean 8-bit and effective 4-bit im2col columns [taps, C_pad] in the layer's final π order, or None.

    None when the layer has no bias correction (every rung uses its bias). The 4-bit means follow the
    layer's shift mode: dynamic, or per group the static shift's column (bias_rungs.group_bias_shift).
    """
    stats, final = rec.quantized.stats, rec.final
    if final.group_bias_shift is None or stats.code_sums is None:
        return None
    m8, m4_dyn, m4_static = stats.code_sums.means()
    cols = base_positions(rec)
    if final.act_shift_mode == ShiftMode.DYNAMIC:
        m4 = m4_dyn[:, cols]
    else:
        g = final.group_size
        p = np.repeat(final.act_static_shift.astype(np.int64), g)
        m4 = m4_static[p, :, cols].T  # [taps, C_pad]: each column at its group's static shift
    return np.ascontiguousarray(m8[:, cols]), np.ascontiguousarray(m4)


def _student(prepared: onnx.ModelProto, selected: list[SelectedRecord], four_bit_only: bool):
    """(teacher, student, fake-quant layers) over the prepared graph."""
    from flexiq_trt.finetune.fake_quant import FakeQuantLayer
    from flexiq_trt.finetune.torch_graph import Replacement, TorchGraph

    layers, repl = [], []
    for rec in selected:
        src = rec.quantized.source
        mod = FakeQuantLayer(rec.final, src.weight, src.bias, code_means(rec), four_bit_only)
        layers.append(mod)
        el = rec.eligible
        repl.append(Replacement(el.input_name, el.output_name, tuple(el.replaced_nodes), mod))
    return TorchGraph(prepared), TorchGraph(prepared, repl), layers


class Batches:
    """Random batches of the calibration inputs, augmented (flips, shifted crops) when asked."""

    def __init__(self, feeds: FeedSet, config: FinetuneConfig) -> None:
        self.arrays = {k: np.concatenate([b[k] for b in feeds.batches]) for k in feeds.batches[0]}
        self.count = int(next(iter(self.arrays.values())).shape[0])
        self.config, self.rng = config, np.random.default_rng(config.seed)
        self._queue: list[int] = []

    @staticmethod
    def augmentable(x: np.ndarray) -> bool:
        """Whether an input is an image batch (4-D float, wider than one pixel) that flips and shifts apply to."""
        return x.ndim == 4 and x.dtype.kind == "f" and x.shape[-1] > 1

    def augment(self, x: np.ndarray) -> np.ndarray:
        """Per sample: mirror with probability 1/2, shift by up to 1/16 of the side (reflected border)."""
        out = x.copy()
        b, _, h, w = x.shape
        dh, dw = max(1, h // 16), max(1, w // 16)
        padded = np.pad(x, ((0, 0), (0, 0), (dh, dh), (dw, dw)), mode="reflect")
        for i in range(b):
            oy, ox = self.rng.integers(0, 2 * dh + 1), self.rng.integers(0, 2 * dw + 1)
            out[i] = padded[i, :, oy:oy + h, ox:ox + w]
            if self.rng.random() < 0.5:
                out[i] = out[i, :, :, ::-1]
        return out

    def next(self) -> dict[str, np.ndarray]:
        """The next batch (a fresh permutation of the samples each epoch)."""
        while len(self._queue) < self.config.batch_size:
            self._queue += self.rng.permutation(self.count).tolist()
        idx, self._queue = self._queue[: self.config.batch_size], self._queue[self.config.batch_size:]
        feed = {k: v[idx] for k, v in self.arrays.items()}
        if self.config.augment:
            feed = {k: self.augment(v) if self.augmentable(v) else v for k, v in feed.items()}
        return feed

    def fixed(self, count: int) -> dict[str, np.ndarray]:
        """The first `count` samples, unaugmented (where the loss is reported)."""
        return {k: v[:count] for k, v in self.arrays.items()}


def distillation_loss(teacher, student):
    """KL(FP32 ‖ student) of the softmax for [B, C] outputs, else the squared error over the FP32 energy."""
    import torch

    if teacher.dim() == 2 and teacher.shape[1] > 1:
        log_t = torch.log_softmax(teacher, dim=1)
        return (log_t.exp() * (log_t - torch.log_softmax(student, dim=1))).sum(dim=1).mean()
    return ((student - teacher) ** 2).mean() / (teacher ** 2).mean().clamp_min(1e-12)


class _Runner:
    """Teacher and student forward passes at a given ratio (each layer's n4 from the ratio table)."""

    def __init__(self, teacher, student, layers, table: RatioTable) -> None:
        self.teacher, self.student, self.layers, self.table = teacher, student, layers, table

    @staticmethod
    def tensors(feed: dict[str, np.ndarray]) -> dict:
        import torch

        return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in feed.items()}

    def set_ratio(self, ratio: float) -> None:
        for mod, n4 in zip(self.layers, self.table.vector(ratio), strict=True):
            mod.n4 = int(n4)

    def target(self, feed: dict):
        import torch

        with torch.no_grad():
            return self.teacher.logits(feed)

    def loss(self, feed: dict, target, ratio: float):
        self.set_ratio(ratio)
        return distillation_loss(target, self.student.logits(feed))

    def weighted_loss(self, feed: dict, target, ratio: float, scale: dict[str, float]):
        """The loss at `ratio` over its value before training: every ratio weighs alike, not the 100% one most."""
        return self.loss(feed, target, ratio) / max(scale.get(f"{ratio:.4f}", 1.0), 1e-12)

    def losses(self, feed: dict[str, np.ndarray], ratios: list[float], batch: int) -> dict[str, float]:
        """Mean distillation loss per ratio on `feed` (no gradient), batch by batch."""
        import torch

        n = int(next(iter(feed.values())).shape[0])
        out = {}
        with torch.no_grad():
            parts = [self.tensors({k: v[i:i + batch] for k, v in feed.items()}) for i in range(0, n, batch)]
            targets = [self.target(p) for p in parts]
            for r in ratios:
                total = sum(float(self.loss(p, t, r)) * int(t.shape[0]) for p, t in zip(parts, targets, strict=True))
                out[f"{r:.4f}"] = total / n
        return out


def _train(runner: _Runner, batches: Batches, ratios: list[float], config: FinetuneConfig,
           scale: dict[str, float]) -> dict:
    """The training loop under the time budget (and the step limit); returns the steps and seconds it ran."""
    import torch

    params = [p for mod in runner.layers for p in mod.parameters()]
    opt = torch.optim.Adam(params, lr=config.lr)
    rng = np.random.default_rng(config.seed + 1)
    sampled = [r for r in ratios if r > 0] or [0.0]
    four_bit = config.train == "four_bit"  # the INT8 pass has nothing to train then: skipped
    start, last_log, steps = time.perf_counter(), time.perf_counter(), 0
    recent: list[tuple[float, float]] = []
    while time.perf_counter() - start < config.seconds and (config.max_steps == 0 or steps < config.max_steps):
        feed = runner.tensors(batches.next())
        target = runner.target(feed)
        opt.zero_grad(set_to_none=True)
        loss8 = torch.zeros(())
        if not four_bit:
            loss8 = runner.weighted_loss(feed, target, 0.0, scale)
            loss8.backward()
        lossr = torch.zeros(())
        if config.ratio_pass or four_bit:
            lossr = runner.weighted_loss(feed, target, float(rng.choice(sampled)), scale)
            lossr.backward()
        opt.step()
        steps += 1
        recent = (recent + [(loss8.item(), lossr.item())])[-20:]
        if time.perf_counter() - last_log >= LOG_EVERY_S:
            last_log = time.perf_counter()
            m8, mr = np.mean(recent, axis=0)
            _log.info("finetune: step %d, %.0f / %.0f s, loss over its initial value: INT8 %.3f, sampled ratio %.3f "
                      "(mean of last %d steps)",
                      steps, last_log - start, config.seconds, m8, mr, len(recent))
    return {"steps": steps, "train_seconds": time.perf_counter() - start}


def _requantize(index: int, rec: SelectedRecord, mod, quant: QuantConfig) -> QuantizedRecord:
    """The layer quantized again (base order) from the module's float values; bias rungs follow the new codes."""
    import torch

    q = rec.quantized
    with torch.no_grad():
        if mod.four_bit_only:
            src = replace(q.source, weight4=mod.float_weight4().numpy().astype(np.float32))
        else:
            src = replace(q.source, weight=mod.float_weight().numpy().astype(np.float32),
                          bias=mod.float_bias().numpy().astype(np.float32))
    return replace(q, source=src, result=quantize_layer(src, index, q.base_order, q.layer.act_scale, q.stats, quant))


def finetune_layers(prepared: onnx.ModelProto, selected: list[SelectedRecord], problem: SelectionProblem,
                    order: GlobalOrder, table: RatioTable, feeds: FeedSet, quant: QuantConfig,
                    config: FinetuneConfig) -> FinetuneResult:
    """Distil, then re-quantize every layer from its finetuned float weights in the same order (module docstring)."""
    require_torch()
    import torch

    t0, c0 = time.perf_counter(), time.process_time()
    threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        result = _finetune(prepared, selected, problem, order, table, feeds, quant, config)
    finally:
        torch.set_num_threads(threads)
    result.summary.update(seconds=time.perf_counter() - t0, cpu_seconds=time.process_time() - c0)
    return result


def _finetune(prepared: onnx.ModelProto, selected: list[SelectedRecord], problem: SelectionProblem,
              order: GlobalOrder, table: RatioTable, feeds: FeedSet, quant: QuantConfig,
              config: FinetuneConfig) -> FinetuneResult:
    """finetune_layers without the thread setting and the timing."""
    import torch

    with stage(f"finetune ({len(selected)} layers, {config.seconds:.0f} s budget, {feeds.samples} calibration "
               "samples)", _log):
        torch.manual_seed(config.seed)
        teacher, student, layers = _student(prepared, selected, config.train == "four_bit")
        runner, batches = _Runner(teacher, student, layers, table), Batches(feeds, config)
        ratios = sorted({0.0, *table.ladder})
        fixed = batches.fixed(min(EVAL_SAMPLES, batches.count))
        before = runner.losses(fixed, ratios, config.batch_size)
        trained = _train(runner, batches, ratios, config, before)
        after = runner.losses(fixed, ratios, config.batch_size)
        plain = replace(quant, weight_rounding="plain")
        stored, other = (plain, quant) if config.rounding == "plain" else (quant, plain)
        pairs = list(enumerate(zip(selected, layers, strict=True)))
        records = [_requantize(i, rec, mod, stored) for i, (rec, mod) in pairs]
        alternative = None if other.weight_rounding == stored.weight_rounding else (
            other.weight_rounding, [_requantize(i, rec, mod, other) for i, (rec, mod) in pairs])
        new_selected, new_table = finalize(records, problem, order)
        if new_table.order != table.order:
            from flexiq_trt.errors import FlexiqInternalError

            raise FlexiqInternalError("finetune: re-quantization changed the global order")
    summary = {**trained, "budget_seconds": config.seconds, "threads": torch.get_num_threads(), "batch_size": config.batch_size, "lr": config.lr,
               "train": config.train, "ratio_pass": config.ratio_pass or config.train == "four_bit",
               "int8_pass": config.train == "shared", "augment": config.augment,
               "calibration_samples": batches.count, "loss_samples": int(next(iter(fixed.values())).shape[0]),
               "loss_before": before, "loss_after": after, "stored_rounding": stored.weight_rounding}
    _log.info("finetune: %d steps in %.0f s; distillation loss on %d calibration samples (fake-quant, plain w4) "
              "before -> after: %s", trained["steps"], trained["train_seconds"], summary["loss_samples"],
              ", ".join(f"{r}: {before[r]:.4f} -> {after[r]:.4f}" for r in before))
    return FinetuneResult(records, new_selected, summary, alternative)
