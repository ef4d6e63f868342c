/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * C ABI of the C++ CPU reference (libflexiq_cpu_reference.so), for ctypes tests: a whole-layer
 * forward plus the contract primitives one by one, so tests can sweep them exhaustively.
 */
#include "flexiqContract.h"
#include "flexiqCpuReference.h"
#include "flexiqEdgeImage.h"
#include "flexiqFragments.h"
#include "flexiqShape.h"


#define FLEXIQ_CAPI extern "C" __attribute__((visibility("default")))

//! Whole layer: NCHW input -> int32 accumulators and output, both NCHW [B, N, P, Q]. `inputType` /
//! `outputType`: kFLEXIQ_FP32 (float) or kFLEXIQ_INT8 (activation codes: the layer's own on input,
//! the consumers' (args->outputScale, args->outputSigned) on output). `n4` is the raw runtime value
//! (clamped here as every backend does). Returns 0 on success, else 1 with a reason in `why`.
FLEXIQ_CAPI int32_t flexiqCpuForwardIo(FlexiqLayerArgs const* args, int32_t batch, int32_t height, int32_t width,
    int32_t inputType, void const* input, int32_t n4, int32_t* acc, int32_t outputType, void* output, char* why,
    size_t whyLen)
{
    FlexiqProblem const problem{batch, height, width, inputType, outputType, input, output, nullptr, acc};
    return flexiq::cpuForward(*args, problem, n4, why, whyLen) ? 0 : 1;
}

//! flexiqCpuForwardIo where input and output may also be workspace edges (kFLEXIQ_INT8_WORKSPACE,
//! flexiqEdgeImage.h): `readerN4` is the reader's raw n4 the producer writes the image for, `int4Format`
//! 1 for the int4 backends' format, 0 for the int8 / reference format (both sides of an edge use one).
FLEXIQ_CAPI int32_t flexiqCpuForwardEdge(FlexiqLayerArgs const* args, int32_t batch, int32_t height, int32_t width,
    int32_t inputType, void const* input, int32_t n4, int32_t* acc, int32_t outputType, void* output,
    int32_t readerN4, int32_t int4Format, char* why, size_t whyLen)
{
    FlexiqProblem const problem{batch, height, width, inputType, outputType, input, output, nullptr, acc};
    return flexiq::cpuForwardEdge(*args, problem, n4, flexiq::CpuEdgeOptions{readerN4, int4Format}, why, whyLen) ? 0
                                                                                                             : 1;
}

//! Bytes per reader pixel of a workspace edge (flexiqEdgeImage.h).
FLEXIQ_CAPI int64_t flexiqCpuEdgeBytesPerRow(int32_t paddedChannels, int32_t groupSize)
{
    return flexiq::edgeBytesPerRow(paddedChannels, groupSize);
}

//! flexiqCpuForwardIo with FP32 input and output (the original entry point).
FLEXIQ_CAPI int32_t flexiqCpuForward(FlexiqLayerArgs const* args, int32_t batch, int32_t height, int32_t width,
    float const* input, int32_t n4, int32_t* acc, float* output, char* why, size_t whyLen)
{
    return flexiqCpuForwardIo(args, batch, height, width, kFLEXIQ_FP32, input, n4, acc, kFLEXIQ_FP32, output, why,
        whyLen);
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

FLEXIQ_CAPI int32_t flexiqCpuActivationCodeFromInt8(int32_t stored, int32_t isSigned)
{
    return flexiq::activationCodeFromInt8(static_cast<int8_t>(stored), isSigned != 0);
}

FLEXIQ_CAPI int32_t flexiqCpuActivationCodeBits(float y, float outputScale, int32_t isSigned)
{
    return flexiq::activationCodeBits(y, outputScale, isSigned != 0);
}

FLEXIQ_CAPI int32_t flexiqCpuMagnitudeBits(int32_t code, int32_t isSigned)
{
    return flexiq::magnitudeBits(code, isSigned != 0);
}

//! Dynamic activation step s in 1..16 from a group's maximum of magnitudeBits.
FLEXIQ_CAPI int32_t flexiqCpuActStepFromMagnitude(int32_t magMax, int32_t isSigned)
{
    return flexiq::actStepFromMagnitude(magMax, isSigned != 0);
}

//! 4-bit activation code of an 8-bit code at step s.
FLEXIQ_CAPI int32_t flexiqCpuExtract4Step(int32_t code, int32_t step, int32_t isSigned)
{
    return flexiq::extract4Step(code, step, isSigned != 0);
}

//! The value that 4-bit code stands for: extract4Step(q, s) * s.
FLEXIQ_CAPI int32_t flexiqCpuEffectiveCodeStep(int32_t code, int32_t step, int32_t isSigned)
{
    return flexiq::effectiveCodeStep(code, step, isSigned != 0);
}

FLEXIQ_CAPI int32_t flexiqCpuClampN4(int32_t n4, int32_t paddedChannels, int32_t groupSize)
{
    return flexiq::clampN4(n4, paddedChannels, groupSize);
}

FLEXIQ_CAPI int32_t flexiqCpuUnpackNibble(int8_t const* packed, int64_t index, int32_t isSigned)
{
    return flexiq::unpackNibble(packed, index, isSigned != 0);
}

//! flexiq::makeEffectiveWeights (the int8 backends' [N, K] effective weights, what DeviceWeights uploads) of
//! the host arrays in `args` into `out` (N * K bytes); returns 0, or 1 with invalid args.
FLEXIQ_CAPI int32_t flexiqCpuEffectiveWeights(FlexiqLayerArgs const* args, int8_t* out)
{
    if (args == nullptr || out == nullptr || !flexiq::checkLayerArgs(*args, nullptr, 0))
        return 1;
    flexiq::makeEffectiveWeights(*args, out);
    return 0;
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
