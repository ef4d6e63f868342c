/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * C++ CPU reference of a FlexiQ layer (see flexiqCpuReference.h). Clarity over speed.
 */
#include "flexiqCpuReference.h"

#include "flexiqContract.h"
#include "flexiqEdgeImage.h"
#include "flexiqShape.h"

#include <cstdio>
#include <cstring>
#include <vector>

namespace flexiq
{
namespace
{

//! The activation step s of one (row, group) of G codes q (docs/design.md §2.5): the static table's
//! 1 << p, or the dynamic rule's from the group's maximum of magnitudeBits.
int32_t groupStep(int32_t const* q, int32_t groupSize, bool isSigned, int32_t shiftMode, int8_t const* staticShift,
    int32_t g)
{
    if (shiftMode == static_cast<int32_t>(ShiftMode::kSTATIC))
        return actStepFromShift(staticShift[g]);
    int32_t magMax = 0;
    for (int32_t i = 0; i < groupSize; ++i)
    {
        int32_t const m = magnitudeBits(q[i], isSigned);
        magMax = m > magMax ? m : magMax;
    }
    return actStepFromMagnitude(magMax, isSigned);
}

} // namespace

void cpuQuantizeInput(FlexiqLayerArgs const& a, int32_t batch, int32_t height, int32_t width, int32_t inputType,
    void const* input, int32_t* codes, int32_t* steps)
{
    bool const int8Input = inputType == kFLEXIQ_INT8;
    int32_t const cPad = a.paddedChannels;
    int32_t const groups = cPad / a.groupSize;
    bool const isSigned = a.actSigned != 0;
    int64_t const pixels = static_cast<int64_t>(height) * width;
    for (int32_t b = 0; b < batch; ++b)
    {
        for (int64_t hw = 0; hw < pixels; ++hw)
        {
            int64_t const row = b * pixels + hw;
            for (int32_t c = 0; c < cPad; ++c)
            {
                int32_t const src = a.permutation[c];
                // Zero padding: channels >= C_in hold 0, whose code is 0.
                int64_t const i = (static_cast<int64_t>(b) * a.inChannels + src) * pixels + hw;
                int32_t code = 0;
                if (src < a.inChannels)
                    code = int8Input ? activationCodeFromInt8(static_cast<int8_t const*>(input)[i], isSigned)
                                     : quantizeActivation(static_cast<float const*>(input)[i], a.actScale, isSigned);
                codes[row * cPad + c] = code;
            }
            for (int32_t g = 0; g < groups; ++g)
            {
                steps[row * groups + g] = groupStep(codes + row * cPad + g * a.groupSize, a.groupSize, isSigned,
                    a.actShiftMode, a.actStaticShift, g);
            }
        }
    }
}

void cpuMixedAccumulate(FlexiqLayerArgs const& a, int32_t batch, int32_t height, int32_t width, int32_t const* codes,
    int32_t const* steps, int32_t n4, int32_t* acc)
{
    ConvGeometry const geo = layerGeometry(a);
    int32_t outH = 0;
    int32_t outW = 0;
    outputSize(geo, height, width, &outH, &outW);
    int32_t const cPad = a.paddedChannels;
    int32_t const gSize = a.groupSize;
    int32_t const groups = cPad / gSize;
    int64_t const kLen = reductionLength(a);
    bool const isSigned = a.actSigned != 0;
    for (int32_t b = 0; b < batch; ++b)
        for (int32_t n = 0; n < a.outChannels; ++n)
            for (int32_t p = 0; p < outH; ++p)
                for (int32_t q = 0; q < outW; ++q)
                {
                    int64_t sum = 0;
                    for (int32_t r = 0; r < geo.r; ++r)
                        for (int32_t s = 0; s < geo.s; ++s)
                        {
                            int32_t const ih = p * geo.strideH - geo.padTop + r * geo.dilationH;
                            int32_t const iw = q * geo.strideW - geo.padLeft + s * geo.dilationW;
                            if (ih < 0 || ih >= height || iw < 0 || iw >= width)
                                continue; // zero padding contributes nothing
                            int64_t const row = (static_cast<int64_t>(b) * height + ih) * width + iw;
                            int64_t const kBase = static_cast<int64_t>(r * geo.s + s) * cPad;
                            for (int32_t g = 0; g < groups; ++g)
                            {
                                int64_t part = 0;
                                bool const fourBit = g * gSize < n4;
                                for (int32_t i = 0; i < gSize; ++i)
                                {
                                    int32_t const c = g * gSize + i;
                                    int64_t const k = kBase + c;
                                    int32_t const xq = codes[row * cPad + c];
                                    if (fourBit)
                                    {
                                        int32_t const x4 = extract4Step(xq, steps[row * groups + g], isSigned);
                                        int32_t const w4 = unpackNibble(a.weightInt4 + n * (kLen / 2), k, true);
                                        part += static_cast<int64_t>(x4) * w4;
                                    }
                                    else
                                    {
                                        part += static_cast<int64_t>(xq) * a.weightInt8[n * kLen + k];
                                    }
                                }
                                if (fourBit) // (x4 . w4) * s_a * step_w[g]
                                {
                                    part *= int64_t{steps[row * groups + g]} * a.weightStep[g];
                                }
                                sum += part;
                            }
                        }
                    acc[((static_cast<int64_t>(b) * a.outChannels + n) * outH + p) * outW + q]
                        = static_cast<int32_t>(sum);
                }
}

void cpuEpilogue(FlexiqLayerArgs const& a, int32_t batch, int32_t outPixels, int32_t n4, int32_t const* acc,
    int32_t outputType, void* output)
{
    bool const int8Output = outputType == kFLEXIQ_INT8;
    bool const outputSigned = a.outputSigned != 0;
    // bias rung k = n4 / G: row k of the [G_count + 1, N] table (docs/design.md §2.8)
    float const* bias = a.bias + static_cast<int64_t>(n4 / a.groupSize) * a.outChannels;
    for (int32_t b = 0; b < batch; ++b)
        for (int32_t n = 0; n < a.outChannels; ++n)
            for (int32_t i = 0; i < outPixels; ++i)
            {
                int64_t const idx = (static_cast<int64_t>(b) * a.outChannels + n) * outPixels + i;
                float const y = epilogue(acc[idx], a.outScale[n], bias[n], a.activation, a.alpha, a.beta);
                if (int8Output)
                    static_cast<uint8_t*>(output)[idx] = activationCodeBits(y, a.outputScale, outputSigned);
                else
                    static_cast<float*>(output)[idx] = y;
            }
}

void cpuWriteEdgeImage(FlexiqLayerArgs const& a, int32_t batch, int32_t outPixels, float const* y,
    CpuEdgeOptions const& edge, int8_t* image)
{
    int32_t const gSize = a.readerGroupSize;
    int32_t const cPad = edgePaddedChannels(a.outChannels, gSize);
    int32_t const groups = cPad / gSize;
    int32_t const n4 = clampN4(edge.readerN4, cPad, gSize);
    bool const isSigned = a.outputSigned != 0;
    int64_t const rows = static_cast<int64_t>(batch) * outPixels;
    EdgeImageLayout const l = edgeImageLayout(rows, cPad, gSize);
    std::vector<int32_t> q(static_cast<size_t>(cPad));
    for (int64_t row = 0; row < rows; ++row)
    {
        int64_t const b = row / outPixels;
        int64_t const pq = row % outPixels;
        for (int32_t c = 0; c < cPad; ++c) // channel c of the producer is the reader's permuted channel c
            q[c] = c < a.outChannels
                ? quantizeActivation(y[(b * a.outChannels + c) * outPixels + pq], a.outputScale, isSigned)
                : 0;
        for (int32_t g = 0; g < groups; ++g)
        {
            int32_t const* qg = q.data() + g * gSize;
            int32_t const step = groupStep(qg, gSize, isSigned, a.readerShiftMode, a.readerStaticShift, g);
            image[l.shiftA + row * groups + g] = static_cast<int8_t>(step); // the plane named shiftA holds s
            std::memcpy(image + l.factorA + (row * groups + g) * 4, &step, 4);
            bool const fourBit = g * gSize < n4;
            for (int32_t i = 0; i < gSize; ++i)
            {
                int64_t const c = static_cast<int64_t>(g) * gSize + i;
                if (fourBit && edge.int4Format)
                {
                    uint8_t& byte = reinterpret_cast<uint8_t&>(image[l.codes4 + (row * cPad + c) / 2]);
                    uint8_t const nib = static_cast<uint8_t>(extract4Step(qg[i], step, isSigned) & 0xF);
                    byte = (c & 1) ? static_cast<uint8_t>((byte & 0x0F) | (nib << 4)) : static_cast<uint8_t>((byte & 0xF0) | nib);
                }
                else
                {
                    int32_t const v = fourBit ? effectiveCodeStep(qg[i], step, isSigned) : qg[i];
                    image[l.codes8 + row * cPad + c] = static_cast<int8_t>(static_cast<uint8_t>(v & 0xFF));
                }
            }
        }
    }
}

void cpuReadEdgeImage(FlexiqLayerArgs const& a, int64_t rows, int8_t const* image, CpuEdgeOptions const& edge,
    int32_t* codes, int32_t* steps)
{
    int32_t const cPad = a.paddedChannels;
    int32_t const gSize = a.groupSize;
    int32_t const groups = cPad / gSize;
    int32_t const n4 = clampN4(edge.readerN4, cPad, gSize);
    bool const isSigned = a.actSigned != 0;
    EdgeImageLayout const l = edgeImageLayout(rows, cPad, gSize);
    for (int64_t row = 0; row < rows; ++row)
        for (int32_t g = 0; g < groups; ++g)
        {
            int32_t const step = image[l.shiftA + row * groups + g]; // the step s (docs/design.md §2.5)
            steps[row * groups + g] = step;
            bool const fourBit = g * gSize < n4;
            for (int32_t i = 0; i < gSize; ++i)
            {
                int64_t const c = static_cast<int64_t>(g) * gSize + i;
                int32_t v = 0;
                if (fourBit && edge.int4Format) // the 4-bit code back as its effective code
                    v = unpackNibble(image + l.codes4, row * cPad + c, isSigned) * step;
                else
                    v = isSigned ? static_cast<int32_t>(image[l.codes8 + row * cPad + c])
                                 : static_cast<int32_t>(static_cast<uint8_t>(image[l.codes8 + row * cPad + c]));
                codes[row * cPad + c] = v;
            }
        }
}

bool cpuForwardEdge(FlexiqLayerArgs const& a, FlexiqProblem const& pr, int32_t n4, CpuEdgeOptions const& edge,
    char* why, size_t whyLen)
{
    if (!checkLayerArgs(a, why, whyLen) || !checkProblem(a, pr, why, whyLen))
        return false;
    if (pr.dataType == kFLEXIQ_FP16 || pr.outputType == kFLEXIQ_FP16 || pr.accOut == nullptr)
    {
        if (why != nullptr && whyLen > 0)
            std::snprintf(why, whyLen, "the CPU reference takes FP32 or INT8 input and output, and an accumulator buffer");
        return false;
    }
    int64_t const rows = static_cast<int64_t>(pr.batch) * pr.height * pr.width;
    std::vector<int32_t> codes(static_cast<size_t>(rows * a.paddedChannels));
    std::vector<int32_t> steps(static_cast<size_t>(rows * (a.paddedChannels / a.groupSize)));
    if (pr.dataType == kFLEXIQ_INT8_WORKSPACE)
        cpuReadEdgeImage(a, rows, static_cast<int8_t const*>(pr.input), CpuEdgeOptions{n4, edge.int4Format},
            codes.data(), steps.data());
    else
        cpuQuantizeInput(a, pr.batch, pr.height, pr.width, pr.dataType, pr.input, codes.data(), steps.data());
    int32_t const n4c = clampN4(n4, a.paddedChannels, a.groupSize);
    cpuMixedAccumulate(a, pr.batch, pr.height, pr.width, codes.data(), steps.data(), n4c, pr.accOut);
    int32_t outH = 0;
    int32_t outW = 0;
    outputSize(layerGeometry(a), pr.height, pr.width, &outH, &outW);
    if (pr.outputType == kFLEXIQ_INT8_WORKSPACE)
    {
        std::vector<float> y(static_cast<size_t>(pr.batch) * a.outChannels * outH * outW);
        cpuEpilogue(a, pr.batch, outH * outW, n4c, pr.accOut, kFLEXIQ_FP32, y.data());
        cpuWriteEdgeImage(a, pr.batch, outH * outW, y.data(), edge, static_cast<int8_t*>(pr.output));
    }
    else
        cpuEpilogue(a, pr.batch, outH * outW, n4c, pr.accOut, pr.outputType, pr.output);
    return true;
}

bool cpuForward(FlexiqLayerArgs const& a, FlexiqProblem const& pr, int32_t n4, char* why, size_t whyLen)
{
    if (pr.dataType == kFLEXIQ_INT8_WORKSPACE || pr.outputType == kFLEXIQ_INT8_WORKSPACE)
    {
        if (why != nullptr && whyLen > 0)
            std::snprintf(why, whyLen, "workspace edges need cpuForwardEdge (the reader's n4 and the format)");
        return false;
    }
    return cpuForwardEdge(a, pr, n4, CpuEdgeOptions{0, 0}, why, whyLen);
}

} // namespace flexiq
