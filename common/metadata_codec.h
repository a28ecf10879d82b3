// SnapshotMetadata <-> the JSON document stored in METADATA blocks (docs/FORMAT.md).
#pragma once

#include "result.h"
#include "snapshot_metadata.h"

#include <string>
#include <string_view>

namespace procsnap {

std::string encodeMetadata(const SnapshotMetadata& metadata);
Result<SnapshotMetadata> decodeMetadata(std::string_view json);

std::string encodeCaptureStats(const CaptureStats& stats);
Result<CaptureStats> decodeCaptureStats(std::string_view json);

} // namespace procsnap
