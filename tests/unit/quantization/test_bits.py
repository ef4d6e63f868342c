"""Exhaustive and golden tests of the bit-level rules (docs/design.md §2)."""

import numpy as np
import pytest

from flexiq_trt.quantization import bits

ALL_INT8 = np.arange(-128, 128, dtype=np.int32)
ALL_CODES = np.arange(-127, 128, dtype=np.int32)
ALL_UINT8 = np.arange(0, 256, dtype=np.int32)


def test_design_worked_example():
    """docs/design.md §2.5's first example: activation step (m >> 3) + 1 = 6 for max magnitude 41."""
    q = np.array([41, -23, 6, -1])
    s = bits.group_step(q)
    assert s == 6
    assert bits.extract4_step(q, s).tolist() == [7, -4, 1, 0]
    assert bits.effective_codes_step(q, s).tolist() == [42, -24, 6, 0]


@pytest.mark.parametrize("codes, step, q4, eff", [
    # m = 127 -> s = 16; (254 + 16) // 32 = 8 saturates to 7; -127: (-254 + 16) // 32 = -8
    ([127, -127, 3, -8], 16, [7, -8, 0, 0], [112, -128, 0, 0]),
    # m = 60 -> s = 8 (60 < 64); a power of two, so the old shift rule at p = 3: (60 + 4) >> 3 = 8 -> 7
    ([60, -60, 4, -4], 8, [7, -7, 1, 0], [56, -56, 8, 0]),
    # m = 23 -> s = 3: 23 -> floor(49 / 6) = 8 -> 7; -23 -> floor(-43 / 6) = -8; 2 -> floor(7 / 6) = 1
    ([23, -23, 2, -1], 3, [7, -8, 1, 0], [21, -24, 3, 0]),
    # all within 4 bits -> s = 1, codes unchanged
    ([7, -8, 0, 5], 1, [7, -8, 0, 5], [7, -8, 0, 5]),
])
def test_hand_worked_step_vectors(codes, step, q4, eff):
    q = np.array(codes)
    assert int(bits.group_step(q)) == step
    assert bits.extract4_step(q, step).tolist() == q4
    assert bits.effective_codes_step(q, step).tolist() == eff


def test_step_rule_every_code():
    """Single-element groups: the step is the smallest integer s whose truncated code floor(q / s) fits 4 bits."""
    for signed, codes, (lo, hi) in ((True, ALL_INT8, (-8, 7)), (False, ALL_UINT8, (0, 15))):
        for q in codes:
            s = int(bits.group_step(np.array([q]), signed))
            assert s == next(t for t in range(1, 17) if lo <= q // t <= hi), (signed, q)


def test_group_step_is_max_of_element_steps():
    rng = np.random.default_rng(0)
    for signed, low, high in ((True, -127, 128), (False, 0, 256)):
        for _ in range(200):
            g = rng.integers(low, high, size=32)
            assert int(bits.group_step(g, signed)) == max(int(bits.group_step(np.array([v]), signed)) for v in g)


def test_extract_step_is_round_half_up_every_code_every_step():
    """floor((2q + s) / 2s) is q / s rounded half up, then clamped; at s = 2^p it is the shift rule (q + 2^(p-1)) >> p."""
    from fractions import Fraction

    for signed, codes, (lo, hi) in ((True, ALL_INT8, (-8, 7)), (False, ALL_UINT8, (0, 15))):
        for s in range(1, 17):
            got = bits.extract4_step(codes, s, signed)
            want = [min(max(int((Fraction(int(q), s) + Fraction(1, 2)) // 1), lo), hi) for q in codes]
            assert got.tolist() == want, (signed, s)
        for p in range(5):
            shifted = np.clip((codes + ((1 << (p - 1)) if p else 0)) >> p, lo, hi)
            assert np.array_equal(bits.extract4_step(codes, 1 << p, signed), shifted)
            assert np.array_equal(bits.extract4(codes, p, signed), shifted)


def test_effective_step_codes_fit_int8():
    """c4 · s stays in the int8 (uint8) range for every code at its own step: the int8 backend can hold it."""
    for signed, codes in ((True, ALL_INT8), (False, ALL_UINT8)):
        eff = bits.effective_codes_step(codes, bits.group_step(codes[:, None], signed, axis=-1), signed)
        assert (eff.min(), eff.max()) >= ((-128, 0) if signed else (0, 0))
        assert eff.max() <= (112 if signed else 240) and eff.min() >= (-128 if signed else 0)


def test_error_bound_of_step_extraction():
    """At the group's own step, |eff - q| <= s / 2, except a saturated top carry (< s)."""
    for signed, codes in ((True, ALL_CODES), (False, ALL_UINT8)):
        for q in codes:
            s = int(bits.group_step(np.array([q]), signed))
            err = abs(int(bits.effective_codes_step(np.array([q]), s, signed)[0]) - int(q))
            assert 2 * err <= s or err < s, (signed, q)


# The weights: one integer step per channel group (docs/design.md §2.6), the same rounding rule.
@pytest.mark.parametrize("codes, step, q4, eff", [
    # hand-worked: 127 at s=16: floor(270 / 32) = 8 -> saturates to 7
    ([127, 0, -1, 3], 16, [7, 0, 0, 0], [112, 0, 0, 0]),
    # -127 at s=16: floor(-238 / 32) = -8; 100: floor(216 / 32) = 6; 17: floor(50 / 32) = 1
    ([-127, 100, 17, -17], 16, [-8, 6, 1, -1], [-128, 96, 16, -16]),
    # s=5 (no power of two): 37 -> floor(79 / 10) = 7, -40 -> floor(-75 / 10) = -8, 12 -> 2, -2 -> 0
    ([37, -40, 12, -2], 5, [7, -8, 2, 0], [35, -40, 10, 0]),
])
def test_hand_worked_weight_step_vectors(codes, step, q4, eff):
    from flexiq_trt.quantization import gptq

    q = np.array([codes])
    got = gptq.at_step(q, step)
    assert got.step == step and got.codes.tolist() == [q4]
    assert got.effective().astype(int).tolist() == [eff]


def test_plain_weight_step_is_smallest_fitting_over_every_row():
    """The plain rule's step fits the largest magnitude of the whole group (all rows share it)."""
    from flexiq_trt.quantization import gptq

    rng = np.random.default_rng(0)
    for _ in range(200):
        w = rng.integers(-127, 128, size=(int(rng.integers(1, 9)), 32))
        w[rng.integers(0, w.shape[0])] //= 8  # rows of very different sizes share the group's step
        s = gptq.smallest_step(w)
        fits = [bool(np.floor_divide(w, t).min() >= -8 and np.floor_divide(w, t).max() <= 7) for t in range(1, 17)]
        assert s == fits.index(True) + 1
    assert gptq.smallest_step(np.zeros((4, 32), np.int32)) == 1


def test_extract_every_code_every_shift_signed():
    """Static activation shifts (docs/design.md §2.7) keep power-of-two steps."""
    for p in range(5):
        q4 = bits.extract4(ALL_INT8, p)
        expect = np.clip((ALL_INT8 + ((1 << (p - 1)) if p else 0)) >> p, -8, 7)
        assert np.array_equal(q4, expect)
        assert q4.min() >= -8 and q4.max() <= 7
        eff = bits.effective_codes_step(ALL_INT8, 1 << p)
        assert eff.min() >= -128 and eff.max() <= 112


def test_extract_every_code_every_shift_unsigned():
    for p in range(5):
        u4 = bits.extract4(ALL_UINT8, p, signed=False)
        expect = np.clip((ALL_UINT8 + ((1 << (p - 1)) if p else 0)) >> p, 0, 15)
        assert np.array_equal(u4, expect)
        assert bits.effective_codes_step(ALL_UINT8, 1 << p, signed=False).max() <= 240


def test_pack_roundtrip_and_nibble_order():
    rng = np.random.default_rng(1)
    c = rng.integers(-8, 8, size=(5, 64))
    packed = bits.pack_int4(c)
    assert packed.dtype == np.int8 and packed.shape == (5, 32)
    assert np.array_equal(bits.unpack_int4(packed), c)
    # element 0 in the low nibble, element 1 in the high nibble
    assert bits.pack_int4(np.array([1, -2])).view(np.uint8).tolist() == [0xE1]


def test_quantize_activation_round_half_even_and_clamp():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 1000.0, -1000.0], dtype=np.float32)
    assert bits.quantize_activation(x, 1.0).tolist() == [0, 2, 2, 0, -2, 127, -127]
    assert bits.quantize_activation(x, 1.0, signed=False).tolist() == [0, 2, 2, 0, 0, 255, 0]
