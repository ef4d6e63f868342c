#!/usr/bin/env python3
"""Train the shipped default model once: a small ResNet-style CNN on Fashion-MNIST (torch, CPU).

Writes ``python/flexiq_trt/models/fmnist_resnet.onnx`` (opset 13, dynamic batch, input "input"
``[N, 1, 28, 28]``, BatchNormalization nodes kept) and ``fmnist_resnet.json`` (provenance and
the FP32 test accuracy measured with ONNX Runtime on all 10k test images).

torch is needed only here; the package itself never imports it. Run:

    PYTHONPATH=python python scripts/train_fmnist_resnet.py            # about 15 min on 2 idle cores (80-115 s per epoch)
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from flexiq_trt.datasets import fashion_mnist

MODELS_DIR = Path(__file__).resolve().parents[1] / "python" / "flexiq_trt" / "models"


@dataclass(frozen=True)
class Recipe:
    """Everything that determines the trained weights (recorded in the provenance JSON)."""

    seed: int = 0
    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "SGD(momentum=0.9, nesterov=True)"
    lr_max: float = 0.1
    weight_decay: float = 5e-4
    schedule: str = "OneCycleLR (cosine, pct_start=0.25)"
    augmentation: str = "random horizontal flip + random shift up to 2 px (padded with black pixels)"
    label_smoothing: float = 0.0
    threads: int = 2


class Block(nn.Module):
    """Post-activation residual block: two 3x3 convs with BN; a strided 1x1 conv shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """conv-bn-relu-conv-bn, plus shortcut, then relu."""
        y = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class FmnistResNet(nn.Module):
    """Stem 1->32 at 28x28, blocks at 32 (14x14), 64 (7x7), 128 (4x4), GAP, Linear 128->10."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 32, 3, 1, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU())
        self.layers = nn.Sequential(Block(32, 32, 2), Block(32, 64, 2), Block(64, 128, 2))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[N, 10]``."""
        return self.fc(torch.flatten(self.pool(self.layers(self.stem(x))), 1))


def augment(batch: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random horizontal flip and a random shift of up to 2 px, filled with the background value."""
    n = batch.shape[0]
    flip = torch.rand(n, generator=gen) < 0.5
    batch = torch.where(flip[:, None, None, None], batch.flip(3), batch)
    background = float((0.0 - fashion_mnist.MEAN) / fashion_mnist.STD)
    padded = nn.functional.pad(batch, (2, 2, 2, 2), value=background)
    dx, dy = torch.randint(0, 5, (2,), generator=gen).tolist()
    return padded[:, :, dy : dy + 28, dx : dx + 28]


def train(model: nn.Module, recipe: Recipe, x: torch.Tensor, y: torch.Tensor) -> None:
    """SGD with a one-cycle schedule; logs loss and time per epoch."""
    gen = torch.Generator().manual_seed(recipe.seed)
    opt = torch.optim.SGD(model.parameters(), lr=recipe.lr_max, momentum=0.9, nesterov=True,
                          weight_decay=recipe.weight_decay)
    steps = recipe.epochs * ((len(x) + recipe.batch_size - 1) // recipe.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, recipe.lr_max, total_steps=steps, pct_start=0.25)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    for epoch in range(recipe.epochs):
        model.train()
        start, total = time.time(), 0.0
        order = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), recipe.batch_size):
            idx = order[i : i + recipe.batch_size]
            loss = loss_fn(model(augment(x[idx], gen)), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        print(f"epoch {epoch + 1}/{recipe.epochs}: loss {total / len(x):.4f} ({time.time() - start:.0f} s)",
              flush=True)


def export(model: nn.Module, path: Path) -> None:
    """ONNX opset 13, dynamic batch; training=EVAL with BN kept as BatchNormalization nodes."""
    model.eval()
    torch.onnx.export(
        model, (torch.zeros(1, 1, 28, 28),), str(path), input_names=["input"], output_names=["logits"],
        dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}}, opset_version=13,
        do_constant_folding=False, training=torch.onnx.TrainingMode.EVAL, dynamo=False,
    )
    onnx_model = onnx.load(str(path))
    onnx.checker.check_model(onnx_model)
    onnx.save(onnx_model, str(path))  # one self-contained file, no external data


def ort_accuracy(path: Path, data: fashion_mnist.LabelledImages) -> float:
    """Top-1 accuracy of the exported ONNX model under ONNX Runtime (CPU)."""
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    preds = [sess.run(None, {"input": data.images[i : i + 500]})[0].argmax(1) for i in range(0, len(data.labels), 500)]
    return float((np.concatenate(preds) == data.labels).mean())


def main(argv: list[str] | None = None) -> int:
    """Train, export, measure with ORT, write provenance."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output-dir", type=Path, default=MODELS_DIR)
    parser.add_argument("--epochs", type=int, default=Recipe.epochs)
    parser.add_argument("--seed", type=int, default=Recipe.seed)
    args = parser.parse_args(argv)
    recipe = Recipe(seed=args.seed, epochs=args.epochs)
    torch.manual_seed(recipe.seed)
    torch.set_num_threads(recipe.threads)
    train_set, test_set = fashion_mnist.load("train"), fashion_mnist.load("test")
    model = FmnistResNet()
    start = time.time()
    train(model, recipe, torch.from_numpy(train_set.images), torch.from_numpy(train_set.labels))
    train_s = time.time() - start
    args.output_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = args.output_dir / "fmnist_resnet.onnx"
    export(model, onnx_path)
    accuracy = ort_accuracy(onnx_path, test_set)
    ops = [n.op_type for n in onnx.load(str(onnx_path)).graph.node]
    provenance = {
        "model": onnx_path.name,
        "task": "Fashion-MNIST 10-class classification",
        "architecture": "ResNet-style: stem conv 1->32 (28x28); residual blocks 32->32 (stride 2, 14x14), "
        "32->64 (stride 2, 7x7), 64->128 (stride 2, 4x4), each two 3x3 convs with a 1x1 conv shortcut; "
        "BatchNorm + ReLU; global average pool; Gemm 128->10",
        "layers": [f"{name}: {type(m).__name__}" for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))],
        "parameters": sum(p.numel() for p in model.parameters()),
        "recipe": asdict(recipe),
        "train_seconds": round(train_s, 1),
        "input": {"name": "input", "shape": ["N", 1, 28, 28], "dtype": "float32",
                  "normalisation": f"(pixel / 255 - {fashion_mnist.MEAN}) / {fashion_mnist.STD}"},
        "output": {"name": "logits", "shape": ["N", 10]},
        "onnx": {"opset": 13, "batchnorm_nodes": ops.count("BatchNormalization"), "op_counts": {o: ops.count(o) for o in sorted(set(ops))}},
        "test_accuracy_fp32_ort": round(accuracy, 4),
        "test_set": "Fashion-MNIST t10k, all 10000 images, onnxruntime CPUExecutionProvider",
        "data": "Debian package dataset-fashion-mnist (/usr/share/datasets/fashion-mnist)",
        "trained_with": {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": ort.__version__,
                         "python": platform.python_version()},
    }
    (args.output_dir / "fmnist_resnet.json").write_text(json.dumps(provenance, indent=2) + "\n")
    print(f"wrote {onnx_path} ({onnx_path.stat().st_size} bytes): ORT test accuracy {accuracy:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
