#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages procsnap builds and tests with. Idempotent: quiet and
# quick when everything is already there.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  llvm-19-dev                      # analyze only: libObject, Symbolize, Demangle, Support
  libzstd-dev zstd                 # chunk compression; zstd CLI for benchmarks and core tests
  libxxhash-dev                    # chunk content hashes and block checksums
  libboost-iostreams-dev           # compressed and memory-mapped streams
  liblz4-dev                       # lz4-framed cores (systemd-coredump)
  xz-utils lz4 gzip                # compressed-core tests: the xz, lz4 and gzip CLIs
  nlohmann-json3-dev               # self-describing metadata in common/ (no LLVM in capture)
  libgtest-dev libgmock-dev        # tests
  gdb binutils                     # oracles in tests: gdb dump memory / gcore, readelf, nm, strings
  clang                            # libFuzzer targets
  libdw-dev                        # analyze backtrace: libdwfl unwinding (CFI, signal frames)
  elfutils                         # eu-stack, the oracle of the backtrace tests and bench
  python3
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "setup: installing ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
