/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * One place that maps (layer args, problem) onto the kernels' parameter structs, shared by the
 * launcher and the host warp emulator used in tests, so both run the kernels with the same inputs.
 */
#ifndef FLEXIQ_PARAMS_H
#define FLEXIQ_PARAMS_H

#include "flexiqKernelsInternal.h"
#include "flexiqLayerArgs.h"

namespace flexiq
{

//! Input-pass arguments; the caller sets the workspace pointers (codes8, codes4, shiftA: the activation
//! steps) and writeEffective.
InputPassParams makeInputPassParams(FlexiqLayerArgs const& args, FlexiqProblem const& problem);

//! Mixed-GEMM arguments reading the code buffers that `in` describes.
MixedGemmParams makeMixedGemmParams(FlexiqLayerArgs const& args, FlexiqProblem const& problem,
    InputPassParams const& in);

//! The second launch of a workspace-edge output on the first-version and reference kernels: the input pass
//! with the reader's parameters over the INT8 codes `g` stored (g.output, NCHW [B, N, P, Q], already in the
//! reader's channel order: identity permutation), writing the edge planes g.edge.
InputPassParams edgeInputPass(FlexiqLayerArgs const& args, MixedGemmParams const& g, int64_t rowsOut, int32_t outPixels);

} // namespace flexiq

#endif // FLEXIQ_PARAMS_H
