#!/usr/bin/env bash
# The main job: install what is missing, build, start a sample target with known memory,
# capture it with procsnap-capture, and analyze the archive with procsnap-analyze.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release --target procsnap-capture procsnap-analyze sample_target >/dev/null

bin=build/release
work=$(mktemp -d)
sample_pid=""
cleanup() {
  [ -n "$sample_pid" ] && kill "$sample_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The sample prints one JSON line describing its own memory, then waits.
coproc SAMPLE { exec "$bin/samples/sample_target" --exit-after 120; }
sample_pid=$SAMPLE_PID
read -r -t 10 truth <&"${SAMPLE[0]}"
echo "== sample target $sample_pid says:"
echo "$truth" | cut -c1-300
echo

archive="$work/sample.psnap"
echo "== procsnap-capture $sample_pid -o $archive --stats"
"$bin/capture/procsnap-capture" "$sample_pid" -o "$archive" --stats
echo

analyze="$bin/analyze/procsnap-analyze"
echo "== procsnap-analyze info"
"$analyze" info "$archive"
echo
echo "== procsnap-analyze maps"
"$analyze" maps "$archive"
echo
echo "== procsnap-analyze sections (the sample's own executable)"
"$analyze" sections "$archive" --module sample_target
echo
echo "== procsnap-analyze strings -n 10 --kind heap (first 20 of them)"
"$analyze" strings "$archive" -n 10 --kind heap >"$work/strings.txt"
head -n 20 "$work/strings.txt"
echo
echo "== procsnap-analyze backtrace (every thread, offline)"
"$analyze" backtrace "$archive"
