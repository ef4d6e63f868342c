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

void FlexiqConvPlugin::checkInputDims(nvinfer1::Dims const& x) const
{
    LayerConfig const& c = config();
    FLEXIQ_VALIDATE(x.nbDims == 4, c.where() << ": input x must be NCHW (rank 4), got rank " << x.nbDims);
    FLEXIQ_VALIDATE(x.d[1] < 0 || x.d[1] == c.inChannels,
        c.where() << ": input x has " << x.d[1] << " channels but plugin field 'in_channels' = " << c.inChannels);
}

void FlexiqConvPlugin::outputShape(
    nvinfer1::DimsExprs const& x, nvinfer1::DimsExprs& out, nvinfer1::IExprBuilder& builder) const
{
    LayerConfig const& c = config();
    FLEXIQ_VALIDATE(x.nbDims == 4, c.where() << ": input x must be NCHW (rank 4), got rank " << x.nbDims);
    FLEXIQ_VALIDATE(!x.d[1]->isConstant() || x.d[1]->getConstantValue() == c.inChannels,
        c.where() << ": input x has " << x.d[1]->getConstantValue() << " channels but plugin field 'in_channels' = "
                  << c.inChannels);
    out.nbDims = 4;
    out.d[0] = x.d[0];
    out.d[1] = builder.constant(c.outChannels);
    out.d[2] = outputExtent(*x.d[2], c.kernelShape[0], c.strides[0], c.pads[0], c.pads[2], c.dilations[0], builder);
    out.d[3] = outputExtent(*x.d[3], c.kernelShape[1], c.strides[1], c.pads[1], c.pads[3], c.dilations[1], builder);
}

void FlexiqConvPlugin::problemDims(nvinfer1::Dims const& x, FlexiqProblem& problem) const
{
    LayerConfig const& c = config();
    FLEXIQ_VALIDATE(x.d[0] > 0 && x.d[2] > 0 && x.d[3] > 0 && x.d[0] <= INT32_MAX && x.d[2] <= INT32_MAX
            && x.d[3] <= INT32_MAX,
        c.where() << ": input x shape [" << x.d[0] << ", " << x.d[1] << ", " << x.d[2] << ", " << x.d[3]
                  << "] must have positive batch, height and width");
    problem.batch = static_cast<int32_t>(x.d[0]);
    problem.height = static_cast<int32_t>(x.d[2]);
    problem.width = static_cast<int32_t>(x.d[3]);
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
