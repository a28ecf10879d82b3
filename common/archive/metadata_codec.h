// SnapshotMetadata <-> the JSON document stored in METADATA blocks (docs/FORMAT.md, section
// "Metadata JSON"). Addresses are "0x…" strings, other integers JSON numbers, and a string
// that is not valid UTF-8 is written as {"hex": "…"} so nothing is lost. Decoding validates
// every type it reads, ignores unknown members, and never throws.
#pragma once

#include "common/model/snapshot_metadata.h"
#include "common/util/result.h"

#include <string>
#include <string_view>

namespace procsnap {

// Version of the metadata document ("metadata_version"); a decoder refuses newer ones.
inline constexpr uint32_t kMetadataVersion = 1;

std::string encodeMetadata(const SnapshotMetadata& metadata);
Result<SnapshotMetadata> decodeMetadata(std::string_view json);

std::string encodeCaptureStats(const CaptureStats& stats);
Result<CaptureStats> decodeCaptureStats(std::string_view json);

// The STATS block: the final CaptureStats, and whether the writer learned after the METADATA
// block was written that the capture is partial.
struct StatsBlock {
  CaptureStats stats;
  bool partial = false;
  std::string partial_reason;
};

std::string encodeStatsBlock(const StatsBlock& block);
Result<StatsBlock> decodeStatsBlock(std::string_view json);

// The JSON head of a MODULE block: the record, the file size and the pieces' [offset, length].
struct ModuleBlockHead {
  ModuleRecord record;
  uint64_t file_size = 0;
  std::vector<std::pair<uint64_t, uint64_t>> pieces; // offset, length
};

std::string encodeModuleHead(const ModuleBlockHead& head);
Result<ModuleBlockHead> decodeModuleHead(std::string_view json);

} // namespace procsnap
