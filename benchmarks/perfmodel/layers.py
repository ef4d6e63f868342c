"""Layer shapes of the benchmarks and the model: typical single layers and whole-model layer lists.

One list serves the static model (benchmarks/perf_model.py), the GPU timing (benchmarks/gpu_check.py)
and the kernel benchmark (benchmarks/bench_kernels.py). Only FlexiQ-eligible layers are listed
(C_in of at least one group, group = 1); the stem convolutions with 3 input channels are not.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

RATIOS = (0.0, 0.25, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class Layer:
    """A conv (NCHW input [batch, C_in, H, W]) or a gemm ([batch rows, C_in]) layer."""

    name: str
    conv: bool
    batch: int
    in_channels: int
    out_channels: int
    height: int = 1
    width: int = 1
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, left, bottom, right
    tokens: int = 1  # gemm rows per image (197 for ViT-B/16)

    def out_hw(self) -> tuple[int, int]:
        """Output spatial size (1 x 1 for a gemm)."""
        if not self.conv:
            return 1, 1
        p = (self.height + self.pads[0] + self.pads[2] - self.kernel[0]) // self.stride[0] + 1
        q = (self.width + self.pads[1] + self.pads[3] - self.kernel[1]) // self.stride[1] + 1
        return p, q

    @property
    def rows(self) -> int:
        """GEMM M: output pixels (conv) or rows (gemm)."""
        p, q = self.out_hw()
        return self.batch * p * q * self.tokens

    @property
    def input_rows(self) -> int:
        """Input pixels (conv) or rows (gemm): the rows of the quantized activation codes."""
        return self.batch * self.height * self.width * self.tokens

    @property
    def taps(self) -> int:
        return self.kernel[0] * self.kernel[1]

    def macs(self) -> int:
        """Multiply-adds of the real (unpadded) layer."""
        return self.rows * self.out_channels * self.taps * self.in_channels

    def with_batch(self, batch: int) -> Layer:
        """The same layer at another batch (gemm rows scale with it: `tokens` rows per image)."""
        return replace(self, batch=batch)

    def geometry(self):
        """flexiq_trt ConvGeometry of a conv (None for a gemm); imported lazily."""
        from flexiq_trt.quantization.layer import ConvGeometry
        return ConvGeometry(self.kernel, self.stride, self.pads) if self.conv else None


def _conv(name: str, b: int, cin: int, cout: int, hw: int, k: int = 1, s: int = 1) -> Layer:
    pad = k // 2
    return Layer(name, True, b, cin, cout, hw, hw, (k, k), (s, s), (pad, pad, pad, pad))


def _gemm(name: str, images: int, tokens: int, cin: int, cout: int) -> Layer:
    return Layer(name, False, images, cin, cout, tokens=tokens)


BENCH_LAYERS: tuple[Layer, ...] = (
    _conv("resnet50.layer1.conv2 3x3", 16, 64, 64, 56, 3),
    _conv("resnet50.layer2.conv2 3x3", 16, 128, 128, 28, 3),
    _conv("resnet50.layer3.conv2 3x3", 16, 256, 256, 14, 3),
    _conv("resnet50.layer4.conv2 3x3", 16, 512, 512, 7, 3),
    _conv("resnet50.layer4.conv3 1x1", 16, 512, 2048, 7),
    _conv("resnet50.layer2.down 1x1/2", 16, 256, 512, 56, 1, 2),
    _conv("mobilenetv2.expand 1x1", 16, 96, 576, 14),
    _gemm("vit_b.qkv", 16, 197, 768, 2304),
    _gemm("vit_b.mlp.fc1", 16, 197, 768, 3072),
    _gemm("vit_b.mlp.fc2", 16, 197, 3072, 768),
)


def resnet50(batch: int) -> list[Layer]:
    """The eligible layers of torchvision ResNet-50 v1.5 at 224 x 224 (stride on the 3x3 conv)."""
    layers: list[Layer] = []
    cin, hw = 64, 56
    for stage, (width, blocks) in enumerate(((64, 3), (128, 4), (256, 6), (512, 3)), start=1):
        cout = width * 4
        for blk in range(blocks):
            stride = 2 if blk == 0 and stage > 1 else 1
            pre = f"layer{stage}.{blk}"
            layers.append(_conv(f"{pre}.conv1", batch, cin, width, hw))
            layers.append(_conv(f"{pre}.conv2", batch, width, width, hw, 3, stride))
            out_hw = hw // stride
            layers.append(_conv(f"{pre}.conv3", batch, width, cout, out_hw))
            if blk == 0:
                layers.append(_conv(f"{pre}.downsample", batch, cin, cout, hw, 1, stride))
            cin, hw = cout, out_hw
    layers.append(_gemm("fc", batch, 1, 2048, 1000))
    return layers


def vit_b16(batch: int) -> list[Layer]:
    """The eligible linear layers of ViT-B/16 at 224 x 224 (197 tokens; attention matmuls are not weights)."""
    layers: list[Layer] = []
    for blk in range(12):
        layers += [_gemm(f"blocks.{blk}.attn.qkv", batch, 197, 768, 2304),
                   _gemm(f"blocks.{blk}.attn.proj", batch, 197, 768, 768),
                   _gemm(f"blocks.{blk}.mlp.fc1", batch, 197, 768, 3072),
                   _gemm(f"blocks.{blk}.mlp.fc2", batch, 197, 3072, 768)]
    layers.append(_gemm("head", batch, 1, 768, 1000))
    return layers


MODELS = {"resnet50": resnet50, "vit_b16": vit_b16}
