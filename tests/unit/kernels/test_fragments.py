"""Fragment index mappings of plugins/kernels/flexiqFragments.h against the PTX ISA.

Source: NVIDIA PTX ISA, section 9.7.14.5 "Matrix Fragments for mma.m16n8k32" (Figures 87/88 and
the B/C figures that follow; https://docs.nvidia.com/cuda/parallel-thread-execution/). The ISA
gives, with groupID = %laneid >> 2 and threadID_in_group = %laneid % 4:

  A .s4/.u4 (a0..a15, two .b32):   row = groupID for i < 8, groupID + 8 otherwise
                                   col = threadID_in_group * 8 + (i & 0x7)
  A .s8/.u8 (a0..a15, four .b32):  row = groupID for 0 <= i < 4 || 8 <= i < 12, groupID + 8 otherwise
                                   col = threadID_in_group * 4 + (i & 0x3)        for i < 8
                                         threadID_in_group * 4 + (i & 0x3) + 16   for i >= 8
  B .s4/.u4 (b0..b7, one .b32):    row = threadID_in_group * 8 + (i & 0x7), col = groupID
  B .s8/.u8 (b0..b7, two .b32):    row = threadID_in_group * 4 + (i & 0x3)        for i < 4
                                         threadID_in_group * 4 + (i & 0x3) + 16   for i >= 4
                                   col = groupID
  m16n8k64 (section "Matrix Fragments for mma.m16n8k64", Figures 93-95):
  A .s4/.u4 (a0..a31, four .b32):  row = groupID for 0 <= i < 8 || 16 <= i < 24, groupID + 8 otherwise
                                   col = threadID_in_group * 8 + (i & 0x7)        for i < 16
                                         threadID_in_group * 8 + (i & 0x7) + 32   for i >= 16
  B .s4/.u4 (b0..b15, two .b32):   row = threadID_in_group * 8 + (i & 0x7)        for i < 8
                                         threadID_in_group * 8 + (i & 0x7) + 32   for i >= 8
                                   col = groupID
  C/D .s32 (c0..c3):               row = groupID for i < 2, groupID + 8 otherwise
                                   col = threadID_in_group * 2 + (i & 0x1)

The tables below are those formulas written out, plus literal cells read off the figures.
"""

from __future__ import annotations

import ctypes

import pytest

KINDS = {  # kind id -> (elements per lane, matrix rows, matrix cols)
    0: (16, 16, 32),  # A s8
    1: (8, 32, 8),  # B s8
    2: (16, 16, 32),  # A s4
    3: (8, 32, 8),  # B s4
    4: (4, 16, 8),  # C s32
    5: (32, 16, 64),  # A s4, m16n8k64
    6: (16, 64, 8),  # B s4, m16n8k64
}


def isa_table(kind: int, lane: int, i: int) -> tuple[int, int]:
    """The ISA formula for (row, col) of element i held by lane."""
    gid, tig = lane >> 2, lane % 4
    if kind == 0:
        return (gid if (0 <= i < 4 or 8 <= i < 12) else gid + 8), tig * 4 + (i & 3) + (16 if i >= 8 else 0)
    if kind == 1:
        return tig * 4 + (i & 3) + (16 if i >= 4 else 0), gid
    if kind == 2:
        return (gid if i < 8 else gid + 8), tig * 8 + (i & 7)
    if kind == 3:
        return tig * 8 + (i & 7), gid
    if kind == 5:
        return (gid if (0 <= i < 8 or 16 <= i < 24) else gid + 8), tig * 8 + (i & 7) + (32 if i >= 16 else 0)
    if kind == 6:
        return tig * 8 + (i & 7) + (32 if i >= 8 else 0), gid
    return (gid if i < 2 else gid + 8), tig * 2 + (i & 1)


# Literal cells read off the ISA figures: (kind, lane, element) -> (row, col).
FIGURE_CELLS = {
    (0, 0, 0): (0, 0), (0, 0, 4): (8, 0), (0, 0, 8): (0, 16), (0, 0, 15): (8, 19), (0, 31, 3): (7, 15),
    (0, 5, 12): (9, 20),
    (1, 0, 0): (0, 0), (1, 3, 3): (15, 0), (1, 3, 4): (28, 0), (1, 31, 7): (31, 7),
    (2, 0, 7): (0, 7), (2, 1, 0): (0, 8), (2, 6, 9): (9, 17), (2, 31, 15): (15, 31),
    (3, 0, 0): (0, 0), (3, 1, 0): (8, 0), (3, 30, 5): (21, 7), (3, 31, 7): (31, 7),
    (5, 0, 0): (0, 0), (5, 0, 8): (8, 0), (5, 0, 16): (0, 32), (5, 0, 31): (8, 39), (5, 31, 23): (7, 63),
    (6, 0, 0): (0, 0), (6, 0, 8): (32, 0), (6, 31, 15): (63, 7), (6, 2, 3): (19, 0),
    (4, 0, 0): (0, 0), (4, 0, 3): (8, 1), (4, 29, 1): (7, 3), (4, 31, 3): (15, 7),
}


def _cpp(cpu_ref, kind: int, lane: int, i: int) -> tuple[int, int]:
    row, col = ctypes.c_int32(), ctypes.c_int32()
    assert cpu_ref.flexiqFragmentIndex(kind, lane, i, ctypes.byref(row), ctypes.byref(col)) == 0
    return row.value, col.value


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_fragment_mapping_matches_isa_formula_and_covers_the_matrix_once(cpu_ref, kind):
    per_lane, rows, cols = KINDS[kind]
    seen = set()
    for lane in range(32):
        for i in range(per_lane):
            got = _cpp(cpu_ref, kind, lane, i)
            assert got == isa_table(kind, lane, i), (kind, lane, i)
            seen.add(got)
    assert seen == {(r, c) for r in range(rows) for c in range(cols)}


@pytest.mark.parametrize("cell", sorted(FIGURE_CELLS))
def test_fragment_mapping_matches_isa_figure_cells(cpu_ref, cell):
    assert _cpp(cpu_ref, *cell) == FIGURE_CELLS[cell]


def test_register_elements_are_contiguous_in_k(cpu_ref):
    """The kernels load each .b32 with one 32-bit access: its elements must be consecutive columns (A) / rows (B)."""
    for lane in range(32):
        for reg in range(4):  # A s8: 4 elements per register
            cells = [_cpp(cpu_ref, 0, lane, 4 * reg + j) for j in range(4)]
            assert {r for r, _ in cells} == {cells[0][0]} and [c for _, c in cells] == list(range(cells[0][1], cells[0][1] + 4))
        for reg in range(2):  # A s4: 8 nibbles per register
            cells = [_cpp(cpu_ref, 2, lane, 8 * reg + j) for j in range(8)]
            assert [c for _, c in cells] == list(range(cells[0][1], cells[0][1] + 8))
        for reg in range(2):  # B s8
            ks = [_cpp(cpu_ref, 1, lane, 4 * reg + j)[0] for j in range(4)]
            assert ks == list(range(ks[0], ks[0] + 4))
        ks = [_cpp(cpu_ref, 3, lane, j)[0] for j in range(8)]  # B s4
        assert ks == list(range(ks[0], ks[0] + 8))
        for reg in range(4):  # A s4 k64
            cells = [_cpp(cpu_ref, 5, lane, 8 * reg + j) for j in range(8)]
            assert [c for _, c in cells] == list(range(cells[0][1], cells[0][1] + 8))
        for reg in range(2):  # B s4 k64
            ks = [_cpp(cpu_ref, 6, lane, 8 * reg + j)[0] for j in range(8)]
            assert ks == list(range(ks[0], ks[0] + 8))


def test_unknown_fragment_kind_is_rejected(cpu_ref):
    row, col = ctypes.c_int32(), ctypes.c_int32()
    assert cpu_ref.flexiqFragmentIndex(9, 0, 0, ctypes.byref(row), ctypes.byref(col)) == 1
