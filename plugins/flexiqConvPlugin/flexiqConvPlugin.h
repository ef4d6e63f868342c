/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * FlexiQConv: 2-D convolution (group 1) with runtime-switchable mixed int4/int8 input channels.
 * x NCHW [B, C_in, H, W] (FP32/FP16) + flexiq_max_4bit_ch int32 [L] -> y NCHW [B, N, P, Q].
 */
#ifndef FLEXIQ_CONV_PLUGIN_H
#define FLEXIQ_CONV_PLUGIN_H

#include "flexiqCreatorBase.h"
#include "flexiqPluginBase.h"

namespace flexiq
{

class FlexiqConvPlugin : public FlexiqPluginBase
{
public:
    explicit FlexiqConvPlugin(std::shared_ptr<LayerConfig const> cfg);

protected:
    FlexiqConvPlugin(FlexiqConvPlugin const&) = default;
    void checkInputDims(nvinfer1::Dims const& x) const override;
    void outputShape(
        nvinfer1::DimsExprs const& x, nvinfer1::DimsExprs& out, nvinfer1::IExprBuilder& builder) const override;
    void problemDims(nvinfer1::Dims const& x, FlexiqProblem& problem) const override;
    FlexiqPluginBase* cloneDerived() const override;
};

class FlexiqConvCreator : public FlexiqCreatorBase
{
public:
    FlexiqConvCreator();

protected:
    FlexiqPluginBase* makePlugin(std::shared_ptr<LayerConfig const> cfg) const override;
};

} // namespace flexiq

#endif // FLEXIQ_CONV_PLUGIN_H
