"""The package's structure as docs/architecture.md describes it: one-way stage dependencies, a thin
pipeline, small signatures, and CLI flags generated from the config dataclasses."""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
PACKAGE = REPO / "python" / "flexiq_trt"
SOURCES = sorted([*PACKAGE.rglob("*.py"), *(REPO / "graph_passes").rglob("*.py")])

# Pipeline order: a stage may import the stages before it, never the ones after it.
STAGE_ORDER = ("intake", "calibration", "quantization", "select", "finetune", "report", "pipeline")
# Modules inside a stage package that every stage may use: the contract's layer types (ConvGeometry,
# QuantizedLayer, also used by the graph passes) and the description of a model's inputs.
FOUNDATION = ("flexiq_trt.quantization.layer", "flexiq_trt.calibration.model_io")


def _module_of(path: Path) -> str:
    if path.is_relative_to(REPO / "graph_passes"):
        return "flexiq_trt.graph_passes." + ".".join(path.relative_to(REPO / "graph_passes").with_suffix("").parts)
    return ".".join(path.relative_to(REPO / "python").with_suffix("").parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
    return found


def _stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "flexiq_trt" and parts[1] in STAGE_ORDER else None


def test_stages_import_only_earlier_stages():
    wrong = []
    for path in SOURCES:
        own = _stage(_module_of(path))
        if own is None:
            continue
        for line, target in _imports(path):
            other = _stage(target)
            if target in FOUNDATION:
                continue
            if other is not None and STAGE_ORDER.index(other) > STAGE_ORDER.index(own):
                wrong.append(f"{path.relative_to(REPO)}:{line} ({own}) imports {target} ({other})")
    assert not wrong, "upward imports:\n" + "\n".join(wrong)


def test_nothing_imports_from_the_package_root_or_the_pipeline_from_below():
    """The root only re-exports; importing names from it (not submodules) would be an upward import."""
    wrong = []
    for path in SOURCES:
        module = _module_of(path)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "flexiq_trt" and node.level == 0:
                names = [a.name for a in node.names if not (PACKAGE / a.name).exists()
                         and not (PACKAGE / f"{a.name}.py").exists()]
                if names and not module.startswith("flexiq_trt.__init__"):
                    wrong.append(f"{path.relative_to(REPO)}:{node.lineno} imports {names} from the package root")
        for line, target in _imports(path):
            if target.startswith("flexiq_trt.pipeline") and not module.startswith(("flexiq_trt.pipeline", "flexiq_trt.api")):
                wrong.append(f"{path.relative_to(REPO)}:{line} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_no_function_takes_more_than_eight_parameters():
    wide = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                a = node.args
                names = [x.arg for x in [*a.posonlyargs, *a.args, *a.kwonlyargs] if x.arg not in ("self", "cls")]
                if len(names) > 8:
                    wide.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name}() takes {len(names)}")
    assert not wide, "\n".join(wide)


def test_the_pipeline_does_not_zip_per_layer_lists():
    """Per-layer data travels as records; the orchestration never zips parallel lists back together."""
    zips = []
    for path in (PACKAGE / "pipeline").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "zip":
                zips.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not zips, "zip() in pipeline/: " + ", ".join(zips)


# Flags that name a command's own input/output rather than a stage option.
COMMAND_IO_FLAGS = {
    "build": {"output"},  # the engine file to write
    "ratio": {"json"},  # output format
}


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


@pytest.mark.parametrize("command", ["convert", "compare", "inspect", "build", "ratio"])
def test_every_cli_option_comes_from_a_config_dataclass(command):
    from flexiq_trt.cli.arg_groups import GENERATED_DESTS
    from flexiq_trt.cli.main import build_parser

    sub = _subparsers(build_parser())[command]
    generated = getattr(sub, GENERATED_DESTS, set())
    own = {"help", "verbose", "quiet", "log_file"} | COMMAND_IO_FLAGS.get(command, set())
    hand_written = [a.option_strings for a in sub._actions
                    if a.option_strings and a.dest not in generated and a.dest not in own]
    assert not hand_written, f"{command}: options not generated from a config dataclass: {hand_written}"


def test_config_fields_all_carry_help():
    import dataclasses

    from flexiq_trt.calibration.config import CalibConfig
    from flexiq_trt.conversion import ConvertConfig
    from flexiq_trt.quantization.config import QuantConfig
    from flexiq_trt.report.ort_baseline import OrtBaselineConfig
    from flexiq_trt.runtime.engine_builder import BuildOptions
    from flexiq_trt.select.config import SearchConfig

    missing = [f"{cls.__name__}.{f.name}" for cls in (CalibConfig, ConvertConfig, QuantConfig, SearchConfig,
                                                      BuildOptions, OrtBaselineConfig)
               for f in dataclasses.fields(cls) if not f.metadata.get("help")]
    assert not missing


def test_config_fields_use_the_one_option_convention():
    """Config fields are declared with flexiq_trt.options.option, never with hand-written metadata dicts."""
    raw = [f"{p.relative_to(REPO)}:{i}" for p in SOURCES if p.name != "options.py"
           for i, line in enumerate(p.read_text().splitlines(), 1) if "metadata={" in line]
    assert not raw, "field(metadata={...}) instead of option(...): " + ", ".join(raw)
