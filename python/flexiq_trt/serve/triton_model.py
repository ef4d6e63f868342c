"""Triton Python-backend front model: picks each batch's ratio and runs the engine model through BLS.

`flexiq-trt triton` copies this file as ``<model>/1/model.py`` next to a vendored copy of the few
pure-Python flexiq_trt modules it needs (ratio table, controller), so the Triton host needs only
NumPy. Per batch that Triton's dynamic batcher hands over:

- requests carrying ``FLEXIQ_RATIO`` run at that ratio (an explicit per-request control);
- the others run at the controller's choice (when the repository has a latency profile) or at
  the configured default ratio;
- each group of requests sharing a ratio becomes one BLS request to the TensorRT model, whose
  ``flexiq_max_4bit_ch`` input gets that ratio's int32 [L] vector from the ratio table.

Triton gives a Python model no arrival times, so the controller sees the batch with the oldest
arrival estimated conservatively (docs/serving.md, "Triton"), and no backlog.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

RATIO_INPUT = "FLEXIQ_RATIO"
RATIO_OUTPUT = "FLEXIQ_RATIO_USED"
RUNTIME_INPUT = "flexiq_max_4bit_ch"


def _pb_utils() -> Any:
    """Triton's Python-backend API (only importable inside Triton's stub process)."""
    import triton_python_backend_utils as pb_utils

    return pb_utils


class TritonPythonModel:
    """The front model Triton instantiates once per instance."""

    def initialize(self, args: dict[str, str]) -> None:
        """Read the config parameters, the ratio table, and (optionally) build the controller."""
        here = Path(__file__).resolve().parent
        if str(here) not in sys.path:
            sys.path.insert(0, str(here))  # the vendored flexiq_trt next to this file
        from flexiq_trt.ratios import check_ratio, load_ratio_table
        from flexiq_trt.serve.accuracy import AccuracyTable
        from flexiq_trt.serve.controller import ControllerConfig, SlackController
        from flexiq_trt.serve.profile import load_latency_profile

        self.pb = _pb_utils()
        config = json.loads(args["model_config"])
        params = {k: v.get("string_value", "") for k, v in config.get("parameters", {}).items()}
        model_dir = here.parent
        self.engine_model = params["engine_model"]
        self.table = load_ratio_table(model_dir / params["ratio_table"])
        self.default_ratio = check_ratio(float(params.get("default_ratio", "0")))
        self.inputs = [i["name"] for i in config["input"] if i["name"] != RATIO_INPUT]
        self.outputs = [o["name"] for o in config["output"] if o["name"] != RATIO_OUTPUT]
        delay_us = float(config.get("dynamic_batching", {}).get("max_queue_delay_microseconds", 0))
        self.max_queue_delay_ms = delay_us / 1000.0
        self.max_batch = int(config.get("max_batch_size", 0))
        self._vectors: dict[float, np.ndarray] = {}
        self._check_ratio = check_ratio
        self.controller = None
        if params.get("latency_profile"):
            accuracy = AccuracyTable.from_dict(json.loads((model_dir / params["accuracy"]).read_text()),
                                               params["accuracy"])
            ratios = tuple(float(r) for r in params.get("ratios", "").split()) or ()
            cfg = ControllerConfig(slo_ms=float(params["slo_ms"]), ratios=ratios,
                                   safety_ms=float(params.get("safety_ms", 1.0)),
                                   upgrade_margin_ms=float(params.get("upgrade_margin_ms", 5.0)),
                                   upgrade_hold_ms=float(params.get("upgrade_hold_ms", 250.0)))
            self.controller = SlackController(load_latency_profile(model_dir / params["latency_profile"]),
                                              accuracy, cfg)
        self._last_start_ms = -np.inf
        self._last_end_ms = -np.inf

    def vector(self, ratio: float) -> np.ndarray:
        """The engine's int32 [L] input for `ratio` (memoised: a handful of ratios are ever used)."""
        if ratio not in self._vectors:
            self._vectors[ratio] = self.table.vector(self._check_ratio(ratio))
        return self._vectors[ratio]

    def oldest_arrival_ms(self, now_ms: float) -> float:
        """Conservative arrival estimate of the batch's oldest request (Triton does not pass it).

        After an idle gap longer than the queue delay, the batcher waited at most that delay;
        otherwise the request may have queued since the previous batch started.
        """
        if now_ms - self._last_end_ms > self.max_queue_delay_ms:
            return now_ms - self.max_queue_delay_ms
        return min(self._last_start_ms, now_ms - self.max_queue_delay_ms)

    def controlled_ratio(self, now_ms: float, batch: int) -> float:
        """The controller's ratio for `batch` requests (the default ratio without a controller)."""
        if self.controller is None or batch < 1:
            return self.default_ratio
        from flexiq_trt.serve.controller import QueueState

        oldest = self.oldest_arrival_ms(now_ms)
        size = min(batch, self.controller.profile.max_batch)
        return self.controller.choose(QueueState(now_ms, [oldest] * size))

    def execute(self, requests: list[Any]) -> list[Any]:
        """Group the batch's requests by ratio, run each group through the engine, split the outputs."""
        pb = self.pb
        now_ms = time.monotonic() * 1000.0
        ratios: list[float | None] = []
        for request in requests:
            t = pb.get_input_tensor_by_name(request, RATIO_INPUT)
            ratios.append(None if t is None else float(np.asarray(t.as_numpy()).reshape(-1)[0]))
        controlled = sum(len(self._first_input(r)) for r, q in zip(requests, ratios, strict=True) if q is None)
        chosen = self.controlled_ratio(now_ms, controlled)
        groups: dict[float, list[int]] = {}
        responses: list[Any] = [None] * len(requests)
        for k, q in enumerate(ratios):
            try:
                groups.setdefault(self._check_ratio(chosen if q is None else q), []).append(k)
            except Exception as e:  # noqa: BLE001 - reported to that request only
                responses[k] = pb.InferenceResponse(error=pb.TritonError(f"{RATIO_INPUT}: {e}"))
        for ratio, members in groups.items():
            for k, response in zip(members, self._run_group(requests, members, ratio), strict=True):
                responses[k] = response
        self._last_start_ms, self._last_end_ms = now_ms, time.monotonic() * 1000.0
        return responses

    def _first_input(self, request: Any) -> np.ndarray:
        return self.pb.get_input_tensor_by_name(request, self.inputs[0]).as_numpy()

    def _run_group(self, requests: list[Any], members: list[int], ratio: float) -> list[Any]:
        pb = self.pb
        feeds = {name: [pb.get_input_tensor_by_name(requests[k], name).as_numpy() for k in members]
                 for name in self.inputs}
        sizes = [len(a) for a in feeds[self.inputs[0]]]
        tensors = [pb.Tensor(name, np.concatenate(parts, axis=0)) for name, parts in feeds.items()]
        tensors.append(pb.Tensor(RUNTIME_INPUT, self.vector(ratio)))
        kwargs: dict[str, Any] = {"model_name": self.engine_model, "inputs": tensors,
                                  "requested_output_names": self.outputs}
        if hasattr(pb, "PreferredMemory"):  # outputs in host memory, so as_numpy() works
            kwargs["preferred_memory"] = pb.PreferredMemory(pb.TRITONSERVER_MEMORY_CPU, 0)
        reply = pb.InferenceRequest(**kwargs).exec()
        if reply.has_error():
            error = pb.TritonError(f"{self.engine_model} at ratio {ratio}: {reply.error().message()}")
            return [pb.InferenceResponse(error=error) for _ in members]
        outs = {name: pb.get_output_tensor_by_name(reply, name).as_numpy() for name in self.outputs}
        bounds = np.cumsum([0, *sizes])
        return [pb.InferenceResponse(output_tensors=[pb.Tensor(name, out[lo:hi]) for name, out in outs.items()]
                                     + [pb.Tensor(RATIO_OUTPUT, np.full((hi - lo, 1), ratio, np.float32))])
                for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]

    def finalize(self) -> None:
        """Nothing to release (the engine model owns the GPU memory)."""
