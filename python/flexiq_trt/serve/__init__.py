"""Serving: latency profiles, the load-adaptive ratio controller, its simulation, Triton repositories.

Pure Python apart from the Triton front model's calls into Triton; nothing here needs a GPU
(docs/serving.md).
"""
