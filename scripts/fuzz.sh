#!/usr/bin/env bash
# Builds the "fuzz" preset (clang, libFuzzer, ASan, UBSan) and runs every fuzz target for a
# while, one after the other on one core.
#
#   scripts/fuzz.sh [--seconds N] [--target NAME]... [--no-build]
#
# --seconds N   time per target (default 60)
# --target NAME run only this target (repeatable; default: every fuzz_* target built)
# --no-build    use the targets already in build/fuzz
#
# Each target starts from its committed seeds (fuzz/corpus/NAME) and the working corpus in
# build/fuzz/corpus/NAME, which grows from run to run (fuzz/make_corpus.sh adds real captures).
# Prints the executions of each target. Exits 1 when a target crashed, leaked, timed out or
# ran out of memory; the input that did it stays in build/fuzz/artifacts/ and the log in
# build/fuzz/logs/. Reproduce with: build/fuzz/fuzz/NAME build/fuzz/artifacts/NAME-crash-…
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build/fuzz"
seconds=60
build_first=1
targets=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --target) targets+=("$2"); shift 2 ;;
    --no-build) build_first=0; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

# Largest input per target: archives and sketches need room, /proc text less. Bigger inputs
# are slower per execution and rarely reach new code.
max_len_for() {
  case "$1" in
    fuzz_proc_parsers) echo 16384 ;;
    *) echo 65536 ;;
  esac
}
# An input that takes longer than this is a hang (a healthy one takes milliseconds).
timeout_seconds=20
# Memory per target process; also the largest single allocation libFuzzer allows.
rss_limit_mb=2048

cd "$root"
if [[ $build_first -eq 1 ]]; then
  cmake --preset fuzz >/dev/null
  all=$(sed -n 's/^ *procsnap_fuzz_target(\([a-z_]*\).*/\1/p' fuzz/CMakeLists.txt)
  [[ -f fuzz/fuzz_core_snapshot.cpp ]] || all=$(echo "$all" | grep -v fuzz_core_snapshot)
  # shellcheck disable=SC2086
  cmake --build --preset fuzz --target ${all}
fi
if [[ ${#targets[@]} -eq 0 ]]; then
  for binary in "$build"/fuzz/fuzz_*; do
    name=$(basename "$binary")
    [[ -x "$binary" && "$name" != fuzz_make_seeds ]] && targets+=("$name")
  done
fi
[[ ${#targets[@]} -gt 0 ]] || { echo "fuzz.sh: no fuzz targets in $build/fuzz" >&2; exit 1; }

mkdir -p "$build/artifacts" "$build/logs"
failed=0
printf '%-22s %10s %8s %s\n' target executions exec/s result
for name in "${targets[@]}"; do
  binary="$build/fuzz/$name"
  corpus="$build/corpus/$name"
  mkdir -p "$corpus"
  seeds=()
  [[ -d "$root/fuzz/corpus/$name" ]] && seeds+=("$root/fuzz/corpus/$name")
  log="$build/logs/$name.log"
  status=0
  "$binary" "$corpus" "${seeds[@]}" -max_total_time="$seconds" -max_len="$(max_len_for "$name")" \
    -rss_limit_mb="$rss_limit_mb" -timeout="$timeout_seconds" -print_final_stats=1 \
    -artifact_prefix="$build/artifacts/$name-" >"$log" 2>&1 || status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  result=ok
  if [[ $status -ne 0 ]]; then
    result="FAILED (exit $status): $(grep -m1 -E '^==[0-9]+==ERROR|^SUMMARY|property failed|out-of-memory|timeout' "$log" || echo 'see log')"
    failed=1
  fi
  printf '%-22s %10s %8s %s\n' "$name" "${runs:-?}" "${speed:-?}" "$result"
done
if [[ $failed -ne 0 ]]; then
  echo "fuzz.sh: a target failed; inputs in $build/artifacts, logs in $build/logs" >&2
  exit 1
fi
