#!/usr/bin/env bash
# The fast CPU test tier (what CI runs). GPU tests are collected and skip with their reason;
# slow tests run only with FLEXIQ_SLOW=1. "No tests collected" (pytest exit 5) is a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
[ -n "${VIRTUAL_ENV:-}" ] || source .venv/bin/activate
# setup.sh builds the plugin libraries: their tests must fail, not skip, when a library is missing.
export FLEXIQ_REQUIRE_PLUGIN="${FLEXIQ_REQUIRE_PLUGIN:-1}"
echo "== ruff (lint)"
python -m ruff check . || exit 1
python -m pytest -q -ra "$@" tests
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "ERROR: pytest collected no tests" >&2
  exit 1
fi
exit "$rc"
