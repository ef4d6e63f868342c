/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * Hand-made FlexiQ plugin field collections for the host tests: a valid layer (deterministic
 * pseudo-random weights that follow plugin_spec.py) and mutations of single fields.
 */
#ifndef FLEXIQ_TEST_LAYER_H
#define FLEXIQ_TEST_LAYER_H

#include "NvInferRuntime.h"

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace flexiq
{
namespace test
{

//! Field values of one node; `fields()` points into this object, so keep it alive.
struct TestLayer
{
    bool isConv{false};
    int32_t layerIndex{1}, groupSize{32}, inChannels{40}, outChannels{8};
    float actScale{0.05F};
    int32_t actSigned{1}, actShiftMode{0}, activation{1};
    float alpha{0.0F}, beta{6.0F};
    int32_t inputInt8{0}, outputInt8{0};
    float outputScale{1.0F};
    int32_t outputSigned{1};
    int32_t readerLayerIndex{0}, readerGroupSize{32}, readerActShiftMode{0};
    std::vector<int8_t> readerActStaticShift; //!< [ceil(N / readerGroupSize)]
    std::array<int32_t, 2> kernelShape{3, 3}, strides{1, 1}, dilations{1, 1};
    std::array<int32_t, 4> pads{1, 1, 1, 1};
    std::vector<int8_t> actStaticShift, weightInt8, weightInt4, weightStep;
    std::vector<int32_t> permutation;
    std::vector<float> weightScale, bias;

    //! Fills every array consistently for the current scalars (seeded, deterministic).
    void fill(uint32_t seed = 7);
    int32_t paddedChannels() const;
    int64_t reductionLength() const;
    //! The PluginFields of this layer, in plugin_spec order (conv fields only for a conv).
    std::vector<nvinfer1::PluginField> fields() const;
};

//! A valid gemm (C_in 40, N 8, G 32) or conv (3x3, pad 1) layer.
TestLayer makeLayer(bool isConv);

//! The field named `name` in `fields` (throws std::out_of_range when absent).
nvinfer1::PluginField& fieldByName(std::vector<nvinfer1::PluginField>& fields, std::string const& name);

//! A copy of `fields` without `name`.
std::vector<nvinfer1::PluginField> withoutField(std::vector<nvinfer1::PluginField> fields, std::string const& name);

} // namespace test
} // namespace flexiq

#endif // FLEXIQ_TEST_LAYER_H
