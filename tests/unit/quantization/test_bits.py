"""Exhaustive and golden tests of the bit-level rules (docs/design.md §2)."""

import numpy as np
import pytest

from flexiq_trt.quantization import bits

ALL_INT8 = np.arange(-128, 128, dtype=np.int32)
ALL_CODES = np.arange(-127, 128, dtype=np.int32)
ALL_UINT8 = np.arange(0, 256, dtype=np.int32)


def test_design_worked_example():
    q = np.array([45, -23, 6, -1])
    p = bits.group_shift(q)
    assert p == 3
    assert bits.extract4(q, p).tolist() == [6, -3, 1, 0]
    assert bits.effective_codes(q, p).tolist() == [48, -24, 8, 0]


@pytest.mark.parametrize("codes, shift, q4, eff", [
    # hand-worked: 127 -> p=4 (127>>3=15 too big), (127+8)>>4 = 8 -> saturates to 7
    ([127, 0, -1, 3], 4, [7, 0, 0, 0], [112, 0, 0, 0]),
    # -128 is reachable only through effective codes; -127 at p=4: (-127+8)>>4 = -119>>4 = -8
    # 17: (17+8)>>4 = 1;  -17: (-17+8)>>4 = -9>>4 = -1
    ([-127, 100, 17, -17], 4, [-8, 6, 1, -1], [-128, 96, 16, -16]),
    # all within 4 bits -> p=0, codes unchanged
    ([7, -8, 0, 5], 0, [7, -8, 0, 5], [7, -8, 0, 5]),
    # 8 needs p=1: (8+1)>>1=4, (-9+1)>>1=-4, (3+1)>>1=2, (-2+1)>>1=-1
    ([8, -9, 3, -2], 1, [4, -4, 2, -1], [8, -8, 4, -2]),
])
def test_hand_worked_vectors(codes, shift, q4, eff):
    q = np.array(codes)
    assert int(bits.group_shift(q)) == shift
    assert bits.extract4(q, shift).tolist() == q4
    assert bits.effective_codes(q, shift).tolist() == eff


def test_all_zero_group_has_shift_zero():
    assert bits.group_shift(np.zeros(32, dtype=np.int32)) == 0
    assert bits.group_shift(np.zeros(32, dtype=np.int32), signed=False) == 0


def test_shift_rule_every_code_signed():
    """Single-element groups: the shift is the smallest p whose truncated code fits [-8, 7]."""
    for q in ALL_INT8:
        p = int(bits.group_shift(np.array([q])))
        fits = [(-8 <= (q >> s) <= 7) for s in range(5)]
        assert p == fits.index(True), q
        assert 0 <= p <= 4


def test_shift_rule_every_code_unsigned():
    for u in ALL_UINT8:
        p = int(bits.group_shift(np.array([u]), signed=False))
        assert p == [(u >> s) <= 15 for s in range(5)].index(True), u


def test_group_shift_is_max_of_element_shifts():
    rng = np.random.default_rng(0)
    for _ in range(200):
        g = rng.integers(-127, 128, size=32)
        per = [int(bits.group_shift(np.array([v]))) for v in g]
        assert int(bits.group_shift(g)) == max(per)
        assert bits.group_shift(g) == max(0, int(np.bitwise_or.reduce(g ^ (g >> 7))).bit_length() - 3)


def test_extract_every_code_every_shift_signed():
    for p in range(5):
        q4 = bits.extract4(ALL_INT8, p)
        expect = np.clip((ALL_INT8 + ((1 << (p - 1)) if p else 0)) >> p, -8, 7)
        assert np.array_equal(q4, expect)
        assert q4.min() >= -8 and q4.max() <= 7
        eff = bits.effective_codes(ALL_INT8, p)
        assert eff.min() >= -128 and eff.max() <= 112


def test_extract_every_code_every_shift_unsigned():
    for p in range(5):
        u4 = bits.extract4(ALL_UINT8, p, signed=False)
        expect = np.clip((ALL_UINT8 + ((1 << (p - 1)) if p else 0)) >> p, 0, 15)
        assert np.array_equal(u4, expect)
        assert bits.effective_codes(ALL_UINT8, p, signed=False).max() <= 240


def test_error_bound_of_extraction():
    """At the group's own (smallest) shift, |eff - q| <= 2^(p-1), except the top carry which saturates."""
    for q in ALL_CODES:
        p = int(bits.group_shift(np.array([q])))
        err = abs(int(bits.effective_codes(np.array([q]), p)[0]) - int(q))
        bound = (1 << (p - 1)) if p else 0
        # a top carry (e.g. 127 at p=4 -> 112) loses at most 2^p - 1
        assert err <= bound or err <= (1 << p) - 1
        if p == 0:
            assert err == 0


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
