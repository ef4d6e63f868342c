/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * Host-side geometry and argument checks (see flexiqShape.h).
 */
#include "flexiqShape.h"

#include <cmath>
#include <cstdint>
#include <cstdio>

namespace flexiq
{
namespace
{

bool fail(char* why, size_t whyLen, char const* message, long long value)
{
    if (why != nullptr && whyLen > 0)
    {
        std::snprintf(why, whyLen, "%s (got %lld)", message, value);
    }
    return false;
}

} // namespace

ConvGeometry layerGeometry(FlexiqLayerArgs const& a)
{
    if (!a.isConv)
    {
        return ConvGeometry{1, 1, 1, 1, 0, 0, 0, 0, 1, 1};
    }
    return ConvGeometry{a.kernelR, a.kernelS, a.strideH, a.strideW, a.padTop, a.padLeft, a.padBottom, a.padRight,
        a.dilationH, a.dilationW};
}

void outputSize(ConvGeometry const& g, int32_t height, int32_t width, int32_t* outH, int32_t* outW)
{
    *outH = (height + g.padTop + g.padBottom - g.dilationH * (g.r - 1) - 1) / g.strideH + 1;
    *outW = (width + g.padLeft + g.padRight - g.dilationW * (g.s - 1) - 1) / g.strideW + 1;
}

int64_t reductionLength(FlexiqLayerArgs const& a)
{
    ConvGeometry const g = layerGeometry(a);
    return static_cast<int64_t>(g.r) * g.s * a.paddedChannels;
}

void makeEffectiveWeights(FlexiqLayerArgs const& a, int8_t* out)
{
    int64_t const kLen = reductionLength(a);
    for (int64_t n = 0; n < a.outChannels; ++n)
    {
        int8_t const* row4 = a.weightInt4 + n * (kLen / 2);
        for (int64_t k = 0; k < kLen; ++k)
        {
            int32_t const g = static_cast<int32_t>(k % a.paddedChannels) / a.groupSize;
            int32_t const w = effectiveWeight(unpackNibble(row4, k, true), a.weightStep[g]);
            out[n * kLen + k] = static_cast<int8_t>(w);
        }
    }
}

bool checkLayerArgs(FlexiqLayerArgs const& a, char* why, size_t n)
{
    if (a.groupSize != 32 && a.groupSize != 64)
        return fail(why, n, "group_size must be 32 or 64", a.groupSize);
    if (a.paddedChannels <= 0 || a.paddedChannels % a.groupSize != 0)
        return fail(why, n, "padded channels must be a positive multiple of group_size", a.paddedChannels);
    if (a.inChannels <= 0 || a.inChannels > a.paddedChannels)
        return fail(why, n, "in_channels must be in [1, C_pad]", a.inChannels);
    if (a.outChannels <= 0)
        return fail(why, n, "out_channels must be positive", a.outChannels);
    if (!(a.actScale > 0.0f))
        return fail(why, n, "act_scale must be > 0", 0);
    if (a.actSigned != 0 && a.actSigned != 1)
        return fail(why, n, "act_signed must be 0 or 1", a.actSigned);
    if (a.actShiftMode != 0 && a.actShiftMode != 1)
        return fail(why, n, "act_shift_mode must be 0 or 1", a.actShiftMode);
    if (a.activation < 0 || a.activation > 9)
        return fail(why, n, "activation out of range", a.activation);
    if (a.layerIndex < 0)
        return fail(why, n, "layer_index must be >= 0", a.layerIndex);
    if (a.outputSigned != 0 && a.outputSigned != 1)
        return fail(why, n, "output_signed must be 0 or 1", a.outputSigned);
    if (!(std::isfinite(a.outputScale) && a.outputScale >= 0.0f))
        return fail(why, n, "output_scale must be finite and >= 0 (> 0 for an INT8 output)", 0);
    ConvGeometry const g = layerGeometry(a);
    if (g.r < 1 || g.s < 1)
        return fail(why, n, "kernel_shape must be >= 1", g.r < 1 ? g.r : g.s);
    if (g.strideH < 1 || g.strideW < 1)
        return fail(why, n, "strides must be >= 1", g.strideH < 1 ? g.strideH : g.strideW);
    if (g.dilationH < 1 || g.dilationW < 1)
        return fail(why, n, "dilations must be >= 1", g.dilationH < 1 ? g.dilationH : g.dilationW);
    if (g.padTop < 0 || g.padLeft < 0 || g.padBottom < 0 || g.padRight < 0)
        return fail(why, n, "pads must be >= 0", 0);
    int64_t const k = reductionLength(a);
    int64_t const kMax = a.actSigned ? kMaxKSigned : kMaxKUnsigned;
    if (k > kMax)
        return fail(why, n, "K = R*S*C_pad exceeds the int32 accumulator limit", k);
    if (a.permutation == nullptr || a.weightInt8 == nullptr || a.weightInt4 == nullptr || a.weightStep == nullptr
        || a.outScale == nullptr || a.bias == nullptr || (a.actShiftMode == 1 && a.actStaticShift == nullptr))
        return fail(why, n, "a layer pointer is null", 0);
    return true;
}

bool checkProblem(FlexiqLayerArgs const& a, FlexiqProblem const& p, char* why, size_t n)
{
    if (p.batch <= 0 || p.height <= 0 || p.width <= 0)
        return fail(why, n, "batch, height and width must be positive", p.batch);
    if (!a.isConv && (p.height != 1 || p.width != 1))
        return fail(why, n, "a gemm problem has height = width = 1", p.height);
    if (p.dataType < kFLEXIQ_FP32 || p.dataType > kFLEXIQ_INT8_WORKSPACE)
        return fail(why, n, "input data type must be FP32 (0), FP16 (1), INT8 (2) or a workspace edge (3)", p.dataType);
    if (p.outputType < kFLEXIQ_FP32 || p.outputType > kFLEXIQ_INT8_WORKSPACE)
        return fail(why, n, "output data type must be FP32 (0), FP16 (1), INT8 (2) or a workspace edge (3)",
            p.outputType);
    if ((p.outputType == kFLEXIQ_INT8 || p.outputType == kFLEXIQ_INT8_WORKSPACE) && !(a.outputScale > 0.0f))
        return fail(why, n, "an INT8 output needs output_scale > 0", 0);
    if (p.outputType == kFLEXIQ_INT8_WORKSPACE)
    {
        if (a.readerGroupSize != 32 && a.readerGroupSize != 64)
            return fail(why, n, "a workspace-edge output needs reader_group_size 32 or 64", a.readerGroupSize);
        if (a.readerShiftMode != 0 && a.readerShiftMode != 1)
            return fail(why, n, "reader_act_shift_mode must be 0 or 1", a.readerShiftMode);
        if (a.readerLayerIndex < 0)
            return fail(why, n, "reader_layer_index must be >= 0", a.readerLayerIndex);
        if (a.readerShiftMode == 1 && a.readerStaticShift == nullptr)
            return fail(why, n, "a workspace-edge output with static reader shifts needs reader_act_static_shift", 0);
    }
    int32_t outH = 0;
    int32_t outW = 0;
    outputSize(layerGeometry(a), p.height, p.width, &outH, &outW);
    if (outH <= 0 || outW <= 0)
        return fail(why, n, "input is smaller than the kernel footprint", outH);
    if (p.input == nullptr || p.output == nullptr)
        return fail(why, n, "input/output pointer is null", 0);
    // The pipelined kernels index (input pixel, channel group) pairs in int32 (flexiqPipelinedGemm.cuh);
    // the limit is 2^31 / G x the padded channels bytes of codes, far past any device's memory.
    int64_t const pixelGroups
        = static_cast<int64_t>(p.batch) * p.height * p.width * (a.paddedChannels / a.groupSize);
    if (pixelGroups > INT32_MAX)
        return fail(why, n, "input pixels x channel groups must fit int32", pixelGroups);
    // A workspace edge's planes are read and written in 16-byte chunks (flexiqEdgeImage.h).
    if ((p.dataType == kFLEXIQ_INT8_WORKSPACE && (reinterpret_cast<uintptr_t>(p.input) & 15u) != 0)
        || (p.outputType == kFLEXIQ_INT8_WORKSPACE && (reinterpret_cast<uintptr_t>(p.output) & 15u) != 0))
        return fail(why, n, "a workspace-edge tensor must be 16-byte aligned", 0);
    return true;
}

} // namespace flexiq
