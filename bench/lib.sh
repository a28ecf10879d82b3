# Helpers shared by the benchmarks (sourced, not run): timing, medians, units, and the
# sample target's lifetime. A script sets `work` (its scratch directory) and `sample_pid`
# (the sample it started, or empty), then calls bench_cleanup_on_exit.

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
mib_of_kib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
ms() { awk -v s="$1" 'BEGIN { printf "%.0f", s * 1000 }'; }
mb_per_s() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.0f", b / 1e6 / s }'; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

# Ends the sample: SIGTERM, up to 5 s for it to go, then SIGKILL.
stop_sample() {
  if [ -n "${sample_pid:-}" ] && kill -0 "$sample_pid" 2>/dev/null; then
    kill -TERM "$sample_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$sample_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$sample_pid" 2>/dev/null || true
  fi
  sample_pid=""
}

# Everything started or written is removed on exit, even on Ctrl-C.
bench_cleanup_on_exit() {
  trap 'stop_sample; rm -rf "$work"' EXIT
  trap 'exit 130' INT TERM HUP
}
