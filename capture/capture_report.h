// What procsnap-capture prints at the end: --stats as text, --json as one document. Both are
// built from a CaptureOutcome, so the two never disagree.
#pragma once

#include "capture/capture_session.h"
#include "common/util/result.h"

#include <string>

namespace procsnap {

// The "schema_version" of both documents below; the compatibility rule is analyze's
// (docs/JSON.md): raised when a member is removed, renamed or changes type or meaning.
inline constexpr int kCaptureJsonSchemaVersion = 2;

// Multi-line text for --stats.
std::string formatStatsText(const CaptureOutcome& outcome);

// {"schema_version": 2, "result": "success"|"partial", "output": ..., "pid": ...,
//  "archive_bytes": ..., "partial": ..., "partial_reason": ... (null unless partial), "regions":
//  ..., "modules": ..., "warnings": [...], "stats": {CaptureStats as in the archive's STATS
//  block}}, one line.
std::string formatOutcomeJson(const CaptureOutcome& outcome);

// {"schema_version": 2, "result": "error", "exit_code": N, "error": "message"}, one line.
std::string formatErrorJson(const Error& error, int exit_code);

} // namespace procsnap
