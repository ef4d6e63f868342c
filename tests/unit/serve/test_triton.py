"""Triton repositories: every config.pbtxt validates against Triton's own ModelConfig schema, and the
front model's batching, ratio choice and BLS call work against the bit-exact simulation ONNX."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import types

import numpy as np
import onnxruntime as ort
import pytest

from flexiq_trt.errors import ModelError
from flexiq_trt.ratios import load_ratio_table
from flexiq_trt.serve.accuracy import load_report_accuracy
from flexiq_trt.serve.controller import ControllerConfig
from flexiq_trt.serve.profile import published_profile
from flexiq_trt.serve.triton_repo import RatioControl, TritonConfig, write_triton_repository

model_config_pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2",
                                       reason="tritonclient[grpc] (the test extra) ships Triton's model-config schema")
from google.protobuf import json_format, text_format  # noqa: E402


def parse(path):
    """Triton's own parser rejects unknown fields and enum values."""
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


@pytest.fixture(scope="module")
def repo(converted, tmp_path_factory):
    out = tmp_path_factory.mktemp("triton") / "repo"
    accuracy = load_report_accuracy(converted / "report.json", "cosine")
    return write_triton_repository(converted / "cbr.flexiq.onnx", out, TritonConfig(max_batch=8),
                                   control=RatioControl(published_profile(16), accuracy, ControllerConfig(slo_ms=40)))


def test_configs_validate_against_tritons_schema(repo, converted):
    table = load_ratio_table(converted / "cbr.flexiq.json")
    engine = parse(repo.root / repo.engine_model / "config.pbtxt")
    front = parse(repo.root / repo.front / "config.pbtxt")
    DT = model_config_pb2.DataType
    assert engine.name == repo.engine_model and engine.platform == "tensorrt_plan" and engine.max_batch_size == 0
    ins = {i.name: i for i in engine.input}
    assert list(ins["flexiq_max_4bit_ch"].dims) == [table.num_layers]
    assert ins["flexiq_max_4bit_ch"].data_type == DT.TYPE_INT32
    assert list(ins["x"].dims) == [-1, 64, 8, 8] and ins["x"].data_type == DT.TYPE_FP32
    assert [list(o.dims) for o in engine.output] == [[-1, 64, 8, 8]]
    assert engine.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_GPU
    assert front.name == repo.front and front.backend == "python" and front.max_batch_size == 8
    fins = {i.name: i for i in front.input}
    assert list(fins["x"].dims) == [64, 8, 8]  # the batch axis is Triton's
    assert fins["FLEXIQ_RATIO"].optional and list(fins["FLEXIQ_RATIO"].dims) == [1]
    assert {o.name for o in front.output} == {o.name for o in engine.output} | {"FLEXIQ_RATIO_USED"}
    assert front.dynamic_batching.max_queue_delay_microseconds == 2000
    params = {k: v.string_value for k, v in front.parameters.items()}
    assert params["engine_model"] == engine.name and params["slo_ms"] == "40"
    for key in ("ratio_table", "latency_profile", "accuracy"):
        assert (repo.root / repo.front / params[key]).is_file()
    assert load_ratio_table(repo.root / repo.front / params["ratio_table"]).order == table.order
    assert (repo.root / repo.front / "1" / "model.py").is_file() and not repo.engine_present


def test_engine_input_copies_the_plan_and_finds_its_onnx(converted, tmp_path):
    plan = tmp_path / "cbr.engine"
    plan.write_bytes(b"serialized engine bytes")
    with pytest.raises(ModelError, match="--onnx"):
        write_triton_repository(plan, tmp_path / "r0")
    r = write_triton_repository(plan, tmp_path / "r1", onnx_path=converted / "cbr.flexiq.onnx")
    assert r.engine_present and (r.root / r.engine_model / "1" / "model.plan").read_bytes() == plan.read_bytes()
    front = parse(r.root / r.front / "config.pbtxt")
    assert "latency_profile" not in front.parameters and front.parameters["default_ratio"].string_value == "0.0"


def test_rejects_a_model_without_the_ratio_input(converted, tmp_path):
    with pytest.raises(ModelError):
        write_triton_repository(converted.parent / "cbr.onnx", tmp_path / "r")


def test_vendored_modules_import_on_their_own(repo):
    here = repo.root / repo.front / "1"
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import flexiq_trt.serve.controller as c, flexiq_trt.ratios as r;"
            "assert c.__file__.startswith(sys.argv[1]) and r.__file__.startswith(sys.argv[1]), (c.__file__, r.__file__)")
    proc = subprocess.run([sys.executable, "-c", code, str(here)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


class _Tensor:
    def __init__(self, name, array):
        self._name, self._array = name, np.asarray(array)

    def name(self):
        return self._name

    def as_numpy(self):
        return self._array


def _fake_pb_utils(sim_path, calls):
    """Triton's Python-backend API as the front model uses it; BLS runs the simulation ONNX in ORT."""
    sess = ort.InferenceSession(str(sim_path), providers=["CPUExecutionProvider"])
    pb = types.ModuleType("triton_python_backend_utils")

    class TritonError(Exception):
        def message(self):
            return str(self)

    class InferenceResponse:
        def __init__(self, output_tensors=(), error=None):
            self.output_tensors, self.error_ = list(output_tensors), error

        def has_error(self):
            return self.error_ is not None

        def error(self):
            return self.error_

    class InferenceRequest:
        def __init__(self, model_name, inputs, requested_output_names, **kwargs):
            self.model_name, self.inputs, self.outputs = model_name, inputs, requested_output_names

        def exec(self):
            feeds = {t.name(): t.as_numpy() for t in self.inputs}
            calls.append((self.model_name, feeds))
            outs = sess.run(self.outputs, feeds)
            return InferenceResponse([_Tensor(n, o) for n, o in zip(self.outputs, outs, strict=True)])

    pb.Tensor, pb.TritonError, pb.InferenceResponse, pb.InferenceRequest = _Tensor, TritonError, InferenceResponse, InferenceRequest
    pb.get_input_tensor_by_name = lambda req, name: next((t for t in req if t.name() == name), None)
    pb.get_output_tensor_by_name = lambda resp, name: next(t for t in resp.output_tensors if t.name() == name)
    return pb


def test_front_model_batches_picks_ratios_and_feeds_the_vector(repo, converted, monkeypatch):
    calls = []
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils",
                        _fake_pb_utils(converted / "cbr.flexiq-sim.onnx", calls))
    path = repo.root / repo.front / "1" / "model.py"
    spec = importlib.util.spec_from_file_location("flexiq_front_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = parse(repo.root / repo.front / "config.pbtxt")
    model = module.TritonPythonModel()
    model.initialize({"model_config": json_format.MessageToJson(config, preserving_proto_field_name=True),
                      "model_repository": str(repo.root / repo.front), "model_version": "1"})
    table = load_ratio_table(converted / "cbr.flexiq.json")
    rng = np.random.default_rng(1)
    xs = [rng.normal(size=(b, 64, 8, 8)).astype(np.float32) for b in (2, 3, 1)]
    requests = [[_Tensor("x", xs[0])], [_Tensor("x", xs[1]), _Tensor("FLEXIQ_RATIO", np.array([[1.0]] * 3, np.float32))],
                [_Tensor("x", xs[2])]]
    responses = model.execute(requests)
    assert len(calls) == 2 and {c[0] for c in calls} == {repo.engine_model}
    by_ratio = {}
    for _, feeds in calls:
        vec = feeds["flexiq_max_4bit_ch"]
        assert vec.dtype == np.int32 and vec.shape == (table.num_layers,)
        by_ratio[tuple(vec)] = len(feeds["x"])
    # The idle controller runs the most accurate ratio (0) for the 3 uncontrolled samples; 3 asked for 1.0.
    assert by_ratio == {tuple(table.vector(0.0)): 3, tuple(table.vector(1.0)): 3}
    sim = ort.InferenceSession(str(converted / "cbr.flexiq-sim.onnx"), providers=["CPUExecutionProvider"])
    for x, resp, ratio in zip(xs, responses, (0.0, 1.0, 0.0), strict=True):
        outs = {t.name(): t.as_numpy() for t in resp.output_tensors}
        assert np.all(outs["FLEXIQ_RATIO_USED"] == ratio) and outs["FLEXIQ_RATIO_USED"].shape == (len(x), 1)
        want = sim.run(None, {"x": x, "flexiq_max_4bit_ch": table.vector(ratio)})[0]
        assert np.array_equal(outs[sim.get_outputs()[0].name], want)
    bad = model.execute([[_Tensor("x", xs[2]), _Tensor("FLEXIQ_RATIO", np.array([[1.5]], np.float32))]])
    assert bad[0].has_error() and "FLEXIQ_RATIO" in bad[0].error().message()


def test_triton_cli_validates(converted, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "flexiq_trt", "triton", str(converted / "cbr.flexiq.onnx"), "-o",
                           str(tmp_path / "repo"), "--name", "cbr_served", "--max-batch", "4"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert parse(tmp_path / "repo" / "cbr_served" / "config.pbtxt").max_batch_size == 4
    assert parse(tmp_path / "repo" / "cbr_served_engine" / "config.pbtxt").max_batch_size == 0
    assert json.loads((tmp_path / "repo" / "cbr_served" / "ratio_table.json").read_text())["num_layers"] >= 1


def test_registration_library_compiles_against_the_tensorrt_headers(tmp_path):
    """examples/triton/flexiq_triton_register.cpp (what Triton's plugins= option loads) compiles, -Werror."""
    import shutil
    from pathlib import Path

    repo_root = Path(__file__).resolve().parents[3]
    headers = repo_root / "third_party" / "tensorrt_headers"
    import os

    nvcc = shutil.which("nvcc")
    candidates = [Path(nvcc).resolve().parents[1] / "include"] if nvcc else []
    candidates += [Path(os.environ.get("CUDA_HOME", "/usr/local/cuda")) / "include", *Path("/usr/local").glob("cuda*/include")]
    cuda_inc = next((c for c in candidates if (c / "cuda_runtime_api.h").is_file()), None)
    if shutil.which("g++") is None or not (headers / "NvInferRuntime.h").is_file():
        pytest.skip("needs g++ and the TensorRT headers (scripts/fetch_trt_headers.sh)")
    if cuda_inc is None:
        pytest.skip("needs the CUDA headers (nvcc on PATH)")
    src = repo_root / "examples" / "triton" / "flexiq_triton_register.cpp"
    proc = subprocess.run(["g++", "-std=c++17", "-fPIC", "-Wall", "-Wextra", "-Werror", "-isystem", str(headers),
                           "-isystem", str(cuda_inc), "-c", str(src), "-o", str(tmp_path / "r.o")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    syms = subprocess.run(["nm", str(tmp_path / "r.o")], capture_output=True, text=True).stdout
    assert "U getPluginRegistry" in syms  # resolved from the server's libnvinfer at load time
