/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * The bit-level rules of the FlexiQ numeric contract (docs/design.md §2), in one place.
 *
 * Both the C++ CPU reference (plugins/reference) and the CUDA kernels (plugins/kernels) call these
 * functions, so the int32 accumulators cannot drift apart. The NumPy oracle is
 * python/flexiq_trt/quantization/bits.py; tests/unit/kernels checks this header against it.
 *
 * Float rules: x / s_a is an IEEE float32 division (never a reciprocal multiply), and no product
 * is contracted into an FMA (device: __fdiv_rn/__fmul_rn/__fadd_rn; host: build with
 * -ffp-contract=off and without -ffast-math).
 */
#ifndef FLEXIQ_CONTRACT_H
#define FLEXIQ_CONTRACT_H

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define FLEXIQ_HD __host__ __device__ __forceinline__
#else
#define FLEXIQ_HD inline
#endif

namespace flexiq
{

constexpr int32_t kMaxShift = 4;       //!< static activation shifts p (step 1 << p)
constexpr int32_t kMaxActStep = 16;    //!< activation steps are 1..16
constexpr int32_t kMaxWeightStep = 16; //!< weight steps step_w are 1..16 (weight_step)
constexpr int32_t kInt8Max = 127;
constexpr int32_t kUint8Max = 255;
constexpr int32_t kMaxKSigned = 131071;  //!< int32 cannot overflow below this K (s8 x s8)
constexpr int32_t kMaxKUnsigned = 66311; //!< u8 x s8 products

//! plugin_spec.Activation
enum class Activation : int32_t
{
    kNONE = 0,
    kRELU = 1,
    kCLIP = 2,
    kHARD_SWISH = 3,
    kSILU = 4,
    kSIGMOID = 5,
    kLEAKY_RELU = 6,
    kHARD_SIGMOID = 7,
    kGELU = 8,
    kTANH = 9,
};
constexpr int32_t kActivationCount = 10;

//! plugin_spec.ShiftMode
enum class ShiftMode : int32_t
{
    kDYNAMIC = 0,
    kSTATIC = 1,
};

// ---- exact float32 arithmetic (no FMA contraction, IEEE division) --------------------------------

FLEXIQ_HD float fdiv(float a, float b)
{
#if defined(__CUDA_ARCH__)
    return __fdiv_rn(a, b);
#else
    return a / b;
#endif
}

FLEXIQ_HD float fmul(float a, float b)
{
#if defined(__CUDA_ARCH__)
    return __fmul_rn(a, b);
#else
    return a * b;
#endif
}

FLEXIQ_HD float fadd(float a, float b)
{
#if defined(__CUDA_ARCH__)
    return __fadd_rn(a, b);
#else
    return a + b;
#endif
}

//! min(max(v, lo), hi) that maps NaN to lo (NumPy would give an undefined int; we pick lo).
FLEXIQ_HD float clampf(float v, float lo, float hi)
{
    return fminf(fmaxf(v, lo), hi);
}

FLEXIQ_HD int32_t clampi(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

// ---- quantization -------------------------------------------------------------------------------

//! Activation code: clamp(round_half_even(x / s_a), -127, 127) (unsigned: [0, 255]).
FLEXIQ_HD int32_t quantizeActivation(float x, float actScale, bool isSigned)
{
    float const q = rintf(fdiv(x, actScale)); // rintf rounds half to even in the default mode
    return isSigned ? static_cast<int32_t>(clampf(q, -127.0f, 127.0f))
                    : static_cast<int32_t>(clampf(q, 0.0f, 255.0f));
}

//! A code read from an INT8 edge tensor (docs/design.md §2.3, "INT8 codes between layers"): signed
//! codes as int8 clamped to [-127, 127] (a foreign -128 cannot break the §2.9 K bound), unsigned
//! codes as the uint8 bit pattern of u in [0, 255].
FLEXIQ_HD int32_t activationCodeFromInt8(int8_t stored, bool isSigned)
{
    return isSigned ? clampi(static_cast<int32_t>(stored), -kInt8Max, kInt8Max)
                    : static_cast<int32_t>(static_cast<uint8_t>(stored));
}

//! The byte an INT8 output stores for the float32 epilogue value y: the consumers' code
//! quantizeActivation(y, outputScale, isSigned), unsigned codes as their low 8 bits.
FLEXIQ_HD uint8_t activationCodeBits(float y, float outputScale, bool isSigned)
{
    return static_cast<uint8_t>(static_cast<uint32_t>(quantizeActivation(y, outputScale, isSigned)) & 0xFFu);
}

//! The value whose group maximum decides the activation step: q ^ (q >> 7) = max(q, -q - 1) for signed
//! codes (the magnitude a two's-complement code needs), u otherwise.
FLEXIQ_HD int32_t magnitudeBits(int32_t code, bool isSigned)
{
    return isSigned ? (code ^ (code >> 7)) : code;
}

// ---- activation steps (docs/design.md §2.5) ------------------------------------------------------
// A 4-bit activation group stands for its 8-bit codes divided by an integer step s in 1..16, one s per
// (row, group): the 4-bit code is c4 = clamp(floor((2q + s) / 2s)) (q / s rounded half up) and the value it
// stands for, the effective code, is c4 * s. The runtime planes shiftA (int8) and factorA (int32) hold s
// (not a shift), and a 4-bit group's partial sum is multiplied by s * step_w[g] (docs/design.md §2.6: one
// integer weight step step_w[g] in 1..16 per channel group, weight w4 * step_w[g]).

//! Dynamic step: the smallest integer s in 1..16 with every truncated code of the group fitting 4 bits,
//! from the group's MAXIMUM m of magnitudeBits (not their OR): m < 8 s (signed) or m < 16 s (unsigned),
//! so s = (m >> 3) + 1 resp. (m >> 4) + 1, at most 16.
FLEXIQ_HD int32_t actStepFromMagnitude(int32_t magMax, bool isSigned)
{
    return clampi((magMax >> (isSigned ? 3 : 4)) + 1, 1, kMaxActStep);
}

//! Static step of a static activation shift p (act_static_shift, 0..4): s = 1 << p.
FLEXIQ_HD int32_t actStepFromShift(int32_t shift)
{
    return 1 << shift;
}

//! Multiplier M of extract4StepMul's floor division by 2 s: floor(2^15 / s) + 1, so M * 2s exceeds 2^16 by
//! e in 1..2s. Formed without an integer divide (one made the G = 64 input pass spill on sm_80/89): RN(1 / s)
//! * 2^15 = RN(2^15 / s), whose truncation is exact (2^15 / s is an integer or at least 1/16 from one).
FLEXIQ_HD int32_t actStepMultiplier(int32_t step)
{
    return static_cast<int32_t>(fmul(fdiv(1.0f, static_cast<float>(step)), 32768.0f)) + 1;
}

//! extract4Step with the group's actStepMultiplier(step) precomputed (the kernels hoist it per group).
//! A floor division without a divide: for 0 <= n < 2048, floor(n / 2s) = (n * M) >> 16 exactly (the
//! multiplier's excess e = M * 2s - 2^16 <= 2s <= 32 gives n e < 2^16). Signed codes add 8
//! steps to the numerator (2q + 17 s; floored at 0, as everything below -8.5 s clamps to -8 anyway) and
//! take 8 off the quotient, so n is never negative; n <= 526 for every code (782 for any q <= 255).
//! tests/cpp/host/flexiqContractTests.cpp checks it against a plain floor division for every q in
//! -128..255 and s in 1..16.
FLEXIQ_HD int32_t extract4StepMul(int32_t code, int32_t step, int32_t mult, bool isSigned)
{
    int32_t const bias = isSigned ? 8 : 0;
    int32_t const n = 2 * code + step + 2 * bias * step;
    int32_t const c = (((n > 0 ? n : 0) * mult) >> 16) - bias;
    return c < (isSigned ? 7 : 15) ? c : (isSigned ? 7 : 15);
}

//! 4-bit code of an 8-bit code at step s in 1..16: clamp(floor((2q + s) / 2s), -8, 7) (unsigned [0, 15]):
//! q / s rounded half up; a top carry saturates. At s = 1 << p it is (q + 2^(p-1)) >> p.
FLEXIQ_HD int32_t extract4Step(int32_t code, int32_t step, bool isSigned)
{
    return extract4StepMul(code, step, actStepMultiplier(step), isSigned);
}

//! The value a 4-bit activation code stands for: extract4Step(q, s) * s, in [-128, 112] (unsigned [0, 240]):
//! still an int8 (uint8) code for the int8 backend's effective-code MMA.
FLEXIQ_HD int32_t effectiveCodeStep(int32_t code, int32_t step, bool isSigned)
{
    return extract4Step(code, step, isSigned) * step;
}

//! Effective weight code w4 * step_w from a stored 4-bit code and its group's weight step step_w in 1..16:
//! in [-128, 112], an int8 code (the int8 backend's effective-weight MMA, the §2.9 bound unchanged).
FLEXIQ_HD int32_t effectiveWeight(int32_t w4, int32_t step)
{
    return w4 * step;
}

//! docs/design.md §2: clamp n4 to [0, C_pad], round down to a multiple of G.
FLEXIQ_HD int32_t clampN4(int32_t n4, int32_t paddedChannels, int32_t groupSize)
{
    int32_t const c = clampi(n4, 0, paddedChannels);
    return (c / groupSize) * groupSize;
}

// ---- int4 nibble packing (plugin_spec.NIBBLE_ORDER = "low_first") -------------------------------

//! Element `index` of a packed int4 array (element 2j in the low nibble), sign-extended if signed.
FLEXIQ_HD int32_t unpackNibble(int8_t const* packed, int64_t index, bool isSigned)
{
    int32_t const byte = static_cast<uint8_t>(packed[index >> 1]);
    int32_t const nib = (index & 1) ? (byte >> 4) : (byte & 0xF);
    return isSigned ? (nib - ((nib & 8) << 1)) : nib;
}

//! Byte holding elements (lo, hi) in low-first order.
FLEXIQ_HD uint8_t packNibbles(int32_t lo, int32_t hi)
{
    return static_cast<uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
}

// ---- epilogue -----------------------------------------------------------------------------------

FLEXIQ_HD float sigmoidf(float y)
{
    return fdiv(1.0f, fadd(1.0f, expf(-y)));
}

//! The fused activation of plugin_spec.Activation, in float32 (reference.apply_activation).
FLEXIQ_HD float applyActivation(float y, int32_t activation, float alpha, float beta)
{
    switch (static_cast<Activation>(activation))
    {
    case Activation::kNONE: return y;
    case Activation::kRELU: return fmaxf(y, 0.0f);
    case Activation::kCLIP: return fminf(fmaxf(y, alpha), beta);
    case Activation::kHARD_SWISH: return fmul(y, clampf(fadd(fdiv(y, 6.0f), 0.5f), 0.0f, 1.0f));
    case Activation::kSILU: return fdiv(y, fadd(1.0f, expf(-y)));
    case Activation::kSIGMOID: return sigmoidf(y);
    case Activation::kLEAKY_RELU: return y >= 0.0f ? y : fmul(alpha, y);
    case Activation::kHARD_SIGMOID: return clampf(fadd(fmul(alpha, y), beta), 0.0f, 1.0f);
    case Activation::kGELU: return fmul(fmul(0.5f, y), fadd(1.0f, erff(fmul(y, 0.70710678118654752f))));
    case Activation::kTANH: return tanhf(y);
    }
    return y;
}

//! y = float(acc) * outScale + bias (two roundings, no FMA), then the activation.
FLEXIQ_HD float epilogue(int32_t acc, float outScale, float bias, int32_t activation, float alpha, float beta)
{
    return applyActivation(fadd(fmul(static_cast<float>(acc), outScale), bias), activation, alpha, beta);
}

} // namespace flexiq

#endif // FLEXIQ_CONTRACT_H
