// The command line of procsnap-capture, parsed into one plain struct that the rest of the
// tool takes. Parsing uses getopt_long; nothing here touches the target.
#pragma once

#include "common/model/region_kind.h"
#include "common/util/result.h"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace procsnap {

// Bounds for numeric options.
inline constexpr int kMinCompressionLevel = 1;
inline constexpr int kMaxCompressionLevel = 19; // zstd's highest non-"ultra" level
inline constexpr unsigned kMaxJobs = 256;       // far beyond any useful parallelism

struct CaptureOptions {
  pid_t pid = 0;
  std::string output; // empty: default name in the cwd; "-": standard output
  bool force = false; // overwrite an existing output file
  bool all = false;   // ignore coredump_filter and VM_DONTDUMP: copy every readable page
  std::vector<RegionKind> only_kinds;     // --filter: capture only these kinds (empty: any)
  std::vector<RegionKind> exclude_kinds;  // --exclude KIND
  std::vector<std::string> exclude_paths; // --exclude PATTERN: path substring or glob
  bool include_environ = false;
  bool embed_binaries = false;
  // --redact PATTERN and --redact-file FILE (one pattern per line), in command-line order:
  // literal byte strings overwritten wherever the archive would store them (redactor.h).
  std::vector<std::string> redact_patterns;
  unsigned jobs = 0;                  // compression threads; 0: one per online CPU
  int level = 3;                      // zstd level
  std::optional<uint64_t> max_buffer; // bytes kept uncompressed while frozen; nullopt: default
  bool cow = false;     // --cow: copy from a copy-on-write fork after thawing (cow_child.h)
  bool precopy = false; // --precopy: copy while running, then what was written (write_tracker.h)
  bool stats = false;   // print statistics as text on stderr at the end
  bool json = false;    // print the result as one JSON document
  bool quiet = false;   // no progress line
  bool help = false;
  bool version = false;

  bool toStdout() const { return output == "-"; }
};

// Parses arguments (without argv[0]). Errors are ErrorCode::InvalidArgument with a one-line
// message ("unknown option --foo", "missing PID", ...), to be reported as a usage error.
// --help and --version succeed with help/version set and nothing else checked.
Result<CaptureOptions> parseCaptureOptions(std::span<const std::string> args);

// Parses "4096", "64K", "512M", "2G", "1T" (binary multiples, optional trailing "B" or
// "iB"). Rejects empty, negative and overflowing values.
Result<uint64_t> parseByteSize(std::string_view text);

// The --help text.
std::string captureUsage(std::string_view program);

// The default --max-buffer: a quarter of MemAvailable from meminfo_text (/proc/meminfo), so
// the capturer never pushes the host into reclaim; a fixed fallback when it cannot be read.
uint64_t defaultMaxBuffer(std::string_view meminfo_text);
inline constexpr uint64_t kFallbackMaxBuffer = 256ull << 20;
inline constexpr uint64_t kMinDefaultMaxBuffer = 16ull << 20;

} // namespace procsnap
