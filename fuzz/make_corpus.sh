#!/usr/bin/env bash
# Builds seed corpora for the fuzz targets from real captures and live /proc files.
#
#   fuzz/make_corpus.sh [--build DIR] [--out DIR] [--commit]
#
# --build DIR  a build with procsnap-capture, samples/sample_target and fuzz/fuzz_make_seeds
#              (default: build/fuzz; capture and the sample may come from --tools-build)
# --tools-build DIR  where procsnap-capture and sample_target are (default: the --build dir)
# --out DIR    where the corpora go, one folder per target (default: DIR/corpus of --build)
# --commit     write only small seeds (each < 64 KiB) into fuzz/corpus/<target>/, the set kept
#              in the repository; without it, the full captures are added too
#
# It starts samples/sample_target, captures it twice with procsnap-capture (default options,
# and --filter data,bss), derives small seeds with fuzz_make_seeds, keeps a truncated copy of a
# capture, and copies maps, smaps, status, auxv and a stretch of pagemap of the sample and of
# this shell, and the sample's [vdso] (a small real ELF file) for fuzz_module_sketch. With
# procsnap-analyze in --tools-build (and gdb), it adds ELF cores for fuzz_core_snapshot.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build/fuzz"
tools=""
out=""
commit=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --tools-build) tools=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --commit) commit=1; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "make_corpus.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
tools=${tools:-$build}
if [[ $commit -eq 1 ]]; then
  out=${out:-$root/fuzz/corpus}
  max_bytes=65535
  core_bytes=20480 # the headers, the notes and the first stored pages
else
  out=${out:-$build/corpus}
  max_bytes=$((64 << 20))
  core_bytes=65536 # fuzz.sh's -max_len
fi
capture="$tools/capture/procsnap-capture"
sample="$tools/samples/sample_target"
make_seeds="$build/fuzz/fuzz_make_seeds"
for tool in "$capture" "$sample" "$make_seeds"; do
  [[ -x "$tool" ]] || { echo "make_corpus.sh: missing $tool (build it first)" >&2; exit 1; }
done

work=$(mktemp -d)
sample_pid=""
cleanup() {
  [[ -n "$sample_pid" ]] && kill "$sample_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$out"/fuzz_archive_reader "$out"/fuzz_proc_parsers "$out"/fuzz_module_sketch \
  "$out"/fuzz_core_snapshot
"$sample" --exit-after 120 >"$work/truth" &
sample_pid=$!
for _ in $(seq 100); do [[ -s "$work/truth" ]] && break; sleep 0.1; done
[[ -s "$work/truth" ]] || { echo "make_corpus.sh: sample_target printed nothing" >&2; exit 1; }

"$capture" "$sample_pid" -q -o "$work/full.psnap"
"$capture" "$sample_pid" -q --level 1 --filter data,bss -o "$work/data.psnap"
"$make_seeds" "$work/data.psnap" "$out" "$max_bytes"
if [[ $commit -eq 0 ]]; then
  cp "$work/full.psnap" "$out/fuzz_archive_reader/capture-full.psnap"
  cp "$work/data.psnap" "$out/fuzz_archive_reader/capture-data.psnap"
  size=$(stat -c %s "$work/data.psnap")
  head -c $((size / 2)) "$work/data.psnap" >"$out/fuzz_archive_reader/capture-truncated.psnap"
fi

# ELF cores for fuzz_core_snapshot: the small seed archive exported by procsnap-analyze, and
# gdb's gcore of the sample when gdb is here; cut short (headers and notes come first,
# and the importer keeps what a cut core still holds).
analyze="$tools/analyze/procsnap-analyze"
if [[ -x "$analyze" ]] &&
  "$analyze" export-core -o "$work/exported.core" "$out/fuzz_archive_reader/small.psnap" \
    >/dev/null 2>&1; then
  head -c "$core_bytes" "$work/exported.core" >"$out/fuzz_core_snapshot/exported-small.core"
fi
if command -v gdb >/dev/null &&
  timeout 60 gdb -batch -nx -p "$sample_pid" -ex "gcore $work/gcore.core" >/dev/null 2>&1; then
  head -c "$core_bytes" "$work/gcore.core" >"$out/fuzz_core_snapshot/gcore-sample.core"
fi

# /proc files, copied while the processes live (cat reads to EOF like readProcFile).
copy_proc() { # PID NAME
  local src="/proc/$1/$2" dst="$out/fuzz_proc_parsers/$2-$3"
  cat "$src" >"$dst" 2>/dev/null || rm -f "$dst"
  if [[ -f "$dst" && $(stat -c %s "$dst") -gt $max_bytes ]]; then
    head -c "$max_bytes" "$dst" >"$dst.cut" && mv "$dst.cut" "$dst"
  fi
}
for name in maps smaps status auxv; do
  copy_proc "$sample_pid" "$name" sample
  copy_proc "$$" "$name" shell
done
# 64 pagemap entries of the sample's heap and its [vdso] image (pread through /proc/PID/mem).
python3 - "$sample_pid" "$out" <<'PY'
import sys
pid, out = sys.argv[1], sys.argv[2]
for line in open(f"/proc/{pid}/maps"):
    fields = line.split()
    start, end = (int(x, 16) for x in fields[0].split("-"))
    name = fields[5] if len(fields) > 5 else ""
    if name == "[heap]":
        with open(f"/proc/{pid}/pagemap", "rb") as f:
            f.seek(start // 4096 * 8)
            open(f"{out}/fuzz_proc_parsers/pagemap-heap", "wb").write(f.read(64 * 8))
    if name == "[vdso]":
        with open(f"/proc/{pid}/mem", "rb") as f:
            f.seek(start)
            open(f"{out}/fuzz_module_sketch/elf-vdso", "wb").write(b"\0" + f.read(end - start))
PY
echo "make_corpus.sh: corpora in $out"
for dir in "$out"/*/; do
  echo "  $(basename "$dir"): $(ls "$dir" | wc -l) files, $(du -sk "$dir" | cut -f1) KiB"
done
