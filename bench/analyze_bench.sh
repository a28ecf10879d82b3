#!/usr/bin/env bash
# Benchmark: procsnap-analyze on a multi-GiB archive of a real capture.
#
# Starts samples/sample_target --resident-mb N (default 3072), captures it once with
# procsnap-capture (the sample is stopped right after), then prints Markdown tables of medians:
#   1. `maps` and `info` (RUNS runs each, default 5): wall time and peak RSS;
#      `strings` over the whole archive (STRINGS_RUNS runs, default 3): wall time, peak RSS
#      (VmHWM, which counts the archive's mmapped file pages) and peak anonymous RSS (RssAnon
#      sampled every 50 ms, the memory the process really allocates);
#   2. `strings -n 10` throughput against GNU `strings -a -n 10` on the same bytes: the
#      sample's resident region is written to a file with `procsnap-analyze dump`, then GNU
#      strings scans that file and `procsnap-analyze strings -n 10 --region ADDR` scans the
#      archive, alternately, STRINGS_RUNS times each; MB/s = region bytes / wall time.
# Output goes to /dev/null in every run. The load average is printed with the results: the
# machine may be shared, so read the numbers as medians under that load.
#
# Usage: bench/analyze_bench.sh [--build-dir DIR] [--resident-mb N] [--runs N]
#                               [--strings-runs N] [--work-dir DIR] [--archive FILE --region ADDR]
#                               [--skip-open]
# --archive reuses an existing archive instead of capturing (then --region names the region
# to compare with GNU strings, e.g. the first address of the sample's "resident" list).
# Needs: a build with procsnap-analyze, procsnap-capture and sample_target (default DIR:
# build/release: `cmake --preset release && cmake --build --preset release --target
# procsnap-analyze procsnap-capture sample_target`), GNU binutils strings, /usr/bin/time.
# Scratch space: about 0.5 x N MiB for the archive plus N MiB for the region dump. Everything
# started or written is removed on exit, even on Ctrl-C.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

repo="$(cd "$(dirname "$0")/.." && pwd)"
build_dir="$repo/build/release"
resident_mb=3072
runs=5
strings_runs=3
work_parent="${TMPDIR:-/tmp}"
given_archive=""
given_region=""
skip_open=0

while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build_dir="$(cd "$2" && pwd)"; shift 2 ;;
    --resident-mb) resident_mb="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --strings-runs) strings_runs="$2"; shift 2 ;;
    --work-dir) work_parent="$2"; shift 2 ;;
    --archive) given_archive="$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"; shift 2 ;;
    --region) given_region="$2"; shift 2 ;;
    --skip-open) skip_open=1; shift ;;
    -h|--help) sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "analyze_bench: unknown argument: $1" >&2; exit 2 ;;
  esac
done
if [ -n "$given_archive" ] && [ -z "$given_region" ]; then
  echo "analyze_bench: --archive needs --region ADDR" >&2
  exit 2
fi

analyze_bin="$build_dir/analyze/procsnap-analyze"
capture_bin="$build_dir/capture/procsnap-capture"
sample_bin="$build_dir/samples/sample_target"
for tool in "$analyze_bin" "$capture_bin" "$sample_bin" /usr/bin/time; do
  [ -x "$tool" ] || { echo "analyze_bench: missing $tool (build first; time: apt-get install time)" >&2; exit 1; }
done
command -v strings >/dev/null || { echo "analyze_bench: GNU strings (binutils) not installed" >&2; exit 1; }

work="$(mktemp -d "$work_parent/procsnap-analyze-bench.XXXXXX")"
sample_pid=""
bench_cleanup_on_exit

# measure NAME CMD...: runs CMD with stdout to /dev/null and sets last_wall (s) and last_hwm
# (KiB, VmHWM from /usr/bin/time). Waits without polling, so short runs are timed exactly.
measure() {
  local name="$1"
  shift
  local start end
  start=$(now)
  if ! /usr/bin/time -f '%M' -o "$work/time.$name" "$@" >/dev/null 2>"$work/stderr.$name"; then
    echo "analyze_bench: $name failed:" >&2
    cat "$work/stderr.$name" >&2
    exit 1
  fi
  end=$(now)
  last_wall=$(elapsed "$start" "$end")
  last_hwm=$(tail -1 "$work/time.$name")
}

# measure_polled NAME CMD...: like measure, and also sets last_anon (KiB), the largest RssAnon
# seen while CMD ran, sampled every 50 ms (so last_wall may be up to 50 ms late: use it for
# runs of seconds).
measure_polled() {
  local name="$1"
  shift
  local start end child="" anon peak=0
  start=$(now)
  /usr/bin/time -f '%M' -o "$work/time.$name" "$@" >/dev/null 2>"$work/stderr.$name" &
  local time_pid=$!
  while kill -0 "$time_pid" 2>/dev/null; do
    [ -n "$child" ] || child=$(pgrep -P "$time_pid" 2>/dev/null | head -1 || true)
    if [ -n "$child" ]; then
      anon=$(awk '/^RssAnon:/ { print $2 }' "/proc/$child/status" 2>/dev/null || true)
      if [ -n "$anon" ] && [ "$anon" -gt "$peak" ]; then peak=$anon; fi
    fi
    sleep 0.05
  done
  if ! wait "$time_pid"; then
    echo "analyze_bench: $name failed:" >&2
    cat "$work/stderr.$name" >&2
    exit 1
  fi
  end=$(now)
  last_wall=$(elapsed "$start" "$end")
  last_hwm=$(tail -1 "$work/time.$name")
  last_anon=$peak
}

if [ -n "$given_archive" ]; then
  archive="$given_archive"
  region="$given_region"
else
  truth="$work/truth.json"
  echo "analyze_bench: starting the sample with $resident_mb MiB resident..." >&2
  "$sample_bin" --resident-mb "$resident_mb" --exit-after 3600 >"$truth" 2>"$work/sample.err" &
  sample_pid=$!
  for _ in $(seq 1800); do
    [ -s "$truth" ] && break
    kill -0 "$sample_pid" 2>/dev/null || { cat "$work/sample.err" >&2; exit 1; }
    sleep 0.1
  done
  [ -s "$truth" ] || { echo "analyze_bench: the sample did not start" >&2; exit 1; }
  region=$(sed -n 's/.*"resident":{"addr_list":\["\(0x[0-9a-f]*\)".*/\1/p' "$truth")
  [ -n "$region" ] || { echo "analyze_bench: no resident region in the truth line" >&2; exit 1; }
  archive="$work/big.psnap"
  echo "analyze_bench: capturing..." >&2
  start=$(now)
  "$capture_bin" "$sample_pid" -o "$archive" --force --quiet
  capture_wall=$(elapsed "$start" "$(now)")
  stop_sample
  echo "analyze_bench: captured in $capture_wall s" >&2
fi
# The region holding that address (the sample's chunks merge into one mapping): its start,
# which `dump` and `strings --region` both accept.
region_hex=${region#0x}
region=$("$analyze_bin" maps "$archive" | while read -r start end _; do
  case "$start" in 0x*) ;; *) continue ;; esac
  if (( 16#${start#0x} <= 16#$region_hex && 16#$region_hex < 16#${end#0x} )); then
    echo "$start"
    break
  fi
done)
[ -n "$region" ] || { echo "analyze_bench: no region holds 0x$region_hex" >&2; exit 1; }
archive_bytes=$(stat -c %s "$archive")
load_start=$(load)

# 1. open + maps / info / whole-archive strings
declare -a maps_wall maps_hwm info_wall info_hwm all_wall all_hwm all_anon
[ "$skip_open" = 1 ] && runs=0 # --skip-open: only the GNU strings comparison
for run in $(seq "$runs"); do
  measure maps "$analyze_bin" maps "$archive"
  maps_wall+=("$last_wall"); maps_hwm+=("$last_hwm")
  measure info "$analyze_bin" info "$archive"
  info_wall+=("$last_wall"); info_hwm+=("$last_hwm")
  echo "analyze_bench: run $run/$runs: maps ${maps_wall[-1]} s, info ${info_wall[-1]} s" >&2
done
for run in $(seq "$(( skip_open ? 0 : strings_runs ))"); do
  measure_polled strings_all "$analyze_bin" strings "$archive"
  all_wall+=("$last_wall"); all_hwm+=("$last_hwm"); all_anon+=("$last_anon")
  echo "analyze_bench: run $run/$strings_runs: strings (whole archive) ${all_wall[-1]} s," \
    "VmHWM $(mib_of_kib "$last_hwm") MiB, RssAnon $(mib_of_kib "$last_anon") MiB" >&2
done

# 2. strings -n 10 against GNU strings on the same bytes
dump="$work/region.bin"
echo "analyze_bench: dumping region $region..." >&2
start=$(now)
"$analyze_bin" dump "$archive" "$region" -o "$dump" --force >/dev/null
dump_wall=$(elapsed "$start" "$(now)")
region_bytes=$(stat -c %s "$dump")
declare -a gnu_wall ps_wall ps_anon
cat "$dump" >/dev/null # GNU strings reads from the page cache, as procsnap reads the archive
for run in $(seq "$strings_runs"); do
  measure_polled gnu strings -a -n 10 "$dump"
  gnu_wall+=("$last_wall")
  measure_polled region "$analyze_bin" strings -n 10 --region "$region" "$archive"
  ps_wall+=("$last_wall"); ps_anon+=("$last_anon")
  echo "analyze_bench: run $run/$strings_runs: GNU strings ${gnu_wall[-1]} s," \
    "procsnap-analyze strings ${ps_wall[-1]} s" >&2
done
load_end=$(load)

gnu_median=$(median "${gnu_wall[@]}")
ps_median=$(median "${ps_wall[@]}")
echo
echo "Archive: capture of samples/sample_target --resident-mb $resident_mb," \
  "$(awk -v b="$archive_bytes" 'BEGIN { printf "%.2f", b / 1073741824 }') GiB on disk;" \
  "$(nproc) CPUs, $(uname -r)."
echo "Load average (1/5/15 min) at start: $load_start; at end: $load_end."
echo
[ "$skip_open" = 1 ] || {
echo "| Command | Runs | Wall time (ms, median) | Peak RSS VmHWM (MiB) | Peak RssAnon (MiB) |"
echo "|---|---:|---:|---:|---:|"
echo "| \`maps ARCHIVE\` | $runs | $(ms "$(median "${maps_wall[@]}")") | $(mib_of_kib "$(median "${maps_hwm[@]}")") | |"
echo "| \`info ARCHIVE\` | $runs | $(ms "$(median "${info_wall[@]}")") | $(mib_of_kib "$(median "${info_hwm[@]}")") | |"
echo "| \`strings ARCHIVE\` (all regions, -n 4) | $strings_runs | $(ms "$(median "${all_wall[@]}")") | $(mib_of_kib "$(median "${all_hwm[@]}")") | $(mib_of_kib "$(median "${all_anon[@]}")") |"
echo
}
echo "Region $region, $region_bytes bytes (dumped in $dump_wall s);" \
  "\`strings -n 10\`, medians of $strings_runs alternate runs:"
echo
echo "| Tool | Wall time (s) | MB/s |"
echo "|---|---:|---:|"
echo "| GNU \`strings -a -n 10 region.bin\` ($(strings --version | sed -n '1s/.* //p')) | $gnu_median | $(mb_per_s "$region_bytes" "$gnu_median") |"
echo "| \`procsnap-analyze strings -n 10 --region $region ARCHIVE\` | $ps_median | $(mb_per_s "$region_bytes" "$ps_median") |"
echo
echo "procsnap / GNU throughput ratio: $(awk -v g="$gnu_median" -v p="$ps_median" 'BEGIN { printf "%.2f", g / p }')"
