#!/usr/bin/env bash
# Installs what is missing, builds with warnings as errors, and runs every test: first the
# release build, then the AddressSanitizer + UBSan build. Exits non-zero when anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh

presets=(release asan)
if [ "${PROCSNAP_TEST_PRESETS:-}" != "" ]; then read -r -a presets <<<"$PROCSNAP_TEST_PRESETS"; fi

for preset in "${presets[@]}"; do
  echo "== $preset: configure and build" >&2
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset"
  echo "== $preset: test" >&2
  ctest --preset "$preset" -j2
done
