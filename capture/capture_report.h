// What procsnap-capture prints at the end: --stats as text, --json as one document. Both are
// built from a CaptureOutcome, so the two never disagree.
#pragma once

#include "capture/capture_session.h"
#include "common/util/result.h"

#include <string>

namespace procsnap {

// Multi-line text for --stats.
std::string formatStatsText(const CaptureOutcome& outcome);

// {"result": "success"|"partial", "output": ..., "pid": ..., "archive_bytes": ...,
//  "partial": ..., "partial_reason": ..., "regions": ..., "modules": ..., "warnings": [...],
//  "stats": {CaptureStats as in the archive's STATS block}}, one line.
std::string formatOutcomeJson(const CaptureOutcome& outcome);

// {"result": "error", "exit_code": N, "error": "message"}, one line.
std::string formatErrorJson(const Error& error, int exit_code);

} // namespace procsnap
