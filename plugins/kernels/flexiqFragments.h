/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * Fragment index mappings of mma.sync.aligned.m16n8k32 for .s8/.u8 and .s4/.u4 operands and of
 * m16n8k64 for .s4/.u4, from the PTX ISA ("Matrix Fragments for mma.m16n8k32 / m16n8k64", 9.7.14.5). Each function maps (lane,
 * element index i) to the (row, col) of the element a thread holds; for B the row is the k index.
 * The kernels derive every load address from these functions, and tests/unit/kernels checks them
 * against tables transcribed from the ISA text.
 */
#ifndef FLEXIQ_FRAGMENTS_H
#define FLEXIQ_FRAGMENTS_H

#include "flexiqContract.h" // FLEXIQ_HD

#include <cstdint>

namespace flexiq
{

FLEXIQ_HD int32_t groupId(int32_t lane)
{
    return lane >> 2;
}

FLEXIQ_HD int32_t threadInGroup(int32_t lane)
{
    return lane & 3;
}

// ---- .s8 / .u8: A = 4 x .b32 (a0..a15), B = 2 x .b32 (b0..b7) ------------------------------------

//! A[16 x 32] s8: row of a_i (i in 0..15).
FLEXIQ_HD int32_t fragARowS8(int32_t lane, int32_t i)
{
    return groupId(lane) + (((i >> 2) & 1) ? 8 : 0); // 0<=i<4 || 8<=i<12 -> groupID, else +8
}

//! A[16 x 32] s8: column (k) of a_i.
FLEXIQ_HD int32_t fragAColS8(int32_t lane, int32_t i)
{
    return threadInGroup(lane) * 4 + (i & 3) + (i >= 8 ? 16 : 0);
}

//! B[32 x 8] s8: row (k) of b_i (i in 0..7).
FLEXIQ_HD int32_t fragBRowS8(int32_t lane, int32_t i)
{
    return threadInGroup(lane) * 4 + (i & 3) + (i >= 4 ? 16 : 0);
}

//! B[32 x 8] s8: column (n) of b_i.
FLEXIQ_HD int32_t fragBColS8(int32_t lane, int32_t /*i*/)
{
    return groupId(lane);
}

// ---- .s4 / .u4: A = 2 x .b32 (a0..a15, 8 per register), B = 1 x .b32 (b0..b7) --------------------

//! A[16 x 32] s4: row of a_i (i in 0..15).
FLEXIQ_HD int32_t fragARowS4(int32_t lane, int32_t i)
{
    return groupId(lane) + (i >= 8 ? 8 : 0);
}

//! A[16 x 32] s4: column (k) of a_i.
FLEXIQ_HD int32_t fragAColS4(int32_t lane, int32_t i)
{
    return threadInGroup(lane) * 8 + (i & 7);
}

//! B[32 x 8] s4: row (k) of b_i (i in 0..7).
FLEXIQ_HD int32_t fragBRowS4(int32_t lane, int32_t i)
{
    return threadInGroup(lane) * 8 + i;
}

//! B[32 x 8] s4: column (n) of b_i.
FLEXIQ_HD int32_t fragBColS4(int32_t lane, int32_t /*i*/)
{
    return groupId(lane);
}

// ---- m16n8k64 .s4/.u4 (G = 64: one atom per group): A = 4 x .b32 (a0..a31), B = 2 x .b32 (b0..b15) ----
// PTX ISA 9.7.14.5 "Matrix Fragments for mma.m16n8k64".

//! A[16 x 64] s4: row of a_i (i in 0..31).
FLEXIQ_HD int32_t fragARowS4K64(int32_t lane, int32_t i)
{
    return groupId(lane) + (((i >> 3) & 1) ? 8 : 0); // 0<=i<8 || 16<=i<24 -> groupID, else +8
}

//! A[16 x 64] s4: column (k) of a_i.
FLEXIQ_HD int32_t fragAColS4K64(int32_t lane, int32_t i)
{
    return threadInGroup(lane) * 8 + (i & 7) + (i >= 16 ? 32 : 0);
}

//! B[64 x 8] s4: row (k) of b_i (i in 0..15).
FLEXIQ_HD int32_t fragBRowS4K64(int32_t lane, int32_t i)
{
    return threadInGroup(lane) * 8 + (i & 7) + (i >= 8 ? 32 : 0);
}

//! B[64 x 8] s4: column (n) of b_i.
FLEXIQ_HD int32_t fragBColS4K64(int32_t lane, int32_t /*i*/)
{
    return groupId(lane);
}

// ---- accumulators C/D[16 x 8] s32: 4 x .s32 (c0..c3), shared by both operand types ---------------

FLEXIQ_HD int32_t fragCRow(int32_t lane, int32_t i)
{
    return groupId(lane) + (i >= 2 ? 8 : 0);
}

FLEXIQ_HD int32_t fragCCol(int32_t lane, int32_t i)
{
    return threadInGroup(lane) * 2 + (i & 1);
}

//! Which mapping flexiqFragmentIndex() evaluates (C ABI for the host tests).
enum class FragmentKind : int32_t
{
    kA_S8 = 0,
    kB_S8 = 1,
    kA_S4 = 2,
    kB_S4 = 3,
    kC_S32 = 4,
    kA_S4_K64 = 5,
    kB_S4_K64 = 6,
};

//! (row, col) of element i held by `lane` for a fragment kind; false for an unknown kind.
FLEXIQ_HD bool fragmentIndex(int32_t kind, int32_t lane, int32_t i, int32_t* row, int32_t* col)
{
    switch (static_cast<FragmentKind>(kind))
    {
    case FragmentKind::kA_S8: *row = fragARowS8(lane, i); *col = fragAColS8(lane, i); return true;
    case FragmentKind::kB_S8: *row = fragBRowS8(lane, i); *col = fragBColS8(lane, i); return true;
    case FragmentKind::kA_S4: *row = fragARowS4(lane, i); *col = fragAColS4(lane, i); return true;
    case FragmentKind::kB_S4: *row = fragBRowS4(lane, i); *col = fragBColS4(lane, i); return true;
    case FragmentKind::kC_S32: *row = fragCRow(lane, i); *col = fragCCol(lane, i); return true;
    case FragmentKind::kA_S4_K64: *row = fragARowS4K64(lane, i); *col = fragAColS4K64(lane, i); return true;
    case FragmentKind::kB_S4_K64: *row = fragBRowS4K64(lane, i); *col = fragBColS4K64(lane, i); return true;
    }
    return false;
}

} // namespace flexiq

#endif // FLEXIQ_FRAGMENTS_H
