/*
 * SPDX-License-Identifier: Apache-2.0
 */
#include "flexiqConvPlugin.h"

#include "flexiqCheck.h"

namespace flexiq
{
namespace
{
using nvinfer1::DimensionOperation;
using nvinfer1::IDimensionExpr;

//! floor((in + padBefore + padAfter - dilation * (k - 1) - 1) / stride) + 1, as a dimension expression.
IDimensionExpr const* outputExtent(IDimensionExpr const& in, int32_t k, int32_t stride, int32_t padBefore,
    int32_t padAfter, int32_t dilation, nvinfer1::IExprBuilder& b)
{
    int64_t const offset = static_cast<int64_t>(padBefore) + padAfter - static_cast<int64_t>(dilation) * (k - 1) - 1;
    IDimensionExpr const* span = offset >= 0
        ? b.operation(DimensionOperation::kSUM, in, *b.constant(offset))
        : b.operation(DimensionOperation::kSUB, in, *b.constant(-offset));
    IDimensionExpr const* steps = b.operation(DimensionOperation::kFLOOR_DIV, *span, *b.constant(stride));
    return b.operation(DimensionOperation::kSUM, *steps, *b.constant(1));
}
} // namespace

FlexiqConvPlugin::FlexiqConvPlugin(std::shared_ptr<LayerConfig const> cfg)
    : FlexiqPluginBase(std::move(cfg))
{
}

// Input x: NCHW [B, C_in, H, W], or a workspace edge [B, H, W, bytes per row] (input_int8 = 2). Output:
// NCHW [B, N, P, Q], or the reader's workspace edge [B, P, Q, reader bytes per row] (output_int8 = 2).
void FlexiqConvPlugin::checkInputDims(nvinfer1::Dims const& x) const
{
    LayerConfig const& c = config();
    FLEXIQ_VALIDATE(x.nbDims == 4, c.where() << ": input x must be NCHW (rank 4), got rank " << x.nbDims);
    if (c.inputWorkspace())
    {
        FLEXIQ_VALIDATE(x.d[3] < 0 || x.d[3] == c.inputEdgeBytesPerRow(),
            c.where() << ": input x is a workspace edge [B, H, W, " << c.inputEdgeBytesPerRow() << "] (input_int8 = 2) but has "
                      << x.d[3] << " bytes per pixel");
        return;
    }
    FLEXIQ_VALIDATE(x.d[1] < 0 || x.d[1] == c.inChannels,
        c.where() << ": input x has " << x.d[1] << " channels but plugin field 'in_channels' = " << c.inChannels);
}

void FlexiqConvPlugin::outputShape(
    nvinfer1::DimsExprs const& x, nvinfer1::DimsExprs& out, nvinfer1::IExprBuilder& builder) const
{
    LayerConfig const& c = config();
    FLEXIQ_VALIDATE(x.nbDims == 4, c.where() << ": input x must be NCHW (rank 4), got rank " << x.nbDims);
    bool const edgeIn = c.inputWorkspace();
    nvinfer1::IDimensionExpr const* channels = edgeIn ? x.d[3] : x.d[1];
    int64_t const wantChannels = edgeIn ? c.inputEdgeBytesPerRow() : c.inChannels;
    FLEXIQ_VALIDATE(!channels->isConstant() || channels->getConstantValue() == wantChannels,
        c.where() << ": input x has " << channels->getConstantValue()
                  << (edgeIn ? " bytes per pixel but its workspace edge (input_int8 = 2) has " : " channels but plugin field 'in_channels' = ")
                  << wantChannels);
    nvinfer1::IDimensionExpr const* h = edgeIn ? x.d[1] : x.d[2];
    nvinfer1::IDimensionExpr const* w = edgeIn ? x.d[2] : x.d[3];
    nvinfer1::IDimensionExpr const* p
        = outputExtent(*h, c.kernelShape[0], c.strides[0], c.pads[0], c.pads[2], c.dilations[0], builder);
    nvinfer1::IDimensionExpr const* q
        = outputExtent(*w, c.kernelShape[1], c.strides[1], c.pads[1], c.pads[3], c.dilations[1], builder);
    out.nbDims = 4;
    out.d[0] = x.d[0];
    if (c.outputWorkspace())
    {
        out.d[1] = p;
        out.d[2] = q;
        out.d[3] = builder.constant(c.outputEdgeBytesPerRow());
        return;
    }
    out.d[1] = builder.constant(c.outChannels);
    out.d[2] = p;
    out.d[3] = q;
}

void FlexiqConvPlugin::problemDims(nvinfer1::Dims const& x, FlexiqProblem& problem) const
{
    LayerConfig const& c = config();
    int32_t const hi = c.inputWorkspace() ? 1 : 2; // [B, H, W, X] or [B, C, H, W]
    FLEXIQ_VALIDATE(x.d[0] > 0 && x.d[hi] > 0 && x.d[hi + 1] > 0 && x.d[0] <= INT32_MAX && x.d[hi] <= INT32_MAX
            && x.d[hi + 1] <= INT32_MAX,
        c.where() << ": input x shape [" << x.d[0] << ", " << x.d[1] << ", " << x.d[2] << ", " << x.d[3]
                  << "] must have positive batch, height and width");
    problem.batch = static_cast<int32_t>(x.d[0]);
    problem.height = static_cast<int32_t>(x.d[hi]);
    problem.width = static_cast<int32_t>(x.d[hi + 1]);
    FlexiqLayerArgs const args = c.layerArgs(nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr);
    int32_t outH = 0;
    int32_t outW = 0;
    flexiqOutputHW(&args, problem.height, problem.width, &outH, &outW);
    FLEXIQ_VALIDATE(outH > 0 && outW > 0,
        c.where() << ": input x of " << problem.height << "x" << problem.width
                  << " is smaller than the kernel footprint (fields 'kernel_shape', 'pads', 'dilations')");
}

FlexiqPluginBase* FlexiqConvPlugin::cloneDerived() const
{
    return new FlexiqConvPlugin(*this);
}

FlexiqConvCreator::FlexiqConvCreator()
    : FlexiqCreatorBase(/*isConv=*/true)
{
}

FlexiqPluginBase* FlexiqConvCreator::makePlugin(std::shared_ptr<LayerConfig const> cfg) const
{
    return new FlexiqConvPlugin(std::move(cfg));
}

} // namespace flexiq
