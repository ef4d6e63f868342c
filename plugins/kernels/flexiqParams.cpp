/*
 * SPDX-License-Identifier: Apache-2.0
 */
#include "flexiqParams.h"

#include "flexiqShape.h"

namespace flexiq
{

InputPassParams makeInputPassParams(FlexiqLayerArgs const& a, FlexiqProblem const& pr)
{
    InputPassParams in{};
    in.input = pr.input;
    in.inputType = pr.dataType;
    in.permutation = a.permutation;
    in.actStaticShift = a.actShiftMode == 1 ? a.actStaticShift : nullptr;
    in.max4bit = pr.max4bit;
    in.layerIndex = a.layerIndex;
    in.rows = static_cast<int64_t>(pr.batch) * pr.height * pr.width;
    in.pixels = pr.height * pr.width;
    in.inChannels = a.inChannels;
    in.cPad = a.paddedChannels;
    in.groupSize = a.groupSize;
    in.groups = a.paddedChannels / a.groupSize;
    in.actScale = a.actScale;
    in.wStep = a.weightStep;
    return in;
}

MixedGemmParams makeMixedGemmParams(FlexiqLayerArgs const& a, FlexiqProblem const& pr, InputPassParams const& in)
{
    ConvGeometry const geo = layerGeometry(a);
    MixedGemmParams g{};
    g.codes8 = in.codes8;
    g.codes4 = in.codes4;
    g.shiftA = in.shiftA;
    g.w8 = a.weightInt8;
    g.w4 = a.weightInt4;
    g.wStep = a.weightStep;
    g.factorA = in.factorA;
    g.wStepWide = in.wStepWide;
    g.wEff = a.weightEffective;
    g.outScale = a.outScale;
    g.bias = a.bias;
    g.max4bit = pr.max4bit;
    g.layerIndex = a.layerIndex;
    g.batch = pr.batch;
    g.height = pr.height;
    g.width = pr.width;
    outputSize(geo, pr.height, pr.width, &g.outH, &g.outW);
    g.cPad = a.paddedChannels;
    g.groupSize = a.groupSize;
    g.groups = a.paddedChannels / a.groupSize;
    g.outChannels = a.outChannels;
    g.r = geo.r;
    g.s = geo.s;
    g.strideH = geo.strideH;
    g.strideW = geo.strideW;
    g.padTop = geo.padTop;
    g.padLeft = geo.padLeft;
    g.dilationH = geo.dilationH;
    g.dilationW = geo.dilationW;
    g.kLen = reductionLength(a);
    g.activation = a.activation;
    g.alpha = a.alpha;
    g.beta = a.beta;
    g.output = pr.output;
    g.accOut = pr.accOut;
    g.outType = pr.outputType;
    g.outputScale = a.outputScale;
    g.outputSigned = a.outputSigned;
    return g;
}

InputPassParams edgeInputPass(FlexiqLayerArgs const& a, MixedGemmParams const& g, int64_t rowsOut, int32_t outPixels)
{
    InputPassParams in{};
    in.input = g.output;
    in.inputType = kFLEXIQ_INT8;
    in.permutation = nullptr;
    in.actStaticShift = g.edge.actStaticShift;
    in.max4bit = g.max4bit;
    in.layerIndex = g.edgeLayerIndex;
    in.rows = rowsOut;
    in.pixels = outPixels;
    in.inChannels = a.outChannels;
    in.cPad = g.edge.cPad;
    in.groupSize = g.edgeGroupSize;
    in.groups = g.edge.groups;
    in.actScale = 1.0F; // unused: INT8 codes are read, not quantized
    in.codes8 = g.edge.codes8;
    in.codes4 = g.edge.codes4;
    in.shiftA = g.edge.shiftA;
    in.writeEffective = g.edge.writeEffective;
    in.factorA = g.edge.factorA;
    in.wStepWide = nullptr;
    in.wStep = nullptr;
    return in;
}

} // namespace flexiq
