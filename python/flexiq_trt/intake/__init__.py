"""Model intake: load and check the ONNX file, normalise it, and find the FlexiQ-eligible layers."""

from flexiq_trt.intake.eligibility import EligibleLayer, SkippedLayer, find_layers
from flexiq_trt.intake.load import load_model
from flexiq_trt.intake.prepare import prepare_model

__all__ = ["EligibleLayer", "SkippedLayer", "find_layers", "load_model", "prepare_model"]
