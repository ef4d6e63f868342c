/*
 * SPDX-License-Identifier: Apache-2.0
 */
#include "flexiqGemmPlugin.h"

#include "flexiqCheck.h"

namespace flexiq
{

FlexiqGemmPlugin::FlexiqGemmPlugin(std::shared_ptr<LayerConfig const> cfg)
    : FlexiqPluginBase(std::move(cfg))
{
}

// Input x: [..., C_in], or a workspace edge [..., bytes per row] (input_int8 = 2). Output: [..., N], or the
// reader's workspace edge [..., reader bytes per row] (output_int8 = 2).
void FlexiqGemmPlugin::checkInputDims(nvinfer1::Dims const& x) const
{
    LayerConfig const& c = config();
    FLEXIQ_VALIDATE(x.nbDims >= 2 && x.nbDims <= nvinfer1::Dims::MAX_DIMS,
        c.where() << ": input x must have rank >= 2 ([..., C_in]), got rank " << x.nbDims);
    int64_t const k = x.d[x.nbDims - 1];
    int64_t const want = c.inputWorkspace() ? c.inputEdgeBytesPerRow() : c.inChannels;
    FLEXIQ_VALIDATE(k < 0 || k == want,
        c.where() << ": input x has last dimension " << k
                  << (c.inputWorkspace() ? " but its workspace edge (input_int8 = 2) has bytes per row "
                                         : " but plugin field 'in_channels' = ")
                  << want);
}

void FlexiqGemmPlugin::outputShape(
    nvinfer1::DimsExprs const& x, nvinfer1::DimsExprs& out, nvinfer1::IExprBuilder& builder) const
{
    LayerConfig const& c = config();
    FLEXIQ_VALIDATE(x.nbDims >= 2, c.where() << ": input x must have rank >= 2 ([..., C_in]), got rank " << x.nbDims);
    nvinfer1::IDimensionExpr const* last = x.d[x.nbDims - 1];
    int64_t const want = c.inputWorkspace() ? c.inputEdgeBytesPerRow() : c.inChannels;
    FLEXIQ_VALIDATE(!last->isConstant() || last->getConstantValue() == want,
        c.where() << ": input x has last dimension " << last->getConstantValue()
                  << (c.inputWorkspace() ? " but its workspace edge (input_int8 = 2) has bytes per row "
                                         : " but plugin field 'in_channels' = ")
                  << want);
    out.nbDims = x.nbDims;
    for (int32_t i = 0; i < x.nbDims - 1; ++i)
    {
        out.d[i] = x.d[i];
    }
    out.d[x.nbDims - 1] = builder.constant(c.outputWorkspace() ? c.outputEdgeBytesPerRow() : c.outChannels);
}

void FlexiqGemmPlugin::problemDims(nvinfer1::Dims const& x, FlexiqProblem& problem) const
{
    LayerConfig const& c = config();
    int64_t rows = 1;
    for (int32_t i = 0; i < x.nbDims - 1; ++i)
    {
        FLEXIQ_VALIDATE(x.d[i] > 0, c.where() << ": input x dimension " << i << " = " << x.d[i] << " must be positive");
        rows *= x.d[i];
        FLEXIQ_VALIDATE(rows <= INT32_MAX, c.where() << ": input x has more than 2^31 rows");
    }
    problem.batch = static_cast<int32_t>(rows);
    problem.height = 1;
    problem.width = 1;
}

FlexiqPluginBase* FlexiqGemmPlugin::cloneDerived() const
{
    return new FlexiqGemmPlugin(*this);
}

FlexiqGemmCreator::FlexiqGemmCreator()
    : FlexiqCreatorBase(/*isConv=*/false)
{
}

FlexiqPluginBase* FlexiqGemmCreator::makePlugin(std::shared_ptr<LayerConfig const> cfg) const
{
    return new FlexiqGemmPlugin(std::move(cfg));
}

} // namespace flexiq
