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

constexpr int32_t kMaxShift = 4;
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

//! The value whose bit length decides the shift: q ^ (q >> 7) for signed codes, u otherwise.
FLEXIQ_HD int32_t magnitudeBits(int32_t code, bool isSigned)
{
    return isSigned ? (code ^ (code >> 7)) : code;
}

//! Bit length of a non-negative value below 2^16.
FLEXIQ_HD int32_t bitLength(int32_t v)
{
#if defined(__CUDA_ARCH__)
    return 32 - __clz(v);
#else
    int32_t n = 0;
    while (n < 31 && (v >> n) != 0)
    {
        ++n;
    }
    return n;
#endif
}

//! Smallest p in 0..4 with every truncated code fitting 4 bits, from the OR of magnitudeBits.
FLEXIQ_HD int32_t shiftFromMagnitude(int32_t magOr, bool isSigned)
{
    int32_t const p = bitLength(magOr) - (isSigned ? 3 : 4);
    return clampi(p, 0, kMaxShift);
}

//! 4-bit code of an 8-bit code at shift p: (q + 2^(p-1)) >> p (round half up), clamped.
FLEXIQ_HD int32_t extract4(int32_t code, int32_t shift, bool isSigned)
{
    int32_t const half = shift > 0 ? (1 << (shift - 1)) : 0;
    int32_t const v = (code + half) >> shift; // arithmetic shift (floor) on every target we build
    return isSigned ? clampi(v, -8, 7) : clampi(v, 0, 15);
}

//! The value a 4-bit code stands for: extract4(q, p) << p, in [-128, 112] (unsigned [0, 240]).
FLEXIQ_HD int32_t effectiveCode(int32_t code, int32_t shift, bool isSigned)
{
    return extract4(code, shift, isSigned) * (1 << shift); // multiply: << of a negative is UB pre-C++20
}

//! Effective weight code w4 << p_w from a stored 4-bit code and shift.
FLEXIQ_HD int32_t effectiveWeight(int32_t w4, int32_t shift)
{
    return w4 * (1 << shift);
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
