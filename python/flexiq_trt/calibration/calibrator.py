"""The calibrator: attach observers to tensors, collect over a reader, compute thresholds and scales.

Lifecycle (ORT ``CalibraterBase`` shape, with explicit steps):

    cal = Calibrator(model, config)
    cal.attach("conv1_in", channel_axis=1)              # default observers (+ per-channel ranges)
    cal.attach("fc_in", observers={"hessian": MyObs()}) # plus any Observer of one's own
    cal.collect(reader)                                  # streams batches through ONNX Runtime (CPU)
    result = cal.compute()                               # CalibrationResult

Every batch's intermediate outputs are folded into the observers and dropped before the next
batch, so memory is bounded by one batch of the observed tensors (``tensors_per_pass`` bounds
it further by splitting the tensors over several passes of the data).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from flexiq_trt.calibration.config import CalibConfig
from flexiq_trt.calibration.model_io import ModelLike, load_model
from flexiq_trt.calibration.observers import (
    AbsHistogramObserver,
    ChannelRangeObserver,
    Observer,
    RangeObserver,
)
from flexiq_trt.calibration.readers.base import CalibrationReader, batch_length
from flexiq_trt.calibration.result import CalibrationResult, TensorCalibration
from flexiq_trt.calibration.scales import choose_threshold
from flexiq_trt.calibration.session import create_session, run_model
from flexiq_trt.errors import FlexiqInternalError
from flexiq_trt.log import get_logger

_log = get_logger(__name__)
RANGE, HISTOGRAM, CHANNELS = "range", "histogram", "channels"


@dataclass
class _Watch:
    """The observers of one tensor."""

    range: RangeObserver
    histogram: AbsHistogramObserver
    channels: ChannelRangeObserver | None = None
    extra: dict[str, Observer] = field(default_factory=dict)

    def all(self) -> list[Observer]:
        observers: list[Observer] = [self.range, self.histogram]
        if self.channels is not None:
            observers.append(self.channels)
        return observers + list(self.extra.values())


class Calibrator:
    """Collects activation statistics of a (prepared) FP32 model and turns them into scales."""

    def __init__(self, model: ModelLike, config: CalibConfig | None = None, *, threads: int = 0) -> None:
        self.model = load_model(model)
        self.config = config or CalibConfig()
        self.threads = threads
        self._watches: dict[str, _Watch] = {}
        self._samples = 0
        self._batches = 0
        self._sources: list[str] = []
        self._synthetic = False

    @property
    def tensors(self) -> tuple[str, ...]:
        """Names of the attached tensors, in attach order."""
        return tuple(self._watches)

    def attach(
        self, tensor: str, *, channel_axis: int | None = None, observers: Mapping[str, Observer] | None = None
    ) -> None:
        """Observe ``tensor`` with the default observers plus optional ones.

        Range and |x| histogram are always kept; per-channel ranges along ``channel_axis`` if given;
        extra ``observers`` put their results in ``TensorCalibration.extra`` under their key.
        Attaching the same tensor again adds to its observers.
        """
        if self._batches:
            raise FlexiqInternalError(f"attach('{tensor}') after collect(): its statistics would be partial")
        watch = self._watches.get(tensor)
        if watch is None:
            watch = _Watch(RangeObserver(), AbsHistogramObserver(self.config.num_bins))
            self._watches[tensor] = watch
        if channel_axis is not None:
            watch.channels = ChannelRangeObserver(channel_axis, tensor)
        for key, observer in (observers or {}).items():
            if not isinstance(observer, Observer):
                raise FlexiqInternalError(f"observer '{key}' for '{tensor}' lacks update()/result()")
            watch.extra[key] = observer

    def attach_all(self, tensors: Iterable[str], channel_axes: Mapping[str, int] | None = None) -> None:
        """Attach default observers to every tensor, with per-channel ranges where an axis is given."""
        for tensor in tensors:
            self.attach(tensor, channel_axis=(channel_axes or {}).get(tensor))

    def collect(self, reader: CalibrationReader) -> None:
        """Run the model over every batch of ``reader`` and feed the observers; may be called repeatedly."""
        if not self._watches:
            raise FlexiqInternalError("collect() with no tensor attached")
        names = list(self._watches)
        per_pass = self.config.tensors_per_pass or len(names)
        chunks = [names[i : i + per_pass] for i in range(0, len(names), per_pass)]
        for number, chunk in enumerate(chunks):
            self._one_pass(reader, chunk, count=number == 0, desc=_pass_desc(number, len(chunks)))
        self._sources.append(getattr(reader, "source", type(reader).__name__))
        self._synthetic = self._synthetic or bool(getattr(reader, "synthetic", False))

    def _one_pass(self, reader: CalibrationReader, names: list[str], count: bool, desc: str) -> None:
        session = create_session(self.model, names, self.threads)
        counted = _CountingReader(reader)
        for outputs in run_model(self.model, counted, names, session=session, desc=desc):
            for name in names:
                for observer in self._watches[name].all():
                    observer.update(outputs[name])
        if count:
            self._samples += counted.samples
            self._batches += counted.batches

    def compute(self, method: str | None = None) -> CalibrationResult:
        """Thresholds and scales by ``method`` (default: the config's), from what was collected."""
        if not self._batches:
            raise FlexiqInternalError("compute() before collect()")
        method = method or self.config.method
        tensors = {name: self._tensor_result(name, watch, method) for name, watch in self._watches.items()}
        if self._synthetic:
            _log.warning("calibration used synthetic data: scales will not match real inputs")
        return CalibrationResult(
            tensors=tensors,
            method=method,
            num_samples=self._samples,
            num_batches=self._batches,
            source=", ".join(dict.fromkeys(self._sources)),
            synthetic=self._synthetic,
        )

    def _tensor_result(self, name: str, watch: _Watch, method: str) -> TensorCalibration:
        value_range = watch.range.result()
        histogram = watch.histogram.result()
        if value_range.nonfinite:
            _log.warning("tensor '%s': %d NaN/Inf value(s) ignored", name, value_range.nonfinite)
        if value_range.absmax == 0.0:
            _log.warning("tensor '%s': every calibration value is 0; its scale is arbitrary", name)
        pct = self.config.percentile
        signed = choose_threshold(method, histogram, value_range.absmax, True, pct)
        unsigned = None
        if value_range.nonnegative:
            unsigned = choose_threshold(method, histogram, value_range.absmax, False, pct)
        return TensorCalibration(
            name=name,
            range=value_range,
            histogram=histogram,
            method=method,
            threshold_signed=signed,
            threshold_unsigned=unsigned,
            channels=watch.channels.result() if watch.channels is not None else None,
            extra={key: observer.result() for key, observer in watch.extra.items()},
        )


class _CountingReader:
    """Wraps a reader to count the batches and samples (axis 0 of the feed) of one pass."""

    def __init__(self, reader: CalibrationReader) -> None:
        self.reader = reader
        self.source = getattr(reader, "source", type(reader).__name__)
        self.samples = 0
        self.batches = 0

    def num_batches(self) -> int | None:
        """The wrapped reader's count, if it knows one."""
        count = getattr(self.reader, "num_batches", None)
        return count() if callable(count) else None

    def get_next(self):
        """Next feed of the wrapped reader, counted."""
        feed = self.reader.get_next()
        if feed is not None:
            self.samples += batch_length(feed)
            self.batches += 1
        return feed

    def rewind(self) -> None:
        """Rewind the wrapped reader and the counts."""
        self.reader.rewind()
        self.samples = 0
        self.batches = 0


def _pass_desc(number: int, total: int) -> str:
    return "calibrate" if total == 1 else f"calibrate (pass {number + 1}/{total})"


def calibrate(
    model: ModelLike,
    reader: CalibrationReader,
    tensors: Iterable[str],
    config: CalibConfig | None = None,
    channel_axes: Mapping[str, int] | None = None,
) -> CalibrationResult:
    """One-call convenience: attach default observers to ``tensors``, collect, compute."""
    calibrator = Calibrator(model, config)
    calibrator.attach_all(tensors, channel_axes)
    calibrator.collect(reader)
    return calibrator.compute()
