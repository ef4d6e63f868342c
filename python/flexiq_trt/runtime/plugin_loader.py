"""Find ``libflexiq_plugins.so`` and load it into a TensorRT plugin registry.

Search order: env ``FLEXIQ_PLUGIN_LIB`` -> the installed package (``flexiq_trt/lib/``) -> the repository
build folder (``build/plugins/``). Loading goes through ``IPluginRegistry.load_library``, which calls
the library's ``getCreators`` (docs/design.md §4/§6); the library never registers itself.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from flexiq_trt.errors import PluginNotFoundError
from flexiq_trt.log import get_logger
from flexiq_trt.plugin_spec import PLUGIN_NAMESPACE, PLUGIN_OPS, PLUGIN_VERSION
from flexiq_trt.runtime.trt_import import ensure_rtx_parser_symlink  # re-exported for scripts/setup.sh

__all__ = ["PLUGIN_LIB_ENV", "ensure_rtx_parser_symlink", "find_plugin_library", "load_plugins"]

LOG = get_logger(__name__)

PLUGIN_LIB_ENV = "FLEXIQ_PLUGIN_LIB"
PLUGIN_LIB_NAME = "libflexiq_plugins.so"
_PACKAGE_DIR = Path(__file__).resolve().parents[1]
_REPO_DIR = Path(__file__).resolve().parents[3]


def candidate_paths() -> list[Path]:
    """Where the library is looked for, in order (the env variable first when set)."""
    paths = []
    env = os.environ.get(PLUGIN_LIB_ENV)
    if env:
        paths.append(Path(env))
    paths.append(_PACKAGE_DIR / "lib" / PLUGIN_LIB_NAME)
    paths.append(_REPO_DIR / "build" / "plugins" / PLUGIN_LIB_NAME)
    return paths


def find_plugin_library() -> Path:
    """The plugin library path; raises PluginNotFoundError naming every place searched."""
    env = os.environ.get(PLUGIN_LIB_ENV)
    if env and not Path(env).is_file():
        raise PluginNotFoundError(f"{PLUGIN_LIB_ENV}={env} does not name a file")
    for path in candidate_paths():
        if path.is_file():
            return path.resolve()
    searched = ", ".join(str(p) for p in candidate_paths())
    raise PluginNotFoundError(
        f"{PLUGIN_LIB_NAME} not found (searched {searched}); build it with scripts/build_plugins.sh "
        f"or set {PLUGIN_LIB_ENV}"
    )


def load_plugins(trt: object, path: str | os.PathLike | None = None, ops: Iterable[str] = PLUGIN_OPS) -> Path:
    """Load the library into `trt`'s global plugin registry and check that every creator is there.

    `trt` is the imported ``tensorrt_rtx`` or ``tensorrt`` module. Returns the library path.
    """
    lib = Path(path) if path is not None else find_plugin_library()
    registry = trt.get_plugin_registry()
    if _creators_missing(registry, ops) == []:
        # Already loaded in this process (a second load_library of the same file returns None).
        LOG.debug("FlexiQ creators already registered; not loading %s again", lib)
        return lib
    handle = registry.load_library(str(lib))
    if handle is None:
        raise PluginNotFoundError(f"{lib}: the TensorRT plugin registry could not load it (see the TensorRT log)")
    missing = _creators_missing(registry, ops)
    if missing:
        raise PluginNotFoundError(
            f"{lib}: loaded, but no creator for {missing} (version {PLUGIN_VERSION!r}, namespace "
            f"{PLUGIN_NAMESPACE!r}); the library and flexiq_trt are from different versions"
        )
    LOG.debug("loaded %s (%s)", lib, ", ".join(ops))
    return lib


def _creators_missing(registry: object, ops: Iterable[str]) -> list[str]:
    return [op for op in ops if registry.get_creator(op, PLUGIN_VERSION, PLUGIN_NAMESPACE) is None]
