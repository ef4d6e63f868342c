"""Conversion settings shared by tests that are not about a particular stage.

Block rounding runs by default wherever PyTorch is installed (the test environment has it); the
tests of other stages turn it off so that they test what they name and stay fast. Its own tests
(tests/unit/finetune/test_block_rounding_fmnist.py) and the README's default job keep it on.
"""

from __future__ import annotations

from flexiq_trt.finetune.config import BlockRoundingConfig, RefineConfig

NO_BLOCK_ROUNDING = RefineConfig(block_rounding=BlockRoundingConfig(enabled=False))
NO_BLOCK_ROUNDING_FLAG = "--no-block-rounding"
