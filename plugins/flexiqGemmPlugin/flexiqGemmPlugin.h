/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * FlexiQGemm: y = x W^T + b over the last axis with runtime-switchable mixed int4/int8 channels.
 * x [..., C_in] (rank >= 2, FP32/FP16) + flexiq_max_4bit_ch int32 [L] -> y [..., N]. The leading
 * axes are flattened into M rows (a 1x1 conv with B = M, H = W = 1 for the kernels).
 */
#ifndef FLEXIQ_GEMM_PLUGIN_H
#define FLEXIQ_GEMM_PLUGIN_H

#include "flexiqCreatorBase.h"
#include "flexiqPluginBase.h"

namespace flexiq
{

class FlexiqGemmPlugin : public FlexiqPluginBase
{
public:
    explicit FlexiqGemmPlugin(std::shared_ptr<LayerConfig const> cfg);

protected:
    FlexiqGemmPlugin(FlexiqGemmPlugin const&) = default;
    void checkInputDims(nvinfer1::Dims const& x) const override;
    void outputShape(
        nvinfer1::DimsExprs const& x, nvinfer1::DimsExprs& out, nvinfer1::IExprBuilder& builder) const override;
    void problemDims(nvinfer1::Dims const& x, FlexiqProblem& problem) const override;
    FlexiqPluginBase* cloneDerived() const override;
};

class FlexiqGemmCreator : public FlexiqCreatorBase
{
public:
    FlexiqGemmCreator();

protected:
    FlexiqPluginBase* makePlugin(std::shared_ptr<LayerConfig const> cfg) const override;
};

} // namespace flexiq

#endif // FLEXIQ_GEMM_PLUGIN_H
