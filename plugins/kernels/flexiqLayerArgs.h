/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * POD argument structs of the FlexiQ kernels, with no CUDA or TensorRT dependency, so the C++ CPU
 * reference (plugins/reference) takes exactly the same description of a layer with host pointers.
 */
#ifndef FLEXIQ_LAYER_ARGS_H
#define FLEXIQ_LAYER_ARGS_H

#include <cstdint>

extern "C" {

//! Element type of a layer's input or output tensor.
enum FlexiqDataType : int32_t
{
    kFLEXIQ_FP32 = 0,
    kFLEXIQ_FP16 = 1,
    //! INT8 activation codes (docs/design.md §2.3): an input holds the layer's own codes (signed read as
    //! int8 and clamped to [-127, 127]; unsigned as the uint8 bit pattern of u in [0, 255]); an output
    //! holds quantizeActivation(y, outputScale, outputSigned), unsigned codes as their low 8 bits.
    kFLEXIQ_INT8 = 2,
    //! A workspace edge (docs/design.md §2.8): the reader's input-pass output image (flexiqEdgeImage.h) of one
    //! producer -> one reader INT8 edge. As an input: the layer skips its input pass and reads the planes. As
    //! an output: the layer writes the image of its reader (FlexiqLayerArgs::reader*; codes of
    //! (outputScale, outputSigned), output channel j = the reader's permuted channel j).
    kFLEXIQ_INT8_WORKSPACE = 3,
};

//! Per-layer constant arguments (the plugin fields, already on the device). POD.
struct FlexiqLayerArgs
{
    int32_t isConv;         //!< 1: FlexiQConv, 0: FlexiQGemm (R = S = 1, no padding)
    int32_t inChannels;     //!< real C_in
    int32_t paddedChannels; //!< C_pad, a multiple of groupSize
    int32_t outChannels;    //!< N
    int32_t groupSize;      //!< G, 32 or 64
    int32_t kernelR;        //!< R (1 for gemm)
    int32_t kernelS;        //!< S (1 for gemm)
    int32_t strideH, strideW;
    int32_t padTop, padLeft, padBottom, padRight;
    int32_t dilationH, dilationW;
    float actScale;         //!< s_a > 0
    int32_t actSigned;      //!< 1: s8/s4 activation codes, 0: u8/u4
    int32_t actShiftMode;   //!< plugin_spec.ShiftMode: 0 dynamic, 1 static
    int32_t activation;     //!< plugin_spec.Activation
    float alpha;            //!< activation_alpha
    float beta;             //!< activation_beta
    int32_t layerIndex;     //!< index into the max4bit vector
    float outputScale;      //!< the consumers' s_a: > 0 when the output is kFLEXIQ_INT8 (otherwise unused)
    int32_t outputSigned;   //!< the consumers' act_signed: 1 s8 codes, 0 u8 codes (kFLEXIQ_INT8 output only)
    // Device pointers for the kernels (host pointers for the CPU reference); owned by the caller.
    int32_t const* permutation;    //!< [C_pad]
    int8_t const* weightInt8;      //!< [N, K]
    int8_t const* weightInt4;      //!< [N, K/2] packed, low nibble first
    int8_t const* weightStep;      //!< [C_pad/G], step_w in [1, 16]: a 4-bit weight stands for w4 * step_w[g]
    float const* outScale;         //!< [N], float32(act_scale * weight_scale[n]) computed by the host
    float const* bias;             //!< [G_count + 1, N] rung-major: row n4 / G is the epilogue's bias
    int8_t const* actStaticShift;  //!< [C_pad/G], used when actShiftMode == 1
    // A workspace-edge output (FlexiqProblem::outputType kFLEXIQ_INT8_WORKSPACE): the reader's input pass.
    int32_t readerLayerIndex;      //!< the reader's index into the max4bit vector (its n4)
    int32_t readerGroupSize;       //!< the reader's G (32 or 64); its C_pad = outChannels rounded up to it
    int32_t readerShiftMode;       //!< the reader's act_shift_mode
    int8_t const* readerStaticShift; //!< [reader C_pad / reader G] the reader's act_static_shift (static mode)
    //! Optional [C_pad/G] int32 step_w (the pipelined backends copy a K-tile's step with a 4-byte cp.async),
    //! computed once with the device weights; null: the input pass writes it into the workspace on every
    //! call. Required for a workspace-edge input on the pipelined backends (no input pass runs).
    int32_t const* weightStepWide;
    //! Optional [N, K] int8 effective weights w4 * step_w[g] (flexiq::makeEffectiveWeights; 16-byte aligned),
    //! made once with the device weights for the int8 backends: the INT8_PIPELINED kernel copies a 4-bit
    //! K-tile's B from it exactly as an 8-bit one's from weightInt8. Null (or misaligned): INT8_PIPELINED
    //! falls back to INT8_MMA (flexiqRunnerResolveBackend). Unused by the other backends.
    int8_t const* weightEffective;
};

//! Per-call problem (shape-derived, changes with the input shape).
struct FlexiqProblem
{
    int32_t batch;           //!< conv: B; gemm: M (rows of the flattened input)
    int32_t height;          //!< conv input H (gemm: 1)
    int32_t width;           //!< conv input W (gemm: 1)
    int32_t dataType;        //!< FlexiqDataType of the INPUT: FP32, FP16 or INT8 (codes)
    int32_t outputType;      //!< FlexiqDataType of the output: FP32, FP16 or INT8 (codes, needs outputScale > 0)
    void const* input;       //!< device
    void* output;            //!< device
    int32_t const* max4bit;  //!< device int32 [L] flexiq_max_4bit_ch (may be null: n4 = 0)
    int32_t* accOut;         //!< optional device int32, same layout as output: raw accumulators (tests)
};

} // extern "C"

#endif // FLEXIQ_LAYER_ARGS_H
