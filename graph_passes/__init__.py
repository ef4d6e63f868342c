"""Graph passes: one pass per module, each returning replacement descriptions (see `rewrite`).

Installed as ``flexiq_trt.graph_passes`` (pyproject ``package-dir``).
"""
