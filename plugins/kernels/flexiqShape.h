/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * Geometry and argument checks shared by the CUDA launchers and the C++ CPU reference (host only,
 * no CUDA dependency). A gemm is a 1x1 conv over an NCHW tensor with B = M and H = W = 1, so every
 * backend has exactly one code path.
 */
#ifndef FLEXIQ_SHAPE_H
#define FLEXIQ_SHAPE_H

#include "flexiqContract.h" // kMaxKSigned / kMaxKUnsigned
#include "flexiqLayerArgs.h"

#include <cstddef>
#include <cstdint>

namespace flexiq
{

//! Conv geometry with the gemm case normalised to a 1x1 conv.
struct ConvGeometry
{
    int32_t r, s, strideH, strideW, padTop, padLeft, padBottom, padRight, dilationH, dilationW;
};

//! Geometry of a layer (gemm: R = S = 1, unit strides and dilations, no padding).
ConvGeometry layerGeometry(FlexiqLayerArgs const& args);

//! Output spatial size; gemm: 1 x 1. Non-positive when the input is too small.
void outputSize(ConvGeometry const& geo, int32_t height, int32_t width, int32_t* outH, int32_t* outW);

//! K = R * S * C_pad.
int64_t reductionLength(FlexiqLayerArgs const& args);

//! The int8 backends' effective weights w_eff[n, k] = effectiveWeight(w4[n, k], step_w[g(k)]) as int8 [N, K]
//! (k = tap * C_pad + c, g(k) = c / G; in [-128, 112]), from `args`' host arrays weightInt4 (packed) and
//! weightStep into `out` (N * K bytes). Weight-only data: made once with the device weights, so the int8
//! pipelined kernel copies a 4-bit K-tile's B exactly as an 8-bit one (no expansion in the hot loop).
void makeEffectiveWeights(FlexiqLayerArgs const& args, int8_t* out);

//! Checks fields a backend relies on; writes a reason into `why` (may be null) and returns false on failure.
bool checkLayerArgs(FlexiqLayerArgs const& args, char* why, size_t whyLen);

//! Checks a problem (positive sizes, non-empty output, non-null pointers, input/output types; an
//! INT8 output needs the layer's outputScale > 0) against a valid layer.
bool checkProblem(FlexiqLayerArgs const& args, FlexiqProblem const& problem, char* why, size_t whyLen);

} // namespace flexiq

#endif // FLEXIQ_SHAPE_H
