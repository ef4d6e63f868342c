#!/usr/bin/env bash
# Fetches the TensorRT 10.x public headers (compile-only dependency of the plugin library, docs/design.md §6)
# from the PyPI wheel kernel-lens==2.0.1 WITHOUT installing it (installing pulls torch and triton):
# `pip download --no-deps`, then unpack only kernel_lens/include/tensorrt/ into
# third_party/tensorrt_headers/ (gitignored). Idempotent: does nothing when NvInfer.h is there.
# Usage: scripts/fetch_trt_headers.sh [DEST]     env: PYTHON (default: python3)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-${repo}/third_party/tensorrt_headers}"
python="${PYTHON:-python3}"
wheel_spec="kernel-lens==2.0.1"
member_prefix="kernel_lens/include/tensorrt/"

if [[ -f "${dest}/NvInfer.h" && -f "${dest}/NvInferRuntimePlugin.h" ]]; then
    echo "${dest}"
    exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "${tmp}"' EXIT
echo "fetch_trt_headers: pip download --no-deps ${wheel_spec}" >&2
"${python}" -m pip download --quiet --no-deps --only-binary=:all: --dest "${tmp}" "${wheel_spec}" >&2
wheel="$(ls "${tmp}"/kernel_lens-*.whl | head -n 1)"
mkdir -p "${dest}"
"${python}" - "${wheel}" "${member_prefix}" "${dest}" <<'PY'
import sys
import zipfile
from pathlib import Path

wheel, prefix, dest = sys.argv[1], sys.argv[2], Path(sys.argv[3])
n = 0
with zipfile.ZipFile(wheel) as zf:
    for info in zf.infolist():
        if not info.filename.startswith(prefix) or info.is_dir():
            continue
        rel = info.filename[len(prefix):]
        if ".." in Path(rel).parts:
            raise SystemExit(f"fetch_trt_headers: refusing unsafe path {info.filename!r}")
        out = dest / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(zf.read(info))
        n += 1
if n == 0 or not (dest / "NvInfer.h").is_file():
    raise SystemExit(f"fetch_trt_headers: {wheel} has no {prefix}NvInfer.h")
print(f"fetch_trt_headers: {n} headers -> {dest}", file=sys.stderr)
PY
echo "${dest}"
