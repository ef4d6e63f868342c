/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * The byte layout of a workspace edge (docs/design.md §2.8, "INT8 codes between layers"): the image of a
 * reader's input pass that its only producer writes in its epilogue, so the reader runs no input pass.
 * One definition for the producer (kernels and CPU reference), the reader, the plugin's tensor shape
 * and the tests.
 *
 * For `rows` input pixels of the reader (conv: B * H * W; gemm: M), its C_pad and G, the tensor holds
 * four planes, one after the other (plane-major, no gaps):
 *   codes8  int8  [rows, C_pad]     8-bit codes of the groups the GEMM reads as int8
 *   codes4  int8  [rows, C_pad / 2] 4-bit codes extract4Step(q, s) of the 4-bit prefix (int4 format only),
 *                                   low nibble first
 *   factorA int32 [rows, C_pad / G] the activation step s (1..16, docs/design.md §2.5)
 *   shiftA  int8  [rows, C_pad / G] s as well (the name predates integer steps)
 * so its size is rows * edgeBytesPerRow(C_pad, G) and TensorRT sees it as [rows dims..., bytes per row].
 * Every plane offset is a multiple of 16 bytes times rows' factor (C_pad is a multiple of 32): with a
 * 256-byte aligned base, codes8 / codes4 / factorA rows are 16-byte aligned for cp.async.
 * Which bytes are written depends on the reader's n4 (read on the device when the producer runs) and
 * the backends' format:
 *   int4 format (int4 backends): codes8 of the 8-bit groups, codes4 of the 4-bit groups;
 *   int8 format (int8 and reference backends): codes8 of every group, effective codes
 *                                              effectiveCodeStep(q, s) in the 4-bit prefix;
 * shiftA and factorA of every group in both. Other bytes are left as they are (no reader reads them).
 */
#ifndef FLEXIQ_EDGE_IMAGE_H
#define FLEXIQ_EDGE_IMAGE_H

#include "flexiqContract.h" // FLEXIQ_HD

#include <cstdint>

namespace flexiq
{

//! Byte offsets of the planes of a workspace edge of `rows` reader pixels.
struct EdgeImageLayout
{
    int64_t codes8, codes4, factorA, shiftA, total;
};

//! Bytes per reader pixel: C_pad + C_pad / 2 + 4 * G_count + G_count.
FLEXIQ_HD int64_t edgeBytesPerRow(int32_t paddedChannels, int32_t groupSize)
{
    int64_t const groups = paddedChannels / groupSize;
    return static_cast<int64_t>(paddedChannels) + paddedChannels / 2 + 5 * groups;
}

FLEXIQ_HD EdgeImageLayout edgeImageLayout(int64_t rows, int32_t paddedChannels, int32_t groupSize)
{
    int64_t const groups = paddedChannels / groupSize;
    EdgeImageLayout l{};
    l.codes8 = 0;
    l.codes4 = rows * paddedChannels;
    l.factorA = l.codes4 + rows * (paddedChannels / 2);
    l.shiftA = l.factorA + rows * groups * 4;
    l.total = l.shiftA + rows * groups;
    return l;
}

//! The reader's C_pad of a producer with `outChannels` outputs: N rounded up to the reader's G.
FLEXIQ_HD int32_t edgePaddedChannels(int32_t outChannels, int32_t readerGroupSize)
{
    return (outChannels + readerGroupSize - 1) / readerGroupSize * readerGroupSize;
}

} // namespace flexiq

#endif // FLEXIQ_EDGE_IMAGE_H
