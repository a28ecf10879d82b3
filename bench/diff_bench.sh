#!/usr/bin/env bash
# Benchmark: procsnap-analyze diff of two near-identical multi-GiB snapshots.
#
# Starts samples/sample_target --resident-mb N (default 2048), captures it (BASE), sends
# SIGUSR1 (the sample changes two globals, a string, and allocates 8 MiB plus 64 bytes; see
# samples/README.md), captures it again (NEW), stops the sample, then times, RUNS times each
# (default 3), alternately:
#   - `maps BASE` and `maps NEW`: opening both archives and reading their indexes, the floor a
#     diff that decides by chunk digests should approach;
#   - `diff BASE NEW` (text to /dev/null): wall time and peak RSS (VmHWM);
#   - `diff BASE BASE`: the same archive twice, nothing differs.
# and prints Markdown tables of medians, with the chunk counts from `diff --json` (chunks
# decided by digest, chunks that differed, bytes read). The load average is printed with the
# results: the machine may be shared, so read the numbers as medians under that load.
#
# Usage: bench/diff_bench.sh [--build-dir DIR] [--resident-mb N] [--runs N] [--work-dir DIR]
# Needs: a build with procsnap-analyze, procsnap-capture and sample_target (default DIR:
# build/release: `cmake --preset release && cmake --build --preset release --target
# procsnap-analyze procsnap-capture sample_target`), /usr/bin/time.
# Scratch space: about 2 x 0.5 x N MiB for the two archives. Everything started or written is
# removed on exit, even on Ctrl-C.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

repo="$(cd "$(dirname "$0")/.." && pwd)"
build_dir="$repo/build/release"
resident_mb=2048
runs=3
work_parent="${TMPDIR:-/tmp}"

while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build_dir="$(cd "$2" && pwd)"; shift 2 ;;
    --resident-mb) resident_mb="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --work-dir) work_parent="$2"; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "diff_bench: unknown argument: $1" >&2; exit 2 ;;
  esac
done

analyze_bin="$build_dir/analyze/procsnap-analyze"
capture_bin="$build_dir/capture/procsnap-capture"
sample_bin="$build_dir/samples/sample_target"
for tool in "$analyze_bin" "$capture_bin" "$sample_bin" /usr/bin/time; do
  [ -x "$tool" ] || { echo "diff_bench: missing $tool (build first; time: apt-get install time)" >&2; exit 1; }
done

work="$(mktemp -d "$work_parent/procsnap-diff-bench.XXXXXX")"
sample_pid=""
bench_cleanup_on_exit

# measure NAME EXPECTED_EXIT CMD...: runs CMD with stdout to /dev/null, checks its exit status
# (diff exits 1 when something differs) and sets last_wall (s) and last_hwm (KiB).
measure() {
  local name="$1" expected="$2"
  shift 2
  local start end status=0
  start=$(now)
  /usr/bin/time -f '%M' -o "$work/time.$name" "$@" >/dev/null 2>"$work/stderr.$name" || status=$?
  end=$(now)
  if [ "$status" != "$expected" ]; then
    echo "diff_bench: $name exited $status (expected $expected):" >&2
    cat "$work/stderr.$name" >&2
    exit 1
  fi
  last_wall=$(elapsed "$start" "$end")
  last_hwm=$(tail -1 "$work/time.$name")
}

# The sample's stdout is a file: its truth lines, one per generation.
truth="$work/truth.json"
echo "diff_bench: starting the sample with $resident_mb MiB resident..." >&2
"$sample_bin" --resident-mb "$resident_mb" --exit-after 3600 >"$truth" 2>"$work/sample.err" &
sample_pid=$!
wait_lines() {
  for _ in $(seq 1800); do
    [ "$(wc -l <"$truth")" -ge "$1" ] && return 0
    kill -0 "$sample_pid" 2>/dev/null || { cat "$work/sample.err" >&2; exit 1; }
    sleep 0.1
  done
  echo "diff_bench: the sample did not print truth line $1" >&2
  exit 1
}
wait_lines 1
base="$work/base.psnap"
new="$work/new.psnap"
echo "diff_bench: capturing BASE..." >&2
"$capture_bin" "$sample_pid" -o "$base" --force --quiet
kill -USR1 "$sample_pid"
wait_lines 2
echo "diff_bench: capturing NEW..." >&2
"$capture_bin" "$sample_pid" -o "$new" --force --quiet
stop_sample
base_bytes=$(stat -c %s "$base")
new_bytes=$(stat -c %s "$new")
"$analyze_bin" diff "$base" "$new" --json >"$work/diff.json" 2>/dev/null || [ $? = 1 ]
summary() { sed -n "s/.*\"$1\": *\([0-9]*\).*/\1/p" "$work/diff.json" | tail -1; }
"$analyze_bin" info "$base" --json >"$work/info.json"
chunks=$(sed -n 's/.*"chunks": *\([0-9]*\).*/\1/p' "$work/info.json" | head -1)
load_start=$(load)

declare -a open_wall diff_wall diff_hwm self_wall self_hwm
for run in $(seq "$runs"); do
  measure maps_base 0 "$analyze_bin" maps "$base"
  t1=$last_wall
  measure maps_new 0 "$analyze_bin" maps "$new"
  open_wall+=("$(awk -v a="$t1" -v b="$last_wall" 'BEGIN { printf "%.3f", a + b }')")
  measure diff 1 "$analyze_bin" diff "$base" "$new"
  diff_wall+=("$last_wall"); diff_hwm+=("$last_hwm")
  measure self 0 "$analyze_bin" diff "$base" "$base"
  self_wall+=("$last_wall"); self_hwm+=("$last_hwm")
  echo "diff_bench: run $run/$runs: maps x2 ${open_wall[-1]} s, diff ${diff_wall[-1]} s," \
    "diff with itself ${self_wall[-1]} s" >&2
done
load_end=$(load)

echo
echo "Archives: two captures of samples/sample_target --resident-mb $resident_mb around one" \
  "SIGUSR1, $(awk -v b="$base_bytes" 'BEGIN { printf "%.2f", b / 1073741824 }') and" \
  "$(awk -v b="$new_bytes" 'BEGIN { printf "%.2f", b / 1073741824 }') GiB on disk," \
  "$chunks chunks in BASE; $(nproc) CPUs, $(uname -r)."
echo "Load average (1/5/15 min) at start: $load_start; at end: $load_end."
echo
echo "| Command | Runs | Wall time (ms, median) | Peak RSS VmHWM (MiB) |"
echo "|---|---:|---:|---:|"
echo "| \`maps BASE\` + \`maps NEW\` (open, read both indexes) | $runs | $(ms "$(median "${open_wall[@]}")") | |"
echo "| \`diff BASE NEW\` | $runs | $(ms "$(median "${diff_wall[@]}")") | $(mib_of_kib "$(median "${diff_hwm[@]}")") |"
echo "| \`diff BASE BASE\` | $runs | $(ms "$(median "${self_wall[@]}")") | $(mib_of_kib "$(median "${self_hwm[@]}")") |"
echo
echo "\`diff BASE NEW\`: $(summary chunks_equal_by_digest) chunk pairs equal by digest," \
  "$(summary chunks_different_by_digest) differing (decompressed);" \
  "$(summary bytes_read) bytes read; $(summary pages_changed) pages" \
  "($(summary bytes_changed) bytes) changed; $(summary regions_added) regions added," \
  "$(summary globals_changed) globals changed."
