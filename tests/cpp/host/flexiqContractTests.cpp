/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * Host tests of the activation-step rules of the numeric contract (docs/design.md §2.5,
 * plugins/common/flexiqContract.h), exhaustively and against independent plain-integer definitions:
 *   (a) extract4Step is clamp(floor((2q + s) / 2s)) for every q in -128..255 and step s in 1..16, both
 *       signednesses (the header's divide-free multiply-shift against a floor division written out here);
 *   (b) at s = 1 << p it is the power-of-two rule (q + 2^(p-1)) >> p, at s = 1 it is the code itself;
 *   (c) effective codes c4 * s fit int8 (uint8) and give back the same 4-bit code (workspace edges);
 *   (d) actStepFromMagnitude is the smallest step at which every truncated code fits 4 bits;
 *   (e) the CPU reference's input pass takes the group's maximum magnitude (not the OR) and the static
 *       table's 1 << p, and the hand-worked vectors.
 * Built into flexiq_host_tests, so it also runs under ASan + UBSan (build-asan).
 */
#include "flexiqContract.h"
#include "flexiqCpuReference.h"
#include "flexiqTestHarness.h"

#include <cstdint>
#include <string>
#include <vector>

namespace
{

//! floor(a / b) for b > 0, written out (C++ integer division truncates toward zero).
int32_t floorDiv(int32_t a, int32_t b)
{
    int32_t const q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

int32_t clamp4(int32_t v, bool isSigned)
{
    int32_t const lo = isSigned ? -8 : 0;
    int32_t const hi = isSigned ? 7 : 15;
    return v < lo ? lo : (v > hi ? hi : v);
}

std::string ctx(int32_t q, int32_t s, bool isSigned)
{
    return "q " + std::to_string(q) + " s " + std::to_string(s) + (isSigned ? " signed" : " unsigned");
}

//! The CPU reference's input pass over one gemm row of `codes` (actScale 1: x = code), G = 32: the steps.
std::vector<int32_t> referenceSteps(std::vector<int32_t> const& codes, bool isSigned, int32_t shiftMode,
    std::vector<int8_t> const& staticShift)
{
    int32_t const cPad = static_cast<int32_t>(codes.size());
    std::vector<int32_t> perm(static_cast<size_t>(cPad));
    std::vector<float> x(static_cast<size_t>(cPad));
    for (int32_t c = 0; c < cPad; ++c)
    {
        perm[c] = c;
        x[c] = static_cast<float>(codes[c]);
    }
    FlexiqLayerArgs a{};
    a.inChannels = cPad;
    a.paddedChannels = cPad;
    a.groupSize = 32;
    a.actScale = 1.0F;
    a.actSigned = isSigned ? 1 : 0;
    a.actShiftMode = shiftMode;
    a.permutation = perm.data();
    a.actStaticShift = staticShift.data();
    std::vector<int32_t> q(static_cast<size_t>(cPad));
    std::vector<int32_t> steps(static_cast<size_t>(cPad / 32));
    flexiq::cpuQuantizeInput(a, 1, 1, 1, kFLEXIQ_FP32, x.data(), q.data(), steps.data());
    for (int32_t c = 0; c < cPad; ++c)
        CHECK_CTX(q[c] == codes[c], "the input pass kept code " + std::to_string(codes[c]));
    return steps;
}

} // namespace

TEST_CASE(extract4StepIsARoundHalfUpFloorDivisionForEveryCodeAndStep)
{
    int32_t bad = 0;
    for (bool isSigned : {true, false})
        for (int32_t s = 1; s <= flexiq::kMaxActStep; ++s)
        {
            int32_t const mult = flexiq::actStepMultiplier(s);
            for (int32_t q = -128; q <= 255; ++q)
            {
                int32_t const want = clamp4(floorDiv(2 * q + s, 2 * s), isSigned);
                int32_t const got = flexiq::extract4Step(q, s, isSigned);
                int32_t const gotMul = flexiq::extract4StepMul(q, s, mult, isSigned);
                int32_t const eff = flexiq::effectiveCodeStep(q, s, isSigned);
                bool const ok = got == want && gotMul == want && eff == want * s;
                if (!ok && ++bad <= 10)
                    CHECK_CTX(ok, ctx(q, s, isSigned) + " want " + std::to_string(want) + " got "
                            + std::to_string(got) + " / " + std::to_string(gotMul) + " eff " + std::to_string(eff));
            }
        }
    CHECK_CTX(bad == 0, std::to_string(bad) + " mismatches");
}

TEST_CASE(stepMultiplierIsTheIntegerFormula)
{
    for (int32_t s = 1; s <= flexiq::kMaxActStep; ++s)
    {
        int32_t const m = flexiq::actStepMultiplier(s);
        int32_t const excess = m * 2 * s - 65536;
        CHECK_CTX(m == 32768 / s + 1 && excess > 0 && excess <= 2 * s, "s " + std::to_string(s));
    }
}

TEST_CASE(powerOfTwoStepsAreTheShiftRuleAndStepOneIsTheCode)
{
    int32_t bad = 0;
    for (bool isSigned : {true, false})
        for (int32_t q = isSigned ? -128 : 0; q <= (isSigned ? 127 : 255); ++q)
        {
            for (int32_t p = 0; p <= flexiq::kMaxShift; ++p)
            {
                int32_t const s = flexiq::actStepFromShift(p);
                int32_t const half = p > 0 ? (1 << (p - 1)) : 0;
                int32_t const want = clamp4((q + half) >> p, isSigned); // arithmetic shift: floor
                bool const ok = s == (1 << p) && flexiq::extract4Step(q, s, isSigned) == want
                    && flexiq::effectiveCodeStep(q, s, isSigned) == want * (1 << p);
                if (!ok && ++bad <= 10)
                    CHECK_CTX(ok, ctx(q, s, isSigned));
            }
            bool const ok1 = flexiq::extract4Step(q, 1, isSigned) == clamp4(q, isSigned);
            if (!ok1 && ++bad <= 10)
                CHECK_CTX(ok1, ctx(q, 1, isSigned));
        }
    CHECK_CTX(bad == 0, std::to_string(bad) + " mismatches");
}

TEST_CASE(effectiveCodesFitEightBitsAndGiveBackTheirFourBitCode)
{
    int32_t bad = 0;
    for (bool isSigned : {true, false})
        for (int32_t s = 1; s <= flexiq::kMaxActStep; ++s)
            for (int32_t q = isSigned ? -127 : 0; q <= (isSigned ? 127 : 255); ++q)
            {
                int32_t const eff = flexiq::effectiveCodeStep(q, s, isSigned);
                bool const fits = isSigned ? (eff >= -128 && eff <= 112) : (eff >= 0 && eff <= 240);
                // A workspace edge stores the effective code as one byte; the reader reads it back as a code.
                int32_t const back = isSigned ? static_cast<int32_t>(static_cast<int8_t>(eff & 0xFF))
                                              : static_cast<int32_t>(static_cast<uint8_t>(eff & 0xFF));
                bool const ok = fits && back == eff
                    && flexiq::extract4Step(eff, s, isSigned) == flexiq::extract4Step(q, s, isSigned);
                if (!ok && ++bad <= 10)
                    CHECK_CTX(ok, ctx(q, s, isSigned) + " eff " + std::to_string(eff));
            }
    CHECK_CTX(bad == 0, std::to_string(bad) + " mismatches");
}

TEST_CASE(actStepIsTheSmallestStepAtWhichEveryTruncatedCodeFits)
{
    int32_t bad = 0;
    for (bool isSigned : {true, false})
    {
        // From the magnitude: m < 8 s (signed) / 16 s (unsigned), and not at s - 1.
        int32_t const per = isSigned ? 8 : 16;
        for (int32_t m = 0; m <= (isSigned ? 127 : 255); ++m)
        {
            int32_t const s = flexiq::actStepFromMagnitude(m, isSigned);
            bool const ok = s >= 1 && s <= flexiq::kMaxActStep && m < per * s && (s == 1 || m >= per * (s - 1));
            if (!ok && ++bad <= 10)
                CHECK_CTX(ok, "m " + std::to_string(m) + " s " + std::to_string(s));
        }
        // From the codes: floor(q / s) fits 4 bits at the step of q's own magnitude, floor(q / (s - 1)) does not.
        for (int32_t q = isSigned ? -128 : 0; q <= (isSigned ? 127 : 255); ++q)
        {
            int32_t const s = flexiq::actStepFromMagnitude(flexiq::magnitudeBits(q, isSigned), isSigned);
            int32_t const t = floorDiv(q, s);
            bool ok = t == clamp4(t, isSigned);
            if (s > 1)
                ok = ok && floorDiv(q, s - 1) != clamp4(floorDiv(q, s - 1), isSigned);
            if (!ok && ++bad <= 10)
                CHECK_CTX(ok, ctx(q, s, isSigned));
        }
    }
    CHECK(flexiq::actStepFromMagnitude(127, true) == 16);
    CHECK(flexiq::actStepFromMagnitude(255, false) == 16);
    CHECK(flexiq::actStepFromMagnitude(7, true) == 1 && flexiq::actStepFromMagnitude(8, true) == 2);
    CHECK(flexiq::actStepFromMagnitude(15, false) == 1 && flexiq::actStepFromMagnitude(16, false) == 2);
    CHECK_CTX(bad == 0, std::to_string(bad) + " mismatches");
}

TEST_CASE(groupStepTakesTheMaximumMagnitudeAndTheStaticTable)
{
    // Group 0: {64, 63}: the maximum 64 gives s = 9; their OR (127) would give 16.
    // Group 1: the worked example {45, -23, 6, -1}: magnitudes 45, 22, 6, 0 -> s = 45 / 8 + 1 = 6,
    //          4-bit codes [7 (45 / 6 = 7.5 rounds up to 8, saturates), -4, 1, 0], effective [42, -24, 6, 0].
    // Group 2: a group whose maximum is 65: s = 9, codes up to 7 (a power of two: step 16, codes up to 4).
    // Group 3: {-127}: magnitude 126 -> s = 16.
    std::vector<int32_t> codes(4 * 32, 0);
    codes[0] = 64;
    codes[1] = 63;
    int32_t const worked[4] = {45, -23, 6, -1};
    for (int32_t i = 0; i < 4; ++i)
        codes[32 + i] = worked[i];
    codes[64] = 65;
    codes[65] = -40;
    codes[96] = -127;
    std::vector<int8_t> const noTable(4, 0);
    std::vector<int32_t> const steps = referenceSteps(codes, true, 0, noTable);
    CHECK(steps == (std::vector<int32_t>{9, 6, 9, 16}));
    int32_t const want4[4] = {7, -4, 1, 0};
    int32_t const wantEff[4] = {42, -24, 6, 0};
    for (int32_t i = 0; i < 4; ++i)
    {
        CHECK_CTX(flexiq::extract4Step(worked[i], 6, true) == want4[i], std::to_string(worked[i]));
        CHECK_CTX(flexiq::effectiveCodeStep(worked[i], 6, true) == wantEff[i], std::to_string(worked[i]));
    }
    CHECK(flexiq::extract4Step(65, 9, true) == 7 && flexiq::extract4Step(-40, 9, true) == -4);
    CHECK(flexiq::extract4Step(65, 16, true) == 4); // the power-of-two step it replaces
    CHECK(flexiq::extract4Step(127, 16, true) == 7 && flexiq::effectiveCodeStep(-127, 16, true) == -128);
    // Unsigned: {200, 31}: maximum 200 -> s = 200 / 16 + 1 = 13, 200 / 13 = 15.4 -> 15.
    std::vector<int32_t> ucodes(32, 0);
    ucodes[0] = 200;
    ucodes[1] = 31;
    CHECK(referenceSteps(ucodes, false, 0, noTable) == (std::vector<int32_t>{13}));
    CHECK(flexiq::extract4Step(200, 13, false) == 15 && flexiq::extract4Step(31, 13, false) == 2);
    // Static mode: s = 1 << act_static_shift[g], whatever the codes.
    std::vector<int8_t> const table{0, 3, 4, 1};
    CHECK(referenceSteps(codes, true, 1, table) == (std::vector<int32_t>{1, 8, 16, 2}));
}
