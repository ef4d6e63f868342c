/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * LayerConfig: the validated fields of one FlexiQ plugin node, parsed from a PluginFieldCollection
 * (build: from the ONNX parser; runtime: from getFieldsToSerialize), and FieldSerializer, which turns
 * it back into a PluginFieldCollection with the creator's field names, so both phases go through
 * the same parser (docs/conventions.md, "Errors").
 */
#ifndef FLEXIQ_LAYER_CONFIG_H
#define FLEXIQ_LAYER_CONFIG_H

#include "flexiqFields.h"
#include "flexiqLayerArgs.h"

#include "NvInferRuntime.h"

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace flexiq
{

//! All fields of a node, in host memory, after validation.
struct LayerConfig
{
    bool isConv{false};
    std::string nodeName; //!< the name TensorRT passed to createPlugin, for messages
    int32_t layerIndex{0};
    int32_t groupSize{0};
    int32_t inChannels{0};
    int32_t outChannels{0};
    float actScale{0.0F};
    int32_t actSigned{1};
    int32_t actShiftMode{0};
    int32_t activation{0};
    float activationAlpha{0.0F};
    float activationBeta{0.0F};
    int32_t inputInt8{0};     //!< 1: x is an INT8 tensor of this layer's own activation codes (an INT8 edge)
    int32_t outputInt8{0};    //!< 1: y is written as the consumers' INT8 codes (outputScale, outputSigned)
    float outputScale{1.0F};  //!< the consumers' s_a (> 0; 1.0 when outputInt8 = 0)
    int32_t outputSigned{1};  //!< the consumers' act_signed
    int32_t readerLayerIndex{0};   //!< outputInt8 == 2: the reader's layer_index
    int32_t readerGroupSize{32};   //!< outputInt8 == 2: the reader's G
    int32_t readerActShiftMode{0}; //!< outputInt8 == 2: the reader's act_shift_mode
    std::vector<int8_t> readerActStaticShift; //!< [ceil(N / readerGroupSize)] the reader's act_static_shift
    std::array<int32_t, 2> kernelShape{1, 1}; //!< [R, S]; gemm: 1x1
    std::array<int32_t, 2> strides{1, 1};
    std::array<int32_t, 4> pads{0, 0, 0, 0}; //!< [top, left, bottom, right]
    std::array<int32_t, 2> dilations{1, 1};
    std::vector<int8_t> actStaticShift; //!< [G_count]
    std::vector<int32_t> permutation;   //!< [C_pad]
    std::vector<int8_t> weightInt8;     //!< [N, K]
    std::vector<int8_t> weightInt4;     //!< [N, K/2]
    std::vector<int8_t> weightStep;     //!< [G_count] step_w in 1..16
    std::vector<float> weightScale;     //!< [N]
    std::vector<float> bias;            //!< [G_count + 1, N]: row k applies with k = n4 / G groups in 4-bit

    //! "FlexiQConv" or "FlexiQGemm".
    char const* opName() const noexcept;
    //! "FlexiQConv node 'name'" (prefix of every error message about this node).
    std::string where() const;
    //! C_pad: in_channels rounded up to a multiple of group_size.
    int32_t paddedChannels() const noexcept;
    //! C_pad / G.
    int32_t groupCount() const noexcept;
    //! K = R * S * C_pad (gemm: C_pad).
    int64_t reductionLength() const noexcept;
    //! float32(act_scale) * weight_scale[n], rounded once in float32 (docs/design.md §2 epilogue).
    std::vector<float> outScale() const;
    //! 1: the input is a workspace edge (input_int8 = 2); the output likewise (output_int8 = 2).
    bool inputWorkspace() const noexcept
    {
        return inputInt8 == static_cast<int32_t>(EdgeKind::kWORKSPACE);
    }
    bool outputWorkspace() const noexcept
    {
        return outputInt8 == static_cast<int32_t>(EdgeKind::kWORKSPACE);
    }
    //! The reader's C_pad of a workspace-edge output: N rounded up to reader_group_size.
    int32_t readerPaddedChannels() const noexcept;
    //! Bytes per row of the input tensor (input_int8 = 2) / output tensor (output_int8 = 2).
    int64_t inputEdgeBytesPerRow() const noexcept;
    int64_t outputEdgeBytesPerRow() const noexcept;
    //! Kernel arguments with the given (device or host) pointers; outScale must hold N floats.
    FlexiqLayerArgs layerArgs(int32_t const* permutation, int8_t const* w8, int8_t const* w4, int8_t const* wStep,
        float const* outScalePtr, float const* biasPtr, int8_t const* staticShift) const noexcept;
};

//! Parses and validates every field of a `isConv ? FlexiQConv : FlexiQGemm` node named `nodeName`.
//! Throws FlexiqPluginError naming the node, the field and the offending value.
LayerConfig parseLayerConfig(bool isConv, std::string const& nodeName, nvinfer1::PluginFieldCollection const* fc);

//! The creator's field-name list (getFieldNames) for one op: names and types, no data.
std::vector<nvinfer1::PluginField> fieldNameList(bool isConv);

//! Builds the PluginFieldCollection of a LayerConfig; valid while both objects live and the config
//! is not modified.
class FieldSerializer
{
public:
    nvinfer1::PluginFieldCollection const* serialize(LayerConfig const& cfg);

private:
    std::vector<nvinfer1::PluginField> mFields;
    nvinfer1::PluginFieldCollection mCollection{};
};

} // namespace flexiq

#endif // FLEXIQ_LAYER_CONFIG_H
