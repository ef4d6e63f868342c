"""The explicit package list in pyproject.toml covers every package folder (one import root)."""

from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parents[2]


def test_every_package_folder_is_listed():
    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(cfg["packages"])
    found = {".".join(p.parent.relative_to(REPO / "python").parts)
             for p in (REPO / "python/flexiq_trt").rglob("__init__.py") if "graph_passes" not in p.parts}
    found.add("flexiq_trt.graph_passes")
    assert listed == found
    assert cfg["package-dir"]["flexiq_trt.graph_passes"] == "graph_passes"
    assert (REPO / "graph_passes/__init__.py").exists()


def test_graph_passes_import_under_the_package_root():
    import flexiq_trt.graph_passes.plan as plan

    assert Path(plan.__file__).resolve().parent == (REPO / "graph_passes").resolve()
