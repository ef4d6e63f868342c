"""Distillation finetuning options (`convert --finetune`; one frozen dataclass, the CLI's flags come from it).

Off by default: it needs the optional PyTorch extra (`pip install 'flexiq_trt[finetune]'`, a pinned
CPU build) and minutes of CPU, and it changes the float weights the INT8 model is quantized from.
"""

from __future__ import annotations

from dataclasses import dataclass

from flexiq_trt.errors import ConfigError
from flexiq_trt.options import option

TRAIN_MODES = ("four_bit", "shared")
ROUNDINGS = ("plain", "configured")
TORCH_EXTRA = "pip install 'flexiq_trt[finetune]' (torch==2.13.0, CPU)"


@dataclass(frozen=True)
class FinetuneConfig:
    """Distillation finetuning of the FlexiQ layers' float weights after channel selection."""

    enabled: bool = option(
        False, "after selection, finetune the FlexiQ layers' float weights and biases by distillation to the "
        "FP32 model (an INT8 pass and a pass at a ladder ratio per step, on augmented calibration inputs), "
        "then quantize them again in the same order; needs the finetune extra (docs/accuracy.md, "
        "\"Distillation finetuning (`--finetune`)\")", flags=("--finetune",))
    train: str = option(
        "four_bit", "what trains: four_bit = the float weights the stored 4-bit codes are rounded from (the bias "
        "rungs follow), the INT8 model stays bit-identical (one pass per step at a ladder ratio); shared = "
        "the layers' float weights and biases, INT8 codes included (an INT8 pass and a ratio pass per step)",
        choices=TRAIN_MODES)
    rounding: str = option(
        "configured", "4-bit codes stored after finetuning: configured (--weight-rounding, by default GPTQ towards "
        "the finetuned weights; better on both measured models, docs/accuracy.md) or plain (smallest step, the codes "
        "the training saw); the report shows the other one as finetuned_<rounding>", choices=ROUNDINGS)
    seconds: float = option(120.0, "time budget of the training loop in seconds (wall clock)")
    max_steps: int = option(0, "stop after this many steps even within the time budget (0 = no limit)")
    batch_size: int = option(16, "calibration samples per step")
    lr: float = option(
        0.01, "Adam learning rate in int8 weight steps: a weight moves by about lr times its row's INT8 "
        "step per update (biases in units of 32 output steps)")
    ratio_pass: bool = option(
        True, "with --finetune-train shared: besides the INT8 pass, one pass per step at a ratio drawn from the "
        "ladder's non-zero ratios (FlexiQ's dual forward); off: INT8 pass only")
    augment: bool = option(
        True, "random horizontal flips and shifted crops of image inputs (4-D float), against overfitting "
        "a small calibration set")
    seed: int = option(0, "seed of the batch order, the augmentation and the sampled ratios")
    threads: int = option(
        1, "PyTorch intra-op threads while finetuning (0 = PyTorch's default); 1 because on a shared 2-core "
        "machine two threads made the fmnist steps 4-13x slower (OpenMP threads spinning against other load)")

    def __post_init__(self) -> None:
        if self.train not in TRAIN_MODES:
            raise ConfigError(f"finetune train must be one of {TRAIN_MODES}, got {self.train!r}")
        if self.rounding not in ROUNDINGS:
            raise ConfigError(f"finetune rounding must be one of {ROUNDINGS}, got {self.rounding!r}")
        if not self.seconds > 0:
            raise ConfigError(f"finetune seconds must be > 0, got {self.seconds}")
        if self.max_steps < 0:
            raise ConfigError(f"finetune max_steps must be >= 0 (0 = no limit), got {self.max_steps}")
        if self.batch_size < 1:
            raise ConfigError(f"finetune batch_size must be >= 1, got {self.batch_size}")
        if self.threads < 0:
            raise ConfigError(f"finetune threads must be >= 0 (0 = PyTorch's default), got {self.threads}")
        if not 0 < self.lr < 1:
            raise ConfigError(f"finetune lr must be in (0, 1) int8 weight steps, got {self.lr}")


@dataclass(frozen=True)
class BlockRoundingConfig:
    """Block-by-block learned rounding of the stored 4-bit codes after selection (finetune/block_rounding.py).

    On by default where it can run (`enabled=None`: PyTorch installed and the graph expressible in
    PyTorch; otherwise the conversion goes on without it and the report says why); a few minutes of
    2-core CPU on a MobileNet-sized model, capped by `seconds` (docs/accuracy.md, "Block-by-block
    learned rounding (`--block-rounding`)").
    """

    enabled: bool | None = option(
        None, "after selection, learn which way each stored 4-bit code rounds, block by block, so that each block "
        "of the quantized network reproduces the FP32 block output at ratios drawn from the ladder (AdaRound over "
        "BRECQ blocks with QDrop inputs); INT8 and the order are kept; needs the finetune extra "
        "(docs/accuracy.md, \"Block-by-block learned rounding (`--block-rounding`)\"); unset = on where PyTorch is "
        "installed and the graph runs in it, skipped with a report line otherwise; --block-rounding makes a "
        "missing extra or an unsupported graph an error, --no-block-rounding turns it off",
        flags=("--block-rounding",))
    seconds: float = option(
        600.0, "time budget of the learning in seconds (wall clock); blocks not reached by then keep their stored "
        "codes and the report says how many (0 = no limit)")
    iterations: int = option(
        100, "optimizer steps per block (the cost grows about linearly with it; 300 at lr 0.03, the first "
        "settings, did a little better on EfficientNet-Lite0 at about twice the cost)")
    batch_size: int = option(16, "samples per step")
    lr: float = option(0.1, "Adam learning rate of the rounding variables")
    reg_weight: float = option(
        0.1, "weight of AdaRound's regularizer that drives every code to one side, against the block loss "
        "(each ratio's loss over its value before learning); on after the first fifth of a block's steps")
    drop: float = option(
        0.5, "QDrop: probability that an element of a block's input is the FP32 network's instead of the "
        "quantized network's (0 = quantized inputs only, which was worse on EfficientNet-Lite0)")
    views: int = option(
        4, "the calibration samples and views - 1 augmented copies (flips, shifts) that the blocks learn on, as "
        "many views as fit in max_samples; memory grows with it (every block input is kept per ratio)")
    max_samples: int = option(
        256, "samples the blocks learn on, at most: fewer views when the calibration set is larger than "
        "max_samples / views, a seeded subset of it when it alone is larger; the time to record the block inputs "
        "and the memory they take grow with it, the optimizer steps do not")
    rungs: int = option(
        8, "the ratios the blocks learn at: k / rungs for k = 1..rungs, one drawn per step; a ratio between two of "
        "them runs layer mixes never trained (learning at the 4-rung ladder alone lost accuracy at the ratios between its rungs on "
        "EfficientNet-Lite0); memory grows with it (each block's inputs are kept per ratio)")
    min_layers: int = option(2, "FlexiQ layers per block at least (blocks end where one tensor crosses the graph)")
    seed: int = option(0, "seed of the batches, the ratios drawn, the QDrop masks and the augmentation")
    threads: int = option(
        0, "PyTorch intra-op threads (0 = PyTorch's default, every core: 141 s against 218 s for one thread on "
        "MobileNetV2 on 2 idle cores); 1 on a machine busy with other jobs, where idle OpenMP threads spin "
        "against the load (docs/accuracy.md, \"Block-by-block learned rounding (`--block-rounding`)\")")

    def __post_init__(self) -> None:
        for name in ("iterations", "batch_size", "views", "rungs", "min_layers", "max_samples"):
            if getattr(self, name) < 1:
                raise ConfigError(f"block rounding {name} must be >= 1, got {getattr(self, name)}")
        if not 0 < self.lr < 1:
            raise ConfigError(f"block rounding lr must be in (0, 1), got {self.lr}")
        if self.reg_weight < 0:
            raise ConfigError(f"block rounding reg_weight must be >= 0, got {self.reg_weight}")
        if not 0 <= self.drop < 1:
            raise ConfigError(f"block rounding drop must be in [0, 1), got {self.drop}")
        if self.threads < 0:
            raise ConfigError(f"block rounding threads must be >= 0 (0 = PyTorch's default), got {self.threads}")
        if self.seconds < 0:
            raise ConfigError(f"block rounding seconds must be >= 0 (0 = no limit), got {self.seconds}")


@dataclass(frozen=True)
class RefineConfig:
    """What refines the quantized layers after selection, in this order; both need PyTorch.

    The finetune is off by default; block rounding is on where PyTorch is installed (`enabled=None`).
    """

    finetune: FinetuneConfig = option(
        help="distillation finetuning of the 4-bit path (--finetune)", default_factory=FinetuneConfig, cli=False)
    block_rounding: BlockRoundingConfig = option(
        help="block-by-block learned 4-bit rounding (--block-rounding)", default_factory=BlockRoundingConfig,
        cli=False)

    def require_torch(self) -> None:
        """Raise ConfigError naming the flag and the extra when a step asked for needs PyTorch and it is missing.

        Block rounding left at its default (`enabled=None`) is skipped instead (`torch_available`).
        """
        if self.finetune.enabled:
            require_torch("--finetune")
        if self.block_rounding.enabled:
            require_torch("--block-rounding")


def torch_available() -> bool:
    """Whether PyTorch imports (the finetune extra)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def require_torch(flag: str = "--finetune") -> None:
    """Raise ConfigError naming `flag` and the extra when PyTorch is not importable (finetune and block rounding need it)."""
    if not torch_available():
        raise ConfigError(f"{flag} needs PyTorch, which is not installed: {TORCH_EXTRA}")
