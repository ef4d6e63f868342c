"""Build a TensorRT engine from a FlexiQ ONNX model (plugin nodes + the ``flexiq_max_4bit_ch`` input).

TensorRT-RTX is used when importable: it builds engines ahead of time, without a GPU, for the
compute capabilities asked for (docs/design.md §6); full TensorRT builds for the local GPU otherwise. The
plugin library is loaded into the registry first, then the ONNX parser creates the plugin layers
from the nodes' op_type / plugin_version / plugin_namespace attributes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import onnx

from flexiq_trt.errors import ConfigError, FlexiqError, ModelError, PluginFieldError
from flexiq_trt.log import get_logger, stage
from flexiq_trt.options import option
from flexiq_trt.plugin_spec import RUNTIME_INPUT
from flexiq_trt.runtime.node_check import check_plugin_nodes
from flexiq_trt.runtime.plugin_loader import load_plugins
from flexiq_trt.runtime.stderr_capture import capture_fd2
from flexiq_trt.runtime.trt_import import TensorRT, ensure_rtx_parser_symlink, import_tensorrt

__all__ = ["BuildOptions", "BuildResult", "build_engine", "ensure_rtx_parser_symlink"]

LOG = get_logger(__name__)

# TensorRT-RTX ahead-of-time targets (it has no SM90/SM100 target, docs/design.md §6).
RTX_COMPUTE_CAPABILITIES = (75, 80, 86, 89, 120, 121)
ShapeRange = tuple[Sequence[int], Sequence[int], Sequence[int]]


@dataclass(frozen=True)
class BuildOptions:
    """What to build: targets, the batch range of the dynamic profile, precision and limits."""

    compute_capabilities: tuple[int, ...] = option(
        (86, 89), "TensorRT-RTX targets, e.g. 80 86 89 (ahead of time, no GPU needed)")
    min_batch: int = option(1, "smallest batch of the optimisation profile")
    opt_batch: int = option(1, "batch TensorRT tunes for")
    max_batch: int = option(8, "largest batch of the optimisation profile")
    fp16: bool = option(False, "allow FP16 for the layers that stay outside the plugin")
    workspace_mb: int | None = option(None, "workspace limit in MiB (default: TensorRT's)")
    input_shapes: Mapping[str, ShapeRange] = option(
        help="explicit (min, opt, max) shapes for inputs with dynamic non-batch axes, by input name",
        default_factory=dict, cli=False)
    plugin_lib: str | None = option(None, "path of libflexiq_plugins.so (default: found as the README says)")
    check_nodes: bool = option(
        True, "check plugin attribute types and int32 ranges in Python before parsing (the parser "
        "truncates int64 silently)")

    def __post_init__(self) -> None:
        if not 1 <= self.min_batch <= self.opt_batch <= self.max_batch:
            raise ConfigError(
                f"batch range must satisfy 1 <= min <= opt <= max, got min={self.min_batch} "
                f"opt={self.opt_batch} max={self.max_batch}"
            )
        if not self.compute_capabilities:
            raise ConfigError("compute_capabilities is empty")
        if self.workspace_mb is not None and self.workspace_mb <= 0:
            raise ConfigError(f"workspace_mb must be positive, got {self.workspace_mb}")


@dataclass(frozen=True)
class BuildResult:
    """The written engine and how it was built."""

    path: Path
    size_bytes: int
    seconds: float
    backend: str  # "tensorrt_rtx" or "tensorrt"
    compute_capabilities: tuple[int, ...]
    num_layers: int  # L, length of flexiq_max_4bit_ch
    int8_inputs: int = 0  # plugin layers whose input x TensorRT typed INT8 (INT8 edges, docs/design.md §2.8)
    int8_outputs: int = 0  # plugin layers whose output TensorRT typed INT8


def build_engine(
    flexiq_onnx_path: str | os.PathLike,
    out_path: str | os.PathLike,
    options: BuildOptions | None = None,
    *,
    trt: TensorRT | None = None,
    **overrides: object,
) -> BuildResult:
    """Parse `flexiq_onnx_path`, build a serialized engine and write it to `out_path`.

    `overrides` are BuildOptions fields (e.g. ``compute_capabilities=(86,)``, ``max_batch=16``).
    Raises ModelError / PluginFieldError / ConfigError with the file and node named.
    """
    options = _merge(options, overrides)
    onnx_path = Path(flexiq_onnx_path)
    if not onnx_path.is_file():
        raise ModelError(f"{onnx_path}: no such ONNX file")
    if options.check_nodes:
        n_nodes = check_plugin_nodes(onnx.load(str(onnx_path), load_external_data=False), str(onnx_path))
        LOG.info("%s: %d FlexiQ plugin node(s) pass the attribute checks", onnx_path.name, n_nodes)
    trt = trt or import_tensorrt()
    start = time.monotonic()
    with stage(f"build engine {onnx_path.name} ({trt.name})", LOG):
        load_plugins(trt.module, options.plugin_lib)
        session = _BuildSession(trt.module)
        try:
            plan, num_layers, int8_io = _build_plan(session, trt, onnx_path, options)
        finally:
            session.close()
        out = Path(out_path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(plan)
    result = BuildResult(out, out.stat().st_size, time.monotonic() - start, trt.name,
                         tuple(options.compute_capabilities) if trt.is_rtx else (), num_layers, *int8_io)
    LOG.info("wrote %s (%.1f KiB, L=%d, INT8 in/out on %d/%d plugin layers) in %.1f s", out,
             result.size_bytes / 1024, num_layers, *int8_io, result.seconds)
    return result


class _BuildSession:
    """The TensorRT objects of one build, released in reverse creation order by close().

    TensorRT's Python wrappers do not keep each other alive; if the garbage collector (or an
    exception's traceback) frees a builder before its network and parser, TensorRT-RTX corrupts its
    heap and crashes later. So helpers reach these objects only through the session, never as locals.
    """

    def __init__(self, tm) -> None:
        self.tm = tm
        self.logger = tm.Logger(tm.Logger.WARNING)
        self.builder = tm.Builder(self.logger)
        self.network = None
        self.parser = None
        self.config = None
        self.profile = None

    def close(self) -> None:
        for name in ("parser", "profile", "config", "network", "builder", "logger"):
            setattr(self, name, None)


def _build_plan(session: _BuildSession, trt: TensorRT, onnx_path: Path,
                options: BuildOptions) -> tuple[bytes, int, tuple[int, int]]:
    """Parse, configure and build; returns (serialized plan, L, plugin layers with INT8 (input, output))."""
    _parse(session, onnx_path)
    int8_io = _plugin_int8_io(session.tm, session.network)
    if any(int8_io) and not trt.is_rtx:
        LOG.warning("%s: %d FlexiQ layer(s) hand INT8 codes to the next one (docs/design.md §2.8); that path was "
                    "verified with TensorRT-RTX's strongly typed builder only. If %s rejects it, convert with "
                    "--no-int8-edges.", onnx_path.name, int8_io[0], trt.name)
    _builder_config(session, trt, onnx_path, options)
    LOG.info("building for %s", _targets_text(trt, options))
    with capture_fd2() as captured:
        plan = session.builder.build_serialized_network(session.network, session.config)
    if plan is None:
        plugin_lines = _plugin_messages(captured)
        if plugin_lines:
            raise PluginFieldError(f"{onnx_path}: engine build failed: {'; '.join(plugin_lines)}")
        raise FlexiqError(f"{onnx_path}: TensorRT could not build the engine (see the TensorRT log above)")
    data = bytes(plan)
    del plan
    return data, _runtime_input_length(session.network), int8_io


def _merge(options: BuildOptions | None, overrides: Mapping[str, object]) -> BuildOptions:
    base = options or BuildOptions()
    unknown = set(overrides) - set(BuildOptions.__dataclass_fields__)
    if unknown:
        raise ConfigError(f"unknown build option(s): {sorted(unknown)}")
    if not overrides:
        return base
    values = {name: getattr(base, name) for name in BuildOptions.__dataclass_fields__}
    values.update(overrides)
    if "compute_capabilities" in overrides:
        values["compute_capabilities"] = tuple(int(c) for c in values["compute_capabilities"])  # type: ignore[union-attr]
    return BuildOptions(**values)  # type: ignore[arg-type]


def _parse(session: _BuildSession, onnx_path: Path) -> None:
    """Parse the model; parser errors become FlexiqErrors naming the node (and field, when known)."""
    tm = session.tm
    flags = 0
    if hasattr(tm.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH"):
        flags = 1 << int(tm.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    session.network = session.builder.create_network(flags)
    session.parser = tm.OnnxParser(session.network, session.logger)
    with stage(f"parse {onnx_path.name}", LOG), capture_fd2() as captured:
        ok = session.parser.parse_from_file(str(onnx_path))
    if not ok:
        texts = [_error_text(session.parser.get_error(i)) for i in range(session.parser.num_errors)]
        text = "; ".join(texts) or "unknown parser error"
        plugin_lines = _plugin_messages(captured)
        if plugin_lines:
            raise PluginFieldError(f"{onnx_path}: {'; '.join(plugin_lines)} (TensorRT's ONNX parser: {text})")
        raise ModelError(f"{onnx_path}: TensorRT's ONNX parser failed: {text}")
    if _runtime_input_length(session.network) < 0:
        LOG.warning("%s: the network has no %s input (no FlexiQ layer?)", onnx_path, RUNTIME_INPUT)


def _plugin_messages(captured) -> list[str]:
    """The FlexiQ plugin's error lines (without the "[flexiq ERROR]" tag) from captured stderr."""
    return [line.split("] ", 1)[-1] for line in captured.plugin_lines() if "ERROR" in line.split("]", 1)[0]]


def _error_text(err) -> str:
    node = getattr(err, "node_name", lambda: "")() if callable(getattr(err, "node_name", None)) else ""
    op = getattr(err, "node_operator", lambda: "")() if callable(getattr(err, "node_operator", None)) else ""
    where = f"node {node!r} ({op})" if node or op else "model"
    return f"{where}: {err.desc()}"


def _builder_config(session: _BuildSession, trt: TensorRT, onnx_path: Path, options: BuildOptions) -> None:
    tm = session.tm
    session.config = session.builder.create_builder_config()
    if options.workspace_mb is not None:
        session.config.set_memory_pool_limit(tm.MemoryPoolType.WORKSPACE, options.workspace_mb << 20)
    if trt.is_rtx:
        _set_compute_capabilities(tm, session.config, options.compute_capabilities)
    if options.fp16:
        _enable_fp16(trt, session, onnx_path)
    session.profile = session.builder.create_optimization_profile()
    for i in range(session.network.num_inputs):
        name, shape = session.network.get_input(i).name, tuple(session.network.get_input(i).shape)
        shapes = _profile_shapes(name, shape, options)
        if shapes is not None:
            session.profile.set_shape(name, *shapes)
            LOG.debug("profile %s: min %s opt %s max %s", name, *shapes)
    session.config.add_optimization_profile(session.profile)


def _set_compute_capabilities(tm, config, capabilities: Sequence[int]) -> None:
    bad = [c for c in capabilities if c not in RTX_COMPUTE_CAPABILITIES]
    if bad:
        raise ConfigError(
            f"TensorRT-RTX cannot build for SM {bad}; supported ahead-of-time targets: {RTX_COMPUTE_CAPABILITIES}"
        )
    too_old = [c for c in capabilities if c < 80]
    if too_old:
        raise ConfigError(f"FlexiQ kernels need sm_80 or newer; cannot target SM {too_old}")
    config.num_compute_capabilities = len(capabilities)
    for i, cap in enumerate(capabilities):
        config.set_compute_capability(getattr(tm.ComputeCapability, f"SM{cap}"), i)


def _enable_fp16(trt: TensorRT, session: _BuildSession, onnx_path: Path) -> None:
    """Full TensorRT: allow FP16 kernels. TensorRT-RTX networks are strongly typed: the model must be FP16."""
    tm = session.tm
    if hasattr(tm.BuilderFlag, "FP16"):
        session.config.set_flag(tm.BuilderFlag.FP16)
        return
    dtypes = [session.network.get_input(i).dtype for i in range(session.network.num_inputs)]
    if tm.float32 in dtypes:
        raise ConfigError(
            f"{onnx_path}: fp16 was requested but {trt.name} networks are strongly typed and the model's "
            f"inputs are float32; convert the model to float16 (the FlexiQ plugins accept FP16 x)"
        )


def _profile_shapes(name: str, shape: tuple[int, ...], options: BuildOptions) -> ShapeRange | None:
    """(min, opt, max) for a dynamic input: the batch range on axis 0, explicit shapes otherwise."""
    if name in options.input_shapes:
        lo, mid, hi = options.input_shapes[name]
        return tuple(lo), tuple(mid), tuple(hi)
    if all(d >= 0 for d in shape):
        return None
    if name == RUNTIME_INPUT:
        raise ModelError(f"input {RUNTIME_INPUT} must have a static shape [L], got {list(shape)}")
    if any(d < 0 for d in shape[1:]):
        raise ConfigError(
            f"input {name!r} has dynamic non-batch axes {list(shape)}; give its (min, opt, max) shapes in "
            f"BuildOptions.input_shapes"
        )
    rest = tuple(shape[1:])
    return (options.min_batch, *rest), (options.opt_batch, *rest), (options.max_batch, *rest)


def _runtime_input_length(network) -> int:
    for i in range(network.num_inputs):
        name, shape = network.get_input(i).name, tuple(network.get_input(i).shape)
        if name == RUNTIME_INPUT:
            return int(shape[0]) if len(shape) == 1 else -1
    return -1


def _plugin_int8_io(tm, network) -> tuple[int, int]:
    """How many plugin layers of the parsed network have an INT8 input x / an INT8 output, as TensorRT typed them."""
    ins = outs = 0
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        if layer.type != tm.LayerType.PLUGIN_V3:
            continue
        ins += layer.get_input(0).dtype == tm.DataType.INT8
        outs += layer.get_output(0).dtype == tm.DataType.INT8
    return ins, outs


def _targets_text(trt: TensorRT, options: BuildOptions) -> str:
    if trt.is_rtx:
        return "SM " + ", ".join(str(c) for c in options.compute_capabilities) + " (ahead of time, TensorRT-RTX)"
    return "the local GPU (TensorRT)"

