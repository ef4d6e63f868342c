"""Write a Triton Inference Server model repository that serves a FlexiQ engine with a per-request ratio.

Two models (docs/serving.md, "Triton", says why):

- ``<name>_engine`` — TensorRT backend (``platform: "tensorrt_plan"``), ``max_batch_size: 0``: Triton's
  batching would give every input a batch dimension, but ``flexiq_max_4bit_ch`` is one int32 [L]
  vector per engine run. With ``max_batch_size: 0`` every dimension is explicit: the data inputs
  keep their dynamic batch axis (-1) and the ratio vector is a plain [L] input.
- ``<name>`` — Python backend front model with dynamic batching: clients send the model's inputs and
  optionally ``FLEXIQ_RATIO``; it picks the ratio (explicit, or the controller's), turns it into the
  [L] vector and calls ``<name>_engine`` through BLS (serve/triton_model.py).

The plugin library is loaded as the TensorRT backend prescribes, with
``--backend-config=tensorrt,plugins=...``; because that only ``dlopen``s the library and the FlexiQ
library registers through ``getCreators`` alone, a small registration library
(``examples/triton/flexiq_triton_register.cpp``) is what is listed there: it calls the registry's
``loadLibrary`` on ``libflexiq_plugins.so``.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from flexiq_trt.errors import ConfigError, ModelError
from flexiq_trt.log import get_logger
from flexiq_trt.options import option
from flexiq_trt.serve.accuracy import AccuracyTable
from flexiq_trt.serve.controller import ControllerConfig
from flexiq_trt.serve.profile import LatencyProfile

LOG = get_logger(__name__)

RUNTIME_INPUT = "flexiq_max_4bit_ch"
ENGINE_SUFFIXES = (".engine", ".plan", ".trt")
# ONNX TensorProto element type -> Triton data type.
ONNX_TO_TRITON = {1: "TYPE_FP32", 2: "TYPE_UINT8", 3: "TYPE_INT8", 4: "TYPE_UINT16", 5: "TYPE_INT16",
                  6: "TYPE_INT32", 7: "TYPE_INT64", 9: "TYPE_BOOL", 10: "TYPE_FP16", 11: "TYPE_FP64",
                  16: "TYPE_BF16"}
# The modules the front model imports, vendored next to it (paths relative to the flexiq_trt package).
VENDORED = ("errors.py", "plugin_spec.py", "ratios.py", "serve/accuracy.py", "serve/controller.py",
            "serve/profile.py")


@dataclass(frozen=True)
class TritonConfig:
    """How the repository serves the model."""

    name: str = option("", "model name clients use (default: the ONNX stem)")
    max_batch: int = option(
        16, "largest batch the front model's dynamic batcher forms (at most the engine's max batch)")
    max_queue_delay_us: int = option(2000, "dynamic batcher's max queue delay (µs)")
    default_ratio: float = option(
        0.0, "ratio for requests without FLEXIQ_RATIO when there is no latency profile")
    engine_instances: int = option(1, "TensorRT model instances on the GPU")

    def __post_init__(self) -> None:
        if self.max_batch < 1:
            raise ConfigError(f"max_batch must be >= 1, got {self.max_batch}")
        if self.max_queue_delay_us < 0:
            raise ConfigError(f"max_queue_delay_us must be >= 0, got {self.max_queue_delay_us}")
        if not 0 <= self.default_ratio <= 1:
            raise ConfigError(f"default_ratio must lie in [0, 1], got {self.default_ratio}")
        if self.engine_instances < 1:
            raise ConfigError(f"engine_instances must be >= 1, got {self.engine_instances}")


@dataclass(frozen=True)
class TensorSpec:
    """One model input/output as Triton sees it (dims include the batch axis)."""

    name: str
    data_type: str
    dims: tuple[int, ...]


@dataclass(frozen=True)
class TritonRepository:
    """What was written."""

    root: Path
    front: str
    engine_model: str
    engine_present: bool
    files: tuple[Path, ...]


def _tensors(values: list, source: str) -> list[TensorSpec]:
    out = []
    for v in values:
        tt = v.type.tensor_type
        if tt.elem_type not in ONNX_TO_TRITON:
            raise ModelError(f"{source}: tensor {v.name!r} has ONNX element type {tt.elem_type}, which Triton "
                             "cannot carry")
        dims = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else -1 for d in tt.shape.dim)
        out.append(TensorSpec(v.name, ONNX_TO_TRITON[tt.elem_type], dims))
    return out


def model_io(onnx_path: Path) -> tuple[list[TensorSpec], list[TensorSpec], int]:
    """Data inputs, outputs and L of a `<stem>.flexiq.onnx` (the engine's I/O)."""
    import onnx

    try:
        model = onnx.load(str(onnx_path), load_external_data=False)
    except Exception as e:  # noqa: BLE001 - protobuf raises many types
        raise ModelError(f"{onnx_path}: cannot be read as ONNX ({e})") from e
    inputs = _tensors(list(model.graph.input), str(onnx_path))
    runtime = [t for t in inputs if t.name == RUNTIME_INPUT]
    if not runtime:
        raise ModelError(f"{onnx_path}: no {RUNTIME_INPUT} input: not a FlexiQ plugin model (<stem>.flexiq.onnx)")
    if len(runtime[0].dims) != 1 or runtime[0].dims[0] < 1 or runtime[0].data_type != "TYPE_INT32":
        raise ModelError(f"{onnx_path}: {RUNTIME_INPUT} must be int32 [L], is {runtime[0].data_type} "
                         f"{list(runtime[0].dims)}")
    data = [t for t in inputs if t.name != RUNTIME_INPUT]
    outputs = _tensors(list(model.graph.output), str(onnx_path))
    for t in data + outputs:
        if not t.dims or t.dims[0] != -1:
            raise ModelError(f"{onnx_path}: {t.name!r} has shape {list(t.dims)}; the front model batches requests, "
                             "so every input and output needs a dynamic first (batch) axis — export the model "
                             "with one")
    return data, outputs, runtime[0].dims[0]


def _dims(dims: tuple[int, ...]) -> str:
    return "[ " + ", ".join(str(d) for d in dims) + " ]"


def _io_block(kind: str, tensors: list[TensorSpec], batched: bool, optional: set[str] = frozenset()) -> str:
    items = []
    for t in tensors:
        dims = t.dims[1:] if batched else t.dims
        extra = "\n    optional: true" if t.name in optional else ""
        items.append(f'  {{\n    name: "{t.name}"\n    data_type: {t.data_type}\n    dims: {_dims(dims)}{extra}\n  }}')
    return f"{kind} [\n" + ",\n".join(items) + "\n]\n"


def engine_config(name: str, data: list[TensorSpec], outputs: list[TensorSpec], num_layers: int,
                  instances: int) -> str:
    """config.pbtxt of the TensorRT model: no Triton batching, the ratio vector a plain [L] input."""
    inputs = [*data, TensorSpec(RUNTIME_INPUT, "TYPE_INT32", (num_layers,))]
    return (f'name: "{name}"\nplatform: "tensorrt_plan"\nmax_batch_size: 0\n'
            f'default_model_filename: "model.plan"\n'
            + _io_block("input", inputs, batched=False) + _io_block("output", outputs, batched=False)
            + f"instance_group [\n  {{\n    kind: KIND_GPU\n    count: {instances}\n  }}\n]\n")


def front_config(name: str, data: list[TensorSpec], outputs: list[TensorSpec], cfg: TritonConfig,
                 params: dict[str, str]) -> str:
    """config.pbtxt of the Python front model: dynamic batching, optional per-request FLEXIQ_RATIO."""
    from flexiq_trt.serve.triton_model import RATIO_INPUT, RATIO_OUTPUT

    ins = [*data, TensorSpec(RATIO_INPUT, "TYPE_FP32", (-1, 1))]
    outs = [*outputs, TensorSpec(RATIO_OUTPUT, "TYPE_FP32", (-1, 1))]
    param_block = "".join(f'parameters {{\n  key: "{k}"\n  value: {{ string_value: {json.dumps(v)} }}\n}}\n'
                          for k, v in sorted(params.items()))
    # One CPU instance: the controller sees the whole request stream of the (single) engine instance.
    return (f'name: "{name}"\nbackend: "python"\nmax_batch_size: {cfg.max_batch}\n'
            + _io_block("input", ins, batched=True, optional={RATIO_INPUT})
            + _io_block("output", outs, batched=True)
            + f"dynamic_batching {{\n  max_queue_delay_microseconds: {cfg.max_queue_delay_us}\n}}\n"
            + "instance_group [\n  {\n    kind: KIND_CPU\n    count: 1\n  }\n]\n" + param_block)


def _vendor(dest: Path) -> list[Path]:
    """Copy the pure-Python modules the front model imports (NumPy is their only dependency)."""
    import flexiq_trt

    src = Path(flexiq_trt.__file__).resolve().parent
    written = []
    for rel in VENDORED:
        target = dest / "flexiq_trt" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / rel, target)
        written.append(target)
    for init in (dest / "flexiq_trt" / "__init__.py", dest / "flexiq_trt" / "serve" / "__init__.py"):
        init.write_text('"""Vendored subset of flexiq_trt for the Triton front model (written by flexiq-trt triton)."""\n')
        written.append(init)
    return written


@dataclass(frozen=True)
class RatioControl:
    """What the front model's controller needs: latency and accuracy per ratio, and its settings."""

    profile: LatencyProfile
    accuracy: AccuracyTable
    controller: ControllerConfig = field(default_factory=ControllerConfig)


def write_triton_repository(model: str | Path, out_dir: str | Path, config: TritonConfig | None = None, *,
                            onnx_path: str | Path | None = None, ratio_table: str | Path | None = None,
                            control: RatioControl | None = None,
                            plugin_lib: str | Path | None = None) -> TritonRepository:
    """Write the two-model repository for an engine (``.engine/.plan``) or a ``<stem>.flexiq.onnx``.

    From an engine, `onnx_path` (or ``<stem>.flexiq.onnx`` beside it) gives the I/O; from an ONNX
    the engine is not built here (Triton's TensorRT must deserialize it: build it with the same
    TensorRT version, see the repository's README.md) and ``1/model.plan`` is left to fill in.
    With `control` the front model runs the load-adaptive controller.
    """
    from flexiq_trt.ratios import load_ratio_table

    cfg = config or TritonConfig()
    model = Path(model)
    if not model.is_file():
        raise ModelError(f"{model}: no such file")
    is_engine = model.suffix in ENGINE_SUFFIXES
    if is_engine:
        onnx_path = Path(onnx_path) if onnx_path else _sibling_onnx(model)
    else:
        if not model.name.endswith(".onnx"):
            raise ModelError(f"{model}: expected an engine ({', '.join(ENGINE_SUFFIXES)}) or a <stem>.flexiq.onnx")
        onnx_path = Path(onnx_path) if onnx_path else model
    table = load_ratio_table(ratio_table or onnx_path)
    data, outputs, num_layers = model_io(onnx_path)
    if num_layers != table.num_layers:
        raise ModelError(f"{onnx_path}: {RUNTIME_INPUT} has L={num_layers} but the ratio table has "
                         f"{table.num_layers} layers")
    profile = control.profile if control is not None else None
    if profile is not None and cfg.max_batch > profile.max_batch:
        raise ConfigError(f"max_batch {cfg.max_batch} exceeds the latency profile's largest batch {profile.max_batch}")
    stem = onnx_path.name.split(".")[0]
    name = cfg.name or stem
    engine_name = f"{name}_engine"
    root = Path(out_dir)
    front_dir, engine_dir = root / name, root / engine_name
    for d in (front_dir / "1", engine_dir / "1", engine_dir / "plugins"):
        d.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []

    def write(path: Path, text: str) -> None:
        path.write_text(text)
        files.append(path)

    write(engine_dir / "config.pbtxt", engine_config(engine_name, data, outputs, num_layers, cfg.engine_instances))
    if is_engine:
        shutil.copy2(model, engine_dir / "1" / "model.plan")
        files.append(engine_dir / "1" / "model.plan")
    plugin = _plugin_library(plugin_lib)
    if plugin is not None:
        shutil.copy2(plugin, engine_dir / "plugins" / plugin.name)
        files.append(engine_dir / "plugins" / plugin.name)
    write(front_dir / "ratio_table.json", table.to_json())
    params = {"engine_model": engine_name, "ratio_table": "ratio_table.json", "default_ratio": str(cfg.default_ratio)}
    if control is not None:
        ctl = control.controller
        write(front_dir / "latency_profile.json", control.profile.to_json())
        write(front_dir / "accuracy.json", json.dumps(control.accuracy.to_dict(), indent=1))
        params.update({"latency_profile": "latency_profile.json", "accuracy": "accuracy.json",
                       "slo_ms": str(ctl.slo_ms), "safety_ms": str(ctl.safety_ms),
                       "upgrade_margin_ms": str(ctl.upgrade_margin_ms), "upgrade_hold_ms": str(ctl.upgrade_hold_ms),
                       **({"ratios": " ".join(str(r) for r in ctl.ratios)} if ctl.ratios else {})})
    write(front_dir / "config.pbtxt", front_config(name, data, outputs, cfg, params))
    shutil.copy2(Path(__file__).with_name("triton_model.py"), front_dir / "1" / "model.py")
    files.append(front_dir / "1" / "model.py")
    files += _vendor(front_dir / "1")
    readme = root / "README.md"
    write(readme, _readme(name, engine_name, onnx_path, is_engine, plugin, data, cfg, profile is not None))
    LOG.info("wrote Triton repository %s (models %s, %s)", root, name, engine_name)
    return TritonRepository(root, name, engine_name, is_engine, tuple(files))


def _sibling_onnx(engine: Path) -> Path:
    stem = engine.name.split(".")[0]
    cand = engine.with_name(f"{stem}.flexiq.onnx")
    if not cand.is_file():
        raise ModelError(f"{engine}: an engine does not say its inputs without a GPU; pass the "
                         f"<stem>.flexiq.onnx it was built from (--onnx), {cand} does not exist")
    return cand


def _plugin_library(path: str | Path | None) -> Path | None:
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ModelError(f"{p}: no such plugin library")
        return p
    from flexiq_trt.errors import PluginNotFoundError
    from flexiq_trt.runtime.plugin_loader import find_plugin_library

    try:
        return find_plugin_library()
    except PluginNotFoundError as e:
        LOG.warning("plugin library not copied into the repository: %s", e)
        return None


def _readme(name: str, engine: str, onnx_path: Path, has_engine: bool, plugin: Path | None,
            data: list[TensorSpec], cfg: TritonConfig, controlled: bool) -> str:
    max_shapes = ",".join(f"{t.name}:{cfg.max_batch}x" + "x".join(str(d) for d in t.dims[1:]) for t in data)
    build = ("" if has_engine else
             f"\n## 1. Build the engine (missing)\n\n`{engine}/1/model.plan` must be built by the same TensorRT version "
             "as the Triton server's TensorRT backend (a TensorRT-RTX engine does not load there). On the Triton "
             "host (e.g. inside the matching NGC TensorRT container):\n\n```bash\n"
             f"pip install 'flexiq_trt[gpu]'   # TensorRT Python of the server's version\n"
             f"flexiq-trt build {onnx_path.name} -o {engine}/1/model.plan --max-batch {cfg.max_batch}\n```\n")
    return f"""# Triton model repository for `{onnx_path.name}` (written by `flexiq-trt triton`)

- `{name}` — Python backend front model: dynamic batching up to {cfg.max_batch}, optional per-request
  `FLEXIQ_RATIO` (FP32 [1], in [0, 1]); otherwise {"the load-adaptive controller picks the ratio" if controlled
  else f"ratio {cfg.default_ratio}"}. Replies carry `FLEXIQ_RATIO_USED`.
- `{engine}` — TensorRT backend, `max_batch_size: 0`, inputs {", ".join(t.name for t in data)} and
  `flexiq_max_4bit_ch` (int32 [L]); clients do not call it directly.
{build}
## {"2" if not has_engine else "1"}. Plugin registration library

Triton's TensorRT backend loads plugin libraries with `--backend-config=tensorrt,plugins=...`, which only
`dlopen`s them; `libflexiq_plugins.so` registers its creators through `getCreators` (what
`IPluginRegistry::loadLibrary` calls), so list the small registration library instead
(source: flexiq_trt's `examples/triton/flexiq_triton_register.cpp`, built against the server's TensorRT
headers with `examples/triton/build_register.sh`) and put it in `{engine}/plugins/`.
{"" if plugin else f"Also copy `libflexiq_plugins.so` into `{engine}/plugins/` (none was found when this was written)."}

## {"3" if not has_engine else "2"}. Start the server

```bash
export FLEXIQ_PLUGIN_LIB=$PWD/{engine}/plugins/libflexiq_plugins.so
tritonserver --model-repository=$PWD \\
  --backend-config=tensorrt,plugins=$PWD/{engine}/plugins/libflexiq_triton_register.so
```

The Python backend needs NumPy; the few flexiq_trt modules the front model imports are vendored in
`{name}/1/flexiq_trt/`. Client: flexiq_trt's `examples/triton/client.py`. Engine shapes up to
`{max_shapes}` must be inside the engine's optimization profile.
"""
