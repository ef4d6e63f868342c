"""Block-by-block learned rounding of the stored 4-bit codes (on by default where PyTorch is installed).

The BRECQ / QDrop recipe within the runtime contract (docs/accuracy.md, "Block-by-block learned
rounding (`--block-rounding`)"): after selection, the graph is cut into blocks (`graph_blocks.py`)
and, in graph order, each block's 4-bit codes learn which way to round (AdaRound,
`rounding_layer.py`) so that the block reproduces the FP32 network's block output. What the block
sees is what the quantized network gives it: its input at a ratio is the previous blocks' output
at that ratio with their learned codes (QDrop: each element is the FP32 one with probability
`drop`). A code serves every ratio at which its group is 4-bit, so every step draws a ratio from
a grid (k / rungs, finer than the ladder: a ratio between two trained ones mixes the layers' `n4`
in ways the blocks never saw) and sets each layer's `n4` from the ratio table; each ratio's loss is
taken over its value before learning, so the low ratios weigh as much as 100%. A block whose
learned codes do worse than the stored ones on the reported calibration samples (the mean over
the ratios of the loss after over before) keeps the stored codes. Only 4-bit codes change:
the INT8 model, π, the global order and each group's step are kept, so the ratio table stays valid
and the 0% model is bit-identical; the bias rungs are recomputed from the new codes. Steps are
drawn only among the ratios that make the block 4-bit, and ratios at which a block gets the same
inputs and the same n4 share one computation of its outputs (the early, costly blocks at the low
ratios); a time budget leaves the blocks it does not reach with their stored codes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import onnx

from flexiq_trt.calibration.feeds import FeedSet
from flexiq_trt.errors import FlexiqInternalError
from flexiq_trt.finetune.config import BlockRoundingConfig, require_torch
from flexiq_trt.log import get_logger, stage
from flexiq_trt.quantization import bias_rungs
from flexiq_trt.quantization.quantize_layer import group_blocks
from flexiq_trt.quantization.stage import QuantizedRecord
from flexiq_trt.ratios import RatioTable
from flexiq_trt.select.base import GlobalOrder, SelectionProblem
from flexiq_trt.select.stage import SelectedRecord, finalize

_log = get_logger(__name__)

FIXED_SAMPLES = 32  # calibration samples on which each block's loss is reported before and after
WARMUP = 0.2  # share of a block's steps without the rounding regularizer (AdaRound)
OUTPUT_BATCH = 64  # samples per forward pass when a block's outputs are collected (no gradients kept)
BETA = (20.0, 2.0)  # the regularizer's exponent, annealed from the first to the second after the warm-up


@dataclass(frozen=True)
class BlockRoundingResult:
    """The layers with learned 4-bit codes (base order and in the kept global order) and what was done."""

    records: list[QuantizedRecord]
    selected: list[SelectedRecord]
    summary: dict  # per block: layers, steps, codes changed, losses before/after per ratio; totals


def round_blocks(prepared: onnx.ModelProto, selected: list[SelectedRecord], problem: SelectionProblem,
                 order: GlobalOrder, table: RatioTable, feeds: FeedSet, config: BlockRoundingConfig
                 ) -> BlockRoundingResult:
    """Learn every block's 4-bit rounding, then store the codes in the same order (module docstring)."""
    require_torch("--block-rounding")
    import torch

    from flexiq_trt.finetune.torch_graph import check_graph

    check_graph(prepared, {name for rec in selected for name in rec.eligible.replaced_nodes})
    t0, c0 = time.perf_counter(), time.process_time()
    threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        with stage(f"block rounding ({len(selected)} layers, {config.iterations} steps per block, "
                   f"{feeds.samples} calibration samples, up to {config.views} views and {config.max_samples} "
                   "samples)", _log):
            codes, summary = _learn(prepared, selected, table, feeds, config)
    finally:
        torch.set_num_threads(threads)
    records = [with_codes(rec, c) for rec, c in zip(selected, codes, strict=True)]
    new_selected, new_table = finalize(records, problem, order)
    if new_table.order != table.order:
        raise FlexiqInternalError("block rounding: storing the learned codes changed the global order")
    summary.update(seconds=time.perf_counter() - t0, cpu_seconds=time.process_time() - c0,
                   iterations=config.iterations, views=config.views, drop=config.drop, lr=config.lr,
                   reg_weight=config.reg_weight, rungs=config.rungs, calibration_samples=feeds.samples,
                   max_samples=config.max_samples,
                   budget_seconds=config.seconds)
    return BlockRoundingResult(records, new_selected, summary)


def with_codes(rec: SelectedRecord, codes_final: np.ndarray) -> QuantizedRecord:
    """The record's base-order layer with new 4-bit codes (given in the final π order), bias shifts recomputed."""
    from flexiq_trt.finetune.stage import base_positions

    q = rec.quantized
    layer = q.result.layer
    w4 = np.empty_like(layer.weight_int4)
    w4[..., base_positions(rec)] = codes_final
    shift = layer.group_bias_shift
    if shift is not None and q.stats.code_sums is not None:
        g = layer.group_size
        gc = layer.padded_channels // g
        w8 = group_blocks(layer.weight_int8.astype(np.int32), gc, g)
        w4eff = group_blocks(w4.astype(np.int64), gc, g) * layer.weight_step.astype(np.int64)[:, None, None]
        out_scale = (np.float32(layer.act_scale) * layer.weight_scale.astype(np.float32)).astype(np.float32)
        shift = bias_rungs.group_bias_shift(q.stats.code_sums, w8, w4eff, out_scale, layer.act_shift_mode,
                                            layer.act_static_shift)
    new = replace(layer, weight_int4=w4, group_bias_shift=shift)
    new.validate()
    return replace(q, result=replace(q.result, layer=new))


def learning_samples(feeds: FeedSet, config: BlockRoundingConfig) -> dict[str, np.ndarray]:
    """The calibration samples, then augmented copies of them (flips, shifts: finetune's augmentation).

    At most `max_samples` in all: `views - 1` copies while they fit, fewer when the calibration set is
    larger, a seeded subset of it when it alone is larger. Inputs that do not augment are repeated
    beside the augmented ones; when none augments, one view.
    """
    from flexiq_trt.finetune.config import FinetuneConfig
    from flexiq_trt.finetune.stage import Batches

    batches = Batches(feeds, FinetuneConfig(seed=config.seed))
    arrays = batches.arrays
    if batches.count > config.max_samples:  # a seeded subset, in calibration order
        keep = np.sort(np.random.default_rng(config.seed).choice(batches.count, config.max_samples, replace=False))
        arrays = {k: v[keep] for k, v in arrays.items()}
    views = min(config.views, max(1, config.max_samples // min(batches.count, config.max_samples)))
    if views == 1 or not any(batches.augmentable(v) for v in arrays.values()):
        return arrays  # copies of inputs that do not augment (token ids) would only repeat the work
    return {k: np.concatenate([v] + [batches.augment(v) for _ in range(views - 1)])
            if batches.augmentable(v) else np.concatenate([v] * views) for k, v in arrays.items()}


def _target(rec: SelectedRecord) -> np.ndarray:
    """The float weight the stored 4-bit codes approximate: the finetuned one after `--finetune`, else the layer's."""
    src = rec.quantized.source
    return src.weight if src.weight4 is None else src.weight4


def _learn(prepared: onnx.ModelProto, selected: list[SelectedRecord], table: RatioTable, feeds: FeedSet,
           config: BlockRoundingConfig) -> tuple[list[np.ndarray], dict]:
    """Every layer's learned codes (π order) and the summary."""
    learner, blocks = block_learner(prepared, selected, table, feeds, config)
    layers = learner.layers
    start, report = time.perf_counter(), []
    inputs = {r: {name: learner.fp[name] for name in blocks[0].inputs} for r in learner.ratios}
    for bi, block in enumerate(blocks):
        if config.seconds and time.perf_counter() - start > config.seconds:
            _log.warning("block rounding: the %.0f s budget is spent after %d of %d blocks; the other %d keep their "
                         "stored codes (--block-rounding-seconds)", config.seconds, bi, len(blocks), len(blocks) - bi)
            break
        entry, inputs = learner.learn(block, inputs)
        entry["layers"] = [selected[i].final.name for i in block.layers]
        report.append(entry)
        elapsed = time.perf_counter() - start
        _log.info("block rounding: block %d/%d (%d layers, %d codes): %s; loss over before at "
                  "ratios %s: %s; %.0f s, about %.0f s left", bi + 1, len(blocks), len(block.layers), entry["codes"],
                  f"{entry['changed']} codes changed" if entry["kept"] else "learned codes worse on the calibration "
                  "samples over the ratios, stored codes kept", "/".join(f"{r:g}" for r in learner.ratios),
                  " ".join(f"{entry['loss_after'][k] / max(v, 1e-12):.3f}" for k, v in entry["loss_before"].items()),
                  elapsed, elapsed / (bi + 1) * (len(blocks) - bi - 1))
    return [mod.stored_codes() for mod in layers], {
        "blocks": report, "blocks_not_reached": len(blocks) - len(report),
        "train_seconds": time.perf_counter() - start, "samples": learner.samples,
        "fixed_samples": int(learner.fixed.shape[0])}


def block_learner(prepared: onnx.ModelProto, selected: list[SelectedRecord], table: RatioTable, feeds: FeedSet,
                  config: BlockRoundingConfig) -> tuple[BlockLearner, list]:
    """The learner over the student graph (rounding layers in place of the FlexiQ nodes) and the graph's blocks."""
    import torch

    from flexiq_trt.finetune.graph_blocks import partition
    from flexiq_trt.finetune.rounding_layer import RoundingLayer
    from flexiq_trt.finetune.stage import code_means
    from flexiq_trt.finetune.torch_graph import Replacement, TorchGraph

    torch.manual_seed(config.seed)
    layers = [RoundingLayer(rec.final, _target(rec), rec.quantized.source.bias, code_means(rec)) for rec in selected]
    repl = [Replacement(rec.eligible.input_name, rec.eligible.output_name, tuple(rec.eligible.replaced_nodes), m)
            for rec, m in zip(selected, layers, strict=True)]
    teacher, student = TorchGraph(prepared), TorchGraph(prepared, repl)
    blocks = partition(student, config.min_layers)
    arrays = learning_samples(feeds, config)
    _log.info("block rounding: %d blocks of %s FlexiQ layers", len(blocks), [len(b.layers) for b in blocks])
    learner = BlockLearner(student, layers, _teacher_tensors(teacher, blocks, arrays, config.batch_size),
                           table, tuple(next(iter(arrays.values())).shape), config)
    return learner, blocks


def _teacher_tensors(teacher, blocks, arrays: dict[str, np.ndarray], batch: int) -> dict:
    """The FP32 network's tensors at every block boundary, for all samples (torch, concatenated)."""
    import torch

    names = {name for b in blocks for name in (*b.inputs, *b.outputs)}
    parts: dict[str, list] = {name: [] for name in names}
    n = int(next(iter(arrays.values())).shape[0])
    with torch.no_grad():
        for i in range(0, n, batch):
            env = teacher({k: torch.from_numpy(np.ascontiguousarray(v[i:i + batch])) for k, v in arrays.items()})
            for name in names:
                parts[name].append(env[name])
    return {k: torch.cat(v) for k, v in parts.items()}


class BlockLearner:
    """Learns one block's rounding at a time from its quantized-network inputs per ratio (module docstring)."""

    def __init__(self, student, layers: list, fp: dict, table: RatioTable, input_shape: tuple[int, ...],
                 config: BlockRoundingConfig) -> None:
        import torch

        from flexiq_trt.finetune.graph_blocks import shape_steps

        self.student, self.layers, self.fp, self.config = student, layers, fp, config
        self.input_shape, self.shapes = input_shape, shape_steps(student)
        self.ratios = [k / config.rungs for k in range(1, config.rungs + 1)]
        self.vectors = {r: table.vector(r) for r in self.ratios}
        self.samples = int(next(iter(fp.values())).shape[0])
        self.fixed = torch.arange(min(self.samples, FIXED_SAMPLES))
        self.rng = np.random.default_rng(config.seed)

    def set_ratio(self, r: float) -> None:
        """Every layer's n4 at ratio r (the ratio table)."""
        for mod, n4 in zip(self.layers, self.vectors[r], strict=True):
            mod.n4 = int(n4)

    def run(self, block, feed: dict, r: float) -> dict:
        """The block's outputs at ratio r."""
        from flexiq_trt.finetune.graph_blocks import run_block

        self.set_ratio(r)
        return run_block(self.student, block, feed, self.shapes, self.input_shape)

    def loss(self, block, inputs: dict, r: float, idx, mix: bool, energy: dict):
        """The block's output error at ratio r on samples `idx`, each output over its FP32 energy (QDrop mix if asked)."""
        import torch

        feed = {}
        for name in block.inputs:
            x = inputs[r][name][idx]
            if mix and self.config.drop > 0 and x.is_floating_point():
                x = torch.where(torch.rand_like(x) < self.config.drop, self.fp[name][idx], x)
            feed[name] = x
        out = self.run(block, feed, r)
        return sum(((out[k] - self.fp[k][idx]) ** 2).mean() / energy[k] for k in block.outputs) / len(block.outputs)

    def same_work(self, block, inputs: dict, r: float) -> tuple:
        """What the block computes at ratio r: its input tensors (by identity) and its layers' n4.

        Two ratios with the same key give the same outputs, so each is computed once: in the early blocks
        the low ratios leave every layer in INT8 on the same inputs, and those blocks are the costly ones
        (the largest activations).
        """
        return (tuple(id(inputs[r][name]) for name in block.inputs),
                tuple(int(self.vectors[r][i]) for i in block.layers))

    def per_ratio(self, block, inputs: dict, compute: Callable[[float], Any]) -> dict[float, Any]:
        """`compute(r)` for every ratio, called once per distinct work (`same_work`) and shared by the others."""
        done: dict[tuple, Any] = {}
        for r in self.ratios:
            key = self.same_work(block, inputs, r)
            if key not in done:
                done[key] = compute(r)
        return {r: done[self.same_work(block, inputs, r)] for r in self.ratios}

    def active(self, block) -> list[float]:
        """The ratios at which some layer of the block is 4-bit (the others give no gradient)."""
        return [r for r in self.ratios if any(self.vectors[r][i] > 0 for i in block.layers)]

    def losses(self, block, inputs: dict, energy: dict) -> dict[str, float]:
        """The loss with hard codes on the fixed samples, per ratio (computed once per distinct work)."""
        import torch

        with torch.no_grad():
            per = self.per_ratio(block, inputs, lambda r: float(self.loss(block, inputs, r, self.fixed, False, energy)))
        return {f"{r:.4f}": v for r, v in per.items()}

    def learn(self, block, inputs: dict) -> tuple[dict, dict]:
        """Learn the block's codes; returns (its summary entry, the next block's inputs per ratio)."""
        import torch

        cfg, mods = self.config, [self.layers[i] for i in block.layers]
        energy = {k: float((self.fp[k] ** 2).mean().clamp_min(1e-12)) for k in block.outputs}
        for mod in mods:
            mod.hard = True
        before = self.losses(block, inputs, energy)
        for mod in mods:
            mod.hard = False
        params = [mod.rounding for mod in mods]
        start = [p.detach().clone() for p in params]
        total = sum(p.numel() for p in params)
        opt = torch.optim.Adam(params, lr=cfg.lr)
        active = self.active(block)
        for step in range(cfg.iterations if active else 0):  # no ratio makes the block 4-bit: nothing to learn
            frac = step / cfg.iterations
            beta = BETA[0] - (BETA[0] - BETA[1]) * max(0.0, (frac - WARMUP) / (1 - WARMUP))
            r = float(self.rng.choice(active))
            idx = torch.from_numpy(self.rng.choice(self.samples, min(cfg.batch_size, self.samples), replace=False))
            loss = self.loss(block, inputs, r, idx, True, energy) / max(before[f"{r:.4f}"], 1e-12)
            if frac > WARMUP:
                loss = loss + cfg.reg_weight * sum(mod.regularizer(beta) for mod in mods) / total
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        for mod in mods:
            mod.hard = True
        after = self.losses(block, inputs, energy)
        kept = float(np.mean([after[k] / max(v, 1e-12) for k, v in before.items()])) <= 1.0
        if not kept:  # worse than the stored codes on the reported samples, over the rungs: keep those
            with torch.no_grad():
                for p, p0 in zip(params, start, strict=True):
                    p.copy_(p0)
            after = self.losses(block, inputs, energy)
        changed = sum(int((mod.stored_codes() != mod.layer.weight_int4).sum()) for mod in mods)
        with torch.no_grad():
            nxt = self.per_ratio(block, inputs, lambda r: self._outputs(block, inputs[r], r))
        return {"codes": total, "changed": changed, "kept": kept, "loss_before": before, "loss_after": after}, nxt

    def _outputs(self, block, inputs: dict, r: float) -> dict:
        """The block's outputs at ratio r for all samples, batch by batch (the next block's inputs)."""
        import torch

        b, n = max(self.config.batch_size, OUTPUT_BATCH), self.samples
        parts = [self.run(block, {k: v[i:i + b] for k, v in inputs.items()}, r) for i in range(0, n, b)]
        return {name: torch.cat([p[name] for p in parts]) for name in block.outputs}
