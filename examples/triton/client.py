#!/usr/bin/env python3
"""Send requests to a FlexiQ model served by Triton (a repository written by `flexiq-trt triton`).

Without --ratio the server's front model picks the ratio (its load-adaptive controller, or its
default ratio); with --ratio every request asks for that 4-bit share explicitly. The reply says
which ratio served it (FLEXIQ_RATIO_USED).

    pip install 'tritonclient[grpc]'
    python client.py --model fmnist_resnet --data eval.npz [--ratio 0.5] [--url localhost:8001]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import tritonclient.grpc as grpcclient


def main() -> int:
    """Send the requests and print the ratio that served each."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="localhost:8001", help="Triton gRPC endpoint")
    ap.add_argument("--model", required=True, help="the front model's name (not <name>_engine)")
    ap.add_argument("--data", required=True, help=".npz keyed by the model's input names (first axis = samples)")
    ap.add_argument("--batch", type=int, default=4, help="samples per request")
    ap.add_argument("--requests", type=int, default=16)
    ap.add_argument("--ratio", type=float, default=None, help="explicit ratio in [0, 1] for every request")
    args = ap.parse_args()

    client = grpcclient.InferenceServerClient(args.url)
    meta = client.get_model_metadata(args.model)
    data = np.load(args.data)
    inputs = [i for i in meta.inputs if i.name != "FLEXIQ_RATIO"]
    outputs = [o.name for o in meta.outputs]
    for i in inputs:
        if i.name not in data:
            print(f"{args.data}: no array named {i.name!r} (model inputs: {[x.name for x in inputs]})", file=sys.stderr)
            return 1
    n = len(data[inputs[0].name])
    labels = data["labels"] if "labels" in data else None
    correct = total = 0
    for r in range(args.requests):
        idx = np.arange(r * args.batch, (r + 1) * args.batch) % n
        feeds = []
        for i in inputs:
            arr = np.ascontiguousarray(data[i.name][idx])
            t = grpcclient.InferInput(i.name, list(arr.shape), i.datatype)
            t.set_data_from_numpy(arr.astype(np.float32) if i.datatype == "FP32" else arr)
            feeds.append(t)
        if args.ratio is not None:
            t = grpcclient.InferInput("FLEXIQ_RATIO", [len(idx), 1], "FP32")
            t.set_data_from_numpy(np.full((len(idx), 1), args.ratio, np.float32))
            feeds.append(t)
        start = time.perf_counter()
        result = client.infer(args.model, feeds, outputs=[grpcclient.InferRequestedOutput(o) for o in outputs])
        ms = 1000 * (time.perf_counter() - start)
        used = result.as_numpy("FLEXIQ_RATIO_USED").reshape(-1)
        line = f"request {r}: {len(idx)} samples, ratio {used[0]:.2f}, {ms:.1f} ms"
        if labels is not None:
            first = next(o for o in outputs if o != "FLEXIQ_RATIO_USED")
            pred = result.as_numpy(first).argmax(axis=-1)
            correct += int((pred == labels[idx]).sum())
            total += len(idx)
            line += f", accuracy so far {correct / total:.4f}"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
