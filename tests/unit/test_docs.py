"""Every docs citation in the repository resolves, nothing cites documents outside it, and the worked
examples of docs/design.md §2 are what the NumPy oracle computes (docs/conventions.md, "Documentation and citations")."""

from __future__ import annotations

import ast
import re
import subprocess
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from flexiq_trt.quantization import bits, reference

REPO = Path(__file__).resolve().parents[2]
TEXT_SUFFIXES = (".py", ".md", ".h", ".cpp", ".cu", ".cuh", ".txt", ".sh", ".toml", ".map", ".cmake")
TEXT_NAMES = ("CMakeLists.txt",)
# `docs/<name>.md §2`, `docs/<name>.md §2, §3`, `docs/<name>.md §4/§6` (whitespace may include a line break).
SECTION_CITE = re.compile(r"docs/(?P<doc>[A-Za-z0-9_-]+)\.md(?P<secs>(?:\s*[,/]?\s*§\s*\d+)+)")
# `docs/<name>.md, "Heading"` (a placeholder such as "<Heading>" in prose is not a citation).
HEADING_CITE = re.compile(r'docs/(?P<doc>[A-Za-z0-9_-]+)\.md,\s*"(?P<heading>[^"<\n][^"\n]*)"')
# Any mention of a document under docs/ (not preceded by a path character, so `plugins/docs/` is not one).
ANY_DOC = re.compile(r"(?<![\w./-])docs/(?P<doc>[A-Za-z0-9_-]+)\.md")
# Built from parts so this file does not match itself.
FORBIDDEN = ("DESIGN" + " §", "STYLE" + " §", ".." + "/shared")


@cache
def tracked_text_files() -> tuple[Path, ...]:
    """Tracked files whose suffix or name marks them as text (git ls-files, so build outputs never count)."""
    out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=False)
    if out.returncode != 0:
        pytest.skip(f"not a git checkout: {out.stderr.decode(errors='replace').strip()}")
    files = []
    for name in out.stdout.decode().split("\0"):
        path = REPO / name
        if name and (name.endswith(TEXT_SUFFIXES) or path.name in TEXT_NAMES) and path.is_file():
            files.append(path)
    return tuple(files)


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")


@cache
def headings(doc: str) -> tuple[tuple[str, ...], frozenset[int]]:
    """(heading texts, top-level numbers) of docs/<doc>.md; numbered headings look like `## 2. Title`."""
    lines = read(REPO / "docs" / f"{doc}.md").splitlines()
    texts, numbers, fenced = [], set(), False
    for line in lines:
        if line.startswith("```"):
            fenced = not fenced
        match = None if fenced else re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            texts.append(match.group(1))
            number = re.match(r"(\d+)\.(?:\s|$)", match.group(1))
            if number:
                numbers.add(int(number.group(1)))
    return tuple(texts), frozenset(numbers)


def citations() -> list[tuple[str, str, str]]:
    """(file:line, doc, target) for every section or heading citation; target is '§N' or the heading."""
    found = []
    for path in tracked_text_files():
        text = read(path)
        rel = path.relative_to(REPO)
        for m in SECTION_CITE.finditer(text):
            where = f"{rel}:{text.count(chr(10), 0, m.start()) + 1}"
            found += [(where, m.group("doc"), f"§{n}") for n in re.findall(r"§\s*(\d+)", m.group("secs"))]
        for m in HEADING_CITE.finditer(text):
            found.append((f"{rel}:{text.count(chr(10), 0, m.start()) + 1}", m.group("doc"), m.group("heading")))
    return found


def test_the_scan_sees_the_known_citations():
    """Guards the scanner itself: these citations exist in the tree today."""
    cited = {(doc, target) for _, doc, target in citations()}
    for expected in [("design", "§2"), ("design", "§6"), ("conventions", "Errors")]:
        assert expected in cited, expected


def problem(doc: str, target: str) -> str | None:
    """Why a citation of docs/<doc>.md (target '§N' or a heading) does not resolve, or None."""
    if not (REPO / "docs" / f"{doc}.md").is_file():
        return f"docs/{doc}.md does not exist"
    texts, numbers = headings(doc)
    if target.startswith("§"):
        if int(target[1:]) not in numbers:
            return f"docs/{doc}.md has no heading numbered {target[1:]} (has {sorted(numbers)})"
        return None
    return None if target in texts else f'docs/{doc}.md has no heading "{target}"'


def test_a_broken_citation_is_reported():
    assert problem("design", "§2") is None and problem("conventions", "Errors") is None
    assert "no heading numbered 9" in problem("design", "§9")
    assert 'no heading "Nope"' in problem("conventions", "Nope")
    assert "does not exist" in problem("no-such-doc", "§1")


def test_every_citation_resolves():
    broken = [f"{where}: {why}" for where, doc, target in citations() if (why := problem(doc, target))]
    assert not broken, "\n".join(broken)


def test_every_mentioned_doc_exists():
    missing = sorted({f"{path.relative_to(REPO)}: docs/{m.group('doc')}.md"
                      for path in tracked_text_files() for m in ANY_DOC.finditer(read(path))
                      if not (REPO / "docs" / f"{m.group('doc')}.md").is_file()})
    assert not missing, "\n".join(missing)


def test_nothing_cites_documents_outside_the_repository():
    hits = []
    for path in tracked_text_files():
        for number, line in enumerate(read(path).splitlines(), start=1):
            hits += [f"{path.relative_to(REPO)}:{number}: {bad!r}" for bad in FORBIDDEN if bad in line]
    assert not hits, "\n".join(hits)


def test_design_has_the_six_numbered_sections():
    texts, numbers = headings("design")
    assert numbers >= {1, 2, 3, 4, 5, 6}
    for required in ("Names defined once", "CMake", "Exported symbols", "Errors"):
        assert required in headings("conventions")[0], required


# ---- the worked examples of docs/design.md §2 --------------------------------------------------------

BITS_LINE = re.compile(
    r"^bits-example\s+(?P<kind>signed|unsigned)\s+codes=(?P<codes>\[[^\]]*\])\s+s=(?P<s>\d+)\s+"
    r"q4=(?P<q4>\[[^\]]*\])\s+effective=(?P<eff>\[[^\]]*\])\s*$", re.M)
ACC_LINE = re.compile(
    r"^acc-example\s+x=(?P<x>\[[^\]]*\])\s+w4=(?P<w4>\[[^\]]*\])\s+step_w=(?P<sw>\d+)\s+->\s+step_a=(?P<sa>\d+)\s+"
    r"x4=(?P<x4>\[[^\]]*\])\s+dot4=(?P<dot>-?\d+)\s+acc=(?P<acc>-?\d+)\s*$", re.M)


def design_text() -> str:
    return read(REPO / "docs" / "design.md")


def test_design_has_worked_examples():
    assert len(BITS_LINE.findall(design_text())) >= 3
    assert ACC_LINE.search(design_text())


@pytest.mark.parametrize("line", [m.group(0) for m in BITS_LINE.finditer(design_text())])
def test_bit_extraction_example_matches_the_oracle(line):
    m = BITS_LINE.match(line)
    signed = m.group("kind") == "signed"
    codes = np.array(ast.literal_eval(m.group("codes")), dtype=np.int32)
    s = bits.group_step(codes, signed)
    assert int(s) == int(m.group("s"))
    assert bits.extract4_step(codes, s, signed).tolist() == ast.literal_eval(m.group("q4"))
    assert bits.effective_codes_step(codes, s, signed).tolist() == ast.literal_eval(m.group("eff"))


def test_accumulation_example_matches_both_oracle_forms():
    m = ACC_LINE.search(design_text())
    x = np.array([ast.literal_eval(m.group("x"))], dtype=np.int32)  # [1, 4]: one row, one group of 4
    w4 = np.array([ast.literal_eval(m.group("w4"))], dtype=np.int32)
    step_w, group = int(m.group("sw")), x.shape[1]
    s_a = bits.group_step(x, signed=True)  # [1]
    assert int(s_a[0]) == int(m.group("sa"))
    x4 = bits.extract4_step(x, s_a[:, None])
    assert x4[0].tolist() == ast.literal_eval(m.group("x4"))
    assert int((x4 * w4).sum()) == int(m.group("dot"))
    w8 = np.zeros_like(w4)  # unused: the whole slice is 4-bit (n4 = its width)
    grouped = reference.mixed_gemm_int32_grouped(x, s_a[:, None], w8, w4, np.array([step_w]), n4=group,
                                                 group_size=group)
    effective = reference.mixed_gemm_int32(bits.effective_codes_step(x, s_a[:, None]), w4 * step_w)
    assert int(grouped[0, 0]) == int(effective[0, 0]) == int(m.group("acc"))
