"""The real-model sources the intake tests use: safetensors reading, WordPiece ids, the shipped tiny BERT."""

from __future__ import annotations

import importlib.util
import json
import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest

from flexiq_trt.datasets import transformer_encoder as te
from flexiq_trt.errors import CalibrationDataError

TINY_BERT = Path(__file__).parent / "data" / "tiny_bert.onnx"


def _safetensors_blob(tensors: dict[str, np.ndarray], dtype: str = "F32") -> bytes:
    header, body, offset = {}, b"", 0
    for name, array in tensors.items():
        raw = array.tobytes()
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + len(raw)]}
        body, offset = body + raw, offset + len(raw)
    head = json.dumps({"__metadata__": {"format": "pt"}, **header}).encode()
    return len(head).to_bytes(8, "little") + head + body


def test_read_safetensors_round_trip_and_bad_dtype():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    b = np.float32([0.5, -2.0])
    got = te.read_safetensors(_safetensors_blob({"a": a, "b": b}))
    assert set(got) == {"a", "b"}
    np.testing.assert_array_equal(got["a"], a)
    np.testing.assert_array_equal(got["b"], b)
    with pytest.raises(CalibrationDataError, match="'a'.*BF16"):
        te.read_safetensors(_safetensors_blob({"a": a}, dtype="BF16"))


def test_wordpiece_encoding():
    vocab = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "play": 4, "##ing": 5, "fast": 6, ".": 7}
    enc = te.encode_texts(["Playing fast.", "xyz playing"], vocab, 6)
    np.testing.assert_array_equal(enc["input_ids"], [[2, 4, 5, 6, 7, 3], [2, 1, 4, 5, 3, 0]])
    np.testing.assert_array_equal(enc["attention_mask"], [[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0]])
    short = te.encode_texts(["playing playing playing"], vocab, 4)["input_ids"]
    np.testing.assert_array_equal(short, [[2, 4, 5, 3]])  # truncated, [SEP] kept


def test_english_sentences_are_real_text():
    sentences = te.english_sentences()
    assert "Beautiful is better than ugly." in sentences and len(sentences) >= 20


def test_shipped_tiny_bert_is_the_documented_export():
    model = onnx.load(str(TINY_BERT))
    assert [i.name for i in model.graph.input] == list(te.INPUT_NAMES)
    assert [o.name for o in model.graph.output] == [te.OUTPUT_NAME]
    ops = {n.op_type for n in model.graph.node}
    assert {"Shape", "Gather", "Concat", "Reshape", "MatMul", "Softmax", "LayerNormalization"} <= ops
    if importlib.util.find_spec("torch") is None:
        return
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:  # regenerate it and compare numerically
        out = Path(tmp) / "tiny.onnx"
        te.export_tiny_bert(out)
        feeds = {"input_ids": np.array([[5, 9, 200, 0]], np.int64), "attention_mask": np.array([[1, 1, 1, 0]], np.int64)}
        run = [ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
               for p in (TINY_BERT, out)]
    np.testing.assert_allclose(run[0], run[1], rtol=1e-5, atol=1e-6)
