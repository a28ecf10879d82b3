// The capture pipeline: open the output, freeze, read metadata, copy memory, open module
// files, thaw, sketch modules, compress in parallel, write, commit. The target is frozen only
// from the freeze to the thaw, and that window does no compression unless the copied bytes
// exceed the --max-buffer budget.
#pragma once

#include "capture/capture_options.h"
#include "capture/exit_codes.h"
#include "capture/progress.h"
#include "common/model/snapshot_metadata.h"
#include "common/util/result.h"

#include <cstdint>
#include <string>
#include <vector>

namespace procsnap {

struct CaptureOutcome {
  ExitCode exit_code = ExitCode::Success; // Success or Partial
  std::string output_path;                // the final path, or "-"
  pid_t pid = 0;
  bool partial = false;
  std::string partial_reason;
  CaptureStats stats;
  uint64_t archive_bytes = 0;
  uint32_t regions = 0;
  uint32_t modules = 0;
  uint64_t redactions = 0;     // --redact matches overwritten (listed or not)
  uint64_t redacted_bytes = 0; // distinct bytes overwritten in memory and modules
  std::vector<std::string> warnings;
};

// Runs one capture. On error nothing is left at the destination and the target is thawed.
Result<CaptureOutcome> runCapture(const CaptureOptions& options, Progress& progress);

} // namespace procsnap
