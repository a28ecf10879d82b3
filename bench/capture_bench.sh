#!/usr/bin/env bash
# Benchmark: procsnap-capture against gdb's gcore on the same live target.
#
# Starts samples/sample_target with --resident-mb N (default 1536) and --pause-monitor, then
# runs procsnap-capture (frozen copy, the default), procsnap-capture --cow (copy from a
# copy-on-write fork after thawing), procsnap-capture --precopy (copy while running, then the
# pages written meanwhile) and gcore on it in turn, RUNS times each (default 3), and prints
# the medians as a Markdown table for docs/PERFORMANCE.md:
#   - wall time of the tool;
#   - the target's pause: the sample's monitor thread wakes every 1 ms and records the longest
#     gap; SIGUSR2 makes it report (max_gap_ms) and reset, once before and once after each run;
#   - output size: the .psnap archive, the gcore core file, and that core compressed with
#     `zstd -3` (plus the time zstd took).
#
# Usage: bench/capture_bench.sh [--build-dir DIR] [--resident-mb N] [--runs N] [--work-dir DIR]
# Needs: a build with procsnap-capture and sample_target (default DIR: build/release, e.g.
# `cmake --preset release && cmake --build --preset release`), gdb (gcore), zstd.
# gdb writes untouched mappings as data, so the core is larger than the resident memory (the
# sample's 32 GiB reservation is excluded, see below): the work directory needs about
# 3 x N MiB free. Everything started or written is removed on exit, even on Ctrl-C.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

repo="$(cd "$(dirname "$0")/.." && pwd)"
build_dir="$repo/build/release"
resident_mb=1536
runs=3
work_parent="${TMPDIR:-/tmp}"

while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build_dir="$(cd "$2" && pwd)"; shift 2 ;;
    --resident-mb) resident_mb="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --work-dir) work_parent="$2"; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "capture_bench: unknown argument: $1" >&2; exit 2 ;;
  esac
done

capture_bin="$build_dir/capture/procsnap-capture"
sample_bin="$build_dir/samples/sample_target"
for tool in "$capture_bin" "$sample_bin"; do
  [ -x "$tool" ] || { echo "capture_bench: missing $tool (build first)" >&2; exit 1; }
done
for tool in gcore gdb zstd; do
  command -v "$tool" >/dev/null || { echo "capture_bench: $tool not installed" >&2; exit 1; }
done

work="$(mktemp -d "$work_parent/procsnap-bench.XXXXXX")"
sample_pid=""
bench_cleanup_on_exit

monitor="$work/pause.json"
truth="$work/truth.json"

# Waits (at most 10 s) for the monitor report, prints max_gap_ms, removes the report.
read_pause() {
  for _ in $(seq 1000); do
    if [ -s "$monitor" ]; then
      sed -n 's/.*"max_gap_ms":\([0-9.eE+-]*\).*/\1/p' "$monitor"
      rm -f "$monitor"
      return 0
    fi
    sleep 0.01
  done
  echo "capture_bench: no pause report from the sample" >&2
  return 1
}
reset_pause() { rm -f "$monitor"; kill -USR2 "$sample_pid"; read_pause >/dev/null; }

echo "capture_bench: starting the sample with $resident_mb MiB resident..." >&2
"$sample_bin" --resident-mb "$resident_mb" --pause-monitor "$monitor" --exit-after 3600 \
  >"$truth" 2>"$work/sample.err" &
sample_pid=$!
for _ in $(seq 600); do
  [ -s "$truth" ] && break
  kill -0 "$sample_pid" 2>/dev/null || { cat "$work/sample.err" >&2; exit 1; }
  sleep 0.1
done
[ -s "$truth" ] || { echo "capture_bench: the sample did not start" >&2; exit 1; }

# gdb 13's gcore reads untouched memory, and on this kernel that allocates it: on the sample's
# 32 GiB reservation it drove the target to 23 GB resident and into the OOM killer. So the
# reservation is marked MADV_DONTDUMP (16) first, which gcore honours. procsnap-capture is
# unaffected: it never reads pages that are not present (they are skipped either way).
reservation_addr=$(sed -n 's/.*"reservation":{"addr":"\(0x[0-9a-f]*\)","size":\([0-9]*\)}.*/\1/p' "$truth")
reservation_size=$(sed -n 's/.*"reservation":{"addr":"\(0x[0-9a-f]*\)","size":\([0-9]*\)}.*/\2/p' "$truth")
if [ -z "$reservation_addr" ] || [ -z "$reservation_size" ]; then
  echo "capture_bench: cannot find the reservation in the sample's truth line" >&2
  exit 1
fi
madvise_result=$(gdb -q -batch -p "$sample_pid" \
  -ex "print (int) madvise((void*) $reservation_addr, (unsigned long) $reservation_size, 16)" \
  2>/dev/null | sed -n 's/^\$1 = //p')
if [ "$madvise_result" != "0" ]; then
  echo "capture_bench: could not mark the reservation MADV_DONTDUMP (gdb said: $madvise_result)" >&2
  exit 1
fi

# capture_run [OPTION...]: one procsnap-capture of the sample; prints "WALL PAUSE SIZE"
# (seconds, the monitor's longest gap in ms, archive bytes).
capture_run() {
  local start end
  reset_pause
  start=$(now)
  "$capture_bin" "$sample_pid" -o "$work/capture.psnap" --force --quiet "$@" ||
    { echo "capture_bench: procsnap-capture $* failed" >&2; return 1; }
  end=$(now)
  kill -USR2 "$sample_pid"
  echo "$(elapsed "$start" "$end") $(read_pause) $(stat -c %s "$work/capture.psnap")"
  rm -f "$work/capture.psnap"
}

declare -a ps_wall ps_pause ps_size cow_wall cow_pause cow_size pc_wall pc_pause pc_size
declare -a gc_wall gc_pause gc_size zst_size zst_wall
for run in $(seq "$runs"); do
  out=$(capture_run) || exit 1
  read -r w p z <<<"$out"; ps_wall+=("$w"); ps_pause+=("$p"); ps_size+=("$z")
  out=$(capture_run --cow) || exit 1
  read -r w p z <<<"$out"; cow_wall+=("$w"); cow_pause+=("$p"); cow_size+=("$z")
  out=$(capture_run --precopy) || exit 1
  read -r w p z <<<"$out"; pc_wall+=("$w"); pc_pause+=("$p"); pc_size+=("$z")

  # gcore (gdb): the target is stopped for the whole run
  reset_pause
  start=$(now)
  gcore -o "$work/core" "$sample_pid" >"$work/gcore.log" 2>&1
  end=$(now)
  gc_wall+=("$(elapsed "$start" "$end")")
  kill -USR2 "$sample_pid"
  gc_pause+=("$(read_pause)")
  core="$work/core.$sample_pid"
  gc_size+=("$(stat -c %s "$core")")
  start=$(now)
  zst_size+=("$(zstd -3 -q -c "$core" | wc -c)")
  end=$(now)
  zst_wall+=("$(elapsed "$start" "$end")")
  rm -f "$core"
  echo "capture_bench: run $run/$runs: procsnap ${ps_wall[-1]} s (pause ${ps_pause[-1]} ms)," \
    "--cow ${cow_wall[-1]} s (pause ${cow_pause[-1]} ms)," \
    "--precopy ${pc_wall[-1]} s (pause ${pc_pause[-1]} ms)," \
    "gcore ${gc_wall[-1]} s (pause ${gc_pause[-1]} ms), zstd -3 ${zst_wall[-1]} s" >&2
done

jobs=$(nproc)
echo
echo "Target: samples/sample_target --resident-mb $resident_mb (its 32 GiB untouched reservation marked"
echo "MADV_DONTDUMP so that gcore can run at all);"
echo "$(nproc) CPUs, $(uname -r); medians of $runs runs, tools run alternately."
echo
echo "| Tool | Wall time (s) | Target pause (ms) | Output (MiB) |"
echo "|---|---:|---:|---:|"
echo "| procsnap-capture (-j $jobs, zstd level 3) | $(median "${ps_wall[@]}") | $(median "${ps_pause[@]}") | $(mib "$(median "${ps_size[@]}")") |"
echo "| procsnap-capture --cow (-j $jobs, zstd level 3) | $(median "${cow_wall[@]}") | $(median "${cow_pause[@]}") | $(mib "$(median "${cow_size[@]}")") |"
echo "| procsnap-capture --precopy (-j $jobs, zstd level 3) | $(median "${pc_wall[@]}") | $(median "${pc_pause[@]}") | $(mib "$(median "${pc_size[@]}")") |"
echo "| gcore (gdb $(gdb --version | sed -n '1s/.* //p')) | $(median "${gc_wall[@]}") | $(median "${gc_pause[@]}") | $(mib "$(median "${gc_size[@]}")") |"
echo "| gcore core, then \`zstd -3\` | +$(median "${zst_wall[@]}") | (as gcore) | $(mib "$(median "${zst_size[@]}")") |"
# Ratios per run (the tools ran back to back, so each pair saw about the same load), then
# their medians: steadier on a shared machine than the ratio of the medians.
declare -a cow_pause_ratio pc_pause_ratio ps_wall_ratio cow_wall_ratio pc_wall_ratio size_ratio
for i in "${!gc_pause[@]}"; do
  cow_pause_ratio+=("$(ratio "${cow_pause[$i]}" "${gc_pause[$i]}")")
  pc_pause_ratio+=("$(ratio "${pc_pause[$i]}" "${gc_pause[$i]}")")
  pc_wall_ratio+=("$(ratio "${pc_wall[$i]}" "${gc_wall[$i]}")")
  ps_wall_ratio+=("$(ratio "${ps_wall[$i]}" "${gc_wall[$i]}")")
  cow_wall_ratio+=("$(ratio "${cow_wall[$i]}" "${gc_wall[$i]}")")
  size_ratio+=("$(ratio "${cow_size[$i]}" "${zst_size[$i]}")")
done
echo
echo "Per-run ratios against gcore (median; each run): --precopy pause" \
  "$(median "${pc_pause_ratio[@]}")x (${pc_pause_ratio[*]}); --cow pause" \
  "$(median "${cow_pause_ratio[@]}")x (${cow_pause_ratio[*]}); wall $(median "${ps_wall_ratio[@]}")x," \
  "--cow wall $(median "${cow_wall_ratio[@]}")x, --precopy wall $(median "${pc_wall_ratio[@]}")x;" \
  "archive / zstd -3 of the core $(median "${size_ratio[@]}")x."
