/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * C ABI of the C++ CPU reference (libflexiq_cpu_reference.so), for ctypes tests: a whole-layer
 * forward plus the contract primitives one by one, so tests can sweep them exhaustively.
 */
#include "flexiqContract.h"
#include "flexiqCpuReference.h"
#include "flexiqFragments.h"
#include "flexiqShape.h"

#include <vector>

#define FLEXIQ_CAPI extern "C" __attribute__((visibility("default")))

//! Whole layer: NCHW float input -> int32 accumulators and float output, both NCHW [B, N, P, Q].
//! `n4` is the raw runtime value (clamped here as every backend does). Returns 0 on success, else
//! 1 with a reason in `why`.
FLEXIQ_CAPI int32_t flexiqCpuForward(FlexiqLayerArgs const* args, int32_t batch, int32_t height, int32_t width,
    float const* input, int32_t n4, int32_t* acc, float* output, char* why, size_t whyLen)
{
    FlexiqProblem problem{batch, height, width, 0, input, output, nullptr, acc};
    if (!flexiq::checkLayerArgs(*args, why, whyLen) || !flexiq::checkProblem(*args, problem, why, whyLen))
        return 1;
    int64_t const rows = static_cast<int64_t>(batch) * height * width;
    std::vector<int32_t> codes(static_cast<size_t>(rows * args->paddedChannels));
    std::vector<int32_t> shifts(static_cast<size_t>(rows * (args->paddedChannels / args->groupSize)));
    flexiq::cpuQuantizeInput(*args, batch, height, width, input, codes.data(), shifts.data());
    int32_t const n4c = flexiq::clampN4(n4, args->paddedChannels, args->groupSize);
    flexiq::cpuMixedAccumulate(*args, batch, height, width, codes.data(), shifts.data(), n4c, acc);
    int32_t outH = 0;
    int32_t outW = 0;
    flexiq::outputSize(flexiq::layerGeometry(*args), height, width, &outH, &outW);
    flexiq::cpuEpilogue(*args, batch, outH * outW, n4c, acc, output);
    return 0;
}

//! Output spatial size of a layer for an input of height x width.
FLEXIQ_CAPI void flexiqCpuOutputHW(FlexiqLayerArgs const* args, int32_t height, int32_t width, int32_t* outH, int32_t* outW)
{
    flexiq::outputSize(flexiq::layerGeometry(*args), height, width, outH, outW);
}

FLEXIQ_CAPI int32_t flexiqCpuQuantizeActivation(float x, float actScale, int32_t isSigned)
{
    return flexiq::quantizeActivation(x, actScale, isSigned != 0);
}

FLEXIQ_CAPI int32_t flexiqCpuMagnitudeBits(int32_t code, int32_t isSigned)
{
    return flexiq::magnitudeBits(code, isSigned != 0);
}

FLEXIQ_CAPI int32_t flexiqCpuShiftFromMagnitude(int32_t magOr, int32_t isSigned)
{
    return flexiq::shiftFromMagnitude(magOr, isSigned != 0);
}

FLEXIQ_CAPI int32_t flexiqCpuExtract4(int32_t code, int32_t shift, int32_t isSigned)
{
    return flexiq::extract4(code, shift, isSigned != 0);
}

FLEXIQ_CAPI int32_t flexiqCpuEffectiveCode(int32_t code, int32_t shift, int32_t isSigned)
{
    return flexiq::effectiveCode(code, shift, isSigned != 0);
}

FLEXIQ_CAPI int32_t flexiqCpuClampN4(int32_t n4, int32_t paddedChannels, int32_t groupSize)
{
    return flexiq::clampN4(n4, paddedChannels, groupSize);
}

FLEXIQ_CAPI int32_t flexiqCpuUnpackNibble(int8_t const* packed, int64_t index, int32_t isSigned)
{
    return flexiq::unpackNibble(packed, index, isSigned != 0);
}

FLEXIQ_CAPI float flexiqCpuApplyActivation(float y, int32_t activation, float alpha, float beta)
{
    return flexiq::applyActivation(y, activation, alpha, beta);
}

//! (row, col) of element i of `lane` for a fragment kind (plugins/kernels/flexiqFragments.h);
//! returns 0 on success, 1 for an unknown kind.
FLEXIQ_CAPI int32_t flexiqFragmentIndex(int32_t kind, int32_t lane, int32_t i, int32_t* row, int32_t* col)
{
    return flexiq::fragmentIndex(kind, lane, i, row, col) ? 0 : 1;
}
