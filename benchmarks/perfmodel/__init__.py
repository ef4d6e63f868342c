"""Static ("predicted") performance model of the FlexiQ kernels and the first-GPU check helpers.

Modules: `hardware` (published per-GPU rates), `sass` (cuobjdump parsing, main-loop instruction
mix), `kernels` (the hot kernels and their tile shapes, read from the repository), `layers`
(benchmark layer shapes and whole-model layer lists), `model` (cycles per K-step, latency per
layer and ratio, roofline) and `abi` (the kernel C ABI on device pointers, for GPU timing).
Nothing here measures anything; every figure it prints is labelled "predicted".
"""
