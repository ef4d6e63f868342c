"""The C++ field table, the plugin READMEs and plugin_spec.py describe the same fields (docs/conventions.md, "Names defined once")."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from flexiq_trt import plugin_spec as spec

REPO = Path(__file__).resolve().parents[3]
FIELDS_H = REPO / "plugins" / "common" / "flexiqFields.h"
READMES = {spec.CONV_OP: REPO / "plugins" / "flexiqConvPlugin" / "README.md",
           spec.GEMM_OP: REPO / "plugins" / "flexiqGemmPlugin" / "README.md"}

_ROW = re.compile(
    r'FLEXIQ_FIELD\("(?P<name>\w+)",\s*k(?P<kind>\w+),\s*"(?P<formula>[^"]+)",\s*k(?P<rule>\w+),\s*'
    r"(?P<low>[^,]+),\s*(?P<high>[^,]+),\s*(?P<conv>true|false)\)"
)


def _bound(text: str) -> float | None:
    text = text.strip()
    return None if text == "kNO_LIMIT" else float(text)


def cpp_fields() -> list[dict]:
    text = FIELDS_H.read_text()
    body = text[text.index("// FLEXIQ_FIELD_TABLE_BEGIN"): text.index("// FLEXIQ_FIELD_TABLE_END")]
    rows = [m.groupdict() for m in _ROW.finditer(body)]
    assert rows, f"no FLEXIQ_FIELD rows parsed from {FIELDS_H}"
    assert len(rows) == body.count("FLEXIQ_FIELD("), "a row of the C++ table does not match the parser's pattern"
    return rows


def cpp_constant(name: str) -> str:
    m = re.search(rf'{name}\s*=\s*"([^"]*)"', FIELDS_H.read_text())
    assert m, f"{name} not found in {FIELDS_H}"
    return m.group(1)


def test_cpp_table_matches_plugin_spec() -> None:
    rows = cpp_fields()
    assert [r["name"] for r in rows] == [f.name for f in spec.FIELDS]
    for row, field in zip(rows, spec.FIELDS, strict=True):
        assert row["kind"] == field.kind.value, field.name
        assert row["formula"] == field.length, field.name
        assert (row["conv"] == "true") == field.conv_only, field.name
        for side in ("low", "high"):
            want, got = getattr(field, side), _bound(row[side])
            assert (want is None and got is None) or (want is not None and got is not None and math.isclose(got, want)), (
                f"{field.name}.{side}: C++ {row[side]} vs Python {want}")


def test_length_rule_enum_matches_formula() -> None:
    # The C++ code validates with the enum; the parity above checks the text, so enum and text must agree.
    expected = {"1": "ONE", "2": "TWO", "4": "FOUR", "N": "N", "C_pad": "C_PAD", "G_count": "G_COUNT",
                "N*G_count": "N_G_COUNT", "N*K": "N_K", "N*K/2": "N_K_HALF",
                "(G_count+1)*N": "RUNGS_N", "R_G_count": "R_G_COUNT"}
    for row in cpp_fields():
        assert expected[row["formula"]] == row["rule"], row["name"]


def test_cpp_constants_match_plugin_spec() -> None:
    assert cpp_constant("kFLEXIQ_PLUGIN_NAMESPACE") == spec.PLUGIN_NAMESPACE
    assert cpp_constant("kFLEXIQ_PLUGIN_VERSION") == spec.PLUGIN_VERSION
    assert cpp_constant("kFLEXIQ_CONV_NAME") == spec.CONV_OP
    assert cpp_constant("kFLEXIQ_GEMM_NAME") == spec.GEMM_OP
    assert cpp_constant("kFLEXIQ_RUNTIME_INPUT") == spec.RUNTIME_INPUT
    text = FIELDS_H.read_text()
    sizes = re.search(r"kSUPPORTED_GROUP_SIZES\[\]\s*=\s*\{([^}]*)\}", text).group(1)
    assert tuple(int(v) for v in sizes.split(",")) == spec.SUPPORTED_GROUP_SIZES
    assert f"activation\", kINT, \"1\", kONE, 0, {int(max(spec.Activation))}," in text


def test_kernel_k_limits_match_plugin_spec() -> None:
    contract = (REPO / "plugins" / "common" / "flexiqContract.h").read_text()
    assert re.search(rf"kMaxKSigned\s*=\s*{spec.MAX_K_SIGNED}\b", contract)
    assert re.search(rf"kMaxKUnsigned\s*=\s*{spec.MAX_K_UNSIGNED}\b", contract)


def _readme_rows(path: Path) -> list[tuple[str, str, str, str]]:
    """(name, kind, length, conv-only) rows of the README's fields table."""
    text = path.read_text()
    section = text[text.index("## Fields"):]
    rows = []
    for line in section.splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and re.fullmatch(r"[a-z_0-9]+", cells[0]) and cells[0] != "name":
            rows.append(tuple(cells[:4]))
    return rows


@pytest.mark.parametrize("op", spec.PLUGIN_OPS)
def test_readme_fields_table_matches_plugin_spec(op: str) -> None:
    rows = _readme_rows(READMES[op])
    want = [(f.name, f.kind.value, f.length) for f in spec.fields_for(op)]
    assert [r[:3] for r in rows] == want
    text = READMES[op].read_text()
    assert f"`{spec.PLUGIN_NAMESPACE}`" in text and f"version `{spec.PLUGIN_VERSION}`" in text
    assert spec.RUNTIME_INPUT in text
