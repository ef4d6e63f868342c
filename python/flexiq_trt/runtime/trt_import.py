"""Import TensorRT lazily: TensorRT-RTX when importable (GPU-less ahead-of-time builds), else full TensorRT.

Also repairs the TensorRT-RTX wheel's packaging bug (docs/design.md §6): its ONNX parser ``dlopen``s
``libtensorrt_rtx.so`` but the wheel ships only ``libtensorrt_rtx.so.1``; without the symlink,
parsing any plugin node aborts the whole process.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from flexiq_trt.errors import FlexiqError
from flexiq_trt.log import get_logger

LOG = get_logger(__name__)

RTX_MODULE = "tensorrt_rtx"
RTX_LIBS_PACKAGE = "tensorrt_rtx_libs"
RTX_CORE_LIB = "libtensorrt_rtx.so"
FULL_MODULE = "tensorrt"
# Set FLEXIQ_TRT_FLAVOR=tensorrt to prefer full TensorRT even when TensorRT-RTX is installed.
FLAVOR_ENV = "FLEXIQ_TRT_FLAVOR"


class TensorRTNotFoundError(FlexiqError):
    """Neither TensorRT-RTX nor TensorRT can be imported."""


@dataclass(frozen=True)
class TensorRT:
    """The imported TensorRT module and which flavour it is."""

    module: ModuleType
    is_rtx: bool

    @property
    def name(self) -> str:
        """The module name, for messages."""
        return RTX_MODULE if self.is_rtx else FULL_MODULE


def ensure_rtx_parser_symlink() -> Path | None:
    """Create ``libtensorrt_rtx.so -> libtensorrt_rtx.so.1`` in the tensorrt_rtx_libs folder if missing.

    Returns the symlink path, or None when TensorRT-RTX is not installed. Idempotent; raises
    FlexiqError when the folder is not writable (the message says which command to run instead).
    """
    spec = importlib.util.find_spec(RTX_LIBS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations)))
    link = folder / RTX_CORE_LIB
    target = folder / f"{RTX_CORE_LIB}.1"
    if not target.exists():
        raise FlexiqError(f"TensorRT-RTX install is incomplete: {target} does not exist")
    if link.exists():
        return link
    if link.is_symlink():  # dangling link left by an older install
        link.unlink()
    try:
        os.symlink(target.name, link)
    except OSError as e:
        raise FlexiqError(f"cannot create {link} -> {target.name} ({e}); run: ln -s {target.name} {link}") from e
    LOG.info("created %s -> %s (TensorRT-RTX ONNX parser fix)", link, target.name)
    return link


def import_tensorrt(prefer: str | None = None) -> TensorRT:
    """TensorRT-RTX if importable (with the parser symlink ensured), else full TensorRT.

    `prefer` (or env FLEXIQ_TRT_FLAVOR) may be "tensorrt_rtx" or "tensorrt" to try that one first.
    """
    prefer = prefer or os.environ.get(FLAVOR_ENV) or RTX_MODULE
    order = [RTX_MODULE, FULL_MODULE] if prefer != FULL_MODULE else [FULL_MODULE, RTX_MODULE]
    errors = []
    for name in order:
        try:
            module = importlib.import_module(name)
        except ImportError as e:
            errors.append(f"{name}: {e}")
            continue
        if name == RTX_MODULE:
            ensure_rtx_parser_symlink()
        return TensorRT(module=module, is_rtx=name == RTX_MODULE)
    raise TensorRTNotFoundError(
        "neither TensorRT-RTX nor TensorRT can be imported ("
        + "; ".join(errors)
        + "); install the 'rtx' extra (pip install 'flexiq_trt[rtx]') or a TensorRT SDK"
    )
