/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * Internal launch functions of the FlexiQ kernels (called by flexiqLauncher.cu only).
 * The public interface is flexiqKernels.h.
 */
#ifndef FLEXIQ_KERNELS_INTERNAL_H
#define FLEXIQ_KERNELS_INTERNAL_H

#include "flexiqContract.h" // FLEXIQ_HD

#include <cstdint>
#include <cuda_runtime_api.h>

namespace flexiq
{

//! Where the per-(row, group) step of an input pass writes (flexiqInputPass.cuh, writeRowGroup) when a
//! producer writes a workspace edge (flexiqEdgeImage.h); InputPassParams has the same members for the
//! layer's own input pass, so writeRowGroup reads either without a copy.
struct CodeSink
{
    int8_t* codes8;              //!< [rows, C_pad]
    int8_t* codes4;              //!< [rows, C_pad/2] (int4 format) or null
    int8_t* shiftA;              //!< [rows, C_pad/G] activation steps s (docs/design.md §2.5)
    int32_t* factorA;            //!< [rows, C_pad/G] s as int32, or null
    int8_t const* actStaticShift; //!< [C_pad/G] static shifts p (step 1 << p) or null (dynamic steps)
    int32_t cPad, groups;
    int32_t writeEffective;      //!< int8 format: effective codes in the 4-bit prefix
};

//! Arguments of the input pass: NCHW float/half input (or INT8 codes) -> code buffers in the workspace.
struct InputPassParams
{
    void const* input;            //!< [B, C_in, H, W] (gemm: [M, C_in], H = W = 1)
    int32_t inputType;            //!< FlexiqDataType: FP32/FP16 values to quantize, or INT8 codes (docs/design.md §2.3)
    int32_t const* permutation;   //!< [C_pad]; null (INT8 input only): identity, a producer's codes already in the reader's order
    int8_t const* actStaticShift; //!< [C_pad/G] static shifts p (step 1 << p) or null (dynamic steps)
    int32_t const* max4bit;       //!< [L] or null
    int32_t layerIndex;
    int64_t rows;                 //!< B * H * W input pixels
    int32_t pixels;               //!< H * W
    int32_t inChannels, cPad, groupSize, groups;
    float actScale;
    int8_t* codes8;   //!< out [rows, C_pad]: 8-bit codes; 4-bit prefix holds effective codes if writeEffective
    int8_t* codes4;   //!< out [rows, C_pad/2] packed 4-bit codes (low nibble first), or null
    int8_t* shiftA;   //!< out [rows, C_pad/G] activation steps s in 1..16 (docs/design.md §2.5)
    int32_t writeEffective;
    // Pipelined backends only (null otherwise):
    int32_t* factorA;           //!< out [rows, C_pad/G] int32 step s (int4 pipelined backend)
    int32_t* wStepWide;         //!< out [C_pad/G] int32 step_w, for the int4 GEMM's 4-byte cp.async of a K-tile's step
    int8_t const* wStep;        //!< [C_pad/G] the layer's weight steps step_w (source of wStepWide)
};

//! Arguments of the mixed GEMM / implicit-GEMM conv (and of the reference kernel).
struct MixedGemmParams
{
    int8_t const* codes8;  //!< [rowsIn, C_pad]
    int8_t const* codes4;  //!< [rowsIn, C_pad/2] (Int4Mma only)
    int8_t const* shiftA;  //!< [rowsIn, C_pad/G] activation steps s
    int8_t const* w8;      //!< [N, K]
    int8_t const* w4;      //!< [N, K/2] packed
    int8_t const* wStep;   //!< [C_pad/G] weight steps step_w in 1..16
    int32_t const* factorA; //!< [rowsIn, C_pad/G] step s as int32 (pipelined int4 backend)
    int32_t const* wStepWide; //!< [C_pad/G] step_w as int32 (int4 pipelined backend)
    int8_t const* wEff;    //!< [N, K] effective weights w4 * step_w[g] (int8 pipelined backend's 4-bit K-tiles)
    float const* outScale; //!< [N]
    float const* bias;     //!< [G_count + 1, N] rung-major (biasFor picks the row)
    int32_t const* max4bit;
    int32_t layerIndex;
    int32_t batch, height, width, outH, outW;
    int32_t cPad, groupSize, groups, outChannels;
    int32_t r, s, strideH, strideW, padTop, padLeft, dilationH, dilationW;
    int64_t kLen;
    int32_t activation;
    float alpha, beta;
    void* output;     //!< NCHW [B, N, P, Q] (gemm [M, N])
    int32_t* accOut;  //!< optional, same layout as output
    int32_t outType;  //!< FlexiqDataType of the output (a template argument of the first-version and reference
                      //!< kernels, a runtime flag of the pipelined kernels' epilogue)
    float outputScale;    //!< INT8 output: the consumers' s_a
    int32_t outputSigned; //!< INT8 output: the consumers' act_signed
    // Workspace-edge output (outType kFLEXIQ_INT8_WORKSPACE, pipelined kernels): the reader's input pass.
    CodeSink edge;             //!< the planes of the edge tensor (flexiqEdgeImage.h)
    int32_t edgeLayerIndex;    //!< the reader's index into max4bit
    int32_t edgeGroupSize;     //!< the reader's G
};

//! The bias row every kernel's epilogue reads for a layer running with `n4` 4-bit channels (clamped to
//! whole groups): the one place that decides which bias applies at which ratio. The field `bias` is the
//! per-rung table [G_count + 1, N] (docs/design.md §2.8): row k = n4 / G, the number of 4-bit groups.
FLEXIQ_HD float const* biasFor(MixedGemmParams const& p, int32_t n4)
{
    return p.bias + static_cast<int64_t>(n4 / p.groupSize) * p.outChannels;
}

//! Tile configurations of the pipelined GEMM (flexiqTileConfig.cuh, PipeTile*).
enum class PipeTileId : int32_t
{
    k128x128 = 0, //!< 4 warps of 64 x 64: large layers (>= one wave of CTAs)
    k128x64 = 1,  //!< 4 warps of 64 x 32: narrow N or under one wave with 128 x 128
    k64x64 = 2,   //!< 4 warps of 32 x 32: small layers
};

//! Pipelined (cp.async + ldmatrix) GEMM: `int4` picks the int4-MMA or the int8-MMA path.
cudaError_t launchPipelinedGemm(
    MixedGemmParams const& p, PipeTileId tileId, bool int4, bool isSigned, cudaStream_t stream);
//! Opts every pipelined kernel into its dynamic shared memory size (some exceed 48 KB); once per device.
cudaError_t preparePipelinedKernels();

//! Dynamic shared memory of one pipelined kernel (bytes).
int32_t pipelinedSmemBytes(PipeTileId tileId, int32_t groupSize);

//! The input type is p.inputType; the GEMMs' output type is p.outType.
cudaError_t launchInputPass(InputPassParams const& p, bool isSigned, cudaStream_t stream);
cudaError_t launchInt4MmaGemm(MixedGemmParams const& p, bool isSigned, cudaStream_t stream);
cudaError_t launchInt8MmaGemm(MixedGemmParams const& p, bool isSigned, cudaStream_t stream);
cudaError_t launchReferenceGemm(MixedGemmParams const& p, bool isSigned, cudaStream_t stream);

} // namespace flexiq

#endif // FLEXIQ_KERNELS_INTERNAL_H
